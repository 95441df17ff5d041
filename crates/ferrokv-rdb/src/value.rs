//! One value: its type byte and payload, in both directions.
//!
//! Writing picks the most compact type the target reader understands (listpack forms for
//! small collections as Redis 7.0 writes them). Reading accepts every encoding any
//! supported version wrote, and builds the value in the encoding this server would have
//! chosen for it at its size, as Valkey converts on load.

use std::io::Read;

use ferrokv_store::types::hash::HashLimits;
use ferrokv_store::types::zset::ZSetLimits;
use ferrokv_store::{ListLimits, SetLimits, StrValue, Value};

use crate::decode::{Decoder, Str};
use crate::encode::Encoder;
use crate::error::{RdbErrorKind, RdbResult};
use crate::format::{Dialect, kind};

/// What the reader of the output accepts, which bounds the type bytes a writer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// RDB 10: Redis 7.0 and every later Redis and Valkey.
    Rdb10,
    /// `VALKEY080`: Valkey 9 only (needed for hashes with field expiry).
    Valkey80,
}

impl Target {
    pub fn version(self) -> u32 {
        match self {
            Target::Rdb10 => crate::format::WRITE_VERSION,
            Target::Valkey80 => crate::format::VALKEY_VERSION,
        }
    }
}

/// Whether `value` can only be written for Valkey 9 readers.
pub fn needs_valkey(value: &Value) -> bool {
    value.has_volatile_items()
}

/// How values read back are shaped: the file's dialect, and the encoding limits of the
/// configuration (`list-max-listpack-size`, `set-max-intset-entries` ...), under which a
/// value is built in the encoding this server would give it at its size.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub dialect: Dialect,
    pub list: ListLimits,
    pub set: SetLimits,
    pub hash: HashLimits,
    pub zset: ZSetLimits,
    /// `rdb-version-check relaxed`: a file of a newer version than this crate knows is read
    /// anyway, failing only where it holds a type or opcode this crate does not know.
    pub relaxed_version: bool,
}

impl ReadOptions {
    /// Valkey 9.1's default limits.
    pub fn new(dialect: Dialect) -> ReadOptions {
        ReadOptions {
            dialect,
            list: ListLimits::new(-2, 0),
            set: SetLimits::default(),
            hash: HashLimits {
                max_entries: 512,
                max_value: 64,
            },
            zset: ZSetLimits {
                max_listpack_entries: 128,
                max_listpack_value: 64,
            },
            relaxed_version: false,
        }
    }
}

/// Most elements preallocated for on the word of a count read from the data: a corrupt
/// count must not reserve gigabytes before the data runs out.
const PREALLOC_MAX: usize = 1 << 16;

pub(crate) fn bounded(count: usize) -> usize {
    count.min(PREALLOC_MAX)
}

/// A blob (ziplist, listpack, intset ...) and the offset where it starts, for errors.
pub(crate) fn read_blob<R: Read>(d: &mut Decoder<R>) -> RdbResult<(u64, Vec<u8>)> {
    let at = d.offset();
    Ok((at, d.string()?))
}

/// Writes the type byte and the payload of `value`.
pub fn write_value(e: &mut Encoder, value: &Value, target: Target) {
    match value {
        Value::Str(s) => {
            e.u8(kind::STRING);
            write_string(e, s);
        }
        Value::Stream(s) => {
            e.u8(crate::stream::type_byte(target));
            crate::stream::write_stream(e, s, target);
        }
        Value::List(l) => crate::list::write_list(e, l),
        Value::Set(s) => crate::set::write_set(e, s, target),
        Value::Hash(h) => crate::hash::write_hash(e, h, target),
        Value::ZSet(z) => crate::zset::write_zset(e, z),
    }
}

fn write_string(e: &mut Encoder, s: &StrValue) {
    match s {
        StrValue::Int(n) => e.int_string(*n),
        other => e.string(&other.to_bytes()),
    }
}

/// Reads the payload of a value whose type byte was `type_byte`.
pub fn read_value<R: Read>(
    d: &mut Decoder<R>,
    type_byte: u8,
    options: &ReadOptions,
) -> RdbResult<Value> {
    match type_byte {
        kind::STRING => Ok(Value::Str(match d.string_or_int()? {
            Str::Int(n) => StrValue::Int(n),
            Str::Bytes(b) => StrValue::from_bytes(&b),
        })),
        kind::STREAM_LISTPACKS | kind::STREAM_LISTPACKS_2 | kind::STREAM_LISTPACKS_3 => Ok(
            Value::Stream(Box::new(crate::stream::read_stream(d, type_byte)?)),
        ),
        kind::LIST | kind::LIST_ZIPLIST | kind::LIST_QUICKLIST | kind::LIST_QUICKLIST_2 => {
            crate::list::read_list(d, type_byte, options)
        }
        kind::SET | kind::SET_INTSET | kind::SET_LISTPACK => {
            crate::set::read_set(d, type_byte, options)
        }
        kind::HASH | kind::HASH_ZIPMAP | kind::HASH_ZIPLIST | kind::HASH_LISTPACK => {
            crate::hash::read_hash(d, type_byte, options)
        }
        kind::VALKEY_HASH_2 if options.dialect.has_valkey_hash() => {
            crate::hash::read_hash(d, type_byte, options)
        }
        kind::REDIS_HASH_METADATA_PRE_GA
        | kind::REDIS_HASH_LISTPACK_EX_PRE_GA
        | kind::REDIS_HASH_METADATA
        | kind::REDIS_HASH_LISTPACK_EX
            if options.dialect.has_redis_field_expiry() =>
        {
            crate::hash::read_hash(d, type_byte, options)
        }
        kind::ZSET | kind::ZSET_2 | kind::ZSET_ZIPLIST | kind::ZSET_LISTPACK => {
            crate::zset::read_zset(d, type_byte, options)
        }
        kind::MODULE_PRE_GA | kind::MODULE_2 => {
            Err(d.error(RdbErrorKind::Unsupported("module value")))
        }
        other => Err(d.error(RdbErrorKind::UnknownType(other))),
    }
}
