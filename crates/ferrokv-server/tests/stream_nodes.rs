//! A large deterministic stream built the same way on ferrokv and on the oracle: appends
//! of varied sizes and shapes (so nodes are cut by bytes and by entry count), scattered and
//! consecutive deletions (tombstones, freed nodes, appends into a node after the tail was
//! freed), exact and approximate trims. XINFO STREAM (node count, radix tree nodes, IDs and
//! counters) and full range reads in both directions must match byte for byte.

mod common;

use common::{RawClient, encode, show, start_ferrokv, start_valkey};

/// A small deterministic generator (xorshift), so both servers get the same commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn script() -> Vec<Vec<String>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut commands = Vec::new();
    let mut ids = Vec::new();
    let mut ms: u64 = 1000;
    for i in 0..6000u64 {
        ms += rng.pick(&[0, 0, 1, 5, 300, 70_000]);
        let id = format!("{ms}-{i}");
        ids.push(id.clone());
        let value = if i % 50 == 0 {
            (rng.next() as i64 % 1_000_000_000_000).to_string()
        } else {
            "x".repeat(rng.pick(&[1, 10, 60, 70, 200, 3000]))
        };
        let mut cmd = vec!["XADD".into(), "s".into(), id, "field".into(), value];
        if i % 7 == 0 {
            cmd.extend(["other".into(), "1".into()]);
        }
        commands.push(cmd);
    }
    for _ in 0..2000 {
        let id = ids[(rng.next() % ids.len() as u64) as usize].clone();
        commands.push(vec!["XDEL".into(), "s".into(), id]);
    }
    for id in &ids[5000..] {
        commands.push(vec!["XDEL".into(), "s".into(), id.clone()]);
    }
    for i in 0..300u64 {
        commands.push(vec![
            "XADD".into(),
            "s".into(),
            format!("{}-{i}", ms + 1),
            "field".into(),
            "tail".into(),
        ]);
    }
    commands.push(vec![
        "XTRIM".into(),
        "s".into(),
        "MAXLEN".into(),
        "~".into(),
        "2500".into(),
    ]);
    commands.push(vec![
        "XTRIM".into(),
        "s".into(),
        "MAXLEN".into(),
        "2000".into(),
    ]);
    commands
}

fn outcome(port: u16) -> Vec<String> {
    let mut client = RawClient::connect(port).expect("connect");
    let commands = script();
    for chunk in commands.chunks(500) {
        let mut batch = Vec::new();
        for cmd in chunk {
            batch.extend(encode(cmd));
        }
        client.send_raw(&batch);
        for _ in chunk {
            client.read_reply().expect("reply");
        }
    }
    [
        &["XINFO", "STREAM", "s"][..],
        &["XRANGE", "s", "-", "+"],
        &["XREVRANGE", "s", "+", "-", "COUNT", "700"],
        &["XRANGE", "s", "(5000", "(90000000", "COUNT", "50"],
    ]
    .iter()
    .map(|cmd| show(&client.command(cmd)))
    .collect()
}

#[test]
fn node_layout_and_reads_match_the_oracle() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let ours = outcome(ferrokv.port);
    let theirs = outcome(valkey.port);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            a == b,
            "read {i} differs:\n   ferrokv: {:.600}\n    valkey: {:.600}",
            a,
            b
        );
    }
}
