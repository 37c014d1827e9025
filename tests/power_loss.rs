//! Power-loss simulation on [`FaultFs`]: seeded random workloads (puts of
//! inline and vLog-separated values, deletes, batches across three tables —
//! the default table, the ordered table "t" and the unordered (keydir) table
//! "u" —, sync writes, `sync`, `flush`, `compact`, GC passes, creating
//! ordered and unordered tables) are stopped at a random moment,
//! either between operations (`crash`) or at a random I/O operation
//! (persistent EIO, then `crash`), possibly in the middle of a flush or
//! compaction. Then the power goes (`power_loss`, with torn sectors), the
//! file system reboots (`recover`) and the database is reopened. Checks:
//! - the database opens;
//! - the state is the oracle after some prefix of the acknowledged batches
//!   (plus possibly the batch in flight), and that prefix includes every
//!   batch acknowledged with sync, `sync()` or `flush()` and all before it:
//!   losses are a suffix, never a hole, and batches are atomic;
//! - point reads and a full scan agree (for the unordered table, which has
//!   no scan: point reads and `multi_get` agree, and a scan is refused);
//! - the tables created keep their kinds, and `Db::verify` (what
//!   `vlog-tools verify` runs) passes.
//!
//! Small segments make the vLog roll every few dozen writes, so sealed
//! segments get hint files that the reopen reads, and GC passes (explicit and
//! background) take segments that hold unordered records: they relocate live
//! ones and drop tombstones. The run prints how many GC passes took victims
//! whose hint files listed unordered records.
//!
//! In a quarter of the cycles the power goes again during recovery.
//! Each seed runs two crash cycles on one file system.
//! `WISCKEY_POWER_SEEDS` sets the number of seeds (default 2000) and
//! `WISCKEY_POWER_FIRST_SEED` the first one (default 0);
//! `WISCKEY_POWER_SEED=<n>` replays one seed. A failing seed prints itself.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use wisckey::testing::{FailMode, FaultFs, Repeat};
use wisckey::{Db, Error, GcOptions, GcPolicy, GcReport, Options, TableKind, TableOptions};

fn opts(fs: &FaultFs) -> Options {
    Options::default()
        .memtable_size(16 << 10)
        .segment_size(32 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(8 << 10)
        .base_level_size(16 << 10)
        .block_size(256)
        .gc_interval(std::time::Duration::from_millis(3))
        .fs(Arc::new(fs.clone()))
}

/// Prints the seed when the check of a seed panics.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "power_loss: failing seed {0}: replay with WISCKEY_POWER_SEED={0}",
                self.0
            );
        }
    }
}

/// What one workload acknowledged.
#[derive(Default)]
struct Oracle {
    acked: Vec<Batch>,
    /// Number of leading acknowledged batches known durable.
    durable: usize,
    inflight: Option<Batch>,
    /// Tables whose creation was acknowledged, with their kinds.
    tables: Vec<(String, TableKind)>,
}

struct Outcome {
    ops: usize,
    errors: usize,
}

/// Runs random operations until `n_ops` are done or one fails. `model` is
/// the state the database starts from; it follows the acknowledged writes.
#[allow(clippy::too_many_arguments)]
fn workload(
    rng: &mut StdRng,
    fs: &FaultFs,
    db: &Db,
    tabs: &Tables,
    gen: &mut u64,
    n_ops: usize,
    oracle: &mut Oracle,
    model: &mut State,
    totals: &mut Totals,
) -> Outcome {
    let mut out = Outcome { ops: 0, errors: 0 };
    for _ in 0..n_ops {
        out.ops += 1;
        let r = match rng.gen_range(0..100) {
            0..=2 => db.flush().map(|_| true),
            3 => db.compact().map(|_| true),
            4..=5 => db.sync().map(|_| true),
            6 => {
                // Table creation is durable when it returns.
                let (name, kind, topts) = if rng.gen_bool(0.5) {
                    let name = format!("x{}", rng.gen_range(0..1000));
                    (name, TableKind::Ordered, TableOptions::ordered())
                } else {
                    let name = format!("y{}", rng.gen_range(0..1000));
                    (name, TableKind::Unordered, TableOptions::unordered())
                };
                db.table(&name, topts).map(|_| {
                    oracle.tables.push((name, kind));
                    false
                })
            }
            7..=10 => {
                // A GC pass syncs what it moves, not the user head: no
                // durability point for user writes.
                let policy = match rng.gen_range(0..3) {
                    0 => GcPolicy::Tail,
                    1 => GcPolicy::Greedy,
                    _ => GcPolicy::CostBenefit,
                };
                let opts = GcOptions::default()
                    .policy(policy)
                    .max_segments(2)
                    .min_garbage_ratio(0.0)
                    .all_sealed(rng.gen_bool(0.2));
                // Half the time flush first: that moves the replay point past
                // every sealed segment, so the pass has segments to take.
                let flushed = if rng.gen_bool(0.5) {
                    db.flush().map(|_| oracle.durable = oracle.acked.len())
                } else {
                    Ok(())
                };
                flushed.and_then(|_| {
                    let hints = hint_counts(fs);
                    db.gc(opts).map(|rep| {
                        totals.gc.note(&rep, &hints);
                        false
                    })
                })
            }
            _ => {
                let n = if rng.gen_bool(0.6) {
                    1
                } else {
                    rng.gen_range(2..6)
                };
                let mut batch = Batch::new();
                for _ in 0..n {
                    let tbl = rng.gen_range(0..TABLES);
                    let k = rng.gen_range(0..NUM_KEYS);
                    // Tombstones are what GC of unordered tables must get
                    // right: delete more there.
                    let p_delete = if tbl == UNORDERED { 0.3 } else { 0.15 };
                    let w = if rng.gen_bool(p_delete) {
                        if tbl == UNORDERED && !model.contains_key(&(tbl, k)) {
                            totals.absent_deletes += 1;
                        }
                        None
                    } else {
                        *gen += 1;
                        let size = if rng.gen_bool(0.35) {
                            rng.gen_range(2048..8192)
                        } else {
                            10
                        };
                        Some((*gen, size))
                    };
                    batch.push((tbl, k, w));
                }
                let sync = rng.gen_bool(0.15);
                oracle.inflight = Some(batch.clone());
                let r = write(db, tabs, &batch, sync);
                if r.is_ok() {
                    oracle.inflight = None;
                    apply(model, &batch);
                    oracle.acked.push(batch);
                }
                r.map(|_| sync)
            }
        };
        match r {
            Ok(true) => oracle.durable = oracle.acked.len(),
            Ok(false) => {}
            Err(Error::Io { .. } | Error::Poisoned(_)) => {
                out.errors += 1;
                return out;
            }
            Err(e) => panic!("unexpected error kind: {e:?}"),
        }
    }
    out
}

/// The longest prefix `k >= durable` of the acknowledged batches (or all of
/// them plus the batch in flight) whose result is `found`.
fn match_prefix(base: &State, oracle: &Oracle, found: &State) -> Result<usize, String> {
    let mut model = base.clone();
    for b in &oracle.acked[..oracle.durable] {
        apply(&mut model, b);
    }
    let mut best = None;
    if &model == found {
        best = Some(oracle.durable);
    }
    for (i, b) in oracle.acked.iter().enumerate().skip(oracle.durable) {
        apply(&mut model, b);
        if &model == found {
            best = Some(i + 1);
        }
    }
    if let Some(b) = &oracle.inflight {
        apply(&mut model, b);
        if &model == found {
            best = Some(oracle.acked.len() + 1);
        }
    }
    best.ok_or_else(|| {
        // Describe the difference from the durable prefix.
        let mut m = base.clone();
        for b in &oracle.acked[..oracle.durable] {
            apply(&mut m, b);
        }
        let missing: Vec<_> = m
            .iter()
            .filter(|(k, v)| found.get(k) != Some(v))
            .take(8)
            .collect();
        let extra: Vec<_> = found
            .iter()
            .filter(|(k, v)| m.get(k) != Some(v))
            .take(8)
            .collect();
        format!(
            "no prefix of the {} acknowledged batches (durable: {}, in flight: {}) matches; \
             against the durable prefix: expected-but-different {missing:?}, found {extra:?}",
            oracle.acked.len(),
            oracle.durable,
            oracle.inflight.is_some()
        )
    })
}

/// Explicit GC passes, and what their victims held by their hint files.
#[derive(Default)]
struct GcCounts {
    passes: u64,
    /// Passes that took at least one segment.
    with_victims: u64,
    /// Passes whose victims' hints listed unordered records, and of those
    /// the ones that moved records.
    unordered_passes: u64,
    unordered_passes_moving: u64,
    /// Unordered puts and tombstones listed by the victims' hints.
    victim_puts: u64,
    victim_tombstones: u64,
    records_moved: u64,
}

impl GcCounts {
    fn note(&mut self, rep: &GcReport, hints: &HashMap<u64, HintCount>) {
        self.passes += 1;
        self.with_victims += u64::from(!rep.victims.is_empty());
        self.records_moved += rep.records_moved;
        let mut c = HintCount::default();
        for h in rep.victims.iter().filter_map(|v| hints.get(v)) {
            c.puts += h.puts;
            c.tombstones += h.tombstones;
        }
        if c.puts + c.tombstones > 0 {
            self.unordered_passes += 1;
            self.unordered_passes_moving += u64::from(rep.records_moved > 0);
            self.victim_puts += c.puts;
            self.victim_tombstones += c.tombstones;
        }
    }
}

#[derive(Default)]
struct Totals {
    cycles: u64,
    recovery_crashes: u64,
    batches: u64,
    lost: u64,
    io_stops: u64,
    errors: u64,
    /// Cycles that acknowledged writes to the unordered table.
    unordered_cycles: u64,
    /// Cycles whose recovered unordered table was not empty.
    unordered_nonempty: u64,
    /// Deletes in the unordered table of keys absent at the time.
    absent_deletes: u64,
    /// Reopens that found hint files, and how many.
    reopens_with_hints: u64,
    hints_at_reopen: u64,
    gc: GcCounts,
}

fn run_seed(seed: u64, totals: &mut Totals) {
    let _guard = SeedGuard(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let fs = FaultFs::new();
    let dir = Path::new(DIR);
    let mut base = State::new();
    let mut gen = 0;
    for cycle in 0..2 {
        let db = Db::open(dir, opts(&fs))
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: open: {e}"));
        let tabs =
            Tables::open(&db).unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: tables: {e}"));
        let mut oracle = Oracle::default();
        let mut model = base.clone();
        let n_ops = rng.gen_range(5..60);
        let by_io = rng.gen_bool(0.5);
        if by_io {
            fs.fail_after(
                rng.gen_range(0..(n_ops as u64 * 2 + 20)),
                FailMode::Eio,
                Repeat::Persistent,
            );
        }
        let out = workload(
            &mut rng,
            &fs,
            &db,
            &tabs,
            &mut gen,
            n_ops,
            &mut oracle,
            &mut model,
            totals,
        );
        totals.errors += out.errors as u64;
        if by_io && out.errors > 0 {
            totals.io_stops += 1;
        }
        if by_io && out.errors == 0 && rng.gen_bool(0.5) {
            // Let background work run into the failure.
            let _ = db.flush();
        }
        fs.crash();
        drop(tabs);
        drop(db);
        fs.power_loss(seed.wrapping_mul(31).wrapping_add(cycle));
        fs.recover();
        if rng.gen_bool(0.25) {
            // The power goes again while recovery runs (truncating a torn
            // tail, writing a fresh manifest and missing hints, removing
            // leftovers).
            totals.recovery_crashes += 1;
            fs.fail_after(rng.gen_range(0..12), FailMode::Eio, Repeat::Persistent);
            if let Ok(db) = Db::open(dir, opts(&fs)) {
                fs.crash();
                drop(db);
            }
            fs.crash();
            fs.power_loss(seed.wrapping_mul(37).wrapping_add(cycle));
            fs.recover();
        }

        let hints = hint_counts(&fs).len() as u64;
        totals.reopens_with_hints += u64::from(hints > 0);
        totals.hints_at_reopen += hints;
        let db = Db::open(dir, opts(&fs)).unwrap_or_else(|e| {
            panic!("seed {seed} cycle {cycle}: reopen after power loss failed: {e}")
        });
        // Table creation is durable: "t" and "u" (created before the first
        // workload) and every table created since keep their kinds.
        let kinds = db.table_kinds();
        let expected = [
            ("t".to_string(), TableKind::Ordered),
            ("u".to_string(), TableKind::Unordered),
        ];
        for tk in expected.iter().chain(&oracle.tables) {
            assert!(
                kinds.contains(tk),
                "seed {seed} cycle {cycle}: table {tk:?} was created but is gone or changed \
                 ({kinds:?})"
            );
        }
        let tabs = Tables::open(&db)
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: tables after reopen: {e}"));
        let found = read_state(&db, &tabs, &format!("seed {seed} cycle {cycle}"));
        let report = db
            .verify()
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: verify after reopen: {e}"));
        assert!(
            report.is_clean(),
            "seed {seed} cycle {cycle}: verify found damage after a power loss: {:?}",
            report.damage
        );
        assert_eq!(
            report.entries,
            found.len() as u64,
            "seed {seed} cycle {cycle}: verify counted other entries than the reads found"
        );
        let k = match_prefix(&base, &oracle, &found)
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle} ({} ops): {e}", out.ops));
        totals.cycles += 1;
        totals.batches += oracle.acked.len() as u64;
        totals.lost += oracle.acked.len().saturating_sub(k) as u64;
        totals.unordered_cycles += u64::from(
            oracle
                .acked
                .iter()
                .any(|b| b.iter().any(|&(t, _, _)| t == UNORDERED)),
        );
        totals.unordered_nonempty += u64::from(found.keys().any(|&(t, _)| t == UNORDERED));
        base = found;
        // The recovered database takes writes, in every table.
        db.put(b"after", b"x")
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: write after reopen: {e}"));
        db.delete(b"after").unwrap();
        tabs.u
            .put(b"after", b"x")
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: unordered write: {e}"));
        tabs.u.delete(b"after").unwrap();
        db.sync().unwrap();
        drop(tabs);
        drop(db);
    }
}

#[test]
fn power_loss_random_workloads() {
    count_panics();
    let start = Instant::now();
    let mut totals = Totals::default();
    let seeds: Vec<u64> = match std::env::var("WISCKEY_POWER_SEED") {
        Ok(s) => vec![s.parse().expect("WISCKEY_POWER_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("WISCKEY_POWER_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(2000);
            let first: u64 = std::env::var("WISCKEY_POWER_FIRST_SEED")
                .map(|s| s.parse().expect("WISCKEY_POWER_FIRST_SEED is a number"))
                .unwrap_or(0);
            (first..first + n).collect()
        }
    };
    for &seed in &seeds {
        run_seed(seed, &mut totals);
    }
    let g = &totals.gc;
    eprintln!(
        "power_loss: {} seeds ({}..={}), {} crash cycles ({} with a second power loss during \
         recovery), {} batches acknowledged, {} unsynced ones lost, {} workloads stopped by \
         I/O errors, {} errors seen, {:.1?}",
        seeds.len(),
        seeds.first().copied().unwrap_or(0),
        seeds.last().copied().unwrap_or(0),
        totals.cycles,
        totals.recovery_crashes,
        totals.batches,
        totals.lost,
        totals.io_stops,
        totals.errors,
        start.elapsed()
    );
    eprintln!(
        "power_loss: unordered table written in {} cycles, non-empty after {} reopens, {} \
         deletes of absent keys; {} reopens found hint files ({} in all); explicit GC: {} \
         passes, {} took segments, {} took segments whose hints listed unordered records ({} \
         puts, {} tombstones; {} of these passes moved records), {} records moved",
        totals.unordered_cycles,
        totals.unordered_nonempty,
        totals.absent_deletes,
        totals.reopens_with_hints,
        totals.hints_at_reopen,
        g.passes,
        g.with_victims,
        g.unordered_passes,
        g.victim_puts,
        g.victim_tombstones,
        g.unordered_passes_moving,
        g.records_moved,
    );
    if seeds.len() >= 1000 {
        // What the unordered table is here for: hints read on reopen, GC
        // passes relocating its records and dropping its tombstones.
        assert!(
            totals.reopens_with_hints * 4 >= totals.cycles,
            "few reopens find hint files"
        );
        assert!(
            g.unordered_passes * 20 >= totals.cycles && g.victim_tombstones > 0,
            "few GC passes take segments holding unordered records"
        );
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a thread panicked");
}
