//! DUMP/RESTORE interop: values of every type and encoding dumped by redis-server 7.0 and
//! valkey-server 9.1 restore into ferrokv with identical contents, and ferrokv's payloads
//! restore into both with identical contents (and, into Valkey, the same encoding).
//!
//! redis-server 7.0 is `/usr/bin/redis-server` (Debian's package) or
//! `$FERROKV_REDIS7_SERVER`; the test fails when it is missing.

mod common;

use common::{RawClient, split_elements, start_ferrokv, start_redis7, start_valkey};

/// The payload of a bulk reply.
fn bulk(reply: &[u8]) -> Vec<u8> {
    let end = reply.iter().position(|&b| b == b'\n').expect("header") + 1;
    assert_eq!(reply[0], b'$', "{}", common::show(reply));
    reply[end..reply.len() - 2].to_vec()
}

#[derive(Clone, Copy)]
enum Family {
    Str,
    List,
    Set,
    Hash,
    ZSet,
}

/// Replies that together show a value's contents, normalized where servers legitimately
/// differ (member order of sets and hashes, the text of a double).
fn contents(c: &mut RawClient, family: Family) -> Vec<Vec<u8>> {
    let sorted = |reply: Vec<u8>| {
        let (_, mut items) = split_elements(&reply).expect("aggregate");
        items.sort();
        items.concat()
    };
    match family {
        Family::Str => vec![c.command(&["GET", "k"])],
        Family::List => vec![
            c.command(&["LLEN", "k"]),
            c.command(&["LRANGE", "k", "0", "-1"]),
        ],
        Family::Set => vec![
            c.command(&["SCARD", "k"]),
            sorted(c.command(&["SMEMBERS", "k"])),
        ],
        Family::Hash => vec![
            c.command(&["HLEN", "k"]),
            sorted(c.command(&["HGETALL", "k"])),
        ],
        Family::ZSet => {
            let reply = c.command(&["ZRANGE", "k", "0", "-1", "WITHSCORES"]);
            let (_, items) = split_elements(&reply).expect("array");
            let mut out = vec![c.command(&["ZCARD", "k"])];
            for pair in items.chunks(2) {
                out.push(pair[0].clone());
                let text = bulk(&pair[1]);
                let score: f64 = std::str::from_utf8(&text)
                    .expect("utf8")
                    .parse()
                    .expect("score");
                out.push(score.to_bits().to_le_bytes().to_vec());
            }
            out
        }
    }
}

struct Fixture {
    name: &'static str,
    family: Family,
    setup: Vec<Vec<String>>,
}

fn cmd(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn with_many(head: &[&str], n: usize, item: impl Fn(usize) -> Vec<String>) -> Vec<String> {
    let mut out = cmd(head);
    for i in 0..n {
        out.extend(item(i));
    }
    out
}

fn fixtures() -> Vec<Fixture> {
    let f = |name, family, setup| Fixture {
        name,
        family,
        setup,
    };
    vec![
        f("int", Family::Str, vec![cmd(&["SET", "k", "-123456"])]),
        f(
            "long int",
            Family::Str,
            vec![cmd(&["SET", "k", "9223372036854775807"])],
        ),
        f(
            "short string",
            Family::Str,
            vec![cmd(&["SET", "k", "hello"])],
        ),
        f(
            "compressible string",
            Family::Str,
            vec![cmd(&["SET", "k", &"abc".repeat(5000)])],
        ),
        f(
            "random string",
            Family::Str,
            vec![cmd(&[
                "SET",
                "k",
                &(0..3000)
                    .map(|i: u64| char::from(b'!' + (i.wrapping_mul(2654435761) % 90) as u8))
                    .collect::<String>(),
            ])],
        ),
        f(
            "hll sparse",
            Family::Str,
            vec![cmd(&["PFADD", "k", "a", "b", "c"])],
        ),
        f(
            "hll dense",
            Family::Str,
            vec![with_many(&["PFADD", "k"], 5000, |i| vec![format!("e{i}")])],
        ),
        f(
            "small list",
            Family::List,
            vec![cmd(&["RPUSH", "k", "a", "1", "-2", "300000", "x y"])],
        ),
        f(
            "large list",
            Family::List,
            vec![with_many(&["RPUSH", "k"], 5000, |i| {
                vec![format!("element-{i}")]
            })],
        ),
        f(
            "list with big elements",
            Family::List,
            vec![cmd(&["RPUSH", "k", "a", &"z".repeat(20000), "b"])],
        ),
        f(
            "compressed list",
            Family::List,
            vec![
                cmd(&["CONFIG", "SET", "list-compress-depth", "1"]),
                with_many(&["RPUSH", "k"], 3000, |i| vec![format!("elem-{i}")]),
                cmd(&["CONFIG", "SET", "list-compress-depth", "0"]),
            ],
        ),
        f(
            "intset",
            Family::Set,
            vec![with_many(&["SADD", "k"], 100, |i| {
                vec![(i as i64 * 7919 - 300000).to_string()]
            })],
        ),
        f(
            "wide intset",
            Family::Set,
            vec![cmd(&[
                "SADD",
                "k",
                "-9223372036854775808",
                "9223372036854775807",
                "1",
            ])],
        ),
        f(
            "listpack set",
            Family::Set,
            vec![cmd(&["SADD", "k", "a", "b", "1", "c"])],
        ),
        f(
            "hashtable set",
            Family::Set,
            vec![with_many(&["SADD", "k"], 500, |i| vec![format!("m{i}")])],
        ),
        f(
            "listpack hash",
            Family::Hash,
            vec![cmd(&["HSET", "k", "f", "v", "n", "12", "e", ""])],
        ),
        f(
            "hashtable hash",
            Family::Hash,
            vec![with_many(&["HSET", "k"], 700, |i| {
                vec![format!("f{i}"), format!("v{i}")]
            })],
        ),
        f(
            "long-valued hash",
            Family::Hash,
            vec![cmd(&["HSET", "k", "f", &"v".repeat(300)])],
        ),
        f(
            "listpack zset",
            Family::ZSet,
            vec![cmd(&[
                "ZADD", "k", "1", "a", "2.5", "b", "inf", "c", "-inf", "d", "0.1", "e", "1e300",
                "f", "-3", "g", "5e-324", "h",
            ])],
        ),
        f(
            "skiplist zset",
            Family::ZSet,
            vec![
                with_many(&["ZADD", "k"], 400, |i| {
                    vec![format!("{}", i as f64 / 7.0), format!("m{i}")]
                }),
                cmd(&["ZADD", "k", "-inf", "lo", "+inf", "hi"]),
            ],
        ),
    ]
}

fn set_up(c: &mut RawClient, fixture: &Fixture) {
    c.command(&["FLUSHALL"]);
    for line in &fixture.setup {
        let reply = c.command(line);
        assert_ne!(
            reply.first(),
            Some(&b'-'),
            "{}: {}",
            fixture.name,
            common::show(&reply)
        );
    }
}

fn restore(c: &mut RawClient, payload: &[u8]) -> Vec<u8> {
    c.command(&[&b"FLUSHALL"[..]]);
    c.command(&[&b"RESTORE"[..], b"k", b"0", payload])
}

#[test]
fn dumps_move_between_ferrokv_redis7_and_valkey() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let redis = start_redis7(&[]);
    let mut ours = RawClient::connect(ferrokv.port).expect("ferrokv");
    let mut valkey = RawClient::connect(valkey.port).expect("valkey");
    let mut redis = RawClient::connect(redis.port).expect("redis");
    let mut failures = Vec::new();
    for fixture in fixtures() {
        // Into ferrokv, from each of the others.
        for (source_name, source) in [("redis 7.0", &mut redis), ("valkey 9.1", &mut valkey)] {
            set_up(source, &fixture);
            let expected = contents(source, fixture.family);
            let payload = bulk(&source.command(&["DUMP", "k"]));
            let reply = restore(&mut ours, &payload);
            if reply != b"+OK\r\n" || contents(&mut ours, fixture.family) != expected {
                failures.push(format!(
                    "{} from {source_name} into ferrokv: {}",
                    fixture.name,
                    common::show(&reply)
                ));
            }
        }
        // Out of ferrokv into each of the others.
        set_up(&mut ours, &fixture);
        let expected = contents(&mut ours, fixture.family);
        let payload = bulk(&ours.command(&["DUMP", "k"]));
        for (target_name, target) in [("redis 7.0", &mut redis), ("valkey 9.1", &mut valkey)] {
            let reply = restore(target, &payload);
            if reply != b"+OK\r\n" || contents(target, fixture.family) != expected {
                failures.push(format!(
                    "{} from ferrokv into {target_name}: {}",
                    fixture.name,
                    common::show(&reply)
                ));
            }
        }
        // Same payload, same encoding in ferrokv and Valkey.
        restore(&mut ours, &payload);
        let (a, b) = (
            ours.command(&["OBJECT", "ENCODING", "k"]),
            valkey.command(&["OBJECT", "ENCODING", "k"]),
        );
        if a != b {
            failures.push(format!(
                "{}: encoding after RESTORE: ferrokv {} valkey {}",
                fixture.name,
                common::show(&a),
                common::show(&b)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hashes_with_field_expiry_move_between_ferrokv_and_valkey() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let redis = start_redis7(&[]);
    let mut ours = RawClient::connect(ferrokv.port).expect("ferrokv");
    let mut valkey = RawClient::connect(valkey.port).expect("valkey");
    let mut redis = RawClient::connect(redis.port).expect("redis");
    let fields = ["HPEXPIRETIME", "k", "FIELDS", "3", "a", "b", "c"];
    for valkey_first in [true, false] {
        let (from, to) = if valkey_first {
            (&mut valkey, &mut ours)
        } else {
            (&mut ours, &mut valkey)
        };
        from.command(&["FLUSHALL"]);
        from.command(&["HSET", "k", "a", "1", "b", "2", "c", "3"]);
        from.command(&["HPEXPIREAT", "k", "4000000000000", "FIELDS", "2", "a", "c"]);
        let payload = bulk(&from.command(&["DUMP", "k"]));
        assert_eq!(restore(to, &payload), b"+OK\r\n");
        assert_eq!(to.command(&fields), from.command(&fields));
        assert_eq!(contents(to, Family::Hash), contents(from, Family::Hash));
        assert_eq!(
            to.command(&["OBJECT", "ENCODING", "k"]),
            b"$9\r\nhashtable\r\n"
        );
    }
    // Redis 7.0 refuses the Valkey-only payload version, as it refuses Valkey's own.
    let payload = bulk(&ours.command(&["DUMP", "k"]));
    assert_eq!(
        restore(&mut redis, &payload),
        b"-ERR DUMP payload version or checksum are wrong\r\n"
    );
}

#[test]
fn restore_options_set_ttl_idle_time_and_frequency() {
    let ferrokv = start_ferrokv(&[]);
    let mut c = RawClient::connect(ferrokv.port).expect("ferrokv");
    c.command(&["SET", "src", "v"]);
    let payload = bulk(&c.command(&["DUMP", "src"]));
    let restore = |c: &mut RawClient, key: &str, ttl: &str, extra: &[&str]| {
        let mut args: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), ttl.as_bytes(), &payload];
        args.extend(extra.iter().map(|s| s.as_bytes()));
        c.command(&args)
    };
    assert_eq!(restore(&mut c, "a", "5000", &[]), b"+OK\r\n");
    let pttl: i64 = String::from_utf8_lossy(&c.command(&["PTTL", "a"])[1..])
        .trim()
        .parse()
        .expect("pttl");
    assert!((4000..=5000).contains(&pttl), "{pttl}");
    assert_eq!(restore(&mut c, "b", "0", &["IDLETIME", "1000"]), b"+OK\r\n");
    let idle: i64 = String::from_utf8_lossy(&c.command(&["OBJECT", "IDLETIME", "b"])[1..])
        .trim()
        .parse()
        .expect("idle");
    assert!((1000..=1001).contains(&idle), "{idle}");
    c.command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    assert_eq!(restore(&mut c, "c", "0", &["FREQ", "42"]), b"+OK\r\n");
    assert_eq!(c.command(&["OBJECT", "FREQ", "c"]), b":42\r\n");
}
