//! One logical database's part of one shard: its keys, their expiry, and lazy expiration.

use crate::events::{self, KeyEvent};
use crate::table::Table;
use crate::value::Value;

/// `expire_at` of a key without a TTL.
pub const NO_EXPIRE: i64 = -1;

/// What is stored under a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds, or [`NO_EXPIRE`].
    pub expire_at: i64,
    /// LRU clock (seconds, 24 bits) or, under an LFU policy, minutes (16 bits) and a
    /// logarithmic counter (8 bits), as Valkey packs them.
    pub access: u32,
}

impl Entry {
    pub fn new(value: Value, access: u32) -> Entry {
        Entry {
            value,
            expire_at: NO_EXPIRE,
            access,
        }
    }

    pub fn has_expire(&self) -> bool {
        self.expire_at != NO_EXPIRE
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expire_at != NO_EXPIRE && self.expire_at <= now_ms
    }
}

#[derive(Default)]
pub struct Db {
    /// This database's number, reported with its keyspace events.
    index: usize,
    table: Table<Entry>,
    volatile: usize,
    expire_cursor: u64,
}

impl Db {
    pub fn new(index: usize) -> Db {
        Db {
            index,
            ..Db::default()
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn set_index(&mut self, index: usize) {
        self.index = index;
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    pub fn bucket_count(&self) -> usize {
        self.table.bucket_count()
    }

    /// Looks `key` up, deleting it first if it has expired.
    pub fn get(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        if self.table.get(key)?.is_expired(now_ms) {
            self.expire_now(key);
            return None;
        }
        self.table.get_mut(key)
    }

    /// Looks `key` up without expiring it (the entry may be logically expired).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.table.get(key)
    }

    /// Whether `key` exists and is not expired, without deleting anything.
    pub fn contains_live(&self, key: &[u8], now_ms: i64) -> bool {
        self.table.get(key).is_some_and(|e| !e.is_expired(now_ms))
    }

    /// Stores `entry` under `key`, replacing any previous entry; returns the previous entry.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let volatile = entry.has_expire();
        let old = self.table.insert(key, entry);
        if volatile {
            self.volatile += 1;
        }
        if old.as_ref().is_some_and(Entry::has_expire) {
            self.volatile -= 1;
        }
        old
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let old = self.table.remove(key)?;
        if old.has_expire() {
            self.volatile -= 1;
        }
        Some(old)
    }

    /// Sets or clears (`NO_EXPIRE`) the expiry of an existing key. Returns false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: i64) -> bool {
        let Some(entry) = self.table.get_mut(key) else {
            return false;
        };
        match (entry.has_expire(), expire_at != NO_EXPIRE) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
        entry.expire_at = expire_at;
        true
    }

    fn expire_now(&mut self, key: &[u8]) {
        if self.remove(key).is_some() {
            events::record(KeyEvent::Expired {
                db: self.index,
                key: key.into(),
            });
        }
    }

    /// One step of active expiry: walks buckets from where the last step stopped until it has
    /// looked at `samples` keys with a TTL (or `samples * 20` buckets), deleting the expired
    /// ones. Returns (keys with a TTL looked at, keys deleted).
    ///
    /// Walking the main table instead of a separate index of volatile keys costs no memory
    /// per key; the walk is bounded, and its cost per sample grows only when few keys have a
    /// TTL, where there is also little to expire.
    pub fn active_expire_step(&mut self, now_ms: i64, samples: usize) -> (usize, usize) {
        if self.volatile == 0 {
            return (0, 0);
        }
        let mut sampled = 0;
        let mut doomed: Vec<Box<[u8]>> = Vec::new();
        let mut cursor = self.expire_cursor;
        let mut buckets = 0;
        while sampled < samples && buckets < samples * 20 {
            cursor = self.table.scan_step(cursor, |key, entry| {
                if entry.has_expire() {
                    sampled += 1;
                    if entry.is_expired(now_ms) {
                        doomed.push(key.into());
                    }
                }
            });
            buckets += 1;
            if cursor == 0 {
                break;
            }
        }
        self.expire_cursor = cursor;
        let expired = doomed.len();
        for key in doomed {
            self.expire_now(&key);
        }
        (sampled, expired)
    }

    /// One SCAN step over this database's part of the shard.
    pub fn scan_step(&self, cursor: u64, visit: impl FnMut(&[u8], &Entry)) -> u64 {
        self.table.scan_step(cursor, visit)
    }

    pub fn for_each(&self, visit: impl FnMut(&[u8], &Entry)) {
        self.table.for_each(visit)
    }

    /// Empties the database, returning the old contents so they can be freed elsewhere.
    pub fn take(&mut self) -> Db {
        Db {
            table: self.table.take_all(),
            volatile: std::mem::take(&mut self.volatile),
            expire_cursor: std::mem::take(&mut self.expire_cursor),
            index: self.index,
        }
    }

    pub fn random_entry(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &Entry)> {
        self.table.random_entry(rng)
    }

    /// Removes expired keys matching nothing in particular: used by DEBUG and tests.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut Entry) -> bool) {
        let mut volatile_removed = 0;
        self.table.retain(|k, e| {
            let kept = keep(k, e);
            if !kept && e.has_expire() {
                volatile_removed += 1;
            }
            kept
        });
        self.volatile -= volatile_removed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::StrValue;

    fn string(s: &str) -> Entry {
        Entry::new(Value::Str(StrValue::from_bytes(s.as_bytes())), 0)
    }

    #[test]
    fn expired_keys_vanish_on_access_and_are_reported() {
        let mut db = Db::default();
        let mut e = string("v");
        e.expire_at = 1000;
        db.insert(b"k", e);
        assert_eq!(db.volatile_len(), 1);
        assert!(db.get(b"k", 999).is_some());
        assert!(db.get(b"k", 1000).is_none());
        assert_eq!(db.volatile_len(), 0);
        assert!(
            matches!(&events::take()[..], [KeyEvent::Expired { db: 0, key }] if &**key == b"k")
        );
    }

    #[test]
    fn active_expiry_finds_expired_keys_among_many() {
        let mut db = Db::default();
        for i in 0..1000 {
            let mut e = string("v");
            if i % 10 == 0 {
                e.expire_at = 5;
            }
            db.insert(format!("k{i}").as_bytes(), e);
        }
        let mut total = 0;
        for _ in 0..100 {
            total += db.active_expire_step(10, 20).1;
        }
        assert_eq!(total, 100);
        assert_eq!(db.len(), 900);
        assert_eq!(db.volatile_len(), 0);
    }
}
