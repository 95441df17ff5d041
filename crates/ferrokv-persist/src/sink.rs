//! Where a snapshot's bytes go.
//!
//! A [`SnapshotSink`] receives the file in order, piece by piece, from whichever thread
//! dumps a shard (the snapshot serializes those calls), and is told at the end whether the
//! snapshot is complete. [`FileSink`] writes `temp-<pid>-<n>.rdb` in the data directory and
//! renames it over `dbfilename` only once it is complete and on stable storage; a full
//! resync will add a sink that streams to a replica.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub trait SnapshotSink: Send {
    /// Appends bytes (a failure aborts the snapshot).
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The snapshot is complete: make it durable and visible.
    fn commit(self: Box<Self>) -> io::Result<()>;
    /// The snapshot was abandoned: leave no trace.
    fn discard(self: Box<Self>);
}

/// A snapshot file being written under a temporary name in `dir`.
pub struct FileSink {
    dir: PathBuf,
    temp: PathBuf,
    target: PathBuf,
    out: Option<BufWriter<File>>,
    /// Flush and fdatasync after this many bytes (`rdb-save-incremental-fsync`,
    /// `aof-rewrite-incremental-fsync`), so that the kernel never holds a whole file's dirty
    /// pages to write back at once, stalling other writers of the disk (the AOF's fsyncs).
    sync_every: Option<u64>,
    unsynced: u64,
    syncs: u64,
}

/// What Valkey's incremental fsync uses.
pub const INCREMENTAL_SYNC_BYTES: u64 = 4 << 20;

/// Large enough that a shard's dump is a handful of system calls.
const WRITE_BUFFER: usize = 1 << 20;

/// Removes this process's unfinished snapshot files from `dir` (a process that must exit
/// at once, in the middle of a save, leaves nothing behind).
pub fn remove_temp_files(dir: &Path) {
    let pid = std::process::id();
    let foreground = format!("temp-{pid}.rdb");
    let background = format!("temp-{pid}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == foreground.as_str() || (name.starts_with(&background) && name.ends_with(".rdb"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl FileSink {
    /// Creates the temporary file in `dir` (absolute, resolved by the caller when the
    /// save starts, so a later CONFIG SET dir does not split the file from its rename).
    /// `background`: a save that may be aborted gets a name of its own
    /// (`temp-<pid>-<n>.rdb`: an aborted save still removing its file must not remove the
    /// file of the save that replaced it); a foreground save (SAVE, the one at shutdown)
    /// writes `temp-<pid>.rdb`, Valkey's name.
    pub fn create(dir: &Path, dbfilename: &str, background: bool) -> io::Result<FileSink> {
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pid = std::process::id();
        let temp = if background {
            let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            dir.join(format!("temp-{pid}-{n}.rdb"))
        } else {
            dir.join(format!("temp-{pid}.rdb"))
        };
        let file = File::create(&temp)?;
        Ok(FileSink {
            dir: dir.to_path_buf(),
            temp,
            target: dir.join(dbfilename),
            out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            sync_every: None,
            unsynced: 0,
            syncs: 0,
        })
    }

    /// Syncs the data to disk every `bytes` while writing (`None`: only at the end).
    pub fn sync_every(mut self, bytes: Option<u64>) -> FileSink {
        self.sync_every = bytes;
        self
    }

    /// Syncs made while writing (not counting the final one).
    pub fn incremental_syncs(&self) -> u64 {
        self.syncs
    }

    /// The temporary file's path (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }
}

impl SnapshotSink for FileSink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(out) = &mut self.out else {
            return Err(io::Error::other("snapshot file already closed"));
        };
        out.write_all(bytes)?;
        if let Some(every) = self.sync_every {
            self.unsynced += bytes.len() as u64;
            if self.unsynced >= every {
                out.flush()?;
                out.get_ref().sync_data()?;
                self.unsynced = 0;
                self.syncs += 1;
            }
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let result = (|| {
            let out = self
                .out
                .take()
                .ok_or_else(|| io::Error::other("snapshot file already closed"))?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            fs::rename(&self.temp, &self.target)?;
            // The rename itself must survive a crash.
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }

    fn discard(mut self: Box<Self>) {
        self.out = None;
        let _ = fs::remove_file(&self.temp);
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Neither committed nor discarded (a panic on the way): remove the partial file.
        if self.out.is_some() {
            self.out = None;
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_sync_runs_every_so_many_bytes_and_the_file_is_whole() {
        let dir = std::env::temp_dir().join(format!("ferrokv-sink-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let mut sink = FileSink::create(&dir, "out.rdb", false)
            .expect("create")
            .sync_every(Some(1000));
        let piece = [7u8; 300];
        for _ in 0..10 {
            sink.write_all(&piece).expect("write");
        }
        // 3000 bytes in pieces of 300: a sync at 1200, 2400 (every time 1000 is passed).
        assert_eq!(sink.incremental_syncs(), 2);
        Box::new(sink).commit().expect("commit");
        assert_eq!(fs::read(dir.join("out.rdb")).expect("read").len(), 3000);
        let mut off = FileSink::create(&dir, "off.rdb", true).expect("create");
        off.write_all(&[1u8; 5000]).expect("write");
        assert_eq!(off.incremental_syncs(), 0);
        Box::new(off).discard();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_exit_in_the_middle_of_saves_removes_their_temporary_files() {
        let dir = std::env::temp_dir().join(format!("ferrokv-sink-temp-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let pid = std::process::id();
        let foreground = FileSink::create(&dir, "a.rdb", false).expect("create");
        let background = FileSink::create(&dir, "b.rdb", true).expect("create");
        fs::write(dir.join("temp-1-0.rdb"), b"another process's").expect("write");
        let names = || -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&dir)
                .expect("list")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert!(
            names().contains(&format!("temp-{pid}.rdb")),
            "{:?}",
            names()
        );
        assert_eq!(names().len(), 3);
        remove_temp_files(&dir);
        assert_eq!(names(), ["temp-1-0.rdb"]);
        drop((foreground, background));
        let _ = fs::remove_dir_all(&dir);
    }
}
