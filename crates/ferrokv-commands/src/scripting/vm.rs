//! One Lua 5.1 state per worker thread: the sandbox, the `redis`/`server` API, compiled
//! scripts and functions.
//!
//! The sandbox follows Valkey 9.1: the globals scripts see are read-only (assigning one
//! fails with "Attempt to modify a readonly table", reading an undeclared one with "Script
//! attempted to access nonexistent global variable"), no `io`, `os` but `os.clock`, no
//! `loadfile`/`dofile`/`require`/`print`/`setfenv`/`getfenv`; the library tables are
//! read-only too. Globals are a proxy table over the real ones (stock Lua has no read-only
//! tables, Valkey's patched Lua has).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::busy::{Busy, Interrupt};
use super::shebang::script_flag;

/// The chunk name of internal Lua code (error positions skip it).
const INTERNAL: &str = "=ferrokv";

/// How many VM instructions run between two checks of the kill flag.
const HOOK_INTERVAL: u32 = 10_000;

/// Functions registered by the library being loaded.
#[derive(Default)]
pub struct Registrations(pub RefCell<Vec<Registration>>);

pub struct Registration {
    pub name: String,
    pub callback: Function,
    pub flags: u32,
    pub description: Option<Bytes>,
}

/// A compiled library function, and its library's environment.
pub struct CompiledFunction {
    pub callback: Function,
}

pub struct Vm {
    pub lua: Lua,
    /// The real globals (what the script proxy reads through).
    pub globals: Table,
    /// The real `redis` table: `call` and `pcall` are set for each run.
    pub api: Table,
    /// `runner(f, a, b)`: calls `f(a, b)` under the error handler; returns `ok, value`.
    pub runner: Function,
    /// Valkey's error handler (`error_handler`), which script runs are called under.
    pub error_handler: Function,
    /// The read-only proxy EVAL scripts get as their environment.
    pub env: Table,
    /// The globals library code sees while it loads (only `redis.register_function`,
    /// `redis.log` and the constants).
    load_globals: Table,
    /// `make_env(index)`: a read-only proxy over `index`, and its metatable.
    make_env: Function,
    pub scripts: HashMap<String, Function, foldhash::fast::RandomState>,
    pub scripts_epoch: u64,
    pub functions: HashMap<String, CompiledFunction>,
    pub libraries_version: Option<u64>,
    busy: Arc<Busy>,
    /// This state's memory, as INFO's server-wide sum reads it.
    memory: Arc<std::sync::atomic::AtomicUsize>,
}

impl Vm {
    /// Publishes this state's memory for INFO (a store to this thread's own slot: no
    /// shared counter is written per script).
    fn report_memory(&mut self) {
        self.memory
            .store(self.lua.used_memory(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Drops the compiled EVAL scripts (after SCRIPT FLUSH) and collects their memory.
    pub fn forget_scripts(&mut self, epoch: u64) {
        self.scripts.clear();
        self.scripts_epoch = epoch;
        let _ = self.lua.gc_collect();
        self.report_memory();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.busy.forget_lua_memory(&self.memory);
    }
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's Lua state (created on first use, or anew for another
/// server).
pub fn with_vm<R>(server: &crate::Server, f: impl FnOnce(&mut Vm) -> R) -> mlua::Result<R> {
    VM.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| mlua::Error::RuntimeError("ERR scripting engine re-entered".into()))?;
        let busy = &server.scripting.busy;
        if slot.as_ref().is_none_or(|vm| !Arc::ptr_eq(&vm.busy, busy)) {
            let server = server
                .arc()
                .ok_or_else(|| mlua::Error::RuntimeError("ERR server shutting down".into()))?;
            *slot = Some(Vm::new(server)?);
        }
        match slot.as_mut() {
            Some(vm) => {
                let result = f(vm);
                vm.report_memory();
                Ok(result)
            }
            None => Err(mlua::Error::RuntimeError("ERR no Lua state".into())),
        }
    })
}

/// An error raised by the server side of the API (`redis.call`'s error replies, argument
/// checks, kills): shown as it is, where a library's errors get the script position.
#[derive(Debug)]
pub struct ServerError(pub String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

/// Raises `text` as a [`ServerError`].
/// How long a library's top level may run when loaded (Valkey's `LOAD_TIMEOUT_MS`).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// While a library's top level runs: when it must have finished (None: no load runs, and
/// `register_function` refuses).
#[derive(Default)]
struct LoadDeadline(std::cell::Cell<Option<Instant>>);

pub fn raise(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ServerError(text.into()))
}

/// Whether `e` was raised by the server API.
fn is_server_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<ServerError>().is_some(),
        mlua::Error::CallbackError { cause, .. } => is_server_error(cause),
        mlua::Error::WithContext { cause, .. } => is_server_error(cause),
        _ => false,
    }
}

/// The text of an error raised by Rust code, or Lua's message for others.
pub fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::ExternalError(inner) => inner.to_string(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::WithContext { cause, .. } => error_text(cause),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    }
}

impl Vm {
    fn new(server: Arc<crate::Server>) -> mlua::Result<Vm> {
        let busy = server.scripting.busy.clone();
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS,
            LuaOptions::default(),
        )?;
        let globals = lua.globals();
        for name in [
            "dofile", "loadfile", "print", "require", "module", "setfenv", "getfenv", "newproxy",
            "package", "debug", "io",
        ] {
            globals.raw_set(name, Value::Nil)?;
        }
        let os = lua.create_table()?;
        let full_os: Table = globals.raw_get("os")?;
        os.raw_set("clock", full_os.raw_get::<Value>("clock")?)?;
        globals.raw_set("os", os)?;
        super::libs::install(&lua, &globals)?;

        let slots = lua.create_table()?;
        let handler = lua.create_function(error_handler)?;
        globals.raw_set("__redis__err__handler", handler.clone())?;
        globals.raw_set("__server__err__handler", handler.clone())?;

        slots.raw_set(
            "to_text",
            lua.create_function(|lua, v: Value| match v {
                Value::Error(e) => Ok(Value::String(lua.create_string(error_text(&e))?)),
                Value::Table(t) => match t.raw_get::<Value>("err")? {
                    Value::String(s) => Ok(Value::String(s)),
                    _ => Ok(Value::Table(t)),
                },
                other => Ok(other),
            })?,
        )?;
        let kill_check = busy.clone();
        slots.raw_set(
            "interrupted",
            lua.create_function(move |_, ()| Ok(kill_check.interrupt().is_some()))?,
        )?;
        let setup: Table = lua.load(SETUP_LUA).set_name(INTERNAL).call((
            globals.clone(),
            slots.clone(),
            handler.clone(),
        ))?;
        let runner: Function = setup.raw_get("runner")?;
        globals.raw_set("pcall", setup.raw_get::<Function>("pcall")?)?;
        for name in [
            "pairs",
            "next",
            "ipairs",
            "setmetatable",
            "loadstring",
            "load",
            "xpcall",
        ] {
            globals.raw_set(name, setup.raw_get::<Function>(name)?)?;
        }
        let make_env: Function = setup.raw_get("make_env")?;
        let protect_globals: Function = setup.raw_get("protect_globals")?;

        let api = build_api(&lua)?;
        super::run::install_call_api(&lua, &api, server)?;
        let readonly: Function = setup.raw_get("readonly")?;
        let api_proxy: Table = readonly.call(api.clone())?;
        globals.raw_set("redis", api_proxy.clone())?;
        globals.raw_set("server", api_proxy)?;
        for lib in [
            "string",
            "math",
            "table",
            "os",
            "coroutine",
            "bit",
            "cjson",
            "cmsgpack",
            "struct",
        ] {
            if let Value::Table(t) = globals.raw_get::<Value>(lib)? {
                let proxy: Table = readonly.call(t)?;
                globals.raw_set(lib, proxy)?;
            }
        }
        let (env, _): (Table, Table) = make_env.call(globals.clone())?;
        globals.raw_set("_G", env.clone())?;
        protect_globals.call::<()>(globals.clone())?;

        let load_api = build_load_api(&lua)?;
        let load_globals = lua.create_table()?;
        let load_api_proxy: Table = setup.raw_get::<Function>("strict")?.call(load_api)?;
        load_globals.raw_set("redis", load_api_proxy.clone())?;
        load_globals.raw_set("server", load_api_proxy)?;
        protect_globals.call::<()>(load_globals.clone())?;

        let hook_busy = busy.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INTERVAL),
            move |lua, _| match hook_busy.interrupt() {
                // A library's top level only registers functions: one that runs on is
                // stopped, as Valkey does after 500 ms (the load holds its caller).
                None if lua
                    .app_data_ref::<LoadDeadline>()
                    .and_then(|d| d.0.get())
                    .is_some_and(|deadline| Instant::now() > deadline) =>
                {
                    Err(raise("ERR FUNCTION LOAD timeout"))
                }
                None => {
                    super::run::promote_if_long(&hook_busy);
                    super::run::let_others_in_if_long();
                    Ok(VmState::Continue)
                }
                Some(Interrupt::Killed { function }) => Err(raise(if function {
                    "ERR Script killed by user with FUNCTION KILL."
                } else {
                    "ERR Script killed by user with SCRIPT KILL."
                })),
                Some(Interrupt::Shutdown) => Err(raise("ERR Script killed by SHUTDOWN")),
            },
        )?;
        lua.set_app_data(Registrations::default());
        lua.set_app_data(LoadDeadline::default());

        Ok(Vm {
            lua,
            globals,
            api,
            runner,
            error_handler: handler,
            env,
            load_globals,
            make_env,
            scripts: HashMap::default(),
            scripts_epoch: 0,
            functions: HashMap::new(),
            libraries_version: None,
            memory: busy.lua_memory_slot(),
            busy,
        })
    }

    /// Compiles an EVAL script body (chunk `@user_script`, the script environment).
    pub fn compile_script(&self, body: &[u8]) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| format!("Error compiling script (new function): {}", error_text(&e)))
    }

    /// Runs a library's code in the load environment and returns what it registered.
    /// Its functions then see the full script globals.
    pub fn load_library(&self, body: &[u8]) -> Result<Vec<Registration>, String> {
        let (env, meta): (Table, Table) = self
            .make_env
            .call(self.load_globals.clone())
            .map_err(|e| error_text(&e))?;
        let chunk = self
            .lua
            .load(body)
            .set_name("@user_function")
            .set_environment(env)
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", error_text(&e)))?;
        if let Some(regs) = self.lua.app_data_ref::<Registrations>() {
            regs.0.borrow_mut().clear();
        }
        let deadline = self.lua.app_data_ref::<LoadDeadline>();
        if let Some(d) = &deadline {
            d.0.set(Some(Instant::now() + LOAD_TIMEOUT));
        }
        let outcome: mlua::Result<(bool, Value)> =
            self.runner.call((chunk, Value::Nil, Value::Nil));
        if let Some(d) = &deadline {
            d.0.set(None);
        }
        drop(deadline);
        let registered = self
            .lua
            .app_data_ref::<Registrations>()
            .map(|r| std::mem::take(&mut *r.0.borrow_mut()))
            .unwrap_or_default();
        match outcome {
            Ok((true, _)) => {}
            Ok((false, Value::Table(err))) => {
                let text = err
                    .raw_get::<Option<mlua::LuaString>>("err")
                    .ok()
                    .flatten()
                    .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
                    .unwrap_or_else(|| "ERR unknown error".into());
                return Err(format!("Error registering functions: {text}"));
            }
            Ok((false, other)) => return Err(format!("Error registering functions: {other:?}")),
            Err(e) => return Err(format!("Error registering functions: {}", error_text(&e))),
        }
        // From now on the library's functions run with the full API.
        meta.raw_set("__index", self.globals.clone())
            .map_err(|e| error_text(&e))?;
        Ok(registered)
    }
}

/// The Lua side of the sandbox: read-only proxies, the runner and the error wrappers.
const SETUP_LUA: &str = r#"
local G, slots, handler = ...
local error, setmetatable, xpcall, tostring = error, setmetatable, xpcall, tostring
local function deny() error("Attempt to modify a readonly table", 2) end
-- Each read-only proxy's table, so that pairs, next and ipairs see through the proxy (Lua
-- 5.1 has no __pairs; Valkey marks the tables themselves read-only instead).
local proxied = setmetatable({}, {__mode = "k"})
-- What getmetatable shows of a protected table: a table that cannot be changed either.
local frozen_meta = setmetatable({}, {__newindex = deny, __metatable = false})
local function readonly(t)
  local proxy = setmetatable({}, {__index = t, __newindex = deny, __metatable = frozen_meta})
  proxied[proxy] = t
  return proxy
end
local raw_setmetatable, raw_getmetatable = setmetatable, getmetatable
local function setmetatable_(t, m)
  -- No position, as the error of Valkey's C setmetatable has none.
  if proxied[t] or raw_getmetatable(t) == frozen_meta then
    error("Attempt to modify a readonly table", 0)
  end
  return raw_setmetatable(t, m)
end
-- Binary chunks are refused as Valkey refuses them: its Lua parses every chunk as text, so
-- bytecode fails like a syntax error (loading bytecode can break out of the sandbox).
local raw_loadstring, sub, find, concat = loadstring, string.sub, string.find, table.concat
local function chunk_id(source)
  local first = sub(source, 1, 1)
  if first == "=" or first == "@" then return sub(source, 2) end
  local len = (find(source, "[%z\n\r]") or #source + 1) - 1
  local truncated = len < #source and sub(source, len + 1, len + 1) ~= "\0"
  if len > 45 then len, truncated = 45, true end
  return '[string "' .. sub(source, 1, len) .. (truncated and '..."]' or '"]')
end
local function binary_refused(text, name)
  return nil, chunk_id(name or text) .. ":1: unexpected symbol near 'char(27)'"
end
local function loadstring_(text, name)
  if type(text) == "string" and sub(text, 1, 1) == "\27" then
    return binary_refused(text, name)
  end
  return raw_loadstring(text, name)
end
local function load_(reader, name)
  local pieces = {}
  while true do
    local piece = reader()
    if piece == nil or piece == "" then break end
    pieces[#pieces + 1] = piece
  end
  local text = concat(pieces)
  if sub(text, 1, 1) == "\27" then return binary_refused(text, name or "=(load)") end
  return raw_loadstring(text, name or "=(load)")
end
local raw_next, raw_ipairs = next, ipairs
local function next_(t, k)
  return raw_next(proxied[t] or t, k)
end
local function pairs_(t)
  return raw_next, proxied[t] or t, nil
end
local function ipairs_(t)
  return raw_ipairs(proxied[t] or t)
end
local function strict_index(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local function strict(t)
  setmetatable(t, {__index = strict_index})
  return readonly(t)
end
local function protect_globals(t)
  setmetatable(t, {__index = strict_index})
end
local function make_env(index)
  local meta = {__index = index, __newindex = deny, __metatable = frozen_meta}
  return setmetatable({}, meta), meta
end
-- The function and arguments travel in upvalues, so a run creates no closure.
local run_f, run_a, run_b
local function trampoline()
  local f, a, b = run_f, run_a, run_b
  run_f, run_a, run_b = nil, nil, nil
  return f(a, b)
end
local function runner(f, a, b)
  run_f, run_a, run_b = f, a, b
  return xpcall(trampoline, handler)
end
-- redis.call raises its errors from Rust (as error objects, so that `return
-- redis.call(...)` keeps the script's frame for the error position). As in Valkey, a
-- script's own pcall hands back an error's text: the `err` of an error table, the message
-- of an error raised by the server API or a library.
local raw_pcall, to_text, interrupted = pcall, slots.to_text, slots.interrupted
local function settle(ok, ...)
  if ok then return ok, ... end
  -- SCRIPT KILL / FUNCTION KILL / SHUTDOWN cannot be caught: a script that pcalls in a loop
  -- would never end otherwise (Valkey's hook fires on every line after a kill).
  if interrupted() then error((...), 0) end
  return false, to_text((...))
end
local function pcall_(f, ...)
  return settle(raw_pcall(f, ...))
end
local raw_xpcall = xpcall
local function xsettle(ok, ...)
  if not ok and interrupted() then error((...), 0) end
  return ok, ...
end
local function xpcall_(f, handler)
  return xsettle(raw_xpcall(f, handler))
end
return {readonly = readonly, strict = strict, protect_globals = protect_globals,
        make_env = make_env, runner = runner, pcall = pcall_, pairs = pairs_,
        next = next_, ipairs = ipairs_, setmetatable = setmetatable_,
        loadstring = loadstring_, load = load_, xpcall = xpcall_}
"#;

/// Valkey's error handler: turns any error into a `{err=...}` table and records where in
/// the user's code it happened (`source`, `line`).
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let position = user_position(lua);
    let table = match err {
        Value::Table(t) => t,
        Value::Error(e) => {
            let text = error_text(&e);
            // The server API raises `ERR ...` texts as they are; a library (cjson, bit)
            // raises a message that Valkey shows with the script position before it.
            let text = match (&position, is_server_error(&e)) {
                (_, true) => text,
                (Some((source, Some(line))), false) => format!(
                    "ERR {}:{line}: {text}",
                    source.strip_prefix('@').unwrap_or(source)
                ),
                (_, false) => format!("ERR {text}"),
            };
            let t = lua.create_table()?;
            t.raw_set("err", text)?;
            t
        }
        other => {
            let text = match lua.coerce_string(other.clone())? {
                Some(s) => s.as_bytes().to_vec(),
                None => match &other {
                    Value::Nil => b"nil".to_vec(),
                    Value::Boolean(b) => b.to_string().into_bytes(),
                    v => format!("{}: {:p}", v.type_name(), v.to_pointer()).into_bytes(),
                },
            };
            let mut msg = b"ERR ".to_vec();
            msg.extend_from_slice(&text);
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(&msg)?)?;
            t
        }
    };
    if let Some((source, line)) = position {
        table.raw_set("source", source)?;
        if let Some(line) = line {
            table.raw_set("line", line as i64)?;
        }
    }
    Ok(table)
}

/// The innermost frame of user code on the stack (skipping C functions and this module's
/// Lua helpers): its chunk name and current line.
fn user_position(lua: &Lua) -> Option<(String, Option<usize>)> {
    for level in 1..200 {
        let (skip, source, line) = lua.inspect_stack(level, |d| {
            let s = d.source();
            let source = s.source.map(|x| x.into_owned());
            let skip = s.what == "C" || source.as_deref() == Some(INTERNAL);
            (skip, source, d.current_line())
        })?;
        if !skip {
            return source.map(|s| (s, line));
        }
    }
    None
}

fn add_constants(lua: &Lua, api: &Table) -> mlua::Result<()> {
    api.raw_set("REDIS_VERSION", "7.2.4")?;
    api.raw_set("REDIS_VERSION_NUM", 0x07_02_04)?;
    api.raw_set("VALKEY_VERSION", "9.1.2")?;
    api.raw_set("VALKEY_VERSION_NUM", 0x09_01_02)?;
    api.raw_set("SERVER_NAME", "valkey")?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        api.raw_set(name, level)?;
    }
    api.raw_set("log", lua.create_function(log)?)?;
    Ok(())
}

/// `redis.log(level, message ...)`
fn log(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(raise("ERR server.log() requires two arguments or more."));
    }
    let level = match args.front() {
        Some(Value::Integer(n)) => *n,
        Some(Value::Number(n)) => *n as i64,
        _ => -1,
    };
    if !(0..=3).contains(&level) {
        return Err(raise("ERR Invalid log level."));
    }
    let mut message = Vec::new();
    for (i, v) in args.iter().skip(1).enumerate() {
        if i > 0 {
            message.push(b' ');
        }
        if let Some(s) = lua.coerce_string(v.clone())? {
            message.extend_from_slice(&s.as_bytes());
        }
    }
    let text = String::from_utf8_lossy(&message);
    match level {
        0 => log::debug!("{text}"),
        1 => log::info!("{text}"),
        2 => log::info!("{text}"),
        _ => log::warn!("{text}"),
    }
    Ok(())
}

/// The API EVAL scripts and functions see at run time.
fn build_api(lua: &Lua) -> mlua::Result<Table> {
    let api = lua.create_table()?;
    add_constants(lua, &api)?;
    for (name, value) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2)] {
        api.raw_set(name, value)?;
    }
    api.raw_set("REPL_REPLICA", 2)?;
    api.raw_set("REPL_ALL", 3)?;
    api.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise("ERR wrong number of arguments"));
            }
            let data = args
                .front()
                .and_then(|v| lua.coerce_string(v.clone()).ok().flatten())
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default();
            Ok(super::sha1_hex(&data))
        })?,
    )?;
    api.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| {
            let t = lua.create_table()?;
            match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => {
                    let text = s.as_bytes().to_vec();
                    t.raw_set("err", lua.create_string(error_reply_text(&text))?)?;
                }
                _ => t.raw_set("err", "ERR wrong number or type of arguments")?,
            }
            Ok(t)
        })?,
    )?;
    api.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| {
            let t = lua.create_table()?;
            match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => t.raw_set("ok", s.clone())?,
                _ => t.raw_set("err", "ERR wrong number or type of arguments")?,
            }
            Ok(t)
        })?,
    )?;
    api.raw_set(
        "setresp",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise("ERR server.setresp() requires one argument."));
            }
            let resp = match args.front() {
                Some(Value::Integer(n)) => *n,
                Some(Value::Number(n)) => *n as i64,
                _ => 0,
            };
            if resp != 2 && resp != 3 {
                return Err(raise("ERR RESP version must be 2 or 3."));
            }
            super::run::set_script_resp(resp as u8);
            Ok(())
        })?,
    )?;
    api.raw_set(
        "set_repl",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise("ERR server.set_repl() requires one argument."));
            }
            let flags = match args.front() {
                Some(Value::Integer(n)) => *n,
                Some(Value::Number(n)) => *n as i64,
                _ => -1,
            };
            if !(0..=3).contains(&flags) {
                return Err(raise(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            crate::propagate::set_script_targets(flags as u8);
            Ok(())
        })?,
    )?;
    api.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    api.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    api.raw_set(
        "debug",
        lua.create_function(|_, _: MultiValue| Ok(Value::Nil))?,
    )?;
    Ok(api)
}

/// `server.acl_check_cmd`'s arguments as a command line, or Valkey's error for a call with
/// none. (The function itself is bound per run, where it knows the script's user.)
pub fn acl_check_args(args: &MultiValue) -> mlua::Result<Vec<Bytes>> {
    let Some(first) = args.front() else {
        return Err(raise(
            "ERR Please specify at least one argument for this call",
        ));
    };
    let name = match first {
        Value::String(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    if crate::table::TABLE.lookup(&name).is_none() {
        return Err(raise(
            "ERR Invalid command passed to server.acl_check_cmd()",
        ));
    }
    Ok(args
        .iter()
        .map(|v| super::convert::command_arg(v).unwrap_or_default())
        .collect())
}

/// The text `redis.error_reply` stores: a leading `-` is dropped, and a message without an
/// error code (no space) gets `ERR`.
pub fn error_reply_text(msg: &[u8]) -> Vec<u8> {
    let (code, text): (&[u8], &[u8]) = match msg.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(space) => (&rest[..space], &rest[space + 1..]),
            None => (b"ERR", rest),
        },
        None => {
            let mut out = b"-".to_vec();
            out.extend_from_slice(msg);
            return error_reply_text(&out);
        }
    };
    let text = trim_crlf(text);
    let mut out = code.to_vec();
    out.push(b' ');
    out.extend_from_slice(text);
    out
}

fn trim_crlf(mut s: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// The table entry for a command line, descending into subcommands.
pub fn resolve(argv: &[Bytes]) -> Option<&'static crate::table::TableEntry> {
    let entry = crate::table::TABLE.lookup(argv.first()?)?;
    if entry.spec.subcommands.is_empty() || argv.len() == 1 {
        return Some(entry);
    }
    crate::table::TABLE.find_sub(entry, &argv[1])
}

/// The API library code sees while it loads.
fn build_load_api(lua: &Lua) -> mlua::Result<Table> {
    let api = lua.create_table()?;
    add_constants(lua, &api)?;
    api.raw_set("register_function", lua.create_function(register_function)?)?;
    Ok(api)
}

/// A string or number argument as bytes (Lua's `lua_isstring`).
fn lua_str(lua: &Lua, v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec()),
        _ => None,
    }
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=, callback=, flags=, description=}`.
fn register_function(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    // Reachable from a function's body through a reference kept at load time.
    if lua
        .app_data_ref::<LoadDeadline>()
        .is_none_or(|load| load.0.get().is_none())
    {
        return Err(raise(
            "ERR server.register_function can only be called on FUNCTION LOAD command",
        ));
    }
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err(raise(
                    "ERR calling server.register_function with a single argument is only applicable to Lua table (representing named arguments).",
                ));
            };
            let mut name = None;
            let mut callback = None;
            let mut flags = 0;
            let mut description = None;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = match k {
                    Value::String(k) => k.as_bytes().to_vec(),
                    _ => Vec::new(),
                };
                match &*key {
                    b"function_name" => match lua_str(lua, &v) {
                        Some(s) => name = Some(s),
                        None => {
                            return Err(raise(
                                "ERR function_name argument given to server.register_function must be a string",
                            ));
                        }
                    },
                    b"description" => match lua_str(lua, &v) {
                        Some(s) => description = Some(Bytes::from(s)),
                        None => {
                            return Err(raise(
                                "ERR description argument given to server.register_function must be a string",
                            ));
                        }
                    },
                    b"callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => {
                            return Err(raise(
                                "ERR callback argument given to server.register_function must be a function",
                            ));
                        }
                    },
                    b"flags" => match v {
                        Value::Table(list) => {
                            for item in list.sequence_values::<Value>() {
                                let flag = match item? {
                                    Value::String(s) => script_flag::by_name(&s.as_bytes()),
                                    _ => None,
                                };
                                flags |= flag.ok_or_else(|| raise("ERR unknown flag given"))?;
                            }
                        }
                        _ => {
                            return Err(raise(
                                "ERR flags argument to server.register_function must be a table representing function flags",
                            ));
                        }
                    },
                    _ => {
                        return Err(raise(
                            "ERR unknown argument given to server.register_function",
                        ));
                    }
                }
            }
            let Some(name) = name else {
                return Err(raise(
                    "ERR server.register_function must get a function name argument",
                ));
            };
            let Some(callback) = callback else {
                return Err(raise(
                    "ERR server.register_function must get a callback argument",
                ));
            };
            (name, callback, flags, description)
        }
        2 => {
            let mut it = args.iter();
            let name = match it.next().and_then(|v| lua_str(lua, v)) {
                Some(s) => s,
                None => {
                    return Err(raise(
                        "ERR first argument to server.register_function must be a string",
                    ));
                }
            };
            let callback = match it.next() {
                Some(Value::Function(f)) => f.clone(),
                _ => {
                    return Err(raise(
                        "ERR second argument to server.register_function must be a function",
                    ));
                }
            };
            (name, callback, 0, None)
        }
        _ => {
            return Err(raise(
                "ERR wrong number of arguments to server.register_function",
            ));
        }
    };
    // Names are checked once the library has loaded (`cmd/scripting.rs`), as Valkey does.
    let name = String::from_utf8_lossy(&name).into_owned();
    let Some(regs) = lua.app_data_ref::<Registrations>() else {
        return Err(raise(
            "ERR server.register_function can only be called on FUNCTION LOAD command",
        ));
    };
    // Duplicates are refused once the library has loaded (`cmd/scripting.rs`).
    regs.0.borrow_mut().push(Registration {
        name,
        callback,
        flags,
        description,
    });
    Ok(())
}
