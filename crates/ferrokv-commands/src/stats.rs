//! Server statistics, kept per thread so that counting never contends between cores.
//!
//! Each thread that runs commands owns a [`ThreadStats`] and bumps it with relaxed atomic
//! adds on cache lines no other thread writes. INFO sums every thread's block.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::table::TABLE;

/// A counter written by one thread and read by any.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        // Only the owning thread writes, so load+store is as correct as fetch_add and cheaper.
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}

/// Per-command counters (INFO commandstats).
#[derive(Default, Debug)]
pub struct CommandCounters {
    pub calls: Counter,
    pub usec: Counter,
    pub rejected_calls: Counter,
    pub failed_calls: Counter,
}

#[derive(Debug)]
pub struct ThreadStats {
    pub commands: Box<[CommandCounters]>,
    pub total_commands: Counter,
    pub connections_received: Counter,
    pub rejected_connections: Counter,
    pub expired_keys: Counter,
    /// Clients closed for going over `client-query-buffer-limit`.
    pub query_buffer_limit_disconnections: Counter,
    /// Hash fields reclaimed by the active expiry (INFO `expired_fields`).
    pub expired_fields: Counter,
    pub evicted_keys: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub total_error_replies: Counter,
    pub dirty: Counter,
    /// Error replies by code (INFO errorstats). Rare, so a lock is fine.
    pub errors: Mutex<HashMap<String, u64>>,
}

impl ThreadStats {
    fn new() -> ThreadStats {
        ThreadStats {
            commands: (0..TABLE.len())
                .map(|_| CommandCounters::default())
                .collect(),
            total_commands: Counter::default(),
            connections_received: Counter::default(),
            rejected_connections: Counter::default(),
            expired_keys: Counter::default(),
            query_buffer_limit_disconnections: Counter::default(),
            expired_fields: Counter::default(),
            evicted_keys: Counter::default(),
            keyspace_hits: Counter::default(),
            keyspace_misses: Counter::default(),
            net_input_bytes: Counter::default(),
            net_output_bytes: Counter::default(),
            total_error_replies: Counter::default(),
            dirty: Counter::default(),
            errors: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an error reply under its code (the first word of the text).
    pub fn count_error(&self, text: &str) {
        self.total_error_replies.add(1);
        let code = text.split(' ').next().unwrap_or("ERR");
        *self.errors.lock().entry(code.to_string()).or_insert(0) += 1;
    }

    fn reset(&self) {
        for c in self.commands.iter() {
            c.calls.reset();
            c.usec.reset();
            c.rejected_calls.reset();
            c.failed_calls.reset();
        }
        for c in [
            &self.total_commands,
            &self.connections_received,
            &self.rejected_connections,
            &self.expired_keys,
            &self.query_buffer_limit_disconnections,
            &self.expired_fields,
            &self.evicted_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.total_error_replies,
        ] {
            c.reset();
        }
        self.errors.lock().clear();
    }
}

static ALL: LazyLock<Mutex<Vec<&'static ThreadStats>>> = LazyLock::new(|| Mutex::new(Vec::new()));

thread_local! {
    // Leaked once per thread: a block must outlive its thread because INFO keeps summing the
    // counts of threads that have exited, and threads are few (one per core plus helpers).
    static LOCAL: &'static ThreadStats = {
        let stats: &'static ThreadStats = Box::leak(Box::new(ThreadStats::new()));
        ALL.lock().push(stats);
        stats
    };
}

/// This thread's statistics block.
pub fn local() -> &'static ThreadStats {
    LOCAL.with(|s| *s)
}

/// Sums `pick` over every thread's block.
pub fn sum(pick: impl Fn(&ThreadStats) -> u64) -> u64 {
    ALL.lock().iter().map(|s| pick(s)).sum()
}

/// Visits every thread's block.
pub fn for_each(mut visit: impl FnMut(&ThreadStats)) {
    for s in ALL.lock().iter() {
        visit(s);
    }
}

/// CONFIG RESETSTAT.
pub fn reset_all() {
    for s in ALL.lock().iter() {
        s.reset();
    }
}
