//! A client's session state, and the part of it other threads may read (CLIENT LIST/KILL).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed,
    Ordering::SeqCst,
};

use bytes::Bytes;
use ferrokv_config::Config;
use ferrokv_store::access::AccessPolicy;
use parking_lot::Mutex;

/// CLIENT REPLY mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command.
    SkipNext,
    /// Skip the reply of the command now running (was `SkipNext` when it started).
    SkipThis,
}

/// Session state owned by the connection's task; only its thread touches it.
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub authenticated: bool,
    /// Authenticated at some point (a RESET since does not make it a stranger again: the
    /// tight output limit of clients that never authenticated no longer applies).
    pub ever_authenticated: bool,
    /// 2 or 3 (HELLO).
    pub protocol: u8,
    pub no_touch: bool,
    pub no_evict: bool,
    /// CLIENT IMPORT-SOURCE ON (also the `I` flag others read).
    pub import_source: bool,
    pub reply_mode: ReplyMode,
    /// The running command's reply is a push (pub/sub confirmations): CLIENT REPLY OFF/SKIP
    /// does not silence it, as in Valkey.
    pub reply_is_push: bool,
    /// Close the connection once the pending replies are written (QUIT, protocol errors).
    pub close_after_reply: bool,
    pub shared: Arc<ClientShared>,
    /// The configuration this client's commands run under, refreshed when CONFIG SET
    /// publishes a new snapshot.
    pub config: Arc<Config>,
    pub config_epoch: u64,
    /// LRU or LFU stamping, derived from `config` whenever it is refreshed.
    pub access_policy: AccessPolicy,
    /// Set by a blocking command that parked the client (see `blocking`); the connection
    /// takes it when dispatch reports `Outcome::Blocked`.
    pub blocked: Option<crate::blocking::Parked>,
    /// The call that parked the client, accounted (statistics, command logs) when its wait
    /// ends, as Valkey does: a blocked command shows up once, after it was unblocked.
    pub blocked_call: Option<BlockedCall>,
    /// Blocking commands must not wait: set while running inside MULTI/EXEC or a script,
    /// where they answer at once as if they had timed out.
    pub deny_blocking: bool,
    /// The AOF loader (later: the replication master): what it sends is obeyed, as Valkey's
    /// `mustObeyClient` (e.g. the exact trims with LIMIT that approximate trims propagate as).
    pub must_obey: bool,
    /// Replays commands already in the AOF (DEBUG LOADAOF, start-up): they are not
    /// propagated again, to the AOF or to replicas.
    pub replaying: bool,
    /// Commands queued since MULTI; `None` outside a transaction.
    pub multi: Option<crate::transaction::MultiState>,
    /// The queue of the last transaction, emptied, for the next MULTI to fill without
    /// growing a new one.
    pub(crate) spare_multi_queue: crate::transaction::Queue,
    /// Keys this client WATCHes, as (database, key).
    pub watched: Vec<(usize, Bytes)>,
    /// Channels, patterns and shard channels this client is subscribed to.
    pub subscriptions: crate::pubsub::Subscriptions,
    /// The ACL user this client runs as (see `acl::refresh`), and the registry epoch it was
    /// read at.
    pub user: Arc<crate::acl::User>,
    pub acl_epoch: u64,
    /// In MONITOR mode (listed in `server.monitors`).
    pub monitor: bool,
    /// What a replica announced with REPLCONF before its PSYNC.
    pub repl_handshake: Option<Box<crate::replication::Handshake>>,
    /// Set by PSYNC/SYNC: the connection stops serving commands and becomes a replica feed.
    pub handoff: Option<Handoff>,
    /// A script's calls' bookkeeping while its run may still start again (only a script's
    /// client ever holds any).
    pub held_back: crate::scripting::held_back::HeldBack,
    /// The size as sent of the request being run, and the reply buffer's length when it
    /// began: what COMMANDLOG's large-request and large-reply logs measure. Inside EXEC the
    /// queued commands see EXEC's (their reply is EXEC's so far), as in Valkey; a script's
    /// calls see 0 and their own reply.
    pub request_bytes: usize,
    pub reply_mark: usize,
    /// Whose address and name the command logs show for this client's commands: a
    /// script's caller, as in Valkey.
    pub log_as: Option<Arc<ClientShared>>,
}

/// What the connection turns into after the current command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handoff {
    /// A replica asked to synchronize: `PSYNC replid offset` (`SYNC`: `None`).
    Replica { psync: Option<(String, i64)> },
}

impl Client {
    pub fn new(shared: Arc<ClientShared>, config: Arc<Config>, config_epoch: u64) -> Client {
        // The connection attaches the real default user (`acl::attach_new_client`) before
        // the first command.
        let authenticated = false;
        Client {
            id: shared.id,
            db: 0,
            authenticated,
            ever_authenticated: false,
            protocol: 2,
            no_touch: false,
            no_evict: false,
            import_source: false,
            reply_mode: ReplyMode::On,
            reply_is_push: false,
            close_after_reply: false,
            shared,
            access_policy: access_policy_of(&config),
            config,
            config_epoch,
            blocked: None,
            blocked_call: None,
            deny_blocking: false,
            must_obey: false,
            replaying: false,
            multi: None,
            spare_multi_queue: Vec::new(),
            watched: Vec::new(),
            subscriptions: Default::default(),
            user: crate::acl::placeholder_user(),
            acl_epoch: 0,
            monitor: false,
            repl_handshake: None,
            handoff: None,
            held_back: Default::default(),
            request_bytes: 0,
            reply_mark: 0,
            log_as: None,
        }
    }

    /// Switches to a newer configuration snapshot.
    pub fn refresh_config(&mut self, config: Arc<Config>, epoch: u64) {
        self.access_policy = access_policy_of(&config);
        self.config = config;
        self.config_epoch = epoch;
    }

    /// Counts a keyspace hit or miss of this client's command.
    #[inline]
    pub fn count_lookup(&self, hit: bool) {
        if self.held_back.active() {
            self.held_back.count_lookup(hit);
        } else if hit {
            crate::stats::local().keyspace_hits.add(1);
        } else {
            crate::stats::local().keyspace_misses.add(1);
        }
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.shared.db.store(db, Relaxed);
    }

    /// Switches the reply protocol (HELLO, RESET); the caller switches its `Reply` too.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.protocol = protocol;
        self.shared.protocol.store(protocol, Relaxed);
    }

    pub fn set_no_touch(&mut self, on: bool) {
        self.no_touch = on;
        self.shared.set_flag(flags::NO_TOUCH, on);
    }

    pub fn set_no_evict(&mut self, on: bool) {
        self.no_evict = on;
        self.shared.no_evict.store(on, Relaxed);
        self.shared.set_flag(flags::NO_EVICT, on);
    }

    pub fn set_import_source(&mut self, on: bool) {
        self.import_source = on;
        self.shared.set_flag(flags::IMPORT_SOURCE, on);
    }

    /// What RESET puts back: database 0, RESP2, no name, replies on, no eviction/touch
    /// exemptions, not an import source. The library name and version and the capabilities stay, as in Valkey.
    /// The RESET command also puts the client back on the default user
    /// (`acl::attach_default`).
    pub fn reset(&mut self) {
        self.select(0);
        self.set_protocol(2);
        self.set_no_touch(false);
        self.set_no_evict(false);
        self.shared.set_flag(flags::READONLY, false);
        self.set_import_source(false);
        self.reply_mode = ReplyMode::On;
        *self.shared.name.lock() = None;
    }
}

/// Client flags other threads read for CLIENT LIST (`flags=`) and CLIENT KILL/LIST FLAGS.
pub mod flags {
    /// Waiting for a CLIENT PAUSE to end (shown as `b`, blocked, as Valkey does).
    pub const PAUSED: u32 = 1 << 0;
    pub const CLOSE_AFTER_REPLY: u32 = 1 << 1;
    pub const UNIX_SOCKET: u32 = 1 << 2;
    pub const NO_EVICT: u32 = 1 << 3;
    pub const NO_TOUCH: u32 = 1 << 4;
    /// Parked in a blocking command (BLPOP ...), also shown as `b`.
    pub const BLOCKED: u32 = 1 << 5;
    /// Subscribed to a channel, pattern or shard channel.
    pub const PUBSUB: u32 = 1 << 6;
    /// Inside MULTI.
    pub const MULTI: u32 = 1 << 7;
    /// A watched key was modified: EXEC will fail.
    pub const DIRTY_CAS: u32 = 1 << 8;
    /// In MONITOR mode.
    pub const MONITOR: u32 = 1 << 9;
    /// CLIENT TRACKING is on (`t`), its REDIRECT client is gone (`R`), in BCAST mode (`B`).
    pub const TRACKING: u32 = 1 << 10;
    pub const TRACKING_BROKEN_REDIRECT: u32 = 1 << 11;
    pub const TRACKING_BCAST: u32 = 1 << 12;
    /// A replica's connection to this server (`S`).
    pub const REPLICA: u32 = 1 << 13;
    /// On a replica, the link to its primary (`M`).
    pub const PRIMARY: u32 = 1 << 14;
    /// READONLY: reads may be served by a cluster replica (`r`).
    pub const READONLY: u32 = 1 << 15;
    /// CLIENT IMPORT-SOURCE ON: a sync tool's connection in import mode (`I`).
    pub const IMPORT_SOURCE: u32 = 1 << 16;

    /// Flag letters in the order CLIENT LIST prints them.
    pub const LETTERS: &[(u32, char)] = &[
        (MONITOR, 'O'),
        (REPLICA, 'S'),
        (PRIMARY, 'M'),
        (PUBSUB, 'P'),
        (MULTI, 'x'),
        (PAUSED, 'b'),
        (BLOCKED, 'b'),
        (TRACKING, 't'),
        (TRACKING_BROKEN_REDIRECT, 'R'),
        (TRACKING_BCAST, 'B'),
        (DIRTY_CAS, 'd'),
        (CLOSE_AFTER_REPLY, 'c'),
        (UNIX_SOCKET, 'U'),
        (READONLY, 'r'),
        (NO_EVICT, 'e'),
        (NO_TOUCH, 'T'),
        (IMPORT_SOURCE, 'I'),
    ];
}

/// How the client reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Unix,
    /// TCP with TLS (`tls-port`).
    Tls,
    /// The client a script's `redis.call`s run as (MONITOR shows it as `lua`).
    Script,
}

/// What other threads can see of a client, and the switch to disconnect it.
pub struct ClientShared {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub transport: Transport,
    pub created_ms: i64,
    pub name: Mutex<Option<Bytes>>,
    pub lib_name: Mutex<Option<Bytes>>,
    pub lib_ver: Mutex<Option<Bytes>>,
    pub db: AtomicUsize,
    pub protocol: AtomicU8,
    pub last_interaction_ms: AtomicI64,
    /// Table id + 1 of the last command run; 0 before the first.
    pub last_command: AtomicUsize,
    /// Bytes in the query buffer and in the output buffer, for CLIENT LIST.
    pub query_buffer: AtomicUsize,
    pub output_buffer: AtomicUsize,
    pub no_evict: AtomicBool,
    /// `flags::*` bits.
    flags: AtomicU32,
    /// CLIENT CAPA REDIRECT was sent (`capa=r`).
    pub capa_redirect: AtomicBool,
    /// Bytes read and written, and commands completed (`tot-net-in`, `tot-net-out`, `tot-cmds`).
    pub net_in: AtomicU64,
    pub net_out: AtomicU64,
    pub commands: AtomicU64,
    /// Capacity of the read buffer and its peak (`rbs`, `rbp`).
    pub read_buffer: AtomicUsize,
    pub read_buffer_peak: AtomicUsize,
    /// Commands queued in MULTI (`multi=`), -1 outside a transaction.
    pub multi_queued: AtomicI64,
    /// Keys watched (`watch=`).
    pub watch_count: AtomicUsize,
    /// Subscriptions (`sub=`, `psub=`, `ssub=`).
    pub sub_count: AtomicUsize,
    pub psub_count: AtomicUsize,
    pub ssub_count: AtomicUsize,
    /// The ACL user's name (`user=` in CLIENT LIST, CLIENT KILL USER, DELUSER).
    pub user: Mutex<Bytes>,
    /// Messages published to this client, waiting for its connection to send them.
    pub outbox: crate::pubsub::Outbox,
    /// CLIENT TRACKING settings (other threads send this client invalidations).
    pub tracking: crate::tracking::ClientTracking,
    killed: AtomicBool,
    /// QUIT was received: the connection closes once its reply is written. Other clients
    /// must already treat it as gone (Valkey frees it before it reads another command).
    quitting: AtomicBool,
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl ClientShared {
    pub fn new(
        id: u64,
        addr: String,
        laddr: String,
        fd: i32,
        transport: Transport,
        now_ms: i64,
    ) -> ClientShared {
        ClientShared {
            id,
            addr,
            laddr,
            fd,
            transport,
            created_ms: now_ms,
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            db: AtomicUsize::new(0),
            protocol: AtomicU8::new(2),
            last_interaction_ms: AtomicI64::new(now_ms),
            last_command: AtomicUsize::new(0),
            query_buffer: AtomicUsize::new(0),
            output_buffer: AtomicUsize::new(0),
            no_evict: AtomicBool::new(false),
            flags: AtomicU32::new(if transport == Transport::Unix {
                flags::UNIX_SOCKET
            } else {
                0
            }),
            capa_redirect: AtomicBool::new(false),
            net_in: AtomicU64::new(0),
            net_out: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            read_buffer: AtomicUsize::new(0),
            read_buffer_peak: AtomicUsize::new(0),
            multi_queued: AtomicI64::new(-1),
            watch_count: AtomicUsize::new(0),
            sub_count: AtomicUsize::new(0),
            psub_count: AtomicUsize::new(0),
            ssub_count: AtomicUsize::new(0),
            user: Mutex::new(Bytes::from_static(b"default")),
            outbox: Default::default(),
            tracking: Default::default(),
            killed: AtomicBool::new(false),
            quitting: AtomicBool::new(false),
            waker: OnceLock::new(),
        }
    }

    /// Installs the function that wakes the connection's task (set once by the network layer).
    pub fn set_waker(&self, waker: Box<dyn Fn() + Send + Sync>) {
        let _ = self.waker.set(waker);
    }

    /// Asks the connection to close (CLIENT KILL, SHUTDOWN). Safe from any thread.
    pub fn kill(&self) {
        self.killed.store(true, Relaxed);
        self.wake();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Relaxed)
    }

    /// Marks the client as closing after its QUIT reply. Release: whoever learns of the
    /// reply (the peer, then another client's command) must find the mark.
    pub fn mark_quitting(&self) {
        self.quitting
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Killed, or closing after QUIT: no longer a client others can reach.
    pub fn is_gone(&self) -> bool {
        self.is_killed() || self.quitting.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Wakes the connection's task so it re-checks its state (kill, pause end).
    pub fn wake(&self) {
        if let Some(wake) = self.waker.get() {
            wake();
        }
    }

    /// Sets or clears `flag`. Sequentially consistent so that the pause/unpause handshake
    /// (`flags::PAUSED` against the pause state) cannot miss a wake-up.
    pub fn set_flag(&self, flag: u32, on: bool) {
        if on {
            self.flags.fetch_or(flag, SeqCst);
        } else {
            self.flags.fetch_and(!flag, SeqCst);
        }
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(SeqCst)
    }

    /// The `flags=` field of CLIENT LIST: one letter per flag, `N` for none.
    pub fn flag_letters(&self) -> String {
        let bits = self.flags();
        let text: String = flags::LETTERS
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|&(_, letter)| letter)
            .collect();
        if text.is_empty() { "N".into() } else { text }
    }
}

fn access_policy_of(config: &Config) -> AccessPolicy {
    AccessPolicy::from_config(
        &config.maxmemory_policy,
        config.lfu_log_factor,
        config.lfu_decay_time,
    )
}

/// A blocking command's call, waiting to be accounted until its wait ends.
pub struct BlockedCall {
    pub entry: &'static crate::table::TableEntry,
    pub args: Vec<Bytes>,
    /// Microseconds the call ran before it parked.
    pub elapsed_us: u64,
}
