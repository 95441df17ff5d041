//! Transactions: MULTI's queue, WATCH's registry, and running EXEC atomically.
//!
//! # Model
//!
//! - **Queueing.** Between MULTI and EXEC, dispatch checks each command as Valkey does
//!   (unknown command, arity, authentication, `no-multi`, memory, subscriber mode) and queues
//!   it ([`MultiState`]) instead of running it. A rejected command marks the transaction, and
//!   EXEC then answers EXECABORT without running anything.
//! - **Atomicity.** EXEC plans the shards it needs before running anything: the shards of
//!   every queued command's keys (from the command table's key specs) and of the watched
//!   keys; a queued command whose keys cannot be known from its arguments (KEYS, SCAN,
//!   FLUSHALL, DBSIZE ... any command without key specs, or with specs that do not give every
//!   key) makes it take every shard. [`ferrokv_store::Keyspace::hold`] locks them all, in
//!   ascending order like any multi-key command, then the queued commands run one after the
//!   other on this thread; each still calls `ctx.lock` for its keys, which borrows the held
//!   locks. No other client, on any thread, sees the keyspace between two queued commands.
//!   Clients blocked on keys the transaction pushes to are served after EXEC, as in Valkey.
//! - **WATCH.** A server-wide registry maps (db, key) to the clients that watch it. While
//!   it is not empty, the store records, per thread, each key it stores, deletes, expires,
//!   re-times (certain changes) or hands out mutably (possible changes). After a command,
//!   possible changes count only if the command reported a change (`add_dirty`) and the key
//!   is one its key specs let it write; so SET NX on an existing key, SADD of a member
//!   already there or a source key of SUNIONSTORE do not fail a watcher's EXEC, as in
//!   Valkey. Certain changes are turned into "dirty" marks as soon as the command reports
//!   its change, still under its locks. FLUSHDB/FLUSHALL/SWAPDB mark the watchers of keys
//!   that existed in the databases they empty or swap. When nobody watches, a write costs
//!   one relaxed atomic load. EXEC checks the mark, and whether a watched key expired since
//!   WATCH, under its locks (the watched keys' shards are part of its plan).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::keyspace::SHARD_COUNT;
use ferrokv_store::{Keyspace, Locked, events};
use parking_lot::Mutex;

use crate::client::{Client, ClientShared, flags};
use crate::server::Server;
use crate::spec::{
    BeginSearch, CommandSpec, FindKeys, flag, for_each_command_key, key_flag, key_positions,
};
use crate::table::TableEntry;

/// Queued commands and their arguments.
pub type Queue = Vec<(&'static TableEntry, Vec<Bytes>)>;

/// A spare queue longer than this is dropped rather than kept for the next MULTI.
const SPARE_QUEUE_MAX: usize = 1024;

/// The commands queued since MULTI.
#[derive(Default)]
pub struct MultiState {
    pub queued: Queue,
    /// A command was rejected while queueing: EXEC must abort.
    pub aborted: bool,
    /// The union of the queued commands' flags (EXEC is a write when one of them is).
    pub flags: u64,
    /// The flags at least one queued command lacks (EXEC runs on a stale replica only when
    /// every queued command may).
    pub lacking_flags: u64,
}

/// Starts a transaction.
pub fn begin(client: &mut Client) {
    client.multi = Some(MultiState {
        queued: std::mem::take(&mut client.spare_multi_queue),
        ..MultiState::default()
    });
    client.shared.multi_queued.store(0, Relaxed);
    client.shared.set_flag(flags::MULTI, true);
}

/// `multi=` after a transaction: Valkey allocates a client's transaction state on its
/// first MULTI or WATCH and keeps it, so it shows -1 before that and 0 between
/// transactions.
fn end_queue(client: &Client) {
    if client.shared.multi_queued.load(Relaxed) >= 0 {
        client.shared.multi_queued.store(0, Relaxed);
    }
}

/// Queues a command that passed the checks.
/// `flags` are the command's checked flags (a script's declared ones for EVAL and FCALL).
pub fn queue(client: &mut Client, entry: &'static TableEntry, args: &[Bytes], flags: u64) {
    if let Some(multi) = client.multi.as_mut() {
        multi.flags |= flags;
        multi.lacking_flags |= !flags;
        multi.queued.push((entry, args.to_vec()));
        client
            .shared
            .multi_queued
            .store(multi.queued.len() as i64, Relaxed);
    }
}

/// Marks the transaction as failed (a command was rejected while queueing).
pub fn flag_aborted(client: &mut Client) {
    if let Some(multi) = client.multi.as_mut() {
        multi.aborted = true;
    }
}

/// Ends the transaction state (after EXEC, DISCARD, RESET); the watched keys are released.
pub fn discard(server: &Server, client: &mut Client) -> Option<MultiState> {
    let multi = client.multi.take();
    end_queue(client);
    client.shared.set_flag(flags::MULTI, false);
    unwatch_all(server, client);
    multi
}

// ---- WATCH ----

struct Watcher {
    client: Arc<ClientShared>,
    /// The key existed but had logically expired when it was watched: its deletion by
    /// expiry is not a change (Valkey's rule).
    expired_at_watch: bool,
}

#[derive(Default)]
pub struct Watches {
    /// db → key → watchers.
    keys: Mutex<HashMap<usize, HashMap<Bytes, Vec<Watcher>>>>,
    /// Watched (client, key) pairs, and clients watching at least one key (INFO).
    total_keys: AtomicUsize,
    clients: AtomicUsize,
}

impl Watches {
    /// (watching_clients, total_watched_keys) for INFO clients.
    pub fn counts(&self) -> (usize, usize) {
        let keys = self.keys.lock();
        let distinct = keys.values().map(HashMap::len).sum();
        (self.clients.load(Relaxed), distinct)
    }

    /// Marks the clients watching the touched keys.
    fn touch(&self, touches: &[events::Touch]) {
        if touches.is_empty() {
            return;
        }
        let mut keys = self.keys.lock();
        for t in touches {
            let Some(watchers) = keys.get_mut(&t.db).and_then(|db| db.get_mut(&*t.key)) else {
                continue;
            };
            for w in watchers.iter_mut() {
                if w.expired_at_watch && t.expired {
                    // Gone the way it was already going: not a change, but from now on
                    // any new value is one.
                    w.expired_at_watch = false;
                    continue;
                }
                w.client.set_flag(flags::DIRTY_CAS, true);
            }
        }
    }
}

/// `WATCH key...` for `client`, in its database. The key's shard is locked while it is
/// registered, so a write to it is either before (not seen) or after (seen), never lost.
pub fn watch(server: &Server, client: &mut Client, keys: &[Bytes], now_ms: i64) {
    let db = client.db;
    for key in keys {
        let mut locked = server.keyspace.lock(&[key]);
        let expired_at_watch = locked
            .db(db, key)
            .peek(key)
            .is_some_and(|e| e.is_expired(now_ms));
        events::set_watching(true);
        let mut registry = server.watches.keys.lock();
        let watchers = registry
            .entry(db)
            .or_default()
            .entry(key.clone())
            .or_default();
        // Already watched by this client: the key's own watcher list says so (a search of
        // the client's list would make WATCH of many keys quadratic).
        if watchers
            .iter()
            .any(|w| Arc::ptr_eq(&w.client, &client.shared))
        {
            continue;
        }
        watchers.push(Watcher {
            client: client.shared.clone(),
            expired_at_watch,
        });
        drop(registry);
        drop(locked);
        if client.watched.is_empty() {
            server.watches.clients.fetch_add(1, Relaxed);
        }
        client.watched.push((db, key.clone()));
        server.watches.total_keys.fetch_add(1, Relaxed);
    }
    client
        .shared
        .watch_count
        .store(client.watched.len(), Relaxed);
}

/// Forgets every key `client` watches and clears its dirty mark (UNWATCH, EXEC, DISCARD,
/// RESET, disconnect).
pub fn unwatch_all(server: &Server, client: &mut Client) {
    client.shared.set_flag(flags::DIRTY_CAS, false);
    if client.watched.is_empty() {
        return;
    }
    let mut registry = server.watches.keys.lock();
    for (db, key) in client.watched.drain(..) {
        if let Some(by_key) = registry.get_mut(&db) {
            if let Some(watchers) = by_key.get_mut(&key) {
                watchers.retain(|w| w.client.id != client.id);
                if watchers.is_empty() {
                    by_key.remove(&key);
                }
            }
            if by_key.is_empty() {
                registry.remove(&db);
            }
        }
        server.watches.total_keys.fetch_sub(1, Relaxed);
    }
    if registry.is_empty() {
        events::set_watching(false);
    }
    drop(registry);
    server.watches.clients.fetch_sub(1, Relaxed);
    client.shared.watch_count.store(0, Relaxed);
}

/// The keys the command running on this thread may write, while anyone watches: `None`
/// outside a command, `Some(None)` for a command without key specs (any key it looked up
/// may count). Nested commands (EXEC's) save and restore their caller's.
type WrittenKeys = Option<Option<Vec<Bytes>>>;

thread_local! {
    static WRITTEN: std::cell::RefCell<WrittenKeys> = const { std::cell::RefCell::new(None) };
    static IN_EXEC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is running a transaction's commands. Background jobs asked for there
/// (BGSAVE, BGREWRITEAOF, CONFIG SET appendonly yes) are scheduled for when it is over, as
/// Valkey does: it does not fork inside EXEC.
pub fn in_exec() -> bool {
    IN_EXEC.with(std::cell::Cell::get)
}

/// Marks this thread as running a transaction until dropped.
struct ExecMark(bool);

impl ExecMark {
    fn set() -> ExecMark {
        ExecMark(IN_EXEC.with(|f| f.replace(true)))
    }
}

impl Drop for ExecMark {
    fn drop(&mut self) {
        IN_EXEC.with(|f| f.set(self.0));
    }
}

/// Called by dispatch before a command runs while anyone watches; returns what to hand back
/// to [`end_command`].
pub fn begin_command(spec: &CommandSpec, args: &[Bytes]) -> WrittenKeys {
    WRITTEN.with(|w| w.replace(Some(written_keys(spec, args))))
}

/// The running command looked `key` up to write it but left it as it was (SMOVE's
/// destination that already held the member): its watchers are not told, as in Valkey.
pub fn left_unchanged(key: &[u8]) {
    WRITTEN.with(|w| {
        if let Some(Some(keys)) = w.borrow_mut().as_mut() {
            keys.retain(|k| **k != *key);
        }
    });
}

/// Called by dispatch after the command: marks what is left of its touches (a key it only
/// looked up counts when the command reported a change) and restores the caller's keys.
pub fn end_command(server: &Server, changed: bool, saved: WrittenKeys) {
    let current = WRITTEN.with(|w| w.replace(saved));
    if events::touches_pending() {
        let written = current.flatten();
        process_touches(server, changed, written.as_deref());
    }
}

/// Turns this thread's recorded touches into dirty marks. A key the command only looked
/// up counts when the command reported a change (`changed`) and, if `written` is given, the
/// key is one of those it may write.
pub fn process_touches(server: &Server, changed: bool, written: Option<&[Bytes]>) {
    let mut touches = events::take_touched();
    let watched = server.watches.clients.load(Relaxed) != 0;
    let tracked = events::tracking();
    if touches.is_empty() || !(watched || tracked) {
        return;
    }
    touches.retain(|t| {
        t.definite || (changed && written.is_none_or(|keys| keys.iter().any(|k| **k == *t.key)))
    });
    if watched {
        server.watches.touch(&touches);
    }
    if tracked {
        // The same "key modified" facts drive client-side caching invalidations.
        crate::tracking::invalidate_touched(server, &touches);
    }
}

/// The command reported a change (`add_dirty`): marks the watchers of every key it touched
/// that counts (and invalidates it for tracking clients), while it still holds its keys' locks, so that an EXEC on another thread
/// cannot run between the change and the mark.
pub fn process_touches_on_change(server: &Server) {
    let written = WRITTEN.with(|w| w.borrow().clone()).flatten();
    process_touches(server, true, written.as_deref());
}

/// The keys `spec` may write in `args` (key specs without the RO flag); `None` when the
/// command has no key specs, so that any key it looked up may count.
pub fn written_keys(spec: &CommandSpec, args: &[Bytes]) -> Option<Vec<Bytes>> {
    if spec.key_specs.is_empty() {
        return None;
    }
    if spec.keys_proc.is_some() {
        let mut written = Vec::new();
        for_each_command_key(spec, args, |i, flags| {
            if flags & key_flag::RO == 0 {
                written.push(args[i].clone());
            }
        });
        return Some(written);
    }
    let writable: Vec<_> = spec
        .key_specs
        .iter()
        .filter(|ks| ks.flags & key_flag::RO == 0)
        .copied()
        .collect();
    Some(
        key_positions(&writable, args)
            .into_iter()
            .filter_map(|i| args.get(i).cloned())
            .collect(),
    )
}

/// FLUSHDB/FLUSHALL (`replaced_with` None) and SWAPDB: marks the watchers of keys whose
/// value, as the watcher sees it, changes. Call with every shard locked, before the change.
///
/// As in Valkey, a key that had logically expired when it was watched is already gone for
/// its watcher: emptying it is no change. What takes its place counts only if it is live; a
/// stale key moved in by SWAPDB is, like one found at WATCH, gone already for the watcher.
pub fn touch_db(
    server: &Server,
    locked: &mut Locked<'_>,
    emptied: usize,
    replaced_with: Option<usize>,
    now_ms: i64,
) {
    if server.watches.clients.load(Relaxed) == 0 {
        return;
    }
    let mut registry = server.watches.keys.lock();
    let Some(by_key) = registry.get_mut(&emptied) else {
        return;
    };
    for (key, watchers) in by_key.iter_mut() {
        let present = locked.db(emptied, key).peek(key).is_some();
        let replacement = replaced_with.and_then(|other| {
            let db = locked.db(other, key);
            db.peek(key).map(|e| e.is_expired(now_ms))
        });
        for w in watchers.iter_mut() {
            let emptied_live_value = present && !w.expired_at_watch;
            if emptied_live_value || replacement == Some(false) {
                w.client.set_flag(flags::DIRTY_CAS, true);
            }
            w.expired_at_watch = replacement == Some(true);
        }
    }
}

/// Whether EXEC must fail because of WATCH: a watched key was changed, or expired since it
/// was watched. Call with the watched keys' shards locked.
fn watch_failed(server: &Server, client: &Client, locked: &mut Locked<'_>, now_ms: i64) -> bool {
    if client.shared.flags() & flags::DIRTY_CAS != 0 {
        return true;
    }
    if client.watched.is_empty() {
        return false;
    }
    let registry = server.watches.keys.lock();
    client.watched.iter().any(|(db, key)| {
        let expired_at_watch = registry
            .get(db)
            .and_then(|m| m.get(key))
            .and_then(|ws| ws.iter().find(|w| w.client.id == client.id))
            .is_some_and(|w| w.expired_at_watch);
        !expired_at_watch
            && locked
                .db(*db, key)
                .peek(key)
                .is_some_and(|e| e.is_expired(now_ms))
    })
}

// ---- EXEC ----

/// Every shard: bit i = shard i.
const ALL_SHARDS: u64 = if SHARD_COUNT == 64 {
    u64::MAX
} else {
    (1u64 << SHARD_COUNT) - 1
};

/// The shards EXEC must hold: bit i = shard i.
fn plan(client: &Client, queued: &[(&'static TableEntry, Vec<Bytes>)]) -> u64 {
    let mut mask = 0u64;
    for (_, key) in &client.watched {
        mask |= Keyspace::shard_bit(key);
    }
    for (entry, args) in queued {
        mask |= command_shards(entry, args);
    }
    mask
}

/// The shards command `args` may touch, by its key specs: every shard when they cannot
/// name all its keys (KEYS, SCAN, FLUSHALL ...), none for a command that does not touch
/// the keyspace.
pub(crate) fn command_shards(entry: &TableEntry, args: &[Bytes]) -> u64 {
    if entry.spec.keys_proc.is_none() && !keys_known_from_args(entry.spec) {
        return ALL_SHARDS;
    }
    let mut mask = 0u64;
    let complete = for_each_command_key(entry.spec, args, |pos, _| {
        if let Some(key) = args.get(pos) {
            mask |= Keyspace::shard_bit(key);
        }
    });
    if complete { mask } else { ALL_SHARDS }
}

/// Whether `spec`'s key specs name every key the command may touch. Commands without
/// keys that do not touch the keyspace (PING, PUBLISH ...) also pass: their plan is empty.
fn keys_known_from_args(spec: &CommandSpec) -> bool {
    if spec.key_specs.is_empty() {
        return is_keyspace_free(spec);
    }
    spec.flags & flag::TOUCHES_ARBITRARY_KEYS == 0
        && spec.key_specs.iter().all(|ks| {
            ks.flags & key_flag::INCOMPLETE == 0
                && !matches!(ks.begin, BeginSearch::Unknown)
                && !matches!(ks.find, FindKeys::Unknown)
        })
}

/// Keyless commands known not to read or write the keyspace.
fn is_keyspace_free(spec: &CommandSpec) -> bool {
    spec.flags & flag::PUBSUB != 0
        || matches!(
            spec.name,
            "ping" | "echo" | "select" | "time" | "lastsave" | "multi" | "exec" | "discard"
        )
}

/// What EXEC found.
pub enum ExecOutcome {
    /// Not in MULTI.
    NoMulti,
    /// A command was rejected while queueing.
    Aborted,
    /// A watched key changed: the null reply.
    WatchFailed,
    /// Ran; the replies were written.
    Ran,
}

/// Runs EXEC for `client`: checks, holds the planned shards, runs each queued command
/// (each writes its reply into `reply`, after the array header), and ends the transaction.
pub fn exec(server: &Server, client: &mut Client, reply: &mut Reply, now_ms: i64) -> ExecOutcome {
    let Some(multi) = client.multi.as_ref() else {
        return ExecOutcome::NoMulti;
    };
    if multi.aborted {
        discard(server, client);
        return ExecOutcome::Aborted;
    }
    let mask = plan(client, &multi.queued);
    let hold = server.keyspace.hold(mask);
    let failed = {
        // Borrowed from the hold: every watched key's shard is in the plan.
        let watched: Vec<Bytes> = client.watched.iter().map(|(_, k)| k.clone()).collect();
        let mut held = server.keyspace.lock(&watched);
        watch_failed(server, client, &mut held, now_ms)
    };
    if failed {
        drop(hold);
        discard(server, client);
        return ExecOutcome::WatchFailed;
    }
    // Our own writes inside the transaction must not count against us.
    unwatch_all(server, client);
    let mut queued = client
        .multi
        .as_mut()
        .map(|m| std::mem::take(&mut m.queued))
        .unwrap_or_default();
    reply.array_len(queued.len());
    let deny_blocking = std::mem::replace(&mut client.deny_blocking, true);
    let in_exec = ExecMark::set();
    for (entry, args) in &queued {
        // The user's rules may have changed since the command was queued.
        crate::acl::refresh(server, client);
        if let Err(e) = crate::acl::authorize_queued(server, client, entry, args) {
            crate::stats::local().count_error(&e.0);
            reply.error(&e.0);
            continue;
        }
        crate::dispatch::call(server, client, reply, entry, args, now_ms);
    }
    drop(in_exec);
    client.deny_blocking = deny_blocking;
    drop(hold);
    if queued.capacity() <= SPARE_QUEUE_MAX {
        queued.clear();
        client.spare_multi_queue = queued;
    }
    // The transaction ends whatever its commands did (a queued RESET ...).
    client.multi = None;
    end_queue(client);
    client.shared.set_flag(flags::MULTI, false);
    ExecOutcome::Ran
}
