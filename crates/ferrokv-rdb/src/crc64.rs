//! The checksum of RDB files and DUMP payloads: CRC-64 with the Jones polynomial, reflected,
//! no final xor (the `crc` crate's CRC_64_REDIS, checked against Redis's test vector below).

use crc::{CRC_64_REDIS, Crc, Digest, Table};

/// Sixteen tables make the checksum run at several GB/s, so it does not slow a save.
pub static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

pub fn checksum(bytes: &[u8]) -> u64 {
    CRC64.checksum(bytes)
}

/// A running checksum over data produced in pieces.
pub fn digest() -> Digest<'static, u64, Table<16>> {
    CRC64.digest()
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_redis_test_vector() {
        // Redis's crc64 self-test: crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
        assert_eq!(super::checksum(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }
}
