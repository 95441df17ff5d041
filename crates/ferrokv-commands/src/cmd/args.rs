//! Parsing command arguments with Valkey's error replies.

use ferrokv_protocol::number::parse_i64;

use crate::context::{CmdError, errors};

/// An integer argument (`ERR value is not an integer or out of range` otherwise).
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(errors::NOT_INTEGER)
}

/// Whether `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}
