//! DEBUG: test and diagnosis helpers. Dispatch refuses it unless `enable-debug-command`
//! allows the client (the command carries the `protected` flag).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use ferrokv_store::value::EMBSTR_SIZE_LIMIT;
use ferrokv_store::{StrValue, Value, clock};

use crate::cmd::command::write_help;
use crate::cmd::debug_digest;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{CommandSpec, flag};

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("debug", -2, "server")
    .flags(flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::PROTECTED)
    .doc(
        "1.0.0",
        "Helpers for testing and diagnosing the server.",
        "Depends on the subcommand.",
    )
    .handler(debug)];

static ACTIVE_EXPIRE: AtomicBool = AtomicBool::new(true);
static SKIP_CHECKSUM_VALIDATION: AtomicBool = AtomicBool::new(false);
static CRON_PAUSED: AtomicBool = AtomicBool::new(false);
static ENFORCE_REPLY_LIST: AtomicBool = AtomicBool::new(false);
static PANIC_IS_FATAL: AtomicBool = AtomicBool::new(false);

/// Whether the panic being reported must end the process: DEBUG PANIC's does, as Valkey's
/// does; any other panic ends only the task it happens in.
pub fn panic_is_fatal() -> bool {
    PANIC_IS_FATAL.load(Relaxed)
}

/// Whether RESTORE accepts a payload whose checksum does not match (DEBUG
/// SET-SKIP-CHECKSUM-VALIDATION, for tests that hand-craft payloads).
pub fn skip_checksum_validation() -> bool {
    SKIP_CHECKSUM_VALIDATION.load(Relaxed)
}

/// DEBUG CLIENT-ENFORCE-REPLY-LIST: Valkey then keeps every reply in its list of 16 KiB
/// blocks, which its output limits count from the first byte; the limits here count
/// pending replies the same way while it is on.
pub fn enforce_reply_list() -> bool {
    ENFORCE_REPLY_LIST.load(Relaxed)
}

/// Whether the cron's periodic work is paused (DEBUG PAUSE-CRON).
pub fn cron_paused() -> bool {
    CRON_PAUSED.load(Relaxed)
}

/// Whether the cron's active expiry runs (DEBUG SET-ACTIVE-EXPIRE turns it off for tests).
pub fn active_expire_enabled() -> bool {
    ACTIVE_EXPIRE.load(Relaxed)
}

fn wrong_use(sub: &[u8]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// C's `atof`/`atoi` leniency, which these test helpers keep: a bad number reads as 0.
fn lenient_f64(arg: &[u8]) -> f64 {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0.0)
}

/// DEBUG WORKERS (ferrokv's own): one line per worker thread — whether it serves clients
/// now, how many connections it has and is asked to hand on, and whether the caller's
/// connection is on it (see `worker_load`).
fn workers(ctx: &mut Ctx) -> CmdResult {
    let Some(loads) = crate::worker_load::get() else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    let current = crate::worker_load::current();
    ctx.reply.array_len(loads.count());
    for worker in 0..loads.count() {
        let line = format!(
            "worker={worker} active={} connections={} shed={} current={}",
            if worker < loads.active() { "yes" } else { "no" },
            loads.connections(worker),
            loads.shed(worker),
            if current == Some(worker) { "yes" } else { "no" },
        );
        ctx.reply.bulk(line.as_bytes());
    }
    Ok(())
}

fn debug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let argc = args.len();
    match (sub.as_str(), argc) {
        ("help", 2) => help(ctx),
        ("sleep", 3) => {
            let seconds = lenient_f64(&args[2]);
            if seconds > 0.0 && seconds.is_finite() {
                // DEBUG SLEEP stops Valkey's one event loop: this worker sleeps holding every
                // shard, so that commands on the other workers wait for it too (tests use it
                // to make a server unable to reply).
                let every_shard = ctx.lock_all();
                std::thread::sleep(Duration::from_secs_f64(seconds));
                drop(every_shard);
            }
            ctx.reply.ok();
            Ok(())
        }
        ("set-active-expire", 3) => switch(ctx, &ACTIVE_EXPIRE, &args[2]),
        ("aof-flush-sleep", 3) => {
            // Valkey reads the number leniently (atoi): anything else is 0, no sleep.
            let micros = String::from_utf8_lossy(&args[2])
                .trim()
                .parse()
                .unwrap_or(0u64);
            ctx.server.aof.set_flush_sleep(micros);
            ctx.reply.ok();
            Ok(())
        }
        ("set-skip-checksum-validation", 3) => switch(ctx, &SKIP_CHECKSUM_VALIDATION, &args[2]),
        ("pause-cron", 3) => switch(ctx, &CRON_PAUSED, &args[2]),
        ("client-enforce-reply-list", 3) => switch(ctx, &ENFORCE_REPLY_LIST, &args[2]),
        // A switch of Valkey's hash table resizing, which ferrokv's table does not have:
        // accepted so that scripts written for Valkey run.
        ("dict-resizing", 3) => {
            ctx.reply.ok();
            Ok(())
        }
        ("quicklist-packed-threshold", 3) => {
            // Lists here have no packed/plain node split; the value is checked as Valkey
            // checks it (up to 1 MB under 4 GB) and otherwise has no effect.
            let valid =
                ferrokv_config::values::parse_memory_u64(&String::from_utf8_lossy(&args[2]))
                    .is_some_and(|n| n <= (1 << 32) - (1 << 20));
            if !valid {
                return Err(CmdError::err(
                    "argument must be a memory value bigger than 1 and smaller than 4gb",
                ));
            }
            ctx.reply.ok();
            Ok(())
        }
        ("config-rewrite-force-all", 2) => crate::cmd::config::rewrite(ctx, true)
            .map_err(|reason| CmdError::err(format!("CONFIG-REWRITE-FORCE-ALL failed: {reason}"))),
        ("protocol", 3) => crate::cmd::debug_protocol::reply(ctx, &args[2]),
        ("populate", 3..=5) => populate(ctx, args),
        ("workers", 2) => workers(ctx),
        ("reload", _) => {
            let mut options = crate::persistence::ReloadOptions {
                save: true,
                flush: true,
                merge: false,
            };
            for option in &args[2..] {
                match option.to_ascii_lowercase().as_slice() {
                    b"merge" => options.merge = true,
                    b"noflush" => options.flush = false,
                    b"nosave" => options.save = false,
                    _ => {
                        return Err(CmdError::err(
                            "DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                        ));
                    }
                }
            }
            crate::persistence::debug_reload(ctx.server, options)?;
            ctx.reply.ok();
            Ok(())
        }
        ("loadaof", 2) => {
            // The replayed commands are in the AOF already: neither they nor DEBUG itself
            // (whose unit sees the dataset change) go out again.
            ctx.propagate_none();
            let server = ctx.server;
            crate::propagate::unarmed(|| crate::aof::debug_loadaof(server))?;
            ctx.reply.ok();
            Ok(())
        }
        ("object", 3 | 4) => object(ctx, args),
        ("digest", 2) => {
            let digest = debug_digest::dataset_digest(&ctx.server.keyspace, ctx.now_ms);
            ctx.reply.simple(&digest);
            Ok(())
        }
        ("digest-value", _) => {
            let db = ctx.db();
            let keys = &args[2..];
            ctx.reply.array_len(keys.len());
            for key in keys {
                // Read as the dataset digest reads: an expired key counts as missing, and
                // nothing is expired, touched or propagated by looking.
                let mut locked = ctx.lock(&[key]);
                let digest = debug_digest::value_digest(
                    locked
                        .db(db, key)
                        .peek(key)
                        .filter(|e| !e.is_expired(ctx.now_ms)),
                    ctx.now_ms,
                );
                drop(locked);
                ctx.reply.simple(&digest);
            }
            Ok(())
        }
        ("panic", 2) => {
            PANIC_IS_FATAL.store(true, Relaxed);
            panic!("DEBUG PANIC called at Unix time {}", clock::now_ms() / 1000);
        }
        ("log", 3) => {
            log::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            ctx.reply.ok();
            Ok(())
        }
        ("error", 3) => Err(CmdError::new(
            String::from_utf8_lossy(&args[2]).into_owned(),
        )),
        _ => Err(wrong_use(&args[1])),
    }
}

/// A DEBUG switch set with C's `atoi` leniency (anything but a non-zero number is off).
fn switch(ctx: &mut Ctx, flag: &AtomicBool, arg: &[u8]) -> CmdResult {
    flag.store(lenient_f64(arg) as i64 != 0, Relaxed);
    ctx.reply.ok();
    Ok(())
}

/// `DEBUG POPULATE count [prefix] [size]`: creates `prefix:N` (default `key:N`) holding
/// `value:N`, cut or zero-padded to `size` bytes when a size is given; existing keys are
/// left alone.
fn populate(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let out_of_range = || CmdError::err("value is out of range, must be positive");
    let positive = |arg: &[u8]| {
        ferrokv_protocol::number::parse_i64(arg)
            .filter(|&n| n >= 0)
            .ok_or_else(out_of_range)
    };
    let count = positive(&args[1 + 1])?;
    let prefix: &[u8] = args.get(3).map_or(b"key", |p| &p[..]);
    let size = match args.get(4) {
        Some(arg) => positive(arg)? as usize,
        None => 0,
    };
    let db = ctx.db();
    let mut created = 0;
    for n in 0..count {
        let mut key = prefix.to_vec();
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        let mut value = format!("value:{n}").into_bytes();
        if size > 0 {
            value.resize(size, 0);
        }
        // Created whole, like Valkey's: embstr when short, raw otherwise, never int.
        let value = if value.len() <= EMBSTR_SIZE_LIMIT {
            StrValue::Embstr(value)
        } else {
            StrValue::Raw(value)
        };
        // One key at a time: a large POPULATE never holds a shard lock for long.
        let mut locked = ctx.lock(&[&key]);
        if locked.db(db, &key).contains_live(&key, ctx.now_ms) {
            continue;
        }
        let entry = ctx.new_entry(Value::Str(value));
        locked.db(db, &key).insert(&key, entry);
        created += 1;
    }
    ctx.add_dirty(created);
    ctx.reply.ok();
    Ok(())
}

/// Bytes a string takes in an RDB file without compression: integers in 8, 16 or 32 bits
/// take 1 + width bytes, other strings a 1, 2 or 5 byte length and their bytes.
fn serialized_length(value: &StrValue) -> usize {
    if let StrValue::Int(n) = value {
        if i8::try_from(*n).is_ok() {
            return 2;
        }
        if i16::try_from(*n).is_ok() {
            return 3;
        }
        if i32::try_from(*n).is_ok() {
            return 5;
        }
    }
    let len = value.len();
    let prefix = if len < 1 << 6 {
        1
    } else if len < 1 << 14 {
        2
    } else {
        5
    };
    prefix + len
}

/// `DEBUG OBJECT key [fast]`: one line in Valkey's format about the key's value.
fn object(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Like Valkey, any third word other than `fast` is ignored.
    let fast = args
        .get(3)
        .is_some_and(|arg| arg.eq_ignore_ascii_case(b"fast"));
    let key = &args[2];
    let db = ctx.db();
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = locked.db(db, key).get(key, ctx.now_ms) else {
        return Err(errors::NO_SUCH_KEY);
    };
    let address = std::ptr::from_ref(&entry.value) as usize;
    let mut line = format!(
        "Value at:{address:#x} refcount:1 encoding:{}",
        entry.value.encoding()
    );
    if !fast {
        #[allow(unreachable_patterns)]
        let length = match &entry.value {
            Value::Str(s) => serialized_length(s),
            // Other types: their in-memory size stands in until RDB encoding exists.
            other => other.heap_size(),
        };
        line.push_str(&format!(" serializedlength:{length}"));
    }
    let lru = entry.access & clock::LRU_CLOCK_MAX;
    line.push_str(&format!(
        " lru:{lru} lru_seconds_idle:{}",
        clock::idle_seconds(lru)
    ));
    if let Value::List(list) = &entry.value
        && let Some(ql) = list.quicklist_stats()
    {
        let total = list.len() as f64;
        line.push_str(&format!(
            " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:{}",
            ql.nodes,
            total / ql.nodes.max(1) as f64,
            ql.fill,
            u8::from(ql.compress_depth != 0)
        ));
        if !fast {
            line.push_str(&format!(" ql_uncompressed_size:{}", ql.raw_bytes));
        }
    }
    drop(locked);
    ctx.reply.simple(&line);
    Ok(())
}

fn help(ctx: &mut Ctx) -> CmdResult {
    write_help(
        ctx.reply,
        "DEBUG",
        &[
            "AOF-FLUSH-SLEEP <microsec>",
            "    Sleep this long before each write of the AOF (0: no sleep).",
            "CONFIG-REWRITE-FORCE-ALL",
            "    CONFIG REWRITE that writes every directive, those at their default too.",
            "DIGEST",
            "    The SHA1 fingerprint of the whole dataset, in hex (40 zeros when it is empty).",
            "DIGEST-VALUE <key> [<key> ...]",
            "    The fingerprint of each key's value (40 zeros for a missing key).",
            "ERROR <string>",
            "    Reply with <string> as an error.",
            "LOADAOF",
            "    Write out the AOF, then replace the dataset with what the AOF files hold.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "OBJECT <key> [fast]",
            "    Show how the value at <key> is stored (fast: leave out the costly fields).",
            "PAUSE-CRON <0|1>",
            "    Stop (1) or restart (0) the server's periodic work: expiry, eviction, statistics.",
            "PANIC",
            "    Stop the server at once, with a bug report in the log.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys <prefix>:<n> (default prefix: key) holding value:<n>,",
            "    cut or zero-padded to <size> bytes when given. Existing keys are kept.",
            "PROTOCOL <type>",
            "    Reply with a test value of a RESP type: string, integer, double, bignum, null,",
            "    array, set, map, attrib, push, verbatim, true or false.",
            "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
            "    Write the dataset to the RDB file and load it back from there.",
            "    * NOSAVE: load the RDB file as it is, without writing it first.",
            "    * NOFLUSH: keep the data and functions in memory; a key or library the",
            "      file also has fails the load, unless MERGE, which lets the file's win.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Turn the background expiry of keys off (0) or on (1).",
            "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
            "    Let RESTORE accept payloads whose checksum does not match (1).",
            "SLEEP <seconds>",
            "    Stop serving clients for <seconds> (decimals allowed).",
        ],
    );
    Ok(())
}
