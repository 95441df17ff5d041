//! Handshakes between configurations built from settings, over in-memory pipes.

use std::path::PathBuf;

use ferrokv_tls::test_pki::{Issued, Spec, TestCa};
use ferrokv_tls::{
    ClientAuth, ClientTls, ServerTls, SniCert, TlsSettings, UserField, build_client, build_server,
    certificate_usernames,
};

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ferrokv-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec<'a>(cn: &'a str, dns: &'a [&'a str]) -> Spec<'a> {
    Spec {
        common_name: cn,
        dns,
        ..Spec::default()
    }
}

fn server_settings(ca: &TestCa, cert: &Issued) -> TlsSettings {
    TlsSettings {
        cert_file: cert.cert().into(),
        key_file: cert.key().into(),
        ca_cert_file: ca.ca().into(),
        session_caching: true,
        session_cache_size: 100,
        session_cache_timeout: 300,
        ..TlsSettings::default()
    }
}

fn client_with(ca: &TestCa, cert: Option<&Issued>) -> ClientTls {
    build_client(&TlsSettings {
        ca_cert_file: ca.ca().into(),
        cert_file: cert.map(|c| c.cert().to_string()).unwrap_or_default(),
        key_file: cert.map(|c| c.key().to_string()).unwrap_or_default(),
        ..TlsSettings::default()
    })
    .unwrap()
}

/// What each side saw of a completed handshake.
#[derive(Debug)]
struct Seen {
    /// CommonName of the certificate the server presented.
    server_cn: String,
    /// Users the client certificate names (per the server's `user_field`).
    client_users: Vec<String>,
    version: String,
}

async fn handshake(server: &ServerTls, client: &ClientTls, sni: &str) -> Result<Seen, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (near, far) = tokio::io::duplex(64 * 1024);
    let serve = async {
        let mut stream = server
            .acceptor
            .accept(near)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(b"PONG").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let conn = stream.get_ref().1;
        let users = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| certificate_usernames(c, server.user_field))
            .unwrap_or_default();
        Ok::<_, String>(users)
    };
    let call = async {
        let mut stream = client.connect(sni, far).await.map_err(|e| e.to_string())?;
        stream.write_all(b"PING").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        let conn = stream.get_ref().1;
        let cn = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| certificate_usernames(c, UserField::CommonName).join(","))
            .unwrap_or_default();
        let version = format!("{:?}", conn.protocol_version());
        Ok::<_, String>((cn, version))
    };
    let (served, called) = tokio::join!(serve, call);
    let client_users = served?;
    let (server_cn, version) = called?;
    Ok(Seen {
        server_cn,
        client_users,
        version,
    })
}

#[tokio::test]
async fn mutual_tls_sni_and_client_identity() {
    let dir = Scratch::new("mutual");
    let ca = TestCa::new(&dir.0, "ca").unwrap();
    let main = ca.issue("main", &spec("main", &["localhost"])).unwrap();
    let alt = ca.issue("alt", &spec("alt", &["alt.example.com"])).unwrap();
    let wild = ca
        .issue("wild", &spec("wild", &["*.wild.example"]))
        .unwrap();
    let alice = ca
        .issue(
            "alice",
            &Spec {
                common_name: "alice",
                uris: &["urn:valkey:user:alice", "alice"],
                ..Spec::default()
            },
        )
        .unwrap();
    let mut settings = server_settings(&ca, &main);
    settings.sni_certs = vec![
        SniCert {
            server_name: "alt.example.com".into(),
            cert_file: alt.cert().into(),
            key_file: alt.key().into(),
        },
        SniCert {
            server_name: "*.wild.example".into(),
            cert_file: wild.cert().into(),
            key_file: wild.key().into(),
        },
    ];
    settings.auth_clients_user = UserField::Uri;
    let server = build_server(&settings).unwrap();
    let client = client_with(&ca, Some(&alice));

    let seen = handshake(&server, &client, "localhost").await.unwrap();
    assert_eq!(seen.server_cn, "main");
    assert_eq!(seen.client_users, ["urn:valkey:user:alice", "alice"]);
    assert_eq!(seen.version, "Some(TLSv1_3)");
    let seen = handshake(&server, &client, "ALT.example.com")
        .await
        .unwrap();
    assert_eq!(seen.server_cn, "alt");
    let seen = handshake(&server, &client, "a.wild.example").await.unwrap();
    assert_eq!(seen.server_cn, "wild");
    // An unknown name, or an IP address (never sent as SNI), gets tls-cert-file.
    for name in ["unknown.example", "127.0.0.1"] {
        let seen = handshake(&server, &client, name).await.unwrap();
        assert_eq!(seen.server_cn, "main", "{name}");
    }
}

#[tokio::test]
async fn client_certificates_are_checked() {
    let dir = Scratch::new("auth");
    let ca = TestCa::new(&dir.0, "ca").unwrap();
    let other_ca = TestCa::new(&dir.0.join("other"), "other").unwrap();
    let main = ca.issue("main", &spec("main", &["localhost"])).unwrap();
    let good = ca.issue("good", &spec("good", &[])).unwrap();
    let foreign = other_ca.issue("foreign", &spec("foreign", &[])).unwrap();
    let expired = ca
        .issue(
            "expired",
            &Spec {
                common_name: "expired",
                expired: true,
                ..Spec::default()
            },
        )
        .unwrap();

    let mut settings = server_settings(&ca, &main);
    settings.auth_clients_user = UserField::CommonName;
    let required = build_server(&settings).unwrap();
    settings.auth_clients = ClientAuth::Optional;
    let optional = build_server(&settings).unwrap();
    settings.auth_clients = ClientAuth::No;
    let none = build_server(&settings).unwrap();

    let with_good = client_with(&ca, Some(&good));
    let anonymous = client_with(&ca, None);
    let seen = handshake(&required, &with_good, "localhost").await.unwrap();
    assert_eq!(seen.client_users, ["good"]);
    assert!(handshake(&required, &anonymous, "localhost").await.is_err());
    for refused in [&foreign, &expired] {
        for server in [&required, &optional] {
            let client = client_with(&ca, Some(refused));
            let outcome = handshake(server, &client, "localhost").await;
            assert!(outcome.is_err(), "{refused:?} accepted");
        }
    }
    let seen = handshake(&optional, &anonymous, "localhost").await.unwrap();
    assert!(seen.client_users.is_empty());
    assert_eq!(
        handshake(&optional, &with_good, "localhost")
            .await
            .unwrap()
            .client_users,
        ["good"]
    );
    // With tls-auth-clients no, a certificate is not even asked for.
    let seen = handshake(&none, &with_good, "localhost").await.unwrap();
    assert!(seen.client_users.is_empty());

    // A client trusting another CA refuses the server.
    let distrustful = client_with(&other_ca, None);
    assert!(
        handshake(&optional, &distrustful, "localhost")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn versions_suites_and_ca_directory() {
    let dir = Scratch::new("versions");
    let ca = TestCa::new(&dir.0.join("cadir"), "ca").unwrap();
    let main = ca.issue("main", &spec("main", &["localhost"])).unwrap();
    let mut settings = server_settings(&ca, &main);
    settings.ca_cert_file.clear();
    settings.ca_cert_dir = dir.0.join("cadir").to_string_lossy().into_owned();
    settings.auth_clients = ClientAuth::Optional;
    settings.protocols = "TLSv1.2".into();
    settings.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305".into();
    let server = build_server(&settings).unwrap();
    let client = client_with(&ca, Some(&main));
    let seen = handshake(&server, &client, "localhost").await.unwrap();
    assert_eq!(seen.version, "Some(TLSv1_2)");

    // Only RSA suites for an ECDSA certificate: no handshake can agree.
    settings.ciphers = "ECDHE-RSA-AES128-GCM-SHA256".into();
    let server = build_server(&settings).unwrap();
    assert!(handshake(&server, &client, "localhost").await.is_err());
    // Nothing left at all is a configuration error.
    settings.ciphers = "DHE-RSA-AES256-SHA".into();
    assert!(build_server(&settings).is_err());
    settings.protocols = "TLSv1.1".into();
    assert!(build_server(&settings).is_err());
}

#[test]
fn keys_encrypted_mismatched_or_missing() {
    let dir = Scratch::new("keys");
    let ca = TestCa::new(&dir.0, "ca").unwrap();
    let main = ca.issue("main", &spec("main", &["localhost"])).unwrap();
    let other = ca.issue("other", &spec("other", &[])).unwrap();
    let base = server_settings(&ca, &main);

    let encrypted = dir.0.join("encrypted.key");
    let status = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:s3cret",
        ])
        .arg("-in")
        .arg(&main.key_file)
        .arg("-out")
        .arg(&encrypted)
        .status()
        .expect("openssl CLI");
    assert!(status.success());
    let mut settings = base.clone();
    settings.key_file = encrypted.to_string_lossy().into_owned();
    let no_pass = build_server(&settings).unwrap_err();
    assert!(no_pass.0.contains("no passphrase"), "{no_pass}");
    settings.key_file_pass = "wrong".into();
    assert!(build_server(&settings).is_err());
    settings.key_file_pass = "s3cret".into();
    build_server(&settings).unwrap();

    let legacy = dir.0.join("legacy.key");
    std::fs::write(
        &legacy,
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    settings.key_file = legacy.to_string_lossy().into_owned();
    assert!(build_server(&settings).unwrap_err().0.contains("pkcs8"));

    let mut settings = base.clone();
    settings.key_file = other.key().into();
    let mismatch = build_server(&settings).unwrap_err();
    assert!(
        mismatch.0.contains("Failed to load certificate"),
        "{mismatch}"
    );

    let mut settings = base.clone();
    settings.cert_file.clear();
    assert_eq!(
        build_server(&settings).unwrap_err().0,
        "No tls-cert-file configured!"
    );
    let mut settings = base.clone();
    settings.ca_cert_file.clear();
    assert!(
        build_server(&settings)
            .unwrap_err()
            .0
            .starts_with("Either tls-ca-cert-file")
    );
    settings.auth_clients = ClientAuth::No;
    build_server(&settings).unwrap();
    settings.cert_file = dir.0.join("missing.crt").to_string_lossy().into_owned();
    assert!(
        build_server(&settings)
            .unwrap_err()
            .0
            .contains("missing.crt")
    );
}

#[test]
fn a_failed_reload_keeps_the_current_context() {
    let dir = Scratch::new("reload");
    let ca = TestCa::new(&dir.0, "ca").unwrap();
    let main = ca.issue("main", &spec("main", &["localhost"])).unwrap();
    let mut config = ferrokv_config::Config {
        tls_port: 1,
        tls_cert_file: main.cert().into(),
        tls_key_file: main.key().into(),
        tls_ca_cert_file: ca.ca().into(),
        ..Default::default()
    };
    ferrokv_tls::configure(&config).unwrap();
    let before = ferrokv_tls::current().unwrap();
    let info = before.server_cert.clone().unwrap();
    assert!(info.expires_in(0) > 0);
    assert!(before.ca_cert.is_some());
    config.tls_key_file = "/nonexistent.key".into();
    assert!(ferrokv_tls::configure(&config).is_err());
    assert!(std::sync::Arc::ptr_eq(
        &before,
        &ferrokv_tls::current().unwrap()
    ));
    config.tls_port = 0;
    ferrokv_tls::configure(&config).unwrap();
    assert!(ferrokv_tls::current().is_none());
}
