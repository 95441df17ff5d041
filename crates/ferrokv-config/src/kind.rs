//! What kind of value a directive holds, and how each kind is parsed, printed and rewritten.

use crate::values;

/// How a directive's value is read and written.
pub enum Kind {
    /// `yes` / `no`.
    Bool,
    /// A strict integer in `[min, max]`, then raised or lowered into `[lo, hi]` (Valkey
    /// silently clamps a few directives, such as `hz`).
    Int {
        min: i64,
        max: i64,
        lo: i64,
        hi: i64,
    },
    /// Bytes with an optional unit, in `[min, max]`, then raised to at least `lo`.
    Memory { min: i64, max: i64, lo: i64 },
    /// Bytes with an optional unit, anywhere in 0..=u64::MAX (Valkey's `maxmemory` is an
    /// unsigned long long).
    UnsignedMemory,
    /// Bytes, or a percentage written `N%` (stored as `-N`).
    MemoryOrPercent,
    /// One word of a fixed set; printed as the set spells it.
    Enum(&'static [&'static str]),
    /// An octal number (file permissions).
    Octal,
    /// Free text.
    Str,
    /// A space-separated list of words (`bind`).
    Words,
    /// A grammar of its own: the parser gets the new text and the current canonical text.
    Custom(fn(&str, &str) -> Result<String, String>),
}

impl Kind {
    pub const fn int(min: i64, max: i64) -> Kind {
        Kind::Int {
            min,
            max,
            lo: min,
            hi: max,
        }
    }

    pub const fn memory(min: i64, max: i64) -> Kind {
        Kind::Memory { min, max, lo: min }
    }

    /// Whether CONFIG REWRITE quotes the value (free text is quoted, numbers and words not).
    pub fn quoted_in_rewrite(&self) -> bool {
        matches!(self, Kind::Str)
    }
}

/// The typed field behind a directive: parsed from and printed to text according to its kind.
pub trait FieldValue: Sized {
    fn parse(kind: &Kind, text: &str, current: &Self) -> Result<Self, String>;
    fn print(kind: &Kind, value: &Self) -> String;
}

const MISMATCH: &str = "internal error: directive kind does not fit its field";

impl FieldValue for bool {
    fn parse(kind: &Kind, text: &str, _current: &bool) -> Result<bool, String> {
        match kind {
            Kind::Bool => values::parse_bool(text),
            _ => Err(MISMATCH.into()),
        }
    }
    fn print(_kind: &Kind, value: &bool) -> String {
        values::format_bool(*value)
    }
}

impl FieldValue for i64 {
    fn parse(kind: &Kind, text: &str, _current: &i64) -> Result<i64, String> {
        match *kind {
            Kind::Int { min, max, lo, hi } => Ok(values::parse_int(text, min, max)?.clamp(lo, hi)),
            Kind::Memory { min, max, lo } => Ok(values::parse_memory(text, min, max)?.max(lo)),
            Kind::MemoryOrPercent => values::parse_memory_or_percent(text),
            Kind::Octal => values::parse_octal(text),
            _ => Err(MISMATCH.into()),
        }
    }
    fn print(kind: &Kind, value: &i64) -> String {
        match kind {
            Kind::MemoryOrPercent => values::format_memory_or_percent(*value),
            Kind::Octal => format!("{value:o}"),
            _ => value.to_string(),
        }
    }
}

impl FieldValue for u64 {
    fn parse(kind: &Kind, text: &str, _current: &u64) -> Result<u64, String> {
        match kind {
            Kind::UnsignedMemory => values::parse_memory_u64(text)
                .ok_or_else(|| "argument must be a memory value".into()),
            _ => Err(MISMATCH.into()),
        }
    }
    fn print(_kind: &Kind, value: &u64) -> String {
        value.to_string()
    }
}

impl FieldValue for String {
    fn parse(kind: &Kind, text: &str, current: &String) -> Result<String, String> {
        match kind {
            Kind::Str => Ok(text.to_string()),
            Kind::Enum(choices) => values::parse_enum(text, choices).map(str::to_string),
            Kind::Custom(parse) => parse(text, current),
            _ => Err(MISMATCH.into()),
        }
    }
    fn print(_kind: &Kind, value: &String) -> String {
        value.clone()
    }
}

impl FieldValue for Vec<String> {
    fn parse(kind: &Kind, text: &str, _current: &Vec<String>) -> Result<Vec<String>, String> {
        match kind {
            Kind::Words if text.is_empty() => Ok(Vec::new()),
            Kind::Words => Ok(text.split(' ').map(str::to_string).collect()),
            _ => Err(MISMATCH.into()),
        }
    }
    fn print(_kind: &Kind, value: &Vec<String>) -> String {
        value.join(" ")
    }
}
