//! BZPOPMIN, BZPOPMAX and BZMPOP: pop at once when a key has members, park otherwise (see
//! `crate::blocking`); and the pop a parked client runs when a writer serves it.

use bytes::Bytes;
use ferrokv_store::Value;
use ferrokv_store::types::zset::Pair;

use super::pop::{End, parse_mpop, pop, reply_key_and_pairs, reply_key_member_score};
use crate::blocking::{self, BlockedOp, ServeCx};
use crate::context::{CmdResult, Ctx};

/// `BZPOPMIN|BZPOPMAX key [key ...] timeout`
pub(super) fn bzpop(ctx: &mut Ctx, args: &[Bytes], end: End) -> CmdResult {
    // The timeout is checked before any key is looked at (a bad timeout beats WRONGTYPE).
    let deadline = blocking::parse_timeout(&args[args.len() - 1], ctx.now_ms)?;
    let watched = &args[1..args.len() - 1];
    let op = PopOp { end, count: None };
    pop_or_park(ctx, watched, deadline, op)
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
pub(super) fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Valkey checks every other argument before the timeout here (unlike BZPOPMIN).
    let (watched, end, count) = parse_mpop(args, 2)?;
    let deadline = blocking::parse_timeout(&args[1], ctx.now_ms)?;
    let op = PopOp {
        end,
        count: Some(count),
    };
    pop_or_park(ctx, watched, deadline, op)
}

/// Pops from the first non-empty key of `watched` (WRONGTYPE stops the scan at the key
/// that holds another type), or parks the client on all of them.
fn pop_or_park(ctx: &mut Ctx, watched: &[Bytes], deadline: Option<i64>, op: PopOp) -> CmdResult {
    let mut locked = ctx.lock(watched);
    for key in watched {
        let popped = pop(ctx, &mut locked, key, op.end, op.count.unwrap_or(1))?;
        if let Some(popped) = popped.filter(|p| !p.is_empty()) {
            ctx.propagate_as(op.argv(key, popped.len()));
            op.reply(ctx.reply, key, &popped);
            return Ok(());
        }
    }
    if ctx.client.deny_blocking {
        // Inside MULTI or a script: answer as a timeout would, at once.
        ctx.reply.null_array();
        return Ok(());
    }
    blocking::block(ctx, watched.to_vec(), deadline, Box::new(op));
    drop(locked);
    Ok(())
}

/// A parked BZPOPMIN/BZPOPMAX (`count: None`) or BZMPOP.
struct PopOp {
    end: End,
    count: Option<usize>,
}

impl PopOp {
    /// The non-blocking form Valkey propagates: ZPOPMIN/ZPOPMAX key [popped count].
    fn argv(&self, key: &Bytes, popped: usize) -> Vec<Bytes> {
        let name = if self.end == End::Max {
            "ZPOPMAX"
        } else {
            "ZPOPMIN"
        };
        match self.count {
            None => crate::argv![name, key],
            Some(_) => crate::argv![name, key, popped],
        }
    }

    fn reply(&self, reply: &mut ferrokv_protocol::Reply, key: &[u8], popped: &[Pair]) {
        match (self.count, popped.first()) {
            (None, Some(pair)) => reply_key_member_score(reply, key, pair),
            _ => reply_key_and_pairs(reply, key, popped),
        }
    }
}

impl BlockedOp for PopOp {
    fn serve(&self, cx: &mut ServeCx<'_, '_>, key: &Bytes) -> bool {
        let Some(entry) = cx.write(key) else {
            return false;
        };
        // Another type (a list pushed under the key) leaves the client waiting.
        let Value::ZSet(zset) = &mut entry.value else {
            return false;
        };
        let wanted = self.count.unwrap_or(1);
        let mut popped = Vec::with_capacity(wanted.min(zset.len()));
        while popped.len() < wanted {
            match zset.pop(self.end == End::Max) {
                Some(pair) => popped.push(pair),
                None => break,
            }
        }
        if popped.is_empty() {
            return false;
        }
        let emptied = zset.is_empty();
        if emptied {
            cx.locked.db(cx.db, key).delete(key);
        }
        let event = if self.end == End::Max {
            "zpopmax"
        } else {
            "zpopmin"
        };
        ferrokv_store::events::notify(ferrokv_store::events::class::ZSET, event, cx.db, key);
        if emptied {
            ferrokv_store::events::notify(ferrokv_store::events::class::GENERIC, "del", cx.db, key);
        }
        cx.add_dirty(popped.len() as u64);
        cx.propagate(self.argv(key, popped.len()));
        self.reply(&mut cx.reply, key, &popped);
        true
    }
}
