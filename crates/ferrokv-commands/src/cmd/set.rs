//! Set commands.
//!
//! Encodings and their conversions live with the value (`ferrokv_store::SetValue`); this
//! module reads the limits from the configuration and applies Valkey's reply shapes: member
//! lists are RESP3 sets (`~`) except SRANDMEMBER's and SSCAN's, which are arrays.

mod algebra;
mod random;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::events::class;
use ferrokv_store::glob::glob_match;
use ferrokv_store::types::set::Member;
use ferrokv_store::{Locked, SetLimits, SetValue, Value};

use crate::cmd::keys::parse_scan_cursor;
use crate::cmd::scan_options::{self, ScanFamily};
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{
    BeginSearch, CommandSpec, FindKeys, KeySpec, category as cat, flag, key_flag as kf,
};

const W: u64 = flag::WRITE;
const RO: u64 = flag::READONLY;
const OOM: u64 = flag::DENYOOM;
const FAST: u64 = flag::FAST;
const SET: u64 = cat::SET;

const ORDER_TIP: &[&str] = &["nondeterministic_output_order"];
const RANDOM_TIP: &[&str] = &["nondeterministic_output"];

/// Source keys from argument 1 to the end (SINTER, SUNION, SDIFF).
const SOURCES: &[KeySpec] = &[KeySpec::to_end(1, 1, kf::RO | kf::ACCESS)];
/// A destination at argument 1, then source keys (the *STORE commands).
const STORE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kf::OW | kf::UPDATE),
    KeySpec::to_end(2, 1, kf::RO | kf::ACCESS),
];
const INTER_COMPLEXITY: &str =
    "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.";
const UNION_COMPLEXITY: &str = "O(N) where N is the total number of elements in all given sets.";

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, "set")
        .flags(W | OOM | FAST)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RW | kf::INSERT)])
        .doc(
            "1.0.0",
            "Adds members to a set, creating it if needed.",
            "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        )
        .handler(sadd),
    CommandSpec::new("srem", -3, "set")
        .flags(W | FAST)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RW | kf::DELETE)])
        .doc(
            "1.0.0",
            "Removes members from a set; the key goes when its last member does.",
            "O(N) where N is the number of members to be removed.",
        )
        .handler(srem),
    CommandSpec::new("scard", 2, "set")
        .flags(RO | FAST)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RO)])
        .doc("1.0.0", "Counts the members of a set.", "O(1)")
        .handler(scard),
    CommandSpec::new("sismember", 3, "set")
        .flags(RO | FAST)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RO)])
        .doc("1.0.0", "Tells whether a value is a member of a set.", "O(1)")
        .handler(sismember),
    CommandSpec::new("smismember", -3, "set")
        .flags(RO | FAST)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc(
            "6.2.0",
            "Tells, for each of several values, whether it is a member of a set.",
            "O(N) where N is the number of elements being checked for membership",
        )
        .handler(smismember),
    CommandSpec::new("smembers", 2, "set")
        .flags(RO)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .tips(ORDER_TIP)
        .doc(
            "1.0.0",
            "Lists every member of a set.",
            "O(N) where N is the set cardinality.",
        )
        .handler(smembers),
    CommandSpec::new("srandmember", -2, "set")
        .flags(RO)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .tips(RANDOM_TIP)
        .doc(
            "1.0.0",
            "Returns random members of a set without removing them.",
            "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.",
        )
        .handler(random::srandmember),
    CommandSpec::new("spop", -2, "set")
        .flags(W | FAST)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE)])
        .tips(RANDOM_TIP)
        .doc(
            "1.0.0",
            "Removes and returns random members of a set; the key goes with its last member.",
            "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
        )
        .handler(random::spop),
    CommandSpec::new("smove", 4, "set")
        .flags(W | FAST)
        .categories(SET)
        .keys(&[
            KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE),
            KeySpec::single(2, kf::RW | kf::INSERT),
        ])
        .doc("1.0.0", "Moves a member from one set to another.", "O(1)")
        .handler(smove),
    CommandSpec::new("sinter", -2, "set")
        .flags(RO)
        .categories(SET)
        .keys(SOURCES)
        .tips(ORDER_TIP)
        .doc(
            "1.0.0",
            "Returns the members common to all the given sets.",
            INTER_COMPLEXITY,
        )
        .handler(algebra::sinter),
    CommandSpec::new("sintercard", -3, "set")
        .flags(RO)
        .categories(SET)
        .keys(&[KeySpec {
            flags: kf::RO | kf::ACCESS,
            begin: BeginSearch::Index(1),
            find: FindKeys::KeyNum {
                key_num_idx: 0,
                first_key: 1,
                step: 1,
            },
        }])
        .doc(
            "7.0.0",
            "Counts the members common to all the given sets, optionally stopping at a limit.",
            INTER_COMPLEXITY,
        )
        .handler(algebra::sintercard),
    CommandSpec::new("sinterstore", -3, "set")
        .flags(W | OOM)
        .categories(SET)
        .keys(STORE_KEYS)
        .doc(
            "1.0.0",
            "Stores the members common to all the given sets under a key.",
            INTER_COMPLEXITY,
        )
        .handler(algebra::sinterstore),
    CommandSpec::new("sunion", -2, "set")
        .flags(RO)
        .categories(SET)
        .keys(SOURCES)
        .tips(ORDER_TIP)
        .doc(
            "1.0.0",
            "Returns the members of any of the given sets.",
            UNION_COMPLEXITY,
        )
        .handler(algebra::sunion),
    CommandSpec::new("sunionstore", -3, "set")
        .flags(W | OOM)
        .categories(SET)
        .keys(STORE_KEYS)
        .doc(
            "1.0.0",
            "Stores the members of any of the given sets under a key.",
            UNION_COMPLEXITY,
        )
        .handler(algebra::sunionstore),
    CommandSpec::new("sdiff", -2, "set")
        .flags(RO)
        .categories(SET)
        .keys(SOURCES)
        .tips(ORDER_TIP)
        .doc(
            "1.0.0",
            "Returns the members of the first set that are in none of the others.",
            UNION_COMPLEXITY,
        )
        .handler(algebra::sdiff),
    CommandSpec::new("sdiffstore", -3, "set")
        .flags(W | OOM)
        .categories(SET)
        .keys(STORE_KEYS)
        .doc(
            "1.0.0",
            "Stores the members of the first set that are in none of the others under a key.",
            UNION_COMPLEXITY,
        )
        .handler(algebra::sdiffstore),
    CommandSpec::new("sscan", -3, "set")
        .flags(RO)
        .categories(SET)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .tips(RANDOM_TIP)
        .doc(
            "2.8.0",
            "Iterates over the members of a set with a cursor.",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        )
        .handler(sscan),
];

// ---- helpers shared by the set commands ----

/// The encoding limits from the client's configuration snapshot.
fn limits(ctx: &Ctx) -> SetLimits {
    let config = &ctx.client.config;
    let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    SetLimits {
        intset_entries: size(config.set_max_intset_entries),
        listpack_entries: size(config.set_max_listpack_entries),
        listpack_value: size(config.set_max_listpack_value),
    }
}

/// The set held by a value, or WRONGTYPE.
fn set_of(value: &Value) -> Result<&SetValue, CmdError> {
    match value {
        Value::Set(s) => Ok(s),
        _ => Err(errors::WRONGTYPE),
    }
}

fn set_of_mut(value: &mut Value) -> Result<&mut SetValue, CmdError> {
    match value {
        Value::Set(s) => Ok(s),
        _ => Err(errors::WRONGTYPE),
    }
}

fn reply_member(reply: &mut Reply, member: Member<'_>) {
    match member {
        Member::Int(n) => reply.bulk_int(n),
        Member::Bytes(b) => reply.bulk(b),
    }
}

/// Replies with the members of `set` as a set (an array in RESP2).
fn reply_set(reply: &mut Reply, set: &SetValue) {
    reply.set_len(set.len());
    for member in set.iter() {
        reply_member(reply, member);
    }
}

/// Stores `set` under `key`, replacing any value and TTL, or deletes `key` if `set` is empty
/// (the *STORE commands); replies with the set's size.
fn store_result(ctx: &mut Ctx, locked: &mut Locked<'_>, key: &[u8], set: SetValue) {
    let db = ctx.db();
    let len = set.len();
    if set.is_empty() {
        if locked.db(db, key).delete(key) {
            ctx.notify(class::GENERIC, "del", key);
            ctx.add_dirty(1);
        }
    } else {
        let entry = ctx.new_entry(Value::Set(set));
        locked.db(db, key).insert(key, entry);
        // The event is the command's name: sinterstore, sunionstore, sdiffstore.
        ctx.notify(class::SET, ctx.spec.name, key);
        ctx.add_dirty(1);
    }
    ctx.reply.int(len as i64);
}

// ---- commands ----

/// `SADD key member [member ...]`
fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, members) = (&args[1], &args[2..]);
    let limits = limits(ctx);
    let mut locked = ctx.lock(&[key]);
    let added = match ctx.write(&mut locked, key) {
        Some(entry) => {
            let set = set_of_mut(&mut entry.value)?;
            set.convert_for_count(members.len(), &limits);
            members.iter().filter(|m| set.add(m, &limits)).count()
        }
        None => {
            let mut set = SetValue::create(&members[0], members.len(), &limits);
            let added = members.iter().filter(|m| set.add(m, &limits)).count();
            let entry = ctx.new_entry(Value::Set(set));
            locked.db(ctx.db(), key).insert(key, entry);
            added
        }
    };
    drop(locked);
    if added > 0 {
        ctx.notify(class::SET, "sadd", key);
    }
    ctx.add_dirty(added as u64);
    ctx.reply.int(added as i64);
    Ok(())
}

/// `SREM key member [member ...]`
fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, members) = (&args[1], &args[2..]);
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let set = set_of_mut(&mut entry.value)?;
    let removed = members.iter().filter(|m| set.remove(m)).count();
    let emptied = set.is_empty();
    if emptied {
        locked.db(ctx.db(), key).delete(key);
    }
    if removed > 0 {
        ctx.notify(class::SET, "srem", key);
        if emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    drop(locked);
    ctx.add_dirty(removed as u64);
    ctx.reply.int(removed as i64);
    Ok(())
}

/// `SCARD key`
fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&args[1..2]);
    let len = match ctx.read(&mut locked, &args[1]) {
        Some(entry) => set_of(&entry.value)?.len(),
        None => 0,
    };
    drop(locked);
    ctx.reply.int(len as i64);
    Ok(())
}

/// `SISMEMBER key member`
fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&args[1..2]);
    let found = match ctx.read(&mut locked, &args[1]) {
        Some(entry) => set_of(&entry.value)?.contains(&args[2]),
        None => false,
    };
    drop(locked);
    ctx.reply.int(i64::from(found));
    Ok(())
}

/// `SMISMEMBER key member [member ...]`: an array of 0/1 (integers in RESP3 too).
fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&args[1..2]);
    let set = match ctx.read(&mut locked, &args[1]) {
        Some(entry) => Some(set_of(&entry.value)?),
        None => None,
    };
    let members = &args[2..];
    ctx.reply.array_len(members.len());
    for member in members {
        let found = set.is_some_and(|s| s.contains(member));
        ctx.reply.int(i64::from(found));
    }
    Ok(())
}

/// `SMEMBERS key`
fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&args[1..2]);
    match ctx.read(&mut locked, &args[1]) {
        Some(entry) => reply_set(ctx.reply, set_of(&entry.value)?),
        None => ctx.reply.set_len(0),
    }
    Ok(())
}

/// `SMOVE source destination member`
///
/// As in Valkey: a missing source answers 0 before the destination's type is looked at; a
/// source equal to the destination answers whether the member is there, changing nothing.
fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let limits = limits(ctx);
    let db = ctx.db();
    let mut locked = ctx.lock(&[src, dst]);
    let Some(entry) = ctx.write(&mut locked, src) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let in_source = set_of(&entry.value)?.contains(member);
    let dst_exists = match ctx.write(&mut locked, dst) {
        Some(entry) => {
            set_of(&entry.value)?;
            true
        }
        None => false,
    };
    if src == dst || !in_source {
        ctx.reply.int(i64::from(in_source));
        return Ok(());
    }
    if let Some(entry) = locked.db(db, src).get(src, ctx.now_ms) {
        let set = set_of_mut(&mut entry.value)?;
        set.remove(member);
        let emptied = set.is_empty();
        if emptied {
            locked.db(db, src).delete(src);
        }
        ctx.notify(class::SET, "srem", src);
        if emptied {
            ctx.notify(class::GENERIC, "del", src);
        }
    }
    let added = if dst_exists {
        match locked.db(db, dst).get(dst, ctx.now_ms) {
            Some(entry) => set_of_mut(&mut entry.value)?.add(member, &limits),
            None => false,
        }
    } else {
        let mut set = SetValue::create(member, 1, &limits);
        set.add(member, &limits);
        let entry = ctx.new_entry(Value::Set(set));
        locked.db(db, dst).insert(dst, entry);
        true
    };
    drop(locked);
    if added {
        ctx.notify(class::SET, "sadd", dst);
    } else {
        crate::transaction::left_unchanged(dst);
    }
    ctx.add_dirty(1 + u64::from(added));
    ctx.reply.int(1);
    Ok(())
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`
///
/// Like Valkey, a missing key answers an empty page without looking at the options, and a
/// set in a compact encoding is returned whole with cursor 0, whatever the cursor and COUNT.
fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut locked = ctx.lock(&args[1..2]);
    let Some(entry) = ctx.read(&mut locked, &args[1]) else {
        drop(locked);
        ctx.reply.array_len(2);
        ctx.reply.bulk(b"0");
        ctx.reply.array_len(0);
        return Ok(());
    };
    let set = set_of(&entry.value)?;
    let options = scan_options::parse(&args[3..], ScanFamily::Set)?;
    let (count, pattern) = (
        usize::try_from(options.count).unwrap_or(usize::MAX),
        options.pattern,
    );
    let pattern = pattern.filter(|p| *p != b"*");
    let mut page: Vec<Vec<u8>> = Vec::new();
    let next = set.scan(cursor, count, |member| {
        let bytes = member.to_bytes();
        if pattern.is_none_or(|p| glob_match(p, &bytes, false)) {
            page.push(bytes.into_owned());
        }
    });
    drop(locked);
    ctx.reply.array_len(2);
    ctx.reply.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.reply.array_len(page.len());
    for member in &page {
        ctx.reply.bulk(member);
    }
    Ok(())
}
