//! Running one script or function: atomically, with its commands run by a script client.
//!
//! A run holds shards of the keyspace (`Keyspace::hold`), as EXEC does, so no other client
//! sees the keys it touches between two of its commands. A script that declares keys holds
//! only their shards, so scripts on different threads run side by side; it does not
//! register as *the* running script unless it runs long (`PROMOTE_AFTER_MS`: from then on
//! other clients wait for it, get BUSY and can kill it, as in Valkey). Scripts may touch
//! keys they did not declare: before each command the run adds the shards that command
//! needs (`Keyspace::widen_hold`: waited for in ascending order, only tried below). When a
//! lower shard is busy and the script has changed nothing yet, the run starts again holding
//! every shard; after a change it waits for the shard, up to `busy-reply-threshold`. Only a
//! script whose previous run on this thread stayed within its declared keys' shards runs
//! narrow: one that declares no keys, runs for the first time here, or reached an
//! undeclared key last time holds every shard and registers from the start. Each `redis.call` goes through
//! `dispatch::call` with a client of its own (its database starts as the caller's; SELECT
//! in the script does not change the caller's), whose reply is parsed back into Lua.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::Keyspace;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::shebang::script_flag;
use super::vm::Vm;
use crate::client::{Client, ClientShared, Transport};
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::flag;

/// What is being run.
pub struct Invocation<'a> {
    /// The function's name (FCALL), `None` for EVAL.
    pub function: Option<&'a str>,
    /// The script's SHA1 or the function's name: what this thread remembers about it.
    pub id: &'a str,
    /// `shebang::script_flag` bits.
    pub flags: u32,
    /// EVAL_RO / FCALL_RO.
    pub read_only_command: bool,
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
    /// The command line that started it (FUNCTION STATS).
    pub command: &'a [Bytes],
}

/// The state `redis.call` works with: this thread's script client, kept across runs, and
/// the fields of the run in progress (`caller` is `None` between runs).
struct CallState {
    /// Runs the script's commands, as the caller's user.
    client: Client,
    reply: Reply,
    /// The caller's client, which ACL LOG shows for a command the script was refused.
    caller: Option<Arc<ClientShared>>,
    read_only: bool,
    /// The script declares `allow-oom`: its writes are not refused over `maxmemory`.
    allow_oom: bool,
    /// Memory was over `maxmemory` when the command that runs the script was checked
    /// (kept here: other clients' commands may run on this thread while a long script is
    /// suspended, see `fiber`).
    out_of_memory_at_start: bool,
    /// The caller is the primary's link (or the AOF): server state refuses nothing.
    must_obey: bool,
    /// A replica serving no stale data has lost its primary: only `stale` commands run.
    stale: bool,
    wrote: bool,
    /// A command that writes or propagates ran: the run can no longer start again.
    effects: bool,
    now_ms: i64,
    /// The run holds only some shards (its own narrow hold): it is not registered in
    /// `Busy` unless `promoted`, and it may start again holding every shard.
    narrow: bool,
    /// It registered itself after running long (`promote_if_long`).
    promoted: bool,
    /// It must: a command needed a busy shard before anything changed.
    restart: bool,
    /// A command needed shards beyond those of the declared keys.
    widened: bool,
    /// The shards of the declared keys.
    declared: u64,
    /// When the run started (Unix ms), its function and command: what `Busy` shows once
    /// the run registers.
    started_ms: i64,
    /// When the run last let other clients of this thread in (`let_others_in_if_long`).
    last_slice_ms: i64,
    function: Option<String>,
    command: Vec<Bytes>,
}

impl CallState {
    /// A narrow run in progress that has not registered in `Busy`.
    fn unregistered(&self) -> bool {
        self.narrow && !self.promoted && self.caller.is_some()
    }
}

/// How long a script holding only its keys' shards runs before registering as the running
/// script. Shorter runs, nearly all of them, never touch the shared `Busy` state.
const PROMOTE_AFTER_MS: i64 = 20;

/// Raised inside a run that must start again; never reaches a client.
const RESTART: &str = "ERR script restarts holding every shard";

thread_local! {
    /// What this thread learnt of scripts and functions that declare keys: `true` when
    /// its run here touched only the shards of its declared keys (it runs holding only
    /// those), `false` once one reached another shard (it holds every shard from then on:
    /// only such a script's one narrow run that widened can meet another client half-way).
    /// Unknown ones hold every shard (bounded: forgotten wholesale past `NARROW_REMEMBERED`).
    static NARROW_SCRIPTS: RefCell<std::collections::HashMap<String, bool, foldhash::fast::RandomState>> =
        RefCell::new(std::collections::HashMap::default());
}

const NARROW_REMEMBERED: usize = 10_000;

thread_local! {
    /// The server of the runs on this thread, apart from `CALL_STATE` so that `redis.call`
    /// borrows it while it changes the run's state (no reference count touched per call).
    static RUN_SERVER: RefCell<Option<Arc<crate::Server>>> = const { RefCell::new(None) };
}

thread_local! {
    /// This thread's `CallState`. `redis.call` and `redis.pcall` are registered once per Lua
    /// state and find the run here: creating them per run (scoped callbacks) cost more than
    /// a small script's own work.
    static CALL_STATE: RefCell<Option<CallState>> = const { RefCell::new(None) };
}

/// Registers `call`, `pcall` and `acl_check_cmd` in the API table `api` of a new Lua state.
pub fn install_call_api(lua: &Lua, api: &Table, server: Arc<crate::Server>) -> mlua::Result<()> {
    // SAFETY: both are C functions written for Lua's calling convention (`c_api`).
    let call = unsafe { lua.create_c_function(super::c_api::server_call)? };
    let pcall = unsafe { lua.create_c_function(super::c_api::server_pcall)? };
    let acl_check = lua.create_function(move |_, args: MultiValue| {
        let argv = super::vm::acl_check_args(&args)?;
        let Some(entry) = super::vm::resolve(&argv) else {
            return Err(super::vm::raise(
                "ERR Invalid command passed to server.acl_check_cmd()",
            ));
        };
        with_run(|state| crate::acl::script_may_run(&server, &state.client, entry, &argv))
    })?;
    api.raw_set("call", call)?;
    api.raw_set("pcall", pcall)?;
    api.raw_set("acl_check_cmd", acl_check)?;
    Ok(())
}

/// Runs `f` on the run in progress on this thread.
fn with_run<R>(f: impl FnOnce(&mut CallState) -> R) -> mlua::Result<R> {
    CALL_STATE.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| super::vm::raise("ERR server.call re-entered"))?;
        match slot.as_mut() {
            Some(state) if state.caller.is_some() => Ok(f(state)),
            _ => Err(super::vm::raise(
                "ERR server.call is only available while a script runs",
            )),
        }
    })
}

thread_local! {
    /// The protocol the running script chose with `redis.setresp` (2 at each run's start).
    static SCRIPT_RESP: Cell<u8> = const { Cell::new(2) };
}

/// `redis.setresp`: the protocol the script's calls reply in, and its result's booleans.
pub fn set_script_resp(resp: u8) {
    SCRIPT_RESP.set(resp);
}

/// Why a `redis.call` gave no value.
pub enum CallFailure {
    /// The command's error reply, or the call's refusal: `redis.pcall` returns it.
    Reply(Vec<u8>),
    /// The call may not happen at all: raised even by `redis.pcall`.
    Raise(Vec<u8>),
}

/// `redis.call`'s work: runs `args` (as read from the stack, or why they were refused)
/// for the script running on this thread; `push` turns a reply that is not an error into
/// the call's Lua value.
pub fn call_command(
    args: Result<Vec<Bytes>, &'static [u8]>,
    push: impl FnOnce(&[u8]),
) -> Result<(), CallFailure> {
    RUN_SERVER.with(|server| {
        let server = server.borrow();
        CALL_STATE.with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return Err(CallFailure::Raise(b"ERR server.call re-entered".to_vec()));
            };
            let (Some(state), Some(server)) = (
                slot.as_mut().filter(|state| state.caller.is_some()),
                server.as_deref(),
            ) else {
                return Err(CallFailure::Raise(
                    b"ERR server.call is only available while a script runs".to_vec(),
                ));
            };
            if state.restart {
                // The script caught the restart (its own pcall): nothing more may run.
                return Err(CallFailure::Raise(RESTART.as_bytes().to_vec()));
            }
            let checked = args
                .map_err(|text| CallFailure::Reply(text.to_vec()))
                .and_then(|argv| raw_call(server, state, argv));
            if let Err(CallFailure::Reply(text)) = &checked {
                // Refused before it ran (arity, ACL, OOM ...): counted here, as an error
                // the command itself replies is counted where it runs.
                crate::stats::local().count_error(&String::from_utf8_lossy(text));
            }
            checked?;
            let reply = state.reply.bytes();
            if let Some(text) = super::convert::error_reply(reply) {
                return Err(CallFailure::Reply(text.to_vec()));
            }
            push(reply);
            Ok(())
        })
    })
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
    let keyspace = &server.keyspace;
    let busy = &server.scripting.busy;
    let in_transaction = Keyspace::holding();
    let declared = inv
        .keys
        .iter()
        .fold(0u64, |m, k| m | Keyspace::shard_bit(k));
    let mut narrow = !in_transaction
        && declared != 0
        && NARROW_SCRIPTS.with(|n| n.borrow().get(inv.id).copied() == Some(true));
    let outcome = loop {
        prepare_call_state(ctx, &inv, must_obey, stale, narrow, declared);
        SCRIPT_RESP.set(2);
        let hold = if in_transaction {
            None
        } else if narrow {
            Some(keyspace.hold(declared))
        } else {
            Some(keyspace.hold(u64::MAX))
        };
        if !narrow {
            busy.begin(inv.function, inv.command);
        }
        let pending = vm.lua.exec_raw_lua(|raw| {
            // SAFETY: the worker's state, outside any Lua call (EVAL and FCALL do not run
            // from scripts); the result is taken or discarded below, before another call.
            unsafe {
                super::c_api::call_script(
                    raw,
                    &vm.error_handler,
                    &func,
                    inv.keys,
                    inv.args,
                    inv.function.is_none(),
                )
            }
        });
        let (promoted, widened, restart) = CALL_STATE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let Some(state) = slot.as_mut() else {
                return (false, false, false);
            };
            state.caller = None;
            if state.restart {
                state.client.held_back.discard();
            } else {
                super::held_back::release(server, &mut state.client);
            }
            state.client.log_as = None;
            (state.promoted, state.widened, state.restart)
        });
        if !narrow || promoted {
            busy.end();
        }
        drop(hold);
        if !in_transaction && declared != 0 {
            NARROW_SCRIPTS.with(|n| {
                let mut known = n.borrow_mut();
                match known.get_mut(inv.id) {
                    Some(narrow_ok) => *narrow_ok &= !widened,
                    None => {
                        if known.len() >= NARROW_REMEMBERED {
                            known.clear();
                        }
                        known.insert(inv.id.to_string(), !widened);
                    }
                }
            });
        }
        if restart {
            if let Ok(pending) = pending {
                // SAFETY: the result of the call just made.
                vm.lua
                    .exec_raw_lua(|raw| unsafe { super::c_api::discard(raw, pending) });
            }
            server
                .scripting
                .restarts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            narrow = false;
            continue;
        }
        break pending;
    };

    let script_resp = SCRIPT_RESP.get();
    let failure = match outcome {
        Ok(pending) => vm.lua.exec_raw_lua(|raw| {
            // SAFETY: the result of the last call, not taken yet.
            unsafe { super::c_api::take_result(raw, pending, ctx.reply, script_resp) }
        }),
        Err(e) => {
            return Err(CmdError::err(format!(
                "Error running script: {}",
                super::vm::error_text(&e)
            )));
        }
    };
    match failure {
        Ok(()) => Ok(()),
        Err(Value::Table(err)) => Err(script_error(&err)),
        Err(other) => Err(CmdError::err(format!(
            "Error running script: {}",
            other.to_string().unwrap_or_default()
        ))),
    }
}

/// Sets this thread's `CallState` up for a run (or a run's new start).
fn prepare_call_state(
    ctx: &Ctx,
    inv: &Invocation,
    must_obey: bool,
    stale: bool,
    narrow: bool,
    declared: u64,
) {
    CALL_STATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let state = slot.get_or_insert_with(|| new_call_state(ctx));
        RUN_SERVER.with(|cell| {
            let mut server = cell.borrow_mut();
            if server
                .as_ref()
                .is_none_or(|s| !std::ptr::eq(Arc::as_ptr(s), ctx.server))
            {
                *server = ctx.server.arc();
            }
        });
        state.client.select(ctx.client.db);
        if !Arc::ptr_eq(&state.client.config, &ctx.client.config) {
            state
                .client
                .refresh_config(ctx.client.config.clone(), ctx.client.config_epoch);
        }
        state.client.set_protocol(2);
        if !Arc::ptr_eq(&state.client.user, &ctx.client.user) {
            // Most runs are the same user's: no write to its shared count then.
            state.client.user = ctx.client.user.clone();
        }
        state.caller = Some(ctx.client.shared.clone());
        state.client.log_as = Some(ctx.client.shared.clone());
        state.read_only = inv.read_only_command || inv.flags & script_flag::NO_WRITES != 0;
        state.allow_oom = inv.flags & script_flag::ALLOW_OOM != 0;
        state.out_of_memory_at_start = crate::evict::out_of_memory_at_start();
        state.must_obey = must_obey;
        state.stale = stale;
        state.wrote = false;
        state.effects = false;
        state.now_ms = ctx.now_ms;
        state.narrow = narrow;
        state.promoted = false;
        state.restart = false;
        state.widened = false;
        state.client.held_back.begin(narrow);
        state.declared = declared;
        state.started_ms = ctx.now_ms;
        state.last_slice_ms = ctx.now_ms;
        if narrow {
            // Kept for `promote_if_long`; the buffers are reused from run to run.
            state.function.take();
            if let Some(name) = inv.function {
                state.function = Some(name.to_string());
            }
            state.command.clear();
            state.command.extend_from_slice(inv.command);
        }
    });
}

/// Called by the Lua hook of a running script: a run that holds only its keys' shards and
/// has run for `PROMOTE_AFTER_MS` registers as the running script, so that other clients
/// wait for it, get BUSY after `busy-reply-threshold` and can kill it, as in Valkey.
pub fn promote_if_long(busy: &super::Busy) {
    CALL_STATE.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return;
        };
        let Some(state) = slot.as_mut().filter(|s| s.unregistered()) else {
            return;
        };
        let ran_ms = ferrokv_store::clock::now_ms() - state.started_ms;
        if ran_ms < PROMOTE_AFTER_MS {
            return;
        }
        let started = std::time::Instant::now()
            .checked_sub(std::time::Duration::from_millis(ran_ms.max(0) as u64))
            .unwrap_or_else(std::time::Instant::now);
        if busy.promote(
            started,
            state.function.as_deref(),
            &state.command,
            state.wrote,
        ) {
            state.promoted = true;
        }
    });
}

/// Called by the Lua hook of a running script: a run registered as the busy script and
/// running past `busy-reply-threshold` on a fiber suspends itself, so that the other
/// clients of this worker get BUSY (or run `allow-busy` commands, inside its hold) before it
/// goes on (`fiber` explains why).
pub fn let_others_in_if_long() {
    if !super::fiber::can_suspend() {
        return;
    }
    let due = CALL_STATE.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return false;
        };
        let Some(state) = slot.as_mut() else {
            return false;
        };
        let now = ferrokv_store::clock::now_ms();
        let registered = !state.narrow || state.promoted;
        // At most one slice a millisecond: the other clients are let in about as often as
        // Valkey serves them, and the script keeps nearly all of the thread.
        let due = state.caller.is_some()
            && registered
            && now - state.started_ms >= state.client.config.busy_reply_threshold
            && now > state.last_slice_ms;
        if due {
            state.last_slice_ms = now;
        }
        due
    });
    if due {
        Keyspace::set_others_inside_hold(true);
        super::fiber::suspend();
        Keyspace::set_others_inside_hold(false);
    }
}

fn new_call_state(ctx: &Ctx) -> CallState {
    let (client, reply) = new_script_client(ctx);
    CallState {
        client,
        reply,
        caller: None,
        read_only: false,
        allow_oom: false,
        out_of_memory_at_start: false,
        must_obey: false,
        stale: false,
        wrote: false,
        effects: false,
        now_ms: ctx.now_ms,
        narrow: false,
        promoted: false,
        restart: false,
        widened: false,
        declared: 0,
        started_ms: ctx.now_ms,
        last_slice_ms: ctx.now_ms,
        function: None,
        command: Vec::new(),
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

/// The error reply for a script that failed with the error table `err`.
fn script_error(err: &Table) -> CmdError {
    // A failed server.call raised again was counted when it failed; any other error the
    // script raises is its own.
    let counted = matches!(
        err.raw_get::<Value>("ignore_error_stats_update"),
        Ok(Value::Boolean(true))
    );
    crate::stats::mark_next_error(if counted {
        crate::stats::NextError::AlreadyCounted
    } else {
        crate::stats::NextError::Custom
    });
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
        && state.out_of_memory_at_start
}

/// Why a command a script calls may not write (`flags`: the command's), in Valkey's order:
/// a read-only script may neither write nor replicate; a script's first write is refused by
/// a read-only replica, data that cannot be persisted (MISCONF) or too few replicas. Once a
/// script wrote, it is not failed halfway on the server's state (Valkey's rule: a script
/// that wrote runs to its end). A script that declares its flags was checked up front by
/// them, so the server's state matters here for scripts without a shebang.
fn refuse_write(server: &crate::Server, state: &CallState, flags: u64) -> Option<String> {
    if state.read_only && flags & (flag::WRITE | flag::MAY_REPLICATE) != 0 {
        return Some("ERR Write commands are not allowed from read-only scripts.".into());
    }
    if state.wrote || flags & flag::WRITE == 0 {
        return None;
    }
    // The primary's link is refused nothing but MISCONF (as for its other commands).
    let obeyed = state.must_obey;
    let config = &state.client.config;
    if !obeyed && crate::replication::read_only_replica(server, config) {
        return Some(crate::replication::READONLY.into());
    }
    if let Some(e) = crate::dispatch::disk_error(server, &state.client) {
        return Some(e.0.into_owned());
    }
    if !obeyed && crate::replication::too_few_replicas(server, config) {
        return Some(crate::replication::NOREPLICAS.into());
    }
    None
}

/// A script that already changed the dataset needs a shard below one it holds, and another
/// client kept it for `busy-reply-threshold`.
const UNDECLARED_KEY_BUSY: &[u8] = b"ERR Script attempted to access a key it did not declare \
while another client kept it locked; pass every key the script uses in KEYS";

/// Waits for the shards in `needed` to join the run's hold, trying again until
/// `busy-reply-threshold` passes. Only tried, never waited on: the client holding a lower
/// shard may itself wait for one this run holds (backing-off lockers let go in the
/// meantime; a run stuck against another such run fails instead of hanging).
fn wait_to_widen(server: &crate::Server, state: &CallState, needed: u64) -> bool {
    let limit =
        std::time::Duration::from_millis(state.client.config.busy_reply_threshold.max(0) as u64);
    let started = std::time::Instant::now();
    let mut spins = 0u32;
    loop {
        if server.keyspace.widen_hold(needed, true) {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn fail(text: &[u8]) -> Result<(), CallFailure> {
    Err(CallFailure::Reply(text.to_vec()))
}

/// Runs a command for the script after the checks Valkey makes of a script's calls; the
/// reply is left in `state.reply`.
fn raw_call(
    server: &crate::Server,
    state: &mut CallState,
    argv: Vec<Bytes>,
) -> Result<(), CallFailure> {
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
        return fail(crate::context::errors::OOM.0.as_bytes());
    }
    if state.stale && spec.flags & flag::STALE == 0 {
        return fail(b"ERR Can not execute the command on a stale replica");
    }
    let Some(caller) = &state.caller else {
        return fail(b"ERR server.call is only available while a script runs");
    };
    if let Err(text) = crate::acl::authorize_in_script(server, &state.client, caller, entry, &argv)
    {
        return Err(CallFailure::Reply(text.into_bytes()));
    }
    if let Some(refusal) = refuse_write(server, state, spec.flags) {
        return Err(CallFailure::Reply(refusal.into_bytes()));
    }
    let needed = crate::transaction::command_shards(entry, &argv);
    if needed & !state.declared != 0 {
        state.widened = true;
    }
    let held = Keyspace::held_mask();
    // A run that can still start again never waits while holding shards; one that
    // cannot (it changed something, or runs inside EXEC's hold) waits.
    let committed = state.effects || !state.narrow;
    if held != 0 && needed & !held != 0 && !server.keyspace.widen_hold(needed, committed) {
        if !committed {
            state.restart = true;
            return Err(CallFailure::Raise(RESTART.as_bytes().to_vec()));
        }
        if !wait_to_widen(server, state, needed) {
            return fail(UNDECLARED_KEY_BUSY);
        }
    }
    if spec.flags & (flag::WRITE | flag::MAY_REPLICATE) != 0 {
        state.effects = true;
        // The run can no longer start again: what its reads did is accounted for.
        super::held_back::release(server, &mut state.client);
    }
    if spec.flags & flag::WRITE != 0 && !state.wrote {
        state.wrote = true;
        if !state.unregistered() {
            server.scripting.busy.mark_wrote();
        }
    }
    let resp3 = SCRIPT_RESP.get() == 3;
    let CallState {
        client,
        reply,
        now_ms,
        ..
    } = state;
    client.set_protocol(if resp3 { 3 } else { 2 });
    reply.clear();
    reply.set_resp3(resp3);
    crate::dispatch::call(server, client, reply, entry, &argv, *now_ms);
    Ok(())
}
