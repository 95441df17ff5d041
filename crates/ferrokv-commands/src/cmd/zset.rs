//! Sorted set commands.
//!
//! The value type and its two encodings live in `ferrokv_store::types::zset`; this family
//! parses arguments, applies Valkey's option rules and shapes the replies. Submodules:
//! `add` (ZADD, ZINCRBY), `range` (range parsing and every command that reads or removes a
//! range), `setops` (ZUNION/ZINTER/ZDIFF and their STORE forms, ZINTERCARD), `pop`
//! (ZPOPMIN/ZPOPMAX/ZMPOP, and [`pop::pop`] for the blocking commands), `misc` (ZSCAN,
//! ZRANDMEMBER and the single-member reads), `blocked` (BZPOPMIN/BZPOPMAX/BZMPOP).
//!
//! Every command that creates or fills a sorted set signals its key ready and serves the
//! clients blocked on it before releasing its locks ([`serve_blocked`]), as list pushes do.

pub(crate) mod add;
mod blocked;
mod misc;
pub mod pop;
mod range;
mod setops;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::types::zset::{ZSet, ZSetLimits};
use ferrokv_store::{Locked, Value};

use crate::blocking;
use crate::context::{CmdError, Ctx, errors};
use crate::spec::{
    BeginSearch, CommandSpec, FindKeys, KeySpec, category as cat, flag, key_flag as kf,
};

const W: u64 = flag::WRITE;
const RO: u64 = flag::READONLY;
const OOM: u64 = flag::DENYOOM;
const FAST: u64 = flag::FAST;
const ZS: u64 = cat::SORTEDSET;
const BLOCK: u64 = flag::BLOCKING;

const RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kf::RO | kf::ACCESS)];
const RW_DELETE: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::DELETE)];
const RW_ACCESS_DELETE: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE)];

/// Keys counted by a `numkeys` argument at index 1.
const fn numkeys_at_1(flags: u32) -> KeySpec {
    KeySpec {
        flags,
        begin: BeginSearch::Index(1),
        find: FindKeys::KeyNum {
            key_num_idx: 0,
            first_key: 1,
            step: 1,
        },
    }
}

/// A destination at index 1, then keys counted by a `numkeys` argument at index 2.
const STORE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kf::OW | kf::UPDATE),
    KeySpec {
        flags: kf::RO | kf::ACCESS,
        begin: BeginSearch::Index(2),
        find: FindKeys::KeyNum {
            key_num_idx: 0,
            first_key: 1,
            step: 1,
        },
    },
];
/// Every argument but the last (the timeout) is a key.
const BLOCKING_POP_KEYS: &[KeySpec] = &[KeySpec {
    flags: kf::RW | kf::ACCESS | kf::DELETE,
    begin: BeginSearch::Index(1),
    find: FindKeys::Range {
        last_key: -2,
        step: 1,
        limit: 0,
    },
}];
/// Keys counted by a `numkeys` argument at index 2 (after the timeout).
const BZMPOP_KEYS: &[KeySpec] = &[KeySpec {
    flags: kf::RW | kf::ACCESS | kf::DELETE,
    begin: BeginSearch::Index(2),
    find: FindKeys::KeyNum {
        key_num_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const NUMKEYS_READ: &[KeySpec] = &[numkeys_at_1(kf::RO | kf::ACCESS)];

const RANGE_COMPLEXITY: &str = "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).";
const REMRANGE_COMPLEXITY: &str = "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.";
const POP_COMPLEXITY: &str = "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.";
const UNION_COMPLEXITY: &str = "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.";
const INTER_COMPLEXITY: &str = "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.";
const DIFF_COMPLEXITY: &str = "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.";

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, "sorted_set")
        .flags(W | OOM | FAST)
        .categories(ZS)
        .keys(&[KeySpec::single(1, kf::RW | kf::UPDATE)])
        .doc(
            "1.2.0",
            "Adds members to a sorted set or updates their scores; creates the key if needed.",
            "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        )
        .handler(add::zadd),
    CommandSpec::new("zincrby", 4, "sorted_set")
        .flags(W | OOM | FAST)
        .categories(ZS)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE)])
        .doc(
            "1.2.0",
            "Adds an increment to a member's score (absent: 0) and returns the new score.",
            "O(log(N)) where N is the number of elements in the sorted set.",
        )
        .handler(add::zincrby),
    CommandSpec::new("zrem", -3, "sorted_set")
        .flags(W | FAST)
        .categories(ZS)
        .keys(RW_DELETE)
        .doc(
            "1.2.0",
            "Removes members from a sorted set; deletes the key when it becomes empty.",
            "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
        )
        .handler(misc::zrem),
    CommandSpec::new("zcard", 2, "sorted_set")
        .flags(RO | FAST)
        .categories(ZS)
        .keys(&[KeySpec::single(1, kf::RO)])
        .doc("1.2.0", "Returns the number of members of a sorted set.", "O(1)")
        .handler(misc::zcard),
    CommandSpec::new("zcount", 4, "sorted_set")
        .flags(RO | FAST)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "2.0.0",
            "Counts the members whose score lies in a range.",
            "O(log(N)) with N being the number of elements in the sorted set.",
        )
        .handler(range::zcount),
    CommandSpec::new("zlexcount", 4, "sorted_set")
        .flags(RO | FAST)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "2.8.9",
            "Counts the members in a lexicographical range.",
            "O(log(N)) with N being the number of elements in the sorted set.",
        )
        .handler(range::zlexcount),
    CommandSpec::new("zscore", 3, "sorted_set")
        .flags(RO | FAST)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc("1.2.0", "Returns a member's score.", "O(1)")
        .handler(misc::zscore),
    CommandSpec::new("zmscore", -3, "sorted_set")
        .flags(RO | FAST)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "6.2.0",
            "Returns the scores of several members.",
            "O(N) where N is the number of members being requested.",
        )
        .handler(misc::zmscore),
    CommandSpec::new("zrank", -3, "sorted_set")
        .flags(RO | FAST)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "2.0.0",
            "Returns a member's position in ascending order, optionally with its score.",
            "O(log(N))",
        )
        .handler(misc::zrank),
    CommandSpec::new("zrevrank", -3, "sorted_set")
        .flags(RO | FAST)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "2.0.0",
            "Returns a member's position in descending order, optionally with its score.",
            "O(log(N))",
        )
        .handler(misc::zrevrank),
    CommandSpec::new("zrange", -4, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "1.2.0",
            "Returns members by rank, score or lexicographical range, either way.",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        )
        .handler(range::zrange),
    CommandSpec::new("zrangestore", -5, "sorted_set")
        .flags(W | OOM)
        .categories(ZS)
        .keys(&[
            KeySpec::single(1, kf::OW | kf::UPDATE),
            KeySpec::single(2, kf::RO | kf::ACCESS),
        ])
        .doc(
            "6.2.0",
            "Stores a range of a sorted set under another key.",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.",
        )
        .handler(range::zrangestore),
    CommandSpec::new("zrangebyscore", -4, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc("1.0.5", "Returns members in a score range, ascending.", RANGE_COMPLEXITY)
        .handler(range::zrangebyscore),
    CommandSpec::new("zrevrangebyscore", -4, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc("2.2.0", "Returns members in a score range, descending.", RANGE_COMPLEXITY)
        .handler(range::zrevrangebyscore),
    CommandSpec::new("zrangebylex", -4, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "2.8.9",
            "Returns members in a lexicographical range, ascending.",
            RANGE_COMPLEXITY,
        )
        .handler(range::zrangebylex),
    CommandSpec::new("zrevrangebylex", -4, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "2.8.9",
            "Returns members in a lexicographical range, descending.",
            RANGE_COMPLEXITY,
        )
        .handler(range::zrevrangebylex),
    CommandSpec::new("zrevrange", -4, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .doc(
            "1.2.0",
            "Returns members by rank, in descending order.",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        )
        .handler(range::zrevrange),
    CommandSpec::new("zremrangebyrank", 4, "sorted_set")
        .flags(W)
        .categories(ZS)
        .keys(RW_DELETE)
        .doc("2.0.0", "Removes the members in a rank range.", REMRANGE_COMPLEXITY)
        .handler(range::zremrangebyrank),
    CommandSpec::new("zremrangebyscore", 4, "sorted_set")
        .flags(W)
        .categories(ZS)
        .keys(RW_DELETE)
        .doc("1.2.0", "Removes the members in a score range.", REMRANGE_COMPLEXITY)
        .handler(range::zremrangebyscore),
    CommandSpec::new("zremrangebylex", 4, "sorted_set")
        .flags(W)
        .categories(ZS)
        .keys(RW_DELETE)
        .doc(
            "2.8.9",
            "Removes the members in a lexicographical range.",
            REMRANGE_COMPLEXITY,
        )
        .handler(range::zremrangebylex),
    CommandSpec::new("zpopmin", -2, "sorted_set")
        .flags(W | FAST)
        .categories(ZS)
        .keys(RW_ACCESS_DELETE)
        .doc(
            "5.0.0",
            "Removes and returns the members with the lowest scores.",
            POP_COMPLEXITY,
        )
        .handler(pop::zpopmin),
    CommandSpec::new("zpopmax", -2, "sorted_set")
        .flags(W | FAST)
        .categories(ZS)
        .keys(RW_ACCESS_DELETE)
        .doc(
            "5.0.0",
            "Removes and returns the members with the highest scores.",
            POP_COMPLEXITY,
        )
        .handler(pop::zpopmax),
    CommandSpec::new("zmpop", -4, "sorted_set")
        .flags(W)
        .categories(ZS)
        .keys(&[numkeys_at_1(kf::RW | kf::ACCESS | kf::DELETE)])
        .doc(
            "7.0.0",
            "Pops the lowest or highest members of the first non-empty sorted set among several keys.",
            "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        )
        .handler(pop::zmpop),
    CommandSpec::new("bzpopmin", -3, "sorted_set")
        .flags(W | BLOCK | FAST)
        .categories(ZS)
        .keys(BLOCKING_POP_KEYS)
        .doc(
            "5.0.0",
            "Pops the lowest-scored member of the first non-empty sorted set, waiting for one if they are all empty.",
            "O(log(N)) with N being the number of elements in the sorted set.",
        )
        .handler(bzpopmin),
    CommandSpec::new("bzpopmax", -3, "sorted_set")
        .flags(W | BLOCK | FAST)
        .categories(ZS)
        .keys(BLOCKING_POP_KEYS)
        .doc(
            "5.0.0",
            "Pops the highest-scored member of the first non-empty sorted set, waiting for one if they are all empty.",
            "O(log(N)) with N being the number of elements in the sorted set.",
        )
        .handler(bzpopmax),
    CommandSpec::new("bzmpop", -5, "sorted_set")
        .flags(W | BLOCK)
        .categories(ZS)
        .keys(BZMPOP_KEYS)
        .doc(
            "7.0.0",
            "Pops the lowest or highest members of the first non-empty sorted set among several keys, waiting if they are all empty.",
            "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        )
        .handler(blocked::bzmpop),
    CommandSpec::new("zunion", -3, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(NUMKEYS_READ)
        .doc("6.2.0", "Returns the union of sorted sets.", UNION_COMPLEXITY)
        .handler(setops::zunion),
    CommandSpec::new("zinter", -3, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(NUMKEYS_READ)
        .doc("6.2.0", "Returns the intersection of sorted sets.", INTER_COMPLEXITY)
        .handler(setops::zinter),
    CommandSpec::new("zdiff", -3, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(NUMKEYS_READ)
        .doc(
            "6.2.0",
            "Returns the members of the first sorted set that are in none of the others.",
            DIFF_COMPLEXITY,
        )
        .handler(setops::zdiff),
    CommandSpec::new("zunionstore", -4, "sorted_set")
        .flags(W | OOM)
        .categories(ZS)
        .keys(STORE_KEYS)
        .doc("2.0.0", "Stores the union of sorted sets under a key.", "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.")
        .handler(setops::zunionstore),
    CommandSpec::new("zinterstore", -4, "sorted_set")
        .flags(W | OOM)
        .categories(ZS)
        .keys(STORE_KEYS)
        .doc(
            "2.0.0",
            "Stores the intersection of sorted sets under a key.",
            INTER_COMPLEXITY,
        )
        .handler(setops::zinterstore),
    CommandSpec::new("zdiffstore", -4, "sorted_set")
        .flags(W | OOM)
        .categories(ZS)
        .keys(STORE_KEYS)
        .doc(
            "6.2.0",
            "Stores the difference of sorted sets under a key.",
            DIFF_COMPLEXITY,
        )
        .handler(setops::zdiffstore),
    CommandSpec::new("zintercard", -3, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(NUMKEYS_READ)
        .doc(
            "7.0.0",
            "Counts the members of the intersection of sorted sets, optionally up to a limit.",
            "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.",
        )
        .handler(setops::zintercard),
    CommandSpec::new("zrandmember", -2, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .tips(&["nondeterministic_output"])
        .doc(
            "6.2.0",
            "Returns random members, distinct for a positive count, possibly repeated for a negative one.",
            "O(N) where N is the number of members returned",
        )
        .handler(misc::zrandmember),
    CommandSpec::new("zscan", -3, "sorted_set")
        .flags(RO)
        .categories(ZS)
        .keys(RO_ACCESS)
        .tips(&["nondeterministic_output"])
        .doc(
            "2.8.0",
            "Iterates over the members and scores of a sorted set.",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        )
        .handler(misc::zscan),
];

/// `BZPOPMIN key [key ...] timeout`
fn bzpopmin(ctx: &mut Ctx, args: &[Bytes]) -> crate::context::CmdResult {
    blocked::bzpop(ctx, args, pop::End::Min)
}

/// `BZPOPMAX key [key ...] timeout`
fn bzpopmax(ctx: &mut Ctx, args: &[Bytes]) -> crate::context::CmdResult {
    blocked::bzpop(ctx, args, pop::End::Max)
}

// ---- helpers shared by the submodules ----

/// Signals that `key` (in the client's database) gained members and serves the clients
/// blocked on it, FIFO, before the caller releases `locked`: nobody else can take the
/// members first.
pub(crate) fn serve_blocked<'a>(ctx: &Ctx<'a>, locked: &mut Locked<'a>, key: &[u8]) {
    blocking::signal_key_added(ctx.server, ctx.db(), key);
    if blocking::pending() {
        blocking::serve_ready(ctx.server, locked, ctx.now_ms);
    }
}

/// The sorted set held by a value, or WRONGTYPE.
pub(crate) fn zset_of(value: &Value) -> Result<&ZSet, CmdError> {
    match value {
        Value::ZSet(z) => Ok(z),
        _ => Err(errors::WRONGTYPE),
    }
}

pub(crate) fn zset_of_mut(value: &mut Value) -> Result<&mut ZSet, CmdError> {
    match value {
        Value::ZSet(z) => Ok(z),
        _ => Err(errors::WRONGTYPE),
    }
}

/// The encoding limits from the client's configuration snapshot.
pub(crate) fn limits(ctx: &Ctx) -> ZSetLimits {
    let config = &ctx.client.config;
    ZSetLimits {
        max_listpack_entries: usize::try_from(config.zset_max_listpack_entries).unwrap_or(0),
        max_listpack_value: usize::try_from(config.zset_max_listpack_value).unwrap_or(0),
    }
}

/// Members, with their scores when asked: a flat array in RESP2, an array of
/// `[member, score]` pairs in RESP3.
pub(crate) fn reply_members<'a>(
    reply: &mut Reply,
    elements: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    with_scores: bool,
) {
    let resp3 = reply.is_resp3();
    match (with_scores, resp3) {
        (false, _) => reply.array_len(elements.len()),
        (true, true) => reply.array_len(elements.len()),
        (true, false) => reply.array_len(elements.len() * 2),
    }
    for (member, score) in elements {
        if with_scores && resp3 {
            reply.array_len(2);
        }
        reply.bulk(member);
        if with_scores {
            reply.double(score);
        }
    }
}

/// Stores `result` (ascending, distinct members) under `key`, replacing whatever was there
/// (without a TTL), or deletes `key` when `result` is empty. Replies with the result's size.
pub(crate) fn store_result<'a>(
    ctx: &mut Ctx<'a>,
    locked: &mut Locked<'a>,
    key: &[u8],
    result: Vec<(Box<[u8]>, f64)>,
) {
    let db = ctx.db();
    let count = result.len();
    if count == 0 {
        if locked.db(db, key).delete(key) {
            ctx.notify(ferrokv_store::events::class::GENERIC, "del", key);
            ctx.add_dirty(1);
        }
    } else {
        let zset = ZSet::from_sorted(result, limits(ctx));
        let entry = ctx.new_entry(Value::ZSet(zset));
        locked.db(db, key).insert(key, entry);
        // The event is the command's name: zunionstore, zinterstore, zdiffstore, zrangestore.
        ctx.notify(ferrokv_store::events::class::ZSET, ctx.spec.name, key);
        ctx.add_dirty(1);
        serve_blocked(ctx, locked, key);
    }
    ctx.reply.int(count as i64);
}

/// Reports `event` (when the command changed the set), then deletes `key` if its sorted set
/// became empty (`del` after the event, as in Valkey).
pub(crate) fn delete_if_empty(
    ctx: &Ctx,
    locked: &mut Locked,
    key: &[u8],
    event: Option<&'static str>,
) {
    if let Some(event) = event {
        ctx.notify(ferrokv_store::events::class::ZSET, event, key);
    }
    let db = ctx.db();
    let empty = locked
        .db(db, key)
        .peek(key)
        .is_some_and(|e| matches!(&e.value, Value::ZSet(z) if z.is_empty()));
    if empty {
        locked.db(db, key).delete(key);
        if event.is_some() {
            ctx.notify(ferrokv_store::events::class::GENERIC, "del", key);
        }
    }
}
