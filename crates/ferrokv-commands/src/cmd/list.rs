//! List commands, blocking ones included (their parking and serving is in `crate::blocking`;
//! the operations a parked client runs when served are in `list/blocked.rs`).
//!
//! Argument checks run in Valkey's order, which differs per command (LRANGE parses its
//! indexes before looking the key up, LINDEX and LSET after), because the first failing check
//! decides the error a client sees.

mod blocked;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::access::AccessPolicy;
use ferrokv_store::events::{self, class};
use ferrokv_store::types::listpack::{Elem, Probe};
use ferrokv_store::{Entry, ListLimits, ListValue, Locked, Value};

use crate::blocking;
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::dispatch::arity_error;
use crate::spec::{
    BeginSearch, CommandSpec, FindKeys, KeySpec, category as cat, flag, key_flag as kf,
};

const W: u64 = flag::WRITE;
const RO: u64 = flag::READONLY;
const OOM: u64 = flag::DENYOOM;
const FAST: u64 = flag::FAST;
const BLOCK: u64 = flag::BLOCKING;
const LIST: u64 = cat::LIST;

const PUSH_KEYS: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::INSERT)];
const POP_KEYS: &[KeySpec] = &[KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE)];
const READ_KEYS: &[KeySpec] = &[KeySpec::single(1, kf::RO | kf::ACCESS)];
const MOVE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kf::RW | kf::ACCESS | kf::DELETE),
    KeySpec::single(2, kf::RW | kf::INSERT),
];
const BLOCKING_POP_KEYS: &[KeySpec] = &[KeySpec {
    flags: kf::RW | kf::ACCESS | kf::DELETE,
    begin: BeginSearch::Index(1),
    find: FindKeys::Range {
        last_key: -2,
        step: 1,
        limit: 0,
    },
}];
const PUSH_COMPLEXITY: &str = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.";
const MPOP_COMPLEXITY: &str =
    "O(N+M) where N is the number of provided keys and M is the number of elements returned.";

const fn mpop_keys(numkeys_at: i32) -> [KeySpec; 1] {
    [KeySpec {
        flags: kf::RW | kf::ACCESS | kf::DELETE,
        begin: BeginSearch::Index(numkeys_at),
        find: FindKeys::KeyNum {
            key_num_idx: 0,
            first_key: 1,
            step: 1,
        },
    }]
}
const LMPOP_KEYS: &[KeySpec] = &mpop_keys(1);
const BLMPOP_KEYS: &[KeySpec] = &mpop_keys(2);

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, "list")
        .flags(W | OOM | FAST)
        .categories(LIST)
        .keys(PUSH_KEYS)
        .doc("1.0.0", "Prepends elements to a list, creating it if needed.", PUSH_COMPLEXITY)
        .handler(lpush),
    CommandSpec::new("rpush", -3, "list")
        .flags(W | OOM | FAST)
        .categories(LIST)
        .keys(PUSH_KEYS)
        .doc("1.0.0", "Appends elements to a list, creating it if needed.", PUSH_COMPLEXITY)
        .handler(rpush),
    CommandSpec::new("lpushx", -3, "list")
        .flags(W | OOM | FAST)
        .categories(LIST)
        .keys(PUSH_KEYS)
        .doc("2.2.0", "Prepends elements to a list only if the list exists.", PUSH_COMPLEXITY)
        .handler(lpushx),
    CommandSpec::new("rpushx", -3, "list")
        .flags(W | OOM | FAST)
        .categories(LIST)
        .keys(PUSH_KEYS)
        .doc("2.2.0", "Appends elements to a list only if the list exists.", PUSH_COMPLEXITY)
        .handler(rpushx),
    CommandSpec::new("lpop", -2, "list")
        .flags(W | FAST)
        .categories(LIST)
        .keys(POP_KEYS)
        .doc(
            "1.0.0",
            "Removes and returns the first elements of a list; the key goes when the list empties.",
            "O(N) where N is the number of elements returned",
        )
        .handler(lpop),
    CommandSpec::new("rpop", -2, "list")
        .flags(W | FAST)
        .categories(LIST)
        .keys(POP_KEYS)
        .doc(
            "1.0.0",
            "Removes and returns the last elements of a list; the key goes when the list empties.",
            "O(N) where N is the number of elements returned",
        )
        .handler(rpop),
    CommandSpec::new("llen", 2, "list")
        .flags(RO | FAST)
        .categories(LIST)
        .keys(&[KeySpec::single(1, kf::RO)])
        .doc("1.0.0", "Returns the number of elements of a list.", "O(1)")
        .handler(llen),
    CommandSpec::new("lrange", 4, "list")
        .flags(RO)
        .categories(LIST)
        .keys(READ_KEYS)
        .doc(
            "1.0.0",
            "Returns a range of a list's elements.",
            "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
        )
        .handler(lrange),
    CommandSpec::new("lindex", 3, "list")
        .flags(RO)
        .categories(LIST)
        .keys(READ_KEYS)
        .doc(
            "1.0.0",
            "Returns the element of a list at an index.",
            "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).",
        )
        .handler(lindex),
    CommandSpec::new("lset", 4, "list")
        .flags(W | OOM)
        .categories(LIST)
        .keys(&[KeySpec::single(1, kf::RW | kf::UPDATE)])
        .doc(
            "1.0.0",
            "Overwrites the element of a list at an index.",
            "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).",
        )
        .handler(lset),
    CommandSpec::new("linsert", 5, "list")
        .flags(W | OOM)
        .categories(LIST)
        .keys(PUSH_KEYS)
        .doc(
            "2.2.0",
            "Inserts an element before or after another element of a list.",
            "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
        )
        .handler(linsert),
    CommandSpec::new("lrem", 4, "list")
        .flags(W)
        .categories(LIST)
        .keys(&[KeySpec::single(1, kf::RW | kf::DELETE)])
        .doc(
            "1.0.0",
            "Removes elements equal to a value from a list; the key goes when the list empties.",
            "O(N+M) where N is the length of the list and M is the number of elements removed.",
        )
        .handler(lrem),
    CommandSpec::new("ltrim", 4, "list")
        .flags(W)
        .categories(LIST)
        .keys(&[KeySpec::single(1, kf::RW | kf::DELETE)])
        .doc(
            "1.0.0",
            "Keeps only a range of a list's elements; the key goes when nothing is left.",
            "O(N) where N is the number of elements to be removed by the operation.",
        )
        .handler(ltrim),
    CommandSpec::new("lpos", -3, "list")
        .flags(RO)
        .categories(LIST)
        .keys(READ_KEYS)
        .doc(
            "6.0.6",
            "Returns the indexes of the elements of a list equal to a value.",
            "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.",
        )
        .handler(lpos),
    CommandSpec::new("lmove", 5, "list")
        .flags(W | OOM)
        .categories(LIST)
        .keys(MOVE_KEYS)
        .doc(
            "6.2.0",
            "Moves an element from one end of a list to an end of another; the source key goes when it empties.",
            "O(1)",
        )
        .handler(lmove),
    CommandSpec::new("rpoplpush", 3, "list")
        .flags(W | OOM)
        .categories(LIST)
        .keys(MOVE_KEYS)
        .doc(
            "1.2.0",
            "Moves the last element of a list to the head of another (an older form of LMOVE).",
            "O(1)",
        )
        .handler(rpoplpush),
    CommandSpec::new("lmpop", -4, "list")
        .flags(W)
        .categories(LIST)
        .keys(LMPOP_KEYS)
        .doc(
            "7.0.0",
            "Pops elements from the first non-empty list among several keys.",
            MPOP_COMPLEXITY,
        )
        .handler(lmpop),
    CommandSpec::new("blpop", -3, "list")
        .flags(W | BLOCK)
        .categories(LIST)
        .keys(BLOCKING_POP_KEYS)
        .doc(
            "2.0.0",
            "Pops the first element of the first non-empty list, waiting for one if they are all empty.",
            "O(N) where N is the number of provided keys.",
        )
        .handler(blpop),
    CommandSpec::new("brpop", -3, "list")
        .flags(W | BLOCK)
        .categories(LIST)
        .keys(BLOCKING_POP_KEYS)
        .doc(
            "2.0.0",
            "Pops the last element of the first non-empty list, waiting for one if they are all empty.",
            "O(N) where N is the number of provided keys.",
        )
        .handler(brpop),
    CommandSpec::new("blmove", 6, "list")
        .flags(W | OOM | BLOCK)
        .categories(LIST)
        .keys(MOVE_KEYS)
        .doc(
            "6.2.0",
            "Moves an element from one list to another, waiting for one if the source is empty.",
            "O(1)",
        )
        .handler(blmove),
    CommandSpec::new("brpoplpush", 4, "list")
        .flags(W | OOM | BLOCK)
        .categories(LIST)
        .keys(MOVE_KEYS)
        .doc(
            "2.2.0",
            "Moves the last element of a list to the head of another, waiting if the source is empty (an older form of BLMOVE).",
            "O(1)",
        )
        .handler(brpoplpush),
    CommandSpec::new("blmpop", -5, "list")
        .flags(W | BLOCK)
        .categories(LIST)
        .keys(BLMPOP_KEYS)
        .doc(
            "7.0.0",
            "Pops elements from the first non-empty list among several keys, waiting if they are all empty.",
            MPOP_COMPLEXITY,
        )
        .handler(blmpop),
];

// ---- helpers shared with the blocked operations ----

/// The list held by a value, or WRONGTYPE.
fn list_of(value: &Value) -> Result<&ListValue, CmdError> {
    match value {
        Value::List(l) => Ok(l),
        _ => Err(errors::WRONGTYPE),
    }
}

fn list_of_mut(value: &mut Value) -> Result<&mut ListValue, CmdError> {
    match value {
        Value::List(l) => Ok(l),
        _ => Err(errors::WRONGTYPE),
    }
}

pub(crate) fn reply_elem(reply: &mut Reply, elem: Elem<'_>) {
    match elem {
        Elem::Int(n) => reply.bulk_int(n),
        Elem::Str(s) => reply.bulk(s),
    }
}

/// `list-max-listpack-size` and `list-compress-depth` for this client.
fn limits(ctx: &Ctx) -> ListLimits {
    ListLimits::new(
        ctx.client.config.list_max_listpack_size,
        ctx.client.config.list_compress_depth,
    )
}

/// What a list operation needs to reach keys, for a command's own client or for a parked
/// client being served on another client's thread.
pub(crate) struct Keys<'l, 'a> {
    pub locked: &'l mut Locked<'a>,
    pub db: usize,
    pub now_ms: i64,
    pub access: AccessPolicy,
    pub limits: ListLimits,
}

impl Keys<'_, '_> {
    fn write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let entry = self.locked.db(self.db, key).get(key, self.now_ms)?;
        self.access.touch(&mut entry.access);
        Some(entry)
    }

    fn remove(&mut self, key: &[u8]) {
        self.locked.db(self.db, key).remove(key);
    }

    fn notify(&self, class: u32, event: &'static str, key: &[u8]) {
        events::notify(class, event, self.db, key);
    }

    /// Pops up to `count` elements from one end of the list at `key`, deleting the key when
    /// it empties. `Ok(None)`: no such key.
    pub fn pop(
        &mut self,
        key: &[u8],
        front: bool,
        count: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
        let limits = self.limits;
        let Some(entry) = self.write(key) else {
            return Ok(None);
        };
        let list = list_of_mut(&mut entry.value)?;
        let n = count.min(list.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if let Some(v) = list.pop(front) {
                out.push(v);
            }
        }
        let emptied = list.is_empty();
        if emptied {
            self.remove(key);
        } else {
            list.shrink_check(limits);
        }
        if !out.is_empty() {
            self.notify(class::LIST, pop_event(front), key);
            if emptied {
                self.notify(class::GENERIC, "del", key);
            }
        }
        Ok(Some(out))
    }

    /// Whether `key` holds a non-empty list; WRONGTYPE for another type.
    pub fn has_elements(&mut self, key: &[u8]) -> Result<bool, CmdError> {
        match self.write(key) {
            None => Ok(false),
            Some(e) => Ok(!list_of(&e.value)?.is_empty()),
        }
    }

    /// LMOVE: moves one element from `src` to `dst`. `Ok(None)`: `src` does not exist.
    /// The destination's type is checked only when there is an element to move.
    pub fn move_one(
        &mut self,
        src: &Bytes,
        dst: &Bytes,
        from_front: bool,
        to_front: bool,
    ) -> Result<Option<Vec<u8>>, CmdError> {
        let limits = self.limits;
        let Some(entry) = self.write(src) else {
            return Ok(None);
        };
        if list_of(&entry.value)?.is_empty() {
            return Ok(None);
        }
        if src != dst
            && let Some(d) = self.write(dst)
        {
            list_of(&d.value)?;
        }
        let Some(source) = self.write(src) else {
            return Ok(None);
        };
        let list = list_of_mut(&mut source.value)?;
        let Some(value) = list.pop(from_front) else {
            return Ok(None);
        };
        // Valkey reports the push before the pop.
        if src == dst {
            list.push(&value, to_front, limits);
            self.notify(class::LIST, push_event(to_front), dst);
            self.notify(class::LIST, pop_event(from_front), src);
            return Ok(Some(value));
        }
        let emptied = list.is_empty();
        if emptied {
            self.remove(src);
        } else {
            list.shrink_check(limits);
        }
        match self.write(dst) {
            Some(d) => list_of_mut(&mut d.value)?.push(&value, to_front, limits),
            None => {
                let mut list = ListValue::new();
                list.push(&value, to_front, limits);
                let entry = Entry::new(Value::List(list), self.access.initial());
                self.locked.db(self.db, dst).insert(dst, entry);
            }
        }
        self.notify(class::LIST, push_event(to_front), dst);
        self.notify(class::LIST, pop_event(from_front), src);
        if emptied {
            self.notify(class::GENERIC, "del", src);
        }
        Ok(Some(value))
    }
}

fn pop_event(front: bool) -> &'static str {
    if front { "lpop" } else { "rpop" }
}

fn push_event(front: bool) -> &'static str {
    if front { "lpush" } else { "rpush" }
}

fn keys<'l, 'a>(ctx: &Ctx<'a>, locked: &'l mut Locked<'a>) -> Keys<'l, 'a> {
    Keys {
        locked,
        db: ctx.client.db,
        now_ms: ctx.now_ms,
        access: ctx.client.access_policy,
        limits: limits(ctx),
    }
}

/// LEFT or RIGHT (true for LEFT), or a syntax error.
fn parse_end(arg: &[u8]) -> Result<bool, CmdError> {
    if args::is(arg, "left") {
        Ok(true)
    } else if args::is(arg, "right") {
        Ok(false)
    } else {
        Err(errors::SYNTAX)
    }
}

/// An integer in `min..=i64::MAX`, or `msg` as the error for anything else.
fn int_at_least(arg: &[u8], min: i64, msg: &'static str) -> Result<i64, CmdError> {
    match ferrokv_protocol::number::parse_i64(arg) {
        Some(n) if n >= min => Ok(n),
        _ => Err(CmdError::new(msg)),
    }
}

/// Serves clients blocked on keys this command added to, before its locks are released.
fn serve_blocked<'a>(ctx: &Ctx<'a>, locked: &mut Locked<'a>) {
    if blocking::pending() {
        blocking::serve_ready(ctx.server, locked, ctx.now_ms);
    }
}

// ---- pushing ----

fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, false, true)
}

/// `LPUSH|RPUSH|LPUSHX|RPUSHX key element [element ...]`
fn push(ctx: &mut Ctx, args: &[Bytes], front: bool, existing_only: bool) -> CmdResult {
    let key = &args[1];
    let values = &args[2..];
    let limits = limits(ctx);
    let mut locked = ctx.lock(&[key]);
    let len = match ctx.write(&mut locked, key) {
        Some(entry) => {
            let list = list_of_mut(&mut entry.value)?;
            list.push_all(values, front, limits);
            list.len()
        }
        None if existing_only => {
            ctx.reply.int(0);
            return Ok(());
        }
        None => {
            let mut list = ListValue::new();
            list.push_all(values, front, limits);
            let len = list.len();
            let entry = ctx.new_entry(Value::List(list));
            locked.db(ctx.db(), key).insert(key, entry);
            len
        }
    };
    ctx.notify(class::LIST, push_event(front), key);
    ctx.add_dirty(values.len() as u64);
    blocking::signal_ready(ctx, key);
    serve_blocked(ctx, &mut locked);
    ctx.reply.int(len as i64);
    Ok(())
}

/// `LINSERT key BEFORE|AFTER pivot element`
fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let after = if args::is(&args[2], "after") {
        true
    } else if args::is(&args[2], "before") {
        false
    } else {
        return Err(errors::SYNTAX);
    };
    let key = &args[1];
    let limits = limits(ctx);
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let list = list_of_mut(&mut entry.value)?;
    if !list.insert(&args[3], &args[4], after, limits) {
        ctx.reply.int(-1);
        return Ok(());
    }
    let len = list.len();
    ctx.notify(class::LIST, "linsert", key);
    ctx.add_dirty(1);
    ctx.reply.int(len as i64);
    Ok(())
}

/// `LSET key index element`
fn lset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let limits = limits(ctx);
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        return Err(errors::NO_SUCH_KEY);
    };
    let list = list_of_mut(&mut entry.value)?;
    // Valkey parses a 64-bit index but hands it to its replace-at-index helper as a C int,
    // so only the low 32 bits count: LSET k 4294967296 v sets element 0.
    let index = i64::from(args::int(&args[2])? as i32);
    if !list.set(index, &args[3], limits) {
        return Err(CmdError::err("index out of range"));
    }
    list.shrink_check(limits);
    ctx.notify(class::LIST, "lset", key);
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

// ---- popping ----

fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, true)
}

fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, false)
}

/// `LPOP|RPOP key [count]`
fn pop(ctx: &mut Ctx, args: &[Bytes], front: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(arity_error(ctx.spec.name));
    }
    let count = match args.get(2) {
        Some(arg) => Some(int_at_least(
            arg,
            0,
            "ERR value is out of range, must be positive",
        )?),
        None => None,
    };
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let mut keys = keys(ctx, &mut locked);
    let popped = keys.pop(key, front, count.unwrap_or(1).max(0) as usize)?;
    let Some(popped) = popped else {
        match count {
            Some(_) => ctx.reply.null_array(),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    ctx.add_dirty(popped.len() as u64);
    match count {
        None => match popped.first() {
            Some(v) => ctx.reply.bulk(v),
            None => ctx.reply.null(),
        },
        Some(_) => {
            ctx.reply.array_len(popped.len());
            for v in &popped {
                ctx.reply.bulk(v);
            }
        }
    }
    Ok(())
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`, and BLMPOP's arguments after
/// the timeout: (keys, from the head, count).
fn parse_mpop(args: &[Bytes], numkeys_at: usize) -> Result<(Vec<Bytes>, bool, usize), CmdError> {
    let numkeys = int_at_least(&args[numkeys_at], 1, "ERR numkeys should be greater than 0")?;
    let where_at = (numkeys as u64).saturating_add(numkeys_at as u64 + 1);
    if where_at >= args.len() as u64 {
        return Err(errors::SYNTAX);
    }
    let where_at = where_at as usize;
    let front = parse_end(&args[where_at])?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < args.len() {
        if count.is_none() && args::is(&args[i], "count") && i + 1 < args.len() {
            count = Some(int_at_least(
                &args[i + 1],
                1,
                "ERR count should be greater than 0",
            )?);
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let keys = args[numkeys_at + 1..where_at].to_vec();
    Ok((keys, front, count.unwrap_or(1) as usize))
}

/// Writes an MPOP reply: `[key, [elements]]`.
fn reply_mpop(reply: &mut Reply, key: &[u8], values: &[Vec<u8>]) {
    reply.array_len(2);
    reply.bulk(key);
    reply.array_len(values.len());
    for v in values {
        reply.bulk(v);
    }
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn lmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (keys_list, front, count) = parse_mpop(args, 1)?;
    let mut locked = ctx.lock(&keys_list);
    let mut keys = keys(ctx, &mut locked);
    for key in &keys_list {
        if let Some(popped) = keys.pop(key, front, count)? {
            ctx.add_dirty(popped.len() as u64);
            ctx.propagate_as(crate::argv![blocked::pop_name(front), key, popped.len()]);
            reply_mpop(ctx.reply, key, &popped);
            return Ok(());
        }
    }
    ctx.reply.null_array();
    Ok(())
}

// ---- moving ----

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let from_front = parse_end(&args[3])?;
    let to_front = parse_end(&args[4])?;
    move_and_reply(ctx, &args[1], &args[2], from_front, to_front)
}

/// `RPOPLPUSH source destination`
fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    move_and_reply(ctx, &args[1], &args[2], false, true)
}

fn move_and_reply(
    ctx: &mut Ctx,
    src: &Bytes,
    dst: &Bytes,
    from_front: bool,
    to_front: bool,
) -> CmdResult {
    let mut locked = ctx.lock(&[src, dst]);
    let mut keys = keys(ctx, &mut locked);
    match keys.move_one(src, dst, from_front, to_front)? {
        None => ctx.reply.null(),
        Some(value) => {
            ctx.add_dirty(1);
            blocking::signal_ready(ctx, dst);
            serve_blocked(ctx, &mut locked);
            ctx.reply.bulk(&value);
        }
    }
    Ok(())
}

// ---- reading ----

/// `LLEN key`
fn llen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let len = match ctx.read(&mut locked, key) {
        Some(e) => list_of(&e.value)?.len(),
        None => 0,
    };
    ctx.reply.int(len as i64);
    Ok(())
}

/// Valkey's clamping of a (start, stop) range to a list of `len` elements: the inclusive
/// range, or `None` when empty.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

/// `LRANGE key start stop`
fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let stop = args::int(&args[3])?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    let list = list_of(&entry.value)?;
    let Some((start, stop)) = clamp_range(start, stop, list.len()) else {
        ctx.reply.array_len(0);
        return Ok(());
    };
    let mut n = stop - start + 1;
    ctx.reply.array_len(n);
    let reply = &mut *ctx.reply;
    list.walk(start, false, |e| {
        reply_elem(reply, e);
        n -= 1;
        n > 0
    });
    Ok(())
}

/// `LINDEX key index`
fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.null();
        return Ok(());
    };
    let list = list_of(&entry.value)?;
    let index = args::int(&args[2])?;
    match list.index_of(index) {
        Some(i) => {
            let reply = &mut *ctx.reply;
            list.walk(i, false, |e| {
                reply_elem(reply, e);
                false
            });
        }
        None => ctx.reply.null(),
    }
    Ok(())
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args::is(&args[i], "rank") && has_value {
            let n = args::int(&args[i + 1])?;
            if n == i64::MIN {
                return Err(CmdError::err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            if n == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
            rank = n;
        } else if args::is(&args[i], "count") && has_value {
            count = Some(int_at_least(
                &args[i + 1],
                0,
                "ERR COUNT can't be negative",
            )?);
        } else if args::is(&args[i], "maxlen") && has_value {
            maxlen = int_at_least(&args[i + 1], 0, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        match count {
            Some(_) => ctx.reply.array_len(0),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let list = list_of(&entry.value)?;
    let probe = Probe::new(&args[2]);
    let len = list.len();
    let reverse = rank < 0;
    let mut skip = rank.unsigned_abs() - 1;
    let wanted = match count {
        Some(0) => usize::MAX,
        Some(n) => n as usize,
        None => 1,
    };
    let limit = if maxlen == 0 {
        usize::MAX
    } else {
        maxlen as usize
    };
    let mut found = Vec::new();
    if len > 0 {
        let mut i = 0;
        list.walk(if reverse { len - 1 } else { 0 }, reverse, |elem| {
            if i >= limit {
                return false;
            }
            let at = i;
            i += 1;
            if !elem.matches(&probe) {
                return true;
            }
            if skip > 0 {
                skip -= 1;
                return true;
            }
            found.push(if reverse { len - 1 - at } else { at });
            found.len() < wanted
        });
    }
    match count {
        Some(_) => {
            ctx.reply.array_len(found.len());
            for i in found {
                ctx.reply.int(i as i64);
            }
        }
        None => match found.first() {
            Some(&i) => ctx.reply.int(i as i64),
            None => ctx.reply.null(),
        },
    }
    Ok(())
}

// ---- removing ----

/// `LREM key count element`
fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = args::int(&args[2])?;
    let key = &args[1];
    let limits = limits(ctx);
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let list = list_of_mut(&mut entry.value)?;
    let removed = list.remove(count, &args[3]);
    let emptied = list.is_empty();
    if emptied {
        locked.db(ctx.db(), key).remove(key);
    } else if removed > 0 {
        list.shrink_check(limits);
    }
    if removed > 0 {
        ctx.notify(class::LIST, "lrem", key);
        if emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    ctx.add_dirty(removed as u64);
    ctx.reply.int(removed as i64);
    Ok(())
}

/// `LTRIM key start stop`
fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let stop = args::int(&args[3])?;
    let key = &args[1];
    let limits = limits(ctx);
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        ctx.reply.ok();
        return Ok(());
    };
    let list = list_of_mut(&mut entry.value)?;
    let before = list.len();
    list.trim(clamp_range(start, stop, before));
    let removed = before - list.len();
    let emptied = list.is_empty();
    if emptied {
        locked.db(ctx.db(), key).remove(key);
    } else {
        list.shrink_check(limits);
    }
    ctx.notify(class::LIST, "ltrim", key);
    if emptied {
        ctx.notify(class::GENERIC, "del", key);
    }
    ctx.add_dirty(removed as u64);
    ctx.reply.ok();
    Ok(())
}

// ---- blocking ----

/// `BLPOP key [key ...] timeout`
fn blpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocked::blocking_pop(ctx, args, true)
}

/// `BRPOP key [key ...] timeout`
fn brpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocked::blocking_pop(ctx, args, false)
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let from_front = parse_end(&args[3])?;
    let to_front = parse_end(&args[4])?;
    blocked::blocking_move(ctx, &args[1], &args[2], from_front, to_front, &args[5])
}

/// `BRPOPLPUSH source destination timeout`
fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocked::blocking_move(ctx, &args[1], &args[2], false, true, &args[3])
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn blmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocked::blocking_mpop(ctx, args)
}
