//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP: run at once when a key has elements, park
//! otherwise; and the operations a parked client runs when another command serves it.

use bytes::Bytes;

use super::{Keys, keys, parse_mpop, reply_mpop, serve_blocked};
use crate::blocking::{self, BlockedOp, ServeCx};
use crate::context::{CmdResult, Ctx};
use crate::stats;

/// `BLPOP|BRPOP key [key ...] timeout`
pub(super) fn blocking_pop(ctx: &mut Ctx, args: &[Bytes], front: bool) -> CmdResult {
    let deadline = blocking::parse_timeout(&args[args.len() - 1], ctx.now_ms)?;
    let watched = &args[1..args.len() - 1];
    let mut locked = ctx.lock(watched);
    let mut keys = keys(ctx, &mut locked);
    for key in watched {
        if let Some(popped) = keys.pop(key, front, 1)? {
            ctx.add_dirty(popped.len() as u64);
            ctx.propagate_as(crate::argv![pop_name(front), key]);
            reply_pair(ctx.reply, key, &popped);
            return Ok(());
        }
    }
    if ctx.client.deny_blocking {
        ctx.reply.null_array();
        return Ok(());
    }
    let op = PopOp { front, count: None };
    blocking::block(ctx, watched.to_vec(), deadline, Box::new(op));
    drop(locked);
    Ok(())
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
pub(super) fn blocking_mpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Valkey checks every other argument before the timeout here (unlike BLPOP).
    let (watched, front, count) = parse_mpop(args, 2)?;
    let deadline = blocking::parse_timeout(&args[1], ctx.now_ms)?;
    let mut locked = ctx.lock(&watched);
    let mut keys = keys(ctx, &mut locked);
    for key in &watched {
        if let Some(popped) = keys.pop(key, front, count)? {
            ctx.add_dirty(popped.len() as u64);
            ctx.propagate_as(crate::argv![pop_name(front), key, popped.len()]);
            reply_mpop(ctx.reply, key, &popped);
            return Ok(());
        }
    }
    if ctx.client.deny_blocking {
        ctx.reply.null_array();
        return Ok(());
    }
    let op = PopOp {
        front,
        count: Some(count),
    };
    blocking::block(ctx, watched, deadline, Box::new(op));
    drop(locked);
    Ok(())
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout` and BRPOPLPUSH.
pub(super) fn blocking_move(
    ctx: &mut Ctx,
    src: &Bytes,
    dst: &Bytes,
    from_front: bool,
    to_front: bool,
    timeout: &[u8],
) -> CmdResult {
    let deadline = blocking::parse_timeout(timeout, ctx.now_ms)?;
    let mut locked = ctx.lock(&[src, dst]);
    let mut keys = keys(ctx, &mut locked);
    let rpoplpush = ctx.spec.name == "brpoplpush";
    if let Some(value) = keys.move_one(src, dst, from_front, to_front)? {
        ctx.add_dirty(1);
        ctx.propagate_as(move_argv(rpoplpush, src, dst, from_front, to_front));
        blocking::signal_ready(ctx, dst);
        serve_blocked(ctx, &mut locked);
        ctx.reply.bulk(&value);
        return Ok(());
    }
    if ctx.client.deny_blocking {
        // Valkey answers a null bulk here, not the null array of a timeout.
        ctx.reply.null();
        return Ok(());
    }
    let op = MoveOp {
        rpoplpush,
        dst: [dst.clone()],
        from_front,
        to_front,
    };
    blocking::block(ctx, vec![src.clone()], deadline, Box::new(op));
    drop(locked);
    Ok(())
}

pub(super) fn pop_name(front: bool) -> &'static str {
    if front { "LPOP" } else { "RPOP" }
}

fn side(front: bool) -> &'static str {
    if front { "left" } else { "right" }
}

/// What a served or immediate BLMOVE / BRPOPLPUSH propagates, as Valkey.
fn move_argv(
    rpoplpush: bool,
    src: &Bytes,
    dst: &Bytes,
    from_front: bool,
    to_front: bool,
) -> Vec<Bytes> {
    if rpoplpush {
        crate::argv!["RPOPLPUSH", src, dst]
    } else {
        crate::argv!["LMOVE", src, dst, side(from_front), side(to_front)]
    }
}

/// `[key, element]`: BLPOP's reply.
fn reply_pair(reply: &mut ferrokv_protocol::Reply, key: &[u8], popped: &[Vec<u8>]) {
    reply.array_len(2);
    reply.bulk(key);
    reply.bulk(popped.first().map_or(&[][..], |v| v));
}

fn serve_keys<'l, 'a>(cx: &'l mut ServeCx<'_, 'a>) -> Keys<'l, 'a> {
    Keys {
        limits: ferrokv_store::ListLimits::new(
            cx.config.list_max_listpack_size,
            cx.config.list_compress_depth,
        ),
        db: cx.db,
        now_ms: cx.now_ms,
        access: cx.access(),
        locked: &mut *cx.locked,
    }
}

/// A parked BLPOP/BRPOP (`count: None`) or BLMPOP.
struct PopOp {
    front: bool,
    count: Option<usize>,
}

impl BlockedOp for PopOp {
    fn serve(&self, cx: &mut ServeCx<'_, '_>, key: &Bytes) -> bool {
        let mut keys = serve_keys(cx);
        let Ok(Some(popped)) = keys.pop(key, self.front, self.count.unwrap_or(1)) else {
            return false;
        };
        cx.add_dirty(popped.len() as u64);
        cx.propagate(match self.count {
            None => crate::argv![pop_name(self.front), key],
            Some(_) => crate::argv![pop_name(self.front), key, popped.len()],
        });
        match self.count {
            None => reply_pair(&mut cx.reply, key, &popped),
            Some(_) => reply_mpop(&mut cx.reply, key, &popped),
        }
        true
    }
}

/// A parked BLMOVE/BRPOPLPUSH.
struct MoveOp {
    rpoplpush: bool,
    dst: [Bytes; 1],
    from_front: bool,
    to_front: bool,
}

impl BlockedOp for MoveOp {
    fn extra_keys(&self) -> &[Bytes] {
        &self.dst
    }

    fn serve(&self, cx: &mut ServeCx<'_, '_>, key: &Bytes) -> bool {
        let dst = &self.dst[0];
        let mut keys = serve_keys(cx);
        if !matches!(keys.has_elements(key), Ok(true)) {
            return false;
        }
        match keys.move_one(key, dst, self.from_front, self.to_front) {
            Ok(Some(value)) => {
                cx.add_dirty(1);
                cx.propagate(move_argv(
                    self.rpoplpush,
                    key,
                    dst,
                    self.from_front,
                    self.to_front,
                ));
                cx.signal_ready(dst);
                cx.reply.bulk(&value);
            }
            Ok(None) => return false,
            // The source has an element, so this is the destination's type: the client is
            // answered with the error, as when Valkey re-runs its command.
            Err(e) => {
                stats::local().count_error(&e.0);
                cx.reply.error(&e.0);
            }
        }
        true
    }
}
