//! The `hashtable` encoding of a set: a [`BucketTable`] whose entries are the members
//! themselves (64-byte buckets with hash tags, one allocation per member, incremental
//! rehash; see `types/bucket_table.rs` for the layout and the SCAN and random-draw
//! arguments).

use rand::Rng;

use crate::types::bucket_table::{BucketTable, Entry, WholeEntry};

/// A set of byte strings. 40 bytes, as small as the plain chained table it replaced, so a
/// set value does not make every value larger.
#[derive(Clone, Default)]
pub struct MemberTable {
    members: BucketTable<WholeEntry>,
}

impl PartialEq for MemberTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
    }
}

impl std::fmt::Debug for MemberTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|m| m.escape_ascii().to_string()))
            .finish()
    }
}

impl MemberTable {
    /// A table that takes `capacity` members without resizing.
    pub fn with_capacity(capacity: usize) -> MemberTable {
        MemberTable {
            members: BucketTable::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Bytes allocated: both bucket arrays, child buckets, members (as requested from the
    /// allocator, which rounds them up to its size classes). Reads every member's length.
    pub fn heap_size(&self) -> usize {
        self.members.heap_size()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.find(member).is_some()
    }

    /// Adds `member`; returns false if it was already present.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        match self.members.locate(member) {
            Ok(_) => false,
            Err(vacancy) => {
                self.members.insert(vacancy, Entry::new(member));
                true
            }
        }
    }

    /// Removes `member`; returns false if it was absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        if self.is_empty() {
            return false;
        }
        match self.members.locate(member) {
            Ok(location) => self.members.remove(location).is_some(),
            Err(_) => false,
        }
    }

    /// Every member once, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.members.iter().map(Entry::bytes)
    }

    /// Visits the members of the buckets `cursor` points at and returns the next cursor
    /// (0 when the walk is complete).
    pub fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&[u8])) -> u64 {
        self.members.scan_step(cursor, |m| visit(m.bytes()))
    }

    /// A member drawn uniformly at random.
    pub fn random(&self, rng: &mut impl Rng) -> Option<&[u8]> {
        let location = self.members.random(rng)?;
        self.members.entry(location).map(Entry::bytes)
    }

    /// Removes and returns a member drawn uniformly at random.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Box<[u8]>> {
        if self.is_empty() {
            return None;
        }
        self.members.rehash_step();
        let location = self.members.random(rng)?;
        let member = self.members.remove(location)?;
        Some(member.bytes().into())
    }

    /// Checks every structural invariant (tests only; reads the whole table).
    #[cfg(test)]
    fn check(&self) {
        self.members.check();
    }

    /// Whether a rehash is under way, and whether it grows the table.
    #[cfg(test)]
    fn rehashing(&self) -> Option<bool> {
        self.members.rehashing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashSet;

    fn key(i: usize) -> Vec<u8> {
        format!("m{i}").into_bytes()
    }

    fn members(t: &MemberTable) -> HashSet<Vec<u8>> {
        let all: Vec<Vec<u8>> = t.iter().map(<[u8]>::to_vec).collect();
        let set: HashSet<Vec<u8>> = all.iter().cloned().collect();
        assert_eq!(set.len(), all.len(), "iter returned a member twice");
        set
    }

    #[test]
    fn insert_remove_contains() {
        let mut t = MemberTable::default();
        for i in 0..1000 {
            assert!(t.insert(&key(i)));
            assert!(!t.insert(&key(i)));
        }
        assert_eq!(t.len(), 1000);
        t.check();
        for i in (0..1000).step_by(2) {
            assert!(t.remove(&key(i)));
            assert!(!t.remove(&key(i)));
        }
        assert_eq!(t.len(), 500);
        assert!(t.contains(&key(1)) && !t.contains(&key(0)));
        t.check();
        for i in (1..1000).step_by(2) {
            assert!(t.remove(&key(i)));
        }
        assert!(t.is_empty());
        assert_eq!(t.heap_size(), 0, "an empty table frees its buckets");
        assert!(!t.contains(b"m1") && !t.remove(b"m1"));
        assert!(t.insert(b"again") && t.contains(b"again"));
    }

    #[test]
    fn pop_random_removes_what_it_returns_until_empty() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut t = MemberTable::default();
        for i in 0..700 {
            t.insert(&key(i));
        }
        let mut popped = HashSet::new();
        while let Some(m) = t.pop_random(&mut rng) {
            assert!(!t.contains(&m));
            assert!(popped.insert(m.into_vec()), "popped twice");
            if popped.len() % 50 == 0 {
                t.check();
            }
        }
        assert_eq!(popped, (0..700).map(key).collect());
        assert!(t.random(&mut rng).is_none() && t.pop_random(&mut rng).is_none());
    }

    #[test]
    fn empty_and_long_members() {
        let long: Vec<Vec<u8>> = [0usize, 1, 127, 128, 255, 256, 10_000, 100_000]
            .iter()
            .map(|&len| (0..len).map(|i| (i % 251) as u8).collect())
            .collect();
        let mut t = MemberTable::default();
        for m in &long {
            assert!(t.insert(m));
        }
        for i in 0..300 {
            t.insert(&key(i));
        }
        for m in &long {
            assert!(t.contains(m) && !t.insert(m));
        }
        assert!(!t.contains(&vec![0u8; 10_000]), "same length, other bytes");
        let bytes: usize = long.iter().map(Vec::len).sum();
        assert!(t.heap_size() > bytes);
        t.check();
        let copy = t.clone();
        assert_eq!(copy, t);
        assert!(t.remove(b""));
        assert!(!t.contains(b"") && copy.contains(b""));
        assert_ne!(copy, t);
        let mut rng = StdRng::seed_from_u64(2);
        let mut popped = HashSet::new();
        while let Some(m) = t.pop_random(&mut rng) {
            popped.insert(m.into_vec());
        }
        assert!(long[1..].iter().all(|m| popped.contains(m)));
        assert_eq!(members(&copy).len(), 308);
    }

    #[test]
    fn stays_as_small_as_a_plain_chained_table() {
        // A set value lives in every value's enum: a larger table makes every value larger.
        assert_eq!(std::mem::size_of::<MemberTable>(), 40);
        assert!(std::mem::size_of::<crate::Value>() <= 56);
    }

    /// One phase of the model test: mostly inserts (growing) or mostly removes and pops.
    #[derive(Debug, Clone)]
    struct Phase {
        growing: bool,
        ops: usize,
    }

    fn phase() -> impl Strategy<Value = Phase> {
        (any::<bool>(), 1usize..600).prop_map(|(growing, ops)| Phase { growing, ops })
    }

    /// What a model run went through.
    #[derive(Debug, Default)]
    struct Coverage {
        ops_mid_grow: usize,
        ops_mid_shrink: usize,
        largest: usize,
    }

    /// Applies random inserts, removes and pops to a table and to a `HashSet`, checking
    /// after each that they agree on len, contains and iter.
    fn run_model(capacity: usize, phases: &[Phase], seed: u64) -> Result<Coverage, TestCaseError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut t = MemberTable::with_capacity(capacity);
        let mut model: HashSet<Vec<u8>> = HashSet::new();
        let mut coverage = Coverage::default();
        for phase in phases {
            // Shares of inserts and removes in percent; pops take the rest.
            let (inserts, removes) = if phase.growing { (80, 12) } else { (15, 45) };
            for _ in 0..phase.ops {
                match t.rehashing() {
                    Some(true) => coverage.ops_mid_grow += 1,
                    Some(false) => coverage.ops_mid_shrink += 1,
                    None => {}
                }
                let member = key(rng.random_range(0..1500));
                let roll = rng.random_range(0..100);
                if roll < inserts {
                    prop_assert_eq!(t.insert(&member), model.insert(member.clone()));
                } else if roll < inserts + removes {
                    prop_assert_eq!(t.remove(&member), model.remove(&member));
                } else {
                    match t.pop_random(&mut rng) {
                        Some(popped) => prop_assert!(model.remove(&*popped)),
                        None => prop_assert!(model.is_empty()),
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert_eq!(t.contains(&member), model.contains(&member));
                if let Some(drawn) = t.random(&mut rng) {
                    prop_assert!(model.contains(drawn));
                }
                prop_assert_eq!(&members(&t), &model);
                coverage.largest = coverage.largest.max(t.len());
            }
            t.check();
            prop_assert!(t.clone() == t);
        }
        Ok(coverage)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The table behaves as a `HashSet` through random inserts, removes and pops.
        #[test]
        fn behaves_like_a_hash_set(
            capacity in prop_oneof![Just(0usize), 0usize..1500],
            phases in proptest::collection::vec(phase(), 1..7),
            seed in any::<u64>(),
        ) {
            run_model(capacity, &phases, seed)?;
        }
    }

    /// The model run through sizes that cross several grow and shrink thresholds, so that
    /// many operations happen mid-rehash.
    #[test]
    fn behaves_like_a_hash_set_across_resizes() {
        let phases = [(true, 1500), (false, 2500), (true, 900), (false, 3000)]
            .map(|(growing, ops)| Phase { growing, ops });
        let coverage = run_model(0, &phases, 9).unwrap_or_else(|e| panic!("{e}"));
        // Past 5.5 × 64 members: seven grows from one bucket, then shrinks back.
        assert!(coverage.largest > 500, "{coverage:?}");
        assert!(
            coverage.ops_mid_grow > 60 && coverage.ops_mid_shrink > 60,
            "{coverage:?}"
        );
    }
}
