//! The propagation stream: every change to the dataset, as the commands Valkey would send
//! to its AOF and replicas, in one ordered byte stream.
//!
//! **Collecting.** A command's effects are gathered on its own thread while it runs: the
//! store adds the deletions of keys it finds expired (`ferrokv_store::effects`), handlers add
//! the extra commands they must propagate (`Ctx::propagate_also`) or replace their own
//! argument vector by the deterministic form Valkey sends (`Ctx::propagate_as`: SET .. PXAT,
//! PEXPIREAT, SREM for SPOP ...), and when the command changed the dataset (its dirty count
//! moved) its own argv (or that replacement) closes the list. One top-level command, EXEC or
//! script run is one *unit*: a unit of several commands is wrapped in MULTI/EXEC, as Valkey
//! does, and SELECT is inserted whenever the database differs from the last one sent.
//!
//! **Ordering.** Commands run on several threads under sharded locks. The unit is moved into
//! the stream while its shards are still locked (the store calls the release hook from
//! `Locked`'s drop and from the end of a `Hold`), so two commands that touch the same shard
//! reach the stream in the order they ran; commands on disjoint shards commute, so any order
//! between them is a valid history. The cost is one short critical section (the stream's
//! mutex: an append to a `Vec<u8>`) per write command while somebody consumes the stream.
//!
//! **Nobody listening.** With no consumer (appendonly no, no replicas) nothing is collected
//! or formatted: a command pays one relaxed load. The offset then stays where it is, as
//! Valkey's `master_repl_offset` does without a backlog.
//!
//! **Consuming.** A consumer subscribes (from the current end offset) and reads bytes from
//! any offset still inside the backlog; a *pinned* consumer (the AOF, a replica) keeps its
//! unread bytes from being trimmed (a replica is bounded by its output buffer limit instead).
//!
//! **Replicas only.** The primary's pings and `REPLCONF GETACK` go into the stream (they count
//! in the replication offset every replica must agree on) but not into the AOF: their byte
//! ranges are recorded and [`Stream::read_for_aof`] skips them.
//!
//! **On a replica** the stream holds exactly the bytes received from the primary
//! ([`Stream::append_raw`]), so its offsets are the primary's and its own replicas can resume
//! from it after a failover; nothing the replica runs itself is collected (`proxy` mode).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use bytes::Bytes;
use ferrokv_store::effects::{self, Op};
use parking_lot::Mutex;

use crate::stats;

/// Bytes kept behind the newest offset for consumers that read late (replication's
/// `repl-backlog-size` will set it).
const DEFAULT_BACKLOG: usize = 1 << 20;

pub struct Stream {
    consumers: AtomicUsize,
    /// The end offset, readable without the lock (the AOF's "anything new?" check).
    end: AtomicU64,
    inner: Mutex<Inner>,
    /// Woken after every append (replication consumers; the AOF writes on its own schedule).
    wakers: Mutex<BTreeMap<u64, Box<dyn Fn() + Send + Sync>>>,
    next_waker: AtomicU64,
    /// A replica: only the primary's bytes enter the stream; commands collect nothing.
    proxy: AtomicBool,
}

struct Inner {
    /// Offset of `buf[0]`.
    start: u64,
    buf: Vec<u8>,
    /// The database the last SELECT sent chose (None: send one before the next command).
    selected: Option<usize>,
    /// Pinned consumers: id → the offset they have consumed up to.
    pins: BTreeMap<u64, u64>,
    next_id: u64,
    backlog: usize,
    /// Byte ranges `[from, to)` that only replicas receive (pings, GETACK), oldest first.
    replica_only: VecDeque<(u64, u64)>,
}

impl Inner {
    fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }
}

/// A consumer's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub id: u64,
    /// The offset it starts reading from (the stream's end when it subscribed).
    pub offset: u64,
}

/// A consumer asked for bytes that were trimmed away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

impl Default for Stream {
    fn default() -> Self {
        Stream {
            consumers: AtomicUsize::new(0),
            end: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                start: 0,
                buf: Vec::new(),
                selected: None,
                pins: BTreeMap::new(),
                next_id: 1,
                backlog: DEFAULT_BACKLOG,
                replica_only: VecDeque::new(),
            }),
            wakers: Mutex::new(BTreeMap::new()),
            next_waker: AtomicU64::new(1),
            proxy: AtomicBool::new(false),
        }
    }
}

impl Stream {
    /// Whether anybody consumes the stream (collect effects only then).
    #[inline]
    pub fn active(&self) -> bool {
        self.consumers.load(Relaxed) > 0 && !self.proxy.load(Relaxed)
    }

    /// Proxy mode (a replica): commands collect nothing; only [`Stream::append_raw`] adds.
    pub fn set_proxy(&self, proxy: bool) {
        self.proxy.store(proxy, Relaxed);
        // A promoted replica's first own command must say which database it is in.
        self.inner.lock().selected = None;
    }

    pub fn is_proxy(&self) -> bool {
        self.proxy.load(Relaxed)
    }

    /// Bytes kept behind the end for late readers (`repl-backlog-size`).
    pub fn set_backlog(&self, bytes: usize) {
        let mut inner = self.inner.lock();
        inner.backlog = bytes.max(1);
        trim(&mut inner);
    }

    /// The backlog's bounds: (offset of its first byte, bytes held) — INFO's
    /// `repl_backlog_first_byte_offset` (one more, counting from 1) and `repl_backlog_histlen`.
    pub fn backlog_bounds(&self) -> (u64, u64) {
        let inner = self.inner.lock();
        (inner.start, inner.buf.len() as u64)
    }

    /// (bytes held, `repl-backlog-size`): what the stream keeps is the backlog plus whatever a
    /// pinned consumer (a replica, the AOF) has not read yet beyond it.
    pub fn held_bytes(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.buf.len(), inner.backlog)
    }

    /// Empties the stream and moves it to `offset` (a replica after a full sync: its history
    /// starts at the snapshot's offset). Pinned consumers are moved there too; the AOF
    /// starts a new file after a full sync anyway.
    pub fn reset_to(&self, offset: u64) {
        let mut inner = self.inner.lock();
        inner.start = offset;
        inner.buf = Vec::new();
        inner.replica_only.clear();
        inner.selected = None;
        for pin in inner.pins.values_mut() {
            *pin = offset;
        }
        self.end.store(offset, std::sync::atomic::Ordering::Release);
    }

    /// Appends bytes as they are (a replica proxying its primary's stream, or an encoded
    /// command for replicas only when `replica_only`).
    pub fn append_raw(&self, bytes: &[u8], replica_only: bool) {
        if bytes.is_empty() {
            return;
        }
        {
            let mut inner = self.inner.lock();
            let from = inner.end();
            inner.buf.extend_from_slice(bytes);
            if replica_only {
                let to = inner.end();
                match inner.replica_only.back_mut() {
                    Some(last) if last.1 == from => last.1 = to,
                    _ => inner.replica_only.push_back((from, to)),
                }
            }
            if inner.buf.len() > 2 * inner.backlog {
                trim(&mut inner);
            }
            self.end
                .store(inner.end(), std::sync::atomic::Ordering::Release);
        }
        self.wake();
    }

    /// Appends one command that only replicas receive (PING, REPLCONF GETACK).
    pub fn append_replica_only(&self, args: &[Bytes]) {
        let mut bytes = Vec::new();
        encode(&mut bytes, args);
        self.append_raw(&bytes, true);
    }

    /// Wakes every consumer as an append does (a replica feed that must notice it is over).
    pub fn wake(&self) {
        for waker in self.wakers.lock().values() {
            waker();
        }
    }

    /// The end offset without taking the lock (may lag an append in progress).
    #[inline]
    pub fn end(&self) -> u64 {
        self.end.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The offset of the next byte to be appended (`master_repl_offset`).
    pub fn offset(&self) -> u64 {
        self.inner.lock().end()
    }

    /// Starts consuming from the current end. The next command sent is preceded by a
    /// SELECT, so that the consumer's copy starts with a known database.
    pub fn subscribe(&self, pinned: bool) -> Subscription {
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let offset = inner.end();
        if pinned {
            inner.pins.insert(id, offset);
        }
        inner.selected = None;
        self.consumers.fetch_add(1, Relaxed);
        Subscription { id, offset }
    }

    /// Starts consuming from `offset` if the backlog still holds it (a replica continuing
    /// with a partial sync).
    pub fn subscribe_at(&self, offset: u64, pinned: bool) -> Result<Subscription, Lagged> {
        let mut inner = self.inner.lock();
        if offset < inner.start || offset > inner.end() {
            return Err(Lagged);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        if pinned {
            inner.pins.insert(id, offset);
        }
        self.consumers.fetch_add(1, Relaxed);
        Ok(Subscription { id, offset })
    }

    pub fn unsubscribe(&self, sub: Subscription) {
        let mut inner = self.inner.lock();
        inner.pins.remove(&sub.id);
        self.consumers.fetch_sub(1, Relaxed);
        if self.consumers.load(Relaxed) == 0 {
            // Nobody reads: free the buffer (the offset is kept).
            let end = inner.end();
            inner.start = end;
            inner.buf = Vec::new();
        }
    }

    /// Forces a SELECT before the next command (a new AOF file starts).
    pub fn reset_selected_db(&self) {
        self.inner.lock().selected = None;
    }

    /// Appends the bytes from `from` to the end to `out`; returns the new end offset.
    pub fn read(&self, from: u64, out: &mut Vec<u8>) -> Result<u64, Lagged> {
        self.read_up_to(from, usize::MAX, out)
    }

    /// Like [`Stream::read`], at most `limit` bytes; returns the offset after the last byte
    /// read.
    pub fn read_up_to(&self, from: u64, limit: usize, out: &mut Vec<u8>) -> Result<u64, Lagged> {
        let inner = self.inner.lock();
        if from < inner.start {
            return Err(Lagged);
        }
        let at = ((from - inner.start) as usize).min(inner.buf.len());
        let to = inner.buf.len().min(at.saturating_add(limit));
        out.extend_from_slice(&inner.buf[at..to]);
        Ok(inner.start + to as u64)
    }

    /// [`Stream::read`] without the replicas-only ranges (what the AOF writes).
    pub fn read_for_aof(&self, from: u64, out: &mut Vec<u8>) -> Result<u64, Lagged> {
        let inner = self.inner.lock();
        if from < inner.start {
            return Err(Lagged);
        }
        let end = inner.end();
        let mut at = from.min(end);
        for &(skip_from, skip_to) in &inner.replica_only {
            if skip_to <= at {
                continue;
            }
            if skip_from > at {
                let (a, b) = (
                    (at - inner.start) as usize,
                    (skip_from - inner.start) as usize,
                );
                out.extend_from_slice(&inner.buf[a..b]);
            }
            at = skip_to;
        }
        if at < end {
            out.extend_from_slice(&inner.buf[(at - inner.start) as usize..]);
        }
        Ok(end)
    }

    /// A pinned consumer has consumed everything before `offset`.
    pub fn consumed(&self, sub: Subscription, offset: u64) {
        let mut inner = self.inner.lock();
        if let Some(at) = inner.pins.get_mut(&sub.id) {
            *at = (*at).max(offset);
        }
        trim(&mut inner);
    }

    /// Calls `waker` after each append (cheap, non-blocking callbacks only); returns the id
    /// that [`Stream::remove_waker`] takes.
    pub fn on_append(&self, waker: Box<dyn Fn() + Send + Sync>) -> u64 {
        let id = self.next_waker.fetch_add(1, Relaxed);
        self.wakers.lock().insert(id, waker);
        id
    }

    pub fn remove_waker(&self, id: u64) {
        self.wakers.lock().remove(&id);
    }

    /// Appends one unit: `ops` wrapped in MULTI/EXEC when `wrap` and there are several.
    fn append(&self, ops: &[Op], wrap: bool) {
        if ops.is_empty() {
            return;
        }
        {
            let mut inner = self.inner.lock();
            let wrap = wrap && ops.len() > 1;
            if wrap {
                // Valkey sends MULTI and EXEC without a database: the first command's
                // SELECT, if any, comes after MULTI.
                encode(&mut inner.buf, &[Bytes::from_static(b"MULTI")]);
            }
            for op in ops {
                // The SELECT goes to every consumer, even before a replicas-only command:
                // the AOF's later commands count on it.
                select(&mut inner, op.db);
                let from = inner.end();
                encode(&mut inner.buf, &op.args);
                if op.replica_only {
                    let to = inner.end();
                    inner.replica_only.push_back((from, to));
                }
            }
            if wrap {
                encode(&mut inner.buf, &[Bytes::from_static(b"EXEC")]);
            }
            if inner.buf.len() > 2 * inner.backlog {
                trim(&mut inner);
            }
            self.end
                .store(inner.end(), std::sync::atomic::Ordering::Release);
        }
        self.wake();
    }
}

/// Drops backlog bytes no pinned consumer still needs, keeping `backlog` bytes. Dropping
/// moves the bytes kept to the front of the buffer, so it only happens once a backlog's worth
/// can go: trimming a little after every read would move the whole backlog each time (it did,
/// and cost a quarter of the CPU under a pipelined write load).
fn trim(inner: &mut Inner) {
    let end = inner.end();
    let mut keep_from = end.saturating_sub(inner.backlog as u64);
    if let Some(min_pin) = inner.pins.values().min() {
        keep_from = keep_from.min(*min_pin);
    }
    if keep_from > inner.start && keep_from - inner.start >= inner.backlog.max(1) as u64 {
        let cut = (keep_from - inner.start) as usize;
        inner.buf.drain(..cut);
        inner.start = keep_from;
        while inner.replica_only.front().is_some_and(|r| r.1 <= keep_from) {
            inner.replica_only.pop_front();
        }
    }
}

fn select(inner: &mut Inner, db: usize) {
    if inner.selected != Some(db) {
        let mut n = itoa::Buffer::new();
        let db_text = Bytes::copy_from_slice(n.format(db).as_bytes());
        encode(&mut inner.buf, &[Bytes::from_static(b"SELECT"), db_text]);
        inner.selected = Some(db);
    }
}

/// An argument vector from static names and byte strings (the rewritten forms).
#[macro_export]
macro_rules! argv {
    ($($arg:expr),* $(,)?) => {
        vec![$($crate::propagate::Arg::arg($arg)),*]
    };
}

/// What [`argv!`] accepts as one argument.
pub trait Arg {
    fn arg(self) -> Bytes;
}

impl Arg for &'static str {
    fn arg(self) -> Bytes {
        Bytes::from_static(self.as_bytes())
    }
}

impl Arg for &Bytes {
    fn arg(self) -> Bytes {
        self.clone()
    }
}

impl Arg for Bytes {
    fn arg(self) -> Bytes {
        self
    }
}

impl Arg for &[u8] {
    fn arg(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl Arg for &Vec<u8> {
    fn arg(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl Arg for i64 {
    fn arg(self) -> Bytes {
        Bytes::copy_from_slice(itoa::Buffer::new().format(self).as_bytes())
    }
}

impl Arg for usize {
    fn arg(self) -> Bytes {
        Bytes::copy_from_slice(itoa::Buffer::new().format(self).as_bytes())
    }
}

/// RESP multibulk encoding of one command.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    let mut n = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(n.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.push(b'$');
        out.extend_from_slice(n.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

// ---- the per-thread unit ----

/// One command being run inside the current unit.
struct Frame {
    db: usize,
    args: Vec<Bytes>,
    dirty_start: u64,
    rewrite: Option<Vec<Bytes>>,
    /// EXEC and scripts propagate the commands they ran, never themselves.
    suppress: bool,
    emitted: bool,
    /// Propagated even when it changed nothing (FLUSHALL on an empty dataset).
    forced: bool,
    /// A script's `server.set_repl` left the AOF out of this command's targets.
    not_to_aof: bool,
}

/// `server.set_repl` flags (Valkey's values): where a script's next writes propagate.
pub const REPL_AOF: u8 = 1;
pub const REPL_REPLICA: u8 = 2;
pub const REPL_ALL: u8 = REPL_AOF | REPL_REPLICA;

thread_local! {
    /// The running script's `set_repl` targets (reset to all by each top-level command).
    static SCRIPT_TARGETS: std::cell::Cell<u8> = const { std::cell::Cell::new(REPL_ALL) };
}

/// `server.set_repl(flags)` in the running script. The stream has one target for now, the
/// AOF: a command run without `REPL_AOF` is not propagated at all. When replication joins,
/// `REPL_REPLICA`-only commands must reach the replicas' stream alone (not done yet).
pub fn set_script_targets(flags: u8) {
    SCRIPT_TARGETS.with(|t| t.set(flags & REPL_ALL));
}

#[derive(Default)]
struct Unit {
    stream: Option<&'static Stream>,
    frames: Vec<Frame>,
    /// Background work (active expiry, eviction): each effect is sent on its own.
    loose: bool,
    scratch: Vec<Op>,
}

thread_local! {
    static UNIT: RefCell<Unit> = RefCell::new(Unit::default());
}

/// Installs the store's release hook (once per process).
pub fn install() {
    effects::set_release_hook(on_release);
}

/// Whether effects are being collected on this thread (so a handler builds its rewritten
/// argv only when somebody will read it).
#[inline]
pub fn collecting() -> bool {
    effects::armed()
}

/// Runs `f` with collection off: nothing it changes is propagated. For reloads (DEBUG
/// LOADAOF), which replay what the AOF already holds from inside a command's unit.
pub fn unarmed<R>(f: impl FnOnce() -> R) -> R {
    let was_armed = effects::armed();
    let unlink = effects::expire_unlink();
    effects::arm(false, unlink);
    let result = f();
    effects::arm(was_armed, unlink);
    result
}

/// Starts collecting for a command about to run (dispatch's `call`). Returns whether it
/// did; pass that to [`end_command`].
pub fn begin_command(
    stream: &'static Stream,
    expire_unlink: bool,
    db: usize,
    args: &[Bytes],
    suppress: bool,
) -> bool {
    let nested = effects::armed();
    if !nested && !stream.active() {
        return false;
    }
    if !nested {
        SCRIPT_TARGETS.with(|t| t.set(REPL_ALL));
    }
    let not_to_aof = SCRIPT_TARGETS.with(|t| t.get() & REPL_AOF == 0);
    UNIT.with(|u| {
        let mut u = u.borrow_mut();
        if !nested || u.stream.is_none() {
            u.stream = Some(stream);
            u.loose = false;
            effects::arm(true, expire_unlink);
        }
        u.frames.push(Frame {
            db,
            args: args.to_vec(),
            dirty_start: stats::local().dirty.get(),
            rewrite: None,
            suppress,
            emitted: false,
            forced: false,
            not_to_aof,
        });
    });
    true
}

/// Ends the command [`begin_command`] started: its own argv joins the unit if it changed the
/// dataset; the outermost command sends the unit unless a hold still keeps shards locked
/// (its end sends it).
pub fn end_command(began: bool) {
    if !began {
        return;
    }
    let outermost = UNIT.with(|u| {
        let mut u = u.borrow_mut();
        if let Some(frame) = u.frames.pop() {
            finish(frame);
        }
        u.frames.is_empty()
    });
    if outermost {
        flush();
        UNIT.with(|u| u.borrow_mut().stream = None);
        effects::arm(false, true);
    }
}

/// Starts collecting for work outside any command (the expiry cycle, eviction, serving
/// blocked clients). `loose`: every effect is its own unit.
pub fn begin_background(stream: &'static Stream, expire_unlink: bool, loose: bool) -> bool {
    if effects::armed() || !stream.active() {
        return false;
    }
    UNIT.with(|u| {
        let mut u = u.borrow_mut();
        u.stream = Some(stream);
        u.loose = loose;
    });
    effects::arm(true, expire_unlink);
    true
}

/// [`begin_background`] .. [`end_background`] as a guard.
pub struct Background(bool);

impl Background {
    pub fn begin(stream: &'static Stream, expire_unlink: bool, loose: bool) -> Background {
        Background(begin_background(stream, expire_unlink, loose))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        end_background(self.0);
    }
}

pub fn end_background(began: bool) {
    if began {
        flush();
        UNIT.with(|u| {
            let mut u = u.borrow_mut();
            u.stream = None;
            u.loose = false;
        });
        effects::arm(false, true);
    }
}

/// Background work: whether every effect is its own unit from now on (what was collected
/// so far is sent first). The expiry cycle turns it off while it reclaims hash fields,
/// whose `HDEL` and the emptied key's deletion form one unit.
pub fn set_loose(loose: bool) {
    flush_now();
    UNIT.with(|u| u.borrow_mut().loose = loose);
}

/// The command's own argv is sent as `args` instead (when it changes the dataset).
pub fn rewrite(args: Vec<Bytes>) {
    UNIT.with(|u| {
        if let Some(frame) = u.borrow_mut().frames.last_mut() {
            frame.rewrite = Some(args);
        }
    });
}

/// The command's argv is sent even if it changed nothing.
pub fn force() {
    UNIT.with(|u| {
        if let Some(frame) = u.borrow_mut().frames.last_mut() {
            frame.forced = true;
        }
    });
}

/// The command's own argv is not sent (its effects were added one by one).
pub fn suppress() {
    UNIT.with(|u| {
        if let Some(frame) = u.borrow_mut().frames.last_mut() {
            frame.suppress = true;
        }
    });
}

/// Sends what the unit holds so far as one unit, now (serving blocked clients: the serving
/// command, then each served client, are units of their own, as in Valkey).
pub fn flush_now() {
    if effects::armed() {
        flush();
    }
}

/// The store's release hook: a command's shards are about to be unlocked.
fn on_release() {
    flush();
}

/// Adds the top frame's argv if it is due, then sends everything collected as one unit.
fn flush() {
    UNIT.with(|u| {
        let Ok(mut u) = u.try_borrow_mut() else {
            return;
        };
        if let Some(frame) = u.frames.last_mut()
            && !frame.emitted
            && !frame.suppress
            && !frame.not_to_aof
            && stats::local().dirty.get() != frame.dirty_start
        {
            frame.emitted = true;
            let args = frame
                .rewrite
                .take()
                .unwrap_or_else(|| std::mem::take(&mut frame.args));
            if !args.is_empty() {
                effects::push(frame.db, args);
            }
        }
        if !effects::pending() {
            return;
        }
        let Some(stream) = u.stream else {
            let mut dropped = Vec::new();
            effects::take(&mut dropped);
            return;
        };
        let mut ops = std::mem::take(&mut u.scratch);
        effects::take(&mut ops);
        if u.loose {
            for op in ops.chunks(1) {
                stream.append(op, false);
            }
        } else {
            stream.append(&ops, true);
        }
        ops.clear();
        u.scratch = ops;
    });
}

/// Marks the end of an inner command (inside EXEC or a script): its argv joins the unit.
fn finish(frame: Frame) {
    if frame.emitted
        || frame.suppress
        || frame.not_to_aof
        || (!frame.forced && stats::local().dirty.get() == frame.dirty_start)
    {
        return;
    }
    let args = frame.rewrite.unwrap_or(frame.args);
    if !args.is_empty() {
        effects::push(frame.db, args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn units_are_wrapped_and_selects_inserted() {
        let stream = Stream::default();
        assert!(!stream.active());
        let sub = stream.subscribe(true);
        stream.append(
            &[Op {
                db: 0,
                args: args(&["set", "a", "1"]),
                replica_only: false,
            }],
            true,
        );
        stream.append(
            &[
                Op {
                    db: 2,
                    args: args(&["UNLINK", "k"]),
                    replica_only: false,
                },
                Op {
                    db: 2,
                    args: args(&["incr", "k"]),
                    replica_only: false,
                },
            ],
            true,
        );
        let mut out = Vec::new();
        let end = stream.read(sub.offset, &mut out).unwrap();
        assert_eq!(end, out.len() as u64);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n\
             *1\r\n$5\r\nMULTI\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n\
             *2\r\n$6\r\nUNLINK\r\n$1\r\nk\r\n*2\r\n$4\r\nincr\r\n$1\r\nk\r\n*1\r\n$4\r\nEXEC\r\n"
        );
    }

    #[test]
    fn pinned_consumers_keep_their_bytes_and_others_lag() {
        let stream = Stream::default();
        stream.inner.lock().backlog = 16;
        let pinned = stream.subscribe(true);
        let loose = stream.subscribe(false);
        for i in 0..20 {
            stream.append(
                &[Op {
                    db: 0,
                    args: args(&["set", "k", &i.to_string()]),
                    replica_only: false,
                }],
                true,
            );
        }
        let mut out = Vec::new();
        let end = stream.read(pinned.offset, &mut out).unwrap();
        assert_eq!(out.len() as u64, end - pinned.offset);
        stream.consumed(pinned, end);
        assert_eq!(stream.read(loose.offset, &mut Vec::new()), Err(Lagged));
        assert!(stream.read(end - 16, &mut Vec::new()).is_ok());
        stream.unsubscribe(pinned);
        stream.unsubscribe(loose);
        assert!(!stream.active());
        assert_eq!(stream.offset(), end);
    }

    #[test]
    fn the_aof_reads_around_replica_only_ranges() {
        let stream = Stream::default();
        let sub = stream.subscribe(true);
        stream.append(
            &[Op {
                db: 0,
                args: args(&["set", "a", "1"]),
                replica_only: false,
            }],
            true,
        );
        stream.append_replica_only(&args(&["PING"]));
        stream.append_replica_only(&args(&["PING"]));
        stream.append(
            &[Op {
                db: 0,
                args: args(&["del", "a"]),
                replica_only: false,
            }],
            true,
        );
        stream.append_replica_only(&args(&["PING"]));
        let mut all = Vec::new();
        let end = stream.read(sub.offset, &mut all).unwrap();
        let mut aof = Vec::new();
        assert_eq!(stream.read_for_aof(sub.offset, &mut aof), Ok(end));
        let text = String::from_utf8(aof).unwrap();
        assert!(!text.contains("PING"), "{text}");
        assert!(text.ends_with("*2\r\n$3\r\ndel\r\n$1\r\na\r\n"), "{text}");
        assert_eq!(all.len() - text.len(), 3 * 14);
        // From the middle of the stream too.
        let mut tail = Vec::new();
        stream.read_for_aof(end - 14, &mut tail).unwrap();
        assert!(tail.is_empty());
    }

    #[test]
    fn reset_moves_everything_to_the_new_offset() {
        let stream = Stream::default();
        let sub = stream.subscribe(true);
        stream.append_raw(b"*1\r\n$4\r\nPING\r\n", false);
        stream.reset_to(1000);
        assert_eq!(stream.end(), 1000);
        assert_eq!(stream.read(999, &mut Vec::new()), Err(Lagged));
        stream.append_raw(b"abc", false);
        let mut out = Vec::new();
        assert_eq!(stream.read_up_to(1000, 2, &mut out), Ok(1002));
        assert_eq!(out, b"ab");
        stream.unsubscribe(sub);
    }
}
