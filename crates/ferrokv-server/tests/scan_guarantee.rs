//! SCAN's guarantee through the server: a key present from the first call of a full iteration
//! to the last is returned, while other clients make the shards' tables grow and shrink
//! between (and during) the calls. Also: a full iteration of a stable keyspace returns each
//! key exactly once, honours MATCH and TYPE, and never returns expired keys.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{RawClient, encode, split_elements, start_ferrokv};

/// The payload of a RESP bulk string reply.
fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    assert_eq!(
        reply.first(),
        Some(&b'$'),
        "not a bulk: {}",
        reply.escape_ascii()
    );
    let start = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("bulk header")
        + 2;
    reply[start..reply.len() - 2].to_vec()
}

/// One SCAN call: the next cursor and the keys returned.
fn scan_call(client: &mut RawClient, cursor: u64, extra: &[&str]) -> (u64, Vec<Vec<u8>>) {
    let cursor_arg = cursor.to_string();
    let mut args = vec!["SCAN", cursor_arg.as_str()];
    args.extend_from_slice(extra);
    let reply = client.command(&args);
    let (_, parts) =
        split_elements(&reply).unwrap_or_else(|| panic!("SCAN reply: {}", reply.escape_ascii()));
    assert_eq!(parts.len(), 2, "SCAN reply: {}", reply.escape_ascii());
    let next = String::from_utf8(bulk_payload(&parts[0]))
        .expect("cursor text")
        .parse()
        .expect("cursor number");
    let (_, keys) = split_elements(&parts[1]).expect("SCAN keys array");
    (next, keys.iter().map(|k| bulk_payload(k)).collect())
}

/// A full iteration; returns every key of every call (with repeats) and the number of calls.
fn full_scan(client: &mut RawClient, extra: &[&str]) -> (Vec<Vec<u8>>, usize) {
    let mut all = Vec::new();
    let mut cursor = 0;
    let mut calls = 0;
    loop {
        let (next, keys) = scan_call(client, cursor, extra);
        all.extend(keys);
        calls += 1;
        assert!(calls < 1_000_000, "SCAN did not finish");
        if next == 0 {
            return (all, calls);
        }
        cursor = next;
    }
}

/// Sends `commands` in one pipeline and reads every reply, checking none is an error.
fn pipeline(client: &mut RawClient, commands: &[Vec<String>]) {
    let mut out = Vec::new();
    for c in commands {
        out.extend(encode(c));
    }
    client.send_raw(&out);
    for _ in commands {
        let reply = client.read_reply().expect("reply");
        assert_ne!(reply.first(), Some(&b'-'), "{}", reply.escape_ascii());
    }
}

fn set_commands(keys: impl Iterator<Item = String>) -> Vec<Vec<String>> {
    keys.map(|k| vec!["SET".into(), k, "v".into()]).collect()
}

#[test]
fn keys_present_throughout_are_returned_while_tables_resize() {
    let server = start_ferrokv(&[]);
    let mut scanner = RawClient::connect(server.port).expect("connect");
    const STABLE: usize = 3000;
    pipeline(
        &mut scanner,
        &set_commands((0..STABLE).map(|i| format!("stable:{i}"))),
    );

    // The churner fills the database with thousands of other keys and empties it again, over
    // and over, so every shard's table doubles and halves many times during each scan.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let churner = {
        let (stop, rounds, port) = (stop.clone(), rounds.clone(), server.port);
        std::thread::spawn(move || {
            let mut client = RawClient::connect(port).expect("connect churner");
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let size = [2000, 12000, 500, 6000][(round % 4) as usize];
                let keys = |r: u64| (0..size).map(move |i| format!("churn:{r}:{i}"));
                for chunk in set_commands(keys(round)).chunks(500) {
                    pipeline(&mut client, chunk);
                }
                let dels: Vec<Vec<String>> =
                    keys(round).map(|k| vec!["DEL".to_string(), k]).collect();
                for chunk in dels.chunks(500) {
                    pipeline(&mut client, chunk);
                }
                round += 1;
                rounds.store(round, Ordering::Relaxed);
            }
        })
    };

    let started = Instant::now();
    let mut scans = 0;
    // Several full iterations, at least one of which overlaps two churn rounds, within a
    // bounded time.
    while scans < 4
        || (rounds.load(Ordering::Relaxed) < 4 && started.elapsed() < Duration::from_secs(30))
    {
        let (keys, calls) = full_scan(&mut scanner, &["COUNT", "7"]);
        let seen: BTreeSet<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let missing: Vec<usize> = (0..STABLE)
            .filter(|i| !seen.contains(format!("stable:{i}").as_bytes()))
            .collect();
        assert!(
            missing.is_empty(),
            "scan {scans} ({calls} calls) missed {} stable keys, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        scans += 1;
        eprintln!(
            "scan {scans}: {calls} calls, {} keys, churn rounds so far {}",
            keys.len(),
            rounds.load(Ordering::Relaxed)
        );
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().expect("churner");
    assert!(
        rounds.load(Ordering::Relaxed) >= 1,
        "the churner never completed a round: the test did not exercise resizing"
    );
}

#[test]
fn a_stable_keyspace_is_returned_exactly_once_with_match_and_type() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    pipeline(
        &mut client,
        &set_commands((0..1000).map(|i| format!("key:{i}"))),
    );
    pipeline(
        &mut client,
        &set_commands((0..100).map(|i| format!("other:{i}"))),
    );

    for count in ["1", "10", "1000"] {
        let (keys, _) = full_scan(&mut client, &["COUNT", count]);
        let mut times: HashMap<&[u8], usize> = HashMap::new();
        for k in &keys {
            *times.entry(k).or_default() += 1;
        }
        assert_eq!(times.len(), 1100, "COUNT {count}");
        assert!(
            times.values().all(|&n| n == 1),
            "COUNT {count}: a key came twice"
        );
    }

    let (matched, _) = full_scan(&mut client, &["MATCH", "other:*", "COUNT", "5"]);
    let matched: BTreeSet<Vec<u8>> = matched.into_iter().collect();
    let expected: BTreeSet<Vec<u8>> = (0..100)
        .map(|i| format!("other:{i}").into_bytes())
        .collect();
    assert_eq!(matched, expected);

    let (strings, _) = full_scan(&mut client, &["TYPE", "string", "MATCH", "key:1*"]);
    assert_eq!(strings.len(), 111);
    let (lists, _) = full_scan(&mut client, &["TYPE", "list"]);
    assert!(lists.is_empty());

    // A large COUNT covers the whole (small) keyspace in one call.
    let (cursor, keys) = scan_call(&mut client, 0, &["COUNT", "100000"]);
    assert_eq!((cursor, keys.len()), (0, 1100));
}

#[test]
fn expired_keys_are_never_returned() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    pipeline(
        &mut client,
        &set_commands((0..500).map(|i| format!("live:{i}"))),
    );
    let dying: Vec<Vec<String>> = (0..500)
        .flat_map(|i| {
            let key = format!("dying:{i}");
            [
                vec!["SET".into(), key.clone(), "v".into()],
                vec!["PEXPIRE".into(), key, "30".into()],
            ]
        })
        .collect();
    pipeline(&mut client, &dying);
    std::thread::sleep(Duration::from_millis(80));
    let (keys, _) = full_scan(&mut client, &["COUNT", "3"]);
    assert!(keys.iter().all(|k| k.starts_with(b"live:")));
    assert_eq!(keys.len(), 500);
    let reply = client.command(&["RANDOMKEY"]);
    assert!(
        bulk_payload(&reply).starts_with(b"live:"),
        "{}",
        reply.escape_ascii()
    );
}
