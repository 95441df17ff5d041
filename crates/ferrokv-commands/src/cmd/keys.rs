//! Generic keyspace commands: existence, type, renaming, copying and moving keys, iterating
//! the keyspace (KEYS, SCAN, RANDOMKEY), OBJECT introspection, and flushing/swapping
//! databases. The expiry commands live in `expire.rs`.

use bytes::Bytes;
use ferrokv_store::access::lru_idle_seconds;
use ferrokv_store::events::class;
use ferrokv_store::glob::glob_match;
use ferrokv_store::keyspace::{SHARD_BITS, SHARD_COUNT};
use ferrokv_store::{Db, Entry, Locked};
use rand::Rng;

use crate::cmd::args;
use crate::cmd::scan_options::{self, ScanFamily};
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};

const MULTI_SHARD_SUM: &[&str] = &["request_policy:multi_shard", "response_policy:agg_sum"];
const ALL_SHARDS_SUCCEED: &[&str] = &["request_policy:all_shards", "response_policy:all_succeeded"];
const SOURCE_AND_DESTINATION: &[KeySpec] = &[
    KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE),
    KeySpec::single(2, kf::OW | kf::UPDATE),
];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, "generic")
        .flags(flag::WRITE)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::to_end(1, 1, kf::RM | kf::DELETE)])
        .tips(MULTI_SHARD_SUM)
        .doc(
            "1.0.0",
            "Deletes one or more keys.",
            "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
        )
        .handler(del),
    CommandSpec::new("unlink", -2, "generic")
        .flags(flag::WRITE | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::to_end(1, 1, kf::RM | kf::DELETE)])
        .tips(MULTI_SHARD_SUM)
        .doc(
            "4.0.0",
            "Deletes keys, reclaiming their memory in the background.",
            "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
        )
        .handler(unlink),
    CommandSpec::new("exists", -2, "generic")
        .flags(flag::READONLY | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::to_end(1, 1, kf::RO)])
        .tips(MULTI_SHARD_SUM)
        .doc(
            "1.0.0",
            "Counts how many of the given keys exist.",
            "O(N) where N is the number of keys to check.",
        )
        .handler(exists),
    CommandSpec::new("type", 2, "generic")
        .flags(flag::READONLY | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::single(1, kf::RO)])
        .doc("1.0.0", "Names the type of the value held by a key.", "O(1)")
        .handler(type_of),
    CommandSpec::new("rename", 3, "generic")
        .flags(flag::WRITE)
        .categories(cat::KEYSPACE)
        .keys(SOURCE_AND_DESTINATION)
        .doc(
            "1.0.0",
            "Gives a key a new name, replacing any key already under that name.",
            "O(1)",
        )
        .handler(rename),
    CommandSpec::new("renamenx", 3, "generic")
        .flags(flag::WRITE | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(&[
            KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE),
            KeySpec::single(2, kf::OW | kf::INSERT),
        ])
        .doc(
            "1.0.0",
            "Gives a key a new name unless that name is already taken.",
            "O(1)",
        )
        .handler(renamenx),
    CommandSpec::new("keys", 2, "generic")
        .flags(flag::READONLY)
        .categories(cat::KEYSPACE | cat::DANGEROUS)
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"])
        .doc(
            "1.0.0",
            "Lists every key name matching a glob pattern.",
            "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
        )
        .handler(keys),
    CommandSpec::new("scan", -2, "generic")
        .flags(flag::READONLY)
        .categories(cat::KEYSPACE)
        .tips(&[
            "nondeterministic_output",
            "request_policy:special",
            "response_policy:special",
        ])
        .doc(
            "2.8.0",
            "Walks the key names of the database a batch at a time, driven by a cursor.",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        )
        .handler(scan),
    CommandSpec::new("randomkey", 1, "generic")
        .flags(flag::READONLY)
        .categories(cat::KEYSPACE)
        .tips(&[
            "request_policy:all_shards",
            "response_policy:special",
            "nondeterministic_output",
        ])
        .doc("1.0.0", "Picks a key name of the database at random.", "O(1)")
        .handler(randomkey),
    CommandSpec::new("touch", -2, "generic")
        .flags(flag::READONLY | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::to_end(1, 1, kf::RO)])
        .tips(MULTI_SHARD_SUM)
        .doc(
            "3.2.1",
            "Marks keys as just accessed and counts how many of them exist.",
            "O(N) where N is the number of keys that will be touched.",
        )
        .handler(touch),
    CommandSpec::new("object", -2, "generic")
        .doc(
            "2.2.3",
            "Groups the subcommands that inspect the value stored under a key.",
            "Depends on subcommand.",
        )
        .subcommands(&[
            object_subcommand("encoding", "2.2.3", "Names the internal representation of a key's value.")
                .handler(object_encoding),
            object_subcommand("freq", "4.0.0", "Reads the logarithmic access-frequency counter of a key (LFU policies).")
                .handler(object_freq),
            CommandSpec::new("help", 2, "generic")
                .flags(flag::LOADING | flag::STALE)
                .categories(cat::KEYSPACE)
                .doc("6.2.0", "Describes the OBJECT subcommands.", "O(1)")
                .handler(object_help),
            object_subcommand("idletime", "2.2.3", "Reads the seconds since a key was last accessed (LRU policies).")
                .handler(object_idletime),
            object_subcommand("refcount", "2.2.3", "Reads the reference count of a key's value.")
                .handler(object_refcount),
        ]),
    CommandSpec::new("copy", -3, "generic")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(cat::KEYSPACE)
        .keys(&[
            KeySpec::single(1, kf::RO | kf::ACCESS),
            KeySpec::single(2, kf::OW | kf::UPDATE),
        ])
        .doc(
            "6.2.0",
            "Duplicates a key's value, with its TTL, under another name or in another database.",
            "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
        )
        .handler(copy),
    CommandSpec::new("move", 3, "generic")
        .flags(flag::WRITE | flag::FAST)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE)])
        .doc("1.0.0", "Transfers a key to another database.", "O(1)")
        .handler(move_key),
    CommandSpec::new("swapdb", 3, "server")
        .flags(flag::WRITE | flag::FAST)
        .categories(cat::KEYSPACE | cat::DANGEROUS)
        .doc(
            "4.0.0",
            "Exchanges the contents of two databases.",
            "O(N) where N is the count of clients watching or blocking on keys from both databases.",
        )
        .handler(swapdb),
    CommandSpec::new("flushdb", -1, "server")
        .flags(flag::WRITE)
        .categories(cat::KEYSPACE | cat::DANGEROUS)
        .tips(ALL_SHARDS_SUCCEED)
        .doc(
            "1.0.0",
            "Deletes every key of the selected database.",
            "O(N) where N is the number of keys in the selected database",
        )
        .handler(flushdb),
    CommandSpec::new("flushall", -1, "server")
        .flags(flag::WRITE)
        .categories(cat::KEYSPACE | cat::DANGEROUS)
        .tips(ALL_SHARDS_SUCCEED)
        .doc(
            "1.0.0",
            "Deletes every key of every database.",
            "O(N) where N is the total number of keys in all databases",
        )
        .handler(flushall),
    CommandSpec::new("dbsize", 1, "server")
        .flags(flag::READONLY | flag::FAST)
        .categories(cat::KEYSPACE)
        .tips(&["request_policy:all_shards", "response_policy:agg_sum"])
        .doc(
            "1.0.0",
            "Returns the number of keys in the database.",
            "O(1)",
        )
        .handler(dbsize),
];

const OBJECT_KEY: &[KeySpec] = &[KeySpec::single(2, kf::RO)];

/// The shape shared by OBJECT ENCODING/FREQ/IDLETIME/REFCOUNT: `OBJECT <sub> key`.
const fn object_subcommand(
    name: &'static str,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec::new(name, 3, "generic")
        .flags(flag::READONLY)
        .categories(cat::KEYSPACE)
        .keys(OBJECT_KEY)
        .tips(&["nondeterministic_output"])
        .doc(since, summary, "O(1)")
}

/// Looks `key` up for reading without updating its access time (EXISTS, TYPE, OBJECT, TTL
/// ...), deleting it if it has expired and counting the hit or miss, as Valkey's
/// no-touch lookups do.
pub(crate) fn lookup_no_touch<'l>(
    ctx: &Ctx,
    locked: &'l mut Locked<'_>,
    db: usize,
    key: &[u8],
) -> Option<&'l mut Entry> {
    let found = locked.db(db, key).get(key, ctx.now_ms);
    ctx.client.count_lookup(found.is_some());
    found
}

/// A database number argument of COPY ... DB and MOVE: an integer in C `int` range, then a
/// database that exists.
fn db_index_arg(ctx: &Ctx, arg: &[u8]) -> Result<usize, CmdError> {
    let n = args::int(arg)?;
    let n = i32::try_from(n).map_err(|_| {
        CmdError::err("value is out of range, value must between -2147483648 and 2147483647")
    })?;
    usize::try_from(n)
        .ok()
        .filter(|&db| db < ctx.server.keyspace.databases())
        .ok_or(errors::DB_INDEX_OUT_OF_RANGE)
}

/// `DEL key [key ...]`
fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let removed = remove_keys(ctx, &args[1..]);
    ctx.reply.int(removed.len() as i64);
    if ctx.client.config.lazyfree_lazy_user_del {
        crate::lazyfree::free_entries(removed);
    }
    Ok(())
}

/// `UNLINK key [key ...]`: DEL whose large values are freed off the command path.
fn unlink(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let removed = remove_keys(ctx, &args[1..]);
    ctx.reply.int(removed.len() as i64);
    crate::lazyfree::free_entries(removed);
    Ok(())
}

/// Removes the live keys among `keys` from the current database; returns their entries so the
/// caller chooses where they are freed (after the locks are released, in any case).
fn remove_keys(ctx: &Ctx, keys: &[Bytes]) -> Vec<Entry> {
    let mut locked = ctx.lock(keys);
    let mut removed = Vec::new();
    for key in keys {
        if ctx.write(&mut locked, key).is_some()
            && let Some(entry) = locked.db(ctx.db(), key).remove(key)
        {
            ctx.notify(class::GENERIC, "del", key);
            removed.push(entry);
        }
    }
    drop(locked);
    ctx.add_dirty(removed.len() as u64);
    removed
}

/// `EXISTS key [key ...]`: a key named twice counts twice.
fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = &args[1..];
    let mut locked = ctx.lock(keys);
    let found = keys
        .iter()
        .filter(|key| lookup_no_touch(ctx, &mut locked, ctx.db(), key).is_some())
        .count();
    ctx.reply.int(found as i64);
    Ok(())
}

/// `TOUCH key [key ...]`: updates the access time even for a client in CLIENT NO-TOUCH mode,
/// as Valkey does (that is the command's whole purpose).
fn touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = &args[1..];
    let mut locked = ctx.lock(keys);
    let mut found = 0;
    for key in keys {
        if let Some(entry) = ctx.read(&mut locked, key) {
            if ctx.client.no_touch {
                ctx.client.access_policy.touch(&mut entry.access);
            }
            found += 1;
        }
    }
    ctx.reply.int(found);
    Ok(())
}

/// `TYPE key`
fn type_of(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let name = lookup_no_touch(ctx, &mut locked, ctx.db(), key)
        .map_or("none", |entry| entry.value.object_type().name());
    ctx.reply.simple(name);
    Ok(())
}

/// `RENAME key newkey`
fn rename(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if rename_generic(ctx, &args[1], &args[2], false)? {
        ctx.reply.ok();
    } else {
        ctx.reply.int(0);
    }
    Ok(())
}

/// `RENAMENX key newkey`
fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let renamed = rename_generic(ctx, &args[1], &args[2], true)?;
    ctx.reply.int(renamed as i64);
    Ok(())
}

/// Moves `from` to `to` in the current database, keeping its TTL. Returns whether the key was
/// renamed (false: RENAMENX found `to` taken, or the names are equal under RENAMENX).
fn rename_generic(ctx: &Ctx, from: &[u8], to: &[u8], only_if_new: bool) -> Result<bool, CmdError> {
    let db = ctx.db();
    let mut locked = ctx.lock(&[from, to]);
    if ctx.write(&mut locked, from).is_none() {
        return Err(errors::NO_SUCH_KEY);
    }
    if from == to {
        return Ok(!only_if_new);
    }
    let replaced = if ctx.write(&mut locked, to).is_some() {
        if only_if_new {
            return Ok(false);
        }
        locked.db(db, to).remove(to)
    } else {
        None
    };
    let Some(entry) = locked.db(db, from).remove(from) else {
        return Err(errors::NO_SUCH_KEY);
    };
    locked.db(db, to).insert(to, entry);
    ctx.notify(class::GENERIC, "rename_from", from);
    ctx.notify(class::GENERIC, "rename_to", to);
    crate::blocking::signal_key_added(ctx.server, db, to);
    drop(locked);
    drop(replaced);
    ctx.add_dirty(1);
    Ok(true)
}

/// `COPY source destination [DB destination-db] [REPLACE]`
fn copy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (from, to) = (&args[1], &args[2]);
    let src_db = ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if args::is(&args[i], "replace") {
            replace = true;
        } else if args::is(&args[i], "db") && i + 1 < args.len() {
            dst_db = db_index_arg(ctx, &args[i + 1])?;
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    if src_db == dst_db && from == to {
        return Err(errors::SAME_OBJECT);
    }
    let mut locked = ctx.lock(&[from, to]);
    let Some(source) = ctx.read(&mut locked, from) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let (value, expire_at) = (source.value.clone(), source.expire_at);
    let replaced = if ctx.write_in(&mut locked, dst_db, to).is_some() {
        if !replace {
            ctx.reply.int(0);
            return Ok(());
        }
        locked.db(dst_db, to).remove(to)
    } else {
        None
    };
    let mut entry = ctx.new_entry(value);
    entry.expire_at = expire_at;
    locked.db(dst_db, to).insert(to, entry);
    ctx.notify_in(class::GENERIC, "copy_to", dst_db, to);
    crate::blocking::signal_key_added(ctx.server, dst_db, to);
    drop(locked);
    drop(replaced);
    ctx.add_dirty(1);
    ctx.reply.int(1);
    Ok(())
}

/// `MOVE key db`: the key's shard is the same in every database, so one lock covers both ends.
fn move_key(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let src_db = ctx.db();
    let dst_db = db_index_arg(ctx, &args[2])?;
    if src_db == dst_db {
        return Err(errors::SAME_OBJECT);
    }
    let mut locked = ctx.lock(&[key]);
    let moved = ctx.write(&mut locked, key).is_some()
        && ctx.write_in(&mut locked, dst_db, key).is_none()
        && match locked.db(src_db, key).remove(key) {
            Some(entry) => {
                locked.db(dst_db, key).insert(key, entry);
                ctx.notify_in(class::GENERIC, "move_from", src_db, key);
                ctx.notify_in(class::GENERIC, "move_to", dst_db, key);
                crate::blocking::signal_key_added(ctx.server, dst_db, key);
                true
            }
            None => false,
        };
    drop(locked);
    if moved {
        ctx.add_dirty(1);
    }
    ctx.reply.int(moved as i64);
    Ok(())
}

/// `SWAPDB index1 index2`
fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let parse = |arg: &[u8], which: &str| {
        args::int(arg)
            .ok()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| CmdError::err(format!("invalid {which} DB index")))
    };
    let a = parse(&args[1], "first")?;
    let b = parse(&args[2], "second")?;
    let databases = ctx.server.keyspace.databases();
    let in_range = |n: i32| usize::try_from(n).ok().filter(|&db| db < databases);
    let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
        return Err(errors::DB_INDEX_OUT_OF_RANGE);
    };
    if a != b {
        let mut locked = ctx.lock_all();
        crate::transaction::touch_db(ctx.server, &mut locked, a, Some(b), ctx.now_ms);
        crate::transaction::touch_db(ctx.server, &mut locked, b, Some(a), ctx.now_ms);
        locked.swap_dbs(a, b);
        drop(locked);
        crate::blocking::signal_all_waited(ctx.server, Some(a));
        crate::blocking::signal_all_waited(ctx.server, Some(b));
    }
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// Whether a FLUSHDB/FLUSHALL frees the old contents in the background: the optional
/// `ASYNC`/`SYNC` argument, else the default (`lazyfree-lazy-user-flush`, which is "no"; the
/// configuration has no such directive yet).
fn flush_mode(ctx: &Ctx, args: &[Bytes]) -> Result<bool, CmdError> {
    match args {
        [_] => Ok(ctx.client.config.lazyfree_lazy_user_flush),
        [_, mode] if args::is(mode, "async") => Ok(true),
        [_, mode] if args::is(mode, "sync") => Ok(false),
        _ => Err(errors::SYNTAX),
    }
}

/// Frees detached databases, on a background thread when asked to. Called with no lock held.
fn free_databases(dbs: Vec<Db>, in_background: bool) {
    if in_background {
        crate::lazyfree::free_databases(dbs);
    }
}

/// `FLUSHDB [ASYNC|SYNC]`
fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let in_background = flush_mode(ctx, args)?;
    let mut locked = ctx.lock_all();
    crate::transaction::touch_db(ctx.server, &mut locked, ctx.db(), None, ctx.now_ms);
    crate::tracking::invalidate_all(ctx.server);
    let detached = locked.take_db(ctx.db());
    drop(locked);
    let removed: usize = detached.iter().map(Db::len).sum();
    free_databases(detached, in_background);
    crate::blocking::signal_all_waited(ctx.server, Some(ctx.db()));
    ctx.add_dirty(removed as u64);
    ctx.propagate_always();
    ctx.reply.ok();
    Ok(())
}

/// `FLUSHALL [ASYNC|SYNC]`
fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let in_background = flush_mode(ctx, args)?;
    // A save in progress would write the data being flushed: stop it (Valkey kills its
    // child), before taking the locks its saver may be waiting for.
    crate::persistence::abort_running(ctx.server);
    let mut locked = ctx.lock_all();
    for db in 0..ctx.server.keyspace.databases() {
        crate::transaction::touch_db(ctx.server, &mut locked, db, None, ctx.now_ms);
    }
    crate::tracking::invalidate_all(ctx.server);
    let detached: Vec<Db> = (0..ctx.server.keyspace.databases())
        .flat_map(|db| locked.take_db(db))
        .collect();
    drop(locked);
    let removed: usize = detached.iter().map(Db::len).sum();
    free_databases(detached, in_background);
    crate::blocking::signal_all_waited(ctx.server, None);
    ctx.add_dirty(removed as u64);
    ctx.propagate_always();
    crate::persistence::after_flushall(ctx.server, &ctx.client.config);
    ctx.reply.ok();
    Ok(())
}

/// `DBSIZE`
fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.server.keyspace.db_len(ctx.db());
    ctx.reply.int(n as i64);
    Ok(())
}

/// A KEYS or SCAN MATCH pattern; `*` alone matches every key, including the empty one the
/// glob matcher would reject.
fn key_filter(pattern: Option<&[u8]>) -> impl Fn(&[u8]) -> bool + '_ {
    let pattern = pattern.filter(|p| *p != b"*");
    move |key| pattern.is_none_or(|p| glob_match(p, key, false))
}

/// `KEYS pattern`: shard by shard, each locked only while it is read.
fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let matches = key_filter(Some(&args[1]));
    let db = ctx.db();
    let mut found: Vec<Box<[u8]>> = Vec::new();
    for shard in 0..SHARD_COUNT {
        let mut locked = ctx.server.keyspace.lock_shard(shard);
        if let Some(part) = locked.shard_db(shard, db) {
            part.for_each(|key, entry| {
                if !entry.is_expired(ctx.now_ms) && matches(key) {
                    found.push(key.into());
                }
            });
        }
    }
    ctx.reply.array_len(found.len());
    for key in &found {
        ctx.reply.bulk(key);
    }
    Ok(())
}

/// Parses a SCAN cursor as Valkey does: a canonical non-negative integer, or else whatever C's
/// `strtoull` accepts in full (leading whitespace, a sign, leading zeros; a minus sign negates
/// modulo 2^64). Anything else, or a value beyond 64 bits, is not a cursor.
pub fn parse_scan_cursor(arg: &[u8]) -> Option<u64> {
    if let Some(n) = ferrokv_protocol::number::parse_i64(arg) {
        return u64::try_from(n).ok();
    }
    let start = arg
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let mut rest = &arg[start..];
    let negative = match rest.first() {
        Some(b'-') => true,
        Some(b'+') => false,
        _ => {
            return parse_digits(rest);
        }
    };
    rest = &rest[1..];
    let magnitude = parse_digits(rest)?;
    Some(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &c| {
        if c.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
///
/// The client's cursor is `(table cursor << SHARD_BITS) | shard`: shards are walked in index
/// order, each with its own table's reverse-binary cursor, so the guarantee of a chained
/// table's SCAN (a key present for the whole iteration is returned) holds shard by shard.
/// Like Valkey, one call visits buckets until it has looked at COUNT keys (before MATCH and
/// TYPE filter them) or has visited COUNT*10 non-empty-table buckets; an empty table costs
/// only its lock, so sparse databases are still covered in one call.
fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[1]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let options = scan_options::parse(&args[2..], ScanFamily::Keys)?;
    let matches = key_filter(options.pattern);
    let db = ctx.db();
    let now_ms = ctx.now_ms;
    let max_steps = options.count.saturating_mul(10);

    let mut shard = (cursor & (SHARD_COUNT as u64 - 1)) as usize;
    let mut table_cursor = cursor >> SHARD_BITS;
    let mut sampled = 0u64;
    let mut steps = 0u64;
    let mut found: Vec<Box<[u8]>> = Vec::new();
    let mut expired: Vec<Box<[u8]>> = Vec::new();
    let next_cursor = loop {
        let mut locked = ctx.server.keyspace.lock_shard(shard);
        if let Some(part) = locked.shard_db(shard, db) {
            while !part.is_empty() {
                table_cursor = part.scan_step(table_cursor, |key, entry| {
                    sampled += 1;
                    // Valkey filters by TYPE and MATCH first: only a key that passes both
                    // is expired by being met.
                    let wanted = options
                        .object_type
                        .is_none_or(|t| entry.value.object_type() == t)
                        && matches(key);
                    if !wanted {
                        return;
                    }
                    if entry.is_expired(now_ms) {
                        expired.push(key.into());
                    } else {
                        found.push(key.into());
                    }
                });
                steps += 1;
                if table_cursor == 0 || sampled >= options.count || steps >= max_steps {
                    break;
                }
            }
            // Expired keys met on the way are deleted, as a read of them would.
            for key in expired.drain(..) {
                part.get(&key, now_ms);
            }
            if part.is_empty() {
                table_cursor = 0;
            }
        }
        drop(locked);
        if table_cursor != 0 {
            break (table_cursor << SHARD_BITS) | shard as u64;
        }
        shard += 1;
        if shard == SHARD_COUNT {
            break 0;
        }
        if sampled >= options.count || steps >= max_steps {
            break shard as u64;
        }
    };
    ctx.reply.array_len(2);
    ctx.reply
        .bulk(itoa::Buffer::new().format(next_cursor).as_bytes());
    ctx.reply.array_len(found.len());
    for key in &found {
        ctx.reply.bulk(key);
    }
    Ok(())
}

/// `RANDOMKEY`: picks a shard weighted by its number of keys, then a random key in it. An
/// expired key drawn is deleted and the draw repeated; after a bounded number of draws (a
/// database of mostly expired keys) it falls back to the first live key from a random shard
/// on, so the command always ends.
fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const DRAWS: usize = 100;
    let db = ctx.db();
    let now_ms = ctx.now_ms;
    let keyspace = &ctx.server.keyspace;
    let lens = keyspace.shard_lens(db);
    let total: usize = lens.iter().sum();
    let mut rng = rand::rng();
    let mut chosen: Option<Box<[u8]>> = None;
    let mut last_expired: Option<Box<[u8]>> = None;
    if total > 0 {
        for _ in 0..DRAWS {
            let mut pick = rng.random_range(0..total);
            let shard = lens
                .iter()
                .position(|&len| {
                    if pick < len {
                        true
                    } else {
                        pick -= len;
                        false
                    }
                })
                .unwrap_or(SHARD_COUNT - 1);
            let mut locked = keyspace.lock_shard(shard);
            let Some(part) = locked.shard_db(shard, db) else {
                continue;
            };
            let Some((key, entry)) = part.random_entry(&mut rng) else {
                continue;
            };
            let key: Box<[u8]> = key.into();
            if !entry.is_expired(now_ms) {
                chosen = Some(key);
                break;
            }
            part.get(&key, now_ms);
            last_expired = Some(key);
        }
        if chosen.is_none() {
            chosen = first_live_key(ctx, rng.random_range(0..SHARD_COUNT));
        }
        // A replica, or a server whose writes are paused, keeps expired keys: when nothing
        // else is left, Valkey answers with one of them rather than nil (or a loop).
        if chosen.is_none() && ferrokv_store::replica_view::keep_expired_keys() {
            chosen = last_expired;
        }
    }
    match chosen {
        Some(key) => ctx.reply.bulk(&key),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// The first key not yet expired, walking the shards from `start` round the ring.
fn first_live_key(ctx: &Ctx, start: usize) -> Option<Box<[u8]>> {
    let db = ctx.db();
    (0..SHARD_COUNT).find_map(|i| {
        let shard = (start + i) % SHARD_COUNT;
        let mut locked = ctx.server.keyspace.lock_shard(shard);
        let part = locked.shard_db(shard, db)?;
        let mut cursor = 0;
        let mut live = None;
        loop {
            cursor = part.scan_step(cursor, |key, entry| {
                if live.is_none() && !entry.is_expired(ctx.now_ms) {
                    live = Some(key.into());
                }
            });
            if live.is_some() || cursor == 0 {
                return live;
            }
        }
    })
}

/// Runs `reply` on the entry of the key OBJECT names (`args[2]`), or replies nil if there is
/// none. OBJECT never updates the access time.
fn with_object(
    ctx: &mut Ctx,
    args: &[Bytes],
    reply: impl FnOnce(&mut Ctx, &Entry) -> CmdResult,
) -> CmdResult {
    let key = &args[2];
    let mut locked = ctx.lock(&[key]);
    match lookup_no_touch(ctx, &mut locked, ctx.db(), key) {
        Some(entry) => reply(ctx, entry),
        None => {
            ctx.reply.null();
            Ok(())
        }
    }
}

/// `OBJECT ENCODING key`
fn object_encoding(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    with_object(ctx, args, |ctx, entry| {
        ctx.reply.bulk(entry.value.encoding().as_bytes());
        Ok(())
    })
}

/// `OBJECT REFCOUNT key`: values are never shared between keys here, as in Valkey 9, where
/// the key is embedded in its value object.
fn object_refcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    with_object(ctx, args, |ctx, _| {
        ctx.reply.int(1);
        Ok(())
    })
}

const POLICY_SWITCH_NOTE: &str = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// `OBJECT FREQ key`
fn object_freq(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    with_object(ctx, args, |ctx, entry| {
        let policy = ctx.client.access_policy;
        if !policy.is_lfu() {
            return Err(CmdError::err(format!(
                "An LFU maxmemory policy is not selected, access frequency not tracked. {POLICY_SWITCH_NOTE}"
            )));
        }
        ctx.reply.int(i64::from(policy.lfu_frequency(entry.access)));
        Ok(())
    })
}

/// `OBJECT IDLETIME key`
fn object_idletime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    with_object(ctx, args, |ctx, entry| {
        if ctx.client.access_policy.is_lfu() {
            return Err(CmdError::err(format!(
                "An LFU maxmemory policy is selected, idle time not tracked. {POLICY_SWITCH_NOTE}"
            )));
        }
        ctx.reply.int(lru_idle_seconds(entry.access) as i64);
        Ok(())
    })
}

/// `OBJECT HELP`
fn object_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Print this help.",
    ];
    ctx.reply.array_len(LINES.len());
    for line in LINES {
        ctx.reply.simple(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_scan_cursor;

    #[test]
    fn scan_cursor_follows_strtoull() {
        assert_eq!(parse_scan_cursor(b"0"), Some(0));
        assert_eq!(parse_scan_cursor(b"01"), Some(1));
        assert_eq!(parse_scan_cursor(b"+1"), Some(1));
        assert_eq!(parse_scan_cursor(b" 1"), Some(1));
        assert_eq!(parse_scan_cursor(b"-0"), Some(0));
        assert_eq!(parse_scan_cursor(b" -1"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b"-1"[..],
            b"",
            b" ",
            b"-",
            b"1 ",
            b"1abc",
            b"0x10",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_scan_cursor(bad), None, "{}", bad.escape_ascii());
        }
    }
}
