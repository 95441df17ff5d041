//! A listpack: a sequence of small strings and integers packed into one byte buffer.
//!
//! Each entry takes as many bytes as in Valkey's listpack, because the list type switches
//! encoding on the listpack's byte size (`list-max-listpack-size`) and OBJECT ENCODING must
//! flip at the same element as Valkey's. An entry is `[encoding][payload][backlen]`:
//!
//! | encoding byte(s)          | payload                                    |
//! |---------------------------|--------------------------------------------|
//! | `0xxxxxxx`                | integer 0..=127 in the byte itself         |
//! | `10llllll`                | string of up to 63 bytes                   |
//! | `110xxxxx xxxxxxxx`       | 13-bit signed integer                      |
//! | `1110llll llllllll`       | string of up to 4095 bytes                 |
//! | `0xF0` + 4-byte length    | longer string                              |
//! | `0xF1` / `0xF2` / `0xF3` / `0xF4` | 16 / 24 / 32 / 64-bit integer      |
//!
//! `backlen` stores the length of encoding + payload in 1 to 5 bytes, read right to left
//! (7 bits per byte, the high bit set on every byte but the leftmost), so the list can be
//! walked backwards from its end. The 6-byte header and the 1-byte terminator of Valkey's
//! format are not stored (the count lives in a field), but they are counted in
//! [`Listpack::bytes`]. Strings that are canonical 64-bit integers are stored as integers,
//! as Valkey does, and read back as the same text.

use super::byte_splice;

use ferrokv_protocol::number::parse_i64;

/// Header (total bytes + count) and terminator of Valkey's listpack.
pub(crate) const HEADER_AND_END: usize = 7;

/// One element as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// The element's text.
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Elem::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
            Elem::Str(s) => s.to_vec(),
        }
    }

    /// Whether the element equals `probe` (an argument prepared by [`Probe::new`]).
    pub fn matches(self, probe: &Probe<'_>) -> bool {
        match (self, probe.int) {
            (Elem::Int(n), Some(m)) => n == m,
            (Elem::Str(s), None) => s == probe.bytes,
            _ => false,
        }
    }
}

/// An argument prepared for comparisons with stored elements: integers are stored in
/// integer form, so a canonical integer argument is compared as a number.
pub struct Probe<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Probe<'a> {
    pub fn new(bytes: &'a [u8]) -> Probe<'a> {
        Probe {
            bytes,
            int: as_int(bytes),
        }
    }
}

/// The integer a string is stored as, when it is a canonical 64-bit integer.
fn as_int(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    parse_i64(bytes)
}

/// Bytes of an entry's backlen for an entry of `len` bytes (encoding + payload).
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Bytes of encoding + payload for `value`.
fn encoded_len(value: &[u8]) -> usize {
    match as_int(value) {
        Some(n) => int_encoded_len(n),
        None => str_header_len(value.len()) + value.len(),
    }
}

fn int_encoded_len(n: i64) -> usize {
    match n {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    }
}

fn str_header_len(len: usize) -> usize {
    match len {
        0..=63 => 1,
        64..=4095 => 2,
        _ => 5,
    }
}

/// Bytes one element takes in a listpack, backlen included.
pub fn entry_size(value: &[u8]) -> usize {
    let len = encoded_len(value);
    len + backlen_size(len)
}

/// Appends the full entry for `value` to `out`.
fn encode_entry(value: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    match as_int(value) {
        Some(n) => match n {
            0..=127 => out.push(n as u8),
            -4096..=4095 => {
                let u = (n as u16) & 0x1FFF;
                out.push(0xC0 | (u >> 8) as u8);
                out.push(u as u8);
            }
            -32768..=32767 => {
                out.push(0xF1);
                out.extend_from_slice(&(n as i16).to_le_bytes());
            }
            -8388608..=8388607 => {
                out.push(0xF2);
                out.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
            }
            -2147483648..=2147483647 => {
                out.push(0xF3);
                out.extend_from_slice(&(n as i32).to_le_bytes());
            }
            _ => {
                out.push(0xF4);
                out.extend_from_slice(&n.to_le_bytes());
            }
        },
        None => {
            let len = value.len();
            match len {
                0..=63 => out.push(0x80 | len as u8),
                64..=4095 => {
                    out.push(0xE0 | (len >> 8) as u8);
                    out.push(len as u8);
                }
                _ => {
                    out.push(0xF0);
                    out.extend_from_slice(&(len as u32).to_le_bytes());
                }
            }
            out.extend_from_slice(value);
        }
    }
    let len = out.len() - start;
    // Most significant group first, so the rightmost byte holds the lowest 7 bits; every
    // byte but the leftmost carries the bit that says "more to the left".
    let size = backlen_size(len);
    for i in (0..size).rev() {
        let group = ((len >> (7 * i)) & 0x7F) as u8;
        out.push(if i + 1 < size { group | 0x80 } else { group });
    }
}

/// A packed sequence of elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listpack {
    /// The entries, back to back.
    buf: Vec<u8>,
    count: u32,
}

impl Listpack {
    pub const fn new() -> Listpack {
        Listpack {
            buf: Vec::new(),
            count: 0,
        }
    }

    /// The entries as stored, back to back (what a compressed quicklist node compresses).
    pub(crate) fn entries(&self) -> &[u8] {
        &self.buf
    }

    /// A listpack over `buf`, entries back to back as [`Listpack::entries`] gave them, and
    /// their number.
    pub(crate) fn from_entries(buf: Vec<u8>, count: u32) -> Listpack {
        Listpack { buf, count }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the equivalent Valkey listpack (what the encoding thresholds compare).
    pub fn bytes(&self) -> usize {
        self.buf.len() + HEADER_AND_END
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    /// Offset of the first entry.
    pub fn first(&self) -> Option<usize> {
        (!self.buf.is_empty()).then_some(0)
    }

    /// Offset of the last entry.
    pub fn last(&self) -> Option<usize> {
        self.prev(self.buf.len())
    }

    /// Offset of the entry after the one at `off`.
    pub fn next(&self, off: usize) -> Option<usize> {
        let next = off + self.entry_len(off);
        (next < self.buf.len()).then_some(next)
    }

    /// Offset of the entry before position `off` (an entry's offset or the end).
    pub fn prev(&self, off: usize) -> Option<usize> {
        if off == 0 {
            return None;
        }
        let mut pos = off - 1;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = self.buf[pos];
            len |= ((b & 0x7F) as usize) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            pos -= 1;
        }
        Some(pos - len)
    }

    /// Encoding + payload + backlen of the entry at `off`.
    fn entry_len(&self, off: usize) -> usize {
        let (head, payload) = self.header_at(off);
        let len = head + payload;
        len + backlen_size(len)
    }

    /// (encoding bytes, payload bytes) of the entry at `off`.
    fn header_at(&self, off: usize) -> (usize, usize) {
        let b = self.buf[off];
        match b {
            0x00..=0x7F => (1, 0),
            0x80..=0xBF => (1, (b & 0x3F) as usize),
            0xC0..=0xDF => (2, 0),
            0xE0..=0xEF => (2, (((b & 0x0F) as usize) << 8) | self.buf[off + 1] as usize),
            0xF0 => {
                let mut n = [0u8; 4];
                n.copy_from_slice(&self.buf[off + 1..off + 5]);
                (5, u32::from_le_bytes(n) as usize)
            }
            0xF1 => (3, 0),
            0xF2 => (4, 0),
            0xF3 => (5, 0),
            _ => (9, 0),
        }
    }

    /// The element at `off`.
    pub fn get(&self, off: usize) -> Elem<'_> {
        let b = self.buf[off];
        let data = &self.buf[off + 1..];
        match b {
            0x00..=0x7F => Elem::Int(b as i64),
            0xC0..=0xDF => {
                let u = (((b & 0x1F) as u16) << 8) | data[0] as u16;
                // Sign-extend 13 bits.
                Elem::Int(((u << 3) as i16 >> 3) as i64)
            }
            0xF1 => Elem::Int(i16::from_le_bytes([data[0], data[1]]) as i64),
            0xF2 => Elem::Int((i32::from_le_bytes([0, data[0], data[1], data[2]]) >> 8) as i64),
            0xF3 => Elem::Int(i32::from_le_bytes([data[0], data[1], data[2], data[3]]) as i64),
            0xF4 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&data[..8]);
                Elem::Int(i64::from_le_bytes(n))
            }
            _ => {
                let (head, len) = self.header_at(off);
                Elem::Str(&self.buf[off + head..off + head + len])
            }
        }
    }

    /// Offset of the element at `index` (negative: from the end).
    pub fn seek(&self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let index = if index < 0 { len + index } else { index };
        if index < 0 || index >= len {
            return None;
        }
        if index <= len / 2 {
            let mut off = self.first()?;
            for _ in 0..index {
                off = self.next(off)?;
            }
            Some(off)
        } else {
            let mut off = self.last()?;
            for _ in 0..(len - 1 - index) {
                off = self.prev(off)?;
            }
            Some(off)
        }
    }

    /// Inserts `value` before position `off` (an entry's offset, or `bytes_end()` to append).
    pub fn insert_at(&mut self, off: usize, value: &[u8]) {
        let before = self.buf.len();
        encode_entry(value, &mut self.buf);
        let entry_len = self.buf.len() - before;
        byte_splice::move_tail_to(&mut self.buf, entry_len, off);
        self.count += 1;
    }

    /// The position just after the last entry.
    pub fn bytes_end(&self) -> usize {
        self.buf.len()
    }

    pub fn push_front(&mut self, value: &[u8]) {
        self.insert_at(0, value);
    }

    pub fn push_back(&mut self, value: &[u8]) {
        encode_entry(value, &mut self.buf);
        self.count += 1;
    }

    /// Removes the entry at `off`; returns the offset of the entry that followed it.
    pub fn delete_at(&mut self, off: usize) -> Option<usize> {
        let len = self.entry_len(off);
        self.buf.drain(off..off + len);
        self.count -= 1;
        (off < self.buf.len()).then_some(off)
    }

    /// Removes `n` entries starting at `off`.
    pub fn delete_range(&mut self, off: usize, n: usize) {
        let mut end = off;
        let mut removed = 0;
        while removed < n && end < self.buf.len() {
            end += self.entry_len(end);
            removed += 1;
        }
        self.buf.drain(off..end);
        self.count -= removed as u32;
    }

    /// Replaces the entry at `off` with `value`.
    pub fn replace_at(&mut self, off: usize, value: &[u8]) {
        let len = self.entry_len(off);
        let mut entry = Vec::with_capacity(entry_size(value));
        encode_entry(value, &mut entry);
        byte_splice::replace(&mut self.buf, off..off + len, &entry);
    }

    /// Splits off the entries from `off` on into a new listpack.
    pub fn split_off(&mut self, off: usize) -> Listpack {
        let tail = self.buf.split_off(off);
        let mut moved = Listpack {
            buf: tail,
            count: 0,
        };
        let mut pos = moved.first();
        while let Some(p) = pos {
            moved.count += 1;
            pos = moved.next(p);
        }
        self.count -= moved.count;
        moved
    }

    /// Appends every entry of `other`.
    pub fn append(&mut self, other: Listpack) {
        self.buf.extend_from_slice(&other.buf);
        self.count += other.count;
    }

    /// Gives back all spare capacity (a node that will grow no more).
    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Gives back spare capacity after a large removal.
    pub fn shrink(&mut self) {
        if self.buf.capacity() > 2 * self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Every element, front to back.
    pub fn iter(&self) -> impl Iterator<Item = Elem<'_>> {
        let mut pos = self.first();
        std::iter::from_fn(move || {
            let off = pos?;
            pos = self.next(off);
            Some(self.get(off))
        })
    }
}

/// The listpack as one self-contained blob, as RDB files and DUMP payloads carry it: a
/// 4-byte total size and a 2-byte count (65535 when the count does not fit), both little
/// endian, then the entries and the 0xFF terminator.
impl Listpack {
    pub fn to_blob(&self) -> Vec<u8> {
        let total = self.buf.len() + HEADER_AND_END;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(u32::from(u16::MAX)) as u16).to_le_bytes());
        out.extend_from_slice(&self.buf);
        out.push(0xFF);
        out
    }

    /// A listpack built from a blob written by any Valkey or Redis; `None` unless every
    /// header, length and backlen in it is consistent. Entries are re-encoded, so integers
    /// another writer stored as text become integers, as this type expects.
    pub fn from_blob(blob: &[u8]) -> Option<Listpack> {
        let elements = blob_elements(blob)?;
        // Entries are laid out as in Valkey's listpack, so a blob written as this type
        // would write it is taken as it is (the usual case). It is if no string reads as
        // an integer and every entry has its shortest encoding: each entry takes at least
        // its shortest size, so equal totals mean every entry does.
        let body = &blob[6..blob.len() - 1];
        let mut shortest = 0usize;
        let mut strings_are_text = true;
        for e in &elements {
            let len = match *e {
                Elem::Int(n) => int_encoded_len(n),
                Elem::Str(s) => {
                    strings_are_text &= as_int(s).is_none();
                    str_header_len(s.len()) + s.len()
                }
            };
            shortest += len + backlen_size(len);
        }
        if strings_are_text
            && shortest == body.len()
            && let Ok(count) = u32::try_from(elements.len())
        {
            return Some(Listpack::from_entries(body.to_vec(), count));
        }
        let mut lp = Listpack::new();
        for elem in elements {
            match elem {
                Elem::Int(n) => lp.push_back(itoa::Buffer::new().format(n).as_bytes()),
                Elem::Str(s) => lp.push_back(s),
            }
        }
        Some(lp)
    }
}

/// The elements of a listpack blob, after checking its whole structure; `None` when
/// anything is inconsistent (a corrupt file must not make the reader index out of bounds).
pub fn blob_elements(blob: &[u8]) -> Option<Vec<Elem<'_>>> {
    let header: [u8; 6] = blob.get(..6)?.try_into().ok()?;
    let total = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let declared = u16::from_le_bytes([header[4], header[5]]);
    if total != blob.len() || blob.last() != Some(&0xFF) {
        return None;
    }
    let body = &blob[6..blob.len() - 1];
    // Every entry takes at least two bytes, which bounds a lying count.
    let mut out = Vec::with_capacity(usize::from(declared).min(body.len() / 2));
    let mut off = 0;
    while off < body.len() {
        let rest = &body[off..];
        let first = rest[0];
        let (head, payload): (usize, usize) = match first {
            0x00..=0x7F => (1, 0),
            0x80..=0xBF => (1, usize::from(first & 0x3F)),
            0xC0..=0xDF => (2, 0),
            0xE0..=0xEF => (
                2,
                (usize::from(first & 0x0F) << 8) | usize::from(*rest.get(1)?),
            ),
            0xF0 => (
                5,
                u32::from_le_bytes(rest.get(1..5)?.try_into().ok()?) as usize,
            ),
            0xF1 => (3, 0),
            0xF2 => (4, 0),
            0xF3 => (5, 0),
            0xF4 => (9, 0),
            _ => return None,
        };
        let len = head.checked_add(payload)?;
        let backlen = backlen_size(len);
        let entry = rest.get(..len + backlen)?;
        // The backlen must read back as `len`, or walking backwards would go astray.
        let mut stored = 0usize;
        for (i, b) in entry[len..].iter().rev().enumerate() {
            stored |= usize::from(b & 0x7F) << (7 * i);
        }
        if stored != len {
            return None;
        }
        let data = &entry[1..len];
        out.push(match first {
            0x00..=0x7F => Elem::Int(i64::from(first)),
            0x80..=0xBF | 0xE0..=0xEF | 0xF0 => Elem::Str(&entry[head..len]),
            0xC0..=0xDF => {
                let u = (u16::from(first & 0x1F) << 8) | u16::from(data[0]);
                Elem::Int(i64::from((u << 3) as i16 >> 3))
            }
            0xF1 => Elem::Int(i64::from(i16::from_le_bytes([data[0], data[1]]))),
            0xF2 => Elem::Int(i64::from(
                i32::from_le_bytes([0, data[0], data[1], data[2]]) >> 8,
            )),
            0xF3 => Elem::Int(i64::from(i32::from_le_bytes(data[..4].try_into().ok()?))),
            _ => Elem::Int(i64::from_le_bytes(data[..8].try_into().ok()?)),
        });
        off += len + backlen;
    }
    if declared != u16::MAX && usize::from(declared) != out.len() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lp: &Listpack) -> Vec<Vec<u8>> {
        lp.iter().map(Elem::to_vec).collect()
    }

    #[test]
    fn entry_sizes_match_valkey() {
        // (element, bytes in a Valkey listpack including backlen)
        for (v, size) in [
            (&b"0"[..], 2),
            (b"127", 2),
            (b"128", 3),
            (b"-1", 3),
            (b"-4096", 3),
            (b"4096", 4),
            (b"32767", 4),
            (b"32768", 5),
            (b"8388608", 6),
            (b"2147483648", 10),
            (b"-9223372036854775808", 10),
            (b"01", 4),
            (b"", 2),
            (b"a", 3),
        ] {
            assert_eq!(entry_size(v), size, "{}", String::from_utf8_lossy(v));
        }
        assert_eq!(entry_size(&[b'x'; 63]), 65);
        assert_eq!(entry_size(&[b'x'; 64]), 67);
        assert_eq!(entry_size(&[b'x'; 125]), 128);
        assert_eq!(entry_size(&[b'x'; 126]), 130);
        assert_eq!(entry_size(&[b'x'; 4096]), 4103);
    }

    #[test]
    fn round_trips_forwards_and_backwards() {
        let values: Vec<Vec<u8>> = [
            "0",
            "127",
            "-1",
            "-4096",
            "4095",
            "-32768",
            "8388607",
            "-8388608",
            "2147483647",
            "-9223372036854775808",
            "9223372036854775807",
            "x",
            "",
            "0123",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([vec![b'a'; 100], vec![b'b'; 5000], vec![b'c'; 200000]])
        .collect();
        let mut lp = Listpack::new();
        for v in &values {
            lp.push_back(v);
        }
        assert_eq!(texts(&lp), values);
        let mut back = Vec::new();
        let mut pos = lp.last();
        while let Some(p) = pos {
            back.push(lp.get(p).to_vec());
            pos = lp.prev(p);
        }
        back.reverse();
        assert_eq!(back, values);
        let expected: usize = values.iter().map(|v| entry_size(v)).sum();
        assert_eq!(lp.bytes(), expected + 7);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(lp.get(lp.seek(i as i64).unwrap()).to_vec(), *v);
            let neg = i as i64 - values.len() as i64;
            assert_eq!(lp.get(lp.seek(neg).unwrap()).to_vec(), *v);
        }
        assert!(lp.seek(values.len() as i64).is_none());
    }

    #[test]
    fn edits_keep_the_count_and_order() {
        let mut lp = Listpack::new();
        for v in ["b", "c", "d"] {
            lp.push_back(v.as_bytes());
        }
        lp.push_front(b"a");
        let off = lp.seek(2).unwrap();
        lp.replace_at(off, b"12345");
        lp.delete_at(lp.seek(0).unwrap());
        assert_eq!(
            texts(&lp),
            [b"b".to_vec(), b"12345".to_vec(), b"d".to_vec()]
        );
        let tail = lp.split_off(lp.seek(1).unwrap());
        assert_eq!((lp.len(), tail.len()), (1, 2));
        lp.append(tail);
        lp.delete_range(lp.seek(1).unwrap(), 5);
        assert_eq!(texts(&lp), [b"b".to_vec()]);
        let probe = Probe::new(b"12345");
        let mut lp2 = Listpack::new();
        lp2.push_back(b"12345");
        lp2.push_back(b"012345");
        assert!(lp2.get(0).matches(&probe));
        assert!(!lp2.get(lp2.next(0).unwrap()).matches(&probe));
    }

    #[test]
    fn blobs_round_trip_and_reject_corruption() {
        let mut lp = Listpack::new();
        for v in [
            &b"a"[..],
            b"-5",
            b"4000",
            b"-30000",
            b"8000000",
            b"2000000000",
            b"9000000000000",
            &[b'x'; 70],
            &[b'y'; 5000],
        ] {
            lp.push_back(v);
        }
        let blob = lp.to_blob();
        assert_eq!(blob.len(), lp.bytes());
        assert_eq!(Listpack::from_blob(&blob).as_ref(), Some(&lp));
        for cut in 0..blob.len() {
            assert!(Listpack::from_blob(&blob[..cut]).is_none(), "cut at {cut}");
        }
        let mut bad = blob.clone();
        bad[4] = 3;
        assert!(Listpack::from_blob(&bad).is_none());
        let mut bad = blob;
        let n = bad.len();
        bad[n - 2] ^= 0x01;
        assert!(Listpack::from_blob(&bad).is_none());
    }

    /// Another writer's blob that stores an integer as text, or an entry in a longer
    /// encoding than needed, is re-encoded (sizes decide list encodings, so they must be
    /// this type's); one written as this type writes is taken as it is.
    #[test]
    fn foreign_blobs_are_re_encoded_only_when_needed() {
        let blob_of = |entries: &[&[u8]], count: u16| {
            let body: Vec<u8> = entries.concat();
            let mut blob = ((body.len() + 7) as u32).to_le_bytes().to_vec();
            blob.extend_from_slice(&count.to_le_bytes());
            blob.extend_from_slice(&body);
            blob.push(0xFF);
            blob
        };
        // "12" as a 6-bit string, then "ab": read back as the integer 12 and "ab".
        let text_int = blob_of(&[&[0x82, b'1', b'2', 3], &[0x82, b'a', b'b', 3]], 2);
        let lp = Listpack::from_blob(&text_int).expect("valid");
        assert_eq!(lp.bytes(), 7 + 2 + 4);
        assert_eq!(lp.get(lp.first().expect("first")), Elem::Int(12));
        // 5 as a 16-bit integer (3 bytes + backlen) rather than one byte: shrunk to 2 bytes.
        let wide_int = blob_of(&[&[0xF1, 5, 0, 3]], 1);
        let lp = Listpack::from_blob(&wide_int).expect("valid");
        assert_eq!(lp.bytes(), 7 + 2);
        assert_eq!(texts(&lp), vec![b"5".to_vec()]);
        // "ab" with a 12-bit length header: re-encoded with the 6-bit one.
        let wide_str = blob_of(&[&[0xE0, 2, b'a', b'b', 4]], 1);
        let lp = Listpack::from_blob(&wide_str).expect("valid");
        assert_eq!(lp.bytes(), 7 + 4);
        assert_eq!(texts(&lp), vec![b"ab".to_vec()]);
        // This type's own blob comes back byte for byte.
        let mut own = Listpack::new();
        for v in [&b"x"[..], b"-7", b"70000", &[b'z'; 200]] {
            own.push_back(v);
        }
        let blob = own.to_blob();
        let back = Listpack::from_blob(&blob).expect("valid");
        assert_eq!(back.to_blob(), blob);
    }
}
