//! What `bench` measures for each phase, and the types its JSON is made of.
//!
//! Write amplification is given at every layer it can be seen from, each
//! labelled for what it is:
//! - `engine`: the engine's own byte counters over the user bytes;
//! - `process`: `/proc/self/io` `write_bytes - cancelled_write_bytes` (what
//!   the process sent towards storage; before issue 14 this was called
//!   "device");
//! - `block_device`: sectors written to the block device under the
//!   database directory (`/proc/diskstats`), after a `syncfs` so writeback
//!   has reached it; every process writing to that device is counted;
//! - `flash`: the device's own SMART counters of host and media writes,
//!   where it reports them.
//!
//! Read amplification is bytes read from storage per byte returned to the
//! caller (`/proc/self/io` `read_bytes`, and the block device's sectors
//! read); space amplification is the directory's bytes over the live user
//! bytes at the end of the phase.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latencies are recorded in nanoseconds, from 1 ns to an hour, with three
/// significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// The percentiles a latency CDF is drawn through.
const CDF_POINTS: [f64; 17] = [
    1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99,
    100.0,
];

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// (percentile, microseconds) points of the CDF, for plots.
    pub cdf: Vec<(f64, f64)>,
}

impl Latency {
    /// The summary of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            cdf: CDF_POINTS
                .iter()
                .map(|&p| (p, us(h.value_at_quantile(p / 100.0))))
                .collect(),
        }
    }
}

/// Amplification at each layer; `None` where the layer cannot be seen (or
/// the phase has nothing to divide by).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Layers {
    pub engine: Option<f64>,
    pub process: Option<f64>,
    pub block_device: Option<f64>,
    pub flash_host: Option<f64>,
    pub flash_media: Option<f64>,
}

/// The raw byte counts behind [`Layers`], over the phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseBytes {
    /// Key + value bytes the phase wrote (puts; deletes count their key).
    pub user_written: u64,
    /// Key + value bytes the phase's reads returned.
    pub user_read: u64,
    /// The engine's own count of bytes written to its files.
    pub engine_written: Option<u64>,
    /// Of those, bytes moved by its garbage collector.
    pub engine_gc_written: Option<u64>,
    /// `/proc/self/io` write_bytes - cancelled_write_bytes.
    pub process_written: Option<u64>,
    /// `/proc/self/io` read_bytes.
    pub process_read: Option<u64>,
    /// `/proc/self/io` wchar: bytes passed to write system calls.
    pub process_wchar: Option<u64>,
    /// Sectors written to the block device under the directory, x 512.
    pub block_written: Option<u64>,
    /// Sectors read from it, x 512.
    pub block_read: Option<u64>,
    /// SMART host writes of the device.
    pub flash_host_written: Option<u64>,
    /// SMART media (NAND) writes of the device.
    pub flash_media_written: Option<u64>,
}

impl PhaseBytes {
    /// Write amplification at each layer (over `user_written`).
    pub fn write_amplification(&self) -> Layers {
        let over = |x: Option<u64>| x.and_then(|x| div(x, self.user_written));
        Layers {
            engine: over(self.engine_written),
            process: over(self.process_written),
            block_device: over(self.block_written),
            flash_host: over(self.flash_host_written),
            flash_media: over(self.flash_media_written),
        }
    }

    /// Read amplification at each layer the reads can be seen from (over
    /// `user_read`); the engine and flash layers are not counted.
    pub fn read_amplification(&self) -> Layers {
        let over = |x: Option<u64>| x.and_then(|x| div(x, self.user_read));
        Layers {
            process: over(self.process_read),
            block_device: over(self.block_read),
            ..Layers::default()
        }
    }
}

/// `a / b`, `None` when `b` is 0.
pub fn div(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The space the database takes at the end of a phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Space {
    /// Files in the directory (the disk reserve not counted).
    pub files: u64,
    /// Their bytes (lengths).
    pub db_bytes: u64,
    /// The blocks allocated to them.
    pub db_allocated_bytes: u64,
    /// wisckey's disk reserve (`RESERVE`, preallocated room for a full disk).
    pub reserve_bytes: u64,
    /// Key + value bytes of the live keys.
    pub live_user_bytes: u64,
    /// Live keys.
    pub live_keys: u64,
    /// db_bytes / live_user_bytes.
    pub space_amplification: Option<f64>,
}

/// wisckey's GC over a phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcFigures {
    pub passes: u64,
    pub bytes_read: u64,
    pub bytes_moved: u64,
    pub records_moved: u64,
    pub bytes_freed: u64,
    /// (vLog bytes by users + by GC) / vLog bytes by users, over the phase.
    pub gc_write_amplification: Option<f64>,
    /// Seconds waited after the phase's writes for automatic GC to reach
    /// its target (0 when not waited).
    pub wait_secs: f64,
    /// Whether automatic GC brought the vLog space amplification under the
    /// target within the wait; null when GC is off or not waited for.
    pub reached_target: Option<bool>,
    /// The highest vLog space amplification the sampler saw during the
    /// phase, and at its end (`Stats::vlog_space_amplification`).
    pub vlog_space_amplification_max: Option<f64>,
    pub vlog_space_amplification_end: f64,
    /// Write groups that waited for GC (back-pressure), and the seconds
    /// they waited, over the phase (`Stats::gc_write_stalls`,
    /// `Stats::gc_stall_seconds`).
    #[serde(default)]
    pub write_stalls: u64,
    #[serde(default)]
    pub stall_secs: f64,
}

/// wisckey's point reads over a phase: what they read from the files
/// (`Stats::get_block_reads`, `get_vlog_reads`) and the block cache.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointReadFigures {
    /// Point reads (a `multi_get` counts each of its keys).
    pub gets: u64,
    /// SSTable data blocks they read from files (block cache misses).
    pub block_reads: u64,
    /// Values they read from the vLog.
    pub vlog_reads: u64,
    /// (block_reads + vlog_reads) / gets: file reads the engine issued per
    /// point read (the page cache may have answered some).
    pub reads_per_get: f64,
    /// Block cache hits over lookups during the phase (point reads,
    /// iterators and GC); null without lookups.
    pub block_cache_hit_rate: Option<f64>,
    /// Bytes in the block cache at the end of the phase.
    pub block_cache_bytes: u64,
    /// Index and filter bytes the open tables keep in memory at the end.
    pub index_filter_bytes: u64,
}

/// One phase (workload) of a run on one engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Always `"phase"` (the JSON lines of a run are phases and one `"run"`).
    #[serde(rename = "type")]
    pub record: String,
    pub engine: String,
    /// The workload: fillseq, fillrandom, overwrite, readrandom, ...
    pub phase: String,
    /// Operations done (a full scan counts entries; a range scan, a
    /// multi_get and a read-modify-write count one each).
    pub ops: u64,
    /// Operations by kind (get, put, delete, scan, multiget, rmw, insert).
    pub ops_by_kind: BTreeMap<String, u64>,
    /// Seconds of the operations themselves.
    pub secs: f64,
    /// Seconds after them in the phase's window: flush, settle, sync, and
    /// the wait for GC (counted in the amplification figures, not in the
    /// throughput).
    pub after_secs: f64,
    pub ops_per_sec: f64,
    /// User bytes (written + read) per second, MB = 10^6 bytes.
    pub mb_per_sec: f64,
    /// Latency per operation kind.
    pub latency: BTreeMap<String, Latency>,
    /// Operations per second over time: (seconds since the phase began,
    /// ops/s in the interval before).
    pub throughput: Vec<(f64, f64)>,
    pub bytes: PhaseBytes,
    pub write_amplification: Layers,
    pub read_amplification: Layers,
    pub space: Space,
    /// Peak resident set of the process so far (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Resident set at the end of the phase (VmRSS), bytes.
    pub rss_bytes: Option<u64>,
    /// Whether the page cache was dropped right before the phase.
    pub cold: bool,
    /// wisckey's GC during the phase.
    pub gc: Option<GcFigures>,
    /// wisckey's point reads during the phase (null without any).
    #[serde(default)]
    pub point_reads: Option<PointReadFigures>,
    /// Anything the figures need said (a layer not seen, a warm phase
    /// that asked for cold, ...).
    pub notes: Vec<String>,
}

/// A phase asked for that this engine or table kind cannot run, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub phase: String,
    pub reason: String,
}

/// The last JSON line of a run on one engine: what it ran on and with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Always `"run"`.
    #[serde(rename = "type")]
    pub record: String,
    pub engine: String,
    /// The engine's configuration, one line.
    pub describe: String,
    /// The benchmark's configuration (every option of the run).
    pub config: serde_json::Value,
    /// The block device under the database directory, or why there is none.
    pub block_device: String,
    /// The device's flash counters, or why there are none.
    pub flash: String,
    /// Phases that were asked for and not run, and why.
    pub skipped: Vec<Skipped>,
    /// Phases that asked for a cold cache but ran warm (the drop failed).
    pub cold_failures: Vec<String>,
    /// Peak resident set of the process at the end (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Total seconds of the run, open to close.
    pub secs: f64,
    /// wisckey: its `Stats` at the end of the run (null for other engines).
    pub stats: Option<serde_json::Value>,
}

/// A run on one engine: its phases and its run line.
#[derive(Debug, Clone)]
pub struct EngineRun {
    pub phases: Vec<PhaseReport>,
    pub run: RunReport,
}
