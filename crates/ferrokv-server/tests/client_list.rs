//! CLIENT LIST and CLIENT KILL, differential. Filters: the same population of connections
//! (named, unnamed, another database, READONLY, in MULTI, subscribed over RESP2 and RESP3,
//! MONITOR, CLIENT CAPA REDIRECT, another user, a library name) on ferrokv and on
//! valkey-server 9.1; every filter, plain and `NOT-`, must choose the same connections, and
//! every malformed filter must get the same error. Counters: `tot-cmds` after scripts,
//! functions and transactions.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{RawClient, show, start_ferrokv, start_valkey};

/// The connections a filter chooses from, by label, and the caller's own (`me`).
struct Population {
    me: RawClient,
    /// Kept open for as long as the population lives; their ids are in `labels`.
    _others: Vec<RawClient>,
    labels: BTreeMap<u64, &'static str>,
    /// Placeholders a filter may use: `$<label>` (an id), `$addr` (`alpha`'s address),
    /// `$laddr` (the server's address as clients see it).
    words: BTreeMap<String, String>,
}

fn client_id(c: &mut RawClient) -> u64 {
    let reply = c.command(&["CLIENT", "ID"]);
    String::from_utf8_lossy(&reply)
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("CLIENT ID: {}", show(&reply)))
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or("")
}

/// The text of a bulk or verbatim reply.
fn text(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply);
    match s.split_once("\r\n") {
        Some((head, body)) if head.starts_with('$') || head.starts_with('=') => {
            let body = body.strip_suffix("\r\n").unwrap_or(body);
            body.strip_prefix("txt:").unwrap_or(body).to_string()
        }
        _ => s.into_owned(),
    }
}

/// Waits until the server has no connection but the one asking (those of an earlier
/// population may still be closing), so that a filter sees only the new population.
fn wait_alone(port: u16) {
    let mut c = RawClient::connect(port).expect("connects");
    let alone = common::wait_for(10, || {
        text(&c.command(&["CLIENT", "LIST"])).lines().count() == 1
    });
    assert!(alone, "earlier connections still open on port {port}");
}

fn populate(port: u16) -> Population {
    wait_alone(port);
    let connect = || RawClient::connect(port).expect("connects");
    let mut me = connect();
    assert_eq!(
        me.command(&[
            "ACL", "SETUSER", "other", "on", "nopass", "+@all", "~*", "&*"
        ]),
        b"+OK\r\n"
    );
    let mut labels = BTreeMap::new();
    let mut words = BTreeMap::new();
    labels.insert(client_id(&mut me), "me");
    words.insert("$me".into(), client_id(&mut me).to_string());

    let mut others = Vec::new();
    // (label, setup commands; the last may leave the connection in a mode where it only
    // listens, so its reply is read but nothing follows)
    let setups: &[(&'static str, &[&[&str]])] = &[
        (
            "alpha",
            &[
                &["CLIENT", "SETNAME", "alpha"],
                &["CLIENT", "SETINFO", "LIB-NAME", "lib"],
                &["CLIENT", "SETINFO", "LIB-VER", "1.0"],
            ],
        ),
        ("db3", &[&["SELECT", "3"], &["READONLY"]]),
        ("multi", &[&["CLIENT", "SETNAME", "beta"], &["MULTI"]]),
        ("sub2", &[&["SUBSCRIBE", "news"]]),
        ("sub3", &[&["HELLO", "3"], &["PSUBSCRIBE", "n*"]]),
        ("monitor", &[&["MONITOR"]]),
        ("redirect", &[&["CLIENT", "CAPA", "REDIRECT"]]),
        (
            "other",
            &[&["AUTH", "other", "x"], &["CLIENT", "SETNAME", "beta"]],
        ),
        ("plain", &[]),
    ];
    for (label, commands) in setups {
        let mut c = connect();
        let id = client_id(&mut c);
        for command in *commands {
            c.command(command);
        }
        if *label == "alpha" {
            let info = text(&c.command(&["CLIENT", "INFO"]));
            words.insert("$addr".into(), field(&info, "addr").to_string());
            words.insert("$laddr".into(), field(&info, "laddr").to_string());
        }
        labels.insert(id, label);
        words.insert(format!("${label}"), id.to_string());
        others.push(c);
    }
    Population {
        me,
        _others: others,
        labels,
        words,
    }
}

impl Population {
    fn args(&self, filter: &str) -> Vec<String> {
        filter
            .split(' ')
            .map(|w| match w {
                "''" => String::new(),
                w => self.words.get(w).cloned().unwrap_or_else(|| w.to_string()),
            })
            .collect()
    }

    /// Runs `CLIENT <verb> <filter>`: an error's text, or for a list the labels shown.
    fn run(&mut self, verb: &str, filter: &str) -> String {
        let mut command = vec!["CLIENT".to_string(), verb.to_string()];
        command.extend(self.args(filter));
        let reply = self.me.command(&command);
        if reply.starts_with(b"-") || verb != "LIST" {
            return show(&reply);
        }
        self.labels_in(&text(&reply))
    }

    fn labels_in(&self, list: &str) -> String {
        let mut shown: Vec<&str> = list
            .lines()
            .map(|line| {
                let id: u64 = field(line, "id").parse().unwrap_or(0);
                self.labels.get(&id).copied().unwrap_or("?")
            })
            .collect();
        shown.sort_unstable();
        shown.join(",")
    }

    /// The labels still connected, once CLIENT LIST stops changing (asked on a new
    /// connection: the filter may have closed `me`).
    fn survivors(&self, port: u16) -> String {
        let mut observer = RawClient::connect(port).expect("connects");
        let mut last = String::new();
        for _ in 0..50 {
            let list = text(&observer.command(&["CLIENT", "LIST", "SKIPME", "yes"]));
            let now = self.labels_in(&list);
            if now == last {
                return now;
            }
            last = now;
            std::thread::sleep(Duration::from_millis(100));
        }
        last
    }
}

const LIST_FILTERS: &[&str] = &[
    "ID $alpha",
    "ID $alpha $db3",
    "ID $alpha ID $db3",
    "ID $alpha $db3 NOT-ID $db3",
    "NOT-ID $alpha",
    "NOT-ID $alpha $db3 NOT-ID $multi",
    "ID $alpha ID",
    "NOT-ID $alpha NOT-ID",
    "ID ID",
    "NOT-ID NOT-ID",
    "SKIPME yes ID",
    "TYPE normal",
    "TYPE pubsub",
    "TYPE PubSub",
    "TYPE replica",
    "TYPE slave",
    "TYPE master",
    "TYPE primary",
    "NOT-TYPE pubsub",
    "NOT-TYPE normal",
    "NOT-TYPE pubsub NOT-TYPE normal",
    "USER default",
    "USER other",
    "NOT-USER default",
    "NAME alpha",
    "NAME beta",
    "NAME ''",
    "NAME alpha NAME beta",
    "NOT-NAME alpha",
    "NOT-NAME ''",
    "NOT-NAME alpha NOT-NAME beta",
    "NAME beta NOT-USER other",
    "LIB-NAME lib",
    "LIB-NAME ''",
    "NOT-LIB-NAME lib",
    "NOT-LIB-NAME ''",
    "LIB-VER 1.0",
    "NOT-LIB-VER 1.0",
    "DB 3",
    "DB 0",
    "NOT-DB 3",
    "DB 0 NOT-NAME alpha",
    "FLAGS r",
    "FLAGS P",
    "FLAGS x",
    "FLAGS O",
    "FLAGS N",
    "FLAGS Nx",
    "FLAGS ''",
    "NOT-FLAGS P",
    "NOT-FLAGS N",
    "NOT-FLAGS Nx",
    "NOT-FLAGS ''",
    "NOT-FLAGS O NOT-FLAGS x",
    "CAPA r",
    "CAPA ''",
    "NOT-CAPA r",
    "NOT-CAPA ''",
    "IP 127.0.0.1",
    "IP 1.2.3.4",
    "NOT-IP 127.0.0.1",
    "NOT-IP 1.2.3.4",
    "ADDR $addr",
    "NOT-ADDR $addr",
    "LADDR $laddr",
    "NOT-LADDR $laddr",
    "ADDR nonsense",
    "SKIPME yes",
    "SKIPME no NOT-NAME alpha",
    "MAXAGE 1000",
    "IDLE 1000",
    "TYPE normal NOT-FLAGS x NOT-DB 3 NOT-ID $me",
    "not-name alpha not-type PUBSUB",
    // Malformed.
    "ID",
    "NOT-ID",
    "ID str",
    "ID 0",
    "ID -1",
    "NOT-ID 0",
    "NOT-ID -5",
    "ID $alpha 5 -1",
    "ID $alpha 99999999999999999999",
    "ID $alpha wrong_arg",
    "ID +1",
    "ID 01",
    "ID $alpha SKIPME",
    "TYPE wrong_type",
    "NOT-TYPE wrong_type",
    "TYPE normal NOT-TYPE",
    "USER nobody",
    "NOT-USER nobody",
    "SKIPME yes_or_no",
    "NOT-SKIPME yes",
    "MAXAGE str",
    "MAXAGE 99999999999999999999",
    "MAXAGE -1",
    "MAXAGE 0",
    "NOT-MAXAGE 1",
    "IDLE 0",
    "NOT-IDLE 1",
    "FLAGS Z",
    "NOT-FLAGS Z",
    "FLAGS NZ",
    "CAPA x",
    "NOT-CAPA x",
    "DB 16",
    "NOT-DB 16",
    "DB -1",
    "DB x",
    "NOT-DB x",
    "NOT-NAME",
    "NOT-WHATEVER x",
    "NOT- x",
    "NOT",
];

#[test]
fn client_list_filters_choose_what_valkey_chooses() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let mut ours = populate(ferrokv.port);
    let mut theirs = populate(valkey.port);
    let mut differences = Vec::new();
    for filter in LIST_FILTERS {
        let (a, b) = (ours.run("LIST", filter), theirs.run("LIST", filter));
        if a != b {
            differences.push(format!(
                "CLIENT LIST {filter}\n  ferrokv: {a}\n  valkey:  {b}"
            ));
        }
    }
    assert!(differences.is_empty(), "\n{}", differences.join("\n"));
    // The population is what the filters above assume (a filter choosing nothing on both
    // servers proves little).
    assert_eq!(ours.run("LIST", "TYPE pubsub"), "sub2,sub3");
    assert_eq!(
        ours.run("LIST", "NOT-FLAGS N"),
        "db3,monitor,multi,sub2,sub3"
    );
}

#[test]
fn client_kill_filters_close_what_valkey_closes() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let filters = [
        "ID $alpha ID $db3 ID $multi",
        "NOT-ID $alpha NOT-ID $me",
        "NOT-NAME alpha NOT-NAME alpha",
        "NOT-FLAGS N NOT-FLAGS N",
        "NOT-TYPE normal",
        "NOT-IP 1.2.3.4 SKIPME yes",
        "NOT-CAPA r NOT-CAPA r SKIPME yes",
        "NOT-NAME beta NOT-FLAGS x",
        "NOT-LIB-NAME lib NOT-LIB-VER 0.0.0",
        "NOT-DB 0",
        "NOT-USER default",
        "TYPE pubsub",
        "SKIPME no NOT-ID $alpha",
        "NOT-ID 1 NOT-ID",
        "ID 1 ID",
        "NOT-FLAGS Z",
        "NOT-ID",
        "127.0.0.1:1",
    ];
    let mut differences = Vec::new();
    for filter in filters {
        let mut ours = populate(ferrokv.port);
        let mut theirs = populate(valkey.port);
        let a = format!(
            "{} -> {}",
            ours.run("KILL", filter),
            ours.survivors(ferrokv.port)
        );
        let b = format!(
            "{} -> {}",
            theirs.run("KILL", filter),
            theirs.survivors(valkey.port)
        );
        if a != b {
            differences.push(format!(
                "CLIENT KILL {filter}\n  ferrokv: {a}\n  valkey:  {b}"
            ));
        }
    }
    assert!(differences.is_empty(), "\n{}", differences.join("\n"));
}

/// `tot-cmds` counts every command the client ran, those its scripts and functions called
/// and those its transactions queued included, as Valkey counts them.
#[test]
fn tot_cmds_counts_the_commands_of_scripts_and_transactions() {
    let deltas = |port: u16| {
        let mut c = RawClient::connect(port).expect("connects");
        let tot_cmds = |c: &mut RawClient| -> i64 {
            field(&text(&c.command(&["CLIENT", "INFO"])), "tot-cmds")
                .parse()
                .expect("tot-cmds")
        };
        c.command(&[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=counting\nserver.register_function('two', function() \
             server.call('ping') return server.call('ping') end)",
        ]);
        let steps: &[&[&[&str]]] = &[
            &[&["PING"]],
            &[&["EVAL", "server.call('ping')", "0"]],
            &[&[
                "EVAL",
                "server.call('set', 'k', 'v') return server.pcall('nosuch')",
                "0",
            ]],
            &[&["FCALL", "two", "0"]],
            &[&["MULTI"], &["PING"], &["INCR", "n"], &["EXEC"]],
            &[&["MULTI"], &["PING"], &["DISCARD"]],
            &[&["EVAL", "return server.call('get', 'k')", "0"]],
        ];
        let mut out = Vec::new();
        for step in steps {
            let before = tot_cmds(&mut c);
            for command in *step {
                c.command(command);
            }
            out.push(tot_cmds(&mut c) - before);
        }
        out
    };
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let ours = deltas(ferrokv.port);
    assert_eq!(ours, deltas(valkey.port));
    // CLIENT INFO itself, EVAL, and the PING it called.
    assert_eq!(ours[1], 3, "{ours:?}");
}
