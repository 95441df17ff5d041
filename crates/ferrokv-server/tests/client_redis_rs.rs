//! redis-rs (the `redis` crate, the Rust client most applications use) against ferrokv and
//! the oracle valkey-server 9.1. One session of the calls applications make (sync and async
//! connections, pipelines, transactions, scripts, pub/sub, RESP3, ACL users) is recorded as
//! text on each server, and the two transcripts must be equal: a user of the client cannot
//! tell the servers apart. A second test runs redis-rs over TLS with client certificates,
//! against ferrokv only (the oracle is built without TLS).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use redis::aio::ConnectionManagerConfig;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamMaxlen,
    StreamPendingCountReply, StreamPendingReply, StreamRangeReply, StreamReadOptions,
    StreamReadReply,
};
use redis::{
    AsyncCommands, AsyncConnectionConfig, Client, ClientTlsConfig, Commands, Connection, Direction,
    ExistenceCheck, Expiry, LposOptions, PushInfo, RedisError, RedisResult, ScanOptions, Script,
    SetExpiry, SetOptions, TlsCertificates, Value, ValueComparison, cmd, pipe,
};

/// Every wait in these tests is bounded by this: a blocked client times out instead of
/// hanging the test.
const WAIT: Duration = Duration::from_secs(10);

/// The recorded lines of one session.
#[derive(Default)]
struct Log(Vec<String>);

impl Log {
    fn line(&mut self, what: &str, value: impl Debug) {
        self.0.push(format!("{what} => {value:?}"));
    }

    /// Records a call's outcome, a value or an error.
    fn rec<T: Debug>(&mut self, what: &str, result: RedisResult<T>) {
        let shown = match result {
            Ok(value) => format!("Ok({value:?})"),
            Err(e) => error(&e),
        };
        self.0.push(format!("{what} => {shown}"));
    }
}

/// An error as the application sees it: the kind it would match on, and the text it would log.
fn error(e: &RedisError) -> String {
    format!("Err({:?}: {e})", e.kind())
}

fn url(port: u16, db: u16) -> String {
    format!("redis://127.0.0.1:{port}/{db}")
}

fn client(url: &str) -> Client {
    Client::open(url).expect("a valid redis URL")
}

fn connect(client: &Client) -> Connection {
    let con = client
        .get_connection_with_timeout(WAIT)
        .expect("redis-rs connects");
    con.set_read_timeout(Some(WAIT)).expect("read timeout");
    con.set_write_timeout(Some(WAIT)).expect("write timeout");
    con
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// A stream entry with its fields in a stable order (redis-rs keeps them in a `HashMap`).
fn entry(id: &StreamId) -> String {
    let fields: BTreeMap<_, _> = id.map.iter().collect();
    format!("{} {fields:?} delivered={:?}", id.id, id.delivered_count)
}

fn entries(ids: &[StreamId]) -> Vec<String> {
    ids.iter().map(entry).collect()
}

fn read_reply(reply: &Option<StreamReadReply>) -> Option<Vec<(String, Vec<String>)>> {
    reply.as_ref().map(|r| {
        r.keys
            .iter()
            .map(|k| (k.key.clone(), entries(&k.ids)))
            .collect()
    })
}

/// A value with the elements of RESP3 sets sorted: their order is unspecified.
fn canonical(value: Value) -> Value {
    match value {
        Value::Set(items) => {
            let mut items: Vec<Value> = items.into_iter().map(canonical).collect();
            items.sort_by_key(|v| format!("{v:?}"));
            Value::Set(items)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (canonical(k), canonical(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The CLIENT INFO fields that do not change from run to run.
fn client_info_fields(info: &str) -> Vec<String> {
    let fields: HashMap<&str, &str> = info
        .trim_end()
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    [
        "name", "db", "sub", "psub", "ssub", "multi", "watch", "flags", "user", "resp", "lib-name",
        "lib-ver", "cmd",
    ]
    .iter()
    .map(|f| format!("{f}={}", fields.get(f).unwrap_or(&"<missing>")))
    .collect()
}

/// The whole session against the server on `port`, as lines.
fn transcript(port: u16) -> Vec<String> {
    let mut log = Log::default();
    let db3 = client(&url(port, 3));
    let mut con = connect(&db3);
    let _: () = cmd("FLUSHALL").query(&mut con).expect("FLUSHALL");
    connection_state(&mut log, port, &mut con);
    strings(&mut log, &mut con);
    hashes(&mut log, &mut con);
    lists(&mut log, &db3, &mut con);
    sets(&mut log, &mut con);
    sorted_sets(&mut log, &mut con);
    streams(&mut log, &db3, &mut con);
    keys_and_scan(&mut log, &mut con);
    other_types(&mut log, &mut con);
    pipelines(&mut log, &mut con);
    raw_multi(&mut log, &mut con);
    transactions(&mut log, &db3, &mut con);
    scripts(&mut log, &mut con);
    errors(&mut log, &mut con);
    large_and_binary(&mut log, &mut con);
    pubsub(&mut log, port);
    keyspace_events(&mut log, port);
    resp3(&mut log, port);
    auth(&mut log, port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async_session(&mut log, port));
    log.rec("DBSIZE at the end", cmd("DBSIZE").query::<i64>(&mut con));
    log.0
}

fn connection_state(log: &mut Log, port: u16, con: &mut Connection) {
    // redis-rs names itself with CLIENT SETINFO on connect and ignores the answer: the server
    // must have taken it.
    log.rec(
        "CLIENT INFO",
        cmd("CLIENT")
            .arg("INFO")
            .query::<String>(con)
            .map(|i| client_info_fields(&i)),
    );
    log.rec("CLIENT SETNAME", con.client_setname::<_, ()>("app-1"));
    log.rec("CLIENT GETNAME", con.client_getname::<Option<String>>());
    log.rec(
        "CLIENT SETNAME with a space",
        con.client_setname::<_, ()>("bad name"),
    );
    log.rec(
        "CLIENT INFO after SETNAME",
        cmd("CLIENT")
            .arg("INFO")
            .query::<String>(con)
            .map(|i| client_info_fields(&i)),
    );
    log.rec("PING", con.ping::<String>());
    log.rec("PING message", con.ping_message::<_, String>("hi"));
    log.rec(
        "ECHO binary",
        cmd("ECHO")
            .arg(&[0u8, 1, 13, 10, 255][..])
            .query::<Vec<u8>>(con),
    );
    // The database in the URL is selected on connect: another database does not see its keys.
    log.rec("SET in db 3", con.set::<_, _, String>("db:marker", "3"));
    let mut db0 = connect(&client(&url(port, 0)));
    log.rec("EXISTS from db 0", db0.exists::<_, bool>("db:marker"));
    log.rec("EXISTS from db 3", con.exists::<_, bool>("db:marker"));
    log.rec(
        "connect to db 99",
        client(&url(port, 99))
            .get_connection_with_timeout(WAIT)
            .map(|_| ()),
    );
}

fn strings(log: &mut Log, con: &mut Connection) {
    log.rec("SET", con.set::<_, _, String>("s:1", "hello"));
    log.rec("GET", con.get::<_, Option<String>>("s:1"));
    log.rec("GET missing", con.get::<_, Option<String>>("s:none"));
    let nx_get = SetOptions::default()
        .conditional_set(ExistenceCheck::NX)
        .get(true);
    log.rec(
        "SET NX GET on an existing key",
        con.set_options::<_, _, Option<String>>("s:1", "again", nx_get),
    );
    let xx_get_ex = SetOptions::default()
        .conditional_set(ExistenceCheck::XX)
        .get(true)
        .with_expiration(SetExpiry::EX(100));
    log.rec(
        "SET XX GET EX 100",
        con.set_options::<_, _, Option<String>>("s:1", "world", xx_get_ex),
    );
    log.rec("TTL after SET EX", con.ttl::<_, i64>("s:1"));
    let keep = SetOptions::default().with_expiration(SetExpiry::KEEPTTL);
    log.rec(
        "SET KEEPTTL",
        con.set_options::<_, _, Option<String>>("s:1", "world2", keep),
    );
    log.rec("TTL after KEEPTTL", con.ttl::<_, i64>("s:1"));
    let ifeq = |v: &str| SetOptions::default().value_comparison(ValueComparison::ifeq(v));
    log.rec(
        "SET IFEQ mismatch",
        con.set_options::<_, _, Option<String>>("s:1", "x", ifeq("nope")),
    );
    log.rec(
        "SET IFEQ match",
        con.set_options::<_, _, Option<String>>("s:1", "world3", ifeq("world2")),
    );
    log.rec(
        "GETEX EX 50",
        con.get_ex::<_, Option<String>>("s:1", Expiry::EX(50)),
    );
    log.rec("TTL after GETEX", con.ttl::<_, i64>("s:1"));
    log.rec(
        "GETEX PERSIST",
        con.get_ex::<_, Option<String>>("s:1", Expiry::PERSIST),
    );
    log.rec("TTL after PERSIST", con.ttl::<_, i64>("s:1"));
    log.rec("PSETEX", con.pset_ex::<_, _, ()>("s:px", "v", 5000));
    let pttl = con.pttl::<_, i64>("s:px");
    log.line(
        "PTTL within (0, 5000]",
        pttl.as_ref().map(|p| (1..=5000).contains(p)).ok(),
    );
    // Gone before a slow session ends, it would change the DBSIZE at the end.
    log.rec("DEL the PSETEX key", con.del::<_, i64>("s:px"));
    log.rec("SETEX", con.set_ex::<_, _, ()>("s:ex", "v", 30));
    log.rec("TTL after SETEX", con.ttl::<_, i64>("s:ex"));
    log.rec("GETDEL", con.get_del::<_, Option<String>>("s:1"));
    log.rec("GETDEL again", con.get_del::<_, Option<String>>("s:1"));
    log.rec("INCRBY", con.incr::<_, _, i64>("s:n", 5));
    log.rec("INCRBY negative", con.incr::<_, _, i64>("s:n", -2));
    log.rec("DECRBY", con.decr::<_, _, i64>("s:n", 10));
    log.rec("INCRBYFLOAT", con.incr::<_, _, f64>("s:f", 10.5f64));
    log.rec("INCRBYFLOAT 0.1", con.incr::<_, _, String>("s:f", 0.1f64));
    log.rec("INCRBYFLOAT 5e3", con.incr::<_, _, String>("s:f", 5.0e3f64));
    log.rec(
        "INCRBYFLOAT -0.6 (trailing zeros)",
        con.incr::<_, _, String>("s:f", -0.6f64),
    );
    log.rec(
        "INCRBYFLOAT inf",
        con.incr::<_, _, String>("s:f", f64::INFINITY),
    );
    log.rec("INCRBY on a float", con.incr::<_, _, i64>("s:f", 1));
    log.rec(
        "MSET",
        con.mset::<_, _, ()>(&[("s:m1", "a"), ("s:m2", "b")]),
    );
    log.rec(
        "MGET",
        con.mget::<_, Vec<Option<String>>>(&["s:m1", "s:m2", "s:none"]),
    );
    log.rec(
        "MSETNX refused",
        con.mset_nx::<_, _, bool>(&[("s:m1", "x"), ("s:m3", "c")]),
    );
    log.rec("MGET one key", con.mget::<_, Vec<Option<String>>>("s:m3"));
    log.rec("APPEND", con.append::<_, _, i64>("s:m1", "bc"));
    log.rec("STRLEN", con.strlen::<_, i64>("s:m1"));
    log.rec("GETRANGE", con.getrange::<_, String>("s:m1", 1, -1));
    log.rec("SETRANGE", con.setrange::<_, _, i64>("s:m1", 5, "Z"));
    log.rec("GET after SETRANGE", con.get::<_, Vec<u8>>("s:m1"));
}

fn hashes(log: &mut Log, con: &mut Connection) {
    log.rec(
        "HSET multiple",
        con.hset_multiple::<_, _, _, ()>("h:1", &[("name", "ferro"), ("lang", "rust"), ("n", "1")]),
    );
    log.rec("HGET", con.hget::<_, _, Option<String>>("h:1", "name"));
    log.rec(
        "HGET missing",
        con.hget::<_, _, Option<String>>("h:1", "none"),
    );
    // A small hash keeps insertion order in Valkey; applications see that order.
    log.rec(
        "HGETALL as pairs",
        con.hgetall::<_, Vec<(String, String)>>("h:1"),
    );
    log.rec(
        "HGETALL as a map",
        con.hgetall::<_, HashMap<String, String>>("h:1")
            .map(|m| m.into_iter().collect::<BTreeMap<_, _>>()),
    );
    log.rec("HKEYS", con.hkeys::<_, Vec<String>>("h:1"));
    log.rec("HVALS", con.hvals::<_, Vec<String>>("h:1"));
    log.rec("HINCRBY", con.hincr::<_, _, _, i64>("h:1", "n", 41));
    log.rec(
        "HINCRBYFLOAT",
        con.hincr::<_, _, _, f64>("h:1", "ratio", 0.25f64),
    );
    log.rec(
        "HINCRBY on text",
        con.hincr::<_, _, _, i64>("h:1", "name", 1),
    );
    log.rec("HEXISTS", con.hexists::<_, _, bool>("h:1", "lang"));
    log.rec("HDEL", con.hdel::<_, _, i64>("h:1", &["lang", "none"]));
    log.rec("HLEN", con.hlen::<_, i64>("h:1"));
    log.rec(
        "HMGET",
        con.hmget::<_, _, Vec<Option<String>>>("h:1", &["name", "n", "none"]),
    );
    log.rec(
        "HSET existing",
        con.hset::<_, _, _, i64>("h:1", "name", "kv"),
    );
    let fields: Vec<(String, String)> = (0..300)
        .map(|i| (format!("f{i}"), format!("v{i}")))
        .collect();
    log.rec(
        "HSET 300 fields",
        con.hset_multiple::<_, _, _, ()>("h:big", &fields),
    );
    let expected: BTreeMap<String, String> = fields.iter().cloned().collect();
    log.rec(
        "HGETALL of 300 fields is complete",
        con.hgetall::<_, HashMap<String, String>>("h:big")
            .map(|m| m.into_iter().collect::<BTreeMap<_, _>>() == expected),
    );
    let scanned: RedisResult<Vec<(String, String)>> = con
        .hscan::<_, (String, String)>("h:big")
        .and_then(|iter| iter.collect());
    log.rec(
        "HSCAN of 300 fields is complete",
        scanned.map(|f| f.into_iter().collect::<BTreeMap<_, _>>() == expected),
    );
}

fn lists(log: &mut Log, db: &Client, con: &mut Connection) {
    log.rec("RPUSH", con.rpush::<_, _, i64>("l:1", &["a", "b", "c"]));
    log.rec("LPUSH", con.lpush::<_, _, i64>("l:1", "z"));
    log.rec("LRANGE", con.lrange::<_, Vec<String>>("l:1", 0, -1));
    log.rec(
        "LPOS",
        con.lpos::<_, _, Option<i64>>("l:1", "b", LposOptions::default()),
    );
    log.rec(
        "LPOS COUNT 0",
        con.lpos::<_, _, Vec<i64>>("l:1", "c", LposOptions::default().count(0)),
    );
    log.rec(
        "LINSERT BEFORE",
        con.linsert_before::<_, _, _, i64>("l:1", "b", "a2"),
    );
    log.rec("LSET", con.lset::<_, _, ()>("l:1", 0, "Z"));
    log.rec("LSET out of range", con.lset::<_, _, ()>("l:1", 99, "Z"));
    log.rec("LINDEX", con.lindex::<_, Option<String>>("l:1", 1));
    log.rec("LLEN", con.llen::<_, i64>("l:1"));
    log.rec("LREM", con.lrem::<_, _, i64>("l:1", 0, "c"));
    log.rec("LTRIM", con.ltrim::<_, ()>("l:1", 0, 2));
    log.rec(
        "LRANGE after LTRIM",
        con.lrange::<_, Vec<String>>("l:1", 0, -1),
    );
    log.rec(
        "LPOP 2",
        con.lpop::<_, Vec<String>>("l:1", NonZeroUsize::new(2)),
    );
    log.rec("LPOP", con.lpop::<_, Option<String>>("l:1", None));
    log.rec(
        "RPOP 2 on a missing key",
        con.rpop::<_, Option<Vec<String>>>("l:none", NonZeroUsize::new(2)),
    );
    log.rec(
        "RPUSH for LMOVE",
        con.rpush::<_, _, i64>("l:src", &["1", "2"]),
    );
    log.rec(
        "LMOVE",
        con.lmove::<_, _, String>("l:src", "l:dst", Direction::Left, Direction::Right),
    );
    log.rec(
        "LRANGE destination",
        con.lrange::<_, Vec<String>>("l:dst", 0, -1),
    );

    let started = Instant::now();
    log.rec(
        "BLPOP times out",
        con.blpop::<_, Option<[String; 2]>>("l:empty", 0.2),
    );
    log.line(
        "BLPOP waited its timeout",
        started.elapsed() >= Duration::from_millis(150),
    );
    // Another connection pushes while this one is blocked.
    let pusher_client = db.clone();
    let pusher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        connect(&pusher_client).rpush::<_, _, i64>("l:wait", "pushed")
    });
    log.rec(
        "BLPOP woken by another connection",
        con.blpop::<_, Option<[String; 2]>>(&["l:other", "l:wait"], 5.0),
    );
    log.rec(
        "RPUSH from the other connection",
        pusher.join().expect("pusher"),
    );
    log.rec("LLEN after BLPOP", con.llen::<_, i64>("l:wait"));
}

fn sets(log: &mut Log, con: &mut Connection) {
    let members = |r: RedisResult<HashSet<String>>| r.map(|s| sorted(s.into_iter().collect()));
    log.rec("SADD", con.sadd::<_, _, i64>("st:a", &["x", "y", "z"]));
    log.rec("SADD again", con.sadd::<_, _, i64>("st:a", &["x", "w"]));
    log.rec("SMEMBERS", members(con.smembers("st:a")));
    log.rec("SISMEMBER", con.sismember::<_, _, bool>("st:a", "y"));
    log.rec(
        "SMISMEMBER",
        con.smismember::<_, _, Vec<bool>>("st:a", &["x", "q"]),
    );
    log.rec("SCARD", con.scard::<_, i64>("st:a"));
    log.rec("SREM", con.srem::<_, _, i64>("st:a", &["z", "none"]));
    log.rec(
        "SADD second set",
        con.sadd::<_, _, i64>("st:b", &["y", "v"]),
    );
    log.rec("SINTER", members(con.sinter(&["st:a", "st:b"])));
    log.rec("SUNION", members(con.sunion(&["st:a", "st:b"])));
    log.rec("SDIFF", members(con.sdiff(&["st:a", "st:b"])));
    log.rec(
        "SINTERSTORE",
        con.sinterstore::<_, _, i64>("st:c", &["st:a", "st:b"]),
    );
    log.rec("SMOVE", con.smove::<_, _, _, bool>("st:a", "st:b", "x"));
    log.rec("SADD integers", con.sadd::<_, _, i64>("st:i", &[3, 1, 2]));
    log.rec(
        "SMEMBERS integers",
        con.smembers::<_, HashSet<i64>>("st:i")
            .map(|s| sorted(s.into_iter().collect())),
    );
    let many: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    log.rec("SADD 200", con.sadd::<_, _, i64>("st:big", &many));
    let scanned: RedisResult<Vec<String>> =
        con.sscan::<_, String>("st:big").and_then(|i| i.collect());
    log.rec(
        "SSCAN of 200 members is complete",
        scanned.map(|s| sorted(s) == sorted(many.clone())),
    );
}

fn sorted_sets(log: &mut Log, con: &mut Connection) {
    log.rec(
        "ZADD multiple",
        con.zadd_multiple::<_, _, _, i64>("z:1", &[(1.5, "a"), (2.0, "b"), (-3.25, "c")]),
    );
    log.rec(
        "ZADD +inf",
        con.zadd::<_, _, _, i64>("z:1", "top", f64::INFINITY),
    );
    log.rec(
        "ZADD -inf",
        con.zadd::<_, _, _, i64>("z:1", "bottom", f64::NEG_INFINITY),
    );
    log.rec(
        "ZADD 0.1+0.2",
        con.zadd::<_, _, _, i64>("z:1", "p", 0.1 + 0.2),
    );
    log.rec("ZSCORE as f64", con.zscore::<_, _, Option<f64>>("z:1", "p"));
    log.rec(
        "ZSCORE as text",
        con.zscore::<_, _, Option<String>>("z:1", "p"),
    );
    log.rec(
        "ZSCORE +inf",
        con.zscore::<_, _, Option<String>>("z:1", "top"),
    );
    log.rec(
        "ZSCORE missing",
        con.zscore::<_, _, Option<f64>>("z:1", "none"),
    );
    log.rec("ZINCRBY", con.zincr::<_, _, _, f64>("z:1", "a", 2.25));
    log.rec(
        "ZINCRBY to NaN",
        con.zincr::<_, _, _, f64>("z:1", "top", f64::NEG_INFINITY),
    );
    log.rec(
        "ZRANGE WITHSCORES",
        con.zrange_withscores::<_, Vec<(String, f64)>>("z:1", 0, -1),
    );
    log.rec(
        "ZREVRANGE WITHSCORES",
        con.zrevrange_withscores::<_, Vec<(String, f64)>>("z:1", 0, 1),
    );
    log.rec(
        "ZRANGEBYSCORE (0 +inf",
        con.zrangebyscore_withscores::<_, _, _, Vec<(String, f64)>>("z:1", "(0", "+inf"),
    );
    log.rec("ZRANK", con.zrank::<_, _, Option<i64>>("z:1", "a"));
    log.rec(
        "ZRANK missing",
        con.zrank::<_, _, Option<i64>>("z:1", "none"),
    );
    log.rec("ZCOUNT", con.zcount::<_, _, _, i64>("z:1", "-inf", "+inf"));
    log.rec("ZPOPMIN", con.zpopmin::<_, Vec<(String, f64)>>("z:1", 1));
    log.rec("ZREM", con.zrem::<_, _, i64>("z:1", &["b", "none"]));
    log.rec("ZCARD", con.zcard::<_, i64>("z:1"));
    log.rec(
        "ZADD a bad score",
        con.zadd::<_, _, _, i64>("z:1", "m", "notafloat"),
    );
    let items: Vec<(f64, String)> = (0..200)
        .map(|i| (i as f64 / 4.0, format!("m{i}")))
        .collect();
    log.rec(
        "ZADD 200",
        con.zadd_multiple::<_, _, _, i64>("z:big", &items),
    );
    let scanned: RedisResult<Vec<(String, f64)>> = con
        .zscan::<_, (String, f64)>("z:big")
        .and_then(|i| i.collect());
    log.rec(
        "ZSCAN of 200 members is complete",
        scanned.map(|s| {
            let mut got: Vec<(String, String)> =
                s.into_iter().map(|(m, v)| (m, v.to_string())).collect();
            got.sort();
            let mut want: Vec<(String, String)> = items
                .iter()
                .map(|(v, m)| (m.clone(), v.to_string()))
                .collect();
            want.sort();
            got == want
        }),
    );
}

fn streams(log: &mut Log, db: &Client, con: &mut Connection) {
    log.rec(
        "XADD 1-1",
        con.xadd::<_, _, _, _, Option<String>>("x:1", "1-1", &[("f", "v1"), ("g", "w1")]),
    );
    log.rec(
        "XADD 1-2",
        con.xadd::<_, _, _, _, Option<String>>("x:1", "1-2", &[("f", "v2")]),
    );
    log.rec(
        "XADD a smaller ID",
        con.xadd::<_, _, _, _, Option<String>>("x:1", "1-1", &[("f", "dup")]),
    );
    log.rec(
        "XADD 2-*",
        con.xadd::<_, _, _, _, Option<String>>("x:1", "2-*", &[("f", "v3")]),
    );
    log.rec("XLEN", con.xlen::<_, i64>("x:1"));
    log.rec(
        "XRANGE - +",
        con.xrange_all::<_, StreamRangeReply>("x:1")
            .map(|r| entries(&r.ids)),
    );
    log.rec(
        "XRANGE 1-2 +",
        con.xrange::<_, _, _, StreamRangeReply>("x:1", "1-2", "+")
            .map(|r| entries(&r.ids)),
    );
    log.rec(
        "XREAD COUNT 1",
        con.xread_options::<_, _, Option<StreamReadReply>>(
            &["x:1"],
            &["1-1"],
            &StreamReadOptions::default().count(1),
        )
        .map(|r| read_reply(&r)),
    );
    log.rec(
        "XGROUP CREATE",
        con.xgroup_create::<_, _, _, String>("x:1", "g1", "0"),
    );
    log.rec(
        "XGROUP CREATE again",
        con.xgroup_create::<_, _, _, String>("x:1", "g1", "0"),
    );
    log.rec(
        "XGROUP CREATE MKSTREAM",
        con.xgroup_create_mkstream::<_, _, _, String>("x:new", "g", "$"),
    );
    let group = |consumer: &str| StreamReadOptions::default().group("g1", consumer);
    log.rec(
        "XREADGROUP COUNT 2",
        con.xread_options::<_, _, Option<StreamReadReply>>(
            &["x:1"],
            &[">"],
            &group("alice").count(2),
        )
        .map(|r| read_reply(&r)),
    );
    log.rec(
        "XPENDING summary",
        con.xpending::<_, _, StreamPendingReply>("x:1", "g1")
            .map(|p| match p {
                StreamPendingReply::Data(d) => format!(
                    "{} {}..{} {:?}",
                    d.count,
                    d.start_id,
                    d.end_id,
                    d.consumers
                        .iter()
                        .map(|c| (c.name.clone(), c.pending))
                        .collect::<Vec<_>>()
                ),
                other => format!("{other:?}"),
            }),
    );
    log.rec("XACK", con.xack::<_, _, _, i64>("x:1", "g1", &["1-1"]));
    log.rec(
        "XPENDING range",
        con.xpending_count::<_, _, _, _, _, StreamPendingCountReply>("x:1", "g1", "-", "+", 10)
            .map(|p| {
                p.ids
                    .iter()
                    .map(|i| (i.id.clone(), i.consumer.clone(), i.times_delivered))
                    .collect::<Vec<_>>()
            }),
    );
    log.rec(
        "XAUTOCLAIM",
        con.xautoclaim_options::<_, _, _, _, _, StreamAutoClaimReply>(
            "x:1",
            "g1",
            "bob",
            0,
            "0-0",
            StreamAutoClaimOptions::default().count(10),
        )
        .map(|r| (r.next_stream_id.clone(), entries(&r.claimed), r.deleted_ids)),
    );
    log.rec(
        "XREADGROUP the rest",
        con.xread_options::<_, _, Option<StreamReadReply>>(&["x:1"], &[">"], &group("alice"))
            .map(|r| read_reply(&r)),
    );
    log.rec(
        "XREADGROUP BLOCK 100 with nothing new",
        con.xread_options::<_, _, Option<StreamReadReply>>(
            &["x:1"],
            &[">"],
            &group("alice").block(100),
        )
        .map(|r| read_reply(&r)),
    );
    let adder_client = db.clone();
    let adder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        connect(&adder_client).xadd::<_, _, _, _, Option<String>>("x:1", "3-0", &[("f", "late")])
    });
    log.rec(
        "XREADGROUP BLOCK woken by XADD",
        con.xread_options::<_, _, Option<StreamReadReply>>(
            &["x:1"],
            &[">"],
            &group("carol").block(5000),
        )
        .map(|r| read_reply(&r)),
    );
    log.rec(
        "XADD from the other connection",
        adder.join().expect("adder"),
    );
    log.rec(
        "XINFO GROUPS",
        con.xinfo_groups::<_, StreamInfoGroupsReply>("x:1")
            .map(|r| {
                r.groups
                    .iter()
                    .map(|g| {
                        format!(
                            "{} consumers={} pending={} last={} read={:?} lag={:?}",
                            g.name,
                            g.consumers,
                            g.pending,
                            g.last_delivered_id,
                            g.entries_read,
                            g.lag
                        )
                    })
                    .collect::<Vec<_>>()
            }),
    );
    log.rec("XDEL", con.xdel::<_, _, i64>("x:1", &["1-2"]));
    log.rec(
        "XTRIM MAXLEN 1",
        con.xtrim::<_, i64>("x:1", StreamMaxlen::Equals(1)),
    );
    log.rec("XLEN after XTRIM", con.xlen::<_, i64>("x:1"));
    log.rec(
        "SET a string for XADD",
        con.set::<_, _, String>("x:str", "v"),
    );
    log.rec(
        "XADD on a string",
        con.xadd::<_, _, _, _, Option<String>>("x:str", "*", &[("f", "v")]),
    );
}

fn keys_and_scan(log: &mut Log, con: &mut Connection) {
    let mut fill = pipe();
    for i in 0..300 {
        fill.set(format!("scan:{i}"), i).ignore();
    }
    log.rec("SET 300 keys in a pipeline", fill.query::<()>(con));
    let all: Vec<String> = sorted((0..300).map(|i| format!("scan:{i}")).collect());
    let scanned: RedisResult<Vec<String>> = con
        .scan_match::<_, String>("scan:*")
        .and_then(|i| i.collect());
    log.rec(
        "SCAN MATCH scan:* is complete",
        scanned.map(|s| sorted(s) == all),
    );
    let scanned: RedisResult<Vec<String>> = con
        .scan_options::<String>(ScanOptions::default().with_pattern("scan:1?").with_count(7))
        .and_then(|i| i.collect());
    log.rec("SCAN MATCH scan:1? COUNT 7", scanned.map(sorted));
    let scanned: RedisResult<Vec<String>> = con
        .scan_options::<String>(ScanOptions::default().with_type("hash"))
        .and_then(|i| i.collect());
    log.rec("SCAN TYPE hash", scanned.map(sorted));
    log.rec("KEYS", con.keys::<_, Vec<String>>("scan:29?").map(sorted));
    log.rec(
        "EXISTS several",
        con.exists::<_, i64>(&["scan:1", "scan:2", "nope"]),
    );
    for key in ["s:m1", "l:dst", "st:a", "z:1", "h:1", "x:1", "nope"] {
        log.rec(
            &format!("TYPE {key}"),
            con.key_type::<_, redis::ValueType>(key),
        );
    }
    log.rec("RENAME", con.rename::<_, _, ()>("scan:0", "renamed:0"));
    log.rec(
        "RENAMENX onto an existing key",
        con.rename_nx::<_, _, bool>("scan:1", "scan:2"),
    );
    log.rec(
        "RENAME a missing key",
        con.rename::<_, _, ()>("scan:0", "renamed:1"),
    );
    log.rec("EXPIRE", con.expire::<_, bool>("renamed:0", 100));
    log.rec("TTL", con.ttl::<_, i64>("renamed:0"));
    log.rec("PERSIST", con.persist::<_, bool>("renamed:0"));
    log.rec("TTL after PERSIST", con.ttl::<_, i64>("renamed:0"));
    log.rec("TTL missing", con.ttl::<_, i64>("nope"));
    log.rec("EXPIRE missing", con.expire::<_, bool>("nope", 100));
    log.rec("PEXPIRE 50", con.pexpire::<_, bool>("renamed:0", 50));
    std::thread::sleep(Duration::from_millis(150));
    log.rec("EXISTS after expiry", con.exists::<_, bool>("renamed:0"));
    log.rec("DEL", con.del::<_, i64>(&["scan:1", "scan:2", "nope"]));
    log.rec("UNLINK", con.unlink::<_, i64>(&["scan:3", "nope"]));
    log.rec("DBSIZE", cmd("DBSIZE").query::<i64>(con));
}

/// The INFO fields that say what the server is, not how it is doing. `server_name` is only
/// checked to be there: ferrokv names itself there on purpose (see cmd/info.rs), while the
/// version fields name the Valkey it behaves as, which is what clients read.
fn info_fields(info: &redis::InfoDict) -> Vec<String> {
    let named = format!(
        "server_name set={}",
        info.get::<String>("server_name").is_some()
    );
    [
        "redis_version",
        "valkey_version",
        "redis_mode",
        "role",
        "maxmemory_policy",
        "aof_enabled",
        "cluster_enabled",
    ]
    .iter()
    .map(|f| format!("{f}={:?}", info.get::<String>(f)))
    .chain([named])
    .collect()
}

fn other_types(log: &mut Log, con: &mut Connection) {
    log.rec("SETBIT", con.setbit::<_, bool>("o:bits", 7, true));
    log.rec("SETBIT again", con.setbit::<_, bool>("o:bits", 7, true));
    log.rec("GETBIT", con.getbit::<_, bool>("o:bits", 7));
    log.rec("BITCOUNT", con.bitcount::<_, i64>("o:bits"));
    log.rec("GET a bitmap", con.get::<_, Vec<u8>>("o:bits"));
    log.rec(
        "PFADD",
        con.pfadd::<_, _, bool>("o:hll", &["a", "b", "c", "a"]),
    );
    log.rec("PFADD nothing new", con.pfadd::<_, _, bool>("o:hll", "b"));
    log.rec("PFCOUNT", con.pfcount::<_, i64>("o:hll"));
    log.rec(
        "GEOADD",
        cmd("GEOADD")
            .arg("o:geo")
            .arg(&[
                "13.361389",
                "38.115556",
                "Palermo",
                "15.087269",
                "37.502669",
                "Catania",
            ])
            .query::<i64>(con),
    );
    log.rec(
        "GEODIST km",
        cmd("GEODIST")
            .arg(&["o:geo", "Palermo", "Catania", "km"])
            .query::<String>(con),
    );
    log.rec(
        "GEOPOS",
        cmd("GEOPOS")
            .arg(&["o:geo", "Palermo", "nowhere"])
            .query::<Value>(con),
    );
    log.rec(
        "GEOSEARCH WITHDIST WITHCOORD",
        cmd("GEOSEARCH")
            .arg(&[
                "o:geo",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "ASC",
            ])
            .arg(&["WITHDIST", "WITHCOORD"])
            .query::<Value>(con),
    );
    // Hash fields with their own expiry (Valkey 9).
    log.rec(
        "HSET for field expiry",
        con.hset_multiple::<_, _, _, ()>("o:hf", &[("a", "1"), ("b", "2")]),
    );
    log.rec(
        "HEXPIRE",
        con.hexpire::<_, _, Vec<i64>>("o:hf", 100, redis::ExpireOption::NONE, &["a", "none"]),
    );
    log.rec(
        "HEXPIRE NX on a field with a TTL",
        con.hexpire::<_, _, Vec<i64>>("o:hf", 50, redis::ExpireOption::NX, "a"),
    );
    log.rec(
        "HTTL",
        con.httl::<_, _, Vec<i64>>("o:hf", &["a", "b", "none"]),
    );
    log.rec(
        "HPERSIST",
        con.hpersist::<_, _, Vec<i64>>("o:hf", &["a", "b"]),
    );
    log.rec(
        "HPEXPIRE 50",
        con.hpexpire::<_, _, Vec<i64>>("o:hf", 50, redis::ExpireOption::NONE, "b"),
    );
    std::thread::sleep(Duration::from_millis(150));
    log.rec(
        "HGETALL after a field expired",
        con.hgetall::<_, Vec<(String, String)>>("o:hf"),
    );
    log.rec(
        "HGETEX EX",
        con.hget_ex::<_, _, Vec<Option<String>>>("o:hf", &["a", "none"], Expiry::EX(70)),
    );
    log.rec("HTTL after HGETEX", con.httl::<_, _, Vec<i64>>("o:hf", "a"));
    let options = redis::HashFieldExpirationOptions::default()
        .set_existence_check(redis::FieldExistenceCheck::FNX)
        .set_expiration(SetExpiry::EX(80));
    log.rec(
        "HSETEX FNX EX",
        con.hset_ex::<_, _, _, Value>("o:hf", &options, &[("c", "3"), ("d", "4")]),
    );
    log.rec(
        "HSETEX FNX on an existing field",
        con.hset_ex::<_, _, _, Value>("o:hf", &options, &[("c", "5")]),
    );
    log.rec(
        "HTTL after HSETEX",
        con.httl::<_, _, Vec<i64>>("o:hf", &["c", "d"]),
    );
    log.rec(
        "MOVE to db 4",
        cmd("MOVE").arg("o:hll").arg(4).query::<bool>(con),
    );
    log.rec("EXISTS after MOVE", con.exists::<_, bool>("o:hll"));
    log.rec(
        "XINFO STREAM",
        con.xinfo_stream::<_, redis::streams::StreamInfoStreamReply>("x:1")
            .map(|i| {
                format!(
                    "length={} groups={} last={} first={} last_entry={}",
                    i.length,
                    i.groups,
                    i.last_generated_id,
                    entry(&i.first_entry),
                    entry(&i.last_entry)
                )
            }),
    );
    log.rec(
        "INFO server",
        cmd("INFO")
            .arg("server")
            .query::<redis::InfoDict>(con)
            .map(|i| info_fields(&i)),
    );
    log.rec(
        "INFO everything",
        cmd("INFO")
            .query::<redis::InfoDict>(con)
            .map(|i| info_fields(&i)),
    );
}

/// MULTI/EXEC sent as single commands, as applications without the pipeline helper do.
fn raw_multi(log: &mut Log, con: &mut Connection) {
    log.rec("EXEC without MULTI", cmd("EXEC").query::<Value>(con));
    log.rec("MULTI", cmd("MULTI").query::<Value>(con));
    log.rec("MULTI nested", cmd("MULTI").query::<Value>(con));
    log.rec(
        "WATCH inside MULTI",
        cmd("WATCH").arg("m:k").query::<Value>(con),
    );
    log.rec(
        "SET queued",
        cmd("SET").arg("m:k").arg("1").query::<Value>(con),
    );
    log.rec("INCR queued", cmd("INCR").arg("m:k").query::<Value>(con));
    log.rec("EXEC", cmd("EXEC").query::<Value>(con));
    log.rec("MULTI again", cmd("MULTI").query::<Value>(con));
    log.rec(
        "INCR queued again",
        cmd("INCR").arg("m:k").query::<Value>(con),
    );
    log.rec("DISCARD", cmd("DISCARD").query::<Value>(con));
    log.rec("value after DISCARD", con.get::<_, i64>("m:k"));
    log.rec("DISCARD without MULTI", cmd("DISCARD").query::<Value>(con));
}

fn pipelines(log: &mut Log, con: &mut Connection) {
    log.rec(
        "pipeline",
        pipe()
            .set("p:a", 1)
            .ignore()
            .incr("p:a", 5)
            .get("p:a")
            .get("p:none")
            .query::<(i64, String, Option<String>)>(con),
    );
    log.rec(
        "atomic pipeline",
        pipe()
            .atomic()
            .set("p:b", "x")
            .ignore()
            .append("p:b", "y")
            .get("p:b")
            .query::<(i64, String)>(con),
    );
    log.rec(
        "pipeline with a failing command",
        pipe()
            .set("p:s", "str")
            .incr("p:s", 1)
            .get("p:s")
            .query::<(String, i64, String)>(con),
    );
    log.rec(
        "pipeline with a failing command as values",
        pipe()
            .set("p:s", "str")
            .incr("p:s", 1)
            .get("p:s")
            .query::<Vec<Value>>(con),
    );
    log.rec(
        "atomic pipeline with a failing command",
        pipe()
            .atomic()
            .set("p:t", "str")
            .incr("p:t", 1)
            .set("p:t2", "after")
            .query::<Value>(con),
    );
    log.rec(
        "EXEC does not roll back",
        con.get::<_, Option<String>>("p:t2"),
    );
    log.rec(
        "atomic pipeline with a malformed command",
        pipe()
            .atomic()
            .set("p:u", "1")
            .cmd("SET")
            .arg("p:only")
            .query::<Value>(con),
    );
    log.rec(
        "EXECABORT discarded everything",
        con.get::<_, Option<String>>("p:u"),
    );
    let mut many = pipe();
    for _ in 0..1000 {
        many.incr("p:count", 1);
    }
    log.rec(
        "pipeline of 1000 INCR",
        many.query::<Vec<i64>>(con)
            .map(|v| (v.len(), v.first().copied(), v.last().copied())),
    );
    log.rec(
        "connection in order after the pipelines",
        con.get::<_, i64>("p:count"),
    );
}

fn transactions(log: &mut Log, db: &Client, con: &mut Connection) {
    log.rec("SET counter", con.set::<_, _, String>("tx:counter", 10));
    let mut other = connect(db);
    let mut attempts = 0;
    let result: RedisResult<(i64,)> = redis::transaction(con, &["tx:counter"], |con, pipe| {
        attempts += 1;
        let value: i64 = con.get("tx:counter")?;
        if attempts == 1 {
            // A write between WATCH and EXEC must abort the first EXEC.
            let _: () = other.set("tx:counter", 100)?;
        }
        pipe.set("tx:counter", value + 1)
            .ignore()
            .get("tx:counter")
            .query(con)
    });
    log.rec("transaction with a conflicting write", result);
    log.line("transaction attempts", attempts);
    log.rec(
        "counter after the transaction",
        con.get::<_, i64>("tx:counter"),
    );

    log.rec("WATCH", cmd("WATCH").arg("tx:w").query::<String>(con));
    log.rec(
        "conflicting SET",
        other.set::<_, _, String>("tx:w", "other"),
    );
    log.rec(
        "EXEC after a conflict is nil",
        pipe()
            .atomic()
            .set("tx:w", "mine")
            .ignore()
            .get("tx:w")
            .query::<Option<(String,)>>(con),
    );
    log.rec("value after the aborted EXEC", con.get::<_, String>("tx:w"));
    log.rec(
        "WATCH a key",
        cmd("WATCH").arg("tx:w2").query::<String>(con),
    );
    log.rec("UNWATCH", cmd("UNWATCH").query::<String>(con));
    log.rec(
        "SET from elsewhere",
        other.set::<_, _, String>("tx:w2", "x"),
    );
    log.rec(
        "EXEC after UNWATCH runs",
        pipe()
            .atomic()
            .set("tx:w2", "mine")
            .ignore()
            .get("tx:w2")
            .query::<Option<(String,)>>(con),
    );
}

fn scripts(log: &mut Log, con: &mut Connection) {
    let script = Script::new(
        "redis.call('SET', KEYS[1], ARGV[1]) \
         return {KEYS[1], redis.call('GET', KEYS[1]), tonumber(ARGV[1]) * 2, 3.99, true, false, 'end'}",
    );
    log.line("script hash", script.get_hash());
    let exists = |con: &mut Connection, hash: &str| {
        cmd("SCRIPT")
            .arg("EXISTS")
            .arg(hash)
            .query::<Vec<bool>>(con)
    };
    log.rec("SCRIPT EXISTS before", exists(con, script.get_hash()));
    // EVALSHA answers NOSCRIPT; redis-rs loads the script and retries.
    log.rec(
        "first invocation",
        script.key("sc:k").arg(21).invoke::<Value>(con),
    );
    log.rec("SCRIPT EXISTS after", exists(con, script.get_hash()));
    log.rec(
        "second invocation",
        script.key("sc:k").arg(4).invoke::<Value>(con),
    );
    log.rec(
        "SCRIPT FLUSH",
        cmd("SCRIPT").arg("FLUSH").query::<String>(con),
    );
    log.rec("SCRIPT EXISTS after FLUSH", exists(con, script.get_hash()));
    log.rec(
        "invocation after SCRIPT FLUSH",
        script.key("sc:k").arg(5).invoke::<Value>(con),
    );
    log.rec("SET a text value", con.set::<_, _, String>("sc:str", "abc"));
    let cases = [
        (
            "INCR on text in a script",
            "return redis.call('INCR', KEYS[1])",
        ),
        (
            "error_reply",
            "return redis.error_reply('MYERR custom failure')",
        ),
        ("status_reply", "return redis.status_reply('FINE')"),
        ("a table with a nil", "return {1, 2, nil, 4}"),
        (
            "pcall of an unknown command",
            "return redis.pcall('NOSUCH')",
        ),
        ("call of an unknown command", "return redis.call('NOSUCH')"),
        (
            "cjson",
            "return cjson.encode(cjson.decode('[1,2,{\"a\":3}]'))",
        ),
        ("sha1hex", "return redis.sha1hex('abc')"),
        ("a runtime Lua error", "local t = nil return t.x"),
        ("a syntax error", "return ("),
        ("a float", "return 3.7"),
        ("nested tables", "return {{1, {2, 'x'}}, {}}"),
    ];
    for (what, body) in cases {
        log.rec(what, Script::new(body).key("sc:str").invoke::<Value>(con));
    }
    let library = "#!lua name=rrlib\nredis.register_function('rr_echo', function(keys, args) return args[1] end)";
    log.rec(
        "FUNCTION LOAD",
        cmd("FUNCTION")
            .arg("LOAD")
            .arg(library)
            .query::<String>(con),
    );
    log.rec(
        "FCALL",
        cmd("FCALL")
            .arg("rr_echo")
            .arg(0)
            .arg("hello")
            .query::<String>(con),
    );
    log.rec(
        "FUNCTION DELETE",
        cmd("FUNCTION")
            .arg("DELETE")
            .arg("rrlib")
            .query::<String>(con),
    );
    log.rec(
        "FCALL a deleted function",
        cmd("FCALL").arg("rr_echo").arg(0).query::<Value>(con),
    );
}

fn errors(log: &mut Log, con: &mut Connection) {
    log.rec("RPUSH", con.rpush::<_, _, i64>("e:list", "x"));
    log.rec("GET on a list", con.get::<_, Option<String>>("e:list"));
    log.rec("GET without a key", cmd("GET").query::<Value>(con));
    log.rec(
        "an unknown command",
        cmd("NOSUCHCMD").arg("a").arg("b").query::<Value>(con),
    );
    log.rec(
        "SET NX XX",
        cmd("SET")
            .arg("e:k")
            .arg("v")
            .arg("NX")
            .arg("XX")
            .query::<Value>(con),
    );
    log.rec("SET text", con.set::<_, _, String>("e:str", "abc"));
    log.rec("INCR on text", con.incr::<_, _, i64>("e:str", 1));
    log.rec(
        "EXPIRE NX XX",
        cmd("EXPIRE")
            .arg("e:str")
            .arg(10)
            .arg("NX")
            .arg("XX")
            .query::<Value>(con),
    );
    log.rec(
        "LRANGE with a non-integer",
        cmd("LRANGE")
            .arg("e:list")
            .arg("a")
            .arg(1)
            .query::<Value>(con),
    );
    log.rec("SELECT 99", cmd("SELECT").arg(99).query::<Value>(con));
    log.rec(
        "HSET with a missing value",
        cmd("HSET").arg("e:h").arg("f").query::<Value>(con),
    );
    log.rec(
        "SETEX with a negative time",
        cmd("SETEX").arg("e:k").arg(-1).arg("v").query::<Value>(con),
    );
    log.rec(
        "ZADD INCR with two pairs",
        cmd("ZADD")
            .arg("e:z")
            .arg("INCR")
            .arg(1)
            .arg("a")
            .arg(2)
            .arg("b")
            .query::<Value>(con),
    );
    log.rec(
        "text read as an integer (client side)",
        con.get::<_, i64>("e:str"),
    );
    log.rec(
        "nil read as a String (client side)",
        con.get::<_, String>("e:none"),
    );
    log.rec("connection usable after the errors", con.ping::<String>());
}

fn large_and_binary(log: &mut Log, con: &mut Connection) {
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    log.rec("SET 1 MB", con.set::<_, _, String>("big:1", &big));
    log.rec(
        "GET 1 MB is the same",
        con.get::<_, Vec<u8>>("big:1").map(|v| (v.len(), v == big)),
    );
    log.rec("STRLEN 1 MB", con.strlen::<_, i64>("big:1"));
    log.rec(
        "GETRANGE at the end of 1 MB",
        con.getrange::<_, Vec<u8>>("big:1", -4, -1),
    );
    let key: Vec<u8> = (0..=255u8).collect();
    let value: Vec<u8> = (0..=255u8).rev().collect();
    log.rec(
        "SET binary key and value",
        con.set::<_, _, String>(&key, &value),
    );
    log.rec(
        "GET binary",
        con.get::<_, Vec<u8>>(&key).map(|v| v == value),
    );
    log.rec("EXISTS binary", con.exists::<_, bool>(&key));
    log.rec(
        "KEYS finds the binary key",
        cmd("KEYS")
            .arg(&b"*\xfe\xff"[..])
            .query::<Vec<Vec<u8>>>(con)
            .map(|k| k == vec![key.clone()]),
    );
    log.rec(
        "HSET binary field",
        con.hset::<_, _, _, i64>("bin:h", &key, &value),
    );
    log.rec(
        "HGET binary field",
        con.hget::<_, _, Vec<u8>>("bin:h", &key).map(|v| v == value),
    );
    log.rec("RPUSH binary", con.rpush::<_, _, i64>("bin:l", &value));
    log.rec(
        "LRANGE binary",
        con.lrange::<_, Vec<Vec<u8>>>("bin:l", 0, -1)
            .map(|v| v == vec![value.clone()]),
    );
    log.rec(
        "ZADD binary member",
        con.zadd::<_, _, _, i64>("bin:z", &key, 1.5),
    );
    log.rec(
        "ZSCORE binary member",
        con.zscore::<_, _, f64>("bin:z", &key),
    );
    let mut big_pipe = pipe();
    for i in 0..20 {
        big_pipe
            .set(format!("big:{i}"), &big[..(i + 1) * 50_000])
            .ignore();
    }
    big_pipe.strlen("big:19");
    log.rec("pipeline of 20 large values", big_pipe.query::<(i64,)>(con));
}

/// Key-space notifications, which applications subscribe to for expiry events.
fn keyspace_events(log: &mut Log, port: u16) {
    let db0 = client(&url(port, 0));
    let mut admin = connect(&db0);
    let mut subscriber = connect(&db0);
    log.rec(
        "CONFIG SET notify-keyspace-events",
        cmd("CONFIG")
            .arg(&["SET", "notify-keyspace-events", "KEA"])
            .query::<String>(&mut admin),
    );
    {
        let mut ps = subscriber.as_pubsub();
        ps.set_read_timeout(Some(WAIT)).expect("read timeout");
        log.rec("PSUBSCRIBE key events", ps.psubscribe("__keyevent@0__:*"));
        log.rec(
            "SUBSCRIBE a key's space",
            ps.subscribe("__keyspace@0__:ev:k"),
        );
        log.rec("SET", admin.set::<_, _, String>("ev:k", "v"));
        log.rec("PEXPIRE", admin.pexpire::<_, bool>("ev:k", 20));
        // The expired event comes by itself, from the server's expiry cycle.
        for i in 0..6 {
            log.rec(&format!("event {i}"), ps.get_message().map(|m| message(&m)));
        }
    }
    log.rec(
        "CONFIG SET notify-keyspace-events off",
        cmd("CONFIG")
            .arg(&["SET", "notify-keyspace-events", ""])
            .query::<String>(&mut admin),
    );
}

fn message(msg: &redis::Msg) -> String {
    format!(
        "channel={:?} payload={:?} pattern={:?}",
        msg.get_channel_name(),
        msg.get_payload_bytes(),
        msg.get_pattern::<Option<String>>().ok().flatten(),
    )
}

fn pubsub(log: &mut Log, port: u16) {
    let db0 = client(&url(port, 0));
    let mut subscriber = connect(&db0);
    let mut publisher = connect(&db0);
    {
        let mut ps = subscriber.as_pubsub();
        ps.set_read_timeout(Some(WAIT)).expect("read timeout");
        // One channel a call: with several, redis-rs returns after the first confirmation,
        // and the next call would take the rest for its own, racing the publisher.
        log.rec("SUBSCRIBE", ps.subscribe("ps:news"));
        log.rec("SUBSCRIBE another", ps.subscribe("ps:alerts"));
        log.rec("PSUBSCRIBE", ps.psubscribe("ps:ev.*"));
        log.rec(
            "PUBSUB NUMSUB",
            cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("ps:news")
                .arg("ps:none")
                .query::<Vec<(String, i64)>>(&mut publisher),
        );
        log.rec(
            "PUBSUB NUMPAT",
            cmd("PUBSUB").arg("NUMPAT").query::<i64>(&mut publisher),
        );
        log.rec(
            "PUBSUB CHANNELS",
            cmd("PUBSUB")
                .arg("CHANNELS")
                .arg("ps:*")
                .query::<Vec<String>>(&mut publisher)
                .map(sorted),
        );
        log.rec(
            "PUBLISH to a channel",
            publisher.publish::<_, _, i64>("ps:news", "hello"),
        );
        log.rec(
            "PUBLISH to a pattern",
            publisher.publish::<_, _, i64>("ps:ev.login", "u1"),
        );
        log.rec(
            "PUBLISH binary",
            publisher.publish::<_, _, i64>("ps:alerts", &[0u8, 255, 13, 10][..]),
        );
        log.rec(
            "PUBLISH to nobody",
            publisher.publish::<_, _, i64>("ps:nobody", "x"),
        );
        for i in 0..3 {
            log.rec(
                &format!("message {i}"),
                ps.get_message().map(|m| message(&m)),
            );
        }
        log.rec("PING while subscribed", ps.ping::<Value>());
        log.rec("UNSUBSCRIBE", ps.unsubscribe("ps:news"));
        log.rec(
            "PUBLISH after UNSUBSCRIBE",
            publisher.publish::<_, _, i64>("ps:news", "late"),
        );
        log.rec(
            "PUBLISH to the channel still subscribed",
            publisher.publish::<_, _, i64>("ps:alerts", "still"),
        );
        log.rec(
            "message after UNSUBSCRIBE",
            ps.get_message().map(|m| message(&m)),
        );
    }
    // Dropping the PubSub unsubscribes from everything: the connection serves commands again.
    log.rec(
        "GET after leaving pub/sub",
        subscriber.get::<_, Option<String>>("ps:none"),
    );
    log.rec(
        "PUBSUB NUMPAT after leaving",
        cmd("PUBSUB").arg("NUMPAT").query::<i64>(&mut publisher),
    );
}

/// Sends PINGs (which read whatever push messages came first) until `count` pushes came, or
/// the wait is over.
fn pump(con: &mut Connection, rx: &mpsc::Receiver<PushInfo>, count: usize) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < count && Instant::now() < deadline {
        if let Err(e) = cmd("PING").query::<Value>(con) {
            got.push(error(&e));
            break;
        }
        got.extend(rx.try_iter().map(|p| format!("{:?} {:?}", p.kind, p.data)));
        if got.len() < count {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    got
}

fn resp3(log: &mut Log, port: u16) {
    let resp3 = client(&format!("redis://127.0.0.1:{port}/3?protocol=resp3"));
    let mut con = connect(&resp3);
    let mut other = connect(&client(&url(port, 3)));
    let hello = cmd("HELLO")
        .arg(3)
        .query::<Value>(&mut con)
        .map(|v| match v {
            Value::Map(pairs) => Value::Map(
                pairs
                    .into_iter()
                    .filter(|(k, _)| !matches!(k, Value::BulkString(b) if b == b"id"))
                    .collect(),
            ),
            other => other,
        });
    log.rec("HELLO 3", hello);
    log.rec(
        "CLIENT INFO over RESP3",
        cmd("CLIENT")
            .arg("INFO")
            .query::<String>(&mut con)
            .map(|i| client_info_fields(&i)),
    );
    log.rec(
        "HSET",
        con.hset_multiple::<_, _, _, ()>("r3:h", &[("a", "1"), ("b", "2")]),
    );
    log.rec("HGETALL as a map", con.hgetall::<_, Value>("r3:h"));
    log.rec(
        "HGETALL as a HashMap",
        con.hgetall::<_, HashMap<String, i64>>("r3:h")
            .map(|m| m.into_iter().collect::<BTreeMap<_, _>>()),
    );
    log.rec("SADD", con.sadd::<_, _, i64>("r3:s", &["x", "y", "z"]));
    log.rec(
        "SMEMBERS as a set",
        con.smembers::<_, Value>("r3:s").map(canonical),
    );
    log.rec("ZADD", con.zadd::<_, _, _, i64>("r3:z", "m", 2.5));
    log.rec("ZSCORE as a double", con.zscore::<_, _, Value>("r3:z", "m"));
    log.rec(
        "ZRANGE WITHSCORES",
        con.zrange_withscores::<_, Value>("r3:z", 0, -1),
    );
    log.rec(
        "ZRANGE WITHSCORES typed",
        con.zrange_withscores::<_, Vec<(String, f64)>>("r3:z", 0, -1),
    );
    log.rec("GET missing is null", con.get::<_, Value>("r3:none"));
    log.rec("INCRBYFLOAT", con.incr::<_, _, Value>("r3:f", 1.5f64));
    log.rec("EXISTS", con.exists::<_, Value>("r3:h"));
    log.rec(
        "CONFIG GET as a map",
        cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query::<Value>(&mut con),
    );
    log.rec("a RESP3 error", con.get::<_, Value>("r3:h"));

    // Push messages: subscriptions, messages, and client-side caching invalidations.
    let (tx, rx) = mpsc::channel();
    con.set_push_sender(tx);
    log.rec("SUBSCRIBE over RESP3", con.subscribe_resp3("r3:ch"));
    log.rec("PSUBSCRIBE over RESP3", con.psubscribe_resp3("r3:p.*"));
    log.line("subscription pushes", pump(&mut con, &rx, 2));
    log.rec("PUBLISH", other.publish::<_, _, i64>("r3:ch", "m1"));
    log.rec(
        "PUBLISH to the pattern",
        other.publish::<_, _, i64>("r3:p.x", "m2"),
    );
    log.line("message pushes", pump(&mut con, &rx, 2));
    log.rec(
        "GET while subscribed over RESP3",
        con.get::<_, Option<String>>("r3:f"),
    );
    log.rec("UNSUBSCRIBE over RESP3", con.unsubscribe_resp3("r3:ch"));
    log.line("unsubscribe push", pump(&mut con, &rx, 1));

    let mut tracking = connect(&resp3);
    let (tx, rx) = mpsc::channel();
    tracking.set_push_sender(tx);
    log.rec(
        "CLIENT TRACKING ON",
        cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .query::<String>(&mut tracking),
    );
    log.rec(
        "GET a tracked key",
        tracking.get::<_, Option<String>>("r3:tk"),
    );
    log.rec(
        "SET the tracked key elsewhere",
        other.set::<_, _, String>("r3:tk", "new"),
    );
    log.line("invalidation push", pump(&mut tracking, &rx, 1));
}

fn auth(log: &mut Log, port: u16) {
    let mut admin = connect(&client(&url(port, 0)));
    log.rec(
        "ACL SETUSER",
        cmd("ACL")
            .arg(&[
                "SETUSER", "rr-app", "reset", "on", ">s3cret", "~app:*", "&*", "+@all",
            ])
            .query::<String>(&mut admin),
    );
    let user_url =
        |password: &str, query: &str| format!("redis://rr-app:{password}@127.0.0.1:{port}/{query}");
    match client(&user_url("s3cret", "")).get_connection_with_timeout(WAIT) {
        Ok(mut con) => {
            log.rec(
                "ACL WHOAMI",
                cmd("ACL").arg("WHOAMI").query::<String>(&mut con),
            );
            log.rec("SET an allowed key", con.set::<_, _, String>("app:x", 1));
            log.rec("SET a forbidden key", con.set::<_, _, String>("other", 1));
            log.rec("GET an allowed key", con.get::<_, Option<String>>("app:x"));
        }
        Err(e) => log.line("connect as rr-app", error(&e)),
    }
    log.rec(
        "connect with a wrong password",
        client(&user_url("wrong", ""))
            .get_connection_with_timeout(WAIT)
            .map(|_| ()),
    );
    log.rec(
        "connect with a wrong password over RESP3",
        client(&user_url("wrong", "?protocol=resp3"))
            .get_connection_with_timeout(WAIT)
            .map(|_| ()),
    );
    match client(&user_url("s3cret", "?protocol=resp3")).get_connection_with_timeout(WAIT) {
        Ok(mut con) => {
            log.rec(
                "ACL WHOAMI over RESP3",
                cmd("ACL").arg("WHOAMI").query::<String>(&mut con),
            );
        }
        Err(e) => log.line("connect as rr-app over RESP3", error(&e)),
    }
    log.rec(
        "connect as an unknown user",
        client(&format!("redis://nobody:pw@127.0.0.1:{port}/"))
            .get_connection_with_timeout(WAIT)
            .map(|_| ()),
    );
    log.rec(
        "a password for the default user without requirepass",
        client(&format!("redis://:pw@127.0.0.1:{port}/"))
            .get_connection_with_timeout(WAIT)
            .map(|_| ()),
    );
    log.rec(
        "ACL DELUSER",
        cmd("ACL")
            .arg("DELUSER")
            .arg("rr-app")
            .query::<i64>(&mut admin),
    );
}

async fn async_session(log: &mut Log, port: u16) {
    let db3 = client(&url(port, 3));
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(WAIT))
        .set_response_timeout(Some(WAIT));
    let multiplexed = || db3.get_multiplexed_async_connection_with_config(&config);
    let mut con = multiplexed().await.expect("multiplexed connection");
    log.rec("async SET", con.set::<_, _, String>("a:1", "v").await);
    log.rec("async GET", con.get::<_, Option<String>>("a:1").await);
    let (mut c1, mut c2, mut c3) = (con.clone(), con.clone(), con.clone());
    let (r1, r2, r3) = tokio::join!(
        c1.incr::<_, _, i64>("a:n1", 1),
        c2.incr::<_, _, i64>("a:n2", 2),
        c3.get::<_, Option<String>>("a:1"),
    );
    log.rec("concurrent INCR", r1);
    log.rec("concurrent INCR 2", r2);
    log.rec("concurrent GET", r3);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let mut c = con.clone();
        tasks.spawn(async move { c.incr::<_, _, i64>("a:cnt", 1).await });
    }
    let mut failures = 0;
    while let Some(done) = tasks.join_next().await {
        if !matches!(done, Ok(Ok(_))) {
            failures += 1;
        }
    }
    log.line("failed of 200 concurrent INCR", failures);
    log.rec("counter after 200 INCR", con.get::<_, i64>("a:cnt").await);
    log.rec(
        "async pipeline",
        pipe()
            .set("a:p", 1)
            .ignore()
            .incr("a:p", 2)
            .get("a:p")
            .query_async::<(i64, String)>(&mut con)
            .await,
    );
    log.rec(
        "async atomic pipeline",
        pipe()
            .atomic()
            .incr("a:p", 1)
            .incr("a:p", 1)
            .query_async::<(i64, i64)>(&mut con)
            .await,
    );
    log.rec(
        "async pipeline with a failing command",
        pipe()
            .set("a:s", "text")
            .incr("a:s", 1)
            .query_async::<(String, i64)>(&mut con)
            .await,
    );
    let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    log.rec(
        "async script",
        script
            .key("a:sc")
            .arg(7)
            .invoke_async::<i64>(&mut con)
            .await,
    );
    log.rec(
        "async script again",
        script
            .key("a:sc")
            .arg(7)
            .invoke_async::<i64>(&mut con)
            .await,
    );
    let mut fill = pipe();
    for i in 0..150 {
        fill.set(format!("a:scan:{i}"), i).ignore();
    }
    log.rec("async fill", fill.query_async::<()>(&mut con).await);
    let mut found = Vec::new();
    match con.scan_match::<_, String>("a:scan:*").await {
        Ok(mut iter) => {
            while let Some(item) = iter.next_item().await {
                match item {
                    Ok(key) => found.push(key),
                    Err(e) => found.push(error(&e)),
                }
            }
        }
        Err(e) => found.push(error(&e)),
    }
    let want: Vec<String> = sorted((0..150).map(|i| format!("a:scan:{i}")).collect());
    log.line("async SCAN is complete", sorted(found) == want);

    let mut blocker = multiplexed().await.expect("blocking connection");
    log.rec(
        "async BLPOP times out",
        blocker
            .blpop::<_, Option<(String, String)>>("a:empty", 0.2)
            .await,
    );
    let mut pusher = con.clone();
    let (popped, pushed) = tokio::join!(
        blocker.blpop::<_, Option<(String, String)>>("a:bl", 5.0),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            pusher.rpush::<_, _, i64>("a:bl", "x").await
        }
    );
    log.rec("async BLPOP woken", popped);
    log.rec("async RPUSH while blocked", pushed);

    let mut watcher = multiplexed().await.expect("watching connection");
    log.rec(
        "async WATCH",
        cmd("WATCH")
            .arg("a:w")
            .query_async::<String>(&mut watcher)
            .await,
    );
    log.rec(
        "async conflicting SET",
        con.set::<_, _, String>("a:w", "other").await,
    );
    log.rec(
        "async EXEC after a conflict",
        pipe()
            .atomic()
            .set("a:w", "mine")
            .ignore()
            .get("a:w")
            .query_async::<Option<(String,)>>(&mut watcher)
            .await,
    );
    log.rec("async RPUSH", con.rpush::<_, _, i64>("a:list", "x").await);
    log.rec(
        "async WRONGTYPE",
        con.get::<_, Option<String>>("a:list").await,
    );
    log.rec(
        "async unknown command",
        cmd("NOSUCH").query_async::<Value>(&mut con).await,
    );

    // ConnectionManager reconnects by itself when its connection is killed.
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(WAIT))
        .set_response_timeout(Some(WAIT));
    let mut manager = db3
        .get_connection_manager_with_config(manager_config.clone())
        .await
        .expect("connection manager");
    log.rec("manager SET", manager.set::<_, _, String>("a:m", "1").await);
    log.rec("manager GET", manager.get::<_, i64>("a:m").await);
    let id = cmd("CLIENT")
        .arg("ID")
        .query_async::<i64>(&mut manager)
        .await;
    log.line("manager CLIENT ID read", id.is_ok());
    if let Ok(id) = id {
        log.rec(
            "CLIENT KILL the manager's connection",
            cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query_async::<i64>(&mut con)
                .await,
        );
    }
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let result = manager.get::<_, i64>("a:m").await;
        if result.is_ok() || Instant::now() > deadline {
            break result;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    log.rec("manager GET after reconnecting", after);

    log.rec(
        "async SCRIPT FLUSH",
        cmd("SCRIPT")
            .arg("FLUSH")
            .query_async::<String>(&mut con)
            .await,
    );
    log.rec(
        "async script after SCRIPT FLUSH",
        script
            .key("a:sc")
            .arg(1)
            .invoke_async::<i64>(&mut con)
            .await,
    );

    // The dedicated async pub/sub connection (RESP2), read as a stream of messages.
    match db3.get_async_pubsub().await {
        Ok(mut pubsub) => {
            log.rec("async SUBSCRIBE", pubsub.subscribe("a:news").await);
            log.rec("async PSUBSCRIBE", pubsub.psubscribe("a:ev.*").await);
            log.rec(
                "async PUBLISH to the channel",
                con.publish::<_, _, i64>("a:news", "n1").await,
            );
            log.rec(
                "async PUBLISH to the pattern",
                con.publish::<_, _, i64>("a:ev.x", "e1").await,
            );
            {
                let mut messages = pubsub.on_message();
                for i in 0..2 {
                    let msg = tokio::time::timeout(WAIT, messages.next()).await;
                    log.line(
                        &format!("async message {i}"),
                        msg.ok().flatten().map(|m| message(&m)),
                    );
                }
            }
            log.rec("async UNSUBSCRIBE", pubsub.unsubscribe("a:news").await);
            log.rec(
                "async PUBLISH after UNSUBSCRIBE",
                con.publish::<_, _, i64>("a:news", "n2").await,
            );
            log.rec(
                "async PING on the pub/sub connection",
                pubsub.ping::<Value>().await,
            );
        }
        Err(e) => log.line("async pub/sub connection", error(&e)),
    }

    // Async pub/sub over RESP3, through a ConnectionManager and a multiplexed connection.
    let resp3 = client(&format!("redis://127.0.0.1:{port}/3?protocol=resp3"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PushInfo>();
    let mut subscriber = resp3
        .get_connection_manager_with_config(manager_config.set_push_sender(tx))
        .await
        .expect("RESP3 connection manager");
    log.rec("manager SUBSCRIBE", subscriber.subscribe("a:ch").await);
    log.rec(
        "async PUBLISH",
        con.publish::<_, _, i64>("a:ch", "hi").await,
    );
    for i in 0..2 {
        let push = tokio::time::timeout(WAIT, rx.recv()).await;
        log.line(
            &format!("manager push {i}"),
            push.ok()
                .flatten()
                .map(|p| format!("{:?} {:?}", p.kind, p.data)),
        );
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PushInfo>();
    let mut pattern_subscriber = resp3
        .get_multiplexed_async_connection_with_config(&config.clone().set_push_sender(tx))
        .await
        .expect("RESP3 multiplexed connection");
    log.rec(
        "multiplexed PSUBSCRIBE",
        pattern_subscriber.psubscribe("a:p.*").await,
    );
    log.rec(
        "async PUBLISH to the pattern",
        con.publish::<_, _, i64>("a:p.1", "there").await,
    );
    for i in 0..2 {
        let push = tokio::time::timeout(WAIT, rx.recv()).await;
        log.line(
            &format!("multiplexed push {i}"),
            push.ok()
                .flatten()
                .map(|p| format!("{:?} {:?}", p.kind, p.data)),
        );
    }
    log.rec(
        "multiplexed GET while subscribed",
        pattern_subscriber.get::<_, Option<String>>("a:1").await,
    );
}

/// Fails with the first lines where the transcripts part, and a little context.
fn assert_same(valkey: &[String], ferrokv: &[String]) {
    if valkey == ferrokv {
        return;
    }
    let first = valkey
        .iter()
        .zip(ferrokv)
        .position(|(a, b)| a != b)
        .unwrap_or(valkey.len().min(ferrokv.len()));
    let mut report = format!(
        "redis-rs sees ferrokv differ from valkey at line {first} (valkey: {} lines, ferrokv: {})\n",
        valkey.len(),
        ferrokv.len()
    );
    for line in &valkey[first.saturating_sub(3)..first] {
        report.push_str(&format!("  both    {line}\n"));
    }
    let mut shown = 0;
    for i in first..valkey.len().max(ferrokv.len()) {
        let (v, f) = (valkey.get(i), ferrokv.get(i));
        if v == f {
            continue;
        }
        report.push_str(&format!(
            "  valkey  {}\n  ferrokv {}\n",
            v.map_or("<end>", String::as_str),
            f.map_or("<end>", String::as_str)
        ));
        shown += 1;
        if shown == 20 {
            report.push_str("  ...\n");
            break;
        }
    }
    panic!("{report}");
}

#[test]
fn redis_rs_cannot_tell_ferrokv_from_valkey() {
    let valkey = common::start_valkey(&[]);
    let ferrokv = common::start_ferrokv(&[]);
    let (expected, actual) = std::thread::scope(|s| {
        let v = s.spawn(|| transcript(valkey.port));
        let f = s.spawn(|| transcript(ferrokv.port));
        (
            v.join().expect("valkey session"),
            f.join().expect("ferrokv session"),
        )
    });
    assert!(expected.len() > 300, "{} lines", expected.len());
    assert_same(&expected, &actual);
}

/// A ferrokv serving only TLS (`--port 0`), killed on drop.
fn start_tls_only(args: &[&str], ready: impl Fn(u16) -> bool) -> (common::ServerProcess, u16) {
    for _attempt in 0..5 {
        let port = common::free_port();
        let dir = common::TempDir::new("redis-rs-tls");
        let child = std::process::Command::new(common::ferrokv_binary())
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &port.to_string()])
            .args(args)
            .current_dir(&dir.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ferrokv");
        let mut server = common::ServerProcess {
            child,
            port,
            name: "ferrokv",
            dir,
        };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            if ready(port) {
                return (server, port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("ferrokv did not start on a TLS port");
}

#[test]
fn redis_rs_over_tls_with_client_certificates() {
    use ferrokv_tls::test_pki::{Spec, TestCa};
    let dir = common::TempDir::new("redis-rs-pki");
    let ca = TestCa::new(&dir.0, "ca").expect("CA");
    let other_ca = TestCa::new(&dir.0.join("other"), "other-ca").expect("other CA");
    let server = ca
        .issue(
            "server",
            &Spec {
                common_name: "server",
                dns: &["localhost", "127.0.0.1"],
                ..Spec::default()
            },
        )
        .expect("server certificate");
    let user = Spec {
        common_name: "app",
        ..Spec::default()
    };
    let app = ca.issue("app", &user).expect("client certificate");
    let foreign = other_ca
        .issue("foreign", &user)
        .expect("foreign certificate");
    let read = |path: &std::path::Path| std::fs::read(path).expect("read PEM");
    let certificates =
        |cert: Option<&ferrokv_tls::test_pki::Issued>, ca: &TestCa| TlsCertificates {
            client_tls: cert.map(|c| ClientTlsConfig {
                client_cert: read(&c.cert_file),
                client_key: read(&c.key_file),
            }),
            root_cert: Some(read(&ca.cert_file)),
        };
    let tls_client = |port: u16, certs: TlsCertificates| {
        Client::build_with_tls(format!("rediss://127.0.0.1:{port}/2"), certs).expect("a TLS client")
    };
    let ping = |client: &Client| -> RedisResult<String> {
        let mut con = client.get_connection_with_timeout(WAIT)?;
        con.set_read_timeout(Some(WAIT))?;
        con.ping()
    };
    let (_server, port) = start_tls_only(
        &[
            "--tls-cert-file",
            server.cert(),
            "--tls-key-file",
            server.key(),
            "--tls-ca-cert-file",
            ca.ca(),
            "--tls-auth-clients",
            "yes",
        ],
        |port| ping(&tls_client(port, certificates(Some(&app), &ca))).is_ok(),
    );

    let trusted = tls_client(port, certificates(Some(&app), &ca));
    let mut con = connect(&trusted);
    assert_eq!(con.set::<_, _, String>("tls:k", "v").expect("SET"), "OK");
    assert_eq!(con.get::<_, String>("tls:k").expect("GET"), "v");
    let info: String = cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .expect("CLIENT INFO");
    assert!(info.contains(" db=2 "), "{info}");
    let big: Vec<u8> = (0..600_000).map(|i| (i % 253) as u8).collect();
    let (len, back): (i64, Vec<u8>) = pipe()
        .atomic()
        .set("tls:big", &big)
        .ignore()
        .strlen("tls:big")
        .get("tls:big")
        .query(&mut con)
        .expect("atomic pipeline over TLS");
    assert_eq!((len, back == big), (600_000, true));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(WAIT))
            .set_response_timeout(Some(WAIT));
        let mut con = trusted
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("async TLS connection");
        let (mut c1, mut c2) = (con.clone(), con.clone());
        let (a, b) = tokio::join!(
            c1.incr::<_, _, i64>("tls:n", 1),
            c2.incr::<_, _, i64>("tls:n", 1)
        );
        assert_eq!(sorted(vec![a.expect("INCR"), b.expect("INCR")]), [1, 2]);
        assert_eq!(con.get::<_, i64>("tls:n").await.expect("GET"), 2);
    });

    // Refused: no client certificate, a certificate from a CA the server does not trust, and a
    // server certificate the client cannot verify.
    for (what, certs) in [
        ("no client certificate", certificates(None, &ca)),
        (
            "a foreign client certificate",
            certificates(Some(&foreign), &ca),
        ),
        ("trusting another CA", certificates(Some(&app), &other_ca)),
    ] {
        let result = ping(&tls_client(port, certs));
        assert!(result.is_err(), "{what}: {result:?}");
    }
    // A plain-text client on the TLS port gets no answer.
    let plain = client(&format!("redis://127.0.0.1:{port}/"));
    let result = plain
        .get_connection_with_timeout(Duration::from_secs(3))
        .and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(3)))?;
            c.ping::<String>()
        });
    assert!(result.is_err(), "plain text on the TLS port: {result:?}");
    // The refused clients did not disturb the served one.
    assert_eq!(con.get::<_, String>("tls:k").expect("GET"), "v");
}
