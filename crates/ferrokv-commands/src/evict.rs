//! `maxmemory`: evicting keys while the server uses more memory than allowed.
//!
//! As in Valkey, before every command (when `maxmemory` is set) the server evicts keys until
//! used memory is back under the limit; if it cannot (policy `noeviction`, no key eligible),
//! a command flagged `denyoom` is refused with `-OOM` and every other command runs.
//!
//! The LRU, LFU and TTL policies are approximated like Valkey's: each round samples
//! `maxmemory-samples` keys of every database of one randomly chosen shard into a small pool
//! of the best candidates seen so far (highest idle time, lowest frequency, or nearest
//! expiry), then evicts the best candidate that still exists. Keys are spread uniformly over
//! the 64 shards by hash, so sampling one shard at a time is as random as sampling the whole
//! keyspace, and only one shard is ever locked at once. The pool is per thread, so workers
//! never contend on it; a stale candidate (deleted or replaced since) is simply skipped.
//!
//! `maxmemory-eviction-tenacity` bounds the time one command spends evicting; when it runs
//! out the command proceeds and the cron keeps evicting ([`background`]).
//!
//! Must be called with no shard locked by the caller.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ferrokv_config::Config;
use ferrokv_store::access::{AccessPolicy, lru_idle_seconds};
use ferrokv_store::keyspace::SHARD_COUNT;
use ferrokv_store::{Keyspace, NO_EXPIRE};
use rand::Rng;

use crate::context::{CmdError, errors};
use crate::server::{self, Server};

use crate::stats;

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn from_name(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn is_random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// What an eviction attempt achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Memory is under the limit.
    Ok,
    /// The time budget ran out while still over the limit; the cron continues.
    Running,
    /// Over the limit and nothing (more) can be evicted.
    Fail,
}

/// Set when a time-limited eviction left memory over the limit.
static BACKGROUND_PENDING: AtomicBool = AtomicBool::new(false);

/// The memory check before a command: evicts if needed, and refuses a `denyoom` command when
/// memory stays over the limit. `Ok(true)`: over the limit, but the command may run.
pub fn before_command(
    server: &Server,
    config: &Config,
    access: AccessPolicy,
    deny_on_oom: bool,
) -> Result<bool, CmdError> {
    // While a script is registered as running nothing is evicted: evicting would wait for
    // the shards it holds, past `busy-reply-threshold` (Valkey skips eviction while a
    // script is timed out; its clients are not served before that).
    if config.maxmemory == 0 || server.scripting.busy.active() {
        return Ok(false);
    }
    // While writes are paused (CLIENT PAUSE WRITE, a failover) the dataset must not change:
    // nothing is evicted, and nothing is refused for memory either (writes wait anyway), as
    // in Valkey.
    if server.pause.is_paused(ferrokv_store::clock::now_ms()) {
        return Ok(false);
    }
    // Import mode: what stays is the source server's decision, so nothing is evicted, but
    // memory is guarded all the same.
    if ferrokv_store::replica_view::import_mode() {
        let over = server::used_memory() > config.maxmemory;
        if over && deny_on_oom {
            return Err(errors::OOM);
        }
        return Ok(over);
    }
    let _propagating =
        crate::propagate::Background::begin(server.stream, config.lazyfree_lazy_expire, true);
    let outcome = perform(&server.keyspace, config, access, &server::used_memory);
    if outcome == Outcome::Fail && deny_on_oom {
        return Err(errors::OOM);
    }
    Ok(outcome == Outcome::Fail)
}

thread_local! {
    /// Whether the command this thread runs found memory over `maxmemory` (eviction could
    /// not make room) when it was checked. A script without declared flags refuses its first
    /// denied write by this state, as Valkey does by its `pre_command_oom_state`: the
    /// script itself may not stop halfway, so memory is judged once, before it runs.
    static OUT_OF_MEMORY_AT_START: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Records the memory state found by the checks of the command about to run.
pub fn set_out_of_memory_at_start(out_of_memory: bool) {
    OUT_OF_MEMORY_AT_START.with(|c| c.set(out_of_memory));
}

/// Whether the running command found memory over `maxmemory` when it was checked.
pub fn out_of_memory_at_start() -> bool {
    OUT_OF_MEMORY_AT_START.with(|c| c.get())
}

/// Makes a lowered `maxmemory` take effect at once: when it is below what the server uses,
/// the cron starts evicting (Valkey's eviction timer) instead of waiting for a command. Also
/// follows `import-mode`, which stops eviction and expiry.
pub fn install() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        ferrokv_config::hooks::on_change("import-mode", |config| {
            ferrokv_store::replica_view::set_import_mode(config.import_mode);
            Ok(())
        });
        ferrokv_config::hooks::on_change("maxmemory", |config| {
            let used = server::used_memory();
            if config.maxmemory > 0 && used > config.maxmemory {
                log::warn!(
                    "WARNING: the new maxmemory value set via CONFIG SET ({}) is smaller than \
                     the current memory usage ({used}). This will result in key eviction and/or \
                     the inability to accept new write commands depending on the \
                     maxmemory-policy.",
                    config.maxmemory
                );
                BACKGROUND_PENDING.store(true, Relaxed);
            }
            Ok(())
        });
    });
}

/// The cron's share: keeps evicting after a command ran out of time while over the limit,
/// or after `maxmemory` was lowered below what is used.
pub fn background(server: &Server) {
    if !BACKGROUND_PENDING.swap(false, Relaxed) {
        return;
    }
    let config = server.config.load();
    if config.maxmemory == 0 {
        return;
    }
    let access = AccessPolicy::from_config(
        &config.maxmemory_policy,
        config.lfu_log_factor,
        config.lfu_decay_time,
    );
    let _propagating =
        crate::propagate::Background::begin(server.stream, config.lazyfree_lazy_expire, true);
    perform(&server.keyspace, &config, access, &server::used_memory);
    // Evicted keys someone watches or tracks.
    crate::transaction::process_touches(server, false, None);
    crate::tracking::flush_broadcasts(server);
    crate::notify::flush(server);
}

/// Valkey's eviction time budget for a tenacity: linear up to 500µs at 10, then growing by
/// 15% per step, unlimited at 100.
fn time_limit(tenacity: i64) -> Duration {
    let micros = if tenacity <= 10 {
        50 * tenacity.max(0) as u64
    } else if tenacity < 100 {
        (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64
    } else {
        return Duration::MAX;
    };
    Duration::from_micros(micros)
}

/// Evicts until `used()` is at most `maxmemory`, within the tenacity time budget.
pub fn perform(
    keyspace: &Keyspace,
    config: &Config,
    access: AccessPolicy,
    used: &dyn Fn() -> u64,
) -> Outcome {
    let limit = config.maxmemory;
    if used() <= limit {
        return Outcome::Ok;
    }
    EVICT_UNLINK.store(config.lazyfree_lazy_eviction, Relaxed);
    let policy = Policy::from_name(&config.maxmemory_policy);
    if policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    let started = Instant::now();
    let budget = time_limit(config.maxmemory_eviction_tenacity);
    let samples = config.maxmemory_samples.clamp(1, 64) as usize;
    let mut rng = rand::rng();
    let mut evicted: u64 = 0;
    let outcome = loop {
        if used() <= limit {
            break Outcome::Ok;
        }
        let freed = if policy.is_random() {
            evict_random(keyspace, policy, &mut rng)
        } else {
            evict_sampled(keyspace, policy, access, samples, &mut rng)
        };
        if !freed {
            break Outcome::Fail;
        }
        evicted += 1;
        if evicted.is_multiple_of(16) && started.elapsed() > budget {
            if used() > limit {
                BACKGROUND_PENDING.store(true, Relaxed);
                break Outcome::Running;
            }
            break Outcome::Ok;
        }
    };
    if evicted > 0 {
        stats::local().evicted_keys.add(evicted);
    }
    outcome
}

/// A key offered to the pool.
struct Candidate {
    /// Higher is a better victim.
    score: u64,
    shard: usize,
    db: usize,
    key: Vec<u8>,
}

/// The best candidates seen so far, ascending by score (Valkey's eviction pool has 16).
#[derive(Default)]
struct Pool {
    candidates: Vec<Candidate>,
}

const POOL_SIZE: usize = 16;

impl Pool {
    fn offer(&mut self, score: u64, shard: usize, db: usize, key: &[u8]) {
        let full = self.candidates.len() >= POOL_SIZE;
        if full && self.candidates.first().is_some_and(|c| score <= c.score) {
            return;
        }
        if self
            .candidates
            .iter()
            .any(|c| c.shard == shard && c.db == db && c.key == key)
        {
            return;
        }
        let at = self.candidates.partition_point(|c| c.score <= score);
        self.candidates.insert(
            at,
            Candidate {
                score,
                shard,
                db,
                key: key.to_vec(),
            },
        );
        if self.candidates.len() > POOL_SIZE {
            self.candidates.remove(0);
        }
    }

    fn pop_best(&mut self) -> Option<Candidate> {
        self.candidates.pop()
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// The victim score of a sampled key under `policy`.
fn score(policy: Policy, access: AccessPolicy, expire_at: i64, stamp: u32) -> u64 {
    match policy {
        Policy::AllKeysLfu | Policy::VolatileLfu => {
            255 - access.lfu_frequency(stamp).min(255) as u64
        }
        // Sooner expiry is a better victim.
        Policy::VolatileTtl => u64::MAX - (expire_at.max(0) as u64),
        _ => lru_idle_seconds(stamp),
    }
}

/// One round of a sampling policy: samples one shard (starting at a random one and moving
/// on while shards have nothing eligible), then evicts the pool's best live candidate.
/// Returns false when no shard has an eligible key.
fn evict_sampled(
    keyspace: &Keyspace,
    policy: Policy,
    access: AccessPolicy,
    samples: usize,
    rng: &mut impl Rng,
) -> bool {
    let volatile_only = policy.volatile_only();
    let start = rng.random_range(0..SHARD_COUNT);
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        for step in 0..SHARD_COUNT {
            let shard_index = (start + step) % SHARD_COUNT;
            {
                let mut locked = keyspace.lock_shard(shard_index);
                for (_, shard) in locked.shards() {
                    for (db_index, db) in shard.dbs.iter_mut().enumerate() {
                        db.sample_keys(rng, samples, volatile_only, |key, expire_at, stamp| {
                            let s = score(policy, access, expire_at, stamp);
                            pool.offer(s, shard_index, db_index, key);
                        });
                    }
                }
            }
            while let Some(victim) = pool.pop_best() {
                if delete(
                    keyspace,
                    victim.shard,
                    victim.db,
                    &victim.key,
                    volatile_only,
                ) {
                    return true;
                }
            }
        }
        false
    })
}

/// One round of a random policy: a random key of the first database with an eligible key,
/// in shards taken from a random one on.
fn evict_random(keyspace: &Keyspace, policy: Policy, rng: &mut impl Rng) -> bool {
    let volatile_only = policy.volatile_only();
    let start = rng.random_range(0..SHARD_COUNT);
    for step in 0..SHARD_COUNT {
        let shard_index = (start + step) % SHARD_COUNT;
        let mut locked = keyspace.lock_shard(shard_index);
        for (_, shard) in locked.shards() {
            for db in shard.dbs.iter_mut() {
                if let Some(key) = db.random_key(rng, volatile_only)
                    && db.delete(&key)
                {
                    notify_evicted(db.index(), &key);
                    return true;
                }
            }
        }
    }
    false
}

/// Deletes a pool candidate if it still exists (and still has a TTL under a volatile policy).
fn delete(
    keyspace: &Keyspace,
    shard_index: usize,
    db: usize,
    key: &[u8],
    volatile_only: bool,
) -> bool {
    let mut locked = keyspace.lock_shard(shard_index);
    let Some((_, shard)) = locked.shards().next() else {
        return false;
    };
    let Some(db) = shard.dbs.get_mut(db) else {
        return false;
    };
    if volatile_only && db.peek(key).is_none_or(|e| e.expire_at == NO_EXPIRE) {
        return false;
    }
    let deleted = db.delete(key);
    if deleted {
        notify_evicted(db.index(), key);
    }
    deleted
}

/// Evicted keys propagate as UNLINK (lazyfree-lazy-eviction yes) or DEL.
static EVICT_UNLINK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn notify_evicted(db: usize, key: &[u8]) {
    let name = if EVICT_UNLINK.load(Relaxed) {
        "UNLINK"
    } else {
        "DEL"
    };
    ferrokv_store::effects::push(db, crate::argv![name, key]);
    ferrokv_store::events::notify(ferrokv_store::events::class::EVICTED, "evicted", db, key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv_store::{Entry, StrValue, Value};

    fn config(policy: &str) -> Config {
        Config {
            maxmemory: 1000,
            maxmemory_policy: policy.to_string(),
            maxmemory_samples: 10,
            maxmemory_eviction_tenacity: 100,
            ..Config::default()
        }
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    fn fill(ks: &Keyspace, n: usize, ttl_every: usize, access: impl Fn(usize) -> u32) {
        // The pool is per thread and may hold keys of another test's keyspace.
        POOL.with(|p| p.borrow_mut().candidates.clear());
        fill_keys(ks, n, ttl_every, access)
    }

    fn fill_keys(ks: &Keyspace, n: usize, ttl_every: usize, access: impl Fn(usize) -> u32) {
        for i in 0..n {
            let k = key(i);
            let mut e = Entry::new(Value::Str(StrValue::Int(i as i64)), access(i));
            if ttl_every > 0 && i % ttl_every == 0 {
                e.expire_at = 10_000_000_000_000 + i as i64;
            }
            ks.lock(&[&k]).db(i % 3, &k).insert(&k, e);
        }
    }

    fn total(ks: &Keyspace) -> usize {
        (0..3).map(|db| ks.db_len(db)).sum()
    }

    /// "Memory" is the key count, so the limit is a number of keys.
    fn keys_as_memory(ks: &Keyspace) -> impl Fn() -> u64 + '_ {
        move || total(ks) as u64
    }

    #[test]
    fn every_policy_gets_under_the_limit_and_noeviction_fails() {
        for policy in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            let ks = Keyspace::new(3);
            fill(&ks, 3000, 1, |_| 0);
            let access = AccessPolicy::from_config(policy, 10, 1);
            assert_eq!(
                perform(&ks, &config(policy), access, &keys_as_memory(&ks)),
                Outcome::Ok,
                "{policy}"
            );
            assert_eq!(total(&ks), 1000, "{policy}");
        }
        let ks = Keyspace::new(3);
        fill(&ks, 3000, 1, |_| 0);
        let access = AccessPolicy::Lru;
        assert_eq!(
            perform(&ks, &config("noeviction"), access, &keys_as_memory(&ks)),
            Outcome::Fail
        );
        assert_eq!(total(&ks), 3000);
    }

    #[test]
    fn volatile_policies_evict_only_keys_with_a_ttl_then_fail() {
        for policy in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            let ks = Keyspace::new(3);
            // Every 4th key has a TTL: 750 of them.
            fill(&ks, 3000, 4, |_| 0);
            let access = AccessPolicy::from_config(policy, 10, 1);
            assert_eq!(
                perform(&ks, &config(policy), access, &keys_as_memory(&ks)),
                Outcome::Fail,
                "{policy}"
            );
            assert_eq!(total(&ks), 2250, "{policy}");
            for db in 0..3 {
                let mut locked = ks.lock_all();
                for (_, shard) in locked.shards() {
                    assert_eq!(shard.dbs[db].volatile_len(), 0);
                }
            }
        }
    }

    #[test]
    fn lru_evicts_idle_keys_first() {
        let ks = Keyspace::new(3);
        let now = ferrokv_store::clock::lru_clock();
        // Even keys were touched an hour ago, odd keys just now.
        fill(&ks, 2000, 0, |i| {
            if i % 2 == 0 {
                now.wrapping_sub(3600) & ferrokv_store::clock::LRU_CLOCK_MAX
            } else {
                now
            }
        });
        let mut c = config("allkeys-lru");
        c.maxmemory = 1500;
        c.maxmemory_samples = 5;
        assert_eq!(
            perform(&ks, &c, AccessPolicy::Lru, &keys_as_memory(&ks)),
            Outcome::Ok
        );
        let mut odd_left = 0;
        for i in (1..2000).step_by(2) {
            let k = key(i);
            odd_left += ks.lock(&[&k]).db(i % 3, &k).peek(&k).is_some() as usize;
        }
        // 500 evictions, each the best of a pool fed by >= 15 samples of a half-idle
        // keyspace: all of them idle keys, short of astronomically bad luck.
        assert!(odd_left >= 990, "recent keys left: {odd_left}");
    }

    #[test]
    fn ttl_policy_evicts_nearest_expiry_first() {
        let ks = Keyspace::new(3);
        fill(&ks, 2000, 1, |_| 0);
        let mut c = config("volatile-ttl");
        c.maxmemory = 1000;
        assert_eq!(
            perform(&ks, &c, AccessPolicy::Lru, &keys_as_memory(&ks)),
            Outcome::Ok
        );
        // Expiry grows with the key number: the later half should mostly remain.
        let late_left = (1000..2000)
            .filter(|&i| {
                let k = key(i);
                ks.lock(&[&k]).db(i % 3, &k).peek(&k).is_some()
            })
            .count();
        assert!(late_left > 800, "late keys left: {late_left}");
    }

    #[test]
    fn tenacity_time_limits() {
        assert_eq!(time_limit(0), Duration::ZERO);
        assert_eq!(time_limit(10), Duration::from_micros(500));
        assert!(time_limit(99) > Duration::from_secs(60));
        assert_eq!(time_limit(100), Duration::MAX);
    }
}
