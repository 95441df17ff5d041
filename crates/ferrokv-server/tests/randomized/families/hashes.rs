//! Hashes: field writes and reads, counters, whole-hash reads (sorted: the hashtable order is
//! the implementation's), and per-field expiry with far-future or past times only, so no
//! field expires while the two servers run the same sequence.

use super::{foreign, inspect};
use crate::compare::Compare;
use crate::generator::{Cmd, Gen};

pub const PREFIX: &str = "h";
pub const KEYS: usize = 4;

pub fn reads(key: &str) -> Vec<Cmd> {
    vec![
        Cmd::new("HLEN").arg(key),
        Cmd::new("HGETALL").arg(key).compare(Compare::SORTED_PAIRS),
    ]
}

fn key(g: &mut Gen) -> Vec<u8> {
    g.key(PREFIX, KEYS)
}

/// Field names: a short alphabet so fields collide, plus the member alphabet's odd cases.
fn field(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.7) {
        g.pick(&["f1", "f2", "f3", "f4", "f5", "f6", "1", "2"])
            .as_bytes()
            .to_vec()
    } else {
        g.member()
    }
}

/// `FIELDS numfields f...`, with a wrong count now and then.
fn fields_block(g: &mut Gen, cmd: Cmd) -> Cmd {
    let n = 1 + g.below(3);
    let numfields = if g.chance(0.93) {
        n.to_string()
    } else {
        g.pick(&["0", "-1", "4", "abc", "9223372036854775807"])
            .to_string()
    };
    let mut cmd = cmd
        .arg(if g.chance(0.97) { "FIELDS" } else { "FIELD" })
        .arg(numfields);
    for _ in 0..n {
        cmd = cmd.arg(field(g));
    }
    cmd
}

pub fn command(g: &mut Gen) -> Cmd {
    let k = key(g);
    match g.below(50) {
        0..=5 => {
            let mut cmd = Cmd::new(if g.chance(0.8) { "HSET" } else { "HMSET" }).arg(k);
            for _ in 0..1 + g.below(3) {
                cmd = cmd.arg(field(g)).arg(g.member());
            }
            if g.chance(0.03) {
                cmd = cmd.arg(field(g));
            }
            cmd
        }
        6 => Cmd::new("HSETNX").arg(k).arg(field(g)).arg(g.member()),
        7..=9 => Cmd::new("HGET").arg(k).arg(field(g)),
        10 => Cmd::new("HMGET").arg(k).arg(field(g)).arg(field(g)),
        11 | 12 => {
            let mut cmd = Cmd::new("HDEL").arg(k);
            for _ in 0..1 + g.below(2) {
                cmd = cmd.arg(field(g));
            }
            cmd
        }
        13 => Cmd::new("HLEN").arg(k),
        14 => Cmd::new("HSTRLEN").arg(k).arg(field(g)),
        15 => Cmd::new("HEXISTS").arg(k).arg(field(g)),
        16 => Cmd::new("HKEYS").arg(k).compare(Compare::SORTED),
        17 => Cmd::new("HVALS").arg(k).compare(Compare::SORTED),
        18 | 19 => Cmd::new("HGETALL").arg(k).compare(Compare::SORTED_PAIRS),
        20 | 21 => Cmd::new("HINCRBY").arg(k).arg(field(g)).arg(g.integer()),
        22 | 23 => Cmd::new("HINCRBYFLOAT").arg(k).arg(field(g)).arg(g.float()),
        24 => hrandfield(g, k),
        25 => Cmd::new("HSCAN")
            .arg(k)
            .arg("0")
            .arg("COUNT")
            .arg("1000")
            .compare(Compare::SORTED_PAIRS),
        26..=28 => hexpire(g, k),
        29 | 30 => {
            let name = g.pick(&["HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME"]);
            let tolerance = if name.starts_with("HP") { 1500 } else { 1 };
            fields_block(g, Cmd::new(name).arg(k)).compare(Compare::Approx { tolerance })
        }
        31 => fields_block(g, Cmd::new("HPERSIST").arg(k)),
        32 | 33 => hsetex(g, k),
        34 => hgetex(g, k),
        35 => fields_block(g, Cmd::new("HGETDEL").arg(k)),
        36 | 37 => Cmd::new("OBJECT").arg("ENCODING").arg(k),
        38 => inspect(g, &k),
        39 => foreign(g, &k),
        40 => Cmd::new("HSET")
            .arg(k)
            .arg(field(g))
            .arg("v".repeat(g.range(5, 12) as usize)),
        41 => Cmd::new("TTL")
            .arg(k)
            .compare(Compare::Approx { tolerance: 1 }),
        42 => Cmd::new("HDEL").arg(k).arg("f1").arg("f2").arg("f3"),
        43 => Cmd::new("HGETALL").arg(k).compare(Compare::SORTED_PAIRS),
        _ => wrong_arity(g, k),
    }
}

fn hrandfield(g: &mut Gen, key: Vec<u8>) -> Cmd {
    match g.below(4) {
        0 => Cmd::new("HRANDFIELD").arg(key).compare(Compare::Shape),
        // A count past the size returns every field: comparable once sorted.
        1 => Cmd::new("HRANDFIELD")
            .arg(key)
            .arg("1000")
            .arg("WITHVALUES")
            .compare(Compare::SORTED_PAIRS),
        _ => Cmd::new("HRANDFIELD")
            .arg(key)
            .arg(g.count())
            .arg_if(g.chance(0.5), "WITHVALUES")
            .compare(Compare::Shape),
    }
}

fn condition(g: &mut Gen, cmd: Cmd) -> Cmd {
    match g.below(6) {
        0 => cmd.arg("NX"),
        1 => cmd.arg("XX"),
        2 => cmd.arg("GT"),
        3 => cmd.arg("LT"),
        _ => cmd,
    }
}

fn hexpire(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let cmd = match g.below(4) {
        0 => Cmd::new("HEXPIRE").arg(key).arg(g.relative_seconds()),
        1 => Cmd::new("HPEXPIRE").arg(key).arg(g.relative_millis()),
        2 => Cmd::new("HEXPIREAT").arg(key).arg(g.unix_seconds()),
        _ => Cmd::new("HPEXPIREAT").arg(key).arg(g.unix_millis()),
    };
    let cmd = condition(g, cmd);
    fields_block(g, cmd)
}

fn expiry_option(g: &mut Gen, cmd: Cmd, allow_keepttl: bool) -> Cmd {
    match g.below(7) {
        0 => cmd.arg("EX").arg(g.relative_seconds()),
        1 => cmd.arg("PX").arg(g.relative_millis()),
        2 => cmd.arg("EXAT").arg(g.unix_seconds()),
        3 => cmd.arg("PXAT").arg(g.unix_millis()),
        4 if allow_keepttl => cmd.arg("KEEPTTL"),
        4 => cmd.arg("PERSIST"),
        _ => cmd,
    }
}

fn hsetex(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let mut cmd = Cmd::new("HSETEX").arg(key);
    if g.chance(0.2) {
        cmd = cmd.arg(g.pick(&["NX", "XX"]));
    }
    if g.chance(0.3) {
        cmd = cmd.arg(g.pick(&["FNX", "FXX"]));
    }
    cmd = expiry_option(g, cmd, true);
    let n = 1 + g.below(3);
    let numfields = if g.chance(0.93) {
        n.to_string()
    } else {
        "0".into()
    };
    cmd = cmd.arg("FIELDS").arg(numfields);
    for _ in 0..n {
        cmd = cmd.arg(field(g)).arg(g.member());
    }
    cmd
}

fn hgetex(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let cmd = expiry_option(g, Cmd::new("HGETEX").arg(key), false);
    fields_block(g, cmd)
}

fn wrong_arity(g: &mut Gen, key: Vec<u8>) -> Cmd {
    match g.below(5) {
        0 => Cmd::new("HSET").arg(key).arg("f"),
        1 => Cmd::new("HGET").arg(key),
        2 => Cmd::new("HEXPIRE").arg(key).arg("100"),
        3 => Cmd::new("HINCRBY").arg(key).arg("f"),
        _ => Cmd::new("HTTL").arg(key).arg("FIELDS"),
    }
}
