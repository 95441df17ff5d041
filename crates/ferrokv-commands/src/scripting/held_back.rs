//! The bookkeeping of a script's calls while its run may still start again.
//!
//! A run that holds only its declared keys' shards starts again, holding every shard, when a
//! call needs a busy shard before anything changed (see `run`). The calls made until then
//! ran for nothing, and they are all reads: had their statistics (commandstats, command logs,
//! latency, keyspace hits and misses, error counts), their MONITOR lines and their key-miss
//! notifications gone out, a restarted run would count and show its reads twice. So until
//! the run can no longer start again (its first call that writes or propagates, or its
//! end) that bookkeeping waits here, and is then released as it happened, or dropped with
//! the attempt. What the reads did for real (keys expired on access, tracking) stays.
//!
//! One case is not covered: a run suspended past `busy-reply-threshold` (see `fiber`) lets
//! other clients of its thread run, whose commands publish the thread's waiting key-miss
//! notifications, the run's included; if it then starts again, those went out once more.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ferrokv_store::events;

use crate::client::Client;
use crate::server::Server;
use crate::spec::flag;
use crate::stats;
use crate::table::TableEntry;

/// Held bookkeeping of one run's calls; every client has one, only a script's is ever
/// active.
#[derive(Default)]
pub struct HeldBack {
    active: bool,
    calls: Vec<HeldCall>,
    /// Written only by the script's thread (atomics only so that `Client` stays `Sync`).
    hits: AtomicU64,
    misses: AtomicU64,
    /// The thread's waiting notifications when the attempt began.
    notifications_mark: usize,
}

/// One call's bookkeeping, as `dispatch::call` would have done it.
pub struct HeldCall {
    pub entry: &'static TableEntry,
    /// Empty unless a monitor or a command log will show them.
    pub args: Vec<Bytes>,
    /// The database the call left the client in (what MONITOR shows).
    pub db: usize,
    pub elapsed_us: u64,
    /// The size of its reply (for the large-reply log).
    pub reply_bytes: usize,
    pub now_ms: i64,
    /// The error it replied, if any.
    pub error: Option<Cow<'static, str>>,
}

impl HeldBack {
    /// Whether calls are held back now.
    #[inline]
    pub fn active(&self) -> bool {
        self.active
    }

    /// Starts an attempt of a run; `may_restart` says whether it can start again.
    pub fn begin(&mut self, may_restart: bool) {
        self.calls.clear();
        self.hits.store(0, Relaxed);
        self.misses.store(0, Relaxed);
        self.active = may_restart;
        if may_restart {
            self.notifications_mark = events::notifications_waiting();
        }
    }

    pub fn hold(&mut self, call: HeldCall) {
        self.calls.push(call);
    }

    /// Counts a lookup of a held call (a keyspace hit or miss).
    #[inline]
    pub fn count_lookup(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.store(counter.load(Relaxed) + 1, Relaxed);
    }

    /// The attempt is abandoned: what its calls would have shown goes, except what did
    /// happen (notifications other than key misses).
    pub fn discard(&mut self) {
        if self.active {
            events::drop_key_misses_since(self.notifications_mark);
        }
        self.begin(false);
    }
}

/// The run can no longer start again (or ended): its held calls are accounted for, in
/// order, and later calls are accounted for as they run.
pub fn release(server: &Server, client: &mut Client) {
    if !client.held_back.active {
        return;
    }
    client.held_back.active = false;
    let held = std::mem::take(&mut client.held_back.calls);
    let local = stats::local();
    local
        .keyspace_hits
        .add(client.held_back.hits.swap(0, Relaxed));
    local
        .keyspace_misses
        .add(client.held_back.misses.swap(0, Relaxed));
    for call in &held {
        crate::dispatch::account(
            client,
            call.entry,
            &call.args,
            call.elapsed_us,
            call.reply_bytes,
            call.now_ms,
        );
        if let Some(error) = &call.error {
            local.commands[call.entry.id].failed_calls.add(1);
            local.count_error(error);
        }
        // Arguments were kept when a monitor was there as the call ran.
        if !call.args.is_empty() && call.entry.spec.flags & (flag::ADMIN | flag::SKIP_MONITOR) == 0
        {
            crate::monitor::feed_in(server, client, call.db, &call.args);
        }
    }
    // The buffer is kept for the next run.
    client.held_back.calls = held;
    client.held_back.calls.clear();
}
