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
//!
//! A node is one cache line holding its score, member and links of levels 0 and 1; the links
//! of levels 2 and up (one node in sixteen has any) sit in a side pool (`upper`). Those links
//! also copy the score of the node they lead to and where that node's own pool links start,
//! so that on levels 2 and up a search step reads the pool only: it loads the next node's
//! line when the scores tie (the members decide), never just to compare a score or to move
//! onto the node. Without the copies each such step cost two cache misses in a row, the
//! current node's pool block and then the next node's line, where a node with its levels
//! inline (Valkey's) costs one. The copies must stay exact: `link`, `unlink` and `rescore`
//! rewrite every pool link that leads to the node they change. They make a pool link 24
//! bytes instead of 8, about 1.4 bytes more a member on average (0.087 pool links a member
//! with blocks rounded up to powers of two, for p = 1/4; up to twice that while the pool's
//! `Vec` has spare capacity), against 64 for the node.

mod member;
mod upper;

use std::cmp::Ordering;
use std::ops::ControlFlow;

use rand::Rng;

use crate::table::{hash_key, prefetch_addr};
use member::Member;
use upper::{UpperLink, UpperLinks};

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

/// A forward link of level 0 or 1, inside its node (levels 2 and up: `upper::UpperLink`).
#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    /// Elements from this node (excluded) to `next` (included); for the last link of a
    /// level, to the end of the list.
    span: u32,
}

const UNLINKED: Link = Link { next: NIL, span: 0 };

/// One element, in one cache line: a search step on levels 0 and 1 reads the next node's
/// score and (on a tie) member, then follows one of its links, and all of that sits in these
/// 64 bytes (measured: the search loop of `link` was 50-65% of a large ZADD load while
/// members were boxed, each step then missing twice).
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
    /// Where this node's links of levels `LOW_LEVELS..height` start in `SkipList::upper`
    /// (`NIL` below height 3).
    upper: u32,
    height: u8,
    member: Member,
}

/// Orders (score, member) pairs as sorted sets do.
pub fn compare(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    order_scores(a_score, b_score).then_with(|| a_member.cmp(b_member))
}

/// The score part of [`compare`]: incomparable scores tie, so the members decide.
fn order_scores(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// A node a search stands on, with where its pool links start, so that steps on levels 2
/// and up need nothing from its line.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    node: u32,
    upper: u32,
}

/// A forward link as a search step sees it.
#[derive(Debug, Clone, Copy)]
struct Step {
    next: u32,
    span: u32,
    /// Elements passed before this step.
    passed: usize,
    /// `next`'s score where the link carries it (levels 2 and up).
    cached_score: Option<f64>,
}

/// For every level in use, the last node before a place in the order and its rank
/// (elements up to and including it, 0 for the header): what linking a node at that place,
/// or unlinking the node there, rewires.
struct Path {
    before: [Cursor; MAX_LEVEL],
    rank: [usize; MAX_LEVEL],
}

/// Where link `level` (2 or up) of the node whose pool links start at `upper` sits.
fn upper_slot(upper: u32, level: usize) -> usize {
    upper as usize + level - LOW_LEVELS
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

#[cfg(test)]
thread_local! {
    /// Test runs that replay a seed draw node heights from here as well, so that a failure
    /// repeats exactly; everything else draws them from the thread's generator.
    static SEEDED_HEIGHTS: std::cell::RefCell<Option<rand::rngs::StdRng>> =
        const { std::cell::RefCell::new(None) };
}

impl SkipList {
    pub fn new() -> SkipList {
        let mut upper = UpperLinks::default();
        let head_upper = upper.alloc(HEAD_UPPER);
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

    fn head(&self) -> Cursor {
        Cursor {
            node: HEAD,
            upper: self.node(HEAD).upper,
        }
    }

    /// The span of the forward link on `level` of the node `at` stands on.
    fn span_mut(&mut self, at: Cursor, level: usize) -> &mut u32 {
        if level < LOW_LEVELS {
            &mut self.nodes[at.node as usize].low[level].span
        } else {
            &mut self.upper.get_mut(upper_slot(at.upper, level)).span
        }
    }

    /// Starts loading node `at` (if any) without waiting for it.
    fn prefetch_node(&self, at: u32) {
        if let Some(node) = self.nodes.get(at as usize) {
            prefetch_addr((node as *const Node).cast());
        }
    }

    /// Starts loading what the search standing on `at` reads first one level down, should
    /// the step it is about to take on `level` overshoot, so that this miss overlaps the
    /// ones of the current level instead of following them (measured when it was a plain
    /// read of the node compared one level down: 15-30% off `link` on 200k random-score
    /// inserts). From level 2 that is `at`'s own line (its level-1 link); from higher, the
    /// pool link of the node that `at`'s link one level down leads to.
    fn prefetch_below(&self, at: Cursor, level: usize) {
        let below = level - 1;
        if below < LOW_LEVELS {
            self.prefetch_node(at.node);
            return;
        }
        let link = self.upper.get(upper_slot(at.upper, below));
        if link.next != NIL {
            self.upper.prefetch(upper_slot(link.next_upper, below));
        }
    }

    /// Walks from the header down every level in use, on each moving forward while `take`
    /// accepts the step, then calling `settle` with the level, where the walk stands and the
    /// elements passed so far; `settle` breaking ends the walk. On levels 2 and up the walk
    /// reads the pool only, so a `take` that needs more of the next node than its score
    /// loads it.
    fn descend(
        &self,
        mut take: impl FnMut(Step) -> bool,
        mut settle: impl FnMut(usize, Cursor, usize) -> ControlFlow<()>,
    ) {
        let mut at = self.head();
        let mut passed = 0usize;
        for level in (LOW_LEVELS..self.level).rev() {
            loop {
                let link = self.upper.get(upper_slot(at.upper, level));
                if link.next == NIL {
                    break;
                }
                self.prefetch_below(at, level);
                let step = Step {
                    next: link.next,
                    span: link.span,
                    passed,
                    cached_score: Some(link.next_score),
                };
                if !take(step) {
                    break;
                }
                passed += link.span as usize;
                at = Cursor {
                    node: link.next,
                    upper: link.next_upper,
                };
            }
            if settle(level, at, passed).is_break() {
                return;
            }
        }
        for level in (0..self.level.min(LOW_LEVELS)).rev() {
            loop {
                let node = self.node(at.node);
                let link = node.low[level];
                if link.next == NIL {
                    break;
                }
                if level > 0 {
                    self.prefetch_node(node.low[level - 1].next);
                }
                let step = Step {
                    next: link.next,
                    span: link.span,
                    passed,
                    cached_score: None,
                };
                if !take(step) {
                    break;
                }
                passed += link.span as usize;
                at = Cursor {
                    node: link.next,
                    upper: self.node(link.next).upper,
                };
            }
            if settle(level, at, passed).is_break() {
                return;
            }
        }
    }

    /// How the node `step` leads to orders against (`score`, `member`). It loads that node
    /// only below level 2 or when the scores tie.
    fn order(&self, step: Step, score: f64, member: &[u8]) -> Ordering {
        let next_score = step
            .cached_score
            .unwrap_or_else(|| self.node(step.next).score);
        order_scores(next_score, score).then_with(|| self.member(step.next).cmp(member))
    }

    /// The last node before (`score`, `member`) on every level in use.
    fn path_before(&self, score: f64, member: &[u8]) -> Path {
        let mut path = Path {
            before: [self.head(); MAX_LEVEL],
            rank: [0; MAX_LEVEL],
        };
        self.descend(
            |step| self.order(step, score, member) == Ordering::Less,
            |level, at, passed| {
                path.before[level] = at;
                path.rank[level] = passed;
                ControlFlow::Continue(())
            },
        );
        path
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
        let mut rank = None;
        self.descend(
            |step| self.order(step, score, member) != Ordering::Greater,
            |_, at, passed| {
                if at.node == target {
                    rank = Some(passed - 1);
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            },
        );
        rank
    }

    /// How many leading elements satisfy `before`, which must hold for a prefix of the
    /// order and fail after it (as "score below the range's start" does).
    pub fn count_while(&self, mut before: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut count = 0;
        self.descend(
            |step| {
                let node = self.node(step.next);
                before(node.score, node.member.as_bytes())
            },
            |_, _, passed| {
                count = passed;
                ControlFlow::Continue(())
            },
        );
        count
    }

    /// The node at 0-based `rank`.
    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        let target = rank + 1;
        let mut found = NIL;
        self.descend(
            |step| step.passed + step.span as usize <= target,
            |_, at, passed| {
                if passed == target {
                    found = at.node;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            },
        );
        found
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

    fn random_height() -> usize {
        #[cfg(test)]
        if let Some(height) =
            SEEDED_HEIGHTS.with_borrow_mut(|rng| rng.as_mut().map(Self::random_level))
        {
            return height;
        }
        Self::random_level(&mut rand::rng())
    }

    /// Sets `member`'s score, adding it if absent. Returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let Some(at) = self.find(member) {
            let old = self.node(at).score;
            if old.to_bits() != score.to_bits() {
                self.rescore(at, old, score, member);
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
        let path = self.path_before(score, member);
        self.unlink(at, &path);
        self.len -= 1;
        self.boxed_member_bytes -= self.node(at).member.heap_size();
        self.index_remove(at);
        self.release(at);
        Some(score)
    }

    /// A node for `member` with a random height, not linked yet. A node keeps its height
    /// and pool block for its life (a score change relinks it as it is), which is what lets
    /// the links that lead to it keep where its block starts.
    fn alloc(&mut self, member: &[u8]) -> u32 {
        let height = Self::random_height();
        let upper = if height > LOW_LEVELS {
            self.upper.alloc(height - LOW_LEVELS)
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
        let mut path = self.path_before(score, member);
        let node = self.node(at);
        let (height, at_upper) = (usize::from(node.height), node.upper);
        if height > self.level {
            let head = self.head();
            for level in self.level..height {
                path.before[level] = head;
                path.rank[level] = 0;
                *self.span_mut(head, level) = linked as u32;
            }
            self.level = height;
        }
        for level in 0..height {
            let before = path.before[level];
            let passed = (path.rank[0] - path.rank[level]) as u32;
            if level < LOW_LEVELS {
                let old = self.node(before.node).low[level];
                self.nodes[at as usize].low[level] = Link {
                    next: old.next,
                    span: old.span - passed,
                };
                self.nodes[before.node as usize].low[level] = Link {
                    next: at,
                    span: passed + 1,
                };
            } else {
                let old = self.upper.get(upper_slot(before.upper, level));
                *self.upper.get_mut(upper_slot(at_upper, level)) = UpperLink {
                    span: old.span - passed,
                    ..old
                };
                *self.upper.get_mut(upper_slot(before.upper, level)) = UpperLink {
                    next_score: score,
                    next: at,
                    span: passed + 1,
                    next_upper: at_upper,
                };
            }
        }
        for level in height..self.level {
            *self.span_mut(path.before[level], level) += 1;
        }
        let prev = path.before[0].node;
        let prev = if prev == HEAD { NIL } else { prev };
        let next = self.node(at).low[0].next;
        let node = &mut self.nodes[at as usize];
        node.score = score;
        node.prev = prev;
        if next == NIL {
            self.tail = at;
        } else {
            self.nodes[next as usize].prev = at;
        }
    }

    /// Unlinks node `at` from every level; `path` leads to it.
    fn unlink(&mut self, at: u32, path: &Path) {
        let node = self.node(at);
        let (height, at_upper) = (usize::from(node.height), node.upper);
        for level in 0..self.level {
            let before = path.before[level];
            if level >= height {
                let span = self.span_mut(before, level);
                *span = span.saturating_sub(1);
            } else if level < LOW_LEVELS {
                let removed = self.node(at).low[level];
                let link = &mut self.nodes[before.node as usize].low[level];
                debug_assert_eq!(link.next, at);
                *link = Link {
                    next: removed.next,
                    span: link.span + removed.span - 1,
                };
            } else {
                let removed = self.upper.get(upper_slot(at_upper, level));
                let link = self.upper.get_mut(upper_slot(before.upper, level));
                debug_assert_eq!(link.next, at);
                *link = UpperLink {
                    span: link.span + removed.span - 1,
                    ..removed
                };
            }
        }
        let node = self.node(at);
        let (prev, next) = (node.prev, node.low[0].next);
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        while self.level > 1 {
            let top = self.level - 1;
            let head = self.head();
            let top_next = if top < LOW_LEVELS {
                self.node(HEAD).low[top].next
            } else {
                self.upper.get(upper_slot(head.upper, top)).next
            };
            if top_next != NIL {
                break;
            }
            *self.span_mut(head, top) = 0;
            self.level -= 1;
        }
    }

    /// Changes the score of node `at`, holding `member`, from `old` to `score`. Where the
    /// new score keeps it between its neighbours it stays in place, and only its score and
    /// the copies of it in the pool links that lead to it change (one search instead of the
    /// two of unlinking and relinking); otherwise it is relinked with its height.
    fn rescore(&mut self, at: u32, old: f64, score: f64, member: &[u8]) {
        let path = self.path_before(old, member);
        let prev = path.before[0].node;
        let next = self.node(at).low[0].next;
        let after_prev = prev == HEAD || {
            let prev = self.node(prev);
            compare(prev.score, prev.member.as_bytes(), score, member) == Ordering::Less
        };
        let before_next = next == NIL || {
            let next = self.node(next);
            compare(next.score, next.member.as_bytes(), score, member) == Ordering::Greater
        };
        if after_prev && before_next {
            self.nodes[at as usize].score = score;
            let height = usize::from(self.node(at).height);
            for level in LOW_LEVELS..height {
                let link = self
                    .upper
                    .get_mut(upper_slot(path.before[level].upper, level));
                debug_assert_eq!(link.next, at);
                link.next_score = score;
            }
            return;
        }
        self.unlink(at, &path);
        self.link(at, score, member, self.len - 1);
    }

    /// The first (`last` false) or last element, removed.
    pub fn pop(&mut self, last: bool) -> Option<(Box<[u8]>, f64)> {
        let at = if last {
            self.tail
        } else {
            self.node(HEAD).low[0].next
        };
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
    use crate::types::zset::{ZSet, ZSetLimits};
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::ops::Bound;

    /// Consistency checks over the whole structure, for tests.
    impl SkipList {
        /// Elements reachable by summing spans.
        fn linked_len(&self) -> usize {
            let mut count = 0;
            self.descend(
                |_| true,
                |_, _, passed| {
                    count = passed;
                    ControlFlow::Continue(())
                },
            );
            count
        }

        /// The forward link on `level` of node `at`: next, span, and on levels 2 and up the
        /// score and pool block start it keeps for `next`.
        fn link_of(&self, at: u32, level: usize) -> (u32, u32, Option<(f64, u32)>) {
            let node = self.node(at);
            if level < LOW_LEVELS {
                let link = node.low[level];
                return (link.next, link.span, None);
            }
            let link = self.upper.get(upper_slot(node.upper, level));
            (
                link.next,
                link.span,
                Some((link.next_score, link.next_upper)),
            )
        }

        /// Panics unless every invariant holds: level 0 in order with matching back links
        /// and tail; on every level exactly the nodes taller than it, in order, each link's
        /// span the distance it jumps and, on levels 2 and up, its copies of the next node's
        /// score (bit for bit) and pool block start exact; the levels in use those of the
        /// tallest node; the member index holding every element once.
        fn check_links(&self) {
            let mut order = Vec::with_capacity(self.len);
            let mut at = HEAD;
            loop {
                let next = self.node(at).low[0].next;
                if next == NIL {
                    break;
                }
                let expected_prev = if at == HEAD { NIL } else { at };
                assert_eq!(self.node(next).prev, expected_prev, "back link of {next}");
                if at != HEAD {
                    let (a, b) = (self.node(at), self.node(next));
                    let order_ab =
                        compare(a.score, a.member.as_bytes(), b.score, b.member.as_bytes());
                    assert_eq!(order_ab, Ordering::Less, "level 0 out of order at {next}");
                }
                order.push(next);
                at = next;
            }
            assert_eq!(order.len(), self.len);
            assert_eq!(self.tail, order.last().copied().unwrap_or(NIL));
            let mut position = vec![usize::MAX; self.nodes.len()];
            for (rank, &node) in order.iter().enumerate() {
                position[node as usize] = rank + 1;
            }
            position[HEAD as usize] = 0;
            let tallest = order
                .iter()
                .map(|&node| usize::from(self.node(node).height))
                .max()
                .unwrap_or(1);
            assert_eq!(self.level, tallest, "levels in use");
            for level in 0..MAX_LEVEL {
                let expected: Vec<u32> = order
                    .iter()
                    .copied()
                    .filter(|&node| usize::from(self.node(node).height) > level)
                    .collect();
                let mut linked = Vec::with_capacity(expected.len());
                let mut at = HEAD;
                loop {
                    let (next, span, cached) = self.link_of(at, level);
                    if next == NIL {
                        let rest = self.len - position[at as usize];
                        let span_expected = if level < self.level { rest } else { 0 };
                        assert_eq!(span as usize, span_expected, "last span on {level}");
                        break;
                    }
                    let jump = position[next as usize] - position[at as usize];
                    assert_eq!(span as usize, jump, "span from {at} on {level}");
                    if let Some((score, upper)) = cached {
                        let node = self.node(next);
                        assert_eq!(
                            score.to_bits(),
                            node.score.to_bits(),
                            "cached score of {next} on level {level}: {score} vs {}",
                            node.score
                        );
                        assert_eq!(upper, node.upper, "cached block of {next} on {level}");
                    }
                    linked.push(next);
                    at = next;
                }
                assert_eq!(linked, expected, "nodes on level {level}");
            }
            let mut indexed = 0;
            for (bucket, &first) in self.buckets.iter().enumerate() {
                let mut at = first;
                while at != NIL {
                    assert_eq!(self.bucket_of(self.member(at)), bucket);
                    assert_ne!(position[at as usize], usize::MAX, "indexed but unlinked");
                    indexed += 1;
                    at = self.node(at).chain;
                }
            }
            assert_eq!(indexed, self.len);
            let boxed: usize = order
                .iter()
                .map(|&node| self.node(node).member.heap_size())
                .sum();
            assert_eq!(self.boxed_member_bytes, boxed);
        }
    }

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
        list.check_links();
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

    // ---- a long seeded run against a `BTreeSet`, checking every invariant after each step ----

    /// A score ordered as the skiplist orders scores (the model never holds NaN), so that -0
    /// and 0 tie and the member decides.
    #[derive(Debug, Clone, Copy)]
    struct OrderedScore(f64);

    impl Ord for OrderedScore {
        fn cmp(&self, other: &Self) -> Ordering {
            self.0
                .partial_cmp(&other.0)
                .expect("the model holds no NaN")
        }
    }

    impl PartialOrd for OrderedScore {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    impl PartialEq for OrderedScore {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other) == Ordering::Equal
        }
    }

    impl Eq for OrderedScore {}

    #[derive(Default)]
    struct Model {
        order: std::collections::BTreeSet<(OrderedScore, Vec<u8>)>,
        scores: std::collections::HashMap<Vec<u8>, f64>,
    }

    impl Model {
        fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
            let old = self.remove(member);
            self.scores.insert(member.to_vec(), score);
            self.order.insert((OrderedScore(score), member.to_vec()));
            old
        }

        fn remove(&mut self, member: &[u8]) -> Option<f64> {
            let old = self.scores.remove(member)?;
            self.order.remove(&(OrderedScore(old), member.to_vec()));
            Some(old)
        }

        fn elements(&self) -> Vec<(Vec<u8>, f64)> {
            self.order.iter().map(|(s, m)| (m.clone(), s.0)).collect()
        }

        fn rank(&self, member: &[u8]) -> Option<usize> {
            let score = *self.scores.get(member)?;
            Some(
                self.order
                    .range(..(OrderedScore(score), member.to_vec()))
                    .count(),
            )
        }

        /// Removes the elements `doomed` picks (by rank, score and member); returns how many.
        fn remove_where(&mut self, mut doomed: impl FnMut(usize, f64, &[u8]) -> bool) -> usize {
            let victims: Vec<Vec<u8>> = self
                .order
                .iter()
                .enumerate()
                .filter(|(rank, (s, m))| doomed(*rank, s.0, m))
                .map(|(_, (_, m))| m.clone())
                .collect();
            for member in &victims {
                self.remove(member);
            }
            victims.len()
        }
    }

    /// Scores drawn here tie often, so the members decide much of the order (-0 and 0 tie).
    const TIED_SCORES: [f64; 7] = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1.0, 7.0, f64::INFINITY];
    const KEYSPACE: u32 = 6000;
    /// The set hovers around this size: big enough for nodes of height 5 and up.
    const TARGET_LEN: usize = 3000;

    fn draw_score(rng: &mut StdRng) -> f64 {
        if rng.random_ratio(4, 5) {
            TIED_SCORES[rng.random_range(0..TIED_SCORES.len())]
        } else {
            f64::from(rng.random_range(-1000..1000)) / 4.0
        }
    }

    /// Every seventh member is too long to sit in its node.
    fn keyspace_member(n: u32) -> Vec<u8> {
        if n.is_multiple_of(7) {
            format!("m{n}-{}", "y".repeat(member::INLINE_CAPACITY)).into_bytes()
        } else {
            format!("m{n}").into_bytes()
        }
    }

    /// A lex range bound: now and then open, else a member near `after`'s if given, so
    /// that most ranges hold a few members of a tied band.
    fn draw_bound(rng: &mut StdRng, after: Option<&Bound<Vec<u8>>>) -> Bound<Vec<u8>> {
        let n = match after {
            Some(Bound::Included(m) | Bound::Excluded(m)) => {
                let digits = std::str::from_utf8(&m[1..])
                    .unwrap()
                    .split('-')
                    .next()
                    .unwrap();
                digits.parse::<u32>().unwrap() + rng.random_range(0..300)
            }
            _ => rng.random_range(0..KEYSPACE),
        };
        let member = keyspace_member(n);
        match rng.random_range(0..30) {
            0 => Bound::Unbounded,
            1 => Bound::Excluded(member),
            _ => Bound::Included(member),
        }
    }

    /// Scores that keep `member` (now `score`) between its neighbours: a flipped zero, a
    /// tie with a neighbour it still orders against by member, a score halfway to a
    /// neighbour's, or one past the end.
    fn keeping_scores(
        member: &[u8],
        score: f64,
        prev: Option<(&[u8], f64)>,
        next: Option<(&[u8], f64)>,
    ) -> Vec<f64> {
        let mut candidates = Vec::new();
        if score == 0.0 {
            candidates.push(-score);
        }
        match next {
            Some((next_member, next_score)) => {
                if member < next_member {
                    candidates.push(next_score);
                }
                let halfway = score + (next_score - score) / 2.0;
                if score < halfway && halfway < next_score {
                    candidates.push(halfway);
                }
            }
            None => candidates.push(score + 1.0),
        }
        match prev {
            Some((prev_member, prev_score)) => {
                if member > prev_member {
                    candidates.push(prev_score);
                }
                let halfway = score - (score - prev_score) / 2.0;
                if prev_score < halfway && halfway < score {
                    candidates.push(halfway);
                }
            }
            None => candidates.push(score - 1.0),
        }
        candidates.retain(|c| !c.is_nan() && c.to_bits() != score.to_bits());
        candidates
    }

    fn skiplist_of(zset: &ZSet) -> &SkipList {
        match zset {
            ZSet::Skiplist(list) => list,
            ZSet::Listpack(_) => panic!("the set left the skiplist encoding"),
        }
    }

    fn assert_same(zset: &ZSet, model: &Model, rng: &mut StdRng) {
        let list = skiplist_of(zset);
        let elements = model.elements();
        let listed: Vec<_> = list.iter_from(0).map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(listed.len(), elements.len());
        for (got, want) in listed.iter().zip(&elements) {
            assert_eq!(got.0, want.0);
            assert_eq!(got.1.to_bits(), want.1.to_bits(), "score of {:?}", want.0);
        }
        if !elements.is_empty() {
            let mut backward: Vec<_> = list
                .iter_back_from(elements.len() - 1)
                .map(|(m, _)| m.to_vec())
                .collect();
            backward.reverse();
            assert!(backward.iter().eq(elements.iter().map(|(m, _)| m)));
            for _ in 0..16 {
                let rank = rng.random_range(0..elements.len());
                let (member, score) = &elements[rank];
                assert_eq!(list.rank(member), Some(rank));
                assert_eq!(list.score(member).map(f64::to_bits), Some(score.to_bits()));
                assert_eq!(list.get_by_rank(rank).map(|(m, _)| m), Some(&member[..]));
            }
        }
    }

    /// Counts of the kinds of steps a run took, to show it covered each.
    #[derive(Debug, Default)]
    struct Coverage {
        kept_place: usize,
        moved: usize,
        tallest: usize,
        range_removed: usize,
    }

    fn run_against_model(seed: u64, steps: usize) -> Coverage {
        let mut rng = StdRng::seed_from_u64(seed);
        SEEDED_HEIGHTS.with_borrow_mut(|heights| {
            *heights = Some(StdRng::seed_from_u64(seed.wrapping_mul(31)));
        });
        let limits = ZSetLimits {
            max_listpack_entries: 0,
            max_listpack_value: 0,
        };
        let mut zset = ZSet::with_hint(1, 1, limits);
        let mut model = Model::default();
        let mut coverage = Coverage::default();
        for step in 0..steps {
            // Mostly adds while below the target size; range removals are kept narrow so
            // that the set stays near it.
            let kind = if zset.len() < TARGET_LEN && rng.random_ratio(3, 4) {
                0
            } else {
                rng.random_range(0..100)
            };
            match kind {
                // Add a member or give one a new score.
                _ if kind < 40 => {
                    let member = keyspace_member(rng.random_range(0..KEYSPACE));
                    let score = draw_score(&mut rng);
                    let rank_before = model.rank(&member);
                    let expected = model.insert(&member, score);
                    let got = zset.insert(&member, score, limits);
                    assert_eq!(got.map(f64::to_bits), expected.map(f64::to_bits));
                    if rank_before.is_some() && rank_before != model.rank(&member) {
                        coverage.moved += 1;
                    }
                }
                // Give a member a score that keeps its place.
                _ if kind < 65 => {
                    if zset.is_empty() {
                        continue;
                    }
                    let rank = rng.random_range(0..zset.len());
                    let list = skiplist_of(&zset);
                    let (member, score) = list.get_by_rank(rank).unwrap();
                    let member = member.to_vec();
                    let prev = rank.checked_sub(1).and_then(|r| list.get_by_rank(r));
                    let next = list.get_by_rank(rank + 1);
                    let candidates = keeping_scores(&member, score, prev, next);
                    if candidates.is_empty() {
                        continue;
                    }
                    let new = candidates[rng.random_range(0..candidates.len())];
                    assert_eq!(model.insert(&member, new), Some(score));
                    assert_eq!(
                        model.rank(&member),
                        Some(rank),
                        "{new} should keep the place"
                    );
                    assert_eq!(zset.insert(&member, new, limits), Some(score));
                    coverage.kept_place += 1;
                }
                _ if kind < 77 => {
                    let member = keyspace_member(rng.random_range(0..KEYSPACE));
                    let expected = model.remove(&member).map(f64::to_bits);
                    assert_eq!(zset.remove(&member).map(f64::to_bits), expected);
                }
                _ if kind < 87 => {
                    let last = rng.random_bool(0.5);
                    for _ in 0..rng.random_range(1..4) {
                        let got = zset.pop(last).map(|(m, s)| (m.to_vec(), s.to_bits()));
                        let elements = model.elements();
                        let expected = if last {
                            elements.last()
                        } else {
                            elements.first()
                        };
                        let expected = expected.map(|(m, s)| (m.clone(), s.to_bits()));
                        if let Some((member, _)) = &expected {
                            model.remove(member);
                        }
                        assert_eq!(got, expected);
                    }
                }
                // ZREMRANGEBYRANK.
                _ if kind < 94 => {
                    let start = rng.random_range(0..=zset.len());
                    let end = start + rng.random_range(0..8);
                    let expected = model.remove_where(|rank, _, _| start <= rank && rank < end);
                    assert_eq!(zset.remove_ranks(start, end), expected);
                    coverage.range_removed += expected;
                }
                // ZREMRANGEBYSCORE: mostly narrow ranges of the spread scores, sometimes a
                // whole band of tied ones.
                _ if kind < 97 => {
                    let (min, max) = if rng.random_ratio(1, 50) {
                        let score = TIED_SCORES[rng.random_range(0..TIED_SCORES.len())];
                        (score, score)
                    } else {
                        let min = f64::from(rng.random_range(-1000..1000)) / 4.0;
                        (min, min + f64::from(rng.random_range(0..8)) / 4.0)
                    };
                    let (min_excluded, max_excluded) = (rng.random_bool(0.3), rng.random_bool(0.3));
                    let above_min = |s: f64| if min_excluded { s > min } else { s >= min };
                    let below_max = |s: f64| if max_excluded { s < max } else { s <= max };
                    let start = zset.count_while(|s, _| !above_min(s));
                    let end = zset.count_while(|s, _| !above_min(s) || below_max(s));
                    let expected = model.remove_where(|_, s, _| above_min(s) && below_max(s));
                    assert_eq!(zset.remove_ranks(start, end), expected);
                    coverage.range_removed += expected;
                }
                // ZREMRANGEBYLEX within the members of one tied score.
                _ => {
                    let score = TIED_SCORES[rng.random_range(0..TIED_SCORES.len())];
                    let min = draw_bound(&mut rng, None);
                    let max = draw_bound(&mut rng, Some(&min));
                    let after_min = |m: &[u8]| match &min {
                        Bound::Unbounded => true,
                        Bound::Included(b) => m >= &b[..],
                        Bound::Excluded(b) => m > &b[..],
                    };
                    let before_max = |m: &[u8]| match &max {
                        Bound::Unbounded => true,
                        Bound::Included(b) => m <= &b[..],
                        Bound::Excluded(b) => m < &b[..],
                    };
                    let before_range = |s: f64, m: &[u8]| match order_scores(s, score) {
                        Ordering::Less => true,
                        Ordering::Greater => false,
                        Ordering::Equal => !after_min(m),
                    };
                    let start = zset.count_while(before_range);
                    let end = zset.count_while(|s, m| {
                        before_range(s, m) || (order_scores(s, score).is_eq() && before_max(m))
                    });
                    let expected = model.remove_where(|_, s, m| {
                        order_scores(s, score).is_eq() && after_min(m) && before_max(m)
                    });
                    assert_eq!(zset.remove_ranks(start, end.max(start)), expected);
                    coverage.range_removed += expected;
                }
            }
            let list = skiplist_of(&zset);
            list.check_links();
            assert_eq!(list.len(), model.scores.len(), "step {step}");
            coverage.tallest = coverage.tallest.max(list.level);
            if step % 256 == 0 {
                assert_same(&zset, &model, &mut rng);
            }
        }
        assert_same(&zset, &model, &mut rng);
        SEEDED_HEIGHTS.with_borrow_mut(|heights| *heights = None);
        coverage
    }

    #[test]
    fn cached_scores_stay_exact_against_a_btreeset_model() {
        for seed in [1, 2, 3] {
            let coverage = run_against_model(seed, 15_000);
            assert!(coverage.kept_place > 300, "{coverage:?}");
            assert!(coverage.moved > 500, "{coverage:?}");
            assert!(coverage.tallest >= 5, "{coverage:?}");
            assert!(coverage.range_removed > 1000, "{coverage:?}");
        }
    }
}
