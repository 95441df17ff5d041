//! How busy each worker thread is, and which of them take clients now.
//!
//! A connection is served by one worker at a time, but not always the same one: the
//! server's balancer (`ferrokv-server/src/balance.rs`) decides every tick how many workers
//! serve clients — as few as the load needs — and asks the others to hand their
//! connections on. This is the state it shares with the connections (which move between
//! two batches of requests) and with `DEBUG WORKERS`; atomics only, nothing on the command
//! path but one load per batch.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use ferrokv_store::clock::Stopwatch;

/// The process's workers (one table per process, like the listeners).
pub struct WorkerLoads {
    slots: Box<[Slot]>,
    /// Workers `0..active` take new connections and keep theirs.
    active: AtomicUsize,
    /// The clock of the busy times: read twice per wake-up, so the calibrated counter
    /// rather than `Instant` (a third of the cost here, see `Stopwatch`).
    started: Stopwatch,
}

/// One worker's counters, each on its own cache lines: a worker writes its own slot on
/// every wake-up, and other threads only read it once a tick.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    /// Nanoseconds the worker ran (not parked in its event loop), up to its last park.
    busy_ns: AtomicU64,
    /// When the worker last woke (nanoseconds since start), 0 while it is parked.
    running_since_ns: AtomicU64,
    /// Connections assigned to it (counted when placed, so a burst of accepts spreads).
    connections: AtomicUsize,
    /// How many of its connections it should still hand to another worker.
    shed: AtomicUsize,
}

static LOADS: OnceLock<WorkerLoads> = OnceLock::new();

thread_local! {
    /// This thread's worker index, `usize::MAX` on other threads.
    static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Sets up the table for `count` workers, all of them active (once per process).
pub fn install(count: usize) -> &'static WorkerLoads {
    LOADS.get_or_init(|| WorkerLoads::new(count))
}

/// The table, once the server has started its workers.
pub fn get() -> Option<&'static WorkerLoads> {
    LOADS.get()
}

/// Marks the calling thread as worker `index` (at the thread's start).
pub fn enter_worker(index: usize) {
    INDEX.set(index);
}

/// The calling thread's worker index, if it is a worker.
pub fn current() -> Option<usize> {
    let index = INDEX.get();
    (index != usize::MAX).then_some(index)
}

impl WorkerLoads {
    fn new(count: usize) -> WorkerLoads {
        WorkerLoads {
            slots: (0..count.max(1)).map(|_| Slot::default()).collect(),
            active: AtomicUsize::new(count.max(1)),
            started: Stopwatch::start(),
        }
    }

    pub fn count(&self) -> usize {
        self.slots.len()
    }

    /// How many workers take clients now.
    pub fn active(&self) -> usize {
        self.active.load(Relaxed).clamp(1, self.slots.len())
    }

    pub fn set_active(&self, active: usize) {
        self.active
            .store(active.clamp(1, self.slots.len()), Relaxed);
    }

    pub fn connections(&self, worker: usize) -> usize {
        self.slots[worker].connections.load(Relaxed)
    }

    /// Asks `worker` to hand `count` of its connections on.
    pub fn set_shed(&self, worker: usize, count: usize) {
        self.slots[worker].shed.store(count, Relaxed);
    }

    pub fn shed(&self, worker: usize) -> usize {
        self.slots[worker].shed.load(Relaxed)
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed_ns()
    }

    /// Nanoseconds `worker` has run since start, including the run it is in now.
    pub fn busy_ns(&self, worker: usize) -> u64 {
        let slot = &self.slots[worker];
        let since = slot.running_since_ns.load(Relaxed);
        let done = slot.busy_ns.load(Relaxed);
        if since == 0 {
            done
        } else {
            done + self.now_ns().saturating_sub(since)
        }
    }

    /// Nanoseconds since the table was set up (the clock of [`WorkerLoads::busy_ns`]).
    pub fn clock_ns(&self) -> u64 {
        self.now_ns()
    }

    /// The calling worker woke in its event loop.
    pub fn unparked(&self) {
        if let Some(slot) = current().and_then(|i| self.slots.get(i)) {
            slot.running_since_ns.store(self.now_ns().max(1), Relaxed);
        }
    }

    /// The calling worker is about to wait in its event loop.
    pub fn parked(&self) {
        if let Some(slot) = current().and_then(|i| self.slots.get(i)) {
            let since = slot.running_since_ns.swap(0, Relaxed);
            if since != 0 {
                slot.busy_ns
                    .fetch_add(self.now_ns().saturating_sub(since), Relaxed);
            }
        }
    }

    /// The worker a new connection goes to, counted there at once: the active one with
    /// the fewest connections, passing over `avoid` (a worker running a script past its
    /// start; when it is the only active one, the next worker, which hands the connection
    /// back once the script is over and the connection runs a command).
    pub fn place(&self, avoid: Option<usize>) -> usize {
        let count = self.slots.len();
        let worker = (0..self.active())
            .filter(|&i| Some(i) != avoid)
            .min_by_key(|&i| self.connections(i))
            .or(avoid.map(|busy| (busy + 1) % count))
            .unwrap_or(0);
        self.slots[worker].connections.fetch_add(1, Relaxed);
        worker
    }

    /// A connection of `worker` ended.
    pub fn connection_closed(&self, worker: usize) {
        let slot = &self.slots[worker];
        let _ = slot
            .connections
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Whether the calling worker should hand connections on: one load, checked by each
    /// connection after its batch of replies.
    pub fn should_shed(&self) -> bool {
        current()
            .and_then(|i| self.slots.get(i))
            .is_some_and(|slot| slot.shed.load(Relaxed) > 0)
    }

    /// Takes one of the calling worker's hand-ons, and returns the worker the connection
    /// moves to (its counts moved already), or `None` when there is none to take or no
    /// other active worker to go to.
    pub fn take_shed(&self) -> Option<usize> {
        let from = current()?;
        let slot = self.slots.get(from)?;
        let to = (0..self.active())
            .filter(|&i| i != from)
            .min_by_key(|&i| self.connections(i))?;
        slot.shed
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .ok()?;
        self.connection_closed(from);
        self.slots[to].connections.fetch_add(1, Relaxed);
        Some(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_connections_go_to_the_active_worker_with_the_fewest() {
        let loads = WorkerLoads::new(3);
        loads.set_active(2);
        let placed: Vec<usize> = (0..4).map(|_| loads.place(None)).collect();
        assert_eq!(placed, [0, 1, 0, 1]);
        assert_eq!(loads.connections(2), 0, "an inactive worker takes none");
        // A worker running a script is passed over; alone, the next one takes the client.
        assert_eq!(loads.place(Some(0)), 1);
        loads.set_active(1);
        assert_eq!(loads.place(Some(0)), 1);
        assert_eq!(loads.place(None), 0);
    }

    #[test]
    fn a_shedding_worker_hands_on_what_it_was_asked_to_the_least_loaded() {
        let loads = WorkerLoads::new(3);
        for _ in 0..6 {
            loads.place(None);
        }
        enter_worker(0);
        assert!(!loads.should_shed());
        assert_eq!(loads.take_shed(), None, "nothing asked");
        loads.set_shed(0, 2);
        assert!(loads.should_shed());
        assert_eq!(loads.take_shed(), Some(1));
        assert_eq!(loads.take_shed(), Some(2));
        assert_eq!(loads.take_shed(), None, "two asked, two given");
        assert!(!loads.should_shed());
        assert_eq!(
            (0..3).map(|i| loads.connections(i)).collect::<Vec<_>>(),
            [0, 3, 3]
        );
        // With no other worker active there is nowhere to go.
        loads.set_active(1);
        loads.set_shed(0, 1);
        assert_eq!(loads.take_shed(), None);
        assert_eq!(loads.shed(0), 1);
        enter_worker(usize::MAX);
    }

    #[test]
    fn busy_time_counts_the_run_in_progress() {
        let loads = WorkerLoads::new(1);
        enter_worker(0);
        loads.unparked();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let running = loads.busy_ns(0);
        assert!(running >= 5_000_000, "{running}");
        loads.parked();
        let done = loads.busy_ns(0);
        assert!(done >= running);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(loads.busy_ns(0), done, "parked time is not busy");
        enter_worker(usize::MAX);
    }
}
