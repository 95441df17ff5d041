//! The dataset as commands (an AOF-format base file), written when AOF is switched on while
//! the server runs. Collections go out in batches of 64 items per command, like Valkey's
//! `AOF_REWRITE_ITEMS_PER_CMD`; TTLs as PEXPIREAT, hash field TTLs as HPEXPIREAT.

use bytes::Bytes;
use ferrokv_store::{Locked, NO_EXPIRE, Value};

use crate::propagate::encode;
use crate::server::Server;

const ITEMS_PER_COMMAND: usize = 64;

/// The base file's bytes, and the locks still held so the caller can subscribe to the
/// stream before any other write.
pub struct Base<'a> {
    pub bytes: Vec<u8>,
    pub locked: Locked<'a>,
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

pub fn dataset_as_commands<'a>(server: &'a Server, mut locked: Locked<'a>) -> Base<'a> {
    let now = ferrokv_store::clock::now_ms();
    let mut out = Vec::new();
    let databases = server.keyspace.databases();
    for db in 0..databases {
        let mut wrote_select = false;
        for (_, shard) in locked.shards() {
            shard.dbs[db].for_each(|key, entry| {
                if entry.expire_at != NO_EXPIRE && entry.expire_at <= now {
                    return;
                }
                if !wrote_select {
                    encode(
                        &mut out,
                        &[Bytes::from_static(b"SELECT"), b(db.to_string().as_bytes())],
                    );
                    wrote_select = true;
                }
                write_value(&mut out, key, &entry.value, now);
                if entry.expire_at != NO_EXPIRE {
                    encode(
                        &mut out,
                        &[
                            Bytes::from_static(b"PEXPIREAT"),
                            b(key),
                            b(entry.expire_at.to_string().as_bytes()),
                        ],
                    );
                }
            });
        }
    }
    Base { bytes: out, locked }
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
            let mut items = Vec::with_capacity(h.len() * 2);
            let mut ttls = Vec::new();
            h.for_each_live(now, |field, value| {
                items.push(b(field));
                items.push(b(value));
                if let Some((_, at)) = h.get_with_expiry(field, now)
                    && at != NO_EXPIRE
                {
                    ttls.push((at, b(field)));
                }
            });
            batched(out, b"HMSET", key, items, 2);
            for (at, field) in ttls {
                encode(
                    out,
                    &[
                        Bytes::from_static(b"HPEXPIREAT"),
                        b(key),
                        b(at.to_string().as_bytes()),
                        Bytes::from_static(b"FIELDS"),
                        Bytes::from_static(b"1"),
                        field,
                    ],
                );
            }
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
            // An empty stream still exists; the last ID and deletion marks carry over.
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
                // TODO(aof rewrite): consumers and the pending entries list (XCLAIM ...
                // FORCE JUSTID per pending entry, as Valkey's rewrite does).
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
