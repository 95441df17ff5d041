//! The live configuration shared by every thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::directives::Config;

/// Holds the current [`Config`] snapshot.
///
/// Connections keep their own `Arc<Config>` and compare [`ConfigStore::epoch`] before each
/// command: an atomic load of a line that only CONFIG SET writes, so the hot path neither
/// locks nor touches a shared reference count.
pub struct ConfigStore {
    current: ArcSwap<Config>,
    epoch: AtomicU64,
    /// Where the configuration was read from, for CONFIG REWRITE.
    pub path: Option<std::path::PathBuf>,
}

impl ConfigStore {
    pub fn new(config: Config, path: Option<std::path::PathBuf>) -> ConfigStore {
        ConfigStore {
            current: ArcSwap::from_pointee(config),
            epoch: AtomicU64::new(1),
            path,
        }
    }

    pub fn load(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// Changes whenever a new snapshot is published.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Applies `change` to a copy of the current snapshot and publishes it if it succeeds.
    /// Concurrent updates are serialized by the caller (CONFIG SET takes a lock).
    pub fn update<E>(&self, change: impl FnOnce(&mut Config) -> Result<(), E>) -> Result<(), E> {
        let mut next = Config::clone(&self.current.load());
        change(&mut next)?;
        self.current.store(Arc::new(next));
        self.epoch.fetch_add(1, Ordering::Release);
        Ok(())
    }
}
