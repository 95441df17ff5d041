//! The start-up load of the snapshot, which runs while clients are already connected, as in
//! Valkey: until it ends, commands without the `loading` flag are refused with LOADING (so a
//! client never reads a half-loaded dataset, and Sentinel or a load balancer sees a live
//! server that is not ready yet), the cron leaves the dataset alone, and a shutdown does not
//! save (it would write the half-loaded dataset over the file being read). INFO reports the
//! progress; `key-load-delay` slows the load down for tests.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::time::Duration;

/// Valkey's refusal while loading.
pub const LOADING_ERROR: &str = "LOADING Valkey is loading the dataset in memory";

static REFUSING: AtomicBool = AtomicBool::new(false);
static STARTED_UNIX: AtomicI64 = AtomicI64::new(0);
static STARTED_MS: AtomicI64 = AtomicI64::new(0);
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);
static LOADED_BYTES: AtomicU64 = AtomicU64::new(0);
static KEY_DELAY: AtomicI64 = AtomicI64::new(0);

/// Whether commands without the `loading` flag are refused now (one relaxed load).
#[inline]
pub fn refusing() -> bool {
    REFUSING.load(Relaxed)
}

/// A load of a `total_bytes` file begins, pausing `key_delay` after each key (Valkey's
/// `key-load-delay`: microseconds, or a busy loop of that many turns when negative).
pub fn begin(total_bytes: u64, key_delay: i64) {
    let now_ms = ferrokv_store::clock::now_ms();
    STARTED_UNIX.store(now_ms / 1000, Relaxed);
    STARTED_MS.store(now_ms, Relaxed);
    TOTAL_BYTES.store(total_bytes, Relaxed);
    LOADED_BYTES.store(0, Relaxed);
    KEY_DELAY.store(key_delay, Relaxed);
    REFUSING.store(true, Relaxed);
}

/// The size of what is loaded, when it is known only after [`begin`] (an AOF directory's
/// files, once its manifest is read).
pub fn set_total_bytes(total_bytes: u64) {
    TOTAL_BYTES.store(total_bytes, Relaxed);
}

/// The load is over (done or failed): commands run again.
pub fn end() {
    REFUSING.store(false, Relaxed);
    KEY_DELAY.store(0, Relaxed);
}

/// [`ferrokv_persist::LoadOptions::after_key`] for the start-up load.
pub fn after_key(offset: u64) {
    LOADED_BYTES.store(offset, Relaxed);
    match KEY_DELAY.load(Relaxed) {
        0 => {}
        us if us > 0 => std::thread::sleep(Duration::from_micros(us as u64)),
        turns => {
            for _ in 0..turns.unsigned_abs() {
                std::hint::spin_loop();
            }
        }
    }
}

/// INFO persistence's `loading_*` fields, shown while a load runs: `(name, value)`.
pub fn info_fields() -> Vec<(&'static str, String)> {
    let total = TOTAL_BYTES.load(Relaxed);
    let loaded = LOADED_BYTES.load(Relaxed).min(total);
    let percent = if total > 0 {
        loaded as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    let elapsed_s = (ferrokv_store::clock::now_ms() - STARTED_MS.load(Relaxed)).max(0) as f64 / 1e3;
    // Valkey's estimate: the time left at the rate so far, 1 second before any progress.
    let eta = if loaded == 0 {
        1
    } else {
        ((total - loaded) as f64 / (loaded as f64 / elapsed_s.max(1e-3))) as u64
    };
    vec![
        ("loading_start_time", STARTED_UNIX.load(Relaxed).to_string()),
        ("loading_total_bytes", total.to_string()),
        ("loading_rdb_used_mem", "0".to_string()),
        ("loading_loaded_bytes", loaded.to_string()),
        ("loading_loaded_perc", format!("{percent:.2}")),
        ("loading_eta_seconds", eta.to_string()),
    ]
}
