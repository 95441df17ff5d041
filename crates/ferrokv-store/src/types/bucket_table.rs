//! A hash table of entries in cache-line buckets, resized by incremental rehashing, after
//! Valkey 8.1's `hashtable`: the keyspace (`table.rs`, where an entry is a key's node), and
//! the large encoding of sets (`set/member_table.rs`, where an entry is a member) and of
//! hashes (`hash/table.rs`, where it is a field with its value and expiry). An entry is one
//! allocation behind a thin pointer ([`SlotItem`]); [`EntryKey`] says what it is and where
//! its key is.
//!
//! # Layout
//!
//! A power-of-two array of 64-byte buckets (see `bucket.rs`), seven slots each. An entry's
//! home is bucket `hash & mask`; its slot's one-byte tag is bits 40..48 of the hash, which
//! the index never uses (nor the keyspace's shard number, the top bits). A lookup reads the
//! bucket's line, compares the seven tags at once and reads only entries whose tag matches:
//! one cache miss for an absent key (a false tag match costs one more, 1 time in 256 per
//! entry), two for a present one. When a bucket is full
//! its last slot links a child bucket, so every entry stays in its home chain. Each entry is
//! one allocation behind an 8-byte pointer: a keyspace node, or `[LEB128 length][bytes]`.
//!
//! The table doubles at 5.5 entries per bucket on average (79% of the slots, when about a
//! fifth of the chains have a child) and halves below 7/8 of an entry per bucket (1/8 of the
//! slots). Buckets cost about 14 bytes per entry at the grow threshold and 23 once a grow is
//! done.
//!
//! # Incremental rehash
//!
//! A resize allocates the new array, which becomes `main` and takes every new entry; the
//! old one becomes the draining array, and each change (insert, replace, remove, pop) moves
//! its next buckets into `main`: 2 when growing (each entry is hashed again), 4 when
//! shrinking (the new index is the old one's low bits). That finishes before the new size
//! can need another resize: after a grow from B buckets at least 5.5·B inserts or 3.75·B
//! removes come before the next one, and the move takes B/2 changes; after a shrink from B
//! (due at 7/8 entry per bucket), at least 0.43·B removes or 1.8·B inserts, for B/4 changes.
//! A resize due while a rehash runs waits for it (that happens only when a table made by
//! `with_capacity` for many more entries than it got shrinks, half by half). So no change
//! moves more than 4 buckets. Until its old bucket is moved, an entry may be in either
//! array, and lookups search both.
//!
//! # SCAN
//!
//! The cursor walks bucket indexes in reverse-binary order (add one to the bit-reversed
//! cursor). Visiting an index at one size covers exactly the indexes it splits into at a
//! larger size, and those come next to each other in that order, so the indexes visited
//! form a prefix of the order at every size and an entry present throughout is returned even
//! if the table is resized between calls (a shrink may return some entries again). While
//! rehashing, a step visits bucket `cursor & small_mask` of the smaller array and every
//! bucket of the larger one that it splits into: all entries whose hash ends with those
//! bits, whichever array holds them, just as one step of a table of the smaller size would
//! (the idea of Valkey's `dictScan`).
//!
//! # Random entries
//!
//! Random draws (SRANDMEMBER, SPOP, HRANDFIELD) go by rejection over (array, bucket,
//! position in the bucket's chain): a position below the array's bound of its longest chain,
//! each array weighted by its unmoved buckets times that bound. Every entry sits at exactly
//! one such triple and every triple is equally likely, so an accepted draw picks each entry
//! with the same probability, also mid-rehash. The bound only has to be at least the longest
//! chain: it is raised by inserts and never lowered, but every resize makes a new array, so
//! at worst it is the longest chain at 5.5 entries per bucket while the array is down to 7/8
//! before it halves. A draw is accepted with probability entries / (buckets × bound): about
//! 1/5 to 1/4 in a growing table of a million entries, down to about 1/20 in one emptied
//! from full to just above its shrink threshold. In a very sparse table (made by
//! `with_capacity` for many more entries than it got), or after eight times the expected
//! number of rejections, the draw instead walks the buckets to the n-th entry for a uniform
//! n: uniform too, and whether it comes to that does not depend on which entry an accepted
//! draw would have given, so the mix is uniform.

mod bucket;

use std::marker::PhantomData;

use rand::Rng;

use crate::table::hash_key;
use bucket::{Bucket, BucketArray, Position};
pub use bucket::{Entry, SlotItem};

const MIN_BUCKETS: usize = 1;
/// Buckets moved per change while growing, and while shrinking (see the module
/// documentation for why these finish in time).
const GROW_STEP: usize = 2;
const SHRINK_STEP: usize = 4;
/// Rejected draws before walking to an entry instead, at the least.
const MIN_RANDOM_ATTEMPTS: u128 = 64;

/// What a table holds, and where an entry's key is.
pub trait EntryKey {
    type Item: SlotItem;
    fn key(entry: &Self::Item) -> &[u8];
}

/// Entries that are nothing but their key (set members).
pub struct WholeEntry;

impl EntryKey for WholeEntry {
    type Item = Entry;

    #[inline]
    fn key(entry: &Entry) -> &[u8] {
        entry.bytes()
    }
}

/// Whether `entries` in `buckets` is at the grow threshold: 5.5 entries per bucket.
fn at_grow_load(entries: usize, buckets: usize) -> bool {
    entries.saturating_mul(2) >= buckets.saturating_mul(11)
}

/// Whether `entries` in `buckets` is sparse enough to shrink: under 7/8 per bucket.
fn under_shrink_load(entries: usize, buckets: usize) -> bool {
    entries.saturating_mul(8) < buckets.saturating_mul(7)
}

/// The fewest buckets (a power of two) that hold `entries` below the grow threshold.
fn buckets_for(entries: usize) -> usize {
    entries
        .saturating_mul(2)
        .div_ceil(11)
        .max(MIN_BUCKETS)
        .checked_next_power_of_two()
        // Too many to allocate anyway: the allocation reports it.
        .unwrap_or(1 << (usize::BITS - 1))
}

/// The tag: hash bits that neither the bucket index uses (the low ones) nor the keyspace's
/// shard number (the top ones; every key of a shard's table has the same).
fn tag_of(hash: u64) -> u8 {
    (hash >> 40) as u8
}

/// The cursor after `cursor` in reverse-binary order over `mask`'s bits; 0 after the last.
fn next_cursor(cursor: u64, mask: u64) -> u64 {
    // Setting the bits above the mask makes the carry leave the mask's range on the wrap.
    (cursor | !mask)
        .reverse_bits()
        .wrapping_add(1)
        .reverse_bits()
}

/// Which bucket array an entry was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Array {
    Main,
    Draining,
}

/// Where an entry is: valid until the table next changes (a change may move buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    array: Array,
    at: Position,
}

/// Where an absent key's entry goes, from the lookup that found it absent: its hash.
#[derive(Debug)]
pub struct Vacancy {
    hash: u64,
}

/// The entry's position in the chain of `head`, if it is there.
fn find_in_chain<K: EntryKey>(
    head: &Bucket<K::Item>,
    index: usize,
    tag: u8,
    key: &[u8],
) -> Option<Position> {
    let (mut bucket, mut depth) = (head, 0);
    loop {
        for slot in bucket::slots_of(bucket.with_tag(tag)) {
            if bucket.entry(slot).map(K::key) == Some(key) {
                return Some(Position { index, depth, slot });
            }
        }
        bucket = bucket.child()?;
        depth += 1;
    }
}

/// The bucket and slot of the `position`-th entry of the chain of `head`.
fn nth_in_chain<T: SlotItem>(
    head: &Bucket<T>,
    index: usize,
    mut position: usize,
) -> Option<Position> {
    for (depth, bucket) in head.chain().enumerate() {
        let count = bucket.len();
        if position < count {
            let slot = bucket::slots_of(bucket.present()).nth(position)?;
            return Some(Position { index, depth, slot });
        }
        position -= count;
    }
    None
}

fn chain_len<T: SlotItem>(head: &Bucket<T>) -> usize {
    head.chain().map(Bucket::len).sum()
}

/// A hash table of entries keyed by `K`; see the module documentation. 40 bytes, as small as
/// the plain chained set table it replaced, so that a set value does not make every value
/// larger.
pub struct BucketTable<K: EntryKey> {
    /// Where new entries go; the whole table when no rehash is under way.
    main: BucketArray<K::Item>,
    rehash: Option<Box<Rehash<K::Item>>>,
    key: PhantomData<fn() -> K>,
}

/// A rehash under way: the previous array, moved into `main` bucket by bucket.
#[derive(Clone)]
struct Rehash<T: SlotItem> {
    draining: BucketArray<T>,
    /// Buckets of `draining` below this index were moved and are empty.
    moved: usize,
}

impl<K: EntryKey> Default for BucketTable<K> {
    fn default() -> Self {
        BucketTable {
            main: BucketArray::default(),
            rehash: None,
            key: PhantomData,
        }
    }
}

impl<K: EntryKey> Clone for BucketTable<K>
where
    K::Item: Clone,
{
    fn clone(&self) -> Self {
        BucketTable {
            main: self.main.clone(),
            rehash: self.rehash.clone(),
            key: PhantomData,
        }
    }
}

impl<K: EntryKey> std::fmt::Debug for BucketTable<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketTable")
            .field("main", &self.main)
            .field("draining", &self.rehash.as_ref().map(|r| &r.draining))
            .finish()
    }
}

impl<K: EntryKey> BucketTable<K> {
    /// A table that takes `capacity` entries without resizing.
    pub fn with_capacity(capacity: usize) -> Self {
        if capacity == 0 {
            return Self::default();
        }
        BucketTable {
            main: BucketArray::with_buckets(buckets_for(capacity)),
            rehash: None,
            key: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.main.len() + self.rehash.as_ref().map_or(0, |r| r.draining.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated: both bucket arrays, child buckets, entries (as requested from the
    /// allocator, which rounds them up to its size classes). Reads every entry's length.
    pub fn heap_size(&self) -> usize {
        let rehash = self.rehash.as_ref().map_or(0, |r| {
            std::mem::size_of::<Rehash<K::Item>>() + r.draining.heap_size()
        });
        self.main.heap_size() + rehash
    }

    fn array(&self, array: Array) -> Option<&BucketArray<K::Item>> {
        match array {
            Array::Main => Some(&self.main),
            Array::Draining => self.rehash.as_ref().map(|r| &r.draining),
        }
    }

    fn find_hashed(&self, key: &[u8], hash: u64) -> Option<Location> {
        let tag = tag_of(hash);
        if let Some(rehash) = &self.rehash {
            let index = hash as usize & rehash.draining.mask();
            if index >= rehash.moved
                && let Some(at) =
                    find_in_chain::<K>(&rehash.draining.buckets()[index], index, tag, key)
            {
                return Some(Location {
                    array: Array::Draining,
                    at,
                });
            }
        }
        let index = hash as usize & self.main.mask();
        let head = self.main.buckets().get(index)?;
        find_in_chain::<K>(head, index, tag, key).map(|at| Location {
            array: Array::Main,
            at,
        })
    }

    /// Where the entry with `key` is.
    pub fn find(&self, key: &[u8]) -> Option<Location> {
        self.find_hashed(key, hash_key(key))
    }

    /// The entry at `location`.
    pub fn entry(&self, location: Location) -> Option<&K::Item> {
        let array = self.array(location.array)?;
        let head = array.buckets().get(location.at.index)?;
        head.chain().nth(location.at.depth)?.entry(location.at.slot)
    }

    /// The entry at `location`, mutably: what is written through it must keep its key.
    pub fn entry_mut(&mut self, location: Location) -> Option<&mut K::Item> {
        match location.array {
            Array::Main => self.main.entry_mut(location.at),
            Array::Draining => self.rehash.as_mut()?.draining.entry_mut(location.at),
        }
    }

    /// Asks the CPU to start loading the bucket lines a lookup of the key with `hash` reads
    /// first (see [`BucketTable::prefetch_candidates`] for the next step).
    pub fn prefetch_buckets(&self, hash: u64) {
        let prefetch = |head: &Bucket<K::Item>| {
            crate::table::prefetch_addr((head as *const Bucket<K::Item>).cast());
        };
        if let Some(head) = self.main.buckets().get(hash as usize & self.main.mask()) {
            prefetch(head);
        }
        if let Some(head) = self.draining_home(hash) {
            prefetch(head);
        }
    }

    /// Once the key's head bucket lines (or, with `child`, the lines of their children) are
    /// cached: asks the CPU to start loading the first `span` bytes of the entries there
    /// whose tag matches the key with `hash` (the lookup's candidates), and the next buckets
    /// of the chains.
    pub fn prefetch_candidates(&self, hash: u64, child: bool, span: usize) {
        let prefetch = |head: &Bucket<K::Item>| {
            let bucket = if child { head.child() } else { Some(head) };
            if let Some(bucket) = bucket {
                bucket.prefetch_candidates(tag_of(hash), span);
            }
        };
        if let Some(head) = self.main.buckets().get(hash as usize & self.main.mask()) {
            prefetch(head);
        }
        if let Some(head) = self.draining_home(hash) {
            prefetch(head);
        }
    }

    /// Mid-rehash, the key's head bucket in the draining array, unless it was moved.
    #[inline]
    fn draining_home(&self, hash: u64) -> Option<&Bucket<K::Item>> {
        let rehash = self.rehash.as_ref()?;
        let index = hash as usize & rehash.draining.mask();
        if index < rehash.moved {
            return None;
        }
        rehash.draining.buckets().get(index)
    }

    /// Passes every entry to `keep`, which returns the entry to keep (the same key, possibly
    /// a new allocation) or `None` to drop it; shrinks the table when due.
    pub fn retain(&mut self, mut keep: impl FnMut(K::Item) -> Option<K::Item>) {
        // One array to walk: the rehash under way finishes first.
        while self.rehash.is_some() {
            self.move_buckets(usize::MAX);
        }
        let mut kept = Vec::new();
        for index in 0..self.main.bucket_count() {
            self.main.take_chain(index, |tag, entry| {
                if let Some(entry) = keep(entry) {
                    kept.push((tag, entry));
                }
            });
            for (tag, entry) in kept.drain(..) {
                self.main.push(index, tag, entry);
            }
        }
        self.shrink_if_sparse();
    }

    /// Visits the entries of consecutive chains from a random one, until `visit` returns
    /// false or `max_buckets` chains were looked at (eviction sampling, like Valkey's "some
    /// keys"). Mid-rehash the walk goes over the unmoved chains of both arrays as if they
    /// were one array, so every entry can be reached either way.
    pub fn sample(
        &self,
        rng: &mut impl Rng,
        max_buckets: usize,
        mut visit: impl FnMut(&K::Item) -> bool,
    ) {
        if self.is_empty() {
            return;
        }
        let [(_, main, _), (_, draining, first)] = self.arrays();
        let in_main = main.bucket_count();
        let total = in_main + (draining.bucket_count() - first);
        let start = rng.random_range(0..total);
        for step in 0..total.min(max_buckets) {
            let at = (start + step) % total;
            let head = match at.checked_sub(in_main) {
                None => &main.buckets()[at],
                Some(unmoved) => &draining.buckets()[first + unmoved],
            };
            for entry in head.chain().flat_map(Bucket::entries) {
                if !visit(entry) {
                    return;
                }
            }
        }
    }

    /// Makes room for `total` entries at once (a snapshot being loaded says how many are
    /// coming), instead of growing step by step as they arrive.
    pub fn reserve(&mut self, total: usize) {
        let buckets = buckets_for(total);
        if buckets > self.main.bucket_count() {
            self.start_rehash(buckets);
            while self.rehash.is_some() {
                self.move_buckets(usize::MAX);
            }
        }
    }

    /// Bytes of the bucket arrays, without child buckets and entries (reading those would
    /// take time in proportion to the size).
    pub fn array_bytes(&self) -> usize {
        let buckets: usize = self
            .arrays()
            .iter()
            .map(|(_, a, first)| {
                if *first == a.bucket_count() {
                    0
                } else {
                    a.bucket_count()
                }
            })
            .sum();
        buckets * std::mem::size_of::<Bucket<K::Item>>()
    }

    /// The first step of every change: does the change's share of a rehash under way, then
    /// looks `key` up. Either answer is for the change that follows, before any other.
    pub fn locate(&mut self, key: &[u8]) -> Result<Location, Vacancy> {
        self.rehash_step();
        let hash = hash_key(key);
        self.find_hashed(key, hash).ok_or(Vacancy { hash })
    }

    /// Adds `entry`, whose key `locate` just found absent; grows the table when due.
    pub fn insert(&mut self, vacancy: Vacancy, entry: K::Item) {
        let buckets = self.main.bucket_count();
        if buckets == 0 {
            self.main = BucketArray::with_buckets(MIN_BUCKETS);
        } else if self.rehash.is_none() && at_grow_load(self.len(), buckets) {
            self.start_rehash(buckets * 2);
        }
        let index = vacancy.hash as usize & self.main.mask();
        self.main.push(index, tag_of(vacancy.hash), entry);
    }

    /// Puts `entry`, which must have the same key, in place of the entry at `location`;
    /// returns the entry it replaced.
    pub fn replace(&mut self, location: Location, entry: K::Item) -> Option<K::Item> {
        match location.array {
            Array::Main => self.main.replace(location.at, entry),
            Array::Draining => self.rehash.as_mut()?.draining.replace(location.at, entry),
        }
    }

    /// Removes and returns the entry at `location`; shrinks the table when due.
    pub fn remove(&mut self, location: Location) -> Option<K::Item> {
        let entry = match location.array {
            Array::Main => self.main.remove(location.at),
            Array::Draining => {
                let rehash = self.rehash.as_mut()?;
                let entry = rehash.draining.remove(location.at);
                if rehash.draining.len() == 0 {
                    // Nothing left to move.
                    self.rehash = None;
                }
                entry
            }
        };
        self.shrink_if_sparse();
        entry
    }

    fn shrink_if_sparse(&mut self) {
        if self.is_empty() {
            // Both arrays hold nothing, so dropping them frees their allocations and reads
            // nothing.
            *self = Self::default();
            return;
        }
        let buckets = self.main.bucket_count();
        if self.rehash.is_none() && buckets > MIN_BUCKETS && under_shrink_load(self.len(), buckets)
        {
            // By halves, even when far sparser (a table made by `with_capacity` for more
            // entries than it got): then the next resize is never due before this one ends.
            self.start_rehash(buckets / 2);
        }
    }

    /// Makes a new `main` of `buckets` buckets and starts moving the old one into it.
    fn start_rehash(&mut self, buckets: usize) {
        // Never the case (resizes wait for the running rehash), but two draining arrays
        // cannot be tracked: finish the first.
        while self.rehash.is_some() {
            self.move_buckets(usize::MAX);
        }
        let fresh = BucketArray::with_buckets(buckets);
        let draining = std::mem::replace(&mut self.main, fresh);
        if draining.len() > 0 {
            self.rehash = Some(Box::new(Rehash { draining, moved: 0 }));
        }
    }

    /// One change's share of the rehash (`locate` does it; a change that finds its entry
    /// otherwise, as a random pop does, calls it first).
    pub fn rehash_step(&mut self) {
        let Some(rehash) = &self.rehash else {
            return;
        };
        if self.main.bucket_count() > rehash.draining.bucket_count() {
            self.move_buckets(GROW_STEP);
        } else {
            self.move_buckets(SHRINK_STEP);
        }
    }

    /// Moves up to `count` buckets of the draining array into `main`, and drops the draining
    /// array once it is empty.
    fn move_buckets(&mut self, count: usize) {
        let BucketTable { main, rehash, .. } = self;
        let Some(Rehash { draining, moved }) = rehash.as_deref_mut() else {
            return;
        };
        let end = moved.saturating_add(count).min(draining.bucket_count());
        let growing = main.bucket_count() > draining.bucket_count();
        if growing {
            // Each entry is read to hash its key: start loading them all before the first.
            for head in &draining.buckets()[*moved..end] {
                head.chain().for_each(Bucket::prefetch_entries);
            }
        }
        let mask = main.mask();
        for index in *moved..end {
            draining.take_chain(index, |tag, entry| {
                let to = if growing {
                    hash_key(K::key(&entry)) as usize & mask
                } else {
                    // A smaller array's index is the low bits of the larger one's.
                    index & mask
                };
                main.push(to, tag, entry);
            });
        }
        *moved = end;
        if end == draining.bucket_count() || draining.len() == 0 {
            // Empty now, so this frees the array without reading it.
            *rehash = None;
        }
    }

    /// Every entry once, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &K::Item> + '_ {
        let unmoved = self
            .rehash
            .as_ref()
            .map_or(&[][..], |r| &r.draining.buckets()[r.moved..]);
        self.main
            .buckets()
            .iter()
            .chain(unmoved)
            .flat_map(|head| head.chain().flat_map(Bucket::entries))
    }

    /// Visits the entries of the buckets `cursor` points at and returns the next cursor
    /// (0 when the walk is complete).
    pub fn scan_step<'a>(&'a self, cursor: u64, mut visit: impl FnMut(&'a K::Item)) -> u64 {
        if self.main.bucket_count() == 0 {
            return 0;
        }
        let (small, large) = match &self.rehash {
            None => (&self.main, None),
            Some(r) if r.draining.bucket_count() < self.main.bucket_count() => {
                (&r.draining, Some(&self.main))
            }
            Some(r) => (&self.main, Some(&r.draining)),
        };
        let mut visit_chain = |head: &'a Bucket<K::Item>| {
            for entry in head.chain().flat_map(Bucket::entries) {
                visit(entry);
            }
        };
        let small_mask = small.mask() as u64;
        let index = (cursor & small_mask) as usize;
        visit_chain(&small.buckets()[index]);
        if let Some(large) = large {
            // The larger array's buckets whose index ends with `index`'s bits.
            for split in (index..large.bucket_count()).step_by(small.bucket_count()) {
                visit_chain(&large.buckets()[split]);
            }
        }
        next_cursor(cursor, small_mask)
    }

    /// The arrays with the index of their first unmoved bucket. Without a rehash the
    /// second is an empty range (main's buckets from its end).
    fn arrays(&self) -> [(Array, &BucketArray<K::Item>, usize); 2] {
        let (draining, moved) = match &self.rehash {
            Some(r) => (&r.draining, r.moved),
            None => (&self.main, self.main.bucket_count()),
        };
        [
            (Array::Main, &self.main, 0),
            (Array::Draining, draining, moved),
        ]
    }

    /// Where an entry drawn uniformly at random is (see the module documentation).
    pub fn random(&self, rng: &mut impl Rng) -> Option<Location> {
        if self.is_empty() {
            return None;
        }
        // Per array: (array, its buckets, first unmoved bucket, chain positions to draw from).
        let candidates = self.arrays().map(|(array, buckets, first)| {
            let positions =
                (buckets.bucket_count() - first) as u128 * buckets.longest_chain() as u128;
            (array, buckets, first, positions)
        });
        let total: u128 = candidates.iter().map(|c| c.3).sum();
        let walk: usize = candidates.iter().map(|c| c.1.bucket_count() - c.2).sum();
        // Draws needed on average, against the buckets a walk to the n-th entry reads.
        let expected_draws = total.div_ceil(self.len() as u128);
        if expected_draws <= walk as u128 {
            // Eight times the average: the draws all fail with probability about e^-8.
            let attempts = expected_draws.saturating_mul(8).max(MIN_RANDOM_ATTEMPTS);
            for _ in 0..attempts {
                let mut pick = rng.random_range(0..total);
                for &(array, buckets, first, positions) in &candidates {
                    if pick >= positions {
                        pick -= positions;
                        continue;
                    }
                    let longest = buckets.longest_chain() as u128;
                    let index = first + (pick / longest) as usize;
                    let position = (pick % longest) as usize;
                    if let Some(at) = nth_in_chain(&buckets.buckets()[index], index, position) {
                        return Some(Location { array, at });
                    }
                    break;
                }
            }
        }
        self.nth(rng.random_range(0..self.len()))
    }

    /// Where the `n`-th entry in `iter` order is; reads every bucket up to it.
    pub fn nth(&self, mut n: usize) -> Option<Location> {
        for (array, buckets, first) in self.arrays() {
            for (index, head) in buckets.buckets().iter().enumerate().skip(first) {
                let len = chain_len(head);
                if n < len {
                    let at = nth_in_chain(head, index, n)?;
                    return Some(Location { array, at });
                }
                n -= len;
            }
        }
        None
    }

    /// Checks every structural invariant (tests only; reads the whole table).
    #[cfg(test)]
    pub fn check(&self) {
        self.main.check();
        if let Some(rehash) = &self.rehash {
            rehash.draining.check();
            assert!(rehash.moved < rehash.draining.bucket_count());
            assert_ne!(self.main.bucket_count(), rehash.draining.bucket_count());
            assert!(rehash.draining.len() > 0);
            for head in &rehash.draining.buckets()[..rehash.moved] {
                assert_eq!(chain_len(head), 0, "moved buckets are empty");
            }
        }
        for (array, buckets, _) in self.arrays() {
            for (index, head) in buckets.buckets().iter().enumerate() {
                for bucket in head.chain() {
                    for slot in bucket::slots_of(bucket.present()) {
                        let Some(entry) = bucket.entry(slot) else {
                            panic!("a present slot without an entry");
                        };
                        let hash = hash_key(K::key(entry));
                        assert_eq!(hash as usize & buckets.mask(), index, "{array:?} home");
                        assert_eq!(bucket.with_tag(tag_of(hash)) & (1 << slot), 1 << slot);
                    }
                }
            }
        }
        assert_eq!(self.iter().count(), self.len());
    }

    /// Whether a rehash is under way, and whether it grows the table.
    #[cfg(test)]
    pub fn rehashing(&self) -> Option<bool> {
        let rehash = self.rehash.as_ref()?;
        Some(self.main.bucket_count() > rehash.draining.bucket_count())
    }

    #[cfg(test)]
    pub fn is_rehashing(&self) -> bool {
        self.rehash.is_some()
    }

    /// Buckets of the draining array moved so far (0 without a rehash).
    #[cfg(test)]
    pub fn moved(&self) -> usize {
        self.rehash.as_ref().map_or(0, |r| r.moved)
    }

    /// Buckets of the array new entries go to.
    #[cfg(test)]
    pub fn bucket_count(&self) -> usize {
        self.main.bucket_count()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use std::collections::{BTreeSet, HashMap, HashSet};

    type Table = BucketTable<WholeEntry>;

    /// Set operations, as the set's table does them.
    trait SetOps {
        fn add(&mut self, key: &[u8]) -> bool;
        fn delete(&mut self, key: &[u8]) -> bool;
        fn contains(&self, key: &[u8]) -> bool;
        fn draw(&self, rng: &mut impl Rng) -> Option<&[u8]>;
        fn pop(&mut self, rng: &mut impl Rng) -> Option<Box<[u8]>>;
    }

    impl SetOps for Table {
        fn add(&mut self, key: &[u8]) -> bool {
            match self.locate(key) {
                Ok(_) => false,
                Err(vacancy) => {
                    self.insert(vacancy, Entry::new(key));
                    true
                }
            }
        }

        fn delete(&mut self, key: &[u8]) -> bool {
            match self.locate(key) {
                Ok(location) => self.remove(location).is_some(),
                Err(_) => false,
            }
        }

        fn contains(&self, key: &[u8]) -> bool {
            self.find(key).is_some()
        }

        fn draw(&self, rng: &mut impl Rng) -> Option<&[u8]> {
            self.random(rng)
                .and_then(|at| self.entry(at))
                .map(Entry::bytes)
        }

        fn pop(&mut self, rng: &mut impl Rng) -> Option<Box<[u8]>> {
            self.rehash_step();
            let at = self.random(rng)?;
            self.remove(at).map(|e| e.bytes().into())
        }
    }

    fn key(i: usize) -> Vec<u8> {
        format!("m{i}").into_bytes()
    }

    fn members(t: &Table) -> HashSet<Vec<u8>> {
        let all: Vec<Vec<u8>> = t.iter().map(|m| m.bytes().to_vec()).collect();
        let set: HashSet<Vec<u8>> = all.iter().cloned().collect();
        assert_eq!(set.len(), all.len(), "iter returned a member twice");
        set
    }

    /// Counts how often each entry comes out of `draw`, and checks the counts are what a
    /// uniform draw gives: each within 25% of the mean, and a chi-square statistic below its
    /// mean plus 6 standard deviations (a uniform draw fails this about once in 10^8).
    pub(crate) fn assert_uniform(n: usize, draws: usize, mut draw: impl FnMut() -> Vec<u8>) {
        let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
        for _ in 0..draws {
            *counts.entry(draw()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), n, "every entry drawn");
        let expected = draws as f64 / n as f64;
        let chi_square: f64 = counts
            .values()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        let freedom = (n - 1) as f64;
        assert!(
            chi_square < freedom + 6.0 * (2.0 * freedom).sqrt(),
            "chi-square {chi_square} with {freedom} degrees of freedom"
        );
        for (m, &c) in &counts {
            assert!(
                (c as f64 - expected).abs() < expected / 4.0,
                "{} drawn {c} times, expected {expected}",
                String::from_utf8_lossy(m)
            );
        }
    }

    /// Members whose hashes share the tag and the low `bits` bits, so that they share one
    /// chain in any table of up to `2^bits` buckets and every lookup among them meets equal
    /// tags. Found by trying names until one class has `count`.
    fn colliding(count: usize, bits: u32) -> Vec<Vec<u8>> {
        let mut classes: HashMap<(u8, u64), Vec<Vec<u8>>> = HashMap::new();
        for i in 0.. {
            let member = format!("collide:{i}").into_bytes();
            let hash = hash_key(&member);
            let class = classes
                .entry((tag_of(hash), hash & ((1 << bits) - 1)))
                .or_default();
            class.push(member);
            if class.len() == count {
                return std::mem::take(class);
            }
        }
        unreachable!()
    }

    /// A table of `n` members part-way through a grow (`grow`) or a shrink, with members in
    /// both arrays.
    fn mid_rehash(n: usize, grow: bool) -> Table {
        let mut t = Table::default();
        let mut i = 0;
        if grow {
            while t.len() < n || !t.is_rehashing() {
                t.add(&key(i));
                i += 1;
            }
        } else {
            while t.len() < 4 * n {
                t.add(&key(i));
                i += 1;
            }
            while t.len() > n || !t.is_rehashing() {
                t.delete(&key(i - 1));
                i -= 1;
            }
        }
        // A few operations more, so that some buckets were moved.
        while t.moved() == 0 || t.main.len() == 0 {
            if grow {
                t.add(&key(i));
                i += 1;
            } else {
                t.delete(&key(i - 1));
                i -= 1;
            }
        }
        t.check();
        assert!(t.len() > t.main.len() && t.main.len() > 0, "{t:?}");
        t
    }

    #[test]
    fn heap_size_counts_buckets_children_and_members() {
        let mut t = Table::with_capacity(1000);
        assert_eq!(t.heap_size(), 256 * 64, "1000 members take 256 buckets");
        for i in 0..1000 {
            t.add(&key(i));
        }
        assert_eq!(t.main.bucket_count(), 256, "no resize up to the capacity");
        let member_bytes: usize = (0..1000).map(|i| key(i).len() + 1).sum();
        let children: usize = t.main.buckets().iter().map(|b| b.chain().count() - 1).sum();
        assert_eq!(t.heap_size(), (256 + children) * 64 + member_bytes);
        assert_eq!(t.clone().heap_size(), t.heap_size());
        // Mid-rehash both arrays count, and the rehash state.
        let t = mid_rehash(200, true);
        let arrays = t.main.bucket_count() + t.main.bucket_count() / 2;
        assert!(t.heap_size() >= arrays * 64 + (0..200).map(|i| key(i).len() + 1).sum::<usize>());
    }

    /// The keyspace's tables each hold one shard's keys, whose hashes share their top bits
    /// (the shard number): the tags must come from other bits, or most slots of a bucket
    /// would match every lookup.
    #[test]
    fn keys_of_one_shard_get_all_tags() {
        let tags: HashSet<u8> = (0..400_000)
            .map(|i| hash_key(&key(i)))
            .filter(|&hash| crate::keyspace::Keyspace::shard_of_hash(hash) == 0)
            .map(tag_of)
            .collect();
        assert_eq!(tags.len(), 256);
    }

    /// `retain` keeps exactly the entries `keep` returns, replacements included, from a
    /// table mid-rehash (it finishes the rehash first) and leaves every invariant true.
    #[test]
    fn retain_keeps_what_keep_returns_mid_rehash() {
        for grow in [true, false] {
            let mut t = mid_rehash(200, grow);
            let before = members(&t);
            let mut offered = 0;
            t.retain(|entry| {
                offered += 1;
                // Keep members ending in an even digit, each as a fresh allocation.
                let even = entry.bytes().last().is_some_and(|d| d % 2 == 0);
                even.then(|| Entry::new(entry.bytes()))
            });
            t.check();
            assert_eq!(offered, before.len());
            let expected: HashSet<Vec<u8>> = before
                .into_iter()
                .filter(|m| m.last().is_some_and(|d| d % 2 == 0))
                .collect();
            assert_eq!(members(&t), expected);
            for m in &expected {
                assert!(t.contains(m));
            }
        }
    }

    /// A sample walks whole chains from a random one and stops at the bucket budget or
    /// when told to; over many samples every entry is reached, mid-rehash too.
    #[test]
    fn samples_respect_their_budget_and_reach_every_entry() {
        let mut rng = StdRng::seed_from_u64(11);
        for grow in [true, false] {
            let t = mid_rehash(300, grow);
            let mut reached = HashSet::new();
            for _ in 0..2000 {
                let mut seen = 0;
                t.sample(&mut rng, 2, |entry| {
                    reached.insert(entry.bytes().to_vec());
                    seen += 1;
                    true
                });
                // Two chains hold at most two bounds of the longest chain.
                let bound = 2
                    * (t.main.longest_chain()
                        + t.rehash.as_ref().map_or(0, |r| r.draining.longest_chain()));
                assert!(seen <= bound, "{seen} entries from two chains");
                let mut told = 0;
                t.sample(&mut rng, usize::MAX, |_| {
                    told += 1;
                    told < 3
                });
                assert_eq!(told, 3, "stops when told");
            }
            assert_eq!(reached, members(&t));
        }
    }

    /// `reserve` sizes the table once: the entries it was told of go in without a rehash.
    #[test]
    fn a_reserved_table_takes_its_entries_without_rehashing() {
        let mut t = Table::default();
        t.add(&key(0));
        t.reserve(10_000);
        assert!(!t.is_rehashing());
        for i in 1..10_000 {
            t.add(&key(i));
            assert!(!t.is_rehashing(), "rehash after {i} of 10000 reserved");
        }
        t.check();
        assert_eq!(t.len(), 10_000);
    }

    /// An entry written through `entry_mut` replaces the one in the slot: the old one is
    /// freed (Miri checks) and the new one is found by its key.
    #[test]
    fn an_entry_written_in_place_replaces_the_old_one() {
        for grow in [true, false] {
            let mut t = mid_rehash(50, grow);
            let before = members(&t);
            for m in &before {
                let Ok(at) = t.locate(m) else {
                    panic!("member missing");
                };
                if let Some(entry) = t.entry_mut(at) {
                    *entry = Entry::new(m);
                }
            }
            t.check();
            assert_eq!(members(&t), before);
        }
    }

    #[test]
    fn mid_rehash_tables_clone_scan_pop_and_drop() {
        let mut rng = StdRng::seed_from_u64(10);
        for grow in [true, false] {
            let t = mid_rehash(30, grow);
            let copy = t.clone();
            copy.check();
            assert_eq!(members(&copy), members(&t));
            assert_eq!(full_scan(&copy).len(), t.len());
            let mut popped = t.clone();
            for _ in 0..5 {
                let m = popped.pop(&mut rng).unwrap_or_default();
                assert!(t.contains(&m) && !popped.contains(&m));
            }
            popped.check();
            assert_ne!(members(&popped), members(&t));
            drop(copy);
            drop(popped);
        }
    }

    #[test]
    fn equal_tags_in_one_chain() {
        let colliders = colliding(24, 4);
        let (inserted, absent) = colliders.split_at(20);
        let mut t = Table::with_capacity(80);
        assert_eq!(t.main.bucket_count(), 16);
        for i in 0..40 {
            t.add(&key(i));
        }
        for m in inserted {
            assert!(t.add(m));
        }
        t.check();
        let home = hash_key(&inserted[0]) as usize & t.main.mask();
        // 20 or more members: 6 + 6 + 6 + the rest, so at least four buckets.
        assert!(t.main.buckets()[home].chain().count() >= 4);
        for m in inserted {
            assert!(t.contains(m));
        }
        for m in absent {
            assert!(!t.contains(m) && !t.delete(m));
        }
        let mut rng = StdRng::seed_from_u64(3);
        let mut order = inserted.to_vec();
        order.shuffle(&mut rng);
        for (n, m) in order.iter().enumerate() {
            assert!(t.delete(m));
            t.check();
            for (k, other) in order.iter().enumerate() {
                assert_eq!(t.contains(other), k > n);
            }
        }
        assert_eq!(t.len(), 40);
    }

    #[test]
    fn random_draws_are_uniform_over_chains_with_children() {
        let mut rng = StdRng::seed_from_u64(4);
        let colliders = colliding(16, 3);
        let mut t = Table::with_capacity(40);
        assert_eq!(t.main.bucket_count(), 8);
        for m in &colliders {
            t.add(m);
        }
        for i in 0..14 {
            t.add(&key(i));
        }
        assert_uniform(30, 60_000, || t.draw(&mut rng).unwrap_or_default().to_vec());
    }

    #[test]
    fn random_draws_are_uniform() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut t = Table::default();
        for i in 0..50 {
            t.add(&key(i));
        }
        assert_uniform(50, 100_000, || {
            t.draw(&mut rng).unwrap_or_default().to_vec()
        });
    }

    #[test]
    fn random_draws_are_uniform_mid_rehash() {
        let mut rng = StdRng::seed_from_u64(6);
        for grow in [true, false] {
            let t = mid_rehash(90, grow);
            let n = t.len();
            assert_uniform(n, n * 2000, || {
                t.draw(&mut rng).unwrap_or_default().to_vec()
            });
        }
    }

    #[test]
    fn pops_are_uniform_mid_rehash() {
        let mut rng = StdRng::seed_from_u64(7);
        for grow in [true, false] {
            let template = mid_rehash(60, grow);
            let n = template.len();
            assert_uniform(n, n * 800, || {
                let mut t = template.clone();
                let m = t.pop(&mut rng).unwrap_or_default().into_vec();
                assert!(!t.contains(&m) && t.len() == n - 1);
                m
            });
        }
    }

    #[test]
    fn sparse_tables_draw_fairly() {
        let mut rng = StdRng::seed_from_u64(8);
        // Room for 20000 in 4096 buckets, holding 5: some 800 draws per member drawn, and
        // a walk to the n-th member when 6500 fail.
        let mut sparse = Table::with_capacity(20_000);
        for i in 0..5 {
            sparse.add(&key(i));
        }
        assert_uniform(5, 20_000, || {
            sparse.draw(&mut rng).unwrap_or_default().to_vec()
        });
        // Holding 300: a few tens of draws per member drawn.
        for i in 5..300 {
            sparse.add(&key(i));
        }
        assert_uniform(300, 300 * 400, || {
            sparse.draw(&mut rng).unwrap_or_default().to_vec()
        });
    }

    thread_local! {
        static KEY_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Whole entries, counting how often a key is read out of an entry.
    struct CountingKey;

    impl EntryKey for CountingKey {
        type Item = Entry;

        fn key(entry: &Entry) -> &[u8] {
            KEY_READS.with(|reads| reads.set(reads.get() + 1));
            entry.bytes()
        }
    }

    fn key_reads(lookups: impl FnOnce()) -> usize {
        KEY_READS.with(|reads| reads.set(0));
        lookups();
        KEY_READS.with(std::cell::Cell::get)
    }

    /// The tags keep lookups away from entries: an absent key reads an entry only on a
    /// false tag match (1 in 256 per entry of its chain), a present one its own entry.
    #[test]
    fn lookups_read_only_entries_whose_tag_matches() {
        let mut t = BucketTable::<CountingKey>::default();
        for i in 0..20_000 {
            if let Err(vacancy) = t.locate(&key(i)) {
                t.insert(vacancy, Entry::new(&key(i)));
            }
        }
        assert!(!t.is_rehashing() && t.main.bucket_count() == 4096);
        // About 4.9 entries per chain: some 380 false matches expected, 98 000 reads
        // without tags.
        let absent = key_reads(|| {
            for i in 20_000..40_000 {
                assert!(t.find(&key(i)).is_none());
            }
        });
        assert!(absent < 1000, "{absent} entries read for 20000 absent keys");
        let present = key_reads(|| {
            for i in 0..20_000 {
                assert!(t.find(&key(i)).is_some());
            }
        });
        assert!(
            present < 21_000,
            "{present} entries read for 20000 present keys"
        );
    }

    /// The walk that replaces rejection is uniform because it is a bijection from
    /// `0..len` to the members.
    #[test]
    fn the_nth_member_walk_reaches_each_member_once() {
        for grow in [true, false] {
            let t = mid_rehash(100, grow);
            let walked: HashSet<Vec<u8>> = (0..t.len())
                .filter_map(|n| t.nth(n))
                .filter_map(|at| t.entry(at))
                .map(|m| m.bytes().to_vec())
                .collect();
            assert_eq!(walked, members(&t));
            assert_eq!(t.nth(t.len()), None);
        }
    }

    #[test]
    fn rehash_is_incremental_and_ends_before_the_next_resize_is_due() {
        let mut t = Table::default();
        let (mut grows, mut shrinks, mut lookups_mid_rehash) = (0, 0, 0);
        let n = 20_000;
        for i in 0..n {
            let (was_rehashing, moved) = (t.is_rehashing(), t.moved());
            let buckets = t.main.bucket_count();
            if at_grow_load(t.len(), buckets) {
                assert!(!t.is_rehashing(), "grow due at {i} while rehashing");
            }
            t.add(&key(i));
            if t.is_rehashing() && !was_rehashing {
                grows += 1;
                assert_eq!(t.main.bucket_count(), buckets * 2);
            } else if was_rehashing && t.is_rehashing() {
                assert!(t.moved() - moved <= GROW_STEP);
            }
            if t.is_rehashing() {
                lookups_mid_rehash += 1;
                assert!(t.contains(&key(i / 2)) && t.contains(&key(i)));
                assert!(!t.contains(&key(i + 1)));
            }
        }
        t.check();
        for i in (0..n).rev() {
            let (was_rehashing, moved) = (t.is_rehashing(), t.moved());
            let buckets = t.main.bucket_count();
            t.delete(&key(i));
            if under_shrink_load(t.len(), buckets) && buckets > MIN_BUCKETS && i > 0 {
                assert!(!was_rehashing, "shrink due at {i} while rehashing");
            }
            if t.is_rehashing() && !was_rehashing {
                shrinks += 1;
                assert_eq!(t.main.bucket_count(), buckets / 2);
            } else if was_rehashing && t.is_rehashing() {
                assert!(t.moved() - moved <= SHRINK_STEP);
            }
            if t.is_rehashing() {
                lookups_mid_rehash += 1;
                assert!(t.contains(&key(i / 2)) && !t.contains(&key(i)));
            }
        }
        assert!(
            grows >= 10 && shrinks >= 8,
            "{grows} grows, {shrinks} shrinks"
        );
        assert!(lookups_mid_rehash > 1000);
        assert!(t.is_empty() && t.heap_size() == 0);
    }

    #[test]
    fn with_capacity_needs_no_resize() {
        for capacity in [1, 5, 6, 11, 12, 100, 513, 10_000] {
            let mut t = Table::with_capacity(capacity);
            let buckets = t.main.bucket_count();
            for i in 0..capacity {
                t.add(&key(i));
            }
            assert!(
                !t.is_rehashing() && t.main.bucket_count() == buckets,
                "{capacity}"
            );
            // Not more than needed: half as many buckets would have had to grow.
            assert!(
                buckets == 1 || at_grow_load(capacity, buckets / 2),
                "{capacity}"
            );
        }
        assert_eq!(Table::with_capacity(0).heap_size(), 0);
    }

    fn full_scan(t: &Table) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = t.scan_step(cursor, |m| seen.push(m.bytes().to_vec()));
            if cursor == 0 {
                return seen;
            }
        }
    }

    #[test]
    fn a_scan_of_a_stable_table_returns_each_member_once() {
        for grow in [true, false] {
            let t = mid_rehash(500, grow);
            let seen = full_scan(&t);
            assert_eq!(seen.len(), t.len(), "once each, mid-rehash");
            assert_eq!(seen.into_iter().collect::<HashSet<_>>(), members(&t));
        }
        let mut t = Table::default();
        for i in 0..5000 {
            t.add(&key(i));
        }
        while t.is_rehashing() {
            t.delete(&key(t.len() - 1));
        }
        assert_eq!(full_scan(&t).len(), t.len());
    }

    #[test]
    fn scan_returns_members_present_throughout_despite_resizes() {
        let mut t = Table::default();
        for i in 0..300 {
            t.add(&key(i));
        }
        let mut seen = HashSet::new();
        let (mut cursor, mut step, mut steps_mid_rehash) = (0, 0, 0);
        loop {
            cursor = t.scan_step(cursor, |m| {
                seen.insert(m.bytes().to_vec());
            });
            step += 1;
            steps_mid_rehash += usize::from(t.is_rehashing());
            // Grow, then shrink, the table while the scan is under way, a few members at a
            // time so that scan steps fall in the middle of the rehashes.
            if (20..120).contains(&step) {
                for i in 0..30 {
                    t.add(&key(300 + (step - 20) * 30 + i));
                }
            }
            if (150..250).contains(&step) {
                for i in 0..30 {
                    t.delete(&key(300 + (step - 150) * 30 + i));
                }
                t.delete(&key(200 + (step - 150)));
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..200 {
            assert!(seen.contains(&key(i)), "member {i} missed");
        }
        assert!(steps_mid_rehash > 10, "{steps_mid_rehash}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// SCAN's guarantee: a member present from the first call to the last is returned,
        /// however inserts and removes between the calls grow, shrink and rehash the table.
        #[test]
        fn scan_returns_members_present_throughout_while_the_table_resizes(
            stable in 1usize..300,
            grow_by in 0usize..4000,
            ops_between_steps in 1usize..60,
            seed in any::<u64>(),
        ) {
            let mut t = Table::default();
            for i in 0..stable {
                t.add(format!("stable:{i}").as_bytes());
            }
            // Churn: add `grow_by` members, then remove them in another order.
            let mut rng = StdRng::seed_from_u64(seed);
            let mut removals: Vec<usize> = (0..grow_by).collect();
            removals.shuffle(&mut rng);
            let mut churn = (0..grow_by)
                .map(|i| (i, true))
                .chain(removals.into_iter().map(|i| (i, false)));
            let mut seen = BTreeSet::new();
            let mut cursor = 0u64;
            loop {
                cursor = t.scan_step(cursor, |m| { seen.insert(m.bytes().to_vec()); });
                if cursor == 0 {
                    break;
                }
                for (i, add) in churn.by_ref().take(ops_between_steps) {
                    let member = format!("churn:{i}");
                    if add {
                        t.add(member.as_bytes());
                    } else {
                        t.delete(member.as_bytes());
                    }
                }
            }
            for i in 0..stable {
                prop_assert!(seen.contains(format!("stable:{i}").as_bytes()), "stable:{} missed", i);
            }
        }
    }
}
