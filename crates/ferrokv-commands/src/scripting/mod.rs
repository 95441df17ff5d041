//! Lua scripting (EVAL family) and functions (FUNCTION / FCALL).
//!
//! - `shebang`: the `#!lua ...` first line of scripts and libraries.
//! - `cache`: the server-wide script cache (sha1 → source) and function libraries.
//! - `vm`: one Lua 5.1 state per worker thread, its sandbox and the `redis`/`server` API.
//! - `convert`: RESP replies → Lua values (for `redis.call`) and Lua values → replies.
//! - `run`: running one script or function atomically (the keyspace is held for the whole
//!   run, like EXEC), with the busy state other threads consult.
//! - `busy`: the server-wide "a script is running" state, BUSY replies and SCRIPT KILL.
//! - `libs`: the `bit`, `cjson`, `cmsgpack` and `struct` libraries.
//!
//! Why one Lua state per thread: a Lua state cannot be shared across threads, and scripts
//! run on the worker thread of the client that sent them (no hand-off latency). Each state
//! compiles the sources it needs from the shared cache on first use.

pub mod busy;
pub mod cache;
pub mod convert;
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
}

/// The lowercase hex SHA1 of `data` (script ids, `redis.sha1hex`).
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// Whether an EVAL-family or FCALL-family call declares that it may write, as the checks
/// before a command runs see it (Valkey takes a script's declared flags as the command's
/// own: a shebang script or a function without `no-writes` is a write command, refused up
/// front by MISCONF). A script without a shebang declares nothing: its writes are checked
/// one `redis.call` at a time (`run.rs`). An unknown script or function declares nothing
/// either: the command itself reports NOSCRIPT / "Function not found".
pub fn declares_writes(server: &crate::Server, command: &str, args: &[Bytes]) -> bool {
    let Some(target) = args.get(1) else {
        return false;
    };
    let flags = match command {
        "eval" | "eval_ro" => match server.scripting.scripts.get(&sha1_hex(target)) {
            Some(script) => script.flags,
            None => shebang::declared_flags(target).unwrap_or(script_flag::EVAL_COMPAT),
        },
        "evalsha" | "evalsha_ro" => {
            let sha = String::from_utf8_lossy(target).to_ascii_lowercase();
            match server.scripting.scripts.get(&sha) {
                Some(script) => script.flags,
                None => return false,
            }
        }
        "fcall" | "fcall_ro" => {
            match server
                .scripting
                .libraries
                .function(&String::from_utf8_lossy(target))
            {
                Some((meta, _)) => meta.flags,
                None => return false,
            }
        }
        _ => return false,
    };
    flags & (script_flag::EVAL_COMPAT | script_flag::NO_WRITES) == 0
}
