//! MIGRATE: keys of every type move between ferrokv and the oracle valkey-server 9.1 in
//! every direction, and ferrokv as the source answers exactly what valkey as the source
//! answers (each scenario runs on a valkey source and on a ferrokv source against the same
//! kind of target, and the transcripts are compared byte for byte), including every error
//! path. Targets that refuse, never answer or close the connection are played by listeners
//! in the test.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::aof::incr_commands;
use common::dataset::{dataset, fill_every_type};
use common::{
    RawClient, ServerProcess, TempDir, ferrokv_binary, free_port, info_field, show, split_elements,
    start_ferrokv, start_ferrokv_on_workers, start_valkey,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Ferrokv,
    Valkey,
}

fn start(kind: Kind, args: &[&str]) -> ServerProcess {
    match kind {
        Kind::Ferrokv => start_ferrokv(args),
        Kind::Valkey => start_valkey(args),
    }
}

fn connect(port: u16) -> RawClient {
    RawClient::connect(port).expect("connect")
}

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// Builds `MIGRATE 127.0.0.1 <port> rest...`.
fn migrate_args(port: u16, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["MIGRATE".to_string(), "127.0.0.1".into(), port.to_string()];
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

// ---- whole datasets of every type, in every direction ----

/// Keys beyond `fill_every_type`: large encodings, field TTLs, a stream whose group has a
/// PEL over two consumers, keys with TTLs.
fn fill_more(port: u16) {
    let mut c = connect(port);
    let far = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000)
        .to_string();
    let steps: Vec<Vec<String>> = vec![
        vec![
            "HSET".into(),
            "fttl".into(),
            "a".into(),
            "1".into(),
            "b".into(),
            "2".into(),
            "c".into(),
            "3".into(),
        ],
        vec![
            "HPEXPIRE".into(),
            "fttl".into(),
            "500000".into(),
            "FIELDS".into(),
            "1".into(),
            "a".into(),
        ],
        vec![
            "HPEXPIREAT".into(),
            "fttl".into(),
            far,
            "FIELDS".into(),
            "1".into(),
            "b".into(),
        ],
        vec![
            "XADD".into(),
            "events".into(),
            "1-1".into(),
            "a".into(),
            "1".into(),
        ],
        vec![
            "XADD".into(),
            "events".into(),
            "2-1".into(),
            "b".into(),
            "2".into(),
        ],
        vec![
            "XADD".into(),
            "events".into(),
            "3-1".into(),
            "c".into(),
            "3".into(),
        ],
        vec![
            "XGROUP".into(),
            "CREATE".into(),
            "events".into(),
            "g1".into(),
            "0".into(),
        ],
        vec![
            "XGROUP".into(),
            "CREATE".into(),
            "events".into(),
            "g2".into(),
            "$".into(),
        ],
        vec![
            "XREADGROUP".into(),
            "GROUP".into(),
            "g1".into(),
            "alice".into(),
            "COUNT".into(),
            "2".into(),
            "STREAMS".into(),
            "events".into(),
            ">".into(),
        ],
        vec![
            "XREADGROUP".into(),
            "GROUP".into(),
            "g1".into(),
            "bob".into(),
            "COUNT".into(),
            "1".into(),
            "STREAMS".into(),
            "events".into(),
            ">".into(),
        ],
        vec!["XACK".into(), "events".into(), "g1".into(), "1-1".into()],
        vec![
            "SET".into(),
            "ttl:short".into(),
            "x".into(),
            "PX".into(),
            "600000".into(),
        ],
        vec!["HSET".into(), "ttl:hash".into(), "f".into(), "v".into()],
        vec!["PEXPIRE".into(), "ttl:hash".into(), "900000".into()],
    ];
    for step in &steps {
        let reply = c.command(step);
        assert!(!reply.starts_with(b"-"), "{step:?}: {}", show(&reply));
    }
    for i in 0..200 {
        c.command(&["RPUSH", "biglist", &format!("element:{i}")]);
        c.command(&["SADD", "bigset", &format!("member:{i}")]);
        c.command(&["ZADD", "bigzset", &i.to_string(), &format!("m:{i}")]);
    }
}

/// The TTL part of a `dataset` value (`... ttl=:<ms>`) and the rest.
fn split_ttl(value: &str) -> (&str, i64) {
    match value.rsplit_once(" ttl=") {
        Some((rest, ttl)) => (
            rest,
            ttl.trim_start_matches(':').trim().parse().unwrap_or(-3),
        ),
        None => (value, -3),
    }
}

/// Datasets equal, except that key TTLs (sent relative, as Valkey sends them) may move by
/// the transfer's duration.
fn assert_same_dataset(
    before: &BTreeMap<(usize, Vec<u8>), String>,
    after: &BTreeMap<(usize, Vec<u8>), String>,
    what: &str,
) {
    let keys = |d: &BTreeMap<(usize, Vec<u8>), String>| d.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(before), keys(after), "{what}: the same keys");
    for (key, value) in before {
        let (a, a_ttl) = split_ttl(value);
        let (b, b_ttl) = split_ttl(&after[key]);
        assert_eq!(a, b, "{what}: {key:?}");
        assert!(
            (a_ttl < 0 && a_ttl == b_ttl) || (a_ttl > 0 && (a_ttl - b_ttl).abs() < 2000),
            "{what}: {key:?} expiry {a_ttl} became {b_ttl}"
        );
    }
}

/// Every hash field TTL of `fttl`, which travels as an absolute time.
fn field_ttls(port: u16) -> Vec<u8> {
    connect(port).command(&["HPEXPIRETIME", "fttl", "FIELDS", "3", "a", "b", "c"])
}

fn move_everything(from: Kind, to: Kind) {
    let what = format!("{from:?} -> {to:?}");
    let src = start(from, &[]);
    let dst = start(to, &[]);
    fill_every_type(src.port);
    fill_more(src.port);
    let before = dataset(src.port);
    let ttls = field_ttls(src.port);
    assert!(before.len() > 300, "{what}: filled");
    let mut c = connect(src.port);
    for db in [0usize, 3] {
        c.command(&["SELECT", &db.to_string()]);
        let (_, keys) = split_elements(&c.command(&["KEYS", "*"])).expect("keys");
        let keys: Vec<String> = keys
            .iter()
            .map(|raw| {
                let t = text(raw);
                t.split("\r\n").nth(1).unwrap_or_default().to_string()
            })
            .collect();
        let mut rest = vec![
            "".to_string(),
            db.to_string(),
            "10000".into(),
            "KEYS".into(),
        ];
        rest.extend(keys);
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let reply = c.command(&migrate_args(dst.port, &rest));
        assert_eq!(text(&reply), "+OK\r\n", "{what}: db {db}");
    }
    assert!(
        dataset(src.port).is_empty(),
        "{what}: the source keeps nothing"
    );
    assert_same_dataset(&before, &dataset(dst.port), &what);
    assert_eq!(
        text(&field_ttls(dst.port)),
        text(&ttls),
        "{what}: field TTLs"
    );
}

#[test]
fn every_type_moves_from_ferrokv_to_ferrokv() {
    move_everything(Kind::Ferrokv, Kind::Ferrokv);
}

#[test]
fn every_type_moves_from_ferrokv_to_valkey() {
    move_everything(Kind::Ferrokv, Kind::Valkey);
}

#[test]
fn every_type_moves_from_valkey_to_ferrokv() {
    move_everything(Kind::Valkey, Kind::Ferrokv);
}

// ---- transcripts compared with valkey as the source ----

#[derive(Clone, Copy)]
enum On {
    Src,
    Dst,
}

/// One step: where it runs, the command (`{dst}` stands for the target's port), and
/// whether its reply is kept as is or only its shape (a TTL).
struct Step(On, &'static str);

/// Runs `steps` on a fresh `src_kind` source and `dst` target; the transcript of replies.
/// `{dst}` is the target's port, `{closed}` a port nobody listens on, `{silent}` a
/// listener that never answers.
fn transcript(
    src_kind: Kind,
    dst: &ServerProcess,
    steps: &[Step],
    dst_pass: Option<&str>,
) -> Vec<String> {
    let src = start(src_kind, &[]);
    let closed = free_port();
    let silent = SilentTarget::start();
    let mut s = connect(src.port);
    let mut d = connect(dst.port);
    if let Some(pass) = dst_pass {
        d.command(&["AUTH", pass]);
    }
    d.command(&["FLUSHALL"]);
    let mut out = Vec::new();
    for Step(on, step) in steps {
        let line = step
            .replace("{dst}", &dst.port.to_string())
            .replace("{closed}", &closed.to_string())
            .replace("{silent}", &silent.port.to_string());
        let args: Vec<String> = split_line(&line);
        let client = match on {
            On::Src => &mut s,
            On::Dst => &mut d,
        };
        let started = Instant::now();
        let mut reply = text(&client.command(&args));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{src_kind:?}: `{line}` took {:?}",
            started.elapsed()
        );
        if args[0].eq_ignore_ascii_case("keys") {
            // Key order is the hash table's.
            if let Some((header, mut keys)) = split_elements(reply.as_bytes()) {
                keys.sort();
                reply = text(&[header, keys.concat()].concat());
            }
        }
        if args[0].eq_ignore_ascii_case("pttl") {
            // Relative TTLs move with the clock: keep whether it is in the expected range.
            let ms: i64 = reply.trim_start_matches(':').trim().parse().unwrap_or(-3);
            reply = format!("pttl in (50000, 60000]: {}", ms > 50_000 && ms <= 60_000);
        }
        out.push(format!("{step} => {reply}"));
    }
    out
}

/// Splits a step on spaces; `''` is an empty argument.
fn split_line(line: &str) -> Vec<String> {
    line.split(' ')
        .map(|a| {
            if a == "''" {
                String::new()
            } else {
                a.to_string()
            }
        })
        .collect()
}

fn assert_same_transcripts(
    dst_kind: Kind,
    steps: &[Step],
    dst_args: &[&str],
    dst_pass: Option<&str>,
) {
    let dst = start(dst_kind, dst_args);
    let expected = transcript(Kind::Valkey, &dst, steps, dst_pass);
    let dst = start(dst_kind, dst_args);
    let got = transcript(Kind::Ferrokv, &dst, steps, dst_pass);
    let mut diffs = Vec::new();
    for (e, g) in expected.iter().zip(&got) {
        if e != g {
            diffs.push(format!(
                "  valkey:  {}\n  ferrokv: {}",
                e.escape_debug(),
                g.escape_debug()
            ));
        }
    }
    assert!(
        diffs.is_empty() && expected.len() == got.len(),
        "target {dst_kind:?}: ferrokv as the source differs from valkey:\n{}",
        diffs.join("\n")
    );
}

const SEMANTICS: &[Step] = &[
    Step(On::Src, "SET s1 v1"),
    Step(On::Src, "SET s2 v2 PX 60000"),
    Step(On::Src, "RPUSH l a b c"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} s1 0 5000"),
    Step(On::Src, "EXISTS s1"),
    Step(On::Dst, "GET s1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} s2 0 5000"),
    Step(On::Dst, "PTTL s2"),
    Step(
        On::Src,
        "MIGRATE 127.0.0.1 {dst} '' 3 5000 KEYS l missing s1",
    ),
    Step(On::Src, "EXISTS l"),
    Step(On::Dst, "SELECT 3"),
    Step(On::Dst, "LRANGE l 0 -1"),
    Step(On::Dst, "SELECT 0"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} missing 0 5000"),
    Step(
        On::Src,
        "MIGRATE 127.0.0.1 {dst} '' 0 5000 KEYS nope1 nope2",
    ),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} '' 0 5000 KEYS"),
    // BUSYKEY, COPY, REPLACE.
    Step(On::Src, "SET s1 again"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} s1 0 5000 COPY"),
    Step(On::Src, "EXISTS s1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} s1 0 5000 COPY REPLACE"),
    Step(On::Src, "EXISTS s1"),
    Step(On::Dst, "GET s1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} s1 0 5000 REPLACE"),
    Step(On::Src, "EXISTS s1"),
    // A target error for one key: the others move, the reply is the error.
    Step(On::Src, "MSET a 1 b 2 c 3"),
    Step(On::Dst, "SET b taken"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} '' 0 5000 KEYS a b c"),
    Step(On::Src, "MGET a b c"),
    Step(On::Dst, "MGET a b c"),
    // A key named twice is sent twice.
    Step(On::Src, "SET twice 1"),
    Step(
        On::Src,
        "MIGRATE 127.0.0.1 {dst} '' 0 5000 REPLACE KEYS twice twice",
    ),
    Step(On::Src, "EXISTS twice"),
    Step(On::Src, "SET twice 1"),
    Step(
        On::Src,
        "MIGRATE 127.0.0.1 {dst} '' 0 5000 KEYS twice twice",
    ),
    Step(On::Src, "EXISTS twice"),
    // Databases the target refuses; -1 on a connection whose database is unknown sends
    // no SELECT at all.
    Step(On::Src, "SET e 1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} e 16 5000 COPY"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} e 99999999999 5000 COPY"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} e -1 5000 COPY"),
    Step(On::Dst, "EXISTS e"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} e 0 5000 COPY AUTH pw"),
    Step(
        On::Src,
        "MIGRATE 127.0.0.1 {dst} e 0 5000 COPY REPLACE AUTH2 u pw",
    ),
    // Inside MULTI and a script.
    Step(On::Src, "MULTI"),
    Step(On::Src, "SET m 1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} m 0 5000"),
    Step(On::Src, "EXISTS m"),
    Step(On::Src, "EXEC"),
    Step(On::Src, "SET lua 1"),
    Step(
        On::Src,
        "EVAL return(redis.call('migrate','127.0.0.1',ARGV[1],KEYS[1],0,5000)) 1 lua {dst}",
    ),
    Step(On::Src, "EXISTS lua"),
    Step(On::Dst, "EXISTS m lua"),
];

#[test]
fn semantics_match_valkey_with_a_ferrokv_target() {
    assert_same_transcripts(Kind::Ferrokv, SEMANTICS, &[], None);
}

#[test]
fn semantics_match_valkey_with_a_valkey_target() {
    assert_same_transcripts(Kind::Valkey, SEMANTICS, &[], None);
}

const ERRORS: &[Step] = &[
    Step(On::Src, "SET a 1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1000 foo"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1000 auth"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1000 auth2 u"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1000 keys b"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1000 keys"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1000 foo keys"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1000 keys x foo"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a x 1000"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 x"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} a 0 1.5"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} missing x 1000"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} missing 0 1000 bad"),
    // Unreachable: refused, unresolvable, a port getaddrinfo refuses, a truncated port.
    Step(On::Src, "MIGRATE 127.0.0.1 {closed} a 0 1000"),
    Step(On::Src, "MIGRATE '' {dst} a 0 1000"),
    Step(On::Src, "MIGRATE nosuchhost.invalid {dst} a 0 1000"),
    Step(On::Src, "MIGRATE 127.0.0.1 -1 a 0 1000"),
    Step(On::Src, "MIGRATE 127.0.0.1 {closed}0 a 0 1000"),
    // Never answers: the timeout (0 is Valkey's default of one second).
    Step(On::Src, "MIGRATE 127.0.0.1 {silent} a 0 300"),
    Step(On::Src, "MIGRATE 127.0.0.1 {silent} a 0 0"),
    Step(On::Src, "EXISTS a"),
];

#[test]
fn error_replies_match_valkey() {
    assert_same_transcripts(Kind::Ferrokv, ERRORS, &[], None);
}

const AUTH: &[Step] = &[
    Step(On::Src, "SET u1 1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} u1 0 5000"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} u1 0 5000 AUTH wrong"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} u1 0 5000 AUTH secret"),
    Step(On::Src, "EXISTS u1"),
    Step(On::Src, "SET u2 1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} u2 0 5000 AUTH2 bob bobpw"),
    // The cached connection stays authenticated: the RESTORE succeeds although AUTH
    // failed, and the source keeps its key, as in Valkey.
    Step(On::Src, "SET u3 1"),
    Step(On::Src, "MIGRATE 127.0.0.1 {dst} u3 0 5000 AUTH2 bob wrong"),
    Step(On::Src, "EXISTS u3"),
    Step(
        On::Src,
        "MIGRATE 127.0.0.1 {dst} '' 0 5000 AUTH2 bob bobpw KEYS u3",
    ),
    Step(On::Dst, "KEYS u*"),
];

fn auth_target(kind: Kind) {
    let args = ["--requirepass", "secret"];
    let setup = |dst: &ServerProcess| {
        let mut d = connect(dst.port);
        d.command(&["AUTH", "secret"]);
        d.command(&["ACL", "SETUSER", "bob", "on", ">bobpw", "~*", "+@all"]);
    };
    // The target needs its ACL user: start it here and hand the transcript its port.
    let dst = start(kind, &args);
    setup(&dst);
    let expected = transcript(Kind::Valkey, &dst, AUTH, Some("secret"));
    let dst = start(kind, &args);
    setup(&dst);
    let got = transcript(Kind::Ferrokv, &dst, AUTH, Some("secret"));
    assert_eq!(got, expected, "target {kind:?}");
    assert!(
        expected
            .iter()
            .any(|l| l.contains("AUTH2 bob bobpw => +OK"))
    );
}

#[test]
fn auth_and_auth2_match_valkey_against_a_ferrokv_target() {
    auth_target(Kind::Ferrokv);
}

#[test]
fn auth_and_auth2_match_valkey_against_a_valkey_target() {
    auth_target(Kind::Valkey);
}

/// A read-only key permission is not enough: the keys are RW.
#[test]
fn acl_needs_write_access_to_the_keys() {
    let dst = start_ferrokv(&[]);
    let mut replies = Vec::new();
    for kind in [Kind::Valkey, Kind::Ferrokv] {
        let src = start(kind, &[]);
        let mut admin = connect(src.port);
        admin.command(&["ACL", "SETUSER", "ro", "on", "nopass", "%R~*", "+@all"]);
        admin.command(&["ACL", "SETUSER", "wo", "on", "nopass", "%W~*", "+@all"]);
        admin.command(&["ACL", "SETUSER", "rw", "on", "nopass", "~*", "+@all"]);
        admin.command(&["MSET", "q", "1", "r", "2"]);
        let mut out = Vec::new();
        for (user, rest) in [
            ("ro", vec!["q", "0", "1000", "COPY", "REPLACE"]),
            (
                "ro",
                vec!["", "0", "1000", "COPY", "REPLACE", "KEYS", "q", "r"],
            ),
            ("wo", vec!["q", "0", "1000", "COPY", "REPLACE"]),
            ("ro", vec!["q", "0", "1000", "KEYS", "a"]),
            (
                "rw",
                vec!["", "0", "1000", "COPY", "REPLACE", "KEYS", "q", "r"],
            ),
        ] {
            let mut c = connect(src.port);
            c.command(&["AUTH", user, "x"]);
            out.push(text(&c.command(&migrate_args(dst.port, &rest))));
        }
        out.push(text(&admin.command(&["ACL", "LOG", "RESET"])));
        replies.push(out);
    }
    assert_eq!(replies[1], replies[0]);
    assert!(replies[0][0].starts_with("-NOPERM"), "{:?}", replies[0]);
}

/// `COMMAND GETKEYS` and `GETKEYSANDFLAGS` in both forms, as valkey finds the keys (its
/// key specs, then `migrateGetKeys` once the incomplete KEYS spec matches).
#[test]
fn getkeys_matches_valkey() {
    let valkey = start_valkey(&[]);
    let ferrokv = start_ferrokv(&[]);
    let mut v = connect(valkey.port);
    let mut f = connect(ferrokv.port);
    let forms: &[&[&str]] = &[
        &["h", "1", "k", "0", "1000"],
        &["h", "1", "", "0", "1000"],
        &["h", "1", "", "0", "1000", "KEYS", "a", "b", "c"],
        &["h", "1", "k", "0", "1000", "KEYS", "a", "b", "c"],
        &["h", "1", "", "0", "1000", "AUTH", "keys", "keys", "a", "b"],
        &[
            "h", "1", "", "0", "1000", "AUTH2", "keys", "keys", "keys", "a", "b",
        ],
        &["h", "1", "", "0", "1000", "COPY", "KEYS"],
        &["h", "1", "k", "0", "1000", "foo", "keys", "a"],
        &["h", "1", "", "0", "1000", "keys", "keys", "a"],
        &["keys", "1", "k", "0", "1000"],
        &["h", "1", "", "0", "1000", "AUTH", "keys", "x"],
        &["h", "1", "", "0", "1000", "AUTH2", "a", "keys"],
        &["h", "1", "k", "0"],
    ];
    for form in forms {
        for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
            let mut args = vec!["COMMAND", sub, "MIGRATE"];
            args.extend_from_slice(form);
            assert_eq!(
                show(&f.command(&args)),
                show(&v.command(&args)),
                "COMMAND {sub} MIGRATE {form:?}"
            );
        }
    }
}

// ---- targets that fail ----

/// A listener that accepts and never answers; what it received is kept.
struct SilentTarget {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    accepted: Arc<AtomicUsize>,
}

impl SilentTarget {
    fn start() -> SilentTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (r, a) = (received.clone(), accepted.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                a.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        SilentTarget {
            port,
            received,
            accepted,
        }
    }
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn failing_targets_answer_within_the_timeout_and_leak_nothing() {
    let src = start_ferrokv(&[]);
    let mut c = connect(src.port);
    c.command(&["SET", "k", "v"]);
    let closed = free_port();
    let silent = SilentTarget::start();

    let started = Instant::now();
    let reply = c.command(&migrate_args(closed, &["k", "0", "1000"]));
    assert_eq!(
        text(&reply),
        "-IOERR error or timeout writing to target instance\r\n"
    );
    // Refused at once; the bound only says it does not hang (loaded CI machines are slow).
    assert!(started.elapsed() < Duration::from_secs(10));

    let started = Instant::now();
    let reply = c.command(&migrate_args(silent.port, &["k", "0", "300"]));
    let took = started.elapsed();
    assert_eq!(
        text(&reply),
        "-IOERR error or timeout reading to target instance\r\n"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(10),
        "{took:?}"
    );
    // What Valkey sends: SELECT first on a new connection, a relative TTL of 0, no ABSTTL.
    let received = silent.received.lock().unwrap().clone();
    assert!(
        received.starts_with(
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*4\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$1\r\n0\r\n"
        ),
        "{}",
        show(&received)
    );
    // A timeout is not retried.
    assert_eq!(silent.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(text(&c.command(&["EXISTS", "k"])), ":1\r\n");

    let fds = open_fds(src.child.id());
    for _ in 0..10 {
        c.command(&migrate_args(closed, &["k", "0", "100"]));
        c.command(&migrate_args(silent.port, &["k", "0", "20"]));
    }
    assert_eq!(open_fds(src.child.id()), fds, "file descriptors leaked");
    assert_eq!(
        info_field(src.port, "stats", "migrate_cached_sockets").as_deref(),
        Some("0")
    );
}

/// A target that reads the request and closes: the failure is retried once on a new
/// connection, then reported, as Valkey does.
#[test]
fn a_closed_connection_is_retried_once() {
    let mut replies = Vec::new();
    for kind in [Kind::Valkey, Kind::Ferrokv] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let a = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                a.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
            }
        });
        let src = start(kind, &[]);
        let mut c = connect(src.port);
        c.command(&["SET", "k", "v"]);
        let reply = text(&c.command(&migrate_args(port, &["k", "0", "2000"])));
        replies.push((reply, accepted.load(Ordering::SeqCst)));
        assert_eq!(text(&c.command(&["EXISTS", "k"])), ":1\r\n");
    }
    assert_eq!(replies[1], replies[0]);
    assert_eq!(replies[0].1, 2, "{replies:?}");
}

/// A server killed when dropped, also when the test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts ferrokv on a given port (to restart a target where its peer's cached
/// connection pointed).
fn ferrokv_on(port: u16, dir: &TempDir) -> Killed {
    let child = Command::new(ferrokv_binary())
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferrokv");
    let child = Killed(child);
    common::eventually(10, "ferrokv listening", || {
        RawClient::connect(port).is_ok_and(|mut c| c.command(&["PING"]) == b"+PONG\r\n")
    });
    child
}

/// One connection per target is kept and reused, and a cached connection the target closed
/// is replaced transparently.
#[test]
fn connections_are_cached_and_a_stale_one_is_replaced() {
    let src = start_ferrokv(&[]);
    let port = free_port();
    let dir = TempDir::new("migrate-target");
    let dst = ferrokv_on(port, &dir);
    let mut c = connect(src.port);
    for i in 0..3 {
        c.command(&["SET", &format!("k{i}"), "v"]);
        let reply = c.command(&migrate_args(port, &[&format!("k{i}"), "0", "5000"]));
        assert_eq!(text(&reply), "+OK\r\n");
    }
    let mut d = connect(port);
    let clients = text(&d.command(&["CLIENT", "LIST"]));
    assert_eq!(
        clients.lines().filter(|l| l.starts_with("id=")).count(),
        2,
        "one connection from MIGRATE: {clients}"
    );
    assert_eq!(
        clients
            .lines()
            .filter(|l| l.contains("cmd=restore"))
            .count(),
        1,
        "{clients}"
    );
    assert_eq!(
        info_field(src.port, "stats", "migrate_cached_sockets").as_deref(),
        Some("1")
    );
    drop(d);
    drop(dst);
    let _dst = ferrokv_on(port, &dir);
    c.command(&["SET", "after", "v"]);
    let reply = c.command(&migrate_args(port, &["after", "0", "5000"]));
    assert_eq!(text(&reply), "+OK\r\n");
    assert_eq!(
        text(&connect(port).command(&["GET", "after"])),
        "$1\r\nv\r\n"
    );
}

// ---- atomicity and the other workers ----

/// Two keys on different shards.
fn keys_on_two_shards() -> (String, String) {
    let a = "moving".to_string();
    let shard = ferrokv_store::Keyspace::shard_of(a.as_bytes());
    let b = (0..)
        .map(|i| format!("other:{i}"))
        .find(|k| ferrokv_store::Keyspace::shard_of(k.as_bytes()) != shard)
        .unwrap();
    (a, b)
}

/// While the target holds back its acknowledgement, the migrating key cannot be read or
/// changed (it is either here or there, as in Valkey, which blocks for the transfer), while
/// other keys are served by the other worker at once. Ordered by the target's own signals,
/// not by timing: a read of another shard that had to wait for the transfer would never
/// finish before the target is released.
#[test]
fn the_keys_stay_locked_for_the_transfer_and_nothing_else_does() {
    let (moving, other) = keys_on_two_shards();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (received_tx, received) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let _ = received_tx.send(());
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        let _ = stream.write_all(b"+OK\r\n+OK\r\n");
        let _ = stream.read(&mut buf);
    });
    let src = start_ferrokv_on_workers(2, &["--enable-debug-command", "yes"]);
    let mut setup = connect(src.port);
    setup.command(&["SET", &moving, "v"]);
    setup.command(&["SET", &other, "w"]);
    // The reader must be on the other worker than the migrating client (DEBUG WORKERS
    // names the caller's): new connections go to the worker with fewer.
    let worker_of = |client: &mut RawClient| {
        let table = text(&client.command(&["DEBUG", "WORKERS"]));
        table
            .split("\r\n")
            .filter(|l| l.starts_with("worker="))
            .position(|l| l.ends_with("current=yes"))
    };
    let mut migrating = connect(src.port);
    let migrating_worker = worker_of(&mut migrating);
    // A connection on the migrating client's worker stays open, so the next one goes to
    // the other.
    let mut same_worker = Vec::new();
    let mut reader = loop {
        let mut c = connect(src.port);
        if worker_of(&mut c) != migrating_worker {
            break c;
        }
        same_worker.push(c);
        assert!(
            same_worker.len() < 8,
            "no connection lands on the other worker"
        );
    };
    migrating.send_raw(&common::encode(&migrate_args(
        port,
        &[&moving, "0", "15000"],
    )));
    received
        .recv_timeout(Duration::from_secs(10))
        .expect("the target got the keys");
    // The transfer is in flight and held: another shard answers anyway.
    assert_eq!(text(&reader.command(&["GET", &other])), "$1\r\nw\r\n");
    // The migrating key: the read waits for the transfer and finds the key gone.
    reader.send_raw(&common::encode(&["GET", moving.as_str()]));
    std::thread::sleep(Duration::from_millis(100));
    release.send(()).expect("release the target");
    assert_eq!(text(&reader.read_reply().expect("GET")), "$-1\r\n");
    assert_eq!(text(&migrating.read_reply().expect("reply")), "+OK\r\n");
}

// ---- what the source tells others ----

/// The AOF (and so replicas) sees `DEL` of the keys the target acknowledged, even with
/// `lazyfree-lazy-server-del yes`, nothing for COPY; subscribers see `del` events.
#[test]
fn propagation_and_notifications_match_valkey() {
    let args = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--lazyfree-lazy-server-del",
        "yes",
        "--notify-keyspace-events",
        "KEA",
    ];
    let mut results = Vec::new();
    for kind in [Kind::Valkey, Kind::Ferrokv] {
        let dst = start_ferrokv(&[]);
        let src = start(kind, &args);
        let mut events = connect(src.port);
        events.command(&["PSUBSCRIBE", "__keyevent@0__:*"]);
        events.command(&["SUBSCRIBE", "done"]);
        let mut c = connect(src.port);
        connect(dst.port).command(&["SET", "b", "taken"]);
        c.command(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
        let mut replies = vec![
            text(&c.command(&migrate_args(
                dst.port,
                &["", "0", "5000", "KEYS", "a", "b", "c", "x"],
            ))),
            text(&c.command(&migrate_args(dst.port, &["d", "0", "5000", "COPY"]))),
        ];
        c.command(&["PUBLISH", "done", "1"]);
        let mut seen = Vec::new();
        loop {
            let message = text(&events.read_reply().expect("event"));
            if message.contains("done") {
                break;
            }
            seen.push(message);
        }
        replies.push(seen.join(""));
        let commands = incr_commands(&src);
        let after_mset: Vec<Vec<String>> = commands
            .iter()
            .skip_while(|c| !c[0].eq_ignore_ascii_case("mset"))
            .skip(1)
            .cloned()
            .collect();
        results.push((replies, after_mset));
    }
    assert_eq!(results[1], results[0]);
    assert_eq!(results[0].1, vec![vec!["DEL", "a", "c"]]);
}

/// The slow log and MONITOR show MIGRATE's AUTH/AUTH2 credentials as `(redacted)`.
#[test]
fn credentials_are_redacted_as_in_valkey() {
    let dst = start_ferrokv(&[]);
    let mut shown = Vec::new();
    for kind in [Kind::Valkey, Kind::Ferrokv] {
        let src = start(kind, &["--slowlog-log-slower-than", "0"]);
        let mut monitor = connect(src.port);
        monitor.command(&["MONITOR"]);
        let mut c = connect(src.port);
        c.command(&["SLOWLOG", "RESET"]);
        c.command(&migrate_args(
            dst.port,
            &["k", "0", "1000", "AUTH2", "user", "secretpw", "COPY"],
        ));
        c.command(&migrate_args(
            dst.port,
            &["", "0", "1000", "AUTH", "secretpw", "KEYS", "k"],
        ));
        let mut lines = Vec::new();
        while lines.len() < 2 {
            let line = text(&monitor.read_reply().expect("monitor line"));
            if let Some((_, args)) = line.split_once(']')
                && args.to_ascii_lowercase().contains("\"migrate\"")
            {
                lines.push(args.to_string());
            }
        }
        let (_, entries) = split_elements(&c.command(&["SLOWLOG", "GET", "2"])).expect("slowlog");
        let mut args: Vec<String> = entries
            .iter()
            .map(|entry| {
                let (_, fields) = split_elements(entry).expect("entry");
                text(&fields[3])
            })
            .collect();
        args.extend(lines);
        assert!(!args.concat().contains("secretpw"), "{args:?}");
        shown.push(args);
    }
    assert_eq!(shown[1], shown[0]);
}
