//! The list type: one listpack while small, then a quicklist (a deque of listpack nodes).
//!
//! The encodings and their conversions follow Valkey 9.1, because OBJECT ENCODING exposes
//! them. `fill` is `list-max-listpack-size`: negative values cap each listpack's bytes
//! (-1: 4 KiB ... -5: 64 KiB), positive values cap its entries (and 8 KiB as a safety limit).
//!
//! - A listpack becomes a quicklist when an addition would take it past the limit, counting
//!   the new elements' raw lengths (Valkey's estimate); the listpack becomes the first node.
//! - In a quicklist, an element goes into the end node when that node stays within the limit
//!   with the element plus 11 bytes of estimated overhead; otherwise into a new node.
//!   LINSERT into a full node uses the neighbours, or splits the node and merges what fits.
//! - After a removal, a quicklist left with one node of at most half the limit becomes a
//!   listpack again (the halving keeps a list near the limit from flapping).
//!
//! Elements are addressed by [`Pos`] (node, byte offset); LINDEX walks whole nodes by their
//! counts from the nearer end, then entries inside one node, as Valkey does.

use std::collections::VecDeque;

use super::listpack::{Elem, Listpack, Probe};

/// Overhead Valkey adds to an element's length when deciding whether it fits in a node.
const INSERT_OVERHEAD: usize = 11;
/// Bytes a node may reach under a count-based `fill`.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Node byte limits for fill -1 ... -5.
const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

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

/// Whether `node` can take one more element of `len` bytes.
fn allows_insert(node: &Listpack, fill: i64, len: usize) -> bool {
    !exceeds_limit(fill, node.bytes() + len + INSERT_OVERHEAD, node.len() + 1)
}

/// Whether two nodes may be merged into one.
fn allows_merge(a: &Listpack, b: &Listpack, fill: i64) -> bool {
    !exceeds_limit(fill, a.bytes() + b.bytes() - 7, a.len() + b.len())
}

/// Where an element is: its node and its byte offset in that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub node: usize,
    pub off: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Packed(Listpack),
    Quick(VecDeque<Listpack>),
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
            Repr::Quick(nodes) => {
                nodes.capacity() * std::mem::size_of::<Listpack>()
                    + nodes.iter().map(Listpack::heap_size).sum::<usize>()
            }
        }
    }

    fn node_count(&self) -> usize {
        match &self.repr {
            Repr::Packed(_) => 1,
            Repr::Quick(nodes) => nodes.len(),
        }
    }

    fn node(&self, i: usize) -> &Listpack {
        match &self.repr {
            Repr::Packed(lp) => lp,
            Repr::Quick(nodes) => &nodes[i],
        }
    }

    fn node_mut(&mut self, i: usize) -> &mut Listpack {
        match &mut self.repr {
            Repr::Packed(lp) => lp,
            Repr::Quick(nodes) => &mut nodes[i],
        }
    }

    // ---- encoding conversions ----

    /// Before adding elements whose raw lengths sum to `add_bytes`: a listpack that would
    /// pass the limit becomes a quicklist.
    fn grow_check(&mut self, fill: i64, add_bytes: usize, add_count: usize) {
        if let Repr::Packed(lp) = &mut self.repr
            && exceeds_limit(fill, lp.bytes() + add_bytes, lp.len() + add_count)
        {
            let lp = std::mem::take(lp);
            let mut nodes = VecDeque::new();
            if !lp.is_empty() {
                nodes.push_back(lp);
            }
            self.repr = Repr::Quick(nodes);
        }
    }

    /// After elements were removed or replaced: a quicklist of one small node becomes a
    /// listpack again.
    pub fn shrink_check(&mut self, fill: i64) {
        let Repr::Quick(nodes) = &mut self.repr else {
            if let Repr::Packed(lp) = &mut self.repr {
                lp.shrink();
            }
            return;
        };
        if nodes.len() != 1 {
            return;
        }
        let (size_limit, count_limit) = node_limits(fill);
        let node = &nodes[0];
        if node.bytes() > size_limit / 2 || node.len() > count_limit / 2 {
            return;
        }
        let mut lp = nodes.pop_front().unwrap_or_default();
        lp.shrink();
        self.repr = Repr::Packed(lp);
    }

    // ---- pushing ----

    /// Pushes `values` one by one at the head (`front`) or tail, as LPUSH/RPUSH do.
    pub fn push_all<V: AsRef<[u8]>>(&mut self, values: &[V], front: bool, fill: i64) {
        let add_bytes = values.iter().map(|v| v.as_ref().len()).sum();
        self.grow_check(fill, add_bytes, values.len());
        for v in values {
            self.push_one(v.as_ref(), front, fill);
        }
    }

    /// Pushes one element, converting the encoding first if needed (LMOVE's destination).
    pub fn push(&mut self, value: &[u8], front: bool, fill: i64) {
        self.push_all(&[value], front, fill);
    }

    fn push_one(&mut self, value: &[u8], front: bool, fill: i64) {
        self.len += 1;
        match &mut self.repr {
            Repr::Packed(lp) => {
                if front {
                    lp.push_front(value)
                } else {
                    lp.push_back(value)
                }
            }
            Repr::Quick(nodes) => {
                let end = if front {
                    nodes.front_mut()
                } else {
                    nodes.back_mut()
                };
                match end {
                    Some(node) if allows_insert(node, fill, value.len()) => {
                        if front {
                            node.push_front(value)
                        } else {
                            node.push_back(value)
                        }
                    }
                    _ => {
                        let mut node = Listpack::new();
                        node.push_back(value);
                        if front {
                            nodes.push_front(node)
                        } else {
                            nodes.push_back(node)
                        }
                    }
                }
            }
        }
    }

    // ---- positions ----

    pub fn first(&self) -> Option<Pos> {
        (0..self.node_count()).find_map(|node| self.node(node).first().map(|off| Pos { node, off }))
    }

    pub fn last(&self) -> Option<Pos> {
        (0..self.node_count())
            .rev()
            .find_map(|node| self.node(node).last().map(|off| Pos { node, off }))
    }

    pub fn next(&self, pos: Pos) -> Option<Pos> {
        if let Some(off) = self.node(pos.node).next(pos.off) {
            return Some(Pos { off, ..pos });
        }
        (pos.node + 1..self.node_count())
            .find_map(|node| self.node(node).first().map(|off| Pos { node, off }))
    }

    pub fn prev(&self, pos: Pos) -> Option<Pos> {
        if let Some(off) = self.node(pos.node).prev(pos.off) {
            return Some(Pos { off, ..pos });
        }
        (0..pos.node)
            .rev()
            .find_map(|node| self.node(node).last().map(|off| Pos { node, off }))
    }

    pub fn get(&self, pos: Pos) -> Elem<'_> {
        self.node(pos.node).get(pos.off)
    }

    /// The position of element `index` (negative: from the tail).
    pub fn seek(&self, index: i64) -> Option<Pos> {
        let len = self.len as i64;
        let index = if index < 0 { len + index } else { index };
        if index < 0 || index >= len {
            return None;
        }
        if index <= len / 2 {
            let mut skip = index as usize;
            for node in 0..self.node_count() {
                let n = self.node(node).len();
                if skip < n {
                    let off = self.node(node).seek(skip as i64)?;
                    return Some(Pos { node, off });
                }
                skip -= n;
            }
        } else {
            let mut skip = (len - 1 - index) as usize;
            for node in (0..self.node_count()).rev() {
                let n = self.node(node).len();
                if skip < n {
                    let off = self.node(node).seek(-1 - skip as i64)?;
                    return Some(Pos { node, off });
                }
                skip -= n;
            }
        }
        None
    }

    /// Elements from `start` towards the tail (or the head when `reverse`).
    pub fn iter_from(&self, start: Option<Pos>, reverse: bool) -> impl Iterator<Item = Elem<'_>> {
        let mut pos = start;
        std::iter::from_fn(move || {
            let p = pos?;
            pos = if reverse { self.prev(p) } else { self.next(p) };
            Some(self.get(p))
        })
    }

    /// Every element, head to tail.
    pub fn iter(&self) -> impl Iterator<Item = Elem<'_>> {
        self.iter_from(self.first(), false)
    }

    // ---- removing ----

    /// Removes the element at `pos`; returns the position of the element after it. An
    /// emptied quicklist node is dropped. Call [`ListValue::shrink_check`] when done.
    pub fn delete(&mut self, pos: Pos) -> Option<Pos> {
        self.len -= 1;
        let next_off = self.node_mut(pos.node).delete_at(pos.off);
        if let Some(off) = next_off {
            return Some(Pos { off, ..pos });
        }
        let mut node = pos.node + 1;
        if let Repr::Quick(nodes) = &mut self.repr
            && nodes[pos.node].is_empty()
        {
            nodes.remove(pos.node);
            node = pos.node;
        }
        (node < self.node_count())
            .then(|| self.node(node).first().map(|off| Pos { node, off }))
            .flatten()
    }

    /// Removes and returns the head or tail element.
    pub fn pop(&mut self, front: bool) -> Option<Vec<u8>> {
        let pos = if front { self.first() } else { self.last() }?;
        let value = self.get(pos).to_vec();
        self.delete(pos);
        Some(value)
    }

    /// Removes `count` elements starting at index `start` (non-negative, in range).
    pub fn delete_range(&mut self, start: usize, count: usize) {
        let mut remaining = count.min(self.len.saturating_sub(start));
        let Some(mut pos) = self.seek(start as i64) else {
            return;
        };
        while remaining > 0 {
            let node = self.node(pos.node);
            // Everything from `pos` to the end of this node, or what is left to remove.
            let mut in_node = 0;
            let mut p = Some(pos.off);
            while let Some(off) = p {
                if in_node == remaining {
                    break;
                }
                in_node += 1;
                p = node.next(off);
            }
            self.node_mut(pos.node).delete_range(pos.off, in_node);
            self.len -= in_node;
            remaining -= in_node;
            let mut next_node = pos.node + 1;
            if let Repr::Quick(nodes) = &mut self.repr
                && nodes[pos.node].is_empty()
            {
                nodes.remove(pos.node);
                next_node = pos.node;
            }
            if remaining == 0 || next_node >= self.node_count() {
                break;
            }
            match self.node(next_node).first() {
                Some(off) => {
                    pos = Pos {
                        node: next_node,
                        off,
                    }
                }
                None => break,
            }
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
        let mut removed = 0;
        if count >= 0 {
            let mut pos = self.first();
            while let Some(p) = pos {
                if removed == limit {
                    break;
                }
                if self.get(p).matches(&probe) {
                    pos = self.delete(p);
                    removed += 1;
                } else {
                    pos = self.next(p);
                }
            }
        } else {
            let mut pos = self.last();
            while let Some(p) = pos {
                if removed == limit {
                    break;
                }
                let before = self.prev(p);
                if self.get(p).matches(&probe) {
                    // Deleting shifts nothing before `p`, so `before` stays valid unless `p`
                    // emptied its node, which only shifts later nodes.
                    self.delete(p);
                    removed += 1;
                }
                pos = before;
            }
        }
        removed
    }

    // ---- in-place changes ----

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: i64, value: &[u8], fill: i64) -> bool {
        if matches!(self.repr, Repr::Packed(_)) {
            self.grow_check(fill, value.len(), 1);
        }
        let Some(pos) = self.seek(index) else {
            return false;
        };
        // From here on a non-negative index: an insertion after the element must not move it.
        let index = if index < 0 {
            index + self.len as i64
        } else {
            index
        };
        if let Repr::Quick(_) = self.repr {
            let node = self.node(pos.node);
            let old_size = {
                let next = node.next(pos.off).unwrap_or(node.bytes_end());
                next - pos.off
            };
            let new_size = super::listpack::entry_size(value);
            if exceeds_limit(fill, node.bytes() - old_size + new_size, node.len()) {
                // No room in place: insert after, then delete the old element.
                self.insert_at(pos, value, true, fill);
                if let Some(pos) = self.seek(index) {
                    self.delete(pos);
                }
                return true;
            }
        }
        self.node_mut(pos.node).replace_at(pos.off, value);
        true
    }

    /// Inserts `value` before or after the first element equal to `pivot`; false when the
    /// pivot is absent.
    pub fn insert(&mut self, pivot: &[u8], value: &[u8], after: bool, fill: i64) -> bool {
        // Valkey converts before looking for the pivot, assuming the insert happens: a
        // listpack that the value would outgrow becomes a quicklist even when the pivot
        // is missing.
        if matches!(self.repr, Repr::Packed(_)) {
            self.grow_check(fill, value.len(), 1);
        }
        let probe = Probe::new(pivot);
        let mut pos = self.first();
        while let Some(p) = pos {
            if self.get(p).matches(&probe) {
                break;
            }
            pos = self.next(p);
        }
        let Some(p) = pos else {
            return false;
        };
        self.insert_at(p, value, after, fill);
        true
    }

    /// Inserts `value` next to the element at `pos`, with quicklist node management.
    fn insert_at(&mut self, pos: Pos, value: &[u8], after: bool, fill: i64) {
        self.len += 1;
        let Repr::Quick(nodes) = &mut self.repr else {
            let lp = self.node_mut(0);
            let at = if after {
                lp.next(pos.off).unwrap_or(lp.bytes_end())
            } else {
                pos.off
            };
            lp.insert_at(at, value);
            return;
        };
        let i = pos.node;
        let node = &nodes[i];
        let full = !allows_insert(node, fill, value.len());
        let at_tail = after && node.next(pos.off).is_none();
        let at_head = !after && node.prev(pos.off).is_none();
        let next_room = at_tail
            && nodes
                .get(i + 1)
                .is_some_and(|n| allows_insert(n, fill, value.len()));
        let prev_room = at_head && i > 0 && allows_insert(&nodes[i - 1], fill, value.len());
        if !full {
            let node = &mut nodes[i];
            let at = if after {
                node.next(pos.off).unwrap_or(node.bytes_end())
            } else {
                pos.off
            };
            node.insert_at(at, value);
        } else if at_tail && next_room {
            nodes[i + 1].push_front(value);
        } else if at_head && prev_room {
            nodes[i - 1].push_back(value);
        } else if at_tail || at_head {
            let mut fresh = Listpack::new();
            fresh.push_back(value);
            nodes.insert(if after { i + 1 } else { i }, fresh);
        } else {
            // Split the full node at the element; the new element joins the split-off part.
            let node = &mut nodes[i];
            // The node that was split stays the centre of the merge attempts.
            let center = if after {
                let cut = node.next(pos.off).unwrap_or(node.bytes_end());
                let mut tail = node.split_off(cut);
                tail.push_front(value);
                nodes.insert(i + 1, tail);
                i
            } else {
                let tail = node.split_off(pos.off);
                let mut head = std::mem::replace(node, tail);
                head.push_back(value);
                nodes.insert(i, head);
                i + 1
            };
            merge_around(nodes, center, fill);
        }
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

/// Merges the nodes around `center` where the merged node fits, as Valkey does after
/// splitting a node: prev-prev with prev, next with next-next, center with prev, and the
/// result with its next.
fn merge_around(nodes: &mut VecDeque<Listpack>, center: usize, fill: i64) {
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

/// Appends node `i + 1` to node `i` and removes it.
fn merge_into_first(nodes: &mut VecDeque<Listpack>, i: usize) {
    if let Some(second) = nodes.remove(i + 1) {
        nodes[i].append(second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_of(values: &[&str], fill: i64) -> ListValue {
        let mut l = ListValue::new();
        l.push_all(values, false, fill);
        l
    }

    fn texts(l: &ListValue) -> Vec<String> {
        l.iter()
            .map(|e| String::from_utf8(e.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn count_fill_converts_at_the_limit_and_back_at_half() {
        let mut l = list_of(&["a", "b", "c", "d", "e"], 5);
        assert_eq!(l.encoding(), "listpack");
        l.push(b"f", false, 5);
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.node_count(), 2);
        // Popping "f" drops its node: one node of 5 entries, more than half of 5.
        l.pop(false);
        l.shrink_check(5);
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..2 {
            l.pop(true);
            l.shrink_check(5);
        }
        assert_eq!(l.encoding(), "quicklist");
        l.pop(true);
        l.shrink_check(5);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(texts(&l), ["d", "e"]);
    }

    #[test]
    fn positions_walk_across_nodes() {
        let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        let mut l = ListValue::new();
        l.push_all(&values, false, 4);
        assert_eq!(l.encoding(), "quicklist");
        for (i, v) in values.iter().enumerate() {
            assert_eq!(l.get(l.seek(i as i64).unwrap()).to_vec(), v.as_bytes());
            assert_eq!(
                l.get(l.seek(i as i64 - 100).unwrap()).to_vec(),
                v.as_bytes()
            );
        }
        let back: Vec<Vec<u8>> = l.iter_from(l.last(), true).map(|e| e.to_vec()).collect();
        assert_eq!(back.len(), 100);
        assert_eq!(back[0], b"v99");
        l.delete_range(10, 50);
        assert_eq!(l.len(), 50);
        assert_eq!(l.get(l.seek(10).unwrap()).to_vec(), b"v60");
        assert_eq!(l.remove(-2, b"v99"), 1);
        assert!(l.insert(b"v60", b"new", false, 4));
        assert!(l.insert(b"v60", b"after", true, 4));
        assert_eq!(l.get(l.seek(10).unwrap()).to_vec(), b"new");
        assert_eq!(l.get(l.seek(12).unwrap()).to_vec(), b"after");
        assert!(l.set(-1, b"last", 4));
        assert_eq!(l.get(l.last().unwrap()).to_vec(), b"last");
        assert_eq!(texts(&l).len(), l.len());
        l.trim(Some((5, 7)));
        assert_eq!(texts(&l), ["v5", "v6", "v7"]);
    }

    #[test]
    fn size_fill_converts_on_raw_bytes() {
        let big = "x".repeat(4000);
        let mut l = list_of(&[&big], -2);
        assert_eq!(l.encoding(), "listpack");
        l.push(big.as_bytes(), false, -2);
        assert_eq!(l.encoding(), "listpack");
        l.push(big.as_bytes(), false, -2);
        assert_eq!(l.encoding(), "quicklist");
        l.pop(false);
        l.shrink_check(-2);
        assert_eq!(l.encoding(), "quicklist");
        l.pop(false);
        l.shrink_check(-2);
        assert_eq!(l.encoding(), "listpack");
    }
}
