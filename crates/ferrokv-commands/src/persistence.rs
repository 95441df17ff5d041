//! RDB persistence as the server sees it: when to save (SAVE, BGSAVE, `save` rules, FLUSHALL,
//! SHUTDOWN, DEBUG RELOAD), the status INFO persistence reports, MISCONF, and loading the
//! snapshot at start-up. The snapshot mechanism itself (no fork: dump on first touch) is in
//! `ferrokv-persist`.
//!
//! One save runs at a time, foreground (SAVE, on the caller's thread) or background (BGSAVE,
//! on a `ferrokv-bgsave` thread). While either runs, clients keep being served: the file is
//! the keyspace at the instant the save started.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use ferrokv_config::Config;
use ferrokv_persist::{
    FileSink, LoadOptions, LoadReport, SaveOptions, SaveReport, Snapshot, load_file,
};
use ferrokv_rdb::file::AccessInfo;
use ferrokv_store::access::AccessPolicy;
use ferrokv_store::clock;
use parking_lot::Mutex;

use crate::cmd::info::{REDIS_VERSION, VALKEY_VERSION};
use crate::context::CmdError;
use crate::server::Server;
use crate::stats;

/// After a failed background save, the `save` rules wait this long before trying again.
const RETRY_DELAY_SECS: i64 = 5;

pub const MISCONF: &str = "MISCONF Valkey is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Valkey logs for details about the RDB error.";

/// The save in progress.
struct Running {
    snapshot: Arc<Snapshot>,
    background: bool,
    /// Total dirty count when it started: what a success makes "saved".
    dirty_at_start: u64,
}

/// The save slot. `Starting` covers the moment a save waits for every shard lock: the slot's
/// mutex is never held across that wait, since a thread holding shards (EXEC, a script)
/// may need the slot meanwhile (INFO, FLUSHALL).
#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    Starting {
        background: bool,
    },
    Running(Running),
    /// An AOF rewrite holds the keyspace's snapshot machinery (one snapshot at a time, as
    /// Valkey runs one child at a time).
    AofRewrite,
}

impl Slot {
    fn running(&self) -> Option<&Running> {
        match self {
            Slot::Running(r) => Some(r),
            _ => None,
        }
    }

    fn is_idle(&self) -> bool {
        matches!(self, Slot::Idle)
    }
}

#[derive(Default)]
pub struct Persistence {
    server: OnceLock<Weak<Server>>,
    running: Mutex<Slot>,
    /// Total changes (the sum of every thread's dirty counter) covered by the last save.
    dirty_saved: AtomicU64,
    /// Whether the last background save failed (`rdb_last_bgsave_status:err`).
    last_bgsave_failed: AtomicBool,
    last_bgsave_secs: AtomicI64,
    last_bgsave_try_unix: AtomicI64,
    /// Unix seconds a background save started, or 0.
    bgsave_started_unix: AtomicI64,
    saves: AtomicU64,
    /// `BGSAVE SCHEDULE` while an AOF rewrite runs: the cron starts it afterwards.
    bgsave_scheduled: AtomicBool,
    last_extra_bytes: AtomicU64,
    pub loading: AtomicBool,
    /// A replica loads its primary's snapshot aside while serving the old data (INFO
    /// `async_loading`, `repl-diskless-load swapdb`).
    pub async_loading: AtomicBool,
    last_load_keys_loaded: AtomicU64,
    last_load_keys_expired: AtomicU64,
    /// Background snapshots started (BGSAVE, AOF rewrites, replicas' full syncs): what
    /// Valkey counts as forks in INFO `total_forks`; ferrokv takes them without forking.
    background_snapshots: AtomicU64,
}

/// What INFO persistence shows.
pub struct Status {
    pub changes_since_save: u64,
    pub bgsave_in_progress: bool,
    pub last_bgsave_ok: bool,
    pub last_bgsave_secs: i64,
    pub current_bgsave_secs: i64,
    pub saves: u64,
    pub last_extra_bytes: u64,
    pub current_extra_bytes: u64,
    pub current_peak_bytes: u64,
    pub keys_processed: u64,
    pub keys_total: u64,
    pub loading: bool,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
}

fn total_dirty() -> u64 {
    stats::sum(|s| s.dirty.get())
}

fn now_unix() -> i64 {
    clock::now_ms() / 1000
}

impl Persistence {
    /// Called once the server is built: background saves need to reach it from their thread.
    pub fn install(server: &Arc<Server>) {
        let _ = server.persistence.server.set(Arc::downgrade(server));
        server.persistence.last_bgsave_secs.store(-1, Relaxed);
    }

    pub fn status(&self) -> Status {
        let slot = self.running.lock();
        let running = slot.running();
        let background = running.filter(|r| r.background);
        let starting_in_background = matches!(*slot, Slot::Starting { background: true });
        let (keys_processed, keys_total) = running.map_or((0, 0), |r| r.snapshot.progress());
        let started = self.bgsave_started_unix.load(Relaxed);
        Status {
            changes_since_save: total_dirty().saturating_sub(self.dirty_saved.load(Relaxed)),
            bgsave_in_progress: background.is_some() || starting_in_background,
            last_bgsave_ok: !self.last_bgsave_failed.load(Relaxed),
            last_bgsave_secs: self.last_bgsave_secs.load(Relaxed),
            current_bgsave_secs: if background.is_some() || starting_in_background {
                now_unix() - started
            } else {
                -1
            },
            saves: self.saves.load(Relaxed),
            last_extra_bytes: self.last_extra_bytes.load(Relaxed),
            current_extra_bytes: background.map_or(0, |r| r.snapshot.extra_bytes()),
            current_peak_bytes: background.map_or(0, |r| r.snapshot.peak_extra_bytes()),
            keys_processed,
            keys_total,
            loading: self.loading.load(Relaxed),
            last_load_keys_loaded: self.last_load_keys_loaded.load(Relaxed),
            last_load_keys_expired: self.last_load_keys_expired.load(Relaxed),
        }
    }

    pub fn save_in_progress(&self) -> bool {
        !self.running.lock().is_idle()
    }

    /// Whether write commands (and PING) get MISCONF: the last background save failed,
    /// `save` rules exist and `stop-writes-on-bgsave-error` is on.
    pub fn writes_refused(&self, config: &Config) -> bool {
        self.last_bgsave_failed.load(Relaxed)
            && config.stop_writes_on_bgsave_error
            && !config.save.trim().is_empty()
    }

    /// Takes the snapshot slot for an AOF rewrite; false while a save runs.
    pub fn claim_for_rewrite(&self) -> bool {
        let mut slot = self.running.lock();
        if !slot.is_idle() {
            return false;
        }
        *slot = Slot::AofRewrite;
        self.background_snapshots.fetch_add(1, Relaxed);
        true
    }

    /// INFO `total_forks`: background snapshots started.
    pub fn background_snapshots(&self) -> u64 {
        self.background_snapshots.load(Relaxed)
    }

    /// Takes the snapshot slot for a replica's full sync (the same slot as an AOF rewrite:
    /// BGSAVE answers that another child is active, as Valkey's does during a diskless
    /// sync); false while another snapshot runs.
    pub fn claim_for_replica_sync(&self) -> bool {
        self.claim_for_rewrite()
    }

    pub fn release_replica_sync(&self) {
        self.release_rewrite()
    }

    /// The AOF rewrite is over: the slot is free again.
    pub fn release_rewrite(&self) {
        let mut slot = self.running.lock();
        if matches!(*slot, Slot::AofRewrite) {
            *slot = Slot::Idle;
        }
    }

    /// Waits until no AOF rewrite holds the snapshot slot (at most `limit`). Only for
    /// callers that hold no shard lock (SAVE, SHUTDOWN): the rewrite needs every shard.
    pub fn wait_for_rewrite(&self, limit: std::time::Duration) {
        let deadline = Instant::now() + limit;
        while matches!(*self.running.lock(), Slot::AofRewrite) && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Whether a background save runs (not an AOF rewrite).
    pub fn bgsave_running(&self) -> bool {
        matches!(
            *self.running.lock(),
            Slot::Running(Running {
                background: true,
                ..
            }) | Slot::Starting { background: true }
        )
    }

    /// `BGSAVE SCHEDULE` behind an AOF rewrite, or (`when_idle`, inside EXEC) for the next
    /// cron tick. Returns false when a save (not a rewrite) runs: then it fails like BGSAVE.
    pub fn schedule_bgsave(&self, when_idle: bool) -> bool {
        let running = self.running.lock();
        if matches!(*running, Slot::AofRewrite) || (when_idle && running.is_idle()) {
            self.bgsave_scheduled.store(true, Relaxed);
            return true;
        }
        false
    }

    /// `BGSAVE CANCEL` of a scheduled save: whether one was scheduled.
    pub fn cancel_scheduled_bgsave(&self) -> bool {
        self.bgsave_scheduled.swap(false, Relaxed)
    }

    /// Forgets the changes made so far (FLUSHALL with save rules saves and starts afresh).
    pub fn mark_all_saved(&self) {
        self.dirty_saved.store(total_dirty(), Relaxed);
    }
}

/// How a save writes keys, from the configuration.
pub fn save_options(server: &Server, config: &Config) -> SaveOptions {
    let policy = AccessPolicy::from_config(
        &config.maxmemory_policy,
        config.lfu_log_factor,
        config.lfu_decay_time,
    );
    let access = if config.maxmemory_policy.ends_with("-lru") {
        AccessInfo::LruIdle
    } else if config.maxmemory_policy.ends_with("-lfu") {
        AccessInfo::LfuFreq
    } else {
        AccessInfo::None
    };
    let pair = |k: &str, v: String| (k.as_bytes().to_vec(), v.into_bytes());
    let functions = server
        .scripting
        .libraries
        .read()
        .libraries
        .values()
        .map(|lib| lib.code.to_vec())
        .collect();
    SaveOptions {
        compress: config.rdbcompression,
        checksum: config.rdbchecksum,
        access,
        policy,
        aux: vec![
            pair("redis-bits", "64".into()),
            pair("ctime", now_unix().to_string()),
            pair("used-mem", crate::server::used_memory().to_string()),
            pair("aof-base", "0".into()),
        ],
        version_aux: (
            vec![pair("valkey-ver", VALKEY_VERSION.into())],
            vec![pair("redis-ver", REDIS_VERSION.into())],
        ),
        aux_at_instant: replication_aux(server),
        functions,
        key_save_delay_us: config.rdb_key_save_delay.max(0),
    }
}

/// `repl-stream-db`, `repl-id` and `repl-offset`, read at the snapshot's instant: a primary
/// with a backlog, or a replica, restarted from the file can then continue its replication
/// history with a partial sync. None for a server outside any replication (as Valkey).
fn replication_aux(server: &Server) -> Option<ferrokv_persist::snapshot::AuxAtInstant> {
    let server = server.arc()?;
    Some(ferrokv_persist::snapshot::AuxAtInstant(Arc::new(
        move || {
            let replication = &server.replication;
            // A replica's stream goes on in its primary's last SELECT, which a sub-replica or a
            // restart never sees; a primary's stream says SELECT again before its next command.
            let stream_db = if replication.is_replica() {
                replication.link_db.load(Relaxed)
            } else if replication.backlog_active() {
                0
            } else {
                return Vec::new();
            };
            let text = |k: &str, v: String| (k.as_bytes().to_vec(), v.into_bytes());
            vec![
                text("repl-stream-db", stream_db.to_string()),
                text("repl-id", replication.ids().replid),
                text("repl-offset", server.stream.end().to_string()),
            ]
        },
    )))
}

/// How a snapshot loads into this server: its databases, the access metadata its eviction
/// policy keeps, and `now_ms` to drop keys already expired (`i64::MIN`: keep them all).
pub fn load_options(server: &Server, now_ms: i64) -> LoadOptions {
    let config = server.config.load();
    LoadOptions {
        databases: server.keyspace.databases(),
        read: crate::cmd::dump::read_options_for(&config),
        policy: AccessPolicy::from_config(
            &config.maxmemory_policy,
            config.lfu_log_factor,
            config.lfu_decay_time,
        ),
        now_ms,
        allow_duplicates: false,
        after_key: None,
        expired_names_budget: 0,
    }
}

/// Removes the unfinished snapshot files of this process (an exit in the middle of a save).
pub fn remove_temp_files() {
    ferrokv_persist::sink::remove_temp_files(std::path::Path::new("."));
}

/// Opens the temporary file in the current `dir`.
fn open_sink(config: &Config, background: bool) -> Result<FileSink, String> {
    let dir = std::env::current_dir().map_err(|e| {
        format!(
            "Failed opening the temp RDB file (in server root dir unknown) for saving: {}",
            ferrokv_config::special::os_error_text(&e)
        )
    })?;
    FileSink::create(&dir, &config.dbfilename, background)
        .map(|sink| {
            sink.sync_every(
                config
                    .rdb_save_incremental_fsync
                    .then_some(ferrokv_persist::sink::INCREMENTAL_SYNC_BYTES),
            )
        })
        .map_err(|e| {
            format!(
                "Failed opening the temp RDB file temp-{}-N.rdb (in server root dir {}) for saving: {}",
                std::process::id(),
                dir.display(),
                ferrokv_config::special::os_error_text(&e)
            )
        })
}

/// Why a save could not start.
pub enum StartError {
    InProgress,
    Failed(String),
}

/// Starts a snapshot and records it as running.
fn start(server: &Server, config: &Config, background: bool) -> Result<Arc<Snapshot>, StartError> {
    let p = &server.persistence;
    {
        let mut slot = p.running.lock();
        if !slot.is_idle() {
            return Err(StartError::InProgress);
        }
        *slot = Slot::Starting { background };
    }
    // On a replica, no command from the primary is half applied at the instant: the
    // replication offset the file records must match its data exactly.
    let applying = server.replication.quiesce_link(server.stream);
    let started = open_sink(config, background).and_then(|sink| {
        // Read just before the snapshot's instant: a change made in between is in the file
        // yet still counted as unsaved, never the other way round.
        let dirty_at_start = total_dirty();
        Snapshot::start(
            &server.keyspace,
            Box::new(sink),
            save_options(server, config),
        )
        .map(|snapshot| (snapshot, dirty_at_start))
    });
    drop(applying);
    let mut slot = p.running.lock();
    match started {
        Ok((snapshot, dirty_at_start)) => {
            if background {
                p.background_snapshots.fetch_add(1, Relaxed);
            }
            *slot = Slot::Running(Running {
                snapshot: snapshot.clone(),
                background,
                dirty_at_start,
            });
            Ok(snapshot)
        }
        Err(e) => {
            *slot = Slot::Idle;
            Err(StartError::Failed(e))
        }
    }
}

/// Records the end of `snapshot`'s save (unless a newer one replaced it).
fn finish(server: &Server, snapshot: &Arc<Snapshot>, result: &Result<SaveReport, String>) {
    let p = &server.persistence;
    let mut slot = p.running.lock();
    if !slot
        .running()
        .is_some_and(|r| Arc::ptr_eq(&r.snapshot, snapshot))
    {
        return;
    }
    let Slot::Running(current) = std::mem::take(&mut *slot) else {
        return;
    };
    if current.background {
        p.bgsave_started_unix.store(0, Relaxed);
        p.last_bgsave_secs
            .store(snapshot.elapsed().as_secs() as i64, Relaxed);
    }
    match result {
        Ok(report) => {
            p.dirty_saved.store(current.dirty_at_start, Relaxed);
            server.last_save_unix.store(now_unix() as u64, Relaxed);
            p.last_bgsave_failed.store(false, Relaxed);
            p.last_extra_bytes.store(report.peak_extra_bytes, Relaxed);
        }
        Err(_) if snapshot.is_aborted() => {}
        Err(_) => {
            if current.background {
                p.last_bgsave_failed.store(true, Relaxed);
            }
        }
    }
}

/// `BGSAVE`: starts a background save. A failure to create the file is reported the way
/// Valkey reports its child's failure: the save "started", then failed.
pub fn bgsave(server: &Server, config: &Config) -> Result<(), CmdError> {
    let p = &server.persistence;
    let Some(owner) = p.server.get().and_then(Weak::upgrade) else {
        return Err(CmdError::err("server not ready"));
    };
    p.last_bgsave_try_unix.store(now_unix(), Relaxed);
    match start(server, config, true) {
        Ok(snapshot) => {
            p.saves.fetch_add(1, Relaxed);
            p.bgsave_started_unix.store(now_unix(), Relaxed);
            log::info!("Background saving started");
            let spawned = std::thread::Builder::new()
                .name("ferrokv-bgsave".into())
                .spawn({
                    let snapshot = snapshot.clone();
                    move || {
                        let result = snapshot.run(&owner.keyspace);
                        report(&result, true, snapshot.is_aborted());
                        finish(&owner, &snapshot, &result);
                    }
                });
            if let Err(e) = spawned {
                snapshot.abort(&server.keyspace);
                let result = Err(format!("Can't start the background save thread: {e}"));
                report(&result, true, false);
                finish(server, &snapshot, &result);
            }
            Ok(())
        }
        Err(StartError::InProgress) if matches!(*p.running.lock(), Slot::AofRewrite) => {
            Err(CmdError::err(
                "Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
            ))
        }
        Err(StartError::InProgress) => Err(CmdError::err("Background save already in progress")),
        Err(StartError::Failed(e)) => {
            p.saves.fetch_add(1, Relaxed);
            log::info!("Background saving started");
            log::warn!("{e}");
            log::warn!("Background saving error");
            p.last_bgsave_failed.store(true, Relaxed);
            p.last_bgsave_secs.store(0, Relaxed);
            Ok(())
        }
    }
}

fn report(result: &Result<SaveReport, String>, background: bool, aborted: bool) {
    match result {
        Ok(r) => {
            log::info!(
                "DB saved on disk ({} keys, {} bytes, {:.3} seconds, peak extra memory {} bytes)",
                r.keys,
                r.bytes,
                r.elapsed.as_secs_f64(),
                r.peak_extra_bytes
            );
            if background {
                log::info!("Background saving terminated with success");
            }
        }
        Err(_) if aborted => log::info!("Background saving cancelled"),
        Err(e) => {
            log::warn!("Write error saving DB on disk: {e}");
            if background {
                log::warn!("Background saving error");
            }
        }
    }
}

/// A foreground save on the calling thread (SAVE, FLUSHALL, SHUTDOWN, DEBUG RELOAD).
/// `count`: whether it shows in `rdb_saves` (SAVE and DEBUG RELOAD, not FLUSHALL's).
pub fn save(server: &Server, config: &Config, count: bool) -> Result<(), StartError> {
    if count {
        server.persistence.saves.fetch_add(1, Relaxed);
    }
    let snapshot = match start(server, config, false) {
        Ok(s) => s,
        Err(StartError::Failed(e)) => {
            log::warn!("{e}");
            return Err(StartError::Failed(e));
        }
        Err(other) => return Err(other),
    };
    // Clients wait for a foreground save anyway: every core serializes (a test's
    // rdb-key-save-delay keeps the one thread it paces).
    let threads = if config.rdb_key_save_delay > 0 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    let result = snapshot.run_on(&server.keyspace, threads);
    report(&result, false, false);
    finish(server, &snapshot, &result);
    result.map(|_| ()).map_err(StartError::Failed)
}

/// Stops the running save, if any (FLUSHALL, SHUTDOWN, BGSAVE CANCEL). Returns whether one
/// was running.
pub fn abort_running(server: &Server) -> bool {
    let p = &server.persistence;
    let running = {
        let mut slot = p.running.lock();
        match std::mem::take(&mut *slot) {
            Slot::Running(r) => Some(r),
            // Still waiting for the shard locks: its instant comes after whatever the caller
            // does now, so there is nothing to stop.
            other => {
                *slot = other;
                None
            }
        }
    };
    match running {
        Some(r) => {
            r.snapshot.abort(&server.keyspace);
            if r.background {
                p.bgsave_started_unix.store(0, Relaxed);
            }
            true
        }
        None => false,
    }
}

/// The `save` rules, checked by the cron: a background save when some rule's number of
/// changes happened and its seconds have passed since the last save (after a failure, not
/// before `RETRY_DELAY_SECS`).
pub fn cron(server: &Server) {
    let p = &server.persistence;
    let config = server.config.load();
    if !p.running.lock().is_idle() {
        return;
    }
    if p.bgsave_scheduled.swap(false, Relaxed) {
        let _ = bgsave(server, &config);
        return;
    }
    if config.save.trim().is_empty() {
        return;
    }
    let changes = total_dirty().saturating_sub(p.dirty_saved.load(Relaxed));
    let now = now_unix();
    let since_save = now - server.last_save_unix.load(Relaxed) as i64;
    let may_retry = !p.last_bgsave_failed.load(Relaxed)
        || now - p.last_bgsave_try_unix.load(Relaxed) > RETRY_DELAY_SECS;
    let words: Vec<i64> = config
        .save
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    for rule in words.chunks_exact(2) {
        let (seconds, needed) = (rule[0], rule[1]);
        if changes >= needed as u64 && since_save > seconds && may_retry {
            log::info!("{needed} changes in {seconds} seconds. Saving...");
            let _ = bgsave(server, &config);
            return;
        }
    }
}

/// Before exiting (SHUTDOWN, SIGTERM): stops a running background save, then saves if asked
/// (`asked`) or if `save` rules exist, unless `nosave`. `Err` (the reason) means the save
/// failed ([`crate::shutdown`] decides whether to exit anyway).
pub fn save_before_exit(server: &Server, asked: bool, nosave: bool) -> Result<(), String> {
    let config = server.config.load();
    if abort_running(server) {
        log::warn!("There is a child saving an .rdb. Killing it!");
    }
    if nosave || (!asked && config.save.trim().is_empty()) {
        return Ok(());
    }
    if crate::loading::refusing() {
        // Saving now would write the half-loaded dataset over the file being loaded.
        log::warn!("Not saving the dataset: it is still being loaded.");
        return Ok(());
    }
    // As Valkey kills its AOF rewrite child: the final save needs the snapshot slot.
    if crate::aof::abort_rewrite(server) {
        log::warn!("There is a child rewriting the AOF. Killing it!");
        server
            .persistence
            .wait_for_rewrite(std::time::Duration::from_secs(10));
    }
    log::info!("Saving the final RDB snapshot before exiting.");
    save(server, &config, false).map_err(|_| "Error trying to save the DB".to_string())
}

/// Whether start-up has a snapshot to load (`dbfilename` is there and the AOF is off). If
/// so the load is announced before clients are accepted: INFO says `loading:1` and commands
/// get LOADING until [`load_at_startup`] is over (see [`crate::loading`]).
pub fn announce_startup_load(server: &Server) -> bool {
    let config = server.config.load();
    if config.appendonly {
        return false;
    }
    let Ok(file) = std::fs::metadata(&config.dbfilename) else {
        return false;
    };
    server.persistence.loading.store(true, Relaxed);
    crate::loading::begin(file.len(), config.key_load_delay);
    true
}

/// Loads `dir`/`dbfilename` into the (empty) keyspace. A file that cannot be read completely
/// is an error: the server must not go on without its data. With `appendonly yes` the AOF is
/// the source of truth and `dump.rdb` is not read, as Valkey.
pub fn load_at_startup(server: &Server) -> Result<(), String> {
    let config = server.config.load();
    if config.appendonly {
        return Ok(());
    }
    let path = std::path::Path::new(&config.dbfilename);
    let replica = !config.replicaof.trim().is_empty();
    // A primary drops the keys already expired; their deletions go to the replicas that
    // continue its history, so their names are kept (as long as they fit in the backlog).
    // A replica keeps them all until its primary's DEL, as Valkey.
    let (now_ms, names_budget) = if replica {
        (i64::MIN, 0)
    } else {
        (clock::now_ms(), config.repl_backlog_size.max(1) as usize)
    };
    let loaded = load_report(
        server,
        path,
        LoadOptions {
            after_key: Some(crate::loading::after_key),
            expired_names_budget: names_budget,
            ..load_options(server, now_ms)
        },
    );
    crate::loading::end();
    if let Some(report) = loaded? {
        let recorded = crate::replication::RecordedPosition::from_aux(|name| report.aux_text(name));
        if let Some(position) = recorded {
            server.replication.restore_position(
                server.stream,
                &position,
                replica,
                report.dropped_as_expired(),
                &config,
            );
        }
    }
    Ok(())
}

/// Loads the snapshot at `path` (a `dump.rdb`, or an AOF's RDB-format base) into the
/// keyspace with its function libraries; `Ok(false)` when there is no such file.
pub fn load_snapshot(server: &Server, path: &std::path::Path) -> Result<bool, String> {
    load_snapshot_with(server, path, false, None).map(|read| read.is_some())
}

/// [`load_snapshot`]; with `merge`, keys and function libraries already there are replaced
/// by the file's instead of failing the load as duplicates.
/// `after_key` reports progress (see [`ferrokv_persist::LoadOptions::after_key`]). The
/// bytes the snapshot took in the file (an AOF's tail of commands may follow them), `None`
/// when there is no such file.
pub(crate) fn load_snapshot_with(
    server: &Server,
    path: &std::path::Path,
    merge: bool,
    after_key: Option<fn(u64)>,
) -> Result<Option<u64>, String> {
    let options = LoadOptions {
        allow_duplicates: merge,
        after_key,
        ..load_options(server, clock::now_ms())
    };
    load_report(server, path, options).map(|report| report.map(|r| r.bytes))
}

/// [`load_snapshot_with`] with `options`, and what the load found (`None`: no such file).
fn load_report(
    server: &Server,
    path: &std::path::Path,
    options: LoadOptions,
) -> Result<Option<LoadReport>, String> {
    let merge = options.allow_duplicates;
    let started = Instant::now();
    let p = &server.persistence;
    p.loading.store(true, Relaxed);
    let loaded = load_file(path, &server.keyspace, options);
    p.loading.store(false, Relaxed);
    let full_path = std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| path.display().to_string());
    let report = match loaded {
        Ok(None) => return Ok(None),
        Ok(Some(report)) => report,
        Err(e) => {
            for line in e.valkey_log_lines() {
                log::warn!("{line}");
            }
            let at = e
                .offset()
                .map(|o| format!(" at offset {o}"))
                .unwrap_or_default();
            return Err(format!(
                "Fatal error loading the DB from {full_path}{at}: {e}. Exiting."
            ));
        }
    };
    let producer = report
        .aux_text("valkey-ver")
        .map(|v| format!("Valkey version {v}"))
        .or_else(|| {
            report
                .aux_text("redis-ver")
                .map(|v| format!("Redis version {v}"))
        });
    if let Some(producer) = producer {
        log::info!("Loading RDB produced by {producer}");
    }
    if let Some(ctime) = report.aux_text("ctime").and_then(|t| t.parse::<i64>().ok()) {
        log::info!("RDB age {} seconds", (now_unix() - ctime).max(0));
    }
    if let Some(used) = report
        .aux_text("used-mem")
        .and_then(|m| m.parse::<u64>().ok())
    {
        log::info!(
            "RDB memory usage when created {:.2} Mb",
            used as f64 / (1024.0 * 1024.0)
        );
    }
    for code in &report.functions {
        if let Err(e) = crate::cmd::scripting::load_library_from_snapshot(server, code, merge) {
            return Err(format!(
                "Fatal error loading the DB from {full_path}: function library: {e}. Exiting."
            ));
        }
    }
    p.last_load_keys_loaded.store(report.keys_loaded, Relaxed);
    p.last_load_keys_expired.store(report.keys_expired, Relaxed);
    log::info!("{}", report.summary());
    log::info!(
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    // What was just loaded is on disk already.
    p.mark_all_saved();
    Ok(Some(report))
}

/// DEBUG RELOAD: save, empty the keyspace, load the file again.
/// What DEBUG RELOAD does: save (unless NOSAVE), empty the data and functions (unless
/// NOFLUSH), load the RDB file; MERGE lets the file's keys and libraries replace the ones
/// already there, which otherwise fail the load as duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadOptions {
    pub save: bool,
    pub flush: bool,
    pub merge: bool,
}

pub fn debug_reload(server: &Server, options: ReloadOptions) -> Result<(), CmdError> {
    let config = server.config.load();
    if options.save {
        match save(server, &config, true) {
            Ok(()) => {}
            Err(StartError::InProgress) => {
                return Err(CmdError::err("Background save already in progress"));
            }
            Err(StartError::Failed(_)) => {
                return Err(CmdError::err("Error trying to save the DB"));
            }
        }
    }
    if options.flush {
        // A file that cannot be loaded must not cost the data in memory (Valkey checks the
        // signature and version before it empties anything).
        let path = std::path::Path::new(&config.dbfilename);
        let relaxed = crate::cmd::dump::read_options_for(&config).relaxed_version;
        if let Err(e) = ferrokv_persist::load::check_header(path, relaxed) {
            for line in e.valkey_log_lines() {
                log::warn!("{line}");
            }
            log::warn!("Not reloading {}: {e}", config.dbfilename);
            return Err(CmdError::err(
                "Error trying to load the RDB dump, check server logs.",
            ));
        }
        let mut all = server.keyspace.lock_all();
        let databases = server.keyspace.databases();
        let detached: Vec<_> = (0..databases).flat_map(|db| all.take_db(db)).collect();
        drop(all);
        drop(detached);
        // The functions come back from the snapshot too (they were refused as duplicates).
        server
            .scripting
            .libraries
            .update(|state| *state = Default::default());
    }
    // The RDB file, whether or not AOF is on (as Valkey's DEBUG RELOAD).
    load_snapshot_with(
        server,
        std::path::Path::new(&config.dbfilename),
        options.merge,
        None,
    )
    .map(|_| log::info!("DB reloaded by DEBUG RELOAD"))
    .map_err(|e| {
        log::warn!("{e}");
        CmdError::err("Error trying to load the RDB dump, check server logs.")
    })
}

/// FLUSHALL with `save` rules saves the empty dataset at once (a restart must not bring the
/// flushed keys back) and counts nothing as unsaved; without rules it only counts changes.
pub fn after_flushall(server: &Server, config: &Config) {
    if !config.save.trim().is_empty() {
        let _ = save(server, config, false);
        server.persistence.mark_all_saved();
    }
}
