//! How many workers serve clients: as few as the load needs.
//!
//! Every worker could take clients from the start, but spreading them only pays when one
//! worker cannot keep up and a core is free for another. Measured on this 2-vCPU VM with
//! redis-benchmark beside the server (BENCHMARKS.md, session 22): 50 clients spread over
//! two workers give each worker half the batch per wake-up — twice the wake-ups, context
//! switches with the client, p99 1.5–3x what one worker gives, and no more requests served.
//! So the balancer, on the acceptor thread, looks every [`TICK`] at how long each worker
//! ran (`WorkerLoads`, counted between its waits in the event loop) and how idle the
//! machine's cores are, and sets how many workers serve clients ([`Policy`]): more workers
//! when those serving are saturated and cores are idle — kept only if they serve more, as
//! a trial — and one fewer when the load would fit on fewer with room to spare. New
//! connections go to the active worker
//! with the fewest connections; a worker asked to shed connections hands them on, one by
//! one between two batches of requests (`connection.rs`), to the active worker with the
//! fewest. `active-worker-threads N` fixes the number instead.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrokv_commands::Server;
use ferrokv_commands::worker_load::{self, WorkerLoads};

use crate::connection::{self, Detached, Session};
use crate::network::Workers;

/// How often the balancer looks.
pub const TICK: Duration = Duration::from_millis(100);
/// Mean busy fraction at which the serving workers count as saturated.
const SATURATED: f64 = 0.85;
/// Idle cores (of the whole machine) another worker needs to be worth waking.
const SPARE_CORE: f64 = 0.5;
/// Saturated ticks in a row before workers are added (one tick can be a burst).
const GROW_AFTER: u32 = 2;
/// Busy fraction the load must fit under, spread over one worker fewer, to shrink.
const RELAXED: f64 = 0.5;
/// Relaxed ticks in a row before a worker is let go (a second: a lull between bursts
/// should not send connections back and forth).
const SHRINK_AFTER: u32 = 10;

/// Ticks a grown set of workers serves before its throughput is judged (the first one,
/// while connections move, is not counted).
const TRIAL_TICKS: u32 = 5;
/// How much more a grown set must serve than before to stay.
const KEEP_GAIN: f64 = 1.10;
/// Ticks after a failed trial before the next; doubled by each failure in a row.
const BACKOFF_TICKS: u32 = 50;
const BACKOFF_DOUBLINGS: u32 = 4;

/// The decision, apart from the clock and the counters so it can be tested alone.
///
/// Saturation with idle cores is a reason to try more workers, not proof they help: the
/// clients may be what limits, and more workers then only cost wake-ups. So each growth is
/// a trial: kept if the commands served per tick rose by [`KEEP_GAIN`], undone otherwise,
/// and the next trial waits (longer after each failure in a row).
#[derive(Debug)]
pub struct Policy {
    active: usize,
    hot: u32,
    cool: u32,
    /// Commands served in the last ticks (the baseline of the next trial).
    recent: [f64; 3],
    trial: Option<Trial>,
    backoff: u32,
    failures: u32,
}

#[derive(Debug)]
struct Trial {
    from: usize,
    baseline: f64,
    ticks: u32,
    served: f64,
}

impl Policy {
    pub fn new(active: usize) -> Policy {
        Policy {
            active: active.max(1),
            hot: 0,
            cool: 0,
            recent: [0.0; 3],
            trial: None,
            backoff: 0,
            failures: 0,
        }
    }

    /// The number of workers to serve clients after a tick in which the serving ones were
    /// busy for `busy` (fractions of the tick, one per serving worker) and served `served`
    /// commands, while `idle_cores` cores of the machine were idle, out of `count` workers.
    pub fn step(&mut self, busy: &[f64], idle_cores: f64, served: f64, count: usize) -> usize {
        self.recent.rotate_left(1);
        self.recent[2] = served;
        if let Some(trial) = &mut self.trial {
            trial.ticks += 1;
            if trial.ticks > 1 {
                trial.served += served;
            }
            if trial.ticks >= TRIAL_TICKS {
                let mean = trial.served / f64::from(TRIAL_TICKS - 1);
                if mean < trial.baseline * KEEP_GAIN {
                    self.active = trial.from;
                    self.backoff = BACKOFF_TICKS << self.failures.min(BACKOFF_DOUBLINGS);
                    self.failures += 1;
                } else {
                    self.failures = 0;
                }
                self.trial = None;
                self.hot = 0;
                self.cool = 0;
            }
            return self.active;
        }
        self.backoff = self.backoff.saturating_sub(1);
        let active = self.active.min(count.max(1));
        let total: f64 = busy.iter().sum();
        let mean = total / active as f64;
        let saturated = mean >= SATURATED && idle_cores >= SPARE_CORE && active < count;
        self.hot = if saturated && self.backoff == 0 {
            self.hot + 1
        } else {
            0
        };
        let relaxed = active > 1 && total <= (active - 1) as f64 * RELAXED;
        self.cool = if relaxed { self.cool + 1 } else { 0 };
        if self.hot >= GROW_AFTER {
            // At most double: each new worker's load is only known once it serves.
            let more = (idle_cores.floor() as usize).clamp(1, active);
            self.active = (active + more).min(count);
            self.trial = Some(Trial {
                from: active,
                // The best recent tick: more workers must beat it, not a slow one.
                baseline: self.recent.iter().copied().fold(0.0, f64::max),
                ticks: 0,
                served: 0.0,
            });
            self.hot = 0;
        } else if self.cool >= SHRINK_AFTER {
            self.active = active - 1;
            self.cool = 0;
        } else {
            self.active = active;
        }
        self.active
    }

    /// A fixed number (`active-worker-threads`) replaces the decision.
    pub fn fix(&mut self, active: usize) {
        *self = Policy::new(active);
    }
}

static WORKERS: OnceLock<Arc<Workers>> = OnceLock::new();

/// Starts the balancer on the acceptor's runtime (with one worker there is nothing to do).
pub fn start(server: Arc<Server>, workers: Arc<Workers>) {
    let Some(loads) = worker_load::get() else {
        return;
    };
    let fixed = server.config.load().active_worker_threads as usize;
    loads.set_active(if fixed > 0 { fixed } else { 1 });
    let acceptor = workers.acceptor().clone();
    let _ = WORKERS.set(workers);
    if loads.count() > 1 {
        acceptor.spawn(run(server, loads));
    }
}

/// Moves a connection to worker `to`, where it goes on with its session.
pub fn hand_on(to: usize, server: Arc<Server>, stream: Detached, session: Session) {
    match WORKERS.get() {
        Some(workers) => {
            workers
                .handle(to)
                .spawn(connection::resume(server, stream, session));
        }
        None => log::warn!("No worker to move a client to"),
    }
}

async fn run(server: Arc<Server>, loads: &'static WorkerLoads) {
    let count = loads.count();
    let mut policy = Policy::new(loads.active());
    let mut cpu = MachineCpu::read();
    let mut idle_cores = 0.0;
    let mut busy_before: Vec<u64> = (0..count).map(|i| loads.busy_ns(i)).collect();
    let mut served_before = commands_served();
    let mut clock_before = loads.clock_ns();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let clock = loads.clock_ns();
        let elapsed = clock.saturating_sub(clock_before).max(1) as f64;
        clock_before = clock;
        let busy: Vec<f64> = (0..count)
            .map(|i| {
                let now = loads.busy_ns(i);
                let fraction = now.saturating_sub(busy_before[i]) as f64 / elapsed;
                busy_before[i] = now;
                fraction.min(1.0)
            })
            .collect();
        let served = commands_served();
        let served_in_tick = served.saturating_sub(served_before) as f64;
        served_before = served;
        let before = loads.active();
        let fixed = server.config.load().active_worker_threads as usize;
        let active = if fixed > 0 {
            policy.fix(fixed.min(count));
            fixed.min(count)
        } else {
            let now = MachineCpu::read();
            idle_cores = match (&cpu, &now) {
                (Some(a), Some(b)) => b.idle_cores_since(a),
                // Without /proc/stat the machine is taken to be the server's alone.
                _ => count as f64 - busy.iter().sum::<f64>(),
            };
            cpu = now;
            policy.step(&busy[..before], idle_cores, served_in_tick, count)
        };
        if active != before {
            log::debug!(
                "Workers serving clients: {before} -> {active} (busy {:?}, idle cores {idle_cores:.2})",
                &busy[..before]
            );
            loads.set_active(active);
        }
        assign_sheds(loads, active);
    }
}

/// Commands served since start, all workers together.
fn commands_served() -> u64 {
    ferrokv_commands::stats::sum(|s| s.total_commands.get())
}

/// Asks the workers past `active` to hand on all their connections, and the active ones
/// to hand on what they hold over an even share (plus one, so that an odd count does not
/// keep one connection moving).
fn assign_sheds(loads: &WorkerLoads, active: usize) {
    let count = loads.count();
    let total: usize = (0..count).map(|i| loads.connections(i)).sum();
    let share = total.div_ceil(active.max(1)) + 1;
    for worker in 0..count {
        let held = loads.connections(worker);
        let shed = if worker < active {
            held.saturating_sub(share)
        } else {
            held
        };
        loads.set_shed(worker, shed);
    }
}

/// The machine's CPU time counters (`/proc/stat`'s first line), in clock ticks.
struct MachineCpu {
    idle: u64,
    total: u64,
    cores: usize,
}

impl MachineCpu {
    fn read() -> Option<MachineCpu> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        MachineCpu::parse(&text)
    }

    fn parse(text: &str) -> Option<MachineCpu> {
        let mut lines = text.lines();
        let mut fields = lines.next()?.split_ascii_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let values: Vec<u64> = fields.take(8).map_while(|f| f.parse().ok()).collect();
        if values.len() < 5 {
            return None;
        }
        let cores = lines.take_while(|l| l.starts_with("cpu")).count().max(1);
        Some(MachineCpu {
            idle: values[3] + values[4],
            total: values.iter().sum(),
            cores,
        })
    }

    /// Cores idle on average between `earlier` and this reading.
    fn idle_cores_since(&self, earlier: &MachineCpu) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.idle.saturating_sub(earlier.idle) as f64 / total as f64 * self.cores as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_ticks(policy: &mut Policy, ticks: usize, busy: f64, idle: f64, count: usize) -> usize {
        let mut active = 0;
        for _ in 0..ticks {
            let fractions = vec![busy; policy.active];
            // Served grows with the workers: each trial pays.
            active = policy.step(&fractions, idle, 1000.0 * policy.active as f64, count);
        }
        active
    }

    #[test]
    fn a_worker_that_keeps_up_serves_alone() {
        // Unpipelined clients beside the server: one worker 75% busy, the client on the
        // other core.
        let mut policy = Policy::new(1);
        assert_eq!(run_ticks(&mut policy, 50, 0.75, 0.2, 2), 1);
    }

    #[test]
    fn a_saturated_worker_without_a_free_core_serves_alone() {
        // Pipelined clients beside the server on two cores: the worker is saturated but
        // the client has the other core; a second worker would only take turns with it.
        let mut policy = Policy::new(1);
        assert_eq!(run_ticks(&mut policy, 50, 1.0, 0.1, 2), 1);
    }

    #[test]
    fn saturation_with_idle_cores_adds_workers_after_two_ticks_at_most_doubling() {
        let mut policy = Policy::new(1);
        assert_eq!(
            policy.step(&[0.95], 10.0, 1000.0, 16),
            1,
            "one tick can be a burst"
        );
        assert_eq!(policy.step(&[0.95], 10.0, 1000.0, 16), 2);
        // Each growth is a trial of TRIAL_TICKS, then two saturated ticks again.
        assert_eq!(run_ticks(&mut policy, 5, 0.95, 10.0, 16), 2, "on trial");
        assert_eq!(run_ticks(&mut policy, 2, 0.95, 10.0, 16), 4);
        assert_eq!(run_ticks(&mut policy, 7, 0.95, 10.0, 16), 8);
        assert_eq!(
            run_ticks(&mut policy, 7, 0.95, 2.0, 16),
            10,
            "two idle cores: two more"
        );
        assert_eq!(
            run_ticks(&mut policy, 100, 0.95, 10.0, 16),
            16,
            "never past the count"
        );
    }

    #[test]
    fn a_growth_that_serves_no_more_is_undone_and_tried_again_later() {
        let mut policy = Policy::new(1);
        // The clients limit: one worker or two, 1000 commands a tick.
        let tick = |policy: &mut Policy| {
            let busy = vec![0.95; policy.active];
            policy.step(&busy, 1.0, 1000.0, 2)
        };
        assert_eq!(tick(&mut policy), 1);
        assert_eq!(tick(&mut policy), 2);
        for _ in 0..4 {
            assert_eq!(tick(&mut policy), 2, "on trial");
        }
        assert_eq!(tick(&mut policy), 1, "no gain: undone");
        let ticks_until_grown = |policy: &mut Policy| {
            (1..1000)
                .find(|_| {
                    let busy = vec![0.95; policy.active];
                    policy.step(&busy, 1.0, 1000.0, 2) == 2
                })
                .expect("tried again")
        };
        let first_wait = ticks_until_grown(&mut policy);
        assert_eq!(first_wait, BACKOFF_TICKS as usize + 1);
        for _ in 0..5 {
            tick(&mut policy);
        }
        assert_eq!(policy.active, 1, "undone again");
        assert_eq!(
            ticks_until_grown(&mut policy),
            2 * BACKOFF_TICKS as usize + 1
        );
    }

    #[test]
    fn a_burst_between_calm_ticks_adds_nothing() {
        let mut policy = Policy::new(1);
        for _ in 0..20 {
            assert_eq!(policy.step(&[0.95], 1.0, 1000.0, 2), 1);
            assert_eq!(policy.step(&[0.3], 1.0, 1000.0, 2), 1);
        }
    }

    #[test]
    fn workers_go_when_the_load_fits_on_fewer_after_a_second() {
        let mut policy = Policy::new(4);
        // 4 workers at 35%: 1.4 cores of work fits under 3 × 0.5.
        assert_eq!(run_ticks(&mut policy, 9, 0.35, 1.0, 4), 4);
        assert_eq!(run_ticks(&mut policy, 1, 0.35, 1.0, 4), 3);
        // The same work on 3 workers, 47% each, does not fit under 2 × 0.5; they stay.
        assert_eq!(run_ticks(&mut policy, 30, 0.47, 1.0, 4), 3);
        // Idle: down to one, a second a step.
        assert_eq!(run_ticks(&mut policy, 20, 0.0, 4.0, 4), 1);
        assert_eq!(run_ticks(&mut policy, 20, 0.0, 4.0, 4), 1);
    }

    #[test]
    fn a_fixed_number_replaces_the_decision() {
        let mut policy = Policy::new(1);
        policy.fix(3);
        assert_eq!(policy.step(&[0.9, 0.9, 0.9], 0.0, 1000.0, 4), 3);
    }

    #[test]
    fn idle_cores_come_from_proc_stat() {
        let before = MachineCpu::parse(
            "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0 0 0\nintr 1\n",
        )
        .expect("parses");
        assert_eq!(before.cores, 2);
        let after =
            MachineCpu::parse("cpu  200 0 150 940 10 0 0 0 0 0\ncpu0 0\ncpu1 0\n").expect("parses");
        // 300 ticks passed, 150 of them idle or waiting: one core's worth of two.
        assert!((after.idle_cores_since(&before) - 1.0).abs() < 1e-9);
        assert!(MachineCpu::parse("intr 1\n").is_none());
        assert!(MachineCpu::parse("cpu x y\n").is_none());
    }
}
