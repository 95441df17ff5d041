//! Node-level access for the RDB codec: a quicklist is saved node by node (each node's
//! listpack, compressed or not, or a lone large element) and loaded back with the same node
//! boundaries, as Valkey does, so that the encoding after a load matches Valkey's.

use std::borrow::Cow;

use super::super::listpack::{Elem, Listpack};
use super::{FILL_MAX, ListLimits, ListValue, Node, Quick, Repr, exceeds_limit, is_large};

/// One node as a snapshot stores it.
pub enum SavedNode<'a> {
    /// A node whose only element is too large to share a node (Valkey's "plain" node).
    Plain(Cow<'a, Listpack>),
    /// A listpack node; `compressed` when it is held compressed in memory (Valkey then
    /// saves it LZF-compressed whatever `rdbcompression` says).
    Packed {
        lp: Cow<'a, Listpack>,
        compressed: bool,
    },
}

impl ListValue {
    /// The nodes in order (a listpack-encoded list is one node).
    pub fn saved_nodes(&self) -> Vec<SavedNode<'_>> {
        match &self.repr {
            Repr::Packed(lp) => vec![SavedNode::Packed {
                lp: Cow::Borrowed(lp),
                compressed: false,
            }],
            Repr::Quick(q) => q
                .nodes
                .iter()
                .map(|node| {
                    let lp = node.view();
                    let plain = lp.len() == 1
                        && lp.first().is_some_and(
                            |off| matches!(lp.get(off), Elem::Str(s) if is_large(q.fill, s.len())),
                        );
                    if plain {
                        SavedNode::Plain(lp)
                    } else {
                        SavedNode::Packed {
                            lp,
                            compressed: node.is_compressed(),
                        }
                    }
                })
                .collect(),
        }
    }

    /// A list made of `nodes` as loaded (empty ones dropped), shaped as Valkey shapes a
    /// loaded list: a quicklist keeping the nodes as they were saved, turned into a plain
    /// listpack when it has a single node within the `list-max-listpack-size` limit, with
    /// the nodes past `list-compress-depth` compressed.
    pub fn from_saved_nodes(nodes: Vec<Listpack>, limits: ListLimits) -> ListValue {
        let mut nodes: Vec<Listpack> = nodes.into_iter().filter(|lp| !lp.is_empty()).collect();
        let len = nodes.iter().map(Listpack::len).sum();
        if nodes.len() <= 1 {
            let lp = nodes.pop().unwrap_or_default();
            if !exceeds_limit(limits.fill, lp.bytes(), lp.len()) {
                return ListValue {
                    repr: Repr::Packed(lp),
                    len,
                };
            }
            nodes.push(lp);
        }
        let mut quick = Quick {
            nodes: nodes.into_iter().map(Node::new).collect(),
            fill: limits.fill.clamp(-5, FILL_MAX),
            depth: limits.compress_depth,
        };
        for i in 0..quick.nodes.len() {
            quick.settle(i);
        }
        ListValue {
            repr: Repr::Quick(quick),
            len,
        }
    }
}
