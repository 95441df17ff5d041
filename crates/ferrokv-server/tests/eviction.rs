//! maxmemory and eviction, end to end: a real server with a small memory limit, written far
//! past it.
//!
//! Memory is checked through INFO's `used_memory` when the server has INFO, and always
//! through the process's resident set size, which cannot grow with the data written if
//! eviction works. Tests that need keys with a TTL use `SET ... PX`.

mod common;

use std::time::Duration;

use common::{RawClient, ServerProcess, encode, start_ferrokv, start_valkey};

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
const LIMIT: u64 = 4 << 20;

fn start(policy: &str, extra: &[&str]) -> (ServerProcess, RawClient) {
    let limit = LIMIT.to_string();
    let mut args = vec!["--maxmemory", &limit, "--maxmemory-policy", policy];
    args.extend_from_slice(extra);
    let server = start_ferrokv(&args);
    let client = RawClient::connect(server.port).expect("connect");
    (server, client)
}

/// Sends `commands` in one pipeline and returns the replies.
fn pipeline(c: &mut RawClient, commands: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cmd in commands {
        out.extend(encode(cmd));
    }
    c.send_raw(&out);
    commands
        .iter()
        .map(|_| c.read_reply().expect("reply"))
        .collect()
}

fn set(key: &str, value_len: usize, px: Option<u64>) -> Vec<Vec<u8>> {
    let mut cmd = vec![
        b"SET".to_vec(),
        key.as_bytes().to_vec(),
        vec![b'v'; value_len],
    ];
    if let Some(ms) = px {
        cmd.push(b"PX".to_vec());
        cmd.push(ms.to_string().into_bytes());
    }
    cmd
}

/// Writes `count` keys `prefix:N` with values of 50 to 300 bytes (inline and boxed values),
/// in pipelines of 500; returns the replies that were not +OK.
fn write_keys(c: &mut RawClient, prefix: &str, count: usize, px: Option<u64>) -> Vec<Vec<u8>> {
    let mut failures = Vec::new();
    for start in (0..count).step_by(500) {
        let batch: Vec<_> = (start..(start + 500).min(count))
            .map(|i| set(&format!("{prefix}:{i}"), 50 + (i * 37) % 250, px))
            .collect();
        failures.extend(pipeline(c, &batch).into_iter().filter(|r| r != b"+OK\r\n"));
    }
    failures
}

fn int_reply(reply: &[u8]) -> u64 {
    std::str::from_utf8(&reply[1..])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {}", common::show(reply)))
}

fn dbsize(c: &mut RawClient) -> u64 {
    int_reply(&c.command(&["DBSIZE"]))
}

/// INFO's used_memory, when the server has INFO.
fn info_used_memory(c: &mut RawClient) -> Option<u64> {
    let reply = c.command(&["INFO", "memory"]);
    let text = String::from_utf8_lossy(&reply);
    text.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
}

fn rss(server: &ServerProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

fn supports_px(c: &mut RawClient) -> bool {
    let ok = c.command(&["SET", "probe", "v", "PX", "100000"]) == b"+OK\r\n";
    c.command(&["DEL", "probe"]);
    ok
}

/// Asserts memory stayed bounded after writing ~25 MB of keys under a 4 MB limit.
fn assert_bounded(
    server: &ServerProcess,
    c: &mut RawClient,
    rss_before: u64,
    written: usize,
    what: &str,
) {
    let keys = dbsize(c);
    let used = info_used_memory(c);
    eprintln!(
        "{what}: {keys} keys kept of {written}, used_memory {used:?}, rss grew {}",
        rss(server).saturating_sub(rss_before)
    );
    assert!(
        keys < written as u64 / 3,
        "{what}: {keys} of {written} keys kept under a {LIMIT}-byte limit"
    );
    assert!(
        keys > 2000,
        "{what}: only {keys} keys kept, memory is under-used"
    );
    if let Some(used) = used {
        assert!(
            (LIMIT / 2..=LIMIT + LIMIT / 10).contains(&used),
            "{what}: used_memory {used} not near maxmemory {LIMIT}"
        );
    }
    let grown = rss(server).saturating_sub(rss_before);
    assert!(
        grown < 3 * LIMIT,
        "{what}: resident set grew by {grown} bytes"
    );
}

const WRITTEN: usize = 150_000;

#[test]
fn allkeys_policies_keep_memory_near_the_limit() {
    for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        let (server, mut c) = start(policy, &[]);
        let rss_before = rss(&server);
        let failures = write_keys(&mut c, "key", WRITTEN, None);
        assert!(
            failures.is_empty(),
            "{policy}: {}",
            common::show(&failures[0])
        );
        assert_bounded(&server, &mut c, rss_before, WRITTEN, policy);
    }
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl_then_refuse_writes() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let (server, mut c) = start(policy, &[]);
        if !supports_px(&mut c) {
            eprintln!(
                "SKIPPED: this build has no SET ... PX; volatile policies need keys with a TTL"
            );
            return;
        }
        let rss_before = rss(&server);
        // About a quarter of the limit in keys without a TTL.
        assert!(write_keys(&mut c, "persistent", 4000, None).is_empty());
        let failures = write_keys(&mut c, "volatile", WRITTEN, Some(1_000_000_000));
        assert!(
            failures.is_empty(),
            "{policy}: {}",
            common::show(&failures[0])
        );
        assert_bounded(&server, &mut c, rss_before, WRITTEN, policy);
        for i in (0..4000).step_by(97) {
            let reply = c.command(&["GET", &format!("persistent:{i}")]);
            assert!(
                reply.starts_with(b"$"),
                "{policy}: persistent:{i} was evicted"
            );
        }
        // Once no key with a TTL is left, writes are refused.
        let failures = write_keys(&mut c, "more", WRITTEN, None);
        assert!(
            !failures.is_empty(),
            "{policy}: no OOM without volatile keys"
        );
        assert!(
            failures.iter().all(|r| r == OOM),
            "{policy}: {}",
            common::show(&failures[0])
        );
    }
}

#[test]
fn allkeys_lru_keeps_recently_read_keys() {
    let (_server, mut c) = start("allkeys-lru", &["--maxmemory-samples", "10"]);
    const N: usize = 5000;
    assert!(write_keys(&mut c, "read", N, None).is_empty());
    assert!(write_keys(&mut c, "untouched", N, None).is_empty());
    assert_eq!(dbsize(&mut c), 2 * N as u64, "the first keys must fit");
    // The LRU clock counts seconds: let the untouched keys age.
    std::thread::sleep(Duration::from_millis(2100));
    let reads: Vec<_> = (0..N)
        .map(|i| vec![b"GET".to_vec(), format!("read:{i}").into_bytes()])
        .collect();
    pipeline(&mut c, &reads);
    // Write new keys until half as many keys as there are untouched ones were evicted.
    let mut written = 2 * N;
    let mut batch_no = 0;
    while written as u64 - dbsize(&mut c) < N as u64 / 2 {
        let prefix = format!("new{batch_no}");
        assert!(write_keys(&mut c, &prefix, 500, None).is_empty());
        written += 500;
        batch_no += 1;
        assert!(batch_no < 1000, "eviction never started");
    }
    let survivors = |c: &mut RawClient, prefix: &str| {
        let gets: Vec<_> = (0..N)
            .map(|i| vec![b"GET".to_vec(), format!("{prefix}:{i}").into_bytes()])
            .collect();
        pipeline(c, &gets)
            .iter()
            .filter(|r| r.starts_with(b"$") && !r.starts_with(b"$-1"))
            .count()
    };
    let read = survivors(&mut c, "read");
    let untouched = survivors(&mut c, "untouched");
    eprintln!("read keys kept {read}, untouched kept {untouched} of {N} each");
    // Expected: about all of `read` and half of `untouched`.
    assert!(
        read >= N * 9 / 10,
        "recently read keys kept: {read} of {N} (untouched kept: {untouched})"
    );
    assert!(
        untouched <= N * 3 / 4,
        "untouched keys kept: {untouched} of {N} (read kept: {read})"
    );
}

#[test]
fn noeviction_refuses_writes_but_serves_reads_and_deletes() {
    let (_server, mut c) = start("noeviction", &[]);
    let failures = write_keys(&mut c, "key", WRITTEN, None);
    assert!(!failures.is_empty(), "no OOM past the limit");
    assert!(
        failures.iter().all(|r| r == OOM),
        "{}",
        common::show(&failures[0])
    );
    assert!(c.command(&["GET", "key:0"]).starts_with(b"$"));
    assert_eq!(c.command(&["SET", "key:0", "x"]), OOM);
    assert_eq!(c.command(&["DEL", "key:0"]), b":1\r\n");
    assert_eq!(c.command(&["PING"]), b"+PONG\r\n");
}

/// Over the limit with nothing to evict, ferrokv and the oracle answer alike: SET is refused
/// with the same text, GET and DEL run, an arity error comes first.
#[test]
fn oom_replies_match_the_oracle() {
    let args = ["--maxmemory", "1", "--maxmemory-policy", "allkeys-lru"];
    let ferrokv = start_ferrokv(&args);
    let valkey = start_valkey(&args);
    for port in [ferrokv.port, valkey.port] {
        let mut c = RawClient::connect(port).expect("connect");
        assert_eq!(c.command(&["SET", "a", "b"]), OOM, "port {port}");
        assert_eq!(c.command(&["GET", "a"]), b"$-1\r\n");
        assert_eq!(c.command(&["DEL", "a"]), b":0\r\n");
        assert_eq!(
            c.command(&["SET", "a"]),
            b"-ERR wrong number of arguments for 'set' command\r\n"
        );
    }
}

/// Lowering `maxmemory` below what is used evicts at once, with no command to trigger it:
/// a subscriber hears the `evicted` event while nobody else sends anything (as on Valkey,
/// whose eviction timer starts on CONFIG SET).
#[test]
fn lowering_maxmemory_evicts_without_waiting_for_a_command() {
    let server = start_ferrokv(&["--maxmemory-policy", "allkeys-lru"]);
    let mut control = RawClient::connect(server.port).expect("connect");
    let mut subscriber = RawClient::connect(server.port).expect("connect");
    control.command(&["CONFIG", "SET", "notify-keyspace-events", "Ee"]);
    subscriber.command(&["PSUBSCRIBE", "*"]);
    control.command(&["SET", "foo", "bar"]);
    assert_eq!(
        control.command(&["CONFIG", "SET", "maxmemory", "1"]),
        b"+OK\r\n"
    );
    let event = subscriber
        .read_reply()
        .expect("the eviction event (read timeout 10 s)");
    let text = String::from_utf8_lossy(&event);
    assert!(
        text.contains("__keyevent@0__:evicted") && text.contains("foo"),
        "{text}"
    );
    control.command(&["CONFIG", "SET", "maxmemory", "0"]);
}

/// Import mode keeps every key the source sent, however full memory is: nothing is evicted
/// and writes get the OOM error; once it ends, eviction catches up. Run on both servers.
#[test]
fn import_mode_refuses_writes_instead_of_evicting() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    for port in [ferrokv.port, valkey.port] {
        let mut c = RawClient::connect(port).expect("connect");
        c.command(&["SET", "key", "val"]);
        assert_eq!(
            c.command(&["CONFIG", "SET", "import-mode", "yes"]),
            b"+OK\r\n"
        );
        assert_eq!(c.command(&["CLIENT", "IMPORT-SOURCE", "ON"]), b"+OK\r\n");
        c.command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        c.command(&["CONFIG", "SET", "maxmemory", "1"]);
        assert_eq!(dbsize(&mut c), 1, "port {port}");
        assert_eq!(c.command(&["SET", "key1", "val1"]), OOM, "port {port}");
        assert_eq!(dbsize(&mut c), 1, "port {port}");
        assert_eq!(c.command(&["CLIENT", "IMPORT-SOURCE", "OFF"]), b"+OK\r\n");
        assert_eq!(
            c.command(&["CONFIG", "SET", "import-mode", "no"]),
            b"+OK\r\n"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while dbsize(&mut c) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port}: not evicted"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
