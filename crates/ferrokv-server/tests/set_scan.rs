//! SSCAN over a `hashtable` set through the server: a full iteration of a stable set returns
//! each member once in several calls; members present for the whole iteration are returned
//! while other members are added and removed between calls (the table grows and shrinks).

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{RawClient, split_elements, start_ferrokv};

fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    let start = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("bulk header")
        + 2;
    reply[start..reply.len() - 2].to_vec()
}

fn sscan_call(client: &mut RawClient, cursor: u64, extra: &[&str]) -> (u64, Vec<Vec<u8>>) {
    let cursor_arg = cursor.to_string();
    let mut args = vec!["SSCAN", "s", cursor_arg.as_str()];
    args.extend_from_slice(extra);
    let reply = client.command(&args);
    let (_, parts) = split_elements(&reply).expect("SSCAN reply");
    assert_eq!(parts.len(), 2, "SSCAN reply: {}", reply.escape_ascii());
    let next = String::from_utf8(bulk_payload(&parts[0]))
        .expect("cursor text")
        .parse()
        .expect("cursor number");
    let (_, members) = split_elements(&parts[1]).expect("members array");
    (next, members.iter().map(|m| bulk_payload(m)).collect())
}

fn add(client: &mut RawClient, range: std::ops::Range<usize>, prefix: &str) {
    let mut args = vec!["SADD".to_string(), "s".to_string()];
    args.extend(range.map(|i| format!("{prefix}{i}")));
    assert!(client.command(&args).starts_with(b":"));
}

#[test]
fn stable_set_is_scanned_once_per_member() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    add(&mut client, 0..1000, "m");
    assert_eq!(
        client.command(&["OBJECT", "ENCODING", "s"]),
        b"$9\r\nhashtable\r\n"
    );
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let (mut cursor, mut calls) = (0, 0);
    loop {
        let (next, members) = sscan_call(&mut client, cursor, &["COUNT", "20"]);
        for m in members {
            *seen.entry(m).or_insert(0) += 1;
        }
        calls += 1;
        assert!(calls < 10_000, "SSCAN did not finish");
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert!(calls > 10, "COUNT 20 over 1000 members took {calls} calls");
    assert_eq!(seen.len(), 1000);
    assert!(
        seen.values().all(|&n| n == 1),
        "a member was returned twice"
    );

    let (_, matched) = sscan_call(&mut client, 0, &["COUNT", "100000", "MATCH", "m99*"]);
    let matched: BTreeSet<Vec<u8>> = matched.into_iter().collect();
    let expected: BTreeSet<Vec<u8>> = ["m99", "m990", "m991", "m992", "m993", "m994", "m995"]
        .iter()
        .chain(&["m996", "m997", "m998", "m999"])
        .map(|s| s.as_bytes().to_vec())
        .collect();
    assert_eq!(matched, expected);
}

#[test]
fn members_present_throughout_are_returned_while_the_set_resizes() {
    let server = start_ferrokv(&[]);
    let mut client = RawClient::connect(server.port).expect("connect");
    add(&mut client, 0..300, "stay");
    let mut seen = BTreeSet::new();
    let (mut cursor, mut calls) = (0, 0);
    loop {
        let (next, members) = sscan_call(&mut client, cursor, &["COUNT", "5"]);
        seen.extend(members);
        calls += 1;
        assert!(calls < 100_000, "SSCAN did not finish");
        // Grow the set eightfold, then shrink it back, during the iteration.
        match calls {
            5 => add(&mut client, 0..2100, "tmp"),
            40 => {
                let mut args = vec!["SREM".to_string(), "s".to_string()];
                args.extend((0..2100).map(|i| format!("tmp{i}")));
                client.command(&args);
            }
            _ => {}
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    for i in 0..300 {
        assert!(
            seen.contains(format!("stay{i}").as_bytes()),
            "stay{i} was never returned"
        );
    }
}
