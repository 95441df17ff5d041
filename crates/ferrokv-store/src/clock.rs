//! Wall-clock time in the units the keyspace uses.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Times one command for its statistics (commandstats, slow log, latency histograms),
/// from the CPU's time-stamp counter as Valkey does: `quanta` calibrates the counter against
/// the OS clock, and falls back to that clock where the counter is not invariant. Two reads
/// per command cost a third of what `Instant` costs in this VM (13 ns against 32).
#[derive(Clone, Copy)]
pub struct Stopwatch(quanta::Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(quanta::Instant::now())
    }

    pub fn elapsed_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }

    pub fn elapsed_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Calibrates the [`Stopwatch`] counter (under a millisecond), so that the first command
/// does not wait for it.
pub fn calibrate() {
    Stopwatch::start();
}

/// The 24-bit LRU clock Valkey keeps in every object: seconds, wrapping.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

/// The LRU clock as of the last [`tick`], so stamping an access costs an atomic load rather
/// than a clock read (Valkey caches it the same way); computed directly before the first tick.
pub fn lru_clock() -> u32 {
    match CACHED_LRU_CLOCK.load(Relaxed) {
        0 => lru_clock_now(),
        cached => cached,
    }
}

fn lru_clock_now() -> u32 {
    ((now_ms() / 1000) as u32) & LRU_CLOCK_MAX
}

static CACHED_LRU_CLOCK: AtomicU32 = AtomicU32::new(0);

/// Refreshes the cached LRU clock; the server's cron calls it every tick (resolution: 1 s).
pub fn tick() {
    CACHED_LRU_CLOCK.store(lru_clock_now().max(1), Relaxed);
}

/// Seconds since an object with LRU stamp `stamp` was last touched, accounting for wrap.
pub fn idle_seconds(stamp: u32) -> u64 {
    let now = lru_clock_now();
    if now >= stamp {
        (now - stamp) as u64
    } else {
        (now + (LRU_CLOCK_MAX - stamp)) as u64
    }
}
