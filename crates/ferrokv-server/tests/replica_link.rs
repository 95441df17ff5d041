//! ferrokv as a replica of real primaries (valkey-server 9.1 and redis-server 7.0): the full
//! sync (EOF-marked and sized payloads, loaded through a file or from the socket), the
//! command stream (transactions, other databases, scripts, expiry), a partial resync after
//! the link is cut, READONLY, ROLE/INFO, promotion, and AUTH to the primary.

mod common;

use std::time::{Duration, Instant};

use common::dataset::dataset_of;
use common::{
    RawClient, ServerProcess, eventually, info_field_of, show, start_ferrokv, start_redis7,
    start_valkey,
};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// Waits (10 s at most) until the replica holds exactly the primary's data. The primary's
/// side is read again each time: a key with a short TTL may expire meanwhile, and the
/// replica then hides it too.
fn assert_same_data(primary: &mut RawClient, replica: &mut RawClient, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let expected = dataset_of(primary);
        let got = dataset_of(replica);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the data differs\nprimary: {expected:?}\nreplica: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn info_field(c: &mut RawClient, section: &str, field: &str) -> String {
    info_field_of(c, section, field).unwrap_or_default()
}

fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    eventually(15, what, ok);
}

fn wait_link_up(replica: &mut RawClient) {
    wait_for("master_link_status:up", || {
        info_field(replica, "replication", "master_link_status") == "up"
    });
}

/// A dataset with every type and encoding, in two databases, a key with a distant TTL and
/// one about to expire.
fn fill(c: &mut RawClient) {
    let commands: &[&[&str]] = &[
        &["SET", "str", "hello"],
        &["SET", "int", "12345"],
        &["SET", "ttl", "v", "PX", "100000000"],
        &["SET", "soon", "v", "PX", "1500"],
        &["RPUSH", "list", "a", "b", "c", "1", "2"],
        &["SADD", "intset", "1", "2", "3"],
        &["SADD", "set", "a", "b", "c"],
        &["HSET", "hash", "f1", "v1", "f2", "2"],
        &["ZADD", "zset", "1", "a", "2.5", "b", "-3", "c"],
        &["XADD", "stream", "1-1", "f", "v"],
        &["XADD", "stream", "2-1", "g", "w"],
        &["PFADD", "hll", "a", "b", "c"],
        &["SELECT", "3"],
        &["SET", "other", "db3"],
        &["LPUSH", "l3", "x"],
        &["SELECT", "0"],
    ];
    for cmd in commands {
        let reply = c.command(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?}: {}", show(&reply));
    }
    // A big list and hash, beyond the compact encodings.
    let mut big = vec!["RPUSH".to_string(), "biglist".into()];
    big.extend((0..300).map(|i| format!("element-{i}")));
    c.command(&big);
    let mut hash = vec!["HSET".to_string(), "bighash".into()];
    hash.extend((0..300).flat_map(|i| [format!("f{i}"), "v".repeat(i % 90)]));
    c.command(&hash);
}

/// Writes streamed after the sync: a transaction, another database, a script, expiry.
fn write_stream(c: &mut RawClient) {
    let commands: &[&[&str]] = &[
        &["SET", "after", "1"],
        &["INCRBY", "int", "5"],
        &["MULTI"],
        &["LPUSH", "list", "m1"],
        &["HSET", "hash", "f3", "v3"],
        &["SELECT", "3"],
        &["SET", "inmulti", "x"],
        &["EXEC"],
        &["SELECT", "3"],
        &["ZADD", "z3", "1", "one"],
        &["SELECT", "0"],
        &[
            "EVAL",
            "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SADD', KEYS[2], ARGV[1]); return 1",
            "2",
            "scripted",
            "set",
            "fromlua",
        ],
        &["EXPIRE", "str", "100000"],
        &["PERSIST", "ttl"],
        &["DEL", "intset"],
        &["SET", "short", "v", "PX", "300"],
    ];
    for cmd in commands {
        let reply = c.command(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?}: {}", show(&reply));
    }
}

fn primary_stat(c: &mut RawClient, field: &str) -> u64 {
    info_field(c, "stats", field).parse().unwrap_or(0)
}

/// The whole scenario against one primary.
fn replicate_from(primary: &ServerProcess, primary_auth: Option<&str>, replica_args: &[&str]) {
    let mut p = RawClient::connect(primary.port).expect("primary");
    if let Some(pass) = primary_auth {
        assert_eq!(p.command(&["AUTH", pass]), b"+OK\r\n");
    }
    fill(&mut p);
    let replica = start_ferrokv(replica_args);
    let mut r = RawClient::connect(replica.port).expect("replica");
    let port = primary.port.to_string();
    assert_eq!(r.command(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    assert_eq!(
        text(&r.command(&["REPLICAOF", "127.0.0.1", &port])),
        "+OK Already connected to specified master\r\n"
    );
    wait_link_up(&mut r);
    assert_same_data(&mut p, &mut r, "after the full sync");

    // The key that expires on the primary goes from the replica with the primary's DEL.
    wait_for("the expiring key gone on the primary", || {
        p.command(&["EXISTS", "soon"]) == b":0\r\n"
    });
    write_stream(&mut p);
    assert_same_data(&mut p, &mut r, "after the streamed writes");
    wait_for("the short key gone from the replica", || {
        // Reading it on the primary makes it expire there (and the DEL come) if the active
        // cycle has not yet.
        p.command(&["GET", "short"]);
        r.command(&["EXISTS", "short"]) == b":0\r\n"
    });

    // Writes are refused; ROLE and INFO show the link.
    assert_eq!(
        text(&r.command(&["SET", "x", "1"])),
        "-READONLY You can't write against a read only replica.\r\n"
    );
    let role = text(&r.command(&["ROLE"]));
    assert!(
        role.starts_with(&format!(
            "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$9\r\nconnected\r\n:"
        )),
        "{role}"
    );
    assert_eq!(info_field(&mut r, "replication", "role"), "slave");
    assert_eq!(
        info_field(&mut r, "replication", "master_sync_in_progress"),
        "0"
    );
    wait_for("equal offsets", || {
        info_field(&mut r, "replication", "master_repl_offset")
            == info_field(&mut p, "replication", "master_repl_offset")
    });
    assert_eq!(
        info_field(&mut r, "replication", "master_replid"),
        info_field(&mut p, "replication", "master_replid")
    );

    // WAIT on the primary is answered through GETACK.
    p.command(&["SET", "acked", "1"]);
    assert_eq!(text(&p.command(&["WAIT", "1", "5000"])), ":1\r\n");

    // Cutting the link ends in a partial resync, not a full one.
    let full_before = primary_stat(&mut p, "sync_full");
    let partial_before = primary_stat(&mut p, "sync_partial_ok");
    assert!(
        p.command(&["CLIENT", "KILL", "TYPE", "replica"])
            .starts_with(b":")
    );
    p.command(&["SET", "during", "cut"]);
    wait_for("a partial resync", || {
        primary_stat(&mut p, "sync_partial_ok") == partial_before + 1
    });
    assert_eq!(primary_stat(&mut p, "sync_full"), full_before);
    wait_link_up(&mut r);
    p.command(&["RPUSH", "list", "after-continue"]);
    assert_same_data(&mut p, &mut r, "after the partial resync");

    // Promotion keeps the data and takes writes.
    assert_eq!(r.command(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(r.command(&["GET", "during"]), b"$3\r\ncut\r\n");
    assert_eq!(r.command(&["SET", "x", "1"]), b"+OK\r\n");
    assert_eq!(info_field(&mut r, "replication", "role"), "master");
}

#[test]
fn replicates_from_valkey_eof_marked_payload_through_a_file() {
    let primary = start_valkey(&[
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    replicate_from(&primary, None, &["--repl-diskless-load", "disabled"]);
}

#[test]
fn replicates_from_redis7_sized_payload_from_the_socket() {
    let primary = start_redis7(&["--repl-diskless-sync", "no"]);
    replicate_from(&primary, None, &["--repl-diskless-load", "on-empty-db"]);
}

#[test]
fn authenticates_to_a_primary_with_requirepass() {
    let primary = start_valkey(&["--requirepass", "s3cret", "--repl-diskless-sync-delay", "0"]);
    let mut p = RawClient::connect(primary.port).expect("primary");
    assert_eq!(p.command(&["AUTH", "s3cret"]), b"+OK\r\n");
    p.command(&["SET", "k", "v"]);
    // Without the password the link never comes up; with it, it does.
    let replica = start_ferrokv(&[]);
    let mut r = RawClient::connect(replica.port).expect("replica");
    r.command(&["REPLICAOF", "127.0.0.1", &primary.port.to_string()]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        info_field(&mut r, "replication", "master_link_status"),
        "down"
    );
    assert_eq!(
        r.command(&["CONFIG", "SET", "masterauth", "s3cret"]),
        b"+OK\r\n"
    );
    wait_link_up(&mut r);
    assert_eq!(r.command(&["GET", "k"]), b"$1\r\nv\r\n");
}

#[test]
fn follows_the_replicaof_directive_at_start() {
    let primary = start_valkey(&[
        "--repl-diskless-sync-delay",
        "0",
        "--enable-debug-command",
        "yes",
    ]);
    let mut p = RawClient::connect(primary.port).expect("primary");
    p.command(&["SET", "k", "v"]);
    // (The one-argument form `--replicaof "host port"` that Valkey also takes is refused by
    // ferrokv's command line parsing today.)
    let port = primary.port.to_string();
    let replica = start_ferrokv(&["--replicaof", "127.0.0.1", &port]);
    let mut r = RawClient::connect(replica.port).expect("replica");
    wait_link_up(&mut r);
    assert_eq!(r.command(&["GET", "k"]), b"$1\r\nv\r\n");
    // A replica keeps a key past its expiry until the primary's DEL: its clients do not see
    // it meanwhile. (The primary's active expiry is paused by DEBUG SET-ACTIVE-EXPIRE 0.)
    assert_eq!(p.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
    p.command(&["SET", "gone", "v", "PX", "200"]);
    wait_for("the key on the replica", || {
        r.command(&["EXISTS", "gone"]) == b":1\r\n"
    });
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(r.command(&["GET", "gone"]), b"$-1\r\n");
    assert_eq!(r.command(&["EXISTS", "gone"]), b":0\r\n");
    // Still held (DBSIZE counts it, as Valkey's replica does) until the primary deletes it.
    assert_eq!(r.command(&["DBSIZE"]), b":2\r\n");
    p.command(&["GET", "gone"]);
    wait_for("the primary's DEL applied", || {
        r.command(&["DBSIZE"]) == b":1\r\n"
    });
}

/// The field names of a CLIENT LIST line, and the values of `flags` and `addr`.
fn client_line_shape(line: &str) -> (Vec<String>, String, String) {
    let pairs: Vec<(&str, &str)> = line
        .split(' ')
        .filter_map(|field| field.split_once('='))
        .collect();
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    (
        pairs.iter().map(|(k, _)| k.to_string()).collect(),
        value("flags"),
        value("addr"),
    )
}

#[test]
fn the_link_to_the_primary_is_a_listed_client_that_client_kill_ends() {
    let primary = start_valkey(&["--repl-diskless-sync-delay", "0"]);
    let port = primary.port.to_string();
    let ours = start_ferrokv(&["--replicaof", "127.0.0.1", &port]);
    let oracle = start_valkey(&["--replicaof", "127.0.0.1", &port]);
    let mut p = RawClient::connect(primary.port).expect("primary");
    let mut shapes = Vec::new();
    for replica in [&ours, &oracle] {
        let mut r = RawClient::connect(replica.port).expect("replica");
        wait_link_up(&mut r);
        let list = text(&r.command(&["CLIENT", "LIST", "TYPE", "master"]));
        let lines: Vec<&str> = list.lines().filter(|l| l.contains("id=")).collect();
        assert_eq!(lines.len(), 1, "{list}");
        shapes.push(client_line_shape(lines[0]));
    }
    assert_eq!(shapes[0].0, shapes[1].0, "the same fields as valkey's");
    assert_eq!(shapes[0].1, "M");
    assert_eq!(shapes[0].2, format!("127.0.0.1:{port}"));

    let mut r = RawClient::connect(ours.port).expect("replica");
    let partial = primary_stat(&mut p, "sync_partial_ok");
    assert_eq!(
        text(&r.command(&["CLIENT", "KILL", "TYPE", "master"])),
        ":1\r\n"
    );
    wait_for("the link back with a partial sync", || {
        primary_stat(&mut p, "sync_partial_ok") > partial
    });
    wait_link_up(&mut r);
    p.command(&["SET", "after-kill", "1"]);
    assert_same_data(&mut p, &mut r, "after the killed link resumed");
}

/// A replica loading its full sync through a file (`repl-diskless-load disabled`) removes
/// the file after loading when persistence is off (`save ""`, `appendonly no`): such a
/// replica writes nothing that stays, as `rdb-del-sync-files yes` in Valkey. With save rules
/// the received file stays as `dbfilename`, as in Valkey.
#[test]
fn a_replica_without_persistence_keeps_no_sync_file() {
    let primary = start_ferrokv(&["--save", ""]);
    let mut p = RawClient::connect(primary.port).expect("primary");
    fill(&mut p);
    let port = primary.port.to_string();
    for (save, kept) in [("", false), ("3600 1", true)] {
        let replica = start_ferrokv(&[
            "--save",
            save,
            "--appendonly",
            "no",
            "--repl-diskless-load",
            "disabled",
        ]);
        let mut r = RawClient::connect(replica.port).expect("replica");
        assert_eq!(r.command(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
        wait_link_up(&mut r);
        assert_same_data(&mut p, &mut r, "after the full sync");
        let files: Vec<String> = std::fs::read_dir(&replica.dir.0)
            .expect("replica dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if kept {
            assert_eq!(files, ["dump.rdb"], "save {save:?}");
        } else {
            assert!(files.is_empty(), "save {save:?}: {files:?}");
        }
    }
}

/// A writable replica (`replica-read-only no`) deletes the keys its own clients gave a TTL
/// once due, as Valkey does (no DEL comes from the primary for them), and counts them in
/// `slave_expires_tracked_keys`; a key from the primary with a TTL still waits for the
/// primary's DEL. Run on a ferrokv and a valkey replica of one valkey primary.
#[test]
fn a_writable_replica_expires_the_keys_its_clients_gave_a_ttl() {
    let debug = ["--enable-debug-command", "yes"];
    let primary = start_valkey(&debug);
    let mut p = RawClient::connect(primary.port).expect("primary");
    let writable = [debug[0], debug[1], "--replica-read-only", "no"];
    let replicas = [
        ("ferrokv", start_ferrokv(&writable)),
        ("valkey", start_valkey(&writable)),
    ];
    for (name, replica) in &replicas {
        let mut r = RawClient::connect(replica.port).expect("replica");
        r.command(&["REPLICAOF", "127.0.0.1", &primary.port.to_string()]);
        wait_link_up(&mut r);
        // The primary's key lives on past its time on the replica until the DEL comes:
        // the primary does not expire it while its active expiry is off.
        assert_eq!(p.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
        p.command(&["SET", "from-primary", "v", "PX", "200"]);
        wait_for("the primary's key reaches the replica", || {
            r.command(&["EXISTS", "from-primary"]) == b":1\r\n"
        });

        assert_eq!(r.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
        for i in 0..5 {
            r.command(&["SET", &format!("own:{i}"), "v", "PX", "200"]);
        }
        r.command(&["SET", "own:persistent", "v"]);
        r.command(&["SET", "own:long", "v", "EX", "1000"]);
        assert_eq!(
            info_field(&mut r, "stats", "slave_expires_tracked_keys"),
            "6",
            "{name}: five short TTLs and one long one are tracked"
        );
        let expired_before: u64 = info_field(&mut r, "stats", "expired_keys")
            .parse()
            .expect("a number");
        std::thread::sleep(Duration::from_millis(300));
        r.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        wait_for("the replica's own keys expire", || {
            info_field(&mut r, "stats", "slave_expires_tracked_keys") == "1"
        });
        let expired: u64 = info_field(&mut r, "stats", "expired_keys")
            .parse()
            .expect("a number");
        assert_eq!(expired - expired_before, 5, "{name}: expired_keys");
        // 2 own keys + the primary's, whose time passed but whose DEL has not come.
        assert_eq!(
            r.command(&["DBSIZE"]),
            b":3\r\n",
            "{name}: DBSIZE; keys {}",
            show(&r.command(&["KEYS", "*"]))
        );
        p.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        wait_for("the primary's DEL reaches the replica", || {
            r.command(&["DBSIZE"]) == b":2\r\n"
        });
        p.command(&["FLUSHALL"]);
    }
}
