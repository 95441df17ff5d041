//! One logical database's part of one shard: its keys, their expiry, and lazy expiration.
//!
//! # Entries are stored compactly and handed out decoded
//!
//! The table stores each key as one compact [`Node`] (see `node.rs`): a short string's bytes
//! live inline next to the key, the expiry only when the key has one. Handlers, though, work
//! with a plain [`Entry`] (`&mut Entry` from [`Db::get`]). To give them one without a second
//! copy of every key in memory, the database *opens* the entry a handler asks for: it decodes
//! it into a slot it owns (short strings are copied into a buffer reused from open to open, so
//! this does not allocate), hands out `&mut` to the slot, and writes the slot back into the
//! node — in place when the size is unchanged — at the start of the next operation on this
//! database ([`Db::close`]). The borrow checker guarantees the handler's reference is gone by
//! then, since every operation takes `&mut self`. Read-only walks (`scan_step`, `for_each`)
//! see the open slot in place of the stale node. Values that are not short strings are boxed
//! in their node, and opening them hands out the box itself, so a large value is never copied.

use std::ptr::NonNull;

use bytes::Bytes;

use crate::effects;
use crate::events::{self, KeyEvent};
use crate::node::{INLINE_MAX, Kind, Node, PACKED_MAX, Payload, PayloadRef};
use crate::replica_view;
use crate::table::Table;
use crate::types::bucket_table::Location;
use crate::types::hash::{HashValue, Listpack};
use crate::types::set::{IntSet, SetValue, Width};
use crate::types::zpack::ZPack;
use crate::types::zset::ZSet;
use crate::value::{StrRef, StrValue, Value};

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
        self.expire_at != NO_EXPIRE
            && self.expire_at <= now_ms
            && !replica_view::expired_key_still_alive()
    }
}

/// A value that owns nothing, left where a value was moved out.
fn placeholder() -> Entry {
    Entry::new(Value::Str(StrValue::Int(0)), 0)
}

/// The entry handed out by the last `get`/`peek`, until `close` writes it back.
struct Open {
    /// Where the node is (the table cannot change while it is open).
    at: Location,
    /// The node's address, to recognise it.
    addr: usize,
    /// The decoded entry of an inline node; `None` for a boxed node, whose box is handed out.
    entry: Option<Entry>,
    had_expire: bool,
    had_volatile_items: bool,
}

#[derive(Default)]
pub struct Db {
    /// This database's number, reported with its keyspace events.
    index: usize,
    table: Table,
    volatile: usize,
    expire_cursor: u64,
    /// Keys whose value has items with a TTL of their own (hash fields).
    volatile_items: usize,
    items_cursor: u64,
    open: Option<Open>,
    /// A string buffer kept between opens, so decoding a short string does not allocate.
    spare: Vec<u8>,
}

impl Db {
    pub(crate) fn prefetch(&self, hash: u64, stage: crate::table::Stage) {
        self.table.prefetch(hash, stage);
    }

    /// Prefetches what a lookup reads of this `Db` itself (where its table's buckets are).
    pub(crate) fn prefetch_header(&self) {
        self.table.prefetch_header();
    }

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

    /// Keys whose value has items with a TTL (INFO's `keys_with_volatile_items`). Closes
    /// the open entry first, since a handler may just have given it its first item TTL.
    pub fn volatile_items_len(&mut self) -> usize {
        self.close();
        self.volatile_items
    }

    /// A buffer to build a string of `len` bytes in before storing it here. A string short
    /// enough to be stored inside its node gets the buffer this `Db` keeps between decodes,
    /// which storing it hands back: SET allocates nothing for its value. A longer one gets
    /// a buffer of its own size (it will be the value's storage: a larger spare would waste
    /// memory for as long as the key lives).
    pub fn string_buffer(&mut self, len: usize) -> Vec<u8> {
        if len <= INLINE_MAX {
            std::mem::take(&mut self.spare)
        } else {
            Vec::with_capacity(len)
        }
    }

    /// Bytes of the bucket arrays (the per-key overhead outside the nodes, but for child
    /// buckets).
    pub fn bucket_bytes(&self) -> usize {
        self.table.bucket_bytes()
    }

    /// Looks `key` up, deleting it first if it has expired.
    pub fn get(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        let at = self.find_live(key, now_ms)?;
        // Handed out mutably: a change if the command then reports one (WATCH).
        events::touch(self.index, key, false);
        self.open_at(at)
    }

    /// Where the node of `key` is after closing the open entry, or `None` when it is absent
    /// or has expired (then deleted, unless this server keeps expired keys).
    fn find_live(&mut self, key: &[u8], now_ms: i64) -> Option<Location> {
        self.close();
        let (at, node) = self.table.find_mut(key)?;
        if is_expired(node, now_ms) {
            if !replica_view::keep_expired_keys() {
                self.expire_now(key);
            }
            return None;
        }
        Some(at)
    }

    /// Looks `key` up like [`Db::get`] to read it as a string where it is stored: nothing is
    /// copied out of the node and written back (GET's path). `touch` updates the access
    /// stamp. `Some(None)`: the key holds another type. No WATCH touch is recorded: the
    /// value cannot change through this borrow.
    pub fn get_string(
        &mut self,
        key: &[u8],
        now_ms: i64,
        touch: impl FnOnce(&mut u32),
    ) -> Option<Option<StrRef<'_>>> {
        let at = self.find_live(key, now_ms)?;
        let node = self.table.node_at_mut(at)?;
        let mut access = node.access();
        touch(&mut access);
        node.set_access(access);
        Some(match node.payload() {
            PayloadRef::Int(n) => Some(StrRef::Int(n)),
            PayloadRef::Inline { bytes, .. } => Some(StrRef::Bytes(bytes)),
            PayloadRef::Boxed(Entry {
                value: Value::Str(s),
                ..
            }) => Some(StrRef::of(s)),
            PayloadRef::Boxed(_) | PayloadRef::Packed { .. } => None,
        })
    }

    /// Deletes `key` if it has expired, without opening it (what Valkey's write lookup does
    /// before a command overwrites a key); returns whether it did.
    pub fn expire_if_due(&mut self, key: &[u8], now_ms: i64) -> bool {
        let due = self
            .table
            .find(key)
            .is_some_and(|node| self.view_expire(node).is_some_and(|at| at <= now_ms));
        if due && replica_view::keep_expired_keys() {
            // A replica waits for the primary's DEL; the write that follows replaces the key
            // (a writable replica) or, from the primary, sees it alive.
            return false;
        }
        if due {
            self.expire_now(key);
        }
        due
    }

    /// [`Db::expire_if_due`] then [`Db::live_expire`] in one lookup: what a command that
    /// overwrites a key needs to know of it (SET keeps or counts its TTL).
    pub fn write_lookup_expire(&mut self, key: &[u8], now_ms: i64) -> Option<i64> {
        let at = self.view_expire(self.table.find(key)?);
        match at {
            Some(at) if at <= now_ms => {
                if !replica_view::keep_expired_keys() {
                    self.expire_now(key);
                    None
                } else {
                    replica_view::expired_key_still_alive().then_some(at)
                }
            }
            Some(at) => Some(at),
            None => Some(NO_EXPIRE),
        }
    }

    /// Looks `key` up without expiring it (the entry may be logically expired).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        self.peek_mut(key).map(|e| &*e)
    }

    /// Like `peek`, for changing the entry in place (expiry changes must go through
    /// [`Db::set_expire`] or be followed by no other call: `close` recounts keys with a TTL).
    fn peek_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.close();
        let (at, _) = self.table.find_mut(key)?;
        self.open_at(at)
    }

    /// The expiry of `key` (`NO_EXPIRE` when it has none; `None` when it is absent), expired
    /// or not.
    pub fn expire_of(&mut self, key: &[u8]) -> Option<i64> {
        self.close();
        self.table.find(key).map(|node| node.expire_at())
    }

    /// Deletes `key` as expired when its time has come (`now_ms`), whatever the replica
    /// rules say: for a key a writable replica's own client gave its TTL, nobody else will.
    /// `None` when the key is absent or has no TTL; else whether it was deleted.
    pub fn expire_replica_own_key(&mut self, key: &[u8], now_ms: i64) -> Option<bool> {
        let at = self.expire_of(key).filter(|&at| at != NO_EXPIRE)?;
        let due = at <= now_ms;
        if due {
            self.expire_now(key);
        }
        Some(due)
    }

    /// Whether `key` exists and is not expired, without deleting anything.
    pub fn contains_live(&self, key: &[u8], now_ms: i64) -> bool {
        self.table.find(key).is_some_and(|node| {
            self.view_expire(node)
                .is_none_or(|at| at > now_ms || replica_view::expired_key_still_alive())
        })
    }

    /// The expiry of `key` (`NO_EXPIRE` for none) if it exists and has not expired, read from
    /// the node without opening it.
    pub fn live_expire(&self, key: &[u8], now_ms: i64) -> Option<i64> {
        let node = self.table.find(key)?;
        match self.view_expire(node) {
            Some(at) if at <= now_ms && !replica_view::expired_key_still_alive() => None,
            Some(at) => Some(at),
            None => Some(NO_EXPIRE),
        }
    }

    /// Stores `entry` under `key` like [`Db::insert`], but drops the previous entry without
    /// decoding it (the common case of SET and MSET, which do not need it). Returns whether a
    /// previous entry existed.
    pub fn set(&mut self, key: &[u8], entry: Entry) -> bool {
        events::touch(self.index, key, true);
        let replaced = self.put(key, entry, |node| {
            let had_expire = node.has_expire();
            let mut was_stream = false;
            // Only a boxed value has anything to free (or volatile items to uncount); an
            // inline one is simply overwritten.
            let had_items = node.boxed_mut().is_some_and(|boxed| {
                let old = std::mem::replace(boxed, placeholder()).value;
                was_stream = matches!(old, Value::Stream(_));
                old.has_volatile_items()
            });
            (was_stream, had_expire, had_items)
        });
        if replaced == Some(true) {
            self.note_stream_removed(key);
        }
        replaced.is_some()
    }

    /// Stores `entry` under `key`, replacing any previous entry; returns the previous entry.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        events::touch(self.index, key, true);
        let old = self.put(key, entry, |node| {
            let old = take_entry(node);
            let (had_expire, had_items) = (old.has_expire(), old.value.has_volatile_items());
            (old, had_expire, had_items)
        });
        if let Some(Entry {
            value: Value::Stream(_),
            ..
        }) = &old
        {
            self.note_stream_removed(key);
        }
        old
    }

    /// Records that a stream left `key` (see [`KeyEvent::StreamRemoved`]).
    fn note_stream_removed(&self, key: &[u8]) {
        events::record(KeyEvent::StreamRemoved {
            db: self.index,
            key: key.into(),
        });
    }

    /// Stores `entry` under `key`. For an existing key, `take_old` empties the old node and
    /// reports (what the caller gets back, whether it had a TTL, whether it had items with a
    /// TTL) so the counters stay right; returns `None` for a new key.
    fn put<R>(
        &mut self,
        key: &[u8],
        entry: Entry,
        take_old: impl FnOnce(&mut Node) -> (R, bool, bool),
    ) -> Option<R> {
        self.close();
        if entry.has_expire() {
            self.volatile += 1;
        }
        if entry.value.has_volatile_items() {
            self.volatile_items += 1;
        }
        let at = match self.table.locate(key) {
            Ok(at) => at,
            Err(vacancy) => {
                events::notify(events::class::NEW, "new", self.index, key);
                let spare = &mut self.spare;
                let table = &mut self.table;
                encode(entry, spare, |access, expire_at, payload| {
                    table.insert_new(vacancy, key, access, expire_at, payload);
                });
                return None;
            }
        };
        let Some(node) = self.table.node_at_mut(at) else {
            unreachable!("a located node is in its place");
        };
        let (old, had_expire, had_items) = take_old(node);
        if had_expire {
            self.volatile -= 1;
        }
        if had_items {
            self.volatile_items -= 1;
        }
        if let Some(node) = self.table.node_at_mut(at) {
            store(node, entry, &mut self.spare);
        }
        Some(old)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.close();
        let mut node = self.table.remove(key)?;
        events::touch(self.index, key, true);
        let old = take_entry(&mut node);
        if matches!(old.value, Value::Stream(_)) {
            self.note_stream_removed(key);
        }
        if old.has_expire() {
            self.volatile -= 1;
        }
        if old.value.has_volatile_items() {
            self.volatile_items -= 1;
        }
        Some(old)
    }

    /// Deletes `key` without decoding its value; returns whether it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let deleted = self.delete_untouched(key);
        if deleted {
            events::touch(self.index, key, true);
        }
        deleted
    }

    fn delete_untouched(&mut self, key: &[u8]) -> bool {
        self.close();
        let Some(node) = self.table.remove(key) else {
            return false;
        };
        if matches!(node.payload(), PayloadRef::Boxed(entry) if matches!(entry.value, Value::Stream(_)))
        {
            self.note_stream_removed(key);
        }
        if node.has_expire() {
            self.volatile -= 1;
        }
        if node_has_volatile_items(&node) {
            self.volatile_items -= 1;
        }
        true
    }

    /// Sets or clears (`NO_EXPIRE`) the expiry of an existing key. Returns false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: i64) -> bool {
        let Some(entry) = self.peek_mut(key) else {
            return false;
        };
        entry.expire_at = expire_at;
        self.close();
        events::touch(self.index, key, true);
        true
    }

    fn expire_now(&mut self, key: &[u8]) {
        if events::recording() {
            events::record_touch(self.index, key, true, true);
        }
        if self.delete_untouched(key) {
            crate::effects::expired(self.index, key);
            events::notify(events::class::EXPIRED, "expired", self.index, key);
            events::record(KeyEvent::Expired {
                db: self.index,
                key: key.into(),
            });
        }
    }

    /// Writes the open entry, if any, back into its node.
    ///
    /// Every method that reads nodes directly or changes the table calls this first.
    pub fn close(&mut self) {
        // Checked before `take`, which would move the whole (large) slot out for nothing.
        if self.open.is_none() {
            return;
        }
        let Some(open) = self.open.take() else {
            return;
        };
        let Some(addr) = NonNull::new(open.addr as *mut u8) else {
            return;
        };
        let Some(node) = self
            .table
            .node_at_mut(open.at)
            .filter(|node| node.addr() == addr)
        else {
            debug_assert!(false, "open entry's node vanished");
            return;
        };
        let (has_expire, has_items) = match open.entry {
            Some(entry) => {
                let has_expire = entry.has_expire();
                let has_items = entry.value.has_volatile_items();
                store(node, entry, &mut self.spare);
                (has_expire, has_items)
            }
            None => {
                // A boxed value that became a short string or an integer moves inline.
                let Some(boxed) = node.boxed_mut() else {
                    return;
                };
                let has_expire = boxed.has_expire();
                let has_items = boxed.value.has_volatile_items();
                if inlinable(&boxed.value) {
                    let entry = std::mem::replace(boxed, placeholder());
                    store(node, entry, &mut self.spare);
                }
                (has_expire, has_items)
            }
        };
        match (open.had_volatile_items, has_items) {
            (false, true) => self.volatile_items += 1,
            (true, false) => self.volatile_items -= 1,
            _ => {}
        }
        match (open.had_expire, has_expire) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Opens the node at `at`, which must exist, and returns its entry.
    fn open_at(&mut self, at: Location) -> Option<&mut Entry> {
        let node = self.table.node_at_mut(at)?;
        let addr = node.addr();
        let had_expire = node.has_expire();
        let had_volatile_items = node_has_volatile_items(node);
        let entry = if node.kind() == Kind::Boxed {
            None
        } else {
            Some(decode(node, std::mem::take(&mut self.spare)))
        };
        let open = self.open.insert(Open {
            at,
            addr: addr.as_ptr() as usize,
            entry,
            had_expire,
            had_volatile_items,
        });
        match &mut open.entry {
            Some(entry) => Some(entry),
            None => node.boxed_mut(),
        }
    }

    /// The open slot if `node` is the open node.
    fn open_entry_of(&self, node: &Node) -> Option<&Entry> {
        match &self.open {
            Some(open) if open.addr == node.addr().as_ptr() as usize => open.entry.as_ref(),
            _ => None,
        }
    }

    /// The node's expiry as handlers last left it, or `None`.
    fn view_expire(&self, node: &Node) -> Option<i64> {
        let at = match self.open_entry_of(node) {
            Some(entry) => entry.expire_at,
            None => node.expire_at(),
        };
        (at != NO_EXPIRE).then_some(at)
    }

    /// The entry of `node` for reading: the open slot, the box, or a copy in `scratch`.
    fn view<'a>(&'a self, node: &'a Node, scratch: &'a mut Entry) -> &'a Entry {
        if let Some(entry) = self.open_entry_of(node) {
            return entry;
        }
        if let PayloadRef::Boxed(entry) = node.payload() {
            return entry;
        }
        let buf = take_buffer(std::mem::replace(&mut scratch.value, placeholder().value));
        *scratch = decode(node, buf);
        scratch
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
        self.close();
        let mut sampled = 0;
        let mut doomed: Vec<Box<[u8]>> = Vec::new();
        let mut cursor = self.expire_cursor;
        let mut buckets = 0;
        while sampled < samples && buckets < samples * 20 {
            cursor = self.table.scan_step(cursor, |node| {
                if node.has_expire() {
                    sampled += 1;
                    if is_expired(node, now_ms) {
                        doomed.push(node.key().into());
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

    /// One step of active expiry of items (hash fields): walks buckets from where the last
    /// step stopped until it has looked at `samples` keys with volatile items (or
    /// `samples * 20` buckets), reclaiming up to `max_items` expired items in total, and
    /// deletes the keys left empty. Returns (keys looked at, items reclaimed).
    ///
    /// Within a value, items are indexed by expiry, so reclaiming costs no walk over it.
    pub fn active_expire_items_step(
        &mut self,
        now_ms: i64,
        samples: usize,
        max_items: usize,
    ) -> (usize, usize) {
        self.close();
        if self.volatile_items == 0 {
            return (0, 0);
        }
        let mut sampled = 0;
        let mut due: Vec<Box<[u8]>> = Vec::new();
        let mut cursor = self.items_cursor;
        let mut buckets = 0;
        while sampled < samples && buckets < samples * 20 {
            cursor = self.table.scan_step(cursor, |node| {
                if let PayloadRef::Boxed(entry) = node.payload()
                    && let Some(at) = entry.value.next_item_expiry()
                {
                    sampled += 1;
                    if at <= now_ms {
                        due.push(node.key().into());
                    }
                }
            });
            buckets += 1;
            if cursor == 0 {
                break;
            }
        }
        let mut reclaimed = 0;
        for key in due {
            if reclaimed >= max_items {
                // Stop here; the next step starts again from this key's bucket.
                return (sampled, reclaimed);
            }
            let Some(entry) = self.peek_mut(&key) else {
                continue;
            };
            let propagating = effects::armed();
            let mut names = Vec::new();
            let n = entry.value.expire_items_named(
                now_ms,
                max_items - reclaimed,
                propagating.then_some(&mut names),
            );
            let emptied = entry.value.is_empty_collection();
            self.close();
            if propagating && n > 0 {
                // Valkey propagates `HDEL key field...`, with the key's deletion in the same
                // MULTI when it empties; each key is one unit.
                let mut hdel = vec![Bytes::from_static(b"HDEL"), Bytes::copy_from_slice(&key)];
                hdel.append(&mut names);
                effects::push(self.index, hdel);
                if emptied {
                    effects::expired(self.index, &key);
                }
                effects::on_release();
            }
            reclaimed += n;
            events::record(KeyEvent::ItemsExpired {
                db: self.index,
                key: key.clone(),
                count: n,
            });
            if n > 0 {
                // Valkey files the active expiry's field events under `x`, not `h`.
                events::notify(events::class::EXPIRED, "hexpired", self.index, &key);
            }
            if emptied {
                self.delete(&key);
                events::notify(events::class::GENERIC, "del", self.index, &key);
            }
        }
        self.items_cursor = cursor;
        (sampled, reclaimed)
    }

    /// One SCAN step over this database's part of the shard.
    pub fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&[u8], &Entry)) -> u64 {
        let mut scratch = placeholder();
        self.table.scan_step(cursor, |node| {
            visit(node.key(), self.view(node, &mut scratch))
        })
    }

    /// Makes room for `total` keys (a snapshot being loaded says how many are coming).
    pub fn reserve(&mut self, total: usize) {
        self.close();
        self.table.reserve(total);
    }

    pub fn for_each(&self, mut visit: impl FnMut(&[u8], &Entry)) {
        let mut scratch = placeholder();
        self.table
            .for_each(|node| visit(node.key(), self.view(node, &mut scratch)))
    }

    /// Empties the database, returning the old contents so they can be freed elsewhere.
    pub fn take(&mut self) -> Db {
        self.close();
        Db {
            table: self.table.take_all(),
            volatile: std::mem::take(&mut self.volatile),
            expire_cursor: std::mem::take(&mut self.expire_cursor),
            volatile_items: std::mem::take(&mut self.volatile_items),
            items_cursor: std::mem::take(&mut self.items_cursor),
            index: self.index,
            open: None,
            spare: Vec::new(),
        }
    }

    pub fn random_entry(&mut self, rng: &mut impl rand::Rng) -> Option<(&[u8], &Entry)> {
        self.close();
        let (at, _) = self.table.random_node(rng)?;
        self.open_at(at)?;
        let this = &*self;
        let node = this.table.node_at(at)?;
        let entry = match this.open_entry_of(node) {
            Some(entry) => entry,
            None => match node.payload() {
                PayloadRef::Boxed(entry) => entry,
                _ => return None,
            },
        };
        Some((node.key(), entry))
    }

    /// Keeps only the entries for which `keep` returns true; `keep` may change the entries
    /// it keeps (expiry changes are recounted).
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut Entry) -> bool) {
        self.close();
        let mut volatile = 0;
        let mut volatile_items = 0;
        let spare = &mut self.spare;
        self.table.retain(|mut node| {
            let mut entry = take_entry(&mut node);
            let kept = keep(node.key(), &mut entry);
            if !kept {
                return None;
            }
            volatile += entry.has_expire() as usize;
            volatile_items += entry.value.has_volatile_items() as usize;
            store(&mut node, entry, spare);
            Some(node)
        });
        self.volatile = volatile;
        self.volatile_items = volatile_items;
    }

    /// Samples up to `count` keys for eviction from consecutive buckets after a random one,
    /// only keys with a TTL if `volatile_only`, and visits each with its expiry and access
    /// stamp. Volatile keys may be sparse, so for them the walk goes on until `count` are
    /// found or the whole table was seen.
    pub fn sample_keys(
        &mut self,
        rng: &mut impl rand::Rng,
        count: usize,
        volatile_only: bool,
        mut visit: impl FnMut(&[u8], i64, u32),
    ) {
        if count == 0 || (volatile_only && self.volatile == 0) {
            return;
        }
        self.close();
        let max_buckets = if volatile_only {
            usize::MAX
        } else {
            count.saturating_mul(10)
        };
        let mut found = 0;
        self.table.sample(rng, max_buckets, |node| {
            let expire_at = node.expire_at();
            if volatile_only && expire_at == NO_EXPIRE {
                return true;
            }
            visit(node.key(), expire_at, node.access());
            found += 1;
            found < count
        });
    }

    /// A random key (with a TTL if `volatile_only`), for the random eviction policies.
    pub fn random_key(&mut self, rng: &mut impl rand::Rng, volatile_only: bool) -> Option<Vec<u8>> {
        if !volatile_only {
            self.close();
            return self
                .table
                .random_node(rng)
                .map(|(_, node)| node.key().to_vec());
        }
        let mut key = None;
        self.sample_keys(rng, 1, true, |k, _, _| key = Some(k.to_vec()));
        key
    }
}

/// Whether the node's value has items with a TTL (only boxed values can).
fn node_has_volatile_items(node: &Node) -> bool {
    matches!(node.payload(), PayloadRef::Boxed(entry) if entry.value.has_volatile_items())
}

fn is_expired(node: &Node, now_ms: i64) -> bool {
    let at = node.expire_at();
    at != NO_EXPIRE && at <= now_ms && !replica_view::expired_key_still_alive()
}

/// Whether a value is stored inline (not boxed) in its node.
fn inlinable(value: &Value) -> bool {
    match value {
        Value::Str(StrValue::Int(_)) => true,
        Value::Str(StrValue::Embstr(b) | StrValue::Raw(b)) => b.len() <= INLINE_MAX,
        value => packed(value).is_some(),
    }
}

/// The node form of a collection small enough to live inline in its node.
fn packed(value: &Value) -> Option<(Kind, &[u8])> {
    let (kind, bytes) = match value {
        Value::Set(SetValue::Intset(set)) => {
            let kind = match set.width() {
                Width::W16 => Kind::Intset16,
                Width::W32 => Kind::Intset32,
                Width::W64 => Kind::Intset64,
            };
            (kind, set.as_bytes())
        }
        Value::Hash(HashValue::Listpack(lp)) => (Kind::HashPack, lp.as_bytes()),
        Value::ZSet(ZSet::Listpack(pack)) => (Kind::ZsetPack, pack.as_bytes()),
        _ => return None,
    };
    (bytes.len() <= PACKED_MAX).then_some((kind, bytes))
}

/// A value's byte buffer, emptied, to decode the next value into without allocating.
fn take_buffer(value: Value) -> Vec<u8> {
    let mut buf = match value {
        Value::Str(StrValue::Embstr(b) | StrValue::Raw(b)) => b,
        Value::Set(SetValue::Intset(set)) => set.into_bytes(),
        Value::Hash(HashValue::Listpack(lp)) => lp.into_bytes(),
        Value::ZSet(ZSet::Listpack(pack)) => pack.into_bytes(),
        _ => Vec::new(),
    };
    buf.clear();
    buf
}

/// The collection a packed node holds, decoded into `buf`.
fn unpack(kind: Kind, bytes: &[u8], mut buf: Vec<u8>) -> Value {
    buf.clear();
    if kind != Kind::ZsetPack {
        buf.extend_from_slice(bytes);
    }
    let width = match kind {
        Kind::Intset16 => Width::W16,
        Kind::Intset32 => Width::W32,
        Kind::Intset64 => Width::W64,
        Kind::HashPack => {
            let lp = Listpack::from_bytes(buf);
            debug_assert!(lp.is_some(), "malformed hash listpack in a node");
            return Value::Hash(HashValue::Listpack(lp.unwrap_or_default()));
        }
        _ => {
            let pack = ZPack::from_front_coded(bytes, buf);
            debug_assert!(pack.is_some(), "malformed sorted set listpack in a node");
            return Value::ZSet(ZSet::Listpack(pack.unwrap_or_default()));
        }
    };
    Value::Set(SetValue::Intset(IntSet::from_bytes(width, buf)))
}

/// The entry of a non-boxed node, decoded using `buf` for a string's bytes.
fn decode(node: &Node, mut buf: Vec<u8>) -> Entry {
    let value = match node.payload() {
        PayloadRef::Int(n) => Value::Str(StrValue::Int(n)),
        PayloadRef::Inline { bytes, raw } => {
            buf.clear();
            buf.extend_from_slice(bytes);
            Value::Str(if raw {
                StrValue::Raw(buf)
            } else {
                StrValue::Embstr(buf)
            })
        }
        PayloadRef::Packed { kind, bytes } => unpack(kind, bytes, buf),
        PayloadRef::Boxed(entry) => return entry.clone(),
    };
    Entry {
        value,
        expire_at: node.expire_at(),
        access: node.access(),
    }
}

/// The node's entry, moved out of its box when boxed (the node keeps a placeholder).
fn take_entry(node: &mut Node) -> Entry {
    match node.boxed_mut() {
        Some(boxed) => std::mem::replace(boxed, placeholder()),
        None => decode(node, Vec::new()),
    }
}

/// Calls `write` with the node form of `entry`. A short string's buffer is kept in `spare`
/// afterwards, for the next decode.
fn encode<R>(
    entry: Entry,
    spare: &mut Vec<u8>,
    write: impl FnOnce(u32, i64, Payload<'_>) -> R,
) -> R {
    let Entry {
        value,
        expire_at,
        access,
    } = entry;
    match value {
        Value::Str(StrValue::Int(n)) => write(access, expire_at, Payload::Int(n)),
        Value::Str(StrValue::Embstr(bytes)) if bytes.len() <= INLINE_MAX => {
            let r = write(
                access,
                expire_at,
                Payload::Inline {
                    bytes: &bytes,
                    raw: false,
                },
            );
            recycle(spare, bytes);
            r
        }
        Value::Str(StrValue::Raw(bytes)) if bytes.len() <= INLINE_MAX => {
            let r = write(
                access,
                expire_at,
                Payload::Inline {
                    bytes: &bytes,
                    raw: true,
                },
            );
            recycle(spare, bytes);
            r
        }
        value => {
            if let Value::ZSet(ZSet::Listpack(pack)) = &value
                && packed(&value).is_some()
            {
                // Sorted sets are stored front-coded (see ZPack::write_front_coded).
                // Sized as the plain pack, which front coding rarely exceeds.
                let mut coded = Vec::with_capacity(pack.as_bytes().len() + 8);
                pack.write_front_coded(&mut coded);
                if coded.len() <= PACKED_MAX {
                    let kind = Kind::ZsetPack;
                    let r = write(
                        access,
                        expire_at,
                        Payload::Packed {
                            kind,
                            bytes: &coded,
                        },
                    );
                    recycle(spare, take_buffer(value));
                    return r;
                }
            } else if let Some((kind, bytes)) = packed(&value) {
                let r = write(access, expire_at, Payload::Packed { kind, bytes });
                recycle(spare, take_buffer(value));
                return r;
            }
            write(
                access,
                expire_at,
                Payload::Boxed(Box::new(Entry {
                    value,
                    expire_at,
                    access,
                })),
            )
        }
    }
}

/// Keeps the larger of two small buffers for reuse.
fn recycle(spare: &mut Vec<u8>, buf: Vec<u8>) {
    if buf.capacity() > spare.capacity() && buf.capacity() <= PACKED_MAX {
        *spare = buf;
    }
}

/// Writes `entry` into the node held by `link` (which must hold one), in place when the size
/// allows, else into a new node that takes over the key and the chain.
fn store(node: &mut Node, entry: Entry, spare: &mut Vec<u8>) {
    if !inlinable(&entry.value)
        && let Some(boxed) = node.boxed_mut()
    {
        *boxed = entry;
        return;
    }
    let replacement = encode(entry, spare, |access, expire_at, payload| {
        match node.rewrite_in_place(access, expire_at, payload) {
            Ok(()) => None,
            Err((access, expire_at, payload)) => {
                Some(Node::new(node.key(), access, expire_at, payload))
            }
        }
    });
    if let Some(fresh) = replacement {
        *node = fresh;
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

#[cfg(test)]
mod model_tests {
    //! The database against a `HashMap` model, through every operation that opens, writes
    //! back, re-encodes or walks entries, with values that move between inline and boxed.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, Value, i64),
        Set(u8, Value, i64),
        LiveExpire(u8),
        GetAppend(u8, Vec<u8>),
        GetSetInt(u8, i64),
        Grow(u8, u16),
        Touch(u8, u32),
        Remove(u8),
        Delete(u8),
        SetExpire(u8, i64),
        Peek(u8),
        GetString(u8, u32),
        WriteLookup(u8),
        RetainEven,
        Random,
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(|n| Value::Str(StrValue::Int(n))),
            proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(|b| Value::Str(StrValue::Embstr(b))),
            proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(|b| Value::Str(StrValue::Raw(b))),
            // Collections on both sides of PACKED_MAX (inline in the node, or boxed).
            proptest::collection::vec(any::<i64>(), 0..700).prop_map(|members| {
                let mut set = IntSet::new();
                members.into_iter().for_each(|n| {
                    set.insert(n % 100_000);
                });
                Value::Set(SetValue::Intset(set))
            }),
            proptest::collection::vec((0u16..400, 0usize..60), 0..150).prop_map(|pairs| {
                let mut lp = Listpack::default();
                for (field, len) in pairs {
                    lp.set(format!("f{field}").as_bytes(), &vec![b'v'; len]);
                }
                Value::Hash(HashValue::Listpack(lp))
            }),
            proptest::collection::vec((0u16..400, -5i32..5), 0..300).prop_map(|pairs| {
                let mut pack = ZPack::new();
                for (member, score) in pairs {
                    let member = format!("member:{member}");
                    if pack.score(member.as_bytes()).is_none() {
                        pack.insert_new(member.as_bytes(), f64::from(score) / 4.0);
                    }
                }
                Value::ZSet(ZSet::Listpack(pack))
            }),
        ]
    }

    /// Adds an element to a collection (growing it across PACKED_MAX), or appends to a string.
    fn grow(value: &mut Value, n: u16) {
        match value {
            Value::Str(s) => s.make_raw().extend_from_slice(&n.to_le_bytes()),
            Value::Set(SetValue::Intset(set)) => {
                set.insert(i64::from(n) * 1_000_000_007);
            }
            Value::Hash(HashValue::Listpack(lp)) => {
                lp.set(format!("grown{n}").as_bytes(), &[b'x'; 50]);
            }
            Value::ZSet(ZSet::Listpack(pack)) => {
                let member = format!("grown:{n}:{}", "y".repeat(40));
                if pack.score(member.as_bytes()).is_none() {
                    pack.insert_new(member.as_bytes(), f64::from(n));
                }
            }
            other => unreachable!("not generated: {other:?}"),
        }
    }

    fn expire() -> impl Strategy<Value = i64> {
        prop_oneof![Just(NO_EXPIRE), 1_000i64..2_000]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), value(), expire()).prop_map(|(k, v, e)| Op::Insert(k, v, e)),
            (any::<u8>(), value(), expire()).prop_map(|(k, v, e)| Op::Set(k, v, e)),
            any::<u8>().prop_map(Op::LiveExpire),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..100))
                .prop_map(|(k, b)| Op::GetAppend(k, b)),
            (any::<u8>(), any::<i64>()).prop_map(|(k, n)| Op::GetSetInt(k, n)),
            (any::<u8>(), any::<u16>()).prop_map(|(k, n)| Op::Grow(k, n)),
            (any::<u8>(), any::<u32>()).prop_map(|(k, a)| Op::Touch(k, a)),
            any::<u8>().prop_map(Op::Remove),
            any::<u8>().prop_map(Op::Delete),
            (any::<u8>(), expire()).prop_map(|(k, e)| Op::SetExpire(k, e)),
            any::<u8>().prop_map(Op::Peek),
            (any::<u8>(), any::<u32>()).prop_map(|(k, a)| Op::GetString(k, a)),
            any::<u8>().prop_map(Op::WriteLookup),
            Just(Op::RetainEven),
            Just(Op::Random),
        ]
    }

    fn key(k: u8) -> Vec<u8> {
        // Some keys long enough to use the long-key layout.
        if k.is_multiple_of(17) {
            vec![k; 300]
        } else {
            format!("key:{k}").into_bytes()
        }
    }

    /// A string's length or a collection's element count.
    fn size_of(v: &Value) -> usize {
        match v {
            Value::Str(s) => s.len(),
            Value::Set(s) => s.len(),
            Value::Hash(h) => h.len(),
            Value::ZSet(z) => z.len(),
            other => unreachable!("not generated: {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..120)) {
            let mut db = Db::default();
            let mut model: HashMap<Vec<u8>, Entry> = HashMap::new();
            let mut rng = rand::rng();
            for op in ops {
                match op {
                    Op::Insert(k, v, e) => {
                        let entry = Entry { value: v, expire_at: e, access: 3 };
                        prop_assert_eq!(db.insert(&key(k), entry.clone()), model.insert(key(k), entry));
                    }
                    Op::Set(k, v, e) => {
                        let entry = Entry { value: v, expire_at: e, access: 3 };
                        prop_assert_eq!(db.set(&key(k), entry.clone()), model.insert(key(k), entry).is_some());
                    }
                    Op::LiveExpire(k) => {
                        let want = model
                            .get(&key(k))
                            .filter(|m| m.expire_at == NO_EXPIRE || m.expire_at > 1_500)
                            .map(|m| m.expire_at);
                        prop_assert_eq!(db.live_expire(&key(k), 1_500), want);
                    }
                    Op::GetAppend(k, b) => {
                        // now_ms 0: nothing expires through get here.
                        if let Some(e) = db.get(&key(k), 0) {
                            if let Value::Str(s) = &mut e.value {
                                s.make_raw().extend_from_slice(&b);
                                let m = model.get_mut(&key(k)).expect("model has key");
                                let Value::Str(ms) = &mut m.value else { unreachable!("same value") };
                                ms.make_raw().extend_from_slice(&b);
                            }
                        } else {
                            prop_assert!(!model.contains_key(&key(k)));
                        }
                    }
                    Op::GetSetInt(k, n) => {
                        if let Some(e) = db.get(&key(k), 0) {
                            e.value = Value::Str(StrValue::Int(n));
                            model.get_mut(&key(k)).expect("model has key").value = Value::Str(StrValue::Int(n));
                        }
                    }
                    Op::Grow(k, n) => {
                        if let Some(e) = db.get(&key(k), 0) {
                            grow(&mut e.value, n);
                            grow(&mut model.get_mut(&key(k)).expect("model has key").value, n);
                        }
                    }
                    Op::Touch(k, a) => {
                        if let Some(e) = db.get(&key(k), 0) {
                            e.access = a;
                            model.get_mut(&key(k)).expect("model has key").access = a;
                        }
                    }
                    Op::Remove(k) => prop_assert_eq!(db.remove(&key(k)), model.remove(&key(k))),
                    Op::Delete(k) => prop_assert_eq!(db.delete(&key(k)), model.remove(&key(k)).is_some()),
                    Op::SetExpire(k, e) => {
                        let present = model.get_mut(&key(k)).map(|m| m.expire_at = e).is_some();
                        prop_assert_eq!(db.set_expire(&key(k), e), present);
                    }
                    Op::Peek(k) => prop_assert_eq!(db.peek(&key(k)), model.get(&key(k))),
                    Op::GetString(k, a) => {
                        // now_ms 0: nothing expires through the read here.
                        let got = db.get_string(&key(k), 0, |access| *access = a);
                        match model.get_mut(&key(k)) {
                            None => prop_assert!(got.is_none()),
                            Some(m) => {
                                m.access = a;
                                let want = match &m.value {
                                    Value::Str(s) => Some(StrRef::of(s)),
                                    _ => None,
                                };
                                prop_assert_eq!(got, Some(want));
                            }
                        }
                    }
                    Op::WriteLookup(k) => {
                        // At 1_500, keys expiring at 1_000..1_500 are due and go.
                        let live = model
                            .get(&key(k))
                            .filter(|m| m.expire_at == NO_EXPIRE || m.expire_at > 1_500)
                            .map(|m| m.expire_at);
                        if live.is_none() {
                            model.remove(&key(k));
                        }
                        prop_assert_eq!(db.write_lookup_expire(&key(k), 1_500), live);
                    }
                    Op::RetainEven => {
                        db.retain(|_, e| size_of(&e.value).is_multiple_of(2));
                        model.retain(|_, e| size_of(&e.value).is_multiple_of(2));
                    }
                    Op::Random => {
                        let picked = db.random_entry(&mut rng).map(|(k, e)| (k.to_vec(), e.clone()));
                        match picked {
                            Some((k, e)) => prop_assert_eq!(model.get(&k), Some(&e)),
                            None => prop_assert!(model.is_empty()),
                        }
                    }
                }
                prop_assert_eq!(db.len(), model.len());
                prop_assert_eq!(db.volatile_len(), model.values().filter(|e| e.has_expire()).count());
            }
            // Every walk sees exactly the model, whether or not an entry is open.
            let _ = model.keys().next().cloned().map(|k| db.get(&k, 0).is_some());
            let mut walked = HashMap::new();
            db.for_each(|k, e| { walked.insert(k.to_vec(), e.clone()); });
            prop_assert_eq!(&walked, &model);
            let mut scanned = HashMap::new();
            let mut cursor = 0;
            loop {
                cursor = db.scan_step(cursor, |k, e| { scanned.insert(k.to_vec(), e.clone()); });
                if cursor == 0 { break; }
            }
            prop_assert_eq!(&scanned, &model);
            let volatile: Vec<_> = model.iter().filter(|(_, e)| e.has_expire()).map(|(k, _)| k.clone()).collect();
            for _ in 0..4 {
                let mut sampled = Vec::new();
                db.sample_keys(&mut rng, 5, true, |k, at, _| sampled.push((k.to_vec(), at)));
                for (k, at) in sampled {
                    prop_assert!(volatile.contains(&k));
                    prop_assert_eq!(model[&k].expire_at, at);
                }
            }
            // Active expiry at a time past every TTL removes exactly the volatile keys.
            for _ in 0..10_000 {
                if db.volatile_len() == 0 { break; }
                db.active_expire_step(5_000, 20);
            }
            let _ = events::take();
            prop_assert_eq!(db.len(), model.len() - volatile.len());
        }
    }
}
