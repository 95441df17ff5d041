//! Server introspection beyond byte-for-byte replies: INFO's field names against the
//! oracle's, and SHUTDOWN and DEBUG access, which case files cannot exercise.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, start_ferrokv, start_valkey};

/// Fields ferrokv adds to Valkey's.
const EXTRA: &[&str] = &["server/ferrokv_version", "stats/ferrokv_script_restarts"];
/// Fields of features ferrokv does not have.
const MISSING: &[&str] = &[];
/// Sections whose fields depend on what ran (one line per command, error code or database).
const DYNAMIC: &[&str] = &["commandstats", "errorstats", "latencystats", "keyspace"];

/// (section, field names in order) from an INFO reply.
fn sections(reply: &[u8]) -> Vec<(String, Vec<String>)> {
    let text = String::from_utf8_lossy(reply);
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().skip(1) {
        let line = line.trim_end();
        if let Some(title) = line.strip_prefix("# ") {
            out.push((title.to_ascii_lowercase(), Vec::new()));
        } else if let Some((name, _)) = line.split_once(':')
            && let Some(last) = out.last_mut()
        {
            last.1.push(name.to_string());
        }
    }
    out
}

#[test]
fn info_everything_has_the_oracles_sections_and_fields_in_order() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let ours = sections(
        &RawClient::connect(ferrokv.port)
            .expect("ferrokv")
            .command(&["INFO", "everything"]),
    );
    let theirs = sections(
        &RawClient::connect(valkey.port)
            .expect("valkey")
            .command(&["INFO", "everything"]),
    );
    let titles = |s: &[(String, Vec<String>)]| s.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(titles(&ours), titles(&theirs), "sections differ");
    let mut problems = Vec::new();
    for ((section, our_fields), (_, their_fields)) in ours.iter().zip(&theirs) {
        if DYNAMIC.contains(&section.as_str()) {
            continue;
        }
        let qualified = |f: &String| format!("{section}/{f}");
        let ours_expected: Vec<&String> = our_fields
            .iter()
            .filter(|f| !EXTRA.contains(&qualified(f).as_str()))
            .collect();
        let theirs_expected: Vec<&String> = their_fields
            .iter()
            .filter(|f| !MISSING.contains(&qualified(f).as_str()))
            .collect();
        for f in &ours_expected {
            if !theirs_expected.contains(f) {
                problems.push(format!("extra field {section}/{f}"));
            }
        }
        for f in &theirs_expected {
            if !ours_expected.contains(f) {
                problems.push(format!("missing field {section}/{f}"));
            }
        }
        if problems.is_empty() && ours_expected != theirs_expected {
            problems.push(format!(
                "order differs in {section}:\n   ferrokv: {ours_expected:?}\n    valkey: {theirs_expected:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Lua shows as Valkey's built-in module, with the same line (MODULE LIST agrees).
    let module_line = |port: u16| {
        let info = RawClient::connect(port)
            .expect("connect")
            .command(&["INFO", "modules"]);
        String::from_utf8_lossy(&info)
            .lines()
            .find(|l| l.starts_with("module:"))
            .map(str::to_string)
    };
    assert!(module_line(valkey.port).is_some());
    assert_eq!(module_line(ferrokv.port), module_line(valkey.port));
}

#[test]
fn info_default_and_named_sections() {
    let ferrokv = start_ferrokv(&[]);
    let mut c = RawClient::connect(ferrokv.port).expect("ferrokv");
    let titles = |reply: Vec<u8>| {
        sections(&reply)
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        titles(c.command(&["INFO"])),
        [
            "server",
            "clients",
            "memory",
            "persistence",
            "stats",
            "replication",
            "cpu",
            "modules",
            "errorstats",
            "cluster",
            "keyspace"
        ]
    );
    assert_eq!(
        titles(c.command(&["INFO", "Keyspace", "server"])),
        ["server", "keyspace"]
    );
    assert_eq!(c.command(&["INFO", "nosuch"]), b"$0\r\n\r\n");
    c.command(&["SET", "k", "v"]);
    let keyspace = String::from_utf8(c.command(&["INFO", "keyspace"])).expect("utf8");
    assert!(
        keyspace.contains("db0:keys=1,expires=0,avg_ttl=0"),
        "{keyspace}"
    );
    let stats = String::from_utf8(c.command(&["INFO", "commandstats"])).expect("utf8");
    assert!(stats.contains("cmdstat_set:calls=1,usec="), "{stats}");
}

#[test]
fn shutdown_stops_the_server_without_a_reply() {
    let mut ferrokv = start_ferrokv(&[]);
    let mut c = RawClient::connect(ferrokv.port).expect("ferrokv");
    assert_eq!(
        c.command(&["SHUTDOWN", "ABORT"]),
        b"-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        c.command(&["SHUTDOWN", "SAVE", "NOSAVE"]),
        b"-ERR syntax error\r\n"
    );
    c.send_raw(&common::encode(&["SHUTDOWN", "NOSAVE"]));
    assert!(
        c.read_reply().is_err(),
        "SHUTDOWN must close the connection without a reply"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = ferrokv.child.try_wait() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server still running after SHUTDOWN"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn debug_is_refused_unless_enabled_with_the_oracles_error() {
    for (setting, allowed) in [("no", false), ("local", true), ("yes", true)] {
        let ferrokv = start_ferrokv(&["--enable-debug-command", setting]);
        let valkey = start_valkey(&["--enable-debug-command", setting]);
        let ours = RawClient::connect(ferrokv.port)
            .expect("ferrokv")
            .command(&["DEBUG", "SLEEP", "0"]);
        let theirs = RawClient::connect(valkey.port)
            .expect("valkey")
            .command(&["DEBUG", "SLEEP", "0"]);
        assert_eq!(ours, theirs, "enable-debug-command {setting}");
        assert_eq!(
            ours == b"+OK\r\n",
            allowed,
            "enable-debug-command {setting}"
        );
    }
}

/// HELLO names the server's `availability-zone` when one is set, last, in both protocols;
/// the connection id is the only field that may differ from the oracle's reply.
#[test]
fn hello_names_the_availability_zone_once_set() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    for port in [ferrokv.port, valkey.port] {
        let mut c = RawClient::connect(port).expect("connects");
        assert_eq!(
            c.command(&["CONFIG", "SET", "availability-zone", "zone-a"]),
            b"+OK\r\n"
        );
    }
    let hello = |port: u16, protocol: &str| {
        let mut c = RawClient::connect(port).expect("connects");
        let id = String::from_utf8(c.command(&["CLIENT", "ID"])).expect("text");
        let reply = String::from_utf8(c.command(&["HELLO", protocol])).expect("text");
        // `:<id>` is the only varying element.
        reply.replace(&format!("\r\n{}", id.trim_end()), "\r\n:ID")
    };
    for protocol in ["2", "3"] {
        let ours = hello(ferrokv.port, protocol);
        assert_eq!(ours, hello(valkey.port, protocol), "HELLO {protocol}");
        assert!(ours.contains("availability_zone\r\n$6\r\nzone-a"), "{ours}");
    }
}

/// `extended-redis-compatibility yes` makes HELLO answer as Redis 7.2.4 and INFO name the
/// mode `redis_mode`, as Valkey 9 does; `no` brings Valkey's answers back.
#[test]
fn extended_redis_compatibility_answers_as_redis() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let answers = |port: u16| {
        let mut c = RawClient::connect(port).expect("connects");
        let mut out = Vec::new();
        for setting in ["yes", "no"] {
            c.command(&["CONFIG", "SET", "extended-redis-compatibility", setting]);
            let id = String::from_utf8(c.command(&["CLIENT", "ID"])).expect("text");
            let hello = String::from_utf8(c.command(&["HELLO", "3"])).expect("text");
            let id_field = format!("$2\r\nid\r\n{}", id.trim_end());
            out.push(hello.replace(&id_field, "$2\r\nid\r\n:ID"));
            c.command(&["HELLO", "2"]);
            let info = String::from_utf8(c.command(&["INFO", "server"])).expect("text");
            let modes: Vec<&str> = info
                .lines()
                .filter(|l| l.starts_with("redis_mode:") || l.starts_with("server_mode:"))
                .collect();
            out.push(modes.join(","));
        }
        out
    };
    let ours = answers(ferrokv.port);
    assert_eq!(ours, answers(valkey.port));
    assert!(ours[0].contains("server\r\n$5\r\nredis"), "{ours:?}");
    assert_eq!(ours[1], "redis_mode:standalone");
}

/// `pidfile` holds the server's pid while it runs and is gone after SHUTDOWN; with
/// `always-show-logo yes` the log names the pid (` PID: n`) before `Server initialized`,
/// where Valkey's test suite and supervisors look for it.
#[test]
fn pidfile_and_banner_name_the_process() {
    let dir = common::TempDir::new("pidfile");
    let pidfile = dir.0.join("ferrokv.pid");
    let log = dir.0.join("ferrokv.log");
    let mut server = common::start_ferrokv_in(
        &dir.0,
        &[
            "--pidfile",
            pidfile.to_str().expect("utf-8 path"),
            "--always-show-logo",
            "yes",
            "--logfile",
            log.to_str().expect("utf-8 path"),
        ],
    )
    .expect("starts");
    let pid = server.child.id();
    let written = std::fs::read_to_string(&pidfile).expect("the pid file exists");
    assert_eq!(written, format!("{pid}\n"));
    let text = std::fs::read_to_string(&log).expect("the log exists");
    let banner = text
        .find(&format!(" PID: {pid}\n"))
        .expect("the banner names the pid");
    let initialized = text.find("Server initialized").expect("initialized");
    assert!(banner < initialized, "{text}");

    RawClient::connect(server.port)
        .expect("connects")
        .send_raw(b"SHUTDOWN NOSAVE\r\n");
    let status = server.child.wait().expect("exits");
    assert!(status.success(), "{status}");
    assert!(!pidfile.exists(), "the pid file is removed on shutdown");
}

/// Runs `binary` with `args` until it exits by itself (at most 10 s); its log and stdout.
fn run_until_exit(binary: &std::path::Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new(binary)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            return (
                out.status,
                String::from_utf8_lossy(&out.stdout).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{} did not exit", binary.display());
}

/// A port already taken stops the server with Valkey's last line, which supervisors and
/// Valkey's test suite read as "try another port" (the suite waits two minutes otherwise).
#[test]
fn a_busy_port_stops_the_server_with_valkeys_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = taken.local_addr().expect("address").port().to_string();
    for binary in [common::ferrokv_binary(), common::valkey_binary()] {
        let args = ["--port", &port, "--bind", "127.0.0.1", "--save", ""];
        let (status, log) = run_until_exit(&binary, &args);
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(
            log.contains(&format!(
                "# Failed listening on port {port} (tcp), aborting."
            )),
            "{}: {log}",
            binary.display()
        );
    }
}

/// DEBUG PANIC ends the process, as in Valkey, after a bug report in the log; any panic is
/// reported there the same way.
#[test]
fn debug_panic_stops_the_server_with_a_bug_report_in_the_log() {
    for (name, binary) in [
        ("FERROKV", common::ferrokv_binary()),
        ("VALKEY", common::valkey_binary()),
    ] {
        let dir = common::TempDir::new("debug-panic");
        let log = dir.0.join("server.log");
        let port = common::free_port().to_string();
        let mut child = std::process::Command::new(&binary)
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--enable-debug-command", "yes", "--logfile"])
            .arg(&log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawns");
        let port: u16 = port.parse().expect("a port");
        assert!(
            common::wait_for(10, || RawClient::connect(port).is_ok()),
            "{name} starts"
        );
        let mut client = RawClient::connect(port).expect("connects");
        client.send_raw(b"DEBUG PANIC\r\n");
        let ended = common::wait_for(10, || matches!(child.try_wait(), Ok(Some(_))));
        if !ended {
            let _ = child.kill();
        }
        let _ = child.wait();
        assert!(ended, "{name} goes on after DEBUG PANIC");
        let text = std::fs::read_to_string(&log).expect("the log exists");
        assert!(
            text.contains(&format!("=== {name} BUG REPORT START")),
            "{text}"
        );
        assert!(text.contains("DEBUG PANIC called at Unix time"), "{text}");
    }
}
