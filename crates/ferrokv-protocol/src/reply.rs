//! Reply encoding for RESP2 and RESP3.
//!
//! Command code calls one method per reply element (`map_len`, `null`, `double` ...) and the
//! writer picks the wire form for the client's protocol version: a RESP3 map becomes a flat
//! array in RESP2, a RESP3 null becomes `$-1` or `*-1`, and so on. Replies accumulate in one
//! buffer that the connection writes with a single syscall per batch of requests.

/// An output buffer of encoded replies for one client.
#[derive(Debug, Default)]
pub struct Reply {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already written to the client (see [`Reply::consume`]).
    /// Every position the API takes or gives counts from here.
    head: usize,
    resp3: bool,
}

impl Reply {
    pub fn new(resp3: bool) -> Self {
        Reply {
            buf: Vec::with_capacity(16 * 1024),
            head: 0,
            resp3,
        }
    }

    pub fn is_resp3(&self) -> bool {
        self.resp3
    }

    pub fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
    }

    /// The encoded bytes waiting to be written.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops everything after `len`: used to take back a reply that must not be sent.
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(self.head + len);
    }

    /// Forgets the first `n` pending bytes (written to the client while more replies may
    /// still be appended). The written prefix is moved out only once it is large and most of
    /// the buffer, so a long trickle of partial writes costs amortised O(1) per byte.
    pub fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.buf.len());
        if self.head == self.buf.len() {
            self.clear();
        } else if self.head > 1 << 20 && self.head * 2 > self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    pub fn clear(&mut self) {
        self.head = 0;
        self.buf.clear();
        // A one-off huge reply should not pin its memory for the connection's lifetime.
        if self.buf.capacity() > 1 << 20 {
            self.buf.shrink_to(16 * 1024);
        }
    }

    /// Appends bytes that are already RESP-encoded.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// `+OK`
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply such as `+PONG`. The text must not contain CR or LF.
    pub fn simple(&mut self, text: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply. `text` starts with its code (`ERR ...`, `WRONGTYPE ...`); CR and LF are
    /// replaced by spaces, as Valkey does, so the reply stays one line.
    pub fn error(&mut self, text: &str) {
        self.buf.push(b'-');
        let start = self.buf.len();
        self.buf.extend_from_slice(text.as_bytes());
        for b in &mut self.buf[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.prefixed_number(b':', n);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        self.prefixed_number(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string, as `GET` does for an int-encoded value.
    pub fn bulk_int(&mut self, n: i64) {
        let mut digits = itoa::Buffer::new();
        self.bulk(digits.format(n).as_bytes());
    }

    /// The null reply: `_` in RESP3, a null bulk string in RESP2.
    pub fn null(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// The null that stands where an array was expected: `*-1` in RESP2.
    pub fn null_array(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    pub fn array_len(&mut self, n: usize) {
        self.prefixed_number(b'*', n as i64);
    }

    /// A map of `n` key/value pairs; a flat array of `2n` elements in RESP2.
    pub fn map_len(&mut self, n: usize) {
        if self.resp3 {
            self.prefixed_number(b'%', n as i64);
        } else {
            self.prefixed_number(b'*', 2 * n as i64);
        }
    }

    /// A set of `n` elements; an array in RESP2.
    pub fn set_len(&mut self, n: usize) {
        self.prefixed_number(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// An out-of-band push of `n` elements; an array in RESP2.
    pub fn push_len(&mut self, n: usize) {
        self.prefixed_number(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A double already formatted the way Valkey formats it: `,text` in RESP3, a bulk string
    /// in RESP2.
    pub fn double_text(&mut self, text: &str) {
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    /// A double in Valkey's reply format (see [`crate::number::format_double`]).
    pub fn double(&mut self, value: f64) {
        self.double_text(&crate::number::format_double(value));
    }

    /// Verbatim text (`=len\r\ntxt:...` in RESP3, a bulk string in RESP2), as INFO replies.
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        if self.resp3 {
            self.prefixed_number(b'=', (text.len() + 4) as i64);
            self.buf.extend_from_slice(format.as_bytes());
            self.buf.push(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    fn prefixed_number(&mut self, prefix: u8, n: i64) {
        let mut digits = itoa::Buffer::new();
        self.buf.push(prefix);
        self.buf.extend_from_slice(digits.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod consume_tests {
    use super::Reply;

    #[test]
    fn consumed_bytes_leave_and_positions_follow() {
        let mut reply = Reply::new(false);
        reply.simple("OK");
        reply.int(7);
        reply.consume(2);
        assert_eq!(reply.bytes(), b"K\r\n:7\r\n");
        let start = reply.len();
        reply.int(8);
        reply.truncate(start);
        assert_eq!(reply.bytes(), b"K\r\n:7\r\n");
        reply.consume(reply.len());
        assert!(reply.is_empty());
        // A large written prefix is compacted away.
        reply.raw(&vec![b'x'; 3 << 20]);
        reply.consume(2 << 20);
        reply.raw(b"y");
        assert_eq!(reply.len(), (1 << 20) + 1);
        assert_eq!(reply.bytes().last(), Some(&b'y'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_nulls_follow_the_protocol_version() {
        let mut r2 = Reply::new(false);
        r2.map_len(2);
        r2.null();
        r2.null_array();
        r2.boolean(true);
        assert_eq!(r2.bytes(), b"*4\r\n$-1\r\n*-1\r\n:1\r\n");
        let mut r3 = Reply::new(true);
        r3.map_len(2);
        r3.null();
        r3.null_array();
        r3.boolean(true);
        assert_eq!(r3.bytes(), b"%2\r\n_\r\n_\r\n#t\r\n");
    }

    #[test]
    fn errors_stay_on_one_line() {
        let mut r = Reply::new(false);
        r.error("ERR bad\r\nthing");
        assert_eq!(r.bytes(), b"-ERR bad  thing\r\n");
    }
}
