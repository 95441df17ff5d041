//! Every collection type through DUMP framing and back, in each encoding, under several
//! configurations; payloads captured from redis-server 7.0 and valkey-server 9.1; and
//! garbage that must fail cleanly.

use ferrokv_rdb::dump::{self, RestoreError};
use ferrokv_rdb::error::RdbErrorKind;
use ferrokv_rdb::format::Dialect;
use ferrokv_rdb::value::ReadOptions;
use ferrokv_store::types::hash::{HashLimits, HashValue};
use ferrokv_store::types::zset::{ZSet, ZSetLimits};
use ferrokv_store::{ListLimits, ListValue, NO_EXPIRE, SetLimits, SetValue, Value};

fn options() -> ReadOptions {
    ReadOptions::new(Dialect::Redis(10))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A value's contents in a form independent of its encoding and layout.
#[derive(Debug, PartialEq)]
enum Contents {
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>, i64)>),
    ZSet(Vec<(Vec<u8>, u64)>),
    Other,
}

fn contents(value: &Value) -> Contents {
    match value {
        Value::List(l) => Contents::List(l.to_vecs()),
        Value::Set(s) => {
            let mut members: Vec<_> = s.iter().map(|m| m.to_vec()).collect();
            members.sort();
            Contents::Set(members)
        }
        Value::Hash(h) => {
            let mut pairs = Vec::new();
            match h {
                HashValue::Listpack(lp) => {
                    pairs.extend(lp.iter().map(|(f, v)| (f.to_vec(), v.to_vec(), NO_EXPIRE)))
                }
                HashValue::Table(t) => pairs.extend(
                    t.iter()
                        .map(|f| (f.field.to_vec(), f.value.to_vec(), f.expire_at)),
                ),
            }
            pairs.sort();
            Contents::Hash(pairs)
        }
        Value::ZSet(z) => {
            Contents::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect())
        }
        _ => Contents::Other,
    }
}

/// DUMPs `value` (compressed or not), RESTOREs it and checks contents and encoding.
fn round_trip(value: &Value, options: &ReadOptions) -> Value {
    let mut last = None;
    for compress in [true, false] {
        let payload = dump::dump(value, compress);
        let back = dump::restore(&payload, options).expect("restores");
        assert_eq!(contents(&back), contents(value));
        assert_eq!(
            back.encoding(),
            value.encoding(),
            "{:?}",
            value.object_type()
        );
        last = Some(back);
    }
    last.expect("ran")
}

fn list_of(n: usize, limits: ListLimits, make: impl Fn(usize) -> Vec<u8>) -> Value {
    let mut l = ListValue::new();
    let items: Vec<Vec<u8>> = (0..n).map(make).collect();
    for chunk in items.chunks(7) {
        l.push_all(chunk, false, limits);
    }
    Value::List(l)
}

#[test]
fn lists_round_trip_in_every_shape() {
    let default = ListLimits::new(-2, 0);
    let deep = ListLimits::new(-2, 1);
    let counted = ListLimits::new(5, 2);
    for (n, limits) in [
        (1, default),
        (100, default),
        (5000, default),
        (5000, deep),
        (40, counted),
    ] {
        let mut options = options();
        options.list = limits;
        let value = list_of(n, limits, |i| format!("element-{i}").into_bytes());
        round_trip(&value, &options);
        let value = list_of(n, limits, |i| (i as i64 - 20).to_string().into_bytes());
        round_trip(&value, &options);
    }
    // Elements too large to share a node (plain nodes), among small ones.
    let value = list_of(5, default, |i| {
        vec![b'a' + i as u8; if i % 2 == 0 { 10_000 } else { 3 }]
    });
    round_trip(&value, &options());
    let Value::List(l) = &value else {
        unreachable!()
    };
    assert_eq!(l.encoding(), "quicklist");
    // A compressed node of incompressible data is still saved readable.
    let mut options = options();
    options.list = deep;
    let value = list_of(3000, deep, |i| {
        format!("{:x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).into_bytes()
    });
    round_trip(&value, &options);
}

#[test]
fn list_encoding_follows_the_readers_limits() {
    let value = list_of(10, ListLimits::new(-2, 0), |i| format!("e{i}").into_bytes());
    let payload = dump::dump(&value, true);
    for (fill, expected) in [
        (-2, "listpack"),
        (10, "listpack"),
        (9, "quicklist"),
        (5, "quicklist"),
    ] {
        let mut options = options();
        options.list = ListLimits::new(fill, 0);
        let back = dump::restore(&payload, &options).expect("restores");
        assert_eq!(back.encoding(), expected, "fill {fill}");
    }
}

fn set_of<M: AsRef<[u8]>>(members: &[M], limits: &SetLimits) -> Value {
    let first = members[0].as_ref();
    let mut s = SetValue::create(first, members.len(), limits);
    s.convert_for_count(members.len(), limits);
    for m in members {
        s.add(m.as_ref(), limits);
    }
    Value::Set(s)
}

#[test]
fn sets_round_trip_in_every_encoding() {
    let limits = SetLimits::default();
    let ints: Vec<String> = (-100..300).map(|i| (i * 1000).to_string()).collect();
    let wide: Vec<String> = [i64::MIN, -1, 0, i64::MAX]
        .iter()
        .map(|i| i.to_string())
        .collect();
    let words: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    let many: Vec<String> = (0..1000).map(|i| format!("member:{i}")).collect();
    for (members, encoding) in [
        (&ints, "intset"),
        (&wide, "intset"),
        (&words, "listpack"),
        (&many, "hashtable"),
    ] {
        let value = set_of(members, &limits);
        assert_eq!(value.encoding(), encoding);
        round_trip(&value, &options());
    }
}

#[test]
fn sets_convert_on_load_as_valkey_does() {
    // A plain set (type 2, from redis 7.0: SADD sl a b) is a listpack in Valkey.
    let payload = hex("0202016101620a00fe642125eb033d0d");
    let mut options = options();
    assert_eq!(
        dump::restore(&payload, &options).expect("ok").encoding(),
        "listpack"
    );
    options.set.listpack_value = 0;
    assert_eq!(
        dump::restore(&payload, &options).expect("ok").encoding(),
        "hashtable"
    );
    // An intset over the intset limit becomes a hashtable.
    let value = set_of(
        &(0..300).map(|i| i.to_string()).collect::<Vec<_>>(),
        &SetLimits::default(),
    );
    let payload = dump::dump(&value, true);
    let mut options = self::options();
    options.set.intset_entries = 299;
    assert_eq!(
        dump::restore(&payload, &options).expect("ok").encoding(),
        "hashtable"
    );
    // Valkey's SET_LISTPACK (type 20): converted on the count only.
    let payload = hex("140d0d0000000200817802817902ff5000ba652f89b43519f7");
    let mut options = self::options();
    let back = dump::restore(&payload, &options).expect("ok");
    assert_eq!(
        contents(&back),
        Contents::Set(vec![b"x".to_vec(), b"y".to_vec()])
    );
    assert_eq!(back.encoding(), "listpack");
    options.set.listpack_value = 0;
    assert_eq!(
        dump::restore(&payload, &options).expect("ok").encoding(),
        "listpack"
    );
    options.set.listpack_entries = 1;
    assert_eq!(
        dump::restore(&payload, &options).expect("ok").encoding(),
        "hashtable"
    );
}

fn hash_of(n: usize, value_len: usize, ttl_every: usize) -> Value {
    let limits = HashLimits {
        max_entries: 512,
        max_value: 64,
    };
    let mut h = HashValue::default();
    for i in 0..n {
        h.set(
            format!("field{i}").as_bytes(),
            &vec![b'v'; value_len],
            false,
            0,
            limits,
        );
        h.convert_if_too_many(limits);
    }
    if ttl_every > 0 {
        for i in (0..n).step_by(ttl_every) {
            h.set_expire(
                format!("field{i}").as_bytes(),
                1_900_000_000_000 + i as i64,
                0,
            );
        }
    }
    Value::Hash(h)
}

#[test]
fn hashes_round_trip_in_every_encoding() {
    for (n, len, ttl, encoding) in [
        (3, 5, 0, "listpack"),
        (600, 5, 0, "hashtable"),
        (3, 100, 0, "hashtable"),
        (10, 5, 3, "hashtable"),
    ] {
        let value = hash_of(n, len, ttl);
        assert_eq!(value.encoding(), encoding);
        let payload = dump::dump(&value, true);
        let footer_version =
            u16::from_le_bytes([payload[payload.len() - 10], payload[payload.len() - 9]]);
        assert_eq!(footer_version, if ttl > 0 { 80 } else { 10 });
        round_trip(&value, &options());
    }
}

#[test]
fn valkey_hash_with_field_expiry_reads() {
    // valkey 9.1: HSET hx f v g w; HPEXPIREAT hx 1900000000123 FIELDS 1 f; DUMP hx.
    let payload = hex("1602016601767b38d360ba01000001670177ffffffffffffffff50006d67a960d0cad2b4");
    let back = dump::restore(&payload, &options()).expect("restores");
    assert_eq!(
        contents(&back),
        Contents::Hash(vec![
            (b"f".to_vec(), b"v".to_vec(), 1_900_000_000_123),
            (b"g".to_vec(), b"w".to_vec(), NO_EXPIRE)
        ])
    );
    assert_eq!(back.encoding(), "hashtable");
    // The same bytes are not a Valkey hash in a Redis-numbered payload.
    let value = hash_of(2, 1, 1);
    let mut payload = dump::dump(&value, false);
    let at = payload.len() - 10;
    payload[at] = 12;
    assert_eq!(
        dump::restore(&payload, &options()),
        Err(RestoreError::VersionOrChecksum)
    );
}

#[test]
fn redis_hashes_with_field_expiry_read() {
    // redis-server 8.0.2: HSET small f v g w n 12345; HPEXPIREAT small 1900000000123 FIELDS 1
    // f; HPEXPIREAT small 1900000000999 FIELDS 1 n; DUMP small (type 25, a listpack of
    // triples).
    let small = hex(
        "197b38d360ba01000030300000000900816602817602f47b38d360ba01000009816e02f1393003f4e73bd3\
         60ba010000098167028177020001ff0c003a843a39e85f53d1",
    );
    let back = dump::restore(&small, &options()).expect("restores");
    assert_eq!(
        contents(&back),
        Contents::Hash(vec![
            (b"f".to_vec(), b"v".to_vec(), 1_900_000_000_123),
            (b"g".to_vec(), b"w".to_vec(), NO_EXPIRE),
            (b"n".to_vec(), b"12345".to_vec(), 1_900_000_000_999),
        ])
    );
    // As Valkey: a hash whose fields expire is a table here.
    assert_eq!(back.encoding(), "hashtable");
    // HSET big f1 v1 long <100 x> f3 33; HPEXPIREAT big 1900000000500 FIELDS 2 f1 f3;
    // DUMP big (type 24: each expiry stored against the earliest, plus one).
    let big = hex(
        "18f439d360ba0100000301026633c02100046c6f6e67c3094064017878e05700017878010266310276310c\
         00868ed6875c6e423b",
    );
    let back = dump::restore(&big, &options()).expect("restores");
    assert_eq!(
        contents(&back),
        Contents::Hash(vec![
            (b"f1".to_vec(), b"v1".to_vec(), 1_900_000_000_500),
            (b"f3".to_vec(), b"33".to_vec(), 1_900_000_000_500),
            (b"long".to_vec(), vec![b'x'; 100], NO_EXPIRE),
        ])
    );
}

/// A DUMP payload of `body` under RDB version `version`, with its checksum.
fn payload_of(body: &[u8], version: u16) -> Vec<u8> {
    let mut payload = body.to_vec();
    payload.extend_from_slice(&version.to_le_bytes());
    let crc = ferrokv_rdb::crc64::checksum(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

#[test]
fn redis_release_candidate_hashes_and_bad_field_expiries() {
    use ferrokv_rdb::encode::Encoder;
    use ferrokv_store::types::listpack::Listpack;
    // Type 22 in Redis 7.4's release candidates: absolute expiries, no leading one.
    let mut e = Encoder::new(false);
    e.u8(22);
    e.length(2);
    for (ttl, field, value) in [
        (1_900_000_000_123u64, &b"f"[..], &b"v"[..]),
        (0, b"g", b"w"),
    ] {
        e.length(ttl);
        e.string(field);
        e.string(value);
    }
    let back = dump::restore(&payload_of(&e.buf, 12), &options()).expect("restores");
    assert_eq!(
        contents(&back),
        Contents::Hash(vec![
            (b"f".to_vec(), b"v".to_vec(), 1_900_000_000_123),
            (b"g".to_vec(), b"w".to_vec(), NO_EXPIRE),
        ])
    );
    // Type 23: the same listpack as 25 without the leading expiry. With no expiry at all
    // the hash stays compact.
    let mut lp = Listpack::new();
    for s in [&b"a"[..], b"1", b"0", b"b", b"2", b"0"] {
        lp.push_back(s);
    }
    let mut e = Encoder::new(false);
    e.u8(23);
    e.string(&lp.to_blob());
    let back = dump::restore(&payload_of(&e.buf, 12), &options()).expect("restores");
    assert_eq!(back.encoding(), "listpack");
    assert_eq!(
        contents(&back),
        Contents::Hash(vec![
            (b"a".to_vec(), b"1".to_vec(), NO_EXPIRE),
            (b"b".to_vec(), b"2".to_vec(), NO_EXPIRE),
        ])
    );
    // Past Redis's 48-bit expiry times, a stored offset that overflows, a listpack not in
    // triples, and a repeated field are refused as bad data.
    let bad_bodies: Vec<Vec<u8>> = vec![
        {
            let mut e = Encoder::new(false);
            e.u8(22);
            e.length(1);
            e.length(1 << 48);
            e.string(b"f");
            e.string(b"v");
            e.buf
        },
        {
            let mut e = Encoder::new(false);
            e.u8(24);
            e.u64_le(u64::MAX - 1);
            e.length(1);
            e.length(5);
            e.string(b"f");
            e.string(b"v");
            e.buf
        },
        {
            let mut lp = Listpack::new();
            for s in [&b"a"[..], b"1", b"0", b"b"] {
                lp.push_back(s);
            }
            let mut e = Encoder::new(false);
            e.u8(23);
            e.string(&lp.to_blob());
            e.buf
        },
        {
            let mut lp = Listpack::new();
            for s in [&b"a"[..], b"1", b"0", b"a", b"2", b"0"] {
                lp.push_back(s);
            }
            let mut e = Encoder::new(false);
            e.u8(25);
            e.u64_le(0);
            e.string(&lp.to_blob());
            e.buf
        },
    ];
    for body in bad_bodies {
        assert!(
            matches!(
                dump::restore(&payload_of(&body, 12), &options()),
                Err(RestoreError::BadData(_))
            ),
            "{body:?}"
        );
    }
    // Under RDB 11, Redis has no type 23 to 25.
    let mut e = Encoder::new(false);
    e.u8(23);
    e.string(&lp.to_blob());
    assert!(matches!(
        dump::restore(&payload_of(&e.buf, 11), &options()),
        Err(RestoreError::BadData(_))
    ));
}

fn zset_of(pairs: &[(&str, f64)], limits: ZSetLimits) -> Value {
    let longest = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZSet::with_hint(pairs.len(), longest, limits);
    for (m, s) in pairs {
        z.insert(m.as_bytes(), *s, limits);
    }
    Value::ZSet(z)
}

#[test]
fn zsets_round_trip_with_odd_scores() {
    let limits = ZSetLimits {
        max_listpack_entries: 128,
        max_listpack_value: 64,
    };
    let odd = [
        ("a", 1.0),
        ("b", 2.5),
        ("c", f64::INFINITY),
        ("d", f64::NEG_INFINITY),
        ("e", 0.1),
        ("f", 1e300),
        ("g", -4.9e-324),
        ("h", 123456789012345680.0),
        ("i", -0.0),
    ];
    for limits in [
        limits,
        ZSetLimits {
            max_listpack_entries: 2,
            max_listpack_value: 64,
        },
    ] {
        let value = zset_of(&odd, limits);
        let mut options = options();
        options.zset = limits;
        round_trip(&value, &options);
    }
    let many: Vec<(String, f64)> = (0..500)
        .map(|i| (format!("m{i}"), f64::from(i) / 3.0))
        .collect();
    let many: Vec<(&str, f64)> = many.iter().map(|(m, s)| (m.as_str(), *s)).collect();
    let value = zset_of(&many, limits);
    assert_eq!(value.encoding(), "skiplist");
    round_trip(&value, &options());
}

#[test]
fn redis_payloads_read() {
    // redis 7.0: RPUSH l a b 1 2; DUMP l.
    let list = dump::restore(
        &hex("1201021111000000040081610281620201010201ff0a006d72713e9b43482b"),
        &options(),
    )
    .expect("list");
    assert_eq!(
        contents(&list),
        Contents::List(vec![
            b"a".to_vec(),
            b"b".to_vec(),
            b"1".to_vec(),
            b"2".to_vec()
        ])
    );
    assert_eq!(list.encoding(), "listpack");
    // redis 7.0: ZADD z 1 a 2.5 b inf c -inf d 0.1 e (LZF-compressed listpack).
    let zset = dump::restore(&hex("11c3343d163d0000000a00816402842d696e660581650293302e3130e00500123114816102010181620283322e350481630283202c0104ff0a0064bda1b90d752382"), &options()).expect("zset");
    let scores: Vec<f64> = match &zset {
        Value::ZSet(z) => z.iter().map(|(_, s)| s).collect(),
        _ => panic!("not a zset"),
    };
    assert_eq!(
        scores,
        vec![f64::NEG_INFINITY, 0.1, 1.0, 2.5, f64::INFINITY]
    );
    assert_eq!(zset.encoding(), "listpack");
}

#[test]
fn corrupt_collections_are_refused() {
    let bad = |body: &[u8]| {
        let mut payload = body.to_vec();
        payload.extend_from_slice(&10u16.to_le_bytes());
        let crc = ferrokv_rdb::crc64::checksum(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        dump::restore(&payload, &options())
    };
    let is_corrupt = |r: Result<Value, RestoreError>| matches!(r, Err(RestoreError::BadData(_)));
    // Duplicate set member (type 2), duplicate hash field (type 4), duplicate zset member.
    assert!(is_corrupt(bad(b"\x02\x02\x01a\x01a")));
    assert!(is_corrupt(bad(b"\x04\x02\x01a\x01x\x01a\x01y")));
    assert!(is_corrupt(bad(
        b"\x05\x02\x01a\0\0\0\0\0\0\xf0\x3f\x01a\0\0\0\0\0\0\0\x40"
    )));
    // Empty collections.
    for body in [
        &b"\x02\x00"[..],
        b"\x04\x00",
        b"\x05\x00",
        b"\x01\x00",
        b"\x12\x00",
    ] {
        match bad(body) {
            Err(RestoreError::BadData(e)) => assert_eq!(e.kind, RdbErrorKind::EmptyKey),
            other => panic!("{other:?}"),
        }
    }
    // An intset out of order, a listpack whose count lies, an unknown container.
    assert!(is_corrupt(bad(b"\x0b\x0c\x02\0\0\0\x02\0\0\0\x02\0\x01\0")));
    assert!(is_corrupt(bad(b"\x10\x0b\x0b\0\0\0\x03\0\x81a\x02\xff")));
    assert!(is_corrupt(bad(b"\x12\x01\x03\x01a")));
    // A zset listpack with a score that is not a number.
    assert!(is_corrupt(bad(
        b"\x11\x0f\x0f\0\0\0\x02\0\x81a\x02\x81x\x02\xff"
    )));
    // Module values.
    match bad(b"\x07\x00") {
        Err(RestoreError::BadData(e)) => assert!(matches!(e.kind, RdbErrorKind::Unsupported(_))),
        other => panic!("{other:?}"),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes after each type byte: an error or a value, never a panic or a
    /// huge allocation.
    #[test]
    fn garbage_never_panics(
        type_byte in proptest::sample::select(vec![1u8, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 16, 17, 18, 20, 22]),
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
    ) {
        for dialect in [Dialect::Redis(10), Dialect::Valkey(80)] {
            let mut d = ferrokv_rdb::decode::Decoder::new(&body[..]);
            let _ = ferrokv_rdb::value::read_value(&mut d, type_byte, &ReadOptions::new(dialect));
        }
    }

    /// Valid payloads with one byte changed: never a panic.
    #[test]
    fn mutated_payloads_never_panic(which in 0usize..6, at in 0usize..4096, xor in 1u8..=255) {
        let values = [
            list_of(300, ListLimits::new(-2, 1), |i| format!("e{i}").into_bytes()),
            set_of(&["1", "2", "300000"], &SetLimits::default()),
            set_of(&["a", "b", "c"], &SetLimits::default()),
            hash_of(5, 3, 2),
            hash_of(5, 3, 0),
            zset_of(&[("a", 1.5), ("b", 2.0)], ZSetLimits { max_listpack_entries: 128, max_listpack_value: 64 }),
        ];
        let payload = dump::dump(&values[which], false);
        let body_len = payload.len() - 10;
        let mut body = payload[..body_len].to_vec();
        let at = at % body.len();
        body[at] ^= xor;
        let dialect = if payload[body_len] == 80 { Dialect::Valkey(80) } else { Dialect::Redis(10) };
        let mut d = ferrokv_rdb::decode::Decoder::new(&body[1..]);
        let _ = ferrokv_rdb::value::read_value(&mut d, body[0], &ReadOptions::new(dialect));
    }
}
