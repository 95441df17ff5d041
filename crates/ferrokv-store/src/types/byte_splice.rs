//! Replacing a range of a byte vector in place, for the compact encodings (listpacks,
//! intsets) that insert into the middle of one buffer on every write.
//!
//! `Vec::splice` takes an iterator and shifts the tail through its drop guard: for an LPUSH
//! into a listpack it cost about 200 instructions a call on top of the unavoidable memmove,
//! plus the temporary vector the entry was encoded into (measured with callgrind, session 24).

use std::ops::Range;

/// Replaces `buf[range]` with `with`, moving the tail once.
pub fn replace(buf: &mut Vec<u8>, range: Range<usize>, with: &[u8]) {
    let Range { start, end } = range;
    let kept = start + with.len();
    if kept <= end {
        buf[start..kept].copy_from_slice(with);
        buf.drain(kept..end);
    } else {
        let grow = kept - end;
        let old_len = buf.len();
        buf.resize(old_len + grow, 0);
        buf.copy_within(end..old_len, end + grow);
        buf[start..kept].copy_from_slice(with);
    }
}

/// Moves the `n` bytes at the end of `buf` to position `at`, shifting what was there after
/// them: for an entry encoded at the end (where encoding needs no temporary buffer) that
/// belongs in the middle.
pub fn move_tail_to(buf: &mut [u8], n: usize, at: usize) {
    buf[at..].rotate_right(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_like_splice() {
        let cases: &[(&[u8], Range<usize>, &[u8])] = &[
            (b"abcdef", 2..2, b"XY"),
            (b"abcdef", 0..0, b"XY"),
            (b"abcdef", 6..6, b"XY"),
            (b"abcdef", 1..3, b"XYZW"),
            (b"abcdef", 1..5, b"X"),
            (b"abcdef", 1..3, b"XY"),
            (b"abcdef", 0..6, b""),
            (b"", 0..0, b"X"),
        ];
        for (buf, range, with) in cases {
            let mut expected = buf.to_vec();
            expected.splice(range.clone(), with.iter().copied());
            let mut got = buf.to_vec();
            replace(&mut got, range.clone(), with);
            assert_eq!(got, expected, "{range:?} {with:?}");
        }
    }

    #[test]
    fn moves_the_tail_into_place() {
        let mut buf = b"abcdefXY".to_vec();
        move_tail_to(&mut buf, 2, 1);
        assert_eq!(buf, b"aXYbcdef");
        move_tail_to(&mut buf, 3, 8 - 3);
        assert_eq!(buf, b"aXYbcdef");
    }
}
