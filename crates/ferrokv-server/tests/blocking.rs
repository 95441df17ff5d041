//! Blocking list commands against a real ferrokv-server: FIFO service, the no-steal
//! guarantee, fractional timeouts, BLMOVE chains, CLIENT UNBLOCK, disconnect cleanup and
//! wake-ups across worker threads. Every wait is bounded (the clients' read timeout is 10 s,
//! and polling loops give up after 5 s).

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv};

fn server() -> ServerProcess {
    start_ferrokv(&[])
}

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

fn info_field(control: &mut RawClient, field: &str) -> Option<u64> {
    let text = String::from_utf8_lossy(&control.command(&["INFO", "clients"])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until `n` clients are blocked (so the order of blocking is the order of sending).
fn wait_blocked(control: &mut RawClient, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(control, "blocked_clients") != Some(n) {
        assert!(
            Instant::now() < deadline,
            "never saw {n} blocked clients (now {:?})",
            info_field(control, "blocked_clients")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn bulk(s: &str) -> String {
    format!("${}\\r\\n{s}\\r\\n", s.len())
}

fn pair(key: &str, value: &str) -> String {
    format!("*2\\r\\n{}{}", bulk(key), bulk(value))
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let server = server();
    let mut control = connect(&server);
    let mut waiters: Vec<RawClient> = (0..4).map(|_| connect(&server)).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", "q", "5"]);
        wait_blocked(&mut control, i as u64 + 1);
    }
    assert_eq!(
        show(&control.command(&["RPUSH", "q", "a", "b", "c"])),
        ":3\\r\\n"
    );
    assert_eq!(reply(&mut waiters[0]), pair("q", "a"));
    assert_eq!(reply(&mut waiters[1]), pair("q", "b"));
    assert_eq!(reply(&mut waiters[2]), pair("q", "c"));
    // The fourth is still waiting, and the list is gone.
    assert_eq!(info_field(&mut control, "blocked_clients"), Some(1));
    assert_eq!(show(&control.command(&["EXISTS", "q"])), ":0\\r\\n");
    control.command(&["LPUSH", "q", "d"]);
    assert_eq!(reply(&mut waiters[3]), pair("q", "d"));
    assert_eq!(info_field(&mut control, "blocked_clients"), Some(0));
}

#[test]
fn a_pushed_element_goes_to_the_waiter_not_to_a_later_pop() {
    let server = server();
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    send(&mut waiter, &["BRPOP", "q", "other", "5"]);
    wait_blocked(&mut control, 1);
    // The pusher pipelines a pop right behind its push: the waiter still gets the element.
    let mut pusher = connect(&server);
    let mut batch = encode(&["LPUSH", "q", "x"]);
    batch.extend(encode(&["LPOP", "q"]));
    pusher.send_raw(&batch);
    assert_eq!(reply(&mut pusher), ":1\\r\\n");
    assert_eq!(reply(&mut pusher), "$-1\\r\\n");
    assert_eq!(reply(&mut waiter), pair("q", "x"));
    // Many rounds, with a third client popping as fast as it can.
    for round in 0..20 {
        send(&mut waiter, &["BLPOP", "q", "5"]);
        wait_blocked(&mut control, 1);
        let value = format!("v{round}");
        pusher.command(&["RPUSH", "q", &value]);
        assert_eq!(show(&control.command(&["LPOP", "q"])), "$-1\\r\\n");
        assert_eq!(reply(&mut waiter), pair("q", &value));
    }
}

#[test]
fn timeouts_accept_fractions_and_reply_a_null_array() {
    let server = server();
    let mut c = connect(&server);
    for (cmd, timeout) in [
        (vec!["BLPOP", "q"], "0.2"),
        (vec!["BRPOP", "q", "r"], ".2"),
        (vec!["BLMOVE", "q", "d", "LEFT", "RIGHT"], "0.2"),
        (vec!["BRPOPLPUSH", "q", "d"], "0.2"),
    ] {
        let mut args = cmd.clone();
        args.push(timeout);
        let started = Instant::now();
        assert_eq!(show(&c.command(&args)), "*-1\\r\\n", "{cmd:?}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(3),
            "{cmd:?} took {took:?}"
        );
    }
    let started = Instant::now();
    assert_eq!(
        show(&c.command(&["BLMPOP", "0.05", "1", "q", "LEFT"])),
        "*-1\\r\\n"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // RESP3: a null.
    c.command(&["HELLO", "3"]);
    assert_eq!(show(&c.command(&["BLPOP", "q", "0.01"])), "_\\r\\n");
    // The client works normally afterwards.
    assert_eq!(show(&c.command(&["PING"])), "+PONG\\r\\n");
}

#[test]
fn blmove_chains_are_served_in_one_go() {
    let server = server();
    let mut control = connect(&server);
    let mut first = connect(&server);
    let mut second = connect(&server);
    let mut last = connect(&server);
    send(&mut first, &["BLMOVE", "a", "b", "LEFT", "RIGHT", "5"]);
    wait_blocked(&mut control, 1);
    send(&mut second, &["BRPOPLPUSH", "b", "c", "5"]);
    wait_blocked(&mut control, 2);
    send(
        &mut last,
        &["BLMPOP", "5", "2", "x", "c", "LEFT", "COUNT", "5"],
    );
    wait_blocked(&mut control, 3);
    // The push and the whole chain happen before the pusher's next command.
    let mut batch = encode(&["RPUSH", "a", "item"]);
    for key in ["a", "b", "c"] {
        batch.extend(encode(&["EXISTS", key]));
    }
    control.send_raw(&batch);
    assert_eq!(reply(&mut control), ":1\\r\\n");
    for _ in 0..3 {
        assert_eq!(reply(&mut control), ":0\\r\\n");
    }
    assert_eq!(reply(&mut first), bulk("item"));
    assert_eq!(reply(&mut second), bulk("item"));
    assert_eq!(
        reply(&mut last),
        format!("*2\\r\\n{}*1\\r\\n{}", bulk("c"), bulk("item"))
    );
    assert_eq!(info_field(&mut control, "blocked_clients"), Some(0));
}

#[test]
fn client_unblock_ends_the_wait_with_a_timeout_or_an_error() {
    let server = server();
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    let id = String::from_utf8_lossy(&waiter.command(&["CLIENT", "ID"]))
        .trim_start_matches(':')
        .trim()
        .to_string();
    assert_eq!(
        show(&control.command(&["CLIENT", "UNBLOCK", &id])),
        ":0\\r\\n"
    );
    send(&mut waiter, &["BLPOP", "q", "0"]);
    wait_blocked(&mut control, 1);
    let list =
        String::from_utf8_lossy(&control.command(&["CLIENT", "LIST", "ID", &id])).into_owned();
    assert!(list.contains("flags=b "), "{list}");
    assert!(list.contains("cmd=blpop"), "{list}");
    assert_eq!(info_field(&mut control, "total_blocking_keys"), Some(1));
    assert_eq!(
        info_field(&mut control, "clients_in_timeout_table"),
        Some(0)
    );
    assert_eq!(
        show(&control.command(&["CLIENT", "UNBLOCK", &id])),
        ":1\\r\\n"
    );
    assert_eq!(reply(&mut waiter), "*-1\\r\\n");

    send(&mut waiter, &["BLMOVE", "q", "d", "LEFT", "LEFT", "10"]);
    wait_blocked(&mut control, 1);
    assert_eq!(
        info_field(&mut control, "clients_in_timeout_table"),
        Some(1)
    );
    assert_eq!(
        show(&control.command(&["CLIENT", "UNBLOCK", &id, "ERROR"])),
        ":1\\r\\n"
    );
    assert_eq!(
        reply(&mut waiter),
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\\r\\n"
    );
    assert_eq!(info_field(&mut control, "blocked_clients"), Some(0));
    assert_eq!(info_field(&mut control, "total_blocking_keys"), Some(0));
    // Nothing is left to wake: a push stays in the list.
    control.command(&["RPUSH", "q", "v"]);
    assert_eq!(show(&control.command(&["LLEN", "q"])), ":1\\r\\n");
    let list =
        String::from_utf8_lossy(&control.command(&["CLIENT", "LIST", "ID", &id])).into_owned();
    assert!(list.contains("flags=N "), "{list}");
}

#[test]
fn a_blocked_client_that_disconnects_leaves_nothing_behind() {
    let server = server();
    let mut control = connect(&server);
    {
        let mut waiter = connect(&server);
        send(&mut waiter, &["BLPOP", "q", "0"]);
        wait_blocked(&mut control, 1);
    }
    wait_blocked(&mut control, 0);
    assert_eq!(info_field(&mut control, "total_blocking_keys"), Some(0));
    control.command(&["RPUSH", "q", "kept"]);
    assert_eq!(
        show(&control.command(&["LRANGE", "q", "0", "-1"])),
        format!("*1\\r\\n{}", bulk("kept"))
    );
    assert_eq!(info_field(&mut control, "connected_clients"), Some(1));
}

#[test]
fn pushes_wake_clients_on_other_worker_threads_and_only_in_their_db() {
    let server = server();
    let mut control = connect(&server);
    // Connections are dealt to worker threads round-robin, so consecutive connections land
    // on different threads whenever there is more than one.
    let mut waiters: Vec<RawClient> = (0..3).map(|_| connect(&server)).collect();
    let mut pushers: Vec<RawClient> = (0..3).map(|_| connect(&server)).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        w.command(&["SELECT", "1"]);
        send(w, &["BLPOP", &format!("k{i}"), "5"]);
    }
    wait_blocked(&mut control, 3);
    // The same key in database 0 wakes nobody, and neither does a string in database 1.
    control.command(&["RPUSH", "k0", "db0"]);
    control.command(&["SELECT", "1"]);
    control.command(&["SET", "k1", "string"]);
    control.command(&["DEL", "k1"]);
    assert_eq!(info_field(&mut control, "blocked_clients"), Some(3));
    for (i, p) in pushers.iter_mut().enumerate() {
        p.command(&["SELECT", "1"]);
        p.command(&["RPUSH", &format!("k{i}"), &format!("from-pusher-{i}")]);
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        assert_eq!(
            reply(w),
            pair(&format!("k{i}"), &format!("from-pusher-{i}"))
        );
    }
    control.command(&["SELECT", "0"]);
    assert_eq!(show(&control.command(&["LLEN", "k0"])), ":1\\r\\n");
}

#[test]
fn served_replies_use_the_blocked_clients_protocol() {
    let server = server();
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    waiter.command(&["HELLO", "3"]);
    send(
        &mut waiter,
        &["BLMPOP", "5", "1", "q", "RIGHT", "COUNT", "2"],
    );
    wait_blocked(&mut control, 1);
    control.command(&["RPUSH", "q", "1", "2", "3"]);
    assert_eq!(
        reply(&mut waiter),
        format!("*2\\r\\n{}*2\\r\\n{}{}", bulk("q"), bulk("3"), bulk("2"))
    );
    // A pipelined command behind the blocking one runs after it is served.
    let mut batch = encode(&["BLPOP", "q", "5"]);
    batch.extend(encode(&["PING"]));
    waiter.send_raw(&batch);
    assert_eq!(reply(&mut waiter), pair("q", "1"));
    assert_eq!(reply(&mut waiter), "+PONG\\r\\n");
    send(&mut waiter, &["BLPOP", "q", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["LPUSH", "q", "late"]);
    assert_eq!(reply(&mut waiter), pair("q", "late"));
}

#[test]
fn a_served_blmove_into_a_wrong_type_gets_wrongtype() {
    let server = server();
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    send(&mut waiter, &["BLMOVE", "src", "dst", "LEFT", "LEFT", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["SET", "dst", "string"]);
    control.command(&["RPUSH", "src", "x"]);
    assert_eq!(
        reply(&mut waiter),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\\r\\n"
    );
    assert_eq!(show(&control.command(&["LLEN", "src"])), ":1\\r\\n");
}

#[test]
fn keys_created_by_rename_move_and_copy_wake_blocked_clients() {
    let server = server();
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    control.command(&["RPUSH", "src", "a", "b", "c"]);
    send(&mut waiter, &["BLPOP", "renamed", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["RENAME", "src", "renamed"]);
    assert_eq!(reply(&mut waiter), pair("renamed", "a"));
    send(&mut waiter, &["BLPOP", "copied", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["COPY", "renamed", "copied"]);
    assert_eq!(reply(&mut waiter), pair("copied", "b"));
    waiter.command(&["SELECT", "2"]);
    send(&mut waiter, &["BLPOP", "renamed", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["MOVE", "renamed", "2"]);
    assert_eq!(reply(&mut waiter), pair("renamed", "b"));
}

/// The list SORT ... STORE creates serves clients waiting on it, as Valkey's does (checked
/// by hand against valkey 9.1.2: BLPOP gets the first element, BLMOVE moves it on).
#[test]
fn a_list_stored_by_sort_wakes_blocked_clients() {
    let server = server();
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    control.command(&["RPUSH", "src", "3", "1", "2"]);
    send(&mut waiter, &["BLPOP", "dst", "5"]);
    wait_blocked(&mut control, 1);
    assert_eq!(
        show(&control.command(&["SORT", "src", "STORE", "dst"])),
        ":3\\r\\n"
    );
    assert_eq!(reply(&mut waiter), pair("dst", "1"));
    assert_eq!(
        show(&control.command(&["LRANGE", "dst", "0", "-1"])),
        format!("*2\\r\\n{}{}", bulk("2"), bulk("3"))
    );
    send(
        &mut waiter,
        &["BLMOVE", "dst2", "dst3", "LEFT", "LEFT", "5"],
    );
    wait_blocked(&mut control, 1);
    control.command(&["SORT", "src", "DESC", "STORE", "dst2"]);
    assert_eq!(reply(&mut waiter), bulk("3"));
    assert_eq!(
        show(&control.command(&["LRANGE", "dst3", "0", "-1"])),
        format!("*1\\r\\n{}", bulk("3"))
    );
}
