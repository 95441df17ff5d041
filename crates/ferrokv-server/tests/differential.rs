//! Differential tests: every case file under `tests/cases/` runs against ferrokv and the
//! oracle valkey-server 9.1, and the replies must match byte for byte.
//!
//! Case file syntax, one command per line (split like redis-cli: quotes and `\xHH` escapes):
//!
//! ```text
//! # a comment
//! === scenario name          (each scenario: fresh connections, FLUSHALL on both servers)
//! SET k v
//! !sort KEYS *               (compare after sorting the elements of the reply, or of its
//!                             last element when that is the array: SCAN, SSCAN)
//! !type TIME                 (compare only the reply's type byte)
//! !ignore CLIENT ID          (run on both, compare nothing)
//! !fields a,b INFO clients   (compare only the `a:` and `b:` lines of the reply: INFO
//!                             fields the oracle samples in its cron vary from run to run)
//! !sleep 1100                (pause, in milliseconds)
//! !read                      (read one more reply from both, without sending anything:
//!                             the second confirmation of SUBSCRIBE a b, a pushed message)
//! !known-difference why: CMD (a deliberate difference, named: the replies must differ, so a
//!                             difference that disappears is noticed and the line removed)
//! ```

mod common;

use common::{RawClient, ServerProcess, show, split_elements, start_ferrokv, start_valkey};
use ferrokv_protocol::split_args::split_args;

enum Compare {
    Exact,
    Sorted,
    TypeOnly,
    Ignore,
    /// Only these `name:value` lines of an INFO-like reply.
    Fields(Vec<String>),
    KnownDifference(String),
}

fn run_case_file(name: &str, protocol: u8) {
    let path = format!("{}/tests/cases/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let ferrokv = start_ferrokv(&["--enable-debug-command", "yes"]);
    let valkey = start_valkey(&["--enable-debug-command", "yes"]);
    let mut failures = Vec::new();
    let mut scenario = String::from("(start)");
    let mut clients = fresh_clients(&ferrokv, &valkey, protocol);
    let mut commands = 0;
    for (lineno, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(title) = line.strip_prefix("===") {
            scenario = title.trim().to_string();
            // The old connections close first, so no scenario sees the last one's clients.
            drop(clients);
            clients = fresh_clients(&ferrokv, &valkey, protocol);
            continue;
        }
        let (compare, command) = parse_directive(line);
        if let Some(ms) = command.strip_prefix("!sleep ") {
            std::thread::sleep(std::time::Duration::from_millis(
                ms.trim().parse().unwrap_or(0),
            ));
            continue;
        }
        let (ours, theirs) = if command == "!read" {
            let read = |c: &mut RawClient| {
                c.read_reply()
                    .unwrap_or_else(|e| format!("<connection error: {e}>").into_bytes())
            };
            (read(&mut clients.0), read(&mut clients.1))
        } else {
            let args = split_args(command.as_bytes())
                .unwrap_or_else(|_| panic!("{name}:{}: bad quoting", lineno + 1));
            (clients.0.command(&args), clients.1.command(&args))
        };
        commands += 1;
        let verdict = match &compare {
            Compare::Exact => ours == theirs,
            Compare::Sorted => sorted(&ours) == sorted(&theirs),
            Compare::TypeOnly => ours.first() == theirs.first(),
            Compare::Ignore => true,
            Compare::Fields(names) => fields(&ours, names) == fields(&theirs, names),
            Compare::KnownDifference(why) => {
                if ours == theirs {
                    failures.push(format!(
                        "{name}:{} [{scenario}] `{command}`: known difference '{why}' no longer differs; remove the marker",
                        lineno + 1
                    ));
                }
                true
            }
        };
        if !verdict {
            failures.push(format!(
                "{name}:{} [{scenario}] `{command}`\n   ferrokv: {}\n    valkey: {}",
                lineno + 1,
                show(&ours),
                show(&theirs)
            ));
        }
    }
    assert!(commands > 0, "{name} has no commands");
    assert!(
        failures.is_empty(),
        "{} of {commands} replies differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// New connections to both servers, in RESP `protocol`, with both datasets emptied.
fn fresh_clients(
    ferrokv: &ServerProcess,
    valkey: &ServerProcess,
    protocol: u8,
) -> (RawClient, RawClient) {
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let mut theirs = RawClient::connect(valkey.port).expect("connect valkey");
    for c in [&mut ours, &mut theirs] {
        if protocol == 3 {
            c.command(&["HELLO", "3"]);
        }
        c.command(&["FLUSHALL"]);
        // A closed connection leaves a server when its thread notices: wait (bounded) until
        // this is the only client, as INFO/CLIENT LIST lines expect.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let info = c.command(&["INFO", "clients"]);
            if info.windows(21).any(|w| w == b"connected_clients:1\r\n") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    (ours, theirs)
}

fn parse_directive(line: &str) -> (Compare, &str) {
    if let Some(rest) = line.strip_prefix("!sort ") {
        (Compare::Sorted, rest)
    } else if let Some(rest) = line.strip_prefix("!type ") {
        (Compare::TypeOnly, rest)
    } else if let Some(rest) = line.strip_prefix("!ignore ") {
        (Compare::Ignore, rest)
    } else if let Some(rest) = line.strip_prefix("!fields ") {
        let (names, cmd) = rest.split_once(' ').unwrap_or((rest, ""));
        let names = names.split(',').map(str::to_string).collect();
        (Compare::Fields(names), cmd.trim())
    } else if let Some(rest) = line.strip_prefix("!known-difference ") {
        let (why, cmd) = rest.split_once(':').unwrap_or((rest, ""));
        (Compare::KnownDifference(why.trim().to_string()), cmd.trim())
    } else {
        (Compare::Exact, line)
    }
}

/// The `name:value` lines for `names` in an INFO-like reply, in that order.
fn fields(reply: &[u8], names: &[String]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    names
        .iter()
        .map(|name| {
            text.split("\r\n")
                .find(|line| {
                    line.strip_prefix(name.as_str())
                        .is_some_and(|v| v.starts_with(':'))
                })
                .unwrap_or("<missing>")
                .to_string()
        })
        .collect()
}

/// The reply with its elements (or its last element's elements) sorted.
fn sorted(reply: &[u8]) -> Vec<u8> {
    let Some((header, mut items)) = split_elements(reply) else {
        return reply.to_vec();
    };
    if items.len() == 2
        && let Some((inner_header, mut inner)) = split_elements(&items[1])
    {
        inner.sort();
        items[1] = inner_header.into_iter().chain(inner.concat()).collect();
        // The cursor of a SCAN-like reply is implementation-specific.
        items[0] = b"<cursor>".to_vec();
        return header.into_iter().chain(items.concat()).collect();
    }
    items.sort();
    header.into_iter().chain(items.concat()).collect()
}

macro_rules! case_files {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            mod $test {
                /// Replies compared in RESP2.
                #[test]
                fn resp2() {
                    super::run_case_file($file, 2);
                }

                /// The same commands on RESP3 connections: maps, sets, doubles and nulls
                /// must take Valkey's RESP3 forms.
                #[test]
                fn resp3() {
                    super::run_case_file($file, 3);
                }
            }
        )*

        /// Every file in tests/cases must be listed above, so none is silently left out.
        #[test]
        fn every_case_file_is_run() {
            let listed = [$($file),*];
            let dir = format!("{}/tests/cases", env!("CARGO_MANIFEST_DIR"));
            for entry in std::fs::read_dir(dir).expect("cases dir") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                assert!(listed.contains(&name.as_str()), "case file {name} is not listed in differential.rs");
            }
        }
    };
}

case_files! {
    connection => "connection.txt",
    module => "module.txt",
    strings => "strings.txt",
    bits => "bits.txt",
    client => "client.txt",
    keys => "keys.txt",
    expire => "expire.txt",
    scan => "scan.txt",
    command => "command.txt",
    server => "server.txt",
    config => "config.txt",
    hyperloglog => "hyperloglog.txt",
    sets => "sets.txt",
    lists => "lists.txt",
    hashes => "hashes.txt",
    zsets => "zsets.txt",
    geo => "geo.txt",
    transactions => "transactions.txt",
    pubsub => "pubsub.txt",
    streams => "streams.txt",
    stream_groups => "stream_groups.txt",
    acl => "acl.txt",
    scripting => "scripting.txt",
    scripting_libs => "scripting_libs.txt",
    functions => "functions.txt",
    dump => "dump.txt",
    cluster => "cluster.txt",
    tracking => "tracking.txt",
    persistence => "persistence.txt",
    sort => "sort.txt",
}
