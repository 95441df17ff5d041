//! FAILOVER: the coordinated switch of a primary and one of its replicas. Its refusals are
//! compared with valkey's byte for byte; the switch itself runs between ferrokv servers under
//! a write load (no acknowledged write lost, the former primary continues with a partial
//! sync), with valkey on either side, and fails safely: a replica that never catches up
//! makes it time out, and a target that cannot answer makes the primary stay a primary.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::dataset::{dataset, fill_every_type};
use common::{
    RawClient, ServerProcess, eventually, info_field, link_up, show, signal, start_ferrokv,
    start_valkey, wait_caught_up,
};

fn command(port: u16, args: &[&str]) -> String {
    let mut c = RawClient::connect(port).expect("connect");
    show(&c.command(args))
}

fn failover_state(port: u16) -> String {
    info_field(port, "replication", "master_failover_state").unwrap_or_default()
}

fn role(port: u16) -> String {
    info_field(port, "replication", "role").unwrap_or_default()
}

fn same_data_eventually(a: u16, b: u16) {
    let mut last = (Default::default(), Default::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        last = (dataset(a), dataset(b));
        if last.0 == last.1 && !last.0.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the data differs:\n{:?}\n{:?}", last.0, last.1);
}

/// A primary with one replica linked and caught up.
fn pair(
    start: fn(&[&str]) -> ServerProcess,
    replica_start: fn(&[&str]) -> ServerProcess,
) -> (ServerProcess, ServerProcess) {
    let primary = start(&["--repl-diskless-sync-delay", "0"]);
    let port = primary.port.to_string();
    let replica = replica_start(&["--replicaof", "127.0.0.1", &port]);
    eventually(20, "the replica linked", || link_up(replica.port));
    wait_caught_up(primary.port, 1);
    (primary, replica)
}

#[test]
fn refusals_match_valkey() {
    let ours = start_ferrokv(&[]);
    let oracle = start_valkey(&[]);
    // A primary without replicas.
    let lone: &[&[&str]] = &[
        &["FAILOVER"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "TO", "127.0.0.1"],
        &["FAILOVER", "TO", "127.0.0.1", "abc"],
        &["FAILOVER", "TO", "127.0.0.1", "6379"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "-1"],
        &["FAILOVER", "TIMEOUT", "abc"],
        &["FAILOVER", "FORCE"],
        &["FAILOVER", "ABORT", "TIMEOUT", "5"],
        &["FAILOVER", "BOGUS"],
        &[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            "6379",
            "FORCE",
            "TIMEOUT",
            "10",
        ],
        &["FAILOVER", "TIMEOUT", "10", "TIMEOUT", "10"],
        &["PSYNC", "0123", "1", "FAILOVER"],
    ];
    for case in lone {
        assert_eq!(
            command(ours.port, case),
            command(oracle.port, case),
            "{case:?}"
        );
    }
    drop((ours, oracle));

    // A primary with one replica, and that replica.
    let (ours, ours_replica) = pair(start_ferrokv, start_ferrokv);
    let (oracle, oracle_replica) = pair(start_valkey, start_valkey);
    let with_replica = |replica_port: u16| -> Vec<Vec<String>> {
        let port = replica_port.to_string();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        vec![
            strings(&["FAILOVER", "FORCE"]),
            strings(&["FAILOVER", "TIMEOUT", "10", "FORCE"]),
            strings(&["FAILOVER", "TO", "127.0.0.1", &port, "FORCE"]),
            strings(&["FAILOVER", "TO", "localhost", &port]),
            strings(&["FAILOVER", "TO", "127.0.0.1", "1"]),
            strings(&["FAILOVER", "ABORT"]),
        ]
    };
    let (a, b) = (
        with_replica(ours_replica.port),
        with_replica(oracle_replica.port),
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            command(ours.port, &as_strs(x)),
            command(oracle.port, &as_strs(y)),
            "{x:?}"
        );
    }
    for case in [
        &["FAILOVER"][..],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["PSYNC", "0123", "1", "FAILOVER"],
    ] {
        assert_eq!(
            command(ours_replica.port, case),
            command(oracle_replica.port, case),
            "on the replica: {case:?}"
        );
    }

    // A failover waiting for a stopped replica: what may and may not happen meanwhile.
    for (primary, replica) in [(&ours, &ours_replica), (&oracle, &oracle_replica)] {
        signal(replica, "-STOP");
        command(primary.port, &["SET", "behind", "1"]);
        assert_eq!(
            command(primary.port, &["FAILOVER", "TIMEOUT", "20000"]),
            "+OK\\r\\n"
        );
        assert_eq!(failover_state(primary.port), "waiting-for-sync");
    }
    for case in [
        &["FAILOVER"][..],
        &["REPLICAOF", "NO", "ONE"],
        &["REPLICAOF", "127.0.0.1", "1"],
        &["PSYNC", "?", "-1"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "ABORT"],
    ] {
        assert_eq!(
            command(ours.port, case),
            command(oracle.port, case),
            "during a failover: {case:?}"
        );
    }
    for (primary, replica) in [(&ours, &ours_replica), (&oracle, &oracle_replica)] {
        assert_eq!(failover_state(primary.port), "no-failover");
        signal(replica, "-CONT");
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Writes `w:<n>` keys on one connection until the server refuses (READONLY after the
/// switch) or `stop` is set; returns the acknowledged numbers and the refusal.
fn writer(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<u64>, String)> {
    std::thread::spawn(move || {
        let mut c = RawClient::connect(port).expect("connect");
        let mut acked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in 0u64.. {
            if stop.load(SeqCst) || Instant::now() > deadline {
                return (acked, String::new());
            }
            let reply = show(&c.command(&["SET", &format!("w:{n}"), &n.to_string()]));
            if reply != "+OK\\r\\n" {
                return (acked, reply);
            }
            acked.push(n);
        }
        unreachable!()
    })
}

fn assert_has_all(port: u16, acked: &[u64]) {
    let mut c = RawClient::connect(port).expect("connect");
    for n in acked {
        assert_eq!(
            show(&c.command(&["GET", &format!("w:{n}")])),
            format!("${}\\r\\n{n}\\r\\n", n.to_string().len()),
            "acknowledged write w:{n} is on the new primary"
        );
    }
}

#[test]
fn ferrokv_primary_hands_over_to_a_ferrokv_replica_under_writes() {
    let primary = start_ferrokv(&["--repl-diskless-sync-delay", "0"]);
    fill_every_type(primary.port);
    let of = primary.port.to_string();
    let target = start_ferrokv(&["--replicaof", "127.0.0.1", &of]);
    let sibling = start_ferrokv(&["--replicaof", "127.0.0.1", &of]);
    eventually(20, "both replicas linked", || {
        link_up(target.port) && link_up(sibling.port)
    });
    wait_caught_up(primary.port, 2);

    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(primary.port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let to = target.port.to_string();
    assert_eq!(
        command(
            primary.port,
            &["FAILOVER", "TO", "127.0.0.1", &to, "TIMEOUT", "10000"]
        ),
        "+OK\\r\\n"
    );
    eventually(15, "the roles switched", || {
        role(target.port) == "master"
            && role(primary.port) == "slave"
            && link_up(primary.port)
            && failover_state(primary.port) == "no-failover"
    });
    let (acked, refusal) = writes.join().expect("writer");
    stop.store(true, SeqCst);
    assert!(
        refusal.starts_with("-READONLY"),
        "the paused writer is answered by the replica it became: {refusal}"
    );
    assert!(acked.len() > 10, "the writer wrote before the switch");
    assert_has_all(target.port, &acked);
    assert_eq!(
        info_field(primary.port, "replication", "master_port").as_deref(),
        Some(to.as_str())
    );
    // The former primary continued the new primary's history: no full sync.
    assert_eq!(
        info_field(target.port, "stats", "sync_full").as_deref(),
        Some("0")
    );
    assert_ne!(
        info_field(target.port, "stats", "sync_partial_ok").as_deref(),
        Some("0")
    );
    command(target.port, &["SET", "after", "switch"]);
    same_data_eventually(target.port, primary.port);
    // The sibling follows the former primary, now a replica of the new one.
    eventually(20, "the sibling relinked", || link_up(sibling.port));
    same_data_eventually(target.port, sibling.port);
}

fn switch_with(primary: ServerProcess, replica: ServerProcess) {
    fill_every_type(primary.port);
    wait_caught_up(primary.port, 1);
    assert_eq!(command(primary.port, &["FAILOVER"]), "+OK\\r\\n");
    eventually(15, "the roles switched", || {
        role(replica.port) == "master" && role(primary.port) == "slave" && link_up(primary.port)
    });
    assert_eq!(failover_state(primary.port), "no-failover");
    assert_eq!(
        info_field(replica.port, "stats", "sync_full").as_deref(),
        Some("0"),
        "the former primary continued with a partial sync"
    );
    command(replica.port, &["SET", "after", "switch"]);
    same_data_eventually(replica.port, primary.port);
}

#[test]
fn valkey_primary_hands_over_to_a_ferrokv_replica() {
    let (primary, replica) = pair(start_valkey, start_ferrokv);
    switch_with(primary, replica);
}

#[test]
fn ferrokv_primary_hands_over_to_a_valkey_replica() {
    let (primary, replica) = pair(start_ferrokv, start_valkey);
    switch_with(primary, replica);
}

#[test]
fn a_replica_that_never_catches_up_times_the_failover_out() {
    let (primary, replica) = pair(start_ferrokv, start_ferrokv);
    signal(&replica, "-STOP");
    command(primary.port, &["SET", "behind", "1"]);
    assert_eq!(
        command(primary.port, &["FAILOVER", "TIMEOUT", "3000"]),
        "+OK\\r\\n"
    );
    assert_eq!(failover_state(primary.port), "waiting-for-sync");
    // Writes wait; reads do not.
    let paused = std::thread::spawn({
        let port = primary.port;
        move || command(port, &["SET", "paused", "1"])
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(failover_state(primary.port), "waiting-for-sync");
    assert_eq!(command(primary.port, &["EXISTS", "paused"]), ":0\\r\\n");
    assert_eq!(command(primary.port, &["GET", "behind"]), "$1\\r\\n1\\r\\n");
    let reply = paused.join().expect("paused writer");
    assert_eq!(reply, "+OK\\r\\n", "the write goes on after the timeout");
    assert_eq!(failover_state(primary.port), "no-failover");
    assert_eq!(role(primary.port), "master");
    signal(&replica, "-CONT");
}

#[test]
fn a_target_that_cannot_answer_leaves_the_primary_in_charge() {
    let primary = start_ferrokv(&["--repl-diskless-sync-delay", "0", "--repl-timeout", "1"]);
    let of = primary.port.to_string();
    let replica = start_ferrokv(&["--replicaof", "127.0.0.1", &of]);
    eventually(20, "the replica linked", || link_up(replica.port));
    command(primary.port, &["SET", "k", "v"]);
    wait_caught_up(primary.port, 1);
    signal(&replica, "-STOP");
    command(primary.port, &["SET", "behind", "1"]);
    let to = replica.port.to_string();
    assert_eq!(
        command(
            primary.port,
            &[
                "FAILOVER",
                "TO",
                "127.0.0.1",
                &to,
                "FORCE",
                "TIMEOUT",
                "300"
            ]
        ),
        "+OK\\r\\n"
    );
    // FORCE goes on without the replica's acknowledgement; its PSYNC gets no answer within
    // repl-timeout, so the primary takes its role back and writes go on.
    eventually(15, "the failover given up", || {
        failover_state(primary.port) == "no-failover" && role(primary.port) == "master"
    });
    assert_eq!(command(primary.port, &["SET", "after", "1"]), "+OK\\r\\n");
    assert_eq!(command(primary.port, &["GET", "behind"]), "$1\\r\\n1\\r\\n");
    signal(&replica, "-CONT");
    // The replica comes back to the primary that kept its role.
    eventually(20, "the replica relinked", || link_up(replica.port));
    same_data_eventually(primary.port, replica.port);
}
