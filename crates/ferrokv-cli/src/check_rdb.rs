//! `ferrokv check-rdb FILE`: reads every item of a snapshot with the same reader the server
//! loads with, and prints what valkey-check-rdb prints: version, aux fields, keys per
//! database by type, expiries; on damage, the error and its offset, and a failing status.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use ferrokv_rdb::RdbResult;
use ferrokv_rdb::file::{FileReader, Item};
use ferrokv_rdb::format::Dialect;
use ferrokv_store::NO_EXPIRE;

/// What a pass over the file found.
#[derive(Default)]
struct Summary {
    keys: BTreeMap<usize, BTreeMap<&'static str, u64>>,
    expires: u64,
    already_expired: u64,
    functions: u64,
}

pub fn run(path: &Path) -> ExitCode {
    println!("[offset 0] Checking RDB file {}", path.display());
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            println!("--- RDB ERROR DETECTED ---");
            println!("[offset 0] can't open {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let mut summary = Summary::default();
    match check(BufReader::new(file), &mut summary) {
        Ok(offset) => {
            print_summary(&summary);
            println!("[offset {offset}] \\o/ RDB looks OK! \\o/");
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_summary(&summary);
            println!("--- RDB ERROR DETECTED ---");
            println!("[offset {}] {}", e.offset, e.kind);
            println!("[additional info] in {}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Checks an RDB image at the start of `input` (an AOF's RDB preamble) with the summary
/// printed: the offset just after its checksum, or the offset and reason of the damage.
pub fn check_preamble(input: impl std::io::Read) -> Result<u64, (u64, String)> {
    let mut summary = Summary::default();
    let result = check(input, &mut summary);
    if let Err(e) = &result {
        println!("--- RDB ERROR DETECTED ---");
        println!("[offset {}] {}", e.offset, e.kind);
    }
    print_summary(&summary);
    result.map_err(|e| (e.offset, e.kind.to_string()))
}

/// Reads the whole file; the offset at its end on success.
fn check(input: impl std::io::Read, summary: &mut Summary) -> RdbResult<u64> {
    // As valkey-check-rdb: a newer version is reported and read as far as it is known.
    let mut reader = FileReader::with_version_check(input, true)?;
    let version = match reader.dialect {
        Dialect::Redis(v) => {
            println!("[offset 0] RDB version: REDIS{v:04}");
            v
        }
        Dialect::Valkey(v) => {
            println!("[offset 0] RDB version: VALKEY{v:03}");
            v
        }
    };
    if !reader.dialect.is_known() {
        println!("[offset 9] Foreign RDB version {version} detected");
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut db = 0;
    loop {
        let at = reader.offset();
        match reader.next_item()? {
            Item::Eof => return Ok(reader.offset()),
            Item::Aux { key, value } => println!(
                "[offset {at}] AUX FIELD {} = '{}'",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&value)
            ),
            Item::SelectDb(n) => {
                db = n;
                println!("[offset {at}] Selecting DB ID {n}");
            }
            Item::ResizeDb { keys, volatile } => {
                println!("[offset {at}] Hash table sizes: {keys} keys, {volatile} with expiry")
            }
            Item::Function(_) => summary.functions += 1,
            Item::SlotInfo => {}
            Item::Key {
                value, expire_at, ..
            } => {
                *summary
                    .keys
                    .entry(db)
                    .or_default()
                    .entry(value.object_type().name())
                    .or_default() += 1;
                if expire_at != NO_EXPIRE {
                    summary.expires += 1;
                    if expire_at <= now_ms {
                        summary.already_expired += 1;
                    }
                }
            }
        }
    }
}

fn print_summary(summary: &Summary) {
    let total: u64 = summary.keys.values().flat_map(|t| t.values()).sum();
    println!("[info] {total} keys read");
    for (db, types) in &summary.keys {
        let listed: Vec<String> = types.iter().map(|(t, n)| format!("{n} {t}")).collect();
        println!("[info] db {db}: {}", listed.join(", "));
    }
    println!("[info] {} expires", summary.expires);
    println!("[info] {} already expired", summary.already_expired);
    if summary.functions > 0 {
        println!("[info] {} function libraries", summary.functions);
    }
}

/// For tests: the same check as the binary, on bytes.
#[cfg(test)]
fn check_bytes(bytes: &[u8]) -> Result<u64, ferrokv_rdb::RdbError> {
    check(bytes, &mut Summary::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_a_bad_header() {
        assert!(check_bytes(b"").is_err());
        assert!(check_bytes(b"NOTANRDB0").is_err());
    }
}
