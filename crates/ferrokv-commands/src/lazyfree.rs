//! Freeing large values off the command path: UNLINK (and DEL with
//! `lazyfree-lazy-user-del yes`) hands a value whose freeing is long work to one background
//! thread, as do FLUSHALL/FLUSHDB ASYNC and a replica's full sync with the databases they
//! detach. INFO shows what waits (`lazyfree_pending_objects`) and what was freed there
//! (`lazyfreed_objects`), as Valkey's lazyfree thread does.
//!
//! A value worth at most [`THRESHOLD`] allocations (`Value::free_effort`) is freed where it
//! is: the queue costs more than the free.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Sender, channel};

use ferrokv_store::Entry;

/// Valkey's `LAZYFREE_THRESHOLD`.
pub const THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// Something to drop, and how many objects it counts for.
type Job = (Box<dyn Send>, u64);

/// The freer's queue; `None` when its thread could not be started (everything is then
/// freed in place).
fn queue() -> Option<&'static Sender<Job>> {
    static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, jobs) = channel::<Job>();
            std::thread::Builder::new()
                .name("ferrokv-lazyfree".into())
                .spawn(move || {
                    for (job, objects) in jobs {
                        drop(job);
                        PENDING.fetch_sub(objects, Relaxed);
                        FREED.fetch_add(objects, Relaxed);
                    }
                })
                .ok()
                .map(|_| sender)
        })
        .as_ref()
}

/// Frees `what`, counted as `objects`, on the background thread.
pub fn free_in_background<T: Send + 'static>(what: T, objects: u64) {
    let Some(queue) = queue() else {
        return;
    };
    PENDING.fetch_add(objects, Relaxed);
    if queue.send((Box::new(what), objects)).is_err() {
        // The thread is gone (the job came back and was dropped here).
        PENDING.fetch_sub(objects, Relaxed);
    }
}

/// Frees deleted entries: each large one on the background thread, the others here.
pub fn free_entries(entries: Vec<Entry>) {
    for entry in entries {
        if entry.value.free_effort() > THRESHOLD {
            free_in_background(entry, 1);
        }
    }
}

/// Frees detached databases on the background thread; each key counts as an object.
pub fn free_databases(dbs: Vec<ferrokv_store::Db>) {
    let keys: usize = dbs.iter().map(ferrokv_store::Db::len).sum();
    if keys > 0 {
        free_in_background(dbs, keys as u64);
    }
}

/// Objects handed over and not freed yet (INFO `lazyfree_pending_objects`).
pub fn pending() -> u64 {
    PENDING.load(Relaxed)
}

/// Objects the background thread freed since the start or CONFIG RESETSTAT (INFO
/// `lazyfreed_objects`).
pub fn freed() -> u64 {
    FREED.load(Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Relaxed);
}
