//! Scripts across clients and worker threads: BUSY past `busy-reply-threshold`, SCRIPT KILL
//! and FUNCTION KILL, a script that wrote cannot be killed, SHUTDOWN NOSAVE ends one, a
//! script is atomic against writers on other threads, and blocked clients are served after
//! it. Every script loops against a deadline (at most 3 s) and every read times out.
//!
//! A script runs on its caller's worker thread. Most tests here use two workers, the other
//! connections opened before the script starts landing on the next worker (round-robin);
//! those at the end use one worker, where the script's own worker must answer its other
//! clients between slices of the script (`scripting::fiber`), compared with the oracle.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv, start_ferrokv_on_workers};

fn server() -> ServerProcess {
    start_ferrokv_on_workers(2, &["--busy-reply-threshold", "100"])
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

/// A script that declares its keys and stayed within their shards once runs holding only
/// those shards, unregistered; once it runs long it registers like any script: other
/// clients get BUSY, FUNCTION STATS shows it, SCRIPT KILL stops it.
#[test]
fn a_script_holding_only_its_keys_is_busy_and_killable_once_it_runs_long() {
    let server = server();
    let mut runner = connect(&server);
    let mut other = connect(&server);
    let script = "local t = tonumber(redis.call('time')[1]) + tonumber(ARGV[1]) \
                  while tonumber(redis.call('time')[1]) < t do end \
                  return redis.call('get', KEYS[1])";
    // A quick first run on the runner's thread: it stays within its key's shard.
    assert_eq!(
        cmd(&mut runner, &["EVAL", script, "1", "k", "0"]),
        "$-1\\r\\n"
    );
    send(&mut runner, &["EVAL", script, "1", "k", "3"]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(cmd(&mut other, &["GET", "unrelated"]), BUSY);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(cmd(&mut other, &["SCRIPT", "KILL"]), "+OK\\r\\n");
    assert_eq!(
        show(&runner.read_reply().expect("killed script's reply")),
        "-ERR Script killed by user with SCRIPT KILL. script: on @user_script:1.\\r\\n"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(cmd(&mut other, &["GET", "k"]), "$-1\\r\\n");
}

/// Scripts on both worker threads move units between 16 counters, some through a key they
/// did not declare (read first, so a busy shard restarts the run holding every shard; or,
/// on one client, after a write, so the run waits for the shard), while other clients
/// check with an atomic MGET and a script of no keys that the total never changes. A
/// widened hold that let a shard go early, or an update lost between two runs, changes
/// the total; a deadlock runs into the read timeout.
#[test]
fn scripts_reaching_undeclared_keys_stay_atomic_across_threads() {
    const COUNTERS: usize = 16;
    const TOTAL: i64 = 100 * COUNTERS as i64;
    let server = server();
    let counters: Vec<String> = (0..COUNTERS).map(|i| format!("acct:{i}")).collect();
    {
        let mut setup = connect(&server);
        for c in &counters {
            assert_eq!(cmd(&mut setup, &["SET", c, "100"]), "+OK\\r\\n");
        }
    }
    let sum_of = |reply: &[u8]| -> i64 {
        let text = String::from_utf8_lossy(reply);
        text.split("\r\n")
            .filter_map(|line| line.trim_start_matches(':').parse::<i64>().ok())
            .sum()
    };
    std::thread::scope(|s| {
        for movers in 0..4u64 {
            let counters = &counters;
            let port = server.port;
            s.spawn(move || {
                let mut client = RawClient::connect(port).expect("connect");
                let write_first = movers == 0;
                let mut seed = movers * 7919 + 13;
                let mut next = |n: usize| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as usize % n
                };
                for round in 0..150 {
                    // A script new to the server, so each one is learnt afresh: its first
                    // run stays within its keys; the second reaches an undeclared key.
                    let script = format!(
                        "-- mover {movers} round {round}\n\
                         local from, to = KEYS[1], KEYS[2]\n\
                         if ARGV[1] == '1' then to = ARGV[2] end\n\
                         if ARGV[3] == 'w' then\n\
                           redis.call('decr', from)\n\
                           redis.call('incr', to)\n\
                         else\n\
                           local d = tonumber(redis.call('get', to))\n\
                           redis.call('decr', from)\n\
                           for _ = 1, 20000 do end\n\
                           redis.call('set', to, d + 1)\n\
                         end\n\
                         return 1"
                    );
                    let order = if write_first { "w" } else { "r" };
                    for undeclared in ["0", "1"] {
                        // Three different counters: the read-first move reads `to` before
                        // it changes `from`.
                        let from_at = next(COUNTERS);
                        let from = &counters[from_at];
                        let declared_to = &counters[(from_at + 1 + next(COUNTERS - 1)) % COUNTERS];
                        let to = &counters[(from_at + 1 + next(COUNTERS - 1)) % COUNTERS];
                        let reply = cmd(
                            &mut client,
                            &[
                                "EVAL",
                                &script,
                                "2",
                                from,
                                declared_to,
                                undeclared,
                                to,
                                order,
                            ],
                        );
                        assert_eq!(reply, ":1\\r\\n", "mover {movers} round {round}");
                    }
                }
            });
        }
        for checker in 0..2 {
            let counters = &counters;
            let port = server.port;
            s.spawn(move || {
                let mut client = RawClient::connect(port).expect("connect");
                let sum_script = "local t = 0 for i = 0, 15 do \
                                  t = t + tonumber(redis.call('get', 'acct:' .. i)) end return t";
                for _ in 0..150 {
                    let reply = if checker == 0 {
                        let mut args = vec!["MGET"];
                        args.extend(counters.iter().map(String::as_str));
                        client.command(&args)
                    } else {
                        client.command(&["EVAL", sum_script, "0"])
                    };
                    assert_eq!(sum_of(&reply), TOTAL, "{}", show(&reply));
                }
            });
        }
    });
    let mut client = connect(&server);
    let mut args = vec!["MGET"];
    args.extend(counters.iter().map(String::as_str));
    assert_eq!(sum_of(&client.command(&args)), TOTAL);
}

/// Over `maxmemory`, a command first evicts, and evicting needs the shards a running script
/// holds: while a script is registered nothing is evicted, so a client on another worker
/// still gets BUSY after the threshold instead of waiting for the whole script.
#[test]
fn eviction_does_not_wait_for_a_running_script() {
    let server = server();
    let mut runner = connect(&server);
    let mut other = connect(&server);
    for i in 0..64 {
        cmd(&mut other, &["SET", &format!("k{i}"), "v"]);
    }
    // Two megabytes of room; the script's own Lua memory (8 MB) takes memory over the
    // limit, so the next command of another client must evict first.
    let used: u64 = common::info_field_of(&mut other, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory");
    let limit = (used + 2 * 1024 * 1024).to_string();
    cmd(
        &mut other,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    cmd(&mut other, &["CONFIG", "SET", "maxmemory", &limit]);
    let script = spin("local big = string.rep('x', 8 * 1024 * 1024)", 3);
    send(&mut runner, &["EVAL", &script, "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(cmd(&mut other, &["GET", "k1"]), BUSY);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(cmd(&mut other, &["SCRIPT", "KILL"]), "+OK\\r\\n");
    runner.read_reply().expect("killed script's reply");
}

/// New clients are handed to a worker that runs no script (accepting runs on a thread of
/// its own), so an operator's new connection is served at once, whichever worker runs the
/// script.
#[test]
fn new_clients_reach_a_free_worker_while_a_script_runs() {
    let server = server();
    // Two runners: round-robin puts them on different workers.
    let mut runners = [connect(&server), connect(&server)];
    for runner in runners.iter_mut() {
        send(runner, &["EVAL", &spin("", 3), "0"]);
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let mut first = connect(&server);
        let mut second = connect(&server);
        assert_eq!(cmd(&mut first, &["PING"]), BUSY);
        assert_eq!(cmd(&mut second, &["PING"]), BUSY);
        assert_eq!(cmd(&mut second, &["SCRIPT", "KILL"]), "+OK\\r\\n");
        assert_eq!(
            show(&runner.read_reply().expect("killed script's reply")),
            "-ERR Script killed by user with SCRIPT KILL. script: on @user_script:1.\\r\\n"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

/// The clients of the script's own worker, all connected before the script starts: one
/// worker for ferrokv, so every connection shares the script's thread.
struct SameWorker {
    server: ServerProcess,
    runner: RawClient,
    other: RawClient,
    watcher: RawClient,
}

fn same_worker(oracle: bool) -> SameWorker {
    let server = if oracle {
        common::start_valkey(&["--busy-reply-threshold", "100"])
    } else {
        start_ferrokv(&["--worker-threads", "1", "--busy-reply-threshold", "100"])
    };
    let runner = connect(&server);
    let other = connect(&server);
    let watcher = connect(&server);
    SameWorker {
        server,
        runner,
        other,
        watcher,
    }
}

/// Runs `scenario` on ferrokv and on the oracle, asserts the same replies, returns them.
fn as_on_valkey(scenario: fn(bool) -> Vec<String>) -> Vec<String> {
    let ferrokv = scenario(false);
    assert_eq!(ferrokv, scenario(true));
    ferrokv
}

/// A read-only script past the threshold: its worker's other clients get BUSY, run
/// `allow-busy` commands, cannot SHUTDOWN without NOSAVE, and stop it with SCRIPT KILL.
fn killed_on_its_own_worker(oracle: bool) -> Vec<String> {
    let mut c = same_worker(oracle);
    let mut seen = vec![cmd(&mut c.other, &["SET", "k", "v0"])];
    send(&mut c.runner, &["EVAL", &spin("", 3), "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    for args in [
        &["PING"][..],
        &["GET", "k"],
        &["CLIENT", "SETNAME", "operator"],
        &["CLIENT", "GETNAME"],
        &["SHUTDOWN"],
        &["FUNCTION", "KILL"],
        &["SCRIPT", "KILL"],
    ] {
        seen.push(cmd(&mut c.other, args));
    }
    seen.push(show(&c.runner.read_reply().expect("killed script's reply")));
    assert!(started.elapsed() < Duration::from_secs(2), "{oracle}");
    seen.push(cmd(&mut c.other, &["PING"]));
    seen.push(cmd(&mut c.watcher, &["GET", "k"]));
    seen
}

#[test]
fn the_scripts_own_worker_answers_busy_and_script_kill_as_valkey() {
    let ferrokv = as_on_valkey(killed_on_its_own_worker);
    assert_eq!(ferrokv[1], BUSY);
}

/// The same with the script queued in a transaction: EXEC runs it on the connection's
/// fiber too (an EXEC with no script queued does not need one), so its worker's clients get
/// BUSY and SCRIPT KILL ends it, as in Valkey.
fn killed_inside_exec_on_its_own_worker(oracle: bool) -> Vec<String> {
    let mut c = same_worker(oracle);
    let mut seen = vec![cmd(&mut c.other, &["SET", "k", "v0"])];
    seen.push(cmd(&mut c.runner, &["MULTI"]));
    seen.push(cmd(&mut c.runner, &["GET", "k"]));
    seen.push(cmd(&mut c.runner, &["EVAL", &spin("", 3), "0"]));
    send(&mut c.runner, &["EXEC"]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    for args in [&["GET", "k"][..], &["SCRIPT", "KILL"]] {
        seen.push(cmd(&mut c.other, args));
    }
    seen.push(show(&c.runner.read_reply().expect("EXEC reply")));
    assert!(started.elapsed() < Duration::from_secs(2), "{oracle}");
    // A transaction without a script, after it.
    seen.push(cmd(&mut c.runner, &["MULTI"]));
    seen.push(cmd(&mut c.runner, &["INCR", "n"]));
    seen.push(cmd(&mut c.runner, &["EXEC"]));
    seen
}

#[test]
fn a_script_inside_exec_answers_busy_and_script_kill_as_valkey() {
    let ferrokv = as_on_valkey(killed_inside_exec_on_its_own_worker);
    assert_eq!(ferrokv[4], BUSY);
}

/// Sends a script that sets `key` to `x`, then spins for `seconds`, and lets it pass
/// `busy-reply-threshold`.
fn start_writing_spin(runner: &mut RawClient, key: &str, seconds: u32) {
    let script = spin("redis.call('set', KEYS[1], 'x')", seconds);
    send(runner, &["EVAL", &script, "1", key]);
    std::thread::sleep(Duration::from_millis(300));
}

/// WATCH is `allow-busy`: sent to the script's own worker while a writing script is
/// suspended, it counts from that moment. The first script writes `early` before the WATCH
/// (EXEC goes through), the second writes `late` after it (EXEC fails); a command refused
/// with BUSY inside MULTI dooms that transaction.
fn watch_during_a_script(oracle: bool) -> Vec<String> {
    let mut c = same_worker(oracle);
    let mut seen = vec![cmd(&mut c.other, &["SET", "early", "0"])];
    // Writes first: cannot be killed.
    start_writing_spin(&mut c.runner, "early", 2);
    seen.push(cmd(&mut c.watcher, &["WATCH", "early"]));
    seen.push(cmd(&mut c.other, &["SCRIPT", "KILL"]));
    seen.push(cmd(&mut c.other, &["MULTI"]));
    seen.push(cmd(&mut c.other, &["INCR", "early"]));
    seen.push(show(&c.runner.read_reply().expect("script reply")));
    seen.push(cmd(&mut c.other, &["EXEC"]));
    seen.push(cmd(&mut c.watcher, &["MULTI"]));
    seen.push(cmd(&mut c.watcher, &["GET", "early"]));
    seen.push(cmd(&mut c.watcher, &["EXEC"]));

    // Writes last, after the WATCH.
    let late = format!(
        "{} redis.call('set', KEYS[1], 'y') return 'late'",
        spin("", 2).replace("return 'done'", "")
    );
    send(&mut c.runner, &["EVAL", &late, "1", "late"]);
    std::thread::sleep(Duration::from_millis(300));
    seen.push(cmd(&mut c.watcher, &["WATCH", "late"]));
    seen.push(show(&c.runner.read_reply().expect("script reply")));
    seen.push(cmd(&mut c.watcher, &["MULTI"]));
    seen.push(cmd(&mut c.watcher, &["GET", "late"]));
    seen.push(cmd(&mut c.watcher, &["EXEC"]));
    seen
}

#[test]
fn watch_on_the_scripts_own_worker_counts_from_its_moment_as_valkey() {
    let ferrokv = as_on_valkey(watch_during_a_script);
    // The second transaction saw the first script's write and ran; the last one watched a
    // key the script wrote afterwards and did not.
    assert_eq!(ferrokv[9], "*1\\r\\n$1\\r\\nx\\r\\n");
    assert_eq!(ferrokv[14], "*-1\\r\\n");
}

/// With one worker, SHUTDOWN NOSAVE reaches the server through the script's own worker.
#[test]
fn shutdown_nosave_from_the_scripts_own_worker() {
    let mut c = same_worker(false);
    start_writing_spin(&mut c.runner, "w", 3);
    assert_eq!(cmd(&mut c.other, &["SCRIPT", "KILL"]), UNKILLABLE);
    send(&mut c.other, &["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(c.server.child.try_wait(), Ok(Some(_))) {
        assert!(Instant::now() < deadline, "server still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Shows `text` to the monitors (ECHO) and to the key-miss subscribers (PUBLISH).
fn mark(client: &mut RawClient, text: &str) {
    let echoed = client.command(&["ECHO", text]);
    assert_eq!(
        echoed,
        format!("${}\r\n{text}\r\n", text.len()).into_bytes()
    );
    let delivered = client.command(&["PUBLISH", "__keyevent@0__:keymiss", text]);
    assert_eq!(delivered, b":1\r\n");
}

/// What a monitor or subscriber `client` received between the marks of `attempt`.
fn between_marks(client: &mut RawClient, attempt: usize) -> Vec<String> {
    let (start, end) = (format!("start {attempt}"), format!("end {attempt}"));
    let mut seen = Vec::new();
    let mut started = false;
    loop {
        let message = String::from_utf8_lossy(&client.read_reply().expect("message")).into_owned();
        if message.contains(&end) {
            return seen;
        }
        if started {
            seen.push(message);
        } else if message.contains(&start) {
            started = true;
        }
    }
}

/// A run holding only its declared keys' shards reads two of them (a hit and a miss) and
/// gets an error from a third call, then reads an undeclared key whose shard a slow SUNIONSTORE on the other worker holds: the run starts
/// again holding every shard and reads all three. Its reads count and show once, as the one
/// run Valkey would have made: commandstats, errorstats, keyspace hits and misses, MONITOR
/// lines and key-miss notifications. (Shards are chosen by a per-process seed, so the attempt is
/// repeated with other key names until a restart happens, which INFO counts.)
#[test]
fn a_run_that_starts_again_counts_and_shows_its_reads_once() {
    let server = start_ferrokv_on_workers(2, &[]);
    let mut runner = connect(&server);
    let mut blocker = connect(&server);
    let mut monitor = connect(&server);
    let mut subscriber = connect(&server);
    assert_eq!(
        cmd(
            &mut runner,
            &["CONFIG", "SET", "notify-keyspace-events", "Em"]
        ),
        "+OK\\r\\n"
    );
    // The blocker's set: a union of it holds its shard for a while.
    for chunk in 0..60 {
        let mut args = vec!["SADD".to_string(), "big".to_string()];
        args.extend((0..5000).map(|i| format!("member:{}", chunk * 5000 + i)));
        let reply = blocker.command(&args);
        assert!(reply.starts_with(b":"), "{}", show(&reply));
    }
    assert_eq!(cmd(&mut monitor, &["MONITOR"]), "+OK\\r\\n");
    subscriber.send_raw(&encode(&["SUBSCRIBE", "__keyevent@0__:keymiss"]));
    subscriber.read_reply().expect("subscribed");

    let counts = |client: &mut RawClient| -> (u64, u64, u64, u64, u64, u64) {
        let field = |client: &mut RawClient, section: &str, name: &str| -> u64 {
            common::info_field_of(client, section, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let calls = |client: &mut RawClient, name: &str| -> u64 {
            common::info_field_of(client, "commandstats", name)
                .and_then(|v| v.split(',').next()?.strip_prefix("calls=")?.parse().ok())
                .unwrap_or(0)
        };
        (
            calls(client, "cmdstat_get"),
            field(client, "stats", "keyspace_hits"),
            field(client, "stats", "keyspace_misses"),
            field(client, "stats", "ferrokv_script_restarts"),
            calls(client, "cmdstat_scard"),
            common::info_field_of(client, "errorstats", "errorstat_WRONGTYPE")
                .and_then(|v| v.strip_prefix("count=")?.parse().ok())
                .unwrap_or(0),
        )
    };

    let mut restarted = false;
    for attempt in 0..8 {
        let declared = format!("declared:{attempt}");
        let absent = format!("absent:{attempt}");
        // New to the server each attempt, so its first run here is learnt as narrow.
        let script = format!(
            "-- attempt {attempt}\n\
             local v = redis.call('GET', KEYS[1])\n\
             redis.call('GET', KEYS[2])\n\
             redis.pcall('LLEN', KEYS[1])\n\
             if v == 'wide' then redis.call('SCARD', ARGV[1]) end\n\
             return v"
        );
        assert_eq!(cmd(&mut runner, &["SET", &declared, "narrow"]), "+OK\\r\\n");
        assert_eq!(
            cmd(
                &mut runner,
                &["EVAL", &script, "2", &declared, &absent, "big"]
            ),
            "$6\\r\\nnarrow\\r\\n"
        );
        assert_eq!(cmd(&mut runner, &["SET", &declared, "wide"]), "+OK\\r\\n");
        let before = counts(&mut runner);
        mark(&mut runner, &format!("start {attempt}"));
        send(&mut blocker, &["SUNIONSTORE", "union", "big"]);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            cmd(
                &mut runner,
                &["EVAL", &script, "2", &declared, &absent, "big"]
            ),
            "$4\\r\\nwide\\r\\n"
        );
        let union = blocker.read_reply().expect("SUNIONSTORE reply");
        assert_eq!(show(&union), ":300000\\r\\n");
        let after = counts(&mut runner);
        mark(&mut runner, &format!("end {attempt}"));
        let script_lines: Vec<String> = between_marks(&mut monitor, attempt)
            .into_iter()
            .filter(|line| line.contains(" lua] "))
            .collect();
        let misses = between_marks(&mut subscriber, attempt);
        if after.3 == before.3 {
            // A key shared a shard with the set or the union, or the union was over.
            continue;
        }
        restarted = true;
        assert_eq!(after.3, before.3 + 1, "one restart");
        // The INFO calls between are neither; the run's calls count once each.
        assert_eq!(after.0 - before.0, 2, "GET calls counted");
        assert_eq!(after.4 - before.4, 1, "SCARD calls counted");
        assert_eq!(after.5 - before.5, 1, "the LLEN's WRONGTYPE counted");
        assert_eq!(
            after.1 - before.1,
            4,
            "hits: the declared key (GET, LLEN), the set, and the union's read of the set"
        );
        assert_eq!(after.2 - before.2, 1, "misses: the absent key");
        let expected = [
            format!("[0 lua] \"GET\" \"{declared}\""),
            format!("[0 lua] \"GET\" \"{absent}\""),
            format!("[0 lua] \"LLEN\" \"{declared}\""),
            "[0 lua] \"SCARD\" \"big\"".to_string(),
        ];
        assert_eq!(script_lines.len(), expected.len(), "{script_lines:?}");
        for (line, tail) in script_lines.iter().zip(&expected) {
            assert!(line.contains(tail.as_str()), "{line} lacks {tail}");
        }
        assert_eq!(misses.len(), 1, "{misses:?}");
        assert!(misses[0].contains(&absent), "{misses:?}");
        break;
    }
    assert!(restarted, "no attempt restarted its run");
}

/// A kill cannot be caught: a script that runs pcall (or xpcall) in an endless loop still
/// ends on SCRIPT KILL.
#[test]
fn a_kill_cannot_be_caught_by_pcall() {
    let server = server();
    for protect in ["pcall(f)", "xpcall(f, function(e) return e end)"] {
        let mut runner = connect(&server);
        let mut other = connect(&server);
        let script = format!(
            "local f = function() while 1 do redis.call('ping') end end while 1 do {protect} end"
        );
        send(&mut runner, &["EVAL", &script, "0"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while cmd(&mut other, &["PING"]) != BUSY {
            assert!(Instant::now() < deadline, "the script never got busy");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(cmd(&mut other, &["SCRIPT", "KILL"]), "+OK\\r\\n");
        let reply = show(&runner.read_reply().expect("the killed script's reply"));
        assert!(
            reply.contains("Script killed by user with SCRIPT KILL"),
            "{reply}"
        );
        assert_eq!(cmd(&mut other, &["PING"]), "+PONG\\r\\n");
    }
}
