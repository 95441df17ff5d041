//! The server's TLS session cache: `tls-session-cache-size` entries, each resumable for
//! `tls-session-cache-timeout` seconds (rustls's own cache has a size but no age limit).
//! It serves both TLS 1.2 session ids and TLS 1.3 stateful tickets.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug)]
pub struct SessionCache {
    capacity: usize,
    timeout: Duration,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<Vec<u8>, (Vec<u8>, Instant)>,
    /// Ids in insertion order, for evicting the oldest; may hold ids already taken.
    order: VecDeque<Vec<u8>>,
}

impl SessionCache {
    pub fn new(capacity: usize, timeout_secs: u64) -> SessionCache {
        SessionCache {
            capacity: capacity.max(1),
            timeout: Duration::from_secs(timeout_secs),
            inner: Mutex::new(Entries::default()),
        }
    }

    fn fresh(&self, stored: Instant) -> bool {
        stored.elapsed() < self.timeout
    }
}

impl rustls::server::StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut entries = self.inner.lock();
        while entries.by_id.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_id.remove(&oldest);
        }
        // Stale ids (taken or replaced) would otherwise pile up in `order`.
        if entries.order.len() > self.capacity * 2 {
            let Entries { by_id, order } = &mut *entries;
            order.retain(|id| by_id.contains_key(id));
        }
        entries.order.push_back(key.clone());
        entries.by_id.insert(key, (value, Instant::now()));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entries = self.inner.lock();
        let (value, stored) = entries.by_id.get(key)?;
        self.fresh(*stored).then(|| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (value, stored) = self.inner.lock().by_id.remove(key)?;
        self.fresh(stored).then_some(value)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::StoresServerSessions;

    #[test]
    fn evicts_the_oldest_and_expires() {
        let cache = SessionCache::new(2, 300);
        for id in [b"a", b"b", b"c"] {
            cache.put(id.to_vec(), id.to_vec());
        }
        assert_eq!(cache.get(b"a"), None);
        assert_eq!(cache.get(b"b"), Some(b"b".to_vec()));
        assert_eq!(cache.take(b"c"), Some(b"c".to_vec()));
        assert_eq!(cache.take(b"c"), None);

        let expired = SessionCache::new(10, 0);
        expired.put(b"x".to_vec(), b"1".to_vec());
        assert_eq!(expired.get(b"x"), None);
    }

    #[test]
    fn order_stays_bounded_when_sessions_are_taken() {
        let cache = SessionCache::new(4, 300);
        for i in 0..1000u32 {
            let id = i.to_be_bytes().to_vec();
            cache.put(id.clone(), id.clone());
            cache.take(&id);
        }
        assert!(cache.inner.lock().order.len() <= 9);
    }
}
