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
