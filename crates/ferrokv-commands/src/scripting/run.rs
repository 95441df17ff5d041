//! Running one script or function: atomically, with its commands run by a script client.
//!
//! The run holds every shard of the keyspace (`Keyspace::hold`), as EXEC does, so no other
//! client sees the keyspace between two of the script's commands: scripts may touch keys
//! they did not declare, so the plan cannot be narrowed to KEYS. Each `redis.call` goes
//! through `dispatch::call` with a client of its own (its database starts as the caller's;
//! SELECT in the script does not change the caller's), whose reply is parsed back into Lua.

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::Keyspace;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::convert::{self, Parsed};
use super::shebang::script_flag;
use super::vm::{ScriptResp, Vm};
use crate::client::{Client, ClientShared, Transport};
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::flag;

/// What is being run.
pub struct Invocation<'a> {
    /// The function's name (FCALL), `None` for EVAL.
    pub function: Option<&'a str>,
    /// `shebang::script_flag` bits.
    pub flags: u32,
    /// EVAL_RO / FCALL_RO.
    pub read_only_command: bool,
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
    /// The command line that started it (FUNCTION STATS).
    pub command: &'a [Bytes],
}

thread_local! {
    /// The script client of this thread, reused across runs.
    static SCRIPT_CLIENT: RefCell<Option<(Client, Reply)>> = const { RefCell::new(None) };
}

/// The state `redis.call` works with during one run.
struct CallState<'s> {
    server: &'s crate::Server,
    /// Runs the script's commands, as the caller's user.
    client: Client,
    /// The caller's client, which ACL LOG shows for a command the script was refused.
    caller: Arc<ClientShared>,
    reply: Reply,
    read_only: bool,
    /// The script declares `allow-oom`: its writes are not refused over `maxmemory`.
    allow_oom: bool,
    /// The caller is the primary's link (or the AOF): server state refuses nothing.
    must_obey: bool,
    /// A replica serving no stale data has lost its primary: only `stale` commands run.
    stale: bool,
    wrote: bool,
    now_ms: i64,
}

/// Runs `func` (an EVAL body or a library function) for `ctx`'s client and writes its
/// result or error as the reply.
pub fn run(ctx: &mut Ctx, vm: &mut Vm, func: Function, inv: Invocation) -> CmdResult {
    let server = ctx.server;
    let must_obey = ctx.client.must_obey;
    let stale = !must_obey && crate::replication::serving_stale(server, &ctx.client.config);
    if stale && inv.flags & script_flag::ALLOW_STALE == 0 {
        // Only reached when the checks before the command let it through: a script
        // without declared flags (EVAL is a `stale` command), or one queued in MULTI.
        return Err(CmdError::new(
            if inv.flags & script_flag::EVAL_COMPAT != 0 {
                crate::replication::MASTERDOWN
            } else {
                "MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' \
             and 'allow-stale' flag is not set"
            },
        ));
    }
    let busy = server.scripting.busy.clone();
    let (mut client, reply) = SCRIPT_CLIENT
        .with(|c| c.borrow_mut().take())
        .unwrap_or_else(|| new_script_client(ctx));
    client.select(ctx.client.db);
    if !Arc::ptr_eq(&client.config, &ctx.client.config) {
        client.refresh_config(ctx.client.config.clone(), ctx.client.config_epoch);
    }
    client.set_protocol(2);
    client.user = ctx.client.user.clone();
    let state = RefCell::new(CallState {
        server,
        client,
        caller: ctx.client.shared.clone(),
        reply,
        read_only: inv.read_only_command || inv.flags & script_flag::NO_WRITES != 0,
        allow_oom: inv.flags & script_flag::ALLOW_OOM != 0,
        must_obey,
        stale,
        wrote: false,
        now_ms: ctx.now_ms,
    });
    if let Some(resp) = vm.lua.app_data_ref::<ScriptResp>() {
        resp.0.set(2);
    }

    let hold = (!Keyspace::holding()).then(|| server.keyspace.hold(u64::MAX));
    busy.begin(inv.function.map(str::to_string), inv.command.to_vec());
    let outcome = vm.lua.scope(|scope| {
        let call = scope.create_function(|lua, args: MultiValue| {
            match raw_call(lua, &mut state.borrow_mut(), &busy, args)? {
                Ok(v) => Ok(v),
                Err(text) => Err(super::vm::raise(String::from_utf8_lossy(&text))),
            }
        })?;
        let pcall = scope.create_function(|lua, args: MultiValue| {
            match raw_call(lua, &mut state.borrow_mut(), &busy, args)? {
                Ok(v) => Ok(v),
                Err(text) => err_table(lua, &text),
            }
        })?;
        let acl_check = scope.create_function(|_, args: MultiValue| {
            let state = state.borrow();
            let argv = super::vm::acl_check_args(&args)?;
            let Some(entry) = super::vm::resolve(&argv) else {
                return Err(super::vm::raise(
                    "ERR Invalid command passed to server.acl_check_cmd()",
                ));
            };
            Ok(crate::acl::script_may_run(
                state.server,
                &state.client,
                entry,
                &argv,
            ))
        })?;
        vm.api.raw_set("call", call)?;
        vm.api.raw_set("pcall", pcall)?;
        vm.api.raw_set("acl_check_cmd", acl_check)?;
        let keys = string_table(&vm.lua, inv.keys)?;
        let args = string_table(&vm.lua, inv.args)?;
        if inv.function.is_none() {
            vm.globals.raw_set("KEYS", keys.clone())?;
            vm.globals.raw_set("ARGV", args.clone())?;
        }
        let result: (bool, Value) = vm.runner.call((func, keys, args))?;
        Ok(result)
    });
    busy.end();
    drop(hold);
    let _ = vm.api.raw_set("call", Value::Nil);
    let _ = vm.api.raw_set("pcall", Value::Nil);

    let script_resp = vm.lua.app_data_ref::<ScriptResp>().map_or(2, |r| r.0.get());
    let state = state.into_inner();
    SCRIPT_CLIENT.with(|c| *c.borrow_mut() = Some((state.client, state.reply)));
    match outcome {
        Ok((true, value)) => {
            convert::lua_to_reply(ctx.reply, &value, script_resp);
            Ok(())
        }
        Ok((false, Value::Table(err))) => Err(script_error(&err)),
        Ok((false, other)) => Err(CmdError::err(format!(
            "Error running script: {}",
            other.to_string().unwrap_or_default()
        ))),
        Err(e) => Err(CmdError::err(format!(
            "Error running script: {}",
            super::vm::error_text(&e)
        ))),
    }
}

fn new_script_client(ctx: &Ctx) -> (Client, Reply) {
    let shared = Arc::new(ClientShared::new(
        0,
        "lua".into(),
        String::new(),
        -1,
        Transport::Script,
        ctx.now_ms,
    ));
    let mut client = Client::new(shared, ctx.client.config.clone(), ctx.client.config_epoch);
    client.authenticated = true;
    client.deny_blocking = true;
    (client, Reply::new(false))
}

fn string_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// The error reply for a script that failed with the error table `err`.
fn script_error(err: &Table) -> CmdError {
    let msg = match err.raw_get::<Value>("err") {
        Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => "ERR unknown error".to_string(),
    };
    let source = err
        .raw_get::<Option<mlua::LuaString>>("source")
        .ok()
        .flatten();
    let line = err.raw_get::<Option<i64>>("line").ok().flatten();
    match (source, line) {
        (Some(source), Some(line)) => CmdError::new(format!(
            "{msg} script: on {}:{line}.",
            String::from_utf8_lossy(&source.as_bytes())
        )),
        _ => CmdError::new(msg),
    }
}

fn err_table(lua: &Lua, text: &[u8]) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(text)?)?;
    Ok(Value::Table(t))
}

/// Whether a command a script calls is refused because memory is over `maxmemory`: a
/// `denyoom` command, before the script's first write, unless the script declares
/// `allow-oom`. Memory is judged once, when the script's command was checked (the script
/// cannot be stopped halfway once it wrote). Valkey 9.1 checks this right after the
/// command's arity, before anything else (ACL, read-only scripts, a stale replica). A
/// script that declares its flags and may write was refused up front instead.
fn over_maxmemory(state: &CallState, flags: u64) -> bool {
    flags & flag::DENYOOM != 0
        && !state.wrote
        && !state.allow_oom
        && !state.must_obey
        && state.client.config.maxmemory > 0
        && crate::evict::out_of_memory_at_start()
}

/// Why a command a script calls may not write (`flags`: the command's), in Valkey's order:
/// a read-only script may neither write nor replicate; a script's first write is refused by
/// a read-only replica, data that cannot be persisted (MISCONF) or too few replicas. Once a
/// script wrote, it is not failed halfway on the server's state (Valkey's rule: a script
/// that wrote runs to its end). A script that declares its flags was checked up front by
/// them, so the server's state matters here for scripts without a shebang.
fn refuse_write(state: &CallState, flags: u64) -> Option<String> {
    if state.read_only && flags & (flag::WRITE | flag::MAY_REPLICATE) != 0 {
        return Some("ERR Write commands are not allowed from read-only scripts.".into());
    }
    if state.wrote || flags & flag::WRITE == 0 {
        return None;
    }
    // The primary's link is refused nothing but MISCONF (as for its other commands).
    let obeyed = state.must_obey;
    let config = &state.client.config;
    if !obeyed && crate::replication::read_only_replica(state.server, config) {
        return Some(crate::replication::READONLY.into());
    }
    if let Some(e) = crate::dispatch::disk_error(state.server, &state.client) {
        return Some(e.0.into_owned());
    }
    if !obeyed && crate::replication::too_few_replicas(state.server, config) {
        return Some(crate::replication::NOREPLICAS.into());
    }
    None
}

type CallOutcome = Result<Value, Vec<u8>>;

fn fail(text: &[u8]) -> mlua::Result<CallOutcome> {
    Ok(Err(text.to_vec()))
}

/// `redis.call` / `redis.pcall`: the reply as a Lua value, or the error reply's text.
fn raw_call(
    lua: &Lua,
    state: &mut CallState,
    busy: &super::Busy,
    args: MultiValue,
) -> mlua::Result<CallOutcome> {
    if args.is_empty() {
        return fail(b"ERR Please specify at least one argument for this call");
    }
    let mut argv = Vec::with_capacity(args.len());
    for v in args.iter() {
        match convert::command_arg(v) {
            Some(arg) => argv.push(arg),
            None => return fail(b"ERR Command arguments must be strings or integers"),
        }
    }
    let Some(entry) = super::vm::resolve(&argv) else {
        return fail(b"ERR Unknown command called from script");
    };
    let spec = entry.spec;
    let argc = argv.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return fail(b"ERR Wrong number of args calling command from script");
    }
    if spec.flags & flag::NOSCRIPT != 0 {
        return fail(b"ERR This Valkey command is not allowed from script");
    }
    if over_maxmemory(state, spec.flags) {
        return Ok(Err(crate::context::errors::OOM.0.as_bytes().to_vec()));
    }
    if state.stale && spec.flags & flag::STALE == 0 {
        return fail(b"ERR Can not execute the command on a stale replica");
    }
    if let Err(text) =
        crate::acl::authorize_in_script(state.server, &state.client, &state.caller, entry, &argv)
    {
        return Ok(Err(text.into_bytes()));
    }
    if let Some(refusal) = refuse_write(state, spec.flags) {
        return Ok(Err(refusal.into_bytes()));
    }
    if spec.flags & flag::WRITE != 0 && !state.wrote {
        state.wrote = true;
        busy.mark_wrote();
    }
    let resp3 = lua
        .app_data_ref::<ScriptResp>()
        .is_some_and(|r| r.0.get() == 3);
    let CallState {
        server,
        client,
        reply,
        now_ms,
        ..
    } = state;
    client.set_protocol(if resp3 { 3 } else { 2 });
    reply.clear();
    reply.set_resp3(resp3);
    crate::dispatch::call(server, client, reply, entry, &argv, *now_ms);
    Ok(match convert::reply_to_lua(lua, reply.bytes())? {
        Parsed::Value(v) => Ok(v),
        Parsed::Error(text) => Err(text),
    })
}
