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

mod member;
mod upper;

use std::cmp::Ordering;

use rand::Rng;

use crate::table::hash_key;
use member::Member;
use upper::UpperLinks;

/// Index of no node.
const NIL: u32 = u32::MAX;
/// The header node, which holds no element.
const HEAD: u32 = 0;
pub const MAX_LEVEL: usize = 32;
const MIN_BUCKETS: usize = 4;
/// Levels whose links sit in the node itself; three nodes in four have one level and fifteen
/// in sixteen at most two.
const LOW_LEVELS: usize = 2;
/// The header's links above `LOW_LEVELS`, first in `SkipList::upper`.
const HEAD_UPPER: usize = MAX_LEVEL - LOW_LEVELS;

#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    /// Elements from this node (excluded) to `next` (included); for the last link of a
    /// level, to the end of the list.
    span: u32,
}

const UNLINKED: Link = Link { next: NIL, span: 0 };

/// One element, in one cache line: a search step reads the next node's score and (on a tie)
/// member, then follows one of its links, and for all but the tallest nodes all of that sits
/// in these 64 bytes (measured: the search loop of `link` was 50-65% of a large ZADD load
/// while members were boxed, each step then missing twice).
#[derive(Debug, Clone)]
#[repr(align(64))]
struct Node {
    score: f64,
    /// The forward links of levels 0 and 1 (level 1 unused below height 2).
    low: [Link; LOW_LEVELS],
    /// The previous node on level 0 (`NIL` for the first element).
    prev: u32,
    /// The next node in this node's member-index bucket.
    chain: u32,
    /// Where this node's links of levels `LOW_LEVELS..height` start in `SkipList::upper`.
    upper: u32,
    height: u8,
    member: Member,
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
    upper: UpperLinks,
    tail: u32,
    /// Levels in use (at least 1).
    level: usize,
    len: usize,
    buckets: Vec<u32>,
    /// Bytes of the members too long to sit in their node, for MEMORY USAGE.
    boxed_member_bytes: usize,
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
        let mut upper = UpperLinks::default();
        let head_upper = upper.alloc(HEAD_UPPER, UNLINKED);
        let head = Node {
            score: 0.0,
            low: [UNLINKED; LOW_LEVELS],
            prev: NIL,
            chain: NIL,
            upper: head_upper,
            height: MAX_LEVEL as u8,
            member: Member::default(),
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            upper,
            tail: NIL,
            level: 1,
            len: 0,
            buckets: vec![NIL; MIN_BUCKETS],
            boxed_member_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate heap bytes, for MEMORY USAGE: the node arena and its free slots, the
    /// upper links, the member index and the members stored outside their node.
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.free.capacity() * 4
            + self.upper.heap_size()
            + self.buckets.capacity() * 4
            + self.boxed_member_bytes
    }

    fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    fn member(&self, index: u32) -> &[u8] {
        self.nodes[index as usize].member.as_bytes()
    }

    /// Node `at`'s forward link on `level` (below its height).
    fn forward(&self, at: u32, level: usize) -> Link {
        let node = &self.nodes[at as usize];
        match node.low.get(level) {
            Some(link) => *link,
            None => self.upper.get(node.upper as usize + level - LOW_LEVELS),
        }
    }

    fn forward_mut(&mut self, at: u32, level: usize) -> &mut Link {
        let node = &mut self.nodes[at as usize];
        if level < LOW_LEVELS {
            return &mut node.low[level];
        }
        let upper_at = node.upper as usize + level - LOW_LEVELS;
        self.upper.get_mut(upper_at)
    }

    /// Starts loading node `at` (if any) without waiting for it. The search calls it on the
    /// node it would compare one level down if the step it is taking overshoots, so that the
    /// cache miss overlaps the current one instead of following it (safe stand-in for a
    /// prefetch: the read's value is unused, so nothing waits on it; measured 15-30% off
    /// `link` on 200k random-score inserts).
    fn touch(&self, at: u32) {
        if let Some(node) = self.nodes.get(at as usize) {
            std::hint::black_box(node.score);
        }
    }

    fn next(&self, index: u32, level: usize) -> u32 {
        self.forward(index, level).next
    }

    // ---- member index ----

    fn bucket_of(&self, member: &[u8]) -> usize {
        (hash_key(member) as usize) & (self.buckets.len() - 1)
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let mut at = self.buckets[self.bucket_of(member)];
        while at != NIL {
            let node = self.node(at);
            if node.member.as_bytes() == member {
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
        let bucket = self.bucket_of(self.member(index));
        self.nodes[index as usize].chain = self.buckets[bucket];
        self.buckets[bucket] = index;
    }

    fn index_remove(&mut self, index: u32) {
        let bucket = self.bucket_of(self.member(index));
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
                let bucket = (hash_key(node.member.as_bytes()) as usize) & mask;
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
            visit(node.member.as_bytes(), node.score);
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
                let link = self.forward(x, level);
                if link.next == NIL {
                    break;
                }
                let n = self.node(link.next);
                if compare(n.score, n.member.as_bytes(), score, member) == Ordering::Greater {
                    break;
                }
                rank += link.span as usize;
                x = link.next;
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
                let link = self.forward(x, level);
                if link.next == NIL {
                    break;
                }
                let n = self.node(link.next);
                if !before(n.score, n.member.as_bytes()) {
                    break;
                }
                rank += link.span as usize;
                x = link.next;
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
                let link = self.forward(x, level);
                let span = link.span as usize;
                if link.next == NIL || traversed + span > target {
                    break;
                }
                traversed += span;
                x = link.next;
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
            (n.member.as_bytes(), n.score)
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
                self.link(at, score, member, self.len - 1);
            }
            return Some(old);
        }
        let at = self.alloc(member);
        self.link(at, score, member, self.len);
        self.len += 1;
        self.boxed_member_bytes += self.node(at).member.heap_size();
        self.index_insert(at);
        None
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let at = self.find(member)?;
        let score = self.node(at).score;
        self.unlink(at, score, member);
        self.len -= 1;
        self.boxed_member_bytes -= self.node(at).member.heap_size();
        self.index_remove(at);
        self.release(at);
        Some(score)
    }

    /// A node for `member` with a random height, not linked yet. A node keeps its height
    /// for its life (a score change relinks it as it is).
    fn alloc(&mut self, member: &[u8]) -> u32 {
        let height = Self::random_level(&mut rand::rng());
        let upper = if height > LOW_LEVELS {
            self.upper.alloc(height - LOW_LEVELS, UNLINKED)
        } else {
            NIL
        };
        let node = Node {
            score: 0.0,
            low: [UNLINKED; LOW_LEVELS],
            prev: NIL,
            chain: NIL,
            upper,
            // At most MAX_LEVEL (32).
            height: height as u8,
            member: Member::new(member),
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
        node.member = Member::default();
        let height = usize::from(node.height);
        if height > LOW_LEVELS {
            self.upper.release(node.upper, height - LOW_LEVELS);
        }
        if at as usize == self.nodes.len() - 1 {
            self.nodes.pop();
        } else {
            self.free.push(at);
        }
        if self.len == 0 {
            self.nodes.truncate(1);
            self.free.clear();
            self.upper.truncate(HEAD_UPPER);
        }
    }

    /// Links the allocated node `at`, holding `member`, into its levels at its place for
    /// `score`; `linked` is the number of elements linked before it.
    fn link(&mut self, at: u32, score: f64, member: &[u8], linked: usize) {
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
                let link = self.forward(x, level);
                if link.next == NIL {
                    break;
                }
                if level > 0 {
                    self.touch(self.forward(x, level - 1).next);
                }
                let n = self.node(link.next);
                if compare(n.score, n.member.as_bytes(), score, member) != Ordering::Less {
                    break;
                }
                rank[level] += link.span as usize;
                x = link.next;
            }
            update[level] = x;
        }
        let height = usize::from(self.node(at).height);
        if height > self.level {
            for level in self.level..height {
                rank[level] = 0;
                update[level] = HEAD;
                self.forward_mut(HEAD, level).span = linked as u32;
            }
            self.level = height;
        }
        for level in 0..height {
            let passed = (rank[0] - rank[level]) as u32;
            let before = self.forward(update[level], level);
            *self.forward_mut(at, level) = Link {
                next: before.next,
                span: before.span - passed,
            };
            *self.forward_mut(update[level], level) = Link {
                next: at,
                span: passed + 1,
            };
        }
        for (level, &before) in update.iter().enumerate().take(self.level).skip(height) {
            self.forward_mut(before, level).span += 1;
        }
        let prev = if update[0] == HEAD { NIL } else { update[0] };
        let next = self.next(at, 0);
        let node = &mut self.nodes[at as usize];
        node.score = score;
        node.prev = prev;
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
                let link = self.forward(x, level);
                if link.next == NIL {
                    break;
                }
                count += link.span as usize;
                x = link.next;
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
                if compare(n.score, n.member.as_bytes(), score, member) != Ordering::Less {
                    break;
                }
                x = next;
            }
            update[level] = x;
        }
        let height = usize::from(self.node(at).height);
        for (level, &before) in update.iter().enumerate().take(self.level) {
            let link = self.forward(before, level);
            if level < height && link.next == at {
                let removed = self.forward(at, level);
                *self.forward_mut(before, level) = Link {
                    next: removed.next,
                    span: link.span + removed.span - 1,
                };
            } else {
                self.forward_mut(before, level).span = link.span.saturating_sub(1);
            }
        }
        let (prev, next) = (self.node(at).prev, self.next(at, 0));
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == NIL {
            self.forward_mut(HEAD, self.level - 1).span = 0;
            self.level -= 1;
        }
    }

    /// The first (`last` false) or last element, removed.
    pub fn pop(&mut self, last: bool) -> Option<(Box<[u8]>, f64)> {
        let at = if last { self.tail } else { self.next(HEAD, 0) };
        if at == NIL {
            return None;
        }
        let member: Box<[u8]> = self.member(at).into();
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
            node.low[0].next
        } else {
            node.prev
        };
        Some((node.member.as_bytes(), node.score))
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

    /// Every fifth member is too long to sit in its node.
    fn member(m: u16) -> Vec<u8> {
        if m.is_multiple_of(5) {
            format!("m{m}-{}", "x".repeat(member::INLINE_CAPACITY)).into_bytes()
        } else {
            format!("m{m}").into_bytes()
        }
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
        let boxed: usize = model
            .iter()
            .map(|(m, _)| m.len())
            .filter(|&len| len > member::INLINE_CAPACITY)
            .sum();
        prop_assert_eq!(list.boxed_member_bytes, boxed);
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

    #[test]
    fn a_node_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Node>(), 64);
        assert_eq!(std::mem::align_of::<Node>(), 64);
    }

    #[test]
    fn heap_size_counts_nodes_upper_links_and_long_members() {
        let mut list = SkipList::new();
        let empty = list.heap_size();
        for i in 0..1000u32 {
            list.insert(format!("element:{i:012}").as_bytes(), 0.0);
        }
        let short = list.heap_size();
        // 64 bytes a node plus its index slot, whatever the arena's slack.
        assert!(short - empty >= 1000 * 68, "{short}");
        assert!(short - empty < 1000 * 160, "{short}");
        list.insert(&[b'x'; 100], 1.0);
        assert!(list.heap_size() >= short + 100);
        // Heights are kept, so relinking after a score change needs no new upper block.
        for i in 0..1000u32 {
            list.insert(format!("element:{i:012}").as_bytes(), f64::from(i));
        }
        // The long member (score 1) sorts after element 1.
        assert_eq!(list.rank(b"element:000000000999"), Some(1000));
        assert_eq!(list.rank(&[b'x'; 100]), Some(2));
        assert_eq!(list.linked_len(), 1001);
    }
}
