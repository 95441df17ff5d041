//! HyperLogLog: PFADD batches big enough to cross from sparse to dense (at the configured
//! `hll-sparse-max-bytes`), PFCOUNT over several keys, PFMERGE, and GET of the raw
//! representation, which must be byte-identical (header, cached cardinality, registers).

use super::{foreign, inspect};
use crate::generator::{Cmd, Gen};

pub const PREFIX: &str = "p";
pub const KEYS: usize = 4;

pub fn reads(key: &str) -> Vec<Cmd> {
    vec![
        Cmd::new("PFCOUNT").arg(key),
        Cmd::new("GET").arg(key),
        Cmd::new("PFDEBUG").arg("ENCODING").arg(key),
    ]
}

fn key(g: &mut Gen) -> Vec<u8> {
    g.key(PREFIX, KEYS)
}

/// Elements from a range wide enough that the sparse form outgrows its limit.
fn elements(g: &mut Gen) -> Vec<Vec<u8>> {
    let n = match g.below(6) {
        0 => 0,
        1 => g.range(50, 300) as usize,
        _ => 1 + g.below(6),
    };
    (0..n)
        .map(|_| {
            if g.chance(0.95) {
                format!("e{}", g.range(0, 3000)).into_bytes()
            } else {
                g.member()
            }
        })
        .collect()
}

pub fn command(g: &mut Gen) -> Cmd {
    let k = key(g);
    match g.below(24) {
        0..=7 => Cmd::new("PFADD").arg(k).args(elements(g)),
        8..=10 => {
            let mut cmd = Cmd::new("PFCOUNT").arg(k);
            for _ in 0..g.below(3) {
                cmd = cmd.arg(key(g));
            }
            cmd
        }
        11 | 12 => {
            let mut cmd = Cmd::new("PFMERGE").arg(k);
            for _ in 0..g.below(3) {
                cmd = cmd.arg(key(g));
            }
            cmd
        }
        13 | 14 => Cmd::new("GET").arg(k),
        15 => Cmd::new("STRLEN").arg(k),
        16 => Cmd::new("PFDEBUG")
            .arg(g.pick(&["ENCODING", "TODENSE", "encoding", "BOGUS"]))
            .arg(k),
        17 => inspect(g, &k),
        18 => foreign(g, &k),
        // Corruptions: a string that only looks like an HLL, or an HLL with bytes changed.
        // Only whole opcodes are written: a sparse HLL ending in half an XZERO opcode makes
        // Valkey read the byte past the end of the string, which is not worth imitating.
        19 => Cmd::new("APPEND").arg(k).arg(g.pick(&["\x00", "\x7f\x7f"])),
        20 => Cmd::new("SETRANGE")
            .arg(k)
            .arg(g.pick(&["4", "16", "17", "20", "100"]))
            .arg(g.pick::<[u8]>(&[b"\x00", b"\xff", b"\x7f\xff"])),
        21 => Cmd::new("SET")
            .arg(k)
            .arg(g.pick(&["HYLL", "HYLL\x01", "HYLL\x00\x00\x00\x00"])),
        22 => Cmd::new("DEL").arg(k),
        _ => match g.below(3) {
            0 => Cmd::new("PFADD"),
            1 => Cmd::new("PFCOUNT"),
            _ => Cmd::new("PFMERGE"),
        },
    }
}
