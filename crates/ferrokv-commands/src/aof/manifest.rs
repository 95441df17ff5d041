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

impl Manifest {
    /// Parses a manifest's text; the error is Valkey's wording for the problem.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut manifest = Manifest::default();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.len().is_multiple_of(2) {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                match pair[0] {
                    "file" => name = Some(pair[1].to_string()),
                    "seq" => seq = pair[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match pair[1] {
                            "b" => Some(FileKind::Base),
                            "h" => Some(FileKind::History),
                            "i" => Some(FileKind::Incr),
                            _ => None,
                        }
                    }
                    // Unknown fields are skipped, as Valkey does (forward compatibility).
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            if name.contains('/') {
                return Err("Invalid AOF manifest file format".into());
            }
            let entry = FileEntry { name, seq, kind };
            match kind {
                FileKind::Base => {
                    if manifest.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    manifest.base = Some(entry);
                }
                FileKind::History => manifest.history.push(entry),
                FileKind::Incr => {
                    if manifest
                        .incrs
                        .last()
                        .is_some_and(|last| last.seq >= entry.seq)
                    {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    manifest.incrs.push(entry);
                }
            }
        }
        if manifest.base.is_none() && manifest.incrs.is_empty() {
            return Err("Found an empty AOF manifest".into());
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
            out.push_str(&format!(
                "file {} seq {} type {}\n",
                e.name,
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
}
