//! SHUTDOWN on a primary whose replica is behind: the caller waits blocked with writes
//! paused (reads still served) until the replica has everything, so the last acknowledged
//! write is not lost; SHUTDOWN ABORT cancels and the waiting caller gets an error. The same
//! steps on a valkey-server 9.1 pair and a ferrokv pair, replies compared byte for byte.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    RawClient, ServerProcess, encode, ferrokv_binary, info_field_of, show, signal, valkey_binary,
    wait_caught_up, wait_for, wait_link_up,
};

fn start(binary: &Path) -> ServerProcess {
    let args = ["--save", "", "--appendonly", "no"];
    if binary == ferrokv_binary() {
        common::start_ferrokv(&args)
    } else {
        common::start_valkey(&args)
    }
}

fn run(c: &mut RawClient, args: &[&str]) -> String {
    show(&c.command(args))
}

fn steps(binary: &Path) -> Vec<String> {
    let mut primary = start(binary);
    let replica = start(binary);
    let mut r = RawClient::connect(replica.port).expect("connect replica");
    let port = primary.port.to_string();
    run(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_link_up(replica.port);
    let mut c = RawClient::connect(primary.port).expect("connect primary");
    run(&mut c, &["SET", "k", "1"]);
    wait_caught_up(primary.port, 1);

    // The replica stops reading: the next write stays unacknowledged.
    signal(&replica, "-STOP");
    let mut out = vec![run(&mut c, &["INCR", "k"])];
    let mut first = RawClient::connect(primary.port).expect("connect");
    first.send_raw(&encode(&["SHUTDOWN"]));
    assert!(
        wait_for(10, || info_field_of(
            &mut c,
            "server",
            "shutdown_in_milliseconds"
        )
        .and_then(|ms| ms.parse::<u64>().ok())
        .is_some_and(|ms| ms > 0)),
        "the shutdown waits for the replica"
    );
    for field in ["paused_reason", "paused_actions", "blocked_clients"] {
        out.push(format!(
            "{field}: {}",
            info_field_of(&mut c, "clients", field).unwrap_or_default()
        ));
    }
    out.push(run(&mut c, &["GET", "k"]));
    for command in [
        &["SHUTDOWN", "NOW", "ABORT"][..],
        &["SHUTDOWN", "BOGUS"],
        &["MULTI"],
        &["SHUTDOWN"],
        &["EXEC"],
        &["SHUTDOWN", "ABORT"],
    ] {
        out.push(format!("{command:?} -> {}", run(&mut c, command)));
    }
    let answer = first
        .read_reply()
        .expect("the waiting SHUTDOWN is answered");
    out.push(format!("waiting SHUTDOWN -> {}", show(&answer)));
    out.push(run(&mut c, &["SHUTDOWN", "ABORT"]));
    out.push(format!(
        "shutdown_in_milliseconds after abort: {:?}",
        info_field_of(&mut c, "server", "shutdown_in_milliseconds")
    ));
    out.push(run(&mut c, &["SET", "after", "abort"]));

    // Now for real: it waits until the resumed replica has both writes, then exits.
    let mut second = RawClient::connect(primary.port).expect("connect");
    second.send_raw(&encode(&["SHUTDOWN"]));
    std::thread::sleep(Duration::from_millis(300));
    out.push(format!(
        "still up while the replica is stopped: {}",
        primary.child.try_wait().ok().flatten().is_none()
    ));
    signal(&replica, "-CONT");
    let exited = common::wait_exit(&mut primary.child, 15);
    out.push(format!("exited: {exited}"));
    out.push(run(&mut r, &["GET", "k"]));
    out.push(run(&mut r, &["GET", "after"]));
    out
}

#[test]
fn shutdown_waits_for_a_lagging_replica_as_valkey_does() {
    let ours = steps(&ferrokv_binary());
    let theirs = steps(&valkey_binary());
    assert_eq!(ours, theirs);
    assert!(ours.contains(&"exited: true".to_string()), "{ours:#?}");
    assert!(ours.contains(&"$1\\r\\n2\\r\\n".to_string()), "{ours:#?}");
}
