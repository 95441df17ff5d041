//! The large form of a hash: a chained hash table of fields with optional per-field expiry.
//!
//! Fields live in one dense `Vec` (each one allocation holding field and value bytes), and
//! the bucket array holds `u32` indexes into it, chained through each slot's `next`. Dense
//! storage gives uniform O(1) random picks (HRANDFIELD) and cache-friendly full walks;
//! chaining, not open addressing, keeps HSCAN's guarantee: buckets are visited in
//! reverse-binary order, so a field present for the whole scan is returned even if the table
//! is resized between calls (the argument is the keyspace table's, see `store/table.rs`).
//!
//! Fields with a TTL are also indexed by expiry time, so reclaiming the expired ones costs
//! O(log n) each, never a walk over the whole hash.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::db::NO_EXPIRE;
use crate::table::hash_key;

const NIL: u32 = u32::MAX;
const MIN_BUCKETS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    /// The field's bytes followed by the value's.
    data: Box<[u8]>,
    field_len: u32,
    /// The next slot in this bucket's chain, or `NIL`.
    next: u32,
    expire_at: i64,
}

impl Slot {
    fn new(field: &[u8], value: &[u8], expire_at: i64) -> Slot {
        let mut data = Vec::with_capacity(field.len() + value.len());
        data.extend_from_slice(field);
        data.extend_from_slice(value);
        Slot {
            data: data.into_boxed_slice(),
            field_len: field.len() as u32,
            next: NIL,
            expire_at,
        }
    }

    fn field(&self) -> &[u8] {
        &self.data[..self.field_len as usize]
    }

    fn value(&self) -> &[u8] {
        &self.data[self.field_len as usize..]
    }
}

/// One field as the table stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef<'a> {
    pub field: &'a [u8],
    pub value: &'a [u8],
    /// Absolute Unix milliseconds, or `NO_EXPIRE`.
    pub expire_at: i64,
}

impl FieldRef<'_> {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expire_at != NO_EXPIRE && self.expire_at <= now_ms
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldTable {
    slots: Vec<Slot>,
    buckets: Vec<u32>,
    /// (expiry, field) of every field with a TTL.
    volatile: BTreeSet<(i64, Box<[u8]>)>,
}

impl FieldTable {
    pub fn with_capacity(n: usize) -> FieldTable {
        let mut table = FieldTable {
            slots: Vec::with_capacity(n),
            ..FieldTable::default()
        };
        table.rebuild(n.next_power_of_two().max(MIN_BUCKETS));
        table
    }

    /// Stored fields, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Fields with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// The earliest field expiry, if any field has a TTL.
    pub fn next_expiry(&self) -> Option<i64> {
        self.volatile.first().map(|(at, _)| *at)
    }

    pub fn heap_size(&self) -> usize {
        let slots: usize = self.slots.iter().map(|s| s.data.len()).sum();
        let volatile: usize = self.volatile.iter().map(|(_, f)| f.len() + 24).sum();
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.buckets.capacity() * 4
            + slots
            + volatile
    }

    fn bucket_of(&self, field: &[u8]) -> usize {
        (hash_key(field) as usize) & (self.buckets.len() - 1)
    }

    fn find(&self, field: &[u8]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.buckets[self.bucket_of(field)];
        while i != NIL {
            let slot = &self.slots[i as usize];
            if slot.field() == field {
                return Some(i as usize);
            }
            i = slot.next;
        }
        None
    }

    fn slot_ref(slot: &Slot) -> FieldRef<'_> {
        FieldRef {
            field: slot.field(),
            value: slot.value(),
            expire_at: slot.expire_at,
        }
    }

    /// The field as stored, expired or not.
    pub fn get(&self, field: &[u8]) -> Option<FieldRef<'_>> {
        self.find(field).map(|i| Self::slot_ref(&self.slots[i]))
    }

    /// The field at dense position `index` (0..len), for uniform random picks.
    pub fn at(&self, index: usize) -> Option<FieldRef<'_>> {
        self.slots.get(index).map(Self::slot_ref)
    }

    pub fn iter(&self) -> impl Iterator<Item = FieldRef<'_>> + '_ {
        self.slots.iter().map(Self::slot_ref)
    }

    /// Sets `field` to `value` with expiry `expire_at`; returns the previous expiry if the
    /// field was stored already.
    pub fn set(&mut self, field: &[u8], value: &[u8], expire_at: i64) -> Option<i64> {
        match self.find(field) {
            Some(i) => {
                let old = self.slots[i].expire_at;
                let next = self.slots[i].next;
                self.slots[i] = Slot {
                    next,
                    ..Slot::new(field, value, expire_at)
                };
                self.reindex_expiry(field, old, expire_at);
                Some(old)
            }
            None => {
                if self.slots.len() >= self.buckets.len() {
                    self.rebuild((self.buckets.len() * 2).max(MIN_BUCKETS));
                }
                if self.slots.len() >= NIL as usize {
                    // u32 slot indexes: a hash of four billion fields is far beyond memory.
                    return None;
                }
                let b = self.bucket_of(field);
                let mut slot = Slot::new(field, value, expire_at);
                slot.next = self.buckets[b];
                self.buckets[b] = self.slots.len() as u32;
                self.slots.push(slot);
                if expire_at != NO_EXPIRE {
                    self.volatile.insert((expire_at, field.into()));
                }
                None
            }
        }
    }

    /// Changes the expiry of a stored field; returns false if it is not stored.
    pub fn set_expire(&mut self, field: &[u8], expire_at: i64) -> bool {
        let Some(i) = self.find(field) else {
            return false;
        };
        let old = std::mem::replace(&mut self.slots[i].expire_at, expire_at);
        self.reindex_expiry(field, old, expire_at);
        true
    }

    fn reindex_expiry(&mut self, field: &[u8], old: i64, new: i64) {
        if old == new {
            return;
        }
        if old != NO_EXPIRE {
            self.volatile.remove(&(old, Box::<[u8]>::from(field)));
        }
        if new != NO_EXPIRE {
            self.volatile.insert((new, field.into()));
        }
    }

    /// Removes a stored field (expired or not); returns whether it was stored.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let Some(i) = self.find(field) else {
            return false;
        };
        self.remove_at(i);
        true
    }

    fn remove_at(&mut self, i: usize) {
        let b = self.bucket_of(self.slots[i].field());
        self.unlink(b, i as u32);
        let last = self.slots.len() - 1;
        if i != last {
            // The last slot moves into position `i`: repoint the link that named it.
            let moved_bucket = self.bucket_of(self.slots[last].field());
            self.relink(moved_bucket, last as u32, i as u32);
        }
        let removed = self.slots.swap_remove(i);
        if removed.expire_at != NO_EXPIRE {
            self.volatile
                .remove(&(removed.expire_at, removed.field().into()));
        }
        let n = self.buckets.len();
        if n > MIN_BUCKETS && self.slots.len() * 8 < n {
            self.rebuild(self.slots.len().next_power_of_two().max(MIN_BUCKETS));
        }
    }

    fn unlink(&mut self, bucket: usize, target: u32) {
        let next = self.slots[target as usize].next;
        if self.buckets[bucket] == target {
            self.buckets[bucket] = next;
            return;
        }
        let mut i = self.buckets[bucket];
        while i != NIL {
            if self.slots[i as usize].next == target {
                self.slots[i as usize].next = next;
                return;
            }
            i = self.slots[i as usize].next;
        }
    }

    fn relink(&mut self, bucket: usize, from: u32, to: u32) {
        if self.buckets[bucket] == from {
            self.buckets[bucket] = to;
            return;
        }
        let mut i = self.buckets[bucket];
        while i != NIL {
            if self.slots[i as usize].next == from {
                self.slots[i as usize].next = to;
                return;
            }
            i = self.slots[i as usize].next;
        }
    }

    /// Rebuilds the bucket array with `size` (a power of two) buckets.
    fn rebuild(&mut self, size: usize) {
        self.buckets.clear();
        self.buckets.resize(size, NIL);
        self.buckets.shrink_to_fit();
        let mask = size - 1;
        for i in 0..self.slots.len() {
            let b = (hash_key(self.slots[i].field()) as usize) & mask;
            self.slots[i].next = self.buckets[b];
            self.buckets[b] = i as u32;
        }
    }

    /// Removes up to `max` fields whose expiry is at or before `now_ms`, earliest first;
    /// returns how many it removed.
    pub fn expire_due(&mut self, now_ms: i64, max: usize) -> usize {
        self.expire_due_named(now_ms, max, None)
    }

    /// [`Self::expire_due`], adding the removed fields' names to `names` when given (they
    /// are propagated as HDEL).
    pub fn expire_due_named(
        &mut self,
        now_ms: i64,
        max: usize,
        mut names: Option<&mut Vec<Bytes>>,
    ) -> usize {
        let mut removed = 0;
        while removed < max {
            let Some((at, field)) = self.volatile.first() else {
                break;
            };
            if *at > now_ms {
                break;
            }
            let field = field.clone();
            if let Some(names) = names.as_deref_mut() {
                names.push(Bytes::copy_from_slice(&field));
            }
            if !self.remove(&field) {
                // Not stored (cannot happen: the index follows the slots); drop the entry.
                self.volatile.pop_first();
            }
            removed += 1;
        }
        removed
    }

    /// One HSCAN step: visits the bucket `cursor` designates and returns the next cursor
    /// (0 when the iteration is complete).
    pub fn scan_step<'a>(&'a self, cursor: u64, mut visit: impl FnMut(FieldRef<'a>)) -> u64 {
        if self.buckets.is_empty() || self.slots.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut i = self.buckets[(cursor & mask) as usize];
        while i != NIL {
            let slot = &self.slots[i as usize];
            visit(Self::slot_ref(slot));
            i = slot.next;
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn behaves_like_a_map_through_growth_and_shrinking() {
        let mut table = FieldTable::default();
        let mut model = HashMap::new();
        for i in 0..2000u32 {
            let f = format!("f{i}").into_bytes();
            assert_eq!(table.set(&f, &i.to_le_bytes(), NO_EXPIRE), None);
            model.insert(f, i);
        }
        for i in (0..2000u32).step_by(3) {
            let f = format!("f{i}").into_bytes();
            assert!(table.remove(&f));
            model.remove(&f);
        }
        assert_eq!(table.len(), model.len());
        for (f, v) in &model {
            assert_eq!(table.get(f).map(|r| r.value), Some(&v.to_le_bytes()[..]));
        }
        for i in 0..2000u32 {
            table.remove(format!("f{i}").as_bytes());
        }
        assert!(table.is_empty());
        assert!(table.buckets.len() <= 8);
    }

    #[test]
    fn expired_fields_are_reclaimed_in_expiry_order() {
        let mut table = FieldTable::default();
        for i in 0..100i64 {
            table.set(format!("f{i}").as_bytes(), b"v", 1000 + i);
        }
        table.set(b"keep", b"v", NO_EXPIRE);
        assert_eq!(table.volatile_len(), 100);
        assert_eq!(table.next_expiry(), Some(1000));
        assert_eq!(table.expire_due(1049, 10), 10);
        assert_eq!(table.expire_due(1049, 1000), 40);
        assert_eq!(table.len(), 51);
        assert!(table.set_expire(b"f99", NO_EXPIRE));
        assert_eq!(table.expire_due(i64::MAX, 1000), 49);
        assert_eq!(table.len(), 2);
        assert_eq!(table.volatile_len(), 0);
    }

    #[test]
    fn scan_returns_every_field_across_resizes() {
        let mut table = FieldTable::default();
        for i in 0..500 {
            table.set(format!("f{i}").as_bytes(), b"v", NO_EXPIRE);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = table.scan_step(cursor, |f| {
                seen.insert(f.field.to_vec());
            });
            step += 1;
            // Grow the table mid-scan, then shrink it: the original fields must all be seen.
            if step == 50 {
                for i in 500..3000 {
                    table.set(format!("f{i}").as_bytes(), b"v", NO_EXPIRE);
                }
            }
            if step == 300 {
                for i in 500..3000 {
                    table.remove(format!("f{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
    }
}
