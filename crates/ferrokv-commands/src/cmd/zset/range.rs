//! Ranges by rank, score and member: ZRANGE and its older forms, ZRANGESTORE, ZCOUNT,
//! ZLEXCOUNT and ZREMRANGEBY*.
//!
//! Every range becomes a span of ranks `[start, end)` in ascending order (score and lex
//! bounds by counting the elements before them, O(log N) in a skiplist), so the commands
//! only differ in what they do with that span.

use bytes::Bytes;
use ferrokv_protocol::number::parse_range_double;
use ferrokv_store::types::zset::ZSet;

use super::{delete_if_empty, reply_members, store_result, zset_of, zset_of_mut};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// A score interval; either end may be exclusive (`(` prefix).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScoreRange {
    min: f64,
    max: f64,
    min_exclusive: bool,
    max_exclusive: bool,
}

impl ScoreRange {
    pub(crate) fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
        let bound = |arg: &[u8]| match arg.split_first() {
            Some((b'(', rest)) => parse_range_double(rest).map(|v| (v, true)),
            _ => parse_range_double(arg).map(|v| (v, false)),
        };
        let not_float = || CmdError::err("min or max is not a float");
        let (min, min_exclusive) = bound(min).ok_or_else(not_float)?;
        let (max, max_exclusive) = bound(max).ok_or_else(not_float)?;
        Ok(ScoreRange {
            min,
            max,
            min_exclusive,
            max_exclusive,
        })
    }

    /// The ranks `[start, end)` of the elements inside the range.
    pub(crate) fn ranks(&self, zset: &ZSet) -> (usize, usize) {
        let start = zset.count_while(|score, _| {
            if self.min_exclusive {
                score <= self.min
            } else {
                score < self.min
            }
        });
        let end = zset.count_while(|score, _| {
            if self.max_exclusive {
                score < self.max
            } else {
                score <= self.max
            }
        });
        (start, end.max(start))
    }
}

/// One end of a lexicographical range.
#[derive(Debug, Clone)]
pub(crate) enum LexBound {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl LexBound {
    fn parse(arg: &Bytes) -> Option<LexBound> {
        match arg.first()? {
            b'-' if arg.len() == 1 => Some(LexBound::Lowest),
            b'+' if arg.len() == 1 => Some(LexBound::Highest),
            b'[' => Some(LexBound::Inclusive(arg.slice(1..))),
            b'(' => Some(LexBound::Exclusive(arg.slice(1..))),
            _ => None,
        }
    }
}

/// A lexicographical range; meaningful when all members have the same score.
#[derive(Debug, Clone)]
pub(crate) struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    pub(crate) fn parse(min: &Bytes, max: &Bytes) -> Result<LexRange, CmdError> {
        match (LexBound::parse(min), LexBound::parse(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(CmdError::err("min or max not valid string range item")),
        }
    }

    pub(crate) fn ranks(&self, zset: &ZSet) -> (usize, usize) {
        let start = zset.count_while(|_, member| match &self.min {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(m) => member < &m[..],
            LexBound::Exclusive(m) => member <= &m[..],
        });
        let end = zset.count_while(|_, member| match &self.max {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(m) => member <= &m[..],
            LexBound::Exclusive(m) => member < &m[..],
        });
        (start, end.max(start))
    }
}

/// Ranks `[start, end)` for the inclusive, possibly negative rank arguments of ZRANGE and
/// ZREMRANGEBYRANK, or `None` when they select nothing.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize + 1))
}

// ---- counting ----

/// `ZCOUNT key min max`
pub(super) fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(&args[2], &args[3])?;
    count_span(ctx, &args[1], |z| range.ranks(z))
}

/// `ZLEXCOUNT key min max`
pub(super) fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(&args[2], &args[3])?;
    count_span(ctx, &args[1], |z| range.ranks(z))
}

fn count_span(ctx: &mut Ctx, key: &[u8], span: impl Fn(&ZSet) -> (usize, usize)) -> CmdResult {
    let mut locked = ctx.lock(&[key]);
    let count = match ctx.read(&mut locked, key) {
        None => 0,
        Some(entry) => {
            let (start, end) = span(zset_of(&entry.value)?);
            end - start
        }
    };
    ctx.reply.int(count as i64);
    Ok(())
}

// ---- ZRANGE and its forms ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// How a form of ZRANGE reads its arguments: which of REV/BYSCORE/BYLEX its name already
/// fixes (those keywords are then syntax errors), and whether it stores.
#[derive(Clone, Copy)]
struct Form {
    by: Option<By>,
    reverse: Option<bool>,
    store: bool,
}

const ZRANGE: Form = Form {
    by: None,
    reverse: None,
    store: false,
};

/// A parsed ZRANGE request.
struct Request {
    by: By,
    reverse: bool,
    with_scores: bool,
    offset: i64,
    /// -1: no limit.
    limit: i64,
    bounds: Bounds,
}

enum Bounds {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Parses `min max [options]` (`args` starts at min) as Valkey does: options first, then
/// the conflicts between them, then the bounds.
fn parse_request(args: &[Bytes], form: Form) -> Result<Request, CmdError> {
    let mut by = form.by;
    let mut reverse = form.reverse;
    let mut with_scores = false;
    let mut offset = 0i64;
    let mut limit = -1i64;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        let left = args.len() - i - 1;
        if !form.store && args::is(arg, "withscores") {
            with_scores = true;
        } else if args::is(arg, "limit") && left >= 2 {
            offset = args::int(&args[i + 1])?;
            limit = args::int(&args[i + 2])?;
            i += 2;
        } else if reverse.is_none() && args::is(arg, "rev") {
            reverse = Some(true);
        } else if by.is_none() && args::is(arg, "bylex") {
            by = Some(By::Lex);
        } else if by.is_none() && args::is(arg, "byscore") {
            by = Some(By::Score);
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    let by = by.unwrap_or(By::Rank);
    let reverse = reverse.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && by == By::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // Reversed score and lex ranges are given as max, min.
    let (min, max) = if reverse && by != By::Rank {
        (&args[1], &args[0])
    } else {
        (&args[0], &args[1])
    };
    let bounds = match by {
        By::Rank => Bounds::Rank(args::int(min)?, args::int(max)?),
        By::Score => Bounds::Score(ScoreRange::parse(min, max)?),
        By::Lex => Bounds::Lex(LexRange::parse(min, max)?),
    };
    Ok(Request {
        by,
        reverse,
        with_scores,
        offset,
        limit,
        bounds,
    })
}

impl Request {
    /// The ranks `[start, end)` to return, in ascending order (the caller walks them
    /// backwards when reversed).
    fn span(&self, zset: &ZSet) -> (usize, usize) {
        let len = zset.len();
        let (start, end) = match &self.bounds {
            Bounds::Rank(start, end) => {
                return match rank_span(*start, *end, len) {
                    None => (0, 0),
                    // Reverse ranks count from the highest score.
                    Some((s, e)) if self.reverse => (len - e, len - s),
                    Some(span) => span,
                };
            }
            Bounds::Score(range) => range.ranks(zset),
            Bounds::Lex(range) => range.ranks(zset),
        };
        debug_assert!(self.by != By::Rank);
        let available = end - start;
        // LIMIT: a negative count means everything after the offset. A negative offset
        // selects nothing in a listpack (Valkey's skip loop runs off the end), but in a
        // skiplist Valkey seeks the offset-th element of the range from its far end.
        if self.offset < 0 {
            return match zset {
                ZSet::Skiplist(_) => self.span_from_far_end(start, available),
                ZSet::Listpack(_) => (0, 0),
            };
        }
        let skip = (self.offset as u64).min(available as u64) as usize;
        let take = if self.limit < 0 {
            available - skip
        } else {
            (self.limit as u64).min((available - skip) as u64) as usize
        };
        if self.reverse {
            (end - skip - take, end - skip)
        } else {
            (start + skip, start + skip + take)
        }
    }
}

impl Request {
    /// The span for a negative LIMIT offset on a skiplist. Valkey looks up the
    /// `offset`-th element of the range (negative: counted back from its last element) and
    /// walks on from there; reversed, it looks up the `-offset - 1`-th, which for a negative
    /// offset counts from the range's first element, and walks down.
    fn span_from_far_end(&self, start: usize, available: usize) -> (usize, usize) {
        let available_i64 = available as i64;
        let take = |left: usize| {
            if self.limit < 0 {
                left
            } else {
                (self.limit as u64).min(left as u64) as usize
            }
        };
        if self.reverse {
            // -offset - 1 wraps for i64::MIN as it does in C, to a position past the end.
            let position = self.offset.wrapping_neg().wrapping_sub(1);
            if position >= available_i64 {
                return (0, 0);
            }
            let top = start + position as usize + 1;
            let count = take(position as usize + 1);
            (top - count, top)
        } else {
            let position = available_i64 + self.offset;
            if position < 0 {
                return (0, 0);
            }
            let first = start + position as usize;
            (first, first + take(available - position as usize))
        }
    }
}

fn range_reply(ctx: &mut Ctx, args: &[Bytes], form: Form) -> CmdResult {
    let request = parse_request(&args[2..], form)?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    let zset = zset_of(&entry.value)?;
    let (start, end) = request.span(zset);
    reply_members(
        ctx.reply,
        zset.range(start, end, request.reverse),
        request.with_scores,
    );
    Ok(())
}

/// `ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub(super) fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, ZRANGE)
}

/// `ZREVRANGE key start stop [WITHSCORES]`
pub(super) fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let form = Form {
        by: Some(By::Rank),
        reverse: Some(true),
        store: false,
    };
    range_reply(ctx, args, form)
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
pub(super) fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, fixed(By::Score, false))
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
pub(super) fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, fixed(By::Score, true))
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
pub(super) fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, fixed(By::Lex, false))
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
pub(super) fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, fixed(By::Lex, true))
}

const fn fixed(by: By, reverse: bool) -> Form {
    Form {
        by: Some(by),
        reverse: Some(reverse),
        store: false,
    }
}

/// `ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]`
pub(super) fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let form = Form {
        store: true,
        ..ZRANGE
    };
    let request = parse_request(&args[3..], form)?;
    let (dst, src) = (&args[1], &args[2]);
    let mut locked = ctx.lock(&[dst, src]);
    let result = match ctx.read(&mut locked, src) {
        None => Vec::new(),
        Some(entry) => {
            let zset = zset_of(&entry.value)?;
            let (start, end) = request.span(zset);
            zset.range(start, end, false)
                .map(|(m, s)| (Box::<[u8]>::from(m), s))
                .collect()
        }
    };
    store_result(ctx, &mut locked, dst, result);
    Ok(())
}

// ---- removal ----

/// `ZREMRANGEBYRANK key start stop`
pub(super) fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (args::int(&args[2])?, args::int(&args[3])?);
    remove_span(ctx, &args[1], |z| {
        rank_span(start, stop, z.len()).unwrap_or((0, 0))
    })
}

/// `ZREMRANGEBYSCORE key min max`
pub(super) fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(&args[2], &args[3])?;
    remove_span(ctx, &args[1], |z| range.ranks(z))
}

/// `ZREMRANGEBYLEX key min max`
pub(super) fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(&args[2], &args[3])?;
    remove_span(ctx, &args[1], |z| range.ranks(z))
}

fn remove_span(ctx: &mut Ctx, key: &[u8], span: impl Fn(&ZSet) -> (usize, usize)) -> CmdResult {
    let mut locked = ctx.lock(&[key]);
    let removed = match ctx.write(&mut locked, key) {
        None => 0,
        Some(entry) => {
            let zset = zset_of_mut(&mut entry.value)?;
            let (start, end) = span(zset);
            zset.remove_ranks(start, end)
        }
    };
    if removed > 0 {
        delete_if_empty(ctx, &mut locked, key, Some(ctx.spec.name));
        ctx.add_dirty(removed as u64);
    }
    ctx.reply.int(removed as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_spans_follow_valkeys_clamping() {
        assert_eq!(rank_span(0, -1, 5), Some((0, 5)));
        assert_eq!(rank_span(-100, 100, 5), Some((0, 5)));
        assert_eq!(rank_span(3, 1, 5), None);
        assert_eq!(rank_span(5, 10, 5), None);
        assert_eq!(rank_span(i64::MIN, -1, 5), Some((0, 5)));
        assert_eq!(rank_span(0, i64::MAX, 5), Some((0, 5)));
        assert_eq!(rank_span(0, -1, 0), None);
    }
}
