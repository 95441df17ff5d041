//! Server-wide client pauses (CLIENT PAUSE, and later failover and shutdown).
//!
//! A pause holds back either every command or only the commands that may change the dataset
//! (`write` / `may_replicate`) until its end time or until it is lifted. Dispatch asks
//! [`ClientPause::blocks`] before running a command; a held-back command is not answered with
//! an error: dispatch reports it as postponed and the connection task waits (a timer to the
//! pause's end, or a wake-up when it is lifted) and then submits the same request again, so a
//! client's commands resume in their original order.
//!
//! Each purpose (CLIENT PAUSE, failover, shutdown) has its own slot, as in Valkey: lifting the
//! CLIENT PAUSE does not end a failover's pause. Within a slot the newest request sets what is
//! paused and the later of the two end times wins.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering::SeqCst};

use parking_lot::Mutex;

use crate::client::flags;
use crate::server::Server;

/// What a pause holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseKind {
    /// Commands flagged `write` or `may_replicate`.
    Write = 1,
    /// Every command.
    All = 2,
}

/// Who asked for a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePurpose {
    ClientCommand = 0,
    Failover = 1,
    Shutdown = 2,
}

const PURPOSES: usize = 3;

impl PausePurpose {
    const ALL: [PausePurpose; PURPOSES] = [
        PausePurpose::ClientCommand,
        PausePurpose::Failover,
        PausePurpose::Shutdown,
    ];

    /// INFO `paused_reason`.
    pub fn info_name(self) -> &'static str {
        match self {
            PausePurpose::ClientCommand => "client_pause",
            PausePurpose::Failover => "failover_in_progress",
            PausePurpose::Shutdown => "shutdown_in_progress",
        }
    }
}

#[derive(Default)]
struct Slot {
    /// 0: no pause; otherwise a `PauseKind` value.
    kind: AtomicU8,
    end_ms: AtomicI64,
}

#[derive(Default)]
pub struct ClientPause {
    slots: [Slot; PURPOSES],
    /// Serializes changes; readers only load the atomics.
    update: Mutex<()>,
    /// Clients whose command waits for a pause to end: Valkey counts them in INFO
    /// `blocked_clients`, and tests wait on that count to know a command was held back.
    waiting: AtomicUsize,
}

impl ClientPause {
    /// Pauses `kind` commands until `end_ms` (Unix ms) for `purpose`.
    pub fn pause(&self, purpose: PausePurpose, kind: PauseKind, end_ms: i64) {
        let _guard = self.update.lock();
        let slot = &self.slots[purpose as usize];
        slot.kind.store(kind as u8, SeqCst);
        if slot.end_ms.load(SeqCst) < end_ms {
            slot.end_ms.store(end_ms, SeqCst);
        }
        self.publish_freeze();
    }

    /// Tells the store until when expired keys must stay (every pause holds back writes).
    fn publish_freeze(&self) {
        let until = self
            .slots
            .iter()
            .filter(|slot| slot.kind.load(SeqCst) != 0)
            .map(|slot| slot.end_ms.load(SeqCst))
            .max()
            .unwrap_or(0);
        ferrokv_store::replica_view::set_frozen_until(until);
    }

    /// Lifts the pause of `purpose`. The caller wakes the clients waiting on it.
    pub fn unpause(&self, purpose: PausePurpose) {
        let _guard = self.update.lock();
        let slot = &self.slots[purpose as usize];
        slot.kind.store(0, SeqCst);
        slot.end_ms.store(0, SeqCst);
        self.publish_freeze();
    }

    /// If a command that may write (`may_write`) or not must wait at `now_ms`, the time
    /// (Unix ms) until which it must wait at most; `None` when it may run.
    pub fn blocks(&self, may_write: bool, now_ms: i64) -> Option<i64> {
        let mut until = None;
        for slot in &self.slots {
            let kind = slot.kind.load(SeqCst);
            if kind == 0 {
                continue;
            }
            let end = slot.end_ms.load(SeqCst);
            let applies = kind == PauseKind::All as u8 || may_write;
            if applies && end > now_ms {
                until = Some(until.map_or(end, |u: i64| u.max(end)));
            }
        }
        until
    }

    /// [`Self::blocks`] now; the clock is read only while a pause is set (the common case
    /// spares a clock read for each queued command of a transaction).
    pub fn blocks_now(&self, may_write: bool) -> Option<i64> {
        if self.slots.iter().all(|slot| slot.kind.load(SeqCst) == 0) {
            return None;
        }
        self.blocks(may_write, ferrokv_store::clock::now_ms())
    }

    /// A client starts waiting for a pause to end; the guard counts it until dropped.
    pub fn wait(&self) -> PauseWait<'_> {
        self.waiting.fetch_add(1, SeqCst);
        PauseWait(self)
    }

    /// Clients waiting for a pause to end now.
    pub fn waiting_clients(&self) -> usize {
        self.waiting.load(SeqCst)
    }

    /// The pause INFO reports at `now_ms`: of those in force, one that holds back every
    /// command over one that holds back writes, then the one lasting longest.
    pub fn strongest(&self, now_ms: i64) -> Option<(PausePurpose, PauseKind, i64)> {
        let mut best: Option<(PausePurpose, PauseKind, i64)> = None;
        for purpose in PausePurpose::ALL {
            let slot = &self.slots[purpose as usize];
            let kind = match slot.kind.load(SeqCst) {
                k if k == PauseKind::All as u8 => PauseKind::All,
                k if k == PauseKind::Write as u8 => PauseKind::Write,
                _ => continue,
            };
            let end = slot.end_ms.load(SeqCst);
            if end <= now_ms {
                continue;
            }
            let rank = |kind: PauseKind, end: i64| (kind == PauseKind::All, end);
            if best.is_none_or(|(_, k, e)| rank(kind, end) > rank(k, e)) {
                best = Some((purpose, kind, end));
            }
        }
        best
    }

    /// Whether any pause holds back writes now (for INFO and FAILOVER).
    pub fn is_paused(&self, now_ms: i64) -> bool {
        self.blocks(true, now_ms).is_some()
    }
}

/// One client counted in [`ClientPause::waiting_clients`] while it lives.
pub struct PauseWait<'a>(&'a ClientPause);

impl Drop for PauseWait<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, SeqCst);
    }
}

/// Lifts the pause of `purpose` and wakes the clients waiting on it, so they retry at once
/// instead of at the pause's end time.
pub fn unpause_and_wake(server: &Server, purpose: PausePurpose) {
    server.pause.unpause(purpose);
    wake_paused_clients(server);
}

/// Wakes every client waiting on a pause (after a pause was lifted or shortened).
pub fn wake_paused_clients(server: &Server) {
    for client in server.clients.all() {
        // Read after the pause state changed (both SeqCst): a client that set PAUSED before
        // this load is woken; one that sets it later re-checks the pause before waiting.
        if client.flags() & flags::PAUSED != 0 {
            client.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_pause_holds_back_only_writes_until_its_end() {
        let p = ClientPause::default();
        p.pause(PausePurpose::ClientCommand, PauseKind::Write, 1000);
        assert_eq!(p.blocks(true, 500), Some(1000));
        assert_eq!(p.blocks(false, 500), None);
        assert_eq!(p.blocks(true, 1000), None);
    }

    #[test]
    fn newest_kind_wins_and_later_end_is_kept() {
        let p = ClientPause::default();
        p.pause(PausePurpose::ClientCommand, PauseKind::All, 2000);
        p.pause(PausePurpose::ClientCommand, PauseKind::Write, 1000);
        assert_eq!(p.blocks(false, 500), None);
        assert_eq!(p.blocks(true, 1500), Some(2000));
    }

    #[test]
    fn info_reports_the_strongest_pause_in_force() {
        let p = ClientPause::default();
        assert_eq!(p.strongest(0), None);
        p.pause(PausePurpose::Failover, PauseKind::Write, 3000);
        p.pause(PausePurpose::ClientCommand, PauseKind::All, 2000);
        assert_eq!(
            p.strongest(500),
            Some((PausePurpose::ClientCommand, PauseKind::All, 2000))
        );
        assert_eq!(
            p.strongest(2500),
            Some((PausePurpose::Failover, PauseKind::Write, 3000))
        );
        assert_eq!(p.strongest(3000), None);
    }

    #[test]
    fn unpause_lifts_only_its_own_purpose() {
        let p = ClientPause::default();
        p.pause(PausePurpose::ClientCommand, PauseKind::All, 2000);
        p.pause(PausePurpose::Failover, PauseKind::Write, 3000);
        p.unpause(PausePurpose::ClientCommand);
        assert_eq!(p.blocks(false, 0), None);
        assert_eq!(p.blocks(true, 0), Some(3000));
    }
}
