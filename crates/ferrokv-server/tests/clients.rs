//! Client compatibility: a Node application on ioredis and a Python one on redis-py must not
//! be able to tell ferrokv from Valkey. Each client library drives a scripted session
//! (tests/clients/*/session.*) that prints one JSON line per step, the value or error the
//! library hands to the application; the session runs against a fresh oracle valkey-server
//! and a fresh ferrokv, and the two transcripts must be equal line by line.
//!
//! Missing node, ioredis or redis-py fail these tests (with how to install them) instead of
//! skipping them: a skipped compatibility test reads as a passed one.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Steps whose replies differ because ferrokv lacks something Valkey has: step name and
/// what is missing. Listed so the rest of the session still guards everything else; each
/// entry must still differ (the test fails once it matches, so the entry gets removed).
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// Far beyond a session's few seconds; the scripts stop themselves after 60 s, this only
/// covers an interpreter that hangs before its own timer is armed.
const SESSION_LIMIT: Duration = Duration::from_secs(120);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

#[test]
fn ioredis_session_matches_valkey() {
    let dir = clients_dir().join("ioredis");
    require_ioredis(&dir);
    compare_sessions("ioredis", |port| {
        let mut cmd = Command::new("node");
        cmd.arg("session.js")
            .arg(port.to_string())
            .current_dir(&dir);
        cmd
    });
}

#[test]
fn redis_py_resp2_session_matches_valkey() {
    redis_py_session("2");
}

#[test]
fn redis_py_resp3_session_matches_valkey() {
    redis_py_session("3");
}

fn redis_py_session(protocol: &str) {
    require_redis_py();
    let dir = clients_dir().join("redis_py");
    compare_sessions(&format!("redis-py RESP{protocol}"), |port| {
        let mut cmd = Command::new("python3");
        cmd.arg("session.py")
            .arg(port.to_string())
            .arg(protocol)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&dir);
        cmd
    });
}

/// node and the ioredis version package.json pins, installed under `dir`.
fn require_ioredis(dir: &Path) {
    let install = format!(
        "run .ci/run, or: apt-get install nodejs npm && npm ci --prefix {}",
        dir.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is needed for the ioredis compatibility test: {install}"
    );
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_default();
    let wanted = json_string_field(&read(dir.join("package.json")), "ioredis")
        .expect("tests/clients/ioredis/package.json pins ioredis");
    let installed = json_string_field(
        &read(dir.join("node_modules/ioredis/package.json")),
        "version",
    );
    assert!(
        installed.as_deref() == Some(wanted.as_str()),
        "ioredis {wanted} is not installed (found {installed:?}): {install}"
    );
}

fn require_redis_py() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import redis; assert int(redis.__version__.split('.')[0]) >= 5, redis.__version__",
        ])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "redis-py 5 or later is needed for the redis-py compatibility tests: \
         run .ci/run, or: python3 -m pip install 'redis>=5'"
    );
}

/// The string value of the first `"key": "value"` in a JSON text (enough for package.json
/// files, without a JSON dependency).
fn json_string_field(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let value = rest.strip_prefix('"')?;
    Some(value[..value.find('"')?].to_string())
}

/// Runs the session against a fresh valkey-server and a fresh ferrokv and compares.
fn compare_sessions(client: &str, session: impl Fn(u16) -> Command) {
    let valkey = {
        let server = common::start_valkey(&[]);
        run_session(client, "valkey", session(server.port))
    };
    let ferrokv = {
        let server = common::start_ferrokv(&[]);
        run_session(client, "ferrokv", session(server.port))
    };
    check_oracle_transcript(client, &valkey);
    if let Err(report) = compare_transcripts(&valkey, &ferrokv) {
        panic!("{client}: the transcripts on valkey-server and on ferrokv differ\n{report}");
    }
}

/// The session's stdout lines; panics with its output when it fails or hangs.
fn run_session(client: &str, server: &str, mut cmd: Command) -> Vec<String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{client} session: cannot start {cmd:?}: {e}"));
    // Drained on threads: a session's transcript is bigger than a pipe's buffer.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the session") {
            break status;
        }
        if started.elapsed() > SESSION_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{client} session against {server} still running after {SESSION_LIMIT:?}\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    assert!(
        status.success(),
        "{client} session against {server} failed ({status}) after {:.1?}\n--- stdout\n{out}\n--- stderr\n{err}",
        started.elapsed()
    );
    out.lines().map(str::to_string).collect()
}

/// Guards against two equally broken runs comparing equal: the oracle's own run must have
/// gone through the whole session without the waits that mean a slow or stuck machine.
fn check_oracle_transcript(client: &str, valkey: &[String]) {
    assert!(
        valkey.len() >= 100,
        "{client}: the session printed only {} lines against valkey-server:\n{}",
        valkey.len(),
        valkey.join("\n")
    );
    if let Some(line) = valkey
        .iter()
        .find(|l| l.contains("timed out") || l.contains("no pub/sub message"))
    {
        panic!("{client}: the session timed out against valkey-server itself:\n{line}");
    }
}

/// The step name of a transcript line (`{"step": "NAME", ...}`; names have no quotes).
fn step_name(line: &str) -> &str {
    line.split('"').nth(3).unwrap_or("")
}

fn known_gap(gaps: &[(&'static str, &'static str)], step: &str) -> Option<&'static str> {
    gaps.iter()
        .find(|(name, _)| *name == step)
        .map(|(_, why)| *why)
}

/// `Ok` when the transcripts are equal but for the known gaps; otherwise a report that
/// shows the first differing lines side by side, with the steps before them for context.
fn compare_transcripts(valkey: &[String], ferrokv: &[String]) -> Result<(), String> {
    compare_with_gaps(valkey, ferrokv, KNOWN_GAPS)
}

fn compare_with_gaps(
    valkey: &[String],
    ferrokv: &[String],
    gaps: &[(&'static str, &'static str)],
) -> Result<(), String> {
    let mut differing = Vec::new();
    let mut gaps_seen = Vec::new();
    for i in 0..valkey.len().max(ferrokv.len()) {
        let (v, f) = (valkey.get(i), ferrokv.get(i));
        if v == f {
            continue;
        }
        let step = v.map_or("", |l| step_name(l));
        if let Some(why) = known_gap(gaps, step)
            && f.is_some_and(|f| step_name(f) == step)
        {
            gaps_seen.push(step);
            eprintln!("known gap, step {step:?}: {why}");
            continue;
        }
        differing.push(i);
    }
    let closed: Vec<_> = gaps
        .iter()
        .filter(|(name, _)| {
            !gaps_seen.contains(name) && valkey.iter().any(|l| step_name(l) == *name)
        })
        .collect();
    if differing.is_empty() && closed.is_empty() {
        return Ok(());
    }
    let mut report = String::new();
    for (name, _) in &closed {
        report +=
            &format!("step {name:?} now matches: remove it from KNOWN_GAPS in tests/clients.rs\n");
    }
    if let Some(&first) = differing.first() {
        report += &format!(
            "{} differing line(s) of {} (valkey) / {} (ferrokv); the first at line {}:\n",
            differing.len(),
            valkey.len(),
            ferrokv.len(),
            first + 1
        );
        for line in &valkey[first.saturating_sub(3)..first.min(valkey.len())] {
            report += &format!("    same     {}\n", clip(line, 0));
        }
        let (v, f) = (
            valkey.get(first).map_or("<no line>", String::as_str),
            ferrokv.get(first).map_or("<no line>", String::as_str),
        );
        let at = v
            .bytes()
            .zip(f.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(v.len().min(f.len()));
        report += &format!("  - valkey   {}\n", clip(v, at));
        report += &format!("  + ferrokv  {}\n", clip(f, at));
        for &i in differing.iter().skip(1).take(9) {
            report += &format!(
                "  also line {}: step {:?}\n",
                i + 1,
                step_name(valkey.get(i).or(ferrokv.get(i)).map_or("", String::as_str))
            );
        }
    }
    Err(report)
}

/// A long line cut to a window around byte `at` (where the two lines part), so that a
/// 1 MB or 256-byte hex value does not bury the difference.
fn clip(line: &str, at: usize) -> String {
    const WINDOW: usize = 400;
    if line.len() <= 2 * WINDOW {
        return line.to_string();
    }
    let floor = |mut i: usize| {
        while !line.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(at.saturating_sub(WINDOW).min(line.len()));
    let end = floor((at + WINDOW).min(line.len()));
    format!(
        "{}{}{}",
        if start > 0 { "…" } else { "" },
        &line[start..end],
        if end < line.len() { "…" } else { "" }
    )
}

/// The comparison itself, without servers: a difference fails with both lines shown, a
/// known gap passes only while it still differs.
#[test]
fn transcript_comparison() {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let valkey = lines(&[
        r#"{"step": "ping", "ok": true}"#,
        r#"{"step": "sort", "ok": ["1", "2"]}"#,
        r#"{"step": "get", "ok": "v"}"#,
    ]);
    let gap = lines(&[
        r#"{"step": "ping", "ok": true}"#,
        r#"{"step": "sort", "err": "ResponseError: unknown command 'SORT'"}"#,
        r#"{"step": "get", "ok": "v"}"#,
    ]);
    let gaps = &[("sort", "SORT is not implemented")];
    let compare = |v: &[String], f: &[String]| compare_with_gaps(v, f, gaps);
    assert_eq!(compare(&valkey, &gap), Ok(()));
    assert!(compare_transcripts(&valkey, &gap).is_err());

    let closed = compare(&valkey, &valkey).unwrap_err();
    assert!(closed.contains("\"sort\" now matches"), "{closed}");

    let mut wrong = gap.clone();
    wrong[2] = r#"{"step": "get", "ok": "w"}"#.to_string();
    let report = compare(&valkey, &wrong).unwrap_err();
    assert!(report.contains("the first at line 3"), "{report}");
    assert!(
        report.contains(r#"- valkey   {"step": "get", "ok": "v"}"#),
        "{report}"
    );
    assert!(
        report.contains(r#"+ ferrokv  {"step": "get", "ok": "w"}"#),
        "{report}"
    );

    let short = compare(&valkey, &gap[..2]).unwrap_err();
    assert!(short.contains("+ ferrokv  <no line>"), "{short}");
    assert_eq!(step_name(r#"{"step":"a b","ok":1}"#), "a b");
}
