//! One generator per data type. Each draws mostly its own commands over its own few keys,
//! with a few foreign writes (another type on the same keys) so WRONGTYPE happens both ways.

mod hashes;
mod hyperloglog;
mod keys;
mod lists;
mod sets;
mod strings;
mod zsets;

use crate::compare::Compare;
use crate::generator::{Cmd, Gen};

/// A family's key prefix, its number of keys, and its whole-value reads of one key.
type KeySpace = (&'static str, usize, fn(&str) -> Vec<Cmd>);

#[derive(Clone, Copy, Debug)]
pub enum Family {
    Strings,
    Lists,
    Hashes,
    Sets,
    SortedSets,
    HyperLogLog,
    Keys,
}

impl Family {
    pub fn command(self, g: &mut Gen) -> Cmd {
        match self {
            Family::Strings => strings::command(g),
            Family::Lists => lists::command(g),
            Family::Hashes => hashes::command(g),
            Family::Sets => sets::command(g),
            Family::SortedSets => zsets::command(g),
            Family::HyperLogLog => hyperloglog::command(g),
            Family::Keys => keys::command(g),
        }
    }

    /// Mixed into the seed so each family draws a different stream from the same seed.
    pub fn salt(self) -> u64 {
        self as u64 * 0x0100_0000_01b3
    }

    /// Deterministic reads after the random part: the whole dataset, so a divergence that
    /// no random read happened to catch still shows.
    pub fn final_reads(self) -> Vec<Cmd> {
        let (prefix, count, reads): KeySpace = match self {
            Family::Strings => (strings::PREFIX, strings::KEYS, strings::reads),
            Family::Lists => (lists::PREFIX, lists::KEYS, lists::reads),
            Family::Hashes => (hashes::PREFIX, hashes::KEYS, hashes::reads),
            Family::Sets => (sets::PREFIX, sets::KEYS, sets::reads),
            Family::SortedSets => (zsets::PREFIX, zsets::KEYS, zsets::reads),
            Family::HyperLogLog => (hyperloglog::PREFIX, hyperloglog::KEYS, hyperloglog::reads),
            Family::Keys => (keys::PREFIX, keys::KEYS, keys::reads),
        };
        let mut all = vec![
            Cmd::new("SELECT").arg("0"),
            Cmd::new("DBSIZE"),
            Cmd::new("KEYS").arg("*").compare(Compare::SORTED),
        ];
        for i in 0..count {
            let key = format!("{prefix}{i}");
            all.push(Cmd::new("TYPE").arg(&key));
            all.push(Cmd::new("OBJECT").arg("ENCODING").arg(&key));
            // The family's own whole-value reads (WRONGTYPE on a foreign value, compared too).
            all.extend(reads(&key));
        }
        all
    }
}

/// A write of some other type (or a delete) on `key`, so the family's commands meet
/// WRONGTYPE and missing keys, and other families' commands meet this family's values.
pub fn foreign(g: &mut Gen, key: &[u8]) -> Cmd {
    let member = g.member();
    match g.below(7) {
        0 => Cmd::new("SET").arg(key).arg(member),
        1 => Cmd::new("RPUSH").arg(key).arg(member),
        2 => Cmd::new("SADD").arg(key).arg(member),
        3 => Cmd::new("HSET").arg(key).arg(member).arg("v"),
        4 => Cmd::new("ZADD").arg(key).arg("1").arg(member),
        5 => Cmd::new("PFADD").arg(key).arg(member),
        _ => Cmd::new("DEL").arg(key),
    }
}

/// Reads that apply to a key of any type: TYPE, OBJECT ENCODING, EXISTS.
pub fn inspect(g: &mut Gen, key: &[u8]) -> Cmd {
    match g.below(3) {
        0 => Cmd::new("TYPE").arg(key),
        1 => Cmd::new("EXISTS").arg(key),
        _ => Cmd::new("OBJECT").arg("ENCODING").arg(key),
    }
}
