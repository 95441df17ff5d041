//! DUMP and RESTORE: a key's value in the RDB payload format Redis and Valkey exchange
//! (type byte, value, RDB version, CRC-64), see `ferrokv_rdb::dump`; MIGRATE, which moves
//! keys to another instance in that format (`migrate.rs`).

mod migrate;

use std::borrow::Cow::Borrowed;

use bytes::Bytes;
use ferrokv_rdb::dump::{self as payload, RestoreError};
use ferrokv_rdb::format::Dialect;
use ferrokv_rdb::value::ReadOptions;
use ferrokv_store::events::class;
use ferrokv_store::types::hash::HashLimits;
use ferrokv_store::types::zset::ZSetLimits;
use ferrokv_store::{NO_EXPIRE, StrValue, Value, clock};

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};

const BUSYKEY: CmdError = CmdError(Borrowed("BUSYKEY Target key name already exists."));
const BAD_PAYLOAD: CmdError = CmdError(Borrowed("ERR DUMP payload version or checksum are wrong"));
const BAD_DATA: CmdError = CmdError(Borrowed("ERR Bad data format"));
const BAD_TTL: CmdError = CmdError(Borrowed("ERR Invalid TTL value, must be >= 0"));
const BAD_IDLETIME: CmdError = CmdError(Borrowed("ERR Invalid IDLETIME value, must be >= 0"));
const BAD_FREQ: CmdError = CmdError(Borrowed("ERR Invalid FREQ value, must be >= 0 and <= 255"));

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("dump", 2, "generic")
        .flags(flag::READONLY)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .tips(&["nondeterministic_output"])
        .doc(
            "2.6.0",
            "Serializes the value stored at a key into the portable RDB payload format.",
            "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
        )
        .handler(dump),
    CommandSpec::new("restore", -4, "generic")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(cat::KEYSPACE | cat::DANGEROUS)
        .keys(&[KeySpec::single(1, kf::OW | kf::UPDATE)])
        .doc(
            "2.6.0",
            "Creates a key from a payload that DUMP produced.",
            "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        )
        .handler(restore),
    // What MIGRATE sends in cluster mode: RESTORE that may reach a slot being imported.
    CommandSpec::new("restore-asking", -4, "server")
        .flags(flag::WRITE | flag::DENYOOM | flag::ASKING)
        .categories(cat::KEYSPACE | cat::DANGEROUS)
        .keys(&[KeySpec::single(1, kf::OW | kf::UPDATE)])
        .doc(
            "3.0.0",
            "RESTORE as one cluster node sends it to another while it migrates a slot.",
            "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        )
        .handler(restore),
    migrate::SPEC,
];

/// `DUMP key`
fn dump(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        drop(locked);
        ctx.reply.null();
        return Ok(());
    };
    let bytes = payload::dump(&entry.value, ctx.client.config.rdbcompression);
    drop(locked);
    ctx.reply.bulk(&bytes);
    Ok(())
}

/// What RESTORE's options ask for.
struct RestoreOptions {
    replace: bool,
    absttl: bool,
    idle_seconds: Option<i64>,
    freq: Option<i64>,
}

/// Options in any order, as Valkey parses them: IDLETIME and FREQ exclude each other
/// (naming both is a syntax error), and a bad number fails at once.
fn parse_options(args: &[Bytes]) -> Result<RestoreOptions, CmdError> {
    let mut options = RestoreOptions {
        replace: false,
        absttl: false,
        idle_seconds: None,
        freq: None,
    };
    let mut i = 4;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args::is(&args[i], "replace") {
            options.replace = true;
        } else if args::is(&args[i], "absttl") {
            options.absttl = true;
        } else if args::is(&args[i], "idletime") && has_value && options.freq.is_none() {
            let idle = args::int(&args[i + 1])?;
            if idle < 0 {
                return Err(BAD_IDLETIME);
            }
            options.idle_seconds = Some(idle);
            i += 1;
        } else if args::is(&args[i], "freq") && has_value && options.idle_seconds.is_none() {
            let freq = args::int(&args[i + 1])?;
            if !(0..=255).contains(&freq) {
                return Err(BAD_FREQ);
            }
            options.freq = Some(freq);
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    Ok(options)
}

/// The encoding limits of the configuration, which shape restored values.
fn read_options(ctx: &Ctx) -> ReadOptions {
    read_options_for(&ctx.client.config)
}

/// The encoding limits of `config`, which shape restored and loaded values.
pub fn read_options_for(config: &ferrokv_config::Config) -> ReadOptions {
    let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    let mut options = ReadOptions::new(Dialect::Redis(ferrokv_rdb::format::WRITE_VERSION));
    options.list =
        ferrokv_store::ListLimits::new(config.list_max_listpack_size, config.list_compress_depth);
    options.set = ferrokv_store::SetLimits {
        intset_entries: size(config.set_max_intset_entries),
        listpack_entries: size(config.set_max_listpack_entries),
        listpack_value: size(config.set_max_listpack_value),
    };
    options.hash = HashLimits {
        max_entries: size(config.hash_max_listpack_entries),
        max_value: size(config.hash_max_listpack_value),
    };
    options.zset = ZSetLimits {
        max_listpack_entries: size(config.zset_max_listpack_entries),
        max_listpack_value: size(config.zset_max_listpack_value),
    };
    options.relaxed_version = config.rdb_version_check == "relaxed";
    options
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`
///
/// Checks in Valkey's order: options, then an existing key (BUSYKEY), then the TTL, then
/// the payload's footer, then its contents. A TTL already in the past stores nothing (and
/// deletes the replaced key) but still answers OK.
fn restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let options = parse_options(args)?;
    let mut locked = ctx.lock(&[key]);
    if !options.replace && ctx.write(&mut locked, key).is_some() {
        return Err(BUSYKEY);
    }
    let ttl = args::int(&args[2])?;
    if ttl < 0 {
        return Err(BAD_TTL);
    }
    let verify = !crate::cmd::debug::skip_checksum_validation();
    let value = match payload::restore_checked(&args[3], &read_options(ctx), verify) {
        Ok(value) => value,
        Err(RestoreError::VersionOrChecksum) => return Err(BAD_PAYLOAD),
        Err(RestoreError::BadData(_)) => return Err(BAD_DATA),
    };
    let value = match value {
        // Loaded strings get the encoding a string stored under this key would have.
        Value::Str(StrValue::Embstr(bytes) | StrValue::Raw(bytes)) => {
            Value::Str(StrValue::for_key(&bytes, key.len(), false))
        }
        other => other,
    };
    let expire_at = match ttl {
        0 => NO_EXPIRE,
        ttl if options.absttl => ttl,
        // Overflow wraps, as in Valkey, into a time long past.
        ttl => ttl.wrapping_add(ctx.now_ms),
    };
    let deleted = if options.replace {
        ctx.write(&mut locked, key)
            .is_some()
            .then(|| locked.db(ctx.db(), key).remove(key))
            .flatten()
    } else {
        None
    };
    if expire_at != NO_EXPIRE && expire_at <= ctx.now_ms {
        let had_key = deleted.is_some();
        if had_key {
            ctx.notify(class::GENERIC, "del", key);
            let name = if ctx.client.config.lazyfree_lazy_server_del {
                "UNLINK"
            } else {
                "DEL"
            };
            ctx.propagate_as(crate::argv![name, key]);
        }
        drop(locked);
        drop(deleted);
        if had_key {
            ctx.add_dirty(1);
        }
        ctx.reply.ok();
        return Ok(());
    }
    let mut entry = ctx.new_entry(value);
    entry.expire_at = expire_at;
    let policy = ctx.client.access_policy;
    match (options.freq, options.idle_seconds) {
        (Some(freq), _) if policy.is_lfu() => entry.access = (entry.access & !0xff) | freq as u32,
        (_, Some(idle)) if !policy.is_lfu() => entry.access = idle_stamp(idle),
        _ => {}
    }
    if expire_at != NO_EXPIRE && !options.absttl && ctx.propagating() {
        // Valkey propagates the absolute time: the TTL argument rewritten, ABSTTL added.
        let mut rewritten = args.to_vec();
        rewritten[2] = Bytes::copy_from_slice(itoa::Buffer::new().format(expire_at).as_bytes());
        rewritten.push(Bytes::from_static(b"ABSTTL"));
        ctx.propagate_as(rewritten);
    }
    let db = ctx.db();
    locked.db(db, key).insert(key, entry);
    ctx.notify(class::GENERIC, "restore", key);
    crate::blocking::signal_key_added(ctx.server, db, key);
    drop(locked);
    drop(deleted);
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// The LRU stamp of a key last accessed `idle` seconds ago: the clock wraps, so an idle
/// time past its range is taken as the longest it can show, as Valkey 9.1 does.
fn idle_stamp(idle: i64) -> u32 {
    // The clock OBJECT IDLETIME reads, not the cached one, so that the idle time reads back.
    let now = ((clock::now_ms() / 1000) as u32) & clock::LRU_CLOCK_MAX;
    match u32::try_from(idle) {
        Ok(idle) if idle <= now => now - idle,
        _ => now.wrapping_add(1) & clock::LRU_CLOCK_MAX,
    }
}
