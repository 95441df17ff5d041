//! Hashes: written as HASH_LISTPACK (16) or HASH (4), and as Valkey 9's type 22 when
//! fields have their own expiry; read from 4, 9 (zipmap), 13 (ziplist), 16, in Valkey
//! files 22, and in Redis 7.4+ files 22 to 25. Converted as Valkey converts on load.
//!
//! Valkey's type 22 (found by experiment on valkey-server 9.1): the field count, then per
//! field its name, its value and its absolute expiry in Unix ms as eight LE bytes (-1: none).
//!
//! Redis 7.4's types, from its RDB format (no Redis 7.4 server is at hand to check against,
//! so the tests build these payloads byte by byte from the layout):
//! - 24: the earliest field expiry (eight LE bytes), the field count, then per field an RDB
//!   length `t` (0: no expiry, else the expiry is `t - 1` ms after the earliest), its name
//!   and its value. 22, from the release candidates, has no leading expiry and stores each
//!   expiry absolute.
//! - 25: the earliest field expiry, then a listpack of name, value, expiry triples (expiry
//!   absolute, 0: none). 23, from the release candidates, has no leading expiry.
//!
//! Expiries past Redis's largest (2^48 - 1 ms) are refused as corrupt, as Redis does.

use std::collections::HashSet;
use std::io::Read;

use ferrokv_store::types::hash::{FieldTable, HashLimits, HashValue, Listpack as HashPack};
use ferrokv_store::types::listpack::{self, Elem, Listpack};
use ferrokv_store::{NO_EXPIRE, Value};

use crate::decode::Decoder;
use crate::encode::Encoder;
use crate::error::{RdbError, RdbErrorKind, RdbResult};
use crate::format::kind;
use crate::value::{ReadOptions, Target, bounded, read_blob};
use crate::{ziplist, zipmap};

/// Expiry of a field without one in Valkey's type 22.
const NO_FIELD_EXPIRE: i64 = -1;

/// The latest field expiry Redis stores (its expiry times have 48 bits).
const REDIS_MAX_FIELD_EXPIRE: u64 = (1 << 48) - 1;

/// Where and how a pairwise hash stores its fields' expiry.
#[derive(Clone, Copy)]
enum FieldExpiry {
    /// Type 4: none.
    Absent,
    /// Valkey's 22: after the value, eight LE bytes, -1 for none.
    ValkeyTrailing,
    /// Redis 7.4's 22 (`base` None) and 24: before the field, an RDB length, 0 for none;
    /// absolute, or `base + t - 1`.
    RedisLeading { base: Option<u64> },
}

pub fn write_hash(e: &mut Encoder, hash: &HashValue, target: Target) {
    match hash {
        HashValue::Listpack(pack) => {
            e.u8(kind::HASH_LISTPACK);
            let mut lp = Listpack::new();
            for (field, value) in pack.iter() {
                lp.push_back(field);
                lp.push_back(value);
            }
            e.string(&lp.to_blob());
        }
        HashValue::Table(table) if target == Target::Valkey80 && table.volatile_len() > 0 => {
            e.u8(kind::VALKEY_HASH_2);
            e.length(table.len() as u64);
            for f in table.iter() {
                e.string(f.field);
                e.string(f.value);
                let expire = if f.expire_at == NO_EXPIRE {
                    NO_FIELD_EXPIRE
                } else {
                    f.expire_at
                };
                e.i64_le(expire);
            }
        }
        HashValue::Table(table) => {
            e.u8(kind::HASH);
            e.length(table.len() as u64);
            for f in table.iter() {
                e.string(f.field);
                e.string(f.value);
            }
        }
    }
}

pub fn read_hash<R: Read>(
    d: &mut Decoder<R>,
    type_byte: u8,
    options: &ReadOptions,
) -> RdbResult<Value> {
    let limits = options.hash;
    let hash = match type_byte {
        kind::HASH => read_pairs(d, limits, FieldExpiry::Absent)?,
        kind::VALKEY_HASH_2 if options.dialect.has_valkey_hash() => {
            read_pairs(d, limits, FieldExpiry::ValkeyTrailing)?
        }
        kind::REDIS_HASH_METADATA_PRE_GA | kind::REDIS_HASH_METADATA
            if options.dialect.has_redis_field_expiry() =>
        {
            let base = if type_byte == kind::REDIS_HASH_METADATA {
                Some(d.u64_le()?)
            } else {
                None
            };
            read_pairs(d, limits, FieldExpiry::RedisLeading { base })?
        }
        kind::REDIS_HASH_LISTPACK_EX_PRE_GA | kind::REDIS_HASH_LISTPACK_EX
            if options.dialect.has_redis_field_expiry() =>
        {
            if type_byte == kind::REDIS_HASH_LISTPACK_EX {
                // The earliest expiry is also in the listpack: only a hint for Redis.
                d.u64_le()?;
            }
            read_listpack_ex(d, limits)?
        }
        kind::HASH_ZIPMAP => {
            let (at, blob) = read_blob(d)?;
            let pairs =
                zipmap::pairs(&blob).ok_or_else(|| RdbError::corrupt(at, "invalid zipmap"))?;
            let longest = pairs
                .iter()
                .map(|(f, v)| f.len().max(v.len()))
                .max()
                .unwrap_or(0);
            let pairs = pairs
                .iter()
                .map(|(f, v)| (f.to_vec(), v.to_vec()))
                .collect();
            from_pairs(at, pairs, limits, longest)?
        }
        kind::HASH_ZIPLIST | kind::HASH_LISTPACK => {
            let (at, blob) = read_blob(d)?;
            let elements = if type_byte == kind::HASH_ZIPLIST {
                ziplist::entries(&blob).ok_or_else(|| RdbError::corrupt(at, "invalid ziplist"))?
            } else {
                listpack::blob_elements(&blob)
                    .ok_or_else(|| RdbError::corrupt(at, "invalid listpack"))?
            };
            if !elements.len().is_multiple_of(2) {
                return Err(RdbError::corrupt(at, "odd number of hash entries"));
            }
            if type_byte == kind::HASH_LISTPACK && elements.len() / 2 <= limits.max_entries {
                return pack_of(at, &elements, blob.len()).map(Value::Hash);
            }
            let pairs: Vec<_> = elements
                .chunks_exact(2)
                .map(|pair| (pair[0].to_vec(), pair[1].to_vec()))
                .collect();
            // A ziplist is converted on the value limit too; a listpack only on the count
            // (measured on valkey-server 9.1).
            let longest = if type_byte == kind::HASH_ZIPLIST {
                pairs
                    .iter()
                    .map(|(f, v)| f.len().max(v.len()))
                    .max()
                    .unwrap_or(0)
            } else {
                0
            };
            from_pairs(at, pairs, limits, longest)?
        }
        other => return Err(d.error(RdbErrorKind::UnknownType(other))),
    };
    if hash.is_empty() {
        return Err(d.error(RdbErrorKind::EmptyKey));
    }
    Ok(Value::Hash(hash))
}

/// A compact hash straight from a blob's elements (fields and values alternating), refusing
/// a repeated field; `bytes` (the blob's size) sizes the buffer once.
fn pack_of(at: u64, elements: &[Elem<'_>], bytes: usize) -> RdbResult<HashValue> {
    let mut pack = HashPack::with_capacity(bytes);
    let (mut field_text, mut value_text) = (itoa::Buffer::new(), itoa::Buffer::new());
    for pair in elements.chunks_exact(2) {
        let field = text_of(pair[0], &mut field_text);
        let value = text_of(pair[1], &mut value_text);
        if !pack.set(field, value) {
            return Err(RdbError::corrupt(at, "duplicate hash field"));
        }
    }
    if pack.is_empty() {
        return Err(RdbError::new(at, RdbErrorKind::EmptyKey));
    }
    Ok(HashValue::Listpack(pack))
}

/// An element's text, formatted in `buf` when it is an integer.
fn text_of<'a>(elem: Elem<'a>, buf: &'a mut itoa::Buffer) -> &'a [u8] {
    match elem {
        Elem::Int(n) => buf.format(n).as_bytes(),
        Elem::Str(s) => s,
    }
}

/// A hash from pairs, refusing a repeated field: compact unless it has more fields than
/// `hash-max-listpack-entries` or a string longer than `longest` allows.
fn from_pairs(
    at: u64,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    limits: HashLimits,
    longest: usize,
) -> RdbResult<HashValue> {
    let mut seen = HashSet::with_capacity(pairs.len());
    if !pairs.iter().all(|(field, _)| seen.insert(field.as_slice())) {
        return Err(RdbError::corrupt(at, "duplicate hash field"));
    }
    if pairs.len() > limits.max_entries || longest > limits.max_value {
        let mut table = FieldTable::with_capacity(pairs.len());
        for (field, value) in &pairs {
            table.set(field, value, NO_EXPIRE);
        }
        return Ok(HashValue::Table(Box::new(table)));
    }
    let mut pack = HashPack::default();
    for (field, value) in &pairs {
        pack.set(field, value);
    }
    Ok(HashValue::Listpack(pack))
}

/// Types 4, 22 and 24: a count, then fields and values one by one, with their expiry where
/// `expiry` says. Valkey starts a listpack when the count fits and converts at the first
/// long string; a field with an expiry needs the table.
fn read_pairs<R: Read>(
    d: &mut Decoder<R>,
    limits: HashLimits,
    expiry: FieldExpiry,
) -> RdbResult<HashValue> {
    let count = d.count()?;
    let mut hash = if count > limits.max_entries {
        HashValue::Table(Box::new(FieldTable::with_capacity(bounded(count))))
    } else {
        HashValue::default()
    };
    for _ in 0..count {
        let at = d.offset();
        let mut expire_at = NO_EXPIRE;
        if let FieldExpiry::RedisLeading { base } = expiry {
            let stored = d.length()?;
            let absolute = match (stored, base) {
                (0, _) => None,
                (t, Some(base)) => Some(base.checked_add(t - 1)),
                (t, None) => Some(Some(t)),
            };
            if let Some(ms) = absolute {
                expire_at = redis_field_expire(at, ms)?;
            }
        }
        let field = d.string()?;
        let value = d.string()?;
        if let FieldExpiry::ValkeyTrailing = expiry {
            expire_at = match d.i64_le()? {
                NO_FIELD_EXPIRE => NO_EXPIRE,
                ms => ms,
            };
        }
        if field.len() > limits.max_value
            || value.len() > limits.max_value
            || expire_at != NO_EXPIRE
        {
            hash.convert_to_table();
        }
        let fresh = match &mut hash {
            HashValue::Listpack(pack) => pack.set(&field, &value),
            HashValue::Table(table) => table.set(&field, &value, expire_at).is_none(),
        };
        if !fresh {
            return Err(RdbError::corrupt(at, "duplicate hash field"));
        }
    }
    Ok(hash)
}

/// A Redis field expiry as this store keeps it, refusing what Redis would (an overflow
/// included).
fn redis_field_expire(at: u64, ms: Option<u64>) -> RdbResult<i64> {
    match ms {
        Some(ms) if ms <= REDIS_MAX_FIELD_EXPIRE => Ok(ms as i64),
        _ => Err(RdbError::corrupt(at, "invalid hash field expiry")),
    }
}

/// Redis 7.4's types 23 and 25 after their leading expiry: a listpack of field, value and
/// absolute expiry triples (0: none). Fields without an expiry stay compact when they fit.
fn read_listpack_ex<R: Read>(d: &mut Decoder<R>, limits: HashLimits) -> RdbResult<HashValue> {
    let (at, blob) = read_blob(d)?;
    let elements =
        listpack::blob_elements(&blob).ok_or_else(|| RdbError::corrupt(at, "invalid listpack"))?;
    if !elements.len().is_multiple_of(3) {
        return Err(RdbError::corrupt(at, "hash listpack is not in triples"));
    }
    let mut hash = if elements.len() / 3 > limits.max_entries {
        HashValue::Table(Box::new(FieldTable::with_capacity(elements.len() / 3)))
    } else {
        HashValue::default()
    };
    let (mut field_text, mut value_text) = (itoa::Buffer::new(), itoa::Buffer::new());
    for triple in elements.chunks_exact(3) {
        let expire_at = match triple[2] {
            Elem::Int(0) => NO_EXPIRE,
            Elem::Int(ms) => redis_field_expire(at, u64::try_from(ms).ok())?,
            Elem::Str(_) => return Err(RdbError::corrupt(at, "hash field expiry is not a number")),
        };
        let field = text_of(triple[0], &mut field_text);
        let value = text_of(triple[1], &mut value_text);
        if expire_at != NO_EXPIRE {
            hash.convert_to_table();
        }
        let fresh = match &mut hash {
            HashValue::Listpack(pack) => pack.set(field, value),
            HashValue::Table(table) => table.set(field, value, expire_at).is_none(),
        };
        if !fresh {
            return Err(RdbError::corrupt(at, "duplicate hash field"));
        }
    }
    Ok(hash)
}
