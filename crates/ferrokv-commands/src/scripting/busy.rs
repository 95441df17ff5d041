//! The server-wide "a script is running" state.
//!
//! A script holds every shard of the keyspace for its whole run (atomicity, like EXEC), so
//! a command on another worker thread would wait on a shard lock until the script ends and
//! could never answer BUSY. Instead, dispatch asks [`Busy::wait_or_refuse`] before running
//! a command that is not `allow-busy`: while a script runs it waits (as every Valkey client
//! waits) until the script ends or `busy-reply-threshold` has passed since it started, and
//! then refuses with BUSY (at once for a client of the script's own worker: the script
//! lets it in only past the threshold, see `fiber`). SCRIPT KILL / FUNCTION KILL set a flag that the running script's
//! instruction-count hook checks; a script that wrote cannot be killed (UNKILLABLE), and
//! SHUTDOWN NOSAVE aborts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::context::CmdError;

/// What is running now (FUNCTION STATS shows it).
pub struct Running {
    thread: ThreadId,
    pub started: Instant,
    pub wrote: bool,
    /// The function's name (FCALL), or `None` for an EVAL script.
    pub function: Option<String>,
    /// The command that started it, with its arguments.
    pub command: Vec<Bytes>,
}

#[derive(Default)]
pub struct Busy {
    /// Fast check: is anything running.
    active: AtomicBool,
    kill: AtomicBool,
    /// SHUTDOWN NOSAVE: end whatever runs, writes or not.
    abort: AtomicBool,
    state: Mutex<Option<Running>>,
    ended: Condvar,
    /// Bytes each of the server's Lua states (one per worker thread) uses, one slot per
    /// state (INFO memory sums them). Kept here because it is the server-wide handle every
    /// Lua state holds; a slot per state keeps scripts from writing a shared counter.
    lua_memory: Mutex<Vec<Arc<AtomicUsize>>>,
}

/// Why the running script must stop (the hook raises this).
pub enum Interrupt {
    Killed { function: bool },
    Shutdown,
}

impl Busy {
    /// The memory of all the server's Lua states, as last reported by each.
    pub fn lua_memory(&self) -> usize {
        self.lua_memory
            .lock()
            .iter()
            .map(|slot| slot.load(Relaxed))
            .sum()
    }

    /// A new Lua state's memory slot.
    pub fn lua_memory_slot(&self) -> Arc<AtomicUsize> {
        let slot = Arc::new(AtomicUsize::new(0));
        self.lua_memory.lock().push(slot.clone());
        slot
    }

    /// A Lua state is gone: its memory no longer counts.
    pub fn forget_lua_memory(&self, slot: &Arc<AtomicUsize>) {
        self.lua_memory.lock().retain(|s| !Arc::ptr_eq(s, slot));
    }

    pub fn active(&self) -> bool {
        self.active.load(SeqCst)
    }

    /// Records that a script starts on this thread.
    pub fn begin(&self, function: Option<&str>, command: &[Bytes]) {
        let running = Running {
            thread: this_thread(),
            started: Instant::now(),
            wrote: false,
            function: function.map(str::to_string),
            command: command.to_vec(),
        };
        let mut state = self.state.lock();
        *state = Some(running);
        self.kill.store(false, SeqCst);
        self.active.store(true, SeqCst);
    }

    /// Registers a script that started on this thread at `started` without registering
    /// (one that holds only its keys' shards and has now run long: from here on other
    /// clients wait for it, get BUSY and can kill it, as for any script). Returns false,
    /// registering nothing, while another script is registered.
    pub fn promote(
        &self,
        started: Instant,
        function: Option<&str>,
        command: &[Bytes],
        wrote: bool,
    ) -> bool {
        let mut state = self.state.lock();
        if state.is_some() {
            return false;
        }
        *state = Some(Running {
            thread: this_thread(),
            started,
            wrote,
            function: function.map(str::to_string),
            command: command.to_vec(),
        });
        self.kill.store(false, SeqCst);
        self.active.store(true, SeqCst);
        true
    }

    /// The thread of the registered script, if one runs.
    pub fn running_thread(&self) -> Option<ThreadId> {
        if !self.active() {
            return None;
        }
        self.state.lock().as_ref().map(|r| r.thread)
    }

    /// Records that the script ended, and wakes the threads waiting for it.
    pub fn end(&self) {
        let mut state = self.state.lock();
        *state = None;
        self.active.store(false, SeqCst);
        self.kill.store(false, SeqCst);
        self.ended.notify_all();
    }

    /// The running script wrote to the dataset: it can no longer be killed.
    pub fn mark_wrote(&self) {
        if let Some(running) = self.state.lock().as_mut()
            && running.thread == this_thread()
        {
            running.wrote = true;
        }
    }

    /// What the hook of the running script must do now.
    pub fn interrupt(&self) -> Option<Interrupt> {
        if self.abort.load(Relaxed) {
            return Some(Interrupt::Shutdown);
        }
        if self.kill.load(Relaxed) {
            // Only the registered script is killed, not one running beside it on another
            // thread without registering (it holds only its own keys' shards).
            let state = self.state.lock();
            if let Some(running) = state.as_ref()
                && running.thread == this_thread()
            {
                return Some(Interrupt::Killed {
                    function: running.function.is_some(),
                });
            }
        }
        None
    }

    /// SHUTDOWN: any running script stops at its next hook.
    pub fn abort_all(&self) {
        self.abort.store(true, SeqCst);
    }

    /// Before a command that is not `allow-busy`: waits while a script runs on another
    /// thread, up to `threshold_ms` after it started, then refuses with BUSY.
    pub fn wait_or_refuse(&self, threshold_ms: i64) -> Result<(), CmdError> {
        let me = this_thread();
        let mut state = self.state.lock();
        loop {
            let Some(running) = state.as_ref() else {
                return Ok(());
            };
            if running.thread == me {
                // The script is suspended past the threshold (`fiber`): this is another
                // client's command, run between two of its slices.
                if super::fiber::suspended_here() {
                    return Err(busy_error(running.function.is_some()));
                }
                return Ok(());
            }
            let threshold = Duration::from_millis(threshold_ms.max(0) as u64);
            let elapsed = running.started.elapsed();
            if elapsed >= threshold {
                return Err(busy_error(running.function.is_some()));
            }
            self.ended.wait_for(&mut state, threshold - elapsed);
        }
    }

    /// The BUSY error while the registered script has run past `threshold_ms` (Valkey's
    /// "timed out" script), naming the command that stops its kind.
    pub fn timed_out_error(&self, threshold_ms: i64) -> Option<CmdError> {
        if !self.active() {
            return None;
        }
        let threshold = Duration::from_millis(threshold_ms.max(0) as u64);
        self.state
            .lock()
            .as_ref()
            .filter(|r| r.started.elapsed() >= threshold)
            .map(|r| busy_error(r.function.is_some()))
    }

    /// SCRIPT KILL (`function` false) / FUNCTION KILL (`function` true). Each kills only
    /// its own kind; the other kind gets the BUSY reply that names the right command.
    pub fn kill(&self, function: bool) -> Result<(), CmdError> {
        let state = self.state.lock();
        match state.as_ref() {
            None => Err(CmdError::new("NOTBUSY No scripts in execution right now.")),
            Some(running) if running.wrote => Err(CmdError::new(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            )),
            Some(running) if running.function.is_some() != function => {
                Err(busy_error(running.function.is_some()))
            }
            Some(_) => {
                self.kill.store(true, SeqCst);
                Ok(())
            }
        }
    }

    /// Runs `f` with the running script's description, if one runs.
    pub fn with_running<R>(&self, f: impl FnOnce(Option<&Running>) -> R) -> R {
        f(self.state.lock().as_ref())
    }
}

fn busy_error(function: bool) -> CmdError {
    CmdError::new(if function {
        "BUSY Valkey is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    } else {
        "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    })
}

/// This thread's id (`thread::current()` clones a handle each call; scripts ask per run).
fn this_thread() -> ThreadId {
    thread_local! {
        static ID: ThreadId = std::thread::current().id();
    }
    ID.with(|id| *id)
}
