//! The workloads, db_bench and YCSB style, and the threads that run them.
//!
//! A workload is a list of operations spread over client threads. Every
//! operation is timed into a per-thread HDR histogram of its kind; a
//! monitor on the calling thread draws the progress bar and samples the
//! throughput. Writers own their keys (a key always goes to the same
//! thread), so every key's versions are written in order and a read can
//! demand at least the version acknowledged before it started.

use super::data::{deleted_version, is_deleted, key_of, Expect, Values, KEY_LEN, UNWRITTEN};
use super::figures::{new_histogram, Latency};
use super::store::Store;
use crate::zipf::{ScrambledZipf, Zipf};
use anyhow::{bail, ensure, Context, Result};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The list of workloads with a line on each, for `--help` and for the
/// error of an unknown name (a macro, so that `concat!` can take it).
macro_rules! workload_help {
    () => {
        "\
fillseq           every key once, ascending
fillrandom        every key once, in a random order
overwrite         --updates overwrites of existing keys (--dist), then flush, settle, GC wait
readrandom        --reads random gets, each value checked
readseq           one full scan in key order (alias: scan)
seekrandom        --scans range scans of --scan-length keys from random seeks
multiget          --reads random keys through multi_get, --multi-get per call (default 64)
deleterandom      --deletes deletes of random keys
readwhilewriting  --reads random gets from --threads readers while one writer overwrites
ycsb-a .. ycsb-f  YCSB: A 50% read 50% update; B 95/5; C reads; D 95% read latest,
                  5% insert; E 95% short scans, 5% insert; F 50% read, 50%
                  read-modify-write; --ycsb-ops operations, Zipfian keys
gc                wisckey only: GC of every sealed segment, then settle"
    };
}
pub(crate) use workload_help;

/// A workload of `--workloads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Every key once, in ascending order.
    FillSeq,
    /// Every key once, in a random order.
    FillRandom,
    /// Overwrites of existing keys (--dist), then flush, settle and (wisckey)
    /// the wait for automatic GC.
    Overwrite,
    /// Random gets, every value checked.
    ReadRandom,
    /// One full scan in key order.
    ReadSeq,
    /// Range scans of --scan-length keys from random seeks.
    SeekRandom,
    /// Random gets through multi_get, --multi-get keys per call.
    MultiGet,
    /// Deletes of random existing keys.
    DeleteRandom,
    /// Random gets from --threads readers while one writer overwrites.
    ReadWhileWriting,
    /// YCSB core workload A to F.
    Ycsb(char),
    /// wisckey: one GC pass over every sealed segment (rewrites the log in
    /// key order), then settle.
    GcAll,
}

impl Workload {
    /// Every name `--workloads` accepts, with a line on each.
    pub const HELP: &'static str = workload_help!();

    /// Parses one name.
    pub fn parse(s: &str) -> Option<Workload> {
        Some(match s {
            "fillseq" => Workload::FillSeq,
            "fillrandom" => Workload::FillRandom,
            "overwrite" => Workload::Overwrite,
            "readrandom" => Workload::ReadRandom,
            "readseq" | "scan" => Workload::ReadSeq,
            "seekrandom" => Workload::SeekRandom,
            "multiget" => Workload::MultiGet,
            "deleterandom" => Workload::DeleteRandom,
            "readwhilewriting" => Workload::ReadWhileWriting,
            "gc" => Workload::GcAll,
            _ => {
                let c = s.strip_prefix("ycsb-")?;
                let mut chars = c.chars();
                let (Some(w), None) = (chars.next(), chars.next()) else {
                    return None;
                };
                let w = w.to_ascii_lowercase();
                if !('a'..='f').contains(&w) {
                    return None;
                }
                Workload::Ycsb(w)
            }
        })
    }

    /// Its name in reports.
    pub fn name(self) -> String {
        match self {
            Workload::FillSeq => "fillseq".into(),
            Workload::FillRandom => "fillrandom".into(),
            Workload::Overwrite => "overwrite".into(),
            Workload::ReadRandom => "readrandom".into(),
            Workload::ReadSeq => "readseq".into(),
            Workload::SeekRandom => "seekrandom".into(),
            Workload::MultiGet => "multiget".into(),
            Workload::DeleteRandom => "deleterandom".into(),
            Workload::ReadWhileWriting => "readwhilewriting".into(),
            Workload::Ycsb(c) => format!("ycsb-{c}"),
            Workload::GcAll => "gc".into(),
        }
    }

    /// Whether it reads (so `--cold` drops the page cache before it).
    pub fn reads(self) -> bool {
        !matches!(
            self,
            Workload::FillSeq
                | Workload::FillRandom
                | Workload::Overwrite
                | Workload::DeleteRandom
                | Workload::GcAll
        )
    }

    /// Whether it writes (so it ends with flush and settle, inside its
    /// amplification window).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Workload::FillSeq
                | Workload::FillRandom
                | Workload::Overwrite
                | Workload::DeleteRandom
                | Workload::ReadWhileWriting
                | Workload::Ycsb('a' | 'b' | 'd' | 'e' | 'f')
                | Workload::GcAll
        )
    }

    /// Whether it needs key order (range scans).
    pub fn needs_order(self) -> bool {
        matches!(
            self,
            Workload::ReadSeq | Workload::SeekRandom | Workload::Ycsb('e')
        )
    }
}

/// Which keys overwrites (and YCSB's requests) go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Zipfian ranks (Gray et al.), scrambled over the key space.
    Zipf,
    /// --hot-ops of the operations go to --hot-keys of the keys (scattered
    /// over the key space), the rest to the others.
    Hotcold,
}

/// Everything a workload needs.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub values: &'a Values,
    pub expect: &'a Expect,
    pub threads: usize,
    pub batch: usize,
    pub seed: u64,
    pub dist: Dist,
    pub zipf_theta: f64,
    pub hot_keys: f64,
    pub hot_ops: f64,
    pub scan_length: usize,
    pub multi_get: usize,
    pub fields: usize,
    pub deadline: Option<Duration>,
    /// Seconds between two throughput samples.
    pub interval: Duration,
    /// Whether to draw progress bars.
    pub progress: bool,
}

/// What the threads of a workload did.
#[derive(Default)]
pub struct Outcome {
    pub ops: u64,
    pub ops_by_kind: BTreeMap<String, u64>,
    pub user_written: u64,
    pub user_read: u64,
    pub secs: f64,
    pub latency: BTreeMap<String, Latency>,
    pub throughput: Vec<(f64, f64)>,
    pub notes: Vec<String>,
}

/// Operations shared out to threads: a count, a deadline, or both.
struct Budget {
    left: AtomicU64,
    end: Option<Instant>,
}

impl Budget {
    fn new(ops: u64, deadline: Option<Duration>) -> Budget {
        Budget {
            left: AtomicU64::new(ops),
            // A deadline too far to represent is no deadline.
            end: deadline.and_then(|d| Instant::now().checked_add(d)),
        }
    }

    /// Takes up to `n` operations; 0 when the budget or the time is spent.
    fn take(&self, n: u64) -> u64 {
        if self.end.is_some_and(|e| Instant::now() >= e) {
            return 0;
        }
        let mut left = self.left.load(Ordering::Relaxed);
        loop {
            let got = left.min(n);
            if got == 0 {
                return 0;
            }
            match self.left.compare_exchange_weak(
                left,
                left - got,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return got,
                Err(now) => left = now,
            }
        }
    }
}

/// Counters every thread adds to, read by the monitor.
#[derive(Default)]
struct Shared {
    ops: AtomicU64,
    running: AtomicUsize,
}

/// One thread's recorder.
pub struct Rec<'s> {
    hists: BTreeMap<&'static str, Histogram<u64>>,
    counts: BTreeMap<&'static str, u64>,
    ops: u64,
    written: u64,
    read: u64,
    shared: &'s Shared,
}

impl<'s> Rec<'s> {
    fn new(shared: &'s Shared) -> Rec<'s> {
        Rec {
            hists: BTreeMap::new(),
            counts: BTreeMap::new(),
            ops: 0,
            written: 0,
            read: 0,
            shared,
        }
    }

    /// Records one operation of `kind` that took `ns` and counts `ops`
    /// operations (a multi_get counts its keys).
    fn record(&mut self, kind: &'static str, started: Instant, ops: u64) {
        let ns = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        let h = self.hists.entry(kind).or_insert_with(new_histogram);
        h.saturating_record(ns.max(1));
        *self.counts.entry(kind).or_default() += ops;
        self.ops += ops;
        self.shared.ops.fetch_add(ops, Ordering::Relaxed);
    }
}

impl Rec<'_> {
    /// Records an operation beside the phase's own (readwhilewriting's
    /// writes): timed and counted by kind, not in the phase's operations.
    fn record_beside(&mut self, kind: &'static str, started: Instant) {
        let ns = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        let h = self.hists.entry(kind).or_insert_with(new_histogram);
        h.saturating_record(ns.max(1));
        *self.counts.entry(kind).or_default() += 1;
    }
}

/// Counts a client thread out of `running` when it ends, however it ends.
struct Done<'a>(&'a AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Owner mapping: key `k` moved to the nearest key thread `t` of `threads`
/// owns (`k mod threads == t`), within `0..n`.
fn own(k: u64, t: usize, threads: usize, n: u64) -> u64 {
    let t = t as u64;
    let threads = threads as u64;
    let mut o = k - k % threads + t;
    if o >= n {
        o = o.saturating_sub(threads);
    }
    o.min(n.saturating_sub(1))
}

/// Draws keys by a distribution over `0..n`.
pub enum Picker {
    Uniform(u64),
    Zipf(ScrambledZipf),
    /// Zipfian over recency: rank 0 is the newest key.
    Latest(Zipf),
    HotCold {
        n: u64,
        hot: u64,
        hot_ops: f64,
        step: u64,
    },
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Picker {
    /// A picker for `dist` over `0..n`.
    pub fn new(dist: Dist, n: u64, ctx: &Ctx, rng: &mut StdRng) -> Picker {
        let n = n.max(1);
        match dist {
            Dist::Uniform => Picker::Uniform(n),
            Dist::Zipf => Picker::Zipf(ScrambledZipf::new(n, ctx.zipf_theta, rng)),
            Dist::Hotcold => {
                // A step coprime to n scatters 0..n over itself (a bijection).
                let mut step = (0x9e37_79b9_7f4a_7c15u64 % n).max(1);
                while gcd(step, n) != 1 {
                    step += 1;
                }
                Picker::HotCold {
                    n,
                    hot: ((n as f64 * ctx.hot_keys).round() as u64).clamp(1, n),
                    hot_ops: ctx.hot_ops,
                    step,
                }
            }
        }
    }

    /// The next key.
    pub fn next(&self, rng: &mut StdRng, newest: u64) -> u64 {
        match self {
            Picker::Uniform(n) => rng.gen_range(0..*n),
            Picker::Zipf(z) => z.next_item(rng),
            Picker::Latest(z) => newest.saturating_sub(1).saturating_sub(z.next_rank(rng)),
            Picker::HotCold {
                n,
                hot,
                hot_ops,
                step,
            } => {
                let r = if *hot == *n || rng.gen_bool(hot_ops.clamp(0.0, 1.0)) {
                    rng.gen_range(0..*hot)
                } else {
                    rng.gen_range(*hot..*n)
                };
                ((u128::from(r) * u128::from(*step)) % u128::from(*n)) as u64
            }
        }
    }
}

/// Runs `work(thread, rec)` on `threads` threads with a monitor (progress
/// bar, throughput samples) on this one.
fn run_threads<F>(
    ctx: &Ctx,
    label: &str,
    total: Option<u64>,
    threads: usize,
    work: F,
) -> Result<Outcome>
where
    F: Fn(usize, &mut Rec) -> Result<()> + Sync,
{
    let shared = Shared::default();
    let start = Instant::now();
    let mut bar = ctx
        .progress
        .then(|| super::progress::bar(label, total, ctx.deadline));
    let mut throughput = Vec::new();
    let results: Vec<Result<(Rec, Instant)>> = std::thread::scope(|s| {
        let shared = &shared;
        let work = &work;
        shared.running.store(threads, Ordering::Release);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    // Counted out even if `work` panics, so the monitor
                    // below stops and the panic is reported.
                    let _done = Done(&shared.running);
                    let mut rec = Rec::new(shared);
                    let r = work(t, &mut rec);
                    r.map(|()| (rec, Instant::now()))
                })
            })
            .collect();
        let mut last_t = 0.0;
        let mut last_ops = 0u64;
        let mut next = start + ctx.interval;
        while shared.running.load(Ordering::Acquire) > 0 {
            std::thread::sleep(Duration::from_millis(20));
            let ops = shared.ops.load(Ordering::Relaxed);
            if let Some(b) = bar.as_mut() {
                b.update(ops, start.elapsed());
            }
            let now = Instant::now();
            if now >= next {
                let t = start.elapsed().as_secs_f64();
                throughput.push((t, (ops - last_ops) as f64 / (t - last_t).max(1e-9)));
                last_t = t;
                last_ops = ops;
                next += ctx.interval;
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect()
    });
    if let Some(b) = bar {
        b.finish();
    }
    let mut out = Outcome {
        throughput,
        ..Outcome::default()
    };
    let mut hists: BTreeMap<&'static str, Histogram<u64>> = BTreeMap::new();
    // The phase lasted until its last thread finished (not until the
    // monitor noticed).
    let mut end = start;
    for r in results {
        let (rec, ended) = r?;
        end = end.max(ended);
        out.ops += rec.ops;
        out.user_written += rec.written;
        out.user_read += rec.read;
        for (k, c) in rec.counts {
            *out.ops_by_kind.entry(k.to_string()).or_default() += c;
        }
        for (k, h) in rec.hists {
            match hists.get_mut(k) {
                Some(m) => m.add(&h).context("merging latency histograms")?,
                None => {
                    hists.insert(k, h);
                }
            }
        }
    }
    out.secs = end.duration_since(start).as_secs_f64();
    out.latency = hists
        .iter()
        .map(|(k, h)| (k.to_string(), Latency::of(h)))
        .collect();
    Ok(out)
}

/// Puts version `next_version` of key `i` and records it.
fn put_key(
    ctx: &Ctx,
    rec: &mut Rec,
    i: u64,
    key: &mut Vec<u8>,
    value: &mut Vec<u8>,
    kind: &'static str,
) -> Result<()> {
    let v = ctx.expect.next_version(i);
    key_of(i, key);
    ctx.values.fill(i, v, value);
    let t = Instant::now();
    ctx.store.put(key, value)?;
    rec.record(kind, t, 1);
    rec.written += (key.len() + value.len()) as u64;
    ctx.expect.wrote(i, v, ctx.values);
    Ok(())
}

/// Reads key `i` and checks the answer against what was acknowledged
/// before the read started.
fn get_key(
    ctx: &Ctx,
    rec: &mut Rec,
    i: u64,
    key: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<()> {
    let before = ctx.expect.version(i);
    key_of(i, key);
    let t = Instant::now();
    let got = ctx.store.get(key)?;
    rec.record("get", t, 1);
    check(ctx, rec, i, before, got.as_deref(), key.len(), scratch)
}

/// Checks one read of key `i`, whose state was `before` when it started: a
/// key never written may be missing or hold any version; a key deleted at
/// version L may be missing or hold a later version (written since), never
/// L or older (a deleted value come back); a key at version v must hold v
/// or later.
fn check(
    ctx: &Ctx,
    rec: &mut Rec,
    i: u64,
    before: u32,
    got: Option<&[u8]>,
    key_len: usize,
    scratch: &mut Vec<u8>,
) -> Result<()> {
    let at_least = match before {
        UNWRITTEN => None,
        s if is_deleted(s) => Some(deleted_version(s) + 1),
        v => Some(v),
    };
    match got {
        None if before == UNWRITTEN || is_deleted(before) => Ok(()),
        None => bail!("key {i} is missing (version {before} was acknowledged)"),
        Some(v) => {
            rec.read += (key_len + v.len()) as u64;
            ctx.values
                .check(i, at_least.unwrap_or(0), v, scratch)
                .map(|_| ())
                .map_err(|e| {
                    if is_deleted(before) {
                        anyhow::anyhow!("key {i} was deleted, yet read back: {e}")
                    } else {
                        anyhow::Error::msg(e)
                    }
                })
        }
    }
}

/// fillseq / fillrandom: every key of `0..keys` once.
pub fn fill(ctx: &Ctx, keys: u64, random: bool) -> Result<Outcome> {
    let n = usize::try_from(keys).context("--keys does not fit in memory")?;
    let mut order: Vec<u64> = (0..keys).collect();
    if random {
        order.shuffle(&mut StdRng::seed_from_u64(ctx.seed));
    }
    let chunk = n.div_ceil(ctx.threads.max(1)).max(1);
    let parts: Vec<&[u64]> = order.chunks(chunk).collect();
    let label = if random { "fillrandom" } else { "fillseq" };
    run_threads(ctx, label, Some(keys), parts.len(), |t, rec| {
        let mut key = Vec::with_capacity(KEY_LEN);
        let mut value = Vec::with_capacity(ctx.values.mean_size() * 2);
        if ctx.batch <= 1 {
            for &i in parts[t] {
                put_key(ctx, rec, i, &mut key, &mut value, "put")?;
            }
            return Ok(());
        }
        let mut keys_buf: Vec<Vec<u8>> = Vec::new();
        let mut vals_buf: Vec<Vec<u8>> = Vec::new();
        for c in parts[t].chunks(ctx.batch) {
            keys_buf.clear();
            vals_buf.clear();
            let mut vers = Vec::with_capacity(c.len());
            for &i in c {
                let v = ctx.expect.next_version(i);
                key_of(i, &mut key);
                ctx.values.fill(i, v, &mut value);
                keys_buf.push(key.clone());
                vals_buf.push(value.clone());
                vers.push(v);
            }
            let items: Vec<(&[u8], &[u8])> = keys_buf
                .iter()
                .zip(&vals_buf)
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            let t0 = Instant::now();
            ctx.store.put_batch(&items)?;
            rec.record("batch", t0, c.len() as u64);
            for ((&i, v), (k, val)) in c.iter().zip(vers).zip(items) {
                rec.written += (k.len() + val.len()) as u64;
                ctx.expect.wrote(i, v, ctx.values);
            }
        }
        Ok(())
    })
}

/// overwrite: `ops` overwrites of keys drawn by `ctx.dist`.
pub fn overwrite(ctx: &Ctx, ops: u64) -> Result<Outcome> {
    let n = ctx.expect.keys();
    ensure!(n > 0, "overwrite: no keys to overwrite (run a fill first)");
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x0f0f);
    let picker = Picker::new(ctx.dist, n, ctx, &mut rng);
    let threads = ctx.threads.min(n as usize).max(1);
    let budget = Budget::new(ops, ctx.deadline);
    run_threads(ctx, "overwrite", Some(ops), threads, |t, rec| {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0xabc ^ t as u64);
        let (mut key, mut value) = (Vec::new(), Vec::new());
        while budget.take(1) == 1 {
            let i = own(picker.next(&mut rng, n), t, threads, n);
            put_key(ctx, rec, i, &mut key, &mut value, "put")?;
        }
        Ok(())
    })
}

/// deleterandom: `ops` deletes of random keys.
pub fn delete_random(ctx: &Ctx, ops: u64) -> Result<Outcome> {
    let n = ctx.expect.keys();
    ensure!(n > 0, "deleterandom: no keys (run a fill first)");
    let threads = ctx.threads.min(n as usize).max(1);
    let budget = Budget::new(ops, ctx.deadline);
    run_threads(ctx, "deleterandom", Some(ops), threads, |t, rec| {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0xde1 ^ t as u64);
        let mut key = Vec::new();
        while budget.take(1) == 1 {
            let i = own(rng.gen_range(0..n), t, threads, n);
            key_of(i, &mut key);
            let t0 = Instant::now();
            ctx.store.delete(&key)?;
            rec.record("delete", t0, 1);
            rec.written += key.len() as u64;
            ctx.expect.deleted(i, ctx.values);
        }
        Ok(())
    })
}

/// readrandom (batch 1) and multiget (batch > 1): `ops` random keys.
pub fn read_random(ctx: &Ctx, ops: u64, batch: usize) -> Result<Outcome> {
    let n = ctx.expect.keys();
    ensure!(n > 0, "no keys to read (run a fill first)");
    let budget = Budget::new(ops, ctx.deadline);
    let label = if batch > 1 { "multiget" } else { "readrandom" };
    run_threads(ctx, label, Some(ops), ctx.threads, |t, rec| {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x5eed ^ (t as u64) << 8);
        let (mut key, mut scratch) = (Vec::new(), Vec::new());
        if batch <= 1 {
            while budget.take(1) == 1 {
                get_key(ctx, rec, rng.gen_range(0..n), &mut key, &mut scratch)?;
            }
            return Ok(());
        }
        loop {
            let got = budget.take(batch as u64);
            if got == 0 {
                return Ok(());
            }
            let idx: Vec<u64> = (0..got).map(|_| rng.gen_range(0..n)).collect();
            let before: Vec<u32> = idx.iter().map(|&i| ctx.expect.version(i)).collect();
            let keys: Vec<Vec<u8>> = idx
                .iter()
                .map(|&i| {
                    key_of(i, &mut key);
                    key.clone()
                })
                .collect();
            let t0 = Instant::now();
            let vals = ctx.store.multi_get(&keys)?;
            rec.record("multiget", t0, got);
            ensure!(
                vals.len() == keys.len(),
                "multi_get returned {} values for {} keys",
                vals.len(),
                keys.len()
            );
            for ((&i, b), v) in idx.iter().zip(before).zip(&vals) {
                check(ctx, rec, i, b, v.as_deref(), KEY_LEN, &mut scratch)?;
            }
        }
    })
}

/// readseq: one full scan; every key in ascending order, as many as live.
pub fn read_seq(ctx: &Ctx) -> Result<Outcome> {
    let live = ctx.expect.live_keys();
    let mut out = run_threads(ctx, "readseq", Some(live), 1, |_, rec| {
        let mut prev: Option<Vec<u8>> = None;
        let mut t0 = Instant::now();
        ctx.store.scan(b"", usize::MAX, &mut |k, v| {
            let i = super::data::index_of(k)
                .with_context(|| format!("the scan returned an unknown key {k:?}"))?;
            ensure!(
                ctx.values.looks_like(i, v),
                "key {i}: wrong value in the scan"
            );
            if let Some(p) = &prev {
                ensure!(
                    p.as_slice() < k,
                    "the scan is not in ascending key order at key {i}"
                );
            }
            prev = Some(k.to_vec());
            rec.record("next", t0, 1);
            rec.read += (k.len() + v.len()) as u64;
            t0 = Instant::now();
            Ok(true)
        })?;
        Ok(())
    })?;
    ensure!(
        out.ops == live,
        "readseq: the scan gave {} entries, {live} keys are live",
        out.ops
    );
    out.notes
        .push(format!("{live} entries, as many as live keys"));
    Ok(out)
}

/// seekrandom: `ops` range scans of `ctx.scan_length` keys from random keys.
pub fn seek_random(ctx: &Ctx, ops: u64) -> Result<Outcome> {
    let n = ctx.expect.keys();
    ensure!(n > 0, "seekrandom: no keys (run a fill first)");
    let budget = Budget::new(ops, ctx.deadline);
    let len = ctx.scan_length.max(1);
    run_threads(ctx, "seekrandom", Some(ops), ctx.threads, |t, rec| {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x5ee4 ^ t as u64);
        let mut key = Vec::new();
        while budget.take(1) == 1 {
            key_of(rng.gen_range(0..n), &mut key);
            scan_from(ctx, rec, &key, len)?;
        }
        Ok(())
    })
}

/// One range scan of up to `len` keys from `start`, checked.
fn scan_from(ctx: &Ctx, rec: &mut Rec, start: &[u8], len: usize) -> Result<()> {
    let mut prev: Option<Vec<u8>> = None;
    let mut bytes = 0u64;
    let t0 = Instant::now();
    ctx.store.scan(start, len, &mut |k, v| {
        let i = super::data::index_of(k)
            .with_context(|| format!("a range scan returned an unknown key {k:?}"))?;
        ensure!(
            ctx.values.looks_like(i, v),
            "key {i}: wrong value in a range scan"
        );
        ensure!(k >= start, "a range scan began before its start key");
        if let Some(p) = &prev {
            ensure!(
                p.as_slice() < k,
                "a range scan is not in ascending key order"
            );
        }
        prev = Some(k.to_vec());
        bytes += (k.len() + v.len()) as u64;
        Ok(true)
    })?;
    rec.record("scan", t0, 1);
    rec.read += bytes;
    Ok(())
}

/// readwhilewriting: `ops` random gets from `ctx.threads` readers while one
/// more thread overwrites (by `ctx.dist`) until they are done.
pub fn read_while_writing(ctx: &Ctx, ops: u64) -> Result<Outcome> {
    let n = ctx.expect.keys();
    ensure!(n > 0, "readwhilewriting: no keys (run a fill first)");
    let budget = Budget::new(ops, ctx.deadline);
    let readers = ctx.threads;
    let readers_left = AtomicUsize::new(readers);
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x77);
    let picker = Picker::new(ctx.dist, n, ctx, &mut rng);
    run_threads(ctx, "readwhilewriting", Some(ops), readers + 1, |t, rec| {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x3a3a ^ (t as u64) << 4);
        let (mut key, mut scratch) = (Vec::new(), Vec::new());
        if t == readers {
            // The writer: the only one, so it owns every key. It writes at
            // least once, however quickly the readers finish.
            let mut value = Vec::new();
            loop {
                let i = picker.next(&mut rng, n);
                let v = ctx.expect.next_version(i);
                key_of(i, &mut key);
                ctx.values.fill(i, v, &mut value);
                let t0 = Instant::now();
                ctx.store.put(&key, &value)?;
                rec.record_beside("put", t0);
                rec.written += (key.len() + value.len()) as u64;
                ctx.expect.wrote(i, v, ctx.values);
                if readers_left.load(Ordering::Acquire) == 0 {
                    break;
                }
            }
            return Ok(());
        }
        let _reader_done = Done(&readers_left);
        while budget.take(1) == 1 {
            get_key(ctx, rec, rng.gen_range(0..n), &mut key, &mut scratch)?;
        }
        Ok(())
    })
}

/// YCSB core workload `w` (a to f): `ops` operations from `ctx.threads`
/// threads, Zipfian requests (D: the latest keys).
pub fn ycsb(ctx: &Ctx, w: char, ops: u64) -> Result<Outcome> {
    let n0 = ctx.expect.keys();
    ensure!(n0 > 0, "ycsb-{w}: no records (run a fill first)");
    // (read, update, insert, scan, read-modify-write) in percent.
    let mix: [u32; 5] = match w {
        'a' => [50, 50, 0, 0, 0],
        'b' => [95, 5, 0, 0, 0],
        'c' => [100, 0, 0, 0, 0],
        'd' => [95, 0, 5, 0, 0],
        'e' => [0, 0, 5, 95, 0],
        'f' => [50, 0, 0, 0, 50],
        _ => bail!("no YCSB workload {w}"),
    };
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x7c5b);
    let picker = if w == 'd' {
        Picker::Latest(Zipf::new(n0, ctx.zipf_theta))
    } else {
        Picker::Zipf(ScrambledZipf::new(n0, ctx.zipf_theta, &mut rng))
    };
    let threads = ctx.threads.min(n0 as usize).max(1);
    let budget = Budget::new(ops, ctx.deadline);
    let inserts_refused = AtomicU64::new(0);
    // With several fields, an update reads the record and writes it back
    // with one field changed, as YCSB's key-value bindings do: to the engine
    // that is a get and a put of the whole record. The record written is the
    // key's next version, so every read stays checked.
    let rmw_updates = ctx.fields > 1;
    let mut out = run_threads(ctx, &format!("ycsb-{w}"), Some(ops), threads, |t, rec| {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x1c5b ^ (t as u64) << 12);
        let (mut key, mut value, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        while budget.take(1) == 1 {
            let roll = rng.gen_range(0..100u32);
            let newest = ctx.expect.keys();
            let op = {
                let mut acc = 0;
                mix.iter().position(|&p| {
                    acc += p;
                    roll < acc
                })
            };
            match op {
                Some(0) => {
                    let i = picker.next(&mut rng, newest).min(newest - 1);
                    get_key(ctx, rec, i, &mut key, &mut scratch)?;
                }
                Some(1) => {
                    let i = own(picker.next(&mut rng, newest), t, threads, n0);
                    if rmw_updates {
                        read_modify_write(
                            ctx,
                            rec,
                            i,
                            &mut key,
                            &mut value,
                            &mut scratch,
                            "update",
                        )?;
                    } else {
                        put_key(ctx, rec, i, &mut key, &mut value, "update")?;
                    }
                }
                Some(2) => match ctx.expect.new_key() {
                    Some(i) => put_key(ctx, rec, i, &mut key, &mut value, "insert")?,
                    None => {
                        inserts_refused.fetch_add(1, Ordering::Relaxed);
                        // An update of a loaded key instead (the picker of
                        // D favours the newest keys, beyond the loaded ones).
                        let i = own(rng.gen_range(0..n0), t, threads, n0);
                        put_key(ctx, rec, i, &mut key, &mut value, "update")?;
                    }
                },
                Some(3) => {
                    let i = picker.next(&mut rng, newest).min(newest - 1);
                    let len = rng.gen_range(1..=ctx.scan_length.max(1));
                    key_of(i, &mut key);
                    let start = key.clone();
                    scan_from(ctx, rec, &start, len)?;
                }
                _ => {
                    let i = own(picker.next(&mut rng, newest), t, threads, n0);
                    read_modify_write(ctx, rec, i, &mut key, &mut value, &mut scratch, "rmw")?;
                }
            }
        }
        Ok(())
    })?;
    let refused = inserts_refused.into_inner();
    if refused > 0 {
        out.notes.push(format!(
            "{refused} inserts found no room left for new keys and updated instead"
        ));
    }
    if rmw_updates {
        out.notes.push(format!(
            "{} fields per record: an update reads the record and writes it back (read-modify-write)",
            ctx.fields
        ));
    }
    Ok(out)
}

/// A read-modify-write of key `i` (its owner's): a checked get, then a put
/// of the key's next version, timed together as one `kind`.
fn read_modify_write(
    ctx: &Ctx,
    rec: &mut Rec,
    i: u64,
    key: &mut Vec<u8>,
    value: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    kind: &'static str,
) -> Result<()> {
    let t0 = Instant::now();
    key_of(i, key);
    let before = ctx.expect.version(i);
    let got = ctx.store.get(key)?;
    check(ctx, rec, i, before, got.as_deref(), key.len(), scratch)?;
    let v = ctx.expect.next_version(i);
    ctx.values.fill(i, v, value);
    ctx.store.put(key, value)?;
    rec.written += (key.len() + value.len()) as u64;
    ctx.expect.wrote(i, v, ctx.values);
    rec.record(kind, t0, 1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_round_trip() {
        for name in [
            "fillseq",
            "fillrandom",
            "overwrite",
            "readrandom",
            "readseq",
            "seekrandom",
            "multiget",
            "deleterandom",
            "readwhilewriting",
            "ycsb-a",
            "ycsb-f",
            "gc",
        ] {
            assert_eq!(
                Workload::parse(name).map(Workload::name).as_deref(),
                Some(name)
            );
        }
        assert_eq!(Workload::parse("scan"), Some(Workload::ReadSeq));
        for bad in ["ycsb-g", "ycsb-", "ycsb-ab", "fill", ""] {
            assert_eq!(Workload::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn owners_keep_keys_in_range_and_in_their_residue() {
        for n in [1u64, 2, 7, 100, 1001] {
            for threads in 1..5usize {
                let threads = threads.min(n as usize);
                for k in 0..n {
                    for t in 0..threads {
                        let o = own(k, t, threads, n);
                        assert!(o < n, "n {n} k {k} t {t}");
                        assert_eq!(
                            o % threads as u64,
                            t as u64,
                            "n {n} k {k} t {t} threads {threads}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn budget_hands_out_exactly_its_operations() {
        let b = Budget::new(10, None);
        assert_eq!(b.take(4), 4);
        assert_eq!(b.take(4), 4);
        assert_eq!(b.take(4), 2);
        assert_eq!(b.take(4), 0);
        let b = Budget::new(u64::MAX, Some(Duration::ZERO));
        assert_eq!(b.take(1), 0);
    }

    #[test]
    fn hot_cold_sends_the_hot_share_to_the_hot_keys() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 10_000u64;
        let step = {
            let mut s = (0x9e37_79b9_7f4a_7c15u64 % n).max(1);
            while gcd(s, n) != 1 {
                s += 1;
            }
            s
        };
        let p = Picker::HotCold {
            n,
            hot: 2_000,
            hot_ops: 0.8,
            step,
        };
        let hot: std::collections::HashSet<u64> = (0..2_000u64).map(|r| (r * step) % n).collect();
        let draws = 100_000;
        let hits = (0..draws)
            .filter(|_| hot.contains(&p.next(&mut rng, n)))
            .count();
        let share = hits as f64 / draws as f64;
        assert!((share - 0.8).abs() < 0.01, "hot share {share}");
    }
}
