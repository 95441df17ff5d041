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

/// The arguments of each complete multibulk request at the start of `buf`, up to `max`
/// requests, without consuming anything: a pipeline's keys can be looked at before the
/// requests run one by one. Stops at the first request that is incomplete, inline, or
/// malformed (the real parser reports those), and at a request of more than `MAX_SEEN`
/// arguments (it is handed over with its first `MAX_SEEN`).
pub fn complete_requests<'a>(buf: &'a [u8], max: usize, mut each: impl FnMut(&[&'a [u8]])) {
    let mut args = smallvec::SmallVec::<[&[u8]; 16]>::new();
    let mut at = 0;
    for _ in 0..max {
        args.clear();
        let Some(next) = request_at(buf, at, &mut args) else {
            return;
        };
        each(&args);
        at = next;
    }
}

/// The most arguments of one request [`complete_requests`] collects.
pub const MAX_SEEN: usize = 256;

/// Collects the arguments of the request at `at` (its first [`MAX_SEEN`]) and returns where
/// the next request starts; `None` when the request is not complete and well formed.
fn request_at<'a>(
    buf: &'a [u8],
    at: usize,
    args: &mut smallvec::SmallVec<[&'a [u8]; 16]>,
) -> Option<usize> {
    if buf.get(at) != Some(&b'*') {
        return None;
    }
    let (head, mut at) = line(buf, at)?;
    let count = decimal(&head[1..])?;
    for _ in 0..count {
        if buf.get(at) != Some(&b'$') {
            return None;
        }
        let (len_text, data_at) = line(buf, at)?;
        let len = decimal(&len_text[1..])?;
        let arg = buf.get(data_at..data_at.checked_add(len)?)?;
        if args.len() < MAX_SEEN {
            args.push(arg);
        }
        at = data_at + len + 2;
        if at > buf.len() {
            return None;
        }
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

    fn requests(buf: &[u8], max: usize) -> Vec<Vec<Vec<u8>>> {
        let mut found = Vec::new();
        complete_requests(buf, max, |args| {
            found.push(args.iter().map(|a| a.to_vec()).collect())
        });
        found
    }

    fn seconds(buf: &[u8], max: usize) -> Vec<Vec<u8>> {
        requests(buf, max)
            .into_iter()
            .filter_map(|args| args.get(1).cloned())
            .collect()
    }

    #[test]
    fn complete_requests_only() {
        let pipeline = b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*1\r\n$4\r\nPING\r\n\
                         *3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$1\r\nv\r\n";
        assert_eq!(requests(pipeline, 16).len(), 3);
        assert_eq!(requests(pipeline, 16)[1], [b"PING".to_vec()]);
        assert_eq!(seconds(pipeline, 16), [b"k1".to_vec(), b"k2".to_vec()]);
        assert_eq!(seconds(pipeline, 1), [b"k1".to_vec()]);
        // The last request has not all arrived: it is not handed over.
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
        // A request with more arguments than are collected is handed over with the first.
        let mut long = b"*300\r\n".to_vec();
        for _ in 0..300 {
            long.extend_from_slice(b"$1\r\nk\r\n");
        }
        assert_eq!(requests(&long, 16)[0].len(), MAX_SEEN);
        assert!(seconds(b"*9999999999\r\n$1\r\na\r\n", 16).is_empty());
    }
}
