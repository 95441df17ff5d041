//! Whether a user may run one command with its arguments: databases, the command itself,
//! its keys (with the access its key specs declare) and its channels, in Valkey's order.

use bytes::Bytes;
use ferrokv_store::glob::glob_match;

use super::user::{Selector, User};
use crate::spec::{category, for_each_command_key, key_flag};
use crate::table::TableEntry;

/// Why a command was refused; indexes point into the command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The command (or subcommand) is not allowed.
    Command,
    /// The key at this argument index is not allowed with the access the command needs.
    Key(usize),
    /// The channel (or pattern) at this argument index is not allowed.
    Channel(usize),
    /// A database is not allowed: the object is the argument naming it, or the command
    /// name when it is the selected database (or every database, for FLUSHALL).
    Db(Bytes),
}

impl Denial {
    /// Ranks errors when every selector refuses: the first selector's error stands unless
    /// a later one is more specific (a database error is the least, as in Valkey).
    fn rank(&self) -> (u8, usize) {
        match self {
            Denial::Db(_) => (0, 0),
            Denial::Command => (1, 0),
            Denial::Key(i) => (2, *i),
            Denial::Channel(i) => (4, *i),
        }
    }

    /// The `reason` of its ACL LOG entry.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Command => "command",
            Denial::Key(_) => "key",
            Denial::Channel(_) => "channel",
            Denial::Db(_) => "database",
        }
    }
}

/// Where the command runs, for the database checks.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub db: usize,
    pub databases: usize,
}

/// Checks `args` (a whole command) against every selector of `user`: allowed if one
/// selector allows it all.
pub fn check_command(
    user: &User,
    entry: &TableEntry,
    args: &[Bytes],
    place: Place,
) -> Result<(), Denial> {
    if user.unrestricted {
        return Ok(());
    }
    let mut worst = match check_selector(&user.root, entry, args, place) {
        Ok(()) => return Ok(()),
        Err(denial) => denial,
    };
    for selector in &user.selectors {
        match check_selector(selector, entry, args, place) {
            Ok(()) => return Ok(()),
            Err(denial) => {
                if denial.rank() > worst.rank() {
                    worst = denial;
                }
            }
        }
    }
    Err(worst)
}

/// Whether a selector of `user` that allows this command with these arguments may also read
/// every key (all keys, or a readable `*` pattern): SORT's BY and GET read keys named by the
/// data, which the key checks never see (Valkey's `ACLUserCheckCmdWithUnrestrictedKeyAccess`
/// with read access).
pub fn may_read_every_key(user: &User, entry: &TableEntry, args: &[Bytes], place: Place) -> bool {
    user.unrestricted
        || std::iter::once(&user.root)
            .chain(&user.selectors)
            .any(|sel| {
                (sel.all_keys || sel.keys.iter().any(|p| p.read && p.pattern[..] == *b"*"))
                    && check_selector(sel, entry, args, place).is_ok()
            })
}

fn check_selector(
    sel: &Selector,
    entry: &TableEntry,
    args: &[Bytes],
    place: Place,
) -> Result<(), Denial> {
    check_dbs(sel, entry, args, place)?;
    if !command_allowed(sel, entry, args) {
        return Err(Denial::Command);
    }
    if !sel.all_keys {
        let mut denied = None;
        for_each_command_key(entry.spec, args, |i, flags| {
            let flags = actual_key_flags(entry, args, flags);
            if denied.is_none() && !key_allowed(sel, &args[i], flags) {
                denied = Some(i);
            }
        });
        if let Some(i) = denied {
            return Err(Denial::Key(i));
        }
    }
    if !sel.all_channels {
        let (channels, patterns) = channel_args(entry, args);
        for i in channels {
            if !channel_allowed(sel, &args[i], false) {
                return Err(Denial::Channel(i));
            }
        }
        for i in patterns {
            if !channel_allowed(sel, &args[i], true) {
                return Err(Denial::Channel(i));
            }
        }
    }
    Ok(())
}

fn command_allowed(sel: &Selector, entry: &TableEntry, args: &[Bytes]) -> bool {
    if sel.allows_id(entry.id) {
        return true;
    }
    // `+select|0`: a first argument allowed for a command that is otherwise denied.
    entry.parent.is_none()
        && args.len() > 1
        && sel
            .first_args
            .iter()
            .find(|(id, _)| *id == entry.id)
            .is_some_and(|(_, allowed)| allowed.iter().any(|a| a.eq_ignore_ascii_case(&args[1])))
}

/// Key specs with `variable_flags` declare the widest access; the arguments tell what this
/// call does (SET without GET only writes, BITFIELD with only GETs only reads).
fn actual_key_flags(entry: &TableEntry, args: &[Bytes], flags: u32) -> u32 {
    if flags & key_flag::VARIABLE_FLAGS == 0 || entry.parent.is_some() {
        return flags;
    }
    let has_word = |from: usize, words: &[&str]| {
        args.iter()
            .skip(from)
            .any(|a| words.iter().any(|w| a.eq_ignore_ascii_case(w.as_bytes())))
    };
    match entry.spec.name {
        "set" if !has_word(3, &["get"]) => key_flag::OW | key_flag::UPDATE,
        "bitfield" if !has_word(2, &["set", "incrby"]) => key_flag::RO | key_flag::ACCESS,
        _ => flags,
    }
}

/// A key needs read permission when the command reads it and write permission when it
/// inserts, updates or deletes; a pattern grants only the access it was given.
fn key_allowed(sel: &Selector, key: &[u8], spec_flags: u32) -> bool {
    let need_read = spec_flags & key_flag::ACCESS != 0;
    let need_write = spec_flags & (key_flag::INSERT | key_flag::DELETE | key_flag::UPDATE) != 0;
    sel.keys.iter().any(|p| {
        (p.read || !need_read) && (p.write || !need_write) && glob_match(&p.pattern, key, false)
    })
}

/// A channel is matched against the patterns; a pattern a client subscribes to must be one
/// of the allowed patterns literally (a narrower glob could still match more).
pub fn channel_allowed(sel: &Selector, channel: &[u8], is_pattern: bool) -> bool {
    sel.all_channels
        || sel.channels.iter().any(|allowed| {
            if is_pattern {
                allowed == channel
            } else {
                glob_match(allowed, channel, false)
            }
        })
}

/// Whether `user` may use `channel` (a pattern when `is_pattern`): what PUBLISH, SUBSCRIBE
/// and friends need, and what a subscription must keep satisfying after SETUSER.
pub fn user_channel_allowed(user: &User, channel: &[u8], is_pattern: bool) -> bool {
    channel_allowed(&user.root, channel, is_pattern)
        || user
            .selectors
            .iter()
            .any(|s| channel_allowed(s, channel, is_pattern))
}

/// The argument indexes of the channels and of the channel patterns a command uses.
fn channel_args(
    entry: &TableEntry,
    args: &[Bytes],
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let none = 0..0;
    if entry.parent.is_some() {
        return (none.clone(), none);
    }
    match entry.spec.name {
        "publish" | "spublish" => (1..2.min(args.len()), none),
        "subscribe" | "ssubscribe" => (1..args.len(), none),
        "psubscribe" => (none, 1..args.len()),
        _ => (none.clone(), none),
    }
}

/// The database checks: the databases named in the arguments of SELECT, SWAPDB, MOVE and
/// COPY ... DB, then the selected database for commands that work on keys (FLUSHALL needs
/// every database). Valkey reports a named database before the selected one.
fn check_dbs(
    sel: &Selector,
    entry: &TableEntry,
    args: &[Bytes],
    place: Place,
) -> Result<(), Denial> {
    let Some(dbs) = &sel.dbs else {
        return Ok(());
    };
    let allowed = |db: i64| u32::try_from(db).is_ok_and(|db| dbs.contains(&db));
    let command_name = || Denial::Db(args[0].clone());
    let top = if entry.parent.is_some() {
        ""
    } else {
        entry.spec.name
    };
    let named: Vec<usize> = match top {
        "select" => vec![1],
        "swapdb" => vec![1, 2],
        "move" => vec![2],
        "copy" => (3..args.len().saturating_sub(1))
            .find(|&i| args[i].eq_ignore_ascii_case(b"db"))
            .map(|i| vec![i + 1])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    for i in named {
        if let Some(arg) = args.get(i) {
            check_named(arg, &allowed)?;
        }
    }
    if top == "flushall" && !(0..place.databases as i64).all(allowed) {
        return Err(command_name());
    }
    let spec = entry.spec;
    let uses_selected_db = !spec.key_specs.is_empty()
        || spec.acl_categories() & (category::KEYSPACE | category::READ | category::WRITE) != 0;
    if uses_selected_db && top != "swapdb" && !allowed(place.db as i64) {
        return Err(command_name());
    }
    Ok(())
}

/// A database index argument: not a number is left for the command to refuse.
fn check_named(arg: &Bytes, allowed: &impl Fn(i64) -> bool) -> Result<(), Denial> {
    match ferrokv_protocol::number::parse_i64(arg) {
        Some(db) if !allowed(db) => Err(Denial::Db(arg.clone())),
        _ => Ok(()),
    }
}
