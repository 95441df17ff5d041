//! A restart that costs no full sync. The snapshot a replica saves records its primary's
//! replication id, offset and stream database (`repl-id`, `repl-offset`, `repl-stream-db`);
//! restarted from it, the replica continues with a partial sync and applies what it missed
//! in the right database. A primary restarted from its snapshot offers its old history as
//! its second one, so its replicas continue too. The same steps on ferrokv and on
//! valkey-server 9.1, outcomes compared.

mod common;

use std::path::Path;

use std::time::Duration;

use common::{
    RawClient, ServerProcess, TempDir, ferrokv_binary, info_field, show, valkey_binary,
    wait_caught_up, wait_link_up,
};

fn start(binary: &Path, args: &[&str]) -> ServerProcess {
    let mut all = vec!["--appendonly", "no", "--repl-diskless-sync-delay", "0"];
    all.extend_from_slice(args);
    if binary == ferrokv_binary() {
        common::start_ferrokv(&all)
    } else {
        common::start_valkey(&all)
    }
}

fn run(port: u16, args: &[&str]) -> String {
    let mut c = RawClient::connect(port).expect("connect");
    show(&c.command(args))
}

/// SHUTDOWN (which saves, with `save` rules) and waits for the process to end.
fn shut_down(server: &mut ServerProcess) {
    let mut c = RawClient::connect(server.port).expect("connect");
    c.send_raw(&common::encode(&["SHUTDOWN"]));
    assert!(
        common::wait_exit(&mut server.child, 15),
        "the server did not shut down"
    );
}

fn stats(port: u16) -> String {
    ["sync_full", "sync_partial_ok"]
        .map(|f| format!("{f}={}", info_field(port, "stats", f).unwrap_or_default()))
        .join(" ")
}

/// A replica that saves in `dir` (so a restart finds its snapshot) and follows `port`.
fn saving_replica_args<'a>(dir: &'a str, port: &'a str) -> [&'a str; 7] {
    [
        "--dir",
        dir,
        "--save",
        "3600 1",
        "--replicaof",
        "127.0.0.1",
        port,
    ]
}

fn replica_restart(binary: &Path) -> Vec<String> {
    let primary = start(binary, &["--save", ""]);
    let port = primary.port.to_string();
    let dir = TempDir::new("replica-restart");
    let dir = dir.0.to_str().expect("utf-8").to_string();
    let replica_args = saving_replica_args(&dir, &port);
    let mut out = Vec::new();
    {
        let mut replica = start(binary, &replica_args);
        wait_link_up(replica.port);
        let mut c = RawClient::connect(primary.port).expect("connect");
        c.command(&["SELECT", "3"]);
        c.command(&["SET", "a", "1"]);
        c.command(&["RPUSH", "l", "x", "y"]);
        wait_caught_up(primary.port, 1);
        shut_down(&mut replica);
        // Missed by the replica; in database 3 with no SELECT before it in the stream.
        c.command(&["SET", "b", "2"]);
        c.command(&["INCR", "a"]);
        c.command(&["CONFIG", "RESETSTAT"]);
    }
    let replica = start(binary, &replica_args);
    wait_link_up(replica.port);
    wait_caught_up(primary.port, 1);
    out.push(format!(
        "primary after the replica's restart: {}",
        stats(primary.port)
    ));
    let mut r = RawClient::connect(replica.port).expect("connect");
    r.command(&["SELECT", "3"]);
    for command in [
        &["GET", "a"][..],
        &["GET", "b"],
        &["LRANGE", "l", "0", "-1"],
    ] {
        out.push(format!("{command:?} -> {}", show(&r.command(command))));
    }
    out.push(format!("db 0 keys: {}", run(replica.port, &["DBSIZE"])));
    out
}

/// `server`, shut down, started again on its port (so that its replicas find it) with `args`.
fn start_again(binary: &Path, server: &ServerProcess, args: &[&str]) -> ServerProcess {
    let (name, mut all) = if binary == ferrokv_binary() {
        ("ferrokv", vec![])
    } else {
        ("valkey", vec!["--save", ""])
    };
    all.extend(["--appendonly", "no", "--repl-diskless-sync-delay", "0"]);
    all.extend(args);
    common::start_at(name, binary, server.port, &all).expect("the server restarts on its port")
}

fn primary_restart(binary: &Path) -> Vec<String> {
    let dir = TempDir::new("primary-restart");
    let dir = dir.0.to_str().expect("utf-8").to_string();
    let primary_args = ["--dir", dir.as_str(), "--save", "3600 1"];
    let mut primary = start(binary, &primary_args);
    let replica = start(binary, &["--save", ""]);
    let port = primary.port.to_string();
    run(replica.port, &["REPLICAOF", "127.0.0.1", &port]);
    wait_link_up(replica.port);
    run(primary.port, &["SET", "k", "1"]);
    wait_caught_up(primary.port, 1);
    let before = |name| info_field(primary.port, "replication", name).unwrap_or_default();
    let (old_id, old_offset) = (before("master_replid"), before("master_repl_offset"));
    let old_offset: u64 = old_offset.parse().unwrap_or(0);
    shut_down(&mut primary);
    let primary = start_again(binary, &primary, &primary_args);
    wait_link_up(replica.port);
    run(primary.port, &["SET", "after", "restart"]);
    wait_caught_up(primary.port, 1);
    let field = |name| info_field(primary.port, "replication", name).unwrap_or_default();
    // The shutdown may ask the replica for an ACK first: the recorded offset is at least
    // the one read before it.
    let second: u64 = field("second_repl_offset").parse().unwrap_or(0);
    vec![
        format!("after the restart: {}", stats(primary.port)),
        format!("a new id: {}", field("master_replid") != old_id),
        format!("the old id second: {}", field("master_replid2") == old_id),
        format!("second offset past the old one: {}", second > old_offset),
        run(replica.port, &["GET", "after"]),
    ]
}

/// Keys and hash fields that expired on the primary are dropped when it loads its snapshot
/// again; their deletions (a DEL per key, an HDEL per field) open the history its replicas
/// continue, so a replica that resyncs partially drops them too.
fn primary_restart_with_expired_data(binary: &Path) -> Vec<String> {
    let dir = TempDir::new("primary-restart-expired");
    let dir = dir.0.to_str().expect("utf-8").to_string();
    let primary_args = [
        "--dir",
        dir.as_str(),
        "--save",
        "3600 1",
        "--enable-debug-command",
        "yes",
    ];
    let mut primary = start(binary, &primary_args);
    let replica = start(binary, &["--save", ""]);
    let port = primary.port.to_string();
    run(replica.port, &["REPLICAOF", "127.0.0.1", &port]);
    wait_link_up(replica.port);
    let p = primary.port;
    run(p, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    run(p, &["SET", "short", "v", "PX", "200"]);
    run(
        p,
        &[
            "HSETEX", "h", "PX", "200", "FIELDS", "2", "f1", "v1", "f2", "v2",
        ],
    );
    run(p, &["HSET", "h", "kept", "v"]);
    run(p, &["HSETEX", "gone", "PX", "200", "FIELDS", "1", "f", "v"]);
    wait_caught_up(p, 1);
    std::thread::sleep(Duration::from_millis(400));
    let mut out = vec![format!(
        "replica before: DBSIZE {} HLEN h {}",
        run(replica.port, &["DBSIZE"]),
        run(replica.port, &["HLEN", "h"])
    )];
    shut_down(&mut primary);
    let primary = start_again(binary, &primary, &primary_args);
    wait_link_up(replica.port);
    run(primary.port, &["SET", "after", "restart"]);
    wait_caught_up(primary.port, 1);
    out.push(format!("after the restart: {}", stats(primary.port)));
    for command in [
        &["DBSIZE"][..],
        &["HLEN", "h"],
        &["HGETALL", "h"],
        &["EXISTS", "gone"],
        &["GET", "after"],
    ] {
        out.push(format!(
            "replica {command:?} -> {}",
            run(replica.port, command)
        ));
    }
    out.push(format!("primary DBSIZE {}", run(primary.port, &["DBSIZE"])));
    out
}

#[test]
fn expired_keys_and_fields_dropped_by_a_restarted_primary_leave_its_replicas_too() {
    let ours = primary_restart_with_expired_data(&ferrokv_binary());
    let theirs = primary_restart_with_expired_data(&valkey_binary());
    assert_eq!(ours, theirs);
    assert!(
        ours[1].contains("sync_full=0 sync_partial_ok=1"),
        "{ours:#?}"
    );
}

/// A key that expired while the replica was down stays on it, hidden from reads, until its
/// primary deletes it (the replica does not drop it at load, as a primary would).
fn replica_restart_with_expired_key(binary: &Path) -> Vec<String> {
    let primary = start(binary, &["--save", "", "--enable-debug-command", "yes"]);
    let port = primary.port.to_string();
    let dir = TempDir::new("replica-restart-expired");
    let dir = dir.0.to_str().expect("utf-8").to_string();
    let replica_args = saving_replica_args(&dir, &port);
    let mut replica = start(binary, &replica_args);
    wait_link_up(replica.port);
    run(primary.port, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    run(primary.port, &["SET", "short", "v", "PX", "300"]);
    run(primary.port, &["SET", "kept", "v"]);
    wait_caught_up(primary.port, 1);
    shut_down(&mut replica);
    std::thread::sleep(Duration::from_millis(500));
    let replica = start(binary, &replica_args);
    wait_link_up(replica.port);
    wait_caught_up(primary.port, 1);
    vec![
        format!("replica DBSIZE: {}", run(replica.port, &["DBSIZE"])),
        format!(
            "replica GET short: {}",
            run(replica.port, &["GET", "short"])
        ),
        format!("primary DBSIZE: {}", run(primary.port, &["DBSIZE"])),
    ]
}

#[test]
fn a_restarted_replica_keeps_keys_that_expired_while_it_was_down() {
    let ours = replica_restart_with_expired_key(&ferrokv_binary());
    let theirs = replica_restart_with_expired_key(&valkey_binary());
    assert_eq!(ours, theirs);
    assert_eq!(ours[0], "replica DBSIZE: :2\\r\\n", "{ours:#?}");
}

#[test]
fn a_restarted_replica_continues_with_a_partial_sync() {
    let ours = replica_restart(&ferrokv_binary());
    let theirs = replica_restart(&valkey_binary());
    assert_eq!(ours, theirs);
    assert!(
        ours[0].contains("sync_full=0 sync_partial_ok=1"),
        "{ours:#?}"
    );
}

#[test]
fn the_replicas_of_a_restarted_primary_continue_with_a_partial_sync() {
    let ours = primary_restart(&ferrokv_binary());
    let theirs = primary_restart(&valkey_binary());
    assert_eq!(ours, theirs);
    assert!(
        ours[0].contains("sync_full=0 sync_partial_ok=1"),
        "{ours:#?}"
    );
}
