//! FAILOVER: a coordinated switch of roles between this primary and one of its replicas,
//! with no acknowledged write lost.
//!
//! 1. `start`: writes are paused (the failover's own pause slot, so CLIENT UNPAUSE cannot end
//!    it), and so are active expiry, eviction and the replicas' pings (`writes_paused`);
//! 2. waiting-for-sync: the cron (`tick`) waits for the target, or any online replica, to
//!    acknowledge the whole stream. At the timeout the failover is aborted, or with FORCE goes
//!    on regardless;
//! 3. failover-in-progress: this server follows the target and its link sends
//!    `PSYNC <replid> <offset> FAILOVER`, which makes the target a primary before it answers.
//!    The answer (`+CONTINUE` or `+FULLRESYNC`) ends the failover and lifts the pause: the
//!    paused writers then get READONLY. A refusal or an unreachable target aborts: this server
//!    becomes a primary again, under a new replication id, as after REPLICAOF NO ONE.

use std::sync::atomic::Ordering::Relaxed;

use crate::pause::{self, PauseKind, PausePurpose};
use crate::server::Server;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    None,
    WaitingForSync,
    InProgress,
}

impl Phase {
    /// INFO's `master_failover_state`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::None => "no-failover",
            Phase::WaitingForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }
}

#[derive(Debug, Default)]
pub struct Failover {
    pub phase: Phase,
    /// `TO host port`; `None`: the first replica that catches up.
    pub target: Option<(String, u16)>,
    /// Unix ms; `None`: no TIMEOUT given.
    pub deadline_ms: Option<i64>,
    pub force: bool,
}

impl Failover {
    fn target_name(&self) -> String {
        match &self.target {
            Some((host, port)) => format!("{host}:{port}"),
            None => "any replica".to_string(),
        }
    }
}

/// Begins a failover (the command has checked that it may).
pub fn start(server: &Server, target: Option<(String, u16)>, timeout_ms: Option<i64>, force: bool) {
    let now = ferrokv_store::clock::now_ms();
    let mut failover = server.replication.failover.lock();
    *failover = Failover {
        phase: Phase::WaitingForSync,
        target,
        deadline_ms: timeout_ms.map(|t| now.saturating_add(t)),
        force,
    };
    log::info!("FAILOVER requested to {}.", failover.target_name());
    drop(failover);
    // Lifted by the failover's end, not by time. No GETACK is sent: its bytes would move
    // the offset the replicas must reach (each acknowledges once a second anyway).
    server
        .pause
        .pause(PausePurpose::Failover, PauseKind::Write, i64::MAX / 2);
    // Reads of expired keys delete nothing meanwhile (no DEL moves the offset), as on a
    // replica, which this server is about to become.
    ferrokv_store::replica_view::set_replica(true);
}

/// Ends a failover that did not happen: writes resume here. Once this server followed the
/// target, it becomes a primary again. Returns false when no failover runs.
pub fn abort(server: &Server, why: &str) -> bool {
    let mut failover = server.replication.failover.lock();
    let phase = failover.phase;
    if phase == Phase::None {
        return false;
    }
    log::info!("FAILOVER to {} aborted: {why}", failover.target_name());
    *failover = Failover::default();
    drop(failover);
    if phase == Phase::InProgress && server.replication.promote(server.stream) {
        log::info!("MASTER MODE enabled (failover aborted)");
    }
    ferrokv_store::replica_view::set_replica(server.stream.is_proxy());
    pause::unpause_and_wake(server, PausePurpose::Failover);
    true
}

/// The target accepted our `PSYNC ... FAILOVER`: it is the primary now, and the writers
/// held back here go on (to READONLY errors, as this server is a replica).
pub fn completed(server: &Server) {
    let mut failover = server.replication.failover.lock();
    if failover.phase != Phase::InProgress {
        return;
    }
    log::info!("FAILOVER to {} completed.", failover.target_name());
    *failover = Failover::default();
    drop(failover);
    pause::unpause_and_wake(server, PausePurpose::Failover);
}

/// Whether the link to the primary must ask its primary to take over (`PSYNC ... FAILOVER`).
pub fn in_progress(server: &Server) -> bool {
    server.replication.failover.lock().phase == Phase::InProgress
}

/// Called by the cron `hz` times a second: moves a waiting failover on when its replica
/// caught up, or when its time is up.
pub fn tick(server: &Server) {
    let mut failover = server.replication.failover.lock();
    if failover.phase != Phase::WaitingForSync {
        return;
    }
    let end = server.stream.end();
    let caught_up = server.replication.replicas().into_iter().find(|peer| {
        peer.online()
            && peer.ack_offset.load(Relaxed) >= end
            && failover.target.as_ref().is_none_or(|(host, port)| {
                host.eq_ignore_ascii_case(&peer.ip) && *port == peer.listening_port
            })
    });
    let chosen = match caught_up {
        Some(peer) => {
            log::info!(
                "Failover target {}:{} is synced, failing over.",
                peer.ip,
                peer.listening_port
            );
            (peer.ip.clone(), peer.listening_port)
        }
        None => {
            let now = ferrokv_store::clock::now_ms();
            if failover.deadline_ms.is_none_or(|deadline| now < deadline) {
                return;
            }
            match (&failover.target, failover.force) {
                (Some(target), true) => {
                    log::info!(
                        "FAILOVER to {}:{} timed out, forcing the failover.",
                        target.0,
                        target.1
                    );
                    target.clone()
                }
                _ => {
                    drop(failover);
                    abort(server, "Replica never caught up before timeout");
                    return;
                }
            }
        }
    };
    failover.target = Some(chosen.clone());
    failover.phase = Phase::InProgress;
    drop(failover);
    server
        .replication
        .follow(server.stream, &chosen.0, chosen.1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_are_valkeys() {
        assert_eq!(Phase::None.name(), "no-failover");
        assert_eq!(Phase::WaitingForSync.name(), "waiting-for-sync");
        assert_eq!(Phase::InProgress.name(), "failover-in-progress");
    }
}
