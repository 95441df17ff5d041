//! Writing the format's primitives into a byte buffer.

use ferrokv_store::types::lzf;

use crate::format::len;

/// Appends RDB primitives to a buffer. Callers flush the buffer to a file or socket as they
/// see fit; the encoder itself never does I/O, so it serves files, DUMP and replication alike.
#[derive(Debug, Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
    /// Whether strings longer than 20 bytes are LZF-compressed (`rdbcompression`).
    pub compress: bool,
}

impl Encoder {
    pub fn new(compress: bool) -> Encoder {
        Encoder {
            buf: Vec::new(),
            compress,
        }
    }

    pub fn u8(&mut self, byte: u8) {
        self.buf.push(byte);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn u32_le(&mut self, n: u32) {
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    pub fn u64_le(&mut self, n: u64) {
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    pub fn i64_le(&mut self, n: i64) {
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    /// A length: 6, 14, 32 or 64 bits as the value needs.
    pub fn length(&mut self, n: u64) {
        if n < 1 << 6 {
            self.buf.push(n as u8);
        } else if n < 1 << 14 {
            self.buf
                .extend_from_slice(&[(len::BITS_14 << 6) | (n >> 8) as u8, n as u8]);
        } else if n <= u64::from(u32::MAX) {
            self.buf.push(len::LEN_32);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(len::LEN_64);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A string, as an integer when it is the canonical text of one that fits 32 bits, LZF-
    /// compressed when that is enabled and saves more than four bytes, plain otherwise.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 11
            && let Some(n) = canonical_int(s)
            && self.try_int(n)
        {
            return;
        }
        if self.compress && s.len() > 20 && self.try_lzf(s) {
            return;
        }
        self.length(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    /// A string LZF-compressed whenever that makes it shorter, whatever `compress` says (a
    /// quicklist node held compressed in memory is saved compressed, as Valkey does).
    pub fn string_prefer_lzf(&mut self, s: &[u8]) {
        if s.len() > 4 && self.try_lzf(s) {
            return;
        }
        self.length(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    /// An integer value written as a string (a list element, a set member ...): the
    /// compact integer encoding when it fits 32 bits, its decimal text otherwise.
    pub fn int_string(&mut self, n: i64) {
        if !self.try_int(n) {
            let mut text = itoa::Buffer::new();
            let s = text.format(n);
            self.length(s.len() as u64);
            self.buf.extend_from_slice(s.as_bytes());
        }
    }

    fn try_int(&mut self, n: i64) -> bool {
        let special = len::ENCODED << 6;
        if let Ok(v) = i8::try_from(n) {
            self.buf
                .extend_from_slice(&[special | len::ENC_INT8, v as u8]);
        } else if let Ok(v) = i16::try_from(n) {
            self.buf.push(special | len::ENC_INT16);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(n) {
            self.buf.push(special | len::ENC_INT32);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else {
            return false;
        }
        true
    }

    fn try_lzf(&mut self, s: &[u8]) -> bool {
        let Some(packed) = lzf::compress(s, s.len() - 4) else {
            return false;
        };
        self.buf.push((len::ENCODED << 6) | len::ENC_LZF);
        self.length(packed.len() as u64);
        self.length(s.len() as u64);
        self.buf.extend_from_slice(&packed);
        true
    }

    /// A double as eight little-endian bytes (sorted-set scores since RDB 8).
    pub fn binary_double(&mut self, d: f64) {
        self.buf.extend_from_slice(&d.to_le_bytes());
    }
}

/// The value of `s` when it is exactly how that integer prints (no sign on zero, no
/// leading zeros, no `+`): only such strings may be stored as integers, or they would read
/// back different.
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(s).ok()?;
    let n: i64 = text.parse().ok()?;
    let mut buf = itoa::Buffer::new();
    (buf.format(n).as_bytes() == s).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_smallest_form() {
        let mut e = Encoder::new(false);
        e.length(63);
        e.length(64);
        e.length(16383);
        e.length(16384);
        e.length(1 << 32);
        assert_eq!(
            e.buf,
            [
                vec![63],
                vec![0x40, 64],
                vec![0x7f, 0xff],
                vec![0x80, 0, 0, 0x40, 0],
                vec![0x81, 0, 0, 0, 1, 0, 0, 0, 0]
            ]
            .concat()
        );
    }

    #[test]
    fn integers_are_stored_compactly_only_when_canonical() {
        let mut e = Encoder::new(false);
        e.string(b"12345");
        assert_eq!(e.buf, [0xc1, 0x39, 0x30]);
        for text in [&b"012"[..], b"+1", b"-0", b" 1", b"99999999999"] {
            let mut e = Encoder::new(false);
            e.string(text);
            assert_eq!(e.buf[0] as usize, text.len(), "{text:?}");
        }
    }

    #[test]
    fn long_repetitive_strings_are_compressed_when_enabled() {
        let s = vec![b'a'; 100];
        let mut on = Encoder::new(true);
        on.string(&s);
        assert_eq!(on.buf[0], 0xc3);
        let mut off = Encoder::new(false);
        off.string(&s);
        assert_eq!(off.buf.len(), 102);
    }
}
