//! Runs generated sequences against ferrokv and the oracle and reports the first divergence
//! of each seed with enough context to replay it.

use crate::common::{RawClient, ServerProcess, encode, show, start_ferrokv, start_valkey};
use crate::families::Family;
use crate::generator::{Cmd, Gen};

/// Seeds run by default: one per variant, so CI covers each (see `Variant::of`).
const DEFAULT_SEEDS: &[u64] = &[1, 2, 3];
const DEFAULT_COMMANDS: usize = 2500;
/// Commands sent in one write; replies are read after each batch.
const BATCH: usize = 100;
/// Commands shown before a mismatch.
const CONTEXT: usize = 20;

/// The server set-up a seed runs under.
#[derive(Clone, Copy, Debug)]
enum Variant {
    DefaultThresholdsResp2,
    TinyThresholdsResp2,
    TinyThresholdsResp3,
}

impl Variant {
    fn of(seed: u64) -> Variant {
        match seed % 3 {
            1 => Variant::DefaultThresholdsResp2,
            2 => Variant::TinyThresholdsResp2,
            _ => Variant::TinyThresholdsResp3,
        }
    }

    fn protocol(self) -> u8 {
        match self {
            Variant::TinyThresholdsResp3 => 3,
            _ => 2,
        }
    }

    /// CONFIG SET arguments: every encoding threshold, so a server reused across seeds never
    /// keeps the previous seed's values.
    fn thresholds(self) -> Vec<&'static str> {
        let tiny = !matches!(self, Variant::DefaultThresholdsResp2);
        let pick = |default: &'static str, small: &'static str| if tiny { small } else { default };
        vec![
            "hash-max-listpack-entries",
            pick("512", "4"),
            "hash-max-listpack-value",
            pick("64", "8"),
            "set-max-intset-entries",
            pick("512", "4"),
            "set-max-listpack-entries",
            pick("128", "4"),
            "set-max-listpack-value",
            pick("64", "8"),
            "zset-max-listpack-entries",
            pick("128", "4"),
            "zset-max-listpack-value",
            pick("64", "8"),
            "list-max-listpack-size",
            pick("-2", "4"),
            "hll-sparse-max-bytes",
            pick("3000", "60"),
        ]
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

/// The seeds to run: the defaults, or `FERROKV_RANDOM_ROUNDS` seeds from `FERROKV_RANDOM_SEED`.
fn seeds() -> Vec<u64> {
    let rounds = env_number("FERROKV_RANDOM_ROUNDS");
    match (env_number("FERROKV_RANDOM_SEED"), rounds) {
        (None, None) => DEFAULT_SEEDS.to_vec(),
        (start, rounds) => {
            let start = start.unwrap_or(1);
            (start..start + rounds.unwrap_or(1)).collect()
        }
    }
}

pub fn run_family(family: Family) {
    let commands = env_number("FERROKV_RANDOM_COMMANDS").map_or(DEFAULT_COMMANDS, |n| n as usize);
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let seeds = seeds();
    let failures: Vec<String> = seeds
        .iter()
        .filter_map(|&seed| run_seed(family, seed, commands, &ferrokv, &valkey).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{family:?}: {} of {} seeds diverged\n\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n\n")
    );
}

/// One seed's sequence; `Err` holds the report of its first divergence.
fn run_seed(
    family: Family,
    seed: u64,
    length: usize,
    ferrokv: &ServerProcess,
    valkey: &ServerProcess,
) -> Result<(), String> {
    let variant = Variant::of(seed);
    let mut ours = setup_client(ferrokv, variant);
    let mut theirs = setup_client(valkey, variant);
    let mut generator = Gen::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ family.salt());
    let mut sequence: Vec<Cmd> = (0..length)
        .map(|_| family.command(&mut generator))
        .collect();
    sequence.extend(family.final_reads());
    for (batch_index, batch) in sequence.chunks(BATCH).enumerate() {
        let our_replies = send_batch(&mut ours, batch);
        let their_replies = send_batch(&mut theirs, batch);
        for (offset, cmd) in batch.iter().enumerate() {
            let (a, b) = (&our_replies[offset], &their_replies[offset]);
            if !cmd.compare.matches(a, b) {
                let index = batch_index * BATCH + offset;
                return Err(report(family, seed, variant, &sequence, index, a, b));
            }
        }
    }
    Ok(())
}

fn setup_client(server: &ServerProcess, variant: Variant) -> RawClient {
    let mut client =
        RawClient::connect(server.port).unwrap_or_else(|e| panic!("connect {}: {e}", server.name));
    if variant.protocol() == 3 {
        client.command(&["HELLO", "3"]);
    }
    for setup in [vec!["FLUSHALL"], vec!["SELECT", "0"]] {
        client.command(&setup);
    }
    let mut config = vec!["CONFIG", "SET"];
    config.extend(variant.thresholds());
    let reply = client.command(&config);
    assert_eq!(reply, b"+OK\r\n", "{}: {config:?}", server.name);
    client
}

fn send_batch(client: &mut RawClient, batch: &[Cmd]) -> Vec<Vec<u8>> {
    let request: Vec<u8> = batch.iter().flat_map(|cmd| encode(&cmd.args)).collect();
    client.send_raw(&request);
    batch
        .iter()
        .map(|_| {
            client
                .read_reply()
                .unwrap_or_else(|e| format!("<connection error: {e}>").into_bytes())
        })
        .collect()
}

fn report(
    family: Family,
    seed: u64,
    variant: Variant,
    sequence: &[Cmd],
    index: usize,
    ours: &[u8],
    theirs: &[u8],
) -> String {
    let cmd = &sequence[index];
    let replay = save_replay(family, seed, variant, &sequence[..=index]);
    let context: Vec<String> = sequence[index.saturating_sub(CONTEXT)..index]
        .iter()
        .map(|c| format!("    {}", c.display()))
        .collect();
    format!(
        "{family:?} seed {seed} ({variant:?}), command #{index} ({:?} comparison): {}\n   ferrokv: {}\n    valkey: {}\n  the {} commands before it:\n{}\n  the whole sequence: {replay}",
        cmd.compare,
        cmd.display(),
        show(ours),
        show(theirs),
        context.len(),
        context.join("\n")
    )
}

/// Writes the sequence up to the mismatch, in the differential case-file syntax (with the
/// variant's CONFIG SET first), so it can be replayed or bisected; returns its path.
fn save_replay(family: Family, seed: u64, variant: Variant, sequence: &[Cmd]) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("randomized-{family:?}-{seed}.txt"));
    let mut text = String::new();
    if variant.protocol() == 3 {
        text.push_str("!ignore HELLO 3\n");
    }
    text.push_str(&format!("CONFIG SET {}\n", variant.thresholds().join(" ")));
    for cmd in sequence {
        text.push_str(&cmd.display());
        text.push('\n');
    }
    match std::fs::write(&path, text) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}
