//! One snapshot of the live keyspace, point-in-time, written while clients keep going.
//!
//! [`Snapshot::start`] writes the preamble (header, aux fields, functions, one SELECTDB +
//! RESIZEDB per non-empty database) with every shard locked, then arms the store's
//! dump-on-first-touch hook (`ferrokv_store::snapshot`): each shard is serialized by the
//! first thread that locks it after the start, into a buffer of its own under the shard
//! lock, then appended to the sink under the output mutex. [`Snapshot::run`] is the saver:
//! it visits every shard (dumping those nobody touched), then writes EOF and the checksum
//! and commits the sink. Shards come in any order, each preceded by SELECTDB for every
//! database it has keys in; every RDB reader accepts a database selected again.
//!
//! Extra memory: at most one shard's serialized bytes per thread dumping at that moment,
//! plus the sink's write buffer; the peak is measured ([`Snapshot::peak_extra_bytes`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferrokv_rdb::crc64;
use ferrokv_rdb::encode::Encoder;
use ferrokv_rdb::file::{self, AccessInfo};
use ferrokv_rdb::value::Target;
use ferrokv_store::access::{AccessPolicy, lru_idle_seconds};
use ferrokv_store::{Keyspace, SHARD_COUNT, Shard, ShardDumper};
use parking_lot::Mutex;

use crate::sink::SnapshotSink;

/// Aux fields: (name, value) pairs.
pub type AuxFields = Vec<(Vec<u8>, Vec<u8>)>;

/// Aux fields computed at the snapshot's instant, with every shard locked: the replication
/// id and offset that match the saved dataset exactly (`repl-id`, `repl-offset`).
#[derive(Clone)]
pub struct AuxAtInstant(pub std::sync::Arc<dyn Fn() -> AuxFields + Send + Sync>);

impl std::fmt::Debug for AuxAtInstant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuxAtInstant")
    }
}

/// What a snapshot writes besides the keys, and how.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// LZF-compress long strings (`rdbcompression`).
    pub compress: bool,
    /// Write the CRC-64 (`rdbchecksum`; 0 otherwise).
    pub checksum: bool,
    /// Which access stamp to store with each key (by `maxmemory-policy`).
    pub access: AccessInfo,
    /// The policy that decays LFU counters.
    pub policy: AccessPolicy,
    /// Aux fields, in order, after the header.
    pub aux: AuxFields,
    /// More aux fields, computed at the instant (after `aux`).
    pub aux_at_instant: Option<AuxAtInstant>,
    /// Aux fields only a `VALKEY080` file carries (`valkey-ver`), or only an RDB 10 one
    /// (`redis-ver`): (for Valkey, for RDB 10).
    pub version_aux: (AuxFields, AuxFields),
    /// Function libraries' code.
    pub functions: Vec<Vec<u8>>,
    /// Microseconds the saver waits per key it dumped itself (`rdb-key-save-delay`: tests
    /// use it to keep a save running).
    pub key_save_delay_us: i64,
}

/// A completed save.
#[derive(Debug, Clone)]
pub struct SaveReport {
    pub keys: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Peak bytes held by the snapshot beyond the keyspace itself (serialized shards not yet
    /// in the sink).
    pub peak_extra_bytes: u64,
}

struct Output {
    sink: Option<Box<dyn SnapshotSink>>,
    digest: crc::Digest<'static, u64, crc::Table<16>>,
    bytes: u64,
    error: Option<String>,
}

pub struct Snapshot {
    output: Mutex<Output>,
    options: SaveOptions,
    target: OnceLock<Target>,
    aborted: AtomicBool,
    keys_total: AtomicU64,
    keys_done: AtomicU64,
    buffered: AtomicU64,
    peak_buffered: AtomicU64,
    started: Instant,
    /// Called by the saver before each shard it dumps, holding no lock: a sink slower than
    /// the saver (a replica's socket) makes the saver wait there, never a client's thread.
    throttle: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Snapshot {
    /// Starts a snapshot of `keyspace` into `sink`: after this returns, the state it will
    /// write is fixed, whatever clients do next.
    pub fn start(
        keyspace: &Keyspace,
        sink: Box<dyn SnapshotSink>,
        options: SaveOptions,
    ) -> Result<Arc<Snapshot>, String> {
        Self::start_with(keyspace, sink, options, || Ok(()))
    }

    /// [`Snapshot::start`], running `at_instant` at the snapshot's instant (every shard
    /// locked, the preamble written): an AOF rewrite switches its increment file there, so
    /// that every write is either in the snapshot or after it in the new increment. If it
    /// fails, nothing starts.
    pub fn start_with(
        keyspace: &Keyspace,
        sink: Box<dyn SnapshotSink>,
        options: SaveOptions,
        at_instant: impl FnOnce() -> Result<(), String>,
    ) -> Result<Arc<Snapshot>, String> {
        let snapshot = Arc::new(Snapshot {
            output: Mutex::new(Output {
                sink: Some(sink),
                digest: crc64::digest(),
                bytes: 0,
                error: None,
            }),
            options,
            target: OnceLock::new(),
            aborted: AtomicBool::new(false),
            keys_total: AtomicU64::new(0),
            keys_done: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            peak_buffered: AtomicU64::new(0),
            throttle: OnceLock::new(),
            started: Instant::now(),
        });
        let this = snapshot.clone();
        let started = keyspace.begin_snapshot(snapshot.clone(), |all| {
            // Counts per database across shards, for RESIZEDB and progress.
            let databases = keyspace.databases();
            let mut counts = vec![(0usize, 0usize); databases];
            let mut needs_valkey = false;
            for (_, shard) in all.shards() {
                for (db, (keys, volatile)) in shard.dbs.iter_mut().zip(counts.iter_mut()) {
                    *keys += db.len();
                    *volatile += db.volatile_len();
                    needs_valkey |= db.volatile_items_len() > 0;
                }
            }
            let target = if needs_valkey {
                Target::Valkey80
            } else {
                Target::Rdb10
            };
            let _ = this.target.set(target);
            let total: usize = counts.iter().map(|c| c.0).sum();
            this.keys_total.store(total as u64, Relaxed);
            let mut e = Encoder::new(this.options.compress);
            this.write_preamble(&mut e, target, &counts);
            this.append(&e.buf);
            if let Some(error) = this.output.lock().error.clone() {
                return Err(error);
            }
            at_instant()
        });
        if let Err(error) = started {
            snapshot.discard();
            return Err(error);
        }
        Ok(snapshot)
    }

    fn write_preamble(&self, e: &mut Encoder, target: Target, counts: &[(usize, usize)]) {
        file::write_header(e, target);
        let (valkey_only, rdb10_only) = &self.options.version_aux;
        let version_aux = match target {
            Target::Valkey80 => valkey_only,
            Target::Rdb10 => rdb10_only,
        };
        let at_instant = self
            .options
            .aux_at_instant
            .as_ref()
            .map(|compute| (compute.0)())
            .unwrap_or_default();
        for (key, value) in version_aux
            .iter()
            .chain(&self.options.aux)
            .chain(&at_instant)
        {
            file::write_aux(e, key, value);
        }
        for code in &self.options.functions {
            file::write_function(e, code);
        }
        for (db, &(keys, volatile)) in counts.iter().enumerate() {
            if keys > 0 {
                file::write_select_db(e, db);
                file::write_resize_db(e, keys, volatile);
            }
        }
    }

    /// Makes the saver call `throttle` before each shard (see the field).
    pub fn set_throttle(&self, throttle: Box<dyn Fn() + Send + Sync>) {
        let _ = self.throttle.set(throttle);
    }

    /// The saver: makes sure every shard was dumped, then completes the file. Runs on the
    /// thread that saves (a background thread for BGSAVE, the caller for SAVE).
    pub fn run(&self, keyspace: &Keyspace) -> Result<SaveReport, String> {
        self.run_on(keyspace, 1)
    }

    /// [`Snapshot::run`] with `threads` threads serializing shards side by side (the calling
    /// one among them): for a foreground save, where clients wait anyway. Only the appends
    /// to the file are serialized (one shard at a time, under the output lock).
    pub fn run_on(&self, keyspace: &Keyspace, threads: usize) -> Result<SaveReport, String> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let dump_shards = || {
            let delay = self.options.key_save_delay_us;
            loop {
                let index = next.fetch_add(1, Relaxed);
                if index >= SHARD_COUNT {
                    break;
                }
                if let Some(throttle) = self.throttle.get() {
                    throttle();
                }
                if self.aborted.load(Relaxed) {
                    break;
                }
                let before = self.keys_done.load(Relaxed);
                keyspace.dump_shard_now(index);
                if delay > 0 {
                    let keys = self.keys_done.load(Relaxed).saturating_sub(before);
                    std::thread::sleep(Duration::from_micros(keys.saturating_mul(delay as u64)));
                }
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..threads.max(1) {
                scope.spawn(dump_shards);
            }
            dump_shards();
        });
        keyspace.end_snapshot(self);
        self.finish()
    }

    /// Abandons the snapshot (FLUSHALL, SHUTDOWN, a newer save): the saver stops at its
    /// next shard and removes its file.
    pub fn abort(&self, keyspace: &Keyspace) {
        self.aborted.store(true, Relaxed);
        keyspace.end_snapshot(self);
    }

    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Relaxed)
    }

    /// (keys dumped, keys at the start).
    pub fn progress(&self) -> (u64, u64) {
        (self.keys_done.load(Relaxed), self.keys_total.load(Relaxed))
    }

    /// Bytes serialized and not yet handed to the sink, now.
    pub fn extra_bytes(&self) -> u64 {
        self.buffered.load(Relaxed)
    }

    pub fn peak_extra_bytes(&self) -> u64 {
        self.peak_buffered.load(Relaxed)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn finish(&self) -> Result<SaveReport, String> {
        let mut out = self.output.lock();
        let Some(sink) = out.sink.take() else {
            return Err("snapshot already finished".into());
        };
        if let Some(error) = out.error.clone() {
            sink.discard();
            return Err(error);
        }
        if self.aborted.load(Relaxed) {
            sink.discard();
            return Err("snapshot aborted".into());
        }
        let mut e = Encoder::new(false);
        file::write_eof(&mut e);
        out.digest.update(&e.buf);
        let digest = std::mem::replace(&mut out.digest, crc64::digest());
        let crc = if self.options.checksum {
            digest.finalize()
        } else {
            0
        };
        e.u64_le(crc);
        let mut sink = sink;
        let committed = sink.write_all(&e.buf).and_then(|()| sink.commit());
        if let Err(error) = committed {
            return Err(error.to_string());
        }
        out.bytes += e.buf.len() as u64;
        Ok(SaveReport {
            keys: self.keys_done.load(Relaxed),
            bytes: out.bytes,
            elapsed: self.started.elapsed(),
            peak_extra_bytes: self.peak_buffered.load(Relaxed),
        })
    }

    /// Drops the output without completing it.
    fn discard(&self) {
        self.aborted.store(true, Relaxed);
        if let Some(sink) = self.output.lock().sink.take() {
            sink.discard();
        }
    }

    /// Appends to the sink and the checksum; the first failure is kept and aborts.
    fn append(&self, bytes: &[u8]) {
        let mut out = self.output.lock();
        if out.error.is_some() || self.aborted.load(Relaxed) {
            return;
        }
        out.digest.update(bytes);
        out.bytes += bytes.len() as u64;
        let result = match out.sink.as_mut() {
            Some(sink) => sink.write_all(bytes),
            None => return,
        };
        if let Err(e) = result {
            out.error = Some(e.to_string());
        }
    }

    fn fail(&self, error: String) {
        let mut out = self.output.lock();
        if out.error.is_none() {
            out.error = Some(error);
        }
    }

    /// Every key of every database of one shard, each database's keys after its SELECTDB.
    fn serialize(&self, shard: &Shard, target: Target) -> (Vec<u8>, u64) {
        let mut e = Encoder::new(self.options.compress);
        let mut keys = 0u64;
        for db in shard.dbs.iter() {
            if db.is_empty() {
                continue;
            }
            file::write_select_db(&mut e, db.index());
            db.for_each(|key, entry| {
                let access = match self.options.access {
                    AccessInfo::None => None,
                    AccessInfo::LruIdle => {
                        Some((AccessInfo::LruIdle, lru_idle_seconds(entry.access)))
                    }
                    AccessInfo::LfuFreq => Some((
                        AccessInfo::LfuFreq,
                        u64::from(self.options.policy.lfu_frequency(entry.access)),
                    )),
                };
                file::write_key(&mut e, key, entry, access, target);
                keys += 1;
            });
        }
        (e.buf, keys)
    }
}

impl ShardDumper for Snapshot {
    fn dump_shard(&self, _index: usize, shard: &mut Shard) {
        if self.aborted.load(Relaxed) || self.output.lock().error.is_some() {
            return;
        }
        let target = self.target.get().copied().unwrap_or(Target::Rdb10);
        // A value the codec cannot write must fail this save, not the command that
        // happened to touch the shard first.
        let serialized = catch_unwind(AssertUnwindSafe(|| self.serialize(shard, target)));
        let (buf, keys) = match serialized {
            Ok(done) => done,
            Err(_) => {
                self.fail("a value could not be serialized".into());
                return;
            }
        };
        let held = buf.capacity() as u64;
        let now = self.buffered.fetch_add(held, Relaxed) + held;
        self.peak_buffered.fetch_max(now, Relaxed);
        self.append(&buf);
        drop(buf);
        self.buffered.fetch_sub(held, Relaxed);
        self.keys_done.fetch_add(keys, Relaxed);
    }
}
