//! COMMANDLOG (Valkey 8.1): the large-request and large-reply logs measure what the oracle
//! measures (requests as sent, inline ones included; replies with their errors; the queued
//! commands of EXEC and a script's calls), and the slow log stays SLOWLOG's. Entries are
//! compared with the oracle's without their timestamps and client ports.

mod common;

use common::{RawClient, ServerProcess, show, split_elements, start_ferrokv, start_valkey};

/// What one client does; returns each log's entries without id, time and port.
fn session(server: &ServerProcess) -> Vec<String> {
    let mut admin = RawClient::connect(server.port).expect("connect");
    for kind in ["slow", "large-request", "large-reply"] {
        admin.command(&["COMMANDLOG", "RESET", kind]);
    }
    let mut c = RawClient::connect(server.port).expect("connect");
    c.command(&["CLIENT", "SETNAME", "app"]);
    c.command(&["SET", "k", "123456789012345678901234567890"]);
    c.command(&["GET", "k"]);
    c.command(&["LPUSH", "k", "x"]);
    c.send_raw(b"ECHO   inline-request-of-some-length\r\n");
    c.read_reply().expect("inline reply");
    c.command(&["MULTI"]);
    c.command(&["SET", "k2", "abcdefghijabcdefghijabcdefghij"]);
    c.command(&["GET", "k2"]);
    c.command(&["EXEC"]);
    c.command(&[
        "EVAL",
        "redis.call('set','k3','abcdefghijabcdefghijabcdefghij'); return redis.call('get','k3')",
        "0",
    ]);
    c.command(&["MGET", "k", "k2", "k3", "nothing"]);
    // Secrets never reach the logs, whether the command succeeds or fails.
    c.command(&["ACL", "SETUSER", "bob", ">secret", "on"]);
    c.command(&["ACL", "SETUSER", "bad name", ">secret"]);
    c.command(&["ACL", "GETUSER", "bob"]);
    c.command(&["ACL", "DELUSER", "bob", "nobody"]);
    c.command(&[
        "CONFIG",
        "SET",
        "masterauth",
        "pw",
        "maxmemory-samples",
        "5",
    ]);
    c.command(&["CONFIG", "SET", "requirepass", ""]);
    let mut out = Vec::new();
    for kind in ["large-request", "large-reply", "slow"] {
        let reply = admin.command(&["COMMANDLOG", "GET", "-1", kind]);
        let (_, entries) = split_elements(&reply).expect("an array");
        let mut previous_id: Option<i64> = None;
        for entry in entries {
            let (_, fields) = split_elements(&entry).expect("an entry");
            let text: Vec<String> = fields.iter().map(|f| show(f)).collect();
            // id, time, value, args, address, name. Ids count down by one, newest first,
            // from where the start-up probes of the test helpers left them. The time, the
            // port and (for the slow log) the microseconds are the server's own.
            let id: i64 = text[0]
                .trim_start_matches(':')
                .trim_end_matches("\\r\\n")
                .parse()
                .expect("an id");
            if let Some(previous) = previous_id {
                assert_eq!(id, previous - 1, "{kind} ids");
            }
            previous_id = Some(id);
            // COMMANDLOG GET's own reply holds ids and ports, whose digits differ.
            let own_listing = text[3].contains("COMMANDLOG\\r\\n$3\\r\\nGET");
            let value = if kind == "slow" || own_listing {
                "-"
            } else {
                &text[2]
            };
            let addr = text[4].rsplit_once(':').map_or("", |(host, _)| host);
            out.push(format!(
                "{kind} value={value} args={} addr={addr} name={}",
                text[3], text[5]
            ));
        }
        let len = admin.command(&["COMMANDLOG", "LEN", kind]);
        out.push(format!("{kind} len={}", show(&len)));
    }
    out
}

#[test]
fn large_request_and_reply_logs_match_the_oracle() {
    for threshold in ["25", "0", "-1"] {
        let args = [
            "--commandlog-request-larger-than",
            threshold,
            "--commandlog-reply-larger-than",
            threshold,
            "--commandlog-execution-slower-than",
            "0",
        ];
        let want = session(&start_valkey(&args));
        let got = session(&start_ferrokv(&args));
        assert!(want.len() > 3, "{want:?}");
        assert_eq!(got, want, "threshold {threshold}");
    }
}

#[test]
fn commandlog_errors_and_slowlog_share_the_slow_log() {
    let valkey = start_valkey(&[]);
    let ferrokv = start_ferrokv(&[]);
    let probes: &[&[&str]] = &[
        &["CONFIG", "SET", "commandlog-execution-slower-than", "0"],
        &["COMMANDLOG", "RESET", "slow"],
        &["PING"],
        &["SLOWLOG", "LEN"],
        &["COMMANDLOG", "LEN", "slow"],
        &["COMMANDLOG", "LEN", "SLOW"],
        &["SLOWLOG", "RESET"],
        &["COMMANDLOG", "LEN", "slow"],
        &["COMMANDLOG", "GET", "x", "bogus"],
        &["COMMANDLOG", "GET", "-2", "slow"],
        &["COMMANDLOG", "GET", "99999999999999999999", "slow"],
        &["COMMANDLOG", "GET", "1", "bogus"],
        &["COMMANDLOG", "GET", "1"],
        &["COMMANDLOG", "LEN"],
        &["COMMANDLOG", "LEN", "large"],
        &["COMMANDLOG", "RESET", "bogus"],
        &["COMMANDLOG", "FOO"],
        &["COMMANDLOG", "GET", "0", "large-reply"],
        &["CONFIG", "SET", "commandlog-large-reply-max-len", "2"],
        &["CONFIG", "SET", "commandlog-reply-larger-than", "0"],
        &["PING"],
        &["PING"],
        &["PING"],
        &["COMMANDLOG", "LEN", "large-reply"],
        &["CONFIG", "GET", "commandlog-*"],
    ];
    let mut v = RawClient::connect(valkey.port).expect("valkey");
    let mut f = RawClient::connect(ferrokv.port).expect("ferrokv");
    for probe in probes {
        assert_eq!(
            show(&f.command(probe)),
            show(&v.command(probe)),
            "{probe:?}"
        );
    }
}
