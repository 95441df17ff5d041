//! The libraries Valkey gives scripts beside Lua's own: `bit` (LuaBitOp), `cjson`,
//! `cmsgpack` and `struct`.

use mlua::{Lua, MultiValue, Table, Value};

/// Adds the libraries to `globals`.
pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.raw_set("bit", bit(lua)?)?;
    globals.raw_set("cjson", super::json::library(lua)?)?;
    globals.raw_set("cmsgpack", super::msgpack::library(lua)?)?;
    globals.raw_set("struct", super::lua_struct::library(lua)?)?;
    Ok(())
}

/// LuaBitOp's argument normalisation: a number taken modulo 2^32 into a signed 32-bit
/// integer (fractions rounded to nearest, as its `2^52+2^51` trick does).
fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        Value::String(s) => String::from_utf8_lossy(&s.as_bytes())
            .trim()
            .parse::<f64>()
            .map_err(|_| mlua::Error::RuntimeError("bad argument (number expected)".into()))?,
        _ => {
            return Err(mlua::Error::RuntimeError(format!(
                "bad argument #1 to '?' (number expected, got {})",
                v.type_name()
            )));
        }
    };
    let rounded = n.round_ties_even();
    let wrapped = rounded.rem_euclid(4294967296.0);
    Ok(wrapped as u64 as u32 as i32)
}

fn args_bits(args: &MultiValue) -> mlua::Result<Vec<i32>> {
    args.iter().map(tobit).collect()
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|_, v: Value| Ok(tobit(&v)? as f64))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|_, v: Value| Ok(!tobit(&v)? as f64))?,
    )?;
    let fold = |op: fn(i32, i32) -> i32| {
        move |_: &Lua, args: MultiValue| {
            let bits = args_bits(&args)?;
            let mut it = bits.into_iter();
            let first = it.next().unwrap_or(0);
            Ok(it.fold(first, op) as f64)
        }
    };
    t.raw_set("band", lua.create_function(fold(|a, b| a & b))?)?;
    t.raw_set("bor", lua.create_function(fold(|a, b| a | b))?)?;
    t.raw_set("bxor", lua.create_function(fold(|a, b| a ^ b))?)?;
    let shift = |op: fn(i32, u32) -> i32| {
        move |_: &Lua, (a, n): (Value, Value)| Ok(op(tobit(&a)?, (tobit(&n)? & 31) as u32) as f64)
    };
    t.raw_set(
        "lshift",
        lua.create_function(shift(|a, n| ((a as u32) << n) as i32))?,
    )?;
    t.raw_set(
        "rshift",
        lua.create_function(shift(|a, n| ((a as u32) >> n) as i32))?,
    )?;
    t.raw_set("arshift", lua.create_function(shift(|a, n| a >> n))?)?;
    t.raw_set(
        "rol",
        lua.create_function(shift(|a, n| (a as u32).rotate_left(n) as i32))?,
    )?;
    t.raw_set(
        "ror",
        lua.create_function(shift(|a, n| (a as u32).rotate_right(n) as i32))?,
    )?;
    t.raw_set(
        "bswap",
        lua.create_function(|_, v: Value| Ok(tobit(&v)?.swap_bytes() as f64))?,
    )?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (v, n): (Value, Option<Value>)| {
            let x = tobit(&v)? as u32;
            let mut n = match n {
                Some(n) => tobit(&n)?,
                None => 8,
            };
            let upper = n < 0;
            if upper {
                // -2^31 has no positive counterpart: it means "all 8 digits" like any n < -8.
                n = n.checked_neg().unwrap_or(i32::MAX);
            }
            let n = n.clamp(1, 8) as usize;
            let text = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(text[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}
