//! A replica loading its primary's snapshot after `+FULLRESYNC` is a loading server, as in
//! Valkey: INFO says `loading:1` with the progress, reads get LOADING (never the emptied or
//! half-loaded keyspace), writes get READONLY first, and the whole dataset is there once the
//! load ends. Both `repl-diskless-load disabled` (through a file) and `on-empty-db` (from the
//! socket). Differential: the same steps on a valkey-server 9.1 pair, replies compared byte
//! for byte.

mod common;

use std::path::Path;

use common::{
    RawClient, ServerProcess, ferrokv_binary, info_field_of, show, valkey_binary, wait_for,
};

/// Either server with persistence off and `args`.
fn start(binary: &Path, args: &[&str]) -> ServerProcess {
    let mut all = vec!["--enable-debug-command", "yes"];
    all.extend_from_slice(args);
    if binary == ferrokv_binary() {
        all.extend(["--save", "", "--appendonly", "no"]);
        common::start_ferrokv(&all)
    } else {
        common::start_valkey(&all)
    }
}

fn persistence(c: &mut RawClient, field: &str) -> String {
    info_field_of(c, "persistence", field).unwrap_or_default()
}

/// What a replica answers while it loads 20000 keys from its primary, and after.
/// `own_key`: the replica has a key of its own before it syncs.
fn replica_loading(binary: &Path, diskless_load: &str, own_key: bool) -> Vec<String> {
    let primary = start(binary, &["--repl-diskless-sync-delay", "0"]);
    let mut p = RawClient::connect(primary.port).expect("connects");
    assert_eq!(
        p.command(&["DEBUG", "POPULATE", "20000", "key", "100"]),
        b"+OK\r\n"
    );
    // 300 us a key: about 6 seconds of loading. Valkey answers clients only between chunks
    // of what it reads: small chunks here.
    let replica = start(
        binary,
        &[
            "--repl-diskless-load",
            diskless_load,
            "--key-load-delay",
            "300",
            "--loading-process-events-interval-bytes",
            "1024",
        ],
    );
    let mut c = RawClient::connect(replica.port).expect("connects");
    if own_key {
        c.command(&["SET", "replica-own-key", "v"]);
    }
    let port = primary.port.to_string();
    assert_eq!(c.command(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    assert!(
        wait_for(20, || persistence(&mut c, "loading") == "1"),
        "the replica starts loading"
    );
    let mut out = vec![format!(
        "loading fields: {:?}",
        [
            "loading_total_bytes",
            "loading_loaded_bytes",
            "loading_loaded_perc"
        ]
        .map(|f| !persistence(&mut c, f).is_empty())
    )];
    let total: u64 = persistence(&mut c, "loading_total_bytes")
        .parse()
        .unwrap_or(0);
    out.push(format!("total bytes known: {}", total > 0));
    for command in [
        &["GET", "key:1"][..],
        &["GET", "replica-own-key"],
        &["DBSIZE"],
        &["PING"],
        &["SET", "k", "v"],
        &["ROLE"],
        &["MULTI"],
        &["GET", "key:1"],
        &["EXEC"],
    ] {
        let reply = show(&c.command(command)).replace(&port, "<primary port>");
        out.push(format!("{command:?} -> {reply}"));
    }
    for field in ["master_link_status", "master_sync_in_progress"] {
        out.push(format!(
            "{field}: {}",
            info_field_of(&mut c, "replication", field).unwrap_or_default()
        ));
    }
    assert_eq!(
        persistence(&mut c, "loading"),
        "1",
        "still loading after the commands"
    );
    assert!(
        wait_for(30, || persistence(&mut c, "loading") == "0"),
        "the load ends"
    );
    assert!(
        wait_for(10, || info_field_of(
            &mut c,
            "replication",
            "master_link_status"
        )
        .as_deref()
            == Some("up")),
        "the link comes up"
    );
    for command in [&["DBSIZE"][..], &["GET", "replica-own-key"]] {
        out.push(format!("{command:?} -> {}", show(&c.command(command))));
    }
    out
}

fn compare(diskless_load: &str, own_key: bool) -> Vec<String> {
    let ours = replica_loading(&ferrokv_binary(), diskless_load, own_key);
    let theirs = replica_loading(&valkey_binary(), diskless_load, own_key);
    assert_eq!(ours, theirs);
    assert!(
        ours.iter().any(|line| line.contains("LOADING")),
        "{ours:#?}"
    );
    ours
}

const LOADED_THROUGH_A_FILE: &str = "total bytes known: true";

#[test]
fn a_replica_loading_through_a_file_answers_as_valkey_does() {
    let lines = compare("disabled", false);
    assert!(
        lines.iter().any(|l| l == LOADED_THROUGH_A_FILE),
        "{lines:#?}"
    );
}

#[test]
fn a_replica_loading_from_the_socket_answers_as_valkey_does() {
    let lines = compare("on-empty-db", false);
    assert!(
        !lines.iter().any(|l| l == LOADED_THROUGH_A_FILE),
        "{lines:#?}"
    );
}

/// `on-empty-db` with a key on the replica: a failed transfer would lose it, so the
/// snapshot goes through a file (Valkey's rule).
#[test]
fn a_replica_with_data_loads_through_a_file_under_on_empty_db() {
    let lines = compare("on-empty-db", true);
    assert!(
        lines.iter().any(|l| l == LOADED_THROUGH_A_FILE),
        "{lines:#?}"
    );
}
