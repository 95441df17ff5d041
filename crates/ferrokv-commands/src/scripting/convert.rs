//! Conversions between RESP and Lua, with Valkey's rules, on Lua's C stack.
//!
//! A command called from a script writes its reply into a buffer in the protocol the script
//! chose (`redis.setresp`, RESP2 by default); [`push_reply`] parses that buffer and pushes
//! the Lua value. [`write_value`] writes a script's result, read from the stack, for its
//! caller. Both work on the raw stack rather than through mlua's `Value`s: every value mlua
//! hands to Rust is parked in a slot of its reference thread and moved back to be used,
//! which for `return redis.call('GET', KEYS[1])` cost more than the rest of the call.
//!
//! # Soundness
//!
//! - The functions take the running Lua state and document what they leave on its stack.
//!   Before a nesting level pushes, it makes room for itself with `lua_checkstack` (the
//!   caller of [`push_reply`] guarantees room for one value, as Lua guarantees a C
//!   function `LUA_MINSTACK` slots); a level that cannot get room pushes `nil`.
//! - Nothing here raises a Lua error (a `longjmp` that would skip Rust destructors): keys
//!   given to `lua_rawset` are never nil (a RESP null inside a set or map is skipped) and
//!   never NaN (only RESP integers become numbers), and allocation failure cannot happen
//!   without a memory limit (the process aborts first; mlua makes the same assumption to
//!   skip its protected calls).

use std::ffi::{CStr, c_int};

use bytes::Bytes;
use ferrokv_protocol::Reply;
use mlua::Value;
use mlua::ffi::{self, lua_State};

/// Nesting deeper than this is cut off (Valkey stops where its Lua stack gives out, near
/// 8,000 levels).
const MAX_DEPTH: usize = 1000;

/// The slots one nesting level of [`push_parsed`] uses at most: an outer table, the inner
/// table, a key, and one for the value its child pushes.
const LEVEL_SLOTS: c_int = 4;

/// The text of the top-level error reply in `buf` (without `-` and CRLF), if it is one.
/// Nested error replies become `{err=...}` tables instead.
pub fn error_reply(buf: &[u8]) -> Option<&[u8]> {
    let rest = buf.strip_prefix(b"-")?;
    Some(&rest[..find_crlf(rest).unwrap_or(rest.len())])
}

/// Pushes the Lua value of the RESP reply `buf` (one value, `nil` for an empty buffer).
///
/// # Safety
/// `l` is a live Lua state with room for one more value on its stack.
pub unsafe fn push_reply(l: *mut lua_State, buf: &[u8]) {
    let mut pos = 0;
    // SAFETY: the caller's guarantee; `push_parsed` makes room for its own levels.
    unsafe { push_parsed(l, buf, &mut pos, 0) };
}

/// Pushes `bytes` as a Lua string.
///
/// # Safety
/// `l` is a live Lua state with room for one more value.
pub unsafe fn push_bytes(l: *mut lua_State, bytes: &[u8]) {
    // SAFETY: Lua copies `len` bytes from the pointer, which `bytes` keeps valid.
    unsafe { ffi::lua_pushlstring_(l, bytes.as_ptr().cast(), bytes.len()) };
}

/// Pushes a new table `{[name] = text}`.
///
/// # Safety
/// `l` is a live Lua state with room for three more values.
pub unsafe fn push_field_table(l: *mut lua_State, name: &CStr, text: &[u8]) {
    // SAFETY: the table is at -2 when the string is set into it.
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        push_bytes(l, text);
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let start = (*pos).min(buf.len());
    let len = find_crlf(&buf[start..]).unwrap_or(buf.len() - start);
    *pos = start + len + 2;
    &buf[start..start + len]
}

fn number(text: &[u8]) -> i64 {
    ferrokv_protocol::number::parse_i64(text).unwrap_or(0)
}

/// Pushes one parsed value.
///
/// # Safety
/// `l` is a live Lua state with room for `LEVEL_SLOTS` more values.
unsafe fn push_parsed(l: *mut lua_State, buf: &[u8], pos: &mut usize, depth: usize) {
    let Some(&kind) = buf.get(*pos) else {
        // SAFETY: room for one value.
        unsafe { ffi::lua_pushnil(l) };
        return;
    };
    *pos += 1;
    let head = line(buf, pos);
    // SAFETY (all the pushes below): at most LEVEL_SLOTS - 1 values of this level are on
    // the stack when `nested` pushes the child's one value (or makes room for its level).
    unsafe {
        match kind {
            b':' => ffi::lua_pushnumber(l, number(head) as f64),
            b'$' | b'=' => {
                let len = number(head);
                if len < 0 {
                    ffi::lua_pushboolean(l, 0);
                    return;
                }
                let start = (*pos).min(buf.len());
                let end = start.saturating_add(len as usize).min(buf.len());
                let data = &buf[start..end];
                *pos = end + 2;
                if kind == b'=' {
                    let (format, text) = if data.len() >= 4 {
                        (&data[..3], &data[4..])
                    } else {
                        (&b"txt"[..], data)
                    };
                    ffi::lua_createtable(l, 0, 1);
                    ffi::lua_createtable(l, 0, 2);
                    push_bytes(l, text);
                    ffi::lua_setfield(l, -2, c"string".as_ptr());
                    push_bytes(l, format);
                    ffi::lua_setfield(l, -2, c"format".as_ptr());
                    ffi::lua_setfield(l, -2, c"verbatim_string".as_ptr());
                } else {
                    push_bytes(l, data);
                }
            }
            b'+' => push_field_table(l, c"ok", head),
            b'-' => push_field_table(l, c"err", head),
            b'*' | b'>' => {
                let n = number(head);
                if n < 0 {
                    ffi::lua_pushboolean(l, 0);
                    return;
                }
                ffi::lua_createtable(l, c_int::try_from(n).unwrap_or(0), 0);
                for i in 1..=n {
                    nested(l, buf, pos, depth);
                    ffi::lua_rawseti_(l, -2, c_int::try_from(i).unwrap_or(c_int::MAX));
                }
            }
            b'~' => {
                let n = number(head);
                if n < 0 {
                    ffi::lua_pushboolean(l, 0);
                    return;
                }
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, c_int::try_from(n).unwrap_or(0));
                for _ in 0..n {
                    nested(l, buf, pos, depth);
                    if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                        ffi::lua_pop(l, 1);
                    } else {
                        ffi::lua_pushboolean(l, 1);
                        ffi::lua_rawset(l, -3);
                    }
                }
                ffi::lua_setfield(l, -2, c"set".as_ptr());
            }
            b'%' => {
                let n = number(head).max(0);
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, c_int::try_from(n).unwrap_or(0));
                for _ in 0..n {
                    nested(l, buf, pos, depth);
                    // The value is parsed with the key on the stack: room for one more.
                    nested(l, buf, pos, depth);
                    if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                        ffi::lua_pop(l, 2);
                    } else {
                        ffi::lua_rawset(l, -3);
                    }
                }
                ffi::lua_setfield(l, -2, c"map".as_ptr());
            }
            b'#' => ffi::lua_pushboolean(l, c_int::from(head == b"t")),
            b',' => {
                let d = ferrokv_protocol::number::parse_double(head).unwrap_or(match head {
                    b"inf" => f64::INFINITY,
                    b"-inf" => f64::NEG_INFINITY,
                    _ => f64::NAN,
                });
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushnumber(l, d);
                ffi::lua_setfield(l, -2, c"double".as_ptr());
            }
            b'(' => push_field_table(l, c"big_number", head),
            _ => ffi::lua_pushnil(l),
        }
    }
}

/// Pushes a nested value: `nil` past `MAX_DEPTH` or when the stack cannot grow.
///
/// # Safety
/// `l` is a live Lua state with room for one more value.
unsafe fn nested(l: *mut lua_State, buf: &[u8], pos: &mut usize, depth: usize) {
    // SAFETY: one slot is guaranteed by the caller; a deeper level gets its own room first.
    unsafe {
        if depth >= MAX_DEPTH || ffi::lua_checkstack(l, LEVEL_SLOTS + 1) == 0 {
            ffi::lua_pushnil(l);
            return;
        }
        push_parsed(l, buf, pos, depth + 1);
    }
}

/// Writes the Lua value at the absolute stack index `idx` as a script's result for its
/// caller. `script_resp` is the protocol the script chose with `redis.setresp` (it
/// decides how booleans convert). Leaves the stack as it was.
///
/// # Safety
/// `l` is a live Lua state and `idx` a valid absolute index on its stack.
pub unsafe fn write_value(l: *mut lua_State, idx: c_int, reply: &mut Reply, script_resp: u8) {
    // SAFETY: the caller's guarantee.
    unsafe { write_at(l, idx, reply, script_resp, 0) }
}

/// # Safety
/// As `write_value`.
unsafe fn write_at(
    l: *mut lua_State,
    idx: c_int,
    reply: &mut Reply,
    script_resp: u8,
    depth: usize,
) {
    // SAFETY: `idx` is valid; reading a value pushes nothing.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => reply.bulk(string_at(l, idx)),
            ffi::LUA_TBOOLEAN => {
                let b = ffi::lua_toboolean(l, idx) != 0;
                if script_resp == 2 {
                    if b {
                        reply.int(1);
                    } else {
                        reply.null();
                    }
                } else {
                    reply.boolean(b);
                }
            }
            ffi::LUA_TNUMBER => reply.int(truncate(ffi::lua_tonumber(l, idx))),
            // Three slots: a field lookup's value, or `lua_next`'s key and value. A table
            // nested too deep (a table that contains itself) ends the reply with Valkey's
            // error where its Lua stack gives out; ours is cut off sooner, at MAX_DEPTH,
            // to keep the recursion well inside the thread's stack.
            ffi::LUA_TTABLE => {
                if depth < MAX_DEPTH && ffi::lua_checkstack(l, 3) != 0 {
                    write_table(l, idx, reply, script_resp, depth)
                } else {
                    reply.error("ERR reached lua stack limit");
                }
            }
            _ => reply.null(),
        }
    }
}

/// A Lua number as Valkey's `(long long)` cast turns it into an integer reply (on x86-64:
/// NaN and out-of-range numbers give `INT64_MIN`).
fn truncate(n: f64) -> i64 {
    super::lauxlib::c_double_to_i64(n)
}

/// The bytes of the string at `idx`.
///
/// # Safety
/// The value at `idx` is a string; the slice lives as long as it stays on the stack.
unsafe fn string_at<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: a Lua string's bytes stay put while the string is referenced from the stack.
    unsafe {
        let p = ffi::lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// Pushes `t[name]` (raw) of the table at absolute index `t` and returns its type.
///
/// # Safety
/// `t` is a table's absolute index; room for two values.
unsafe fn push_field(l: *mut lua_State, t: c_int, name: &CStr) -> c_int {
    // SAFETY: the key and then the value occupy the same slot.
    unsafe {
        ffi::lua_pushstring_(l, name.as_ptr());
        ffi::lua_rawget_(l, t);
        ffi::lua_type(l, -1)
    }
}

/// # Safety
/// `t` is a table's absolute index; room for three values.
unsafe fn write_table(
    l: *mut lua_State,
    t: c_int,
    reply: &mut Reply,
    script_resp: u8,
    depth: usize,
) {
    // SAFETY: each field pushed is popped before the next; `lua_next` runs on an
    // unchanged table with its key on top.
    unsafe {
        if push_field(l, t, c"err") == ffi::LUA_TSTRING {
            let text = String::from_utf8_lossy(string_at(l, -1)).into_owned();
            ffi::lua_pop(l, 1);
            let counted = push_field(l, t, c"ignore_error_stats_update") == ffi::LUA_TBOOLEAN
                && ffi::lua_toboolean(l, -1) != 0;
            ffi::lua_pop(l, 1);
            if !counted {
                crate::stats::local().count_script_error(&text);
            }
            reply.error(&text);
            return;
        }
        ffi::lua_pop(l, 1);
        if push_field(l, t, c"ok") == ffi::LUA_TSTRING {
            let text = String::from_utf8_lossy(string_at(l, -1)).replace(['\r', '\n'], " ");
            ffi::lua_pop(l, 1);
            reply.simple(&text);
            return;
        }
        ffi::lua_pop(l, 1);
        if push_field(l, t, c"double") == ffi::LUA_TNUMBER {
            let d = ffi::lua_tonumber(l, -1);
            ffi::lua_pop(l, 1);
            reply.double(d);
            return;
        }
        ffi::lua_pop(l, 1);
        if push_field(l, t, c"big_number") == ffi::LUA_TSTRING {
            let text = String::from_utf8_lossy(string_at(l, -1)).replace(['\r', '\n'], " ");
            ffi::lua_pop(l, 1);
            if reply.is_resp3() {
                reply.raw(b"(");
                reply.raw(text.as_bytes());
                reply.raw(b"\r\n");
            } else {
                reply.bulk(text.as_bytes());
            }
            return;
        }
        ffi::lua_pop(l, 1);
        if push_field(l, t, c"map") == ffi::LUA_TTABLE {
            let map = ffi::lua_gettop(l);
            reply.map_len(count_pairs(l, map));
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, map) != 0 {
                let top = ffi::lua_gettop(l);
                write_at(l, top - 1, reply, script_resp, depth + 1);
                write_at(l, top, reply, script_resp, depth + 1);
                ffi::lua_pop(l, 1);
            }
            ffi::lua_pop(l, 1);
            return;
        }
        ffi::lua_pop(l, 1);
        if push_field(l, t, c"set") == ffi::LUA_TTABLE {
            let set = ffi::lua_gettop(l);
            reply.set_len(count_pairs(l, set));
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, set) != 0 {
                write_at(l, ffi::lua_gettop(l) - 1, reply, script_resp, depth + 1);
                ffi::lua_pop(l, 1);
            }
            ffi::lua_pop(l, 1);
            return;
        }
        ffi::lua_pop(l, 1);
        if push_field(l, t, c"verbatim_string") == ffi::LUA_TTABLE {
            let v = ffi::lua_gettop(l);
            let format_type = push_field(l, v, c"format");
            let text_type = push_field(l, v, c"string");
            if format_type == ffi::LUA_TSTRING && text_type == ffi::LUA_TSTRING {
                let format = String::from_utf8_lossy(string_at(l, -2)).into_owned();
                reply.verbatim(&format, string_at(l, -1));
                ffi::lua_pop(l, 3);
                return;
            }
            ffi::lua_pop(l, 2);
        }
        ffi::lua_pop(l, 1);
        // An array: elements 1, 2 ... up to the first nil.
        let mut len: c_int = 0;
        loop {
            ffi::lua_rawgeti_(l, t, len + 1);
            let present = ffi::lua_type(l, -1) != ffi::LUA_TNIL;
            ffi::lua_pop(l, 1);
            if !present || len == c_int::MAX {
                break;
            }
            len += 1;
        }
        reply.array_len(len as usize);
        for i in 1..=len {
            ffi::lua_rawgeti_(l, t, i);
            write_at(l, ffi::lua_gettop(l), reply, script_resp, depth + 1);
            ffi::lua_pop(l, 1);
        }
    }
}

/// How many pairs `lua_next` visits in the table at absolute index `t`.
///
/// # Safety
/// `t` is a table's absolute index; room for two values.
unsafe fn count_pairs(l: *mut lua_State, t: c_int) -> usize {
    let mut n = 0;
    // SAFETY: the key stays on top between `lua_next` calls; the value is popped.
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            ffi::lua_pop(l, 1);
            n += 1;
        }
    }
    n
}

/// The arguments of a `redis.call` on the stack (1 to top) as a command line, or the
/// error reply that refuses them.
///
/// # Safety
/// `l` is the state of a C function call.
pub unsafe fn command_args(l: *mut lua_State) -> Result<Vec<Bytes>, &'static [u8]> {
    // SAFETY: indexes 1 to top are valid; reading them pushes nothing.
    unsafe {
        let n = ffi::lua_gettop(l);
        if n <= 0 {
            return Err(b"ERR Please specify at least one argument for this call");
        }
        let mut argv = Vec::with_capacity(n as usize);
        for i in 1..=n {
            match ffi::lua_type(l, i) {
                ffi::LUA_TSTRING => argv.push(Bytes::copy_from_slice(string_at(l, i))),
                ffi::LUA_TNUMBER => argv.push(number_arg(ffi::lua_tonumber(l, i))),
                _ => return Err(b"ERR Command arguments must be strings or integers"),
            }
        }
        Ok(argv)
    }
}

/// The bytes of a `redis.call` argument given as an mlua value (`server.acl_check_cmd`):
/// the same rules as [`command_args`].
pub fn command_arg(value: &Value) -> Option<Bytes> {
    match value {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Some(number_arg(*n as f64)),
        Value::Number(n) => Some(number_arg(*n)),
        _ => None,
    }
}

/// A Lua number as a command argument, as Valkey's `fpconv_dtoa` prints it: the shortest
/// form that reads back the same, integers included (2^63 prints as
/// `9223372036854775808`, -2^63 as `-9223372036854776000`), negative zero as `0`.
fn number_arg(n: f64) -> Bytes {
    if n == 0.0 {
        return Bytes::from_static(b"0");
    }
    Bytes::from(ferrokv_protocol::number::format_double(n))
}

#[cfg(test)]
mod tests {
    use super::number_arg;

    #[test]
    fn numbers_as_arguments_print_as_valkey_prints_them() {
        assert_eq!(&number_arg(3.0)[..], b"3");
        assert_eq!(&number_arg(-7.0)[..], b"-7");
        assert_eq!(&number_arg(-0.0)[..], b"0");
        assert_eq!(&number_arg(0.5)[..], b"0.5");
        assert_eq!(
            &number_arg(-9_223_372_036_854_775_808.0)[..],
            b"-9223372036854776000"
        );
        assert_eq!(&number_arg(1e20)[..], b"1e+20");
    }
}
