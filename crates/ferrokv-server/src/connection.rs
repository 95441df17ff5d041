//! One client connection: read, parse, execute, write — in batches.
//!
//! Every request already in the read buffer is executed before anything is written, and all
//! their replies go out in one write: a pipeline of N requests costs one read and one write
//! syscall, not N of each.
//!
//! Output never stops input: when the socket does not take all the replies at once, the rest
//! stays pending in the reply buffer and the loop waits for whichever comes first, room to
//! write or more requests, as Valkey keeps reading a client that does not read its replies.
//! `client-output-buffer-limit normal` is what bounds the pending output (see
//! [`OutputLimit`]); with the default, unlimited, it grows as in Valkey.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrokv_commands::blocking::{Parked, Wake};
use ferrokv_commands::client::{ClientShared, Handoff, flags};
use ferrokv_commands::dispatch::Outcome;
use ferrokv_commands::prefetch::KeyPrefetch;
use ferrokv_commands::scripting::fiber::{self, Fiber};
use ferrokv_commands::{Client, Server, dispatch, pubsub, stats, transaction, worker_load};
use ferrokv_protocol::{ParseLimits, Reply, RequestParser};
use ferrokv_store::clock;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::relocatable::RelocatableSocket;
use crate::wake_signal::WakeSignal;

/// Replies are flushed early once this much is pending, so one huge pipeline does not build
/// an unbounded output buffer before the first byte goes out.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Valkey's per-client reply buffer (16 KiB), whose bytes its output limits do not count.
const REPLY_BUFFER_BYTES: usize = 16 * 1024;
/// How many reply bytes past that buffer a client that has not authenticated may have.
const UNAUTHENTICATED_OUTPUT_LIMIT: usize = 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Requests of a pipeline whose keys are prefetched together (Valkey's
/// `prefetch-batch-max-size` default).
const PREFETCH_REQUESTS: usize = 16;

/// A client's stream, plain or TLS, which can move to another worker between two batches of
/// requests (`balance.rs`).
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The socket, taken out of this worker's event loop.
    fn detach(self) -> std::io::Result<Detached>;
}

/// A socket between two workers.
pub enum Detached {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
    /// The TLS stream with its session, and the socket taken out of it.
    Tls(Box<TlsClientStream>, std::net::TcpStream),
}

/// A TLS client connection: its socket can be swapped (see `relocatable.rs`).
pub type TlsClientStream = ferrokv_tls::ServerStream<RelocatableSocket>;

impl ClientStream for tokio::net::TcpStream {
    fn detach(self) -> std::io::Result<Detached> {
        self.into_std().map(Detached::Tcp)
    }
}

impl ClientStream for tokio::net::UnixStream {
    fn detach(self) -> std::io::Result<Detached> {
        self.into_std().map(Detached::Unix)
    }
}

impl ClientStream for TlsClientStream {
    fn detach(mut self) -> std::io::Result<Detached> {
        let socket = self.get_mut().0.take()?;
        Ok(Detached::Tls(Box::new(self), socket))
    }
}

/// What a connection carries when it moves to another worker: everything but the stream.
pub struct Session {
    client: Client,
    reply: Reply,
    parser: RequestParser,
    input: BytesMut,
    wake: Arc<WakeSignal>,
}

/// Serves one client until it leaves, is killed, or breaks the protocol. The client must
/// already be in `server.clients` (the listener registers it, so `maxclients` counts
/// connections the moment they are accepted) and counted on its worker
/// (`WorkerLoads::place`); it is removed from both when the connection ends.
/// `certificate_users` are the user names a TLS client's certificate offers
/// (`tls-auth-clients-user`); the client starts logged in as the first existing one.
///
/// Generic over the stream, so plain TCP and Unix sockets run their own copy of this loop
/// with nothing TLS-specific in it.
pub async fn serve<S: ClientStream>(
    server: Arc<Server>,
    stream: S,
    shared: Arc<ClientShared>,
    certificate_users: &[String],
) {
    let wake = Arc::new(WakeSignal::default());
    {
        let wake = wake.clone();
        shared.set_waker(Box::new(move || wake.raise()));
    }
    stats::local().connections_received.add(1);

    let mut client = Client::new(shared, server.config.load(), server.config.epoch());
    ferrokv_commands::acl::attach_new_client(&server, &mut client);
    if !certificate_users.is_empty() {
        ferrokv_commands::acl::login_with_certificate(&server, &mut client, certificate_users);
    }
    let session = Session {
        client,
        reply: Reply::new(false),
        parser: RequestParser::new(),
        input: BytesMut::with_capacity(READ_CHUNK),
        wake,
    };
    serve_session(server, stream, session).await;
}

/// Goes on serving a client that moved here from another worker.
pub async fn resume(server: Arc<Server>, stream: Detached, session: Session) {
    let registered = match stream {
        Detached::Tcp(socket) => match tokio::net::TcpStream::from_std(socket) {
            Ok(stream) => return serve_session(server, stream, session).await,
            Err(e) => e,
        },
        Detached::Unix(socket) => match tokio::net::UnixStream::from_std(socket) {
            Ok(stream) => return serve_session(server, stream, session).await,
            Err(e) => e,
        },
        Detached::Tls(mut stream, socket) => match stream.get_mut().0.put(socket) {
            Ok(()) => return serve_session(server, *stream, session).await,
            Err(e) => e,
        },
    };
    log::warn!("Registering a moved client socket: {registered}");
    let mut session = session;
    end_session(&server, &mut session.client, worker_load::current());
}

/// How `run` left a connection that is not closing.
enum Exit {
    /// PSYNC/SYNC made it a replica feed.
    Handoff,
    /// It goes on on worker `.0` (see `balance.rs`).
    Move(usize),
}

async fn serve_session<S: ClientStream>(server: Arc<Server>, mut stream: S, mut session: Session) {
    let counted = WorkerConnection::begin();
    let outcome = {
        let Session {
            client,
            reply,
            parser,
            input,
            wake,
        } = &mut session;
        let mut run = std::pin::pin!(run(
            &server,
            &mut stream,
            client,
            reply,
            parser,
            input,
            wake
        ));
        // Each poll runs the requests read so far to the end; the subscribers they publish
        // to are woken once, as the poll returns.
        std::future::poll_fn(|cx| pubsub::deferring_wakes(|| run.as_mut().poll(cx))).await
    };
    let outcome = match (outcome, session.client.handoff.take()) {
        (Ok(Exit::Move(to)), _) => {
            drop(counted);
            match stream.detach() {
                Ok(detached) => crate::balance::hand_on(to, server, detached, session),
                Err(e) => {
                    // The socket is closed with the stream; the client sees its connection end.
                    log::warn!(
                        "Moving client id={} to another worker: {e}",
                        session.client.id
                    );
                    // Its count went to `to` already.
                    end_session(&server, &mut session.client, Some(to));
                }
            }
            return;
        }
        (Ok(Exit::Handoff), Some(Handoff::Replica { psync })) => {
            let Session { client, input, .. } = &mut session;
            ferrokv_replication::primary::serve_replica(&server, &mut stream, client, input, psync)
                .await
        }
        (outcome, _) => outcome.map(|_| ()),
    };
    if let Err(reason) = outcome {
        log::debug!(
            "Client id={} addr={} closed: {reason}",
            session.client.id,
            session.client.shared.addr
        );
    }
    let _ = stream.shutdown().await;
    end_session(&server, &mut session.client, worker_load::current());
}

/// Forgets a client whose connection ended. Never leaves a waiter, a watched key or a
/// subscription behind, whatever path ended the connection.
/// `worker` is where the connection is counted.
fn end_session(server: &Server, client: &mut Client, worker: Option<usize>) {
    let id = client.shared.id;
    server.blocking.cancel(id);
    transaction::discard(server, client);
    pubsub::unsubscribe_all(server, client);
    ferrokv_commands::tracking::disable(server, &client.shared);
    server.monitors.remove(id);
    server.clients.unregister(id);
    if let (Some(loads), Some(worker)) = (worker_load::get(), worker) {
        loads.connection_closed(worker);
    }
}

async fn run<S>(
    server: &Server,
    stream: &mut S,
    client: &mut Client,
    reply: &mut Reply,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    wake: &WakeSignal,
) -> Result<Exit, String>
where
    S: ClientStream,
{
    let stats = stats::local();
    let mut output = OutputLimit::default();
    loop {
        if client.shared.is_killed() {
            return Err("killed".into());
        }
        // Messages published to this client while it waited. They go out whole (a subscriber
        // is limited where its messages queue, in `pubsub`, not here).
        if !client.shared.outbox.is_empty() {
            client.shared.outbox.drain_into(reply);
            flush(server, stream, client, reply, wake).await?;
            output.needs_flush = false;
        }
        if input.capacity() - input.len() < READ_CHUNK / 2 {
            input.reserve(READ_CHUNK);
        }
        client.shared.read_buffer.store(input.capacity(), Relaxed);
        client
            .shared
            .read_buffer_peak
            .fetch_max(input.capacity(), Relaxed);
        let epoch = server.config.epoch();
        if epoch != client.config_epoch {
            client.refresh_config(server.config.load(), epoch);
        }
        let idle_timeout = client.config.timeout;
        let pending = !reply.is_empty() || output.needs_flush;
        let io = async {
            if pending {
                read_or_write(stream, input, reply.bytes(), output.needs_flush).await
            } else {
                stream.read_buf(input).await.map(Io::Read)
            }
        };
        let io = async {
            if idle_timeout > 0 {
                match tokio::time::timeout(Duration::from_secs(idle_timeout as u64), io).await {
                    Ok(r) => r,
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "idle timeout",
                    )),
                }
            } else {
                io.await
            }
        };
        let soft_deadline = output.soft_deadline();
        let n = tokio::select! {
            biased;
            _ = wake.raised() => continue,
            _ = sleep_until_some(soft_deadline) => {
                output.check(server, client, reply.len())?;
                continue;
            }
            r = io => match r.map_err(|e| e.to_string())? {
                Io::Read(n) => n,
                Io::Wrote(n) => {
                    wrote(client, reply, n);
                    output.needs_flush = reply.is_empty();
                    output.check(server, client, reply.len())?;
                    continue;
                }
                Io::Flushed => {
                    output.needs_flush = false;
                    continue;
                }
            },
        };
        if n == 0 {
            return Err("connection closed by client".into());
        }
        stats.net_input_bytes.add(n as u64);
        let shared = &client.shared;
        shared.net_in.fetch_add(n as u64, Relaxed);
        shared.last_interaction_ms.store(clock::now_ms(), Relaxed);

        // Checked as soon as the bytes are in, as Valkey does: a single argument larger than
        // the limit closes the client before it is complete.
        if input.len() as i64 > client.config.client_query_buffer_limit {
            return Err(over_query_buffer_limit(client, input.len()));
        }
        let mut protocol_error = None;
        let woken_before = pubsub::woken_on_this_thread();
        output.refresh(client);
        // Keys are prefetched once per read, after its first complete request is parsed,
        // where the buffer is at a request boundary (see `prefetch_keys`).
        let mut prefetched = false;
        let mut requests = 0usize;
        loop {
            let limits = ParseLimits {
                max_bulk_len: client.config.proto_max_bulk_len,
                unauthenticated: !client.authenticated,
                from_primary: false,
            };
            match parser.next_request(input, &limits) {
                Ok(Some(args)) => {
                    if !prefetched {
                        prefetched = true;
                        parser.frame_ahead(input, PREFETCH_REQUESTS - 1, &limits);
                        prefetch_keys(server, client.db, &args, parser, input);
                    }
                    // Published messages go out in order with the replies around them.
                    client.shared.outbox.drain_into(reply);
                    client.request_bytes = parser.last_request_bytes();
                    client.reply_mark = reply.len();
                    run_request(server, stream, client, reply, wake, input, args).await?;
                    requests += 1;
                    if client.handoff.is_some() {
                        // What was answered before PSYNC goes out first.
                        flush(server, stream, client, reply, wake).await?;
                        return Ok(Exit::Handoff);
                    }
                    if client.close_after_reply {
                        break;
                    }
                    if reply.len() >= FLUSH_THRESHOLD {
                        write_some(server, stream, client, reply, &mut output)?;
                    }
                    output.check(server, client, reply.len())?;
                }
                Ok(None) => break,
                Err(e) => {
                    log::debug!(
                        "Protocol error ({e}) from client id={} addr={}",
                        client.id,
                        client.shared.addr
                    );
                    reply.error(&format!("ERR {e}"));
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        client.shared.query_buffer.store(input.len(), Relaxed);
        if protocol_error.is_some() || client.close_after_reply {
            // The last replies must reach the client before the connection closes.
            flush(server, stream, client, reply, wake).await?;
        } else {
            // A pipelined batch's replies go out once every other connection of this worker
            // that is ready now has run too (the task comes back after them), as Valkey
            // writes in `beforeSleep`: the clients are woken in one burst instead of one by
            // one while the worker still reads. Measured side by side (BENCHMARKS.md,
            // session 11): two workers, 50 clients, -P16 p99 about half.
            // A lone request's reply goes out at once: the yield costs tokio an extra
            // non-blocking `epoll_wait` and a pass over its deferred tasks per wake-up, which
            // a batch of one request does not pay back. Measured (BENCHMARKS.md, session 26):
            // one worker, -P1 GET/SET/INCR 4-6% less server CPU per request and a lower
            // p99; -P16 unchanged.
            // Not after a PUBLISH that woke subscribers, though: they are not requests
            // waiting to be read, and the publisher's reply would wait behind all their
            // writes. Valkey writes the publisher first too (its pending-write list puts the
            // client that got a reply last at the head). Measured (BENCHMARKS.md, session
            // 13): 100 subscribers, PUBLISH pipelined by 100, +21% deliveries/s.
            if requests > 1
                && WorkerConnection::others()
                && pubsub::woken_on_this_thread() == woken_before
            {
                tokio::task::yield_now().await;
            }
            write_some(server, stream, client, reply, &mut output)?;
            // Between two batches, with every reply written, the connection can go on on
            // another worker if the balancer asks this one to hand connections on.
            if reply.is_empty()
                && !output.needs_flush
                && let Some(loads) = worker_load::get()
                && loads.should_shed()
                && let Some(to) = loads.take_shed()
            {
                return Ok(Exit::Move(to));
            }
        }
        if let Some(e) = protocol_error {
            return Err(format!("protocol error: {e}"));
        }
        if client.close_after_reply {
            return Err("closed after reply".into());
        }
        if input.len() as i64 > client.config.client_query_buffer_limit {
            return Err(over_query_buffer_limit(client, input.len()));
        }
    }
}

/// Closes a client whose unprocessed input went over `client-query-buffer-limit`.
fn over_query_buffer_limit(client: &Client, qbuf: usize) -> String {
    log::warn!(
        "Closing client that reached max query buffer length: id={} addr={} qbuf={qbuf}",
        client.id,
        client.shared.addr,
    );
    stats::local().query_buffer_limit_disconnections.add(1);
    "query buffer limit".into()
}

thread_local! {
    /// The connections this worker thread serves now.
    static WORKER_CONNECTIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts a connection on its worker while it is served.
struct WorkerConnection;

impl WorkerConnection {
    fn begin() -> WorkerConnection {
        WORKER_CONNECTIONS.set(WORKER_CONNECTIONS.get() + 1);
        WorkerConnection
    }

    /// Whether this worker serves other connections than the caller's.
    fn others() -> bool {
        WORKER_CONNECTIONS.get() > 1
    }
}

impl Drop for WorkerConnection {
    fn drop(&mut self) {
        WORKER_CONNECTIONS.set(WORKER_CONNECTIONS.get().saturating_sub(1));
    }
}

/// Prefetches the keys of the complete requests a read brought, before they run one by one
/// (see `ferrokv_commands::prefetch`).
///
/// `first` is the read's first request, already parsed; the parser has framed those after
/// it in `input`. A lone request of three arguments or fewer (the unpipelined GET or SET:
/// one key, at most two) has too little to overlap: looking its keys up in the command
/// table cost 10% of an unpipelined GET's instructions.
fn prefetch_keys(
    server: &Server,
    db: usize,
    first: &[Bytes],
    parser: &RequestParser,
    input: &[u8],
) {
    if !parser.has_framed() && first.len() <= 3 {
        return;
    }
    let mut prefetch = KeyPrefetch::default();
    prefetch.add_request(first);
    parser.for_each_framed(input, |args| prefetch.add_request(args));
    prefetch.run(&server.keyspace, db);
}

/// Executes one request; one that a CLIENT PAUSE holds back is retried, after the replies
/// so far have gone out, once the pause no longer applies to it; one that blocks waits for
/// its outcome.
async fn run_request<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Server,
    stream: &mut S,
    client: &mut Client,
    reply: &mut Reply,
    wake: &WakeSignal,
    input: &mut BytesMut,
    args: Vec<Bytes>,
) -> Result<(), String> {
    loop {
        let outcome = if dispatch::runs_lua(client, &args) {
            execute_on_fiber(server, client, reply, &args).await
        } else {
            dispatch::execute(server, client, reply, &args)
        };
        match outcome {
            Outcome::Done => return Ok(()),
            Outcome::Postponed { may_write } => {
                flush(server, stream, client, reply, wake).await?;
                wait_for_pause_end(server, client, wake, may_write).await?;
            }
            Outcome::Blocked => {
                let Some(parked) = client.blocked.take() else {
                    return Ok(());
                };
                flush(server, stream, client, reply, wake).await?;
                let outcome = wait_while_blocked(server, stream, client, wake, input, parked).await;
                let woken = outcome?;
                dispatch::finish_blocked(client, reply, woken);
                return Ok(());
            }
        }
    }
}

/// Runs a command that may run a script on a stack of its own: a script past
/// `busy-reply-threshold` suspends itself there, and while it is suspended this worker's
/// other connections run (they get BUSY, or run `allow-busy` commands such as SCRIPT KILL).
/// See `ferrokv_commands::scripting::fiber`.
async fn execute_on_fiber(
    server: &Server,
    client: &mut Client,
    reply: &mut Reply,
    args: &[Bytes],
) -> Outcome {
    let Some(stack) = fiber::Stack::take() else {
        return dispatch::execute(server, client, reply, args);
    };
    let mut run = Fiber::new(stack, || dispatch::execute(server, client, reply, args));
    loop {
        if let Some(outcome) = run.resume() {
            return outcome;
        }
        tokio::task::yield_now().await;
    }
}

/// Waits for a parked client's outcome (see `ferrokv_commands::blocking`): a delivery from
/// the thread that served it or unblocked it, its deadline, a kill, or the connection
/// closing. Meanwhile the socket is still read, so a disconnect is noticed at once; what
/// the client pipelines after the blocking command waits in `input`. No polling.
async fn wait_while_blocked<S: AsyncRead + Unpin>(
    server: &Server,
    stream: &mut S,
    client: &Client,
    wake: &WakeSignal,
    input: &mut BytesMut,
    parked: Parked,
) -> Result<Wake, String> {
    let shared = &client.shared;
    shared.set_flag(flags::BLOCKED, true);
    let mut deadline = parked.deadline_ms;
    let outcome = loop {
        if let Some(woken) = parked.delivery.lock().take() {
            break Ok(woken);
        }
        if shared.is_killed() {
            server.blocking.cancel(client.id);
            break Err("killed while blocked".to_string());
        }
        let wait = deadline.map(|at| Duration::from_millis((at - clock::now_ms()).max(0) as u64));
        tokio::select! {
            _ = wake.raised() => {}
            _ = async { tokio::time::sleep(wait.unwrap_or_default()).await }, if wait.is_some() => {
                if server.blocking.cancel(client.id) {
                    break Ok(Wake::Timeout);
                }
                // WAIT and WAITAOF answer their counts so far.
                if let Some(answer) = server.replication.waits.expire(client.id, server) {
                    break Ok(answer);
                }
                // Served or unblocked at this very moment: its delivery is on the way.
                deadline = None;
            }
            read = stream.read_buf(input) => match read {
                Ok(0) | Err(_) => {
                    server.blocking.cancel(client.id);
                    break Err("connection closed while blocked".to_string());
                }
                Ok(n) => {
                    stats::local().net_input_bytes.add(n as u64);
                    shared.net_in.fetch_add(n as u64, Relaxed);
                    // What waits behind the blocking command shows in CLIENT LIST qbuf=.
                    shared.query_buffer.store(input.len(), Relaxed);
                    if input.len() as i64 > client.config.client_query_buffer_limit {
                        server.blocking.cancel(client.id);
                        break Err(over_query_buffer_limit(client, input.len()));
                    }
                    if input.capacity() - input.len() < READ_CHUNK / 2 {
                        input.reserve(READ_CHUNK);
                    }
                }
            },
        }
    };
    shared.set_flag(flags::BLOCKED, false);
    if outcome.is_err() {
        // A SHUTDOWN caller that leaves does not stop the shutdown; it just stops waiting.
        server.shutdown.forget(client.id);
    }
    outcome
}

/// Waits until no pause holds back a command of this kind: until the pause's end time, or
/// until a wake-up (UNPAUSE, a changed pause, CLIENT KILL) makes it re-check. No polling.
async fn wait_for_pause_end(
    server: &Server,
    client: &Client,
    wake: &WakeSignal,
    may_write: bool,
) -> Result<(), String> {
    let shared = &client.shared;
    // Set before re-checking the pause: an UNPAUSE after this point finds the flag and wakes
    // us; one before it is seen by the check below (see `pause::wake_paused_clients`).
    shared.set_flag(flags::PAUSED, true);
    let _counted = server.pause.wait();
    let outcome = loop {
        if shared.is_killed() {
            break Err("killed while paused".to_string());
        }
        let now = clock::now_ms();
        let Some(until) = server.pause.blocks(may_write, now) else {
            break Ok(());
        };
        let wait = Duration::from_millis((until - now).max(1) as u64);
        tokio::select! {
            _ = wake.raised() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    };
    shared.set_flag(flags::PAUSED, false);
    outcome
}

/// Writes the pending replies, then flushes the stream (a TLS stream may still hold the
/// last records; for a socket the flush is a no-op). A kill (CLIENT KILL, a subscriber over
/// its output buffer limit) interrupts the write, so a client that stopped reading cannot
/// hold its connection open forever. Other wake-ups during the write are not lost: the main
/// loop checks the outbox before it waits again.
///
/// `client-output-buffer-limit normal` applies here to ordinary clients: replies over the hard
/// limit close the connection before anything is written, and replies that stay over the soft
/// limit for its seconds close it while it waits.
async fn flush<S: AsyncWrite + Unpin>(
    server: &Server,
    stream: &mut S,
    client: &Client,
    reply: &mut Reply,
    wake: &WakeSignal,
) -> Result<(), String> {
    // The effects of the commands answered here reach the AOF first (fsynced under
    // `appendfsync always`), so no reply announces a write the file lacks.
    server.aof.before_reply(server);
    if reply.is_empty() {
        return Ok(());
    }
    let shared = &client.shared;
    let limits = normal_limits(client);
    if limits.is_some_and(|l| l.hard > 0 && reply.len() as u64 > l.hard) {
        return Err(over_output_limit(server, client));
    }
    // When the pending bytes stay over the soft limit past this instant, the client is closed.
    let soft_deadline = limits
        .filter(|l| l.soft > 0 && reply.len() as u64 > l.soft)
        .map(|l| tokio::time::Instant::now() + std::time::Duration::from_secs(l.soft_seconds));
    let soft = limits.map_or(0, |l| l.soft);
    shared.output_buffer.store(reply.len(), Relaxed);
    let bytes = reply.bytes();
    let mut written = 0;
    let outcome = loop {
        if shared.is_killed() {
            break Err("killed while writing".to_string());
        }
        if written == bytes.len() {
            tokio::select! {
                biased;
                r = stream.flush() => break r.map_err(|e| e.to_string()),
                _ = wake.raised() => continue,
            }
        }
        let over_soft = soft_deadline.filter(|_| (bytes.len() - written) as u64 > soft);
        tokio::select! {
            biased;
            r = stream.write(&bytes[written..]) => match r {
                Ok(0) => break Err("connection closed while writing".to_string()),
                Ok(n) => {
                    written += n;
                    shared.output_buffer.store(bytes.len() - written, Relaxed);
                }
                Err(e) => break Err(e.to_string()),
            },
            _ = wake.raised() => {}
            _ = sleep_until_some(over_soft) => break Err(over_output_limit(server, client)),
        }
    };
    shared.output_buffer.store(0, Relaxed);
    outcome?;
    stats::local().net_output_bytes.add(reply.len() as u64);
    shared.net_out.fetch_add(reply.len() as u64, Relaxed);
    reply.clear();
    Ok(())
}

/// What the socket did while replies were pending.
enum Io {
    Read(usize),
    Wrote(usize),
    Flushed,
}

/// Waits until the socket takes some of `pending` (or, with nothing pending, completes the
/// flush a TLS stream may need) or brings more input, whichever comes first. Writing is
/// tried first so replies leave before more requests are taken on.
///
/// Input goes through a small stack buffer: this path only runs while output is backed up,
/// and copying keeps it free of unsafe code; the common path reads straight into `input`.
async fn read_or_write<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    input: &mut BytesMut,
    pending: &[u8],
    needs_flush: bool,
) -> std::io::Result<Io> {
    std::future::poll_fn(|cx| {
        if !pending.is_empty() {
            if let Poll::Ready(r) = Pin::new(&mut *stream).poll_write(cx, pending) {
                return Poll::Ready(match r {
                    Ok(0) => Err(std::io::ErrorKind::WriteZero.into()),
                    r => r.map(Io::Wrote),
                });
            }
        } else if needs_flush && let Poll::Ready(r) = Pin::new(&mut *stream).poll_flush(cx) {
            return Poll::Ready(r.map(|()| Io::Flushed));
        }
        let mut chunk = [0u8; READ_CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                input.extend_from_slice(buf.filled());
                Poll::Ready(Ok(Io::Read(buf.filled().len())))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Writes what the socket takes now without waiting, leaving the rest pending. Every reply
/// byte leaves through here or `flush`, and both first put the answered commands' effects in
/// the AOF (fsynced under `appendfsync always`); bytes left pending were covered then.
fn write_some<S: AsyncWrite + Unpin>(
    server: &Server,
    stream: &mut S,
    client: &Client,
    reply: &mut Reply,
    output: &mut OutputLimit,
) -> Result<(), String> {
    output.check_before_write(server, client, reply.len())?;
    server.aof.before_reply(server);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    while !reply.is_empty() {
        match Pin::new(&mut *stream).poll_write(&mut cx, reply.bytes()) {
            Poll::Ready(Ok(0)) => return Err("connection closed while writing".into()),
            Poll::Ready(Ok(n)) => wrote(client, reply, n),
            Poll::Ready(Err(e)) => return Err(e.to_string()),
            Poll::Pending => break,
        }
    }
    // A TLS stream may hold the last records until flushed; the main loop finishes it.
    output.needs_flush = reply.is_empty()
        && match Pin::new(&mut *stream).poll_flush(&mut cx) {
            Poll::Ready(r) => {
                r.map_err(|e| e.to_string())?;
                false
            }
            Poll::Pending => true,
        };
    client.shared.output_buffer.store(reply.len(), Relaxed);
    Ok(())
}

/// Accounts for `n` bytes of `reply` taken by the socket.
fn wrote(client: &Client, reply: &mut Reply, n: usize) {
    reply.consume(n);
    stats::local().net_output_bytes.add(n as u64);
    client.shared.net_out.fetch_add(n as u64, Relaxed);
    client.shared.output_buffer.store(reply.len(), Relaxed);
}

/// `client-output-buffer-limit normal` applied to the replies pending for an ordinary client
/// while it keeps sending requests: over the hard limit it is closed at once; over the soft
/// limit for longer than its seconds it is closed too (checked as replies are added or
/// written, and at the deadline while nothing happens).
#[derive(Default)]
struct OutputLimit {
    limits: Option<pubsub::Limits>,
    /// Since when the pending output has been over the soft limit.
    over_soft_since: Option<tokio::time::Instant>,
    /// Everything was written but the stream still has to be flushed (TLS).
    needs_flush: bool,
}

impl OutputLimit {
    /// Re-reads the limits (they follow CONFIG SET and the client's class).
    fn refresh(&mut self, client: &Client) {
        self.limits = normal_limits(client);
        if self.limits.is_none() {
            self.over_soft_since = None;
        }
    }

    fn check(&mut self, server: &Server, client: &Client, pending: usize) -> Result<(), String> {
        check_unauthenticated(server, client, pending)?;
        let Some(limits) = self.limits else {
            return Ok(());
        };
        let pending = pending as u64;
        if limits.hard > 0 && pending > limits.hard {
            return Err(over_output_limit(server, client));
        }
        if limits.soft == 0 || pending <= limits.soft {
            self.over_soft_since = None;
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        let since = *self.over_soft_since.get_or_insert(now);
        if now.duration_since(since) >= Duration::from_secs(limits.soft_seconds) && since != now {
            return Err(over_output_limit(server, client));
        }
        Ok(())
    }

    /// The hard limit on the replies about to be written, as Valkey applies it when they
    /// are added (before any reaches the socket): all but the first [`REPLY_BUFFER_BYTES`],
    /// which Valkey keeps in each client's fixed buffer and does not count.
    ///
    /// The normal class's limit only with `min-string-size-avoid-copy-reply 0`: otherwise
    /// (the default) Valkey sends large strings by reference and leaves them out of the
    /// count, and an encoded reply here no longer tells them apart, so only what stays
    /// pending is checked (by [`OutputLimit::check`]).
    fn check_before_write(
        &self,
        server: &Server,
        client: &Client,
        pending: usize,
    ) -> Result<(), String> {
        check_unauthenticated(server, client, pending)?;
        let Some(limits) = self.limits else {
            return Ok(());
        };
        if client.config.min_string_size_avoid_copy_reply != 0 {
            return Ok(());
        }
        let counted = counted_output(pending) as u64;
        if limits.hard > 0 && counted > limits.hard {
            return Err(over_output_limit(server, client));
        }
        Ok(())
    }

    /// When the pending output, if it stays over the soft limit, must be cut off.
    fn soft_deadline(&self) -> Option<tokio::time::Instant> {
        let limits = self.limits?;
        self.over_soft_since
            .map(|since| since + Duration::from_secs(limits.soft_seconds))
    }
}

/// The pending reply bytes Valkey's limits would count: those past its 16 KiB per-client
/// buffer, or, under DEBUG CLIENT-ENFORCE-REPLY-LIST, whole 16 KiB blocks from the first
/// byte.
fn counted_output(pending: usize) -> usize {
    if ferrokv_commands::cmd::debug::enforce_reply_list() {
        if pending == 0 {
            0
        } else {
            pending.max(REPLY_BUFFER_BYTES)
        }
    } else {
        pending.saturating_sub(REPLY_BUFFER_BYTES)
    }
}

/// A client that has never authenticated may not pile up more than 1 KiB of replies past
/// the per-client buffer (Valkey's rule): a stranger pipelining requests it never reads
/// cannot make the server buffer their errors without end.
fn check_unauthenticated(server: &Server, client: &Client, pending: usize) -> Result<(), String> {
    if client.ever_authenticated || counted_output(pending) <= UNAUTHENTICATED_OUTPUT_LIMIT {
        return Ok(());
    }
    Err(over_output_limit(server, client))
}

/// `client-output-buffer-limit normal` for this client, or None when it is unlimited or the
/// client is of another class (subscribers and monitors are limited where their messages are
/// queued, in `pubsub`).
fn normal_limits(client: &Client) -> Option<pubsub::Limits> {
    let value = &client.config.client_output_buffer_limit;
    // The default, unlimited, costs one prefix comparison per flush.
    if value.starts_with("normal 0 0 0 ") || client.subscriptions.any() || client.monitor {
        return None;
    }
    let limits = pubsub::Limits::for_class(value, "normal");
    (limits != pubsub::Limits::default()).then_some(limits)
}

/// Logs, counts and kills a client over its output buffer limit, as Valkey does; the
/// returned text ends the connection.
fn over_output_limit(server: &Server, client: &Client) -> String {
    log::warn!(
        "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
        client.shared.id,
        client.shared.addr
    );
    server.pubsub.limit_disconnections.fetch_add(1, Relaxed);
    client.shared.kill();
    "over the output buffer limit".to_string()
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
