//! WAITAOF numlocal numreplicas timeout: the local AOF's fsync and the replicas' `FACK`s,
//! with ferrokv and valkey on either side of the link; its refusals compared with valkey's.

mod common;

use common::{
    RawClient, ServerProcess, eventually, link_up, show, signal, start_ferrokv, start_valkey,
    wait_caught_up,
};

fn command(port: u16, args: &[&str]) -> String {
    let mut c = RawClient::connect(port).expect("connect");
    show(&c.command(args))
}

/// A primary with one replica linked and caught up.
fn pair(
    primary: fn(&[&str]) -> ServerProcess,
    primary_args: &[&str],
    replica: fn(&[&str]) -> ServerProcess,
    replica_args: &[&str],
) -> (ServerProcess, ServerProcess) {
    let mut args = vec!["--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(primary_args);
    let primary = primary(&args);
    let port = primary.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend_from_slice(replica_args);
    let replica = replica(&args);
    eventually(20, "the replica linked", || link_up(replica.port));
    wait_caught_up(primary.port, 1);
    (primary, replica)
}

#[test]
fn refusals_match_valkey() {
    let cases: &[&[&str]] = &[
        &["WAITAOF", "1", "0", "0"],
        &["WAITAOF", "0", "0", "0"],
        &["WAITAOF", "2", "0", "0"],
        &["WAITAOF", "-1", "0", "0"],
        &["WAITAOF", "0", "-1", "0"],
        &["WAITAOF", "0", "0", "-1"],
        &["WAITAOF", "a", "0", "0"],
        &["WAITAOF", "0", "a", "0"],
        &["WAITAOF", "0", "0", "a"],
        &["WAITAOF", "0", "0"],
    ];
    for aof in ["no", "yes"] {
        let ours = start_ferrokv(&["--appendonly", aof]);
        let oracle = start_valkey(&["--appendonly", aof]);
        command(ours.port, &["SET", "k", "v"]);
        command(oracle.port, &["SET", "k", "v"]);
        for case in cases {
            assert_eq!(
                command(ours.port, case),
                command(oracle.port, case),
                "appendonly {aof}: {case:?}"
            );
        }
    }
    let (_ours, ours_replica) = pair(start_ferrokv, &[], start_ferrokv, &[]);
    let (_oracle, oracle_replica) = pair(start_valkey, &[], start_valkey, &[]);
    for case in [&["WAITAOF", "0", "0", "0"][..], &["WAITAOF", "1", "1", "0"]] {
        assert_eq!(
            command(ours_replica.port, case),
            command(oracle_replica.port, case),
            "on a replica: {case:?}"
        );
    }
}

/// Writes, then WAITAOF `local` 1 on the same connection.
fn write_then_waitaof(primary: u16, local: &str, timeout: &str) -> String {
    let mut c = RawClient::connect(primary).expect("connect");
    assert_eq!(show(&c.command(&["SET", "durable", "1"])), "+OK\\r\\n");
    show(&c.command(&["WAITAOF", local, "1", timeout]))
}

#[test]
fn counts_the_local_fsync_and_the_replicas_fsyncs() {
    // everysec on both sides: the answer waits for the next fsync of each.
    let (primary, _replica) = pair(
        start_ferrokv,
        &["--appendonly", "yes"],
        start_ferrokv,
        &["--appendonly", "yes"],
    );
    assert_eq!(
        write_then_waitaof(primary.port, "1", "10000"),
        "*2\\r\\n:1\\r\\n:1\\r\\n"
    );
    // A replica without an AOF counts what it applied, as valkey's does.
    let (primary, _replica) = pair(start_ferrokv, &[], start_ferrokv, &[]);
    assert_eq!(
        write_then_waitaof(primary.port, "0", "10000"),
        "*2\\r\\n:0\\r\\n:1\\r\\n"
    );
}

#[test]
fn a_stopped_replica_is_not_counted_at_the_timeout() {
    let (primary, replica) = pair(start_ferrokv, &["--appendonly", "yes"], start_ferrokv, &[]);
    signal(&replica, "-STOP");
    // Under everysec the local fsync comes within about a second of the write: the timeout
    // leaves room for it (500 ms raced it under a loaded test run).
    assert_eq!(
        write_then_waitaof(primary.port, "1", "2500"),
        "*2\\r\\n:1\\r\\n:0\\r\\n"
    );
    signal(&replica, "-CONT");
}

#[test]
fn valkey_replica_acknowledges_its_fsync_to_ferrokv() {
    let (primary, _replica) = pair(
        start_ferrokv,
        &["--appendonly", "yes"],
        start_valkey,
        &["--appendonly", "yes"],
    );
    assert_eq!(
        write_then_waitaof(primary.port, "1", "10000"),
        "*2\\r\\n:1\\r\\n:1\\r\\n"
    );
}

#[test]
fn ferrokv_replica_acknowledges_its_fsync_to_valkey() {
    let (primary, _replica) = pair(
        start_valkey,
        &["--appendonly", "yes"],
        start_ferrokv,
        &["--appendonly", "yes"],
    );
    assert_eq!(
        write_then_waitaof(primary.port, "1", "10000"),
        "*2\\r\\n:1\\r\\n:1\\r\\n"
    );
}
