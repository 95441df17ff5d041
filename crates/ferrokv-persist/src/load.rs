//! Loading a snapshot file into the keyspace (at start-up, DEBUG RELOAD).
//!
//! Keys already expired are dropped (as a primary does), access stamps are restored from
//! the stored idle time or LFU counter, and function libraries are handed back to the
//! caller, which owns the scripting engine. Any error names the byte offset where the bad
//! data starts; the caller refuses to start rather than run with part of the data.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use ferrokv_rdb::RdbError;
use ferrokv_rdb::error::RdbErrorKind;
use ferrokv_rdb::file::{FileReader, Item};
use ferrokv_rdb::format::Dialect;
use ferrokv_store::access::AccessPolicy;
use ferrokv_store::keyspace::SHARD_COUNT;
use ferrokv_store::{Entry, Keyspace, NO_EXPIRE, StrValue, Value};

#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub databases: usize,
    pub policy: AccessPolicy,
    /// Keys expiring at or before this instant are not loaded.
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub dialect: Dialect,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Function libraries' code, in file order.
    pub functions: Vec<Vec<u8>>,
    pub bytes: u64,
}

impl LoadReport {
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
    load_from(BufReader::with_capacity(1 << 20, file), keyspace, options).map(Some)
}

/// Keys handed to an inserting thread at a time.
const BATCH: usize = 512;
/// Batches queued per inserting thread: bounds the memory in flight when decoding runs ahead.
const QUEUED_BATCHES: usize = 4;

/// A decoded key on its way into the keyspace.
struct Pending {
    db: usize,
    key: Vec<u8>,
    entry: Entry,
    offset: u64,
}

/// Loads a snapshot from any reader (a file, later a primary's stream).
///
/// This thread reads and decodes; inserting threads (one per core, up to 8) put the keys into
/// the keyspace, each owning a fixed set of shards, so they never wait on each other's locks.
/// Inserting is half of a load's time (a lookup for duplicates, the node allocation), and on
/// a multi-core machine it overlaps with decoding.
pub fn load_from<R: Read>(
    reader: R,
    keyspace: &Keyspace,
    options: LoadOptions,
) -> Result<LoadReport, LoadError> {
    let inserters = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(inserters);
        let mut workers = Vec::with_capacity(inserters);
        for _ in 0..inserters {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Pending>>(QUEUED_BATCHES);
            queues.push(tx);
            workers.push(scope.spawn(move || insert_batches(keyspace, rx)));
        }
        let decoded = decode_into(reader, keyspace, options, &queues);
        drop(queues);
        let mut first_duplicate: Option<LoadError> = None;
        for worker in workers {
            let found = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if let Some(e) = found {
                let earlier = match (&first_duplicate, &e) {
                    (Some(a), b) => b.offset() < a.offset(),
                    (None, _) => true,
                };
                if earlier {
                    first_duplicate = Some(e);
                }
            }
        }
        let report = decoded?;
        match first_duplicate {
            Some(e) => Err(e),
            None => Ok(report),
        }
    })
}

/// Inserts what arrives on `batches`; the first duplicate key is the error (the rest of the
/// queue is drained so the decoder never blocks on a thread that stopped).
fn insert_batches(
    keyspace: &Keyspace,
    batches: std::sync::mpsc::Receiver<Vec<Pending>>,
) -> Option<LoadError> {
    let mut failed = None;
    for batch in batches {
        if failed.is_some() {
            continue;
        }
        for p in batch {
            let replaced = keyspace
                .lock(&[&p.key])
                .db(p.db, &p.key)
                .insert(&p.key, p.entry);
            if replaced.is_some() {
                failed = Some(LoadError::DuplicateKey {
                    offset: p.offset,
                    key: p.key,
                });
                break;
            }
        }
    }
    failed
}

/// Reads and decodes every item, sending keys to the inserter that owns their shard.
fn decode_into<R: Read>(
    reader: R,
    keyspace: &Keyspace,
    options: LoadOptions,
    queues: &[std::sync::mpsc::SyncSender<Vec<Pending>>],
) -> Result<LoadReport, LoadError> {
    let mut reader = FileReader::new(reader).map_err(LoadError::Format)?;
    let mut report = LoadReport {
        dialect: reader.dialect,
        keys_loaded: 0,
        keys_expired: 0,
        aux: Vec::new(),
        functions: Vec::new(),
        bytes: 0,
    };
    let mut batches: Vec<Vec<Pending>> = queues.iter().map(|_| Vec::with_capacity(BATCH)).collect();
    let send = |queue: usize, batch: Vec<Pending>| {
        // A closed queue means its inserter panicked; join reports that.
        let _ = queues[queue].send(batch);
    };
    let mut db = 0usize;
    loop {
        let at = reader.offset();
        match reader.next_item().map_err(LoadError::Format)? {
            Item::Eof => break,
            Item::Aux { key, value } => report.aux.push((key, value)),
            Item::SelectDb(n) => {
                if n >= options.databases {
                    return Err(LoadError::TooManyDatabases {
                        selected: n,
                        configured: options.databases,
                    });
                }
                db = n;
            }
            Item::ResizeDb { keys, .. } => {
                // Sized once for what is coming (spread evenly over the shards by the hash)
                // rather than doubled over and over during the load. Capped, so that a
                // header that lies costs at most a few MB per shard; bigger loads grow.
                let per_shard = (keys / SHARD_COUNT as u64 + 1).min(1 << 18) as usize;
                for i in 0..SHARD_COUNT {
                    if let Some(table) = keyspace.lock_shard(i).shard_db(i, db) {
                        table.reserve(per_shard + per_shard / 8);
                    }
                }
            }
            Item::SlotInfo => {}
            Item::Function(code) => report.functions.push(code),
            Item::Key {
                key,
                value,
                expire_at,
                idle_seconds,
                lfu_freq,
            } => {
                if expire_at != NO_EXPIRE && expire_at <= options.now_ms {
                    report.keys_expired += 1;
                    continue;
                }
                let value = match value {
                    // Shaped as SET would store it under this key (int, embstr or raw).
                    Value::Str(s) => Value::Str(StrValue::for_key(
                        &s.to_bytes(),
                        key.len(),
                        expire_at != NO_EXPIRE,
                    )),
                    other => other,
                };
                let mut entry = Entry::new(value, options.policy.restored(idle_seconds, lfu_freq));
                entry.expire_at = expire_at;
                let queue = Keyspace::shard_of(&key) % queues.len();
                batches[queue].push(Pending {
                    db,
                    key,
                    entry,
                    offset: at,
                });
                if batches[queue].len() >= BATCH {
                    send(
                        queue,
                        std::mem::replace(&mut batches[queue], Vec::with_capacity(BATCH)),
                    );
                }
                report.keys_loaded += 1;
            }
        }
    }
    for (queue, batch) in batches.into_iter().enumerate() {
        if !batch.is_empty() {
            send(queue, batch);
        }
    }
    report.bytes = reader.offset();
    Ok(report)
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
