//! Interop under a write load that never stops: valkey-server 9.1 and redis-server 7.0 full-sync
//! from a ferrokv primary while it is written to, their links are cut twice and resume with
//! partial syncs, and the datasets end equal; then the other way round, a ferrokv replica of a
//! valkey and of a redis primary under the same load.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use common::dataset::dataset;
use common::{
    RawClient, ServerProcess, eventually, info_field, link_up, show, start_ferrokv, start_redis7,
    start_valkey, wait_caught_up,
};

/// The primaries' directives: a backlog that holds what the writer makes while a cut replica
/// reconnects (a second with the default 1 MB could overflow it and force a full sync).
const PRIMARY_ARGS: &[&str] = &[
    "--repl-diskless-sync-delay",
    "0",
    "--repl-backlog-size",
    "64mb",
];

/// Writes every type, with expiries, until `stop`; returns how many rounds it made.
fn writer(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = RawClient::connect(port).expect("connect");
        let mut i = 0u64;
        while !stop.load(SeqCst) {
            let n = i.to_string();
            let commands: [Vec<String>; 9] = [
                vec!["SET".into(), format!("s:{}", i % 500), n.clone()],
                vec!["INCR".into(), "counter".into()],
                vec!["RPUSH".into(), format!("l:{}", i % 20), n.clone()],
                vec![
                    "HSET".into(),
                    format!("h:{}", i % 20),
                    format!("f{}", i % 50),
                    n.clone(),
                ],
                vec![
                    "ZADD".into(),
                    format!("z:{}", i % 20),
                    n.clone(),
                    format!("m{}", i % 100),
                ],
                vec![
                    "SADD".into(),
                    format!("set:{}", i % 20),
                    (i % 300).to_string(),
                ],
                vec![
                    "SET".into(),
                    format!("e:{}", i % 100),
                    n.clone(),
                    "EX".into(),
                    "600".into(),
                ],
                vec!["LPOP".into(), format!("l:{}", (i + 7) % 20)],
                vec!["DEL".into(), format!("s:{}", (i * 7) % 500)],
            ];
            for command in &commands {
                let reply = c.command(command);
                assert!(!reply.starts_with(b"-"), "{command:?}: {}", show(&reply));
            }
            i += 1;
        }
        i
    })
}

fn stat(port: u16, field: &str) -> u64 {
    info_field(port, "stats", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn same_data(primary: u16, replica: u16) {
    let (p, r) = (dataset(primary), dataset(replica));
    assert!(
        p.len() > 100,
        "a dataset worth comparing ({} keys)",
        p.len()
    );
    let differing: Vec<_> = p
        .keys()
        .chain(r.keys())
        .filter(|k| p.get(*k) != r.get(*k))
        .map(|k| {
            (
                String::from_utf8_lossy(&k.1).into_owned(),
                p.get(k),
                r.get(k),
            )
        })
        .take(10)
        .collect();
    assert!(
        differing.is_empty(),
        "replica on {replica} differs from its primary (key, primary, replica): {differing:?}"
    );
}

/// Starts `replicas` (each `start(args)`) of `primary` while a writer runs, cuts their links
/// twice, stops the writer and compares the data. Returns the primary's (full, partial) syncs.
fn under_load(primary: &ServerProcess, starts: &[fn(&[&str]) -> ServerProcess]) -> (u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(primary.port, stop.clone());
    let port = primary.port.to_string();
    let replicas: Vec<ServerProcess> = starts
        .iter()
        .map(|start| start(&["--replicaof", "127.0.0.1", &port]))
        .collect();
    eventually(20, "the replicas linked", || {
        replicas.iter().all(|r| link_up(r.port))
    });
    let mut c = RawClient::connect(primary.port).expect("connect");
    for round in 0..2 {
        let partial = stat(primary.port, "sync_partial_ok");
        let killed = show(&c.command(&["CLIENT", "KILL", "TYPE", "replica"]));
        assert_eq!(
            killed,
            format!(":{}\\r\\n", replicas.len()),
            "round {round}"
        );
        eventually(20, "the replicas continued", || {
            stat(primary.port, "sync_partial_ok") == partial + replicas.len() as u64
                && replicas.iter().all(|r| link_up(r.port))
        });
    }
    stop.store(true, SeqCst);
    let rounds = writes.join().expect("writer");
    assert!(rounds > 100, "the writer kept writing ({rounds} rounds)");
    wait_caught_up(primary.port, replicas.len());
    for replica in &replicas {
        same_data(primary.port, replica.port);
    }
    (
        stat(primary.port, "sync_full"),
        stat(primary.port, "sync_partial_ok"),
    )
}

#[test]
fn valkey_and_redis_replicas_of_ferrokv_under_load() {
    let primary = start_ferrokv(PRIMARY_ARGS);
    let (full, partial) = under_load(&primary, &[start_valkey, start_redis7]);
    assert_eq!((full, partial), (2, 4));
}

#[test]
fn ferrokv_replica_of_valkey_under_load() {
    let primary = start_valkey(PRIMARY_ARGS);
    let (full, partial) = under_load(&primary, &[start_ferrokv]);
    assert_eq!((full, partial), (1, 2));
}

#[test]
fn ferrokv_replica_of_redis_under_load() {
    let primary = start_redis7(PRIMARY_ARGS);
    let (full, partial) = under_load(&primary, &[start_ferrokv]);
    assert_eq!((full, partial), (1, 2));
}
