//! The effects a command leaves for the propagation stream (AOF, replicas), collected on the
//! thread that runs it.
//!
//! The command layer arms collection for a command only when something consumes the stream;
//! then the store itself adds the deletions it decides on (a key found expired on access)
//! to the same per-thread list as the command's own effects, so they keep their order.
//! Releasing a command's shard locks (`Locked`'s drop, the end of a `Hold`) calls the
//! release hook the command layer installed, which moves the list into the global stream
//! *before* the locks go: two commands on one shard reach the stream in the order they ran.

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;

use bytes::Bytes;

/// One command to propagate, run in database `db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub db: usize,
    pub args: Vec<Bytes>,
    /// For replicas only, not the AOF (PUBLISH: replicas' subscribers hear it too).
    pub replica_only: bool,
}

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Lazy expiry propagates UNLINK (lazyfree-lazy-expire yes) or DEL.
    static EXPIRE_UNLINK: Cell<bool> = const { Cell::new(true) };
    static OPS: RefCell<Vec<Op>> = const { RefCell::new(Vec::new()) };
}

static RELEASE_HOOK: OnceLock<fn()> = OnceLock::new();

/// Installs the function that moves collected effects into the stream (once per process).
pub fn set_release_hook(hook: fn()) {
    let _ = RELEASE_HOOK.set(hook);
}

/// Turns collection on or off for this thread; `expire_unlink` names the command a lazily
/// expired key propagates as.
pub fn arm(on: bool, expire_unlink: bool) {
    ARMED.with(|a| a.set(on));
    EXPIRE_UNLINK.with(|e| e.set(expire_unlink));
}

/// Whether an expired key is propagated as UNLINK (else DEL), as last armed.
pub fn expire_unlink() -> bool {
    EXPIRE_UNLINK.with(Cell::get)
}

#[inline]
pub fn armed() -> bool {
    ARMED.with(Cell::get)
}

/// Adds an effect, when collection is armed.
pub fn push(db: usize, args: Vec<Bytes>) {
    push_op(db, args, false);
}

/// Adds an effect that only replicas receive, in order with the others, when armed.
pub fn push_replica_only(db: usize, args: Vec<Bytes>) {
    push_op(db, args, true);
}

fn push_op(db: usize, args: Vec<Bytes>, replica_only: bool) {
    if armed() {
        OPS.with(|o| {
            o.borrow_mut().push(Op {
                db,
                args,
                replica_only,
            })
        });
    }
}

/// A key the store deleted because it expired.
pub(crate) fn expired(db: usize, key: &[u8]) {
    if armed() {
        let name: &'static [u8] = if EXPIRE_UNLINK.with(Cell::get) {
            b"UNLINK"
        } else {
            b"DEL"
        };
        push(
            db,
            vec![Bytes::from_static(name), Bytes::copy_from_slice(key)],
        );
    }
}

/// Whether effects wait on this thread.
pub fn pending() -> bool {
    OPS.with(|o| !o.borrow().is_empty())
}

/// Takes the collected effects, in order.
pub fn take(into: &mut Vec<Op>) {
    OPS.with(|o| into.append(&mut o.borrow_mut()));
}

/// Called as a command's locks are about to be released.
#[inline]
pub(crate) fn on_release() {
    if armed()
        && let Some(hook) = RELEASE_HOOK.get()
    {
        hook();
    }
}
