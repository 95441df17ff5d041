//! The large encoding of a sorted set: a skiplist with rank spans, plus a member index.
//!
//! Elements are ordered by score, then by member bytes. Each forward link of a node records
//! its *span* (how many elements it jumps over), so the rank of an element and the element
//! at a rank are both found in O(log N) by adding spans on the way down (W. Pugh's skiplist
//! with the span extension Redis introduced).
//!
//! Nodes live in one arena (`Vec<Node>`) and link to each other by index, which keeps the
//! structure free of unsafe code and makes cloning a plain copy. The member index is a
//! chained hash table whose chains also run through the arena (`Node::chain`), so a member's
//! bytes are stored once. Chaining with a power-of-two bucket array is what lets ZSCAN keep
//! SCAN's guarantee (see `ferrokv_store::table`): the cursor walks buckets in reverse-binary
//! order.

use smallvec::SmallVec;
use std::cmp::Ordering;

use rand::Rng;

use crate::table::hash_key;

/// Index of no node.
const NIL: u32 = u32::MAX;
/// The header node, which holds no element.
const HEAD: u32 = 0;
pub const MAX_LEVEL: usize = 32;
const MIN_BUCKETS: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    /// Elements from this node (excluded) to `next` (included); for the last link of a
    /// level, to the end of the list.
    span: u32,
}

/// A node's forward links, one per level. Three nodes in four have one level and almost all
/// have at most two, so those are kept inside the node: a search step then reads the node it
/// is on, not also a separate allocation (measured: `link` was 55% of a large ZADD load).
type Links = SmallVec<[Link; 2]>;

#[derive(Debug, Clone)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    /// The previous node on level 0 (`NIL` for the first element).
    prev: u32,
    links: Links,
    /// The next node in this node's member-index bucket.
    chain: u32,
}

/// Orders (score, member) pairs as sorted sets do.
pub fn compare(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score
        .partial_cmp(&b_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a_member.cmp(b_member))
}

#[derive(Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    /// Arena slots of deleted nodes, reused first.
    free: Vec<u32>,
    tail: u32,
    /// Levels in use (at least 1).
    level: usize,
    len: usize,
    buckets: Vec<u32>,
    /// Bytes of all members, for MEMORY USAGE.
    member_bytes: usize,
}

impl Default for SkipList {
    fn default() -> Self {
        SkipList::new()
    }
}

impl std::fmt::Debug for SkipList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.iter_from(0)
                    .map(|(m, s)| (String::from_utf8_lossy(m), s)),
            )
            .finish()
    }
}

impl PartialEq for SkipList {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .iter_from(0)
                .zip(other.iter_from(0))
                .all(|((am, as_), (bm, bs))| am == bm && as_.to_bits() == bs.to_bits())
    }
}

impl SkipList {
    pub fn new() -> SkipList {
        let head = Node {
            member: Box::default(),
            score: 0.0,
            prev: NIL,
            links: SmallVec::from_elem(Link { next: NIL, span: 0 }, MAX_LEVEL),
            chain: NIL,
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            tail: NIL,
            level: 1,
            len: 0,
            buckets: vec![NIL; MIN_BUCKETS],
            member_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate heap bytes, for MEMORY USAGE.
    pub fn heap_size(&self) -> usize {
        let links: usize = self
            .nodes
            .iter()
            .filter(|n| n.links.spilled())
            .map(|n| n.links.capacity())
            .sum();
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + links * std::mem::size_of::<Link>()
            + self.buckets.capacity() * 4
            + self.free.capacity() * 4
            + self.member_bytes
    }

    fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    fn next(&self, index: u32, level: usize) -> u32 {
        self.nodes[index as usize].links[level].next
    }

    // ---- member index ----

    fn bucket_of(&self, member: &[u8]) -> usize {
        (hash_key(member) as usize) & (self.buckets.len() - 1)
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let mut at = self.buckets[self.bucket_of(member)];
        while at != NIL {
            let node = self.node(at);
            if &*node.member == member {
                return Some(at);
            }
            at = node.chain;
        }
        None
    }

    fn index_insert(&mut self, index: u32) {
        if self.len >= self.buckets.len() {
            self.rehash(self.buckets.len() * 2);
        }
        let bucket = self.bucket_of(&self.nodes[index as usize].member);
        self.nodes[index as usize].chain = self.buckets[bucket];
        self.buckets[bucket] = index;
    }

    fn index_remove(&mut self, index: u32) {
        let bucket = self.bucket_of(&self.nodes[index as usize].member);
        let after = self.nodes[index as usize].chain;
        if self.buckets[bucket] == index {
            self.buckets[bucket] = after;
        } else {
            let mut at = self.buckets[bucket];
            while at != NIL {
                let next = self.nodes[at as usize].chain;
                if next == index {
                    self.nodes[at as usize].chain = after;
                    break;
                }
                at = next;
            }
        }
        if self.buckets.len() > MIN_BUCKETS && self.len * 8 < self.buckets.len() {
            self.rehash(self.buckets.len() / 2);
        }
    }

    fn rehash(&mut self, size: usize) {
        let mut buckets = vec![NIL; size.max(MIN_BUCKETS)];
        let mask = buckets.len() - 1;
        for head in std::mem::take(&mut self.buckets) {
            let mut at = head;
            while at != NIL {
                let node = &mut self.nodes[at as usize];
                let next = node.chain;
                let bucket = (hash_key(&node.member) as usize) & mask;
                node.chain = buckets[bucket];
                buckets[bucket] = at;
                at = next;
            }
        }
        self.buckets = buckets;
    }

    /// One ZSCAN step: visits the members of one bucket and returns the next cursor (0 when
    /// the walk is over), in the reverse-binary order that survives resizes.
    pub fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&[u8], f64)) -> u64 {
        let mask = (self.buckets.len() - 1) as u64;
        let mut at = self.buckets[(cursor & mask) as usize];
        while at != NIL {
            let node = self.node(at);
            visit(&node.member, node.score);
            at = node.chain;
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits().wrapping_add(1);
        v.reverse_bits()
    }

    // ---- lookups ----

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|i| self.node(i).score)
    }

    /// The 0-based rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let target = self.find(member)?;
        let score = self.node(target).score;
        let mut rank = 0usize;
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let next = self.next(x, level);
                if next == NIL {
                    break;
                }
                let n = self.node(next);
                if compare(n.score, &n.member, score, member) == Ordering::Greater {
                    break;
                }
                rank += self.node(x).links[level].span as usize;
                x = next;
            }
            if x == target {
                return Some(rank - 1);
            }
        }
        None
    }

    /// How many leading elements satisfy `before`, which must hold for a prefix of the
    /// order and fail after it (as "score below the range's start" does).
    pub fn count_while(&self, mut before: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut rank = 0usize;
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let next = self.next(x, level);
                if next == NIL {
                    break;
                }
                let n = self.node(next);
                if !before(n.score, &n.member) {
                    break;
                }
                rank += self.node(x).links[level].span as usize;
                x = next;
            }
        }
        rank
    }

    /// The node at 0-based `rank`.
    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        let target = rank + 1;
        let mut traversed = 0usize;
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let next = self.next(x, level);
                let span = self.node(x).links[level].span as usize;
                if next == NIL || traversed + span > target {
                    break;
                }
                traversed += span;
                x = next;
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        let at = self.node_at(rank);
        (at != NIL).then(|| {
            let n = self.node(at);
            (&*n.member, n.score)
        })
    }

    /// Elements from 0-based `rank` towards the end.
    pub fn iter_from(&self, rank: usize) -> Iter<'_> {
        Iter {
            list: self,
            at: self.node_at(rank),
            forward: true,
        }
    }

    /// Elements from 0-based `rank` towards the start.
    pub fn iter_back_from(&self, rank: usize) -> Iter<'_> {
        Iter {
            list: self,
            at: self.node_at(rank),
            forward: false,
        }
    }

    // ---- changes ----

    fn random_level(rng: &mut impl Rng) -> usize {
        let mut level = 1;
        // Each level up with probability 1/4, as Valkey's skiplist.
        while level < MAX_LEVEL && rng.random::<u32>() & 3 == 0 {
            level += 1;
        }
        level
    }

    /// Sets `member`'s score, adding it if absent. Returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let Some(at) = self.find(member) {
            let old = self.node(at).score;
            if old.to_bits() != score.to_bits() {
                self.unlink(at, old, member);
                self.link(at, score, self.len - 1);
            }
            return Some(old);
        }
        let at = self.alloc(member, score);
        self.link(at, score, self.len);
        self.len += 1;
        self.member_bytes += member.len();
        self.index_insert(at);
        None
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let at = self.find(member)?;
        let score = self.node(at).score;
        self.unlink(at, score, member);
        self.len -= 1;
        self.member_bytes -= member.len();
        self.index_remove(at);
        self.release(at);
        Some(score)
    }

    fn alloc(&mut self, member: &[u8], score: f64) -> u32 {
        let node = Node {
            member: member.into(),
            score,
            prev: NIL,
            links: Links::new(),
            chain: NIL,
        };
        match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, at: u32) {
        let node = &mut self.nodes[at as usize];
        node.member = Box::default();
        node.links = Links::new();
        if at as usize == self.nodes.len() - 1 {
            self.nodes.pop();
        } else {
            self.free.push(at);
        }
        if self.len == 0 {
            self.nodes.truncate(1);
            self.free.clear();
        }
    }

    /// Links the allocated node `at` into the levels at its place for `score`; `linked` is
    /// the number of elements linked before it.
    fn link(&mut self, at: u32, score: f64, linked: usize) {
        let member = std::mem::take(&mut self.nodes[at as usize].member);
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            rank[level] = if level == self.level - 1 {
                0
            } else {
                rank[level + 1]
            };
            loop {
                let next = self.next(x, level);
                if next == NIL {
                    break;
                }
                let n = self.node(next);
                if compare(n.score, &n.member, score, &member) != Ordering::Less {
                    break;
                }
                rank[level] += self.node(x).links[level].span as usize;
                x = next;
            }
            update[level] = x;
        }
        let height = Self::random_level(&mut rand::rng());
        if height > self.level {
            for level in self.level..height {
                rank[level] = 0;
                update[level] = HEAD;
                self.nodes[HEAD as usize].links[level].span = linked as u32;
            }
            self.level = height;
        }
        let mut links = Links::with_capacity(height);
        for level in 0..height {
            let before = update[level] as usize;
            let passed = (rank[0] - rank[level]) as u32;
            let link = self.nodes[before].links[level];
            links.push(Link {
                next: link.next,
                span: link.span - passed,
            });
            self.nodes[before].links[level] = Link {
                next: at,
                span: passed + 1,
            };
        }
        for (level, &before) in update.iter().enumerate().take(self.level).skip(height) {
            self.nodes[before as usize].links[level].span += 1;
        }
        let prev = if update[0] == HEAD { NIL } else { update[0] };
        let next = links[0].next;
        let node = &mut self.nodes[at as usize];
        node.member = member;
        node.score = score;
        node.prev = prev;
        node.links = links;
        if next == NIL {
            self.tail = at;
        } else {
            self.nodes[next as usize].prev = at;
        }
    }

    /// Elements reachable by summing spans (a consistency check for tests).
    #[cfg(test)]
    fn linked_len(&self) -> usize {
        let mut count = 0usize;
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let next = self.next(x, level);
                if next == NIL {
                    break;
                }
                count += self.node(x).links[level].span as usize;
                x = next;
            }
        }
        count
    }

    /// Unlinks node `at` (holding `score` and `member`) from every level.
    fn unlink(&mut self, at: u32, score: f64, member: &[u8]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let next = self.next(x, level);
                if next == NIL || next == at {
                    break;
                }
                let n = self.node(next);
                if compare(n.score, &n.member, score, member) != Ordering::Less {
                    break;
                }
                x = next;
            }
            update[level] = x;
        }
        let height = self.node(at).links.len();
        for (level, &before) in update.iter().enumerate().take(self.level) {
            let before = before as usize;
            if level < height && self.nodes[before].links[level].next == at {
                let removed = self.node(at).links[level];
                let link = &mut self.nodes[before].links[level];
                link.span = link.span + removed.span - 1;
                link.next = removed.next;
            } else {
                let link = &mut self.nodes[before].links[level];
                link.span = link.span.saturating_sub(1);
            }
        }
        let (prev, next) = (self.node(at).prev, self.node(at).links[0].next);
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == NIL {
            self.nodes[HEAD as usize].links[self.level - 1].span = 0;
            self.level -= 1;
        }
    }

    /// The first (`last` false) or last element, removed.
    pub fn pop(&mut self, last: bool) -> Option<(Box<[u8]>, f64)> {
        let at = if last { self.tail } else { self.next(HEAD, 0) };
        if at == NIL {
            return None;
        }
        let member = self.node(at).member.clone();
        let score = self.remove(&member)?;
        Some((member, score))
    }
}

/// Walks the list one way from a starting node.
pub struct Iter<'a> {
    list: &'a SkipList,
    at: u32,
    forward: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == NIL {
            return None;
        }
        let node = self.list.node(self.at);
        self.at = if self.forward {
            node.links[0].next
        } else {
            node.prev
        };
        Some((&node.member, node.score))
    }
}

#[cfg(test)]
mod tests {
    //! The skiplist against a sorted `Vec` model.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, i8),
        Remove(u16),
        Pop(bool),
    }

    fn member(m: u16) -> Vec<u8> {
        format!("m{m}").into_bytes()
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..300, any::<i8>()).prop_map(|(m, s)| Op::Insert(m, s)),
            2 => (0u16..300).prop_map(Op::Remove),
            1 => any::<bool>().prop_map(Op::Pop),
        ]
    }

    fn sort(model: &mut [(Vec<u8>, f64)]) {
        model.sort_by(|a, b| compare(a.1, &a.0, b.1, &b.0));
    }

    fn check(list: &SkipList, model: &[(Vec<u8>, f64)]) -> Result<(), TestCaseError> {
        prop_assert_eq!(list.len(), model.len());
        let forward: Vec<_> = list.iter_from(0).map(|(m, s)| (m.to_vec(), s)).collect();
        prop_assert_eq!(&forward, &model.to_vec());
        if !model.is_empty() {
            let mut backward: Vec<_> = list
                .iter_back_from(model.len() - 1)
                .map(|(m, s)| (m.to_vec(), s))
                .collect();
            backward.reverse();
            prop_assert_eq!(&backward, &model.to_vec());
        }
        for (rank, (m, s)) in model.iter().enumerate() {
            prop_assert_eq!(list.rank(m), Some(rank));
            prop_assert_eq!(list.score(m), Some(*s));
            prop_assert_eq!(list.get_by_rank(rank), Some((&m[..], *s)));
        }
        prop_assert_eq!(list.get_by_rank(model.len()), None);
        prop_assert_eq!(list.linked_len(), model.len());
        // Range bounds by score, both inclusive and exclusive.
        for bound in [-129.0, -5.0, 0.0, 3.0, 128.0] {
            let below = model.iter().filter(|(_, s)| *s < bound).count();
            prop_assert_eq!(list.count_while(|s, _| s < bound), below);
            let at_most = model.iter().filter(|(_, s)| *s <= bound).count();
            prop_assert_eq!(list.count_while(|s, _| s <= bound), at_most);
        }
        // A full scan sees every member exactly once (no resize happens during it).
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = list.scan_step(cursor, |m, s| seen.push((m.to_vec(), s)));
            if cursor == 0 {
                break;
            }
        }
        sort(&mut seen);
        prop_assert_eq!(&seen, &model.to_vec());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn behaves_like_a_sorted_vec(ops in proptest::collection::vec(op(), 1..400)) {
            let mut list = SkipList::new();
            let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(m, s) => {
                        let m = member(m);
                        let s = f64::from(s);
                        let old = model.iter().position(|(x, _)| *x == m).map(|i| model.remove(i).1);
                        model.push((m.clone(), s));
                        sort(&mut model);
                        prop_assert_eq!(list.insert(&m, s), old);
                    }
                    Op::Remove(m) => {
                        let m = member(m);
                        let old = model.iter().position(|(x, _)| *x == m).map(|i| model.remove(i).1);
                        prop_assert_eq!(list.remove(&m), old);
                    }
                    Op::Pop(last) => {
                        let expected = if model.is_empty() {
                            None
                        } else if last {
                            model.pop()
                        } else {
                            Some(model.remove(0))
                        };
                        let got = list.pop(last).map(|(m, s)| (m.to_vec(), s));
                        prop_assert_eq!(got, expected);
                    }
                }
                if step % 16 == 0 {
                    check(&list, &model)?;
                }
            }
            check(&list, &model)?;
        }
    }

    #[test]
    fn ranks_are_logarithmic_in_a_large_list() {
        let mut list = SkipList::new();
        for i in 0..20_000u32 {
            list.insert(format!("{i:06}").as_bytes(), f64::from(i % 100));
        }
        assert_eq!(list.len(), 20_000);
        // Score 0 has members 000000, 000100, ... so rank of 000100 is 1.
        assert_eq!(list.rank(b"000100"), Some(1));
        assert_eq!(
            list.get_by_rank(200).map(|(m, _)| m.to_vec()),
            Some(b"000001".to_vec())
        );
        assert!(list.level > 4 && list.level <= MAX_LEVEL);
        for i in 0..20_000u32 {
            assert!(list.remove(format!("{i:06}").as_bytes()).is_some());
        }
        assert!(list.is_empty());
        assert_eq!(list.level, 1);
        assert_eq!(list.nodes.len(), 1);
    }

    #[test]
    fn scan_survives_growth_between_calls() {
        let mut list = SkipList::new();
        for i in 0..50 {
            list.insert(format!("k{i}").as_bytes(), 0.0);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = list.scan_step(cursor, |m, _| {
                seen.insert(m.to_vec());
            });
            // Grow the table under the cursor during the first steps.
            if steps < 4 {
                for i in 0..40 {
                    list.insert(format!("x{steps}-{i}").as_bytes(), 1.0);
                }
            }
            steps += 1;
            assert!(steps < 10_000);
            if cursor == 0 {
                break;
            }
        }
        for i in 0..50 {
            assert!(seen.contains(format!("k{i}").as_bytes()));
        }
    }
}
