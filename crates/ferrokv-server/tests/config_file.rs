//! Start-up from config files: Valkey's syntax, fatal errors, CONFIG REWRITE round trips and
//! the shipped ferrokv.conf.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, TempDir, ferrokv_binary, free_port, valkey_binary};

/// Starts ferrokv with `file` as its config file, on a free port bound to loopback.
fn start_with_file(file: &Path, dir: TempDir) -> ServerProcess {
    start_binary_with_file(&ferrokv_binary(), "ferrokv", file, dir)
}

/// Starts `binary` (ferrokv or the oracle) with `file` as its config file.
fn start_binary_with_file(
    binary: &Path,
    name: &'static str,
    file: &Path,
    dir: TempDir,
) -> ServerProcess {
    let port = free_port();
    let child = Command::new(binary)
        .arg(file)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferrokv-server");
    let mut server = ServerProcess {
        child,
        port,
        name,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{name} exited early: {status}");
        }
        if let Ok(mut c) = RawClient::connect(server.port)
            && c.command(&["PING"]).starts_with(b"+PONG")
        {
            return server;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not start");
}

/// CONFIG GET of one directive, as its value.
fn config_get(client: &mut RawClient, name: &str) -> String {
    let reply = client.command(&["CONFIG", "GET", name]);
    let (_, items) = common::split_elements(&reply).expect("CONFIG GET replies an array");
    assert_eq!(items.len(), 2, "{name}: {}", common::show(&reply));
    bulk_text(&items[1])
}

fn bulk_text(item: &[u8]) -> String {
    let text = String::from_utf8_lossy(item);
    let body = text.split_once("\r\n").map(|(_, b)| b).unwrap_or("");
    body.strip_suffix("\r\n").unwrap_or(body).to_string()
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).expect("write config file");
    path.to_path_buf()
}

#[test]
fn file_with_quotes_include_and_units_loads() {
    let dir = TempDir::new("cfg-load");
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write(
        &dir.0.join("extra.conf"),
        "maxmemory-policy allkeys-lru\ntimeout 7\n",
    );
    let file = write(
        &dir.0.join("ferrokv.conf"),
        &format!(
            "# a comment\n\n   maxmemory 1GB\nhz \"25\"\ninclude {}\n\
             notify-keyspace-events 'KEA'\nsave 100 1\nsave 200 2\n\
             proc-title-template \"{{title}} {{port}}\"\nslave-read-only no\n\
             client-output-buffer-limit pubsub 1mb 2MB 3\r\ndir {}\n",
            dir.0.join("extra.conf").display(),
            data.display()
        ),
    );
    let server = start_with_file(&file, dir);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(config_get(&mut c, "maxmemory"), (1u64 << 30).to_string());
    assert_eq!(config_get(&mut c, "hz"), "25");
    assert_eq!(config_get(&mut c, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(config_get(&mut c, "timeout"), "7");
    assert_eq!(config_get(&mut c, "notify-keyspace-events"), "AKE");
    assert_eq!(config_get(&mut c, "save"), "100 1 200 2");
    assert_eq!(config_get(&mut c, "proc-title-template"), "{title} {port}");
    assert_eq!(config_get(&mut c, "replica-read-only"), "no");
    assert_eq!(
        config_get(&mut c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 3"
    );
    let canonical = std::fs::canonicalize(server.dir.0.join("data")).unwrap();
    assert_eq!(config_get(&mut c, "dir"), canonical.display().to_string());
}

#[test]
fn unknown_directive_stops_start_up_naming_its_line() {
    let dir = TempDir::new("cfg-bad");
    let file = write(
        &dir.0.join("bad.conf"),
        "# comment\nport 0\n  nosuch-directive 1  \nhz 5\n",
    );
    let out = Command::new(ferrokv_binary())
        .arg(&file)
        .current_dir(&dir.0)
        .output()
        .expect("run ferrokv-server");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("*** FATAL CONFIG FILE ERROR"), "{stderr}");
    assert!(
        stderr.contains(
            "Reading the configuration file, at line 3\n>>> 'nosuch-directive 1'\nBad directive or wrong number of arguments"
        ),
        "{stderr}"
    );

    let out = Command::new(ferrokv_binary())
        .args(["--port", "0", "--hz", "abc"])
        .current_dir(&dir.0)
        .output()
        .expect("run ferrokv-server");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("at line 3\n>>> 'hz \"abc\"'\nargument couldn't be parsed into an integer"),
        "{stderr}"
    );
}

#[test]
fn rewrite_keeps_comments_and_order_and_restarts_the_same() {
    let dir = TempDir::new("cfg-rewrite");
    let original = "# top comment\n\n# the cron\nhz 15\n# memory\nmaxmemory 1mb\nHZ 20\nslave-read-only no\n# end\n";
    let file = write(&dir.0.join("rw.conf"), original);
    let server = start_with_file(&file, dir);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(config_get(&mut c, "hz"), "20");
    for (name, value) in [
        ("hz", "33"),
        ("maxclients", "77"),
        ("maxmemory", "2mb"),
        ("notify-keyspace-events", "Ex"),
    ] {
        assert_eq!(c.command(&["CONFIG", "SET", name, value]), b"+OK\r\n");
    }
    assert_eq!(c.command(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with(
            "# top comment\n\n# the cron\nhz 33\n# memory\nmaxmemory 2mb\n\nreplica-read-only no\n# end\n\n# Generated by CONFIG REWRITE\n"
        ),
        "{text}"
    );
    assert!(text.contains("\nmaxclients 77\n"), "{text}");
    assert!(text.contains("\nnotify-keyspace-events \"xE\"\n"), "{text}");
    let before: Vec<String> = ["hz", "maxclients", "maxmemory", "notify-keyspace-events"]
        .iter()
        .map(|n| config_get(&mut c, n))
        .collect();
    drop(c);
    let dir = std::mem::replace(&mut { server }.dir, TempDir::new("cfg-rewrite-gone"));

    // The rewritten file starts a server with the same values.
    let again = start_with_file(&file, dir);
    let mut c = RawClient::connect(again.port).unwrap();
    let after: Vec<String> = ["hz", "maxclients", "maxmemory", "notify-keyspace-events"]
        .iter()
        .map(|n| config_get(&mut c, n))
        .collect();
    assert_eq!(before, after);
    // Rewriting an unchanged configuration leaves the file as it is.
    assert_eq!(c.command(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let port_line = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("port "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        port_line(&std::fs::read_to_string(&file).unwrap()),
        port_line(&text)
    );
}

/// Every directive, name → value, as CONFIG GET * gives them (but the port, which each
/// start chooses).
fn all_config(c: &mut RawClient) -> std::collections::BTreeMap<String, String> {
    let reply = c.command(&["CONFIG", "GET", "*"]);
    let (_, items) = common::split_elements(&reply).expect("CONFIG GET replies an array");
    items
        .chunks(2)
        .map(|pair| (bulk_text(&pair[0]), bulk_text(&pair[1])))
        .filter(|(name, _)| name != "port")
        .collect()
}

/// DEBUG CONFIG-REWRITE-FORCE-ALL writes every directive, defaults included, and a server
/// started from that file has every value the first one had (Valkey's "CONFIG REWRITE
/// sanity" test): no directive is written in a form the loader reads back differently.
#[test]
fn rewrite_of_every_directive_restarts_with_every_value() {
    let dir = TempDir::new("cfg-rewrite-all");
    let file = write(&dir.0.join("all.conf"), "enable-debug-command yes\n");
    let server = start_with_file(&file, dir);
    let mut c = RawClient::connect(server.port).unwrap();
    for (name, value) in [
        ("hz", "33"),
        ("maxmemory", "9223372036854775808"),
        ("save", "100 10 5 1000"),
        (
            "client-output-buffer-limit",
            "normal 1mb 2mb 3 pubsub 0 0 0",
        ),
        ("notify-keyspace-events", "Ex"),
        ("latency-tracking-info-percentiles", ""),
        ("proc-title-template", "{title} --x \"y\""),
        ("maxmemory-clients", "10%"),
    ] {
        assert_eq!(
            c.command(&["CONFIG", "SET", name, value]),
            b"+OK\r\n",
            "{name}"
        );
    }
    let before = all_config(&mut c);
    assert!(before.len() > 150, "{}", before.len());
    assert_eq!(
        c.command(&["DEBUG", "CONFIG-REWRITE-FORCE-ALL"]),
        b"+OK\r\n"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    // Defaults are written too.
    assert!(text.contains("\ndatabases 16\n"), "{text}");
    drop(c);
    let dir = std::mem::replace(&mut { server }.dir, TempDir::new("cfg-rewrite-all-gone"));
    let again = start_with_file(&file, dir);
    let mut c = RawClient::connect(again.port).unwrap();
    let after = all_config(&mut c);
    let changed: Vec<String> = before
        .iter()
        .filter(|(name, value)| after.get(*name) != Some(*value))
        .map(|(name, value)| format!("{name}: {value:?} -> {:?}", after.get(name)))
        .collect();
    assert!(changed.is_empty(), "{changed:#?}\n{text}");
}

#[test]
fn shipped_conf_loads_and_equals_the_defaults() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ferrokv.conf");
    let with_file = start_with_file(&shipped, TempDir::new("cfg-shipped"));
    let without = common::start_ferrokv(&[]);
    let all = |port: u16| {
        let mut c = RawClient::connect(port).unwrap();
        let reply = c.command(&["CONFIG", "GET", "*"]);
        let (_, items) = common::split_elements(&reply).unwrap();
        items
            .chunks(2)
            .map(|kv| (bulk_text(&kv[0]), bulk_text(&kv[1])))
            .filter(|(k, _)| k != "port" && k != "dir")
            .collect::<Vec<_>>()
    };
    let (a, b) = (all(with_file.port), all(without.port));
    assert!(a.len() > 200, "{}", a.len());
    assert_eq!(a, b);
}

#[test]
fn pending_directives_are_logged_at_start_up() {
    let dir = TempDir::new("cfg-pending");
    let log = dir.0.join("server.log");
    let file = write(
        &dir.0.join("p.conf"),
        &format!(
            "logfile {}\nactivedefrag yes\ncluster-slave-no-failover yes\nhz 20\n",
            log.display()
        ),
    );
    let server = start_with_file(&file, dir);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("directive activedefrag is accepted but not implemented yet"),
        "{text}"
    );
    assert!(
        text.contains("directive cluster-replica-no-failover is accepted but not implemented yet"),
        "{text}"
    );
    assert!(!text.contains("directive hz"), "{text}");
    drop(server);
}

#[test]
fn rename_command_renames_and_disables_as_valkey() {
    let dir = TempDir::new("cfg-rename");
    let file = write(
        &dir.0.join("r.conf"),
        "rename-command GET fetch\nrename-command flushall \"\"\nrename-command CONFIG cfg\n",
    );
    let server = start_with_file(&file, dir);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(
        c.command(&["GET", "a"]),
        b"-ERR unknown command 'GET', with args beginning with: 'a' \r\n"
    );
    assert_eq!(c.command(&["fetch", "a"]), b"$-1\r\n");
    // Arity errors and COMMAND INFO keep the original name; ACL rules use it too.
    assert_eq!(
        c.command(&["FETCH", "a", "b"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        c.command(&["FLUSHALL"]),
        b"-ERR unknown command 'FLUSHALL', with args beginning with: \r\n"
    );
    assert!(
        c.command(&["COMMAND", "INFO", "fetch"])
            .starts_with(b"*1\r\n*10\r\n$3\r\nget\r\n")
    );
    assert_eq!(
        c.command(&["COMMAND", "INFO", "get", "flushall"]),
        b"*2\r\n$-1\r\n$-1\r\n"
    );
    assert_eq!(c.command(&["ACL", "SETUSER", "u", "+get"]), b"+OK\r\n");
    assert!(
        c.command(&["ACL", "SETUSER", "u", "+fetch"])
            .starts_with(b"-ERR")
    );
    assert_eq!(
        c.command(&["COMMAND", "GETKEYS", "get", "k"]),
        b"-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        c.command(&["COMMAND", "GETKEYS", "fetch", "k"]),
        b"*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(config_get_via(&mut c, "cfg"), "0");
    assert_eq!(
        c.command(&["CFG", "NOPE"]),
        b"-ERR unknown subcommand 'NOPE'. Try CFG HELP.\r\n"
    );
    // Disabled commands leave COMMAND's listings; renamed ones stay under their own name.
    let list = String::from_utf8_lossy(&c.command(&["COMMAND", "LIST"])).to_string();
    assert!(list.contains("\r\nget\r\n") && !list.contains("\r\nflushall\r\n"));
    assert!(!list.contains("fetch"));
    drop(server);

    for (text, reason) in [
        (
            "rename-command nosuch x\n",
            "No such command in rename-command",
        ),
        (
            "rename-command get set\n",
            "Target command name already exists",
        ),
    ] {
        let dir = TempDir::new("cfg-rename-bad");
        let file = write(&dir.0.join("bad.conf"), &format!("port 0\n{text}"));
        let out = Command::new(ferrokv_binary())
            .arg(&file)
            .current_dir(&dir.0)
            .output()
            .expect("run ferrokv-server");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("*** FATAL CONFIG FILE ERROR"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
    }
}

/// CONFIG GET maxmemory through a renamed CONFIG.
fn config_get_via(client: &mut RawClient, config: &str) -> String {
    let reply = client.command(&[config, "GET", "maxmemory"]);
    let (_, items) = common::split_elements(&reply).expect("CONFIG GET replies an array");
    bulk_text(&items[1])
}

/// Runs `binary` with the config file `text`, which must make it stop at start-up: its exit
/// code, stderr and stdout (a server that starts anyway is killed after 10 seconds).
fn run_refused(binary: &Path, text: &str) -> (Option<i32>, String, String) {
    let dir = TempDir::new("cfg-refused");
    let file = write(&dir.0.join("bad.conf"), text);
    let child = Command::new(binary)
        .arg(&file)
        .args(["--port", &free_port().to_string(), "--bind", "127.0.0.1"])
        .args(["--save", ""])
        .current_dir(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let out = output_at_exit(child);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn config_line_errors_match_the_oracle_byte_for_byte() {
    let cases = [
        "port 0\nnosuch 1\n",
        "hz 5\nrename-command nosuch x\n",
        "# c\n\nrename-command get set\n",
        "rename-command get fetch\nrename-command set fetch\n",
        "rename-command get\n",
        "user\n",
        "user alice on badrule\n",
        "user alice a b c d badrule\n",
        "user alice (~a +get) badrule\n",
        "user alice on \"&x\" bad bad2\n",
        "user alice on ~a ~b (~c\n",
        "user alice on ~a ~b (~c +get) ) x\n",
        "user alice on >a\nuser bob on >b\nuser alice\n",
        "user alice allkeys ~x\n",
        "user alice on #abc\n",
        "user alice on <nopw\n",
        "user alice\nuser bob on \"\n",
        "USER alice on \">pass word\" ~* +@all\nhz 10\nrename-command flushall \"\"\nuser bob on \"~a b\"\n",
    ];
    for text in cases {
        let ours = run_refused(&ferrokv_binary(), text);
        let oracle = run_refused(&valkey_binary(), text);
        assert_eq!(oracle.0, Some(1), "{text:?}: {}", oracle.1);
        assert!(
            oracle.1.contains("FATAL CONFIG FILE ERROR"),
            "{text:?}: {}",
            oracle.1
        );
        assert_eq!((ours.0, &ours.1), (oracle.0, &oracle.1), "{text:?}");
    }
}

/// Waits up to 10 seconds for `child` to exit (killing it then) and returns its output.
fn output_at_exit(mut child: std::process::Child) -> std::process::Output {
    common::wait_exit(&mut child, 10);
    let _ = child.kill();
    child.wait_with_output().expect("server output")
}

/// Runs `binary` with the command line `args` only, which must make it stop at start-up:
/// its exit code and stderr (one that starts anyway is killed after 10 seconds).
fn run_args_refused(binary: &Path, args: &[&str]) -> (Option<i32>, String) {
    let dir = TempDir::new("args-refused");
    let child = Command::new(binary)
        .args(args)
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let out = output_at_exit(child);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Command-line options go by Valkey's rules for values that start with `--` (a value
/// follows an option name given alone), so a mistake is reported on the same line.
#[test]
fn command_line_errors_match_the_oracle_byte_for_byte() {
    let cases: &[&[&str]] = &[
        &["--invalid"],
        &["--port"],
        &["--port", "6380", "--loglevel"],
        &["--port", "6379", "6380"],
        &["--port", "--loglevel", "verbose"],
        &["--port", "--bla", "--loglevel", "verbose"],
        &["--logfile", "--my--log--file", "--loglevel", "--bla"],
        &["--shutdown-on-sigint"],
        &["--shutdown-on-sigint", "now force", "--shutdown-on-sigterm"],
        &["--replicaof", "127.0.0.1", "abc"],
        &["--replicaof", "--127.0.0.1", "abc"],
        &["--replicaof", "--127.0.0.1", "--abc"],
        &["--port 0", "--maxmemory 'x'"],
        &["--save", "--port", "--x"],
        &["--hz", "10", "--save", "bad"],
    ];
    for args in cases {
        let ours = run_args_refused(&ferrokv_binary(), args);
        let oracle = run_args_refused(&valkey_binary(), args);
        assert_eq!(oracle.0, Some(1), "{args:?}: {}", oracle.1);
        assert_eq!(ours, oracle, "{args:?}");
    }
}

#[test]
fn unknown_commands_in_user_lines_stop_start_up_as_in_valkey() {
    for text in [
        "user alice on +nosuch\n",
        "user alice on +get|nosuch -@nosuch\n",
    ] {
        for binary in [ferrokv_binary(), valkey_binary()] {
            let (code, stderr, stdout) = run_refused(&binary, text);
            assert_eq!(code, Some(1), "{text:?} {binary:?}: {stderr}");
            assert_eq!(stderr, "", "{text:?} {binary:?}");
            let rule = if text.contains("-@nosuch") {
                "-@nosuch"
            } else {
                "+nosuch"
            };
            assert!(
                stdout.contains(&format!(
                    "Error loading ACL rule '{rule}' for the user named 'alice': Unknown command or category name in ACL\n"
                )),
                "{text:?} {binary:?}: {stdout}"
            );
            assert!(
                stdout.contains("Critical error while loading ACLs. Exiting."),
                "{stdout}"
            );
        }
    }
}

/// ACL LIST, as text.
fn acl_list(client: &mut RawClient) -> String {
    common::show(&client.command(&["ACL", "LIST"]))
}

/// The `user` lines of a config file, and the part of it before the appended section.
fn user_lines_and_head(path: &Path) -> (Vec<String>, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let users = text
        .lines()
        .filter(|l| l.starts_with("user "))
        .map(str::to_string)
        .collect();
    let head = text
        .split("# Generated by CONFIG REWRITE")
        .next()
        .unwrap_or("")
        .to_string();
    (users, head)
}

#[test]
fn user_lines_with_quoted_passwords_and_config_rewrite_as_valkey() {
    let original = "# top\nuser alice on \">pass word\" ~* +@all\n# mid\nhz 11\n\
                    USER carol off\nuser dave on '>say \"hi\"' ~k* +get\nuser erin on >e\nsave \"\"\n";
    let mut rewritten = Vec::new();
    for (binary, name) in [(ferrokv_binary(), "ferrokv"), (valkey_binary(), "valkey")] {
        let dir = TempDir::new("cfg-users");
        let file = write(&dir.0.join("users.conf"), original);
        let server = start_binary_with_file(&binary, name, &file, dir);
        let mut c = RawClient::connect(server.port).unwrap();
        assert_eq!(
            c.command(&["AUTH", "alice", "pass word"]),
            b"+OK\r\n",
            "{name}"
        );
        assert_eq!(
            c.command(&["AUTH", "dave", "say \"hi\""]),
            b"+OK\r\n",
            "{name}"
        );
        assert_eq!(c.command(&["AUTH", "alice", "pass word"]), b"+OK\r\n");
        for cmd in [
            &[
                "ACL",
                "SETUSER",
                "bob",
                "on",
                ">x y",
                "~k*",
                "+get",
                "(~a +set)",
            ][..],
            &["ACL", "SETUSER", "carol", "on", ">it's"],
            &["CONFIG", "REWRITE"],
        ] {
            assert_eq!(c.command(cmd), b"+OK\r\n", "{name} {cmd:?}");
        }
        assert_eq!(c.command(&["ACL", "DELUSER", "erin"]), b":1\r\n");
        assert_eq!(c.command(&["CONFIG", "REWRITE"]), b"+OK\r\n");
        let before = acl_list(&mut c);
        rewritten.push((user_lines_and_head(&file), before.clone()));
        drop(c);
        let dir = std::mem::replace(&mut { server }.dir, TempDir::new("cfg-users-gone"));
        // Restarted from the rewritten file: the same users, the same passwords.
        let again = start_binary_with_file(&binary, name, &file, dir);
        let mut c = RawClient::connect(again.port).unwrap();
        assert_eq!(acl_list(&mut c), before, "{name}");
        assert_eq!(c.command(&["AUTH", "bob", "x y"]), b"+OK\r\n", "{name}");
        assert_eq!(c.command(&["AUTH", "carol", "it's"]), b"+OK\r\n", "{name}");
    }
    assert_eq!(rewritten[0], rewritten[1]);
    let (users, head) = &rewritten[0].0;
    assert_eq!(users.len(), 5, "{users:?}");
    assert!(head.starts_with("# top\nuser alice on #"), "{head}");
}

/// Asked for cluster mode, which it does not have yet, ferrokv does not start as a
/// standalone server that cluster clients would find refusing every CLUSTER command.
#[test]
fn cluster_enabled_yes_stops_start_up() {
    let (code, stderr, _) = run_refused(&ferrokv_binary(), "cluster-enabled yes\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cluster-enabled yes"), "{stderr}");
    // The default, written out, is fine.
    let dir = TempDir::new("cfg-cluster-no");
    let file = write(&dir.0.join("ok.conf"), "cluster-enabled no\n");
    let server = start_binary_with_file(&ferrokv_binary(), "ferrokv", &file, dir);
    let mut c = RawClient::connect(server.port).expect("connect");
    assert_eq!(c.command(&["CLUSTER", "KEYSLOT", "foo"]), b":12182\r\n");
}
