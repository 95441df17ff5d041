//! Starting to load the keyspace memory a batch of requests is about to touch, all at once,
//! so that the cache misses overlap instead of each lookup waiting for its own: with a
//! keyspace larger than the CPU caches, a pipelined GET spent most of its time in that wait,
//! and so does an MGET or MSET of many keys (Valkey 8 prefetches its command batches the
//! same way). A client's connection and a replica's apply loop both use it.

use ferrokv_store::Keyspace;
use ferrokv_store::table::hash_key;
use smallvec::SmallVec;

use crate::table::TABLE;

/// The most keys prefetched at once: enough for a pipeline of sixteen MSETs of ten keys
/// (redis-benchmark's). At 64, only the first six of those were prefetched and MSET -P16
/// spent 19% more user cycles per request (measured side by side, session 10); the
/// lines all those lookups touch still fit the L2 cache.
const MAX_KEYS: usize = 256;

/// The keys of a batch of requests, gathered before the requests run. The hashes live in
/// an uninitialized inline buffer: zeroing 2 KiB per batch cost more than the gathering.
#[derive(Default)]
pub struct KeyPrefetch {
    hashes: SmallVec<[u64; MAX_KEYS]>,
}

impl KeyPrefetch {
    /// Adds the keys of one request, where the command table's key specs place them.
    pub fn add_request<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        TABLE.request_keys(args, |key| {
            if self.hashes.len() < MAX_KEYS {
                self.hashes.push(hash_key(key));
            }
        });
    }

    /// Prefetches the keys gathered, in database `db`; a lone key has nothing to overlap
    /// with and is skipped. Requests do not change: they run one by one afterwards.
    pub fn run(&self, keyspace: &Keyspace, db: usize) {
        if self.hashes.len() >= 2 {
            keyspace.prefetch_batch(db, &self.hashes);
        }
    }
}
