//! ZADD and ZINCRBY (ZADD with INCR and one pair).

use bytes::Bytes;
use ferrokv_protocol::number::parse_double;
use ferrokv_store::Value;
use ferrokv_store::types::zset::ZSet;

use super::{limits, zset_of_mut};
use crate::context::{CmdError, CmdResult, Ctx, errors};

#[derive(Default)]
struct Flags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// `ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]`
pub(crate) fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut flags = Flags::default();
    let mut first = 2;
    while let Some(arg) = args.get(first) {
        let flag = match arg.to_ascii_lowercase().as_slice() {
            b"nx" => &mut flags.nx,
            b"xx" => &mut flags.xx,
            b"gt" => &mut flags.gt,
            b"lt" => &mut flags.lt,
            b"ch" => &mut flags.ch,
            b"incr" => &mut flags.incr,
            _ => break,
        };
        *flag = true;
        first += 1;
    }
    generic(ctx, &args[1], &args[first..], flags)
}

/// `ZINCRBY key increment member`
pub(super) fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let flags = Flags {
        incr: true,
        ..Flags::default()
    };
    generic(ctx, &args[1], &args[2..], flags)
}

/// What happened to one pair.
enum Outcome {
    Added,
    Updated,
    /// The member exists and keeps its score (the new one equals it, or GT/LT refused it).
    Kept,
    /// NX on an existing member, or XX on an absent one.
    Skipped,
}

fn generic(ctx: &mut Ctx, key: &[u8], pairs: &[Bytes], flags: Flags) -> CmdResult {
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(errors::SYNTAX);
    }
    if flags.nx && flags.xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    // At most one of GT, LT and NX.
    if [flags.gt, flags.lt, flags.nx]
        .iter()
        .filter(|&&f| f)
        .count()
        > 1
    {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    let count = pairs.len() / 2;
    if flags.incr && count > 1 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let mut scores = Vec::with_capacity(count);
    for pair in pairs.chunks_exact(2) {
        scores.push(parse_double(&pair[0]).ok_or(errors::NOT_FLOAT)?);
    }
    let longest = pairs.chunks_exact(2).map(|p| p[1].len()).max().unwrap_or(0);
    let limits = limits(ctx);

    let db = ctx.db();
    let mut locked = ctx.lock(&[key]);
    let zset = match ctx.write(&mut locked, key) {
        Some(entry) => {
            let zset = zset_of_mut(&mut entry.value)?;
            zset.maybe_convert(count, longest, limits);
            zset
        }
        None if flags.xx => {
            reply_counts(ctx, &flags, None, 0, 0);
            return Ok(());
        }
        None => {
            let entry = ctx.new_entry(Value::ZSet(ZSet::with_hint(count, longest, limits)));
            locked.db(db, key).insert(key, entry);
            let entry = ctx
                .write(&mut locked, key)
                .ok_or_else(|| CmdError::err("internal error: new key vanished"))?;
            zset_of_mut(&mut entry.value)?
        }
    };

    let (mut added, mut updated) = (0usize, 0usize);
    let mut last_score = None;
    let mut failure = None;
    for (pair, &score) in pairs.chunks_exact(2).zip(&scores) {
        let member = &pair[1];
        match apply(zset, member, score, &flags, limits) {
            Ok((outcome, new_score)) => {
                match outcome {
                    Outcome::Added => added += 1,
                    Outcome::Updated => updated += 1,
                    Outcome::Kept | Outcome::Skipped => {}
                }
                if !matches!(outcome, Outcome::Skipped) {
                    last_score = Some(new_score);
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Only a key this command created can be empty here, when nothing was added to it.
    let event = if added + updated == 0 {
        None
    } else if flags.incr {
        Some("zincr")
    } else {
        Some("zadd")
    };
    super::delete_if_empty(ctx, &mut locked, key, event);
    ctx.add_dirty((added + updated) as u64);
    if added > 0 {
        super::serve_blocked(ctx, &mut locked, key);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    reply_counts(ctx, &flags, last_score, added, updated);
    Ok(())
}

fn reply_counts(ctx: &mut Ctx, flags: &Flags, score: Option<f64>, added: usize, updated: usize) {
    if flags.incr {
        match score {
            Some(score) => ctx.reply.double(score),
            None => ctx.reply.null(),
        }
    } else if flags.ch {
        ctx.reply.int((added + updated) as i64);
    } else {
        ctx.reply.int(added as i64);
    }
}

/// Applies one score-member pair; returns what happened and the member's score after it.
fn apply(
    zset: &mut ZSet,
    member: &[u8],
    score: f64,
    flags: &Flags,
    limits: ferrokv_store::types::zset::ZSetLimits,
) -> Result<(Outcome, f64), CmdError> {
    match zset.score(member) {
        Some(current) => {
            if flags.nx {
                return Ok((Outcome::Skipped, current));
            }
            let new = if flags.incr {
                let sum = current + score;
                if sum.is_nan() {
                    return Err(CmdError::err("resulting score is not a number (NaN)"));
                }
                sum
            } else {
                score
            };
            if (flags.lt && new >= current) || (flags.gt && new <= current) {
                return Ok((Outcome::Skipped, current));
            }
            if new == current {
                // Equal but maybe of the other sign (0 and -0): the stored score stays, the
                // reply shows the computed one, as in Valkey.
                return Ok((Outcome::Kept, new));
            }
            zset.insert(member, new, limits);
            Ok((Outcome::Updated, new))
        }
        None if flags.xx => Ok((Outcome::Skipped, score)),
        None => {
            zset.insert(member, score, limits);
            Ok((Outcome::Added, score))
        }
    }
}
