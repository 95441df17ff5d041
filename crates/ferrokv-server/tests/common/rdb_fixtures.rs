//! RDB fixtures made by the reference servers: Debian's redis-server 7.0 (RDB 10) and the
//! oracle valkey-server 9.1 (`VALKEY080`). Each fixture is a set of commands run on a
//! flushed server followed by SAVE; the bytes of the resulting dump.rdb come back.
//!
//! Include it next to `common` in a test crate:
//! `mod common; #[path = "common/rdb_fixtures.rs"] mod rdb_fixtures;`

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{RawClient, ServerProcess, TempDir, free_port, show, valkey_binary};

/// Debian's redis-server 7.0, the Redis the RDB interop promise is about.
pub const REDIS7_BINARY: &str = "/usr/bin/redis-server";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oracle {
    Redis7,
    Valkey9,
}

impl Oracle {
    pub const ALL: [Oracle; 2] = [Oracle::Redis7, Oracle::Valkey9];

    pub fn name(self) -> &'static str {
        match self {
            Oracle::Redis7 => "redis-7.0",
            Oracle::Valkey9 => "valkey-9.1",
        }
    }

    fn binary(self) -> PathBuf {
        match self {
            Oracle::Redis7 => PathBuf::from(REDIS7_BINARY),
            Oracle::Valkey9 => valkey_binary(),
        }
    }
}

/// Starts `oracle` with no automatic saving, no AOF, uncompressed RDB strings (so DUMP
/// payloads can be compared byte for byte) and its working directory in a temp dir
/// removed on drop.
pub fn start_oracle(oracle: Oracle) -> ServerProcess {
    start_oracle_loading(oracle, None)
}

/// Starts `oracle` as [`start_oracle`] does, loading `rdb` as its dump.rdb when given.
pub fn start_oracle_loading(oracle: Oracle, rdb: Option<&[u8]>) -> ServerProcess {
    let binary = oracle.binary();
    assert!(
        binary.exists(),
        "{} not found at {}",
        oracle.name(),
        binary.display()
    );
    for _attempt in 0..5 {
        let port = free_port();
        let dir = TempDir::new(oracle.name());
        if let Some(bytes) = rdb {
            std::fs::write(dir.0.join("dump.rdb"), bytes).expect("write dump.rdb");
        }
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--rdbcompression", "no"])
            .arg("--dir")
            .arg(&dir.0)
            .current_dir(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let mut server = ServerProcess {
            child,
            port,
            name: oracle.name(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                break; // lost the port race: try another
            }
            if let Ok(mut c) = RawClient::connect(port) {
                let info = c.command(&["INFO", "server"]);
                if String::from_utf8_lossy(&info)
                    .contains(&format!("process_id:{}\r\n", server.child.id()))
                {
                    return server;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{} did not start", oracle.name());
}

/// Runs `commands` and fails on an error reply.
pub fn run_all(client: &mut RawClient, commands: &[Vec<String>]) {
    for cmd in commands {
        let reply = client.command(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?} failed: {}", show(&reply));
    }
}

fn cmd(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// One fixture: a name and the commands that fill the server.
pub struct Fixture {
    pub name: &'static str,
    pub commands: Vec<Vec<String>>,
    /// Which servers can build it (hash field expiry is Valkey 9 only).
    pub oracles: &'static [Oracle],
}

fn strings() -> Vec<Vec<String>> {
    let long = "abcdefghij".repeat(30);
    vec![
        cmd(&["SET", "str:raw", "hello world"]),
        cmd(&["SET", "str:int", "12345"]),
        cmd(&["SET", "str:bigint", "123456789012345"]),
        cmd(&["SET", "str:long", &long]),
        cmd(&["SET", "str:ttl", "v", "PX", "100000000"]),
        cmd(&["SET", "str:empty", ""]),
    ]
}

fn lists() -> Vec<Vec<String>> {
    let mut out = vec![cmd(&["RPUSH", "list:small", "a", "1", "-300", "hello"])];
    for i in 0..400 {
        out.push(cmd(&[
            "RPUSH",
            "list:quick",
            &format!("element-{i}-{}", "x".repeat(i % 60)),
        ]));
    }
    out.push(cmd(&["RPUSH", "list:plain", &"p".repeat(10_000), "tail"]));
    out
}

fn sets() -> Vec<Vec<String>> {
    let mut out = vec![
        cmd(&["SADD", "set:intset", "1", "2", "3", "-40000", "5000000000"]),
        cmd(&["SADD", "set:small", "a", "b", "c"]),
    ];
    for i in 0..300 {
        out.push(cmd(&["SADD", "set:big", &format!("member:{i}")]));
    }
    out
}

fn hashes() -> Vec<Vec<String>> {
    let mut out = vec![cmd(&["HSET", "hash:small", "f1", "v1", "f2", "22"])];
    for i in 0..300 {
        out.push(cmd(&[
            "HSET",
            "hash:big",
            &format!("field:{i}"),
            &i.to_string(),
        ]));
    }
    out
}

fn zsets() -> Vec<Vec<String>> {
    let mut out = vec![cmd(&[
        "ZADD",
        "zset:small",
        "1",
        "a",
        "2.5",
        "b",
        "-inf",
        "c",
    ])];
    for i in 0..300 {
        out.push(cmd(&[
            "ZADD",
            "zset:big",
            &format!("{}", i as f64 / 7.0),
            &format!("m{i}"),
        ]));
    }
    out
}

fn streams() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for i in 1..=250 {
        out.push(cmd(&[
            "XADD",
            "stream:s",
            &format!("{i}-1"),
            "field",
            &i.to_string(),
            "other",
            "x",
        ]));
    }
    out.push(cmd(&["XDEL", "stream:s", "5-1", "250-1"]));
    out.push(cmd(&["XGROUP", "CREATE", "stream:s", "g", "0"]));
    out.push(cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "3",
        "STREAMS",
        "stream:s",
        ">",
    ]));
    out.push(cmd(&["XADD", "stream:empty", "1-1", "a", "b"]));
    out.push(cmd(&["XDEL", "stream:empty", "1-1"]));
    out
}

fn hash_field_expiry() -> Vec<Vec<String>> {
    vec![
        cmd(&["HSET", "hash:ttl", "f", "v", "g", "w"]),
        cmd(&["HEXPIRE", "hash:ttl", "100000", "FIELDS", "1", "f"]),
    ]
}

fn functions() -> Vec<Vec<String>> {
    vec![cmd(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=fixturelib\nredis.register_function('fixture_one', function() return 1 end)",
    ])]
}

/// Every type in each of its encodings, keys with expiry, a second database and a function
/// library.
fn everything(oracle: Oracle) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for part in [
        strings(),
        lists(),
        sets(),
        hashes(),
        zsets(),
        streams(),
        functions(),
    ] {
        out.extend(part);
    }
    if oracle == Oracle::Valkey9 {
        out.extend(hash_field_expiry());
    }
    out.push(cmd(&["SELECT", "3"]));
    out.push(cmd(&["SET", "db3:key", "in db 3", "EX", "100000"]));
    out.push(cmd(&["RPUSH", "db3:list", "x"]));
    out.push(cmd(&["SELECT", "0"]));
    out
}

/// The fixtures: one per family, so a reader that lacks one type still reads the others'
/// files end to end, and one with everything.
pub fn fixtures(oracle: Oracle) -> Vec<Fixture> {
    const BOTH: &[Oracle] = &Oracle::ALL;
    let mut out = vec![
        Fixture {
            name: "strings",
            commands: strings(),
            oracles: BOTH,
        },
        Fixture {
            name: "lists",
            commands: lists(),
            oracles: BOTH,
        },
        Fixture {
            name: "sets",
            commands: sets(),
            oracles: BOTH,
        },
        Fixture {
            name: "hashes",
            commands: hashes(),
            oracles: BOTH,
        },
        Fixture {
            name: "zsets",
            commands: zsets(),
            oracles: BOTH,
        },
        Fixture {
            name: "streams",
            commands: streams(),
            oracles: BOTH,
        },
        Fixture {
            name: "functions",
            commands: functions(),
            oracles: BOTH,
        },
        Fixture {
            name: "hash-field-expiry",
            commands: hash_field_expiry(),
            oracles: &[Oracle::Valkey9],
        },
    ];
    out.push(Fixture {
        name: "everything",
        commands: everything(oracle),
        oracles: BOTH,
    });
    out.retain(|f| f.oracles.contains(&oracle));
    out
}

/// Flushes the server, runs the fixture's commands, saves, and returns the dump.rdb bytes
/// with the number of keys in each database that holds any.
pub fn build_fixture(server: &ServerProcess, fixture: &Fixture) -> (Vec<u8>, Vec<(usize, u64)>) {
    let mut c = RawClient::connect(server.port).expect("connect to oracle");
    run_all(
        &mut c,
        &[
            cmd(&["FLUSHALL"]),
            cmd(&["FUNCTION", "FLUSH"]),
            cmd(&["SELECT", "0"]),
        ],
    );
    run_all(&mut c, &fixture.commands);
    let mut sizes = Vec::new();
    for db in 0..16 {
        c.command(&["SELECT", &db.to_string()]);
        let reply = c.command(&["DBSIZE"]);
        let n: u64 = String::from_utf8_lossy(&reply[1..])
            .trim()
            .parse()
            .expect("DBSIZE");
        if n > 0 {
            sizes.push((db, n));
        }
    }
    run_all(&mut c, &[cmd(&["SAVE"])]);
    let bytes = std::fs::read(server.dir.0.join("dump.rdb")).expect("read dump.rdb");
    (bytes, sizes)
}
