//! The multi-part AOF manifest (`<appendfilename>.manifest`), as Redis 7 / Valkey write it:
//! one line per file, `file <name> seq <n> type <b|h|i>`, base first, then history, then
//! the increments in order. Written to a temporary name, fsynced and renamed.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Base,
    History,
    Incr,
}

impl FileKind {
    fn letter(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::History => 'h',
            FileKind::Incr => 'i',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<FileEntry>,
    pub history: Vec<FileEntry>,
    pub incrs: Vec<FileEntry>,
}

/// Valkey reads a manifest line into a buffer of this many bytes: a longer line is refused.
const MAX_LINE: usize = 1024;

/// Why a manifest was refused, in Valkey's words, and the line it was refused at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub reason: &'static str,
    /// The line's number (from 1) and text, when one line is to blame.
    pub line: Option<(usize, String)>,
}

impl ManifestError {
    fn whole(reason: &'static str) -> Self {
        ManifestError { reason, line: None }
    }

    fn at(number: usize, line: &str, reason: &'static str) -> Self {
        ManifestError {
            reason,
            line: Some((number, line.to_string())),
        }
    }

    /// The lines Valkey logs before it exits.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = vec!["*** FATAL AOF MANIFEST FILE ERROR ***".to_string()];
        if let Some((number, text)) = &self.line {
            lines.push(format!("Reading the manifest file, at line {number}"));
            lines.push(format!(">>> '{text}'"));
        }
        lines.push(self.reason.to_string());
        lines
    }
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason)
    }
}

/// A number as C's `atoll` reads it: leading blanks, a sign, the digits up to the first
/// other character; 0 when there are none.
fn atoll(text: &[u8]) -> i64 {
    let text = text.trim_ascii_start();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let value = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, &d| {
            n.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
        });
    if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

/// Whether Valkey writes `name` quoted (`sdsneedsrepr`): spaces, quotes, backslashes and
/// anything unprintable.
fn needs_quotes(name: &str) -> bool {
    name.bytes()
        .any(|b| !(0x21..=0x7e).contains(&b) || b == b'\\' || b == b'"')
}

impl Manifest {
    /// Parses a manifest's text by Valkey's rules: `#` lines are comments, every other line
    /// ends with a newline, is not blank, and holds `key value` pairs (quoted as in the
    /// config file), at least `file`, `seq` (not 0) and `type`; other keys are skipped
    /// (forward compatibility); one base; increments in increasing sequence.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        if text.is_empty() {
            return Err(ManifestError::whole("Found an empty AOF manifest"));
        }
        let invalid = "Invalid AOF manifest file format";
        let mut manifest = Manifest::default();
        let mut max_incr_seq = 0i64;
        let mut rest = text;
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let (line, ended) = match rest.find('\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = rest.get(line.len() + 1..).unwrap_or("");
            if line.starts_with('#') {
                continue;
            }
            if !ended || line.len() >= MAX_LINE {
                return Err(ManifestError::whole(
                    "The AOF manifest file contains too long line",
                ));
            }
            let trimmed = line.trim_matches([' ', '\t', '\r']);
            if trimmed.is_empty() {
                return Err(ManifestError::at(number, trimmed, invalid));
            }
            let words = ferrokv_protocol::split_args::split_args(trimmed.as_bytes())
                .map_err(|_| ManifestError::at(number, trimmed, invalid))?;
            if words.len() < 6 || !words.len().is_multiple_of(2) {
                return Err(ManifestError::at(number, trimmed, invalid));
            }
            let (mut name, mut seq, mut kind) = (None, 0i64, None);
            for pair in words.chunks(2) {
                let (key, value) = (&pair[0], &pair[1]);
                if key.eq_ignore_ascii_case(b"file") {
                    let file = String::from_utf8_lossy(value).into_owned();
                    if file.contains('/') {
                        return Err(ManifestError::at(
                            number,
                            trimmed,
                            "File can't be a path, just a filename",
                        ));
                    }
                    name = Some(file);
                } else if key.eq_ignore_ascii_case(b"seq") {
                    seq = atoll(value);
                } else if key.eq_ignore_ascii_case(b"type") {
                    kind = value.first().copied();
                }
            }
            let (Some(name), Some(kind)) = (name, kind) else {
                return Err(ManifestError::at(number, trimmed, invalid));
            };
            // A negative sequence (Valkey would take it) cannot name a file this server
            // writes: refused as malformed.
            let Ok(seq_number) = u64::try_from(seq) else {
                return Err(ManifestError::at(number, trimmed, invalid));
            };
            if seq_number == 0 {
                return Err(ManifestError::at(number, trimmed, invalid));
            }
            let entry = |kind| FileEntry {
                name,
                seq: seq_number,
                kind,
            };
            match kind {
                b'b' => {
                    if manifest.base.is_some() {
                        return Err(ManifestError::at(
                            number,
                            trimmed,
                            "Found duplicate base file information",
                        ));
                    }
                    manifest.base = Some(entry(FileKind::Base));
                }
                b'h' => manifest.history.push(entry(FileKind::History)),
                b'i' => {
                    if seq <= max_incr_seq {
                        return Err(ManifestError::at(
                            number,
                            trimmed,
                            "Found a non-monotonic sequence number",
                        ));
                    }
                    max_incr_seq = seq;
                    manifest.incrs.push(entry(FileKind::Incr));
                }
                _ => {
                    return Err(ManifestError::at(number, trimmed, "Unknown AOF file type"));
                }
            }
        }
        if manifest.base.is_none() && manifest.incrs.is_empty() {
            return Err(ManifestError::whole("Found an empty AOF manifest"));
        }
        Ok(manifest)
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let all = self
            .base
            .iter()
            .chain(self.history.iter())
            .chain(self.incrs.iter());
        for e in all {
            let name = if needs_quotes(&e.name) {
                ferrokv_config::values::repr(&e.name)
            } else {
                e.name.clone()
            };
            out.push_str(&format!(
                "file {name} seq {} type {}\n",
                e.seq,
                e.kind.letter()
            ));
        }
        out
    }

    /// Writes the manifest to `path` through a temporary file, fsync and rename.
    pub fn store(&self, dir: &Path, file_name: &str) -> std::io::Result<()> {
        ferrokv_persist::durable::replace_file(
            &dir.join(file_name),
            &dir.join(format!("temp-{file_name}")),
            self.to_text().as_bytes(),
        )
    }
}

pub use ferrokv_persist::durable::sync_dir;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_valkey_manifests() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\n\
                    file appendonly.aof.1.incr.aof seq 1 type i\n\
                    file appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(m.to_text(), text);
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("file a seq x type i\n").is_err());
        assert!(Manifest::parse("file a seq 1 type i extra\n").is_err());
        assert!(Manifest::parse("file a seq 2 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse("file ../a seq 1 type i\n").is_err());
    }

    fn reason(text: &str) -> &'static str {
        Manifest::parse(text).map_or_else(|e| e.reason, |_| "ok")
    }

    #[test]
    fn refuses_what_valkey_refuses_with_its_reason() {
        let invalid = "Invalid AOF manifest file format";
        assert_eq!(
            reason("file a seq 1 type i\n\nfile b seq 3 type i\n"),
            invalid
        );
        assert_eq!(
            reason("filx a seq 1 type b\nfile b seq 1 type i\n"),
            invalid
        );
        assert_eq!(reason("file a type i\n"), invalid);
        assert_eq!(reason("file a seq 0 type i\n"), invalid);
        assert_eq!(reason("file a seq 1 type x\n"), "Unknown AOF file type");
        assert_eq!(
            reason("file a seq 1 type i"),
            "The AOF manifest file contains too long line"
        );
        let long = format!("file a seq 1 type b{}\n", " x y".repeat(300));
        assert_eq!(
            reason(&long),
            "The AOF manifest file contains too long line"
        );
        assert_eq!(
            reason("file a seq 1 type b\nfile b seq 2 type b\n"),
            "Found duplicate base file information"
        );
        assert_eq!(
            reason("file a seq 2 type i\nfile b seq 2 type i\n"),
            "Found a non-monotonic sequence number"
        );
        assert_eq!(reason(""), "Found an empty AOF manifest");
        // Comments, keys in any case, unknown keys, trailing blanks and CRLF are fine.
        assert_eq!(
            reason("# note\nFILE a SEQ 1 TYPE b new v \r\nfile b seq 7 type i\n"),
            "ok"
        );
        let error = Manifest::parse("file a seq 1 type i\n \n").unwrap_err();
        assert_eq!(error.line, Some((2, String::new())));
    }

    #[test]
    fn names_with_spaces_or_quotes_are_written_quoted_and_read_back() {
        let manifest = Manifest {
            base: Some(FileEntry {
                name: "my \"aof\".1.base.rdb".into(),
                seq: 1,
                kind: FileKind::Base,
            }),
            history: Vec::new(),
            incrs: vec![FileEntry {
                name: "my aof.1.incr.aof".into(),
                seq: 1,
                kind: FileKind::Incr,
            }],
        };
        let text = manifest.to_text();
        assert!(
            text.starts_with("file \"my \\\"aof\\\".1.base.rdb\" seq 1 type b\n"),
            "{text}"
        );
        assert_eq!(Manifest::parse(&text).unwrap(), manifest);
    }
}
