//! WAIT and WAITAOF: clients parked until enough replicas acknowledged an offset (WAIT), or
//! until the local AOF and enough replicas' AOFs have it fsynced (WAITAOF).
//!
//! A waiting client is parked like a blocked one (`blocking::Parked`) but listed here, not in
//! the key registry: every `REPLCONF ACK` and every local fsync re-counts ([`Waits::on_progress`]),
//! and the connection's deadline asks [`Waits::expire`] for the counts reached so far (both
//! commands answer with them, not a null).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use parking_lot::Mutex;

use super::ReplicaPeer;
use crate::blocking::{Delivery, Wake};
use crate::client::ClientShared;
use crate::server::Server;

/// What a client waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// WAIT: `replicas` replicas acknowledged the offset.
    Acked { replicas: usize },
    /// WAITAOF: the local AOF (when `local`) and `replicas` replicas' AOFs fsynced it.
    Fsynced { local: bool, replicas: usize },
}

struct Waiter {
    client_id: u64,
    offset: u64,
    want: Want,
    delivery: Delivery,
    client: Arc<ClientShared>,
}

#[derive(Default)]
pub struct Waits {
    waiters: Mutex<Vec<Waiter>>,
}

/// Replicas that acknowledged `offset` or more.
pub fn acked(replicas: &[Arc<ReplicaPeer>], offset: u64) -> usize {
    replicas
        .iter()
        .filter(|r| r.ack_offset.load(Relaxed) >= offset)
        .count()
}

/// Replicas whose AOF has `offset` fsynced.
pub fn fsynced(replicas: &[Arc<ReplicaPeer>], offset: u64) -> usize {
    replicas
        .iter()
        .filter(|r| r.aof_ack_offset.load(Relaxed) >= offset)
        .count()
}

/// Whether this server's own AOF has `offset` fsynced (never, with the AOF off).
pub fn fsynced_here(server: &Server, offset: u64) -> bool {
    server.aof.enabled() && server.aof.fsynced_offset() >= offset
}

/// The answer for `want` at `offset` now, and whether it is the final one.
pub fn answer(
    server: &Server,
    replicas: &[Arc<ReplicaPeer>],
    offset: u64,
    want: Want,
) -> (Vec<u8>, bool) {
    match want {
        Want::Acked { replicas: needed } => {
            let n = acked(replicas, offset);
            (format!(":{n}\r\n").into_bytes(), n >= needed)
        }
        Want::Fsynced {
            local,
            replicas: needed,
        } => {
            let here = fsynced_here(server, offset);
            let n = fsynced(replicas, offset);
            let reply = format!("*2\r\n:{}\r\n:{n}\r\n", u8::from(here));
            (reply.into_bytes(), (here || !local) && n >= needed)
        }
    }
}

impl Waits {
    pub fn add(&self, client: Arc<ClientShared>, offset: u64, want: Want, delivery: Delivery) {
        self.waiters.lock().push(Waiter {
            client_id: client.id,
            offset,
            want,
            delivery,
            client,
        });
    }

    /// Clients waiting (INFO `blocked_clients` counts them, as Valkey does).
    pub fn len(&self) -> usize {
        self.waiters.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.lock().is_empty()
    }

    /// After an acknowledgement or a local fsync: answers every waiter whose counts are
    /// reached.
    pub fn on_progress(&self, server: &Server) {
        let replicas = server.replication.replicas();
        let mut done = Vec::new();
        self.waiters.lock().retain(|w| {
            let (reply, reached) = answer(server, &replicas, w.offset, w.want);
            if reached {
                done.push((w.delivery.clone(), w.client.clone(), reply));
            }
            !reached
        });
        for (delivery, client, reply) in done {
            *delivery.lock() = Some(Wake::Reply(reply));
            client.wake();
        }
    }

    /// The client's deadline passed (or it went away): its answer, the counts reached so
    /// far; `None` when it was not waiting here.
    pub fn expire(&self, client_id: u64, server: &Server) -> Option<Wake> {
        let waiter = {
            let mut waiters = self.waiters.lock();
            let at = waiters.iter().position(|w| w.client_id == client_id)?;
            waiters.swap_remove(at)
        };
        let replicas = server.replication.replicas();
        let (reply, _) = answer(server, &replicas, waiter.offset, waiter.want);
        Some(Wake::Reply(reply))
    }
}
