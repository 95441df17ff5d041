//! The stream type: an append-only log of entries with consumer groups.
//!
//! Entries live in nodes (`node.rs`) kept in an ordered map from each node's first ID, so a
//! range read seeks in O(log n) and walks forward or backward; node sizes follow
//! `stream-node-max-bytes` / `stream-node-max-entries` and are cut where Valkey cuts its
//! listpacks, so approximate trimming removes the same entries. Consumer groups are in
//! `group.rs`. The bookkeeping Valkey exposes (first/last/max-deleted IDs, entries added,
//! the groups' read counters and lag) follows Valkey's rules exactly.

pub mod group;
pub mod id;
pub mod node;
mod radix;

use std::collections::BTreeMap;

pub use group::{Consumer, ConsumerGroup, ConsumerName, PendingEntry, UNKNOWN_ENTRIES_READ};
pub use id::StreamId;
pub use node::{FieldIter, Node, RawEntry};

/// Largest listpack Valkey builds (`stream-node-max-bytes` 0 or above this means this).
const MAX_NODE_BYTES: u64 = 1 << 30;

/// The node-size directives.
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    pub max_bytes: i64,
    pub max_entries: i64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// What a trim keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimTo {
    /// At most this many entries.
    MaxLen(u64),
    /// Only entries with IDs at or above this one.
    MinId(StreamId),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    /// The last ID generated or set (XSETID), whether or not its entry still exists.
    pub last_id: StreamId,
    /// The first live entry's ID when the stream was last changed (0-0 when empty).
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Box<[u8]>, ConsumerGroup>,
}

/// One live entry, borrowed from its node.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    node: &'a Node,
    raw: RawEntry,
}

impl<'a> EntryRef<'a> {
    pub fn id(&self) -> StreamId {
        self.raw.id
    }

    pub fn fields(&self) -> FieldIter<'a> {
        self.node.fields(&self.raw)
    }
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Nodes in use (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Nodes of the radix tree Valkey would index the same nodes with (`radix-tree-nodes`).
    pub fn radix_tree_nodes(&self) -> usize {
        radix::node_count(self.nodes.keys().copied())
    }

    /// The nodes in ID order (for serializing).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Adds a node rebuilt from a snapshot after the existing ones; the caller checked that
    /// its IDs follow theirs. Counts its live entries into the length; the counters and
    /// groups are the caller's to set.
    pub fn push_loaded_node(&mut self, mut node: Node) {
        node.seal();
        self.length += node.live() as u64;
        self.nodes.insert(node.first_id(), node);
    }

    /// The ID `*` gives at `now_ms`, or `None` when the last possible ID is taken.
    pub fn auto_id(&self, now_ms: i64) -> Option<StreamId> {
        let now = u64::try_from(now_ms).unwrap_or(0);
        if now > self.last_id.ms {
            Some(StreamId::new(now, 0))
        } else {
            self.last_id.successor()
        }
    }

    /// Appends an entry whose `id` is above [`Stream::last_id`] (checked by the caller).
    pub fn append<B: AsRef<[u8]>>(&mut self, id: StreamId, pairs: &[B], limits: NodeLimits) {
        let mut total_len: u64 = 0;
        for item in pairs {
            total_len += item.as_ref().len() as u64;
        }
        let max_bytes = match u64::try_from(limits.max_bytes) {
            Ok(0) | Err(_) => MAX_NODE_BYTES,
            Ok(n) => n.min(MAX_NODE_BYTES),
        };
        let fits = self.nodes.last_key_value().is_some_and(|(_, node)| {
            node.valkey_bytes() + total_len < max_bytes
                && (limits.max_entries <= 0 || (node.slots() as i64) < limits.max_entries)
        });
        if fits {
            if let Some(mut tail) = self.nodes.last_entry() {
                tail.get_mut().push(id, pairs);
            }
        } else {
            if let Some(mut tail) = self.nodes.last_entry() {
                tail.get_mut().seal();
            }
            self.nodes.insert(id, Node::new(id, pairs));
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// The node holding `id`, if any could.
    fn node_of(&self, id: StreamId) -> Option<(&StreamId, &Node)> {
        self.nodes
            .range(..=id)
            .next_back()
            .filter(|(_, node)| node.last_id() >= id)
    }

    /// The live entry `id`.
    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        let (_, node) = self.node_of(id)?;
        let raw = node.find(id).filter(|e| !e.is_deleted())?;
        Some(EntryRef { node, raw })
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.get(id).is_some()
    }

    /// Live entries with IDs in `start..=end`, ascending or (`rev`) descending.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Range<'_> {
        let nodes = if start > end {
            self.nodes.range(StreamId::MAX..StreamId::MAX)
        } else if rev {
            self.nodes.range(..=end)
        } else {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map_or(start, |(key, _)| *key);
            self.nodes.range(from..=end)
        };
        Range {
            nodes,
            start,
            end,
            rev,
            current: None,
            positions: Vec::new(),
            next: 0,
            done: false,
        }
    }

    pub fn first_entry(&self) -> Option<EntryRef<'_>> {
        self.range(StreamId::ZERO, StreamId::MAX, false).next()
    }

    pub fn last_entry(&self) -> Option<EntryRef<'_>> {
        self.range(StreamId::ZERO, StreamId::MAX, true).next()
    }

    /// The last live entry's ID, 0-0 when empty.
    pub fn last_valid_id(&self) -> StreamId {
        self.last_entry().map_or(StreamId::ZERO, |e| e.id())
    }

    fn first_valid_id(&self) -> StreamId {
        self.first_entry().map_or(StreamId::ZERO, |e| e.id())
    }

    /// Deletes one live entry; frees its node when no live entry is left in it.
    fn delete_one(&mut self, id: StreamId) -> bool {
        let Some((&key, _)) = self.node_of(id) else {
            return false;
        };
        let Some(node) = self.nodes.get_mut(&key) else {
            return false;
        };
        let Some(raw) = node.find(id) else {
            return false;
        };
        if !node.mark_deleted(&raw) {
            return false;
        }
        if node.live() == 0 {
            self.nodes.remove(&key);
        }
        self.length -= 1;
        true
    }

    /// XDEL: deletes the given entries; returns how many existed. Keeps the first and
    /// max-deleted IDs as Valkey does.
    pub fn delete(&mut self, ids: &[StreamId]) -> usize {
        let mut deleted = 0;
        let mut first_deleted = false;
        for &id in ids {
            if self.delete_one(id) {
                if id == self.first_id {
                    first_deleted = true;
                }
                if id > self.max_deleted_id {
                    self.max_deleted_id = id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 {
            if self.length == 0 {
                self.first_id = StreamId::ZERO;
            } else if first_deleted {
                self.first_id = self.first_valid_id();
            }
        }
        deleted
    }

    /// Trims the oldest entries (Valkey's algorithm: whole nodes first; `approx` stops at
    /// the first node that cannot go whole; `limit` > 0 caps the entries removed by whole
    /// nodes). Returns the number of entries removed.
    pub fn trim(&mut self, to: TrimTo, approx: bool, limit: u64) -> u64 {
        let mut deleted: u64 = 0;
        while let Some(mut first) = self.nodes.first_entry() {
            if let TrimTo::MaxLen(max) = to
                && self.length <= max
            {
                break;
            }
            let node = first.get_mut();
            let entries = node.live() as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let whole = match to {
                TrimTo::MaxLen(max) => self.length - entries >= max,
                TrimTo::MinId(min) => node.last_id() < min,
            };
            if whole {
                first.remove();
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            for raw in node.positions() {
                let stop = match to {
                    TrimTo::MaxLen(max) => self.length <= max,
                    TrimTo::MinId(min) => raw.id >= min,
                };
                if stop {
                    break;
                }
                if node.mark_deleted(&raw) {
                    self.length -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        self.first_id = if self.length == 0 {
            StreamId::ZERO
        } else {
            self.first_valid_id()
        };
        deleted
    }

    /// Whether a tombstone may lie in `start..` (Valkey's `streamRangeHasTombstones`, with
    /// no end bound).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// How many entries were added before and including `id` since the stream began, when
    /// that can be known (Valkey's `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// A group's lag: entries not yet delivered to it, when that can be known.
    pub fn lag(&self, group: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read != UNKNOWN_ENTRIES_READ && !self.has_tombstones_from(group.last_id) {
            return Some(self.entries_added as i64 - group.entries_read);
        }
        self.entries_read_at(group.last_id)
            .map(|read| self.entries_added as i64 - read as i64)
    }

    /// Moves a group past entry `id` it just delivered, keeping its read counter.
    pub fn advance_group(&mut self, group_name: &[u8], id: StreamId) {
        let has_tombstones = self.has_tombstones_from(id);
        let estimate = self.entries_read_at(id);
        let entries_added = self.entries_added;
        let Some(group) = self.groups.get_mut(group_name) else {
            return;
        };
        if id <= group.last_id {
            return;
        }
        // Where the position of `id` is known (the first or last entry, a stream without
        // tombstones) it is the counter, as Valkey 9 sets it: this repairs a counter that an
        // earlier tombstone or trim left unknown. Elsewhere a known counter just counts on.
        if let Some(read) = estimate.filter(|_| entries_added > 0) {
            group.entries_read = read as i64;
        } else if group.entries_read != UNKNOWN_ENTRIES_READ && !has_tombstones {
            group.entries_read += 1;
        } else {
            group.entries_read = UNKNOWN_ENTRIES_READ;
        }
        group.last_id = id;
    }

    pub fn heap_size(&self) -> usize {
        let per_node = std::mem::size_of::<Node>() + std::mem::size_of::<StreamId>();
        let nodes: usize = self
            .nodes
            .values()
            .map(|node| node.heap_size() + per_node + per_node / 4)
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| name.len() + 24 + g.heap_size())
            .sum();
        std::mem::size_of::<Stream>() + nodes + groups
    }
}

/// Iterator over a range of live entries.
pub struct Range<'a> {
    nodes: std::collections::btree_map::Range<'a, StreamId, Node>,
    start: StreamId,
    end: StreamId,
    rev: bool,
    current: Option<&'a Node>,
    positions: Vec<RawEntry>,
    next: usize,
    done: bool,
}

impl<'a> Iterator for Range<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        loop {
            if let Some(node) = self.current {
                while self.next < self.positions.len() {
                    let index = if self.rev {
                        self.positions.len() - 1 - self.next
                    } else {
                        self.next
                    };
                    self.next += 1;
                    let raw = self.positions[index];
                    if raw.is_deleted() || raw.id < self.start || raw.id > self.end {
                        continue;
                    }
                    return Some(EntryRef { node, raw });
                }
            }
            if self.done {
                return None;
            }
            let (_, node) = if self.rev {
                self.nodes.next_back()?
            } else {
                self.nodes.next()?
            };
            if self.rev && node.last_id() < self.start {
                self.done = true;
            }
            if self.done {
                return None;
            }
            self.current = Some(node);
            self.positions.clear();
            self.positions.extend(node.iter());
            self.next = 0;
        }
    }
}

#[cfg(test)]
mod tests;
