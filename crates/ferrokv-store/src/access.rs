//! The access stamp every entry carries, read by the eviction policy, OBJECT IDLETIME and
//! OBJECT FREQ.
//!
//! Under an LRU (or no) policy the stamp is the 24-bit LRU clock in seconds. Under an LFU
//! policy it packs, as Valkey does, the last decrement time in minutes (16 bits) and a
//! logarithmic access counter (8 bits) that starts at 5, grows with probability
//! 1/((counter-5)*lfu-log-factor+1) per access, and loses one per `lfu-decay-time` minutes idle.

use crate::clock;

/// Counter value of a new key under LFU, so fresh keys are not evicted at once.
pub const LFU_INIT_VAL: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessPolicy {
    Lru,
    Lfu { log_factor: u32, decay_minutes: u32 },
}

impl AccessPolicy {
    /// The policy implied by `maxmemory-policy` and the LFU tuning directives.
    pub fn from_config(
        maxmemory_policy: &str,
        lfu_log_factor: i64,
        lfu_decay_time: i64,
    ) -> AccessPolicy {
        if maxmemory_policy.ends_with("-lfu") {
            AccessPolicy::Lfu {
                log_factor: lfu_log_factor.max(0) as u32,
                decay_minutes: lfu_decay_time.max(0) as u32,
            }
        } else {
            AccessPolicy::Lru
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, AccessPolicy::Lfu { .. })
    }

    /// The stamp of a newly created key.
    pub fn initial(self) -> u32 {
        match self {
            AccessPolicy::Lru => clock::lru_clock(),
            AccessPolicy::Lfu { .. } => (lfu_minutes() << 8) | LFU_INIT_VAL,
        }
    }

    /// Records one access.
    pub fn touch(self, stamp: &mut u32) {
        match self {
            AccessPolicy::Lru => *stamp = clock::lru_clock(),
            AccessPolicy::Lfu { log_factor, .. } => {
                let counter = lfu_log_increment(self.lfu_frequency(*stamp), log_factor);
                *stamp = (lfu_minutes() << 8) | counter;
            }
        }
    }

    /// The decayed LFU counter (OBJECT FREQ) of a stamp written under LFU.
    pub fn lfu_frequency(self, stamp: u32) -> u32 {
        let decay = match self {
            AccessPolicy::Lfu { decay_minutes, .. } => decay_minutes,
            AccessPolicy::Lru => 0,
        };
        let counter = stamp & 0xff;
        let periods = lfu_minutes_since(stamp >> 8)
            .checked_div(decay)
            .unwrap_or(0);
        counter.saturating_sub(periods)
    }
}

impl AccessPolicy {
    /// The stamp of a key loaded from a snapshot that recorded how long it had been idle
    /// or its LFU counter (each kept only under the policy it belongs to, as Valkey loads
    /// them); a fresh stamp otherwise.
    pub fn restored(self, idle_seconds: Option<u64>, lfu_counter: Option<u8>) -> u32 {
        match (self, idle_seconds, lfu_counter) {
            (AccessPolicy::Lru, Some(idle), _) => {
                let period = u64::from(clock::LRU_CLOCK_MAX) + 1;
                let now = u64::from(clock::lru_clock());
                ((now + period - idle % period) % period) as u32
            }
            (AccessPolicy::Lfu { .. }, _, Some(counter)) => {
                (lfu_minutes() << 8) | u32::from(counter)
            }
            _ => self.initial(),
        }
    }
}

/// Seconds since an LRU stamp (OBJECT IDLETIME).
pub fn lru_idle_seconds(stamp: u32) -> u64 {
    clock::idle_seconds(stamp)
}

fn lfu_minutes() -> u32 {
    ((clock::now_ms() / 60_000) as u32) & 0xffff
}

fn lfu_minutes_since(then: u32) -> u32 {
    let now = lfu_minutes();
    if now >= then {
        now - then
    } else {
        0xffff - then + now
    }
}

fn lfu_log_increment(counter: u32, log_factor: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if rand::random::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_starts_at_init_and_grows_logarithmically() {
        let policy = AccessPolicy::Lfu {
            log_factor: 10,
            decay_minutes: 1,
        };
        let mut stamp = policy.initial();
        assert_eq!(policy.lfu_frequency(stamp), LFU_INIT_VAL);
        for _ in 0..1000 {
            policy.touch(&mut stamp);
        }
        let f = policy.lfu_frequency(stamp);
        // With factor 10, a thousand hits land around 18; far from both 5 and 255.
        assert!(f > 10 && f < 40, "frequency {f}");
    }

    #[test]
    fn lru_stamp_is_the_clock() {
        let mut stamp = 0;
        AccessPolicy::Lru.touch(&mut stamp);
        assert!(lru_idle_seconds(stamp) <= 1);
    }
}
