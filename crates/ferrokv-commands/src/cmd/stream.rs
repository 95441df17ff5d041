//! Stream commands (X*). The type lives in `ferrokv_store::types::stream`; this family is
//! split by concern: ID arguments (`ids.rs`), appending and trimming (`write.rs`), range
//! reads (`range.rs`), XREAD/XREADGROUP with blocking (`read.rs`), consumer groups
//! (`groups.rs`) and XINFO (`info.rs`).

mod effects;
mod groups;
mod ids;
mod info;
mod range;
mod read;
mod write;

use ferrokv_config::Config;
use ferrokv_protocol::Reply;
use ferrokv_store::types::stream::{EntryRef, NodeLimits, Stream, StreamId};
use ferrokv_store::{Entry, Value};

use crate::context::{CmdError, errors};
use crate::spec::{
    BeginSearch, CommandSpec, FindKeys, KeySpec, category as cat, flag, key_flag as kf,
};

const W: u64 = flag::WRITE;
const RO: u64 = flag::READONLY;
const OOM: u64 = flag::DENYOOM;
const FAST: u64 = flag::FAST;
const STREAM: u64 = cat::STREAM;
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

const READ_KEY: &[KeySpec] = &[KeySpec::single(1, kf::RO | kf::ACCESS)];
const UPDATE_KEY: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::UPDATE)];
const DELETE_KEY: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::DELETE)];
const SUB_READ_KEY: &[KeySpec] = &[KeySpec::single(2, kf::RO | kf::ACCESS)];

const fn streams_keys(start_from: i32) -> [KeySpec; 1] {
    [KeySpec {
        flags: kf::RO | kf::ACCESS,
        begin: BeginSearch::Keyword {
            keyword: "STREAMS",
            start_from,
        },
        find: FindKeys::Range {
            last_key: -1,
            step: 1,
            limit: 2,
        },
    }]
}
const XREAD_KEYS: &[KeySpec] = &streams_keys(1);
const XREADGROUP_KEYS: &[KeySpec] = &streams_keys(4);

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, "stream")
        .flags(W | OOM | FAST)
        .categories(STREAM)
        .keys(UPDATE_KEY)
        .key_notes(&["UPDATE instead of INSERT because of the optional trimming feature"])
        .tips(NONDETERMINISTIC)
        .doc(
            "5.0.0",
            "Appends an entry to a stream, creating the stream if needed, and may trim it.",
            "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.",
        )
        .handler(write::xadd),
    CommandSpec::new("xlen", 2, "stream")
        .flags(RO | FAST)
        .categories(STREAM)
        .keys(&[KeySpec::single(1, kf::RO)])
        .doc("5.0.0", "Returns the number of entries in a stream.", "O(1)")
        .handler(write::xlen),
    CommandSpec::new("xrange", -4, "stream")
        .flags(RO)
        .categories(STREAM)
        .keys(READ_KEY)
        .doc(
            "5.0.0",
            "Returns the entries of a stream between two IDs, oldest first.",
            "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
        )
        .handler(range::xrange),
    CommandSpec::new("xrevrange", -4, "stream")
        .flags(RO)
        .categories(STREAM)
        .keys(READ_KEY)
        .doc(
            "5.0.0",
            "Returns the entries of a stream between two IDs, newest first.",
            "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
        )
        .handler(range::xrevrange),
    CommandSpec::new("xdel", -3, "stream")
        .flags(W | FAST)
        .categories(STREAM)
        .keys(DELETE_KEY)
        .doc(
            "5.0.0",
            "Deletes entries from a stream by ID; returns how many existed.",
            "O(1) for each single item to delete in the stream, regardless of the stream size.",
        )
        .handler(write::xdel),
    CommandSpec::new("xtrim", -4, "stream")
        .flags(W)
        .categories(STREAM)
        .keys(DELETE_KEY)
        .tips(NONDETERMINISTIC)
        .doc(
            "5.0.0",
            "Removes the oldest entries of a stream by length or by ID.",
            "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.",
        )
        .handler(write::xtrim),
    CommandSpec::new("xread", -4, "stream")
        .flags(RO | flag::BLOCKING)
        .categories(STREAM)
        .keys(XREAD_KEYS)
        .doc(
            "5.0.0",
            "Returns entries newer than the given IDs from one or more streams, waiting for some if asked.",
            "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data.",
        )
        .handler(read::xread),
    CommandSpec::new("xreadgroup", -7, "stream")
        .flags(W | flag::BLOCKING)
        .categories(STREAM)
        .keys(XREADGROUP_KEYS)
        .doc(
            "5.0.0",
            "Reads entries for a consumer of a group, new ones or its pending history, waiting for new ones if asked.",
            "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.",
        )
        .handler(read::xreadgroup),
    CommandSpec::new("xack", -4, "stream")
        .flags(W | FAST)
        .categories(STREAM)
        .keys(UPDATE_KEY)
        .doc(
            "5.0.0",
            "Acknowledges entries pending for a consumer group; returns how many were.",
            "O(1) for each message ID processed.",
        )
        .handler(groups::xack),
    CommandSpec::new("xpending", -3, "stream")
        .flags(RO)
        .categories(STREAM)
        .keys(READ_KEY)
        .tips(NONDETERMINISTIC)
        .doc(
            "5.0.0",
            "Summarizes or lists the entries a consumer group has delivered but not acknowledged.",
            "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.",
        )
        .handler(groups::xpending),
    CommandSpec::new("xclaim", -6, "stream")
        .flags(W | FAST)
        .categories(STREAM)
        .keys(UPDATE_KEY)
        .tips(NONDETERMINISTIC)
        .doc(
            "5.0.0",
            "Gives ownership of pending entries to another consumer of the group.",
            "O(log N) with N being the number of messages in the PEL of the consumer group.",
        )
        .handler(groups::xclaim),
    CommandSpec::new("xautoclaim", -6, "stream")
        .flags(W | FAST)
        .categories(STREAM)
        .keys(DELETE_KEY)
        .tips(NONDETERMINISTIC)
        .doc(
            "6.2.0",
            "Claims pending entries idle long enough, scanning the group's PEL like a cursor.",
            "O(1) if COUNT is small.",
        )
        .handler(groups::xautoclaim),
    CommandSpec::new("xsetid", -3, "stream")
        .flags(W | OOM | FAST)
        .categories(STREAM)
        .keys(UPDATE_KEY)
        .doc(
            "5.0.0",
            "Sets a stream's last generated ID and its bookkeeping counters.",
            "O(1)",
        )
        .handler(write::xsetid),
    CommandSpec::new("xgroup", -2, "stream")
        .doc(
            "5.0.0",
            "A container for consumer group commands.",
            "Depends on subcommand.",
        )
        .subcommands(&[
            CommandSpec::new("create", -5, "stream")
                .flags(W | OOM)
                .categories(STREAM)
                .keys(&[KeySpec::single(2, kf::RW | kf::INSERT)])
                .doc("5.0.0", "Creates a consumer group.", "O(1)")
                .handler(groups::create),
            CommandSpec::new("createconsumer", 5, "stream")
                .flags(W | OOM)
                .categories(STREAM)
                .keys(&[KeySpec::single(2, kf::RW | kf::INSERT)])
                .doc("6.2.0", "Creates a consumer in a consumer group.", "O(1)")
                .handler(groups::create_consumer),
            CommandSpec::new("delconsumer", 5, "stream")
                .flags(W)
                .categories(STREAM)
                .keys(&[KeySpec::single(2, kf::RW | kf::DELETE)])
                .doc(
                    "5.0.0",
                    "Deletes a consumer from a consumer group with its pending entries.",
                    "O(1)",
                )
                .handler(groups::del_consumer),
            CommandSpec::new("destroy", 4, "stream")
                .flags(W)
                .categories(STREAM)
                .keys(&[KeySpec::single(2, kf::RW | kf::DELETE)])
                .doc(
                    "5.0.0",
                    "Destroys a consumer group.",
                    "O(N) where N is the number of entries in the group's pending entries list (PEL).",
                )
                .handler(groups::destroy),
            CommandSpec::new("help", 2, "stream")
                .flags(flag::LOADING | flag::STALE)
                .categories(STREAM)
                .doc(
                    "5.0.0",
                    "Returns helpful text about the different subcommands.",
                    "O(1)",
                )
                .handler(groups::help),
            CommandSpec::new("setid", -5, "stream")
                .flags(W)
                .categories(STREAM)
                .keys(&[KeySpec::single(2, kf::RW | kf::UPDATE)])
                .doc(
                    "5.0.0",
                    "Sets the last delivered ID of a consumer group.",
                    "O(1)",
                )
                .handler(groups::set_id),
        ]),
    CommandSpec::new("xinfo", -2, "stream")
        .doc(
            "5.0.0",
            "A container for stream introspection commands.",
            "Depends on subcommand.",
        )
        .subcommands(&[
            CommandSpec::new("consumers", 4, "stream")
                .flags(RO)
                .categories(STREAM)
                .keys(SUB_READ_KEY)
                .tips(NONDETERMINISTIC)
                .doc("5.0.0", "Lists the consumers of a consumer group.", "O(1)")
                .handler(info::consumers),
            CommandSpec::new("groups", 3, "stream")
                .flags(RO)
                .categories(STREAM)
                .keys(SUB_READ_KEY)
                .doc("5.0.0", "Lists the consumer groups of a stream.", "O(1)")
                .handler(info::groups),
            CommandSpec::new("help", 2, "stream")
                .flags(flag::LOADING | flag::STALE)
                .categories(STREAM)
                .doc(
                    "5.0.0",
                    "Returns helpful text about the different subcommands.",
                    "O(1)",
                )
                .handler(info::help),
            CommandSpec::new("stream", -3, "stream")
                .flags(RO)
                .categories(STREAM)
                .keys(SUB_READ_KEY)
                .doc(
                    "5.0.0",
                    "Returns information about a stream.",
                    "O(1)",
                )
                .handler(info::stream),
        ]),
];

// ---- helpers shared by the family ----

fn stream_of_mut(value: &mut Value) -> Result<&mut Stream, CmdError> {
    match value {
        Value::Stream(s) => Ok(s),
        _ => Err(errors::WRONGTYPE),
    }
}

/// The stream in `entry`, if there is an entry (WRONGTYPE if it holds something else).
fn opt_stream(entry: Option<&mut Entry>) -> Result<Option<&mut Stream>, CmdError> {
    entry.map(|e| stream_of_mut(&mut e.value)).transpose()
}

fn node_limits(config: &Config) -> NodeLimits {
    NodeLimits {
        max_bytes: config.stream_node_max_bytes,
        max_entries: config.stream_node_max_entries,
    }
}

fn reply_id(reply: &mut Reply, id: StreamId) {
    reply.bulk(&id.to_bytes());
}

/// `[id, [field, value, ...]]`.
fn reply_entry(reply: &mut Reply, entry: &EntryRef<'_>) {
    reply.array_len(2);
    reply_id(reply, entry.id());
    let fields = entry.fields();
    reply.array_len(fields.len() * 2);
    for (field, value) in fields {
        reply.bulk(field);
        reply.bulk(value);
    }
}

/// Entries `start..=end` (at most `count`, 0 for all), as an array; returns how many.
fn reply_range(
    reply: &mut Reply,
    stream: &Stream,
    start: StreamId,
    end: StreamId,
    count: usize,
    rev: bool,
) -> usize {
    let limit = if count == 0 { usize::MAX } else { count };
    let entries: Vec<EntryRef<'_>> = stream.range(start, end, rev).take(limit).collect();
    reply.array_len(entries.len());
    for entry in &entries {
        reply_entry(reply, entry);
    }
    entries.len()
}

/// `NOGROUP No such key '<key>' or consumer group '<group>'<suffix>`.
fn no_such_key_or_group(key: &[u8], group: &[u8], suffix: &str) -> CmdError {
    CmdError::new(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{suffix}",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// `NOGROUP No such consumer group '<group>' for key name '<key>'`.
fn no_such_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::new(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}
