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

/// `import-mode yes`: a sync tool copies another server's data here, so nothing expires or
/// is evicted on its own (the source decides, as a primary does for its replica); clients
/// marked with CLIENT IMPORT-SOURCE see expired keys alive, as a replica's primary link does.
static IMPORT_MODE: AtomicBool = AtomicBool::new(false);

/// Unix ms until which writes are paused (CLIENT PAUSE, a failover): the dataset must not
/// change, so expired keys stay too, as on a replica (Valkey pauses expiry with writes).
static FROZEN_UNTIL_MS: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// This thread applies the primary's stream.
    static PRIMARY_VIEW: Cell<bool> = const { Cell::new(false) };
    /// This thread runs a command of a client marked CLIENT IMPORT-SOURCE ON.
    static IMPORT_SOURCE_VIEW: Cell<bool> = const { Cell::new(false) };
    /// This thread replays an AOF: nothing has expired while loading (Valkey expires what
    /// is due once loaded), so a field set with a time since past is still there for the
    /// HDEL recorded after it.
    static LOADING_VIEW: Cell<bool> = const { Cell::new(false) };
}

/// Set when the server starts or stops following a primary.
pub fn set_replica(on: bool) {
    REPLICA.store(on, Relaxed);
}

pub fn is_replica() -> bool {
    REPLICA.load(Relaxed)
}

pub fn set_import_mode(on: bool) {
    IMPORT_MODE.store(on, Relaxed);
}

pub fn import_mode() -> bool {
    IMPORT_MODE.load(Relaxed)
}

/// While alive, the calling thread sees expired keys alive for one reason: it runs an
/// import source's command (see [`IMPORT_MODE`]) or replays an AOF (`LOADING_VIEW`). The
/// previous state comes back on drop, so the views nest.
pub struct ExpiredAliveView {
    view: &'static std::thread::LocalKey<Cell<bool>>,
    was: bool,
}

impl ExpiredAliveView {
    pub fn import_source() -> ExpiredAliveView {
        Self::enter(&IMPORT_SOURCE_VIEW)
    }

    pub fn loading() -> ExpiredAliveView {
        Self::enter(&LOADING_VIEW)
    }

    fn enter(view: &'static std::thread::LocalKey<Cell<bool>>) -> ExpiredAliveView {
        ExpiredAliveView {
            view,
            was: view.with(|v| v.replace(true)),
        }
    }
}

impl Drop for ExpiredAliveView {
    fn drop(&mut self) {
        let was = self.was;
        self.view.with(|v| v.set(was));
    }
}

/// Marks the calling thread as the one applying the primary's commands.
pub fn enter_primary_view() {
    PRIMARY_VIEW.with(|v| v.set(true));
}

/// Whether the calling thread applies the primary's commands.
pub fn applies_primary_stream() -> bool {
    PRIMARY_VIEW.with(Cell::get)
}

/// For a key already found past its expiry: whether the caller must still treat it as
/// alive (the primary's commands on a replica).
#[inline]
pub fn expired_key_still_alive() -> bool {
    (is_replica() && PRIMARY_VIEW.with(Cell::get))
        || (import_mode() && IMPORT_SOURCE_VIEW.with(Cell::get))
        || LOADING_VIEW.with(Cell::get)
}

/// Set whenever the pauses change: the end of the last pause that holds back writes (0:
/// none).
pub fn set_frozen_until(unix_ms: i64) {
    FROZEN_UNTIL_MS.store(unix_ms, Relaxed);
}

/// For a key already found past its expiry: whether it must stay in the keyspace instead
/// of being deleted now (any thread of a replica, in import mode, or while writes are
/// paused).
#[inline]
pub fn keep_expired_keys() -> bool {
    is_replica() || import_mode() || {
        let until = FROZEN_UNTIL_MS.load(Relaxed);
        until > 0 && crate::clock::now_ms() < until
    }
}

/// Whether a command that sets an expiry already past deletes the key (or field) at once.
/// Not on a replica (the primary's DEL or HDEL follows) nor in import mode (the source's
/// does), as Valkey's `checkAlreadyExpired`; the caller also excludes loading.
pub fn past_expiry_deletes() -> bool {
    !is_replica() && !import_mode()
}
