//! The queue between a diskless full sync's snapshot (the sending side, through
//! `sync_job`'s fan-out sink) and a replica connection's task, which writes the pieces to
//! the socket.
//!
//! Shards are serialized by whichever thread touches them first (`ferrokv_persist::snapshot`)
//! and those threads must never wait on a replica's socket, so a piece is queued, not
//! written. Only the saver — which dumps the shards nobody touched, one after another —
//! waits ([`Channel::wait_for_room`], its throttle, called with no lock held) while more
//! than [`SAVER_AHEAD`] bytes are queued: memory in flight is bounded by that plus the
//! shards clients happened to touch meanwhile.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

const SAVER_AHEAD: usize = 8 << 20;

#[derive(Default)]
struct Queue {
    pieces: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Committed: no more pieces. Discarded: the snapshot failed.
    done: Option<bool>,
    /// The receiving side went away: writes fail from now on.
    closed: bool,
}

/// Both ends share this.
pub struct Channel {
    queue: Mutex<Queue>,
    drained: Condvar,
    ready: Notify,
}

impl Channel {
    pub fn new() -> Arc<Channel> {
        Arc::new(Channel {
            queue: Mutex::new(Queue::default()),
            drained: Condvar::new(),
            ready: Notify::new(),
        })
    }

    /// The saver's throttle: waits while the socket is behind.
    pub fn wait_for_room(&self) {
        let mut queue = self.queue.lock();
        while queue.bytes > SAVER_AHEAD && !queue.closed {
            self.drained.wait(&mut queue);
        }
    }

    /// Receiving side: the next piece, `Ok(None)` at the end of a complete snapshot, an error
    /// when it was abandoned.
    pub async fn next(&self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let notified = self.ready.notified();
            {
                let mut queue = self.queue.lock();
                if let Some(piece) = queue.pieces.pop_front() {
                    queue.bytes -= piece.len();
                    self.drained.notify_all();
                    return Ok(Some(piece));
                }
                match queue.done {
                    Some(true) => return Ok(None),
                    Some(false) => return Err(io::Error::other("snapshot abandoned")),
                    None => {}
                }
            }
            notified.await;
        }
    }

    /// Receiving side gone (the replica disconnected): the snapshot's next write fails, which
    /// aborts it.
    pub fn close(&self) {
        let mut queue = self.queue.lock();
        queue.closed = true;
        queue.pieces.clear();
        queue.bytes = 0;
        self.drained.notify_all();
    }

    /// Sending side: queues one piece; fails once the receiving side has gone.
    pub fn push(&self, bytes: &[u8]) -> io::Result<()> {
        let mut queue = self.queue.lock();
        if queue.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "replica connection closed",
            ));
        }
        queue.bytes += bytes.len();
        queue.pieces.push_back(bytes.to_vec());
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// Sending side: the snapshot is complete (`true`) or abandoned.
    pub fn finish(&self, ok: bool) {
        self.queue.lock().done = Some(ok);
        self.ready.notify_one();
    }
}
