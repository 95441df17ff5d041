//! Glob-style pattern matching exactly as Valkey matches KEYS, SCAN MATCH, CONFIG GET,
//! PSUBSCRIBE and ACL key patterns.
//!
//! `*` any sequence, `?` any byte, `[abc]`, `[^abc]`, `[a-z]` (reversed ranges allowed),
//! `\x` a literal x. Byte ranges compare as C's signed `char`, as Valkey does on x86, so a
//! range never spans the ASCII/high-bit boundary the way an unsigned compare would. Deeply
//! nested `*` patterns stop matching past a nesting limit instead of exhausting the stack
//! (CVE-2022-36021), and a `*` that cannot match at one position gives up on longer matches.

/// Whether `string` matches `pattern`.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_from(pattern, string, nocase, &mut skip_longer, 0)
}

const MAX_NESTING: u32 = 1000;

fn fold(c: u8, nocase: bool) -> u8 {
    if nocase { c.to_ascii_lowercase() } else { c }
}

fn match_from(
    mut p: &[u8],
    mut s: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: u32,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_from(&p[1..], s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let negate = p.first() == Some(&b'^');
                if negate {
                    p = &p[1..];
                }
                let c = s[0];
                let mut matched = false;
                loop {
                    match p {
                        [b'\\', escaped, ..] => {
                            p = &p[1..];
                            if *escaped == c {
                                matched = true;
                            }
                        }
                        [b']', ..] => break,
                        // An unterminated class ends the pattern; keep the last byte as the
                        // "current" one so the advance below consumes it, as Valkey does.
                        [] => break,
                        [start, b'-', end, ..] => {
                            let (mut lo, mut hi) = (*start as i8, *end as i8);
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            let mut ch = c as i8;
                            if nocase {
                                lo = (lo as u8).to_ascii_lowercase() as i8;
                                hi = (hi as u8).to_ascii_lowercase() as i8;
                                ch = (ch as u8).to_ascii_lowercase() as i8;
                            }
                            p = &p[2..];
                            if ch >= lo && ch <= hi {
                                matched = true;
                            }
                        }
                        [literal, ..] => {
                            if fold(*literal, nocase) == fold(c, nocase) {
                                matched = true;
                            }
                        }
                    }
                    p = &p[1..];
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
                if p.is_empty() {
                    // Unterminated class: the pattern is used up.
                    return s.is_empty();
                }
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if fold(p[0], nocase) != fold(s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            literal => {
                if fold(literal, nocase) != fold(s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn wildcards() {
        // As in Valkey, nothing matches an empty subject; KEYS and SCAN special-case "*".
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("foo**", "foo"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m(r"h\*llo", "h*llo"));
        assert!(!m(r"h\*llo", "hello"));
        assert!(m(r"[\]]", "]"));
    }

    #[test]
    fn case_folding() {
        assert!(glob_match(b"HeLLo", b"hello", true));
        assert!(glob_match(b"[A-Z]x", b"qx", true));
        assert!(!glob_match(b"HeLLo", b"hello", false));
    }

    #[test]
    fn abusive_patterns_finish() {
        let pattern = "a*".repeat(20_000) + "b";
        let subject = "a".repeat(30_000);
        assert!(!m(&pattern, &subject));
    }

    #[test]
    fn nesting_limit_matches_valkey() {
        // Checked against valkey-server 9.1: 1000 nested stars still match, 1001 do not.
        let subject = "a".repeat(1200);
        assert!(m(&"*a".repeat(1000), &subject));
        assert!(!m(&"*a".repeat(1001), &subject));
        assert!(m(&"a*".repeat(1001), &subject));
        assert!(!m(&"a*".repeat(1002), &subject));
    }

    #[test]
    fn odd_corners() {
        // An unterminated class consumes the rest of the pattern.
        assert!(m("[abc", "b"));
        assert!(!m("[abc", "bc"));
        assert!(!m("[", "a"));
        // A trailing backslash is a literal backslash, inside a class or out.
        assert!(m("\\", "\\"));
        assert!(m("a\\", "a\\"));
        // `[\]` is an unterminated class holding an escaped `]`.
        assert!(m("[\\]", "]"));
        assert!(!m("[\\]", "\\"));
        assert!(m("[a-]", "]"));
        // Ranges compare bytes as signed chars: 0xe9 is below 'a'.
        assert!(glob_match(b"[\xe9-a]", b"Z", false));
        assert!(!glob_match(b"[a-\xe9]", b"z", false));
    }
}

/// A property test against a second, deliberately plain implementation of the same rules:
/// index arithmetic instead of slices, full backtracking instead of the skip-longer cut-off,
/// no nesting limit (patterns here are short). The two are written independently, so a
/// shortcut in the fast matcher that changes a result shows up as a counterexample.
#[cfg(test)]
mod reference_tests {
    use super::glob_match;
    use proptest::prelude::*;

    /// C's `tolower` on a (signed) `char` promoted to `int`.
    fn c_lower(c: i32) -> i32 {
        if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
            c + 32
        } else {
            c
        }
    }

    fn signed(b: u8) -> i32 {
        i32::from(b as i8)
    }

    fn same(a: u8, b: u8, nocase: bool) -> bool {
        if nocase {
            c_lower(signed(a)) == c_lower(signed(b))
        } else {
            a == b
        }
    }

    fn reference(p: &[u8], s: &[u8], nocase: bool) -> bool {
        match_at(p, 0, s, 0, nocase)
    }

    fn match_at(p: &[u8], mut pi: usize, s: &[u8], mut si: usize, nocase: bool) -> bool {
        while pi < p.len() && si < s.len() {
            match p[pi] {
                b'*' => {
                    while pi + 1 < p.len() && p[pi + 1] == b'*' {
                        pi += 1;
                    }
                    if pi + 1 == p.len() {
                        return true;
                    }
                    return (si..s.len()).any(|start| match_at(p, pi + 1, s, start, nocase));
                }
                b'?' => si += 1,
                b'[' => {
                    pi += 1;
                    let negate = pi < p.len() && p[pi] == b'^';
                    if negate {
                        pi += 1;
                    }
                    let c = s[si];
                    let mut hit = false;
                    loop {
                        let left = p.len() - pi;
                        if left >= 2 && p[pi] == b'\\' {
                            pi += 1;
                            hit |= p[pi] == c;
                        } else if left >= 1 && p[pi] == b']' {
                            break;
                        } else if left == 0 {
                            // Step back so the common advance below lands on the end.
                            pi -= 1;
                            break;
                        } else if left >= 3 && p[pi + 1] == b'-' {
                            let (mut lo, mut hi) = (signed(p[pi]), signed(p[pi + 2]));
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            let mut x = signed(c);
                            if nocase {
                                (lo, hi, x) = (c_lower(lo), c_lower(hi), c_lower(x));
                            }
                            hit |= lo <= x && x <= hi;
                            pi += 2;
                        } else {
                            hit |= same(p[pi], c, nocase);
                        }
                        pi += 1;
                    }
                    if hit == negate {
                        return false;
                    }
                    si += 1;
                }
                first => {
                    let literal = if first == b'\\' && p.len() - pi >= 2 {
                        pi += 1;
                        p[pi]
                    } else {
                        first
                    };
                    if !same(literal, s[si], nocase) {
                        return false;
                    }
                    si += 1;
                }
            }
            pi += 1;
            if si == s.len() {
                while pi < p.len() && p[pi] == b'*' {
                    pi += 1;
                }
                break;
            }
        }
        pi == p.len() && si == s.len()
    }

    fn bytes_from(alphabet: &'static [u8], max_len: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(alphabet), 0..=max_len)
    }

    const PATTERN_BYTES: &[u8] = b"ab*?[]^-\\A\xe9";
    const SUBJECT_BYTES: &[u8] = b"abAB-]^\\*?[\xe9\x7f";

    const CLASS_BYTES: &[u8] = b"aqzAQZ09]-^\\\x00\x7f\x80\xe9\xff";

    /// One glob token: a literal, `?`, `*`, an escape, or a class (maybe negated, maybe
    /// unterminated) of literals, escapes and ranges.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        let byte = proptest::sample::select(CLASS_BYTES);
        let item = prop_oneof![
            byte.clone().prop_map(|b| vec![b]),
            byte.clone().prop_map(|b| vec![b'\\', b]),
            (byte.clone(), byte.clone()).prop_map(|(lo, hi)| vec![lo, b'-', hi]),
        ];
        let class = (
            any::<bool>(),
            proptest::collection::vec(item, 0..4),
            proptest::bool::weighted(0.9),
        )
            .prop_map(|(negate, items, closed)| {
                let mut out = vec![b'['];
                if negate {
                    out.push(b'^');
                }
                out.extend(items.concat());
                if closed {
                    out.push(b']');
                }
                out
            });
        prop_oneof![
            1 => byte.clone().prop_map(|b| vec![b]),
            1 => Just(b"?".to_vec()),
            1 => Just(b"*".to_vec()),
            1 => byte.prop_map(|b| vec![b'\\', b]),
            3 => class,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn agrees_with_the_reference(
            pattern in bytes_from(PATTERN_BYTES, 12),
            subject in bytes_from(SUBJECT_BYTES, 14),
            nocase in any::<bool>(),
        ) {
            prop_assert_eq!(
                glob_match(&pattern, &subject, nocase),
                reference(&pattern, &subject, nocase),
                "pattern {:?} subject {:?}",
                pattern.escape_ascii().to_string(),
                subject.escape_ascii().to_string()
            );
        }

        /// Patterns made of glob tokens, classes with ranges over high and low bytes in
        /// particular, where the signed-char comparison and escapes inside classes matter.
        #[test]
        fn agrees_on_classes(
            tokens in proptest::collection::vec(token(), 0..6),
            subject in bytes_from(CLASS_BYTES, 6),
            nocase in any::<bool>(),
        ) {
            let pattern = tokens.concat();
            prop_assert_eq!(
                glob_match(&pattern, &subject, nocase),
                reference(&pattern, &subject, nocase),
                "pattern {:?} subject {:?}",
                pattern.escape_ascii().to_string(),
                subject.escape_ascii().to_string()
            );
        }

        /// Patterns built from a subject (bytes replaced by wildcards) must match it, which
        /// random pairs rarely exercise.
        #[test]
        fn wildcarded_subjects_match(
            subject in bytes_from(b"abc-xyz", 16),
            choices in proptest::collection::vec(0u8..8, 16),
        ) {
            let mut pattern = Vec::new();
            for (&byte, &choice) in subject.iter().zip(&choices) {
                match choice {
                    0 => pattern.push(b'?'),
                    1 if byte.is_ascii_lowercase() => pattern.extend_from_slice(b"[a-z]"),
                    2 => pattern.extend_from_slice(b"[^q]"),
                    // A star may stand for this byte or for nothing before it.
                    3 => pattern.extend_from_slice(&[b'*', byte]),
                    4 => pattern.push(b'*'),
                    _ => pattern.push(byte),
                }
            }
            let expected = reference(&pattern, &subject, false);
            prop_assert_eq!(glob_match(&pattern, &subject, false), expected);
            if !subject.is_empty() {
                prop_assert!(
                    expected,
                    "{:?} should match {:?}",
                    pattern.escape_ascii().to_string(),
                    subject.escape_ascii().to_string()
                );
            }
        }
    }
}
