//! Point-in-time snapshots without fork: *dump on first touch*.
//!
//! Starting a snapshot locks every shard, lets the caller record what the snapshot needs
//! (key counts, the file's preamble), marks every shard *pending* and releases the locks.
//! From then on, whichever thread next acquires a pending shard — a worker running a
//! command, the cron, a whole-keyspace command, or the saver walking the shards — first
//! hands the whole shard to the snapshot's [`ShardDumper`] and clears the flag, under the
//! shard's lock, before it does anything else with it. So no shard changes before it is
//! dumped: what the dumper sees is the keyspace as it was at the start instant, and nothing
//! is copied that the snapshot was not going to write anyway. The saver only has to visit
//! every shard once to make sure each one was dumped.
//!
//! When no snapshot runs, the cost is one relaxed atomic load per shard lock acquisition.
//! Lock order: shard lock → dumper slot → whatever the dumper locks (its output). The
//! dumper must never take a shard lock.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::keyspace::{Keyspace, Locked, Shard};

/// Receives each shard once, with its lock held, before anybody else touches it.
pub trait ShardDumper: Send + Sync {
    fn dump_shard(&self, index: usize, shard: &mut Shard);
}

/// The running snapshot's dumper, if any.
#[derive(Default)]
pub(crate) struct SnapshotSlot {
    current: Mutex<Option<Arc<dyn ShardDumper>>>,
}

impl SnapshotSlot {
    /// Dumps one pending shard (its lock is held by the caller).
    #[cold]
    #[inline(never)]
    pub(crate) fn dump(&self, index: usize, shard: &mut Shard) {
        let dumper = self.current.lock().clone();
        if let Some(dumper) = dumper {
            dumper.dump_shard(index, shard);
        }
    }
}

impl Keyspace {
    /// Starts a snapshot: with every shard locked, runs `prepare` (which may refuse by
    /// returning `Err`, and then nothing starts); on `Ok`, installs `dumper` and marks every
    /// shard pending before the locks are released.
    pub fn begin_snapshot<R, E>(
        &self,
        dumper: Arc<dyn ShardDumper>,
        prepare: impl FnOnce(&mut Locked<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut all = self.lock_all();
        let prepared = prepare(&mut all)?;
        *self.dumper.current.lock() = Some(dumper);
        self.mark_all_pending(&all);
        drop(all);
        Ok(prepared)
    }

    /// Makes sure shard `index` was dumped: locking it dumps it if it is still pending.
    /// The saver calls this for every shard in turn.
    pub fn dump_shard_now(&self, index: usize) {
        drop(self.lock_shard(index));
    }

    /// Ends the snapshot that `dumper` serves (finished, or abandoned halfway): no shard is
    /// pending any more and the dumper is released. A thread already dumping finishes its
    /// shard. Does nothing if another snapshot has replaced it.
    pub fn end_snapshot(&self, dumper: &dyn ShardDumper) {
        let mut current = self.dumper.current.lock();
        let is_current = current
            .as_ref()
            .is_some_and(|d| std::ptr::addr_eq(Arc::as_ptr(d), dumper as *const dyn ShardDumper));
        if is_current {
            self.clear_pending();
            *current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;
    use crate::db::Entry;
    use crate::keyspace::SHARD_COUNT;
    use crate::value::{StrValue, Value};

    /// Records the sum of every counter it sees, per shard, exactly once.
    #[derive(Default)]
    struct Summer {
        sum: AtomicUsize,
        shards: AtomicUsize,
    }

    impl ShardDumper for Summer {
        fn dump_shard(&self, _index: usize, shard: &mut Shard) {
            let mut sum = 0;
            shard.dbs[0].for_each(|_, e| {
                if let Value::Str(StrValue::Int(n)) = e.value {
                    sum += n as usize;
                }
            });
            self.sum.fetch_add(sum, SeqCst);
            self.shards.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn a_snapshot_sees_the_keyspace_as_it_was_at_its_start() {
        let ks = Keyspace::new(1);
        let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            ks.lock(&[k])
                .db(0, k)
                .insert(k, Entry::new(Value::Str(StrValue::Int(10)), 0));
        }
        let summer = Arc::new(Summer::default());
        ks.begin_snapshot(summer.clone(), |_| Ok::<_, ()>(()))
            .expect("starts");
        // Moves between keys keep the total; a write after the start adds to it.
        for (i, k) in keys.iter().enumerate() {
            let other = &keys[(i * 7 + 3) % keys.len()];
            let mut locked = ks.lock(&[k, other]);
            if let Some(e) = locked.db(0, k).get(k, 0) {
                e.value = Value::Str(StrValue::Int(5));
            }
            if let Some(e) = locked.db(0, other).get(other, 0) {
                e.value = Value::Str(StrValue::Int(15));
            }
        }
        ks.lock(&[b"extra"])
            .db(0, b"extra")
            .insert(b"extra", Entry::new(Value::Str(StrValue::Int(1000)), 0));
        for i in 0..SHARD_COUNT {
            ks.dump_shard_now(i);
        }
        ks.end_snapshot(&*summer);
        assert_eq!(summer.sum.load(SeqCst), 1000);
        assert_eq!(summer.shards.load(SeqCst), SHARD_COUNT);
        assert!((0..SHARD_COUNT).all(|i| !ks.shard_pending(i)));
    }
}
