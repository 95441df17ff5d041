//! Cache-line buckets and the entry allocations they own: the only `unsafe` code of the
//! bucket table (the keyspace, and the large encoding of sets and of hashes). Outside this
//! module everything is safe:
//!
//! - A bucket holds [`SlotItem`]s: owners that are nothing but a thin pointer (a keyspace
//!   node, or an [`Entry`]). The slot keeps the bare pointer and lends it out as the owner;
//! - [`Entry`] is one entry (a set member, or a hash field with its value and expiry) as one
//!   allocation, `[length as LEB128][bytes]`, owned through a thin pointer (8 bytes, where a
//!   `Box<[u8]>` takes 16). What the bytes mean is the owning table's business;
//! - [`Bucket`] is 64 bytes, one cache line: seven one-byte tags, a flags byte, seven slots.
//!   Outside this module a bucket can only be read;
//! - [`BucketArray`] owns a power-of-two array of buckets with their child buckets and
//!   entries. Its methods are the only way to change a bucket, so it keeps its entry count
//!   exact and its bound of the longest chain (for the random draws) valid.
//!
//! # Layout of a bucket
//!
//! ```text
//! 0..7    the tag of the entry in each slot (bits of its hash the index does not use)
//! 7       flags: bit i (i < 7) set = slot i holds an entry; bit 7 = slot 6 holds the child
//! 8..64   seven slots of 8 bytes: an entry's pointer, or, in slot 6 when the child flag is
//!         set, the pointer of a `Box<Bucket>` that continues the chain
//! ```
//!
//! A chain (a bucket and its children) is kept compact: every bucket but the last is full
//! (six entries and the child), and a child holds at least two entries. So a chain of `k`
//! entries is one bucket up to seven, and `1 + ceil((k - 7) / 6)` buckets beyond.
//!
//! # Soundness
//!
//! - An `Entry` is created only by [`Entry::concat`], which adds up the parts' lengths with
//!   overflow checks, allocates exactly `prefix + len` bytes with alignment 1 and writes the
//!   LEB128 length (at most 10 bytes for a `usize`) then the parts one after the other. The
//!   bytes never change, so `Drop` recomputes the same `Layout` from the prefix. An `Entry`
//!   uniquely owns its allocation (`Clone` allocates a copy); `&Entry` only gives `&[u8]`.
//!   It is `Send` and `Sync` for the reasons a `Box<[u8]>` is.
//! - A `SlotItem` is `repr(transparent)` over its `NonNull<u8>` (the trait's contract), so
//!   its bytes are the pointer: `into_raw` and `from_raw` move ownership out of and back into
//!   a slot, and a present slot's `NonNull<u8>` can be borrowed as `&T` (or, through
//!   `&mut BucketArray`, as `&mut T`: an owner written there drops the old one and leaves its
//!   own pointer in the slot, which stays present).
//! - A bucket slot `i` whose presence bit is set holds a pointer from `into_raw`, which
//!   the bucket owns. When the child flag is set, slot 6 holds a pointer from
//!   `Box::<Bucket>::into_raw`, which the bucket owns, and the presence bit of slot 6 is
//!   clear. Slots are written only by `place`, `take`, `attach_child` and `detach_child`,
//!   which check the flags before and update them with the slot: the flags always say what a
//!   slot holds, and each pointer is turned back into its owner exactly once.
//! - `Bucket` has no `Drop` and no public constructor: buckets live only inside a
//!   `BucketArray` (in its boxed slice, or as children of its buckets) and are never handed
//!   out by value, and `BucketArray`'s `Drop` frees everything they hold. It skips that walk
//!   when its count says the array holds no entry (a drained rehash source is freed without
//!   reading it); a wrong count could only leak, never free twice.
//! - The boxed slice of buckets is allocated zeroed with `Layout::array::<Bucket>(n)`, the
//!   layout a `Box<[Bucket]>` of `n` elements frees with; all-zero bytes are a valid empty
//!   bucket (tags 0, no flags, `None` slots).
//! - A `&Bucket` only gives out `&T` and `&Bucket` borrowed from it; changes need
//!   `&mut BucketArray`. So buckets are `Send` and `Sync` when their items are, like the
//!   `Box`es they stand for.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, handle_alloc_error};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::table::prefetch_addr;

/// Slots of a bucket.
pub const SLOTS: usize = 7;
/// The slot that holds the child pointer when the bucket has a child.
const CHILD_SLOT: usize = SLOTS - 1;
/// The index of the flags byte in `Bucket::meta`.
const FLAGS: usize = SLOTS;
/// The flag that says slot 6 holds the child.
const HAS_CHILD: u8 = 1 << 7;
/// The presence bits of the seven slots.
const PRESENT: u8 = HAS_CHILD - 1;

/// The slots whose bit is set in `mask`, lowest first.
pub fn slots_of(mask: u8) -> impl Iterator<Item = usize> {
    crate::bits::set_bits(u64::from(mask))
}

/// Bytes of the LEB128 encoding of `len`.
fn prefix_len(len: usize) -> usize {
    let bits = (usize::BITS - len.leading_zeros()) as usize;
    bits.div_ceil(7).max(1)
}

fn entry_layout(size: usize) -> Layout {
    // `size` is a slice length plus at most 10: it overflows only for slices no allocator
    // could have produced.
    Layout::from_size_align(size, 1).unwrap_or_else(|_| handle_alloc_error(Layout::new::<u8>()))
}

/// The length and prefix size of the entry allocation at `ptr`.
///
/// # Safety
/// `ptr` must point to a live allocation written by [`Entry::concat`].
#[inline]
unsafe fn read_header(ptr: NonNull<u8>) -> (usize, usize) {
    let base = ptr.as_ptr();
    // SAFETY: the allocation starts with a LEB128 length of at most 10 bytes whose last byte
    // has its high bit clear, so every byte read here lies inside it.
    unsafe {
        let first = base.read();
        if first < 0x80 {
            return (usize::from(first), 1);
        }
        let mut len = 0usize;
        let mut at = 0;
        loop {
            let byte = base.add(at).read();
            len |= usize::from(byte & 0x7f) << (7 * at);
            at += 1;
            if byte < 0x80 {
                return (len, at);
            }
        }
    }
}

/// The bytes of the entry allocation at `ptr`.
///
/// # Safety
/// `ptr` must point to a live allocation written by [`Entry::concat`] that outlives `'a` and is
/// not freed or written during `'a`.
#[inline]
unsafe fn bytes_at<'a>(ptr: NonNull<u8>) -> &'a [u8] {
    // SAFETY: the allocation holds the prefix then exactly `len` initialized bytes.
    unsafe {
        let (len, prefix) = read_header(ptr);
        std::slice::from_raw_parts(ptr.as_ptr().add(prefix), len)
    }
}

/// One entry, owned; see the module documentation.
#[repr(transparent)]
pub struct Entry(NonNull<u8>);

// SAFETY: an Entry uniquely owns immutable bytes, as a Box<[u8]> does.
unsafe impl Send for Entry {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for Entry {}

impl Entry {
    pub fn new(bytes: &[u8]) -> Entry {
        Entry::concat(&[bytes])
    }

    /// An entry of the parts one after the other, without a buffer to join them first.
    pub fn concat(parts: &[&[u8]]) -> Entry {
        let too_large = || handle_alloc_error(Layout::new::<u8>());
        let len = parts
            .iter()
            .try_fold(0usize, |sum, part| sum.checked_add(part.len()))
            .unwrap_or_else(too_large);
        let prefix = prefix_len(len);
        let layout = entry_layout(prefix.checked_add(len).unwrap_or_else(too_large));
        // SAFETY: the layout's size is at least 1 (the prefix).
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            handle_alloc_error(layout);
        };
        let base = ptr.as_ptr();
        // SAFETY: `base` points to `prefix + len` writable bytes: `prefix` bytes of length,
        // then the parts, whose lengths add up to `len` (summed above without overflow).
        unsafe {
            let mut rest = len;
            for at in 0..prefix {
                let low = (rest & 0x7f) as u8;
                rest >>= 7;
                base.add(at)
                    .write(if at + 1 < prefix { low | 0x80 } else { low });
            }
            let mut at = prefix;
            for part in parts {
                base.add(at)
                    .copy_from_nonoverlapping(part.as_ptr(), part.len());
                at += part.len();
            }
        }
        Entry(ptr)
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `self` owns a live allocation made by `concat`; the slice borrows `self`.
        unsafe { bytes_at(self.0) }
    }

    /// Bytes of the allocation (before the allocator's rounding).
    pub fn alloc_size(&self) -> usize {
        // SAFETY: as in `bytes`.
        let (len, prefix) = unsafe { read_header(self.0) };
        len + prefix
    }
}

// SAFETY: `Entry` is `repr(transparent)` over its `NonNull<u8>`, owns the allocation and frees
// it when dropped.
unsafe impl SlotItem for Entry {
    fn alloc_size(&self) -> usize {
        Entry::alloc_size(self)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let layout = entry_layout(self.alloc_size());
        // SAFETY: allocated by `new` with this size (recomputed from the unchanged prefix)
        // and alignment 1; freed once, here.
        unsafe { dealloc(self.0.as_ptr(), layout) }
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        Entry::new(self.bytes())
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.bytes().escape_ascii().to_string())
    }
}

/// What a bucket slot holds: an owned thin pointer to one allocation (a set member, a hash
/// field, a keyspace node). The slot keeps the bare pointer and hands the owner out by
/// reference, which is why the owner must be nothing but that pointer.
///
/// # Safety
/// An implementor must be `#[repr(transparent)]` over a `NonNull<u8>`, uniquely own what it
/// points to, and free it when dropped (and only then).
pub unsafe trait SlotItem: Sized {
    /// Bytes of the item's allocation (before the allocator's rounding).
    fn alloc_size(&self) -> usize;
}

/// Gives up ownership of `item` to a bucket slot.
fn into_raw<T: SlotItem>(item: T) -> NonNull<u8> {
    const { assert!(std::mem::size_of::<T>() == std::mem::size_of::<NonNull<u8>>()) };
    let item = ManuallyDrop::new(item);
    // SAFETY: `T` is `repr(transparent)` over a `NonNull<u8>` (the `SlotItem` contract), so
    // its bytes are that pointer; `ManuallyDrop` keeps the owner from being dropped.
    unsafe { std::ptr::read((&*item as *const T).cast::<NonNull<u8>>()) }
}

/// Takes back the owner of a pointer from [`into_raw`].
///
/// # Safety
/// `ptr` must come from `into_raw::<T>`, and ownership is taken back only once.
unsafe fn from_raw<T: SlotItem>(ptr: NonNull<u8>) -> T {
    // SAFETY: as in `into_raw`, a `T` is exactly its pointer.
    unsafe { std::ptr::read((&ptr as *const NonNull<u8>).cast::<T>()) }
}

/// The owner stored in a slot, borrowed in place.
///
/// # Safety
/// `slot` must hold a pointer from `into_raw::<T>` whose owner is not taken back while the
/// borrow lasts.
unsafe fn item_ref<T: SlotItem>(slot: &NonNull<u8>) -> &T {
    // SAFETY: a `T` is exactly its pointer, and `slot` holds one that owns a live allocation.
    unsafe { &*(slot as *const NonNull<u8>).cast::<T>() }
}

/// The owner stored in a slot, borrowed mutably in place: writing a new owner through it
/// drops the old one and leaves the new pointer in the slot.
///
/// # Safety
/// As for [`item_ref`].
unsafe fn item_mut<T: SlotItem>(slot: &mut NonNull<u8>) -> &mut T {
    // SAFETY: as in `item_ref`; the `&mut` makes the access unique.
    unsafe { &mut *(slot as *mut NonNull<u8>).cast::<T>() }
}

/// A cache line of the table; see the module documentation.
#[repr(C, align(64))]
pub struct Bucket<T> {
    /// The slots' tags, then the flags byte.
    meta: [u8; SLOTS + 1],
    slots: [Option<NonNull<u8>>; SLOTS],
    items: PhantomData<T>,
}

const _: () = assert!(std::mem::size_of::<Bucket<Entry>>() == 64);

// SAFETY: a bucket owns its entries and child like a Box owns its contents; through `&Bucket`
// they can only be read (see the module documentation).
unsafe impl<T: Send> Send for Bucket<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Bucket<T> {}

impl<T: SlotItem> Bucket<T> {
    const EMPTY: Bucket<T> = Bucket {
        meta: [0; SLOTS + 1],
        slots: [None; SLOTS],
        items: PhantomData,
    };

    /// The slots that hold an entry, as a bit mask.
    #[inline]
    pub fn present(&self) -> u8 {
        self.meta[FLAGS] & PRESENT
    }

    /// Entries in this bucket (not counting its children).
    #[inline]
    pub fn len(&self) -> usize {
        self.present().count_ones() as usize
    }

    #[inline]
    pub fn has_child(&self) -> bool {
        self.meta[FLAGS] & HAS_CHILD != 0
    }

    /// The slots holding an entry whose tag is `tag`, as a bit mask. Compares the seven tags
    /// at once: one XOR makes matching bytes zero, and the classic exact zero-byte test (no
    /// carry crosses a byte) marks them in their high bit.
    #[inline]
    pub fn with_tag(&self, tag: u8) -> u8 {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let diff = u64::from_le_bytes(self.meta) ^ (u64::from(tag) * 0x0101_0101_0101_0101);
        let zero_bytes = !(((diff & LOW7) + LOW7) | diff | LOW7);
        // Gathers the high bit of byte i into bit i of the top byte. The products land on
        // distinct bit positions (8i + 7j is unique for i < 8, 1 <= j <= 8), so no carries.
        let gathered = ((zero_bytes >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8;
        gathered & self.present()
    }

    /// The entry in `slot`, if there is one.
    #[inline]
    pub fn entry(&self, slot: usize) -> Option<&T> {
        if slot >= SLOTS || self.present() & (1 << slot) == 0 {
            return None;
        }
        let ptr = self.slots[slot].as_ref()?;
        // SAFETY: a present slot holds a live entry owned by this bucket, which `&self`
        // keeps from being changed or freed.
        Some(unsafe { item_ref(ptr) })
    }

    /// The entry in `slot`, mutably.
    #[inline]
    fn entry_mut(&mut self, slot: usize) -> Option<&mut T> {
        if slot >= SLOTS || self.present() & (1 << slot) == 0 {
            return None;
        }
        let ptr = self.slots[slot].as_mut()?;
        // SAFETY: as in `entry`; `&mut self` makes the access unique, and whatever owner is
        // written through the borrow stays owned by the present slot.
        Some(unsafe { item_mut(ptr) })
    }

    pub fn child(&self) -> Option<&Bucket<T>> {
        if !self.has_child() {
            return None;
        }
        let ptr = self.slots[CHILD_SLOT]?;
        // SAFETY: with the child flag, slot 6 holds a live Box<Bucket> owned by this bucket.
        Some(unsafe { ptr.cast::<Bucket<T>>().as_ref() })
    }

    fn child_mut(&mut self) -> Option<&mut Bucket<T>> {
        if !self.has_child() {
            return None;
        }
        let ptr = self.slots[CHILD_SLOT]?;
        // SAFETY: as in `child`; `&mut self` makes the access unique.
        Some(unsafe { ptr.cast::<Bucket<T>>().as_mut() })
    }

    /// The entries of this bucket (not of its children).
    pub fn entries(&self) -> impl Iterator<Item = &T> {
        slots_of(self.present()).filter_map(|slot| self.entry(slot))
    }

    /// This bucket and its children, in chain order.
    pub fn chain(&self) -> impl Iterator<Item = &Bucket<T>> {
        std::iter::successors(Some(self), |bucket| bucket.child())
    }

    /// Asks the CPU to start loading this bucket's entries.
    pub fn prefetch_entries(&self) {
        self.prefetch_slots(self.present(), 1);
    }

    /// Asks the CPU to start loading the entries whose tag is `tag` (a lookup's candidates),
    /// their first `span` bytes, and the child bucket, where the chain goes on.
    pub fn prefetch_candidates(&self, tag: u8, span: usize) {
        self.prefetch_slots(self.with_tag(tag), span);
        if let Some(child) = self.child() {
            prefetch_addr((child as *const Bucket<T>).cast());
        }
    }

    /// `slots` must be a subset of the present ones.
    fn prefetch_slots(&self, slots: u8, span: usize) {
        for slot in slots_of(slots) {
            if let Some(ptr) = self.slots[slot] {
                prefetch_addr(ptr.as_ptr());
                if span > 1 {
                    // A second line when the span crosses one (a prefetch of the line
                    // already asked for costs next to nothing).
                    prefetch_addr(ptr.as_ptr().wrapping_add(span - 1));
                }
            }
        }
    }

    /// The bucket `depth` links down the chain.
    #[inline]
    fn at_depth_mut(&mut self, depth: usize) -> Option<&mut Bucket<T>> {
        let mut bucket = self;
        for _ in 0..depth {
            bucket = bucket.child_mut()?;
        }
        Some(bucket)
    }

    /// Slots that can take an entry: all but those holding one, and slot 6 when it holds the
    /// child.
    fn free_slots(&self) -> u8 {
        let usable = if self.has_child() {
            PRESENT & !(1 << CHILD_SLOT)
        } else {
            PRESENT
        };
        usable & !self.present()
    }

    /// Stores `entry` in `slot`, which must be free (checked: overwriting would leak or
    /// mistake an entry for the child).
    fn place(&mut self, slot: usize, tag: u8, entry: T) {
        assert!(
            slot < SLOTS && self.free_slots() & (1 << slot) != 0,
            "slot {slot} is not free"
        );
        self.slots[slot] = Some(into_raw(entry));
        self.meta[slot] = tag;
        self.meta[FLAGS] |= 1 << slot;
    }

    /// Takes the entry out of `slot`, with its tag.
    fn take(&mut self, slot: usize) -> Option<(u8, T)> {
        if slot >= SLOTS || self.present() & (1 << slot) == 0 {
            return None;
        }
        let ptr = self.slots[slot].take()?;
        self.meta[FLAGS] &= !(1 << slot);
        // SAFETY: a present slot holds a pointer from `into_raw`; the slot and its bit are
        // cleared, so ownership is taken back only here.
        Some((self.meta[slot], unsafe { from_raw(ptr) }))
    }

    /// Links `child` after this bucket; slot 6 must not hold an entry (checked).
    fn attach_child(&mut self, child: Box<Bucket<T>>) {
        assert!(
            !self.has_child() && self.present() & (1 << CHILD_SLOT) == 0,
            "slot 6 is taken"
        );
        self.slots[CHILD_SLOT] = Some(NonNull::from(Box::leak(child)).cast());
        self.meta[FLAGS] |= HAS_CHILD;
    }

    /// Unlinks the child (with its own children).
    fn detach_child(&mut self) -> Option<Box<Bucket<T>>> {
        if !self.has_child() {
            return None;
        }
        self.meta[FLAGS] &= !HAS_CHILD;
        let ptr = self.slots[CHILD_SLOT].take()?;
        // SAFETY: with the child flag, slot 6 held a pointer from Box::into_raw; the flag and
        // slot are cleared, so the Box is rebuilt only here.
        Some(unsafe { Box::from_raw(ptr.cast::<Bucket<T>>().as_ptr()) })
    }

    /// Takes every entry out of this bucket (not its children).
    fn take_all(&mut self, mut each: impl FnMut(u8, T)) {
        for slot in slots_of(self.present()) {
            if let Some((tag, entry)) = self.take(slot) {
                each(tag, entry);
            }
        }
    }

    /// Frees every entry and child of this chain, leaving the bucket empty.
    fn clear_chain(&mut self) {
        self.take_all(|_, entry| drop(entry));
        // Unlinked one by one: no recursion, whatever the chain's length.
        let mut next = self.detach_child();
        while let Some(mut child) = next {
            child.take_all(|_, entry| drop(entry));
            next = child.detach_child();
        }
    }
}

impl<T: SlotItem + Clone> Bucket<T> {
    /// Copies the entries (not the child) into the empty bucket `to`.
    fn copy_entries_to(&self, to: &mut Bucket<T>) {
        for slot in slots_of(self.present()) {
            if let Some(entry) = self.entry(slot) {
                to.place(slot, self.meta[slot], entry.clone());
            }
        }
    }

    /// Deep-copies this chain into the empty bucket `to`.
    fn copy_chain_to(&self, to: &mut Bucket<T>) {
        self.copy_entries_to(to);
        if let Some(child) = self.child() {
            let mut copy = Box::new(Bucket::EMPTY);
            child.copy_chain_to(&mut copy);
            to.attach_child(copy);
        }
    }
}

impl<T: SlotItem + std::fmt::Debug> std::fmt::Debug for Bucket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

/// The position of an entry: its chain (bucket index), the bucket in the chain, the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub index: usize,
    pub depth: usize,
    pub slot: usize,
}

/// A power-of-two array of buckets with everything they hold; see the module documentation.
/// 32 bytes, so that a set value stays as small as it was with a plain chained table.
pub struct BucketArray<T: SlotItem> {
    buckets: Box<[Bucket<T>]>,
    entries: usize,
    /// At least the number of entries of the longest chain: raised by every insert, never
    /// lowered (a remove does not tell whether another chain is as long).
    longest_chain: usize,
}

impl<T: SlotItem> Default for BucketArray<T> {
    fn default() -> Self {
        BucketArray {
            buckets: Box::default(),
            entries: 0,
            longest_chain: 0,
        }
    }
}

impl<T: SlotItem> BucketArray<T> {
    /// An array of `count` empty buckets; `count` must be a power of two.
    pub fn with_buckets(count: usize) -> BucketArray<T> {
        assert!(count.is_power_of_two(), "bucket count {count}");
        let layout = Layout::array::<Bucket<T>>(count)
            .unwrap_or_else(|_| handle_alloc_error(Layout::new::<Bucket<T>>()));
        // SAFETY: `count` >= 1, so the layout's size is non-zero. Zeroed memory may come
        // straight from the OS without being written, so a large array costs no time here.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        let slice = std::ptr::slice_from_raw_parts_mut(ptr.cast::<Bucket<T>>(), count);
        // SAFETY: allocated by the global allocator with `Layout::array::<Bucket>(count)`,
        // which is the layout of a `[Bucket]` of `count` elements that the Box frees with;
        // all-zero bytes are a valid (empty) Bucket, so every element is initialized.
        let buckets = unsafe { Box::from_raw(slice) };
        BucketArray {
            buckets,
            entries: 0,
            longest_chain: 0,
        }
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The index mask (bucket count minus one); 0 for an empty array.
    pub fn mask(&self) -> usize {
        self.buckets.len().saturating_sub(1)
    }

    pub fn buckets(&self) -> &[Bucket<T>] {
        &self.buckets
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    /// An upper bound of the entries any chain holds (see the field).
    pub fn longest_chain(&self) -> usize {
        self.longest_chain
    }

    /// Bytes allocated: the bucket array, child buckets, and entries as requested from the
    /// allocator. Reads every entry's length, so it takes time in proportion to the size.
    pub fn heap_size(&self) -> usize {
        let mut bytes = self.buckets.len() * std::mem::size_of::<Bucket<T>>();
        for head in self.buckets.iter() {
            for (depth, bucket) in head.chain().enumerate() {
                if depth > 0 {
                    bytes += std::mem::size_of::<Bucket<T>>();
                }
                bytes += bucket.entries().map(T::alloc_size).sum::<usize>();
            }
        }
        bytes
    }

    /// The entry at `at`, mutably: what is written through it stays in the slot, so it must
    /// have the same key.
    pub fn entry_mut(&mut self, at: Position) -> Option<&mut T> {
        self.buckets
            .get_mut(at.index)?
            .at_depth_mut(at.depth)?
            .entry_mut(at.slot)
    }

    /// Adds `entry` (which must not be in the chain) to the chain of bucket `index`.
    pub fn push(&mut self, index: usize, tag: u8, entry: T) {
        let head = &mut self.buckets[index];
        let (chain_len, buckets) = head
            .chain()
            .fold((0, 0), |(len, depth), b| (len + b.len(), depth + 1));
        let Some(tail) = head.at_depth_mut(buckets - 1) else {
            unreachable!("a chain has as many buckets as it walks");
        };
        match slots_of(tail.free_slots()).next() {
            Some(slot) => tail.place(slot, tag, entry),
            None => {
                // A full last bucket: its slot 6 entry moves to a new child, which also
                // takes the new entry.
                let mut child = Box::new(Bucket::EMPTY);
                if let Some((moved_tag, moved)) = tail.take(CHILD_SLOT) {
                    child.place(0, moved_tag, moved);
                }
                child.place(1, tag, entry);
                tail.attach_child(child);
            }
        }
        self.entries += 1;
        self.longest_chain = self.longest_chain.max(chain_len + 1);
    }

    /// Puts `entry` in place of the entry at `at` (the same key, so the same tag) and returns
    /// the one it replaces; `None`, dropping `entry`, if no entry is there.
    pub fn replace(&mut self, at: Position, entry: T) -> Option<T> {
        let bucket = self.buckets.get_mut(at.index)?.at_depth_mut(at.depth)?;
        let (tag, replaced) = bucket.take(at.slot)?;
        bucket.place(at.slot, tag, entry);
        Some(replaced)
    }

    /// Removes and returns the entry at `at`, keeping the chain compact: the chain's last
    /// entry fills the hole, and a child left with one entry gives it to its parent.
    pub fn remove(&mut self, at: Position) -> Option<T> {
        let head = self.buckets.get_mut(at.index)?;
        let last = head.chain().count() - 1;
        let (_, entry) = head.at_depth_mut(at.depth)?.take(at.slot)?;
        if at.depth < last {
            let filler = head.at_depth_mut(last).and_then(|tail| {
                let slot = slots_of(tail.present()).last()?;
                tail.take(slot)
            });
            if let (Some((tag, filler)), Some(hole)) = (filler, head.at_depth_mut(at.depth)) {
                hole.place(at.slot, tag, filler);
            }
        }
        if last > 0
            && let Some(parent) = head.at_depth_mut(last - 1)
            && parent.child().is_some_and(|tail| tail.len() <= 1)
            && let Some(mut tail) = parent.detach_child()
        {
            tail.take_all(|tag, kept| parent.place(CHILD_SLOT, tag, kept));
        }
        self.entries -= 1;
        if self.entries == 0 {
            self.longest_chain = 0;
        }
        Some(entry)
    }

    /// Empties the chain of bucket `index`, passing each entry and its tag to `each`.
    pub fn take_chain(&mut self, index: usize, mut each: impl FnMut(u8, T)) {
        let Some(head) = self.buckets.get_mut(index) else {
            return;
        };
        let mut taken = 0;
        let mut take = |tag, entry| {
            taken += 1;
            each(tag, entry);
        };
        head.take_all(&mut take);
        let mut next = head.detach_child();
        while let Some(mut child) = next {
            child.take_all(&mut take);
            next = child.detach_child();
        }
        self.entries -= taken;
        if self.entries == 0 {
            self.longest_chain = 0;
        }
    }

    /// Checks the counts against the buckets and that chains are compact.
    #[cfg(test)]
    pub fn check(&self) {
        let mut entries = 0;
        for head in self.buckets.iter() {
            let chain: Vec<&Bucket<T>> = head.chain().collect();
            let len: usize = chain.iter().map(|b| b.len()).sum();
            for (depth, bucket) in chain.iter().enumerate() {
                if depth + 1 < chain.len() {
                    assert_eq!(bucket.len(), SLOTS - 1, "a bucket with a child is full");
                } else if depth > 0 {
                    assert!(bucket.len() >= 2, "a child holds at least two entries");
                }
                assert_eq!(bucket.present() & bucket.free_slots(), 0);
            }
            entries += len;
            assert!(len <= self.longest_chain, "chain of {len} above the bound");
        }
        assert_eq!(entries, self.entries);
    }
}

impl<T: SlotItem> Drop for BucketArray<T> {
    fn drop(&mut self) {
        // Without entries there are no children either (a child holds two or more), so
        // there is nothing to free but the array, which the Box frees without reading it.
        if self.entries == 0 {
            return;
        }
        for bucket in self.buckets.iter_mut() {
            bucket.clear_chain();
        }
    }
}

impl<T: SlotItem + Clone> Clone for BucketArray<T> {
    fn clone(&self) -> BucketArray<T> {
        if self.buckets.is_empty() {
            return BucketArray::default();
        }
        let mut copy = BucketArray::with_buckets(self.buckets.len());
        // Counts first: if copying stopped half-way, dropping the copy frees what it holds.
        copy.entries = self.entries;
        copy.longest_chain = self.longest_chain;
        for (from, to) in self.buckets.iter().zip(copy.buckets.iter_mut()) {
            if from.present() != 0 || from.has_child() {
                from.copy_chain_to(to);
            }
        }
        copy
    }
}

impl<T: SlotItem> std::fmt::Debug for BucketArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketArray")
            .field("buckets", &self.buckets.len())
            .field("entries", &self.entries)
            .field("longest_chain", &self.longest_chain)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn entries_round_trip_at_every_prefix_length() {
        for len in [0, 1, 127, 128, 255, 256, 16_383, 16_384, 10_000, 100_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let entry = Entry::new(&bytes);
            assert_eq!(entry.bytes(), &bytes[..]);
            assert_eq!(entry.alloc_size(), len + prefix_len(len));
            assert_eq!(entry.clone().bytes(), &bytes[..]);
            let (head, tail) = bytes.split_at(len / 3);
            let joined = Entry::concat(&[head, b"", tail]);
            assert_eq!(joined.bytes(), &bytes[..]);
            assert_eq!(joined.alloc_size(), entry.alloc_size());
        }
        assert_eq!(Entry::concat(&[]).bytes(), b"");
        assert_eq!(prefix_len(0), 1);
        assert_eq!(prefix_len(127), 1);
        assert_eq!(prefix_len(128), 2);
        assert_eq!(prefix_len(usize::MAX), 10);
    }

    #[test]
    fn tag_matching_agrees_with_a_plain_loop() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let rounds = if cfg!(miri) { 300 } else { 20_000 };
        for _ in 0..rounds {
            let mut bucket = Bucket::<Entry>::EMPTY;
            // Few distinct tags so that matches are common, and every flags value.
            const TAGS: [u8; 5] = [0, 1, 0x7f, 0x80, 0xff];
            for t in 0..SLOTS {
                bucket.meta[t] = TAGS[rng.random_range(0..TAGS.len())];
            }
            bucket.meta[FLAGS] = rng.random();
            let tag = TAGS[rng.random_range(0..TAGS.len())];
            let expected = (0..SLOTS)
                .filter(|&s| bucket.meta[s] == tag && bucket.present() & (1 << s) != 0)
                .fold(0u8, |mask, s| mask | 1 << s);
            assert_eq!(bucket.with_tag(tag), expected, "{:?} {tag}", bucket.meta);
        }
    }

    #[test]
    fn chains_stay_compact_through_pushes_and_removes() {
        let mut array = BucketArray::with_buckets(1);
        for i in 0..40u8 {
            array.push(0, i, Entry::new(&[i]));
            array.check();
        }
        assert_eq!(array.longest_chain(), 40);
        // 40 entries: six per bucket with a child, then four: seven buckets.
        assert_eq!(array.buckets()[0].chain().count(), 7);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut left = 40;
        while left > 0 {
            let position = rng.random_range(0..left);
            let mut skip = position;
            let mut at = None;
            for (depth, bucket) in array.buckets()[0].chain().enumerate() {
                if skip < bucket.len() {
                    let slot = slots_of(bucket.present()).nth(skip);
                    at = slot.map(|slot| Position {
                        index: 0,
                        depth,
                        slot,
                    });
                    break;
                }
                skip -= bucket.len();
            }
            let at = at.expect("position inside the chain");
            assert!(array.remove(at).is_some());
            left -= 1;
            array.check();
        }
        assert_eq!(array.longest_chain(), 0, "reset when empty");
        assert_eq!(array.heap_size(), 64);
    }

    #[test]
    fn replace_keeps_the_slot_and_its_tag() {
        let mut array = BucketArray::with_buckets(1);
        // Tag i for entry [i]: 6 + 6 + 6 + 2 entries in four buckets.
        for i in 0..20u8 {
            array.push(0, i, Entry::new(&[i]));
        }
        let at = Position {
            index: 0,
            depth: 2,
            slot: 3,
        };
        let replaced = array.replace(at, Entry::new(b"new"));
        let old_tag = replaced.map(|e| e.bytes()[0]).unwrap_or_default();
        let bucket = array.buckets()[0].chain().nth(2).unwrap_or(&Bucket::EMPTY);
        assert_eq!(bucket.entry(3).map(Entry::bytes), Some(&b"new"[..]));
        assert_eq!(bucket.with_tag(old_tag), 1 << 3);
        assert_eq!(array.len(), 20);
        array.check();
        let empty_slot = Position { depth: 3, ..at };
        assert!(array.replace(empty_slot, Entry::new(b"x")).is_none());
        assert_eq!(array.len(), 20);
        array.check();
    }

    #[test]
    fn clone_and_take_chain_keep_counts() {
        let mut array = BucketArray::with_buckets(4);
        for i in 0..60u32 {
            array.push((i % 3) as usize, i as u8, Entry::new(&i.to_le_bytes()));
        }
        let copy = array.clone();
        copy.check();
        assert_eq!(copy.heap_size(), array.heap_size());
        // 3 chains of 20: 6 + 6 + 6 + 2, so 3 children each; entries of 4 bytes plus 1.
        assert_eq!(array.heap_size(), (4 + 9) * 64 + 60 * 5);
        let mut taken = Vec::new();
        array.take_chain(1, |_, m| taken.push(m.bytes().to_vec()));
        assert_eq!(taken.len(), 20);
        array.check();
        assert_eq!(array.len(), 40);
        assert_eq!(copy.len(), 60);
    }
}
