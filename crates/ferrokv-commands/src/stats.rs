//! Server statistics, kept per thread so that counting never contends between cores.
//!
//! Each thread that runs commands owns a [`ThreadStats`] and bumps it with relaxed atomic
//! adds on cache lines no other thread writes. INFO sums every thread's block.

use std::cell::Cell;
use std::collections::BTreeMap;
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
}

/// INFO errorstats: error replies by code, for the whole server (errors are rare, so one
/// lock is fine). At most [`ERROR_CODES_MAX`] codes, as in Valkey: a script can make up
/// codes without end, so once the table is full a new code a script made up counts under
/// [`ERRORSTATS_OVERFLOW`]; the server's own codes are few and always get their line.
static ERRORS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
const ERROR_CODES_MAX: usize = 128;
const ERRORSTATS_OVERFLOW: &str = "ERRORSTATS_OVERFLOW";

/// What the next error reply counted on this thread is (see [`mark_next_error`]).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub enum NextError {
    /// A server error: counted under its code.
    #[default]
    Server,
    /// A script made it up (`error_reply`, `{err=...}`): may count as an overflow.
    Custom,
    /// It was counted where it arose (a script's failed `server.call` it raises again).
    AlreadyCounted,
}

thread_local! {
    static NEXT_ERROR: Cell<NextError> = const { Cell::new(NextError::Server) };
}

/// Says what the error reply about to be counted on this thread is.
pub fn mark_next_error(kind: NextError) {
    NEXT_ERROR.with(|n| n.set(kind));
}

/// The code an error reply counts under, as Valkey finds it: the text before the first
/// space within the reply's first 32 bytes (its `-` included), else `ERR`.
pub fn error_code(text: &str) -> &str {
    let head = &text.as_bytes()[..text.len().min(31)];
    match head.iter().position(|&b| b == b' ') {
        Some(space) => &text[..space],
        None => "ERR",
    }
}

/// Error codes and their counts, by code.
pub fn error_counts() -> Vec<(String, u64)> {
    ERRORS.lock().iter().map(|(c, n)| (c.clone(), *n)).collect()
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
        }
    }

    /// Counts an error reply under its code, as [`mark_next_error`] said it is.
    pub fn count_error(&self, text: &str) {
        let kind = NEXT_ERROR.with(|n| n.replace(NextError::Server));
        self.count_error_of_kind(text, kind);
    }

    /// Counts an error a script made up, written right now (see [`NextError::Custom`]).
    pub fn count_script_error(&self, text: &str) {
        self.count_error_of_kind(text, NextError::Custom);
    }

    fn count_error_of_kind(&self, text: &str, kind: NextError) {
        if kind == NextError::AlreadyCounted {
            return;
        }
        self.total_error_replies.add(1);
        let code = error_code(text);
        let mut errors = ERRORS.lock();
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if kind == NextError::Custom && errors.len() >= ERROR_CODES_MAX {
            *errors.entry(ERRORSTATS_OVERFLOW.to_string()).or_insert(0) += 1;
        } else {
            errors.insert(code.to_string(), 1);
        }
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
    ERRORS.lock().clear();
}
