//! One stream node in Valkey's on-disk form, converted to and from the store's node.
//!
//! Valkey keys each node by its *master ID* (16 bytes, milliseconds then sequence, both big
//! endian, so byte order is ID order) and stores its entries in a listpack:
//!
//! ```text
//! master entry: live-count deleted-count n-fields field_1 .. field_n 0
//! each entry:   flags ms-diff seq-diff [n-fields] (values | field value ...) lp-count
//! ```
//!
//! `flags` has bit 0 for a tombstone and bit 1 when the entry's field names are the master
//! fields (then only the values are stored); the ID is the master ID plus the two
//! differences; `lp-count` is the number of listpack elements the entry used before it (so
//! the listpack can be walked backwards).
//!
//! The store's node has the same cut points, the same master fields (those of the node's
//! first entry) and the same tombstones, but its own varint layout, so each direction is a
//! rewrite rather than a copy. Writing produces the listpack Valkey would hold, element for
//! element; reading checks everything Valkey's deep sanitization checks, plus the ID order
//! the store relies on.

use std::borrow::Cow;

use ferrokv_store::types::listpack::{Elem, Listpack, blob_elements};
use ferrokv_store::types::stream::{Node, StreamId};

use crate::encode::canonical_int;

const FLAG_DELETED: i64 = 1;
const FLAG_SAME_FIELDS: i64 = 2;
/// Elements of an entry besides its fields and values: flags, ms-diff, seq-diff.
const ENTRY_HEADER_ELEMENTS: i64 = 3;

/// A stream ID as a node key (and as the PEL stores it): big-endian halves.
pub fn id_key(id: StreamId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.ms.to_be_bytes());
    key[8..].copy_from_slice(&id.seq.to_be_bytes());
    key
}

/// The ID in a 16-byte key; `None` for any other length.
pub fn id_from_key(key: &[u8]) -> Option<StreamId> {
    let bytes: &[u8; 16] = key.try_into().ok()?;
    let (ms, seq) = bytes.split_at(8);
    Some(StreamId::new(
        u64::from_be_bytes(ms.try_into().ok()?),
        u64::from_be_bytes(seq.try_into().ok()?),
    ))
}

fn push_int(lp: &mut Listpack, n: i64) {
    // The listpack stores canonical integer text in its integer encodings, as Valkey's
    // `lpAppendInteger` does.
    lp.push_back(itoa::Buffer::new().format(n).as_bytes());
}

/// The listpack blob Valkey holds for `node`, keyed by [`Node::first_id`].
pub fn node_to_listpack(node: &Node) -> Vec<u8> {
    let master = node.first_id();
    let mut lp = Listpack::new();
    push_int(&mut lp, node.live() as i64);
    push_int(&mut lp, (node.slots() - node.live()) as i64);
    let master_fields: Vec<&[u8]> = node.master_fields().collect();
    push_int(&mut lp, master_fields.len() as i64);
    for field in &master_fields {
        lp.push_back(field);
    }
    push_int(&mut lp, 0);
    for raw in node.iter() {
        let mut flags = 0;
        if raw.is_deleted() {
            flags |= FLAG_DELETED;
        }
        if raw.has_master_fields() {
            flags |= FLAG_SAME_FIELDS;
        }
        push_int(&mut lp, flags);
        // Differences are stored as signed 64-bit numbers, wrapping as Valkey's do.
        push_int(&mut lp, raw.id.ms.wrapping_sub(master.ms) as i64);
        push_int(&mut lp, raw.id.seq.wrapping_sub(master.seq) as i64);
        let fields = node.fields(&raw);
        let n = fields.len() as i64;
        if raw.has_master_fields() {
            for (_, value) in fields {
                lp.push_back(value);
            }
            push_int(&mut lp, n + ENTRY_HEADER_ELEMENTS);
        } else {
            push_int(&mut lp, n);
            for (field, value) in fields {
                lp.push_back(field);
                lp.push_back(value);
            }
            push_int(&mut lp, 2 * n + ENTRY_HEADER_ELEMENTS + 1);
        }
    }
    lp.to_blob()
}

/// Walks the elements of a node's listpack, failing with a description of what is wrong.
struct Cursor<'a> {
    elems: Vec<Elem<'a>>,
    next: usize,
}

type NodeResult<T> = Result<T, &'static str>;

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.next >= self.elems.len()
    }

    fn elem(&mut self) -> NodeResult<Elem<'a>> {
        let elem = *self
            .elems
            .get(self.next)
            .ok_or("stream listpack ends inside an entry")?;
        self.next += 1;
        Ok(elem)
    }

    /// An integer element (or a string holding one, which Valkey also accepts).
    fn int(&mut self) -> NodeResult<i64> {
        match self.elem()? {
            Elem::Int(n) => Ok(n),
            Elem::Str(s) => canonical_int(s).ok_or("stream listpack: number expected"),
        }
    }

    /// A non-negative count that cannot exceed the elements left.
    fn count(&mut self) -> NodeResult<usize> {
        let n = self.int()?;
        let left = (self.elems.len() - self.next) as i64;
        if !(0..=left).contains(&n) {
            return Err("stream listpack: bad field count");
        }
        Ok(n as usize)
    }

    /// A string element as stored; an integer element as its text.
    fn bytes(&mut self) -> NodeResult<Cow<'a, [u8]>> {
        Ok(match self.elem()? {
            Elem::Str(s) => Cow::Borrowed(s),
            int => Cow::Owned(int.to_vec()),
        })
    }
}

/// Rebuilds the node stored under `master` from its listpack `blob`. Checks the listpack's
/// own structure, the master entry, each entry's flags, ID (not below the master ID and
/// increasing) and back-count, and the live and deleted counts.
pub fn listpack_to_node(master: StreamId, blob: &[u8]) -> NodeResult<Node> {
    let elems = blob_elements(blob).ok_or("invalid stream listpack")?;
    if elems.is_empty() {
        return Err("empty listpack inside a stream");
    }
    let mut c = Cursor { elems, next: 0 };
    let live = c.int()?;
    let deleted = c.int()?;
    let master_len = c.count()?;
    let mut master_fields = Vec::with_capacity(master_len);
    for _ in 0..master_len {
        master_fields.push(c.bytes()?);
    }
    if c.int()? != 0 {
        return Err("stream listpack: master entry not terminated");
    }

    let mut node: Option<Node> = None;
    let mut tombstones = Vec::new();
    let mut pairs: Vec<Cow<'_, [u8]>> = Vec::new();
    let mut prev: Option<StreamId> = None;
    let (mut seen_live, mut seen_deleted) = (0i64, 0i64);
    while !c.at_end() {
        let flags = c.int()?;
        if flags & !(FLAG_DELETED | FLAG_SAME_FIELDS) != 0 {
            return Err("stream listpack: unknown entry flags");
        }
        let id = StreamId::new(
            master.ms.wrapping_add(c.int()? as u64),
            master.seq.wrapping_add(c.int()? as u64),
        );
        if id < master || prev.is_some_and(|p| id <= p) {
            return Err("stream entry IDs out of order");
        }
        prev = Some(id);
        pairs.clear();
        let expected_count = if flags & FLAG_SAME_FIELDS != 0 {
            for field in &master_fields {
                pairs.push(field.clone());
                pairs.push(c.bytes()?);
            }
            master_len as i64 + ENTRY_HEADER_ELEMENTS
        } else {
            let n = c.count()?;
            for _ in 0..2 * n {
                pairs.push(c.bytes()?);
            }
            2 * n as i64 + ENTRY_HEADER_ELEMENTS + 1
        };
        if c.int()? != expected_count {
            return Err("stream listpack: entry back-count mismatch");
        }
        let is_deleted = flags & FLAG_DELETED != 0;
        if is_deleted {
            seen_deleted += 1;
        } else {
            seen_live += 1;
        }
        tombstones.push(is_deleted);
        match &mut node {
            None => node = Some(Node::new(id, &pairs)),
            Some(node) => node.push(id, &pairs),
        }
    }
    if seen_live != live || seen_deleted != deleted {
        return Err("stream listpack: entry counts differ from the master entry");
    }
    let mut node = node.ok_or("stream listpack without entries")?;
    for (raw, is_deleted) in node.positions().into_iter().zip(tombstones) {
        if is_deleted {
            node.mark_deleted(&raw);
        }
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    /// The node's entries as (id, deleted, pairs).
    fn contents(node: &Node) -> Vec<(StreamId, bool, Pairs)> {
        node.iter()
            .map(|raw| {
                let pairs = node
                    .fields(&raw)
                    .map(|(f, v)| (f.to_vec(), v.to_vec()))
                    .collect();
                (raw.id, raw.is_deleted(), pairs)
            })
            .collect()
    }

    #[test]
    fn matches_valkeys_listpack_byte_for_byte() {
        // XADD s 1-1 a 1 b hello; XADD s 1-2 a 2 b x; XADD s 2-0 c 3 on valkey 9.1: the
        // node's listpack as its DUMP carries it.
        let valkey: &[u8] =
            b"C\x00\x00\x00\x19\x00\x03\x01\x00\x01\x02\x01\x81a\x02\x81b\x02\x00\x01\
            \x02\x01\x00\x01\x00\x01\x01\x01\x85hello\x06\x05\x01\
            \x02\x01\x00\x01\x01\x01\x02\x01\x81x\x02\x05\x01\
            \x00\x01\x01\x01\xdf\xff\x02\x01\x01\x81c\x02\x03\x01\x06\x01\xff";
        let mut node = Node::new(id(1, 1), &[&b"a"[..], b"1", b"b", b"hello"]);
        node.push(id(1, 2), &[&b"a"[..], b"2", b"b", b"x"]);
        node.push(id(2, 0), &[&b"c"[..], b"3"]);
        assert_eq!(node_to_listpack(&node), valkey);
        assert_eq!(node.valkey_bytes(), valkey.len() as u64);
        let back = listpack_to_node(id(1, 1), valkey).expect("valid");
        assert_eq!(contents(&back), contents(&node));
    }

    #[test]
    fn tombstones_and_odd_ids_round_trip() {
        let mut node = Node::new(id(10, 5), &[&b"f"[..], b"v"]);
        node.push(id(10, 6), &[&b"f"[..], b"-4097"]);
        node.push(id(11, 0), &[&b"g"[..], b"", b"h", &[b'z'; 5000][..]]);
        node.push(id(u64::MAX, u64::MAX), &[&b"f"[..], b"last"]);
        for target in [id(10, 5), id(11, 0)] {
            let raw = node.find(target).expect("present");
            node.mark_deleted(&raw);
        }
        let blob = node_to_listpack(&node);
        assert_eq!(node.valkey_bytes(), blob.len() as u64);
        let back = listpack_to_node(id(10, 5), &blob).expect("valid");
        assert_eq!(contents(&back), contents(&node));
        assert_eq!((back.live(), back.slots()), (2, 4));
    }

    #[test]
    fn inconsistent_nodes_are_refused() {
        let mut node = Node::new(id(5, 0), &[&b"f"[..], b"v"]);
        node.push(id(5, 1), &[&b"f"[..], b"w"]);
        let blob = node_to_listpack(&node);
        let elems: Vec<Vec<u8>> = blob_elements(&blob)
            .expect("valid")
            .into_iter()
            .map(|e| e.to_vec())
            .collect();
        let rebuilt = |elems: &[Vec<u8>]| {
            let mut lp = Listpack::new();
            for e in elems {
                lp.push_back(e);
            }
            lp.to_blob()
        };
        assert!(listpack_to_node(id(5, 0), &rebuilt(&elems)).is_ok());
        // master: count, deleted, 1 field, "f", 0; entries: flags, ms, seq, value, back-count.
        let mut wrong_count = elems.clone();
        wrong_count[0] = b"3".to_vec();
        assert!(listpack_to_node(id(5, 0), &rebuilt(&wrong_count)).is_err());
        let mut repeated_id = elems.clone();
        repeated_id[12] = b"0".to_vec();
        assert!(listpack_to_node(id(5, 0), &rebuilt(&repeated_id)).is_err());
        let mut bad_flags = elems.clone();
        bad_flags[10] = b"6".to_vec();
        assert!(listpack_to_node(id(5, 0), &rebuilt(&bad_flags)).is_err());
        let mut bad_back_count = elems.clone();
        bad_back_count[9] = b"5".to_vec();
        assert!(listpack_to_node(id(5, 0), &rebuilt(&bad_back_count)).is_err());
        assert!(listpack_to_node(id(5, 0), &rebuilt(&elems[..elems.len() - 1])).is_err());
        assert!(listpack_to_node(id(5, 0), &rebuilt(&elems[..5])).is_err());
        assert!(listpack_to_node(id(5, 0), &rebuilt(&[])).is_err());
        assert_eq!(id_from_key(&id_key(id(7, 9))), Some(id(7, 9)));
        assert_eq!(id_from_key(b"short"), None);
    }
}
