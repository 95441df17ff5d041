//! XINFO STREAM / GROUPS / CONSUMERS / HELP.

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::types::stream::{ConsumerGroup, Stream, StreamId, UNKNOWN_ENTRIES_READ};

use super::{no_such_group, opt_stream, reply_entry, reply_id, reply_range};
use crate::cmd::args;
use crate::cmd::command::write_help;
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// `XINFO HELP`
pub(super) fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}

fn reply_entries_read(reply: &mut Reply, group: &ConsumerGroup) {
    if group.entries_read != UNKNOWN_ENTRIES_READ {
        reply.int(group.entries_read);
    } else {
        reply.null();
    }
}

fn reply_lag(reply: &mut Reply, stream: &Stream, group: &ConsumerGroup) {
    match stream.lag(group) {
        Some(lag) => reply.int(lag),
        None => reply.null(),
    }
}

/// `XINFO CONSUMERS key group`
pub(super) fn consumers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[2]]);
    let Some(stream) = opt_stream(ctx.read(&mut locked, &args[2]))? else {
        return Err(errors::NO_SUCH_KEY);
    };
    let Some(group) = stream.groups.get(args[3].as_ref()) else {
        return Err(no_such_group(&args[2], &args[3]));
    };
    let now = ctx.now_ms;
    let reply = &mut *ctx.reply;
    reply.array_len(group.consumers.len());
    for (name, consumer) in &group.consumers {
        reply.map_len(4);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"pending");
        reply.int(consumer.pending.len() as i64);
        reply.bulk(b"idle");
        reply.int((now.saturating_sub(consumer.seen_time)).max(0));
        reply.bulk(b"inactive");
        reply.int(if consumer.active_time != -1 {
            now.saturating_sub(consumer.active_time)
        } else {
            -1
        });
    }
    Ok(())
}

/// `XINFO GROUPS key`
pub(super) fn groups(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[2]]);
    let Some(stream) = opt_stream(ctx.read(&mut locked, &args[2]))? else {
        return Err(errors::NO_SUCH_KEY);
    };
    let reply = &mut *ctx.reply;
    reply.array_len(stream.groups.len());
    for (name, group) in &stream.groups {
        reply.map_len(6);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"consumers");
        reply.int(group.consumers.len() as i64);
        reply.bulk(b"pending");
        reply.int(group.pending.len() as i64);
        reply.bulk(b"last-delivered-id");
        reply_id(reply, group.last_id);
        reply.bulk(b"entries-read");
        reply_entries_read(reply, group);
        reply.bulk(b"lag");
        reply_lag(reply, stream, group);
    }
    Ok(())
}

/// `XINFO STREAM key [FULL [COUNT count]]`
pub(super) fn stream(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[2]]);
    let Some(stream) = opt_stream(ctx.read(&mut locked, &args[2]))? else {
        return Err(errors::NO_SUCH_KEY);
    };
    let options = &args[3..];
    let syntax = || {
        CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
            String::from_utf8_lossy(&args[1])
        ))
    };
    let mut full = false;
    let mut count: i64 = 10;
    if !options.is_empty() {
        if !args::is(&options[0], "full") {
            return Err(syntax());
        }
        match options.len() {
            1 => {}
            3 if args::is(&options[1], "count") => {
                count = args::int(&options[2])?;
                if count < 0 {
                    count = 10;
                }
            }
            _ => return Err(syntax()),
        }
        full = true;
    }
    let reply = &mut *ctx.reply;
    reply.map_len(if full { 9 } else { 10 });
    reply.bulk(b"length");
    reply.int(stream.len() as i64);
    reply.bulk(b"radix-tree-keys");
    reply.int(stream.node_count() as i64);
    reply.bulk(b"radix-tree-nodes");
    reply.int(stream.radix_tree_nodes() as i64);
    reply.bulk(b"last-generated-id");
    reply_id(reply, stream.last_id);
    reply.bulk(b"max-deleted-entry-id");
    reply_id(reply, stream.max_deleted_id);
    reply.bulk(b"entries-added");
    reply.int(stream.entries_added as i64);
    reply.bulk(b"recorded-first-entry-id");
    reply_id(reply, stream.first_id);
    if !full {
        reply.bulk(b"groups");
        reply.int(stream.groups.len() as i64);
        reply.bulk(b"first-entry");
        match stream.first_entry() {
            Some(entry) => reply_entry(reply, &entry),
            None => reply.null(),
        }
        reply.bulk(b"last-entry");
        match stream.last_entry() {
            Some(entry) => reply_entry(reply, &entry),
            None => reply.null(),
        }
        return Ok(());
    }
    let count = count as usize;
    let limit = if count == 0 { usize::MAX } else { count };
    reply.bulk(b"entries");
    reply_range(reply, stream, StreamId::ZERO, StreamId::MAX, count, false);
    reply.bulk(b"groups");
    reply.array_len(stream.groups.len());
    for (name, group) in &stream.groups {
        reply.map_len(7);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"last-delivered-id");
        reply_id(reply, group.last_id);
        reply.bulk(b"entries-read");
        reply_entries_read(reply, group);
        reply.bulk(b"lag");
        reply_lag(reply, stream, group);
        reply.bulk(b"pel-count");
        reply.int(group.pending.len() as i64);
        reply.bulk(b"pending");
        reply.array_len(group.pending.len().min(limit));
        for (id, pending) in group.pending.iter().take(limit) {
            reply.array_len(4);
            reply_id(reply, *id);
            reply.bulk(&pending.consumer);
            reply.int(pending.delivery_time);
            reply.int(pending.delivery_count as i64);
        }
        reply.bulk(b"consumers");
        reply.array_len(group.consumers.len());
        for (consumer_name, consumer) in &group.consumers {
            reply.map_len(5);
            reply.bulk(b"name");
            reply.bulk(consumer_name);
            reply.bulk(b"seen-time");
            reply.int(consumer.seen_time);
            reply.bulk(b"active-time");
            reply.int(consumer.active_time);
            reply.bulk(b"pel-count");
            reply.int(consumer.pending.len() as i64);
            reply.bulk(b"pending");
            reply.array_len(consumer.pending.len().min(limit));
            for id in consumer.pending.iter().take(limit) {
                reply.array_len(3);
                reply_id(reply, *id);
                let (time, deliveries) = group
                    .pending
                    .get(id)
                    .map_or((0, 0), |p| (p.delivery_time, p.delivery_count as i64));
                reply.int(time);
                reply.int(deliveries);
            }
        }
    }
    Ok(())
}
