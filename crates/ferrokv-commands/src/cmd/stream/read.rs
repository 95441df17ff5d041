//! XREAD and XREADGROUP, blocking included.
//!
//! A read runs in three steps, as in Valkey: parse the options; resolve each stream's ID
//! argument in key order (type, group and ID errors come from the first key that fails);
//! serve every stream that has something. With nothing served and BLOCK given, the client
//! parks on all its keys; whenever one is written, the parked read is re-run from the
//! second step with `$` replaced by the ID it stood for when it parked, exactly like
//! Valkey re-executes the command. XREAD waiters are not consumers, so every one of them
//! gets the new entries; XREADGROUP `>` waiters take them in turn, each getting only what
//! the group has not delivered yet, and get NOGROUP or WRONGTYPE if the group or the key
//! goes away while they wait.

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_protocol::number::parse_i64;
use ferrokv_store::types::stream::{Stream, StreamId};
use ferrokv_store::{Entry, Locked, Value};

use super::{effects, ids, no_such_key_or_group, opt_stream, reply_entry, reply_id};
use crate::blocking::{self, BlockedOp, ServeCx};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::stats;

struct GroupArgs {
    name: Bytes,
    consumer: Bytes,
    noack: bool,
}

struct ReadArgs {
    keys: Vec<Bytes>,
    /// The ID arguments, one per key (`$` rewritten to an ID once the client parks).
    ids: Vec<Bytes>,
    /// Entries per stream; 0 for all.
    count: usize,
    /// BLOCK's deadline: `Some(None)` waits forever.
    block: Option<Option<i64>>,
    group: Option<GroupArgs>,
}

/// Where a stream is read from.
#[derive(Clone, Copy)]
enum From {
    /// Entries after this ID (history of the consumer, for XREADGROUP).
    After(StreamId),
    /// XREADGROUP `>`: entries the group has not delivered.
    Undelivered,
}

fn parse_block(arg: &[u8], now_ms: i64) -> Result<Option<i64>, CmdError> {
    let ms =
        parse_i64(arg).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if ms == 0 {
        return Ok(None);
    }
    if ms > i64::MAX - now_ms {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok(Some(now_ms + ms))
}

fn parse(args: &[Bytes], xreadgroup: bool, now_ms: i64) -> Result<ReadArgs, CmdError> {
    let mut parsed = ReadArgs {
        keys: Vec::new(),
        ids: Vec::new(),
        count: 0,
        block: None,
        group: None,
    };
    let mut noack = false;
    let mut group: Option<(Bytes, Bytes)> = None;
    let mut streams_at = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = &args[i];
        if args::is(opt, "block") && more > 0 {
            i += 1;
            parsed.block = Some(parse_block(&args[i], now_ms)?);
        } else if args::is(opt, "count") && more > 0 {
            i += 1;
            parsed.count = args::int(&args[i])?.max(0) as usize;
        } else if args::is(opt, "streams") && more > 0 {
            let streams = args.len() - (i + 1);
            if !streams.is_multiple_of(2) {
                let (name, symbol) = if xreadgroup {
                    ("xreadgroup", '>')
                } else {
                    ("xread", '$')
                };
                return Err(CmdError::err(format!(
                    "Unbalanced '{name}' list of streams: for each stream key an ID or '{symbol}' must be specified."
                )));
            }
            streams_at = Some(i + 1);
            break;
        } else if args::is(opt, "group") && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if args::is(opt, "noack") {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        return Err(errors::SYNTAX);
    };
    if xreadgroup && group.is_none() {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    }
    let n = (args.len() - at) / 2;
    parsed.keys = args[at..at + n].to_vec();
    parsed.ids = args[at + n..].to_vec();
    parsed.group = group.map(|(name, consumer)| GroupArgs {
        name,
        consumer,
        noack,
    });
    Ok(parsed)
}

/// Looks keys up for a read, from a command or from a parked client being served.
trait Lookup {
    fn lookup(&mut self, key: &[u8]) -> Option<&mut Entry>;
}

struct CtxLookup<'c, 'l, 'a> {
    ctx: &'c Ctx<'a>,
    locked: &'l mut Locked<'a>,
}

impl Lookup for CtxLookup<'_, '_, '_> {
    fn lookup(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.ctx.read(self.locked, key)
    }
}

impl Lookup for ServeCx<'_, '_> {
    fn lookup(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.write(key)
    }
}

const MEANINGLESS: &str = "ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages.";

/// Step two: each stream's starting point, checking types, groups and IDs in key order.
fn resolve(source: &mut impl Lookup, read: &ReadArgs) -> Result<Vec<From>, CmdError> {
    let mut resolved = Vec::with_capacity(read.keys.len());
    for (key, id_arg) in read.keys.iter().zip(&read.ids) {
        let stream = opt_stream(source.lookup(key))?;
        if let Some(group) = &read.group
            && !stream
                .as_ref()
                .is_some_and(|s| s.groups.contains_key(group.name.as_ref()))
        {
            return Err(no_such_key_or_group(
                key,
                &group.name,
                " in XREADGROUP with GROUP option",
            ));
        }
        let from = match id_arg.as_ref() {
            b"$" | b"+" if read.group.is_some() => {
                let symbol = id_arg[0] as char;
                return Err(CmdError::err(format!(
                    "The {symbol} {MEANINGLESS} The {symbol} ID would just return an empty result set."
                )));
            }
            b"$" => From::After(stream.map_or(StreamId::ZERO, |s| s.last_id)),
            b"+" => match stream {
                // An empty stream that never had entries reads from the start.
                Some(s) => From::After(s.last_id.predecessor().unwrap_or(StreamId::ZERO)),
                None => From::After(StreamId::ZERO),
            },
            b">" if read.group.is_none() => {
                return Err(CmdError::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            b">" => From::Undelivered,
            // Valkey encodes `>` as the largest ID, so that ID reads like `>` in a group.
            _ => match ids::strict(id_arg)? {
                StreamId::MAX if read.group.is_some() => From::Undelivered,
                id => From::After(id),
            },
        };
        resolved.push(from);
    }
    Ok(resolved)
}

/// Step three's result: the streams served, each as its reply element.
struct Served {
    streams: usize,
    body: Reply,
    dirty: u64,
    /// Streams where XREADGROUP created its consumer (`xgroup-createconsumer`).
    new_consumer_in: Vec<Bytes>,
    /// What the read propagates instead of itself (XREADGROUP: see `effects`).
    effects: Vec<Vec<Bytes>>,
}

impl Served {
    fn notify(&self, db: usize) {
        for key in &self.new_consumer_in {
            ferrokv_store::events::notify(
                ferrokv_store::events::class::STREAM,
                "xgroup-createconsumer",
                db,
                key,
            );
        }
    }
}

/// Step three: serves every stream that has something for this read.
fn serve(
    source: &mut impl Lookup,
    read: &ReadArgs,
    from: &[From],
    now_ms: i64,
    resp3: bool,
) -> Served {
    let mut served = Served {
        streams: 0,
        body: Reply::new(resp3),
        dirty: 0,
        new_consumer_in: Vec::new(),
        effects: Vec::new(),
    };
    let propagating = crate::propagate::collecting();
    for (key, &start) in read.keys.iter().zip(from) {
        let Some(Entry {
            value: Value::Stream(stream),
            ..
        }) = source.lookup(key)
        else {
            continue;
        };
        let reply = &mut served.body;
        match &read.group {
            None => {
                let From::After(after) = start else { continue };
                if stream.is_empty() || stream.last_valid_id() <= after {
                    continue;
                }
                served.streams += 1;
                write_key(reply, key);
                reply_after(reply, stream, after, read.count);
            }
            Some(group) => {
                let Some(g) = stream.groups.get_mut(group.name.as_ref()) else {
                    continue;
                };
                let (consumer, created) = g.consumer_or_create(&group.consumer, now_ms);
                served.dirty += u64::from(created);
                if created {
                    served.new_consumer_in.push(key.clone());
                    // Without NOACK the XCLAIMs create the consumer on the other side.
                    if propagating && group.noack {
                        served.effects.push(effects::create_consumer(
                            key,
                            &group.name,
                            &group.consumer,
                        ));
                    }
                }
                if let Some(c) = g.consumer_mut(&consumer) {
                    c.seen_time = now_ms;
                }
                let last_delivered = g.last_id;
                match start {
                    From::After(after) => {
                        served.streams += 1;
                        served.dirty += 1;
                        write_key(reply, key);
                        reply_history(reply, stream, group, after, read.count, now_ms);
                    }
                    From::Undelivered => {
                        if stream.is_empty() || stream.last_valid_id() <= last_delivered {
                            continue;
                        }
                        served.streams += 1;
                        served.dirty += 1;
                        write_key(reply, key);
                        let delivered = reply_undelivered(
                            reply,
                            stream,
                            group,
                            last_delivered,
                            read.count,
                            now_ms,
                        );
                        if propagating {
                            undelivered_effects(
                                &mut served.effects,
                                key,
                                stream,
                                group,
                                &delivered,
                            );
                        }
                    }
                }
            }
        }
    }
    served
}

/// A served stream's key: in RESP2 each stream is a `[key, entries]` pair, in RESP3 a map
/// entry.
fn write_key(reply: &mut Reply, key: &[u8]) {
    if !reply.is_resp3() {
        reply.array_len(2);
    }
    reply.bulk(key);
}

fn reply_after(reply: &mut Reply, stream: &Stream, after: StreamId, count: usize) {
    match after.successor() {
        Some(start) => {
            super::reply_range(reply, stream, start, StreamId::MAX, count, false);
        }
        None => reply.array_len(0),
    }
}

/// What delivering `delivered` propagates, as Valkey: an XCLAIM per entry unless NOACK
/// (each with the group's last ID as it was right after that entry), then the group's new
/// cursor.
fn undelivered_effects(
    out: &mut Vec<Vec<Bytes>>,
    key: &Bytes,
    stream: &Stream,
    group: &GroupArgs,
    delivered: &[StreamId],
) {
    let Some(g) = stream.groups.get(group.name.as_ref()) else {
        return;
    };
    if delivered.is_empty() {
        return;
    }
    if !group.noack {
        for &id in delivered {
            if let Some(pending) = g.pending.get(&id) {
                out.push(effects::xclaim_form(key, &group.name, id, pending, id));
            }
        }
    }
    out.push(effects::setid(key, &group.name, g));
}

/// New entries for a group: delivered to the consumer (unless NOACK) and moving the
/// group's last delivered ID and read counter. Returns the IDs delivered.
fn reply_undelivered(
    reply: &mut Reply,
    stream: &mut Stream,
    group: &GroupArgs,
    after: StreamId,
    count: usize,
    now_ms: i64,
) -> Vec<StreamId> {
    let Some(start) = after.successor() else {
        reply.array_len(0);
        return Vec::new();
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let delivered: Vec<StreamId> = {
        let entries: Vec<_> = stream
            .range(start, StreamId::MAX, false)
            .take(limit)
            .collect();
        reply.array_len(entries.len());
        for entry in &entries {
            reply_entry(reply, entry);
        }
        entries.iter().map(|e| e.id()).collect()
    };
    for &id in &delivered {
        stream.advance_group(&group.name, id);
        if group.noack {
            continue;
        }
        let Some(g) = stream.groups.get_mut(group.name.as_ref()) else {
            continue;
        };
        let Some((consumer, _)) = g.consumers.get_key_value(group.consumer.as_ref()) else {
            continue;
        };
        let consumer = consumer.clone();
        g.deliver(id, &consumer, now_ms);
        if let Some(c) = g.consumer_mut(&consumer) {
            c.active_time = now_ms;
        }
    }
    delivered
}

/// The consumer's own pending entries after `after`; entries deleted since delivery are
/// reported with a null body.
fn reply_history(
    reply: &mut Reply,
    stream: &mut Stream,
    group: &GroupArgs,
    after: StreamId,
    count: usize,
    now_ms: i64,
) {
    let limit = if count == 0 { usize::MAX } else { count };
    let pending: Vec<StreamId> = match (
        after.successor(),
        stream
            .groups
            .get(group.name.as_ref())
            .and_then(|g| g.consumers.get(group.consumer.as_ref())),
    ) {
        (Some(start), Some(consumer)) => consumer
            .pending
            .range(start..)
            .take(limit)
            .copied()
            .collect(),
        _ => Vec::new(),
    };
    reply.array_len(pending.len());
    let mut redelivered = Vec::new();
    for &id in &pending {
        match stream.get(id) {
            Some(entry) => {
                reply_entry(reply, &entry);
                redelivered.push(id);
            }
            None => {
                reply.array_len(2);
                reply_id(reply, id);
                reply.null_array();
            }
        }
    }
    if let Some(g) = stream.groups.get_mut(group.name.as_ref()) {
        for id in redelivered {
            if let Some(p) = g.pending.get_mut(&id) {
                p.delivery_time = now_ms;
                p.delivery_count = p.delivery_count.saturating_add(1);
            }
        }
    }
}

fn write_served(reply: &mut Reply, served: &Served) {
    if reply.is_resp3() {
        reply.map_len(served.streams);
    } else {
        reply.array_len(served.streams);
    }
    reply.raw(served.body.bytes());
}

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`
pub(super) fn xread(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, args, false)
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK]
/// STREAMS key [key ...] id [id ...]`
pub(super) fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, args, true)
}

fn read(ctx: &mut Ctx, args: &[Bytes], xreadgroup: bool) -> CmdResult {
    let mut read = parse(args, xreadgroup, ctx.now_ms)?;
    let mut locked = ctx.lock(&read.keys);
    let resp3 = ctx.reply.is_resp3();
    let (from, served) = {
        let mut source = CtxLookup {
            ctx,
            locked: &mut locked,
        };
        let from = resolve(&mut source, &read)?;
        let served = serve(&mut source, &read, &from, ctx.now_ms, resp3);
        (from, served)
    };
    served.notify(ctx.db());
    if xreadgroup {
        ctx.propagate_none();
        for effect in served.effects.iter().cloned() {
            ctx.propagate_also(effect);
        }
    }
    ctx.add_dirty(served.dirty);
    if served.streams > 0 {
        write_served(ctx.reply, &served);
        return Ok(());
    }
    let Some(deadline) = read.block else {
        ctx.reply.null_array();
        return Ok(());
    };
    if ctx.client.deny_blocking {
        ctx.reply.null_array();
        return Ok(());
    }
    // `$` means "after what is last now", also when the read is re-run later.
    for (id_arg, start) in read.ids.iter_mut().zip(&from) {
        if id_arg.as_ref() == b"$"
            && let From::After(id) = start
        {
            *id_arg = Bytes::from(id.to_bytes());
        }
    }
    let keys = read.keys.clone();
    blocking::block(ctx, keys, deadline, Box::new(ParkedRead { read }));
    drop(locked);
    Ok(())
}

/// A parked XREAD or XREADGROUP.
struct ParkedRead {
    read: ReadArgs,
}

impl BlockedOp for ParkedRead {
    fn extra_keys(&self) -> &[Bytes] {
        &self.read.keys
    }

    fn serves_missing_key(&self) -> bool {
        self.read.group.is_some()
    }

    fn serve(&self, cx: &mut ServeCx<'_, '_>, key: &Bytes) -> bool {
        // XREAD re-runs only for a stream; XREADGROUP for any change, deletion included.
        if self.read.group.is_none()
            && !matches!(cx.write(key).map(|e| &e.value), Some(Value::Stream(_)))
        {
            return false;
        }
        let from = match resolve(cx, &self.read) {
            Ok(from) => from,
            Err(e) => {
                stats::local().count_error(&e.0);
                cx.reply.error(&e.0);
                return true;
            }
        };
        let (now, resp3) = (cx.now_ms, cx.reply.is_resp3());
        let served = serve(cx, &self.read, &from, now, resp3);
        served.notify(cx.db);
        for effect in served.effects.iter().cloned() {
            cx.propagate(effect);
        }
        cx.add_dirty(served.dirty);
        if served.streams == 0 {
            return false;
        }
        write_served(&mut cx.reply, &served);
        true
    }
}
