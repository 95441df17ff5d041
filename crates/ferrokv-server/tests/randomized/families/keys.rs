//! Generic key commands over keys of every type: RENAME, COPY (across databases), MOVE,
//! the EXPIRE family with conditions (far-future and past times only), TYPE, OBJECT
//! ENCODING, DEL/EXISTS/TOUCH, SELECT between two databases, and RANDOMKEY by shape.

use super::inspect;
use crate::compare::Compare;
use crate::generator::{Cmd, Gen};

pub const PREFIX: &str = "g";
pub const KEYS: usize = 5;

pub fn reads(key: &str) -> Vec<Cmd> {
    vec![
        Cmd::new("EXPIRETIME")
            .arg(key)
            .compare(Compare::Approx { tolerance: 1 }),
        Cmd::new("OBJECT").arg("ENCODING").arg(key),
    ]
}

fn key(g: &mut Gen) -> Vec<u8> {
    g.key(PREFIX, KEYS)
}

/// A write that creates or extends a value of some type, so keys of every type exist.
fn create(g: &mut Gen, key: Vec<u8>) -> Cmd {
    match g.below(8) {
        0 => Cmd::new("SET").arg(key).arg(g.value()),
        1 => Cmd::new("SET").arg(key).arg(g.integer()),
        2 => Cmd::new("RPUSH").arg(key).args(g.members(3)),
        3 => Cmd::new("SADD").arg(key).args(g.members(3)),
        4 => Cmd::new("HSET").arg(key).arg(g.member()).arg(g.member()),
        5 => Cmd::new("ZADD").arg(key).arg(g.score()).arg(g.member()),
        6 => Cmd::new("PFADD").arg(key).args(g.members(3)),
        _ => Cmd::new("SET")
            .arg(key)
            .arg(g.value())
            .arg("EX")
            .arg(g.relative_seconds()),
    }
}

fn condition(g: &mut Gen, cmd: Cmd) -> Cmd {
    match g.below(8) {
        0 => cmd.arg("NX"),
        1 => cmd.arg("XX"),
        2 => cmd.arg("GT"),
        3 => cmd.arg("LT"),
        4 => cmd.arg("NX").arg("XX"),
        5 => cmd.arg("bogus"),
        _ => cmd,
    }
}

fn expire(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let cmd = match g.below(4) {
        0 => Cmd::new("EXPIRE").arg(key).arg(g.relative_seconds()),
        1 => Cmd::new("PEXPIRE").arg(key).arg(g.relative_millis()),
        2 => Cmd::new("EXPIREAT").arg(key).arg(g.unix_seconds()),
        _ => Cmd::new("PEXPIREAT").arg(key).arg(g.unix_millis()),
    };
    condition(g, cmd)
}

pub fn command(g: &mut Gen) -> Cmd {
    let k = key(g);
    match g.below(40) {
        0..=7 => create(g, k),
        8 | 9 => Cmd::new(g.pick(&["RENAME", "RENAMENX"])).arg(k).arg(key(g)),
        10 | 11 => {
            let mut cmd = Cmd::new("COPY").arg(k).arg(key(g));
            if g.chance(0.3) {
                cmd = cmd.arg("DB").arg(g.pick(&["0", "1", "1", "16", "-1", "x"]));
            }
            if g.chance(0.4) {
                cmd = cmd.arg("REPLACE");
            }
            cmd
        }
        12 => Cmd::new("MOVE")
            .arg(k)
            .arg(g.pick(&["0", "1", "1", "16", "x"])),
        13 => Cmd::new("SELECT").arg(g.pick(&["0", "0", "0", "1"])),
        14..=17 => expire(g, k),
        18 => Cmd::new("TTL")
            .arg(k)
            .compare(Compare::Approx { tolerance: 1 }),
        19 => Cmd::new("PTTL")
            .arg(k)
            .compare(Compare::Approx { tolerance: 1500 }),
        20 => Cmd::new("EXPIRETIME")
            .arg(k)
            .compare(Compare::Approx { tolerance: 1 }),
        21 => Cmd::new("PEXPIRETIME")
            .arg(k)
            .compare(Compare::Approx { tolerance: 1500 }),
        22 => Cmd::new("PERSIST").arg(k),
        23 | 24 => Cmd::new("TYPE").arg(k),
        25 | 26 => Cmd::new("OBJECT").arg("ENCODING").arg(k),
        27 => Cmd::new(g.pick(&["DEL", "UNLINK"])).arg(k).arg(key(g)),
        28 => Cmd::new(g.pick(&["EXISTS", "TOUCH"]))
            .arg(k)
            .arg(key(g))
            .arg(key(g)),
        29 => Cmd::new("DBSIZE"),
        30 => Cmd::new("KEYS")
            .arg(g.pick(&["*", "g[0-2]", "g?", "*1"]))
            .compare(Compare::SORTED),
        31 => Cmd::new("SCAN")
            .arg("0")
            .arg("COUNT")
            .arg("1000")
            .arg_if(g.chance(0.3), "TYPE")
            .arg_if(g.chance(0.3), "string")
            .compare(Compare::SORTED),
        32 => Cmd::new("RANDOMKEY").compare(Compare::Shape),
        33 => inspect(g, &k),
        34 => Cmd::new("OBJECT")
            .arg(g.pick(&["REFCOUNT", "FREQ", "BOGUS"]))
            .arg(k),
        35 => Cmd::new("GET").arg(k),
        36 => Cmd::new("RENAME").arg(&k).arg(&k),
        37 => Cmd::new("COPY").arg(&k).arg(&k),
        _ => match g.below(4) {
            0 => Cmd::new("RENAME").arg(k),
            1 => Cmd::new("EXPIRE").arg(k),
            2 => Cmd::new("MOVE").arg(k),
            _ => Cmd::new("COPY").arg(k),
        },
    }
}
