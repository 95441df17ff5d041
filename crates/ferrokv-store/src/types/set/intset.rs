//! A sorted array of distinct integers stored at the narrowest width that fits them all.
//!
//! Valkey's `intset` keeps members as 16-, 32- or 64-bit little-endian integers in one
//! buffer; adding a member that does not fit the current width rewrites every member at the
//! wider width, and the width never shrinks. Keeping the members sorted is what makes SMEMBERS
//! and SSCAN on a small all-integer set list them in numeric order, as Valkey does.

/// The width of every member of an [`IntSet`], in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Width {
    W16 = 2,
    W32 = 4,
    W64 = 8,
}

impl Width {
    /// The narrowest width that holds `n`.
    pub fn of(n: i64) -> Width {
        if i16::try_from(n).is_ok() {
            Width::W16
        } else if i32::try_from(n).is_ok() {
            Width::W32
        } else {
            Width::W64
        }
    }

    fn bytes(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntSet {
    width: Width,
    /// `len() * width` bytes: the members in ascending order, little-endian.
    data: Vec<u8>,
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::new()
    }
}

impl IntSet {
    pub fn new() -> IntSet {
        IntSet {
            width: Width::W16,
            data: Vec::new(),
        }
    }

    pub fn width(&self) -> Width {
        self.width
    }

    /// The members as stored: `len() * width` little-endian bytes in ascending order.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Takes the buffer back out (for reuse).
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// An intset over `data` as returned by [`IntSet::as_bytes`] at `width` (a partial
    /// trailing member, which `as_bytes` never produces, is dropped).
    pub fn from_bytes(width: Width, mut data: Vec<u8>) -> IntSet {
        data.truncate(data.len() - data.len() % width.bytes());
        IntSet { width, data }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.width.bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes held on the heap.
    pub fn heap_size(&self) -> usize {
        self.data.capacity()
    }

    /// The member at `index` in ascending order. `index` must be below `len()`.
    pub fn get(&self, index: usize) -> i64 {
        read_at(&self.data, self.width, index)
    }

    pub fn min(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.get(0))
    }

    pub fn max(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.get(self.len() - 1))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The position of `n`, or where it would be inserted.
    fn search(&self, n: i64) -> Result<usize, usize> {
        // A value wider than the current width cannot be a member.
        if Width::of(n) > self.width {
            return Err(if n < 0 { 0 } else { self.len() });
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&n) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn contains(&self, n: i64) -> bool {
        self.search(n).is_ok()
    }

    /// Adds `n`; returns false if it was already a member.
    pub fn insert(&mut self, n: i64) -> bool {
        let needed = Width::of(n);
        if needed > self.width {
            // A value that needs a wider width is beyond every current member: it goes first
            // if negative, last otherwise.
            self.upgrade(needed);
            let at = if n < 0 { 0 } else { self.len() };
            self.insert_at(at, n);
            return true;
        }
        match self.search(n) {
            Ok(_) => false,
            Err(at) => {
                self.insert_at(at, n);
                true
            }
        }
    }

    /// Removes `n`; returns false if it was not a member.
    pub fn remove(&mut self, n: i64) -> bool {
        match self.search(n) {
            Ok(at) => {
                self.remove_at(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes and returns the member at `index` (must be below `len()`).
    pub fn remove_at(&mut self, index: usize) -> i64 {
        let n = self.get(index);
        let w = self.width.bytes();
        self.data.drain(index * w..(index + 1) * w);
        n
    }

    /// Keeps only the members at the positions for which `keep` returns true.
    pub fn retain_positions(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let w = self.width.bytes();
        let mut index = 0;
        let mut write = 0;
        while index * w < self.data.len() {
            if keep(index) {
                self.data.copy_within(index * w..(index + 1) * w, write);
                write += w;
            }
            index += 1;
        }
        self.data.truncate(write);
    }

    fn insert_at(&mut self, index: usize, n: i64) {
        let w = self.width.bytes();
        let bytes = n.to_le_bytes();
        let at = index * w;
        crate::types::byte_splice::replace(&mut self.data, at..at, &bytes[..w]);
    }

    /// Rewrites every member at `width`.
    fn upgrade(&mut self, width: Width) {
        let mut data = Vec::with_capacity((self.len() + 1) * width.bytes());
        for n in self.iter() {
            data.extend_from_slice(&n.to_le_bytes()[..width.bytes()]);
        }
        self.width = width;
        self.data = data;
    }
}

fn read_at(data: &[u8], width: Width, index: usize) -> i64 {
    let w = width.bytes();
    let at = index * w;
    match width {
        Width::W16 => i64::from(i16::from_le_bytes([data[at], data[at + 1]])),
        Width::W32 => {
            let mut b = [0u8; 4];
            b.copy_from_slice(&data[at..at + 4]);
            i64::from(i32::from_le_bytes(b))
        }
        Width::W64 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&data[at..at + 8]);
            i64::from_le_bytes(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_stay_sorted_and_distinct() {
        let mut s = IntSet::new();
        for n in [5, -3, 9, 5, 0, -3] {
            s.insert(n);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), [-3, 0, 5, 9]);
        assert!(s.contains(0) && !s.contains(1));
        assert!(s.remove(0) && !s.remove(0));
        assert_eq!(s.iter().collect::<Vec<_>>(), [-3, 5, 9]);
    }

    #[test]
    fn width_grows_16_32_64_and_never_shrinks() {
        let mut s = IntSet::new();
        s.insert(1);
        s.insert(-1);
        assert_eq!(s.width(), Width::W16);
        assert!(s.heap_size() >= 4);
        s.insert(i64::from(i16::MAX));
        s.insert(i64::from(i16::MIN));
        assert_eq!(s.width(), Width::W16);
        // One past i16 on either side needs 32 bits; it lands at the matching end.
        s.insert(i64::from(i16::MAX) + 1);
        assert_eq!(s.width(), Width::W32);
        s.insert(i64::from(i16::MIN) - 1);
        assert_eq!(s.width(), Width::W32);
        assert_eq!(s.len() * 4, s.data.len());
        s.insert(i64::from(i32::MIN) - 1);
        assert_eq!(s.width(), Width::W64);
        assert_eq!(s.min(), Some(i64::from(i32::MIN) - 1));
        s.insert(i64::MAX);
        s.insert(i64::MIN);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [
                i64::MIN,
                i64::from(i32::MIN) - 1,
                i64::from(i16::MIN) - 1,
                i64::from(i16::MIN),
                -1,
                1,
                i64::from(i16::MAX),
                i64::from(i16::MAX) + 1,
                i64::MAX
            ]
        );
        assert_eq!(s.len() * 8, s.data.len());
        // Removing the wide members keeps the width, as in Valkey.
        for n in [i64::MIN, i64::MAX, i64::from(i32::MIN) - 1] {
            assert!(s.remove(n));
        }
        assert_eq!(s.width(), Width::W64);
        assert!(s.contains(-1) && s.contains(i64::from(i16::MAX) + 1));
    }

    #[test]
    fn wide_values_are_not_members_of_a_narrow_set() {
        let mut s = IntSet::new();
        s.insert(7);
        assert!(!s.contains(1 << 40));
        assert!(!s.contains(-(1 << 40)));
        assert!(!s.remove(1 << 40));
        assert_eq!(s.width(), Width::W16);
    }

    #[test]
    fn retain_positions_keeps_order() {
        let mut s = IntSet::new();
        for n in 0..10 {
            s.insert(n * 1000);
        }
        s.retain_positions(|i| i % 3 == 0);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 3000, 6000, 9000]);
    }

    #[test]
    fn matches_a_btreeset_on_random_operations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut s = IntSet::new();
        let mut model = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            let n: i64 = match rng.random_range(0..3) {
                0 => rng.random_range(-300..300),
                1 => rng.random_range(-100_000..100_000),
                _ => rng.random(),
            };
            if rng.random_bool(0.6) {
                assert_eq!(s.insert(n), model.insert(n));
            } else {
                assert_eq!(s.remove(n), model.remove(&n));
            }
        }
        assert!(s.iter().eq(model.iter().copied()));
    }
}
