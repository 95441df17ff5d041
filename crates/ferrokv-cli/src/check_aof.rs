//! `ferrokv check-aof [--fix] [--yes] FILE|DIR|MANIFEST`: validates an append-only file the
//! way valkey-check-aof does, with its messages: a multi-part directory (its manifest, the
//! base in RDB or RESP format, each increment in order) or a single old-style file (which
//! may start with an RDB preamble). For each file: how far it is valid (`ok_up_to`), and
//! the first problem. `--fix` truncates a broken tail, only of the last file (the one the
//! server appends to), after asking (`--yes` answers for the operator).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferrokv_commands::aof::manifest::{FileKind, Manifest};

use crate::check_rdb;

/// How one RESP file parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct Analysis {
    pub size: u64,
    /// Bytes up to the end of the last complete command (outside MULTI/EXEC).
    pub ok_up_to: u64,
    pub ok_up_to_line: u64,
    /// The first problem, with the offset where it was found.
    pub problem: Option<(u64, String)>,
}

fn find_crlf(buf: &[u8], at: usize) -> Option<usize> {
    buf.get(at..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| at + p)
}

/// Walks the commands of a RESP AOF starting at `start` (after an RDB preamble, or 0).
pub fn analyze(buf: &[u8], start: usize) -> Analysis {
    let mut at = start;
    let mut lines = 0u64;
    let mut ok_up_to = start;
    let mut ok_lines = 0u64;
    let mut multi_at: Option<usize> = None;
    let size = buf.len() as u64;
    let problem = loop {
        if at >= buf.len() {
            break multi_at.map(|m| {
                (
                    m as u64,
                    "Reached EOF before reading EXEC for MULTI".to_string(),
                )
            });
        }
        if buf[at] == b'#' {
            // Annotations (`#TS:`) are one line each.
            match find_crlf(buf, at) {
                Some(end) => {
                    at = end + 2;
                    lines += 1;
                    if multi_at.is_none() {
                        ok_up_to = at;
                        ok_lines = lines;
                    }
                    continue;
                }
                None => break Some((at as u64, "Reached EOF inside an annotation".into())),
            }
        }
        let command_at = at;
        match read_command(buf, &mut at, &mut lines) {
            Ok(args) => {
                let name = args.first().map(|a| a.to_ascii_uppercase());
                match name.as_deref() {
                    Some(b"MULTI") => {
                        if multi_at.is_some() {
                            break Some((command_at as u64, "Unexpected MULTI".into()));
                        }
                        multi_at = Some(command_at);
                    }
                    Some(b"EXEC") if multi_at.take().is_none() => {
                        break Some((command_at as u64, "Unexpected EXEC".into()));
                    }
                    _ => {}
                }
                if multi_at.is_none() {
                    ok_up_to = at;
                    ok_lines = lines;
                }
            }
            Err(problem) => break Some(problem),
        }
    };
    Analysis {
        size,
        ok_up_to: ok_up_to as u64,
        ok_up_to_line: ok_lines + 1,
        problem,
    }
}

/// One `*N` command; on a problem, its offset and valkey-check-aof's words for it.
fn read_command<'a>(
    buf: &'a [u8],
    at: &mut usize,
    lines: &mut u64,
) -> Result<Vec<&'a [u8]>, (u64, String)> {
    let header = |at: usize, prefix: u8| -> Result<(i64, usize), (u64, String)> {
        let Some(end) = find_crlf(buf, at) else {
            return Err((at as u64, "Reached EOF before the end of a line".into()));
        };
        if buf[at] != prefix {
            return Err((
                at as u64,
                format!(
                    "Expected prefix '{}', got: '{}'",
                    prefix as char,
                    buf[at].escape_ascii()
                ),
            ));
        }
        let number = std::str::from_utf8(&buf[at + 1..end])
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| (at as u64, "Invalid number".to_string()))?;
        Ok((number, end + 2))
    };
    if buf[*at] != b'*' {
        return Err((*at as u64, "format error".into()));
    }
    let (argc, mut next) = header(*at, b'*')?;
    *lines += 1;
    if argc < 1 {
        return Err((*at as u64, "Invalid argument count".into()));
    }
    let mut args = Vec::new();
    for _ in 0..argc {
        if next >= buf.len() {
            return Err((
                next as u64,
                "Reached EOF before the end of a command".into(),
            ));
        }
        let (len, data_at) = header(next, b'$')?;
        *lines += 1;
        let Ok(len) = usize::try_from(len) else {
            return Err((next as u64, "Invalid bulk length".into()));
        };
        let available = buf.len() - data_at;
        if available < len + 2 {
            return Err((
                data_at as u64,
                format!(
                    "Expected to read {} bytes, got {} bytes",
                    len + 2,
                    available
                ),
            ));
        }
        if &buf[data_at + len..data_at + len + 2] != b"\r\n" {
            return Err((data_at as u64, "Expected \\r\\n after the argument".into()));
        }
        args.push(&buf[data_at..data_at + len]);
        *lines += 1;
        next = data_at + len + 2;
    }
    *at = next;
    Ok(args)
}

/// Whether a file starts with an RDB header (a preamble or an RDB base).
fn is_rdb(bytes: &[u8]) -> bool {
    bytes.starts_with(b"REDIS") || bytes.starts_with(b"VALKEY")
}

pub struct Options {
    pub fix: bool,
    pub yes: bool,
}

/// valkey-check-aof numbers lines across all files of a directory, from 1.
struct LineCounter(std::cell::Cell<u64>);

pub fn run(path: &Path, options: &Options) -> ExitCode {
    let manifest = if path.is_dir() {
        match find_manifest(path) {
            Some(m) => Some(m),
            None => {
                println!("Cannot find an AOF manifest in {}", path.display());
                return ExitCode::FAILURE;
            }
        }
    } else if path.to_string_lossy().ends_with(".manifest") {
        Some(path.to_path_buf())
    } else {
        None
    };
    let ok = match manifest {
        Some(m) => check_multi_part(&m, options),
        None => {
            println!("Start checking Old-Style AOF");
            let lines = LineCounter(std::cell::Cell::new(0));
            check_file(
                path,
                &path.display().to_string(),
                None,
                true,
                options,
                &lines,
            )
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn find_manifest(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.ends_with(".manifest") && !n.starts_with("temp-"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

fn check_multi_part(manifest_path: &Path, options: &Options) -> bool {
    println!("Start checking Multi Part AOF");
    let lines = LineCounter(std::cell::Cell::new(0));
    let text = match std::fs::read_to_string(manifest_path) {
        Ok(t) => t,
        Err(e) => {
            println!("Cannot read file: {}: {e}", manifest_path.display());
            return false;
        }
    };
    let manifest = match Manifest::parse(&text) {
        Ok(m) => m,
        Err(e) => {
            println!("Invalid AOF manifest file {}: {e}", manifest_path.display());
            return false;
        }
    };
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    let last = manifest
        .incrs
        .last()
        .or(manifest.base.as_ref())
        .map(|e| e.name.clone());
    if let Some(base) = &manifest.base {
        let path = dir.join(&base.name);
        let format = if base.name.ends_with(".rdb") {
            "RDB"
        } else {
            "RESP"
        };
        println!("Start to check BASE AOF ({format} format).");
        if !check_file(
            &path,
            &base.name,
            Some(FileKind::Base),
            last.as_deref() == Some(base.name.as_str()),
            options,
            &lines,
        ) {
            return false;
        }
    }
    if !manifest.incrs.is_empty() {
        println!("Start to check INCR files.");
    }
    for incr in &manifest.incrs {
        let is_last = last.as_deref() == Some(incr.name.as_str());
        if !check_file(
            &dir.join(&incr.name),
            &incr.name,
            Some(FileKind::Incr),
            is_last,
            options,
            &lines,
        ) {
            return false;
        }
    }
    println!("All AOF files and manifest are valid");
    true
}

/// Checks one file; `kind` is None for an old-style single file. Returns whether it is
/// valid (or was fixed).
fn check_file(
    path: &Path,
    name: &str,
    kind: Option<FileKind>,
    is_last: bool,
    options: &Options,
    lines: &LineCounter,
) -> bool {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            println!("Cannot read file: {}: {e}", path.display());
            return false;
        }
    };
    // An RDB base, or the RDB preamble of an old-style file, then (old style) a RESP tail.
    let mut start = 0usize;
    if is_rdb(&bytes) {
        if kind.is_none() {
            println!(
                "The AOF appears to start with an RDB preamble.\nChecking the RDB preamble to start:"
            );
        }
        match check_rdb::check_preamble(&bytes[..]) {
            Ok(end) => {
                start = end as usize;
                if kind == Some(FileKind::Base) {
                    if start < bytes.len() {
                        println!(
                            "RDB base file {name} has {} bytes after its end",
                            bytes.len() - start
                        );
                        return false;
                    }
                    println!("BASE AOF {name} is valid");
                    return true;
                }
                println!("RDB preamble is OK, proceeding with AOF tail...");
            }
            Err(_) => {
                println!("RDB preamble of AOF file is not sane, aborting.");
                return false;
            }
        }
    }
    let analysis = analyze(&bytes, start);
    let ok_up_to_line = lines.0.get() + analysis.ok_up_to_line;
    lines.0.set(ok_up_to_line - 1);
    if let Some((offset, reason)) = &analysis.problem {
        if reason == "format error" {
            println!("AOF {name} format error");
        } else {
            println!("0x{offset:>16x}: {reason}");
        }
    }
    println!(
        "AOF analyzed: filename={name}, size={}, ok_up_to={}, ok_up_to_line={}, diff={}",
        analysis.size,
        analysis.ok_up_to,
        ok_up_to_line,
        analysis.size - analysis.ok_up_to
    );
    if analysis.problem.is_none() {
        match kind {
            Some(FileKind::Base) => println!("BASE AOF {name} is valid"),
            Some(_) => println!("INCR AOF {name} is valid"),
            None => println!("AOF {name} is valid"),
        }
        return true;
    }
    if !options.fix {
        println!("AOF {name} is not valid. Use the --fix option to try fixing it.");
        return false;
    }
    if !is_last {
        println!("Failed to truncate AOF {name} because it is not the last file");
        return false;
    }
    println!(
        "This will shrink the AOF {name} from {} bytes, with {} bytes, to {} bytes",
        analysis.size,
        analysis.size - analysis.ok_up_to,
        analysis.ok_up_to
    );
    print!("Continue? [y/N]: ");
    let _ = std::io::stdout().flush();
    if !options.yes {
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !answer.trim_start().starts_with(['y', 'Y']) {
            println!("Aborting...");
            return false;
        }
    }
    let truncated = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(analysis.ok_up_to)?;
            f.sync_all()
        });
    match truncated {
        Ok(()) => {
            println!("Successfully truncated AOF {name}");
            true
        }
        Err(e) => {
            println!("Failed to truncate AOF {name}: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_valid_prefix() {
        let good =
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:1\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n";
        let a = analyze(good, 0);
        assert_eq!(a.problem, None);
        assert_eq!(a.ok_up_to, good.len() as u64);

        let mut cut = good.to_vec();
        cut.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nab");
        let a = analyze(&cut, 0);
        assert_eq!(a.ok_up_to, good.len() as u64);
        let (_, reason) = a.problem.unwrap();
        assert_eq!(reason, "Expected to read 7 bytes, got 2 bytes");

        let mut multi = good.to_vec();
        multi.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$1\r\na\r\n");
        let a = analyze(&multi, 0);
        assert_eq!(a.ok_up_to, good.len() as u64);
        assert!(a.problem.unwrap().1.contains("EXEC"));

        let mut junk = good.to_vec();
        junk.extend_from_slice(b"XXXX");
        let a = analyze(&junk, 0);
        assert_eq!(a.ok_up_to, good.len() as u64);
        assert_eq!(a.problem.unwrap().1, "format error");
    }
}
