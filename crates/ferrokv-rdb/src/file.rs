//! Whole snapshot files: header, aux fields, databases, keys with their expiry and access
//! stamp, functions, EOF and checksum.
//!
//! Writing is a set of free functions over an [`Encoder`], so the caller decides when
//! the buffer goes to disk (and can write shards' keys in any order: a database may be
//! selected again later in the file, which every reader accepts). Reading is a
//! [`FileReader`] that yields one [`Item`] at a time and checks the checksum at the end.

use std::io::Read;

use ferrokv_store::{Entry, NO_EXPIRE, Value};

use crate::crc64;
use crate::decode::Decoder;
use crate::encode::Encoder;
use crate::error::{RdbError, RdbErrorKind, RdbResult};
use crate::format::{self, Dialect, opcode};
use crate::frame;
use crate::value::{self, ReadOptions, Target};

/// Writes the magic and version for `target`.
pub fn write_header(e: &mut Encoder, target: Target) {
    match target {
        Target::Rdb10 => e.bytes(format!("REDIS{:04}", target.version()).as_bytes()),
        Target::Valkey80 => e.bytes(format!("VALKEY{:03}", target.version()).as_bytes()),
    }
}

pub fn write_aux(e: &mut Encoder, key: &[u8], value: &[u8]) {
    e.u8(opcode::AUX);
    e.string(key);
    e.string(value);
}

pub fn write_select_db(e: &mut Encoder, db: usize) {
    e.u8(opcode::SELECTDB);
    e.length(db as u64);
}

pub fn write_resize_db(e: &mut Encoder, keys: usize, volatile: usize) {
    e.u8(opcode::RESIZEDB);
    e.length(keys as u64);
    e.length(volatile as u64);
}

/// What access stamp to store with each key: Redis writes LRU idle times under an LRU
/// `maxmemory-policy` and LFU counters under an LFU one, nothing otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessInfo {
    None,
    /// Seconds idle, computed by the caller from the entry's stamp.
    LruIdle,
    /// The decayed LFU counter, computed by the caller.
    LfuFreq,
}

/// Writes one key with its expiry, an optional access stamp (`access`: idle seconds or LFU
/// counter, as `info` says) and its value.
pub fn write_key(
    e: &mut Encoder,
    key: &[u8],
    entry: &Entry,
    access: Option<(AccessInfo, u64)>,
    target: Target,
) {
    if entry.expire_at != NO_EXPIRE {
        e.u8(opcode::EXPIRETIME_MS);
        e.i64_le(entry.expire_at);
    }
    match access {
        Some((AccessInfo::LruIdle, idle)) => {
            e.u8(opcode::IDLE);
            e.length(idle);
        }
        Some((AccessInfo::LfuFreq, freq)) => {
            e.u8(opcode::FREQ);
            e.u8(freq.min(255) as u8);
        }
        _ => {}
    }
    write_value_with_key(e, key, &entry.value, target);
}

fn write_value_with_key(e: &mut Encoder, key: &[u8], value: &Value, target: Target) {
    // The type byte precedes the key, the payload follows it.
    let mut typed = Encoder::new(e.compress);
    value::write_value(&mut typed, value, target);
    let (type_byte, payload) = typed
        .buf
        .split_first()
        .map_or((0, &[][..]), |(t, p)| (*t, p));
    e.u8(type_byte);
    e.string(key);
    e.bytes(payload);
}

/// A library of functions (`FUNCTION LOAD` code), as RDB 10 stores it.
pub fn write_function(e: &mut Encoder, code: &[u8]) {
    e.u8(opcode::FUNCTION2);
    e.string(code);
}

/// The EOF opcode then the checksum of everything before the checksum (`crc` 0 when
/// `rdbchecksum no`).
pub fn write_eof(e: &mut Encoder) {
    e.u8(opcode::EOF);
}

/// One thing a snapshot holds, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Aux {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    SelectDb(usize),
    ResizeDb {
        keys: u64,
        volatile: u64,
    },
    Key {
        key: Vec<u8>,
        value: Value,
        /// Absolute expiry in Unix ms, or `NO_EXPIRE`.
        expire_at: i64,
        idle_seconds: Option<u64>,
        lfu_freq: Option<u8>,
    },
    /// A function library's source code.
    Function(Vec<u8>),
    /// Valkey 8's per-slot sizes (cluster hints); nothing to do with them on load.
    SlotInfo,
    Eof,
}

/// A buffered reader that checksums what its reader consumed.
///
/// The checksum runs over whole buffers (where the CRC's sixteen tables pay off) rather
/// than over each of the many small reads a decoder makes: the consumed part of the buffer
/// is added when the buffer is refilled, and the rest on [`Checksummed::digest_so_far`].
struct Checksummed<R> {
    inner: R,
    buf: Box<[u8]>,
    /// Next byte to hand out.
    pos: usize,
    /// End of the valid bytes in `buf`.
    filled: usize,
    digest: crc::Digest<'static, u64, crc::Table<16>>,
}

const READ_BUFFER: usize = 1 << 20;

impl<R: Read> Checksummed<R> {
    fn new(inner: R) -> Checksummed<R> {
        Checksummed {
            inner,
            buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            pos: 0,
            filled: 0,
            digest: crc64::digest(),
        }
    }

    /// The checksum of every byte handed out so far.
    fn digest_so_far(&mut self) -> u64 {
        self.digest.update(&self.buf[..self.pos]);
        // The consumed bytes are in the digest now; keep the unread rest in place.
        let (pos, filled) = (self.pos, self.filled);
        self.buf.copy_within(pos..filled, 0);
        self.pos = 0;
        self.filled = filled - pos;
        self.digest.clone().finalize()
    }

    fn refill(&mut self) -> std::io::Result<usize> {
        self.digest.update(&self.buf[..self.pos]);
        self.pos = 0;
        self.filled = 0;
        let n = loop {
            match self.inner.read(&mut self.buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.filled = n;
        Ok(n)
    }
}

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.filled && self.refill()? == 0 {
            return Ok(0);
        }
        let n = out.len().min(self.filled - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    fn read_exact(&mut self, out: &mut [u8]) -> std::io::Result<()> {
        // The common case: everything asked for is already buffered.
        if let Some(bytes) = self.buf.get(self.pos..self.pos + out.len())
            && self.pos + out.len() <= self.filled
        {
            out.copy_from_slice(bytes);
            self.pos += out.len();
            return Ok(());
        }
        let mut done = 0;
        while done < out.len() {
            match self.read(&mut out[done..])? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => done += n,
            }
        }
        Ok(())
    }
}

/// A key whose value was framed but not decoded (see [`FileReader::next_framed`]).
#[derive(Debug)]
pub struct FramedKey<'a> {
    pub key: &'a [u8],
    pub type_byte: u8,
    /// The value's payload, verbatim: [`value::read_value`] decodes it.
    pub payload: &'a [u8],
    /// Where the payload starts in the file: a decoding error's offset is relative to it.
    pub payload_at: u64,
    /// Where the key's item (its expiry, or its type byte) starts.
    pub at: u64,
    pub expire_at: i64,
    pub idle_seconds: Option<u64>,
    pub lfu_freq: Option<u8>,
}

/// What [`FileReader::next_framed`] yields.
#[derive(Debug)]
pub enum Framed<'a> {
    /// Anything but a framed key: a key of a type decoded in place (a stream) included.
    Item(Item),
    Key(FramedKey<'a>),
}

/// What the shared item loop found.
enum Next {
    Item(Item),
    /// A framed key: its key and payload are in the reader's buffers.
    Framed {
        type_byte: u8,
        at: u64,
        payload_at: u64,
        expire_at: i64,
        idle_seconds: Option<u64>,
        lfu_freq: Option<u8>,
    },
}

/// Reads a snapshot item by item.
pub struct FileReader<R> {
    d: Decoder<Checksummed<R>>,
    pub dialect: Dialect,
    options: ReadOptions,
    done: bool,
    /// The last framed key and payload (reused allocations).
    key: Vec<u8>,
    payload: Vec<u8>,
}

impl<R: Read> FileReader<R> {
    /// Reads and checks the header: a version this crate does not know is refused.
    pub fn new(inner: R) -> RdbResult<FileReader<R>> {
        Self::with_version_check(inner, false)
    }

    /// Reads and checks the header; `relaxed` (`rdb-version-check relaxed`) accepts a
    /// version this crate does not know, as Valkey does.
    pub fn with_version_check(inner: R, relaxed: bool) -> RdbResult<FileReader<R>> {
        let mut d = Decoder::new(Checksummed::new(inner));
        let mut magic = [0u8; 9];
        d.exact(&mut magic)?;
        let dialect = parse_magic(&magic).ok_or(RdbError::new(0, RdbErrorKind::BadHeader))?;
        let version = match dialect {
            Dialect::Redis(v) | Dialect::Valkey(v) => v,
        };
        if !dialect.is_known() && !relaxed {
            return Err(RdbError::new(0, RdbErrorKind::UnsupportedVersion(version)));
        }
        Ok(FileReader {
            d,
            dialect,
            options: ReadOptions::new(dialect),
            done: false,
            key: Vec::new(),
            payload: Vec::new(),
        })
    }

    /// Shapes the values read from now on (encoding limits from the configuration).
    pub fn set_options(&mut self, mut options: ReadOptions) {
        options.dialect = self.dialect;
        self.options = options;
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.d.offset()
    }

    /// The next item; [`Item::Eof`] once, after the checksum was verified.
    pub fn next_item(&mut self) -> RdbResult<Item> {
        let next = self
            .next(false)
            .map_err(|e| self.dialect.name_foreign_type(e))?;
        match next {
            Next::Item(item) => Ok(item),
            Next::Framed { .. } => unreachable!("framing was not asked for"),
        }
    }

    /// The next item, with the values of most types framed rather than decoded, so that
    /// the caller can decode them on other threads: see [`crate::frame`].
    pub fn next_framed(&mut self) -> RdbResult<Framed<'_>> {
        let next = self
            .next(true)
            .map_err(|e| self.dialect.name_foreign_type(e))?;
        Ok(match next {
            Next::Item(item) => Framed::Item(item),
            Next::Framed {
                type_byte,
                at,
                payload_at,
                expire_at,
                idle_seconds,
                lfu_freq,
            } => Framed::Key(FramedKey {
                key: &self.key,
                type_byte,
                payload: &self.payload,
                payload_at,
                at,
                expire_at,
                idle_seconds,
                lfu_freq,
            }),
        })
    }

    fn next(&mut self, framing: bool) -> RdbResult<Next> {
        if self.done {
            return Ok(Next::Item(Item::Eof));
        }
        let mut item_at = None;
        let mut expire_at = NO_EXPIRE;
        let mut idle_seconds = None;
        let mut lfu_freq = None;
        loop {
            let at = self.d.offset();
            let item_start = *item_at.get_or_insert(at);
            let op = self.d.u8()?;
            match op {
                opcode::EOF => return self.finish().map(|()| Next::Item(Item::Eof)),
                opcode::SELECTDB => return Ok(Next::Item(Item::SelectDb(self.d.count()?))),
                opcode::RESIZEDB => {
                    let keys = self.d.length()?;
                    let volatile = self.d.length()?;
                    return Ok(Next::Item(Item::ResizeDb { keys, volatile }));
                }
                opcode::AUX => {
                    let key = self.d.string()?;
                    let value = self.d.string()?;
                    return Ok(Next::Item(Item::Aux { key, value }));
                }
                opcode::EXPIRETIME_MS => expire_at = self.d.i64_le()?,
                opcode::EXPIRETIME => expire_at = i64::from(self.d.u32_le()?) * 1000,
                opcode::IDLE => idle_seconds = Some(self.d.length()?),
                opcode::FREQ => lfu_freq = Some(self.d.u8()?),
                opcode::FUNCTION2 => return Ok(Next::Item(Item::Function(self.d.string()?))),
                opcode::FUNCTION_PRE_GA => {
                    return Err(RdbError::new(
                        at,
                        RdbErrorKind::Unsupported("pre-release function format"),
                    ));
                }
                opcode::MODULE_AUX => {
                    return Err(RdbError::new(
                        at,
                        RdbErrorKind::Unsupported("module aux data"),
                    ));
                }
                opcode::SLOT_INFO => {
                    for _ in 0..3 {
                        self.d.length()?;
                    }
                    return Ok(Next::Item(Item::SlotInfo));
                }
                type_byte => {
                    if framing {
                        self.d.string_into(&mut self.key)?;
                        let payload_at = self.d.offset();
                        self.d.start_tee(std::mem::take(&mut self.payload));
                        let framed = frame::skip_payload(&mut self.d, type_byte, self.dialect);
                        self.payload = self.d.stop_tee();
                        let framed =
                            framed.map_err(|e| self.earliest_error(e, type_byte, payload_at))?;
                        if framed {
                            return Ok(Next::Framed {
                                type_byte,
                                at: item_start,
                                payload_at,
                                expire_at,
                                idle_seconds,
                                lfu_freq,
                            });
                        }
                    }
                    let key = if framing {
                        self.key.clone()
                    } else {
                        self.d.string()?
                    };
                    let value = match value::read_value(&mut self.d, type_byte, &self.options) {
                        Ok(value) => value,
                        // Valkey skips a key whose collection is empty; so do we.
                        Err(e) if e.kind == RdbErrorKind::EmptyKey => {
                            expire_at = NO_EXPIRE;
                            idle_seconds = None;
                            lfu_freq = None;
                            item_at = None;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    return Ok(Next::Item(Item::Key {
                        key,
                        value,
                        expire_at,
                        idle_seconds,
                        lfu_freq,
                    }));
                }
            }
        }
    }

    /// The error a start-to-end decode would report for a payload whose framing failed
    /// with `framing`: decoding the part read so far may find bad content (a repeated
    /// member, bad compressed data) before the point where the framing broke.
    fn earliest_error(&self, framing: RdbError, type_byte: u8, payload_at: u64) -> RdbError {
        let partial = &self.payload[..];
        match value::read_value(&mut Decoder::new(partial), type_byte, &self.options) {
            Err(e)
                if !(e.kind == RdbErrorKind::Truncated && e.offset == partial.len() as u64)
                    && e.kind != RdbErrorKind::EmptyKey =>
            {
                RdbError::new(payload_at + e.offset, e.kind)
            }
            _ => framing,
        }
    }

    /// Checks the trailing checksum (absent before RDB 5; zero when the writer disabled it).
    fn finish(&mut self) -> RdbResult<()> {
        self.done = true;
        let version = match self.dialect {
            Dialect::Redis(v) | Dialect::Valkey(v) => v,
        };
        if version < 5 {
            return Ok(());
        }
        let computed = self.d.get_mut().digest_so_far();
        let stored = self.d.u64_le()?;
        if stored != 0 && stored != computed {
            return Err(self.d.error(RdbErrorKind::BadChecksum { stored, computed }));
        }
        Ok(())
    }
}

fn parse_magic(magic: &[u8; 9]) -> Option<Dialect> {
    let digits = |b: &[u8]| -> Option<u32> {
        b.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if let Some(rest) = magic.strip_prefix(format::REDIS_MAGIC) {
        return digits(rest).map(Dialect::Redis);
    }
    if let Some(rest) = magic.strip_prefix(format::VALKEY_MAGIC) {
        return digits(rest).map(Dialect::Valkey);
    }
    None
}

/// Appends the checksum of `file` (everything written so far) and returns it.
pub fn append_checksum(file: &mut Vec<u8>, enabled: bool) -> u64 {
    let crc = if enabled { crc64::checksum(file) } else { 0 };
    file.extend_from_slice(&crc.to_le_bytes());
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv_store::StrValue;

    fn entry(v: &[u8], expire_at: i64) -> Entry {
        let mut e = Entry::new(Value::Str(StrValue::from_bytes(v)), 0);
        e.expire_at = expire_at;
        e
    }

    #[test]
    fn a_written_file_reads_back() {
        let mut e = Encoder::new(true);
        write_header(&mut e, Target::Rdb10);
        write_aux(&mut e, b"redis-ver", b"7.0.15");
        write_select_db(&mut e, 0);
        write_resize_db(&mut e, 2, 1);
        write_key(
            &mut e,
            b"foo",
            &entry(b"bar", NO_EXPIRE),
            None,
            Target::Rdb10,
        );
        write_select_db(&mut e, 3);
        write_key(
            &mut e,
            b"n",
            &entry(b"12345", 1_900_000_000_000),
            Some((AccessInfo::LruIdle, 7)),
            Target::Rdb10,
        );
        write_eof(&mut e);
        let mut file = e.buf;
        append_checksum(&mut file, true);

        let mut r = FileReader::new(&file[..]).expect("header");
        assert_eq!(r.dialect, Dialect::Redis(10));
        let mut items = Vec::new();
        loop {
            let item = r.next_item().expect("item");
            if item == Item::Eof {
                break;
            }
            items.push(item);
        }
        assert_eq!(items.len(), 6);
        assert_eq!(
            items[3],
            Item::Key {
                key: b"foo".to_vec(),
                value: Value::Str(StrValue::from_bytes(b"bar")),
                expire_at: NO_EXPIRE,
                idle_seconds: None,
                lfu_freq: None,
            }
        );
        assert!(matches!(
            &items[5],
            Item::Key {
                expire_at: 1_900_000_000_000,
                idle_seconds: Some(7),
                ..
            }
        ));
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut e = Encoder::new(false);
        write_header(&mut e, Target::Rdb10);
        write_select_db(&mut e, 0);
        write_key(
            &mut e,
            b"k",
            &entry(b"value", NO_EXPIRE),
            None,
            Target::Rdb10,
        );
        write_eof(&mut e);
        let mut file = e.buf;
        append_checksum(&mut file, true);
        let at = file.len() - 12;
        file[at] ^= 1;
        let mut r = FileReader::new(&file[..]).expect("header");
        let err = loop {
            match r.next_item() {
                Ok(Item::Eof) => panic!("corruption not noticed"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err.kind, RdbErrorKind::BadChecksum { .. }),
            "{err}"
        );
    }

    #[test]
    fn headers_are_recognised() {
        assert_eq!(parse_magic(b"REDIS0010"), Some(Dialect::Redis(10)));
        assert_eq!(parse_magic(b"VALKEY080"), Some(Dialect::Valkey(80)));
        assert_eq!(parse_magic(b"REDIS00x0"), None);
        assert!(FileReader::new(&b"REDIS0099"[..]).is_err());
        assert!(FileReader::new(&b"VALKEY081"[..]).is_err());
        let relaxed = FileReader::with_version_check(&b"REDIS0099"[..], true).expect("relaxed");
        assert_eq!(relaxed.dialect, Dialect::Redis(99));
        assert!(FileReader::new(&b"HELLO"[..]).is_err());
    }
}
