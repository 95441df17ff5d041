//! The directive table and the typed configuration it fills.
//!
//! Every directive valkey-server 9.1 knows is declared once, in the `directives!` invocation
//! below: its field in [`Config`], its name and aliases, its default, its value kind, its
//! flags and a one-line description (the shipped `ferrokv.conf` is generated from the same
//! table). Adding a directive means adding one entry there.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::kind::{FieldValue, Kind};
use crate::special;

/// CONFIG SET refuses it ("can't set immutable config"); only the file and arguments set it.
pub const IMMUTABLE: u32 = 1 << 0;
/// Kept out of logs.
pub const SENSITIVE: u32 = 1 << 1;
/// CONFIG SET refuses it unless `enable-protected-configs` allows it.
pub const PROTECTED: u32 = 1 << 2;
/// CONFIG GET patterns never match it; only its exact name does.
pub const HIDDEN: u32 = 1 << 3;
/// Takes several arguments on a config line; they are joined with spaces.
pub const MULTI_ARG: u32 = 1 << 4;
/// Successive lines in the config file add to the value instead of replacing it.
pub const APPEND: u32 = 1 << 5;
/// CONFIG REWRITE writes it even when it has its default value.
pub const ALWAYS_REWRITE: u32 = 1 << 6;
/// Accepted, validated and stored, but ferrokv does not act on it yet.
pub const PENDING: u32 = 1 << 7;
/// CONFIG SET refuses it with LOADING while a dataset is being loaded.
pub const DENY_LOADING: u32 = 1 << 8;

const I32: i64 = i32::MAX as i64;
const U32: i64 = u32::MAX as i64;

/// One configuration directive.
pub struct Directive {
    pub name: &'static str,
    /// Other names accepted for it (Valkey's `slaveof`, `slave-read-only`, ...), each listed by
    /// CONFIG GET as a directive of its own.
    pub aliases: &'static [&'static str],
    /// The default, as CONFIG GET prints it.
    pub default: &'static str,
    pub kind: Kind,
    pub flags: u32,
    /// One line for `ferrokv.conf`.
    pub doc: &'static str,
    set: fn(&mut Config, &str) -> Result<(), String>,
    get: fn(&Config) -> String,
}

impl Directive {
    /// Parses `value` (several arguments already joined with spaces) into `config`.
    pub fn set(&self, config: &mut Config, value: &str) -> Result<(), String> {
        (self.set)(config, value)
    }

    /// The value as CONFIG GET prints it.
    pub fn get(&self, config: &Config) -> String {
        if self.name == "dir" {
            // The working directory is process state, read where it is (as Valkey does).
            return std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
        }
        (self.get)(config)
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Finds a directive by its name or an alias, ignoring case.
    pub fn find(name: &str) -> Option<&'static Directive> {
        lookup(name).map(|(d, _)| d)
    }
}

/// Finds a directive by name or alias, ignoring case, and says which of its names matched.
pub fn lookup(name: &str) -> Option<(&'static Directive, &'static str)> {
    static BY_NAME: LazyLock<HashMap<String, (usize, &'static str)>> = LazyLock::new(|| {
        let mut map = HashMap::new();
        for (i, d) in DIRECTIVES.iter().enumerate() {
            map.insert(d.name.to_string(), (i, d.name));
            for alias in d.aliases {
                map.insert(alias.to_string(), (i, *alias));
            }
        }
        map
    });
    BY_NAME
        .get(&name.to_ascii_lowercase())
        .map(|&(i, matched)| (&DIRECTIVES[i], matched))
}

/// Every name CONFIG GET can list (canonical names and aliases), with its directive.
pub fn all_names() -> impl Iterator<Item = (&'static str, &'static Directive)> {
    DIRECTIVES.iter().flat_map(|d| {
        std::iter::once(d.name)
            .chain(d.aliases.iter().copied())
            .map(move |n| (n, d))
    })
}

/// Lines of the config file that are not directives but are kept for the features that will
/// read them (ACL users, renamed commands, modules), in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileExtras {
    /// `rename-command <name> <new-name>`.
    pub rename_commands: Vec<(String, String)>,
    /// `user <name> <rules...>`: each line's words after `user` (a quoted password keeps
    /// its spaces).
    pub users: Vec<Vec<String>>,
    /// `loadmodule <path> [args...]`.
    pub modules: Vec<Vec<String>>,
}

macro_rules! directives {
    ($(
        $field:ident : $ty:ty = $name:literal [$($alias:literal),*], $default:literal,
            $kind:expr, $flags:expr, $doc:literal;
    )*) => {
        /// A typed snapshot of every directive's value.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $(
                #[doc = $doc]
                pub $field: $ty,
            )*
            pub extras: FileExtras,
        }

        impl Config {
            /// Every field empty; [`Config::default`] then applies the table's defaults.
            fn blank() -> Config {
                Config {
                    $($field: Default::default(),)*
                    extras: FileExtras::default(),
                }
            }
        }

        /// Every directive, in the order CONFIG REWRITE appends new ones.
        pub static DIRECTIVES: &[Directive] = &[$(
            Directive {
                name: $name,
                aliases: &[$($alias),*],
                default: $default,
                kind: $kind,
                flags: $flags,
                doc: $doc,
                set: |c, v| {
                    c.$field = <$ty as FieldValue>::parse(&$kind, v, &c.$field)?;
                    Ok(())
                },
                get: |c| <$ty as FieldValue>::print(&$kind, &c.$field),
            },
        )*];
    };
}

impl Default for Config {
    /// Every directive at its default, applied through the table so defaults live in one place.
    fn default() -> Config {
        let mut c = Config::blank();
        for d in DIRECTIVES {
            if let Err(e) = d.set(&mut c, d.default) {
                // The table is static; the unit tests check every default parses.
                panic!("default of directive {} is invalid: {e}", d.name);
            }
        }
        c
    }
}

directives! {
    acl_pubsub_default: String = "acl-pubsub-default" [], "resetchannels", Kind::Enum(&["allchannels", "resetchannels"]), 0,
        "Channel permissions a new ACL user starts with.";
    aclfile: String = "aclfile" [], "", Kind::Str, IMMUTABLE,
        "File holding ACL users; empty keeps users in this config file.";
    acllog_max_len: i64 = "acllog-max-len" [], "128", Kind::int(0, i64::MAX), 0,
        "How many entries ACL LOG keeps.";
    active_worker_threads: i64 = "active-worker-threads" [], "0", Kind::int(0, 1024), HIDDEN,
        "Workers that serve clients: 0 means as many as the load needs (the others take none, and a connection moves between workers), N exactly N of the worker-threads. A ferrokv directive: hidden from CONFIG GET globs so their output stays Valkey's.";
    active_defrag_cycle_max: i64 = "active-defrag-cycle-max" [], "25", Kind::int(1, 99), PENDING,
        "Most CPU percent active defragmentation may use.";
    active_defrag_cycle_min: i64 = "active-defrag-cycle-min" [], "1", Kind::int(1, 99), PENDING,
        "Least CPU percent active defragmentation uses once started.";
    active_defrag_cycle_us: i64 = "active-defrag-cycle-us" [], "500", Kind::int(0, 100000), PENDING,
        "Length in microseconds of one defragmentation step.";
    active_defrag_ignore_bytes: i64 = "active-defrag-ignore-bytes" [], "104857600", Kind::memory(1, i64::MAX), PENDING,
        "Fragmentation waste below this many bytes never starts defragmentation.";
    active_defrag_max_scan_fields: i64 = "active-defrag-max-scan-fields" [], "1000", Kind::int(1, i64::MAX), PENDING,
        "Large collections are defragmented in steps of this many fields.";
    active_defrag_threshold_lower: i64 = "active-defrag-threshold-lower" [], "10", Kind::int(0, 1000), PENDING,
        "Fragmentation percent that starts defragmentation.";
    active_defrag_threshold_upper: i64 = "active-defrag-threshold-upper" [], "100", Kind::int(0, 1000), PENDING,
        "Fragmentation percent at which defragmentation works hardest.";
    active_expire_effort: i64 = "active-expire-effort" [], "1", Kind::int(1, 10), 0,
        "How hard the background expiry cycle works, 1 (light) to 10 (aggressive).";
    activedefrag: bool = "activedefrag" [], "no", Kind::Bool, PENDING,
        "Defragment memory in the background.";
    activerehashing: bool = "activerehashing" [], "yes", Kind::Bool, PENDING,
        "Spend cron time finishing hash table resizes.";
    always_show_logo: bool = "always-show-logo" [], "no", Kind::Bool, IMMUTABLE,
        "Print the start-up banner block (version, port, PID) even when logging to a file.";
    aof_disable_auto_gc: bool = "aof-disable-auto-gc" [], "no", Kind::Bool, HIDDEN | PENDING,
        "Keep old AOF history files instead of deleting them.";
    aof_load_truncated: bool = "aof-load-truncated" [], "yes", Kind::Bool, 0,
        "Start anyway when the AOF ends in a truncated command.";
    aof_rewrite_cpulist: String = "aof-rewrite-cpulist" ["aof_rewrite_cpulist"], "", Kind::Str, IMMUTABLE | PENDING,
        "CPUs the AOF rewrite child is pinned to.";
    aof_rewrite_incremental_fsync: bool = "aof-rewrite-incremental-fsync" [], "yes", Kind::Bool, 0,
        "Fsync the rewritten AOF every 4 MB.";
    aof_timestamp_enabled: bool = "aof-timestamp-enabled" [], "no", Kind::Bool, 0,
        "Write timestamp annotations into the AOF.";
    aof_use_rdb_preamble: bool = "aof-use-rdb-preamble" [], "yes", Kind::Bool, 0,
        "Start rewritten AOFs with an RDB snapshot.";
    appenddirname: String = "appenddirname" [], "appendonlydir", Kind::Str, IMMUTABLE,
        "Directory (inside dir) holding the AOF files.";
    appendfilename: String = "appendfilename" [], "appendonly.aof", Kind::Str, IMMUTABLE,
        "Base name of the AOF files.";
    appendfsync: String = "appendfsync" [], "everysec", Kind::Enum(&["everysec", "always", "no"]), 0,
        "When the AOF is fsynced: always, everysec or no.";
    appendonly: bool = "appendonly" [], "no", Kind::Bool, DENY_LOADING,
        "Log every write to the append-only file.";
    auto_aof_rewrite_min_size: i64 = "auto-aof-rewrite-min-size" [], "67108864", Kind::memory(0, i64::MAX), 0,
        "Smallest AOF size that triggers an automatic rewrite.";
    auto_aof_rewrite_percentage: i64 = "auto-aof-rewrite-percentage" [], "100", Kind::int(0, I32), 0,
        "AOF growth percent that triggers a rewrite; 0 disables.";
    availability_zone: String = "availability-zone" [], "", Kind::Str, 0,
        "Zone name reported to clients (HELLO, CLUSTER SHARDS).";
    bgsave_cpulist: String = "bgsave-cpulist" ["bgsave_cpulist"], "", Kind::Str, IMMUTABLE | PENDING,
        "CPUs the snapshot child is pinned to.";
    bind: Vec<String> = "bind" [], "* -::*", Kind::Words, MULTI_ARG,
        "Addresses to listen on; a leading '-' makes one optional.";
    bind_source_addr: String = "bind-source-addr" [], "", Kind::Str, PENDING,
        "Source address for outgoing connections (replication, cluster bus).";
    bio_cpulist: String = "bio-cpulist" ["bio_cpulist"], "", Kind::Str, IMMUTABLE | PENDING,
        "CPUs the background I/O threads are pinned to.";
    busy_reply_threshold: i64 = "busy-reply-threshold" ["lua-time-limit"], "5000", Kind::int(0, i64::MAX), 0,
        "Milliseconds a script may run before other clients get BUSY.";
    client_output_buffer_limit: String = "client-output-buffer-limit" [], "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", Kind::Custom(special::client_output_buffer_limit), MULTI_ARG,
        "Per class hard limit, soft limit and soft seconds of client output buffers.";
    client_query_buffer_limit: i64 = "client-query-buffer-limit" [], "1073741824", Kind::memory(1024 * 1024, i64::MAX), 0,
        "Largest query buffer one client may have.";
    cluster_allow_pubsubshard_when_down: bool = "cluster-allow-pubsubshard-when-down" [], "yes", Kind::Bool, PENDING,
        "Serve sharded pub/sub while the cluster is down.";
    cluster_allow_reads_when_down: bool = "cluster-allow-reads-when-down" [], "no", Kind::Bool, PENDING,
        "Serve reads while the cluster is down.";
    cluster_allow_replica_migration: bool = "cluster-allow-replica-migration" [], "yes", Kind::Bool, PENDING,
        "Let replicas move to primaries without replicas.";
    cluster_announce_bus_port: i64 = "cluster-announce-bus-port" [], "0", Kind::int(0, 65535), PENDING,
        "Cluster bus port announced to other nodes; 0 derives it.";
    cluster_announce_client_ipv4: String = "cluster-announce-client-ipv4" [], "", Kind::Custom(special::ipv4), PENDING,
        "IPv4 address announced to clients.";
    cluster_announce_client_ipv6: String = "cluster-announce-client-ipv6" [], "", Kind::Custom(special::ipv6), PENDING,
        "IPv6 address announced to clients.";
    cluster_announce_client_port: i64 = "cluster-announce-client-port" [], "0", Kind::int(0, 65535), PENDING,
        "Plain-text port announced to clients; 0 uses port.";
    cluster_announce_client_tls_port: i64 = "cluster-announce-client-tls-port" [], "0", Kind::int(0, 65535), PENDING,
        "TLS port announced to clients; 0 uses tls-port.";
    cluster_announce_hostname: String = "cluster-announce-hostname" [], "", Kind::Str, PENDING,
        "Host name announced to other nodes and clients.";
    cluster_announce_human_nodename: String = "cluster-announce-human-nodename" [], "", Kind::Str, PENDING,
        "Human-readable node name shown in logs.";
    cluster_announce_ip: String = "cluster-announce-ip" [], "", Kind::Str, PENDING,
        "Address announced to other nodes.";
    cluster_announce_port: i64 = "cluster-announce-port" [], "0", Kind::int(0, 65535), PENDING,
        "Client port announced to other nodes; 0 uses port.";
    cluster_announce_tls_port: i64 = "cluster-announce-tls-port" [], "0", Kind::int(0, 65535), PENDING,
        "TLS port announced to other nodes; 0 uses tls-port.";
    cluster_blacklist_ttl: i64 = "cluster-blacklist-ttl" [], "60", Kind::int(i64::MIN, i64::MAX), PENDING,
        "Seconds a forgotten node stays blocked from rejoining.";
    cluster_config_file: String = "cluster-config-file" [], "nodes.conf", Kind::Str, IMMUTABLE | PENDING,
        "File where the cluster keeps its node table.";
    cluster_config_save_behavior: String = "cluster-config-save-behavior" [], "sync", Kind::Enum(&["sync", "best-effort"]), PENDING,
        "How the node table is saved: sync or best-effort.";
    cluster_databases: i64 = "cluster-databases" [], "1", Kind::int(1, I32), IMMUTABLE | PENDING,
        "Number of databases in cluster mode.";
    cluster_enabled: bool = "cluster-enabled" [], "no", Kind::Bool, IMMUTABLE,
        "Run as a cluster node. Not available yet: `yes` stops start-up.";
    cluster_link_sendbuf_limit: i64 = "cluster-link-sendbuf-limit" [], "0", Kind::memory(0, i64::MAX), PENDING,
        "Largest send buffer of one cluster bus link; 0 is unlimited.";
    cluster_manual_failover_timeout: i64 = "cluster-manual-failover-timeout" [], "5000", Kind::int(1, I32), PENDING,
        "Milliseconds a manual failover may take.";
    cluster_message_gossip_perc: i64 = "cluster-message-gossip-perc" [], "10", Kind::int(1, 100), HIDDEN | PENDING,
        "Percent of known nodes gossiped in each message.";
    cluster_migration_barrier: i64 = "cluster-migration-barrier" [], "1", Kind::int(0, I32), PENDING,
        "Replicas a primary keeps before one may migrate away.";
    cluster_node_timeout: i64 = "cluster-node-timeout" [], "15000", Kind::int(0, i64::MAX), PENDING,
        "Milliseconds before an unreachable node is considered failing.";
    cluster_ping_interval: i64 = "cluster-ping-interval" [], "0", Kind::int(0, i64::MAX), HIDDEN | PENDING,
        "Milliseconds between cluster pings; 0 derives it from the node timeout.";
    cluster_port: i64 = "cluster-port" [], "0", Kind::int(0, 65535), IMMUTABLE | PENDING,
        "Cluster bus port; 0 is port + 10000.";
    cluster_preferred_endpoint_type: String = "cluster-preferred-endpoint-type" [], "ip", Kind::Enum(&["ip", "hostname", "unknown-endpoint"]), PENDING,
        "Endpoint given in redirects: ip, hostname or unknown-endpoint.";
    cluster_replica_no_failover: bool = "cluster-replica-no-failover" ["cluster-slave-no-failover"], "no", Kind::Bool, PENDING,
        "Never fail over this replica automatically.";
    cluster_replica_validity_factor: i64 = "cluster-replica-validity-factor" ["cluster-slave-validity-factor"], "10", Kind::int(0, I32), PENDING,
        "How stale a replica may be and still fail over; 0 means always.";
    cluster_require_full_coverage: bool = "cluster-require-full-coverage" [], "yes", Kind::Bool, PENDING,
        "Refuse queries while some slot is uncovered.";
    cluster_slot_migration_log_max_len: i64 = "cluster-slot-migration-log-max-len" [], "1000", Kind::int(0, i64::MAX), PENDING,
        "How many slot migration entries are kept.";
    cluster_slot_stats_enabled: bool = "cluster-slot-stats-enabled" [], "no", Kind::Bool, PENDING,
        "Count CPU and network use per slot.";
    slowlog_log_slower_than: i64 = "commandlog-execution-slower-than" ["slowlog-log-slower-than"], "10000", Kind::int(-1, i64::MAX), 0,
        "Log commands slower than this many microseconds; -1 disables.";
    commandlog_large_reply_max_len: i64 = "commandlog-large-reply-max-len" [], "128", Kind::int(0, i64::MAX), 0,
        "Entries kept in the large-reply command log.";
    commandlog_large_request_max_len: i64 = "commandlog-large-request-max-len" [], "128", Kind::int(0, i64::MAX), 0,
        "Entries kept in the large-request command log.";
    commandlog_reply_larger_than: i64 = "commandlog-reply-larger-than" [], "1048576", Kind::int(-1, i64::MAX), 0,
        "Log replies larger than this many bytes; -1 disables.";
    commandlog_request_larger_than: i64 = "commandlog-request-larger-than" [], "1048576", Kind::int(-1, i64::MAX), 0,
        "Log requests larger than this many bytes; -1 disables.";
    slowlog_max_len: i64 = "commandlog-slow-execution-max-len" ["slowlog-max-len"], "128", Kind::int(0, i64::MAX), 0,
        "Entries kept in the slow command log.";
    crash_log_enabled: bool = "crash-log-enabled" [], "yes", Kind::Bool, PENDING,
        "Write a crash report to the log on a crash.";
    crash_memcheck_enabled: bool = "crash-memcheck-enabled" [], "yes", Kind::Bool, PENDING,
        "Run a memory test after a crash.";
    daemonize: bool = "daemonize" [], "no", Kind::Bool, IMMUTABLE | PENDING,
        "Detach from the terminal and run in the background.";
    databases: i64 = "databases" [], "16", Kind::int(1, I32), IMMUTABLE,
        "Number of logical databases (SELECT 0 to N-1).";
    dbfilename: String = "dbfilename" [], "dump.rdb", Kind::Custom(special::dbfilename), PROTECTED,
        "Name of the RDB snapshot file inside dir.";
    debug_context: String = "debug-context" [], "", Kind::Str, HIDDEN | PENDING,
        "Free text kept for debugging sessions.";
    dir: String = "dir" [], "", Kind::Custom(special::dir), PROTECTED | ALWAYS_REWRITE | DENY_LOADING,
        "Working directory: snapshots, AOF and relative paths live here.";
    disable_thp: bool = "disable-thp" [], "yes", Kind::Bool, IMMUTABLE | PENDING,
        "Turn transparent huge pages off for this process.";
    dual_channel_replication_enabled: bool = "dual-channel-replication-enabled" [], "no", Kind::Bool, PENDING,
        "Send the snapshot and the backlog on separate connections.";
    enable_debug_assert: bool = "enable-debug-assert" [], "no", Kind::Bool, IMMUTABLE | HIDDEN | PENDING,
        "Run expensive internal consistency checks.";
    enable_debug_command: String = "enable-debug-command" [], "no", Kind::Enum(&["no", "yes", "local"]), IMMUTABLE,
        "Allow DEBUG: no, yes, or local (loopback and unix socket only).";
    enable_module_command: String = "enable-module-command" [], "no", Kind::Enum(&["no", "yes", "local"]), IMMUTABLE,
        "Allow MODULE: no, yes or local.";
    enable_protected_configs: String = "enable-protected-configs" [], "no", Kind::Enum(&["no", "yes", "local"]), IMMUTABLE,
        "Allow CONFIG SET of protected directives (dir, dbfilename): no, yes or local.";
    extended_redis_compatibility: bool = "extended-redis-compatibility" [], "no", Kind::Bool, 0,
        "Pretend to be Redis where clients check the server name.";
    hash_max_listpack_entries: i64 = "hash-max-listpack-entries" ["hash-max-ziplist-entries"], "512", Kind::int(0, i64::MAX), 0,
        "Hashes up to this many fields use the compact encoding.";
    hash_max_listpack_value: i64 = "hash-max-listpack-value" ["hash-max-ziplist-value"], "64", Kind::memory(0, i64::MAX), 0,
        "Hashes whose values are all this short use the compact encoding.";
    hash_seed: String = "hash-seed" [], "", Kind::Str, IMMUTABLE | PENDING,
        "Seed for the hash functions; empty picks a random one.";
    hide_user_data_from_log: bool = "hide-user-data-from-log" [], "yes", Kind::Bool, PENDING,
        "Keep keys and values out of log lines.";
    hll_sparse_max_bytes: i64 = "hll-sparse-max-bytes" [], "3000", Kind::memory(0, i64::MAX), 0,
        "HyperLogLogs stay sparse up to this many bytes.";
    hz: i64 = "hz" [], "10", Kind::Int { min: 0, max: I32, lo: 1, hi: 500 }, 0,
        "Background task frequency per second (1 to 500).";
    ignore_warnings: String = "ignore-warnings" [], "", Kind::Str, PENDING,
        "Start-up warnings to silence, by name.";
    import_mode: bool = "import-mode" [], "no", Kind::Bool, 0,
        "Stop expiry and eviction while a sync tool imports data (CLIENT IMPORT-SOURCE ON).";
    io_threads: i64 = "io-threads" [], "1", Kind::int(1, 256), PENDING,
        "Threads doing network I/O (1 is the main thread only).";
    io_threads_always_active: bool = "io-threads-always-active" [], "no", Kind::Bool, HIDDEN | PENDING,
        "Keep I/O threads busy-polling even when idle.";
    jemalloc_bg_thread: bool = "jemalloc-bg-thread" [], "yes", Kind::Bool, PENDING,
        "Let jemalloc purge memory from a background thread.";
    key_load_delay: i64 = "key-load-delay" [], "0", Kind::int(-I32 - 1, I32), HIDDEN,
        "Testing aid: microseconds to pause per key loaded.";
    latency_monitor_threshold: i64 = "latency-monitor-threshold" [], "0", Kind::int(0, i64::MAX), 0,
        "Record events slower than this many milliseconds; 0 disables.";
    latency_tracking: bool = "latency-tracking" [], "yes", Kind::Bool, 0,
        "Track per-command latency percentiles.";
    latency_tracking_info_percentiles: String = "latency-tracking-info-percentiles" [], "50 99 99.9", Kind::Custom(special::latency_percentiles), MULTI_ARG | ALWAYS_REWRITE,
        "Percentiles INFO latencystats reports.";
    lazyfree_lazy_eviction: bool = "lazyfree-lazy-eviction" [], "yes", Kind::Bool, PENDING,
        "Free evicted values in the background.";
    lazyfree_lazy_expire: bool = "lazyfree-lazy-expire" [], "yes", Kind::Bool, PENDING,
        "Free expired values in the background.";
    lazyfree_lazy_server_del: bool = "lazyfree-lazy-server-del" [], "yes", Kind::Bool, PENDING,
        "Free values overwritten or deleted implicitly in the background.";
    lazyfree_lazy_user_del: bool = "lazyfree-lazy-user-del" [], "yes", Kind::Bool, 0,
        "Make DEL free values in the background like UNLINK.";
    lazyfree_lazy_user_flush: bool = "lazyfree-lazy-user-flush" [], "yes", Kind::Bool, 0,
        "Make FLUSHDB and FLUSHALL asynchronous by default.";
    lfu_decay_time: i64 = "lfu-decay-time" [], "1", Kind::int(0, I32), 0,
        "Minutes after which an LFU counter is halved; 0 never decays.";
    lfu_log_factor: i64 = "lfu-log-factor" [], "10", Kind::int(0, I32), 0,
        "How slowly LFU counters grow; higher means slower.";
    list_compress_depth: i64 = "list-compress-depth" [], "0", Kind::int(0, I32), 0,
        "List nodes left uncompressed at each end; 0 compresses none.";
    list_max_listpack_size: i64 = "list-max-listpack-size" ["list-max-ziplist-size"], "-2", Kind::int(-I32 - 1, I32), 0,
        "Size of one list node: positive counts elements, -1..-5 is 4 KB to 64 KB.";
    loading_process_events_interval_bytes: i64 = "loading-process-events-interval-bytes" [], "2097152", Kind::int(1024, I32), HIDDEN | PENDING,
        "Bytes loaded between serving events while loading.";
    locale_collate: String = "locale-collate" [], "", Kind::Custom(special::locale), PENDING,
        "Locale used to compare strings (SORT with ALPHA).";
    log_format: String = "log-format" [], "legacy", Kind::Enum(&["legacy", "logfmt", "json"]), PENDING,
        "Log line format: legacy, logfmt or json.";
    log_timestamp_format: String = "log-timestamp-format" [], "legacy", Kind::Enum(&["legacy", "iso8601", "milliseconds"]), PENDING,
        "Timestamp format in logs: legacy, iso8601 or milliseconds.";
    logfile: String = "logfile" [], "", Kind::Str, IMMUTABLE,
        "Log file; empty logs to standard output.";
    loglevel: String = "loglevel" [], "notice", Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]), 0,
        "Least important log level written: debug, verbose, notice, warning or nothing.";
    lua_enable_deprecated_api: bool = "lua-enable-deprecated-api" [], "no", Kind::Bool, PROTECTED | HIDDEN | PENDING,
        "Expose Lua functions kept only for old scripts.";
    lua_enable_insecure_api: bool = "lua-enable-insecure-api" [], "no", Kind::Bool, PROTECTED | HIDDEN | PENDING,
        "Expose Lua functions that are unsafe in a sandbox.";
    max_new_connections_per_cycle: i64 = "max-new-connections-per-cycle" [], "10", Kind::int(1, 1000), PENDING,
        "New plain connections accepted per event loop turn.";
    max_new_tls_connections_per_cycle: i64 = "max-new-tls-connections-per-cycle" [], "1", Kind::int(1, 1000), PENDING,
        "New TLS connections accepted per event loop turn.";
    maxclients: i64 = "maxclients" [], "10000", Kind::int(1, U32), 0,
        "Most clients connected at once.";
    maxmemory: u64 = "maxmemory" [], "0", Kind::UnsignedMemory, 0,
        "Memory limit for data; 0 is no limit.";
    maxmemory_clients: i64 = "maxmemory-clients" [], "0", Kind::MemoryOrPercent, PENDING,
        "Memory limit for all client buffers together, in bytes or percent of maxmemory; 0 is no limit.";
    maxmemory_eviction_tenacity: i64 = "maxmemory-eviction-tenacity" [], "10", Kind::int(0, 100), 0,
        "How long one eviction pass may run, 0 to 100.";
    maxmemory_policy: String = "maxmemory-policy" [], "noeviction", Kind::Enum(&["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"]), 0,
        "What to do at the memory limit: evict by LRU, LFU, random or TTL, or refuse writes.";
    maxmemory_samples: i64 = "maxmemory-samples" [], "5", Kind::int(1, 64), 0,
        "Keys sampled per eviction decision.";
    min_io_threads_avoid_copy_reply: i64 = "min-io-threads-avoid-copy-reply" [], "7", Kind::int(0, I32), HIDDEN | PENDING,
        "I/O threads from which large replies are sent without copying.";
    min_replicas_max_lag: i64 = "min-replicas-max-lag" ["min-slaves-max-lag"], "10", Kind::int(0, I32), 0,
        "Seconds of lag under which a replica counts for min-replicas-to-write.";
    min_replicas_to_write: i64 = "min-replicas-to-write" ["min-slaves-to-write"], "0", Kind::int(0, I32), 0,
        "Refuse writes unless this many replicas are connected; 0 disables.";
    min_string_size_avoid_copy_reply: i64 = "min-string-size-avoid-copy-reply" [], "16384", Kind::int(0, I32), HIDDEN | PENDING,
        "Strings at least this long are sent without copying.";
    min_string_size_avoid_copy_reply_threaded: i64 = "min-string-size-avoid-copy-reply-threaded" [], "65536", Kind::int(0, I32), HIDDEN | PENDING,
        "The same threshold when I/O threads are in use.";
    mptcp: bool = "mptcp" [], "no", Kind::Bool, IMMUTABLE | PENDING,
        "Accept Multipath TCP connections.";
    no_appendfsync_on_rewrite: bool = "no-appendfsync-on-rewrite" [], "no", Kind::Bool, 0,
        "Skip AOF fsyncs while a rewrite or snapshot runs.";
    notify_keyspace_events: special::NotifyEvents = "notify-keyspace-events" [], "", Kind::Custom(special::notify_keyspace_events), 0,
        "Classes of keyspace events published; empty disables notifications.";
    oom_score_adj: String = "oom-score-adj" [], "no", Kind::Custom(special::oom_score_adj), PENDING,
        "Set the kernel OOM score: no, yes/relative or absolute.";
    oom_score_adj_values: String = "oom-score-adj-values" [], "0 200 800", Kind::Custom(special::oom_score_adj_values), MULTI_ARG | PENDING,
        "OOM scores for primary, replica and child processes.";
    pidfile: String = "pidfile" [], "", Kind::Str, IMMUTABLE,
        "File to write the process id to; empty writes none.";
    port: i64 = "port" [], "6379", Kind::int(0, 65535), 0,
        "TCP port to listen on; 0 disables TCP.";
    prefetch_batch_max_size: i64 = "prefetch-batch-max-size" [], "16", Kind::int(0, 128), PENDING,
        "Keys prefetched per batch by I/O threads; 0 or 1 disables.";
    primaryauth: String = "primaryauth" ["masterauth"], "", Kind::Str, SENSITIVE,
        "Password used to authenticate to the primary.";
    primaryuser: String = "primaryuser" ["masteruser"], "", Kind::Str, 0,
        "User name used to authenticate to the primary.";
    proc_title_template: String = "proc-title-template" [], "{title} {listen-addr} {server-mode}", Kind::Custom(special::proc_title_template), PENDING,
        "Process title shown by ps.";
    propagation_error_behavior: String = "propagation-error-behavior" [], "ignore", Kind::Enum(&["ignore", "panic", "panic-on-replicas"]), PENDING,
        "What a replica does when a replicated command fails.";
    protected_mode: bool = "protected-mode" [], "yes", Kind::Bool, 0,
        "Refuse non-local clients when no password and no bind address are set.";
    proto_max_bulk_len: i64 = "proto-max-bulk-len" [], "536870912", Kind::memory(1024 * 1024, i64::MAX), 0,
        "Largest bulk string a client may send.";
    rdb_del_sync_files: bool = "rdb-del-sync-files" [], "no", Kind::Bool, PENDING,
        "Delete RDB files used only for replication.";
    rdb_key_save_delay: i64 = "rdb-key-save-delay" [], "0", Kind::int(-I32 - 1, I32), HIDDEN,
        "Testing aid: microseconds to pause per key saved.";
    rdb_save_incremental_fsync: bool = "rdb-save-incremental-fsync" [], "yes", Kind::Bool, 0,
        "Fsync the snapshot every 4 MB while writing it.";
    rdb_version_check: String = "rdb-version-check" [], "strict", Kind::Enum(&["strict", "relaxed"]), 0,
        "strict refuses an RDB file of a version newer than ferrokv knows; relaxed reads it, failing only on data it does not know.";
    rdbchecksum: bool = "rdbchecksum" [], "yes", Kind::Bool, IMMUTABLE,
        "Write and check a checksum at the end of RDB files.";
    rdbcompression: bool = "rdbcompression" [], "yes", Kind::Bool, 0,
        "Compress strings in RDB files.";
    rdma_bind: String = "rdma-bind" [], "", Kind::Custom(special::rdma_bind), PENDING,
        "Addresses to listen on for RDMA.";
    rdma_completion_vector: i64 = "rdma-completion-vector" [], "-1", Kind::int(-1, 1024), IMMUTABLE | PENDING,
        "RDMA completion vector; -1 picks one.";
    rdma_port: i64 = "rdma-port" [], "0", Kind::int(0, 65535), PENDING,
        "RDMA port; 0 disables RDMA.";
    rdma_rx_size: i64 = "rdma-rx-size" [], "1048576", Kind::int(65536, 16777216), IMMUTABLE | PENDING,
        "RDMA receive buffer size.";
    repl_backlog_size: i64 = "repl-backlog-size" [], "10485760", Kind::Memory { min: 1, max: i64::MAX, lo: 16384 }, 0,
        "Replication backlog size (at least 16 KB).";
    repl_backlog_ttl: i64 = "repl-backlog-ttl" [], "3600", Kind::int(0, i64::MAX), 0,
        "Seconds a primary without replicas keeps its backlog; 0 keeps it forever.";
    repl_disable_tcp_nodelay: bool = "repl-disable-tcp-nodelay" [], "no", Kind::Bool, PENDING,
        "Batch replication traffic into fewer packets.";
    repl_diskless_load: String = "repl-diskless-load" [], "disabled", Kind::Enum(&["disabled", "on-empty-db", "swapdb", "flush-before-load"]), 0,
        "How a replica loads the snapshot: disabled, on-empty-db, swapdb or flush-before-load.";
    repl_diskless_sync: bool = "repl-diskless-sync" [], "yes", Kind::Bool, 0,
        "Send snapshots to replicas without writing them to disk.";
    repl_diskless_sync_delay: i64 = "repl-diskless-sync-delay" [], "5", Kind::int(0, I32), 0,
        "Seconds to wait for more replicas before a diskless sync.";
    repl_diskless_sync_max_replicas: i64 = "repl-diskless-sync-max-replicas" [], "0", Kind::int(0, I32), 0,
        "Start a diskless sync as soon as this many replicas wait; 0 waits the full delay.";
    repl_mptcp: bool = "repl-mptcp" [], "no", Kind::Bool, IMMUTABLE | PENDING,
        "Use Multipath TCP for replication.";
    repl_ping_replica_period: i64 = "repl-ping-replica-period" ["repl-ping-slave-period"], "10", Kind::int(1, I32), 0,
        "Seconds between pings from primary to replicas.";
    repl_timeout: i64 = "repl-timeout" [], "60", Kind::int(1, I32), 0,
        "Seconds of silence before a replication link is considered broken.";
    replica_announce_ip: String = "replica-announce-ip" ["slave-announce-ip"], "", Kind::Str, 0,
        "Address a replica reports to its primary.";
    replica_announce_port: i64 = "replica-announce-port" ["slave-announce-port"], "0", Kind::int(0, 65535), 0,
        "Port a replica reports to its primary; 0 uses port.";
    replica_announced: bool = "replica-announced" [], "yes", Kind::Bool, 0,
        "List this replica in Sentinel's replica lists.";
    replica_ignore_disk_write_errors: bool = "replica-ignore-disk-write-errors" [], "no", Kind::Bool, PENDING,
        "Keep replicating even when the replica cannot write to disk.";
    replica_ignore_maxmemory: bool = "replica-ignore-maxmemory" ["slave-ignore-maxmemory"], "yes", Kind::Bool, 0,
        "Replicas ignore maxmemory and evict nothing themselves.";
    replica_lazy_flush: bool = "replica-lazy-flush" ["slave-lazy-flush"], "yes", Kind::Bool, 0,
        "Replicas flush their data in the background before a full sync.";
    replica_priority: i64 = "replica-priority" ["slave-priority"], "100", Kind::int(0, I32), 0,
        "Failover preference for this replica; lower wins, 0 never.";
    replica_read_only: bool = "replica-read-only" ["slave-read-only"], "yes", Kind::Bool, 0,
        "Replicas refuse writes from clients.";
    replica_serve_stale_data: bool = "replica-serve-stale-data" ["slave-serve-stale-data"], "yes", Kind::Bool, 0,
        "Replicas answer while their link to the primary is down.";
    replicaof: String = "replicaof" ["slaveof"], "", Kind::Custom(special::replicaof), IMMUTABLE | MULTI_ARG,
        "Primary to replicate from: host and port.";
    requirepass: String = "requirepass" [], "", Kind::Str, SENSITIVE,
        "Password of the default user; empty means no password.";
    save: String = "save" [], "3600 1 300 100 60 10000", Kind::Custom(special::save), MULTI_ARG | APPEND | ALWAYS_REWRITE,
        "Snapshot after <seconds> if at least <changes> writes happened; empty disables.";
    server_cpulist: String = "server-cpulist" ["server_cpulist"], "", Kind::Str, IMMUTABLE | PENDING,
        "CPUs the main and I/O threads are pinned to.";
    set_max_intset_entries: i64 = "set-max-intset-entries" [], "512", Kind::int(0, i64::MAX), 0,
        "Sets of integers up to this size use the compact integer encoding.";
    set_max_listpack_entries: i64 = "set-max-listpack-entries" [], "128", Kind::int(0, i64::MAX), 0,
        "Sets up to this many members use the compact encoding.";
    set_max_listpack_value: i64 = "set-max-listpack-value" [], "64", Kind::int(0, i64::MAX), 0,
        "Sets whose members are all this short use the compact encoding.";
    set_proc_title: bool = "set-proc-title" [], "yes", Kind::Bool, IMMUTABLE | PENDING,
        "Change the process title shown by ps.";
    shutdown_on_sigint: String = "shutdown-on-sigint" [], "default", Kind::Custom(special::shutdown_flags), MULTI_ARG,
        "Shutdown flags applied on SIGINT (save, nosave, now, force; a second SIGINT exits at once).";
    shutdown_on_sigterm: String = "shutdown-on-sigterm" [], "default", Kind::Custom(special::shutdown_flags), MULTI_ARG,
        "Shutdown flags applied on SIGTERM (save, nosave, now, force).";
    shutdown_timeout: i64 = "shutdown-timeout" [], "10", Kind::int(0, I32), 0,
        "Seconds a shutdown waits, writes paused, for lagging replicas to catch up (0: no wait).";
    slot_migration_max_failover_repl_bytes: i64 = "slot-migration-max-failover-repl-bytes" [], "0", Kind::memory(-1, i64::MAX), PENDING,
        "Replication lag allowed before failing over during slot migration; -1 is no limit.";
    socket_mark_id: i64 = "socket-mark-id" [], "0", Kind::int(0, U32), IMMUTABLE | PENDING,
        "Mark set on listening sockets for routing rules.";
    stop_writes_on_bgsave_error: bool = "stop-writes-on-bgsave-error" [], "yes", Kind::Bool, 0,
        "Refuse writes while the last background save failed.";
    stream_node_max_bytes: i64 = "stream-node-max-bytes" [], "4096", Kind::memory(0, i64::MAX), 0,
        "Largest stream node in bytes; 0 is no limit.";
    stream_node_max_entries: i64 = "stream-node-max-entries" [], "100", Kind::int(0, i64::MAX), 0,
        "Most entries in one stream node; 0 is no limit.";
    supervised: String = "supervised" [], "no", Kind::Enum(&["upstart", "systemd", "auto", "no"]), IMMUTABLE | PENDING,
        "Talk to a supervisor: no, upstart, systemd or auto.";
    syslog_enabled: bool = "syslog-enabled" [], "no", Kind::Bool, IMMUTABLE | PENDING,
        "Also log to syslog.";
    syslog_facility: String = "syslog-facility" [], "local0", Kind::Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]), IMMUTABLE | PENDING,
        "Syslog facility: user or local0 to local7.";
    syslog_ident: String = "syslog-ident" [], "valkey", Kind::Str, IMMUTABLE | PENDING,
        "Syslog identity.";
    tcp_backlog: i64 = "tcp-backlog" [], "511", Kind::int(0, I32), IMMUTABLE,
        "Length of the TCP accept queue.";
    tcp_keepalive: i64 = "tcp-keepalive" [], "300", Kind::int(0, I32), 0,
        "Idle seconds before the first TCP keepalive probe to a client, then one every third of that; three unanswered probes drop it (as Valkey). 0 disables.";
    timeout: i64 = "timeout" [], "0", Kind::int(0, I32), 0,
        "Close clients idle this many seconds; 0 never.";
    tls_auth_clients: String = "tls-auth-clients" [], "yes", Kind::Enum(&["no", "yes", "optional"]), 0,
        "Require client certificates: yes, no or optional.";
    tls_auth_clients_user: String = "tls-auth-clients-user" [], "off", Kind::Enum(&["CN", "URI", "off"]), 0,
        "Log clients in as the user named in their certificate: CN, URI or off.";
    tls_auto_reload_interval: i64 = "tls-auto-reload-interval" [], "0", Kind::int(0, I32), 0,
        "Seconds between reloads of TLS certificates; 0 never.";
    tls_ca_cert_dir: String = "tls-ca-cert-dir" [], "", Kind::Str, 0,
        "Directory of trusted CA certificates.";
    tls_ca_cert_file: String = "tls-ca-cert-file" [], "", Kind::Str, 0,
        "File of trusted CA certificates.";
    tls_cert_file: String = "tls-cert-file" [], "", Kind::Str, 0,
        "Server certificate.";
    tls_ciphers: String = "tls-ciphers" [], "", Kind::Str, 0,
        "Ciphers allowed for TLS 1.2 and older.";
    tls_ciphersuites: String = "tls-ciphersuites" [], "", Kind::Str, 0,
        "Cipher suites allowed for TLS 1.3.";
    tls_client_cert_file: String = "tls-client-cert-file" [], "", Kind::Str, 0,
        "Certificate used when this server connects as a client.";
    tls_client_key_file: String = "tls-client-key-file" [], "", Kind::Str, 0,
        "Key of the client certificate.";
    tls_client_key_file_pass: String = "tls-client-key-file-pass" [], "", Kind::Str, SENSITIVE,
        "Passphrase of the client key.";
    tls_cluster: bool = "tls-cluster" [], "no", Kind::Bool, PENDING,
        "Use TLS on the cluster bus.";
    tls_dh_params_file: String = "tls-dh-params-file" [], "", Kind::Str, PENDING,
        "Diffie-Hellman parameters file; accepted and unused (rustls has no DHE key exchange).";
    tls_key_file: String = "tls-key-file" [], "", Kind::Str, 0,
        "Key of the server certificate.";
    tls_key_file_pass: String = "tls-key-file-pass" [], "", Kind::Str, SENSITIVE,
        "Passphrase of the server key.";
    tls_port: i64 = "tls-port" [], "0", Kind::int(0, 65535), 0,
        "TLS port to listen on; 0 disables TLS.";
    tls_prefer_server_ciphers: bool = "tls-prefer-server-ciphers" [], "no", Kind::Bool, 0,
        "Prefer the server's cipher order over the client's.";
    tls_protocols: String = "tls-protocols" [], "", Kind::Str, 0,
        "TLS versions allowed, e.g. \"TLSv1.2 TLSv1.3\".";
    tls_replication: bool = "tls-replication" [], "no", Kind::Bool, 0,
        "Use TLS for replication links.";
    tls_session_cache_size: i64 = "tls-session-cache-size" [], "20480", Kind::int(0, I32), 0,
        "Number of cached TLS sessions.";
    tls_session_cache_timeout: i64 = "tls-session-cache-timeout" [], "300", Kind::int(0, I32), 0,
        "Seconds a cached TLS session stays valid.";
    tls_session_caching: bool = "tls-session-caching" [], "yes", Kind::Bool, 0,
        "Cache TLS sessions for faster reconnects.";
    tls_sni_cert: String = "tls-sni-cert" [], "", Kind::Custom(special::sni_certs), MULTI_ARG | APPEND | HIDDEN,
        "Extra certificates chosen by the server name a TLS client asks for: <server-name> <cert-file> <key-file>, one line each. A ferrokv directive: hidden from CONFIG GET globs so their output stays Valkey's.";
    tracking_table_max_keys: i64 = "tracking-table-max-keys" [], "1000000", Kind::int(0, i64::MAX), 0,
        "Keys remembered for client-side caching; 0 is no limit.";
    unixsocket: String = "unixsocket" [], "", Kind::Str, IMMUTABLE,
        "Unix socket path to listen on; empty disables it.";
    unixsocketgroup: String = "unixsocketgroup" [], "", Kind::Str, IMMUTABLE | PENDING,
        "Group owning the unix socket.";
    unixsocketperm: i64 = "unixsocketperm" [], "0", Kind::Octal, IMMUTABLE,
        "Permissions of the unix socket, in octal; 0 leaves the default.";
    use_exit_on_panic: bool = "use-exit-on-panic" [], "no", Kind::Bool, HIDDEN | PENDING,
        "Exit instead of aborting on a panic (for tests).";
    watchdog_period: i64 = "watchdog-period" [], "0", Kind::int(0, I32), HIDDEN | PENDING,
        "Milliseconds after which a blocked main thread logs a stack trace; 0 disables.";
    worker_threads: i64 = "worker-threads" [], "0", Kind::int(0, 1024), IMMUTABLE | HIDDEN,
        "Threads serving clients; 0 means one per CPU core. A ferrokv directive: hidden from CONFIG GET globs so their output stays Valkey's.";
    zset_max_listpack_entries: i64 = "zset-max-listpack-entries" ["zset-max-ziplist-entries"], "128", Kind::int(0, i64::MAX), 0,
        "Sorted sets up to this many members use the compact encoding.";
    zset_max_listpack_value: i64 = "zset-max-listpack-value" ["zset-max-ziplist-value"], "64", Kind::memory(0, i64::MAX), 0,
        "Sorted sets whose members are all this short use the compact encoding.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_get() {
        let c = Config::default();
        for d in DIRECTIVES {
            if d.name != "dir" {
                assert_eq!(d.get(&c), d.default, "{}", d.name);
            }
        }
    }

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in all_names() {
            assert_eq!(name, name.to_ascii_lowercase());
            assert!(seen.insert(name), "{name} declared twice");
        }
    }

    #[test]
    fn aliases_share_the_field() {
        let mut c = Config::default();
        Directive::find("slave-read-only")
            .unwrap()
            .set(&mut c, "no")
            .unwrap();
        assert!(!c.replica_read_only);
        Directive::find("SLOWLOG-MAX-LEN")
            .unwrap()
            .set(&mut c, "5")
            .unwrap();
        assert_eq!(c.slowlog_max_len, 5);
        assert_eq!(lookup("SlaveOf").unwrap().1, "slaveof");
    }

    #[test]
    fn clamped_values() {
        let mut c = Config::default();
        let hz = Directive::find("hz").unwrap();
        hz.set(&mut c, "0").unwrap();
        assert_eq!(c.hz, 1);
        hz.set(&mut c, "501").unwrap();
        assert_eq!(c.hz, 500);
        Directive::find("repl-backlog-size")
            .unwrap()
            .set(&mut c, "1")
            .unwrap();
        assert_eq!(c.repl_backlog_size, 16384);
    }
}
