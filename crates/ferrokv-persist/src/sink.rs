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
}

/// Large enough that a shard's dump is a handful of system calls.
const WRITE_BUFFER: usize = 1 << 20;

impl FileSink {
    /// Creates the temporary file in `dir` (absolute, resolved by the caller when the
    /// save starts, so a later CONFIG SET dir does not split the file from its rename).
    pub fn create(dir: &Path, dbfilename: &str) -> io::Result<FileSink> {
        // Unique per save: an aborted save still removing its file must not remove the
        // file of the save that replaced it.
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = dir.join(format!("temp-{}-{n}.rdb", std::process::id()));
        let file = File::create(&temp)?;
        Ok(FileSink {
            dir: dir.to_path_buf(),
            temp,
            target: dir.join(dbfilename),
            out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
        })
    }

    /// The temporary file's path (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }
}

impl SnapshotSink for FileSink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.write_all(bytes),
            None => Err(io::Error::other("snapshot file already closed")),
        }
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
