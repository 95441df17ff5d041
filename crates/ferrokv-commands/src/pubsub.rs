//! Pub/Sub: who is subscribed to what, and getting published messages to subscribers that
//! live on other worker threads.
//!
//! # Design
//!
//! - **Registry.** [`PubSub`] maps each channel, pattern and shard channel to the clients
//!   subscribed to it (their [`ClientShared`]), behind read/write locks: PUBLISH only reads.
//!   Each client also keeps its own sets ([`Subscriptions`], owned by its connection) for
//!   UNSUBSCRIBE without arguments, RESET and disconnect, which remove every entry.
//! - **Delivery.** PUBLISH encodes the message frame once per protocol (RESP2 array, RESP3
//!   push) into a `Bytes`, and appends a reference-counted clone of it to each subscriber's
//!   [`Outbox`], then wakes the subscriber's connection; no per-subscriber copy. The
//!   connection moves its outbox into its reply buffer between commands and when woken.
//! - **Slow subscribers.** Each push checks the subscriber's pending bytes against
//!   `client-output-buffer-limit pubsub <hard> <soft> <seconds>`: over the hard limit, or
//!   over the soft limit for longer than the soft seconds, the client is killed and its
//!   outbox dropped, so memory stays bounded however slowly it reads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::glob::glob_match;
use parking_lot::{Mutex, RwLock};

use crate::client::{Client, ClientShared, flags};
use crate::server::Server;

/// Which of the three subscription spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }
    fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// One client's subscriptions (owned by its connection).
#[derive(Default)]
pub struct Subscriptions {
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    pub shard: HashSet<Bytes>,
}

impl Subscriptions {
    fn set(&mut self, kind: Kind) -> &mut HashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Whether the client is in subscriber mode (RESP2 restricts its commands).
    pub fn any(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }

    /// The count a (un)subscribe reply shows: channels + patterns, or shard channels.
    fn count_for(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }
}

/// `client-output-buffer-limit pubsub` in bytes and seconds (0 = no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

impl Limits {
    /// Reads the `pubsub` class out of the directive's normalized value
    /// (`normal 0 0 0 slave ... pubsub 33554432 8388608 60`).
    pub fn from_directive(value: &str) -> Limits {
        Limits::for_class(value, "pubsub")
    }

    /// The limits of one client class (`normal`, `replica`, `pubsub`).
    pub fn for_class(value: &str, class: &str) -> Limits {
        let words: Vec<&str> = value.split_whitespace().collect();
        words
            .chunks(4)
            .find(|c| c.len() == 4 && c[0].eq_ignore_ascii_case(class))
            .map(|c| Limits {
                hard: c[1].parse().unwrap_or(0),
                soft: c[2].parse().unwrap_or(0),
                soft_seconds: c[3].parse().unwrap_or(0),
            })
            .unwrap_or_default()
    }
}

/// What [`Outbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
enum Pushed {
    /// Queued into an empty outbox: the connection must be woken.
    First,
    /// Queued behind messages the connection has not taken yet: the wake-up that the first
    /// of them made is still due, and the connection takes them all when it comes.
    Behind,
    /// Not queued: the client is over its output buffer limits.
    OverLimit,
}

/// Messages waiting for a subscriber's connection.
#[derive(Default)]
pub struct Outbox {
    queue: Mutex<VecDeque<Bytes>>,
    /// Bytes in `queue`, readable without the lock.
    bytes: AtomicUsize,
    /// When the pending bytes first went over the soft limit (ms), 0 when under it.
    soft_since_ms: AtomicI64,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.bytes.load(Relaxed) == 0
    }

    pub fn pending_bytes(&self) -> usize {
        self.bytes.load(Relaxed)
    }

    /// Moves every waiting message into `reply`.
    pub fn drain_into(&self, reply: &mut Reply) {
        if self.is_empty() {
            return;
        }
        let mut queue = self.queue.lock();
        for message in queue.drain(..) {
            reply.raw(&message);
        }
        self.bytes.store(0, Relaxed);
    }

    /// Appends `message`, unless that would break `limits` given `in_flight` bytes already on
    /// their way to the socket.
    fn push(&self, message: Bytes, limits: Limits, in_flight: usize, now_ms: i64) -> Pushed {
        let mut queue = self.queue.lock();
        let queued = self.bytes.load(Relaxed);
        let total = (queued + in_flight + message.len()) as u64;
        if limits.hard > 0 && total > limits.hard {
            return Pushed::OverLimit;
        }
        if limits.soft > 0 && total > limits.soft {
            let since = self.soft_since_ms.load(Relaxed);
            if since == 0 {
                self.soft_since_ms.store(now_ms, Relaxed);
            } else if (now_ms - since) as u64 > limits.soft_seconds * 1000 {
                return Pushed::OverLimit;
            }
        } else {
            self.soft_since_ms.store(0, Relaxed);
        }
        self.bytes.fetch_add(message.len(), Relaxed);
        queue.push_back(message);
        // `bytes` only returns to 0 under the lock, as the connection takes everything.
        if queued == 0 {
            Pushed::First
        } else {
            Pushed::Behind
        }
    }

    fn clear(&self) {
        self.queue.lock().clear();
        self.bytes.store(0, Relaxed);
    }
}

type Subscribers = HashMap<Bytes, Vec<Arc<ClientShared>>>;

/// Every subscription on the server.
#[derive(Default)]
pub struct PubSub {
    channels: RwLock<Subscribers>,
    patterns: RwLock<Subscribers>,
    shard: RwLock<Subscribers>,
    /// Clients with at least one subscription (INFO pubsub_clients).
    clients: AtomicUsize,
    /// Subscribers cut off by their output buffer limit (INFO).
    pub limit_disconnections: AtomicU64,
}

impl PubSub {
    fn map(&self, kind: Kind) -> &RwLock<Subscribers> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    /// (channels, patterns, shard channels) with subscribers, for INFO.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.channels.read().len(),
            self.patterns.read().len(),
            self.shard.read().len(),
        )
    }

    pub fn clients(&self) -> usize {
        self.clients.load(Relaxed)
    }

    /// Names with subscribers matching `pattern` (all when `None`): PUBSUB CHANNELS.
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.map(kind)
            .read()
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob_match(p, name, false)))
            .cloned()
            .collect()
    }

    /// Every (subscriber, channel or pattern, is it a pattern): what ACL re-checks when a
    /// user's channel permissions change.
    pub fn subscriptions(&self) -> Vec<(Arc<ClientShared>, Bytes, bool)> {
        let mut all = Vec::new();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for (name, clients) in self.map(kind).read().iter() {
                for client in clients {
                    all.push((client.clone(), name.clone(), kind == Kind::Pattern));
                }
            }
        }
        all
    }

    /// Subscribers of one name (PUBSUB NUMSUB).
    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> usize {
        self.map(kind).read().get(name).map_or(0, Vec::len)
    }
}

/// One message, encoded once per protocol on first need.
struct Frame<'a> {
    parts: [&'a [u8]; 4],
    len: usize,
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl<'a> Frame<'a> {
    fn new(parts: &[&'a [u8]]) -> Frame<'a> {
        let mut fixed: [&[u8]; 4] = [b""; 4];
        fixed[..parts.len()].copy_from_slice(parts);
        Frame {
            parts: fixed,
            len: parts.len(),
            resp2: None,
            resp3: None,
        }
    }

    fn for_protocol(&mut self, resp3: bool) -> Bytes {
        let slot = if resp3 {
            &mut self.resp3
        } else {
            &mut self.resp2
        };
        slot.get_or_insert_with(|| {
            let mut reply = Reply::new(resp3);
            reply.push_len(self.len);
            for part in &self.parts[..self.len] {
                reply.bulk(part);
            }
            Bytes::copy_from_slice(reply.bytes())
        })
        .clone()
    }
}

/// Delivers `frame` to `client`, or cuts the client off when its buffer is over the limit.
fn deliver(
    server: &Server,
    client: &Arc<ClientShared>,
    frame: &mut Frame<'_>,
    limits: Limits,
    now_ms: i64,
) {
    if client.is_killed() {
        return;
    }
    let resp3 = client.protocol.load(Relaxed) == 3;
    let message = frame.for_protocol(resp3);
    push_to(server, client, message, limits, now_ms);
}

thread_local! {
    /// Connections this thread has woken with messages (PUBLISH, MONITOR), ever.
    static WOKEN_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Inside [`deferring_wakes`]: wake-ups wait in `DEFERRED` until it returns.
    static DEFERRING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static DEFERRED: std::cell::RefCell<Vec<Arc<ClientShared>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` (one poll of a connection's task: the requests it read, run to the end) with
/// the wake-ups of the connections it sends messages to held back until `f` returns, as
/// Valkey writes to subscribers once per event-loop turn. A subscriber served by another
/// worker is then woken once per pipeline of PUBLISHes, not once for each message that
/// finds its outbox just emptied by the subscriber running on the other core. `f` must not
/// wait: a poll never does, so every held wake-up is made before this thread runs anything
/// else.
pub fn deferring_wakes<R>(f: impl FnOnce() -> R) -> R {
    /// Makes the held wake-ups even when `f` unwinds.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            DEFERRING.set(false);
            // A wake-up only schedules the woken task: nothing here comes back to `DEFERRED`.
            DEFERRED.with_borrow_mut(|held| held.drain(..).for_each(|client| client.wake()));
        }
    }
    if DEFERRING.get() {
        return f();
    }
    DEFERRING.set(true);
    let _release = Release;
    f()
}

fn wake(client: &Arc<ClientShared>) {
    if DEFERRING.get() {
        DEFERRED.with_borrow_mut(|d| d.push(client.clone()));
    } else {
        client.wake();
    }
}

/// How many connections this thread has woken with messages so far: a connection compares
/// two readings to learn whether its commands woke others.
pub fn woken_on_this_thread() -> u64 {
    WOKEN_HERE.get()
}

/// Appends an encoded frame to `client`'s outbox and wakes it, or cuts the client off when
/// its buffer is over `limits` (shared by PUBLISH and MONITOR).
pub(crate) fn push_to(
    server: &Server,
    client: &Arc<ClientShared>,
    message: Bytes,
    limits: Limits,
    now_ms: i64,
) {
    if client.is_killed() {
        return;
    }
    let in_flight = client.output_buffer.load(Relaxed);
    // One wake-up per batch, not per message: a PUBLISH pipeline to 100 subscribers
    // spent 8% of the server's CPU in redundant wake-ups (perf, session 13).
    match client.outbox.push(message, limits, in_flight, now_ms) {
        Pushed::First => {
            wake(client);
            WOKEN_HERE.set(WOKEN_HERE.get().wrapping_add(1));
        }
        Pushed::Behind => {}
        Pushed::OverLimit => {
            log::warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                client.id,
                client.addr
            );
            server.pubsub.limit_disconnections.fetch_add(1, Relaxed);
            client.outbox.clear();
            client.kill();
        }
    }
}

/// PUBLISH / SPUBLISH: delivers `message` to every subscriber of `channel` (and, for
/// PUBLISH, of every matching pattern); returns how many deliveries were made.
pub fn publish(
    server: &Server,
    limits: Limits,
    shard: bool,
    channel: &[u8],
    message: &[u8],
    now_ms: i64,
) -> usize {
    let pubsub = &server.pubsub;
    let mut receivers = 0;
    let (kind, word): (Kind, &[u8]) = if shard {
        (Kind::Shard, b"smessage")
    } else {
        (Kind::Channel, b"message")
    };
    {
        let map = pubsub.map(kind).read();
        if let Some(subscribers) = map.get(channel) {
            let mut frame = Frame::new(&[word, channel, message]);
            for client in subscribers {
                deliver(server, client, &mut frame, limits, now_ms);
                receivers += 1;
            }
        }
    }
    if !shard {
        let patterns = pubsub.patterns.read();
        for (pattern, subscribers) in patterns.iter() {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let mut frame = Frame::new(&[b"pmessage", pattern, channel, message]);
            for client in subscribers {
                deliver(server, client, &mut frame, limits, now_ms);
                receivers += 1;
            }
        }
    }
    receivers
}

fn was_subscribed(client: &Client) -> bool {
    client.subscriptions.any()
}

/// Updates the counters and flags other threads read after a change of subscriptions.
fn after_change(server: &Server, client: &mut Client, was: bool) {
    let now = client.subscriptions.any();
    let shared = &client.shared;
    shared
        .sub_count
        .store(client.subscriptions.channels.len(), Relaxed);
    shared
        .psub_count
        .store(client.subscriptions.patterns.len(), Relaxed);
    shared
        .ssub_count
        .store(client.subscriptions.shard.len(), Relaxed);
    shared.set_flag(flags::PUBSUB, now);
    match (was, now) {
        (false, true) => {
            server.pubsub.clients.fetch_add(1, Relaxed);
        }
        (true, false) => {
            server.pubsub.clients.fetch_sub(1, Relaxed);
        }
        _ => {}
    }
}

/// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: one confirmation per name, in order.
pub fn subscribe(
    server: &Server,
    client: &mut Client,
    reply: &mut Reply,
    kind: Kind,
    names: &[Bytes],
) {
    let was = was_subscribed(client);
    for name in names {
        if client.subscriptions.set(kind).insert(name.clone()) {
            server
                .pubsub
                .map(kind)
                .write()
                .entry(name.clone())
                .or_default()
                .push(client.shared.clone());
        }
        reply.push_len(3);
        reply.bulk(kind.subscribe_word().as_bytes());
        reply.bulk(name);
        reply.int(client.subscriptions.count_for(kind) as i64);
    }
    after_change(server, client, was);
}

fn remove_subscriber(server: &Server, kind: Kind, name: &Bytes, id: u64) {
    let mut map = server.pubsub.map(kind).write();
    if let Some(subscribers) = map.get_mut(name) {
        subscribers.retain(|c| c.id != id);
        if subscribers.is_empty() {
            map.remove(name);
        }
    }
}

/// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE: from `names`, or from everything of `kind`
/// when empty; one confirmation per name (a null name when there was nothing to leave).
pub fn unsubscribe(
    server: &Server,
    client: &mut Client,
    reply: &mut Reply,
    kind: Kind,
    names: &[Bytes],
) {
    let was = was_subscribed(client);
    let targets: Vec<Bytes> = if names.is_empty() {
        client.subscriptions.set(kind).iter().cloned().collect()
    } else {
        names.to_vec()
    };
    if targets.is_empty() {
        reply.push_len(3);
        reply.bulk(kind.unsubscribe_word().as_bytes());
        reply.null();
        reply.int(client.subscriptions.count_for(kind) as i64);
    }
    for name in &targets {
        if client.subscriptions.set(kind).remove(name) {
            remove_subscriber(server, kind, name, client.id);
        }
        reply.push_len(3);
        reply.bulk(kind.unsubscribe_word().as_bytes());
        reply.bulk(name);
        reply.int(client.subscriptions.count_for(kind) as i64);
    }
    after_change(server, client, was);
}

/// Leaves every subscription without replying (RESET, disconnect).
pub fn unsubscribe_all(server: &Server, client: &mut Client) {
    let was = was_subscribed(client);
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let names: Vec<Bytes> = client.subscriptions.set(kind).drain().collect();
        for name in &names {
            remove_subscriber(server, kind, name, client.id);
        }
    }
    after_change(server, client, was);
    client.shared.outbox.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_the_pubsub_class() {
        let l = Limits::from_directive(
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        );
        assert_eq!(
            l,
            Limits {
                hard: 33554432,
                soft: 8388608,
                soft_seconds: 60
            }
        );
        assert_eq!(Limits::from_directive("normal 0 0 0"), Limits::default());
    }

    #[test]
    fn outbox_enforces_hard_and_soft_limits() {
        let outbox = Outbox::default();
        let hard = Limits {
            hard: 10,
            soft: 0,
            soft_seconds: 0,
        };
        let push = |outbox: &Outbox, m: &'static [u8], limits, now| {
            outbox.push(Bytes::from_static(m), limits, 0, now)
        };
        assert_eq!(push(&outbox, b"12345", hard, 0), Pushed::First);
        assert_eq!(push(&outbox, b"12345", hard, 0), Pushed::Behind);
        assert_eq!(push(&outbox, b"1", hard, 0), Pushed::OverLimit);
        let soft = Limits {
            hard: 0,
            soft: 4,
            soft_seconds: 1,
        };
        let outbox = Outbox::default();
        assert_eq!(push(&outbox, b"12345", soft, 1000), Pushed::First);
        assert_eq!(push(&outbox, b"1", soft, 1500), Pushed::Behind);
        assert_eq!(push(&outbox, b"1", soft, 2000), Pushed::Behind);
        assert_eq!(push(&outbox, b"1", soft, 2001), Pushed::OverLimit);
        let mut reply = Reply::new(false);
        outbox.drain_into(&mut reply);
        assert_eq!(reply.bytes(), b"1234511");
        assert!(outbox.is_empty());
        // Taken: the next message wakes the connection again.
        assert_eq!(push(&outbox, b"1", soft, 2002), Pushed::First);
    }

    #[test]
    fn a_frame_is_encoded_once_per_protocol_and_shared() {
        let mut frame = Frame::new(&[b"message", b"ch", b"hi"]);
        let a = frame.for_protocol(false);
        let b = frame.for_protocol(false);
        assert_eq!(&a[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(&frame.for_protocol(true)[..1], b">");
    }
}
