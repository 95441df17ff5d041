//! Member reads and removals (ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCARD, ZREM), ZRANDMEMBER
//! and ZSCAN.

use bytes::Bytes;
use ferrokv_protocol::number::{format_double, format_double_g17};
use ferrokv_store::glob::glob_match;
use ferrokv_store::types::zset::ZSet;
use rand::Rng;

use super::{delete_if_empty, reply_members, zset_of, zset_of_mut};
use crate::cmd::args;
use crate::cmd::keys::parse_scan_cursor;
use crate::cmd::scan_options::{self, ScanFamily};
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::dispatch::arity_error;

/// `ZCARD key`
pub(super) fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let len = match ctx.read(&mut locked, key) {
        None => 0,
        Some(entry) => zset_of(&entry.value)?.len(),
    };
    ctx.reply.int(len as i64);
    Ok(())
}

/// `ZSCORE key member`
pub(super) fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let score = match ctx.read(&mut locked, key) {
        None => None,
        Some(entry) => zset_of(&entry.value)?.score(&args[2]),
    };
    match score {
        Some(score) => ctx.reply.double(score),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// `ZMSCORE key member [member ...]`
pub(super) fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let entry = ctx.read(&mut locked, key);
    let zset = match entry {
        None => None,
        Some(entry) => Some(zset_of(&entry.value)?),
    };
    let members = &args[2..];
    ctx.reply.array_len(members.len());
    for member in members {
        match zset.and_then(|z| z.score(member)) {
            Some(score) => ctx.reply.double(score),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// `ZRANK key member [WITHSCORE]`
pub(super) fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank(ctx, args, false)
}

/// `ZREVRANK key member [WITHSCORE]`
pub(super) fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank(ctx, args, true)
}

fn rank(ctx: &mut Ctx, args: &[Bytes], reverse: bool) -> CmdResult {
    if args.len() > 4 {
        return Err(arity_error(if reverse { "zrevrank" } else { "zrank" }));
    }
    let with_score = match args.get(3) {
        None => false,
        Some(arg) if args::is(arg, "withscore") => true,
        Some(_) => return Err(errors::SYNTAX),
    };
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let found = match ctx.read(&mut locked, key) {
        None => None,
        Some(entry) => {
            let zset = zset_of(&entry.value)?;
            zset.rank(&args[2]).map(|rank| {
                let score = zset.score(&args[2]).unwrap_or(0.0);
                let rank = if reverse { zset.len() - 1 - rank } else { rank };
                (rank, score)
            })
        }
    };
    match (found, with_score) {
        (None, false) => ctx.reply.null(),
        (None, true) => ctx.reply.null_array(),
        (Some((rank, _)), false) => ctx.reply.int(rank as i64),
        (Some((rank, score)), true) => {
            ctx.reply.array_len(2);
            ctx.reply.int(rank as i64);
            ctx.reply.double(score);
        }
    }
    Ok(())
}

/// `ZREM key member [member ...]`
pub(super) fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let removed = match ctx.write(&mut locked, key) {
        None => 0,
        Some(entry) => {
            let zset = zset_of_mut(&mut entry.value)?;
            args[2..]
                .iter()
                .filter(|m| zset.remove(m).is_some())
                .count()
        }
    };
    if removed > 0 {
        delete_if_empty(ctx, &mut locked, key, Some("zrem"));
        ctx.add_dirty(removed as u64);
    }
    ctx.reply.int(removed as i64);
    Ok(())
}

// ---- ZRANDMEMBER ----

/// `ZRANDMEMBER key [count [WITHSCORES]]`
pub(super) fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() >= 3 {
        let count = args::int(&args[2])?;
        if count == i64::MIN {
            return Err(CmdError::err(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        let with_scores = match args.len() {
            3 => false,
            4 if args::is(&args[3], "withscores") => true,
            _ => return Err(errors::SYNTAX),
        };
        if with_scores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return Err(CmdError::err("value is out of range"));
        }
        return random_members(ctx, &args[1], count, with_scores);
    }
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.null();
        return Ok(());
    };
    let zset = zset_of(&entry.value)?;
    let rank = rand::rng().random_range(0..zset.len().max(1));
    match zset.get_by_rank(rank) {
        Some((member, _)) => ctx.reply.bulk(member),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn random_members(ctx: &mut Ctx, key: &[u8], count: i64, with_scores: bool) -> CmdResult {
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    let zset = zset_of(&entry.value)?;
    if count == 0 || zset.is_empty() {
        ctx.reply.array_len(0);
        return Ok(());
    }
    let len = zset.len();
    let mut rng = rand::rng();
    if count < 0 || count == 1 {
        // With repetitions: each pick is independent. Written as it goes, since the count
        // can exceed what fits in memory at once.
        let picks = count.unsigned_abs();
        let resp3 = ctx.reply.is_resp3();
        let elements = if with_scores && !resp3 {
            picks.saturating_mul(2)
        } else {
            picks
        };
        ctx.reply.array_len(elements as usize);
        for _ in 0..picks {
            let Some((member, score)) = zset.get_by_rank(rng.random_range(0..len)) else {
                break;
            };
            if with_scores && resp3 {
                ctx.reply.array_len(2);
            }
            ctx.reply.bulk(member);
            if with_scores {
                ctx.reply.double(score);
            }
        }
        return Ok(());
    }
    let count = count as u64;
    if count >= len as u64 {
        // The whole set.
        reply_members(ctx.reply, zset.range(0, len, true), with_scores);
        return Ok(());
    }
    let ranks = distinct_ranks(&mut rng, len, count as usize);
    let picked: Vec<(&[u8], f64)> = ranks
        .into_iter()
        .filter_map(|r| zset.get_by_rank(r))
        .collect();
    reply_members(ctx.reply, picked.into_iter(), with_scores);
    Ok(())
}

/// `count` distinct ranks below `len` (count < len), in random order: a partial
/// Fisher-Yates shuffle when the sample is a large part of the set, else rejection of
/// repeats.
fn distinct_ranks(rng: &mut impl Rng, len: usize, count: usize) -> Vec<usize> {
    if count.saturating_mul(3) > len {
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..count {
            let j = rng.random_range(i..len);
            all.swap(i, j);
        }
        all.truncate(count);
        all
    } else {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count {
            let r = rng.random_range(0..len);
            if seen.insert(r) {
                picked.push(r);
            }
        }
        picked
    }
}

// ---- ZSCAN ----

/// `ZSCAN key cursor [MATCH pattern] [COUNT count] [NOSCORES]`
///
/// As in Valkey, the cursor is checked first, then the key, then the options. A listpack
/// is returned whole with cursor 0; a skiplist is walked through its member index with
/// SCAN's reverse-binary cursor.
pub(super) fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.array_len(2);
        ctx.reply.bulk(b"0");
        ctx.reply.array_len(0);
        return Ok(());
    };
    let zset = zset_of(&entry.value)?;
    let options = scan_options::parse(&args[3..], ScanFamily::ZSet)?;
    let mut found: Vec<(Vec<u8>, f64)> = Vec::new();
    let next = scan(zset, cursor, options.count, |member, score| {
        if options.pattern.is_none_or(|p| glob_match(p, member, false)) {
            found.push((member.to_vec(), score));
        }
    });
    ctx.reply.array_len(2);
    ctx.reply.bulk(itoa::Buffer::new().format(next).as_bytes());
    let per_member = if options.no_scores { 1 } else { 2 };
    // Valkey prints a skiplist's scores with %.17g here, a listpack's as it stores them.
    let format = if matches!(zset, ZSet::Skiplist(_)) {
        format_double_g17
    } else {
        format_double
    };
    ctx.reply.array_len(found.len() * per_member);
    for (member, score) in &found {
        ctx.reply.bulk(member);
        if !options.no_scores {
            // Scores are bulk strings here, in RESP3 too.
            ctx.reply.bulk(format(*score).as_bytes());
        }
    }
    Ok(())
}

/// Visits buckets until `count` elements were seen, the walk ended, or `count * 10`
/// buckets were visited.
fn scan(zset: &ZSet, mut cursor: u64, count: u64, mut visit: impl FnMut(&[u8], f64)) -> u64 {
    let mut seen = 0u64;
    let mut steps = 0u64;
    loop {
        cursor = zset.scan_step(cursor, |m, s| {
            seen += 1;
            visit(m, s);
        });
        steps += 1;
        if cursor == 0 || seen >= count || steps >= count.saturating_mul(10) {
            return cursor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_ranks_are_distinct_and_uniform() {
        let mut rng = rand::rng();
        let mut hits = [0u32; 10];
        for _ in 0..20_000 {
            for count in [2, 8] {
                let ranks = distinct_ranks(&mut rng, 10, count);
                assert_eq!(ranks.len(), count);
                let unique: std::collections::HashSet<_> = ranks.iter().collect();
                assert_eq!(unique.len(), count);
                if count == 2 {
                    for r in ranks {
                        hits[r] += 1;
                    }
                }
            }
        }
        // 40,000 picks over 10 ranks: each near 4,000.
        for h in hits {
            assert!((3_500..4_500).contains(&h), "{hits:?}");
        }
    }
}
