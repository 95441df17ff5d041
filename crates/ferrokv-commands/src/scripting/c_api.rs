//! The two crossings between Rust and Lua that every script run makes, on Lua's C API:
//! calling the script (its KEYS and ARGV tables, the protected call under the error
//! handler) and `redis.call` / `redis.pcall`, registered as plain C functions.
//!
//! Why not mlua here: mlua parks every value it passes to or from Rust in a slot of its
//! reference thread and wraps calls in frames of its own; for a small script that was
//! most of the gap to Valkey's EVALSHA. The rest of the scripting API (the library
//! functions, the error handler, the hook) stays on mlua.
//!
//! # Soundness
//!
//! - Each function documents what it expects of the stack and leaves it balanced.
//! - Lua raises errors with `longjmp`, which must not skip a Rust destructor. The only
//!   raise here is `lua_error` at the end of [`server_call`], whose frame holds nothing
//!   then: the call's work happens in [`call`], which has returned and dropped everything.
//!   The pushes themselves do not raise (see `convert`), and `lua_pcall` catches what the
//!   script raises.
//! - A panic must not unwind into Lua's C frames: [`call`] runs under `catch_unwind` and a
//!   panic becomes an error raised to the script.

use std::ffi::c_int;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use mlua::ffi::{self, lua_State};
use mlua::state::RawLua;
use mlua::{Function, Value};

use super::convert;
use super::run::CallFailure;

/// A script called by [`call_script`]: its result (or error) waits on the stack at
/// `base + 2`, above the error handler, until [`take_result`] or [`discard`].
#[must_use]
pub struct PendingResult {
    base: c_int,
    status: c_int,
}

/// Calls `func(KEYS, ARGV)` under `handler` (and sets the globals `KEYS` and `ARGV` first
/// when `set_globals`, as EVAL does). `Err` when the function cannot even be pushed.
///
/// # Safety
/// `raw` is the worker's Lua state, not inside a call of Lua code.
pub unsafe fn call_script(
    raw: &RawLua,
    handler: &Function,
    func: &Function,
    keys: &[Bytes],
    args: &[Bytes],
    set_globals: bool,
) -> mlua::Result<PendingResult> {
    let l = raw.state();
    // SAFETY: room is made for the handler, the function, the two tables and a global's
    // name and value; `lua_pcall` pops the function and its arguments and pushes one value.
    unsafe {
        let base = ffi::lua_gettop(l);
        if ffi::lua_checkstack(l, 6) == 0 {
            return Err(mlua::Error::StackError);
        }
        if !set_globals {
            // EVAL leaves its KEYS and ARGV in the globals that functions share; in Valkey
            // functions run in a Lua state of their own, where these names do not exist.
            ffi::lua_pushnil(l);
            set_global(l, c"KEYS");
            set_global(l, c"ARGV");
            ffi::lua_settop(l, base);
        }
        if let Err(e) = raw.push(handler).and_then(|()| raw.push(func)) {
            ffi::lua_settop(l, base);
            return Err(e);
        }
        push_string_array(l, keys);
        if set_globals {
            set_global(l, c"KEYS");
        }
        push_string_array(l, args);
        if set_globals {
            set_global(l, c"ARGV");
        }
        let status = ffi::lua_pcall(l, 2, 1, base + 1);
        Ok(PendingResult { base, status })
    }
}

/// Writes the result of a script that ran into `reply` (`Ok`), or hands back the error
/// value it failed with; either way the stack is as before `call_script`.
///
/// # Safety
/// `pending` is the last call of `call_script` on `raw`, not yet taken or discarded.
pub unsafe fn take_result(
    raw: &RawLua,
    pending: PendingResult,
    reply: &mut Reply,
    script_resp: u8,
) -> Result<(), Value> {
    let l = raw.state();
    // SAFETY: the result is at `base + 2`, on top.
    unsafe {
        let outcome = if pending.status == 0 {
            convert::write_value(l, pending.base + 2, reply, script_resp);
            Ok(())
        } else {
            Err(raw.pop_value())
        };
        ffi::lua_settop(l, pending.base);
        outcome
    }
}

/// Drops the result of a script run that starts again.
///
/// # Safety
/// As `take_result`.
pub unsafe fn discard(raw: &RawLua, pending: PendingResult) {
    // SAFETY: restores the stack `call_script` found.
    unsafe { ffi::lua_settop(raw.state(), pending.base) }
}

/// Pushes a new array of the strings `items`.
///
/// # Safety
/// Room for three values on `l`'s stack.
unsafe fn push_string_array(l: *mut lua_State, items: &[Bytes]) {
    // SAFETY: the table stays at -2 while each string is pushed and stored.
    unsafe {
        ffi::lua_createtable(l, c_int::try_from(items.len()).unwrap_or(0), 0);
        for (i, item) in items.iter().enumerate() {
            convert::push_bytes(l, item);
            ffi::lua_rawseti_(l, -2, c_int::try_from(i + 1).unwrap_or(c_int::MAX));
        }
    }
}

/// Sets the global `name` (raw: the globals' metatable only guards reads) to the value on
/// top, which stays there.
///
/// # Safety
/// A value on top and room for two more.
unsafe fn set_global(l: *mut lua_State, name: &std::ffi::CStr) {
    // SAFETY: pushes the name and a copy of the value; `lua_rawset` pops both.
    unsafe {
        ffi::lua_pushstring_(l, name.as_ptr());
        ffi::lua_pushvalue(l, -2);
        ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
    }
}

/// `redis.call`: the command's reply as a Lua value; an error reply, or a call refused, is
/// raised as an `{err=...}` table (the error handler adds where it happened).
///
/// # Safety
/// Called by Lua only.
pub unsafe extern "C-unwind" fn server_call(l: *mut lua_State) -> c_int {
    // SAFETY: `call` pushes one value and returns with nothing left to drop, so the raise
    // skips no destructor.
    unsafe {
        if call(l, true) {
            ffi::lua_error(l);
        }
    }
    1
}

/// `redis.pcall`: like `redis.call`, but an error reply is returned as the `{err=...}`
/// table. (Calls that may not run at all still raise.)
///
/// # Safety
/// Called by Lua only.
pub unsafe extern "C-unwind" fn server_pcall(l: *mut lua_State) -> c_int {
    // SAFETY: as `server_call`.
    unsafe {
        if call(l, false) {
            ffi::lua_error(l);
        }
    }
    1
}

/// Runs the call and pushes its result; returns whether that value must be raised.
///
/// # Safety
/// `l` is the state of a C function call (`LUA_MINSTACK` free slots).
unsafe fn call(l: *mut lua_State, raise_error_replies: bool) -> bool {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: arguments are read from the call's own stack; the reply is pushed with
        // the room Lua gives a C function.
        let args = unsafe { convert::command_args(l) };
        super::run::call_command(args, |reply| unsafe { convert::push_reply(l, reply) })
    }));
    let (text, raise, counted): (&[u8], bool, bool) = match &outcome {
        Ok(Ok(())) => return false,
        Ok(Err(CallFailure::Reply(text))) => (text, raise_error_replies, true),
        Ok(Err(CallFailure::Raise(text))) => (text, true, false),
        Err(_) => (b"ERR server.call failed unexpectedly", true, false),
    };
    // SAFETY: room for the table, its string and a boolean (nothing else was pushed on
    // failure).
    unsafe {
        convert::push_field_table(l, c"err", text);
        if counted {
            // The error was counted in INFO errorstats when the call failed; the script
            // returning or raising it again must not count it twice (Valkey's field).
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
        }
    }
    raise
}
