//! Scripts' declared flags in the checks before a command runs, against Valkey 9.1 byte for
//! byte: over `maxmemory` (OOM), on a read-only replica (READONLY), with too few replicas
//! (NOREPLICAS), on a replica that lost its primary and serves no stale data (MASTERDOWN),
//! and under CLIENT PAUSE WRITE. A shebang script or a function is checked up front by what
//! it declares (`no-writes`, `allow-oom`, `allow-stale`); a script without a shebang runs
//! and its first refused command fails inside it.

mod common;

use std::time::{Duration, Instant};

use common::{
    RawClient, ServerProcess, eventually, link_up, show, start_ferrokv, start_valkey, wait_link_up,
};

/// Functions that write without declaring flags, read, declare `no-writes`, `allow-oom`,
/// or `allow-stale` with `no-writes`.
const LIBRARY: &str = "#!lua name=flags
server.register_function('fwrite', function(keys) return server.call('set', keys[1], 'f') end)
server.register_function('fread', function(keys) return server.call('get', keys[1]) end)
server.register_function{function_name='fro', callback=function(keys) return server.call('get', keys[1]) end, flags={'no-writes'}}
server.register_function{function_name='foom', callback=function(keys) return server.call('set', keys[1], 'o') end, flags={'allow-oom'}}
server.register_function{function_name='fstale', callback=function(keys) return server.call('get', keys[1]) end, flags={'no-writes', 'allow-stale'}}
";

/// Scripts EVALSHA runs (loaded with SCRIPT LOAD before the cases), with their SHA1s.
const SCRIPTS: &[(&str, &str)] = &[
    (
        "#!lua\nreturn redis.call('set','s1','1')",
        "8d84c7c3e9cd00e4f6291a4220c7dc6ac840dcc9",
    ),
    (
        "#!lua flags=no-writes\nreturn redis.call('get','k')",
        "dd009fa9352f37d78a54325b1e10ebdddb802b2f",
    ),
    (
        "return redis.call('set','s2','1')",
        "7f4a0e139c4f37485acc01983c54c2b19ed2292d",
    ),
];

/// The commands each condition runs, in order; the last ones show what was written.
fn cases() -> Vec<Vec<String>> {
    let owned = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut cases: Vec<Vec<String>> = [
        // Shebang scripts: checked by their declared flags.
        &["EVAL", "#!lua\nreturn redis.call('get','k')", "0"][..],
        &["EVAL", "#!lua\nreturn redis.call('set','w1','1')", "0"],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get','k')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('set','w2','1')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=allow-oom\nreturn redis.call('set','w3','1')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes,allow-oom\nreturn redis.call('set','w3','1')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('del','w3')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes,allow-stale\nreturn redis.call('get','k')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes,allow-stale\nreturn redis.pcall('get','k')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes,allow-stale\nreturn redis.call('ping')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes,allow-stale\nreturn redis.call('echo','e')",
            "0",
        ],
        &["EVAL", "#!lua flags=allow-stale\nreturn 1", "0"],
        &["EVAL", "#!lua flags=no-writes,no-cluster\nreturn 1", "0"],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('publish','ch','m')",
            "0",
        ],
        // Scripts without a shebang: the first refused command fails inside the script.
        &["EVAL", "return 1", "0"],
        &["EVAL", "return redis.call('get','k')", "0"],
        &["EVAL", "return redis.call('set','c1','1')", "0"],
        &["EVAL", "return redis.pcall('set','c2','1')", "0"],
        &[
            "EVAL",
            "local r = redis.pcall('set','c2','1'); return r['err']",
            "0",
        ],
        &[
            "EVAL",
            "redis.call('del','nokey'); return redis.call('set','c3','1')",
            "0",
        ],
        &["EVAL", "return redis.call('incr',KEYS[1])", "1", "n"],
        &["EVAL", "return redis.call('publish','ch','m')", "0"],
        &["EVAL_RO", "return redis.call('get','k')", "0"],
        &["EVAL_RO", "return redis.call('set','c4','1')", "0"],
        &["EVAL_RO", "return redis.call('publish','ch','m')", "0"],
        &["EVAL_RO", "#!lua\nreturn 1", "0"],
        &["EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"],
        // Functions always declare their flags.
        &["FCALL", "fwrite", "1", "f1"],
        &["FCALL", "fread", "1", "k"],
        &["FCALL", "fro", "1", "k"],
        &["FCALL", "foom", "1", "f2"],
        &["FCALL", "fstale", "1", "k"],
        &["FCALL_RO", "fwrite", "1", "f1"],
        &["FCALL_RO", "fro", "1", "k"],
        &["FCALL", "nosuch", "0"],
        // Inside MULTI the declared flags are checked while queueing.
        &["MULTI"],
        &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EXEC"],
        &["MULTI"],
        &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
        &["EVAL", "return redis.call('set','c5','1')", "0"],
        &["GET", "k"],
        &["EXEC"],
        // Over `maxmemory`, only `denyoom` commands are refused while queueing.
        &["MULTI"],
        &["GET", "k"],
        &["PING"],
        &["EVAL", "return 1", "0"],
        &["SET", "m", "1"],
        &["EXEC"],
    ]
    .iter()
    .map(|c| owned(c))
    .collect();
    for (_, sha) in SCRIPTS {
        cases.push(owned(&["EVALSHA", sha, "0"]));
    }
    cases
}

/// What the cases wrote, read once the condition is lifted.
const WRITTEN: &[&str] = &[
    "w1", "w2", "w3", "c1", "c2", "c3", "c4", "c5", "n", "f1", "f2", "s1", "s2",
];

/// The library, the EVALSHA scripts and a key to read, on a primary.
fn load_data(c: &mut RawClient) {
    let loaded = c.command(&["FUNCTION", "LOAD", LIBRARY]);
    assert_eq!(show(&loaded), "$5\\r\\nflags\\r\\n");
    load_scripts(c);
    assert_eq!(show(&c.command(&["SET", "k", "v"])), "+OK\\r\\n");
}

/// SCRIPT LOAD is no write: replicas load scripts too (and they are not replicated).
fn load_scripts(c: &mut RawClient) {
    for (script, sha) in SCRIPTS {
        let loaded = c.command(&["SCRIPT", "LOAD", script]);
        assert_eq!(show(&loaded), format!("$40\\r\\n{sha}\\r\\n"));
    }
}

/// Each case with its reply.
fn run_cases(c: &mut RawClient) -> Vec<(String, String)> {
    cases()
        .iter()
        .map(|case| (case.join(" "), show(&c.command(case))))
        .collect()
}

fn read_written(c: &mut RawClient) -> Vec<(String, String)> {
    WRITTEN
        .iter()
        .map(|key| (format!("GET {key}"), show(&c.command(&["GET", key]))))
        .collect()
}

fn assert_same(valkey: &[(String, String)], ferrokv: &[(String, String)]) {
    assert_eq!(valkey.len(), ferrokv.len());
    for ((case, expected), (_, got)) in valkey.iter().zip(ferrokv) {
        assert_eq!(got, expected, "{case}");
    }
}

/// Over `maxmemory` with `noeviction`.
fn over_maxmemory(start: fn(&[&str]) -> ServerProcess) -> Vec<(String, String)> {
    let server = start(&["--maxmemory-policy", "noeviction"]);
    let mut c = RawClient::connect(server.port).unwrap();
    load_data(&mut c);
    assert_eq!(
        show(&c.command(&["CONFIG", "SET", "maxmemory", "1"])),
        "+OK\\r\\n"
    );
    let mut replies = run_cases(&mut c);
    c.command(&["CONFIG", "SET", "maxmemory", "0"]);
    replies.extend(read_written(&mut c));
    replies
}

#[test]
fn declared_flags_over_maxmemory() {
    assert_same(
        &over_maxmemory(start_valkey),
        &over_maxmemory(start_ferrokv),
    );
}

/// On a primary whose `min-replicas-to-write` is not met.
fn too_few_replicas(start: fn(&[&str]) -> ServerProcess) -> Vec<(String, String)> {
    let server = start(&[]);
    let mut c = RawClient::connect(server.port).unwrap();
    load_data(&mut c);
    c.command(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let mut replies = run_cases(&mut c);
    c.command(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    replies.extend(read_written(&mut c));
    replies
}

#[test]
fn declared_flags_with_too_few_replicas() {
    assert_same(
        &too_few_replicas(start_valkey),
        &too_few_replicas(start_ferrokv),
    );
}

/// On a read-only replica linked to its primary, then on the same replica once the
/// primary is gone and `replica-serve-stale-data` is off.
fn on_a_replica(start: fn(&[&str]) -> ServerProcess) -> Vec<(String, String)> {
    let primary = start(&[]);
    let mut p = RawClient::connect(primary.port).unwrap();
    load_data(&mut p);
    let replica = start(&["--replicaof", &format!("127.0.0.1 {}", primary.port)]);
    wait_link_up(replica.port);
    let mut c = RawClient::connect(replica.port).unwrap();
    eventually(10, "the library on the replica", || {
        show(&c.command(&["GET", "k"])) == "$1\\r\\nv\\r\\n"
    });
    load_scripts(&mut c);
    let mut replies = run_cases(&mut c);
    replies.extend(read_written(&mut c));
    drop(p);
    drop(primary);
    eventually(10, "the replica's link down", || !link_up(replica.port));
    c.command(&["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    replies.extend(
        run_cases(&mut c)
            .into_iter()
            .map(|(case, reply)| (format!("stale: {case}"), reply)),
    );
    replies
}

#[test]
fn declared_flags_on_a_replica() {
    assert_same(&on_a_replica(start_valkey), &on_a_replica(start_ferrokv));
}

/// Whether each script is held back by CLIENT PAUSE WRITE: those that declare writes and
/// those without a shebang are (EVAL and FCALL may replicate); `no-writes` ones and the
/// `_RO` commands are not.
fn held_by_pause(start: fn(&[&str]) -> ServerProcess) -> Vec<(String, String)> {
    let server = start(&[]);
    let mut admin = RawClient::connect(server.port).unwrap();
    load_data(&mut admin);
    let mut c = RawClient::connect(server.port).unwrap();
    let scripts: &[&[&str]] = &[
        &["EVAL", "return 1", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
        &["EVAL_RO", "return 1", "0"],
        &["FCALL", "fwrite", "1", "p"],
        &["FCALL", "fro", "1", "k"],
        &["FCALL_RO", "fro", "1", "k"],
    ];
    scripts
        .iter()
        .map(|script| {
            admin.command(&["CLIENT", "PAUSE", "1000", "WRITE"]);
            let started = Instant::now();
            let reply = show(&c.command(script));
            let held = started.elapsed() >= Duration::from_millis(700);
            admin.command(&["CLIENT", "UNPAUSE"]);
            (script.join(" "), format!("held={held} {reply}"))
        })
        .collect()
}

#[test]
fn declared_flags_under_client_pause_write() {
    assert_same(&held_by_pause(start_valkey), &held_by_pause(start_ferrokv));
}
