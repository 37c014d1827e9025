//! One engine's run: open it on a fresh directory, run the phases, measure
//! each, close; and the parent's side of a run in a child process.

use super::data::{Expect, Values};
use super::figures::{
    div, EngineRun, GcFigures, PhaseBytes, PhaseReport, PointReadFigures, RunReport, Skipped, Space,
};
use super::store::{EngineKind, Store, StoreConfig};
use super::wisckey_store::WisckeyStore;
use super::workload::{self, Ctx, Outcome, Workload};
use super::{dir_size, reserve_bytes, say, BenchArgs, TableKindArg};
use crate::devio;
use crate::procio::ProcIo;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};
use wisckey::Options;

/// Default memtable size of every engine.
const MEMTABLE: usize = 64 << 20;
/// Default value threshold (separation) of every engine.
const THRESHOLD: usize = 1024;

/// Whether `--plot` names a picture file (wisckey's timeline) rather than
/// a directory.
pub fn is_picture_file(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("svg" | "png")
    )
}

/// Counters read at both ends of a phase.
struct Snap {
    proc_io: Option<ProcIo>,
    disk: Option<devio::DiskStats>,
    flash: Option<devio::Flash>,
    engine: Option<super::store::EngineBytes>,
    stats: Option<wisckey::Stats>,
}

impl Snap {
    fn take(store: &dyn Store, device: Option<&devio::Device>, flash: bool) -> Snap {
        Snap {
            proc_io: ProcIo::read(),
            disk: device.and_then(|d| devio::read_diskstats(&d.name)),
            flash: device.filter(|_| flash).map(devio::flash_counters),
            engine: store.engine_bytes(),
            stats: store.wisckey().map(|db| db.stats()),
        }
    }
}

/// Host and media bytes of a flash reading.
fn flash_bytes(f: &Option<devio::Flash>) -> (Option<u64>, Option<u64>) {
    match f {
        Some(devio::Flash::Reported {
            host_bytes_written,
            media_bytes_written,
            ..
        }) => (*host_bytes_written, *media_bytes_written),
        _ => (None, None),
    }
}

/// `sync; echo 3 > /proc/sys/vm/drop_caches`.
fn drop_caches() -> Result<()> {
    use std::io::Write;
    let status = std::process::Command::new("sync")
        .status()
        .context("running sync")?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .context("opening /proc/sys/vm/drop_caches")?;
    f.write_all(b"3\n")
        .context("writing 3 to /proc/sys/vm/drop_caches")?;
    Ok(())
}

/// Runs `workloads` on `kind` in a fresh directory, in this process.
pub fn run_engine(args: &BenchArgs, kind: EngineKind, workloads: &[Workload]) -> Result<EngineRun> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{}-bench-", kind.name()))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let dir = tmp.path().to_path_buf();
    if !args.keep {
        crate::cleanup::remove_on_signal(&dir);
    }
    let r = run_in(args, kind, workloads, &dir);
    crate::cleanup::forget(&dir);
    if args.keep {
        let kept = tmp.keep();
        say(&format!("kept {}", kept.display()));
    }
    r
}

/// Prints a run as JSON lines: its phases, then its run line.
pub fn print_json(r: &EngineRun) -> Result<()> {
    for p in &r.phases {
        println!("{}", serde_json::to_string(p)?);
    }
    println!("{}", serde_json::to_string(&r.run)?);
    Ok(())
}

fn store_config(args: &BenchArgs, dir: &Path) -> StoreConfig {
    let mut opts = Options::default()
        .gc_policy(args.gc_policy.policy())
        .gc_space_amp_target(args.gc_target)
        .background_gc(!args.no_gc)
        .gc_back_pressure(!args.no_gc_back_pressure)
        .gc_rate_limit(args.gc_rate)
        .io_backend(args.io_backend.backend())
        .write_mode(args.write_mode.mode())
        .bytes_per_sync(args.bytes_per_sync);
    if let Some(s) = args.segment_size {
        opts = opts.segment_size(s);
    }
    if let Some(s) = args.block_cache_size {
        opts = opts.block_cache_size(s);
    }
    StoreConfig {
        dir: dir.to_path_buf(),
        memtable_size: args.memtable_size.unwrap_or(MEMTABLE),
        sync: args.sync,
        compression: args.compress,
        value_threshold: args.value_threshold.unwrap_or(THRESHOLD),
        wisckey: opts,
        value_compression: args.value_compression,
        dictionary_samples: Vec::new(),
    }
}

/// Room for the keys YCSB D and E may insert.
fn key_room(args: &BenchArgs, workloads: &[Workload], ycsb_ops: u64) -> u64 {
    let inserting = workloads
        .iter()
        .filter(|w| matches!(w, Workload::Ycsb('d' | 'e')))
        .count() as u64;
    let per = if args.duration.is_some() {
        ycsb_ops.min(args.keys.max(1_000_000))
    } else {
        ycsb_ops
    };
    args.keys + inserting * per
}

fn run_in(
    args: &BenchArgs,
    kind: EngineKind,
    workloads: &[Workload],
    dir: &Path,
) -> Result<EngineRun> {
    let started = Instant::now();
    let reads = args.reads.unwrap_or(args.keys.min(200_000));
    let ycsb_ops = args.ycsb_ops.unwrap_or(reads);
    let values = Values::of_kind(args.value_size, args.value_dist, args.seed, args.value_kind);
    let expect = Expect::new(args.keys, key_room(args, workloads, ycsb_ops));
    let mut cfg = store_config(args, dir);
    if args.dictionary {
        cfg.dictionary_samples = values.samples(2_000);
    }
    let unordered = kind == EngineKind::Wisckey && args.table_kind == TableKindArg::Unordered;
    let store: Box<dyn Store> = if kind == EngineKind::Wisckey {
        Box::new(WisckeyStore::open_table(&cfg, unordered)?)
    } else {
        super::store::open(kind, &cfg)?
    };
    anyhow::ensure!(
        store.kind() == kind,
        "opened {} for {}",
        store.kind().name(),
        kind.name()
    );
    let describe = store.describe();
    say(&format!("{describe}; directory {}", dir.display()));

    let resolved = devio::resolve(dir);
    let (device, block_device) = match &resolved {
        devio::Resolved::Device(d) => (
            Some(d.clone()),
            format!("{} ({} on {})", d.name, d.fs_type, d.mount_point.display()),
        ),
        devio::Resolved::NoDevice { reason, .. } => {
            say(&format!("warning: {reason}"));
            (None, format!("none: {reason}"))
        }
    };
    let flash_first = device.as_ref().map(devio::flash_counters);
    let flash_seen = matches!(flash_first, Some(devio::Flash::Reported { .. }));
    let flash = match &flash_first {
        Some(devio::Flash::Reported { source, .. }) => format!("reported ({source})"),
        Some(devio::Flash::NotReported { reason }) => format!("not reported: {reason}"),
        None => "not reported: no block device".to_string(),
    };

    let interval = Duration::from_secs_f64(args.timeline_interval.max(0.01));
    let timeline = store
        .wisckey()
        .map(|db| crate::timeline::Timeline::start(db.clone(), interval, "open"));
    let ctx = Ctx {
        store: store.as_ref(),
        values: &values,
        expect: &expect,
        threads: args.threads as usize,
        batch: args.batch as usize,
        seed: args.seed,
        dist: args.dist,
        zipf_theta: args.zipf_theta,
        hot_keys: args.hot_keys,
        hot_ops: args.hot_ops,
        scan_length: args.scan_length,
        multi_get: if args.multi_get > 0 {
            args.multi_get
        } else {
            64
        },
        fields: args.fields as usize,
        deadline: args
            .duration
            .map(|d| Duration::try_from_secs_f64(d).unwrap_or(Duration::MAX)),
        interval,
        progress: true,
    };

    let mut phases = Vec::new();
    let mut skipped = Vec::new();
    let mut cold_failures = Vec::new();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for &w in workloads {
        let count = seen.entry(w.name()).or_default();
        *count += 1;
        let name = if *count == 1 {
            w.name()
        } else {
            format!("{}#{count}", w.name())
        };
        if w.needs_order() && unordered {
            say(&format!(
                "{name} skipped: the unordered table has no key order"
            ));
            skipped.push(Skipped {
                phase: name,
                reason: format!(
                    "the unordered table {} has no key order (a range scan yields Error::Unsupported)",
                    super::wisckey_store::UNORDERED_TABLE
                ),
            });
            continue;
        }
        if w == Workload::GcAll && kind != EngineKind::Wisckey {
            skipped.push(Skipped {
                phase: name,
                reason: format!("{} has no GC pass to run by hand", kind.name()),
            });
            continue;
        }
        let mut notes = Vec::new();
        let mut cold = false;
        if args.cold && w.reads() {
            match drop_caches() {
                Ok(()) => cold = true,
                Err(e) => {
                    say(&format!(
                        "warning: could not drop the page cache before {name} ({e:#}); the phase runs warm"
                    ));
                    notes.push(format!("asked cold, ran warm: {e:#}"));
                    cold_failures.push(name.clone());
                }
            }
        }
        if let Some(t) = &timeline {
            t.set_phase(&name);
        }
        say(&format!("{name}{}", if cold { " (cold)" } else { "" }));
        let before = Snap::take(store.as_ref(), device.as_ref(), flash_seen);
        let mut out = match w {
            Workload::FillSeq => workload::fill(&ctx, args.keys, false)?,
            Workload::FillRandom => workload::fill(&ctx, args.keys, true)?,
            Workload::Overwrite => {
                let ops = if args.updates > 0 {
                    args.updates
                } else if args.duration.is_some() {
                    u64::MAX
                } else {
                    args.keys
                };
                workload::overwrite(&ctx, ops)?
            }
            Workload::ReadRandom => workload::read_random(&ctx, reads, 1)?,
            Workload::MultiGet => workload::read_random(&ctx, reads, ctx.multi_get)?,
            Workload::ReadSeq => workload::read_seq(&ctx)?,
            Workload::SeekRandom => {
                let scans = args.scans.unwrap_or(args.keys.min(10_000));
                workload::seek_random(&ctx, scans)?
            }
            Workload::DeleteRandom => {
                let deletes = args.deletes.unwrap_or(args.keys / 10).max(1);
                workload::delete_random(&ctx, deletes)?
            }
            Workload::ReadWhileWriting => workload::read_while_writing(&ctx, reads)?,
            Workload::Ycsb(c) => workload::ycsb(&ctx, c, ycsb_ops)?,
            Workload::GcAll => gc_all(store.as_ref())?,
        };
        let after_start = Instant::now();
        let mut gc_wait = None;
        if w.writes() {
            store
                .flush()
                .with_context(|| format!("flush after {name}"))?;
            store
                .settle()
                .with_context(|| format!("waiting for background work after {name}"))?;
            if w == Workload::Overwrite && !args.no_gc {
                if let Some(db) = store.wisckey() {
                    gc_wait = Some(wait_for_gc(db, args)?);
                }
            }
            if let Err(e) = devio::syncfs(dir) {
                notes.push(format!(
                    "syncfs failed ({e}): the block-device figures may miss writeback"
                ));
            }
        }
        let after_secs = after_start.elapsed().as_secs_f64();
        let after = Snap::take(store.as_ref(), device.as_ref(), flash_seen);
        notes.append(&mut out.notes);
        phases.push(phase_report(
            kind, &name, out, after_secs, &before, &after, dir, &expect, cold, gc_wait, notes,
        )?);
    }

    // The sampler holds a handle on the database: stopped before the close.
    let samples = timeline.map(|t| t.finish());
    let stats = store.wisckey().map(|db| db.stats());
    if let Some(s) = stats.as_ref().filter(|s| s.value_bytes_stored > 0) {
        say(&format!(
            "values: {} raw, {} stored (ratio {:.2}), {} stored raw as incompressible",
            crate::units::bytes(s.value_bytes_raw),
            crate::units::bytes(s.value_bytes_stored),
            s.value_bytes_raw as f64 / s.value_bytes_stored as f64,
            s.values_incompressible
        ));
    }
    store.close().context("closing the engine")?;
    if let Some(samples) = samples {
        for p in &mut phases {
            if let Some(g) = &mut p.gc {
                g.vlog_space_amplification_max = samples
                    .iter()
                    .filter(|s| s.phase == p.phase)
                    .map(|s| s.vlog_space_amplification)
                    .chain(std::iter::once(g.vlog_space_amplification_end))
                    .reduce(f64::max);
            }
        }
        write_timeline(args, &samples)?;
    }
    let run = RunReport {
        record: "run".into(),
        engine: kind.name().into(),
        describe,
        config: serde_json::to_value(args)?,
        block_device,
        flash,
        skipped,
        cold_failures,
        peak_rss_bytes: devio::peak_rss_bytes(),
        secs: started.elapsed().as_secs_f64(),
        stats: stats.map(serde_json::to_value).transpose()?,
    };
    Ok(EngineRun { phases, run })
}

/// `gc`: one pass over every sealed segment.
fn gc_all(store: &dyn Store) -> Result<Outcome> {
    let db = store.wisckey().context("gc: not wisckey")?;
    let start = Instant::now();
    let report = db
        .gc(wisckey::GcOptions::default().all_sealed(true))
        .context("GC of every sealed segment")?;
    let mut out = Outcome {
        ops: 1,
        secs: start.elapsed().as_secs_f64(),
        ..Outcome::default()
    };
    out.ops_by_kind.insert("gc".into(), 1);
    out.notes.push(format!(
        "GC of every sealed segment: {} victims, {} moved, {} freed",
        report.victims.len(),
        crate::units::bytes(report.bytes_moved),
        crate::units::bytes(report.bytes_freed)
    ));
    Ok(out)
}

/// Waits (bounded by --gc-wait) until wisckey's automatic GC is under the
/// target and idle (no pass for 1.5 s, so that a round it started near the
/// target has finished); returns (seconds, reached).
fn wait_for_gc(db: &wisckey::Db, args: &BenchArgs) -> Result<(f64, bool)> {
    let start = Instant::now();
    say(&format!(
        "waiting up to {} s for automatic GC to settle (vLog space amp {:.3}, target {})",
        args.gc_wait,
        db.stats().vlog_space_amplification,
        args.gc_target
    ));
    // `inf` (or anything too long to represent) waits for as long as it takes.
    let limit = Duration::try_from_secs_f64(args.gc_wait.max(0.0)).unwrap_or(Duration::MAX);
    let mut passes = db.stats().gc_passes;
    let mut quiet_since = Instant::now();
    let mut reached = false;
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        let st = db.stats();
        if st.gc_passes != passes {
            passes = st.gc_passes;
            quiet_since = Instant::now();
        }
        if st.vlog_space_amplification <= args.gc_target
            && quiet_since.elapsed() >= Duration::from_millis(1500)
        {
            reached = true;
            break;
        }
    }
    db.wait_for_background()
        .context("waiting for compactions after GC")?;
    Ok((start.elapsed().as_secs_f64(), reached))
}

#[allow(clippy::too_many_arguments)]
fn phase_report(
    kind: EngineKind,
    name: &str,
    out: Outcome,
    after_secs: f64,
    before: &Snap,
    after: &Snap,
    dir: &Path,
    expect: &Expect,
    cold: bool,
    gc_wait: Option<(f64, bool)>,
    notes: Vec<String>,
) -> Result<PhaseReport> {
    let io = after.proc_io.zip(before.proc_io).map(|(a, b)| a.since(&b));
    let disk = after.disk.zip(before.disk).map(|(a, b)| a.since(&b));
    let (h0, m0) = flash_bytes(&before.flash);
    let (h1, m1) = flash_bytes(&after.flash);
    let d = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| a.saturating_sub(b));
    let engine_written = d(
        after.engine.map(|e| e.written),
        before.engine.map(|e| e.written),
    );
    let engine_gc = d(
        after.engine.and_then(|e| e.gc_written),
        before.engine.and_then(|e| e.gc_written),
    );
    let bytes = PhaseBytes {
        user_written: out.user_written,
        user_read: out.user_read,
        engine_written,
        engine_gc_written: engine_gc,
        process_written: io.map(|io| io.device_write_bytes()),
        process_read: io.map(|io| io.read_bytes),
        process_wchar: io.map(|io| io.wchar),
        block_written: disk.map(|d| d.bytes_written()),
        block_read: disk.map(|d| d.bytes_read()),
        flash_host_written: d(h1, h0),
        flash_media_written: d(m1, m0),
    };
    let (files, db_bytes, db_allocated_bytes) = dir_size(dir)?;
    let live = expect.live_bytes();
    let space = Space {
        files,
        db_bytes,
        db_allocated_bytes,
        reserve_bytes: reserve_bytes(dir),
        live_user_bytes: live,
        live_keys: expect.live_keys(),
        space_amplification: div(db_bytes, live),
    };
    let gc = match (&before.stats, &after.stats) {
        (Some(b), Some(a)) => {
            let sub = |x: u64, y: u64| x.saturating_sub(y);
            let vlog = sub(a.vlog_bytes_written, b.vlog_bytes_written);
            let moved = sub(a.gc_bytes_written, b.gc_bytes_written);
            Some(GcFigures {
                passes: sub(a.gc_passes, b.gc_passes),
                bytes_read: sub(a.gc_bytes_read, b.gc_bytes_read),
                bytes_moved: moved,
                records_moved: sub(a.gc_records_moved, b.gc_records_moved),
                bytes_freed: sub(a.gc_bytes_freed, b.gc_bytes_freed),
                gc_write_amplification: div(vlog + moved, vlog),
                wait_secs: gc_wait.map_or(0.0, |(s, _)| s),
                reached_target: gc_wait.map(|(_, r)| r),
                vlog_space_amplification_max: None,
                vlog_space_amplification_end: a.vlog_space_amplification,
                write_stalls: sub(a.gc_write_stalls, b.gc_write_stalls),
                stall_secs: (a.gc_stall_seconds - b.gc_stall_seconds).max(0.0),
            })
        }
        _ => None,
    };
    let point_reads = match (&before.stats, &after.stats) {
        (Some(b), Some(a)) if a.gets > b.gets => {
            let sub = |x: u64, y: u64| x.saturating_sub(y);
            let gets = sub(a.gets, b.gets);
            let blocks = sub(a.get_block_reads, b.get_block_reads);
            let values = sub(a.get_vlog_reads, b.get_vlog_reads);
            let hits = sub(a.block_cache_hits, b.block_cache_hits);
            let misses = sub(a.block_cache_misses, b.block_cache_misses);
            Some(PointReadFigures {
                gets,
                block_reads: blocks,
                vlog_reads: values,
                reads_per_get: div(blocks + values, gets).unwrap_or(0.0),
                block_cache_hit_rate: div(hits, hits + misses),
                block_cache_bytes: a.block_cache_bytes,
                index_filter_bytes: a.index_filter_bytes,
            })
        }
        _ => None,
    };
    let user = out.user_written + out.user_read;
    Ok(PhaseReport {
        record: "phase".into(),
        engine: kind.name().into(),
        phase: name.into(),
        ops: out.ops,
        ops_by_kind: out.ops_by_kind,
        secs: out.secs,
        after_secs,
        ops_per_sec: out.ops as f64 / out.secs.max(1e-9),
        mb_per_sec: user as f64 / 1e6 / out.secs.max(1e-9),
        latency: out.latency,
        throughput: out.throughput,
        write_amplification: bytes.write_amplification(),
        read_amplification: bytes.read_amplification(),
        bytes,
        space,
        peak_rss_bytes: devio::peak_rss_bytes(),
        rss_bytes: devio::rss_bytes(),
        cold,
        gc,
        point_reads,
        notes,
    })
}

/// `--timeline FILE.csv`, and `--plot` (a picture file, or `timeline.svg`
/// in a directory): wisckey's sampler.
fn write_timeline(args: &BenchArgs, samples: &[crate::timeline::Sample]) -> Result<()> {
    // Each child of a side-by-side run writes its own file (`t-wisckey#2.csv`).
    let labelled = |p: &Path| -> std::path::PathBuf {
        let Some(label) = &args.child else {
            return p.to_path_buf();
        };
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match p.extension() {
            Some(ext) => format!("{stem}-{label}.{}", ext.to_string_lossy()),
            None => format!("{stem}-{label}"),
        };
        p.with_file_name(name)
    };
    if let Some(p) = &args.timeline {
        let p = &labelled(p);
        crate::timeline::write_csv(p, samples)?;
        say(&format!(
            "timeline: {} samples written to {}",
            samples.len(),
            p.display()
        ));
    }
    let Some(p) = &args.plot else {
        return Ok(());
    };
    let path = if is_picture_file(p) {
        labelled(p)
    } else {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        match &args.child {
            Some(label) => p.join(format!("timeline-{label}.svg")),
            None => p.join("timeline.svg"),
        }
    };
    let title = format!(
        "wisckey, {} keys x {} B, GC {} target {}{}",
        args.keys,
        args.value_size,
        if args.no_gc {
            "off,"
        } else {
            args.gc_policy.name()
        },
        args.gc_target,
        if args.gc_rate > 0 {
            format!(", rate limit {}/s", crate::units::bytes(args.gc_rate))
        } else {
            String::new()
        }
    );
    crate::timeline::plot(
        &path,
        samples,
        &title,
        (!args.no_gc).then_some(args.gc_target),
    )
    .with_context(|| format!("drawing {}", path.display()))?;
    say(&format!("timeline plot written to {}", path.display()));
    Ok(())
}

/// Runs one engine in a child process (this binary, `bench --engines
/// KIND --json --child`) and reads its JSON lines.
pub fn run_child(kind: EngineKind, label: &str) -> Result<EngineRun> {
    let exe =
        std::env::current_exe().context("finding this program to run an engine in a child")?;
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    let mut raw = std::env::args_os()
        .skip(1)
        .skip_while(|a| a != "bench")
        .skip(1);
    while let Some(a) = raw.next() {
        let s = a.to_string_lossy();
        if s == "--engines" {
            raw.next();
            continue;
        }
        if s == "--child" {
            raw.next();
            continue;
        }
        if s.starts_with("--engines=") || s.starts_with("--child=") || s == "--json" {
            continue;
        }
        argv.push(a);
    }
    say(&format!("{}: starting its child process", kind.name()));
    let mut child = std::process::Command::new(exe)
        .arg("bench")
        .args(&argv)
        .args(["--engines", kind.name(), "--json", "--child", label])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting the child process of {}", kind.name()))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("the child process of {} has no stdout", kind.name());
    };
    let mut phases = Vec::new();
    let mut run = None;
    let mut error = None;
    let mut broken = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                broken = Some(format!("reading its output: {e}"));
                break;
            }
        };
        let v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let parsed = match v["type"].as_str() {
            Some("phase") => serde_json::from_value(v).map(|p| phases.push(p)),
            Some("run") => serde_json::from_value(v).map(|r| run = Some(r)),
            _ => {
                if v["ok"] == false {
                    error = v["error"].as_str().map(str::to_string);
                }
                Ok(())
            }
        };
        if let Err(e) = parsed {
            broken = Some(format!("a line it printed does not parse ({e}): {line}"));
            break;
        }
    }
    if let Some(why) = broken {
        // Not left running beside the next engine's run.
        let _ = child.kill();
        let _ = child.wait();
        bail!("{}: {why}", kind.name());
    }
    let status = child.wait().context("waiting for the child process")?;
    match run {
        Some(run) if status.success() => Ok(EngineRun { phases, run }),
        _ => bail!(
            "{} failed ({status}){}",
            kind.name(),
            error.map(|e| format!(": {e}")).unwrap_or_default()
        ),
    }
}
