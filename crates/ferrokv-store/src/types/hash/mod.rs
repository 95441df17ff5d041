//! The hash type: a map of fields to values, each field with an optional time to live.
//!
//! Two encodings, as in Valkey 9.1, reported by OBJECT ENCODING:
//! - `listpack` ([`Listpack`]): one flat buffer, while the hash has at most
//!   `hash-max-listpack-entries` fields, none longer than `hash-max-listpack-value` bytes
//!   (nor any value), and no field has a TTL;
//! - `hashtable` ([`FieldTable`]): otherwise. A hash never converts back.
//!
//! Field expiry follows Valkey 9.1: an expired field is absent to every command at once, but
//! it stays stored (and counted by HLEN) until the active expiry reclaims it, which also
//! deletes a hash left without fields.

mod listpack;
mod table;

pub use listpack::Listpack;
pub use table::{FieldRef, FieldTable};

use bytes::Bytes;

use crate::db::NO_EXPIRE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashValue {
    Listpack(Listpack),
    Table(Box<FieldTable>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(Listpack::default())
    }
}

/// The thresholds of the compact encoding (`hash-max-listpack-*`).
#[derive(Debug, Clone, Copy)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// The instant a write judges fields' expiry by: none has expired for the primary's commands
/// on a replica, an import source or an AOF replay (`replica_view`).
fn writers_now(now_ms: i64) -> i64 {
    if crate::replica_view::expired_key_still_alive() {
        i64::MIN
    } else {
        now_ms
    }
}

impl HashValue {
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    /// Stored fields, including expired fields not yet reclaimed (what HLEN reports).
    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(lp) => lp.len(),
            HashValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_size(&self) -> usize {
        match self {
            HashValue::Listpack(lp) => lp.heap_size(),
            HashValue::Table(t) => std::mem::size_of::<FieldTable>() + t.heap_size(),
        }
    }

    /// Fields with a TTL (0 for the compact encoding, which never has any).
    pub fn volatile_len(&self) -> usize {
        match self {
            HashValue::Listpack(_) => 0,
            HashValue::Table(t) => t.volatile_len(),
        }
    }

    /// The earliest field expiry, if any field has a TTL.
    pub fn next_expiry(&self) -> Option<i64> {
        match self {
            HashValue::Listpack(_) => None,
            HashValue::Table(t) => t.next_expiry(),
        }
    }

    /// Reclaims up to `max` expired fields; returns how many.
    pub fn expire_due(&mut self, now_ms: i64, max: usize) -> usize {
        self.expire_due_named(now_ms, max, None)
    }

    /// [`Self::expire_due`], adding the reclaimed fields' names to `names` when given.
    pub fn expire_due_named(
        &mut self,
        now_ms: i64,
        max: usize,
        names: Option<&mut Vec<Bytes>>,
    ) -> usize {
        match self {
            HashValue::Listpack(_) => 0,
            HashValue::Table(t) => t.expire_due_named(now_ms, max, names),
        }
    }

    /// The live field `field`: its value and expiry (`NO_EXPIRE` if none).
    pub fn get_with_expiry(&self, field: &[u8], now_ms: i64) -> Option<(&[u8], i64)> {
        match self {
            HashValue::Listpack(lp) => lp.get(field).map(|v| (v, NO_EXPIRE)),
            HashValue::Table(t) => t
                .get(field)
                .filter(|f| !f.is_expired(now_ms))
                .map(|f| (f.value, f.expire_at)),
        }
    }

    /// The value of the live field `field`.
    pub fn get(&self, field: &[u8], now_ms: i64) -> Option<&[u8]> {
        self.get_with_expiry(field, now_ms).map(|(v, _)| v)
    }

    /// Whether `field` is stored but has expired (not yet reclaimed).
    pub fn holds_expired(&self, field: &[u8], now_ms: i64) -> bool {
        match self {
            HashValue::Listpack(_) => false,
            // Without a field with a TTL, none has expired: no lookup (HSET asks per field).
            HashValue::Table(t) => {
                t.volatile_len() > 0 && t.get(field).is_some_and(|f| f.is_expired(now_ms))
            }
        }
    }

    pub fn contains(&self, field: &[u8], now_ms: i64) -> bool {
        self.get_with_expiry(field, now_ms).is_some()
    }

    /// Sets `field` to `value`. The field's TTL is cleared unless `keep_ttl` (a field that
    /// had expired counts as new and gets no TTL). Returns whether the field is new.
    /// Converts to the table encoding first when the pair is too long for the compact one;
    /// the caller checks the entry count afterwards ([`HashValue::convert_if_too_many`]).
    pub fn set(
        &mut self,
        field: &[u8],
        value: &[u8],
        keep_ttl: bool,
        now_ms: i64,
        limits: HashLimits,
    ) -> bool {
        if field.len() > limits.max_value || value.len() > limits.max_value {
            self.convert_to_table();
        }
        // The primary's write on a replica finds the field as the primary had it (KEEPTTL
        // keeps a time that passed here first).
        let now_ms = writers_now(now_ms);
        match self {
            HashValue::Listpack(lp) => lp.set(field, value),
            HashValue::Table(t) => {
                let mut live = false;
                t.set_with(field, value, |stored| match stored {
                    Some(f) if !f.is_expired(now_ms) => {
                        live = true;
                        if keep_ttl { f.expire_at } else { NO_EXPIRE }
                    }
                    _ => NO_EXPIRE,
                });
                !live
            }
        }
    }

    /// Converts to the table encoding if the hash has more than `max_entries` fields.
    pub fn convert_if_too_many(&mut self, limits: HashLimits) {
        if matches!(self, HashValue::Listpack(lp) if lp.len() > limits.max_entries) {
            self.convert_to_table();
        }
    }

    /// Switches to the table encoding (no-op if already there).
    pub fn convert_to_table(&mut self) {
        if let HashValue::Listpack(lp) = self {
            let mut table = FieldTable::with_capacity(lp.len());
            for (f, v) in lp.iter() {
                table.set(f, v, NO_EXPIRE);
            }
            *self = HashValue::Table(Box::new(table));
        }
    }

    /// Removes the live field `field`; returns whether it was there. An expired field is
    /// absent, so it is left for the active expiry, as in Valkey. On a replica, the
    /// primary's HDEL (its active expiry reclaiming the field) removes it all the same: the
    /// replica never reclaims fields itself.
    pub fn remove(&mut self, field: &[u8], now_ms: i64) -> bool {
        let now_ms = writers_now(now_ms);
        match self {
            HashValue::Listpack(lp) => lp.remove(field),
            HashValue::Table(t) => {
                if t.get(field).is_some_and(|f| !f.is_expired(now_ms)) {
                    t.remove(field)
                } else {
                    false
                }
            }
        }
    }

    /// Gives the live field `field` the expiry `expire_at` (`NO_EXPIRE` clears it),
    /// converting to the table encoding when setting a TTL. Returns false if the field is
    /// absent.
    pub fn set_expire(&mut self, field: &[u8], expire_at: i64, now_ms: i64) -> bool {
        if !self.contains(field, now_ms) {
            return false;
        }
        if expire_at != NO_EXPIRE {
            self.convert_to_table();
        }
        match self {
            HashValue::Listpack(_) => true,
            HashValue::Table(t) => t.set_expire(field, expire_at),
        }
    }

    /// Calls `visit` with every live field and value, in storage order.
    pub fn for_each_live(&self, now_ms: i64, mut visit: impl FnMut(&[u8], &[u8])) {
        match self {
            HashValue::Listpack(lp) => lp.iter().for_each(|(f, v)| visit(f, v)),
            HashValue::Table(t) => t
                .iter()
                .filter(|f| !f.is_expired(now_ms))
                .for_each(|f| visit(f.field, f.value)),
        }
    }

    /// A uniformly random live field and its value.
    pub fn random_field(&self, now_ms: i64, rng: &mut impl rand::Rng) -> Option<(&[u8], &[u8])> {
        match self {
            HashValue::Listpack(lp) => {
                if lp.is_empty() {
                    return None;
                }
                lp.iter().nth(rng.random_range(0..lp.len()))
            }
            HashValue::Table(t) => {
                if t.is_empty() {
                    return None;
                }
                // Expired fields are few between reclaim passes; after a few unlucky draws,
                // pick among the live ones explicitly.
                for _ in 0..8 {
                    let f = t.random(rng)?;
                    if !f.is_expired(now_ms) {
                        return Some((f.field, f.value));
                    }
                }
                let live = self.live_pairs(now_ms);
                if live.is_empty() {
                    return None;
                }
                Some(live[rng.random_range(0..live.len())])
            }
        }
    }

    /// Every live field and value, in storage order.
    pub fn live_pairs(&self, now_ms: i64) -> Vec<(&[u8], &[u8])> {
        let mut pairs = Vec::with_capacity(self.len());
        match self {
            HashValue::Listpack(lp) => pairs.extend(lp.iter()),
            HashValue::Table(t) => pairs.extend(
                t.iter()
                    .filter(|f| !f.is_expired(now_ms))
                    .map(|f| (f.field, f.value)),
            ),
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HashLimits = HashLimits {
        max_entries: 4,
        max_value: 8,
    };

    #[test]
    fn converts_at_the_thresholds() {
        let mut h = HashValue::default();
        for i in 0..4 {
            h.set(format!("f{i}").as_bytes(), b"v", false, 0, LIMITS);
            h.convert_if_too_many(LIMITS);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f4", b"v", false, 0, LIMITS);
        h.convert_if_too_many(LIMITS);
        assert_eq!(h.encoding(), "hashtable");

        let mut h = HashValue::default();
        h.set(b"f", &[b'x'; 8], false, 0, LIMITS);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f", &[b'x'; 9], false, 0, LIMITS);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"f", 0), Some(&[b'x'; 9][..]));
    }

    #[test]
    fn expired_fields_are_absent_but_stored_until_reclaimed() {
        let mut h = HashValue::default();
        h.set(b"a", b"1", false, 0, LIMITS);
        h.set(b"b", b"2", false, 0, LIMITS);
        assert!(h.set_expire(b"a", 100, 0));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get_with_expiry(b"a", 99), Some((&b"1"[..], 100)));
        assert_eq!(h.get(b"a", 100), None);
        assert!(!h.remove(b"a", 100));
        assert_eq!(h.len(), 2);
        assert_eq!(h.live_pairs(100), vec![(&b"b"[..], &b"2"[..])]);
        // Setting an expired field makes a new field without a TTL.
        assert!(h.set(b"a", b"3", true, 100, LIMITS));
        assert_eq!(h.get_with_expiry(b"a", 100), Some((&b"3"[..], NO_EXPIRE)));
        assert!(h.set_expire(b"b", 50, 0));
        assert_eq!(h.expire_due(60, 10), 1);
        assert_eq!(h.len(), 1);
        assert_eq!(h.volatile_len(), 0);
    }

    #[test]
    fn setting_a_live_field_keeps_or_clears_its_ttl() {
        let mut h = HashValue::default();
        h.set(b"a", b"1", false, 0, LIMITS);
        assert!(h.set_expire(b"a", 100, 0));
        assert!(!h.set(b"a", b"2", true, 50, LIMITS), "not new");
        assert_eq!(h.get_with_expiry(b"a", 50), Some((&b"2"[..], 100)));
        assert_eq!(h.volatile_len(), 1);
        assert!(!h.set(b"a", b"3", false, 50, LIMITS));
        assert_eq!(h.get_with_expiry(b"a", 50), Some((&b"3"[..], NO_EXPIRE)));
        assert_eq!(h.volatile_len(), 0);
        assert!(h.set(b"b", b"1", true, 50, LIMITS), "new");
        assert_eq!(h.get_with_expiry(b"b", 50), Some((&b"1"[..], NO_EXPIRE)));
    }

    /// HRANDFIELD without a count: each live field equally often, never an expired one
    /// (a fifth of the fields, stored until reclaimed).
    #[test]
    fn random_fields_are_live_and_uniform() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let mut h = HashValue::default();
        for i in 0..50 {
            let field = format!("f{i}");
            h.set(field.as_bytes(), b"v", false, 0, LIMITS);
            if i % 5 == 0 {
                h.set_expire(field.as_bytes(), 10, 0);
            }
        }
        assert_eq!(h.encoding(), "hashtable");
        crate::types::bucket_table::tests::assert_uniform(40, 80_000, || {
            let (field, _) = h.random_field(10, &mut rng).unwrap_or_default();
            assert!(h.contains(field, 10), "expired field drawn");
            field.to_vec()
        });
    }
}
