//! DUMP payloads: a value's type byte and payload, then the RDB version (two bytes, little
//! endian) and a CRC-64 of everything before it (eight bytes, little endian).

use ferrokv_store::Value;

use crate::decode::Decoder;
use crate::encode::Encoder;
use crate::error::{RdbError, RdbResult};
use crate::format::{self, Dialect};
use crate::value::{self, ReadOptions, Target};

/// The serialized form of `value` (what DUMP replies). Values only Valkey 9 can hold get its
/// version; everything else gets RDB 10, which Redis 7.0 accepts.
pub fn dump(value: &Value, compress: bool) -> Vec<u8> {
    let target = if value::needs_valkey(value) {
        Target::Valkey80
    } else {
        Target::Rdb10
    };
    let mut e = Encoder::new(compress);
    value::write_value(&mut e, value, target);
    let version = target.version() as u16;
    e.bytes(&version.to_le_bytes());
    let crc = crate::crc64::checksum(&e.buf);
    e.u64_le(crc);
    e.buf
}

/// Why a payload was refused: RESTORE answers "ERR DUMP payload version or checksum are
/// wrong" for the first and "ERR Bad data format" for the second, as Valkey does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    VersionOrChecksum,
    BadData(RdbError),
}

/// Checks a payload's footer and decodes its value.
///
/// As in Valkey, the checksum must match (a zero checksum is not a pass), and the value is
/// read from the whole payload: a value that runs into the footer, or stops short of it, is
/// accepted as long as it parses, since the checksum already vouches for the bytes.
pub fn restore(payload: &[u8], options: &ReadOptions) -> Result<Value, RestoreError> {
    restore_checked(payload, options, true)
}

/// [`restore`], with the checksum test left out when `verify_checksum` is false (DEBUG
/// SET-SKIP-CHECKSUM-VALIDATION 1, for tests that feed hand-made payloads; the version must
/// still be known, and the value must still parse).
pub fn restore_checked(
    payload: &[u8],
    options: &ReadOptions,
    verify_checksum: bool,
) -> Result<Value, RestoreError> {
    let Some(body_len) = payload.len().checked_sub(10) else {
        return Err(RestoreError::VersionOrChecksum);
    };
    let footer = &payload[body_len..];
    let version = u32::from(u16::from_le_bytes([footer[0], footer[1]]));
    let stored = u64::from_le_bytes(footer[2..10].try_into().unwrap_or_default());
    let known = version <= format::MAX_REDIS_VERSION || version == format::VALKEY_VERSION;
    // `rdb-version-check relaxed` reads a payload of any version; one past Valkey's own is
    // read as Valkey's format, one between Redis's and Valkey's as Redis's.
    if !(known || options.relaxed_version)
        || (verify_checksum && crate::crc64::checksum(&payload[..body_len + 2]) != stored)
    {
        return Err(RestoreError::VersionOrChecksum);
    }
    let dialect = if version >= format::VALKEY_VERSION {
        Dialect::Valkey(version)
    } else {
        Dialect::Redis(version)
    };
    let mut options = *options;
    options.dialect = dialect;
    decode_body(payload, &options).map_err(RestoreError::BadData)
}

fn decode_body(payload: &[u8], options: &ReadOptions) -> RdbResult<Value> {
    let mut d = Decoder::new(payload);
    let type_byte = d.u8()?;
    value::read_value(&mut d, type_byte, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv_store::StrValue;

    #[test]
    fn matches_a_redis_dump_of_a_string() {
        // `DUMP` of "bar" from redis-server 7.0: type 0, "bar", version 10, crc.
        let value = Value::Str(StrValue::from_bytes(b"bar"));
        let payload = dump(&value, true);
        assert_eq!(&payload[..6], b"\x00\x03bar\x0a");
        let options = ReadOptions::new(Dialect::Redis(10));
        assert_eq!(restore(&payload, &options), Ok(value));
    }

    #[test]
    fn bad_footers_are_refused() {
        let options = ReadOptions::new(Dialect::Redis(10));
        let value = Value::Str(StrValue::from_bytes(b"bar"));
        let mut payload = dump(&value, true);
        let last = payload.len() - 1;
        payload[last] ^= 0xff;
        assert_eq!(
            restore(&payload, &options),
            Err(RestoreError::VersionOrChecksum)
        );
        assert_eq!(
            restore(b"short", &options),
            Err(RestoreError::VersionOrChecksum)
        );
    }
}
