//! Conversions between RESP and Lua, with Valkey's rules.
//!
//! A command called from a script writes its reply into a buffer in the protocol the script
//! chose (`redis.setresp`, RESP2 by default); [`reply_to_lua`] parses that buffer into Lua
//! values. [`lua_to_reply`] writes a script's result for its caller.

use ferrokv_protocol::Reply;
use mlua::{Lua, Table, Value};

/// Nesting deeper than this is cut off (Valkey's Lua stack would overflow first).
const MAX_DEPTH: usize = 1000;

/// A parsed reply: a value, or an error reply's text (without `-`).
pub enum Parsed {
    Value(Value),
    Error(Vec<u8>),
}

/// Parses one RESP reply from `buf` into a Lua value. Error replies at the top level are
/// returned as `Parsed::Error`; nested ones become `{err=...}` tables.
pub fn reply_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<Parsed> {
    if let Some(rest) = buf.strip_prefix(b"-") {
        let end = find_crlf(rest).unwrap_or(rest.len());
        return Ok(Parsed::Error(rest[..end].to_vec()));
    }
    let mut pos = 0;
    Ok(Parsed::Value(parse(lua, buf, &mut pos, 0)?))
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let start = *pos;
    let len = find_crlf(&buf[start..]).unwrap_or(buf.len() - start);
    *pos = start + len + 2;
    &buf[start..start + len]
}

fn number(text: &[u8]) -> i64 {
    ferrokv_protocol::number::parse_i64(text).unwrap_or(0)
}

fn parse(lua: &Lua, buf: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<Value> {
    let Some(&kind) = buf.get(*pos) else {
        return Ok(Value::Nil);
    };
    *pos += 1;
    let head = line(buf, pos);
    Ok(match kind {
        b':' => Value::Number(number(head) as f64),
        b'$' | b'=' => {
            let len = number(head);
            if len < 0 {
                return Ok(Value::Boolean(false));
            }
            let len = len as usize;
            let end = (*pos + len).min(buf.len());
            let data = &buf[*pos..end];
            *pos = end + 2;
            if kind == b'=' {
                let (format, text) = if data.len() >= 4 {
                    (&data[..3], &data[4..])
                } else {
                    (&b"txt"[..], data)
                };
                let inner = lua.create_table()?;
                inner.raw_set("string", lua.create_string(text)?)?;
                inner.raw_set("format", lua.create_string(format)?)?;
                let t = lua.create_table()?;
                t.raw_set("verbatim_string", inner)?;
                Value::Table(t)
            } else {
                Value::String(lua.create_string(data)?)
            }
        }
        b'+' => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(head)?)?;
            Value::Table(t)
        }
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(head)?)?;
            Value::Table(t)
        }
        b'*' | b'~' | b'>' => {
            let n = number(head);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let items = lua.create_table_with_capacity(n as usize, 0)?;
            for i in 1..=n {
                let v = nested(lua, buf, pos, depth)?;
                if kind == b'~' {
                    items.raw_set(v, true)?;
                } else {
                    items.raw_set(i, v)?;
                }
            }
            if kind == b'~' {
                let t = lua.create_table()?;
                t.raw_set("set", items)?;
                Value::Table(t)
            } else {
                Value::Table(items)
            }
        }
        b'%' => {
            let n = number(head).max(0);
            let map = lua.create_table()?;
            for _ in 0..n {
                let k = nested(lua, buf, pos, depth)?;
                let v = nested(lua, buf, pos, depth)?;
                map.raw_set(k, v)?;
            }
            let t = lua.create_table()?;
            t.raw_set("map", map)?;
            Value::Table(t)
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(head == b"t"),
        b',' => {
            let d = ferrokv_protocol::number::parse_double(head).unwrap_or(match head {
                b"inf" => f64::INFINITY,
                b"-inf" => f64::NEG_INFINITY,
                _ => f64::NAN,
            });
            let t = lua.create_table()?;
            t.raw_set("double", d)?;
            Value::Table(t)
        }
        b'(' => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(head)?)?;
            Value::Table(t)
        }
        _ => Value::Nil,
    })
}

fn nested(lua: &Lua, buf: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<Value> {
    if depth >= MAX_DEPTH {
        return Ok(Value::Nil);
    }
    parse(lua, buf, pos, depth + 1)
}

/// Writes a script's result for its caller. `script_resp` is the protocol the script
/// chose with `redis.setresp` (it decides how booleans convert).
pub fn lua_to_reply(reply: &mut Reply, value: &Value, script_resp: u8) {
    write_value(reply, value, script_resp, 0);
}

fn write_value(reply: &mut Reply, value: &Value, script_resp: u8, depth: usize) {
    match value {
        Value::String(s) => reply.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if script_resp == 2 {
                if *b {
                    reply.int(1);
                } else {
                    reply.null();
                }
            } else {
                reply.boolean(*b);
            }
        }
        Value::Integer(n) => reply.int(*n),
        Value::Number(n) => reply.int(truncate(*n)),
        Value::Table(t) if depth < MAX_DEPTH => write_table(reply, t, script_resp, depth),
        _ => reply.null(),
    }
}

/// A Lua number as Valkey's `(long long)` cast turns it into an integer reply (on x86-64:
/// NaN and out-of-range numbers give `INT64_MIN`).
fn truncate(n: f64) -> i64 {
    super::lauxlib::c_double_to_i64(n)
}

fn string_field(t: &Table, name: &str) -> Option<mlua::LuaString> {
    match t.raw_get::<Value>(name).ok()? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn write_table(reply: &mut Reply, t: &Table, script_resp: u8, depth: usize) {
    if let Some(err) = string_field(t, "err") {
        let text = String::from_utf8_lossy(&err.as_bytes()).into_owned();
        reply.error(&text);
        return;
    }
    if let Some(ok) = string_field(t, "ok") {
        let text = String::from_utf8_lossy(&ok.as_bytes()).replace(['\r', '\n'], " ");
        reply.simple(&text);
        return;
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        reply.double(d);
        return;
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        reply.double(d as f64);
        return;
    }
    if let Some(big) = string_field(t, "big_number") {
        let text = String::from_utf8_lossy(&big.as_bytes()).replace(['\r', '\n'], " ");
        if reply.is_resp3() {
            reply.raw(b"(");
            reply.raw(text.as_bytes());
            reply.raw(b"\r\n");
        } else {
            reply.bulk(text.as_bytes());
        }
        return;
    }
    if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
        let pairs: Vec<(Value, Value)> = map.pairs::<Value, Value>().flatten().collect();
        reply.map_len(pairs.len());
        for (k, v) in &pairs {
            write_value(reply, k, script_resp, depth + 1);
            write_value(reply, v, script_resp, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
        let keys: Vec<Value> = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        reply.set_len(keys.len());
        for k in &keys {
            write_value(reply, k, script_resp, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string")
        && let (Some(format), Some(text)) = (string_field(&v, "format"), string_field(&v, "string"))
    {
        let format = String::from_utf8_lossy(&format.as_bytes()).into_owned();
        reply.verbatim(&format, &text.as_bytes());
        return;
    }
    // An array: elements 1, 2 ... up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    reply.array_len(items.len());
    for v in &items {
        write_value(reply, v, script_resp, depth + 1);
    }
}

/// The bytes of a `redis.call` argument: strings as they are, numbers as Valkey prints
/// them (integers without a fraction); anything else is refused.
pub fn command_arg(value: &Value) -> Option<bytes::Bytes> {
    match value {
        Value::String(s) => Some(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Some(bytes::Bytes::from(n.to_string())),
        Value::Number(n) => Some(bytes::Bytes::from(lua_number_arg(*n))),
        _ => None,
    }
}

/// A Lua number as a command argument: the shortest form that reads back the same, as
/// Valkey's `fpconv_dtoa` prints it (negative zero as `0`).
fn lua_number_arg(n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    ferrokv_protocol::number::format_double(n)
}
