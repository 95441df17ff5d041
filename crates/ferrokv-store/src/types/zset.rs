//! The sorted set value: `listpack` while small, `skiplist` beyond the configured limits.
//!
//! The conversion rules are Valkey 9.1's, measured against it:
//! - a set created by ZADD/ZINCRBY is a skiplist at once when the command names more
//!   score-member pairs than `zset-max-listpack-entries` (duplicates count) or a member
//!   longer than `zset-max-listpack-value` ([`ZSet::with_hint`]); ZADD on an existing
//!   listpack converts by the same test before it changes anything ([`ZSet::maybe_convert`]);
//! - adding a new member converts when the set would exceed the entries limit or the
//!   member exceeds the value limit ([`ZSet::insert`]);
//! - sets never go back to listpack on deletion; results stored by ZRANGESTORE and the
//!   ZUNIONSTORE family are listpack when they fit both limits ([`ZSet::from_sorted`]).

use super::skiplist::{self, SkipList};
use super::zpack::{self, ZPack};

/// The two `zset-max-listpack-*` directives.
#[derive(Debug, Clone, Copy)]
pub struct ZSetLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl ZSetLimits {
    fn fits(&self, len: usize, member_len: usize) -> bool {
        len <= self.max_listpack_entries && member_len <= self.max_listpack_value
    }
}

/// A score as the listpack form keeps it. Valkey's listpack stores an integral score as an
/// integer, so a negative zero comes back as 0 there, while its skiplist keeps the double
/// and replies `-0`.
fn listpack_score(score: f64) -> f64 {
    if score == 0.0 { 0.0 } else { score }
}

/// One element of the compact form.
pub type Pair = (Box<[u8]>, f64);

#[derive(Debug, Clone, PartialEq)]
pub enum ZSet {
    /// Elements in order (score, then member bytes) in one buffer, searched linearly.
    Listpack(ZPack),
    Skiplist(Box<SkipList>),
}

impl Default for ZSet {
    /// An empty listpack.
    fn default() -> Self {
        ZSet::Listpack(ZPack::new())
    }
}

impl ZSet {
    /// An empty set in the encoding Valkey picks for a new set about to receive
    /// `size_hint` elements whose longest member has `max_member_len` bytes.
    pub fn with_hint(size_hint: usize, max_member_len: usize, limits: ZSetLimits) -> ZSet {
        if limits.fits(size_hint, max_member_len) {
            ZSet::Listpack(ZPack::new())
        } else {
            ZSet::Skiplist(Box::default())
        }
    }

    /// Converts a listpack to a skiplist if `size_hint` elements or a member of
    /// `max_member_len` bytes would not fit it.
    pub fn maybe_convert(&mut self, size_hint: usize, max_member_len: usize, limits: ZSetLimits) {
        if matches!(self, ZSet::Listpack(_)) && !limits.fits(size_hint, max_member_len) {
            self.convert_to_skiplist();
        }
    }

    /// Converts a listpack to a skiplist whatever its size (SORT does, as Valkey does
    /// before it reads a sorted set).
    pub fn convert_to_skiplist(&mut self) {
        if let ZSet::Listpack(pack) = self {
            let mut list = SkipList::new();
            for (member, score) in pack.iter() {
                list.insert(member, score);
            }
            *self = ZSet::Skiplist(Box::new(list));
        }
    }

    /// A listpack holding `pairs`, which must be in order with distinct members, whatever
    /// the limits (a scratch set for computations, never stored as is).
    pub fn listpack_of(pairs: &[Pair]) -> ZSet {
        ZSet::Listpack(ZPack::from_sorted(pairs.iter().map(|(m, s)| (m, *s))))
    }

    /// A set holding `pairs` (in order, members distinct), listpack if it fits the limits.
    pub fn from_sorted(pairs: Vec<Pair>, limits: ZSetLimits) -> ZSet {
        let longest = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        if limits.fits(pairs.len(), longest) {
            let pairs = pairs.into_iter().map(|(m, s)| (m, listpack_score(s)));
            return ZSet::Listpack(ZPack::from_sorted(pairs));
        }
        let mut list = SkipList::new();
        for (member, score) in pairs {
            list.insert(&member, score);
        }
        ZSet::Skiplist(Box::new(list))
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Listpack(_) => "listpack",
            ZSet::Skiplist(_) => "skiplist",
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            ZSet::Listpack(pack) => pack.heap_size(),
            ZSet::Skiplist(list) => std::mem::size_of::<SkipList>() + list.heap_size(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSet::Listpack(pack) => pack.len(),
            ZSet::Skiplist(list) => list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Listpack(pack) => pack.score(member),
            ZSet::Skiplist(list) => list.score(member),
        }
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Listpack(pack) => pack.rank(member),
            ZSet::Skiplist(list) => list.rank(member),
        }
    }

    /// Sets `member`'s score, adding it if absent (converting to a skiplist first if the
    /// new member does not fit the listpack). Returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: ZSetLimits) -> Option<f64> {
        if let ZSet::Listpack(pack) = self {
            let score = listpack_score(score);
            if let Some(old) = pack.score(member) {
                if old.to_bits() != score.to_bits() {
                    pack.remove(member);
                    pack.insert_new(member, score);
                }
                return Some(old);
            }
            if limits.fits(pack.len() + 1, member.len()) {
                pack.insert_new(member, score);
                return None;
            }
            self.convert_to_skiplist();
        }
        match self {
            ZSet::Skiplist(list) => list.insert(member, score),
            ZSet::Listpack(_) => None,
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Listpack(pack) => pack.remove(member),
            ZSet::Skiplist(list) => list.remove(member),
        }
    }

    /// How many leading elements (in ascending order) satisfy `before`, which must hold for
    /// a prefix of the order: the rank where a range starts, or ends (exclusive).
    pub fn count_while(&self, before: impl FnMut(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSet::Listpack(pack) => pack.count_while(before),
            ZSet::Skiplist(list) => list.count_while(before),
        }
    }

    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        match self {
            ZSet::Listpack(pack) => pack.get(rank),
            ZSet::Skiplist(list) => list.get_by_rank(rank),
        }
    }

    /// The elements of ranks `start..end` (clamped to the set), ascending, or descending
    /// from `end - 1` when `reverse`.
    pub fn range(&self, start: usize, end: usize, reverse: bool) -> Range<'_> {
        let end = end.min(self.len());
        let start = start.min(end);
        let remaining = end - start;
        let inner = match self {
            ZSet::Listpack(pack) if reverse => {
                let mut elements: Vec<_> = pack.iter_from(start).take(remaining).collect();
                elements.reverse();
                RangeInner::ListpackReversed(elements.into_iter())
            }
            ZSet::Listpack(pack) => RangeInner::Listpack(pack.iter_from(start)),
            ZSet::Skiplist(list) if remaining == 0 => RangeInner::Skiplist(list.iter_from(end)),
            ZSet::Skiplist(list) if reverse => RangeInner::Skiplist(list.iter_back_from(end - 1)),
            ZSet::Skiplist(list) => RangeInner::Skiplist(list.iter_from(start)),
        };
        Range { inner, remaining }
    }

    /// Every element, ascending.
    pub fn iter(&self) -> Range<'_> {
        self.range(0, self.len(), false)
    }

    /// Removes the lowest (`last` false) or highest element.
    pub fn pop(&mut self, last: bool) -> Option<Pair> {
        match self {
            ZSet::Listpack(pack) => pack.pop(last),
            ZSet::Skiplist(list) => list.pop(last),
        }
    }

    /// Removes the elements of ranks `start..end`; returns how many.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match self {
            ZSet::Listpack(pack) => pack.remove_ranks(start, end),
            ZSet::Skiplist(list) => {
                let doomed: Vec<Box<[u8]>> = list
                    .iter_from(start)
                    .take(end - start)
                    .map(|(m, _)| m.into())
                    .collect();
                for member in doomed {
                    list.remove(&member);
                }
            }
        }
        end - start
    }

    /// One ZSCAN step. A listpack is returned whole with cursor 0, as Valkey does.
    pub fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSet::Listpack(pack) => {
                for (m, s) in pack.iter() {
                    visit(m, s);
                }
                0
            }
            ZSet::Skiplist(list) => list.scan_step(cursor, visit),
        }
    }
}

enum RangeInner<'a> {
    Listpack(zpack::Iter<'a>),
    ListpackReversed(std::vec::IntoIter<(&'a [u8], f64)>),
    Skiplist(skiplist::Iter<'a>),
}

/// Elements of a rank range, in the requested direction.
pub struct Range<'a> {
    inner: RangeInner<'a>,
    remaining: usize,
}

impl<'a> Iterator for Range<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match &mut self.inner {
            RangeInner::Listpack(it) => it.next(),
            RangeInner::ListpackReversed(it) => it.next(),
            RangeInner::Skiplist(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Range<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMALL: ZSetLimits = ZSetLimits {
        max_listpack_entries: 8,
        max_listpack_value: 4,
    };

    #[test]
    fn converts_at_the_limits_and_never_back() {
        let mut z = ZSet::with_hint(1, 1, SMALL);
        for i in 0..8 {
            z.insert(format!("m{i}").as_bytes(), i as f64, SMALL);
        }
        assert_eq!(z.encoding(), "listpack");
        // Updating a score does not convert.
        z.insert(b"m0", 100.0, SMALL);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"m8", 8.0, SMALL);
        assert_eq!(z.encoding(), "skiplist");
        while z.pop(false).is_some() {}
        assert_eq!(z.encoding(), "skiplist");

        let mut z = ZSet::with_hint(1, 1, SMALL);
        z.insert(b"long!", 1.0, SMALL);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(ZSet::with_hint(9, 1, SMALL).encoding(), "skiplist");
        assert_eq!(ZSet::with_hint(8, 4, SMALL).encoding(), "listpack");
    }

    fn build(encoding_big: bool, members: &[(u8, i8)]) -> ZSet {
        let limits = if encoding_big {
            ZSetLimits {
                max_listpack_entries: 0,
                max_listpack_value: 0,
            }
        } else {
            ZSetLimits {
                max_listpack_entries: usize::MAX,
                max_listpack_value: usize::MAX,
            }
        };
        let mut z = ZSet::with_hint(members.len(), 8, limits);
        for (m, s) in members {
            z.insert(&[*m], f64::from(*s), limits);
        }
        z
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Both encodings answer every query alike.
        #[test]
        fn encodings_agree(members in proptest::collection::vec((any::<u8>(), -5i8..5), 0..60),
                           start in 0usize..70, len in 0usize..70, pops in 0usize..5) {
            let mut small = build(false, &members);
            let mut big = build(true, &members);
            prop_assert_eq!(small.encoding(), "listpack");
            prop_assert_eq!(big.encoding(), "skiplist");
            let all = |z: &ZSet| z.iter().map(|(m, s)| (m.to_vec(), s)).collect::<Vec<_>>();
            prop_assert_eq!(all(&small), all(&big));
            let end = start + len;
            for reverse in [false, true] {
                let a: Vec<_> = small.range(start, end, reverse).map(|(m, s)| (m.to_vec(), s)).collect();
                let b: Vec<_> = big.range(start, end, reverse).map(|(m, s)| (m.to_vec(), s)).collect();
                prop_assert_eq!(a, b);
            }
            for bound in [-3.0, 0.0, 2.0] {
                prop_assert_eq!(small.count_while(|s, _| s < bound), big.count_while(|s, _| s < bound));
            }
            for (m, _) in &members {
                prop_assert_eq!(small.rank(&[*m]), big.rank(&[*m]));
                prop_assert_eq!(small.score(&[*m]), big.score(&[*m]));
            }
            for i in 0..pops {
                prop_assert_eq!(small.pop(i % 2 == 0), big.pop(i % 2 == 0));
            }
            prop_assert_eq!(small.remove_ranks(start, end), big.remove_ranks(start, end));
            prop_assert_eq!(all(&small), all(&big));
        }
    }
}
