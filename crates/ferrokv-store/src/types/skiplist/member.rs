//! A member's bytes as a skiplist node holds them: short members inside the node itself, so
//! that a search step that compares members (when scores tie) reads one cache line instead
//! of the node and then a separate allocation.

/// The longest member kept inside the node. 22 bytes is what the 64-byte node has left after
/// its score, links and indexes (see the size test in `skiplist.rs`); "element:" plus twelve
/// digits, what redis-benchmark sends, fits.
pub const INLINE_CAPACITY: usize = 22;

#[derive(Clone)]
pub enum Member {
    Inline {
        len: u8,
        bytes: [u8; INLINE_CAPACITY],
    },
    Boxed(Box<[u8]>),
}

impl Default for Member {
    fn default() -> Self {
        Member::Inline {
            len: 0,
            bytes: [0; INLINE_CAPACITY],
        }
    }
}

impl Member {
    pub fn new(member: &[u8]) -> Member {
        if member.len() > INLINE_CAPACITY {
            return Member::Boxed(member.into());
        }
        let mut bytes = [0; INLINE_CAPACITY];
        bytes[..member.len()].copy_from_slice(member);
        Member::Inline {
            // At most INLINE_CAPACITY, checked above.
            len: member.len() as u8,
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Member::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Member::Boxed(bytes) => bytes,
        }
    }

    /// Bytes allocated outside the node.
    pub fn heap_size(&self) -> usize {
        match self {
            Member::Inline { .. } => 0,
            Member::Boxed(bytes) => bytes.len(),
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_members_stay_inline_and_long_ones_are_boxed() {
        for len in [
            0,
            1,
            INLINE_CAPACITY - 1,
            INLINE_CAPACITY,
            INLINE_CAPACITY + 1,
            300,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let member = Member::new(&bytes);
            assert_eq!(member.as_bytes(), &bytes[..]);
            let inline = len <= INLINE_CAPACITY;
            assert_eq!(matches!(member, Member::Inline { .. }), inline);
            assert_eq!(member.heap_size(), if inline { 0 } else { len });
        }
        assert_eq!(std::mem::size_of::<Member>(), 24);
    }
}
