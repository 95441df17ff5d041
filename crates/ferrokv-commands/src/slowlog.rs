//! The slow log: the most recent commands that ran longer than `slowlog-log-slower-than`.
//!
//! Dispatch records an entry after a slow command has run; SLOWLOG reads the log. Entries are
//! few (slow commands are rare and the log is capped by `slowlog-max-len`), so one mutex over
//! the whole log costs nothing on the fast path, which only compares a duration.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;

/// At most this many arguments are kept; the last kept slot then says how many were dropped.
pub const MAX_ARGS: usize = 32;
/// Longer arguments are cut here, followed by how many bytes were dropped.
pub const MAX_ARG_BYTES: usize = 128;

#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    /// Unix seconds when the command finished.
    pub timestamp: i64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub client_addr: String,
    pub client_name: Bytes,
}

struct Log {
    next_id: u64,
    /// Newest first.
    entries: VecDeque<SlowEntry>,
}

static LOG: Mutex<Log> = Mutex::new(Log {
    next_id: 0,
    entries: VecDeque::new(),
});

/// Whether a command that took `duration_us` belongs in the log under `threshold_us`
/// (negative: the log is off; zero: every command is logged).
pub fn is_slow(duration_us: u64, threshold_us: i64) -> bool {
    threshold_us >= 0 && duration_us >= threshold_us as u64
}

/// The arguments as the log keeps them: at most [`MAX_ARGS`], each at most [`MAX_ARG_BYTES`].
pub fn trimmed_args(args: &[Bytes]) -> Vec<Bytes> {
    let kept = args.len().min(MAX_ARGS);
    let mut out = Vec::with_capacity(kept);
    for (i, arg) in args.iter().take(kept).enumerate() {
        if kept != args.len() && i == kept - 1 {
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

/// Adds an entry, dropping the oldest ones beyond `max_len`.
pub fn record(
    args: &[Bytes],
    duration_us: u64,
    timestamp: i64,
    client_addr: &str,
    client_name: Bytes,
    max_len: usize,
) {
    let entry_args = trimmed_args(args);
    let mut log = LOG.lock();
    let id = log.next_id;
    log.next_id += 1;
    log.entries.push_front(SlowEntry {
        id,
        timestamp,
        duration_us,
        args: entry_args,
        client_addr: client_addr.to_string(),
        client_name,
    });
    log.entries.truncate(max_len);
}

/// The newest `count` entries (all of them for `None`), newest first.
pub fn newest(count: Option<usize>) -> Vec<SlowEntry> {
    let log = LOG.lock();
    let n = count.unwrap_or(usize::MAX).min(log.entries.len());
    log.entries.iter().take(n).cloned().collect()
}

pub fn len() -> usize {
    LOG.lock().entries.len()
}

pub fn reset() {
    LOG.lock().entries.clear();
}

/// Applies a lowered `slowlog-max-len` right away, as Valkey does on CONFIG SET.
pub fn trim(max_len: usize) {
    LOG.lock().entries.truncate(max_len);
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
        assert!(!is_slow(1_000_000, -1));
        assert!(is_slow(0, 0));
        assert!(is_slow(10, 10));
        assert!(!is_slow(9, 10));
    }
}
