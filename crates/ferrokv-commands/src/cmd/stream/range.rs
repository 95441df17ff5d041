//! XRANGE and XREVRANGE.

use bytes::Bytes;

use super::{ids, opt_stream, reply_range};
use crate::cmd::args;
use crate::context::{CmdResult, Ctx, errors};

/// `XRANGE key start end [COUNT count]`
pub(super) fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range(ctx, args, false)
}

/// `XREVRANGE key end start [COUNT count]`
pub(super) fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range(ctx, args, true)
}

fn range(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = ids::interval_start(start_arg)?;
    let end = ids::interval_end(end_arg)?;
    // -1: no COUNT given.
    let mut count: i64 = -1;
    let mut i = 4;
    while i < args.len() {
        if args::is(&args[i], "count") && i + 1 < args.len() {
            count = args::int(&args[i + 1])?.max(0);
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let mut locked = ctx.lock(&[&args[1]]);
    let Some(stream) = opt_stream(ctx.read(&mut locked, &args[1]))? else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    if count == 0 {
        ctx.reply.null_array();
        return Ok(());
    }
    let count = if count < 0 { 0 } else { count as usize };
    reply_range(ctx.reply, stream, start, end, count, rev);
    Ok(())
}
