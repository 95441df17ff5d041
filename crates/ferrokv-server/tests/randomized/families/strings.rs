//! Strings and bitmaps: SET and its options, counters (INCRBYFLOAT included), ranges, LCS,
//! and the bit commands, over five keys.

use super::{foreign, inspect};
use crate::compare::Compare;
use crate::generator::{Cmd, Gen};

pub const PREFIX: &str = "s";
pub const KEYS: usize = 5;

pub fn reads(key: &str) -> Vec<Cmd> {
    vec![
        Cmd::new("GET").arg(key),
        Cmd::new("STRLEN").arg(key),
        Cmd::new("BITCOUNT").arg(key),
    ]
}

fn key(g: &mut Gen) -> Vec<u8> {
    g.key(PREFIX, KEYS)
}

pub fn command(g: &mut Gen) -> Cmd {
    let k = key(g);
    match g.below(42) {
        0..=3 => set(g, k),
        4..=6 => Cmd::new("GET").arg(k),
        7 => Cmd::new("GETSET").arg(k).arg(g.value()),
        8 => Cmd::new("GETDEL").arg(k),
        9 => getex(g, k),
        10 => Cmd::new("SETNX").arg(k).arg(g.value()),
        11 => Cmd::new("SETEX")
            .arg(k)
            .arg(g.relative_seconds())
            .arg(g.value()),
        12 => Cmd::new("PSETEX")
            .arg(k)
            .arg(g.relative_millis())
            .arg(g.value()),
        13 => {
            let n = 1 + g.below(3);
            let mut cmd = Cmd::new(if g.chance(0.5) { "MSET" } else { "MSETNX" });
            for _ in 0..n {
                cmd = cmd.arg(key(g)).arg(g.value());
            }
            if g.chance(0.05) {
                cmd = cmd.arg(key(g)); // odd number of arguments
            }
            cmd
        }
        14 => Cmd::new("MGET").arg(k).arg(key(g)).arg(key(g)),
        15 | 16 => Cmd::new("APPEND").arg(k).arg(g.value()),
        17 => Cmd::new("STRLEN").arg(k),
        18 => Cmd::new("SETRANGE").arg(k).arg(offset(g)).arg(g.value()),
        19 => Cmd::new(if g.chance(0.8) { "GETRANGE" } else { "SUBSTR" })
            .arg(k)
            .arg(g.index())
            .arg(g.index()),
        20 => Cmd::new(if g.chance(0.5) { "INCR" } else { "DECR" }).arg(k),
        21 | 22 => Cmd::new(if g.chance(0.5) { "INCRBY" } else { "DECRBY" })
            .arg(k)
            .arg(g.integer()),
        23 | 24 => Cmd::new("INCRBYFLOAT").arg(k).arg(g.float()),
        25 => lcs(g, k),
        26 | 27 => Cmd::new("SETBIT")
            .arg(k)
            .arg(bit_offset(g))
            .arg(g.pick(&["0", "1", "1", "2", "-1", "a"])),
        28 => Cmd::new("GETBIT").arg(k).arg(bit_offset(g)),
        29 | 30 => bitcount(g, k),
        31 => bitpos(g, k),
        32 => bitop(g),
        33 | 34 => bitfield(g, k),
        35 => Cmd::new("OBJECT").arg("ENCODING").arg(k),
        36 => Cmd::new("SET").arg(k).arg(g.integer()),
        37 => Cmd::new("TTL")
            .arg(k)
            .compare(Compare::Approx { tolerance: 1 }),
        38 => inspect(g, &k),
        39 => foreign(g, &k),
        40 => Cmd::new("STRLEN").arg(k),
        _ => wrong_arity(g, k),
    }
}

fn set(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let mut cmd = Cmd::new("SET").arg(key).arg(g.value());
    if g.chance(0.3) {
        cmd = cmd.arg(g.pick(&["NX", "XX", "nx"]));
    }
    if g.chance(0.2) {
        cmd = cmd.arg("GET");
    }
    if g.chance(0.3) {
        cmd = match g.below(6) {
            0 => cmd.arg("EX").arg(g.relative_seconds()),
            1 => cmd.arg("PX").arg(g.relative_millis()),
            2 => cmd.arg("EXAT").arg(g.unix_seconds()),
            3 => cmd.arg("PXAT").arg(g.unix_millis()),
            4 => cmd.arg("KEEPTTL"),
            _ => cmd.arg("EX"), // missing value
        };
    }
    if g.chance(0.03) {
        cmd = cmd.arg(g.pick(&["NX", "KEEPTTL", "EX", "bogus"]));
    }
    cmd
}

fn getex(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let cmd = Cmd::new("GETEX").arg(key);
    match g.below(7) {
        0 => cmd.arg("EX").arg(g.relative_seconds()),
        1 => cmd.arg("PX").arg(g.relative_millis()),
        2 => cmd.arg("EXAT").arg(g.unix_seconds()),
        3 => cmd.arg("PXAT").arg(g.unix_millis()),
        4 => cmd.arg("PERSIST"),
        5 => cmd.arg("PERSIST").arg("EX").arg("10"),
        _ => cmd,
    }
}

fn offset(g: &mut Gen) -> String {
    match g.below(10) {
        0 => g
            .pick(&[
                "-1",
                "536870912",
                "536870911000",
                "abc",
                "9223372036854775807",
            ])
            .to_string(),
        _ => g.range(0, 12).to_string(),
    }
}

fn bit_offset(g: &mut Gen) -> String {
    match g.below(12) {
        0 => g
            .pick(&["-1", "4294967296", "4294967295000", "abc", "1.0"])
            .to_string(),
        1 => g.range(60, 120).to_string(),
        _ => g.range(0, 40).to_string(),
    }
}

fn bitcount(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let cmd = Cmd::new("BITCOUNT").arg(key);
    match g.below(5) {
        0 => cmd,
        1 => cmd.arg(g.index()),
        _ => {
            let cmd = cmd.arg(g.index()).arg(g.index());
            match g.below(4) {
                0 => cmd.arg("BYTE"),
                1 => cmd.arg("BIT"),
                2 => cmd.arg(g.pick(&["bit", "WORD"])),
                _ => cmd,
            }
        }
    }
}

fn bitpos(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let cmd = Cmd::new("BITPOS")
        .arg(key)
        .arg(g.pick(&["0", "1", "1", "2"]));
    match g.below(4) {
        0 => cmd,
        1 => cmd.arg(g.index()),
        2 => cmd.arg(g.index()).arg(g.index()),
        _ => cmd
            .arg(g.index())
            .arg(g.index())
            .arg(g.pick(&["BYTE", "BIT", "bit", "x"])),
    }
}

fn bitop(g: &mut Gen) -> Cmd {
    let op = g.pick(&["AND", "OR", "XOR", "NOT", "and", "DIFF"]);
    let mut cmd = Cmd::new("BITOP").arg(op).arg(key(g));
    let sources = if op == "NOT" && g.chance(0.8) {
        1
    } else {
        g.below(3) + usize::from(g.chance(0.9))
    };
    for _ in 0..sources {
        cmd = cmd.arg(key(g));
    }
    cmd
}

fn bitfield(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let read_only = g.chance(0.2);
    let mut cmd = Cmd::new(if read_only { "BITFIELD_RO" } else { "BITFIELD" }).arg(key);
    for _ in 0..1 + g.below(3) {
        let ty = g.pick(&[
            "u8", "i8", "u1", "i1", "u16", "i16", "i64", "u63", "u64", "i65", "x8", "u0", "i32",
        ]);
        let pos = match g.below(6) {
            0 => format!("#{}", g.range(0, 5)),
            1 => g.pick(&["-1", "abc", "#-1", "4294967296"]).to_string(),
            _ => g.range(0, 40).to_string(),
        };
        cmd = match g.below(if read_only { 5 } else { 7 }) {
            0..=2 => cmd.arg("GET").arg(ty).arg(pos),
            3 if read_only => cmd.arg("SET").arg(ty).arg(pos).arg(g.integer()),
            4 => cmd
                .arg("OVERFLOW")
                .arg(g.pick(&["WRAP", "SAT", "FAIL", "bogus"])),
            3 | 5 => cmd.arg("SET").arg(ty).arg(pos).arg(g.integer()),
            _ => cmd.arg("INCRBY").arg(ty).arg(pos).arg(g.integer()),
        };
    }
    cmd
}

fn lcs(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let mut cmd = Cmd::new("LCS").arg(key).arg(super::strings::key(g));
    match g.below(5) {
        0 => cmd = cmd.arg("LEN"),
        1 => cmd = cmd.arg("IDX"),
        2 => {
            cmd = cmd
                .arg("IDX")
                .arg("MINMATCHLEN")
                .arg(g.pick(&["0", "1", "2", "-1", "x"]))
        }
        3 => cmd = cmd.arg("IDX").arg("WITHMATCHLEN"),
        _ => {}
    }
    if g.chance(0.05) {
        cmd = cmd.arg("LEN").arg("IDX");
    }
    cmd
}

fn wrong_arity(g: &mut Gen, key: Vec<u8>) -> Cmd {
    match g.below(6) {
        0 => Cmd::new("GET"),
        1 => Cmd::new("SET").arg(key),
        2 => Cmd::new("INCRBY").arg(key),
        3 => Cmd::new("SETRANGE").arg(key).arg("0"),
        4 => Cmd::new("GETBIT").arg(key),
        _ => Cmd::new("APPEND").arg(key).arg("a").arg("b"),
    }
}
