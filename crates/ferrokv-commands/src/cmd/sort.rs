//! SORT and SORT_RO, with Valkey 9.1's semantics down to the order of equal elements.
//!
//! - **Which keys.** Besides the sorted key and the STORE destination, the BY and GET
//!   patterns read keys named by the data. Such a SORT locks every shard (its keys
//!   procedure tells EXEC and scripts to hold every shard too); one without those patterns
//!   locks only its key and destination. Valkey refuses BY and GET to a user who may not
//!   read every key, since the key checks never see those keys.
//! - **Order of equal elements.** Numbers that tie are ordered by comparing the elements'
//!   bytes; ALPHA compares like `strcmp` (Valkey's `strcoll` in the C.UTF-8 locale: bytes,
//!   up to a zero byte), or all bytes when the result is stored. What still compares equal
//!   (BY values that tie under ALPHA, elements equal up to a zero byte) keeps the order Valkey
//!   leaves it in: a full sort is glibc's `qsort`, a merge sort, so stable; a SORT BY with a
//!   LIMIT that does not cover everything is Valkey's partial quicksort, reproduced in
//!   [`crate::cmd::partial_sort`].
//! - **Load order.** Lists load head to tail, intsets and listpack sets in their order (the
//!   same as Valkey's), a hashtable set in ours. Valkey walks a sorted set's hash table, a
//!   random order for each process: ferrokv loads it by score, which only shows under ties.
//! - **BY without `*`** ("BY nosort") keeps the collection's order: a list or sorted set in
//!   its order (reversed by DESC, LIMIT taken directly), a set in its iteration order, except
//!   when the result is stored or the command runs from a script, where Valkey sorts it
//!   (ALPHA) so that replicas and the AOF see the same result.
//! - **Sorted sets** are converted to the skiplist encoding first, as Valkey does (OBJECT
//!   ENCODING shows it).
//!
//! Cluster mode will need Valkey's refusals here: BY with a pattern whose key is not in the
//! sorted key's slot ("BY option of SORT denied in Cluster mode.") and GET ("GET option of
//! SORT denied in Cluster mode.").

use std::borrow::Cow;
use std::cmp::Ordering;

use bytes::Bytes;
use ferrokv_protocol::number::parse_double;
use ferrokv_store::events::class;
use ferrokv_store::types::listpack::Elem;
use ferrokv_store::types::set::Member;
use ferrokv_store::{ListLimits, ListValue, Locked, Value};

use crate::client::Transport;
use crate::cmd::args;
use crate::cmd::partial_sort::partial_sort;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{
    ArgList, BeginSearch, CommandSpec, FindKeys, KeyFound, KeySpec, KeysProc, category as cat,
    flag, key_flag as kf,
};
use crate::table::TABLE;

const SORTED_KEY: KeySpec = KeySpec::single(1, kf::RO | kf::ACCESS);
const UNKNOWN_KEYS: KeySpec = KeySpec {
    flags: kf::RO | kf::ACCESS,
    begin: BeginSearch::Unknown,
    find: FindKeys::Unknown,
};
const UNKNOWN_DESTINATION: KeySpec = KeySpec {
    flags: kf::OW | kf::UPDATE,
    begin: BeginSearch::Unknown,
    find: FindKeys::Unknown,
};
const BY_GET_NOTE: &str = "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort";
const STORE_NOTE: &str = "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array";
const COMPLEXITY: &str = "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).";

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, "generic")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(cat::SET | cat::SORTEDSET | cat::LIST | cat::DANGEROUS)
        .keys(&[SORTED_KEY, UNKNOWN_KEYS, UNKNOWN_DESTINATION])
        .key_notes(&["", BY_GET_NOTE, STORE_NOTE])
        .keys_proc(KeysProc {
            reported: reported_keys,
            touched: Some(touched_keys),
        })
        .doc(
            "1.0.0",
            "Sorts a list, set or sorted set by value, by other keys' values or not at all, and returns or stores the result.",
            COMPLEXITY,
        )
        .handler(sort),
    CommandSpec::new("sort_ro", -2, "generic")
        .flags(flag::READONLY)
        .categories(cat::SET | cat::SORTEDSET | cat::LIST | cat::DANGEROUS)
        .keys(&[SORTED_KEY, UNKNOWN_KEYS])
        .key_notes(&["", BY_GET_NOTE])
        .keys_proc(KeysProc {
            reported: reported_keys_ro,
            touched: Some(touched_keys_ro),
        })
        .doc(
            "7.0.0",
            "Sorts a list, set or sorted set like SORT, without STORE.",
            COMPLEXITY,
        )
        .handler(sort_ro),
];

// ---- keys ----

const SOURCE_FLAGS: u32 = kf::RO | kf::ACCESS;
const DESTINATION_FLAGS: u32 = kf::OW | kf::UPDATE;

/// The STORE destination as Valkey's `sortGetKeys` finds it for COMMAND GETKEYS and the
/// ACL key checks: the last STORE followed by an argument, skipping LIMIT's two arguments
/// and BY's and GET's one, without checking anything else.
fn reported_destination(args: &dyn ArgList) -> Option<usize> {
    let argc = args.argc();
    let mut found = None;
    let mut i = 2;
    while i < argc {
        let arg = args.arg(i);
        if args::is(arg, "limit") {
            i += 2;
        } else if args::is(arg, "get") || args::is(arg, "by") {
            i += 1;
        } else if args::is(arg, "store") && i + 1 < argc {
            found = Some(i + 1);
        }
        i += 1;
    }
    found
}

// Keys procedures also run on requests not yet checked for arity (prefetching a pipeline):
// a bare `SORT` has no key.

fn reported_keys(args: &dyn ArgList, found: KeyFound) {
    if args.argc() < 2 {
        return;
    }
    found(1, SOURCE_FLAGS);
    if let Some(i) = reported_destination(args) {
        found(i, DESTINATION_FLAGS);
    }
}

fn reported_keys_ro(args: &dyn ArgList, found: KeyFound) {
    if args.argc() >= 2 {
        found(1, SOURCE_FLAGS);
    }
}

/// The reported keys plus the destination the command really writes, where the two
/// differ (`SORT k STORE limit STORE d` writes `d`; Valkey's procedure names `limit`): the
/// ACL checks see both and the locks cover both.
fn touched_keys(args: &dyn ArgList, found: KeyFound) -> bool {
    reported_keys(args, found);
    let Ok(options) = parse(args, false, &mut || true) else {
        // Refused before it reads anything.
        return true;
    };
    if let Some(i) = options.store
        && Some(i) != reported_destination(args)
    {
        found(i, DESTINATION_FLAGS);
    }
    !options.reaches_other_keys()
}

fn touched_keys_ro(args: &dyn ArgList, found: KeyFound) -> bool {
    reported_keys_ro(args, found);
    // Refused before it reads anything, or reads only its key.
    parse(args, true, &mut || true).map_or(true, |options| !options.reaches_other_keys())
}

// ---- options ----

/// The options of one SORT, as Valkey reads them: left to right, the last of each kind
/// winning.
struct Options<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT's offset and count as given; without LIMIT, 0 and -1 (everything).
    offset: i64,
    count: i64,
    by: Option<&'a [u8]>,
    /// Some BY pattern had no `*`. Never cleared by a later BY, as in Valkey.
    dont_sort: bool,
    gets: Vec<&'a [u8]>,
    /// The argument index of the STORE destination.
    store: Option<usize>,
}

impl Options<'_> {
    /// Whether BY or GET may read keys other than the arguments.
    fn reaches_other_keys(&self) -> bool {
        self.by.is_some_and(has_star)
            || self
                .gets
                .iter()
                .any(|p| matches!(Pattern::parse(p), Pattern::Key { .. }))
    }
}

/// The part of a pattern Valkey sees when it searches it as a C string.
fn c_string(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(pattern.len());
    &pattern[..end]
}

fn has_star(pattern: &[u8]) -> bool {
    c_string(pattern).contains(&b'*')
}

/// Parses the options after the key. `may_read_every_key` is asked (once at most) when BY
/// has a `*` or GET appears: Valkey refuses those to a user who may not read every key, at
/// the option's place among the others, so an earlier error wins.
fn parse<'a>(
    args: &'a dyn ArgList,
    readonly: bool,
    may_read_every_key: &mut dyn FnMut() -> bool,
) -> Result<Options<'a>, CmdError> {
    let mut options = Options {
        desc: false,
        alpha: false,
        offset: 0,
        count: -1,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
        store: None,
    };
    let argc = args.argc();
    let mut i = 2;
    while i < argc {
        let arg = args.arg(i);
        let left = argc - i - 1;
        if args::is(arg, "asc") {
            options.desc = false;
        } else if args::is(arg, "desc") {
            options.desc = true;
        } else if args::is(arg, "alpha") {
            options.alpha = true;
        } else if args::is(arg, "limit") && left >= 2 {
            options.offset = args::int(args.arg(i + 1))?;
            options.count = args::int(args.arg(i + 2))?;
            i += 2;
        } else if !readonly && args::is(arg, "store") && left >= 1 {
            options.store = Some(i + 1);
            i += 1;
        } else if args::is(arg, "by") && left >= 1 {
            let pattern = args.arg(i + 1);
            if !has_star(pattern) {
                options.dont_sort = true;
            } else if !may_read_every_key() {
                return Err(CmdError::err(
                    "BY option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            options.by = Some(pattern);
            i += 1;
        } else if args::is(arg, "get") && left >= 1 {
            if !may_read_every_key() {
                return Err(CmdError::err(
                    "GET option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            options.gets.push(args.arg(i + 1));
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    Ok(options)
}

/// A BY or GET pattern taken apart as Valkey's `lookupKeyByPattern` does. It reads the
/// pattern as a C string to find `#`, `*` and `->`, but builds the key and the field from
/// every byte.
#[derive(Debug, PartialEq, Eq)]
enum Pattern<'a> {
    /// `#`: the element itself.
    Element,
    /// No `*`: nothing is looked up.
    Nothing,
    /// The first `*` replaced by the element names a string key, or with `->field` after
    /// the `*`, a hash field.
    Key {
        prefix: &'a [u8],
        suffix: &'a [u8],
        field: Option<&'a [u8]>,
    },
}

impl<'a> Pattern<'a> {
    fn parse(pattern: &'a [u8]) -> Pattern<'a> {
        let text = c_string(pattern);
        if text == b"#" {
            return Pattern::Element;
        }
        let Some(star) = text.iter().position(|&b| b == b'*') else {
            return Pattern::Nothing;
        };
        let arrow = text[star + 1..]
            .windows(2)
            .position(|w| w == b"->")
            .map(|at| star + 1 + at);
        match arrow {
            // An arrow that ends the C string names no field: it stays in the key.
            Some(at) if at + 2 < text.len() => Pattern::Key {
                prefix: &pattern[..star],
                suffix: &pattern[star + 1..at],
                field: Some(&pattern[at + 2..]),
            },
            _ => Pattern::Key {
                prefix: &pattern[..star],
                suffix: &pattern[star + 1..],
                field: None,
            },
        }
    }
}

/// What a pattern gives for one element.
enum Found<'l> {
    Element,
    Value(Cow<'l, [u8]>),
    Missing,
}

/// Looks `pattern` up for `element`: a string key's value or a hash field; a missing key
/// or field, or a key of another type, is missing. The key is read as any read is (hits,
/// misses, `keymiss` events, lazy expiry).
fn lookup<'l>(
    ctx: &Ctx,
    locked: &'l mut Locked<'_>,
    pattern: &Pattern,
    element: &[u8],
    key: &mut Vec<u8>,
) -> Found<'l> {
    let Pattern::Key {
        prefix,
        suffix,
        field,
    } = pattern
    else {
        return match pattern {
            Pattern::Element => Found::Element,
            _ => Found::Missing,
        };
    };
    key.clear();
    key.extend_from_slice(prefix);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    let now_ms = ctx.now_ms;
    let value = match (ctx.read(locked, key).map(|e| &e.value), field) {
        (Some(Value::Str(s)), None) => Some(s.to_bytes()),
        (Some(Value::Hash(h)), Some(field)) => h.get(field, now_ms).map(Cow::Borrowed),
        _ => None,
    };
    value.map_or(Found::Missing, Found::Value)
}

// ---- the command ----

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]`
fn sort(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

/// `SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]`
fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// The elements to sort, their bytes one after the other.
#[derive(Default)]
struct Elements {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Elements {
    fn with_capacity(n: usize) -> Elements {
        Elements {
            bytes: Vec::new(),
            ends: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, element: &[u8]) {
        self.bytes.extend_from_slice(element);
        self.ends.push(self.bytes.len());
    }

    fn push_int(&mut self, n: i64) {
        self.push(itoa::Buffer::new().format(n).as_bytes());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// The first and last positions of the result (Valkey's arithmetic: the offset clamped to
/// the collection, a negative count meaning everything; `last < first` when empty).
fn result_range(offset: i64, count: i64, len: usize) -> (i64, i64) {
    let len = len as i64;
    let mut start = offset.clamp(0, len);
    let count = count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    (start, end.min(len - 1))
}

/// How the elements compare.
enum SortKeys {
    /// By number: each element's (or BY value's) score.
    Scores(Vec<f64>),
    /// ALPHA with BY: each element's BY value, if any.
    Values(Elements, Vec<bool>),
    /// ALPHA: the elements themselves.
    Elements,
}

fn sort_generic(ctx: &mut Ctx, args: &[Bytes], readonly: bool) -> CmdResult {
    let view = args;
    let options = {
        let (server, client) = (ctx.server, &*ctx.client);
        let name = ctx.spec.name;
        let mut allowed = None;
        parse(&view, readonly, &mut || {
            *allowed.get_or_insert_with(|| {
                TABLE
                    .find(name.as_bytes())
                    .is_none_or(|entry| crate::acl::may_read_every_key(server, client, entry, args))
            })
        })?
    };
    let mut locked = match options.store {
        _ if options.reaches_other_keys() => ctx.lock_all(),
        Some(dest) => ctx.lock(&[&args[1], &args[dest]]),
        None => ctx.lock(&[&args[1]]),
    };
    let Options {
        desc,
        mut alpha,
        mut dont_sort,
        store,
        ..
    } = options;
    let mut by = options.by;

    let mut elements = Elements::default();
    let (mut start, mut end);
    match ctx.read(&mut locked, &args[1]).map(|e| &mut e.value) {
        None => (start, end) = result_range(options.offset, options.count, 0),
        Some(Value::List(list)) => {
            (start, end) = result_range(options.offset, options.count, list.len());
            if dont_sort {
                // The list's own order, from the requested end, only the range.
                if end >= start {
                    let want = (end - start + 1) as usize;
                    let first = if desc {
                        list.len() - 1 - start as usize
                    } else {
                        start as usize
                    };
                    elements = Elements::with_capacity(want);
                    list.walk(first, desc, |e| {
                        match e {
                            Elem::Int(n) => elements.push_int(n),
                            Elem::Str(s) => elements.push(s),
                        }
                        elements.len() < want
                    });
                    (start, end) = (0, end - start);
                }
            } else {
                elements = Elements::with_capacity(list.len());
                list.walk(0, false, |e| {
                    match e {
                        Elem::Int(n) => elements.push_int(n),
                        Elem::Str(s) => elements.push(s),
                    }
                    true
                });
            }
        }
        Some(Value::Set(set)) => {
            let from_script = ctx.client.shared.transport == Transport::Script;
            if dont_sort && (store.is_some() || from_script) {
                // A set's order is its own; what is stored or seen by a script must be the
                // same on replicas and in the AOF.
                (dont_sort, alpha, by) = (false, true, None);
            }
            (start, end) = result_range(options.offset, options.count, set.len());
            elements = Elements::with_capacity(set.len());
            for member in set.iter() {
                match member {
                    Member::Int(n) => elements.push_int(n),
                    Member::Bytes(b) => elements.push(b),
                }
            }
        }
        Some(Value::ZSet(zset)) => {
            zset.convert_to_skiplist();
            let len = zset.len();
            (start, end) = result_range(options.offset, options.count, len);
            if dont_sort {
                // Score order, from the requested end, only the range.
                let (from, to) = if end >= start {
                    let (s, e) = (start as usize, end as usize);
                    if desc {
                        (len - 1 - e, len - s)
                    } else {
                        (s, e + 1)
                    }
                } else {
                    (0, 0)
                };
                elements = Elements::with_capacity(to - from);
                for (member, _) in zset.range(from, to, desc) {
                    elements.push(member);
                }
                (start, end) = (0, end - start);
            } else {
                elements = Elements::with_capacity(len);
                for (member, _) in zset.iter() {
                    elements.push(member);
                }
            }
        }
        Some(_) => return Err(errors::WRONGTYPE),
    }

    let mut order: Vec<usize> = (0..elements.len()).collect();
    let mut key_buf = Vec::new();
    if !dont_sort {
        let by_pattern = by.map(Pattern::parse);
        let keys = match (&by_pattern, alpha) {
            (None, true) => SortKeys::Elements,
            (Some(pattern), true) => {
                let mut values = Elements::default();
                let mut present = Vec::with_capacity(elements.len());
                for i in 0..elements.len() {
                    let element = elements.get(i);
                    let found = lookup(ctx, &mut locked, pattern, element, &mut key_buf);
                    present.push(!matches!(found, Found::Missing));
                    match found {
                        Found::Element => values.push(element),
                        Found::Value(v) => values.push(&v),
                        Found::Missing => values.push(b""),
                    }
                }
                SortKeys::Values(values, present)
            }
            (_, false) => {
                let mut scores = Vec::with_capacity(elements.len());
                let mut unconvertible = false;
                // Valkey parses a C string: what follows a zero byte is ignored.
                let number = |text: &[u8]| parse_double(c_string(text));
                for i in 0..elements.len() {
                    let element = elements.get(i);
                    let parsed = match &by_pattern {
                        None => Some(number(element)),
                        Some(pattern) => {
                            match lookup(ctx, &mut locked, pattern, element, &mut key_buf) {
                                Found::Element => Some(number(element)),
                                Found::Value(v) => Some(number(&v)),
                                Found::Missing => None,
                            }
                        }
                    };
                    // A missing BY value scores 0; every value is still looked up after
                    // one fails, as in Valkey (misses are counted and notified).
                    let score = match parsed {
                        None => 0.0,
                        Some(Some(score)) => score,
                        Some(None) => {
                            unconvertible = true;
                            0.0
                        }
                    };
                    scores.push(score);
                }
                if unconvertible {
                    return Err(CmdError::err(
                        "One or more scores can't be converted into double",
                    ));
                }
                SortKeys::Scores(scores)
            }
        };
        // Stored results compare whole strings, replies stop at a zero byte (strcoll).
        let binary = store.is_some();
        let mut compare = |&a: &usize, &b: &usize| -> Ordering {
            let ordering = match &keys {
                SortKeys::Scores(scores) => {
                    let (x, y) = (scores[a], scores[b]);
                    if x > y {
                        Ordering::Greater
                    } else if x < y {
                        Ordering::Less
                    } else {
                        elements.get(a).cmp(elements.get(b))
                    }
                }
                SortKeys::Values(values, present) => match (present[a], present[b]) {
                    (false, false) => Ordering::Equal,
                    (false, true) => Ordering::Less,
                    (true, false) => Ordering::Greater,
                    (true, true) => collate(values.get(a), values.get(b), binary),
                },
                SortKeys::Elements => collate(elements.get(a), elements.get(b), binary),
            };
            if desc { ordering.reverse() } else { ordering }
        };
        let last = order.len() as i64 - 1;
        if by_pattern.is_some() && (start != 0 || end != last) {
            if end >= start {
                partial_sort(&mut order, start as usize, end as usize, &mut compare);
            }
        } else {
            order.sort_by(&mut compare);
        }
    }

    let picked = if end >= start {
        &order[start as usize..=end as usize]
    } else {
        &order[..0]
    };
    let gets: Vec<Pattern> = options.gets.iter().map(|p| Pattern::parse(p)).collect();
    let output_len = picked.len() * gets.len().max(1);
    match store {
        None => {
            ctx.reply.array_len(output_len);
            for &i in picked {
                let element = elements.get(i);
                if gets.is_empty() {
                    ctx.reply.bulk(element);
                }
                for pattern in &gets {
                    match lookup(ctx, &mut locked, pattern, element, &mut key_buf) {
                        Found::Element => ctx.reply.bulk(element),
                        Found::Value(v) => ctx.reply.bulk(&v),
                        Found::Missing => ctx.reply.null(),
                    }
                }
            }
        }
        Some(dest) => {
            let dest = &args[dest];
            let config = &ctx.client.config;
            let limits = ListLimits::new(config.list_max_listpack_size, config.list_compress_depth);
            let mut list = ListValue::new();
            for &i in picked {
                let element = elements.get(i);
                if gets.is_empty() {
                    list.push(element, false, limits);
                }
                for pattern in &gets {
                    // A missing value is stored as an empty string.
                    match lookup(ctx, &mut locked, pattern, element, &mut key_buf) {
                        Found::Element => list.push(element, false, limits),
                        Found::Value(v) => list.push(&v, false, limits),
                        Found::Missing => list.push(b"", false, limits),
                    }
                }
            }
            let db = ctx.db();
            let mut replaced = None;
            if output_len > 0 {
                // A write lookup first, as Valkey's setKey: an expired destination goes
                // (`expired`) and is created afresh (`new`).
                locked.db(db, dest).expire_if_due(dest, ctx.now_ms);
                let entry = ctx.new_entry(Value::List(list));
                replaced = locked.db(db, dest).insert(dest, entry);
                ctx.notify(class::LIST, "sortstore", dest);
                ctx.add_dirty(output_len as u64);
                crate::blocking::signal_key_added(ctx.server, db, dest);
                if crate::blocking::pending() {
                    crate::blocking::serve_ready(ctx.server, &mut locked, ctx.now_ms);
                }
            } else if locked.db(db, dest).delete(dest) {
                ctx.notify(class::GENERIC, "del", dest);
                ctx.add_dirty(1);
            }
            drop(locked);
            drop(replaced);
            ctx.reply.int(output_len as i64);
        }
    }
    Ok(())
}

/// ALPHA's comparison: Valkey's `strcoll` in the C.UTF-8 locale, which orders bytes and
/// stops at a zero byte, or all bytes (`binary`) when the result is stored.
fn collate(a: &[u8], b: &[u8], binary: bool) -> Ordering {
    if binary {
        a.cmp(b)
    } else {
        c_string(a).cmp(c_string(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn patterns_are_read_as_c_strings_and_keys_built_from_every_byte() {
        assert_eq!(Pattern::parse(b"#"), Pattern::Element);
        assert_eq!(Pattern::parse(b"#\0x"), Pattern::Element);
        assert_eq!(Pattern::parse(b"##"), Pattern::Nothing);
        assert_eq!(Pattern::parse(b"nosort"), Pattern::Nothing);
        assert_eq!(Pattern::parse(b""), Pattern::Nothing);
        assert_eq!(Pattern::parse(b"\0*"), Pattern::Nothing);
        let key = |prefix: &'static [u8], suffix: &'static [u8], field: Option<&'static [u8]>| {
            Pattern::Key {
                prefix,
                suffix,
                field,
            }
        };
        assert_eq!(Pattern::parse(b"w_*"), key(b"w_", b"", None));
        assert_eq!(Pattern::parse(b"a*b*c"), key(b"a", b"b*c", None));
        assert_eq!(Pattern::parse(b"h_*->f"), key(b"h_", b"", Some(b"f")));
        assert_eq!(
            Pattern::parse(b"h_*x->a->b"),
            key(b"h_", b"x", Some(b"a->b"))
        );
        // An arrow that ends the pattern (or its C string) stays in the key.
        assert_eq!(Pattern::parse(b"h_*->"), key(b"h_", b"->", None));
        assert_eq!(Pattern::parse(b"h_*->\0f"), key(b"h_", b"->\0f", None));
        assert_eq!(Pattern::parse(b"h_*->f\0g"), key(b"h_", b"", Some(b"f\0g")));
        // An arrow before the star is part of the prefix; one after a zero byte is not seen.
        assert_eq!(Pattern::parse(b"a->b*"), key(b"a->b", b"", None));
        assert_eq!(Pattern::parse(b"w*\0->f"), key(b"w", b"\0->f", None));
    }

    #[test]
    fn the_reported_destination_follows_valkeys_key_finder() {
        let dest = |line: &str| {
            let args = words(line);
            reported_destination(&args.as_slice())
        };
        assert_eq!(dest("sort k"), None);
        assert_eq!(dest("sort k store d"), Some(3));
        assert_eq!(dest("sort k STORE d BY x GET y"), Some(3));
        assert_eq!(dest("sort k store"), None);
        assert_eq!(dest("sort k by store"), None);
        assert_eq!(dest("sort k limit 1 store d"), None);
        assert_eq!(dest("sort k limit 0 1 store d"), Some(6));
        assert_eq!(dest("sort k asc store a store b"), Some(6));
        assert_eq!(dest("sort k store d store"), Some(3));
        // The destination itself is not skipped: a later LIMIT swallows the real STORE.
        assert_eq!(dest("sort k store limit store other"), Some(3));
    }

    #[test]
    fn touched_keys_add_the_real_destination_and_say_when_patterns_reach_other_keys() {
        let touched = |line: &str, readonly: bool| {
            let args = words(line);
            let mut keys = Vec::new();
            let proc = if readonly {
                touched_keys_ro
            } else {
                touched_keys
            };
            let complete = proc(&args.as_slice(), &mut |i, flags| keys.push((i, flags)));
            (keys, complete)
        };
        let (src, dst) = ((1, SOURCE_FLAGS), DESTINATION_FLAGS);
        assert_eq!(touched("sort", false), (vec![], true));
        assert_eq!(touched("sort k", false), (vec![src], true));
        assert_eq!(
            touched("sort k store d", false),
            (vec![src, (3, dst)], true)
        );
        assert_eq!(
            touched("sort k store limit store other", false),
            (vec![src, (3, dst), (5, dst)], true)
        );
        assert_eq!(touched("sort k by nosort get #", false), (vec![src], true));
        assert_eq!(touched("sort k get nostar", false), (vec![src], true));
        assert_eq!(touched("sort k by w_*", false), (vec![src], false));
        assert_eq!(touched("sort k get w_*->f", false), (vec![src], false));
        // A request refused before it reads anything touches only what its arguments name.
        assert_eq!(touched("sort k by w_* foo", false), (vec![src], true));
        assert_eq!(touched("sort_ro k store d", true), (vec![src], true));
        assert_eq!(touched("sort_ro k by w_*", true), (vec![src], false));
    }

    #[test]
    fn options_are_parsed_in_order_and_refusals_come_where_valkey_finds_them() {
        let parsed = |line: &str, readonly: bool, allowed: bool| {
            let args = words(line);
            parse(&args.as_slice(), readonly, &mut || allowed)
                .map(|o| (o.desc, o.alpha, o.offset, o.count, o.dont_sort, o.store))
                .map_err(|e| e.0.into_owned())
        };
        assert_eq!(
            parsed("sort k", false, false),
            Ok((false, false, 0, -1, false, None))
        );
        assert_eq!(
            parsed("sort k DESC asc alpha LIMIT 1 2 desc STORE d", false, false),
            Ok((true, true, 1, 2, false, Some(10)))
        );
        assert_eq!(
            parsed("sort k by nosort by w_*", false, true).map(|o| o.4),
            Ok(true)
        );
        let syntax = Err("ERR syntax error".to_string());
        let not_integer = Err("ERR value is not an integer or out of range".to_string());
        let by_denied =
            Err("ERR BY option of SORT denied due to insufficient ACL permissions.".to_string());
        let get_denied =
            Err("ERR GET option of SORT denied due to insufficient ACL permissions.".to_string());
        assert_eq!(parsed("sort k limit 0", false, true), syntax);
        assert_eq!(parsed("sort k limit 0 x", false, true), not_integer);
        assert_eq!(parsed("sort k store", false, true), syntax);
        assert_eq!(parsed("sort_ro k store d", true, true), syntax);
        assert_eq!(parsed("sort k foo limit a b", false, true), syntax);
        assert_eq!(parsed("sort k limit a b foo", false, true), not_integer);
        assert_eq!(
            parsed("sort k by nosort", false, false).map(|o| o.4),
            Ok(true)
        );
        assert_eq!(parsed("sort k by w_* limit a b", false, false), by_denied);
        assert_eq!(parsed("sort k limit a b by w_*", false, false), not_integer);
        assert_eq!(parsed("sort k get #", false, false), get_denied);
        assert_eq!(parsed("sort k get # by w_*", false, false), get_denied);
    }

    #[test]
    fn the_result_range_is_valkeys() {
        assert_eq!(result_range(0, -1, 3), (0, 2));
        assert_eq!(result_range(1, 1, 3), (1, 1));
        assert_eq!(result_range(-5, 2, 3), (0, 1));
        assert_eq!(result_range(1, -7, 3), (1, 2));
        assert_eq!(result_range(0, 0, 3), (0, -1));
        assert_eq!(result_range(3, 1, 3), (2, 1));
        assert_eq!(result_range(i64::MAX, i64::MAX, 3), (2, 1));
        assert_eq!(result_range(i64::MIN, i64::MIN, 3), (0, 2));
        assert_eq!(result_range(0, -1, 0), (-1, -2));
    }

    #[test]
    fn alpha_compares_bytes_up_to_a_zero_byte_unless_stored() {
        assert_eq!(collate(b"a\0b", b"a\0a", false), Ordering::Equal);
        assert_eq!(collate(b"a\0b", b"a\0a", true), Ordering::Greater);
        assert_eq!(collate(b"a", b"a\0", false), Ordering::Equal);
        assert_eq!(collate(b"a", b"a\0", true), Ordering::Less);
        assert_eq!(collate(b"\xff", b"z", false), Ordering::Greater);
        assert_eq!(collate(b"B", b"a", false), Ordering::Less);
    }
}
