//! From an argument vector to a reply: lookup, checks, the call, and the bookkeeping after it.
//!
//! The checks run in Valkey's order (unknown command, arity, authentication, memory), so a
//! request that fails several of them gets the same error as from Valkey.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ferrokv_config::Config;
use ferrokv_protocol::Reply;
use ferrokv_store::{Keyspace, clock, events};

use crate::blocking;
use crate::client::{Client, ReplyMode, Transport};
use crate::commandlog::{self, LogKind};
use crate::context::{CmdError, Ctx, errors};
use crate::latency;
use crate::server::Server;
use crate::spec::flag;
use crate::stats;
use crate::table::{TABLE, TableEntry};
use crate::tracking;
use crate::transaction;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran (or was rejected) and its reply, if any, is in the reply buffer.
    Done,
    /// A CLIENT PAUSE holds it back: nothing ran and nothing was replied. The connection
    /// waits until `server.pause.blocks(may_write, now)` clears, then submits it again.
    Postponed { may_write: bool },
    /// A blocking command parked the client (see `blocking`): nothing was replied yet. The
    /// connection takes `client.blocked`, waits for its outcome, and passes it to
    /// [`finish_blocked`].
    Blocked,
}

/// Whether the request `args` of `client` may run a Lua script: the connection runs those
/// on a fiber (`scripting::fiber`). EXEC does only when a script is queued.
pub fn runs_lua(client: &Client, args: &[Bytes]) -> bool {
    let Some(entry) = args.first().and_then(|name| TABLE.lua_command(name)) else {
        return false;
    };
    if !is_exec(entry) {
        return true;
    }
    client
        .multi
        .as_ref()
        .is_some_and(|multi| multi.queued.iter().any(|(queued, _)| queued.spec.runs_lua))
}

/// Runs one command and appends its reply (if any) to `reply`, then the client-side caching
/// invalidations its own command caused (see `tracking`).
pub fn execute(server: &Server, client: &mut Client, reply: &mut Reply, args: &[Bytes]) -> Outcome {
    let saved = tracking::begin_request(&client.shared);
    let _import_source = client
        .import_source
        .then(ferrokv_store::replica_view::ExpiredAliveView::import_source);
    let outcome = execute_request(server, client, reply, args);
    tracking::end_request(server, reply, saved);
    outcome
}

fn execute_request(
    server: &Server,
    client: &mut Client,
    reply: &mut Reply,
    args: &[Bytes],
) -> Outcome {
    let Some(name) = args.first() else {
        return Outcome::Done;
    };
    // Anything a rejected command or the eviction before it left to publish.
    crate::notify::flush(server);
    let epoch = server.config.epoch();
    if epoch != client.config_epoch {
        client.refresh_config(server.config.load(), epoch);
    }
    crate::acl::refresh(server, client);
    if client.reply_mode == ReplyMode::SkipNext {
        client.reply_mode = ReplyMode::SkipThis;
    }
    let reply_start = reply.len();
    let stats = stats::local();

    // An unauthenticated client learns nothing, not even whether a command exists: every
    // command without `no_auth` gets NOAUTH before lookup errors (Valkey 9 does the same).
    if !client.authenticated {
        let found = TABLE.lookup(name);
        if found.is_none_or(|e| e.spec.flags & flag::NO_AUTH == 0) {
            if let Some(entry) = found {
                stats.commands[entry.id].rejected_calls.add(1);
            }
            reject(server, client, reply, stats, found, errors::NOAUTH);
            discard_if_silenced(client, reply, reply_start);
            return Outcome::Done;
        }
    }

    let entry = match resolve(name, args) {
        Ok(entry) => entry,
        Err(e) => {
            reject(server, client, reply, stats, None, e);
            discard_if_silenced(client, reply, reply_start);
            return Outcome::Done;
        }
    };
    let spec = entry.spec;
    let flags = checked_flags(server, entry, args);

    let rejection = check(server, client, entry, args, flags);
    if let Err(e) = rejection {
        stats.commands[entry.id].rejected_calls.add(1);
        reject(server, client, reply, stats, Some(entry), e);
        discard_if_silenced(client, reply, reply_start);
        return Outcome::Done;
    }

    // Keep the tracking table within `tracking-table-max-keys`; what that invalidates for
    // this client goes ahead of its reply, as in Valkey.
    tracking::enforce_limit(server, client.config.tracking_table_max_keys);
    tracking::place_before_reply(reply, reply.len());

    let pause_flags = if is_exec(entry) {
        client.multi.as_ref().map_or(0, |m| m.flags)
    } else {
        flags
    };
    let may_write = pause_flags & (flag::WRITE | flag::MAY_REPLICATE) != 0;
    if server.pause.blocks_now(may_write).is_some() {
        if client.reply_mode == ReplyMode::SkipThis {
            // The skip applies to this command, which has not run yet.
            client.reply_mode = ReplyMode::SkipNext;
        }
        return Outcome::Postponed { may_write };
    }

    // A script running on another thread holds the keyspace: wait for it, up to
    // `busy-reply-threshold`, then answer BUSY (see `scripting::busy`).
    if spec.flags & flag::ALLOW_BUSY == 0 && server.scripting.busy.active() {
        let threshold = client.config.busy_reply_threshold;
        if let Err(e) = server.scripting.busy.wait_or_refuse(threshold) {
            stats.commands[entry.id].rejected_calls.add(1);
            reject(server, client, reply, stats, Some(entry), e);
            discard_if_silenced(client, reply, reply_start);
            return Outcome::Done;
        }
    }

    // Inside MULTI, everything but the commands that end or steer the transaction waits for
    // EXEC. This comes after the pause check: a paused write is held back even when it
    // would only be queued, as in Valkey.
    if client.multi.is_some() && !runs_inside_multi(entry) {
        transaction::queue(client, entry, args, flags);
        reply.simple("QUEUED");
        discard_if_silenced(client, reply, reply_start);
        return Outcome::Done;
    }

    // The command's time snapshot: expiry and TTLs inside it all see this instant.
    let now_ms = clock::now_ms();
    call(server, client, reply, entry, args, now_ms);
    if blocking::pending() && !Keyspace::holding() {
        // Keys made ready by a command that did not serve the blocked clients itself
        // (or by a transaction, whose waiters are served once it is over).
        let _propagating = crate::propagate::Background::begin(
            server.stream,
            client.config.lazyfree_lazy_expire,
            false,
        );
        blocking::serve_pending(server, now_ms);
        if events::touches_pending() {
            // What serving the parked clients took from their keys.
            transaction::process_touches(server, true, None);
        }
    }
    crate::notify::flush(server);
    if client.blocked.is_some() {
        return Outcome::Blocked;
    }
    discard_if_silenced(client, reply, reply_start);
    Outcome::Done
}

/// Runs one command that passed its checks (directly, or queued in a transaction that EXEC
/// runs) and does the bookkeeping: statistics, slow log, errors, key events, WATCH marks.
pub(crate) fn call(
    server: &Server,
    client: &mut Client,
    reply: &mut Reply,
    entry: &'static TableEntry,
    args: &[Bytes],
    now_ms: i64,
) {
    let stats = stats::local();
    let spec = entry.spec;
    let reply_start = reply.len();
    let Some(handler) = spec.handler else {
        // Container commands always resolve to a subcommand; reaching here is a table bug.
        finish_error(
            reply,
            stats,
            &CmdError::err("internal error: command without handler"),
        );
        return;
    };
    if spec.flags & flag::SKIP_MONITOR != 0 && spec.flags & flag::ADMIN == 0 {
        // The EVAL family: monitors see the script's command before the commands it runs,
        // and also when it fails (NOSCRIPT), as in Valkey.
        crate::monitor::feed(server, client, args);
    }
    if events::touches_pending() {
        // Keys evicted before the command: their invalidations go ahead of its reply.
        transaction::process_touches(server, false, None);
    }
    // Registered before the read too, so a write on another thread in between is not lost.
    tracking::remember(server, spec, args, true);
    let dirty_before = events::recording().then(|| stats.dirty.get());
    let saved_written = dirty_before.map(|_| transaction::begin_command(spec, args));
    let saved_in_handler = tracking::enter_handler();
    // EXEC and scripts propagate the commands they run, not themselves.
    let propagating = !client.replaying
        && crate::propagate::begin_command(
            server.stream,
            client.config.lazyfree_lazy_expire,
            client.db,
            args,
            propagates_effects_only(entry),
        );
    // Set before the call so that CLIENT LIST/INFO show themselves as `cmd=`.
    client.shared.last_command.store(entry.id + 1, Relaxed);
    let started = clock::Stopwatch::start();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut ctx = Ctx {
            server,
            client: &mut *client,
            reply: &mut *reply,
            spec,
            now_ms,
        };
        handler(&mut ctx, args)
    }));
    crate::propagate::end_command(propagating);
    // Commands run inside this one (EXEC's queue, a script's calls) set it too: the client
    // shows the command it sent, as in Valkey.
    client.shared.last_command.store(entry.id + 1, Relaxed);
    let elapsed = started.elapsed_us();
    let held = client.held_back.active();

    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::warn!("BUG: command '{}' panicked: {what}", entry.full_name);
            reply.truncate(reply_start);
            Some(CmdError::err(format!(
                "internal error in '{}'",
                entry.full_name
            )))
        }
    };
    if error.is_none() && crate::replica_keys::local_write_on_replica(spec, client.replaying) {
        crate::replica_keys::remember(server, client.db, spec, args);
    }
    if held {
        // A script's call whose run may start again (see `scripting::held_back`).
        if let Some(e) = &error {
            reply.error(&e.0);
        }
        let reply_bytes = reply.len().saturating_sub(client.reply_mark);
        // The arguments are kept only for what shows them: a monitor, the command logs.
        let keep_args = server.monitors.any()
            || goes_to_a_log(&client.config, client.request_bytes, reply_bytes, elapsed);
        client
            .held_back
            .hold(crate::scripting::held_back::HeldCall {
                entry,
                args: if keep_args { args.to_vec() } else { Vec::new() },
                db: client.db,
                elapsed_us: elapsed,
                reply_bytes,
                now_ms,
                error: error.map(|e| e.0),
            });
    } else {
        if let Some(e) = &error {
            stats.commands[entry.id].failed_calls.add(1);
            finish_error(reply, stats, e);
        }
        // After the error, which is part of the reply the large-reply log measures.
        let reply_bytes = reply.len().saturating_sub(client.reply_mark);
        // The logs go by the configuration as the command left it (CONFIG SET
        // slowlog-log-slower-than 0 logs itself), as in Valkey.
        let epoch = server.config.epoch();
        if epoch != client.config_epoch {
            client.refresh_config(server.config.load(), epoch);
        }
        if client.blocked.is_some() {
            client.blocked_call = Some(crate::client::BlockedCall {
                entry,
                args: args.to_vec(),
                elapsed_us: elapsed,
            });
        } else {
            account(client, entry, args, elapsed, reply_bytes, now_ms);
        }
        if spec.flags & (flag::ADMIN | flag::SKIP_MONITOR) == 0 {
            crate::monitor::feed(server, client, args);
        }
    }
    if events::pending() {
        handle_key_events(server, stats);
    }
    if !held {
        crate::notify::flush(server);
    }
    if let Some(saved) = saved_written {
        let changed = dirty_before.is_some_and(|before| stats.dirty.get() != before);
        transaction::end_command(server, changed, saved);
    } else if events::touches_pending() {
        // Watching began during this command (it was a WATCH, or raced one): only what it
        // certainly changed counts.
        transaction::process_touches(server, false, None);
    }
    tracking::leave_handler(saved_in_handler);
    tracking::remember(server, spec, args, false);
    tracking::place_before_reply(reply, reply_start);
    tracking::command_done(
        &client.shared,
        entry.full_name.starts_with("client|"),
        client.multi.is_some(),
    );
}

/// The statistics of one call that ran: commandstats, the client's count, command logs and
/// latency.
#[inline]
pub(crate) fn account(
    client: &Client,
    entry: &TableEntry,
    args: &[Bytes],
    elapsed_us: u64,
    reply_bytes: usize,
    now_ms: i64,
) {
    record_timing(client, entry, args, elapsed_us, reply_bytes, now_ms);
    let stats = stats::local();
    let counters = &stats.commands[entry.id];
    counters.calls.add(1);
    counters.usec.add(elapsed_us);
    stats.total_commands.add(1);
    // Only the client's own thread counts its commands: a load and a store, no locked add.
    // A script's calls count for the client that ran the script (its thread runs them).
    let commands = &client.log_as.as_ref().unwrap_or(&client.shared).commands;
    commands.store(commands.load(Relaxed).wrapping_add(1), Relaxed);
    client.shared.last_interaction_ms.store(now_ms, Relaxed);
}

/// EXEC and scripts: what they ran is propagated, never their own argv.
fn propagates_effects_only(entry: &TableEntry) -> bool {
    entry.parent.is_none()
        && matches!(
            entry.spec.name,
            "exec" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
        )
}

/// The flags the checks before a command runs (and CLIENT PAUSE, and MULTI) go by: the
/// command's own, except for a call that runs a script declaring flags, which is checked
/// by what the script declares (see `scripting::command_flags`).
fn checked_flags(server: &Server, entry: &TableEntry, args: &[Bytes]) -> u64 {
    let spec = entry.spec;
    // Only the EVAL and FCALL families skip the monitor: one test keeps the lookup off
    // every other command's path.
    if spec.flags & flag::SKIP_MONITOR == 0 || entry.parent.is_some() {
        return spec.flags;
    }
    match crate::scripting::declared_flags(server, spec.name, args) {
        Some(script_flags) => crate::scripting::command_flags(spec.flags, script_flags),
        None => spec.flags,
    }
}

/// A write command (`flags` are its checked flags), or an EXEC whose transaction holds one.
fn is_write(client: &Client, entry: &TableEntry, flags: u64) -> bool {
    if is_exec(entry) {
        return client
            .multi
            .as_ref()
            .is_some_and(|m| m.flags & flag::WRITE != 0);
    }
    flags & flag::WRITE != 0
}

fn is_ping(entry: &TableEntry) -> bool {
    entry.parent.is_none() && entry.spec.name == "ping"
}

fn is_exec(entry: &TableEntry) -> bool {
    entry.parent.is_none() && entry.spec.name == "exec"
}

/// Commands that run at once inside MULTI instead of being queued.
fn runs_inside_multi(entry: &TableEntry) -> bool {
    entry.parent.is_none()
        && matches!(
            entry.spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
}

/// Commands a RESP2 client may send while subscribed.
fn allowed_in_subscriber_mode(entry: &TableEntry) -> bool {
    entry.parent.is_none()
        && matches!(
            entry.spec.name,
            "ping"
                | "subscribe"
                | "ssubscribe"
                | "unsubscribe"
                | "sunsubscribe"
                | "psubscribe"
                | "punsubscribe"
                | "quit"
                | "reset"
        )
}

/// Answers a command rejected before it ran. Inside MULTI the rejection dooms the
/// transaction; a rejected EXEC discards it with EXECABORT, as Valkey does.
fn reject(
    server: &Server,
    client: &mut Client,
    reply: &mut Reply,
    stats: &stats::ThreadStats,
    entry: Option<&TableEntry>,
    e: CmdError,
) {
    if entry.is_some_and(is_exec) {
        transaction::discard(server, client);
        let reason = e.0.strip_prefix("ERR ").unwrap_or(&e.0);
        finish_error(
            reply,
            stats,
            &CmdError::new(format!(
                "EXECABORT Transaction discarded because of: {reason}"
            )),
        );
        return;
    }
    transaction::flag_aborted(client);
    finish_error(reply, stats, &e);
}

/// Writes the outcome of a blocked command's wait as its reply.
///
/// The call itself was counted when the command blocked; an unblocking that ends in an error
/// counts it as failed (the error came from serving it: XREADGROUP's NOGROUP) or rejected
/// (CLIENT UNBLOCK ... ERROR), as Valkey counts them.
pub fn finish_blocked(client: &mut Client, reply: &mut Reply, wake: blocking::Wake) {
    let start = reply.len();
    let stats = stats::local();
    let command = client.shared.last_command.load(Relaxed).checked_sub(1);
    let counters = command.and_then(|id| stats.commands.get(id));
    match wake {
        blocking::Wake::Reply(bytes) => {
            if bytes.first() == Some(&b'-')
                && let Some(counters) = counters
            {
                counters.failed_calls.add(1);
            }
            reply.raw(&bytes)
        }
        blocking::Wake::Timeout => reply.null_array(),
        blocking::Wake::Error => {
            if let Some(counters) = counters {
                counters.rejected_calls.add(1);
            }
            finish_error(reply, stats, &CmdError::new(blocking::UNBLOCKED_ERROR))
        }
    }
    if let Some(call) = client.blocked_call.take() {
        let reply_bytes = reply.len() - start;
        account(
            client,
            call.entry,
            &call.args,
            call.elapsed_us,
            reply_bytes,
            clock::now_ms(),
        );
    }
    discard_if_silenced(client, reply, start);
}

/// Whether `args` name a command (and subcommand) with a fitting number of arguments: the
/// checks a command read from a file must pass before it runs (an AOF naming a command
/// this server does not know must stop the load, not be skipped). The error is the text a
/// client would get.
pub fn check_existence_and_arity(args: &[Bytes]) -> Result<(), CmdError> {
    let entry = resolve(&args[0], args)?;
    if !arity_fits(entry.spec.arity, args.len()) {
        return Err(arity_error(&entry.full_name));
    }
    Ok(())
}

/// A positive arity is the exact count; a negative one, the least.
fn arity_fits(arity: i32, argc: usize) -> bool {
    let argc = argc as i32;
    if arity > 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// Finds the table entry for `args`, descending into subcommands.
fn resolve(name: &Bytes, args: &[Bytes]) -> Result<&'static TableEntry, CmdError> {
    let Some(entry) = TABLE.lookup(name) else {
        return Err(unknown_command(args));
    };
    // A container called alone runs itself (COMMAND) or fails its arity check (CONFIG).
    if entry.spec.subcommands.is_empty() || args.len() == 1 {
        return Ok(entry);
    }
    let sub_name = &args[1];
    TABLE.find_sub(entry, sub_name).ok_or_else(|| {
        CmdError::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            truncate_lossy(sub_name, 128),
            String::from_utf8_lossy(name).to_uppercase()
        ))
    })
}

/// The checks a command must pass before it runs; `flags` are its checked flags
/// (`checked_flags`) where the state of the server matters (memory, persistence, replicas).
fn check(
    server: &Server,
    client: &Client,
    entry: &'static TableEntry,
    args: &[Bytes],
    flags: u64,
) -> Result<(), CmdError> {
    let spec = entry.spec;
    if !arity_fits(spec.arity, args.len()) {
        return Err(arity_error(&entry.full_name));
    }
    if !client.authenticated && spec.flags & flag::NO_AUTH == 0 {
        return Err(errors::NOAUTH);
    }
    crate::acl::authorize(server, client, entry, args)?;
    if spec.flags & flag::PROTECTED != 0 && !protected_allowed(client) {
        return Err(CmdError::err(
            "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
             you can run it from a local connection, otherwise you need to set this option in \
             the configuration file, and then restart the server.",
        ));
    }
    if client.multi.is_some() && spec.flags & flag::NO_MULTI != 0 {
        return Err(CmdError::err(format!(
            "Command '{}' not allowed inside a transaction",
            entry.full_name
        )));
    }
    // Over `maxmemory`, `denyoom` commands are refused, also while queueing in MULTI, and
    // EXEC if its transaction holds one; anything else is queued (Valkey 9.1's rule).
    let deny_on_oom = flags & flag::DENYOOM != 0
        || (is_exec(entry)
            && client
                .multi
                .as_ref()
                .is_some_and(|m| m.flags & flag::DENYOOM != 0));
    // A replica ignoring maxmemory (Valkey's default) neither evicts nor refuses: its
    // primary decides what goes. The primary's own commands are never refused.
    let replica_ignores_maxmemory =
        server.stream.is_proxy() && client.config.replica_ignore_maxmemory;
    let out_of_memory = !(client.must_obey || replica_ignores_maxmemory)
        && crate::evict::before_command(server, &client.config, client.access_policy, deny_on_oom)?;
    // Scripts without declared flags refuse their first denied write by it.
    crate::evict::set_out_of_memory_at_start(out_of_memory);
    let write = is_write(client, entry, flags);
    // The data cannot be persisted: refuse writes (and PING, as Valkey does) until it can.
    if let Some(e) = disk_error(server, client)
        && (write || is_ping(entry))
    {
        return Err(e);
    }
    // EXEC is refused on a stale replica as soon as one queued command would be, even when
    // the link went down after it was queued.
    let replication_flags = match client.multi.as_ref() {
        Some(multi) if is_exec(entry) => {
            (flags & !flag::STALE) | (!multi.lacking_flags & flag::STALE)
        }
        _ => flags,
    };
    crate::replication::check_command(server, client, replication_flags, write)?;
    // While the start-up load runs only `loading` commands run (EXEC: if all it queued are).
    if crate::loading::refusing() && !client.must_obey {
        let loading_flags = match client.multi.as_ref() {
            Some(multi) if is_exec(entry) => {
                (flags & !flag::LOADING) | (!multi.lacking_flags & flag::LOADING)
            }
            _ => flags,
        };
        if loading_flags & flag::LOADING == 0 {
            return Err(CmdError::new(crate::loading::LOADING_ERROR));
        }
    }
    // A monitor is a replica to Valkey, and replicas may not touch the keyspace.
    if client.monitor && flags & (flag::WRITE | flag::READONLY | flag::MAY_REPLICATE) != 0 {
        return Err(CmdError::err("Replica can't interact with the keyspace"));
    }
    if client.protocol == 2 && client.subscriptions.any() && !allowed_in_subscriber_mode(entry) {
        return Err(CmdError::err(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            entry.full_name
        )));
    }
    Ok(())
}

/// The MISCONF refusal while the data cannot be persisted: the last background save failed
/// (with `save` rules and `stop-writes-on-bgsave-error`), or the AOF cannot be written.
/// Valkey checks the RDB first. Also asked by scripts before their first write.
pub(crate) fn disk_error(server: &Server, client: &Client) -> Option<CmdError> {
    if server.persistence.writes_refused(&client.config) {
        return Some(CmdError::new(crate::persistence::MISCONF));
    }
    if server.aof.enabled() {
        return server.aof.write_refusal();
    }
    None
}

/// Whether `enable-debug-command` lets this client run DEBUG (`local`: loopback or unix
/// socket clients only).
fn protected_allowed(client: &Client) -> bool {
    match client.config.enable_debug_command.as_str() {
        "yes" => true,
        "local" => is_local(client),
        _ => false,
    }
}

/// A unix socket or loopback client.
pub fn is_local(client: &Client) -> bool {
    let shared = &client.shared;
    if matches!(shared.transport, Transport::Unix | Transport::Script) {
        return true;
    }
    let host = shared
        .addr
        .rsplit_once(':')
        .map_or(shared.addr.as_str(), |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a call with these measures goes to any of the command logs.
fn goes_to_a_log(
    config: &Config,
    request_bytes: usize,
    reply_bytes: usize,
    elapsed_us: u64,
) -> bool {
    commandlog::reaches(elapsed_us, config.slowlog_log_slower_than)
        || commandlog::reaches(request_bytes as u64, config.commandlog_request_larger_than)
        || commandlog::reaches(reply_bytes as u64, config.commandlog_reply_larger_than)
}

/// The command logs, the latency monitor and the latency histograms, fed after each call.
fn record_timing(
    client: &Client,
    entry: &TableEntry,
    args: &[Bytes],
    elapsed_us: u64,
    reply_bytes: usize,
    now_ms: i64,
) {
    let config = &client.config;
    let spec = entry.spec;
    if spec.flags & flag::SKIP_SLOWLOG == 0
        && goes_to_a_log(config, client.request_bytes, reply_bytes, elapsed_us)
    {
        let logs = [
            (
                LogKind::Slow,
                elapsed_us,
                config.slowlog_log_slower_than,
                config.slowlog_max_len,
            ),
            (
                LogKind::LargeRequest,
                client.request_bytes as u64,
                config.commandlog_request_larger_than,
                config.commandlog_large_request_max_len,
            ),
            (
                LogKind::LargeReply,
                reply_bytes as u64,
                config.commandlog_reply_larger_than,
                config.commandlog_large_reply_max_len,
            ),
        ];
        let who = client.log_as.as_ref().unwrap_or(&client.shared);
        let name = who.name.lock().clone().unwrap_or_default();
        for (kind, value, threshold, max_len) in logs {
            if commandlog::reaches(value, threshold) {
                commandlog::record(
                    kind,
                    args,
                    value,
                    now_ms / 1000,
                    &who.addr,
                    name.clone(),
                    max_len.max(0) as usize,
                );
            }
        }
    }
    let event = if spec.flags & flag::FAST != 0 {
        "fast-command"
    } else {
        "command"
    };
    let threshold = config.latency_monitor_threshold;
    latency::add_sample_if_needed(event, elapsed_us / 1000, threshold, now_ms / 1000);
    if config.latency_tracking {
        latency::record_command(entry.id, elapsed_us);
    }
}

pub fn arity_error(full_name: &str) -> CmdError {
    CmdError::err(format!(
        "wrong number of arguments for '{full_name}' command"
    ))
}

fn unknown_command(args: &[Bytes]) -> CmdError {
    let mut listed = String::new();
    for arg in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push('\'');
        listed.push_str(&truncate_lossy(arg, room));
        listed.push_str("' ");
    }
    CmdError::err(format!(
        "unknown command '{}', with args beginning with: {listed}",
        truncate_lossy(&args[0], 128)
    ))
}

fn truncate_lossy(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

fn finish_error(reply: &mut Reply, stats: &stats::ThreadStats, e: &CmdError) {
    stats.count_error(&e.0);
    reply.error(&e.0);
}

/// Drops the reply of a command run under CLIENT REPLY OFF/SKIP, unless it is a push.
fn discard_if_silenced(client: &mut Client, reply: &mut Reply, start: usize) {
    let push = std::mem::take(&mut client.reply_is_push);
    match client.reply_mode {
        ReplyMode::On | ReplyMode::SkipNext => {}
        ReplyMode::Off => {
            if !push {
                reply.truncate(start)
            }
        }
        ReplyMode::SkipThis => {
            if !push {
                reply.truncate(start);
            }
            client.reply_mode = ReplyMode::On;
        }
    }
}

/// Accounts for keys the store deleted on its own during a command or a background step.
/// Clients blocked on a key that went away (a stream for XREADGROUP) are re-run, as in
/// Valkey, once the caller serves pending keys.
pub fn handle_key_events(server: &Server, stats: &stats::ThreadStats) {
    for event in events::take() {
        match event {
            events::KeyEvent::Expired { db, key } => {
                stats.expired_keys.add(1);
                blocking::signal_key_added(server, db, &key);
            }
            events::KeyEvent::ItemsExpired { count, .. } => stats.expired_fields.add(count as u64),
            events::KeyEvent::StreamRemoved { db, key } => {
                blocking::signal_key_added(server, db, &key);
            }
        }
    }
}
