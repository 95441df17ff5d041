//! How a replica sees expired keys (Valkey's rules): a replica never deletes a key because
//! its time has passed, it waits for the primary's DEL. Until then, the replica's own clients
//! find nothing there (the key is logically expired), while the primary's commands, applied
//! on the replication link's thread, still find the key alive, so that a command the primary
//! ran before the key expired there has the same effect here.
//!
//! Both flags are consulted only once a key has been found expired, so a primary's lookups
//! pay nothing for them.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// This server follows a primary.
static REPLICA: AtomicBool = AtomicBool::new(false);

/// Unix ms until which writes are paused (CLIENT PAUSE, a failover): the dataset must not
/// change, so expired keys stay too, as on a replica (Valkey pauses expiry with writes).
static FROZEN_UNTIL_MS: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// This thread applies the primary's stream.
    static PRIMARY_VIEW: Cell<bool> = const { Cell::new(false) };
}

/// Set when the server starts or stops following a primary.
pub fn set_replica(on: bool) {
    REPLICA.store(on, Relaxed);
}

pub fn is_replica() -> bool {
    REPLICA.load(Relaxed)
}

/// Marks the calling thread as the one applying the primary's commands.
pub fn enter_primary_view() {
    PRIMARY_VIEW.with(|v| v.set(true));
}

/// For a key already found past its expiry: whether the caller must still treat it as
/// alive (the primary's commands on a replica).
#[inline]
pub fn expired_key_still_alive() -> bool {
    is_replica() && PRIMARY_VIEW.with(Cell::get)
}

/// Set whenever the pauses change: the end of the last pause that holds back writes (0:
/// none).
pub fn set_frozen_until(unix_ms: i64) {
    FROZEN_UNTIL_MS.store(unix_ms, Relaxed);
}

/// For a key already found past its expiry: whether it must stay in the keyspace instead
/// of being deleted now (any thread of a replica, or while writes are paused).
#[inline]
pub fn keep_expired_keys() -> bool {
    is_replica() || {
        let until = FROZEN_UNTIL_MS.load(Relaxed);
        until > 0 && crate::clock::now_ms() < until
    }
}
