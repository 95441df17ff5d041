//! ACL LOG: the recent denials, newest first, with repeated denials folded into one entry.

use std::collections::VecDeque;

use bytes::Bytes;
use ferrokv_protocol::Reply;

/// Denials that repeat within this window update the earlier entry instead of adding one.
const GROUPING_WINDOW_MS: i64 = 60_000;
/// How many of the newest entries a denial is compared with.
const GROUPING_SCAN: usize = 10;

pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    pub object: Bytes,
    pub username: Bytes,
    pub client_info: String,
    pub entry_id: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Default)]
pub struct AclLog {
    entries: VecDeque<LogEntry>,
    /// Ids keep counting across ACL LOG RESET, as in Valkey.
    next_id: u64,
}

/// One denial to record.
pub struct Denied {
    pub reason: &'static str,
    pub context: &'static str,
    pub object: Bytes,
    pub username: Bytes,
    pub client_info: String,
}

impl AclLog {
    pub fn add(&mut self, denied: Denied, now_ms: i64, max_len: usize) {
        let similar = self.entries.iter().take(GROUPING_SCAN).position(|e| {
            e.reason == denied.reason
                && e.context == denied.context
                && e.object == denied.object
                && e.username == denied.username
                && now_ms - e.updated_ms <= GROUPING_WINDOW_MS
        });
        if let Some(at) = similar
            && let Some(mut entry) = self.entries.remove(at)
        {
            entry.count += 1;
            entry.updated_ms = now_ms;
            entry.client_info = denied.client_info;
            self.entries.push_front(entry);
        } else {
            let entry_id = self.next_id;
            self.next_id += 1;
            self.entries.push_front(LogEntry {
                count: 1,
                reason: denied.reason,
                context: denied.context,
                object: denied.object,
                username: denied.username,
                client_info: denied.client_info,
                entry_id,
                created_ms: now_ms,
                updated_ms: now_ms,
            });
        }
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    pub fn trim(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }

    /// Writes up to `count` entries, newest first, as ACL LOG replies them.
    pub fn write(&self, reply: &mut Reply, count: usize, now_ms: i64) {
        let shown = self.entries.len().min(count);
        reply.array_len(shown);
        for e in self.entries.iter().take(shown) {
            reply.map_len(10);
            reply.bulk(b"count");
            reply.int(e.count as i64);
            reply.bulk(b"reason");
            reply.bulk(e.reason.as_bytes());
            reply.bulk(b"context");
            reply.bulk(e.context.as_bytes());
            reply.bulk(b"object");
            reply.bulk(&e.object);
            reply.bulk(b"username");
            reply.bulk(&e.username);
            reply.bulk(b"age-seconds");
            reply.double((now_ms - e.updated_ms).max(0) as f64 / 1000.0);
            reply.bulk(b"client-info");
            reply.bulk(e.client_info.as_bytes());
            reply.bulk(b"entry-id");
            reply.int(e.entry_id as i64);
            reply.bulk(b"timestamp-created");
            reply.int(e.created_ms);
            reply.bulk(b"timestamp-last-updated");
            reply.int(e.updated_ms);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(object: &'static str) -> Denied {
        Denied {
            reason: "key",
            context: "toplevel",
            object: Bytes::from_static(object.as_bytes()),
            username: Bytes::from_static(b"u"),
            client_info: String::new(),
        }
    }

    #[test]
    fn repeated_denials_fold_and_move_to_the_front() {
        let mut log = AclLog::default();
        log.add(denied("a"), 1000, 128);
        log.add(denied("b"), 1001, 128);
        log.add(denied("a"), 1002, 128);
        assert_eq!(log.len(), 2);
        assert_eq!(log.entries[0].object, "a");
        assert_eq!(log.entries[0].count, 2);
        assert_eq!(log.entries[0].entry_id, 0);
        // Outside the window: a new entry.
        log.add(denied("a"), 1002 + GROUPING_WINDOW_MS + 1, 128);
        assert_eq!(log.len(), 3);
        assert_eq!(log.entries[0].entry_id, 2);
        log.add(denied("c"), 200_000, 2);
        assert_eq!(log.len(), 2);
    }
}
