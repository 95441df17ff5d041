//! ACL on real servers: the ACL file (LOAD/SAVE, errors compared with the oracle), `user`
//! directives, disconnections on DELUSER and on lost channel permissions, CLIENT LIST/KILL
//! USER, INFO counters, and a brute force of wrong passwords.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, TempDir, ferrokv_binary, show, start_ferrokv, start_valkey};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// An INFO field as an integer.
fn info_field(client: &mut RawClient, section: &str, field: &str) -> i64 {
    let info = text(&client.command(&["INFO", section]));
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in INFO {section}"))
}

/// Whether the server closed this connection (reads EOF or an error within the timeout).
fn is_closed(client: &mut RawClient) -> bool {
    client.send_raw(b"*1\r\n$4\r\nPING\r\n");
    client.read_reply().is_err()
}

#[test]
fn acl_file_load_save_round_trip() {
    let dir = TempDir::new("aclfile");
    let path = dir.0.join("users.acl");
    std::fs::write(
        &path,
        "# users\nuser default on nopass ~* &* +@all\nuser alice on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 %R~a* resetchannels &news db=0,1 -@all +get (~b* +set)\n",
    )
    .unwrap();
    let path_text = path.to_string_lossy().into_owned();
    let server = start_ferrokv(&["--aclfile", &path_text]);
    let mut c = RawClient::connect(server.port).unwrap();
    assert_eq!(
        text(&c.command(&["ACL", "LIST"])),
        "*2\r\n$154\r\nuser alice on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 %R~a* resetchannels &news db=0,1 -@all +get (~b* resetchannels -@all +set)\r\n$34\r\nuser default on nopass ~* &* +@all\r\n"
    );
    let mut alice = RawClient::connect(server.port).unwrap();
    assert_eq!(alice.command(&["AUTH", "alice", "password"]), b"+OK\r\n");
    assert_eq!(alice.command(&["GET", "a1"]), b"$-1\r\n");

    // SAVE writes what LIST shows, one user per line.
    assert_eq!(
        c.command(&["ACL", "SETUSER", "bob", "on", ">pw", "+@all", "~*"]),
        b"+OK\r\n"
    );
    assert_eq!(c.command(&["ACL", "SAVE"]), b"+OK\r\n");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(saved.lines().count(), 3, "{saved}");
    assert!(saved.starts_with("user alice on #5e88"), "{saved}");
    assert!(saved.contains("\nuser bob on #"), "{saved}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");

    // LOAD replaces the users; alice changed, so her connection is closed.
    std::fs::write(&path, "user alice on nopass ~* +@all\nuser carol off\n").unwrap();
    assert_eq!(c.command(&["ACL", "LOAD"]), b"+OK\r\n");
    assert_eq!(
        text(&c.command(&["ACL", "USERS"])),
        "*3\r\n$5\r\nalice\r\n$5\r\ncarol\r\n$7\r\ndefault\r\n"
    );
    assert!(is_closed(&mut alice), "alice's client survived ACL LOAD");
    assert_eq!(
        c.command(&["PING"]),
        b"+PONG\r\n",
        "the default user's client stays"
    );
}

#[test]
fn acl_load_errors_match_the_oracle() {
    let dir = TempDir::new("aclerr");
    let good = dir.0.join("good.acl");
    std::fs::write(&good, "user a on nopass\n").unwrap();
    let good_text = good.to_string_lossy().into_owned();
    let ours = start_ferrokv(&["--aclfile", &good_text]);
    let theirs = start_valkey(&["--aclfile", &good_text]);
    let mut o = RawClient::connect(ours.port).unwrap();
    let mut t = RawClient::connect(theirs.port).unwrap();
    for bad in [
        "user a on nopass\nuser a off\nbogus line\nuser c badrule +nosuch\n",
        "user x (~a +get\n",
        "user y on \"unbalanced\n",
    ] {
        std::fs::write(&good, bad).unwrap();
        let (a, b) = (o.command(&["ACL", "LOAD"]), t.command(&["ACL", "LOAD"]));
        assert_eq!(show(&a), show(&b), "ACL LOAD of {bad:?}");
        let (a, b) = (o.command(&["ACL", "LIST"]), t.command(&["ACL", "LIST"]));
        assert_eq!(show(&a), show(&b), "users after a failed LOAD");
    }
    std::fs::remove_file(&good).unwrap();
    let (a, b) = (o.command(&["ACL", "LOAD"]), t.command(&["ACL", "LOAD"]));
    assert_eq!(show(&a), show(&b), "ACL LOAD of a missing file");
    // Without an aclfile, SAVE and LOAD refuse.
    let plain = start_ferrokv(&[]);
    let mut p = RawClient::connect(plain.port).unwrap();
    assert!(
        text(&p.command(&["ACL", "SAVE"]))
            .starts_with("-ERR This instance is not configured to use an ACL file.")
    );
}

#[test]
fn user_directives_and_aclfile_are_exclusive() {
    let server = start_ferrokv(&[
        "--user", "alice", "on", ">secret", "~*", "&*", "+@all", "--user", "default", "on",
        "nopass", "-@all", "+ping", "+auth", "+info",
    ]);
    let mut c = RawClient::connect(server.port).unwrap();
    assert!(text(&c.command(&["ACL", "LIST"])).starts_with("-NOPERM"));
    assert_eq!(c.command(&["AUTH", "alice", "secret"]), b"+OK\r\n");
    let list = text(&c.command(&["ACL", "LIST"]));
    assert!(list.starts_with("*2\r\n"), "{list}");
    assert!(list.contains("\r\nuser alice on #"), "{list}");
    assert!(list.contains(" ~* &* +@all\r\n"), "{list}");
    assert!(
        list.contains("\r\nuser default on nopass resetchannels -@all +ping +auth +info\r\n"),
        "{list}"
    );
    assert_eq!(c.command(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(c.command(&["AUTH", "default", "x"]), b"+OK\r\n");
    assert!(text(&c.command(&["GET", "k"])).starts_with("-NOPERM"));

    // Both at once: the server refuses to start, as Valkey does.
    let dir = TempDir::new("aclboth");
    let path = dir.0.join("users.acl");
    std::fs::write(&path, "user a on nopass\n").unwrap();
    let out = std::process::Command::new(ferrokv_binary())
        .args([
            "--port",
            "0",
            "--aclfile",
            &path.to_string_lossy(),
            "--user",
            "b",
            "on",
        ])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("please define either an ACL file or declare users directly"),
        "{log}"
    );
}

#[test]
fn deleting_a_user_or_its_channels_disconnects_its_clients() {
    let server = start_ferrokv(&[]);
    let mut admin = RawClient::connect(server.port).unwrap();
    assert_eq!(
        admin.command(&["ACL", "SETUSER", "u", "on", ">pw", "~*", "&news*", "+@all"]),
        b"+OK\r\n"
    );
    let mut worker = RawClient::connect(server.port).unwrap();
    assert_eq!(worker.command(&["AUTH", "u", "pw"]), b"+OK\r\n");
    let mut subscriber = RawClient::connect(server.port).unwrap();
    assert_eq!(subscriber.command(&["AUTH", "u", "pw"]), b"+OK\r\n");
    assert!(
        subscriber
            .command(&["SUBSCRIBE", "news1"])
            .starts_with(b"*3\r\n")
    );

    // CLIENT LIST shows the user; CLIENT LIST USER filters by it.
    let listed = text(&admin.command(&["CLIENT", "LIST", "USER", "u"]));
    assert_eq!(listed.matches("user=u ").count(), 2, "{listed}");
    assert!(
        text(&admin.command(&["CLIENT", "LIST", "USER", "nobody"]))
            .starts_with("-ERR No such user 'nobody'")
    );

    // Narrowing the channels drops the subscriber whose channel is no longer allowed.
    assert_eq!(
        admin.command(&["ACL", "SETUSER", "u", "resetchannels", "&other"]),
        b"+OK\r\n"
    );
    assert!(
        is_closed(&mut subscriber),
        "subscriber survived losing its channel"
    );
    assert_eq!(worker.command(&["PING"]), b"+PONG\r\n");

    // DELUSER closes every connection of the user.
    assert_eq!(admin.command(&["ACL", "DELUSER", "u"]), b":1\r\n");
    assert!(is_closed(&mut worker), "client survived DELUSER");

    // CLIENT KILL USER.
    assert_eq!(
        admin.command(&["ACL", "SETUSER", "v", "on", "nopass", "+@all"]),
        b"+OK\r\n"
    );
    let mut v = RawClient::connect(server.port).unwrap();
    assert_eq!(v.command(&["AUTH", "v", "x"]), b"+OK\r\n");
    assert_eq!(admin.command(&["CLIENT", "KILL", "USER", "v"]), b":1\r\n");
    assert!(is_closed(&mut v));
}

#[test]
fn denials_are_counted_in_info() {
    let server = start_ferrokv(&[]);
    let mut c = RawClient::connect(server.port).unwrap();
    c.command(&[
        "ACL", "SETUSER", "u", "on", "nopass", "~k", "&c", "+@all", "-flushdb", "db=0",
    ]);
    let mut u = RawClient::connect(server.port).unwrap();
    u.command(&["AUTH", "u", "wrong-but-nopass"]);
    u.command(&["AUTH", "nouser", "x"]);
    u.command(&["FLUSHDB"]);
    u.command(&["GET", "x"]);
    u.command(&["GET", "x"]);
    u.command(&["PUBLISH", "x", "m"]);
    u.command(&["SELECT", "1"]);
    let expect = [
        ("acl_access_denied_auth", 1),
        ("acl_access_denied_cmd", 1),
        ("acl_access_denied_key", 2),
        ("acl_access_denied_channel", 1),
        ("acl_access_denied_db", 1),
    ];
    for (field, n) in expect {
        assert_eq!(info_field(&mut c, "stats", field), n, "{field}");
    }
    // The two GET x denials are one log entry counted twice.
    let log = text(&c.command(&["ACL", "LOG"]));
    assert!(log.starts_with("*5\r\n"), "{log}");
    assert!(
        log.contains("$5\r\ncount\r\n:2\r\n$6\r\nreason\r\n$3\r\nkey\r\n"),
        "{log}"
    );
    assert!(log.contains("cmd=select user=u "), "{log}");
    c.command(&["CONFIG", "SET", "acllog-max-len", "2"]);
    c.command(&["AUTH", "nouser", "x"]);
    assert!(text(&c.command(&["ACL", "LOG"])).starts_with("*2\r\n"));
    c.command(&["CONFIG", "RESETSTAT"]);
    assert_eq!(info_field(&mut c, "stats", "acl_access_denied_key"), 0);
}

#[test]
fn brute_force_does_not_starve_others_or_grow_memory() {
    let server = start_ferrokv(&["--requirepass", "correct horse"]);
    let port = server.port;
    let mut probe = RawClient::connect(port).unwrap();
    assert_eq!(probe.command(&["AUTH", "correct horse"]), b"+OK\r\n");
    let memory_before = info_field(&mut probe, "memory", "used_memory");

    let attacker = std::thread::spawn(move || {
        let mut c = RawClient::connect(port).unwrap();
        let batch: Vec<u8> = (0..100)
            .flat_map(|i| common::encode(&["AUTH", "default", &format!("guess{i}")]))
            .collect();
        for _ in 0..100 {
            c.send_raw(&batch);
            for _ in 0..100 {
                let reply = c.read_reply().expect("attacker reply");
                assert!(reply.starts_with(b"-WRONGPASS"), "{}", show(&reply));
            }
        }
    });
    let started = Instant::now();
    let mut pings = 0;
    while !attacker.is_finished() {
        assert_eq!(probe.command(&["PING"]), b"+PONG\r\n");
        pings += 1;
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "brute force took too long"
        );
    }
    attacker.join().unwrap();
    assert!(pings > 0);
    assert_eq!(
        info_field(&mut probe, "stats", "acl_access_denied_auth"),
        10_000
    );
    // Repeated failures fold into one log entry: the log does not grow with the attack.
    let log = text(&probe.command(&["ACL", "LOG"]));
    assert!(log.starts_with("*1\r\n"), "{}", &log[..log.len().min(200)]);
    assert!(log.contains("count\r\n:10000\r\n"));
    let memory_after = info_field(&mut probe, "memory", "used_memory");
    assert!(
        memory_after - memory_before < 4 << 20,
        "used_memory grew from {memory_before} to {memory_after}"
    );
}
