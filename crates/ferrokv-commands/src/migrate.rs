//! MIGRATE's connections to target instances: connecting, reading and writing with a
//! deadline, and the cache of open connections Valkey keeps per `host:port`.
//!
//! The I/O is blocking (std sockets with `SO_RCVTIMEO`/`SO_SNDTIMEO`) because MIGRATE runs
//! inside a synchronous handler that holds its keys' shards (see `cmd/dump/migrate.rs`): it
//! blocks the worker thread that runs it for at most the command's timeout per step, as
//! Valkey blocks its whole event loop.
//!
//! What Valkey does and this copies, since the replies of MIGRATE depend on it:
//! - The port argument goes through `atoi`, is printed into a 6-byte buffer (so only its
//!   first five characters count) and resolved with the host by `getaddrinfo`.
//! - Only a failure before the connection attempt is under way (an unknown host, a negative
//!   port, an unreachable network) is "error or timeout connecting to the client". A refused
//!   or timed-out connection is found out by the first write ("... writing to target
//!   instance"), since Valkey's blocking connect reports success either way.
//! - Replies are read a line at a time into a 1024-byte buffer: a line longer than 1023
//!   bytes is cut there and its remainder is read as the next reply, and a bare `\n` counts
//!   as a read error.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Connections kept at most (Valkey's `MIGRATE_SOCKET_CACHE_ITEMS`).
pub const CACHE_CAPACITY: usize = 64;
/// A cached connection unused for longer than this is closed (`MIGRATE_SOCKET_CACHE_TTL`).
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// Valkey writes the request in chunks of this size, each with the full timeout.
const WRITE_CHUNK: usize = 64 * 1024;
/// `last_db` of a connection whose database is unknown.
pub const UNKNOWN_DB: i64 = -1;
/// Valkey's reply buffer holds 1024 bytes with the terminating NUL.
const LINE_MAX: usize = 1023;

/// Why a read or write on a target failed. Valkey retries a fresh connection once after any
/// failure but a timeout (`errno != ETIMEDOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub timed_out: bool,
}

impl Failure {
    const TIMEOUT: Failure = Failure { timed_out: true };
    const OTHER: Failure = Failure { timed_out: false };

    fn of(error: &std::io::Error) -> Failure {
        match error.kind() {
            // SO_RCVTIMEO/SO_SNDTIMEO expiring reads as EAGAIN.
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::TIMEOUT,
            _ => Failure::OTHER,
        }
    }
}

/// How opening a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// Before any attempt got under way: "IOERR error or timeout connecting to the client".
    Unresolved,
    /// The attempt itself failed: Valkey only notices when it writes, so this is handled
    /// as a write failure.
    Failed(Failure),
}

/// One open connection to a target.
pub struct Target {
    // Cluster mode will open TLS connections here when `tls-cluster` is on (Valkey's
    // `connTypeOfCluster()`): a rustls client connection built from ferrokv-tls's client
    // configuration, driven synchronously over this socket. Standalone Valkey always
    // migrates over plain TCP, so this is plain TCP for now.
    stream: TcpStream,
    /// Bytes received past the last reply line read (Valkey leaves them in the socket).
    buf: Vec<u8>,
    pos: usize,
    /// The database the last successful MIGRATE on this connection selected, -1 when
    /// unknown (new, or after an error reply): SELECT is sent when the requested database
    /// differs. Valkey's `last_dbid`, kept as a plain number because it is compared as one:
    /// a MIGRATE to database -1 on such a connection sends no SELECT at all.
    pub last_db: i64,
    last_use: Instant,
}

impl Target {
    /// Opens a connection to `host`:`port` (the raw arguments, see the module notes).
    pub fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Result<Target, ConnectError> {
        let port = port_number(port).ok_or(ConnectError::Unresolved)?;
        let addrs = resolve(host, port).ok_or(ConnectError::Unresolved)?;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Target {
                        stream,
                        buf: Vec::new(),
                        pos: 0,
                        last_db: UNKNOWN_DB,
                        last_use: Instant::now(),
                    });
                }
                // connect(2) itself failed: Valkey's getaddrinfo loop goes on to the next
                // address.
                Err(e) if fails_at_once(&e) => continue,
                Err(e) => return Err(ConnectError::Failed(Failure::of(&e))),
            }
        }
        Err(ConnectError::Unresolved)
    }

    /// Writes `bytes`, each 64 KiB chunk within `timeout`.
    pub fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), Failure> {
        for chunk in bytes.chunks(WRITE_CHUNK) {
            let deadline = deadline(timeout);
            let mut done = 0;
            while done < chunk.len() {
                let left = remaining(deadline).ok_or(Failure::TIMEOUT)?;
                self.stream
                    .set_write_timeout(Some(left))
                    .map_err(|_| Failure::OTHER)?;
                match self.stream.write(&chunk[done..]) {
                    Ok(0) => return Err(Failure::OTHER),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(Failure::of(&e)),
                }
            }
        }
        Ok(())
    }

    /// Reads one reply line within `timeout`, without its `\r\n`, as Valkey's
    /// `syncReadLine` into a 1024-byte buffer reads it.
    pub fn read_line(&mut self, timeout: Duration) -> Result<Vec<u8>, Failure> {
        let deadline = deadline(timeout);
        loop {
            let available = &self.buf[self.pos..];
            let window = &available[..available.len().min(LINE_MAX)];
            if let Some(end) = window.iter().position(|&b| b == b'\n') {
                let mut line = window[..end].to_vec();
                self.consume(end + 1);
                if end == 0 {
                    // syncReadLine returns 0 bytes read, which MIGRATE takes for an error.
                    return Err(Failure::OTHER);
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if window.len() == LINE_MAX {
                let line = window.to_vec();
                self.consume(LINE_MAX);
                return Ok(line);
            }
            let left = remaining(deadline).ok_or(Failure::TIMEOUT)?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|_| Failure::OTHER)?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Failure::OTHER),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::of(&e)),
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }
}

/// Errors of connect(2) itself, before the handshake is under way.
fn fails_at_once(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NetworkUnreachable
            | ErrorKind::AddrNotAvailable
            | ErrorKind::PermissionDenied
            | ErrorKind::InvalidInput
            | ErrorKind::Unsupported
    )
}

/// `getaddrinfo(host, port)`: `None` when it fails. The host is a C string in Valkey, so
/// it ends at its first NUL.
fn resolve(host: &[u8], port: u16) -> Option<Vec<SocketAddr>> {
    let host = host.split(|&b| b == 0).next().unwrap_or_default();
    let host = std::str::from_utf8(host).ok()?;
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
    (!addrs.is_empty()).then_some(addrs)
}

/// The port Valkey connects to for the port argument: `atoi`, printed with `%d` into a
/// 6-byte buffer (five characters survive), parsed by `getaddrinfo`, which refuses a
/// negative number and keeps the low 16 bits of a larger one.
fn port_number(arg: &[u8]) -> Option<u16> {
    let text = atoi(arg).to_string();
    let text = &text[..text.len().min(5)];
    if text.starts_with('-') {
        return None;
    }
    text.parse::<u32>().ok().map(|n| (n & 0xffff) as u16)
}

/// glibc's `atoi`: `(int) strtol(s, NULL, 10)`, so leading white space and a sign are
/// skipped, it stops at the first non-digit, a value past `long` saturates, and the
/// conversion to `int` keeps the low 32 bits.
fn atoi(arg: &[u8]) -> i32 {
    let mut i = 0;
    while i < arg.len() && matches!(arg[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let negative = arg.get(i) == Some(&b'-');
    if matches!(arg.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let mut value: i128 = 0;
    while let Some(digit) = arg.get(i).filter(|b| b.is_ascii_digit()) {
        value = (value * 10 + i128::from(digit - b'0')).min(i128::from(i64::MAX) + 1);
        i += 1;
    }
    let value = if negative { -value } else { value };
    let long = value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    long as i32
}

fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// The time left before `deadline` (`None` when it passed; no deadline: a day, re-armed on
/// each wait).
fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        Some(at) => at
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero()),
        None => Some(Duration::from_secs(86_400)),
    }
}

/// The connections MIGRATE keeps open, by `host:port` as the arguments spell them.
///
/// A MIGRATE takes its connection out of the cache for the transfer and puts it back after
/// a success or an error reply (never after an I/O error), so two workers migrating to the
/// same target at once each use a connection of their own. At most [`CACHE_CAPACITY`] are
/// kept; the server cron closes those idle for longer than [`CACHE_TTL`], and each lookup
/// does too.
#[derive(Default)]
pub struct SocketCache {
    sockets: Mutex<HashMap<Vec<u8>, Target>>,
    /// What INFO's `migrate_cached_sockets` shows, and lets the cron skip the lock.
    count: AtomicUsize,
}

impl SocketCache {
    pub fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached connection to `name`, taken out of the cache.
    pub fn take(&self, name: &[u8]) -> Option<Target> {
        let mut sockets = self.sockets.lock();
        close_idle_in(&mut sockets, Instant::now());
        let mut target = sockets.remove(name);
        self.count.store(sockets.len(), Relaxed);
        if let Some(target) = &mut target {
            target.last_use = Instant::now();
        }
        target
    }

    /// Keeps `target` for the next MIGRATE to `name`. With the cache full, the connection
    /// used least recently is closed (Valkey closes a random one).
    pub fn put(&self, name: Vec<u8>, target: Target) {
        let replaced = {
            let mut sockets = self.sockets.lock();
            let mut evicted = None;
            if sockets.len() >= CACHE_CAPACITY && !sockets.contains_key(&name) {
                let oldest = sockets
                    .iter()
                    .min_by_key(|(_, t)| t.last_use)
                    .map(|(n, _)| n.clone());
                evicted = oldest.and_then(|n| sockets.remove(&n));
            }
            let replaced = sockets.insert(name, target);
            self.count.store(sockets.len(), Relaxed);
            (replaced, evicted)
        };
        // Closed outside the lock.
        drop(replaced);
    }

    /// Closes the connections idle for longer than [`CACHE_TTL`] (the server cron).
    pub fn close_idle(&self) {
        if self.is_empty() {
            return;
        }
        let closed = {
            let mut sockets = self.sockets.lock();
            let closed = close_idle_in(&mut sockets, Instant::now());
            self.count.store(sockets.len(), Relaxed);
            closed
        };
        drop(closed);
    }
}

fn close_idle_in(sockets: &mut HashMap<Vec<u8>, Target>, now: Instant) -> Vec<Target> {
    let idle: Vec<Vec<u8>> = sockets
        .iter()
        .filter(|(_, t)| now.saturating_duration_since(t.last_use) > CACHE_TTL)
        .map(|(name, _)| name.clone())
        .collect();
    idle.iter()
        .filter_map(|name| sockets.remove(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_as_valkey_reads_them() {
        assert_eq!(port_number(b"6379"), Some(6379));
        assert_eq!(port_number(b" +6379"), Some(6379));
        assert_eq!(port_number(b"6379abc"), Some(6379));
        assert_eq!(port_number(b"abc"), Some(0));
        assert_eq!(port_number(b""), Some(0));
        assert_eq!(port_number(b"-1"), None);
        // Only five characters of "%d" reach getaddrinfo.
        assert_eq!(port_number(b"125813"), Some(12581));
        assert_eq!(port_number(b"70000"), Some(4464));
        // strtol saturates at LONG_MAX, whose low 32 bits are -1.
        assert_eq!(port_number(b"99999999999999999999"), None);
        assert_eq!(atoi(b"4294967297"), 1);
        assert_eq!(atoi(b"-99999999999999999999"), 0);
    }

    #[test]
    fn lines_are_cut_like_valkeys_reply_buffer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let long = "x".repeat(1500);
            s.write_all(format!("+OK\r\n-ERR a\rb\r\n\r\n{long}\r\n\n").as_bytes())
                .unwrap();
        });
        let timeout = Duration::from_secs(5);
        let mut t = Target::connect(b"127.0.0.1", port.to_string().as_bytes(), timeout).unwrap();
        assert_eq!(t.read_line(timeout).unwrap(), b"+OK");
        assert_eq!(t.read_line(timeout).unwrap(), b"-ERR a\rb");
        assert_eq!(t.read_line(timeout).unwrap(), b"");
        assert_eq!(t.read_line(timeout).unwrap().len(), LINE_MAX);
        assert_eq!(t.read_line(timeout).unwrap().len(), 1500 - LINE_MAX);
        assert_eq!(t.read_line(timeout), Err(Failure::OTHER));
        peer.join().unwrap();
        assert_eq!(t.read_line(timeout), Err(Failure::OTHER));
    }

    #[test]
    fn a_silent_target_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let timeout = Duration::from_millis(100);
        let mut t = Target::connect(b"127.0.0.1", port.to_string().as_bytes(), timeout).unwrap();
        let started = Instant::now();
        assert_eq!(t.read_line(timeout), Err(Failure::TIMEOUT));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[test]
    fn the_cache_is_bounded_and_closes_idle_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let timeout = Duration::from_secs(5);
        let cache = SocketCache::default();
        for i in 0..CACHE_CAPACITY + 3 {
            let target = Target::connect(b"127.0.0.1", port.as_bytes(), timeout).unwrap();
            cache.put(format!("t{i}").into_bytes(), target);
        }
        assert_eq!(cache.len(), CACHE_CAPACITY);
        // The least recently used went first.
        assert!(cache.take(b"t0").is_none());
        assert!(cache.take(b"t3").is_some());
        let mut stale = cache.take(b"t4").unwrap();
        assert_eq!(cache.len(), CACHE_CAPACITY - 2);
        stale.last_use = Instant::now()
            .checked_sub(CACHE_TTL + Duration::from_secs(1))
            .unwrap();
        cache.put(b"stale".to_vec(), stale);
        assert_eq!(cache.len(), CACHE_CAPACITY - 1);
        cache.close_idle();
        assert_eq!(cache.len(), CACHE_CAPACITY - 2);
        assert!(cache.take(b"stale").is_none());
    }

    #[test]
    fn unknown_hosts_fail_before_connecting() {
        let timeout = Duration::from_millis(100);
        assert!(matches!(
            Target::connect(b"", b"6379", timeout),
            Err(ConnectError::Unresolved)
        ));
        assert!(matches!(
            Target::connect(b"127.0.0.1", b"-5", timeout),
            Err(ConnectError::Unresolved)
        ));
    }
}
