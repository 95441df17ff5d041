//! Splitting a text line into arguments the way Valkey's inline protocol, redis-cli and the
//! config file parser do: whitespace separates arguments, double quotes allow `\n`, `\r`,
//! `\t`, `\b`, `\a` and `\xHH` escapes, single quotes allow only `\'`. A closing quote ends
//! the quoted section, not the argument: as in Valkey 9.1, `"a"b` is the one argument `ab`.

/// Why a line could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnbalancedQuotes;

/// Splits `line` into arguments. An empty or all-blank line yields no arguments.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, UnbalancedQuotes> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                if i >= n {
                    return Err(UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && let (Some(hi), Some(lo)) = (hex_value(line[i + 2]), hex_value(line[i + 3]))
                {
                    current.push(hi * 16 + lo);
                    i += 4;
                    continue;
                }
                if c == b'\\' && i + 1 < n {
                    current.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    in_double = false;
                    i += 1;
                    continue;
                }
                current.push(c);
                i += 1;
            } else if in_single {
                if i >= n {
                    return Err(UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    current.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    in_single = false;
                    i += 1;
                    continue;
                }
                current.push(c);
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    c => current.push(c),
                }
                i += 1;
            }
        }
        args.push(current);
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_args(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn plain_words_split_on_any_whitespace() {
        assert_eq!(split("  set  foo\tbar \r\n"), ["set", "foo", "bar"]);
        assert!(split("   ").is_empty());
    }

    #[test]
    fn double_quotes_understand_escapes() {
        assert_eq!(split(r#"set "a b" "\x41\n""#), ["set", "a b", "A\n"]);
        assert_eq!(split(r#""\q""#), ["q"]);
        assert_eq!(split(r#""""#), [""]);
    }

    #[test]
    fn single_quotes_only_escape_the_quote() {
        assert_eq!(split(r"'it\'s \n'"), [r"it's \n"]);
    }

    #[test]
    fn quotes_must_close() {
        assert_eq!(split_args(b"\"abc"), Err(UnbalancedQuotes));
        assert_eq!(split_args(b"'abc"), Err(UnbalancedQuotes));
    }

    #[test]
    fn text_after_a_closing_quote_continues_the_argument() {
        assert_eq!(split(r#""abc"def x"#), ["abcdef", "x"]);
        assert_eq!(split(r#"'x'y"#), ["xy"]);
        assert_eq!(split(r#""a""b""#), ["ab"]);
    }

    #[test]
    fn quote_inside_a_word_opens_a_quoted_section() {
        assert_eq!(split("ab\"c d\""), ["abc d"]);
    }
}
