//! A connection's wake-up signal: other threads (a PUBLISH, CLIENT KILL, an UNPAUSE, the
//! client that serves a blocked one) raise it, and the connection's task, which waits on its
//! socket and on this signal together, runs again.
//!
//! Why not `tokio::sync::Notify`: the connection loop waits on the signal once per wake-up,
//! and each `Notified` it creates takes Notify's waiter-list mutex twice (enqueue when
//! polled, dequeue when dropped after the socket won). A single waiter needs none of that:
//! a flag and an `AtomicWaker` make the same promise (a signal raised while nobody waits is
//! kept for the next wait) with two atomic operations when it is not raised. Measured with
//! callgrind on unpipelined GETs: see BENCHMARKS.md, session 26.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// One waiter at a time (the connection's task); any number of threads raise it.
#[derive(Default)]
pub struct WakeSignal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl WakeSignal {
    /// Wakes the waiting task, or the next one to wait if none does now.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Completes once the signal is raised (at once if it was raised since the last wait
    /// completed), lowering it. Dropping it unfinished loses nothing: the signal stays raised.
    pub fn raised(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.take() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A raise between the check above and the registration woke the waker that
            // was registered before, maybe none: look again now that ours is in place.
            if self.take() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    fn take(&self) -> bool {
        // The plain load keeps the usual case (not raised) free of a read-modify-write.
        self.raised.load(Ordering::Relaxed) && self.raised.swap(false, Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    fn poll_once(signal: &WakeSignal, cx: &mut Context<'_>) -> Poll<()> {
        let mut wait = std::pin::pin!(signal.raised());
        wait.as_mut().poll(cx)
    }

    #[test]
    fn a_raise_before_the_wait_is_kept_for_it_and_consumed_once() {
        let signal = WakeSignal::default();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(poll_once(&signal, &mut cx).is_pending());
        signal.raise();
        assert!(poll_once(&signal, &mut cx).is_ready());
        assert!(poll_once(&signal, &mut cx).is_pending());
    }

    #[test]
    fn a_wait_dropped_unfinished_loses_no_raise() {
        let signal = WakeSignal::default();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(poll_once(&signal, &mut cx).is_pending());
        signal.raise();
        // The first wait was dropped after it registered; the raise still reaches the next.
        assert!(poll_once(&signal, &mut cx).is_ready());
    }

    #[tokio::test]
    async fn raises_from_other_threads_wake_the_waiter_every_time() {
        let signal = Arc::new(WakeSignal::default());
        for _ in 0..1000 {
            let raiser = {
                let signal = signal.clone();
                std::thread::spawn(move || signal.raise())
            };
            tokio::time::timeout(std::time::Duration::from_secs(10), signal.raised())
                .await
                .expect("a raise from another thread was lost");
            raiser.join().expect("raiser thread");
        }
    }
}
