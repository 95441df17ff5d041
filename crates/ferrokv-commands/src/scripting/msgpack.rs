//! `cmsgpack`: MessagePack for scripts, with the rules of lua-cmsgpack 0.4.0 (the library
//! Valkey bundles), which are what scripts observe byte for byte:
//! - a table whose keys are exactly the integers 1..n is an array (the empty table too);
//!   any other table is a map, written in Lua's own traversal order (`next`);
//! - a number equal to a 64-bit integer is written as the smallest integer form (positive
//!   values never use the signed forms); another number as a 32-bit float when that is
//!   exact, else a double;
//! - strings use fixstr/str8/str16/str32 (no bin types; the decoder rejects them);
//! - tables nested 16 deep are written as nil (so cycles end);
//! - decoding keeps Lua 5.1's stack limit: too many values or too deep nesting fail with
//!   the same `stack overflow (...)` errors.
//!
//! Written by hand rather than on a MessagePack crate: the choices above (which forms, the
//! 32-bit float narrowing, unsigned 64-bit read back as signed, the error kinds) are the
//! library's, not the format's, and a generic encoder would have to be overridden at every
//! step.

use mlua::{Lua, MultiValue, Table, Value};

use super::lauxlib::{self, MAX_C_STACK, arg_error, check_integer, check_string, opt_integer};
use super::vm::raise;

/// Tables nested this deep are encoded as nil.
const MAX_NESTING: usize = 16;

/// At most this many strings and tables are returned at once: each holds one of mlua's
/// references while the results are handed back, and those are bounded (by Lua 5.1's
/// stack limit, 8000 shared by the whole state). Valkey allows up to 7999 values of any
/// kind; past this ferrokv fails with the same error Valkey gives at 8000.
pub const MAX_REFERENCED_RESULTS: usize = 4000;

/// At most this many values are returned at once (Valkey: 7999 minus the arguments):
/// mlua needs a few stack slots of its own to hand results back.
pub const MAX_RESULTS: usize = 7900;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let nargs = args.len();
            unpack(lua, &args, nargs, 0, 0)
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let offset = opt_integer(lua, &args, 2, 0)? as i32;
            unpack(lua, &args, 1, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = check_integer(lua, &args, 2)? as i32;
            let offset = opt_integer(lua, &args, 3, 0)? as i32;
            unpack(lua, &args, 1, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Redis Ltd.")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// `cmsgpack.pack(v, ...)`: the concatenated encodings of the arguments.
fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::LuaString> {
    if args.is_empty() {
        return Err(arg_error(lua, 0, "MessagePack pack needs input."));
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode(&mut out, v, 0)?;
    }
    lua.create_string(&out)
}

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_number(out, *n as f64),
        Value::Number(n) => encode_number(out, *n),
        Value::Table(t) if level < MAX_NESTING => encode_table(out, t, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    let as_int = lauxlib::c_double_to_i64(n);
    if n.is_finite() && as_int as f64 == n {
        encode_int(out, as_int);
    } else if (n as f32) as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// A collection header: the fix form up to 15 entries, then the 16- and 32-bit forms.
fn encode_header(out: &mut Vec<u8>, len: usize, fix: u8, wide16: u8) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(wide16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(wide16 + 1);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn encode_table(out: &mut Vec<u8>, t: &Table, level: usize) -> mlua::Result<()> {
    match array_len(t)? {
        Some(len) => {
            encode_header(out, len, 0x90, 0xdc);
            for i in 1..=len {
                encode(out, &t.raw_get::<Value>(i)?, level + 1)?;
            }
        }
        None => {
            // Counted in a first pass, as the C library does: holding the entries would
            // cost one mlua reference each.
            let mut count = 0;
            for pair in t.pairs::<Value, Value>() {
                pair?;
                count += 1;
            }
            encode_header(out, count, 0x80, 0xde);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                encode(out, &k, level + 1)?;
                encode(out, &v, level + 1)?;
            }
        }
    }
    Ok(())
}

/// `Some(n)` when the table's keys are exactly 1..n (lua-cmsgpack's test: every key a
/// positive number equal to a C `int`, and the largest equal to the count).
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    let mut count: i64 = 0;
    let mut max: i64 = 0;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n <= 0.0 || n.is_infinite() || n.is_nan() || n > i32::MAX as f64 || n.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(n as i64);
        count += 1;
    }
    Ok((max == count).then_some(count as usize))
}

/// Why decoding stopped: input ended inside a value, or a byte no type starts with.
enum DecodeError {
    Eof,
    BadFormat,
    Lua(mlua::Error),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Lua(e)
    }
}

/// What one type byte (and its length bytes) announce.
enum Item {
    Value(Value),
    Array(usize),
    Map(usize),
}

/// A table being filled. The tables themselves (and a map's pending key) live in a Lua
/// "holder" table indexed by depth, so that deep input costs neither native stack (the
/// decoder is a loop) nor Lua references (mlua's are a bounded resource).
struct Open {
    is_map: bool,
    remaining: usize,
    next_index: usize,
    has_key: bool,
}

impl Open {
    /// Lua stack slots the C library holds for this table while an element decodes: the
    /// table, and the array index or the map key.
    fn slots(&self) -> usize {
        if self.is_map {
            1 + self.has_key as usize
        } else {
            2
        }
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    buf: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The `n` bytes after the type byte, and moves past them and the type byte.
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.left() < n + 1 {
            return Err(DecodeError::Eof);
        }
        let start = self.pos + 1;
        self.pos = start + n;
        Ok(&self.buf[start..start + n])
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// Reads one type byte and what follows it, except a collection's elements. `slots` is
    /// how many Lua stack slots the C library would hold at this point (its arguments, the
    /// values decoded so far, the enclosing tables and keys): past `MAX_C_STACK` it fails
    /// as it does.
    fn item(&mut self, slots: usize) -> Result<Item, DecodeError> {
        if self.left() < 1 {
            return Err(DecodeError::Eof);
        }
        if slots + 1 > MAX_C_STACK {
            return Err(DecodeError::Lua(lauxlib::stack_overflow(
                "too many return values at once; use unpack_one or unpack_limit instead.",
            )));
        }
        let first = self.buf[self.pos];
        let value = match first {
            0xcc => Value::Integer(self.be(1)? as i64),
            0xcd => Value::Integer(self.be(2)? as i64),
            0xce => Value::Integer(self.be(4)? as i64),
            // Lua 5.1 has no unsigned integers: the value is read back as signed.
            0xcf => Value::Number(self.be(8)? as i64 as f64),
            0xd0 => Value::Integer(self.be(1)? as u8 as i8 as i64),
            0xd1 => Value::Integer(self.be(2)? as u16 as i16 as i64),
            0xd2 => Value::Integer(self.be(4)? as u32 as i32 as i64),
            0xd3 => Value::Number(self.be(8)? as i64 as f64),
            0xc0 => {
                self.take(0)?;
                Value::Nil
            }
            0xc3 => {
                self.take(0)?;
                Value::Boolean(true)
            }
            0xc2 => {
                self.take(0)?;
                Value::Boolean(false)
            }
            0xca => Value::Number(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => Value::Number(f64::from_bits(self.be(8)?)),
            0xd9 => self.string(1)?,
            0xda => self.string(2)?,
            0xdb => self.string(4)?,
            0xdc => return Ok(Item::Array(self.be(2)? as usize)),
            0xdd => return Ok(Item::Array(self.be(4)? as usize)),
            0xde => return Ok(Item::Map(self.be(2)? as usize)),
            0xdf => return Ok(Item::Map(self.be(4)? as usize)),
            b if b & 0x80 == 0 => {
                self.take(0)?;
                Value::Integer(b as i64)
            }
            b if b & 0xe0 == 0xe0 => {
                self.take(0)?;
                Value::Integer(b as i8 as i64)
            }
            b if b & 0xe0 == 0xa0 => {
                let lua = self.lua;
                let bytes = self.take((b & 0x1f) as usize)?;
                Value::String(lua.create_string(bytes)?)
            }
            b if b & 0xf0 == 0x90 => {
                self.take(0)?;
                return Ok(Item::Array((b & 0x0f) as usize));
            }
            b if b & 0xf0 == 0x80 => {
                self.take(0)?;
                return Ok(Item::Map((b & 0x0f) as usize));
            }
            _ => return Err(DecodeError::BadFormat),
        };
        Ok(Item::Value(value))
    }

    /// A string whose length takes `width` bytes after the type byte.
    fn string(&mut self, width: usize) -> Result<Value, DecodeError> {
        if self.left() < width + 1 {
            return Err(DecodeError::Eof);
        }
        let len = self.buf[self.pos + 1..self.pos + 1 + width]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        if self.left() < 1 + width + len {
            return Err(DecodeError::Eof);
        }
        let start = self.pos + 1 + width;
        self.pos = start + len;
        Ok(Value::String(
            self.lua.create_string(&self.buf[start..start + len])?,
        ))
    }

    /// Decodes one complete value (collections with all their elements). `base_slots`:
    /// the Lua stack slots in use before it.
    fn value(&mut self, base_slots: usize) -> Result<Value, DecodeError> {
        let mut open: Vec<Open> = Vec::new();
        let mut holder: Option<Table> = None;
        let mut slots = base_slots;
        loop {
            let mut done = match self.item(slots)? {
                Item::Value(v) => v,
                item => {
                    let (is_map, len) = match item {
                        Item::Map(len) => (true, len),
                        Item::Array(len) => (false, len),
                        Item::Value(_) => (false, 0),
                    };
                    if !is_map && slots + 2 > MAX_C_STACK {
                        return Err(array_overflow());
                    }
                    let table = self.lua.create_table()?;
                    if len == 0 {
                        Value::Table(table)
                    } else {
                        let holder = match &holder {
                            Some(h) => h,
                            None => holder.insert(self.lua.create_table()?),
                        };
                        holder.raw_set(2 * open.len() + 1, table)?;
                        let frame = Open {
                            is_map,
                            remaining: len,
                            next_index: 1,
                            has_key: false,
                        };
                        slots += frame.slots();
                        open.push(frame);
                        continue;
                    }
                }
            };
            // Attach the finished value to the tables it completes.
            loop {
                let depth = open.len();
                let Some(frame) = open.last_mut() else {
                    return Ok(done);
                };
                let Some(holder) = &holder else {
                    return Ok(done);
                };
                slots -= frame.slots();
                let table_slot = 2 * depth - 1;
                let key_slot = 2 * depth;
                if frame.is_map && !frame.has_key {
                    holder.raw_set(key_slot, done)?;
                    frame.has_key = true;
                    slots += frame.slots();
                    break;
                }
                let table: Table = holder.raw_get(table_slot)?;
                if frame.is_map {
                    let key: Value = holder.raw_get(key_slot)?;
                    match &key {
                        Value::Nil => {
                            return Err(DecodeError::Lua(raise("ERR table index is nil")));
                        }
                        Value::Number(n) if n.is_nan() => {
                            return Err(DecodeError::Lua(raise("ERR table index is NaN")));
                        }
                        _ => {}
                    }
                    table.raw_set(key, done)?;
                    holder.raw_set(key_slot, Value::Nil)?;
                    frame.has_key = false;
                } else {
                    table.raw_set(frame.next_index, done)?;
                    frame.next_index += 1;
                }
                frame.remaining -= 1;
                if frame.remaining > 0 {
                    slots += frame.slots();
                    break;
                }
                holder.raw_set(table_slot, Value::Nil)?;
                open.pop();
                done = Value::Table(table);
            }
        }
    }
}

fn array_overflow() -> DecodeError {
    DecodeError::Lua(lauxlib::stack_overflow(
        "in function mp_decode_to_lua_array",
    ))
}

/// lua-cmsgpack's `mp_unpack_full`: decodes up to `limit` values (all of them when both
/// `limit` and `offset` are 0) from `offset`; unless decoding all, the first result is
/// the offset of the next value, or -1 at the end of the input. `kept` is how many of
/// the arguments stay on the Lua stack (they count against its limit).
fn unpack(
    lua: &Lua,
    args: &MultiValue,
    kept: usize,
    limit: i32,
    offset: i32,
) -> mlua::Result<MultiValue> {
    let input = check_string(lua, args, 1)?;
    let bytes = input.as_bytes();
    let len = bytes.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // The library prints the input length where it means the limit.
        return Err(mlua::Error::RuntimeError(format!(
            "Invalid request to unpack with offset of {offset} and limit of {}.",
            len as i32
        )));
    }
    if offset as usize > len {
        return Err(mlua::Error::RuntimeError(format!(
            "Start offset {offset} greater than input length {}.",
            len as i32
        )));
    }
    let limit = if decode_all { i32::MAX } else { limit };
    let mut decoder = Decoder {
        lua,
        buf: &bytes,
        pos: offset as usize,
    };
    let mut values = Vec::new();
    let mut referenced = 0;
    while decoder.left() > 0 && values.len() < limit as usize {
        match decoder.value(kept + values.len()) {
            Ok(v) => {
                referenced += matches!(v, Value::String(_) | Value::Table(_)) as usize;
                if referenced > MAX_REFERENCED_RESULTS || kept + values.len() >= MAX_RESULTS {
                    return Err(lauxlib::stack_overflow(
                        "too many return values at once; use unpack_one or unpack_limit instead.",
                    ));
                }
                values.push(v);
            }
            Err(DecodeError::Eof) => {
                return Err(mlua::Error::RuntimeError("Missing bytes in input.".into()));
            }
            Err(DecodeError::BadFormat) => {
                return Err(mlua::Error::RuntimeError(
                    "Bad data format in input.".into(),
                ));
            }
            Err(DecodeError::Lua(e)) => return Err(e),
        }
    }
    if !decode_all {
        if kept + values.len() + 1 > MAX_C_STACK {
            return Err(lauxlib::stack_overflow("in function mp_unpack_full"));
        }
        let next = if decoder.left() == 0 {
            -1
        } else {
            decoder.pos as i64
        };
        values.insert(0, Value::Integer(next));
    }
    Ok(MultiValue::from_iter(values))
}
