//! A chained hash table keyed by byte strings.
//!
//! Why not `hashbrown`: SCAN must return every key that is present for the whole iteration even
//! while the table grows or shrinks between calls. Valkey's answer, kept here, is a
//! power-of-two bucket array with chaining, iterated in reverse-binary bucket order: a bucket
//! visited at one size covers exactly the buckets it splits into at a larger size, and a
//! shrink merges buckets whose parts were all unvisited or all visited. Open addressing moves
//! entries away from their home bucket, which breaks that argument.
//!
//! Each key is one [`Node`] allocation (key, value and chain link together, see `node.rs`);
//! the table grows when it holds twice as many entries as buckets and shrinks below one
//! eighth.

use std::hash::BuildHasher;
use std::ptr::NonNull;
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

/// The steps of a prefetch (see [`Table::prefetch`]), in the order a lookup reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Bucket,
    Node,
    /// The second node of the chain: with up to two entries per bucket, a lookup often
    /// walks past the first.
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

/// Prefetches the lines a lookup reads of `node`: its header and, where a typical 48-byte
/// node straddles two cache lines (jemalloc packs them 48 bytes apart), the key at its end.
#[inline]
fn prefetch_node(node: &Node) {
    let start = node.addr().as_ptr();
    prefetch_addr(start);
    prefetch_addr(start.wrapping_add(47));
}

/// The most entries per bucket, on average, before the table doubles. Two keeps the bucket
/// array at 4 to 8 bytes per key (a quarter of a typical entry) at the cost of walking
/// 1.5 nodes per lookup on average; chains stay short because the hash is uniform.
const MAX_LOAD: usize = 2;
const MIN_BUCKETS: usize = 4;

/// The chained table of [`Node`]s under one database of one shard.
#[derive(Default)]
pub struct Table {
    buckets: Vec<Option<Node>>,
    len: usize,
}

impl Table {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of buckets (for MEMORY and DEBUG output).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes of the bucket array.
    pub fn bucket_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Option<Node>>()
    }

    fn bucket_of(&self, key: &[u8]) -> usize {
        (hash_key(key) as usize) & (self.buckets.len() - 1)
    }

    /// Asks the CPU to start loading, without waiting, what a lookup of the key with `hash`
    /// will read: its bucket slot (`Stage::Bucket`), the first node of its chain
    /// (`Stage::Node`, once the slot is cached), or the second (`Stage::Next`, once the first
    /// is). A batch of lookups prefetched stage by stage overlaps their cache misses instead
    /// of paying them one after another.
    /// Prefetches the line holding the bucket array's address and length.
    pub(crate) fn prefetch_header(&self) {
        prefetch_addr((&self.buckets as *const Vec<Option<Node>>).cast());
    }

    pub(crate) fn prefetch(&self, hash: u64, stage: Stage) {
        if self.buckets.is_empty() {
            return;
        }
        let slot = &self.buckets[(hash as usize) & (self.buckets.len() - 1)];
        match stage {
            Stage::Bucket => prefetch_addr((slot as *const Option<Node>).cast()),
            Stage::Node => {
                if let Some(node) = slot {
                    prefetch_node(node);
                }
            }
            Stage::Next => {
                if let Some(next) = slot.as_ref().and_then(Node::next) {
                    prefetch_node(next);
                }
            }
        }
    }

    pub(crate) fn find(&self, key: &[u8]) -> Option<&Node> {
        if self.len == 0 {
            return None;
        }
        let mut node = self.buckets[self.bucket_of(key)].as_ref();
        while let Some(n) = node {
            if n.key() == key {
                return Some(n);
            }
            node = n.next();
        }
        None
    }

    /// The key's node and its bucket.
    pub(crate) fn find_mut(&mut self, key: &[u8]) -> Option<(usize, &mut Node)> {
        if self.len == 0 {
            return None;
        }
        let b = self.bucket_of(key);
        let mut node = self.buckets[b].as_mut();
        while let Some(n) = node {
            if n.key() == key {
                return Some((b, n));
            }
            node = n.next_link().as_mut();
        }
        None
    }

    /// The link that holds the node at `addr` in bucket `bucket`.
    pub(crate) fn link_at(
        &mut self,
        bucket: usize,
        addr: NonNull<u8>,
    ) -> Option<&mut Option<Node>> {
        let mut link = self.buckets.get_mut(bucket)?;
        while link.as_ref().is_some_and(|n| n.addr() != addr) {
            link = match link {
                Some(n) => n.next_link(),
                None => break,
            };
        }
        link.is_some().then_some(link)
    }

    /// The node at `addr` in bucket `bucket`.
    pub(crate) fn node_at(&self, bucket: usize, addr: NonNull<u8>) -> Option<&Node> {
        let mut node = self.buckets.get(bucket)?.as_ref();
        while let Some(n) = node {
            if n.addr() == addr {
                return Some(n);
            }
            node = n.next();
        }
        None
    }

    /// Adds a node for `key`, which must not be present; returns its bucket and the node.
    pub(crate) fn insert_new(
        &mut self,
        key: &[u8],
        access: u32,
        expire_at: i64,
        payload: Payload<'_>,
    ) -> (usize, &mut Node) {
        if self.len >= self.buckets.len() * MAX_LOAD {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let b = self.bucket_of(key);
        let next = self.buckets[b].take();
        self.len += 1;
        let head = self.buckets[b].insert(Node::new(key, access, expire_at, payload, next));
        (b, head)
    }

    /// Unlinks and returns the node of `key`.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Node> {
        if self.len == 0 {
            return None;
        }
        let b = self.bucket_of(key);
        let mut link = &mut self.buckets[b];
        while link.as_ref().is_some_and(|n| n.key() != key) {
            link = match link {
                Some(n) => n.next_link(),
                None => break,
            };
        }
        let mut node = link.take()?;
        *link = node.take_next();
        self.len -= 1;
        self.maybe_shrink();
        Some(node)
    }

    /// Removes every entry; returns them so the caller can drop them elsewhere (FLUSHALL ASYNC).
    pub fn take_all(&mut self) -> Table {
        std::mem::take(self)
    }

    fn maybe_shrink(&mut self) {
        let n = self.buckets.len();
        if n > MIN_BUCKETS && self.len * 8 < n {
            let target = self
                .len
                .div_ceil(MAX_LOAD)
                .next_power_of_two()
                .max(MIN_BUCKETS);
            self.resize(target);
        }
        if self.len == 0 {
            self.buckets = Vec::new();
        }
    }

    /// Grows the bucket array for `total` entries at once (loading a snapshot that announces
    /// its size), instead of doubling step by step as they arrive.
    pub fn reserve(&mut self, total: usize) {
        if total > self.buckets.len() * MAX_LOAD {
            let target = total
                .div_ceil(MAX_LOAD)
                .next_power_of_two()
                .max(MIN_BUCKETS);
            self.resize(target);
        }
    }

    fn resize(&mut self, new_size: usize) {
        let mut fresh = Vec::with_capacity(new_size);
        fresh.resize_with(new_size, || None);
        let mut old = std::mem::replace(&mut self.buckets, fresh);
        let mask = new_size - 1;
        // Rehashing reads every node's key, one cache miss each: the chains a few buckets
        // ahead are prefetched (their first node, then, once that is cached, the second), so
        // the misses overlap instead of being paid one by one.
        const AHEAD: usize = 8;
        for i in 0..old.len() {
            if let Some(node) = old.get(i + AHEAD).and_then(Option::as_ref) {
                prefetch_addr(node.addr().as_ptr());
            }
            if let Some(second) = old
                .get(i + AHEAD / 2)
                .and_then(Option::as_ref)
                .and_then(Node::next)
            {
                prefetch_addr(second.addr().as_ptr());
            }
            let mut head = old[i].take();
            while let Some(mut node) = head {
                head = node.take_next();
                let b = (hash_key(node.key()) as usize) & mask;
                *node.next_link() = self.buckets[b].take();
                self.buckets[b] = Some(node);
            }
        }
    }

    /// Visits one step of a SCAN: the bucket `cursor` designates, and returns the next cursor
    /// (0 when the iteration is complete).
    pub(crate) fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&Node)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut node = self.buckets[(cursor & mask) as usize].as_ref();
        while let Some(n) = node {
            visit(n);
            node = n.next();
        }
        // Increment the reversed cursor: set the bits above the mask, reverse, add one, reverse.
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    /// Visits every node (KEYS, FLUSH, DEBUG DIGEST).
    pub(crate) fn for_each(&self, mut visit: impl FnMut(usize, &Node)) {
        for (b, bucket) in self.buckets.iter().enumerate() {
            let mut node = bucket.as_ref();
            while let Some(n) = node {
                visit(b, n);
                node = n.next();
            }
        }
    }

    /// Passes every node to `keep`, which returns the node to keep (possibly a replacement
    /// built from it, whose chain link must be empty) or `None` to drop it.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Node) -> Option<Node>) {
        for bucket in &mut self.buckets {
            let mut chain = bucket.take();
            let mut kept: Option<Node> = None;
            while let Some(mut node) = chain {
                chain = node.take_next();
                match keep(node) {
                    Some(mut node) => {
                        *node.next_link() = kept;
                        kept = Some(node);
                    }
                    None => self.len -= 1,
                }
            }
            *bucket = kept;
        }
        self.maybe_shrink();
    }

    /// A random node: picks buckets at random until one is non-empty, then a random node of
    /// its chain (chains are short, so the bias towards keys in short chains is small).
    pub(crate) fn random_node(&self, rng: &mut impl rand::Rng) -> Option<(usize, &Node)> {
        if self.len == 0 {
            return None;
        }
        let mask = self.buckets.len() - 1;
        loop {
            let b = rng.random::<u64>() as usize & mask;
            let mut chain_len = 0;
            let mut node = self.buckets[b].as_ref();
            while let Some(n) = node {
                chain_len += 1;
                node = n.next();
            }
            if chain_len == 0 {
                continue;
            }
            let pick = rng.random_range(0..chain_len);
            let mut node = self.buckets[b].as_ref();
            for _ in 0..pick {
                node = node.and_then(Node::next);
            }
            return node.map(|n| (b, n));
        }
    }

    /// Visits nodes in consecutive buckets from a random one, until `visit` returns false or
    /// `max_buckets` buckets were looked at (eviction sampling, like Valkey's "some keys").
    pub(crate) fn sample(
        &self,
        rng: &mut impl rand::Rng,
        max_buckets: usize,
        mut visit: impl FnMut(&Node) -> bool,
    ) {
        if self.len == 0 {
            return;
        }
        let mask = self.buckets.len() - 1;
        let start = rng.random::<u64>() as usize;
        for i in 0..max_buckets.min(self.buckets.len()) {
            let mut node = self.buckets[(start + i) & mask].as_ref();
            while let Some(n) = node {
                if !visit(n) {
                    return;
                }
                node = n.next();
            }
        }
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
        if let Some((_, node)) = t.find_mut(key) {
            let _ = node.rewrite_in_place(0, NO_EXPIRE, Payload::Int(n));
        } else {
            t.insert_new(key, 0, NO_EXPIRE, Payload::Int(n));
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
