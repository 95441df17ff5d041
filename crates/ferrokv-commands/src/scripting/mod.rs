//! Lua scripting (EVAL family) and functions (FUNCTION / FCALL).
//!
//! - `shebang`: the `#!lua ...` first line of scripts and libraries.
//! - `cache`: the server-wide script cache (sha1 → source) and function libraries.
//! - `vm`: one Lua 5.1 state per worker thread, its sandbox and the `redis`/`server` API.
//! - `convert`: RESP replies → Lua values (for `redis.call`) and Lua values → replies.
//! - `run`: running one script or function atomically (its shards are held for the whole
//!   run, like EXEC: those of its declared keys, widened on demand, or every shard).
//! - `busy`: the server-wide "a script is running" state, BUSY replies and SCRIPT KILL.
//! - `libs`: the `bit`, `cjson`, `cmsgpack` and `struct` libraries.
//!
//! Why one Lua state per thread: a Lua state cannot be shared across threads, and scripts
//! run on the worker thread of the client that sent them (no hand-off latency). Each state
//! compiles the sources it needs from the shared cache on first use.

pub mod busy;
mod c_api;
pub mod cache;
pub mod convert;
pub mod fiber;
pub mod held_back;
pub mod json;
pub mod lauxlib;
pub mod libs;
pub mod lua_struct;
pub mod msgpack;
pub mod run;
pub mod shebang;
pub mod vm;

pub use busy::Busy;
pub use cache::{Libraries, ScriptCache};

use std::sync::Arc;

use bytes::Bytes;

use shebang::script_flag;

/// Server-wide scripting state.
#[derive(Default)]
pub struct Scripting {
    pub scripts: ScriptCache,
    pub libraries: Libraries,
    pub busy: Arc<Busy>,
    /// Runs that held only their declared keys' shards and started again holding every
    /// shard (INFO `ferrokv_script_restarts`): many mean scripts reach keys they do not
    /// declare.
    pub restarts: std::sync::atomic::AtomicU64,
}

/// The lowercase hex SHA1 of `data` (script ids, `redis.sha1hex`).
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// `sha` lowercased into `buf`, if it can name a cached script (40 ASCII bytes).
pub fn sha_key<'b>(sha: &[u8], buf: &'b mut [u8; 40]) -> Option<&'b str> {
    if sha.len() != 40 {
        return None;
    }
    buf.copy_from_slice(sha);
    buf.make_ascii_lowercase();
    std::str::from_utf8(buf).ok()
}

/// The flags an EVAL-family or FCALL-family call declares (`script_flag` bits), as the
/// checks before a command runs see them: a cached or shebang script's, or a function's.
/// `None` when the call declares nothing: a script without a shebang ("eval-compat", whose
/// writes are checked one `redis.call` at a time in `run.rs`), or an unknown script or
/// function (the command itself reports NOSCRIPT / "Function not found"), or a command
/// that runs no script.
pub fn declared_flags(server: &crate::Server, command: &str, args: &[Bytes]) -> Option<u32> {
    let target = args.get(1)?;
    let flags = match command {
        "eval" | "eval_ro" => match server.scripting.scripts.flags(&sha1_hex(target)) {
            Some(flags) => flags,
            // Not cached yet: its shebang says (a bad one fails when the command runs).
            None => shebang::declared_flags(target).ok()?,
        },
        "evalsha" | "evalsha_ro" => {
            let mut sha = [0u8; 40];
            server.scripting.scripts.flags(sha_key(target, &mut sha)?)?
        }
        "fcall" | "fcall_ro" => {
            let name = String::from_utf8_lossy(target);
            server.scripting.libraries.function(&name)?.0.flags
        }
        _ => return None,
    };
    (flags & script_flag::EVAL_COMPAT == 0).then_some(flags)
}

/// The command flags a call that runs a script declaring `script_flags` is checked with:
/// the declared flags replace the command's own write, denyoom, stale and may-replicate
/// flags (Valkey's rule). Without `no-writes` the call is a write, and also denied on OOM
/// unless it declares `allow-oom`; it is served by a stale replica only with `allow-stale`.
pub fn command_flags(spec_flags: u64, script_flags: u32) -> u64 {
    use crate::spec::flag;
    let mut flags = spec_flags & !(flag::WRITE | flag::DENYOOM | flag::STALE | flag::MAY_REPLICATE);
    if script_flags & script_flag::NO_WRITES == 0 {
        flags |= flag::WRITE;
        if script_flags & script_flag::ALLOW_OOM == 0 {
            flags |= flag::DENYOOM;
        }
    }
    if script_flags & script_flag::ALLOW_STALE != 0 {
        flags |= flag::STALE;
    }
    flags
}
