//! The sharded keyspace and its locking discipline.
//!
//! Every command locks the shards of the keys it names, in ascending shard order, for the
//! whole command, so each command is atomic. Commands that need the whole keyspace
//! (FLUSHALL, SWAPDB, EXEC, most scripts) lock every shard, in the same order. A lock of
//! several shards never waits while holding one (it backs off, see `acquire`), so the only
//! waits while holding are a script's when it widens its hold after changing something
//! (`widen_hold`, bounded by its caller). Locks are never held across an await or a socket
//! write.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::bits::set_bits;
use crate::db::Db;
use crate::snapshot::SnapshotSlot;
use crate::table::hash_key;

/// log2 of the number of shards. 64 shards keep contention low on many cores while locking
/// all of them stays cheap. The SCAN cursor encodes the shard in its low bits, so this is
/// fixed for the life of the process.
pub const SHARD_BITS: u32 = 6;
pub const SHARD_COUNT: usize = 1 << SHARD_BITS;

/// One shard: every database's keys whose hash falls in this shard.
pub struct Shard {
    pub dbs: Box<[Db]>,
}

/// A shard's lock and, on the same cache line, whether a snapshot still has to dump it (see
/// `snapshot.rs`: checking the flag is one relaxed load per lock acquisition).
struct ShardSlot {
    lock: Mutex<Shard>,
    pending: AtomicBool,
}

pub struct Keyspace {
    shards: Box<[CachePadded<ShardSlot>]>,
    databases: usize,
    /// The running snapshot's dumper, consulted only when a shard is pending.
    pub(crate) dumper: SnapshotSlot,
}

impl Keyspace {
    pub fn new(databases: usize) -> Keyspace {
        let shards = (0..SHARD_COUNT)
            .map(|_| {
                CachePadded::new(ShardSlot {
                    lock: Mutex::new(Shard {
                        dbs: (0..databases).map(Db::new).collect(),
                    }),
                    pending: AtomicBool::new(false),
                })
            })
            .collect();
        Keyspace {
            shards,
            databases,
            dumper: SnapshotSlot::default(),
        }
    }

    pub fn databases(&self) -> usize {
        self.databases
    }

    pub fn shard_of(key: &[u8]) -> usize {
        Self::shard_of_hash(hash_key(key))
    }

    /// The shard of the key whose [`hash_key`] is `hash`.
    pub fn shard_of_hash(hash: u64) -> usize {
        (hash >> (64 - SHARD_BITS)) as usize
    }

    /// Prefetches one stage of the lookup of the key with `hash` (its [`hash_key`]) in
    /// database `db` (see [`crate::table::Table::prefetch`]). Only tries the shard's lock: a
    /// busy shard is skipped, as a prefetch is only a hint.
    pub fn prefetch(&self, db: usize, hash: u64, stage: crate::table::Stage) {
        let slot = &self.shards[(hash >> (64 - SHARD_BITS)) as usize];
        if let Some(shard) = slot.lock.try_lock()
            && let Some(db) = shard.dbs.get(db)
        {
            db.prefetch(hash, stage);
        }
    }

    /// Prefetches every stage of the lookups of a batch of keys (their [`hash_key`]s) in
    /// database `db`, stage by stage, so that the batch's cache misses overlap: first the
    /// shards' lock lines, then (each shard tried once and held to the end) the `Db`s, then
    /// bucket lines and the nodes whose tag matches. A lock is a read-modify-write, which waits for every load
    /// before it: taken per key and stage, the misses queued up one behind the other again.
    /// A busy shard is skipped, as a prefetch is only a hint.
    pub fn prefetch_batch(&self, db: usize, hashes: &[u64]) {
        for &hash in hashes {
            let slot: &ShardSlot = &self.shards[Self::shard_of_hash(hash)];
            crate::table::prefetch_addr((slot as *const ShardSlot).cast());
        }
        let mut guards: SmallVec<[MutexGuard<'_, Shard>; 16]> = SmallVec::new();
        // Per shard: its guard's place in `guards`, or NOT_HELD.
        const NOT_HELD: u8 = u8::MAX;
        let mut place = [NOT_HELD; SHARD_COUNT];
        let mut tried = 0u64;
        for &hash in hashes {
            let index = Self::shard_of_hash(hash);
            if tried & (1 << index) != 0 {
                continue;
            }
            tried |= 1 << index;
            if let Some(guard) = self.shards[index].lock.try_lock()
                && let Some(db) = guard.dbs.get(db)
            {
                db.prefetch_header();
                place[index] = guards.len() as u8;
                guards.push(guard);
            }
        }
        for stage in crate::table::Stage::ALL {
            for &hash in hashes {
                let at = place[Self::shard_of_hash(hash)];
                if let Some(db) = guards.get(at as usize).and_then(|g| g.dbs.get(db)) {
                    db.prefetch(hash, stage);
                }
            }
        }
    }

    /// Locks the shards holding `keys`.
    pub fn lock<'a, K: AsRef<[u8]>>(&'a self, keys: &[K]) -> Locked<'a> {
        if let [key] = keys {
            // Most commands name one key: skip the sort and dedup.
            return self.lock_shard(Self::shard_of(key.as_ref()));
        }
        let mut indexes: SmallVec<[usize; 4]> =
            keys.iter().map(|k| Self::shard_of(k.as_ref())).collect();
        indexes.sort_unstable();
        indexes.dedup();
        Locked {
            guards: self.acquire(&indexes),
            touched: 0,
        }
    }

    /// Locks shards `indexes` (ascending, distinct) without waiting while holding another
    /// one: every shard after the first is only tried, and when one is busy everything taken
    /// is let go, that shard is waited for (holding nothing) and the round starts again.
    /// A script that reached a key it did not declare may hold a higher shard while it
    /// tries a lower one (see `widen_hold`); backing off lets it through instead of leaving
    /// both to wait for each other. So only a script that already changed the dataset ever
    /// waits for a shard while holding another. After `BACKOFF_ROUNDS` busy rounds the
    /// thread yields between rounds.
    fn acquire<'a>(&'a self, indexes: &[usize]) -> SmallVec<[(usize, ShardGuard<'a>); 4]> {
        if Self::holding() {
            // Inside a hold every shard is the hold's (borrowed) or only tried.
            return indexes.iter().map(|&i| (i, self.guard(i))).collect();
        }
        self.backing_off(
            indexes.iter().copied(),
            |i| self.guard(i),
            |i| self.try_guard(i),
        )
    }

    /// The back-off rounds of `acquire` and `hold`: `lock` takes the first shard (nothing
    /// is held yet), `try_lock` each next one; when one is busy everything is let go, that
    /// shard is waited for and the round starts again.
    fn backing_off<G, A: smallvec::Array<Item = (usize, G)>>(
        &self,
        indexes: impl Iterator<Item = usize> + Clone,
        lock: impl Fn(usize) -> G,
        try_lock: impl Fn(usize) -> Option<G>,
    ) -> SmallVec<A> {
        let mut round = 0;
        loop {
            if round >= BACKOFF_ROUNDS {
                std::thread::yield_now();
            }
            round += 1;
            let mut guards: SmallVec<A> = SmallVec::new();
            let mut busy = None;
            for index in indexes.clone() {
                let guard = if guards.is_empty() {
                    lock(index)
                } else {
                    match try_lock(index) {
                        Some(guard) => guard,
                        None => {
                            busy = Some(index);
                            break;
                        }
                    }
                };
                guards.push((index, guard));
            }
            let Some(busy) = busy else {
                return guards;
            };
            drop(guards);
            drop(self.shards[busy].lock.lock());
        }
    }

    /// Adds the shards of `keys` to `locked` without risking a deadlock: a shard above every
    /// shard already held is locked (waiting if needed: that keeps the ascending order every
    /// thread follows); one below is only tried. Returns false when a shard below was busy;
    /// the shards added so far stay locked. Serving blocked clients uses this to reach a
    /// destination key (BLMOVE) while still holding the source key's shard.
    pub fn extend_lock<'a, K: AsRef<[u8]>>(&'a self, locked: &mut Locked<'a>, keys: &[K]) -> bool {
        for key in keys {
            let index = Self::shard_of(key.as_ref());
            let Err(at) = locked.guards.binary_search_by_key(&index, |(i, _)| *i) else {
                continue;
            };
            let guard = if at == locked.guards.len() {
                self.guard(index)
            } else {
                match self.try_guard(index) {
                    Some(guard) => guard,
                    None => return false,
                }
            };
            locked.guards.insert(at, (index, guard));
        }
        true
    }

    /// Locks one shard by index (SCAN, active expiry, eviction).
    pub fn lock_shard(&self, index: usize) -> Locked<'_> {
        let mut guards = SmallVec::new();
        guards.push((index, self.guard(index)));
        Locked { guards, touched: 0 }
    }

    /// Locks every shard.
    pub fn lock_all(&self) -> Locked<'_> {
        let indexes: Vec<usize> = (0..SHARD_COUNT).collect();
        Locked {
            guards: self.acquire(&indexes),
            touched: 0,
        }
    }

    /// Keys in database `db`, counting shard by shard (not an atomic snapshot across shards,
    /// which DBSIZE and INFO do not need).
    pub fn db_len(&self, db: usize) -> usize {
        (0..SHARD_COUNT).map(|i| self.guard(i).dbs[db].len()).sum()
    }

    /// The number of keys of database `db` in each shard, shard by shard (RANDOMKEY weighs
    /// its choice of shard by these).
    pub fn shard_lens(&self, db: usize) -> [usize; SHARD_COUNT] {
        let mut lens = [0; SHARD_COUNT];
        for (i, len) in lens.iter_mut().enumerate() {
            *len = self.guard(i).dbs[db].len();
        }
        lens
    }

    /// Keys of database `db` whose value has items with a TTL (hash fields).
    pub fn db_volatile_items(&self, db: usize) -> usize {
        (0..SHARD_COUNT)
            .map(|i| self.guard(i).dbs[db].volatile_items_len())
            .sum()
    }

    /// For each database: keys with a TTL, and keys whose value has items with a TTL.
    pub fn volatile_counts(&self) -> Vec<(usize, usize)> {
        let mut counts = Vec::new();
        for i in 0..SHARD_COUNT {
            let mut shard = self.guard(i);
            counts.resize(shard.dbs.len(), (0, 0));
            for (count, db) in counts.iter_mut().zip(shard.dbs.iter_mut()) {
                count.0 += db.volatile_len();
                count.1 += db.volatile_items_len();
            }
        }
        counts
    }

    /// (keys, keys with a TTL) in database `db`.
    pub fn db_counts(&self, db: usize) -> (usize, usize) {
        (0..SHARD_COUNT).fold((0, 0), |(k, v), i| {
            let shard = self.guard(i);
            (k + shard.dbs[db].len(), v + shard.dbs[db].volatile_len())
        })
    }
}

// ---- transactions: holding shards across several commands ----
//
// EXEC (and later scripts) must run several commands with no other client in between, yet
// each command locks its own keys through the same `lock*` calls as outside a transaction.
// `Keyspace::hold` locks every shard the transaction needs, once, in ascending order, and
// records on the current thread that it holds them. While the hold lasts, a `lock*` call on
// this thread for a held shard does not wait on the mutex (which would deadlock on itself):
// it *borrows* the held lock instead. At most one borrow per shard exists at a time (a
// second one panics, where outside a hold the same code would have deadlocked), and the
// `Hold` never touches its own guards while it lasts, so a shard's data is reachable through
// exactly one guard at any moment.

/// What the current thread holds for a transaction: which keyspace (by address), which
/// shards (bit i = shard i), and which of those are borrowed by a live `Locked` right now.
#[derive(Clone, Copy)]
struct HeldShards {
    keyspace: usize,
    held: u64,
    lent: u64,
    /// Shards added by `widen_hold`: locked with their guards forgotten, unlocked when
    /// the hold ends.
    extra: u64,
}

const NOT_HOLDING: HeldShards = HeldShards {
    keyspace: 0,
    held: 0,
    lent: 0,
    extra: 0,
};

/// Busy rounds a multi-shard lock retries at once before it yields between rounds.
const BACKOFF_ROUNDS: usize = 8;

const _: () = assert!(SHARD_COUNT <= 64, "HeldShards keeps one bit per shard");

thread_local! {
    static HELD: Cell<HeldShards> = const { Cell::new(NOT_HOLDING) };
    /// A script holding shards on this thread is suspended, and other clients' commands
    /// run meanwhile (`allow-busy` ones: WATCH, DISCARD ... see `scripting::fiber`). They
    /// borrow what the hold covers and lock any other shard as usual.
    static OTHERS_INSIDE_HOLD: Cell<bool> = const { Cell::new(false) };
}

/// The lock on one shard: owned (released on drop), or borrowed from the thread's `Hold`
/// (handed back on drop, the mutex stays locked).
enum ShardGuard<'a> {
    Owned(MutexGuard<'a, Shard>),
    Borrowed {
        guard: ManuallyDrop<MutexGuard<'a, Shard>>,
        index: usize,
    },
}

impl Deref for ShardGuard<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        match self {
            ShardGuard::Owned(g) => g,
            ShardGuard::Borrowed { guard, .. } => guard,
        }
    }
}

impl DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        match self {
            ShardGuard::Owned(g) => g,
            ShardGuard::Borrowed { guard, .. } => guard,
        }
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        if let ShardGuard::Borrowed { index, .. } = self {
            // The `ManuallyDrop` guard is not dropped: the mutex stays locked for the Hold.
            let bit = 1u64 << *index;
            HELD.with(|h| {
                let mut state = h.get();
                state.lent &= !bit;
                h.set(state);
            });
        }
    }
}

/// A transaction's shard guards. Inline up to 16: a MULTI of ten writes to ten keys
/// typically spans nine or ten shards, which a smaller inline array spilled to the heap
/// (and a collect into a `Vec` allocated again) on every EXEC.
type HoldGuards<'a> = SmallVec<[(usize, MutexGuard<'a, Shard>); 16]>;

/// Shards held by a transaction on this thread (see [`Keyspace::hold`]); dropping it
/// releases them.
pub struct Hold<'a> {
    keyspace: &'a Keyspace,
    /// Kept only to be dropped: that unlocks the shards.
    _guards: HoldGuards<'a>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let state = HELD.with(|h| h.replace(NOT_HOLDING));
        // The transaction's effects reach the stream while its shards are still locked.
        crate::effects::on_release();
        debug_assert_eq!(state.lent, 0, "a shard still borrowed when its hold ends");
        for index in set_bits(state.extra) {
            // SAFETY: a bit of `extra` is set only by `widen_hold`, after this thread
            // locked that shard and forgot the guard; nothing else unlocks it, and no
            // borrowed guard outlives the hold (borrows live inside the commands it runs).
            unsafe { self.keyspace.shards[index].lock.force_unlock() };
        }
        // Then `guards` drops, unlocking the shards locked by `hold`.
    }
}

impl Keyspace {
    /// Locks the shards in `mask` (bit i = shard i) for a transaction on this thread, in
    /// ascending order; until the returned `Hold` drops, this thread's `lock*` calls borrow
    /// these locks instead of waiting for them. Panics if the thread already holds shards.
    pub fn hold(&self, mask: u64) -> Hold<'_> {
        assert!(
            HELD.with(|h| h.get().held) == 0,
            "nested keyspace hold on one thread"
        );
        let guards = self.hold_guards(mask);
        HELD.with(|h| {
            h.set(HeldShards {
                keyspace: self as *const Keyspace as usize,
                held: mask,
                lent: 0,
                extra: 0,
            })
        });
        Hold {
            keyspace: self,
            _guards: guards,
        }
    }

    /// The guards of `hold`, taken as `acquire` takes them (backing off when busy).
    fn hold_guards(&self, mask: u64) -> HoldGuards<'_> {
        self.backing_off(
            set_bits(mask),
            |i| self.shards[i].lock.lock(),
            |i| self.shards[i].lock.try_lock(),
        )
    }

    /// Adds the shards in `mask` to this thread's hold (a script reaching a key it did not
    /// declare). With `wait_above`, a shard above every held one is waited for (that keeps
    /// the ascending order); otherwise, and always for one below, a shard is only tried:
    /// waiting for a lower one while holding a higher one could deadlock. Returns false
    /// when a shard was busy; the shards added so far stay held. Panics without a hold on
    /// this keyspace.
    pub fn widen_hold(&self, mask: u64, wait_above: bool) -> bool {
        let mut state = HELD.with(|h| h.get());
        assert!(
            state.held != 0 && state.keyspace == self as *const Keyspace as usize,
            "widen_hold without a hold"
        );
        for index in set_bits(mask & !state.held) {
            let highest = 63 - state.held.leading_zeros() as usize;
            let lock = &self.shards[index].lock;
            let guard = if wait_above && index > highest {
                lock.lock()
            } else {
                match lock.try_lock() {
                    Some(guard) => guard,
                    None => return false,
                }
            };
            // Unlocked by the hold's end (`extra`).
            std::mem::forget(guard);
            state.held |= 1u64 << index;
            state.extra |= 1u64 << index;
            HELD.with(|h| h.set(state));
        }
        true
    }

    /// The shards this thread holds (bit i = shard i), 0 outside a hold.
    pub fn held_mask() -> u64 {
        HELD.with(|h| h.get().held)
    }

    /// The shard index bit for `key` (to build a [`Keyspace::hold`] mask).
    pub fn shard_bit(key: &[u8]) -> u64 {
        1u64 << Self::shard_of(key)
    }

    /// A script that holds shards on this thread suspends itself (`on`) while other
    /// clients' commands run on the thread, or goes on (`!on`).
    pub fn set_others_inside_hold(on: bool) {
        OTHERS_INSIDE_HOLD.with(|o| o.set(on));
    }

    /// Whether this thread holds shards for a transaction (serving blocked clients waits
    /// until the transaction ends, as in Valkey).
    pub fn holding() -> bool {
        HELD.with(|h| h.get().held != 0)
    }

    /// Shard `index` borrowed from this thread's hold, if the hold covers it.
    fn borrow_held(&self, index: usize) -> Option<ShardGuard<'_>> {
        let bit = 1u64 << index;
        let state = HELD.with(|h| h.get());
        if state.held & bit == 0 || state.keyspace != self as *const Keyspace as usize {
            return None;
        }
        assert!(
            state.lent & bit == 0,
            "shard {index} locked twice by one command inside a transaction"
        );
        HELD.with(|h| {
            h.set(HeldShards {
                lent: state.lent | bit,
                ..state
            })
        });
        // SAFETY: this thread logically holds the lock: `hold` locked this shard and keeps
        // its guard, unused, until it drops, and it drops only after every borrow (borrows
        // live inside the commands the transaction runs). The `lent` bit allows one borrow
        // at a time, so no two live guards reach this shard's data. The borrowed guard is
        // never dropped (`ManuallyDrop`), so it never unlocks the mutex.
        let guard = unsafe { self.shards[index].lock.make_guard_unchecked() };
        Some(ShardGuard::Borrowed {
            guard: ManuallyDrop::new(guard),
            index,
        })
    }

    /// Locks shard `index`, or borrows it from this thread's hold. Every way to a shard's
    /// data passes here (or through `try_guard`), which is where a pending snapshot dump
    /// happens: before the caller can see, let alone change, the shard.
    fn guard(&self, index: usize) -> ShardGuard<'_> {
        let mut guard = self.guard_unchecked(index);
        self.dump_if_pending(index, &mut guard);
        guard
    }

    fn guard_unchecked(&self, index: usize) -> ShardGuard<'_> {
        if let Some(borrowed) = self.borrow_held(index) {
            return borrowed;
        }
        if HELD.with(|h| h.get().held) != 0 && !OTHERS_INSIDE_HOLD.with(Cell::get) {
            // A shard outside the hold: waiting could deadlock against a thread that waits
            // for one we hold, so only try. Reaching here means a key the transaction's plan
            // did not include (a key spec bug); the command fails instead of hanging.
            // (Another client's command run while a script is suspended waits as usual:
            // the threads that hold a shard and wait for another never wait for long,
            // see `Keyspace::backing_off` and `widen_hold`.)
            return match self.shards[index].lock.try_lock() {
                Some(g) => ShardGuard::Owned(g),
                None => panic!("shard {index} is outside the transaction's locks"),
            };
        }
        ShardGuard::Owned(self.shards[index].lock.lock())
    }

    fn try_guard(&self, index: usize) -> Option<ShardGuard<'_>> {
        let mut guard = match self.borrow_held(index) {
            Some(borrowed) => borrowed,
            None => self.shards[index].lock.try_lock().map(ShardGuard::Owned)?,
        };
        self.dump_if_pending(index, &mut guard);
        Some(guard)
    }

    /// The snapshot hook: one relaxed load when no snapshot runs. The flag is only set
    /// while every shard lock is held and only cleared under this shard's lock, so the
    /// mutex orders it: a thread that holds the lock sees the current value.
    #[inline]
    fn dump_if_pending(&self, index: usize, guard: &mut ShardGuard<'_>) {
        let slot = &self.shards[index];
        if slot.pending.load(Relaxed) {
            self.dumper.dump(index, guard);
            slot.pending.store(false, Relaxed);
        }
    }

    /// Marks every shard pending. Only `snapshot.rs` calls this, with every shard locked.
    pub(crate) fn mark_all_pending(&self, _all: &Locked<'_>) {
        for slot in self.shards.iter() {
            slot.pending.store(true, Relaxed);
        }
    }

    /// Clears every pending flag (an aborted snapshot). Threads that read a flag before
    /// it cleared may still call the dumper, which an aborted snapshot ignores.
    pub(crate) fn clear_pending(&self) {
        for slot in self.shards.iter() {
            slot.pending.store(false, Relaxed);
        }
    }

    /// Whether shard `index` still waits for its dump (tests).
    pub fn shard_pending(&self, index: usize) -> bool {
        self.shards[index].pending.load(Relaxed)
    }
}

/// Shards locked by one command. Dropping it releases them.
pub struct Locked<'a> {
    guards: SmallVec<[(usize, ShardGuard<'a>); 4]>,
    /// The databases (below 64) reached through [`Locked::db`], closed when the locks go.
    touched: u64,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // A key opened by the command is written back now, while its memory is still in
        // the cache; left open, it was written back by the next command to reach its
        // database in that shard, usually dozens of commands later, after a cache miss.
        // (Any database not marked here is still closed that way.)
        for db in set_bits(self.touched) {
            for (_, shard) in self.guards.iter_mut() {
                if let Some(db) = shard.dbs.get_mut(db) {
                    db.close();
                }
            }
        }
        // Inside a hold the shards stay locked: the hold's end moves the effects.
        if !Keyspace::holding() {
            crate::effects::on_release();
        }
        // Then `guards` drops, releasing the shards.
    }
}

impl<'a> Locked<'a> {
    /// Database `db` of the shard that holds `key`.
    ///
    /// Panics if that shard is not locked: the keys a command touches come from its key specs
    /// in the command table, so this is a bug in the table, which the dispatcher turns into an
    /// error reply.
    pub fn db(&mut self, db: usize, key: &[u8]) -> &mut Db {
        if db < 64 {
            self.touched |= 1 << db;
        }
        let shard = Keyspace::shard_of(key);
        match self.guards.binary_search_by_key(&shard, |(i, _)| *i) {
            Ok(pos) => &mut self.guards[pos].1.dbs[db],
            Err(_) => {
                panic!("key in shard {shard} accessed without its lock: command table key spec bug")
            }
        }
    }

    /// Every locked shard with its index.
    pub fn shards(&mut self) -> impl Iterator<Item = (usize, &mut Shard)> {
        self.guards.iter_mut().map(|(i, g)| (*i, &mut **g))
    }

    /// Database `db` of shard `shard`, if that shard is locked (SCAN, KEYS, RANDOMKEY walk
    /// the keyspace shard by shard).
    pub fn shard_db(&mut self, shard: usize, db: usize) -> Option<&mut Db> {
        let pos = self.guards.binary_search_by_key(&shard, |(i, _)| *i).ok()?;
        self.guards[pos].1.dbs.get_mut(db)
    }

    /// Empties database `db` in every locked shard and returns the old contents, so that the
    /// caller can free them after releasing the locks, or on another thread (FLUSHDB ASYNC).
    pub fn take_db(&mut self, db: usize) -> Vec<Db> {
        self.guards
            .iter_mut()
            .map(|(_, shard)| shard.dbs[db].take())
            .collect()
    }

    pub fn holds_all(&self) -> bool {
        self.guards.len() == SHARD_COUNT
    }

    /// Exchanges the contents of every database with `other`'s, both holding every shard of
    /// keyspaces with the same number of databases (a replica's `repl-diskless-load swapdb`
    /// installs the snapshot it loaded aside).
    pub fn exchange_with(&mut self, other: &mut Locked<'_>) {
        assert!(self.holds_all() && other.holds_all());
        for ((_, mine), (_, theirs)) in self.guards.iter_mut().zip(other.guards.iter_mut()) {
            assert_eq!(mine.dbs.len(), theirs.dbs.len());
            std::mem::swap(&mut mine.dbs, &mut theirs.dbs);
        }
    }

    /// Swaps two databases in every locked shard (SWAPDB needs all shards locked).
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        for (_, shard) in self.guards.iter_mut() {
            shard.dbs.swap(a, b);
            shard.dbs[a].set_index(a);
            shard.dbs[b].set_index(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Entry;
    use crate::value::{StrValue, Value};

    #[test]
    fn multi_key_lock_reaches_every_key_and_dedups_shards() {
        let ks = Keyspace::new(16);
        let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key:{i}").into_bytes()).collect();
        let mut locked = ks.lock(&keys);
        for k in &keys {
            locked
                .db(3, k)
                .insert(k, Entry::new(Value::Str(StrValue::from_bytes(b"1")), 0));
        }
        drop(locked);
        assert_eq!(ks.db_len(3), 200);
        assert_eq!(ks.db_len(0), 0);
    }

    #[test]
    fn exchange_swaps_every_database_and_a_prefetch_changes_nothing() {
        let live = Keyspace::new(2);
        let staged = Keyspace::new(2);
        let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
        let mut locked = staged.lock(&keys);
        for k in &keys {
            locked
                .db(1, k)
                .insert(k, Entry::new(Value::Str(StrValue::from_bytes(b"1")), 0));
        }
        drop(locked);
        live.lock(&[b"old"]).db(0, b"old").insert(
            b"old",
            Entry::new(Value::Str(StrValue::from_bytes(b"1")), 0),
        );
        for k in &keys {
            staged.prefetch(1, hash_key(k), crate::table::Stage::Bucket);
            staged.prefetch(1, hash_key(k), crate::table::Stage::Node);
        }
        live.lock_all().exchange_with(&mut staged.lock_all());
        assert_eq!((live.db_len(0), live.db_len(1)), (0, 100));
        assert_eq!((staged.db_len(0), staged.db_len(1)), (1, 0));
    }

    #[test]
    fn take_db_empties_one_database_everywhere() {
        let ks = Keyspace::new(2);
        let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
        let mut locked = ks.lock(&keys);
        for k in &keys {
            for db in 0..2 {
                locked
                    .db(db, k)
                    .insert(k, Entry::new(Value::Str(StrValue::Int(1)), 0));
            }
        }
        drop(locked);
        assert_eq!(ks.shard_lens(1).iter().sum::<usize>(), 100);
        let taken = ks.lock_all().take_db(1);
        assert_eq!(taken.iter().map(Db::len).sum::<usize>(), 100);
        assert_eq!(ks.db_len(1), 0);
        assert_eq!(ks.db_len(0), 100);
        let mut one = ks.lock_shard(5);
        assert!(one.shard_db(5, 0).is_some());
        assert!(one.shard_db(6, 0).is_none());
        assert!(one.shard_db(5, 2).is_none());
    }

    #[test]
    fn a_hold_lends_its_shards_to_the_commands_inside_it() {
        let ks = Keyspace::new(1);
        let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("k{i}").into_bytes()).collect();
        let mask = keys.iter().fold(0, |m, k| m | Keyspace::shard_bit(k));
        {
            let _hold = ks.hold(mask);
            assert!(Keyspace::holding());
            // Each "command" locks some keys again: borrowed, no self-deadlock.
            for k in &keys {
                ks.lock(&[k])
                    .db(0, k)
                    .insert(k, Entry::new(Value::Str(StrValue::Int(1)), 0));
            }
            ks.lock(&keys).db(0, &keys[0]).remove(&keys[0]);
            // Another thread cannot get in while the hold lasts.
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert!(
                        ks.shards[Keyspace::shard_of(&keys[1])]
                            .lock
                            .try_lock()
                            .is_none()
                    )
                });
            });
        }
        assert!(!Keyspace::holding());
        assert_eq!(ks.db_len(0), 49);
        // Released: another thread locks freely.
        std::thread::scope(|s| {
            s.spawn(|| drop(ks.lock_all()));
        });
    }

    #[test]
    fn a_hold_of_everything_serves_whole_keyspace_calls() {
        let ks = Keyspace::new(1);
        let _hold = ks.hold(u64::MAX);
        assert_eq!(ks.db_len(0), 0);
        let mut all = ks.lock_all();
        assert!(all.holds_all());
        all.db(0, b"a")
            .insert(b"a", Entry::new(Value::Str(StrValue::Int(1)), 0));
        drop(all);
        assert_eq!(ks.db_counts(0), (1, 0));
    }

    #[test]
    fn swapdb_swaps_in_every_shard() {
        let ks = Keyspace::new(2);
        ks.lock(&[b"a"])
            .db(0, b"a")
            .insert(b"a", Entry::new(Value::Str(StrValue::Int(1)), 0));
        ks.lock_all().swap_dbs(0, 1);
        assert_eq!(ks.db_len(0), 0);
        assert_eq!(ks.db_len(1), 1);
    }

    /// A key whose shard is `shard`.
    fn key_in(shard: usize) -> Vec<u8> {
        (0..)
            .map(|i| format!("key:{i}").into_bytes())
            .find(|k| Keyspace::shard_of(k) == shard)
            .expect("some key lands in every shard")
    }

    #[test]
    fn a_widened_hold_keeps_its_new_shards_until_it_ends() {
        let ks = Keyspace::new(1);
        let (low, mid, high) = (key_in(3), key_in(20), key_in(50));
        {
            let _hold = ks.hold(Keyspace::shard_bit(&mid));
            // Above the held shard: taken even with `wait_above` (it is free).
            assert!(ks.widen_hold(Keyspace::shard_bit(&high), true));
            // Below: only tried, and free.
            assert!(ks.widen_hold(Keyspace::shard_bit(&low), false));
            for k in [&low, &mid, &high] {
                ks.lock(&[k])
                    .db(0, k)
                    .insert(k, Entry::new(Value::Str(StrValue::Int(1)), 0));
            }
            std::thread::scope(|s| {
                s.spawn(|| {
                    for shard in [3, 20, 50] {
                        assert!(ks.shards[shard].lock.try_lock().is_none(), "{shard}");
                    }
                });
            });
        }
        assert!(!Keyspace::holding());
        // Every shard is free again, the widened ones included.
        std::thread::scope(|s| {
            s.spawn(|| {
                for shard in [3, 20, 50] {
                    assert!(ks.shards[shard].lock.try_lock().is_some(), "{shard}");
                }
            });
        });
        assert_eq!(ks.db_len(0), 3);
    }

    #[test]
    fn widening_only_tries_a_busy_shard() {
        let ks = Keyspace::new(1);
        let (low, high) = (key_in(3), key_in(50));
        let busy = ks.lock(&[&low]);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _hold = ks.hold(Keyspace::shard_bit(&high));
                assert!(!ks.widen_hold(Keyspace::shard_bit(&low), true));
                assert_eq!(Keyspace::held_mask(), Keyspace::shard_bit(&high));
            });
        });
        drop(busy);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _hold = ks.hold(Keyspace::shard_bit(&low));
                let other = ks.lock(&[&high]);
                // Above, but `wait_above` is off: a run that can start again never waits.
                std::thread::scope(|inner| {
                    inner.spawn(|| {
                        let _hold = ks.hold(Keyspace::shard_bit(&low) >> 1);
                        assert!(!ks.widen_hold(Keyspace::shard_bit(&high), false));
                    });
                });
                drop(other);
            });
        });
    }

    /// A thread holding a high shard spins for a lower one while other threads lock both
    /// shards together over and over: they back off instead of waiting for the high one
    /// while holding the low one, so the spinner gets through (with in-order waiting the
    /// two would wait for each other for ever).
    #[test]
    fn multi_shard_locks_back_off_for_a_widening_hold() {
        let ks = Keyspace::new(1);
        let (low, high) = (key_in(5), key_in(40));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Relaxed) {
                        let mut both = ks.lock(&[&low, &high]);
                        both.db(0, &low)
                            .insert(&low, Entry::new(Value::Str(StrValue::Int(1)), 0));
                    }
                });
            }
            // Stops the lockers even when an assertion below fails.
            struct Stop<'a>(&'a AtomicBool);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Relaxed);
                }
            }
            let _stop = Stop(&stop);
            for _ in 0..200 {
                let _hold = ks.hold(Keyspace::shard_bit(&high));
                // Give the lockers time to take the low shard and find the high one busy.
                std::thread::sleep(std::time::Duration::from_micros(50));
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while !ks.widen_hold(Keyspace::shard_bit(&low), true) {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the low shard never came free"
                    );
                    std::thread::yield_now();
                }
            }
        });
    }
}
