//! `gc-sim`: a simulator of the vLog's garbage collector that touches no
//! disk.
//!
//! It keeps, per key, where its live record is (segment, slot), per segment
//! its bytes, its true live bytes and the garbage the engine's discard
//! statistics would know of, and replays a stream of overwrites through the
//! same rules the engine follows:
//!
//! * user writes append at the user head; a segment rolls when the next
//!   record would not fit (`src/engine/write.rs`);
//! * an overwritten record becomes known garbage with the engine's lag
//!   (`src/engine/flush.rs`, `src/engine/compact.rs`): at the next flush when
//!   both versions are in the same memtable, otherwise at the first level-0
//!   compaction after the new version's flush (level 0 is compacted when it
//!   holds `l0_compaction_trigger` tables; a GC pass adds one table);
//! * automatic GC (`src/engine/gc/mod.rs`, `auto_gc`) starts a round when the
//!   estimated space amplification (bytes over bytes minus known garbage)
//!   passes `1 + (t - 1) * 0.96` and runs passes of one victim each until it
//!   is under `1 + (t - 1) * 0.9`, at most 64 passes a round; candidates are
//!   the sealed user segments wholly before the replay point and the sealed
//!   GC segments, picked by the policies of `src/engine/gc/policy.rs`;
//! * a pass moves the victim's truly live records (the engine asks the
//!   index, which knows the newest version even before the discard
//!   statistics do), in key order, to GC's own head (or, with `--head user`,
//!   to the user head, as WiscKey does);
//! * the engine's GC thread runs beside the writers: `--gc-speed` lets a
//!   round read only so many victim bytes per user byte written, and go on
//!   across updates.
//!
//! GC write amplification is the engine's `Stats::gc_write_amplification`:
//! vLog bytes written by users and GC over those written by users.

mod plot;

use crate::units::{bytes, parse_size};
use crate::zipf::ScrambledZipf;
use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// The `long_about` of `gc-sim`: the model and the exit codes.
pub const LONG_ABOUT: &str = "\
Simulate the vLog's garbage collector without touching a disk, and print its \
GC write amplification and space amplification for each policy, head and \
space-amplification target.

The model follows the engine: records of 21 + key + value + 4 bytes append \
at the user head, segments roll at --segment-size; an overwritten record \
becomes garbage GC knows of only when the engine's discard statistics would \
count it (at the next flush if both versions are in one memtable, else at \
the first level-0 compaction after the new version is flushed: every \
--l0-trigger tables, GC passes adding one each; a flush when the memtable's \
entries reach --memtable-size or its vLog bytes --max-replay-bytes, as the \
engine rotates it, or every --discard-lag updates); automatic GC starts \
a round at 96% of the target's excess over 1 and goes on to 90% (at most 64 \
passes a round, one victim each), taking sealed user segments before the \
replay point and sealed GC segments, by Tail, Greedy or CostBenefit as \
src/engine/gc/policy.rs picks them (--min-garbage-ratio for the last two); \
a pass moves the victim's live records in key order to GC's own head (--head \
gc, the engine's way) or to the user head (--head user, WiscKey's). GC is \
done the moment a round starts, unless --gc-speed paces it (victim bytes \
read per user byte written: the engine's GC thread runs beside the writers \
and may fall behind them). After the updates, a last flush and GC until it \
is idle (as bench's GC wait). \
GC write amplification is the engine's: vLog bytes written by users and GC \
over those written by users (0 when users wrote nothing). Space \
amplification is the true one (vLog bytes over live bytes), its mean and \
maximum after --warmup updates; the engine's own estimate is also given.

--from DIR starts from a real database's segments (opened read-only): each \
segment's bytes and known garbage, cut into records of the given sizes.

Exit status: 0 the simulation ran, 1 it failed (e.g. --from names no \
database, the plot could not be written), 2 a usage error (a bad option or \
value). With --json, errors are printed as a JSON object {\"ok\": false, \"error\": ...} on \
stdout too.";

/// The engine's `GC_HIGH_WATER` (src/engine/gc/mod.rs).
const GC_HIGH_WATER: f64 = 0.96;
/// The engine's `GC_LOW_WATER`.
const GC_LOW_WATER: f64 = 0.9;
/// The most passes one round of automatic GC runs (`auto_gc`).
const MAX_PASSES_PER_ROUND: u32 = 64;
/// vLog record header and trailer bytes (src/vlog/record.rs).
const RECORD_OVERHEAD: u64 = 21 + 4;
/// Bytes a memtable counts per entry beyond the key: table id (4), sequence
/// trailer (8), an encoded value pointer (about 8), and the memtable's
/// per-entry overhead (64, src/lsm/memtable.rs).
const MEMTABLE_ENTRY_OVERHEAD: u64 = 4 + 8 + 8 + 64;
/// No slot: a record that is garbage from the start (`--from`).
const NO_KEY: u32 = u32::MAX;
/// A key's version was not written in any memtable still open.
const NO_EPOCH: u32 = u32::MAX;

/// Which GC policy (or all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyArg {
    /// The oldest segment with any known garbage.
    Tail,
    /// The largest fraction of known garbage.
    Greedy,
    /// The largest (1 - u) * age / (1 + u).
    CostBenefit,
    /// Each of the three.
    All,
}

/// Where a pass writes its survivors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadArg {
    /// GC's own head (separate GC segments), as the engine does.
    Gc,
    /// The user head, mixed with new writes (WiscKey's way).
    User,
    /// Each of the two.
    Both,
}

/// Which keys the updates hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadArg {
    /// Every key equally likely.
    Uniform,
    /// Zipfian ranks with skew --theta, scrambled over the keys.
    Zipf,
    /// --hot-share of the updates hit --hot-fraction of the keys.
    Hotcold,
}

/// The options of `gc-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct GcSimArgs {
    /// Distinct keys (all written once before the updates).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=u32::MAX as u64 - 1))]
    keys: u64,

    /// Overwrites simulated after the load.
    #[arg(long, default_value_t = 10_000_000)]
    updates: u64,

    /// Bytes per value, a size (4096, 4KiB); ignored with --value-dist.
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    value_size: u64,

    /// Value sizes drawn per write instead: `uniform:MIN-MAX` (sizes, e.g.
    /// uniform:1KiB-8KiB).
    #[arg(long, value_parser = parse_value_dist)]
    value_dist: Option<ValueDist>,

    /// Bytes per key (the bench's keys are 19).
    #[arg(long, default_value_t = 19)]
    key_size: u64,

    /// Bytes per vLog segment (the engine's default, 128 MiB).
    #[arg(long, default_value = "128MiB", value_parser = parse_segment_size)]
    segment_size: u64,

    /// The engine's memtable_size (default 64 MiB): a flush when the
    /// memtable's entries (key + 84 bytes each) reach it, unless
    /// --discard-lag sets the flushes.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    memtable_size: u64,

    /// The engine's max_replay_bytes (default 256 MiB): a flush also when
    /// the vLog bytes written since the last one reach it.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    max_replay_bytes: u64,

    /// A flush every N updates instead of the memtable rule (the unit of the
    /// discard statistics' lag); 0: garbage is known at once (no lag).
    #[arg(long)]
    discard_lag: Option<u64>,

    /// Level-0 tables (flushes and GC passes) that make a compaction, which
    /// is when overwrites across memtables become known garbage (the
    /// engine's l0_compaction_trigger, 4).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    l0_trigger: u32,

    /// Which keys the updates hit.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Uniform)]
    workload: WorkloadArg,

    /// Skew of --workload zipf, in (0, 1).
    #[arg(long, default_value_t = 0.99, value_parser = parse_theta)]
    theta: f64,

    /// Fraction of the keys that are hot (--workload hotcold), in (0, 1).
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction)]
    hot_fraction: f64,

    /// Fraction of the updates that hit the hot keys, in (0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = parse_fraction)]
    hot_share: f64,

    /// GC policy, or all three.
    #[arg(long, value_enum, default_value_t = PolicyArg::All)]
    policy: PolicyArg,

    /// Where survivors go: GC's own head, the user head, or each.
    #[arg(long, value_enum, default_value_t = HeadArg::Gc)]
    head: HeadArg,

    /// The space-amplification target (at least 1) [default: 1.5].
    #[arg(long, value_parser = parse_target, conflicts_with = "targets")]
    target: Option<f64>,

    /// A sweep of targets, comma-separated (1.1,1.25,1.5,2,3).
    #[arg(long, value_parser = parse_target, value_delimiter = ',')]
    targets: Vec<f64>,

    /// Segments with less known garbage are not taken (except by Tail).
    #[arg(long, default_value_t = 0.2, value_parser = parse_ratio)]
    min_garbage_ratio: f64,

    /// How fast GC is next to the writers: victim bytes it reads per user
    /// byte written (e.g. 0.5); by default a round is done the moment it
    /// starts. After the updates GC runs until idle either way.
    #[arg(long, value_parser = parse_speed)]
    gc_speed: Option<f64>,

    /// Updates before the space amplification is sampled [default:
    /// min(keys, updates / 2)].
    #[arg(long)]
    warmup: Option<u64>,

    /// Seed of the load order, the update keys and the value sizes.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Start from this database's segments (opened read-only, nothing in it
    /// changes) instead of a fresh load; the key count follows from its
    /// live bytes.
    #[arg(long)]
    from: Option<PathBuf>,

    /// Print one JSON object instead of the table (errors too).
    #[arg(long)]
    json: bool,

    /// Draw GC write amplification against mean space amplification, one
    /// curve per policy and head, into this file (.svg or .png).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    plot: Option<PathBuf>,
}

/// How value sizes are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ValueDist {
    /// Every value this size.
    Fixed(u64),
    /// Uniform in `min..=max`.
    Uniform {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
}

impl ValueDist {
    fn draw(self, rng: &mut StdRng) -> u64 {
        match self {
            ValueDist::Fixed(v) => v,
            ValueDist::Uniform { min, max } => rng.gen_range(min..=max),
        }
    }

    fn mean(self) -> f64 {
        match self {
            ValueDist::Fixed(v) => v as f64,
            ValueDist::Uniform { min, max } => (min + max) as f64 / 2.0,
        }
    }
}

fn parse_value_dist(s: &str) -> Result<ValueDist, String> {
    let rest = s
        .strip_prefix("uniform:")
        .ok_or_else(|| format!("{s:?}: expected uniform:MIN-MAX"))?;
    let (a, b) = rest
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected uniform:MIN-MAX"))?;
    let (min, max) = (parse_size(a)?, parse_size(b)?);
    if min > max {
        return Err(format!("{s:?}: MIN is over MAX"));
    }
    Ok(ValueDist::Uniform { min, max })
}

fn parse_segment_size(s: &str) -> Result<u64, String> {
    let v = parse_size(s)?;
    if v < 4096 {
        return Err(format!("{s:?}: a segment must be at least 4 KiB"));
    }
    Ok(v)
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|e| format!("{s:?}: {e}"))
        .and_then(|v| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("{s:?}: not a finite number"))
            }
        })
}

fn parse_target(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v < 1.0 {
        return Err(format!(
            "{s:?}: a space-amplification target is at least 1.0"
        ));
    }
    Ok(v)
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v <= 0.0 {
        return Err(format!("{s:?}: must be over 0"));
    }
    Ok(v)
}

fn parse_theta(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v <= 0.0 || v >= 1.0 {
        return Err(format!("{s:?}: theta must be in (0, 1)"));
    }
    Ok(v)
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v <= 0.0 || v >= 1.0 {
        return Err(format!("{s:?}: must be in (0, 1)"));
    }
    Ok(v)
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{s:?}: must be in [0, 1]"));
    }
    Ok(v)
}

/// A GC policy of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The oldest segment with known garbage.
    Tail,
    /// The largest garbage fraction.
    Greedy,
    /// The largest (1 - u) * age / (1 + u).
    CostBenefit,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::Tail => "tail",
            Policy::Greedy => "greedy",
            Policy::CostBenefit => "cost-benefit",
        }
    }
}

/// Where survivors go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// GC's own segments.
    Gc,
    /// The user head.
    User,
}

impl Head {
    fn name(self) -> &'static str {
        match self {
            Head::Gc => "gc",
            Head::User => "user",
        }
    }
}

/// The workload of one simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Workload {
    /// Uniform over the keys.
    Uniform,
    /// Scrambled Zipfian with this skew.
    Zipf {
        /// Skew in (0, 1).
        theta: f64,
    },
    /// `share` of the updates hit `fraction` of the keys.
    HotCold {
        /// Fraction of keys that are hot.
        fraction: f64,
        /// Fraction of updates that hit them.
        share: f64,
    },
}

/// One simulation's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Distinct keys (ignored with a start state).
    pub keys: u64,
    /// Overwrites.
    pub updates: u64,
    /// Value sizes.
    pub value: ValueDist,
    /// Key bytes.
    pub key_size: u64,
    /// Segment bytes.
    pub segment_size: u64,
    /// When flushes happen, which sets the discard statistics' lag.
    pub lag: Lag,
    /// Level-0 tables that trigger a compaction.
    pub l0_trigger: u32,
    /// Which keys the updates hit.
    pub workload: Workload,
    /// Victim choice.
    pub policy: Policy,
    /// Where survivors go.
    pub head: Head,
    /// Space-amplification target.
    pub target: f64,
    /// Garbage fraction below which Greedy and CostBenefit skip a segment.
    pub min_garbage_ratio: f64,
    /// Victim bytes GC reads per user byte written during the updates
    /// (None: GC is done the moment it starts).
    pub gc_speed: Option<f64>,
    /// Updates before space amplification is sampled.
    pub warmup: u64,
    /// Seed.
    pub seed: u64,
}

/// When the simulated memtable is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Lag {
    /// Garbage is known at once, the replay point follows the head.
    None,
    /// A flush every this many updates.
    Updates {
        /// Updates per memtable.
        every: u64,
    },
    /// The engine's rule: a flush when the memtable's entries reach
    /// `memtable_size` or its vLog bytes reach `max_replay_bytes`.
    Memtable {
        /// Options::memtable_size.
        memtable_size: u64,
        /// Options::max_replay_bytes.
        max_replay_bytes: u64,
    },
}

/// One segment of a start state: bytes, known garbage, written by GC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StartSegment {
    /// Bytes of the segment.
    pub bytes: u64,
    /// Garbage bytes known to the discard statistics.
    pub garbage: u64,
    /// Whether GC wrote it.
    pub gc: bool,
}

/// What one simulation measured.
#[derive(Debug, Clone, Serialize)]
pub struct SimResult {
    /// Victim choice.
    pub policy: Policy,
    /// Where survivors went.
    pub head: Head,
    /// The target.
    pub target: f64,
    /// Vlog bytes users wrote.
    pub user_bytes_written: u64,
    /// Vlog bytes GC wrote (moved records).
    pub gc_bytes_written: u64,
    /// (user + GC bytes) over user bytes; 0 when users wrote nothing.
    pub gc_write_amplification: f64,
    /// Mean true space amplification (vLog bytes over live bytes), sampled
    /// after every update past the warm-up.
    pub space_amp_mean: f64,
    /// Largest such sample.
    pub space_amp_max: f64,
    /// True space amplification at the end.
    pub space_amp_end: f64,
    /// True space amplification after the last update, before the last
    /// flush and GC wait.
    pub space_amp_after_updates: f64,
    /// The engine's estimate (by known garbage) at the end.
    pub estimated_space_amp_end: f64,
    /// GC passes.
    pub passes: u64,
    /// Segments collected (one per pass).
    pub segments_collected: u64,
    /// Records moved.
    pub records_moved: u64,
    /// Bytes of segments freed.
    pub bytes_freed: u64,
    /// Flushes and compactions simulated.
    pub flushes: u64,
    /// Level-0 compactions simulated.
    pub compactions: u64,
    /// Whether the true space amplification was at or under the target at
    /// the end.
    pub reached_target: bool,
    /// Wall time of the simulation.
    pub seconds: f64,
}

/// One vLog segment of the simulation.
#[derive(Debug, Default)]
struct Seg {
    gc: bool,
    alive: bool,
    sealed: bool,
    bytes: u64,
    /// Bytes of records that are the live version of their key.
    live: u64,
    /// Garbage the discard statistics know of.
    known: u64,
    /// Overwritten within the open memtable: known at the next flush.
    mem_dup: u64,
    /// Overwritten by a version in the open memtable, the old one flushed:
    /// waits for a compaction after the next flush.
    mem_old: u64,
    /// Overwritten by a flushed version: known at the next compaction.
    flushed: u64,
    /// The key of each record, in append order.
    keys: Vec<u32>,
}

/// Where a key's live record is.
#[derive(Debug, Clone, Copy)]
struct Loc {
    seg: u32,
    slot: u32,
}

/// Draws the updated keys.
enum KeyGen {
    Uniform(u64),
    Zipf(Box<ScrambledZipf>),
    HotCold {
        hot: Vec<u32>,
        cold: Vec<u32>,
        share: f64,
    },
}

impl KeyGen {
    fn new(w: Workload, keys: u64, rng: &mut StdRng) -> KeyGen {
        match w {
            Workload::Uniform => KeyGen::Uniform(keys),
            Workload::Zipf { theta } => {
                KeyGen::Zipf(Box::new(ScrambledZipf::new(keys, theta, rng)))
            }
            Workload::HotCold { fraction, share } => {
                let mut all: Vec<u32> = (0..keys as u32).collect();
                all.shuffle(rng);
                let n_hot = ((keys as f64 * fraction).round() as usize).clamp(1, all.len());
                let cold = all.split_off(n_hot);
                if cold.is_empty() {
                    return KeyGen::Uniform(keys);
                }
                KeyGen::HotCold {
                    hot: all,
                    cold,
                    share,
                }
            }
        }
    }

    fn next(&self, rng: &mut StdRng) -> u32 {
        match self {
            KeyGen::Uniform(n) => rng.gen_range(0..*n) as u32,
            KeyGen::Zipf(z) => z.next_item(rng) as u32,
            KeyGen::HotCold { hot, cold, share } => {
                if rng.gen_bool(*share) {
                    hot[rng.gen_range(0..hot.len())]
                } else {
                    cold[rng.gen_range(0..cold.len())]
                }
            }
        }
    }
}

/// The simulated vLog and index.
struct Sim<'a> {
    cfg: &'a Config,
    segs: Vec<Seg>,
    /// Numbers of the segments in the live set, oldest first.
    live_set: Vec<u32>,
    loc: Vec<Loc>,
    /// Record size per key (value + key + overhead).
    size: Vec<u32>,
    /// The memtable a key's live version was written in.
    epoch: Vec<u32>,
    cur_epoch: u32,
    user_head: u32,
    gc_head: Option<u32>,
    /// User segments below this number are wholly flushed.
    replay_seg: u32,
    l0_tables: u32,
    total: u64,
    live: u64,
    known: u64,
    user_written: u64,
    gc_written: u64,
    passes: u64,
    records_moved: u64,
    bytes_freed: u64,
    flushes: u64,
    compactions: u64,
    survivors: Vec<u32>,
    /// Victim bytes GC may read now (with `gc_speed`).
    credit: f64,
    /// A round of passes is under way (with `gc_speed`).
    in_round: bool,
}

impl<'a> Sim<'a> {
    /// A simulation of `cfg` with nothing written yet (no key placed).
    fn empty(cfg: &'a Config) -> Sim<'a> {
        Sim {
            cfg,
            segs: Vec::new(),
            live_set: Vec::new(),
            loc: Vec::new(),
            size: Vec::new(),
            epoch: Vec::new(),
            cur_epoch: 0,
            user_head: 0,
            gc_head: None,
            replay_seg: 0,
            l0_tables: 0,
            total: 0,
            live: 0,
            known: 0,
            user_written: 0,
            gc_written: 0,
            passes: 0,
            records_moved: 0,
            bytes_freed: 0,
            flushes: 0,
            compactions: 0,
            survivors: Vec::new(),
            credit: 0.0,
            in_round: false,
        }
    }

    fn new_seg(&mut self, gc: bool) -> u32 {
        let n = self.segs.len() as u32;
        self.segs.push(Seg {
            gc,
            alive: true,
            ..Seg::default()
        });
        self.live_set.push(n);
        n
    }

    /// Appends a record of `key` (of `len` bytes) at the user or GC head.
    fn append(&mut self, key: u32, len: u64, gc_head: bool) -> Loc {
        let seg_size = self.cfg.segment_size;
        let head = if gc_head {
            match self.gc_head {
                Some(h)
                    if self.segs[h as usize].bytes == 0
                        || self.segs[h as usize].bytes + len <= seg_size =>
                {
                    h
                }
                other => {
                    if let Some(h) = other {
                        self.segs[h as usize].sealed = true;
                    }
                    let h = self.new_seg(true);
                    self.gc_head = Some(h);
                    h
                }
            }
        } else {
            let h = self.user_head;
            let s = &self.segs[h as usize];
            if s.bytes > 0 && s.bytes + len > seg_size {
                self.segs[h as usize].sealed = true;
                let h = self.new_seg(false);
                self.user_head = h;
                h
            } else {
                h
            }
        };
        let s = &mut self.segs[head as usize];
        let slot = s.keys.len() as u32;
        s.keys.push(key);
        s.bytes += len;
        s.live += len;
        self.total += len;
        self.live += len;
        Loc { seg: head, slot }
    }

    /// The engine's estimate: bytes over bytes minus known garbage.
    fn estimate(&self) -> f64 {
        let live = self.total.saturating_sub(self.known);
        if live == 0 {
            if self.total == 0 {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            self.total as f64 / live as f64
        }
    }

    fn true_amp(&self) -> f64 {
        if self.live == 0 {
            1.0
        } else {
            self.total as f64 / self.live as f64
        }
    }

    /// One user overwrite of `key` with a record of `len` bytes.
    fn update(&mut self, key: u32, len: u64) {
        let old = self.loc[key as usize];
        let old_len = u64::from(self.size[key as usize]);
        let lagged = self.cfg.lag != Lag::None;
        {
            let s = &mut self.segs[old.seg as usize];
            s.live -= old_len;
            if !lagged {
                s.known += old_len;
            } else if self.epoch[key as usize] == self.cur_epoch {
                s.mem_dup += old_len;
            } else {
                s.mem_old += old_len;
            }
        }
        self.live -= old_len;
        if !lagged {
            self.known += old_len;
        }
        let at = self.append(key, len, false);
        self.user_written += len;
        self.loc[key as usize] = at;
        self.size[key as usize] = len as u32;
        self.epoch[key as usize] = self.cur_epoch;
    }

    /// A memtable flush: overwrites within it become known, the others
    /// wait for a compaction; the replay point moves to the head.
    fn flush(&mut self) {
        self.flushes += 1;
        for &n in &self.live_set {
            let s = &mut self.segs[n as usize];
            s.known += s.mem_dup;
            self.known += s.mem_dup;
            s.flushed += s.mem_old;
            s.mem_dup = 0;
            s.mem_old = 0;
        }
        self.cur_epoch += 1;
        self.replay_seg = self.user_head;
        self.add_l0_table();
    }

    fn add_l0_table(&mut self) {
        self.l0_tables += 1;
        if self.l0_tables >= self.cfg.l0_trigger {
            self.l0_tables = 0;
            self.compactions += 1;
            for &n in &self.live_set {
                let s = &mut self.segs[n as usize];
                s.known += s.flushed;
                self.known += s.flushed;
                s.flushed = 0;
            }
        }
    }

    /// The victim the policy picks, as `policy::pick` with one victim.
    fn pick(&self) -> Option<u32> {
        let newest = *self.live_set.last()?;
        let gc_head = self.gc_head;
        let mut best: Option<(f64, u32)> = None;
        for &n in &self.live_set {
            let s = &self.segs[n as usize];
            let candidate = if s.gc {
                gc_head.is_some_and(|h| n < h)
            } else {
                n < self.replay_seg && s.sealed
            };
            if !candidate {
                continue;
            }
            let garbage = s.known.min(s.bytes);
            if garbage == 0 && s.bytes > 0 {
                continue;
            }
            let ratio = if s.bytes == 0 {
                1.0
            } else {
                garbage as f64 / s.bytes as f64
            };
            let score = match self.cfg.policy {
                // Oldest first: the live set is in number order.
                Policy::Tail => return Some(n),
                Policy::Greedy => {
                    if ratio < self.cfg.min_garbage_ratio {
                        continue;
                    }
                    ratio
                }
                Policy::CostBenefit => {
                    if ratio < self.cfg.min_garbage_ratio {
                        continue;
                    }
                    let u = 1.0 - ratio;
                    let age = f64::from(newest - n + 1);
                    (1.0 - u) * age / (1.0 + u)
                }
            };
            // Ties go to the lower number, which comes first.
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, n));
            }
        }
        best.map(|(_, n)| n)
    }

    /// One GC pass over `victim`.
    fn pass(&mut self, victim: u32) {
        let mut keys = std::mem::take(&mut self.segs[victim as usize].keys);
        let mut survivors = std::mem::take(&mut self.survivors);
        survivors.clear();
        for (slot, &k) in keys.iter().enumerate() {
            if k == NO_KEY {
                continue;
            }
            let l = self.loc[k as usize];
            if l.seg == victim && l.slot == slot as u32 {
                survivors.push(k);
            }
        }
        keys.clear();
        keys.shrink_to_fit();
        // Key order, as the engine sorts them (the key index stands for the key).
        survivors.sort_unstable();
        let to_gc = self.cfg.head == Head::Gc;
        for &k in &survivors {
            let len = u64::from(self.size[k as usize]);
            let at = self.append(k, len, to_gc);
            self.loc[k as usize] = at;
            self.epoch[k as usize] = NO_EPOCH;
            self.gc_written += len;
            // The old copy's bytes leave with the victim (its `live`, below).
        }
        self.records_moved += survivors.len() as u64;
        let moved_any = !survivors.is_empty();
        self.survivors = survivors;
        let s = &mut self.segs[victim as usize];
        s.alive = false;
        self.total -= s.bytes;
        self.live -= s.live;
        self.known -= s.known.min(s.bytes);
        self.bytes_freed += s.bytes;
        self.live_set.retain(|&n| n != victim);
        self.passes += 1;
        // Survivors moved means the pass wrote a level-0 table of pointers.
        if moved_any {
            self.add_l0_table();
        }
    }

    /// Automatic GC: a round when over the high water mark.
    fn auto_gc(&mut self) -> bool {
        let t = self.cfg.target;
        let high = 1.0 + (t - 1.0) * GC_HIGH_WATER;
        if self.estimate() <= high {
            return false;
        }
        let low = 1.0 + (t - 1.0) * GC_LOW_WATER;
        let mut passes = 0;
        while self.estimate() > low && passes < MAX_PASSES_PER_ROUND {
            let Some(v) = self.pick() else { break };
            self.pass(v);
            passes += 1;
        }
        passes > 0
    }

    /// Automatic GC that reads at most `gc_speed` victim bytes per user
    /// byte: a round goes on across updates until it is under the low
    /// water mark; time GC spends idle is not banked (beyond one segment).
    fn paced_gc(&mut self) {
        let t = self.cfg.target;
        let seg = self.cfg.segment_size as f64;
        if !self.in_round {
            if self.estimate() <= 1.0 + (t - 1.0) * GC_HIGH_WATER {
                self.credit = self.credit.min(seg);
                return;
            }
            self.in_round = true;
        }
        let low = 1.0 + (t - 1.0) * GC_LOW_WATER;
        while self.estimate() > low {
            if self.credit < seg {
                return;
            }
            let Some(v) = self.pick() else { break };
            let s = &self.segs[v as usize];
            // A segment all garbage by the statistics is not read.
            if s.known < s.bytes {
                self.credit -= s.bytes as f64;
            }
            self.pass(v);
        }
        self.in_round = false;
    }
}

/// The open memtable: what decides the next flush.
#[derive(Debug, Default)]
struct Memtable {
    updates: u64,
    entry_bytes: u64,
    log_bytes: u64,
}

impl Memtable {
    /// Adds a write of a `len`-byte record; true when the memtable is to
    /// be flushed now (and it is emptied).
    fn add(&mut self, cfg: &Config, len: u64) -> bool {
        self.updates += 1;
        self.entry_bytes += cfg.key_size + MEMTABLE_ENTRY_OVERHEAD;
        self.log_bytes += len;
        let full = match cfg.lag {
            Lag::None => false,
            Lag::Updates { every } => self.updates >= every,
            Lag::Memtable {
                memtable_size,
                max_replay_bytes,
            } => self.entry_bytes >= memtable_size || self.log_bytes >= max_replay_bytes,
        };
        if full {
            *self = Memtable::default();
        }
        full
    }
}

/// Runs one simulation: from a fresh load of `cfg.keys` keys, or from
/// `start` (segments of a real database).
pub fn simulate(cfg: &Config, start: Option<&[StartSegment]>) -> Result<SimResult> {
    let began = Instant::now();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut size_rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed_5eed_5eed_5eed);
    let overhead = RECORD_OVERHEAD + cfg.key_size;
    let max_record = overhead
        + match cfg.value {
            ValueDist::Fixed(v) => v,
            ValueDist::Uniform { max, .. } => max,
        };
    if max_record > u64::from(u32::MAX) {
        bail!("a record of {max_record} bytes is too large for the simulator");
    }
    let mut sim = Sim::empty(cfg);

    let keys = match start {
        None => {
            let keys = cfg.keys;
            sim.loc = vec![Loc { seg: 0, slot: 0 }; keys as usize];
            sim.size = vec![0; keys as usize];
            sim.epoch = vec![NO_EPOCH; keys as usize];
            sim.user_head = sim.new_seg(false);
            let mut order: Vec<u32> = (0..keys as u32).collect();
            order.shuffle(&mut rng);
            let mut mem = Memtable::default();
            for k in order {
                let len = overhead + cfg.value.draw(&mut size_rng);
                let at = sim.append(k, len, false);
                sim.loc[k as usize] = at;
                sim.size[k as usize] = len as u32;
                if mem.add(cfg, len) {
                    sim.flush();
                }
            }
            // The bench flushes after its load.
            if mem.updates > 0 {
                sim.flush();
            }
            // The load's flushes and compactions are not the run's.
            sim.flushes = 0;
            sim.compactions = 0;
            keys
        }
        Some(segments) => load_start(&mut sim, segments, overhead)?,
    };
    // The load is flushed and settled: the replay point is at the head.
    sim.replay_seg = sim.user_head;
    let gen = KeyGen::new(cfg.workload, keys, &mut rng);
    let mut mem = Memtable::default();
    let mut sum_amp = 0.0f64;
    let mut max_amp = 0.0f64;
    let mut samples = 0u64;
    // A start state may be over the target already.
    sim.auto_gc();
    for i in 0..cfg.updates {
        let k = gen.next(&mut rng);
        let len = overhead + cfg.value.draw(&mut size_rng);
        sim.update(k, len);
        let flush = cfg.lag != Lag::None && mem.add(cfg, len);
        if flush {
            sim.flush();
        }
        if let Some(speed) = cfg.gc_speed {
            if cfg.lag == Lag::None {
                sim.replay_seg = sim.user_head;
            }
            sim.credit += len as f64 * speed;
            sim.paced_gc();
        } else if cfg.lag == Lag::None {
            // No lag: the replay point follows the head at once.
            sim.replay_seg = sim.user_head;
            sim.auto_gc();
        } else if flush {
            sim.auto_gc();
        }
        if i >= cfg.warmup {
            let a = sim.true_amp();
            sum_amp += a;
            max_amp = max_amp.max(a);
            samples += 1;
        }
    }
    let after_updates = sim.true_amp();
    // The end of bench's update phase: a flush, then GC until idle.
    if cfg.lag != Lag::None && mem.updates > 0 {
        sim.flush();
    }
    while sim.auto_gc() {}
    let end = sim.true_amp();
    let (mean, max) = if samples == 0 {
        (end, end)
    } else {
        (sum_amp / samples as f64, max_amp)
    };
    Ok(SimResult {
        policy: cfg.policy,
        head: cfg.head,
        target: cfg.target,
        user_bytes_written: sim.user_written,
        gc_bytes_written: sim.gc_written,
        gc_write_amplification: if sim.user_written == 0 {
            0.0
        } else {
            (sim.user_written + sim.gc_written) as f64 / sim.user_written as f64
        },
        space_amp_mean: mean,
        space_amp_max: max,
        space_amp_end: end,
        space_amp_after_updates: after_updates,
        estimated_space_amp_end: sim.estimate(),
        passes: sim.passes,
        segments_collected: sim.passes,
        records_moved: sim.records_moved,
        bytes_freed: sim.bytes_freed,
        flushes: sim.flushes,
        compactions: sim.compactions,
        reached_target: end <= cfg.target,
        seconds: began.elapsed().as_secs_f64(),
    })
}

/// Cuts each start segment into records: live records get keys, the
/// known garbage becomes records of no key. Returns the key count.
fn load_start(sim: &mut Sim<'_>, segments: &[StartSegment], overhead: u64) -> Result<u64> {
    let rec = start_record(overhead, sim.cfg.value);
    let mut keys: u64 = 0;
    let last_user = segments.iter().rposition(|s| !s.gc);
    let last_gc = segments.iter().rposition(|s| s.gc);
    for (i, s) in segments.iter().enumerate() {
        let n = sim.new_seg(s.gc);
        let garbage = s.garbage.min(s.bytes);
        let live_records = (s.bytes - garbage) / rec;
        let seg = &mut sim.segs[n as usize];
        for _ in 0..live_records {
            let k = u32::try_from(keys).context("too many keys in the start state")?;
            if k == NO_KEY {
                bail!("too many keys in the start state");
            }
            seg.keys.push(k);
            keys += 1;
        }
        let live_bytes = live_records * rec;
        seg.live = live_bytes;
        // The rest of the segment is garbage the statistics know of.
        seg.bytes = s.bytes.max(live_bytes);
        let dead = seg.bytes - live_bytes;
        seg.known = dead;
        if dead > 0 {
            seg.keys.push(NO_KEY);
        }
        seg.sealed = Some(i) != last_user && Some(i) != last_gc;
        sim.total += seg.bytes;
        sim.live += live_bytes;
        sim.known += dead;
        if Some(i) == last_user {
            sim.user_head = n;
        }
        if Some(i) == last_gc {
            sim.gc_head = Some(n);
        }
    }
    if last_user.is_none() {
        sim.user_head = sim.new_seg(false);
    }
    if keys == 0 {
        bail!("the start state has no live records");
    }
    sim.loc = vec![Loc { seg: 0, slot: 0 }; keys as usize];
    sim.size = vec![rec as u32; keys as usize];
    sim.epoch = vec![NO_EPOCH; keys as usize];
    for &n in &sim.live_set {
        for (slot, &k) in sim.segs[n as usize].keys.iter().enumerate() {
            if k != NO_KEY {
                sim.loc[k as usize] = Loc {
                    seg: n,
                    slot: slot as u32,
                };
            }
        }
    }
    Ok(keys)
}

/// The size a start state's records are taken to have: the mean record.
fn start_record(overhead: u64, value: ValueDist) -> u64 {
    (overhead as f64 + value.mean()).round().max(1.0) as u64
}

/// The live records (keys) a start state holds with records of `rec` bytes.
fn start_keys(segments: &[StartSegment], rec: u64) -> u64 {
    segments
        .iter()
        .map(|s| (s.bytes - s.garbage.min(s.bytes)) / rec)
        .sum()
}

/// Reads the start state of `--from`: the segments of the database there.
fn read_start(dir: &std::path::Path) -> Result<Vec<StartSegment>> {
    if !dir.join("CURRENT").is_file() {
        bail!(
            "{} is not a wisckey database (no CURRENT file)",
            dir.display()
        );
    }
    let db = wisckey::Db::open_read_only(dir, wisckey::Options::default())
        .with_context(|| format!("opening {} read-only", dir.display()))?;
    let segs = db
        .stats()
        .segments
        .iter()
        .map(|s| StartSegment {
            bytes: s.bytes,
            garbage: s.garbage_bytes,
            gc: s.gc,
        })
        .collect();
    db.close().context("closing the database")?;
    Ok(segs)
}

/// Everything `gc-sim --json` prints.
#[derive(Debug, Serialize)]
struct Output {
    keys: u64,
    updates: u64,
    value: ValueDist,
    key_size: u64,
    record_bytes_mean: f64,
    segment_size: u64,
    lag: Lag,
    l0_trigger: u32,
    workload: Workload,
    min_garbage_ratio: f64,
    warmup_updates: u64,
    seed: u64,
    from: Option<PathBuf>,
    start_segments: Option<usize>,
    results: Vec<SimResult>,
    plot: Option<PathBuf>,
}

/// Runs `gc-sim`: errors go to stdout as JSON with `--json`.
/// Runs `gc-sim` (an error is printed by `main`, as JSON too with `--json`).
pub fn run(args: &GcSimArgs) -> Result<()> {
    let start = match &args.from {
        Some(dir) => Some(read_start(dir)?),
        None => None,
    };
    let value = args.value_dist.unwrap_or(ValueDist::Fixed(args.value_size));
    let policies: Vec<Policy> = match args.policy {
        PolicyArg::Tail => vec![Policy::Tail],
        PolicyArg::Greedy => vec![Policy::Greedy],
        PolicyArg::CostBenefit => vec![Policy::CostBenefit],
        PolicyArg::All => vec![Policy::Tail, Policy::Greedy, Policy::CostBenefit],
    };
    let heads: Vec<Head> = match args.head {
        HeadArg::Gc => vec![Head::Gc],
        HeadArg::User => vec![Head::User],
        HeadArg::Both => vec![Head::Gc, Head::User],
    };
    let targets: Vec<f64> = if !args.targets.is_empty() {
        args.targets.clone()
    } else {
        vec![args.target.unwrap_or(1.5)]
    };
    let lag = match args.discard_lag {
        Some(0) => Lag::None,
        Some(every) => Lag::Updates { every },
        None => Lag::Memtable {
            memtable_size: args.memtable_size,
            max_replay_bytes: args.max_replay_bytes,
        },
    };
    let keys = match &start {
        Some(s) => start_keys(s, start_record(RECORD_OVERHEAD + args.key_size, value)),
        None => args.keys,
    };
    let warmup = args.warmup.unwrap_or(keys.min(args.updates / 2));
    let workload = match args.workload {
        WorkloadArg::Uniform => Workload::Uniform,
        WorkloadArg::Zipf => Workload::Zipf { theta: args.theta },
        WorkloadArg::Hotcold => Workload::HotCold {
            fraction: args.hot_fraction,
            share: args.hot_share,
        },
    };
    let mut results = Vec::new();
    for &policy in &policies {
        for &head in &heads {
            for &target in &targets {
                let cfg = Config {
                    keys,
                    updates: args.updates,
                    value,
                    key_size: args.key_size,
                    segment_size: args.segment_size,
                    lag,
                    l0_trigger: args.l0_trigger,
                    workload,
                    policy,
                    head,
                    target,
                    min_garbage_ratio: args.min_garbage_ratio,
                    gc_speed: args.gc_speed,
                    warmup,
                    seed: args.seed,
                };
                if !args.json {
                    eprintln!(
                        "simulating {} / {} head / target {target}",
                        policy.name(),
                        head.name()
                    );
                }
                results.push(simulate(&cfg, start.as_deref())?);
            }
        }
    }
    if let Some(path) = &args.plot {
        plot::draw(path, &results).with_context(|| format!("drawing {}", path.display()))?;
    }
    if args.json {
        let out = Output {
            keys,
            updates: args.updates,
            value,
            key_size: args.key_size,
            record_bytes_mean: RECORD_OVERHEAD as f64 + args.key_size as f64 + value.mean(),
            segment_size: args.segment_size,
            lag,
            l0_trigger: args.l0_trigger,
            workload,
            min_garbage_ratio: args.min_garbage_ratio,
            warmup_updates: warmup,
            seed: args.seed,
            from: args.from.clone(),
            start_segments: start.as_ref().map(Vec::len),
            results,
            plot: args.plot.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(keys, args, &results);
    }
    Ok(())
}

fn print_table(keys: u64, args: &GcSimArgs, results: &[SimResult]) {
    let flushes = match args.discard_lag {
        Some(0) => "no discard lag".to_string(),
        Some(n) => format!("a flush every {n} updates"),
        None => format!(
            "a flush every {} of memtable or {} of vLog",
            bytes(args.memtable_size),
            bytes(args.max_replay_bytes)
        ),
    };
    println!(
        "gc-sim: {keys} keys, {} updates, segments of {}, {flushes}, a compaction every {} level-0 tables",
        args.updates,
        bytes(args.segment_size),
        args.l0_trigger
    );
    println!(
        "{:<13} {:<5} {:>7} {:>7} {:>8} {:>8} {:>8} {:>11} {:>7} {:>9} {:>7}",
        "policy",
        "head",
        "target",
        "GC WA",
        "SA mean",
        "SA max",
        "SA end",
        "moved",
        "passes",
        "segments",
        "secs"
    );
    for r in results {
        println!(
            "{:<13} {:<5} {:>7} {:>7.3} {:>8.3} {:>8.3} {:>8.3} {:>11} {:>7} {:>9} {:>7.2}",
            r.policy.name(),
            r.head.name(),
            r.target,
            r.gc_write_amplification,
            r.space_amp_mean,
            r.space_amp_max,
            r.space_amp_end,
            bytes(r.gc_bytes_written),
            r.passes,
            r.segments_collected,
            r.seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(policy: Policy, target: f64) -> Config {
        Config {
            keys: 5_000,
            updates: 60_000,
            value: ValueDist::Fixed(4096),
            key_size: 19,
            segment_size: 1 << 20,
            lag: Lag::Updates { every: 1_000 },
            l0_trigger: 4,
            workload: Workload::Uniform,
            policy,
            head: Head::Gc,
            target,
            min_garbage_ratio: 0.2,
            gc_speed: None,
            warmup: 5_000,
            seed: 7,
        }
    }

    const RECORD: u64 = 21 + 19 + 4096 + 4;

    #[test]
    fn zero_updates_write_nothing() {
        let mut c = cfg(Policy::Greedy, 1.5);
        c.updates = 0;
        let r = simulate(&c, None).unwrap();
        assert_eq!(r.gc_bytes_written, 0);
        assert_eq!(r.user_bytes_written, 0);
        assert_eq!(r.passes, 0);
        // The engine's definition: 0 when users wrote nothing.
        assert_eq!(r.gc_write_amplification, 0.0);
        assert_eq!(r.space_amp_end, 1.0);
        assert_eq!(r.space_amp_max, 1.0);
    }

    #[test]
    fn bytes_are_conserved() {
        for policy in [Policy::Tail, Policy::Greedy, Policy::CostBenefit] {
            for head in [Head::Gc, Head::User] {
                let mut c = cfg(policy, 1.3);
                c.head = head;
                c.value = ValueDist::Uniform {
                    min: 1000,
                    max: 8000,
                };
                let mut sim = build(&c);
                run_updates(&mut sim, &c, 30_000);
                let total: u64 = sim
                    .live_set
                    .iter()
                    .map(|&n| sim.segs[n as usize].bytes)
                    .sum();
                let live: u64 = sim
                    .live_set
                    .iter()
                    .map(|&n| sim.segs[n as usize].live)
                    .sum();
                let known: u64 = sim
                    .live_set
                    .iter()
                    .map(|&n| sim.segs[n as usize].known)
                    .sum();
                let by_key: u64 = sim.size.iter().map(|&s| u64::from(s)).sum();
                assert_eq!(total, sim.total);
                assert_eq!(live, sim.live);
                assert_eq!(known, sim.known);
                assert_eq!(live, by_key, "live bytes are the keys' records");
                // Every key's record is where its location says.
                for (k, l) in sim.loc.iter().enumerate() {
                    let s = &sim.segs[l.seg as usize];
                    assert!(s.alive);
                    assert_eq!(s.keys[l.slot as usize], k as u32);
                }
                // Known garbage never exceeds the real garbage.
                for &n in &sim.live_set {
                    let s = &sim.segs[n as usize];
                    assert!(s.known + s.live <= s.bytes, "{policy:?} {head:?}");
                }
                assert!(sim.passes > 0);
            }
        }
    }

    /// A Sim after the load, as `simulate` builds it.
    fn build(c: &Config) -> Sim<'_> {
        let mut sim = Sim::empty(c);
        sim.loc = vec![Loc { seg: 0, slot: 0 }; c.keys as usize];
        sim.size = vec![0; c.keys as usize];
        sim.epoch = vec![NO_EPOCH; c.keys as usize];
        sim.user_head = sim.new_seg(false);
        let mut rng = StdRng::seed_from_u64(1);
        for k in 0..c.keys as u32 {
            let len = RECORD_OVERHEAD + c.key_size + c.value.draw(&mut rng);
            let at = sim.append(k, len, false);
            sim.loc[k as usize] = at;
            sim.size[k as usize] = len as u32;
        }
        sim.replay_seg = sim.user_head;
        sim
    }

    fn run_updates(sim: &mut Sim<'_>, c: &Config, n: u64) {
        let mut rng = StdRng::seed_from_u64(2);
        for i in 0..n {
            let k = rng.gen_range(0..c.keys) as u32;
            let len = RECORD_OVERHEAD + c.key_size + c.value.draw(&mut rng);
            sim.update(k, len);
            if (i + 1) % 1_000 == 0 {
                sim.flush();
                sim.auto_gc();
            }
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let mut c = cfg(Policy::CostBenefit, 1.5);
        c.workload = Workload::Zipf { theta: 0.99 };
        let a = simulate(&c, None).unwrap();
        let b = simulate(&c, None).unwrap();
        assert_eq!(a.gc_bytes_written, b.gc_bytes_written);
        assert_eq!(a.passes, b.passes);
        assert_eq!(a.space_amp_mean, b.space_amp_mean);
        c.seed = 8;
        let d = simulate(&c, None).unwrap();
        assert_ne!(a.gc_bytes_written, d.gc_bytes_written, "the seed matters");
    }

    #[test]
    fn higher_targets_cost_less() {
        for policy in [Policy::Tail, Policy::Greedy, Policy::CostBenefit] {
            let mut last = f64::INFINITY;
            for t in [1.2, 1.5, 2.0, 3.0] {
                let r = simulate(&cfg(policy, t), None).unwrap();
                assert!(
                    r.gc_write_amplification <= last * 1.01,
                    "{policy:?} at {t}: {} after {last}",
                    r.gc_write_amplification
                );
                last = r.gc_write_amplification;
            }
        }
    }

    #[test]
    fn without_lag_space_amp_stays_under_target() {
        for policy in [Policy::Tail, Policy::Greedy, Policy::CostBenefit] {
            for t in [1.25, 1.5, 2.0] {
                let mut c = cfg(policy, t);
                c.lag = Lag::None;
                let r = simulate(&c, None).unwrap();
                // One record over the high water mark at most, before GC runs.
                let live = (c.keys * RECORD) as f64;
                let bound = 1.0 + (t - 1.0) * GC_HIGH_WATER + RECORD as f64 / live;
                assert!(
                    r.space_amp_max <= bound + 1e-9,
                    "{policy:?} at {t}: max {} over {bound}",
                    r.space_amp_max
                );
                assert_eq!(r.space_amp_end, r.estimated_space_amp_end);
                assert!(r.reached_target);
            }
        }
    }

    #[test]
    fn with_lag_space_amp_exceeds_target_by_at_most_the_unknown_garbage() {
        for policy in [Policy::Tail, Policy::Greedy, Policy::CostBenefit] {
            let c = cfg(policy, 1.5);
            let r = simulate(&c, None).unwrap();
            // Unknown garbage: the open memtable's overwrites plus those of
            // up to l0_trigger flushed memtables waiting for a compaction.
            let lag = (u64::from(c.l0_trigger) + 1) * 1_000 * RECORD;
            let live = (c.keys * RECORD) as f64;
            let bound = c.target + (lag as f64 / live) * c.target;
            assert!(
                r.space_amp_max <= bound,
                "{policy:?}: max {} over {bound}",
                r.space_amp_max
            );
            assert!(r.estimated_space_amp_end <= c.target);
        }
    }

    /// Without the discard lag (known garbage is the real garbage). With
    /// the lag this does not hold everywhere: Greedy then ranks segments by
    /// the garbage found so far, which favours young segments whose
    /// overwrites a flush found, while the old ones' garbage waits for a
    /// compaction (e.g. 50,000 keys, 1,000,000 updates, 4 MiB segments,
    /// 1 MiB memtable, target 1.25: Greedy 1.68, Tail 1.62).
    #[test]
    fn greedy_is_no_worse_than_tail_on_uniform_updates() {
        for t in [1.25, 1.5, 2.0] {
            let mut c = cfg(Policy::Tail, t);
            c.lag = Lag::None;
            let tail = simulate(&c, None).unwrap();
            c.policy = Policy::Greedy;
            let greedy = simulate(&c, None).unwrap();
            assert!(
                greedy.gc_write_amplification <= tail.gc_write_amplification * 1.01,
                "at {t}: greedy {} tail {}",
                greedy.gc_write_amplification,
                tail.gc_write_amplification
            );
        }
    }

    /// The log-structured file system's result: on hot/cold updates
    /// cost-benefit beats greedy, without the discard lag. (With it, not at
    /// every target: at 2.0 in the run above Greedy wrote less.)
    #[test]
    fn cost_benefit_beats_greedy_on_hot_and_cold_keys() {
        for t in [1.25, 1.5] {
            let mut c = cfg(Policy::Greedy, t);
            c.lag = Lag::None;
            c.workload = Workload::HotCold {
                fraction: 0.1,
                share: 0.9,
            };
            let greedy = simulate(&c, None).unwrap();
            c.policy = Policy::CostBenefit;
            let cb = simulate(&c, None).unwrap();
            assert!(
                cb.gc_write_amplification < greedy.gc_write_amplification,
                "at {t}: cost-benefit {} greedy {}",
                cb.gc_write_amplification,
                greedy.gc_write_amplification
            );
        }
    }

    #[test]
    fn a_start_state_is_taken_as_given() {
        let segs = [
            StartSegment {
                bytes: 1 << 20,
                garbage: 1 << 19,
                gc: false,
            },
            StartSegment {
                bytes: 1 << 20,
                garbage: 0,
                gc: true,
            },
            StartSegment {
                bytes: 1 << 19,
                garbage: 0,
                gc: false,
            },
        ];
        let mut c = cfg(Policy::Greedy, 3.0);
        c.updates = 0;
        let rec = start_record(RECORD_OVERHEAD + c.key_size, c.value);
        let keys = start_keys(&segs, rec);
        assert_eq!(
            keys,
            (1 << 19) / RECORD + (1 << 20) / RECORD + (1 << 19) / RECORD
        );
        // Under a loose target nothing happens.
        let r = simulate(&c, Some(&segs)).unwrap();
        assert_eq!(r.passes, 0);
        // Each segment's bytes beyond its whole live records count as known
        // garbage: the estimate is the bytes over the live records.
        let total = (5u64 << 19) as f64;
        let live = (keys * RECORD) as f64;
        assert!((r.estimated_space_amp_end - total / live).abs() < 1e-9);
        assert_eq!(r.space_amp_end, r.estimated_space_amp_end);
        // Under a tight one the half-garbage user segment goes (the last
        // user segment is the head, the GC one has no garbage).
        c.target = 1.1;
        let r = simulate(&c, Some(&segs)).unwrap();
        assert_eq!(r.passes, 1);
        assert_eq!(r.gc_bytes_written, (1 << 19) / RECORD * RECORD);
        assert!(r.estimated_space_amp_end < 1.1);
    }

    #[test]
    fn paced_gc_still_reaches_the_target_after_the_updates() {
        for policy in [Policy::Tail, Policy::Greedy, Policy::CostBenefit] {
            let mut c = cfg(policy, 1.5);
            let instant = simulate(&c, None).unwrap();
            c.gc_speed = Some(0.2);
            let paced = simulate(&c, None).unwrap();
            assert!(paced.estimated_space_amp_end <= c.target, "{policy:?}");
            assert!(paced.passes > 0);
            // GC that cannot keep up leaves more garbage behind the writes.
            assert!(
                paced.space_amp_after_updates > instant.space_amp_after_updates,
                "{policy:?}: {} vs {}",
                paced.space_amp_after_updates,
                instant.space_amp_after_updates
            );
        }
    }

    #[test]
    fn value_dist_parses() {
        assert_eq!(
            parse_value_dist("uniform:1KiB-8KiB").unwrap(),
            ValueDist::Uniform {
                min: 1024,
                max: 8192
            }
        );
        assert!(parse_value_dist("uniform:8KiB-1KiB").is_err());
        assert!(parse_value_dist("zipf:1-2").is_err());
        assert!(parse_target("0.5").is_err());
        assert!(parse_target("NaN").is_err());
        assert_eq!(parse_target("1.25").unwrap(), 1.25);
        assert!(parse_speed("0").is_err());
        assert_eq!(parse_speed("0.5").unwrap(), 0.5);
    }
}
