//! The forward links of levels 2 and up, for the one node in sixteen that has them.
//!
//! They live in one `Vec` in blocks of a power-of-two number of links, with a free list per
//! block size, so a tall node reaches its links through one index (no allocation of its own)
//! and a freed block is reused by the next node of the same size class.
//!
//! A link here also carries what a search needs of the node it leads to, its score and where
//! its own links of these levels start, so a search step on these levels reads this pool
//! alone: it loads the next node's line only when the scores tie (the members decide), where
//! it would otherwise load it on every step (see the module docs of `skiplist`).

use super::{MAX_LEVEL, NIL};

/// Block sizes 1, 2, 4 ... up to the header's `MAX_LEVEL - 2` links.
const CLASSES: usize = (MAX_LEVEL - 2).next_power_of_two().trailing_zeros() as usize + 1;

/// A forward link of level 2 or up.
#[derive(Debug, Clone, Copy)]
pub struct UpperLink {
    /// The score of `next`, equal to it bit for bit while `next` is not `NIL`: every change
    /// that links, unlinks or rescores a node rewrites the links that lead to it.
    pub next_score: f64,
    pub next: u32,
    /// Elements from this node (excluded) to `next` (included); for the last link of a
    /// level, to the end of the list.
    pub span: u32,
    /// Where `next`'s own links of levels 2 and up start. A link of level L leads to a node
    /// taller than L, so `next` always has a block when this link is on level 2 or up.
    pub next_upper: u32,
}

pub const UNLINKED: UpperLink = UpperLink {
    next_score: 0.0,
    next: NIL,
    span: 0,
    next_upper: NIL,
};

#[derive(Debug, Clone, Default)]
pub struct UpperLinks {
    links: Vec<UpperLink>,
    free: [Vec<u32>; CLASSES],
}

fn class_of(count: usize) -> usize {
    count.next_power_of_two().trailing_zeros() as usize
}

impl UpperLinks {
    /// A block of `count` (at least 1) unlinked links; returns its start.
    pub fn alloc(&mut self, count: usize) -> u32 {
        let class = class_of(count);
        if let Some(start) = self.free[class].pop() {
            let start_at = start as usize;
            self.links[start_at..start_at + count].fill(UNLINKED);
            return start;
        }
        let start = self.links.len();
        self.links.resize(start + (1 << class), UNLINKED);
        start as u32
    }

    /// Gives back the block at `start` allocated for `count` links.
    pub fn release(&mut self, start: u32, count: usize) {
        self.free[class_of(count)].push(start);
    }

    /// Drops every block but the first `keep` links (the header's).
    pub fn truncate(&mut self, keep: usize) {
        self.links.truncate(keep);
        self.free.iter_mut().for_each(Vec::clear);
    }

    pub fn get(&self, at: usize) -> UpperLink {
        self.links[at]
    }

    pub fn get_mut(&mut self, at: usize) -> &mut UpperLink {
        &mut self.links[at]
    }

    /// Starts loading link `at` (if it exists) into the cache without waiting for it.
    pub fn prefetch(&self, at: usize) {
        if let Some(link) = self.links.get(at) {
            crate::table::prefetch_addr((link as *const UpperLink).cast());
        }
    }

    pub fn heap_size(&self) -> usize {
        self.links.capacity() * std::mem::size_of::<UpperLink>()
            + self.free.iter().map(|f| f.capacity() * 4).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_blocks_are_reused_by_their_size_class() {
        let mut upper = UpperLinks::default();
        let head = upper.alloc(MAX_LEVEL - 2);
        assert_eq!(head, 0);
        let a = upper.alloc(1);
        let b = upper.alloc(3);
        assert_eq!((a, b), (32, 33));
        *upper.get_mut(b as usize + 2) = UpperLink {
            next_score: 1.5,
            next: 7,
            span: 9,
            next_upper: 40,
        };
        upper.release(b, 3);
        // A block of 3 or 4 links takes the freed one back, reset.
        assert_eq!(upper.alloc(4), b);
        let reset = upper.get(b as usize + 2);
        assert_eq!((reset.next, reset.span, reset.next_upper), (NIL, 0, NIL));
        assert_eq!(upper.alloc(2), 37);
        upper.truncate(MAX_LEVEL - 2);
        assert_eq!(upper.alloc(1), 30);
    }

    #[test]
    fn a_link_is_three_words() {
        // The score copy and the next block's start cost 16 bytes a link over the plain
        // (next, span) pair; see the memory note in the `skiplist` module docs.
        assert_eq!(std::mem::size_of::<UpperLink>(), 24);
    }
}
