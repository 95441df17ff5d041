//! `repl-diskless-load swapdb`: a replica loads its primary's snapshot aside, serving its old
//! data meanwhile, and keeps that data when the transfer fails; `on-empty-db` empties first.
//! A scripted primary sends the beginning of a snapshot, stalls, then hangs up.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use common::dataset::dataset;
use common::{RawClient, eventually, info_field, link_up, show, start_ferrokv, wait_caught_up};

fn command(port: u16, args: &[&str]) -> String {
    let mut c = RawClient::connect(port).expect("connect");
    show(&c.command(args))
}

/// Reads one RESP array command; `None` at the end of the connection.
fn read_command(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let count: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).ok()?;
        line.clear();
        reader.read_line(&mut line).ok()?;
        args.push(line.trim_end().to_string());
    }
    Some(args)
}

/// A primary that accepts one replica, answers its handshake with `+FULLRESYNC`, sends the
/// first bytes of an EOF-marked RDB and hangs up when `hang_up` receives.
fn stalling_primary() -> (u16, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (hang_up, wait) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept");
        let mut out = socket.try_clone().expect("clone");
        let mut reader = BufReader::new(socket);
        while let Some(args) = read_command(&mut reader) {
            let name = args[0].to_ascii_uppercase();
            if name == "PSYNC" {
                let mark = "m".repeat(40);
                let id = "a".repeat(40);
                // The RDB's header only: the loader then waits for its first opcode.
                let head = format!("+FULLRESYNC {id} 0\r\n$EOF:{mark}\r\nREDIS0011");
                out.write_all(head.as_bytes()).expect("write");
                let _ = wait.recv();
                return;
            }
            let reply: &[u8] = if name == "PING" {
                b"+PONG\r\n"
            } else {
                b"+OK\r\n"
            };
            out.write_all(reply).expect("write");
        }
    });
    (port, hang_up)
}

/// A replica with 100 keys of its own starts a sync that stalls and then fails; returns the
/// keys it has at the end, and whether it served the old data while the load stalled.
fn failed_sync(diskless_load: &str) -> (String, bool) {
    let replica = start_ferrokv(&["--repl-diskless-load", diskless_load]);
    for i in 0..100 {
        command(replica.port, &["SET", &format!("old:{i}"), "v"]);
    }
    let (port, hang_up) = stalling_primary();
    command(replica.port, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    eventually(10, "the transfer started", || {
        info_field(replica.port, "replication", "master_sync_in_progress").as_deref() == Some("1")
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let served = command(replica.port, &["GET", "old:7"]) == "$1\\r\\nv\\r\\n"
        && info_field(replica.port, "persistence", "async_loading").as_deref() == Some("1");
    hang_up.send(()).expect("hang up");
    eventually(10, "the transfer given up", || {
        info_field(replica.port, "replication", "master_sync_in_progress").as_deref() == Some("0")
    });
    (command(replica.port, &["DBSIZE"]), served)
}

#[test]
fn swapdb_serves_and_keeps_the_old_data_when_the_transfer_fails() {
    assert_eq!(failed_sync("swapdb"), (":100\\r\\n".to_string(), true));
}

#[test]
fn on_empty_db_loses_the_old_data_when_the_transfer_fails() {
    // The contrast: the same failure without swapdb empties the replica.
    let (keys, served) = failed_sync("on-empty-db");
    assert_eq!(keys, ":0\\r\\n");
    assert!(!served);
}

#[test]
fn swapdb_replaces_the_old_data_with_a_complete_snapshot() {
    let primary = start_ferrokv(&["--repl-diskless-sync-delay", "0"]);
    common::dataset::fill_every_type(primary.port);
    let replica = start_ferrokv(&["--repl-diskless-load", "swapdb"]);
    command(replica.port, &["SET", "old", "v"]);
    command(
        replica.port,
        &["REPLICAOF", "127.0.0.1", &primary.port.to_string()],
    );
    eventually(20, "the replica linked", || link_up(replica.port));
    wait_caught_up(primary.port, 1);
    assert_eq!(dataset(primary.port), dataset(replica.port));
    assert_eq!(command(replica.port, &["EXISTS", "old"]), ":0\\r\\n");
}
