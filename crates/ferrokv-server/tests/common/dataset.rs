//! A server's whole dataset in a canonical, comparable form: for replication tests, where
//! two different servers (ferrokv, valkey, redis) must end with the same data. Each key is
//! read with its type's full read (sorted where order is not part of the value) plus its
//! absolute expiry in milliseconds, so encodings and internal layouts never matter.

use std::collections::BTreeMap;

use super::{RawClient, split_elements};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// The elements of an aggregate reply, sorted (sets, hashes as field/value pairs).
fn sorted(reply: &[u8], pairs: bool) -> String {
    let Some((_, items)) = split_elements(reply) else {
        return text(reply);
    };
    let mut groups: Vec<Vec<u8>> = if pairs {
        items.chunks(2).map(|c| c.concat()).collect()
    } else {
        items
    };
    groups.sort();
    groups.iter().map(|g| text(g)).collect::<Vec<_>>().join("")
}

/// Every key of every database that has keys: (db, key) → its canonical value.
pub fn dataset(port: u16) -> BTreeMap<(usize, Vec<u8>), String> {
    dataset_of(&mut RawClient::connect(port).expect("connect"))
}

/// [`dataset`] through a connection the caller has (authenticated, ...); it is left in
/// database 0.
pub fn dataset_of(client: &mut RawClient) -> BTreeMap<(usize, Vec<u8>), String> {
    let mut all = BTreeMap::new();
    for db in 0..16usize {
        client.command(&["SELECT", &db.to_string()]);
        let keys = client.command(&["KEYS", "*"]);
        let Some((_, keys)) = split_elements(&keys) else {
            continue;
        };
        for raw in keys {
            // `$len\r\nkey\r\n` → key
            let start = raw.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            let key = raw[start..raw.len().saturating_sub(2)].to_vec();
            let kind = text(&client.command(&[b"TYPE".as_slice(), &key]));
            let value = match kind.trim() {
                "+string" => text(&client.command(&[b"GET".as_slice(), &key])),
                "+list" => text(&client.command(&[b"LRANGE".as_slice(), &key, b"0", b"-1"])),
                "+set" => sorted(&client.command(&[b"SMEMBERS".as_slice(), &key]), false),
                "+hash" => sorted(&client.command(&[b"HGETALL".as_slice(), &key]), true),
                "+zset" => {
                    text(&client.command(&[b"ZRANGE".as_slice(), &key, b"0", b"-1", b"WITHSCORES"]))
                }
                "+stream" => {
                    let entries = client.command(&[b"XRANGE".as_slice(), &key, b"-", b"+"]);
                    let groups = client.command(&[b"XINFO".as_slice(), b"GROUPS", &key]);
                    format!("{}{}", text(&entries), text(&groups))
                }
                _ => String::new(),
            };
            let ttl = text(&client.command(&[b"PEXPIRETIME".as_slice(), &key]));
            all.insert(
                (db, key),
                format!("{} {} ttl={}", kind.trim(), value, ttl.trim()),
            );
        }
    }
    all
}

/// Fills databases 0 and 3 with one or more keys of every type and encoding.
pub fn fill_every_type(port: u16) {
    let mut c = RawClient::connect(port).expect("connect");
    let commands: &[&[&str]] = &[
        &["SET", "str", "hello"],
        &["SET", "int", "12345"],
        &["SET", "big", &"x".repeat(5000)],
        &["SET", "volatile", "v", "EX", "1000"],
        &["RPUSH", "list", "a", "b", "c", "1", "2"],
        &["HSET", "hash", "f1", "v1", "f2", "2"],
        &["SADD", "intset", "1", "2", "3"],
        &["SADD", "set", "a", "b", "c"],
        &["ZADD", "zset", "1", "a", "2.5", "b", "-3", "c"],
        &["PFADD", "hll", "a", "b", "c"],
        &["XADD", "stream", "1-1", "f", "v"],
        &["XADD", "stream", "2-1", "f", "w"],
        &["XGROUP", "CREATE", "stream", "g", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
        &["SELECT", "3"],
        &["SET", "db3", "three"],
        &["LPUSH", "db3list", "x"],
    ];
    for command in commands {
        c.command(command);
    }
    for i in 0..300 {
        c.command(&["SET", &format!("key:{i}"), &format!("value:{i}")]);
        c.command(&["HSET", "largehash", &format!("f{i}"), &"y".repeat(20)]);
    }
}
