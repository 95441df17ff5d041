//! Argument checks of Lua 5.1's auxiliary library (`luaL_check*`), for the C libraries
//! Valkey bundles that ferrokv writes in Rust (`cmsgpack`, `struct`): their error texts
//! name the argument and the function as the caller spelled it (`bad argument #2 to
//! 'unpack_one' (number expected, got string)`).

use mlua::{Lua, LuaString, MultiValue, Value};

/// `luaL_argerror`: the function's name comes from the calling instruction, as Lua reports
/// it (`?` when unknown); a method call does not count `self`.
pub fn arg_error(lua: &Lua, narg: usize, message: &str) -> mlua::Error {
    let names = lua.inspect_stack(0, |d| {
        let names = d.names();
        (
            names.name.map(|n| n.into_owned()),
            names.name_what.unwrap_or(""),
        )
    });
    let (name, what) = names.unwrap_or((None, ""));
    let name = name.unwrap_or_else(|| "?".into());
    let mut narg = narg as i64;
    if what == "method" {
        narg -= 1;
        if narg == 0 {
            return mlua::Error::RuntimeError(format!("calling '{name}' on bad self ({message})"));
        }
    }
    mlua::Error::RuntimeError(format!("bad argument #{narg} to '{name}' ({message})"))
}

/// Lua's name of a value's type (`luaL_typename`); `no value` past the last argument.
fn type_name(args: &MultiValue, narg: usize) -> &'static str {
    match args.get(narg - 1) {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

fn type_error(lua: &Lua, args: &MultiValue, narg: usize, expected: &str) -> mlua::Error {
    let got = type_name(args, narg);
    arg_error(lua, narg, &format!("{expected} expected, got {got}"))
}

/// `luaL_checklstring`: a string, or a number converted as Lua prints it.
pub fn check_string(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<LuaString> {
    match args.get(narg - 1) {
        Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => {
            match lua.coerce_string(v.clone())? {
                Some(s) => Ok(s),
                None => Err(type_error(lua, args, narg, "string")),
            }
        }
        _ => Err(type_error(lua, args, narg, "string")),
    }
}

/// `luaL_checknumber`: a number, or a string that reads as one.
pub fn check_number(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<f64> {
    let number = match args.get(narg - 1) {
        Some(Value::Integer(n)) => Some(*n as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(v @ Value::String(_)) => lua.coerce_number(v.clone())?,
        _ => None,
    };
    number.ok_or_else(|| type_error(lua, args, narg, "number"))
}

/// `luaL_checkinteger`: the number truncated towards zero (`lua_Integer` is 64-bit).
pub fn check_integer(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<i64> {
    Ok(c_double_to_i64(check_number(lua, args, narg)?))
}

/// `luaL_optinteger`: `default` when the argument is absent or nil.
pub fn opt_integer(lua: &Lua, args: &MultiValue, narg: usize, default: i64) -> mlua::Result<i64> {
    match args.get(narg - 1) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, narg),
    }
}

/// C's `(int64_t)d` on x86-64: truncation, and the "integer indefinite" value
/// `INT64_MIN` for NaN and out-of-range numbers (where Rust's `as` would saturate).
pub fn c_double_to_i64(d: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// C's `(uint64_t)d` on x86-64 as GCC compiles it for non-negative `d`: below 2^63 a plain
/// conversion (NaN gives the indefinite value), above it the conversion of `d - 2^63` with
/// the top bit flipped (so 2^64 and beyond give 0).
pub fn c_double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || d < TWO_63 {
        c_double_to_i64(d) as u64
    } else {
        (c_double_to_i64(d - TWO_63) as u64) ^ (1 << 63)
    }
}

/// `luaL_checkstack`'s limit: a C function may hold at most this many stack slots
/// (`LUAI_MAXCSTACK`), its arguments included.
pub const MAX_C_STACK: usize = 8000;

/// `luaL_checkstack`'s error.
pub fn stack_overflow(message: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("stack overflow ({message})"))
}
