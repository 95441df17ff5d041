//! Hostile and broken clients: malformed requests must get the oracle's exact bytes and the
//! same close; random garbage must never take the server down; lying length headers and
//! abandoned connections must not cost memory or client slots.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv, start_valkey};

/// Sends `input` on a fresh connection; returns the bytes received until the server closed
/// the connection or stayed quiet for `quiet`, and whether it closed.
fn exchange(port: u16, input: &[u8], quiet: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(quiet)).expect("timeout");
    // The server may close before all of a long input is written; that is fine.
    let _ = s.write_all(input);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// Malformed inputs that both servers must answer identically.
fn malformed_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases: Vec<(&'static str, Vec<u8>)> = vec![
        ("non-numeric multibulk count", b"*x\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-5\r\n".to_vec()),
        ("simple string inside a multibulk", b"*1\r\n+x\r\n".to_vec()),
        (
            "bulk length over proto-max-bulk-len",
            b"*1\r\n$536870913\r\n".to_vec(),
        ),
        ("bulk length not a number", b"*1\r\n$abc\r\n".to_vec()),
        (
            "multibulk count over the limit",
            b"*2147483648\r\n".to_vec(),
        ),
        ("multibulk count with a plus sign", b"*+1\r\n".to_vec()),
        ("unbalanced double quote", b"SET k \"abc\r\n".to_vec()),
        ("unbalanced single quote", b"ECHO 'abc\r\n".to_vec()),
        (
            "valid command, then garbage",
            b"PING\r\n*1\r\n:5\r\n".to_vec(),
        ),
        (
            "empty multibulk and blank lines are ignored",
            b"*0\r\n\r\n\r\nPING\r\n".to_vec(),
        ),
        ("negative multibulk is ignored", b"*-1\r\nPING\r\n".to_vec()),
        ("bulk count line too long", {
            let mut v = b"*1\r\n$".to_vec();
            v.extend(std::iter::repeat_n(b'1', 70 * 1024));
            v
        }),
        ("multibulk count line too long", {
            let mut v = b"*".to_vec();
            v.extend(std::iter::repeat_n(b'1', 70 * 1024));
            v
        }),
        ("70KB inline line without newline", vec![b'a'; 70 * 1024]),
    ];
    // A pipeline that breaks half-way: the replies before the break still come.
    let mut pipeline = encode(&["PING"]);
    pipeline.extend(encode(&["ECHO", "hi"]));
    pipeline.extend(b"*1\r\n$x\r\n");
    cases.push(("pipeline broken after two commands", pipeline));
    // Valkey 9.1 joins text after a closing quote into the same argument.
    cases.push((
        "text right after a closing quote",
        b"ECHO \"a\"b\r\nECHO 'x'y\r\n".to_vec(),
    ));
    cases
}

#[test]
fn malformed_requests_get_valkeys_bytes_and_close() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let mut failures = Vec::new();
    for (what, input) in malformed_inputs() {
        let ours = exchange(ferrokv.port, &input, Duration::from_millis(700));
        let theirs = exchange(valkey.port, &input, Duration::from_millis(700));
        if ours != theirs {
            failures.push(format!(
                "{what}:\n   ferrokv: {} (closed: {})\n    valkey: {} (closed: {})",
                show(&ours.0),
                ours.1,
                show(&theirs.0),
                theirs.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unauthenticated_clients_get_tight_limits_like_valkey() {
    let ferrokv = start_ferrokv(&["--requirepass", "pw"]);
    let valkey = start_valkey(&["--requirepass", "pw"]);
    let big_bulk = {
        let mut v = b"*2\r\n$4\r\nAUTH\r\n$16385\r\n".to_vec();
        v.extend(vec![b'x'; 16385]);
        v.extend(b"\r\n");
        v
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("multibulk of 11 arguments", b"*11\r\n".to_vec()),
        ("bulk of 16385 bytes", big_bulk),
        ("10 arguments are fine", {
            let mut v = encode(&["ECHO"; 10]);
            v.extend(b"PING\r\n");
            v
        }),
        ("after AUTH the limits lift", {
            let mut v = encode(&["AUTH", "pw"]);
            let args: Vec<String> = (0..20).map(|i| i.to_string()).collect();
            let mut cmd = vec!["DEL".to_string()];
            cmd.extend(args);
            v.extend(encode(&cmd));
            v
        }),
    ];
    for (what, input) in cases {
        let ours = exchange(ferrokv.port, &input, Duration::from_millis(700));
        let theirs = exchange(valkey.port, &input, Duration::from_millis(700));
        assert_eq!(
            (show(&ours.0), ours.1),
            (show(&theirs.0), theirs.1),
            "{what}"
        );
    }
}

/// A small deterministic generator (xorshift64*), so a failing case can be replayed from its
/// seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid requests the fuzzer starts from (nothing that pauses, kills or shuts down).
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = vec![
        encode(&["SET", "key", "value"]),
        encode(&["GET", "key"]),
        encode(&["ECHO", "hello world"]),
        encode(&["HELLO", "3", "SETNAME", "fuzz"]),
        encode(&["CLIENT", "SETINFO", "LIB-NAME", "x"]),
        encode(&["CLIENT", "LIST", "ID", "1", "2"]),
        encode(&["SELECT", "3"]),
        encode(&["DEL", "a", "b", "c"]),
        b"PING\r\n".to_vec(),
        b"SET k \"quoted \\x41 value\"\r\n".to_vec(),
    ];
    let mut pipeline = Vec::new();
    for s in &seeds {
        pipeline.extend_from_slice(s);
    }
    seeds.push(pipeline);
    seeds
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    const INTERESTING: &[&[u8]] = &[
        b"\r\n",
        b"*",
        b"$",
        b"-1",
        b"0",
        b"99999999999",
        b"\"",
        b"'",
        b"\\x",
        b"\x00",
        b"\xff",
        b"*2147483647\r\n",
        b"$536870912\r\n",
        b" ",
        b"\n",
    ];
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            1 => {
                let i = rng.below(len + 1);
                let token = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(i..i, token.iter().copied());
            }
            2 if len > 0 => {
                let cut = rng.below(len);
                input.truncate(cut);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(16)).min(len);
                let piece = input[i..j].to_vec();
                input.splice(j..j, piece);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(8)).min(len);
                input.drain(i..j);
            }
            _ => {
                let n = rng.below(32);
                for _ in 0..n {
                    input.push(rng.next() as u8);
                }
            }
        }
    }
}

fn assert_alive(server: &mut ServerProcess, context: &str) {
    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "server exited: {context}"
    );
    let mut c = RawClient::connect(server.port).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(show(&c.command(&["PING"])), show(b"+PONG\r\n"), "{context}");
}

#[test]
fn random_garbage_never_takes_the_server_down() {
    let mut server = start_ferrokv(&[]);
    let seeds = seeds();
    let seed = std::env::var("FERROKV_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d_u64);
    let mut rng = Rng(seed);
    let budget = Duration::from_secs(6);
    let started = Instant::now();
    let mut cases = 0;
    while started.elapsed() < budget && cases < 400 {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input);
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(30)))
            .expect("timeout");
        let _ = s.write_all(&input);
        let mut sink = [0u8; 4096];
        while let Ok(n) = s.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        drop(s);
        cases += 1;
        if cases % 100 == 0 {
            assert_alive(&mut server, &format!("after {cases} cases (seed {seed})"));
        }
    }
    assert!(cases >= 50, "only {cases} cases ran");
    assert_alive(&mut server, &format!("after {cases} cases (seed {seed})"));
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn announcing_huge_bulks_but_sending_little_keeps_memory_bounded() {
    let mut server = start_ferrokv(&[]);
    let pid = server.child.id();
    let before = rss_kib(pid);
    let mut liars = Vec::new();
    for i in 0..8 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let key = format!("k{i}");
        let mut header = format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$524288000\r\n",
            key.len()
        )
        .into_bytes();
        header.extend(vec![b'v'; 256 * 1024]);
        s.write_all(&header).expect("write");
        liars.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib(pid);
    // 8 clients × 500 MB announced; about 2 MB really sent.
    assert!(
        during.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} KiB to {during} KiB"
    );
    assert_alive(&mut server, "while clients hold huge half-sent bulks");
    drop(liars);
}

#[test]
fn abandoned_connections_are_cleaned_up() {
    let mut server = start_ferrokv(&[]);
    let mut admin = RawClient::connect(server.port).expect("connect");
    let count = |c: &mut RawClient| {
        String::from_utf8_lossy(&c.command(&["CLIENT", "LIST"]))
            .matches("id=")
            .count()
    };
    let mut abandoned = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        // Stop half-way through a request of each kind.
        let partial: &[u8] = match i % 3 {
            0 => b"*3\r\n$3\r\nSET\r\n$1\r\nk",
            1 => b"GET half-a-line",
            _ => b"",
        };
        s.write_all(partial).expect("write");
        abandoned.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&mut admin) < 51 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count(&mut admin), 51);
    drop(abandoned);
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&mut admin) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count(&mut admin), 1, "closed connections still listed");
    assert_alive(&mut server, "after abandoned connections");
}
