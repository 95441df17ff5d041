//! The replica's connection to its primary: blocking reads with a short timeout, so that the
//! link notices between reads that it was abandoned (REPLICAOF elsewhere, NO ONE, shutdown)
//! or that the primary went silent for `repl-timeout`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokv_commands::Server;
use ferrokv_commands::client::ClientShared;

/// How often a blocked read wakes up to look at the generation and the timeout.
const POLL: Duration = Duration::from_millis(100);
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// A line (handshake reply, bulk header) longer than this is a protocol error.
const MAX_LINE: usize = 64 * 1024;

/// Why a link ended.
#[derive(Debug)]
pub enum Stop {
    /// The server no longer wants this link (a newer REPLICAOF, NO ONE, shutdown): no retry
    /// delay, no error to report.
    Abandoned,
    /// Anything else: log it, wait a second, reconnect.
    Failed(String),
}

impl Stop {
    pub fn failed(message: impl Into<String>) -> Stop {
        Stop::Failed(message.into())
    }
}

pub type LinkResult<T> = Result<T, Stop>;

/// The byte pipe: plain TCP, or TLS over it (`tls-replication yes`).
pub enum Io {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => &s.sock,
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.flush(),
        }
    }
}

/// Opens the TCP connection (the caller may wrap it in TLS).
pub fn dial(host: &str, port: u16, timeout: Duration) -> LinkResult<TcpStream> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| Stop::failed(format!("Unable to connect to PRIMARY: {e}")))?;
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(Stop::failed(format!(
        "Unable to connect to PRIMARY: {last}"
    )))
}

pub struct Conn<'s> {
    io: Io,
    /// Received bytes; `buf[start..]` are not consumed yet.
    buf: Vec<u8>,
    start: usize,
    server: &'s Server,
    generation: u64,
    last_read: Instant,
    /// `repl-timeout`.
    timeout: Duration,
    /// The link as a listed client: CLIENT KILL TYPE master ends it.
    listed: Option<Arc<ClientShared>>,
}

impl<'s> Conn<'s> {
    pub fn new(io: Io, server: &'s Server, generation: u64) -> LinkResult<Conn<'s>> {
        let tcp = io.tcp();
        tcp.set_read_timeout(Some(POLL))
            .and_then(|_| tcp.set_write_timeout(Some(Duration::from_secs(10))))
            .map_err(|e| Stop::failed(format!("Socket setup: {e}")))?;
        let timeout_secs = server.config.load().repl_timeout.max(1) as u64;
        Ok(Conn {
            io,
            buf: Vec::new(),
            start: 0,
            server,
            generation,
            last_read: Instant::now(),
            timeout: Duration::from_secs(timeout_secs),
            listed: None,
        })
    }

    /// The primary's address and ours, as CLIENT LIST shows them (`addr`, `laddr`), and the
    /// socket's descriptor.
    pub fn addresses(&self) -> (String, String, i32) {
        let tcp = self.io.tcp();
        let text =
            |a: std::io::Result<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        (
            text(tcp.peer_addr()),
            text(tcp.local_addr()),
            tcp.as_raw_fd(),
        )
    }

    /// From now on a CLIENT KILL of `client` ends the link.
    pub fn listed_as(&mut self, client: Arc<ClientShared>) {
        self.listed = Some(client);
    }

    pub fn server(&self) -> &'s Server {
        self.server
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this link should go on: still the current generation, server running, and
    /// the primary heard from within `repl-timeout`.
    pub fn check(&self) -> LinkResult<()> {
        if self
            .server
            .shutdown_requested
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(Stop::Abandoned);
        }
        let current = self
            .server
            .replication
            .primary()
            .is_some_and(|link| link.generation == self.generation);
        if !current {
            return Err(Stop::Abandoned);
        }
        if self.last_read.elapsed() > self.timeout {
            return Err(Stop::failed("Timeout connecting to the PRIMARY..."));
        }
        if self.listed.as_ref().is_some_and(|c| c.is_killed()) {
            return Err(Stop::failed(
                "Connection with primary closed by CLIENT KILL",
            ));
        }
        Ok(())
    }

    /// Restarts the `repl-timeout` clock (after loading a snapshot, which reads nothing for
    /// a while when it loads from a file).
    pub fn touch(&mut self) {
        self.last_read = Instant::now();
    }

    /// The bytes received and not consumed.
    pub fn available(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
    }

    /// Reads what the socket has (waiting at most [`POLL`]); returns whether bytes came.
    /// Fails when the link must end.
    pub fn fill(&mut self) -> LinkResult<bool> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= READ_CHUNK {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let got = self.io.read(&mut self.buf[len..]);
        self.buf.truncate(len + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => Err(Stop::failed("Connection lost with the PRIMARY")),
            Ok(_) => {
                self.last_read = Instant::now();
                let now = ferrokv_store::clock::now_ms();
                self.server
                    .replication
                    .update_link(self.generation, |link| link.last_io_ms = now);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                self.check()?;
                Ok(false)
            }
            Err(e) => Err(Stop::failed(format!("Error reading from the PRIMARY: {e}"))),
        }
    }

    /// One line without its "\r\n" (a bare "\n", the primary's keepalive, is an empty line).
    pub fn read_line(&mut self) -> LinkResult<Vec<u8>> {
        loop {
            if let Some(at) = self.available().iter().position(|&b| b == b'\n') {
                let mut line = self.available()[..at].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(at + 1);
                return Ok(line);
            }
            if self.available().len() > MAX_LINE {
                return Err(Stop::failed(
                    "Protocol error: line too long from the PRIMARY",
                ));
            }
            self.fill()?;
        }
    }

    /// The next line that is not a keepalive newline.
    pub fn read_reply_line(&mut self) -> LinkResult<String> {
        loop {
            let line = self.read_line()?;
            if !line.is_empty() {
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> LinkResult<()> {
        self.io
            .write_all(bytes)
            .and_then(|_| self.io.flush())
            .map_err(|e| Stop::failed(format!("Error writing to the PRIMARY: {e}")))
    }

    /// Sends a command and reads its one-line reply.
    pub fn command(&mut self, args: &[&[u8]]) -> LinkResult<String> {
        self.send(&encode(args))?;
        self.read_reply_line()
    }
}

/// A RESP multibulk request.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}
