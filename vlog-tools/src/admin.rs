//! `inspect`, `verify` and `gc`: tools for an existing database.
//!
//! `inspect` and `verify` open the database read-only: they change nothing
//! (not even a torn tail or a missing hint, which they leave for the next
//! writer), work on read-only media, and share the database with other
//! read-only opens (not with a writer). `gc` opens it for writing, with
//! automatic GC off, so that only the pass it asks for changes the vLog.

use crate::bench::PolicyArg;
use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wisckey::{Db, GcOptions, GcReport, LevelStats, Options, SegmentStats, TableKind};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The database directory (must already hold a database: a CURRENT file).
    dir: PathBuf,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The database directory (must already hold a database: a CURRENT file).
    dir: PathBuf,
    /// Print one JSON object (counts per table) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The database directory (must already hold a database: a CURRENT file).
    dir: PathBuf,
    /// The policy that picks the victims [default: the engine's, cost-benefit].
    #[arg(long, value_enum)]
    policy: Option<PolicyArg>,
    /// The most segments the pass takes [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_segments: Option<u64>,
    /// Take every sealed segment, whatever its garbage (rewrites the log in
    /// key order).
    #[arg(long)]
    all: bool,
    /// Segments with a smaller fraction of garbage are skipped (not by
    /// `tail` or `--all`) [default: the engine's, 0.2].
    #[arg(long)]
    min_garbage_ratio: Option<f64>,
    /// Options::segment_size for the GC segments this pass writes, a size
    /// (4MiB) [default: the one the database was created with, which it
    /// stores].
    #[arg(long, value_parser = crate::units::parse_size)]
    segment_size: Option<u64>,
    /// Say which segments the pass would take and the bytes it would read,
    /// move and free (by the discard statistics), and change nothing: the
    /// database is opened read-only.
    #[arg(long)]
    dry_run: bool,
    /// Salvage: find the victims' live records from the index instead of
    /// reading the segments through, so that a segment with damaged garbage
    /// can be collected. A live record in damaged bytes fails the pass,
    /// naming its keys, and nothing changes.
    #[arg(long)]
    salvage: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Opens an existing database read-only: nothing in it changes.
pub fn open_read_only(dir: &Path) -> Result<Db> {
    Db::open_read_only(dir, Options::default())
        .with_context(|| format!("opening {} read-only", dir.display()))
}

/// Opens an existing database for writing (never creating one), with
/// automatic GC off.
fn open_with(dir: &Path, opts: Options) -> Result<Db> {
    Db::open(dir, opts.create_if_missing(false).background_gc(false))
        .with_context(|| format!("opening {}", dir.display()))
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[derive(Debug, Serialize)]
struct Inspect {
    dir: PathBuf,
    io_backend: String,
    /// Named tables with their kinds ("ordered" / "unordered").
    tables: Vec<(String, String)>,
    /// Keys in the keydirs of unordered tables (tombstones included).
    unordered_keys: u64,
    /// Bytes the keydirs have allocated (`Stats::keydir_bytes`: by capacity).
    keydir_bytes: u64,
    /// Hint files (one per sealed segment once an unordered table exists).
    hint_files: u64,
    last_sequence: u64,
    levels: Vec<LevelStats>,
    sst_bytes: u64,
    segments: Vec<SegmentStats>,
    vlog_segments: u64,
    vlog_user_segments: u64,
    vlog_gc_segments: u64,
    vlog_bytes: u64,
    vlog_garbage_bytes: u64,
    /// vlog_bytes / (vlog_bytes - vlog_garbage_bytes), from the discard statistics.
    vlog_space_amplification: f64,
    /// Files in the directory and their bytes, the disk reserve not counted.
    dir_files: u64,
    dir_bytes: u64,
    /// The disk reserve (`RESERVE`: preallocated room for a full disk).
    reserve_bytes: u64,
    /// The counters since the database was created (kept across opens in
    /// the manifest): bytes by component, write and GC write amplification.
    lifetime: wisckey::LifetimeStats,
    /// What the database was created with (null for a database created
    /// before this was recorded, until its next writable open).
    created: Option<wisckey::CreatedWith>,
    retired_segments_kept: u64,
    memtable_bytes: u64,
    immutable_memtables: u64,
}

pub fn inspect(args: &InspectArgs) -> Result<()> {
    let db = open_read_only(&args.dir)?;
    let st = db.stats();
    let (dir_files, dir_bytes, _) = crate::bench::dir_size(&args.dir)?;
    let r = Inspect {
        dir: args.dir.clone(),
        io_backend: st.io_backend.clone(),
        tables: db
            .table_kinds()
            .into_iter()
            .map(|(n, k)| (n, kind_name(k).to_string()))
            .collect(),
        unordered_keys: st.unordered_keys,
        keydir_bytes: st.keydir_bytes,
        hint_files: std::fs::read_dir(&args.dir)
            .with_context(|| format!("listing {}", args.dir.display()))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".hint"))
            })
            .count() as u64,
        last_sequence: st.last_sequence,
        levels: st.levels.clone(),
        sst_bytes: st.sst_bytes,
        vlog_segments: st.vlog_segments,
        vlog_user_segments: st.segments.iter().filter(|s| !s.gc).count() as u64,
        vlog_gc_segments: st.segments.iter().filter(|s| s.gc).count() as u64,
        segments: st.segments.clone(),
        vlog_bytes: st.vlog_bytes,
        vlog_garbage_bytes: st.vlog_garbage_bytes,
        vlog_space_amplification: st.vlog_space_amplification,
        dir_files,
        dir_bytes,
        reserve_bytes: crate::bench::reserve_bytes(&args.dir),
        lifetime: st.lifetime.clone(),
        created: st.created,
        retired_segments_kept: st.retired_segments_kept,
        memtable_bytes: st.memtable_bytes,
        immutable_memtables: st.immutable_memtables,
    };
    db.close().context("closing the database")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    print_inspect(&r);
    Ok(())
}

fn print_inspect(r: &Inspect) {
    use crate::units::bytes;
    println!("database {}", r.dir.display());
    println!(
        "  {} files, {} (and a disk reserve of {}); I/O backend {}; last sequence {}; named \
         tables: {}",
        r.dir_files,
        bytes(r.dir_bytes),
        bytes(r.reserve_bytes),
        r.io_backend,
        r.last_sequence,
        if r.tables.is_empty() {
            "none".to_string()
        } else {
            r.tables
                .iter()
                .map(|(n, k)| format!("{n} ({k})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    match &r.created {
        Some(c) => println!(
            "  created {}with segment size {}, value threshold {}, memtable {}",
            if c.unix_secs == 0 {
                String::new()
            } else {
                format!("at {} (Unix time) ", c.unix_secs)
            },
            bytes(c.segment_size),
            bytes(c.value_threshold),
            bytes(c.memtable_size)
        ),
        None => println!("  created with: not recorded (recorded at the next writable open)"),
    }
    if r.tables.iter().any(|(_, k)| k == "unordered") {
        println!(
            "  unordered tables: {} keys in their keydirs ({} allocated); {} hint files",
            r.unordered_keys,
            bytes(r.keydir_bytes),
            r.hint_files
        );
    }
    println!();
    println!("LSM-tree ({} of SSTables)", bytes(r.sst_bytes));
    println!("  level  files        size      target   score");
    for (i, l) in r.levels.iter().enumerate() {
        if l.files == 0 && l.target_bytes == 0 && i > 0 {
            continue;
        }
        println!(
            "  L{:<5} {:>5} {:>11} {:>11} {:>7.3}",
            i,
            l.files,
            bytes(l.bytes),
            bytes(l.target_bytes),
            l.score
        );
    }
    println!();
    println!(
        "vLog: {} segments ({} user, {} GC), {}, {} garbage ({:.1}%); `vlog-tools segments` lists them",
        r.vlog_segments,
        r.vlog_user_segments,
        r.vlog_gc_segments,
        bytes(r.vlog_bytes),
        bytes(r.vlog_garbage_bytes),
        pct(r.vlog_garbage_bytes, r.vlog_bytes)
    );
    println!(
        "vLog space amplification  {:.3}  (bytes over live bytes, by the discard statistics)",
        r.vlog_space_amplification
    );
    let l = &r.lifetime;
    println!();
    println!(
        "since the database was created ({} writable opens)",
        l.opens
    );
    println!(
        "  user writes             {} in {} puts and deletes",
        bytes(l.user_bytes_written),
        l.writes
    );
    println!(
        "  written                 vLog {}, GC {}, flushes {}, compactions {}, manifest {}",
        bytes(l.vlog_bytes_written),
        bytes(l.gc_bytes_written),
        bytes(l.flush_bytes_written),
        bytes(l.compaction_bytes_written),
        bytes(l.manifest_bytes_written)
    );
    println!(
        "  write amplification     {:.3} (all bytes written over user bytes); GC write amplification {:.3}",
        l.write_amplification, l.gc_write_amplification
    );
    println!(
        "  GC                      {} passes, {} read, {} moved ({} records), {} freed; {} retired segments kept",
        l.gc_passes,
        bytes(l.gc_bytes_read),
        bytes(l.gc_bytes_written),
        l.gc_records_moved,
        bytes(l.gc_bytes_freed),
        r.retired_segments_kept
    );
    println!(
        "  flushes, compactions    {}, {} ({} read)",
        l.flushes,
        l.compactions,
        bytes(l.compaction_bytes_read)
    );
    println!(
        "memtable                  {}, {} frozen (replayed from the vLog on open)",
        bytes(r.memtable_bytes),
        r.immutable_memtables
    );
}

fn kind_name(k: TableKind) -> &'static str {
    match k {
        TableKind::Unordered => "unordered",
        _ => "ordered",
    }
}

/// One table of the report: `Db::verify`'s counts.
#[derive(Debug, Serialize)]
struct TableCount {
    table: String,
    kind: String,
    entries: u64,
    key_bytes: u64,
    value_bytes: u64,
    /// Point reads checked (one per entry).
    gets: u64,
}

#[derive(Debug, Serialize)]
struct VerifyRun {
    dir: PathBuf,
    /// No damage found and no failure.
    ok: bool,
    tables: Vec<TableCount>,
    entries: u64,
    /// What was read (when the check ran to its end).
    checked: Option<wisckey::VerifyCounts>,
    /// Every damaged place found: file, offset, what.
    damage: Vec<wisckey::Damage>,
    secs: f64,
    /// Why the check could not run to its end.
    error: Option<String>,
}

/// `Db::verify` on the directory, opened read-only: every byte of every
/// file checked (every record of every segment, live or garbage, every
/// SSTable block, hint files, the manifest), and every live entry of every
/// table read back. All the damage found is listed. Exit status 1 when there
/// is any, or when the check could not run to its end.
pub fn verify(args: &VerifyArgs) -> Result<()> {
    let db = open_read_only(&args.dir)?;
    let start = Instant::now();
    eprintln!("[verify] {} table(s)", db.table_kinds().len() + 1);
    let mut result = db.verify().context("verifying");
    let secs = start.elapsed().as_secs_f64();
    let close = db.close().context("closing the database");
    if let (Ok(_), Err(e)) = (&result, close) {
        result = Err(e);
    }
    let (report, error) = match result {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let tables: Vec<TableCount> = report
        .iter()
        .flat_map(|r| r.tables.iter())
        .map(|t| TableCount {
            kind: kind_name(t.kind).to_string(),
            table: t.name.clone(),
            entries: t.entries,
            key_bytes: t.key_bytes,
            value_bytes: t.value_bytes,
            gets: t.entries,
        })
        .collect();
    let run = VerifyRun {
        dir: args.dir.clone(),
        ok: error.is_none() && report.as_ref().is_some_and(|r| r.is_clean()),
        entries: tables.iter().map(|t| t.entries).sum(),
        tables,
        checked: report.as_ref().map(|r| r.checked.clone()),
        damage: report
            .as_ref()
            .map(|r| r.damage.clone())
            .unwrap_or_default(),
        secs,
        error,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        for t in &run.tables {
            println!(
                "table {:<20} {:<9} {:>10} entries, {:>14} key bytes, {:>14} value bytes, {:>10} gets checked",
                t.table, t.kind, t.entries, t.key_bytes, t.value_bytes, t.gets
            );
        }
        if let Some(c) = &run.checked {
            println!(
                "read                 {} segments ({} records, {} bytes), {} SSTables ({} blocks), {} hint files, {} manifest records",
                c.segments, c.records, c.segment_bytes, c.sstables, c.blocks, c.hint_files, c.manifest_records
            );
        }
        for d in &run.damage {
            println!(
                "DAMAGE {} at offset {}: {}",
                d.file.display(),
                d.offset,
                d.what
            );
        }
        println!(
            "{}: {} entries in {} table(s), {} damaged place(s), {:.3} s",
            if run.ok { "OK" } else { "FAILED" },
            run.entries,
            run.tables.len(),
            run.damage.len(),
            run.secs
        );
    }
    let failure = if let Some(msg) = &run.error {
        Some(format!("verify failed: {msg}"))
    } else {
        run.damage.first().map(|first| {
            format!(
                "verify found {} damaged place(s) (corruption), the first in {} at offset {}: {}",
                run.damage.len(),
                first.file.display(),
                first.offset,
                first.what
            )
        })
    };
    if let Some(msg) = failure {
        if args.json {
            return Err(crate::Reported(msg).into());
        }
        bail!(msg);
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct GcRun {
    dir: PathBuf,
    policy: Option<PolicyArg>,
    all: bool,
    salvage: bool,
    /// A dry run: `report` is the plan, nothing changed.
    dry_run: bool,
    /// The segment size the pass ran with, and where it came from
    /// ("stored": what the database was created with; "argument"; "default").
    segment_size: u64,
    segment_size_from: &'static str,
    report: GcReport,
    vlog_segments_before: u64,
    vlog_segments_after: u64,
    vlog_bytes_before: u64,
    vlog_bytes_after: u64,
    vlog_garbage_bytes_before: u64,
    vlog_garbage_bytes_after: u64,
    space_amplification_before: f64,
    space_amplification_after: f64,
}

/// The options to open `dir` with for writing: the ones that shape files
/// as it was created with (`Stats::created`), unless `segment_size` says
/// otherwise; and where the segment size came from.
fn stored_options(dir: &Path, segment_size: Option<u64>) -> Result<(Options, u64, &'static str)> {
    let peek = open_read_only(dir)?;
    let created = peek.stats().created;
    peek.close().context("closing the database")?;
    let mut opts = Options::default();
    // The engine's default (Options::segment_size, docs/api.md).
    let mut size: u64 = 128 << 20;
    let mut from = "default";
    if let Some(c) = created {
        if c.segment_size > 0 {
            opts = opts.segment_size(c.segment_size);
            size = c.segment_size;
            from = "stored";
        }
        if c.value_threshold > 0 {
            opts = opts.value_threshold(usize::try_from(c.value_threshold).unwrap_or(usize::MAX));
        }
        if c.memtable_size > 0 {
            opts = opts.memtable_size(usize::try_from(c.memtable_size).unwrap_or(usize::MAX));
        }
    }
    if let Some(s) = segment_size {
        opts = opts.segment_size(s);
        size = s;
        from = "argument";
    }
    Ok((opts, size, from))
}

/// A progress bar over the victims of a pass, on stderr (hidden when stderr
/// is not a terminal).
fn progress_bar() -> (
    indicatif::ProgressBar,
    impl Fn(&wisckey::GcProgress) + Send + Sync,
) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[gc] {bar:40} {pos}/{len} segments {msg} {elapsed}",
        )
        .expect("a valid template"),
    );
    let b = bar.clone();
    let update = move |p: &wisckey::GcProgress| {
        b.set_length(p.segments_total);
        b.set_position(p.segments_done);
        b.set_message(format!(
            "{} of {}",
            crate::units::bytes(p.bytes_read),
            crate::units::bytes(p.bytes_total)
        ));
    };
    (bar, update)
}

pub fn gc(args: &GcArgs) -> Result<()> {
    if let Some(r) = args.min_garbage_ratio {
        ensure!(
            (0.0..=1.0).contains(&r),
            "--min-garbage-ratio must be in [0, 1]"
        );
    }
    let (db_opts, segment_size, segment_size_from) = stored_options(&args.dir, args.segment_size)?;
    let db = if args.dry_run {
        open_read_only(&args.dir)?
    } else {
        open_with(&args.dir, db_opts)?
    };
    let before = db.stats();
    let mut opts = GcOptions::default()
        .all_sealed(args.all)
        .salvage(args.salvage)
        .dry_run(args.dry_run);
    if let Some(p) = args.policy {
        opts = opts.policy(p.policy());
    }
    if let Some(n) = args.max_segments {
        opts = opts.max_segments(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(r) = args.min_garbage_ratio {
        opts = opts.min_garbage_ratio(r);
    }
    let (bar, update) = progress_bar();
    let report = db.gc(opts.on_progress(update));
    bar.finish_and_clear();
    let report = report.context("GC pass")?;
    let after = db.stats();
    db.close().context("closing the database")?;
    let run = GcRun {
        dir: args.dir.clone(),
        policy: args.policy,
        all: args.all,
        salvage: args.salvage,
        dry_run: args.dry_run,
        segment_size,
        segment_size_from,
        report,
        vlog_segments_before: before.vlog_segments,
        vlog_segments_after: after.vlog_segments,
        vlog_bytes_before: before.vlog_bytes,
        vlog_bytes_after: after.vlog_bytes,
        vlog_garbage_bytes_before: before.vlog_garbage_bytes,
        vlog_garbage_bytes_after: after.vlog_garbage_bytes,
        space_amplification_before: before.vlog_space_amplification,
        space_amplification_after: after.vlog_space_amplification,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run)?);
        return Ok(());
    }
    print_gc(&run);
    Ok(())
}

fn print_gc(run: &GcRun) {
    use crate::units::bytes;
    let r = &run.report;
    if r.victims.is_empty() {
        println!(
            "no segment qualified: nothing {}",
            if run.dry_run {
                "would be collected"
            } else {
                "collected"
            }
        );
    } else if run.dry_run {
        println!("dry run: nothing changed. A pass would take");
        println!("victims                {:?}", r.victims);
        println!(
            "read                   {} segments, {} (segments all garbage are not read)",
            r.segments_read,
            bytes(r.bytes_read)
        );
        println!(
            "move                   {} (their live bytes by the discard statistics)",
            bytes(r.bytes_moved)
        );
        println!("free                   {}", bytes(r.bytes_freed));
        // The live bytes stay; the victims' garbage (freed - moved) goes.
        let after = (run.vlog_bytes_before + r.bytes_moved).saturating_sub(r.bytes_freed);
        let live = run
            .vlog_bytes_before
            .saturating_sub(run.vlog_garbage_bytes_before);
        println!(
            "space amplification    {:.3} now, about {:.3} after",
            run.space_amplification_before,
            if live == 0 {
                1.0
            } else {
                after as f64 / live as f64
            }
        );
        return;
    } else {
        println!("victims                {:?}", r.victims);
        println!(
            "read                   {} segments, {}, {} records",
            r.segments_read,
            bytes(r.bytes_read),
            r.records_read
        );
        println!(
            "moved                  {} records, {} ({} superseded by writes during the pass)",
            r.records_moved,
            bytes(r.bytes_moved),
            r.records_superseded
        );
        println!("freed                  {}", bytes(r.bytes_freed));
        println!("time                   {:.3} s", r.seconds);
    }
    println!(
        "segment size           {} ({})",
        bytes(run.segment_size),
        run.segment_size_from
    );
    println!("                             before          after");
    println!(
        "vLog segments          {:>15} {:>14}",
        run.vlog_segments_before, run.vlog_segments_after
    );
    println!(
        "vLog bytes             {:>15} {:>14}",
        bytes(run.vlog_bytes_before),
        bytes(run.vlog_bytes_after)
    );
    println!(
        "vLog garbage           {:>15} {:>14}",
        bytes(run.vlog_garbage_bytes_before),
        bytes(run.vlog_garbage_bytes_after)
    );
    println!(
        "vLog space amp         {:>15.3} {:>14.3}",
        run.space_amplification_before, run.space_amplification_after
    );
}
