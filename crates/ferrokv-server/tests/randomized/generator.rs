//! The seeded source of commands: a PRNG plus the small vocabularies (keys, members, numbers)
//! every family draws from. Vocabularies are small on purpose, so that the same keys and
//! members come back again and again.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::compare::Compare;

/// One generated command and how its replies are compared.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub args: Vec<Vec<u8>>,
    pub compare: Compare,
}

impl Cmd {
    pub fn new(name: &str) -> Cmd {
        Cmd {
            args: vec![name.as_bytes().to_vec()],
            compare: Compare::Exact,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Cmd {
        self.args.push(arg.as_ref().to_vec());
        self
    }

    pub fn args<A: AsRef<[u8]>>(mut self, args: impl IntoIterator<Item = A>) -> Cmd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_vec()));
        self
    }

    /// Adds `arg` when `cond` holds (optional flags).
    pub fn arg_if(self, cond: bool, arg: impl AsRef<[u8]>) -> Cmd {
        if cond { self.arg(arg) } else { self }
    }

    pub fn compare(mut self, compare: Compare) -> Cmd {
        self.compare = compare;
        self
    }

    /// The command as redis-cli would print it, for reports.
    pub fn display(&self) -> String {
        self.args
            .iter()
            .map(|a| {
                let shown = a.escape_ascii().to_string();
                if a.is_empty() || shown.contains(' ') || shown != String::from_utf8_lossy(a) {
                    format!("\"{shown}\"")
                } else {
                    shown
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Integers at and around every boundary the commands check: signs, zero, i64 limits and just
/// past them, and things that are not integers at all.
const INTEGERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "5",
    "-3",
    "10",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "4611686018427387904",
    "2147483647",
    "-2147483648",
    "4294967296",
    "1.5",
    "abc",
    "",
    " 1",
    "+1",
    "01",
    "0x10",
];

/// Floats for INCRBYFLOAT / HINCRBYFLOAT / scores: specials, exponents, signed zero, junk.
pub const FLOATS: &[&str] = &[
    "0",
    "1",
    "-1",
    "1.5",
    "-2.25",
    "0.1",
    "3",
    "1e3",
    "1E-3",
    "-0",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "1e308",
    "-1e308",
    "1e400",
    "5.0e-324",
    "abc",
    "",
    "1.5x",
    " 2",
    "0x10",
    "17",
    "1e17",
    "123456789012345678",
    "-.5",
    ".5",
    "5.",
];

/// Scores used in sorted-set ranges, including exclusive bounds.
pub const SCORE_BOUNDS: &[&str] = &[
    "-inf", "+inf", "inf", "0", "1", "2", "(1", "(2", "-1", "(-inf", "(+inf", "1.5", "(1.5", "3",
    "nan", "abc", "(", "10",
];

/// Lexicographic range bounds.
pub const LEX_BOUNDS: &[&str] = &[
    "-", "+", "[a", "(a", "[b", "(b", "[c", "[", "(", "[z", "a", "[\x00", "(1", "[10",
];

pub struct Gen {
    rng: StdRng,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &'a [&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    /// One of a handful of keys named `prefix0`, `prefix1`...
    pub fn key(&mut self, prefix: &str, count: usize) -> Vec<u8> {
        format!("{prefix}{}", self.below(count)).into_bytes()
    }

    /// An integer argument: usually small and valid, sometimes a boundary or junk.
    pub fn integer(&mut self) -> String {
        if self.chance(0.7) {
            self.range(-5, 20).to_string()
        } else {
            self.pick(INTEGERS).to_string()
        }
    }

    /// An index into a short collection: mostly in range, sometimes far out of it.
    pub fn index(&mut self) -> String {
        match self.below(10) {
            0 => self
                .pick(&[
                    "9223372036854775807",
                    "-9223372036854775808",
                    "1000",
                    "-1000",
                ])
                .to_string(),
            1 => self
                .pick(&["abc", "1.5", "", "9223372036854775808"])
                .to_string(),
            _ => self.range(-12, 12).to_string(),
        }
    }

    /// A count argument: small, zero, negative, huge, or junk.
    pub fn count(&mut self) -> String {
        match self.below(12) {
            0 => "0".into(),
            1 => self.range(-5, -1).to_string(),
            2 => self
                .pick(&[
                    "9223372036854775807",
                    "-9223372036854775808",
                    "4611686018427387904",
                    "1000",
                ])
                .to_string(),
            3 => self.pick(&["abc", "1.5", ""]).to_string(),
            _ => self.range(1, 8).to_string(),
        }
    }

    pub fn float(&mut self) -> String {
        if self.chance(0.5) {
            format!("{}", self.range(-20, 20) as f64 / 4.0)
        } else {
            self.pick(FLOATS).to_string()
        }
    }

    /// A score: mostly small values so ties and reorderings happen.
    pub fn score(&mut self) -> String {
        match self.below(8) {
            0 => self.pick(FLOATS).to_string(),
            1 => format!("{}", self.range(-20, 20) as f64 / 4.0),
            _ => self.range(-3, 5).to_string(),
        }
    }

    /// A member from a small alphabet with the awkward cases: empty, binary, integer-looking
    /// (for intsets), and values long enough to exceed the listpack value limits.
    pub fn member(&mut self) -> Vec<u8> {
        match self.below(20) {
            0 => Vec::new(),
            1 => b"\x00\xff\r\n".to_vec(),
            2 => b"x".repeat([9, 65, 70][self.below(3)]),
            3 => self
                .pick(&[
                    "9223372036854775807",
                    "-9223372036854775808",
                    "-0",
                    "01",
                    "1.0",
                ])
                .as_bytes()
                .to_vec(),
            4..=9 => self.range(-3, 12).to_string().into_bytes(),
            _ => self
                .pick(&["a", "b", "c", "d", "e", "f", "g", "aa", "ab", "B"])
                .as_bytes()
                .to_vec(),
        }
    }

    /// Up to `max` members (at least one).
    pub fn members(&mut self, max: usize) -> Vec<Vec<u8>> {
        let n = 1 + self.below(max);
        (0..n).map(|_| self.member()).collect()
    }

    /// A string value for the string family: numbers, floats, binary, empty, long.
    pub fn value(&mut self) -> Vec<u8> {
        match self.below(10) {
            0 => self.integer().into_bytes(),
            1 => self.float().into_bytes(),
            2 => b"y".repeat(self.range(40, 70) as usize),
            _ => self.member(),
        }
    }

    /// A far-future or past Unix time in seconds (never one that expires during the run).
    pub fn unix_seconds(&mut self) -> String {
        match self.below(8) {
            0 => "1".into(),
            1 => "0".into(),
            2 => "-5".into(),
            3 => "9223372036854775807".into(),
            4 => "99999999999999".into(),
            _ => (4_000_000_000 + self.range(0, 3) * 1000).to_string(),
        }
    }

    /// A relative expiry in seconds: far future, zero, negative, or overflowing. Far-future
    /// values are drawn from a wide range in steps of 1000 s (and the millisecond ones sit
    /// 500 s between those), so two of them practically never coincide: an NX/XX/GT/LT
    /// comparison of equal relative times would depend on which millisecond each server ran
    /// the command in.
    pub fn relative_seconds(&mut self) -> String {
        match self.below(8) {
            0 => "0".into(),
            1 => "-1".into(),
            2 => "9223372036854775807".into(),
            3 => "9223372036854775".into(),
            4 => "abc".into(),
            _ => (self.range(1, 1_000_000) * 1000).to_string(),
        }
    }

    /// The same in milliseconds.
    pub fn relative_millis(&mut self) -> String {
        match self.below(8) {
            0 => "0".into(),
            1 => "-1".into(),
            2 => "9223372036854775807".into(),
            3 => "9223372036854775".into(),
            _ => (self.range(1, 1_000_000) * 1_000_000 + 500_000).to_string(),
        }
    }

    /// Absolute milliseconds.
    pub fn unix_millis(&mut self) -> String {
        match self.below(6) {
            0 => "1".into(),
            1 => "9223372036854775807".into(),
            _ => (4_000_000_000_000i64 + self.range(0, 3) * 1_000_000).to_string(),
        }
    }
}
