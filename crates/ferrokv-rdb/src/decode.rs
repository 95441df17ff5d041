//! Reading the format's primitives from any byte source, keeping the offset for errors.

use std::io::{self, Read};

use ferrokv_store::types::lzf;

use crate::error::{RdbError, RdbErrorKind, RdbResult};
use crate::format::len;

/// Largest string or collection length accepted before reading its bytes: a corrupt length
/// must fail cleanly rather than ask for terabytes. (A real value this large cannot be in
/// memory anyway; Valkey's own limit on a string is 512 MB by default.)
pub const MAX_ALLOC: u64 = 1 << 34;

/// Large reads grow their buffer this much at a time, so that a corrupt length costs memory
/// only as far as data really follows.
const GROWTH_STEP: usize = 1 << 20;

/// Appends exactly `n` bytes from `inner` to `out`, growing it step by step.
fn read_growing<R: Read>(inner: &mut R, out: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let end = out.len() + n;
    while out.len() < end {
        let start = out.len();
        let step = (end - start).min(GROWTH_STEP.max(start / 4));
        out.resize(start + step, 0);
        inner.read_exact(&mut out[start..])?;
    }
    Ok(())
}

/// A length, or the announcement of a specially encoded string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Plain(u64),
    Encoded(u8),
}

/// Reads RDB primitives from `R` (a file, a socket, a DUMP payload), counting bytes so that
/// errors name the offset where the bad item starts.
pub struct Decoder<R> {
    inner: R,
    offset: u64,
    /// While set, every byte read is also appended here (see [`Decoder::start_tee`]).
    tee: Option<Vec<u8>>,
}

impl<R: Read> Decoder<R> {
    pub fn new(inner: R) -> Decoder<R> {
        Decoder {
            inner,
            offset: 0,
            tee: None,
        }
    }

    /// From now on, keeps a verbatim copy of every byte read in `buf` (cleared first), so
    /// that a value can be framed here and decoded elsewhere.
    pub fn start_tee(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.tee = Some(buf);
    }

    /// Stops copying; returns the bytes read since [`Decoder::start_tee`].
    pub fn stop_tee(&mut self) -> Vec<u8> {
        self.tee.take().unwrap_or_default()
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// An error at the current offset.
    pub fn error(&self, kind: RdbErrorKind) -> RdbError {
        RdbError::new(self.offset, kind)
    }

    pub fn corrupt(&self, what: &'static str) -> RdbError {
        RdbError::corrupt(self.offset, what)
    }

    pub fn exact(&mut self, out: &mut [u8]) -> RdbResult<()> {
        match self.inner.read_exact(out) {
            Ok(()) => {
                self.offset += out.len() as u64;
                if let Some(tee) = &mut self.tee {
                    tee.extend_from_slice(out);
                }
                Ok(())
            }
            Err(e) => Err(self.read_error(&e)),
        }
    }

    fn read_error(&self, e: &io::Error) -> RdbError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.error(RdbErrorKind::Truncated)
        } else {
            self.error(RdbErrorKind::Io(e.to_string()))
        }
    }

    /// Passes over `n` bytes (into the tee when one is running), refusing absurd sizes.
    pub fn skip(&mut self, n: u64) -> RdbResult<()> {
        if n > MAX_ALLOC {
            return Err(self.corrupt("length too large"));
        }
        let Some(tee) = &mut self.tee else {
            let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
                .map_err(|e| self.read_error(&e))?;
            self.offset += copied;
            return if copied == n {
                Ok(())
            } else {
                Err(self.error(RdbErrorKind::Truncated))
            };
        };
        // Read straight into the tee: no intermediate buffer for the bulk of a value.
        let start = tee.len();
        let result = read_growing(&mut self.inner, tee, n as usize);
        match result {
            Ok(()) => {
                self.offset += n;
                Ok(())
            }
            Err(e) => {
                tee.truncate(start);
                Err(self.read_error(&e))
            }
        }
    }

    pub fn u8(&mut self) -> RdbResult<u8> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }

    pub fn u32_le(&mut self) -> RdbResult<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn u64_le(&mut self) -> RdbResult<u64> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn i64_le(&mut self) -> RdbResult<i64> {
        Ok(self.u64_le()? as i64)
    }

    /// `n` bytes into a fresh vector, refusing absurd sizes before allocating.
    pub fn vec(&mut self, n: u64) -> RdbResult<Vec<u8>> {
        if n > MAX_ALLOC {
            return Err(self.corrupt("length too large"));
        }
        if n as usize <= GROWTH_STEP {
            let mut out = vec![0u8; n as usize];
            self.exact(&mut out)?;
            return Ok(out);
        }
        let mut out = Vec::new();
        read_growing(&mut self.inner, &mut out, n as usize).map_err(|e| self.read_error(&e))?;
        self.offset += n;
        if let Some(tee) = &mut self.tee {
            tee.extend_from_slice(&out);
        }
        Ok(out)
    }

    pub fn length_or_encoding(&mut self) -> RdbResult<Length> {
        let first = self.u8()?;
        Ok(match first >> 6 {
            len::BITS_6 => Length::Plain(u64::from(first & 0x3f)),
            len::BITS_14 => Length::Plain((u64::from(first & 0x3f) << 8) | u64::from(self.u8()?)),
            len::WIDE => match first {
                len::LEN_32 => {
                    let mut b = [0u8; 4];
                    self.exact(&mut b)?;
                    Length::Plain(u64::from(u32::from_be_bytes(b)))
                }
                len::LEN_64 => {
                    let mut b = [0u8; 8];
                    self.exact(&mut b)?;
                    Length::Plain(u64::from_be_bytes(b))
                }
                other => return Err(self.error(RdbErrorKind::UnknownEncoding(other))),
            },
            _ => Length::Encoded(first & 0x3f),
        })
    }

    /// A plain length (a count, a size); an encoded-string marker here is corruption.
    pub fn length(&mut self) -> RdbResult<u64> {
        match self.length_or_encoding()? {
            Length::Plain(n) => Ok(n),
            Length::Encoded(_) => Err(self.corrupt("string encoding where a length belongs")),
        }
    }

    /// A count of items that are about to be allocated for: bounded like [`Decoder::vec`].
    pub fn count(&mut self) -> RdbResult<usize> {
        let n = self.length()?;
        if n > MAX_ALLOC {
            return Err(self.corrupt("count too large"));
        }
        Ok(n as usize)
    }

    /// A string in any of its encodings, as bytes.
    pub fn string(&mut self) -> RdbResult<Vec<u8>> {
        match self.length_or_encoding()? {
            Length::Plain(n) => self.vec(n),
            Length::Encoded(enc) => match self.encoded(enc)? {
                Str::Int(n) => Ok(itoa::Buffer::new().format(n).as_bytes().to_vec()),
                Str::Bytes(b) => Ok(b),
            },
        }
    }

    /// A string in any of its encodings, into `out` (cleared first; its allocation reused).
    pub fn string_into(&mut self, out: &mut Vec<u8>) -> RdbResult<()> {
        out.clear();
        match self.length_or_encoding()? {
            Length::Plain(n) => {
                if n > MAX_ALLOC {
                    return Err(self.corrupt("length too large"));
                }
                out.resize(n as usize, 0);
                self.exact(out)
            }
            Length::Encoded(enc) => {
                match self.encoded(enc)? {
                    Str::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
                    Str::Bytes(b) => *out = b,
                }
                Ok(())
            }
        }
    }

    /// Passes over a string in any of its encodings without decoding it.
    pub fn skip_string(&mut self) -> RdbResult<()> {
        match self.length_or_encoding()? {
            Length::Plain(n) => self.skip(n),
            Length::Encoded(len::ENC_INT8) => self.skip(1),
            Length::Encoded(len::ENC_INT16) => self.skip(2),
            Length::Encoded(len::ENC_INT32) => self.skip(4),
            Length::Encoded(len::ENC_LZF) => {
                let packed_len = self.length()?;
                self.length()?;
                self.skip(packed_len)
            }
            Length::Encoded(other) => Err(self.error(RdbErrorKind::UnknownEncoding(other))),
        }
    }

    /// Passes over a pre-RDB-8 text double (see [`Decoder::text_double`]).
    pub fn skip_text_double(&mut self) -> RdbResult<()> {
        match self.u8()? {
            253..=255 => Ok(()),
            n => self.skip(u64::from(n)),
        }
    }

    /// A string, keeping integer encodings as integers (a list or set can store them as
    /// such without formatting and parsing them again).
    pub fn string_or_int(&mut self) -> RdbResult<Str> {
        match self.length_or_encoding()? {
            Length::Plain(n) => Ok(Str::Bytes(self.vec(n)?)),
            Length::Encoded(enc) => self.encoded(enc),
        }
    }

    fn encoded(&mut self, enc: u8) -> RdbResult<Str> {
        Ok(match enc {
            len::ENC_INT8 => Str::Int(i64::from(self.u8()? as i8)),
            len::ENC_INT16 => {
                let mut b = [0u8; 2];
                self.exact(&mut b)?;
                Str::Int(i64::from(i16::from_le_bytes(b)))
            }
            len::ENC_INT32 => {
                let mut b = [0u8; 4];
                self.exact(&mut b)?;
                Str::Int(i64::from(i32::from_le_bytes(b)))
            }
            len::ENC_LZF => {
                let at = self.offset;
                let packed_len = self.length()?;
                let plain_len = self.length()?;
                if plain_len > MAX_ALLOC {
                    return Err(RdbError::corrupt(at, "compressed string too large"));
                }
                let packed = self.vec(packed_len)?;
                let plain = lzf::decompress(&packed, plain_len as usize)
                    .ok_or_else(|| RdbError::corrupt(at, "invalid LZF data"))?;
                Str::Bytes(plain)
            }
            other => return Err(self.error(RdbErrorKind::UnknownEncoding(other))),
        })
    }

    /// An eight-byte little-endian double.
    pub fn binary_double(&mut self) -> RdbResult<f64> {
        Ok(f64::from_bits(self.u64_le()?))
    }

    /// A double in the pre-RDB-8 text form: a length byte (253 NaN, 254 +inf, 255 -inf)
    /// then that many ASCII bytes.
    pub fn text_double(&mut self) -> RdbResult<f64> {
        let at = self.offset;
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let mut b = vec![0u8; usize::from(n)];
                self.exact(&mut b)?;
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| RdbError::corrupt(at, "invalid double"))
            }
        }
    }
}

/// A string as stored: text, or an integer the writer encoded compactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Str {
    Int(i64),
    Bytes(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encoder;

    fn round_trip(s: &[u8], compress: bool) -> Vec<u8> {
        let mut e = Encoder::new(compress);
        e.string(s);
        let mut d = Decoder::new(&e.buf[..]);
        let out = d.string().expect("decodes");
        assert_eq!(d.offset(), e.buf.len() as u64);
        out
    }

    #[test]
    fn strings_round_trip_in_every_encoding() {
        for s in [
            &b""[..],
            b"x",
            b"-128",
            b"32767",
            b"-2147483648",
            b"2147483648",
            b"007",
            &[b'z'; 300],
            b"the quick brown fox jumps over the lazy dog, the quick brown fox",
        ] {
            assert_eq!(round_trip(s, true), s);
            assert_eq!(round_trip(s, false), s);
        }
    }

    #[test]
    fn lengths_round_trip() {
        for n in [0u64, 63, 64, 16383, 16384, u64::from(u32::MAX), 1 << 40] {
            let mut e = Encoder::new(false);
            e.length(n);
            assert_eq!(Decoder::new(&e.buf[..]).length(), Ok(n));
        }
    }

    #[test]
    fn truncated_and_absurd_inputs_fail_cleanly() {
        let mut d = Decoder::new(&[0x05, b'a', b'b'][..]);
        assert_eq!(d.string().unwrap_err().kind, RdbErrorKind::Truncated);
        let mut d = Decoder::new(&[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            d.string().unwrap_err().kind,
            RdbErrorKind::Corrupt(_)
        ));
        // LZF that claims more output than it makes.
        let mut d = Decoder::new(&[0xc3, 0x02, 0x10, 0x01, b'a'][..]);
        assert!(d.string().is_err());
    }

    /// A length far past the data is a truncation, found without allocating that length
    /// (the buffer grows only as far as bytes really arrive).
    #[test]
    fn a_lying_length_costs_only_the_data_present() {
        let mut e = Encoder::new(false);
        e.length(1 << 33);
        e.bytes(&[b'x'; 3 << 20]);
        let mut d = Decoder::new(&e.buf[..]);
        assert_eq!(d.string().unwrap_err().kind, RdbErrorKind::Truncated);
        let mut d = Decoder::new(&e.buf[..]);
        d.start_tee(Vec::new());
        assert_eq!(d.skip_string().unwrap_err().kind, RdbErrorKind::Truncated);
        assert!(d.stop_tee().capacity() < 64 << 20);
        // A length that is there is read whole, in steps or not.
        let mut e = Encoder::new(false);
        let long: Vec<u8> = (0..(5 << 20)).map(|i| (i % 251) as u8).collect();
        e.string(&long);
        let mut d = Decoder::new(&e.buf[..]);
        d.start_tee(Vec::new());
        assert_eq!(d.string().expect("whole"), long);
        assert_eq!(d.stop_tee(), e.buf);
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips(s in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            proptest::prop_assert_eq!(round_trip(&s, true), s.clone());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut d = Decoder::new(&bytes[..]);
            let _ = d.string();
        }
    }
}
