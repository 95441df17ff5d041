//! Intset blobs (type 11): `encoding` (u32 LE: 2, 4 or 8, the bytes of every member),
//! `length` (u32 LE), then the members, little-endian, strictly ascending.

use ferrokv_store::types::set::{IntSet, Width};

const HEADER: usize = 8;

/// The intset a blob holds, kept at the blob's width (Valkey never narrows one either);
/// `None` if the sizes disagree or the members are not strictly ascending (a duplicate).
pub fn from_blob(blob: &[u8]) -> Option<IntSet> {
    let header = blob.get(..HEADER)?;
    let width = match u32::from_le_bytes(header[0..4].try_into().ok()?) {
        2 => Width::W16,
        4 => Width::W32,
        8 => Width::W64,
        _ => return None,
    };
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let data = &blob[HEADER..];
    if len.checked_mul(width as usize)? != data.len() {
        return None;
    }
    let set = IntSet::from_bytes(width, data.to_vec());
    let mut previous = None;
    for n in set.iter() {
        if previous.is_some_and(|p| p >= n) {
            return None;
        }
        previous = Some(n);
    }
    Some(set)
}

/// The blob of `set`.
pub fn to_blob(set: &IntSet) -> Vec<u8> {
    let data = set.as_bytes();
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.extend_from_slice(&(set.width() as u32).to_le_bytes());
    out.extend_from_slice(&(set.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_redis() {
        // `DUMP` of SADD si 1 2 3 on redis-server 7.0, without type byte and footer.
        let redis = b"\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00";
        let set = from_blob(redis).expect("valid");
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(to_blob(&set), redis);
    }

    #[test]
    fn bad_blobs_are_refused() {
        assert!(from_blob(b"\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x01\x00").is_none());
        assert!(from_blob(b"\x02\x00\x00\x00\x02\x00\x00\x00\x02\x00\x01\x00").is_none());
        assert!(from_blob(b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00").is_none());
        assert!(from_blob(b"\x02\x00\x00\x00\x09\x00\x00\x00\x01\x00").is_none());
        assert!(from_blob(b"\x02\x00").is_none());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = from_blob(&bytes);
        }
    }
}
