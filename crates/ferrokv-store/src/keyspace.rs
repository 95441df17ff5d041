//! The sharded keyspace and its locking discipline.
//!
//! Every command locks the shards of the keys it names, in ascending shard order, for the
//! whole command, so each command is atomic and multi-key commands cannot deadlock. Commands
//! that need the whole keyspace (FLUSHALL, SWAPDB, EXEC, scripts) lock every shard, in the same
//! order. Locks are never held across an await or a socket write.

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::db::Db;
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

pub struct Keyspace {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    databases: usize,
}

impl Keyspace {
    pub fn new(databases: usize) -> Keyspace {
        let shards = (0..SHARD_COUNT)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard {
                    dbs: (0..databases).map(Db::new).collect(),
                }))
            })
            .collect();
        Keyspace { shards, databases }
    }

    pub fn databases(&self) -> usize {
        self.databases
    }

    pub fn shard_of(key: &[u8]) -> usize {
        (hash_key(key) >> (64 - SHARD_BITS)) as usize
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
            guards: indexes
                .into_iter()
                .map(|i| (i, self.shards[i].lock()))
                .collect(),
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
                self.shards[index].lock()
            } else {
                match self.shards[index].try_lock() {
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
        guards.push((index, self.shards[index].lock()));
        Locked { guards }
    }

    /// Locks every shard.
    pub fn lock_all(&self) -> Locked<'_> {
        Locked {
            guards: self
                .shards
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.lock()))
                .collect(),
        }
    }

    /// Keys in database `db`, counting shard by shard (not an atomic snapshot across shards,
    /// which DBSIZE and INFO do not need).
    pub fn db_len(&self, db: usize) -> usize {
        self.shards.iter().map(|s| s.lock().dbs[db].len()).sum()
    }

    /// The number of keys of database `db` in each shard, shard by shard (RANDOMKEY weighs
    /// its choice of shard by these).
    pub fn shard_lens(&self, db: usize) -> [usize; SHARD_COUNT] {
        let mut lens = [0; SHARD_COUNT];
        for (len, shard) in lens.iter_mut().zip(self.shards.iter()) {
            *len = shard.lock().dbs[db].len();
        }
        lens
    }

    /// Keys of database `db` whose value has items with a TTL (hash fields).
    pub fn db_volatile_items(&self, db: usize) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().dbs[db].volatile_items_len())
            .sum()
    }

    /// (keys, keys with a TTL) in database `db`.
    pub fn db_counts(&self, db: usize) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(k, v), s| {
            let shard = s.lock();
            (k + shard.dbs[db].len(), v + shard.dbs[db].volatile_len())
        })
    }
}

/// Shards locked by one command. Dropping it releases them.
pub struct Locked<'a> {
    guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 4]>,
}

impl<'a> Locked<'a> {
    /// Database `db` of the shard that holds `key`.
    ///
    /// Panics if that shard is not locked: the keys a command touches come from its key specs
    /// in the command table, so this is a bug in the table, which the dispatcher turns into an
    /// error reply.
    pub fn db(&mut self, db: usize, key: &[u8]) -> &mut Db {
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
    fn swapdb_swaps_in_every_shard() {
        let ks = Keyspace::new(2);
        ks.lock(&[b"a"])
            .db(0, b"a")
            .insert(b"a", Entry::new(Value::Str(StrValue::Int(1)), 0));
        ks.lock_all().swap_dbs(0, 1);
        assert_eq!(ks.db_len(0), 0);
        assert_eq!(ks.db_len(1), 1);
    }
}
