//! Client-side caching across connections: each scenario runs on ferrokv (4 worker threads, so
//! the tracking client and the writers live on different threads) and on the oracle
//! valkey-server, and what the tracking client (or its REDIRECT target) receives must be the
//! same. Every read is bounded (10 s read timeout); after the expected frames each scenario
//! sends PING on the receiving connections, so a stray or missing invalidation shows up as a
//! difference in the transcript.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, show, start_ferrokv_on_workers, start_valkey};

struct Session {
    port: u16,
    transcript: Vec<String>,
}

impl Session {
    fn connect(&self) -> RawClient {
        RawClient::connect(self.port).expect("connect")
    }

    /// Sends a command and records its reply under `label`.
    fn run(&mut self, label: &str, client: &mut RawClient, args: &[&str]) {
        let reply = show(&client.command(args));
        self.transcript
            .push(format!("{label} {}: {reply}", args.join(" ")));
    }

    /// Records the next frame `client` receives without sending anything.
    fn read(&mut self, label: &str, client: &mut RawClient) {
        let frame = client
            .read_reply()
            .map(|f| show(&f))
            .unwrap_or_else(|e| format!("<nothing: {e}>"));
        self.transcript.push(format!("{label} <- {frame}"));
    }

    /// Records a reply after masking the integer `id` (client ids differ between servers).
    fn read_masking(&mut self, label: &str, client: &mut RawClient, id: &str) {
        let frame = client.read_reply().map(|f| show(&f)).unwrap_or_default();
        self.transcript
            .push(format!("{label} <- {}", mask_id(&frame, id)));
    }
}

/// `show`n frame with the integer reply `:id` masked.
fn mask_id(frame: &str, id: &str) -> String {
    frame.replace(&format!(":{id}\\r"), ":<id>\\r")
}

fn resp3(session: &Session) -> RawClient {
    let mut c = session.connect();
    c.command(&["HELLO", "3"]);
    c
}

fn client_id(c: &mut RawClient) -> String {
    let reply = String::from_utf8_lossy(&c.command(&["CLIENT", "ID"])).into_owned();
    reply.trim_start_matches(':').trim().to_string()
}

/// Runs `scenario` on both servers and compares the transcripts.
fn compare(name: &str, ferrokv_args: &[&str], scenario: fn(&mut Session)) {
    let ferrokv: ServerProcess = start_ferrokv_on_workers(4, ferrokv_args);
    let valkey: ServerProcess = start_valkey(ferrokv_args);
    let mut ours = Session {
        port: ferrokv.port,
        transcript: Vec::new(),
    };
    let mut theirs = Session {
        port: valkey.port,
        transcript: Vec::new(),
    };
    scenario(&mut ours);
    scenario(&mut theirs);
    assert!(!ours.transcript.is_empty(), "{name}: empty scenario");
    let diffs: Vec<String> = ours
        .transcript
        .iter()
        .zip(&theirs.transcript)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  ferrokv: {a}\n   valkey: {b}"))
        .collect();
    assert!(
        diffs.is_empty() && ours.transcript.len() == theirs.transcript.len(),
        "{name}: transcripts differ:\n{}\nferrokv:\n{}\nvalkey:\n{}",
        diffs.join("\n"),
        ours.transcript.join("\n"),
        theirs.transcript.join("\n")
    );
}

#[test]
fn default_mode_invalidates_reads_once_from_other_threads_and_databases() {
    compare("default", &[], |s| {
        let mut t = resp3(s);
        let mut writers: Vec<RawClient> = (0..4).map(|_| s.connect()).collect();
        s.run("t", &mut t, &["CLIENT", "TRACKING", "on"]);
        s.run("t", &mut t, &["GET", "k"]);
        s.run("t", &mut t, &["MGET", "a", "b"]);
        // Each writer is likely on another worker thread.
        s.run("w0", &mut writers[0], &["SET", "k", "1"]);
        s.read("t", &mut t);
        s.run("w1", &mut writers[1], &["SET", "k", "2"]);
        s.run("t", &mut t, &["PING"]);
        s.run("w2", &mut writers[2], &["DEL", "a", "b", "c"]);
        s.run("t", &mut t, &["PING"]);
        s.run("w2", &mut writers[2], &["MSET", "a", "1", "b", "2"]);
        s.read("t", &mut t);
        s.read("t", &mut t);
        // The table ignores databases, as in Valkey.
        s.run("t", &mut t, &["GET", "k"]);
        s.run("w3", &mut writers[3], &["SELECT", "5"]);
        s.run("w3", &mut writers[3], &["SET", "k", "x"]);
        s.read("t", &mut t);
        // A write that changes nothing is not an invalidation.
        s.run("t", &mut t, &["GET", "k"]);
        s.run("w0", &mut writers[0], &["SET", "k", "v", "NX"]);
        s.run("w0", &mut writers[0], &["SADD", "k2", "m"]);
        s.run("t", &mut t, &["SMEMBERS", "k2"]);
        s.run("w0", &mut writers[0], &["SADD", "k2", "m"]);
        s.run("t", &mut t, &["PING"]);
        s.run("w0", &mut writers[0], &["SADD", "k2", "n"]);
        s.read("t", &mut t);
        let info = String::from_utf8_lossy(&t.command(&["INFO", "clients"])).into_owned();
        let line = info.lines().find(|l| l.starts_with("tracking_clients:"));
        s.transcript.push(format!("{line:?}"));
        s.run("t", &mut t, &["CLIENT", "TRACKING", "off"]);
        s.run("w1", &mut writers[1], &["SET", "k", "3"]);
        s.run("t", &mut t, &["PING"]);
    });
}

#[test]
fn bcast_prefixes_and_noloop() {
    compare("bcast", &[], |s| {
        let mut t = resp3(s);
        let mut w = s.connect();
        s.run(
            "t",
            &mut t,
            &[
                "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "obj",
            ],
        );
        s.run(
            "w",
            &mut w,
            &[
                "MSET", "user:2", "1", "user:1", "1", "objx", "2", "other", "3",
            ],
        );
        s.read("t", &mut t);
        s.read("t", &mut t);
        s.run("w", &mut w, &["SET", "nomatch", "1"]);
        s.run("t", &mut t, &["PING"]);
        s.run("t", &mut t, &["MSET", "user:3", "1", "user:1", "2"]);
        s.read("t", &mut t);
        s.run(
            "t",
            &mut t,
            &["CLIENT", "TRACKING", "on", "BCAST", "NOLOOP"],
        );
        s.run("t", &mut t, &["MSET", "user:3", "1", "zz", "2"]);
        s.run("w", &mut w, &["MSET", "user:3", "1", "zz", "2"]);
        s.read("t", &mut t);
        s.read("t", &mut t);
        s.run("w", &mut w, &["INFO", "stats"]);
        s.transcript.retain(|l| !l.starts_with("w INFO"));
        s.run("t", &mut t, &["PING"]);
    });
}

#[test]
fn optin_optout_and_noloop() {
    compare("optin", &[], |s| {
        let mut t = resp3(s);
        let mut w = s.connect();
        s.run("t", &mut t, &["CLIENT", "TRACKING", "on", "OPTIN"]);
        s.run("t", &mut t, &["GET", "o1"]);
        s.run("w", &mut w, &["SET", "o1", "1"]);
        s.run("t", &mut t, &["PING"]);
        s.run("t", &mut t, &["CLIENT", "CACHING", "yes"]);
        s.run("t", &mut t, &["GET", "o1"]);
        s.run("w", &mut w, &["SET", "o1", "2"]);
        s.read("t", &mut t);
        s.run("t", &mut t, &["CLIENT", "CACHING", "yes"]);
        s.run("t", &mut t, &["MULTI"]);
        s.run("t", &mut t, &["GET", "o1"]);
        s.run("t", &mut t, &["GET", "o2"]);
        s.run("t", &mut t, &["EXEC"]);
        s.run("w", &mut w, &["MSET", "o1", "3", "o2", "4"]);
        s.read("t", &mut t);
        s.read("t", &mut t);
        s.run("t", &mut t, &["CLIENT", "TRACKING", "off"]);
        s.run(
            "t",
            &mut t,
            &["CLIENT", "TRACKING", "on", "OPTOUT", "NOLOOP"],
        );
        s.run("t", &mut t, &["GET", "p1"]);
        s.run("t", &mut t, &["SET", "p1", "own"]);
        s.run("t", &mut t, &["GET", "p1"]);
        s.run("w", &mut w, &["SET", "p1", "1"]);
        s.read("t", &mut t);
        s.run("t", &mut t, &["CLIENT", "CACHING", "no"]);
        s.run("t", &mut t, &["GET", "p1"]);
        s.run("w", &mut w, &["SET", "p1", "2"]);
        s.run("t", &mut t, &["PING"]);
    });
}

#[test]
fn redirect_over_resp2_flush_and_broken_redirect() {
    compare("redirect", &[], |s| {
        let mut receiver = s.connect();
        let id = client_id(&mut receiver);
        s.run("r", &mut receiver, &["SUBSCRIBE", "__redis__:invalidate"]);
        let mut t = s.connect();
        let mut w = s.connect();
        s.transcript
            .push("t CLIENT TRACKING on REDIRECT <id>".into());
        t.command(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]);
        s.run("t", &mut t, &["GET", "k"]);
        s.run("t", &mut t, &["SET", "own", "1"]);
        s.run("t", &mut t, &["GET", "own"]);
        s.run("w", &mut w, &["SET", "k", "1"]);
        s.read("r", &mut receiver);
        s.run("t", &mut t, &["SET", "own", "2"]);
        s.read("r", &mut receiver);
        s.run("w", &mut w, &["FLUSHALL"]);
        s.read("r", &mut receiver);
        s.run("w", &mut w, &["FLUSHDB"]);
        s.read("r", &mut receiver);
        s.run("r", &mut receiver, &["PING"]);
        // A RESP3 tracking client whose redirect target leaves is told so.
        let mut t3 = resp3(s);
        let mut gone = s.connect();
        let gone_id = client_id(&mut gone);
        t3.command(&["CLIENT", "TRACKING", "on", "REDIRECT", &gone_id]);
        s.run("t3", &mut t3, &["GET", "z"]);
        drop(gone);
        // Wait until the server has noticed the disconnect.
        let deadline = Instant::now() + Duration::from_secs(5);
        while String::from_utf8_lossy(&w.command(&["CLIENT", "LIST", "ID", &gone_id])).len() > 8 {
            assert!(Instant::now() < deadline, "redirect client never left");
            std::thread::sleep(Duration::from_millis(5));
        }
        s.run("w", &mut w, &["SET", "z", "1"]);
        s.read_masking("t3", &mut t3, &gone_id);
        let info = show(&t3.command(&["CLIENT", "TRACKINGINFO"]));
        s.transcript
            .push(format!("t3 TRACKINGINFO {}", mask_id(&info, &gone_id)));
        let list = String::from_utf8_lossy(&t3.command(&["CLIENT", "INFO"])).into_owned();
        let flags = list
            .split(' ')
            .find(|f| f.starts_with("flags="))
            .unwrap_or("")
            .to_string();
        s.transcript.push(format!("t3 CLIENT INFO {flags}"));
        s.run("t3", &mut t3, &["PING"]);
    });
}

#[test]
fn expiry_transactions_and_scripts_invalidate() {
    compare("expiry", &[], |s| {
        let mut t = resp3(s);
        let mut w = s.connect();
        s.run("t", &mut t, &["CLIENT", "TRACKING", "on"]);
        s.run("w", &mut w, &["SET", "e", "1", "PX", "50"]);
        s.run("t", &mut t, &["GET", "e"]);
        // Active expiry (or nothing for 10 s: the read fails and the transcripts differ).
        s.read("t", &mut t);
        s.run("t", &mut t, &["MGET", "x", "y"]);
        s.run("w", &mut w, &["MULTI"]);
        s.run("w", &mut w, &["SET", "x", "1"]);
        s.run("w", &mut w, &["INCR", "y"]);
        s.run("w", &mut w, &["EXEC"]);
        s.read("t", &mut t);
        s.read("t", &mut t);
        s.run("t", &mut t, &["GET", "s"]);
        s.run(
            "w",
            &mut w,
            &["EVAL", "return redis.call('set', KEYS[1], 'v')", "1", "s"],
        );
        s.read("t", &mut t);
        s.run("t", &mut t, &["PING"]);
    });
}

#[test]
fn tracking_table_max_keys_evicts_and_invalidates() {
    compare("table limit", &[], |s| {
        let mut t = resp3(s);
        let mut w = s.connect();
        s.run("t", &mut t, &["CLIENT", "TRACKING", "on"]);
        s.run("t", &mut t, &["MGET", "k1", "k2", "k3"]);
        s.run(
            "w",
            &mut w,
            &["CONFIG", "SET", "tracking-table-max-keys", "1"],
        );
        // The table is trimmed to one key without waiting for another command (the cron
        // does it): two invalidations, for keys picked at random.
        for _ in 0..2 {
            let frame = t.read_reply().map(|f| show(&f)).unwrap_or_default();
            let masked = ["k1", "k2", "k3"]
                .iter()
                .fold(frame, |f, k| f.replace(k, "k?"));
            s.transcript.push(format!("t <- {masked}"));
        }
        let info = String::from_utf8_lossy(&w.command(&["INFO", "stats"])).into_owned();
        let keys: Vec<&str> = info
            .lines()
            .filter(|l| l.starts_with("tracking_total_"))
            .collect();
        s.transcript.push(keys.join(" "));
        s.run(
            "w",
            &mut w,
            &["CONFIG", "SET", "tracking-table-max-keys", "0"],
        );
        s.run("t", &mut t, &["PING"]);
    });
}
