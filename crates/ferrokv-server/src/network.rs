//! Threads and listeners.
//!
//! One single-threaded tokio runtime per core ("worker"). The listeners run on the acceptor
//! thread, which accepts each connection, applies the admission checks (maxclients,
//! protected mode), and hands the socket to the active worker with the fewest connections
//! (`balance.rs` decides how many are active); the connection stays on that worker's thread
//! until the balancer asks the worker to hand it on. Measured on this machine, per-core
//! current-thread runtimes beat tokio's work-stealing runtime for this request/response
//! load (see docs/architecture.md).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ferrokv_commands::Server;
use ferrokv_commands::client::{ClientShared, Transport};
use ferrokv_commands::{stats, worker_load};
use ferrokv_store::clock;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;

use crate::connection;

pub const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Valkey's refusal for a non-loopback client while protected mode is on.
pub const PROTECTED_MODE_ERROR: &[u8] = b"-DENIED Running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers, you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting from the same host the server is running, however MAKE SURE it's not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// The worker runtimes, handed connections in turn, and the acceptor's.
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<std::thread::ThreadId>,
    /// Runs the accept loops on a thread of its own, so a script on a worker (which lets
    /// that worker's other clients in only past `busy-reply-threshold`) never delays new
    /// clients.
    acceptor: Handle,
}

/// Starts a thread named `name` driving a current-thread runtime until the process exits.
/// A worker (`worker` is its index) counts the time it runs between its waits in the
/// event loop, which the balancer reads (`balance.rs`).
fn start_runtime(
    name: String,
    worker: Option<usize>,
) -> std::io::Result<(Handle, std::thread::ThreadId)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name(name).spawn(move || {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_all();
        if let Some(index) = worker {
            worker_load::enter_worker(index);
            if let Some(loads) = worker_load::get() {
                builder
                    .on_thread_park(|| loads.parked())
                    .on_thread_unpark(|| loads.unparked());
            }
        }
        let rt = match builder.build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let _ = tx.send(Ok((rt.handle().clone(), std::thread::current().id())));
        if let Some(loads) = worker.and(worker_load::get()) {
            loads.unparked();
        }
        rt.block_on(std::future::pending::<()>());
    })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("runtime thread died at start"))?
}

impl Workers {
    /// Starts `count` worker threads and the acceptor thread.
    pub fn start(count: usize) -> std::io::Result<Arc<Workers>> {
        worker_load::install(count);
        let mut handles = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for i in 0..count {
            let (handle, thread) = start_runtime(format!("worker-{i}"), Some(i))?;
            handles.push(handle);
            threads.push(thread);
        }
        let (acceptor, _) = start_runtime("acceptor".to_string(), None)?;
        Ok(Arc::new(Workers {
            handles,
            threads,
            acceptor,
        }))
    }

    pub fn first(&self) -> &Handle {
        &self.handles[0]
    }

    /// Worker `index`'s runtime.
    pub fn handle(&self, index: usize) -> &Handle {
        &self.handles[index % self.handles.len()]
    }

    /// The runtime of the accept loops (and the signal handler).
    pub fn acceptor(&self) -> &Handle {
        &self.acceptor
    }

    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The worker for a new connection (counted there at once): the active worker with
    /// the fewest connections, passing over one that runs a script past its start (its
    /// connections wait for the script; a new client, such as the one sending SCRIPT
    /// KILL, must be served). Returns its index and runtime.
    fn next(&self, server: &Server) -> (usize, &Handle) {
        let busy = server.scripting.busy.running_thread();
        let avoid = busy.and_then(|t| self.threads.iter().position(|&w| w == t));
        let index = match worker_load::get() {
            Some(loads) => loads.place(avoid),
            None => 0,
        };
        (index, self.handle(index))
    }
}

/// The TCP listeners of `port` and `tls-port`: opened at start-up, and moved by CONFIG SET
/// of either port (new sockets first, then the old accept loops are stopped, so a port that
/// cannot be bound leaves the old listener running).
pub struct Listeners {
    server: Arc<Server>,
    workers: Arc<Workers>,
    running: parking_lot::Mutex<Vec<(Security, u16, Vec<tokio::task::AbortHandle>)>>,
}

static LISTENERS: std::sync::OnceLock<Listeners> = std::sync::OnceLock::new();

impl Listeners {
    /// Sets up the process's listener registry (once, at start-up).
    pub fn install(server: Arc<Server>, workers: Arc<Workers>) -> &'static Listeners {
        LISTENERS.get_or_init(|| Listeners {
            server,
            workers,
            running: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// The registry [`Listeners::install`] set up. CONFIG SET hooks are registered only
    /// after it, so it is always there when they run.
    pub fn get() -> &'static Listeners {
        LISTENERS
            .get()
            .unwrap_or_else(|| unreachable!("listeners are installed before any CONFIG SET"))
    }

    /// Makes `security`'s listeners accept on `port` (0: none) on every `bind` address.
    /// Returns how many sockets are now listening for it.
    pub fn switch(
        &self,
        security: Security,
        port: i64,
        bind: &[String],
        backlog: i64,
    ) -> Result<usize, String> {
        let port = port as u16;
        let mut running = self.running.lock();
        let slot = running.iter().position(|(s, _, _)| *s == security);
        if let Some(i) = slot
            && running[i].1 == port
        {
            return Ok(running[i].2.len());
        }
        let mut opened = Vec::new();
        if port != 0 {
            for entry in bind {
                let Some((ip, optional)) = parse_bind(entry) else {
                    return Err(format!("Invalid bind address '{entry}'"));
                };
                let addr = SocketAddr::new(ip, port);
                match bind_tcp(addr, backlog as i32) {
                    Ok(listener) => opened.push(listener),
                    Err(e) if optional => log::debug!("Skipping optional bind {addr}: {e}"),
                    Err(e) => {
                        return Err(format!(
                            "Warning: Could not create server TCP listening socket {addr}: {e}"
                        ));
                    }
                }
            }
        }
        let handles: Vec<_> = opened
            .into_iter()
            .map(|listener| {
                self.workers
                    .acceptor()
                    .spawn(accept_tcp(
                        self.server.clone(),
                        self.workers.clone(),
                        listener,
                        security,
                    ))
                    .abort_handle()
            })
            .collect();
        let count = handles.len();
        if let Some(i) = slot {
            // Stopping an accept loop drops its socket: the old port closes.
            for old in running.remove(i).2 {
                old.abort();
            }
        }
        running.push((security, port, handles));
        Ok(count)
    }
}

/// Parses one `bind` entry: `*` is every IPv4 address, `::*` every IPv6 address, and a leading
/// `-` marks an address that may fail to bind (e.g. IPv6 unavailable) without stopping start-up.
pub fn parse_bind(entry: &str) -> Option<(IpAddr, bool)> {
    let (optional, addr) = match entry.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    let ip = match addr {
        "*" => IpAddr::from([0, 0, 0, 0]),
        "::*" => IpAddr::from([0u16; 8]),
        other => other.parse().ok()?,
    };
    Some((ip, optional))
}

/// Binds one TCP listener the way Valkey does (SO_REUSEADDR, IPV6_V6ONLY, the configured backlog).
pub fn bind_tcp(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// What a TCP listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// RESP in the clear (`port`).
    Plain,
    /// RESP inside TLS (`tls-port`), with the acceptor current when each client connects.
    Tls,
}

impl Security {
    /// The connection type's name in Valkey's log lines.
    pub fn name(self) -> &'static str {
        match self {
            Security::Plain => "tcp",
            Security::Tls => "tls",
        }
    }
}

/// How long a new TLS client has to complete its handshake before it is dropped (Valkey has
/// no limit; one keeps a silent connection from holding a `maxclients` slot for ever).
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts TCP connections forever on worker 0.
pub async fn accept_tcp(
    server: Arc<Server>,
    workers: Arc<Workers>,
    listener: std::net::TcpListener,
    security: Security,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("Could not register listener: {e}");
            return;
        }
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                log::warn!("Accepting client connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let config = server.config.load();
        let refused = refusal(&config, server.clients.count(), Some(peer.ip()));
        if security == Security::Tls {
            // Handshakes cost CPU: they run on the workers, not here.
            accept_tls(
                &server,
                &workers,
                stream,
                peer,
                refused,
                config.tcp_keepalive,
            );
            continue;
        }
        if let Some(refusal) = refused {
            count_refusal();
            refuse(stream, refusal).await;
            continue;
        }
        if let Err(e) = configure_tcp(&stream, config.tcp_keepalive) {
            log::debug!("Socket options for {peer}: {e}");
        }
        let laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("Handing off client {peer}: {e}");
                continue;
            }
        };
        let fd = raw_fd(&std_stream);
        let id = server.clients.next_id();
        let shared = Arc::new(ClientShared::new(
            id,
            peer.to_string(),
            laddr,
            fd,
            Transport::Tcp,
            clock::now_ms(),
        ));
        // Registered here, not on the worker, so the next accept already counts it.
        server.clients.register(shared.clone());
        let server = server.clone();
        let (worker, handle) = workers.next(&server);
        handle.spawn(async move {
            match tokio::net::TcpStream::from_std(std_stream) {
                Ok(stream) => connection::serve(server, stream, shared, &[]).await,
                Err(e) => {
                    log::warn!("Registering client socket: {e}");
                    server.clients.unregister(shared.id);
                    unplace(worker);
                }
            }
        });
    }
}

/// Hands a connection accepted on `tls-port` to the next worker, which runs the TLS
/// handshake and then serves it. A client the admission checks refuse still gets its error,
/// inside TLS, as in Valkey. An accepted client is registered before its handshake, so it
/// counts for `maxclients` at once.
fn accept_tls(
    server: &Arc<Server>,
    workers: &Workers,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    refused: Option<&'static [u8]>,
    keepalive: i64,
) {
    let Some(context) = ferrokv_tls::current() else {
        log::warn!("TLS client {peer} dropped: TLS is not configured");
        return;
    };
    let Some(tls) = context.server.as_ref() else {
        log::warn!("TLS client {peer} dropped: TLS is not configured");
        return;
    };
    let acceptor = tls.acceptor.clone();
    let user_field = tls.user_field;
    if let Err(e) = configure_tcp(&stream, keepalive) {
        log::debug!("Socket options for {peer}: {e}");
    }
    let laddr = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let std_stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            log::warn!("Handing off client {peer}: {e}");
            return;
        }
    };
    let handshake = async move |stream: std::net::TcpStream| {
        let stream = tokio::net::TcpStream::from_std(stream).map_err(|e| e.to_string())?;
        let stream = crate::relocatable::RelocatableSocket::new(stream);
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("handshake timed out".to_string()),
        }
    };
    if let Some(refusal) = refused {
        count_refusal();
        let (worker, handle) = workers.next(server);
        handle.spawn(async move {
            if let Ok(tls) = handshake(std_stream).await {
                refuse(tls, refusal).await;
            }
            unplace(worker);
        });
        return;
    }
    let fd = raw_fd(&std_stream);
    let id = server.clients.next_id();
    let shared = Arc::new(ClientShared::new(
        id,
        peer.to_string(),
        laddr.clone(),
        fd,
        Transport::Tls,
        clock::now_ms(),
    ));
    server.clients.register(shared.clone());
    let server = server.clone();
    let (worker, handle) = workers.next(&server);
    handle.spawn(async move {
        match handshake(std_stream).await {
            Ok(stream) => {
                let users = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|cert| ferrokv_tls::certificate_usernames(cert, user_field))
                    .unwrap_or_default();
                connection::serve(server, stream, shared, &users).await;
            }
            Err(e) => {
                log::debug!("Error accepting a client connection: {e} (addr={peer} laddr={laddr})");
                server.clients.unregister(shared.id);
                unplace(worker);
            }
        }
    });
}

/// Accepts Unix socket connections forever on worker 0.
pub async fn accept_unix(
    server: Arc<Server>,
    workers: Arc<Workers>,
    listener: std::os::unix::net::UnixListener,
    path: String,
) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("Could not register unix listener: {e}");
            return;
        }
    };
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                log::warn!("Accepting unix socket connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Some(refusal) = refusal(&server.config.load(), server.clients.count(), None) {
            count_refusal();
            refuse(stream, refusal).await;
            continue;
        }
        let Ok(std_stream) = stream.into_std() else {
            continue;
        };
        let fd = raw_fd(&std_stream);
        let id = server.clients.next_id();
        // Valkey 9.1 shows a Unix socket client as `[path:0]:0` in both fields.
        let shown = format!("[{path}:0]:0");
        let shared = Arc::new(ClientShared::new(
            id,
            shown.clone(),
            shown,
            fd,
            Transport::Unix,
            clock::now_ms(),
        ));
        server.clients.register(shared.clone());
        let server = server.clone();
        let (worker, handle) = workers.next(&server);
        handle.spawn(async move {
            match tokio::net::UnixStream::from_std(std_stream) {
                Ok(stream) => connection::serve(server, stream, shared, &[]).await,
                Err(e) => {
                    log::warn!("Registering unix client socket: {e}");
                    server.clients.unregister(shared.id);
                    unplace(worker);
                }
            }
        });
    }
}

/// Uncounts a connection placed on `worker` that was never served.
fn unplace(worker: usize) {
    if let Some(loads) = worker_load::get() {
        loads.connection_closed(worker);
    }
}

/// The admission checks, in Valkey's order: the error to send a new client before closing
/// its connection, or `None` to accept it. `peer` is `None` for a Unix socket client, which
/// counts as local. Protected mode refuses non-loopback clients while the default user has
/// no password (all of 127.0.0.0/8 and ::1 are loopback).
pub fn refusal(
    config: &ferrokv_config::Config,
    connected: usize,
    peer: Option<IpAddr>,
) -> Option<&'static [u8]> {
    if connected as i64 >= config.maxclients {
        return Some(MAX_CLIENTS_ERROR);
    }
    let local = peer.is_none_or(is_loopback);
    if config.protected_mode && config.requirepass.is_empty() && !local {
        return Some(PROTECTED_MODE_ERROR);
    }
    None
}

/// Sends a refused client its error and closes (counted by [`count_refusal`] when decided).
async fn refuse<S: tokio::io::AsyncWrite + Unpin>(mut stream: S, message: &[u8]) {
    let _ = stream.write_all(message).await;
    let _ = stream.shutdown().await;
}

/// Counts a refused connection (`rejected_connections`) when the refusal is decided, before
/// any TLS handshake: a client that never completes it was refused all the same (Valkey and
/// Redis count it at accept).
fn count_refusal() {
    stats::local().rejected_connections.add(1);
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// TCP_NODELAY, and `tcp-keepalive` as Valkey applies it: the first probe after that many
/// idle seconds, then one every third of it, and the peer is dropped after three unanswered
/// (so a dead client is found within twice the setting, not the kernel's default nine probes).
fn configure_tcp(stream: &tokio::net::TcpStream, keepalive_secs: i64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    if keepalive_secs > 0 {
        let sock = socket2::SockRef::from(stream);
        let ka = socket2::TcpKeepalive::new()
            .with_time(std::time::Duration::from_secs(keepalive_secs as u64))
            .with_interval(std::time::Duration::from_secs(
                (keepalive_secs / 3).max(1) as u64
            ))
            .with_retries(KEEPALIVE_PROBES);
        sock.set_tcp_keepalive(&ka)?;
    }
    Ok(())
}

/// Unanswered keepalive probes before the kernel drops a client (Valkey's `anetKeepAlive`).
const KEEPALIVE_PROBES: u32 = 3;

fn raw_fd(s: &impl std::os::fd::AsRawFd) -> i32 {
    s.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_sockets_get_valkeys_keepalive_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        configure_tcp(&accepted, 300).expect("configure");
        let sock = socket2::SockRef::from(&accepted);
        assert!(sock.tcp_nodelay().expect("nodelay"));
        assert!(sock.keepalive().expect("keepalive"));
        let secs = |d: std::time::Duration| d.as_secs();
        assert_eq!(secs(sock.tcp_keepalive_time().expect("idle")), 300);
        assert_eq!(secs(sock.tcp_keepalive_interval().expect("interval")), 100);
        assert_eq!(sock.tcp_keepalive_retries().expect("probes"), 3);

        let (plain, _) = {
            let _other = tokio::net::TcpStream::connect(addr).await.expect("connect");
            listener.accept().await.expect("accept")
        };
        configure_tcp(&plain, 0).expect("configure");
        assert!(
            !socket2::SockRef::from(&plain)
                .keepalive()
                .expect("keepalive")
        );
    }

    fn config(protected: bool, password: &str, maxclients: i64) -> ferrokv_config::Config {
        ferrokv_config::Config {
            protected_mode: protected,
            requirepass: password.into(),
            maxclients,
            ..Default::default()
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("test address"))
    }

    #[test]
    fn protected_mode_admits_only_local_clients_without_a_password() {
        let c = config(true, "", 100);
        for local in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.5"] {
            assert_eq!(refusal(&c, 0, ip(local)), None, "{local}");
        }
        assert_eq!(refusal(&c, 0, None), None, "unix socket");
        for remote in ["10.0.0.2", "192.168.1.1", "::ffff:10.0.0.1", "fd00::2"] {
            assert_eq!(
                refusal(&c, 0, ip(remote)),
                Some(PROTECTED_MODE_ERROR),
                "{remote}"
            );
        }
        assert_eq!(refusal(&config(true, "pw", 100), 0, ip("10.0.0.2")), None);
        assert_eq!(refusal(&config(false, "", 100), 0, ip("10.0.0.2")), None);
    }

    #[test]
    fn maxclients_is_checked_first() {
        let c = config(true, "", 2);
        assert_eq!(refusal(&c, 1, ip("127.0.0.1")), None);
        assert_eq!(refusal(&c, 2, ip("127.0.0.1")), Some(MAX_CLIENTS_ERROR));
        assert_eq!(refusal(&c, 2, ip("10.0.0.1")), Some(MAX_CLIENTS_ERROR));
    }
}
