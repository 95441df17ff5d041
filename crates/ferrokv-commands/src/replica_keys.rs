//! The keys a writable replica's own clients gave a TTL (`replica-read-only no`), which only
//! the replica itself can expire.
//!
//! A replica never deletes a key because its time has passed: the primary's DEL does (see
//! `ferrokv_store::replica_view`). A key a local client wrote with a TTL has no such DEL
//! coming, so the replica remembers it here and its cron deletes it once due, as Valkey's
//! `replicaKeysWithExpire` does; INFO shows how many it tracks
//! (`slave_expires_tracked_keys`). Only these keys: one from the primary must still wait for
//! the primary's DEL, or a command the primary ran before its expiry would find it gone.
//!
//! Keys are tracked per database (a bitmap: databases 0-63, as Valkey) under the name the
//! command gave: a key a write moves to another database (MOVE, COPY .. DB) is not
//! followed there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokv_store::{clock, replica_view};
use parking_lot::Mutex;

use crate::server::Server;
use crate::spec::{CommandSpec, flag};

/// Tracked key → the databases (bit `db`) where it has a TTL a local client set.
static TRACKED: Mutex<BTreeMap<Box<[u8]>, u64>> = Mutex::new(BTreeMap::new());

/// Where the last cron pass stopped, so that each pass goes on from there.
static CURSOR: Mutex<Option<Box<[u8]>>> = Mutex::new(None);

/// Keys looked at per cron pass at most, and the time a pass may take.
const KEYS_PER_PASS: usize = 1000;
const PASS_BUDGET: Duration = Duration::from_millis(1);

/// Whether a write that just ran on this thread is a writable replica's own: the server
/// follows a primary and the command came from one of its clients (not the primary's
/// stream, not an AOF being replayed).
pub fn local_write_on_replica(spec: &CommandSpec, replaying: bool) -> bool {
    spec.flags & flag::WRITE != 0
        && replica_view::is_replica()
        && !replaying
        && !replica_view::applies_primary_stream()
}

/// After a local write on a replica: remembers each of its keys (in database `db`) that now
/// has a TTL.
pub fn remember(server: &Server, db: usize, spec: &CommandSpec, args: &[Bytes]) {
    if db >= 64 {
        return;
    }
    crate::spec::for_each_command_key(spec, args, |i, _| {
        let key = &args[i];
        let mut locked = server.keyspace.lock(&[key]);
        let has_ttl = locked
            .db(db, key)
            .expire_of(key)
            .is_some_and(|at| at != ferrokv_store::NO_EXPIRE);
        drop(locked);
        if has_ttl {
            *TRACKED.lock().entry(key.as_ref().into()).or_default() |= 1 << db;
        }
    });
}

/// How many keys are tracked (INFO's `slave_expires_tracked_keys`).
pub fn count() -> usize {
    TRACKED.lock().len()
}

/// Forgets every tracked key: the dataset was replaced (a full sync), or the server is a
/// primary now and its own expiry cycle covers every key.
pub fn forget_all() {
    TRACKED.lock().clear();
    *CURSOR.lock() = None;
}

/// One cron pass on a replica: deletes the tracked keys whose time has come, and forgets
/// those that are gone or have no TTL any more. Returns whether anything was deleted (the
/// caller then handles the key events).
pub fn expire_due(server: &Server) -> bool {
    let batch: Vec<(Box<[u8]>, u64)> = {
        let tracked = TRACKED.lock();
        if tracked.is_empty() {
            return false;
        }
        let cursor = CURSOR.lock().take();
        let after = match &cursor {
            Some(last) => tracked.range::<[u8], _>((
                std::ops::Bound::Excluded(&**last),
                std::ops::Bound::Unbounded,
            )),
            None => tracked.range::<[u8], _>(..),
        };
        after
            .take(KEYS_PER_PASS)
            .map(|(key, dbs)| (key.clone(), *dbs))
            .collect()
    };
    let started = Instant::now();
    let mut deleted = false;
    let mut last = None;
    // A pass that saw every key up to the end starts the next one from the beginning.
    let mut reached_end = batch.len() < KEYS_PER_PASS;
    for (key, dbs) in batch {
        let now_ms = clock::now_ms();
        let mut keep = 0u64;
        let mut locked = server.keyspace.lock(&[&*key]);
        for db in (0..64).filter(|db| dbs & (1 << db) != 0) {
            match locked.db(db, &key).expire_replica_own_key(&key, now_ms) {
                Some(true) => deleted = true,
                Some(false) => keep |= 1 << db,
                // Gone, or its TTL removed: nothing left to expire there.
                None => {}
            }
        }
        drop(locked);
        let mut tracked = TRACKED.lock();
        // A write since the batch was taken may have added databases.
        if let Some(now) = tracked.get_mut(&key) {
            *now = (*now & !dbs) | keep;
            if *now == 0 {
                tracked.remove(&key);
            }
        }
        drop(tracked);
        last = Some(key);
        if started.elapsed() > PASS_BUDGET {
            reached_end = false;
            break;
        }
    }
    *CURSOR.lock() = if reached_end { None } else { last };
    deleted
}
