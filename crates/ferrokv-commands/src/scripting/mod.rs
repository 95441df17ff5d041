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
