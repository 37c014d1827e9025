//! I/O error sweep, SQLite style: a fixed workload (puts of inline and
//! vLog-separated values, deletes, batches across two tables, sync writes,
//! `sync`, `flush`, `compact`, reopens) is first run clean to count its
//! data-path operations N; then, for each i in 0..N (with a stride that keeps
//! the runtime down) and each failure mode, it runs again with
//! `fail_after(i, mode)` on a fresh [`FaultFs`] and checks:
//! - every failure reaches the caller as `Err` (`Io` or `Poisoned`), never a
//!   panic, and a short write (which `write_all_at` resubmits) is no error;
//! - after a failed fsync the database refuses writes with `Poisoned`, even
//!   once the device works again (invariant 8);
//! - after the database is dropped, the failures cleared (and, for half of
//!   the cases, the power lost), the reopened database holds every
//!   acknowledged write (every sync-acknowledged one after a power loss,
//!   with losses only a suffix), can be scanned in full and takes writes.
//!
//! `WISCKEY_IO_ERROR_STRIDE` fixes the stride (default: about 400 points
//! per mode).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use wisckey::io::fault::OpKind;
use wisckey::io::{FailMode, FaultFs, Repeat};
use wisckey::{Db, Error, GcOptions, Options, Table, TableOptions, WriteBatch, WriteOptions};

const DIR: &str = "/db";
const NUM_KEYS: u32 = 40;
const TABLES: u8 = 2;
const WORKLOAD_OPS: usize = 300;

fn opts(fs: &FaultFs) -> Options {
    Options::default()
        .memtable_size(16 << 10)
        .segment_size(64 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(8 << 10)
        .base_level_size(16 << 10)
        .block_size(256)
        .fs(Arc::new(fs.clone()))
}

fn key(k: u32) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

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

#[derive(Debug, Clone)]
enum Op {
    Write(Batch, bool),
    Flush,
    Compact,
    Gc,
    Sync,
    Reopen,
}

/// The fixed workload.
fn ops() -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(0x10e5);
    let mut gen = 0u64;
    let mut ops = Vec::new();
    for _ in 0..WORKLOAD_OPS {
        let op = match rng.gen_range(0..100) {
            0..=2 => Op::Flush,
            3 => Op::Compact,
            4..=5 => Op::Sync,
            6 => Op::Reopen,
            7..=8 => Op::Gc,
            _ => {
                let n = if rng.gen_bool(0.6) {
                    1
                } else {
                    rng.gen_range(2..6)
                };
                let batch = (0..n)
                    .map(|_| {
                        let t = rng.gen_range(0..TABLES);
                        let k = rng.gen_range(0..NUM_KEYS);
                        let w = if rng.gen_bool(0.15) {
                            None
                        } else {
                            gen += 1;
                            let size = if rng.gen_bool(0.35) {
                                rng.gen_range(2048..8192)
                            } else {
                                10
                            };
                            Some((gen, size))
                        };
                        (t, k, w)
                    })
                    .collect();
                Op::Write(batch, rng.gen_bool(0.15))
            }
        };
        ops.push(op);
    }
    ops
}

fn write(db: &Db, t: &Table, batch: &Batch, sync: bool) -> wisckey::Result<()> {
    if batch.len() == 1 && !sync {
        let (tbl, k, w) = batch[0];
        return match (tbl, w) {
            (0, Some((g, s))) => db.put(key(k), value(g, s)),
            (0, None) => db.delete(key(k)),
            (_, Some((g, s))) => t.put(key(k), value(g, s)),
            (_, None) => t.delete(key(k)),
        };
    }
    let mut b = WriteBatch::new();
    for &(tbl, k, w) in batch {
        match (tbl, w) {
            (0, Some((g, s))) => b.put(key(k), value(g, s)),
            (0, None) => b.delete(key(k)),
            (_, Some((g, s))) => b.put_in(t, key(k), value(g, s)),
            (_, None) => b.delete_in(t, key(k)),
        };
    }
    db.write(b, WriteOptions::default().sync(sync))
}

fn open(fs: &FaultFs) -> wisckey::Result<(Db, Table)> {
    let db = Db::open(Path::new(DIR), opts(fs))?;
    let t = db.table("t", TableOptions::ordered())?;
    Ok((db, t))
}

/// Point reads and full scans of both tables, checked against each other.
fn read_state(db: &Db, t: &Table, ctx: &str) -> State {
    let mut state = State::new();
    let mut by_scan = BTreeMap::new();
    for tbl in 0..TABLES {
        let iter = if tbl == 0 { db.iter() } else { t.iter() };
        for kv in iter {
            let (k, v) = kv.unwrap_or_else(|e| panic!("{ctx}: scan of table {tbl}: {e}"));
            by_scan.insert((tbl, k), v.into_vec());
        }
        for k in 0..NUM_KEYS {
            let got = if tbl == 0 {
                db.get(key(k))
            } else {
                t.get(key(k))
            }
            .unwrap_or_else(|e| panic!("{ctx}: get of table {tbl} key {k}: {e}"))
            .map(|v| v.into_vec());
            let scanned = by_scan.remove(&(tbl, key(k)));
            assert!(
                got == scanned,
                "{ctx}: table {tbl} key {k}: get and scan disagree"
            );
            if let Some(v) = got {
                let text = String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned();
                let g: u64 = text
                    .split(':')
                    .next()
                    .and_then(|g| g.parse().ok())
                    .unwrap_or_else(|| panic!("{ctx}: table {tbl} key {k}: unknown value"));
                assert!(
                    v == value(g, v.len()),
                    "{ctx}: table {tbl} key {k}: damaged"
                );
                state.insert((tbl, k), (g, v.len()));
            }
        }
    }
    assert!(
        by_scan.is_empty(),
        "{ctx}: unknown keys {:?}",
        by_scan.keys()
    );
    state
}

/// One history the database may have: the batches in write order, how many
/// of them are known durable, whether the last one may be missing.
struct History {
    batches: Vec<Batch>,
    durable: usize,
    last_maybe: bool,
}

/// Whether `found` is the state after `h`: all of it, or after a power
/// loss any prefix from the durable one on.
fn fits(h: &History, found: &State, power_lost: bool) -> bool {
    let mut m = State::new();
    let n = h.batches.len();
    let min = if power_lost {
        h.durable
    } else if h.last_maybe {
        n.saturating_sub(1)
    } else {
        n
    };
    if min == 0 && &m == found {
        return true;
    }
    for (i, b) in h.batches.iter().enumerate() {
        apply(&mut m, b);
        if i + 1 >= min && &m == found {
            return true;
        }
    }
    false
}

#[derive(Default, Debug)]
struct Totals {
    runs: u64,
    injected: u64,
    errors_returned: u64,
    poison_checks: u64,
    power_losses: u64,
}

/// Runs the workload with a failure armed (or none); returns the number of
/// data-path operations performed.
fn run(
    ops: &[Op],
    fail: Option<(u64, FailMode, Repeat)>,
    power_loss: bool,
    totals: &mut Totals,
) -> u64 {
    let ctx = format!("case {fail:?}, power loss {power_loss}");
    let fs = FaultFs::new();
    if let Some((i, mode, repeat)) = fail {
        fs.fail_after(i, mode, repeat);
    }
    // Entries: (batch, certain). An uncertain batch got an error.
    let mut hist: Vec<(Batch, bool)> = Vec::new();
    let mut durable = 0usize;
    let mut first_error: Option<Error> = None;
    let mut probe_gen = 1_000_000u64;
    let mut db = match open(&fs) {
        Ok(x) => Some(x),
        Err(e) => {
            first_error = Some(e);
            None
        }
    };
    let mut op_idx = 0;
    while first_error.is_none() && op_idx < ops.len() {
        if matches!(ops[op_idx], Op::Reopen) {
            op_idx += 1;
            drop(db.take());
            match open(&fs) {
                Ok(x) => db = Some(x),
                Err(e) => first_error = Some(e),
            }
            continue;
        }
        let (d, t) = db.as_ref().expect("open");
        let r = match &ops[op_idx] {
            Op::Write(b, sync) => {
                let r = write(d, t, b, *sync);
                hist.push((b.clone(), r.is_ok()));
                r.map(|_| *sync)
            }
            Op::Flush => d.flush().map(|_| true),
            Op::Compact => d.compact().map(|_| true),
            Op::Gc => d
                .gc(GcOptions::default().max_segments(2).min_garbage_ratio(0.0))
                .map(|_| false),
            Op::Sync => d.sync().map(|_| true),
            Op::Reopen => unreachable!(),
        };
        op_idx += 1;
        match r {
            Ok(true) => durable = hist.len(),
            Ok(false) => {}
            Err(e) => first_error = Some(e),
        }
    }
    let data_ops = fs.data_op_count();

    let mut probe: Option<(Batch, bool)> = None;
    if let Some(e) = &first_error {
        totals.errors_returned += 1;
        assert!(
            matches!(e, Error::Io { .. } | Error::Poisoned(_)),
            "{ctx}: unexpected error kind {e:?}"
        );
        if matches!(fail, Some((_, FailMode::ShortWrite, _))) {
            panic!("{ctx}: a short write reached the caller as {e:?}");
        }
        let sync_failed = fs
            .ops()
            .iter()
            .any(|o| o.failed && matches!(o.kind, OpKind::SyncData | OpKind::SyncAll));
        fs.recover();
        if let Some((d, t)) = &db {
            probe_gen += 1;
            let b: Batch = vec![(0, 0, Some((probe_gen, 10)))];
            let r = write(d, t, &b, true);
            if sync_failed {
                totals.poison_checks += 1;
                assert!(
                    matches!(r, Err(Error::Poisoned(_))),
                    "{ctx}: after a failed fsync ({e}) a write gave {r:?}, not Poisoned"
                );
            }
            if let Err(e) = &r {
                totals.errors_returned += 1;
                assert!(
                    matches!(e, Error::Io { .. } | Error::Poisoned(_)),
                    "{ctx}: unexpected error kind on the probe {e:?}"
                );
            }
            probe = Some((b, r.is_ok()));
        }
    }
    totals.injected += fs.injected();
    drop(db.take());
    if std::env::var("WISCKEY_IO_ERROR_TRACE").is_ok() {
        for o in fs.ops() {
            if !matches!(o.kind, OpKind::Read | OpKind::Len | OpKind::Exists) {
                eprintln!("{o:?}");
            }
        }
    }
    fs.recover();
    if power_loss {
        totals.power_losses += 1;
        fs.power_loss(data_ops ^ 0x9e37);
    }
    let (d, t) = match open(&fs) {
        Ok(x) => x,
        Err(e) => panic!("{ctx}: reopen after the failure: {e}"),
    };
    let found = read_state(&d, &t, &ctx);

    // The histories the database may be in: each uncertain batch applied or
    // not (at most two are uncertain: the failed one and the probe).
    let uncertain: Vec<usize> = hist
        .iter()
        .enumerate()
        .filter(|(_, (_, ok))| !ok)
        .map(|(i, _)| i)
        .collect();
    assert!(uncertain.len() <= 1, "{ctx}: more than one failed write");
    let mut full = hist.clone();
    let mut probe_durable = false;
    if let Some(p) = probe {
        probe_durable = p.1;
        full.push(p);
    }
    let mut ok = false;
    for include in [true, false] {
        let mut batches = Vec::new();
        let mut d_count = 0;
        let mut last_maybe = false;
        for (i, (b, certain)) in full.iter().enumerate() {
            if !certain && !include && i + 1 < full.len() {
                continue;
            }
            batches.push(b.clone());
            if i < durable {
                d_count = batches.len();
            }
            last_maybe = !certain;
        }
        if probe_durable {
            d_count = batches.len();
        }
        let h = History {
            batches,
            durable: d_count,
            last_maybe,
        };
        if fits(&h, &found, power_loss) {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "{ctx}: the reopened database lost acknowledged writes or has a hole \
         ({} writes, {durable} durable, error {first_error:?})",
        full.len()
    );
    d.put(b"after", b"x")
        .unwrap_or_else(|e| panic!("{ctx}: write after reopen: {e}"));
    d.sync()
        .unwrap_or_else(|e| panic!("{ctx}: sync after reopen: {e}"));
    totals.runs += 1;
    data_ops
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
fn io_error_sweep() {
    count_panics();
    let start = Instant::now();
    let ops = ops();
    let mut totals = Totals::default();
    let n = run(&ops, None, false, &mut totals);
    let stride: u64 = std::env::var("WISCKEY_IO_ERROR_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or((n / 400).max(1));
    let modes = [
        (FailMode::Eio, Repeat::Once),
        (FailMode::Eio, Repeat::Persistent),
        (FailMode::Enospc, Repeat::Persistent),
        (FailMode::ShortWrite, Repeat::Once),
    ];
    if let Ok(case) = std::env::var("WISCKEY_IO_ERROR_CASE") {
        // "i,mode,power_loss": mode 0..4 as in `modes`.
        let f: Vec<u64> = case.split(',').map(|x| x.parse().unwrap()).collect();
        let (mode, repeat) = modes[f[1] as usize];
        run(&ops, Some((f[0], mode, repeat)), f[2] == 1, &mut totals);
        return;
    }
    let mut i = 0;
    let mut points = 0;
    while i < n {
        for (m, &(mode, repeat)) in modes.iter().enumerate() {
            let power_loss = (i / stride + m as u64) % 2 == 1;
            run(&ops, Some((i, mode, repeat)), power_loss, &mut totals);
        }
        points += 1;
        i += stride;
    }
    eprintln!(
        "io_errors: workload of {} ops = {n} data-path I/O ops; stride {stride}, {points} points \
         x {} modes; {totals:?}; {:.1?}",
        ops.len(),
        modes.len(),
        start.elapsed()
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a thread panicked");
}

/// Opens a database on `fs` (automatic compaction off), writes 20 small
/// values in two flushed halves with overlapping keys, and syncs.
fn two_tables(fs: &FaultFs) -> Db {
    let db = Db::open(Path::new(DIR), opts(fs).l0_compaction_trigger(100)).unwrap();
    for k in 0..20u32 {
        db.put(key(k % 12), value(u64::from(k) + 1, 10)).unwrap();
        if k == 9 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    db.sync().unwrap();
    db
}

fn expected_two_tables() -> State {
    let mut m = State::new();
    for k in 0..20u32 {
        m.insert((0, k % 12), (u64::from(k) + 1, 10));
    }
    m
}

/// How many data-path operations a clean `compact` of `two_tables`
/// performs before the fsync of the manifest record naming its output.
fn data_ops_before_compaction_manifest_sync() -> u64 {
    let fs = FaultFs::new();
    let db = two_tables(&fs);
    fs.clear_ops();
    db.compact().unwrap();
    let data: Vec<_> = fs
        .ops()
        .into_iter()
        .filter(|o| o.kind.is_data_path())
        .collect();
    let first_sst = data
        .iter()
        .position(|o| o.kind == OpKind::Create && o.path.to_string_lossy().ends_with(".sst"))
        .expect("compaction writes a table");
    let i = data
        .iter()
        .skip(first_sst)
        .position(|o| o.kind == OpKind::SyncData && o.path.to_string_lossy().contains("MANIFEST"))
        .expect("compaction syncs the manifest");
    (first_sst + i) as u64
}

/// Regression: when the manifest record of a compaction is written but its
/// `fdatasync` fails, the outcome is unknown, so the outputs must stay on
/// disk. The engine used to delete them as if no manifest named them; the
/// record was in the file, and the next open failed with
/// `Corruption("SSTable named by the manifest is missing")`.
#[test]
fn failed_manifest_sync_in_compaction_keeps_the_tables_it_names() {
    let k = data_ops_before_compaction_manifest_sync();
    let fs = FaultFs::new();
    let db = two_tables(&fs);
    fs.fail_after(k, FailMode::Eio, Repeat::Once);
    assert!(db.compact().is_err(), "the manifest fsync was to fail");
    drop(db);
    fs.recover();
    if std::env::var("WISCKEY_IO_ERROR_TRACE").is_ok() {
        for o in fs.ops() {
            if !matches!(o.kind, OpKind::Read | OpKind::Len | OpKind::Exists) {
                eprintln!("{o:?}");
            }
        }
    }
    let (db, t) = open(&fs).expect("reopen after a failed manifest fsync");
    assert_eq!(read_state(&db, &t, "reopen"), expected_two_tables());
}

/// The same compaction without the failure reopens fine (the repro's control).
#[test]
fn compaction_then_reopen_control() {
    let fs = FaultFs::new();
    let db = two_tables(&fs);
    db.compact().unwrap();
    drop(db);
    let (db, t) = open(&fs).unwrap();
    assert_eq!(read_state(&db, &t, "reopen"), expected_two_tables());
}
