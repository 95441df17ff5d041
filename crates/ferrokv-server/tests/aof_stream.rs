//! The propagation stream against the oracle: the same script of write commands runs on
//! valkey-server 9.1 and on ferrokv, both with `appendonly yes`, `appendfsync always` and no
//! RDB preamble; their increment AOF files must hold the same commands once absolute times
//! (Unix ms, stream IDs) are normalized.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{RawClient, ServerProcess, start_ferrokv, start_valkey};

const AOF_ARGS: &[&str] = &[
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--aof-use-rdb-preamble",
    "no",
    "--aof-timestamp-enabled",
    "no",
    "--enable-debug-command",
    "yes",
];

/// One step of the script.
enum Step {
    Cmd(&'static [&'static str]),
    /// Sent on a second connection without waiting for the reply (a blocking command that
    /// the next steps serve).
    Park(&'static [&'static str]),
    Sleep(u64),
}

use Step::{Cmd, Park, Sleep};

const SCRIPT: &[Step] = &[
    Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
    // strings
    Cmd(&["set", "a", "1"]),
    Cmd(&["set", "a", "1", "ex", "100"]),
    Cmd(&["set", "b", "2", "px", "100000"]),
    Cmd(&["set", "c", "3", "exat", "2000000000"]),
    Cmd(&["set", "d", "4", "pxat", "2000000000000"]),
    Cmd(&["set", "e", "5", "keepttl"]),
    Cmd(&["set", "e", "6", "get"]),
    Cmd(&["set", "e", "7", "nx"]),
    Cmd(&["setex", "f", "100", "x"]),
    Cmd(&["psetex", "g", "100000", "x"]),
    Cmd(&["incrbyfloat", "h", "1.5"]),
    Cmd(&["incrbyfloat", "h", "3.0e3"]),
    Cmd(&["append", "s1", "abc"]),
    Cmd(&["setrange", "s1", "1", "zz"]),
    // expiry
    Cmd(&["expire", "a", "100"]),
    Cmd(&["pexpire", "a", "100000"]),
    Cmd(&["expireat", "a", "2000000000"]),
    Cmd(&["pexpireat", "a", "2000000000000"]),
    Cmd(&["expire", "a", "100", "nx"]),
    Cmd(&["expire", "a", "-1"]),
    Cmd(&["set", "a", "1"]),
    Cmd(&["getex", "a", "ex", "100"]),
    Cmd(&["getex", "a", "persist"]),
    Cmd(&["getex", "a"]),
    Cmd(&["persist", "a"]),
    Cmd(&["del", "nonexistent"]),
    Cmd(&["del", "b"]),
    // lazy expiry: alone for a read, wrapped with a write
    Cmd(&["set", "k1", "v", "px", "1"]),
    Cmd(&["set", "k2", "v", "px", "1"]),
    Sleep(20),
    Cmd(&["get", "k1"]),
    Cmd(&["incr", "k2"]),
    // databases
    Cmd(&["select", "3"]),
    Cmd(&["set", "x", "1"]),
    Cmd(&["select", "0"]),
    Cmd(&["set", "y", "1"]),
    // sets
    Cmd(&["sadd", "s", "a", "b", "c", "d"]),
    Cmd(&["sadd", "s", "a"]),
    Cmd(&["spop", "s"]),
    Cmd(&["spop", "s", "2"]),
    Cmd(&["srandmember", "s"]),
    Cmd(&["sadd", "s2", "a", "b"]),
    Cmd(&["spop", "s2", "5"]),
    // lists, blocking pops served at once
    Cmd(&["rpush", "l", "a", "b", "c", "d", "e", "f"]),
    Cmd(&["lpop", "l"]),
    Cmd(&["blpop", "l", "0"]),
    Cmd(&["brpop", "l", "0"]),
    Cmd(&["blmove", "l", "l2", "left", "right", "0"]),
    Cmd(&["brpoplpush", "l", "l3", "0"]),
    Cmd(&["rpush", "l", "a", "b", "c"]),
    Cmd(&["blmpop", "0", "1", "l", "left", "count", "5"]),
    Cmd(&["rpush", "l", "a", "b", "c"]),
    Cmd(&["lmpop", "1", "l", "right", "count", "2"]),
    // blocking pops served later
    Park(&["blpop", "q1", "0"]),
    Cmd(&["rpush", "q1", "a", "b"]),
    Park(&["blmove", "q2", "q3", "right", "left", "0"]),
    Cmd(&["rpush", "q2", "x"]),
    Park(&["bzpopmax", "z1", "0"]),
    Cmd(&["zadd", "z1", "1", "a", "2", "b"]),
    Park(&["bzmpop", "0", "1", "z2", "min", "count", "5"]),
    Cmd(&["zadd", "z2", "1", "a", "2", "b"]),
    // sorted sets
    Cmd(&["zadd", "z", "1", "a", "2", "b", "3", "c"]),
    Cmd(&["zadd", "z", "1", "a"]),
    Cmd(&["zincrby", "z", "1.5", "a"]),
    Cmd(&["zpopmin", "z"]),
    Cmd(&["bzpopmin", "z", "0"]),
    Cmd(&["zmpop", "1", "z", "max", "count", "9"]),
    // hashes
    Cmd(&["hset", "hh", "f", "1", "g", "2"]),
    Cmd(&["hsetnx", "hh", "f", "2"]),
    Cmd(&["hincrbyfloat", "hh", "n", "2.5"]),
    Cmd(&["hdel", "hh", "g"]),
    // transactions and scripts
    Cmd(&["multi"]),
    Cmd(&["set", "m", "1"]),
    Cmd(&["get", "m"]),
    Cmd(&["exec"]),
    Cmd(&["multi"]),
    Cmd(&["set", "m", "2"]),
    Cmd(&["incr", "m"]),
    Cmd(&["exec"]),
    Cmd(&["multi"]),
    Cmd(&["get", "m"]),
    Cmd(&["exec"]),
    Cmd(&[
        "eval",
        "redis.call('set','e1','1'); redis.call('incr','e1'); return 1",
        "0",
    ]),
    Cmd(&["eval", "redis.call('set','e2','1')", "0"]),
    Cmd(&["eval", "return redis.call('get','e1')", "0"]),
    Cmd(&[
        "eval",
        "redis.call('select', 2); redis.call('set','s1','1'); return 1",
        "0",
    ]),
    Cmd(&["set", "after", "1"]),
    // streams with server-chosen IDs
    Cmd(&["xadd", "st", "*", "f", "v"]),
    Cmd(&["xadd", "st", "99999999999999-*", "f", "v"]),
    // keyspace-wide
    Cmd(&["copy", "e1", "e3"]),
    Cmd(&["rename", "e3", "e4"]),
    Cmd(&["move", "e4", "5"]),
    Cmd(&["swapdb", "0", "1"]),
    Cmd(&["flushall"]),
];

fn run_script(server: &ServerProcess) {
    let mut client = RawClient::connect(server.port).expect("connect");
    let mut parked: Vec<RawClient> = Vec::new();
    for step in SCRIPT {
        match step {
            Cmd(args) => {
                client.command(args);
            }
            Park(args) => {
                let mut waiter = RawClient::connect(server.port).expect("connect");
                waiter.send_raw(&common::encode(args));
                std::thread::sleep(Duration::from_millis(100));
                parked.push(waiter);
            }
            Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        }
    }
    // Served waiters got their replies; wait for them so nothing is still in flight.
    for mut waiter in parked {
        let _ = waiter.read_reply();
    }
    client.command(&["PING"]);
}

/// The commands of the last increment file of `dir/appendonlydir`.
fn incr_commands(server: &ServerProcess) -> Vec<Vec<String>> {
    let dir = server.dir.0.join("appendonlydir");
    let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).expect("manifest");
    let incr = manifest
        .lines()
        .rfind(|l| l.ends_with("type i"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("an increment file")
        .to_string();
    let bytes = std::fs::read(dir.join(incr)).expect("incr file");
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let mut out = Vec::new();
    while let Some(head) = lines.next() {
        let Some(n) = head.strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let mut args = Vec::new();
        for _ in 0..n {
            lines.next();
            args.push(lines.next().unwrap_or_default().to_string());
        }
        out.push(args);
    }
    out
}

/// Replaces Unix-ms times near now with `<ms>` and stream IDs made from them with `<ms>-N`.
fn normalize(commands: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let near = |s: &str| {
        s.parse::<i64>()
            .is_ok_and(|ms| (ms - now).abs() < 3_600_000 && s.len() == 13)
    };
    commands
        .into_iter()
        .map(|args| {
            args.into_iter()
                .map(|a| {
                    if near(&a) {
                        return "<ms>".to_string();
                    }
                    if let Some((ms, seq)) = a.split_once('-')
                        && near(ms)
                    {
                        return format!("<ms>-{seq}");
                    }
                    a
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_incr_aof_matches_valkeys() {
    let valkey = start_valkey(AOF_ARGS);
    let ferrokv = start_ferrokv(AOF_ARGS);
    run_script(&valkey);
    run_script(&ferrokv);
    // Valkey writes before it replies; give both a moment anyway.
    std::thread::sleep(Duration::from_millis(200));
    let expected = normalize(incr_commands(&valkey));
    let got = normalize(incr_commands(&ferrokv));
    // SPOP picks members at random: compare its SREM's shape, not the members.
    let shape = |cmds: Vec<Vec<String>>| -> Vec<Vec<String>> {
        cmds.into_iter()
            .map(|c| {
                if c.first().is_some_and(|n| n == "SREM") {
                    vec![
                        c[0].clone(),
                        c[1].clone(),
                        format!("{} members", c.len() - 2),
                    ]
                } else {
                    c
                }
            })
            .collect()
    };
    let (expected, got) = (shape(expected), shape(got));
    assert!(
        expected.len() > 60,
        "the oracle's AOF is too short: {expected:?}"
    );
    eprintln!("{} commands: {got:?}", got.len());
    for (i, (e, g)) in expected.iter().zip(got.iter()).enumerate() {
        assert_eq!(
            e, g,
            "command {i} differs\nvalkey: {expected:?}\nferrokv: {got:?}"
        );
    }
    assert_eq!(
        expected.len(),
        got.len(),
        "valkey: {expected:?}\nferrokv: {got:?}"
    );
}
