//! Replication over mutual TLS (`tls-replication yes`): a ferrokv replica of a ferrokv
//! primary, redis-server 7.0 (built with TLS) replicating from ferrokv, and ferrokv
//! replicating from redis 7.0 — each primary requiring client certificates, every link
//! checked against one test CA. A replica with a certificate from another CA stays down.

mod common;

use std::time::Duration;

use common::dataset::{dataset, fill_every_type};
use common::{
    RawClient, TempDir, free_port, info_field, start_ferrokv, start_redis7, wait_caught_up,
    wait_link_up,
};
use ferrokv_tls::test_pki::{Issued, Spec, TestCa};

struct Pki {
    _dir: TempDir,
    ca: TestCa,
    node: Issued,
    stranger: Issued,
}

fn pki() -> Pki {
    let dir = TempDir::new("repl-tls");
    let ca = TestCa::new(&dir.0, "ca").unwrap();
    let other = TestCa::new(&dir.0.join("other"), "other").unwrap();
    let spec = Spec {
        common_name: "node",
        dns: &["localhost", "127.0.0.1"],
        ..Spec::default()
    };
    let node = ca.issue("node", &spec).unwrap();
    let stranger = other.issue("stranger", &spec).unwrap();
    Pki {
        _dir: dir,
        ca,
        node,
        stranger,
    }
}

/// TLS directives for a server presenting `identity` and trusting the test CA.
fn tls_args(pki: &Pki, identity: &Issued, tls_port: u16) -> Vec<String> {
    [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        identity.cert(),
        "--tls-key-file",
        identity.key(),
        "--tls-ca-cert-file",
        pki.ca.cert_file.to_str().unwrap(),
        "--tls-replication",
        "yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn ferrokv_and_redis7_replicate_over_mutual_tls() {
    let pki = pki();
    let tls_port = free_port();
    let primary = start_ferrokv(&strs(
        &[
            tls_args(&pki, &pki.node, tls_port),
            vec!["--repl-diskless-sync-delay".into(), "0".into()],
        ]
        .concat(),
    ));
    fill_every_type(primary.port);
    let replicaof = vec![
        "--replicaof".to_string(),
        "127.0.0.1".into(),
        tls_port.to_string(),
    ];
    let ours = start_ferrokv(&strs(
        &[tls_args(&pki, &pki.node, free_port()), replicaof.clone()].concat(),
    ));
    let redis = start_redis7(&strs(
        &[tls_args(&pki, &pki.node, free_port()), replicaof.clone()].concat(),
    ));
    wait_link_up(ours.port);
    wait_link_up(redis.port);
    let mut c = RawClient::connect(primary.port).unwrap();
    c.command(&["SET", "over-tls", "1"]);
    c.command(&["INCR", "counter"]);
    wait_caught_up(primary.port, 2);
    let expected = dataset(primary.port);
    assert_eq!(dataset(ours.port), expected);
    assert_eq!(dataset(redis.port), expected);

    // A replica whose certificate the primary's CA did not sign is refused.
    let stranger = start_ferrokv(&strs(
        &[tls_args(&pki, &pki.stranger, free_port()), replicaof].concat(),
    ));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        info_field(stranger.port, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    assert_eq!(
        RawClient::connect(stranger.port)
            .unwrap()
            .command(&["GET", "over-tls"]),
        b"$-1\r\n"
    );
}

#[test]
fn ferrokv_replicates_from_redis7_over_mutual_tls() {
    let pki = pki();
    let tls_port = free_port();
    let primary = start_redis7(&strs(&tls_args(&pki, &pki.node, tls_port)));
    fill_every_type(primary.port);
    let replica = start_ferrokv(&strs(
        &[
            tls_args(&pki, &pki.node, free_port()),
            vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                tls_port.to_string(),
            ],
        ]
        .concat(),
    ));
    wait_link_up(replica.port);
    let mut c = RawClient::connect(primary.port).unwrap();
    c.command(&["SET", "from-redis", "1"]);
    wait_caught_up(primary.port, 1);
    assert_eq!(dataset(replica.port), dataset(primary.port));
}
