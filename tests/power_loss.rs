//! Power-loss simulation on [`FaultFs`]: seeded random workloads (puts of
//! inline and vLog-separated values, deletes, batches across two tables,
//! sync writes, `sync`, `flush`, `compact`) are stopped at a random moment,
//! either between operations (`crash`) or at a random I/O operation
//! (persistent EIO, then `crash`), possibly in the middle of a flush or
//! compaction. Then the power goes (`power_loss`, with torn sectors), the
//! file system reboots (`recover`) and the database is reopened. Checks:
//! - the database opens;
//! - the state is the oracle after some prefix of the acknowledged batches
//!   (plus possibly the batch in flight), and that prefix includes every
//!   batch acknowledged with sync, `sync()` or `flush()` and all before it:
//!   losses are a suffix, never a hole, and batches are atomic;
//! - point reads and a full scan agree.
//!
//! In a quarter of the cycles the power goes again during recovery.
//! Each seed runs two crash cycles on one file system.
//! `WISCKEY_POWER_SEEDS` sets the number of seeds (default 2000);
//! `WISCKEY_POWER_SEED=<n>` replays one seed. A failing seed prints itself.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use wisckey::io::{FailMode, FaultFs, Repeat};
use wisckey::{Db, Error, GcOptions, Options, Table, TableOptions, WriteBatch, WriteOptions};

const DIR: &str = "/db";
const NUM_KEYS: u32 = 40;
/// Table 0 is the default table, table 1 the named table "t".
const TABLES: u8 = 2;

fn opts(fs: &FaultFs) -> Options {
    Options::default()
        .memtable_size(16 << 10)
        .segment_size(64 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(8 << 10)
        .base_level_size(16 << 10)
        .block_size(256)
        .gc_interval(std::time::Duration::from_millis(3))
        .fs(Arc::new(fs.clone()))
}

fn key(k: u32) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

/// A value of `size` bytes that names its generation.
fn value(gen: u64, size: usize) -> Vec<u8> {
    let mut v = format!("{gen}:").into_bytes();
    let mut x = gen.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v.truncate(size);
    v
}

/// One write: table, key, and the value's (generation, size) or a delete.
type Item = (u8, u32, Option<(u64, usize)>);
type Batch = Vec<Item>;
type State = BTreeMap<(u8, u32), (u64, usize)>;

fn apply(state: &mut State, batch: &[Item]) {
    for &(t, k, w) in batch {
        match w {
            Some(v) => {
                state.insert((t, k), v);
            }
            None => {
                state.remove(&(t, k));
            }
        }
    }
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
    /// Tables whose creation was acknowledged.
    tables: Vec<String>,
}

struct Outcome {
    ops: usize,
    errors: usize,
}

/// Runs random operations until `n_ops` are done or one fails.
fn workload(
    rng: &mut StdRng,
    db: &Db,
    t: &Table,
    gen: &mut u64,
    n_ops: usize,
    oracle: &mut Oracle,
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
                let name = format!("x{}", rng.gen_range(0..1000));
                db.table(&name, TableOptions::ordered()).map(|_| {
                    oracle.tables.push(name);
                    false
                })
            }
            7..=9 => {
                // A GC pass syncs what it moves, not the user head: no
                // durability point for user writes.
                let opts = GcOptions::default()
                    .max_segments(2)
                    .min_garbage_ratio(0.0)
                    .all_sealed(rng.gen_bool(0.2));
                db.gc(opts).map(|_| false)
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
                    let w = if rng.gen_bool(0.15) {
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
                let r = if n == 1 && !sync {
                    let (tbl, k, w) = batch[0];
                    match (tbl, w) {
                        (0, Some((g, s))) => db.put(key(k), value(g, s)),
                        (0, None) => db.delete(key(k)),
                        (_, Some((g, s))) => t.put(key(k), value(g, s)),
                        (_, None) => t.delete(key(k)),
                    }
                } else {
                    let mut b = WriteBatch::new();
                    for &(tbl, k, w) in &batch {
                        match (tbl, w) {
                            (0, Some((g, s))) => b.put(key(k), value(g, s)),
                            (0, None) => b.delete(key(k)),
                            (_, Some((g, s))) => b.put_in(t, key(k), value(g, s)),
                            (_, None) => b.delete_in(t, key(k)),
                        };
                    }
                    db.write(b, WriteOptions::default().sync(sync))
                };
                if r.is_ok() {
                    oracle.inflight = None;
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

/// Reads every key of both tables, by point reads and by scans, and checks
/// that they agree.
fn read_state(db: &Db, t: &Table) -> State {
    let mut state = State::new();
    let mut by_scan = BTreeMap::new();
    for tbl in 0..TABLES {
        let iter = if tbl == 0 { db.iter() } else { t.iter() };
        for kv in iter {
            let (k, v) = kv.unwrap_or_else(|e| panic!("scan of table {tbl}: {e}"));
            by_scan.insert((tbl, k), v.into_vec());
        }
        for k in 0..NUM_KEYS {
            let got = if tbl == 0 {
                db.get(key(k))
            } else {
                t.get(key(k))
            }
            .unwrap_or_else(|e| panic!("get of table {tbl} key {k}: {e}"))
            .map(|v| v.into_vec());
            let scanned = by_scan.remove(&(tbl, key(k)));
            assert_eq!(
                got.as_ref().map(|v| v.len()),
                scanned.as_ref().map(|v| v.len()),
                "table {tbl} key {k}: get and scan disagree"
            );
            assert!(got == scanned, "table {tbl} key {k}: get and scan disagree");
            if let Some(v) = got {
                let text = String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned();
                let g: u64 = text
                    .split(':')
                    .next()
                    .and_then(|g| g.parse().ok())
                    .unwrap_or_else(|| panic!("table {tbl} key {k}: unknown value {text:?}"));
                assert!(
                    v == value(g, v.len()),
                    "table {tbl} key {k}: value of gen {g} damaged"
                );
                state.insert((tbl, k), (g, v.len()));
            }
        }
    }
    assert!(
        by_scan.is_empty(),
        "scan found unknown keys: {:?}",
        by_scan.keys()
    );
    state
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

#[derive(Default)]
struct Totals {
    cycles: u64,
    recovery_crashes: u64,
    batches: u64,
    lost: u64,
    io_stops: u64,
    errors: u64,
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
        let t = db
            .table("t", TableOptions::ordered())
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: table: {e}"));
        let mut oracle = Oracle::default();
        let n_ops = rng.gen_range(5..60);
        let by_io = rng.gen_bool(0.5);
        if by_io {
            fs.fail_after(
                rng.gen_range(0..(n_ops as u64 * 2 + 20)),
                FailMode::Eio,
                Repeat::Persistent,
            );
        }
        let out = workload(&mut rng, &db, &t, &mut gen, n_ops, &mut oracle);
        totals.errors += out.errors as u64;
        if by_io && out.errors > 0 {
            totals.io_stops += 1;
        }
        if by_io && out.errors == 0 && rng.gen_bool(0.5) {
            // Let background work run into the failure.
            let _ = db.flush();
        }
        fs.crash();
        drop(t);
        drop(db);
        fs.power_loss(seed.wrapping_mul(31).wrapping_add(cycle));
        fs.recover();
        if rng.gen_bool(0.25) {
            // The power goes again while recovery runs (truncating a torn
            // tail, writing a fresh manifest, removing leftovers).
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

        let db = Db::open(dir, opts(&fs)).unwrap_or_else(|e| {
            panic!("seed {seed} cycle {cycle}: reopen after power loss failed: {e}")
        });
        let t = db
            .table("t", TableOptions::ordered())
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: table after reopen: {e}"));
        let names = db.table_names();
        for name in &oracle.tables {
            assert!(
                names.contains(name),
                "seed {seed} cycle {cycle}: table {name} was created but is gone"
            );
        }
        let found = read_state(&db, &t);
        let k = match_prefix(&base, &oracle, &found)
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle} ({} ops): {e}", out.ops));
        totals.cycles += 1;
        totals.batches += oracle.acked.len() as u64;
        totals.lost += oracle.acked.len().saturating_sub(k) as u64;
        base = found;
        // The recovered database takes writes.
        db.put(b"after", b"x")
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: write after reopen: {e}"));
        db.delete(b"after").unwrap();
        db.sync().unwrap();
        drop(t);
        drop(db);
    }
}

/// Panics anywhere in the process (background threads included), counted by
/// a hook installed with [`count_panics`]: a failure must reach the caller as
/// an error, never as a panic on a worker thread.
static PANICS: AtomicU64 = AtomicU64::new(0);

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
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
            (0..n).collect()
        }
    };
    for &seed in &seeds {
        run_seed(seed, &mut totals);
    }
    eprintln!(
        "power_loss: {} seeds, {} crash cycles ({} with a second power loss during recovery), {} batches acknowledged, {} unsynced ones lost, \
         {} workloads stopped by I/O errors, {} errors seen, {:.1?}",
        seeds.len(),
        totals.cycles,
        totals.recovery_crashes,
        totals.batches,
        totals.lost,
        totals.io_stops,
        totals.errors,
        start.elapsed()
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a thread panicked");
}
