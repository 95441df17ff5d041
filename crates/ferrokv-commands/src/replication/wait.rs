//! WAIT: clients parked until enough replicas acknowledged an offset.
//!
//! A waiting client is parked like a blocked one (`blocking::Parked`) but listed here, not in
//! the key registry: every `REPLCONF ACK` re-counts, and the connection's deadline asks
//! [`Waits::expire`] for the count reached so far (WAIT answers with it, not a null).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use parking_lot::Mutex;

use super::ReplicaPeer;
use crate::blocking::{Delivery, Wake};
use crate::client::ClientShared;

struct Waiter {
    client_id: u64,
    offset: u64,
    needed: usize,
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

fn count_reply(n: usize) -> Wake {
    Wake::Reply(format!(":{n}\r\n").into_bytes())
}

impl Waits {
    pub fn add(&self, client: Arc<ClientShared>, offset: u64, needed: usize, delivery: Delivery) {
        self.waiters.lock().push(Waiter {
            client_id: client.id,
            offset,
            needed,
            delivery,
            client,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.lock().is_empty()
    }

    /// After an acknowledgement: answers every waiter whose count is reached.
    pub fn on_ack(&self, replicas: &[Arc<ReplicaPeer>]) {
        let mut done = Vec::new();
        self.waiters.lock().retain(|w| {
            let n = acked(replicas, w.offset);
            if n >= w.needed {
                done.push((w.delivery.clone(), w.client.clone(), n));
                false
            } else {
                true
            }
        });
        for (delivery, client, n) in done {
            *delivery.lock() = Some(count_reply(n));
            client.wake();
        }
    }

    /// The client's deadline passed (or it went away): its answer, the replicas counted so
    /// far; `None` when it was not waiting here.
    pub fn expire(&self, client_id: u64, replicas: &[Arc<ReplicaPeer>]) -> Option<Wake> {
        let mut waiters = self.waiters.lock();
        let at = waiters.iter().position(|w| w.client_id == client_id)?;
        let waiter = waiters.swap_remove(at);
        Some(count_reply(acked(replicas, waiter.offset)))
    }
}
