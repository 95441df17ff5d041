//! The global allocator: jemalloc, wrapped to count the bytes it hands out.
//!
//! Why count instead of asking jemalloc: `stats.allocated` is only refreshed by an `epoch`
//! advance, which merges every arena's statistics under locks (tens of microseconds), far too
//! slow to consult before every write command when `maxmemory` is set. Counting here costs a
//! few instructions per allocation: each thread adds the size-class bytes of what it
//! allocates and frees to a thread-local balance, and folds the balance into one shared
//! atomic when it exceeds [`FLUSH_BYTES`] either way. Reading the total is one atomic load,
//! accurate to within `FLUSH_BYTES` per thread (a worker's own balance is added exactly).
//!
//! What is counted is what jemalloc really reserves for each request (its size class, as
//! Valkey's `zmalloc_size` does), so a 40-byte request counts 48 bytes.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use tikv_jemallocator::Jemalloc;

/// A thread folds its balance into the total once it has moved this far.
pub const FLUSH_BYTES: i64 = 32 * 1024;

static TOTAL: AtomicI64 = AtomicI64::new(0);

thread_local! {
    // `const` and without a destructor: accessing it never allocates and works at any point of
    // a thread's life, which an allocator needs.
    static BALANCE: Cell<i64> = const { Cell::new(0) };
}

fn record(delta: i64) {
    let folded = BALANCE.try_with(|balance| {
        let b = balance.get() + delta;
        if b.abs() >= FLUSH_BYTES {
            TOTAL.fetch_add(b, Relaxed);
            balance.set(0);
        } else {
            balance.set(b);
        }
    });
    if folded.is_err() {
        TOTAL.fetch_add(delta, Relaxed);
    }
}

/// Bytes allocated by the whole process (INFO used_memory, the maxmemory check).
pub fn used_memory() -> u64 {
    let own = BALANCE.try_with(Cell::get).unwrap_or(0);
    (TOTAL.load(Relaxed) + own).max(0) as u64
}

const PAGE: usize = 4096;
const LARGE_MIN: usize = 16 * 1024;

/// The bytes jemalloc (this build: 16-byte quantum, four size classes per doubling up to
/// 16 KiB, whole pages above; checked against `nallocx` by a test) reserves for a request of `size` bytes aligned to `align`.
pub fn size_class(size: usize, align: usize) -> usize {
    let size = if align > 16 {
        size.next_multiple_of(align)
    } else {
        size
    };
    if size <= 8 {
        return 8;
    }
    if size > LARGE_MIN {
        // Large allocations are whole pages in this jemalloc build.
        return size.next_multiple_of(PAGE);
    }
    let group_bits = usize::BITS - (size - 1).leading_zeros();
    let spacing = (1usize << group_bits.saturating_sub(3)).max(16);
    size.next_multiple_of(spacing)
}

/// jemalloc, counting.
pub struct CountingJemalloc;

// SAFETY: every call is forwarded unchanged to jemalloc, which upholds GlobalAlloc's contract;
// the counting touches only a thread-local cell and an atomic and never allocates.
unsafe impl GlobalAlloc for CountingJemalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { Jemalloc.alloc(layout) };
        if !p.is_null() {
            record(size_class(layout.size(), layout.align()) as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { Jemalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            record(size_class(layout.size(), layout.align()) as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(-(size_class(layout.size(), layout.align()) as i64));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Jemalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { Jemalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let old = size_class(layout.size(), layout.align()) as i64;
            let new = size_class(new_size, layout.align()) as i64;
            record(new - old);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_match_jemalloc() {
        for align in [1usize, 8, 16, 32, 64, 128] {
            let mut size = 1;
            while size < 64 << 20 {
                let flags = if align > 16 {
                    align.trailing_zeros() as i32
                } else {
                    0
                };
                // SAFETY: nallocx only computes a size.
                let expected = unsafe { tikv_jemalloc_sys::nallocx(size, flags) };
                assert_eq!(
                    size_class(size, align),
                    expected,
                    "size {size} align {align}"
                );
                size = if size < 4096 {
                    size + 1
                } else {
                    size + size / 7 + 1
                };
            }
        }
    }

    #[test]
    fn counts_what_is_allocated_and_freed() {
        let a = CountingJemalloc;
        let before = used_memory();
        let layout = Layout::from_size_align(FLUSH_BYTES as usize * 3, 8).expect("layout");
        // SAFETY: a valid non-zero layout; freed with the same layout.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert!(used_memory() >= before + 3 * FLUSH_BYTES as u64 - FLUSH_BYTES as u64);
            let p = a.realloc(p, layout, 10);
            a.dealloc(p, Layout::from_size_align(10, 8).expect("layout"));
        }
        assert!(used_memory().abs_diff(before) < FLUSH_BYTES as u64 * 2);
    }

    /// Cost of counting: `cargo test --release -p ferrokv-server --bin ferrokv-server
    /// alloc::tests::overhead -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn overhead() {
        fn time(a: &dyn GlobalAlloc) -> f64 {
            let layouts: Vec<Layout> = (1..=64)
                .map(|i| Layout::from_size_align(i * 8, 8).expect("layout"))
                .collect();
            let mut ptrs = vec![std::ptr::null_mut(); layouts.len()];
            let start = std::time::Instant::now();
            let rounds = 200_000;
            for _ in 0..rounds {
                for (p, l) in ptrs.iter_mut().zip(&layouts) {
                    // SAFETY: valid layouts, freed with the same layout below.
                    *p = unsafe { a.alloc(*l) };
                }
                for (p, l) in ptrs.iter().zip(&layouts) {
                    // SAFETY: allocated above with `l`.
                    unsafe { a.dealloc(*p, *l) };
                }
            }
            start.elapsed().as_nanos() as f64 / (rounds * layouts.len()) as f64
        }
        for _ in 0..3 {
            let plain = time(&Jemalloc);
            let counting = time(&CountingJemalloc);
            println!("alloc+free pair: jemalloc {plain:.2} ns, counting {counting:.2} ns");
        }
    }
}
