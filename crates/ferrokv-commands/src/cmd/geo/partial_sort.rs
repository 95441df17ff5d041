//! The partial quicksort Valkey orders a COUNT-limited search result with.
//!
//! When a search finds more points than its COUNT, Valkey sorts only as much as it needs to
//! put the nearest (or farthest) COUNT points first, with a Bentley–McIlroy three-way
//! quicksort (median-of-three or ninther pivot, insertion sort below 7 elements) that skips
//! partitions lying wholly outside the wanted ranks. Points at equal distances come out in
//! whatever order that algorithm leaves them, and clients see that order, so this module
//! performs the same comparisons and swaps, step for step.

use std::cmp::Ordering;

/// Sorts `items` enough that ranks `first..=last` hold what a full sort would put there.
pub fn partial_sort<T>(
    items: &mut [T],
    first: usize,
    last: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
) {
    sort_range(items, 0, items.len(), first, last, cmp);
}

/// The median of three positions, chosen by the same comparisons as the C code.
fn median_of_three<T>(
    items: &[T],
    a: usize,
    b: usize,
    c: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
) -> usize {
    let less = |x: usize, y: usize| cmp(&items[x], &items[y]) == Ordering::Less;
    let greater = |x: usize, y: usize| cmp(&items[x], &items[y]) == Ordering::Greater;
    if less(a, b) {
        if less(b, c) {
            b
        } else if less(a, c) {
            c
        } else {
            a
        }
    } else if greater(b, c) {
        b
    } else if less(a, c) {
        a
    } else {
        c
    }
}

/// Swaps the `count` elements starting at `a` with those starting at `b`, pairwise.
fn swap_blocks<T>(items: &mut [T], a: usize, b: usize, count: usize) {
    for i in 0..count {
        items.swap(a + i, b + i);
    }
}

/// Whether the subrange `start..start + len` may hold any of the wanted ranks.
fn overlaps(start: usize, len: usize, first: usize, last: usize) -> bool {
    let end = start + len; // exclusive
    !((first < start && last < start) || (first >= end && last >= end))
}

fn sort_range<T>(
    items: &mut [T],
    mut base: usize,
    mut n: usize,
    first: usize,
    last: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
) {
    loop {
        if n < 7 {
            for m in base + 1..base + n {
                let mut l = m;
                while l > base && cmp(&items[l - 1], &items[l]) == Ordering::Greater {
                    items.swap(l, l - 1);
                    l -= 1;
                }
            }
            return;
        }
        let mut pivot = base + n / 2;
        if n > 7 {
            let mut lo = base;
            let mut hi = base + n - 1;
            if n > 40 {
                let d = n / 8;
                lo = median_of_three(items, lo, lo + d, lo + 2 * d, cmp);
                pivot = median_of_three(items, pivot - d, pivot, pivot + d, cmp);
                hi = median_of_three(items, hi - 2 * d, hi - d, hi, cmp);
            }
            pivot = median_of_three(items, lo, pivot, hi, cmp);
        }
        items.swap(base, pivot);

        // Partition into [equal | less | ... | greater | equal], the equal runs at the
        // ends, then swap the equal runs into the middle.
        let (mut pa, mut pb) = (base + 1, base + 1);
        // `pc`/`pd` can step one below `pb`, which is at least `base + 1`, so no underflow.
        let (mut pc, mut pd) = (base + n - 1, base + n - 1);
        loop {
            while pb <= pc {
                let order = cmp(&items[pb], &items[base]);
                if order == Ordering::Greater {
                    break;
                }
                if order == Ordering::Equal {
                    items.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let order = cmp(&items[pc], &items[base]);
                if order == Ordering::Less {
                    break;
                }
                if order == Ordering::Equal {
                    items.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            items.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let end = base + n;
        let r = (pa - base).min(pb - pa);
        swap_blocks(items, base, pb - r, r);
        let r = (pd - pc).min(end - pd - 1);
        swap_blocks(items, pb, end - r, r);

        let less_len = pb - pa;
        if less_len > 1 && overlaps(base, less_len, first, last) {
            sort_range(items, base, less_len, first, last, cmp);
        }
        let greater_len = pd - pc;
        if greater_len <= 1 {
            return;
        }
        base = end - greater_len;
        n = greater_len;
        if !overlaps(base, n, first, last) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wanted_ranks_are_sorted() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..300 {
            let n = (next() % 120) as usize + 1;
            let values: Vec<u64> = (0..n).map(|_| next() % (1 + round % 20)).collect();
            let count = (next() as usize % n) + 1;
            let mut items: Vec<(u64, usize)> = values.iter().copied().zip(0..).collect();
            partial_sort(&mut items, 0, count - 1, &|a, b| a.0.cmp(&b.0));
            let mut sorted = values.clone();
            sorted.sort();
            let got: Vec<u64> = items[..count].iter().map(|p| p.0).collect();
            assert_eq!(got, sorted[..count]);
            // Still a permutation.
            let mut ids: Vec<usize> = items.iter().map(|p| p.1).collect();
            ids.sort();
            assert_eq!(ids, (0..n).collect::<Vec<_>>());
        }
    }
}
