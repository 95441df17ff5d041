//! Lists: pushes and pops at both ends with counts, ranges, LSET/LINSERT/LREM/LTRIM, LPOS,
//! moves between keys, LMPOP. Blocking commands are left out: on an empty list they wait.

use super::{foreign, inspect};
use crate::generator::{Cmd, Gen};

pub const PREFIX: &str = "l";
pub const KEYS: usize = 4;

pub fn reads(key: &str) -> Vec<Cmd> {
    vec![
        Cmd::new("LLEN").arg(key),
        Cmd::new("LRANGE").arg(key).arg("0").arg("-1"),
    ]
}

fn key(g: &mut Gen) -> Vec<u8> {
    g.key(PREFIX, KEYS)
}

fn side(g: &mut Gen) -> &'static str {
    let choices = if g.chance(0.97) { 4 } else { 5 };
    g.pick(&["LEFT", "RIGHT", "left", "RIGHT", "UP"][..choices])
}

pub fn command(g: &mut Gen) -> Cmd {
    let k = key(g);
    match g.below(36) {
        0..=5 => {
            let name = g.pick(&["LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]);
            Cmd::new(name).arg(k).args(g.members(4))
        }
        6..=8 => {
            let cmd = Cmd::new(g.pick(&["LPOP", "RPOP"])).arg(k);
            if g.chance(0.5) {
                cmd.arg(g.count())
            } else {
                cmd
            }
        }
        9 | 10 => Cmd::new("LLEN").arg(k),
        11..=13 => Cmd::new("LRANGE").arg(k).arg(g.index()).arg(g.index()),
        14 => Cmd::new("LINDEX").arg(k).arg(g.index()),
        15 => Cmd::new("LSET").arg(k).arg(g.index()).arg(g.member()),
        16 => Cmd::new("LINSERT")
            .arg(k)
            .arg(g.pick(&["BEFORE", "AFTER", "after", "MIDDLE"]))
            .arg(g.member())
            .arg(g.member()),
        17 | 18 => Cmd::new("LREM")
            .arg(k)
            .arg(g.pick(&["0", "1", "-1", "2", "-2", "abc"]))
            .arg(g.member()),
        19 => Cmd::new("LTRIM").arg(k).arg(g.index()).arg(g.index()),
        20 | 21 => lpos(g, k),
        22 => Cmd::new("LMOVE")
            .arg(k)
            .arg(key(g))
            .arg(side(g))
            .arg(side(g)),
        23 => Cmd::new("RPOPLPUSH").arg(k).arg(key(g)),
        24 => lmpop(g),
        25 | 26 => Cmd::new("OBJECT").arg("ENCODING").arg(k),
        27 => inspect(g, &k),
        28 => foreign(g, &k),
        29 => Cmd::new("LRANGE").arg(k).arg("0").arg("-1"),
        30 => Cmd::new("RPUSH")
            .arg(k)
            .args((0..g.range(3, 9)).map(|i| i.to_string())),
        31 => Cmd::new("LPUSH")
            .arg(k)
            .arg("z".repeat(g.range(60, 70) as usize)),
        32 => Cmd::new("LINDEX").arg(k).arg("-1"),
        33 => Cmd::new("LPOP").arg(k).arg(g.pick(&["100", "1"])),
        34 => Cmd::new("DEL").arg(k),
        _ => wrong_arity(g, k),
    }
}

fn lpos(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let mut cmd = Cmd::new("LPOS").arg(key).arg(g.member());
    for _ in 0..g.below(3) {
        cmd = match g.below(4) {
            0 => cmd.arg("RANK").arg(g.pick(&[
                "1",
                "2",
                "-1",
                "-2",
                "0",
                "-9223372036854775808",
                "9223372036854775807",
            ])),
            1 => cmd.arg("COUNT").arg(g.pick(&["0", "1", "2", "-1", "100"])),
            2 => cmd.arg("MAXLEN").arg(g.pick(&["0", "1", "3", "-1"])),
            _ => cmd.arg(g.pick(&["RANK", "bogus"])),
        };
    }
    cmd
}

fn lmpop(g: &mut Gen) -> Cmd {
    let n = g.below(3) + 1;
    let numkeys = if g.chance(0.9) {
        n.to_string()
    } else {
        g.pick(&["0", "-1", "5", "abc"]).to_string()
    };
    let mut cmd = Cmd::new("LMPOP").arg(numkeys);
    for _ in 0..n {
        cmd = cmd.arg(key(g));
    }
    cmd = cmd.arg(side(g));
    if g.chance(0.5) {
        cmd = cmd.arg("COUNT").arg(g.count());
    }
    cmd
}

fn wrong_arity(g: &mut Gen, key: Vec<u8>) -> Cmd {
    match g.below(5) {
        0 => Cmd::new("LPUSH").arg(key),
        1 => Cmd::new("LRANGE").arg(key).arg("0"),
        2 => Cmd::new("LPOP").arg(key).arg("1").arg("2"),
        3 => Cmd::new("LINSERT").arg(key).arg("BEFORE").arg("a"),
        _ => Cmd::new("LMOVE").arg(&key).arg(&key).arg("LEFT"),
    }
}
