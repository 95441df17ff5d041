//! Randomized differential runs: for each data type a seeded generator produces a few thousand
//! commands over a small key space and a small member alphabet (so collisions, encoding
//! conversions, empty-key deletion and WRONGTYPE all happen), the same sequence goes to ferrokv
//! and to the oracle valkey-server 9.1, and every reply is compared byte for byte (or, for the
//! few random replies, by shape or after sorting).
//!
//! Seeds are fixed by default so CI is reproducible. To explore:
//!
//! ```text
//! FERROKV_RANDOM_SEED=1000 FERROKV_RANDOM_ROUNDS=50 cargo nextest run -p ferrokv-server --test randomized
//! ```
//!
//! runs seeds 1000..1050 for every family (`FERROKV_RANDOM_COMMANDS` changes the sequence
//! length). The seed also picks the variant: default encoding thresholds over RESP2, tiny
//! thresholds over RESP2, or tiny thresholds over RESP3. A mismatch reports the seed, the
//! command's index, the command, both replies and the commands before it.

#[path = "common/mod.rs"]
mod common;
// The generator, the comparison rules and the runner live in tests/randomized/.
#[path = "randomized/compare.rs"]
mod compare;
#[path = "randomized/families/mod.rs"]
mod families;
#[path = "randomized/generator.rs"]
mod generator;
#[path = "randomized/runner.rs"]
mod runner;

use families::Family;
use runner::run_family;

macro_rules! families {
    ($($test:ident => $family:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_family($family);
            }
        )*
    };
}

families! {
    strings => Family::Strings,
    lists => Family::Lists,
    hashes => Family::Hashes,
    sets => Family::Sets,
    sorted_sets => Family::SortedSets,
    hyperloglog => Family::HyperLogLog,
    generic_keys => Family::Keys,
}
