//! Replacing a small file so that a crash leaves either the old content or the new one:
//! write a temporary file in the same directory, fsync it, rename it over the target, fsync
//! the directory so the rename itself survives. Used for AOF manifests and empty AOF files,
//! and the ACL file. (Snapshots stream through [`crate::sink::FileSink`], which follows the
//! same steps for a file written in pieces.)

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Replaces `target` with `bytes` through `temp` (which must be in the same directory); the
/// temporary file is removed if anything fails.
pub fn replace_file(target: &Path, temp: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut file = File::create(temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(temp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(temp);
        return result;
    }
    if let Some(dir) = target.parent() {
        sync_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        });
    }
    Ok(())
}

/// Makes a rename or a creation in `dir` durable (best effort: some file systems refuse to
/// open a directory for syncing).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ferrokv-durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("f");
        let temp = dir.join(".f.tmp");
        std::fs::write(&target, b"old").unwrap();
        replace_file(&target, &temp, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(!temp.exists());
        // A temp path that cannot be created fails and leaves the target alone.
        let bad = dir.join("missing-dir").join("t");
        assert!(replace_file(&target, &bad, b"x").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
