//! Blocking commands (BLPOP, BLMOVE, BLMPOP ... and later BZPOPMIN, XREAD BLOCK): parking a
//! client on keys and serving it when another command makes one of them ready.
//!
//! # Design
//!
//! Clients live on different worker threads, and Valkey's guarantees must hold across them:
//! clients blocked on a key are served first come, first served, and an element pushed while
//! someone waits goes to the waiter, never to a client that runs a command afterwards.
//!
//! - **Parking.** A blocking command that finds nothing to do registers a [`Waiter`] in the
//!   server-wide [`Registry`] (keyed by `(db, key)`, FIFO per key) *while it still holds its
//!   keys' shard locks*, so no push can slip between "found empty" and "registered". It then
//!   returns without a reply; dispatch reports [`crate::dispatch::Outcome::Blocked`], and the
//!   connection task waits (no polling, no CPU) for a delivery, its deadline, a kill or EOF.
//! - **Serving.** A command that adds to a key calls [`signal_ready`] (a thread-local list,
//!   skipped when no client is blocked anywhere) and then [`serve_ready`] *before releasing its
//!   shard locks*. Serving runs each waiter's [`BlockedOp`] on the writer's thread, with the
//!   waiter's database and protocol, under those same locks: the element moves to the waiter
//!   before any other command can see the key, and the encoded reply is handed to the
//!   waiter's connection ([`Delivery`] + its waker). Waiters are tried in arrival order; one
//!   that the key cannot serve (it emptied) stays where it is. A served op that pushes
//!   elsewhere (BLMOVE) signals its destination, which is served in the same pass, so chains
//!   of BLMOVEs complete atomically with the push that started them.
//! - **Fallback.** A command that signals readiness without calling [`serve_ready`] itself
//!   (a key created by RENAME/MOVE/COPY, a future EXEC or script) is served by dispatch right
//!   after it ([`serve_pending`]), re-locking the keys; that is still before its own reply
//!   goes out.
//! - **Locks.** Shard locks are always taken before the registry mutex, never after; a
//!   waiter that needs another shard (BLMOVE's destination) gets it through
//!   [`ferrokv_store::Keyspace::extend_lock`], which never waits for a lower shard, and when
//!   it cannot the key is left to the fallback path.
//! - **Leaving.** Timeout, CLIENT UNBLOCK, disconnect and kill all go through
//!   [`Registry::cancel`]; whoever removes the waiter from the registry (the canceller or the
//!   server) decides its outcome, so an element is never both delivered and timed out.
//! - **MULTI/scripts.** [`crate::client::Client::deny_blocking`] makes blocking commands
//!   answer as if they had timed out, at once, as Valkey does inside a transaction.
//!
//! Other families reuse this by implementing [`BlockedOp`] (e.g. a sorted-set pop) and
//! calling [`block`], and by calling [`signal_ready`] + [`serve_ready`] where they add.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use ferrokv_config::Config;
use ferrokv_longdouble::LongDouble;
use ferrokv_protocol::Reply;
use ferrokv_store::access::AccessPolicy;
use ferrokv_store::{Entry, Locked, Value, clock};
use parking_lot::Mutex;

use crate::client::ClientShared;
use crate::context::{CmdError, Ctx};
use crate::server::Server;
use crate::stats;

/// How a parked client's wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Served: the complete reply, encoded for the client's protocol.
    Reply(Vec<u8>),
    /// Timed out, or CLIENT UNBLOCK ... TIMEOUT: a null array.
    Timeout,
    /// CLIENT UNBLOCK ... ERROR.
    Error,
}

/// The error a client unblocked by CLIENT UNBLOCK ... ERROR receives.
pub const UNBLOCKED_ERROR: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// Where the outcome of a wait is left for the parked connection.
pub type Delivery = Arc<Mutex<Option<Wake>>>;

/// What a blocked client waits for, as its connection task sees it.
pub struct Parked {
    pub delivery: Delivery,
    /// Unix ms after which it times out; `None` waits forever.
    pub deadline_ms: Option<i64>,
}

/// What a blocked command does once one of its keys is ready.
pub trait BlockedOp: Send + Sync {
    /// Keys this operation writes besides the ready one (BLMOVE's destination); they are
    /// locked before [`BlockedOp::serve`] runs.
    fn extra_keys(&self) -> &[Bytes] {
        &[]
    }

    /// Whether the client is re-run when its key is gone (XREADGROUP: its group went with
    /// it); otherwise a waited key that is absent or expired leaves the client blocked.
    fn serves_missing_key(&self) -> bool {
        false
    }

    /// Serves the client from `key`, writing its reply into `cx.reply`; returns false, having
    /// changed and written nothing, when the key cannot serve it (absent, emptied, another
    /// type), so the client stays blocked.
    fn serve(&self, cx: &mut ServeCx<'_, '_>, key: &Bytes) -> bool;
}

/// What a [`BlockedOp`] works with while serving a parked client on another client's thread.
pub struct ServeCx<'l, 'a> {
    pub server: &'a Server,
    pub locked: &'l mut Locked<'a>,
    /// The parked client's database.
    pub db: usize,
    pub now_ms: i64,
    /// Encoded in the parked client's protocol.
    pub reply: Reply,
    /// The configuration snapshot of the serving thread (encoding thresholds).
    pub config: Arc<Config>,
    access: AccessPolicy,
}

impl ServeCx<'_, '_> {
    /// The live entry under `key` in the waiter's database, stamped as accessed.
    pub fn write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let entry = self.locked.db(self.db, key).get(key, self.now_ms)?;
        self.access.touch(&mut entry.access);
        Some(entry)
    }

    pub fn new_entry(&self, value: Value) -> Entry {
        Entry::new(value, self.access.initial())
    }

    /// Signals that the op added to `key` (BLMOVE's destination), in the waiter's database.
    pub fn signal_ready(&self, key: &Bytes) {
        signal_ready_in(self.server, self.db, key);
    }

    pub fn add_dirty(&self, n: u64) {
        stats::local().dirty.add(n);
        if n > 0 && ferrokv_store::events::touches_pending() {
            crate::transaction::process_touches(self.server, true, None);
        }
    }

    /// Propagates `args` (the non-blocking form of the served command) in the waiter's db.
    pub fn propagate(&self, args: Vec<Bytes>) {
        ferrokv_store::effects::push(self.db, args);
    }

    /// The parked client's LRU/LFU stamping.
    pub fn access(&self) -> AccessPolicy {
        self.access
    }
}

/// One parked client.
pub struct Waiter {
    client_id: u64,
    db: usize,
    keys: Vec<Bytes>,
    resp3: bool,
    access: AccessPolicy,
    has_timeout: bool,
    op: Box<dyn BlockedOp>,
    delivery: Delivery,
    client: Arc<ClientShared>,
}

impl Waiter {
    fn deliver(&self, wake: Wake) {
        *self.delivery.lock() = Some(wake);
        self.client.wake();
    }
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<(usize, Bytes), VecDeque<Arc<Waiter>>>,
    by_client: HashMap<u64, Arc<Waiter>>,
    with_timeout: usize,
}

impl Inner {
    /// Takes `waiter` out of every queue; false if it was no longer registered.
    fn remove(&mut self, waiter: &Arc<Waiter>) -> bool {
        match self.by_client.get(&waiter.client_id) {
            Some(w) if Arc::ptr_eq(w, waiter) => {}
            _ => return false,
        }
        self.by_client.remove(&waiter.client_id);
        if waiter.has_timeout {
            self.with_timeout -= 1;
        }
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(queue) = self.by_key.get_mut(&slot) {
                queue.retain(|w| !Arc::ptr_eq(w, waiter));
                if queue.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        true
    }
}

/// Every parked client, by key and by client id.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Parked clients; read without the mutex to skip all work when nobody waits.
    blocked: AtomicUsize,
}

impl Registry {
    /// Clients parked now (INFO blocked_clients).
    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Relaxed)
    }

    /// (keys with parked clients, those of them with a client that also wakes when the key
    /// is deleted (XREADGROUP), parked clients with a timeout), for INFO.
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        let on_missing_key = inner
            .by_key
            .values()
            .filter(|queue| queue.iter().any(|w| w.op.serves_missing_key()))
            .count();
        (inner.by_key.len(), on_missing_key, inner.with_timeout)
    }

    fn register(&self, waiter: Arc<Waiter>) {
        let mut inner = self.inner.lock();
        if let Some(old) = inner.by_client.get(&waiter.client_id).cloned() {
            // A client runs one command at a time; a stale entry would be a bug, but must
            // not leave a ghost waiter behind.
            inner.remove(&old);
            self.blocked.fetch_sub(1, Relaxed);
        }
        for key in &waiter.keys {
            let queue = inner.by_key.entry((waiter.db, key.clone())).or_default();
            // BLPOP k k: wait once per key.
            if !queue.iter().any(|w| Arc::ptr_eq(w, &waiter)) {
                queue.push_back(waiter.clone());
            }
        }
        if waiter.has_timeout {
            inner.with_timeout += 1;
        }
        inner.by_client.insert(waiter.client_id, waiter);
        self.blocked.fetch_add(1, Relaxed);
    }

    /// Removes client `id`'s waiter, if it is still parked (timeout, disconnect). True when
    /// it was: the caller now decides its outcome. False when it was not parked or a server
    /// got to it first (its delivery is then on its way).
    pub fn cancel(&self, id: u64) -> bool {
        if self.blocked.load(Relaxed) == 0 {
            return false;
        }
        let mut inner = self.inner.lock();
        let Some(waiter) = inner.by_client.get(&id).cloned() else {
            return false;
        };
        inner.remove(&waiter);
        self.blocked.fetch_sub(1, Relaxed);
        true
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait with a null reply or, with `error`, the
    /// UNBLOCKED error. False when it was not parked.
    pub fn unblock(&self, id: u64, error: bool) -> bool {
        let waiter = {
            let mut inner = self.inner.lock();
            let Some(waiter) = inner.by_client.get(&id).cloned() else {
                return false;
            };
            inner.remove(&waiter);
            self.blocked.fetch_sub(1, Relaxed);
            waiter
        };
        waiter.deliver(if error { Wake::Error } else { Wake::Timeout });
        true
    }

    /// The waiters parked on `(db, key)` now, in arrival order.
    fn queue_of(&self, db: usize, key: &Bytes) -> Vec<Arc<Waiter>> {
        self.inner
            .lock()
            .by_key
            .get(&(db, key.clone()))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

// ---- parking ----

/// Parks the client running `ctx` on `keys` until `op` can serve it or `deadline_ms`
/// passes. Must be called while the shards of `keys` are locked (see the module doc), and the
/// handler must then return without writing a reply. Inside MULTI or a script, the caller
/// must instead reply as on timeout (check [`crate::client::Client::deny_blocking`] first).
pub fn block(
    ctx: &mut Ctx<'_>,
    keys: Vec<Bytes>,
    deadline_ms: Option<i64>,
    op: Box<dyn BlockedOp>,
) {
    let delivery: Delivery = Arc::default();
    let client = &*ctx.client;
    let waiter = Arc::new(Waiter {
        client_id: client.id,
        db: client.db,
        keys,
        resp3: ctx.reply.is_resp3(),
        access: client.access_policy,
        has_timeout: deadline_ms.is_some(),
        op,
        delivery: delivery.clone(),
        client: client.shared.clone(),
    });
    ctx.server.blocking.register(waiter);
    ctx.client.blocked = Some(Parked {
        delivery,
        deadline_ms,
    });
}

/// Parses a blocking command's timeout in seconds (fractions allowed) into a deadline:
/// `None` for 0 (wait forever). Valkey's rules and error texts.
pub fn parse_timeout(arg: &[u8], now_ms: i64) -> Result<Option<i64>, CmdError> {
    let Some(value) = LongDouble::parse(arg) else {
        return Err(CmdError::err("timeout is not a float or out of range"));
    };
    // Rust parses what it can exactly; hex floats and the like go through the C text.
    let seconds = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .or_else(|| {
            std::str::from_utf8(&value.to_human())
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let ms = seconds * 1000.0;
    if ms.is_nan() || ms >= i64::MAX as f64 {
        return Err(CmdError::err("timeout is out of range"));
    }
    let ms = ms.ceil() as i64;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if ms == 0 {
        return Ok(None);
    }
    if ms > i64::MAX - now_ms {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok(Some(now_ms + ms))
}

// ---- serving ----

thread_local! {
    /// Keys this thread's current command made ready, in signal order.
    static READY: RefCell<VecDeque<(usize, Bytes)>> = const { RefCell::new(VecDeque::new()) };
}

/// Records that the running command added to `key` in the client's database.
pub fn signal_ready(ctx: &Ctx<'_>, key: &Bytes) {
    signal_ready_in(ctx.server, ctx.client.db, key);
}

/// Records that `key` in `db` was added to. Free when no client is blocked: a client parks
/// under the key's shard lock, which the signalling command holds, so it is seen here.
pub fn signal_ready_in(server: &Server, db: usize, key: &Bytes) {
    if server.blocking.blocked.load(Relaxed) == 0 {
        return;
    }
    READY.with(|r| {
        let mut r = r.borrow_mut();
        if !r.iter().any(|(d, k)| *d == db && k == key) {
            r.push_back((db, key.clone()));
        }
    });
}

/// Records that a value was stored under `key` by a command outside the blocking families
/// (RENAME, MOVE, COPY): any blocked client whose op accepts its type is served right after
/// the command. Copies the key only when some client is blocked.
pub fn signal_key_added(server: &Server, db: usize, key: &[u8]) {
    if server.blocking.blocked.load(Relaxed) != 0 {
        signal_ready_in(server, db, &Bytes::copy_from_slice(key));
    }
}

/// Marks every key clients wait on in `db` (every database for `None`) as ready, for
/// commands that change whole databases (FLUSHDB, FLUSHALL, SWAPDB): each parked op then
/// decides, as when Valkey re-runs them (XREADGROUP learns its stream is gone).
pub fn signal_all_waited(server: &Server, db: Option<usize>) {
    if server.blocking.blocked.load(Relaxed) == 0 {
        return;
    }
    let waited: Vec<(usize, Bytes)> = server
        .blocking
        .inner
        .lock()
        .by_key
        .keys()
        .filter(|(d, _)| db.is_none_or(|want| *d == want))
        .cloned()
        .collect();
    for (d, key) in waited {
        signal_ready_in(server, d, &key);
    }
}

/// Whether keys signalled ready wait to be served on this thread.
pub fn pending() -> bool {
    READY.with(|r| !r.borrow().is_empty())
}

/// Serves the clients blocked on every key signalled ready, with `locked` held (the
/// signalling command's locks, extended as needed). Keys it cannot reach without risking a
/// deadlock stay pending for [`serve_pending`].
pub fn serve_ready<'a>(server: &'a Server, locked: &mut Locked<'a>, now_ms: i64) {
    if ferrokv_store::Keyspace::holding() {
        // Inside EXEC: Valkey serves blocked clients once the transaction is over, so a
        // later command of the transaction still sees what was pushed.
        return;
    }
    let _ = serve_with(server, locked, now_ms);
}

/// Serves what [`serve_ready`] left, locking the keys itself (dispatch calls this after
/// every command that left keys pending).
pub fn serve_pending(server: &Server, now_ms: i64) {
    let mut needed: Vec<Bytes> = Vec::new();
    while let Some((_, key)) = READY.with(|r| r.borrow().front().cloned()) {
        needed.push(key);
        let mut locked = server.keyspace.lock(&needed);
        match serve_with(server, &mut locked, now_ms) {
            Ok(()) => break,
            // Lock what it needed too, from scratch and in order, and go on.
            Err(more) => {
                needed.clear();
                needed.extend(more);
            }
        }
    }
}

/// The serving loop. `Err(keys)`: stopped because these keys' shards could not be added
/// to `locked`; the ready key is back at the front of the pending list.
fn serve_with<'a>(
    server: &'a Server,
    locked: &mut Locked<'a>,
    now_ms: i64,
) -> Result<(), Vec<Bytes>> {
    let mut config: Option<Arc<Config>> = None;
    // The serving command's effects first; then each served client is a unit of its own.
    crate::propagate::flush_now();
    while let Some((db, key)) = READY.with(|r| r.borrow_mut().pop_front()) {
        if server.blocking.blocked.load(Relaxed) == 0 {
            READY.with(|r| r.borrow_mut().clear());
            return Ok(());
        }
        if !server.keyspace.extend_lock(locked, &[&key]) {
            READY.with(|r| r.borrow_mut().push_front((db, key.clone())));
            return Err(vec![key]);
        }
        for waiter in server.blocking.queue_of(db, &key) {
            if !server.keyspace.extend_lock(locked, waiter.op.extra_keys()) {
                READY.with(|r| r.borrow_mut().push_front((db, key.clone())));
                let mut keys = vec![key.clone()];
                keys.extend(waiter.op.extra_keys().iter().cloned());
                return Err(keys);
            }
            let config = config.get_or_insert_with(|| server.config.load()).clone();
            let mut inner = server.blocking.inner.lock();
            if !inner
                .by_client
                .get(&waiter.client_id)
                .is_some_and(|w| Arc::ptr_eq(w, &waiter))
            {
                continue; // left meanwhile (timeout, disconnect)
            }
            let mut cx = ServeCx {
                server,
                locked: &mut *locked,
                db,
                now_ms,
                reply: Reply::new(waiter.resp3),
                config,
                access: waiter.access,
            };
            // As in Valkey, whether to wake the client is decided at the serving command's
            // instant, without expiring the key: an expired key stays for the next command
            // that reads it. A woken client then runs at a fresh instant (its own command
            // re-run, in Valkey): a key that expired meanwhile (a DEBUG SLEEP inside EXEC)
            // is deleted then, and the client stays blocked with its old deadline.
            if !waiter.op.serves_missing_key()
                && !cx.locked.db(db, &key).contains_live(&key, now_ms)
            {
                continue;
            }
            cx.now_ms = clock::now_ms();
            if !waiter.op.serve(&mut cx, &key) {
                continue;
            }
            crate::propagate::flush_now();
            let reply = cx.reply.bytes().to_vec();
            inner.remove(&waiter);
            server.blocking.blocked.fetch_sub(1, Relaxed);
            drop(inner);
            waiter.deliver(Wake::Reply(reply));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_valkey() {
        let now = 1_000;
        assert_eq!(parse_timeout(b"0", now), Ok(None));
        assert_eq!(parse_timeout(b"-0.0001", now), Ok(None));
        assert_eq!(parse_timeout(b"0.0001", now), Ok(Some(now + 1)));
        assert_eq!(parse_timeout(b"1.5", now), Ok(Some(now + 1500)));
        assert_eq!(parse_timeout(b"0x10", now), Ok(Some(now + 16_000)));
        assert_eq!(parse_timeout(b".5", now), Ok(Some(now + 500)));
        for (text, err) in [
            (&b"abc"[..], "ERR timeout is not a float or out of range"),
            (b" 1", "ERR timeout is not a float or out of range"),
            (b"", "ERR timeout is not a float or out of range"),
            (b"-1", "ERR timeout is negative"),
            (b"-inf", "ERR timeout is negative"),
            (b"inf", "ERR timeout is out of range"),
            (b"1e400", "ERR timeout is out of range"),
            (b"9223372036854776", "ERR timeout is out of range"),
        ] {
            assert_eq!(
                parse_timeout(text, now).map_err(|e| e.0.into_owned()),
                Err(err.to_string()),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
