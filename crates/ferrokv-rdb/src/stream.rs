//! Streams: the nodes, the counters and the consumer groups, in the three layouts RDB has
//! had for them.
//!
//! ```text
//! node-count { node-key(16-byte string) listpack(string) }*
//! length last-id.ms last-id.seq
//! [19+] first-id.ms first-id.seq max-deleted.ms max-deleted.seq entries-added
//! group-count {
//!     name last-id.ms last-id.seq [19+] entries-read
//!     pel-count { id(16 raw bytes) delivery-time(8 bytes LE ms) delivery-count }*
//!     consumer-count {
//!         name seen-time(8 bytes LE) [21] active-time(8 bytes LE)
//!         pel-count { id(16 raw bytes) }*
//!     }*
//! }*
//! ```
//!
//! Numbers are RDB lengths. Type 15 (Redis 5, 6) lacks the counters Redis 7.0 added; they
//! are rebuilt as Valkey rebuilds them. Redis 7.0 writes and reads up to type 19; type 21
//! (Redis 7.2, Valkey) adds the consumers' active time. Nodes are converted in
//! [`crate::stream_node`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use ferrokv_store::types::stream::{
    Consumer, ConsumerGroup, ConsumerName, PendingEntry, Stream, StreamId, UNKNOWN_ENTRIES_READ,
};

use crate::decode::Decoder;
use crate::encode::Encoder;
use crate::error::{RdbError, RdbResult};
use crate::format::kind;
use crate::stream_node::{id_from_key, id_key, listpack_to_node, node_to_listpack};
use crate::value::Target;

/// The type byte a stream is written with for `target`.
pub fn type_byte(target: Target) -> u8 {
    match target {
        Target::Rdb10 => kind::STREAM_LISTPACKS_2,
        Target::Valkey80 => kind::STREAM_LISTPACKS_3,
    }
}

fn write_id(e: &mut Encoder, id: StreamId) {
    e.length(id.ms);
    e.length(id.seq);
}

/// Writes a stream's payload in the layout of [`type_byte`]`(target)`.
pub fn write_stream(e: &mut Encoder, s: &Stream, target: Target) {
    let with_active_time = type_byte(target) >= kind::STREAM_LISTPACKS_3;
    e.length(s.node_count() as u64);
    for node in s.nodes() {
        e.string(&id_key(node.first_id()));
        e.string(&node_to_listpack(node));
    }
    e.length(s.len());
    write_id(e, s.last_id);
    write_id(e, s.first_id);
    write_id(e, s.max_deleted_id);
    e.length(s.entries_added);
    e.length(s.groups.len() as u64);
    for (name, group) in &s.groups {
        e.string(name);
        write_id(e, group.last_id);
        // -1 (unknown) is stored as the largest 64-bit length, as Valkey's cast does.
        e.length(group.entries_read as u64);
        e.length(group.pending.len() as u64);
        for (id, pending) in &group.pending {
            e.bytes(&id_key(*id));
            e.i64_le(pending.delivery_time);
            e.length(pending.delivery_count);
        }
        e.length(group.consumers.len() as u64);
        for (name, consumer) in &group.consumers {
            e.string(name);
            e.i64_le(consumer.seen_time);
            if with_active_time {
                e.i64_le(consumer.active_time);
            }
            e.length(consumer.pending.len() as u64);
            for id in &consumer.pending {
                e.bytes(&id_key(*id));
            }
        }
    }
}

fn read_id<R: Read>(d: &mut Decoder<R>) -> RdbResult<StreamId> {
    Ok(StreamId::new(d.length()?, d.length()?))
}

fn read_raw_id<R: Read>(d: &mut Decoder<R>) -> RdbResult<StreamId> {
    let mut key = [0u8; 16];
    d.exact(&mut key)?;
    id_from_key(&key).ok_or_else(|| d.corrupt("stream ID"))
}

/// Reads a stream stored with `type_byte` (15, 19 or 21), checking it as Valkey's deep
/// sanitization does: entry IDs increase within and across nodes, the counts agree, every
/// pending entry of a consumer is in its group's PEL and belongs to one consumer only, and
/// no group or consumer name repeats.
pub fn read_stream<R: Read>(d: &mut Decoder<R>, type_byte: u8) -> RdbResult<Stream> {
    let mut s = Stream::new();
    let node_count = d.length()?;
    let mut last_entry: Option<StreamId> = None;
    for _ in 0..node_count {
        let at = d.offset();
        let key = d.string()?;
        let master =
            id_from_key(&key).ok_or_else(|| RdbError::corrupt(at, "stream node key size"))?;
        if last_entry.is_some_and(|last| master <= last) {
            return Err(RdbError::corrupt(at, "stream nodes out of order"));
        }
        let at = d.offset();
        let blob = d.string()?;
        let node = listpack_to_node(master, &blob).map_err(|what| RdbError::corrupt(at, what))?;
        last_entry = Some(node.last_id());
        // Valkey frees a node when its last live entry goes, so none is all tombstones; one
        // from elsewhere holds nothing to keep.
        if node.live() > 0 {
            s.push_loaded_node(node);
        }
    }

    let at = d.offset();
    let length = d.length()?;
    if length != s.len() {
        return Err(RdbError::corrupt(
            at,
            "stream length differs from its entries",
        ));
    }
    let at = d.offset();
    s.last_id = read_id(d)?;
    if last_entry.is_some_and(|last| s.last_id < last) {
        return Err(RdbError::corrupt(at, "stream last ID below an entry"));
    }
    let at = d.offset();
    if type_byte >= kind::STREAM_LISTPACKS_2 {
        s.first_id = read_id(d)?;
        s.max_deleted_id = read_id(d)?;
        s.entries_added = d.length()?;
    } else {
        // What Valkey derives for files from before these counters existed: the first live
        // ID (the largest ID when there is none), no deletion known, every entry added once.
        s.first_id = s.first_entry().map_or(StreamId::MAX, |e| e.id());
        s.max_deleted_id = StreamId::ZERO;
        s.entries_added = s.len();
    }
    if s.entries_added < s.len() || s.entries_added > i64::MAX as u64 {
        return Err(RdbError::corrupt(
            at,
            "stream entries-added below its length",
        ));
    }

    let group_count = d.length()?;
    for _ in 0..group_count {
        let at = d.offset();
        let name = d.string()?;
        if s.groups.contains_key(&name[..]) {
            return Err(RdbError::corrupt(at, "duplicate consumer group"));
        }
        let group = read_group(d, &s, type_byte)?;
        s.groups.insert(name.into_boxed_slice(), group);
    }
    Ok(s)
}

/// A pending entry read from the group's PEL, before its consumer is known.
struct UnownedEntry {
    delivery_time: i64,
    delivery_count: u64,
    consumer: Option<ConsumerName>,
}

fn read_group<R: Read>(d: &mut Decoder<R>, s: &Stream, type_byte: u8) -> RdbResult<ConsumerGroup> {
    let last_id = read_id(d)?;
    let entries_read = if type_byte >= kind::STREAM_LISTPACKS_2 {
        let at = d.offset();
        let raw = d.length()? as i64;
        if raw < UNKNOWN_ENTRIES_READ {
            return Err(RdbError::corrupt(at, "consumer group entries-read"));
        }
        raw
    } else {
        s.entries_read_at(last_id)
            .map_or(UNKNOWN_ENTRIES_READ, |n| n as i64)
    };
    let mut group = ConsumerGroup::new(last_id, entries_read);

    let mut pel: BTreeMap<StreamId, UnownedEntry> = BTreeMap::new();
    let pel_len = d.length()?;
    for _ in 0..pel_len {
        let at = d.offset();
        let id = read_raw_id(d)?;
        let entry = UnownedEntry {
            delivery_time: d.i64_le()?,
            delivery_count: d.length()?,
            consumer: None,
        };
        if pel.insert(id, entry).is_some() {
            return Err(RdbError::corrupt(at, "duplicate entry in a group PEL"));
        }
    }

    let consumer_count = d.length()?;
    for _ in 0..consumer_count {
        let at = d.offset();
        let name: ConsumerName = d.string()?.into();
        if group.consumers.contains_key(&name) {
            return Err(RdbError::corrupt(at, "duplicate consumer"));
        }
        let seen_time = d.i64_le()?;
        let active_time = if type_byte >= kind::STREAM_LISTPACKS_3 {
            d.i64_le()?
        } else {
            // Valkey's estimate for files that did not record it.
            seen_time
        };
        let mut pending = BTreeSet::new();
        let owned = d.length()?;
        for _ in 0..owned {
            let at = d.offset();
            let id = read_raw_id(d)?;
            let entry = pel.get_mut(&id).ok_or_else(|| {
                RdbError::corrupt(at, "consumer PEL entry missing from the group PEL")
            })?;
            if entry.consumer.is_some() {
                return Err(RdbError::corrupt(at, "PEL entry owned twice"));
            }
            entry.consumer = Some(name.clone());
            pending.insert(id);
        }
        group.consumers.insert(
            name,
            Consumer {
                seen_time,
                active_time,
                pending,
            },
        );
    }

    let at = d.offset();
    for (id, entry) in pel {
        let consumer = entry
            .consumer
            .ok_or_else(|| RdbError::corrupt(at, "group PEL entry without a consumer"))?;
        group.pending.insert(
            id,
            PendingEntry {
                delivery_time: entry.delivery_time,
                delivery_count: entry.delivery_count,
                consumer,
            },
        );
    }
    Ok(group)
}

#[cfg(test)]
mod tests;
