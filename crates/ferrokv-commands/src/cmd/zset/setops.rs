//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
//!
//! Valkey's arithmetic is kept where it shows in scores: a weighted score that is NaN
//! (infinity times zero) counts as 0, a SUM that becomes NaN (inf + -inf) is 0, sources are
//! combined smallest first (a stable sort by size), and each member's score accumulates in
//! that source order.

use std::collections::HashMap;

use bytes::Bytes;
use ferrokv_protocol::number::parse_double;
use ferrokv_store::types::set::{Member as SetMember, SetValue};
use ferrokv_store::types::skiplist::compare;
use ferrokv_store::types::zset::{Pair, ZSet};
use ferrokv_store::{Entry, Locked, Value};

use super::{reply_members, store_result, zset_of};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn combine(self, acc: f64, value: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let sum = acc + value;
                if sum.is_nan() { 0.0 } else { sum }
            }
            Aggregate::Min => acc.min(value),
            Aggregate::Max => acc.max(value),
        }
    }
}

/// What the command is: which operation, storing or not, or only counting.
#[derive(Clone, Copy)]
struct Mode {
    op: Op,
    store: bool,
    card_only: bool,
}

struct Options {
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: u64,
}

/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub(super) fn zunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Op::Union, false)
}

/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub(super) fn zinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Op::Inter, false)
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
pub(super) fn zdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Op::Diff, false)
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
pub(super) fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Op::Union, true)
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
pub(super) fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Op::Inter, true)
}

/// `ZDIFFSTORE destination numkeys key [key ...]`
pub(super) fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Op::Diff, true)
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
pub(super) fn zintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mode = Mode {
        op: Op::Inter,
        store: false,
        card_only: true,
    };
    run(ctx, args, 1, mode)
}

fn generic(ctx: &mut Ctx, args: &[Bytes], op: Op, store: bool) -> CmdResult {
    let mode = Mode {
        op,
        store,
        card_only: false,
    };
    run(ctx, args, if store { 2 } else { 1 }, mode)
}

fn run(ctx: &mut Ctx, args: &[Bytes], numkeys_index: usize, mode: Mode) -> CmdResult {
    let count = args::int(&args[numkeys_index])?;
    if count < 1 {
        return Err(CmdError::err(format!(
            "at least 1 input key is needed for '{}' command",
            ctx.spec.name
        )));
    }
    let first = numkeys_index + 1;
    let available = (args.len() - first) as i64;
    if count > available {
        return Err(errors::SYNTAX);
    }
    let keys = &args[first..first + count as usize];
    let rest = &args[first + count as usize..];
    let destination = mode.store.then(|| &args[1]);

    let mut lock_keys: Vec<&Bytes> = keys.iter().collect();
    lock_keys.extend(destination);
    let mut locked = ctx.lock(&lock_keys);
    // Types are checked while the keys are read, before the options are parsed.
    let sources = read_sources(ctx, &mut locked, keys)?;
    let options = parse_options(rest, keys.len(), mode)?;

    if mode.card_only {
        let n = intersection_size(&sources, options.limit);
        ctx.reply.int(n as i64);
        return Ok(());
    }
    let result = combine(&sources, mode.op, &options);
    drop(sources);
    match destination {
        Some(dst) => store_result(ctx, &mut locked, dst, result),
        None => reply_members(
            ctx.reply,
            result.iter().map(|(m, s)| (&**m, *s)),
            options.with_scores,
        ),
    }
    Ok(())
}

/// The input sets, cloned out of the keyspace: a missing key reads as an empty set.
fn read_sources(ctx: &Ctx, locked: &mut Locked, keys: &[Bytes]) -> Result<Vec<ZSet>, CmdError> {
    let mut sources = Vec::with_capacity(keys.len());
    for key in keys {
        let zset = match ctx.read(locked, key) {
            None => ZSet::default(),
            Some(Entry {
                value: Value::Set(set),
                ..
            }) => scored_set(set),
            Some(entry) => zset_of(&entry.value)?.clone(),
        };
        sources.push(zset);
    }
    Ok(sources)
}

/// A plain set as these commands see it: every member with score 1, in (score, member) order.
fn scored_set(set: &SetValue) -> ZSet {
    let mut pairs: Vec<Pair> = set
        .iter()
        .map(|member| {
            let bytes: Box<[u8]> = match member {
                SetMember::Int(n) => itoa::Buffer::new().format(n).as_bytes().into(),
                SetMember::Bytes(b) => b.into(),
            };
            (bytes, 1.0)
        })
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    ZSet::listpack_of(&pairs)
}

fn parse_options(rest: &[Bytes], sets: usize, mode: Mode) -> Result<Options, CmdError> {
    let mut options = Options {
        weights: vec![1.0; sets],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    let scored = mode.op != Op::Diff && !mode.card_only;
    let mut i = 0;
    while i < rest.len() {
        let remaining = rest.len() - i;
        let arg = &rest[i];
        if scored && remaining > sets && args::is(arg, "weights") {
            for (j, weight) in rest[i + 1..=i + sets].iter().enumerate() {
                options.weights[j] = parse_double(weight)
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
            }
            i += 1 + sets;
        } else if scored && remaining >= 2 && args::is(arg, "aggregate") {
            let which = &rest[i + 1];
            options.aggregate = if args::is(which, "sum") {
                Aggregate::Sum
            } else if args::is(which, "min") {
                Aggregate::Min
            } else if args::is(which, "max") {
                Aggregate::Max
            } else {
                return Err(errors::SYNTAX);
            };
            i += 2;
        } else if !mode.store && !mode.card_only && args::is(arg, "withscores") {
            options.with_scores = true;
            i += 1;
        } else if mode.card_only && remaining >= 2 && args::is(arg, "limit") {
            let limit = args::int(&rest[i + 1])
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            options.limit = limit;
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok(options)
}

/// A source's score scaled by its weight; NaN (infinity times zero) counts as 0.
fn weighted(score: f64, weight: f64) -> f64 {
    let value = score * weight;
    if value.is_nan() { 0.0 } else { value }
}

/// Source indexes, smallest set first (ties keep their order).
fn by_size(sources: &[ZSet]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].len());
    order
}

/// The result, sorted by score then member.
fn combine(sources: &[ZSet], op: Op, options: &Options) -> Vec<(Box<[u8]>, f64)> {
    let mut result: Vec<(Box<[u8]>, f64)> = match op {
        Op::Union => {
            let mut acc: HashMap<&[u8], f64> = HashMap::new();
            let mut order: Vec<&[u8]> = Vec::new();
            for i in by_size(sources) {
                let weight = options.weights[i];
                for (member, score) in sources[i].iter() {
                    let value = weighted(score, weight);
                    match acc.get_mut(member) {
                        Some(total) => *total = options.aggregate.combine(*total, value),
                        None => {
                            acc.insert(member, value);
                            order.push(member);
                        }
                    }
                }
            }
            order.into_iter().map(|m| (Box::from(m), acc[m])).collect()
        }
        Op::Inter => {
            let order = by_size(sources);
            let Some((&smallest, others)) = order.split_first() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            'members: for (member, score) in sources[smallest].iter() {
                let mut total = weighted(score, options.weights[smallest]);
                for &j in others {
                    let Some(other) = sources[j].score(member) else {
                        continue 'members;
                    };
                    // Unlike the first set's, these weighted scores are not cleared of NaN
                    // (inf * 0) in Valkey: a NaN makes the SUM NaN, which becomes 0.
                    total = options.aggregate.combine(total, other * options.weights[j]);
                }
                out.push((Box::from(member), total));
            }
            out
        }
        Op::Diff => {
            let Some((first, others)) = sources.split_first() else {
                return Vec::new();
            };
            first
                .iter()
                .filter(|(member, _)| others.iter().all(|o| o.score(member).is_none()))
                .map(|(member, score)| (Box::from(member), score))
                .collect()
        }
    };
    result.sort_by(|a, b| compare(a.1, &a.0, b.1, &b.0));
    result
}

/// ZINTERCARD: the size of the intersection, counting stops at `limit` when not 0.
fn intersection_size(sources: &[ZSet], limit: u64) -> u64 {
    let order = by_size(sources);
    let Some((&smallest, others)) = order.split_first() else {
        return 0;
    };
    let mut count = 0u64;
    for (member, _) in sources[smallest].iter() {
        if others.iter().all(|&j| sources[j].score(member).is_some()) {
            count += 1;
            if limit != 0 && count >= limit {
                break;
            }
        }
    }
    count
}
