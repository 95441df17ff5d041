//! The `hashtable` encoding of a set: a chained hash set of byte strings.
//!
//! Chained, with a power-of-two bucket array, for the same reason as the keyspace's table:
//! SSCAN walks buckets in reverse-binary order, which returns every member present for the
//! whole iteration even if the table grows or shrinks between calls.
//!
//! Random members (SRANDMEMBER, SPOP) are drawn fairly by rejection: pick a bucket and a slot
//! below the longest chain ever seen since the last resize, retry if the slot is empty. Every
//! member then has the same chance, unlike "pick a non-empty bucket, then a member of it".

use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::FixedState;
use rand::Rng;

const MIN_BUCKETS: usize = 4;

fn hash_member(member: &[u8]) -> u64 {
    static STATE: OnceLock<FixedState> = OnceLock::new();
    STATE
        .get_or_init(|| FixedState::with_seed(rand::random()))
        .hash_one(member)
}

#[derive(Debug, Clone, Default)]
pub struct MemberTable {
    buckets: Vec<Vec<Box<[u8]>>>,
    len: usize,
    /// An upper bound of the longest chain, for fair random draws.
    longest_chain: usize,
}

impl PartialEq for MemberTable {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|m| other.contains(m))
    }
}

impl MemberTable {
    pub fn with_capacity(capacity: usize) -> MemberTable {
        let mut table = MemberTable::default();
        table.resize(capacity.max(MIN_BUCKETS).next_power_of_two());
        table
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn heap_size(&self) -> usize {
        let buckets = self.buckets.capacity() * std::mem::size_of::<Vec<Box<[u8]>>>();
        let chains: usize = self
            .buckets
            .iter()
            .map(|b| b.capacity() * std::mem::size_of::<Box<[u8]>>())
            .sum();
        let members: usize = self.iter().map(<[u8]>::len).sum();
        buckets + chains + members
    }

    fn bucket_of(&self, member: &[u8]) -> usize {
        (hash_member(member) as usize) & (self.buckets.len() - 1)
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        if self.len == 0 {
            return false;
        }
        self.buckets[self.bucket_of(member)]
            .iter()
            .any(|m| &**m == member)
    }

    /// Adds `member`; returns false if it was already present.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if self.buckets.is_empty() {
            self.resize(MIN_BUCKETS);
        }
        if self.contains(member) {
            return false;
        }
        if self.len >= self.buckets.len() {
            self.resize(self.buckets.len() * 2);
        }
        let b = self.bucket_of(member);
        let chain = &mut self.buckets[b];
        chain.push(member.into());
        self.longest_chain = self.longest_chain.max(chain.len());
        self.len += 1;
        true
    }

    /// Removes `member`; returns false if it was absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        if self.len == 0 {
            return false;
        }
        let b = self.bucket_of(member);
        let chain = &mut self.buckets[b];
        let Some(at) = chain.iter().position(|m| &**m == member) else {
            return false;
        };
        chain.swap_remove(at);
        self.len -= 1;
        self.maybe_shrink();
        true
    }

    fn maybe_shrink(&mut self) {
        if self.buckets.len() > MIN_BUCKETS && self.len * 8 < self.buckets.len() {
            let target = (self.len.max(1) * 2).next_power_of_two().max(MIN_BUCKETS);
            self.resize(target);
        }
    }

    fn resize(&mut self, buckets: usize) {
        let old = std::mem::take(&mut self.buckets);
        self.buckets = (0..buckets).map(|_| Vec::new()).collect();
        self.longest_chain = 0;
        for member in old.into_iter().flatten() {
            let b = self.bucket_of(&member);
            let chain = &mut self.buckets[b];
            chain.push(member);
            self.longest_chain = self.longest_chain.max(chain.len());
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.buckets.iter().flatten().map(|m| &**m)
    }

    /// Visits the members of the bucket `cursor` points at and returns the next cursor
    /// (0 when the walk is complete).
    pub fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&[u8])) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        for member in &self.buckets[(cursor & mask) as usize] {
            visit(member);
        }
        // Add one to the cursor's bits reversed, the bits above the mask set so the carry
        // leaves the mask's range when the walk wraps.
        (cursor | !mask)
            .reverse_bits()
            .wrapping_add(1)
            .reverse_bits()
    }

    /// The bucket and slot of a member drawn uniformly at random.
    fn random_slot(&self, rng: &mut impl Rng) -> Option<(usize, usize)> {
        if self.len == 0 {
            return None;
        }
        let slots = self.longest_chain.max(1);
        loop {
            let b = rng.random_range(0..self.buckets.len());
            let s = rng.random_range(0..slots);
            if s < self.buckets[b].len() {
                return Some((b, s));
            }
        }
    }

    pub fn random(&self, rng: &mut impl Rng) -> Option<&[u8]> {
        let (b, s) = self.random_slot(rng)?;
        Some(&self.buckets[b][s])
    }

    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Box<[u8]>> {
        let (b, s) = self.random_slot(rng)?;
        let member = self.buckets[b].swap_remove(s);
        self.len -= 1;
        self.maybe_shrink();
        Some(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    fn key(i: usize) -> Vec<u8> {
        format!("m{i}").into_bytes()
    }

    #[test]
    fn insert_remove_contains() {
        let mut t = MemberTable::default();
        for i in 0..1000 {
            assert!(t.insert(&key(i)));
            assert!(!t.insert(&key(i)));
        }
        assert_eq!(t.len(), 1000);
        for i in (0..1000).step_by(2) {
            assert!(t.remove(&key(i)));
            assert!(!t.remove(&key(i)));
        }
        assert_eq!(t.len(), 500);
        assert!(t.contains(&key(1)) && !t.contains(&key(0)));
        for i in (1..1000).step_by(2) {
            assert!(t.remove(&key(i)));
        }
        assert!(t.is_empty());
        assert!(t.buckets.len() <= 16, "shrinks when emptied");
    }

    #[test]
    fn scan_returns_members_present_throughout_despite_resizes() {
        let mut t = MemberTable::default();
        for i in 0..300 {
            t.insert(&key(i));
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = t.scan_step(cursor, |m| {
                seen.insert(m.to_vec());
            });
            step += 1;
            // Grow, then shrink, the table while the scan is under way.
            if step == 20 {
                for i in 300..3000 {
                    t.insert(&key(i));
                }
            }
            if step == 200 {
                for i in 300..3000 {
                    t.remove(&key(i));
                }
                for i in 200..300 {
                    t.remove(&key(i));
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..200 {
            assert!(seen.contains(&key(i)), "member {i} missed");
        }
    }

    #[test]
    fn random_draws_are_uniform() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut t = MemberTable::default();
        let n = 50;
        for i in 0..n {
            t.insert(&key(i));
        }
        let draws = 100_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..draws {
            *counts
                .entry(t.random(&mut rng).unwrap().to_vec())
                .or_insert(0) += 1;
        }
        assert_eq!(counts.len(), n);
        let expected = draws / n;
        for (m, c) in counts {
            // 2000 expected per member, sd about 44: a 20% band is over 9 sd.
            assert!(
                c > expected * 8 / 10 && c < expected * 12 / 10,
                "{} drawn {c} times",
                String::from_utf8_lossy(&m)
            );
        }
    }
}
