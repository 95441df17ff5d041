//! The primary side: a replica connection after its PSYNC or SYNC.
//!
//! 1. **Partial sync**: when the replica names this server's history (its replid, or the
//!    previous one up to `second_repl_offset`) and the backlog still holds the byte after
//!    its offset, it gets `+CONTINUE <replid>` and the stream from there.
//! 2. **Full sync** (`full_sync`): a snapshot taken without fork, at an instant at which the
//!    replica's pinned stream subscription starts, so every write is either in the snapshot
//!    or in the stream after it. `+FULLRESYNC <replid> <offset>`, then the snapshot —
//!    `$EOF:<mark>` streamed (diskless, `repl-diskless-sync yes` and a replica with
//!    `capa eof`) or `$<length>` from a file — then the stream. Replicas arriving within
//!    `repl-diskless-sync-delay` share one snapshot.
//! 3. **Streaming** (`stream_to_replica`): the stream's bytes from the replica's offset,
//!    while reading its `REPLCONF ACK`s (WAIT, INFO lag, min-replicas-to-write).
//!
//! Writes made during a full sync stay in the stream (the subscription is pinned), not in a
//! per-replica buffer, and only the hard `client-output-buffer-limit replica` applies to
//! them: the soft limit, which makes Valkey's single-channel full syncs loop under a heavy
//! write load, counts only the bytes written after the replica came online (the effect
//! Valkey 8's dual-channel replication gets by buffering on the replica).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferrokv_commands::client::flags;
use ferrokv_commands::propagate::{Lagged, Subscription};
use ferrokv_commands::pubsub::Limits;
use ferrokv_commands::replication::{ReplicaPeer, peer_state};
use ferrokv_commands::{Client, Server};
use ferrokv_protocol::{ParseLimits, RequestParser};
use ferrokv_store::clock;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use crate::sync_job::{self, Payload};

/// The stream is sent in pieces of at most this many bytes.
const READ_PIECE: usize = 1 << 20;

/// Serves a replica connection whose PSYNC (`Some((replid, offset))`) or SYNC (`None`) just
/// ran, until it goes away or must resynchronize.
pub async fn serve_replica<S>(
    server: &Arc<Server>,
    socket: &mut S,
    client: &mut Client,
    input: &mut BytesMut,
    psync: Option<(String, i64)>,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = client.repl_handshake.take().map(|h| *h).unwrap_or_default();
    let ip = handshake
        .ip
        .clone()
        .unwrap_or_else(|| peer_ip(&client.shared.addr));
    let peer = Arc::new(ReplicaPeer {
        client_id: client.id,
        ip,
        listening_port: handshake.listening_port,
        state: peer_state::WAIT_BGSAVE.into(),
        ack_offset: 0.into(),
        aof_ack_offset: 0.into(),
        ack_ms: clock::now_ms().into(),
    });
    client.shared.set_flag(flags::REPLICA, true);
    let replication = &server.replication;
    let generation = replication.replicas_generation.load(Relaxed);
    let backlog = client.config.repl_backlog_size.max(1) as usize;
    let psync2 = handshake.capa_psync2;

    let continued = psync
        .as_ref()
        .and_then(|(replid, offset)| try_continue(server, replid, *offset));
    // After a streamed snapshot the replica cannot tell the EOF mark from stream bytes that
    // arrive in the same read: the stream starts once it acknowledged (as Valkey does).
    let mut hold_until_ack = false;
    let sub = match continued {
        Some(sub) => {
            replication.sync_partial_ok.fetch_add(1, Relaxed);
            let ids = replication.ids();
            let line = if psync2 {
                format!("+CONTINUE {}\r\n", ids.replid)
            } else {
                "+CONTINUE\r\n".to_string()
            };
            socket
                .write_all(line.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            log::info!(
                "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
                describe(&peer),
                server.stream.end() - sub.offset,
                sub.offset + 1
            );
            peer.state.store(peer_state::ONLINE, Relaxed);
            replication.attach(server.stream, peer.clone(), backlog);
            sub
        }
        None => {
            if let Some((replid, _)) = &psync
                && replid != "?"
            {
                replication.sync_partial_err.fetch_add(1, Relaxed);
            }
            replication.sync_full.fetch_add(1, Relaxed);
            log::info!("Full resync requested by replica {}", describe(&peer));
            replication.attach(server.stream, peer.clone(), backlog);
            let capa_eof = handshake.capa_eof;
            let synced = full_sync(server, socket, client, &peer, psync.is_some(), capa_eof).await;
            hold_until_ack = synced.as_ref().is_ok_and(|(_, streamed)| *streamed);
            match synced.map(|(sub, _)| sub) {
                Ok(sub) => sub,
                Err(e) => {
                    replication.detach(client.id);
                    return Err(e);
                }
            }
        }
    };
    peer.ack_ms.store(clock::now_ms(), Relaxed);
    let feed = Feed {
        sub,
        generation,
        hold_until_ack,
    };
    let result = stream_to_replica(server, socket, client, input, &peer, feed).await;
    server.stream.unsubscribe(sub);
    replication.detach(client.id);
    if let Err(e) = &result {
        log::info!("Connection with replica {} lost: {e}", describe(&peer));
    }
    result
}

/// The `ip:port` a replica is known by in the logs.
fn describe(peer: &ReplicaPeer) -> String {
    format!("{}:{}", peer.ip, peer.listening_port)
}

/// The IP part of `ip:port` (IPv6 addresses contain colons too).
fn peer_ip(addr: &str) -> String {
    addr.rsplit_once(':')
        .map(|(ip, _)| ip.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(addr)
        .to_string()
}

/// A pinned subscription from the replica's offset when it can continue this history.
fn try_continue(server: &Server, replid: &str, offset: i64) -> Option<Subscription> {
    let replication = &server.replication;
    if offset < 1 || !replication.can_continue(replid, offset, server.stream.end()) {
        return None;
    }
    server.stream.subscribe_at(offset as u64 - 1, true).ok()
}

/// Sends a snapshot and returns the subscription that continues right after it, and whether
/// the snapshot was streamed with an EOF mark.
async fn full_sync<S>(
    server: &Arc<Server>,
    socket: &mut S,
    client: &Client,
    peer: &ReplicaPeer,
    announce: bool,
    capa_eof: bool,
) -> Result<(Subscription, bool), String>
where
    S: AsyncWrite + Unpin,
{
    let config = client.config.clone();
    let diskless = config.repl_diskless_sync && capa_eof;
    let member = sync_job::join(server, &config, diskless);
    // Keepalive newlines while the snapshot has not started (the replica's timeout).
    let started = loop {
        tokio::select! {
            started = member.started() => break started,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if client.shared.is_killed() {
                    member.leave();
                    return Err("killed while waiting for the snapshot".into());
                }
                socket.write_all(b"\n").await.map_err(|e| {
                    member.leave();
                    e.to_string()
                })?;
            }
        }
    };
    let (sub, offset) = started?;
    let replid = server.replication.ids().replid;
    let sent = async {
        if announce {
            let line = format!("+FULLRESYNC {replid} {offset}\r\n");
            socket.write_all(line.as_bytes()).await?;
        }
        peer.state.store(peer_state::SEND_BULK, Relaxed);
        match &member.payload {
            Payload::Streamed(channel) => {
                // The EOF mark has the form of a replication id (40 random hex digits).
                let mark = ferrokv_commands::replication::random_id();
                socket
                    .write_all(format!("$EOF:{mark}\r\n").as_bytes())
                    .await?;
                while let Some(piece) = channel.next().await? {
                    socket.write_all(&piece).await?;
                }
                socket.write_all(mark.as_bytes()).await?;
            }
            Payload::File(file) => {
                let path = file.wait().await?;
                // A local file: reading it in pieces blocks this worker only briefly.
                let mut rdb = std::fs::File::open(&path)?;
                let length = rdb.metadata()?.len();
                socket
                    .write_all(format!("${length}\r\n").as_bytes())
                    .await?;
                let mut piece = vec![0u8; 256 << 10];
                loop {
                    let n = std::io::Read::read(&mut rdb, &mut piece)?;
                    if n == 0 {
                        break;
                    }
                    socket.write_all(&piece[..n]).await?;
                }
            }
        }
        socket.flush().await
    };
    match sent.await {
        Ok(()) => {
            log::info!("Synchronization with replica {} succeeded", describe(peer));
            peer.state.store(peer_state::ONLINE, Relaxed);
            member.leave();
            Ok((sub, matches!(member.payload, Payload::Streamed(_))))
        }
        Err(e) => {
            member.leave();
            server.stream.unsubscribe(sub);
            Err(format!("full sync: {e}"))
        }
    }
}

/// Where a replica's stream starts.
struct Feed {
    sub: Subscription,
    /// `replicas_generation` when it attached: a role change ends the feed.
    generation: u64,
    /// Send nothing before its first ACK (after a streamed snapshot).
    hold_until_ack: bool,
}

/// Sends the stream from `feed.sub` on, reading the replica's ACKs, until it goes away, is
/// killed, falls too far behind, or this server's role changes.
async fn stream_to_replica<S>(
    server: &Arc<Server>,
    socket: &mut S,
    client: &Client,
    input: &mut BytesMut,
    peer: &Arc<ReplicaPeer>,
    feed: Feed,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let stream = server.stream;
    let replication = &server.replication;
    let appended = Arc::new(Notify::new());
    let waker_id = {
        let appended = appended.clone();
        stream.on_append(Box::new(move || appended.notify_one()))
    };
    let _remove_waker = scopeguard(move || stream.remove_waker(waker_id));
    let (mut reader, mut writer) = tokio::io::split(socket);
    let mut parser = RequestParser::new();
    let mut out: Vec<u8> = Vec::new();
    let mut out_at = 0usize;
    let Feed {
        sub,
        generation,
        hold_until_ack,
    } = feed;
    let mut next = sub.offset;
    let mut soft_since: Option<Instant> = None;
    let mut acked_ever = false;
    let online_at = stream.end();
    loop {
        let holding = hold_until_ack && !acked_ever;
        if client.shared.is_killed() {
            return Err("killed".into());
        }
        if replication.replicas_generation.load(Relaxed) != generation {
            return Err("the replication role changed".into());
        }
        if out_at == out.len() && !holding {
            out.clear();
            out_at = 0;
            next = stream
                .read_up_to(next, READ_PIECE, &mut out)
                .map_err(|Lagged| "fell out of the backlog".to_string())?;
            stream.consumed(sub, next);
        }
        let config = server.config.load();
        let end = stream.end();
        let sent = next - (out.len() - out_at) as u64;
        // The soft limit ignores what was written during the full sync (see the module doc).
        let pending = (end - sent, end - sent.max(online_at));
        check_output_limit(&config.client_output_buffer_limit, pending, &mut soft_since)
            .inspect_err(|_| {
                log::warn!(
                    "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    client.id,
                    client.shared.addr
                );
                server.pubsub.limit_disconnections.fetch_add(1, Relaxed);
            })?;
        let idle_limit = Duration::from_secs(config.repl_timeout.max(1) as u64);
        tokio::select! {
            _ = appended.notified(), if out_at == out.len() && !holding => {}
            written = writer.write(&out[out_at..]), if out_at < out.len() => {
                let n = written.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                out_at += n;
                client.shared.net_out.fetch_add(n as u64, Relaxed);
            }
            read = reader.read_buf(input) => {
                let n = read.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed by replica".into());
                }
                client.shared.net_in.fetch_add(n as u64, Relaxed);
                if take_acks(&mut parser, input, peer)? {
                    acked_ever = true;
                    if !replication.waits.is_empty() {
                        replication.waits.on_progress(server);
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let silent = clock::now_ms() - peer.ack_ms.load(Relaxed);
                // A replica that never acknowledges (SYNC, before PSYNC) is not timed out.
                if acked_ever && silent > idle_limit.as_millis() as i64 {
                    log::warn!("Disconnecting timedout replica (streaming sync): {}", describe(peer));
                    return Err("timeout".into());
                }
            }
        }
    }
}

/// Reads the replica's complete commands out of `input`: `REPLCONF ACK <offset> [FACK
/// <aof offset>]` moves its acknowledged offset; anything else is ignored, as Valkey
/// ignores a replica's other traffic. Returns whether an ACK arrived.
fn take_acks(
    parser: &mut RequestParser,
    input: &mut BytesMut,
    peer: &ReplicaPeer,
) -> Result<bool, String> {
    let limits = ParseLimits {
        max_bulk_len: 1 << 20,
        unauthenticated: false,
        from_primary: false,
    };
    let mut acked = false;
    while let Some(args) = parser
        .next_request(input, &limits)
        .map_err(|e| format!("protocol error from replica: {e}"))?
    {
        if let [name, sub, offset, rest @ ..] = args.as_slice()
            && name.eq_ignore_ascii_case(b"replconf")
            && sub.eq_ignore_ascii_case(b"ack")
            && let Some(offset) = parse_u64(offset)
        {
            peer.ack_offset.fetch_max(offset, Relaxed);
            if let [fack, fsynced, ..] = rest
                && fack.eq_ignore_ascii_case(b"fack")
                && let Some(fsynced) = parse_u64(fsynced)
            {
                peer.aof_ack_offset.fetch_max(fsynced, Relaxed);
            }
            peer.ack_ms.store(clock::now_ms(), Relaxed);
            acked = true;
        }
    }
    Ok(acked)
}

fn parse_u64(text: &Bytes) -> Option<u64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `client-output-buffer-limit replica` over what the replica has yet to receive: `(all of
/// it, the part written since the replica came online)` — the hard limit counts the first,
/// the soft limit the second.
fn check_output_limit(
    directive: &str,
    (pending, pending_since_online): (u64, u64),
    soft_since: &mut Option<Instant>,
) -> Result<(), String> {
    let limits = Limits::for_class(directive, "slave");
    if limits.hard > 0 && pending > limits.hard {
        return Err("over the hard output buffer limit".into());
    }
    if limits.soft > 0 && pending_since_online > limits.soft {
        let since = *soft_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_secs(limits.soft_seconds) {
            return Err("over the soft output buffer limit for too long".into());
        }
    } else {
        *soft_since = None;
    }
    Ok(())
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ips_of_both_families() {
        assert_eq!(peer_ip("127.0.0.1:6379"), "127.0.0.1");
        assert_eq!(peer_ip("[::1]:6379"), "::1");
        assert_eq!(peer_ip("::1:6379"), "::1");
    }

    #[test]
    fn acks_are_read_between_other_commands() {
        let peer = ReplicaPeer {
            client_id: 1,
            ip: "x".into(),
            listening_port: 1,
            state: 0.into(),
            ack_offset: 0.into(),
            aof_ack_offset: 0.into(),
            ack_ms: 0.into(),
        };
        let mut parser = RequestParser::new();
        let mut input = BytesMut::from(
            &b"*1\r\n$4\r\nPING\r\n*5\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$3\r\n120\r\n$4\r\nFACK\r\n$2\r\n99\r\n*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$2\r\n1"[..],
        );
        assert_eq!(take_acks(&mut parser, &mut input, &peer), Ok(true));
        assert_eq!(peer.ack_offset.load(Relaxed), 120);
        assert_eq!(peer.aof_ack_offset.load(Relaxed), 99);
        input.extend_from_slice(b"0\r\n");
        // A lower offset never moves it back.
        assert_eq!(take_acks(&mut parser, &mut input, &peer), Ok(true));
        assert_eq!(peer.ack_offset.load(Relaxed), 120);
    }

    #[test]
    fn the_soft_limit_waits_its_seconds_and_the_hard_one_does_not() {
        let mut since = None;
        let directive = "normal 0 0 0 slave 1000 100 60 pubsub 0 0 0";
        assert!(check_output_limit(directive, (50, 50), &mut since).is_ok());
        assert!(check_output_limit(directive, (500, 500), &mut since).is_ok());
        assert!(since.is_some());
        assert!(check_output_limit(directive, (50, 50), &mut since).is_ok());
        assert!(since.is_none());
        assert!(check_output_limit(directive, (1001, 0), &mut since).is_err());
        let zero_seconds = "normal 0 0 0 slave 0 100 0 pubsub 0 0 0";
        assert!(check_output_limit(zero_seconds, (500, 500), &mut None).is_err());
        // What piled up during the full sync does not count for the soft limit.
        assert!(check_output_limit(zero_seconds, (900, 50), &mut None).is_ok());
    }
}
