//! The network layer against real clients: connection limits, idle timeouts, keepalive, Unix
//! sockets, several bind addresses, protected mode, pipelining, RESP3, and the connection
//! commands whose replies depend on several connections (CLIENT LIST/KILL/PAUSE/REPLY, AUTH).
//! Where the oracle's reply can be compared byte for byte (after masking ids and addresses)
//! it is.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv, start_valkey};

/// Reads until the peer closes or nothing arrives within `quiet`; returns the bytes and
/// whether the connection was closed.
fn read_until_close(stream: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    let _ = stream.set_read_timeout(Some(quiet));
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

fn tcp(host: &str, port: u16) -> TcpStream {
    let s =
        TcpStream::connect((host, port)).unwrap_or_else(|e| panic!("connect {host}:{port}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    s
}

/// Sends `input` on a fresh connection and returns what came back until close or a quiet
/// second.
fn exchange(port: u16, input: &[u8]) -> (Vec<u8>, bool) {
    let mut s = tcp("127.0.0.1", port);
    s.write_all(input).expect("write");
    read_until_close(&mut s, Duration::from_secs(1))
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn client_count(c: &mut RawClient) -> usize {
    let list = c.command(&["CLIENT", "LIST"]);
    String::from_utf8_lossy(&list)
        .lines()
        .filter(|l| l.contains("id="))
        .count()
}

/// `key=value` fields of a CLIENT INFO/LIST line.
fn fields(line: &str) -> Vec<(String, String)> {
    line.trim()
        .trim_start_matches(|c: char| c != 'i')
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replaces the value of `:id` integers in a HELLO reply so two servers' replies compare.
fn mask_hello_id(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let Some(at) = text.find("$2\r\nid\r\n:") else {
        return reply.to_vec();
    };
    let start = at + "$2\r\nid\r\n:".len();
    let end = text[start..].find("\r\n").map_or(text.len(), |e| start + e);
    format!("{}<id>{}", &text[..start], &text[end..]).into_bytes()
}

fn server_pid(s: &ServerProcess) -> u32 {
    s.child.id()
}

#[test]
fn maxclients_refuses_the_next_client_with_valkeys_error() {
    for server in [
        start_ferrokv(&["--maxclients", "3"]),
        start_valkey(&["--maxclients", "3"]),
    ] {
        let mut first = RawClient::connect(server.port).expect("connect");
        // The readiness probe's connection may still be closing.
        assert!(eventually(Duration::from_secs(5), || client_count(
            &mut first
        ) == 1));
        let mut others: Vec<RawClient> = (0..2)
            .map(|_| RawClient::connect(server.port).expect("connect"))
            .collect();
        for c in &mut others {
            assert_eq!(c.command(&["PING"]), b"+PONG\r\n");
        }
        let mut extra = tcp("127.0.0.1", server.port);
        let (reply, closed) = read_until_close(&mut extra, Duration::from_secs(1));
        assert_eq!(
            show(&reply),
            show(b"-ERR max number of clients reached\r\n"),
            "{}",
            server.name
        );
        assert!(closed, "{}: refused connection stays open", server.name);
        // A slot frees up when a client leaves.
        drop(others.pop());
        assert!(eventually(Duration::from_secs(5), || {
            RawClient::connect(server.port)
                .map(|mut c| c.command(&["PING"]) == b"+PONG\r\n")
                .unwrap_or(false)
        }));
    }
}

#[test]
fn idle_and_half_sent_clients_are_closed_after_timeout() {
    let server = start_ferrokv(&["--timeout", "1"]);
    let started = Instant::now();
    let mut idle = tcp("127.0.0.1", server.port);
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut half = tcp("127.0.0.1", server.port);
    half.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    half.write_all(b"*2\r\n$3\r\nGET\r\n$10\r\nabc")
        .expect("write");
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).ok(), Some(0), "idle client not closed");
    assert_eq!(
        half.read(&mut buf).ok(),
        Some(0),
        "half-sent client not closed"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "closed after {waited:?}"
    );
    // An active client is not closed.
    let mut active = RawClient::connect(server.port).expect("connect");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(active.command(&["PING"]), b"+PONG\r\n");
    }
}

/// The server side of the connection from `client` in /proc/net/tcp: (timer kind, expiry in
/// clock ticks). Timer kind 2 is the keepalive timer.
fn server_socket_timer(server_port: u16, client: &TcpStream) -> Option<(u32, u64)> {
    let client_port = client.local_addr().ok()?.port();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let port_of = |col: &str| {
            col.rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        };
        if port_of(cols[1]) == Some(server_port) && port_of(cols[2]) == Some(client_port) {
            let (kind, when) = cols[5].split_once(':')?;
            return Some((
                u32::from_str_radix(kind, 16).ok()?,
                u64::from_str_radix(when, 16).ok()?,
            ));
        }
    }
    None
}

#[test]
fn tcp_keepalive_arms_the_keepalive_timer_on_client_sockets() {
    if !std::path::Path::new("/proc/net/tcp").exists() {
        eprintln!("SKIP: /proc/net/tcp is not available to inspect socket timers");
        return;
    }
    let with = start_ferrokv(&["--tcp-keepalive", "7"]);
    let mut c = RawClient::connect(with.port).expect("connect");
    assert_eq!(c.command(&["PING"]), b"+PONG\r\n");
    let probe = tcp("127.0.0.1", with.port);
    std::thread::sleep(Duration::from_millis(300));
    let (kind, when) = server_socket_timer(with.port, &probe).expect("server socket listed");
    assert_eq!(kind, 2, "no keepalive timer on the server's socket");
    // Ticks are USER_HZ (100/s): the first probe is due within 7 seconds.
    assert!(
        when > 0 && when <= 7 * 100 + 10,
        "keepalive due in {when} ticks"
    );

    let without = start_ferrokv(&["--tcp-keepalive", "0"]);
    let probe = tcp("127.0.0.1", without.port);
    std::thread::sleep(Duration::from_millis(300));
    let (kind, _) = server_socket_timer(without.port, &probe).expect("server socket listed");
    assert_eq!(kind, 0, "a timer is armed although tcp-keepalive is 0");
}

#[test]
fn unix_socket_with_permissions() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    let dir = common::TempDir::new("unixsock");
    let mut lines = Vec::new();
    for (name, start) in [
        ("ferrokv", start_ferrokv as fn(&[&str]) -> ServerProcess),
        ("valkey", start_valkey),
    ] {
        let path = dir.0.join(format!("{name}.sock"));
        let path_text = path.to_string_lossy().into_owned();
        let _server = start(&["--unixsocket", &path_text, "--unixsocketperm", "700"]);
        let mode = std::fs::metadata(&path)
            .expect("socket file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{name}: socket permissions {mode:o}");
        let mut s = UnixStream::connect(&path).expect("connect over the unix socket");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(&encode(&["CLIENT", "INFO"])).expect("write");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).expect("read");
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let f = fields(line.lines().nth(1).unwrap_or_default());
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("flags").as_deref(), Some("U"), "{name}: {line}");
        assert_eq!(get("addr"), Some(format!("[{path_text}:0]:0")), "{name}");
        lines.push(f.into_iter().map(|(k, _)| k).collect::<Vec<_>>());
    }
    assert_eq!(
        lines[0], lines[1],
        "CLIENT INFO fields differ over a unix socket"
    );
}

fn ipv6_loopback_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn binds_several_addresses_including_ipv6_loopback() {
    if !ipv6_loopback_available() {
        eprintln!("SKIP: this machine has no IPv6 loopback (::1) to bind");
        return;
    }
    let server = start_ferrokv(&["--bind", "127.0.0.1 ::1"]);
    let mut v4 = tcp("127.0.0.1", server.port);
    let mut v6 = tcp("::1", server.port);
    for s in [&mut v4, &mut v6] {
        s.write_all(b"PING\r\n").expect("write");
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"+PONG\r\n");
    }
    v6.write_all(&encode(&["CLIENT", "INFO"])).expect("write");
    let mut buf = vec![0u8; 4096];
    let n = v6.read(&mut buf).expect("read");
    let info = String::from_utf8_lossy(&buf[..n]).into_owned();
    let local = v6.local_addr().expect("local addr");
    assert!(
        info.contains(&format!(
            "addr=[::1]:{} laddr=[::1]:{}",
            local.port(),
            server.port
        )),
        "{info}"
    );
    // An address not in the list is not served.
    assert!(TcpStream::connect(("127.0.0.2", server.port)).is_err());
}

/// A network namespace joined to this one by a veth pair, so a client can connect from a
/// non-loopback address. Removed on drop.
struct Namespace {
    name: String,
    host_ip: String,
    peer_ip: String,
}

impl Namespace {
    fn create() -> Result<Namespace, String> {
        let tag = std::process::id() % 100_000;
        let name = format!("fkv{tag}");
        let subnet = tag % 250 + 1;
        let ns = Namespace {
            name: name.clone(),
            host_ip: format!("10.213.{subnet}.1"),
            peer_ip: format!("10.213.{subnet}.2"),
        };
        let (host_if, peer_if) = (format!("fkh{tag}"), format!("fkp{tag}"));
        let steps: Vec<Vec<String>> = vec![
            vec!["netns", "add", &name],
            vec![
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
            ],
            vec!["link", "set", &peer_if, "netns", &name],
            vec![
                "addr",
                "add",
                &format!("{}/30", ns.host_ip),
                "dev",
                &host_if,
            ],
            vec!["link", "set", &host_if, "up"],
            vec![
                "netns",
                "exec",
                &name,
                "ip",
                "addr",
                "add",
                &format!("{}/30", ns.peer_ip),
                "dev",
                &peer_if,
            ],
            vec!["netns", "exec", &name, "ip", "link", "set", &peer_if, "up"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(String::from).collect())
        .collect();
        for step in steps {
            let out = std::process::Command::new("ip")
                .args(&step)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    step.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(ns)
    }

    /// Connects from inside the namespace to `ip:port`, sends `input`, and returns what came
    /// back before the server closed the connection (or 2 s passed).
    fn exchange(&self, ip: &str, port: u16, input: &str) -> Vec<u8> {
        let script = format!(
            "import socket,sys\ns=socket.create_connection(('{ip}',{port}),timeout=2)\ns.sendall({input:?}.encode())\nout=b''\ntry:\n  while True:\n    d=s.recv(65536)\n    if not d: break\n    out+=d\nexcept Exception: pass\nsys.stdout.buffer.write(out)\n"
        );
        let out = std::process::Command::new("timeout")
            .args([
                "10", "ip", "netns", "exec", &self.name, "python3", "-c", &script,
            ])
            .output()
            .expect("run client in namespace");
        out.stdout
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace removes its veth end, which removes the pair.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
fn protected_mode_refuses_non_loopback_clients_like_valkey() {
    let have_ip = std::process::Command::new("ip").arg("-V").output().is_ok();
    if !have_ip {
        eprintln!(
            "SKIP: the `ip` tool is absent; the admission predicate is unit-tested in network.rs"
        );
        return;
    }
    let ns = match Namespace::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!(
                "SKIP: cannot create a network namespace ({e}); the admission predicate is unit-tested in network.rs"
            );
            return;
        }
    };
    let bind = format!("127.0.0.1 {}", ns.host_ip);
    let mut replies = Vec::new();
    for (name, start) in [
        ("ferrokv", start_ferrokv as fn(&[&str]) -> ServerProcess),
        ("valkey", start_valkey),
    ] {
        let protected = start(&["--bind", &bind, "--protected-mode", "yes"]);
        let refused = ns.exchange(&ns.host_ip, protected.port, "PING\r\n");
        assert!(
            refused.starts_with(b"-DENIED"),
            "{name}: {}",
            show(&refused)
        );
        // Loopback clients are still served.
        let mut local = RawClient::connect(protected.port).expect("connect");
        assert_eq!(local.command(&["PING"]), b"+PONG\r\n");
        let with_password = start(&[
            "--bind",
            &bind,
            "--protected-mode",
            "yes",
            "--requirepass",
            "pw",
        ]);
        let admitted = ns.exchange(&ns.host_ip, with_password.port, "PING\r\nQUIT\r\n");
        let unprotected = start(&["--bind", &bind, "--protected-mode", "no"]);
        let open = ns.exchange(&ns.host_ip, unprotected.port, "PING\r\nQUIT\r\n");
        assert_eq!(show(&open), show(b"+PONG\r\n+OK\r\n"), "{name}");
        replies.push((refused, admitted));
    }
    assert_eq!(
        show(&replies[0].0),
        show(&replies[1].0),
        "refusal text differs"
    );
    assert_eq!(
        show(&replies[0].1),
        show(&replies[1].1),
        "password-protected reply differs"
    );
}

/// Write syscalls made by a process so far.
fn write_syscalls(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("syscw: "))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn pipeline_of_thousands_is_answered_in_order_in_few_writes() {
    const N: usize = 10_000;
    let server = start_ferrokv(&[]);
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..N {
        let arg = format!("msg-{i}");
        request.extend(encode(&["ECHO", &arg]));
        expected.extend(format!("${}\r\n{arg}\r\n", arg.len()).bytes());
    }
    let mut stream = tcp("127.0.0.1", server.port);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let before = write_syscalls(server_pid(&server));
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&request));
    let mut got = vec![0u8; expected.len()];
    stream.read_exact(&mut got).expect("all replies");
    sender.join().expect("sender").expect("write pipeline");
    assert!(got == expected, "replies out of order or wrong");
    if let (Some(before), Some(after)) = (before, write_syscalls(server_pid(&server))) {
        let writes = after - before;
        // 10 000 replies (~128 KB) go out in batches, not one write per reply.
        assert!(
            writes < N as u64 / 50,
            "{writes} write syscalls for {N} replies"
        );
    } else {
        eprintln!("note: /proc/PID/io unreadable, write count not checked");
    }
}

#[test]
fn hello_3_switches_to_resp3_like_valkey() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let script: &[&[&str]] = &[
        &["HELLO", "3"],
        &["GET", "missing"],
        &["CLIENT", "TRACKINGINFO"],
        &["HELLO"],
        &["HELLO", "2", "SETNAME", "x"],
        &["GET", "missing"],
        &["CLIENT", "TRACKINGINFO"],
        &["HELLO", "3"],
        &["RESET"],
        &["GET", "missing"],
    ];
    let mut a = RawClient::connect(ferrokv.port).expect("connect");
    let mut b = RawClient::connect(valkey.port).expect("connect");
    for args in script {
        let ours = mask_hello_id(&a.command(args));
        let theirs = mask_hello_id(&b.command(args));
        assert_eq!(show(&ours), show(&theirs), "{args:?}");
    }
}

#[test]
fn client_info_fields_match_valkey() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let setup: &[&[&str]] = &[
        &["CLIENT", "SETNAME", "conn-1"],
        &["CLIENT", "SETINFO", "LIB-NAME", "redis-py"],
        &["CLIENT", "SETINFO", "LIB-VER", "5.0"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "NO-TOUCH", "on"],
        &["CLIENT", "CAPA", "redirect"],
        &["SELECT", "3"],
    ];
    let mut infos = Vec::new();
    for port in [ferrokv.port, valkey.port] {
        let mut c = RawClient::connect(port).expect("connect");
        let fresh = c.command(&["CLIENT", "INFO"]);
        for args in setup {
            assert_eq!(c.command(args), b"+OK\r\n", "{args:?}");
        }
        let set = c.command(&["CLIENT", "INFO"]);
        c.command(&["HELLO", "3"]);
        let resp3 = c.command(&["CLIENT", "INFO"]);
        c.command(&["RESET"]);
        let after_reset = c.command(&["CLIENT", "INFO"]);
        infos.push([fresh, set, resp3, after_reset]);
    }
    const DETERMINISTIC: &[&str] = &[
        "name",
        "flags",
        "capa",
        "db",
        "sub",
        "psub",
        "ssub",
        "multi",
        "watch",
        "multi-mem",
        "oll",
        "omem",
        "events",
        "cmd",
        "user",
        "redir",
        "resp",
        "lib-name",
        "lib-ver",
        "argv-mem",
    ];
    for (stage, (ours, theirs)) in infos[0].iter().zip(infos[1].iter()).enumerate() {
        let ours = fields(&String::from_utf8_lossy(ours));
        let theirs = fields(&String::from_utf8_lossy(theirs));
        let names = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&ours),
            names(&theirs),
            "field names/order, stage {stage}"
        );
        for (k, v) in &ours {
            if DETERMINISTIC.contains(&k.as_str()) {
                let theirs_v = &theirs.iter().find(|(n, _)| n == k).expect("field").1;
                assert_eq!(v, theirs_v, "field {k}, stage {stage}");
            }
        }
    }
}

#[test]
fn client_list_and_kill_across_connections() {
    let server = start_ferrokv(&[]);
    let mut admin = RawClient::connect(server.port).expect("connect");
    assert!(eventually(Duration::from_secs(5), || client_count(
        &mut admin
    ) == 1));
    let mut victims: Vec<(TcpStream, u64)> = (0..4)
        .map(|_| {
            let mut c = tcp("127.0.0.1", server.port);
            c.write_all(&encode(&["CLIENT", "ID"])).expect("write");
            let mut buf = [0u8; 32];
            let n = c.read(&mut buf).expect("read id");
            let id = String::from_utf8_lossy(&buf[1..n])
                .trim()
                .parse()
                .expect("id");
            (c, id)
        })
        .collect();
    assert_eq!(client_count(&mut admin), 5);
    let list = admin.command(&[
        "CLIENT",
        "LIST",
        "ID",
        &victims[0].1.to_string(),
        &victims[1].1.to_string(),
    ]);
    assert_eq!(String::from_utf8_lossy(&list).matches("id=").count(), 2);
    let list = admin.command(&["CLIENT", "LIST", "TYPE", "normal", "SKIPME", "yes"]);
    assert_eq!(String::from_utf8_lossy(&list).matches("id=").count(), 4);

    // Filter form: by id, answers the number closed.
    let (mut gone, id) = victims.remove(0);
    assert_eq!(
        admin.command(&["CLIENT", "KILL", "ID", &id.to_string()]),
        b":1\r\n"
    );
    let (_, closed) = read_until_close(&mut gone, Duration::from_secs(2));
    assert!(closed, "killed client still connected");

    // Old form: by address.
    let (mut gone, _) = victims.remove(0);
    let addr = gone.local_addr().expect("addr").to_string();
    assert_eq!(admin.command(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
    assert!(read_until_close(&mut gone, Duration::from_secs(2)).1);
    assert_eq!(
        admin.command(&["CLIENT", "KILL", &addr]),
        b"-ERR No such client\r\n"
    );

    // By local address, sparing the caller by default.
    let laddr = format!("127.0.0.1:{}", server.port);
    assert_eq!(
        admin.command(&["CLIENT", "KILL", "LADDR", &laddr]),
        b":2\r\n"
    );
    for (mut c, _) in victims {
        assert!(read_until_close(&mut c, Duration::from_secs(2)).1);
    }
    assert_eq!(admin.command(&["PING"]), b"+PONG\r\n");

    // Killing oneself: the reply arrives, then the connection closes.
    let mut me = tcp("127.0.0.1", server.port);
    me.write_all(&encode(&[
        "CLIENT", "KILL", "SKIPME", "no", "LADDR", &laddr, "MAXAGE", "1000",
    ]))
    .expect("write");
    me.write_all(&encode(&[
        "CLIENT", "KILL", "USER", "default", "SKIPME", "no",
    ]))
    .expect("write");
    let (reply, closed) = read_until_close(&mut me, Duration::from_secs(2));
    assert_eq!(show(&reply), show(b":0\r\n:2\r\n"));
    assert!(closed);
}

#[test]
fn client_reply_off_and_skip_like_valkey() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let script = "CLIENT REPLY SKIP\r\nPING 1\r\nPING 2\r\nCLIENT REPLY OFF\r\nPING 3\r\n\
                  CLIENT REPLY SKIP\r\nPING 4\r\nCLIENT REPLY ON\r\nPING 5\r\nCLIENT REPLY SKIP\r\n\
                  CLIENT REPLY SKIP\r\nPING 6\r\nPING 7\r\nCLIENT REPLY SKIP\r\nNOSUCH\r\nGET\r\n\
                  CLIENT REPLY OFF\r\nRESET\r\nPING 8\r\n";
    let ours = exchange(ferrokv.port, script.as_bytes());
    let theirs = exchange(valkey.port, script.as_bytes());
    assert_eq!(show(&ours.0), show(&theirs.0));
}

/// Seconds of CPU the process has used (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let cols: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        cols.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15; after the name, at 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

#[test]
fn client_pause_write_holds_writes_in_order_until_unpause() {
    let server = start_ferrokv(&[]);
    let mut admin = RawClient::connect(server.port).expect("connect");
    let mut reader = RawClient::connect(server.port).expect("connect");
    assert_eq!(
        admin.command(&["CLIENT", "PAUSE", "20000", "WRITE"]),
        b"+OK\r\n"
    );

    let mut writer = tcp("127.0.0.1", server.port);
    writer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut pipeline = encode(&["PING"]);
    pipeline.extend(encode(&["SET", "k", "1"]));
    pipeline.extend(encode(&["GET", "k"]));
    pipeline.extend(encode(&["SET", "k", "2"]));
    writer.write_all(&pipeline).expect("write");
    // The PING before the write is answered at once.
    let mut pong = [0u8; 7];
    writer.read_exact(&mut pong).expect("pong");
    assert_eq!(&pong, b"+PONG\r\n");

    // Reads from other clients go on; the writer shows as blocked.
    assert_eq!(reader.command(&["GET", "k"]), b"$-1\r\n");
    let list = admin.command(&["CLIENT", "LIST"]);
    assert!(
        String::from_utf8_lossy(&list).contains("flags=b"),
        "{}",
        show(&list)
    );

    // Waiting does not spin.
    let cpu_before = cpu_seconds(server_pid(&server));
    std::thread::sleep(Duration::from_millis(700));
    let cpu_used = cpu_seconds(server_pid(&server)) - cpu_before;
    assert!(
        cpu_used < 0.3,
        "server used {cpu_used}s of CPU while clients were paused"
    );
    writer
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut early = [0u8; 1];
    assert!(
        writer.read(&mut early).is_err(),
        "a paused write was answered"
    );

    let unpaused = Instant::now();
    assert_eq!(admin.command(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    writer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let expected = b"+OK\r\n$1\r\n1\r\n+OK\r\n";
    let mut rest = vec![0u8; expected.len()];
    writer.read_exact(&mut rest).expect("replies after unpause");
    assert_eq!(show(&rest), show(expected));
    assert!(
        unpaused.elapsed() < Duration::from_secs(1),
        "resumed late: {:?}",
        unpaused.elapsed()
    );
}

#[test]
fn client_pause_all_ends_by_itself_and_holds_every_command() {
    let server = start_ferrokv(&[]);
    let mut admin = RawClient::connect(server.port).expect("connect");
    let mut other = RawClient::connect(server.port).expect("connect");
    let started = Instant::now();
    assert_eq!(admin.command(&["CLIENT", "PAUSE", "400"]), b"+OK\r\n");
    // Errors found before the pause check are answered at once, like Valkey.
    assert_eq!(
        other.command(&["GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert!(started.elapsed() < Duration::from_millis(350));
    assert_eq!(other.command(&["PING"]), b"+PONG\r\n");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(380) && waited < Duration::from_secs(3),
        "PING answered after {waited:?}"
    );
    // The pausing client is held too, and so is its CLIENT UNPAUSE.
    assert_eq!(
        admin.command(&["CLIENT", "PAUSE", "300", "ALL"]),
        b"+OK\r\n"
    );
    let t = Instant::now();
    assert_eq!(admin.command(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    assert!(t.elapsed() >= Duration::from_millis(250));
    // A client killed while paused goes away.
    assert_eq!(
        admin.command(&["CLIENT", "PAUSE", "10000", "WRITE"]),
        b"+OK\r\n"
    );
    let mut stuck = tcp("127.0.0.1", server.port);
    stuck
        .write_all(&encode(&["CLIENT", "SETNAME", "stuck"]))
        .expect("write");
    stuck.write_all(&encode(&["SET", "a", "b"])).expect("write");
    let mut ok = [0u8; 5];
    stuck.read_exact(&mut ok).expect("setname reply");
    assert_eq!(
        admin.command(&["CLIENT", "KILL", "NAME", "stuck"]),
        b":1\r\n"
    );
    assert!(read_until_close(&mut stuck, Duration::from_secs(2)).1);
    assert_eq!(admin.command(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
}

#[test]
fn auth_and_hello_with_requirepass_like_valkey() {
    let ferrokv = start_ferrokv(&["--requirepass", "s3cret"]);
    let valkey = start_valkey(&["--requirepass", "s3cret"]);
    let script: &[&[&str]] = &[
        &["PING"],
        &["NOSUCH", "a"],
        &["GET"],
        &["CLIENT", "NOSUCH"],
        &["AUTH"],
        &["AUTH", "wrong"],
        &["AUTH", "default", "wrong"],
        &["AUTH", "bob", "s3cret"],
        &["AUTH", "a", "b", "c"],
        &["HELLO"],
        &["HELLO", "3"],
        &["HELLO", "3", "AUTH", "default", "wrong"],
        &["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "a b"],
        &["PING"],
        &["HELLO", "3", "AUTH", "default"],
        &["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "app"],
        &["CLIENT", "GETNAME"],
        &["GET", "missing"],
        &["AUTH", "wrong"],
        &["PING"],
        &["RESET"],
        &["PING"],
        &["GET", "missing"],
        &["AUTH", "s3cret"],
        &["PING"],
        &["AUTH", "default", "s3cret"],
        &["QUIT"],
    ];
    let mut a = RawClient::connect(ferrokv.port).expect("connect");
    let mut b = RawClient::connect(valkey.port).expect("connect");
    for args in script {
        let ours = mask_hello_id(&a.command(args));
        let theirs = mask_hello_id(&b.command(args));
        assert_eq!(show(&ours), show(&theirs), "{args:?}");
    }
    // QUIT closed both.
    assert!(
        a.read_reply().is_err(),
        "ferrokv kept the connection after QUIT"
    );
    assert!(b.read_reply().is_err());
}
