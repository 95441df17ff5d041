//! Incremental parsing of client requests.
//!
//! A client sends either multibulk requests (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or inline
//! requests (`GET k\r\n`). The parser keeps its position inside a half-received multibulk
//! request, so a request that arrives in many small reads is scanned once, not once per read.
//! Completed arguments are split off the read buffer as [`Bytes`] without copying.

use bytes::{Buf, Bytes, BytesMut};

use crate::split_args::split_args;

/// Longest inline request, multibulk count line or bulk length line accepted (Valkey's
/// `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX_SIZE: usize = 64 * 1024;
/// Clients that have not authenticated may send at most this many arguments...
pub const UNAUTHENTICATED_MAX_MULTIBULK: i64 = 10;
/// ...each at most this long, so an unauthenticated stranger cannot make the server buffer much.
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;

/// The limits in force for one client when its next request is parsed.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: i64,
    /// Whether the client still has to authenticate (tighter limits apply).
    pub unauthenticated: bool,
    /// Replication links from a primary are trusted with any bulk length.
    pub from_primary: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bulk_len: 512 * 1024 * 1024,
            unauthenticated: false,
            from_primary: false,
        }
    }
}

/// A malformed request. The text is what Valkey replies (after `-ERR `) before it closes the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(text: impl Into<String>) -> Self {
        ProtocolError(text.into())
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Parses requests out of a client's read buffer, remembering where it stopped.
#[derive(Debug, Default)]
pub struct RequestParser {
    pending: Option<Multibulk>,
    /// Bytes taken for the request being parsed, and for the last one returned (what
    /// COMMANDLOG's large-request log measures: the request as sent).
    consumed: usize,
    last_request_bytes: usize,
    /// The line end (`\n` or `\r\n`) of the inline request just taken.
    inline_line_end: usize,
    /// Whole requests at the front of the buffer, framed ahead of their turn so that a
    /// pipeline is scanned once: for the keys it will touch, then to take it request by
    /// request. `ahead[next_ahead..]` are the ones not taken yet. This is only a map of the
    /// bytes, which stay in the buffer: it holds because only this parser takes bytes from
    /// the front of the buffer and reads only append at its end.
    ahead: Vec<Framed>,
    next_ahead: usize,
    /// The bytes those take at the front of the buffer.
    ahead_bytes: usize,
    /// The arguments of the framed requests, as offsets from their request's first byte.
    spans: Vec<(u32, u32)>,
}

/// One whole multibulk request located in the buffer.
#[derive(Debug)]
struct Framed {
    /// Its size in bytes, from `*` to the CRLF after its last argument.
    len: usize,
    /// Its arguments in [`RequestParser::spans`].
    args: std::ops::Range<usize>,
    /// Its longest argument, checked again when it is taken: `proto-max-bulk-len` may have
    /// changed since.
    longest: usize,
}

/// The most arguments framed ahead at once, over all requests (what sixteen MSETs of ten
/// keys need, and more); a request that would go over is left to be parsed in its turn.
const MAX_AHEAD_ARGS: usize = 1024;

#[derive(Debug)]
struct Multibulk {
    remaining: usize,
    args: Vec<Bytes>,
    /// Length of the bulk whose `$len` line was read but whose payload has not all arrived.
    bulk_len: Option<usize>,
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the parser is in the middle of a request (used for `qbuf` accounting and to tell
    /// a clean disconnect from a half-sent request).
    pub fn is_mid_request(&self) -> bool {
        self.pending.is_some()
    }

    /// The size in bytes, as sent, of the request [`Self::next_request`] returned last.
    pub fn last_request_bytes(&self) -> usize {
        self.last_request_bytes
    }

    /// Takes the next complete request out of `buf`. Returns `Ok(None)` when more bytes are
    /// needed. Empty requests (a blank inline line, `*0`) are consumed silently.
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParseLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        // The buffer only shrinks while parsing: what it lost is what this call took.
        let before = buf.len();
        let result = self.take_request(buf, limits);
        self.consumed += before - buf.len();
        if let Ok(Some(_)) = result {
            // An inline request counts without its line end, as Valkey counts it.
            let line_end = std::mem::take(&mut self.inline_line_end);
            self.last_request_bytes = std::mem::take(&mut self.consumed) - line_end;
        }
        result
    }

    /// Frames up to `max` more whole requests at the front of `buf`, after those framed
    /// already, without taking them; they are then handed out by [`Self::for_each_framed`]
    /// and taken by [`Self::next_request`] without being scanned again. Stops at the first
    /// request that is not a whole, well-formed multibulk request in canonical form within
    /// the limits (incomplete, inline, empty, a length with a leading zero, ...): that one is
    /// parsed in its turn, with Valkey's exact errors.
    #[inline]
    pub fn frame_ahead(&mut self, buf: &[u8], max: usize, limits: &ParseLimits) {
        // The common case, the read's only request already taken, costs a comparison.
        if buf.len() > self.ahead_bytes && self.pending.is_none() && !limits.unauthenticated {
            self.frame_more(buf, max, limits);
        }
    }

    fn frame_more(&mut self, buf: &[u8], max: usize, limits: &ParseLimits) {
        let mut at = self.ahead_bytes;
        for _ in 0..max {
            let first_arg = self.spans.len();
            let Some((len, longest)) = frame_request(buf, at, limits, &mut self.spans) else {
                self.spans.truncate(first_arg);
                return;
            };
            self.ahead.push(Framed {
                len,
                args: first_arg..self.spans.len(),
                longest,
            });
            at += len;
            self.ahead_bytes = at;
        }
    }

    /// Whether requests framed ahead wait to be taken.
    #[inline]
    pub fn has_framed(&self) -> bool {
        self.next_ahead < self.ahead.len()
    }

    /// Hands the arguments of each request framed ahead and not yet taken to `each`, in
    /// order. `buf` must be the buffer they were framed in.
    pub fn for_each_framed(&self, buf: &[u8], mut each: impl FnMut(&[&[u8]])) {
        let mut at = 0;
        let mut args = smallvec::SmallVec::<[&[u8]; 16]>::new();
        for framed in &self.ahead[self.next_ahead..] {
            let Some(request) = buf.get(at..at + framed.len) else {
                return;
            };
            args.clear();
            args.extend(
                self.spans[framed.args.clone()]
                    .iter()
                    .map(|&(start, end)| &request[start as usize..end as usize]),
            );
            each(&args);
            at += framed.len;
        }
    }

    /// Takes the next request framed ahead, or `None` (and forgets what was framed) when
    /// there is none or the limits no longer let it through the short way.
    fn take_framed(&mut self, buf: &mut BytesMut, limits: &ParseLimits) -> Option<Vec<Bytes>> {
        let framed = self.ahead.get(self.next_ahead)?;
        let over_limit = !limits.from_primary && framed.longest as i64 > limits.max_bulk_len;
        if limits.unauthenticated || over_limit || buf.len() < framed.len {
            self.forget_framed();
            return None;
        }
        let frame = buf.split_to(framed.len).freeze();
        let args = self.spans[framed.args.clone()]
            .iter()
            .map(|&(start, end)| frame.slice(start as usize..end as usize))
            .collect();
        self.next_ahead += 1;
        self.ahead_bytes -= frame.len();
        if self.next_ahead == self.ahead.len() {
            self.forget_framed();
        }
        Some(args)
    }

    fn forget_framed(&mut self) {
        self.ahead_bytes = 0;
        self.ahead.clear();
        self.spans.clear();
        self.next_ahead = 0;
    }

    fn take_request(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParseLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.pending.is_none() && !limits.unauthenticated {
            let taken = if self.has_framed() {
                self.take_framed(buf, limits)
            } else {
                take_whole_request(buf, limits)
            };
            if taken.is_some() {
                return Ok(taken);
            }
        }
        loop {
            if self.pending.is_none() {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first != b'*' {
                    match parse_inline(buf)? {
                        None => return Ok(None),
                        Some((args, _)) if args.is_empty() => continue,
                        Some((args, line_end)) => {
                            self.inline_line_end = line_end;
                            return Ok(Some(args));
                        }
                    }
                }
                let Some(line_end) = find_line(buf, 1) else {
                    if buf.len() > INLINE_MAX_SIZE {
                        return Err(ProtocolError::new(
                            "Protocol error: too big mbulk count string",
                        ));
                    }
                    return Ok(None);
                };
                let count = parse_i64(&buf[1..line_end]).filter(|&n| n <= i32::MAX as i64);
                let Some(count) = count else {
                    return Err(ProtocolError::new(
                        "Protocol error: invalid multibulk length",
                    ));
                };
                if limits.unauthenticated && count > UNAUTHENTICATED_MAX_MULTIBULK {
                    return Err(ProtocolError::new(
                        "Protocol error: unauthenticated multibulk length",
                    ));
                }
                check_crlf(buf, line_end)?;
                buf.advance(line_end + 2);
                if count <= 0 {
                    continue;
                }
                let count = count as usize;
                self.pending = Some(Multibulk {
                    remaining: count,
                    // The count is untrusted: grow with the arguments that really arrive.
                    args: Vec::with_capacity(count.min(1024)),
                    bulk_len: None,
                });
            }
            let Some(mb) = self.pending.as_mut() else {
                continue;
            };
            while mb.remaining > 0 {
                let len = match mb.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(&first) = buf.first() else {
                            return Ok(None);
                        };
                        let Some(line_end) = find_line(buf, 0) else {
                            if buf.len() > INLINE_MAX_SIZE {
                                return Err(ProtocolError::new(
                                    "Protocol error: too big bulk count string",
                                ));
                            }
                            return Ok(None);
                        };
                        if first != b'$' {
                            return Err(ProtocolError(format!(
                                "Protocol error: expected '$', got '{}'",
                                first as char
                            )));
                        }
                        let len = parse_i64(&buf[1..line_end]);
                        let len = match len {
                            Some(n)
                                if n >= 0 && (limits.from_primary || n <= limits.max_bulk_len) =>
                            {
                                n
                            }
                            _ => {
                                return Err(ProtocolError::new(
                                    "Protocol error: invalid bulk length",
                                ));
                            }
                        };
                        if limits.unauthenticated && len > UNAUTHENTICATED_MAX_BULK {
                            return Err(ProtocolError::new(
                                "Protocol error: unauthenticated bulk length",
                            ));
                        }
                        check_crlf(buf, line_end)?;
                        buf.advance(line_end + 2);
                        let len = len as usize;
                        mb.bulk_len = Some(len);
                        len
                    }
                };
                if buf.len() < len + 2 {
                    // Reserve what the announced bulk still needs, up to a bound, so a large
                    // value is read with few reallocations but a lying header costs little.
                    buf.reserve((len + 2 - buf.len()).min(1 << 20));
                    return Ok(None);
                }
                // Valkey 9 checks the CRLF after the payload too.
                if buf[len] != b'\r' {
                    return Err(ProtocolError::new(
                        "Protocol error: invalid CRLF in request",
                    ));
                }
                check_crlf(buf, len)?;
                let arg = buf.split_to(len).freeze();
                buf.advance(2);
                mb.args.push(arg);
                mb.remaining -= 1;
                mb.bulk_len = None;
            }
            let done = self.pending.take().map(|mb| mb.args).unwrap_or_default();
            return Ok(Some(done));
        }
    }
}

/// The most arguments [`take_whole_request`] handles; longer requests take the general path.
const WHOLE_MAX_ARGS: usize = 16;

/// The first request of a read, in one pass: a well-formed multibulk request that has
/// arrived whole is located by offsets on the stack and split off the buffer at once, its
/// arguments sliced out of that one piece (the general path below splits and advances the
/// buffer for every line). Anything else (incomplete, malformed, an empty or long request, a
/// length that needs checking against the limits) returns `None` untouched, for the general
/// path and its exact errors. The requests after it are framed ahead in a batch instead
/// ([`RequestParser::frame_ahead`]).
fn take_whole_request(buf: &mut BytesMut, limits: &ParseLimits) -> Option<Vec<Bytes>> {
    let bytes: &[u8] = buf;
    if bytes.first() != Some(&b'*') {
        return None;
    }
    let (count, mut at) = whole_line_number(bytes, 1)?;
    if count == 0 || count > WHOLE_MAX_ARGS {
        return None;
    }
    let mut spans = [(0usize, 0usize); WHOLE_MAX_ARGS];
    for span in spans.iter_mut().take(count) {
        *span = whole_argument(bytes, at, limits)?;
        at = span.1 + 2;
    }
    let frame = buf.split_to(at).freeze();
    Some(
        spans[..count]
            .iter()
            .map(|&(start, end)| frame.slice(start..end))
            .collect(),
    )
}

/// Locates the well-formed multibulk request that has arrived whole at `start` in one pass:
/// its arguments' offsets (from `start`) are pushed on `spans`; returns its size and its
/// longest argument. Anything else (incomplete, malformed, an empty request, a length that
/// is not canonical or over the limits, too many arguments) gives `None`, leaving the
/// request to the general parser and its exact errors; the caller drops what was pushed.
fn frame_request(
    buf: &[u8],
    start: usize,
    limits: &ParseLimits,
    spans: &mut Vec<(u32, u32)>,
) -> Option<(usize, usize)> {
    let bytes = buf.get(start..)?;
    if bytes.first() != Some(&b'*') {
        return None;
    }
    let (count, mut at) = whole_line_number(bytes, 1)?;
    if count == 0 || spans.len() + count > MAX_AHEAD_ARGS {
        return None;
    }
    let mut longest = 0;
    for _ in 0..count {
        let (data_at, end) = whole_argument(bytes, at, limits)?;
        spans.push((u32::try_from(data_at).ok()?, u32::try_from(end).ok()?));
        longest = longest.max(end - data_at);
        at = end + 2;
    }
    Some((at, longest))
}

/// The bulk argument at `at` of a request that arrived whole: where its data starts and
/// ends, when its length is canonical and within the limits and CRLF follows it.
#[inline]
fn whole_argument(bytes: &[u8], at: usize, limits: &ParseLimits) -> Option<(usize, usize)> {
    if bytes.get(at) != Some(&b'$') {
        return None;
    }
    let (len, data_at) = whole_line_number(bytes, at + 1)?;
    if !limits.from_primary && len as i64 > limits.max_bulk_len {
        return None;
    }
    let end = data_at.checked_add(len)?;
    if bytes.get(end..end.checked_add(2)?)? != b"\r\n" {
        return None;
    }
    Some((data_at, end))
}

/// A number in canonical form (`0`, or digits without a leading zero; at most 18 of them)
/// starting at `at` and ended by CRLF, and the position after the CRLF. Any other form goes
/// to the general parser, which knows Valkey's rules and errors for it.
fn whole_line_number(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let rest = bytes.get(at..)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 18 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    if rest.get(digits..digits + 2)? != b"\r\n" {
        return None;
    }
    let n = rest[..digits]
        .iter()
        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    Some((n, at + digits + 2))
}

/// Parses one inline request; `Ok(Some(vec![]))` for a blank line.
/// An inline request's arguments and the length of its line end.
type InlineRequest = (Vec<Bytes>, usize);

fn parse_inline(buf: &mut BytesMut) -> Result<Option<InlineRequest>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX_SIZE {
            return Err(ProtocolError::new("Protocol error: too big inline request"));
        }
        return Ok(None);
    };
    let line = buf.split_to(newline + 1);
    let mut text = &line[..newline];
    if let Some(stripped) = text.strip_suffix(b"\r") {
        text = stripped;
    }
    let line_end = line.len() - text.len();
    let args = split_args(text)
        .map_err(|_| ProtocolError::new("Protocol error: unbalanced quotes in request"))?;
    Ok(Some((
        args.into_iter().map(Bytes::from).collect(),
        line_end,
    )))
}

/// Finds the `\r` that ends the line starting at `from`, requiring the byte after it to have
/// arrived too (Valkey does not check that it is `\n`).
fn find_line(buf: &[u8], from: usize) -> Option<usize> {
    let pos = buf.get(from..)?.iter().position(|&b| b == b'\r')? + from;
    (pos + 1 < buf.len()).then_some(pos)
}

/// A header line must end in `\r\n`: a `\r` followed by anything else is refused, as
/// Valkey refuses it (skipping the byte would resynchronize on garbage).
fn check_crlf(buf: &[u8], line_end: usize) -> Result<(), ProtocolError> {
    if buf.get(line_end + 1) == Some(&b'\n') {
        Ok(())
    } else {
        Err(ProtocolError::new(
            "Protocol error: invalid CRLF in request",
        ))
    }
}

/// Parses a decimal integer exactly as Valkey's `string2ll`: optional minus sign, no plus
/// sign, no leading zeros, no spaces, within `i64`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    crate::number::parse_i64(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<String>>, ProtocolError> {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = parser.next_request(&mut buf, &ParseLimits::default())? {
            out.push(
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_requests_in_one_buffer() {
        let reqs = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\nECHO \"a b\"\n").unwrap();
        assert_eq!(
            reqs,
            vec![vec!["GET", "k"], vec!["PING"], vec!["ECHO", "a b"]]
        );
    }

    #[test]
    fn a_request_split_byte_by_byte_parses_once_complete() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        for (i, &b) in input.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            let got = parser
                .next_request(&mut buf, &ParseLimits::default())
                .unwrap();
            if i + 1 < input.len() {
                assert!(got.is_none(), "complete too early at byte {i}");
            } else {
                assert_eq!(got.unwrap().len(), 3);
            }
        }
        assert!(buf.is_empty());
        // Its size as sent, counted across the calls that took it.
        assert_eq!(parser.last_request_bytes(), input.len());
    }

    #[test]
    fn each_request_knows_its_size_as_sent() {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nping\r\nGET  k\r\n*2\r\n$3\r\nget"[..]);
        let limits = ParseLimits::default();
        assert!(parser.next_request(&mut buf, &limits).unwrap().is_some());
        assert_eq!(parser.last_request_bytes(), 14);
        assert!(parser.next_request(&mut buf, &limits).unwrap().is_some());
        // Inline: without its line end.
        assert_eq!(parser.last_request_bytes(), 6);
        assert!(parser.next_request(&mut buf, &limits).unwrap().is_none());
        buf.extend_from_slice(b"\r\n$1\r\nk\r\n");
        assert!(parser.next_request(&mut buf, &limits).unwrap().is_some());
        assert_eq!(parser.last_request_bytes(), 20);
    }

    #[test]
    fn requests_framed_ahead_are_taken_in_order_without_a_second_scan() {
        let mut parser = RequestParser::new();
        let limits = ParseLimits::default();
        let mut buf = BytesMut::from(
            &b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*1\r\n$4\r\nPING\r\n\
               *3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$1\r\nv\r\nPING\r\n*2\r\n$3\r\nGET"[..],
        );
        let first = parser.next_request(&mut buf, &limits).unwrap().unwrap();
        assert_eq!(first, [&b"GET"[..], b"k1"]);
        parser.frame_ahead(&buf, 15, &limits);
        let mut seen = Vec::new();
        parser.for_each_framed(&buf, |args| seen.push(args.concat()));
        // Up to the inline request: it and the unfinished one after it are not framed.
        assert_eq!(seen, [b"PING".to_vec(), b"SETk2v".to_vec()]);
        // Framing again adds nothing and keeps what is there; reads append meanwhile, and
        // the buffer may move when it grows.
        parser.frame_ahead(&buf, 15, &limits);
        buf.extend_from_slice(b"\r\n$1\r\nk\r\n");
        buf.reserve(1 << 16);
        let mut rest = Vec::new();
        while let Some(args) = parser.next_request(&mut buf, &limits).unwrap() {
            rest.push(args.concat());
            assert!(parser.last_request_bytes() > 0);
        }
        assert_eq!(
            rest,
            [
                b"PING".to_vec(),
                b"SETk2v".to_vec(),
                b"PING".to_vec(),
                b"GETk".to_vec()
            ]
        );
        assert!(!parser.has_framed() && buf.is_empty());
    }

    #[test]
    fn requests_framed_ahead_meet_the_limits_in_force_when_taken() {
        let pipeline = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$20\r\naaaaaaaaaaaaaaaaaaaa\r\n";
        let frame_then_take = |later: ParseLimits| {
            let mut parser = RequestParser::new();
            let mut buf = BytesMut::from(&pipeline[..]);
            let open = ParseLimits::default();
            parser.next_request(&mut buf, &open).unwrap().unwrap();
            parser.frame_ahead(&buf, 15, &open);
            assert!(parser.has_framed());
            parser.next_request(&mut buf, &later)
        };
        // `proto-max-bulk-len` lowered by the first request (CONFIG SET).
        let lowered = ParseLimits {
            max_bulk_len: 10,
            ..ParseLimits::default()
        };
        assert_eq!(
            frame_then_take(lowered).unwrap_err().0,
            "Protocol error: invalid bulk length"
        );
        // Unauthenticated by the first request (RESET): the tight limits apply.
        let reset = ParseLimits {
            unauthenticated: true,
            ..ParseLimits::default()
        };
        assert_eq!(frame_then_take(reset).unwrap().unwrap().len(), 2);
        let reset_small = ParseLimits {
            max_bulk_len: 10,
            unauthenticated: true,
            ..ParseLimits::default()
        };
        assert!(frame_then_take(reset_small).is_err());
        // Nothing is framed for a client that has not authenticated.
        let mut parser = RequestParser::new();
        parser.frame_ahead(&pipeline[..], 15, &reset);
        assert!(!parser.has_framed());
    }

    #[test]
    fn empty_multibulk_is_ignored() {
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\nPING\r\n").unwrap(),
            vec![vec!["PING"]]
        );
    }

    #[test]
    fn invalid_lengths_are_protocol_errors_with_valkey_texts() {
        let err = |input: &[u8]| parse_all(input).unwrap_err().0;
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            err(b"*3000000000\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(err(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"*3\rx$3\r\nSET\r\n"),
            "Protocol error: invalid CRLF in request"
        );
        assert_eq!(
            err(b"*1\r\n$3\rxSET\r\n"),
            "Protocol error: invalid CRLF in request"
        );
        assert_eq!(
            err(b"*1\r\n$3\r\nSETx\n"),
            "Protocol error: invalid CRLF in request"
        );
        assert_eq!(
            err(b"*1\r\n$3\r\nSET\rx"),
            "Protocol error: invalid CRLF in request"
        );
        assert_eq!(
            err(b"*3x\n$3\r\nSET\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err(b"*1\r\n$600000000\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            err(b"*1\r\n+foo\r\n"),
            "Protocol error: expected '$', got '+'"
        );
        assert_eq!(
            err(b"SET \"a\n"),
            "Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn overlong_lines_are_refused_without_waiting_forever() {
        let long = vec![b'a'; INLINE_MAX_SIZE + 1];
        assert_eq!(
            parse_all(&long).unwrap_err().0,
            "Protocol error: too big inline request"
        );
        let mut mb = b"*".to_vec();
        mb.extend(vec![b'1'; INLINE_MAX_SIZE + 1]);
        assert_eq!(
            parse_all(&mb).unwrap_err().0,
            "Protocol error: too big mbulk count string"
        );
    }

    #[test]
    fn unauthenticated_clients_get_tight_limits() {
        let limits = ParseLimits {
            unauthenticated: true,
            ..ParseLimits::default()
        };
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut buf, &limits).unwrap_err().0,
            "Protocol error: unauthenticated multibulk length"
        );
        let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        assert_eq!(
            RequestParser::new()
                .next_request(&mut buf, &limits)
                .unwrap_err()
                .0,
            "Protocol error: unauthenticated bulk length"
        );
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_all(&data);
        }

        /// The one-pass path (a buffer holding whole requests) and the incremental path (the
        /// same bytes fed one at a time, so no request is ever whole at its first byte)
        /// must agree on every request, size and error, whatever the bytes: the input is
        /// requests of 1..20 arguments, some of them corrupted at random places.
        #[test]
        fn whole_and_incremental_parsing_agree(
            requests in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..20), 1..20),
                1..6,
            ),
            corruptions in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..3),
            max_bulk_len in 5i64..30,
        ) {
            let mut wire = Vec::new();
            for args in &requests {
                wire.extend(format!("*{}\r\n", args.len()).bytes());
                for a in args {
                    wire.extend(format!("${}\r\n", a.len()).bytes());
                    wire.extend(a);
                    wire.extend(b"\r\n");
                }
            }
            for (at, byte) in corruptions {
                let at = at % wire.len();
                wire[at] = byte;
            }
            let limits = ParseLimits { max_bulk_len, ..ParseLimits::default() };
            type Parsed = (Vec<(Vec<Vec<u8>>, usize)>, Option<ProtocolError>);
            // `ahead`: after the first request of each read, frame that many more as the
            // connection does; what is framed must be exactly what is taken next.
            let run = |chunk: usize, ahead: usize| -> Parsed {
                let mut parser = RequestParser::new();
                let mut buf = BytesMut::new();
                let mut out = Vec::new();
                for piece in wire.chunks(chunk) {
                    buf.extend_from_slice(piece);
                    let mut framed = std::collections::VecDeque::new();
                    let mut first = true;
                    loop {
                        match parser.next_request(&mut buf, &limits) {
                            Ok(Some(args)) => {
                                let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
                                if let Some(expected) = framed.pop_front() {
                                    assert_eq!(expected, args);
                                }
                                out.push((args, parser.last_request_bytes()));
                                if std::mem::take(&mut first) {
                                    parser.frame_ahead(&buf, ahead, &limits);
                                    parser.for_each_framed(&buf, |args| {
                                        framed.push_back(args.iter().map(|a| a.to_vec()).collect::<Vec<_>>())
                                    });
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return (out, Some(e)),
                        }
                        assert!(framed.is_empty() || parser.has_framed());
                    }
                    assert!(framed.is_empty(), "framed requests left untaken");
                }
                (out, None)
            };
            let incremental = run(1, 0);
            proptest::prop_assert_eq!(&run(wire.len(), 0), &incremental);
            proptest::prop_assert_eq!(&run(wire.len(), 16), &incremental);
            proptest::prop_assert_eq!(&run(7, 3), &incremental);
        }

        #[test]
        fn well_formed_multibulk_round_trips(args in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..8)) {
            let mut wire = format!("*{}\r\n", args.len()).into_bytes();
            for a in &args {
                wire.extend(format!("${}\r\n", a.len()).bytes());
                wire.extend(a);
                wire.extend(b"\r\n");
            }
            let mut parser = RequestParser::new();
            let mut buf = BytesMut::from(&wire[..]);
            let got = parser.next_request(&mut buf, &ParseLimits::default()).unwrap().unwrap();
            let got: Vec<Vec<u8>> = got.iter().map(|b| b.to_vec()).collect();
            proptest::prop_assert_eq!(got, args);
        }
    }
}
