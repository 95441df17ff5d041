//! The command stream after a sync: each command from the primary runs through dispatch as
//! a client that must obey, and its exact bytes join this server's own stream, so that this
//! replica's offsets are the primary's. `REPLCONF GETACK` is answered at once, and an ACK
//! goes out every second.

use ferrokv_protocol::framing::{decimal, line};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokv_commands::dispatch::{self, Outcome};
use ferrokv_commands::prefetch::KeyPrefetch;
use ferrokv_commands::{Client, Server};
use ferrokv_protocol::Reply;

use super::conn::{Conn, LinkResult, Stop, encode};

const ACK_EVERY: Duration = Duration::from_secs(1);
/// Commands parsed ahead so that their keys are prefetched together.
const PREFETCH_BATCH: usize = 16;
/// While writes are paused, how much of the primary's stream is read ahead and kept.
const PAUSED_READ_AHEAD: usize = 64 << 20;
/// The most arguments and the longest argument a primary's command may have (Valkey lets
/// its primary exceed the client limits too).
const MAX_ARGS: usize = 1 << 20;
const MAX_ARG_LEN: usize = 1 << 32;

/// One unit parsed from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Command(Vec<Bytes>, usize),
    /// Newlines between commands (a keepalive): counted in the offset, nothing to run.
    Blank(usize),
    Incomplete,
    Bad(&'static str),
}

/// Parses the next command (a RESP multibulk) at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let Some(&first) = buf.first() else {
        return Parsed::Incomplete;
    };
    if first == b'\n' || first == b'\r' {
        let n = buf
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        return Parsed::Blank(n);
    }
    if first != b'*' {
        return Parsed::Bad("expected '*'");
    }
    let Some((head, mut at)) = line(buf, 0) else {
        return if buf.len() > 32 {
            Parsed::Bad("invalid multibulk length")
        } else {
            Parsed::Incomplete
        };
    };
    let Some(count) = decimal(&head[1..]).filter(|&n| n <= MAX_ARGS) else {
        return Parsed::Bad("invalid multibulk length");
    };
    if count == 0 {
        return Parsed::Blank(at);
    }
    let mut args = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        if at >= buf.len() {
            return Parsed::Incomplete;
        }
        if buf[at] != b'$' {
            return Parsed::Bad("expected '$'");
        }
        let Some((len_text, data_at)) = line(buf, at) else {
            return if buf.len() - at > 32 {
                Parsed::Bad("invalid bulk length")
            } else {
                Parsed::Incomplete
            };
        };
        let Some(len) = decimal(&len_text[1..]).filter(|&n| n <= MAX_ARG_LEN) else {
            return Parsed::Bad("invalid bulk length");
        };
        if data_at + len + 2 > buf.len() {
            return Parsed::Incomplete;
        }
        if &buf[data_at + len..data_at + len + 2] != b"\r\n" {
            return Parsed::Bad("bulk not terminated by CRLF");
        }
        args.push(Bytes::copy_from_slice(&buf[data_at..data_at + len]));
        at = data_at + len + 2;
    }
    Parsed::Command(args, at)
}

/// Parses up to [`PREFETCH_BATCH`] units from the start of `buf` without consuming them; a
/// protocol error ends the batch (after the units before it, which are applied first).
fn parse_batch(buf: &[u8]) -> Vec<Parsed> {
    let mut batch = Vec::new();
    let mut at = 0;
    while batch.len() < PREFETCH_BATCH {
        let unit = parse(&buf[at..]);
        match &unit {
            Parsed::Incomplete => break,
            Parsed::Blank(n) | Parsed::Command(_, n) => at += n,
            Parsed::Bad(_) => {
                batch.push(unit);
                break;
            }
        }
        batch.push(unit);
    }
    batch
}

/// Prefetches the keys a batch is about to touch (see `ferrokv_commands::prefetch`): under
/// a pipelined write load the replica's time goes mostly to waiting for hash-table memory.
/// A SELECT inside the batch leaves the later keys prefetched in the old database, which is
/// harmless.
fn prefetch_keys(server: &Server, db: usize, batch: &[Parsed]) {
    let mut prefetch = KeyPrefetch::default();
    for unit in batch {
        if let Parsed::Command(args, _) = unit {
            prefetch.add_request(args);
        }
    }
    prefetch.run(&server.keyspace, db);
}

/// `REPLCONF ACK <offset> FACK <offset in the AOF, fsynced>` (for WAITAOF; without an AOF
/// everything applied counts, as Valkey reports it).
fn send_ack(conn: &mut Conn<'_>, offset: u64) -> LinkResult<()> {
    let aof = &conn.server().aof;
    let fsynced = if aof.enabled() {
        aof.fsynced_offset().min(offset)
    } else {
        offset
    };
    conn.send(&encode(&[
        b"REPLCONF",
        b"ACK",
        offset.to_string().as_bytes(),
        b"FACK",
        fsynced.to_string().as_bytes(),
    ]))
}

/// Applies the stream until the link ends.
pub fn run(conn: &mut Conn<'_>, client: &mut Client) -> LinkResult<()> {
    let server = conn.server();
    let mut reply = Reply::new(false);
    server.replication.unapplied_bytes.store(0, Relaxed);
    // The first ACK tells a diskless primary that the snapshot was loaded.
    send_ack(conn, server.stream.end())?;
    let mut last_ack = Instant::now();
    loop {
        // Nothing more of an abandoned link may change the data: a full check once per
        // batch read, and per command the one REPLICAOF NO ONE flips (a relaxed load).
        conn.check()?;
        // While writes are paused (CLIENT PAUSE WRITE on this replica, a failover) the
        // stream is read but not applied, as Valkey does; reading stops past a bound so a
        // long pause under a heavy stream does not buffer without end.
        let paused = server.pause.is_paused(ferrokv_store::clock::now_ms());
        let unapplied = conn.available().len();
        server
            .replication
            .unapplied_bytes
            .store(unapplied as u64, Relaxed);
        if paused {
            // The primary still hears from us (the offset stays where the pause froze it).
            if last_ack.elapsed() >= ACK_EVERY {
                send_ack(conn, server.stream.end())?;
                last_ack = Instant::now();
            }
            if unapplied < PAUSED_READ_AHEAD {
                conn.fill()?;
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        loop {
            let batch = parse_batch(conn.available());
            if batch.is_empty() {
                break;
            }
            prefetch_keys(server, client.db, &batch);
            for unit in batch {
                let (args, len) = match unit {
                    // parse_batch stops before an incomplete command.
                    Parsed::Incomplete => break,
                    Parsed::Blank(n) => {
                        server.stream.append_raw(&conn.available()[..n], false);
                        conn.consume(n);
                        continue;
                    }
                    Parsed::Bad(what) => {
                        return Err(Stop::failed(format!(
                            "Protocol error from the PRIMARY ({what})"
                        )));
                    }
                    Parsed::Command(args, len) => (args, len),
                };
                if !server.stream.is_proxy() {
                    return Err(Stop::Abandoned);
                }
                // Applied and appended as one step for a sub-replica's full sync (see
                // `Replication::apply`).
                let applying = server.replication.apply.read();
                let replica_only = apply_one(conn, server, client, &mut reply, &args)?;
                server.replication.link_db.store(client.db as u64, Relaxed);
                server
                    .stream
                    .append_raw(&conn.available()[..len], replica_only);
                drop(applying);
                conn.consume(len);
            }
        }
        // What the batch appended reaches the AOF as a client's writes do before its reply
        // (the ACKs below promise it to the primary).
        server.aof.before_reply(server);
        if last_ack.elapsed() >= ACK_EVERY {
            send_ack(conn, server.stream.end())?;
            last_ack = Instant::now();
        }
        conn.fill()?;
    }
}

/// Runs one command from the primary; returns whether it is for replicas only (pings and
/// REPLCONF, which the AOF does not get).
fn apply_one(
    conn: &mut Conn<'_>,
    server: &Server,
    client: &mut Client,
    reply: &mut Reply,
    args: &[Bytes],
) -> LinkResult<bool> {
    let name = &args[0];
    if name.eq_ignore_ascii_case(b"PING") {
        return Ok(true);
    }
    if name.eq_ignore_ascii_case(b"REPLCONF") {
        if args.len() >= 2 && args[1].eq_ignore_ascii_case(b"GETACK") {
            // The offset before this GETACK's own bytes, as Valkey answers.
            send_ack(conn, server.stream.end())?;
        }
        return Ok(true);
    }
    while let Outcome::Postponed { .. } = dispatch::execute(server, client, reply, args) {
        // CLIENT PAUSE holds the primary's writes too; wait it out.
        conn.check()?;
        std::thread::sleep(Duration::from_millis(10));
    }
    if reply.bytes().first() == Some(&b'-') && client.multi.is_none() {
        log::warn!(
            "== CRITICAL == This replica is sending an error to its primary: '{}' after processing the command '{}'",
            String::from_utf8_lossy(reply.bytes().strip_suffix(b"\r\n").unwrap_or(reply.bytes())),
            String::from_utf8_lossy(name)
        );
    }
    reply.truncate(0);
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_blanks_and_partial_input() {
        let buf = b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n";
        assert_eq!(
            parse(buf),
            Parsed::Command(
                vec![Bytes::from_static(b"get"), Bytes::from_static(b"k")],
                buf.len()
            )
        );
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        assert_eq!(parse(b"\n\n*1"), Parsed::Blank(2));
        assert!(matches!(parse(b"+OK\r\n"), Parsed::Bad(_)));
        assert!(matches!(parse(b"*1\r\n$1\r\nab\r\n"), Parsed::Bad(_)));
        assert!(matches!(parse(b"*x\r\n"), Parsed::Bad(_)));
    }

    #[test]
    fn a_batch_stops_before_a_partial_command_and_after_an_error() {
        let one = b"*1\r\n$4\r\nPING\r\n";
        let mut buf = Vec::new();
        for _ in 0..20 {
            buf.extend_from_slice(one);
        }
        let batch = parse_batch(&buf);
        assert_eq!(batch.len(), PREFETCH_BATCH);
        let mut buf = one.to_vec();
        buf.extend_from_slice(b"\n*1\r\n$4\r\nPI");
        let batch = parse_batch(&buf);
        assert_eq!(batch.len(), 2);
        assert!(matches!(batch[1], Parsed::Blank(1)));
        let mut buf = one.to_vec();
        buf.extend_from_slice(b"+OK\r\n");
        buf.extend_from_slice(one);
        let batch = parse_batch(&buf);
        assert_eq!(batch.len(), 2);
        assert!(matches!(batch[1], Parsed::Bad(_)));
    }
}
