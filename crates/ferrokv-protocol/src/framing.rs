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

/// The second argument (where nearly every command has its key) of each complete multibulk
/// request at the start of `buf`, up to `max` requests, without consuming anything: a
/// pipeline's keys can be looked at before the requests run one by one. Stops at the first
/// request that is incomplete, inline, or malformed; the real parser reports those.
pub fn second_arguments<'a>(buf: &'a [u8], max: usize, mut each: impl FnMut(&'a [u8])) {
    let mut at = 0;
    for _ in 0..max {
        let Some(next) = second_argument_of(buf, at, &mut each) else {
            return;
        };
        at = next;
    }
}

/// Scans the request at `at`, hands its second argument to `each`, and returns where the
/// next request starts; `None` when the request is not complete and well formed.
fn second_argument_of<'a>(
    buf: &'a [u8],
    at: usize,
    each: &mut impl FnMut(&'a [u8]),
) -> Option<usize> {
    if buf.get(at) != Some(&b'*') {
        return None;
    }
    let (head, mut at) = line(buf, at)?;
    let count = decimal(&head[1..])?;
    let mut second = None;
    for index in 0..count {
        if buf.get(at) != Some(&b'$') {
            return None;
        }
        let (len_text, data_at) = line(buf, at)?;
        let len = decimal(&len_text[1..])?;
        let arg = buf.get(data_at..data_at.checked_add(len)?)?;
        if index == 1 {
            second = Some(arg);
        }
        at = data_at + len + 2;
        if at > buf.len() {
            return None;
        }
    }
    if let Some(arg) = second {
        each(arg);
    }
    Some(at)
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

    fn seconds(buf: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        second_arguments(buf, max, |arg| found.push(arg.to_vec()));
        found
    }

    #[test]
    fn second_arguments_of_complete_requests_only() {
        let pipeline = b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*1\r\n$4\r\nPING\r\n\
                         *3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$1\r\nv\r\n";
        assert_eq!(seconds(pipeline, 16), [b"k1".to_vec(), b"k2".to_vec()]);
        assert_eq!(seconds(pipeline, 1), [b"k1".to_vec()]);
        // The last request has not all arrived: its key is not looked at.
        let cut = &pipeline[..pipeline.len() - 3];
        assert_eq!(seconds(cut, 16), [b"k1".to_vec()]);
        assert_eq!(
            seconds(b"*2\r\n$3\r\nGET\r\n$2\r\nk", 16),
            Vec::<Vec<u8>>::new()
        );
        // Inline, malformed and huge lengths end the scan without a panic.
        assert!(seconds(b"GET k1\r\n", 16).is_empty());
        assert!(seconds(b"*2\r\n:3\r\n", 16).is_empty());
        assert!(seconds(b"*2\r\n$3\r\nGET\r\n$99999999999999999999\r\nk\r\n", 16).is_empty());
        assert!(seconds(b"*9999999999\r\n$1\r\na\r\n", 16).is_empty());
    }
}
