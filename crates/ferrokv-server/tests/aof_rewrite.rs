//! AOF rewrites: BGREWRITEAOF under a write load from several clients, then kill -9 and a
//! restart (every acknowledged write present exactly once), with both base formats; a
//! rewrite and a BGSAVE scheduling each other; the automatic rewrite; the rewritten
//! directory loading into valkey-server 9.1 and redis-server 7.0.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{InDir, RawClient, TempDir, start_redis7, start_valkey};

fn start_in(dir: &Path, args: &[&str]) -> InDir {
    let mut all = vec!["--save", "", "--enable-debug-command", "yes"];
    all.extend_from_slice(args);
    common::start_ferrokv_in(dir, &all).unwrap_or_else(|e| panic!("ferrokv did not start: {e}"))
}

fn info_field(c: &mut RawClient, name: &str) -> String {
    let info = String::from_utf8_lossy(&c.command(&["info", "persistence"])).to_string();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .to_string()
}

/// Waits (bounded) until INFO field `name` has value `want`.
fn wait_field(c: &mut RawClient, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = info_field(c, name);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed {now}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn int_reply(reply: &[u8]) -> i64 {
    String::from_utf8_lossy(reply)
        .trim_start_matches([':', '$', '+'])
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("not a number: {}", String::from_utf8_lossy(reply)))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

const WRITERS: usize = 4;
const WRITES_EACH: i64 = 600;

/// Each writer increments its counter and appends the same number to its list; returns how
/// many writes were acknowledged.
fn write_load(port: u16, id: usize) -> i64 {
    let mut c = RawClient::connect(port).unwrap();
    let counter = format!("counter:{id}");
    let list = format!("list:{id}");
    for i in 1..=WRITES_EACH {
        let n = int_reply(&c.command(&["incr", &counter]));
        assert_eq!(n, i);
        c.command(&["rpush", &list, &i.to_string()]);
    }
    WRITES_EACH
}

fn check_counters(c: &mut RawClient, acknowledged: &[i64]) {
    for (id, &n) in acknowledged.iter().enumerate() {
        let got = int_reply(&c.command(&["get", &format!("counter:{id}")]));
        assert_eq!(got, n, "counter {id}: a write was lost or replayed twice");
        let items = c.command(&["lrange", &format!("list:{id}"), "0", "-1"]);
        let expected: Vec<u8> = {
            let mut out = format!("*{n}\r\n").into_bytes();
            for i in 1..=n {
                let s = i.to_string();
                out.extend_from_slice(format!("${}\r\n{s}\r\n", s.len()).as_bytes());
            }
            out
        };
        assert!(items == expected, "list {id} differs after restart");
    }
}

fn rewrite_under_load_then_kill(preamble: &str) {
    let dir = TempDir::new("aofrw-load");
    let args = [
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        preamble,
        // The saver sleeps per key it dumps itself: the rewrite lasts long enough for the
        // writers to run through it.
        "--rdb-key-save-delay",
        "600",
    ];
    let acknowledged = {
        let server = start_in(&dir.0, &args);
        let mut c = RawClient::connect(server.port).unwrap();
        assert_eq!(c.command(&["debug", "populate", "2000"]), b"+OK\r\n");
        let port = server.port;
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| std::thread::spawn(move || write_load(port, id)))
            .collect();
        assert_eq!(
            c.command(&["bgrewriteaof"]),
            b"+Background append only file rewriting started\r\n"
        );
        assert_eq!(
            c.command(&["bgrewriteaof"]),
            b"-ERR Background append only file rewriting already in progress\r\n"
        );
        wait_field(&mut c, "aof_rewrites", "1");
        // A second rewrite, killed (usually) halfway.
        assert_eq!(
            c.command(&["bgrewriteaof"]),
            b"+Background append only file rewriting started\r\n"
        );
        let acknowledged: Vec<i64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        // Usually still running here (the cron's expiry dumps untouched shards quickly, so
        // the delay does not make it certain); the restart must be exact either way.
        let files = files_in(&dir.0.join("appendonlydir"));
        assert!(
            files.iter().filter(|f| f.ends_with(".incr.aof")).count() >= 1,
            "{files:?}"
        );
        acknowledged
        // SIGKILL here.
    };
    let server = start_in(&dir.0, &args);
    let mut c = RawClient::connect(server.port).unwrap();
    check_counters(&mut c, &acknowledged);
    // The killed rewrite's temporary base is gone.
    let files = files_in(&dir.0.join("appendonlydir"));
    assert!(!files.iter().any(|f| f.starts_with("temp-")), "{files:?}");
    assert_eq!(
        int_reply(&c.command(&["dbsize"])),
        2000 + 2 * WRITERS as i64
    );
    // One more complete rewrite: the directory holds exactly one base and one increment.
    c.command(&["config", "set", "rdb-key-save-delay", "0"]);
    c.command(&["bgrewriteaof"]);
    wait_field(&mut c, "aof_rewrite_in_progress", "0");
    wait_field(&mut c, "aof_last_bgrewrite_status", "ok");
    let files = files_in(&dir.0.join("appendonlydir"));
    let ext = if preamble == "yes" {
        ".base.rdb"
    } else {
        ".base.aof"
    };
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(ext)), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".incr.aof")), "{files:?}");
    c.command(&["incr", "counter:0"]);
    c.command(&["rpush", "list:0", &(acknowledged[0] + 1).to_string()]);
    drop(server);
    let server = start_in(&dir.0, &args);
    let mut c = RawClient::connect(server.port).unwrap();
    let mut expected = acknowledged.clone();
    expected[0] += 1;
    check_counters(&mut c, &expected);
}

#[test]
fn bgrewriteaof_under_load_with_rdb_preamble_loses_and_repeats_nothing() {
    rewrite_under_load_then_kill("yes");
}

#[test]
fn bgrewriteaof_under_load_with_command_base_loses_and_repeats_nothing() {
    rewrite_under_load_then_kill("no");
}

#[test]
fn a_rewrite_and_a_bgsave_wait_for_each_other() {
    let dir = TempDir::new("aofrw-bgsave");
    let server = start_in(&dir.0, &["--appendonly", "yes"]);
    let mut c = RawClient::connect(server.port).unwrap();
    c.command(&["debug", "populate", "200"]);
    c.command(&["config", "set", "rdb-key-save-delay", "2000"]);
    // A running BGSAVE: the rewrite is scheduled and starts after it.
    assert_eq!(c.command(&["bgsave"]), b"+Background saving started\r\n");
    assert_eq!(
        c.command(&["bgrewriteaof"]),
        b"+Background append only file rewriting scheduled\r\n"
    );
    assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "1");
    assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "0");
    wait_field(&mut c, "aof_rewrites", "1");
    assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "0");
    assert!(dir.0.join("dump.rdb").exists());
    std::fs::remove_file(dir.0.join("dump.rdb")).unwrap();
    // A running rewrite: BGSAVE is refused, BGSAVE SCHEDULE waits for it.
    assert_eq!(
        c.command(&["bgrewriteaof"]),
        b"+Background append only file rewriting started\r\n"
    );
    assert_eq!(
        c.command(&["bgsave"]),
        b"-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.\r\n"
    );
    assert_eq!(
        c.command(&["bgsave", "schedule"]),
        b"+Background saving scheduled\r\n"
    );
    assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "1");
    wait_field(&mut c, "aof_rewrites", "2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.0.join("dump.rdb").exists() {
        assert!(Instant::now() < deadline, "the scheduled BGSAVE never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_field(&mut c, "rdb_bgsave_in_progress", "0");
    // CANCEL of a scheduled save.
    c.command(&["bgrewriteaof"]);
    assert_eq!(
        c.command(&["bgsave", "schedule"]),
        b"+Background saving scheduled\r\n"
    );
    assert_eq!(
        c.command(&["bgsave", "cancel"]),
        b"+Scheduled background saving cancelled\r\n"
    );
    wait_field(&mut c, "aof_rewrite_in_progress", "0");
}

#[test]
fn the_automatic_rewrite_fires_past_min_size() {
    let dir = TempDir::new("aofrw-auto");
    let server = start_in(
        &dir.0,
        &[
            "--appendonly",
            "yes",
            "--auto-aof-rewrite-min-size",
            "4096",
            "--auto-aof-rewrite-percentage",
            "100",
        ],
    );
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(info_field(&mut c, "aof_rewrites"), "0");
    let value = "x".repeat(100);
    for i in 0..60 {
        c.command(&["set", &format!("k{}", i % 5), &value]);
    }
    wait_field(&mut c, "aof_rewrites", "1");
    // After it the AOF is small again (5 keys), below the minimum: no new rewrite.
    let size: u64 = info_field(&mut c, "aof_current_size").parse().unwrap();
    assert!(size < 4096, "{size}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(info_field(&mut c, "aof_rewrites"), "1");
}

#[test]
fn switching_aof_on_during_a_bgsave_waits_for_it() {
    let dir = TempDir::new("aofrw-enable");
    let server = start_in(&dir.0, &["--rdb-key-save-delay", "3000"]);
    let mut c = RawClient::connect(server.port).unwrap();
    c.command(&["debug", "populate", "200"]);
    c.command(&["bgsave"]);
    assert_eq!(
        c.command(&["config", "set", "appendonly", "yes"]),
        b"+OK\r\n"
    );
    assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "1");
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    c.command(&["set", "during", "1"]);
    wait_field(&mut c, "aof_rewrites", "1");
    c.command(&["set", "after", "2"]);
    let files = files_in(&dir.0.join("appendonlydir"));
    assert_eq!(files.len(), 3, "{files:?}");
    drop(server);
    let server = start_in(&dir.0, &["--appendonly", "yes"]);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(int_reply(&c.command(&["dbsize"])), 202);
    assert_eq!(c.command(&["get", "during"]), b"$1\r\n1\r\n");
    assert_eq!(c.command(&["get", "after"]), b"$1\r\n2\r\n");
}

/// A dataset with every type, TTLs and a second database.
fn fill(c: &mut RawClient) {
    for cmd in [
        &["set", "s", "hello"][..],
        &["set", "ttl", "v", "ex", "1000"],
        &["rpush", "l", "a", "b", "c"],
        &["sadd", "set", "x", "y"],
        &["hset", "h", "f", "1", "g", "2"],
        &["zadd", "z", "1.5", "a", "2", "b"],
        &["xadd", "st", "1-1", "f", "v"],
        &["xadd", "st", "2-1", "f", "w"],
        &["xgroup", "create", "st", "g", "0"],
        &[
            "xreadgroup",
            "group",
            "g",
            "alice",
            "count",
            "1",
            "streams",
            "st",
            ">",
        ],
        &["xgroup", "createconsumer", "st", "g", "bob"],
        // Empty streams still exist: one emptied by MAXLEN 0, one made by XGROUP CREATE.
        &["xadd", "emptied", "maxlen", "0", "5-5", "f", "v"],
        &["xgroup", "create", "made", "g", "$", "mkstream"],
        &["incrbyfloat", "fl", "2.5"],
        &["select", "4"],
        &["set", "in4", "1"],
        &["select", "0"],
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
        &["xpending", "st", "g"],
        &["xinfo", "groups", "st"],
        &["xinfo", "stream", "emptied"],
        &["xinfo", "stream", "made"],
        &["xinfo", "groups", "made"],
        &["get", "fl"],
        &["get", "after"],
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
    let ttl = int_reply(&c.command(&["ttl", "ttl"]));
    out.push(vec![u8::from((990..=1000).contains(&ttl))]);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn rewritten_directories_load_into_valkey_and_redis_7() {
    for preamble in ["yes", "no"] {
        let dir = TempDir::new("aofrw-interop");
        let args = ["--appendonly", "yes", "--aof-use-rdb-preamble", preamble];
        let expected = {
            let server = start_in(&dir.0, &args);
            let mut c = RawClient::connect(server.port).unwrap();
            fill(&mut c);
            c.command(&["bgrewriteaof"]);
            wait_field(&mut c, "aof_rewrites", "1");
            c.command(&["set", "after", "in the increment"]);
            snapshot(&mut c)
        };
        for oracle in ["valkey", "redis7"] {
            let copy = TempDir::new("aofrw-oracle");
            copy_dir(&dir.0.join("appendonlydir"), &copy.0.join("appendonlydir"));
            let dir_arg = copy.0.display().to_string();
            let oracle_args = ["--dir", dir_arg.as_str(), "--appendonly", "yes"];
            let server = if oracle == "valkey" {
                start_valkey(&oracle_args)
            } else {
                start_redis7(&oracle_args)
            };
            let mut o = RawClient::connect(server.port).unwrap();
            assert_eq!(
                snapshot(&mut o),
                expected,
                "{oracle} with aof-use-rdb-preamble {preamble}"
            );
        }
    }
}

#[test]
fn a_kill_right_after_the_rewrite_starts_loses_nothing() {
    let dir = TempDir::new("aofrw-early-kill");
    let args = ["--appendonly", "yes", "--rdb-key-save-delay", "1000"];
    {
        let server = start_in(&dir.0, &args);
        let mut c = RawClient::connect(server.port).unwrap();
        assert_eq!(c.command(&["debug", "populate", "5000"]), b"+OK\r\n");
        for _ in 0..10 {
            c.command(&["incr", "n"]);
        }
        assert_eq!(
            c.command(&["bgrewriteaof"]),
            b"+Background append only file rewriting started\r\n"
        );
        // After the instant: the new increment receives these.
        for _ in 0..5 {
            c.command(&["incr", "n"]);
        }
        // The manifest names the old base, the old increment and the new one.
        let manifest =
            std::fs::read_to_string(dir.0.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        assert!(
            manifest.contains("appendonly.aof.2.incr.aof seq 2 type i"),
            "{manifest}"
        );
        // SIGKILL with the rewrite (most likely) still running.
    }
    let server = start_in(&dir.0, &args);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(c.command(&["get", "n"]), b"$2\r\n15\r\n");
    assert_eq!(int_reply(&c.command(&["dbsize"])), 5001);
}

#[test]
fn a_failed_rewrite_keeps_the_old_file_set() {
    let dir = TempDir::new("aofrw-fail");
    let args = ["--appendonly", "yes"];
    let aof_dir = dir.0.join("appendonlydir");
    {
        let server = start_in(&dir.0, &args);
        let mut c = RawClient::connect(server.port).unwrap();
        c.command(&["set", "before", "1"]);
        // The new base cannot be renamed into place: a directory holds its name.
        std::fs::create_dir(aof_dir.join("appendonly.aof.2.base.rdb")).unwrap();
        assert_eq!(
            c.command(&["bgrewriteaof"]),
            b"+Background append only file rewriting started\r\n"
        );
        wait_field(&mut c, "aof_rewrite_in_progress", "0");
        assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "err");
        assert_eq!(info_field(&mut c, "aof_rewrites_consecutive_failures"), "1");
        c.command(&["set", "after", "2"]);
        let files = files_in(&aof_dir);
        assert!(!files.iter().any(|f| f.starts_with("temp-")), "{files:?}");
        assert!(
            files.contains(&"appendonly.aof.1.base.rdb".to_string()),
            "{files:?}"
        );
    }
    let server = start_in(&dir.0, &args);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(c.command(&["get", "before"]), b"$1\r\n1\r\n");
    assert_eq!(c.command(&["get", "after"]), b"$1\r\n2\r\n");
    // Once the obstacle is gone, the next rewrite succeeds.
    std::fs::remove_dir(aof_dir.join("appendonly.aof.2.base.rdb")).unwrap();
    c.command(&["bgrewriteaof"]);
    wait_field(&mut c, "aof_rewrite_in_progress", "0");
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(info_field(&mut c, "aof_rewrites_consecutive_failures"), "0");
}

#[test]
fn save_waits_for_a_rewrite_and_shutdown_stops_it() {
    let dir = TempDir::new("aofrw-save");
    let mut server = start_in(&dir.0, &["--appendonly", "yes"]);
    let mut c = RawClient::connect(server.port).unwrap();
    c.command(&["debug", "populate", "300"]);
    c.command(&["config", "set", "rdb-key-save-delay", "2000"]);
    assert_eq!(
        c.command(&["bgrewriteaof"]),
        b"+Background append only file rewriting started\r\n"
    );
    assert_eq!(c.command(&["save"]), b"+OK\r\n");
    assert!(dir.0.join("dump.rdb").exists());
    assert_eq!(info_field(&mut c, "aof_rewrites"), "1");
    // SHUTDOWN with save rules during a rewrite: the rewrite is stopped, the save done.
    std::fs::remove_file(dir.0.join("dump.rdb")).unwrap();
    c.command(&["config", "set", "save", "3600 1"]);
    assert_eq!(
        c.command(&["bgrewriteaof"]),
        b"+Background append only file rewriting started\r\n"
    );
    c.send_raw(&common::encode(&["shutdown"]));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "SHUTDOWN did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.0.join("dump.rdb").exists());
    let files = files_in(&dir.0.join("appendonlydir"));
    // The stopped rewrite's new increment stays listed; its base never appeared.
    assert!(!files.iter().any(|f| f.contains(".3.base")), "{files:?}");
    drop(server);
    let server = start_in(&dir.0, &["--appendonly", "yes"]);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(int_reply(&c.command(&["dbsize"])), 300);
}
