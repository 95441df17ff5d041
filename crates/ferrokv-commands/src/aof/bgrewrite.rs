//! BGREWRITEAOF, automatic rewrites and switching the AOF on at run time, built on the
//! snapshot machinery (no fork: dump on first touch).
//!
//! **The instant.** A rewrite is a snapshot whose preparation, with every shard locked,
//! also switches the AOF writer to a new increment file: the stream cannot grow while every
//! shard is locked (units enter the stream under their shards' locks), so the stream offset
//! there splits history exactly: every write before it is in the snapshot, every write after
//! it in the new increment. Nothing is ever written twice, nothing is missed.
//!
//! **The files.** Before the instant the new increment is created empty and added to the
//! manifest (after the old increments: a crash meanwhile loads old base + old increments +
//! the new one, which is still correct). The snapshot goes to a temporary file renamed to
//! the new base (`.base.rdb` with `aof-use-rdb-preamble yes`, `.base.aof` otherwise). Then
//! the manifest names the new base and the new increment, with the old files as history;
//! the old files are deleted and the manifest written again without them. A failure at any
//! step before the new manifest leaves the old file set, which stays complete.
//!
//! Three modes, as Valkey: AOF on (a new numbered increment), AOF being switched on
//! (`CONFIG SET appendonly yes`: the writer starts at the instant into a temporary
//! increment, renamed when the base is done), and AOF off (BGREWRITEAOF writes a base and a
//! manifest only).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::Instant;

use ferrokv_persist::{FileSink, Snapshot};

use super::manifest::{FileEntry, FileKind, Manifest, sync_dir};
use super::rewrite::CommandsBase;
use super::{Layout, write_durably};
use crate::server::Server;

/// What BGREWRITEAOF (or the cron) got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Started,
    /// A background save runs: the rewrite starts when it ends.
    Scheduled,
    InProgress,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// AOF off: a base and a manifest, no increment.
    Off,
    /// AOF on: writes after the instant go to a new numbered increment.
    On,
    /// AOF being switched on: the writer starts at the instant, into a temporary increment.
    Enabling,
}

#[derive(Clone)]
enum Job {
    /// Waiting for every shard lock.
    Starting,
    Rdb(Arc<Snapshot>),
    Commands(Arc<CommandsBase>),
}

struct Running {
    job: Job,
    started: Instant,
    /// `CONFIG SET appendonly no` stopped it.
    aborted: bool,
}

/// The rewrite slot and the status INFO shows.
pub(super) struct RewriteState {
    running: Option<Running>,
    scheduled: bool,
    last_failed: bool,
    last_secs: i64,
    rewrites: u64,
    consecutive_failures: u64,
    last_attempt: Option<Instant>,
    last_peak_bytes: u64,
}

impl Default for RewriteState {
    fn default() -> Self {
        RewriteState {
            running: None,
            scheduled: false,
            last_failed: false,
            last_secs: -1,
            rewrites: 0,
            consecutive_failures: 0,
            last_attempt: None,
            last_peak_bytes: 0,
        }
    }
}

/// The INFO persistence fields about rewrites.
pub(super) struct RewriteInfo {
    pub in_progress: bool,
    pub scheduled: bool,
    pub last_secs: i64,
    pub current_secs: i64,
    pub last_ok: bool,
    pub rewrites: u64,
    pub consecutive_failures: u64,
    pub last_peak_bytes: u64,
}

impl RewriteState {
    pub(super) fn info(&self) -> RewriteInfo {
        RewriteInfo {
            in_progress: self.running.is_some(),
            scheduled: self.scheduled,
            last_secs: self.last_secs,
            current_secs: self
                .running
                .as_ref()
                .map_or(-1, |r| r.started.elapsed().as_secs() as i64),
            last_ok: !self.last_failed,
            rewrites: self.rewrites,
            consecutive_failures: self.consecutive_failures,
            last_peak_bytes: self.last_peak_bytes,
        }
    }
}

/// What the rewrite thread needs to install the result.
struct Plan {
    mode: Mode,
    layout: Layout,
    /// The directory before the rewrite (its files become history).
    old: Manifest,
    base: FileEntry,
    /// The increment that receives writes after the instant (On, Enabling).
    incr: Option<FileEntry>,
    started: Instant,
}

/// BGREWRITEAOF.
pub fn bgrewriteaof(_server: &Server) -> Requested {
    // The rewrite thread needs an owned handle to the server.
    match super::SERVER.get().and_then(std::sync::Weak::upgrade) {
        Some(server) => start(&server, false),
        None => Requested::Failed,
    }
}

/// Starts a rewrite, or schedules it behind a running background save. `enabling`: called
/// from the `appendonly` apply hook, before the new configuration is published.
pub(super) fn start(server: &Arc<Server>, enabling: bool) -> Requested {
    let aof = &server.aof;
    let mode = {
        let mut state = aof.rewrite.lock();
        if state.running.is_some() {
            if enabling {
                // AOF switched on while a rewrite (of AOF off, or being stopped) runs:
                // the switch-on rewrite starts after it.
                state.scheduled = true;
                aof.enable_scheduled.store(true, Relaxed);
                return Requested::Scheduled;
            }
            return Requested::InProgress;
        }
        if crate::transaction::in_exec() || !server.persistence.claim_for_rewrite() {
            state.scheduled = true;
            if enabling {
                aof.enable_scheduled.store(true, Relaxed);
                log::info!(
                    "AOF was enabled but there is already another background operation. An \
                     AOF background was scheduled to start when possible."
                );
            }
            return Requested::Scheduled;
        }
        state.scheduled = false;
        aof.enable_scheduled.store(false, Relaxed);
        state.last_attempt = Some(Instant::now());
        state.running = Some(Running {
            job: Job::Starting,
            started: Instant::now(),
            aborted: false,
        });
        aof.rewriting.store(true, Relaxed);
        if aof.enabled() && !aof.waiting.load(Relaxed) {
            Mode::On
        } else if enabling || server.config.load().appendonly {
            Mode::Enabling
        } else {
            Mode::Off
        }
    };
    match launch(server, mode) {
        Ok(()) => {
            log::info!("Background append only file rewriting started");
            Requested::Started
        }
        Err(e) => {
            log::warn!("Can't rewrite append only file in background: {e}");
            let mut state = aof.rewrite.lock();
            state.running = None;
            state.last_failed = true;
            state.consecutive_failures += 1;
            aof.rewriting.store(false, Relaxed);
            server.persistence.release_rewrite();
            Requested::Failed
        }
    }
}

/// The directory's current manifest: the one in use, or the one on disk (AOF off), or none.
fn current_manifest(server: &Server, layout: &Layout) -> Manifest {
    if let Some(m) = server.aof.manifest.lock().clone() {
        return m;
    }
    std::fs::read_to_string(layout.path(&layout.manifest_name()))
        .ok()
        .and_then(|t| Manifest::parse(&t).ok())
        .unwrap_or_default()
}

fn highest_incr_seq(m: &Manifest) -> u64 {
    m.incrs
        .iter()
        .chain(m.history.iter().filter(|e| e.kind == FileKind::Incr))
        .map(|e| e.seq)
        .max()
        .unwrap_or(0)
}

fn launch(server: &Arc<Server>, mode: Mode) -> Result<(), String> {
    let aof = &server.aof;
    let config = server.config.load();
    let layout = Layout::from_config(&config);
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let dir = cwd.join(&layout.dir);
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {}",
            layout.dir.display(),
            ferrokv_config::special::os_error_text(&e)
        )
    })?;
    let old = current_manifest(server, &layout);
    let base_seq = old.base.as_ref().map_or(0, |b| b.seq) + 1;
    let base_name = if config.aof_use_rdb_preamble {
        layout.rdb_base_name(base_seq)
    } else {
        layout.base_name(base_seq)
    };
    let base = FileEntry {
        name: base_name,
        seq: base_seq,
        kind: FileKind::Base,
    };
    let incr_seq = highest_incr_seq(&old) + 1;
    // The increment that starts at the instant, created before it.
    let (incr, incr_file) = match mode {
        Mode::Off => (None, None),
        Mode::On => {
            let entry = FileEntry {
                name: layout.incr_name(incr_seq),
                seq: incr_seq,
                kind: FileKind::Incr,
            };
            write_durably(&layout.path(&entry.name), &[])?;
            let file = super::open_append(&layout.path(&entry.name))?;
            let mut during = old.clone();
            during.incrs.push(entry.clone());
            during
                .store(&layout.dir, &layout.manifest_name())
                .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
            *aof.manifest.lock() = Some(during);
            log::info!(
                "Creating AOF incr file {} on background rewrite",
                entry.name
            );
            (Some(entry), Some(file))
        }
        Mode::Enabling => {
            let temp = layout.path(&layout.temp_incr_name());
            File::create(&temp).map_err(|e| format!("Can't create {}: {e}", temp.display()))?;
            let file = super::open_append(&temp)?;
            let entry = FileEntry {
                name: layout.incr_name(incr_seq),
                seq: incr_seq,
                kind: FileKind::Incr,
            };
            (Some(entry), Some(file))
        }
    };
    let sink = FileSink::create(&dir, &base.name, true)
        .map(|sink| {
            sink.sync_every(
                config
                    .aof_rewrite_incremental_fsync
                    .then_some(ferrokv_persist::sink::INCREMENTAL_SYNC_BYTES),
            )
        })
        .map_err(|e| {
            format!(
                "Can't create the temporary AOF base file in {}: {}",
                dir.display(),
                ferrokv_config::special::os_error_text(&e)
            )
        })?;
    let mut old_file: Option<File> = None;
    let at_instant = || -> Result<(), String> {
        match (mode, incr_file) {
            (Mode::On, Some(file)) => {
                old_file = aof.switch_increment(server, file)?;
            }
            (Mode::Enabling, Some(file)) => aof.begin_appending(server, &config, file, true)?,
            _ => {}
        }
        Ok(())
    };
    // On a replica, no command from the primary is half applied at the instant.
    let applying = server.replication.quiesce_link(server.stream);
    let job = start_base(server, &config, Box::new(sink), at_instant)?;
    drop(applying);
    let plan = Plan {
        mode,
        layout,
        old,
        base,
        incr,
        started: Instant::now(),
    };
    // Record the job; a `CONFIG SET appendonly no` that came meanwhile stops it now.
    {
        let mut state = aof.rewrite.lock();
        if let Some(running) = state.running.as_mut() {
            running.job = job.clone();
            if running.aborted {
                abort_job(server, &running.job);
            }
        }
    }
    let owner = server.clone();
    let handle = job.clone();
    let spawned = std::thread::Builder::new()
        .name("ferrokv-aofrw".into())
        .spawn(move || {
            // Bytes written to the previous increment before the instant reach the disk
            // before that file can be replaced.
            if let Some(f) = old_file {
                let _ = f.sync_data();
            }
            let result = run_job(&owner, &job);
            finish(&owner, plan, result);
        });
    if let Err(e) = spawned {
        // Nobody will complete the snapshot: stop it so no shard stays pending.
        abort_job(server, &handle);
        return Err(format!("Can't start the rewrite thread: {e}"));
    }
    Ok(())
}

/// Starts writing a base of the keyspace as it is at the instant (when `at_instant` runs)
/// into `sink`: an RDB or, without `aof-use-rdb-preamble`, commands.
fn start_base(
    server: &Server,
    config: &ferrokv_config::Config,
    sink: Box<dyn ferrokv_persist::SnapshotSink>,
    at_instant: impl FnOnce() -> Result<(), String>,
) -> Result<Job, String> {
    if config.aof_use_rdb_preamble {
        let mut options = crate::persistence::save_options(server, config);
        // An AOF's base carries no replication position (as Valkey's preamble).
        options.aux_at_instant = None;
        for (key, value) in options.aux.iter_mut() {
            if key.as_slice() == b"aof-base" {
                *value = b"1".to_vec();
            }
        }
        Ok(Job::Rdb(Snapshot::start_with(
            &server.keyspace,
            sink,
            options,
            at_instant,
        )?))
    } else {
        // As Valkey: a command-form base opens with the time of the rewrite.
        let header = if config.aof_timestamp_enabled {
            let now = ferrokv_store::clock::now_ms() / 1000;
            format!("#TS:{now}\r\n").into_bytes()
        } else {
            Vec::new()
        };
        Ok(Job::Commands(CommandsBase::start(
            &server.keyspace,
            sink,
            &header,
            config.rdb_key_save_delay.max(0),
            at_instant,
        )?))
    }
}

/// Writes the base to the end and commits its file: its size and the peak extra memory.
fn run_job(server: &Server, job: &Job) -> Result<(u64, u64), String> {
    match job {
        Job::Rdb(s) => s
            .run(&server.keyspace)
            .map(|r| (r.bytes, r.peak_extra_bytes)),
        Job::Commands(c) => c.run(&server.keyspace).map(|bytes| (bytes, 0)),
        Job::Starting => Err("no job".into()),
    }
}

/// Writes a base of the keyspace named `name` in the AOF directory now, in the format
/// `aof-use-rdb-preamble` asks for (start-up with no AOF, as Valkey); its size.
pub(super) fn write_base_now(
    server: &Server,
    config: &ferrokv_config::Config,
    layout: &Layout,
    name: &str,
) -> Result<u64, String> {
    let sink = FileSink::create(&layout.dir, name, true).map_err(|e| {
        format!(
            "Can't create the AOF base file in {}: {}",
            layout.dir.display(),
            ferrokv_config::special::os_error_text(&e)
        )
    })?;
    let job = start_base(server, config, Box::new(sink), || Ok(()))?;
    run_job(server, &job).map(|(bytes, _)| bytes)
}

fn abort_job(server: &Server, job: &Job) {
    match job {
        Job::Rdb(s) => s.abort(&server.keyspace),
        Job::Commands(c) => c.abort(&server.keyspace),
        Job::Starting => {}
    }
}

/// `CONFIG SET appendonly no`, SHUTDOWN: stops a running rewrite (its files are removed)
/// and forgets a scheduled one, as Valkey kills its rewrite child. Returns whether one ran.
pub fn abort(server: &Server) -> bool {
    let mut state = server.aof.rewrite.lock();
    state.scheduled = false;
    server.aof.enable_scheduled.store(false, Relaxed);
    match state.running.as_mut() {
        Some(running) => {
            running.aborted = true;
            abort_job(server, &running.job);
            log::info!("Killing running AOF rewrite child");
            true
        }
        None => false,
    }
}

/// The rewrite thread's end: installs the new file set, or leaves the old one.
fn finish(server: &Server, plan: Plan, result: Result<(u64, u64), String>) {
    let aof = &server.aof;
    let mut state = aof.rewrite.lock();
    let aborted = state.running.as_ref().is_some_and(|r| r.aborted);
    let installed = match result {
        Ok(_) if aborted => Err("aborted".to_string()),
        Ok((bytes, peak)) => {
            log::info!("Background AOF rewrite terminated with success");
            install(server, &plan, bytes).map(|()| peak)
        }
        Err(e) => Err(e),
    };
    state.running = None;
    state.last_secs = plan.started.elapsed().as_secs() as i64;
    match installed {
        Ok(peak) => {
            state.last_failed = false;
            state.consecutive_failures = 0;
            state.rewrites += 1;
            state.last_peak_bytes = peak;
            log::info!("Background AOF rewrite finished successfully");
        }
        Err(e) => {
            if !aborted {
                state.last_failed = true;
                state.consecutive_failures += 1;
                log::warn!("Background AOF rewrite terminated with error: {e}");
            }
            let _ = std::fs::remove_file(plan.layout.path(&plan.layout.temp_incr_name()));
            if plan.mode == Mode::Enabling && !aborted {
                // AOF stays wanted: drop the temporary increment and try again from the
                // cron with a fresh instant.
                aof.stop_writer(server);
                state.scheduled = true;
            }
        }
    }
    aof.rewriting.store(false, Relaxed);
    // Under the rewrite lock, as `start` claims it: a BGREWRITEAOF that finds no rewrite
    // running also finds the snapshot slot free.
    server.persistence.release_rewrite();
    drop(state);
}

/// Writes the new manifest (old files as history), deletes the old files, and writes the
/// manifest again without them.
fn install(server: &Server, plan: &Plan, base_bytes: u64) -> Result<(), String> {
    let aof = &server.aof;
    let layout = &plan.layout;
    if plan.mode == Mode::Enabling
        && let Some(incr) = &plan.incr
    {
        std::fs::rename(
            layout.path(&layout.temp_incr_name()),
            layout.path(&incr.name),
        )
        .map_err(|e| format!("Can't rename the temporary incr AOF file: {e}"))?;
    }
    let mut history: Vec<FileEntry> = plan
        .old
        .base
        .iter()
        .chain(plan.old.history.iter())
        .chain(plan.old.incrs.iter())
        .filter(|e| Some(&e.name) != plan.incr.as_ref().map(|i| &i.name))
        .map(|e| FileEntry {
            kind: FileKind::History,
            ..e.clone()
        })
        .collect();
    // A base of the same name (same seq, other format) is not history: it is the new one.
    history.retain(|e| e.name != plan.base.name);
    let mut manifest = Manifest {
        base: Some(plan.base.clone()),
        history,
        incrs: plan.incr.iter().cloned().collect(),
    };
    let stored = manifest.store(&layout.dir, &layout.manifest_name());
    if let Err(e) = stored {
        let _ = std::fs::remove_file(layout.path(&plan.base.name));
        return Err(format!("Can't persist the AOF manifest: {e}"));
    }
    if plan.mode != Mode::Off {
        *aof.manifest.lock() = Some(manifest.clone());
    }
    for old in std::mem::take(&mut manifest.history) {
        let _ = std::fs::remove_file(layout.path(&old.name));
    }
    let _ = manifest.store(&layout.dir, &layout.manifest_name());
    sync_dir(&layout.dir);
    if plan.mode != Mode::Off {
        *aof.manifest.lock() = Some(manifest);
        aof.rewritten(base_bytes);
    }
    if plan.mode == Mode::Enabling {
        aof.waiting.store(false, Release);
    }
    Ok(())
}

/// Called from the cron: a scheduled rewrite once no save runs; an automatic one when the
/// AOF grew by `auto-aof-rewrite-percentage` since the last rewrite and is larger than
/// `auto-aof-rewrite-min-size`.
pub fn cron(server: &Arc<Server>) {
    let aof = &server.aof;
    let (scheduled, may_retry) = {
        let state = aof.rewrite.lock();
        if state.running.is_some() {
            return;
        }
        // After repeated failures, wait longer and longer (1 min doubling, at most 1 h).
        let may_retry = match (state.consecutive_failures, state.last_attempt) {
            (n, Some(at)) if n >= 3 => {
                let wait = 60u64 << (n - 3).min(6);
                at.elapsed().as_secs() >= wait.min(3600)
            }
            _ => true,
        };
        (state.scheduled, may_retry)
    };
    if server.persistence.save_in_progress() {
        return;
    }
    if scheduled {
        start(server, false);
        return;
    }
    let config = server.config.load();
    if !aof.enabled() || aof.waiting.load(Relaxed) || config.auto_aof_rewrite_percentage <= 0 {
        return;
    }
    let current = aof.current_size.load(Relaxed);
    if current <= config.auto_aof_rewrite_min_size.max(0) as u64 || !may_retry {
        return;
    }
    let base = aof.base_size.load(Relaxed).max(1);
    let growth = (current * 100 / base) as i64 - 100;
    if growth >= config.auto_aof_rewrite_percentage {
        log::info!("Starting automatic rewriting of AOF on {growth}% growth");
        start(server, false);
    }
}
