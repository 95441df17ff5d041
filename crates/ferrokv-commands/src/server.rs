//! State shared by every connection and thread: the keyspace, the configuration, the client
//! registry and the server's identity.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Instant;

use ferrokv_config::{Config, ConfigStore};
use ferrokv_store::{Keyspace, clock};
use parking_lot::Mutex;

use crate::client::ClientShared;

pub struct Server {
    pub keyspace: Keyspace,
    pub config: ConfigStore,
    pub clients: ClientRegistry,
    /// 40 hex characters, new at every start (INFO run_id).
    pub run_id: String,
    pub started: Instant,
    pub started_unix_ms: i64,
    pub executable: String,
    /// Set by SHUTDOWN or a signal; the network layer watches it.
    pub shutdown_requested: AtomicBool,
    /// A shutdown waiting for replicas, or asked for by a signal (`crate::shutdown`).
    pub shutdown: crate::shutdown::Shutdown,
    /// Serializes CONFIG SET so concurrent changes do not lose each other.
    pub config_write: Mutex<()>,
    /// Unix time of the last successful save (LASTSAVE, INFO rdb_last_save_time).
    pub last_save_unix: AtomicU64,
    /// CLIENT PAUSE and other pauses of command processing.
    pub pause: crate::pause::ClientPause,
    /// Clients parked in blocking commands (BLPOP ...).
    pub blocking: crate::blocking::Registry,
    /// Keys watched by clients (WATCH).
    pub watches: crate::transaction::Watches,
    /// Channel, pattern and shard channel subscriptions.
    pub pubsub: crate::pubsub::PubSub,
    /// ACL users and the log of denials.
    pub acl: crate::acl::Acl,
    /// Script cache, function libraries, and the running script's state.
    pub scripting: crate::scripting::Scripting,
    /// Clients in MONITOR mode.
    pub monitors: crate::monitor::Monitors,
    /// Client-side caching: tracked keys, BCAST prefixes, tracking clients.
    pub tracking: crate::tracking::Tracking,
    /// Every change to the dataset, in order, for the AOF and replicas (`propagate`).
    /// Leaked once per server: the store's release hook reaches it from any thread.
    pub stream: &'static crate::propagate::Stream,
    /// The append-only file (`aof`).
    pub aof: crate::aof::Aof,
    /// Snapshot saving and loading, and their status.
    pub persistence: crate::persistence::Persistence,
    /// Role, replication ids, attached replicas, the link to a primary.
    pub replication: crate::replication::Replication,
    /// MIGRATE's open connections to its targets.
    pub migrate_sockets: crate::migrate::SocketCache,
    /// This server's own `Arc`, for state that must own a reference to it (a thread's Lua
    /// state registers `server.call` once, not once per script run).
    this: Weak<Server>,
}

impl Server {
    pub fn new(
        config: Config,
        config_path: Option<std::path::PathBuf>,
        executable: String,
    ) -> Arc<Server> {
        let databases = config.databases as usize;
        let now = clock::now_ms();
        crate::notify::install(&config);
        crate::evict::install();
        ferrokv_store::replica_view::set_import_mode(config.import_mode);
        let server = Arc::new_cyclic(|this| Server {
            keyspace: Keyspace::new(databases),
            config: ConfigStore::new(config, config_path),
            clients: ClientRegistry::default(),
            run_id: crate::replication::random_id(),
            started: Instant::now(),
            started_unix_ms: now,
            executable,
            shutdown_requested: AtomicBool::new(false),
            shutdown: Default::default(),
            config_write: Mutex::new(()),
            last_save_unix: AtomicU64::new((now / 1000) as u64),
            pause: Default::default(),
            blocking: Default::default(),
            watches: Default::default(),
            pubsub: Default::default(),
            acl: Default::default(),
            scripting: Default::default(),
            monitors: Default::default(),
            tracking: Default::default(),
            stream: Box::leak(Box::default()),
            aof: Default::default(),
            persistence: Default::default(),
            replication: Default::default(),
            migrate_sockets: Default::default(),
            this: this.clone(),
        });
        crate::propagate::install();
        crate::persistence::Persistence::install(&server);
        crate::acl::install_requirepass_hook(&server);
        server
    }

    /// A new owning reference to this server (`None` only while it is being dropped).
    pub fn arc(&self) -> Option<Arc<Server>> {
        self.this.upgrade()
    }

    pub fn request_shutdown(&self) {
        self.shutdown_requested.store(true, Relaxed);
        // Everything acknowledged so far reaches the disk before the process goes.
        self.aof.flush_all(self);
        // A running script stops at its next hook, writes or not (SHUTDOWN NOSAVE).
        self.scripting.busy.abort_all();
        for client in self.clients.all() {
            client.kill();
        }
    }
}

/// Every connected client, by id.
#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientShared>>>,
}

impl ClientRegistry {
    /// A new client id: ids start at 1 and are never reused.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed) + 1
    }

    pub fn register(&self, client: Arc<ClientShared>) {
        self.clients.lock().insert(client.id, client);
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.clients.lock().len()
    }

    /// The client `id`, unless it is gone (killed, or closing after QUIT).
    pub fn get(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.clients
            .lock()
            .get(&id)
            .filter(|c| !c.is_gone())
            .cloned()
    }

    /// A snapshot of every client, in id order. A client already killed or closing after
    /// QUIT (its connection is still closing on its own thread) is gone for everyone else,
    /// as a freed client is in Valkey: CLIENT LIST no longer shows it and CLIENT KILL does
    /// not count it twice.
    pub fn all(&self) -> Vec<Arc<ClientShared>> {
        self.clients
            .lock()
            .values()
            .filter(|c| !c.is_gone())
            .cloned()
            .collect()
    }
}

static USED_MEMORY_PROBE: std::sync::OnceLock<fn() -> u64> = std::sync::OnceLock::new();

/// Installs the function that reports allocated bytes. The allocator is chosen by the
/// binary, so the command layer asks through this hook.
pub fn set_used_memory_probe(probe: fn() -> u64) {
    let _ = USED_MEMORY_PROBE.set(probe);
}

/// Bytes allocated by the process (INFO used_memory), or 0 without a probe.
pub fn used_memory() -> u64 {
    USED_MEMORY_PROBE.get().map(|probe| probe()).unwrap_or(0)
}
