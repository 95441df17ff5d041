//! The seeds' HA topology in ferrokv alone: one primary, two ferrokv replicas. A replica
//! stopped (SIGSTOP) past the primary's `repl-timeout` resumes with a partial sync; a replica
//! promoted with REPLICAOF NO ONE lets its sibling and the demoted primary continue with
//! partial syncs; a replica's AOF keeps what its primary sent across a kill -9.

mod common;

use common::dataset::{dataset, fill_every_type};
use common::{
    RawClient, TempDir, eventually, info_field, link_up, show, start_ferrokv, start_ferrokv_in,
    start_valkey, wait_caught_up,
};

fn command(port: u16, args: &[&str]) -> String {
    let mut c = RawClient::connect(port).expect("connect");
    show(&c.command(args))
}

fn same_data(a: u16, b: u16) {
    let (x, y) = (dataset(a), dataset(b));
    assert!(!x.is_empty());
    assert_eq!(x, y);
}

fn stats(port: u16) -> (String, String) {
    (
        info_field(port, "stats", "sync_full").unwrap_or_default(),
        info_field(port, "stats", "sync_partial_ok").unwrap_or_default(),
    )
}

#[test]
fn stopped_replica_resumes_and_a_promotion_keeps_everyone_partial() {
    let primary = start_ferrokv(&["--repl-diskless-sync-delay", "0", "--repl-timeout", "1"]);
    fill_every_type(primary.port);
    let of = format!("{}", primary.port);
    let first = start_ferrokv(&["--replicaof", "127.0.0.1", &of]);
    let second_dir = TempDir::new("replica-aof");
    let second = start_ferrokv_in(
        &second_dir.0,
        &["--replicaof", "127.0.0.1", &of, "--appendonly", "yes"],
    )
    .expect("second replica");
    eventually(20, "both links up", || {
        link_up(first.port) && link_up(second.port)
    });
    wait_caught_up(primary.port, 2);
    assert_eq!(stats(primary.port), ("2".into(), "0".into()));

    // SIGSTOP past repl-timeout: the primary drops it; after SIGCONT it continues.
    let pid = first.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    for i in 0..100 {
        command(primary.port, &["SET", &format!("while-stopped:{i}"), "x"]);
    }
    eventually(10, "the stopped replica dropped", || {
        info_field(primary.port, "replication", "connected_slaves").as_deref() == Some("1")
    });
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually(20, "the stopped replica back", || {
        info_field(primary.port, "replication", "connected_slaves").as_deref() == Some("2")
    });
    wait_caught_up(primary.port, 2);
    let (full, partial) = stats(primary.port);
    assert_eq!(full, "2", "no new full sync");
    assert!(
        partial.parse::<u32>().unwrap() >= 1,
        "partial syncs: {partial}"
    );
    same_data(primary.port, first.port);
    same_data(primary.port, second.port);

    // Promote the first replica; the second and the old primary follow it, partially.
    assert_eq!(
        command(first.port, &["REPLICAOF", "NO", "ONE"]),
        "+OK\\r\\n"
    );
    let new_primary = format!("{}", first.port);
    assert_eq!(
        command(second.port, &["REPLICAOF", "127.0.0.1", &new_primary]),
        "+OK\\r\\n"
    );
    assert_eq!(
        command(primary.port, &["REPLICAOF", "127.0.0.1", &new_primary]),
        "+OK\\r\\n"
    );
    eventually(20, "links to the new primary", || {
        link_up(second.port) && link_up(primary.port)
    });
    assert_eq!(stats(first.port), ("0".into(), "2".into()));
    assert_eq!(
        command(first.port, &["SET", "after-failover", "1"]),
        "+OK\\r\\n"
    );
    assert_eq!(
        command(primary.port, &["SET", "x", "1"]),
        "-READONLY You can\\'t write against a read only replica.\\r\\n"
    );
    wait_caught_up(first.port, 2);
    same_data(first.port, second.port);
    same_data(first.port, primary.port);
    let expected = dataset(first.port);

    // The second replica's AOF has its primaries' stream: a kill -9 and a restart on its own
    // (no replicaof) bring back the same data.
    drop(second);
    let restarted =
        start_ferrokv_in(&second_dir.0, &["--appendonly", "yes"]).expect("restart from the AOF");
    assert_eq!(dataset(restarted.port), expected);
}

#[test]
fn a_former_primary_with_a_longer_history_keeps_its_aof_as_a_replica() {
    // The AOF's position in the stream is far past the new primary's offset: after the full
    // sync the AOF must go on from the new offset, or the writes that follow never reach it.
    let dir = TempDir::new("demoted-aof");
    let server = start_ferrokv_in(&dir.0, &["--appendonly", "yes"]).expect("start");
    for i in 0..2000 {
        command(server.port, &["SET", &format!("old:{i}"), &"x".repeat(100)]);
    }
    let primary = start_ferrokv(&["--repl-diskless-sync-delay", "0"]);
    command(primary.port, &["SET", "new", "1"]);
    let of = primary.port.to_string();
    assert_eq!(
        command(server.port, &["REPLICAOF", "127.0.0.1", &of]),
        "+OK\\r\\n"
    );
    eventually(20, "the link up", || link_up(server.port));
    for i in 0..20 {
        command(primary.port, &["RPUSH", "streamed", &i.to_string()]);
    }
    wait_caught_up(primary.port, 1);
    // The AOF rewrite the full sync started, then the streamed writes, reach the disk.
    eventually(10, "the AOF rewrite done", || {
        info_field(server.port, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
    });
    let expected = dataset(primary.port);
    assert_eq!(dataset(server.port), expected);
    drop(server);
    let restarted = start_ferrokv_in(&dir.0, &["--appendonly", "yes"]).expect("restart");
    assert_eq!(dataset(restarted.port), expected);
}

#[test]
fn a_chained_replica_syncing_mid_stream_applies_it_in_the_selected_database() {
    // The primary's stream selects database 9 once; a replica of the replica syncs after
    // that SELECT went by and must learn the database from the snapshot (`repl-stream-db`).
    // Checked with a ferrokv and a valkey sub-replica (valkey reads the same aux field).
    let primary = start_ferrokv(&["--repl-diskless-sync-delay", "0"]);
    let mut writer = RawClient::connect(primary.port).expect("connect");
    writer.command(&["SELECT", "9"]);
    writer.command(&["SET", "before", "1"]);
    let of = primary.port.to_string();
    let middle = start_ferrokv(&[
        "--logfile",
        "middle.log",
        "--replicaof",
        "127.0.0.1",
        &of,
        "--repl-diskless-sync-delay",
        "0",
    ]);
    eventually(20, "the middle link up", || link_up(middle.port));
    // The middle's stream now starts with SELECT 9.
    writer.command(&["SET", "during", "1"]);
    wait_caught_up(primary.port, 1);
    let below = middle.port.to_string();
    let ferrokv_sub = start_ferrokv(&["--replicaof", "127.0.0.1", &below]);
    let valkey_sub = start_valkey(&["--replicaof", "127.0.0.1", &below]);
    eventually(20, "both sub-replica links up", || {
        link_up(ferrokv_sub.port) && link_up(valkey_sub.port)
    });
    writer.command(&["SET", "after", "2"]);
    writer.command(&["HSET", "h", "f", "v"]);
    wait_caught_up(primary.port, 1);
    wait_caught_up(middle.port, 2);
    let expected = dataset(primary.port);
    assert_eq!(expected.len(), 4);
    assert!(expected.keys().all(|(db, _)| *db == 9));
    assert_eq!(dataset(middle.port), expected);
    assert_eq!(dataset(ferrokv_sub.port), expected);
    assert_eq!(dataset(valkey_sub.port), expected);
    // A replica's log lines carry its role as `S`, as Valkey's do (`pid:S date ...`).
    let log = std::fs::read_to_string(middle.dir.0.join("middle.log")).expect("middle's log");
    let sync_line = log
        .lines()
        .find(|l| l.contains("Finished with success"))
        .expect("the sync logged");
    assert!(
        sync_line
            .split(' ')
            .next()
            .is_some_and(|head| head.ends_with(":S")),
        "{sync_line}"
    );
}

/// A ferrokv primary without persistence on a fixed port, killed with SIGKILL on drop.
struct FixedPortPrimary(std::process::Child);

impl FixedPortPrimary {
    fn start(dir: &std::path::Path, port: u16) -> FixedPortPrimary {
        let child = std::process::Command::new(common::ferrokv_binary())
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--repl-diskless-sync-delay", "0"])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ferrokv");
        eventually(10, "the primary answering", || {
            RawClient::connect(port).is_ok_and(|mut c| c.command(&["PING"]) == b"+PONG\r\n")
        });
        FixedPortPrimary(child)
    }
}

impl Drop for FixedPortPrimary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The replica's own replica (chained) follows: the replica's full sync ends its feed, and
/// it syncs again instead of reading the new history as the continuation of the old data.
#[test]
fn a_primary_restarted_without_its_data_makes_its_replica_sync_in_full() {
    let dir = TempDir::new("restarted-primary");
    let port = common::free_port();
    let first = FixedPortPrimary::start(&dir.0, port);
    command(port, &["SET", "before", "1"]);
    let replica = start_ferrokv(&["--replicaof", "127.0.0.1", &port.to_string()]);
    eventually(20, "the replica linked", || link_up(replica.port));
    wait_caught_up(port, 1);
    let sub_replica = start_ferrokv(&["--replicaof", "127.0.0.1", &replica.port.to_string()]);
    eventually(20, "the sub-replica linked", || {
        link_up(sub_replica.port) && command(sub_replica.port, &["EXISTS", "before"]) == ":1\\r\\n"
    });
    drop(first);
    // The restarted primary has a new history and none of the old data: the replica cannot
    // continue, it must take the new dataset whole.
    let _second = FixedPortPrimary::start(&dir.0, port);
    command(port, &["SET", "after", "1"]);
    eventually(20, "the replica resynchronized", || {
        link_up(replica.port) && command(replica.port, &["EXISTS", "after"]) == ":1\\r\\n"
    });
    assert_eq!(command(replica.port, &["EXISTS", "before"]), ":0\\r\\n");
    assert_eq!(info_field(port, "stats", "sync_full").as_deref(), Some("1"));
    assert_eq!(
        info_field(replica.port, "replication", "master_replid"),
        info_field(port, "replication", "master_replid")
    );
    eventually(20, "the sub-replica resynchronized", || {
        link_up(sub_replica.port) && command(sub_replica.port, &["EXISTS", "after"]) == ":1\\r\\n"
    });
    assert_eq!(command(sub_replica.port, &["EXISTS", "before"]), ":0\\r\\n");
}

/// A replica applies its primary's stream whatever its own ACL says: here its `default`
/// user is off, so every command of the link would be refused if the link ran as that
/// user (as it did before: the replica stayed empty).
#[test]
fn a_replica_whose_default_user_is_off_still_applies_its_primary() {
    let primary = start_ferrokv(&["--repl-diskless-sync-delay", "0"]);
    let of = primary.port.to_string();
    let replica = start_ferrokv(&[
        "--user",
        "default",
        "off",
        "--user",
        "admin",
        "on",
        ">secret",
        "~*",
        "&*",
        "+@all",
        "--replicaof",
        "127.0.0.1",
        &of,
    ]);
    let mut admin = RawClient::connect(replica.port).expect("connect");
    assert_eq!(admin.command(&["AUTH", "admin", "secret"]), b"+OK\r\n");
    let linked = |admin: &mut RawClient| {
        common::info_field_of(admin, "replication", "master_link_status").as_deref() == Some("up")
    };
    eventually(10, "the link is up", || linked(&mut admin));
    let mut writer = RawClient::connect(primary.port).expect("connect");
    assert_eq!(writer.command(&["SET", "before-multi", "1"]), b"+OK\r\n");
    assert_eq!(writer.command(&["MULTI"]), b"+OK\r\n");
    writer.command(&["INCR", "in-multi"]);
    writer.command(&["RPUSH", "list", "a", "b"]);
    assert_eq!(writer.command(&["EXEC"]), b"*2\r\n:1\r\n:2\r\n");
    eventually(10, "the writes reach the replica", || {
        admin.command(&["GET", "in-multi"]) == b"$1\r\n1\r\n"
    });
    assert_eq!(admin.command(&["GET", "before-multi"]), b"$1\r\n1\r\n");
    assert_eq!(admin.command(&["LLEN", "list"]), b":2\r\n");
    assert_eq!(
        RawClient::connect(replica.port)
            .expect("connect")
            .command(&["GET", "in-multi"]),
        b"-NOAUTH Authentication required.\r\n",
        "the replica's own clients still need to authenticate"
    );
}
