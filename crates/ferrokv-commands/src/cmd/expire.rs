//! Expiry commands: setting (EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT), reading (TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME) and removing (PERSIST) a key's time to live.

use bytes::Bytes;
use ferrokv_store::NO_EXPIRE;

use crate::cmd::args;
use crate::cmd::keys::lookup_no_touch;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};
use crate::stats;

const SET_KEY: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::UPDATE)];
const READ_KEY: &[KeySpec] = &[KeySpec::single(1, kf::RO | kf::ACCESS)];

const fn setter(name: &'static str, since: &'static str, summary: &'static str) -> CommandSpec {
    CommandSpec::new(name, -3, "generic")
        .flags(flag::WRITE | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(SET_KEY)
        .doc(since, summary, "O(1)")
}

const fn reader(name: &'static str, since: &'static str, summary: &'static str) -> CommandSpec {
    CommandSpec::new(name, 2, "generic")
        .flags(flag::READONLY | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(READ_KEY)
        .doc(since, summary, "O(1)")
}

pub const COMMANDS: &[CommandSpec] = &[
    setter("expire", "1.0.0", "Gives a key a time to live in seconds.").handler(expire),
    setter(
        "pexpire",
        "2.6.0",
        "Gives a key a time to live in milliseconds.",
    )
    .handler(pexpire),
    setter(
        "expireat",
        "1.2.0",
        "Makes a key expire at a Unix time in seconds.",
    )
    .handler(expireat),
    setter(
        "pexpireat",
        "2.6.0",
        "Makes a key expire at a Unix time in milliseconds.",
    )
    .handler(pexpireat),
    reader(
        "ttl",
        "1.0.0",
        "Reads a key's remaining time to live in seconds.",
    )
    .tips(&["nondeterministic_output"])
    .handler(ttl),
    reader(
        "pttl",
        "2.6.0",
        "Reads a key's remaining time to live in milliseconds.",
    )
    .tips(&["nondeterministic_output"])
    .handler(pttl),
    reader(
        "expiretime",
        "7.0.0",
        "Reads the Unix time in seconds at which a key expires.",
    )
    .handler(expiretime),
    reader(
        "pexpiretime",
        "7.0.0",
        "Reads the Unix time in milliseconds at which a key expires.",
    )
    .handler(pexpiretime),
    CommandSpec::new("persist", 2, "generic")
        .flags(flag::WRITE | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(SET_KEY)
        .doc("2.2.0", "Removes a key's time to live.", "O(1)")
        .handler(persist),
];

/// The NX/XX/GT/LT conditions of the EXPIRE family (HEXPIRE's fields use them too).
#[derive(Default)]
pub(crate) struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Conditions {
    pub(crate) fn parse(options: &[Bytes]) -> Result<Conditions, CmdError> {
        let mut c = Conditions::default();
        for option in options {
            let flag = match option.to_ascii_lowercase().as_slice() {
                b"nx" => &mut c.nx,
                b"xx" => &mut c.xx,
                b"gt" => &mut c.gt,
                b"lt" => &mut c.lt,
                _ => {
                    return Err(CmdError::err(format!(
                        "Unsupported option {}",
                        String::from_utf8_lossy(option)
                    )));
                }
            };
            *flag = true;
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a key whose expiry is `current` (or [`NO_EXPIRE`]) may get `new`. A key
    /// without a TTL counts as expiring never: later than any time.
    pub(crate) fn allow(&self, current: i64, new: i64) -> bool {
        let persistent = current == NO_EXPIRE;
        !((self.nx && !persistent)
            || (self.xx && persistent)
            || (self.gt && (persistent || new <= current))
            || (self.lt && !persistent && new >= current))
    }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`
fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, ctx.now_ms, 1000)
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`
fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, ctx.now_ms, 1)
}

/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`
fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, 1000)
}

/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`
fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, 1)
}

/// Sets the expiry of `args[1]` to `base_ms + args[2] * unit_ms`. A time already past deletes
/// the key (replicated as a DEL, counted as an expired key, as Valkey does).
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], base_ms: i64, unit_ms: i64) -> CmdResult {
    let key = &args[1];
    let conditions = Conditions::parse(&args[3..])?;
    let amount = args::int(&args[2])?;
    let invalid = || {
        CmdError::err(format!(
            "invalid expire time in '{}' command",
            ctx.spec.name
        ))
    };
    let when = amount
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base_ms))
        .ok_or_else(invalid)?;
    let db = ctx.db();
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    if !conditions.allow(entry.expire_at, when) {
        ctx.reply.int(0);
        return Ok(());
    }
    if when <= ctx.now_ms && ctx.past_expiry_deletes() {
        let removed = locked.db(db, key).remove(key);
        ctx.notify(ferrokv_store::events::class::EXPIRED, "expired", key);
        ctx.propagate_as(crate::argv![expired_delete_name(ctx), key]);
        ctx.add_dirty(1);
        drop(locked);
        drop(removed);
        stats::local().expired_keys.add(1);
    } else {
        locked.db(db, key).set_expire(key, when);
        ctx.notify(ferrokv_store::events::class::GENERIC, "expire", key);
        if ctx.spec.name != "pexpireat" && ctx.propagating() {
            // Relative and second-based forms go out as PEXPIREAT (conditions kept).
            let mut rewritten = crate::argv!["PEXPIREAT", key, when];
            rewritten.extend(args[3..].iter().cloned());
            ctx.propagate_as(rewritten);
        }
        ctx.add_dirty(1);
    }
    ctx.reply.int(1);
    Ok(())
}

/// How a key deleted because its new expiry is already past propagates (Valkey follows
/// `lazyfree-lazy-expire`).
pub(crate) fn expired_delete_name(ctx: &Ctx) -> &'static str {
    if ctx.client.config.lazyfree_lazy_expire {
        "UNLINK"
    } else {
        "DEL"
    }
}

/// The expiry of `args[1]` (no access-time update): `Err(-2)` for a missing key,
/// `Err(-1)` for a key without a TTL, the absolute time in milliseconds otherwise.
fn expiry_of(ctx: &Ctx, args: &[Bytes]) -> Result<i64, i64> {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let entry = lookup_no_touch(ctx, &mut locked, ctx.db(), key).ok_or(-2)?;
    if entry.has_expire() {
        Ok(entry.expire_at)
    } else {
        Err(-1)
    }
}

/// Milliseconds to seconds, rounded to nearest (computed wide: a time near `i64::MAX` must
/// not overflow when rounded).
fn ms_to_seconds_rounded(ms: i64) -> i64 {
    ((i128::from(ms) + 500) / 1000) as i64
}

/// `TTL key`
fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = expiry_of(ctx, args)
        .map(|at| ms_to_seconds_rounded(at.saturating_sub(ctx.now_ms).max(0)))
        .unwrap_or_else(|code| code);
    ctx.reply.int(n);
    Ok(())
}

/// `PTTL key`
fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = expiry_of(ctx, args)
        .map(|at| at.saturating_sub(ctx.now_ms).max(0))
        .unwrap_or_else(|code| code);
    ctx.reply.int(n);
    Ok(())
}

/// `EXPIRETIME key`
fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = expiry_of(ctx, args)
        .map(ms_to_seconds_rounded)
        .unwrap_or_else(|code| code);
    ctx.reply.int(n);
    Ok(())
}

/// `PEXPIRETIME key`
fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = expiry_of(ctx, args).unwrap_or_else(|code| code);
    ctx.reply.int(n);
    Ok(())
}

/// `PERSIST key`
fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let db = ctx.db();
    let mut locked = ctx.lock(&[key]);
    let had_ttl = ctx.write(&mut locked, key).is_some_and(|e| e.has_expire());
    if had_ttl {
        locked.db(db, key).set_expire(key, NO_EXPIRE);
        ctx.notify(ferrokv_store::events::class::GENERIC, "persist", key);
        ctx.add_dirty(1);
    }
    ctx.reply.int(had_ttl as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Conditions;
    use ferrokv_store::NO_EXPIRE;

    fn with(nx: bool, xx: bool, gt: bool, lt: bool) -> Conditions {
        Conditions { nx, xx, gt, lt }
    }

    #[test]
    fn conditions_treat_no_ttl_as_infinite() {
        let none = with(false, false, false, false);
        assert!(none.allow(NO_EXPIRE, 5) && none.allow(10, 5));
        let nx = with(true, false, false, false);
        assert!(nx.allow(NO_EXPIRE, 5) && !nx.allow(10, 5));
        let xx = with(false, true, false, false);
        assert!(!xx.allow(NO_EXPIRE, 5) && xx.allow(10, 5));
        let gt = with(false, false, true, false);
        assert!(!gt.allow(NO_EXPIRE, 5) && gt.allow(10, 11) && !gt.allow(10, 10));
        let lt = with(false, false, false, true);
        assert!(lt.allow(NO_EXPIRE, 5) && lt.allow(10, 9) && !lt.allow(10, 10));
    }
}
