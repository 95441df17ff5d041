//! HRANDFIELD and HSCAN.

use bytes::Bytes;
use ferrokv_store::glob::glob_match;
use ferrokv_store::types::hash::HashValue;
use rand::Rng;
use rand::seq::index;

use super::read_hash;
use crate::cmd::args;
use crate::cmd::keys::parse_scan_cursor;
use crate::cmd::scan_options::{self, ScanFamily};
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// Replies longer than this many elements are refused rather than built: Valkey streams
/// them, and a count near 2^62 would exhaust memory either way.
const MAX_REPLY_ELEMENTS: u64 = 1 << 27;

/// `HRANDFIELD key [count [WITHVALUES]]`
///
/// Valkey's shapes: no count, one field or nil; a negative count, that many picks with
/// repetition; a count at least the hash's size, the whole hash in storage order; a smaller
/// count, that many distinct fields (kept in storage order for the compact encoding, as
/// Valkey's listpack sampling does).
pub(super) fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(count_arg) = args.get(2) else {
        let mut locked = ctx.lock(&[key]);
        let hash = read_hash(ctx, &mut locked, key)?;
        let mut rng = rand::rng();
        match hash.and_then(|h| h.random_field(ctx.now_ms, &mut rng)) {
            Some((field, _)) => ctx.reply.bulk(field),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let count = args::int(count_arg)?;
    let with_values = match &args[3..] {
        [] => false,
        [word] if args::is(word, "withvalues") => true,
        _ => return Err(errors::SYNTAX),
    };
    if count == i64::MIN {
        return Err(CmdError::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if with_values && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(CmdError::err("value is out of range"));
    }
    let mut locked = ctx.lock(&[key]);
    let Some(hash) = read_hash(ctx, &mut locked, key)? else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    let pairs = hash.live_pairs(ctx.now_ms);
    if count == 0 || pairs.is_empty() {
        ctx.reply.array_len(0);
        return Ok(());
    }
    let per_pick = if with_values { 2 } else { 1 };
    if count < 0 && count.unsigned_abs().saturating_mul(per_pick) > MAX_REPLY_ELEMENTS {
        return Err(CmdError::err("value is out of range"));
    }
    let mut rng = rand::rng();
    let picks: Vec<usize> = if count < 0 {
        (0..count.unsigned_abs())
            .map(|_| rng.random_range(0..pairs.len()))
            .collect()
    } else if count as u64 >= pairs.len() as u64 {
        (0..pairs.len()).collect()
    } else {
        let mut picked = index::sample(&mut rng, pairs.len(), count as usize).into_vec();
        if matches!(hash, HashValue::Listpack(_)) {
            picked.sort_unstable();
        }
        picked
    };
    let resp3_pairs = with_values && ctx.reply.is_resp3();
    ctx.reply.array_len(if resp3_pairs {
        picks.len()
    } else {
        picks.len() * per_pick as usize
    });
    for i in picks {
        let (field, value) = pairs[i];
        if resp3_pairs {
            ctx.reply.array_len(2);
        }
        ctx.reply.bulk(field);
        if with_values {
            ctx.reply.bulk(value);
        }
    }
    Ok(())
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]`
///
/// A compact hash is returned whole in one call with cursor 0, as Valkey does. A table is
/// walked bucket by bucket (reverse-binary cursor, see the field table) until COUNT fields
/// were looked at or COUNT*10 buckets visited. As in Valkey, the cursor is checked first,
/// then the key, and the options only for an existing hash.
pub(super) fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let cursor = parse_scan_cursor(&args[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let now_ms = ctx.now_ms;
    let mut locked = ctx.lock(&[key]);
    let Some(hash) = read_hash(ctx, &mut locked, key)? else {
        ctx.reply.array_len(2);
        ctx.reply.bulk(b"0");
        ctx.reply.array_len(0);
        return Ok(());
    };
    let mut options = scan_options::parse(&args[3..], ScanFamily::Hash)?;
    options.pattern = options.pattern.filter(|p| *p != b"*");
    let matches = |field: &[u8]| options.pattern.is_none_or(|p| glob_match(p, field, false));
    let mut found: Vec<(&[u8], &[u8])> = Vec::new();
    let next = match hash {
        HashValue::Listpack(lp) => {
            found.extend(lp.iter().filter(|(f, _)| matches(f)));
            0
        }
        HashValue::Table(table) => {
            let mut cursor = cursor;
            let mut seen = 0u64;
            let mut steps = 0u64;
            let max_steps = options.count.saturating_mul(10);
            loop {
                cursor = table.scan_step(cursor, |f| {
                    seen += 1;
                    if !f.is_expired(now_ms) && matches(f.field) {
                        found.push((f.field, f.value));
                    }
                });
                steps += 1;
                if cursor == 0 || seen >= options.count || steps >= max_steps {
                    break cursor;
                }
            }
        }
    };
    ctx.reply.array_len(2);
    ctx.reply.bulk(itoa::Buffer::new().format(next).as_bytes());
    let per = if options.no_values { 1 } else { 2 };
    ctx.reply.array_len(found.len() * per);
    for (field, value) in found {
        ctx.reply.bulk(field);
        if !options.no_values {
            ctx.reply.bulk(value);
        }
    }
    Ok(())
}
