//! One quicklist node: a listpack, held raw or LZF-compressed (`list-compress-depth`).
//!
//! Valkey compresses a node only when its listpack has at least [`MIN_COMPRESS_BYTES`]
//! bytes, and keeps the compressed form only when it saves at least
//! [`MIN_COMPRESS_IMPROVE`] bytes. A compressed node still knows its element count and its
//! raw size, because the fill limits (and Valkey's merge decisions) are taken on those.

use std::borrow::Cow;

use super::super::listpack::{HEADER_AND_END, Listpack};
use super::super::lzf;

/// Smallest listpack (in Valkey's bytes) worth compressing.
const MIN_COMPRESS_BYTES: usize = 48;
/// Fewest bytes compression must save for the compressed form to be kept.
const MIN_COMPRESS_IMPROVE: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    /// `incompressible`: compression was tried on exactly this content and did not pay;
    /// cleared by any change, so the attempt is not repeated for nothing.
    Raw {
        lp: Listpack,
        incompressible: bool,
    },
    Lzf(Compressed),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Compressed {
    data: Box<[u8]>,
    /// Length of the listpack's entries once decompressed.
    raw_len: usize,
    count: u32,
}

impl Node {
    pub(super) fn new(lp: Listpack) -> Node {
        Node::Raw {
            lp,
            incompressible: false,
        }
    }

    /// Elements in the node.
    pub(super) fn len(&self) -> usize {
        match self {
            Node::Raw { lp, .. } => lp.len(),
            Node::Lzf(c) => c.count as usize,
        }
    }

    /// Size of the node's listpack as Valkey counts it, compressed or not.
    pub(super) fn bytes(&self) -> usize {
        match self {
            Node::Raw { lp, .. } => lp.bytes(),
            Node::Lzf(c) => HEADER_AND_END + c.raw_len,
        }
    }

    pub(super) fn heap_size(&self) -> usize {
        match self {
            Node::Raw { lp, .. } => lp.heap_size(),
            Node::Lzf(c) => c.data.len(),
        }
    }

    pub(super) fn is_compressed(&self) -> bool {
        matches!(self, Node::Lzf(_))
    }

    /// The listpack when the node is raw.
    pub(super) fn raw(&self) -> Option<&Listpack> {
        match self {
            Node::Raw { lp, .. } => Some(lp),
            Node::Lzf(_) => None,
        }
    }

    /// The node's listpack for reading: borrowed when raw, decompressed into a copy when
    /// not (the node itself stays compressed).
    pub(super) fn view(&self) -> Cow<'_, Listpack> {
        match self {
            Node::Raw { lp, .. } => Cow::Borrowed(lp),
            Node::Lzf(c) => Cow::Owned(c.expand()),
        }
    }

    /// The node's listpack for changing: decompressed in place first if needed.
    pub(super) fn open(&mut self) -> &mut Listpack {
        if let Node::Lzf(c) = self {
            *self = Node::new(c.expand());
        }
        match self {
            Node::Raw { lp, incompressible } => {
                *incompressible = false;
                lp
            }
            // Just made raw above.
            Node::Lzf(_) => unreachable!("node opened above"),
        }
    }

    /// Takes the listpack out, decompressing it if needed.
    pub(super) fn into_listpack(self) -> Listpack {
        match self {
            Node::Raw { lp, .. } => lp,
            Node::Lzf(c) => c.expand(),
        }
    }

    /// Compresses the node when that pays, as Valkey does for nodes past the depth.
    pub(super) fn compress(&mut self) {
        let Node::Raw { lp, incompressible } = self else {
            return;
        };
        if *incompressible {
            return;
        }
        let bytes = lp.bytes();
        let packed = (bytes >= MIN_COMPRESS_BYTES)
            .then(|| lzf::compress(lp.entries(), bytes - MIN_COMPRESS_IMPROVE - 1))
            .flatten();
        match packed {
            Some(data) => {
                *self = Node::Lzf(Compressed {
                    data: data.into_boxed_slice(),
                    raw_len: lp.entries().len(),
                    count: lp.len() as u32,
                })
            }
            None => *incompressible = true,
        }
    }
}

impl Compressed {
    fn expand(&self) -> Listpack {
        match lzf::decompress(&self.data, self.raw_len) {
            Some(buf) => Listpack::from_entries(buf, self.count),
            None => {
                // Only this module writes the data, so this would be a bug in the codec.
                debug_assert!(false, "corrupt compressed quicklist node");
                Listpack::new()
            }
        }
    }
}
