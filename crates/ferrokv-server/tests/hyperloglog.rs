//! Differential tests of the HyperLogLog commands that a case file cannot express: 100k
//! random elements fed to ferrokv and the oracle (pipelined), with the HLL bytes and counts
//! compared along the way; values copied from the oracle into ferrokv; and randomly damaged
//! HLLs, which must get Valkey's replies and never bring the server down.

mod common;

use common::{RawClient, encode, show, start_ferrokv, start_valkey};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Random bytes of random length below `max_len`, often short (every MurmurHash tail).
    fn element(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Sends a batch of commands to one server in one write and reads every reply.
fn pipeline(client: &mut RawClient, commands: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in commands {
        out.extend(encode(c));
    }
    client.send_raw(&out);
    commands
        .iter()
        .map(|_| client.read_reply().expect("reply"))
        .collect()
}

fn cmd(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}

/// Runs the same batch on both servers and requires identical replies.
fn same_replies(ours: &mut RawClient, theirs: &mut RawClient, commands: &[Vec<Vec<u8>>]) {
    let a = pipeline(ours, commands);
    let b = pipeline(theirs, commands);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            x == y,
            "command {i} of {:?}\n   ferrokv: {}\n    valkey: {}",
            commands
                .iter()
                .map(|c| c.iter().map(|a| show(a)).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>(),
            show(x),
            show(y)
        );
    }
}

#[test]
fn hundred_thousand_random_elements_match_valkey() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let mut theirs = RawClient::connect(valkey.port).expect("connect valkey");
    let mut rng = Rng(0x4859_4c4c_0001_0203);
    for c in [&mut ours, &mut theirs] {
        c.command(&["FLUSHALL"]);
    }

    // "one" gets one element per PFADD, so each reply (changed or not) is compared through
    // the sparse stage; "many" gets ten per PFADD up to 100k elements.
    let mut added = 0usize;
    let mut next_check = 1usize;
    while added < 100_000 {
        let mut batch = Vec::new();
        for _ in 0..100 {
            let mut c = cmd(&[b"PFADD", b"many"]);
            for _ in 0..10 {
                c.push(rng.element(24));
            }
            batch.push(c);
            if added < 3000 {
                batch.push(vec![b"PFADD".to_vec(), b"one".to_vec(), rng.element(12)]);
            }
            added += 10;
        }
        same_replies(&mut ours, &mut theirs, &batch);
        if added >= next_check {
            next_check *= 2;
            same_replies(
                &mut ours,
                &mut theirs,
                &[
                    cmd(&[b"GET", b"many"]),
                    cmd(&[b"GET", b"one"]),
                    cmd(&[b"PFCOUNT", b"many"]),
                    cmd(&[b"PFCOUNT", b"one"]),
                    cmd(&[b"GET", b"many"]),
                    cmd(&[b"PFCOUNT", b"many", b"one"]),
                    cmd(&[b"PFDEBUG", b"ENCODING", b"one"]),
                ],
            );
        }
    }
    same_replies(
        &mut ours,
        &mut theirs,
        &[
            cmd(&[b"PFCOUNT", b"many"]),
            cmd(&[b"GET", b"many"]),
            cmd(&[b"PFMERGE", b"merged", b"one", b"many"]),
            cmd(&[b"GET", b"merged"]),
            cmd(&[b"PFCOUNT", b"merged"]),
            cmd(&[b"PFMERGE", b"one"]),
            cmd(&[b"GET", b"one"]),
        ],
    );

    // Copied from the oracle: its bytes under a new key in ferrokv count the same, and keep
    // matching as both grow.
    for key in [&b"many"[..], b"one"] {
        let bytes = theirs.command(&[&b"GET"[..], key]);
        let value = bulk_payload(&bytes);
        assert_eq!(
            ours.command(&[&b"SET"[..], b"copied", value]),
            b"+OK\r\n".to_vec()
        );
        theirs.command(&[&b"SET"[..], b"copied", value]);
        let mut batch = vec![cmd(&[b"PFCOUNT", b"copied"])];
        for _ in 0..50 {
            batch.push(vec![b"PFADD".to_vec(), b"copied".to_vec(), rng.element(16)]);
        }
        batch.push(cmd(&[b"GET", b"copied"]));
        batch.push(cmd(&[b"PFCOUNT", b"copied", key]));
        same_replies(&mut ours, &mut theirs, &batch);
    }
}

/// The payload of a RESP bulk-string reply.
fn bulk_payload(reply: &[u8]) -> &[u8] {
    let start = reply.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
    &reply[start..reply.len().saturating_sub(2)]
}

/// Whether a sparse HLL's last opcode is a two-byte XZERO cut after its first byte.
fn ends_in_truncated_xzero(value: &[u8]) -> bool {
    if value.get(4) != Some(&1) {
        return false;
    }
    let mut at = 16;
    while at < value.len() {
        let xzero = value[at] & 0xc0 == 0x40;
        if xzero && at + 1 == value.len() {
            return true;
        }
        at += if xzero { 2 } else { 1 };
    }
    false
}

#[test]
fn damaged_hlls_get_valkeys_replies() {
    let ferrokv = start_ferrokv(&["--enable-debug-command", "yes"]);
    let valkey = start_valkey(&["--enable-debug-command", "yes"]);
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let mut theirs = RawClient::connect(valkey.port).expect("connect valkey");
    let mut rng = Rng(0xbad_4859_4c4c_0042);

    // Real HLLs from the oracle to damage: sparse of several sizes, and dense.
    let mut originals = Vec::new();
    for (i, n) in [0usize, 1, 3, 20, 200, 1500, 3000].into_iter().enumerate() {
        let key = format!("src{i}");
        let mut c = vec![b"PFADD".to_vec(), key.clone().into_bytes()];
        for _ in 0..n {
            c.push(rng.element(10));
        }
        theirs.command(&c);
        let reply = theirs.command(&[b"GET", key.as_bytes()]);
        originals.push(bulk_payload(&reply).to_vec());
    }

    for round in 0..500 {
        let mut value = originals[rng.below(originals.len())].clone();
        let body = 16..value.len();
        match rng.below(6) {
            // Flip a few bytes past the header (the header's checks are in the case file).
            0..=2 => {
                for _ in 0..1 + rng.below(4) {
                    if !body.is_empty() {
                        let at = body.start + rng.below(body.len());
                        value[at] = rng.next() as u8;
                    }
                }
            }
            // Cut the opcodes short.
            3 => value.truncate(16 + rng.below(value.len() - 15)),
            // Trailing garbage.
            4 => value.extend((0..1 + rng.below(4)).map(|_| rng.next() as u8)),
            // A damaged cache: valid or not, with any value.
            _ => {
                for b in &mut value[8..16] {
                    *b = rng.next() as u8;
                }
            }
        }
        if ends_in_truncated_xzero(&value) {
            // Valkey reads the missing byte from past the end of its buffer (the string's
            // terminator, or whatever an earlier update left there); ferrokv reads a zero.
            // A named difference, covered without a follow-up update in the case file.
            continue;
        }
        let elements: Vec<Vec<u8>> = (0..3).map(|_| rng.element(8)).collect();
        let mut batch = vec![
            vec![b"SET".to_vec(), b"k".to_vec(), value.clone()],
            vec![b"SET".to_vec(), b"k2".to_vec(), value],
            cmd(&[b"PFCOUNT", b"k", b"k"]),
            cmd(&[b"PFDEBUG", b"DECODE", b"k"]),
            cmd(&[b"PFCOUNT", b"k"]),
            cmd(&[b"GET", b"k"]),
        ];
        let mut add = cmd(&[b"PFADD", b"k"]);
        add.extend(elements);
        batch.push(add);
        batch.extend([
            cmd(&[b"GET", b"k"]),
            cmd(&[b"PFCOUNT", b"k"]),
            cmd(&[b"PFMERGE", b"d", b"k2"]),
            cmd(&[b"GET", b"d"]),
            cmd(&[b"PFMERGE", b"k2"]),
            cmd(&[b"GET", b"k2"]),
            cmd(&[b"PFDEBUG", b"TODENSE", b"k"]),
            cmd(&[b"GET", b"k"]),
            cmd(&[b"DEL", b"d"]),
        ]);
        same_replies(&mut ours, &mut theirs, &batch);
        if round % 50 == 0 {
            assert_eq!(ours.command(&["PING"]), b"+PONG\r\n".to_vec());
        }
    }
    assert_eq!(ours.command(&["PING"]), b"+PONG\r\n".to_vec());
}
