//! MONITOR: every command the server runs, as one line per command, to each monitoring client.
//!
//! Lines are fed after a command ran (so a command shows the database it left the client in,
//! and the commands of a transaction appear at EXEC time, before the EXEC line), except the
//! commands flagged `admin` or `skip_monitor`, and those rejected before running. A line is
//! formatted once and its `Bytes` shared by every monitor; it travels through the monitor's
//! outbox like a pub/sub message, under the `normal` class of `client-output-buffer-limit`
//! (Valkey counts monitors as normal clients).
//!
//! Scripts feed their own lines: EVAL and friends are flagged `skip_monitor`, call [`feed`]
//! themselves before running the script, and [`feed_script`] for every command the script
//! calls (shown as `[<db> lua]`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::client::{Client, ClientShared, Transport};
use crate::pubsub::{self, Limits};
use crate::server::Server;

/// The clients in MONITOR mode.
#[derive(Default)]
pub struct Monitors {
    /// How many; read before every feed, so a server nobody monitors pays one load.
    count: AtomicUsize,
    clients: RwLock<Vec<Arc<ClientShared>>>,
}

impl Monitors {
    pub fn any(&self) -> bool {
        self.count.load(Relaxed) != 0
    }

    pub fn add(&self, client: Arc<ClientShared>) {
        let mut clients = self.clients.write();
        clients.push(client);
        self.count.store(clients.len(), Relaxed);
    }

    /// Takes a client out of MONITOR mode (RESET, disconnect); nothing if it was not in it.
    pub fn remove(&self, id: u64) {
        if !self.any() {
            return;
        }
        let mut clients = self.clients.write();
        clients.retain(|c| c.id != id);
        self.count.store(clients.len(), Relaxed);
    }
}

/// Feeds the command `args` just run by `client` to the monitors.
pub fn feed(server: &Server, client: &Client, args: &[Bytes]) {
    feed_in(server, client, client.db, args);
}

/// Feeds `args`, run by `client` in database `db`, to the monitors.
pub fn feed_in(server: &Server, client: &Client, db: usize, args: &[Bytes]) {
    if !server.monitors.any() {
        return;
    }
    let origin = peer_id(&client.shared);
    broadcast(server, db, &origin, args);
}

fn broadcast(server: &Server, db: usize, origin: &str, args: &[Bytes]) {
    let line = Bytes::from(format_line(unix_micros(), db, origin, args));
    let config = server.config.load();
    let limits = Limits::for_class(&config.client_output_buffer_limit, "normal");
    let now_ms = ferrokv_store::clock::now_ms();
    let monitors = server.monitors.clients.read();
    for monitor in monitors.iter() {
        pubsub::push_to(server, monitor, line.clone(), limits, now_ms);
    }
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// How a monitor line names a client: `ip:port`, or `unix:<socket path>`.
fn peer_id(client: &ClientShared) -> String {
    if client.transport == Transport::Script {
        return "lua".to_string();
    }
    if client.transport == Transport::Unix {
        // Shown as `[path:0]:0` elsewhere (CLIENT LIST), as Valkey does.
        let path = client
            .addr
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(":0]:0"))
            .unwrap_or(&client.addr);
        return format!("unix:{path}");
    }
    client.addr.clone()
}

/// `+<sec>.<usec> [<db> <origin>] "arg" ...\r\n`, arguments quoted as Valkey's
/// `sdscatrepr`, passwords redacted.
pub fn format_line(micros: u128, db: usize, origin: &str, args: &[Bytes]) -> Vec<u8> {
    let mut line = format!(
        "+{}.{:06} [{db} {origin}]",
        micros / 1_000_000,
        micros % 1_000_000
    )
    .into_bytes();
    let redacted = redacted_positions(args);
    for (i, arg) in args.iter().enumerate() {
        line.push(b' ');
        if redacted.contains(&i) {
            line.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote_into(&mut line, arg);
        }
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Argument positions Valkey hides: the credentials of AUTH, HELLO ... AUTH and
/// MIGRATE ... AUTH/AUTH2.
pub(crate) fn redacted_positions(args: &[Bytes]) -> Vec<usize> {
    let Some(name) = args.first() else {
        return Vec::new();
    };
    if name.eq_ignore_ascii_case(b"auth") {
        return (1..args.len()).collect();
    }
    let subcommand = |sub: &[u8]| args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(sub));
    // Users, their passwords and rules: everything after the subcommand, even when the
    // command fails (Valkey redacts before it runs).
    if name.eq_ignore_ascii_case(b"acl")
        && (subcommand(b"setuser") || subcommand(b"getuser") || subcommand(b"deluser"))
    {
        return (2..args.len()).collect();
    }
    let mut hidden = Vec::new();
    if name.eq_ignore_ascii_case(b"config") && subcommand(b"set") {
        // The values of the directives that hold secrets.
        const SECRETS: &[&[u8]] = &[
            b"requirepass",
            b"masterauth",
            b"primaryauth",
            b"masteruser",
            b"primaryuser",
            b"tls-key-file-pass",
            b"tls-client-key-file-pass",
        ];
        let mut i = 2;
        while i + 1 < args.len() {
            if SECRETS.iter().any(|s| args[i].eq_ignore_ascii_case(s)) {
                hidden.push(i + 1);
            }
            i += 2;
        }
    } else if name.eq_ignore_ascii_case(b"hello") {
        let mut i = 2;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"auth") && i + 2 < args.len() {
                hidden.extend([i + 1, i + 2]);
                i += 3;
            } else if args[i].eq_ignore_ascii_case(b"setname") {
                i += 2;
            } else {
                i += 1;
            }
        }
    } else if name.eq_ignore_ascii_case(b"migrate") {
        let mut i = 6;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"keys") {
                break;
            }
            if args[i].eq_ignore_ascii_case(b"auth") && i + 1 < args.len() {
                hidden.push(i + 1);
                i += 2;
            } else if args[i].eq_ignore_ascii_case(b"auth2") && i + 2 < args.len() {
                hidden.extend([i + 1, i + 2]);
                i += 3;
            } else {
                i += 1;
            }
        }
    }
    hidden
}

/// Valkey's `sdscatrepr`: a double-quoted string with C escapes, `\xHH` for other
/// non-printable bytes.
fn quote_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&[u8]]) -> Vec<Bytes> {
        list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    fn line(list: &[&[u8]]) -> String {
        String::from_utf8(format_line(
            1_700_000_000_000_042,
            3,
            "127.0.0.1:5555",
            &args(list),
        ))
        .unwrap()
    }

    #[test]
    fn lines_quote_like_sdscatrepr() {
        assert_eq!(
            line(&[b"SET", b"k", b"a\"b\\c\nd\x01\xc3\xa9 \x00\x7f\t\r\x07\x08"]),
            "+1700000000.000042 [3 127.0.0.1:5555] \"SET\" \"k\" \
             \"a\\\"b\\\\c\\nd\\x01\\xc3\\xa9 \\x00\\x7f\\t\\r\\a\\b\"\r\n"
        );
    }

    #[test]
    fn credentials_are_redacted() {
        assert!(
            line(&[b"auth", b"u", b"p"]).ends_with("\"auth\" \"(redacted)\" \"(redacted)\"\r\n")
        );
        assert!(
            line(&[b"hello", b"3", b"setname", b"auth", b"AUTH", b"u", b"p"])
                .ends_with("\"setname\" \"auth\" \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n")
        );
        assert!(
            line(&[
                b"migrate", b"h", b"1", b"", b"0", b"10", b"AUTH2", b"u", b"p", b"KEYS", b"a"
            ])
            .ends_with("\"AUTH2\" \"(redacted)\" \"(redacted)\" \"KEYS\" \"a\"\r\n")
        );
        assert!(
            line(&[b"acl", b"setuser", b"bob", b">secret", b"on"])
                .ends_with("\"acl\" \"setuser\" \"(redacted)\" \"(redacted)\" \"(redacted)\"\r\n")
        );
        assert!(
            line(&[b"config", b"set", b"maxmemory", b"1", b"REQUIREPASS", b"pw"]).ends_with(
                "\"config\" \"set\" \"maxmemory\" \"1\" \"REQUIREPASS\" \"(redacted)\"\r\n"
            )
        );
    }
}
