//! The shape of one entry in the command table.
//!
//! Each command is a `const` [`CommandSpec`] declared next to its implementation (one file per
//! command family under `cmd/`). Dispatch, `COMMAND` replies, key extraction for locking, ACL
//! categories and, later, cluster slot routing all read these entries; there is no second list.

use bytes::Bytes;

use crate::context::{CmdResult, Ctx};

pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// Command flags, in the order `COMMAND INFO` lists them.
pub mod flag {
    pub const WRITE: u64 = 1 << 0;
    pub const READONLY: u64 = 1 << 1;
    pub const DENYOOM: u64 = 1 << 2;
    pub const MODULE: u64 = 1 << 3;
    pub const ADMIN: u64 = 1 << 4;
    pub const PUBSUB: u64 = 1 << 5;
    pub const NOSCRIPT: u64 = 1 << 6;
    pub const BLOCKING: u64 = 1 << 7;
    pub const LOADING: u64 = 1 << 8;
    pub const STALE: u64 = 1 << 9;
    pub const SKIP_MONITOR: u64 = 1 << 10;
    pub const SKIP_SLOWLOG: u64 = 1 << 11;
    pub const ASKING: u64 = 1 << 12;
    pub const FAST: u64 = 1 << 13;
    pub const NO_AUTH: u64 = 1 << 14;
    pub const MAY_REPLICATE: u64 = 1 << 15;
    pub const SENTINEL: u64 = 1 << 16;
    pub const ONLY_SENTINEL: u64 = 1 << 17;
    pub const NO_MANDATORY_KEYS: u64 = 1 << 18;
    pub const PROTECTED: u64 = 1 << 19;
    pub const MODULE_GETKEYS: u64 = 1 << 20;
    pub const MODULE_NO_CLUSTER: u64 = 1 << 21;
    pub const NO_ASYNC_LOADING: u64 = 1 << 22;
    pub const NO_MULTI: u64 = 1 << 23;
    pub const MOVABLE_KEYS: u64 = 1 << 24;
    pub const ALLOW_BUSY: u64 = 1 << 25;
    pub const TOUCHES_ARBITRARY_KEYS: u64 = 1 << 26;

    /// Names as `COMMAND INFO` prints them, indexed by bit.
    pub const NAMES: &[&str] = &[
        "write",
        "readonly",
        "denyoom",
        "module",
        "admin",
        "pubsub",
        "noscript",
        "blocking",
        "loading",
        "stale",
        "skip_monitor",
        "skip_commandlog",
        "asking",
        "fast",
        "no_auth",
        "may_replicate",
        "sentinel",
        "only_sentinel",
        "no_mandatory_keys",
        "protected",
        "module_getkeys",
        "module_no_cluster",
        "no_async_loading",
        "no_multi",
        "movablekeys",
        "allow_busy",
        "touches_arbitrary_keys",
    ];
}

/// ACL categories, in the order `COMMAND INFO` and `ACL CAT` list them.
pub mod category {
    pub const KEYSPACE: u64 = 1 << 0;
    pub const READ: u64 = 1 << 1;
    pub const WRITE: u64 = 1 << 2;
    pub const SET: u64 = 1 << 3;
    pub const SORTEDSET: u64 = 1 << 4;
    pub const LIST: u64 = 1 << 5;
    pub const HASH: u64 = 1 << 6;
    pub const STRING: u64 = 1 << 7;
    pub const BITMAP: u64 = 1 << 8;
    pub const HYPERLOGLOG: u64 = 1 << 9;
    pub const GEO: u64 = 1 << 10;
    pub const STREAM: u64 = 1 << 11;
    pub const PUBSUB: u64 = 1 << 12;
    pub const ADMIN: u64 = 1 << 13;
    pub const FAST: u64 = 1 << 14;
    pub const SLOW: u64 = 1 << 15;
    pub const BLOCKING: u64 = 1 << 16;
    pub const DANGEROUS: u64 = 1 << 17;
    pub const CONNECTION: u64 = 1 << 18;
    pub const TRANSACTION: u64 = 1 << 19;
    pub const SCRIPTING: u64 = 1 << 20;

    pub const NAMES: &[&str] = &[
        "keyspace",
        "read",
        "write",
        "set",
        "sortedset",
        "list",
        "hash",
        "string",
        "bitmap",
        "hyperloglog",
        "geo",
        "stream",
        "pubsub",
        "admin",
        "fast",
        "slow",
        "blocking",
        "dangerous",
        "connection",
        "transaction",
        "scripting",
    ];
}

/// Key spec flags, in the order `COMMAND INFO` lists them.
pub mod key_flag {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;

    pub const NAMES: &[&str] = &[
        "RO",
        "RW",
        "OW",
        "RM",
        "access",
        "update",
        "insert",
        "delete",
        "not_key",
        "incomplete",
        "variable_flags",
    ];
}

/// Where the search for a command's keys begins.
#[derive(Debug, Clone, Copy)]
pub enum BeginSearch {
    /// At a fixed argument index.
    Index(i32),
    /// After `keyword`, searched from argument `start_from` (negative: from the end, backwards).
    Keyword {
        keyword: &'static str,
        start_from: i32,
    },
    Unknown,
}

/// How keys are found once the search has begun.
#[derive(Debug, Clone, Copy)]
pub enum FindKeys {
    /// Keys up to `last_key` (relative to the begin index; negative counts from the end),
    /// every `step` arguments; `limit` > 1 means "a 1/limit fraction of the remaining args".
    Range {
        last_key: i32,
        step: i32,
        limit: i32,
    },
    /// The argument at `key_num_idx` (relative) gives the number of keys, starting at
    /// `first_key` (relative), every `step`.
    KeyNum {
        key_num_idx: i32,
        first_key: i32,
        step: i32,
    },
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub flags: u32,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

impl KeySpec {
    /// The common case: one key at `index`.
    pub const fn single(index: i32, flags: u32) -> KeySpec {
        KeySpec {
            flags,
            begin: BeginSearch::Index(index),
            find: FindKeys::Range {
                last_key: 0,
                step: 1,
                limit: 0,
            },
        }
    }

    /// Keys from `index` to the end of the arguments, every `step`.
    pub const fn to_end(index: i32, step: i32, flags: u32) -> KeySpec {
        KeySpec {
            flags,
            begin: BeginSearch::Index(index),
            find: FindKeys::Range {
                last_key: -1,
                step,
                limit: 0,
            },
        }
    }
}

/// One command or subcommand.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name; for a subcommand, its own name (the full name is `parent|name`).
    pub name: &'static str,
    /// Positive: exact argument count including the name; negative: at least that many.
    pub arity: i32,
    pub flags: u64,
    /// ACL categories declared for the command; those implied by its flags are added by
    /// [`CommandSpec::acl_categories`].
    pub categories: u64,
    pub key_specs: &'static [KeySpec],
    pub tips: &'static [&'static str],
    /// Notes shown with the key specs in COMMAND INFO, parallel to `key_specs` (an empty
    /// string, or a missing element, means no note).
    pub key_notes: &'static [&'static str],
    /// COMMAND DOCS fields.
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub handler: Option<Handler>,
    pub subcommands: &'static [CommandSpec],
    /// It may run a Lua script (EVAL, FCALL ..., EXEC of a transaction holding one): the
    /// connection runs it on a stack of its own (`scripting::fiber`). Not a Valkey flag,
    /// so COMMAND does not show it.
    pub runs_lua: bool,
    /// Finds the keys when the key specs cannot (`unknown` specs): SORT's STORE
    /// destination and the keys its BY/GET patterns reach.
    pub keys_proc: Option<KeysProc>,
}

/// A command's arguments, whatever holds them (`Bytes` when a command runs, borrowed slices
/// when a pipeline's keys are prefetched), for a [`KeysProc`].
pub trait ArgList {
    fn argc(&self) -> usize;
    fn arg(&self, i: usize) -> &[u8];
}

impl<A: AsRef<[u8]>> ArgList for &[A] {
    fn argc(&self) -> usize {
        self.len()
    }
    fn arg(&self, i: usize) -> &[u8] {
        self[i].as_ref()
    }
}

/// Receives each key found: its argument index and its key spec flags.
pub type KeyFound<'a> = &'a mut dyn FnMut(usize, u32);

/// How the keys of a command with `unknown` key specs are found, by reading its arguments
/// (Valkey's `getkeys_proc`, which it falls back to when a spec cannot place the keys).
#[derive(Clone, Copy)]
pub struct KeysProc {
    /// The keys COMMAND GETKEYS reports, found exactly as Valkey's procedure finds them.
    pub reported: fn(&dyn ArgList, KeyFound),
    /// Every argument that names a key the command may touch, with its flags: what the
    /// ACL checks, the shard locks and WATCH go by. A superset of `reported` where Valkey's
    /// procedure and the command's own parsing disagree. Returns false when the command may
    /// also reach keys that no argument names (SORT's BY/GET patterns): it then needs every
    /// shard. `None`: the reported keys, and no others.
    pub touched: Option<fn(&dyn ArgList, KeyFound) -> bool>,
}

impl KeysProc {
    /// A procedure whose reported keys are exactly the keys the command touches.
    pub const fn exact(reported: fn(&dyn ArgList, KeyFound)) -> KeysProc {
        KeysProc {
            reported,
            touched: None,
        }
    }
}

impl CommandSpec {
    pub const fn new(name: &'static str, arity: i32, group: &'static str) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags: 0,
            categories: 0,
            key_specs: &[],
            tips: &[],
            key_notes: &[],
            group,
            since: "1.0.0",
            summary: "",
            complexity: "",
            handler: None,
            subcommands: &[],
            runs_lua: false,
            keys_proc: None,
        }
    }

    pub const fn flags(self, flags: u64) -> Self {
        CommandSpec { flags, ..self }
    }
    pub const fn categories(self, categories: u64) -> Self {
        CommandSpec { categories, ..self }
    }
    pub const fn keys(self, key_specs: &'static [KeySpec]) -> Self {
        CommandSpec { key_specs, ..self }
    }
    pub const fn tips(self, tips: &'static [&'static str]) -> Self {
        CommandSpec { tips, ..self }
    }
    pub const fn key_notes(self, key_notes: &'static [&'static str]) -> Self {
        CommandSpec { key_notes, ..self }
    }
    pub const fn doc(
        self,
        since: &'static str,
        summary: &'static str,
        complexity: &'static str,
    ) -> Self {
        CommandSpec {
            since,
            summary,
            complexity,
            ..self
        }
    }
    pub const fn handler(self, handler: Handler) -> Self {
        CommandSpec {
            handler: Some(handler),
            ..self
        }
    }
    pub const fn keys_proc(self, keys_proc: KeysProc) -> Self {
        CommandSpec {
            keys_proc: Some(keys_proc),
            ..self
        }
    }
    pub const fn runs_lua(self) -> Self {
        CommandSpec {
            runs_lua: true,
            ..self
        }
    }
    pub const fn subcommands(self, subcommands: &'static [CommandSpec]) -> Self {
        CommandSpec {
            subcommands,
            ..self
        }
    }

    /// Declared categories plus those Valkey derives from the flags.
    pub fn acl_categories(&self) -> u64 {
        use category as c;
        let mut cats = self.categories;
        if self.flags & flag::WRITE != 0 {
            cats |= c::WRITE;
        }
        if self.flags & flag::READONLY != 0 && cats & c::SCRIPTING == 0 {
            cats |= c::READ;
        }
        if self.flags & flag::ADMIN != 0 {
            cats |= c::ADMIN | c::DANGEROUS;
        }
        if self.flags & flag::PUBSUB != 0 {
            cats |= c::PUBSUB;
        }
        if self.flags & flag::FAST != 0 {
            cats |= c::FAST;
        }
        if self.flags & flag::BLOCKING != 0 {
            cats |= c::BLOCKING;
        }
        if cats & c::FAST == 0 {
            cats |= c::SLOW;
        }
        cats
    }

    /// Flags as COMMAND INFO shows them, with `movablekeys` derived from the key specs.
    pub fn effective_flags(&self) -> u64 {
        let (_, movable) = self.legacy_range();
        if movable {
            self.flags | flag::MOVABLE_KEYS
        } else {
            self.flags
        }
    }

    /// The (first, last, step) key range of pre-7.0 COMMAND output, derived from the key specs,
    /// and whether the keys can only be found by parsing the arguments (`movablekeys`).
    pub fn legacy_range(&self) -> ((i32, i32, i32), bool) {
        let specs = self.key_specs;
        if specs.is_empty() {
            return ((0, 0, 0), false);
        }
        if let [only] = specs
            && let (BeginSearch::Index(pos), FindKeys::Range { last_key, step, .. }) =
                (only.begin, only.find)
        {
            let last = if last_key >= 0 {
                pos + last_key
            } else {
                last_key
            };
            return ((pos, last, step), only.flags & key_flag::INCOMPLETE != 0);
        }
        let mut movable = false;
        let mut first = i32::MAX;
        let mut last: i32 = 0;
        let mut prev_last = 0;
        for spec in specs {
            let (BeginSearch::Index(pos), FindKeys::Range { last_key, step, .. }) =
                (spec.begin, spec.find)
            else {
                movable = true;
                continue;
            };
            if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
                movable = true;
                continue;
            }
            if spec.flags & key_flag::INCOMPLETE != 0 {
                movable = true;
            }
            first = first.min(pos);
            let abs_last = if last_key >= 0 {
                last_key + pos
            } else {
                last_key
            };
            // Compared as unsigned so that "to the end" (negative) wins, as Valkey does.
            if (abs_last as u32) > (last as u32) {
                last = abs_last;
            }
            prev_last = last;
        }
        if first == i32::MAX {
            return ((0, 0, 0), movable);
        }
        ((first, last, 1), movable)
    }
}

/// Calls `found(index, flags)` for each argument of `args` that names a key the command may
/// touch: by its keys procedure when it has one, else by its key specs. Returns false when
/// the command may also reach keys no argument names (only a keys procedure says so; a
/// command whose key specs are incomplete is the caller's to judge).
pub fn for_each_command_key<A: AsRef<[u8]>>(
    spec: &CommandSpec,
    args: &[A],
    mut found: impl FnMut(usize, u32),
) -> bool {
    match spec.keys_proc {
        Some(KeysProc {
            touched: Some(touched),
            ..
        }) => touched(&args, &mut found),
        Some(KeysProc { reported, .. }) => {
            reported(&args, &mut found);
            true
        }
        None => {
            for_each_key(spec.key_specs, args, found);
            true
        }
    }
}

/// The argument indexes of [`for_each_command_key`].
pub fn command_key_positions<A: AsRef<[u8]>>(spec: &CommandSpec, args: &[A]) -> Vec<usize> {
    let mut keys = Vec::new();
    for_each_command_key(spec, args, |i, _| keys.push(i));
    keys
}

/// The argument indexes of the keys in `args` according to `specs`, as COMMAND GETKEYS and
/// the locking in dispatch find them. Out-of-range or malformed specs yield what they can.
pub fn key_positions(specs: &[KeySpec], args: &[Bytes]) -> Vec<usize> {
    let mut keys = Vec::new();
    for_each_key(specs, args, |i, _| keys.push(i));
    keys
}

/// Calls `found(index, spec_flags)` for each key in `args` according to `specs` (the ACL
/// check needs each key's access flags).
pub fn for_each_key<A: AsRef<[u8]>>(
    specs: &[KeySpec],
    args: &[A],
    mut found: impl FnMut(usize, u32),
) {
    let argc = args.len() as i32;
    for spec in specs {
        if spec.flags & key_flag::NOT_KEY != 0 {
            continue;
        }
        let begin = match spec.begin {
            BeginSearch::Index(i) => i,
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => {
                let found = if start_from >= 0 {
                    (start_from..argc).find(|&i| {
                        args[i as usize]
                            .as_ref()
                            .eq_ignore_ascii_case(keyword.as_bytes())
                    })
                } else {
                    let start = argc + start_from;
                    (1..=start).rev().find(|&i| {
                        args[i as usize]
                            .as_ref()
                            .eq_ignore_ascii_case(keyword.as_bytes())
                    })
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            BeginSearch::Unknown => continue,
        };
        if begin >= argc {
            continue;
        }
        match spec.find {
            FindKeys::Range {
                last_key,
                step,
                limit,
            } => {
                let last = if last_key >= 0 {
                    begin + last_key
                } else if limit <= 1 {
                    argc + last_key
                } else {
                    begin + (argc - begin) / limit + last_key
                };
                let step = step.max(1);
                let mut i = begin;
                while i <= last && i < argc {
                    found(i as usize, spec.flags);
                    i += step;
                }
            }
            FindKeys::KeyNum {
                key_num_idx,
                first_key,
                step,
            } => {
                let idx = begin + key_num_idx;
                let Some(n) = args
                    .get(idx as usize)
                    .and_then(|a| ferrokv_protocol::number::parse_i64(a.as_ref()))
                    .filter(|&n| n >= 0)
                else {
                    continue;
                };
                let first = begin + first_key;
                let step = step.max(1);
                for k in 0..n {
                    let i = first as i64 + k * step as i64;
                    if i >= argc as i64 {
                        break;
                    }
                    found(i as usize, spec.flags);
                }
            }
            FindKeys::Unknown => {}
        }
    }
}
