//! The keyspace's hash table: one [`Node`] per key, held in a [`BucketTable`] of 64-byte
//! buckets with a hash tag per slot (see `types/bucket_table.rs`, which sets and hashes use
//! too): a lookup reads the key's bucket line, compares seven tags at once and reads only the
//! nodes whose tag matches: two cache misses for a present key, one for an absent one, where
//! a chained table walks a node per entry ahead of it in the chain. The table grows and
//! shrinks by incremental rehash, a few buckets per change, so no command pays for moving a
//! whole table; and SCAN keeps Valkey's guarantee (a key present for the whole iteration is
//! returned) across resizes, by the reverse-binary cursor.

use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::FixedState;

/// Hashes a key with the process-wide seed. The top bits choose the shard, the low bits the
/// bucket, so the two choices are independent.
pub fn hash_key(key: &[u8]) -> u64 {
    static STATE: OnceLock<FixedState> = OnceLock::new();
    STATE
        .get_or_init(|| FixedState::with_seed(rand::random()))
        .hash_one(key)
}

use crate::node::{Node, Payload};
use crate::types::bucket_table::{BucketTable, EntryKey, Location, Vacancy};

/// The steps of a prefetch (see [`Table::prefetch`]), in the order a lookup reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The key's bucket line.
    Bucket,
    /// The nodes of the bucket whose tag matches, and the child bucket if there is one.
    Node,
    /// The same in the child bucket (a chain longer than a bucket, about one in five near
    /// the grow threshold).
    Next,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Bucket, Stage::Node, Stage::Next];
}

#[inline]
pub(crate) fn prefetch_addr(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, even on an invalid address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(addr.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Bytes of a node a lookup reads: its header and, where a typical 48-byte node straddles
/// two cache lines (jemalloc packs them 48 bytes apart), the key at its end.
const NODE_SPAN: usize = 48;

/// Nodes are keyed by their key.
struct NodeKey;

impl EntryKey for NodeKey {
    type Item = Node;

    #[inline]
    fn key(node: &Node) -> &[u8] {
        node.key()
    }
}

/// The table of [`Node`]s under one database of one shard.
#[derive(Default)]
pub struct Table {
    nodes: BucketTable<NodeKey>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of buckets new keys go to.
    #[cfg(test)]
    pub fn bucket_count(&self) -> usize {
        self.nodes.bucket_count()
    }

    /// Bytes of the bucket arrays.
    pub fn bucket_bytes(&self) -> usize {
        self.nodes.array_bytes()
    }

    /// Prefetches the line holding the table's own fields (where its buckets are).
    pub(crate) fn prefetch_header(&self) {
        prefetch_addr((&self.nodes as *const BucketTable<NodeKey>).cast());
    }

    /// Asks the CPU to start loading, without waiting, what a lookup of the key with `hash`
    /// will read at `stage` (each stage needs the lines of the one before in cache to find
    /// its addresses). A batch of lookups prefetched stage by stage overlaps their cache
    /// misses instead of paying them one after another.
    pub(crate) fn prefetch(&self, hash: u64, stage: Stage) {
        match stage {
            Stage::Bucket => self.nodes.prefetch_buckets(hash),
            Stage::Node => self.nodes.prefetch_candidates(hash, false, NODE_SPAN),
            Stage::Next => self.nodes.prefetch_candidates(hash, true, NODE_SPAN),
        }
    }

    pub(crate) fn find(&self, key: &[u8]) -> Option<&Node> {
        if self.nodes.is_empty() {
            return None;
        }
        self.nodes.find(key).and_then(|at| self.nodes.entry(at))
    }

    /// The key's node and where it is (valid until the table next changes). Does a step of
    /// a rehash under way first, as every change does: reads move it on too, so a table that
    /// stops changing does not keep two arrays for long.
    pub(crate) fn find_mut(&mut self, key: &[u8]) -> Option<(Location, &mut Node)> {
        if self.nodes.is_empty() {
            return None;
        }
        let at = self.nodes.locate(key).ok()?;
        self.nodes.entry_mut(at).map(|node| (at, node))
    }

    /// Where the key's node is, or where it would go.
    pub(crate) fn locate(&mut self, key: &[u8]) -> Result<Location, Vacancy> {
        self.nodes.locate(key)
    }

    /// The node at `at`, from a lookup since which the table has not changed.
    pub(crate) fn node_at(&self, at: Location) -> Option<&Node> {
        self.nodes.entry(at)
    }

    /// The node at `at`, mutably; a node written through it must have the same key.
    pub(crate) fn node_at_mut(&mut self, at: Location) -> Option<&mut Node> {
        self.nodes.entry_mut(at)
    }

    /// Adds a node for `key` where [`Table::locate`] found it absent.
    pub(crate) fn insert_new(
        &mut self,
        vacancy: Vacancy,
        key: &[u8],
        access: u32,
        expire_at: i64,
        payload: Payload<'_>,
    ) {
        self.nodes
            .insert(vacancy, Node::new(key, access, expire_at, payload));
    }

    /// Removes and returns the node of `key`.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Node> {
        if self.nodes.is_empty() {
            return None;
        }
        let at = self.nodes.locate(key).ok()?;
        self.nodes.remove(at)
    }

    /// Removes every entry; returns them so the caller can drop them elsewhere (FLUSHALL ASYNC).
    pub fn take_all(&mut self) -> Table {
        std::mem::take(self)
    }

    /// Grows the table for `total` entries at once (loading a snapshot that announces its
    /// size), instead of doubling step by step as they arrive.
    pub fn reserve(&mut self, total: usize) {
        self.nodes.reserve(total);
    }

    /// Visits one step of a SCAN: the bucket `cursor` designates, and returns the next cursor
    /// (0 when the iteration is complete).
    pub(crate) fn scan_step(&self, cursor: u64, visit: impl FnMut(&Node)) -> u64 {
        self.nodes.scan_step(cursor, visit)
    }

    /// Visits every node (KEYS, FLUSH, DEBUG DIGEST).
    pub(crate) fn for_each(&self, visit: impl FnMut(&Node)) {
        self.nodes.iter().for_each(visit);
    }

    /// Passes every node to `keep`, which returns the node to keep (possibly a replacement
    /// built from it) or `None` to drop it.
    pub(crate) fn retain(&mut self, keep: impl FnMut(Node) -> Option<Node>) {
        self.nodes.retain(keep);
    }

    /// A node drawn uniformly at random, and where it is.
    pub(crate) fn random_node(&self, rng: &mut impl rand::Rng) -> Option<(Location, &Node)> {
        let at = self.nodes.random(rng)?;
        self.nodes.entry(at).map(|node| (at, node))
    }

    /// Visits nodes in consecutive buckets from a random one, until `visit` returns false or
    /// `max_buckets` buckets were looked at (eviction sampling, like Valkey's "some keys").
    pub(crate) fn sample(
        &self,
        rng: &mut impl rand::Rng,
        max_buckets: usize,
        visit: impl FnMut(&Node) -> bool,
    ) {
        self.nodes.sample(rng, max_buckets, visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NO_EXPIRE;
    use crate::node::PayloadRef;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashSet};

    fn insert(t: &mut Table, key: &[u8], n: i64) {
        match t.locate(key) {
            Ok(at) => {
                if let Some(node) = t.node_at_mut(at) {
                    let _ = node.rewrite_in_place(0, NO_EXPIRE, Payload::Int(n));
                }
            }
            Err(vacancy) => t.insert_new(vacancy, key, 0, NO_EXPIRE, Payload::Int(n)),
        }
    }

    fn value(t: &Table, key: &[u8]) -> Option<i64> {
        match t.find(key)?.payload() {
            PayloadRef::Int(n) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn insert_get_remove() {
        let mut t = Table::default();
        for i in 0..1000u32 {
            insert(&mut t, &i.to_be_bytes(), i as i64);
        }
        assert_eq!(t.len(), 1000);
        insert(&mut t, &7u32.to_be_bytes(), 70);
        assert_eq!(t.len(), 1000);
        assert_eq!(value(&t, &7u32.to_be_bytes()), Some(70));
        for i in 0..1000u32 {
            assert!(t.remove(&i.to_be_bytes()).is_some());
        }
        assert!(t.is_empty());
        assert_eq!(t.bucket_count(), 0);
    }

    fn full_scan(t: &Table) -> HashSet<Vec<u8>> {
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = t.scan_step(cursor, |n| {
                seen.insert(n.key().to_vec());
            });
            if cursor == 0 {
                return seen;
            }
        }
    }

    #[test]
    fn scan_visits_everything_once_in_a_stable_table() {
        let mut t = Table::default();
        for i in 0..5000u32 {
            insert(&mut t, &i.to_le_bytes(), i as i64);
        }
        assert_eq!(full_scan(&t).len(), 5000);
    }

    proptest! {
        /// SCAN's guarantee: a key present from the first call to the last is returned, however
        /// the table is resized by inserts and deletes made between the calls.
        #[test]
        fn scan_returns_keys_present_throughout_while_table_resizes(
            stable in 1usize..300,
            churn in proptest::collection::vec((0u32..4000, any::<bool>()), 0..2000),
            steps_between in 1usize..40,
        ) {
            let mut t = Table::default();
            for i in 0..stable as u32 {
                insert(&mut t, format!("stable:{i}").as_bytes(), i as i64);
            }
            let mut seen = BTreeSet::new();
            let mut cursor = 0u64;
            let mut churn = churn.into_iter();
            loop {
                cursor = t.scan_step(cursor, |n| { seen.insert(n.key().to_vec()); });
                if cursor == 0 { break; }
                for (n, add) in churn.by_ref().take(steps_between) {
                    let key = format!("churn:{n}");
                    if add { insert(&mut t, key.as_bytes(), n as i64); } else { t.remove(key.as_bytes()); }
                }
            }
            for i in 0..stable {
                prop_assert!(seen.contains(format!("stable:{i}").as_bytes()), "stable:{} missed", i);
            }
        }
    }
}
