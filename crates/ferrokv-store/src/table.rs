//! A chained hash table keyed by byte strings.
//!
//! Why not `hashbrown`: SCAN must return every key that is present for the whole iteration even
//! while the table grows or shrinks between calls. Valkey's answer, kept here, is a
//! power-of-two bucket array with chaining, iterated in reverse-binary bucket order: a bucket
//! visited at one size covers exactly the buckets it splits into at a larger size, and a
//! shrink merges buckets whose parts were all unvisited or all visited. Open addressing moves
//! entries away from their home bucket, which breaks that argument.
//!
//! The table grows when it holds as many entries as buckets and shrinks below one eighth.

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

struct Node<V> {
    next: Option<Box<Node<V>>>,
    key: Box<[u8]>,
    value: V,
}

pub struct Table<V> {
    buckets: Vec<Option<Box<Node<V>>>>,
    len: usize,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            buckets: Vec::new(),
            len: 0,
        }
    }
}

const MIN_BUCKETS: usize = 4;

impl<V> Table<V> {
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

    fn bucket_of(&self, key: &[u8]) -> usize {
        (hash_key(key) as usize) & (self.buckets.len() - 1)
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        if self.len == 0 {
            return None;
        }
        let mut node = self.buckets[self.bucket_of(key)].as_deref();
        while let Some(n) = node {
            if &*n.key == key {
                return Some(&n.value);
            }
            node = n.next.as_deref();
        }
        None
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.len == 0 {
            return None;
        }
        let b = self.bucket_of(key);
        let mut node = self.buckets[b].as_deref_mut();
        while let Some(n) = node {
            if &*n.key == key {
                return Some(&mut n.value);
            }
            node = n.next.as_deref_mut();
        }
        None
    }

    /// The stored key and value for `key`.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &V)> {
        if self.len == 0 {
            return None;
        }
        let mut node = self.buckets[self.bucket_of(key)].as_deref();
        while let Some(n) = node {
            if &*n.key == key {
                return Some((&n.key, &n.value));
            }
            node = n.next.as_deref();
        }
        None
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        if let Some(slot) = self.get_mut(key) {
            return Some(std::mem::replace(slot, value));
        }
        if self.len >= self.buckets.len() {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let b = self.bucket_of(key);
        let next = self.buckets[b].take();
        self.buckets[b] = Some(Box::new(Node {
            next,
            key: key.into(),
            value,
        }));
        self.len += 1;
        None
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        if self.len == 0 {
            return None;
        }
        let b = self.bucket_of(key);
        let mut link = &mut self.buckets[b];
        loop {
            match link {
                None => return None,
                Some(node) if &*node.key == key => {
                    let mut node = link.take()?;
                    *link = node.next.take();
                    self.len -= 1;
                    self.maybe_shrink();
                    return Some(node.value);
                }
                Some(node) => link = &mut node.next,
            }
        }
    }

    /// Removes every entry; returns them so the caller can drop them elsewhere (FLUSHALL ASYNC).
    pub fn take_all(&mut self) -> Table<V> {
        std::mem::take(self)
    }

    fn maybe_shrink(&mut self) {
        let n = self.buckets.len();
        if n > MIN_BUCKETS && self.len * 8 < n {
            let target = self.len.next_power_of_two().max(MIN_BUCKETS);
            self.resize(target);
        }
        if self.len == 0 {
            self.buckets = Vec::new();
        }
    }

    fn resize(&mut self, new_size: usize) {
        let old = std::mem::replace(&mut self.buckets, (0..new_size).map(|_| None).collect());
        let mask = new_size - 1;
        for mut head in old {
            while let Some(mut node) = head {
                head = node.next.take();
                let b = (hash_key(&node.key) as usize) & mask;
                node.next = self.buckets[b].take();
                self.buckets[b] = Some(node);
            }
        }
    }

    /// Visits one step of a SCAN: the bucket `cursor` designates, and returns the next cursor
    /// (0 when the iteration is complete).
    pub fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&[u8], &V)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut node = self.buckets[(cursor & mask) as usize].as_deref();
        while let Some(n) = node {
            visit(&n.key, &n.value);
            node = n.next.as_deref();
        }
        // Increment the reversed cursor: set the bits above the mask, reverse, add one, reverse.
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    /// Visits every entry (KEYS, FLUSH, DEBUG DIGEST).
    pub fn for_each(&self, mut visit: impl FnMut(&[u8], &V)) {
        for bucket in &self.buckets {
            let mut node = bucket.as_deref();
            while let Some(n) = node {
                visit(&n.key, &n.value);
                node = n.next.as_deref();
            }
        }
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut V) -> bool) {
        for bucket in &mut self.buckets {
            let mut chain = bucket.take();
            let mut kept: Option<Box<Node<V>>> = None;
            while let Some(mut node) = chain {
                chain = node.next.take();
                if keep(&node.key, &mut node.value) {
                    node.next = kept;
                    kept = Some(node);
                } else {
                    self.len -= 1;
                }
            }
            *bucket = kept;
        }
        self.maybe_shrink();
    }

    /// A uniformly chosen bucket's entries, or an empty slice of choices if the table is
    /// empty: picks buckets at random until one is non-empty, then a random entry of its chain.
    pub fn random_entry(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &V)> {
        if self.len == 0 {
            return None;
        }
        let mask = self.buckets.len() - 1;
        loop {
            let b = rng.random::<u64>() as usize & mask;
            let mut chain_len = 0;
            let mut node = self.buckets[b].as_deref();
            while let Some(n) = node {
                chain_len += 1;
                node = n.next.as_deref();
            }
            if chain_len == 0 {
                continue;
            }
            let pick = rng.random_range(0..chain_len);
            let mut node = self.buckets[b].as_deref();
            for _ in 0..pick {
                node = node.and_then(|n| n.next.as_deref());
            }
            return node.map(|n| (&*n.key, &n.value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashSet};

    #[test]
    fn insert_get_remove() {
        let mut t = Table::default();
        for i in 0..1000u32 {
            assert!(t.insert(&i.to_be_bytes(), i).is_none());
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.insert(&7u32.to_be_bytes(), 70), Some(7));
        assert_eq!(t.get(&7u32.to_be_bytes()), Some(&70));
        for i in 0..1000u32 {
            assert!(t.remove(&i.to_be_bytes()).is_some());
        }
        assert!(t.is_empty());
        assert_eq!(t.bucket_count(), 0);
    }

    fn full_scan(t: &Table<u32>) -> HashSet<Vec<u8>> {
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = t.scan_step(cursor, |k, _| {
                seen.insert(k.to_vec());
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
            t.insert(&i.to_le_bytes(), i);
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
                t.insert(format!("stable:{i}").as_bytes(), i);
            }
            let mut seen = BTreeSet::new();
            let mut cursor = 0u64;
            let mut churn = churn.into_iter();
            loop {
                cursor = t.scan_step(cursor, |k, _| { seen.insert(k.to_vec()); });
                if cursor == 0 { break; }
                for (n, add) in churn.by_ref().take(steps_between) {
                    let key = format!("churn:{n}");
                    if add { t.insert(key.as_bytes(), n); } else { t.remove(key.as_bytes()); }
                }
            }
            for i in 0..stable {
                prop_assert!(seen.contains(format!("stable:{i}").as_bytes()), "stable:{} missed", i);
            }
        }
    }
}
