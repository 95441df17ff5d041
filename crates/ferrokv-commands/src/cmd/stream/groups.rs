//! Consumer groups: XGROUP, XACK, XPENDING, XCLAIM and XAUTOCLAIM.

use std::ops::Bound;

use bytes::Bytes;
use ferrokv_store::Value;
use ferrokv_store::types::stream::{ConsumerGroup, Stream, StreamId, UNKNOWN_ENTRIES_READ};

use super::effects;
use super::write::wake_readers;
use super::{ids, no_such_group, no_such_key_or_group, opt_stream, reply_entry, reply_id};
use crate::cmd::args;
use crate::cmd::command::write_help;
use crate::context::{CmdError, CmdResult, Ctx};

fn subcommand_syntax(args: &[Bytes]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
    ))
}

const KEY_REQUIRED: &str = "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

/// The options after `XGROUP CREATE|SETID key group id`: (MKSTREAM, ENTRIESREAD).
fn group_options(args: &[Bytes], create: bool) -> Result<(bool, i64), CmdError> {
    let mut mkstream = false;
    let mut entries_read = UNKNOWN_ENTRIES_READ;
    let mut i = 5;
    while i < args.len() {
        if create && args::is(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if args::is(&args[i], "entriesread") && i + 1 < args.len() {
            entries_read = args::int(&args[i + 1])?;
            if entries_read < 0 && entries_read != UNKNOWN_ENTRIES_READ {
                return Err(CmdError::err(
                    "value for ENTRIESREAD must be positive or -1",
                ));
            }
            i += 2;
        } else {
            return Err(subcommand_syntax(args));
        }
    }
    Ok((mkstream, entries_read))
}

/// `XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]`
pub(super) fn create(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mkstream, entries_read) = group_options(args, true)?;
    let key = &args[2];
    let mut locked = ctx.lock(&[key]);
    let existing = opt_stream(ctx.write(&mut locked, key))?;
    if existing.is_none() && !mkstream {
        return Err(CmdError::err(KEY_REQUIRED));
    }
    if args.len() > 8 {
        return Err(subcommand_syntax(args));
    }
    let id = if args[4].as_ref() == b"$" {
        existing.as_ref().map_or(StreamId::ZERO, |s| s.last_id)
    } else {
        ids::strict(&args[4])?
    };
    let group = ConsumerGroup::new(id, entries_read);
    match existing {
        Some(stream) => {
            if stream.groups.contains_key(args[3].as_ref()) {
                return Err(CmdError::new(
                    "BUSYGROUP Consumer Group name already exists",
                ));
            }
            stream.groups.insert(args[3].to_vec().into(), group);
        }
        None => {
            let mut stream = Stream::new();
            stream.groups.insert(args[3].to_vec().into(), group);
            let entry = ctx.new_entry(Value::Stream(Box::new(stream)));
            locked.db(ctx.db(), key).insert(key, entry);
        }
    }
    ctx.notify(ferrokv_store::events::class::STREAM, "xgroup-create", key);
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// The stream and group an XGROUP subcommand works on, with Valkey's errors.
fn existing_group<'s>(
    stream: Option<&'s mut Stream>,
    args: &[Bytes],
) -> Result<(&'s mut Stream, bool), CmdError> {
    let stream = stream.ok_or_else(|| CmdError::err(KEY_REQUIRED))?;
    let exists = stream.groups.contains_key(args[3].as_ref());
    Ok((stream, exists))
}

/// `XGROUP SETID key group id|$ [ENTRIESREAD entries-read]`
pub(super) fn set_id(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (_, entries_read) = group_options(args, false)?;
    let mut locked = ctx.lock(&[&args[2]]);
    let (stream, exists) = existing_group(opt_stream(ctx.write(&mut locked, &args[2]))?, args)?;
    if !exists {
        return Err(no_such_group(&args[2], &args[3]));
    }
    if args.len() != 5 && args.len() != 7 {
        return Err(subcommand_syntax(args));
    }
    let id = if args[4].as_ref() == b"$" {
        stream.last_id
    } else {
        ids::loose(&args[4], 0)?
    };
    if let Some(group) = stream.groups.get_mut(args[3].as_ref()) {
        group.last_id = id;
        group.entries_read = entries_read;
    }
    ctx.notify(
        ferrokv_store::events::class::STREAM,
        "xgroup-setid",
        &args[2],
    );
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// `XGROUP DESTROY key group`
pub(super) fn destroy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[2];
    let mut locked = ctx.lock(&[key]);
    let (stream, _) = existing_group(opt_stream(ctx.write(&mut locked, key))?, args)?;
    if stream.groups.remove(args[3].as_ref()).is_none() {
        ctx.reply.int(0);
        return Ok(());
    }
    ctx.notify(ferrokv_store::events::class::STREAM, "xgroup-destroy", key);
    ctx.add_dirty(1);
    ctx.reply.int(1);
    // Readers blocked on the group learn it is gone.
    wake_readers(ctx, &mut locked, key);
    Ok(())
}

/// `XGROUP CREATECONSUMER key group consumer`
pub(super) fn create_consumer(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[2]]);
    let (stream, _) = existing_group(opt_stream(ctx.write(&mut locked, &args[2]))?, args)?;
    let Some(group) = stream.groups.get_mut(args[3].as_ref()) else {
        return Err(no_such_group(&args[2], &args[3]));
    };
    let (_, created) = group.consumer_or_create(&args[4], ctx.now_ms);
    if created {
        ctx.notify(
            ferrokv_store::events::class::STREAM,
            "xgroup-createconsumer",
            &args[2],
        );
        ctx.add_dirty(1);
    }
    ctx.reply.int(i64::from(created));
    Ok(())
}

/// `XGROUP DELCONSUMER key group consumer`
pub(super) fn del_consumer(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[2]]);
    let (stream, _) = existing_group(opt_stream(ctx.write(&mut locked, &args[2]))?, args)?;
    let Some(group) = stream.groups.get_mut(args[3].as_ref()) else {
        return Err(no_such_group(&args[2], &args[3]));
    };
    let pending = group.delete_consumer(&args[4]);
    if pending.is_some() {
        ctx.notify(
            ferrokv_store::events::class::STREAM,
            "xgroup-delconsumer",
            &args[2],
        );
        ctx.add_dirty(1);
    }
    ctx.reply.int(pending.unwrap_or(0) as i64);
    Ok(())
}

/// `XGROUP HELP`
pub(super) fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

/// `XACK key group id [id ...]`
pub(super) fn xack(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[1]]);
    let stream = opt_stream(ctx.read(&mut locked, &args[1]))?;
    let Some(group) = stream.and_then(|s| s.groups.get_mut(args[2].as_ref())) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let ids = args[3..]
        .iter()
        .map(|a| ids::strict(a))
        .collect::<Result<Vec<_>, _>>()?;
    let acked = ids.into_iter().filter(|&id| group.ack(id)).count();
    ctx.add_dirty(acked as u64);
    ctx.reply.int(acked as i64);
    Ok(())
}

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`
pub(super) fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(crate::context::errors::SYNTAX);
    }
    let mut extended = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if args::is(&args[3], "idle") {
            min_idle = args::int(&args[4])?;
            if argc < 8 {
                return Err(crate::context::errors::SYNTAX);
            }
            at += 2;
        }
        let count = args::int(&args[at + 2])?.max(0);
        let start = ids::interval_start(&args[at])?;
        let end = ids::interval_end(&args[at + 1])?;
        let consumer = args.get(at + 3).cloned();
        extended = Some((min_idle, start, end, count, consumer));
    }
    let mut locked = ctx.lock(&[&args[1]]);
    let stream = opt_stream(ctx.read(&mut locked, &args[1]))?;
    let Some(group) = stream.and_then(|s| s.groups.get(args[2].as_ref())) else {
        return Err(no_such_key_or_group(&args[1], &args[2], ""));
    };
    let reply = &mut *ctx.reply;
    let Some((min_idle, start, end, count, consumer)) = extended else {
        reply.array_len(4);
        reply.int(group.pending.len() as i64);
        match (
            group.pending.first_key_value(),
            group.pending.last_key_value(),
        ) {
            (Some((first, _)), Some((last, _))) => {
                reply_id(reply, *first);
                reply_id(reply, *last);
                let owners: Vec<_> = group
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pending.is_empty())
                    .collect();
                reply.array_len(owners.len());
                for (name, consumer) in owners {
                    reply.array_len(2);
                    reply.bulk(name);
                    reply.bulk_int(consumer.pending.len() as i64);
                }
            }
            _ => {
                reply.null();
                reply.null();
                reply.null_array();
            }
        }
        return Ok(());
    };
    let now = ctx.now_ms;
    let candidates: Box<dyn Iterator<Item = StreamId>> = match &consumer {
        Some(name) => match group.consumers.get(name.as_ref()) {
            Some(c) => Box::new(c.pending.range(start..).copied()),
            None => {
                reply.array_len(0);
                return Ok(());
            }
        },
        None => Box::new(group.pending.range(start..).map(|(id, _)| *id)),
    };
    let mut rows = Vec::new();
    let mut remaining = count;
    for id in candidates {
        if remaining == 0 || id > end {
            break;
        }
        let Some(pending) = group.pending.get(&id) else {
            continue;
        };
        if min_idle != 0 && now.saturating_sub(pending.delivery_time) < min_idle {
            continue;
        }
        remaining -= 1;
        rows.push((id, pending));
    }
    reply.array_len(rows.len());
    for (id, pending) in rows {
        reply.array_len(4);
        reply_id(reply, id);
        reply.bulk(&pending.consumer);
        reply.int((now.saturating_sub(pending.delivery_time)).max(0));
        reply.int(pending.delivery_count as i64);
    }
    Ok(())
}

/// The XCLAIM/XAUTOCLAIM preamble: the stream and its group, or NOGROUP.
fn claim_target<'s>(
    stream: Option<&'s mut Stream>,
    args: &[Bytes],
) -> Result<&'s mut Stream, CmdError> {
    match stream {
        Some(s) if s.groups.contains_key(args[2].as_ref()) => Ok(s),
        _ => Err(no_such_key_or_group(&args[1], &args[2], "")),
    }
}

/// What one claim does to a pending entry.
struct Claim {
    delivery_time: i64,
    retry_count: Option<u64>,
    just_id: bool,
}

/// Gives pending entry `id` to `consumer` and writes its reply element.
fn claim_one(
    stream: &mut Stream,
    group_name: &[u8],
    consumer: &ferrokv_store::types::stream::ConsumerName,
    id: StreamId,
    claim: &Claim,
    now_ms: i64,
    reply: &mut ferrokv_protocol::Reply,
) {
    let Some(group) = stream.groups.get_mut(group_name) else {
        return;
    };
    group.transfer(id, consumer);
    if let Some(pending) = group.pending.get_mut(&id) {
        pending.delivery_time = claim.delivery_time;
        match claim.retry_count {
            Some(n) => pending.delivery_count = n,
            None if !claim.just_id => {
                pending.delivery_count = pending.delivery_count.saturating_add(1)
            }
            None => {}
        }
    }
    if let Some(c) = group.consumer_mut(consumer) {
        c.active_time = now_ms;
    }
    if claim.just_id {
        reply_id(reply, id);
    } else if let Some(entry) = stream.get(id) {
        reply_entry(reply, &entry);
    }
}

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]`
pub(super) fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[1]]);
    let stream = claim_target(opt_stream(ctx.read(&mut locked, &args[1]))?, args)?;
    let min_idle = ferrokv_protocol::number::parse_i64(&args[4])
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match ids::strict(&args[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms;
    let mut force = false;
    let mut just_id = false;
    let mut delivery_time: Option<i64> = None;
    let mut retry_count: Option<i64> = None;
    let mut last_id = StreamId::ZERO;
    let int_or = |arg: &[u8], what: &str| {
        ferrokv_protocol::number::parse_i64(arg)
            .ok_or_else(|| CmdError::err(format!("Invalid {what} option argument for XCLAIM")))
    };
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if args::is(opt, "force") {
            force = true;
        } else if args::is(opt, "justid") {
            just_id = true;
        } else if args::is(opt, "idle") && more > 0 {
            j += 1;
            delivery_time = Some(now.wrapping_sub(int_or(&args[j], "IDLE")?));
        } else if args::is(opt, "time") && more > 0 {
            j += 1;
            delivery_time = Some(int_or(&args[j], "TIME")?);
        } else if args::is(opt, "retrycount") && more > 0 {
            j += 1;
            retry_count = Some(int_or(&args[j], "RETRYCOUNT")?);
        } else if args::is(opt, "lastid") && more > 0 {
            j += 1;
            last_id = ids::strict(&args[j])?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
        j += 1;
    }
    let group_name = args[2].as_ref();
    let mut dirty = 0;
    let mut moved_last_id = false;
    let consumer = {
        let Some(group) = stream.groups.get_mut(group_name) else {
            return Err(no_such_key_or_group(&args[1], &args[2], ""));
        };
        if last_id > group.last_id {
            group.last_id = last_id;
            moved_last_id = true;
            dirty += 1;
        }
        let (consumer, created) = group.consumer_or_create(&args[3], now);
        if created {
            ctx.notify(
                ferrokv_store::events::class::STREAM,
                "xgroup-createconsumer",
                &args[1],
            );
        }
        if let Some(c) = group.consumer_mut(&consumer) {
            c.seen_time = now;
        }
        consumer
    };
    let delivery_time = match delivery_time {
        Some(t) if t >= 0 && t <= now => t,
        _ => now,
    };
    let claim = Claim {
        delivery_time,
        // A negative RETRYCOUNT is taken as "not given", as Valkey does.
        retry_count: retry_count.and_then(|n| u64::try_from(n).ok()),
        just_id,
    };
    let mut body = ferrokv_protocol::Reply::new(ctx.reply.is_resp3());
    let mut claimed = 0;
    // Each claim propagates as its own deterministic XCLAIM (see `effects`).
    let propagating = ctx.propagating();
    let mut sent_claim = false;
    ctx.propagate_none();
    for id in ids {
        let exists = stream.contains(id);
        let Some(group) = stream.groups.get_mut(group_name) else {
            break;
        };
        if !exists {
            if group.pending.contains_key(&id) {
                if propagating && let Some(form) = effects::claimed(&args[1], &args[2], group, id) {
                    ctx.propagate_also(form);
                    sent_claim = true;
                }
                group.ack(id);
                dirty += 1;
            }
            continue;
        }
        let mut forced = false;
        if force && !group.pending.contains_key(&id) {
            // A fresh pending entry (one delivery, now), then claimed like any other.
            group.deliver(id, &consumer, now);
            forced = true;
        }
        let Some(pending) = group.pending.get(&id) else {
            continue;
        };
        if !forced && min_idle > 0 && now.saturating_sub(pending.delivery_time) < min_idle {
            continue;
        }
        claim_one(stream, group_name, &consumer, id, &claim, now, &mut body);
        if propagating
            && let Some(form) = stream
                .groups
                .get(group_name)
                .and_then(|g| effects::claimed(&args[1], &args[2], g, id))
        {
            ctx.propagate_also(form);
            sent_claim = true;
        }
        claimed += 1;
        dirty += 1;
    }
    // LASTID moved the group's cursor: each XCLAIM sent carries it, else XGROUP SETID.
    if propagating
        && moved_last_id
        && !sent_claim
        && let Some(group) = stream.groups.get(group_name)
    {
        ctx.propagate_also(effects::setid(&args[1], &args[2], group));
    }
    ctx.add_dirty(dirty);
    ctx.reply.array_len(claimed);
    ctx.reply.raw(body.bytes());
    Ok(())
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`
pub(super) fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let min_idle = ferrokv_protocol::number::parse_i64(&args[4])
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = ids::interval_start(&args[5])?;
    let max_count: i64 = i64::MAX / 16;
    let mut count: i64 = 100;
    let mut just_id = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args::is(&args[j], "count") && more > 0 {
            count = ferrokv_protocol::number::parse_i64(&args[j + 1])
                .filter(|n| (1..=max_count).contains(n))
                .ok_or_else(|| CmdError::err("COUNT must be > 0"))?;
            j += 1;
        } else if args::is(&args[j], "justid") {
            just_id = true;
        } else {
            return Err(crate::context::errors::SYNTAX);
        }
        j += 1;
    }
    let mut locked = ctx.lock(&[&args[1]]);
    let stream = claim_target(opt_stream(ctx.read(&mut locked, &args[1]))?, args)?;
    let now = ctx.now_ms;
    let group_name = args[2].as_ref();
    let consumer = {
        let Some(group) = stream.groups.get_mut(group_name) else {
            return Err(no_such_key_or_group(&args[1], &args[2], ""));
        };
        let (consumer, created) = group.consumer_or_create(&args[3], now);
        if created {
            ctx.notify(
                ferrokv_store::events::class::STREAM,
                "xgroup-createconsumer",
                &args[1],
            );
        }
        if let Some(c) = group.consumer_mut(&consumer) {
            c.seen_time = now;
        }
        consumer
    };
    let claim = Claim {
        delivery_time: now,
        retry_count: None,
        just_id,
    };
    let mut attempts = count.saturating_mul(10);
    let mut remaining = count;
    let mut body = ferrokv_protocol::Reply::new(ctx.reply.is_resp3());
    let mut claimed = 0;
    // Valkey allocates room for COUNT deleted IDs up front and refuses what it cannot get.
    let mut deleted: Vec<StreamId> = Vec::new();
    if deleted.try_reserve_exact(count as usize).is_err() {
        return Err(CmdError::err(
            "Insufficient memory, failed allocating transient memory, COUNT too high.",
        ));
    }
    let mut dirty = 0;
    let mut from = Bound::Included(start);
    let propagating = ctx.propagating();
    ctx.propagate_none();
    loop {
        if attempts == 0 {
            break;
        }
        attempts -= 1;
        if remaining == 0 {
            break;
        }
        let next = stream
            .groups
            .get(group_name)
            .and_then(|g| g.pending.range((from, Bound::Unbounded)).next())
            .map(|(id, p)| (*id, p.delivery_time));
        let Some((id, delivered_at)) = next else {
            break;
        };
        from = Bound::Excluded(id);
        if !stream.contains(id) {
            if let Some(group) = stream.groups.get_mut(group_name) {
                if propagating && let Some(form) = effects::claimed(&args[1], &args[2], group, id) {
                    ctx.propagate_also(form);
                }
                group.ack(id);
            }
            deleted.push(id);
            remaining -= 1;
            dirty += 1;
            continue;
        }
        if min_idle > 0 && now.saturating_sub(delivered_at) < min_idle {
            continue;
        }
        claim_one(stream, group_name, &consumer, id, &claim, now, &mut body);
        if propagating
            && let Some(form) = stream
                .groups
                .get(group_name)
                .and_then(|g| effects::claimed(&args[1], &args[2], g, id))
        {
            ctx.propagate_also(form);
        }
        claimed += 1;
        remaining -= 1;
        dirty += 1;
    }
    let cursor = stream
        .groups
        .get(group_name)
        .and_then(|g| g.pending.range((from, Bound::Unbounded)).next())
        .map_or(StreamId::ZERO, |(id, _)| *id);
    ctx.add_dirty(dirty);
    let reply = &mut *ctx.reply;
    reply.array_len(3);
    reply_id(reply, cursor);
    reply.array_len(claimed);
    reply.raw(body.bytes());
    reply.array_len(deleted.len());
    for id in deleted {
        reply_id(reply, id);
    }
    Ok(())
}
