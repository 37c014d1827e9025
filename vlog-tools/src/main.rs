//! `vlog-tools`: benchmark and inspect a wisckey database.

mod admin;
mod bench;
mod dump;
mod procio;
mod units;
mod zipf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "vlog-tools",
    version,
    about = "Benchmark and inspect a wisckey database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load keys into a fresh database in a temporary directory, then measure
    /// load throughput, write and space amplification, random reads and a
    /// full scan.
    #[command(long_about = bench::LONG_ABOUT)]
    Bench(bench::BenchArgs),
    /// Open an existing database and print its `Stats` as pretty JSON.
    ///
    /// The database is opened read-only: nothing in it changes. Byte
    /// counters start at zero on open, so only the sizes (vLog segments,
    /// levels, SSTables) say something about the files.
    Stats(StatsArgs),
    /// Open an existing database read-only (nothing in it changes) and print
    /// its levels, vLog segments with their garbage, space amplification and
    /// GC counters.
    Inspect(admin::InspectArgs),
    /// Open an existing database read-only and check every byte it owns:
    /// every record of every vLog segment (live or garbage), every SSTable
    /// block, every hint file, the manifest; then read every live entry of
    /// every table back (index, point reads and scans must agree). Lists
    /// every damaged place found.
    ///
    /// Exit status: 0 no damage, 1 damage found or the check failed, 2 a
    /// usage error.
    Verify(admin::VerifyArgs),
    /// Open an existing database and run one GC pass by hand; prints the
    /// GcReport and the vLog space amplification before and after.
    Gc(admin::GcArgs),
    /// List the records of one vLog segment, read-only and without opening
    /// the database: offset, length, put or delete, table, sequence number,
    /// key, value length and first bytes, checksum state. After a damaged
    /// record it goes on from the next intact one. Ends with a summary.
    ///
    /// Exit status: 0 the segment is intact, 1 damage found or the file
    /// could not be read (with --json, an error object), 2 a usage error.
    Dump(dump::DumpArgs),
    /// List the entries of one SSTable, block by block, read-only and
    /// without opening the database: table, key, sequence number, inline
    /// value, value pointer or tombstone; damaged blocks are listed with
    /// what is wrong, and the dump goes on with the next block.
    ///
    /// Exit status: 0 the table is intact, 1 damage found or the file could
    /// not be read (with --json, an error object), 2 a usage error.
    DumpSst(dump::DumpSstArgs),
}

#[derive(Debug, clap::Args)]
struct StatsArgs {
    /// The database directory (must already hold a database: a CURRENT file).
    dir: PathBuf,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Stats(args) => stats(&args),
        Command::Inspect(args) => admin::inspect(&args),
        Command::Verify(args) => admin::verify(&args),
        Command::Gc(args) => admin::gc(&args),
        Command::Dump(args) => return dump::dump(&args),
        Command::DumpSst(args) => return dump::dump_sst(&args),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn stats(args: &StatsArgs) -> Result<()> {
    // Read-only: looking at a database changes nothing in it.
    let db = admin::open_read_only(&args.dir)?;
    let stats = db.stats();
    println!("{}", serde_json::to_string_pretty(&stats)?);
    db.close().context("closing the database")?;
    Ok(())
}
