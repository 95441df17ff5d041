//! Field TTL commands (Valkey 9.0+): HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT, HTTL, HPTTL,
//! HEXPIRETIME, HPEXPIRETIME, HPERSIST, HGETEX, HSETEX, and HGETDEL (9.1).
//!
//! Argument checks run in Valkey's order, which differs between the commands (measured on
//! valkey-server 9.1.2): HEXPIRE and friends look for the first `FIELDS` after the time, then
//! check the conditions before it, the field count, then the time, all before the key's
//! type; HGETEX and HSETEX check their options and the field count, then the key's type, then
//! the time; the read-only ones want `FIELDS` right after the key.
//!
//! Per-field reply codes: -2 no such field (or no such key), 0 a condition prevented the
//! change, 1 done, 2 deleted because the time is not in the future; -1 no TTL to report or
//! remove.

use crate::cmd::expire::Conditions;
use bytes::Bytes;
use ferrokv_store::NO_EXPIRE;
use ferrokv_store::types::hash::HashValue;

use super::{change_hash, limits, probe_for_write, read_hash, reclaim_expired};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use ferrokv_store::events::class;

fn numfields_error() -> CmdError {
    CmdError::err("numfields should be greater than 0 and match the provided number of fields")
}

fn invalid_time(ctx: &Ctx) -> CmdError {
    CmdError::err(format!(
        "invalid expire time in '{}' command",
        ctx.spec.name
    ))
}

/// The first `FIELDS` at or after `from`.
fn find_fields_token(args: &[Bytes], from: usize) -> Option<usize> {
    (from..args.len()).find(|&i| args::is(&args[i], "fields"))
}

/// The fields after `FIELDS` at `at`: `numfields` must be an integer, positive, and equal to
/// the number of remaining arguments divided by `per_field`.
fn fields_after(
    args: &[Bytes],
    at: usize,
    per_field: usize,
    mismatch: fn() -> CmdError,
) -> Result<&[Bytes], CmdError> {
    let count = args.get(at + 1).ok_or_else(mismatch)?;
    let n = args::int(count)?;
    let rest = &args[at + 2..];
    if n <= 0 || (n as u64).checked_mul(per_field as u64) != Some(rest.len() as u64) {
        return Err(mismatch());
    }
    Ok(rest)
}

/// `FIELDS numfields field...` right after the key, as the read-only commands, HPERSIST and
/// HGETDEL take it.
fn fixed_fields(args: &[Bytes], mismatch: fn() -> CmdError) -> Result<&[Bytes], CmdError> {
    if !args::is(&args[2], "fields") {
        return Err(errors::SYNTAX);
    }
    fields_after(args, 2, 1, mismatch)
}

/// An absolute expiry in ms from `amount` in `unit_ms` after `base_ms`: negative amounts and
/// overflow are invalid; zero is allowed (it deletes).
fn expire_at(ctx: &Ctx, amount: i64, unit_ms: i64, base_ms: i64) -> Result<i64, CmdError> {
    if amount < 0 {
        return Err(invalid_time(ctx));
    }
    amount
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base_ms))
        .ok_or_else(|| invalid_time(ctx))
}

// ---- HEXPIRE family ----

// NX / XX / GT / LT are the EXPIRE family's: `crate::cmd::expire::Conditions`.

/// `HEXPIRE key seconds [NX|XX|GT|LT] FIELDS numfields field...`
pub(super) fn hexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, false)
}

/// `HPEXPIRE key milliseconds [NX|XX|GT|LT] FIELDS numfields field...`
pub(super) fn hpexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, false)
}

/// `HEXPIREAT key unix-time-seconds [NX|XX|GT|LT] FIELDS numfields field...`
pub(super) fn hexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, true)
}

/// `HPEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT] FIELDS numfields field...`
pub(super) fn hpexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, true)
}

fn expire_generic(ctx: &mut Ctx, args: &[Bytes], unit_ms: i64, absolute: bool) -> CmdResult {
    let key = &args[1];
    let at = find_fields_token(args, 3).ok_or_else(numfields_error)?;
    let conditions = Conditions::parse(&args[3..at])?;
    let fields = fields_after(args, at, 1, numfields_error)?;
    let amount = args::int(&args[2])?;
    let base = if absolute { 0 } else { ctx.now_ms };
    let when = expire_at(ctx, amount, unit_ms, base)?;
    let (now_ms, past_deletes) = (ctx.now_ms, ctx.past_expiry_deletes());
    let mut locked = ctx.lock(&[key]);
    let codes = change_hash(
        ctx,
        &mut locked,
        key,
        false,
        |hash| {
            Ok(fields
                .iter()
                .map(|field| expire_field(hash, field, &conditions, when, now_ms, past_deletes))
                .collect::<Vec<i64>>())
        },
        |codes| {
            if codes.contains(&1) {
                ctx.notify(class::HASH, "hexpire", key);
            }
            if codes.contains(&2) {
                ctx.notify(class::HASH, "hexpired", key);
            }
        },
    )?
    .unwrap_or_else(|| vec![-2; fields.len()]);
    let changed = codes.iter().filter(|&&c| c == 1 || c == 2).count();
    count_expired_fields(codes.iter().filter(|&&c| c == 2).count());
    if changed > 0 && ctx.propagating() {
        ctx.propagate_as(expire_effect(args, fields, &codes, when));
    }
    ctx.add_dirty(changed as u64);
    reply_codes(ctx, &codes);
    Ok(())
}

/// What an HEXPIRE-family command propagates, as Valkey: `HDEL` of the fields a past time
/// deleted, else the command as HPEXPIREAT with the absolute time (options, FIELDS and
/// every field named as given).
fn expire_effect(args: &[Bytes], fields: &[Bytes], codes: &[i64], when: i64) -> Vec<Bytes> {
    if codes.contains(&2) {
        return hdel_form(
            &args[1],
            fields
                .iter()
                .zip(codes)
                .filter(|(_, c)| **c == 2)
                .map(|(f, _)| f),
        );
    }
    let mut rewritten = args.to_vec();
    if !args::is(&args[0], "hpexpireat") {
        rewritten[0] = Bytes::from_static(b"HPEXPIREAT");
        rewritten[2] = int_arg(when);
    }
    rewritten
}

/// `HDEL key field...`.
fn hdel_form<'f>(key: &Bytes, fields: impl IntoIterator<Item = &'f Bytes>) -> Vec<Bytes> {
    let mut form = crate::argv!["HDEL", key];
    form.extend(fields.into_iter().cloned());
    form
}

fn int_arg(n: i64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
}

fn expire_field(
    hash: &mut HashValue,
    field: &[u8],
    conditions: &Conditions,
    when: i64,
    now_ms: i64,
    past_deletes: bool,
) -> i64 {
    let Some((_, current)) = hash.get_with_expiry(field, now_ms) else {
        return -2;
    };
    if !conditions.allow(current, when) {
        return 0;
    }
    if past_deletes && when <= now_ms {
        hash.remove(field, now_ms);
        return 2;
    }
    hash.set_expire(field, when, now_ms);
    1
}

fn reply_codes(ctx: &mut Ctx, codes: &[i64]) {
    ctx.reply.array_len(codes.len());
    for &code in codes {
        ctx.reply.int(code);
    }
}

// ---- reading and removing TTLs ----

/// What HTTL and friends report of a field's expiry.
#[derive(Clone, Copy)]
enum TtlForm {
    RemainingSeconds,
    RemainingMs,
    AtSeconds,
    AtMs,
}

/// Milliseconds to seconds, rounded to nearest, computed wide (as TTL and EXPIRETIME do).
fn ms_to_seconds_rounded(ms: i64) -> i64 {
    ((i128::from(ms) + 500) / 1000) as i64
}

fn ttl_generic(ctx: &mut Ctx, args: &[Bytes], form: TtlForm) -> CmdResult {
    let key = &args[1];
    let fields = fixed_fields(args, || errors::SYNTAX)?;
    let now_ms = ctx.now_ms;
    let mut locked = ctx.lock(&[key]);
    let hash = read_hash(ctx, &mut locked, key)?;
    let codes: Vec<i64> = fields
        .iter()
        .map(
            |field| match hash.and_then(|h| h.get_with_expiry(field, now_ms)) {
                None => -2,
                Some((_, NO_EXPIRE)) => -1,
                Some((_, at)) => match form {
                    TtlForm::RemainingSeconds => ms_to_seconds_rounded(at.saturating_sub(now_ms)),
                    TtlForm::RemainingMs => at.saturating_sub(now_ms),
                    TtlForm::AtSeconds => ms_to_seconds_rounded(at),
                    TtlForm::AtMs => at,
                },
            },
        )
        .collect();
    drop(locked);
    reply_codes(ctx, &codes);
    Ok(())
}

/// `HTTL key FIELDS numfields field...`
pub(super) fn httl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, args, TtlForm::RemainingSeconds)
}

/// `HPTTL key FIELDS numfields field...`
pub(super) fn hpttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, args, TtlForm::RemainingMs)
}

/// `HEXPIRETIME key FIELDS numfields field...`
pub(super) fn hexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, args, TtlForm::AtSeconds)
}

/// `HPEXPIRETIME key FIELDS numfields field...`
pub(super) fn hpexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, args, TtlForm::AtMs)
}

/// `HPERSIST key FIELDS numfields field...`
pub(super) fn hpersist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let fields = fixed_fields(args, numfields_error)?;
    let now_ms = ctx.now_ms;
    let mut locked = ctx.lock(&[key]);
    let codes = change_hash(
        ctx,
        &mut locked,
        key,
        false,
        |hash| {
            Ok(fields
                .iter()
                .map(|field| match hash.get_with_expiry(field, now_ms) {
                    None => -2,
                    Some((_, NO_EXPIRE)) => -1,
                    Some(_) => {
                        hash.set_expire(field, NO_EXPIRE, now_ms);
                        1
                    }
                })
                .collect::<Vec<i64>>())
        },
        |codes| {
            if codes.contains(&1) {
                ctx.notify(class::HASH, "hpersist", key);
            }
        },
    )?
    .unwrap_or_else(|| vec![-2; fields.len()]);
    ctx.add_dirty(codes.iter().filter(|&&c| c == 1).count() as u64);
    reply_codes(ctx, &codes);
    Ok(())
}

/// `HGETDEL key FIELDS numfields field...`
pub(super) fn hgetdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let fields = fixed_fields(args, numfields_error)?;
    let now_ms = ctx.now_ms;
    let mut locked = ctx.lock(&[key]);
    let values = change_hash(
        ctx,
        &mut locked,
        key,
        false,
        |hash| {
            Ok(fields
                .iter()
                .map(|field| {
                    let value = hash.get(field, now_ms).map(<[u8]>::to_vec);
                    if value.is_some() {
                        hash.remove(field, now_ms);
                    }
                    value
                })
                .collect::<Vec<Option<Vec<u8>>>>())
        },
        |values: &Vec<Option<Vec<u8>>>| {
            if values.iter().any(Option::is_some) {
                ctx.notify(class::HASH, "hdel", key);
            }
        },
    )?
    .unwrap_or_else(|| vec![None; fields.len()]);
    ctx.add_dirty(values.iter().flatten().count() as u64);
    reply_values(ctx, &values);
    Ok(())
}

fn reply_values(ctx: &mut Ctx, values: &[Option<Vec<u8>>]) {
    ctx.reply.array_len(values.len());
    for value in values {
        match value {
            Some(v) => ctx.reply.bulk(v),
            None => ctx.reply.null(),
        }
    }
}

// ---- HGETEX / HSETEX ----

/// The expiry option of HGETEX / HSETEX, its amount still unparsed (it is checked after
/// the key's type).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpiryKind {
    Ex,
    Px,
    ExAt,
    PxAt,
    Persist,
    KeepTtl,
}

#[derive(Clone, Copy)]
struct ExpiryOption<'a> {
    kind: ExpiryKind,
    amount: Option<&'a [u8]>,
}

impl ExpiryOption<'_> {
    /// The absolute expiry the option asks for: `Some(NO_EXPIRE)` for PERSIST, `None` for
    /// KEEPTTL.
    fn resolve(&self, ctx: &Ctx) -> Result<Option<i64>, CmdError> {
        let (unit, absolute) = match self.kind {
            ExpiryKind::Ex => (1000, false),
            ExpiryKind::Px => (1, false),
            ExpiryKind::ExAt => (1000, true),
            ExpiryKind::PxAt => (1, true),
            ExpiryKind::Persist => return Ok(Some(NO_EXPIRE)),
            ExpiryKind::KeepTtl => return Ok(None),
        };
        let amount = args::int(self.amount.unwrap_or_default())?;
        let base = if absolute { 0 } else { ctx.now_ms };
        expire_at(ctx, amount, unit, base).map(Some)
    }
}

/// Tries to read an expiry option at `args[i]` (the options end at `end`); returns the
/// option and how many arguments it took.
fn expiry_option<'a>(
    args: &'a [Bytes],
    i: usize,
    end: usize,
    keepttl_allowed: bool,
) -> Result<Option<(ExpiryOption<'a>, usize)>, CmdError> {
    let word = args[i].to_ascii_lowercase();
    let kind = match word.as_slice() {
        b"ex" => ExpiryKind::Ex,
        b"px" => ExpiryKind::Px,
        b"exat" => ExpiryKind::ExAt,
        b"pxat" => ExpiryKind::PxAt,
        b"persist" if !keepttl_allowed => ExpiryKind::Persist,
        b"keepttl" if keepttl_allowed => ExpiryKind::KeepTtl,
        _ => return Ok(None),
    };
    if matches!(kind, ExpiryKind::Persist | ExpiryKind::KeepTtl) {
        return Ok(Some((ExpiryOption { kind, amount: None }, 1)));
    }
    if i + 1 >= end {
        return Err(errors::SYNTAX);
    }
    Ok(Some((
        ExpiryOption {
            kind,
            amount: Some(&args[i + 1]),
        },
        2,
    )))
}

/// Records `option`, refusing a second option of another kind.
fn set_once<'a>(
    slot: &mut Option<ExpiryOption<'a>>,
    option: ExpiryOption<'a>,
) -> Result<(), CmdError> {
    if slot.is_some_and(|old| old.kind != option.kind) {
        return Err(errors::SYNTAX);
    }
    *slot = Some(option);
    Ok(())
}

/// `HGETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST] FIELDS numfields field...`
pub(super) fn hgetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let end = find_fields_token(args, 2).ok_or_else(numfields_error)?;
    let mut expiry = None;
    let mut i = 2;
    while i < end {
        let (option, taken) = expiry_option(args, i, end, false)?.ok_or(errors::SYNTAX)?;
        set_once(&mut expiry, option)?;
        i += taken;
    }
    let fields = fields_after(args, end, 1, numfields_error)?;
    let now_ms = ctx.now_ms;
    let mut locked = ctx.lock(&[key]);
    let exists = probe_for_write(ctx, &mut locked, key)?;
    let when = match expiry {
        Some(option) => option.resolve(ctx)?,
        None => None,
    };
    let past_deletes = ctx.past_expiry_deletes();
    let past = |at: i64| at != NO_EXPIRE && at <= now_ms && past_deletes;
    // The fields whose TTL PERSIST removed (only they count as changed).
    let mut persisted: Vec<&Bytes> = Vec::new();
    let values = if exists {
        change_hash(
            ctx,
            &mut locked,
            key,
            false,
            |hash| {
                Ok(fields
                    .iter()
                    .map(|field| {
                        let found = hash.get_with_expiry(field, now_ms);
                        let value = found.map(|(v, _)| v.to_vec());
                        if when == Some(NO_EXPIRE) && found.is_some_and(|(_, at)| at != NO_EXPIRE) {
                            persisted.push(field);
                        }
                        if value.is_some()
                            && let Some(at) = when
                        {
                            if past(at) {
                                hash.remove(field, now_ms);
                            } else {
                                hash.set_expire(field, at, now_ms);
                            }
                        }
                        value
                    })
                    .collect::<Vec<Option<Vec<u8>>>>())
            },
            |values: &Vec<Option<Vec<u8>>>| {
                let Some(at) = when else { return };
                if values.iter().all(Option::is_none) {
                    return;
                }
                let event = if at == NO_EXPIRE {
                    "hpersist"
                } else if past(at) {
                    "hexpired"
                } else {
                    "hexpire"
                };
                ctx.notify(class::HASH, event, key);
            },
        )?
        .unwrap_or_default()
    } else {
        vec![None; fields.len()]
    };
    if let Some(at) = when {
        let found: Vec<&Bytes> = fields
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_some())
            .map(|(f, _)| f)
            .collect();
        let changed = if at == NO_EXPIRE {
            persisted.len()
        } else {
            found.len()
        };
        if past(at) {
            count_expired_fields(found.len());
        }
        if changed > 0 && ctx.propagating() {
            ctx.propagate_as(if at == NO_EXPIRE {
                fields_form("HPERSIST", key, None, &persisted)
            } else if past(at) {
                hdel_form(key, found.iter().copied())
            } else {
                fields_form("HPEXPIREAT", key, Some(at), &found)
            });
        }
        ctx.add_dirty(changed as u64);
    }
    reply_values(ctx, &values);
    Ok(())
}

/// `NAME key [time] FIELDS n field...` (what HGETEX propagates).
fn fields_form(name: &'static str, key: &Bytes, at: Option<i64>, fields: &[&Bytes]) -> Vec<Bytes> {
    let mut form = crate::argv![name, key];
    form.extend(at.map(int_arg));
    form.push(Bytes::from_static(b"FIELDS"));
    form.push(int_arg(fields.len() as i64));
    form.extend(fields.iter().map(|f| (*f).clone()));
    form
}

/// `HSETEX key [NX|XX] [FNX|FXX] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]
/// FIELDS numfields field value...`: replies 1 if the fields were set, 0 if a condition
/// prevented it.
pub(super) fn hsetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let end = find_fields_token(args, 2).ok_or_else(numfields_error)?;
    let (mut key_cond, mut field_cond): (Option<bool>, Option<bool>) = (None, None);
    let mut expiry = None;
    // Where the (last) expiry option starts: the propagated form keeps PXAT and KEEPTTL.
    let mut expiry_index = 0;
    let mut i = 2;
    while i < end {
        let word = args[i].to_ascii_lowercase();
        let (slot, wants_exist) = match word.as_slice() {
            b"nx" => (&mut key_cond, false),
            b"xx" => (&mut key_cond, true),
            b"fnx" => (&mut field_cond, false),
            b"fxx" => (&mut field_cond, true),
            _ => {
                let (option, taken) = expiry_option(args, i, end, true)?.ok_or(errors::SYNTAX)?;
                set_once(&mut expiry, option)?;
                expiry_index = i;
                i += taken;
                continue;
            }
        };
        if slot.is_some_and(|old| old != wants_exist) {
            return Err(errors::SYNTAX);
        }
        *slot = Some(wants_exist);
        i += 1;
    }
    let pairs = fields_after(args, end, 2, numfields_error)?;
    let (now_ms, limits) = (ctx.now_ms, limits(ctx));
    let mut locked = ctx.lock(&[key]);
    let exists = probe_for_write(ctx, &mut locked, key)?;
    // Valkey checks NX/XX before it reads the expiry's value: a failed key condition
    // answers 0 even when the time is invalid.
    if key_cond.is_some_and(|wants_exist| wants_exist != exists) {
        ctx.reply.int(0);
        return Ok(());
    }
    let when = match expiry {
        Some(option) => option.resolve(ctx)?,
        None => Some(NO_EXPIRE),
    };
    let past_deletes = ctx.past_expiry_deletes();
    let past = matches!(when, Some(at) if at != NO_EXPIRE && at <= now_ms && past_deletes);
    let db = ctx.db();
    let notify = |&done: &bool| {
        if !done {
            return;
        }
        match when {
            Some(_) if past => {
                // As Valkey: the fields are written, given their time, and reclaimed.
                ctx.notify(class::HASH, "hset", key);
                ctx.notify(class::HASH, "hexpire", key);
                ctx.notify(class::HASH, "hexpired", key);
            }
            Some(at) if at != NO_EXPIRE => {
                ctx.notify(class::HASH, "hset", key);
                ctx.notify(class::HASH, "hexpire", key);
            }
            _ => ctx.notify(class::HASH, "hset", key),
        }
    };
    let mut deleted: Vec<&Bytes> = Vec::new();
    let mut reclaimed_for_keepttl: Vec<&Bytes> = Vec::new();
    let done = change_hash(
        ctx,
        &mut locked,
        key,
        true,
        |hash| {
            if let Some(wants_exist) = field_cond {
                let all = pairs
                    .chunks_exact(2)
                    .all(|pair| hash.contains(&pair[0], now_ms) == wants_exist);
                if !all {
                    return Ok(false);
                }
            }
            // A time already past deletes the fields without writing them, so (as in Valkey)
            // neither their number nor their size converts the encoding.
            if past {
                for pair in pairs.chunks_exact(2) {
                    if hash.remove(&pair[0], now_ms) {
                        deleted.push(&pair[0]);
                    }
                }
                return Ok(true);
            }
            if pairs.len() / 2 > limits.max_entries {
                hash.convert_to_table();
            }
            let reclaimed = reclaim_expired(hash, pairs.iter().step_by(2), now_ms, db, key);
            if when.is_none() {
                // KEEPTTL must not keep the time of a field that expired here: replicas
                // (whose clocks differ) get its deletion first, as Valkey sends it.
                reclaimed_for_keepttl = reclaimed;
            }
            for pair in pairs.chunks_exact(2) {
                let field = &pair[0];
                hash.set(field, &pair[1], when.is_none(), now_ms, limits);
                match when {
                    Some(at) if at != NO_EXPIRE => {
                        hash.set_expire(field, at, now_ms);
                    }
                    _ => {}
                }
            }
            hash.convert_if_too_many(limits);
            Ok(true)
        },
        notify,
    )?
    .unwrap_or(false);
    if done && past {
        // Valkey counts every field set with a past time as expired, new ones included.
        count_expired_fields(pairs.len() / 2);
    }
    if done && ctx.propagating() {
        if !reclaimed_for_keepttl.is_empty() {
            ctx.propagate_also(hdel_form(key, reclaimed_for_keepttl.iter().copied()));
        }
        if !past {
            ctx.propagate_as(hsetex_form(
                args,
                end,
                expiry.map(|o| (o, when)),
                expiry_index,
            ));
        } else if deleted.is_empty() {
            ctx.propagate_none();
        } else {
            ctx.propagate_as(hdel_form(key, deleted.iter().copied()));
        }
    }
    if done {
        ctx.add_dirty((pairs.len() / 2) as u64);
    }
    ctx.reply.int(done as i64);
    Ok(())
}

/// What HSETEX propagates, as Valkey: the key and field conditions dropped (they held), a
/// relative or second-based time as `PXAT ms`, PXAT and KEEPTTL as given, then `FIELDS`
/// and the pairs as given.
fn hsetex_form(
    args: &[Bytes],
    fields_at: usize,
    expiry: Option<(ExpiryOption<'_>, Option<i64>)>,
    expiry_index: usize,
) -> Vec<Bytes> {
    let mut form = vec![args[0].clone(), args[1].clone()];
    match expiry {
        Some((option, _)) if option.kind == ExpiryKind::KeepTtl => {
            form.push(args[expiry_index].clone());
        }
        Some((option, _)) if option.kind == ExpiryKind::PxAt => {
            form.extend_from_slice(&args[expiry_index..expiry_index + 2]);
        }
        Some((_, Some(at))) => {
            form.push(Bytes::from_static(b"PXAT"));
            form.push(int_arg(at));
        }
        _ => {}
    }
    form.extend_from_slice(&args[fields_at..]);
    form
}

/// Fields a command deleted because their time had come (INFO `expired_fields`): a time
/// already past, or an expired field a write replaced.
pub(super) fn count_expired_fields(n: usize) {
    if n > 0 {
        crate::stats::local().expired_fields.add(n as u64);
    }
}
