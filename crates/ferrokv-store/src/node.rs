//! One allocation per key: the access stamp, the expiry (only when the key has one), small
//! values and the key bytes, packed so that a typical cache entry ("key:123456" →
//! "value:123456") fits jemalloc's 32-byte size class. The keyspace's bucket table holds
//! nodes by pointer (see `table.rs`); a node has no link of its own.
//!
//! This is the only module of the keyspace with `unsafe` code. Everything outside it sees
//! [`Node`], an owning thin pointer with a safe API, like a `Box` of a dynamically sized type.
//!
//! # Layout
//!
//! The allocation is 8-aligned. Offsets in bytes:
//!
//! ```text
//! 0..4    access     u32 LRU/LFU stamp (for BOXED nodes the boxed Entry holds it)
//! 4       meta       payload kind (4 bits) | HAS_EXPIRE
//! 5       key_len    key length, or LONG_KEY: a usize length follows the header
//! 6..8    val_len    u16 length of an inline string or packed collection
//! 8..     [usize key length, if LONG_KEY] [i64 expire_at, if HAS_EXPIRE]
//!         payload: i64 (INT) | val_len bytes (EMBSTR, RAW, packed kinds) | Box<Entry> (BOXED)
//!         key bytes
//! ```
//!
//! The packed kinds hold a small collection in its compact encoding (an intset, a hash
//! listpack, a sorted-set listpack) right after the key's header, so such a key costs one
//! allocation instead of three (node, boxed entry, the collection's buffer): that is most of
//! what a small hash or set costs, and what lets them take less memory than in Valkey.
//!
//! Every word-sized field sits at a multiple of 8 (and `val_len` at a multiple of 2), so typed
//! aligned reads are valid.
//!
//! # Soundness
//!
//! - A `Node` is created only by [`Node::new`], which allocates exactly [`Shape::size`] bytes
//!   with 8-byte alignment and initializes every field the header declares. The header
//!   (`meta`, `key_len`, `val_len`) is never changed after creation except by
//!   [`Node::rewrite_in_place`], which only switches to a shape of the *same* size and
//!   re-initializes every field of the new shape; so the shape (and thus the `Layout`) is
//!   always recomputable from the header, which `Drop` uses to free the exact allocation.
//! - A `Node` is the unique owner of its allocation (it is not `Clone`/`Copy`); references
//!   handed out borrow the `Node`, so the borrow checker gives the usual `Box` aliasing
//!   guarantees. It is `Send` because it owns plain bytes and a `Box<Entry>`, both `Send`.
//! - It is `repr(transparent)` over its pointer, as a bucket slot requires
//!   ([`SlotItem`]): the table stores the bare pointer and lends the slot out as the node.
//! - A BOXED payload stores a `Box<Entry>` turned into a raw pointer; it is turned back into
//!   a `Box` exactly once, when the payload is replaced or the node is dropped.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

use crate::db::{Entry, NO_EXPIRE};
use crate::types::bucket_table::SlotItem;

const HEADER: usize = 8;
const OFF_ACCESS: usize = 0;
const OFF_META: usize = 4;
const OFF_KEY_LEN: usize = 5;
const OFF_VAL_LEN: usize = 6;

const KIND_MASK: u8 = 0b1111;
const HAS_EXPIRE: u8 = 1 << 4;
/// `key_len` value meaning "the length is a usize after the header".
const LONG_KEY: u8 = u8::MAX;

/// Longest string stored inline in the node; longer ones are boxed.
pub const INLINE_MAX: usize = 128;

/// Largest packed collection stored inline in the node; larger ones are boxed (each change
/// of an inline value copies it, which stays cheap below this size).
pub const PACKED_MAX: usize = 4096;

/// How the value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A string with the "int" encoding, as an i64.
    Int = 0,
    /// A short string with the "embstr" encoding, its bytes inline.
    Embstr = 1,
    /// A short string with the "raw" encoding, its bytes inline.
    RawInline = 2,
    /// Anything else: a `Box<Entry>` holding the value, expiry and access stamp.
    Boxed = 3,
    /// A set's intset members at 16, 32 or 64 bits each.
    Intset16 = 4,
    Intset32 = 5,
    Intset64 = 6,
    /// A hash's listpack.
    HashPack = 7,
    /// A sorted set's listpack.
    ZsetPack = 8,
}

impl Kind {
    fn from_bits(bits: u8) -> Kind {
        match bits & KIND_MASK {
            0 => Kind::Int,
            1 => Kind::Embstr,
            2 => Kind::RawInline,
            4 => Kind::Intset16,
            5 => Kind::Intset32,
            6 => Kind::Intset64,
            7 => Kind::HashPack,
            8 => Kind::ZsetPack,
            _ => Kind::Boxed,
        }
    }

    /// Whether the payload is `val_len` bytes stored inline.
    fn is_bytes(self) -> bool {
        !matches!(self, Kind::Int | Kind::Boxed)
    }
}

/// The value a new or rewritten node stores.
pub enum Payload<'a> {
    Int(i64),
    Inline {
        bytes: &'a [u8],
        raw: bool,
    },
    /// A collection's compact encoding; `kind` is one of the packed kinds.
    Packed {
        kind: Kind,
        bytes: &'a [u8],
    },
    /// Access and expiry live in the box; the node's own fields are unused.
    Boxed(Box<Entry>),
}

/// A node's value, borrowed.
pub enum PayloadRef<'a> {
    Int(i64),
    Inline { bytes: &'a [u8], raw: bool },
    Packed { kind: Kind, bytes: &'a [u8] },
    Boxed(&'a Entry),
}

/// The sizes a header describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    kind: Kind,
    has_expire: bool,
    key_len: usize,
    val_len: usize,
}

impl Shape {
    fn long_key(self) -> bool {
        self.key_len >= LONG_KEY as usize
    }
    fn expire_offset(self) -> usize {
        HEADER + if self.long_key() { 8 } else { 0 }
    }
    fn payload_offset(self) -> usize {
        self.expire_offset() + if self.has_expire { 8 } else { 0 }
    }
    fn payload_len(self) -> usize {
        if self.kind.is_bytes() {
            self.val_len
        } else {
            8
        }
    }
    fn key_offset(self) -> usize {
        self.payload_offset() + self.payload_len()
    }
    fn size(self) -> usize {
        self.key_offset() + self.key_len
    }
    fn layout(self) -> Layout {
        // Sizes are bounded by a key length that already fits in memory plus a few words.
        Layout::from_size_align(self.size(), 8)
            .unwrap_or_else(|_| handle_alloc_error(Layout::new::<u64>()))
    }
    fn of(payload: &Payload<'_>, key_len: usize, expire_at: i64) -> Shape {
        let (kind, val_len) = match payload {
            Payload::Int(_) => (Kind::Int, 0),
            Payload::Inline { bytes, raw } => {
                assert!(bytes.len() <= INLINE_MAX, "inline string too long");
                (
                    if *raw { Kind::RawInline } else { Kind::Embstr },
                    bytes.len(),
                )
            }
            Payload::Packed { kind, bytes } => {
                assert!(
                    kind.is_bytes() && bytes.len() <= PACKED_MAX,
                    "bad packed payload"
                );
                (*kind, bytes.len())
            }
            Payload::Boxed(_) => (Kind::Boxed, 0),
        };
        Shape {
            kind,
            // A boxed entry keeps its expiry in the box.
            has_expire: kind != Kind::Boxed && expire_at != NO_EXPIRE,
            key_len,
            val_len,
        }
    }
}

/// An owned node; see the module documentation.
#[repr(transparent)]
pub struct Node(NonNull<u8>);

// SAFETY: a Node uniquely owns its allocation, which holds only bytes, Option<Node> (Send by
// induction) and a Box<Entry> (Entry is Send).
unsafe impl Send for Node {}

// SAFETY: `Node` is `repr(transparent)` over its pointer, owns the allocation and frees it in
// `Drop`.
unsafe impl SlotItem for Node {
    fn alloc_size(&self) -> usize {
        Node::alloc_size(self)
    }
}

impl Node {
    /// Allocates a node for `key`.
    pub fn new(key: &[u8], access: u32, expire_at: i64, payload: Payload<'_>) -> Node {
        let shape = Shape::of(&payload, key.len(), expire_at);
        let layout = shape.layout();
        // SAFETY: the layout has a non-zero size (at least HEADER bytes).
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            handle_alloc_error(layout);
        };
        let base = ptr.as_ptr();
        // SAFETY: `base` points to `shape.size()` writable bytes, 8-aligned; every offset
        // written below lies inside that size by construction of `Shape`, and word-sized
        // fields are at multiples of 8.
        unsafe {
            base.add(OFF_KEY_LEN).write(if shape.long_key() {
                LONG_KEY
            } else {
                key.len() as u8
            });
            if shape.long_key() {
                base.add(HEADER).cast::<usize>().write(key.len());
            }
            base.add(shape.key_offset())
                .copy_from_nonoverlapping(key.as_ptr(), key.len());
        }
        let mut node = Node(ptr);
        node.write_fields(shape, access, expire_at, payload);
        node
    }

    /// Writes meta, access, expiry and payload for `shape`, whose key length is the node's.
    fn write_fields(&mut self, shape: Shape, access: u32, expire_at: i64, payload: Payload<'_>) {
        let base = self.0.as_ptr();
        // SAFETY: the allocation has `shape.size()` bytes (callers guarantee the shape's size
        // is the allocation's size); offsets and alignment as in `new`.
        unsafe {
            base.add(OFF_ACCESS).cast::<u32>().write(access);
            base.add(OFF_META)
                .write(shape.kind as u8 | if shape.has_expire { HAS_EXPIRE } else { 0 });
            base.add(OFF_VAL_LEN)
                .cast::<u16>()
                .write(shape.val_len as u16);
            if shape.has_expire {
                base.add(shape.expire_offset())
                    .cast::<i64>()
                    .write(expire_at);
            }
            let at = base.add(shape.payload_offset());
            match payload {
                Payload::Int(n) => at.cast::<i64>().write(n),
                Payload::Inline { bytes, .. } | Payload::Packed { bytes, .. } => {
                    at.copy_from_nonoverlapping(bytes.as_ptr(), bytes.len())
                }
                Payload::Boxed(entry) => at.cast::<*mut Entry>().write(Box::into_raw(entry)),
            }
        }
    }

    fn shape(&self) -> Shape {
        let base = self.0.as_ptr();
        // SAFETY: the header bytes are initialized by `new` and the allocation is at least
        // HEADER bytes long (plus the long key length word when LONG_KEY is set).
        unsafe {
            let meta = base.add(OFF_META).read();
            let short = base.add(OFF_KEY_LEN).read();
            let key_len = if short == LONG_KEY {
                base.add(HEADER).cast::<usize>().read()
            } else {
                short as usize
            };
            Shape {
                kind: Kind::from_bits(meta),
                has_expire: meta & HAS_EXPIRE != 0,
                key_len,
                val_len: base.add(OFF_VAL_LEN).cast::<u16>().read() as usize,
            }
        }
    }

    /// The address, to recognise this node again later.
    pub fn addr(&self) -> NonNull<u8> {
        self.0
    }

    /// Bytes this node occupies in its allocation (before allocator rounding).
    pub fn alloc_size(&self) -> usize {
        self.shape().size()
    }

    pub fn kind(&self) -> Kind {
        self.shape().kind
    }

    pub fn key(&self) -> &[u8] {
        let shape = self.shape();
        // SAFETY: the key bytes were copied in by `new` at `key_offset` and never change; the
        // slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(self.0.as_ptr().add(shape.key_offset()), shape.key_len)
        }
    }

    fn boxed_ptr(&self, shape: Shape) -> *mut Entry {
        debug_assert_eq!(shape.kind, Kind::Boxed);
        // SAFETY: a BOXED node stores a pointer from Box::into_raw at the payload offset.
        unsafe {
            self.0
                .as_ptr()
                .add(shape.payload_offset())
                .cast::<*mut Entry>()
                .read()
        }
    }

    pub fn payload(&self) -> PayloadRef<'_> {
        let shape = self.shape();
        let at = shape.payload_offset();
        // SAFETY: the payload was written for this shape by `write_fields`.
        unsafe {
            match shape.kind {
                Kind::Int => PayloadRef::Int(self.0.as_ptr().add(at).cast::<i64>().read()),
                Kind::Embstr | Kind::RawInline => PayloadRef::Inline {
                    bytes: std::slice::from_raw_parts(self.0.as_ptr().add(at), shape.val_len),
                    raw: shape.kind == Kind::RawInline,
                },
                Kind::Boxed => PayloadRef::Boxed(&*self.boxed_ptr(shape)),
                kind => PayloadRef::Packed {
                    kind,
                    bytes: std::slice::from_raw_parts(self.0.as_ptr().add(at), shape.val_len),
                },
            }
        }
    }

    /// The boxed entry, when the value is boxed.
    pub fn boxed_mut(&mut self) -> Option<&mut Entry> {
        let shape = self.shape();
        // SAFETY: the pointer came from Box::into_raw and is owned by this node, which we
        // borrow mutably.
        (shape.kind == Kind::Boxed).then(|| unsafe { &mut *self.boxed_ptr(shape) })
    }

    pub fn access(&self) -> u32 {
        let shape = self.shape();
        if shape.kind == Kind::Boxed {
            // SAFETY: see `payload`.
            return unsafe { (*self.boxed_ptr(shape)).access };
        }
        // SAFETY: OFF_ACCESS holds the access stamp, 4-aligned.
        unsafe { self.0.as_ptr().add(OFF_ACCESS).cast::<u32>().read() }
    }

    /// Writes the access stamp (LRU clock or LFU counter) where it is kept.
    pub fn set_access(&mut self, access: u32) {
        if let Some(boxed) = self.boxed_mut() {
            boxed.access = access;
            return;
        }
        // SAFETY: OFF_ACCESS holds the access stamp, 4-aligned; the node is borrowed mutably.
        unsafe { self.0.as_ptr().add(OFF_ACCESS).cast::<u32>().write(access) }
    }

    pub fn expire_at(&self) -> i64 {
        let shape = self.shape();
        match shape.kind {
            // SAFETY: see `payload`.
            Kind::Boxed => unsafe { (*self.boxed_ptr(shape)).expire_at },
            // SAFETY: HAS_EXPIRE nodes store the expiry at `expire_offset`.
            _ if shape.has_expire => unsafe {
                self.0
                    .as_ptr()
                    .add(shape.expire_offset())
                    .cast::<i64>()
                    .read()
            },
            _ => NO_EXPIRE,
        }
    }

    pub fn has_expire(&self) -> bool {
        self.expire_at() != NO_EXPIRE
    }

    /// Replaces the value, expiry and access stamp, keeping the key. Reuses the
    /// allocation when the new contents have the same size; otherwise returns them unchanged
    /// so the caller can build a new node.
    pub fn rewrite_in_place<'p>(
        &mut self,
        access: u32,
        expire_at: i64,
        payload: Payload<'p>,
    ) -> Result<(), (u32, i64, Payload<'p>)> {
        let old = self.shape();
        let new = Shape::of(&payload, old.key_len, expire_at);
        if new.size() != old.size() {
            return Err((access, expire_at, payload));
        }
        if old.kind == Kind::Boxed {
            // SAFETY: the pointer came from Box::into_raw and is freed exactly once, here,
            // before the slot is overwritten below.
            drop(unsafe { Box::from_raw(self.boxed_ptr(old)) });
        }
        // Same key length and same total size: the key stays where it is (at the end).
        self.write_fields(new, access, expire_at, payload);
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let shape = self.shape();
        if shape.kind == Kind::Boxed {
            // SAFETY: freed exactly once, here.
            drop(unsafe { Box::from_raw(self.boxed_ptr(shape)) });
        }
        // SAFETY: allocated in `new` with exactly this layout (the shape never changes size).
        unsafe { dealloc(self.0.as_ptr(), shape.layout()) }
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("key", &self.key().escape_ascii().to_string())
            .field("kind", &self.kind())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{StrValue, Value};
    use proptest::prelude::*;

    fn boxed(s: &str) -> Box<Entry> {
        Box::new(Entry {
            value: Value::Str(StrValue::Raw(s.as_bytes().to_vec())),
            expire_at: 77,
            access: 9,
        })
    }

    #[test]
    fn typical_cache_entry_fits_32_bytes_and_48_with_a_ttl() {
        let inline = Payload::Inline {
            bytes: b"value:123456",
            raw: false,
        };
        let n = Node::new(b"key:123456", 1, NO_EXPIRE, inline);
        assert!(n.alloc_size() <= 32, "{}", n.alloc_size());
        let inline = Payload::Inline {
            bytes: b"value:123456",
            raw: false,
        };
        let n = Node::new(b"key:123456", 1, 1_700_000_000_000, inline);
        assert!(n.alloc_size() <= 48, "{}", n.alloc_size());
    }

    #[test]
    fn long_keys_and_boxed_values_round_trip() {
        let key = vec![b'k'; 1000];
        let n = Node::new(&key, 3, NO_EXPIRE, Payload::Boxed(boxed("big")));
        assert_eq!(n.key(), &key[..]);
        assert_eq!(n.expire_at(), 77);
        assert_eq!(n.access(), 9);
        assert!(
            matches!(n.payload(), PayloadRef::Boxed(e) if e.value == Value::Str(StrValue::Raw(b"big".to_vec())))
        );
    }

    #[derive(Debug, Clone)]
    enum P {
        Int(i64),
        Inline(Vec<u8>, bool),
        Boxed(String),
    }

    fn payload_strategy() -> impl Strategy<Value = P> {
        prop_oneof![
            any::<i64>().prop_map(P::Int),
            (
                proptest::collection::vec(any::<u8>(), 0..=INLINE_MAX),
                any::<bool>()
            )
                .prop_map(|(b, r)| P::Inline(b, r)),
            ".{0,20}".prop_map(P::Boxed),
        ]
    }

    fn as_payload(p: &P) -> Payload<'_> {
        match p {
            P::Int(n) => Payload::Int(*n),
            P::Inline(b, raw) => Payload::Inline {
                bytes: b,
                raw: *raw,
            },
            P::Boxed(s) => Payload::Boxed(boxed(s)),
        }
    }

    fn check(n: &Node, key: &[u8], access: u32, expire: i64, p: &P) {
        assert_eq!(n.key(), key);
        match (p, n.payload()) {
            (P::Int(a), PayloadRef::Int(b)) => assert_eq!(*a, b),
            (P::Inline(a, ra), PayloadRef::Inline { bytes, raw }) => {
                assert_eq!(&a[..], bytes);
                assert_eq!(*ra, raw);
            }
            (P::Boxed(s), PayloadRef::Boxed(e)) => {
                assert_eq!(e.value, Value::Str(StrValue::Raw(s.as_bytes().to_vec())));
            }
            (p, _) => panic!("payload mismatch for {p:?}"),
        }
        if !matches!(p, P::Boxed(_)) {
            assert_eq!(n.access(), access);
            assert_eq!(n.expire_at(), expire);
        }
    }

    proptest! {
        /// Every field reads back what was written, across creation and in-place rewrites
        /// that change kind, expiry and value length.
        #[test]
        fn fields_round_trip_through_rewrites(
            key in proptest::collection::vec(any::<u8>(), 0..400),
            steps in proptest::collection::vec((payload_strategy(), any::<u32>(), prop_oneof![Just(NO_EXPIRE), any::<i64>()]), 1..8),
        ) {
            let (p0, a0, e0) = &steps[0];
            let mut node = Node::new(&key, *a0, *e0, as_payload(p0));
            check(&node, &key, *a0, *e0, p0);
            for (p, a, e) in &steps[1..] {
                if let Err((a, e, payload)) = node.rewrite_in_place(*a, *e, as_payload(p)) {
                    node = Node::new(&key, a, e, payload);
                }
                check(&node, &key, *a, *e, p);
            }
        }
    }
}
