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
}
