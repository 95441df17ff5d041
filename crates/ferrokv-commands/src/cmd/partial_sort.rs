//! The partial quicksort Valkey orders a limited result with (`pqsort`): GEOSEARCH ...
//! COUNT and SORT ... BY ... LIMIT.
//!
//! Valkey sorts only as much as it needs to put the wanted ranks in place, with a
//! Bentley–McIlroy three-way quicksort (median-of-three or ninther pivot, insertion sort
//! below 7 elements) that skips partitions lying wholly outside the wanted ranks. Elements
//! that compare equal come out in whatever order that algorithm leaves them, and clients
//! see that order, so this module performs the same comparisons and swaps, step for step.

use std::cmp::Ordering;

/// Valkey's partial quicksort (`pqsort`, Bentley and McIlroy's quicksort that only sorts the
/// parts overlapping positions `lo..=hi`), step for step: for elements that compare equal it
/// leaves the order Valkey leaves, which a SORT BY ... LIMIT reply shows. Valkey recurses into
/// the lower part and loops on the upper one; the parts are disjoint, so a work list gives
/// the same result without deep recursion on unlucky inputs.
pub fn partial_sort<T>(
    v: &mut [T],
    lo: usize,
    hi: usize,
    cmp: &mut impl FnMut(&T, &T) -> Ordering,
) {
    let overlaps = |start: usize, len: usize| !(hi < start || lo >= start + len);
    let mut work = vec![(0, v.len())];
    while let Some((a, n)) = work.pop() {
        if n < 7 {
            for m in a + 1..a + n {
                let mut l = m;
                while l > a && cmp(&v[l - 1], &v[l]) == Ordering::Greater {
                    v.swap(l, l - 1);
                    l -= 1;
                }
            }
            continue;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = median_of_three(v, pl, pl + d, pl + 2 * d, cmp);
                pm = median_of_three(v, pm - d, pm, pm + d, cmp);
                pn = median_of_three(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = median_of_three(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        // Equal elements gather at both ends ([a+1, pa) and (pd, a+n)), smaller ones after
        // the first group, larger ones before the second.
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                match cmp(&v[pb], &v[a]) {
                    Ordering::Greater => break,
                    Ordering::Equal => {
                        v.swap(pa, pb);
                        pa += 1;
                    }
                    Ordering::Less => {}
                }
                pb += 1;
            }
            while pb <= pc {
                match cmp(&v[pc], &v[a]) {
                    Ordering::Less => break,
                    Ordering::Equal => {
                        v.swap(pc, pd);
                        pd -= 1;
                    }
                    Ordering::Greater => {}
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        swap_ranges(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        swap_ranges(v, pb, pn - r, r);
        let upper = pd - pc;
        if upper > 1 && overlaps(pn - upper, upper) {
            work.push((pn - upper, upper));
        }
        let lower = pb - pa;
        if lower > 1 && overlaps(a, lower) {
            work.push((a, lower));
        }
    }
}

fn median_of_three<T>(
    v: &[T],
    a: usize,
    b: usize,
    c: usize,
    cmp: &mut impl FnMut(&T, &T) -> Ordering,
) -> usize {
    if cmp(&v[a], &v[b]) == Ordering::Less {
        if cmp(&v[b], &v[c]) == Ordering::Less {
            b
        } else if cmp(&v[a], &v[c]) == Ordering::Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Ordering::Greater {
        b
    } else if cmp(&v[a], &v[c]) == Ordering::Less {
        a
    } else {
        c
    }
}

/// Swaps `v[a..a+n]` with `v[b..b+n]` (disjoint).
fn swap_ranges<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn equal_elements_end_where_valkeys_partial_quicksort_leaves_them() {
        // Sixteen equal elements, LIMIT 0 15 (valkey 9.1.2: SORT l BY nosuch_* ALPHA).
        let mut v: Vec<u8> = (b'a'..=b'p').collect();
        partial_sort(&mut v, 0, 14, &mut |_, _| Ordering::Equal);
        assert_eq!(&v[..15], b"pbcdefghijklmno");
        // Fewer than seven: an insertion sort, stable.
        let mut v: Vec<u8> = (b'a'..=b'f').collect();
        partial_sort(&mut v, 0, 1, &mut |_, _| Ordering::Equal);
        assert_eq!(v, b"abcdef");
    }

    #[test]
    fn a_partial_sort_puts_the_right_elements_in_its_range() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let n = rng.random_range(0..200usize);
            let distinct = rng.random_range(1..50u32);
            let v: Vec<(u32, usize)> = (0..n).map(|i| (rng.random_range(0..distinct), i)).collect();
            if n == 0 {
                continue;
            }
            let lo = rng.random_range(0..n);
            let hi = rng.random_range(lo..n);
            // Ties broken by the original position: a total order, one right answer.
            let mut partial = v.clone();
            partial_sort(&mut partial, lo, hi, &mut |a, b| a.cmp(b));
            let mut full = v.clone();
            full.sort();
            assert_eq!(partial[lo..=hi], full[lo..=hi], "n {n} lo {lo} hi {hi}");
            // By the value alone, the range holds the right values.
            let mut partial = v.clone();
            partial_sort(&mut partial, lo, hi, &mut |a, b| a.0.cmp(&b.0));
            let values: Vec<u32> = partial[lo..=hi].iter().map(|p| p.0).collect();
            let expected: Vec<u32> = full[lo..=hi].iter().map(|p| p.0).collect();
            assert_eq!(values, expected);
        }
    }

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
            partial_sort(&mut items, 0, count - 1, &mut |a, b| a.0.cmp(&b.0));
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
