//! Zipmap blobs (type 9): the compact hash of Redis before 2.6. Read only.
//!
//! Layout: a count byte (the count if below 254), then per pair: the field's length, the
//! field, the value's length, a byte counting unused bytes after the value, the value and
//! those bytes; then `0xFF`. A length is one byte below 254, or `0xFE` and four LE bytes.

const END: u8 = 0xFF;
const BIG_LEN: u8 = 0xFE;

fn length(blob: &[u8], off: &mut usize) -> Option<usize> {
    let first = *blob.get(*off)?;
    match first {
        END => None,
        BIG_LEN => {
            let n = u32::from_le_bytes(blob.get(*off + 1..*off + 5)?.try_into().ok()?);
            // A length that fits in one byte is never written long: Valkey refuses it
            // (CVE-2026-25243: its reader and its validator disagreed on such a blob).
            if n < u32::from(BIG_LEN) {
                return None;
            }
            *off += 5;
            Some(n as usize)
        }
        n => {
            *off += 1;
            Some(usize::from(n))
        }
    }
}

fn bytes<'a>(blob: &'a [u8], off: &mut usize, n: usize) -> Option<&'a [u8]> {
    let out = blob.get(*off..off.checked_add(n)?)?;
    *off += n;
    Some(out)
}

/// The field/value pairs of a zipmap blob; `None` when anything in it is inconsistent.
pub fn pairs(blob: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let declared = *blob.first()?;
    let mut off = 1;
    let mut out = Vec::new();
    loop {
        if *blob.get(off)? == END {
            off += 1;
            break;
        }
        let field_len = length(blob, &mut off)?;
        let field = bytes(blob, &mut off, field_len)?;
        let value_len = length(blob, &mut off)?;
        let free = usize::from(*blob.get(off)?);
        off += 1;
        let value = bytes(blob, &mut off, value_len)?;
        bytes(blob, &mut off, free)?;
        out.push((field, value));
    }
    if off != blob.len() || (declared < 254 && usize::from(declared) != out.len()) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_with_free_space() {
        let blob = b"\x02\x01a\x02\x001x\x03bcd\x01\x02Z\x00\x00\xff";
        assert_eq!(
            pairs(blob),
            Some(vec![(&b"a"[..], &b"1x"[..]), (&b"bcd"[..], &b"Z"[..])])
        );
        let mut big = vec![1u8, 1, b'k', 0xFE, 0, 1, 0, 0, 0];
        big.extend_from_slice(&[b'v'; 256]);
        big.push(0xFF);
        assert_eq!(pairs(&big).map(|p| p[0].1.len()), Some(256));
    }

    #[test]
    fn bad_blobs_are_refused() {
        assert!(pairs(b"\x01\x01a\x02\x001").is_none());
        assert!(pairs(b"\x02\x01a\x01\x001\xff").is_none());
        assert!(pairs(b"\x01\x01a\x01\x001\xffjunk").is_none());
        assert!(pairs(b"").is_none());
        // A length below 254 in the five-byte form.
        assert!(pairs(b"\x01\xfe\x01\x00\x00\x00a\x01\x001\xff").is_none());
        assert!(pairs(b"\x01\x01a\x01\x001\xff").is_some());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = pairs(&bytes);
        }
    }
}
