//! The dataset as commands: the AOF-format base a rewrite writes with
//! `aof-use-rdb-preamble no`. Each shard is serialized on first touch, like an RDB
//! snapshot ([`CommandsBase`] is a `ShardDumper`), each database's keys after a SELECT.
//! Collections go out in batches of 64 items per command, like Valkey's
//! `AOF_REWRITE_ITEMS_PER_CMD`; TTLs as PEXPIREAT, hash fields with a TTL as HSETEX PXAT. Keys
//! already expired are left out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use ferrokv_persist::SnapshotSink;
use ferrokv_store::{Keyspace, NO_EXPIRE, SHARD_COUNT, Shard, ShardDumper, Value};
use parking_lot::Mutex;

use crate::propagate::encode;

const ITEMS_PER_COMMAND: usize = 64;

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

/// Appends every live key of `shard` as commands.
pub fn shard_as_commands(shard: &Shard, out: &mut Vec<u8>, now: i64) -> u64 {
    let mut keys = 0;
    for db in shard.dbs.iter() {
        if db.is_empty() {
            continue;
        }
        let mut wrote_select = false;
        db.for_each(|key, entry| {
            if entry.expire_at != NO_EXPIRE && entry.expire_at <= now {
                return;
            }
            if !wrote_select {
                encode(
                    out,
                    &[
                        Bytes::from_static(b"SELECT"),
                        b(db.index().to_string().as_bytes()),
                    ],
                );
                wrote_select = true;
            }
            write_value(out, key, &entry.value, now);
            keys += 1;
            if entry.expire_at != NO_EXPIRE {
                encode(
                    out,
                    &[
                        Bytes::from_static(b"PEXPIREAT"),
                        b(key),
                        b(entry.expire_at.to_string().as_bytes()),
                    ],
                );
            }
        });
    }
    keys
}

struct Output {
    sink: Option<Box<dyn SnapshotSink>>,
    bytes: u64,
    error: Option<String>,
}

/// A point-in-time AOF-format base being written (the command-form twin of
/// `ferrokv_persist::Snapshot`).
pub struct CommandsBase {
    output: Mutex<Output>,
    aborted: AtomicBool,
    keys_done: AtomicU64,
    key_save_delay_us: i64,
}

impl CommandsBase {
    /// Starts the base, which opens with `header`: `at_instant` runs with every shard
    /// locked, then every shard is pending until dumped.
    pub fn start(
        keyspace: &Keyspace,
        mut sink: Box<dyn SnapshotSink>,
        header: &[u8],
        key_save_delay_us: i64,
        at_instant: impl FnOnce() -> Result<(), String>,
    ) -> Result<Arc<CommandsBase>, String> {
        if !header.is_empty()
            && let Err(e) = sink.write_all(header)
        {
            sink.discard();
            return Err(format!("Can't write the AOF base: {e}"));
        }
        let base = Arc::new(CommandsBase {
            output: Mutex::new(Output {
                sink: Some(sink),
                bytes: header.len() as u64,
                error: None,
            }),
            aborted: AtomicBool::new(false),
            keys_done: AtomicU64::new(0),
            key_save_delay_us,
        });
        if let Err(e) = keyspace.begin_snapshot(base.clone(), |_| at_instant()) {
            base.aborted.store(true, Relaxed);
            if let Some(sink) = base.output.lock().sink.take() {
                sink.discard();
            }
            return Err(e);
        }
        Ok(base)
    }

    /// Dumps every shard nobody touched yet and commits the file; returns its size.
    pub fn run(&self, keyspace: &Keyspace) -> Result<u64, String> {
        for index in 0..SHARD_COUNT {
            if self.aborted.load(Relaxed) {
                break;
            }
            let before = self.keys_done.load(Relaxed);
            keyspace.dump_shard_now(index);
            if self.key_save_delay_us > 0 {
                let keys = self.keys_done.load(Relaxed).saturating_sub(before);
                std::thread::sleep(Duration::from_micros(
                    keys.saturating_mul(self.key_save_delay_us as u64),
                ));
            }
        }
        keyspace.end_snapshot(self);
        let mut out = self.output.lock();
        let Some(sink) = out.sink.take() else {
            return Err("rewrite already finished".into());
        };
        if let Some(error) = out.error.clone() {
            sink.discard();
            return Err(error);
        }
        if self.aborted.load(Relaxed) {
            sink.discard();
            return Err("rewrite aborted".into());
        }
        sink.commit().map_err(|e| e.to_string())?;
        Ok(out.bytes)
    }

    pub fn abort(&self, keyspace: &Keyspace) {
        self.aborted.store(true, Relaxed);
        keyspace.end_snapshot(self);
    }
}

impl ShardDumper for CommandsBase {
    fn dump_shard(&self, _index: usize, shard: &mut Shard) {
        if self.aborted.load(Relaxed) || self.output.lock().error.is_some() {
            return;
        }
        let mut buf = Vec::new();
        let keys = shard_as_commands(shard, &mut buf, ferrokv_store::clock::now_ms());
        let mut out = self.output.lock();
        if out.error.is_some() {
            return;
        }
        let written = match out.sink.as_mut() {
            Some(sink) => sink.write_all(&buf),
            None => return,
        };
        match written {
            Ok(()) => out.bytes += buf.len() as u64,
            Err(e) => out.error = Some(e.to_string()),
        }
        drop(out);
        self.keys_done.fetch_add(keys, Relaxed);
    }
}

fn batched(out: &mut Vec<u8>, command: &'static [u8], key: &[u8], items: Vec<Bytes>, per: usize) {
    for chunk in items.chunks(ITEMS_PER_COMMAND * per) {
        let mut args = Vec::with_capacity(chunk.len() + 2);
        args.push(Bytes::from_static(command));
        args.push(b(key));
        args.extend(chunk.iter().cloned());
        encode(out, &args);
    }
}

fn write_value(out: &mut Vec<u8>, key: &[u8], value: &Value, now: i64) {
    match value {
        Value::Str(s) => encode(out, &[Bytes::from_static(b"SET"), b(key), b(&s.to_bytes())]),
        Value::List(list) => {
            let items = list.to_vecs().into_iter().map(Bytes::from).collect();
            batched(out, b"RPUSH", key, items, 1);
        }
        Value::Set(set) => {
            let items = set.iter().map(|m| Bytes::from(m.to_vec())).collect();
            batched(out, b"SADD", key, items, 1);
        }
        Value::ZSet(z) => {
            let mut items = Vec::with_capacity(z.len() * 2);
            for (member, score) in z.iter() {
                items.push(b(format_score(score).as_bytes()));
                items.push(b(member));
            }
            batched(out, b"ZADD", key, items, 2);
        }
        Value::Hash(h) => {
            // As Valkey writes them: each field with a TTL as its own `HSETEX key PXAT ms
            // FIELDS 1 field value`, then the others in HMSET batches.
            let mut items = Vec::with_capacity(h.len() * 2);
            h.for_each_live(now, |field, value| match h.get_with_expiry(field, now) {
                Some((_, at)) if at != NO_EXPIRE => encode(
                    out,
                    &[
                        Bytes::from_static(b"HSETEX"),
                        b(key),
                        Bytes::from_static(b"PXAT"),
                        b(at.to_string().as_bytes()),
                        Bytes::from_static(b"FIELDS"),
                        Bytes::from_static(b"1"),
                        b(field),
                        b(value),
                    ],
                ),
                _ => {
                    items.push(b(field));
                    items.push(b(value));
                }
            });
            batched(out, b"HMSET", key, items, 2);
        }
        Value::Stream(stream) => {
            use ferrokv_store::types::stream::StreamId;
            for entry in stream.range(StreamId::ZERO, StreamId::MAX, false) {
                let mut args = vec![
                    Bytes::from_static(b"XADD"),
                    b(key),
                    Bytes::from(entry.id().to_bytes()),
                ];
                for (field, value) in entry.fields() {
                    args.push(b(field));
                    args.push(b(value));
                }
                encode(out, &args);
            }
            // An empty stream still exists: XADD with MAXLEN 0 makes the key without an
            // entry (as Valkey's rewrite does), then XSETID restores its last ID, counters and
            // deletion mark whatever the stream holds.
            if stream.is_empty() {
                encode(
                    out,
                    &[
                        Bytes::from_static(b"XADD"),
                        b(key),
                        Bytes::from_static(b"MAXLEN"),
                        Bytes::from_static(b"0"),
                        Bytes::from_static(b"0-1"),
                        Bytes::from_static(b"x"),
                        Bytes::from_static(b"y"),
                    ],
                );
            }
            encode(
                out,
                &[
                    Bytes::from_static(b"XSETID"),
                    b(key),
                    Bytes::from(stream.last_id.to_bytes()),
                    Bytes::from_static(b"ENTRIESADDED"),
                    b(stream.entries_added.to_string().as_bytes()),
                    Bytes::from_static(b"MAXDELETEDID"),
                    Bytes::from(stream.max_deleted_id.to_bytes()),
                ],
            );
            for (name, group) in &stream.groups {
                encode(
                    out,
                    &[
                        Bytes::from_static(b"XGROUP"),
                        Bytes::from_static(b"CREATE"),
                        b(key),
                        b(name),
                        Bytes::from(group.last_id.to_bytes()),
                        Bytes::from_static(b"ENTRIESREAD"),
                        b(group.entries_read.to_string().as_bytes()),
                    ],
                );
                // Each consumer's pending entries come back through XCLAIM .. JUSTID FORCE
                // with their delivery time and count, as Valkey's rewrite writes them; a
                // consumer with nothing pending through CREATECONSUMER.
                for (consumer, state) in &group.consumers {
                    if state.pending.is_empty() {
                        encode(
                            out,
                            &[
                                Bytes::from_static(b"XGROUP"),
                                Bytes::from_static(b"CREATECONSUMER"),
                                b(key),
                                b(name),
                                b(consumer),
                            ],
                        );
                        continue;
                    }
                    for id in &state.pending {
                        let Some(entry) = group.pending.get(id) else {
                            continue;
                        };
                        encode(
                            out,
                            &[
                                Bytes::from_static(b"XCLAIM"),
                                b(key),
                                b(name),
                                b(consumer),
                                Bytes::from_static(b"0"),
                                Bytes::from(id.to_bytes()),
                                Bytes::from_static(b"TIME"),
                                b(entry.delivery_time.to_string().as_bytes()),
                                Bytes::from_static(b"RETRYCOUNT"),
                                b(entry.delivery_count.to_string().as_bytes()),
                                Bytes::from_static(b"JUSTID"),
                                Bytes::from_static(b"FORCE"),
                            ],
                        );
                    }
                }
            }
        }
    }
}

/// A score that ZADD parses back to the same double (shortest round-trip form).
fn format_score(score: f64) -> String {
    if score.is_infinite() {
        return if score > 0.0 { "inf" } else { "-inf" }.into();
    }
    format!("{score:?}")
}
