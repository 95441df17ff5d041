//! String commands.
//!
//! Encodings follow Valkey 9.1 (see `StrValue::for_key`): values created whole are `int`,
//! `embstr` or `raw` depending on the key's length and whether the replaced key had a TTL;
//! in-place edits (APPEND, SETRANGE, and the bit commands) leave `raw`; INCR and friends
//! leave `int`.

mod lcs;
pub mod options;

use bytes::Bytes;
use ferrokv_longdouble::LongDouble;
use ferrokv_protocol::Reply;
use ferrokv_protocol::number::parse_i64;
use ferrokv_store::events::class;
use ferrokv_store::{Entry, Locked, NO_EXPIRE, StrRef, StrValue, Value};

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::dispatch::arity_error;
use crate::spec::{
    ArgList, BeginSearch, CommandSpec, FindKeys, KeyFound, KeySpec, KeysProc, category as cat,
    flag, key_flag as kf,
};
use crate::stats;
use options::{Condition, ExpireUnit, OptionSet, Ttl, WriteOptions, absolute_expire_ms};

const W: u64 = flag::WRITE;
const RO: u64 = flag::READONLY;
const OOM: u64 = flag::DENYOOM;
const FAST: u64 = flag::FAST;
const STR: u64 = cat::STRING;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, "string")
        .flags(RO | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc("1.0.0", "Returns the string value of a key.", "O(1)")
        .handler(get),
    CommandSpec::new("set", -3, "string")
        .flags(W | OOM)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE | kf::VARIABLE_FLAGS)])
        .key_notes(&["RW and ACCESS due to the optional `GET` argument"])
        .keys_proc(SET_KEYS)
        .doc(
            "1.0.0",
            "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
            "O(1)",
        )
        .handler(set),
    CommandSpec::new("setnx", 3, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::OW | kf::INSERT)])
        .doc("1.0.0", "Stores a string only if the key is absent.", "O(1)")
        .handler(setnx),
    CommandSpec::new("setex", 4, "string")
        .flags(W | OOM)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::OW | kf::UPDATE)])
        .doc("2.0.0", "Stores a string with a TTL in seconds.", "O(1)")
        .handler(setex),
    CommandSpec::new("psetex", 4, "string")
        .flags(W | OOM)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::OW | kf::UPDATE)])
        .doc("2.6.0", "Stores a string with a TTL in milliseconds.", "O(1)")
        .handler(psetex),
    CommandSpec::new("getset", 3, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE)])
        .doc("1.0.0", "Stores a string and returns the one it replaced.", "O(1)")
        .handler(getset),
    CommandSpec::new("getdel", 2, "string")
        .flags(W | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE)])
        .doc("6.2.0", "Returns a string and deletes its key.", "O(1)")
        .handler(getdel),
    CommandSpec::new("getex", -2, "string")
        .flags(W | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE)])
        .key_notes(&["RW and UPDATE because it changes the TTL"])
        .doc("6.2.0", "Returns a string and optionally changes its TTL.", "O(1)")
        .handler(getex),
    CommandSpec::new("mget", -2, "string")
        .flags(RO | FAST)
        .categories(STR)
        .keys(&[KeySpec::to_end(1, 1, kf::RO | kf::ACCESS)])
        .tips(&["request_policy:multi_shard"])
        .doc(
            "1.0.0",
            "Returns the strings of several keys at once.",
            "O(N) where N is the number of keys to retrieve.",
        )
        .handler(mget),
    CommandSpec::new("mset", -3, "string")
        .flags(W | OOM)
        .categories(STR)
        .keys(&[KeySpec::to_end(1, 2, kf::OW | kf::UPDATE)])
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
        .doc(
            "1.0.1",
            "Stores several strings atomically.",
            "O(N) where N is the number of keys to set.",
        )
        .handler(mset),
    CommandSpec::new("msetnx", -3, "string")
        .flags(W | OOM)
        .categories(STR)
        .keys(&[KeySpec::to_end(1, 2, kf::OW | kf::INSERT)])
        .doc(
            "1.0.1",
            "Stores several strings atomically, only if none of the keys exists.",
            "O(N) where N is the number of keys to set.",
        )
        .handler(msetnx),
    CommandSpec::new("msetex", -4, "string")
        .flags(W | OOM)
        .categories(STR)
        .keys(&[KeySpec {
            flags: kf::OW | kf::UPDATE,
            begin: BeginSearch::Index(1),
            find: FindKeys::KeyNum {
                key_num_idx: 0,
                first_key: 1,
                step: 2,
            },
        }])
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
        .doc(
            "9.1.0",
            "Stores several strings atomically, with a condition and a TTL for all of them.",
            "O(N) where N is the number of keys to set.",
        )
        .handler(msetex),
    CommandSpec::new("append", 3, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RW | kf::INSERT)])
        .doc(
            "2.0.0",
            "Appends to a string, creating it if needed.",
            "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by the server will double the free space available on every reallocation.",
        )
        .handler(append),
    CommandSpec::new("strlen", 2, "string")
        .flags(RO | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RO)])
        .doc("2.2.0", "Returns the length of a string.", "O(1)")
        .handler(strlen),
    CommandSpec::new("getrange", 4, "string")
        .flags(RO)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc("2.4.0", "Returns part of a string.", GETRANGE_COMPLEXITY)
        .handler(getrange),
    CommandSpec::new("substr", 4, "string")
        .flags(RO)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc("1.0.0", "Returns part of a string (old name of GETRANGE).", GETRANGE_COMPLEXITY)
        .handler(getrange),
    CommandSpec::new("setrange", 4, "string")
        .flags(W | OOM)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RW | kf::UPDATE)])
        .doc(
            "2.2.0",
            "Overwrites part of a string at an offset, padding with zero bytes.",
            "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
        )
        .handler(setrange),
    CommandSpec::new("incr", 2, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(INCR_KEYS)
        .doc("1.0.0", "Adds one to an integer string (absent: 0).", "O(1)")
        .handler(incr),
    CommandSpec::new("decr", 2, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(INCR_KEYS)
        .doc("1.0.0", "Subtracts one from an integer string (absent: 0).", "O(1)")
        .handler(decr),
    CommandSpec::new("incrby", 3, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(INCR_KEYS)
        .doc("1.0.0", "Adds an integer to an integer string (absent: 0).", "O(1)")
        .handler(incrby),
    CommandSpec::new("decrby", 3, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(INCR_KEYS)
        .doc("1.0.0", "Subtracts an integer from an integer string (absent: 0).", "O(1)")
        .handler(decrby),
    CommandSpec::new("incrbyfloat", 3, "string")
        .flags(W | OOM | FAST)
        .categories(STR)
        .keys(INCR_KEYS)
        .doc("2.6.0", "Adds a floating point number to a numeric string (absent: 0).", "O(1)")
        .handler(incrbyfloat),
    CommandSpec::new("lcs", -3, "string")
        .flags(RO)
        .categories(STR)
        .keys(&[KeySpec {
            flags: kf::RO | kf::ACCESS,
            begin: BeginSearch::Index(1),
            find: FindKeys::Range {
                last_key: 1,
                step: 1,
                limit: 0,
            },
        }])
        .doc(
            "7.0.0",
            "Finds the longest common subsequence of two strings.",
            "O(N*M) where N and M are the lengths of s1 and s2, respectively",
        )
        .handler(lcs::lcs),
    CommandSpec::new("delifeq", 3, "string")
        .flags(W | FAST)
        .categories(STR)
        .keys(&[KeySpec::single(1, kf::RM | kf::DELETE)])
        .doc("9.0.0", "Deletes a key only if it holds the given string.", "O(1)")
        .handler(delifeq),
];

const GETRANGE_COMPLEXITY: &str = "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.";

const INCR_KEYS: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE)];

// ---- helpers shared with the bit commands ----

/// The string held by a value, or WRONGTYPE.
pub(crate) fn string_of(value: &Value) -> Result<&StrValue, CmdError> {
    #[allow(unreachable_patterns)]
    match value {
        Value::Str(s) => Ok(s),
        _ => Err(errors::WRONGTYPE),
    }
}

pub(crate) fn string_of_mut(value: &mut Value) -> Result<&mut StrValue, CmdError> {
    #[allow(unreachable_patterns)]
    match value {
        Value::Str(s) => Ok(s),
        _ => Err(errors::WRONGTYPE),
    }
}

/// Writes a string value as a bulk reply.
pub(crate) fn reply_string(reply: &mut Reply, s: &StrValue) {
    match s {
        StrValue::Int(n) => reply.bulk_int(*n),
        StrValue::Embstr(b) | StrValue::Raw(b) => reply.bulk(b),
    }
}

/// Refuses to grow a string beyond `proto-max-bulk-len`.
pub(crate) fn check_string_length(ctx: &Ctx, total: u128) -> Result<(), CmdError> {
    if total > ctx.client.config.proto_max_bulk_len.max(0) as u128 {
        return Err(CmdError::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    Ok(())
}

/// Stores a fresh string under `key`, replacing whatever was there; `ttl` decides the
/// expiry (`Default`: none). An absolute expiry already in the past deletes the key instead,
/// as Valkey does. Returns false if the key ended up deleted.
fn store_string(ctx: &Ctx, locked: &mut Locked, key: &[u8], bytes: &[u8], ttl: Ttl) -> Stored {
    let db = ctx.db();
    // A write lookup first, as in Valkey: a key that has expired goes (`expired`) and the
    // store below creates it afresh (`new`).
    let old_expire = locked.db(db, key).write_lookup_expire(key, ctx.now_ms);
    if let Ttl::At(at) = ttl
        && at <= ctx.now_ms
    {
        // Storing a value only for active expiry to drop it would be wasted work.
        let removed = locked.db(db, key).remove(key).is_some();
        if removed {
            ctx.notify(class::EXPIRED, "expired", key);
            stats::local().expired_keys.add(1);
        }
        return Stored::AlreadyExpired { removed };
    }
    put_string_over(ctx, locked, key, bytes, ttl, old_expire);
    Stored::Yes
}

/// Stores the string as it is told, even with an expiry already past (MSETEX keeps such
/// keys until they are next touched, as Valkey 9.1 does).
fn put_string(ctx: &Ctx, locked: &mut Locked, key: &[u8], bytes: &[u8], ttl: Ttl) {
    let old_expire = locked.db(ctx.db(), key).live_expire(key, ctx.now_ms);
    put_string_over(ctx, locked, key, bytes, ttl, old_expire);
}

/// [`put_string`] over a key whose live expiry (`NO_EXPIRE`: none; `None`: no live key)
/// the caller has just looked up.
fn put_string_over(
    ctx: &Ctx,
    locked: &mut Locked,
    key: &[u8],
    bytes: &[u8],
    ttl: Ttl,
    old_expire: Option<i64>,
) {
    let db = ctx.db();
    let had_ttl = old_expire.is_some_and(|at| at != NO_EXPIRE);
    let expire_at = match ttl {
        Ttl::Default | Ttl::Persist => NO_EXPIRE,
        Ttl::Keep => old_expire.unwrap_or(NO_EXPIRE),
        Ttl::At(at) => at,
    };
    let store = locked.db(db, key);
    let value = StrValue::for_key_with(bytes, key.len(), had_ttl, || {
        store.string_buffer(bytes.len())
    });
    let mut entry = ctx.new_entry(Value::Str(value));
    entry.expire_at = expire_at;
    store.set(key, entry);
}

/// What storing a string did.
#[derive(PartialEq)]
enum Stored {
    Yes,
    /// Its expiry had passed: nothing was stored, and an older value, if any, was removed.
    AlreadyExpired {
        removed: bool,
    },
}

impl Stored {
    /// Propagates and counts the write: the command itself when stored (`argv`, built only
    /// then), a DEL or UNLINK when an older value was dropped, nothing otherwise.
    fn account(self, ctx: &mut Ctx, key: &[u8], argv: impl FnOnce() -> Vec<Bytes>) {
        match self {
            Stored::Yes => {
                if ctx.propagating() {
                    ctx.propagate_as(argv());
                }
                ctx.add_dirty(1);
            }
            Stored::AlreadyExpired { removed: true } => {
                ctx.propagate_as(crate::argv![
                    crate::cmd::expire::expired_delete_name(ctx),
                    key
                ]);
                ctx.add_dirty(1);
            }
            Stored::AlreadyExpired { removed: false } => {}
        }
    }
}

/// The notifications of a string stored by SET and its variants: `set`, and `expire`
/// when the command gave it a TTL.
fn notify_stored(ctx: &Ctx, key: &[u8], ttl: Ttl) {
    ctx.notify(class::STRING, "set", key);
    if matches!(ttl, Ttl::At(_)) {
        ctx.notify(class::GENERIC, "expire", key);
    }
}

/// What a write-lookup found: whether the key exists, and as what.
enum Found {
    Missing,
    Str(StrValue),
    Other,
}

fn found(entry: Option<&mut Entry>, with_value: bool) -> Found {
    match entry {
        None => Found::Missing,
        Some(e) => match string_of(&e.value) {
            Ok(s) if with_value => Found::Str(s.clone()),
            Ok(_) => Found::Str(StrValue::Int(0)),
            Err(_) => Found::Other,
        },
    }
}

/// SET's key flags as Valkey's `setGetKeys` resolves its variable flags: read and written
/// with GET, only overwritten without it (so an ACL user with write-only access to a key can
/// SET it, and COMMAND GETKEYSANDFLAGS says `OW update`).
const SET_KEYS: KeysProc = KeysProc::exact(set_keys);

fn set_keys(args: &dyn ArgList, found: KeyFound) {
    if args.argc() < 2 {
        return;
    }
    let with_get = (3..args.argc()).any(|i| args.arg(i).eq_ignore_ascii_case(b"get"));
    let flags = if with_get {
        kf::RW | kf::ACCESS | kf::UPDATE
    } else {
        kf::OW | kf::UPDATE
    };
    found(1, flags);
}

// ---- GET / SET and their variants ----

/// `GET key`
fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    match ctx.read_string(&mut locked, key)? {
        None => ctx.reply.null(),
        Some(StrRef::Int(n)) => ctx.reply.bulk_int(n),
        Some(StrRef::Bytes(b)) => ctx.reply.bulk(b),
    }
    Ok(())
}

/// `SET key value [NX | XX | IFEQ comparison-value] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`
fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let opts = WriteOptions::parse(&args[3..], OptionSet::Set)?;
    let ttl = opts.expire.resolve(ctx.now_ms, "set")?;
    let (key, value) = (&args[1], &args[2]);
    let mut locked = ctx.lock(&[key]);
    let current = if opts.get {
        found(ctx.read(&mut locked, key), true)
    } else if matches!(opts.condition, Condition::Always) {
        // Nothing to learn from the key: the store's own write lookup expires it.
        Found::Missing
    } else {
        let compare = matches!(opts.condition, Condition::Equals(_));
        found(ctx.write(&mut locked, key), compare)
    };
    if opts.get && matches!(current, Found::Other) {
        return Err(errors::WRONGTYPE);
    }
    let allowed = match (&opts.condition, &current) {
        (Condition::Always, _) => true,
        (Condition::Missing, c) => matches!(c, Found::Missing),
        (Condition::Exists, c) => !matches!(c, Found::Missing),
        (Condition::Equals(_), Found::Other) => return Err(errors::WRONGTYPE),
        (Condition::Equals(want), Found::Str(s)) => s.to_bytes().as_ref() == want.as_ref(),
        (Condition::Equals(_), Found::Missing) => false,
    };
    if allowed {
        let stored = store_string(ctx, &mut locked, key, value, ttl);
        if stored == Stored::Yes {
            notify_stored(ctx, key, ttl);
        }
        stored.account(ctx, key, || set_argv(args, ttl));
    }
    match current {
        _ if !opts.get => {
            if allowed {
                ctx.reply.ok()
            } else {
                ctx.reply.null()
            }
        }
        Found::Str(s) => reply_string(ctx.reply, &s),
        _ => ctx.reply.null(),
    }
    Ok(())
}

/// What SET propagates: a relative or second-based expiry becomes `PXAT <ms>` (in place
/// when it is the only option, else Valkey rebuilds `SET key value PXAT <ms>` without the
/// other options); otherwise the command without GET.
fn set_argv(args: &[Bytes], ttl: Ttl) -> Vec<Bytes> {
    let relative_expiry = args[3..].iter().any(|a| {
        [&b"ex"[..], b"px", b"exat"]
            .iter()
            .any(|o| a.eq_ignore_ascii_case(o))
    });
    if relative_expiry
        && args.len() != 5
        && let Ttl::At(at) = ttl
    {
        return crate::argv!["SET", &args[1], &args[2], "PXAT", at];
    }
    let mut out = Vec::with_capacity(args.len());
    out.extend(args[..3].iter().cloned());
    let mut i = 3;
    while i < args.len() {
        let arg = &args[i];
        if arg.eq_ignore_ascii_case(b"get") {
            i += 1;
            continue;
        }
        let relative = [&b"ex"[..], b"px", b"exat"]
            .iter()
            .any(|o| arg.eq_ignore_ascii_case(o));
        if relative && let Ttl::At(at) = ttl {
            out.extend(crate::argv!["PXAT", at]);
            i += 2;
            continue;
        }
        let takes_value =
            relative || arg.eq_ignore_ascii_case(b"pxat") || arg.eq_ignore_ascii_case(b"ifeq");
        out.push(arg.clone());
        if takes_value && let Some(value) = args.get(i + 1) {
            out.push(value.clone());
            i += 1;
        }
        i += 1;
    }
    out
}

/// `SETNX key value`
fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    if ctx.write(&mut locked, key).is_some() {
        ctx.reply.int(0);
        return Ok(());
    }
    store_string(ctx, &mut locked, key, &args[2], Ttl::Default);
    ctx.notify(class::STRING, "set", key);
    ctx.add_dirty(1);
    ctx.reply.int(1);
    Ok(())
}

/// `SETEX key seconds value`
fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_with_ttl(ctx, args, ExpireUnit::Ex, "setex")
}

/// `PSETEX key milliseconds value`
fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_with_ttl(ctx, args, ExpireUnit::Px, "psetex")
}

fn set_with_ttl(ctx: &mut Ctx, args: &[Bytes], unit: ExpireUnit, name: &str) -> CmdResult {
    let at = absolute_expire_ms(unit, &args[2], ctx.now_ms, name)?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    ctx.write(&mut locked, key);
    let stored = store_string(ctx, &mut locked, key, &args[3], Ttl::At(at));
    if stored == Stored::Yes {
        notify_stored(ctx, key, Ttl::At(at));
    }
    stored.account(ctx, key, || crate::argv!["SET", key, &args[3], "PXAT", at]);
    ctx.reply.ok();
    Ok(())
}

/// `GETSET key value`
fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    match found(ctx.read(&mut locked, key), true) {
        Found::Other => return Err(errors::WRONGTYPE),
        Found::Str(old) => reply_string(ctx.reply, &old),
        Found::Missing => ctx.reply.null(),
    }
    store_string(ctx, &mut locked, key, &args[2], Ttl::Default);
    ctx.notify(class::STRING, "set", key);
    ctx.propagate_as(crate::argv!["SET", key, &args[2]]);
    ctx.add_dirty(1);
    Ok(())
}

/// `GETDEL key`
fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    match ctx.read(&mut locked, key) {
        None => ctx.reply.null(),
        Some(e) => {
            reply_string(ctx.reply, string_of(&e.value)?);
            locked.db(ctx.db(), key).remove(key);
            ctx.notify(class::GENERIC, "del", key);
            ctx.propagate_as(crate::argv!["DEL", key]);
            ctx.add_dirty(1);
        }
    }
    Ok(())
}

/// `GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]`
fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let opts = WriteOptions::parse(&args[2..], OptionSet::GetEx)?;
    let ttl = opts.expire.resolve(ctx.now_ms, "getex")?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.null();
        return Ok(());
    };
    reply_string(ctx.reply, string_of(&entry.value)?);
    let had_ttl = entry.has_expire();
    let db = locked.db(ctx.db(), key);
    match ttl {
        Ttl::At(at) if at <= ctx.now_ms => {
            db.remove(key);
            ctx.notify(class::EXPIRED, "expired", key);
            ctx.propagate_as(crate::argv![
                crate::cmd::expire::expired_delete_name(ctx),
                key
            ]);
            ctx.add_dirty(1);
        }
        Ttl::At(at) => {
            db.set_expire(key, at);
            ctx.notify(class::GENERIC, "expire", key);
            ctx.propagate_as(crate::argv!["PEXPIREAT", key, at]);
            ctx.add_dirty(1);
        }
        Ttl::Persist if had_ttl => {
            db.set_expire(key, NO_EXPIRE);
            ctx.notify(class::GENERIC, "persist", key);
            ctx.propagate_as(crate::argv!["PERSIST", key]);
            ctx.add_dirty(1);
        }
        _ => {}
    }
    Ok(())
}

/// `MGET key [key ...]`
fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = &args[1..];
    let mut locked = ctx.lock(keys);
    ctx.reply.array_len(keys.len());
    for key in keys {
        match ctx.read(&mut locked, key).map(|e| string_of(&e.value)) {
            Some(Ok(s)) => reply_string(ctx.reply, s),
            _ => ctx.reply.null(),
        }
    }
    Ok(())
}

/// The key/value pairs of MSET and MSETNX (an odd count is an arity error).
fn pairs<'a>(ctx: &Ctx, args: &'a [Bytes]) -> Result<&'a [Bytes], CmdError> {
    if args.len().is_multiple_of(2) {
        return Err(arity_error(ctx.spec.name));
    }
    Ok(&args[1..])
}

fn keys_of(pairs: &[Bytes]) -> Vec<&Bytes> {
    pairs.iter().step_by(2).collect()
}

/// `MSET key value [key value ...]`
fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = pairs(ctx, args)?;
    let mut locked = ctx.lock(&keys_of(pairs));
    for pair in pairs.chunks_exact(2) {
        store_string(ctx, &mut locked, &pair[0], &pair[1], Ttl::Default);
        ctx.notify(class::STRING, "set", &pair[0]);
    }
    ctx.add_dirty((pairs.len() / 2) as u64);
    ctx.reply.ok();
    Ok(())
}

/// `MSETNX key value [key value ...]`
fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = pairs(ctx, args)?;
    let keys = keys_of(pairs);
    let mut locked = ctx.lock(&keys);
    if keys.iter().any(|k| ctx.write(&mut locked, k).is_some()) {
        ctx.reply.int(0);
        return Ok(());
    }
    for pair in pairs.chunks_exact(2) {
        store_string(ctx, &mut locked, &pair[0], &pair[1], Ttl::Default);
        ctx.notify(class::STRING, "set", &pair[0]);
    }
    ctx.add_dirty((pairs.len() / 2) as u64);
    ctx.reply.int(1);
    Ok(())
}

/// `MSETEX numkeys key value [key value ...] [NX | XX] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`
fn msetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let numkeys = parse_i64(&args[1])
        .filter(|n| (1..=i32::MAX as i64).contains(n))
        .ok_or_else(|| CmdError::err("invalid numkeys value or out of range"))?
        as usize;
    let pairs_end = 2 + 2 * numkeys;
    if pairs_end > args.len() {
        return Err(errors::SYNTAX);
    }
    let opts = WriteOptions::parse(&args[pairs_end..], OptionSet::MSetEx)?;
    let ttl = opts.expire.resolve(ctx.now_ms, "msetex")?;
    let pairs = &args[2..pairs_end];
    let keys = keys_of(pairs);
    let mut locked = ctx.lock(&keys);
    let allowed = match opts.condition {
        Condition::Missing => keys.iter().all(|k| ctx.write(&mut locked, k).is_none()),
        Condition::Exists => keys.iter().all(|k| ctx.write(&mut locked, k).is_some()),
        _ => {
            for k in &keys {
                ctx.write(&mut locked, k);
            }
            true
        }
    };
    if allowed {
        for pair in pairs.chunks_exact(2) {
            // Valkey 9.1 stores the pair even with a TTL in the past (it expires on access).
            put_string(ctx, &mut locked, &pair[0], &pair[1], ttl);
            notify_stored(ctx, &pair[0], ttl);
        }
        if let Ttl::At(at) = ttl
            && ctx.propagating()
        {
            ctx.propagate_as(msetex_argv(args, pairs_end, at));
        }
        ctx.add_dirty(numkeys as u64);
    }
    ctx.reply.int(allowed as i64);
    Ok(())
}

/// What MSETEX propagates: its argv with a relative or second-based expiry rewritten in
/// place as `PXAT <ms>`, so a replica or the AOF sets the same deadline.
fn msetex_argv(args: &[Bytes], options_start: usize, at: i64) -> Vec<Bytes> {
    let mut out = args.to_vec();
    let mut i = options_start;
    while i < out.len() {
        let option = &out[i];
        let relative = [&b"ex"[..], b"px", b"exat"]
            .iter()
            .any(|o| option.eq_ignore_ascii_case(o));
        if relative && i + 1 < out.len() {
            out[i] = Bytes::from_static(b"PXAT");
            out[i + 1] = Bytes::from(at.to_string());
            break;
        }
        let takes_value = option.eq_ignore_ascii_case(b"pxat");
        i += if takes_value { 2 } else { 1 };
    }
    out
}

/// `DELIFEQ key value`
fn delifeq(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let equal = match ctx.write(&mut locked, key) {
        None => false,
        Some(e) => string_of(&e.value)?.to_bytes().as_ref() == args[2].as_ref(),
    };
    if equal {
        locked.db(ctx.db(), key).remove(key);
        ctx.notify(class::GENERIC, "del", key);
        ctx.propagate_as(crate::argv!["DEL", key]);
        ctx.add_dirty(1);
    }
    ctx.reply.int(equal as i64);
    Ok(())
}

// ---- in-place edits ----

/// `APPEND key value`
fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, tail) = (&args[1], &args[2]);
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        store_string(ctx, &mut locked, key, tail, Ttl::Default);
        ctx.notify(class::STRING, "append", key);
        ctx.add_dirty(1);
        ctx.reply.int(tail.len() as i64);
        return Ok(());
    };
    let s = string_of_mut(&mut entry.value)?;
    check_string_length(ctx, s.len() as u128 + tail.len() as u128)?;
    let bytes = s.make_raw();
    bytes.extend_from_slice(tail);
    let len = bytes.len();
    ctx.notify(class::STRING, "append", key);
    ctx.add_dirty(1);
    ctx.reply.int(len as i64);
    Ok(())
}

/// `STRLEN key`
fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let len = match ctx.read(&mut locked, key) {
        None => 0,
        Some(e) => string_of(&e.value)?.len(),
    };
    ctx.reply.int(len as i64);
    Ok(())
}

/// `GETRANGE key start end` (and `SUBSTR`)
fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.bulk(b"");
        return Ok(());
    };
    let bytes = string_of(&entry.value)?.to_bytes();
    match byte_range(start, end, bytes.len()) {
        Some((from, to)) => ctx.reply.bulk(&bytes[from..=to]),
        None => ctx.reply.bulk(b""),
    }
    Ok(())
}

/// Valkey's GETRANGE index arithmetic (negative indexes count from the end, clamped into
/// the string; wrapping arithmetic where Valkey mixes signed and unsigned).
fn byte_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len_i = len as i64;
    let mut start = if start < 0 {
        start.wrapping_add(len_i)
    } else {
        start
    };
    let mut end = if end < 0 {
        end.wrapping_add(len_i)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end as u64 >= len as u64 {
        end = len_i - 1;
    }
    if len == 0 || start > end {
        return None;
    }
    Some((start as usize, end as usize))
}

/// `SETRANGE key offset value`
fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = args::int(&args[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let (key, patch) = (&args[1], &args[3]);
    let offset = offset as usize;
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        if patch.is_empty() {
            ctx.reply.int(0);
            return Ok(());
        }
        check_string_length(ctx, offset as u128 + patch.len() as u128)?;
        let mut bytes = vec![0u8; offset + patch.len()];
        bytes[offset..].copy_from_slice(patch);
        let entry = ctx.new_entry(Value::Str(StrValue::Raw(bytes)));
        locked.db(ctx.db(), key).insert(key, entry);
        ctx.notify(class::STRING, "setrange", key);
        ctx.add_dirty(1);
        ctx.reply.int((offset + patch.len()) as i64);
        return Ok(());
    };
    let s = string_of_mut(&mut entry.value)?;
    if patch.is_empty() {
        ctx.reply.int(s.len() as i64);
        return Ok(());
    }
    check_string_length(ctx, offset as u128 + patch.len() as u128)?;
    let bytes = s.make_raw();
    let end = offset + patch.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset..end].copy_from_slice(patch);
    let len = bytes.len();
    ctx.notify(class::STRING, "setrange", key);
    ctx.add_dirty(1);
    ctx.reply.int(len as i64);
    Ok(())
}

// ---- counters ----

fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let delta = args::int(&args[2])?;
    incr_by(ctx, &args[1], delta)
}

fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let delta = args::int(&args[2])?;
    let delta = delta
        .checked_neg()
        .ok_or_else(|| CmdError::err("decrement would overflow"))?;
    incr_by(ctx, &args[1], delta)
}

/// The integer a string holds, as Valkey reads it for INCR.
fn integer_of(s: &StrValue) -> Option<i64> {
    match s {
        StrValue::Int(n) => Some(*n),
        StrValue::Embstr(b) | StrValue::Raw(b) => parse_i64(b),
    }
}

fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult {
    let mut locked = ctx.lock(&[key]);
    let result = match ctx.write(&mut locked, key) {
        Some(entry) => {
            let s = string_of_mut(&mut entry.value)?;
            let old = integer_of(s).ok_or(errors::NOT_INTEGER)?;
            let new = old.checked_add(delta).ok_or(errors::OVERFLOW)?;
            *s = StrValue::Int(new);
            new
        }
        None => {
            let entry = ctx.new_entry(Value::Str(StrValue::Int(delta)));
            locked.db(ctx.db(), key).insert(key, entry);
            delta
        }
    };
    ctx.notify(class::STRING, "incrby", key);
    ctx.add_dirty(1);
    ctx.reply.int(result);
    Ok(())
}

/// `INCRBYFLOAT key increment`: computed in C `long double`, as Valkey does (see
/// `ferrokv_longdouble`).
fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, incr_arg) = (&args[1], &args[2]);
    let mut locked = ctx.lock(&[key]);
    let (current, had_ttl, expire_at) = match ctx.write(&mut locked, key) {
        Some(entry) => {
            let s = string_of(&entry.value)?;
            let current = match s {
                StrValue::Int(n) => LongDouble::from_i64(*n),
                StrValue::Embstr(b) | StrValue::Raw(b) => {
                    LongDouble::parse(b).ok_or(errors::NOT_FLOAT)?
                }
            };
            (current, entry.has_expire(), entry.expire_at)
        }
        None => (LongDouble::from_i64(0), false, NO_EXPIRE),
    };
    let incr = LongDouble::parse(incr_arg).ok_or(errors::NOT_FLOAT)?;
    let sum = current.add(&incr);
    if !sum.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = sum.to_human();
    ctx.reply.bulk(&text);
    let text_bytes = text.to_vec();
    let value = StrValue::text_for_key(text, key.len(), had_ttl);
    let mut entry = ctx.new_entry(Value::Str(value));
    entry.expire_at = expire_at;
    locked.db(ctx.db(), key).insert(key, entry);
    ctx.notify(class::STRING, "incrbyfloat", key);
    // The exact result, not the increment: replicas and the AOF must not redo float math.
    ctx.propagate_as(crate::argv!["SET", key, Bytes::from(text_bytes), "KEEPTTL"]);
    ctx.add_dirty(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_index_arithmetic() {
        assert_eq!(byte_range(0, -1, 5), Some((0, 4)));
        assert_eq!(byte_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(byte_range(-1, -3, 5), None);
        assert_eq!(byte_range(3, 1, 5), None);
        assert_eq!(byte_range(0, 100, 5), Some((0, 4)));
        assert_eq!(byte_range(-100, 100, 5), Some((0, 4)));
        assert_eq!(byte_range(0, 0, 0), None);
        assert_eq!(byte_range(i64::MIN, -1, 2), Some((0, 1)));
        assert_eq!(byte_range(0, i64::MIN, 2), Some((0, 0)));
        assert_eq!(byte_range(i64::MIN, i64::MAX, 2), Some((0, 1)));
    }
}
