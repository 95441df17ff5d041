//! How many nodes Valkey's radix tree (`rax`) needs to index a set of stream node IDs, for
//! XINFO STREAM's `radix-tree-nodes`.
//!
//! Keys are 16-byte big-endian IDs. A rax node is a leaf (a key ends there), a branching
//! node (one byte per child), or a compressed node (a run of bytes shared by every key
//! below it). For a given key set the tree is the compressed trie, counted recursively over
//! the sorted keys.

use super::id::StreamId;

const KEY_LEN: usize = 16;

fn encode(id: StreamId) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key[..8].copy_from_slice(&id.ms.to_be_bytes());
    key[8..].copy_from_slice(&id.seq.to_be_bytes());
    key
}

fn common_prefix(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Nodes below (and including) the position `depth` bytes into `keys` (sorted, distinct,
/// sharing their first `depth` bytes).
fn count_below(keys: &[[u8; KEY_LEN]], depth: usize) -> usize {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return 0;
    };
    if keys.len() == 1 {
        // A compressed run to the end of the key, then the leaf.
        return if depth == KEY_LEN { 1 } else { 2 };
    }
    let branch_at = common_prefix(first, last);
    let mut total = usize::from(branch_at > depth) + 1;
    let mut start = 0;
    while start < keys.len() {
        let byte = keys[start][branch_at];
        let len = keys[start..]
            .iter()
            .take_while(|k| k[branch_at] == byte)
            .count();
        total += count_below(&keys[start..start + len], branch_at + 1);
        start += len;
    }
    total
}

/// Rax nodes for these keys (in ascending order); an empty rax has its root node.
pub fn node_count(ids: impl Iterator<Item = StreamId>) -> usize {
    let keys: Vec<[u8; KEY_LEN]> = ids.map(encode).collect();
    if keys.is_empty() {
        return 1;
    }
    count_below(&keys, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_trees() {
        assert_eq!(node_count(std::iter::empty()), 1);
        assert_eq!(node_count([StreamId::new(1, 1)].into_iter()), 2);
        // Two keys differing in the last byte: compressed prefix, branch, two leaves.
        assert_eq!(
            node_count([StreamId::new(1, 1), StreamId::new(1, 2)].into_iter()),
            4
        );
    }
}
