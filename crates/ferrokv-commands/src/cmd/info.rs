//! INFO: the server's state as `field:value` lines in Valkey's sections, names and order.
//!
//! Fields Valkey has and ferrokv has no counterpart for yet (TLS, Lua, AOF, replication
//! traffic ...) are printed with the value Valkey shows when that feature is idle, so
//! dashboards and clients that read them keep working; every value that ferrokv measures is
//! real. `server_name` is `ferrokv` and `ferrokv_version` is added; `redis_version` and
//! `valkey_version` name the versions whose behaviour ferrokv reproduces, which is what
//! clients use them for.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ferrokv_config::Config;
use ferrokv_store::clock;
use parking_lot::Mutex;

use crate::cmd::memory;
use crate::context::{CmdResult, Ctx};
use crate::latency;
use crate::pause::PauseKind;
use crate::server::Server;
use crate::spec::{CommandSpec, flag};
use crate::stats;
use crate::table::TABLE;

/// The Redis version clients key their feature checks on.
pub const REDIS_VERSION: &str = "7.2.4";
/// The Valkey release whose replies ferrokv reproduces.
pub const VALKEY_VERSION: &str = "9.1.2";

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("info", -1, "server")
    .flags(flag::LOADING | flag::STALE | flag::SENTINEL)
    .categories(crate::spec::category::DANGEROUS)
    .tips(&[
        "nondeterministic_output",
        "request_policy:all_shards",
        "response_policy:special",
    ])
    .doc(
        "1.0.0",
        "Reports the server's state and statistics, section by section.",
        "O(1)",
    )
    .handler(info)];

/// One INFO section: its name in requests, its title, and whether `INFO` alone shows it.
struct Section {
    name: &'static str,
    title: &'static str,
    default: bool,
    write: fn(&mut Out, &Server, &Config),
}

const SECTIONS: &[Section] = &[
    Section {
        name: "server",
        title: "Server",
        default: true,
        write: server_section,
    },
    Section {
        name: "tls",
        title: "TLS",
        default: false,
        write: tls_section,
    },
    Section {
        name: "clients",
        title: "Clients",
        default: true,
        write: clients_section,
    },
    Section {
        name: "memory",
        title: "Memory",
        default: true,
        write: memory_section,
    },
    Section {
        name: "persistence",
        title: "Persistence",
        default: true,
        write: persistence_section,
    },
    Section {
        name: "stats",
        title: "Stats",
        default: true,
        write: stats_section,
    },
    Section {
        name: "replication",
        title: "Replication",
        default: true,
        write: replication_section,
    },
    Section {
        name: "cpu",
        title: "CPU",
        default: true,
        write: cpu_section,
    },
    Section {
        name: "modules",
        title: "Modules",
        default: true,
        // Valkey 9 runs Lua as a built-in module and lists it here (MODULE LIST does too).
        write: |out, _, _| {
            out.field(
                "module",
                "name=lua,ver=1,api=1,filters=0,usedby=[],using=[],\
                 options=[handle-repl-async-load|handle-atomic-slot-migration]",
            )
        },
    },
    Section {
        name: "commandstats",
        title: "Commandstats",
        default: false,
        write: commandstats_section,
    },
    Section {
        name: "errorstats",
        title: "Errorstats",
        default: true,
        write: errorstats_section,
    },
    Section {
        name: "latencystats",
        title: "Latencystats",
        default: false,
        write: latencystats_section,
    },
    Section {
        name: "cluster",
        title: "Cluster",
        default: true,
        write: |out, _, _| out.field("cluster_enabled", 0),
    },
    Section {
        // Shown by INFO all only, empty outside cluster mode.
        name: "",
        title: "Cluster Info",
        default: false,
        write: |_, _, _| {},
    },
    Section {
        name: "",
        title: "Scripting Engines",
        default: false,
        write: |out, server, _| {
            // One engine, Lua: its memory is what INFO memory reports as the VMs' total;
            // its overhead is the engine's own bookkeeping.
            let used = server.scripting.busy.lua_memory();
            let overhead = std::mem::size_of::<crate::scripting::Scripting>();
            out.field("engines_count", 1);
            out.field("engines_total_used_memory", used);
            out.field("engines_total_memory_overhead", overhead);
            out.field(
                "engine_0",
                format_args!(
                    "name=LUA,module=lua,abi_version=4,used_memory={used},\
                     memory_overhead={overhead}"
                ),
            );
        },
    },
    Section {
        name: "keyspace",
        title: "Keyspace",
        default: true,
        write: keyspace_section,
    },
];

/// The text being built: `name:value\r\n` lines.
pub struct Out(String);

impl Out {
    fn field(&mut self, name: &str, value: impl std::fmt::Display) {
        let _ = write!(self.0, "{name}:{value}\r\n");
    }
}

/// `INFO [section ...]`
fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let text = render(ctx.server, &ctx.client.config, &args[1..]);
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// The INFO text for the requested sections (`default` when none is named).
pub fn render(server: &Server, config: &Config, requested: &[Bytes]) -> String {
    let mut wanted = vec![false; SECTIONS.len()];
    if requested.is_empty() {
        for (w, s) in wanted.iter_mut().zip(SECTIONS) {
            *w = s.default;
        }
    }
    for name in requested {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        for (w, s) in wanted.iter_mut().zip(SECTIONS) {
            match name.as_str() {
                "all" | "everything" => *w = true,
                "default" => *w |= s.default,
                other => *w |= !s.name.is_empty() && s.name == other,
            }
        }
    }
    let mut out = Out(String::new());
    for (section, _) in SECTIONS.iter().zip(wanted).filter(|(_, w)| *w) {
        // Sections are separated by an empty line.
        if !out.0.is_empty() {
            out.0.push_str("\r\n");
        }
        let _ = write!(out.0, "# {}\r\n", section.title);
        (section.write)(&mut out, server, config);
    }
    out.0
}

fn os_name() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let kind = read("/proc/sys/kernel/ostype");
    let kind = if kind.is_empty() {
        std::env::consts::OS.to_string()
    } else {
        kind
    };
    format!(
        "{kind} {} {}",
        read("/proc/sys/kernel/osrelease"),
        std::env::consts::ARCH
    )
}

fn build_id() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{:016x}", h.finish())
}

fn server_section(out: &mut Out, server: &Server, config: &Config) {
    let now_us = clock::now_us();
    let uptime = server.started.elapsed().as_secs();
    out.field("redis_version", REDIS_VERSION);
    out.field("server_name", "ferrokv");
    out.field("valkey_version", VALKEY_VERSION);
    out.field("valkey_release_stage", "ga");
    out.field("ferrokv_version", env!("CARGO_PKG_VERSION"));
    out.field("redis_git_sha1", "00000000");
    out.field("redis_git_dirty", 0);
    out.field("redis_build_id", build_id());
    let mode = if config.extended_redis_compatibility {
        "redis_mode"
    } else {
        "server_mode"
    };
    out.field(mode, "standalone");
    out.field("os", os_name());
    out.field("arch_bits", usize::BITS);
    out.field("monotonic_clock", "POSIX clock_gettime");
    out.field("multiplexing_api", "epoll");
    // Not built by gcc: Valkey prints 0.0.0 in that case.
    out.field("gcc_version", "0.0.0");
    out.field("process_id", std::process::id());
    out.field("process_supervised", "no");
    out.field("run_id", &server.run_id);
    out.field("tcp_port", config.port);
    out.field("server_time_usec", now_us);
    out.field("uptime_in_seconds", uptime);
    out.field("uptime_in_days", uptime / 86400);
    out.field("hz", config.hz);
    out.field("configured_hz", config.hz);
    out.field("clients_hz", config.hz);
    out.field("lru_clock", clock::lru_clock());
    out.field("executable", &server.executable);
    let config_file = server
        .config
        .path
        .as_ref()
        .and_then(|p| std::fs::canonicalize(p).ok().or_else(|| Some(p.clone())))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    out.field("config_file", config_file);
    out.field("io_threads_active", 0);
    out.field("availability_zone", &config.availability_zone);
    if let Some(ms) = server.shutdown.remaining_ms(ferrokv_store::clock::now_ms()) {
        out.field("shutdown_in_milliseconds", ms);
    }
    // Valkey numbers listeners by connection type: tcp 0, unix 1, tls 2.
    let binds: Vec<String> = config.bind.iter().map(|b| format!("bind={b}")).collect();
    if config.port != 0 {
        out.field(
            "listener0",
            format!("name=tcp,{},port={}", binds.join(","), config.port),
        );
    }
    if !config.unixsocket.is_empty() {
        out.field("listener1", format!("name=unix,bind={}", config.unixsocket));
    }
    if config.tls_port != 0 {
        out.field(
            "listener2",
            format!("name=tls,{},port={}", binds.join(","), config.tls_port),
        );
    }
}

/// Serial numbers and remaining validity of the certificates in use (`none` and 0 without
/// TLS), so monitoring can warn before one expires.
fn tls_section(out: &mut Out, _server: &Server, _config: &Config) {
    let context = ferrokv_tls::current();
    let now = clock::now_ms() / 1000;
    for kind in ["server", "client", "ca"] {
        let cert = context.as_ref().and_then(|c| match kind {
            "server" => c.server_cert.clone(),
            "client" => c.client_cert.clone(),
            _ => c.ca_cert.clone(),
        });
        match cert {
            Some(cert) => {
                out.field(&format!("tls_{kind}_cert_serial"), &cert.serial);
                out.field(
                    &format!("tls_{kind}_cert_expires_in_seconds"),
                    cert.expires_in(now),
                );
            }
            None => {
                out.field(&format!("tls_{kind}_cert_serial"), "none");
                out.field(&format!("tls_{kind}_cert_expires_in_seconds"), 0);
            }
        }
    }
}

fn clients_section(out: &mut Out, server: &Server, config: &Config) {
    let clients = server.clients.all();
    let max_in = clients
        .iter()
        .map(|c| c.query_buffer.load(Relaxed))
        .max()
        .unwrap_or(0);
    let max_out = clients
        .iter()
        .map(|c| c.output_buffer.load(Relaxed))
        .max()
        .unwrap_or(0);
    // Replicas are not counted (Valkey lists them apart; INFO replication shows them).
    let replicas = clients
        .iter()
        .filter(|c| c.flags() & crate::client::flags::REPLICA != 0)
        .count();
    out.field("connected_clients", clients.len() - replicas);
    out.field("cluster_connections", 0);
    out.field("maxclients", config.maxclients);
    out.field("client_recent_max_input_buffer", max_in);
    out.field("client_recent_max_output_buffer", max_out);
    let (blocking_keys, blocking_keys_on_nokey, in_timeout_table) = server.blocking.counts();
    out.field(
        "blocked_clients",
        server.blocking.blocked_clients()
            + server.pause.waiting_clients()
            + server.replication.waits.len()
            + server.shutdown.waiting_clients(),
    );
    let (watching_clients, watched_keys) = server.watches.counts();
    out.field("tracking_clients", server.tracking.clients());
    out.field("pubsub_clients", server.pubsub.clients());
    out.field("watching_clients", watching_clients);
    out.field("clients_in_timeout_table", in_timeout_table);
    out.field("total_watched_keys", watched_keys);
    out.field("total_blocking_keys", blocking_keys);
    out.field("total_blocking_keys_on_nokey", blocking_keys_on_nokey);
    let now = clock::now_ms();
    match server.pause.strongest(now) {
        Some((purpose, kind, end_ms)) => {
            out.field("paused_reason", purpose.info_name());
            out.field(
                "paused_actions",
                match kind {
                    PauseKind::Write => "write",
                    PauseKind::All => "all",
                },
            );
            out.field("paused_timeout_milliseconds", end_ms - now);
        }
        None => {
            out.field("paused_reason", "none");
            out.field("paused_actions", "none");
            out.field("paused_timeout_milliseconds", 0);
        }
    }
}

/// Bytes in Valkey's human form: `994.48K`, `6.50M`, `0B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn memory_section(out: &mut Out, server: &Server, config: &Config) {
    let m = memory::MemoryReport::collect(server);
    out.field("used_memory", m.used);
    out.field("used_memory_human", human_bytes(m.used));
    out.field("used_memory_rss", m.rss);
    out.field("used_memory_rss_human", human_bytes(m.rss));
    out.field("used_memory_peak", m.peak);
    out.field("used_memory_peak_human", human_bytes(m.peak));
    out.field(
        "used_memory_peak_perc",
        format!("{:.2}%", 100.0 * ratio(m.used, m.peak)),
    );
    out.field("used_memory_overhead", m.overhead);
    out.field("used_memory_startup", m.startup);
    out.field("used_memory_dataset", m.dataset());
    out.field(
        "used_memory_dataset_perc",
        format!(
            "{:.2}%",
            100.0 * ratio(m.dataset(), m.used.saturating_sub(m.startup))
        ),
    );
    out.field("allocator_allocated", m.allocator.allocated);
    out.field("allocator_active", m.allocator.active);
    out.field("allocator_resident", m.allocator.resident);
    out.field("allocator_muzzy", 0);
    out.field("total_system_memory", m.system_total);
    out.field("total_system_memory_human", human_bytes(m.system_total));
    // One Lua state per worker thread runs both scripts and functions: their memory,
    // summed, is reported as the EVAL VM's; Valkey's separate functions VM shows 0.
    let scripting = &server.scripting;
    let lua = scripting.busy.lua_memory() as u64;
    let (libraries, functions, functions_memory) = {
        let state = scripting.libraries.read();
        (
            state.libraries.len(),
            state.function_count(),
            state.memory(),
        )
    };
    let scripts_eval = scripting.scripts.memory();
    out.field("used_memory_lua", lua);
    out.field("used_memory_vm_eval", lua);
    out.field("used_memory_lua_human", human_bytes(lua));
    out.field("used_memory_scripts_eval", scripts_eval);
    out.field("number_of_cached_scripts", scripting.scripts.len());
    out.field("number_of_functions", functions);
    out.field("number_of_libraries", libraries);
    out.field("used_memory_vm_functions", 0);
    out.field("used_memory_vm_total", lua);
    out.field("used_memory_vm_total_human", human_bytes(lua));
    out.field("used_memory_functions", functions_memory);
    let scripts = (scripts_eval + functions_memory) as u64;
    out.field("used_memory_scripts", scripts);
    out.field("used_memory_scripts_human", human_bytes(scripts));
    out.field("maxmemory", config.maxmemory);
    out.field("maxmemory_human", human_bytes(config.maxmemory));
    out.field("maxmemory_policy", &config.maxmemory_policy);
    let a = &m.allocator;
    out.field(
        "allocator_frag_ratio",
        format!("{:.2}", ratio(a.active, a.allocated)),
    );
    out.field("allocator_frag_bytes", a.active.saturating_sub(a.allocated));
    out.field(
        "allocator_rss_ratio",
        format!("{:.2}", ratio(a.resident, a.active)),
    );
    out.field("allocator_rss_bytes", a.resident.saturating_sub(a.active));
    out.field(
        "rss_overhead_ratio",
        format!("{:.2}", ratio(m.rss, a.resident)),
    );
    out.field("rss_overhead_bytes", m.rss as i64 - a.resident as i64);
    out.field(
        "mem_fragmentation_ratio",
        format!("{:.2}", ratio(m.rss, m.used)),
    );
    out.field("mem_fragmentation_bytes", m.rss as i64 - m.used as i64);
    out.field("mem_not_counted_for_evict", 0);
    // The replicas and the backlog share one buffer, the propagation stream, as in Valkey:
    // what it holds past the backlog is what some replica has not read yet.
    let (held, backlog) = if server.replication.backlog_active() {
        server.stream.held_bytes()
    } else {
        (0, 0)
    };
    let for_replicas = if server.replication.replicas().is_empty() {
        0
    } else {
        held.saturating_sub(backlog)
    };
    out.field("mem_replication_backlog", held - for_replicas);
    out.field("mem_total_replication_buffers", held);
    out.field("mem_replicas_repl_buffer", 0);
    out.field("mem_clients_slaves", for_replicas);
    out.field("mem_clients_normal", m.clients);
    out.field("mem_cluster_links", 0);
    out.field("mem_cluster_slot_import", 0);
    out.field("mem_cluster_slot_export", 0);
    out.field("mem_aof_buffer", 0);
    out.field("mem_allocator", m.allocator_name);
    out.field("mem_overhead_db_hashtable_rehashing", 0);
    out.field("active_defrag_running", 0);
    out.field("lazyfree_pending_objects", crate::lazyfree::pending());
    out.field("lazyfreed_objects", crate::lazyfree::freed());
}

/// Without fork there is no copy-on-write: the `*cow*` fields report the snapshot's extra
/// memory instead (serialized shards not yet written, see `ferrokv-persist`), and
/// `current_fork_perc` the share of keys already dumped.
fn persistence_section(out: &mut Out, server: &Server, _config: &Config) {
    let s = server.persistence.status();
    out.field("loading", s.loading as u8);
    out.field(
        "async_loading",
        server.persistence.async_loading.load(Relaxed) as u8,
    );
    if s.loading {
        for (name, value) in crate::loading::info_fields() {
            out.field(name, value);
        }
    }
    out.field("current_cow_peak", s.current_peak_bytes);
    out.field("current_cow_size", s.current_extra_bytes);
    out.field("current_cow_size_age", 0);
    let percent = if s.keys_total > 0 {
        s.keys_processed as f64 * 100.0 / s.keys_total as f64
    } else {
        0.0
    };
    out.field("current_fork_perc", format!("{percent:.2}"));
    out.field("current_save_keys_processed", s.keys_processed);
    out.field("current_save_keys_total", s.keys_total);
    out.field("rdb_changes_since_last_save", s.changes_since_save);
    out.field("rdb_bgsave_in_progress", s.bgsave_in_progress as u8);
    out.field("rdb_last_save_time", server.last_save_unix.load(Relaxed));
    out.field(
        "rdb_last_bgsave_status",
        if s.last_bgsave_ok { "ok" } else { "err" },
    );
    out.field("rdb_last_bgsave_time_sec", s.last_bgsave_secs);
    out.field("rdb_current_bgsave_time_sec", s.current_bgsave_secs);
    out.field("rdb_saves", s.saves);
    out.field("rdb_last_cow_size", s.last_extra_bytes);
    out.field("rdb_last_load_keys_expired", s.last_load_keys_expired);
    out.field("rdb_last_load_keys_loaded", s.last_load_keys_loaded);
    let (head, tail) = server.aof.info_fields();
    for (name, value) in head {
        out.field(name, value);
    }
    out.field("module_fork_in_progress", 0);
    out.field("module_fork_last_cow_size", 0);
    out.field("slot_migration_fork_in_progress", 0);
    for (name, value) in tail {
        out.field(name, value);
    }
}

/// Instantaneous rates, sampled every 100 ms by the cron over the last 16 samples, as Valkey.
struct RateSamples {
    last: Option<(i64, [u64; 3])>,
    /// Per metric (ops, input bytes, output bytes): per-second rates, newest last.
    rates: [Vec<f64>; 3],
}

const RATE_SAMPLES: usize = 16;

static RATES: Mutex<RateSamples> = Mutex::new(RateSamples {
    last: None,
    rates: [Vec::new(), Vec::new(), Vec::new()],
});

/// Called by the cron every tick: samples the counters behind the instantaneous rates every
/// 100 ms, and keeps the memory peak up to date.
pub fn sample_metrics() {
    memory::note_used_memory();
    let now = clock::now_ms();
    let current = [
        stats::sum(|s| s.total_commands.get()),
        stats::sum(|s| s.net_input_bytes.get()),
        stats::sum(|s| s.net_output_bytes.get()),
    ];
    let mut rates = RATES.lock();
    if let Some((then, before)) = rates.last {
        if now - then < 100 {
            return;
        }
        let seconds = (now - then) as f64 / 1000.0;
        for (i, series) in rates.rates.iter_mut().enumerate() {
            if series.len() == RATE_SAMPLES {
                series.remove(0);
            }
            series.push(current[i].saturating_sub(before[i]) as f64 / seconds);
        }
    }
    rates.last = Some((now, current));
}

fn average_rate(metric: usize) -> f64 {
    let rates = RATES.lock();
    let series = &rates.rates[metric];
    if series.is_empty() {
        0.0
    } else {
        series.iter().sum::<f64>() / series.len() as f64
    }
}

fn stats_section(out: &mut Out, server: &Server, _config: &Config) {
    let sum = |pick: fn(&stats::ThreadStats) -> u64| stats::sum(pick);
    out.field(
        "total_connections_received",
        sum(|s| s.connections_received.get()),
    );
    out.field("total_commands_processed", sum(|s| s.total_commands.get()));
    out.field("instantaneous_ops_per_sec", average_rate(0) as u64);
    out.field("total_net_input_bytes", sum(|s| s.net_input_bytes.get()));
    out.field("total_net_output_bytes", sum(|s| s.net_output_bytes.get()));
    out.field("total_net_repl_input_bytes", 0);
    out.field("total_net_repl_output_bytes", 0);
    out.field("total_net_cluster_slot_import_bytes", 0);
    out.field("total_net_cluster_slot_export_bytes", 0);
    out.field(
        "instantaneous_input_kbps",
        format!("{:.2}", average_rate(1) / 1024.0),
    );
    out.field(
        "instantaneous_output_kbps",
        format!("{:.2}", average_rate(2) / 1024.0),
    );
    out.field("instantaneous_input_repl_kbps", "0.00");
    out.field("instantaneous_output_repl_kbps", "0.00");
    out.field(
        "rejected_connections",
        sum(|s| s.rejected_connections.get()),
    );
    let replication = &server.replication;
    out.field("sync_full", replication.sync_full.load(Relaxed));
    out.field("sync_partial_ok", replication.sync_partial_ok.load(Relaxed));
    out.field(
        "sync_partial_err",
        replication.sync_partial_err.load(Relaxed),
    );
    out.field("expired_keys", sum(|s| s.expired_keys.get()));
    out.field("expired_fields", sum(|s| s.expired_fields.get()));
    out.field("expired_stale_perc", "0.00");
    out.field("expired_keys_with_volatile_items_stale_perc", "0.00");
    out.field("expired_time_cap_reached_count", 0);
    out.field("expire_cycle_cpu_milliseconds", 0);
    out.field("evicted_keys", sum(|s| s.evicted_keys.get()));
    for name in [
        "evicted_clients",
        "evicted_scripts",
        "total_eviction_exceeded_time",
        "current_eviction_exceeded_time",
    ] {
        out.field(name, 0);
    }
    out.field("keyspace_hits", sum(|s| s.keyspace_hits.get()));
    out.field("keyspace_misses", sum(|s| s.keyspace_misses.get()));
    let (channels, patterns, shard_channels) = server.pubsub.counts();
    out.field("pubsub_channels", channels);
    out.field("pubsub_patterns", patterns);
    out.field("pubsubshard_channels", shard_channels);
    // No fork: a snapshot's instant is taken without copying the process.
    out.field("latest_fork_usec", 0);
    out.field("total_forks", server.persistence.background_snapshots());
    out.field("migrate_cached_sockets", server.migrate_sockets.len());
    out.field("slave_expires_tracked_keys", crate::replica_keys::count());
    for name in [
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
    ] {
        out.field(name, 0);
    }
    let (_, tracked_keys, tracked_items, tracked_prefixes) = server.tracking.counts();
    out.field("tracking_total_keys", tracked_keys);
    out.field("tracking_total_items", tracked_items);
    out.field("tracking_total_prefixes", tracked_prefixes);
    out.field("unexpected_error_replies", 0);
    out.field("total_error_replies", sum(|s| s.total_error_replies.get()));
    // Counters the network layer does not keep yet.
    for name in [
        "dump_payload_sanitizations",
        "total_reads_processed",
        "total_writes_processed",
        "io_threaded_reads_processed",
        "io_threaded_writes_processed",
        "io_threaded_freed_objects",
        "io_threaded_accept_processed",
        "io_threaded_poll_processed",
        "io_threaded_total_prefetch_batches",
        "io_threaded_total_prefetch_entries",
    ] {
        out.field(name, 0);
    }
    out.field(
        "client_query_buffer_limit_disconnections",
        sum(|s| s.query_buffer_limit_disconnections.get()),
    );
    out.field(
        "client_output_buffer_limit_disconnections",
        server.pubsub.limit_disconnections.load(Relaxed),
    );
    for name in [
        "reply_buffer_shrinks",
        "reply_buffer_expands",
        "eventloop_cycles",
        "eventloop_duration_sum",
        "eventloop_duration_cmd_sum",
        "instantaneous_eventloop_cycles_per_sec",
        "instantaneous_eventloop_duration_usec",
    ] {
        out.field(name, 0);
    }
    let denied = &server.acl.denied;
    out.field("acl_access_denied_auth", denied.auth.load(Relaxed));
    out.field("acl_access_denied_cmd", denied.command.load(Relaxed));
    out.field("acl_access_denied_key", denied.key.load(Relaxed));
    out.field("acl_access_denied_channel", denied.channel.load(Relaxed));
    out.field("acl_access_denied_tls_cert", denied.tls_cert.load(Relaxed));
    out.field("acl_access_denied_db", denied.db.load(Relaxed));
    out.field(
        "ferrokv_script_restarts",
        server.scripting.restarts.load(Relaxed),
    );
}

/// Valkey's fields, in Valkey's order, for a primary or a replica.
fn replication_section(out: &mut Out, server: &Server, config: &Config) {
    let replication = &server.replication;
    let end = server.stream.end();
    let now = ferrokv_store::clock::now_ms();
    match replication.primary() {
        None => {
            out.field("role", "master");
            replicas_fields(out, server, config, now);
        }
        Some(link) => {
            let up = link.state == crate::replication::LinkState::Connected;
            out.field("role", "slave");
            out.field("master_host", &link.host);
            out.field("master_port", link.port);
            out.field("master_link_status", if up { "up" } else { "down" });
            out.field(
                "master_last_io_seconds_ago",
                if link.last_io_ms > 0 {
                    (now - link.last_io_ms).max(0) / 1000
                } else {
                    -1
                },
            );
            let syncing = link.state == crate::replication::LinkState::Transfer;
            out.field("master_sync_in_progress", syncing as u8);
            out.field(
                "slave_read_repl_offset",
                end + server.replication.unapplied_bytes.load(Relaxed),
            );
            out.field("slave_repl_offset", end);
            if syncing {
                out.field("master_sync_total_bytes", link.transfer_size);
                out.field("master_sync_read_bytes", link.transfer_read);
                let left = if link.transfer_size >= 0 {
                    link.transfer_size - link.transfer_read
                } else {
                    -1
                };
                out.field("master_sync_left_bytes", left);
                out.field(
                    "master_sync_perc",
                    if link.transfer_size > 0 {
                        format!(
                            "{:.2}",
                            link.transfer_read as f64 * 100.0 / link.transfer_size as f64
                        )
                    } else {
                        "-0.00".to_string()
                    },
                );
                out.field(
                    "master_sync_last_io_seconds_ago",
                    (now - link.last_io_ms).max(0) / 1000,
                );
            }
            out.field("replicas_repl_buffer_size", 0);
            out.field("replicas_repl_buffer_peak", 0);
            if !up {
                out.field(
                    "master_link_down_since_seconds",
                    if link.down_since_ms > 0 {
                        (now - link.down_since_ms).max(0) / 1000
                    } else {
                        -1
                    },
                );
            }
            out.field("slave_priority", config.replica_priority);
            out.field("slave_read_only", config.replica_read_only as u8);
            out.field("replica_announced", config.replica_announced as u8);
            replicas_fields(out, server, config, now);
        }
    }
    let ids = replication.ids();
    let (first, histlen) = server.stream.backlog_bounds();
    let active = replication.backlog_active();
    out.field("replicas_waiting_psync", 0);
    out.field(
        "master_failover_state",
        replication.failover.lock().phase.name(),
    );
    out.field("master_replid", &ids.replid);
    out.field("master_replid2", &ids.replid2);
    out.field("master_repl_offset", end);
    out.field("second_repl_offset", ids.second_offset);
    out.field("repl_backlog_active", active as u8);
    out.field("repl_backlog_size", config.repl_backlog_size);
    out.field(
        "repl_backlog_first_byte_offset",
        if active { first + 1 } else { 0 },
    );
    out.field("repl_backlog_histlen", if active { histlen } else { 0 });
}

/// `connected_slaves`, `min_slaves_good_slaves` when min-replicas-to-write is on, one line
/// per replica.
fn replicas_fields(out: &mut Out, server: &Server, config: &Config, now: i64) {
    let replicas = server.replication.replicas();
    out.field("connected_slaves", replicas.len());
    if config.min_replicas_to_write > 0 && config.min_replicas_max_lag > 0 {
        out.field(
            "min_slaves_good_slaves",
            server.replication.good_replicas.load(Relaxed),
        );
    }
    for (i, peer) in replicas.iter().enumerate() {
        let lag = (now - peer.ack_ms.load(Relaxed)).max(0) / 1000;
        out.field(
            &format!("slave{i}"),
            format!(
                "ip={},port={},state={},offset={},lag={},type=replica",
                peer.ip,
                peer.listening_port,
                peer.state_name(),
                peer.ack_offset.load(Relaxed),
                lag
            ),
        );
    }
}

/// CPU seconds from `/proc/<path>/stat`: (user, system, children user, children system).
fn cpu_times(path: &str) -> [f64; 4] {
    // The kernel reports these in clock ticks of 1/100 s (USER_HZ) on every Linux platform.
    const TICKS: f64 = 100.0;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
            / TICKS
    };
    // After the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    [tick(11), tick(12), tick(13), tick(14)]
}

fn cpu_section(out: &mut Out, _server: &Server, _config: &Config) {
    let [user, sys, child_user, child_sys] = cpu_times("/proc/self/stat");
    // ferrokv has no single main thread: the thread answering INFO stands in for it.
    let [thread_user, thread_sys, _, _] = cpu_times("/proc/thread-self/stat");
    let command_seconds = {
        let mut usec = 0;
        stats::for_each(|s| usec += s.commands.iter().map(|c| c.usec.get()).sum::<u64>());
        usec as f64 / 1e6
    };
    out.field("used_cpu_sys", format!("{sys:.6}"));
    out.field("used_cpu_user", format!("{user:.6}"));
    out.field("used_cpu_sys_children", format!("{child_sys:.6}"));
    out.field("used_cpu_user_children", format!("{child_user:.6}"));
    out.field("used_cpu_sys_main_thread", format!("{thread_sys:.6}"));
    out.field("used_cpu_user_main_thread", format!("{thread_user:.6}"));
    out.field(
        "used_active_time_main_thread",
        format!("{command_seconds:.6}"),
    );
}

fn commandstats_section(out: &mut Out, _server: &Server, _config: &Config) {
    for id in 0..TABLE.len() {
        let (mut calls, mut usec, mut rejected, mut failed) = (0, 0, 0, 0);
        stats::for_each(|s| {
            let c = &s.commands[id];
            calls += c.calls.get();
            usec += c.usec.get();
            rejected += c.rejected_calls.get();
            failed += c.failed_calls.get();
        });
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let per_call = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        out.field(
            &format!("cmdstat_{}", TABLE.entry(id).full_name),
            format!(
                "calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"
            ),
        );
    }
}

fn errorstats_section(out: &mut Out, _server: &Server, _config: &Config) {
    for (code, n) in stats::error_counts() {
        out.field(&format!("errorstat_{code}"), format!("count={n}"));
    }
}

/// `latency-tracking-info-percentiles` as (label, percentile): `99.9` prints as `p99.9`.
fn percentiles(config: &Config) -> Vec<(String, f64)> {
    config
        .latency_tracking_info_percentiles
        .split_whitespace()
        .filter_map(|p| p.parse::<f64>().ok().map(|v| (format!("p{v}"), v)))
        .collect()
}

fn latencystats_section(out: &mut Out, _server: &Server, config: &Config) {
    let wanted = percentiles(config);
    for id in 0..TABLE.len() {
        let Some(histogram) = latency::command_histogram(id) else {
            continue;
        };
        let values: Vec<String> = wanted
            .iter()
            .map(|(label, p)| format!("{label}={:.3}", latency::percentile_usec(&histogram, *p)))
            .collect();
        out.field(
            &format!("latency_percentiles_usec_{}", TABLE.entry(id).full_name),
            values.join(","),
        );
    }
}

fn keyspace_section(out: &mut Out, server: &Server, _config: &Config) {
    for db in 0..server.keyspace.databases() {
        let (keys, expires) = server.keyspace.db_counts(db);
        if keys == 0 {
            continue;
        }
        let with_items = server.keyspace.db_volatile_items(db);
        out.field(
            &format!("db{db}"),
            format!(
                "keys={keys},expires={expires},avg_ttl=0,keys_with_volatile_items={with_items}"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_like_valkey() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1018344), "994.48K");
        assert_eq!(human_bytes(6815744), "6.50M");
        assert_eq!(human_bytes(25276514304), "23.54G");
    }

    #[test]
    fn percentile_labels() {
        let config = Config {
            latency_tracking_info_percentiles: "50 99.9 100 0".into(),
            ..Config::default()
        };
        let labels: Vec<String> = percentiles(&config).into_iter().map(|(l, _)| l).collect();
        assert_eq!(labels, ["p50", "p99.9", "p100", "p0"]);
    }
}
