//! AOF durability and loading: a restart brings every key back, a directory written by
//! valkey-server 9.1 loads, a truncated tail loads or refuses per `aof-load-truncated`, and
//! `appendonly no` writes nothing.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{InDir, RawClient, ServerProcess, TempDir, start_redis7, start_valkey};

/// Starts ferrokv in `dir` (kept across restarts); `Err` with its output if it refused.
fn start_in(dir: &Path, args: &[&str]) -> Result<InDir, String> {
    common::start_ferrokv_in(dir, args)
}

const AOF: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

fn fill(c: &mut RawClient) {
    for cmd in [
        &["set", "s", "hello"][..],
        &["set", "ttl", "v", "ex", "1000"],
        &["rpush", "l", "a", "b", "c"],
        &["sadd", "set", "x", "y"],
        &["hset", "h", "f", "1", "g", "2"],
        &["zadd", "z", "1.5", "a", "2", "b"],
        &["xadd", "st", "1-1", "f", "v"],
        &["incrbyfloat", "fl", "2.5"],
        &["select", "4"],
        &["set", "in4", "1"],
        &["select", "0"],
        &["multi"],
        &["incr", "counter"],
        &["incr", "counter"],
        &["exec"],
    ] {
        c.command(cmd);
    }
}

fn snapshot(c: &mut RawClient) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cmd in [
        &["get", "s"][..],
        &["lrange", "l", "0", "-1"],
        &["smembers", "set"],
        &["hgetall", "h"],
        &["zrange", "z", "0", "-1", "withscores"],
        &["xrange", "st", "-", "+"],
        &["get", "fl"],
        &["get", "counter"],
        &["dbsize"],
        &["select", "4"],
        &["get", "in4"],
        &["select", "0"],
    ] {
        let mut reply = c.command(cmd);
        if cmd[0] == "smembers" {
            reply.sort();
        }
        out.push(reply);
    }
    let ttl = String::from_utf8_lossy(&c.command(&["ttl", "ttl"])).to_string();
    out.push(vec![u8::from(
        ttl.starts_with(":99") || ttl.starts_with(":1000"),
    )]);
    out
}

#[test]
fn a_restart_brings_every_key_back() {
    let dir = TempDir::new("aof-restart");
    let before = {
        let server = start_in(&dir.0, AOF).expect("start");
        let mut c = RawClient::connect(server.port).unwrap();
        fill(&mut c);
        snapshot(&mut c)
        // killed (SIGKILL) on drop: acknowledged writes must already be in the file
    };
    let server = start_in(&dir.0, AOF).expect("restart");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(snapshot(&mut c), before);
    let info = String::from_utf8_lossy(&c.command(&["info", "persistence"])).to_string();
    assert!(info.contains("aof_enabled:1"), "{info}");
    assert!(info.contains("aof_last_write_status:ok"), "{info}");
}

#[test]
fn switching_appendonly_on_at_run_time_writes_the_dataset_as_base() {
    let dir = TempDir::new("aof-config-set");
    let before = {
        let server = start_in(&dir.0, &[]).expect("start");
        let mut c = RawClient::connect(server.port).unwrap();
        fill(&mut c);
        assert!(
            !dir.0.join("appendonlydir").exists(),
            "appendonly no wrote files"
        );
        assert_eq!(
            c.command(&["config", "set", "appendonly", "yes"]),
            b"+OK\r\n"
        );
        c.command(&["set", "after", "1"]);
        // The base is written in the background (as Valkey): the new file set is in place
        // once the rewrite is done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !String::from_utf8_lossy(&c.command(&["info", "persistence"]))
            .contains("aof_rewrites:1\r\n")
        {
            assert!(std::time::Instant::now() < deadline, "rewrite never ended");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut snap = snapshot(&mut c);
        snap.push(c.command(&["get", "after"]));
        snap
    };
    let server = start_in(&dir.0, AOF).expect("restart");
    let mut c = RawClient::connect(server.port).unwrap();
    let mut snap = snapshot(&mut c);
    snap.push(c.command(&["get", "after"]));
    assert_eq!(snap, before);
}

#[test]
fn a_directory_written_by_valkey_loads() {
    let valkey = start_valkey(&[
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--appendfsync",
        "always",
    ]);
    let mut v = RawClient::connect(valkey.port).unwrap();
    fill(&mut v);
    let expected = snapshot(&mut v);
    let dir = TempDir::new("aof-from-valkey");
    let src = valkey.dir.0.join("appendonlydir");
    let dst = dir.0.join("appendonlydir");
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let server = start_in(&dir.0, AOF).expect("start on valkey's directory");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(snapshot(&mut c), expected);
}

/// Redis 7.0 and Valkey 9.1 with their default `aof-use-rdb-preamble yes`: after a rewrite
/// the base is an RDB file and later writes go to an increment; both load.
#[test]
fn directories_with_an_rdb_preamble_base_load() {
    type Start = fn(&[&str]) -> ServerProcess;
    let starters: [(&str, Start); 2] = [("redis 7.0", start_redis7), ("valkey 9.1", start_valkey)];
    for (name, start) in starters {
        let source = start(&["--appendonly", "yes", "--appendfsync", "always"]);
        let mut v = RawClient::connect(source.port).unwrap();
        fill(&mut v);
        assert_eq!(
            v.command(&["bgrewriteaof"]),
            b"+Background append only file rewriting started\r\n".to_vec(),
            "{name}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = String::from_utf8_lossy(&v.command(&["info", "persistence"])).to_string();
            if info.contains("aof_rewrite_in_progress:0")
                && info.contains("aof_rewrite_scheduled:0")
            {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: rewrite did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        // After the rewrite: into the new increment.
        v.command(&["rpush", "l", "d"]);
        v.command(&["set", "s", "changed"]);
        let expected = snapshot(&mut v);
        let src = source.dir.0.join("appendonlydir");
        let names: Vec<String> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with(".base.rdb")),
            "{name}: no RDB base in {names:?}"
        );
        let dir = TempDir::new("aof-preamble");
        let dst = dir.0.join("appendonlydir");
        std::fs::create_dir_all(&dst).unwrap();
        for n in &names {
            std::fs::copy(src.join(n), dst.join(n)).unwrap();
        }
        let server = start_in(&dir.0, AOF).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut c = RawClient::connect(server.port).unwrap();
        assert_eq!(snapshot(&mut c), expected, "{name}");
    }
}

fn incr_path(dir: &Path) -> std::path::PathBuf {
    dir.join("appendonlydir").join("appendonly.aof.1.incr.aof")
}

#[test]
fn a_truncated_tail_loads_or_refuses_per_aof_load_truncated() {
    let dir = TempDir::new("aof-truncated");
    {
        let server = start_in(&dir.0, AOF).expect("start");
        let mut c = RawClient::connect(server.port).unwrap();
        c.command(&["set", "kept", "1"]);
        c.command(&["set", "cut", "2"]);
    }
    let path = incr_path(&dir.0);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    let refused = start_in(&dir.0, &[AOF, &["--aof-load-truncated", "no"]].concat());
    let Err(log) = refused else {
        panic!("started with a truncated AOF and aof-load-truncated no");
    };
    assert!(
        log.contains(
            "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"
        ),
        "{log}"
    );

    let server = start_in(&dir.0, AOF).expect("aof-load-truncated yes starts");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(c.command(&["get", "kept"]), b"$1\r\n1\r\n");
    assert_eq!(c.command(&["get", "cut"]), b"$-1\r\n");
    // The tail was cut: new writes follow a complete command.
    c.command(&["set", "new", "3"]);
    drop(c);
    drop(server);
    let server = start_in(&dir.0, &[AOF, &["--aof-load-truncated", "no"]].concat())
        .expect("the repaired file loads strictly");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(c.command(&["get", "new"]), b"$1\r\n3\r\n");
}

#[test]
fn a_corrupt_file_refuses_to_start() {
    let dir = TempDir::new("aof-corrupt");
    {
        let server = start_in(&dir.0, AOF).expect("start");
        RawClient::connect(server.port)
            .unwrap()
            .command(&["set", "a", "1"]);
    }
    let path = incr_path(&dir.0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"garbage\r\n*1\r\n$4\r\nPING\r\n");
    std::fs::write(&path, bytes).unwrap();
    let Err(log) = start_in(&dir.0, AOF) else {
        panic!("started with a corrupt AOF");
    };
    assert!(
        log.contains("Bad file format reading the append only file"),
        "{log}"
    );
}

#[test]
fn kill_9_under_load_with_fsync_always_loses_no_acknowledged_write() {
    kill_9_under_load_loses_no_acknowledged_write("always");
}

/// A process crash, unlike a power loss, costs nothing acknowledged under `everysec` either:
/// the bytes reach the file (the OS) before the reply, only the fsync is deferred.
#[test]
fn kill_9_under_load_with_fsync_everysec_loses_no_acknowledged_write() {
    kill_9_under_load_loses_no_acknowledged_write("everysec");
}

fn kill_9_under_load_loses_no_acknowledged_write(fsync: &str) {
    let dir = TempDir::new("aof-kill9");
    let mut args = AOF.to_vec();
    args.extend_from_slice(&["--appendfsync", fsync]);
    let server = start_in(&dir.0, &args).expect("start");
    let port = server.port;
    let policy = RawClient::connect(port)
        .unwrap()
        .command(&["config", "get", "appendfsync"]);
    assert!(
        String::from_utf8_lossy(&policy).contains(fsync),
        "appendfsync {fsync}"
    );
    let acked: Vec<u64> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    let mut c = RawClient::connect(port).unwrap();
                    let mut acked = Vec::new();
                    let deadline = Instant::now() + Duration::from_millis(800);
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let key = format!("k{t}:{i}");
                        if c.command(&["set", &key, "v"]) != b"+OK\r\n" {
                            break;
                        }
                        acked.push(t * 1_000_000 + i);
                        i += 1;
                    }
                    acked
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    drop(server); // SIGKILL
    assert!(!acked.is_empty());
    let server = start_in(&dir.0, &args).expect("restart");
    let mut c = RawClient::connect(server.port).unwrap();
    let missing: Vec<_> = acked
        .iter()
        .filter(|n| {
            let key = format!("k{}:{}", *n / 1_000_000, *n % 1_000_000);
            c.command(&["exists", &key]) != b":1\r\n"
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost",
        missing.len()
    );
}

/// The rewritten forms commands propagate (exact trims with LIMIT, XCLAIM .. FORCE JUSTID,
/// XGROUP SETID, HPEXPIREAT, HSETEX .. PXAT, HDEL, ZADD for GEOADD, RESTORE .. ABSTTL) load
/// back into the same dataset.
#[test]
fn rewritten_effects_replay_to_the_same_state() {
    let dir = TempDir::new("aof-effects");
    let args: Vec<&str> = AOF
        .iter()
        .copied()
        .chain(["--stream-node-max-entries", "2"])
        .collect();
    let writes: &[&[&str]] = &[
        &["xadd", "sx", "1-1", "a", "1"],
        &["xadd", "sx", "2-1", "a", "2"],
        &["xadd", "sx", "3-1", "a", "3"],
        &["xadd", "sx", "4-1", "a", "4"],
        &["xadd", "sx", "5-1", "a", "5"],
        &[
            "xadd", "sx", "maxlen", "~", "1", "limit", "2", "6-1", "a", "6",
        ],
        &["xtrim", "sx", "minid", "~", "5-1"],
        &["xadd", "sx", "7-1", "a", "7"],
        &["xadd", "sx", "8-1", "a", "8"],
        &["xgroup", "create", "sx", "g", "0"],
        &[
            "xreadgroup",
            "group",
            "g",
            "c1",
            "count",
            "2",
            "streams",
            "sx",
            ">",
        ],
        &[
            "xreadgroup",
            "group",
            "g",
            "c2",
            "noack",
            "count",
            "1",
            "streams",
            "sx",
            ">",
        ],
        &["xclaim", "sx", "g", "c3", "0", "5-1", "retrycount", "7"],
        &["xdel", "sx", "6-1"],
        &["xautoclaim", "sx", "g", "c4", "0", "0-0"],
        &["xclaim", "sx", "g", "c4", "0", "99-1", "lastid", "9-0"],
        &["hset", "h", "a", "1", "b", "2", "c", "3", "d", "4"],
        &["hexpire", "h", "1000", "fields", "1", "a"],
        &["hsetex", "h", "fnx", "ex", "2000", "fields", "1", "e", "5"],
        &["hgetex", "h", "px", "3000000", "fields", "2", "b", "nosuch"],
        &["hgetex", "h", "persist", "fields", "1", "a"],
        &["hexpire", "h", "0", "fields", "1", "c"],
        &["hincrby", "h", "e", "1"],
        &["geoadd", "geo", "13.361389", "38.115556", "Palermo"],
        &["set", "k", "v", "get", "ex", "1000"],
    ];
    let read = |c: &mut RawClient| -> Vec<Vec<u8>> {
        let queries: &[&[&str]] = &[
            &["xrange", "sx", "-", "+"],
            &["xpending", "sx", "g"],
            &["xinfo", "groups", "sx"],
            &["hgetall", "h"],
            &["hpexpiretime", "h", "fields", "5", "a", "b", "c", "d", "e"],
            &["geopos", "geo", "Palermo"],
            &["pexpiretime", "k"],
        ];
        queries.iter().map(|q| c.command(q)).collect()
    };
    let before = {
        let server = start_in(&dir.0, &args).expect("start");
        let mut c = RawClient::connect(server.port).unwrap();
        for w in writes {
            let reply = c.command(w);
            assert!(
                !reply.starts_with(b"-"),
                "{w:?}: {}",
                String::from_utf8_lossy(&reply)
            );
        }
        read(&mut c)
    };
    let server = start_in(&dir.0, &args).expect("restart");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(read(&mut c), before);
}

/// With `appendonly yes` the AOF is the only source of data at start-up: a dump.rdb beside
/// it is not read (as Valkey), so keys saved only in the snapshot do not come back.
#[test]
fn with_appendonly_yes_dump_rdb_is_not_loaded() {
    let dir = TempDir::new("aof-ignores-rdb");
    {
        let server = start_in(&dir.0, &[]).expect("start");
        let mut c = RawClient::connect(server.port).unwrap();
        c.command(&["set", "only-in-rdb", "1"]);
        assert_eq!(c.command(&["save"]), b"+OK\r\n");
    }
    assert!(dir.0.join("dump.rdb").exists());
    let server = start_in(&dir.0, AOF).expect("start with AOF");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(c.command(&["exists", "only-in-rdb"]), b":0\r\n");
    // Without AOF the same file loads.
    drop(server);
    let server = start_in(&dir.0, &[]).expect("start without AOF");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(c.command(&["exists", "only-in-rdb"]), b":1\r\n");
}

/// Bytes of every file in `dir/appendonlydir`.
fn appendonly_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir exists")
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// DEBUG LOADAOF replaces the dataset with what the AOF holds, as a restart would, without
/// appending the replayed commands to the AOF a second time; without an AOF it refuses and
/// leaves the dataset alone. DEBUG RELOAD keeps the dataset with AOF on too.
#[test]
fn debug_loadaof_reloads_from_the_aof_without_growing_it() {
    let dir = TempDir::new("loadaof");
    let mut args = AOF.to_vec();
    args.extend(["--enable-debug-command", "yes"]);
    let server = start_in(&dir.0, &args).expect("starts");
    let mut c = RawClient::connect(server.port).expect("connects");
    fill(&mut c);
    let before = snapshot(&mut c);
    let bytes = appendonly_bytes(&dir.0);
    for _ in 0..2 {
        assert_eq!(c.command(&["debug", "loadaof"]), b"+OK\r\n");
        assert_eq!(snapshot(&mut c), before);
        assert_eq!(
            appendonly_bytes(&dir.0),
            bytes,
            "the reload appended to the AOF"
        );
    }
    // DEBUG RELOAD goes through the RDB file whether or not AOF is on.
    assert_eq!(c.command(&["debug", "reload"]), b"+OK\r\n");
    assert_eq!(snapshot(&mut c), before);
    drop(c);
    drop(server);

    let plain = TempDir::new("loadaof-off");
    let server = start_in(&plain.0, &["--enable-debug-command", "yes"]).expect("starts");
    let mut c = RawClient::connect(server.port).expect("connects");
    c.command(&["set", "kept", "1"]);
    assert_eq!(
        c.command(&["debug", "loadaof"]),
        b"-ERR The AOF manifest file doesn't exist\r\n"
    );
    assert_eq!(c.command(&["get", "kept"]), b"$1\r\n1\r\n");
}

/// The AOF is replayed a chunk (1 MiB) at a time: commands larger than a chunk, and
/// commands cut by a chunk's end, load whole, and a truncated tail is still cut at the
/// last complete command of a file many chunks long.
#[test]
fn a_file_of_many_chunks_with_values_larger_than_one_loads_whole() {
    let dir = TempDir::new("aof-chunks");
    let big: Vec<String> = [1_500_000usize, 3_000_000, 700_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            (0..len)
                .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
                .collect()
        })
        .collect();
    {
        let server = start_in(&dir.0, AOF).expect("start");
        let mut c = RawClient::connect(server.port).unwrap();
        for (round, value) in big.iter().enumerate() {
            let pipeline: Vec<u8> = (0..10_000)
                .flat_map(|i| {
                    let key = format!("small:{round}:{i}");
                    common::encode(&["SET", key.as_str(), "some value of a few bytes"])
                })
                .collect();
            c.send_raw(&pipeline);
            for _ in 0..10_000 {
                assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
            }
            let key = format!("big:{round}");
            assert_eq!(c.command(&["SET", key.as_str(), value]), b"+OK\r\n");
        }
        c.command(&["SET", "last", "cut"]);
    }
    let path = incr_path(&dir.0);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 6 << 20, "the file spans several chunks: {len} bytes");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    let server = start_in(&dir.0, AOF).expect("restart");
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(c.command(&["DBSIZE"]), b":30003\r\n");
    for (round, value) in big.iter().enumerate() {
        let key = format!("big:{round}");
        let reply = c.command(&["GET", key.as_str()]);
        let expected = [
            format!("${}\r\n", value.len()).into_bytes(),
            value.clone().into_bytes(),
            b"\r\n".to_vec(),
        ]
        .concat();
        assert!(reply == expected, "{key} differs after the load");
    }
    assert_eq!(
        c.command(&["GET", "small:2:9999"]),
        b"$25\r\nsome value of a few bytes\r\n"
    );
    assert_eq!(c.command(&["GET", "last"]), b"$-1\r\n");
}
