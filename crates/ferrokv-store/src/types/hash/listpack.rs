//! The compact form of a small hash: every field and value in one flat byte buffer.
//!
//! Layout: `[len][field bytes][len][value bytes]...`, each length a LEB128 varint, pairs in
//! insertion order (the order Valkey's listpack keeps and HGETALL returns). Lookups are linear
//! scans, which for the sizes this form is used for (`hash-max-listpack-entries`, values up to
//! `hash-max-listpack-value` bytes) touch a few cache lines, and the whole hash costs one
//! allocation plus a couple of bytes per string.

/// A hash of field/value pairs in one buffer. Fields are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
    pairs: usize,
}

/// Where one pair sits in the buffer.
#[derive(Debug, Clone, Copy)]
struct PairAt {
    start: usize,
    field: (usize, usize),
    value: (usize, usize),
    end: usize,
}

fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf.push(byte);
            return;
        }
        buf.push(byte | 0x80);
    }
}

/// Reads a varint at `pos`; returns (value, position after it). The buffer is only ever
/// written by `put_len`, so it is well formed.
fn get_len(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    while let Some(&byte) = buf.get(pos) {
        pos += 1;
        n |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (n, pos)
}

impl Listpack {
    /// An empty pack with room for `bytes` of fields and values (with their lengths).
    pub fn with_capacity(bytes: usize) -> Listpack {
        Listpack {
            buf: Vec::with_capacity(bytes),
            pairs: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.pairs
    }

    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// Bytes allocated for the buffer.
    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    /// The encoded pairs (what a key's node stores inline).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the buffer back out (for reuse).
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A listpack over `buf` as returned by [`Listpack::as_bytes`]; `None` if it is not well
    /// formed.
    pub fn from_bytes(buf: Vec<u8>) -> Option<Listpack> {
        let mut lp = Listpack { buf, pairs: 0 };
        let mut pos = 0;
        while pos < lp.buf.len() {
            let at = lp.pair_at(pos);
            if at.end > lp.buf.len() || at.end <= pos {
                return None;
            }
            pos = at.end;
            lp.pairs += 1;
        }
        Some(lp)
    }

    fn pair_at(&self, start: usize) -> PairAt {
        let (field_len, field_start) = get_len(&self.buf, start);
        let field_end = field_start + field_len;
        let (value_len, value_start) = get_len(&self.buf, field_end);
        let value_end = value_start + value_len;
        PairAt {
            start,
            field: (field_start, field_end),
            value: (value_start, value_end),
            end: value_end,
        }
    }

    fn positions(&self) -> impl Iterator<Item = PairAt> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.buf.len() {
                return None;
            }
            let at = self.pair_at(pos);
            pos = at.end;
            Some(at)
        })
    }

    fn find(&self, field: &[u8]) -> Option<PairAt> {
        self.positions()
            .find(|at| &self.buf[at.field.0..at.field.1] == field)
    }

    fn bytes(&self, range: (usize, usize)) -> &[u8] {
        &self.buf[range.0..range.1]
    }

    /// Pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.positions()
            .map(|at| (self.bytes(at.field), self.bytes(at.value)))
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field).map(|at| self.bytes(at.value))
    }

    /// Sets `field` to `value`; returns true if the field is new (appended at the end).
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field) {
            Some(at) => {
                let mut encoded = Vec::with_capacity(value.len() + 5);
                put_len(&mut encoded, value.len());
                encoded.extend_from_slice(value);
                let value_header = at.field.1;
                crate::types::byte_splice::replace(&mut self.buf, value_header..at.end, &encoded);
                false
            }
            None => {
                put_len(&mut self.buf, field.len());
                self.buf.extend_from_slice(field);
                put_len(&mut self.buf, value.len());
                self.buf.extend_from_slice(value);
                self.pairs += 1;
                true
            }
        }
    }

    /// Removes `field`; returns whether it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let Some(at) = self.find(field) else {
            return false;
        };
        self.buf.drain(at.start..at.end);
        self.pairs -= 1;
        if self.buf.capacity() > 64 && self.buf.len() < self.buf.capacity() / 4 {
            self.buf.shrink_to(self.buf.len() * 2);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_insertion_order_and_replaces_in_place() {
        let mut lp = Listpack::default();
        assert!(lp.set(b"a", b"1"));
        assert!(lp.set(b"b", &[b'x'; 300]));
        assert!(lp.set(b"", b""));
        assert!(!lp.set(b"a", b"one"));
        assert_eq!(lp.len(), 3);
        let pairs: Vec<_> = lp.iter().collect();
        assert_eq!(pairs[0], (&b"a"[..], &b"one"[..]));
        assert_eq!(pairs[1].1.len(), 300);
        assert_eq!(pairs[2], (&b""[..], &b""[..]));
        assert!(lp.remove(b"b"));
        assert!(!lp.remove(b"b"));
        assert_eq!(lp.get(b""), Some(&b""[..]));
        assert_eq!(lp.get(b"a"), Some(&b"one"[..]));
        assert_eq!(lp.len(), 2);
    }
}
