use super::*;

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn filled(n: u64, limits: NodeLimits) -> Stream {
    let mut s = Stream::new();
    for i in 1..=n {
        s.append(id(i, 0), &[&b"f"[..], b"v"], limits);
    }
    s
}

fn ids(range: Range<'_>) -> Vec<u64> {
    range.map(|e| e.id().ms).collect()
}

#[test]
fn nodes_are_cut_by_entry_count() {
    let s = filled(250, NodeLimits::default());
    assert_eq!(s.node_count(), 3);
    assert_eq!(s.len(), 250);
    assert_eq!(s.first_id, id(1, 0));
    assert_eq!(s.last_id, id(250, 0));
}

#[test]
fn nodes_are_cut_by_valkey_listpack_bytes() {
    let limits = NodeLimits {
        max_bytes: 100,
        max_entries: 0,
    };
    let s = filled(10, limits);
    // 7 + 11 bytes of master, 11 per entry: the 9th entry would make 7+11+88+2 >= 100.
    assert_eq!(s.node_count(), 2);
}

#[test]
fn ranges_walk_both_ways_across_nodes() {
    let s = filled(250, NodeLimits::default());
    assert_eq!(
        ids(s.range(id(98, 0), id(103, 0), false)),
        [98, 99, 100, 101, 102, 103]
    );
    assert_eq!(
        ids(s.range(id(98, 0), id(103, 0), true)),
        [103, 102, 101, 100, 99, 98]
    );
    assert_eq!(ids(s.range(id(249, 5), StreamId::MAX, false)), [250]);
    assert!(ids(s.range(id(5, 0), id(4, 0), false)).is_empty());
    assert_eq!(s.range(StreamId::ZERO, StreamId::MAX, true).count(), 250);
    let e = s.get(id(150, 0)).expect("present");
    assert_eq!(e.fields().collect::<Vec<_>>(), [(&b"f"[..], &b"v"[..])]);
}

#[test]
fn deletes_free_empty_nodes_and_track_ids() {
    let mut s = filled(150, NodeLimits::default());
    let first_node: Vec<StreamId> = (1..=100).map(|i| id(i, 0)).collect();
    assert_eq!(s.delete(&first_node[..50]), 50);
    assert_eq!(s.first_id, id(51, 0));
    assert_eq!(s.node_count(), 2);
    assert_eq!(s.delete(&first_node), 50);
    assert_eq!(s.node_count(), 1);
    assert_eq!(s.max_deleted_id, id(100, 0));
    assert_eq!(s.first_id, id(101, 0));
    assert_eq!(s.len(), 50);
    assert!(!s.contains(id(100, 0)));
    assert_eq!(ids(s.range(StreamId::ZERO, id(101, 0), false)), [101]);
}

#[test]
fn approximate_trim_removes_whole_nodes_only() {
    let mut s = filled(250, NodeLimits::default());
    assert_eq!(s.trim(TrimTo::MaxLen(180), true, 0), 0);
    assert_eq!(s.trim(TrimTo::MaxLen(100), true, 0), 100);
    assert_eq!(s.len(), 150);
    assert_eq!(s.trim(TrimTo::MaxLen(120), false, 0), 30);
    assert_eq!(s.first_id, id(131, 0));
    assert_eq!(s.trim(TrimTo::MinId(id(200, 0)), false, 0), 69);
    assert_eq!(s.first_id, id(200, 0));
    assert_eq!(s.len(), 51);
}

#[test]
fn read_counters_follow_valkey() {
    let mut s = filled(3, NodeLimits::default());
    assert_eq!(s.entries_read_at(StreamId::ZERO), Some(0));
    assert_eq!(s.entries_read_at(id(1, 0)), Some(1));
    assert_eq!(s.entries_read_at(id(2, 0)), None);
    assert_eq!(s.entries_read_at(id(3, 0)), Some(3));
    s.delete(&[id(2, 0)]);
    assert!(s.has_tombstones_from(id(1, 0)));
    assert!(!s.has_tombstones_from(id(3, 0)));
    let group = ConsumerGroup::new(id(1, 0), 1);
    assert_eq!(s.lag(&group), None);
}
