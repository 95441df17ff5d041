//! Blocking sorted-set pops (BZPOPMIN, BZPOPMAX, BZMPOP) against a real ferrokv-server:
//! served by ZADD and the STORE commands from other connections, FIFO between waiters, the
//! no-steal guarantee, COUNT, RESP3 replies and timeouts. Every wait is bounded (the
//! clients' read timeout is 10 s, polling gives up after 5 s, and waiters time out in 5 s).

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv};

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

fn blocked_clients(control: &mut RawClient) -> Option<u64> {
    let text = String::from_utf8_lossy(&control.command(&["INFO", "clients"])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
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

fn bulk(s: &str) -> String {
    format!("${}\\r\\n{s}\\r\\n", s.len())
}

/// BZPOPMIN's RESP2 reply: `[key, member, score]`.
fn triple(key: &str, member: &str, score: &str) -> String {
    format!("*3\\r\\n{}{}{}", bulk(key), bulk(member), bulk(score))
}

#[test]
fn zadd_from_another_connection_serves_a_parked_bzpopmin() {
    let server = start_ferrokv(&[]);
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    send(&mut waiter, &["BZPOPMIN", "none", "z", "5"]);
    wait_blocked(&mut control, 1);
    // The pusher pipelines a pop right behind its ZADD: the waiter still gets the member.
    let mut pusher = connect(&server);
    let mut batch = encode(&["ZADD", "z", "2", "b", "1", "a"]);
    batch.extend(encode(&["ZPOPMIN", "z"]));
    pusher.send_raw(&batch);
    assert_eq!(reply(&mut pusher), ":2\\r\\n");
    assert_eq!(reply(&mut pusher), member_score("b", "2"));
    assert_eq!(reply(&mut waiter), triple("z", "a", "1"));
    assert_eq!(show(&control.command(&["EXISTS", "z"])), ":0\\r\\n");
    // ZINCRBY creating the key, and a STORE command, serve BZPOPMAX too.
    send(&mut waiter, &["BZPOPMAX", "z", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["ZINCRBY", "z", "1.5", "m"]);
    assert_eq!(reply(&mut waiter), triple("z", "m", "1.5"));
    control.command(&["ZADD", "src", "7", "x", "8", "y"]);
    send(&mut waiter, &["BZPOPMAX", "dst", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["ZUNIONSTORE", "dst", "1", "src"]);
    assert_eq!(reply(&mut waiter), triple("dst", "y", "8"));
    send(&mut waiter, &["BZPOPMIN", "dst2", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["ZRANGESTORE", "dst2", "src", "0", "-1"]);
    assert_eq!(reply(&mut waiter), triple("dst2", "x", "7"));
    // A list pushed under the key leaves the waiter parked.
    send(&mut waiter, &["BZPOPMIN", "q", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["LPUSH", "q", "v"]);
    assert_eq!(blocked_clients(&mut control), Some(1));
    control.command(&["DEL", "q"]);
    control.command(&["ZADD", "q", "3", "c"]);
    assert_eq!(reply(&mut waiter), triple("q", "c", "3"));
    assert_eq!(blocked_clients(&mut control), Some(0));
}

/// ZPOPMIN's RESP2 reply for one member: `[member, score]`.
fn member_score(member: &str, score: &str) -> String {
    format!("*2\\r\\n{}{}", bulk(member), bulk(score))
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let server = start_ferrokv(&[]);
    let mut control = connect(&server);
    let mut first = connect(&server);
    let mut second = connect(&server);
    send(&mut first, &["BZPOPMAX", "z", "5"]);
    wait_blocked(&mut control, 1);
    send(&mut second, &["BZPOPMAX", "z", "5"]);
    wait_blocked(&mut control, 2);
    control.command(&["ZADD", "z", "1", "a"]);
    assert_eq!(reply(&mut first), triple("z", "a", "1"));
    assert_eq!(blocked_clients(&mut control), Some(1));
    control.command(&["ZADD", "z", "1", "a", "2", "b"]);
    assert_eq!(reply(&mut second), triple("z", "b", "2"));
    assert_eq!(show(&control.command(&["ZCARD", "z"])), ":1\\r\\n");
    assert_eq!(blocked_clients(&mut control), Some(0));
}

#[test]
fn bzmpop_count_takes_up_to_count_members_and_replies_in_the_waiters_protocol() {
    let server = start_ferrokv(&[]);
    let mut control = connect(&server);
    let mut waiter = connect(&server);
    send(
        &mut waiter,
        &["BZMPOP", "5", "2", "a", "z", "MIN", "COUNT", "2"],
    );
    wait_blocked(&mut control, 1);
    control.command(&["ZADD", "z", "3", "c", "1", "a", "2", "b"]);
    let pair = |m: &str, s: &str| format!("*2\\r\\n{}{}", bulk(m), bulk(s));
    assert_eq!(
        reply(&mut waiter),
        format!(
            "*2\\r\\n{}*2\\r\\n{}{}",
            bulk("z"),
            pair("a", "1"),
            pair("b", "2")
        )
    );
    assert_eq!(show(&control.command(&["ZCARD", "z"])), ":1\\r\\n");
    // RESP3: scores are doubles, for BZMPOP and BZPOPMIN alike.
    waiter.command(&["HELLO", "3"]);
    send(&mut waiter, &["BZMPOP", "5", "1", "y", "MAX", "COUNT", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["ZADD", "y", "1.5", "p"]);
    assert_eq!(
        reply(&mut waiter),
        format!(
            "*2\\r\\n{}*1\\r\\n*2\\r\\n{},1.5\\r\\n",
            bulk("y"),
            bulk("p")
        )
    );
    send(&mut waiter, &["BZPOPMIN", "y", "5"]);
    wait_blocked(&mut control, 1);
    control.command(&["ZADD", "y", "4", "q"]);
    assert_eq!(
        reply(&mut waiter),
        format!("*3\\r\\n{}{},4\\r\\n", bulk("y"), bulk("q"))
    );
}

#[test]
fn timeouts_accept_fractions_and_reply_a_null_array() {
    let server = start_ferrokv(&[]);
    let mut c = connect(&server);
    for args in [
        vec!["BZPOPMIN", "z", "0.2"],
        vec!["BZPOPMAX", "z", "other", ".2"],
        vec!["BZMPOP", "0.2", "1", "z", "MIN", "COUNT", "3"],
    ] {
        let started = Instant::now();
        assert_eq!(show(&c.command(&args)), "*-1\\r\\n", "{args:?}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(3),
            "{args:?} took {took:?}"
        );
    }
    c.command(&["HELLO", "3"]);
    assert_eq!(show(&c.command(&["BZPOPMIN", "z", "0.01"])), "_\\r\\n");
    assert_eq!(show(&c.command(&["PING"])), "+PONG\\r\\n");
    assert_eq!(blocked_clients(&mut c), Some(0));
}
