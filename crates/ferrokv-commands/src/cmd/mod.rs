//! One module per command family. Each exports `COMMANDS`, its part of the command table.

pub mod acl;
pub mod args;
pub mod bits;
pub mod client;
pub mod cluster;
pub mod command;
pub mod config;
pub mod connection;
pub mod debug;
pub mod debug_digest;
pub mod debug_protocol;
pub mod dump;
pub mod expire;
pub mod geo;
pub mod hash;
pub mod hyperloglog;
pub mod info;
pub mod keys;
pub mod list;
pub mod lolwut;
pub mod memory;
pub mod module;
pub mod monitor;
pub mod partial_sort;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scan_options;
pub mod scripting;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod string;
pub mod transaction;
pub mod zset;

use crate::spec::CommandSpec;

/// Every family's table, in the order COMMAND lists them.
pub static FAMILIES: &[&[CommandSpec]] = &[
    connection::COMMANDS,
    module::COMMANDS,
    string::COMMANDS,
    keys::COMMANDS,
    sort::COMMANDS,
    dump::COMMANDS,
    list::COMMANDS,
    bits::COMMANDS,
    client::COMMANDS,
    cluster::COMMANDS,
    expire::COMMANDS,
    command::COMMANDS,
    info::COMMANDS,
    server::COMMANDS,
    persistence::COMMANDS,
    replication::COMMANDS,
    memory::COMMANDS,
    debug::COMMANDS,
    config::COMMANDS,
    hyperloglog::COMMANDS,
    set::COMMANDS,
    hash::COMMANDS,
    zset::COMMANDS,
    geo::COMMANDS,
    transaction::COMMANDS,
    pubsub::COMMANDS,
    stream::COMMANDS,
    acl::COMMANDS,
    scripting::COMMANDS,
    monitor::COMMANDS,
    lolwut::COMMANDS,
];
