//! Values stored under keys.
//!
//! Each data type is one variant; the collection types of the data-types issue are added as
//! variants of their own, each in its own module, with compact and large encodings.

use ferrokv_protocol::number::parse_i64;

use crate::types::hash::HashValue;
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::stream::Stream;
use crate::types::zset::ZSet;

fn format_i64(n: i64) -> String {
    itoa::Buffer::new().format(n).to_owned()
}

/// The type of a value as TYPE and SCAN ... TYPE name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    String,
    List,
    Set,
    ZSet,
    Hash,
    Stream,
}

impl ObjectType {
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::String => "string",
            ObjectType::List => "list",
            ObjectType::Set => "set",
            ObjectType::ZSet => "zset",
            ObjectType::Hash => "hash",
            ObjectType::Stream => "stream",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<ObjectType> {
        let t = match name.to_ascii_lowercase().as_slice() {
            b"string" => ObjectType::String,
            b"list" => ObjectType::List,
            b"set" => ObjectType::Set,
            b"zset" => ObjectType::ZSet,
            b"hash" => ObjectType::Hash,
            b"stream" => ObjectType::Stream,
            _ => return None,
        };
        Some(t)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(StrValue),
    Set(SetValue),
    List(ListValue),
    Hash(HashValue),
    ZSet(ZSet),
    Stream(Box<Stream>),
}

impl Value {
    pub fn object_type(&self) -> ObjectType {
        match self {
            Value::Str(_) => ObjectType::String,
            Value::Set(_) => ObjectType::Set,
            Value::List(_) => ObjectType::List,
            Value::Hash(_) => ObjectType::Hash,
            Value::ZSet(_) => ObjectType::ZSet,
            Value::Stream(_) => ObjectType::Stream,
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::Set(s) => s.encoding(),
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// The work freeing the value takes, counted as Valkey counts it (about one allocation
    /// each, found in constant time): UNLINK hands a value above 64 to the background freer.
    /// A compact encoding is one allocation; a stream counts its nodes, and each consumer
    /// group with a PEL the size of the first group's.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.node_count(),
            Value::Set(s) if s.encoding() == "hashtable" => s.len(),
            Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
            Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
            Value::Stream(s) => {
                let groups = s
                    .groups
                    .values()
                    .next()
                    .map_or(0, |first| s.groups.len() * (1 + first.pending.len()));
                s.node_count() + groups
            }
            _ => 1,
        }
    }

    /// Approximate bytes this value occupies beyond its entry, for MEMORY USAGE.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(StrValue::Int(_)) => 0,
            Value::Str(StrValue::Embstr(b)) | Value::Str(StrValue::Raw(b)) => b.capacity(),
            Value::Set(s) => s.heap_size(),
            Value::List(l) => std::mem::size_of::<ListValue>() + l.heap_size(),
            Value::Hash(h) => h.heap_size(),
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(s) => s.heap_size(),
        }
    }

    /// Whether parts of the value (hash fields) have a TTL of their own, which INFO's
    /// `keys_with_volatile_items` counts and the active expiry reclaims.
    pub fn has_volatile_items(&self) -> bool {
        match self {
            Value::Hash(h) => h.volatile_len() > 0,
            _ => false,
        }
    }

    /// The earliest expiry among the value's items, if any has a TTL.
    pub fn next_item_expiry(&self) -> Option<i64> {
        match self {
            Value::Hash(h) => h.next_expiry(),
            _ => None,
        }
    }

    /// Reclaims up to `max` items expired at `now_ms`; returns how many.
    pub fn expire_items(&mut self, now_ms: i64, max: usize) -> usize {
        self.expire_items_named(now_ms, max, None)
    }

    /// [`Self::expire_items`], adding the reclaimed items' names to `names` when given.
    pub fn expire_items_named(
        &mut self,
        now_ms: i64,
        max: usize,
        names: Option<&mut Vec<bytes::Bytes>>,
    ) -> usize {
        match self {
            Value::Hash(h) => h.expire_due_named(now_ms, max, names),
            _ => 0,
        }
    }

    /// A collection left without elements (its key must go).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Hash(h) => h.is_empty(),
            _ => false,
        }
    }
}

/// Longest string given the `embstr` encoding by [`StrValue::from_bytes`], which does not
/// know the key the value will be stored under.
pub const EMBSTR_SIZE_LIMIT: usize = 44;

/// Bytes of one allocation that Valkey 9.1 fills with the object header, the key, an
/// optional expiry slot and an `embstr` value.
const EMBEDDED_ALLOCATION: usize = 128;

/// Whether Valkey 9.1 stores a fresh string value of `value_len` bytes under a key of
/// `key_len` bytes as `embstr`.
///
/// Valkey 9.1 puts the key, the expiry (when the object has a slot for one) and a short
/// value into one 128-byte allocation after an 8-byte header. The key takes a one-byte
/// prefix, an sds header (1 byte below 32 bytes, 3 bytes up to 255) and a terminator; the
/// value an sds8 header (3 bytes) and a terminator. Measured on valkey-server 9.1.2: with a
/// 1-byte key the longest embstr is 112 bytes, 104 with an expiry slot; with a 40-byte key,
/// 71. The expiry slot is present when the value replaces a key that had a TTL (even if the
/// new value clears it); a TTL set later on a fresh key does not change the encoding.
pub fn embeds_string(key_len: usize, expire_slot: bool, value_len: usize) -> bool {
    const HEADER: usize = 8;
    const EXPIRE: usize = 8;
    let key = match key_len {
        0..32 => 1 + 1 + key_len + 1,
        32..256 => 1 + 3 + key_len + 1,
        _ => 1 + 5 + key_len + 1,
    };
    let value = 3 + value_len + 1;
    let expire = if expire_slot { EXPIRE } else { 0 };
    HEADER + expire + key + value <= EMBEDDED_ALLOCATION
}

/// A string value in one of Valkey's three encodings.
#[derive(Debug, Clone, PartialEq)]
pub enum StrValue {
    /// A string that reads as a canonical 64-bit integer ("int").
    Int(i64),
    /// A short string created whole ("embstr"); it becomes `Raw` when modified in place.
    Embstr(Vec<u8>),
    /// Any other string ("raw").
    Raw(Vec<u8>),
}

/// A string value borrowed where it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrRef<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl<'a> StrRef<'a> {
    pub fn of(s: &'a StrValue) -> StrRef<'a> {
        match s {
            StrValue::Int(n) => StrRef::Int(*n),
            StrValue::Embstr(b) | StrValue::Raw(b) => StrRef::Bytes(b),
        }
    }
}

impl StrValue {
    /// The encoding Valkey picks for a string value created whole from `bytes` and stored
    /// under a key of `key_len` bytes (SET, MSET, GETSET, APPEND to a missing key ...);
    /// `expire_slot`: the value replaces a key that had a TTL (see [`embeds_string`]).
    pub fn for_key(bytes: &[u8], key_len: usize, expire_slot: bool) -> StrValue {
        Self::for_key_with(bytes, key_len, expire_slot, Vec::new)
    }

    /// [`StrValue::for_key`] with the bytes copied into the buffer `buffer` gives (cleared
    /// first; asked for only when the value is not an integer) instead of a new allocation:
    /// see [`crate::Db::string_buffer`].
    pub fn for_key_with(
        bytes: &[u8],
        key_len: usize,
        expire_slot: bool,
        buffer: impl FnOnce() -> Vec<u8>,
    ) -> StrValue {
        if let Some(n) = Self::as_int(bytes) {
            return StrValue::Int(n);
        }
        let mut buf = buffer();
        buf.clear();
        buf.extend_from_slice(bytes);
        Self::text_for_key(buf, key_len, expire_slot)
    }

    /// A value that is never integer-encoded even if it reads as one (INCRBYFLOAT's
    /// result), `embstr` or `raw` by the same rule as [`StrValue::for_key`].
    pub fn text_for_key(bytes: Vec<u8>, key_len: usize, expire_slot: bool) -> StrValue {
        if embeds_string(key_len, expire_slot, bytes.len()) {
            StrValue::Embstr(bytes)
        } else {
            StrValue::Raw(bytes)
        }
    }

    /// Integers of up to 20 characters in canonical form are stored as `int`.
    fn as_int(bytes: &[u8]) -> Option<i64> {
        if bytes.len() <= 20 {
            parse_i64(bytes)
        } else {
            None
        }
    }

    /// The encoding of a string created from `bytes` without knowing its key (values not
    /// stored under a key; stored values use [`StrValue::for_key`]).
    pub fn from_bytes(bytes: &[u8]) -> StrValue {
        if bytes.len() <= 20
            && let Some(n) = parse_i64(bytes)
        {
            return StrValue::Int(n);
        }
        if bytes.len() <= EMBSTR_SIZE_LIMIT {
            StrValue::Embstr(bytes.to_vec())
        } else {
            StrValue::Raw(bytes.to_vec())
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Embstr(_) => "embstr",
            StrValue::Raw(_) => "raw",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => format_i64(*n).len(),
            StrValue::Embstr(b) | StrValue::Raw(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The string's bytes; integers are formatted.
    pub fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            StrValue::Int(n) => std::borrow::Cow::Owned(format_i64(*n).into_bytes()),
            StrValue::Embstr(b) | StrValue::Raw(b) => std::borrow::Cow::Borrowed(b),
        }
    }

    /// Mutable bytes for in-place edits (APPEND, SETRANGE, SETBIT); the value becomes "raw",
    /// as in Valkey.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        let bytes = match std::mem::replace(self, StrValue::Raw(Vec::new())) {
            StrValue::Int(n) => format_i64(n).into_bytes(),
            StrValue::Embstr(b) | StrValue::Raw(b) => b,
        };
        *self = StrValue::Raw(bytes);
        match self {
            StrValue::Raw(b) => b,
            _ => unreachable!("just set to Raw"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn longest_embstr(key_len: usize, expire_slot: bool) -> Option<usize> {
        (0..200)
            .take_while(|&n| embeds_string(key_len, expire_slot, n))
            .last()
    }

    #[test]
    fn embstr_threshold_matches_valkey_9_1_measurements() {
        // (key length, longest embstr without / with an expiry slot), from valkey-server 9.1.2.
        for (key_len, plain, with_expire) in [
            (1, Some(112), Some(104)),
            (2, Some(111), Some(103)),
            (16, Some(97), Some(89)),
            (31, Some(82), Some(74)),
            (32, Some(79), Some(71)),
            (40, Some(71), Some(63)),
            (100, Some(11), Some(3)),
            (103, Some(8), Some(0)),
            (108, Some(3), None),
            (111, Some(0), None),
            (112, None, None),
        ] {
            assert_eq!(longest_embstr(key_len, false), plain, "key {key_len}");
            assert_eq!(
                longest_embstr(key_len, true),
                with_expire,
                "key {key_len} + ttl"
            );
        }
    }

    #[test]
    fn fresh_values_pick_int_embstr_or_raw() {
        assert_eq!(StrValue::for_key(b"123", 1, false), StrValue::Int(123));
        assert_eq!(
            StrValue::for_key(b"-9223372036854775808", 1, false).encoding(),
            "int"
        );
        for not_int in [&b"12345678901234567890"[..], b"-0", b"+1", b" 1", b"01"] {
            assert_eq!(StrValue::for_key(not_int, 1, false).encoding(), "embstr");
        }
        assert_eq!(
            StrValue::for_key(&[b'a'; 112], 1, false).encoding(),
            "embstr"
        );
        assert_eq!(StrValue::for_key(&[b'a'; 113], 1, false).encoding(), "raw");
        assert_eq!(StrValue::for_key(&[b'a'; 105], 1, true).encoding(), "raw");
        // INCRBYFLOAT's results are never int-encoded.
        assert_eq!(
            StrValue::text_for_key(b"3".to_vec(), 1, false).encoding(),
            "embstr"
        );
    }

    #[test]
    fn in_place_edits_make_raw() {
        let mut v = StrValue::Int(12);
        v.make_raw().push(b'3');
        assert_eq!(v, StrValue::Raw(b"123".to_vec()));
        let mut v = StrValue::for_key(b"ab", 1, false);
        v.make_raw();
        assert_eq!(v.encoding(), "raw");
    }
}
