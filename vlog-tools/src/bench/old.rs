//! `vlog-tools bench`: the load / read / scan benchmark.
//!
//! Phases, each timed with `Instant`:
//! 1. load: N puts (optionally in batches, from several threads), then
//!    `flush` and `sync`; `/proc/self/io` is read before and after.
//! 2. space: the bytes of every file in the database directory.
//! 3. read: R random `get`s, each value compared with the expected bytes.
//! 4. update (with `--updates U`): U overwrites of existing keys (uniform or
//!    scrambled Zipfian), then `flush`, settle, `sync` and a bounded wait for
//!    automatic GC; write amplification, GC counters and space of the phase.
//! 5. read: R random `get`s, each value compared with the expected bytes;
//!    then (with `--multi-get B`) the same keys through `multi_get` in batches.
//! 6. scan: one forward `iter()` over everything; must yield exactly N entries.
//!    With `--gc-all-before-scan`, a GC pass over every sealed segment and a
//!    second scan.
//!
//! With `--cold` the page cache is dropped before each read phase.
//!
//! Every phase goes through a [`Table`]: the default table (ordered) unless
//! `--table-kind unordered`, which runs the same workload against a named
//! unordered (Bitcask-style) table; the phases that need key order (the
//! scans, and `--gc-all-before-scan`, which exists to compare two scans)
//! are then skipped and listed as such in the report.

use crate::procio::ProcIo;
use crate::zipf::ScrambledZipf;
use anyhow::{bail, ensure, Context, Result};
use clap::ValueEnum;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wisckey::{
    Db, GcOptions, GcPolicy, GcReport, IoBackend, Options, Stats, Table, TableOptions, WriteBatch,
    WriteOptions,
};

pub const LONG_ABOUT: &str = "\
Load keys into a fresh database in a temporary directory, then measure.

Keys are `key` followed by the index as 16 decimal digits (19 bytes); values are
pseudo-random bytes (not compressible) whose first 8 bytes are the key's index
(little-endian), so every read can be checked. After the load the database is
flushed (memtable -> SSTable), compactions are left to settle, and the vLog is
synced.

Reported:
  load      ops/s and MB/s of user bytes (key + value; MB = 10^6 bytes), for
            the puts alone and for puts + flush + settle + sync
  write amp /proc/self/io (write_bytes - cancelled_write_bytes) over user bytes,
            wchar over user bytes, and the engine's stats().write_amplification,
            over puts + flush + settle + sync; again over the whole run, which adds
            background compaction still running when flush() returned.
            Linux charges write_bytes when a page is dirtied, so the figure is
            complete right after the writes, in whole pages.
  space amp bytes of all files in the directory over the live user bytes
  reads     random gets (uniform, with repetition), verified: ops/s, MB/s
  scan      one forward scan of every key: entries (must equal --keys), MB/s

Update phase (--updates U > 0), after the load:
  U overwrites of existing keys, each with a new value of the same size
  (--dist uniform, or zipf with --zipf-theta, hot keys scattered over the key
  space), then flush, settle, sync, and up to --gc-wait seconds for automatic
  GC to bring stats().vlog_space_amplification under --gc-target.
  updates   ops/s, MB/s of the overwrites alone
  write amp /proc/self/io and the engine's counters (vLog user + GC + SST +
            manifest bytes), deltas over the phase, over the updates' user bytes
  GC        passes, bytes read, moved and freed, GC write amp of the phase
  vLog      vLog bytes over the exact live bytes: keys x (21 + key + value + 4)
            (record header + key + value + crc), next to the engine's
            stats().vlog_space_amplification (from its discard statistics);
            directory bytes over the live user bytes (keys x (key + value))

Reads are served mostly from the page cache (the data was just written)
unless --cold drops it (sync; echo 3 > /proc/sys/vm/drop_caches, needs root)
before each read phase; a failed drop is reported and the phase marked warm.
  multi-get with --multi-get B: the random-get keys again, B per multi_get
  scan 2    with --gc-all-before-scan: db.gc(all_sealed) after the first scan
            (rewrites the log in key order), then the scan again

Table kind (--table-kind):
  ordered   (default) the default table: keys in the LSM-tree, values of at
            least --value-threshold bytes in the vLog
  unordered every write and read goes to a table named `bench` created with
            TableOptions::unordered(): an in-memory hash index (keydir), every
            value in the vLog, a get is one keydir lookup and one vLog read.
            It has no key order, so the full scan and --gc-all-before-scan
            are skipped (listed under `skipped` in --json, noted in the table)";

/// The order in which keys are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Ascending key order.
    Seq,
    /// A shuffle of all keys (seeded by --seed).
    Random,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Number of distinct keys to load.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,

    /// Bytes per value (a size: 4096, 4KiB, 1MiB).
    #[arg(long, default_value_t = 4096, value_parser = crate::units::parse_size_usize)]
    value_size: usize,

    /// Load order: `seq` (ascending keys) or `random` (a shuffle of all keys).
    #[arg(long, value_enum, default_value_t = Order::Random)]
    order: Order,

    /// Puts per WriteBatch; 1 uses plain `db.put` (or a batch of one with --sync).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,

    /// Writer threads; the load order is cut into this many contiguous parts.
    /// The read phase uses the same number of threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: u64,

    /// Write with WriteOptions::sync(true): each write is durable against power
    /// loss on return (concurrent writers share one fdatasync).
    #[arg(long)]
    sync: bool,

    /// Random gets in the read phase [default: min(keys, 200000)].
    #[arg(long)]
    reads: Option<u64>,

    /// Parent of the temporary database directory [default: the system temp dir].
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Keep the database directory instead of deleting it at the end (its path
    /// is printed).
    #[arg(long)]
    keep: bool,

    /// Print one JSON object (configuration, results, engine Stats) on stdout
    /// instead of the table. Progress goes to stderr either way.
    #[arg(long)]
    json: bool,

    /// Seed of the shuffle, the read keys and the value bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Options::value_threshold: values of at least this many bytes go to the
    /// vLog, smaller ones stay inline in the LSM-tree [default: the engine's, 1024].
    #[arg(long, value_parser = crate::units::parse_size_usize)]
    value_threshold: Option<usize>,

    /// Options::segment_size: bytes per vLog segment [default: the engine's,
    /// 128 MiB], a size: 4MiB, 128MiB. GC only takes sealed segments, so
    /// small runs want small ones.
    #[arg(long, value_parser = crate::units::parse_size)]
    segment_size: Option<u64>,

    /// Options::memtable_size [default: the engine's, 64 MiB], a size.
    #[arg(long, value_parser = crate::units::parse_size_usize)]
    memtable_size: Option<usize>,

    /// Overwrites of existing keys after the load (0: no update phase).
    #[arg(long, default_value_t = 0)]
    updates: u64,

    /// Which keys the updates hit.
    #[arg(long, value_enum, default_value_t = Dist::Uniform)]
    dist: Dist,

    /// Skew of --dist zipf, in (0, 1).
    #[arg(long, default_value_t = 0.99)]
    zipf_theta: f64,

    /// Options::gc_policy: the policy automatic GC uses.
    #[arg(long, value_enum, default_value_t = PolicyArg::CostBenefit)]
    gc_policy: PolicyArg,

    /// Options::gc_space_amp_target: automatic GC keeps the vLog space
    /// amplification under this.
    #[arg(long, default_value_t = 1.5)]
    gc_target: f64,

    /// Options::background_gc(false): no automatic GC.
    #[arg(long)]
    no_gc: bool,

    /// Options::gc_rate_limit: the most bytes per second GC writes, a size
    /// (64MiB: 64 MiB/s; 0: no limit).
    #[arg(long, default_value_t = 0, value_parser = crate::units::parse_size)]
    gc_rate: u64,

    /// After the update phase, the most seconds to wait for automatic GC to
    /// bring the vLog space amplification under --gc-target.
    #[arg(long, default_value_t = 30.0)]
    gc_wait: f64,

    /// Record a time series of the run into this CSV file: every
    /// --timeline-interval seconds the user write rate, GC's moved and freed
    /// bytes per second, the vLog space amplification and the write and GC
    /// write amplification, with the phase of the run.
    #[arg(long, value_name = "FILE.csv")]
    timeline: Option<PathBuf>,

    /// Draw the time series (see --timeline) into this file (.svg or .png).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    plot: Option<PathBuf>,

    /// Seconds between two samples of --timeline and --plot.
    #[arg(long, default_value_t = 1.0)]
    timeline_interval: f64,

    /// Drop the page cache before each read phase (needs root).
    #[arg(long)]
    cold: bool,

    /// Also read the random-get keys through multi_get, this many per call (0: skip).
    #[arg(long, default_value_t = 0)]
    multi_get: usize,

    /// After the first scan, GC every sealed segment (key-ordered relocation),
    /// then scan again (cold again with --cold).
    #[arg(long)]
    gc_all_before_scan: bool,

    /// Options::io_backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    io_backend: BackendArg,

    /// The table the workload runs against: `ordered` (the default table) or
    /// `unordered` (a table named `bench` created with
    /// TableOptions::unordered(); the scans and --gc-all-before-scan are
    /// skipped, it has no key order).
    #[arg(long, value_enum, default_value_t = TableKindArg::Ordered)]
    table_kind: TableKindArg,
}

/// Which kind of table the workload runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKindArg {
    /// The default table (ordered: an LSM-tree index, range scans).
    Ordered,
    /// A named unordered table (`bench`): a keydir, no range scans.
    Unordered,
}

impl TableKindArg {
    fn name(self) -> &'static str {
        match self {
            TableKindArg::Ordered => "ordered",
            TableKindArg::Unordered => "unordered",
        }
    }
}

/// The name of the table `--table-kind unordered` writes to.
const UNORDERED_TABLE: &str = "bench";

/// The key distribution of the update phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Zipfian ranks (Gray et al.), scrambled over the key space.
    Zipf,
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

impl BackendArg {
    fn backend(self) -> IoBackend {
        match self {
            BackendArg::Auto => IoBackend::Auto,
            BackendArg::IoUring => IoBackend::IoUring,
            BackendArg::Sync => IoBackend::Sync,
        }
    }
    fn name(self) -> &'static str {
        match self {
            BackendArg::Auto => "auto",
            BackendArg::IoUring => "io-uring",
            BackendArg::Sync => "sync",
        }
    }
}

/// Bytes of the value pool that values are cut from.
const POOL_LEN: usize = 8 << 20;
const MB: f64 = 1e6;

fn key_of(i: u64, buf: &mut Vec<u8>) {
    use std::io::Write;
    buf.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "key{i:016}");
}

const KEY_LEN: usize = 19;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Pseudo-random value bytes: value `i` is its index (8 bytes LE) followed by
/// a slice of a random pool at an offset that depends on `i`.
struct Values {
    pool: Vec<u8>,
    size: usize,
    seed: u64,
}

impl Order {
    fn name(self) -> &'static str {
        match self {
            Order::Seq => "seq",
            Order::Random => "random",
        }
    }
}

impl Values {
    fn new(size: usize, seed: u64) -> Values {
        let len = POOL_LEN + size;
        let mut pool = Vec::with_capacity(len + 8);
        // xorshift64*: fast, and its output does not compress.
        let mut x = splitmix64(seed) | 1;
        while pool.len() < len {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            pool.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        pool.truncate(len);
        Values { pool, size, seed }
    }

    /// Writes version `version` of value `i` into `buf` (0: the loaded
    /// value; the update phase writes 1, 2, ...): same index bytes, another
    /// slice of the pool.
    fn fill_version(&self, i: u64, version: u32, buf: &mut Vec<u8>) {
        buf.clear();
        let head = self.size.min(8);
        buf.extend_from_slice(&i.to_le_bytes()[..head]);
        if self.size > 8 {
            let salt = if version == 0 {
                0
            } else {
                splitmix64(u64::from(version) ^ 0x5555_5555)
            };
            let off = (splitmix64(i ^ self.seed ^ salt) % (POOL_LEN as u64)) as usize;
            buf.extend_from_slice(&self.pool[off..off + self.size - 8]);
        }
    }

    /// The cheap check used by the scan: length and leading index bytes.
    fn looks_like(&self, i: u64, v: &[u8]) -> bool {
        let head = self.size.min(8);
        v.len() == self.size && v[..head] == i.to_le_bytes()[..head]
    }
}

#[derive(Debug, Serialize)]
struct Config {
    keys: u64,
    key_size: usize,
    value_size: usize,
    order: Order,
    batch: u64,
    threads: u64,
    sync: bool,
    reads: u64,
    seed: u64,
    value_threshold: Option<usize>,
    segment_size: Option<u64>,
    memtable_size: Option<usize>,
    updates: u64,
    dist: Dist,
    zipf_theta: f64,
    gc_policy: PolicyArg,
    gc_target: f64,
    background_gc: bool,
    gc_rate: u64,
    gc_wait_secs: f64,
    cold: bool,
    multi_get: usize,
    gc_all_before_scan: bool,
    io_backend: BackendArg,
    /// The kind of the table the workload ran against.
    table_kind: TableKindArg,
    /// Its name (`default` for the ordered default table).
    table: String,
    db_dir: PathBuf,
    kept: bool,
}

#[derive(Debug, Serialize)]
struct LoadReport {
    user_bytes: u64,
    /// The puts alone.
    put_secs: f64,
    put_ops_per_sec: f64,
    put_mb_per_sec: f64,
    /// flush() + wait_for_background() + sync() after the puts.
    flush_sync_secs: f64,
    /// Puts + flush + settle + sync.
    total_secs: f64,
    total_mb_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct WriteAmpReport {
    /// `/proc/self/io` over the load (puts + flush + settle + sync); `None` when unreadable.
    proc_io: Option<ProcIo>,
    /// (write_bytes - cancelled_write_bytes) / user bytes.
    device_write_amplification: Option<f64>,
    /// wchar / user bytes: what went through write system calls.
    wchar_amplification: Option<f64>,
    /// The engine's own count: stats().write_amplification after the load.
    engine_write_amplification: f64,
    /// `/proc/self/io` over the whole run, read after closing the database:
    /// also counts background compaction that finished after the load (the
    /// read and scan phases write nothing themselves, except a
    /// --gc-all-before-scan pass).
    proc_io_whole_run: Option<ProcIo>,
    /// (write_bytes - cancelled_write_bytes) over the user bytes of the
    /// whole run (load + updates).
    device_write_amplification_whole_run: Option<f64>,
    /// The engine's stats().write_amplification at the end of the run
    /// (load + updates).
    engine_write_amplification_whole_run: f64,
}

#[derive(Debug, Serialize)]
struct SpaceReport {
    /// Files in the directory, the disk reserve not counted.
    files: u64,
    /// Sum of the files' lengths (the disk reserve not counted).
    db_bytes: u64,
    /// Sum of the blocks allocated to them.
    db_allocated_bytes: u64,
    /// The length of the disk reserve (`RESERVE`: preallocated room for a
    /// full disk, no data; docs/gc-tuning.md, "A full disk").
    reserve_bytes: u64,
    /// Key + value bytes of the live data (every key is distinct).
    live_user_bytes: u64,
    /// db_bytes / live_user_bytes.
    space_amplification: f64,
}

#[derive(Debug, Serialize)]
struct ReadReport {
    gets: u64,
    bytes: u64,
    secs: f64,
    ops_per_sec: f64,
    mb_per_sec: f64,
    /// Keys per multi_get call (1 for plain gets).
    batch: usize,
    /// Whether the page cache was dropped right before the phase.
    cold: bool,
}

#[derive(Debug, Serialize)]
struct ScanReport {
    entries: u64,
    bytes: u64,
    secs: f64,
    entries_per_sec: f64,
    mb_per_sec: f64,
    /// Whether the page cache was dropped right before the scan.
    cold: bool,
}

/// Deltas of the engine's byte counters over the update phase.
#[derive(Debug, Default, Serialize)]
struct EngineDelta {
    user_bytes: u64,
    vlog_user_bytes: u64,
    vlog_gc_bytes: u64,
    sst_bytes: u64,
    manifest_bytes: u64,
    /// (vlog_user + vlog_gc + sst + manifest) / user_bytes.
    write_amplification: f64,
}

/// Deltas of the engine's GC counters over the update phase.
#[derive(Debug, Default, Serialize)]
struct GcDelta {
    passes: u64,
    bytes_read: u64,
    bytes_moved: u64,
    records_moved: u64,
    bytes_freed: u64,
    /// (vLog bytes by users + by GC) / vLog bytes by users, over the phase.
    gc_write_amplification: f64,
}

#[derive(Debug, Serialize)]
struct VlogSpace {
    vlog_segments: u64,
    vlog_bytes: u64,
    /// Garbage by the engine's discard statistics.
    vlog_garbage_bytes: u64,
    /// keys x (21 + key + value + 4): the vLog records of the live values.
    live_vlog_bytes: u64,
    /// vlog_bytes / live_vlog_bytes. Only meaningful when the values are
    /// separated (value size >= value threshold).
    vlog_over_live: f64,
    values_separated: bool,
    /// stats().vlog_space_amplification (from the discard statistics).
    engine_vlog_space_amplification: f64,
    /// As in the load's space report: the disk reserve not counted.
    files: u64,
    db_bytes: u64,
    db_allocated_bytes: u64,
    reserve_bytes: u64,
    /// keys x (key + value).
    live_user_bytes: u64,
    /// db_bytes / live_user_bytes.
    db_over_live_user: f64,
}

#[derive(Debug, Serialize)]
struct UpdateReport {
    updates: u64,
    dist: Dist,
    zipf_theta: Option<f64>,
    /// Distinct keys the updates hit.
    distinct_keys: u64,
    user_bytes: u64,
    /// The overwrites alone.
    put_secs: f64,
    ops_per_sec: f64,
    mb_per_sec: f64,
    /// flush() + wait_for_background() + sync() after the overwrites.
    flush_settle_secs: f64,
    /// The wait for automatic GC afterwards (0 with --no-gc).
    gc_wait_secs: f64,
    /// Whether automatic GC brought the engine's vLog space amplification
    /// under --gc-target in time; null with --no-gc (nothing to reach).
    reached_gc_target: Option<bool>,
    /// `/proc/self/io` over overwrites + flush + settle + sync.
    proc_io: Option<ProcIo>,
    device_write_amplification: Option<f64>,
    /// `/proc/self/io` over all of the phase, including the GC wait.
    proc_io_with_gc_wait: Option<ProcIo>,
    device_write_amplification_with_gc_wait: Option<f64>,
    /// The engine's counters over all of the phase, including the GC wait.
    engine: EngineDelta,
    gc: GcDelta,
    /// Sizes at the end of the phase.
    space: VlogSpace,
}

#[derive(Debug, Serialize)]
struct ScanAfterGc {
    gc: GcReport,
    gc_secs: f64,
    /// wait_for_background() after the pass (its level-0 table may compact).
    settle_secs: f64,
    vlog_bytes_before: u64,
    vlog_bytes_after: u64,
    scan: ScanReport,
}

/// A phase that was not run, and why.
#[derive(Debug, Serialize)]
struct SkippedPhase {
    phase: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Report {
    config: Config,
    /// stats().io_backend: the backend in use.
    io_backend: String,
    load: LoadReport,
    write_amplification: WriteAmpReport,
    space: SpaceReport,
    update: Option<UpdateReport>,
    read: ReadReport,
    multi_get: Option<ReadReport>,
    /// `None` when skipped (an unordered table has no key order).
    scan: Option<ScanReport>,
    scan_after_gc: Option<ScanAfterGc>,
    /// Phases asked for (or run by default) that this table kind cannot run.
    skipped: Vec<SkippedPhase>,
    /// Phases that asked for a cold cache but ran warm (the drop failed).
    cold_failures: Vec<String>,
    /// The engine's Stats at the end of the run.
    stats: Stats,
}

fn per_sec(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        0.0
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

/// Cuts `0..n` into `parts` contiguous ranges.
fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let chunk = n.div_ceil(parts.max(1)).max(1);
    (0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect()
}

/// Progress goes to stderr, so `--json` output on stdout stays one object.
fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// `sync; echo 3 > /proc/sys/vm/drop_caches`.
fn drop_caches() -> Result<()> {
    use std::io::Write;
    let status = std::process::Command::new("sync")
        .status()
        .context("running sync")?;
    ensure!(status.success(), "sync failed: {status}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .context("opening /proc/sys/vm/drop_caches")?;
    f.write_all(b"3\n")
        .context("writing 3 to /proc/sys/vm/drop_caches")?;
    Ok(())
}

/// Drops the page cache when `--cold`; returns whether the phase is cold.
fn prepare_cache(args: &BenchArgs, phase: &str, failures: &mut Vec<String>) -> bool {
    if !args.cold {
        return false;
    }
    match drop_caches() {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "[bench] warning: could not drop the page cache before {phase} ({e:#}); \
                 the phase runs warm"
            );
            failures.push(phase.to_string());
            false
        }
    }
}

/// The engine's counters a phase's deltas are taken from.
fn engine_delta(before: &Stats, after: &Stats) -> (EngineDelta, GcDelta) {
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let user = d(after.user_bytes_written, before.user_bytes_written);
    let vlog = d(after.vlog_bytes_written, before.vlog_bytes_written);
    let gc = d(after.gc_bytes_written, before.gc_bytes_written);
    let sst = d(after.flush_bytes_written, before.flush_bytes_written)
        + d(
            after.compaction_bytes_written,
            before.compaction_bytes_written,
        );
    let manifest = d(after.manifest_bytes_written, before.manifest_bytes_written);
    let engine = EngineDelta {
        user_bytes: user,
        vlog_user_bytes: vlog,
        vlog_gc_bytes: gc,
        sst_bytes: sst,
        manifest_bytes: manifest,
        write_amplification: ratio(vlog + gc + sst + manifest, user),
    };
    let gcd = GcDelta {
        passes: d(after.gc_passes, before.gc_passes),
        bytes_read: d(after.gc_bytes_read, before.gc_bytes_read),
        bytes_moved: gc,
        records_moved: d(after.gc_records_moved, before.gc_records_moved),
        bytes_freed: d(after.gc_bytes_freed, before.gc_bytes_freed),
        gc_write_amplification: if vlog == 0 {
            0.0
        } else {
            (vlog + gc) as f64 / vlog as f64
        },
    };
    (engine, gcd)
}

pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(args.keys > 0, "--keys must be at least 1");
    ensure!(
        args.dist != Dist::Zipf || (args.zipf_theta > 0.0 && args.zipf_theta < 1.0),
        "--zipf-theta must be in (0, 1)"
    );
    ensure!(args.gc_target >= 1.0, "--gc-target must be at least 1.0");
    let n = usize::try_from(args.keys).context("--keys does not fit in memory")?;
    let reads = args.reads.unwrap_or(args.keys.min(200_000));
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("wisckey-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let db_dir = tmp.path().to_path_buf();
    if !args.keep {
        crate::cleanup::remove_on_signal(&db_dir);
    }
    let r = run_in(args, n, reads, tmp);
    crate::cleanup::forget(&db_dir);
    r
}

/// [`run`] in the temporary directory `tmp` (removed at the end unless
/// `--keep`).
fn run_in(args: &BenchArgs, n: usize, reads: u64, tmp: tempfile::TempDir) -> Result<()> {
    let db_dir = tmp.path().to_path_buf();

    // Everything the timed regions need, prepared outside them.
    let values = Values::new(args.value_size, args.seed);
    let mut order: Vec<u64> = Vec::with_capacity(n);
    order.extend(0..args.keys);
    if args.order == Order::Random {
        order.shuffle(&mut StdRng::seed_from_u64(args.seed));
    }
    let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(1));
    let read_keys: Vec<u64> = (0..reads).map(|_| rng.gen_range(0..args.keys)).collect();
    // The update phase's writes: per thread, (key, version) in order; a key
    // always goes to the same thread, so its last version is known.
    let mut versions: Vec<u32> = Vec::new();
    let mut update_parts: Vec<Vec<(u64, u32)>> = Vec::new();
    let mut distinct_updated = 0u64;
    if args.updates > 0 {
        progress(&format!(
            "drawing {} update keys ({})",
            args.updates,
            match args.dist {
                Dist::Uniform => "uniform".to_string(),
                Dist::Zipf => format!("zipf, theta {}", args.zipf_theta),
            }
        ));
        versions = vec![0u32; n];
        let threads = args.threads as usize;
        update_parts = vec![Vec::new(); threads];
        let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(2));
        let zipf = (args.dist == Dist::Zipf)
            .then(|| ScrambledZipf::new(args.keys, args.zipf_theta, &mut rng));
        for _ in 0..args.updates {
            let i = match &zipf {
                Some(z) => z.next_item(&mut rng),
                None => rng.gen_range(0..args.keys),
            };
            let v = &mut versions[i as usize];
            if *v == 0 {
                distinct_updated += 1;
            }
            *v = v
                .checked_add(1)
                .context("more than 2^32 updates of one key")?;
            update_parts[(i % threads as u64) as usize].push((i, *v));
        }
    }

    let mut opts = Options::default()
        .gc_policy(args.gc_policy.policy())
        .gc_space_amp_target(args.gc_target)
        .background_gc(!args.no_gc)
        .gc_rate_limit(args.gc_rate)
        .io_backend(args.io_backend.backend());
    if let Some(t) = args.value_threshold {
        opts = opts.value_threshold(t);
    }
    if let Some(s) = args.segment_size {
        opts = opts.segment_size(s);
    }
    if let Some(m) = args.memtable_size {
        opts = opts.memtable_size(m);
    }
    let db = match Db::open(&db_dir, opts) {
        Ok(db) => db,
        Err(e @ wisckey::Error::Unsupported(_)) => {
            return Err(e).with_context(|| {
                format!(
                    "--io-backend {}: this build of the engine does not support it",
                    args.io_backend.name()
                )
            })
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", db_dir.display())),
    };
    let io_backend = db.stats().io_backend;
    progress(&format!(
        "I/O backend: {io_backend} (asked for {})",
        args.io_backend.name()
    ));
    // Every phase reads and writes through this handle.
    let table = match args.table_kind {
        TableKindArg::Ordered => db.default_table(),
        TableKindArg::Unordered => db
            .table(UNORDERED_TABLE, TableOptions::unordered())
            .with_context(|| format!("creating the unordered table {UNORDERED_TABLE}"))?,
    };
    let user_bytes = args.keys * (KEY_LEN + args.value_size) as u64;
    let mut cold_failures = Vec::new();
    let timeline = (args.timeline.is_some() || args.plot.is_some()).then(|| {
        crate::timeline::Timeline::start(
            db.clone(),
            Duration::from_secs_f64(args.timeline_interval.max(0.01)),
            "load",
        )
    });
    let phase = |name: &str| {
        if let Some(t) = &timeline {
            t.set_phase(name);
        }
    };

    // 1. Load.
    progress(&format!(
        "loading {} keys x {} B ({}, batch {}, {} thread(s){}) into {}",
        args.keys,
        args.value_size,
        args.order.name(),
        args.batch,
        args.threads,
        if args.sync { ", sync" } else { "" },
        db_dir.display()
    ));
    if args.table_kind == TableKindArg::Unordered {
        progress(&format!(
            "table: {UNORDERED_TABLE} (unordered: keydir index, every value in the vLog)"
        ));
    }
    let io_before = ProcIo::read();
    let start = Instant::now();
    let load_parts: Vec<&[u64]> = split(order.len(), args.threads as usize)
        .into_iter()
        .map(|r| &order[r])
        .collect();
    write_parts(&table, &load_parts, |&i| (i, 0), &values, args)?;
    let put_secs = start.elapsed().as_secs_f64();
    phase("flush");
    let flush_start = Instant::now();
    db.flush().context("flush after the load")?;
    db.wait_for_background()
        .context("waiting for compactions to settle after the load")?;
    db.sync().context("sync after the load")?;
    let flush_sync_secs = flush_start.elapsed().as_secs_f64();
    let total_secs = start.elapsed().as_secs_f64();
    let io_load = ProcIo::read()
        .zip(io_before)
        .map(|(after, before)| after.since(&before));
    let stats_after_load = db.stats();
    drop(load_parts);
    drop(order);

    let load_report = LoadReport {
        user_bytes,
        put_secs,
        put_ops_per_sec: per_sec(args.keys as f64, put_secs),
        put_mb_per_sec: per_sec(user_bytes as f64 / MB, put_secs),
        flush_sync_secs,
        total_secs,
        total_mb_per_sec: per_sec(user_bytes as f64 / MB, total_secs),
    };
    let mut wa = WriteAmpReport {
        proc_io: io_load,
        device_write_amplification: io_load.map(|io| ratio(io.device_write_bytes(), user_bytes)),
        wchar_amplification: io_load.map(|io| ratio(io.wchar, user_bytes)),
        engine_write_amplification: stats_after_load.write_amplification,
        proc_io_whole_run: None,
        device_write_amplification_whole_run: None,
        engine_write_amplification_whole_run: 0.0,
    };

    // 2. Space.
    let (files, db_bytes, db_allocated_bytes) = dir_size(&db_dir)?;
    let space = SpaceReport {
        files,
        db_bytes,
        db_allocated_bytes,
        reserve_bytes: reserve_bytes(&db_dir),
        live_user_bytes: user_bytes,
        space_amplification: ratio(db_bytes, user_bytes),
    };

    // 3. Updates.
    let update = if args.updates > 0 {
        Some(update_phase(
            &table,
            &db_dir,
            &update_parts,
            distinct_updated,
            &values,
            args,
            &phase,
        )?)
    } else {
        None
    };
    drop(update_parts);
    let update_user_bytes = update.as_ref().map_or(0, |u| u.user_bytes);

    // 4. Random reads.
    phase("reads");
    let cold = prepare_cache(args, "random gets", &mut cold_failures);
    progress(&format!(
        "{reads} random gets{}",
        if cold { " (cold)" } else { "" }
    ));
    let start = Instant::now();
    let read_bytes = read_phase(
        &table,
        &read_keys,
        &values,
        &versions,
        args.threads as usize,
        1,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let read = ReadReport {
        gets: reads,
        bytes: read_bytes,
        secs,
        ops_per_sec: per_sec(reads as f64, secs),
        mb_per_sec: per_sec(read_bytes as f64 / MB, secs),
        batch: 1,
        cold,
    };

    // 4b. multi_get.
    let multi_get = if args.multi_get > 0 {
        let cold = prepare_cache(args, "multi-get", &mut cold_failures);
        progress(&format!(
            "{reads} keys by multi_get, {} per call{}",
            args.multi_get,
            if cold { " (cold)" } else { "" }
        ));
        let start = Instant::now();
        let bytes = read_phase(
            &table,
            &read_keys,
            &values,
            &versions,
            args.threads as usize,
            args.multi_get,
        )?;
        let secs = start.elapsed().as_secs_f64();
        Some(ReadReport {
            gets: reads,
            bytes,
            secs,
            ops_per_sec: per_sec(reads as f64, secs),
            mb_per_sec: per_sec(bytes as f64 / MB, secs),
            batch: args.multi_get,
            cold,
        })
    } else {
        None
    };

    // 5. Full scan (an unordered table has no key order: skipped, and the
    // keydir's key count checked instead).
    phase("scan");
    let mut skipped = Vec::new();
    let no_order = |phase: &str| {
        SkippedPhase {
        phase: phase.to_string(),
        reason: format!(
            "the unordered table {UNORDERED_TABLE} has no key order (a range scan yields Error::Unsupported)"
        ),
    }
    };
    let scan = if table.kind() == wisckey::TableKind::Ordered {
        Some(timed_scan(
            &table,
            &values,
            args,
            "full scan",
            &mut cold_failures,
        )?)
    } else {
        let keys = db.stats().unordered_keys;
        ensure!(
            keys == args.keys,
            "the keydir of {UNORDERED_TABLE} holds {keys} keys, expected {}",
            args.keys
        );
        progress(&format!(
            "full scan skipped (unordered table; its keydir holds {keys} keys, as expected)"
        ));
        skipped.push(no_order("full scan"));
        None
    };

    // 5b. GC everything, scan again.
    if args.gc_all_before_scan && scan.is_none() {
        progress("--gc-all-before-scan skipped (it compares two scans; unordered table)");
        skipped.push(no_order("gc-all-before-scan"));
    }
    let scan_after_gc = if args.gc_all_before_scan && scan.is_some() {
        let vlog_bytes_before = db.stats().vlog_bytes;
        progress("GC of every sealed segment (key-ordered relocation)");
        let start = Instant::now();
        let gc = db
            .gc(GcOptions::default().all_sealed(true))
            .context("GC of every sealed segment")?;
        let gc_secs = start.elapsed().as_secs_f64();
        let start = Instant::now();
        db.wait_for_background()
            .context("waiting for compactions after the GC pass")?;
        let settle_secs = start.elapsed().as_secs_f64();
        let vlog_bytes_after = db.stats().vlog_bytes;
        let scan = timed_scan(
            &table,
            &values,
            args,
            "full scan after GC",
            &mut cold_failures,
        )?;
        Some(ScanAfterGc {
            gc,
            gc_secs,
            settle_secs,
            vlog_bytes_before,
            vlog_bytes_after,
            scan,
        })
    } else {
        None
    };

    let stats = db.stats();
    let samples = timeline.map(|t| t.finish());
    if let Some(samples) = &samples {
        if let Some(p) = &args.timeline {
            crate::timeline::write_csv(p, samples)?;
            progress(&format!(
                "timeline: {} samples written to {}",
                samples.len(),
                p.display()
            ));
        }
        if let Some(p) = &args.plot {
            let title = format!(
                "{} keys x {} B, {} updates ({}), GC {} target {}{}",
                args.keys,
                args.value_size,
                args.updates,
                match args.dist {
                    Dist::Uniform => "uniform".to_string(),
                    Dist::Zipf => format!("zipf {}", args.zipf_theta),
                },
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
            crate::timeline::plot(p, samples, &title, (!args.no_gc).then_some(args.gc_target))
                .with_context(|| format!("drawing {}", p.display()))?;
            progress(&format!("timeline plot written to {}", p.display()));
        }
    }
    let table_name = table.name().to_string();
    drop(table);
    db.close().context("closing the database")?;
    let io_run = ProcIo::read()
        .zip(io_before)
        .map(|(after, before)| after.since(&before));
    wa.proc_io_whole_run = io_run;
    wa.device_write_amplification_whole_run =
        io_run.map(|io| ratio(io.device_write_bytes(), user_bytes + update_user_bytes));
    wa.engine_write_amplification_whole_run = stats.write_amplification;
    let kept = args.keep;
    let db_dir = if kept { tmp.keep() } else { db_dir };
    let report = Report {
        config: Config {
            keys: args.keys,
            key_size: KEY_LEN,
            value_size: args.value_size,
            order: args.order,
            batch: args.batch,
            threads: args.threads,
            sync: args.sync,
            reads,
            seed: args.seed,
            value_threshold: args.value_threshold,
            segment_size: args.segment_size,
            memtable_size: args.memtable_size,
            updates: args.updates,
            dist: args.dist,
            zipf_theta: args.zipf_theta,
            gc_policy: args.gc_policy,
            gc_target: args.gc_target,
            background_gc: !args.no_gc,
            gc_rate: args.gc_rate,
            gc_wait_secs: args.gc_wait,
            cold: args.cold,
            multi_get: args.multi_get,
            gc_all_before_scan: args.gc_all_before_scan,
            io_backend: args.io_backend,
            table_kind: args.table_kind,
            table: table_name,
            db_dir,
            kept,
        },
        io_backend,
        load: load_report,
        write_amplification: wa,
        space,
        update,
        read,
        multi_get,
        scan,
        scan_after_gc,
        skipped,
        cold_failures,
        stats,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn update_phase(
    table: &Table,
    db_dir: &Path,
    parts: &[Vec<(u64, u32)>],
    distinct_keys: u64,
    values: &Values,
    args: &BenchArgs,
    phase: &dyn Fn(&str),
) -> Result<UpdateReport> {
    phase("updates");
    let user_bytes = args.updates * (KEY_LEN + args.value_size) as u64;
    progress(&format!(
        "{} updates ({}), GC policy {}, target {}{}",
        args.updates,
        match args.dist {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
        },
        args.gc_policy.name(),
        args.gc_target,
        if args.no_gc { ", automatic GC off" } else { "" }
    ));
    let db = table.db();
    let stats_before = db.stats();
    let io_before = ProcIo::read();
    let start = Instant::now();
    let slices: Vec<&[(u64, u32)]> = parts.iter().map(|p| p.as_slice()).collect();
    write_parts(table, &slices, |&(i, v)| (i, v), values, args)?;
    let put_secs = start.elapsed().as_secs_f64();
    phase("flush");
    let flush_start = Instant::now();
    db.flush().context("flush after the updates")?;
    db.wait_for_background()
        .context("waiting for compactions to settle after the updates")?;
    db.sync().context("sync after the updates")?;
    let flush_settle_secs = flush_start.elapsed().as_secs_f64();
    let io_updates = ProcIo::read()
        .zip(io_before)
        .map(|(after, before)| after.since(&before));

    // Automatic GC: wait (bounded) until it is under the target and idle
    // (no pass for 1.5 s), so that a round it started near the target has
    // finished.
    let gc_start = Instant::now();
    let mut reached = db.stats().vlog_space_amplification <= args.gc_target;
    if !args.no_gc {
        phase("gc wait");
        progress(&format!(
            "waiting up to {} s for automatic GC to settle (vLog space amp {:.3}, target {})",
            args.gc_wait,
            db.stats().vlog_space_amplification,
            args.gc_target
        ));
        let limit = Duration::from_secs_f64(args.gc_wait.max(0.0));
        let mut passes = db.stats().gc_passes;
        let mut quiet_since = Instant::now();
        reached = false;
        while gc_start.elapsed() < limit {
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
    }
    let gc_wait_secs = gc_start.elapsed().as_secs_f64();
    let io_all = ProcIo::read()
        .zip(io_before)
        .map(|(after, before)| after.since(&before));
    let stats_after = db.stats();
    let (engine, gc) = engine_delta(&stats_before, &stats_after);

    let record = 21 + KEY_LEN as u64 + args.value_size as u64 + 4;
    let live_vlog_bytes = args.keys * record;
    let live_user_bytes = args.keys * (KEY_LEN + args.value_size) as u64;
    let threshold = args.value_threshold.unwrap_or(1024);
    let (files, db_bytes, db_allocated_bytes) = dir_size(db_dir)?;
    let space = VlogSpace {
        vlog_segments: stats_after.vlog_segments,
        vlog_bytes: stats_after.vlog_bytes,
        vlog_garbage_bytes: stats_after.vlog_garbage_bytes,
        live_vlog_bytes,
        vlog_over_live: ratio(stats_after.vlog_bytes, live_vlog_bytes),
        // An unordered table keeps every value in the vLog.
        values_separated: args.value_size >= threshold
            || table.kind() == wisckey::TableKind::Unordered,
        engine_vlog_space_amplification: stats_after.vlog_space_amplification,
        files,
        db_bytes,
        db_allocated_bytes,
        reserve_bytes: reserve_bytes(db_dir),
        live_user_bytes,
        db_over_live_user: ratio(db_bytes, live_user_bytes),
    };
    Ok(UpdateReport {
        updates: args.updates,
        dist: args.dist,
        zipf_theta: (args.dist == Dist::Zipf).then_some(args.zipf_theta),
        distinct_keys,
        user_bytes,
        put_secs,
        ops_per_sec: per_sec(args.updates as f64, put_secs),
        mb_per_sec: per_sec(user_bytes as f64 / MB, put_secs),
        flush_settle_secs,
        gc_wait_secs,
        reached_gc_target: (!args.no_gc).then_some(reached),
        proc_io: io_updates,
        device_write_amplification: io_updates.map(|io| ratio(io.device_write_bytes(), user_bytes)),
        proc_io_with_gc_wait: io_all,
        device_write_amplification_with_gc_wait: io_all
            .map(|io| ratio(io.device_write_bytes(), user_bytes)),
        engine,
        gc,
        space,
    })
}

/// Writes every part from its own thread: `item` gives (key index, version).
fn write_parts<T: Sync>(
    table: &Table,
    parts: &[&[T]],
    item: impl Fn(&T) -> (u64, u32) + Sync,
    values: &Values,
    args: &BenchArgs,
) -> Result<()> {
    let batch = args.batch as usize;
    let wopts = WriteOptions::default().sync(args.sync);
    let item = &item;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|&part| {
                s.spawn(move || -> Result<()> {
                    let mut key = Vec::with_capacity(KEY_LEN);
                    let mut value = Vec::with_capacity(values.size);
                    if batch == 1 && !args.sync {
                        for t in part {
                            let (i, v) = item(t);
                            key_of(i, &mut key);
                            values.fill_version(i, v, &mut value);
                            table.put(&key, &value)?;
                        }
                        return Ok(());
                    }
                    for chunk in part.chunks(batch) {
                        let mut wb = WriteBatch::new();
                        for t in chunk {
                            let (i, v) = item(t);
                            key_of(i, &mut key);
                            values.fill_version(i, v, &mut value);
                            wb.put_in(table, &key, &value);
                        }
                        table.db().write(wb, wopts)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(r) => r?,
                Err(_) => bail!("a writer thread panicked"),
            }
        }
        Ok(())
    })
}

/// Reads `keys` from `threads` threads, `batch` keys per call (1: `get`,
/// more: `multi_get`), checking every value; returns the bytes read.
fn read_phase(
    table: &Table,
    keys: &[u64],
    values: &Values,
    versions: &[u32],
    threads: usize,
    batch: usize,
) -> Result<u64> {
    let parts = split(keys.len(), threads);
    let version = |i: u64| versions.get(i as usize).copied().unwrap_or(0);
    let version = &version;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|range| {
                let part = &keys[range];
                s.spawn(move || -> Result<u64> {
                    let mut key = Vec::with_capacity(KEY_LEN);
                    let mut expected = Vec::with_capacity(values.size);
                    let mut bytes = 0u64;
                    if batch <= 1 {
                        for &i in part {
                            key_of(i, &mut key);
                            let Some(v) = table.get(&key)? else {
                                bail!("key {i} is missing");
                            };
                            values.fill_version(i, version(i), &mut expected);
                            ensure!(*v == *expected, "key {i}: wrong value ({} bytes)", v.len());
                            bytes += (key.len() + v.len()) as u64;
                        }
                        return Ok(bytes);
                    }
                    let mut batch_keys: Vec<Vec<u8>> = Vec::with_capacity(batch);
                    for chunk in part.chunks(batch) {
                        batch_keys.clear();
                        for &i in chunk {
                            key_of(i, &mut key);
                            batch_keys.push(key.clone());
                        }
                        let got = table.multi_get(&batch_keys)?;
                        ensure!(
                            got.len() == chunk.len(),
                            "multi_get returned {} values for {} keys",
                            got.len(),
                            chunk.len()
                        );
                        for ((&i, k), v) in chunk.iter().zip(&batch_keys).zip(got) {
                            let Some(v) = v else {
                                bail!("key {i} is missing (multi_get)");
                            };
                            values.fill_version(i, version(i), &mut expected);
                            ensure!(
                                *v == *expected,
                                "key {i}: wrong value from multi_get ({} bytes)",
                                v.len()
                            );
                            bytes += (k.len() + v.len()) as u64;
                        }
                    }
                    Ok(bytes)
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            match h.join() {
                Ok(r) => total += r?,
                Err(_) => bail!("a reader thread panicked"),
            }
        }
        Ok(total)
    })
}

/// One full scan, after dropping the cache when `--cold`.
fn timed_scan(
    table: &Table,
    values: &Values,
    args: &BenchArgs,
    phase: &str,
    cold_failures: &mut Vec<String>,
) -> Result<ScanReport> {
    let cold = prepare_cache(args, phase, cold_failures);
    progress(&format!("{phase}{}", if cold { " (cold)" } else { "" }));
    let start = Instant::now();
    let (entries, bytes) = scan_phase(table, values)?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        entries == args.keys,
        "{phase}: {entries} entries, expected {}",
        args.keys
    );
    Ok(ScanReport {
        entries,
        bytes,
        secs,
        entries_per_sec: per_sec(entries as f64, secs),
        mb_per_sec: per_sec(bytes as f64 / MB, secs),
        cold,
    })
}

fn scan_phase(table: &Table, values: &Values) -> Result<(u64, u64)> {
    let mut entries = 0u64;
    let mut bytes = 0u64;
    let mut prev: Option<Vec<u8>> = None;
    for kv in table.iter() {
        let (k, v) = kv?;
        let i: u64 = std::str::from_utf8(&k)
            .ok()
            .and_then(|s| s.strip_prefix("key"))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("the scan returned an unknown key {k:?}"))?;
        ensure!(values.looks_like(i, &v), "key {i}: wrong value in the scan");
        if let Some(p) = &prev {
            ensure!(
                p.as_slice() < k.as_slice(),
                "the scan is not in ascending key order at key {i}"
            );
        }
        entries += 1;
        bytes += (k.len() + v.len()) as u64;
        prev = Some(k);
    }
    Ok((entries, bytes))
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
            let (f, l, a) = dir_size(&entry.path())?;
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

fn cold_mark(cold: bool) -> &'static str {
    if cold {
        " cold"
    } else {
        ""
    }
}

fn print_table(r: &Report) {
    let c = &r.config;
    println!("wisckey bench");
    println!(
        "  config     {} keys x ({} B key + {} B value), order {}, batch {}, threads {}, sync {}",
        c.keys,
        c.key_size,
        c.value_size,
        c.order.name(),
        c.batch,
        c.threads,
        c.sync
    );
    println!(
        "  engine     I/O backend {} (asked {}), GC {} policy {}, target {}, rate {}",
        r.io_backend,
        c.io_backend.name(),
        if c.background_gc { "on," } else { "off," },
        c.gc_policy.name(),
        c.gc_target,
        if c.gc_rate == 0 {
            "unlimited".to_string()
        } else {
            format!("{} B/s", c.gc_rate)
        }
    );
    println!(
        "  table      {} ({}{})",
        c.table,
        c.table_kind.name(),
        match c.table_kind {
            TableKindArg::Ordered => ": LSM-tree index",
            TableKindArg::Unordered => ": keydir index, every value in the vLog",
        }
    );
    println!(
        "  db dir     {}{}",
        c.db_dir.display(),
        if c.kept { " (kept)" } else { " (removed)" }
    );
    let l = &r.load;
    println!("phase                     secs       ops/s        MB/s");
    println!(
        "load (puts)         {:>10.3} {:>11.0} {:>11.1}",
        l.put_secs, l.put_ops_per_sec, l.put_mb_per_sec
    );
    println!(
        "load+flush+settle   {:>10.3} {:>11.0} {:>11.1}",
        l.total_secs,
        per_sec(c.keys as f64, l.total_secs),
        l.total_mb_per_sec
    );
    if let Some(u) = &r.update {
        println!(
            "updates             {:>10.3} {:>11.0} {:>11.1}",
            u.put_secs, u.ops_per_sec, u.mb_per_sec
        );
        let all = u.put_secs + u.flush_settle_secs + u.gc_wait_secs;
        println!(
            "updates+settle+gc   {:>10.3} {:>11.0} {:>11.1}",
            all,
            per_sec(u.updates as f64, all),
            per_sec(u.user_bytes as f64 / MB, all)
        );
    }
    println!(
        "random gets{:<5}    {:>10.3} {:>11.0} {:>11.1}",
        cold_mark(r.read.cold),
        r.read.secs,
        r.read.ops_per_sec,
        r.read.mb_per_sec
    );
    if let Some(m) = &r.multi_get {
        println!(
            "{:<20}{:>10.3} {:>11.0} {:>11.1}",
            format!("multi-get x{}{}", m.batch, cold_mark(m.cold)),
            m.secs,
            m.ops_per_sec,
            m.mb_per_sec
        );
    }
    if let Some(scan) = &r.scan {
        println!(
            "full scan{:<5}      {:>10.3} {:>11.0} {:>11.1}",
            cold_mark(scan.cold),
            scan.secs,
            scan.entries_per_sec,
            scan.mb_per_sec
        );
    }
    for sk in &r.skipped {
        println!("{:<20}   skipped: {}", sk.phase, sk.reason);
    }
    if let Some(g) = &r.scan_after_gc {
        println!(
            "scan after GC{:<5}  {:>10.3} {:>11.0} {:>11.1}",
            cold_mark(g.scan.cold),
            g.scan.secs,
            g.scan.entries_per_sec,
            g.scan.mb_per_sec
        );
    }
    if !r.cold_failures.is_empty() {
        println!(
            "  WARNING: --cold asked, but the page cache could not be dropped before: {} (those ran warm)",
            r.cold_failures.join(", ")
        );
    }
    println!();
    println!("user bytes loaded         {}", l.user_bytes);
    let w = &r.write_amplification;
    match (
        &w.proc_io,
        w.device_write_amplification,
        w.wchar_amplification,
    ) {
        (Some(io), Some(dev), Some(wchar)) => {
            println!(
                "write amp (device)        {dev:.3}  (write_bytes {} - cancelled {})",
                io.write_bytes, io.cancelled_write_bytes
            );
            println!("write amp (wchar)         {wchar:.3}  (wchar {})", io.wchar);
        }
        _ => println!("write amp (device)        n/a (/proc/self/io unreadable)"),
    }
    println!(
        "write amp (engine stats)  {:.3}",
        w.engine_write_amplification
    );
    if let Some(dev) = w.device_write_amplification_whole_run {
        println!(
            "  whole run, incl. later background compaction: device {dev:.3}, engine {:.3}",
            w.engine_write_amplification_whole_run
        );
    }
    let s = &r.space;
    println!(
        "space amp                 {:.3}  ({} files, {}, {} allocated; disk reserve of {} \
         apart)",
        s.space_amplification,
        s.files,
        crate::units::bytes(s.db_bytes),
        crate::units::bytes(s.db_allocated_bytes),
        crate::units::bytes(s.reserve_bytes)
    );
    match &r.scan {
        Some(scan) => println!(
            "scan                      {} entries, {} bytes",
            scan.entries, scan.bytes
        ),
        None => println!(
            "scan                      skipped (unordered table); keydir keys {}",
            r.stats.unordered_keys
        ),
    }
    if let Some(u) = &r.update {
        println!();
        println!(
            "update phase              {} overwrites ({}{}), {} distinct keys, {} user bytes",
            u.updates,
            match u.dist {
                Dist::Uniform => "uniform".to_string(),
                Dist::Zipf => "zipf".to_string(),
            },
            u.zipf_theta
                .map(|t| format!(" theta {t}"))
                .unwrap_or_default(),
            u.distinct_keys,
            u.user_bytes
        );
        println!(
            "  times                   puts {:.3} s, flush+settle {:.3} s, GC wait {:.3} s ({})",
            u.put_secs,
            u.flush_settle_secs,
            u.gc_wait_secs,
            match u.reached_gc_target {
                Some(true) => "under target",
                Some(false) => "target NOT reached",
                None => "automatic GC off",
            }
        );
        match (
            u.device_write_amplification,
            u.device_write_amplification_with_gc_wait,
        ) {
            (Some(a), Some(b)) => println!(
                "  write amp (device)      {a:.3} (updates+flush+settle), {b:.3} (incl. GC wait)"
            ),
            _ => println!("  write amp (device)      n/a (/proc/self/io unreadable)"),
        }
        let e = &u.engine;
        println!(
            "  write amp (engine)      {:.3}  (vLog user {} + GC {} + SST {} + manifest {} over user {})",
            e.write_amplification,
            e.vlog_user_bytes,
            e.vlog_gc_bytes,
            e.sst_bytes,
            e.manifest_bytes,
            e.user_bytes
        );
        let g = &u.gc;
        println!(
            "  GC                      {} passes, {} B read, {} B moved ({} records), {} B freed, GC write amp {:.3}",
            g.passes, g.bytes_read, g.bytes_moved, g.records_moved, g.bytes_freed, g.gc_write_amplification
        );
        let sp = &u.space;
        println!(
            "  vLog / live             {:.3}  ({} B in {} segments over {} live B = {} keys x {} B){}",
            sp.vlog_over_live,
            sp.vlog_bytes,
            sp.vlog_segments,
            sp.live_vlog_bytes,
            c.keys,
            21 + c.key_size + c.value_size + 4,
            if sp.values_separated {
                ""
            } else {
                "  [values are inline: not meaningful]"
            }
        );
        println!(
            "  vLog space amp (engine) {:.3}  ({} garbage bytes by discard stats)",
            sp.engine_vlog_space_amplification, sp.vlog_garbage_bytes
        );
        println!(
            "  dir / live user         {:.3}  ({} files, {} B, {} allocated, over {} B)",
            sp.db_over_live_user, sp.files, sp.db_bytes, sp.db_allocated_bytes, sp.live_user_bytes
        );
    }
    if let Some(m) = &r.multi_get {
        println!();
        println!(
            "multi-get                 {} keys, {} per call, {} bytes",
            m.gets, m.batch, m.bytes
        );
    }
    if let (Some(g), Some(first)) = (&r.scan_after_gc, &r.scan) {
        println!();
        println!("scan before/after a GC of every sealed segment:");
        println!("                          before        after");
        println!(
            "  secs                {:>12.3} {:>12.3}",
            first.secs, g.scan.secs
        );
        println!(
            "  MB/s                {:>12.1} {:>12.1}",
            first.mb_per_sec, g.scan.mb_per_sec
        );
        println!(
            "  cache               {:>12} {:>12}",
            if first.cold { "cold" } else { "warm" },
            if g.scan.cold { "cold" } else { "warm" }
        );
        println!(
            "  vLog bytes          {:>12} {:>12}",
            g.vlog_bytes_before, g.vlog_bytes_after
        );
        let gr = &g.gc;
        println!(
            "  GC pass: {} victims, {} B read, {} records / {} B moved, {} superseded, {} B freed, {:.3} s (+ {:.3} s settle)",
            gr.victims.len(),
            gr.bytes_read,
            gr.records_moved,
            gr.bytes_moved,
            gr.records_superseded,
            gr.bytes_freed,
            g.gc_secs,
            g.settle_secs
        );
    }
    println!();
    let st = &r.stats;
    println!(
        "engine                    {} vLog segments ({} B), {} SSTable bytes in {} level(s), {} flushes, {} compactions, {} group commits, {} syncs, {} write stalls",
        st.vlog_segments,
        st.vlog_bytes,
        st.sst_bytes,
        st.levels.len(),
        st.flushes,
        st.compactions,
        st.group_commits,
        st.syncs,
        st.write_stalls
    );
    println!(
        "index/vLog reads          {} tables probed for {} gets; {} vLog reads (gets + scan)",
        st.tables_probed, st.gets, st.vlog_reads
    );
    println!(
        "GC (whole run)            {} passes, {} B moved, {} B freed, GC write amp {:.3}, vLog space amp {:.3}",
        st.gc_passes,
        st.gc_bytes_written,
        st.gc_bytes_freed,
        st.gc_write_amplification,
        st.vlog_space_amplification
    );
}
