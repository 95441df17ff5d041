//! The command logs (Valkey 8.1's COMMANDLOG): the most recent commands that ran longer than
//! `commandlog-execution-slower-than` (the slow log, also read by SLOWLOG), whose request
//! was at least `commandlog-request-larger-than` bytes as sent, or whose reply was at least
//! `commandlog-reply-larger-than` bytes.
//!
//! Dispatch records an entry after such a command has run. Entries are few (the thresholds
//! make them rare and each log is capped by its `-max-len`), so one mutex per log costs
//! nothing on the fast path, which only compares numbers.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;

/// At most this many arguments are kept; the last kept slot then says how many were dropped.
pub const MAX_ARGS: usize = 32;
/// Longer arguments are cut here, followed by how many bytes were dropped.
pub const MAX_ARG_BYTES: usize = 128;

/// Which log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Execution time in microseconds.
    Slow,
    /// The request's size in bytes, as sent.
    LargeRequest,
    /// The reply's size in bytes.
    LargeReply,
}

impl LogKind {
    /// The kind COMMANDLOG names `name` (case-insensitive).
    pub fn named(name: &[u8]) -> Option<LogKind> {
        [
            (&b"slow"[..], LogKind::Slow),
            (b"large-request", LogKind::LargeRequest),
            (b"large-reply", LogKind::LargeReply),
        ]
        .into_iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n))
        .map(|(_, kind)| kind)
    }
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: u64,
    /// Unix seconds when the command finished.
    pub timestamp: i64,
    /// What the log measures: microseconds or bytes.
    pub value: u64,
    pub args: Vec<Bytes>,
    pub client_addr: String,
    pub client_name: Bytes,
}

struct Log {
    next_id: u64,
    /// Newest first.
    entries: VecDeque<LogEntry>,
}

/// Each kind's own log, ids counting separately, as in Valkey.
static LOGS: [Mutex<Log>; 3] = [const {
    Mutex::new(Log {
        next_id: 0,
        entries: VecDeque::new(),
    })
}; 3];

fn log_of(kind: LogKind) -> &'static Mutex<Log> {
    &LOGS[kind as usize]
}

/// Whether a command whose measure is `value` belongs in a log with `threshold` (negative:
/// the log is off; zero: every command is logged).
pub fn reaches(value: u64, threshold: i64) -> bool {
    threshold >= 0 && value >= threshold as u64
}

/// The arguments as the log keeps them: at most [`MAX_ARGS`], each at most [`MAX_ARG_BYTES`],
/// passwords shown as `(redacted)` as MONITOR shows them (Valkey redacts the argv both read).
pub fn trimmed_args(args: &[Bytes]) -> Vec<Bytes> {
    let kept = args.len().min(MAX_ARGS);
    let redacted = crate::monitor::redacted_positions(args);
    let mut out = Vec::with_capacity(kept);
    for (i, arg) in args.iter().take(kept).enumerate() {
        if redacted.contains(&i) {
            out.push(Bytes::from_static(b"(redacted)"));
        } else if kept != args.len() && i == kept - 1 {
            let more = args.len() - kept + 1;
            out.push(Bytes::from(format!("... ({more} more arguments)")));
        } else if arg.len() > MAX_ARG_BYTES {
            let mut cut = arg[..MAX_ARG_BYTES].to_vec();
            cut.extend_from_slice(
                format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES).as_bytes(),
            );
            out.push(Bytes::from(cut));
        } else {
            out.push(arg.clone());
        }
    }
    out
}

/// Adds an entry to `kind`'s log, dropping the oldest ones beyond `max_len`.
pub fn record(
    kind: LogKind,
    args: &[Bytes],
    value: u64,
    timestamp: i64,
    client_addr: &str,
    client_name: Bytes,
    max_len: usize,
) {
    // A log of length 0 keeps nothing and, as in Valkey, uses up no id.
    if max_len == 0 {
        return;
    }
    let entry_args = trimmed_args(args);
    let mut log = log_of(kind).lock();
    let id = log.next_id;
    log.next_id += 1;
    log.entries.push_front(LogEntry {
        id,
        timestamp,
        value,
        args: entry_args,
        client_addr: client_addr.to_string(),
        client_name,
    });
    log.entries.truncate(max_len);
}

/// The newest `count` entries of `kind`'s log (all of them for `None`), newest first.
pub fn newest(kind: LogKind, count: Option<usize>) -> Vec<LogEntry> {
    let log = log_of(kind).lock();
    let n = count.unwrap_or(usize::MAX).min(log.entries.len());
    log.entries.iter().take(n).cloned().collect()
}

pub fn len(kind: LogKind) -> usize {
    log_of(kind).lock().entries.len()
}

pub fn reset(kind: LogKind) {
    log_of(kind).lock().entries.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_arguments_and_argument_lists_are_cut_like_valkey() {
        let long = Bytes::from(vec![b'x'; 130]);
        let args = trimmed_args(&[Bytes::from_static(b"SET"), long]);
        assert_eq!(args[1].len(), 128 + "... (2 more bytes)".len());
        assert!(args[1].ends_with(b"x... (2 more bytes)"));

        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        let args = trimmed_args(&many);
        assert_eq!(args.len(), 32);
        assert_eq!(&args[31][..], b"... (9 more arguments)");
        assert_eq!(&args[30][..], b"30");
    }

    #[test]
    fn thresholds() {
        assert!(!reaches(1_000_000, -1));
        assert!(reaches(0, 0));
        assert!(reaches(10, 10));
        assert!(!reaches(9, 10));
    }

    #[test]
    fn kinds_by_name() {
        assert_eq!(LogKind::named(b"SLOW"), Some(LogKind::Slow));
        assert_eq!(LogKind::named(b"Large-Reply"), Some(LogKind::LargeReply));
        assert_eq!(
            LogKind::named(b"large-request"),
            Some(LogKind::LargeRequest)
        );
        assert_eq!(LogKind::named(b"large"), None);
    }
}
