//! `ferrokv`: the operations tool. Subcommands: `check-rdb FILE`.

mod check_rdb;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ferrokv", version, about = "Operations tool for ferrokv")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Reads a whole RDB snapshot, checks it, and prints a summary (exit status 1 if it is
    /// damaged, with the offset of the damage).
    CheckRdb {
        /// The RDB file (dump.rdb) to check.
        file: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::CheckRdb { file } => check_rdb::run(&file),
    }
}
