//! Streams in RDB against the reference servers, both ways, and whole dump.rdb files.
//!
//! - Streams built by commands on redis-server 7.0 and valkey-server 9.1 are DUMPed,
//!   decoded with `ferrokv_rdb::dump::restore`, checked against XRANGE, and encoded again:
//!   the payload must come out byte for byte as the server wrote it (type 19 for Redis 7.0,
//!   type 21 for Valkey 9), which checks every node conversion, counter and group field.
//! - Streams built with the store API (the same operations as a command script) are
//!   encoded by ferrokv and RESTOREd into both servers; XINFO STREAM FULL must equal that of
//!   the stream the server built from the script itself (delivery, seen and active times
//!   masked: they are wall-clock times), and the server's DUMP of it decodes back to the
//!   same stream.
//! - dump.rdb files with every type, from both servers, read end to end with
//!   `file::FileReader` (checksum included).

mod common;
#[path = "common/rdb_fixtures.rs"]
mod rdb_fixtures;

use common::{RawClient, show};
use ferrokv_rdb::decode::Decoder;
use ferrokv_rdb::dump::{self, RestoreError};
use ferrokv_rdb::encode::Encoder;
use ferrokv_rdb::file::{self as rdb_file, FileReader, Item};
use ferrokv_rdb::format::{self, Dialect};
use ferrokv_rdb::value::{self, ReadOptions, Target};
use ferrokv_store::types::stream::{ConsumerGroup, NodeLimits, Stream, StreamId, TrimTo};
use ferrokv_store::{Entry, StrValue, Value};
use rdb_fixtures::{Oracle, build_fixture, fixtures, run_all, start_oracle, start_oracle_loading};

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// The command script both sides build their streams from. Entry IDs are explicit so the
/// store side can follow; values vary in kind and size so every listpack encoding shows up
/// (small and large integers, strings of 6-, 12- and 32-bit lengths), nodes are cut by
/// entry count and by bytes, and groups see reads, acks, claims and idle consumers.
fn script() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for i in 0..700u64 {
        let ms = 1_000 + i / 3 * 17;
        let value = match i % 6 {
            0 => (i as i64 * -104_729).to_string(),
            1 => "v".repeat((i % 50) as usize + 1),
            2 => "w".repeat(70 + i as usize),
            3 => (i * 5_000_000_000).to_string(),
            4 => "z".repeat(if i % 60 == 4 { 5000 } else { 3 }),
            _ => i.to_string(),
        };
        let mut cmd = vec![
            "XADD".to_string(),
            "big".into(),
            format!("{ms}-{i}"),
            "field".into(),
            value,
        ];
        if i % 13 == 0 {
            cmd.extend(["other".into(), "o".into()]);
        }
        out.push(cmd);
    }
    for i in (0..700u64).step_by(9) {
        out.push(words(&format!("XDEL big {}-{i}", 1_000 + i / 3 * 17)));
    }
    out.push(words("XTRIM big MAXLEN = 560"));
    out.push(words("XTRIM big MAXLEN ~ 500"));
    out.push(words("XGROUP CREATE big g1 0 ENTRIESREAD 0"));
    out.push(words("XREADGROUP GROUP g1 alice COUNT 30 STREAMS big >"));
    out.push(words("XREADGROUP GROUP g1 bob COUNT 20 STREAMS big >"));
    out.push(words("XGROUP CREATECONSUMER big g1 idle"));
    out.push(words("XGROUP CREATE big g2 $ ENTRIESREAD 620"));
    out.push(words("XGROUP CREATE big g3 2000-0 ENTRIESREAD 42"));
    out.push(words("XREADGROUP GROUP g3 carol COUNT 5 STREAMS big >"));
    out
}

/// [`script`] with its stream key renamed.
fn script_on(key: &str) -> Vec<Vec<String>> {
    let mut script = script();
    for cmd in &mut script {
        let key_at = match cmd[0].as_str() {
            "XGROUP" => 2,
            "XREADGROUP" => cmd.len() - 2,
            _ => 1,
        };
        cmd[key_at] = key.into();
    }
    script
}

/// Keys built by commands only (the decode direction), with edge cases the store side
/// does not need to follow.
fn extra_script() -> Vec<Vec<String>> {
    let mut out = vec![
        words("XADD small 1-1 a 1 b hello"),
        words("XADD small 1-2 a 2 b x"),
        words("XADD small 2-0 c 3"),
        words("XADD emptied 5-1 a b"),
        words("XDEL emptied 5-1"),
        words("XGROUP CREATE emptied g 0"),
        words("XADD setid 1-1 a 1"),
        words("XSETID setid 100-5 ENTRIESADDED 50 MAXDELETEDID 10-0"),
        words("XADD wide 1-1 a b"),
        words("XADD wide 18446744073709551614-18446744073709551615 a b"),
        words("CONFIG SET stream-node-max-bytes 300"),
    ];
    for i in 0..100 {
        out.push(words(&format!(
            "XADD bytes {}-0 f {}",
            i + 1,
            "q".repeat(i % 40 + 1)
        )));
    }
    out.push(words("CONFIG SET stream-node-max-bytes 4096"));
    out
}

const KEYS: &[&str] = &["big", "small", "emptied", "setid", "wide", "bytes"];

/// The target a server's DUMP payloads correspond to.
fn target_of(oracle: Oracle) -> Target {
    match oracle {
        Oracle::Redis7 => Target::Rdb10,
        Oracle::Valkey9 => Target::Valkey80,
    }
}

fn restore_stream(payload: &[u8]) -> Stream {
    match dump::restore(payload, &ReadOptions::new(Dialect::Redis(10))) {
        Ok(Value::Stream(s)) => *s,
        Ok(other) => panic!("not a stream: {:?}", other.object_type()),
        Err(RestoreError::BadData(e)) => panic!("payload refused: {e}"),
        Err(e) => panic!("payload refused: {e:?}"),
    }
}

fn bulk(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// XRANGE key - + as the server would reply it, from the decoded stream.
fn xrange_reply(s: &Stream) -> Vec<u8> {
    let entries: Vec<_> = s.range(StreamId::ZERO, StreamId::MAX, false).collect();
    let mut out = format!("*{}\r\n", entries.len()).into_bytes();
    for entry in entries {
        out.extend_from_slice(b"*2\r\n");
        bulk(&mut out, &entry.id().to_bytes());
        let fields = entry.fields();
        out.extend_from_slice(format!("*{}\r\n", fields.len() * 2).as_bytes());
        for (f, v) in fields {
            bulk(&mut out, f);
            bulk(&mut out, v);
        }
    }
    out
}

fn payload_body(payload: &[u8]) -> &[u8] {
    &payload[..payload.len() - 10]
}

#[test]
fn oracle_dumps_decode_and_encode_back_byte_for_byte() {
    for oracle in Oracle::ALL {
        let server = start_oracle(oracle);
        let mut c = RawClient::connect(server.port).expect("connect");
        run_all(&mut c, &script());
        run_all(&mut c, &extra_script());
        for key in KEYS {
            let payload = c.command(&["DUMP", key]);
            let payload = bulk_payload(&payload);
            let stream = restore_stream(&payload);
            let context = format!("{} key {key}", oracle.name());

            assert_eq!(
                show(&xrange_reply(&stream)),
                show(&c.command(&["XRANGE", key, "-", "+"])),
                "{context}: XRANGE"
            );
            let info = c.command(&["XINFO", "STREAM", key]);
            let radix_keys = format!("$15\r\nradix-tree-keys\r\n:{}\r\n", stream.node_count());
            assert!(
                show(&info).contains(&show(radix_keys.as_bytes())),
                "{context}: node count {} vs {}",
                stream.node_count(),
                show(&info)
            );

            let mut e = Encoder::new(false);
            value::write_value(
                &mut e,
                &Value::Stream(Box::new(stream.clone())),
                target_of(oracle),
            );
            assert!(
                e.buf == payload_body(&payload),
                "{context}: encoding differs\n ours:   {}\n theirs: {}",
                show(&e.buf),
                show(payload_body(&payload))
            );
        }
        // Compressed payloads (LZF listpacks) decode to the same streams.
        let plain: Vec<Stream> = KEYS
            .iter()
            .map(|key| restore_stream(&bulk_payload(&c.command(&["DUMP", key]))))
            .collect();
        run_all(&mut c, &[words("CONFIG SET rdbcompression yes")]);
        for (key, plain) in KEYS.iter().zip(plain) {
            let compressed = restore_stream(&bulk_payload(&c.command(&["DUMP", key])));
            assert!(compressed == plain, "{}: {key} compressed", oracle.name());
        }
    }
}

/// The payload of a bulk-string reply.
fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    assert!(reply.starts_with(b"$"), "not a bulk reply: {}", show(reply));
    let header_end = reply.windows(2).position(|w| w == b"\r\n").expect("header");
    let len: usize = std::str::from_utf8(&reply[1..header_end])
        .expect("ascii")
        .parse()
        .expect("length");
    reply[header_end + 2..header_end + 2 + len].to_vec()
}

/// Follows `script()` with the store API, as the server's commands would.
fn build_with_store_api(script: &[Vec<String>]) -> Stream {
    let mut s = Stream::new();
    let limits = NodeLimits::default();
    let mut clock = 1_000_000i64;
    let id = |text: &str| -> StreamId {
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        StreamId::new(ms.parse().expect("ms"), seq.parse().expect("seq"))
    };
    for cmd in script {
        clock += 1;
        let w: Vec<&str> = cmd.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["XADD", _, entry, pairs @ ..] => s.append(id(entry), pairs, limits),
            ["XDEL", _, entry] => {
                s.delete(&[id(entry)]);
            }
            ["XTRIM", _, "MAXLEN", mode, n] => {
                s.trim(TrimTo::MaxLen(n.parse().expect("n")), *mode == "~", 0);
            }
            ["XGROUP", "CREATE", _, group, start, "ENTRIESREAD", read] => {
                let start = if *start == "$" { s.last_id } else { id(start) };
                s.groups.insert(
                    group.as_bytes().into(),
                    ConsumerGroup::new(start, read.parse().expect("entries read")),
                );
            }
            ["XGROUP", "CREATECONSUMER", _, group, consumer] => {
                let g = s.groups.get_mut(group.as_bytes()).expect("group");
                g.consumer_or_create(consumer.as_bytes(), clock);
            }
            [
                "XREADGROUP",
                "GROUP",
                group,
                consumer,
                "COUNT",
                n,
                "STREAMS",
                _,
                ">",
            ] => {
                let after = s.groups[group.as_bytes()].last_id;
                let ids: Vec<StreamId> = s
                    .range(after.successor().expect("room"), StreamId::MAX, false)
                    .take(n.parse().expect("count"))
                    .map(|e| e.id())
                    .collect();
                let g = s.groups.get_mut(group.as_bytes()).expect("group");
                let (name, _) = g.consumer_or_create(consumer.as_bytes(), clock);
                if let Some(c) = g.consumer_mut(consumer.as_bytes()) {
                    c.active_time = clock;
                }
                for entry in ids {
                    let g = s.groups.get_mut(group.as_bytes()).expect("group");
                    g.deliver(entry, &name, clock);
                    s.advance_group(group.as_bytes(), entry);
                }
            }
            other => panic!("the store-side script has no {other:?}"),
        }
    }
    s
}

/// A RESP2 reply as a tree, for masking the wall-clock times out of XINFO STREAM FULL.
enum Resp {
    Line(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

fn parse(bytes: &[u8], pos: &mut usize) -> Resp {
    let end = *pos
        + bytes[*pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("CRLF");
    let line = &bytes[*pos + 1..end];
    let kind = bytes[*pos];
    *pos = end + 2;
    let number = || -> i64 {
        std::str::from_utf8(line)
            .expect("ascii")
            .parse()
            .expect("number")
    };
    match kind {
        b':' => Resp::Int(number()),
        b'$' if number() < 0 => Resp::Bulk(None),
        b'$' => {
            let n = number() as usize;
            let data = bytes[*pos..*pos + n].to_vec();
            *pos += n + 2;
            Resp::Bulk(Some(data))
        }
        b'*' => Resp::Array((0..number().max(0)).map(|_| parse(bytes, pos)).collect()),
        _ => Resp::Line(line.to_vec()),
    }
}

/// Zeroes seen-time, active-time and each PEL entry's delivery time.
fn mask_times(r: &mut Resp) {
    let Resp::Array(items) = r else { return };
    for i in 0..items.len() {
        let key = match &items[i] {
            Resp::Bulk(Some(k)) => k.clone(),
            _ => Vec::new(),
        };
        if i + 1 < items.len() {
            if key == b"seen-time" || key == b"active-time" {
                items[i + 1] = Resp::Int(0);
            }
            if key == b"pending"
                && let Resp::Array(pel) = &mut items[i + 1]
            {
                for entry in pel {
                    if let Resp::Array(fields) = entry
                        && let Some(time) = fields.iter_mut().find(|f| matches!(f, Resp::Int(_)))
                    {
                        *time = Resp::Int(0);
                    }
                }
            }
        }
    }
    for item in items {
        mask_times(item);
    }
}

/// One line per scalar, indented by depth, so a mismatch can be shown where it is.
fn render(r: &Resp, depth: usize, out: &mut Vec<String>) {
    let pad = " ".repeat(depth);
    match r {
        Resp::Array(items) => {
            out.push(format!("{pad}[{}]", items.len()));
            for item in items {
                render(item, depth + 1, out);
            }
        }
        Resp::Int(n) => out.push(format!("{pad}:{n}")),
        Resp::Bulk(None) => out.push(format!("{pad}(nil)")),
        Resp::Bulk(Some(b)) | Resp::Line(b) => {
            let mut text = show(b);
            text.truncate(60);
            out.push(format!("{pad}{text}"));
        }
    }
}

/// XINFO STREAM FULL with every entry, times masked, rendered as lines.
fn full_info(c: &mut RawClient, key: &str) -> Vec<String> {
    let reply = c.command(&["XINFO", "STREAM", key, "FULL", "COUNT", "0"]);
    let mut tree = parse(&reply, &mut 0);
    mask_times(&mut tree);
    let mut lines = Vec::new();
    render(&tree, 0, &mut lines);
    lines
}

/// Fails with the first differing line and some context.
fn assert_same_lines(ours: &[String], theirs: &[String], context: &str) {
    let Some(at) = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i)) else {
        return;
    };
    let from = at.saturating_sub(8);
    panic!(
        "{context}: first difference at line {at}\n ours:\n{}\n theirs:\n{}",
        ours[from.min(ours.len())..(at + 3).min(ours.len())].join("\n"),
        theirs[from.min(theirs.len())..(at + 3).min(theirs.len())].join("\n"),
    );
}

/// A DUMP payload for `target` (dump::dump picks type 19 for streams).
fn payload_for(s: &Stream, target: Target) -> Vec<u8> {
    let mut e = Encoder::new(true);
    value::write_value(&mut e, &Value::Stream(Box::new(s.clone())), target);
    e.bytes(&(target.version() as u16).to_le_bytes());
    let crc = ferrokv_rdb::crc64::checksum(&e.buf);
    e.u64_le(crc);
    e.buf
}

#[test]
fn ferrokv_payloads_restore_into_the_oracles() {
    let ours = build_with_store_api(&script());
    for oracle in Oracle::ALL {
        let server = start_oracle(oracle);
        let mut c = RawClient::connect(server.port).expect("connect");
        run_all(&mut c, &script_on("theirs"));
        let expected = full_info(&mut c, "theirs");

        let mut targets = vec![(
            "ours19",
            dump::dump(&Value::Stream(Box::new(ours.clone())), true),
        )];
        if oracle == Oracle::Valkey9 {
            targets.push(("ours21", payload_for(&ours, Target::Valkey80)));
        }
        for (key, payload) in targets {
            let reply = c.command(&[&b"RESTORE"[..], key.as_bytes(), b"0", &payload]);
            assert_eq!(
                show(&reply),
                "+OK\\r\\n",
                "{}: RESTORE {key}",
                oracle.name()
            );
            assert_same_lines(
                &full_info(&mut c, key),
                &expected,
                &format!("{}: XINFO STREAM FULL of {key}", oracle.name()),
            );
            // What the server holds now, dumped again, is what we sent.
            let back = restore_stream(&bulk_payload(&c.command(&["DUMP", key])));
            let mut sent = ours.clone();
            if key == "ours19" || oracle == Oracle::Redis7 {
                for g in sent.groups.values_mut() {
                    for consumer in g.consumers.values_mut() {
                        consumer.active_time = consumer.seen_time;
                    }
                }
            }
            assert!(back == sent, "{}: {key} read back differs", oracle.name());
        }
    }
}

/// Reads a whole file; returns the keys per database and the functions seen.
fn read_file(bytes: &[u8]) -> Result<(Vec<(usize, u64)>, usize), ferrokv_rdb::RdbError> {
    let mut r = FileReader::new(bytes)?;
    let mut db = 0;
    let mut keys: Vec<(usize, u64)> = Vec::new();
    let mut functions = 0;
    loop {
        match r.next_item()? {
            Item::Eof => break,
            Item::SelectDb(n) => db = n,
            Item::Key { .. } => match keys.last_mut() {
                Some((last, n)) if *last == db => *n += 1,
                _ => keys.push((db, 1)),
            },
            Item::Function(_) => functions += 1,
            _ => {}
        }
    }
    assert_eq!(r.offset(), bytes.len() as u64, "bytes after the checksum");
    Ok((keys, functions))
}

#[test]
fn oracle_dump_files_read_end_to_end() {
    for oracle in Oracle::ALL {
        let server = start_oracle(oracle);
        let families = fixtures(oracle);
        for fixture in &families {
            let (bytes, sizes) = build_fixture(&server, fixture);
            let context = format!("{} fixture {}", oracle.name(), fixture.name);
            let magic = match oracle {
                Oracle::Redis7 => format!("REDIS{:04}", format::WRITE_VERSION),
                Oracle::Valkey9 => format!("VALKEY{:03}", format::VALKEY_VERSION),
            };
            assert!(bytes.starts_with(magic.as_bytes()), "{context}: header");
            let (keys, functions) = read_file(&bytes).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(keys, sizes, "{context}: keys per database");
            let expected_functions =
                usize::from(matches!(fixture.name, "functions" | "everything"));
            assert_eq!(functions, expected_functions, "{context}: functions");
            // A flipped byte anywhere is an error (usually the checksum), never a panic.
            let mut damaged = bytes.clone();
            let at = bytes.len() / 2;
            damaged[at] ^= 0x20;
            assert!(read_file(&damaged).is_err(), "{context}: damage unnoticed");
        }
    }
}

/// Decoding a damaged stream payload from a real server fails with an offset, never a panic.
#[test]
fn damaged_oracle_payloads_fail_cleanly() {
    let server = start_oracle(Oracle::Valkey9);
    let mut c = RawClient::connect(server.port).expect("connect");
    run_all(&mut c, &script());
    let payload = bulk_payload(&c.command(&["DUMP", "big"]));
    let body = payload_body(&payload);
    for at in (1..body.len()).step_by(31) {
        let mut bad = body.to_vec();
        bad[at] = bad[at].wrapping_add(1);
        let mut d = Decoder::new(&bad[1..]);
        let _ = value::read_value(&mut d, bad[0], &ReadOptions::new(Dialect::Valkey(80)));
        let mut d = Decoder::new(&body[1..at]);
        assert!(
            value::read_value(&mut d, body[0], &ReadOptions::new(Dialect::Valkey(80))).is_err(),
            "truncation at {at} unnoticed"
        );
    }
}

/// A whole dump.rdb written by ferrokv with streams in it starts redis-server 7.0 (RDB 10)
/// and valkey 9.1 (RDB 10 and `VALKEY080`), and the streams read back as the oracle's own.
#[test]
fn ferrokv_files_with_streams_load_into_the_oracles() {
    let ours = build_with_store_api(&script());
    let file_for = |target: Target| {
        let mut e = Encoder::new(true);
        rdb_file::write_header(&mut e, target);
        rdb_file::write_aux(&mut e, b"redis-ver", b"7.0.15");
        rdb_file::write_select_db(&mut e, 0);
        rdb_file::write_resize_db(&mut e, 2, 0);
        let stream = Entry::new(Value::Stream(Box::new(ours.clone())), 0);
        rdb_file::write_key(&mut e, b"ours", &stream, None, target);
        let text = Entry::new(Value::Str(StrValue::from_bytes(b"plain")), 0);
        rdb_file::write_key(&mut e, b"str", &text, None, target);
        rdb_file::write_eof(&mut e);
        let mut file = e.buf;
        rdb_file::append_checksum(&mut file, true);
        file
    };
    let runs = [
        (Oracle::Redis7, Target::Rdb10),
        (Oracle::Valkey9, Target::Rdb10),
        (Oracle::Valkey9, Target::Valkey80),
    ];
    for (oracle, target) in runs {
        let context = format!("{} loading a {target:?} file", oracle.name());
        let server = start_oracle_loading(oracle, Some(&file_for(target)));
        let mut c = RawClient::connect(server.port).expect("connect");
        assert_eq!(show(&c.command(&["DBSIZE"])), ":2\\r\\n", "{context}");
        run_all(&mut c, &script_on("theirs"));
        assert_same_lines(
            &full_info(&mut c, "ours"),
            &full_info(&mut c, "theirs"),
            &context,
        );
    }
}
