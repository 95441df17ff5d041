//! XREAD BLOCK and XREADGROUP BLOCK against real servers. Each scenario runs on ferrokv and
//! on the oracle valkey-server and the replies every client sees must be identical: `$`
//! semantics, every XREAD waiter getting the same entry, XREADGROUP waiters sharing new
//! entries in arrival order, timeouts, CLIENT UNBLOCK, and the errors a waiter gets when its
//! group or key goes away. Every wait is bounded (read timeout 10 s, polling gives up after
//! 5 s, blocking timeouts are at most 5 s).

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv, start_valkey};

fn connect(server: &ServerProcess) -> RawClient {
    RawClient::connect(server.port).expect("connect")
}

/// Sends a command without reading its reply (the client is about to block).
fn send(client: &mut RawClient, args: &[&str]) {
    client.send_raw(&encode(args));
}

fn reply(client: &mut RawClient) -> String {
    show(&client.read_reply().expect("reply"))
}

fn run(control: &mut RawClient, args: &[&str]) -> String {
    show(&control.command(args))
}

fn blocked_clients(control: &mut RawClient) -> Option<u64> {
    let text = String::from_utf8_lossy(&control.command(&["INFO", "clients"])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A field of INFO clients.
fn clients_field(control: &mut RawClient, name: &str) -> String {
    let text = String::from_utf8_lossy(&control.command(&["INFO", "clients"])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or("(missing)")
        .to_string()
}

/// `command`'s calls, rejected and failed counts in INFO commandstats (times vary).
fn call_counts(control: &mut RawClient, command: &str) -> String {
    let text = String::from_utf8_lossy(&control.command(&["INFO", "commandstats"])).into_owned();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:")))
        .unwrap_or("(missing)");
    line.split(',')
        .filter(|field| !field.starts_with("usec"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits until `n` clients are blocked (so the order of blocking is the order of sending).
fn wait_blocked(control: &mut RawClient, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(control) != Some(n) {
        assert!(
            Instant::now() < deadline,
            "never saw {n} blocked clients (now {:?})",
            blocked_clients(control)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `scenario` on a fresh ferrokv and a fresh valkey and compares what it records.
fn same_on_both(scenario: fn(&ServerProcess) -> Vec<String>) {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let ours = scenario(&ferrokv);
    let theirs = scenario(&valkey);
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "step {i} differs\n   ferrokv: {a}\n    valkey: {b}");
    }
}

#[test]
fn xread_dollar_gets_only_new_entries_and_every_waiter_gets_them() {
    same_on_both(|server| {
        let mut log = Vec::new();
        let mut control = connect(server);
        run(&mut control, &["XADD", "s", "1-1", "old", "1"]);
        let mut a = connect(server);
        let mut b = connect(server);
        send(&mut a, &["XREAD", "BLOCK", "5000", "STREAMS", "s", "$"]);
        wait_blocked(&mut control, 1);
        send(
            &mut b,
            &["XREAD", "BLOCK", "5000", "STREAMS", "other", "s", "0", "$"],
        );
        wait_blocked(&mut control, 2);
        // Another stream and another type under a watched key wake nobody.
        run(&mut control, &["XADD", "unrelated", "1-1", "x", "1"]);
        log.push(run(&mut control, &["XADD", "s", "2-1", "new", "2"]));
        log.push(reply(&mut a));
        log.push(reply(&mut b));
        log.push(format!("{:?}", blocked_clients(&mut control)));
        log
    });
}

#[test]
fn xread_waiter_on_several_keys_is_served_by_the_first_written() {
    same_on_both(|server| {
        let mut log = Vec::new();
        let mut control = connect(server);
        let mut waiter = connect(server);
        send(
            &mut waiter,
            &[
                "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "a", "b", "$", "$",
            ],
        );
        wait_blocked(&mut control, 1);
        run(&mut control, &["SET", "a", "string"]);
        run(&mut control, &["DEL", "a"]);
        log.push(run(&mut control, &["XADD", "b", "5-1", "f", "v"]));
        log.push(reply(&mut waiter));
        // A pipeline: XADD then XDEL of the same entry; the waiter saw the add.
        send(&mut waiter, &["XREAD", "BLOCK", "0", "STREAMS", "b", "$"]);
        wait_blocked(&mut control, 1);
        let mut batch = encode(&["XADD", "b", "6-1", "g", "w"]);
        batch.extend(encode(&["XDEL", "b", "6-1"]));
        control.send_raw(&batch);
        log.push(reply(&mut control));
        log.push(reply(&mut control));
        log.push(reply(&mut waiter));
        log
    });
}

#[test]
fn xreadgroup_waiters_share_new_entries_in_arrival_order() {
    same_on_both(|server| {
        let mut log = Vec::new();
        let mut control = connect(server);
        run(
            &mut control,
            &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
        );
        let mut first = connect(server);
        let mut second = connect(server);
        send(
            &mut first,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "BLOCK",
                "5000",
                "STREAMS",
                "s",
                ">",
            ],
        );
        wait_blocked(&mut control, 1);
        send(
            &mut second,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c2",
                "COUNT",
                "1",
                "BLOCK",
                "5000",
                "STREAMS",
                "s",
                ">",
            ],
        );
        wait_blocked(&mut control, 2);
        log.push(run(&mut control, &["XADD", "s", "1-1", "a", "1"]));
        log.push(reply(&mut first));
        log.push(format!("{:?}", blocked_clients(&mut control)));
        log.push(run(&mut control, &["XADD", "s", "2-1", "b", "2"]));
        log.push(reply(&mut second));
        log.push(run(&mut control, &["XPENDING", "s", "g"]));
        log.push(run(&mut control, &["XINFO", "GROUPS", "s"]));
        // NOACK waiters take entries without a pending entry.
        send(
            &mut first,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "NOACK",
                "BLOCK",
                "5000",
                "STREAMS",
                "s",
                ">",
            ],
        );
        wait_blocked(&mut control, 1);
        run(&mut control, &["XADD", "s", "3-1", "c", "3"]);
        log.push(reply(&mut first));
        log.push(run(&mut control, &["XPENDING", "s", "g"]));
        log
    });
}

#[test]
fn xreadgroup_waiters_hear_when_the_group_or_key_goes() {
    same_on_both(|server| {
        let mut log = Vec::new();
        let mut control = connect(server);
        let mut waiter = connect(server);
        let read = [
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "5000",
            "STREAMS",
            "s",
            ">",
        ];
        for breaker in [
            &["DEL", "s"][..],
            &["XGROUP", "DESTROY", "s", "g"],
            &["SET", "s", "v"],
            &["RENAME", "s", "s2"],
            &["UNLINK", "s"],
            &["FLUSHDB"],
            &["FLUSHALL"],
        ] {
            run(&mut control, &["DEL", "s", "s2"]);
            run(
                &mut control,
                &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
            );
            run(&mut control, &["CONFIG", "RESETSTAT"]);
            send(&mut waiter, &read);
            wait_blocked(&mut control, 1);
            // The waiter also wakes if the key goes: a key "blocked on nokey".
            log.push(clients_field(&mut control, "total_blocking_keys_on_nokey"));
            log.push(run(&mut control, breaker));
            log.push(reply(&mut waiter));
            // An error that ends the wait makes the call a failed one.
            log.push(call_counts(&mut control, "xreadgroup"));
        }
        log
    });
}

fn client_id(client: &mut RawClient) -> String {
    let reply = show(&client.command(&["CLIENT", "ID"]));
    reply
        .trim_start_matches(':')
        .trim_end_matches("\\r\\n")
        .to_string()
}

#[test]
fn xread_waiter_survives_deletion_and_timeouts_and_unblock_work() {
    same_on_both(|server| {
        let mut log = Vec::new();
        let mut control = connect(server);
        let mut waiter = connect(server);
        let id = client_id(&mut waiter);
        run(&mut control, &["XADD", "s", "1-1", "a", "1"]);
        send(
            &mut waiter,
            &["XREAD", "BLOCK", "5000", "STREAMS", "s", "$"],
        );
        wait_blocked(&mut control, 1);
        log.push(run(&mut control, &["DEL", "s"]));
        log.push(run(&mut control, &["FLUSHALL"]));
        log.push(format!("{:?}", blocked_clients(&mut control)));
        log.push(run(&mut control, &["XADD", "s", "2-1", "b", "2"]));
        log.push(reply(&mut waiter));
        // Timeout: a null array after about 100 ms.
        let started = Instant::now();
        log.push(show(
            &waiter.command(&["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]),
        ));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(90),
            "returned after {waited:?}"
        );
        log.push(show(&waiter.command(&[
            "XREADGROUP",
            "GROUP",
            "nog",
            "c",
            "BLOCK",
            "100",
            "STREAMS",
            "s",
            ">",
        ])));
        run(&mut control, &["XGROUP", "CREATE", "s", "g", "$"]);
        log.push(show(&waiter.command(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "100",
            "STREAMS",
            "s",
            ">",
        ])));
        // CLIENT UNBLOCK: TIMEOUT gives the null reply, ERROR the UNBLOCKED error.
        send(&mut waiter, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        wait_blocked(&mut control, 1);
        log.push(run(&mut control, &["CLIENT", "UNBLOCK", &id, "TIMEOUT"]));
        log.push(reply(&mut waiter));
        send(
            &mut waiter,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        );
        wait_blocked(&mut control, 1);
        log.push(run(&mut control, &["CLIENT", "UNBLOCK", &id, "ERROR"]));
        log.push(reply(&mut waiter));
        // CLIENT UNBLOCK ... ERROR counts as a rejected call.
        log.push(call_counts(&mut control, "xreadgroup"));
        log.push(call_counts(&mut control, "xread"));
        log
    });
}

#[test]
fn resp3_waiters_get_maps() {
    same_on_both(|server| {
        let mut log = Vec::new();
        let mut control = connect(server);
        let mut waiter = connect(server);
        waiter.command(&["HELLO", "3"]);
        run(
            &mut control,
            &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
        );
        send(
            &mut waiter,
            &["XREAD", "BLOCK", "5000", "STREAMS", "s", "t", "$", "$"],
        );
        wait_blocked(&mut control, 1);
        run(&mut control, &["XADD", "t", "1-1", "a", "1"]);
        log.push(reply(&mut waiter));
        send(
            &mut waiter,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "5000",
                "STREAMS",
                "s",
                ">",
            ],
        );
        wait_blocked(&mut control, 1);
        run(&mut control, &["XADD", "s", "1-1", "a", "1"]);
        log.push(reply(&mut waiter));
        log
    });
}
