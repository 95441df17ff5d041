//! A script running past `busy-reply-threshold` lets the other clients of its worker in.
//!
//! A worker is one thread running every task of its connections (a current-thread tokio
//! runtime), and Lua 5.1 cannot yield from its instruction hook. A script run on the
//! connection task's own stack would therefore hold all of that worker's other clients
//! until it ended: they would neither get BUSY nor be able to send SCRIPT KILL (and a
//! Sentinel whose link sits on that worker would take the primary for dead). So the
//! commands that can run a script (`CommandSpec::runs_lua`) run on a stack of their own, a
//! stackful coroutine (`corosensei`). Once the running script is registered as *the* busy
//! script and past the threshold, its hook calls [`suspend`], which switches back to the
//! connection task; the task yields to the runtime and resumes the script on its next turn.
//! In between, the worker's other tasks run: their commands get BUSY or, if `allow-busy`,
//! run inside the script's hold, as Valkey answers its clients between slices of a long
//! script. Nothing else changes: the script keeps every lock it holds while suspended.
//!
//! A run that is never suspended costs two stack switches; stacks are reused per thread.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// Room for a script's Lua frames and the commands it calls; mapped lazily, with a guard
/// page, so untouched pages cost nothing.
const STACK_SIZE: usize = 8 << 20;
/// Stacks kept per thread for the next runs (one runs at a time, and one more starts while
/// a suspended one waits: a BUSY reply to another client's EVAL).
const STACKS_KEPT: usize = 2;

thread_local! {
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
    /// The yielder of the fiber executing on this thread right now; null outside fibers
    /// (the innermost code running is what counts: a fiber started while another one is
    /// suspended sets its own and puts the other's back when it stops).
    static CURRENT: Cell<*const Yielder<(), ()>> = const { Cell::new(std::ptr::null()) };
    /// How many fibers of this thread are suspended.
    static SUSPENDED: Cell<u32> = const { Cell::new(0) };
}

/// A command run on a stack of its own, driven by [`Fiber::resume`] until it returns.
pub struct Fiber<'a, R> {
    coroutine: Option<Coroutine<(), (), R, DefaultStack>>,
    /// The fiber's yielder (on its own stack), known once it has suspended.
    yielder: *const Yielder<(), ()>,
    suspended: bool,
    /// The run borrows what `'a` covers; see `Drop`.
    _borrows: PhantomData<&'a mut ()>,
}

// SAFETY: a fiber is created, resumed and dropped by one connection task, and a task of a
// worker's current-thread runtime is only ever polled (and dropped) on that worker's
// thread, so the fiber's stack, its Lua frames and the thread-locals they use never meet
// another thread. `Handle::spawn` asks for `Send` only because a handle could name a
// multi-thread runtime.
unsafe impl<R> Send for Fiber<'_, R> {}

/// A stack for a [`Fiber`], reused from this thread's previous runs when one is left.
pub struct Stack(DefaultStack);

impl Stack {
    /// `None` if no stack can be mapped (the caller runs the command on its own stack).
    pub fn take() -> Option<Stack> {
        if let Some(stack) = STACKS.with(|s| s.borrow_mut().pop()) {
            return Some(Stack(stack));
        }
        match DefaultStack::new(STACK_SIZE) {
            Ok(stack) => Some(Stack(stack)),
            Err(e) => {
                log::warn!("Cannot map a stack for a script: {e}");
                None
            }
        }
    }
}

impl<'a, R> Fiber<'a, R> {
    /// Prepares `run` on `stack`; nothing runs until the first [`Fiber::resume`].
    pub fn new(stack: Stack, run: impl FnOnce() -> R + 'a) -> Self {
        let body = move |y: &Yielder<(), ()>, ()| {
            CURRENT.with(|c| c.set(y));
            run()
        };
        // SAFETY: `body` borrows data for `'a`, and the fiber cannot outlive `'a`. The
        // coroutine is driven to its end before the fiber is dropped (see `Drop`), so it
        // never touches the borrowed data afterwards; a fiber that is forgotten is never
        // resumed again either.
        let coroutine = unsafe { Coroutine::with_stack_unchecked(stack.0, body) };
        Fiber {
            coroutine: Some(coroutine),
            yielder: std::ptr::null(),
            suspended: false,
            _borrows: PhantomData,
        }
    }

    /// Runs the command until it returns (`Some`) or its script suspends itself (`None`:
    /// let the runtime run other tasks, then resume again).
    pub fn resume(&mut self) -> Option<R> {
        let coroutine = self.coroutine.as_mut()?;
        if self.suspended {
            self.suspended = false;
            SUSPENDED.with(|s| s.set(s.get() - 1));
        }
        let _restore = RestoreCurrent(CURRENT.with(|c| c.replace(self.yielder)));
        match coroutine.resume(()) {
            CoroutineResult::Yield(()) => {
                // `suspend` used the yielder the fiber set when it started.
                self.yielder = CURRENT.with(Cell::get);
                self.suspended = true;
                SUSPENDED.with(|s| s.set(s.get() + 1));
                None
            }
            CoroutineResult::Return(value) => {
                if let Some(done) = self.coroutine.take() {
                    STACKS.with(|s| {
                        let mut kept = s.borrow_mut();
                        if kept.len() < STACKS_KEPT {
                            kept.push(done.into_stack());
                        }
                    });
                }
                Some(value)
            }
        }
    }
}

impl<R> Drop for Fiber<'_, R> {
    /// A task dropped while its script is suspended (not done by the server, which never
    /// drops a running connection's task) finishes the script here, on this thread: its
    /// locks, its Lua state and what it borrowed must not be left half-way. Unwinding the
    /// stack instead would run through Lua's C frames.
    fn drop(&mut self) {
        while self.coroutine.as_ref().is_some_and(|c| !c.done()) {
            // No suspension from here: the run goes on to its end.
            self.yielder = std::ptr::null();
            let _ = self.resume();
        }
    }
}

/// Puts back the fiber (or none) that was executing before a resume, also when the run
/// panics.
struct RestoreCurrent(*const Yielder<(), ()>);

impl Drop for RestoreCurrent {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Whether the code running now is on a fiber that may suspend.
pub fn can_suspend() -> bool {
    !CURRENT.with(|c| c.get()).is_null()
}

/// Switches back to the task that resumed the running fiber; returns when it resumes the
/// fiber again. Does nothing outside a fiber.
pub fn suspend() {
    let yielder = CURRENT.with(|c| c.get());
    if yielder.is_null() {
        return;
    }
    // SAFETY: `CURRENT` holds the yielder of the fiber executing on this thread (set by
    // `resume` around the switch), which lives on that fiber's stack while it runs.
    unsafe { (*yielder).suspend(()) };
}

/// Whether a script of this thread is suspended: the command running now on this thread is
/// another client's, run between two of the script's slices.
pub fn suspended_here() -> bool {
    SUSPENDED.with(|s| s.get()) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> Stack {
        Stack::take().expect("a stack")
    }

    #[test]
    fn runs_to_the_end_and_hands_back_borrows() {
        let mut seen = Vec::new();
        let mut fiber = Fiber::new(stack(), || {
            seen.push(1);
            suspend();
            seen.push(2);
            7
        });
        assert_eq!(fiber.resume(), None);
        assert!(suspended_here());
        assert!(!can_suspend());
        assert_eq!(fiber.resume(), Some(7));
        assert!(!suspended_here());
        drop(fiber);
        assert_eq!(seen, [1, 2]);
    }

    #[test]
    fn a_dropped_fiber_finishes_its_run() {
        let mut steps = 0;
        {
            let mut fiber = Fiber::new(stack(), || {
                for _ in 0..3 {
                    steps += 1;
                    suspend();
                }
            });
            assert_eq!(fiber.resume(), None);
        }
        assert_eq!(steps, 3);
        assert!(!suspended_here());
    }

    #[test]
    fn fibers_nest_while_one_is_suspended() {
        let mut outer = Fiber::new(stack(), || {
            suspend();
            "outer"
        });
        assert_eq!(outer.resume(), None);
        let mut inner = Fiber::new(stack(), || {
            suspend();
            "inner"
        });
        assert_eq!(inner.resume(), None);
        assert_eq!(inner.resume(), Some("inner"));
        assert!(suspended_here());
        assert_eq!(outer.resume(), Some("outer"));
        assert!(!suspended_here());
    }
}
