//! One module per command family. Each exports `COMMANDS`, its part of the command table.

pub mod args;
pub mod config;
pub mod connection;
pub mod keys;
pub mod string;

use crate::spec::CommandSpec;

/// Every family's table, in the order COMMAND lists them.
pub static FAMILIES: &[&[CommandSpec]] = &[
    connection::COMMANDS,
    string::COMMANDS,
    keys::COMMANDS,
    config::COMMANDS,
];
