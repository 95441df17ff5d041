//! The append-only file: a pinned consumer of the propagation stream that appends it to the
//! current increment file of a multi-part AOF directory (`manifest.rs`), loads the
//! directory at start-up (`load.rs`), and rewrites it in the background from a snapshot
//! (`bgrewrite.rs`: BGREWRITEAOF, automatic rewrites, switching AOF on at run time; the
//! command-form base is `rewrite.rs`).
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

mod bgrewrite;
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

pub use bgrewrite::{Requested, abort as abort_rewrite, bgrewriteaof, cron};
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
    /// The directory's manifest while the AOF is on.
    manifest: Mutex<Option<Manifest>>,
    rewrite: Mutex<bgrewrite::RewriteState>,
    /// A rewrite runs (read by the fsync policy without the rewrite lock).
    rewriting: AtomicBool,
    /// AOF switched on at run time, its first rewrite not done yet: writes go to a
    /// temporary increment.
    waiting: AtomicBool,
    /// AOF switched on, its rewrite scheduled behind a save: INFO shows it enabled already.
    enable_scheduled: AtomicBool,
    /// `current_size` at the last rewrite's instant.
    size_at_instant: AtomicU64,
    /// DEBUG AOF-FLUSH-SLEEP: microseconds to wait before each write to the file, so that
    /// tests can catch a reply going out before its write.
    flush_sleep_us: AtomicU64,
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

    /// AOF was switched on and its first file is not complete yet: exiting now would leave
    /// no AOF with the dataset (Valkey's `AOF_WAIT_REWRITE`).
    pub fn writing_initial_file(&self) -> bool {
        self.waiting.load(Relaxed) || self.enable_scheduled.load(Relaxed)
    }

    /// The stream offset up to which the file is fsynced (WAITAOF).
    pub fn fsynced_offset(&self) -> u64 {
        self.synced.load(Acquire)
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

    /// The stream was moved to `offset` (a replica's full sync, `Stream::reset_to`): the
    /// AOF goes on from there. What it held of the old history is replaced by the rewrite
    /// the replica starts after loading.
    pub fn stream_reset(&self, offset: u64) {
        let mut guard = self.writer.lock();
        if let Some(w) = guard.as_mut() {
            w.offset = offset;
        }
        self.written.store(offset, Release);
        self.synced.store(offset, Release);
    }

    /// DEBUG AOF-FLUSH-SLEEP.
    pub fn set_flush_sleep(&self, micros: u64) {
        self.flush_sleep_us.store(micros, Relaxed);
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
                if !self.failing.load(Relaxed) && !self.fsync_paused(server) {
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
            // Wait for a writer at work rather than skip: it may have read the stream before
            // this connection's bytes were appended, and the reply must not go out first.
            let mut guard = self.writer.lock();
            if self.written.load(Acquire) >= end {
                return;
            }
            if let Some(w) = guard.as_mut() {
                self.write_locked(server, w);
            }
        }
    }

    /// Writes the stream's unread bytes. On error the file is cut back to its old length and
    /// the bytes are read again next time.
    fn write_locked(&self, server: &Server, w: &mut Writer) {
        w.buf.clear();
        let end = match server.stream.read_for_aof(w.offset, &mut w.buf) {
            Ok(end) => end,
            Err(_) => return, // cannot happen: the AOF is pinned
        };
        if w.buf.is_empty() {
            return;
        }
        let sleep_us = self.flush_sleep_us.load(Relaxed);
        if sleep_us > 0 {
            std::thread::sleep(Duration::from_micros(sleep_us));
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
            && !self.fsync_paused(server)
        {
            let written = self.written.load(Acquire);
            if written > self.synced.load(Acquire)
                && let Some(handle) = handle
            {
                // Outside the lock: writers go on while the disk flushes.
                if handle.sync_data().is_ok() {
                    self.synced.fetch_max(written, Release);
                    if !server.replication.waits.is_empty() {
                        server.replication.waits.on_progress(server);
                    }
                }
            }
            self.last_fsync_ms.store(now, Relaxed);
        }
    }

    /// `no-appendfsync-on-rewrite yes` while a rewrite or a background save runs: no fsync
    /// (the disk is busy with the snapshot; Valkey makes the same trade).
    fn fsync_paused(&self, server: &Server) -> bool {
        server.config.load().no_appendfsync_on_rewrite
            && (self.rewriting.load(Relaxed) || server.persistence.bgsave_running())
    }

    /// At a rewrite's instant (every shard locked, so the stream cannot grow): writes what
    /// is pending to the current increment and makes `file` the increment from now on.
    /// Returns the previous file, to be fsynced outside the locks.
    fn switch_increment(&self, server: &Server, file: File) -> Result<Option<File>, String> {
        let mut guard = self.writer.lock();
        let Some(w) = guard.as_mut() else {
            return Ok(None);
        };
        self.write_locked(server, w);
        if self.failing.load(Relaxed) {
            return Err(self.last_error.lock().clone());
        }
        if self.policy.load(Relaxed) == POLICY_ALWAYS {
            // Replies waiting for `synced` must not be released by the new file's fsync.
            self.sync_locked(w);
        }
        let sync_handle = file
            .try_clone()
            .map_err(|e| format!("Can't open the new AOF increment: {e}"))?;
        w.sync_handle = sync_handle;
        let old = std::mem::replace(&mut w.file, file);
        self.size_at_instant
            .store(self.current_size.load(Relaxed), Relaxed);
        // The new increment follows the new base: it must start with its own SELECT.
        server.stream.reset_selected_db();
        Ok(Some(old))
    }

    /// A rewrite installed a base of `base_bytes`: the AOF is now that base plus what the
    /// new increment received since the instant.
    fn rewritten(&self, base_bytes: u64) {
        let _guard = self.writer.lock();
        let since = self
            .current_size
            .load(Relaxed)
            .saturating_sub(self.size_at_instant.load(Relaxed));
        self.current_size.store(base_bytes + since, Relaxed);
        self.base_size.store(base_bytes + since, Relaxed);
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
        let rw = self.rewrite.lock().info();
        let fields = vec![
            (
                "aof_enabled",
                u8::from(self.enabled() || self.enable_scheduled.load(Relaxed)).to_string(),
            ),
            (
                "aof_rewrite_in_progress",
                u8::from(rw.in_progress).to_string(),
            ),
            ("aof_rewrite_scheduled", u8::from(rw.scheduled).to_string()),
            ("aof_last_rewrite_time_sec", rw.last_secs.to_string()),
            ("aof_current_rewrite_time_sec", rw.current_secs.to_string()),
            (
                "aof_last_bgrewrite_status",
                if rw.last_ok { "ok" } else { "err" }.into(),
            ),
            ("aof_rewrites", rw.rewrites.to_string()),
            (
                "aof_rewrites_consecutive_failures",
                rw.consecutive_failures.to_string(),
            ),
            (
                "aof_last_write_status",
                if self.failing.load(Relaxed) {
                    "err"
                } else {
                    "ok"
                }
                .into(),
            ),
            ("aof_last_cow_size", rw.last_peak_bytes.to_string()),
        ];
        let mut tail = Vec::new();
        if self.enabled() {
            tail.extend([
                (
                    "aof_current_size",
                    self.current_size.load(Relaxed).to_string(),
                ),
                ("aof_base_size", self.base_size.load(Relaxed).to_string()),
                ("aof_pending_rewrite", u8::from(rw.scheduled).to_string()),
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

    /// The base in RDB format (`aof-use-rdb-preamble yes`).
    pub fn rdb_base_name(&self, seq: u64) -> String {
        format!("{}.{seq}.base.rdb", self.file_name)
    }

    /// The increment that collects writes while AOF is being switched on.
    pub fn temp_incr_name(&self) -> String {
        format!("temp-{}.incr", self.file_name)
    }

    pub fn incr_name(&self, seq: u64) -> String {
        format!("{}.{seq}.incr.aof", self.file_name)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the directory if it is missing; the error is Valkey's words.
    pub fn create_dir(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            format!(
                "Can't open or create append-only dir {}: {}",
                self.dir.display(),
                ferrokv_config::special::os_error_text(&e)
            )
        })
    }
}

/// An AOF directory found at start-up, to be loaded while clients are already connected
/// (they get LOADING until [`load_at_boot`] is done), as Valkey does.
pub struct BootLoad {
    layout: Layout,
}

/// Start-up, before the listeners open: with `appendonly yes`, announces the load of the
/// AOF directory (INFO `loading:1`, commands refused with LOADING from the first connection
/// on) when it has a manifest, or creates the directory and starts appending when not.
/// The error is the reason to refuse to start.
pub fn start_at_boot(server: &Arc<Server>) -> Result<Option<BootLoad>, String> {
    let _ = SERVER.set(Arc::downgrade(server));
    register_hooks();
    let config = server.config.load();
    if !config.appendonly {
        return Ok(None);
    }
    let layout = Layout::from_config(&config);
    remove_leftover_temp_files(&layout);
    let old_style = Path::new(&layout.file_name).exists();
    if !layout.path(&layout.manifest_name()).exists() && !old_style {
        let manifest = create_fresh(server, &layout)?;
        open_for_append(server, &layout, &manifest)?;
        return Ok(None);
    }
    server.persistence.loading.store(true, Relaxed);
    // The size is known once the manifest is read, on the loading thread.
    crate::loading::begin(0, config.key_load_delay);
    Ok(Some(BootLoad { layout }))
}

/// The second half of [`start_at_boot`], on the loading thread (after `Server initialized`
/// is logged, where Valkey reports a bad manifest too): reads the manifest, replays the
/// files it names, then starts appending. Until it returns, clients get LOADING and
/// nothing is appended (every command that writes is refused). The error is the reason to
/// stop the server.
pub fn load_at_boot(server: &Server, boot: BootLoad) -> Result<(), String> {
    let loaded = read_manifest_and_load(server, &boot.layout);
    crate::loading::end();
    server.persistence.loading.store(false, Relaxed);
    let mut manifest = loaded?;
    let layout = boot.layout;
    if manifest.incrs.is_empty() {
        // A base written while AOF was off (BGREWRITEAOF): appending needs an increment.
        let seq = manifest.history.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
        let incr = FileEntry {
            name: layout.incr_name(seq),
            seq,
            kind: FileKind::Incr,
        };
        write_durably(&layout.path(&incr.name), &[])?;
        manifest.incrs.push(incr);
        manifest
            .store(&layout.dir, &layout.manifest_name())
            .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    }
    open_for_append(server, &layout, &manifest)?;
    Ok(())
}

/// Whether an old-style AOF (one `appendfilename` file in `dir`, as Redis before 7 wrote
/// it) is to be moved into the AOF directory, as Valkey decides: there is such a file, and
/// no manifest, or one that names only a base of that name not yet moved (an upgrade
/// interrupted after writing the manifest).
fn upgrade_wanted(layout: &Layout, manifest: Option<&Manifest>) -> bool {
    if !Path::new(&layout.file_name).exists() {
        return false;
    }
    match manifest {
        None => true,
        Some(m) => {
            m.incrs.is_empty()
                && m.base.as_ref().is_some_and(|b| b.name == layout.file_name)
                && !layout.path(&layout.file_name).exists()
        }
    }
}

/// Moves an old-style AOF into the AOF directory as its base: the manifest naming it is
/// written first, so a crash in between leaves a state the next start completes.
fn upgrade_old_style(layout: &Layout, mut manifest: Manifest) -> Result<Manifest, String> {
    layout.create_dir()?;
    manifest.base = Some(FileEntry {
        name: layout.file_name.clone(),
        seq: 1,
        kind: FileKind::Base,
    });
    manifest
        .store(&layout.dir, &layout.manifest_name())
        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    std::fs::rename(&layout.file_name, layout.path(&layout.file_name)).map_err(|e| {
        format!(
            "Error trying to move the old AOF file {} into dir {}: {}",
            layout.file_name,
            layout.dir.display(),
            ferrokv_config::special::os_error_text(&e)
        )
    })?;
    manifest::sync_dir(&layout.dir);
    manifest::sync_dir(Path::new("."));
    log::info!(
        "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
        layout.file_name,
        layout.dir.display()
    );
    Ok(manifest)
}

/// The bytes of the files a load reads (the base and the increments); the error names a
/// file that cannot be measured, in Valkey's words.
fn loaded_files_size(layout: &Layout, manifest: &Manifest) -> Result<u64, String> {
    let mut total_bytes = 0;
    for entry in manifest.base.iter().chain(manifest.incrs.iter()) {
        let meta = std::fs::metadata(layout.path(&entry.name)).map_err(|e| {
            format!(
                "Unable to obtain the AOF file {} length. stat: {}",
                entry.name,
                ferrokv_config::special::os_error_text(&e)
            )
        })?;
        total_bytes += meta.len();
    }
    Ok(total_bytes)
}

fn read_manifest_and_load(server: &Server, layout: &Layout) -> Result<Manifest, String> {
    let manifest_path = layout.path(&layout.manifest_name());
    let manifest = if manifest_path.exists() {
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            format!(
                "Fatal error: can't open the AOF manifest file {} for reading: {}",
                manifest_path.display(),
                ferrokv_config::special::os_error_text(&e)
            )
        })?;
        Some(Manifest::parse(&text).map_err(|e| {
            let mut lines = e.log_lines();
            let last = lines.pop().unwrap_or_default();
            for line in lines {
                log::warn!("{line}");
            }
            last
        })?)
    } else {
        None
    };
    let manifest = match manifest {
        Some(m) if !upgrade_wanted(layout, Some(&m)) => m,
        found => upgrade_old_style(layout, found.unwrap_or_default())?,
    };
    // Every file is measured before any is read, as Valkey: a missing one stops the load
    // before the dataset is half built.
    let total_bytes = loaded_files_size(layout, &manifest)?;
    crate::loading::set_total_bytes(total_bytes);
    load::load_dir(server, layout, &manifest, Some(crate::loading::after_key))?;
    Ok(manifest)
}

/// A rewrite or a manifest update cut short by a crash leaves `temp-*` files in the
/// directory; nothing refers to them.
fn remove_leftover_temp_files(layout: &Layout) {
    let Ok(entries) = std::fs::read_dir(&layout.dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("temp-") {
            log::info!(
                "Removing the leftover temporary file {}",
                entry.file_name().to_string_lossy()
            );
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates the directory with a base of the (empty) dataset, in the format
/// `aof-use-rdb-preamble` asks for, a first increment and the manifest.
fn create_fresh(server: &Server, layout: &Layout) -> Result<Manifest, String> {
    layout.create_dir()?;
    let config = server.config.load();
    let base_entry = FileEntry {
        name: if config.aof_use_rdb_preamble {
            layout.rdb_base_name(1)
        } else {
            layout.base_name(1)
        },
        seq: 1,
        kind: FileKind::Base,
    };
    let size = bgrewrite::write_base_now(server, &config, layout, &base_entry.name)?;
    server.aof.base_size.store(size, Relaxed);
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
    ferrokv_persist::durable::replace_file(path, &path.with_extension("tmp"), bytes)
        .map_err(|e| format!("Can't write {}: {e}", path.display()))
}

fn open_append(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("Can't open the append-only file {}: {e}", path.display()))
}

/// Subscribes to the stream and opens the last increment file for appending.
fn open_for_append(server: &Server, layout: &Layout, manifest: &Manifest) -> Result<(), String> {
    let Some(last) = manifest.incrs.last() else {
        return Err("The AOF manifest names no increment file".into());
    };
    let file = open_append(&layout.path(&last.name))?;
    let sizes: u64 = manifest
        .incrs
        .iter()
        .chain(manifest.base.iter())
        .filter_map(|e| std::fs::metadata(layout.path(&e.name)).ok())
        .map(|m| m.len())
        .sum();
    let config = server.config.load();
    server.aof.begin_appending(server, &config, file, false)?;
    // As Valkey after loading: the size the automatic rewrite's growth is measured from.
    server.aof.current_size.store(sizes, Relaxed);
    server.aof.base_size.store(sizes, Relaxed);
    *server.aof.manifest.lock() = Some(manifest.clone());
    Ok(())
}

impl Aof {
    /// Subscribes to the stream (from its end now) and appends it to `file`. `waiting`:
    /// `file` is the temporary increment of AOF being switched on.
    fn begin_appending(
        &self,
        server: &Server,
        config: &ferrokv_config::Config,
        file: File,
        waiting: bool,
    ) -> Result<(), String> {
        let sync_handle = file
            .try_clone()
            .map_err(|e| format!("Can't open the append-only file: {e}"))?;
        let mut guard = self.writer.lock();
        if let Some(w) = guard.take() {
            server.stream.unsubscribe(w.sub);
        }
        let sub = server.stream.subscribe(true);
        self.written.store(sub.offset, Release);
        self.synced.store(sub.offset, Release);
        self.current_size.store(0, Relaxed);
        self.size_at_instant.store(0, Relaxed);
        self.policy.store(policy_of(&config.appendfsync), Relaxed);
        self.timestamps.store(config.aof_timestamp_enabled, Relaxed);
        self.failing.store(false, Relaxed);
        *guard = Some(Writer {
            sub,
            file,
            sync_handle,
            offset: sub.offset,
            buf: Vec::new(),
            last_ts: 0,
        });
        self.waiting.store(waiting, Relaxed);
        self.enabled.store(true, Relaxed);
        drop(guard);
        start_background_thread();
        Ok(())
    }

    /// Stops appending: everything written and fsynced first.
    fn stop_writer(&self, server: &Server) {
        self.flush_all(server);
        let mut guard = self.writer.lock();
        if let Some(w) = guard.take() {
            server.stream.unsubscribe(w.sub);
        }
        self.enabled.store(false, Relaxed);
        self.waiting.store(false, Relaxed);
        self.failing.store(false, Relaxed);
    }
}

/// CONFIG SET appendonly no: a running rewrite is stopped, then appending.
fn stop(server: &Server) {
    let _ = bgrewrite::abort(server);
    server.aof.stop_writer(server);
    *server.aof.manifest.lock() = None;
}

/// CONFIG SET appendonly yes at run time: a background rewrite whose instant starts the
/// writer (into a temporary increment until the base is complete), as Valkey.
fn start_at_runtime(server: &Arc<Server>) -> Result<(), String> {
    match bgrewrite::start(server, true) {
        Requested::Failed => Err("Can't start the AOF background rewrite".into()),
        Requested::Started | Requested::Scheduled | Requested::InProgress => Ok(()),
    }
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

/// DEBUG LOADAOF: writes and fsyncs what is pending, then replaces the dataset with what the
/// AOF directory holds, as a restart would load it. Valkey exits when that load fails; here
/// the error is logged and the server exits too, since the dataset is already gone and
/// serving an empty one as if loaded would hide the loss.
pub fn debug_loadaof(server: &Server) -> Result<(), CmdError> {
    let config = server.config.load();
    let layout = Layout::from_config(&config);
    let manifest = if server.aof.enabled() {
        server.aof.flush_all(server);
        server.aof.manifest.lock().clone()
    } else {
        std::fs::read_to_string(layout.path(&layout.manifest_name()))
            .ok()
            .and_then(|text| Manifest::parse(&text).ok())
    };
    let Some(manifest) = manifest else {
        // Nothing to load from: the dataset stays as it is.
        return Err(CmdError::err("The AOF manifest file doesn't exist"));
    };
    let mut all = server.keyspace.lock_all();
    let detached: Vec<_> = (0..server.keyspace.databases())
        .flat_map(|db| all.take_db(db))
        .collect();
    drop(all);
    drop(detached);
    // Other clients get LOADING until the dataset is whole again, as in Valkey (which
    // serves them between the commands it replays), instead of reading half of it.
    // A missing file fails the load below.
    let total_bytes = loaded_files_size(&layout, &manifest).unwrap_or(0);
    server.persistence.loading.store(true, Relaxed);
    crate::loading::begin(total_bytes, 0);
    let loaded = load::load_dir(server, &layout, &manifest, Some(crate::loading::after_key));
    crate::loading::end();
    server.persistence.loading.store(false, Relaxed);
    if let Err(e) = loaded {
        log::warn!("{e}");
        log::warn!("DEBUG LOADAOF could not load the append only file: exiting");
        std::process::exit(1);
    }
    log::info!("Append Only File loaded by DEBUG LOADAOF");
    Ok(())
}
