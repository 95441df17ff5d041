//! Hash commands.
//!
//! The value type is `ferrokv_store::types::hash::HashValue`: `listpack` while small, then
//! `hashtable`, converted at Valkey 9.1's thresholds (`hash-max-listpack-entries`,
//! `hash-max-listpack-value`, and the first field TTL). Field TTLs (HEXPIRE ...) are in
//! `hash/fields.rs`, HRANDFIELD and HSCAN in `hash/random.rs`.
//!
//! Expired fields are absent to every command at once; like Valkey 9.1, they stay stored
//! (HLEN counts them) until the active expiry reclaims them (`Db::active_expire_items_step`,
//! run by the expire cycle), which also deletes a hash left without fields.

mod fields;
mod random;

use bytes::Bytes;
use ferrokv_longdouble::LongDouble;
use ferrokv_protocol::number::parse_i64;
use ferrokv_store::events::{self, class};
use ferrokv_store::types::hash::{HashLimits, HashValue};
use ferrokv_store::{Locked, Value};

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::dispatch::arity_error;
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};

const W: u64 = flag::WRITE;
const RO: u64 = flag::READONLY;
const OOM: u64 = flag::DENYOOM;
const FAST: u64 = flag::FAST;
const HASH: u64 = cat::HASH;

const RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kf::RO | kf::ACCESS)];
const RO_ONLY: &[KeySpec] = &[KeySpec::single(1, kf::RO)];
const RW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::UPDATE)];
const RW_INSERT: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::INSERT)];
const RW_ACCESS_UPDATE: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE)];
const RW_ACCESS_DELETE: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE)];
const RW_DELETE: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::DELETE)];

const N_FIELDS: &str = "O(N) where N is the number of specified fields.";
const WHOLE_HASH: &str = "O(N) where N is the size of the hash.";

const fn hash_cmd(
    name: &'static str,
    arity: i32,
    flags: u64,
    keys: &'static [KeySpec],
) -> CommandSpec {
    CommandSpec::new(name, arity, "hash")
        .flags(flags)
        .categories(HASH)
        .keys(keys)
}

pub const COMMANDS: &[CommandSpec] = &[
    hash_cmd("hset", -4, W | OOM | FAST, RW_UPDATE)
        .doc(
            "2.0.0",
            "Sets fields of a hash, creating the hash if needed; replies how many fields are new.",
            "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
        )
        .handler(hset),
    hash_cmd("hsetnx", 4, W | OOM | FAST, RW_INSERT)
        .doc("2.0.0", "Sets a hash field only if it does not exist yet.", "O(1)")
        .handler(hsetnx),
    hash_cmd("hget", 3, RO | FAST, RO_ACCESS)
        .doc("2.0.0", "Returns the value of one hash field.", "O(1)")
        .handler(hget),
    hash_cmd("hmget", -3, RO | FAST, RO_ACCESS)
        .doc(
            "2.0.0",
            "Returns the values of several hash fields.",
            "O(N) where N is the number of fields being requested.",
        )
        .handler(hmget),
    hash_cmd("hmset", -4, W | OOM | FAST, RW_UPDATE)
        .doc(
            "2.0.0",
            "Sets fields of a hash (older form of HSET, replying OK).",
            "O(N) where N is the number of fields being set.",
        )
        .handler(hmset),
    hash_cmd("hdel", -3, W | FAST, RW_DELETE)
        .doc(
            "2.0.0",
            "Removes fields from a hash; the hash goes when its last field does.",
            "O(N) where N is the number of fields to be removed.",
        )
        .handler(hdel),
    hash_cmd("hlen", 2, RO | FAST, RO_ONLY)
        .doc("2.0.0", "Returns the number of fields of a hash.", "O(1)")
        .handler(hlen),
    hash_cmd("hstrlen", 3, RO | FAST, RO_ONLY)
        .doc("3.2.0", "Returns the length of a hash field's value.", "O(1)")
        .handler(hstrlen),
    hash_cmd("hexists", 3, RO | FAST, RO_ONLY)
        .doc("2.0.0", "Tells whether a hash field exists.", "O(1)")
        .handler(hexists),
    hash_cmd("hkeys", 2, RO, RO_ACCESS)
        .tips(&["nondeterministic_output_order"])
        .doc("2.0.0", "Returns every field name of a hash.", WHOLE_HASH)
        .handler(hkeys),
    hash_cmd("hvals", 2, RO, RO_ACCESS)
        .tips(&["nondeterministic_output_order"])
        .doc("2.0.0", "Returns every value of a hash.", WHOLE_HASH)
        .handler(hvals),
    hash_cmd("hgetall", 2, RO, RO_ACCESS)
        .tips(&["nondeterministic_output_order"])
        .doc("2.0.0", "Returns every field and value of a hash.", WHOLE_HASH)
        .handler(hgetall),
    hash_cmd("hincrby", 4, W | OOM | FAST, RW_ACCESS_UPDATE)
        .doc(
            "2.0.0",
            "Adds an integer to a hash field's integer value (absent: 0).",
            "O(1)",
        )
        .handler(hincrby),
    hash_cmd("hincrbyfloat", 4, W | OOM | FAST, RW_ACCESS_UPDATE)
        .doc(
            "2.6.0",
            "Adds a floating point number to a hash field's numeric value (absent: 0).",
            "O(1)",
        )
        .handler(hincrbyfloat),
    hash_cmd("hrandfield", -2, RO, RO_ACCESS)
        .tips(&["nondeterministic_output"])
        .doc(
            "6.2.0",
            "Returns random fields of a hash, optionally with their values.",
            "O(N) where N is the number of fields returned",
        )
        .handler(random::hrandfield),
    hash_cmd("hscan", -3, RO, RO_ACCESS)
        .tips(&["nondeterministic_output"])
        .doc(
            "2.8.0",
            "Iterates over the fields and values of a hash with a cursor.",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        )
        .handler(random::hscan),
    hash_cmd("hexpire", -6, W | FAST, RW_UPDATE)
        .doc("9.0.0", "Gives hash fields a time to live in seconds.", N_FIELDS)
        .handler(fields::hexpire),
    hash_cmd("hpexpire", -6, W | FAST, RW_UPDATE)
        .doc("9.0.0", "Gives hash fields a time to live in milliseconds.", N_FIELDS)
        .handler(fields::hpexpire),
    hash_cmd("hexpireat", -6, W | FAST, RW_UPDATE)
        .doc("9.0.0", "Makes hash fields expire at a Unix time in seconds.", N_FIELDS)
        .handler(fields::hexpireat),
    hash_cmd("hpexpireat", -6, W | FAST, RW_UPDATE)
        .doc("9.0.0", "Makes hash fields expire at a Unix time in milliseconds.", N_FIELDS)
        .handler(fields::hpexpireat),
    hash_cmd("httl", -5, RO | FAST, RO_ACCESS)
        .doc("9.0.0", "Reads the remaining time to live of hash fields in seconds.", N_FIELDS)
        .handler(fields::httl),
    hash_cmd("hpttl", -5, RO | FAST, RO_ACCESS)
        .doc("9.0.0", "Reads the remaining time to live of hash fields in milliseconds.", N_FIELDS)
        .handler(fields::hpttl),
    hash_cmd("hexpiretime", -5, RO | FAST, RO_ACCESS)
        .doc("9.0.0", "Reads the Unix time in seconds at which hash fields expire.", N_FIELDS)
        .handler(fields::hexpiretime),
    hash_cmd("hpexpiretime", -5, RO | FAST, RO_ACCESS)
        .doc("9.0.0", "Reads the Unix time in milliseconds at which hash fields expire.", N_FIELDS)
        .handler(fields::hpexpiretime),
    hash_cmd("hpersist", -5, W | FAST, RW_UPDATE)
        .doc("9.0.0", "Removes the time to live of hash fields.", N_FIELDS)
        .handler(fields::hpersist),
    hash_cmd("hgetex", -5, W | FAST, RW_ACCESS_UPDATE)
        .doc("9.0.0", "Returns hash field values and optionally changes their time to live.", N_FIELDS)
        .handler(fields::hgetex),
    hash_cmd("hsetex", -6, W | OOM | FAST, RW_INSERT)
        .doc("9.0.0", "Sets hash fields with conditions and an optional time to live.", N_FIELDS)
        .handler(fields::hsetex),
    hash_cmd("hgetdel", -5, W | FAST, RW_ACCESS_DELETE)
        .doc(
            "9.1.0",
            "Returns hash field values and deletes the fields.",
            "O(N) where N is the number of fields to be retrieved and deleted.",
        )
        .handler(fields::hgetdel),
];

// ---- helpers shared by the hash commands ----

/// The hash held by a value, or WRONGTYPE.
pub(crate) fn hash_of(value: &Value) -> Result<&HashValue, CmdError> {
    match value {
        Value::Hash(h) => Ok(h),
        _ => Err(errors::WRONGTYPE),
    }
}

fn hash_of_mut(value: &mut Value) -> Result<&mut HashValue, CmdError> {
    match value {
        Value::Hash(h) => Ok(h),
        _ => Err(errors::WRONGTYPE),
    }
}

/// The compact-encoding thresholds from the client's configuration.
fn limits(ctx: &Ctx) -> HashLimits {
    let config = &ctx.client.config;
    HashLimits {
        max_entries: usize::try_from(config.hash_max_listpack_entries).unwrap_or(usize::MAX),
        max_value: usize::try_from(config.hash_max_listpack_value).unwrap_or(usize::MAX),
    }
}

/// Looks the hash at `key` up for reading: `None` if absent, WRONGTYPE if not a hash.
fn read_hash<'l>(
    ctx: &Ctx,
    locked: &'l mut Locked<'_>,
    key: &[u8],
) -> Result<Option<&'l HashValue>, CmdError> {
    match ctx.read(locked, key) {
        None => Ok(None),
        Some(entry) => hash_of(&entry.value).map(Some),
    }
}

/// Whether the hash at `key` exists, for write commands (WRONGTYPE if not a hash).
fn probe_for_write(ctx: &Ctx, locked: &mut Locked<'_>, key: &[u8]) -> Result<bool, CmdError> {
    match ctx.write(locked, key) {
        None => Ok(false),
        Some(entry) => hash_of(&entry.value).map(|_| true),
    }
}

/// Runs `change` on the hash at `key`, creating an empty one first if `create` and the key
/// is absent (`Ok(None)` if absent and not created), then `notify` with its result (the
/// command's keyspace notifications). A hash left without fields is deleted (`del`).
fn change_hash<R>(
    ctx: &Ctx,
    locked: &mut Locked<'_>,
    key: &[u8],
    create: bool,
    change: impl FnOnce(&mut HashValue) -> Result<R, CmdError>,
    notify: impl FnOnce(&R),
) -> Result<Option<R>, CmdError> {
    let db = ctx.db();
    if ctx.write(locked, key).is_none() {
        if !create {
            return Ok(None);
        }
        let entry = ctx.new_entry(Value::Hash(HashValue::default()));
        locked.db(db, key).insert(key, entry);
    }
    let Some(entry) = ctx.write(locked, key) else {
        return Ok(None);
    };
    let hash = hash_of_mut(&mut entry.value)?;
    let result = change(hash);
    let emptied = hash.is_empty();
    if let Ok(r) = &result {
        notify(r);
    }
    if emptied {
        locked.db(db, key).delete(key);
        ctx.notify(class::GENERIC, "del", key);
    }
    result.map(Some)
}

/// Valkey reclaims an expired field a write is about to overwrite (`hexpired`, counted in
/// `expired_fields`) first. A replica replaces it silently: it never expires fields itself
/// (the primary had reclaimed it before the write it sends). Returns the fields reclaimed,
/// each once.
fn reclaim_expired<'f>(
    hash: &HashValue,
    fields: impl IntoIterator<Item = &'f Bytes>,
    now_ms: i64,
    db: usize,
    key: &[u8],
) -> Vec<&'f Bytes> {
    if ferrokv_store::replica_view::is_replica() {
        return Vec::new();
    }
    let mut expired: Vec<&Bytes> = fields
        .into_iter()
        .filter(|f| hash.holds_expired(f, now_ms))
        .collect();
    if !expired.is_empty() {
        // A field named twice is replaced once.
        expired.sort_unstable();
        expired.dedup();
        events::notify(class::HASH, "hexpired", db, key);
        fields::count_expired_fields(expired.len());
    }
    expired
}

/// What HSETNX, HINCRBY and HINCRBYFLOAT propagate in a hash with fields that have a TTL,
/// as Valkey: the field's new value as `HSETEX key PXAT ms FIELDS 1 field value` when the
/// field has a TTL, else as `HSET key field value` (None: the hash had no such fields
/// before the command; an expired field it replaced counts as one).
fn volatile_hash_form(
    propagating: bool,
    volatile_before: bool,
    hash: &HashValue,
    key: &Bytes,
    field: &Bytes,
    now_ms: i64,
) -> Option<Vec<Bytes>> {
    if !propagating || !volatile_before {
        return None;
    }
    let (value, at) = hash.get_with_expiry(field, now_ms)?;
    let value = Bytes::copy_from_slice(value);
    Some(if at == ferrokv_store::NO_EXPIRE {
        crate::argv!["HSET", key, field, value]
    } else {
        let at = Bytes::copy_from_slice(itoa::Buffer::new().format(at).as_bytes());
        crate::argv!["HSETEX", key, "PXAT", at, "FIELDS", "1", field, value]
    })
}

/// Sets field/value pairs as HSET does, converting the encoding at the thresholds; returns
/// how many fields are new.
fn set_pairs(hash: &mut HashValue, pairs: &[Bytes], now_ms: i64, limits: HashLimits) -> i64 {
    // Like Valkey, more pairs in one command than the compact form allows converts first,
    // even if some of them name the same field.
    if pairs.len() / 2 > limits.max_entries {
        hash.convert_to_table();
    }
    let mut created = 0;
    for pair in pairs.chunks_exact(2) {
        created += hash.set(&pair[0], &pair[1], false, now_ms, limits) as i64;
    }
    hash.convert_if_too_many(limits);
    created
}

// ---- commands ----

/// `HSET key field value [field value ...]`
fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let created = hset_generic(ctx, args)?;
    ctx.reply.int(created);
    Ok(())
}

/// `HMSET key field value [field value ...]`
fn hmset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    hset_generic(ctx, args)?;
    ctx.reply.ok();
    Ok(())
}

fn hset_generic(ctx: &Ctx, args: &[Bytes]) -> Result<i64, CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(arity_error(ctx.spec.name));
    }
    let key = &args[1];
    let (now_ms, limits) = (ctx.now_ms, limits(ctx));
    let db = ctx.db();
    let mut locked = ctx.lock(&[key]);
    let created = change_hash(
        ctx,
        &mut locked,
        key,
        true,
        |hash| {
            reclaim_expired(hash, args[2..].iter().step_by(2), now_ms, db, key);
            Ok(set_pairs(hash, &args[2..], now_ms, limits))
        },
        |_| ctx.notify(class::HASH, "hset", key),
    )?
    .unwrap_or(0);
    ctx.add_dirty(((args.len() - 2) / 2) as u64);
    Ok(created)
}

/// `HSETNX key field value`
fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, field) = (&args[1], &args[2]);
    let (now_ms, limits) = (ctx.now_ms, limits(ctx));
    let db = ctx.db();
    let (propagating, mut form): (bool, Option<Vec<Bytes>>) = (ctx.propagating(), None);
    let mut locked = ctx.lock(&[key]);
    let created = change_hash(
        ctx,
        &mut locked,
        key,
        true,
        |hash| {
            if hash.contains(field, now_ms) {
                return Ok(false);
            }
            let volatile_before = hash.volatile_len() > 0;
            reclaim_expired(hash, [field], now_ms, db, key);
            hash.set(field, &args[3], false, now_ms, limits);
            hash.convert_if_too_many(limits);
            form = volatile_hash_form(propagating, volatile_before, hash, key, field, now_ms);
            Ok(true)
        },
        |&created| {
            if created {
                ctx.notify(class::HASH, "hset", key)
            }
        },
    )?
    .unwrap_or(false);
    if created {
        if let Some(form) = form {
            ctx.propagate_as(form);
        }
        ctx.add_dirty(1);
    }
    ctx.reply.int(created as i64);
    Ok(())
}

/// `HGET key field`
fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let hash = read_hash(ctx, &mut locked, key)?;
    match hash.and_then(|h| h.get(&args[2], ctx.now_ms)) {
        Some(value) => ctx.reply.bulk(value),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// `HMGET key field [field ...]`
fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let hash = read_hash(ctx, &mut locked, key)?;
    let fields = &args[2..];
    ctx.reply.array_len(fields.len());
    for field in fields {
        match hash.and_then(|h| h.get(field, ctx.now_ms)) {
            Some(value) => ctx.reply.bulk(value),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// `HDEL key field [field ...]`
fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let now_ms = ctx.now_ms;
    let mut locked = ctx.lock(&[key]);
    let removed = change_hash(
        ctx,
        &mut locked,
        key,
        false,
        |hash| {
            Ok(args[2..]
                .iter()
                .filter(|field| hash.remove(field, now_ms))
                .count())
        },
        |&removed| {
            if removed > 0 {
                ctx.notify(class::HASH, "hdel", key)
            }
        },
    )?
    .unwrap_or(0);
    ctx.add_dirty(removed as u64);
    ctx.reply.int(removed as i64);
    Ok(())
}

/// `HLEN key`: stored fields, counting expired ones the active expiry has not reclaimed
/// yet, as Valkey does.
fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let len = read_hash(ctx, &mut locked, key)?.map_or(0, HashValue::len);
    ctx.reply.int(len as i64);
    Ok(())
}

/// `HSTRLEN key field`
fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let hash = read_hash(ctx, &mut locked, key)?;
    let len = hash
        .and_then(|h| h.get(&args[2], ctx.now_ms))
        .map_or(0, <[u8]>::len);
    ctx.reply.int(len as i64);
    Ok(())
}

/// `HEXISTS key field`
fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let hash = read_hash(ctx, &mut locked, key)?;
    let found = hash.is_some_and(|h| h.contains(&args[2], ctx.now_ms));
    ctx.reply.int(found as i64);
    Ok(())
}

/// What HKEYS, HVALS and HGETALL return of each pair.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Fields,
    Values,
    Both,
}

fn reply_all(ctx: &mut Ctx, args: &[Bytes], parts: Parts) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let hash = read_hash(ctx, &mut locked, key)?;
    let pairs = hash.map(|h| h.live_pairs(ctx.now_ms)).unwrap_or_default();
    if parts == Parts::Both {
        ctx.reply.map_len(pairs.len());
    } else {
        ctx.reply.array_len(pairs.len());
    }
    for (field, value) in pairs {
        if parts != Parts::Values {
            ctx.reply.bulk(field);
        }
        if parts != Parts::Fields {
            ctx.reply.bulk(value);
        }
    }
    Ok(())
}

/// `HKEYS key`
fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply_all(ctx, args, Parts::Fields)
}

/// `HVALS key`
fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply_all(ctx, args, Parts::Values)
}

/// `HGETALL key`
fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply_all(ctx, args, Parts::Both)
}

/// `HINCRBY key field increment`: the field keeps its TTL.
fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, field) = (&args[1], &args[2]);
    let delta = args::int(&args[3])?;
    let (now_ms, limits) = (ctx.now_ms, limits(ctx));
    let db = ctx.db();
    let (propagating, mut form): (bool, Option<Vec<Bytes>>) = (ctx.propagating(), None);
    let mut locked = ctx.lock(&[key]);
    let notify = |_: &_| ctx.notify(class::HASH, "hincrby", key);
    let result = change_hash(
        ctx,
        &mut locked,
        key,
        true,
        |hash| {
            let volatile_before = hash.volatile_len() > 0;
            reclaim_expired(hash, [field], now_ms, db, key);
            let current = match hash.get(field, now_ms) {
                Some(text) => {
                    parse_i64(text).ok_or_else(|| CmdError::err("hash value is not an integer"))?
                }
                None => 0,
            };
            let new = current.checked_add(delta).ok_or(errors::OVERFLOW)?;
            let text = itoa::Buffer::new().format(new).as_bytes().to_vec();
            hash.set(field, &text, true, now_ms, limits);
            hash.convert_if_too_many(limits);
            form = volatile_hash_form(propagating, volatile_before, hash, key, field, now_ms);
            Ok(new)
        },
        notify,
    )?
    .unwrap_or(0);
    if let Some(form) = form {
        ctx.propagate_as(form);
    }
    ctx.add_dirty(1);
    ctx.reply.int(result);
    Ok(())
}

/// `HINCRBYFLOAT key field increment`: computed in C `long double` exactly as INCRBYFLOAT
/// (see `ferrokv_longdouble`); the field keeps its TTL.
fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, field) = (&args[1], &args[2]);
    let incr = LongDouble::parse(&args[3]).ok_or(errors::NOT_FLOAT)?;
    if !incr.is_finite() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let (now_ms, limits) = (ctx.now_ms, limits(ctx));
    let db = ctx.db();
    let (propagating, mut form): (bool, Option<Vec<Bytes>>) = (ctx.propagating(), None);
    let mut locked = ctx.lock(&[key]);
    let notify = |_: &_| ctx.notify(class::HASH, "hincrbyfloat", key);
    let text = change_hash(
        ctx,
        &mut locked,
        key,
        true,
        |hash| {
            let volatile_before = hash.volatile_len() > 0;
            reclaim_expired(hash, [field], now_ms, db, key);
            let current = match hash.get(field, now_ms) {
                Some(text) => LongDouble::parse(text)
                    .ok_or_else(|| CmdError::err("hash value is not a float"))?,
                None => LongDouble::from_i64(0),
            };
            let sum = current.add(&incr);
            if !sum.is_finite() {
                return Err(CmdError::err("increment would produce NaN or Infinity"));
            }
            let text = sum.to_human();
            hash.set(field, &text, true, now_ms, limits);
            hash.convert_if_too_many(limits);
            form = volatile_hash_form(propagating, volatile_before, hash, key, field, now_ms);
            Ok(text)
        },
        notify,
    )?
    .unwrap_or_default();
    // The exact result, not the increment (Valkey sends HSET).
    ctx.propagate_as(form.unwrap_or_else(|| crate::argv!["HSET", key, field, &text]));
    ctx.add_dirty(1);
    ctx.reply.bulk(&text);
    Ok(())
}
