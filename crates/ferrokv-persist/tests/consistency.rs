//! A snapshot taken while writers move amounts between keys (the total stays constant at
//! every instant, but not across two instants) must hold exactly the start total: the file
//! is the keyspace at one instant. Keys created after the start must not be in it.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use ferrokv_persist::load::{LoadOptions, load_from};
use ferrokv_persist::{SaveOptions, Snapshot, SnapshotSink};
use ferrokv_rdb::file::AccessInfo;
use ferrokv_store::access::AccessPolicy;
use ferrokv_store::{Entry, Keyspace, StrValue, Value};
use rand::Rng;

const KEYS: usize = 2000;
const START: i64 = 100;

/// Collects the file in memory.
#[derive(Clone, Default)]
struct MemorySink {
    bytes: Arc<Mutex<Vec<u8>>>,
    committed: Arc<AtomicBool>,
}

impl SnapshotSink for MemorySink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bytes.lock().expect("sink").extend_from_slice(bytes);
        Ok(())
    }
    fn commit(self: Box<Self>) -> io::Result<()> {
        self.committed.store(true, SeqCst);
        Ok(())
    }
    fn discard(self: Box<Self>) {}
}

/// Fails every write after the first `budget` bytes (a full disk).
struct FullDisk {
    budget: usize,
}

impl SnapshotSink for FullDisk {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > self.budget {
            return Err(io::Error::other("No space left on device"));
        }
        self.budget -= bytes.len();
        Ok(())
    }
    fn commit(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
    fn discard(self: Box<Self>) {}
}

fn key(i: usize) -> Vec<u8> {
    format!("counter:{i}").into_bytes()
}

fn options(delay_us: i64) -> SaveOptions {
    SaveOptions {
        compress: true,
        checksum: true,
        access: AccessInfo::None,
        policy: AccessPolicy::Lru,
        aux: vec![(b"redis-bits".to_vec(), b"64".to_vec())],
        aux_at_instant: None,
        version_aux: (Vec::new(), Vec::new()),
        functions: Vec::new(),
        key_save_delay_us: delay_us,
    }
}

fn filled(databases: usize) -> Keyspace {
    let ks = Keyspace::new(databases);
    for i in 0..KEYS {
        let k = key(i);
        ks.lock(&[&k])
            .db(i % databases, &k)
            .insert(&k, Entry::new(Value::Str(StrValue::Int(START)), 0));
    }
    ks
}

fn counter(entry: &mut Entry) -> &mut i64 {
    match &mut entry.value {
        Value::Str(StrValue::Int(n)) => n,
        other => panic!("not a counter: {other:?}"),
    }
}

#[test]
fn a_snapshot_under_cross_shard_writes_is_one_instant() {
    let ks = filled(2);
    let sink = MemorySink::default();
    let done = AtomicBool::new(false);
    let moves_during_save = AtomicU64::new(0);
    // The saver waits 20 µs per key it dumps itself, so writers reach most shards first.
    let snapshot = Snapshot::start(&ks, Box::new(sink.clone()), options(20)).expect("starts");
    std::thread::scope(|s| {
        for writer in 0..3 {
            let (ks, done, moves) = (&ks, &done, &moves_during_save);
            s.spawn(move || {
                let mut rng = rand::rng();
                let mut created = 0;
                while !done.load(SeqCst) {
                    // Two keys of the same database (same parity), usually in two shards.
                    let a = rng.random_range(0..KEYS / 2) * 2 + writer % 2;
                    let b = rng.random_range(0..KEYS / 2) * 2 + writer % 2;
                    if a == b {
                        continue;
                    }
                    let (ka, kb) = (key(a), key(b));
                    let db = a % 2;
                    let mut locked = ks.lock(&[&ka, &kb]);
                    let amount = rng.random_range(1..10);
                    *counter(locked.db(db, &ka).get(&ka, 0).expect("a")) -= amount;
                    *counter(locked.db(db, &kb).get(&kb, 0).expect("b")) += amount;
                    drop(locked);
                    moves.fetch_add(1, SeqCst);
                    // And keys that did not exist at the start.
                    let fresh = format!("new:{writer}:{created}").into_bytes();
                    created += 1;
                    ks.lock(&[&fresh])
                        .db(0, &fresh)
                        .insert(&fresh, Entry::new(Value::Str(StrValue::Int(1)), 0));
                }
            });
        }
        let report = snapshot.run(&ks).expect("saved");
        done.store(true, SeqCst);
        assert_eq!(report.keys, KEYS as u64);
    });
    assert!(sink.committed.load(SeqCst));
    assert!(
        moves_during_save.load(SeqCst) > 100,
        "writers barely ran during the save"
    );

    let bytes = sink.bytes.lock().expect("sink").clone();
    let loaded = Keyspace::new(2);
    let report = load_from(
        &bytes[..],
        &loaded,
        LoadOptions {
            read: ferrokv_rdb::value::ReadOptions::new(ferrokv_rdb::format::Dialect::Redis(10)),
            databases: 2,
            policy: AccessPolicy::Lru,
            now_ms: 0,
            allow_duplicates: false,
            after_key: None,
            expired_names_budget: 0,
        },
    )
    .expect("loads");
    assert_eq!(report.keys_loaded, KEYS as u64);
    let mut total = 0;
    for i in 0..KEYS {
        let k = key(i);
        let mut locked = loaded.lock(&[&k]);
        total += *counter(locked.db(i % 2, &k).get(&k, 0).expect("present"));
    }
    assert_eq!(total, START * KEYS as i64, "the file mixes two instants");
    assert_eq!(loaded.db_len(0) + loaded.db_len(1), KEYS);
    // Meanwhile the live keyspace kept the writers' work.
    assert!(ks.db_len(0) > KEYS / 2);
}

#[test]
fn a_failing_sink_fails_the_save_and_leaves_nothing_pending() {
    let ks = filled(1);
    let snapshot = Snapshot::start(&ks, Box::new(FullDisk { budget: 200 }), options(0))
        .expect("the preamble fits");
    let err = snapshot.run(&ks).expect_err("disk full");
    assert!(err.contains("No space left"), "{err}");
    assert!((0..ferrokv_store::SHARD_COUNT).all(|i| !ks.shard_pending(i)));
    // The keyspace is fully usable and a later save works.
    let sink = MemorySink::default();
    Snapshot::start(&ks, Box::new(sink.clone()), options(0))
        .expect("starts")
        .run(&ks)
        .expect("saves");
    assert!(sink.committed.load(SeqCst));
}

#[test]
fn an_aborted_snapshot_is_discarded() {
    let ks = filled(1);
    let sink = MemorySink::default();
    let snapshot = Snapshot::start(&ks, Box::new(sink.clone()), options(0)).expect("starts");
    snapshot.abort(&ks);
    assert!(snapshot.run(&ks).is_err());
    assert!(!sink.committed.load(SeqCst));
    assert!((0..ferrokv_store::SHARD_COUNT).all(|i| !ks.shard_pending(i)));
}

#[test]
fn expired_keys_are_dropped_on_load_and_ttls_kept() {
    let ks = Keyspace::new(1);
    for (k, expire) in [
        (&b"gone"[..], 1_000),
        (b"kept", 4_000_000_000_000),
        (b"plain", -1),
    ] {
        let mut e = Entry::new(Value::Str(StrValue::from_bytes(b"v")), 0);
        e.expire_at = expire;
        ks.lock(&[k]).db(0, k).insert(k, e);
    }
    let sink = MemorySink::default();
    Snapshot::start(&ks, Box::new(sink.clone()), options(0))
        .expect("starts")
        .run(&ks)
        .expect("saves");
    let bytes = sink.bytes.lock().expect("sink").clone();
    let loaded = Keyspace::new(1);
    let report = load_from(
        &bytes[..],
        &loaded,
        LoadOptions {
            read: ferrokv_rdb::value::ReadOptions::new(ferrokv_rdb::format::Dialect::Redis(10)),
            databases: 1,
            policy: AccessPolicy::Lru,
            now_ms: 2_000,
            allow_duplicates: false,
            after_key: None,
            expired_names_budget: 0,
        },
    )
    .expect("loads");
    assert_eq!((report.keys_loaded, report.keys_expired), (2, 1));
    let mut locked = loaded.lock(&[b"kept"]);
    assert_eq!(
        locked.db(0, b"kept").get(b"kept", 0).map(|e| e.expire_at),
        Some(4_000_000_000_000)
    );
    // Truncated anywhere: an error with an offset, never a panic or a partial success.
    for cut in [5, 20, bytes.len() / 2, bytes.len() - 1] {
        let err = load_from(
            &bytes[..cut],
            &Keyspace::new(1),
            LoadOptions {
                read: ferrokv_rdb::value::ReadOptions::new(ferrokv_rdb::format::Dialect::Redis(10)),
                databases: 1,
                policy: AccessPolicy::Lru,
                now_ms: 0,
                allow_duplicates: false,
                after_key: None,
                expired_names_budget: 0,
            },
        )
        .expect_err("truncated");
        assert!(err.offset().is_some(), "{err}");
    }
}
