//! `vlog-tools bench`: workloads in the style of db_bench and YCSB on one
//! engine or several side by side, with throughput, HDR latencies, and write,
//! read and space amplification at every layer that can be seen.
//!
//! One engine runs in this process. With several (`--engines
//! wisckey,rocksdb,...`) each runs in a child process of its own (this
//! binary again, with `--engines` naming one engine), on a fresh directory,
//! so its peak RSS is its own; the parent gathers their JSON lines and
//! prints one table.

mod data;
pub mod figures;
mod peers;
mod plots;
mod progress;
mod report;
mod run;
pub mod store;
mod wisckey_store;
mod workload;

use anyhow::{ensure, Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use std::path::{Path, PathBuf};
use wisckey::{GcPolicy, IoBackend};

pub use data::ValueDist;
pub use workload::{Dist, Workload};

pub const LONG_ABOUT: &str = concat!(
    "\
Run workloads on a fresh database in a temporary directory (removed at the end
unless --keep), on wisckey or side by side on several engines, and measure.

Keys are `key` and the index as 16 decimal digits (19 bytes); values are
pseudo-random bytes (not compressible) headed by the key's index and version,
so every read is checked against what was acknowledged before it.

Workloads (--workloads, comma-separated, run in order; repeats allowed):
",
    workload::workload_help!(),
    "
Without --workloads: fillrandom (fillseq with --order seq), overwrite when
--updates > 0, readrandom, multiget when --multi-get > 0, readseq, and gc +
readseq with --gc-all-before-scan.

--duration S cuts every phase with an operation count short after S seconds
(the fills and full scans always run to the end).

Figures for every phase:
  throughput   ops/s, and MB/s of user bytes (key + value; MB = 10^6 bytes), over
               the operations alone; the phase's flush, settle and GC wait come
               after, inside its amplification window
  latency      p50 / p99 / p99.9 / max per operation kind (HDR histogram)
  write amp    at each layer, over the user bytes written:
                 engine   the engine's own byte counters
                 process  /proc/self/io write_bytes - cancelled_write_bytes
                 block    sectors written to the block device under DIR
                          (/proc/diskstats, after a syncfs; counts every process
                          writing to that device; none on tmpfs or overlay)
                 flash    the device's SMART host and media writes, where reported
  read amp     bytes read from storage (process, block device) per byte returned
  space amp    bytes of the directory over the live user bytes, at phase end
  peak RSS     VmHWM of the process so far
  point reads  wisckey: data blocks and values its gets read from files, their
               sum per get, the block cache's hit rate (--block-cache-size)
With --cold the page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches,
needs root) before every phase that reads; a failed drop is reported and the
phase marked warm.

Engines (--engines): wisckey; rocksdb and rocksdb-blob (RocksDB plain, and with
integrated BlobDB: blob files, min_blob_size --value-threshold, blob GC at age
cutoff 0.25) with the cargo feature `rocksdb`; fjall and fjall-kv (fjall 3, and
with key-value separation) with the feature `fjall`. Every engine gets the same
keys and values, the same memtable size, compression off, and no fsync per write
unless --sync.

Output: a table per phase, or --json: one JSON object per line, one per phase
({\"type\": \"phase\", ...}) and one per engine at its end ({\"type\": \"run\", ...}).
--plot DIR writes throughput.svg, latency.svg and amplification.svg (and
wisckey's timeline.svg); --plot FILE.svg|FILE.png draws wisckey's timeline."
);

/// The order in which the default workloads load keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Ascending key order (fillseq).
    Seq,
    /// A shuffle of all keys (fillrandom).
    Random,
}

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct BenchArgs {
    /// Workloads to run, in order, comma-separated (see above) [default:
    /// fillrandom, then as the other options ask].
    #[arg(long, value_delimiter = ',', value_parser = parse_workload)]
    pub workloads: Vec<String>,

    /// Engines to run the workloads on, one after another, each in a child
    /// process on a fresh directory: wisckey, rocksdb, rocksdb-blob, fjall,
    /// fjall-kv (the peers need the tool built with their cargo features).
    #[arg(long, value_delimiter = ',', default_value = "wisckey", value_parser = parse_engine)]
    pub engines: Vec<String>,

    /// Number of distinct keys the fills write.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,

    /// Bytes per value (a size: 4096, 4KiB, 1MiB); the mean with
    /// --value-dist uniform.
    #[arg(long, default_value_t = 4096, value_parser = crate::units::parse_size_usize)]
    pub value_size: usize,

    /// Value sizes: `fixed` (--value-size) or `uniform` (in [size/2, 3*size/2]).
    #[arg(long, value_enum, default_value_t = ValueDist::Fixed)]
    pub value_dist: ValueDist,

    /// Load order of the default workloads: `seq` (fillseq) or `random` (fillrandom).
    #[arg(long, value_enum, default_value_t = Order::Random)]
    pub order: Order,

    /// Puts per write batch in the fills; 1 uses plain puts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,

    /// Client threads of every phase (readwhilewriting adds one writer).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: u64,

    /// Every write durable on return (fsync per write or commit group).
    #[arg(long)]
    pub sync: bool,

    /// Compress table blocks: wisckey's SSTable blocks with zstd level 1 (its
    /// only codec; values in its vLog stay uncompressed), RocksDB's and
    /// fjall's blocks (and blobs) with lz4. Off by default: the values are
    /// random bytes anyway.
    #[arg(long)]
    pub compress: bool,

    /// What values are made of: `random` bytes (incompressible) or `json`
    /// (JSON-like records of 1 to 8 KiB, seeded; --value-size and
    /// --value-dist are then ignored).
    #[arg(long, value_enum, default_value_t = data::ValueKind::Random)]
    pub value_kind: data::ValueKind,

    /// wisckey: compress the values the table keeps in the vLog: `none` or
    /// `zstd[:LEVEL]` (level 3 when not given). The run line's stats give
    /// `value_bytes_raw` and `value_bytes_stored`; their ratio is printed.
    #[arg(long, default_value = "none", value_parser = parse_value_compression)]
    pub value_compression: wisckey::ValueCompression,

    /// wisckey, with --value-compression zstd: train a dictionary before
    /// the first phase, from 2,000 values of the generator (versions no
    /// phase writes), with `Table::train_dictionary_from`.
    #[arg(long)]
    pub dictionary: bool,

    /// Operations of readrandom, multiget and readwhilewriting [default:
    /// min(keys, 200000)].
    #[arg(long)]
    pub reads: Option<u64>,

    /// Overwrites of the overwrite phase [default: --keys when the phase is
    /// named in --workloads; 0 adds no overwrite phase to the default list].
    #[arg(long, default_value_t = 0)]
    pub updates: u64,

    /// Deletes of deleterandom [default: keys / 10].
    #[arg(long)]
    pub deletes: Option<u64>,

    /// Range scans of seekrandom [default: min(keys, 10000)].
    #[arg(long)]
    pub scans: Option<u64>,

    /// Keys per range scan of seekrandom; the longest scan of YCSB E.
    #[arg(long, default_value_t = 100)]
    pub scan_length: usize,

    /// Operations of each YCSB workload [default: --reads].
    #[arg(long)]
    pub ycsb_ops: Option<u64>,

    /// Fields per YCSB record (the record is --value-size bytes): with more
    /// than one, an update reads the record and writes it back with a field
    /// changed, as YCSB's key-value bindings do (one get and one put of the
    /// whole record); with one, an update is a put.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub fields: u64,

    /// Seconds: cut every phase with an operation count short after this.
    #[arg(long)]
    pub duration: Option<f64>,

    /// Parent of the temporary database directory [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// Keep the database directory instead of deleting it (its path is printed).
    #[arg(long)]
    pub keep: bool,

    /// One JSON object per line on stdout instead of the table (progress
    /// goes to stderr either way).
    #[arg(long)]
    pub json: bool,

    /// Seed of the shuffle, the keys drawn and the value bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Values of at least this many bytes are separated from the keys
    /// (wisckey's value threshold, BlobDB's min_blob_size, fjall's
    /// separation threshold) [default: 1024].
    #[arg(long, value_parser = crate::units::parse_size_usize)]
    pub value_threshold: Option<usize>,

    /// wisckey's Options::segment_size [default: the engine's, 128 MiB].
    #[arg(long, value_parser = crate::units::parse_size)]
    pub segment_size: Option<u64>,

    /// wisckey's Options::block_cache_size, 0 for none [default: the
    /// engine's, 64 MiB].
    #[arg(long, value_parser = crate::units::parse_size)]
    pub block_cache_size: Option<u64>,

    /// Memtable (write buffer) bytes of every engine [default: 64 MiB].
    #[arg(long, value_parser = crate::units::parse_size_usize)]
    pub memtable_size: Option<usize>,

    /// Which keys overwrite, readwhilewriting's writer and hot/cold go to.
    #[arg(long, value_enum, default_value_t = Dist::Uniform)]
    pub dist: Dist,

    /// Skew of the Zipfian distributions, in (0, 1).
    #[arg(long, default_value_t = 0.99)]
    pub zipf_theta: f64,

    /// --dist hotcold: the fraction of keys that are hot.
    #[arg(long, default_value_t = 0.2)]
    pub hot_keys: f64,

    /// --dist hotcold: the fraction of operations that go to hot keys.
    #[arg(long, default_value_t = 0.8)]
    pub hot_ops: f64,

    /// wisckey's Options::gc_policy.
    #[arg(long, value_enum, default_value_t = PolicyArg::CostBenefit)]
    pub gc_policy: PolicyArg,

    /// wisckey's Options::gc_space_amp_target.
    #[arg(long, default_value_t = 1.5)]
    pub gc_target: f64,

    /// wisckey's Options::background_gc(false): no automatic GC.
    #[arg(long)]
    pub no_gc: bool,

    /// wisckey's Options::gc_back_pressure(false): writers never wait for
    /// GC, so the vLog may outgrow --gc-target while they outrun it.
    #[arg(long)]
    pub no_gc_back_pressure: bool,

    /// wisckey's Options::gc_rate_limit, bytes per second (0: none).
    #[arg(long, default_value_t = 0, value_parser = crate::units::parse_size)]
    pub gc_rate: u64,

    /// After overwrite, the most seconds to wait for wisckey's automatic GC
    /// to bring the vLog space amplification under --gc-target.
    #[arg(long, default_value_t = 30.0)]
    pub gc_wait: f64,

    /// wisckey: write the sampler's time series (user rate, GC rates, vLog
    /// space amplification, write amplification, phase) to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    pub timeline: Option<PathBuf>,

    /// A directory: throughput.svg, latency.svg, amplification.svg (and
    /// wisckey's timeline.svg). A file ending .svg or .png: wisckey's timeline.
    #[arg(long, value_name = "DIR|FILE.svg|FILE.png")]
    pub plot: Option<PathBuf>,

    /// Seconds between two samples of the throughput and of the timeline.
    #[arg(long, default_value_t = 1.0)]
    pub timeline_interval: f64,

    /// Drop the page cache before every phase that reads (needs root).
    #[arg(long)]
    pub cold: bool,

    /// Keys per multi_get call; > 0 adds a multiget phase to the default list.
    #[arg(long, default_value_t = 0)]
    pub multi_get: usize,

    /// Adds gc and a second readseq to the default list.
    #[arg(long)]
    pub gc_all_before_scan: bool,

    /// wisckey's Options::io_backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub io_backend: BackendArg,

    /// wisckey's Options::write_mode: `writeback` starts the writeback of
    /// every --bytes-per-sync bytes appended; `buffered` leaves it to the
    /// kernel (`vlog-tools write-modes` measures both on a disk).
    #[arg(long, value_enum, default_value_t = WriteModeArg::Writeback)]
    pub write_mode: WriteModeArg,

    /// wisckey's Options::bytes_per_sync, for --write-mode writeback.
    #[arg(long, default_value = "4MiB", value_parser = crate::units::parse_size)]
    pub bytes_per_sync: u64,

    /// wisckey: the table the workload runs against: `ordered` (the default
    /// table) or `unordered` (a table `bench` made with
    /// TableOptions::unordered(); the phases that need key order are skipped).
    #[arg(long, value_enum, default_value_t = TableKindArg::Ordered)]
    pub table_kind: TableKindArg,

    /// Internal: this process is the child that runs one engine for a
    /// parent running several, under this label; it prints JSON lines.
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub child: Option<String>,
}

/// Which kind of wisckey table the workload runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKindArg {
    /// The default table (ordered: an LSM-tree index, range scans).
    Ordered,
    /// A named unordered table (`bench`): a keydir, no range scans.
    Unordered,
}

/// A [`GcPolicy`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyArg {
    /// The oldest sealed segment first (WiscKey's tail).
    Tail,
    /// The segment with the most garbage (by fraction) first.
    Greedy,
    /// LFS cost-benefit: (1 - u) * age / (1 + u).
    CostBenefit,
}

impl PolicyArg {
    pub fn policy(self) -> GcPolicy {
        match self {
            PolicyArg::Tail => GcPolicy::Tail,
            PolicyArg::Greedy => GcPolicy::Greedy,
            PolicyArg::CostBenefit => GcPolicy::CostBenefit,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            PolicyArg::Tail => "tail",
            PolicyArg::Greedy => "greedy",
            PolicyArg::CostBenefit => "cost-benefit",
        }
    }
}

/// An [`IoBackend`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendArg {
    /// The engine picks.
    Auto,
    /// io_uring (may be unsupported by this build of the engine).
    IoUring,
    /// pread/pwrite.
    Sync,
}

/// `--write-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteModeArg {
    /// Writeback started every --bytes-per-sync bytes.
    Writeback,
    /// Plain buffered writes.
    Buffered,
}

impl WriteModeArg {
    fn mode(self) -> wisckey::WriteMode {
        match self {
            WriteModeArg::Writeback => wisckey::WriteMode::Writeback,
            WriteModeArg::Buffered => wisckey::WriteMode::Buffered,
        }
    }
}

impl BackendArg {
    fn backend(self) -> IoBackend {
        match self {
            BackendArg::Auto => IoBackend::Auto,
            BackendArg::IoUring => IoBackend::IoUring,
            BackendArg::Sync => IoBackend::Sync,
        }
    }
}

/// A workload name on the command line (a bad one is a usage error).
fn parse_workload(s: &str) -> std::result::Result<String, String> {
    match Workload::parse(s.trim()) {
        Some(_) => Ok(s.trim().to_string()),
        None => Err(format!(
            "no workload `{s}`; the workloads are:\n{}",
            Workload::HELP
        )),
    }
}

/// An engine name on the command line (a bad one is a usage error).
/// `none`, `zstd` or `zstd:LEVEL`.
fn parse_value_compression(s: &str) -> std::result::Result<wisckey::ValueCompression, String> {
    match s.split_once(':') {
        None if s == "none" => Ok(wisckey::ValueCompression::None),
        None if s == "zstd" => Ok(wisckey::ValueCompression::Zstd { level: 3 }),
        Some(("zstd", l)) => l
            .parse()
            .map(|level| wisckey::ValueCompression::Zstd { level })
            .map_err(|_| format!("zstd level {l:?} is not a number")),
        _ => Err(format!("{s:?}: expected none, zstd or zstd:LEVEL")),
    }
}

fn parse_engine(s: &str) -> std::result::Result<String, String> {
    match store::EngineKind::parse(s.trim()) {
        Some(_) => Ok(s.trim().to_string()),
        None => Err(format!(
            "no engine `{s}`; the engines are wisckey, rocksdb, rocksdb-blob, fjall, fjall-kv"
        )),
    }
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Progress goes to stderr, so `--json` output on stdout stays JSON.
fn say(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// The name of wisckey's disk reserve in a database directory.
const RESERVE: &str = "RESERVE";

/// Files, total length and allocated bytes under `dir`, wisckey's disk
/// reserve (`RESERVE`: preallocated, no data) not counted: it is room kept
/// for a full disk, not space the data takes.
pub fn dir_size(dir: &Path) -> Result<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut files, mut len, mut alloc) = (0, 0, 0);
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name() == RESERVE {
            continue;
        }
        // Background work may delete a file between the listing and this.
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if meta.is_dir() {
            let (f, l, a) = match dir_size(&entry.path()) {
                Ok(x) => x,
                Err(_) if !entry.path().exists() => continue,
                Err(e) => return Err(e),
            };
            files += f;
            len += l;
            alloc += a;
        } else {
            files += 1;
            len += meta.len();
            alloc += meta.blocks() * 512;
        }
    }
    Ok((files, len, alloc))
}

/// The length of the disk reserve in database directory `dir` (0: none).
pub fn reserve_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(RESERVE)).map_or(0, |m| m.len())
}

/// The workloads to run: `--workloads`, or the default list.
fn plan(args: &BenchArgs) -> Result<Vec<Workload>> {
    if !args.workloads.is_empty() {
        return args
            .workloads
            .iter()
            .map(|w| {
                Workload::parse(w.trim()).with_context(|| {
                    format!(
                        "--workloads: no workload `{w}`; the workloads are:\n{}",
                        Workload::HELP
                    )
                })
            })
            .collect();
    }
    let mut list = vec![match args.order {
        Order::Seq => Workload::FillSeq,
        Order::Random => Workload::FillRandom,
    }];
    if args.updates > 0 {
        list.push(Workload::Overwrite);
    }
    list.push(Workload::ReadRandom);
    if args.multi_get > 0 {
        list.push(Workload::MultiGet);
    }
    list.push(Workload::ReadSeq);
    if args.gc_all_before_scan {
        list.extend([Workload::GcAll, Workload::ReadSeq]);
    }
    Ok(list)
}

/// `vlog-tools bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(args.keys > 0, "--keys must be at least 1");
    ensure!(
        args.zipf_theta > 0.0 && args.zipf_theta < 1.0,
        "--zipf-theta must be in (0, 1)"
    );
    ensure!(args.gc_target >= 1.0, "--gc-target must be at least 1.0");
    ensure!(
        (0.0..=1.0).contains(&args.hot_keys) && args.hot_keys > 0.0,
        "--hot-keys must be in (0, 1]"
    );
    ensure!(
        (0.0..=1.0).contains(&args.hot_ops),
        "--hot-ops must be in [0, 1]"
    );
    if let Some(d) = args.duration {
        ensure!(
            d > 0.0 && d.is_finite(),
            "--duration must be a positive number of seconds"
        );
    }
    ensure!(
        !args.gc_wait.is_nan() && args.gc_wait >= 0.0,
        "--gc-wait must be 0 or more seconds (inf: no limit)"
    );
    ensure!(args.value_size > 0, "--value-size must be at least 1 byte");
    ensure!(
        !args.dictionary || args.value_compression != wisckey::ValueCompression::None,
        "--dictionary needs --value-compression zstd[:LEVEL]"
    );
    let workloads = plan(args)?;
    if let Some(p) = &args.plot {
        if let Some(ext) = p.extension().and_then(|e| e.to_str()) {
            ensure!(
                run::is_picture_file(p),
                "--plot {}: .{ext} is not a picture this tool draws; give FILE.svg or FILE.png \
                 (wisckey's timeline) or a directory without an extension (every plot)",
                p.display()
            );
        }
    }
    let mut engines = Vec::new();
    for e in &args.engines {
        // The names were checked by the parser.
        let kind = store::EngineKind::parse(e.trim()).context("--engines")?;
        ensure!(
            kind.built(),
            "--engines {}: this vlog-tools was built without it; build it with \
             `cargo build --release -p vlog-tools --features {}`",
            kind.name(),
            kind.feature().unwrap_or_default()
        );
        engines.push(kind);
    }
    ensure!(!engines.is_empty(), "--engines names no engine");
    if engines.len() == 1 {
        let r = run::run_engine(args, engines[0], &workloads)?;
        if args.json {
            run::print_json(&r)?;
        } else {
            report::print(std::slice::from_ref(&r), args);
        }
        // A child leaves the pictures to its parent, which draws every
        // engine's run together.
        if args.child.is_none() {
            finish_plots(args, std::slice::from_ref(&r))?;
        }
        return Ok(());
    }
    // Side by side: each engine in a child process; an engine named twice
    // (an A/A run, to see the noise) is labelled `name#2`.
    let mut runs = Vec::new();
    let mut failed = Vec::new();
    for (i, &kind) in engines.iter().enumerate() {
        let repeat = engines[..i].iter().filter(|&&k| k == kind).count();
        let label = if repeat == 0 {
            kind.name().to_string()
        } else {
            format!("{}#{}", kind.name(), repeat + 1)
        };
        match run::run_child(kind, &label) {
            Ok(mut r) => {
                r.run.engine = label.clone();
                for p in &mut r.phases {
                    p.engine = label.clone();
                }
                if args.json {
                    run::print_json(&r)?;
                }
                runs.push(r);
            }
            Err(e) => {
                say(&format!("{label} failed: {e:#}"));
                failed.push(format!("{label}: {e:#}"));
            }
        }
    }
    if !args.json && !runs.is_empty() {
        report::print(&runs, args);
    }
    finish_plots(args, &runs)?;
    ensure!(failed.is_empty(), "engines failed: {}", failed.join("; "));
    Ok(())
}

/// `--plot DIR`: the pictures of every engine's run.
fn finish_plots(args: &BenchArgs, runs: &[figures::EngineRun]) -> Result<()> {
    let Some(dir) = &args.plot else {
        return Ok(());
    };
    if run::is_picture_file(dir) {
        return Ok(());
    }
    let title = format!(
        "{} keys x {} B{}",
        args.keys,
        args.value_size,
        if args.value_dist == ValueDist::Uniform {
            " (uniform sizes)"
        } else {
            ""
        }
    );
    for p in plots::write_all(dir, runs, &title)? {
        say(&format!("plot written to {}", p.display()));
    }
    Ok(())
}
