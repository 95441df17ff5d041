//! MEMORY, and the memory figures INFO shares with it.
//!
//! The allocator is chosen by the binary, so its statistics reach this crate through a probe
//! the binary installs ([`set_allocator_probe`]). Per-key sizes are estimates from the
//! in-memory layout (entry, key, value buffers, table slot), not allocator measurements.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use ferrokv_store::Entry;

use crate::cmd::args;
use crate::cmd::command::write_help;
use crate::context::{CmdResult, Ctx, errors};
use crate::server::{Server, used_memory};
use crate::spec::{CommandSpec, KeySpec, flag, key_flag as kf};

const SPECIAL: &[&str] = &[
    "nondeterministic_output",
    "request_policy:all_shards",
    "response_policy:special",
];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("memory", -2, "server")
    .doc(
        "4.0.0",
        "Container for the memory inspection commands.",
        "Depends on the subcommand.",
    )
    .subcommands(&[
        CommandSpec::new("doctor", 2, "server")
            .tips(SPECIAL)
            .doc("4.0.0", "Comments on the server's memory use.", "O(1)")
            .handler(doctor),
        CommandSpec::new("help", 2, "server")
            .flags(flag::LOADING | flag::STALE)
            .doc("4.0.0", "Lists the MEMORY subcommands.", "O(1)")
            .handler(help),
        CommandSpec::new("malloc-stats", 2, "server")
            .flags(flag::LOADING)
            .tips(SPECIAL)
            .doc("4.0.0", "Reports the allocator's own statistics.", "O(1)")
            .handler(malloc_stats),
        CommandSpec::new("purge", 2, "server")
            .flags(flag::LOADING)
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
            .doc(
                "4.0.0",
                "Asks the allocator to return unused memory.",
                "O(1)",
            )
            .handler(purge),
        CommandSpec::new("stats", 2, "server")
            .tips(SPECIAL)
            .doc("4.0.0", "Breaks the server's memory use down.", "O(1)")
            .handler(stats),
        CommandSpec::new("usage", -3, "server")
            .flags(flag::READONLY)
            .keys(&[KeySpec::single(2, kf::RO)])
            .doc(
                "4.0.0",
                "Estimates the bytes a key and its value occupy.",
                "O(N), N being the number of samples",
            )
            .handler(usage),
    ])];

/// The allocator's view of the heap, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllocatorStats {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub retained: u64,
}

pub struct AllocatorProbe {
    /// As INFO mem_allocator shows it, e.g. `jemalloc-5.3.0`.
    pub name: String,
    pub stats: fn() -> AllocatorStats,
    /// Returns unused memory to the system (MEMORY PURGE).
    pub purge: fn(),
}

static PROBE: OnceLock<AllocatorProbe> = OnceLock::new();
static STARTUP: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

/// Installs the allocator probe and takes the current allocation as the start-up baseline
/// (INFO used_memory_startup): call it once the server is built, before clients arrive.
pub fn set_allocator_probe(probe: AllocatorProbe) {
    let _ = PROBE.set(probe);
    STARTUP.store(used_memory(), Relaxed);
    note_used_memory();
}

/// Reads used memory and raises the peak if needed.
pub fn note_used_memory() -> u64 {
    let used = used_memory();
    PEAK.fetch_max(used, Relaxed);
    used
}

fn allocator_stats(used: u64, rss: u64) -> AllocatorStats {
    match PROBE.get() {
        Some(probe) => (probe.stats)(),
        None => AllocatorStats {
            allocated: used,
            active: used,
            resident: rss,
            retained: 0,
        },
    }
}

fn read_proc_number(path: &str, field: usize) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.split_whitespace()
                .nth(field)
                .and_then(|f| f.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident set size of the process, from `/proc/self/statm` (pages of 4 KiB).
fn rss_bytes() -> u64 {
    read_proc_number("/proc/self/statm", 1) * 4096
}

fn system_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Everything INFO memory and MEMORY STATS report, gathered once.
pub struct MemoryReport {
    pub used: u64,
    pub rss: u64,
    pub peak: u64,
    pub startup: u64,
    pub clients: u64,
    /// Per database with keys: (index, keys, table bytes).
    pub dbs: Vec<(usize, u64, u64)>,
    pub overhead: u64,
    pub allocator: AllocatorStats,
    pub allocator_name: String,
    pub system_total: u64,
}

impl MemoryReport {
    pub fn collect(server: &Server) -> MemoryReport {
        let used = note_used_memory();
        let rss = rss_bytes();
        let clients: u64 = server
            .clients
            .all()
            .iter()
            .map(|c| (c.query_buffer.load(Relaxed) + c.output_buffer.load(Relaxed)) as u64)
            .sum();
        let mut dbs = Vec::new();
        for db in 0..server.keyspace.databases() {
            let (keys, _) = server.keyspace.db_counts(db);
            if keys > 0 {
                dbs.push((db, keys as u64, table_bytes(server, db)));
            }
        }
        let startup = STARTUP.load(Relaxed);
        let overhead = startup + clients + dbs.iter().map(|d| d.2).sum::<u64>();
        MemoryReport {
            used,
            rss,
            peak: PEAK.load(Relaxed).max(used),
            startup,
            clients,
            dbs,
            overhead,
            allocator: allocator_stats(used, rss),
            allocator_name: PROBE
                .get()
                .map_or_else(|| "unknown".to_string(), |p| p.name.clone()),
            system_total: system_memory(),
        }
    }

    pub fn dataset(&self) -> u64 {
        self.used.saturating_sub(self.overhead)
    }

    pub fn keys(&self) -> u64 {
        self.dbs.iter().map(|d| d.1).sum()
    }
}

/// Bytes of database `db`'s bucket arrays, over every shard.
fn table_bytes(server: &Server, db: usize) -> u64 {
    let mut total = 0;
    for shard in 0..ferrokv_store::keyspace::SHARD_COUNT {
        let mut locked = server.keyspace.lock_shard(shard);
        for (_, s) in locked.shards() {
            total += s.dbs[db].bucket_bytes() as u64;
        }
    }
    total
}

/// Estimated bytes for one key: the entry, the key bytes, the value's buffers and the table
/// node holding them.
pub fn key_usage(key: &[u8], entry: &Entry) -> u64 {
    const NODE_OVERHEAD: usize = 2 * std::mem::size_of::<usize>();
    (std::mem::size_of::<Entry>() + key.len() + entry.value.heap_size() + NODE_OVERHEAD) as u64
}

/// `MEMORY USAGE key [SAMPLES count]`
fn usage(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut i = 3;
    while i < args.len() {
        if args::is(&args[i], "samples") && i + 1 < args.len() {
            if args::int(&args[i + 1])? < 0 {
                return Err(errors::SYNTAX);
            }
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let key = &args[2];
    let mut locked = ctx.lock(&[key]);
    // Looking at a key's size is not an access: no hit/miss, no LRU update.
    let db = ctx.db();
    let found = locked
        .db(db, key)
        .get(key, ctx.now_ms)
        .map(|e| key_usage(key, e));
    drop(locked);
    match found {
        Some(bytes) => ctx.reply.int(bytes as i64),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// `MEMORY STATS`
fn stats(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let m = MemoryReport::collect(ctx.server);
    let r = &mut *ctx.reply;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    r.map_len(32 + m.dbs.len());
    let int = |r: &mut ferrokv_protocol::Reply, name: &str, v: i64| {
        r.bulk(name.as_bytes());
        r.int(v);
    };
    let double = |r: &mut ferrokv_protocol::Reply, name: &str, v: f64| {
        r.bulk(name.as_bytes());
        r.double_text(&format!("{v}"));
    };
    int(r, "peak.allocated", m.peak as i64);
    int(r, "total.allocated", m.used as i64);
    int(r, "startup.allocated", m.startup as i64);
    for name in [
        "replication.backlog",
        "replicas.repl.buffer",
        "clients.slaves",
    ] {
        int(r, name, 0);
    }
    int(r, "clients.normal", m.clients as i64);
    for name in [
        "cluster.links",
        "cluster.slot_import",
        "cluster.slot_export",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
    ] {
        int(r, name, 0);
    }
    for &(db, _, table_bytes) in &m.dbs {
        r.bulk(format!("db.{db}").as_bytes());
        r.map_len(4);
        int(r, "overhead.hashtable.main", table_bytes as i64);
        int(r, "overhead.hashtable.expires", 0);
        int(r, "overhead.db.hashtable.lut", 0);
        int(r, "overhead.db.hashtable.rehashing", 0);
    }
    int(r, "overhead.total", m.overhead as i64);
    int(r, "db.dict.rehashing.count", 0);
    let keys = m.keys();
    int(r, "keys.count", keys as i64);
    let dataset = m.dataset();
    int(
        r,
        "keys.bytes-per-key",
        m.used
            .saturating_sub(m.startup)
            .checked_div(keys)
            .unwrap_or(0) as i64,
    );
    int(r, "dataset.bytes", dataset as i64);
    double(
        r,
        "dataset.percentage",
        100.0 * ratio(dataset, m.used.saturating_sub(m.startup)),
    );
    double(r, "peak.percentage", 100.0 * ratio(m.used, m.peak));
    let a = m.allocator;
    int(r, "allocator.allocated", a.allocated as i64);
    int(r, "allocator.active", a.active as i64);
    int(r, "allocator.resident", a.resident as i64);
    int(r, "allocator.muzzy", 0);
    double(
        r,
        "allocator-fragmentation.ratio",
        ratio(a.active, a.allocated),
    );
    int(
        r,
        "allocator-fragmentation.bytes",
        a.active as i64 - a.allocated as i64,
    );
    double(r, "allocator-rss.ratio", ratio(a.resident, a.active));
    int(
        r,
        "allocator-rss.bytes",
        a.resident as i64 - a.active as i64,
    );
    double(r, "rss-overhead.ratio", ratio(m.rss, a.resident));
    int(r, "rss-overhead.bytes", m.rss as i64 - a.resident as i64);
    double(r, "fragmentation", ratio(m.rss, m.used));
    int(r, "fragmentation.bytes", m.rss as i64 - m.used as i64);
    Ok(())
}

/// `MEMORY DOCTOR`: a short assessment in ferrokv's own words.
fn doctor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let m = MemoryReport::collect(ctx.server);
    let mut findings = Vec::new();
    if m.used < 5 * 1024 * 1024 {
        findings.push(
            "The server holds less than 5 MB, too little for these checks to mean anything."
                .to_string(),
        );
    } else {
        if m.peak > 0 && m.used * 2 < m.peak {
            findings.push(format!(
                "Memory in use ({} bytes) is less than half the peak ({} bytes): the allocator \
                 may keep the difference; MEMORY PURGE asks it to give it back.",
                m.used, m.peak
            ));
        }
        if m.used > 0 && m.rss > m.used + m.used / 2 {
            findings.push(format!(
                "The resident size ({} bytes) is {:.2} times the memory in use: the heap is \
                 fragmented.",
                m.rss,
                m.rss as f64 / m.used as f64
            ));
        }
        if findings.is_empty() {
            findings.push("No memory problem found.".to_string());
        }
    }
    let text = findings.join("\n") + "\n";
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// `MEMORY MALLOC-STATS`: the allocator's totals.
fn malloc_stats(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let text = match PROBE.get() {
        Some(probe) => {
            let s = (probe.stats)();
            format!(
                "{}: allocated={} active={} resident={} retained={}\n",
                probe.name, s.allocated, s.active, s.resident, s.retained
            )
        }
        None => "Stats not supported for the current allocator".to_string(),
    };
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// `MEMORY PURGE`
fn purge(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if let Some(probe) = PROBE.get() {
        (probe.purge)();
    }
    ctx.reply.ok();
    Ok(())
}

fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "MEMORY",
        &[
            "DOCTOR",
            "    Comment on the server's memory use.",
            "MALLOC-STATS",
            "    Show the allocator's totals.",
            "PURGE",
            "    Ask the allocator to return unused memory to the system.",
            "STATS",
            "    Break the server's memory use down.",
            "USAGE <key> [SAMPLES <count>]",
            "    Estimate the bytes <key> and its value occupy.",
        ],
    );
    Ok(())
}
