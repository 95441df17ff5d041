//! Active expiry: keys with a TTL that nobody reads are deleted by the server's cron, not only
//! when accessed. DBSIZE does not expire keys itself, so it shows what the cycle removed.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, encode, start_ferrokv};

fn dbsize(client: &mut RawClient) -> i64 {
    let reply = client.command(&["DBSIZE"]);
    String::from_utf8_lossy(&reply[1..])
        .trim()
        .parse()
        .unwrap_or(-1)
}

/// Writes `volatile` keys that expire after `ttl_ms` and `persistent` keys without a TTL,
/// pipelined, and reads all the replies.
fn fill(client: &mut RawClient, volatile: usize, persistent: usize, ttl_ms: u64) {
    let mut batch = Vec::new();
    for i in 0..volatile {
        batch.extend(encode(&[
            "SET",
            &format!("v:{i}"),
            "x",
            "PX",
            &ttl_ms.to_string(),
        ]));
    }
    for i in 0..persistent {
        batch.extend(encode(&["SET", &format!("p:{i}"), "x"]));
    }
    client.send_raw(&batch);
    for _ in 0..volatile + persistent {
        client.read_reply().expect("reply to SET");
    }
}

/// Polls DBSIZE until it equals `want` or `limit` passes; returns the last value seen.
fn wait_for_dbsize(client: &mut RawClient, want: i64, limit: Duration) -> i64 {
    let deadline = Instant::now() + limit;
    loop {
        let n = dbsize(client);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unread_expired_keys_are_removed_by_the_cron() {
    let server = start_ferrokv(&["--hz", "50"]);
    let mut client = RawClient::connect(server.port).expect("connect");
    fill(&mut client, 5000, 3000, 200);
    assert_eq!(dbsize(&mut client), 8000);
    let left = wait_for_dbsize(&mut client, 3000, Duration::from_secs(20));
    assert_eq!(
        left, 3000,
        "expired keys were not all reclaimed without access"
    );
    let info = String::from_utf8_lossy(&client.command(&["INFO", "stats"])).into_owned();
    assert!(info.contains("expired_keys:5000\r\n"), "INFO stats: {info}");
}

#[test]
fn with_active_expiry_off_only_access_removes_keys() {
    let server = start_ferrokv(&["--hz", "50", "--enable-debug-command", "yes"]);
    let mut client = RawClient::connect(server.port).expect("connect");
    assert_eq!(
        client.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
        b"+OK\r\n"
    );
    fill(&mut client, 500, 10, 50);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        dbsize(&mut client),
        510,
        "the cycle ran although it was switched off"
    );
    // Reading an expired key deletes it (lazy expiry).
    assert_eq!(client.command(&["GET", "v:0"]), b"$-1\r\n");
    assert_eq!(dbsize(&mut client), 509);
    assert_eq!(
        client.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]),
        b"+OK\r\n"
    );
    assert_eq!(
        wait_for_dbsize(&mut client, 10, Duration::from_secs(20)),
        10
    );
}
