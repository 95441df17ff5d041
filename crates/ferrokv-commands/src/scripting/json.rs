//! `cjson`: JSON encode/decode with lua-cjson's rules (the library Valkey bundles):
//! numbers printed with `%.14g`, `/` escaped, tables with only positive integer keys are
//! arrays unless excessively sparse, `cjson.null` is a NULL light userdata.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::Relaxed};

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// lua-cjson's settings, kept for every script after the one that changed them (as in
/// Valkey, whose cjson module state outlives a script). Valkey has one Lua VM; here each
/// worker has its own, so the settings are the process's, shared by all of them.
static SETTINGS: std::sync::LazyLock<Arc<Settings>> =
    std::sync::LazyLock::new(|| Arc::new(Settings::new()));

struct Settings {
    encode_max_depth: AtomicUsize,
    decode_max_depth: AtomicUsize,
    encode_number_precision: AtomicUsize,
    /// 0: refuse NaN and Inf; 1: write them as `nan`/`inf`; 2: write `null`.
    encode_invalid_numbers: AtomicU8,
    decode_invalid_numbers: AtomicBool,
    encode_keep_buffer: AtomicBool,
    sparse_convert: AtomicBool,
    sparse_ratio: AtomicUsize,
    sparse_safe: AtomicUsize,
}

impl Settings {
    const fn new() -> Settings {
        Settings {
            encode_max_depth: AtomicUsize::new(1000),
            decode_max_depth: AtomicUsize::new(1000),
            encode_number_precision: AtomicUsize::new(14),
            encode_invalid_numbers: AtomicU8::new(0),
            decode_invalid_numbers: AtomicBool::new(true),
            encode_keep_buffer: AtomicBool::new(true),
            sparse_convert: AtomicBool::new(false),
            sparse_ratio: AtomicUsize::new(2),
            sparse_safe: AtomicUsize::new(10),
        }
    }
}

/// A setter's optional integer argument, within `min..=max` (lua-cjson's check and text).
fn int_option(v: Option<&Value>, min: i64, max: i64) -> mlua::Result<Option<usize>> {
    let n = match v {
        None | Some(Value::Nil) => return Ok(None),
        Some(Value::Integer(n)) => Some(*n),
        Some(Value::Number(n)) if n.fract() == 0.0 => Some(*n as i64),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(Some(n as usize)),
        _ => Err(mlua::Error::RuntimeError(format!(
            "bad argument #1 to '?' (expected integer between {min} and {max})"
        ))),
    }
}

/// A setter's optional boolean argument (`"null"` too where `allow_null`): 0, 1 or 2.
fn bool_option(v: Option<&Value>, allow_null: bool) -> mlua::Result<Option<u8>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b as u8)),
        Some(Value::String(s)) if allow_null && &s.as_bytes()[..] == b"null" => Ok(Some(2)),
        Some(other) => {
            let shown = match other {
                Value::String(s) => s.to_string_lossy().to_string(),
                other => other.type_name().to_string(),
            };
            Err(mlua::Error::RuntimeError(format!(
                "bad argument #1 to '?' (invalid option '{shown}')"
            )))
        }
    }
}

/// A setter of an integer setting within `1..=max`: sets it when given, returns it.
fn int_setter(
    lua: &Lua,
    settings: &Arc<Settings>,
    max: i64,
    field: fn(&Settings) -> &AtomicUsize,
) -> mlua::Result<mlua::Function> {
    let settings = settings.clone();
    lua.create_function(move |_, args: MultiValue| {
        let slot = field(&settings);
        if let Some(n) = int_option(args.front(), 1, max)? {
            slot.store(n, Relaxed);
        }
        Ok(slot.load(Relaxed))
    })
}

/// A setter of a boolean setting: sets it when given, returns it.
fn flag_setter(
    lua: &Lua,
    settings: &Arc<Settings>,
    field: fn(&Settings) -> &AtomicBool,
) -> mlua::Result<mlua::Function> {
    let settings = settings.clone();
    lua.create_function(move |_, args: MultiValue| {
        let slot = field(&settings);
        if let Some(b) = bool_option(args.front(), false)? {
            slot.store(b == 1, Relaxed);
        }
        Ok(slot.load(Relaxed))
    })
}

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    module(lua, SETTINGS.clone())
}

/// A cjson table on `settings`; `cjson.new()` makes another with settings of its own.
fn module(lua: &Lua, settings: Arc<Settings>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "new",
        lua.create_function(|lua, _: MultiValue| module(lua, Arc::new(Settings::new())))?,
    )?;
    let s = settings.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let mut out = Vec::new();
            encode(&v, &mut out, 0, &s).map_err(mlua::Error::RuntimeError)?;
            lua.create_string(&out)
        })?,
    )?;
    let s = settings.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, text: mlua::LuaString| {
            let bytes = text.as_bytes();
            let mut p = Parser {
                lua,
                buf: &bytes,
                pos: 0,
                depth: 0,
                max_depth: s.decode_max_depth.load(Relaxed),
                invalid_numbers: s.decode_invalid_numbers.load(Relaxed),
            };
            p.skip_ws();
            let v = p.value()?;
            p.skip_ws();
            if p.pos < p.buf.len() {
                return Err(p.error("the end", "invalid token"));
            }
            Ok(v)
        })?,
    )?;
    t.raw_set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    t.raw_set(
        "encode_max_depth",
        int_setter(lua, &settings, i32::MAX as i64, |s| &s.encode_max_depth)?,
    )?;
    t.raw_set(
        "decode_max_depth",
        int_setter(lua, &settings, i32::MAX as i64, |s| &s.decode_max_depth)?,
    )?;
    t.raw_set(
        "encode_number_precision",
        int_setter(lua, &settings, 14, |s| &s.encode_number_precision)?,
    )?;
    t.raw_set(
        "encode_keep_buffer",
        flag_setter(lua, &settings, |s| &s.encode_keep_buffer)?,
    )?;
    let s = settings.clone();
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: MultiValue| {
            if let Some(mode) = bool_option(args.front(), true)? {
                s.encode_invalid_numbers.store(mode, Relaxed);
            }
            Ok(match s.encode_invalid_numbers.load(Relaxed) {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        flag_setter(lua, &settings, |s| &s.decode_invalid_numbers)?,
    )?;
    let s = settings.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |_, args: MultiValue| {
            if let Some(b) = bool_option(args.front(), false)? {
                s.sparse_convert.store(b == 1, Relaxed);
            }
            if let Some(n) = int_option(args.get(1), 0, i32::MAX as i64)? {
                s.sparse_ratio.store(n, Relaxed);
            }
            if let Some(n) = int_option(args.get(2), 0, i32::MAX as i64)? {
                s.sparse_safe.store(n, Relaxed);
            }
            Ok((
                s.sparse_convert.load(Relaxed),
                s.sparse_ratio.load(Relaxed),
                s.sparse_safe.load(Relaxed),
            ))
        })?,
    )?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// C's `%.<precision>g`.
pub fn format_g(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let precision = precision.max(1);
    let sci = format!("{:.*e}", precision - 1, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{n:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize, settings: &Settings) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                match settings.encode_invalid_numbers.load(Relaxed) {
                    0 => return Err("Cannot serialise number: must not be NaN or Inf".into()),
                    1 => out.extend_from_slice(match *n {
                        n if n.is_nan() => b"nan",
                        n if n > 0.0 => b"inf",
                        _ => b"-inf",
                    }),
                    _ => out.extend_from_slice(b"null"),
                }
                return Ok(());
            }
            let precision = settings.encode_number_precision.load(Relaxed);
            out.extend_from_slice(format_g(*n, precision).as_bytes());
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => encode_table(t, out, depth + 1, settings)?,
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ));
        }
    }
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The array length of `t` if every key is a positive integer, `None` for an object.
fn array_length(t: &Table, settings: &Settings) -> Result<Option<usize>, String> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let index = match k {
            Value::Integer(n) if n >= 1 => n as usize,
            Value::Number(n) if n >= 1.0 && n.floor() == n => n as usize,
            _ => return Ok(None),
        };
        max = max.max(index);
        items += 1;
    }
    let ratio = settings.sparse_ratio.load(Relaxed);
    if ratio > 0 && max > items * ratio && max > settings.sparse_safe.load(Relaxed) {
        if settings.sparse_convert.load(Relaxed) {
            return Ok(None);
        }
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_table(
    t: &Table,
    out: &mut Vec<u8>,
    depth: usize,
    settings: &Settings,
) -> Result<(), String> {
    if depth > settings.encode_max_depth.load(Relaxed) {
        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
    }
    match array_length(t, settings)? {
        Some(len) if len > 0 => {
            out.push(b'[');
            for i in 1..=len {
                if i > 1 {
                    out.push(b',');
                }
                let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                encode(&v, out, depth, settings)?;
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            let mut first = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                if !first {
                    out.push(b',');
                }
                first = false;
                match &k {
                    Value::String(s) => encode_string(&s.as_bytes(), out),
                    Value::Integer(n) => encode_string(n.to_string().as_bytes(), out),
                    Value::Number(n) => {
                        let precision = settings.encode_number_precision.load(Relaxed);
                        encode_string(format_g(*n, precision).as_bytes(), out)
                    }
                    _ => {
                        return Err(
                            "Cannot serialise table: table key must be a number or string".into(),
                        );
                    }
                }
                out.push(b':');
                encode(&v, out, depth, settings)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

struct Parser<'a> {
    lua: &'a Lua,
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
    /// `decode_invalid_numbers`: NaN, Infinity, hexadecimal, leading zeros and `+` accepted.
    invalid_numbers: bool,
}

impl Parser<'_> {
    fn error(&self, expected: &str, found: &str) -> mlua::Error {
        mlua::Error::RuntimeError(format!(
            "Expected {expected} but found {found} at character {}",
            self.pos + 1
        ))
    }

    fn skip_ws(&mut self) {
        while self
            .buf
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> mlua::Result<Value> {
        if self.invalid_numbers && is_invalid_number(&self.buf[self.pos..]) {
            return self.lenient_number();
        }
        match self.buf.get(self.pos) {
            None => Err(self.error("value", "T_END")),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.lua.create_string(self.string()?)?)),
            Some(b't') => self.literal(b"true", Value::Boolean(true)),
            Some(b'f') => self.literal(b"false", Value::Boolean(false)),
            Some(b'n') => self.literal(
                b"null",
                Value::LightUserData(LightUserData(std::ptr::null_mut())),
            ),
            Some(b'-' | b'0'..=b'9') if is_invalid_number(&self.buf[self.pos..]) => {
                Err(self.error("value", "invalid number"))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("value", "invalid token")),
        }
    }

    /// A number JSON does not allow, read as C's `strtod` reads it (lua-cjson with
    /// `decode_invalid_numbers`): NaN, Inf/Infinity, hexadecimal integers, `+`, leading zeros.
    fn lenient_number(&mut self) -> mlua::Result<Value> {
        let start = self.pos;
        let rest = &self.buf[start..];
        let (negative, sign_len) = match rest.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let body = &rest[sign_len..];
        let lower: Vec<u8> = body.iter().take(8).map(u8::to_ascii_lowercase).collect();
        let (magnitude, len) = if lower.starts_with(b"infinity") {
            (f64::INFINITY, 8)
        } else if lower.starts_with(b"inf") {
            (f64::INFINITY, 3)
        } else if lower.starts_with(b"nan") {
            (f64::NAN, 3)
        } else if lower.starts_with(b"0x") {
            let digits = body[2..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let value = body[2..2 + digits].iter().fold(0f64, |acc, &d| {
                acc * 16.0 + (d as char).to_digit(16).unwrap_or(0) as f64
            });
            (value, 2 + digits)
        } else {
            self.pos += sign_len;
            let value = self.number()?;
            let n = match value {
                Value::Number(n) => n,
                _ => 0.0,
            };
            return Ok(Value::Number(if negative { -n } else { n }));
        };
        if len == 2 && lower.starts_with(b"0x") {
            self.pos = start;
            return Err(self.error("value", "invalid number"));
        }
        self.pos = start + sign_len + len;
        Ok(Value::Number(if negative { -magnitude } else { magnitude }))
    }

    fn literal(&mut self, word: &[u8], v: Value) -> mlua::Result<Value> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error("value", "invalid token"))
        }
    }

    fn number(&mut self) -> mlua::Result<Value> {
        let start = self.pos;
        while self
            .buf
            .get(self.pos)
            .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.buf[start..self.pos]).unwrap_or("");
        text.parse::<f64>().map(Value::Number).map_err(|_| {
            self.pos = start;
            self.error("value", "invalid number")
        })
    }

    fn string(&mut self) -> mlua::Result<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.error("value", "unexpected end of string"));
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.buf.get(self.pos) else {
                        return Err(self.error("value", "invalid escape code"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.buf[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                code =
                                    0x10000 + ((code - 0xD800) << 10) + (low.wrapping_sub(0xDC00));
                            }
                            let c = char::from_u32(code).unwrap_or('\u{FFFD}');
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => return Err(self.error("value", "invalid escape code")),
                    }
                }
                _ => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> mlua::Result<u32> {
        let digits = self
            .buf
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("value", "invalid unicode escape code"))?;
        self.pos += 4;
        Ok(digits)
    }

    fn enter(&mut self) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(mlua::Error::RuntimeError(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                self.pos + 1
            )));
        }
        Ok(())
    }

    fn object(&mut self) -> mlua::Result<Value> {
        self.enter()?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        self.skip_ws();
        if self.buf.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.skip_ws();
            if self.buf.get(self.pos) != Some(&b'"') {
                return Err(self.error("object key string", "invalid token"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.buf.get(self.pos) != Some(&b':') {
                return Err(self.error("colon", "invalid token"));
            }
            self.pos += 1;
            self.skip_ws();
            let v = self.value()?;
            t.raw_set(self.lua.create_string(&key)?, v)?;
            self.skip_ws();
            match self.buf.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("comma or object end", "invalid token")),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn array(&mut self) -> mlua::Result<Value> {
        self.enter()?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        self.skip_ws();
        if self.buf.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            self.skip_ws();
            let v = self.value()?;
            t.raw_set(i, v)?;
            i += 1;
            self.skip_ws();
            match self.buf.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("comma or array end", "invalid token")),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }
}

/// lua-cjson's `json_is_invalid_number`: a token that is a number only to `strtod`.
fn is_invalid_number(rest: &[u8]) -> bool {
    let rest = match rest.first() {
        Some(b'+') => return true,
        Some(b'-') => &rest[1..],
        _ => rest,
    };
    match rest.first() {
        Some(b'0') => rest
            .get(1)
            .is_some_and(|&c| (c | 0x20) == b'x' || c.is_ascii_digit()),
        Some(c) if *c <= b'9' => false,
        _ => {
            let head: Vec<u8> = rest.iter().take(3).map(u8::to_ascii_lowercase).collect();
            head == b"inf" || head == b"nan"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn percent_g_14() {
        assert_eq!(format_g(1.5, 14), "1.5");
        assert_eq!(format_g(1e20, 14), "1e+20");
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(3.0, 14), "3");
        assert_eq!(format_g(1.0 / 3.0, 14), "0.33333333333333");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
    }
}
