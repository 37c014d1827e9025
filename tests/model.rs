//! Model test: random operation sequences against a `BTreeMap` per table
//! (the default table and one named table), with snapshots, flushes,
//! compactions and reopens (clean and unclean) in between.
//!
//! `WISCKEY_MODEL_CASES` sets the number of proptest cases (default 256).

use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use wisckey::{
    Db, GcOptions, GcPolicy, Options, Snapshot, Table, TableOptions, WriteBatch, WriteOptions,
};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Keys: every string of length 0..=3 over a 3-letter alphabet that includes
/// the byte 0xff (an edge case of prefix bounds) and 0x00.
fn all_keys() -> Vec<Vec<u8>> {
    let alphabet = [0x00u8, b'a', 0xff];
    let mut keys = vec![Vec::new()];
    let mut frontier = vec![Vec::new()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for k in &frontier {
            for &c in &alphabet {
                let mut k2: Vec<u8> = k.clone();
                k2.push(c);
                next.push(k2);
            }
        }
        keys.extend(next.iter().cloned());
        frontier = next;
    }
    keys.sort();
    keys
}

const NUM_KEYS: usize = 40;

/// A value of `size` bytes derived from `seed` (distinct seeds, distinct values).
fn value(size: usize, seed: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    let s = seed.to_le_bytes();
    for i in 0..size {
        v.push(match i {
            0 => s[0],
            1 => s[1],
            _ => (i as u8).wrapping_mul(31).wrapping_add(s[0] ^ s[1]),
        });
    }
    v
}

fn value_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        40 => 0usize..24,
        4 => Just(0usize),
        6 => prop_oneof![Just(1023usize), Just(1024), Just(1025)],
        8 => 1000usize..6000,
        2 => 6000usize..70_000,
        1 => Just(1usize << 20),
        1 => 200_000usize..(1 << 20),
    ]
}

#[derive(Debug, Clone)]
struct Val {
    size: usize,
    seed: u16,
}

impl Val {
    fn bytes(&self) -> Vec<u8> {
        value(self.size, self.seed)
    }
}

fn val() -> impl Strategy<Value = Val> {
    (value_size(), any::<u16>()).prop_map(|(size, seed)| Val { size, seed })
}

#[derive(Debug, Clone, Copy)]
enum ScanMode {
    Forward,
    Reverse,
    /// Bits of the pattern say, one step each, next (0) or next_back (1).
    Mixed(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Put(bool, usize, Val),
    Delete(bool, usize),
    Batch(Vec<(bool, usize, Option<Val>)>, bool),
    Get(bool, usize),
    MultiGet(Vec<usize>),
    Range {
        table: bool,
        lo: Bound<usize>,
        hi: Bound<usize>,
        mode: ScanMode,
    },
    Prefix(bool, usize, ScanMode),
    TakeSnapshot,
    DropSnapshot(usize),
    SnapGet(usize, bool, usize),
    SnapRange {
        snap: usize,
        table: bool,
        lo: Bound<usize>,
        hi: Bound<usize>,
        mode: ScanMode,
    },
    SnapPrefix(usize, usize, ScanMode),
    Flush,
    Compact,
    /// A GC pass: `true` takes every sealed segment, `false` one by policy.
    Gc(bool, u8),
    DropReopen,
    CloseReopen,
}

fn bound() -> impl Strategy<Value = Bound<usize>> {
    prop_oneof![
        1 => Just(Bound::Unbounded),
        2 => (0..NUM_KEYS).prop_map(Bound::Included),
        2 => (0..NUM_KEYS).prop_map(Bound::Excluded),
    ]
}

fn scan_mode() -> impl Strategy<Value = ScanMode> {
    prop_oneof![
        Just(ScanMode::Forward),
        Just(ScanMode::Reverse),
        any::<u64>().prop_map(ScanMode::Mixed),
    ]
}

fn key() -> impl Strategy<Value = usize> {
    0..NUM_KEYS
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (any::<bool>(), key(), val()).prop_map(|(t, k, v)| Op::Put(t, k, v)),
        8 => (any::<bool>(), key()).prop_map(|(t, k)| Op::Delete(t, k)),
        8 => (
            prop::collection::vec(
                (any::<bool>(), key(), prop::option::weighted(0.75, val())),
                1..8
            ),
            any::<bool>()
        )
            .prop_map(|(ops, sync)| Op::Batch(ops, sync)),
        10 => (any::<bool>(), key()).prop_map(|(t, k)| Op::Get(t, k)),
        3 => prop::collection::vec(key(), 0..6).prop_map(Op::MultiGet),
        6 => (any::<bool>(), bound(), bound(), scan_mode())
            .prop_map(|(table, lo, hi, mode)| Op::Range { table, lo, hi, mode }),
        3 => (any::<bool>(), 0usize..13, scan_mode()).prop_map(|(t, p, m)| Op::Prefix(t, p, m)),
        3 => Just(Op::TakeSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        4 => (any::<usize>(), any::<bool>(), key()).prop_map(|(s, t, k)| Op::SnapGet(s, t, k)),
        3 => (any::<usize>(), any::<bool>(), bound(), bound(), scan_mode()).prop_map(
            |(snap, table, lo, hi, mode)| Op::SnapRange { snap, table, lo, hi, mode }
        ),
        1 => (any::<usize>(), 0usize..13, scan_mode()).prop_map(|(s, p, m)| Op::SnapPrefix(s, p, m)),
        3 => Just(Op::Flush),
        1 => Just(Op::Compact),
        2 => (any::<bool>(), 0u8..3).prop_map(|(all, p)| Op::Gc(all, p)),
        1 => Just(Op::DropReopen),
        1 => Just(Op::CloseReopen),
    ]
}

fn opts() -> Options {
    Options::default()
        .memtable_size(32 << 10)
        .segment_size(128 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(16 << 10)
        .base_level_size(32 << 10)
        .block_size(256)
        .gc_interval(std::time::Duration::from_millis(2))
}

struct Harness {
    dir: tempfile::TempDir,
    db: Option<Db>,
    table: Option<Table>,
    models: [Model; 2],
    snaps: Vec<(Snapshot, [Model; 2])>,
}

fn show(k: &[u8]) -> String {
    format!("{k:02x?}")
}

/// Keys of `model` within the bounds, ascending; no panics on empty or
/// inverted ranges (the engine must yield nothing for those).
fn expected_range(
    model: &Model,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
) -> VecDeque<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .filter(|(k, _)| {
            let above = match lo {
                Bound::Included(l) => *k >= l,
                Bound::Excluded(l) => *k > l,
                Bound::Unbounded => true,
            };
            let below = match hi {
                Bound::Included(h) => *k <= h,
                Bound::Excluded(h) => *k < h,
                Bound::Unbounded => true,
            };
            above && below
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn expected_prefix(model: &Model, p: &[u8]) -> VecDeque<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .filter(|(k, _)| k.starts_with(p))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Walks `it` in `mode` and compares every item with `expected`.
fn check_scan(
    mut it: wisckey::Iter,
    mut expected: VecDeque<(Vec<u8>, Vec<u8>)>,
    mode: ScanMode,
    what: &str,
) -> Result<(), TestCaseError> {
    let mut step = 0u32;
    loop {
        let back = match mode {
            ScanMode::Forward => false,
            ScanMode::Reverse => true,
            ScanMode::Mixed(bits) => (bits >> (step % 64)) & 1 == 1,
        };
        step += 1;
        let (got, want) = if back {
            (it.next_back(), expected.pop_back())
        } else {
            (it.next(), expected.pop_front())
        };
        match (got, want) {
            (None, None) => break,
            (Some(Ok((k, v))), Some((wk, wv))) => {
                prop_assert!(
                    k == wk,
                    "{what}: step {step} ({}) key {} expected {}",
                    if back { "back" } else { "front" },
                    show(&k),
                    show(&wk)
                );
                prop_assert!(
                    v.as_ref() == wv.as_slice(),
                    "{what}: step {step} key {}: value of {} bytes, expected {} bytes (equal: {})",
                    show(&k),
                    v.len(),
                    wv.len(),
                    v.as_ref() == wv.as_slice()
                );
            }
            (Some(Err(e)), _) => return Err(TestCaseError::fail(format!("{what}: error {e}"))),
            (Some(Ok((k, _))), None) => {
                return Err(TestCaseError::fail(format!(
                    "{what}: step {step} unexpected key {}",
                    show(&k)
                )))
            }
            (None, Some((wk, _))) => {
                return Err(TestCaseError::fail(format!(
                    "{what}: step {step} ended early, missing {}",
                    show(&wk)
                )))
            }
        }
    }
    // A finished iterator stays finished.
    prop_assert!(it.next().is_none(), "{what}: next after the end");
    prop_assert!(it.next_back().is_none(), "{what}: next_back after the end");
    Ok(())
}

fn prefix_of(i: usize) -> Vec<u8> {
    // 0: empty; 1..=3: one byte; 4..=12: two bytes.
    let alphabet = [0x00u8, b'a', 0xff];
    match i {
        0 => Vec::new(),
        1..=3 => vec![alphabet[i - 1]],
        _ => vec![alphabet[(i - 4) / 3], alphabet[(i - 4) % 3]],
    }
}

fn to_bounds(keys: &[Vec<u8>], b: Bound<usize>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(i) => Bound::Included(keys[i].clone()),
        Bound::Excluded(i) => Bound::Excluded(keys[i].clone()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn ok<T>(r: wisckey::Result<T>, what: &str) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Harness {
            dir,
            db: None,
            table: None,
            models: [Model::new(), Model::new()],
            snaps: Vec::new(),
        };
        h.open().unwrap();
        h
    }

    fn open(&mut self) -> Result<(), TestCaseError> {
        let db = ok(Db::open(self.dir.path(), opts()), "open")?;
        let t = ok(db.table("named", TableOptions::ordered()), "table")?;
        self.db = Some(db);
        self.table = Some(t);
        Ok(())
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    fn tab(&self) -> &Table {
        self.table.as_ref().unwrap()
    }

    fn get(&self, named: bool, k: &[u8]) -> wisckey::Result<Option<wisckey::Value>> {
        if named {
            self.tab().get(k)
        } else {
            self.db().get(k)
        }
    }

    fn range(&self, named: bool, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> wisckey::Iter {
        if named {
            self.tab().range((lo, hi))
        } else {
            self.db().range((lo, hi))
        }
    }

    /// Every key of both tables, by point reads and by a full scan.
    fn check_all(&self, keys: &[Vec<u8>], what: &str) -> Result<(), TestCaseError> {
        for named in [false, true] {
            let m = &self.models[named as usize];
            for k in keys {
                let got = ok(self.get(named, k), what)?;
                prop_assert_eq!(
                    got.as_deref(),
                    m.get(k).map(|v| v.as_slice()),
                    "{}: get {} in table {}",
                    what,
                    show(k),
                    named
                );
            }
            let it = self.range(named, Bound::Unbounded, Bound::Unbounded);
            check_scan(
                it,
                expected_range(m, &Bound::Unbounded, &Bound::Unbounded),
                ScanMode::Forward,
                what,
            )?;
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op, keys: &[Vec<u8>]) -> Result<(), TestCaseError> {
        match op {
            Op::Put(named, k, v) => {
                let key = &keys[*k];
                let v = v.bytes();
                if *named {
                    ok(self.tab().put(key, &v), "put")?;
                } else {
                    ok(self.db().put(key, &v), "put")?;
                }
                self.models[*named as usize].insert(key.clone(), v);
            }
            Op::Delete(named, k) => {
                let key = &keys[*k];
                if *named {
                    ok(self.tab().delete(key), "delete")?;
                } else {
                    ok(self.db().delete(key), "delete")?;
                }
                self.models[*named as usize].remove(key);
            }
            Op::Batch(ops, sync) => {
                let mut b = WriteBatch::new();
                for (named, k, v) in ops {
                    let key = &keys[*k];
                    match (v, named) {
                        (Some(v), false) => b.put(key, v.bytes()),
                        (Some(v), true) => b.put_in(self.tab(), key, v.bytes()),
                        (None, false) => b.delete(key),
                        (None, true) => b.delete_in(self.tab(), key),
                    };
                }
                ok(
                    self.db().write(b, WriteOptions::default().sync(*sync)),
                    "batch",
                )?;
                for (named, k, v) in ops {
                    let m = &mut self.models[*named as usize];
                    match v {
                        Some(v) => m.insert(keys[*k].clone(), v.bytes()),
                        None => m.remove(&keys[*k]),
                    };
                }
            }
            Op::Get(named, k) => {
                let got = ok(self.get(*named, &keys[*k]), "get")?;
                prop_assert_eq!(
                    got.as_deref(),
                    self.models[*named as usize]
                        .get(&keys[*k])
                        .map(|v| v.as_slice()),
                    "get {}",
                    show(&keys[*k])
                );
            }
            Op::MultiGet(ks) => {
                let want: Vec<&[u8]> = ks.iter().map(|&i| keys[i].as_slice()).collect();
                let got = ok(self.db().multi_get(&want), "multi_get")?;
                prop_assert_eq!(got.len(), want.len());
                for (g, k) in got.iter().zip(&want) {
                    prop_assert_eq!(
                        g.as_deref(),
                        self.models[0].get(*k).map(|v| v.as_slice()),
                        "multi_get {}",
                        show(k)
                    );
                }
            }
            Op::Range {
                table,
                lo,
                hi,
                mode,
            } => {
                let (lo, hi) = (to_bounds(keys, *lo), to_bounds(keys, *hi));
                let expected = expected_range(&self.models[*table as usize], &lo, &hi);
                let it = self.range(*table, lo.clone(), hi.clone());
                check_scan(it, expected, *mode, &format!("range {lo:02x?}..{hi:02x?}"))?;
            }
            Op::Prefix(named, p, mode) => {
                let p = prefix_of(*p);
                let expected = expected_prefix(&self.models[*named as usize], &p);
                let it = if *named {
                    self.tab().prefix(&p)
                } else {
                    self.db().prefix(&p)
                };
                check_scan(it, expected, *mode, &format!("prefix {}", show(&p)))?;
            }
            Op::TakeSnapshot => {
                let s = self.db().snapshot();
                self.snaps.push((s, self.models.clone()));
            }
            Op::DropSnapshot(i) => {
                if !self.snaps.is_empty() {
                    let n = self.snaps.len();
                    self.snaps.remove(i % n);
                }
            }
            Op::SnapGet(i, named, k) => {
                if self.snaps.is_empty() {
                    return Ok(());
                }
                let (s, m) = &self.snaps[i % self.snaps.len()];
                let key = &keys[*k];
                let got = if *named {
                    ok(s.get_in(self.tab(), key), "snapshot get_in")?
                } else {
                    ok(s.get(key), "snapshot get")?
                };
                prop_assert_eq!(
                    got.as_deref(),
                    m[*named as usize].get(key).map(|v| v.as_slice()),
                    "snapshot get {}",
                    show(key)
                );
                if !*named {
                    let got = ok(s.multi_get(&[key.as_slice()]), "snapshot multi_get")?;
                    prop_assert_eq!(got[0].as_deref(), m[0].get(key).map(|v| v.as_slice()));
                }
            }
            Op::SnapRange {
                snap,
                table,
                lo,
                hi,
                mode,
            } => {
                if self.snaps.is_empty() {
                    return Ok(());
                }
                let (s, m) = &self.snaps[snap % self.snaps.len()];
                let (lo, hi) = (to_bounds(keys, *lo), to_bounds(keys, *hi));
                let expected = expected_range(&m[*table as usize], &lo, &hi);
                let it = if *table {
                    s.range_in(self.tab(), (lo.clone(), hi.clone()))
                } else {
                    s.range((lo.clone(), hi.clone()))
                };
                check_scan(
                    it,
                    expected,
                    *mode,
                    &format!("snapshot range {lo:02x?}..{hi:02x?}"),
                )?;
            }
            Op::SnapPrefix(snap, p, mode) => {
                if self.snaps.is_empty() {
                    return Ok(());
                }
                let (s, m) = &self.snaps[snap % self.snaps.len()];
                let p = prefix_of(*p);
                check_scan(
                    s.prefix(&p),
                    expected_prefix(&m[0], &p),
                    *mode,
                    "snapshot prefix",
                )?;
            }
            Op::Flush => ok(self.db().flush(), "flush")?,
            Op::Compact => ok(self.db().compact(), "compact")?,
            Op::Gc(all, policy) => {
                let policy =
                    [GcPolicy::Tail, GcPolicy::Greedy, GcPolicy::CostBenefit][*policy as usize % 3];
                let opts = GcOptions::default()
                    .policy(policy)
                    .all_sealed(*all)
                    .max_segments(2)
                    .min_garbage_ratio(0.0);
                ok(self.db().gc(opts).map(|_| ()), "gc")?
            }
            Op::DropReopen | Op::CloseReopen => {
                // Snapshots and table handles hold the database open.
                self.snaps.clear();
                self.table = None;
                let db = self.db.take().unwrap();
                if matches!(op, Op::CloseReopen) {
                    ok(db.close(), "close")?;
                } else {
                    drop(db);
                }
                self.open()?;
                self.check_all(keys, "after reopen")?;
            }
        }
        Ok(())
    }
}

fn cases() -> u32 {
    std::env::var("WISCKEY_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn model_matches_engine(ops in prop::collection::vec(op(), 1..80)) {
        let keys = all_keys();
        assert_eq!(keys.len(), NUM_KEYS);
        let mut h = Harness::new();
        for (i, op) in ops.iter().enumerate() {
            h.apply(op, &keys).map_err(|e| TestCaseError::fail(format!("op {i} {op:?}: {e}")))?;
        }
        h.check_all(&keys, "at the end")?;
        // And once more from disk.
        h.apply(&Op::CloseReopen, &keys)?;
    }
}

/// A fixed sequence that crosses every threshold and reopen path at least
/// once, so a regression shows even with `WISCKEY_MODEL_CASES=0`.
#[test]
fn model_fixed_sequence() {
    let keys = all_keys();
    let mut h = Harness::new();
    let mut seq = Vec::new();
    for i in 0..NUM_KEYS {
        let size = [0, 7, 1023, 1024, 1025, 5000, 40_000][i % 7];
        seq.push(Op::Put(
            i % 2 == 0,
            i,
            Val {
                size,
                seed: i as u16,
            },
        ));
    }
    seq.push(Op::TakeSnapshot);
    for i in (0..NUM_KEYS).step_by(3) {
        seq.push(Op::Delete(i % 2 == 0, i));
    }
    seq.push(Op::Put(
        false,
        5,
        Val {
            size: 1 << 20,
            seed: 9,
        },
    ));
    seq.push(Op::Flush);
    seq.push(Op::SnapRange {
        snap: 0,
        table: false,
        lo: Bound::Unbounded,
        hi: Bound::Unbounded,
        mode: ScanMode::Mixed(0xa5a5),
    });
    seq.push(Op::SnapRange {
        snap: 0,
        table: true,
        lo: Bound::Included(3),
        hi: Bound::Excluded(30),
        mode: ScanMode::Reverse,
    });
    seq.push(Op::Compact);
    seq.push(Op::Gc(true, 0));
    seq.push(Op::SnapPrefix(0, 2, ScanMode::Forward));
    seq.push(Op::Range {
        table: false,
        lo: Bound::Excluded(2),
        hi: Bound::Included(39),
        mode: ScanMode::Mixed(0x5a5a),
    });
    seq.push(Op::DropReopen);
    for p in 0..13 {
        seq.push(Op::Prefix(p % 2 == 0, p, ScanMode::Reverse));
    }
    seq.push(Op::CloseReopen);
    for op in &seq {
        h.apply(op, &keys).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    h.check_all(&keys, "fixed sequence end").unwrap();
}
