//! Things the keyspace did on its own that the command layer must hear about.
//!
//! Lazy and active expiry delete keys deep inside the store. Rather than threading callbacks
//! through every lookup, the store records each event in a per-thread queue; the command
//! layer drains it after every command (and after each background expiry step) to count
//! stats and, later, to propagate DELs to replicas and fire keyspace notifications. The queue
//! is thread-local because every command runs start to finish on one thread.

use std::cell::RefCell;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEvent {
    Expired {
        db: usize,
        key: Box<[u8]>,
    },
    /// The active expiry reclaimed `count` expired items (hash fields) of `key`; a key left
    /// empty was deleted with them (not counted as an expired key, as in Valkey).
    ItemsExpired {
        db: usize,
        key: Box<[u8]>,
        count: usize,
    },
    /// A stream left the keyspace or was overwritten (DEL, RENAME, SET ...): clients blocked
    /// in XREADGROUP on it must be told, as Valkey does.
    StreamRemoved {
        db: usize,
        key: Box<[u8]>,
    },
}

thread_local! {
    static QUEUE: RefCell<Vec<KeyEvent>> = const { RefCell::new(Vec::new()) };
}

pub fn record(event: KeyEvent) {
    QUEUE.with(|q| q.borrow_mut().push(event));
}

/// Whether any event waits (cheap enough to call after every command).
pub fn pending() -> bool {
    QUEUE.with(|q| !q.borrow().is_empty())
}

/// Takes every waiting event.
pub fn take() -> Vec<KeyEvent> {
    QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()))
}

// ---- keys touched, for WATCH ----
//
// WATCH needs to know which keys a command changed. The store reports every structural
// change (a key stored, deleted, expired, its TTL changed) and the command layer adds the
// keys it looked up for writing; both land in a per-thread list that the command layer
// turns into "watched key modified" marks. Nothing is recorded while no client watches
// anything, so the common case costs one relaxed load per write.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static WATCHING: AtomicBool = AtomicBool::new(false);

/// Turns recording on while at least one client watches a key (set under the watched key's
/// shard lock, so a writer holding that lock afterwards sees it).
pub fn set_watching(on: bool) {
    WATCHING.store(on, Relaxed);
}

#[inline]
pub fn watching() -> bool {
    WATCHING.load(Relaxed)
}

/// A key a command changed (`definite`) or may have changed (looked up for writing; it
/// counts only if the command then reports a change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub db: usize,
    pub key: Box<[u8]>,
    pub definite: bool,
    /// Deleted because it expired (a key already expired when watched is not "changed" by
    /// that, as in Valkey).
    pub expired: bool,
}

thread_local! {
    static TOUCHED: RefCell<Vec<Touch>> = const { RefCell::new(Vec::new()) };
}

/// Records a touch of `key` in database `db`, when anyone watches.
#[inline]
pub fn touch(db: usize, key: &[u8], definite: bool) {
    if watching() {
        record_touch(db, key, definite, false);
    }
}

pub fn record_touch(db: usize, key: &[u8], definite: bool, expired: bool) {
    TOUCHED.with(|t| {
        t.borrow_mut().push(Touch {
            db,
            key: key.into(),
            definite,
            expired,
        })
    });
}

/// Whether touches wait on this thread.
pub fn touches_pending() -> bool {
    TOUCHED.with(|t| !t.borrow().is_empty())
}

/// Takes every recorded touch.
pub fn take_touched() -> Vec<Touch> {
    TOUCHED.with(|t| std::mem::take(&mut *t.borrow_mut()))
}
