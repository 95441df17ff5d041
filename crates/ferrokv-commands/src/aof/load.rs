//! Loading a multi-part AOF directory at start-up: the base, then each increment file, each
//! command replayed through dispatch by a client of its own whose replies go nowhere
//! (MULTI/EXEC blocks run as transactions, as they were written).

use ferrokv_protocol::framing::{decimal, line};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use ferrokv_protocol::Reply;

use super::Layout;
use super::manifest::{FileKind, Manifest};
use crate::client::{Client, ClientShared, Transport};
use crate::server::Server;

/// What parsing one command from the file found.
enum Parsed {
    Command(Vec<Bytes>, usize),
    /// `#TS:` and other annotation lines: skipped.
    Annotation(usize),
    /// The file ends inside a command.
    Truncated,
    Bad,
}

fn parse_one(buf: &[u8], start: usize) -> Parsed {
    if buf[start] == b'#' {
        return match line(buf, start) {
            Some((_, next)) => Parsed::Annotation(next - start),
            None => Parsed::Truncated,
        };
    }
    if buf[start] != b'*' {
        return Parsed::Bad;
    }
    let Some((head, mut at)) = line(buf, start) else {
        return Parsed::Truncated;
    };
    let Some(count) = decimal(&head[1..]).filter(|&n| n >= 1) else {
        return Parsed::Bad;
    };
    let mut args = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        if at >= buf.len() {
            return Parsed::Truncated;
        }
        if buf[at] != b'$' {
            return Parsed::Bad;
        }
        let Some((len_text, data_at)) = line(buf, at) else {
            return Parsed::Truncated;
        };
        let Some(len) = decimal(&len_text[1..]) else {
            return Parsed::Bad;
        };
        if data_at + len + 2 > buf.len() {
            return Parsed::Truncated;
        }
        if &buf[data_at + len..data_at + len + 2] != b"\r\n" {
            return Parsed::Bad;
        }
        args.push(Bytes::copy_from_slice(&buf[data_at..data_at + len]));
        at = data_at + len + 2;
    }
    Parsed::Command(args, at - start)
}

fn loading_client(server: &Server) -> Client {
    let shared = Arc::new(ClientShared::new(
        0,
        String::new(),
        String::new(),
        -1,
        Transport::Script,
        ferrokv_store::clock::now_ms(),
    ));
    let config = server.config.load();
    let epoch = server.config.epoch();
    let mut client = Client::new(shared, config, epoch);
    client.authenticated = true;
    client.user = crate::acl::superuser();
    client.deny_blocking = true;
    client.must_obey = true;
    client.replaying = true;
    client
}

/// Loads every file the manifest names, in order. `progress`, when given, is told how many
/// bytes of all the files together have been replayed, after each command or key (the
/// start-up load's INFO fields and `key-load-delay`).
pub fn load_dir(
    server: &Server,
    layout: &Layout,
    manifest: &Manifest,
    progress: Option<fn(u64)>,
) -> Result<(), String> {
    let _loading = ferrokv_store::replica_view::ExpiredAliveView::loading();
    let started = std::time::Instant::now();
    let config = server.config.load();
    let mut client = loading_client(server);
    let files: Vec<_> = manifest.base.iter().chain(manifest.incrs.iter()).collect();
    let last = files.len().saturating_sub(1);
    let mut loaded_any = false;
    // The bytes of the files before this one, for `progress`.
    let mut before = 0u64;
    for (i, entry) in files.iter().enumerate() {
        let path = layout.path(&entry.name);
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "The append log file {} doesn't exist: No such file or directory",
                    entry.name
                ));
            }
            Err(e) => {
                return Err(format!(
                    "Fatal error: can't open the append log file {} for reading: {}",
                    entry.name,
                    ferrokv_config::special::os_error_text(&e)
                ));
            }
        };
        let size = file.metadata().map_or(0, |m| m.len());
        if size == 0 {
            continue;
        }
        loaded_any = true;
        // A file that starts as an RDB (a base written with `aof-use-rdb-preamble yes`, or an
        // old-style AOF with its preamble) is read by the snapshot loader; commands may
        // follow it. Only the first file's offsets are the progress.
        let mut start = 0;
        if starts_as_rdb(&mut file) {
            let progress = if i == 0 { progress } else { None };
            let read = crate::persistence::load_snapshot_with(server, &path, false, progress)
                .map_err(|e| {
                    log::warn!("{e}");
                    let what = if entry.name.ends_with(".rdb") {
                        "RDB base file"
                    } else {
                        "RDB preamble of the AOF file"
                    };
                    format!(
                        "Error reading the {what} {}, AOF loading aborted",
                        entry.name
                    )
                })?;
            start = read.unwrap_or(size);
        }
        if start < size {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(start)).map_err(|e| {
                format!(
                    "Unrecoverable error reading the append only file {}: {e}",
                    entry.name
                )
            })?;
            let mut replay = Replay {
                server,
                client: &mut client,
                path: &path,
                name: &entry.name,
                is_last: i == last,
                load_truncated: config.aof_load_truncated,
                progress: progress.map(|report| (report, before)),
            };
            replay.file(Chunks::new(file, start))?;
        }
        before += size;
        log::info!(
            "DB loaded from {} file {}: {:.3} seconds",
            if entry.kind == FileKind::Base {
                "base"
            } else {
                "incr"
            },
            entry.name,
            started.elapsed().as_secs_f64()
        );
    }
    if loaded_any {
        log::info!(
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Whether `file` starts with an RDB's signature (Redis's `REDIS0`, Valkey 9's `VALKEY`);
/// it is read again from its start after.
fn starts_as_rdb(file: &mut std::fs::File) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut signature = [0u8; 6];
    let found = file.read_exact(&mut signature).is_ok()
        && (&signature == b"REDIS0" || &signature == b"VALKEY");
    let _ = file.seek(SeekFrom::Start(0));
    found
}

/// How much of a file is read at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// A file read a chunk at a time, so that replaying it holds the longest command in memory,
/// not the whole file.
struct Chunks {
    file: std::fs::File,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl Chunks {
    /// `file` read on from `offset`, where it stands.
    fn new(file: std::fs::File, offset: u64) -> Self {
        Chunks {
            file,
            buf: Vec::new(),
            base: offset,
            eof: false,
        }
    }

    /// Drops the bytes before `keep_from` and reads on: a chunk, or as much as is kept when
    /// that is more, so that a command longer than a chunk is scanned a logarithmic number
    /// of times while it is completed.
    fn refill(&mut self, keep_from: usize) -> std::io::Result<()> {
        use std::io::Read;
        self.buf.drain(..keep_from);
        self.base += keep_from as u64;
        let mut filled = self.buf.len();
        self.buf.resize(filled + CHUNK_BYTES.max(filled), 0);
        while filled < self.buf.len() {
            match self.file.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(filled);
        Ok(())
    }
}

/// Replaying one file of the directory.
struct Replay<'a> {
    server: &'a Server,
    client: &'a mut Client,
    path: &'a Path,
    name: &'a str,
    is_last: bool,
    load_truncated: bool,
    /// The progress report and the bytes of the files before this one.
    progress: Option<(fn(u64), u64)>,
}

impl Replay<'_> {
    fn file(&mut self, mut chunks: Chunks) -> Result<(), String> {
        let mut reply = Reply::new(false);
        let mut at = 0;
        // Where the last complete command (outside MULTI) ended: a truncated tail is cut here
        // (never into an RDB preamble before the commands).
        let mut valid_up_to = chunks.base;
        let mut in_multi = false;
        loop {
            let parsed = if at < chunks.buf.len() {
                parse_one(&chunks.buf, at)
            } else {
                Parsed::Truncated
            };
            match parsed {
                Parsed::Annotation(n) => at += n,
                Parsed::Command(args, n) => {
                    at += n;
                    if let Err(e) = crate::dispatch::check_existence_and_arity(&args) {
                        let text = e.0.strip_prefix("ERR ").unwrap_or(&e.0);
                        return Err(format!(
                            "Error reading the append only file {}, error: {text}",
                            self.name
                        ));
                    }
                    let name_upper = args[0].to_ascii_uppercase();
                    crate::dispatch::execute(self.server, self.client, &mut reply, &args);
                    reply.truncate(0);
                    match name_upper.as_slice() {
                        b"MULTI" => in_multi = true,
                        b"EXEC" | b"DISCARD" => in_multi = false,
                        _ => {}
                    }
                    let offset = chunks.base + at as u64;
                    if !in_multi {
                        valid_up_to = offset;
                    }
                    if let Some((report, before)) = self.progress {
                        report(before + offset);
                    }
                }
                Parsed::Truncated if !chunks.eof => {
                    chunks.refill(at).map_err(|e| {
                        format!(
                            "Unrecoverable error reading the append only file {}: {e}",
                            self.name
                        )
                    })?;
                    at = 0;
                }
                Parsed::Truncated if at == chunks.buf.len() && !in_multi => return Ok(()),
                Parsed::Truncated => return self.truncated(valid_up_to),
                Parsed::Bad => {
                    return Err(format!(
                        "Bad file format reading the append only file {}: make a backup of your AOF file, then use ./valkey-check-aof --fix <filename.manifest>",
                        self.name
                    ));
                }
            }
        }
    }

    fn truncated(&mut self, valid_up_to: u64) -> Result<(), String> {
        truncated(
            self.client,
            self.path,
            self.name,
            valid_up_to,
            self.is_last,
            self.load_truncated,
        )
    }
}

fn truncated(
    client: &mut Client,
    path: &Path,
    name: &str,
    valid_up_to: u64,
    is_last: bool,
    load_truncated: bool,
) -> Result<(), String> {
    if client.multi.is_some() {
        client.multi = None;
    }
    if !(load_truncated && is_last) {
        return Err(format!(
            "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./valkey-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
        ));
    }
    log::warn!("!!! Warning: short read while loading the AOF file {name}!!!");
    log::warn!("!!! Truncating the AOF {name} at offset {valid_up_to} !!!");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(valid_up_to).map(|_| f))
        .and_then(|f| f.sync_all());
    if let Err(e) = file {
        return Err(format!("Error truncating the AOF file {name}: {e}"));
    }
    log::warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_annotations_and_tails() {
        let buf = b"#TS:123\r\n*2\r\n$3\r\nget\r\n$1\r\nk\r\n*1\r\n$4\r\nPI";
        let Parsed::Annotation(n) = parse_one(buf, 0) else {
            panic!()
        };
        assert_eq!(n, 9);
        let Parsed::Command(args, m) = parse_one(buf, n) else {
            panic!()
        };
        assert_eq!(
            args,
            vec![Bytes::from_static(b"get"), Bytes::from_static(b"k")]
        );
        assert!(matches!(parse_one(buf, n + m), Parsed::Truncated));
        assert!(matches!(parse_one(b"xyz\r\n", 0), Parsed::Bad));
        assert!(matches!(parse_one(b"*1\r\n$1\r\nab\r\n", 0), Parsed::Bad));
    }
}
