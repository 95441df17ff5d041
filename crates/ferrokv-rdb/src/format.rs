//! The numbers of the format: versions, opcodes, value type bytes and length encodings.

/// The version this crate writes by default: Redis 7.0's, which every reader we care about
/// (Redis 7.x, Valkey 7 to 9) accepts. Types that version cannot express (hashes with field
/// expiry) need [`VALKEY_VERSION`].
pub const WRITE_VERSION: u32 = 10;
/// The newest `REDIS00NN` version this crate reads.
pub const MAX_REDIS_VERSION: u32 = 12;
/// Valkey 9 writes `VALKEY080`: its own numbering, above Redis's, so that its new types
/// (type 22, hashes with field expiry) are never confused with Redis 7.4's.
pub const VALKEY_VERSION: u32 = 80;
pub const REDIS_MAGIC: &[u8] = b"REDIS";
pub const VALKEY_MAGIC: &[u8] = b"VALKEY";

/// Opcodes that introduce something other than a key.
pub mod opcode {
    /// Valkey 8: slot info hint (cluster), ignored on load.
    pub const SLOT_INFO: u8 = 0xF4;
    /// A function library (Redis 7.0 GA and later, Valkey).
    pub const FUNCTION2: u8 = 0xF5;
    /// Redis 7.0's release candidates' function format, never in a released version.
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
    pub const EOF: u8 = 0xFF;
}

/// Value type bytes.
pub mod kind {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// RDB 11 (Redis 7.2): not readable by Redis 7.0.
    pub const SET_LISTPACK: u8 = 20;
    /// RDB 11 (Redis 7.2): not readable by Redis 7.0.
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// In a `VALKEY080` file: a hash whose fields may carry their own expiry. (In a
    /// `REDIS0012` file 22 to 25 are Redis 7.4's hash-metadata types, a different layout.)
    pub const VALKEY_HASH_2: u8 = 22;
    /// In a `REDIS0012` file (Redis 7.4 release candidates): a hash whose fields may carry
    /// an absolute expiry, field by field.
    pub const REDIS_HASH_METADATA_PRE_GA: u8 = 22;
    /// In a `REDIS0012` file (Redis 7.4 release candidates): a listpack of field, value and
    /// expiry triples.
    pub const REDIS_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    /// In a `REDIS0012` file (Redis 7.4 and later): as 22, led by the hash's earliest field
    /// expiry, against which each field's expiry is stored.
    pub const REDIS_HASH_METADATA: u8 = 24;
    /// In a `REDIS0012` file (Redis 7.4 and later): as 23, led by the earliest field expiry.
    pub const REDIS_HASH_LISTPACK_EX: u8 = 25;
}

/// The top two bits of a length's first byte.
pub mod len {
    pub const BITS_6: u8 = 0;
    pub const BITS_14: u8 = 1;
    /// `0x80`: a 32-bit big-endian length follows; `0x81`: a 64-bit one.
    pub const WIDE: u8 = 2;
    pub const LEN_32: u8 = 0x80;
    pub const LEN_64: u8 = 0x81;
    /// The low six bits name a special string encoding.
    pub const ENCODED: u8 = 3;
    pub const ENC_INT8: u8 = 0;
    pub const ENC_INT16: u8 = 1;
    pub const ENC_INT32: u8 = 2;
    pub const ENC_LZF: u8 = 3;
}

/// Which numbering a file's version follows: the meaning of type bytes 22 and up differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Redis(u32),
    Valkey(u32),
}

impl Dialect {
    /// Whether this crate knows the version (a newer one is read only when relaxed).
    pub fn is_known(self) -> bool {
        match self {
            Dialect::Redis(v) => (1..=MAX_REDIS_VERSION).contains(&v),
            Dialect::Valkey(v) => v == VALKEY_VERSION,
        }
    }

    /// An unknown type byte in a file of a foreign version (Redis's numbering from 12 up to
    /// Valkey's own 80) is reported as such: Valkey's wording, which its tests look for.
    pub fn name_foreign_type(self, e: crate::RdbError) -> crate::RdbError {
        match (self, &e.kind) {
            (Dialect::Redis(version), crate::error::RdbErrorKind::UnknownType(type_byte))
                if (MAX_REDIS_VERSION..VALKEY_VERSION).contains(&version) =>
            {
                crate::RdbError::new(
                    e.offset,
                    crate::error::RdbErrorKind::ForeignType {
                        type_byte: *type_byte,
                        version,
                    },
                )
            }
            _ => e,
        }
    }

    /// Whether type byte 22 means Valkey's hash with field expiry.
    pub fn is_valkey(self) -> bool {
        matches!(self, Dialect::Valkey(_))
    }

    /// Whether type byte 22 is read as Valkey's hash with field expiry: in Valkey files, and
    /// in Redis-numbered data older than RDB 12, where no Redis type 22 exists (Valkey 9.1's
    /// RESTORE accepts its type 22 under version 10, so we do too).
    pub fn has_valkey_hash(self) -> bool {
        match self {
            Dialect::Valkey(_) => true,
            Dialect::Redis(v) => v < 12,
        }
    }

    /// Whether type bytes 22 to 25 are Redis 7.4's hashes with field expiry.
    pub fn has_redis_field_expiry(self) -> bool {
        matches!(self, Dialect::Redis(v) if v >= 12)
    }
}
