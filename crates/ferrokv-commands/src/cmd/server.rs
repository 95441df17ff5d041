//! Server administration: TIME, LASTSAVE, SHUTDOWN, SLOWLOG and LATENCY.
//!
//! INFO, MEMORY, DEBUG and COMMAND have files of their own next to this one.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ferrokv_store::clock;

use crate::blocking::{Delivery, Parked};
use crate::cmd::args;
use crate::cmd::command::write_help;
use crate::commandlog::{self, LogEntry, LogKind};
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::latency;
use crate::spec::{CommandSpec, category as cat, flag};
use crate::table::TABLE;

const ADMIN: u64 = flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE;
const NONDETERMINISTIC: &str = "nondeterministic_output";

const fn help_sub(since: &'static str, summary: &'static str) -> CommandSpec {
    CommandSpec::new("help", 2, "server")
        .flags(flag::LOADING | flag::STALE)
        .doc(since, summary, "O(1)")
}

const fn latency_sub(name: &'static str, arity: i32) -> CommandSpec {
    CommandSpec::new(name, arity, "server").flags(ADMIN).tips(&[
        NONDETERMINISTIC,
        "request_policy:all_nodes",
        "response_policy:special",
    ])
}

const fn slowlog_sub(name: &'static str, arity: i32) -> CommandSpec {
    CommandSpec::new(name, arity, "server").flags(flag::ADMIN | flag::LOADING | flag::STALE)
}

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("time", 1, "server")
        .flags(flag::LOADING | flag::STALE | flag::FAST)
        .tips(&[NONDETERMINISTIC])
        .doc("2.6.0", "Reports the server's clock.", "O(1)")
        .handler(time),
    CommandSpec::new("lastsave", 1, "server")
        .flags(flag::LOADING | flag::STALE | flag::FAST)
        .categories(cat::ADMIN | cat::DANGEROUS)
        .tips(&[NONDETERMINISTIC])
        .doc(
            "1.0.0",
            "Reports when the dataset was last saved, in Unix seconds.",
            "O(1)",
        )
        .handler(lastsave),
    CommandSpec::new("shutdown", -1, "server")
        .flags(
            flag::ADMIN
                | flag::NOSCRIPT
                | flag::LOADING
                | flag::STALE
                | flag::NO_MULTI
                | flag::SENTINEL
                | flag::ALLOW_BUSY,
        )
        .doc(
            "1.0.0",
            "Stops the server, saving the dataset first when asked or configured to.",
            "O(N) when saving, N being the number of keys",
        )
        .handler(shutdown),
    CommandSpec::new("slowlog", -2, "server")
        .doc(
            "2.2.12",
            "Container for the slow log commands.",
            "Depends on the subcommand.",
        )
        .subcommands(&[
            slowlog_sub("get", -2)
                .tips(&["request_policy:all_nodes", NONDETERMINISTIC])
                .doc(
                    "2.2.12",
                    "Returns the newest slow log entries.",
                    "O(N), N being the number of entries returned",
                )
                .handler(slowlog_get),
            help_sub("6.2.0", "Lists the SLOWLOG subcommands.").handler(slowlog_help),
            slowlog_sub("len", 2)
                .tips(&[
                    "request_policy:all_nodes",
                    "response_policy:agg_sum",
                    NONDETERMINISTIC,
                ])
                .doc("2.2.12", "Counts the slow log entries.", "O(1)")
                .handler(slowlog_len),
            slowlog_sub("reset", 2)
                .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
                .doc(
                    "2.2.12",
                    "Empties the slow log.",
                    "O(N), N being the number of entries dropped",
                )
                .handler(slowlog_reset),
        ]),
    CommandSpec::new("commandlog", -2, "server")
        .doc(
            "8.1.0",
            "Container for the command log commands.",
            "Depends on the subcommand.",
        )
        .subcommands(&[
            slowlog_sub("get", 4)
                .tips(&["request_policy:all_nodes", NONDETERMINISTIC])
                .doc(
                    "8.1.0",
                    "Returns the newest entries of one command log.",
                    "O(N), N being the number of entries returned",
                )
                .handler(commandlog_get),
            help_sub("8.1.0", "Lists the COMMANDLOG subcommands.").handler(commandlog_help),
            slowlog_sub("len", 3)
                .tips(&[
                    "request_policy:all_nodes",
                    "response_policy:agg_sum",
                    NONDETERMINISTIC,
                ])
                .doc("8.1.0", "Counts the entries of one command log.", "O(1)")
                .handler(commandlog_len),
            slowlog_sub("reset", 3)
                .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
                .doc(
                    "8.1.0",
                    "Empties one command log.",
                    "O(N), N being the number of entries dropped",
                )
                .handler(commandlog_reset),
        ]),
    CommandSpec::new("latency", -2, "server")
        .doc(
            "2.8.13",
            "Container for the latency monitoring commands.",
            "Depends on the subcommand.",
        )
        .subcommands(&[
            latency_sub("doctor", 2)
                .doc("2.8.13", "Analyses the recorded latency events.", "O(1)")
                .handler(latency_doctor),
            latency_sub("graph", 3)
                .doc("2.8.13", "Draws the recent samples of one event.", "O(1)")
                .handler(latency_graph),
            help_sub("2.8.13", "Lists the LATENCY subcommands.").handler(latency_help),
            latency_sub("histogram", -2)
                .doc(
                    "7.0.0",
                    "Reports the latency distribution of commands.",
                    "O(N), N being the number of commands reported",
                )
                .handler(latency_histogram),
            latency_sub("history", 3)
                .doc("2.8.13", "Returns the recent samples of one event.", "O(1)")
                .handler(latency_history),
            latency_sub("latest", 2)
                .doc(
                    "2.8.13",
                    "Returns the newest sample of every event.",
                    "O(1)",
                )
                .handler(latency_latest),
            CommandSpec::new("reset", -2, "server")
                .flags(ADMIN)
                .tips(&["request_policy:all_nodes", "response_policy:agg_sum"])
                .doc(
                    "2.8.13",
                    "Forgets the samples of some or all events.",
                    "O(1)",
                )
                .handler(latency_reset),
        ]),
];

/// `TIME`: seconds and microseconds, as two bulk strings.
fn time(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let now = clock::now_us();
    ctx.reply.array_len(2);
    ctx.reply.bulk_int(now / 1_000_000);
    ctx.reply.bulk_int(now % 1_000_000);
    Ok(())
}

/// `LASTSAVE`
fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.reply
        .int(ctx.server.last_save_unix.load(Relaxed) as i64);
    Ok(())
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [SAFE] [FAILOVER] [ABORT]`
///
/// See [`crate::shutdown`]: with replicas behind, the caller waits blocked (writes paused)
/// until they catch up or `shutdown-timeout` passes; NOW skips the wait, FORCE exits even if
/// the final save fails, ABORT cancels a waiting shutdown. SAFE and FAILOVER concern cluster
/// primaries and change nothing here. On success no reply is sent: the connection closes,
/// as with Valkey.
fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut flags = crate::shutdown::Flags::default();
    let mut abort = false;
    for arg in &args[1..] {
        if args::is(arg, "save") {
            flags.save = true;
        } else if args::is(arg, "nosave") {
            flags.nosave = true;
        } else if args::is(arg, "abort") {
            abort = true;
        } else if args::is(arg, "force") {
            flags.force = true;
        } else if args::is(arg, "now") {
            flags.now = true;
        } else if !args::is(arg, "safe") && !args::is(arg, "failover") {
            return Err(errors::SYNTAX);
        }
    }
    if (flags.save && flags.nosave) || (abort && args.len() != 2) {
        return Err(errors::SYNTAX);
    }
    if abort {
        if !crate::shutdown::abort(ctx.server) {
            return Err(CmdError::err("No shutdown in progress."));
        }
        ctx.reply.ok();
        return Ok(());
    }
    if !flags.now && ctx.client.deny_blocking {
        return Err(CmdError::err(
            "SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client",
        ));
    }
    // Past `busy-reply-threshold` a script may hold the keyspace for good: only NOSAVE
    // shuts down then (saving would wait for it), as in Valkey.
    let busy = &ctx.server.scripting.busy;
    if !flags.nosave
        && let Some(e) = busy.timed_out_error(ctx.client.config.busy_reply_threshold)
    {
        return Err(e);
    }
    log::warn!("User requested shutdown...");
    let delivery: Delivery = Default::default();
    let caller = (delivery.clone(), ctx.client.shared.clone());
    match crate::shutdown::begin(ctx.server, flags, Some(caller)) {
        crate::shutdown::Outcome::Exiting => {
            ctx.client.close_after_reply = true;
            Ok(())
        }
        crate::shutdown::Outcome::Waiting => {
            ctx.client.blocked = Some(Parked {
                delivery,
                deadline_ms: None,
            });
            Ok(())
        }
        crate::shutdown::Outcome::Failed => {
            Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."))
        }
    }
}

/// `SLOWLOG GET [count]`: the newest entries, newest first (10 by default, -1 for all).
fn slowlog_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    let count = match args.get(2) {
        None => Some(10),
        Some(arg) => match ferrokv_protocol::number::parse_i64(arg) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::err("count should be greater than or equal to -1")),
        },
    };
    reply_entries(ctx, &commandlog::newest(LogKind::Slow, count));
    Ok(())
}

/// Log entries as SLOWLOG GET and COMMANDLOG GET show them.
fn reply_entries(ctx: &mut Ctx, entries: &[LogEntry]) {
    ctx.reply.array_len(entries.len());
    for entry in entries {
        ctx.reply.array_len(6);
        ctx.reply.int(entry.id as i64);
        ctx.reply.int(entry.timestamp);
        ctx.reply.int(entry.value as i64);
        ctx.reply.array_len(entry.args.len());
        for arg in &entry.args {
            ctx.reply.bulk(arg);
        }
        ctx.reply.bulk(entry.client_addr.as_bytes());
        ctx.reply.bulk(&entry.client_name);
    }
}

fn slowlog_len(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.reply.int(commandlog::len(LogKind::Slow) as i64);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    commandlog::reset(LogKind::Slow);
    ctx.reply.ok();
    Ok(())
}

/// The log COMMANDLOG's `type` argument names.
fn log_kind(arg: &[u8]) -> Result<LogKind, CmdError> {
    LogKind::named(arg).ok_or_else(|| {
        CmdError::err("type should be one of the following: slow, large-request, large-reply")
    })
}

/// `COMMANDLOG GET count type`: the newest entries of one log (-1 for all). The count is
/// checked before the type, as in Valkey.
fn commandlog_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match ferrokv_protocol::number::parse_i64(&args[2]) {
        Some(-1) => None,
        Some(n) if n >= 0 => Some(n as usize),
        _ => return Err(CmdError::err("count should be greater than or equal to -1")),
    };
    let kind = log_kind(&args[3])?;
    reply_entries(ctx, &commandlog::newest(kind, count));
    Ok(())
}

fn commandlog_len(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let kind = log_kind(&args[2])?;
    ctx.reply.int(commandlog::len(kind) as i64);
    Ok(())
}

fn commandlog_reset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let kind = log_kind(&args[2])?;
    commandlog::reset(kind);
    ctx.reply.ok();
    Ok(())
}

fn commandlog_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "COMMANDLOG",
        &[
            "GET <count> <type>",
            "    Show the newest <count> entries (-1 for all) of the log <type>: slow,",
            "    large-request or large-reply. Each entry holds: id, Unix time, the measure",
            "    (microseconds for slow, bytes for the others), arguments, client address,",
            "    client name.",
            "LEN <type>",
            "    Count the entries of the log <type>.",
            "RESET <type>",
            "    Empty the log <type>.",
        ],
    );
    Ok(())
}

fn slowlog_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Show the newest <count> entries (10 by default, -1 for all). Each entry holds:",
            "    id, Unix time, duration in microseconds, arguments, client address, client name.",
            "LEN",
            "    Count the entries.",
            "RESET",
            "    Delete every entry.",
        ],
    );
    Ok(())
}

/// `LATENCY LATEST`: per event, the newest sample's time and latency, the highest latency,
/// and the sum and number of latencies recorded.
fn latency_latest(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let events = latency::events();
    ctx.reply.array_len(events.len());
    for (name, history) in events {
        let last = history.samples.last().copied().unwrap_or(latency::Sample {
            time: 0,
            latency: 0,
        });
        ctx.reply.array_len(6);
        ctx.reply.bulk(name.as_bytes());
        ctx.reply.int(last.time);
        ctx.reply.int(last.latency as i64);
        ctx.reply.int(history.max as i64);
        ctx.reply.int(history.sum as i64);
        ctx.reply.int(history.count as i64);
    }
    Ok(())
}

/// `LATENCY HISTORY event`
fn latency_history(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let samples = latency::event(&args[2])
        .map(|h| h.samples)
        .unwrap_or_default();
    ctx.reply.array_len(samples.len());
    for sample in samples {
        ctx.reply.array_len(2);
        ctx.reply.int(sample.time);
        ctx.reply.int(sample.latency as i64);
    }
    Ok(())
}

/// `LATENCY RESET [event ...]`: the number of events forgotten.
fn latency_reset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let names: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    ctx.reply.int(latency::reset(&names) as i64);
    Ok(())
}

/// `LATENCY HISTOGRAM [command ...]`: for each command that has run, its number of calls and
/// the cumulative distribution of its latencies. A container names all its subcommands.
fn latency_histogram(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut ids = Vec::new();
    if args.len() == 2 {
        for command in TABLE.commands() {
            ids.push(command.id);
            ids.extend(TABLE.subcommands_of(command.id).map(|s| s.id));
        }
    } else {
        for name in &args[2..] {
            let Some(entry) = TABLE.find_full(name) else {
                continue;
            };
            if entry.spec.subcommands.is_empty() {
                ids.push(entry.id);
            } else {
                ids.extend(TABLE.subcommands_of(entry.id).map(|s| s.id));
            }
        }
    }
    let found: Vec<_> = ids
        .into_iter()
        .filter_map(|id| latency::command_histogram(id).map(|h| (id, h)))
        .collect();
    ctx.reply.map_len(found.len());
    for (id, histogram) in found {
        ctx.reply.bulk(TABLE.entry(id).full_name.as_bytes());
        ctx.reply.map_len(2);
        ctx.reply.bulk(b"calls");
        ctx.reply.int(histogram.len() as i64);
        ctx.reply.bulk(b"histogram_usec");
        let buckets = latency::cumulative_buckets(&histogram);
        ctx.reply.map_len(buckets.len());
        for (usec, count) in buckets {
            ctx.reply.int(usec as i64);
            ctx.reply.int(count as i64);
        }
    }
    Ok(())
}

/// `LATENCY GRAPH event`: the event's recent samples as a text chart (ferrokv's own layout:
/// one row per sample, newest last, bar length proportional to the latency).
fn latency_graph(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(history) = latency::event(&args[2]) else {
        return Err(CmdError::err(format!(
            "No samples available for event '{name}'"
        )));
    };
    let high = history.samples.iter().map(|s| s.latency).max().unwrap_or(0);
    let low = history.samples.iter().map(|s| s.latency).min().unwrap_or(0);
    let mut text = format!(
        "{name} - high {high} ms, low {low} ms (all time high {} ms)\n",
        history.max
    );
    text.push_str(&"-".repeat(80));
    text.push('\n');
    let now = clock::now_ms() / 1000;
    for sample in &history.samples {
        let width = (sample.latency * 60).checked_div(high).unwrap_or(0) as usize;
        text.push_str(&format!(
            "{:>6}s ago {:>6} ms |{}\n",
            now - sample.time,
            sample.latency,
            "#".repeat(width.max(1))
        ));
    }
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// `LATENCY DOCTOR`: a plain report of the recorded events (ferrokv's own wording).
fn latency_doctor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let threshold = ctx.client.config.latency_monitor_threshold;
    let events = latency::events();
    let mut text = String::new();
    if threshold <= 0 {
        text.push_str(
            "The latency monitor is off: set latency-monitor-threshold to a number of \
             milliseconds (CONFIG SET latency-monitor-threshold 100, for example) to record \
             events that take at least that long.\n",
        );
    } else if events.is_empty() {
        text.push_str(&format!(
            "No event took {threshold} ms or more since the monitor was last reset.\n"
        ));
    } else {
        text.push_str(&format!(
            "Events that took {threshold} ms or more since the monitor was last reset:\n\n"
        ));
        for (i, (name, history)) in events.iter().enumerate() {
            let average = history.sum.checked_div(history.count).unwrap_or(0);
            text.push_str(&format!(
                "{}. {name}: {} samples, average {average} ms, highest {} ms.\n",
                i + 1,
                history.count,
                history.max
            ));
        }
        text.push_str(
            "\nSLOWLOG GET lists the commands that ran longest; LATENCY HISTOGRAM shows how \
             the run times of each command are distributed.\n",
        );
    }
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

fn latency_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "LATENCY",
        &[
            "DOCTOR",
            "    Report on the recorded latency events in plain words.",
            "GRAPH <event>",
            "    Draw the recent samples of <event> as text.",
            "HISTORY <event>",
            "    List the recent (time, latency) samples of <event>.",
            "LATEST",
            "    List the newest sample of every event.",
            "RESET [<event> ...]",
            "    Forget the samples of the named events (all events when none is named).",
            "HISTOGRAM [<command> ...]",
            "    Show the latency distribution of the named commands (all when none is named).",
        ],
    );
    Ok(())
}
