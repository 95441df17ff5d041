use super::*;
use proptest::prelude::*;

fn limits(fill: i64) -> ListLimits {
    ListLimits::new(fill, 0)
}

fn list_of(values: &[&str], fill: i64) -> ListValue {
    let mut l = ListValue::new();
    l.push_all(values, false, limits(fill));
    l
}

fn texts(l: &ListValue) -> Vec<String> {
    l.to_vecs()
        .into_iter()
        .map(|e| String::from_utf8(e).unwrap())
        .collect()
}

fn at(l: &ListValue, index: i64) -> Option<Vec<u8>> {
    let mut found = None;
    l.walk(l.index_of(index)?, false, |e| {
        found = Some(e.to_vec());
        false
    });
    found
}

#[test]
fn count_fill_converts_at_the_limit_and_back_at_half() {
    let mut l = list_of(&["a", "b", "c", "d", "e"], 5);
    assert_eq!(l.encoding(), "listpack");
    l.push(b"f", false, limits(5));
    assert_eq!(l.encoding(), "quicklist");
    assert_eq!(l.node_count(), 2);
    // Popping "f" drops its node: one node of 5 entries, more than half of 5.
    l.pop(false);
    l.shrink_check(limits(5));
    assert_eq!(l.encoding(), "quicklist");
    for _ in 0..2 {
        l.pop(true);
        l.shrink_check(limits(5));
    }
    assert_eq!(l.encoding(), "quicklist");
    l.pop(true);
    l.shrink_check(limits(5));
    assert_eq!(l.encoding(), "listpack");
    assert_eq!(texts(&l), ["d", "e"]);
}

#[test]
fn positions_walk_across_nodes() {
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    let mut l = ListValue::new();
    l.push_all(&values, false, limits(4));
    assert_eq!(l.encoding(), "quicklist");
    for (i, v) in values.iter().enumerate() {
        assert_eq!(at(&l, i as i64).unwrap(), v.as_bytes());
        assert_eq!(at(&l, i as i64 - 100).unwrap(), v.as_bytes());
    }
    let mut back = Vec::new();
    l.walk(99, true, |e| {
        back.push(e.to_vec());
        true
    });
    assert_eq!(back.len(), 100);
    assert_eq!(back[0], b"v99");
    l.delete_range(10, 50);
    assert_eq!(l.len(), 50);
    assert_eq!(at(&l, 10).unwrap(), b"v60");
    assert_eq!(l.remove(-2, b"v99"), 1);
    assert!(l.insert(b"v60", b"new", false, limits(4)));
    assert!(l.insert(b"v60", b"after", true, limits(4)));
    assert_eq!(at(&l, 10).unwrap(), b"new");
    assert_eq!(at(&l, 12).unwrap(), b"after");
    assert!(l.set(-1, b"last", limits(4)));
    assert_eq!(at(&l, -1).unwrap(), b"last");
    assert_eq!(texts(&l).len(), l.len());
    l.trim(Some((5, 7)));
    assert_eq!(texts(&l), ["v5", "v6", "v7"]);
}

#[test]
fn size_fill_converts_on_raw_bytes() {
    let big = "x".repeat(4000);
    let mut l = list_of(&[&big], -2);
    assert_eq!(l.encoding(), "listpack");
    l.push(big.as_bytes(), false, limits(-2));
    assert_eq!(l.encoding(), "listpack");
    l.push(big.as_bytes(), false, limits(-2));
    assert_eq!(l.encoding(), "quicklist");
    l.pop(false);
    l.shrink_check(limits(-2));
    assert_eq!(l.encoding(), "quicklist");
    l.pop(false);
    l.shrink_check(limits(-2));
    assert_eq!(l.encoding(), "listpack");
}

/// Every node within the depth of an end is raw; every node past it is compressed unless
/// compressing it did not pay.
fn assert_compression_invariant(l: &ListValue) {
    let Repr::Quick(q) = &l.repr else {
        return;
    };
    assert_eq!(
        q.nodes.iter().map(Node::len).sum::<usize>(),
        l.len,
        "node counts"
    );
    for (i, node) in q.nodes.iter().enumerate() {
        assert!(node.len() > 0, "empty node {i}");
        if q.is_inner(i) {
            assert!(
                node.is_compressed()
                    || matches!(
                        node,
                        Node::Raw {
                            incompressible: true,
                            ..
                        }
                    ),
                "inner node {i} of {} left raw (depth {})",
                q.nodes.len(),
                q.depth
            );
        } else {
            assert!(!node.is_compressed(), "end node {i} compressed");
        }
    }
}

#[test]
fn inner_nodes_compress_and_memory_drops() {
    let values: Vec<String> = (0..2000)
        .map(|i| format!("element-number-{i}-padding-padding"))
        .collect();
    let mut plain = ListValue::new();
    plain.push_all(&values, false, ListLimits::new(-2, 0));
    let mut packed = ListValue::new();
    packed.push_all(&values, false, ListLimits::new(-2, 1));
    assert_compression_invariant(&packed);
    let stats = packed.quicklist_stats().unwrap();
    assert_eq!(stats.compressed_nodes, stats.nodes - 2);
    assert_eq!(stats.raw_bytes, plain.quicklist_stats().unwrap().raw_bytes);
    assert!(
        packed.heap_size() * 2 < plain.heap_size(),
        "{} vs {}",
        packed.heap_size(),
        plain.heap_size()
    );
    assert_eq!(packed.to_vecs(), plain.to_vecs());
    // Reads leave compressed nodes compressed.
    assert_eq!(at(&packed, 1000).unwrap(), values[1000].as_bytes());
    assert_eq!(
        packed.quicklist_stats().unwrap().compressed_nodes,
        stats.nodes - 2
    );
    // Nodes too small to compress stay raw.
    let mut small = ListValue::new();
    small.push_all(
        &["a", "b", "c", "d", "e", "f"],
        false,
        ListLimits::new(2, 1),
    );
    assert_eq!(small.quicklist_stats().unwrap().compressed_nodes, 0);
    assert_compression_invariant(&small);
}

#[derive(Debug, Clone)]
enum Op {
    Push(Vec<String>, bool),
    Pop(bool),
    Set(i64, String),
    Insert(usize, String, bool),
    Remove(i64, usize),
    Trim(i64, i64),
    Index(i64),
    Range(usize, usize, bool),
}

fn element() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..200).prop_map(|n| n.to_string()),
        (0usize..6).prop_map(|n| format!("word{n}")),
        (0usize..4, 20usize..90).prop_map(|(n, len)| format!("{n}").repeat(len)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (proptest::collection::vec(element(), 1..12), any::<bool>()).prop_map(|(v, f)| Op::Push(v, f)),
        2 => any::<bool>().prop_map(Op::Pop),
        2 => (-40i64..40, element()).prop_map(|(i, v)| Op::Set(i, v)),
        2 => (0usize..60, element(), any::<bool>()).prop_map(|(p, v, a)| Op::Insert(p, v, a)),
        1 => (-3i64..4, 0usize..60).prop_map(|(c, p)| Op::Remove(c, p)),
        1 => (-50i64..50, -50i64..50).prop_map(|(a, b)| Op::Trim(a, b)),
        1 => (-60i64..60).prop_map(Op::Index),
        1 => (0usize..60, 0usize..30, any::<bool>()).prop_map(|(s, n, r)| Op::Range(s, n, r)),
    ]
}

/// LTRIM's clamping, as the command does it.
fn clamp(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

fn run_model(fill: i64, depth: i64, ops: &[Op]) {
    let limits = ListLimits::new(fill, depth);
    let mut list = ListValue::new();
    let mut model: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        match op {
            Op::Push(values, front) => {
                list.push_all(values, *front, limits);
                for v in values {
                    if *front {
                        model.insert(0, v.clone().into_bytes());
                    } else {
                        model.push(v.clone().into_bytes());
                    }
                }
            }
            Op::Pop(front) => {
                let expected = if model.is_empty() {
                    None
                } else if *front {
                    Some(model.remove(0))
                } else {
                    model.pop()
                };
                assert_eq!(list.pop(*front), expected);
                list.shrink_check(limits);
            }
            Op::Set(index, v) => {
                let len = model.len() as i64;
                let i = if *index < 0 { len + index } else { *index };
                let ok = (0..len).contains(&i);
                assert_eq!(list.set(*index, v.as_bytes(), limits), ok);
                if ok {
                    model[i as usize] = v.clone().into_bytes();
                }
                list.shrink_check(limits);
            }
            Op::Insert(pick, v, after) => {
                let pivot = model
                    .get(*pick)
                    .cloned()
                    .unwrap_or_else(|| b"missing".to_vec());
                let found = model.iter().position(|e| *e == pivot);
                assert_eq!(
                    list.insert(&pivot, v.as_bytes(), *after, limits),
                    found.is_some()
                );
                if let Some(p) = found {
                    model.insert(p + usize::from(*after), v.clone().into_bytes());
                }
            }
            Op::Remove(count, pick) => {
                let Some(value) = model.get(*pick).cloned() else {
                    continue;
                };
                let limit = if *count == 0 {
                    usize::MAX
                } else {
                    count.unsigned_abs() as usize
                };
                let mut removed = 0;
                if *count >= 0 {
                    let mut i = 0;
                    while i < model.len() && removed < limit {
                        if model[i] == value {
                            model.remove(i);
                            removed += 1;
                        } else {
                            i += 1;
                        }
                    }
                } else {
                    let mut i = model.len();
                    while i > 0 && removed < limit {
                        i -= 1;
                        if model[i] == value {
                            model.remove(i);
                            removed += 1;
                        }
                    }
                }
                assert_eq!(list.remove(*count, &value), removed);
                list.shrink_check(limits);
            }
            Op::Trim(start, stop) => {
                let keep = clamp(*start, *stop, model.len());
                list.trim(keep);
                model = match keep {
                    Some((a, b)) => model[a..=b].to_vec(),
                    None => Vec::new(),
                };
                list.shrink_check(limits);
            }
            Op::Index(index) => {
                let len = model.len() as i64;
                let i = if *index < 0 { len + index } else { *index };
                let expected = (0..len).contains(&i).then(|| model[i as usize].clone());
                assert_eq!(at(&list, *index), expected);
            }
            Op::Range(start, n, reverse) => {
                let mut got = Vec::new();
                list.walk(*start, *reverse, |e| {
                    got.push(e.to_vec());
                    got.len() < *n
                });
                let expected: Vec<Vec<u8>> = if *start >= model.len() || *n == 0 {
                    if *start < model.len() {
                        vec![model[*start].clone()]
                    } else {
                        Vec::new()
                    }
                } else if *reverse {
                    model[..=*start].iter().rev().take(*n).cloned().collect()
                } else {
                    model[*start..].iter().take(*n).cloned().collect()
                };
                assert_eq!(got, expected);
            }
        }
        assert_eq!(list.len(), model.len());
        assert_eq!(list.to_vecs(), model, "after {op:?}");
        assert_compression_invariant(&list);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn matches_a_vec_model(
        fill in prop_oneof![Just(-1i64), 2i64..6],
        depth in 0i64..4,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run_model(fill, depth, &ops);
    }
}
