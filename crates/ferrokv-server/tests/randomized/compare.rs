//! How two replies are compared. Most must be byte-identical; replies whose order depends on
//! the hash table layout are sorted first, random picks are compared by shape, and relative
//! expiry times may drift by the time between the two servers running the command.

use crate::common::split_elements;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// After sorting the top-level elements (or, for a SCAN-shaped reply, the elements of its
    /// second part, the cursor ignored). With `pairs`, elements are sorted two by two
    /// (field/value, member/score) so pairs stay together.
    Sorted { pairs: bool },
    /// Random picks: the same type, the same element count, null where the other is null;
    /// errors and integers must still be identical.
    Shape,
    /// Integers (alone or in an array) equal, or both non-negative and within `tolerance`:
    /// TTLs set relative to each server's own clock.
    Approx { tolerance: i64 },
}

impl Compare {
    pub const SORTED: Compare = Compare::Sorted { pairs: false };
    pub const SORTED_PAIRS: Compare = Compare::Sorted { pairs: true };

    pub fn matches(self, ours: &[u8], theirs: &[u8]) -> bool {
        match self {
            Compare::Exact => ours == theirs,
            Compare::Sorted { pairs } => sorted(ours, pairs) == sorted(theirs, pairs),
            Compare::Shape => shape(ours) == shape(theirs),
            Compare::Approx { tolerance } => approx(ours, theirs, tolerance),
        }
    }
}

fn sorted(reply: &[u8], pairs: bool) -> Vec<u8> {
    let Some((header, mut items)) = split_elements(reply) else {
        return reply.to_vec();
    };
    let scan_shaped = items.len() == 2
        && items[0].first() == Some(&b'$')
        && matches!(items[1].first(), Some(b'*' | b'~' | b'%'));
    if scan_shaped {
        items[0] = b"<cursor>".to_vec();
        items[1] = sorted(&items[1], pairs);
    } else {
        sort_items(&mut items, pairs);
    }
    header.into_iter().chain(items.concat()).collect()
}

fn sort_items(items: &mut Vec<Vec<u8>>, pairs: bool) {
    // RESP3 nests each pair in its own array: those sort as single elements.
    let nested = items
        .first()
        .is_some_and(|item| matches!(item.first(), Some(b'*')));
    if pairs && !nested && items.len().is_multiple_of(2) {
        let mut chunks: Vec<Vec<u8>> = items.chunks(2).map(|c| c.concat()).collect();
        chunks.sort();
        *items = chunks;
    } else {
        items.sort();
    }
}

/// The reply's type, its length for aggregates, nullness for bulk strings; errors, integers
/// and simple strings whole.
fn shape(reply: &[u8]) -> Vec<u8> {
    let first_line = reply
        .iter()
        .position(|&b| b == b'\n')
        .map_or(reply, |end| &reply[..=end]);
    match reply.first() {
        Some(b'*' | b'~' | b'%' | b'>') => first_line.to_vec(),
        Some(b'$') if first_line.starts_with(b"$-1") => b"$-1".to_vec(),
        Some(b'$') => b"$".to_vec(),
        Some(b',') => b",".to_vec(),
        _ => reply.to_vec(),
    }
}

fn approx(ours: &[u8], theirs: &[u8], tolerance: i64) -> bool {
    if ours == theirs {
        return true;
    }
    if let (Some(a), Some(b)) = (integer(ours), integer(theirs)) {
        return a == b || (a >= 0 && b >= 0 && (a - b).abs() <= tolerance);
    }
    match (split_elements(ours), split_elements(theirs)) {
        (Some((ha, ia)), Some((hb, ib))) => {
            ha == hb
                && ia.len() == ib.len()
                && ia.iter().zip(&ib).all(|(a, b)| approx(a, b, tolerance))
        }
        _ => false,
    }
}

fn integer(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?;
    std::str::from_utf8(body).ok()?.trim_end().parse().ok()
}
