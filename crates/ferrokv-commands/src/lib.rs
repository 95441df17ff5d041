//! The command layer: the command table, dispatch, and every command's implementation.
//!
//! A request's path through this crate: [`dispatch::execute`] looks the name up in
//! [`table::TABLE`], runs the checks, and calls the handler declared in the command's
//! [`spec::CommandSpec`]. The handler locks the shards of its keys through [`context::Ctx`],
//! works on the store, and writes its reply into the client's [`ferrokv_protocol::Reply`].
//! Each command family lives in one file under [`cmd`].

pub mod acl;
pub mod aof;
pub mod blocking;
pub mod client;
pub mod cmd;
pub mod commandlog;
pub mod context;
pub mod dispatch;
pub mod evict;
pub mod expire_cycle;
pub mod latency;
pub mod lazyfree;
pub mod loading;
pub mod migrate;
pub mod monitor;
pub mod notify;
pub mod pause;
pub mod persistence;
pub mod prefetch;
pub mod propagate;
pub mod pubsub;
pub mod replica_keys;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod shutdown;
pub mod spec;
pub mod stats;
pub mod table;
pub mod tracking;
pub mod transaction;
pub mod worker_load;

pub use client::Client;
pub use context::{CmdError, CmdResult, Ctx};
pub use server::Server;
