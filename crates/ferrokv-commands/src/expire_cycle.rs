//! Active expiry: deleting expired keys nobody reads, a little every `hz` tick.
//!
//! Like Valkey's cycle: sample keys with a TTL, delete the expired ones, and keep sampling a
//! database while more than a small fraction of the sample was expired, within a time budget
//! of about a quarter of a tick. `active-expire-effort` (1-10) raises the sample size and the
//! budget and lowers the tolerated stale fraction. Shards are visited round-robin, each locked
//! only while it is sampled, so clients on other shards never wait for the cycle. Hash fields
//! with a TTL are reclaimed by the same cycle (see `Db::active_expire_items_step`).

use std::time::{Duration, Instant};

use ferrokv_store::clock;
use ferrokv_store::keyspace::SHARD_COUNT;

use crate::dispatch::handle_key_events;
use crate::server::Server;
use crate::stats;

/// Most expired hash fields reclaimed per step, so one huge hash cannot hold its shard's
/// lock for long; the cycle runs further steps while its time budget lasts.
const ITEMS_PER_STEP: usize = 1000;

#[derive(Default)]
pub struct ExpireCycle {
    next_shard: usize,
}

impl ExpireCycle {
    pub fn run(&mut self, server: &Server, hz: u64) {
        if !crate::cmd::debug::active_expire_enabled() {
            return;
        }
        let effort = server.config.load().active_expire_effort.clamp(1, 10) as u64;
        let samples = (20 + 5 * (effort - 1)) as usize;
        let acceptable_stale_percent = (10 - effort + 1) as usize;
        let budget = Duration::from_micros(1_000_000 * (25 + 2 * (effort - 1)) / hz.max(1) / 100);
        let started = Instant::now();
        // Each expired key propagates on its own (UNLINK or DEL per lazyfree-lazy-expire).
        let config = server.config.load();
        let _propagating =
            crate::propagate::Background::begin(server.stream, config.lazyfree_lazy_expire, true);
        let propagating = crate::propagate::collecting();
        // As Valkey samples about `samples` keys with a TTL per database per tick while few
        // of them turn out expired, the tick stops once every database has had that many
        // looked at (or all it has) with no stale sample on the way; shards come in turn
        // from one tick to the next. Sampling each shard's share in every tick looked at 64
        // times as many keys: 4% of a core for an idle server holding 200k keys with a TTL.
        let mut quota = SampleQuota::new(server.keyspace.volatile_counts(), samples);
        for visited in 1..=SHARD_COUNT {
            let index = self.next_shard;
            self.next_shard = (index + 1) % SHARD_COUNT;
            let now_ms = clock::now_ms();
            let mut stale = false;
            let mut locked = server.keyspace.lock_shard(index);
            for (_, shard) in locked.shards() {
                for (db_index, db) in shard.dbs.iter_mut().enumerate() {
                    loop {
                        let (sampled, expired) = db.active_expire_step(now_ms, samples);
                        quota.sampled(db_index, sampled, 0);
                        let db_stale = expired * 100 > sampled * acceptable_stale_percent;
                        stale |= db_stale;
                        if sampled == 0 || !db_stale || started.elapsed() > budget {
                            break;
                        }
                    }
                    // Hash fields with a TTL: reclaimed in bounded batches while any are
                    // due and the budget lasts (a hash left empty goes with its fields).
                    // Each hash's effects form one unit (the store ends it).
                    if propagating {
                        crate::propagate::set_loose(false);
                    }
                    loop {
                        let (sampled, reclaimed) =
                            db.active_expire_items_step(now_ms, samples, ITEMS_PER_STEP);
                        quota.sampled(db_index, 0, sampled);
                        stale |= reclaimed > 0;
                        if sampled == 0 || reclaimed == 0 || started.elapsed() > budget {
                            break;
                        }
                    }
                    if propagating {
                        crate::propagate::set_loose(true);
                    }
                }
            }
            if visited == SHARD_COUNT || started.elapsed() > budget || (!stale && quota.met()) {
                // The latency monitor's `expire-cycle` event: a cycle that freed a large
                // value can take long (LATENCY LATEST shows it, as in Valkey). Recorded
                // before the last shard's lock goes, so that a client that sees the key
                // gone sees the event too.
                crate::latency::add_sample_if_needed(
                    "expire-cycle",
                    started.elapsed().as_millis() as u64,
                    config.latency_monitor_threshold,
                    clock::now_ms() / 1000,
                );
                break;
            }
            drop(locked);
        }
        after_background_deletes(server);
    }
}

/// What a tick still has to sample, per database: keys with a TTL, and keys whose value has
/// items with a TTL; each at most `samples`, or as many as the database has.
struct SampleQuota {
    wanted: Vec<(usize, usize)>,
}

impl SampleQuota {
    fn new(volatile_counts: Vec<(usize, usize)>, samples: usize) -> Self {
        let wanted = volatile_counts
            .into_iter()
            .map(|(keys, with_items)| (keys.min(samples), with_items.min(samples)))
            .collect();
        SampleQuota { wanted }
    }

    fn sampled(&mut self, db: usize, keys: usize, with_items: usize) {
        if let Some(wanted) = self.wanted.get_mut(db) {
            wanted.0 = wanted.0.saturating_sub(keys);
            wanted.1 = wanted.1.saturating_sub(with_items);
        }
    }

    fn met(&self) -> bool {
        self.wanted.iter().all(|&w| w == (0, 0))
    }
}

/// What follows keys the cron deleted: statistics and keyspace events, WATCH marks,
/// client-tracking invalidations, blocked clients to serve.
pub fn after_background_deletes(server: &Server) {
    handle_key_events(server, stats::local());
    // Expired keys someone WATCHes.
    crate::transaction::process_touches(server, false, None);
    crate::tracking::flush_broadcasts(server);
    if crate::blocking::pending() {
        crate::blocking::serve_pending(server, clock::now_ms());
    }
    crate::notify::flush(server);
}

#[cfg(test)]
mod tests {
    use super::SampleQuota;

    #[test]
    fn a_tick_samples_each_database_up_to_the_sample_size() {
        let mut quota = SampleQuota::new(vec![(1000, 0), (3, 50), (0, 0)], 20);
        assert!(!quota.met());
        quota.sampled(0, 12, 0);
        quota.sampled(1, 3, 20);
        assert!(!quota.met(), "database 0 had 12 of its 20");
        quota.sampled(0, 12, 0);
        assert!(quota.met());
    }

    #[test]
    fn a_keyspace_without_ttls_needs_no_sampling() {
        assert!(SampleQuota::new(vec![(0, 0); 16], 20).met());
        assert!(SampleQuota::new(Vec::new(), 20).met());
    }

    #[test]
    fn items_with_a_ttl_count_apart_from_keys_with_one() {
        let mut quota = SampleQuota::new(vec![(5, 5)], 20);
        quota.sampled(0, 5, 0);
        assert!(!quota.met());
        quota.sampled(0, 0, 7);
        assert!(quota.met());
        // A database the count did not know of (created meanwhile) changes nothing.
        quota.sampled(3, 10, 10);
        assert!(quota.met());
    }
}
