//! `client-output-buffer-limit normal`: ordinary clients whose pending replies break the
//! limits are closed and counted, on ferrokv as on the oracle; the default stays unlimited.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, start_ferrokv, start_valkey};

const BIG: usize = 16 * 1024 * 1024;

fn stat(client: &mut RawClient, section: &str, field: &str) -> Option<u64> {
    let reply = client.command(&["INFO", section]);
    let text = String::from_utf8_lossy(&reply).to_string();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls until `field` reads `want` (at most 10 seconds).
fn wait_stat(client: &mut RawClient, section: &str, field: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if stat(client, section, field) == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{field} never reached {want}: {:?}",
        stat(client, section, field)
    );
}

fn scenario(server: &ServerProcess) {
    let mut admin = RawClient::connect(server.port).unwrap();
    let value = "x".repeat(BIG);
    assert_eq!(admin.command(&["SET", "big", &value]), b"+OK\r\n");
    // Unlimited by default: a reader gets the whole reply.
    let mut reader = RawClient::connect(server.port).unwrap();
    assert_eq!(reader.command(&["GET", "big"]).len(), BIG + 13);

    // Hard limit: a reply over it closes the client before it is sent.
    assert_eq!(
        admin.command(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0"
        ]),
        b"+OK\r\n"
    );
    let mut victim = RawClient::connect(server.port).unwrap();
    assert_eq!(victim.command(&["GET", "nosuch"]), b"$-1\r\n");
    victim.send_raw(&common::encode(&["GET", "big"]));
    wait_stat(
        &mut admin,
        "stats",
        "client_output_buffer_limit_disconnections",
        1,
    );
    assert!(victim.read_reply().is_err(), "the client was not closed");

    // Soft limit: a client that stops reading stays over it past its seconds.
    assert_eq!(
        admin.command(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 1mb 1"
        ]),
        b"+OK\r\n"
    );
    let mut slow = RawClient::connect(server.port).unwrap();
    slow.send_raw(&common::encode(&["GET", "big"]));
    wait_stat(
        &mut admin,
        "stats",
        "client_output_buffer_limit_disconnections",
        2,
    );
    wait_stat(&mut admin, "clients", "connected_clients", 2);
    // Small replies pass under both limits, and the server is fine.
    assert_eq!(admin.command(&["PING"]), b"+PONG\r\n");
    assert_eq!(reader.command(&["GET", "nosuch"]), b"$-1\r\n");
}

#[test]
fn normal_class_limits_close_ordinary_clients() {
    scenario(&start_ferrokv(&[]));
}

#[test]
fn normal_class_limits_on_the_oracle() {
    scenario(&start_valkey(&[]));
}
