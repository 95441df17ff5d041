#!/usr/bin/env node
// Drives ioredis through a session an application could run and prints one JSON line per
// step: the reply as ioredis hands it to the application, or the error it raises. Run against
// valkey-server and against ferrokv (tests/clients.rs), the two transcripts must be equal: an
// application using ioredis must not be able to tell the servers apart.
//
// Usage: node session.js PORT [HOST]
//
// Only what is deterministic goes into the transcript: no client ids, addresses, INFO
// values, timestamps or random draws, and replies whose order is a hash table's are sorted.
'use strict';

const Redis = require('ioredis');

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node session.js PORT [HOST]');
  process.exit(64);
}

// A stuck server must not hang the test: fail on our own well before nextest's timeout.
setTimeout(() => {
  console.error('session.js: hard timeout');
  process.exit(2);
}, 60_000).unref();

const connections = [];

function conn(options = {}) {
  const c = new Redis({
    port,
    host,
    // A refused or dropped connection is a failure to report, not something to retry.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    commandTimeout: 10_000,
    // After QUIT ioredis arms a timer to destroy the socket that is cleared only by a
    // 'close' event which, the server having closed first, has already fired: each
    // connection would keep Node alive for the default 2 s.
    disconnectTimeout: 100,
    ...options,
  });
  // Errors surface through the commands' promises; the event only stops Node from
  // treating an unhandled 'error' as fatal.
  c.on('error', () => {});
  connections.push(c);
  return c;
}

// Makes a reply JSON-printable without losing what tells servers apart: buffers become hex,
// errors their class and message, `undefined` (ioredis's "no result") null.
function norm(v) {
  if (v === undefined || v === null) return null;
  if (Buffer.isBuffer(v)) return { hex: v.toString('hex') };
  if (v instanceof Error) return { err: `${v.name}: ${v.message}` };
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = norm(x);
    return o;
  }
  return v;
}

function errText(e) {
  return `${e.name}: ${e.message}`;
}

// For steps that go on after an error: the reply, or the error's text in its place.
async function attempt(fn) {
  try {
    return norm(await fn());
  } catch (e) {
    return errText(e);
  }
}

async function step(name, fn) {
  let line;
  try {
    line = { step: name, ok: norm(await fn()) };
  } catch (e) {
    line = { step: name, err: errText(e) };
    if (e.previousErrors) line.previousErrors = e.previousErrors.map(errText);
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

async function until(what, check, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The connection's own CLIENT INFO fields that do not vary between runs.
async function clientInfo(c) {
  const info = await c.client('INFO');
  const fields = Object.fromEntries(
    info.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const keep = ['name', 'db', 'sub', 'psub', 'multi', 'flags', 'cmd', 'user', 'resp', 'lib-name', 'lib-ver'];
  return Object.fromEntries(keep.map((k) => [k, fields[k]]));
}

async function blockedClients(c) {
  const info = await c.info('clients');
  return Number(/blocked_clients:(\d+)/.exec(info)[1]);
}

const sorted = (xs) => [...xs].sort();

async function main() {
  const r = conn({ connectionName: 'ioredis-session' });
  const other = conn();
  await step('flushall', () => r.flushall());
  await step('ping', () => r.ping());
  await step('ping message', () => r.ping('hello'));
  await step('echo', () => r.echo('ferrokv'));

  // --- connection identity -------------------------------------------------------------
  await step('client getname', () => r.client('GETNAME'));
  await step('client info', () => clientInfo(r));
  await step('client setname with space', () => r.client('SETNAME', 'has space'));

  // --- strings -------------------------------------------------------------------------
  await step('set', () => r.set('s:1', 'v1'));
  await step('set nx on existing', () => r.set('s:1', 'x', 'NX'));
  await step('set xx on missing', () => r.set('s:missing', 'x', 'XX'));
  await step('set get', () => r.set('s:1', 'v2', 'GET'));
  await step('get', () => r.get('s:1'));
  await step('get missing', () => r.get('s:missing'));
  await step('set ex', () => r.set('s:ex', 'v', 'EX', 100));
  await step('ttl after set ex is about 100', async () => {
    const t = await r.ttl('s:ex');
    return t >= 98 && t <= 100;
  });
  await step('set exat', () => r.set('s:exat', 'v', 'EXAT', 4102444800));
  await step('expiretime', () => r.expiretime('s:exat'));
  await step('pexpiretime', () => r.pexpiretime('s:exat'));
  await step('set keepttl', () => r.set('s:exat', 'w', 'KEEPTTL'));
  await step('expiretime kept', () => r.expiretime('s:exat'));
  await step('set without keepttl clears ttl', async () => [await r.set('s:exat', 'z'), await r.ttl('s:exat')]);
  await step('set px then expired', async () => {
    await r.set('s:px', 'v', 'PX', 30);
    await sleep(150);
    return [await r.get('s:px'), await r.exists('s:px'), await r.ttl('s:px')];
  });
  await step('set ex 0', () => r.set('s:bad', 'v', 'EX', 0));
  await step('set ex not a number', () => r.set('s:bad', 'v', 'EX', 'soon'));
  await step('set nx xx', () => r.set('s:bad', 'v', 'NX', 'XX'));
  await step('setex psetex setnx', async () => [
    await r.setex('s:setex', 50, 'a'),
    await r.psetex('s:psetex', 50000, 'b'),
    await r.setnx('s:setex', 'c'),
    await r.setnx('s:setnx', 'd'),
  ]);
  await step('mset object', () => r.mset({ 'm:a': '1', 'm:b': '2', 'm:c': '3' }));
  await step('mget', () => r.mget('m:a', 'm:b', 'm:missing', 'm:c'));
  await step('msetnx one exists', () => r.msetnx('m:a', '9', 'm:new', '1'));
  await step('msetnx none exist', () => r.msetnx('m:n1', '1', 'm:n2', '2'));
  await step('mset odd arguments', () => r.call('MSET', 'a', '1', 'b'));
  await step('incr incrby decr decrby', async () => [
    await r.incr('n'),
    await r.incrby('n', 41),
    await r.decr('n'),
    await r.decrby('n', -10),
  ]);
  await step('incr overflow', async () => {
    await r.set('n:max', '9223372036854775807');
    return r.incr('n:max');
  });
  await step('incr not integer', () => r.incr('s:1'));
  await step('incrbyfloat sequence', async () => [
    await r.incrbyfloat('f', '10.5'),
    await r.incrbyfloat('f', '0.1'),
    await r.incrbyfloat('f', '-5.0e3'),
    await r.incrbyfloat('f', '3.0e-3'),
    await r.incrbyfloat('f:int', 3),
    await r.incrbyfloat('f:big', '1e17'),
    await r.incrbyfloat('f:small', '0.0000001'),
  ]);
  await step('incrbyfloat not a float', () => r.incrbyfloat('s:1', '1'));
  await step('incrbyfloat bad increment', () => r.incrbyfloat('f', 'abc'));
  await step('incrbyfloat to infinity', async () => {
    await r.set('f:huge', '1.7e308');
    return r.incrbyfloat('f:huge', '1.7e308');
  });
  await step('append strlen getrange setrange', async () => [
    await r.append('str', 'Hello'),
    await r.append('str', ' World'),
    await r.strlen('str'),
    await r.getrange('str', 0, 4),
    await r.getrange('str', -5, -1),
    await r.getrange('str', 100, 200),
    await r.setrange('str', 6, 'Redis'),
    await r.get('str'),
    await r.setrange('str:pad', 3, 'x'),
    await r.getBuffer('str:pad'),
  ]);
  await step('getdel getex', async () => [
    await r.getdel('str'),
    await r.exists('str'),
    await r.set('gx', 'v'),
    await r.getex('gx', 'EXAT', 4102444800),
    await r.expiretime('gx'),
    await r.getex('gx', 'PERSIST'),
    await r.ttl('gx'),
  ]);
  await step('lcs', async () => {
    await r.mset('lcs:a', 'ohmytext', 'lcs:b', 'mynewtext');
    return [await r.call('LCS', 'lcs:a', 'lcs:b'), await r.call('LCS', 'lcs:a', 'lcs:b', 'LEN')];
  });

  // --- keyspace ------------------------------------------------------------------------
  await step('exists type', async () => [
    await r.exists('s:1', 'm:a', 'nope', 's:1'),
    await r.type('s:1'),
    await r.type('nope'),
  ]);
  await step('expire persist ttl', async () => [
    await r.expire('s:1', 1000),
    await r.expire('s:1', 2000, 'NX'),
    await r.expire('s:1', 3000, 'GT'),
    await r.persist('s:1'),
    await r.ttl('s:1'),
    await r.ttl('nope'),
    await r.expire('nope', 10),
  ]);
  await step('rename missing', () => r.rename('nope', 'nope2'));
  await step('rename renamenx copy', async () => [
    await r.rename('m:n1', 'm:renamed'),
    await r.renamenx('m:renamed', 'm:n2'),
    await r.copy('m:renamed', 'm:copy'),
    await r.copy('m:renamed', 'm:copy'),
    await r.get('m:copy'),
  ]);
  await step('object encoding strings', async () => {
    await r.set('enc:int', '12345');
    await r.set('enc:emb', 'short');
    await r.set('enc:raw', 'x'.repeat(100));
    return [
      await r.object('ENCODING', 'enc:int'),
      await r.object('ENCODING', 'enc:emb'),
      await r.object('ENCODING', 'enc:raw'),
    ];
  });
  await step('del unlink', async () => [await r.del('enc:int', 'enc:emb', 'nope'), await r.unlink('enc:raw')]);

  // --- hashes --------------------------------------------------------------------------
  await step('hset object', () => r.hset('h', { f1: 'v1', f2: 'v2', 10: 'ten' }));
  await step('hgetall', () => r.hgetall('h'));
  await step('hgetall missing', () => r.hgetall('h:missing'));
  await step('hget hmget', async () => [await r.hget('h', 'f1'), await r.hmget('h', 'f1', 'nope', '10')]);
  await step('hincrby hincrbyfloat', async () => [
    await r.hincrby('h', 'n', 5),
    await r.hincrby('h', 'n', -2),
    await r.hincrbyfloat('h', 'fl', '2.5'),
    await r.hincrbyfloat('h', 'fl', '0.25'),
  ]);
  await step('hincrby not integer', () => r.hincrby('h', 'f1', 1));
  await step('hincrbyfloat not float', () => r.hincrbyfloat('h', 'f1', 1));
  await step('hsetnx hexists hstrlen', async () => [
    await r.hsetnx('h', 'f1', 'x'),
    await r.hsetnx('h', 'f3', 'v3'),
    await r.hexists('h', 'f3'),
    await r.hexists('h', 'nope'),
    await r.hstrlen('h', 'f3'),
  ]);
  await step('hkeys hvals hlen', async () => [await r.hkeys('h'), await r.hvals('h'), await r.hlen('h')]);
  await step('hdel', async () => [await r.hdel('h', 'f1', 'nope'), await r.hgetall('h')]);
  await step('object encoding small hash', () => r.object('ENCODING', 'h'));
  await step('large hash hgetall sorted', async () => {
    const fields = {};
    for (let i = 0; i < 300; i++) fields[`field:${i}`] = `value:${i}`;
    await r.hset('h:big', fields);
    const all = await r.hgetall('h:big');
    const entries = Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return [entries.length, entries.slice(0, 3), await r.object('ENCODING', 'h:big')];
  });
  await step('hscanStream sorted', async () => {
    const seen = [];
    await new Promise((res, rej) => {
      r.hscanStream('h:big', { match: 'field:1?', count: 50 })
        .on('data', (kv) => {
          for (let i = 0; i < kv.length; i += 2) seen.push(`${kv[i]}=${kv[i + 1]}`);
        })
        .on('end', res)
        .on('error', rej);
    });
    return sorted(new Set(seen));
  });

  // --- lists ---------------------------------------------------------------------------
  await step('rpush lpush lrange', async () => [
    await r.rpush('l', 'a', 'b', 'c'),
    await r.lpush('l', 'z'),
    await r.lrange('l', 0, -1),
    await r.lrange('l', -2, 100),
  ]);
  await step('lindex llen lpos', async () => [
    await r.lindex('l', 1),
    await r.lindex('l', 99),
    await r.llen('l'),
    await r.lpos('l', 'b'),
    await r.lpos('l', 'nope'),
    await r.rpush('l', 'b'),
    await r.lpos('l', 'b', 'COUNT', 0),
  ]);
  await step('linsert lset lrem', async () => [
    await r.linsert('l', 'BEFORE', 'a', 'aa'),
    await r.linsert('l', 'AFTER', 'nope', 'x'),
    await r.lset('l', 0, 'zz'),
    await r.lrem('l', -1, 'b'),
    await r.lrange('l', 0, -1),
  ]);
  await step('lset out of range', () => r.lset('l', 99, 'x'));
  await step('lset missing key', () => r.lset('l:missing', 0, 'x'));
  await step('lpop rpop counts', async () => [
    await r.lpop('l'),
    await r.lpop('l', 2),
    await r.rpop('l', 10),
    await r.lpop('l'),
    await r.exists('l'),
  ]);
  await step('ltrim lmove lmpop', async () => [
    await r.rpush('l2', '1', '2', '3', '4', '5'),
    await r.ltrim('l2', 1, -2),
    await r.lmove('l2', 'l3', 'LEFT', 'RIGHT'),
    await r.lmpop(2, 'l:none', 'l2', 'RIGHT', 'COUNT', 5),
    await r.lrange('l3', 0, -1),
  ]);
  await step('blpop times out', () => r.blpop('bl:empty', 0.1));
  await step('blpop woken by a push from another connection', async () => {
    const blocker = conn();
    const pending = blocker.blpop('bl:q', 'bl:q2', 5);
    await until('the BLPOP to block', async () => (await blockedClients(r)) === 1);
    const pushed = await other.rpush('bl:q2', 'first', 'second');
    const got = await pending;
    await blocker.quit();
    return [pushed, got, await r.lrange('bl:q2', 0, -1)];
  });
  await step('blmove immediate', async () => [
    await r.blmove('l3', 'l4', 'RIGHT', 'LEFT', 1),
    await r.lrange('l4', 0, -1),
  ]);
  await step('blpop negative timeout', () => r.blpop('bl:q', -1));
  await step('lpush on string', () => r.lpush('s:1', 'x'));

  // --- sets ----------------------------------------------------------------------------
  await step('sadd smembers sorted', async () => [
    await r.sadd('set:a', 'x', 'y', 'z', 'x'),
    sorted(await r.smembers('set:a')),
    await r.scard('set:a'),
  ]);
  await step('sismember smismember', async () => [
    await r.sismember('set:a', 'x'),
    await r.sismember('set:a', 'q'),
    await r.smismember('set:a', 'x', 'q', 'z'),
  ]);
  await step('set algebra sorted', async () => {
    await r.sadd('set:b', 'y', 'z', 'w');
    return [
      sorted(await r.sinter('set:a', 'set:b')),
      sorted(await r.sunion('set:a', 'set:b')),
      sorted(await r.sdiff('set:a', 'set:b')),
      await r.sintercard(2, 'set:a', 'set:b'),
      await r.sintercard(2, 'set:a', 'set:b', 'LIMIT', 1),
      await r.sunionstore('set:u', 'set:a', 'set:b'),
      sorted(await r.smembers('set:u')),
    ];
  });
  await step('srem smove', async () => [
    await r.srem('set:a', 'x', 'nope'),
    await r.smove('set:a', 'set:c', 'y'),
    await r.smove('set:a', 'set:c', 'nope'),
    sorted(await r.smembers('set:c')),
  ]);
  await step('srandmember whole set sorted', async () => {
    await r.sadd('set:n', '3', '1', '2');
    return [sorted(await r.srandmember('set:n', 10)), await r.object('ENCODING', 'set:n')];
  });
  await step('sscanStream sorted', async () => {
    const members = [];
    for (let i = 0; i < 200; i++) members.push(`m${i}`);
    await r.sadd('set:big', ...members);
    const seen = [];
    await new Promise((res, rej) => {
      r.sscanStream('set:big', { match: 'm1*', count: 20 })
        .on('data', (ms) => seen.push(...ms))
        .on('end', res)
        .on('error', rej);
    });
    const unique = sorted(new Set(seen));
    return [unique.length, unique.slice(0, 5), await r.object('ENCODING', 'set:big')];
  });

  // --- sorted sets ---------------------------------------------------------------------
  await step('zadd zrange withscores', async () => [
    await r.zadd('z', 1, 'a', 2, 'b', 3, 'c', 2.5, 'd'),
    await r.zrange('z', 0, -1, 'WITHSCORES'),
    await r.zrange('z', 0, -1, 'REV'),
    await r.zrange('z', '(1', '+inf', 'BYSCORE', 'LIMIT', 0, 2, 'WITHSCORES'),
  ]);
  await step('zrangebyscore zrevrangebyscore', async () => [
    await r.zrangebyscore('z', '-inf', '+inf', 'WITHSCORES', 'LIMIT', 1, 2),
    await r.zrevrangebyscore('z', 3, '(2', 'WITHSCORES'),
  ]);
  await step('zincrby zscore zmscore', async () => [
    await r.zincrby('z', 1, 'c'),
    await r.zincrby('z', -0.5, 'a'),
    await r.zscore('z', 'd'),
    await r.zscore('z', 'nope'),
    await r.zmscore('z', 'a', 'nope', 'c'),
  ]);
  await step('zrank zrevrank withscore', async () => [
    await r.zrank('z', 'd'),
    await r.zrevrank('z', 'd'),
    await r.zrank('z', 'nope'),
    await r.call('ZRANK', 'z', 'd', 'WITHSCORE'),
  ]);
  await step('zadd flags', async () => [
    await r.zadd('z', 'GT', 'CH', 1, 'b', 10, 'c'),
    await r.zadd('z', 'NX', 'INCR', 5, 'a'),
    await r.zadd('z', 'XX', 'INCR', 5, 'a'),
    await r.zadd('z', 'LT', 'CH', 0, 'd'),
    await r.zrange('z', 0, -1, 'WITHSCORES'),
  ]);
  await step('zadd nx xx', () => r.zadd('z', 'NX', 'XX', 1, 'a'));
  await step('zadd not a float', () => r.zadd('z', 'abc', 'a'));
  await step('zadd nan increment', async () => {
    await r.zadd('z:inf', '+inf', 'top');
    return r.zadd('z:inf', 'INCR', '-inf', 'top');
  });
  await step('zset float formatting', async () => {
    await r.zadd('zf', '0.30000000000000004', 'x', '1e300', 'y', '-0.0', 'w', '1.5e-7', 'v', 'inf', 'u');
    return r.zrange('zf', 0, -1, 'WITHSCORES');
  });
  await step('zcount zlexcount zrangebylex', async () => {
    await r.zadd('zl', 0, 'a', 0, 'b', 0, 'c', 0, 'd');
    return [
      await r.zcount('z', '(1', 5),
      await r.zlexcount('zl', '[b', '+'),
      await r.zrangebylex('zl', '(a', '[c'),
      await r.zrange('zl', '[c', '-', 'BYLEX', 'REV'),
    ];
  });
  await step('zpopmin zpopmax zmpop', async () => [
    await r.zpopmin('z'),
    await r.zpopmax('z', 2),
    await r.zmpop(1, 'z', 'MIN', 'COUNT', 5),
    await r.exists('z'),
  ]);
  await step('zunionstore zinter weights', async () => {
    await r.zadd('zu1', 1, 'a', 2, 'b');
    await r.zadd('zu2', 10, 'b', 20, 'c');
    return [
      await r.zunionstore('zu', 2, 'zu1', 'zu2', 'WEIGHTS', 2, 0.5),
      await r.zrange('zu', 0, -1, 'WITHSCORES'),
      await r.zinter(2, 'zu1', 'zu2', 'AGGREGATE', 'MAX', 'WITHSCORES'),
      await r.zdiff(2, 'zu1', 'zu2', 'WITHSCORES'),
    ];
  });
  await step('zscanStream large sorted', async () => {
    const args = [];
    for (let i = 0; i < 200; i++) args.push(i, `member:${i}`);
    await r.zadd('z:big', ...args);
    const seen = [];
    await new Promise((res, rej) => {
      r.zscanStream('z:big', { match: 'member:19*', count: 30 })
        .on('data', (kv) => {
          for (let i = 0; i < kv.length; i += 2) seen.push(`${kv[i]}=${kv[i + 1]}`);
        })
        .on('end', res)
        .on('error', rej);
    });
    return [sorted(new Set(seen)), await r.object('ENCODING', 'z:big')];
  });

  // --- streams -------------------------------------------------------------------------
  await step('xadd explicit ids', async () => [
    await r.xadd('st', '1-1', 'f', 'v1'),
    await r.xadd('st', '1-2', 'f', 'v2', 'g', 'w2'),
    await r.xadd('st', '2-0', 'f', 'v3'),
    await r.xadd('st', '5-*', 'f', 'v4'),
    await r.xadd('st', '5-*', 'f', 'v5'),
  ]);
  await step('xadd equal id', () => r.xadd('st', '1-1', 'f', 'x'));
  await step('xadd 0-0', () => r.xadd('st:new', '0-0', 'f', 'x'));
  await step('xadd bad id', () => r.xadd('st', 'abc', 'f', 'x'));
  await step('xadd nomkstream', () => r.xadd('st:none', 'NOMKSTREAM', '1-1', 'f', 'x'));
  await step('xrange xrevrange xlen', async () => [
    await r.xrange('st', '-', '+'),
    await r.xrange('st', '(1-1', '+', 'COUNT', 2),
    await r.xrevrange('st', '+', '-', 'COUNT', 1),
    await r.xlen('st'),
  ]);
  await step('xgroup create', () => r.xgroup('CREATE', 'st', 'g1', '0'));
  await step('xgroup create again', () => r.xgroup('CREATE', 'st', 'g1', '0'));
  await step('xgroup create on missing key', () => r.xgroup('CREATE', 'st:missing', 'g1', '0'));
  await step('xgroup create mkstream', () => r.xgroup('CREATE', 'st:mk', 'g', '$', 'MKSTREAM'));
  await step('xreadgroup new entries', () => r.xreadgroup('GROUP', 'g1', 'c1', 'COUNT', 2, 'STREAMS', 'st', '>'));
  await step('xreadgroup for c2', () => r.xreadgroup('GROUP', 'g1', 'c2', 'COUNT', 1, 'STREAMS', 'st', '>'));
  await step('xack', async () => [await r.xack('st', 'g1', '1-1', '9-9'), await r.xack('st', 'g1', '1-1')]);
  await step('xpending summary', () => r.xpending('st', 'g1'));
  await step('xpending extended without idle times', async () => {
    const rows = await r.xpending('st', 'g1', '-', '+', 10);
    return rows.map(([id, consumer, _idle, deliveries]) => [id, consumer, deliveries]);
  });
  await step('xreadgroup own history', () => r.xreadgroup('GROUP', 'g1', 'c1', 'STREAMS', 'st', '0'));
  await step('xreadgroup unknown group', () => r.xreadgroup('GROUP', 'nope', 'c1', 'STREAMS', 'st', '>'));
  await step('xautoclaim', () => r.xautoclaim('st', 'g1', 'c3', 0, '0-0', 'COUNT', 10));
  await step('xclaim justid', () => r.xclaim('st', 'g1', 'c1', 0, '2-0', 'JUSTID'));
  await step('xinfo stream selected fields', async () => {
    const flat = await r.xinfo('STREAM', 'st');
    const info = {};
    for (let i = 0; i < flat.length; i += 2) info[flat[i]] = flat[i + 1];
    return ['length', 'last-generated-id', 'max-deleted-entry-id', 'entries-added', 'groups', 'first-entry', 'last-entry'].map(
      (k) => [k, info[k]],
    );
  });
  await step('xdel xtrim', async () => [
    await r.xdel('st', '1-2', '9-9'),
    await r.xtrim('st', 'MAXLEN', 2),
    await r.xrange('st', '-', '+'),
    await r.xtrim('st', 'MINID', '5-1'),
    await r.xlen('st'),
  ]);
  await step('xread block woken by xadd from another connection', async () => {
    const reader = conn();
    const pending = reader.xread('BLOCK', 5000, 'STREAMS', 'st', '$');
    await until('the XREAD to block', async () => (await blockedClients(r)) === 1);
    await other.xadd('st', '7-7', 'woke', 'up');
    const got = await pending;
    await reader.quit();
    return got;
  });

  // --- pipelines and transactions ------------------------------------------------------
  await step('pipeline with an error inside', () =>
    r.pipeline().set('p:a', '1').incr('p:a').incr('s:1').get('p:a').exec(),
  );
  await step('pipeline array form', () =>
    r
      .pipeline([
        ['set', 'p:b', 'x'],
        ['append', 'p:b', 'y'],
        ['get', 'p:b'],
      ])
      .exec(),
  );
  await step('multi exec', () => r.multi().set('t:a', '1').incr('t:a').get('t:a').exec());
  await step('multi with unknown command queued: EXECABORT', () =>
    r.multi().set('t:b', '1').call('NOSUCHCMD', 'x').get('t:b').exec(),
  );
  await step('EXECABORT left nothing behind', () => r.exists('t:b'));
  await step('multi with wrong arity queued', () => r.multi().set('t:c', '1').call('GET').exec());
  await step('multi runtime error inside exec', () =>
    r.multi().set('t:s', 'x').lpush('t:s', 'y').append('t:s', 'z').get('t:s').exec(),
  );
  await step('multi without pipelining', async () => {
    const c = conn();
    const out = [await c.multi({ pipeline: false }), await c.set('t:np', '1'), await c.incr('t:np')];
    out.push(await attempt(() => c.exec()));
    out.push(await c.multi({ pipeline: false }), await c.set('t:np2', '1'));
    // A nested MULTI is refused, and (as any refused command) dooms the transaction.
    out.push(await attempt(() => c.multi({ pipeline: false })));
    out.push(await attempt(() => c.exec()));
    out.push(await c.exists('t:np2'));
    await c.quit();
    return out;
  });
  await step('exec without multi', () => r.exec());
  await step('discard without multi', () => r.discard());
  await step('watch with a conflicting write: exec returns null', async () => {
    const w = conn();
    await w.set('w:k', 'start');
    await w.watch('w:k');
    await other.set('w:k', 'other');
    const result = await w.multi().set('w:k', 'mine').exec();
    const value = await r.get('w:k');
    await w.quit();
    return [result, value];
  });
  await step('watch without conflict', async () => {
    const w = conn();
    await w.watch('w:k2');
    const result = await w.multi().set('w:k2', 'mine').get('w:k2').exec();
    await w.quit();
    return result;
  });
  await step('watch expired key counts as a change', async () => {
    const w = conn();
    // SET and WATCH travel together so the key cannot expire before it is watched.
    await w.pipeline().set('w:exp', 'v', 'PX', 100).watch('w:exp').exec();
    await sleep(250);
    const result = await w.multi().set('w:exp', 'new').exec();
    await w.quit();
    return result;
  });
  await step('watch inside multi', async () => {
    const w = conn();
    const out = [await w.multi({ pipeline: false })];
    out.push(await attempt(() => w.watch('x')));
    out.push(await w.discard());
    await w.quit();
    return out;
  });

  // --- Lua scripts via defineCommand (EVALSHA, falling back to EVAL on NOSCRIPT) -------
  const kvsetLua = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])";
  r.defineCommand('kvset', { numberOfKeys: 1, lua: kvsetLua });
  r.defineCommand('convert', {
    numberOfKeys: 0,
    lua: "return {1, 2.9, 'str', true, false, {3, 'nested'}, redis.status_reply('FINE'), nil, 'after nil'}",
  });
  r.defineCommand('failincr', { numberOfKeys: 1, lua: "return redis.call('INCR', KEYS[1])" });
  r.defineCommand('custom', { numberOfKeys: 0, lua: "return redis.error_reply('MYERR custom failure')" });
  r.defineCommand('pcalled', {
    numberOfKeys: 1,
    lua: "local ok = redis.pcall('INCR', KEYS[1]); return {type(ok), ok['err']}",
  });
  r.defineCommand('nokeys', { lua: 'return #KEYS .. ":" .. #ARGV' });
  const sha = await r.script('LOAD', kvsetLua);
  await step('script flush before', () => r.script('FLUSH'));
  await step('script load sha', () => sha);
  await step('script exists before first call', () => r.script('EXISTS', sha));
  await step('defineCommand first call (EVALSHA -> NOSCRIPT -> EVAL)', () => r.kvset('sc:k', 'v1'));
  await step('script exists after EVAL', () => r.script('EXISTS', sha));
  await step('defineCommand second call (EVALSHA)', () => r.kvset('sc:k', 'v2'));
  await step('script flush', () => r.script('FLUSH'));
  await step('script exists after flush', () => r.script('EXISTS', sha));
  await step('defineCommand after flush', () => r.kvset('sc:k', 'v3'));
  await step('defineCommand in a pipeline', () => r.pipeline().kvset('sc:p', 'a').get('sc:p').exec());
  await step('defineCommand in multi', () => r.multi().kvset('sc:m', 'b').get('sc:m').exec());
  await step('lua type conversions', () => r.convert());
  await step('lua error from redis.call', () => r.failincr('s:1'));
  await step('lua error_reply', () => r.custom());
  await step('lua pcall error table', () => r.pcalled('s:1'));
  await step('lua numberOfKeys from call', () => r.nokeys(1, 'k', 'a', 'b'));
  await step('evalsha unknown', () => r.evalsha('ffffffffffffffffffffffffffffffffffffffff', 0));
  await step('eval negative numkeys', () => r.eval('return 1', -1));
  await step('eval numkeys too big', () => r.eval('return 1', 5, 'a'));
  await step('eval syntax error', () => r.eval('return +', 0));
  await step('eval runtime error', () => r.eval("return nil + 1", 0));
  await step('eval write in ro script', () => r.call('EVAL_RO', "return redis.call('SET', 'x', 'y')", 0));
  await step('fcall function', async () => [
    await r.function('LOAD', "#!lua name=sessionlib\nredis.register_function('plus', function(keys, args) return tonumber(args[1]) + 1 end)"),
    await r.fcall('plus', 0, 41),
    await r.function('DELETE', 'sessionlib'),
  ]);

  // --- scanning ------------------------------------------------------------------------
  await step('scanStream match sorted', async () => {
    const p = r.pipeline();
    for (let i = 0; i < 60; i++) p.set(`scan:${i}`, i);
    for (let i = 0; i < 10; i++) p.sadd(`scanset:${i}`, i);
    await p.exec();
    const keys = [];
    await new Promise((res, rej) => {
      r.scanStream({ match: 'scan:*', count: 7 })
        .on('data', (ks) => keys.push(...ks))
        .on('end', res)
        .on('error', rej);
    });
    const unique = sorted(new Set(keys));
    return [unique.length, unique.slice(0, 5)];
  });
  await step('scanStream type filter sorted', async () => {
    const keys = [];
    await new Promise((res, rej) => {
      r.scanStream({ match: 'scan*', type: 'set', count: 100 })
        .on('data', (ks) => keys.push(...ks))
        .on('end', res)
        .on('error', rej);
    });
    return sorted(new Set(keys));
  });
  await step('keys sorted', async () => sorted(await r.keys('scanset:*')));
  await step('scan bad cursor', () => r.scan('abc'));

  // --- pub/sub -------------------------------------------------------------------------
  await step('pubsub subscribe, psubscribe, messages, unsubscribe', async () => {
    const sub = conn();
    const events = [];
    sub.on('message', (ch, msg) => events.push(['message', ch, msg]));
    sub.on('pmessage', (pat, ch, msg) => events.push(['pmessage', pat, ch, msg]));
    const out = {};
    out.subscribe = await sub.subscribe('news', 'sports');
    out.psubscribe = await sub.psubscribe('news.*');
    // ioredis refuses other commands on a subscribed connection itself, without asking.
    out.refusedByClient = await attempt(() => sub.get('x'));
    out.pingInSubscriberMode = await sub.ping();
    out.publish = [
      await other.publish('news', 'hello'),
      await other.publish('news.tech', 'gadgets'),
      await other.publish('sports', 'goal'),
      await other.publish('nobody', 'listens'),
    ];
    await until('three messages', () => events.length >= 3);
    out.events = events.slice();
    out.numsub = await other.pubsub('NUMSUB', 'news', 'sports', 'nobody');
    out.numpat = await other.pubsub('NUMPAT');
    out.channels = sorted(await other.pubsub('CHANNELS'));
    out.channelsPattern = await other.pubsub('CHANNELS', 'spo*');
    out.unsubscribeOne = await sub.unsubscribe('news');
    out.afterUnsubscribe = await other.publish('news', 'again');
    // ioredis resolves an argument-less (P)UNSUBSCRIBE only once no subscription is left,
    // so the pattern goes by name first.
    out.punsubscribe = await sub.punsubscribe('news.*');
    out.unsubscribeAll = await sub.unsubscribe();
    out.normalAgain = await sub.set('ps:after', 'ok');
    await sub.quit();
    return out;
  });
  await step('pubsub binary message buffers', async () => {
    const sub = conn();
    const got = [];
    sub.on('messageBuffer', (ch, msg) => got.push([ch, msg]));
    await sub.subscribe('bin');
    await other.publish('bin', Buffer.from([0, 1, 2, 255, 13, 10]));
    await until('the binary message', () => got.length === 1);
    await sub.quit();
    return got;
  });
  await step('sharded pubsub', async () => {
    const sub = conn();
    const got = [];
    sub.on('smessage', (ch, msg) => got.push([ch, msg]));
    const subscribed = await sub.ssubscribe('shard');
    const receivers = await other.spublish('shard', 'hi');
    await until('the sharded message', () => got.length === 1);
    const numsub = await other.pubsub('SHARDNUMSUB', 'shard');
    await sub.quit();
    return [subscribed, receivers, got, numsub];
  });

  // --- connection options: keyPrefix, db, auth -----------------------------------------
  await step('keyPrefix', async () => {
    const p = conn({ keyPrefix: 'app:' });
    const out = [
      await p.set('k', 'v'),
      await p.get('k'),
      await r.get('app:k'),
      await p.mset('a', '1', 'b', '2'),
      await p.mget('a', 'b', 'k'),
      sorted(await r.keys('app:*')),
      await p.del('a', 'b'),
      await p.multi().incr('counter').get('counter').exec(),
      await r.get('app:counter'),
    ];
    await p.quit();
    return out;
  });
  await step('db option selects the database', async () => {
    const d = conn({ db: 3 });
    const out = [
      await d.set('dbkey', 'three'),
      await r.get('dbkey'),
      await d.get('dbkey'),
      (await clientInfo(d)).db,
      await d.dbsize(),
      await d.move('dbkey', 0),
      await r.get('dbkey'),
    ];
    await d.quit();
    return out;
  });
  await step('select out of range', () => r.select(16));
  await step('acl setuser', () => r.acl('SETUSER', 'alice', 'on', '>s3cret', '~app:*', '+@all', '-flushall'));
  await step('acl getuser', () => r.acl('GETUSER', 'alice'));
  await step('username and password auth', async () => {
    const a = conn({ username: 'alice', password: 's3cret' });
    const out = [await a.acl('WHOAMI'), await a.set('app:x', '1'), (await clientInfo(a)).user];
    for (const f of [() => a.get('other'), () => a.flushall(), () => a.call('ACL', 'SETUSER', 'x')]) {
      out.push(await attempt(f));
    }
    await a.quit();
    return out;
  });
  await step('wrong password: WRONGPASS', async () => {
    const a = conn({ username: 'alice', password: 'wrong', lazyConnect: true });
    const failed = new Promise((res) => a.once('error', res));
    a.connect().catch(() => {});
    const e = await failed;
    a.disconnect();
    return errText(e);
  });
  await step('unknown user', async () => {
    const a = conn({ username: 'nobody', password: 'x', lazyConnect: true });
    const failed = new Promise((res) => a.once('error', res));
    a.connect().catch(() => {});
    const e = await failed;
    a.disconnect();
    return errText(e);
  });
  await step('auth command wrong pass', () => r.call('AUTH', 'alice', 'nope'));
  await step('acl deluser', () => r.acl('DELUSER', 'alice', 'nobody'));

  // --- error messages ------------------------------------------------------------------
  await step('wrongtype', () => r.hget('s:1', 'f'));
  await step('unknown command', () => r.call('NOSUCHCMD', 'a', 'b'));
  await step('wrong arity', () => r.call('GET'));
  await step('wrong arity subcommand', () => r.call('OBJECT', 'ENCODING'));
  await step('unknown subcommand', () => r.call('CLIENT', 'NOPE'));
  await step('syntax error', () => r.call('SET', 'k', 'v', 'BOGUS'));
  await step('not integer', () => r.expire('s:1', 'soon'));
  await step('config set unknown', () => r.config('SET', 'no-such-parameter', '1'));
  await step('getrange not integer', () => r.getrange('s:1', 'a', 'b'));

  // --- binary safety and large values --------------------------------------------------
  await step('all 256 byte values', async () => {
    const all = Buffer.from([...Array(256).keys()]);
    const key = Buffer.from([0, 255, 13, 10, 32, 34]);
    await r.set(key, all);
    const back = await r.getBuffer(key);
    await r.hset('bin:h', all, all);
    const hash = await r.hgetallBuffer('bin:h');
    await r.rpush('bin:l', all, Buffer.alloc(0), all);
    return [
      back.equals(all),
      back.length,
      await r.strlen(key),
      back,
      Object.keys(hash).length,
      (await r.hgetBuffer('bin:h', all)).equals(all),
      (await r.lrangeBuffer('bin:l', 0, -1)).map((b) => b.length),
      await r.exists(key),
    ];
  });
  await step('1 MB value', async () => {
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
    await r.set('big', big);
    const back = await r.getBuffer('big');
    const range = await r.getrangeBuffer('big', 1000000, 1000010);
    const piped = await r.pipeline().getBuffer('big').strlen('big').exec();
    return [back.equals(big), await r.strlen('big'), range, piped[0][1].equals(big), piped[1][1]];
  });
  await step('utf-8 strings', async () => {
    await r.set('utf8', 'héllo wörld ✓ 日本');
    return [await r.get('utf8'), await r.strlen('utf8')];
  });

  // --- monitor -------------------------------------------------------------------------
  await step('monitor sees a command from another connection', async () => {
    const mon = await r.monitor();
    const seen = [];
    mon.on('monitor', (_time, args, _source, database) => seen.push({ args, database }));
    await other.set('mon:key', 'he said "hi"\nbye');
    await other.select(2);
    await other.call('HSET', 'mon:h', 'f', 'v');
    await other.select(0);
    await until('the monitored commands', () => seen.some((e) => e.args[0].toLowerCase() === 'hset'));
    mon.disconnect();
    return seen.filter((e) => e.args[1] && e.args[1].startsWith('mon:'));
  });

  await step('dbsize at end', () => r.dbsize());
}

main()
  .catch((e) => {
    process.stdout.write(JSON.stringify({ step: 'session aborted', err: errText(e), stack: e.stack }) + '\n');
    process.exitCode = 1;
  })
  .finally(async () => {
    await Promise.all(connections.map((c) => (c.status === 'ready' ? c.quit().catch(() => {}) : c.disconnect())));
  });
