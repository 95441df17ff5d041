//! SRANDMEMBER and SPOP: Valkey's cases by count.
//!
//! SRANDMEMBER with a count: 0 answers an empty array; a positive count of at least the
//! set's size answers the whole set in its encoding's order; a smaller positive count answers
//! that many distinct members (a listpack's in listpack order); a negative count answers
//! |count| members drawn independently, repeats allowed.
//!
//! SPOP with a count: at least the set's size pops everything (in the encoding's order) and
//! deletes the key; otherwise see `SetValue::pop_random_distinct`.

use bytes::Bytes;
use ferrokv_protocol::number::parse_i64;

use super::{limits, reply_member, reply_set, set_of, set_of_mut};
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// `SRANDMEMBER key [count]`
pub(super) fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let count = match args.get(2) {
        Some(arg) => {
            let n = parse_i64(arg).ok_or(errors::NOT_INTEGER)?;
            if n == i64::MIN {
                return Err(CmdError::err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            Some(n)
        }
        None => None,
    };
    let mut locked = ctx.lock(&args[1..2]);
    let Some(entry) = ctx.read(&mut locked, &args[1]) else {
        drop(locked);
        match count {
            Some(_) => ctx.reply.array_len(0),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let set = set_of(&entry.value)?;
    let mut rng = rand::rng();
    let Some(count) = count else {
        match set.random(&mut rng) {
            Some(member) => reply_member(ctx.reply, member),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let wanted = count.unsigned_abs();
    if count < 0 {
        // Independent draws. The count is the client's, so the reply is written as it is
        // drawn rather than collected first.
        ctx.reply
            .array_len(usize::try_from(wanted).unwrap_or(usize::MAX));
        for _ in 0..wanted {
            if let Some(member) = set.random(&mut rng) {
                reply_member(ctx.reply, member);
            }
        }
        return Ok(());
    }
    let len = set.len();
    if wanted >= len as u64 {
        ctx.reply.array_len(len);
        for member in set.iter() {
            reply_member(ctx.reply, member);
        }
        return Ok(());
    }
    let picked = set.random_distinct(wanted as usize, &mut rng);
    ctx.reply.array_len(picked.len());
    for member in picked {
        reply_member(ctx.reply, member);
    }
    Ok(())
}

/// `SPOP key [count]`
pub(super) fn spop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let count = match args.get(2) {
        Some(arg) => Some(
            parse_i64(arg)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?,
        ),
        None => None,
    };
    let key = &args[1];
    let limits = limits(ctx);
    let db = ctx.db();
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        drop(locked);
        match count {
            Some(_) => ctx.reply.set_len(0),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let set = set_of_mut(&mut entry.value)?;
    let mut rng = rand::rng();
    // Replicas and the AOF get the members taken (SREM), or the key's deletion when the
    // whole set went, never the random choice itself.
    let mut effect: Option<Vec<Bytes>> = None;
    let propagating = ctx.propagating();
    let popped = match count {
        None => {
            let member = set.pop_random(&mut rng);
            match &member {
                Some(m) => {
                    ctx.reply.bulk(m);
                    if propagating {
                        effect = Some(crate::argv!["SREM", key, &m[..]]);
                    }
                }
                None => ctx.reply.null(),
            }
            u64::from(member.is_some())
        }
        Some(0) => {
            ctx.reply.set_len(0);
            0
        }
        Some(count) if count >= set.len() as u64 => {
            reply_set(ctx.reply, set);
            let all = set.len() as u64;
            *set = ferrokv_store::SetValue::new_intset();
            let name = if ctx.client.config.lazyfree_lazy_server_del {
                "UNLINK"
            } else {
                "DEL"
            };
            effect = Some(crate::argv![name, key]);
            all
        }
        Some(count) => {
            let popped = set.pop_random_distinct(count as usize, &limits, &mut rng);
            ctx.reply.set_len(popped.len());
            for member in &popped {
                ctx.reply.bulk(member);
            }
            if propagating {
                let mut srem = crate::argv!["SREM", key];
                srem.extend(popped.iter().map(|m| Bytes::copy_from_slice(m)));
                effect = Some(srem);
            }
            popped.len() as u64
        }
    };
    let emptied = set.is_empty();
    if emptied {
        locked.db(db, key).delete(key);
    }
    if let Some(effect) = effect {
        ctx.propagate_as(effect);
    }
    // Counted while the key's shard is still locked: the effect reaches the stream in order.
    ctx.add_dirty(popped);
    drop(locked);
    if popped > 0 {
        ctx.notify(ferrokv_store::events::class::SET, "spop", key);
        if emptied {
            ctx.notify(ferrokv_store::events::class::GENERIC, "del", key);
        }
    }
    Ok(())
}
