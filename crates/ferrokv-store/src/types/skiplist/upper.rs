//! The forward links of levels 2 and up, for the one node in sixteen that has them.
//!
//! They live in one `Vec` in blocks of a power-of-two number of links, with a free list per
//! block size, so a tall node reaches its links through one index (no allocation of its own)
//! and a freed block is reused by the next node of the same size class.

use super::{Link, MAX_LEVEL};

/// Block sizes 1, 2, 4 ... up to the header's `MAX_LEVEL - 2` links.
const CLASSES: usize = (MAX_LEVEL - 2).next_power_of_two().trailing_zeros() as usize + 1;

#[derive(Debug, Clone, Default)]
pub struct UpperLinks {
    links: Vec<Link>,
    free: [Vec<u32>; CLASSES],
}

fn class_of(count: usize) -> usize {
    count.next_power_of_two().trailing_zeros() as usize
}

impl UpperLinks {
    /// A block of `count` (at least 1) unlinked links; returns its start.
    pub fn alloc(&mut self, count: usize, unlinked: Link) -> u32 {
        let class = class_of(count);
        if let Some(start) = self.free[class].pop() {
            let start_at = start as usize;
            self.links[start_at..start_at + count].fill(unlinked);
            return start;
        }
        let start = self.links.len();
        self.links.resize(start + (1 << class), unlinked);
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

    pub fn get(&self, at: usize) -> Link {
        self.links[at]
    }

    pub fn get_mut(&mut self, at: usize) -> &mut Link {
        &mut self.links[at]
    }

    pub fn heap_size(&self) -> usize {
        self.links.capacity() * std::mem::size_of::<Link>()
            + self.free.iter().map(|f| f.capacity() * 4).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_blocks_are_reused_by_their_size_class() {
        let unlinked = Link { next: 7, span: 0 };
        let mut upper = UpperLinks::default();
        let head = upper.alloc(MAX_LEVEL - 2, unlinked);
        assert_eq!(head, 0);
        let a = upper.alloc(1, unlinked);
        let b = upper.alloc(3, unlinked);
        assert_eq!((a, b), (32, 33));
        upper.get_mut(b as usize + 2).span = 9;
        upper.release(b, 3);
        // A block of 3 or 4 links takes the freed one back, reset.
        assert_eq!(upper.alloc(4, unlinked), b);
        assert_eq!(upper.get(b as usize + 2).span, 0);
        assert_eq!(upper.alloc(2, unlinked), 37);
        upper.truncate(MAX_LEVEL - 2);
        assert_eq!(upper.alloc(1, unlinked), 30);
    }
}
