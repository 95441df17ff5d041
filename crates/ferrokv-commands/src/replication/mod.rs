//! Replication state shared by the command layer and the replication tasks: this server's
//! role, its replication ids, the replicas attached to it (primary side) and the link to its
//! primary (replica side).
//!
//! The I/O lives in the `ferrokv-replication` crate: feeding a replica connection after its
//! PSYNC, and the replica's link task. The command layer only changes and reads this state
//! (REPLICAOF, REPLCONF, ROLE, INFO replication, WAIT, min-replicas-to-write) and wakes the
//! link task through [`Replication::set_link_waker`].
//!
//! Offsets are the propagation stream's (`propagate.rs`): `master_repl_offset` is the
//! stream's end, the count of bytes ever appended under the current history.

pub mod failover;
pub mod wait;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64};

use parking_lot::Mutex;

use crate::propagate::{Stream, Subscription};

/// A random 40-hex-digit replication id.
pub fn random_id() -> String {
    (0..40)
        .map(|_| char::from(b"0123456789abcdef"[rand::random_range(0..16)]))
        .collect()
}

/// The two histories a server can continue (Valkey's `replid`/`replid2`): a promoted replica
/// keeps its old primary's id as `replid2`, valid up to `second_offset`, so the other
/// replicas of that primary can continue from it with a partial sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplIds {
    pub replid: String,
    pub replid2: String,
    /// The first offset *not* in the `replid2` history (`second_repl_offset`); -1 for none.
    pub second_offset: i64,
}

impl ReplIds {
    fn new() -> ReplIds {
        ReplIds {
            replid: random_id(),
            replid2: "0".repeat(40),
            second_offset: -1,
        }
    }
}

/// The replication position a snapshot recorded (its `repl-*` aux fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPosition {
    pub replid: String,
    pub offset: u64,
    pub stream_db: u64,
}

impl RecordedPosition {
    /// From a loaded snapshot's aux fields; `None` unless all three are there and valid.
    pub fn from_aux(aux: impl Fn(&str) -> Option<String>) -> Option<RecordedPosition> {
        let replid = aux("repl-id").filter(|id| {
            id.len() == 40
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && !id.bytes().all(|b| b == b'0')
        })?;
        let offset = aux("repl-offset")?.parse().ok()?;
        let stream_db = aux("repl-stream-db")?.parse().ok()?;
        Some(RecordedPosition {
            replid,
            offset,
            stream_db,
        })
    }
}

/// Where a replica's link to its primary stands (INFO's `master_link_status` is `up` only in
/// `Connected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Must (re)connect.
    Connect,
    Connecting,
    /// PING, AUTH, REPLCONF, PSYNC.
    Handshake,
    /// Receiving the snapshot.
    Transfer,
    Connected,
}

impl LinkState {
    /// ROLE's state names.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The replica side: which primary, and how the link is doing.
#[derive(Debug, Clone)]
pub struct PrimaryLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    /// Bumped by every REPLICAOF: a link task working for an older one gives up.
    pub generation: u64,
    /// Unix ms of the last byte received from the primary.
    pub last_io_ms: i64,
    /// Unix ms the link went down (for `master_link_down_since_seconds`); 0 while up.
    pub down_since_ms: i64,
    /// Snapshot transfer progress: (bytes expected, -1 for EOF-marked; bytes read so far).
    pub transfer_size: i64,
    pub transfer_read: i64,
    pub sync_started_ms: i64,
}

/// What a replica connection announced before its PSYNC (REPLCONF), kept on its client.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub listening_port: u16,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
}

/// A replica connection's state as INFO shows it.
pub mod peer_state {
    pub const WAIT_BGSAVE: u8 = 0;
    pub const SEND_BULK: u8 = 1;
    pub const ONLINE: u8 = 2;
}

/// One replica attached to this server.
#[derive(Debug)]
pub struct ReplicaPeer {
    pub client_id: u64,
    pub ip: String,
    pub listening_port: u16,
    pub state: AtomicU8,
    /// The offset its last REPLCONF ACK reported.
    pub ack_offset: AtomicU64,
    /// The offset its last ACK reported fsynced to its AOF (`FACK`, for WAITAOF).
    pub aof_ack_offset: AtomicU64,
    /// Unix ms of its last ACK (INFO `lag`, min-replicas-max-lag).
    pub ack_ms: AtomicI64,
}

impl ReplicaPeer {
    pub fn state_name(&self) -> &'static str {
        match self.state.load(Relaxed) {
            peer_state::WAIT_BGSAVE => "wait_bgsave",
            peer_state::SEND_BULK => "send_bulk",
            _ => "online",
        }
    }

    pub fn online(&self) -> bool {
        self.state.load(Relaxed) == peer_state::ONLINE
    }
}

type Waker = Box<dyn Fn() + Send + Sync>;

pub struct Replication {
    ids: Mutex<ReplIds>,
    /// `Some` while this server is a replica.
    primary: Mutex<Option<PrimaryLink>>,
    replicas: Mutex<BTreeMap<u64, Arc<ReplicaPeer>>>,
    /// Keeps the stream collecting (and its backlog) once a replica has attached, as
    /// Valkey's backlog outlives its replicas for `repl-backlog-ttl` seconds.
    backlog: Mutex<Option<Subscription>>,
    /// Unix ms the last replica left (for `repl-backlog-ttl`); 0 while some are attached.
    no_replicas_since_ms: AtomicI64,
    generation: AtomicU64,
    link_waker: Mutex<Option<Waker>>,
    /// Replicas that acknowledged within `min-replicas-max-lag` (recomputed by the cron).
    pub good_replicas: AtomicU64,
    /// Set by REPLICAOF: replica connections must close (they resynchronize with the new
    /// history); each feeder checks it against the generation it started under.
    pub replicas_generation: AtomicU64,
    /// WAIT's waiting clients.
    pub waits: wait::Waits,
    /// On a replica, a command from the primary is applied and its bytes appended to the
    /// stream under this lock (shared); a full sync for a sub-replica starts its snapshot
    /// under it (exclusive), so the snapshot never holds a command whose bytes come after
    /// the sub-replica's starting offset, or the other way round.
    pub apply: parking_lot::RwLock<()>,
    /// A FAILOVER under way (`failover.rs`).
    pub failover: Mutex<failover::Failover>,
    /// INFO stats: full syncs served, partial syncs accepted and refused.
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// On a replica: bytes received from the primary and not applied yet (INFO
    /// `slave_read_repl_offset` counts them; a pause holds them back).
    pub unapplied_bytes: AtomicU64,
    /// On a replica: the database the primary's stream has selected, as last applied (set
    /// under `apply`). A sub-replica's full sync starts in the middle of that stream, after
    /// its SELECT: the snapshot tells it the database (`repl-stream-db`), as Valkey's does.
    pub link_db: AtomicU64,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            ids: Mutex::new(ReplIds::new()),
            primary: Mutex::new(None),
            replicas: Mutex::new(BTreeMap::new()),
            backlog: Mutex::new(None),
            no_replicas_since_ms: AtomicI64::new(0),
            generation: AtomicU64::new(0),
            link_waker: Mutex::new(None),
            good_replicas: AtomicU64::new(0),
            replicas_generation: AtomicU64::new(0),
            waits: Default::default(),
            apply: parking_lot::RwLock::new(()),
            failover: Mutex::new(failover::Failover::default()),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            unapplied_bytes: AtomicU64::new(0),
            link_db: AtomicU64::new(0),
        }
    }
}

impl Replication {
    pub fn ids(&self) -> ReplIds {
        self.ids.lock().clone()
    }

    /// A replica adopts its primary's history (after `+FULLRESYNC`, or the new id a
    /// `+CONTINUE` names).
    pub fn set_ids(&self, ids: ReplIds) {
        *self.ids.lock() = ids;
    }

    /// Starts a new history where the current one ends (a replica promoted): the old id
    /// stays valid up to `offset` for replicas that followed it.
    pub fn shift_ids(&self, offset: u64) {
        let mut ids = self.ids.lock();
        ids.replid2 = std::mem::replace(&mut ids.replid, random_id());
        ids.second_offset = offset as i64 + 1;
    }

    /// Whether a replica asking to continue `replid` from `offset` (Valkey's counting: the
    /// first byte it lacks, from 1) can do so from a history ending at `end`.
    pub fn can_continue(&self, replid: &str, offset: i64, end: u64) -> bool {
        let ids = self.ids.lock();
        if replid == ids.replid {
            return true;
        }
        replid == ids.replid2 && offset <= ids.second_offset && offset as u64 <= end + 1
    }

    pub fn is_replica(&self) -> bool {
        self.primary.lock().is_some()
    }

    pub fn primary(&self) -> Option<PrimaryLink> {
        self.primary.lock().clone()
    }

    /// Changes the link's state if `generation` is still the current one.
    pub fn update_link(&self, generation: u64, change: impl FnOnce(&mut PrimaryLink)) -> bool {
        let mut primary = self.primary.lock();
        match primary.as_mut() {
            Some(link) if link.generation == generation => {
                change(link);
                true
            }
            _ => false,
        }
    }

    /// REPLICAOF host port: follow a new primary. Returns false when it already follows it.
    pub fn follow(&self, stream: &Stream, host: &str, port: u16) -> bool {
        let mut primary = self.primary.lock();
        if let Some(link) = primary.as_ref()
            && link.host.eq_ignore_ascii_case(host)
            && link.port == port
        {
            return false;
        }
        let generation = self.generation.fetch_add(1, Relaxed) + 1;
        *primary = Some(PrimaryLink {
            host: host.to_string(),
            port,
            state: LinkState::Connect,
            generation,
            last_io_ms: 0,
            down_since_ms: ferrokv_store::clock::now_ms(),
            transfer_size: -1,
            transfer_read: 0,
            sync_started_ms: 0,
        });
        drop(primary);
        // From now on the stream holds the new primary's bytes only, and expired keys wait
        // for the primary's DEL.
        stream.set_proxy(true);
        ferrokv_store::replica_view::set_replica(true);
        self.replicas_generation.fetch_add(1, Relaxed);
        self.wake_link();
        true
    }

    /// Ends the feeds of this server's own replicas (at once, even with nothing to send):
    /// its history was just replaced (a full sync from its primary) or renamed (a new id);
    /// they reconnect and sync again.
    pub fn disconnect_replicas(&self, stream: &Stream) {
        self.replicas_generation.fetch_add(1, Relaxed);
        stream.wake();
    }

    /// REPLICAOF NO ONE: become a primary, continuing the history so far under a new id.
    /// Returns false when already a primary.
    pub fn promote(&self, stream: &Stream) -> bool {
        let mut primary = self.primary.lock();
        if primary.take().is_none() {
            return false;
        }
        self.generation.fetch_add(1, Relaxed);
        drop(primary);
        stream.set_proxy(false);
        ferrokv_store::replica_view::set_replica(false);
        self.shift_ids(stream.end());
        // Our replicas reconnect and learn the new id (continuing, thanks to replid2).
        self.replicas_generation.fetch_add(1, Relaxed);
        self.wake_link();
        true
    }

    /// The link task registers how to wake it when the target changes.
    pub fn set_link_waker(&self, waker: Waker) {
        *self.link_waker.lock() = Some(waker);
    }

    fn wake_link(&self) {
        if let Some(waker) = self.link_waker.lock().as_ref() {
            waker();
        }
    }

    // ---- primary side ----

    /// A replica connection passed PSYNC: it is listed from now on, and the stream keeps
    /// collecting for it.
    pub fn attach(&self, stream: &Stream, peer: Arc<ReplicaPeer>, backlog_bytes: usize) {
        self.ensure_backlog(stream, backlog_bytes);
        self.no_replicas_since_ms.store(0, Relaxed);
        self.replicas.lock().insert(peer.client_id, peer);
    }

    pub fn detach(&self, client_id: u64) {
        let mut replicas = self.replicas.lock();
        if replicas.remove(&client_id).is_some() && replicas.is_empty() {
            self.no_replicas_since_ms
                .store(ferrokv_store::clock::now_ms(), Relaxed);
        }
    }

    /// After the start-up load: takes up the replication position the snapshot recorded
    /// (`repl-id`, `repl-offset`, `repl-stream-db`), so that a restart costs no full sync.
    /// `configured_replica`: `replicaof` is set, so this server offers its primary's history
    /// back to it (PSYNC id offset+1). Otherwise it is a primary whose replicas may continue
    /// the recorded history: that history becomes the second one (`replid2`, valid up to the
    /// recorded offset) under a new id, with a backlog starting there, as Valkey does; the
    /// keys and hash fields the load dropped as expired (`expired`) are deleted in that
    /// backlog first, so the continuing replicas drop them too. Without their names (too
    /// many to list) the replicas must sync in full.
    pub fn restore_position(
        &self,
        stream: &'static Stream,
        recorded: &RecordedPosition,
        configured_replica: bool,
        expired: Option<ferrokv_persist::DroppedAsExpired<'_>>,
        config: &ferrokv_config::Config,
    ) {
        if configured_replica {
            self.set_ids(ReplIds {
                replid: recorded.replid.clone(),
                replid2: "0".repeat(40),
                second_offset: -1,
            });
            stream.reset_to(recorded.offset);
            self.link_db.store(recorded.stream_db, Relaxed);
            log::info!(
                "Replication position {}:{} taken from the RDB file: a partial sync with the primary is possible",
                recorded.replid,
                recorded.offset
            );
            return;
        }
        let Some(ferrokv_persist::DroppedAsExpired {
            keys: expired_keys,
            fields: expired_fields,
        }) = expired
        else {
            log::info!(
                "Too many keys or hash fields expired while loading to list their deletions: replicas of the previous run will need a full sync"
            );
            return;
        };
        stream.reset_to(recorded.offset);
        self.ensure_backlog(stream, config.repl_backlog_size.max(1) as usize);
        self.no_replicas_since_ms
            .store(ferrokv_store::clock::now_ms(), Relaxed);
        self.set_ids(ReplIds {
            replid: random_id(),
            replid2: recorded.replid.clone(),
            second_offset: recorded.offset as i64 + 1,
        });
        if !expired_keys.is_empty() || !expired_fields.is_empty() {
            // As Valkey deletes a key or hash field it finds expired while loading: one
            // command each (the HDEL of a hash's last field deletes it on the replica).
            let command: &'static [u8] = if config.lazyfree_lazy_expire {
                b"UNLINK"
            } else {
                b"DEL"
            };
            let _unit = crate::propagate::Background::begin(stream, false, true);
            for (db, key) in expired_keys {
                ferrokv_store::effects::push(
                    *db,
                    vec![
                        bytes::Bytes::from_static(command),
                        bytes::Bytes::copy_from_slice(key),
                    ],
                );
            }
            for expired in expired_fields {
                let key = bytes::Bytes::copy_from_slice(&expired.key);
                for field in &expired.fields {
                    ferrokv_store::effects::push(
                        expired.db,
                        vec![
                            bytes::Bytes::from_static(b"HDEL"),
                            key.clone(),
                            field.clone(),
                        ],
                    );
                }
            }
        }
        log::info!(
            "Replication history {}:{} taken from the RDB file: its replicas may continue with a partial sync",
            recorded.replid,
            recorded.offset
        );
    }

    pub fn replicas(&self) -> Vec<Arc<ReplicaPeer>> {
        self.replicas.lock().values().cloned().collect()
    }

    /// Once a second: recounts the replicas that count for `min-replicas-to-write`, and
    /// frees the backlog `ttl_secs` after the last replica left (0: never).
    pub fn cron(&self, stream: &Stream, max_lag_secs: i64, ttl_secs: i64) {
        let now = ferrokv_store::clock::now_ms();
        let good = self
            .replicas()
            .iter()
            .filter(|r| r.online() && now - r.ack_ms.load(Relaxed) <= max_lag_secs * 1000)
            .count();
        self.good_replicas.store(good as u64, Relaxed);
        let since = self.no_replicas_since_ms.load(Relaxed);
        if ttl_secs > 0
            && since > 0
            && now - since > ttl_secs * 1000
            && !self.is_replica()
            && let Some(sub) = self.backlog.lock().take()
        {
            stream.unsubscribe(sub);
            self.no_replicas_since_ms.store(0, Relaxed);
        }
    }

    /// On a replica, excludes the link's apply-and-append step (see `apply`) while a snapshot
    /// that subscribes to the stream starts. Not taken inside a transaction's hold: the link
    /// takes the apply lock before shard locks, so waiting here while holding shards could
    /// deadlock (that rare case keeps a window of one command). Nor on the link's own thread
    /// (a replicated FLUSHALL saves with `save` rules), which holds the apply lock already.
    pub fn quiesce_link(&self, stream: &Stream) -> Option<parking_lot::RwLockWriteGuard<'_, ()>> {
        (stream.is_proxy()
            && !ferrokv_store::Keyspace::holding()
            && !ferrokv_store::replica_view::applies_primary_stream())
        .then(|| self.apply.write())
    }

    /// Whether a backlog exists (INFO `repl_backlog_active`).
    pub fn backlog_active(&self) -> bool {
        self.backlog.lock().is_some()
    }

    /// Keeps the stream collecting and its backlog (a primary once a replica attached; a
    /// replica too, for the replicas it will have after a promotion).
    pub fn ensure_backlog(&self, stream: &Stream, backlog_bytes: usize) {
        let mut backlog = self.backlog.lock();
        if backlog.is_none() {
            *backlog = Some(stream.subscribe(false));
        }
        stream.set_backlog(backlog_bytes);
    }
}

pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
pub const READONLY: &str = "READONLY You can't write against a read only replica.";
pub const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// Dispatch's replication checks, in Valkey's order: too few good replicas for a write on a
/// primary, a write on a read-only replica, any non-`stale` command on a replica whose link
/// is down when it must not serve stale data. The primary's own stream is exempt. `flags`
/// are the command's checked flags (a script's declared ones for EVAL and FCALL).
pub fn check_command(
    server: &crate::Server,
    client: &crate::Client,
    flags: u64,
    is_write: bool,
) -> Result<(), crate::context::CmdError> {
    use crate::context::CmdError;
    if client.must_obey {
        return Ok(());
    }
    let config = &client.config;
    if is_write && too_few_replicas(server, config) {
        return Err(CmdError::new(NOREPLICAS));
    }
    if !server.stream.is_proxy() {
        // A primary: nothing else applies (one relaxed load on the hot path).
        return Ok(());
    }
    if is_write && config.replica_read_only {
        return Err(CmdError::new(READONLY));
    }
    if flags & crate::spec::flag::STALE == 0 && serving_stale(server, config) {
        return Err(CmdError::new(MASTERDOWN));
    }
    Ok(())
}

/// A primary with fewer good replicas than `min-replicas-to-write` asks for: writes are
/// refused (NOREPLICAS).
pub fn too_few_replicas(server: &crate::Server, config: &ferrokv_config::Config) -> bool {
    config.min_replicas_to_write > 0
        && config.min_replicas_max_lag > 0
        && server.replication.good_replicas.load(Relaxed) < config.min_replicas_to_write as u64
        && !server.stream.is_proxy()
}

/// A read-only replica: writes are refused (READONLY).
pub fn read_only_replica(server: &crate::Server, config: &ferrokv_config::Config) -> bool {
    server.stream.is_proxy() && config.replica_read_only
}

/// A replica whose link to its primary is down and that must not serve stale data: only
/// `stale` commands run (others get MASTERDOWN).
pub fn serving_stale(server: &crate::Server, config: &ferrokv_config::Config) -> bool {
    server.stream.is_proxy()
        && !config.replica_serve_stale_data
        && server
            .replication
            .primary()
            .is_some_and(|link| link.state != LinkState::Connected)
}

/// The server cron's replication work: moving a FAILOVER on and re-counting WAITAOF's
/// waiters (every tick); once a second,
/// counting good replicas, freeing an unused backlog, and pinging the replicas every
/// `repl-ping-replica-period` seconds (the ping travels in the stream, so it also moves the
/// offset, as Valkey's does; none while writes are paused, so a FAILOVER's replica can
/// catch up).
pub fn cron(server: &crate::Server) {
    failover::tick(server);
    if !server.replication.waits.is_empty() {
        // WAITAOF's local fsync, made by a background thread or another client.
        server.replication.waits.on_progress(server);
    }
    static LAST_RUN_MS: AtomicI64 = AtomicI64::new(0);
    static LAST_PING_MS: AtomicI64 = AtomicI64::new(0);
    let now = ferrokv_store::clock::now_ms();
    if now - LAST_RUN_MS.load(Relaxed) < 1000 {
        return;
    }
    LAST_RUN_MS.store(now, Relaxed);
    // Pings go out a whole period apart from the start (Valkey's cron counts periods from
    // its start), not at once: a restarted primary's offset stays where its snapshot left it
    // until a write, so its replicas can continue exactly there.
    if LAST_PING_MS.load(Relaxed) == 0 {
        LAST_PING_MS.store(now, Relaxed);
    }
    let config = server.config.load();
    let replication = &server.replication;
    if replication.backlog_active() {
        // CONFIG SET repl-backlog-size applies within a second.
        server
            .stream
            .set_backlog(config.repl_backlog_size.max(1) as usize);
    }
    replication.cron(
        server.stream,
        config.min_replicas_max_lag,
        config.repl_backlog_ttl,
    );
    if !server.stream.is_proxy()
        && !server.pause.is_paused(now)
        && !replication.replicas.lock().is_empty()
        && now - LAST_PING_MS.load(Relaxed) >= config.repl_ping_replica_period * 1000
    {
        LAST_PING_MS.store(now, Relaxed);
        server
            .stream
            .append_replica_only(&[bytes::Bytes::from_static(b"PING")]);
    }
}
