//! Scripts across clients and worker threads: BUSY past `busy-reply-threshold`, SCRIPT KILL
//! and FUNCTION KILL, a script that wrote cannot be killed, SHUTDOWN NOSAVE ends one, a
//! script is atomic against writers on other threads, and blocked clients are served after
//! it. Every script loops against a deadline (at most 3 s) and every read times out.
//!
//! A script runs on its caller's worker thread and holds that thread, so the other
//! connections used here are opened before the script starts, on the next worker (two
//! workers, connections handed out round-robin).

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv};

fn server() -> ServerProcess {
    start_ferrokv(&["--worker-threads", "2", "--busy-reply-threshold", "100"])
}

fn connect(server: &ServerProcess) -> RawClient {
    RawClient::connect(server.port).expect("connect")
}

fn cmd(client: &mut RawClient, args: &[&str]) -> String {
    show(&client.command(args))
}

/// A script that spins until `seconds` have passed (by the server's clock), after `before`.
fn spin(before: &str, seconds: u32) -> String {
    format!(
        "{before} local t = tonumber(redis.call('time')[1]) + {seconds} \
         while tonumber(redis.call('time')[1]) < t do end return 'done'"
    )
}

const BUSY: &str = "-BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\\r\\n";
const UNKILLABLE: &str = "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\\r\\n";

/// Sends `args` on `client` without waiting for the reply.
fn send(client: &mut RawClient, args: &[&str]) {
    client.send_raw(&encode(args));
}

#[test]
fn busy_then_script_kill() {
    let server = server();
    let mut runner = connect(&server);
    let mut other = connect(&server);
    assert_eq!(
        cmd(&mut other, &["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\\r\\n"
    );
    send(&mut runner, &["EVAL", &spin("", 3), "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(cmd(&mut other, &["GET", "k"]), BUSY);
    assert_eq!(cmd(&mut other, &["PING"]), BUSY);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(cmd(&mut other, &["FUNCTION", "STATS"]), BUSY);
    assert_eq!(cmd(&mut other, &["SCRIPT", "KILL"]), "+OK\\r\\n");
    assert_eq!(
        show(&runner.read_reply().expect("killed script's reply")),
        "-ERR Script killed by user with SCRIPT KILL. script: on @user_script:1.\\r\\n"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(cmd(&mut other, &["PING"]), "+PONG\\r\\n");
}

#[test]
fn a_function_is_killed_with_function_kill() {
    let server = server();
    let mut runner = connect(&server);
    let mut other = connect(&server);
    let lib = format!(
        "#!lua name=spinlib\nredis.register_function('spin', function() {} end)",
        spin("", 3)
    );
    assert_eq!(
        cmd(&mut runner, &["FUNCTION", "LOAD", &lib]),
        "$7\\r\\nspinlib\\r\\n"
    );
    send(&mut runner, &["FCALL", "spin", "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let stats = cmd(&mut other, &["FUNCTION", "STATS"]);
    assert!(stats.contains("spin"), "{stats}");
    // SCRIPT KILL does not stop a function; it names the command that does.
    assert_eq!(
        cmd(&mut other, &["SCRIPT", "KILL"]),
        "-BUSY Valkey is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\\r\\n"
    );
    assert_eq!(cmd(&mut other, &["FUNCTION", "KILL"]), "+OK\\r\\n");
    assert_eq!(
        show(&runner.read_reply().expect("killed function's reply")),
        "-ERR Script killed by user with FUNCTION KILL. script: on @user_function:2.\\r\\n"
    );
}

#[test]
fn a_script_that_wrote_cannot_be_killed() {
    let server = server();
    let mut runner = connect(&server);
    let mut other = connect(&server);
    send(
        &mut runner,
        &[
            "EVAL",
            &spin("redis.call('set', KEYS[1], 'x')", 2),
            "1",
            "w",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cmd(&mut other, &["SCRIPT", "KILL"]), UNKILLABLE);
    assert_eq!(cmd(&mut other, &["FUNCTION", "KILL"]), UNKILLABLE);
    assert_eq!(
        show(&runner.read_reply().expect("script reply")),
        "$4\\r\\ndone\\r\\n"
    );
    assert_eq!(cmd(&mut other, &["GET", "w"]), "$1\\r\\nx\\r\\n");
}

#[test]
fn shutdown_nosave_ends_an_unkillable_script() {
    let mut server = server();
    let mut runner = connect(&server);
    let mut other = connect(&server);
    send(
        &mut runner,
        &[
            "EVAL",
            &spin("redis.call('set', KEYS[1], 'x')", 3),
            "1",
            "w",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    send(&mut other, &["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(_)) = server.child.try_wait() {
            break;
        }
        assert!(Instant::now() < deadline, "server still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[test]
fn a_script_is_atomic_against_other_threads() {
    let server = server();
    let mut runner = connect(&server);
    let mut writer = connect(&server);
    cmd(&mut runner, &["SET", "counter", "0"]);
    // The script reads, spins, then writes back: a concurrent INCR would be lost if it got
    // in between.
    let script = "local v = tonumber(redis.call('get', KEYS[1])) \
                  local t = tonumber(redis.call('time')[1]) + 1 \
                  while tonumber(redis.call('time')[1]) < t do end \
                  redis.call('set', KEYS[1], v + 100) return v";
    // Above the threshold the writer would get BUSY: keep this script under it.
    cmd(
        &mut runner,
        &["CONFIG", "SET", "busy-reply-threshold", "5000"],
    );
    send(&mut runner, &["EVAL", script, "1", "counter"]);
    std::thread::sleep(Duration::from_millis(200));
    // Waits for the script, then runs.
    assert_eq!(cmd(&mut writer, &["INCR", "counter"]), ":101\\r\\n");
    assert_eq!(
        show(&runner.read_reply().expect("script reply")),
        ":0\\r\\n"
    );
}

#[test]
fn blocked_clients_are_served_after_the_script() {
    let server = server();
    let mut waiter = connect(&server);
    let mut runner = connect(&server);
    send(&mut waiter, &["BLPOP", "q", "5"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        cmd(
            &mut runner,
            &[
                "EVAL",
                "redis.call('rpush', KEYS[1], 'a', 'b') return redis.call('llen', KEYS[1])",
                "1",
                "q"
            ]
        ),
        ":2\\r\\n"
    );
    assert_eq!(
        show(&waiter.read_reply().expect("served")),
        "*2\\r\\n$1\\r\\nq\\r\\n$1\\r\\na\\r\\n"
    );
    assert_eq!(
        cmd(&mut runner, &["LRANGE", "q", "0", "-1"]),
        "*1\\r\\n$1\\r\\nb\\r\\n"
    );
}
