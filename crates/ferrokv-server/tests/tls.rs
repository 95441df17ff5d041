//! TLS on `tls-port`, end to end with real clients: redis-cli (`--tls --cacert --cert --key
//! --sni`), redis-py (`ssl_ca_certs`, `ssl_ca_path`, `ssl_certfile`, `ssl_keyfile`) and
//! `openssl s_client` (to see which certificate the server presents). Certificates are made
//! in the test (ferrokv-tls's test PKI); every client runs under `timeout`.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{ServerProcess, TempDir, free_port, start_ferrokv};
use ferrokv_tls::test_pki::{Issued, Spec, TestCa};

/// Every certificate the tests use, in one scratch directory.
struct Pki {
    dir: TempDir,
    ca: TestCa,
    /// A second CA the server does not trust.
    other_ca: TestCa,
    server: Issued,
    /// Presented for the SNI name `alt.example`.
    alt: Issued,
    /// Replaces `server` in the reload test.
    renewed: Issued,
    /// CN `default`: logs in as the default user under `tls-auth-clients-user CN`.
    default_user: Issued,
    alice: Issued,
    expired: Issued,
    foreign: Issued,
    /// A CA directory with OpenSSL's hashed links, for `ssl_ca_path` and `tls-ca-cert-dir`.
    ca_dir: String,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("tls");
        let ca = TestCa::new(&dir.0, "ca").unwrap();
        let other_ca = TestCa::new(&dir.0.join("other"), "other-ca").unwrap();
        let host = |cn: &'static str, dns: &'static [&'static str]| Spec {
            common_name: cn,
            dns,
            ..Spec::default()
        };
        let user = |cn: &'static str| Spec {
            common_name: cn,
            ..Spec::default()
        };
        let server = ca
            .issue("server", &host("server", &["localhost", "127.0.0.1"]))
            .unwrap();
        let alt = ca.issue("alt", &host("alt", &["alt.example"])).unwrap();
        let renewed = ca
            .issue("renewed", &host("renewed", &["localhost", "127.0.0.1"]))
            .unwrap();
        let default_user = ca.issue("default-user", &user("default")).unwrap();
        let alice = ca.issue("alice", &user("alice")).unwrap();
        let expired = ca
            .issue(
                "expired",
                &Spec {
                    common_name: "default",
                    expired: true,
                    ..Spec::default()
                },
            )
            .unwrap();
        let foreign = other_ca.issue("foreign", &user("default")).unwrap();
        let ca_dir = dir.0.join("cadir");
        std::fs::create_dir_all(&ca_dir).unwrap();
        std::fs::copy(&ca.cert_file, ca_dir.join("ca.pem")).unwrap();
        let rehash = Command::new("openssl").arg("rehash").arg(&ca_dir).output();
        assert!(
            rehash.is_ok_and(|o| o.status.success()),
            "openssl rehash failed"
        );
        Pki {
            ca_dir: ca_dir.to_string_lossy().into_owned(),
            dir,
            ca,
            other_ca,
            server,
            alt,
            renewed,
            default_user,
            alice,
            expired,
            foreign,
        }
    }

    /// The directives of a TLS listener on `port` with the server certificate and the CA
    /// (the same for ferrokv and redis-server).
    fn tls_args<'a>(&'a self, port: &'a str) -> Vec<&'a str> {
        vec![
            "--tls-port",
            port,
            "--tls-cert-file",
            self.server.cert(),
            "--tls-key-file",
            self.server.key(),
            "--tls-ca-cert-file",
            self.ca.ca(),
        ]
    }

    /// ferrokv with a plain port (for start-up checks) and a TLS port, plus `extra`.
    fn start(&self, extra: &[&str]) -> (ServerProcess, u16) {
        let tls_port = free_port().to_string();
        let mut args = self.tls_args(&tls_port);
        args.extend_from_slice(extra);
        let server = start_ferrokv(&args);
        (server, tls_port.parse().unwrap())
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new("timeout");
    command.arg("20").arg(program).args(args);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("{program}: {e}"));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.unwrap_or_default());
    }
    child.wait_with_output().expect("wait for client")
}

/// redis-cli over TLS: `tls` holds `--cacert`, `--cert`, `--key`, `--sni` as wanted.
fn cli(port: u16, tls: &[&str], command: &[&str]) -> String {
    let port = port.to_string();
    let mut args = vec!["-p", &port, "--tls"];
    args.extend_from_slice(tls);
    args.extend_from_slice(command);
    let out = run("redis-cli", &args, None);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

/// redis-cli's TLS options: trust the test CA and present `cert`.
fn trusting_ca<'a>(pki: &'a Pki, cert: &'a Issued) -> Vec<&'a str> {
    vec![
        "--cacert",
        pki.ca.ca(),
        "--cert",
        cert.cert(),
        "--key",
        cert.key(),
    ]
}

/// The CommonName of the certificate the server presents for `server_name` (none: no SNI).
fn presented_cn(pki: &Pki, port: u16, server_name: Option<&str>) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        pki.ca.ca(),
        "-cert",
        pki.default_user.cert(),
        "-key",
        pki.default_user.key(),
    ];
    match server_name {
        Some(name) => args.extend(["-servername", name]),
        None => args.push("-noservername"),
    }
    let out = run("openssl", &args, Some(b""));
    let text = String::from_utf8_lossy(&out.stdout);
    let subject = text
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| panic!("no subject in s_client output:\n{text}"));
    subject
        .rsplit("CN")
        .next()
        .unwrap_or_default()
        .trim_start_matches([' ', '='])
        .trim()
        .to_string()
}

#[test]
fn redis_cli_mutual_tls_and_refusals() {
    let pki = Pki::new();
    let (_server, port) = pki.start(&[]);
    let ca = ["--cacert", pki.ca.ca()];
    let with = |cert| trusting_ca(&pki, cert);
    assert_eq!(cli(port, &with(&pki.default_user), &["PING"]), "PONG");
    assert_eq!(
        cli(port, &with(&pki.alice), &["SET", "k", "over tls"]),
        "OK"
    );
    assert_eq!(cli(port, &with(&pki.alice), &["GET", "k"]), "over tls");

    // Refused: no client certificate while tls-auth-clients is yes (the default), a
    // certificate from another CA, an expired one, and a client that distrusts the server.
    for (what, tls) in [
        ("no client certificate", ca.to_vec()),
        ("foreign CA", with(&pki.foreign)),
        ("expired", with(&pki.expired)),
        (
            "client trusts another CA",
            vec![
                "--cacert",
                pki.other_ca.ca(),
                "--cert",
                pki.default_user.cert(),
                "--key",
                pki.default_user.key(),
            ],
        ),
    ] {
        let reply = cli(port, &tls, &["PING"]);
        assert!(!reply.contains("PONG"), "{what}: {reply}");
    }

    // Plain text on the TLS port never gets a RESP reply.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.write_all(b"PING\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"+PONG"), "{answer:?}");
    assert!(answer.len() < 64, "a TLS alert at most: {answer:?}");

    // The plain port still works beside the TLS one, and INFO shows both listeners.
    let mut client = common::RawClient::connect(_server.port).unwrap();
    let info = String::from_utf8_lossy(&client.command(&["INFO", "server"])).into_owned();
    assert!(
        info.contains(&format!(
            "listener2:name=tls,bind=127.0.0.1,port={port}\r\n"
        )),
        "{info}"
    );
    let serial = run(
        "openssl",
        &["x509", "-noout", "-serial", "-in", pki.server.cert()],
        None,
    );
    let serial = String::from_utf8_lossy(&serial.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    let tls_info = String::from_utf8_lossy(&client.command(&["INFO", "tls"])).into_owned();
    assert!(
        tls_info.contains(&format!("tls_server_cert_serial:{serial}\r\n")),
        "{tls_info}"
    );
    assert!(!tls_info.contains("tls_ca_cert_serial:none"), "{tls_info}");
}

#[test]
fn optional_client_certificate_and_ca_directory() {
    let pki = Pki::new();
    let (_server, port) = pki.start(&[
        "--tls-ca-cert-file",
        "",
        "--tls-ca-cert-dir",
        &pki.ca_dir,
        "--tls-auth-clients",
        "optional",
    ]);
    assert_eq!(cli(port, &["--cacert", pki.ca.ca()], &["PING"]), "PONG");
    assert_eq!(cli(port, &["--cacertdir", &pki.ca_dir], &["PING"]), "PONG");
    let with_cert = |c: &Issued| {
        cli(
            port,
            &[
                "--cacert",
                pki.ca.ca(),
                "--cert",
                c.cert(),
                "--key",
                c.key(),
            ],
            &["PING"],
        )
    };
    assert_eq!(with_cert(&pki.alice), "PONG");
    // A certificate that is presented is still checked.
    assert!(!with_cert(&pki.foreign).contains("PONG"));
    assert!(!with_cert(&pki.expired).contains("PONG"));
}

#[test]
fn sni_picks_the_certificate() {
    let pki = Pki::new();
    let sni = format!("alt.example {} {}", pki.alt.cert(), pki.alt.key());
    let (_server, port) = pki.start(&["--tls-sni-cert", &sni]);
    assert_eq!(presented_cn(&pki, port, Some("alt.example")), "alt");
    assert_eq!(presented_cn(&pki, port, Some("other.example")), "server");
    assert_eq!(presented_cn(&pki, port, None), "server");
    let tls = [
        "--cacert",
        pki.ca.ca(),
        "--cert",
        pki.alice.cert(),
        "--key",
        pki.alice.key(),
        "--sni",
        "alt.example",
    ];
    assert_eq!(cli(port, &tls, &["PING"]), "PONG");
}

#[test]
fn config_set_reloads_certificates_for_new_connections() {
    let pki = Pki::new();
    let (server, port) = pki.start(&[]);
    let mut admin = common::RawClient::connect(server.port).unwrap();
    assert_eq!(presented_cn(&pki, port, None), "server");

    // A bad certificate is refused and the current one stays.
    let missing = pki.dir.0.join("missing.crt");
    let reply = admin.command(&["CONFIG", "SET", "tls-cert-file", missing.to_str().unwrap()]);
    assert_eq!(
        common::show(&reply),
        common::show(b"-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.\r\n")
    );
    // A certificate with another certificate's key is refused too.
    let reply = admin.command(&["CONFIG", "SET", "tls-cert-file", pki.renewed.cert()]);
    assert!(reply.starts_with(b"-ERR CONFIG SET failed"));
    let reply = admin.command(&["CONFIG", "GET", "tls-cert-file"]);
    assert!(common::show(&reply).contains(pki.server.cert()));
    assert_eq!(presented_cn(&pki, port, None), "server");

    let reply = admin.command(&[
        "CONFIG",
        "SET",
        "tls-cert-file",
        pki.renewed.cert(),
        "tls-key-file",
        pki.renewed.key(),
    ]);
    assert_eq!(reply, b"+OK\r\n");
    assert_eq!(presented_cn(&pki, port, None), "renewed");
    let tls = [
        "--cacert",
        pki.ca.ca(),
        "--cert",
        pki.alice.cert(),
        "--key",
        pki.alice.key(),
    ];
    assert_eq!(cli(port, &tls, &["PING"]), "PONG");

    // Client authentication can be relaxed at run time.
    assert!(!cli(port, &["--cacert", pki.ca.ca()], &["PING"]).contains("PONG"));
    let reply = admin.command(&["CONFIG", "SET", "tls-auth-clients", "optional"]);
    assert_eq!(reply, b"+OK\r\n");
    assert_eq!(cli(port, &["--cacert", pki.ca.ca()], &["PING"]), "PONG");
}

#[test]
fn auto_reload_picks_up_renewed_files() {
    let pki = Pki::new();
    // The server reads copies, which the test then overwrites as a renewal would.
    let cert = pki.dir.0.join("live.crt");
    let key = pki.dir.0.join("live.key");
    std::fs::copy(&pki.server.cert_file, &cert).unwrap();
    std::fs::copy(&pki.server.key_file, &key).unwrap();
    let (_server, port) = pki.start(&[
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-auto-reload-interval",
        "1",
    ]);
    assert_eq!(presented_cn(&pki, port, None), "server");
    std::fs::copy(&pki.renewed.key_file, &key).unwrap();
    std::fs::copy(&pki.renewed.cert_file, &cert).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cn = presented_cn(&pki, port, None);
        if cn == "renewed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {cn}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (a little: the old accept loop stops on its worker) until nothing listens on `port`.
fn assert_closes(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} still open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn config_set_moves_the_listeners() {
    let pki = Pki::new();
    let (server, port) = pki.start(&["--tls-auth-clients", "no"]);
    let trust = ["--cacert", pki.ca.ca()];
    let mut admin = common::RawClient::connect(server.port).unwrap();
    let new_tls = free_port();
    let reply = admin.command(&["CONFIG", "SET", "tls-port", &new_tls.to_string()]);
    assert_eq!(reply, b"+OK\r\n");
    assert_eq!(cli(new_tls, &trust, &["PING"]), "PONG");
    assert_closes(port);
    // A port that cannot be bound is refused, and the listener stays where it was.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let reply = admin.command(&["CONFIG", "SET", "tls-port", &taken_port]);
    assert_eq!(
        common::show(&reply),
        common::show(b"-ERR CONFIG SET failed (possibly related to argument 'tls-port') - Unable to listen on this port. Check server logs.\r\n")
    );
    assert_eq!(cli(new_tls, &trust, &["PING"]), "PONG");
    // tls-port 0 closes TLS; the plain port moves the same way.
    assert_eq!(
        admin.command(&["CONFIG", "SET", "tls-port", "0"]),
        b"+OK\r\n"
    );
    assert_closes(new_tls);
    let new_plain = free_port();
    let reply = admin.command(&["CONFIG", "SET", "port", &new_plain.to_string()]);
    assert_eq!(reply, b"+OK\r\n");
    let mut moved = common::RawClient::connect(new_plain).unwrap();
    assert_eq!(moved.command(&["PING"]), b"+PONG\r\n");
    // The connection that made the changes is still served.
    assert_eq!(admin.command(&["PING"]), b"+PONG\r\n");
}

#[test]
fn certificate_names_the_user() {
    let pki = Pki::new();
    let (server, port) = pki.start(&["--requirepass", "secret", "--tls-auth-clients-user", "CN"]);
    let tls = |cert| trusting_ca(&pki, cert);
    // CN=default names the default user: no password needed.
    assert_eq!(cli(port, &tls(&pki.default_user), &["PING"]), "PONG");
    // CN=alice names no user: AUTH is needed as usual, and the miss is counted.
    assert!(cli(port, &tls(&pki.alice), &["PING"]).contains("NOAUTH"));
    let mut admin = common::RawClient::connect(server.port).unwrap();
    admin.command(&["AUTH", "secret"]);
    let stats = String::from_utf8_lossy(&admin.command(&["INFO", "stats"])).into_owned();
    assert!(
        stats.contains("acl_access_denied_tls_cert:1\r\n"),
        "{stats}"
    );
    let log = String::from_utf8_lossy(&admin.command(&["ACL", "LOG"])).into_owned();
    assert!(log.contains("tls-cert") && log.contains("alice"), "{log}");
    // Once alice exists and is enabled, her certificate logs her in as herself; a disabled
    // user is not logged in.
    admin.command(&["ACL", "SETUSER", "alice", "on", "nopass", "+@all", "~*"]);
    assert_eq!(cli(port, &tls(&pki.alice), &["ACL", "WHOAMI"]), "alice");
    admin.command(&["ACL", "SETUSER", "alice", "off"]);
    assert!(cli(port, &tls(&pki.alice), &["PING"]).contains("NOAUTH"));
    // Off again: the certificate no longer logs anybody in.
    assert_eq!(
        admin.command(&["CONFIG", "SET", "tls-auth-clients-user", "off"]),
        b"+OK\r\n"
    );
    assert!(cli(port, &tls(&pki.default_user), &["PING"]).contains("NOAUTH"));
}

#[test]
fn redis_py_over_tls() {
    let pki = Pki::new();
    let (_server, port) = pki.start(&["--tls-auth-clients", "optional"]);
    let script = r#"
import sys, redis
port, ca, ca_dir, cert, key = sys.argv[1:6]
r = redis.Redis(port=port, ssl=True, ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key,
                decode_responses=True, socket_timeout=10)
assert r.set("py", "tls") is True
assert r.get("py") == "tls"
pipe = r.pipeline(transaction=True)
pipe.incr("n").incr("n")
assert pipe.execute() == [1, 2]
big = "x" * 300000
r.set("big", big)
assert r.get("big") == big
r2 = redis.Redis(port=port, ssl=True, ssl_ca_path=ca_dir, decode_responses=True,
                 socket_timeout=10)
assert r2.get("py") == "tls"
try:
    from redis.retry import Retry
    from redis.backoff import NoBackoff
    redis.Redis(port=port, ssl=True, ssl_ca_certs=sys.argv[6], socket_timeout=10,
                retry=Retry(NoBackoff(), 0)).ping()
    raise SystemExit("a server certificate from an untrusted CA was accepted")
except redis.exceptions.ConnectionError:
    pass
print("ok")
"#;
    let port = port.to_string();
    let out = run(
        "python3",
        &[
            "-c",
            script,
            &port,
            pki.ca.ca(),
            &pki.ca_dir,
            pki.alice.cert(),
            pki.alice.key(),
            pki.other_ca.ca(),
        ],
        None,
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "redis-py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_tls_configuration_stops_start_up() {
    let pki = Pki::new();
    let out = Command::new("timeout")
        .arg("20")
        .arg(common::ferrokv_binary())
        .args(["--port", "0", "--tls-port", &free_port().to_string()])
        .args(["--tls-cert-file", pki.server.cert()])
        .args(["--tls-key-file", pki.alice.key()])
        .current_dir(Path::new(&pki.dir.0))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("Failed to configure TLS. Check logs for more info."),
        "{log}"
    );
}

/// A client refused at `maxclients` on the TLS port counts in `rejected_connections` at once,
/// whether or not it ever completes a handshake (one never starts one, one sends plain
/// text): the same count redis-server 7.0 reports for the same clients.
#[test]
fn refused_tls_clients_count_without_a_handshake() {
    let pki = Pki::new();
    let (ferrokv, ferrokv_tls) = pki.start(&["--maxclients", "1", "--tls-auth-clients", "no"]);
    let redis_tls = free_port().to_string();
    let mut redis_args = pki.tls_args(&redis_tls);
    redis_args.extend_from_slice(&["--maxclients", "1", "--tls-auth-clients", "no"]);
    let redis = common::start_redis7(&redis_args);
    let mut counts = Vec::new();
    for (server, tls_port) in [
        (&ferrokv, ferrokv_tls),
        (&redis, redis_tls.parse().unwrap()),
    ] {
        let mut holder = common::RawClient::connect(server.port).unwrap();
        assert_eq!(holder.command(&["PING"]), b"+PONG\r\n", "{}", server.name);
        let silent = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        let mut plain = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        plain.write_all(b"PING\r\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let count = loop {
            let count = common::info_field_of(&mut holder, "stats", "rejected_connections")
                .unwrap_or_default();
            if count == "2" || std::time::Instant::now() > deadline {
                break count;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop((silent, plain));
        counts.push(count);
    }
    assert_eq!(counts, ["2", "2"], "ferrokv, redis 7.0");
}
