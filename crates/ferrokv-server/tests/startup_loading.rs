//! A server restarting with a snapshot or an AOF directory accepts connections while it
//! loads, as Valkey does:
//! INFO says `loading:1` with the progress, commands without the `loading` flag get LOADING
//! (a client never reads a half-loaded dataset), some CONFIG SETs run and others are refused,
//! and a SIGTERM meanwhile ends the process without saving the half-loaded dataset over the
//! files. Differential: the same steps against valkey-server 9.1, replies compared byte for
//! byte.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{RawClient, TempDir, ferrokv_binary, free_port, show, valkey_binary};

/// A server process in a directory the test keeps; killed when dropped.
struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` in `dir` and waits until it answers INFO (which it does while loading).
fn spawn(binary: &Path, dir: &Path, args: &[&str]) -> Running {
    for _attempt in 0..5 {
        let port = free_port();
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "no", "--enable-debug-command", "yes"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // lost the port to another test: try again
            }
            if let Ok(mut c) = RawClient::connect(port)
                && c.command(&["INFO", "server"]).starts_with(b"$")
            {
                return Running { child, port };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{} did not start", binary.display());
}

fn info_field(c: &mut RawClient, name: &str) -> String {
    common::info_field_of(c, "persistence", name).unwrap_or_default()
}

/// The replies a loading server gives, and what is left on disk after a SIGTERM then.
fn loading_behaviour(binary: &Path) -> Vec<String> {
    let dir = TempDir::new("startup-loading");
    {
        let first = spawn(binary, &dir.0, &["--save", ""]);
        let mut c = RawClient::connect(first.port).expect("connects");
        assert_eq!(
            c.command(&["DEBUG", "POPULATE", "20000", "key", "100"]),
            b"+OK\r\n"
        );
        assert_eq!(c.command(&["SAVE"]), b"+OK\r\n");
    }
    let snapshot = std::fs::read(dir.0.join("dump.rdb")).expect("dump.rdb written");

    // 20000 keys, 300 us each: about 6 seconds of loading. Valkey answers clients only
    // between chunks of the file it reads: small chunks here (ferrokv serves throughout).
    let mut loading = spawn(
        binary,
        &dir.0,
        &[
            "--save",
            "900 1",
            "--key-load-delay",
            "300",
            "--loading-process-events-interval-bytes",
            "1024",
        ],
    );
    let mut c = RawClient::connect(loading.port).expect("connects");
    let mut out = Vec::new();
    assert_eq!(info_field(&mut c, "loading"), "1", "still loading");
    let total: u64 = info_field(&mut c, "loading_total_bytes")
        .parse()
        .unwrap_or(0);
    assert_eq!(total, snapshot.len() as u64);
    for command in [
        &["GET", "key:1"][..],
        &["PING"],
        &["DBSIZE"],
        &["SET", "k", "v"],
        &["MEMORY", "DOCTOR"],
        &["CONFIG", "SET", "loglevel", "debug"],
        &["CONFIG", "GET", "loglevel"],
        &["CONFIG", "SET", "dir", "elsewhere"],
        &["CONFIG", "SET", "appendonly", "yes"],
        &["CONFIG", "SET", "hz", "11", "appendonly", "yes"],
        &["MULTI"],
        &["SET", "k", "v"],
        &["EXEC"],
        &["CLIENT", "SETNAME", "loader-watcher"],
        &["SELECT", "1"],
    ] {
        out.push(format!("{command:?} -> {}", show(&c.command(command))));
    }
    assert_eq!(
        info_field(&mut c, "loading"),
        "1",
        "still loading after the commands"
    );
    // SIGTERM with `save 900 1` while loading: the process ends, the file stays as it was.
    out.push(terminate(&mut loading));
    let after = std::fs::read(dir.0.join("dump.rdb")).expect("dump.rdb kept");
    out.push(format!("file unchanged: {}", after == snapshot));

    // Loaded in full, every key is there.
    let whole = spawn(binary, &dir.0, &["--save", ""]);
    let mut c = RawClient::connect(whole.port).expect("connects");
    assert!(
        common::wait_for(20, || info_field(&mut c, "loading") == "0"),
        "the load ends"
    );
    out.push(format!(
        "DBSIZE after a full load: {}",
        show(&c.command(&["DBSIZE"]))
    ));
    out
}

/// SIGTERM to a loading server: whether it ended.
fn terminate(loading: &mut Running) -> String {
    let pid = loading.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let exited = common::wait_exit(&mut loading.child, 10);
    format!("exited after SIGTERM: {exited}")
}

/// `behaviour` gives the same lines on ferrokv and valkey, some of them LOADING errors.
fn same_as_valkey(behaviour: fn(&Path) -> Vec<String>) {
    let ours = behaviour(&ferrokv_binary());
    let theirs = behaviour(&valkey_binary());
    assert_eq!(ours, theirs);
    assert!(
        ours.iter().any(|line| line.contains("LOADING")),
        "{ours:#?}"
    );
}

#[test]
fn a_loading_server_answers_as_valkey_does() {
    same_as_valkey(loading_behaviour);
}

/// Every file of an AOF directory, by name.
fn aof_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .flatten()
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("read an AOF file");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// [`loading_behaviour`] for an AOF directory of commands: a base of 20000 SETs (a rewrite
/// without the RDB preamble) and an increment of three more.
fn aof_loading_behaviour(binary: &Path) -> Vec<String> {
    let dir = TempDir::new("startup-loading-aof");
    let aof = ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"];
    {
        let first = spawn(binary, &dir.0, &[&aof[..], &["--save", ""]].concat());
        let mut c = RawClient::connect(first.port).expect("connects");
        assert_eq!(
            c.command(&["DEBUG", "POPULATE", "20000", "key", "100"]),
            b"+OK\r\n"
        );
        assert!(c.command(&["BGREWRITEAOF"]).starts_with(b"+"));
        assert!(
            common::wait_for(30, || {
                info_field(&mut c, "aof_rewrite_in_progress") == "0"
                    && info_field(&mut c, "aof_rewrite_scheduled") == "0"
                    && info_field(&mut c, "aof_last_bgrewrite_status") == "ok"
            }),
            "the rewrite ends"
        );
        for i in 0..3 {
            let key = format!("extra:{i}");
            assert_eq!(c.command(&["SET", key.as_str(), "v"]), b"+OK\r\n");
        }
    }
    let files = aof_files(&dir.0);
    let total_size: usize = files
        .iter()
        .filter(|(name, _)| !name.ends_with(".manifest"))
        .map(|(_, bytes)| bytes.len())
        .sum();

    // 20003 commands, 300 us each: about 6 seconds of loading. Valkey answers clients every
    // 1024 commands it replays: the commands go in one pipeline.
    let mut loading = spawn(
        binary,
        &dir.0,
        &[&aof[..], &["--save", "900 1", "--key-load-delay", "300"]].concat(),
    );
    let mut c = RawClient::connect(loading.port).expect("connects");
    let mut out = Vec::new();
    assert_eq!(info_field(&mut c, "loading"), "1", "still loading");
    let total: usize = info_field(&mut c, "loading_total_bytes")
        .parse()
        .unwrap_or(0);
    assert_eq!(total, total_size);
    let commands = [
        &["GET", "key:1"][..],
        &["PING"],
        &["DBSIZE"],
        &["SET", "k", "v"],
        &["CONFIG", "SET", "appendonly", "no"],
        &["BGREWRITEAOF"],
        &["MULTI"],
        &["SET", "k", "v"],
        &["EXEC"],
        &["FLUSHALL"],
    ];
    let pipeline: Vec<u8> = commands.iter().flat_map(|c| common::encode(c)).collect();
    c.send_raw(&pipeline);
    for command in commands {
        let reply = c.read_reply().expect("a reply while loading");
        out.push(format!("{command:?} -> {}", show(&reply)));
    }
    assert_eq!(
        info_field(&mut c, "loading"),
        "1",
        "still loading after the commands"
    );
    out.push(terminate(&mut loading));
    out.push(format!("files unchanged: {}", aof_files(&dir.0) == files));

    let whole = spawn(binary, &dir.0, &aof);
    let mut c = RawClient::connect(whole.port).expect("connects");
    assert!(
        common::wait_for(20, || info_field(&mut c, "loading") == "0"),
        "the load ends"
    );
    for command in [&["DBSIZE"][..], &["GET", "extra:2"], &["SET", "after", "1"]] {
        out.push(format!("{command:?} -> {}", show(&c.command(command))));
    }
    out
}

#[test]
fn a_server_loading_its_aof_answers_as_valkey_does() {
    same_as_valkey(aof_loading_behaviour);
}
