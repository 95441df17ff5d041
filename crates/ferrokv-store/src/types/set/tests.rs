//! Encoding rules (as measured on valkey-server 9.1.2) and the fairness of random draws.

use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::HashMap;

fn limits() -> SetLimits {
    SetLimits::default()
}

fn filled(members: &[&str]) -> SetValue {
    let l = limits();
    let mut set = SetValue::create(members[0].as_bytes(), members.len(), &l);
    set.convert_for_count(members.len(), &l);
    for m in members {
        set.add(m.as_bytes(), &l);
    }
    set
}

fn strings(set: &SetValue) -> Vec<String> {
    set.iter()
        .map(|m| String::from_utf8_lossy(&m.to_bytes()).into_owned())
        .collect()
}

fn numbers(range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|n| n.to_string()).collect()
}

#[test]
fn integers_make_a_sorted_intset() {
    let set = filled(&["3", "1", "2", "-5"]);
    assert_eq!(set.encoding(), "intset");
    assert_eq!(strings(&set), ["-5", "1", "2", "3"]);
    // Non-canonical integers are strings.
    assert_eq!(filled(&["01"]).encoding(), "listpack");
    assert_eq!(filled(&["99999999999999999999"]).encoding(), "listpack");
}

#[test]
fn an_intset_given_a_string_becomes_a_listpack_in_numeric_then_insertion_order() {
    let mut set = filled(&["5", "3"]);
    set.add(b"x", &limits());
    set.add(b"1", &limits());
    assert_eq!(set.encoding(), "listpack");
    assert_eq!(strings(&set), ["3", "5", "x", "1"]);
}

#[test]
fn an_intset_past_its_limit_becomes_a_hashtable() {
    let owned = numbers(0..512);
    let members: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut set = filled(&members);
    assert_eq!(set.encoding(), "intset");
    set.add(b"512", &limits());
    assert_eq!(set.encoding(), "hashtable");
    assert_eq!(set.len(), 513);
    // Even when the listpack limit would have room: an intset overflow skips the listpack.
    let small = SetLimits {
        intset_entries: 10,
        ..limits()
    };
    let mut set = SetValue::create(b"1", 1, &small);
    for n in 0..11 {
        set.add(n.to_string().as_bytes(), &small);
    }
    assert_eq!(set.encoding(), "hashtable");
}

#[test]
fn intset_to_listpack_counts_entries_and_the_longest_integer() {
    let owned = numbers(0..128);
    let members: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut full = filled(&members);
    full.add(b"x", &limits());
    assert_eq!(full.encoding(), "hashtable", "129 entries");
    let mut fits = filled(&members[..127]);
    fits.add(b"x", &limits());
    assert_eq!(fits.encoding(), "listpack", "128 entries");
    let narrow = SetLimits {
        listpack_value: 3,
        ..limits()
    };
    for (ints, expected) in [(["1", "-12"], "listpack"), (["5", "-999"], "hashtable")] {
        let mut set = SetValue::create(ints[0].as_bytes(), 2, &narrow);
        for n in ints {
            set.add(n.as_bytes(), &narrow);
        }
        set.add(b"x", &narrow);
        assert_eq!(set.encoding(), expected, "{ints:?}");
    }
}

#[test]
fn listpack_limits() {
    let long = "a".repeat(65);
    assert_eq!(filled(&[&long]).encoding(), "hashtable");
    assert_eq!(filled(&[&"a".repeat(64)]).encoding(), "listpack");
    let owned: Vec<String> = (0..128).map(|i| format!("m{i}")).collect();
    let members: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut set = filled(&members);
    assert_eq!(set.encoding(), "listpack");
    set.add(b"m128", &limits());
    assert_eq!(set.encoding(), "hashtable");
    set.remove(b"m128");
    set.remove(b"m1");
    assert_eq!(set.encoding(), "hashtable", "never converted back");
}

#[test]
fn many_arguments_convert_before_adding() {
    let mut set = filled(&["a", "b"]);
    set.convert_for_count(129, &limits());
    assert_eq!(set.encoding(), "hashtable");
    let mut set = filled(&["1", "2"]);
    set.convert_for_count(512, &limits());
    assert_eq!(set.encoding(), "intset");
    set.convert_for_count(513, &limits());
    assert_eq!(set.encoding(), "hashtable");
    assert_eq!(set.len(), 2);
}

fn counts(draws: impl Iterator<Item = Vec<u8>>) -> HashMap<Vec<u8>, usize> {
    let mut counts = HashMap::new();
    for d in draws {
        *counts.entry(d).or_insert(0) += 1;
    }
    counts
}

/// Each of `n` members drawn `expected` times on average must be within 20% of it; with
/// `expected` >= 2000 that is over 8 standard deviations, and the seeds are fixed anyway.
fn assert_uniform(counts: &HashMap<Vec<u8>, usize>, n: usize, expected: usize) {
    assert_eq!(counts.len(), n, "every member drawn");
    for (m, &c) in counts {
        assert!(
            c * 10 > expected * 8 && c * 10 < expected * 12,
            "{} drawn {c} times, expected about {expected}",
            String::from_utf8_lossy(m)
        );
    }
}

fn each_encoding(n: usize) -> Vec<SetValue> {
    let ints: Vec<String> = numbers(0..n as i64);
    let words: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let mut table = SetValue::Hashtable(MemberTable::default());
    for w in &words {
        table.add(w.as_bytes(), &limits());
    }
    vec![
        filled(&ints.iter().map(String::as_str).collect::<Vec<_>>()),
        filled(&words.iter().map(String::as_str).collect::<Vec<_>>()),
        table,
    ]
}

#[test]
fn single_random_draws_are_uniform_in_every_encoding() {
    let mut rng = StdRng::seed_from_u64(11);
    for set in each_encoding(40) {
        let draws = (0..100_000).map(|_| set.random(&mut rng).unwrap().to_vec());
        assert_uniform(&counts(draws), 40, 2500);
    }
}

#[test]
fn distinct_draws_are_distinct_and_uniform() {
    let mut rng = StdRng::seed_from_u64(12);
    // 5 of 30 (few: sampling) and 25 of 30 (most: shuffle / kept positions).
    for count in [5, 25] {
        for set in each_encoding(30) {
            let mut all = Vec::new();
            let rounds = 12_000;
            for _ in 0..rounds {
                let picked = set.random_distinct(count, &mut rng);
                assert_eq!(picked.len(), count);
                let mut unique: Vec<_> = picked.iter().map(Member::to_vec).collect();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), count, "{}", set.encoding());
                all.extend(unique);
            }
            assert_uniform(&counts(all.into_iter()), 30, rounds * count / 30);
        }
    }
}

#[test]
fn listpack_distinct_draws_keep_listpack_order() {
    let mut rng = StdRng::seed_from_u64(13);
    let set = filled(&["c", "a", "d", "b", "e"]);
    let order = strings(&set);
    for _ in 0..100 {
        let picked: Vec<String> = set
            .random_distinct(3, &mut rng)
            .iter()
            .map(|m| String::from_utf8_lossy(&m.to_bytes()).into_owned())
            .collect();
        let positions: Vec<usize> = picked
            .iter()
            .map(|p| order.iter().position(|o| o == p).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{picked:?}");
    }
}

#[test]
fn pops_remove_what_they_return_and_are_uniform() {
    let mut rng = StdRng::seed_from_u64(14);
    // 3 of 30 pops one by one; 28 of 30 keeps 2 instead (Valkey's two strategies).
    for count in [3, 28] {
        for template in each_encoding(30) {
            let mut all = Vec::new();
            let rounds = 6_000;
            for _ in 0..rounds {
                let mut set = template.clone();
                let popped = set.pop_random_distinct(count, &limits(), &mut rng);
                assert_eq!(popped.len(), count);
                assert_eq!(set.len(), 30 - count);
                for p in &popped {
                    assert!(!set.contains(p) && template.contains(p));
                }
                all.extend(popped);
            }
            assert_uniform(&counts(all.into_iter()), 30, rounds * count / 30);
        }
    }
}

#[test]
fn popping_most_of_a_hashtable_rebuilds_a_compact_set() {
    let mut rng = StdRng::seed_from_u64(15);
    let owned: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let members: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut set = filled(&members);
    assert_eq!(set.encoding(), "hashtable");
    set.pop_random_distinct(190, &limits(), &mut rng);
    assert_eq!((set.encoding(), set.len()), ("listpack", 10));
    let mut set = filled(&members);
    set.pop_random_distinct(100, &limits(), &mut rng);
    assert_eq!((set.encoding(), set.len()), ("hashtable", 100));
    // An intset keeps its encoding and order.
    let owned = numbers(0..100);
    let members: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut set = filled(&members);
    set.pop_random_distinct(90, &limits(), &mut rng);
    assert_eq!(set.encoding(), "intset");
    let kept: Vec<i64> = set
        .iter()
        .map(|m| match m {
            Member::Int(n) => n,
            Member::Bytes(_) => panic!("intset member"),
        })
        .collect();
    assert!(kept.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn small_sets_scan_whole() {
    let set = filled(&["b", "a"]);
    let mut seen = Vec::new();
    assert_eq!(set.scan(0, 1, |m| seen.push(m.to_vec())), 0);
    assert_eq!(seen, [b"b".to_vec(), b"a".to_vec()]);
}
