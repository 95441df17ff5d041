//! Loading a snapshot file into the keyspace (at start-up, DEBUG RELOAD).
//!
//! Keys already expired are dropped (as a primary does) once their values have been read,
//! so damage in one is reported like any other; access stamps are restored from
//! the stored idle time or LFU counter, and function libraries are handed back to the
//! caller, which owns the scripting engine. Any error names the byte offset where the bad
//! data starts; the caller refuses to start rather than run with part of the data.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use ferrokv_rdb::RdbError;
use ferrokv_rdb::decode::Decoder;
use ferrokv_rdb::error::RdbErrorKind;
use ferrokv_rdb::file::{FileReader, Framed, Item};
use ferrokv_rdb::format::{Dialect, kind};
use ferrokv_rdb::value::{self, ReadOptions};
use ferrokv_store::access::AccessPolicy;
use ferrokv_store::keyspace::SHARD_COUNT;
use ferrokv_store::table::{Stage, hash_key};
use ferrokv_store::{Entry, Keyspace, NO_EXPIRE, StrValue, Value};

#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub databases: usize,
    /// The configured encoding limits that shape loaded values (the dialect is the file's).
    pub read: ReadOptions,
    pub policy: AccessPolicy,
    /// Keys expiring at or before this instant are not loaded.
    pub now_ms: i64,
    /// A key already in the keyspace is replaced (DEBUG RELOAD MERGE) instead of failing the
    /// load as a duplicate.
    pub allow_duplicates: bool,
    /// Called on the reading thread after each key with the file offset reached: the
    /// server's progress report, and the pause of `key-load-delay` (tests slow a load down
    /// to watch a loading server).
    pub after_key: Option<fn(u64)>,
    /// Bytes of key names of the keys dropped as expired that the report may list (0: none):
    /// a primary restarted from its snapshot propagates their deletions to the replicas
    /// that continue its history. Past the budget the list is given up. The names of hash
    /// fields dropped as expired are listed within a budget of the same size.
    pub expired_names_budget: usize,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub dialect: Dialect,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    /// (database, name) of every key dropped as expired, when asked for
    /// ([`LoadOptions::expired_names_budget`]) and within the budget.
    pub expired_names: Option<Vec<(usize, Vec<u8>)>>,
    /// The hash fields dropped as expired, by key, under the same conditions.
    pub expired_fields: Option<Vec<ExpiredFields>>,
    /// Hashes not loaded because every field had expired (Valkey's "all fields expired
    /// hashes").
    pub hashes_all_fields_expired: u64,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Function libraries' code, in file order.
    pub functions: Vec<Vec<u8>>,
    pub bytes: u64,
}

/// Hash fields a load dropped as expired, of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredFields {
    pub db: usize,
    pub key: Vec<u8>,
    pub fields: Vec<bytes::Bytes>,
}

/// What a load dropped as expired, by name: the keys (database, name) and the hash fields.
#[derive(Debug, Clone, Copy)]
pub struct DroppedAsExpired<'a> {
    pub keys: &'a [(usize, Vec<u8>)],
    pub fields: &'a [ExpiredFields],
}

impl LoadReport {
    /// The keys and hash fields dropped as expired, when both lists were asked for and
    /// kept within their budgets.
    pub fn dropped_as_expired(&self) -> Option<DroppedAsExpired<'_>> {
        Some(DroppedAsExpired {
            keys: self.expired_names.as_deref()?,
            fields: self.expired_fields.as_deref()?,
        })
    }

    /// The line a load ends with in the log, in Valkey 9.1's words.
    pub fn summary(&self) -> String {
        format!(
            "Done loading RDB, keys loaded: {}, keys expired: {}, all fields expired hashes: {}.",
            self.keys_loaded, self.keys_expired, self.hashes_all_fields_expired
        )
    }

    /// An aux field's value as text.
    pub fn aux_text(&self, key: &str) -> Option<String> {
        self.aux
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

#[derive(Debug)]
pub enum LoadError {
    /// The file exists but cannot be read.
    Open(io::Error),
    /// The file is not a valid snapshot (truncated, corrupt, unsupported).
    Format(RdbError),
    /// A database number the server is not configured for.
    TooManyDatabases { selected: usize, configured: usize },
    /// The same key twice in one database.
    DuplicateKey { offset: u64, key: Vec<u8> },
}

impl LoadError {
    /// Where in the file the problem starts, when known.
    pub fn offset(&self) -> Option<u64> {
        match self {
            LoadError::Format(e) => Some(e.offset),
            LoadError::DuplicateKey { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl LoadError {
    /// What Valkey logs for the same failure, in its words: operators' log alerts and
    /// Valkey's own tests look for these lines ("CRC error", "Short read", ...).
    pub fn valkey_log_lines(&self) -> Vec<String> {
        use ferrokv_rdb::error::RdbErrorKind as Kind;
        let LoadError::Format(e) = self else {
            return Vec::new();
        };
        let internal = |what: &str| {
            format!(
                "Internal error in RDB reading offset {} -> {what}",
                e.offset
            )
        };
        match &e.kind {
            Kind::BadChecksum { stored, computed } => vec![
                format!(
                    "Wrong RDB checksum expected: ({computed:x}) but got ({stored:x}). Aborting now."
                ),
                internal("RDB CRC error"),
            ],
            Kind::Truncated => {
                vec!["Short read or OOM loading DB. Unrecoverable error, aborting now.".into()]
            }
            Kind::BadHeader => vec!["Wrong signature trying to load DB from file".into()],
            Kind::UnsupportedVersion(v) => vec![format!("Can't handle RDB format version {v}")],
            Kind::UnknownType(_) => vec![
                "Unknown type or opcode when loading DB. Unrecoverable error, aborting now.".into(),
            ],
            Kind::ForeignType { type_byte, version } => vec![format!(
                "Can't handle foreign type or opcode {type_byte} in RDB with version {version}"
            )],
            kind => vec![internal(&kind.to_string())],
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open(e) => write!(f, "{e}"),
            LoadError::Format(e) => write!(f, "{e}"),
            LoadError::TooManyDatabases { configured, .. } => write!(
                f,
                "Data file was created with a server configured to handle more than {configured} databases"
            ),
            LoadError::DuplicateKey { offset, key } => write!(
                f,
                "duplicate key '{}' at offset {offset}",
                String::from_utf8_lossy(key)
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads `path` into `keyspace`; `Ok(None)` when there is no such file.
pub fn load_file(
    path: &Path,
    keyspace: &Keyspace,
    options: LoadOptions,
) -> Result<Option<LoadReport>, LoadError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Open(e)),
    };
    // The reader buffers (and checksums) in large blocks itself.
    load_from(file, keyspace, options).map(Some)
}

/// Reads only the header of `path`: whether a load would get past the signature and version
/// check (`Ok(false)`: no such file). DEBUG RELOAD asks before it empties the keyspace, so a
/// file it cannot read leaves the data as it was.
pub fn check_header(path: &Path, relaxed_version: bool) -> Result<bool, LoadError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(LoadError::Open(e)),
    };
    FileReader::with_version_check(io::BufReader::with_capacity(64, file), relaxed_version)
        .map(|_| true)
        .map_err(LoadError::Format)
}

/// Keys handed to an inserting thread at a time.
const BATCH_KEYS: usize = 512;
/// A batch is sent early once its bytes pass this, so big values do not pile up.
const BATCH_BYTES: usize = 256 << 10;
/// Batches queued per inserting thread: bounds the memory in flight when framing runs ahead
/// (about 4 MB per thread), and deep enough that the framing thread rarely waits on one busy
/// thread while another runs dry (4 kept both cores only 1.3 busy on a 2-core machine; 16
/// keeps them 1.6 busy and loads a third faster).
const QUEUED_BATCHES: usize = 16;
/// Keys whose table slots are prefetched together before they are inserted.
const PREFETCH_GROUP: usize = 16;

/// Keys on their way to one inserting thread: framed payloads back to back in `data`.
struct Batch {
    records: Vec<Record>,
    data: Vec<u8>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            records: Vec::with_capacity(BATCH_KEYS),
            data: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.records.len() >= BATCH_KEYS || self.data.len() >= BATCH_BYTES
    }
}

/// One key of a [`Batch`].
struct Record {
    db: usize,
    /// The key's [`hash_key`], for the prefetch.
    hash: u64,
    /// The key's bytes in the batch's `data`.
    key: std::ops::Range<usize>,
    body: Body,
    /// Where the key's item starts in the file (a duplicate is reported there).
    at: u64,
    expire_at: i64,
    access: u32,
    /// Already expired: decoded (damage in it is reported, as a sequential read would),
    /// then dropped.
    expired: bool,
}

enum Body {
    /// The payload in the batch's `data`, decoded by the inserting thread.
    Framed {
        type_byte: u8,
        payload: std::ops::Range<usize>,
        payload_at: u64,
    },
    /// Decoded while framing (types the framer does not walk: streams).
    Decoded(Value),
}

/// What an inserting thread did: keys inserted, the first error it met, and the hash
/// fields it dropped as expired.
struct Inserted {
    keys: u64,
    error: Option<LoadError>,
    expired_fields: Vec<ExpiredFields>,
    hashes_all_fields_expired: u64,
}

/// A decoded key waiting for its turn to be inserted.
struct Built {
    db: usize,
    hash: u64,
    key: std::ops::Range<usize>,
    at: u64,
    entry: Entry,
}

/// Loads a snapshot from any reader (a file, a primary's stream).
///
/// This thread reads the file, checks its checksum and frames each key (finds where its
/// value's bytes end); inserting threads (one per core, up to 8) decode the values and put
/// them into the keyspace, each owning a fixed set of shards, so they never wait on each
/// other's locks. Decoding and inserting are most of a load's time, so they are what runs
/// in parallel, and a value is built on the thread that stores it, so its memory is not
/// handed between threads. Errors are reported as a sequential reader would: the one
/// earliest in the file.
pub fn load_from<R: Read>(
    reader: R,
    keyspace: &Keyspace,
    options: LoadOptions,
) -> Result<LoadReport, LoadError> {
    let inserters = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let mut reader = FileReader::with_version_check(reader, options.read.relaxed_version)
        .map_err(LoadError::Format)?;
    reader.set_options(options.read);
    let read_options = ReadOptions {
        dialect: reader.dialect,
        ..options.read
    };
    // Shared by the inserting threads; below zero, the list of expired fields is given up.
    let field_names_budget = AtomicI64::new(options.expired_names_budget as i64);
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(inserters);
        let mut workers = Vec::with_capacity(inserters);
        for _ in 0..inserters {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(QUEUED_BATCHES);
            queues.push(tx);
            let rules = InsertRules {
                allow_duplicates: options.allow_duplicates,
                now_ms: options.now_ms,
                field_names_budget: (options.expired_names_budget > 0)
                    .then_some(&field_names_budget),
            };
            workers.push(scope.spawn(move || insert_batches(keyspace, &read_options, rules, rx)));
        }
        let framed = frame_into(&mut reader, keyspace, options, &queues);
        drop(queues);
        let mut keys = 0;
        let mut first_error: Option<LoadError> = None;
        let mut expired_fields = Vec::new();
        let mut hashes_all_fields_expired = 0;
        for worker in workers {
            let mut done = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            keys += done.keys;
            expired_fields.append(&mut done.expired_fields);
            hashes_all_fields_expired += done.hashes_all_fields_expired;
            if let Some(e) = done.error
                && first_error
                    .as_ref()
                    .is_none_or(|first| e.offset() < first.offset())
            {
                first_error = Some(e);
            }
        }
        // An inserting thread only got keys framed before any error the framing met, so
        // its errors come first in the file.
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut report = framed?;
        report.keys_loaded = keys;
        report.hashes_all_fields_expired = hashes_all_fields_expired;
        let listed = options.expired_names_budget > 0 && field_names_budget.load(Relaxed) >= 0;
        report.expired_fields = listed.then_some(expired_fields);
        Ok(report)
    })
}

/// Decodes and inserts what arrives on `batches`. After the first error the rest of the
/// queue is drained unread, so the framing thread never blocks on a thread that stopped.
fn insert_batches(
    keyspace: &Keyspace,
    options: &ReadOptions,
    rules: InsertRules,
    batches: std::sync::mpsc::Receiver<Batch>,
) -> Inserted {
    let mut done = Inserted {
        keys: 0,
        error: None,
        expired_fields: Vec::new(),
        hashes_all_fields_expired: 0,
    };
    let mut group: Vec<Built> = Vec::with_capacity(PREFETCH_GROUP);
    let mut text = Vec::new();
    for mut batch in batches {
        if done.error.is_some() {
            continue;
        }
        let records = std::mem::take(&mut batch.records);
        let data = &batch.data;
        let insert = |group: &mut Vec<Built>, keys: &mut u64| {
            insert_group(keyspace, data, group, keys, rules.allow_duplicates)
        };
        let outcome = records
            .into_iter()
            .try_for_each(|record| {
                let expired = record.expired;
                if let Some(mut built) = build(record, data, options, &mut text)?
                    && !expired
                {
                    // Hash fields already expired are not loaded either; a hash left with
                    // none is skipped, as Valkey does (a replica keeps them: i64::MIN).
                    drop_expired_fields(&mut built, data, rules, &mut done);
                    if !built.entry.value.is_empty_collection() {
                        group.push(built);
                    }
                }
                if group.len() == PREFETCH_GROUP {
                    insert(&mut group, &mut done.keys)?;
                }
                Ok(())
            })
            .and_then(|()| insert(&mut group, &mut done.keys));
        if let Err(e) = outcome {
            done.error = Some(e);
        }
        group.clear();
    }
    done
}

/// What the inserting threads apply to each decoded key.
#[derive(Debug, Clone, Copy)]
struct InsertRules<'a> {
    /// A key already there is replaced instead of failing the load.
    allow_duplicates: bool,
    /// Hash fields expiring at or before this instant are dropped.
    now_ms: i64,
    /// When the dropped fields are to be listed: the bytes of names the list may still take.
    field_names_budget: Option<&'a AtomicI64>,
}

/// Drops the hash fields of `built` expired at `rules.now_ms`, listing them (see
/// [`LoadReport::expired_fields`]) while the budget lasts, and counts a hash left empty.
fn drop_expired_fields(built: &mut Built, data: &[u8], rules: InsertRules, done: &mut Inserted) {
    let value = &mut built.entry.value;
    let mut fields = Vec::new();
    let names = rules.field_names_budget.is_some().then_some(&mut fields);
    value.expire_items_named(rules.now_ms, usize::MAX, names);
    if value.is_empty_collection() {
        done.hashes_all_fields_expired += 1;
    }
    let Some(budget) = rules.field_names_budget else {
        return;
    };
    if fields.is_empty() {
        return;
    }
    let key = &data[built.key.clone()];
    let size = key.len() + fields.iter().map(|f| f.len()).sum::<usize>();
    if budget.fetch_sub(size as i64, Relaxed) - (size as i64) < 0 {
        return;
    }
    done.expired_fields.push(ExpiredFields {
        db: built.db,
        key: key.to_vec(),
        fields,
    });
}

/// Decodes one record; `None` for a key whose collection is empty (Valkey skips those).
fn build(
    record: Record,
    data: &[u8],
    options: &ReadOptions,
    text: &mut Vec<u8>,
) -> Result<Option<Built>, LoadError> {
    let value = match record.body {
        Body::Decoded(value) => value,
        Body::Framed {
            type_byte,
            payload,
            payload_at,
        } => {
            let bytes = data.get(payload).unwrap_or_default();
            let mut d = Decoder::new(bytes);
            let decoded = if type_byte == kind::STRING {
                // Shaped as SET would store it under this key (int, embstr or raw).
                d.string_into(text).map(|()| {
                    Value::Str(StrValue::for_key(
                        text,
                        record.key.len(),
                        record.expire_at != NO_EXPIRE,
                    ))
                })
            } else {
                value::read_value(&mut d, type_byte, options)
            };
            match decoded {
                Ok(value) => value,
                Err(e) if e.kind == RdbErrorKind::EmptyKey => return Ok(None),
                Err(mut e) => {
                    e.offset += payload_at;
                    return Err(LoadError::Format(e));
                }
            }
        }
    };
    let mut entry = Entry::new(value, record.access);
    entry.expire_at = record.expire_at;
    Ok(Some(Built {
        db: record.db,
        hash: record.hash,
        key: record.key,
        at: record.at,
        entry,
    }))
}

/// Inserts `group` (emptying it): the keys' table slots are prefetched first, all of them,
/// so that their cache misses overlap instead of being paid one after another.
fn insert_group(
    keyspace: &Keyspace,
    data: &[u8],
    group: &mut Vec<Built>,
    inserted: &mut u64,
    allow_duplicates: bool,
) -> Result<(), LoadError> {
    if group.len() > 1 {
        for stage in [Stage::Bucket, Stage::Node] {
            for built in group.iter() {
                keyspace.prefetch(built.db, built.hash, stage);
            }
        }
    }
    for built in group.drain(..) {
        let key = data.get(built.key).unwrap_or_default();
        let replaced = keyspace
            .lock(&[key])
            .db(built.db, key)
            .insert(key, built.entry);
        if replaced.is_some() && !allow_duplicates {
            return Err(LoadError::DuplicateKey {
                offset: built.at,
                key: key.to_vec(),
            });
        }
        *inserted += 1;
    }
    Ok(())
}

/// Reads the file, framing each key into the batch of the inserting thread that owns its
/// shard; everything else (aux fields, functions, database sizes) is handled here.
fn frame_into<R: Read>(
    reader: &mut FileReader<R>,
    keyspace: &Keyspace,
    options: LoadOptions,
    queues: &[std::sync::mpsc::SyncSender<Batch>],
) -> Result<LoadReport, LoadError> {
    let mut report = LoadReport {
        dialect: reader.dialect,
        keys_loaded: 0,
        keys_expired: 0,
        expired_names: (options.expired_names_budget > 0).then(Vec::new),
        expired_fields: None,
        hashes_all_fields_expired: 0,
        aux: Vec::new(),
        functions: Vec::new(),
        bytes: 0,
    };
    let mut batches: Vec<Batch> = queues.iter().map(|_| Batch::new()).collect();
    let send = |queue: usize, batch: Batch| {
        // A closed queue means its inserter panicked; join reports that.
        let _ = queues[queue].send(batch);
    };
    let framed = frame_keys(reader, keyspace, options, &mut report, &mut batches, &send);
    // Sent even after an error: a key framed before it may hold an earlier error, which is
    // the one to report.
    for (queue, batch) in batches.into_iter().enumerate() {
        if !batch.records.is_empty() {
            send(queue, batch);
        }
    }
    framed?;
    report.bytes = reader.offset();
    Ok(report)
}

/// The framing loop of [`frame_into`], up to the end of the file or the first error.
fn frame_keys<R: Read>(
    reader: &mut FileReader<R>,
    keyspace: &Keyspace,
    options: LoadOptions,
    report: &mut LoadReport,
    batches: &mut [Batch],
    send: &impl Fn(usize, Batch),
) -> Result<(), LoadError> {
    let mut names_budget = options.expired_names_budget;
    let mut note_expired = |report: &mut LoadReport, db: usize, key: &[u8]| {
        report.keys_expired += 1;
        if let Some(names) = report.expired_names.as_mut() {
            if key.len() < names_budget {
                names_budget -= key.len();
                names.push((db, key.to_vec()));
            } else {
                report.expired_names = None;
            }
        }
    };
    // Most files store no access stamps: the fresh stamp is read from the clock once.
    let fresh = options.policy.restored(None, None);
    let access_of = |idle: Option<u64>, lfu: Option<u8>| match (idle, lfu) {
        (None, None) => fresh,
        _ => options.policy.restored(idle, lfu),
    };
    let expired = |expire_at: i64| expire_at != NO_EXPIRE && expire_at <= options.now_ms;
    let mut db = 0usize;
    loop {
        let item_at = reader.offset();
        let queue = match reader.next_framed().map_err(LoadError::Format)? {
            Framed::Item(Item::Eof) => return Ok(()),
            Framed::Item(Item::Aux { key, value }) => {
                report.aux.push((key, value));
                continue;
            }
            Framed::Item(Item::SelectDb(n)) => {
                if n >= options.databases {
                    return Err(LoadError::TooManyDatabases {
                        selected: n,
                        configured: options.databases,
                    });
                }
                db = n;
                continue;
            }
            Framed::Item(Item::ResizeDb { keys, .. }) => {
                reserve(keyspace, db, keys);
                continue;
            }
            Framed::Item(Item::SlotInfo) => continue,
            Framed::Item(Item::Function(code)) => {
                report.functions.push(code);
                continue;
            }
            Framed::Item(Item::Key {
                key,
                value,
                expire_at,
                idle_seconds,
                lfu_freq,
            }) => {
                if expired(expire_at) {
                    note_expired(report, db, &key);
                    continue;
                }
                let (queue, hash, key, _) = place(batches, &key, &[]);
                batches[queue].records.push(Record {
                    db,
                    hash,
                    key,
                    body: Body::Decoded(value),
                    at: item_at,
                    expire_at,
                    access: access_of(idle_seconds, lfu_freq),
                    expired: false,
                });
                queue
            }
            Framed::Key(k) => {
                let expired = expired(k.expire_at);
                if expired {
                    note_expired(report, db, k.key);
                }
                let (queue, hash, key, payload) = place(batches, k.key, k.payload);
                batches[queue].records.push(Record {
                    db,
                    hash,
                    key,
                    body: Body::Framed {
                        type_byte: k.type_byte,
                        payload,
                        payload_at: k.payload_at,
                    },
                    at: k.at,
                    expire_at: k.expire_at,
                    access: access_of(k.idle_seconds, k.lfu_freq),
                    expired,
                });
                queue
            }
        };
        if batches[queue].full() {
            send(queue, std::mem::replace(&mut batches[queue], Batch::new()));
        }
        if let Some(after_key) = options.after_key {
            after_key(reader.offset());
        }
    }
}

/// Copies `key` and `payload` into the batch of the inserting thread that owns the key's
/// shard: that thread, the key's hash, and where the key and the payload sit in its data.
fn place(
    batches: &mut [Batch],
    key: &[u8],
    payload: &[u8],
) -> (usize, u64, std::ops::Range<usize>, std::ops::Range<usize>) {
    let hash = hash_key(key);
    let queue = Keyspace::shard_of_hash(hash) % batches.len();
    let data = &mut batches[queue].data;
    let start = data.len();
    data.extend_from_slice(key);
    let key_end = data.len();
    data.extend_from_slice(payload);
    (queue, hash, start..key_end, key_end..data.len())
}

/// Sizes `db`'s tables once for the `keys` announced (spread evenly over the shards by the
/// hash) rather than doubling them over and over during the load. Capped, so that a header
/// that lies costs at most a few MB per shard; bigger loads grow.
fn reserve(keyspace: &Keyspace, db: usize, keys: u64) {
    let per_shard = (keys / SHARD_COUNT as u64 + 1).min(1 << 18) as usize;
    for i in 0..SHARD_COUNT {
        if let Some(table) = keyspace.lock_shard(i).shard_db(i, db) {
            table.reserve(per_shard + per_shard / 8);
        }
    }
}

/// Whether an error means the data ended early (a truncated file).
pub fn is_truncation(e: &LoadError) -> bool {
    matches!(
        e,
        LoadError::Format(RdbError {
            kind: RdbErrorKind::Truncated,
            ..
        })
    )
}
