//! From an argument vector to a reply: lookup, checks, the call, and the bookkeeping after it.
//!
//! The checks run in Valkey's order (unknown command, arity, authentication, memory), so a
//! request that fails several of them gets the same error as from Valkey.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::{clock, events};

use crate::client::{Client, ReplyMode};
use crate::context::{CmdError, Ctx, errors};
use crate::server::Server;
use crate::spec::flag;
use crate::stats;
use crate::table::{TABLE, TableEntry};

/// Runs one command and appends its reply (if any) to `reply`.
pub fn execute(server: &Server, client: &mut Client, reply: &mut Reply, args: &[Bytes]) {
    let Some(name) = args.first() else {
        return;
    };
    let epoch = server.config.epoch();
    if epoch != client.config_epoch {
        client.refresh_config(server.config.load(), epoch);
    }
    if client.reply_mode == ReplyMode::SkipNext {
        client.reply_mode = ReplyMode::SkipThis;
    }
    let reply_start = reply.len();
    let stats = stats::local();

    let entry = match resolve(name, args) {
        Ok(entry) => entry,
        Err(e) => {
            finish_error(reply, stats, &e);
            return discard_if_silenced(client, reply, reply_start);
        }
    };
    let spec = entry.spec;
    let counters = &stats.commands[entry.id];

    let rejection = check(server, client, entry, args);
    if let Err(e) = rejection {
        counters.rejected_calls.add(1);
        finish_error(reply, stats, &e);
        return discard_if_silenced(client, reply, reply_start);
    }

    let Some(handler) = spec.handler else {
        // Container commands always resolve to a subcommand; reaching here is a table bug.
        finish_error(
            reply,
            stats,
            &CmdError::err("internal error: command without handler"),
        );
        return;
    };
    let now_ms = clock::now_ms();
    let started = Instant::now();
    let config = client.config.clone();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut ctx = Ctx {
            server,
            client: &mut *client,
            reply: &mut *reply,
            spec,
            now_ms,
            config,
        };
        handler(&mut ctx, args)
    }));
    let elapsed = started.elapsed().as_micros() as u64;

    counters.calls.add(1);
    counters.usec.add(elapsed);
    stats.total_commands.add(1);
    client.shared.last_command.store(entry.id + 1, Relaxed);
    client.shared.last_interaction_ms.store(now_ms, Relaxed);

    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            counters.failed_calls.add(1);
            finish_error(reply, stats, &e);
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!("BUG: command '{}' panicked: {what}", entry.full_name);
            counters.failed_calls.add(1);
            reply.truncate(reply_start);
            finish_error(
                reply,
                stats,
                &CmdError::err(format!("internal error in '{}'", entry.full_name)),
            );
        }
    }
    if events::pending() {
        handle_key_events(stats);
    }
    discard_if_silenced(client, reply, reply_start);
}

/// Finds the table entry for `args`, descending into subcommands.
fn resolve(name: &Bytes, args: &[Bytes]) -> Result<&'static TableEntry, CmdError> {
    let Some(entry) = TABLE.find(name) else {
        return Err(unknown_command(args));
    };
    if entry.spec.subcommands.is_empty() {
        return Ok(entry);
    }
    let Some(sub_name) = args.get(1) else {
        return Err(arity_error(&entry.full_name));
    };
    TABLE.find_sub(entry, sub_name).ok_or_else(|| {
        CmdError::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            truncate_lossy(sub_name, 128),
            String::from_utf8_lossy(name).to_uppercase()
        ))
    })
}

/// The checks a command must pass before it runs.
fn check(
    server: &Server,
    client: &Client,
    entry: &TableEntry,
    args: &[Bytes],
) -> Result<(), CmdError> {
    let spec = entry.spec;
    let argc = args.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(arity_error(&entry.full_name));
    }
    if !client.authenticated && spec.flags & flag::NO_AUTH == 0 {
        return Err(errors::NOAUTH);
    }
    crate::evict::before_command(server, &client.config, client.access_policy, spec)?;
    Ok(())
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

/// Drops the reply of a command run under CLIENT REPLY OFF/SKIP.
fn discard_if_silenced(client: &mut Client, reply: &mut Reply, start: usize) {
    match client.reply_mode {
        ReplyMode::On | ReplyMode::SkipNext => {}
        ReplyMode::Off => reply.truncate(start),
        ReplyMode::SkipThis => {
            reply.truncate(start);
            client.reply_mode = ReplyMode::On;
        }
    }
}

/// Accounts for keys the store deleted on its own during a command or a background step.
pub fn handle_key_events(stats: &stats::ThreadStats) {
    for event in events::take() {
        match event {
            events::KeyEvent::Expired { .. } => stats.expired_keys.add(1),
        }
    }
}
