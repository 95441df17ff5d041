//! SINTER, SINTERCARD, SUNION, SDIFF and their STORE forms.
//!
//! Every key is looked up once, in order, before any work: a key of another type is
//! WRONGTYPE wherever it stands, a missing key is an empty set. The results are built the way
//! Valkey 9.1 builds them, because that decides both the reply order of compact sets and the
//! destination's encoding: SINTER walks the smallest set (the first of equal sizes) and keeps
//! what every other set holds; SUNION and SDIFF add members to a fresh intset, which converts
//! like any set as it grows; SDIFF picks between filtering the first set and removing the
//! others' members from a copy of it by Valkey's cost estimate.
//!
//! The store hands out one entry at a time, so a walk copies the members it keeps from one
//! set before it looks at the next.

use bytes::Bytes;
use ferrokv_store::{Locked, SetLimits, SetValue};

use super::{limits, reply_set, set_of, store_result};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// Looks every key up once (counting hits and misses, expiring, checking the type) and
/// returns each set's size, `None` where the key is missing.
fn check_sets(
    ctx: &Ctx,
    locked: &mut Locked<'_>,
    keys: &[Bytes],
) -> Result<Vec<Option<usize>>, CmdError> {
    keys.iter()
        .map(|key| match ctx.read(locked, key) {
            Some(entry) => Ok(Some(set_of(&entry.value)?.len())),
            None => Ok(None),
        })
        .collect()
}

/// A key already checked by [`check_sets`] (found there as a set).
fn checked<'l>(ctx: &Ctx, locked: &'l mut Locked<'_>, key: &[u8]) -> Option<&'l SetValue> {
    let entry = locked.db(ctx.db(), key).get(key, ctx.now_ms)?;
    set_of(&entry.value).ok()
}

fn members_of(set: &SetValue) -> Vec<Vec<u8>> {
    set.iter().map(|m| m.to_vec()).collect()
}

/// The members common to all `keys`, in the order of the set walked, stopping once `limit`
/// (0: none) are found.
fn intersection(
    ctx: &Ctx,
    locked: &mut Locked<'_>,
    keys: &[Bytes],
    limit: usize,
) -> Result<Vec<Vec<u8>>, CmdError> {
    let sizes = check_sets(ctx, locked, keys)?;
    let Some(sizes) = sizes.into_iter().collect::<Option<Vec<usize>>>() else {
        return Ok(Vec::new());
    };
    let mut order: Vec<usize> = (0..keys.len()).collect();
    // Stable, so the first of equal-sized sets is walked, as Valkey does.
    order.sort_by_key(|&i| sizes[i]);
    let mut common = match checked(ctx, locked, &keys[order[0]]) {
        Some(set) => members_of(set),
        None => return Ok(Vec::new()),
    };
    for &i in &order[1..] {
        if common.is_empty() {
            break;
        }
        let Some(set) = checked(ctx, locked, &keys[i]) else {
            return Ok(Vec::new());
        };
        common.retain(|m| set.contains(m));
    }
    if limit > 0 {
        common.truncate(limit);
    }
    Ok(common)
}

/// `SINTER key [key ...]`
pub(super) fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = &args[1..];
    let mut locked = ctx.lock(keys);
    let common = intersection(ctx, &mut locked, keys, 0)?;
    drop(locked);
    ctx.reply.set_len(common.len());
    for member in &common {
        ctx.reply.bulk(member);
    }
    Ok(())
}

/// `SINTERSTORE destination key [key ...]`
pub(super) fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limits = limits(ctx);
    let mut locked = ctx.lock(&args[1..]);
    let common = intersection(ctx, &mut locked, &args[2..], 0)?;
    let mut result = SetValue::new_intset();
    for member in &common {
        result.add(member, &limits);
    }
    store_result(ctx, &mut locked, &args[1], result);
    Ok(())
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
pub(super) fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    const NUMKEYS: &str = "numkeys should be greater than 0";
    let numkeys = args::int(&args[1])
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| CmdError::err(NUMKEYS))?;
    let first_option = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(2))
        .filter(|&end| end <= args.len())
        .ok_or_else(|| CmdError::err("Number of keys can't be greater than number of args"))?;
    let mut limit = 0;
    let mut i = first_option;
    while i < args.len() {
        if args::is(&args[i], "limit") && i + 1 < args.len() {
            limit = args::int(&args[i + 1])
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let keys = &args[2..first_option];
    let mut locked = ctx.lock(keys);
    let common = intersection(ctx, &mut locked, keys, limit)?;
    drop(locked);
    ctx.reply.int(common.len() as i64);
    Ok(())
}

/// The union of `keys`, added in key order to a fresh intset.
fn union(
    ctx: &Ctx,
    locked: &mut Locked<'_>,
    keys: &[Bytes],
    limits: &SetLimits,
) -> Result<SetValue, CmdError> {
    let sizes = check_sets(ctx, locked, keys)?;
    let mut result = SetValue::new_intset();
    for (key, size) in keys.iter().zip(sizes) {
        if size.is_none() {
            continue;
        }
        if let Some(set) = checked(ctx, locked, key) {
            for member in set.iter() {
                result.add(&member.to_bytes(), limits);
            }
        }
    }
    Ok(result)
}

/// The members of the first of `keys` found in none of the others, by Valkey's choice of
/// algorithm: filter the first set's members (cheap when the first set is small), or copy
/// the first set and remove every other set's members from the copy.
fn difference(
    ctx: &Ctx,
    locked: &mut Locked<'_>,
    keys: &[Bytes],
    limits: &SetLimits,
) -> Result<SetValue, CmdError> {
    let sizes = check_sets(ctx, locked, keys)?;
    let mut result = SetValue::new_intset();
    let Some(first_size) = sizes[0] else {
        return Ok(result);
    };
    let present = sizes.iter().flatten();
    let filter_work = present.clone().count() * first_size / 2;
    let remove_work: usize = present.sum();
    let mut others: Vec<usize> = (1..keys.len()).filter(|&i| sizes[i].is_some()).collect();
    let first = match checked(ctx, locked, &keys[0]) {
        Some(set) => members_of(set),
        None => return Ok(result),
    };
    if filter_work <= remove_work {
        // Largest sets first: they are the likeliest to rule a member out.
        others.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
        let mut kept = first;
        for i in others {
            if kept.is_empty() {
                break;
            }
            if let Some(set) = checked(ctx, locked, &keys[i]) {
                kept.retain(|m| !set.contains(m));
            }
        }
        for member in &kept {
            result.add(member, limits);
        }
    } else {
        for member in &first {
            result.add(member, limits);
        }
        for i in others {
            if result.is_empty() {
                break;
            }
            if let Some(set) = checked(ctx, locked, &keys[i]) {
                for member in set.iter() {
                    result.remove(&member.to_bytes());
                }
            }
        }
    }
    Ok(result)
}

/// `SUNION key [key ...]`
pub(super) fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limits = limits(ctx);
    let mut locked = ctx.lock(&args[1..]);
    let result = union(ctx, &mut locked, &args[1..], &limits)?;
    drop(locked);
    reply_set(ctx.reply, &result);
    Ok(())
}

/// `SUNIONSTORE destination key [key ...]`
pub(super) fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limits = limits(ctx);
    let mut locked = ctx.lock(&args[1..]);
    let result = union(ctx, &mut locked, &args[2..], &limits)?;
    store_result(ctx, &mut locked, &args[1], result);
    Ok(())
}

/// `SDIFF key [key ...]`
pub(super) fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limits = limits(ctx);
    let mut locked = ctx.lock(&args[1..]);
    let result = difference(ctx, &mut locked, &args[1..], &limits)?;
    drop(locked);
    reply_set(ctx.reply, &result);
    Ok(())
}

/// `SDIFFSTORE destination key [key ...]`
pub(super) fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limits = limits(ctx);
    let mut locked = ctx.lock(&args[1..]);
    let result = difference(ctx, &mut locked, &args[2..], &limits)?;
    store_result(ctx, &mut locked, &args[1], result);
    Ok(())
}
