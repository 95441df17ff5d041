#!/usr/bin/env python3
"""Drives redis-py through a session an application could run and prints one JSON line per
step: the value redis-py hands to the application, or the exception it raises (class and
message). Run against valkey-server and against ferrokv (tests/clients.rs), the two
transcripts must be equal: an application using redis-py must not be able to tell the
servers apart.

Usage: python3 session.py PORT PROTOCOL [HOST]     (PROTOCOL: 2 or 3)

Only what is deterministic goes into the transcript: no client ids, addresses, INFO values,
timestamps, lock tokens or random draws, and replies whose order is a hash table's are
sorted.
"""

import json
import os
import signal
import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.exceptions import LockError
from redis.retry import Retry

if len(sys.argv) < 3 or sys.argv[2] not in ("2", "3"):
    sys.exit("usage: session.py PORT PROTOCOL(2|3) [HOST]")
PORT = int(sys.argv[1])
PROTOCOL = int(sys.argv[2])
HOST = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"


def _hard_timeout(*_):
    # A stuck server must not hang the test: fail on our own well before nextest's timeout.
    sys.stderr.write("session.py: hard timeout\n")
    sys.stderr.flush()
    os._exit(2)


signal.signal(signal.SIGALRM, _hard_timeout)
signal.alarm(60)

CLIENTS = []


def client(**options):
    kwargs = dict(
        host=HOST,
        port=PORT,
        protocol=PROTOCOL,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        # redis-py retries what it takes for connection errors, AuthenticationError among
        # them, with backoff: seconds per refused login, and a server fault hidden by a retry.
        retry=Retry(NoBackoff(), 0),
    )
    kwargs.update(options)
    c = redis.Redis(**kwargs)
    CLIENTS.append(c)
    return c


def norm(v):
    """Makes a value JSON-printable without losing what tells servers apart: Python types
    are kept apart (int, float, str, bytes, set), sets are sorted, exceptions become their
    class and message."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if all(32 <= c < 127 for c in b):
            return {"bytes": b.decode()}
        return {"hex": b.hex()}
    if isinstance(v, BaseException):
        return {"error": err_text(v)}
    if isinstance(v, (set, frozenset)):
        return {"set": sorted((norm(x) for x in v), key=json.dumps)}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: norm(x) for k, x in v.items()}
        return {"map": [[norm(k), norm(x)] for k, x in v.items()]}
    return {"repr": repr(v)}


def err_text(e):
    return f"{type(e).__name__}: {e}"


def step(name, fn):
    try:
        line = {"step": name, "ok": norm(fn())}
    except Exception as e:  # noqa: BLE001 - the exception is the step's result
        line = {"step": name, "err": err_text(e)}
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def attempt(fn):
    """For steps that go on after an error: the value, or the exception's text in its place."""
    try:
        return norm(fn())
    except Exception as e:  # noqa: BLE001
        return err_text(e)


def until(what, check, secs=5.0):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise TimeoutError(f"timed out waiting for {what}")


def blocked_clients(c):
    return c.info("clients")["blocked_clients"]


def client_info(c):
    """The connection's own CLIENT INFO fields that do not vary between runs."""
    info = c.client_info()
    keep = ["name", "db", "sub", "psub", "multi", "flags", "cmd", "user", "resp", "lib-name", "lib-ver"]
    return {k: info.get(k) for k in keep}


def in_thread(fn, delay_check):
    """Runs `fn` on another connection's thread once `delay_check` holds (a client blocked)."""

    def run():
        until("a blocked client", delay_check)
        fn()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def next_message(p, sharded=False):
    """The next pub/sub message, waiting up to 5 s (get_message returns None when idle)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = p.get_sharded_message(timeout=0.1) if sharded else p.get_message(timeout=0.1)
        if m is not None:
            return m
    raise TimeoutError("no pub/sub message")


def main():
    r = client(client_name="redis-py-session")
    other = client()
    rb = client(decode_responses=False)

    step("flushall", lambda: r.flushall())
    step("ping", lambda: r.ping())
    step("echo", lambda: r.echo("ferrokv"))

    # --- connection identity: CLIENT SETNAME / SETINFO that redis-py sends on connect ----
    step("client getname", lambda: r.client_getname())
    step("client info", lambda: client_info(r))
    step("hello fields", lambda: {k: v for k, v in r.execute_command("HELLO").items() if k in ("server", "proto", "mode", "role")}
         if PROTOCOL == 3 else "RESP2: HELLO would switch nothing")
    step("client setinfo", lambda: [
        r.client_setinfo("lib-name", "redis-py(session)"),
        r.client_setinfo("lib-ver", "9.9.9"),
        client_info(r),
    ])
    step("client setinfo with a space", lambda: r.client_setinfo("lib-name", "has space"))
    step("client setinfo unknown attribute", lambda: r.client_setinfo("lib-color", "red"))
    step("client setname with a space", lambda: r.client_setname("has space"))

    # --- strings -------------------------------------------------------------------------
    step("set get", lambda: [r.set("s:1", "v1"), r.get("s:1"), r.get("s:missing")])
    step("set nx xx get", lambda: [
        r.set("s:1", "x", nx=True),
        r.set("s:missing", "x", xx=True),
        r.set("s:1", "v2", get=True),
        r.get("s:1"),
    ])
    step("set ex: ttl about 100", lambda: [r.set("s:ex", "v", ex=100), 98 <= r.ttl("s:ex") <= 100])
    step("set exat keepttl", lambda: [
        r.set("s:exat", "v", exat=4102444800),
        r.expiretime("s:exat"),
        r.pexpiretime("s:exat"),
        r.set("s:exat", "w", keepttl=True),
        r.expiretime("s:exat"),
        r.set("s:pxat", "v", pxat=4102444800123),
        r.pexpiretime("s:pxat"),
    ])

    def px_expires():
        r.set("s:px", "v", px=30)
        time.sleep(0.15)
        return [r.get("s:px"), r.exists("s:px"), r.ttl("s:px")]

    step("set px then expired", px_expires)
    step("set ex 0", lambda: r.set("s:bad", "v", ex=0))
    step("set nx and xx", lambda: r.execute_command("SET", "s:bad", "v", "NX", "XX"))
    step("mset mget msetnx", lambda: [
        r.mset({"m:a": "1", "m:b": "2", "m:c": "3"}),
        r.mget("m:a", "m:b", "m:missing", "m:c"),
        r.mget(["m:a", "m:c"]),
        r.msetnx({"m:a": "9", "m:new": "1"}),
        r.msetnx({"m:n1": "1", "m:n2": "2"}),
    ])
    step("incr family", lambda: [r.incr("n"), r.incrby("n", 41), r.decr("n"), r.decrby("n", 10)])
    step("incr not integer", lambda: r.incr("s:1"))
    step("incrbyfloat as float", lambda: [
        r.incrbyfloat("f", 10.5),
        r.incrbyfloat("f", 0.1),
        r.incrbyfloat("f", -5.0e3),
    ])
    step("incrbyfloat raw replies", lambda: [
        r.execute_command("INCRBYFLOAT", "f2", "10.5"),
        r.execute_command("INCRBYFLOAT", "f2", "0.1"),
        r.execute_command("INCRBYFLOAT", "f2", "-5.0e3"),
        r.execute_command("INCRBYFLOAT", "f2", "3.0e-3"),
        r.execute_command("INCRBYFLOAT", "f3", "1e17"),
    ])
    step("incrbyfloat not a float", lambda: r.incrbyfloat("s:1", 1))
    step("string ranges", lambda: [
        r.append("str", "Hello"),
        r.append("str", " World"),
        r.strlen("str"),
        r.getrange("str", 0, 4),
        r.getrange("str", -5, -1),
        r.setrange("str", 6, "Redis"),
        r.get("str"),
        r.setrange("str:pad", 3, "x"),
        rb.get("str:pad"),
    ])
    step("getdel getex", lambda: [
        r.getdel("str"),
        r.exists("str"),
        r.set("gx", "v"),
        r.getex("gx", exat=4102444800),
        r.expiretime("gx"),
        r.getex("gx", persist=True),
        r.ttl("gx"),
    ])
    step("lcs", lambda: [
        r.mset({"lcs:a": "ohmytext", "lcs:b": "mynewtext"}),
        r.lcs("lcs:a", "lcs:b"),
        r.lcs("lcs:a", "lcs:b", len=True),
        r.lcs("lcs:a", "lcs:b", idx=True, minmatchlen=2, withmatchlen=True),
    ])
    step("bitmaps", lambda: [
        r.setbit("bits", 7, 1),
        r.setbit("bits", 100, 1),
        r.getbit("bits", 7),
        r.bitcount("bits"),
        r.bitpos("bits", 1),
        r.bitfield("bf").set("u8", 0, 200).incrby("u8", 0, 100).get("i8", 0).execute(),
        r.bitfield("bf", default_overflow="SAT").incrby("u8", 0, 100).execute(),
    ])
    step("hyperloglog", lambda: [
        r.pfadd("hll", "a", "b", "c", "a"),
        r.pfcount("hll"),
        r.pfadd("hll2", "c", "d"),
        r.pfmerge("hll3", "hll", "hll2"),
        r.pfcount("hll3"),
    ])

    # --- keyspace ------------------------------------------------------------------------
    step("exists type expire persist", lambda: [
        r.exists("s:1", "m:a", "nope", "s:1"),
        r.type("s:1"),
        r.type("nope"),
        r.expire("s:1", 1000),
        r.expire("s:1", 2000, nx=True),
        r.expire("s:1", 3000, gt=True),
        r.persist("s:1"),
        r.ttl("s:1"),
        r.ttl("nope"),
    ])
    step("rename missing", lambda: r.rename("nope", "nope2"))
    step("rename renamenx copy", lambda: [
        r.rename("m:n1", "m:renamed"),
        r.renamenx("m:renamed", "m:n2"),
        r.copy("m:renamed", "m:copy"),
        r.copy("m:renamed", "m:copy"),
        r.copy("m:renamed", "m:copy", replace=True),
    ])
    step("object encoding", lambda: [
        r.set("enc:int", 12345),
        r.object("encoding", "enc:int"),
        r.object("encoding", "s:1"),
        r.object("refcount", "nope"),
    ])
    def sort_session():
        try:
            return [
                r.rpush("sort:l", "3", "1", "2"),
                r.mset({"w_1": "one", "w_2": "two", "w_3": "three"}),
                r.sort("sort:l"),
                r.sort("sort:l", desc=True, start=0, num=2),
                r.sort("sort:l", by="nosort", get=["#", "w_*"]),
                r.sort("sort:l", get="w_*", alpha=True, store="sort:dst"),
                r.lrange("sort:dst", 0, -1),
                attempt(lambda: r.sort("sort:dst")),
                r.sort_ro("sort:l", by="w_*", alpha=True),
            ]
        finally:
            # Whatever SORT did or failed to do must not change later steps' replies.
            r.delete("sort:l", "sort:dst", "w_1", "w_2", "w_3")

    step("sort", sort_session)

    # --- hashes --------------------------------------------------------------------------
    step("hset hgetall", lambda: [
        r.hset("h", mapping={"f1": "v1", "f2": "v2", "10": "ten"}),
        r.hgetall("h"),
        r.hgetall("h:missing"),
    ])
    step("hget hmget hincrby", lambda: [
        r.hget("h", "f1"),
        r.hmget("h", ["f1", "nope", "10"]),
        r.hincrby("h", "n", 5),
        r.hincrbyfloat("h", "fl", 2.5),
        r.hsetnx("h", "f1", "x"),
        r.hexists("h", "nope"),
        r.hstrlen("h", "f2"),
        r.hkeys("h"),
        r.hvals("h"),
        r.hlen("h"),
        r.hdel("h", "f1", "nope"),
        r.hgetall("h"),
    ])
    step("hincrby not integer", lambda: r.hincrby("h", "f2", 1))

    def big_hash():
        r.hset("h:big", mapping={f"field:{i}": f"value:{i}" for i in range(600)})
        everything = r.hgetall("h:big")
        scanned = dict(r.hscan_iter("h:big", match="field:1?", count=50))
        return [len(everything), sorted(everything.items())[:3], sorted(scanned.items()),
                r.object("encoding", "h:big")]

    step("large hash hgetall and hscan_iter sorted", big_hash)
    step("hash field expiry", lambda: [
        r.hset("hx", mapping={"a": "1", "b": "2", "c": "3"}),
        r.hexpireat("hx", 4102444800, "a", "b", "nope"),
        r.hexpiretime("hx", "a", "c", "nope"),
        r.hpexpiretime("hx", "a"),
        r.hpersist("hx", "a", "c"),
        r.httl("hx", "a", "c", "nope"),
        r.execute_command("HGETEX", "hx", "PERSIST", "FIELDS", "1", "b"),
        r.execute_command("HSETEX", "hx", "EXAT", "4102444800", "FIELDS", "1", "d", "4"),
        r.hexpiretime("hx", "d"),
    ])

    # --- lists ---------------------------------------------------------------------------
    step("list basics", lambda: [
        r.rpush("l", "a", "b", "c"),
        r.lpush("l", "z"),
        r.lrange("l", 0, -1),
        r.lindex("l", 1),
        r.llen("l"),
        r.lpos("l", "b"),
        r.rpush("l", "b"),
        r.lpos("l", "b", count=0),
        r.linsert("l", "BEFORE", "a", "aa"),
        r.lset("l", 0, "zz"),
        r.lrem("l", -1, "b"),
        r.lpop("l", 2),
        r.rpop("l"),
        r.lrange("l", 0, -1),
    ])
    step("lset out of range", lambda: r.lset("l", 99, "x"))
    step("lmove lmpop", lambda: [
        r.rpush("l2", "1", "2", "3", "4", "5"),
        r.ltrim("l2", 1, -2),
        r.lmove("l2", "l3", "LEFT", "RIGHT"),
        r.lmpop(2, "l:none", "l2", direction="RIGHT", count=5),
        r.lrange("l3", 0, -1),
    ])
    step("blpop times out", lambda: r.blpop(["bl:empty"], timeout=0.1))

    def blpop_woken():
        t = in_thread(lambda: other.rpush("bl:q2", "first", "second"), lambda: blocked_clients(other) == 1)
        got = r.blpop(["bl:q", "bl:q2"], timeout=5)
        t.join()
        return [got, r.lrange("bl:q2", 0, -1)]

    step("blpop woken by a push from another connection", blpop_woken)
    step("blmove immediate", lambda: [r.blmove("l3", "l4", 1, "RIGHT", "LEFT"), r.lrange("l4", 0, -1)])
    step("wrongtype", lambda: r.lpush("s:1", "x"))

    # --- sets ----------------------------------------------------------------------------
    step("sets", lambda: [
        r.sadd("set:a", "x", "y", "z", "x"),
        r.smembers("set:a"),
        r.sismember("set:a", "x"),
        r.smismember("set:a", ["x", "q"]),
        r.sadd("set:b", "y", "z", "w"),
        r.sinter("set:a", "set:b"),
        r.sunion("set:a", "set:b"),
        r.sdiff("set:a", "set:b"),
        r.sintercard(2, ["set:a", "set:b"], limit=1),
        r.srem("set:a", "x"),
        r.smove("set:a", "set:c", "y"),
        r.smembers("set:c"),
        r.scard("set:a"),
    ])

    def big_set():
        r.sadd("set:big", *[f"m{i}" for i in range(200)])
        members = set(r.sscan_iter("set:big", match="m1*", count=20))
        return [len(members), sorted(members)[:5], r.object("encoding", "set:big")]

    step("sscan_iter sorted", big_set)

    # --- sorted sets ---------------------------------------------------------------------
    step("zadd zrange withscores", lambda: [
        r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 2.5}),
        r.zrange("z", 0, -1, withscores=True),
        r.zrange("z", 0, -1, desc=True),
        r.zrange("z", "(1", "+inf", byscore=True, offset=0, num=2, withscores=True),
        r.zrangebyscore("z", "-inf", "+inf", start=1, num=2, withscores=True),
        r.zrevrangebyscore("z", 3, "(2", withscores=True),
    ])
    step("zscore zincrby zrank", lambda: [
        r.zincrby("z", 1, "c"),
        r.zincrby("z", -0.5, "a"),
        r.zscore("z", "d"),
        r.zscore("z", "nope"),
        r.zmscore("z", ["a", "nope", "c"]),
        r.zrank("z", "d"),
        r.zrevrank("z", "d"),
        r.zrank("z", "d", withscore=True),
        r.zrevrank("z", "d", withscore=True),
    ])
    step("zadd flags", lambda: [
        r.zadd("z", {"b": 1, "c": 10}, gt=True, ch=True),
        r.zadd("z", {"a": 5}, nx=True, incr=True),
        r.zadd("z", {"a": 5}, xx=True, incr=True),
        r.zadd("z", {"d": 0}, lt=True, ch=True),
        r.zrange("z", 0, -1, withscores=True),
    ])
    step("zadd not a float", lambda: r.execute_command("ZADD", "z", "abc", "a"))
    step("zset float formatting", lambda: [
        r.zadd("zf", {"x": 0.30000000000000004, "y": 1e300, "w": -0.0, "v": 1.5e-7, "u": float("inf")}),
        r.zrange("zf", 0, -1, withscores=True),
        r.execute_command("ZSCORE", "zf", "x"),
        r.execute_command("ZRANGE", "zf", "0", "-1", "WITHSCORES"),
    ])
    step("zpop zmpop", lambda: [
        r.zpopmin("z"),
        r.zpopmax("z", 2),
        r.zmpop(1, ["z"], min=True, count=5),
        r.exists("z"),
    ])
    step("zunionstore zinter zdiff", lambda: [
        r.zadd("zu1", {"a": 1, "b": 2}),
        r.zadd("zu2", {"b": 10, "c": 20}),
        r.zunionstore("zu", {"zu1": 2, "zu2": 0.5}),
        r.zrange("zu", 0, -1, withscores=True),
        r.zinter(["zu1", "zu2"], aggregate="MAX", withscores=True),
        r.zdiff(["zu1", "zu2"], withscores=True),
    ])
    step("zlex", lambda: [
        r.zadd("zl", {"a": 0, "b": 0, "c": 0, "d": 0}),
        r.zlexcount("zl", "[b", "+"),
        r.zrangebylex("zl", "(a", "[c"),
    ])

    # --- geo -----------------------------------------------------------------------------
    step("geo", lambda: [
        r.geoadd("geo", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]),
        r.geodist("geo", "Palermo", "Catania"),
        r.geodist("geo", "Palermo", "Catania", unit="km"),
        r.geopos("geo", "Palermo", "nope"),
        r.geohash("geo", "Palermo", "Catania"),
        r.geosearch("geo", longitude=15, latitude=37, radius=200, unit="km", withdist=True, withcoord=True, sort="ASC"),
    ])

    # --- streams -------------------------------------------------------------------------
    step("xadd explicit ids", lambda: [
        r.xadd("st", {"f": "v1"}, id="1-1"),
        r.xadd("st", {"f": "v2", "g": "w2"}, id="1-2"),
        r.xadd("st", {"f": "v3"}, id="2-0"),
        r.xadd("st", {"f": "v4"}, id="5-*"),
        r.xadd("st", {"f": "v5"}, id="5-*"),
    ])
    step("xadd equal id", lambda: r.xadd("st", {"f": "x"}, id="1-1"))
    step("xadd nomkstream", lambda: r.xadd("st:none", {"f": "x"}, id="1-1", nomkstream=True))
    step("xrange xrevrange xlen", lambda: [
        r.xrange("st"),
        r.xrange("st", min="(1-1", count=2),
        r.xrevrange("st", count=1),
        r.xlen("st"),
    ])
    step("xgroup create", lambda: r.xgroup_create("st", "g1", id="0"))
    step("xgroup create again", lambda: r.xgroup_create("st", "g1", id="0"))
    step("xgroup create on missing key", lambda: r.xgroup_create("st:missing", "g1", id="0"))
    step("xgroup create mkstream", lambda: r.xgroup_create("st:mk", "g", id="$", mkstream=True))
    step("xreadgroup", lambda: [
        r.xreadgroup("g1", "c1", {"st": ">"}, count=2),
        r.xreadgroup("g1", "c2", {"st": ">"}, count=1),
    ])
    step("xack", lambda: [r.xack("st", "g1", "1-1", "9-9"), r.xack("st", "g1", "1-1")])
    step("xpending summary", lambda: r.xpending("st", "g1"))
    step("xpending range without idle times", lambda: [
        {k: v for k, v in row.items() if k != "time_since_delivered"}
        for row in r.xpending_range("st", "g1", min="-", max="+", count=10)
    ])
    step("xreadgroup own history", lambda: r.xreadgroup("g1", "c1", {"st": "0"}))
    step("xreadgroup unknown group", lambda: r.xreadgroup("nope", "c1", {"st": ">"}))
    step("xautoclaim", lambda: r.xautoclaim("st", "g1", "c3", 0, start_id="0-0", count=10))
    step("xautoclaim justid", lambda: r.xautoclaim("st", "g1", "c1", 0, justid=True))
    step("xclaim justid", lambda: r.xclaim("st", "g1", "c2", 0, ["2-0"], justid=True))

    def xinfo_fields():
        info = r.xinfo_stream("st")
        keep = ["length", "last-generated-id", "max-deleted-entry-id", "entries-added", "groups", "first-entry",
                "last-entry"]
        return {k: info.get(k) for k in keep}

    step("xinfo stream selected fields", xinfo_fields)
    step("xinfo groups selected fields", lambda: [
        {k: g.get(k) for k in ("name", "consumers", "pending", "last-delivered-id", "entries-read", "lag")}
        for g in r.xinfo_groups("st")
    ])
    step("xdel xtrim", lambda: [
        r.xdel("st", "1-2", "9-9"),
        r.xtrim("st", maxlen=2, approximate=False),
        r.xrange("st"),
        r.xtrim("st", minid="5-1", approximate=False),
        r.xlen("st"),
    ])

    def xread_woken():
        t = in_thread(lambda: other.xadd("st", {"woke": "up"}, id="7-7"), lambda: blocked_clients(other) == 1)
        got = r.xread({"st": "$"}, block=5000)
        t.join()
        return got

    step("xread block woken by xadd from another connection", xread_woken)

    # --- pipelines and transactions ------------------------------------------------------
    def pipeline_plain():
        p = r.pipeline(transaction=False)
        p.set("p:a", "1").incr("p:a").incr("s:1").get("p:a")
        return p.execute(raise_on_error=False)

    step("pipeline without transaction, an error inside", pipeline_plain)

    def pipeline_raises():
        p = r.pipeline(transaction=False)
        p.set("p:b", "1").incr("s:1").get("p:b")
        return p.execute()

    step("pipeline raise_on_error", pipeline_raises)

    def pipeline_tx():
        p = r.pipeline(transaction=True)
        p.set("t:a", "1").incr("t:a").get("t:a").hset("t:h", mapping={"x": "1"}).hgetall("t:h")
        return p.execute()

    step("Pipeline(transaction=True)", pipeline_tx)

    def pipeline_tx_queued_error():
        p = r.pipeline(transaction=True)
        p.set("t:b", "1").execute_command("NOSUCHCMD", "x").get("t:b")
        return p.execute()

    step("transaction with an unknown command queued (EXECABORT)", pipeline_tx_queued_error)
    step("EXECABORT left nothing behind", lambda: r.exists("t:b"))

    def pipeline_tx_runtime_error():
        p = r.pipeline(transaction=True)
        p.set("t:s", "x").lpush("t:s", "y").append("t:s", "z")
        return p.execute(raise_on_error=False)

    step("transaction with a runtime error inside EXEC", pipeline_tx_runtime_error)

    def pipeline_tx_runtime_error_raises():
        p = r.pipeline(transaction=True)
        p.set("t:s2", "x").lpush("t:s2", "y").get("t:s2")
        return p.execute()

    step("transaction runtime error raised", pipeline_tx_runtime_error_raises)

    def watch_conflict():
        with r.pipeline() as p:
            p.watch("w:k")
            other.set("w:k", "other")
            p.multi()
            p.set("w:k", "mine")
            try:
                return p.execute()
            finally:
                p.reset()

    step("watch with a conflicting write: WatchError", watch_conflict)
    step("value after the conflict", lambda: r.get("w:k"))

    def transaction_retry():
        attempts = []

        def body(pipe):
            current = int(pipe.get("w:counter") or 0)
            attempts.append(current)
            if len(attempts) == 1:
                # Another client writes between WATCH and EXEC: redis-py must retry.
                other.set("w:counter", "100")
            pipe.multi()
            pipe.set("w:counter", current + 1)
            pipe.get("w:counter")

        result = r.transaction(body, "w:counter")
        return [attempts, result, r.get("w:counter")]

    step("r.transaction retries after a conflicting write", transaction_retry)
    step("r.transaction value_from_callable", lambda: r.transaction(
        lambda pipe: pipe.hgetall("t:h"), "t:h", value_from_callable=True))
    step("exec without multi", lambda: r.execute_command("EXEC"))
    step("discard without multi", lambda: r.execute_command("DISCARD"))

    # --- Lua: register_script (EVALSHA, SCRIPT LOAD on NOSCRIPT), errors ------------------
    kvset = r.register_script("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
    convert = r.register_script(
        "return {1, 2.9, 'str', true, false, {3, 'nested'}, redis.status_reply('FINE'), nil, 'after nil'}")
    failing = r.register_script("return redis.call('INCR', KEYS[1])")
    step("script flush before", lambda: r.script_flush())
    step("register_script sha", lambda: kvset.sha)
    step("script exists before", lambda: r.script_exists(kvset.sha))
    step("registered script first call", lambda: kvset(keys=["sc:k"], args=["v1"]))
    step("script exists after", lambda: r.script_exists(kvset.sha))
    step("script flush", lambda: r.script_flush())
    step("registered script after flush", lambda: kvset(keys=["sc:k"], args=["v2"]))

    def script_in_pipeline():
        r.script_flush()
        p = r.pipeline()
        kvset(keys=["sc:p"], args=["a"], client=p)
        p.get("sc:p")
        return p.execute()

    step("registered script in a transaction pipeline after flush", script_in_pipeline)
    step("lua type conversions", lambda: convert())
    step("lua error from redis.call", lambda: failing(keys=["s:1"]))
    step("evalsha unknown: NoScriptError", lambda: r.evalsha("ffffffffffffffffffffffffffffffffffffffff", 0))
    step("eval syntax error", lambda: r.eval("return +", 0))
    step("eval numkeys too big", lambda: r.eval("return 1", 5, "a"))
    step("eval resp3 types", lambda: r.eval(
        "redis.setresp(3); return {redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[2]), "
        "{double=3.5}, {map={a=1}}, {set={x=true}}}", 2, "t:h", "set:c"))
    step("fcall", lambda: [
        r.function_load(
            "#!lua name=sessionlib\n"
            "redis.register_function('plus', function(keys, args) return tonumber(args[1]) + 1 end)"),
        r.fcall("plus", 0, 41),
        r.function_delete("sessionlib"),
    ])

    # --- scanning ------------------------------------------------------------------------
    def scanning():
        p = r.pipeline(transaction=False)
        for i in range(60):
            p.set(f"scan:{i}", i)
        for i in range(10):
            p.sadd(f"scanset:{i}", i)
        p.execute()
        keys = sorted(set(r.scan_iter(match="scan:*", count=7)))
        sets = sorted(set(r.scan_iter(match="scan*", count=100, _type="SET")))
        return [len(keys), keys[:5], sets]

    step("scan_iter match and type, sorted", scanning)

    # --- pub/sub -------------------------------------------------------------------------
    def pubsub_session():
        p = r.pubsub()
        out = {}
        p.subscribe("news", "sports")
        p.psubscribe("news.*")
        out["confirmations"] = [next_message(p) for _ in range(3)]
        out["publish"] = [
            other.publish("news", "hello"),
            other.publish("news.tech", "gadgets"),
            other.publish("sports", "goal"),
            other.publish("nobody", "listens"),
        ]
        out["messages"] = [next_message(p) for _ in range(3)]
        out["numsub"] = other.pubsub_numsub("news", "sports", "nobody")
        out["numpat"] = other.pubsub_numpat()
        out["channels"] = sorted(other.pubsub_channels())
        # Over RESP3 redis-py takes the plain PONG for a message and slices the string;
        # the transcript records what the application gets either way.
        p.ping()
        out["pong"] = next_message(p)
        p.unsubscribe("news")
        out["unsubscribe"] = next_message(p)
        out["after unsubscribe"] = other.publish("news", "again")
        p.punsubscribe()
        p.unsubscribe()
        out["the rest"] = [next_message(p) for _ in range(2)]
        out["nothing more"] = p.get_message(timeout=0.1)
        p.close()
        return out

    step("pubsub get_message with patterns", pubsub_session)

    def pubsub_ignore_subscribe():
        p = rb.pubsub(ignore_subscribe_messages=True)
        p.psubscribe("ev:*")
        until("the pattern subscription", lambda: other.pubsub_numpat() == 1)
        rb.publish("ev:bin", bytes([0, 1, 2, 255, 13, 10]))
        m = next_message(p)
        p.close()
        return m

    step("pubsub ignore_subscribe_messages, binary payload", pubsub_ignore_subscribe)

    def sharded_pubsub():
        p = r.pubsub()
        p.ssubscribe("shard")
        first = next_message(p, sharded=True)
        out = [first, other.spublish("shard", "hi"), next_message(p, sharded=True),
               other.pubsub_shardnumsub("shard")]
        p.close()
        return out

    step("sharded pubsub", sharded_pubsub)

    # --- Lock: redis-py's Lua-based lock -------------------------------------------------
    def lock_session():
        lock = r.lock("lk", timeout=10)
        rival = other.lock("lk", timeout=10)
        out = [lock.acquire(blocking=False), lock.owned(), lock.locked(), rival.acquire(blocking=False),
               rival.acquire(blocking=True, blocking_timeout=0.2), lock.extend(5),
               14 <= r.ttl("lk") <= 15, lock.reacquire(), 9 <= r.ttl("lk") <= 10]
        out.append(attempt(lambda: rival.release()))
        out.append(attempt(lambda: rival.extend(1)))
        lock.release()
        out += [lock.owned(), lock.locked(), r.exists("lk")]
        out.append(attempt(lambda: lock.release()))
        out.append(attempt(lambda: lock.extend(1)))
        with r.lock("lk2", timeout=5, blocking_timeout=1) as held:
            out.append(held.owned())
        out.append(r.exists("lk2"))
        return out

    step("Lock acquire extend release owned", lock_session)
    step("LockError class", lambda: issubclass(redis.exceptions.LockNotOwnedError, LockError))

    # --- client-side caching and the tracking it rests on ---------------------------------
    def cache_config_refused():
        try:
            from redis.cache import CacheConfig
        except ImportError:
            return "this redis-py has no CacheConfig"
        # redis-py enables its cache only for a server whose HELLO says redis >= 7.4; Valkey
        # says "valkey" (ferrokv too), so the refusal is part of what an application sees.
        return client(cache_config=CacheConfig()).get("csc:k")

    if PROTOCOL == 3:
        step("cache_config", cache_config_refused)
    else:
        step("cache_config", lambda: "redis-py caches over RESP3 only")

    def resp3_tracking():
        # What redis-py's cache does on its connection (CacheProxyConnection): CLIENT
        # TRACKING ON, reads, and invalidation pushes handed to the parser's push handler.
        c = client()
        conn = c.connection_pool.get_connection()
        invalidations = []
        conn._parser.set_invalidation_push_handler(invalidations.append)

        def call(*args):
            conn.send_command(*args)
            return conn.read_response()

        def wait_invalidations(n):
            def pending_read():
                while conn.can_read(timeout=0.01):
                    conn.read_response(push_request=True)
                return len(invalidations) >= n

            until("an invalidation push", pending_read)

        try:
            out = [call("SET", "csc:k", "v1"), call("CLIENT", "TRACKING", "ON"), call("GET", "csc:k"),
                   call("MGET", "csc:k", "csc:k2")]
            other.set("csc:k", "v2")
            wait_invalidations(1)
            out += [call("GET", "csc:k"), call("CLIENT", "TRACKINGINFO")]
            other.delete("csc:k", "csc:k2")
            wait_invalidations(2)
            # FLUSHDB of any database invalidates everything: a push with a null key list.
            client(db=5).flushdb()
            wait_invalidations(3)
            out += [invalidations, call("CLIENT", "TRACKING", "OFF"), call("CLIENT", "TRACKINGINFO")]
            return out
        finally:
            c.connection_pool.release(conn)

    if PROTOCOL == 3:
        step("client tracking: invalidation pushes", resp3_tracking)
    else:
        step("client tracking: invalidation pushes", lambda: "pushes need RESP3")

    def redirected_tracking():
        # Tracking for RESP2 clients: invalidations go to another connection subscribed to
        # __redis__:invalidate. The sink speaks RESP2 in both sessions: a RESP3 sink gets
        # invalidate pushes, which redis-py's PubSub does not hand to the application.
        sink = client(client_name="invalidation-sink", protocol=2)
        p = sink.pubsub()
        p.subscribe("__redis__:invalidate")
        out = [next_message(p)]
        sink_id = next(x["id"] for x in r.client_list() if x["name"] == "invalidation-sink")
        t = client()
        conn = t.connection_pool.get_connection()

        def call(*args):
            conn.send_command(*args)
            return conn.read_response()

        try:
            out += [call("CLIENT", "TRACKING", "ON", "REDIRECT", sink_id), call("GET", "rt:k")]
            other.set("rt:k", "v")
            out.append(next_message(p))
            out.append(attempt(lambda: call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "rt:")))
            out.append(call("CLIENT", "TRACKING", "OFF"))
            out += [call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "rt:", "REDIRECT", sink_id),
                    other.set("rt:other", "x"), next_message(p), call("CLIENT", "TRACKING", "OFF")]
            return out
        finally:
            t.connection_pool.release(conn)
            p.close()

    step("client tracking redirected to a subscriber", redirected_tracking)

    # --- connection options: db, auth ----------------------------------------------------
    def db_option():
        d = client(db=3)
        out = [d.set("dbkey", "three"), r.get("dbkey"), d.get("dbkey"), client_info(d)["db"], d.dbsize(),
               d.move("dbkey", 0), r.get("dbkey")]
        d.close()
        return out

    step("db option", db_option)
    step("select out of range", lambda: r.select(16))
    step("acl setuser getuser", lambda: [
        r.acl_setuser("alice", enabled=True, passwords=["+s3cret"], keys=["app:*"], commands=["+@all", "-flushall"]),
        r.acl_getuser("alice"),
    ])

    def user_auth():
        a = client(username="alice", password="s3cret")
        out = [a.acl_whoami(), a.set("app:x", "1"), client_info(a)["user"],
               attempt(lambda: a.get("other")), attempt(lambda: a.flushall())]
        a.close()
        return out

    step("username and password", user_auth)
    step("wrong password: AuthenticationError", lambda: client(username="alice", password="wrong").ping())
    step("password for a default user without one", lambda: client(password="whatever").ping())
    step("auth command wrong password", lambda: r.auth("nope", "alice"))
    step("acl deluser", lambda: r.acl_deluser("alice"))

    # --- error classes and messages ------------------------------------------------------
    step("wrongtype", lambda: r.hget("s:1", "f"))
    step("unknown command", lambda: r.execute_command("NOSUCHCMD", "a", "b"))
    step("wrong arity", lambda: r.execute_command("GET"))
    step("unknown subcommand", lambda: r.execute_command("CLIENT", "NOPE"))
    step("syntax error", lambda: r.execute_command("SET", "k", "v", "BOGUS"))
    step("config set unknown", lambda: r.config_set("no-such-parameter", "1"))
    step("exception classes", lambda: [
        type(attempt_exc(lambda: r.hget("s:1", "f"))).__name__,
        type(attempt_exc(lambda: r.evalsha("ffffffffffffffffffffffffffffffffffffffff", 0))).__name__,
        type(attempt_exc(lambda: client(username="nobody", password="x").ping())).__name__,
        type(attempt_exc(lambda: r.xgroup_create("st", "g1", id="0"))).__name__,
    ])

    # --- binary safety and large values --------------------------------------------------
    def all_bytes():
        everything = bytes(range(256))
        key = bytes([0, 255, 13, 10, 32, 34])
        rb.set(key, everything)
        rb.hset("bin:h", everything, everything)
        rb.rpush("bin:l", everything, b"", everything)
        back = rb.get(key)
        return [back == everything, rb.strlen(key), back, rb.hget("bin:h", everything) == everything,
                [len(x) for x in rb.lrange("bin:l", 0, -1)], rb.exists(key)]

    step("all 256 byte values", all_bytes)

    def one_megabyte():
        big = bytes((i * 7) % 251 for i in range(1 << 20))
        rb.set("big", big)
        p = rb.pipeline()
        p.get("big").strlen("big").getrange("big", 1000000, 1000010)
        got, length, piece = p.execute()
        return [rb.get("big") == big, got == big, length, piece]

    step("1 MB value", one_megabyte)
    step("utf-8", lambda: [r.set("utf8", "héllo wörld ✓ 日本"), r.get("utf8"), r.strlen("utf8")])

    # --- monitor -------------------------------------------------------------------------
    def monitor_session():
        seen = []
        with r.monitor() as m:
            other.set("mon:key", 'he said "hi"\nbye')
            other.select(2)
            other.hset("mon:h", "f", "v")
            other.select(0)
            while len(seen) < 2:
                cmd = m.next_command()
                if "mon:" in cmd["command"]:
                    seen.append({"db": cmd["db"], "command": cmd["command"]})
        return seen

    step("monitor sees commands from another connection", monitor_session)
    step("dbsize at end", lambda: r.dbsize())


def attempt_exc(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return e
    return None


if __name__ == "__main__":
    try:
        main()
    finally:
        for c in CLIENTS:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing is best effort at exit
                pass
