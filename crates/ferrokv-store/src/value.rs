//! Values stored under keys.
//!
//! Each data type is one variant; the collection types of the data-types issue are added as
//! variants of their own, each in its own module, with compact and large encodings.

use ferrokv_protocol::number::parse_i64;

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
}

impl Value {
    pub fn object_type(&self) -> ObjectType {
        match self {
            Value::Str(_) => ObjectType::String,
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
        }
    }

    /// Approximate bytes this value occupies beyond its entry, for MEMORY USAGE.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(StrValue::Int(_)) => 0,
            Value::Str(StrValue::Embstr(b)) | Value::Str(StrValue::Raw(b)) => b.capacity(),
        }
    }
}

/// Longest string stored with the `embstr` encoding when created whole by SET and friends.
pub const EMBSTR_SIZE_LIMIT: usize = 44;

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

impl StrValue {
    /// The encoding Valkey picks for a string created from `bytes` (SET, MSET ...).
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
