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
    client.deny_blocking = true;
    client.must_obey = true;
    client.replaying = true;
    client
}

/// Loads every file the manifest names, in order.
pub fn load_dir(server: &Server, layout: &Layout, manifest: &Manifest) -> Result<(), String> {
    let _loading = ferrokv_store::replica_view::ExpiredAliveView::loading();
    let started = std::time::Instant::now();
    let config = server.config.load();
    let mut client = loading_client(server);
    let files: Vec<_> = manifest.base.iter().chain(manifest.incrs.iter()).collect();
    let last = files.len().saturating_sub(1);
    let mut loaded_any = false;
    for (i, entry) in files.iter().enumerate() {
        let path = layout.path(&entry.name);
        if entry.kind == FileKind::Base && entry.name.ends_with(".rdb") {
            // An RDB-preamble base (`aof-use-rdb-preamble yes`, Valkey's default): the
            // snapshot loader reads it; the increments replay on top.
            if !crate::persistence::load_snapshot(server, &path)? {
                return Err(format!("The AOF file {} doesn't exist", entry.name));
            }
            loaded_any = true;
            log::info!(
                "DB loaded from base file {}: {:.3} seconds",
                entry.name,
                started.elapsed().as_secs_f64()
            );
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("The AOF file {} doesn't exist", entry.name));
            }
            Err(e) => {
                return Err(format!(
                    "Fatal error: can't open the append log file {} for reading: {e}",
                    entry.name
                ));
            }
        };
        if bytes.is_empty() {
            continue;
        }
        loaded_any = true;
        load_file(
            server,
            &mut client,
            &path,
            &entry.name,
            &bytes,
            i == last,
            config.aof_load_truncated,
        )?;
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

fn load_file(
    server: &Server,
    client: &mut Client,
    path: &Path,
    name: &str,
    bytes: &[u8],
    is_last: bool,
    load_truncated: bool,
) -> Result<(), String> {
    let mut reply = Reply::new(false);
    let mut at = 0;
    // Where the last complete command (outside MULTI) ended: a truncated tail is cut here.
    let mut valid_up_to = 0;
    let mut in_multi = false;
    while at < bytes.len() {
        match parse_one(bytes, at) {
            Parsed::Annotation(n) => at += n,
            Parsed::Command(args, n) => {
                at += n;
                let name_upper = args[0].to_ascii_uppercase();
                crate::dispatch::execute(server, client, &mut reply, &args);
                reply.truncate(0);
                match name_upper.as_slice() {
                    b"MULTI" => in_multi = true,
                    b"EXEC" | b"DISCARD" => in_multi = false,
                    _ => {}
                }
                if !in_multi {
                    valid_up_to = at;
                }
            }
            Parsed::Truncated => {
                return truncated(client, path, name, valid_up_to, is_last, load_truncated);
            }
            Parsed::Bad => {
                return Err(format!(
                    "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./valkey-check-aof --fix <filename.manifest>"
                ));
            }
        }
    }
    if in_multi {
        return truncated(client, path, name, valid_up_to, is_last, load_truncated);
    }
    Ok(())
}

fn truncated(
    client: &mut Client,
    path: &Path,
    name: &str,
    valid_up_to: usize,
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
        .and_then(|f| f.set_len(valid_up_to as u64).map(|_| f))
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
