//! One value: its type byte and payload, in both directions.
//!
//! Writing picks the most compact type the target reader understands (listpack forms for
//! small collections as Redis 7.0 writes them). Reading accepts every encoding any
//! supported version wrote, and builds the value in the encoding this server would have
//! chosen for it at its size, as Valkey converts on load.

use std::io::Read;

use ferrokv_store::{StrValue, Value};

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

/// How values read back are shaped; grows with the encodings that depend on configuration.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub dialect: Dialect,
}

impl ReadOptions {
    pub fn new(dialect: Dialect) -> ReadOptions {
        ReadOptions { dialect }
    }
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
        // Filled in per family (lists, sets, hashes, sorted sets, streams).
        other => unimplemented_type(e, other, target),
    }
}

fn write_string(e: &mut Encoder, s: &StrValue) {
    match s {
        StrValue::Int(n) => e.int_string(*n),
        other => e.string(&other.to_bytes()),
    }
}

fn unimplemented_type(_e: &mut Encoder, value: &Value, _target: Target) {
    unreachable!("RDB encoding of {:?} not written yet", value.object_type())
}

/// Reads the payload of a value whose type byte was `type_byte`.
pub fn read_value<R: Read>(
    d: &mut Decoder<R>,
    type_byte: u8,
    options: &ReadOptions,
) -> RdbResult<Value> {
    let _ = options;
    match type_byte {
        kind::STRING => Ok(Value::Str(match d.string_or_int()? {
            Str::Int(n) => StrValue::Int(n),
            Str::Bytes(b) => StrValue::from_bytes(&b),
        })),
        kind::STREAM_LISTPACKS | kind::STREAM_LISTPACKS_2 | kind::STREAM_LISTPACKS_3 => Ok(
            Value::Stream(Box::new(crate::stream::read_stream(d, type_byte)?)),
        ),
        kind::MODULE_PRE_GA | kind::MODULE_2 => {
            Err(d.error(RdbErrorKind::Unsupported("module value")))
        }
        other => Err(d.error(RdbErrorKind::UnknownType(other))),
    }
}
