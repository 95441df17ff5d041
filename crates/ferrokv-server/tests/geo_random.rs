//! Randomized geo searches compared byte for byte with the oracle.
//!
//! A seeded generator fills a geo index with points that stress the search (dense clusters
//! with duplicate positions, so equal distances must come out in Valkey's order; points by
//! the antimeridian and the Mercator limits; points scattered over the globe), then runs a
//! few hundred GEOSEARCH / GEORADIUS / GEOSEARCHSTORE queries of every shape (polygons
//! included), unit, order and COUNT form against ferrokv and valkey-server 9.1. Every reply
//! must be identical: members, order, distances, hashes and coordinates. Bounded: a fixed
//! number of commands.

mod common;

use common::{RawClient, show, start_ferrokv, start_valkey};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[lo, hi]`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const LAT_LIMIT: f64 = 85.05112878;

/// A point somewhere the search has hard cases.
fn random_point(rng: &mut Rng, clusters: &[(f64, f64)]) -> (f64, f64) {
    match rng.below(6) {
        // Near a cluster centre (dense, with exact duplicates from the fixed grid below).
        0 | 1 => {
            let (lon, lat) = clusters[rng.below(clusters.len() as u64) as usize];
            let spread = [0.0, 0.0001, 0.01, 0.5][rng.below(4) as usize];
            let lon = (lon + rng.range(-spread, spread)).clamp(-180.0, 180.0);
            let lat = (lat + rng.range(-spread, spread)).clamp(-LAT_LIMIT, LAT_LIMIT);
            (lon, lat)
        }
        // By the antimeridian.
        2 => {
            let lon = if rng.below(2) == 0 {
                rng.range(179.0, 180.0)
            } else {
                rng.range(-180.0, -179.0)
            };
            (lon, rng.range(-60.0, 60.0))
        }
        // By the Mercator limits.
        3 => {
            let lat = rng.range(75.0, LAT_LIMIT);
            let lat = if rng.below(2) == 0 { lat } else { -lat };
            (rng.range(-180.0, 180.0), lat)
        }
        // On a coarse grid: many points at exactly equal distances from grid centres.
        4 => {
            let lon = (rng.below(41) as f64 - 20.0) * 0.05;
            let lat = (rng.below(41) as f64 - 20.0) * 0.05;
            (lon, lat)
        }
        _ => (rng.range(-180.0, 180.0), rng.range(-LAT_LIMIT, LAT_LIMIT)),
    }
}

fn fmt(v: f64) -> String {
    format!("{v}")
}

/// `BYPOLYGON n lon lat ...`: 3 to 8 vertices around a point, within about `size_m` of it,
/// some on a coarse grid (points on edges and vertices), sometimes closed by repeating the
/// first vertex (which moves the centre distances are measured from).
fn random_polygon(rng: &mut Rng, lon: f64, lat: f64, size_m: f64) -> Vec<String> {
    let reach = (size_m / 111_000.0).clamp(0.0001, 60.0);
    let count = 3 + rng.below(6) as usize;
    let mut vertices: Vec<(f64, f64)> = (0..count)
        .map(|_| {
            let (dlon, dlat) = if rng.below(3) == 0 {
                let step = reach / 4.0;
                (
                    (rng.below(9) as f64 - 4.0) * step,
                    (rng.below(9) as f64 - 4.0) * step,
                )
            } else {
                (rng.range(-reach, reach), rng.range(-reach, reach))
            };
            (
                (lon + dlon).clamp(-180.0, 180.0),
                (lat + dlat).clamp(-LAT_LIMIT, LAT_LIMIT),
            )
        })
        .collect();
    if rng.below(5) == 0 {
        vertices.push(vertices[0]);
    }
    let mut words = vec!["BYPOLYGON".to_string(), vertices.len().to_string()];
    for (lon, lat) in vertices {
        words.extend([fmt(lon), fmt(lat)]);
    }
    words
}

/// One random query: (command words, whether it stores into `dst`).
fn random_query(rng: &mut Rng, clusters: &[(f64, f64)], members: usize) -> (Vec<String>, bool) {
    let units = ["m", "km", "ft", "mi", "KM"];
    let unit = rng.pick(&units);
    let to_m = match unit {
        "m" => 1.0,
        "km" | "KM" => 1000.0,
        "ft" => 0.3048,
        _ => 1609.34,
    };
    // Sizes from a metre to beyond the Earth's size, log-uniform, sometimes zero.
    let size_m = if rng.below(20) == 0 {
        0.0
    } else {
        10f64.powf(rng.range(0.0, 7.5))
    };
    let size = size_m / to_m;
    let (lon, lat) = random_point(rng, clusters);
    let member = format!("p{}", rng.below(members as u64));
    let kind = rng.below(10);
    let mut words: Vec<String> = Vec::new();
    let mut store = false;
    match kind {
        0 => {
            words.extend(["GEORADIUS".into(), "geo".into(), fmt(lon), fmt(lat)]);
            words.extend([fmt(size), unit.into()]);
        }
        1 => {
            words.extend(["GEORADIUSBYMEMBER_RO".into(), "geo".into(), member]);
            words.extend([fmt(size), unit.into()]);
        }
        _ => {
            store = kind == 2;
            if store {
                words.extend(["GEOSEARCHSTORE".into(), "dst".into(), "geo".into()]);
            } else {
                words.extend(["GEOSEARCH".into(), "geo".into()]);
            }
            if rng.below(4) == 0 {
                words.extend(random_polygon(rng, lon, lat, size_m));
            } else {
                if rng.below(3) == 0 {
                    words.extend(["FROMMEMBER".into(), member]);
                } else {
                    words.extend(["FROMLONLAT".into(), fmt(lon), fmt(lat)]);
                }
                if rng.below(2) == 0 {
                    words.extend(["BYRADIUS".into(), fmt(size), unit.into()]);
                } else {
                    let height = size * rng.range(0.2, 3.0);
                    words.extend(["BYBOX".into(), fmt(size), fmt(height), unit.into()]);
                }
            }
        }
    }
    match rng.below(3) {
        0 => words.push("ASC".into()),
        1 => words.push("DESC".into()),
        _ => {}
    }
    if rng.below(2) == 0 {
        words.extend(["COUNT".into(), (1 + rng.below(30)).to_string()]);
        if rng.below(3) == 0 {
            words.push("ANY".into());
        }
    }
    if store {
        if rng.below(2) == 0 {
            words.push("STOREDIST".into());
        }
    } else {
        words.extend(["WITHDIST".into(), "WITHHASH".into(), "WITHCOORD".into()]);
    }
    (words, store)
}

#[test]
fn random_searches_match_the_oracle() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let mut theirs = RawClient::connect(valkey.port).expect("connect valkey");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut failures = Vec::new();
    let mut queries = 0;
    let mut differing = 0;
    // Replies with at least one match, so the test is known to exercise the search.
    let mut non_empty = 0;
    for round in 0..6 {
        for c in [&mut ours, &mut theirs] {
            c.command(&["FLUSHALL"]);
        }
        let clusters: Vec<(f64, f64)> = (0..4)
            .map(|_| random_point(&mut rng, &[(0.0, 0.0), (179.9, 10.0), (-30.0, 84.9)]))
            .collect();
        // Rounds alternate between listpack-sized and skiplist-sized indexes.
        let members = if round % 2 == 0 { 100 } else { 400 };
        for chunk in 0..members / 50 {
            let mut cmd = vec!["GEOADD".to_string(), "geo".to_string()];
            for i in chunk * 50..(chunk + 1) * 50 {
                // The last rounds stack many members on a few exact positions: equal
                // distances everywhere, ordered by Valkey's sorts.
                let (lon, lat) = if round >= 4 && rng.below(3) != 0 {
                    clusters[rng.below(clusters.len() as u64) as usize]
                } else {
                    random_point(&mut rng, &clusters)
                };
                cmd.extend([fmt(lon), fmt(lat), format!("p{i}")]);
            }
            let (a, b) = (ours.command(&cmd), theirs.command(&cmd));
            assert_eq!(show(&a), show(&b), "GEOADD differs");
        }
        for _ in 0..120 {
            let (query, store) = random_query(&mut rng, &clusters, members);
            let mut commands = vec![query];
            if store {
                commands.push(
                    ["ZRANGE", "dst", "0", "-1", "WITHSCORES"]
                        .map(String::from)
                        .to_vec(),
                );
            }
            for cmd in commands {
                queries += 1;
                let (a, b) = (ours.command(&cmd), theirs.command(&cmd));
                if !b.starts_with(b"*0") && !b.starts_with(b":0") && !b.starts_with(b"-") {
                    non_empty += 1;
                }
                if a != b {
                    differing += 1;
                }
                if a != b && failures.len() < 10 {
                    failures.push(format!(
                        "{}\n   ferrokv: {}\n    valkey: {}",
                        cmd.join(" "),
                        show(&a),
                        show(&b)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{differing} of {queries} replies differ; the first {}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{queries} replies compared, {non_empty} with matches");
    assert!(
        non_empty * 3 > queries,
        "too few searches found anything: {non_empty} of {queries}"
    );
}
