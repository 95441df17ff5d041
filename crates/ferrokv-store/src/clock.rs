//! Wall-clock time in the units the keyspace uses.

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

/// The 24-bit LRU clock Valkey keeps in every object: seconds, wrapping.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

pub fn lru_clock() -> u32 {
    ((now_ms() / 1000) as u32) & LRU_CLOCK_MAX
}

/// Seconds since an object with LRU stamp `stamp` was last touched, accounting for wrap.
pub fn idle_seconds(stamp: u32) -> u64 {
    let now = lru_clock();
    if now >= stamp {
        (now - stamp) as u64
    } else {
        (now + (LRU_CLOCK_MAX - stamp)) as u64
    }
}
