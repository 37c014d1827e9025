//! `vlog-tools`: benchmark and inspect a wisckey database.

mod admin;
mod bench;
mod checkpoint;
mod cleanup;
mod devio;
mod dump;
mod picture;
mod procio;
mod segments;
mod sim;
mod timeline;
mod units;
mod writemodes;
mod zipf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "vlog-tools",
    version,
    about = "Benchmark, inspect and tune GC of a wisckey database",
    after_help = "Exit status: 0 success; 1 a failure, or damage found (verify, dump); 2 a usage \
                  error (bad arguments). With --json, an error is printed as a JSON object \
                  {\"ok\": false, \"error\": \"...\"} on stdout as well."
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
    /// The database is opened read-only: nothing in it changes. The byte
    /// counters of this open start at zero; `lifetime` has them since the
    /// database was created.
    Stats(StatsArgs),
    /// Open an existing database read-only (nothing in it changes) and print
    /// what it holds: tables and kinds, levels, vLog segments with their
    /// garbage, space amplification, the write-amplification and GC counters
    /// since the database was created, the options it was created with.
    /// (`inspect` is the old name.)
    #[command(visible_alias = "inspect")]
    Info(admin::InspectArgs),
    /// Where the garbage is: per vLog segment its file, kind, size and live
    /// ratio by the discard statistics; `--exact` counts the live bytes from
    /// the index; `--plot FILE.svg` draws them. Opens read-only.
    Segments(segments::SegmentsArgs),
    /// Open an existing database read-only and check every byte it owns:
    /// every record of every vLog segment (live or garbage), every SSTable
    /// block, every hint file, the manifest; then read every live entry of
    /// every table back (index, point reads and scans must agree). Lists
    /// every damaged place found.
    ///
    /// Exit status: 0 no damage, 1 damage found or the check failed, 2 a
    /// usage error.
    Verify(admin::VerifyArgs),
    /// Make a checkpoint of an existing database (opened read-only): a
    /// consistent, openable copy of it in --out, with hard links for the
    /// immutable files (copies with --copy, or where a link fails) and a
    /// progress bar; prints the sequence number it holds up to, the files
    /// and bytes linked and copied, and the time taken. `--tables a,b`
    /// keeps only those tables (and the default one).
    Checkpoint(checkpoint::CheckpointArgs),
    /// Run one GC pass by hand on an existing database (opened with the
    /// options it was created with), with a progress bar; prints what the
    /// pass did and the vLog before and after. `--dry-run` says what a pass
    /// would take, read, move and free, and changes nothing (read-only).
    Gc(admin::GcArgs),
    /// Simulate the vLog's GC without touching a disk: the policies Tail,
    /// Greedy and CostBenefit, survivors at GC's own head or the user head,
    /// under uniform, Zipfian or hot/cold overwrites (or from a real
    /// database's segments with --from), with the engine's start and stop
    /// thresholds and the lag of its discard statistics; prints the GC
    /// write amplification and the space amplification for each target,
    /// and with --plot draws the one against the other.
    #[command(name = "gc-sim", long_about = sim::LONG_ABOUT)]
    GcSim(sim::GcSimArgs),
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
    /// Measure how fast the file system under --dir takes an append-only
    /// log written in each of the ways the engine can write one: buffered,
    /// buffered with steady writeback (sync_file_range), uncached
    /// (RWF_DONTCACHE) and O_DIRECT through io_uring. Runs go round-robin
    /// over the modes; the table gives each one's median. A mode the kernel
    /// or file system refuses is reported as refused.
    #[command(name = "write-modes")]
    WriteModes(writemodes::WriteModesArgs),
}

#[derive(Debug, clap::Args)]
struct StatsArgs {
    /// The database directory (must already hold a database: a CURRENT file).
    dir: PathBuf,
    /// The output is JSON either way; accepted like every subcommand's
    /// (an error is then printed as JSON too).
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    cleanup::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A usage error (exit 2) is also JSON on stdout under --json.
            if e.use_stderr() && wants_json() {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "error": e.to_string().trim_end() })
                );
            }
            e.exit()
        }
    };
    let r = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Stats(args) => stats(&args),
        Command::Info(args) => admin::inspect(&args),
        Command::Segments(args) => segments::segments(&args),
        Command::Verify(args) => admin::verify(&args),
        Command::Gc(args) => admin::gc(&args),
        Command::Checkpoint(args) => checkpoint::checkpoint(&args),
        Command::GcSim(args) => sim::run(&args),
        Command::Dump(args) => return dump::dump(&args),
        Command::DumpSst(args) => return dump::dump_sst(&args),
        Command::WriteModes(args) => writemodes::run(&args),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            if wants_json() && e.downcast_ref::<Reported>().is_none() {
                let msg = serde_json::json!({ "ok": false, "error": format!("{e:#}") });
                println!("{msg}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// A failure whose JSON report the command has printed already (so that
/// `main` prints no second JSON object).
#[derive(Debug)]
pub struct Reported(pub String);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// Whether the command line asked for JSON output (`--json` anywhere
/// before a `--`).
fn wants_json() -> bool {
    std::env::args()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

fn stats(args: &StatsArgs) -> Result<()> {
    // Read-only: looking at a database changes nothing in it.
    let db = admin::open_read_only(&args.dir)?;
    let stats = db.stats();
    println!("{}", serde_json::to_string_pretty(&stats)?);
    db.close().context("closing the database")?;
    Ok(())
}
