//! The append-only file: a pinned consumer of the propagation stream that appends it to the
//! current increment file of a multi-part AOF directory (`manifest.rs`), loads the
//! directory at start-up (`load.rs`), and writes a base file from the dataset when AOF is
//! switched on at run time (`rewrite.rs`).
//!
//! **When bytes reach the file.** Before a connection writes its replies it calls
//! [`Aof::before_reply`]: the stream's new bytes are written (one `write`) by whichever
//! thread gets there first, so a process crash (kill -9) loses nothing that was answered,
//! whatever the fsync policy. Then:
//! - `appendfsync always`: the thread also waits until the file is fsynced up to the stream's
//!   end: the first thread fsyncs for everybody who appended meanwhile (group commit), the
//!   others find their bytes durable when they get the file lock;
//! - `everysec`: a background thread fsyncs once a second (a power loss costs ~1-2 s);
//! - `no`: the OS decides.
//!
//! The background thread also writes what no connection wrote (a batch whose writer lost
//! the race for the lock) every 100 ms, and retries after a write error.

mod load;
pub mod manifest;
mod rewrite;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::context::CmdError;
use crate::propagate::Subscription;
use crate::server::Server;
use manifest::{FileEntry, FileKind, Manifest};

pub use load::load_dir;

const POLICY_ALWAYS: u8 = 0;
const POLICY_EVERYSEC: u8 = 1;
const POLICY_NO: u8 = 2;

fn policy_of(name: &str) -> u8 {
    match name {
        "always" => POLICY_ALWAYS,
        "no" => POLICY_NO,
        _ => POLICY_EVERYSEC,
    }
}

/// One `name:value` line of INFO.
pub type InfoField = (&'static str, String);

/// The AOF's state, shared by every thread.
#[derive(Default)]
pub struct Aof {
    enabled: AtomicBool,
    policy: AtomicU8,
    writer: Mutex<Option<Writer>>,
    /// Stream offset written to the file / fsynced.
    written: AtomicU64,
    synced: AtomicU64,
    /// The last write failed: write commands are refused (MISCONF) until one succeeds.
    failing: AtomicBool,
    last_error: Mutex<String>,
    current_size: AtomicU64,
    base_size: AtomicU64,
    timestamps: AtomicBool,
    last_fsync_ms: AtomicI64,
}

struct Writer {
    sub: Subscription,
    file: File,
    /// A second descriptor of the same file: the background fsync uses it without the lock.
    sync_handle: File,
    /// Stream offset consumed so far.
    offset: u64,
    buf: Vec<u8>,
    last_ts: i64,
}

/// The server, for the `appendonly` / `appendfsync` apply hooks (which get only the config).
static SERVER: OnceLock<Weak<Server>> = OnceLock::new();

impl Aof {
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// Refusal of write commands while the AOF cannot be written (Valkey's MISCONF text).
    pub fn write_refusal(&self) -> Option<CmdError> {
        if !self.failing.load(Relaxed) {
            return None;
        }
        Some(CmdError::new(format!(
            "MISCONF Errors writing to the AOF file: {}",
            self.last_error.lock()
        )))
    }

    /// Called before a connection writes replies: see the module comment.
    pub fn before_reply(&self, server: &Server) {
        if !self.enabled() {
            return;
        }
        let end = server.stream.end();
        let policy = self.policy.load(Relaxed);
        if policy == POLICY_ALWAYS {
            if self.synced.load(Acquire) >= end {
                return;
            }
            // Group commit: whoever holds the lock writes and fsyncs for everybody.
            let mut guard = self.writer.lock();
            if self.synced.load(Acquire) >= end {
                return;
            }
            if let Some(w) = guard.as_mut() {
                self.write_locked(server, w);
                if !self.failing.load(Relaxed) {
                    self.sync_locked(w);
                }
                if self.failing.load(Relaxed) {
                    // Valkey cannot keep its promise either and stops.
                    log::warn!(
                        "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..."
                    );
                    std::process::exit(1);
                }
            }
        } else {
            if self.written.load(Acquire) >= end {
                return;
            }
            if let Some(mut guard) = self.writer.try_lock()
                && let Some(w) = guard.as_mut()
            {
                self.write_locked(server, w);
            }
        }
    }

    /// Writes the stream's unread bytes. On error the file is cut back to its old length and
    /// the bytes are read again next time.
    fn write_locked(&self, server: &Server, w: &mut Writer) {
        w.buf.clear();
        let end = match server.stream.read(w.offset, &mut w.buf) {
            Ok(end) => end,
            Err(_) => return, // cannot happen: the AOF is pinned
        };
        if w.buf.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut w.buf);
        if self.timestamps.load(Relaxed) {
            let now = ferrokv_store::clock::now_ms() / 1000;
            if now != w.last_ts {
                let mut annotated = format!("#TS:{now}\r\n").into_bytes();
                annotated.extend_from_slice(&out);
                out = annotated;
                w.last_ts = now;
            }
        }
        let before = self.current_size.load(Relaxed);
        match w.file.write_all(&out) {
            Ok(()) => {
                w.offset = end;
                server.stream.consumed(w.sub, end);
                self.current_size.fetch_add(out.len() as u64, Relaxed);
                self.written.store(end, Release);
                if self.failing.swap(false, Relaxed) {
                    log::warn!("AOF write error looks solved. The server can write again.");
                }
            }
            Err(e) => {
                let text = ferrokv_config::special::os_error_text(&e);
                if !self.failing.swap(true, Relaxed) {
                    log::warn!("Error writing to the AOF file: {text}");
                }
                *self.last_error.lock() = text;
                let _ = w.file.set_len(before);
            }
        }
        out.clear();
        w.buf = out;
    }

    fn sync_locked(&self, w: &mut Writer) {
        let written = self.written.load(Acquire);
        if self.synced.load(Acquire) >= written {
            return;
        }
        match w.file.sync_data() {
            Ok(()) => {
                self.synced.store(written, Release);
                self.last_fsync_ms
                    .store(ferrokv_store::clock::now_ms(), Relaxed);
            }
            Err(e) => {
                let text = ferrokv_config::special::os_error_text(&e);
                log::warn!("Can't persist the AOF file: fsync: {text}");
                self.failing.store(true, Relaxed);
                *self.last_error.lock() = text;
            }
        }
    }

    /// One step of the background thread: write what is pending, fsync once a second under
    /// `everysec`.
    fn background_step(&self, server: &Server) {
        if !self.enabled() {
            return;
        }
        let handle = {
            let mut guard = self.writer.lock();
            let Some(w) = guard.as_mut() else {
                return;
            };
            if server.stream.end() > self.written.load(Acquire) || self.failing.load(Relaxed) {
                self.write_locked(server, w);
            }
            w.sync_handle.try_clone().ok()
        };
        let now = ferrokv_store::clock::now_ms();
        if self.policy.load(Relaxed) == POLICY_EVERYSEC
            && now - self.last_fsync_ms.load(Relaxed) >= 1000
        {
            let written = self.written.load(Acquire);
            if written > self.synced.load(Acquire)
                && let Some(handle) = handle
            {
                // Outside the lock: writers go on while the disk flushes.
                if handle.sync_data().is_ok() {
                    self.synced.fetch_max(written, Release);
                }
            }
            self.last_fsync_ms.store(now, Relaxed);
        }
    }

    /// Writes and fsyncs everything (SHUTDOWN, turning AOF off).
    pub fn flush_all(&self, server: &Server) {
        let mut guard = self.writer.lock();
        if let Some(w) = guard.as_mut() {
            self.write_locked(server, w);
            self.sync_locked(w);
        }
    }

    /// INFO persistence's AOF fields, in the oracle's order: those before the module fork
    /// fields, and those after them (only while AOF is on).
    pub fn info_fields(&self) -> (Vec<InfoField>, Vec<InfoField>) {
        let fields = vec![
            ("aof_enabled", u8::from(self.enabled()).to_string()),
            ("aof_rewrite_in_progress", "0".into()),
            ("aof_rewrite_scheduled", "0".into()),
            ("aof_last_rewrite_time_sec", "-1".into()),
            ("aof_current_rewrite_time_sec", "-1".into()),
            ("aof_last_bgrewrite_status", "ok".into()),
            ("aof_rewrites", "0".into()),
            ("aof_rewrites_consecutive_failures", "0".into()),
            (
                "aof_last_write_status",
                if self.failing.load(Relaxed) {
                    "err"
                } else {
                    "ok"
                }
                .into(),
            ),
            ("aof_last_cow_size", "0".into()),
        ];
        let mut tail = Vec::new();
        if self.enabled() {
            tail.extend([
                (
                    "aof_current_size",
                    self.current_size.load(Relaxed).to_string(),
                ),
                ("aof_base_size", self.base_size.load(Relaxed).to_string()),
                ("aof_pending_rewrite", "0".into()),
                ("aof_buffer_length", "0".into()),
                ("aof_pending_bio_fsync", "0".into()),
                ("aof_delayed_fsync", "0".into()),
            ]);
        }
        (fields, tail)
    }
}

/// Where the AOF lives: `<dir>/<appenddirname>/`, file names from `appendfilename`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub file_name: String,
}

impl Layout {
    pub fn from_config(config: &ferrokv_config::Config) -> Layout {
        Layout {
            dir: PathBuf::from(&config.appenddirname),
            file_name: config.appendfilename.clone(),
        }
    }

    pub fn manifest_name(&self) -> String {
        format!("{}.manifest", self.file_name)
    }

    pub fn base_name(&self, seq: u64) -> String {
        format!("{}.{seq}.base.aof", self.file_name)
    }

    pub fn incr_name(&self, seq: u64) -> String {
        format!("{}.{seq}.incr.aof", self.file_name)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Start-up: with `appendonly yes`, loads the AOF directory (or creates it) and starts
/// appending. The error is the reason to refuse to start.
pub fn start_at_boot(server: &Arc<Server>) -> Result<(), String> {
    let _ = SERVER.set(Arc::downgrade(server));
    register_hooks();
    let config = server.config.load();
    if !config.appendonly {
        return Ok(());
    }
    let layout = Layout::from_config(&config);
    let manifest_path = layout.path(&layout.manifest_name());
    let manifest = if manifest_path.exists() {
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| format!("Fail to open AOF manifest file: {e}"))?;
        let manifest = Manifest::parse(&text)?;
        load::load_dir(server, &layout, &manifest)?;
        manifest
    } else {
        create_fresh(server, &layout, None)?
    };
    open_for_append(server, &layout, &manifest)
}

/// Creates the directory with an empty base (or the current dataset, `base`), a first
/// increment and the manifest.
fn create_fresh(server: &Server, layout: &Layout, base: Option<&[u8]>) -> Result<Manifest, String> {
    std::fs::create_dir_all(&layout.dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {}",
            layout.dir.display(),
            ferrokv_config::special::os_error_text(&e)
        )
    })?;
    let base_entry = FileEntry {
        name: layout.base_name(1),
        seq: 1,
        kind: FileKind::Base,
    };
    write_durably(&layout.path(&base_entry.name), base.unwrap_or_default())?;
    server
        .aof
        .base_size
        .store(base.map_or(0, |b| b.len() as u64), Relaxed);
    let incr = FileEntry {
        name: layout.incr_name(1),
        seq: 1,
        kind: FileKind::Incr,
    };
    write_durably(&layout.path(&incr.name), &[])?;
    let manifest = Manifest {
        base: Some(base_entry),
        history: Vec::new(),
        incrs: vec![incr],
    };
    manifest
        .store(&layout.dir, &layout.manifest_name())
        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    Ok(manifest)
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    };
    write().map_err(|e| format!("Can't write {}: {e}", path.display()))?;
    if let Some(dir) = path.parent() {
        manifest::sync_dir(dir);
    }
    Ok(())
}

/// Subscribes to the stream and opens the last increment file for appending.
fn open_for_append(server: &Server, layout: &Layout, manifest: &Manifest) -> Result<(), String> {
    let Some(last) = manifest.incrs.last() else {
        return Err("The AOF manifest names no increment file".into());
    };
    let path = layout.path(&last.name);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("Can't open the append-only file {}: {e}", last.name))?;
    let sync_handle = file
        .try_clone()
        .map_err(|e| format!("Can't open the append-only file {}: {e}", last.name))?;
    let sizes: u64 = manifest
        .incrs
        .iter()
        .chain(manifest.base.iter())
        .filter_map(|e| std::fs::metadata(layout.path(&e.name)).ok())
        .map(|m| m.len())
        .sum();
    let base_size = manifest
        .base
        .as_ref()
        .and_then(|e| std::fs::metadata(layout.path(&e.name)).ok())
        .map_or(0, |m| m.len());
    let aof = &server.aof;
    let config = server.config.load();
    let mut guard = aof.writer.lock();
    let sub = server.stream.subscribe(true);
    aof.written.store(sub.offset, Release);
    aof.synced.store(sub.offset, Release);
    aof.current_size.store(sizes, Relaxed);
    aof.base_size.store(base_size, Relaxed);
    aof.policy.store(policy_of(&config.appendfsync), Relaxed);
    aof.timestamps.store(config.aof_timestamp_enabled, Relaxed);
    *guard = Some(Writer {
        sub,
        file,
        sync_handle,
        offset: sub.offset,
        buf: Vec::new(),
        last_ts: 0,
    });
    aof.enabled.store(true, Relaxed);
    drop(guard);
    start_background_thread();
    Ok(())
}

/// Stops appending (CONFIG SET appendonly no): everything written and fsynced first.
fn stop(server: &Server) {
    let aof = &server.aof;
    aof.flush_all(server);
    let mut guard = aof.writer.lock();
    if let Some(w) = guard.take() {
        server.stream.unsubscribe(w.sub);
    }
    aof.enabled.store(false, Relaxed);
    aof.failing.store(false, Relaxed);
}

/// CONFIG SET appendonly yes at run time: a new directory state whose base is the current
/// dataset (written while every shard is locked, so the stream resumes exactly after it).
fn start_at_runtime(server: &Server) -> Result<(), String> {
    let config = server.config.load();
    let layout = Layout::from_config(&config);
    let manifest_path = layout.path(&layout.manifest_name());
    // Hold the keyspace: no write between the snapshot and the subscription.
    let locked = server.keyspace.lock_all();
    let base = rewrite::dataset_as_commands(server, locked);
    let next_seq = std::fs::read_to_string(&manifest_path)
        .ok()
        .and_then(|t| Manifest::parse(&t).ok());
    let manifest = match next_seq {
        Some(old) => {
            // Rewrite over an existing directory: the next sequence numbers.
            let base_seq = old.base.as_ref().map_or(0, |b| b.seq) + 1;
            let incr_seq = old.incrs.last().map_or(0, |i| i.seq) + 1;
            std::fs::create_dir_all(&layout.dir).map_err(|e| e.to_string())?;
            let base_entry = FileEntry {
                name: layout.base_name(base_seq),
                seq: base_seq,
                kind: FileKind::Base,
            };
            write_durably(&layout.path(&base_entry.name), &base.bytes)?;
            let incr = FileEntry {
                name: layout.incr_name(incr_seq),
                seq: incr_seq,
                kind: FileKind::Incr,
            };
            write_durably(&layout.path(&incr.name), &[])?;
            let manifest = Manifest {
                base: Some(base_entry),
                history: Vec::new(),
                incrs: vec![incr],
            };
            manifest
                .store(&layout.dir, &layout.manifest_name())
                .map_err(|e| e.to_string())?;
            for old_file in old
                .base
                .iter()
                .chain(old.history.iter())
                .chain(old.incrs.iter())
            {
                let _ = std::fs::remove_file(layout.path(&old_file.name));
            }
            manifest
        }
        None => create_fresh(server, &layout, Some(&base.bytes))?,
    };
    let result = open_for_append(server, &layout, &manifest);
    drop(base.locked);
    result
}

fn register_hooks() {
    ferrokv_config::hooks::on_change("appendonly", |config| {
        let Some(server) = SERVER.get().and_then(Weak::upgrade) else {
            return Ok(());
        };
        match (config.appendonly, server.aof.enabled()) {
            (true, false) => {
                if let Err(e) = start_at_runtime(&server) {
                    log::warn!("Background append only file rewriting failed: {e}");
                    return Err(e);
                }
                log::info!("Background append only file rewriting terminated with success");
            }
            (false, true) => stop(&server),
            _ => {}
        }
        Ok(())
    });
    ferrokv_config::hooks::on_change("appendfsync", |config| {
        if let Some(server) = SERVER.get().and_then(Weak::upgrade) {
            server
                .aof
                .policy
                .store(policy_of(&config.appendfsync), Relaxed);
        }
        Ok(())
    });
    ferrokv_config::hooks::on_change("aof-timestamp-enabled", |config| {
        if let Some(server) = SERVER.get().and_then(Weak::upgrade) {
            server
                .aof
                .timestamps
                .store(config.aof_timestamp_enabled, Relaxed);
        }
        Ok(())
    });
}

fn start_background_thread() {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Relaxed) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("ferrokv-aof".into())
        .spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let Some(server) = SERVER.get().and_then(Weak::upgrade) else {
                    return;
                };
                server.aof.background_step(&server);
            }
        });
    if let Err(e) = spawned {
        log::warn!("Can't start the AOF background thread: {e}");
    }
}
