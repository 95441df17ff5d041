//! Sorted sets: ZADD with every flag and special scores, ranges by rank/score/lex in both
//! directions, removals by range, pops, the algebra with weights and aggregates, and the
//! random ZRANDMEMBER compared by shape.
//!
//! Lexicographic ranges are only defined when every member has the same score: with mixed
//! scores Valkey's answer depends on the encoding and on its skiplist's random levels. So
//! lex commands run on their own keys (`y0`, `y1`), which only ever hold score 0.

use super::{foreign, inspect};
use crate::compare::Compare;
use crate::generator::{Cmd, Gen, LEX_BOUNDS, SCORE_BOUNDS};

pub const PREFIX: &str = "z";
pub const KEYS: usize = 4;
const LEX_PREFIX: &str = "y";
const LEX_KEYS: usize = 2;

pub fn reads(key: &str) -> Vec<Cmd> {
    vec![
        Cmd::new("ZCARD").arg(key),
        Cmd::new("ZRANGE")
            .arg(key)
            .arg("0")
            .arg("-1")
            .arg("WITHSCORES"),
    ]
}

fn key(g: &mut Gen) -> Vec<u8> {
    g.key(PREFIX, KEYS)
}

/// Members: mostly single letters so lexicographic ranges have something to select.
fn member(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.6) {
        g.pick(&["a", "b", "c", "d", "e", "f", "g"])
            .as_bytes()
            .to_vec()
    } else {
        g.member()
    }
}

fn keys(g: &mut Gen, max: usize) -> Vec<Vec<u8>> {
    (0..1 + g.below(max)).map(|_| key(g)).collect()
}

pub fn command(g: &mut Gen) -> Cmd {
    if g.chance(0.2) {
        return lex_command(g);
    }
    let k = key(g);
    match g.below(54) {
        0..=6 => zadd(g, k),
        7 => Cmd::new("ZINCRBY").arg(k).arg(g.score()).arg(member(g)),
        8 | 9 => {
            let mut cmd = Cmd::new("ZREM").arg(k);
            for _ in 0..1 + g.below(2) {
                cmd = cmd.arg(member(g));
            }
            cmd
        }
        10 => Cmd::new("ZCARD").arg(k),
        11 => Cmd::new("ZSCORE").arg(k).arg(member(g)),
        12 => Cmd::new("ZMSCORE").arg(k).arg(member(g)).arg(member(g)),
        13 => Cmd::new(g.pick(&["ZRANK", "ZREVRANK"]))
            .arg(k)
            .arg(member(g))
            .arg_if(g.chance(0.4), "WITHSCORE"),
        14..=17 => zrange(g, Cmd::new("ZRANGE").arg(k), false),
        18 => Cmd::new(g.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]))
            .arg(k)
            .arg(g.pick(SCORE_BOUNDS))
            .arg(g.pick(SCORE_BOUNDS))
            .arg_if(g.chance(0.4), "WITHSCORES"),
        19 => Cmd::new("ZRANGEBYSCORE")
            .arg(k)
            .arg(g.pick(SCORE_BOUNDS))
            .arg(g.pick(SCORE_BOUNDS))
            .arg("LIMIT")
            .arg(g.pick(&["0", "1", "-1"]))
            .arg(g.pick(&["1", "2", "-1", "0"])),
        20 => Cmd::new("ZCOUNT")
            .arg(k)
            .arg(g.pick(SCORE_BOUNDS))
            .arg(g.pick(SCORE_BOUNDS)),
        21 => Cmd::new("ZCOUNT").arg(k).arg("-inf").arg("+inf"),
        22 => Cmd::new("ZREMRANGEBYRANK")
            .arg(k)
            .arg(g.index())
            .arg(g.index()),
        23 => Cmd::new("ZREMRANGEBYSCORE")
            .arg(k)
            .arg(g.pick(SCORE_BOUNDS))
            .arg(g.pick(SCORE_BOUNDS)),
        24 => Cmd::new("ZREMRANGEBYSCORE")
            .arg(k)
            .arg(g.pick(SCORE_BOUNDS))
            .arg("+inf"),
        25 | 26 => {
            let cmd = Cmd::new(g.pick(&["ZPOPMIN", "ZPOPMAX"])).arg(k);
            if g.chance(0.5) {
                cmd.arg(g.count())
            } else {
                cmd
            }
        }
        27 => zmpop(g),
        28 => {
            let destination = key(g);
            zrange(g, Cmd::new("ZRANGESTORE").arg(destination).arg(k), false)
        }
        29 | 30 => algebra(g, true, k),
        31 | 32 => algebra(g, false, k),
        33 => Cmd::new("ZINTERCARD")
            .arg(g.pick(&["1", "2", "2", "0", "x"]))
            .arg(k)
            .arg(key(g))
            .arg_if(g.chance(0.3), "LIMIT")
            .arg_if(g.chance(0.3), "1"),
        34 => match g.below(3) {
            0 => Cmd::new("ZRANDMEMBER").arg(k).compare(Compare::Shape),
            1 => Cmd::new("ZRANDMEMBER")
                .arg(k)
                .arg("1000")
                .arg("WITHSCORES")
                .compare(Compare::SORTED_PAIRS),
            _ => Cmd::new("ZRANDMEMBER")
                .arg(k)
                .arg(g.count())
                .arg_if(g.chance(0.5), "WITHSCORES")
                .compare(Compare::Shape),
        },
        35 => Cmd::new("ZSCAN")
            .arg(k)
            .arg("0")
            .arg("COUNT")
            .arg("1000")
            .compare(Compare::SORTED_PAIRS),
        36 | 37 => Cmd::new("OBJECT").arg("ENCODING").arg(k),
        38 => inspect(g, &k),
        39 => foreign(g, &k),
        40 | 41 => Cmd::new("ZRANGE")
            .arg(k)
            .arg("0")
            .arg("-1")
            .arg("WITHSCORES"),
        42 => Cmd::new("ZADD")
            .arg(k)
            .arg(g.score())
            .arg("m".repeat(g.range(6, 10) as usize)),
        43 => {
            let mut cmd = Cmd::new("ZADD").arg(k);
            for i in 0..g.range(2, 6) {
                cmd = cmd.arg(g.score()).arg(format!("n{i}"));
            }
            cmd
        }
        44 => Cmd::new("ZSCORE").arg(k).arg(member(g)),
        45 => Cmd::new("ZINCRBY")
            .arg(k)
            .arg(g.pick(&["inf", "-inf", "nan", "1e308"]))
            .arg(member(g)),
        _ => wrong_arity(g, k),
    }
}

/// Lex-range commands over keys whose members all have score 0.
fn lex_command(g: &mut Gen) -> Cmd {
    let k = g.key(LEX_PREFIX, LEX_KEYS);
    let bound = |g: &mut Gen| g.pick(LEX_BOUNDS).to_string();
    match g.below(14) {
        0..=3 => {
            let mut cmd = Cmd::new("ZADD").arg(k);
            for _ in 0..1 + g.below(3) {
                cmd = cmd.arg("0").arg(member(g));
            }
            cmd
        }
        4 => Cmd::new("ZREM").arg(k).arg(member(g)),
        5 | 6 => Cmd::new(g.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]))
            .arg(k)
            .arg(bound(g))
            .arg(bound(g))
            .arg_if(g.chance(0.2), "LIMIT")
            .arg_if(g.chance(0.2), "1")
            .arg_if(g.chance(0.2), "2"),
        7 => Cmd::new("ZLEXCOUNT").arg(k).arg(bound(g)).arg(bound(g)),
        8 => Cmd::new("ZREMRANGEBYLEX")
            .arg(k)
            .arg(bound(g))
            .arg(bound(g)),
        9 | 10 => zrange(g, Cmd::new("ZRANGE").arg(k), true),
        11 => {
            let destination = g.key(LEX_PREFIX, LEX_KEYS);
            zrange(g, Cmd::new("ZRANGESTORE").arg(destination).arg(k), true)
        }
        12 => Cmd::new("OBJECT").arg("ENCODING").arg(k),
        _ => Cmd::new("ZRANGE").arg(k).arg("0").arg("-1"),
    }
}

fn zadd(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let mut cmd = Cmd::new("ZADD").arg(key);
    for _ in 0..g.below(3) {
        cmd = cmd.arg(g.pick(&["NX", "XX", "GT", "LT", "CH", "INCR", "ch"]));
    }
    for _ in 0..1 + g.below(3) {
        cmd = cmd.arg(g.score()).arg(member(g));
    }
    if g.chance(0.03) {
        cmd = cmd.arg(g.score());
    }
    cmd
}

/// The ZRANGE options after `key` (or `dst src`): rank, BYSCORE or BYLEX, REV, LIMIT,
/// WITHSCORES, in valid and invalid combinations.
fn zrange(g: &mut Gen, cmd: Cmd, lex: bool) -> Cmd {
    let by = if lex { 2 } else { g.below(2) };
    let mut cmd = match by {
        0 => cmd.arg(g.index()).arg(g.index()),
        1 => cmd
            .arg(g.pick(SCORE_BOUNDS))
            .arg(g.pick(SCORE_BOUNDS))
            .arg("BYSCORE"),
        _ => cmd
            .arg(g.pick(LEX_BOUNDS))
            .arg(g.pick(LEX_BOUNDS))
            .arg("BYLEX"),
    };
    if g.chance(0.3) {
        cmd = cmd.arg("REV");
    }
    if g.chance(0.25) {
        cmd = cmd
            .arg("LIMIT")
            .arg(g.pick(&["0", "1", "-1", "2", "100"]))
            .arg(g.pick(&["1", "2", "-1", "0", "-5", "x"]));
    }
    if g.chance(0.3) {
        cmd = cmd.arg("WITHSCORES");
    }
    cmd
}

fn zmpop(g: &mut Gen) -> Cmd {
    let n = g.below(3) + 1;
    let numkeys = if g.chance(0.9) {
        n.to_string()
    } else {
        g.pick(&["0", "-1", "5", "abc"]).to_string()
    };
    let mut cmd = Cmd::new("ZMPOP").arg(numkeys);
    for _ in 0..n {
        cmd = cmd.arg(key(g));
    }
    let choices = if g.chance(0.97) { 3 } else { 4 };
    cmd = cmd.arg(g.pick(&["MIN", "MAX", "max", "MID"][..choices]));
    if g.chance(0.5) {
        cmd = cmd.arg("COUNT").arg(g.count());
    }
    cmd
}

/// ZUNION/ZINTER/ZDIFF and their STORE forms, with WEIGHTS and AGGREGATE.
fn algebra(g: &mut Gen, store: bool, first: Vec<u8>) -> Cmd {
    let op = g.pick(&["ZUNION", "ZINTER", "ZDIFF"]);
    let sources = {
        let mut s = keys(g, 2);
        s.insert(0, first);
        s
    };
    let mut cmd = if store {
        Cmd::new(&format!("{op}STORE")).arg(key(g))
    } else {
        Cmd::new(op)
    };
    let numkeys = if g.chance(0.93) {
        sources.len().to_string()
    } else {
        g.pick(&["0", "-1", "9", "x"]).to_string()
    };
    cmd = cmd.arg(numkeys).args(&sources);
    if op != "ZDIFF" && g.chance(0.3) {
        cmd = cmd.arg("WEIGHTS");
        for _ in 0..sources.len() {
            cmd = cmd.arg(g.pick(&["1", "2", "-1", "0", "0.5", "inf", "-inf", "x"]));
        }
    }
    if op != "ZDIFF" && g.chance(0.3) {
        cmd = cmd
            .arg("AGGREGATE")
            .arg(g.pick(&["SUM", "MIN", "MAX", "sum", "AVG"]));
    }
    if !store && g.chance(0.5) {
        cmd = cmd.arg("WITHSCORES");
    }
    cmd
}

fn wrong_arity(g: &mut Gen, key: Vec<u8>) -> Cmd {
    match g.below(5) {
        0 => Cmd::new("ZADD").arg(key).arg("1"),
        1 => Cmd::new("ZRANGE").arg(key).arg("0"),
        2 => Cmd::new("ZSCORE").arg(key),
        3 => Cmd::new("ZINCRBY").arg(key).arg("1"),
        _ => Cmd::new("ZADD")
            .arg(key)
            .arg("NX")
            .arg("XX")
            .arg("1")
            .arg("a"),
    }
}
