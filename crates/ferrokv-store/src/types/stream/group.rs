//! Consumer groups: the last delivered ID, the pending entries list (PEL) and consumers.
//!
//! The group's PEL owns each pending entry; a consumer's PEL holds the IDs it owns, and a
//! pending entry names its consumer, so acknowledging or claiming touches both in O(log n).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::id::StreamId;

/// `entries-read` when the group's position in the stream's history is unknown.
pub const UNKNOWN_ENTRIES_READ: i64 = -1;

/// A consumer name, shared between the consumer and its pending entries.
pub type ConsumerName = Arc<[u8]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
    pub consumer: ConsumerName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms of the consumer's last interaction (any read or claim attempt).
    pub seen_time: i64,
    /// Unix ms of its last successful read or claim; -1 if never.
    pub active_time: i64,
    pub pending: BTreeSet<StreamId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    /// Entries the group has read from the start of the stream's history, or
    /// [`UNKNOWN_ENTRIES_READ`].
    pub entries_read: i64,
    pub pending: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<ConsumerName, Consumer>,
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: i64) -> ConsumerGroup {
        ConsumerGroup {
            last_id,
            entries_read,
            pending: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer `name`, created (seen now, never active) if missing. Returns its shared
    /// name and whether it was created.
    pub fn consumer_or_create(&mut self, name: &[u8], now_ms: i64) -> (ConsumerName, bool) {
        if let Some((key, _)) = self.consumers.get_key_value(name) {
            return (key.clone(), false);
        }
        let key: ConsumerName = Arc::from(name);
        self.consumers.insert(
            key.clone(),
            Consumer {
                seen_time: now_ms,
                active_time: -1,
                pending: BTreeSet::new(),
            },
        );
        (key, true)
    }

    pub fn consumer_mut(&mut self, name: &[u8]) -> Option<&mut Consumer> {
        self.consumers.get_mut(name)
    }

    /// Removes a consumer and its pending entries; returns how many it had, or `None` if
    /// there was no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pending.remove(id);
        }
        Some(consumer.pending.len())
    }

    /// Acknowledges `id`; false if it was not pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(entry) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(owner) = self.consumers.get_mut(&entry.consumer) {
            owner.pending.remove(&id);
        }
        true
    }

    /// Records a delivery of `id` to `consumer` (created beforehand): a new pending entry, or
    /// an existing one moved to `consumer` with its count reset to 1 (XREADGROUP after
    /// XGROUP SETID rewound the group).
    pub fn deliver(&mut self, id: StreamId, consumer: &ConsumerName, now_ms: i64) {
        let previous = self.pending.insert(
            id,
            PendingEntry {
                delivery_time: now_ms,
                delivery_count: 1,
                consumer: consumer.clone(),
            },
        );
        if let Some(previous) = previous
            && let Some(owner) = self.consumers.get_mut(&previous.consumer)
        {
            owner.pending.remove(&id);
        }
        if let Some(owner) = self.consumers.get_mut(consumer) {
            owner.pending.insert(id);
        }
    }

    /// Moves the pending entry `id` to `consumer` (XCLAIM, XAUTOCLAIM).
    pub fn transfer(&mut self, id: StreamId, consumer: &ConsumerName) {
        let Some(entry) = self.pending.get_mut(&id) else {
            return;
        };
        if entry.consumer == *consumer {
            return;
        }
        let old = std::mem::replace(&mut entry.consumer, consumer.clone());
        if let Some(owner) = self.consumers.get_mut(&old) {
            owner.pending.remove(&id);
        }
        if let Some(owner) = self.consumers.get_mut(consumer) {
            owner.pending.insert(id);
        }
    }

    pub fn heap_size(&self) -> usize {
        // BTreeMap nodes hold up to 11 items; count each item with its share of a node.
        let pel = self.pending.len()
            * (std::mem::size_of::<StreamId>() + std::mem::size_of::<PendingEntry>() + 8);
        let consumers: usize = self
            .consumers
            .iter()
            .map(|(name, c)| {
                name.len()
                    + 16
                    + std::mem::size_of::<Consumer>()
                    + c.pending.len() * (std::mem::size_of::<StreamId>() + 4)
            })
            .sum();
        std::mem::size_of::<ConsumerGroup>() + pel + consumers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_entries_follow_their_consumer() {
        let mut g = ConsumerGroup::new(StreamId::ZERO, 0);
        let (alice, created) = g.consumer_or_create(b"alice", 10);
        assert!(created);
        let (bob, _) = g.consumer_or_create(b"bob", 10);
        let id = StreamId::new(1, 1);
        g.deliver(id, &alice, 11);
        g.deliver(StreamId::new(1, 2), &alice, 11);
        g.transfer(id, &bob);
        assert!(g.consumers[&alice].pending.len() == 1);
        assert!(g.consumers[&bob].pending.contains(&id));
        assert_eq!(&*g.pending[&id].consumer, b"bob");
        assert!(g.ack(id));
        assert!(!g.ack(id));
        assert!(g.consumers[&bob].pending.is_empty());
        assert_eq!(g.delete_consumer(b"alice"), Some(1));
        assert!(g.pending.is_empty());
        assert_eq!(g.delete_consumer(b"alice"), None);
    }
}
