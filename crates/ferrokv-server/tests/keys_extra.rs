//! Differential tests of the keyspace commands that a case file cannot express: many random
//! glob patterns against many random keys (KEYS, compared sorted with the oracle), and OBJECT
//! FREQ/IDLETIME on servers started under an LFU policy.

mod common;

use common::{RawClient, show, split_elements, start_ferrokv, start_valkey};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, alphabet: &[u8], max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

fn sorted_elements(reply: &[u8]) -> Vec<Vec<u8>> {
    let (_, mut items) = split_elements(reply).unwrap_or_default();
    items.sort();
    items
}

#[test]
fn random_patterns_match_like_valkey() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let mut theirs = RawClient::connect(valkey.port).expect("connect valkey");
    let mut rng = Rng(0x5eed_1234_abcd_0001);

    const KEY_BYTES: &[u8] = b"abcAB-]^\\*?[\xe9\x80\x7f";
    const PATTERN_BYTES: &[u8] = b"abcAB*?[]^-\\\xe9\x80";
    for client in [&mut ours, &mut theirs] {
        client.command(&["FLUSHALL"]);
    }
    let mut keys = Vec::new();
    for _ in 0..300 {
        keys.push(rng.bytes(KEY_BYTES, 8));
    }
    for key in &keys {
        for client in [&mut ours, &mut theirs] {
            client.command(&[&b"SET"[..], key, b"v"]);
        }
    }
    assert_eq!(ours.command(&["DBSIZE"]), theirs.command(&["DBSIZE"]));

    let mut failures = Vec::new();
    for _ in 0..600 {
        let pattern = rng.bytes(PATTERN_BYTES, 7);
        let command = [&b"KEYS"[..], &pattern];
        let (a, b) = (ours.command(&command), theirs.command(&command));
        if sorted_elements(&a) != sorted_elements(&b) {
            failures.push(format!(
                "KEYS {}\n   ferrokv: {}\n    valkey: {}",
                pattern.escape_ascii(),
                show(&a),
                show(&b)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} patterns differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn randomkey_ends_on_a_database_of_expired_keys() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    let mut pipeline = Vec::new();
    const KEYS: usize = 20_000;
    for i in 0..KEYS {
        let key = format!("dying:{i}");
        pipeline.extend(common::encode(&["SET", key.as_str(), "v"]));
        pipeline.extend(common::encode(&["PEXPIRE", key.as_str(), "20"]));
    }
    client.send_raw(&pipeline);
    for _ in 0..KEYS {
        assert_eq!(client.read_reply().expect("reply"), b"+OK\r\n".to_vec());
        assert_eq!(client.read_reply().expect("reply"), b":1\r\n".to_vec());
    }
    std::thread::sleep(std::time::Duration::from_millis(60));
    let started = std::time::Instant::now();
    assert_eq!(client.command(&["RANDOMKEY"]), b"$-1\r\n".to_vec());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    client.command(&["SET", "live", "v"]);
    assert_eq!(client.command(&["RANDOMKEY"]), b"$4\r\nlive\r\n".to_vec());
}

#[test]
fn object_freq_and_idletime_under_lfu() {
    let args = ["--maxmemory-policy", "allkeys-lfu"];
    let ferrokv = start_ferrokv(&args);
    let valkey = start_valkey(&args);
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let mut theirs = RawClient::connect(valkey.port).expect("connect valkey");
    let script: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["OBJECT", "FREQ", "k"],
        &["OBJECT", "IDLETIME", "k"],
        &["OBJECT", "FREQ", "nokey"],
        &["OBJECT", "IDLETIME", "nokey"],
        &["OBJECT", "ENCODING", "k"],
    ];
    for command in script {
        let (a, b) = (ours.command(command), theirs.command(command));
        assert_eq!(show(&a), show(&b), "{command:?}: ferrokv and valkey differ");
    }
}

/// The integer of a RESP integer reply.
fn int_reply(reply: &[u8]) -> i64 {
    std::str::from_utf8(reply)
        .ok()
        .and_then(|s| s.strip_prefix(':'))
        .and_then(|s| s.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {}", show(reply)))
}

/// TYPE, EXISTS, the TTL family and OBJECT leave the access time alone; GET and TOUCH update
/// it. Idle times are whole seconds of a clock each server samples on its own, so the check
/// allows a second's slack rather than comparing bytes.
#[test]
fn introspection_does_not_touch_the_access_time() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let mut clients = [
        RawClient::connect(ferrokv.port).expect("connect ferrokv"),
        RawClient::connect(valkey.port).expect("connect valkey"),
    ];
    for c in &mut clients {
        for key in ["quiet", "touched", "read"] {
            c.command(&["SET", key, "v"]);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(2200));
    for (c, name) in clients.iter_mut().zip(["ferrokv", "valkey"]) {
        for command in ["TYPE", "EXISTS", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            c.command(&[command, "quiet"]);
        }
        c.command(&["OBJECT", "ENCODING", "quiet"]);
        c.command(&["OBJECT", "REFCOUNT", "quiet"]);
        c.command(&["TOUCH", "touched"]);
        c.command(&["GET", "read"]);
        let quiet = int_reply(&c.command(&["OBJECT", "IDLETIME", "quiet"]));
        assert!((2..=3).contains(&quiet), "{name}: quiet idle {quiet}");
        for key in ["touched", "read"] {
            let idle = int_reply(&c.command(&["OBJECT", "IDLETIME", key]));
            assert!(idle <= 1, "{name}: {key} idle {idle}");
        }
    }
}

/// Large values deleted by UNLINK (and DEL, with `lazyfree-lazy-user-del yes`) and the
/// databases FLUSHALL ASYNC detaches are freed on the background thread and counted in
/// `lazyfreed_objects`, as in Valkey: a value worth more than 64 allocations counts one
/// object, a flushed database one per key; small and compact values are freed in place.
#[test]
fn lazyfreed_objects_counts_what_went_to_the_background_thread() {
    let counts = |port: u16| {
        let mut c = RawClient::connect(port).expect("connects");
        let lazyfreed = |c: &mut RawClient| {
            assert!(
                common::wait_for(10, || {
                    common::info_field_of(c, "memory", "lazyfree_pending_objects").as_deref()
                        == Some("0")
                }),
                "the background frees finish"
            );
            common::info_field_of(c, "memory", "lazyfreed_objects").unwrap_or_default()
        };
        let big: Vec<String> = (0..200).map(|i| format!("member:{i}")).collect();
        let mut out = Vec::new();
        for (delete, setting) in [("UNLINK", "yes"), ("DEL", "yes"), ("DEL", "no")] {
            c.command(&["CONFIG", "SET", "lazyfree-lazy-user-del", setting]);
            c.command(&["CONFIG", "RESETSTAT"]);
            let mut sadd = vec!["SADD", "big"];
            sadd.extend(big.iter().map(String::as_str));
            c.command(&sadd);
            c.command(&["SADD", "small", "a", "b"]);
            c.command(&["RPUSH", "list", "a", "b", "c"]);
            c.command(&[delete, "big", "small", "list"]);
            out.push(format!(
                "{delete} user-del={setting}: {}",
                lazyfreed(&mut c)
            ));
        }
        c.command(&["CONFIG", "RESETSTAT"]);
        for i in 0..10 {
            c.command(&["SET", &format!("k{i}"), "v"]);
        }
        c.command(&["FLUSHALL", "ASYNC"]);
        out.push(format!("FLUSHALL ASYNC: {}", lazyfreed(&mut c)));
        c.command(&["CONFIG", "RESETSTAT"]);
        c.command(&["SET", "k", "v"]);
        c.command(&["FLUSHALL", "SYNC"]);
        out.push(format!("FLUSHALL SYNC: {}", lazyfreed(&mut c)));
        out
    };
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let ours = counts(ferrokv.port);
    assert_eq!(ours, counts(valkey.port));
    assert_eq!(ours[0], "UNLINK user-del=yes: 1", "{ours:?}");
}
