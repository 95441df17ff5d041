//! Keyspace notifications against the oracle: the same script runs on ferrokv and on
//! valkey-server 9.1 with a subscriber on `__key*@*__:*`; after each command a marker is
//! published on another channel, so the events each command caused are collected in order
//! and compared command by command. Every family is covered, with several
//! `notify-keyspace-events` settings. Waits are bounded (read timeout 10 s, fixed sleeps).

mod common;

use std::time::Duration;

use common::{RawClient, ServerProcess, show, split_elements, start_ferrokv, start_valkey};

/// A script line: a command (split on spaces), or `!sleep <ms>`.
type Script = &'static [&'static str];

struct Side {
    client: RawClient,
    subscriber: RawClient,
}

impl Side {
    fn new(server: &ServerProcess) -> Side {
        let mut client = RawClient::connect(server.port).expect("connect");
        let mut subscriber = RawClient::connect(server.port).expect("connect");
        let _ = client.command(&["CLIENT", "SETNAME", "writer"]);
        subscriber.command(&["PSUBSCRIBE", "__key*@*__:*"]);
        subscriber.command(&["SUBSCRIBE", "sync"]);
        Side { client, subscriber }
    }

    /// Runs one line; returns its reply and the notifications it caused.
    fn step(&mut self, line: &str) -> String {
        let mut out = String::new();
        if let Some(ms) = line.strip_prefix("!sleep ") {
            std::thread::sleep(Duration::from_millis(ms.parse().expect("sleep ms")));
        } else {
            let args: Vec<&str> = line.split(' ').collect();
            out.push_str(&show(&self.client.command(&args)));
        }
        self.client.command(&["PUBLISH", "sync", "x"]);
        loop {
            let frame = self.subscriber.read_reply().expect("a pushed frame");
            let parts: Vec<String> = split_elements(&frame)
                .expect("an array frame")
                .1
                .iter()
                .map(|item| bulk_text(item))
                .collect();
            if parts.first().map(String::as_str) == Some("message") {
                return out;
            }
            // pmessage pattern channel message
            out.push_str(&format!("\n    {} {}", parts[2], parts[3]));
        }
    }
}

fn bulk_text(item: &[u8]) -> String {
    let text = String::from_utf8_lossy(item);
    match text.split_once("\r\n") {
        Some((_, rest)) => rest.trim_end_matches("\r\n").to_string(),
        None => text.into_owned(),
    }
}

/// Runs `script` under `flags` on both servers and compares, line by line.
fn compare(flags: &str, script: Script) {
    let debug = ["--enable-debug-command", "yes"];
    let ferrokv = start_ferrokv(&debug);
    let valkey = start_valkey(&debug);
    let mut sides = [Side::new(&ferrokv), Side::new(&valkey)];
    let mut mismatches = Vec::new();
    let setup = format!("CONFIG SET notify-keyspace-events {flags}");
    for line in std::iter::once(setup.as_str()).chain(script.iter().copied()) {
        let ours = sides[0].step(line);
        let theirs = sides[1].step(line);
        if ours != theirs {
            mismatches.push(format!("{line}\n  ferrokv: {ours}\n  valkey:  {theirs}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "flags {flags}: {} line(s) differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

const STRINGS: Script = &[
    "SET a 1",
    "SET a 2 EX 100",
    "SET a 3 KEEPTTL",
    "SET a 4 GET",
    "SET a 5 NX",
    "SET b 1 XX",
    "SET a 6 IFEQ 5",
    "SETNX b 1",
    "SETEX c 10 x",
    "PSETEX d 1000 x",
    "MSET a 1 e 2",
    "MSETNX f 1 g 2",
    "MSETNX f 1 h 2",
    "GETSET a 5",
    "GETDEL a",
    "GETDEL a",
    "GETEX e EX 100",
    "GETEX e PERSIST",
    "GETEX e",
    "GETEX e EXAT 1",
    "GET e",
    "SETRANGE s 0 abc",
    "SETRANGE s 1 x",
    "SETRANGE s2 0 ",
    "APPEND s d",
    "APPEND ap x",
    "INCR n",
    "INCRBY n 2",
    "DECR n",
    "DECRBY n 2",
    "INCRBYFLOAT n 1.5",
    "SETBIT bm 1 1",
    "SETBIT bm 1 1",
    "SETBIT bm 100 0",
    "BITOP AND bo bm s",
    "BITOP AND bo nokey",
    "BITFIELD bf SET u8 0 1 GET u8 0",
    "BITFIELD bf GET u8 0",
    "BITFIELD bf INCRBY u8 0 300",
    "PFADD h a b",
    "PFADD h a",
    "PFMERGE h2 h",
    "PFCOUNT h h2",
    "DELIFEQ s nope",
    "SET dd 1",
    "DELIFEQ dd 1",
    "SET a 1",
    "SET a 2 EXAT 1",
    "MSETEX 2 m1 1 m2 2 EX 100",
    "MSETEX 2 m1 1 m2 2 KEEPTTL",
    "INCR s",
    "LPUSH l x",
    "SET l 1",
    "APPEND l x",
];

const KEYS: Script = &[
    "DEBUG SET-ACTIVE-EXPIRE 0",
    "SET n 1",
    "SET m 1",
    "DEL n m nokey",
    "SET n 1",
    "UNLINK n",
    "SET n 1",
    "EXPIRE n 100",
    "PEXPIRE n 100000",
    "EXPIRE n 10 NX",
    "PERSIST n",
    "PERSIST n",
    "EXPIREAT n 1",
    "SET n 1",
    "EXPIRE n 0",
    "SET n 1",
    "PEXPIREAT n 0",
    "SET n 1",
    "RENAME n n2",
    "RENAME n2 n2",
    "RENAMENX n2 n3",
    "SET n4 x",
    "RENAMENX n3 n4",
    "RENAME n3 n4",
    "COPY n4 n5",
    "COPY n4 n5",
    "COPY n4 n5 REPLACE",
    "COPY n4 n5 DB 2",
    "MOVE n5 1",
    "SET x 1 PX 1",
    "!sleep 20",
    "GET x",
    "SET y 1 PX 1",
    "!sleep 20",
    "SET y 2",
    "SET z 1 PX 1",
    "!sleep 20",
    "EXISTS z",
    "TYPE z",
    "SET w 1 PX 1",
    "!sleep 20",
    "MSET w 2 v 3",
    "SET u 1 PX 1",
    "!sleep 20",
    "INCR u",
    "DEBUG SET-ACTIVE-EXPIRE 1",
    // Active expiry; one key per sleep, since the order in which the cycle reaches keys
    // is its own business.
    "SET act 1 PX 50",
    "!sleep 600",
    "HSET acth f 1 g 2",
    "HPEXPIRE acth 50 FIELDS 1 f",
    "!sleep 600",
    "HPEXPIRE acth 50 FIELDS 1 g",
    "!sleep 600",
    "SWAPDB 0 1",
    "FLUSHDB",
];

const LISTS: Script = &[
    "LPUSH l a b c d e",
    "RPUSH l f",
    "LPUSHX l g",
    "RPUSHX l h",
    "LPUSHX nol g",
    "LINSERT l BEFORE a z",
    "LINSERT l BEFORE nope z",
    "LSET l 0 q",
    "LREM l 1 q",
    "LREM l 1 nothere",
    "LTRIM l 0 5",
    "LTRIM l 0 -1",
    "LPOP l",
    "RPOP l 2",
    "LPOP nol",
    "LPOP l 0",
    "LMOVE l l2 LEFT RIGHT",
    "RPOPLPUSH l l2",
    "LMOVE l2 l2 LEFT RIGHT",
    "LMPOP 2 nol l LEFT COUNT 2",
    "RPOP l 10",
    "LPOP l2 5",
    "LMPOP 1 nol LEFT",
    "BLPOP nol 0.01",
    "RPUSH bl 1",
    "BLPOP bl 0",
    "RPUSH bl 1 2",
    "BLMOVE bl bl2 RIGHT LEFT 0",
    "BRPOPLPUSH bl bl2 0",
    "BLMPOP 0 1 bl2 RIGHT COUNT 5",
    "RPUSH t 1 2 3",
    "LTRIM t 5 10",
    "RPUSH t 1 2 3",
    "LREM t 0 1",
    "LREM t 0 2",
    "LREM t 0 3",
    "LTRIM nol 0 1",
];

const HASHES: Script = &[
    "DEBUG SET-ACTIVE-EXPIRE 0",
    "HSET h a 1 b 2",
    "HSET h a 1",
    "HSETNX h a 2",
    "HSETNX h c 3",
    "HMSET h d 4",
    "HINCRBY h n 1",
    "HINCRBYFLOAT h f 1.5",
    "HDEL h a nope",
    "HDEL h nope",
    "HEXPIRE h 100 FIELDS 2 b c",
    "HPEXPIRE h 100000 FIELDS 1 b",
    "HEXPIREAT h 1 FIELDS 1 d",
    "HPERSIST h FIELDS 2 b c",
    "HPERSIST h FIELDS 1 b",
    "HSETEX h EX 100 FIELDS 1 x 1",
    "HSETEX h FIELDS 1 x 2",
    "HSETEX h KEEPTTL FIELDS 1 x 3",
    "HGETEX h EX 200 FIELDS 1 x",
    "HGETEX h PERSIST FIELDS 1 x",
    "HGETDEL h FIELDS 2 x y",
    "HSET h2 a 1",
    "HEXPIRE h2 0 FIELDS 1 a",
    "HSET h4 a 1 b 2",
    "HGETDEL h4 FIELDS 2 a b",
    "HSET h5 a 1 b 2",
    "HPEXPIRE h5 1 FIELDS 1 a",
    "!sleep 20",
    "HGET h5 a",
    "HSET h5 a 5",
    "HPEXPIRE h5 1 FIELDS 1 b",
    "!sleep 20",
    "HINCRBY h5 b 1",
    "HPEXPIRE h5 1 FIELDS 1 b",
    "!sleep 20",
    "HSETNX h5 b 1",
    "HDEL h5 a b",
    "DEBUG SET-ACTIVE-EXPIRE 1",
];

const SETS: Script = &[
    "SADD s a b c",
    "SADD s a",
    "SREM s a nope",
    "SREM s nope",
    "SPOP s 0",
    "SADD s x y z",
    "SPOP s 10",
    "SADD s a b",
    "SMOVE s s2 a",
    "SMOVE s s2 nope",
    "SMOVE s s2 b",
    "SADD s3 1 2",
    "SADD s4 2 3",
    "SINTERSTORE d s3 s4",
    "SUNIONSTORE d s3 s4",
    "SDIFFSTORE d s3 s4",
    "SINTERSTORE d s3 nokey",
    "SINTERSTORE d s3 nokey",
    "SINTERCARD 2 s3 s4",
    "SADD one 1",
    "SPOP one",
];

const ZSETS: Script = &[
    "ZADD z 1 a 2 b",
    "ZADD z 1 a",
    "ZADD z INCR 5 a",
    "ZADD z XX 3 nope",
    "ZADD z NX INCR 1 a",
    "ZADD zx XX 1 a",
    "ZINCRBY z 1 b",
    "ZREM z a nope",
    "ZREM z nope",
    "ZADD z 1 a 2 c 3 d 4 e 5 f",
    "ZREMRANGEBYSCORE z 1 1",
    "ZREMRANGEBYSCORE z 100 200",
    "ZREMRANGEBYRANK z 0 0",
    "ZADD lz 0 a 0 b 0 c",
    "ZREMRANGEBYLEX lz [a [a",
    "ZPOPMIN z",
    "ZPOPMAX z 2",
    "ZPOPMIN nokey",
    "ZMPOP 1 z MIN COUNT 5",
    "ZADD z 1 q",
    "BZPOPMIN z 0",
    "ZADD z 1 a 2 b",
    "BZPOPMAX z 0",
    "BZMPOP 0 1 z MIN",
    "ZADD z1 1 a 2 b",
    "ZADD z2 1 b",
    "ZUNIONSTORE zd 2 z1 z2",
    "ZINTERSTORE zd 2 z1 z2",
    "ZDIFFSTORE zd 2 z1 z2",
    "ZRANGESTORE zd z1 0 -1",
    "ZRANGESTORE zd z1 5 10",
    "ZINTERSTORE zd 2 z1 nokey",
    "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEOADD g 13.361389 38.115556 Palermo",
    "GEOSEARCHSTORE gd g FROMLONLAT 15 37 BYRADIUS 200 km",
    "GEORADIUS g 15 37 200 km STORE gd2",
    "GEORADIUS g 15 37 200 km STOREDIST gd3",
    "GEORADIUSBYMEMBER g Palermo 200 km STORE gd4",
    "GEOSEARCHSTORE gd g FROMLONLAT 15 37 BYRADIUS 1 m",
    "GEOSEARCHSTORE gd nokey FROMLONLAT 15 37 BYRADIUS 1 m",
];

const STREAMS: Script = &[
    "XADD st 1-0 a 1",
    "XADD st MAXLEN 1 2-0 a 2",
    "XADD st NOMKSTREAM 3-0 a 3",
    "XADD nost NOMKSTREAM 3-0 a 3",
    "XTRIM st MAXLEN 0",
    "XTRIM st MAXLEN 0",
    "XADD st 4-0 a 4",
    "XDEL st 4-0",
    "XDEL st 9-0",
    "XSETID st 10-0",
    "XGROUP CREATE st g1 $",
    "XGROUP CREATE st2 g1 $ MKSTREAM",
    "XGROUP CREATECONSUMER st g1 c1",
    "XGROUP CREATECONSUMER st g1 c1",
    "XGROUP SETID st g1 0",
    "XADD st 11-0 a 1",
    "XREADGROUP GROUP g1 c2 STREAMS st >",
    "XREADGROUP GROUP g1 c2 STREAMS st >",
    "XCLAIM st g1 c3 0 11-0",
    "XAUTOCLAIM st g1 c4 0 0",
    "XACK st g1 11-0",
    "XGROUP DELCONSUMER st g1 c1",
    "XGROUP DELCONSUMER st g1 c1",
    "XGROUP DESTROY st g1",
    "XGROUP DESTROY st g1",
    "DEL st",
];

/// SORT ... STORE: `sortstore` (a list event) on the destination, `del` when an empty result
/// removes it, nothing when there was nothing to remove; the keys BY and GET read report
/// misses and lazy expiry like any read.
const SORT: Script = &[
    "DEBUG SET-ACTIVE-EXPIRE 0",
    "RPUSH l 3 1 2",
    "MSET w_1 30 w_2 20",
    "SORT l",
    "SORT l BY w_* GET nokey_* GET #",
    "SORT_RO l BY nokey_* GET w_*",
    "SORT l STORE d",
    "SORT l STORE d",
    "SORT nokey STORE d",
    "SORT nokey STORE d",
    "SET d x",
    "EXPIRE d 100",
    "SORT l DESC STORE d",
    "SORT l LIMIT 0 0 STORE d",
    "SADD s b a",
    "SORT s BY nosort STORE d2",
    "SORT s BY nosort LIMIT 5 5 STORE d2",
    "SET e x",
    "PEXPIRE e 1",
    "!sleep 20",
    "SORT l STORE e",
    "PSETEX w_3 1 x",
    "!sleep 20",
    "SORT l BY w_*",
    "ZADD z 1 a",
    "SORT z STORE d3",
    "SORT l LIMIT a b STORE d3",
    "SORT l STORE l",
    "HSET h_1 f 1 g 2",
    "HPEXPIRE h_1 1 FIELDS 1 f",
    "!sleep 20",
    "SORT l BY h_*->f GET h_*->f GET h_*->g",
    "HLEN h_1",
    "DEBUG SET-ACTIVE-EXPIRE 1",
];

#[test]
fn sort_store() {
    compare("KEA", SORT);
    compare("KEAnm", SORT);
    compare("El", SORT);
    compare("Kg", SORT);
}

#[test]
fn strings_and_bits_all_classes() {
    compare("KEA", STRINGS);
}

#[test]
fn strings_keyevent_only_with_new_keys_and_misses() {
    compare("E$gnm", STRINGS);
}

#[test]
fn keys_and_expiry() {
    compare("KEA", KEYS);
}

#[test]
fn keys_new_and_generic_only() {
    compare("Kgxn", KEYS);
}

#[test]
fn lists() {
    compare("KEA", LISTS);
    compare("Kl", LISTS);
}

#[test]
fn hashes() {
    compare("KEA", HASHES);
    compare("Ehgn", HASHES);
}

#[test]
fn sets() {
    compare("KEA", SETS);
}

#[test]
fn sorted_sets_and_geo() {
    compare("KEA", ZSETS);
    compare("Ez", ZSETS);
}

#[test]
fn streams() {
    compare("KEA", STREAMS);
    compare("Ktgn", STREAMS);
}

/// `A` does not include `n`, and CONFIG GET does not show an `n` given with it, yet the
/// new-key events fire.
const ALL_WITH_NEW_KEYS: Script = &[
    "CONFIG GET notify-keyspace-events",
    "SET n1 v",
    "SET n1 v2",
    "RPUSH nl a",
    "RPUSH nl b",
    "HSET nh f v",
    "SADD ns m",
    "ZADD nz 1 m",
    "DEL n1",
    "SET n1 x",
];

#[test]
fn all_classes_with_new_keys() {
    compare("KEAn", ALL_WITH_NEW_KEYS);
    compare("EAn", ALL_WITH_NEW_KEYS);
    compare("KEA", ALL_WITH_NEW_KEYS);
}

#[test]
fn nothing_is_published_without_k_or_e() {
    compare("A", STRINGS);
}
