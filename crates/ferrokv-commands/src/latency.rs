//! Latency measurement: the latency monitor (LATENCY LATEST/HISTORY, events over
//! `latency-monitor-threshold`) and the per-command latency histograms (INFO latencystats,
//! LATENCY HISTOGRAM).
//!
//! Histograms are kept per thread, like the other statistics, and each command's histogram
//! is allocated the first time that command runs on that thread: a server that only ever
//! runs GET and SET carries two histograms per thread, not one per command in the table.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::table::TABLE;

/// Samples kept per event, as Valkey keeps: one per second at most, the last 160.
pub const HISTORY_LEN: usize = 160;

/// Histogram range in nanoseconds (1 ns to 1 s, larger values are clamped) and precision,
/// the same as Valkey's, so the percentiles it prints fall on the same bucket bounds.
const HISTOGRAM_MAX_NS: u64 = 1_000_000_000;
const HISTOGRAM_SIGFIG: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub time: i64,
    /// Milliseconds.
    pub latency: u64,
}

#[derive(Debug, Clone, Default)]
pub struct EventHistory {
    /// Oldest first, at most [`HISTORY_LEN`].
    pub samples: Vec<Sample>,
    /// Highest latency ever seen for the event (until reset).
    pub max: u64,
    /// Every latency added, and how many, before per-second merging.
    pub sum: u64,
    pub count: u64,
}

static EVENTS: Mutex<BTreeMap<&'static str, EventHistory>> = Mutex::new(BTreeMap::new());

/// Records `latency_ms` for `event` at `now_secs` if the monitor is on (`threshold_ms` > 0)
/// and the latency reaches it. Samples in the same second are merged, keeping the highest.
pub fn add_sample_if_needed(
    event: &'static str,
    latency_ms: u64,
    threshold_ms: i64,
    now_secs: i64,
) {
    if threshold_ms <= 0 || latency_ms < threshold_ms as u64 {
        return;
    }
    let mut events = EVENTS.lock();
    let history = events.entry(event).or_default();
    history.max = history.max.max(latency_ms);
    history.sum += latency_ms;
    history.count += 1;
    match history.samples.last_mut() {
        Some(last) if last.time == now_secs => last.latency = last.latency.max(latency_ms),
        _ => {
            if history.samples.len() == HISTORY_LEN {
                history.samples.remove(0);
            }
            history.samples.push(Sample {
                time: now_secs,
                latency: latency_ms,
            });
        }
    }
}

/// Every event with samples, by name.
pub fn events() -> Vec<(&'static str, EventHistory)> {
    EVENTS
        .lock()
        .iter()
        .map(|(name, history)| (*name, history.clone()))
        .collect()
}

pub fn event(name: &[u8]) -> Option<EventHistory> {
    let name = std::str::from_utf8(name).ok()?;
    EVENTS.lock().get(name).cloned()
}

/// Forgets the named events (all of them for an empty list); returns how many were known.
pub fn reset(names: &[&[u8]]) -> usize {
    let mut events = EVENTS.lock();
    if names.is_empty() {
        let n = events.len();
        events.clear();
        return n;
    }
    let mut removed = 0;
    for name in names {
        if let Ok(name) = std::str::from_utf8(name)
            && events.remove(name).is_some()
        {
            removed += 1;
        }
    }
    removed
}

/// One thread's command histograms, indexed by table id.
struct ThreadHistograms {
    by_command: Mutex<Vec<Option<Box<Histogram<u64>>>>>,
}

static ALL: LazyLock<Mutex<Vec<&'static ThreadHistograms>>> =
    LazyLock::new(|| Mutex::new(Vec::new()));

thread_local! {
    // Leaked for the same reason as the statistics blocks: INFO keeps reading them.
    static LOCAL: &'static ThreadHistograms = {
        let block: &'static ThreadHistograms = Box::leak(Box::new(ThreadHistograms {
            by_command: Mutex::new((0..TABLE.len()).map(|_| None).collect()),
        }));
        ALL.lock().push(block);
        block
    };
}

fn new_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, HISTOGRAM_SIGFIG).ok()
}

/// Records one call of command `id` that took `duration_us` (this thread's histogram; the
/// lock is only ever contended by a concurrent INFO or LATENCY HISTOGRAM).
pub fn record_command(id: usize, duration_us: u64) {
    LOCAL.with(|block| {
        let mut by_command = block.by_command.lock();
        let Some(slot) = by_command.get_mut(id) else {
            return;
        };
        if slot.is_none() {
            *slot = new_histogram().map(Box::new);
        }
        if let Some(histogram) = slot {
            histogram.saturating_record(duration_us.saturating_mul(1000).min(HISTOGRAM_MAX_NS));
        }
    });
}

/// Every thread's histogram of command `id` merged, or `None` if it never ran.
pub fn command_histogram(id: usize) -> Option<Histogram<u64>> {
    let mut merged: Option<Histogram<u64>> = None;
    for block in ALL.lock().iter() {
        let by_command = block.by_command.lock();
        if let Some(Some(h)) = by_command.get(id) {
            match &mut merged {
                None => merged = Some((**h).clone()),
                Some(m) => {
                    let _ = m.add(&**h);
                }
            }
        }
    }
    merged.filter(|h| !h.is_empty())
}

/// CONFIG RESETSTAT: forgets every histogram.
pub fn reset_histograms() {
    for block in ALL.lock().iter() {
        for slot in block.by_command.lock().iter_mut() {
            *slot = None;
        }
    }
}

/// Microseconds at `percentile` (0-100) as INFO latencystats prints it (`%.3f`).
pub fn percentile_usec(histogram: &Histogram<u64>, percentile: f64) -> f64 {
    let ns = histogram.value_at_percentile(percentile);
    // Like hdr_value_at_percentile: the lowest bound of the bucket for the 0th percentile,
    // the highest bound otherwise.
    let bound = if percentile <= 0.0 {
        histogram.lowest_equivalent(ns)
    } else {
        histogram.highest_equivalent(ns)
    };
    bound as f64 / 1000.0
}

/// The cumulative distribution LATENCY HISTOGRAM reports: (bucket upper bound in µs,
/// calls at or below it), on power-of-two buckets starting at 1024 ns, leaving out buckets
/// that add nothing.
pub fn cumulative_buckets(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cumulative = 0;
    for step in histogram.iter_log(1024, 2.0) {
        let added = step.count_since_last_iteration();
        cumulative += added;
        if added > 0 {
            // The iterator stops just below each power of two; Valkey labels the bucket by
            // the top of the power of two's own sub-bucket.
            let level = step.value_iterated_to().saturating_add(1);
            out.push((histogram.highest_equivalent(level) / 1000, cumulative));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_in_one_second_merge_keeping_the_highest() {
        reset(&[]);
        add_sample_if_needed("test-event", 20, 10, 100);
        add_sample_if_needed("test-event", 30, 10, 100);
        add_sample_if_needed("test-event", 5, 10, 100);
        add_sample_if_needed("test-event", 12, 10, 101);
        let h = event(b"test-event").expect("recorded");
        assert_eq!(
            h.samples,
            vec![
                Sample {
                    time: 100,
                    latency: 30
                },
                Sample {
                    time: 101,
                    latency: 12
                }
            ]
        );
        assert_eq!((h.max, h.sum, h.count), (30, 62, 3));
        add_sample_if_needed("off", 100, 0, 100);
        assert!(event(b"off").is_none());
    }

    #[test]
    fn percentiles_fall_on_valkeys_bucket_bounds() {
        let mut h = new_histogram().expect("histogram");
        h.record(9000).expect("in range");
        assert_eq!(format!("{:.3}", percentile_usec(&h, 50.0)), "9.023");
        h.record(32_000).expect("in range");
        let buckets = cumulative_buckets(&h);
        assert_eq!(buckets, vec![(16, 1), (33, 2)]);
    }
}
