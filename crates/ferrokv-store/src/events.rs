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
// WATCH and client-side caching (CLIENT TRACKING) need to know which keys a command
// changed. The store reports every structural change (a key stored, deleted, expired, its
// TTL changed) and the command layer adds the keys it looked up for writing; both land in a
// per-thread list that the command layer turns into "watched key modified" marks and
// tracking invalidations. Nothing is recorded while no client watches a key and no key is
// tracked, so the common case costs one relaxed load per write.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// Why touches are recorded: one bit per consumer.
static RECORDING: AtomicU8 = AtomicU8::new(0);
const FOR_WATCH: u8 = 1;
const FOR_TRACKING: u8 = 2;

fn set_reason(bit: u8, on: bool) {
    if on {
        RECORDING.fetch_or(bit, Relaxed);
    } else {
        RECORDING.fetch_and(!bit, Relaxed);
    }
}

/// Turns recording on while at least one client watches a key (set under the watched key's
/// shard lock, so a writer holding that lock afterwards sees it).
pub fn set_watching(on: bool) {
    set_reason(FOR_WATCH, on);
}

/// Turns recording on while a client tracks keys or the tracking table holds any (set
/// before the tracking client reads a key under its shard lock, for the same reason).
pub fn set_tracking(on: bool) {
    set_reason(FOR_TRACKING, on);
}

/// Whether touches are recorded (someone watches or tracks).
#[inline]
pub fn recording() -> bool {
    RECORDING.load(Relaxed) != 0
}

/// Whether touches are recorded for client-side caching.
#[inline]
pub fn tracking() -> bool {
    RECORDING.load(Relaxed) & FOR_TRACKING != 0
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

/// Records a touch of `key` in database `db`, when anyone watches or tracks.
#[inline]
pub fn touch(db: usize, key: &[u8], definite: bool) {
    if recording() {
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

// ---- keyspace notifications ----
//
// Commands (and the store itself, for `new`, `expired` and field expiry) report what they did
// to a key as (class, event, db, key). The command layer publishes the queue to
// `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>` after each command. The directive
// `notify-keyspace-events` sets the mask; with notifications off (the default) reporting is
// one relaxed load and a branch.

/// Event classes of `notify-keyspace-events` (Valkey's letters in the comments).
pub mod class {
    /// `K`: publish on `__keyspace@<db>__:<key>`.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: publish on `__keyevent@<db>__:<event>`.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (DEL, EXPIRE, RENAME ...).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`
    pub const STRING: u32 = 1 << 3;
    /// `l`
    pub const LIST: u32 = 1 << 4;
    /// `s`
    pub const SET: u32 = 1 << 5;
    /// `h`
    pub const HASH: u32 = 1 << 6;
    /// `z`
    pub const ZSET: u32 = 1 << 7;
    /// `x`: a key expired.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: a key was evicted.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`
    pub const STREAM: u32 = 1 << 10;
    /// `m`: a read missed (not part of `A`).
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`: module key types (none exist here; accepted for compatibility).
    pub const MODULE: u32 = 1 << 12;
    /// `n`: a key was created (not part of `A`).
    pub const NEW: u32 = 1 << 13;
    /// What `A` stands for.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// The mask for a `notify-keyspace-events` value (unknown letters are ignored: the
    /// config layer has already rejected them).
    pub fn parse(letters: &str) -> u32 {
        letters.chars().fold(0, |mask, c| {
            mask | match c {
                'A' => ALL,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => 0,
            }
        })
    }
}

/// The enabled classes; 0 unless `K` or `E` is set too (nothing would be published).
static NOTIFY_MASK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Sets the classes notified (from `notify-keyspace-events`).
pub fn set_notify_mask(mask: u32) {
    let channels = class::KEYSPACE | class::KEYEVENT;
    let effective = if mask & channels == 0 { 0 } else { mask };
    NOTIFY_MASK.store(effective, Relaxed);
}

pub fn notify_mask() -> u32 {
    NOTIFY_MASK.load(Relaxed)
}

/// Whether events of `class` are published.
#[inline]
pub fn notifying(class: u32) -> bool {
    NOTIFY_MASK.load(Relaxed) & class != 0
}

/// One keyspace notification waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub class: u32,
    pub event: &'static str,
    pub db: usize,
    pub key: Box<[u8]>,
}

thread_local! {
    static NOTIFICATIONS: RefCell<Vec<Notification>> = const { RefCell::new(Vec::new()) };
}

/// Reports `event` on `key` in database `db`, when its class is enabled.
#[inline]
pub fn notify(class: u32, event: &'static str, db: usize, key: &[u8]) {
    if notifying(class) {
        NOTIFICATIONS.with(|n| {
            n.borrow_mut().push(Notification {
                class,
                event,
                db,
                key: key.into(),
            })
        });
    }
}

/// Whether notifications wait on this thread.
pub fn notifications_pending() -> bool {
    NOTIFICATIONS.with(|n| !n.borrow().is_empty())
}

/// How many notifications wait on this thread (a mark for [`drop_key_misses_since`]).
pub fn notifications_waiting() -> usize {
    NOTIFICATIONS.with(|n| n.borrow().len())
}

/// Drops the key-miss notifications reported since `mark` (a script run that starts
/// again reads its keys again); the rest report changes that did happen and stay.
pub fn drop_key_misses_since(mark: usize) {
    NOTIFICATIONS.with(|n| {
        let mut waiting = n.borrow_mut();
        if waiting.len() <= mark {
            return;
        }
        let mut index = 0;
        waiting.retain(|note| {
            index += 1;
            index <= mark || note.class != class::KEY_MISS
        });
    });
}

/// Takes every waiting notification, in the order they were reported.
pub fn take_notifications() -> Vec<Notification> {
    NOTIFICATIONS.with(|n| std::mem::take(&mut *n.borrow_mut()))
}
