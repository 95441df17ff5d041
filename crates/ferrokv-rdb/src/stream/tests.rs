use super::*;
use crate::error::RdbErrorKind;
use ferrokv_store::types::stream::{NodeLimits, TrimTo};

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn encode(s: &Stream, target: Target) -> Vec<u8> {
    let mut e = Encoder::new(true);
    write_stream(&mut e, s, target);
    e.buf
}

fn decode(bytes: &[u8], type_byte: u8) -> RdbResult<Stream> {
    let mut d = Decoder::new(bytes);
    let s = read_stream(&mut d, type_byte)?;
    assert_eq!(d.offset(), bytes.len() as u64, "payload not consumed");
    Ok(s)
}

/// A stream with many entries of varying shapes, cut into nodes by both limits, with
/// scattered deletions, a trim, and two groups with pending entries and consumers.
fn busy_stream() -> Stream {
    let limits = NodeLimits {
        max_bytes: 600,
        max_entries: 20,
    };
    let mut s = Stream::new();
    let mut ms = 1_700_000_000_000;
    for i in 0..500u64 {
        ms += [0, 0, 1, 7, 100_000][(i % 5) as usize];
        let value = if i % 3 == 0 {
            (i as i64 * -7919).to_string().into_bytes()
        } else {
            vec![b'a' + (i % 26) as u8; (i % 90) as usize]
        };
        let mut pairs: Vec<Vec<u8>> = vec![b"field".to_vec(), value];
        if i % 11 == 0 {
            pairs.push(b"extra".to_vec());
            pairs.push(i.to_string().into_bytes());
        }
        s.append(id(ms, i), &pairs, limits);
    }
    let ids: Vec<StreamId> = s
        .range(StreamId::ZERO, StreamId::MAX, false)
        .map(|e| e.id())
        .collect();
    let doomed: Vec<StreamId> = ids.iter().copied().step_by(7).collect();
    s.delete(&doomed);
    s.trim(TrimTo::MaxLen(400), false, 0);

    let mut g = ConsumerGroup::new(ids[250], 251);
    let (alice, _) = g.consumer_or_create(b"alice", 1_000);
    let (bob, _) = g.consumer_or_create(b"bob", 2_000);
    g.consumer_or_create(b"idle", 3_000);
    for (n, pending_id) in ids[200..250].iter().enumerate() {
        g.deliver(
            *pending_id,
            if n % 3 == 0 { &bob } else { &alice },
            5_000 + n as i64,
        );
    }
    if let Some(c) = g.consumer_mut(b"alice") {
        c.active_time = 4_000;
    }
    if let Some(p) = g.pending.get_mut(&ids[201]) {
        p.delivery_count = 9;
    }
    s.groups.insert(b"workers".to_vec().into_boxed_slice(), g);
    s.groups.insert(
        b"fresh".to_vec().into_boxed_slice(),
        ConsumerGroup::new(StreamId::ZERO, UNKNOWN_ENTRIES_READ),
    );
    s
}

#[test]
fn streams_round_trip_in_both_layouts() {
    let s = busy_stream();
    assert!(s.node_count() > 20, "several nodes: {}", s.node_count());
    let back = decode(&encode(&s, Target::Valkey80), kind::STREAM_LISTPACKS_3).expect("decodes");
    assert!(back == s, "type 21 round trip differs");

    // Type 19 has no active time: it reads back as the seen time, as in Valkey.
    let mut expected = s.clone();
    for group in expected.groups.values_mut() {
        for consumer in group.consumers.values_mut() {
            consumer.active_time = consumer.seen_time;
        }
    }
    let back = decode(&encode(&s, Target::Rdb10), kind::STREAM_LISTPACKS_2).expect("decodes");
    assert!(back == expected, "type 19 round trip differs");
}

#[test]
fn empty_and_group_only_streams_round_trip() {
    let mut s = Stream::new();
    s.last_id = id(5, 5);
    s.entries_added = 3;
    s.max_deleted_id = id(5, 5);
    s.groups.insert(
        b"g".to_vec().into_boxed_slice(),
        ConsumerGroup::new(id(5, 5), 3),
    );
    let back = decode(&encode(&s, Target::Valkey80), kind::STREAM_LISTPACKS_3).expect("decodes");
    assert!(back == s);
}

#[test]
fn type_15_rebuilds_the_counters() {
    let mut s = busy_stream();
    // Type 15 is type 19 without first-id, max-deleted, entries-added and entries-read.
    let mut e = Encoder::new(false);
    e.length(s.node_count() as u64);
    for node in s.nodes() {
        e.string(&id_key(node.first_id()));
        e.string(&node_to_listpack(node));
    }
    e.length(s.len());
    write_id(&mut e, s.last_id);
    e.length(0);
    let back = decode(&e.buf, kind::STREAM_LISTPACKS).expect("decodes");
    s.groups.clear();
    assert_eq!(back.len(), s.len());
    assert_eq!(
        back.first_id,
        s.first_entry().map(|e| e.id()).expect("entries")
    );
    assert_eq!(back.entries_added, s.len());
    assert_eq!(back.max_deleted_id, StreamId::ZERO);
}

/// Flips or cuts a valid payload in many places: every result is an error or a stream,
/// never a panic, and errors point inside the payload.
#[test]
fn damaged_payloads_fail_cleanly() {
    let s = busy_stream();
    let good = encode(&s, Target::Valkey80);
    for cut in (0..good.len()).step_by(97) {
        let err = decode(&good[..cut], kind::STREAM_LISTPACKS_3).expect_err("truncated");
        assert!(err.offset <= cut as u64, "{err}");
    }
    for at in (0..good.len()).step_by(13) {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        let mut d = Decoder::new(&bad[..]);
        let _ = read_stream(&mut d, kind::STREAM_LISTPACKS_3);
    }
}

/// A one-node stream with a group whose PEL and consumers are written by `pel`.
fn with_group(pel: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut s = Stream::new();
    s.append(id(1, 1), &[&b"f"[..], b"v"], NodeLimits::default());
    s.append(id(1, 2), &[&b"f"[..], b"w"], NodeLimits::default());
    let mut e = Encoder::new(false);
    write_stream(&mut e, &s, Target::Valkey80);
    // Replace the trailing group count (0) with one group.
    e.buf.pop();
    e.length(1);
    e.string(b"g");
    write_id(&mut e, id(1, 2));
    e.length(2);
    pel(&mut e);
    e.buf
}

fn pel_entry(e: &mut Encoder, entry: StreamId) {
    e.bytes(&id_key(entry));
    e.i64_le(1234);
    e.length(1);
}

fn consumer(e: &mut Encoder, name: &[u8], owned: &[StreamId]) {
    e.string(name);
    e.i64_le(1);
    e.i64_le(2);
    e.length(owned.len() as u64);
    for entry in owned {
        e.bytes(&id_key(*entry));
    }
}

fn corruption(bytes: &[u8]) -> &'static str {
    match decode(bytes, kind::STREAM_LISTPACKS_3) {
        Err(RdbError {
            kind: RdbErrorKind::Corrupt(what),
            ..
        }) => what,
        other => panic!("expected corruption, got {:?}", other.map(|s| s.len())),
    }
}

#[test]
fn inconsistent_groups_are_refused() {
    let valid = with_group(|e| {
        e.length(1);
        pel_entry(e, id(1, 1));
        e.length(1);
        consumer(e, b"c", &[id(1, 1)]);
    });
    let s = decode(&valid, kind::STREAM_LISTPACKS_3).expect("valid");
    assert_eq!(&*s.groups[&b"g"[..]].pending[&id(1, 1)].consumer, b"c");

    let orphan = with_group(|e| {
        e.length(1);
        pel_entry(e, id(1, 1));
        e.length(0);
    });
    assert_eq!(corruption(&orphan), "group PEL entry without a consumer");
    let missing = with_group(|e| {
        e.length(0);
        e.length(1);
        consumer(e, b"c", &[id(1, 1)]);
    });
    assert_eq!(
        corruption(&missing),
        "consumer PEL entry missing from the group PEL"
    );
    let twice = with_group(|e| {
        e.length(1);
        pel_entry(e, id(1, 1));
        e.length(2);
        consumer(e, b"a", &[id(1, 1)]);
        consumer(e, b"b", &[id(1, 1)]);
    });
    assert_eq!(corruption(&twice), "PEL entry owned twice");
    let duplicate_consumer = with_group(|e| {
        e.length(0);
        e.length(2);
        consumer(e, b"a", &[]);
        consumer(e, b"a", &[]);
    });
    assert_eq!(corruption(&duplicate_consumer), "duplicate consumer");
    let duplicate_pel = with_group(|e| {
        e.length(2);
        pel_entry(e, id(1, 1));
        pel_entry(e, id(1, 1));
    });
    assert_eq!(corruption(&duplicate_pel), "duplicate entry in a group PEL");
}

#[test]
fn inconsistent_streams_are_refused() {
    let mut s = Stream::new();
    s.append(id(1, 1), &[&b"f"[..], b"v"], NodeLimits::default());
    s.append(id(9, 0), &[&b"f"[..], b"v"], NodeLimits::default());
    let node = s.nodes().next().expect("one node");
    let blob = node_to_listpack(node);
    let payload = |key: StreamId, length: u64, last: StreamId, added: u64| {
        let mut e = Encoder::new(false);
        e.length(1);
        e.string(&id_key(key));
        e.string(&blob);
        e.length(length);
        write_id(&mut e, last);
        write_id(&mut e, id(1, 1));
        write_id(&mut e, StreamId::ZERO);
        e.length(added);
        e.length(0);
        e.buf
    };
    assert!(decode(&payload(id(1, 1), 2, id(9, 0), 2), kind::STREAM_LISTPACKS_3).is_ok());
    assert_eq!(
        corruption(&payload(id(1, 1), 3, id(9, 0), 3)),
        "stream length differs from its entries"
    );
    assert_eq!(
        corruption(&payload(id(1, 1), 2, id(8, 0), 2)),
        "stream last ID below an entry"
    );
    assert_eq!(
        corruption(&payload(id(1, 1), 2, id(9, 0), 1)),
        "stream entries-added below its length"
    );
    // Two nodes whose IDs overlap.
    let mut e = Encoder::new(false);
    e.length(2);
    for _ in 0..2 {
        e.string(&id_key(id(1, 1)));
        e.string(&blob);
    }
    assert_eq!(corruption(&e.buf), "stream nodes out of order");
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(
        type_byte in proptest::sample::select(vec![15u8, 19, 21]),
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
    ) {
        let mut d = Decoder::new(&bytes[..]);
        let _ = read_stream(&mut d, type_byte);
    }

    #[test]
    fn listpack_garbage_never_panics(
        elems in proptest::collection::vec(
            proptest::sample::select(vec![
                &b"0"[..], b"1", b"2", b"3", b"-1", b"4", b"5", b"f", b"", b"9223372036854775807",
            ]),
            0..40,
        ),
    ) {
        // Structurally valid listpacks with arbitrary content reach the node checks.
        let mut lp = ferrokv_store::types::listpack::Listpack::new();
        for e in &elems {
            lp.push_back(e);
        }
        let _ = crate::stream_node::listpack_to_node(id(3, 3), &lp.to_blob());
    }
}
