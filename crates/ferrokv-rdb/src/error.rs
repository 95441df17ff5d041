//! Errors found while reading RDB data. Every error carries the byte offset where the bad
//! data starts, so that a corrupt file can be reported as "file X, offset N".

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdbErrorKind {
    /// The data ended in the middle of an item.
    Truncated,
    /// The file does not start with a known magic and version.
    BadHeader,
    /// A version this reader does not know (newer than it can read).
    UnsupportedVersion(u32),
    /// A value type byte this reader does not know.
    UnknownType(u8),
    /// A type byte this reader does not know in a file of a version Valkey calls foreign
    /// (12 to 79: Redis's numbering after the fork), which may give it another meaning.
    ForeignType { type_byte: u8, version: u32 },
    /// An opcode or encoding this reader does not know.
    UnknownEncoding(u8),
    /// The stored checksum does not match the data.
    BadChecksum { stored: u64, computed: u64 },
    /// The bytes parse but describe something impossible (a length past the data, a
    /// listpack whose header lies, a duplicate member ...).
    Corrupt(&'static str),
    /// An item this server cannot hold (a module value, a module aux field).
    Unsupported(&'static str),
    /// An I/O error from the underlying reader (not end of data).
    Io(String),
    /// A collection with no elements: a snapshot reader skips the key (as Valkey does),
    /// RESTORE refuses the payload.
    EmptyKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    pub offset: u64,
    pub kind: RdbErrorKind,
}

pub type RdbResult<T> = Result<T, RdbError>;

impl RdbError {
    pub fn new(offset: u64, kind: RdbErrorKind) -> RdbError {
        RdbError { offset, kind }
    }

    pub fn corrupt(offset: u64, what: &'static str) -> RdbError {
        RdbError::new(offset, RdbErrorKind::Corrupt(what))
    }
}

impl fmt::Display for RdbErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbErrorKind::Truncated => write!(f, "unexpected end of data"),
            RdbErrorKind::BadHeader => write!(f, "wrong signature, not an RDB file"),
            RdbErrorKind::UnsupportedVersion(v) => write!(f, "can't handle RDB format version {v}"),
            RdbErrorKind::UnknownType(t) => write!(f, "unknown value type {t}"),
            RdbErrorKind::ForeignType { type_byte, version } => write!(
                f,
                "can't handle foreign type or opcode {type_byte} in RDB with version {version}"
            ),
            RdbErrorKind::UnknownEncoding(e) => write!(f, "unknown encoding or opcode {e}"),
            RdbErrorKind::BadChecksum { stored, computed } => write!(
                f,
                "wrong checksum: stored {stored:016x}, computed {computed:016x}"
            ),
            RdbErrorKind::Corrupt(what) => write!(f, "corrupt data: {what}"),
            RdbErrorKind::Unsupported(what) => write!(f, "unsupported: {what}"),
            RdbErrorKind::Io(e) => write!(f, "{e}"),
            RdbErrorKind::EmptyKey => write!(f, "empty collection"),
        }
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.kind, self.offset)
    }
}

impl std::error::Error for RdbError {}
