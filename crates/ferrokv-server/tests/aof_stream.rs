//! The propagation stream against the oracle: the same script of write commands runs on
//! valkey-server 9.1 and on ferrokv, both with `appendonly yes`, `appendfsync always` and no
//! RDB preamble; their increment AOF files must hold the same commands once absolute times
//! (Unix ms, stream IDs) are normalized.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::aof::incr_commands;
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
    /// A command with binary arguments (DUMP payloads).
    Raw(&'static [&'static [u8]]),
}

use Step::{Cmd, Park, Raw, Sleep};

const SCRIPT: &[Step] = &[
    Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
    // Propagated even when there is nothing to flush.
    Cmd(&["flushall"]),
    Cmd(&["flushdb"]),
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
    Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
    // hash field expiry: HPEXPIREAT / HDEL / HPERSIST / HSETEX forms
    Cmd(&["hset", "hf", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"]),
    Cmd(&["hexpire", "hf", "100", "nx", "fields", "3", "a", "nosuch", "b"]),
    Cmd(&["hexpire", "hf", "200", "gt", "fields", "2", "a", "c"]),
    Cmd(&["hpexpire", "hf", "100000", "fields", "1", "c"]),
    Cmd(&["hexpireat", "hf", "2000000000", "fields", "1", "d"]),
    Cmd(&["hpexpireat", "hf", "2000000000000", "fields", "2", "d", "nosuch"]),
    Cmd(&["hpersist", "hf", "fields", "2", "a", "nosuch"]),
    Cmd(&["hexpire", "hf", "0", "fields", "2", "e", "nosuch"]),
    Cmd(&["hexpire", "hf", "100", "fields", "1", "nosuch"]),
    Cmd(&["hsetex", "hf", "ex", "100", "fields", "1", "f", "1"]),
    Cmd(&["hsetex", "hf", "xx", "fxx", "px", "100000", "fields", "1", "f", "2"]),
    Cmd(&["hsetex", "hf", "exat", "2000000000", "fields", "1", "g", "2"]),
    Cmd(&["hsetex", "hf", "pxat", "2000000000000", "fields", "1", "g", "3"]),
    Cmd(&["HSETEX", "hf", "KEEPTTL", "FIELDS", "1", "g", "4"]),
    Cmd(&["hsetex", "hf", "fnx", "fields", "1", "g", "5"]),
    Cmd(&["hsetex", "hf", "fields", "1", "g", "7"]),
    Cmd(&["hsetex", "hf", "exat", "1", "fields", "2", "g", "1", "nosuch", "2"]),
    Cmd(&["hgetex", "hf", "ex", "100", "fields", "3", "b", "nosuch", "c"]),
    Cmd(&["hgetex", "hf", "persist", "fields", "2", "b", "c"]),
    Cmd(&["hgetex", "hf", "persist", "fields", "1", "b"]),
    Cmd(&["hgetex", "hf", "pxat", "2000000000000", "fields", "1", "c"]),
    Cmd(&["hgetex", "hf", "fields", "1", "c"]),
    Cmd(&["hgetex", "hf", "ex", "0", "fields", "1", "c"]),
    Cmd(&["hgetdel", "hf", "fields", "2", "f", "nosuch"]),
    Cmd(&["hgetdel", "hf", "fields", "1", "nosuch"]),
    // in a hash with field TTLs HINCRBY / HINCRBYFLOAT / HSETNX send HSET or HSETEX
    Cmd(&["hincrby", "hf", "n", "1"]),
    Cmd(&["hincrbyfloat", "hf", "d", "1.5"]),
    Cmd(&["hsetnx", "hf", "m", "1"]),
    Cmd(&["hset", "hn", "a", "1"]),
    Cmd(&["hincrby", "hn", "a", "1"]),
    Cmd(&["hsetnx", "hn", "b", "1"]),
    Cmd(&["hset", "hd", "a", "1"]),
    Cmd(&["hgetdel", "hd", "fields", "1", "a"]),
    // a field expired but not reclaimed: reads and HDEL send nothing
    Cmd(&["hset", "hl", "a", "1", "b", "2"]),
    Cmd(&["hpexpire", "hl", "1", "fields", "1", "a"]),
    Sleep(20),
    Cmd(&["hget", "hl", "a"]),
    Cmd(&["hdel", "hl", "a"]),
    Cmd(&["hsetex", "hl", "fnx", "ex", "100", "fields", "1", "a", "1"]),
    // the active cycle reclaims fields as HDEL, and an emptied hash with them
    Cmd(&["hset", "ha1", "a", "1", "b", "2"]),
    Cmd(&["hpexpire", "ha1", "1", "fields", "1", "a"]),
    Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]),
    Sleep(300),
    Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
    Cmd(&["hset", "ha2", "a", "1"]),
    Cmd(&["hpexpire", "ha2", "1", "fields", "1", "a"]),
    Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]),
    Sleep(300),
    Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
    // streams: approximate trims go out exact; reads and claims as XCLAIM + XGROUP SETID
    Cmd(&["config", "set", "stream-node-max-entries", "2"]),
    Cmd(&["xadd", "sx", "1-1", "a", "1"]),
    Cmd(&["xadd", "sx", "2-1", "a", "2"]),
    Cmd(&["xadd", "sx", "3-1", "a", "3"]),
    Cmd(&["xadd", "sx", "4-1", "a", "4"]),
    Cmd(&["xadd", "sx", "5-1", "a", "5"]),
    Cmd(&["xadd", "sx", "6-1", "a", "6"]),
    Cmd(&["xadd", "sx", "7-1", "a", "7"]),
    Cmd(&["xtrim", "sx", "maxlen", "~", "3"]),
    Cmd(&["xtrim", "sx", "maxlen", "~", "0", "limit", "1"]),
    Cmd(&["xtrim", "sx", "minid", "~", "7-1"]),
    Cmd(&["xadd", "sx", "minid", "~", "9", "8-1", "a", "8"]),
    Cmd(&["xadd", "sx", "maxlen", "~", "1", "limit", "2", "9-1", "a", "9"]),
    Cmd(&["xadd", "sx", "10-1", "a", "10"]),
    Cmd(&["xadd", "sx", "11-1", "a", "11"]),
    Cmd(&["xadd", "sx", "12-1", "a", "12"]),
    Cmd(&["xtrim", "sx", "minid", "~", "12-0"]),
    Cmd(&["xadd", "sx", "13-1", "a", "13"]),
    Cmd(&["xadd", "sx", "14-1", "a", "14"]),
    Cmd(&["xadd", "sx", "15-1", "a", "15"]),
    Cmd(&["xgroup", "create", "sx", "g", "0"]),
    Cmd(&["xreadgroup", "group", "g", "c1", "count", "2", "streams", "sx", ">"]),
    Cmd(&["xreadgroup", "group", "g", "c1", "streams", "sx", "0"]),
    Cmd(&["xreadgroup", "group", "g", "c2", "noack", "count", "1", "streams", "sx", ">"]),
    Cmd(&["xgroup", "createconsumer", "sx", "g", "c4"]),
    Cmd(&["xgroup", "createconsumer", "sx", "g", "c4"]),
    Cmd(&["xclaim", "sx", "g", "c5", "0", "11-1", "12-1", "99-9"]),
    Cmd(&["xclaim", "sx", "g", "c5", "0", "11-1", "justid"]),
    Cmd(&["xclaim", "sx", "g", "c5", "0", "11-1", "idle", "5000", "retrycount", "3", "force"]),
    Cmd(&["xdel", "sx", "12-1"]),
    Cmd(&["xautoclaim", "sx", "g", "c6", "0", "0-0", "count", "10"]),
    Cmd(&["xautoclaim", "sx", "g", "c6", "0", "0-0", "count", "10", "justid"]),
    Cmd(&["xreadgroup", "group", "g", "c7", "count", "1", "streams", "sx", ">"]),
    Cmd(&["xclaim", "sx", "g", "c5", "0", "14-1", "lastid", "20-0"]),
    Cmd(&["xack", "sx", "g", "11-1", "99-1"]),
    Cmd(&["xack", "sx", "g", "77-1"]),
    Cmd(&["xsetid", "sx", "30-1"]),
    Cmd(&["xsetid", "sx", "31-1", "entriesadded", "20", "maxdeletedid", "5-1"]),
    Cmd(&["xgroup", "setid", "sx", "g", "0"]),
    Cmd(&["xgroup", "delconsumer", "sx", "g", "c1"]),
    Cmd(&["xgroup", "destroy", "sx", "g"]),
    Cmd(&["xdel", "sx", "99-1"]),
    Cmd(&["xgroup", "create", "sb", "g", "$", "mkstream"]),
    Park(&["xreadgroup", "group", "g", "c3", "block", "0", "streams", "sb", ">"]),
    Cmd(&["xadd", "sb", "1-1", "a", "1"]),
    Park(&["xreadgroup", "group", "g", "c4", "block", "0", "noack", "streams", "sb", ">"]),
    Cmd(&["xadd", "sb", "2-1", "a", "1"]),
    Cmd(&["xadd", "sx", "maxlen", "~", "1", "*", "a", "16"]),
    Cmd(&["config", "set", "stream-node-max-entries", "100"]),
    // rewritten string and key commands
    Cmd(&["geoadd", "geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]),
    Cmd(&["geoadd", "geo", "xx", "ch", "13.361389", "38.115556", "Palermo"]),
    Cmd(&["getset", "gs", "v"]),
    Cmd(&["getset", "gs", "w"]),
    Cmd(&["set", "sg", "1", "get"]),
    Cmd(&["set", "sg", "2", "get", "ex", "100"]),
    Cmd(&["set", "sg", "3", "nx", "ex", "100"]),
    Cmd(&["set", "sg", "4", "xx", "px", "100000", "get"]),
    Cmd(&["set", "sg", "5", "get", "keepttl"]),
    Cmd(&["setbit", "sb1", "7", "1"]),
    Cmd(&["setbit", "sb1", "7", "1"]),
    Cmd(&["set", "r0", "v"]),
    Raw(&[b"restore", b"r1", b"0", b"\x00\x01vP\x00^\x22\x07#\x87j\xed:"]),
    Raw(&[b"restore", b"r2", b"100000", b"\x00\x01vP\x00^\x22\x07#\x87j\xed:"]),
    Raw(&[b"restore", b"r3", b"2000000000000", b"\x00\x01vP\x00^\x22\x07#\x87j\xed:", b"absttl"]),
    Raw(&[b"restore", b"r0", b"1", b"\x00\x01vP\x00^\x22\x07#\x87j\xed:", b"replace", b"absttl"]),
    // MULTI/EXEC carry no database: SELECT follows MULTI
    Cmd(&["select", "3"]),
    Cmd(&["multi"]),
    Cmd(&["set", "ma", "1"]),
    Cmd(&["set", "mb", "1"]),
    Cmd(&["exec"]),
    Cmd(&["select", "0"]),
    // functions and scripts
    Cmd(&["function", "load", "#!lua name=plib\nredis.register_function('pf1', function(keys, args) return redis.call('set', keys[1], args[1]) end)\nredis.register_function{function_name='pf2', callback=function(keys, args) redis.call('select', 4); redis.call('set', keys[1], '1'); redis.call('select', 0); redis.call('incr', keys[1]); return 1 end}"]),
    Cmd(&["fcall", "pf1", "1", "fk", "fv"]),
    Cmd(&["fcall", "pf2", "1", "fk"]),
    Cmd(&["function", "delete", "plib"]),
    Raw(&[b"function", b"restore", b"\xf5@P#!lua name=lib3\x0aredis.register_function(\x22h1\x22, function(keys, args) return 1 end)P\x00Db\xcb\xfe\xe2h\xfe$"]),
    Cmd(&["function", "flush"]),
    Cmd(&["script", "flush"]),
    Cmd(&["eval", "redis.call('select', 5); redis.call('set', 'a', 1); redis.call('select', 6); redis.call('set', 'b', 1); return 1", "0"]),
    Cmd(&["eval", "redis.set_repl(redis.REPL_NONE); redis.call('set', 'n1', 1); redis.set_repl(redis.REPL_ALL); redis.call('set', 'n2', 1); return 1", "0"]),
    Cmd(&["eval", "redis.set_repl(redis.REPL_AOF); redis.call('set', 'n3', 1); redis.set_repl(redis.REPL_REPLICA); redis.call('set', 'n4', 1); return 1", "0"]),
    Cmd(&["eval", "redis.call('set', 'n7', 1); return redis.call('nosuchcmd')", "0"]),
    Cmd(&["multi"]),
    Cmd(&["set", "m1", "1"]),
    Cmd(&["incr", "m1", "m2"]),
    Cmd(&["exec"]),
    Cmd(&["multi"]),
    Cmd(&["set", "m3", "1"]),
    Cmd(&["lpush", "m3", "x"]),
    Cmd(&["exec"]),
    // A waited key that expired before the wake-up: the client stays blocked and the key's
    // deletion goes out with the next command that reads it, not with the EXEC.
    Park(&["brpop", "bk", "1"]),
    Cmd(&["multi"]),
    Cmd(&["rpush", "bk", "hello"]),
    Cmd(&["pexpire", "bk", "100"]),
    Cmd(&["debug", "sleep", "0.2"]),
    Cmd(&["exec"]),
    Cmd(&["set", "after-exec", "1"]),
    Cmd(&["exists", "bk"]),
    Cmd(&["publish", "ch", "msg"]),
    Cmd(&["flushdb", "async"]),
    Cmd(&["set", "zz", "1"]),
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
            Raw(args) => {
                client.command(args);
            }
        }
    }
    // Served waiters got their replies; wait for them so nothing is still in flight.
    for mut waiter in parked {
        let _ = waiter.read_reply();
    }
    client.command(&["PING"]);
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
