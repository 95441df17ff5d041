//! Parsing and printing of directive values the way Valkey's config does.
//!
//! Each function here is one value rule, with Valkey's exact error text, so that a config file
//! or a CONFIG SET is accepted or refused exactly where Valkey accepts or refuses it.

/// Parses `yes`/`no` (case-insensitive).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    if s.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

pub fn format_bool(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// A strict decimal integer: an optional `-`, no `+`, no leading zeros, no spaces.
pub fn strict_i64(s: &str) -> Option<i64> {
    ferrokv_protocol::number::parse_i64(s.as_bytes())
}

/// Parses an integer within `[min, max]`, with Valkey's error texts.
pub fn parse_int(s: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = strict_i64(s).ok_or("argument couldn't be parsed into an integer")?;
    check_range(n, min, max)
}

pub fn check_range(n: i64, min: i64, max: i64) -> Result<i64, String> {
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

/// A byte count with an optional unit, as Valkey's `memtoull` reads it: decimal digits
/// (leading zeros allowed, no sign) followed by `b`, `k`, `kb`, `m`, `mb`, `g` or `gb` in any
/// case; `k` is 1000 and `kb` is 1024. The product wraps like C's unsigned arithmetic, and an
/// empty number counts as 0 (`""` and `"kb"` are 0 in Valkey too).
pub fn parse_memory_u64(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    const UNITS: [(&str, u64); 7] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("b", 1),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
    ];
    let (digits, mul) = UNITS
        .iter()
        .find(|(u, _)| lower.ends_with(u))
        .map(|(u, m)| (&lower[..lower.len() - u.len()], *m))
        .unwrap_or((lower.as_str(), 1));
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = if digits.is_empty() {
        0
    } else {
        digits.parse::<u64>().ok()?
    };
    Some(n.wrapping_mul(mul))
}

/// Parses a signed memory directive bounded by `[min, max]`. The unsigned byte count is
/// reinterpreted as signed (as Valkey stores it); directives that allow negative values also
/// take a plain negative integer.
pub fn parse_memory(s: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = match parse_memory_u64(s) {
        Some(n) => n as i64,
        None if min < 0 => strict_i64(s).ok_or("argument must be a memory value")?,
        None => return Err("argument must be a memory value".into()),
    };
    check_range(n, min, max)
}

/// Parses a memory amount or a percentage (`10%`), the latter stored as a negative number.
pub fn parse_memory_or_percent(s: &str) -> Result<i64, String> {
    const BAD: &str = "argument must be a memory or percent value";
    let n = if let Some(digits) = s.strip_suffix('%') {
        let p = strict_i64(digits).filter(|&p| p >= 0).ok_or(BAD)?;
        -p
    } else {
        parse_memory_u64(s).ok_or(BAD)? as i64
    };
    if n < 0 && n.unsigned_abs() > 100 {
        return Err("percentage argument must be less or equal to 100".into());
    }
    Ok(n)
}

pub fn format_memory_or_percent(n: i64) -> String {
    if n < 0 {
        format!("{}%", n.unsigned_abs())
    } else {
        n.to_string()
    }
}

/// A byte count for CONFIG REWRITE: the largest binary unit that divides it exactly.
pub fn format_memory_human(n: i128) -> String {
    const GB: i128 = 1 << 30;
    const MB: i128 = 1 << 20;
    const KB: i128 = 1 << 10;
    if n > 0 && n % GB == 0 {
        format!("{}gb", n / GB)
    } else if n > 0 && n % MB == 0 {
        format!("{}mb", n / MB)
    } else if n > 0 && n % KB == 0 {
        format!("{}kb", n / KB)
    } else {
        n.to_string()
    }
}

/// Finds `s` among `choices` ignoring case, returning the spelling of the table.
pub fn parse_enum(s: &str, choices: &[&'static str]) -> Result<&'static str, String> {
    choices
        .iter()
        .find(|c| c.eq_ignore_ascii_case(s))
        .copied()
        .ok_or_else(|| {
            format!(
                "argument(s) must be one of the following: {}",
                choices.join(", ")
            )
        })
}

/// Several words from `choices` (the first choice means "none"), printed in table order.
pub fn parse_enum_flags(s: &str, choices: &[&'static str]) -> Result<String, String> {
    let mut set = vec![false; choices.len()];
    let words: Vec<&str> = s.split(' ').collect();
    for w in &words {
        let chosen = parse_enum(w, choices)?;
        if let Some(i) = choices.iter().position(|c| *c == chosen) {
            set[i] = true;
        }
    }
    Ok(format_enum_flags(&set, choices))
}

fn format_enum_flags(set: &[bool], choices: &[&'static str]) -> String {
    let names: Vec<&str> = choices
        .iter()
        .zip(set)
        .skip(1)
        .filter(|(_, on)| **on)
        .map(|(c, _)| *c)
        .collect();
    if names.is_empty() {
        choices.first().copied().unwrap_or("").to_string()
    } else {
        names.join(" ")
    }
}

/// Parses an octal number (unixsocketperm).
pub fn parse_octal(s: &str) -> Result<i64, String> {
    const BAD: &str = "argument couldn't be parsed as an octal number";
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(BAD.into());
    }
    i64::from_str_radix(s, 8).map_err(|_| BAD.to_string())
}

/// Quotes a string the way Valkey's `sdscatrepr` does (CONFIG REWRITE, `--directive` values).
pub fn repr(s: &str) -> String {
    let mut out = String::from("\"");
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_follow_valkey() {
        assert_eq!(parse_memory_u64("1gb"), Some(1 << 30));
        assert_eq!(parse_memory_u64("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory_u64("5KB"), Some(5120));
        assert_eq!(parse_memory_u64("1b"), Some(1));
        assert_eq!(parse_memory_u64("00012"), Some(12));
        assert_eq!(parse_memory_u64(""), Some(0));
        assert_eq!(parse_memory_u64("kb"), Some(0));
        for bad in ["1tb", "+5", " 5", "-1", "1.5mb", "0x10", "1kbb", "1e3"] {
            assert_eq!(parse_memory_u64(bad), None, "{bad}");
        }
        assert_eq!(
            parse_memory("-1", 0, i64::MAX).unwrap_err(),
            "argument must be a memory value"
        );
        assert_eq!(parse_memory("-1", -1, i64::MAX), Ok(-1));
        assert_eq!(parse_memory("18446744073709551615", -1, i64::MAX), Ok(-1));
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_memory_or_percent("10%"), Ok(-10));
        assert_eq!(format_memory_or_percent(-10), "10%");
        assert_eq!(parse_memory_or_percent("0%"), Ok(0));
        assert!(parse_memory_or_percent("00050%").is_err());
        assert_eq!(
            parse_memory_or_percent("101%").unwrap_err(),
            "percentage argument must be less or equal to 100"
        );
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_int("5", 0, 10), Ok(5));
        for bad in ["007", "+5", "-0", " 5", "abc", ""] {
            assert_eq!(
                parse_int(bad, -10, 10).unwrap_err(),
                "argument couldn't be parsed into an integer",
                "{bad}"
            );
        }
    }

    #[test]
    fn enum_flags_print_in_table_order() {
        let c = &[
            "default", "save", "nosave", "now", "force", "safe", "failover",
        ];
        assert_eq!(
            parse_enum_flags("failover safe force now nosave", c).unwrap(),
            "nosave now force safe failover"
        );
        assert_eq!(parse_enum_flags("default now", c).unwrap(), "now");
        assert_eq!(parse_enum_flags("default", c).unwrap(), "default");
        assert!(parse_enum_flags("", c).is_err());
    }

    #[test]
    fn human_memory() {
        assert_eq!(format_memory_human(3 << 30), "3gb");
        assert_eq!(format_memory_human(16384), "16kb");
        assert_eq!(format_memory_human(1000), "1000");
        assert_eq!(format_memory_human(0), "0");
    }
}
