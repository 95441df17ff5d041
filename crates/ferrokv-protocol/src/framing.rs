//! Scanning RESP text that is already in memory (a replica's stream from its primary, an
//! AOF file), where the whole command may or may not have arrived yet: the pieces both
//! readers share. The client-facing parser is `request.rs`, with its own limits and errors.

/// The CRLF-terminated line starting at `at`, and the position after its CRLF; `None` when
/// the CRLF has not arrived.
pub fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

/// An unsigned decimal made of digits only (a multibulk count, a bulk length); `None` when
/// empty, not all digits, or too large for `usize`.
pub fn decimal(text: &[u8]) -> Option<usize> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(usize::from(b - b'0')))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_decimals() {
        assert_eq!(line(b"*2\r\n$3", 0), Some((&b"*2"[..], 4)));
        assert_eq!(line(b"*2\r", 0), None);
        assert_eq!(line(b"ab", 5), None);
        assert_eq!(decimal(b"123"), Some(123));
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"-1"), None);
        assert_eq!(decimal(b"1x"), None);
        assert_eq!(decimal(b"99999999999999999999999"), None);
    }
}
