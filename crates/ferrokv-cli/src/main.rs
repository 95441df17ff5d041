//! `ferrokv`: the operations tool. Subcommands: `check-rdb FILE`,
//! `check-aof [--fix] [--yes] FILE|DIR|MANIFEST`.

mod check_aof;
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
    /// Checks an append-only file: a multi-part directory (or its manifest) or a single
    /// file; reports how far each file is valid (exit status 1 if one is not).
    CheckAof {
        /// Truncate a broken tail of the last file (after asking).
        #[arg(long)]
        fix: bool,
        /// With --fix: do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
        /// The appendonly directory, its manifest, or a single AOF file.
        path: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::CheckRdb { file } => check_rdb::run(&file),
        Cmd::CheckAof { fix, yes, path } => check_aof::run(&path, &check_aof::Options { fix, yes }),
    }
}
