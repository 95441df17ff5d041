//! Hash behaviour that cannot be byte-compared with the oracle: HRANDFIELD's randomness
//! (distribution, uniqueness, repetition) and the active expiry of hash fields.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{RawClient, split_elements, start_ferrokv};

/// The bulk strings of an array reply.
fn bulks(reply: &[u8]) -> Vec<Vec<u8>> {
    let (_, items) = split_elements(reply).unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let text = item.strip_suffix(b"\r\n").unwrap_or(item);
            let start = text.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            text[start..].to_vec()
        })
        .collect()
}

fn fill(client: &mut RawClient, key: &str, fields: usize) {
    let mut args = vec!["HSET".to_string(), key.to_string()];
    for i in 0..fields {
        args.push(format!("f{i}"));
        args.push(format!("v{i}"));
    }
    assert_eq!(client.command(&args), format!(":{fields}\r\n").into_bytes());
}

/// Each of `fields` fields is drawn about equally often by single picks and by negative
/// counts: every count stays within 8 standard deviations of its expectation, and the counts'
/// chi-square statistic below its mean plus 6 of its standard deviations. (At 5 standard
/// deviations one of 1000 fields drawn 20 times each on average crossed the bound in about
/// 1 run in 200 of a uniform draw; these bounds fail one in millions.)
fn check_uniform(client: &mut RawClient, key: &str, fields: usize) {
    let draws = 20_000;
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for _ in 0..draws / 1000 {
        let reply = client.command(&["HRANDFIELD", key, "-1000"]);
        let picked = bulks(&reply);
        assert_eq!(picked.len(), 1000);
        for field in picked {
            *counts.entry(field).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), fields, "every field drawn at least once");
    let p = 1.0 / fields as f64;
    let expected = draws as f64 * p;
    let sigma = (draws as f64 * p * (1.0 - p)).sqrt();
    for (field, n) in &counts {
        let off = (*n as f64 - expected).abs();
        assert!(
            off < 8.0 * sigma,
            "{}: drawn {n} times, expected {expected:.0} ± {sigma:.0}",
            String::from_utf8_lossy(field)
        );
    }
    let chi_square: f64 = counts
        .values()
        .map(|&n| (n as f64 - expected).powi(2) / expected)
        .sum();
    let freedom = (fields - 1) as f64;
    assert!(
        chi_square < freedom + 6.0 * (2.0 * freedom).sqrt(),
        "chi-square {chi_square:.0} with {freedom} degrees of freedom"
    );
    let mut single: HashMap<Vec<u8>, usize> = HashMap::new();
    for _ in 0..2000 {
        let reply = client.command(&["HRANDFIELD", key]);
        *single.entry(reply).or_default() += 1;
    }
    assert!(single.len() > fields / 2, "single picks vary");
}

#[test]
fn hrandfield_is_uniform_in_both_encodings() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    fill(&mut client, "small", 10);
    assert_eq!(
        client.command(&["OBJECT", "ENCODING", "small"]),
        b"$8\r\nlistpack\r\n"
    );
    check_uniform(&mut client, "small", 10);
    fill(&mut client, "large", 1000);
    assert_eq!(
        client.command(&["OBJECT", "ENCODING", "large"]),
        b"$9\r\nhashtable\r\n"
    );
    check_uniform(&mut client, "large", 1000);
}

#[test]
fn hrandfield_counts_follow_valkeys_rules() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    for (key, size) in [("small", 20), ("large", 600)] {
        fill(&mut client, key, size);
        // Positive counts below the size: distinct fields, every pick a real field.
        for count in [1, size / 4, size / 2, size - 1] {
            let reply = client.command(&["HRANDFIELD", key, &count.to_string()]);
            let mut fields = bulks(&reply);
            assert_eq!(fields.len(), count);
            fields.sort();
            fields.dedup();
            assert_eq!(fields.len(), count, "{key} {count}: no repeats");
            assert!(fields.iter().all(|f| f.starts_with(b"f")));
        }
        // At least the size: the whole hash once.
        let reply = client.command(&["HRANDFIELD", key, &(size * 2).to_string()]);
        assert_eq!(bulks(&reply).len(), size);
        // WITHVALUES pairs each field with its own value.
        let reply = client.command(&["HRANDFIELD", key, "-50", "WITHVALUES"]);
        let items = bulks(&reply);
        assert_eq!(items.len(), 100);
        for pair in items.chunks(2) {
            assert_eq!(pair[0][1..], pair[1][1..], "field and value match");
        }
    }
    // Negative counts repeat: 100 picks from 20 fields must repeat some.
    let reply = client.command(&["HRANDFIELD", "small", "-100"]);
    let mut fields = bulks(&reply);
    assert_eq!(fields.len(), 100);
    fields.sort();
    fields.dedup();
    assert!(fields.len() <= 20);
}

fn info_field(client: &mut RawClient, section: &str, name: &str) -> Option<String> {
    let reply = client.command(&["INFO", section]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")).map(str::to_string))
}

#[test]
fn expired_fields_are_reclaimed_without_being_read() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    // A hash whose fields all expire, one that keeps a field, across many fields.
    fill(&mut client, "gone", 3000);
    fill(&mut client, "kept", 3000);
    let mut args: Vec<String> = ["HPEXPIRE", "gone", "50", "FIELDS", "3000"]
        .map(String::from)
        .to_vec();
    args.extend((0..3000).map(|i| format!("f{i}")));
    let reply = client.command(&args);
    assert_eq!(bulks(&reply).len(), 3000);
    args[1] = "kept".into();
    args[4] = "2999".into();
    args.pop();
    client.command(&args);
    let keyspace = info_field(&mut client, "keyspace", "db0").unwrap_or_default();
    assert!(
        keyspace.ends_with("keys_with_volatile_items=2"),
        "{keyspace}"
    );

    // Only INFO and DBSIZE from here, which read no key: the cron must do the work.
    let started = Instant::now();
    loop {
        let fields = info_field(&mut client, "stats", "expired_fields").unwrap_or_default();
        let dbsize = client.command(&["DBSIZE"]);
        if fields == "5999" && dbsize == b":1\r\n" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not reclaimed in time: expired_fields={fields} dbsize={}",
            String::from_utf8_lossy(&dbsize)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(client.command(&["HLEN", "kept"]), b":1\r\n");
    assert_eq!(client.command(&["EXISTS", "gone"]), b":0\r\n");
    assert_eq!(
        info_field(&mut client, "stats", "expired_keys").as_deref(),
        Some("0")
    );
    let keyspace = info_field(&mut client, "keyspace", "db0").unwrap_or_default();
    assert!(
        keyspace.ends_with("keys_with_volatile_items=0"),
        "{keyspace}"
    );
}
