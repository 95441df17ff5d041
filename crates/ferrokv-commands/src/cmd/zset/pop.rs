//! ZPOPMIN, ZPOPMAX and ZMPOP, and the pop primitive the blocking forms (BZPOPMIN,
//! BZPOPMAX, BZMPOP) build on: [`pop`] plus the reply shapes [`reply_key_and_pairs`] (ZMPOP,
//! BZMPOP) and [`reply_key_member_score`] (BZPOPMIN, BZPOPMAX).

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_protocol::number::parse_i64;
use ferrokv_store::Locked;
use ferrokv_store::types::zset::Pair;

use super::{delete_if_empty, zset_of_mut};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// Which end to pop from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Min,
    Max,
}

/// Pops up to `count` elements from the lowest or highest end of the sorted set at `key`
/// in the client's database, deleting the key if it becomes empty and counting the change.
/// `Ok(None)`: no such key; `Err(WRONGTYPE)`: the key holds another type. The caller holds
/// the lock on `key`.
pub fn pop(
    ctx: &Ctx,
    locked: &mut Locked,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Pair>>, CmdError> {
    let Some(entry) = ctx.write(locked, key) else {
        return Ok(None);
    };
    let zset = zset_of_mut(&mut entry.value)?;
    let mut popped = Vec::with_capacity(count.min(zset.len()));
    while popped.len() < count {
        match zset.pop(end == End::Max) {
            Some(pair) => popped.push(pair),
            None => break,
        }
    }
    if !popped.is_empty() {
        let event = if end == End::Max {
            "zpopmax"
        } else {
            "zpopmin"
        };
        delete_if_empty(ctx, locked, key, Some(event));
        ctx.add_dirty(popped.len() as u64);
    }
    Ok(Some(popped))
}

/// `[key, [[member, score], ...]]`, as ZMPOP and BZMPOP reply (pairs nested in RESP2 too).
pub fn reply_key_and_pairs(reply: &mut Reply, key: &[u8], pairs: &[Pair]) {
    reply.array_len(2);
    reply.bulk(key);
    reply.array_len(pairs.len());
    for (member, score) in pairs {
        reply.array_len(2);
        reply.bulk(member);
        reply.double(*score);
    }
}

/// `[key, member, score]`, as BZPOPMIN and BZPOPMAX reply.
pub fn reply_key_member_score(reply: &mut Reply, key: &[u8], pair: &Pair) {
    reply.array_len(3);
    reply.bulk(key);
    reply.bulk(&pair.0);
    reply.double(pair.1);
}

/// `ZPOPMIN key [count]`
pub(super) fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, End::Min)
}

/// `ZPOPMAX key [count]`
pub(super) fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, End::Max)
}

fn zpop(ctx: &mut Ctx, args: &[Bytes], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let count = match args.get(2) {
        None => None,
        Some(arg) => Some(
            parse_i64(arg)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?,
        ),
    };
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let popped = pop(ctx, &mut locked, key, end, count.unwrap_or(1))?;
    let Some(popped) = popped else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    let resp3 = ctx.reply.is_resp3();
    // RESP3 nests pairs when a count was given; RESP2 is always flat.
    let nested = resp3 && count.is_some();
    ctx.reply.array_len(if nested {
        popped.len()
    } else {
        popped.len() * 2
    });
    for (member, score) in &popped {
        if nested {
            ctx.reply.array_len(2);
        }
        ctx.reply.bulk(member);
        ctx.reply.double(*score);
    }
    Ok(())
}

/// `ZMPOP numkeys key [key ...] MIN | MAX [COUNT count]`
pub(super) fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 1)?;
    let mut locked = ctx.lock(keys);
    for key in keys {
        match pop(ctx, &mut locked, key, end, count)? {
            Some(popped) if !popped.is_empty() => {
                let name = if end == End::Max {
                    "ZPOPMAX"
                } else {
                    "ZPOPMIN"
                };
                ctx.propagate_as(crate::argv![name, key, popped.len()]);
                reply_key_and_pairs(ctx.reply, key, &popped);
                return Ok(());
            }
            _ => {}
        }
    }
    ctx.reply.null_array();
    Ok(())
}

/// Parses `numkeys key... MIN|MAX [COUNT count]` starting at `args[numkeys_index]`, with
/// ZMPOP's error texts; BZMPOP passes 2 (after its timeout).
pub fn parse_mpop(
    args: &[Bytes],
    numkeys_index: usize,
) -> Result<(&[Bytes], End, usize), CmdError> {
    let numkeys = parse_i64(&args[numkeys_index])
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let first_key = numkeys_index + 1;
    let where_index = usize::try_from(numkeys)
        .ok()
        .and_then(|n| first_key.checked_add(n))
        .filter(|&i| i < args.len())
        .ok_or(errors::SYNTAX)?;
    let end = if args::is(&args[where_index], "min") {
        End::Min
    } else if args::is(&args[where_index], "max") {
        End::Max
    } else {
        return Err(errors::SYNTAX);
    };
    let mut count = None;
    let mut i = where_index + 1;
    while i < args.len() {
        if args::is(&args[i], "count") && i + 1 < args.len() && count.is_none() {
            let n = parse_i64(&args[i + 1])
                .filter(|&n| n >= 1)
                .ok_or_else(|| CmdError::err("count should be greater than 0"))?;
            count = Some(n as usize);
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok((&args[first_key..where_index], end, count.unwrap_or(1)))
}
