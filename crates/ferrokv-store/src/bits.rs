//! Walking the set bits of a mask (held shards, touched databases, a bucket's slots).

/// The indexes of the set bits of `mask`, lowest first.
#[inline]
pub(crate) fn set_bits(mut mask: u64) -> impl Iterator<Item = usize> + Clone {
    std::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let index = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        Some(index)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn set_bits_lists_each_set_bit_once_ascending() {
        assert_eq!(super::set_bits(0).count(), 0);
        assert_eq!(
            super::set_bits(0b1010_0001 | 1 << 63).collect::<Vec<_>>(),
            [0, 5, 7, 63]
        );
    }
}
