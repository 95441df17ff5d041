//! The list type: one listpack while small, then a quicklist (a deque of listpack nodes).
//!
//! The encodings and their conversions follow Valkey 9.1, because OBJECT ENCODING exposes
//! them. `fill` is `list-max-listpack-size`: negative values cap each listpack's bytes
//! (-1: 4 KiB ... -5: 64 KiB), positive values cap its entries (and 8 KiB as a safety limit).
//!
//! - A listpack becomes a quicklist when an addition would take it past the limit, counting
//!   the new elements' raw lengths (Valkey's estimate); the listpack becomes the first node.
//!   The quicklist keeps the fill and compress depth in force when it was made, as Valkey's
//!   does (a later CONFIG SET shapes new quicklists only).
//! - In a quicklist, an element goes into the end node when that node stays within the limit
//!   with the element plus 11 bytes of estimated overhead; otherwise into a new node.
//!   LINSERT into a full node uses the neighbours, or splits the node and merges what fits.
//! - After a removal, a quicklist left with one node of at most half the limit becomes a
//!   listpack again (the halving keeps a list near the limit from flapping).
//! - `list-compress-depth` d > 0: all nodes but the d at each end are held LZF-compressed
//!   (see [`node`]). An operation decompresses the nodes it changes in place and puts each
//!   back in the state its place calls for before it returns; reads decompress a copy of
//!   one node at a time and leave the list as it was.
//!
//! Elements are found by node counts from the nearer end, then by entries inside one node,
//! as Valkey does; inside a node they are addressed by [`Pos`] (node, byte offset).

mod node;
mod rdb;

use std::collections::VecDeque;

use super::listpack::{Elem, Listpack, Probe};
use node::Node;
pub use rdb::SavedNode;

/// Overhead Valkey adds to an element's length when deciding whether it fits in a node.
const INSERT_OVERHEAD: usize = 11;
/// Bytes a node may reach under a count-based `fill`.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Node byte limits for fill -1 ... -5.
const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Largest entry count a quicklist takes as its fill (Valkey's 15-bit field).
const FILL_MAX: i64 = (1 << 15) - 1;
/// Largest compress depth a quicklist takes (Valkey's 16-bit field).
const COMPRESS_MAX: i64 = (1 << 16) - 1;

/// The settings that shape a list: `list-max-listpack-size` and `list-compress-depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimits {
    pub fill: i64,
    pub compress_depth: usize,
}

impl ListLimits {
    pub fn new(fill: i64, compress_depth: i64) -> ListLimits {
        ListLimits {
            fill,
            compress_depth: compress_depth.clamp(0, COMPRESS_MAX) as usize,
        }
    }
}

/// (byte limit, entry limit) of one listpack for `fill`; `usize::MAX` where there is none.
fn node_limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, fill.max(1) as usize)
    } else {
        let level = ((-fill - 1) as usize).min(SIZE_LEVELS.len() - 1);
        (SIZE_LEVELS[level], usize::MAX)
    }
}

/// Whether a listpack of `bytes` and `count` entries is over the limit for `fill`.
fn exceeds_limit(fill: i64, bytes: usize, count: usize) -> bool {
    let (size_limit, count_limit) = node_limits(fill);
    if size_limit != usize::MAX {
        bytes > size_limit
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > count_limit
    }
}

/// Whether an element of `len` bytes is too large to share a node: Valkey gives it a node
/// of its own (a "plain" node) and replaces it in place only when it is not.
fn is_large(fill: i64, len: usize) -> bool {
    match node_limits(fill) {
        (usize::MAX, _) => len > SIZE_SAFETY_LIMIT,
        (size_limit, _) => len > size_limit,
    }
}

/// Whether `node` can take one more element of `len` bytes.
fn allows_insert(node: &Node, fill: i64, len: usize) -> bool {
    !exceeds_limit(fill, node.bytes() + len + INSERT_OVERHEAD, node.len() + 1)
}

/// Whether two nodes may be merged into one.
fn allows_merge(a: &Node, b: &Node, fill: i64) -> bool {
    !exceeds_limit(fill, a.bytes() + b.bytes() - 7, a.len() + b.len())
}

/// Where an element is: its node and its byte offset in that node's listpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    node: usize,
    off: usize,
}

/// A quicklist: its nodes and the settings it was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Quick {
    nodes: VecDeque<Node>,
    fill: i64,
    depth: usize,
}

impl Quick {
    /// Whether node `i` lies past the compress depth from both ends.
    fn is_inner(&self, i: usize) -> bool {
        self.depth > 0 && i >= self.depth && i + self.depth < self.nodes.len()
    }

    /// Puts node `i` in the state its place calls for: compressed inside, raw near the ends.
    fn settle(&mut self, i: usize) {
        if i >= self.nodes.len() {
            return;
        }
        if self.is_inner(i) {
            self.nodes[i].compress();
        } else if self.nodes[i].is_compressed() {
            self.nodes[i].open();
        }
    }

    /// After nodes came or went: the nodes within the depth of each end are raw, and the
    /// first node past it on each side (the only ones that can have just moved inside) is
    /// compressed.
    fn settle_ends(&mut self) {
        if self.depth == 0 {
            return;
        }
        let n = self.nodes.len();
        let head = self.depth.min(n);
        for i in (0..head).chain(n.saturating_sub(self.depth).max(head)..n) {
            self.settle(i);
        }
        self.settle(self.depth);
        if n > self.depth {
            self.settle(n - 1 - self.depth);
        }
    }

    /// Settles nodes `lo..=hi` (those an operation changed) and the ends.
    fn settle_around(&mut self, lo: usize, hi: usize) {
        if self.depth == 0 {
            return;
        }
        for i in lo..=hi {
            self.settle(i);
        }
        self.settle_ends();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Packed(Listpack),
    Quick(Quick),
}

/// A list value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListValue {
    repr: Repr,
    len: usize,
}

impl Default for ListValue {
    fn default() -> Self {
        ListValue::new()
    }
}

/// An empty listpack to read from where a node that should be raw is not (a bug that debug
/// builds stop at).
static EMPTY: Listpack = Listpack::new();

impl ListValue {
    /// An empty list in the listpack encoding (a key is only stored once it has elements).
    pub fn new() -> ListValue {
        ListValue {
            repr: Repr::Packed(Listpack::new()),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Quick(_) => "quicklist",
        }
    }

    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Packed(lp) => lp.heap_size(),
            Repr::Quick(q) => {
                q.nodes.capacity() * std::mem::size_of::<Node>()
                    + q.nodes.iter().map(Node::heap_size).sum::<usize>()
            }
        }
    }

    /// Quicklist nodes, how many of them are compressed, and the raw bytes of all nodes
    /// (for DEBUG OBJECT); `None` for a listpack.
    pub fn quicklist_stats(&self) -> Option<QuicklistStats> {
        let Repr::Quick(q) = &self.repr else {
            return None;
        };
        Some(QuicklistStats {
            nodes: q.nodes.len(),
            compressed_nodes: q.nodes.iter().filter(|n| n.is_compressed()).count(),
            raw_bytes: q.nodes.iter().map(Node::bytes).sum(),
            fill: q.fill,
            compress_depth: q.depth,
        })
    }

    /// Listpacks: 1 for the listpack encoding, the quicklist's nodes otherwise.
    pub fn node_count(&self) -> usize {
        match &self.repr {
            Repr::Packed(_) => 1,
            Repr::Quick(q) => q.nodes.len(),
        }
    }

    fn node_len(&self, i: usize) -> usize {
        match &self.repr {
            Repr::Packed(lp) => lp.len(),
            Repr::Quick(q) => q.nodes[i].len(),
        }
    }

    fn is_compressed(&self, i: usize) -> bool {
        matches!(&self.repr, Repr::Quick(q) if q.nodes[i].is_compressed())
    }

    /// Node `i` for reading, decompressed into a copy if it is compressed.
    fn view(&self, i: usize) -> std::borrow::Cow<'_, Listpack> {
        match &self.repr {
            Repr::Packed(lp) => std::borrow::Cow::Borrowed(lp),
            Repr::Quick(q) => q.nodes[i].view(),
        }
    }

    /// Node `i`, which the caller has opened.
    fn raw(&self, i: usize) -> &Listpack {
        match &self.repr {
            Repr::Packed(lp) => lp,
            Repr::Quick(q) => q.nodes[i].raw().unwrap_or_else(|| {
                debug_assert!(false, "node {i} read while compressed");
                &EMPTY
            }),
        }
    }

    /// Node `i` for changing, decompressed in place; settle it afterwards.
    fn open(&mut self, i: usize) -> &mut Listpack {
        match &mut self.repr {
            Repr::Packed(lp) => lp,
            Repr::Quick(q) => q.nodes[i].open(),
        }
    }

    /// Puts node `i` back in the state its place calls for, after a change.
    fn settle(&mut self, i: usize) {
        if let Repr::Quick(q) = &mut self.repr {
            q.settle(i);
        }
    }

    /// Drops quicklist node `i` when it has emptied; true if it did.
    fn drop_if_empty(&mut self, i: usize) -> bool {
        if let Repr::Quick(q) = &mut self.repr
            && q.nodes[i].len() == 0
        {
            q.nodes.remove(i);
            q.settle_ends();
            return true;
        }
        false
    }

    // ---- encoding conversions ----

    /// Before adding elements whose raw lengths sum to `add_bytes`: a listpack that would
    /// pass the limit becomes a quicklist.
    fn grow_check(&mut self, limits: ListLimits, add_bytes: usize, add_count: usize) {
        if let Repr::Packed(lp) = &mut self.repr
            && exceeds_limit(limits.fill, lp.bytes() + add_bytes, lp.len() + add_count)
        {
            let lp = std::mem::take(lp);
            let mut nodes = VecDeque::new();
            if !lp.is_empty() {
                nodes.push_back(Node::new(lp));
            }
            self.repr = Repr::Quick(Quick {
                nodes,
                fill: limits.fill.clamp(-5, FILL_MAX),
                depth: limits.compress_depth,
            });
        }
    }

    /// After elements were removed or replaced: a quicklist of one small node becomes a
    /// listpack again.
    pub fn shrink_check(&mut self, limits: ListLimits) {
        let q = match &mut self.repr {
            Repr::Packed(lp) => {
                lp.shrink();
                return;
            }
            Repr::Quick(q) => q,
        };
        if q.nodes.len() != 1 {
            return;
        }
        let (size_limit, count_limit) = node_limits(limits.fill);
        let node = &q.nodes[0];
        if node.bytes() > size_limit / 2 || node.len() > count_limit / 2 {
            return;
        }
        let Some(node) = q.nodes.pop_front() else {
            return;
        };
        let mut lp = node.into_listpack();
        lp.shrink();
        self.repr = Repr::Packed(lp);
    }

    // ---- pushing ----

    /// Pushes `values` one by one at the head (`front`) or tail, as LPUSH/RPUSH do.
    pub fn push_all<V: AsRef<[u8]>>(&mut self, values: &[V], front: bool, limits: ListLimits) {
        let add_bytes = values.iter().map(|v| v.as_ref().len()).sum();
        self.grow_check(limits, add_bytes, values.len());
        for v in values {
            self.push_one(v.as_ref(), front);
        }
    }

    /// Pushes one element, converting the encoding first if needed (LMOVE's destination).
    pub fn push(&mut self, value: &[u8], front: bool, limits: ListLimits) {
        self.push_all(&[value], front, limits);
    }

    fn push_one(&mut self, value: &[u8], front: bool) {
        self.len += 1;
        match &mut self.repr {
            Repr::Packed(lp) => {
                if front {
                    lp.push_front(value)
                } else {
                    lp.push_back(value)
                }
            }
            Repr::Quick(q) => {
                let end = if front {
                    q.nodes.front_mut()
                } else {
                    q.nodes.back_mut()
                };
                match end {
                    Some(node) if allows_insert(node, q.fill, value.len()) => {
                        let lp = node.open();
                        if front {
                            lp.push_front(value)
                        } else {
                            lp.push_back(value)
                        }
                    }
                    full => {
                        // The old end node is done growing: give back the slack that
                        // doubling its buffer left (up to half of it).
                        if let Some(Node::Raw { lp, .. }) = full {
                            lp.shrink_to_fit();
                        }
                        let mut lp = Listpack::new();
                        lp.push_back(value);
                        if front {
                            q.nodes.push_front(Node::new(lp))
                        } else {
                            q.nodes.push_back(Node::new(lp))
                        }
                        q.settle_ends();
                    }
                }
            }
        }
    }

    // ---- reading ----

    /// Element `index` (negative: from the tail) as a position from the head, if in range.
    pub fn index_of(&self, index: i64) -> Option<usize> {
        let len = self.len as i64;
        let index = if index < 0 { len + index } else { index };
        (0..len).contains(&index).then_some(index as usize)
    }

    /// The node holding element `index` (in range) and the element's index inside it,
    /// counting whole nodes from the nearer end.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index <= self.len / 2 {
            let mut skip = index;
            for node in 0..self.node_count() {
                let n = self.node_len(node);
                if skip < n {
                    return Some((node, skip));
                }
                skip -= n;
            }
        } else {
            let mut skip = self.len - 1 - index;
            for node in (0..self.node_count()).rev() {
                let n = self.node_len(node);
                if skip < n {
                    return Some((node, n - 1 - skip));
                }
                skip -= n;
            }
        }
        None
    }

    /// Calls `visit` on the elements from index `start` towards the tail (towards the head
    /// when `reverse`) until it returns false or the list ends. A compressed node is read
    /// from a decompressed copy, so the list is left as it was.
    pub fn walk(&self, start: usize, reverse: bool, mut visit: impl FnMut(Elem<'_>) -> bool) {
        let Some((mut node, index)) = self.locate(start) else {
            return;
        };
        let mut index = Some(index);
        loop {
            let lp = self.view(node);
            let mut off = match index.take() {
                Some(i) => lp.seek(i as i64),
                None if reverse => lp.last(),
                None => lp.first(),
            };
            while let Some(o) = off {
                if !visit(lp.get(o)) {
                    return;
                }
                off = if reverse { lp.prev(o) } else { lp.next(o) };
            }
            if reverse {
                if node == 0 {
                    return;
                }
                node -= 1;
            } else {
                node += 1;
                if node >= self.node_count() {
                    return;
                }
            }
        }
    }

    /// Every element's text, head to tail.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len);
        self.walk(0, false, |e| {
            out.push(e.to_vec());
            true
        });
        out
    }

    /// Opens the node holding element `index` (in range) and gives the element's position.
    fn open_index(&mut self, index: usize) -> Option<Pos> {
        let (node, k) = self.locate(index)?;
        let off = self.open(node).seek(k as i64)?;
        Some(Pos { node, off })
    }

    // ---- removing ----

    /// Removes and returns the head or tail element.
    pub fn pop(&mut self, front: bool) -> Option<Vec<u8>> {
        if self.len == 0 {
            return None;
        }
        let node = if front { 0 } else { self.node_count() - 1 };
        let lp = self.open(node);
        let off = if front { lp.first() } else { lp.last() }?;
        let value = lp.get(off).to_vec();
        lp.delete_at(off);
        self.len -= 1;
        if !self.drop_if_empty(node) {
            self.settle(node);
        }
        Some(value)
    }

    /// Removes the element at `index` (in range).
    fn delete_index(&mut self, index: usize) {
        let Some(pos) = self.open_index(index) else {
            return;
        };
        self.open(pos.node).delete_at(pos.off);
        self.len -= 1;
        if !self.drop_if_empty(pos.node) {
            self.settle(pos.node);
        }
    }

    /// Removes `count` elements starting at index `start` (non-negative, in range). Whole
    /// nodes go without being decompressed.
    pub fn delete_range(&mut self, start: usize, count: usize) {
        let mut remaining = count.min(self.len.saturating_sub(start));
        let Some((mut node, mut index)) = self.locate(start) else {
            return;
        };
        let mut dropped_nodes = false;
        while remaining > 0 && node < self.node_count() {
            let n = self.node_len(node);
            let here = (n - index).min(remaining);
            if let Repr::Quick(q) = &mut self.repr
                && here == n
            {
                q.nodes.remove(node);
                dropped_nodes = true;
            } else {
                let lp = self.open(node);
                if let Some(off) = lp.seek(index as i64) {
                    lp.delete_range(off, here);
                }
                self.settle(node);
                node += 1;
            }
            self.len -= here;
            remaining -= here;
            index = 0;
        }
        if let Repr::Quick(q) = &mut self.repr
            && dropped_nodes
        {
            q.settle_ends();
        }
    }

    /// Removes up to `count` elements equal to `value` (count 0: all; negative: from the
    /// tail); returns how many were removed.
    pub fn remove(&mut self, count: i64, value: &[u8]) -> usize {
        let probe = Probe::new(value);
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        let reverse = count < 0;
        let mut removed = 0;
        let mut node = if reverse { self.node_count() } else { 0 };
        loop {
            if removed == limit {
                break;
            }
            // Going backwards, `node` is one past the node to look at.
            let i = if reverse {
                if node == 0 {
                    break;
                }
                node - 1
            } else {
                if node >= self.node_count() {
                    break;
                }
                node
            };
            let here = if self.is_compressed(i) {
                // Work on a copy: a node without a match keeps its compressed form.
                let mut lp = self.view(i).into_owned();
                let here = remove_matches(&mut lp, &probe, limit - removed, reverse);
                if here > 0
                    && let Repr::Quick(q) = &mut self.repr
                {
                    q.nodes[i] = Node::new(lp);
                }
                here
            } else if self.raw(i).iter().any(|e| e.matches(&probe)) {
                remove_matches(self.open(i), &probe, limit - removed, reverse)
            } else {
                // Not opened: an inner node that would not compress stays marked so.
                0
            };
            removed += here;
            self.len -= here;
            let dropped = here > 0 && self.drop_if_empty(i);
            if here > 0 && !dropped {
                self.settle(i);
            }
            // A dropped node shifts the later ones down: going forwards, stay at `node`.
            if reverse {
                node -= 1;
            } else if !dropped {
                node += 1;
            }
        }
        removed
    }

    // ---- in-place changes ----

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: i64, value: &[u8], limits: ListLimits) -> bool {
        if matches!(self.repr, Repr::Packed(_)) {
            self.grow_check(limits, value.len(), 1);
        }
        let Some(index) = self.index_of(index) else {
            return false;
        };
        let Some(pos) = self.open_index(index) else {
            return false;
        };
        if let Repr::Quick(q) = &self.repr
            && is_large(q.fill, value.len())
        {
            // A large element gets a node of its own: insert it after the old element,
            // then delete that (an insertion after it does not move it).
            self.insert_at(pos, value, true);
            self.delete_index(index);
            return true;
        }
        // Otherwise Valkey replaces in place, whatever size the node reaches.
        self.open(pos.node).replace_at(pos.off, value);
        self.settle(pos.node);
        true
    }

    /// Inserts `value` before or after the first element equal to `pivot`; false when the
    /// pivot is absent.
    pub fn insert(&mut self, pivot: &[u8], value: &[u8], after: bool, limits: ListLimits) -> bool {
        // Valkey converts before looking for the pivot, assuming the insert happens: a
        // listpack that the value would outgrow becomes a quicklist even when the pivot
        // is missing.
        if matches!(self.repr, Repr::Packed(_)) {
            self.grow_check(limits, value.len(), 1);
        }
        let probe = Probe::new(pivot);
        let found = (0..self.node_count()).find_map(|node| {
            let lp = self.view(node);
            let k = lp.iter().position(|e| e.matches(&probe))?;
            Some((node, k))
        });
        let Some((node, k)) = found else {
            return false;
        };
        let Some(off) = self.open(node).seek(k as i64) else {
            return false;
        };
        self.insert_at(Pos { node, off }, value, after);
        true
    }

    /// Inserts `value` next to the element at `pos` (in an opened node), with quicklist node
    /// management, and settles the nodes it touched.
    fn insert_at(&mut self, pos: Pos, value: &[u8], after: bool) {
        self.len += 1;
        let q = match &mut self.repr {
            Repr::Packed(lp) => {
                let at = if after {
                    lp.next(pos.off).unwrap_or(lp.bytes_end())
                } else {
                    pos.off
                };
                lp.insert_at(at, value);
                return;
            }
            Repr::Quick(q) => q,
        };
        let fill = q.fill;
        let nodes = &mut q.nodes;
        let i = pos.node;
        let node = nodes[i].open();
        let at_tail = after && node.next(pos.off).is_none();
        let at_head = !after && node.prev(pos.off).is_none();
        let full = !allows_insert(&nodes[i], fill, value.len());
        let next_room = at_tail
            && nodes
                .get(i + 1)
                .is_some_and(|n| allows_insert(n, fill, value.len()));
        let prev_room = at_head && i > 0 && allows_insert(&nodes[i - 1], fill, value.len());
        if is_large(fill, value.len()) {
            // A node of its own, next to the pivot's node or between its two halves.
            let mut alone = Listpack::new();
            alone.push_back(value);
            if at_tail || at_head {
                nodes.insert(if after { i + 1 } else { i }, Node::new(alone));
            } else {
                let node = nodes[i].open();
                let cut = if after {
                    node.next(pos.off).unwrap_or(node.bytes_end())
                } else {
                    pos.off
                };
                let tail = node.split_off(cut);
                nodes.insert(i + 1, Node::new(alone));
                nodes.insert(i + 2, Node::new(tail));
            }
        } else if !full {
            let node = nodes[i].open();
            let at = if after {
                node.next(pos.off).unwrap_or(node.bytes_end())
            } else {
                pos.off
            };
            node.insert_at(at, value);
        } else if at_tail && next_room {
            nodes[i + 1].open().push_front(value);
        } else if at_head && prev_room {
            nodes[i - 1].open().push_back(value);
        } else if at_tail || at_head {
            let mut fresh = Listpack::new();
            fresh.push_back(value);
            nodes.insert(if after { i + 1 } else { i }, Node::new(fresh));
        } else {
            // Split the full node at the element; the new element joins the split-off part.
            let node = nodes[i].open();
            // The node that was split stays the centre of the merge attempts.
            let center = if after {
                let cut = node.next(pos.off).unwrap_or(node.bytes_end());
                let mut tail = node.split_off(cut);
                tail.push_front(value);
                nodes.insert(i + 1, Node::new(tail));
                i
            } else {
                let tail = node.split_off(pos.off);
                let mut head = std::mem::replace(node, tail);
                head.push_back(value);
                nodes.insert(i, Node::new(head));
                i + 1
            };
            merge_around(nodes, center, fill);
        }
        q.settle_around(i.saturating_sub(2), i + 2);
    }

    /// Keeps only the elements from `start` to `stop` (inclusive, already clamped by the
    /// caller to a non-empty range, or `None` to empty the list).
    pub fn trim(&mut self, keep: Option<(usize, usize)>) {
        match keep {
            None => {
                let len = self.len;
                self.delete_range(0, len);
            }
            Some((start, stop)) => {
                let len = self.len;
                if stop + 1 < len {
                    self.delete_range(stop + 1, len - stop - 1);
                }
                if start > 0 {
                    self.delete_range(0, start);
                }
            }
        }
    }
}

/// What DEBUG OBJECT shows about a quicklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicklistStats {
    pub nodes: usize,
    pub compressed_nodes: usize,
    /// Sum of the nodes' listpack sizes, uncompressed.
    pub raw_bytes: usize,
    pub fill: i64,
    pub compress_depth: usize,
}

/// Removes up to `limit` elements matching `probe` from one listpack, from its head (or its
/// tail when `reverse`); returns how many.
fn remove_matches(lp: &mut Listpack, probe: &Probe<'_>, limit: usize, reverse: bool) -> usize {
    let mut removed = 0;
    if reverse {
        let mut pos = lp.last();
        while let Some(p) = pos {
            if removed == limit {
                break;
            }
            // Deleting shifts nothing before `p`, so the previous entry stays where it is.
            let before = lp.prev(p);
            if lp.get(p).matches(probe) {
                lp.delete_at(p);
                removed += 1;
            }
            pos = before;
        }
    } else {
        let mut pos = lp.first();
        while let Some(p) = pos {
            if removed == limit {
                break;
            }
            if lp.get(p).matches(probe) {
                pos = lp.delete_at(p);
                removed += 1;
            } else {
                pos = lp.next(p);
            }
        }
    }
    removed
}

/// Merges the nodes around `center` where the merged node fits, as Valkey does after
/// splitting a node: prev-prev with prev, next with next-next, center with prev, and the
/// result with its next.
fn merge_around(nodes: &mut VecDeque<Node>, center: usize, fill: i64) {
    let mut center = center;
    // prev_prev + prev
    if center >= 2 && allows_merge(&nodes[center - 2], &nodes[center - 1], fill) {
        merge_into_first(nodes, center - 2);
        center -= 1;
    }
    // next + next_next
    if center + 2 < nodes.len() && allows_merge(&nodes[center + 1], &nodes[center + 2], fill) {
        merge_into_first(nodes, center + 1);
    }
    // prev + center
    let target = if center >= 1 && allows_merge(&nodes[center - 1], &nodes[center], fill) {
        merge_into_first(nodes, center - 1);
        center - 1
    } else {
        center
    };
    // target + next
    if target + 1 < nodes.len() && allows_merge(&nodes[target], &nodes[target + 1], fill) {
        merge_into_first(nodes, target);
    }
}

/// Appends node `i + 1` to node `i` and removes it (both decompressed to do so).
fn merge_into_first(nodes: &mut VecDeque<Node>, i: usize) {
    if let Some(second) = nodes.remove(i + 1) {
        nodes[i].open().append(second.into_listpack());
    }
}

#[cfg(test)]
mod tests;
