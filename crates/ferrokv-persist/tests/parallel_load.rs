//! The loader frames keys on one thread and decodes them on others; what it loads, and the
//! error it reports for a damaged file, must be exactly what reading the file from start to
//! end gives: every key with an equal value, or the same error at the same offset.

use ferrokv_persist::load::{LoadError, LoadOptions, load_from};
use ferrokv_rdb::RdbResult;
use ferrokv_rdb::encode::Encoder;
use ferrokv_rdb::file::{self, FileReader, Item};
use ferrokv_rdb::value::{Target, write_value};
use ferrokv_store::access::AccessPolicy;
use ferrokv_store::types::hash::{HashLimits, HashValue};
use ferrokv_store::types::zset::{ZSet, ZSetLimits};
use ferrokv_store::{Entry, Keyspace, ListLimits, ListValue, NO_EXPIRE, SetLimits, SetValue};
use ferrokv_store::{StrValue, Value};
use rand::{Rng, SeedableRng};

fn options() -> LoadOptions {
    LoadOptions {
        read: ferrokv_rdb::value::ReadOptions::new(ferrokv_rdb::format::Dialect::Redis(10)),
        databases: 16,
        policy: AccessPolicy::from_config("noeviction", 10, 1),
        // Nothing counts as expired: every key is decoded by both readers.
        now_ms: i64::MIN,
        allow_duplicates: false,
        after_key: None,
        expired_names_budget: 0,
    }
}

/// One value of each family, in compact and in large encodings, by `i`.
fn value(i: usize) -> Value {
    let hash_limits = HashLimits {
        max_entries: 128,
        max_value: 64,
    };
    match i % 9 {
        0 => Value::Str(StrValue::from_bytes(format!("{i}").as_bytes())),
        1 => Value::Str(StrValue::from_bytes(
            format!("value-{i}-{}", "abc".repeat(i % 40)).as_bytes(),
        )),
        2 => {
            let mut list = ListValue::new();
            let items: Vec<String> = (0..(i % 300)).map(|j| format!("item:{j}")).collect();
            list.push_all(&items, false, ListLimits::new(-2, 0));
            list.push_all(&["x"], false, ListLimits::new(-2, 0));
            Value::List(list)
        }
        3 | 4 => {
            let mut hash = HashValue::default();
            for j in 0..(1 + i % 200) {
                let field = format!("field:{j}");
                let value = if j % 7 == 0 {
                    format!("{j}")
                } else {
                    format!("v{i}.{j}")
                };
                hash.set(field.as_bytes(), value.as_bytes(), false, 0, hash_limits);
            }
            hash.convert_if_too_many(hash_limits);
            Value::Hash(hash)
        }
        5 | 6 => {
            let mut set = SetValue::new_intset();
            for j in 0..(1 + i % 150) {
                let member = if i.is_multiple_of(2) {
                    format!("{j}")
                } else {
                    format!("m:{j}")
                };
                set.add(member.as_bytes(), &SetLimits::default());
            }
            Value::Set(set)
        }
        _ => {
            let pairs = (0..(1 + i % 200))
                .map(|j| {
                    (
                        format!("member:{j}").into_bytes().into_boxed_slice(),
                        j as f64 / 4.0,
                    )
                })
                .collect();
            Value::ZSet(ZSet::from_sorted(
                pairs,
                ZSetLimits {
                    max_listpack_entries: 128,
                    max_listpack_value: 64,
                },
            ))
        }
    }
}

fn file(keys: usize) -> Vec<u8> {
    file_expiring_at(keys, NO_EXPIRE)
}

/// [`file`] with every key's expiry at `expire_at`.
fn file_expiring_at(keys: usize, expire_at: i64) -> Vec<u8> {
    let entry = |value| {
        let mut entry = Entry::new(value, 0);
        entry.expire_at = expire_at;
        entry
    };
    let mut e = Encoder::new(true);
    file::write_header(&mut e, Target::Rdb10);
    file::write_aux(&mut e, b"redis-ver", b"7.0.15");
    file::write_select_db(&mut e, 0);
    file::write_resize_db(&mut e, keys, 0);
    for i in 0..keys {
        file::write_key(
            &mut e,
            format!("key:{i}").as_bytes(),
            &entry(value(i)),
            None,
            Target::Rdb10,
        );
    }
    file::write_select_db(&mut e, 3);
    file::write_key(&mut e, b"in-db-3", &entry(value(4)), None, Target::Rdb10);
    finish(e)
}

/// What a start-to-end read finds: the keys (database, key, value) or the first error.
fn read_sequentially(bytes: &[u8]) -> RdbResult<Vec<(usize, Vec<u8>, Value)>> {
    let mut reader = FileReader::new(bytes)?;
    let mut db = 0;
    let mut keys = Vec::new();
    loop {
        match reader.next_item()? {
            Item::Eof => return Ok(keys),
            Item::SelectDb(n) => db = n,
            Item::Key { key, value, .. } => keys.push((db, key, value)),
            _ => {}
        }
    }
}

/// A value's bytes as the writer puts them: the comparison ignores in-memory layouts.
fn written(value: &Value) -> Vec<u8> {
    let mut e = Encoder::new(false);
    write_value(&mut e, value, Target::Valkey80);
    e.buf
}

#[test]
fn a_whole_file_loads_every_key_with_its_value() {
    let bytes = file(3000);
    let keyspace = Keyspace::new(16);
    let report = load_from(&bytes[..], &keyspace, options()).expect("loads");
    let expected = read_sequentially(&bytes).expect("reads");
    assert_eq!(report.keys_loaded, expected.len() as u64);
    assert_eq!(report.bytes, bytes.len() as u64);
    for (db, key, value) in &expected {
        let mut locked = keyspace.lock(&[key]);
        let loaded = locked
            .db(*db, key)
            .get(key, 0)
            .unwrap_or_else(|| panic!("{} missing", String::from_utf8_lossy(key)));
        assert_eq!(loaded.expire_at, NO_EXPIRE);
        assert_eq!(
            written(&loaded.value),
            written(value),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
}

/// Flipped bytes anywhere: the parallel load fails exactly where a sequential read fails,
/// and loads when it loads (a flip can also make two keys equal or name a database past
/// the configured count: errors only the loader checks).
#[test]
fn damaged_files_fail_at_the_same_offset_as_a_sequential_read() {
    damaged_copies_fail_like_a_sequential_read(&file(150), options());
}

/// Keys that have expired are dropped, but their values are still read: damage inside one
/// is reported as a sequential read reports it (Valkey decodes a value before it looks at
/// the expiry too), not skipped.
#[test]
fn damage_in_expired_keys_is_reported_too() {
    let expired = LoadOptions {
        now_ms: i64::MAX,
        allow_duplicates: false,
        after_key: None,
        expired_names_budget: 0,
        ..options()
    };
    damaged_copies_fail_like_a_sequential_read(&file_expiring_at(150, 1_000), expired);
}

/// 300 copies of `original`, each with a few flipped bits, loaded with `options`.
fn damaged_copies_fail_like_a_sequential_read(original: &[u8], options: LoadOptions) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut failures = 0;
    for round in 0..300 {
        let mut bytes = original.to_vec();
        for _ in 0..1 + round % 3 {
            let at = rng.random_range(9..bytes.len());
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        // Half the rounds keep a valid checksum so that value decoding errors are reached
        // rather than every damage ending in a checksum mismatch.
        if round % 2 == 0 {
            let body = bytes.len() - 8;
            bytes.truncate(body);
            file::append_checksum(&mut bytes, true);
        }
        let sequential = read_sequentially(&bytes);
        let parallel = load_from(&bytes[..], &Keyspace::new(16), options);
        let sequential_at = sequential.as_ref().err().map_or(u64::MAX, |e| e.offset);
        match (&sequential, &parallel) {
            (Ok(keys), Ok(report)) => {
                assert_eq!(report.keys_loaded + report.keys_expired, keys.len() as u64)
            }
            // Errors only a loader sees, found before any the plain read finds.
            (_, Err(LoadError::DuplicateKey { offset, .. })) if *offset < sequential_at => {}
            (_, Err(LoadError::TooManyDatabases { .. })) => {}
            (Err(_), Err(e)) => {
                failures += 1;
                assert_eq!(
                    Some(sequential_at),
                    e.offset(),
                    "round {round}: {e} vs {sequential:?}"
                );
            }
            _ => panic!("round {round}: sequential {sequential:?}, parallel {parallel:?}"),
        }
    }
    assert!(failures > 80, "only {failures} damaged files failed");
}

#[test]
fn a_truncated_file_fails_where_it_ends() {
    let bytes = file(200);
    for cut in [
        9,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        let err = load_from(&bytes[..cut], &Keyspace::new(16), options()).expect_err("truncated");
        let sequential = read_sequentially(&bytes[..cut]).expect_err("truncated");
        assert_eq!(err.offset(), Some(sequential.offset), "cut at {cut}");
        assert!(ferrokv_persist::load::is_truncation(&err), "{err}");
    }
}

#[test]
fn a_key_twice_is_refused_where_the_second_starts() {
    let mut e = Encoder::new(false);
    file::write_header(&mut e, Target::Rdb10);
    file::write_select_db(&mut e, 0);
    for i in 0..45 {
        let key = format!("k{i}");
        file::write_key(
            &mut e,
            key.as_bytes(),
            &Entry::new(value(i), 0),
            None,
            Target::Rdb10,
        );
    }
    let second = e.buf.len() as u64;
    file::write_key(&mut e, b"k7", &Entry::new(value(1), 0), None, Target::Rdb10);
    file::write_key(
        &mut e,
        b"k46",
        &Entry::new(value(1), 0),
        None,
        Target::Rdb10,
    );
    let bytes = finish(e);
    match load_from(&bytes[..], &Keyspace::new(16), options()) {
        Err(LoadError::DuplicateKey { offset, key }) => {
            assert_eq!((offset, key), (second, b"k7".to_vec()));
        }
        other => panic!("{other:?}"),
    }
}

/// The file `e` wrote, closed: EOF marker and checksum.
fn finish(mut e: Encoder) -> Vec<u8> {
    file::write_eof(&mut e);
    let mut bytes = e.buf;
    file::append_checksum(&mut bytes, true);
    bytes
}
