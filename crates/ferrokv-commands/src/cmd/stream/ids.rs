//! Stream ID arguments, parsed by Valkey's rules (`streamGenericParseIDOrReply`).
//!
//! Each half goes through Valkey's `string2ull`: a canonical signed 64-bit integer is
//! accepted when non-negative; anything else goes through C's `strtoull`, which skips
//! leading whitespace, takes a sign (negating modulo 2^64) and leading zeros, and rejects
//! overflow and trailing characters. The argument is a C string there, so it ends at the
//! first zero byte; longer than 127 bytes is invalid.

use ferrokv_protocol::number::parse_i64;
use ferrokv_store::types::stream::StreamId;

use crate::context::CmdError;

pub const INVALID_ID: CmdError = CmdError(std::borrow::Cow::Borrowed(
    "ERR Invalid stream ID specified as stream command argument",
));

/// Valkey's `string2ull`.
fn parse_half(text: &[u8]) -> Option<u64> {
    if let Some(n) = parse_i64(text) {
        return u64::try_from(n).ok();
    }
    let mut rest = text;
    while let [c, tail @ ..] = rest
        && matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    {
        rest = tail;
    }
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in rest {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// What an ID argument may be.
#[derive(Clone, Copy)]
pub struct IdRules {
    /// `-` and `+` alone are refused.
    pub strict: bool,
    /// The sequence when only milliseconds are given.
    pub missing_seq: u64,
    /// `ms-*` is allowed (XADD).
    pub allow_seq_wildcard: bool,
}

/// A parsed ID, and whether its sequence was given (false for XADD's `ms-*`).
pub fn parse_with(arg: &[u8], rules: IdRules) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 127 {
        return Err(INVALID_ID);
    }
    let text = match arg.iter().position(|&b| b == 0) {
        Some(nul) => &arg[..nul],
        None => arg,
    };
    match text {
        b"-" | b"+" if rules.strict => return Err(INVALID_ID),
        b"-" => return Ok((StreamId::ZERO, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms_text, seq_text) = match text.iter().position(|&b| b == b'-') {
        Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
        None => (text, None),
    };
    let ms = parse_half(ms_text).ok_or(INVALID_ID)?;
    match seq_text {
        Some(b"*") if rules.allow_seq_wildcard => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((StreamId::new(ms, parse_half(seq).ok_or(INVALID_ID)?), true)),
        None => Ok((StreamId::new(ms, rules.missing_seq), true)),
    }
}

/// An exact ID (no `-`/`+`); a missing sequence is 0.
pub fn strict(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_with(
        arg,
        IdRules {
            strict: true,
            missing_seq: 0,
            allow_seq_wildcard: false,
        },
    )
    .map(|(id, _)| id)
}

/// An ID where `-` and `+` mean the smallest and largest.
pub fn loose(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    parse_with(
        arg,
        IdRules {
            strict: false,
            missing_seq,
            allow_seq_wildcard: false,
        },
    )
    .map(|(id, _)| id)
}

/// A range bound: `(` before an exact ID excludes it (XRANGE, XPENDING, XAUTOCLAIM).
/// Returns the inclusive bound, or Valkey's error when excluding it leaves nothing.
pub fn interval_start(arg: &[u8]) -> Result<StreamId, CmdError> {
    match arg.strip_prefix(b"(").filter(|_| arg.len() > 1) {
        Some(rest) => strict(rest)?
            .successor()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval")),
        None => loose(arg, 0),
    }
}

pub fn interval_end(arg: &[u8]) -> Result<StreamId, CmdError> {
    match arg.strip_prefix(b"(").filter(|_| arg.len() > 1) {
        Some(rest) => parse_with(
            rest,
            IdRules {
                strict: true,
                missing_seq: u64::MAX,
                allow_seq_wildcard: false,
            },
        )?
        .0
        .predecessor()
        .ok_or_else(|| CmdError::err("invalid end ID for the interval")),
        None => loose(arg, u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_follow_string2ull() {
        assert_eq!(parse_half(b"0"), Some(0));
        assert_eq!(parse_half(b"-1"), None);
        assert_eq!(parse_half(b"-0"), Some(0));
        assert_eq!(parse_half(b"+5"), Some(5));
        assert_eq!(parse_half(b"007"), Some(7));
        assert_eq!(parse_half(b" \t3"), Some(3));
        assert_eq!(parse_half(b" -1"), Some(u64::MAX));
        assert_eq!(parse_half(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_half(b"18446744073709551616"), None);
        assert_eq!(parse_half(b""), None);
        assert_eq!(parse_half(b"3 "), None);
        assert_eq!(parse_half(b"0x1"), None);
    }

    #[test]
    fn ids_and_bounds() {
        assert_eq!(strict(b"5"), Ok(StreamId::new(5, 0)));
        assert_eq!(loose(b"5", u64::MAX), Ok(StreamId::new(5, u64::MAX)));
        assert_eq!(strict(b"1-2"), Ok(StreamId::new(1, 2)));
        assert!(strict(b"-").is_err());
        assert_eq!(loose(b"+", 0), Ok(StreamId::MAX));
        assert!(strict(b"1-2-3").is_err());
        assert_eq!(strict(b"1\x00junk"), Ok(StreamId::new(1, 0)));
        assert_eq!(interval_start(b"(1-2"), Ok(StreamId::new(1, 3)));
        assert_eq!(interval_end(b"(2"), Ok(StreamId::new(2, u64::MAX - 1)));
        assert_eq!(interval_end(b"(2-0"), Ok(StreamId::new(1, u64::MAX)));
        assert!(interval_end(b"(0-0").is_err());
        assert_eq!(interval_start(b"("), Err(INVALID_ID));
    }
}
