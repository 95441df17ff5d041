//! A full synchronization's snapshot: reading the payload (`$<len>` or `$EOF:<mark>`),
//! emptying the keyspace, and loading the primary's RDB, through a file in `dir`
//! (`repl-diskless-load disabled`) or straight from the socket.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use ferrokv_commands::{Server, loading};
use ferrokv_persist::{LoadOptions, LoadReport};
use ferrokv_store::{Db, clock};

use super::conn::{Conn, LinkResult, Stop};

/// The EOF mark's length (40 random characters).
const MARK_LEN: usize = 40;

/// How the payload's end is known.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    Sized(u64),
    Marked([u8; MARK_LEN]),
}

fn parse_header(line: &[u8]) -> LinkResult<Framing> {
    if let Some(rest) = line.strip_prefix(b"$EOF:") {
        let mark: [u8; MARK_LEN] = rest.try_into().map_err(|_| {
            Stop::failed("Bad protocol from PRIMARY, the EOF mark is not 40 bytes long")
        })?;
        return Ok(Framing::Marked(mark));
    }
    if let Some(rest) = line.strip_prefix(b"$")
        && let Some(len) = std::str::from_utf8(rest)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
    {
        return Ok(Framing::Sized(len));
    }
    if line.starts_with(b"-") {
        return Err(Stop::failed(format!(
            "PRIMARY aborted replication with an error: {}",
            String::from_utf8_lossy(&line[1..])
        )));
    }
    Err(Stop::failed(format!(
        "Bad protocol from PRIMARY, the first byte is not '$' (we received '{}'), are you sure the host and port are right?",
        String::from_utf8_lossy(line)
    )))
}

/// The payload's bytes, as a `Read` that ends where the payload ends; what follows it (the
/// command stream) stays in the connection's buffer.
struct Payload<'c, 's> {
    conn: &'c mut Conn<'s>,
    framing: Framing,
    done: bool,
    read: u64,
    /// Why reading stopped, when the link failed under the loader.
    stopped: Option<Stop>,
    last_report: Instant,
}

impl Payload<'_, '_> {
    fn report_progress(&mut self, force: bool) {
        if !force && self.last_report.elapsed().as_millis() < 100 {
            return;
        }
        self.last_report = Instant::now();
        let read = self.read as i64;
        self.conn
            .server()
            .replication
            .update_link(self.conn.generation(), |link| link.transfer_read = read);
    }

    fn fill(&mut self) -> io::Result<()> {
        match self.conn.fill() {
            Ok(_) => Ok(()),
            Err(stop) => {
                self.stopped = Some(stop);
                Err(io::Error::other("replication link stopped"))
            }
        }
    }

    /// Copies up to `n` available bytes into `out`.
    fn take(&mut self, out: &mut [u8], n: usize) -> usize {
        let n = n.min(out.len());
        out[..n].copy_from_slice(&self.conn.available()[..n]);
        self.conn.consume(n);
        self.read += n as u64;
        self.report_progress(false);
        n
    }
}

impl Read for Payload<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.done {
                return Ok(0);
            }
            let available = self.conn.available().len();
            match &self.framing {
                Framing::Sized(len) => {
                    let left = len - self.read;
                    if left == 0 {
                        self.done = true;
                        continue;
                    }
                    if available > 0 {
                        let n = available.min(usize::try_from(left).unwrap_or(usize::MAX));
                        return Ok(self.take(out, n));
                    }
                }
                Framing::Marked(mark) => {
                    // The mark can arrive split over reads: bytes that could be its start are
                    // held back until enough follows them.
                    let found = find(self.conn.available(), mark);
                    match found {
                        Some(0) => {
                            self.conn.consume(MARK_LEN);
                            self.done = true;
                            continue;
                        }
                        Some(at) => return Ok(self.take(out, at)),
                        None if available >= MARK_LEN => {
                            return Ok(self.take(out, available - (MARK_LEN - 1)));
                        }
                        None => {}
                    }
                }
            }
            self.fill()?;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(at) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + at;
        if haystack.len() - at < needle.len() {
            return None;
        }
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Empties every database and the function libraries before a snapshot is loaded (what
/// FLUSHALL does, without propagating or saving).
pub fn empty_data(server: &Server, in_background: bool) {
    ferrokv_commands::persistence::abort_running(server);
    let databases = server.keyspace.databases();
    let mut locked = server.keyspace.lock_all();
    for db in 0..databases {
        ferrokv_commands::transaction::touch_db(server, &mut locked, db, None, clock::now_ms());
    }
    ferrokv_commands::tracking::invalidate_all(server);
    // The keys local clients gave a TTL are gone with the rest.
    ferrokv_commands::replica_keys::forget_all();
    let detached: Vec<Db> = (0..databases).flat_map(|db| locked.take_db(db)).collect();
    drop(locked);
    if in_background {
        ferrokv_commands::lazyfree::free_databases(detached);
    } else {
        drop(detached);
    }
    ferrokv_commands::blocking::signal_all_waited(server, None);
    server
        .scripting
        .libraries
        .update(|state| *state = Default::default());
}

fn load_options(server: &Server) -> LoadOptions {
    // A replica loads every key, expired or not: they go when the primary's DELs come.
    LoadOptions {
        after_key: Some(loading::after_key),
        ..ferrokv_commands::persistence::load_options(server, i64::MIN)
    }
}

/// Receives and loads the snapshot that follows `+FULLRESYNC`; returns the database the
/// primary's stream goes on in (its `repl-stream-db`, else 0).
pub fn receive(conn: &mut Conn<'_>) -> LinkResult<usize> {
    let server = conn.server();
    let generation = conn.generation();
    let header = loop {
        let line = conn.read_line()?;
        if !line.is_empty() {
            break line;
        }
    };
    let framing = parse_header(&header)?;
    let size = match framing {
        Framing::Sized(len) => len as i64,
        Framing::Marked(_) => -1,
    };
    let now = ferrokv_store::clock::now_ms();
    server.replication.update_link(generation, |link| {
        link.state = ferrokv_commands::replication::LinkState::Transfer;
        link.transfer_size = size;
        link.transfer_read = 0;
        link.sync_started_ms = now;
    });
    let config = server.config.load();
    // `on-empty-db` loads from the socket only when nothing would be lost if the transfer
    // failed half-way (Valkey's rule: no key in any database); otherwise through a file.
    let keys: usize = (0..server.keyspace.databases())
        .map(|db| server.keyspace.db_len(db))
        .sum();
    let to_disk = config.repl_diskless_load == "disabled"
        || (config.repl_diskless_load == "on-empty-db" && keys > 0);
    let aside = config.repl_diskless_load == "swapdb";
    match &framing {
        Framing::Sized(len) => log::info!(
            "PRIMARY <-> REPLICA sync: receiving {len} bytes from primary to {}",
            if to_disk { "disk" } else { "parser" }
        ),
        Framing::Marked(_) => log::info!(
            "PRIMARY <-> REPLICA sync: receiving streamed RDB from primary with EOF to {}",
            if to_disk { "disk" } else { "parser" }
        ),
    }
    let mut payload = Payload {
        conn,
        framing,
        done: false,
        read: 0,
        stopped: None,
        last_report: Instant::now(),
    };
    let result = if to_disk {
        load_through_file(
            server,
            &mut payload,
            &config.dbfilename,
            !config.save.trim().is_empty(),
        )
    } else if aside {
        load_aside(server, &mut payload, config.replica_lazy_flush)
    } else {
        load_from_socket(server, &mut payload, config.replica_lazy_flush)
    };
    payload.report_progress(true);
    let outcome = match result {
        Ok(report) => after_load(server, &report),
        Err(stop) if aside => {
            log::warn!("PRIMARY <-> REPLICA sync: the load failed; the old data stays");
            Err(stop)
        }
        Err(stop) => {
            // Whatever part was loaded is not a state of the primary's.
            empty_data(server, true);
            Err(stop)
        }
    };
    if server.persistence.loading.swap(false, Relaxed) {
        loading::end();
    }
    outcome
}

/// `repl-diskless-load swapdb`: the snapshot is loaded into a keyspace of its own while
/// clients keep reading the old data (no LOADING replies); only a complete load replaces
/// it, in one step under every shard lock. A failed transfer leaves the old data as it was.
/// The price is memory for both datasets during the load, as in Valkey.
fn load_aside(
    server: &Server,
    payload: &mut Payload<'_, '_>,
    lazy_flush: bool,
) -> LinkResult<LoadReport> {
    log::info!("PRIMARY <-> REPLICA sync: Loading DB aside, the current data is still served");
    let staged = ferrokv_store::Keyspace::new(server.keyspace.databases());
    server.persistence.async_loading.store(true, Relaxed);
    let report = read_rdb(payload, &staged, load_options(server));
    server.persistence.async_loading.store(false, Relaxed);
    let report = report?;
    {
        let mut locked = server.keyspace.lock_all();
        for db in 0..server.keyspace.databases() {
            ferrokv_commands::transaction::touch_db(server, &mut locked, db, None, clock::now_ms());
        }
        ferrokv_commands::tracking::invalidate_all(server);
        ferrokv_commands::replica_keys::forget_all();
        locked.exchange_with(&mut staged.lock_all());
    }
    // `staged` now holds the old data.
    if lazy_flush {
        let keys: usize = (0..staged.databases()).map(|db| staged.db_len(db)).sum();
        ferrokv_commands::lazyfree::free_in_background(staged, keys as u64);
    } else {
        drop(staged);
    }
    ferrokv_commands::blocking::signal_all_waited(server, None);
    server
        .scripting
        .libraries
        .update(|state| *state = Default::default());
    Ok(report)
}

/// From here until [`receive`] ends, clients get LOADING (as from Valkey), never the empty or
/// half-loaded keyspace; INFO shows the load's progress.
fn begin_loading(server: &Server, total_bytes: u64) {
    server.persistence.loading.store(true, Relaxed);
    loading::begin(total_bytes, server.config.load().key_load_delay);
}

fn load_from_socket(
    server: &Server,
    payload: &mut Payload<'_, '_>,
    lazy_flush: bool,
) -> LinkResult<LoadReport> {
    let total_bytes = match payload.framing {
        Framing::Sized(len) => len,
        Framing::Marked(_) => 0,
    };
    begin_loading(server, total_bytes);
    log::info!("PRIMARY <-> REPLICA sync: Flushing old data");
    empty_data(server, lazy_flush);
    log::info!("PRIMARY <-> REPLICA sync: Loading DB in memory");
    read_rdb(payload, &server.keyspace, load_options(server))
}

/// Loads the payload's RDB into `keyspace` and reads the payload to its end.
fn read_rdb(
    payload: &mut Payload<'_, '_>,
    keyspace: &ferrokv_store::Keyspace,
    options: LoadOptions,
) -> LinkResult<LoadReport> {
    let loaded = {
        let mut reader = BufReader::with_capacity(1 << 20, &mut *payload);
        ferrokv_persist::load::load_from(&mut reader, keyspace, options)
    };
    if let Some(stop) = payload.stopped.take() {
        return Err(stop);
    }
    let report = loaded.map_err(|e| {
        for line in e.valkey_log_lines() {
            log::warn!("{line}");
        }
        Stop::failed(format!(
            "Failed trying to load the PRIMARY synchronization DB from socket: {e}"
        ))
    })?;
    // The loader stops at the RDB's end; a payload never has more, but a stray tail must not
    // be taken for commands.
    io::copy(payload, &mut io::sink()).map_err(|_| {
        payload
            .stopped
            .take()
            .unwrap_or_else(|| Stop::failed("Error reading the payload's end"))
    })?;
    Ok(report)
}

fn temp_name() -> PathBuf {
    PathBuf::from(format!(
        "temp-{}.{}.rdb",
        ferrokv_store::clock::now_ms() / 1000,
        std::process::id()
    ))
}

fn load_through_file(
    server: &Server,
    payload: &mut Payload<'_, '_>,
    dbfilename: &str,
    keep_file: bool,
) -> LinkResult<LoadReport> {
    let temp = temp_name();
    let written = write_file(&temp, payload);
    if let Some(stop) = payload.stopped.take() {
        let _ = std::fs::remove_file(&temp);
        return Err(stop);
    }
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(Stop::failed(format!(
            "Failed trying to write the temp DB to disk: {e}"
        )));
    }
    let target = Path::new(dbfilename);
    if let Err(e) = std::fs::rename(&temp, target) {
        let _ = std::fs::remove_file(&temp);
        return Err(Stop::failed(format!(
            "Failed trying to rename the temp DB into {dbfilename} in PRIMARY <-> REPLICA synchronization: {e}"
        )));
    }
    begin_loading(server, std::fs::metadata(target).map_or(0, |m| m.len()));
    log::info!("PRIMARY <-> REPLICA sync: Flushing old data");
    empty_data(server, server.config.load().replica_lazy_flush);
    log::info!("PRIMARY <-> REPLICA sync: Loading DB in memory");
    let loaded = ferrokv_persist::load_file(target, &server.keyspace, load_options(server));
    if !keep_file {
        // Persistence is off: the received file was only a way to load.
        let _ = std::fs::remove_file(target);
    }
    match loaded {
        Ok(Some(report)) => Ok(report),
        Ok(None) => Err(Stop::failed("The received DB file vanished before loading")),
        Err(e) => {
            for line in e.valkey_log_lines() {
                log::warn!("{line}");
            }
            Err(Stop::failed(format!(
                "Failed trying to load the PRIMARY synchronization DB from disk: {e}"
            )))
        }
    }
}

fn write_file(path: &Path, payload: &mut Payload<'_, '_>) -> io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    io::copy(payload, &mut out)?;
    out.flush()?;
    out.get_ref().sync_all()
}

fn after_load(server: &Server, report: &LoadReport) -> LinkResult<usize> {
    for code in &report.functions {
        if let Err(e) = ferrokv_commands::cmd::scripting::load_library_at_startup(server, code) {
            return Err(Stop::failed(format!(
                "Failed trying to load the PRIMARY synchronization DB: function library: {e}"
            )));
        }
    }
    log::info!("{}", report.summary());
    let stream_db = report
        .aux_text("repl-stream-db")
        .and_then(|db| db.parse::<usize>().ok())
        .filter(|&db| db < server.keyspace.databases())
        .unwrap_or(0);
    Ok(stream_db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(parse_header(b"$123").ok(), Some(Framing::Sized(123)));
        let mark = [b'a'; MARK_LEN];
        let mut line = b"$EOF:".to_vec();
        line.extend_from_slice(&mark);
        assert_eq!(parse_header(&line).ok(), Some(Framing::Marked(mark)));
        assert!(parse_header(b"$EOF:abc").is_err());
        assert!(parse_header(b"+OK").is_err());
        assert!(parse_header(b"-ERR x").is_err());
    }

    #[test]
    fn find_locates_the_mark() {
        assert_eq!(find(b"xxabcx", b"abc"), Some(2));
        assert_eq!(find(b"xxab", b"abc"), None);
        assert_eq!(find(b"aabc", b"abc"), Some(1));
    }
}
