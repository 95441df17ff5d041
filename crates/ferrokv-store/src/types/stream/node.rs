//! One stream node: a run of consecutive entries packed into a single byte block.
//!
//! Layout: the node's *master fields* (the field names of the entry that opened it), then
//! the entries back to back. An entry is a header byte, its ID as a delta against the
//! previous entry of the node, and its fields: only the values when the field names are the
//! master fields (the common case: every entry of a stream has the same shape), otherwise a
//! count and name/value pairs. Lengths and numbers are LEB128 varints, so an entry appended
//! with `*` under the same millisecond costs one header byte plus its values.
//!
//! Deleting marks the header (a tombstone, as in Valkey's listpack nodes) and the node is
//! freed by its owner when no live entry is left. Nodes stay small (`stream-node-max-bytes`,
//! `stream-node-max-entries`), so walking one from the start is cheap; reverse iteration
//! decodes a node's positions first.
//!
//! To open new nodes exactly where Valkey does (which decides what `MAXLEN ~` removes), each
//! node also tracks the size Valkey's listpack encoding of the same entries would have.

use super::id::StreamId;

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;
const FORM_SHIFT: u8 = 2;
/// The entry's ID is the node's first ID.
const FORM_FIRST: u8 = 0;
/// Same milliseconds as the previous entry, sequence + 1.
const FORM_NEXT_SEQ: u8 = 1;
/// Same milliseconds, sequence delta follows.
const FORM_SEQ_DELTA: u8 = 2;
/// Milliseconds delta and the full sequence follow.
const FORM_FULL: u8 = 3;

/// Valkey's listpack header (total bytes + element count) and end marker.
const LP_OVERHEAD: u64 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    bytes: Vec<u8>,
    first: StreamId,
    last: StreamId,
    live: u32,
    deleted: u32,
    /// Valkey's listpack bytes for this node, without the header, end marker and the two
    /// master counters (whose width depends on the live and deleted counts).
    lp_body: u64,
}

/// Where one entry sits in its node.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry {
    pub id: StreamId,
    header_pos: usize,
    body_pos: usize,
    flags: u8,
}

impl RawEntry {
    pub fn is_deleted(&self) -> bool {
        self.flags & DELETED != 0
    }

    /// Whether the entry's field names are the node's master fields (Valkey's SAMEFIELDS
    /// flag: only the values are stored).
    pub fn has_master_fields(&self) -> bool {
        self.flags & SAME_FIELDS != 0
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = bytes.get(*pos) {
        *pos += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn get_str<'a>(bytes: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(bytes, pos) as usize;
    let start = (*pos).min(bytes.len());
    let end = start.saturating_add(len).min(bytes.len());
    *pos = end;
    &bytes[start..end]
}

/// Valkey's listpack size accounting (`listpack.c`), used only to decide node boundaries.
pub mod lp_size {
    use ferrokv_protocol::number::parse_i64;

    fn backlen(encoded: u64) -> u64 {
        match encoded {
            0..=127 => 1,
            128..16383 => 2,
            16383..2097151 => 3,
            2097151..268435455 => 4,
            _ => 5,
        }
    }

    /// An integer element, encoding and back-length.
    pub fn int(v: i64) -> u64 {
        let enc = match v {
            0..=127 => 1,
            -4096..=4095 => 2,
            -32768..=32767 => 3,
            -8388608..=8388607 => 4,
            -2147483648..=2147483647 => 5,
            _ => 9,
        };
        enc + backlen(enc)
    }

    /// A string element; strings that read as integers are stored as integers.
    pub fn string(s: &[u8]) -> u64 {
        if let Some(v) = parse_i64(s) {
            return int(v);
        }
        let len = s.len() as u64;
        let enc = len
            + match len {
                0..64 => 1,
                64..4096 => 2,
                _ => 5,
            };
        enc + backlen(enc)
    }
}

impl Node {
    /// A node opened by the entry `id` with `pairs` (field, value, field, value ...).
    pub fn new<B: AsRef<[u8]>>(id: StreamId, pairs: &[B]) -> Node {
        let mut bytes = Vec::with_capacity(64);
        let nfields = pairs.len() / 2;
        put_varint(&mut bytes, nfields as u64);
        let mut lp_body = lp_size::int(nfields as i64) + lp_size::int(0);
        for field in pairs.iter().step_by(2) {
            put_str(&mut bytes, field.as_ref());
            lp_body += lp_size::string(field.as_ref());
        }
        let mut node = Node {
            bytes,
            first: id,
            last: id,
            live: 0,
            deleted: 0,
            lp_body,
        };
        node.push(id, pairs);
        node
    }

    pub fn first_id(&self) -> StreamId {
        self.first
    }

    /// The ID of the node's last entry, deleted or not.
    pub fn last_id(&self) -> StreamId {
        self.last
    }

    pub fn live(&self) -> usize {
        self.live as usize
    }

    /// Entries counted against `stream-node-max-entries`: live and deleted.
    pub fn slots(&self) -> usize {
        (self.live + self.deleted) as usize
    }

    /// Bytes Valkey's listpack holding the same entries would take.
    pub fn valkey_bytes(&self) -> u64 {
        LP_OVERHEAD
            + lp_size::int(self.live as i64)
            + lp_size::int(self.deleted as i64)
            + self.lp_body
    }

    pub fn heap_size(&self) -> usize {
        self.bytes.capacity()
    }

    /// Gives back the slack of a node that will not grow any more.
    pub fn seal(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// Positions of the master fields: (count, offset of the first one).
    fn master(&self) -> (usize, usize) {
        let mut pos = 0;
        let n = get_varint(&self.bytes, &mut pos) as usize;
        (n, pos)
    }

    /// The master field names: those of the entry that opened the node.
    pub fn master_fields(&self) -> impl Iterator<Item = &[u8]> {
        let (n, mut pos) = self.master();
        (0..n).map(move |_| get_str(&self.bytes, &mut pos))
    }

    fn entries_start(&self) -> usize {
        let (n, mut pos) = self.master();
        for _ in 0..n {
            get_str(&self.bytes, &mut pos);
        }
        pos
    }

    fn same_as_master<B: AsRef<[u8]>>(&self, pairs: &[B]) -> bool {
        let (n, mut pos) = self.master();
        if n != pairs.len() / 2 {
            return false;
        }
        pairs
            .iter()
            .step_by(2)
            .all(|field| get_str(&self.bytes, &mut pos) == field.as_ref())
    }

    /// Appends an entry; `id` must be greater than [`Node::last_id`] (or the first entry).
    pub fn push<B: AsRef<[u8]>>(&mut self, id: StreamId, pairs: &[B]) {
        let same = self.same_as_master(pairs);
        let prev = self.last;
        let form = if self.live + self.deleted == 0 {
            FORM_FIRST
        } else if id.ms == prev.ms && id.seq == prev.seq.wrapping_add(1) {
            FORM_NEXT_SEQ
        } else if id.ms == prev.ms && id.seq > prev.seq {
            FORM_SEQ_DELTA
        } else {
            FORM_FULL
        };
        let flags = if same { SAME_FIELDS } else { 0 };
        self.bytes.push(flags | (form << FORM_SHIFT));
        match form {
            FORM_SEQ_DELTA => put_varint(&mut self.bytes, id.seq - prev.seq),
            // Wrapping: XSETID can leave the last ID below a tombstone, as in Valkey, and
            // the next entry then sorts below it; decoding wraps back.
            FORM_FULL => {
                put_varint(&mut self.bytes, id.ms.wrapping_sub(prev.ms));
                put_varint(&mut self.bytes, id.seq);
            }
            _ => {}
        }
        let nfields = pairs.len() / 2;
        let mut lp = lp_size::int(i64::from(flags))
            + lp_size::int(id.ms.wrapping_sub(self.first.ms) as i64)
            + lp_size::int(id.seq.wrapping_sub(self.first.seq) as i64);
        if same {
            for value in pairs.iter().skip(1).step_by(2) {
                put_str(&mut self.bytes, value.as_ref());
                lp += lp_size::string(value.as_ref());
            }
            lp += lp_size::int(nfields as i64 + 3);
        } else {
            put_varint(&mut self.bytes, nfields as u64);
            lp += lp_size::int(nfields as i64);
            for item in pairs {
                put_str(&mut self.bytes, item.as_ref());
                lp += lp_size::string(item.as_ref());
            }
            lp += lp_size::int(nfields as i64 * 2 + 4);
        }
        self.lp_body += lp;
        self.last = id;
        self.live += 1;
    }

    /// Every entry, deleted ones included, in ID order.
    pub fn iter(&self) -> NodeIter<'_> {
        NodeIter {
            node: self,
            pos: self.entries_start(),
            prev: self.first,
            master_len: self.master().0,
        }
    }

    /// The entries in ID order, decoded at once (for reverse walks).
    pub fn positions(&self) -> Vec<RawEntry> {
        self.iter().collect()
    }

    /// The entry with `id`, deleted or not. The whole node is scanned: IDs are ascending
    /// except after an XSETID below a tombstone, which Valkey allows too.
    pub fn find(&self, id: StreamId) -> Option<RawEntry> {
        if id < self.first {
            return None;
        }
        self.iter().find(|e| e.id == id)
    }

    /// Marks a live entry deleted; returns false if it already was.
    pub fn mark_deleted(&mut self, entry: &RawEntry) -> bool {
        let header = &mut self.bytes[entry.header_pos];
        if *header & DELETED != 0 {
            return false;
        }
        *header |= DELETED;
        self.live -= 1;
        self.deleted += 1;
        true
    }

    /// The entry's field/value pairs.
    pub fn fields(&self, entry: &RawEntry) -> FieldIter<'_> {
        let mut pos = entry.body_pos;
        if entry.flags & SAME_FIELDS != 0 {
            let (n, master_pos) = self.master();
            FieldIter {
                bytes: &self.bytes,
                master_pos: Some(master_pos),
                pos,
                remaining: n,
            }
        } else {
            let n = get_varint(&self.bytes, &mut pos) as usize;
            FieldIter {
                bytes: &self.bytes,
                master_pos: None,
                pos,
                remaining: n,
            }
        }
    }
}

pub struct NodeIter<'a> {
    node: &'a Node,
    pos: usize,
    prev: StreamId,
    master_len: usize,
}

impl Iterator for NodeIter<'_> {
    type Item = RawEntry;

    fn next(&mut self) -> Option<RawEntry> {
        let bytes = &self.node.bytes;
        let header_pos = self.pos;
        let &header = bytes.get(header_pos)?;
        let mut pos = header_pos + 1;
        let id = match header >> FORM_SHIFT {
            FORM_FIRST => self.node.first,
            FORM_NEXT_SEQ => StreamId::new(self.prev.ms, self.prev.seq.wrapping_add(1)),
            FORM_SEQ_DELTA => {
                let delta = get_varint(bytes, &mut pos);
                StreamId::new(self.prev.ms, self.prev.seq.wrapping_add(delta))
            }
            _ => {
                let ms = self.prev.ms.wrapping_add(get_varint(bytes, &mut pos));
                StreamId::new(ms, get_varint(bytes, &mut pos))
            }
        };
        let body_pos = pos;
        let items = if header & SAME_FIELDS != 0 {
            self.master_len
        } else {
            get_varint(bytes, &mut pos) as usize * 2
        };
        for _ in 0..items {
            get_str(bytes, &mut pos);
        }
        self.pos = pos;
        self.prev = id;
        Some(RawEntry {
            id,
            header_pos,
            body_pos,
            flags: header & (DELETED | SAME_FIELDS),
        })
    }
}

/// An entry's (field, value) pairs.
pub struct FieldIter<'a> {
    bytes: &'a [u8],
    master_pos: Option<usize>,
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let field = match &mut self.master_pos {
            Some(master) => get_str(self.bytes, master),
            None => get_str(self.bytes, &mut self.pos),
        };
        let value = get_str(self.bytes, &mut self.pos);
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for FieldIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(node: &Node, e: &RawEntry) -> Vec<(Vec<u8>, Vec<u8>)> {
        node.fields(e)
            .map(|(f, v)| (f.to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn entries_round_trip_with_every_id_form() {
        let ids = [
            StreamId::new(5, 3),
            StreamId::new(5, 4),
            StreamId::new(5, 900),
            StreamId::new(7, 0),
            StreamId::new(u64::MAX, u64::MAX),
        ];
        let mut node = Node::new(ids[0], &[&b"a"[..], b"1"]);
        node.push(ids[1], &[&b"a"[..], b"2"]);
        node.push(ids[2], &[&b"b"[..], b"3", b"c", b""]);
        node.push(ids[3], &[&b"a"[..], &[7u8; 300][..]]);
        node.push(ids[4], &[] as &[&[u8]]);
        let found: Vec<StreamId> = node.iter().map(|e| e.id).collect();
        assert_eq!(found, ids);
        let all = node.positions();
        assert_eq!(pairs(&node, &all[1]), vec![(b"a".to_vec(), b"2".to_vec())]);
        assert_eq!(
            pairs(&node, &all[2]),
            vec![(b"b".to_vec(), b"3".to_vec()), (b"c".to_vec(), Vec::new())]
        );
        assert_eq!(pairs(&node, &all[3])[0].1, vec![7u8; 300]);
        assert!(pairs(&node, &all[4]).is_empty());
        assert_eq!(node.live(), 5);
        assert_eq!(node.last_id(), ids[4]);
    }

    #[test]
    fn tombstones_keep_their_place() {
        let mut node = Node::new(StreamId::new(1, 0), &[&b"f"[..], b"v"]);
        node.push(StreamId::new(1, 1), &[&b"f"[..], b"w"]);
        let e = node.find(StreamId::new(1, 0)).expect("present");
        assert!(node.mark_deleted(&e));
        assert!(!node.mark_deleted(&node.find(StreamId::new(1, 0)).expect("tombstone")));
        assert_eq!((node.live(), node.slots()), (1, 2));
        let second = node.find(StreamId::new(1, 1)).expect("present");
        assert!(!second.is_deleted());
        assert_eq!(pairs(&node, &second), vec![(b"f".to_vec(), b"w".to_vec())]);
        assert!(node.find(StreamId::new(1, 2)).is_none());
    }

    #[test]
    fn valkey_listpack_sizes() {
        // One entry `f v` opens a node: header 6 + end 1, master: count 1, deleted 0,
        // 1 field, terminator 0 (2 bytes each) and "f" (3); the entry: flags, ms, seq,
        // lp-count (2 each) and "v" (3).
        let node = Node::new(StreamId::new(1, 1), &[&b"f"[..], b"v"]);
        assert_eq!(node.valkey_bytes(), 7 + (4 * 2 + 3) + (4 * 2 + 3));
        assert_eq!(lp_size::string(b"12"), 2);
        assert_eq!(lp_size::string(b"-5000"), 4);
        assert_eq!(lp_size::string(&[b'x'; 63]), 65);
        assert_eq!(lp_size::string(&[b'x'; 64]), 67);
        assert_eq!(lp_size::string(&[b'x'; 200]), 204);
    }
}
