//! Client-side caching (CLIENT TRACKING): which clients cached which keys, and telling them
//! when those keys change.
//!
//! # Model (Valkey's)
//!
//! - **Default mode.** The keys a tracking client reads (read-only commands' keys, from the
//!   command table's key specs) go into a server-wide table, key name → client ids; the
//!   database is not part of the key, as in Valkey. When a key in the table is modified (by
//!   any client, expiry, eviction), each client still tracking gets one `invalidate`
//!   message and the key leaves the table. OPTIN/OPTOUT make the remembering depend on
//!   CLIENT CACHING for the next command; NOLOOP drops invalidations of the client's own
//!   writes. Ids of clients that stopped tracking stay in the table until the key changes
//!   or is evicted from the table (`tracking-table-max-keys`), as in Valkey.
//! - **BCAST mode.** No table: every modified key that matches one of the client's prefixes
//!   (empty prefix: every key) is sent, batched per prefix at the end of the command.
//! - **Flush.** FLUSHDB/FLUSHALL send a null invalidation to every tracking client and empty
//!   the table.
//! - **Delivery.** RESP3 clients get a `>2 invalidate [keys]` push on their own connection;
//!   with REDIRECT, the message goes to the other client instead (a push in RESP3, a
//!   `message` on `__redis__:invalidate` for a RESP2 subscriber). Messages for another
//!   connection are appended to its pub/sub outbox (it may live on another worker thread).
//!   Messages for the connection whose command is running go into its own reply buffer:
//!   those caused by its own command after the reply (Valkey's pending invalidations), those
//!   of keys evicted (from the keyspace or the table) before the command ran ahead of it.
//!
//! # Where modified keys come from
//!
//! The store's per-thread touch list, which WATCH already uses (`transaction::process_touches`
//! calls [`invalidate_touched`]): recording is on while any client tracks or the table holds a
//! key, so the write path costs one relaxed load when nobody tracks.
//!
//! # Locks
//!
//! The table's mutex may be taken while holding shard locks (invalidations run while the
//! writer holds its keys); nothing here takes a shard lock, so the order is always shard →
//! tracking → client registry / outbox. Messages are built under the tracking lock and
//! delivered after it is released.
//!
//! A read registers its keys *before* the command too: a write on another thread between
//! the read and a registration made only afterwards would otherwise never be invalidated.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::{clock, events};
use parking_lot::Mutex;

use crate::client::{ClientShared, flags};
use crate::context::{CmdError, CmdResult};
use crate::pubsub::{self, Limits};
use crate::server::Server;
use crate::spec::{CommandSpec, command_key_positions, flag};

/// A client's tracking mode bits.
pub mod mode {
    pub const ON: u32 = 1 << 0;
    pub const BCAST: u32 = 1 << 1;
    pub const OPTIN: u32 = 1 << 2;
    pub const OPTOUT: u32 = 1 << 3;
    pub const NOLOOP: u32 = 1 << 4;
    /// CLIENT CACHING YES (OPTIN) / NO (OPTOUT) for the next command.
    pub const CACHING: u32 = 1 << 5;
    /// The REDIRECT client is gone.
    pub const BROKEN_REDIRECT: u32 = 1 << 6;
}

/// A client's tracking settings, readable from every thread (invalidations are sent by the
/// thread that changed the key).
#[derive(Default)]
pub struct ClientTracking {
    mode: AtomicU32,
    redirect: AtomicU64,
}

impl ClientTracking {
    pub fn mode(&self) -> u32 {
        self.mode.load(Relaxed)
    }

    pub fn is_on(&self) -> bool {
        self.mode() & mode::ON != 0
    }

    /// The REDIRECT id (0 for none), or -1 when tracking is off (CLIENT GETREDIR, `redir=`).
    pub fn redirect_reported(&self) -> i64 {
        if self.is_on() {
            self.redirect.load(Relaxed) as i64
        } else {
            -1
        }
    }
}

/// The server-wide tracking state.
#[derive(Default)]
pub struct Tracking {
    /// Clients with tracking on (INFO `tracking_clients`).
    clients_on: AtomicUsize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Key name → ids of the clients that may cache it.
    keys: HashMap<Bytes, Vec<u64>>,
    /// Sum of the id lists' lengths (INFO `tracking_total_items`).
    items: usize,
    /// Clients with tracking on, by id.
    clients: HashMap<u64, Arc<ClientShared>>,
    /// BCAST prefix → clients registered for it, in Valkey's (byte) order.
    prefixes: BTreeMap<Bytes, Vec<Arc<ClientShared>>>,
    /// Each BCAST client's prefixes.
    client_prefixes: HashMap<u64, BTreeSet<Bytes>>,
    /// Checks in a row that could not bring the table under its limit (more effort each).
    over_limit_runs: u32,
}

impl Table {
    /// Touches are recorded while someone tracks or a key is remembered.
    fn sync_recording(&self) {
        events::set_tracking(!self.clients.is_empty() || !self.keys.is_empty());
    }

    /// Takes `key` out of the table, returning the clients to tell.
    fn take_key(&mut self, key: &[u8]) -> Vec<u64> {
        match self.keys.remove(key) {
            Some(ids) => {
                self.items -= ids.len();
                ids
            }
            None => Vec::new(),
        }
    }
}

impl Tracking {
    /// (tracking_clients, tracking_total_keys, tracking_total_items, tracking_total_prefixes).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let table = self.table.lock();
        (
            self.clients_on.load(Relaxed),
            table.keys.len(),
            table.items,
            table.prefixes.len(),
        )
    }

    pub fn clients(&self) -> usize {
        self.clients_on.load(Relaxed)
    }

    /// A client's BCAST prefixes, in order (CLIENT TRACKINGINFO).
    pub fn prefixes_of(&self, id: u64) -> Vec<Bytes> {
        self.table
            .lock()
            .client_prefixes
            .get(&id)
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }
}

// ---- per-thread state of the running command ----

/// What goes to the running command's own connection, and when.
#[derive(Default)]
struct Own {
    /// Ahead of the command's reply (keys evicted before it ran).
    before: Vec<Bytes>,
    /// After the reply (its own changes; broadcasts).
    after: Vec<Bytes>,
}

thread_local! {
    /// The id of the client whose command runs on this thread (0 outside commands).
    static CURRENT_ID: Cell<u64> = const { Cell::new(0) };
    /// That client, when it tracks (whose keys a read-only command remembers; inside a
    /// script, the caller's).
    static CURRENT_TRACKER: RefCell<Option<Arc<ClientShared>>> = const { RefCell::new(None) };
    /// Whether a command handler is running (its own changes are told after its reply).
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    static OWN: RefCell<Own> = const {
        RefCell::new(Own {
            before: Vec::new(),
            after: Vec::new(),
        })
    };
    /// Keys the current command registered that its client did not track before: an expiry
    /// the command itself causes on them must not be reported (Valkey registers after the
    /// command, when the key is already gone).
    static FRESH: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
    /// Keys changed on this thread since the last broadcast, with the changing client's id.
    static BCAST_KEYS: RefCell<Vec<(Bytes, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Called by dispatch when a client's command starts (top level only); returns what
/// [`end_request`] restores.
pub fn begin_request(client: &Arc<ClientShared>) -> u64 {
    let tracker = client.tracking.is_on().then(|| client.clone());
    CURRENT_TRACKER.with(|t| *t.borrow_mut() = tracker);
    CURRENT_ID.with(|c| c.replace(client.id))
}

/// Called by dispatch after the request; what is left for the client's own connection is
/// appended to `reply` (pushes are sent even under CLIENT REPLY OFF, as in Valkey).
pub fn end_request(server: &Server, reply: &mut Reply, saved: u64) {
    if events::tracking() {
        flush_broadcasts(server);
    }
    OWN.with(|own| {
        let own = &mut *own.borrow_mut();
        if own.before.is_empty() && own.after.is_empty() {
            return;
        }
        for frame in own.before.drain(..).chain(own.after.drain(..)) {
            reply.raw(&frame);
        }
    });
    FRESH.with(|f| {
        let mut fresh = f.borrow_mut();
        if !fresh.is_empty() {
            fresh.clear();
        }
    });
    CURRENT_TRACKER.with(|t| *t.borrow_mut() = None);
    CURRENT_ID.with(|c| c.set(saved));
}

/// Marks a handler as running (nested calls save and restore).
pub fn enter_handler() -> bool {
    IN_HANDLER.with(|h| h.replace(true))
}

pub fn leave_handler(saved: bool) {
    IN_HANDLER.with(|h| h.set(saved));
}

/// Puts the messages due ahead of a command's reply in front of it (the reply starts at
/// `start`).
pub fn place_before_reply(reply: &mut Reply, start: usize) {
    let frames = OWN.with(|own| {
        let own = &mut *own.borrow_mut();
        // Nearly always empty: nothing to take (or free) then.
        (!own.before.is_empty()).then(|| std::mem::take(&mut own.before))
    });
    let Some(frames) = frames else {
        return;
    };
    let tail = reply.bytes()[start..].to_vec();
    reply.truncate(start);
    for frame in &frames {
        reply.raw(frame);
    }
    reply.raw(&tail);
}

// ---- remembering keys ----

/// Whether a command's keys are remembered for the current tracking client, if any.
fn remembering(spec: &CommandSpec) -> Option<Arc<ClientShared>> {
    // Read-only scripts are not remembered themselves; the commands they run are.
    if spec.flags & flag::READONLY == 0
        || spec.flags & flag::PUBSUB != 0
        || matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
    {
        return None;
    }
    let tracker = CURRENT_TRACKER.with(|t| t.borrow().clone())?;
    let mode = tracker.tracking.mode();
    let caching = mode & mode::CACHING != 0;
    if mode & mode::ON == 0
        || mode & mode::BCAST != 0
        || (mode & mode::OPTIN != 0 && !caching)
        || (mode & mode::OPTOUT != 0 && caching)
    {
        return None;
    }
    Some(tracker)
}

/// Remembers the keys of a read-only command for the current tracking client. Called before
/// the command (`before`: keys new to the client are noted, see `FRESH`) and after it.
pub fn remember(server: &Server, spec: &CommandSpec, args: &[Bytes], before: bool) {
    let Some(tracker) = remembering(spec) else {
        return;
    };
    let positions = command_key_positions(spec, args);
    if positions.is_empty() {
        return;
    }
    let mut fresh = Vec::new();
    {
        let mut table = server.tracking.table.lock();
        for key in positions.into_iter().filter_map(|i| args.get(i)) {
            let ids = table.keys.entry(key.clone()).or_default();
            if !ids.contains(&tracker.id) {
                ids.push(tracker.id);
                table.items += 1;
                if before {
                    fresh.push(key.clone());
                }
            }
        }
        table.sync_recording();
    }
    if !fresh.is_empty() {
        FRESH.with(|f| f.borrow_mut().extend(fresh));
    }
}

/// Clears CLIENT CACHING's one-command effect after a command (not after CLIENT
/// subcommands, nor inside MULTI: it covers the whole transaction).
pub fn command_done(client: &ClientShared, spec_is_client_sub: bool, in_multi: bool) {
    let tracking = &client.tracking;
    if tracking.mode() & mode::CACHING != 0 && !spec_is_client_sub && !in_multi {
        tracking.mode.fetch_and(!mode::CACHING, Relaxed);
    }
}

// ---- invalidation ----

/// What one message says.
enum Payload {
    Keys(Vec<Bytes>),
    /// Everything (a flush).
    All,
}

/// When a message for the running command's own connection goes out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    BeforeReply,
    AfterReply,
}

/// Invalidates the keys a command (or expiry, eviction) changed: called with the filtered
/// touches of `transaction::process_touches`.
pub fn invalidate_touched(server: &Server, touches: &[events::Touch]) {
    if touches.is_empty() {
        return;
    }
    let current = CURRENT_ID.with(Cell::get);
    let in_handler = IN_HANDLER.with(Cell::get);
    let mut sends: Vec<(Arc<ClientShared>, Bytes, When)> = Vec::new();
    {
        let mut table = server.tracking.table.lock();
        let broadcasting = !table.prefixes.is_empty();
        for touch in touches {
            if broadcasting {
                let key = Bytes::copy_from_slice(&touch.key);
                BCAST_KEYS.with(|b| b.borrow_mut().push((key, current)));
            }
            let ids = table.take_key(&touch.key);
            for id in ids {
                let Some(target) = table.clients.get(&id) else {
                    continue;
                };
                let mode = target.tracking.mode();
                if mode & mode::BCAST != 0 || (mode & mode::NOLOOP != 0 && id == current) {
                    continue;
                }
                let own = id == current;
                if own
                    && touch.expired
                    && FRESH.with(|f| f.borrow().iter().any(|k| **k == *touch.key))
                {
                    continue;
                }
                // Valkey holds back what a client's own command changed (expiries it
                // caused included) until after its reply; what was changed before the
                // command ran (eviction) goes at once.
                let when = if own && in_handler {
                    When::AfterReply
                } else {
                    When::BeforeReply
                };
                sends.push((target.clone(), Bytes::copy_from_slice(&touch.key), when));
            }
        }
        table.sync_recording();
    }
    for (target, key, when) in sends {
        send(server, &target, &Payload::Keys(vec![key]), when);
    }
}

/// FLUSHDB / FLUSHALL: every tracking client is told to drop everything, and the table is
/// emptied.
pub fn invalidate_all(server: &Server) {
    if server.tracking.clients_on.load(Relaxed) == 0 && !events::tracking() {
        return;
    }
    let targets: Vec<Arc<ClientShared>> = {
        let mut table = server.tracking.table.lock();
        table.keys = HashMap::new();
        table.items = 0;
        table.sync_recording();
        let mut targets: Vec<_> = table.clients.values().cloned().collect();
        targets.sort_by_key(|c| c.id);
        targets
    };
    for target in targets {
        send(server, &target, &Payload::All, When::AfterReply);
    }
}

/// Sends the keys changed on this thread to the BCAST clients whose prefixes match them:
/// one message per prefix and client, keys sorted and without repeats (Valkey batches them
/// per event-loop turn; here, per command).
pub fn flush_broadcasts(server: &Server) {
    let changed = BCAST_KEYS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if changed.is_empty() {
        return;
    }
    let mut sends: Vec<(Arc<ClientShared>, Vec<Bytes>)> = Vec::new();
    {
        let table = server.tracking.table.lock();
        for (prefix, clients) in &table.prefixes {
            // Key → the client that changed it last.
            let mut matching: BTreeMap<&Bytes, u64> = BTreeMap::new();
            for (key, writer) in &changed {
                if key.starts_with(prefix) {
                    matching.insert(key, *writer);
                }
            }
            if matching.is_empty() {
                continue;
            }
            for client in clients {
                let noloop = client.tracking.mode() & mode::NOLOOP != 0;
                let keys: Vec<Bytes> = matching
                    .iter()
                    .filter(|&(_, &writer)| !(noloop && writer == client.id))
                    .map(|(&key, _)| key.clone())
                    .collect();
                if !keys.is_empty() {
                    sends.push((client.clone(), keys));
                }
            }
        }
    }
    for (target, keys) in sends {
        send(server, &target, &Payload::Keys(keys), When::AfterReply);
    }
}

/// Delivers one message for tracking client `tracker`: to it, or to its REDIRECT client.
fn send(server: &Server, tracker: &Arc<ClientShared>, payload: &Payload, when: When) {
    let redirect = tracker.tracking.redirect.load(Relaxed);
    let (target, redirected) = if redirect == 0 {
        (tracker.clone(), false)
    } else {
        match server.clients.get(redirect) {
            Some(target) => (target, true),
            None => {
                tracker
                    .tracking
                    .mode
                    .fetch_or(mode::BROKEN_REDIRECT, Relaxed);
                tracker.set_flag(flags::TRACKING_BROKEN_REDIRECT, true);
                if tracker.protocol.load(Relaxed) == 3 {
                    let mut frame = Reply::new(true);
                    frame.push_len(2);
                    frame.bulk(b"tracking-redir-broken");
                    frame.int(redirect as i64);
                    deliver(server, tracker, frame, when);
                }
                return;
            }
        }
    };
    let resp3 = target.protocol.load(Relaxed) == 3;
    let mut frame = Reply::new(resp3);
    if resp3 {
        frame.push_len(2);
        frame.bulk(b"invalidate");
    } else if redirected && target.flags() & flags::PUBSUB != 0 {
        frame.push_len(3);
        frame.bulk(b"message");
        frame.bulk(b"__redis__:invalidate");
    } else {
        // RESP2 without a subscribed redirect target: nowhere to send it.
        return;
    }
    match payload {
        Payload::Keys(keys) => {
            frame.array_len(keys.len());
            for key in keys {
                frame.bulk(key);
            }
        }
        Payload::All => frame.null(),
    }
    deliver(server, &target, frame, when);
}

/// Hands a finished frame to `target`: into this thread's own-reply queue when `target` is
/// the client whose command runs here, else into its outbox.
fn deliver(server: &Server, target: &Arc<ClientShared>, frame: Reply, when: When) {
    let bytes = Bytes::copy_from_slice(frame.bytes());
    if target.id == CURRENT_ID.with(Cell::get) {
        OWN.with(|own| {
            let mut own = own.borrow_mut();
            match when {
                When::BeforeReply => own.before.push(bytes),
                When::AfterReply => own.after.push(bytes),
            }
        });
    } else {
        pubsub::push_to(server, target, bytes, Limits::default(), clock::now_ms());
    }
}

// ---- the table's size limit ----

/// Before a command, when anyone tracks: over `tracking-table-max-keys` keys (0: no limit),
/// keys are dropped from the table, their clients invalidated, with Valkey's growing effort
/// (100 keys, then 200 ... while the table stays over the limit).
pub fn enforce_limit(server: &Server, max_keys: i64) {
    if max_keys <= 0 || server.tracking.clients_on.load(Relaxed) == 0 {
        return;
    }
    let max_keys = max_keys as usize;
    let mut sends: Vec<(Arc<ClientShared>, Bytes)> = Vec::new();
    {
        let mut table = server.tracking.table.lock();
        if table.keys.len() <= max_keys {
            table.over_limit_runs = 0;
            return;
        }
        let mut effort = 100 * (table.over_limit_runs as usize + 1);
        while effort > 0 && table.keys.len() > max_keys {
            effort -= 1;
            let Some(key) = random_key(&table.keys) else {
                break;
            };
            for id in table.take_key(&key) {
                if let Some(target) = table.clients.get(&id) {
                    let mode = target.tracking.mode();
                    if mode & mode::BCAST == 0 {
                        sends.push((target.clone(), key.clone()));
                    }
                }
            }
        }
        if table.keys.len() <= max_keys {
            table.over_limit_runs = 0;
        } else {
            table.over_limit_runs += 1;
        }
        table.sync_recording();
    }
    for (target, key) in sends {
        send(
            server,
            &target,
            &Payload::Keys(vec![key]),
            When::BeforeReply,
        );
    }
}

/// A key of the table picked at random (Valkey walks its radix tree randomly).
fn random_key(keys: &HashMap<Bytes, Vec<u64>>) -> Option<Bytes> {
    if keys.is_empty() {
        return None;
    }
    let skip = rand::random_range(0..keys.len().min(64));
    keys.keys().nth(skip).cloned()
}

// ---- CLIENT TRACKING ----

/// Parsed CLIENT TRACKING options.
#[derive(Default)]
pub struct Options {
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Bytes>,
}

/// `CLIENT TRACKING ON ...` for `client`, after Valkey's checks in its order.
pub fn enable(server: &Server, client: &Arc<ClientShared>, options: Options) -> CmdResult {
    if !options.bcast && !options.prefixes.is_empty() {
        return Err(CmdError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let current = client.tracking.mode();
    let on = current & mode::ON != 0;
    if on && (current & mode::BCAST != 0) != options.bcast {
        return Err(CmdError::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, \
             and then re-enabling it with a different mode.",
        ));
    }
    if options.bcast && (options.optin || options.optout) {
        return Err(CmdError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if options.optin && options.optout {
        return Err(CmdError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if (options.optin && current & mode::OPTOUT != 0)
        || (options.optout && current & mode::OPTIN != 0)
    {
        return Err(CmdError::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, \
             and then re-enabling it with a different mode.",
        ));
    }
    let mut table = server.tracking.table.lock();
    if options.bcast {
        check_prefix_collisions(table.client_prefixes.get(&client.id), &options.prefixes)?;
    }
    if !on {
        server.tracking.clients_on.fetch_add(1, Relaxed);
    }
    table.clients.insert(client.id, client.clone());
    let mut new_mode = mode::ON;
    if options.bcast {
        new_mode |= mode::BCAST;
        let prefixes = if options.prefixes.is_empty() {
            vec![Bytes::new()]
        } else {
            options.prefixes
        };
        for prefix in prefixes {
            let mine = table.client_prefixes.entry(client.id).or_default();
            if mine.insert(prefix.clone()) {
                table
                    .prefixes
                    .entry(prefix)
                    .or_default()
                    .push(client.clone());
            }
        }
    }
    if options.optin {
        new_mode |= mode::OPTIN;
    }
    if options.optout {
        new_mode |= mode::OPTOUT;
    }
    if options.noloop {
        new_mode |= mode::NOLOOP;
    }
    // CLIENT CACHING's pending effect survives a re-enable, as in Valkey.
    new_mode |= current & mode::CACHING;
    client.tracking.redirect.store(options.redirect, Relaxed);
    client.tracking.mode.store(new_mode, Relaxed);
    table.sync_recording();
    drop(table);
    client.set_flag(flags::TRACKING, true);
    client.set_flag(flags::TRACKING_BCAST, options.bcast);
    client.set_flag(flags::TRACKING_BROKEN_REDIRECT, false);
    Ok(())
}

/// Valkey's rule: a client's prefixes must not be prefixes of one another, whether new
/// against existing or new against new.
fn check_prefix_collisions(existing: Option<&BTreeSet<Bytes>>, new: &[Bytes]) -> CmdResult {
    let overlaps = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, prefix) in new.iter().enumerate() {
        if let Some(old) = existing.and_then(|set| set.iter().find(|old| overlaps(old, prefix))) {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(old)
            )));
        }
        if let Some(other) = new[i + 1..].iter().find(|other| overlaps(prefix, other)) {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(other)
            )));
        }
    }
    Ok(())
}

/// `CLIENT TRACKING OFF`, RESET and disconnect. The keys it read stay in the table until
/// they change (Valkey cleans them up lazily too).
pub fn disable(server: &Server, client: &ClientShared) {
    if !client.tracking.is_on() {
        return;
    }
    let mut table = server.tracking.table.lock();
    table.clients.remove(&client.id);
    if let Some(prefixes) = table.client_prefixes.remove(&client.id) {
        for prefix in prefixes {
            if let Some(clients) = table.prefixes.get_mut(&prefix) {
                clients.retain(|c| c.id != client.id);
                if clients.is_empty() {
                    table.prefixes.remove(&prefix);
                }
            }
        }
    }
    client.tracking.mode.store(0, Relaxed);
    server.tracking.clients_on.fetch_sub(1, Relaxed);
    table.sync_recording();
    drop(table);
    client.set_flag(flags::TRACKING, false);
    client.set_flag(flags::TRACKING_BCAST, false);
    client.set_flag(flags::TRACKING_BROKEN_REDIRECT, false);
}

/// `CLIENT CACHING YES|NO`.
pub fn caching(client: &ClientShared, arg: &[u8]) -> CmdResult {
    let current = client.tracking.mode();
    if current & mode::ON == 0 {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    }
    if arg.eq_ignore_ascii_case(b"yes") {
        if current & mode::OPTIN == 0 {
            return Err(CmdError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if arg.eq_ignore_ascii_case(b"no") {
        if current & mode::OPTOUT == 0 {
            return Err(CmdError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(crate::context::errors::SYNTAX);
    }
    client.tracking.mode.fetch_or(mode::CACHING, Relaxed);
    Ok(())
}

/// The `flags` of CLIENT TRACKINGINFO, in Valkey's order.
pub fn info_flags(client: &ClientShared) -> Vec<&'static str> {
    let m = client.tracking.mode();
    let mut out = vec![if m & mode::ON != 0 { "on" } else { "off" }];
    if m & mode::BCAST != 0 {
        out.push("bcast");
    }
    if m & mode::OPTIN != 0 {
        out.push("optin");
        if m & mode::CACHING != 0 {
            out.push("caching-yes");
        }
    }
    if m & mode::OPTOUT != 0 {
        out.push("optout");
        if m & mode::CACHING != 0 {
            out.push("caching-no");
        }
    }
    if m & mode::NOLOOP != 0 {
        out.push("noloop");
    }
    if m & mode::BROKEN_REDIRECT != 0 {
        out.push("broken_redirect");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_collide_when_one_starts_the_other() {
        let existing: BTreeSet<Bytes> = [Bytes::from_static(b"b")].into();
        assert!(check_prefix_collisions(Some(&existing), &[Bytes::from_static(b"bc")]).is_err());
        assert!(check_prefix_collisions(Some(&existing), &[Bytes::from_static(b"c")]).is_ok());
        let err =
            check_prefix_collisions(None, &[Bytes::from_static(b"x"), Bytes::from_static(b"")])
                .unwrap_err();
        assert_eq!(
            err.0,
            "ERR Prefix 'x' overlaps with another provided prefix ''. Prefixes for a single client must not overlap."
        );
    }
}
