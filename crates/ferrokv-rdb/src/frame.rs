//! Framing a value without decoding it: walking its payload's lengths so that its exact
//! bytes can be handed to another thread, which decodes them with [`crate::value::read_value`].
//!
//! Loading a snapshot is sequential only in its framing (where one value ends and the next
//! begins); building the values is most of the work and parallelises by key. Each walk here
//! mirrors the reads `read_value` makes for the type, so the copied bytes are exactly the
//! payload: checked by the round-trip tests below for every framed type.

use std::io::Read;

use crate::decode::Decoder;
use crate::error::RdbResult;
use crate::format::{Dialect, kind};

/// Passes over the payload of a value with `type_byte` (into the decoder's tee); `false`
/// for types that are not framed here (streams, modules, unknown bytes), whose payload the
/// caller decodes in place instead.
pub fn skip_payload<R: Read>(
    d: &mut Decoder<R>,
    type_byte: u8,
    dialect: Dialect,
) -> RdbResult<bool> {
    match type_byte {
        kind::STRING
        | kind::LIST_ZIPLIST
        | kind::SET_INTSET
        | kind::SET_LISTPACK
        | kind::ZSET_ZIPLIST
        | kind::ZSET_LISTPACK
        | kind::HASH_ZIPMAP
        | kind::HASH_ZIPLIST
        | kind::HASH_LISTPACK => d.skip_string()?,
        kind::LIST | kind::SET | kind::LIST_QUICKLIST => {
            for _ in 0..d.count()? {
                d.skip_string()?;
            }
        }
        kind::LIST_QUICKLIST_2 => {
            for _ in 0..d.count()? {
                d.length()?;
                d.skip_string()?;
            }
        }
        kind::ZSET => {
            for _ in 0..d.count()? {
                d.skip_string()?;
                d.skip_text_double()?;
            }
        }
        kind::ZSET_2 => {
            for _ in 0..d.count()? {
                d.skip_string()?;
                d.skip(8)?;
            }
        }
        kind::HASH => {
            for _ in 0..d.count()? {
                d.skip_string()?;
                d.skip_string()?;
            }
        }
        kind::VALKEY_HASH_2 if dialect.has_valkey_hash() => {
            for _ in 0..d.count()? {
                d.skip_string()?;
                d.skip_string()?;
                d.skip(8)?;
            }
        }
        kind::REDIS_HASH_METADATA_PRE_GA | kind::REDIS_HASH_METADATA
            if dialect.has_redis_field_expiry() =>
        {
            if type_byte == kind::REDIS_HASH_METADATA {
                d.skip(8)?;
            }
            for _ in 0..d.count()? {
                d.length()?;
                d.skip_string()?;
                d.skip_string()?;
            }
        }
        kind::REDIS_HASH_LISTPACK_EX_PRE_GA | kind::REDIS_HASH_LISTPACK_EX
            if dialect.has_redis_field_expiry() =>
        {
            if type_byte == kind::REDIS_HASH_LISTPACK_EX {
                d.skip(8)?;
            }
            d.skip_string()?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encoder;
    use crate::value::{ReadOptions, Target, read_value, write_value};
    use ferrokv_store::{ListValue, StrValue, Value};

    /// Frames `payload` and checks that exactly all of it was taken and decodes as directly.
    fn check(type_byte: u8, payload: &[u8], dialect: Dialect) {
        let mut d = Decoder::new(payload);
        d.start_tee(Vec::new());
        assert!(skip_payload(&mut d, type_byte, dialect).expect("frames"));
        let copy = d.stop_tee();
        assert_eq!(copy, payload, "type {type_byte}");
        let options = ReadOptions::new(dialect);
        let direct = read_value(&mut Decoder::new(payload), type_byte, &options);
        let framed = read_value(&mut Decoder::new(&copy[..]), type_byte, &options);
        assert!(direct.is_ok(), "type {type_byte}: {direct:?}");
        assert_eq!(direct, framed);
    }

    fn written(value: &Value) -> (u8, Vec<u8>) {
        let mut e = Encoder::new(true);
        write_value(&mut e, value, Target::Valkey80);
        let (t, p) = e.buf.split_first().expect("type byte");
        (*t, p.to_vec())
    }

    #[test]
    fn every_framed_type_frames_to_its_exact_payload() {
        let dialect = Dialect::Valkey(80);
        let long = vec![b'x'; 300];
        let mut list = ListValue::new();
        let items: Vec<Vec<u8>> = (0..50).map(|i| format!("item{i}").into_bytes()).collect();
        list.push_all(&items, false, ferrokv_store::ListLimits::new(-2, 0));
        for value in [
            Value::Str(StrValue::from_bytes(b"12345")),
            Value::Str(StrValue::from_bytes(&long)),
            Value::Str(StrValue::from_bytes(b"short")),
            Value::List(list),
        ] {
            let (t, p) = written(&value);
            check(t, &p, dialect);
        }
        // Hand-written payloads for the types this writer never emits.
        let mut e = Encoder::new(true);
        e.length(3);
        for m in [&b"a"[..], b"123", &long] {
            e.string(m);
        }
        check(kind::SET, &e.buf, dialect);
        check(kind::LIST, &e.buf, dialect);
        let mut e = Encoder::new(false);
        e.length(3);
        for (m, score) in [(&b"m1"[..], &b"1.5"[..]), (b"m2", b"2")] {
            e.string(m);
            e.u8(score.len() as u8);
            e.bytes(score);
        }
        e.string(b"m3");
        e.u8(254); // +inf: a marker byte and no text
        check(kind::ZSET, &e.buf, dialect);
        let mut e = Encoder::new(false);
        e.length(1);
        e.string(b"m");
        e.bytes(&2.5f64.to_le_bytes());
        check(kind::ZSET_2, &e.buf, dialect);
        let mut e = Encoder::new(true);
        e.length(2);
        for s in [&b"f1"[..], b"v1", b"f2", &long] {
            e.string(s);
        }
        check(kind::HASH, &e.buf, dialect);
        let mut e = Encoder::new(false);
        e.length(1);
        e.string(b"f");
        e.string(b"v");
        e.bytes(&(-1i64).to_le_bytes());
        check(kind::VALKEY_HASH_2, &e.buf, dialect);
        // Redis 7.4's hashes with field expiry, in their own numbering.
        let redis = Dialect::Redis(12);
        for leading in [false, true] {
            let mut e = Encoder::new(false);
            if leading {
                e.u64_le(1_900_000_000_000);
            }
            e.length(2);
            for (ttl, field, value) in [(7u64, &b"f"[..], &b"v"[..]), (0, b"g", &long)] {
                e.length(ttl);
                e.string(field);
                e.string(value);
            }
            let type_byte = if leading {
                kind::REDIS_HASH_METADATA
            } else {
                kind::REDIS_HASH_METADATA_PRE_GA
            };
            check(type_byte, &e.buf, redis);
            let mut lp = ferrokv_store::types::listpack::Listpack::new();
            for s in [&b"f"[..], b"v", b"1900000000000", b"g", b"w", b"0"] {
                lp.push_back(s);
            }
            let mut e = Encoder::new(false);
            if leading {
                e.u64_le(1_900_000_000_000);
            }
            e.string(&lp.to_blob());
            let type_byte = if leading {
                kind::REDIS_HASH_LISTPACK_EX
            } else {
                kind::REDIS_HASH_LISTPACK_EX_PRE_GA
            };
            check(type_byte, &e.buf, redis);
        }
    }

    #[test]
    fn streams_and_unknown_types_are_not_framed() {
        let mut d = Decoder::new(&[0u8; 4][..]);
        assert!(!skip_payload(&mut d, kind::STREAM_LISTPACKS_3, Dialect::Redis(11)).expect("ok"));
        assert!(!skip_payload(&mut d, 200, Dialect::Redis(11)).expect("ok"));
        assert_eq!(d.offset(), 0);
    }

    #[test]
    fn truncation_inside_a_payload_is_reported_where_it_happens() {
        let mut e = Encoder::new(false);
        e.length(2);
        e.string(b"only-one");
        let mut d = Decoder::new(&e.buf[..]);
        d.start_tee(Vec::new());
        let err = skip_payload(&mut d, kind::SET, Dialect::Redis(10)).unwrap_err();
        assert_eq!(err.kind, crate::error::RdbErrorKind::Truncated);
        assert_eq!(err.offset, e.buf.len() as u64);
        // An unknown string encoding is refused as the decoder refuses it.
        let mut d = Decoder::new(&[0xC0 | 9u8][..]);
        let err = skip_payload(&mut d, kind::STRING, Dialect::Redis(10)).unwrap_err();
        assert_eq!(err.kind, crate::error::RdbErrorKind::UnknownEncoding(9));
    }
}
