//! Parsing and printing of directive values as Valkey's config does.

/// Parses `yes`/`no` (case-insensitive).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

pub fn format_bool(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Parses a memory amount: a plain number of bytes or one with a unit (`k`, `kb`, `m`, `mb`,
/// `g`, `gb`; case-insensitive; `k` is 1000 and `kb` is 1024, as in Valkey).
pub fn parse_memory(s: &str) -> Result<i64, String> {
    let lower = s.to_ascii_lowercase();
    let units: [(&str, i64); 6] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
    ];
    let (digits, mul) = units
        .iter()
        .find(|(u, _)| lower.ends_with(u))
        .map(|(u, m)| (&lower[..lower.len() - u.len()], *m))
        .unwrap_or((lower.as_str(), 1));
    let n = ferrokv_protocol::number::parse_i64(digits.as_bytes())
        .ok_or("argument must be a memory value")?;
    n.checked_mul(mul)
        .ok_or_else(|| "argument must be a memory value".into())
}

/// Parses an integer within `[min, max]`, with Valkey's error texts.
pub fn parse_int(s: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = ferrokv_protocol::number::parse_i64(s.as_bytes())
        .ok_or("argument couldn't be parsed into an integer")?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_follow_valkey() {
        assert_eq!(parse_memory("1gb"), Ok(1 << 30));
        assert_eq!(parse_memory("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory("512"), Ok(512));
        assert!(parse_memory("1tb").is_err());
    }
}
