//! Shutting down as Valkey does. A primary whose replicas have not acknowledged everything it
//! sent pauses writes and waits for them (at most `shutdown-timeout` seconds), so a planned
//! restart loses no acknowledged write; then it saves if asked or configured and exits. The
//! client that sent SHUTDOWN waits blocked meanwhile (and gets an error if the shutdown
//! fails or is aborted); SHUTDOWN ABORT cancels. A signal (SIGTERM, SIGINT) only marks the
//! shutdown as wanted: the cron starts it with the `shutdown-on-sig*` flags, so SHUTDOWN ABORT
//! can still cancel it before then.

use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::blocking::{Delivery, Wake};
use crate::client::ClientShared;
use crate::pause::{PauseKind, PausePurpose};
use crate::server::Server;

/// What the blocked SHUTDOWN callers get when the shutdown does not happen.
pub const FAILED: &str = "-ERR Errors trying to SHUTDOWN. Check logs.\r\n";

/// SHUTDOWN's modifiers, or a `shutdown-on-sigterm` / `shutdown-on-sigint` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// Save even without `save` rules.
    pub save: bool,
    /// Do not save even with `save` rules.
    pub nosave: bool,
    /// Do not wait for lagging replicas.
    pub now: bool,
    /// Exit even if the final save (or the initial AOF) fails.
    pub force: bool,
}

impl Flags {
    /// A `shutdown-on-sig*` value: `default` or words among save, nosave, now, force (and
    /// Valkey 9's cluster-only safe and failover, which change nothing without a cluster).
    pub fn from_directive(value: &str) -> Flags {
        let mut flags = Flags::default();
        for word in value.split_whitespace() {
            match word {
                "save" => flags.save = true,
                "nosave" => flags.nosave = true,
                "now" => flags.now = true,
                "force" => flags.force = true,
                _ => {}
            }
        }
        flags
    }
}

/// What became of a shutdown request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The process is exiting.
    Exiting,
    /// Replicas are being waited for; the caller (if any) is parked.
    Waiting,
    /// It failed (the final save, the initial AOF): the server goes on.
    Failed,
}

struct Pending {
    deadline_ms: i64,
    flags: Flags,
}

struct Waiter {
    delivery: Delivery,
    client: Arc<ClientShared>,
}

#[derive(Default)]
pub struct Shutdown {
    /// The shutdown that waits for replicas, if one does.
    pending: Mutex<Option<Pending>>,
    /// The SHUTDOWN callers parked until it ends.
    waiters: Mutex<Vec<Waiter>>,
    /// A signal asked for a shutdown (Valkey's `shutdown_asap`): 0 none, else [`Signal`].
    signalled: AtomicU8,
}

/// The signals that ask for a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term = 1,
    Int = 2,
}

impl Shutdown {
    /// A signal arrived. `false`: a SIGINT after a signal already asked for a shutdown,
    /// which means "exit now, whatever it costs" (Valkey: "You insist... exiting now.").
    pub fn signal(&self, signal: Signal) -> bool {
        let before = self.signalled.swap(signal as u8, Relaxed);
        !(signal == Signal::Int && before != 0)
    }

    /// INFO `shutdown_in_milliseconds`: the time left to wait for replicas, while a shutdown
    /// waits for them.
    pub fn remaining_ms(&self, now_ms: i64) -> Option<i64> {
        self.pending
            .lock()
            .as_ref()
            .map(|p| (p.deadline_ms - now_ms).max(0))
    }

    /// A parked SHUTDOWN caller went away: it no longer counts as blocked.
    pub fn forget(&self, client_id: u64) {
        self.waiters.lock().retain(|w| w.client.id != client_id);
    }

    /// SHUTDOWN callers parked now (they count in INFO `blocked_clients`).
    pub fn waiting_clients(&self) -> usize {
        self.waiters.lock().len()
    }
}

/// Whether every replica acknowledged everything sent to it (Valkey's test: each replica's
/// acknowledged offset is the primary's offset; one still syncing is not).
fn replicas_in_sync(server: &Server) -> bool {
    let replicas = server.replication.replicas();
    crate::replication::wait::acked(&replicas, server.stream.end()) == replicas.len()
}

/// Starts a shutdown. `caller`: the SHUTDOWN client, parked when [`Outcome::Waiting`]
/// (a SHUTDOWN while another one waits joins it).
pub fn begin(
    server: &Server,
    mut flags: Flags,
    caller: Option<(Delivery, Arc<ClientShared>)>,
) -> Outcome {
    let now = ferrokv_store::clock::now_ms();
    {
        let mut pending = server.shutdown.pending.lock();
        let park = |caller: Option<(Delivery, Arc<ClientShared>)>| {
            if let Some((delivery, client)) = caller {
                server
                    .shutdown
                    .waiters
                    .lock()
                    .push(Waiter { delivery, client });
            }
        };
        if pending.is_some() {
            park(caller);
            return Outcome::Waiting;
        }
        if crate::loading::refusing() {
            // Saving now would write the half-loaded dataset over the file.
            flags.save = false;
            flags.nosave = true;
        }
        let timeout_s = server.config.load().shutdown_timeout;
        if !flags.now && timeout_s != 0 && !replicas_in_sync(server) {
            *pending = Some(Pending {
                deadline_ms: now + timeout_s * 1000,
                flags,
            });
            park(caller);
            // Ask where each replica stands now rather than at its next second's ACK.
            server.stream.append_replica_only(&[
                Bytes::from_static(b"REPLCONF"),
                Bytes::from_static(b"GETACK"),
                Bytes::from_static(b"*"),
            ]);
            server
                .pause
                .pause(PausePurpose::Shutdown, PauseKind::Write, i64::MAX);
            log::info!("Waiting for replicas before shutting down.");
            return Outcome::Waiting;
        }
    }
    finish(server, flags)
}

/// The cron's part: starts the shutdown a signal asked for, and ends the wait for replicas
/// once they are in sync or the time is up.
pub fn tick(server: &Server) {
    let shutdown = &server.shutdown;
    let waiting = shutdown
        .pending
        .lock()
        .as_ref()
        .map(|p| (p.deadline_ms, p.flags));
    match waiting {
        None => {
            let signal = shutdown.signalled.load(Relaxed);
            if signal == 0 {
                return;
            }
            let config = server.config.load();
            let flags = if signal == Signal::Int as u8 {
                Flags::from_directive(&config.shutdown_on_sigint)
            } else {
                Flags::from_directive(&config.shutdown_on_sigterm)
            };
            if begin(server, flags, None) == Outcome::Failed {
                let name = if signal == Signal::Int as u8 {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                log::warn!(
                    "{name} received but errors trying to shut down the server, check the logs for more information"
                );
            }
        }
        Some((deadline_ms, flags)) => {
            if ferrokv_store::clock::now_ms() >= deadline_ms || replicas_in_sync(server) {
                *shutdown.pending.lock() = None;
                finish(server, flags);
            }
        }
    }
}

/// SHUTDOWN ABORT: cancels a shutdown that waits for replicas or that a signal asked for
/// and the cron has not started. `false` when there is none.
pub fn abort(server: &Server) -> bool {
    let waited = server.shutdown.pending.lock().take().is_some();
    let signalled = server.shutdown.signalled.swap(0, Relaxed) != 0;
    if !waited && !signalled {
        return false;
    }
    cancel(server);
    log::info!("Shutdown manually aborted.");
    true
}

/// The shutdown is off: writes resume, the parked callers get an error.
fn cancel(server: &Server) {
    *server.shutdown.pending.lock() = None;
    server.shutdown.signalled.store(0, Relaxed);
    crate::pause::unpause_and_wake(server, PausePurpose::Shutdown);
    let waiters = std::mem::take(&mut *server.shutdown.waiters.lock());
    for waiter in waiters {
        *waiter.delivery.lock() = Some(Wake::Reply(FAILED.as_bytes().to_vec()));
        waiter.client.wake();
    }
}

/// Reports the replicas, saves as `flags` say, and exits; a failure cancels the shutdown.
fn finish(server: &Server, flags: Flags) -> Outcome {
    let replicas = server.replication.replicas();
    let end = server.stream.end();
    let now_s = ferrokv_store::clock::now_ms() / 1000;
    let mut lagging = 0;
    for replica in &replicas {
        let acked = replica.ack_offset.load(Relaxed);
        if acked < end {
            lagging += 1;
            let lag = if replica.online() {
                now_s - replica.ack_ms.load(Relaxed) / 1000
            } else {
                0
            };
            log::info!(
                "Lagging replica {}:{} reported offset {} behind master, lag={lag}, state={}.",
                replica.ip,
                replica.listening_port,
                end - acked,
                replica.state_name()
            );
        }
    }
    if !replicas.is_empty() {
        log::info!(
            "{} of {} replicas are in sync when shutting down.",
            replicas.len() - lagging,
            replicas.len()
        );
    }
    let mut failed = false;
    if server.aof.writing_initial_file() {
        // The AOF switched on has no complete file yet: exiting now loses the dataset.
        if flags.force {
            log::warn!("Writing initial AOF. Exit anyway.");
        } else {
            log::warn!("Writing initial AOF, can't exit.");
            failed = true;
        }
    }
    if !failed && crate::persistence::save_before_exit(server, flags.save, flags.nosave).is_err() {
        if flags.force {
            log::warn!("Error trying to save the DB. Exit anyway.");
        } else {
            log::warn!("Error trying to save the DB, can't exit.");
            failed = true;
        }
    }
    if failed {
        log::warn!("Errors trying to shut down the server. Check the logs for more information.");
        cancel(server);
        return Outcome::Failed;
    }
    server.request_shutdown();
    Outcome::Exiting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_values_become_flags() {
        assert_eq!(Flags::from_directive("default"), Flags::default());
        let flags = Flags::from_directive("nosave now force");
        assert!(flags.nosave && flags.now && flags.force && !flags.save);
        assert!(Flags::from_directive("save").save);
        assert_eq!(Flags::from_directive("safe failover"), Flags::default());
    }

    #[test]
    fn a_second_sigint_insists() {
        let shutdown = Shutdown::default();
        assert!(shutdown.signal(Signal::Term));
        assert!(!shutdown.signal(Signal::Int));
        let shutdown = Shutdown::default();
        assert!(shutdown.signal(Signal::Int));
        assert!(!shutdown.signal(Signal::Int));
    }
}
