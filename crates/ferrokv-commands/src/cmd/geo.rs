//! Geo commands: a geospatial index is a sorted set whose scores are 52-bit geohashes.
//!
//! The geohash arithmetic lives in `ferrokv_store::types::geohash`; this family parses
//! arguments in Valkey's order (so the same error wins), and shapes the replies.
//! Submodules: `members` (GEOADD, GEOPOS, GEODIST, GEOHASH), `search` (GEOSEARCH,
//! GEOSEARCHSTORE, GEORADIUS and their variants; a COUNT-limited result is ordered with
//! `cmd::partial_sort`, Valkey's partial quicksort, whose order of equal distances clients
//! see).

mod members;
mod search;

use crate::context::CmdError;
use crate::spec::{
    ArgList, BeginSearch, CommandSpec, FindKeys, KeyFound, KeySpec, KeysProc, category as cat,
    flag, key_flag as kf,
};

const W: u64 = flag::WRITE;
const RO: u64 = flag::READONLY;
const OOM: u64 = flag::DENYOOM;
const GEO: u64 = cat::GEO;

const READ_KEY: &[KeySpec] = &[KeySpec::single(1, kf::RO | kf::ACCESS)];

/// The destination named after `keyword` (STORE or STOREDIST), searched from `start`.
const fn store_key(keyword: &'static str, start: i32) -> KeySpec {
    KeySpec {
        flags: kf::OW | kf::UPDATE | kf::VARIABLE_FLAGS,
        begin: BeginSearch::Keyword {
            keyword,
            start_from: start,
        },
        find: FindKeys::Range {
            last_key: 0,
            step: 1,
            limit: 0,
        },
    }
}

const GEORADIUS_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kf::RO | kf::ACCESS),
    store_key("STORE", 6),
    store_key("STOREDIST", 6),
];
const GEORADIUSBYMEMBER_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kf::RO | kf::ACCESS),
    store_key("STORE", 5),
    store_key("STOREDIST", 5),
];

/// GEORADIUS and GEORADIUSBYMEMBER name their keys as Valkey's `georadiusGetKeys` finds
/// them: the source, and the argument after the last STORE or STOREDIST from the sixth
/// argument on (the key specs' keyword search would stop at the first). The command's own
/// parser also lets the last one win, so the keys it writes are the keys reported.
const RADIUS_KEYS_PROC: KeysProc = KeysProc::exact(radius_keys);

fn radius_keys(args: &dyn ArgList, found: KeyFound) {
    let argc = args.argc();
    if argc < 2 {
        return;
    }
    found(1, kf::RO | kf::ACCESS);
    let mut destination = None;
    let mut i = 5;
    while i + 1 < argc {
        let arg = args.arg(i);
        if arg.eq_ignore_ascii_case(b"store") || arg.eq_ignore_ascii_case(b"storedist") {
            destination = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    if let Some(at) = destination {
        found(at, kf::OW | kf::UPDATE);
    }
}

const SEARCH_COMPLEXITY: &str = "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape";
const RADIUS_COMPLEXITY: &str = "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.";

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, "geo")
        .flags(W | OOM)
        .categories(GEO)
        .keys(&[KeySpec::single(1, kf::RW | kf::UPDATE)])
        .doc(
            "3.2.0",
            "Adds named points (longitude, latitude) to a geospatial index, creating the key if needed.",
            "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        )
        .handler(members::geoadd),
    CommandSpec::new("geopos", -2, "geo")
        .flags(RO)
        .categories(GEO)
        .keys(READ_KEY)
        .doc(
            "3.2.0",
            "Returns the longitude and latitude of members of a geospatial index.",
            "O(1) for each member requested.",
        )
        .handler(members::geopos),
    CommandSpec::new("geodist", -4, "geo")
        .flags(RO)
        .categories(GEO)
        .keys(READ_KEY)
        .doc(
            "3.2.0",
            "Returns the distance between two members of a geospatial index.",
            "O(1)",
        )
        .handler(members::geodist),
    CommandSpec::new("geohash", -2, "geo")
        .flags(RO)
        .categories(GEO)
        .keys(READ_KEY)
        .doc(
            "3.2.0",
            "Returns the standard geohash strings of members of a geospatial index.",
            "O(1) for each member requested.",
        )
        .handler(members::geohash),
    CommandSpec::new("geosearch", -7, "geo")
        .flags(RO)
        .categories(GEO)
        .keys(READ_KEY)
        .doc(
            "6.2.0",
            "Returns the members of a geospatial index inside a circle, box or polygon.",
            SEARCH_COMPLEXITY,
        )
        .handler(search::geosearch),
    CommandSpec::new("geosearchstore", -8, "geo")
        .flags(W | OOM)
        .categories(GEO)
        .keys(&[
            KeySpec::single(1, kf::OW | kf::UPDATE),
            KeySpec::single(2, kf::RO | kf::ACCESS),
        ])
        .doc(
            "6.2.0",
            "Stores the members of a geospatial index inside a circle, box or polygon as a sorted set.",
            SEARCH_COMPLEXITY,
        )
        .handler(search::geosearchstore),
    CommandSpec::new("georadius", -6, "geo")
        .flags(W | OOM)
        .categories(GEO)
        .keys(GEORADIUS_KEYS)
        .keys_proc(RADIUS_KEYS_PROC)
        .doc(
            "3.2.0",
            "Returns (or stores) the members of a geospatial index within a radius of a point.",
            RADIUS_COMPLEXITY,
        )
        .handler(search::georadius),
    CommandSpec::new("georadius_ro", -6, "geo")
        .flags(RO)
        .categories(GEO)
        .keys(READ_KEY)
        .doc(
            "3.2.10",
            "Returns the members of a geospatial index within a radius of a point.",
            RADIUS_COMPLEXITY,
        )
        .handler(search::georadius_ro),
    CommandSpec::new("georadiusbymember", -5, "geo")
        .flags(W | OOM)
        .categories(GEO)
        .keys(GEORADIUSBYMEMBER_KEYS)
        .keys_proc(RADIUS_KEYS_PROC)
        .doc(
            "3.2.0",
            "Returns (or stores) the members of a geospatial index within a radius of one of its members.",
            RADIUS_COMPLEXITY,
        )
        .handler(search::georadiusbymember),
    CommandSpec::new("georadiusbymember_ro", -5, "geo")
        .flags(RO)
        .categories(GEO)
        .keys(READ_KEY)
        .doc(
            "3.2.10",
            "Returns the members of a geospatial index within a radius of one of its members.",
            RADIUS_COMPLEXITY,
        )
        .handler(search::georadiusbymember_ro),
];

// ---- helpers shared by the submodules ----

/// Valkey compares option words with `strcasecmp`, which stops at a zero byte.
fn is_word(arg: &[u8], word: &str) -> bool {
    let text = arg.split(|&b| b == 0).next().unwrap_or(arg);
    text.eq_ignore_ascii_case(word.as_bytes())
}

/// Metres per unit, or Valkey's error for an unknown unit.
fn unit_to_meters(arg: &[u8]) -> Result<f64, CmdError> {
    Ok(if is_word(arg, "m") {
        1.0
    } else if is_word(arg, "km") {
        1000.0
    } else if is_word(arg, "ft") {
        0.3048
    } else if is_word(arg, "mi") {
        1609.34
    } else {
        return Err(CmdError::err(
            "unsupported unit provided. please use M, KM, FT, MI",
        ));
    })
}

/// A double argument, with a command-specific error text.
fn double_or(arg: &[u8], error: &'static str) -> Result<f64, CmdError> {
    ferrokv_protocol::number::parse_double(arg).ok_or_else(|| CmdError::err(error))
}

/// A longitude, latitude pair within the index limits.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    use ferrokv_store::types::geohash::{LAT_MAX, LAT_MIN, LON_MAX, LON_MIN};
    let lon = double_or(lon, "value is not a valid float")?;
    let lat = double_or(lat, "value is not a valid float")?;
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(CmdError::err(format!(
            "invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// A coordinate as Valkey prints one: the double widened to `long double` and printed with
/// `%.17Lf`, trailing zeros and a bare point removed. Widening is exact, so this is the
/// double's exact decimal expansion correctly rounded to 17 places.
fn format_coordinate(value: f64) -> String {
    let mut text = format!("{value:.17}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

/// A distance as Valkey prints one: rounded to 4 decimals through `llrint(d * 10000)`.
fn format_distance(meters: f64) -> String {
    if meters == 0.0 {
        return "0.0000".into();
    }
    let scaled = (meters * 10000.0).round_ties_even();
    if !(0.0..9.2e18).contains(&scaled) {
        // Beyond what a distance on Earth can be in any unit; keep to printf's form.
        return format!("{meters:.4}");
    }
    let scaled = scaled as u64;
    format!("{}.{:04}", scaled / 10000, scaled % 10000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_print_like_valkey() {
        assert_eq!(
            format_coordinate(13.361389338970184),
            "13.36138933897018433"
        );
        assert_eq!(format_coordinate(180.0), "180");
        assert_eq!(format_coordinate(85.05112878), "85.0511287799999991");
        assert_eq!(format_coordinate(-0.0), "0");
        // Ties at the 17th decimal round to even, as glibc's printf does.
        assert_eq!(format_coordinate(0.5f64.powi(18)), "0.00000381469726562");
    }

    #[test]
    fn distances_print_like_valkey() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(166274.15156960033), "166274.1516");
        assert_eq!(format_distance(0.00005), "0.0000");
        assert_eq!(format_distance(56.4413), "56.4413");
    }

    #[test]
    fn words_stop_at_a_zero_byte() {
        assert!(is_word(b"KM\0x", "km"));
        assert!(!is_word(b"kmx", "km"));
    }
}
