//! Hash slots: a key belongs to slot `CRC16(key) mod 16384`, where CRC16 is the XMODEM
//! variant (polynomial 0x1021, initial value 0, no reflection) that Redis Cluster defined and
//! every cluster client computes. A key with a non-empty `{...}` hash tag hashes only the
//! tag, so that related keys can be kept in one slot.

use crc::{CRC_16_XMODEM, Crc};

/// Slots in a cluster.
pub const SLOT_COUNT: u16 = 16384;

const XMODEM: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The part of `key` that is hashed: the bytes between the first `{` and the first `}` after
/// it, when there are any; otherwise the whole key. `{}` (an empty tag) and a `{` never
/// closed leave the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(close) => &rest[..close],
    }
}

/// The slot `key` belongs to.
pub fn key_slot(key: &[u8]) -> u16 {
    // 16384 is a power of two, so the mask is the modulus.
    XMODEM.checksum(hash_tag(key)) & (SLOT_COUNT - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values measured on valkey-server 9.1.2 (`CLUSTER KEYSLOT`).
    #[test]
    fn slots_match_the_oracle() {
        for (key, slot) in [
            (&b"foo"[..], 12182),
            (b"a", 15495),
            (b"", 0),
            (b"{", 4092),
            (b"}{a}", 15495),
            (b"a{}{b}", 15033),
            (b"{a", 10276),
            (b"a{b}c{d}", 3300),
            (b"{user1}.following", 8106),
            (b"{}x", 10595),
        ] {
            assert_eq!(key_slot(key), slot, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn the_check_value_of_crc16_xmodem() {
        assert_eq!(XMODEM.checksum(b"123456789"), 0x31c3);
    }

    #[test]
    fn tags() {
        assert_eq!(hash_tag(b"x{tag}y"), b"tag");
        assert_eq!(hash_tag(b"{}tag"), b"{}tag");
        assert_eq!(hash_tag(b"x{a}{b}"), b"a");
        assert_eq!(hash_tag(b"x}y{z"), b"x}y{z");
        assert_eq!(hash_tag(b"{{a}}"), b"{a");
    }

    proptest! {
        #[test]
        fn a_tagged_key_shares_its_tags_slot(
            before in "[^{]{0,8}",
            tag in "[^}]{1,8}",
            after in ".{0,8}",
        ) {
            let key = format!("{before}{{{tag}}}{after}");
            prop_assert_eq!(key_slot(key.as_bytes()), key_slot(tag.as_bytes()));
            prop_assert!(key_slot(key.as_bytes()) < SLOT_COUNT);
        }
    }
}
