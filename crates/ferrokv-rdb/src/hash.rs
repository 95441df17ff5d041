//! Hashes: written as HASH_LISTPACK (16) or HASH (4), and as Valkey 9's type 22 when
//! fields have their own expiry; read from 4, 9 (zipmap), 13 (ziplist), 16 and, in Valkey
//! files, 22. Converted as Valkey converts on load.
//!
//! Type 22 (found by experiment on valkey-server 9.1): the field count, then per field its
//! name, its value and its absolute expiry in Unix ms as eight LE bytes (-1: none).

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

/// Expiry of a field without one in type 22.
const NO_FIELD_EXPIRE: i64 = -1;

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
        kind::HASH => read_pairs(d, limits, false)?,
        kind::VALKEY_HASH_2 => read_pairs(d, limits, true)?,
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

/// Type 4 (and 22 with `with_expiry`): a count, then fields and values one by one. Valkey
/// starts a listpack when the count fits and converts at the first long string.
fn read_pairs<R: Read>(
    d: &mut Decoder<R>,
    limits: HashLimits,
    with_expiry: bool,
) -> RdbResult<HashValue> {
    let count = d.count()?;
    let mut hash = if count > limits.max_entries {
        HashValue::Table(Box::new(FieldTable::with_capacity(bounded(count))))
    } else {
        HashValue::default()
    };
    for _ in 0..count {
        let at = d.offset();
        let field = d.string()?;
        let value = d.string()?;
        let expire_at = if with_expiry {
            match d.i64_le()? {
                NO_FIELD_EXPIRE => NO_EXPIRE,
                ms => ms,
            }
        } else {
            NO_EXPIRE
        };
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
