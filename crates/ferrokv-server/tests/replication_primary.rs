//! ferrokv as a primary, with real valkey-server 9.1 and redis-server 7.0 as its replicas:
//! full sync (streamed and disk-backed), the command stream, partial resync after a cut
//! link, WAIT, min-replicas-to-write, a full sync under write load, a slow replica cut by
//! its output buffer limit. The datasets are compared key by key (`common::dataset`).

mod common;

use std::io::{BufRead, Read, Write};
use std::time::Duration;

use common::dataset::{dataset, fill_every_type};
use common::{
    RawClient, ServerProcess, eventually, info_field, show, start_ferrokv, start_redis7,
    start_valkey, wait_caught_up, wait_link_up,
};

fn assert_same_data(primary: u16, replica: &ServerProcess) {
    let ours = dataset(primary);
    let theirs = dataset(replica.port);
    assert!(!ours.is_empty());
    for (key, value) in &ours {
        assert_eq!(
            theirs.get(key),
            Some(value),
            "{} differs on {key:?}",
            replica.name
        );
    }
    assert_eq!(ours.len(), theirs.len(), "{} has other keys", replica.name);
}

fn primary(extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(extra);
    start_ferrokv(&args)
}

fn replica_args(port: u16) -> Vec<String> {
    vec!["--replicaof".into(), format!("127.0.0.1 {port}")]
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Writes of many kinds, including those propagated in a rewritten form.
fn write_mixed(port: u16) {
    let mut c = RawClient::connect(port).expect("connect");
    let commands: &[&[&str]] = &[
        &["SET", "after", "1", "EX", "100"],
        &["INCRBYFLOAT", "float", "1.5"],
        &["SPOP", "set"],
        &["EXPIRE", "str", "500"],
        &["LPOP", "list"],
        &["ZINCRBY", "zset", "2", "a"],
        &["MULTI"],
        &["INCR", "tx"],
        &["SELECT", "5"],
        &["SET", "in-db5", "x"],
        &["EXEC"],
        &["SELECT", "0"],
        &[
            "EVAL",
            "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])",
            "2",
            "lua",
            "counter",
            "v",
        ],
        &["XADD", "stream", "*", "f", "auto-id"],
        &["XAUTOCLAIM", "stream", "g", "c2", "0", "0"],
        &["HINCRBY", "hash", "f2", "40"],
        &["DEL", "big"],
        &["SET", "short", "x", "PX", "50"],
    ];
    for command in commands {
        let reply = c.command(command);
        assert!(!reply.starts_with(b"-"), "{command:?}: {}", show(&reply));
    }
    // The short-lived key expires on the primary, which sends the DEL.
    std::thread::sleep(Duration::from_millis(120));
    c.command(&["GET", "short"]);
}

#[test]
fn valkey_and_redis7_replicate_from_ferrokv() {
    let primary = primary(&[]);
    fill_every_type(primary.port);
    let args = replica_args(primary.port);
    let valkey = start_valkey(&as_strs(&args));
    let redis = start_redis7(&as_strs(&args));
    wait_link_up(valkey.port);
    wait_link_up(redis.port);
    write_mixed(primary.port);
    wait_caught_up(primary.port, 2);
    assert_same_data(primary.port, &valkey);
    assert_same_data(primary.port, &redis);

    // Both are listed, online, with their listening ports.
    let mut c = RawClient::connect(primary.port).unwrap();
    let info = String::from_utf8_lossy(&c.command(&["INFO", "replication"])).into_owned();
    assert!(info.contains("connected_slaves:2"), "{info}");
    for replica in [&valkey, &redis] {
        assert!(
            info.contains(&format!("port={},state=online", replica.port)),
            "{info}"
        );
    }
    let role = c.command(&["ROLE"]);
    assert!(
        show(&role).starts_with("*3\\r\\n$6\\r\\nmaster\\r\\n:"),
        "{}",
        show(&role)
    );
    // The replicas agree on the offset.
    let offset = info_field(primary.port, "replication", "master_repl_offset").unwrap();
    eventually(5, "replica offsets", || {
        info_field(valkey.port, "replication", "slave_repl_offset").as_deref()
            == Some(offset.as_str())
            && info_field(redis.port, "replication", "slave_repl_offset").as_deref()
                == Some(offset.as_str())
    });
}

#[test]
fn a_cut_link_resumes_with_a_partial_sync() {
    let primary = primary(&[]);
    fill_every_type(primary.port);
    let args = replica_args(primary.port);
    let valkey = start_valkey(&as_strs(&args));
    wait_link_up(valkey.port);
    let mut c = RawClient::connect(primary.port).unwrap();
    for round in 0..3 {
        let killed = c.command(&["CLIENT", "KILL", "TYPE", "replica"]);
        assert_eq!(show(&killed), ":1\\r\\n", "round {round}");
        // Writes while the link is down are sent from the backlog.
        for i in 0..50 {
            c.command(&["SET", &format!("during:{round}:{i}"), "x"]);
        }
        wait_link_up(valkey.port);
        wait_caught_up(primary.port, 1);
    }
    assert_eq!(
        info_field(primary.port, "stats", "sync_full").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(primary.port, "stats", "sync_partial_ok").as_deref(),
        Some("3")
    );
    assert_same_data(primary.port, &valkey);
}

#[test]
fn disk_backed_sync_and_replicas_arriving_together_share_a_snapshot() {
    // Disk-backed: the snapshot goes to a file first, then `$<length>`.
    let disk = primary(&["--repl-diskless-sync", "no"]);
    fill_every_type(disk.port);
    let valkey = start_valkey(&as_strs(&replica_args(disk.port)));
    wait_link_up(valkey.port);
    write_mixed(disk.port);
    wait_caught_up(disk.port, 1);
    assert_same_data(disk.port, &valkey);

    // Diskless with a delay: two replicas starting together get one snapshot.
    let shared = start_ferrokv(&["--repl-diskless-sync-delay", "2"]);
    fill_every_type(shared.port);
    let args = replica_args(shared.port);
    let first = start_valkey(&as_strs(&args));
    let second = start_redis7(&as_strs(&args));
    wait_link_up(first.port);
    wait_link_up(second.port);
    wait_caught_up(shared.port, 2);
    assert_same_data(shared.port, &first);
    assert_same_data(shared.port, &second);
    assert_eq!(
        info_field(shared.port, "stats", "sync_full").as_deref(),
        Some("2")
    );
    // One snapshot: the temp file of the disk-backed sync is gone too.
    let leftovers: Vec<_> = std::fs::read_dir(&disk.dir.0)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-repl"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_old_sync_command_gets_the_snapshot_then_the_stream() {
    let primary = primary(&[]);
    let mut c = RawClient::connect(primary.port).unwrap();
    c.command(&["SET", "before", "1"]);
    let mut replica = std::net::TcpStream::connect(("127.0.0.1", primary.port)).unwrap();
    replica
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    replica.write_all(b"SYNC\r\n").unwrap();
    let mut replica = std::io::BufReader::new(replica);
    // Disk-backed for a replica that did not announce `capa eof`: `$<length>` then the file,
    // with no line end after it.
    let mut header = String::new();
    replica.read_line(&mut header).unwrap();
    let length: usize = header
        .strip_prefix('$')
        .and_then(|n| n.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{header:?}"));
    let mut rdb = vec![0; length];
    replica.read_exact(&mut rdb).unwrap();
    assert!(rdb.starts_with(b"REDIS0010"));
    c.command(&["SET", "after", "2"]);
    let mut streamed = vec![0; 54];
    replica.read_exact(&mut streamed).unwrap();
    assert_eq!(
        show(&streamed),
        "*2\\r\\n$6\\r\\nSELECT\\r\\n$1\\r\\n0\\r\\n*3\\r\\n$3\\r\\nSET\\r\\n$5\\r\\nafter\\r\\n$1\\r\\n2\\r\\n"
    );
}

#[test]
fn wait_and_min_replicas_to_write() {
    let primary = primary(&[
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "2",
    ]);
    let mut c = RawClient::connect(primary.port).unwrap();
    assert_eq!(
        show(&c.command(&["SET", "k", "v"])),
        "-NOREPLICAS Not enough good replicas to write.\\r\\n"
    );
    // Reads are fine; WAIT with nobody to wait for answers 0 after its timeout.
    assert_eq!(show(&c.command(&["GET", "k"])), "$-1\\r\\n");
    assert_eq!(show(&c.command(&["WAIT", "1", "100"])), ":0\\r\\n");
    let valkey = start_valkey(&as_strs(&replica_args(primary.port)));
    wait_link_up(valkey.port);
    eventually(5, "a good replica", || {
        info_field(primary.port, "replication", "min_slaves_good_slaves").as_deref() == Some("1")
    });
    assert_eq!(show(&c.command(&["SET", "k", "v"])), "+OK\\r\\n");
    assert_eq!(show(&c.command(&["WAIT", "1", "0"])), ":1\\r\\n");
    // More replicas than exist: the timeout answers with those that acknowledged.
    assert_eq!(show(&c.command(&["WAIT", "2", "200"])), ":1\\r\\n");
    // The replica goes away: writes are refused again once its lag passes the limit.
    drop(valkey);
    eventually(10, "no good replica", || {
        info_field(primary.port, "replication", "min_slaves_good_slaves").as_deref() == Some("0")
    });
    assert_eq!(
        show(&c.command(&["SET", "k", "w"])),
        "-NOREPLICAS Not enough good replicas to write.\\r\\n"
    );
}

#[test]
fn a_full_sync_under_write_load_completes() {
    // A slow snapshot (rdb-key-save-delay) while a writer keeps going: the writes made during
    // the transfer exceed the soft limit many times over, which would make a single-channel
    // Valkey sync loop; the sync must complete once and the data must match.
    let primary = primary(&[
        "--rdb-key-save-delay",
        "100",
        "--client-output-buffer-limit",
        "replica 0 256kb 1",
    ]);
    let mut c = RawClient::connect(primary.port).unwrap();
    for i in 0..5000 {
        c.command(&["SET", &format!("k{i}"), "v"]);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let port = primary.port;
        std::thread::spawn(move || {
            let mut c = RawClient::connect(port).unwrap();
            let value = "w".repeat(1000);
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.command(&["SET", &format!("load:{}", i % 2000), &value]);
                i += 1;
            }
            i
        })
    };
    let valkey = start_valkey(&as_strs(&replica_args(primary.port)));
    wait_link_up(valkey.port);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 500, "the writer kept writing ({writes})");
    wait_caught_up(primary.port, 1);
    assert_same_data(primary.port, &valkey);
    assert_eq!(
        info_field(primary.port, "stats", "sync_full").as_deref(),
        Some("1")
    );
}

#[test]
fn a_replica_that_stops_reading_is_cut_by_its_output_limit() {
    let primary = primary(&["--client-output-buffer-limit", "replica 1mb 0 0"]);
    let mut replica = RawClient::connect(primary.port).unwrap();
    replica.command(&["REPLCONF", "capa", "eof"]);
    replica.send_raw(b"PSYNC ? -1\r\n");
    let line = replica.read_reply().unwrap();
    assert!(show(&line).starts_with("+FULLRESYNC "), "{}", show(&line));
    // It never reads again. The primary keeps writing; the replica's unsent bytes grow past
    // the hard limit (after the socket buffers fill) and it is dropped.
    let mut c = RawClient::connect(primary.port).unwrap();
    let value = "z".repeat(64 * 1024);
    eventually(30, "the slow replica dropped", || {
        for i in 0..32 {
            c.command(&["SET", &format!("big:{i}"), &value]);
        }
        info_field(primary.port, "replication", "connected_slaves").as_deref() == Some("0")
    });
    let disconnections = info_field(
        primary.port,
        "stats",
        "client_output_buffer_limit_disconnections",
    );
    assert_eq!(disconnections.as_deref(), Some("1"));
}

#[test]
fn publish_reaches_subscribers_of_the_replicas() {
    let primary = primary(&[]);
    let valkey = start_valkey(&as_strs(&replica_args(primary.port)));
    wait_link_up(valkey.port);
    let mut subscriber = RawClient::connect(valkey.port).unwrap();
    subscriber.command(&["SUBSCRIBE", "news"]);
    let mut c = RawClient::connect(primary.port).unwrap();
    c.command(&["PUBLISH", "news", "hello"]);
    let message = subscriber.read_reply().unwrap();
    assert_eq!(
        show(&message),
        "*3\\r\\n$7\\r\\nmessage\\r\\n$4\\r\\nnews\\r\\n$5\\r\\nhello\\r\\n"
    );
}

#[test]
fn after_a_streamed_snapshot_the_stream_waits_for_the_first_ack() {
    // A replica reading an EOF-marked snapshot cannot tell the mark from stream bytes that
    // arrive in the same read, so nothing may follow the mark before it acknowledges.
    let primary = primary(&[]);
    let stream = std::net::TcpStream::connect(("127.0.0.1", primary.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut replica = std::io::BufReader::new(stream);
    writer
        .write_all(b"REPLCONF capa eof\r\nPSYNC ? -1\r\n")
        .unwrap();
    let mut line = String::new();
    replica.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    line.clear();
    replica.read_line(&mut line).unwrap();
    assert!(line.starts_with("+FULLRESYNC "), "{line:?}");
    line.clear();
    replica.read_line(&mut line).unwrap();
    let mark = line
        .strip_prefix("$EOF:")
        .map(|m| m.trim_end().as_bytes().to_vec())
        .unwrap_or_else(|| panic!("{line:?}"));
    let mut payload = Vec::new();
    while !payload.ends_with(&mark) {
        let mut byte = [0u8; 1];
        replica.read_exact(&mut byte).unwrap();
        payload.push(byte[0]);
    }
    let mut c = RawClient::connect(primary.port).unwrap();
    c.command(&["SET", "after", "1"]);
    replica
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut early = [0u8; 1];
    assert!(
        replica.read(&mut early).is_err(),
        "stream bytes sent before the replica acknowledged"
    );
    writer
        .write_all(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n")
        .unwrap();
    replica
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut streamed = vec![0; 54];
    replica.read_exact(&mut streamed).unwrap();
    assert_eq!(
        show(&streamed),
        "*2\\r\\n$6\\r\\nSELECT\\r\\n$1\\r\\n0\\r\\n*3\\r\\n$3\\r\\nSET\\r\\n$5\\r\\nafter\\r\\n$1\\r\\n1\\r\\n"
    );
}

#[test]
fn hash_fields_expire_on_replicas_with_the_primarys_hdel() {
    // A replica never reclaims an expired field itself (reads hide it); the primary's
    // active expiry sends `HDEL key field...`, which must remove it there too.
    let primary = primary(&["--hz", "50"]);
    let args = replica_args(primary.port);
    let ours = start_ferrokv(&as_strs(&args));
    let valkey = start_valkey(&as_strs(&args));
    wait_link_up(ours.port);
    wait_link_up(valkey.port);
    let mut c = RawClient::connect(primary.port).unwrap();
    c.command(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    c.command(&["HPEXPIRE", "h", "100", "FIELDS", "2", "a", "b"]);
    eventually(10, "the primary reclaimed the fields", || {
        show(&c.command(&["HLEN", "h"])) == ":1\\r\\n"
    });
    wait_caught_up(primary.port, 2);
    for replica in [&ours, &valkey] {
        let mut r = RawClient::connect(replica.port).unwrap();
        assert_eq!(
            show(&r.command(&["HLEN", "h"])),
            ":1\\r\\n",
            "{}",
            replica.name
        );
        assert_same_data(primary.port, replica);
    }
}
