//! Sets: membership, the algebra and its STORE forms, SMOVE, SINTERCARD, and the random
//! commands compared by shape. SPOP without a count (or with a count below the size) removes
//! a random member, which would put the two servers out of step, so SPOP only ever asks for
//! more members than a set holds: that pops all of them, deterministically.

use super::{foreign, inspect};
use crate::compare::Compare;
use crate::generator::{Cmd, Gen};

pub const PREFIX: &str = "t";
pub const KEYS: usize = 4;

pub fn reads(key: &str) -> Vec<Cmd> {
    vec![
        Cmd::new("SCARD").arg(key),
        Cmd::new("SMEMBERS").arg(key).compare(Compare::SORTED),
    ]
}

fn key(g: &mut Gen) -> Vec<u8> {
    g.key(PREFIX, KEYS)
}

/// Set members lean on integers, so intsets form and convert.
fn member(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.4) {
        g.range(-2, 15).to_string().into_bytes()
    } else {
        g.member()
    }
}

fn members(g: &mut Gen, max: usize) -> Vec<Vec<u8>> {
    (0..1 + g.below(max)).map(|_| member(g)).collect()
}

fn keys(g: &mut Gen, max: usize) -> Vec<Vec<u8>> {
    (0..1 + g.below(max)).map(|_| key(g)).collect()
}

pub fn command(g: &mut Gen) -> Cmd {
    let k = key(g);
    match g.below(40) {
        0..=6 => Cmd::new("SADD").arg(k).args(members(g, 4)),
        7 | 8 => Cmd::new("SREM").arg(k).args(members(g, 3)),
        9 => Cmd::new("SCARD").arg(k),
        10 => Cmd::new("SISMEMBER").arg(k).arg(member(g)),
        11 => Cmd::new("SMISMEMBER").arg(k).args(members(g, 3)),
        12 | 13 => Cmd::new("SMEMBERS").arg(k).compare(Compare::SORTED),
        14 => Cmd::new("SMOVE").arg(k).arg(key(g)).arg(member(g)),
        15 | 16 => Cmd::new(g.pick(&["SINTER", "SUNION", "SDIFF"]))
            .arg(k)
            .args(keys(g, 3))
            .compare(Compare::SORTED),
        17 | 18 => Cmd::new(g.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]))
            .arg(k)
            .args(keys(g, 3)),
        19 => sintercard(g),
        20 => match g.below(3) {
            0 => Cmd::new("SRANDMEMBER").arg(k).compare(Compare::Shape),
            1 => Cmd::new("SRANDMEMBER")
                .arg(k)
                .arg("1000")
                .compare(Compare::SORTED),
            _ => Cmd::new("SRANDMEMBER")
                .arg(k)
                .arg(g.count())
                .compare(Compare::Shape),
        },
        21 => Cmd::new("SPOP")
            .arg(k)
            .arg(g.pick(&["1000", "0", "-1", "abc", "9223372036854775807"]))
            .compare(Compare::SORTED),
        22 => Cmd::new("SSCAN")
            .arg(k)
            .arg("0")
            .arg("COUNT")
            .arg("1000")
            .compare(Compare::SORTED),
        23 | 24 => Cmd::new("OBJECT").arg("ENCODING").arg(k),
        25 => inspect(g, &k),
        26 => foreign(g, &k),
        27 => Cmd::new("SADD")
            .arg(k)
            .args((0..g.range(2, 7)).map(|i| i.to_string())),
        28 => Cmd::new("SADD")
            .arg(k)
            .arg("w".repeat(g.range(6, 10) as usize)),
        29 => Cmd::new("SMEMBERS").arg(k).compare(Compare::SORTED),
        30 => Cmd::new("SREM").arg(k).arg("0").arg("1").arg("2").arg("a"),
        31 => Cmd::new("SISMEMBER")
            .arg(k)
            .arg(g.pick(&["1", "01", "-0", "a"])),
        _ => wrong_arity(g, k),
    }
}

fn sintercard(g: &mut Gen) -> Cmd {
    let n = 1 + g.below(3);
    let numkeys = if g.chance(0.9) {
        n.to_string()
    } else {
        g.pick(&["0", "-1", "9", "x"]).to_string()
    };
    let mut cmd = Cmd::new("SINTERCARD").arg(numkeys);
    for _ in 0..n {
        cmd = cmd.arg(key(g));
    }
    if g.chance(0.4) {
        cmd = cmd.arg("LIMIT").arg(g.pick(&["0", "1", "2", "-1", "x"]));
    }
    cmd
}

fn wrong_arity(g: &mut Gen, key: Vec<u8>) -> Cmd {
    match g.below(5) {
        0 => Cmd::new("SADD").arg(key),
        1 => Cmd::new("SISMEMBER").arg(key),
        2 => Cmd::new("SMOVE").arg(&key).arg(&key),
        3 => Cmd::new("SINTERSTORE").arg(key),
        _ => Cmd::new("SPOP").arg(key).arg("1").arg("2"),
    }
}
