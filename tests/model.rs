//! Model test: random operation sequences against a `BTreeMap` per table
//! (the default table, one named ordered table and one unordered table),
//! with snapshots, flushes, compactions, GC passes, table drops (the name
//! made again, empty), checkpoints (opened and checked against the
//! models, linked or copied) and reopens (after
//! `close`, after a plain drop, and with the unordered table's hint files
//! removed or damaged, so that its keydir is rebuilt from hints or from
//! scans) in between. Unclean stops are the crash and power-loss tests'.
//!
//! `WISCKEY_MODEL_CASES` sets the number of proptest cases (default 256).

use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use wisckey::{
    Db, Error, GcOptions, GcPolicy, Options, Snapshot, Table, TableOptions, ValueCompression,
    WriteBatch, WriteOptions,
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

/// Table indexes: the default table, the named ordered table `named`, the
/// unordered table `blobs`.
const DEFAULT: usize = 0;
const NAMED: usize = 1;
const UNORDERED: usize = 2;
const NUM_TABLES: usize = 3;

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

/// What happens to the hint files across a reopen.
#[derive(Debug, Clone, Copy)]
enum Hints {
    /// Every hint file is deleted: the keydir is rebuilt by scanning.
    Remove,
    /// A byte in the middle of every hint file is flipped.
    Damage,
    /// Every hint file loses its second half.
    Truncate,
}

/// Tables are indexes: [`DEFAULT`], [`NAMED`], [`UNORDERED`].
#[derive(Debug, Clone)]
enum Op {
    Put(usize, usize, Val),
    Delete(usize, usize),
    Batch(Vec<(usize, usize, Option<Val>)>, bool),
    Get(usize, usize),
    /// Compare-and-swap: expect the model's value (`true`) or a wrong one
    /// (`false`: a value the key cannot have, or absence when it has one);
    /// the new value (`None`: delete).
    Cas(usize, usize, bool, Option<Val>),
    /// `fetch_update` that appends one byte (or deletes a key that ends in 0).
    FetchUpdate(usize, usize),
    /// `delete_range` over the bounds (refused on the unordered table).
    DeleteRange(usize, Bound<usize>, Bound<usize>),
    /// A seek (`false`) or seek_back (`true`) of a full iterator to a key,
    /// then the next item from that end (and a `get_opt` of the key with
    /// no cache fill and no checksum check).
    Seek(usize, usize, bool),
    MultiGet(usize, Vec<usize>),
    Range {
        table: usize,
        lo: Bound<usize>,
        hi: Bound<usize>,
        mode: ScanMode,
    },
    Prefix(usize, usize, ScanMode),
    TakeSnapshot,
    DropSnapshot(usize),
    SnapGet(usize, usize, usize),
    SnapRange {
        snap: usize,
        table: usize,
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
    /// Close, do this to the hint files, reopen.
    ReopenHints(Hints),
    /// Drops a named table (NAMED or UNORDERED) and makes it again, empty,
    /// with the same kind.
    DropTable(usize),
    /// A checkpoint (links, or copies with `true`), opened and checked
    /// against the models.
    Checkpoint(bool),
    /// Train a value dictionary for [`NAMED`] (false) or [`UNORDERED`]
    /// (true), both of which compress their values.
    TrainDictionary(bool),
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

fn table() -> impl Strategy<Value = usize> {
    0..NUM_TABLES
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (table(), key(), val()).prop_map(|(t, k, v)| Op::Put(t, k, v)),
        8 => (table(), key()).prop_map(|(t, k)| Op::Delete(t, k)),
        8 => (
            prop::collection::vec(
                (table(), key(), prop::option::weighted(0.75, val())),
                1..8
            ),
            any::<bool>()
        )
            .prop_map(|(ops, sync)| Op::Batch(ops, sync)),
        10 => (table(), key()).prop_map(|(t, k)| Op::Get(t, k)),
        4 => (table(), key(), any::<bool>(), prop::option::weighted(0.8, val()))
            .prop_map(|(t, k, right, v)| Op::Cas(t, k, right, v)),
        2 => (table(), key()).prop_map(|(t, k)| Op::FetchUpdate(t, k)),
        2 => (table(), bound(), bound()).prop_map(|(t, lo, hi)| Op::DeleteRange(t, lo, hi)),
        2 => (table(), key(), any::<bool>()).prop_map(|(t, k, b)| Op::Seek(t, k, b)),
        3 => (table(), prop::collection::vec(key(), 0..6)).prop_map(|(t, k)| Op::MultiGet(t, k)),
        6 => (table(), bound(), bound(), scan_mode())
            .prop_map(|(table, lo, hi, mode)| Op::Range { table, lo, hi, mode }),
        3 => (table(), 0usize..13, scan_mode()).prop_map(|(t, p, m)| Op::Prefix(t, p, m)),
        3 => Just(Op::TakeSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        4 => (any::<usize>(), table(), key()).prop_map(|(s, t, k)| Op::SnapGet(s, t, k)),
        3 => (any::<usize>(), table(), bound(), bound(), scan_mode()).prop_map(
            |(snap, table, lo, hi, mode)| Op::SnapRange { snap, table, lo, hi, mode }
        ),
        1 => (any::<usize>(), 0usize..13, scan_mode()).prop_map(|(s, p, m)| Op::SnapPrefix(s, p, m)),
        3 => Just(Op::Flush),
        1 => any::<bool>().prop_map(Op::TrainDictionary),
        1 => Just(Op::Compact),
        2 => (any::<bool>(), 0u8..3).prop_map(|(all, p)| Op::Gc(all, p)),
        1 => Just(Op::DropReopen),
        1 => Just(Op::CloseReopen),
        1 => (1usize..NUM_TABLES).prop_map(Op::DropTable),
        1 => any::<bool>().prop_map(Op::Checkpoint),
        1 => prop_oneof![Just(Hints::Remove), Just(Hints::Damage), Just(Hints::Truncate)]
            .prop_map(Op::ReopenHints),
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
    /// The named ordered table and the unordered table.
    tables: Option<[Table; 2]>,
    models: [Model; NUM_TABLES],
    snaps: Vec<(Snapshot, [Model; NUM_TABLES])>,
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

/// A full iteration of an unordered table: every live pair, in no order.
fn check_unordered_all(
    it: wisckey::Iter,
    m: &BTreeMap<Vec<u8>, Vec<u8>>,
    what: &str,
) -> Result<(), TestCaseError> {
    let mut got = ok(it.collect::<Result<Vec<_>, _>>(), what)?;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(Vec<u8>, Vec<u8>)> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    prop_assert_eq!(got.len(), want.len(), "{}: unordered iter length", what);
    for ((k, v), (wk, wv)) in got.iter().zip(&want) {
        prop_assert!(
            k == wk && v.as_ref() == wv.as_slice(),
            "{}: unordered iter at {}",
            what,
            show(wk)
        );
    }
    Ok(())
}

/// A key-only walk and a lazy walk over the same range as `expected`, taken
/// the way `mode` says; the lazy walk's values read for every other entry.
fn check_keys(
    mut keys: wisckey::Keys,
    mut lazy: wisckey::Entries,
    mut expected: VecDeque<(Vec<u8>, Vec<u8>)>,
    mode: ScanMode,
    what: &str,
) -> Result<(), TestCaseError> {
    for step in 0.. {
        let back = match mode {
            ScanMode::Forward => false,
            ScanMode::Reverse => true,
            ScanMode::Mixed(bits) => (bits >> (step % 64)) & 1 == 1,
        };
        let (k, e, want) = if back {
            (keys.next_back(), lazy.next_back(), expected.pop_back())
        } else {
            (keys.next(), lazy.next(), expected.pop_front())
        };
        match (k, e, want) {
            (None, None, None) => return Ok(()),
            (Some(Ok(k)), Some(Ok(e)), Some((wk, wv))) => {
                prop_assert!(
                    k == wk,
                    "{}: keys step {} got {} want {}",
                    what,
                    step,
                    show(&k),
                    show(&wk)
                );
                prop_assert!(e.key() == wk.as_slice(), "{}: entries step {}", what, step);
                prop_assert_eq!(
                    e.value_len() as usize,
                    wv.len(),
                    "{}: entry value_len",
                    what
                );
                if step % 2 == 0 {
                    let v = ok(e.value(), what)?;
                    prop_assert!(
                        v.as_ref() == wv.as_slice(),
                        "{}: entry value of {}",
                        what,
                        show(&wk)
                    );
                }
            }
            (k, e, w) => {
                return Err(TestCaseError::fail(format!(
                    "{what}: step {step}: keys {:?} entries {:?} expected {:?}",
                    k.map(|r| r.map(|k| show(&k))),
                    e.map(|r| r.map(|e| show(e.key()))),
                    w.map(|(k, _)| show(&k))
                )))
            }
        }
    }
    Ok(())
}

/// An iterator over an unordered table: one `Err(Unsupported)`, whichever
/// end is asked first, and then nothing from either end.
fn check_unsupported(
    mut it: wisckey::Iter,
    mode: ScanMode,
    what: &str,
) -> Result<(), TestCaseError> {
    let back = match mode {
        ScanMode::Forward => false,
        ScanMode::Reverse => true,
        ScanMode::Mixed(bits) => bits & 1 == 1,
    };
    let first = if back { it.next_back() } else { it.next() };
    prop_assert!(
        matches!(first, Some(Err(Error::Unsupported(_)))),
        "{}: expected Unsupported, got {:?}",
        what,
        first.map(|r| r.map(|(k, _)| show(&k)))
    );
    prop_assert!(it.next().is_none(), "{}: next after Unsupported", what);
    prop_assert!(
        it.next_back().is_none(),
        "{}: next_back after Unsupported",
        what
    );
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
            tables: None,
            models: Default::default(),
            snaps: Vec::new(),
        };
        h.open().unwrap();
        h
    }

    fn open(&mut self) -> Result<(), TestCaseError> {
        let db = ok(Db::open(self.dir.path(), opts()), "open")?;
        // The named tables compress their values (the default table does
        // not): every operation, GC and reopen runs over compressed values,
        // and values that do not shrink (the tiny ones) are stored raw.
        let zstd = ValueCompression::Zstd { level: 1 };
        let named = ok(
            db.table("named", TableOptions::ordered().value_compression(zstd)),
            "table",
        )?;
        let blobs = ok(
            db.table("blobs", TableOptions::unordered().value_compression(zstd)),
            "table",
        )?;
        self.db = Some(db);
        self.tables = Some([named, blobs]);
        Ok(())
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    /// The handle of a named table ([`NAMED`] or [`UNORDERED`]).
    fn tab(&self, t: usize) -> &Table {
        &self.tables.as_ref().unwrap()[t - 1]
    }

    fn get(&self, t: usize, k: &[u8]) -> wisckey::Result<Option<wisckey::Value>> {
        if t == DEFAULT {
            self.db().get(k)
        } else {
            self.tab(t).get(k)
        }
    }

    fn multi_get(&self, t: usize, ks: &[&[u8]]) -> wisckey::Result<Vec<Option<wisckey::Value>>> {
        if t == DEFAULT {
            self.db().multi_get(ks)
        } else {
            self.tab(t).multi_get(ks)
        }
    }

    /// The table `t` as a handle (the default table's too).
    fn tab_or_default(&self, t: usize) -> Table {
        if t == DEFAULT {
            self.db().default_table()
        } else {
            self.tab(t).clone()
        }
    }

    fn range(&self, t: usize, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> wisckey::Iter {
        if t == DEFAULT {
            self.db().range((lo, hi))
        } else {
            self.tab(t).range((lo, hi))
        }
    }

    /// Every key of every table: by point reads, by one multi_get, and by a
    /// full scan (the unordered table: its key list, and its refusal to scan).
    fn check_all(&self, keys: &[Vec<u8>], what: &str) -> Result<(), TestCaseError> {
        for t in 0..NUM_TABLES {
            let m = &self.models[t];
            for k in keys {
                let len = ok(self.tab_or_default(t).value_len(k), what)?;
                prop_assert_eq!(
                    len,
                    m.get(k).map(|v| v.len() as u32),
                    "{}: value_len {} in table {}",
                    what,
                    show(k),
                    t
                );
                let has = ok(self.tab_or_default(t).contains_key(k), what)?;
                prop_assert_eq!(has, m.contains_key(k), "{}: contains_key {}", what, show(k));
                let got = ok(self.get(t, k), what)?;
                prop_assert_eq!(
                    got.as_deref(),
                    m.get(k).map(|v| v.as_slice()),
                    "{}: get {} in table {}",
                    what,
                    show(k),
                    t
                );
            }
            let all: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
            let got = ok(self.multi_get(t, &all), what)?;
            prop_assert_eq!(got.len(), all.len());
            for (g, k) in got.iter().zip(&all) {
                prop_assert_eq!(
                    g.as_deref(),
                    m.get(*k).map(|v| v.as_slice()),
                    "{}: multi_get {} in table {}",
                    what,
                    show(k),
                    t
                );
            }
            let it = self.range(t, Bound::Unbounded, Bound::Unbounded);
            if t == UNORDERED {
                check_unordered_all(it, m, what)?;
                let mut listed = ok(self.tab(t).keys().collect::<Result<Vec<_>, _>>(), what)?;
                listed.sort();
                let want: Vec<Vec<u8>> = m.keys().cloned().collect();
                prop_assert_eq!(listed, want, "{}: keys of the unordered table", what);
            } else {
                check_scan(
                    it,
                    expected_range(m, &Bound::Unbounded, &Bound::Unbounded),
                    ScanMode::Forward,
                    what,
                )?;
            }
        }
        Ok(())
    }

    /// Closes (or drops) the database, does `hints` to the hint files,
    /// reopens it and checks every table.
    fn reopen(
        &mut self,
        close: bool,
        hints: Option<Hints>,
        keys: &[Vec<u8>],
    ) -> Result<(), TestCaseError> {
        // Snapshots and table handles hold the database open.
        self.snaps.clear();
        self.tables = None;
        let db = self.db.take().unwrap();
        if close {
            ok(db.close(), "close")?;
        } else {
            drop(db);
        }
        if let Some(hints) = hints {
            for e in std::fs::read_dir(self.dir.path()).unwrap() {
                let p = e.unwrap().path();
                if !p.to_string_lossy().ends_with(".hint") {
                    continue;
                }
                match hints {
                    Hints::Remove => std::fs::remove_file(&p).unwrap(),
                    Hints::Damage => {
                        let mut b = std::fs::read(&p).unwrap();
                        let n = b.len();
                        b[n / 2] ^= 0x10;
                        std::fs::write(&p, b).unwrap();
                    }
                    Hints::Truncate => {
                        let b = std::fs::read(&p).unwrap();
                        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
                    }
                }
            }
        }
        self.open()?;
        self.check_all(keys, "after reopen")
    }

    fn apply(&mut self, op: &Op, keys: &[Vec<u8>]) -> Result<(), TestCaseError> {
        match op {
            Op::Put(t, k, v) => {
                let key = &keys[*k];
                let v = v.bytes();
                if *t == DEFAULT {
                    ok(self.db().put(key, &v), "put")?;
                } else {
                    ok(self.tab(*t).put(key, &v), "put")?;
                }
                self.models[*t].insert(key.clone(), v);
            }
            Op::Cas(t, k, right, new) => {
                let key = &keys[*k];
                let current = self.models[*t].get(key).cloned();
                let expected = match (right, &current) {
                    (true, c) => c.clone(),
                    (false, None) => Some(b"never written".to_vec()),
                    (false, Some(_)) => None,
                };
                let new_bytes = new.as_ref().map(Val::bytes);
                let r = ok(
                    self.tab_or_default(*t).compare_and_swap(
                        key,
                        expected.as_deref(),
                        new_bytes.as_deref(),
                    ),
                    "compare_and_swap",
                )?;
                if *right {
                    prop_assert!(r.is_ok(), "cas with the right value failed: {:?}", r);
                    match new_bytes {
                        Some(v) => self.models[*t].insert(key.clone(), v),
                        None => self.models[*t].remove(key),
                    };
                } else {
                    let e = r.err();
                    prop_assert!(e.is_some(), "cas with a wrong value succeeded");
                    let got = e.and_then(|e| e.current).map(|v| v.to_vec());
                    prop_assert_eq!(got, current, "cas error's current value");
                }
            }
            Op::FetchUpdate(t, k) => {
                let key = &keys[*k];
                let f = |old: Option<&[u8]>| match old {
                    Some(o) if o.last() == Some(&0) => None,
                    Some(o) => Some([o, &[0u8]].concat()),
                    None => Some(vec![1u8]),
                };
                let before = ok(self.tab_or_default(*t).fetch_update(key, f), "fetch_update")?;
                let want = self.models[*t].get(key).cloned();
                prop_assert_eq!(
                    before.map(|v| v.to_vec()),
                    want.clone(),
                    "fetch_update's old value"
                );
                match f(want.as_deref()) {
                    Some(v) => self.models[*t].insert(key.clone(), v),
                    None => self.models[*t].remove(key),
                };
            }
            Op::Seek(t, k, back) => {
                let key = &keys[*k];
                let tab = self.tab_or_default(*t);
                let ro = wisckey::ReadOptions::default()
                    .fill_cache(false)
                    .verify_checksums(false);
                let got = ok(tab.get_opt(key, &ro), "get_opt")?;
                prop_assert_eq!(
                    got.as_deref(),
                    self.models[*t].get(key).map(|v| v.as_slice()),
                    "get_opt {}",
                    show(key)
                );
                let mut it = tab.iter();
                if *t == UNORDERED {
                    it.seek(key);
                    prop_assert!(
                        matches!(it.next(), Some(Err(Error::Unsupported(_)))),
                        "unordered seek"
                    );
                    return Ok(());
                }
                let m = &self.models[*t];
                let (got, want) = if *back {
                    it.seek_back(key);
                    (it.next_back(), m.range(..=key.clone()).next_back())
                } else {
                    it.seek(key);
                    (it.next(), m.range(key.clone()..).next())
                };
                let got = got.transpose();
                let got = ok(got, "seek")?;
                prop_assert_eq!(
                    got.map(|(k, v)| (k, v.to_vec())),
                    want.map(|(k, v)| (k.clone(), v.clone())),
                    "seek (back: {}) to {} in table {}",
                    back,
                    show(key),
                    t
                );
            }
            Op::DeleteRange(t, lo, hi) => {
                let (lo, hi) = (to_bounds(keys, *lo), to_bounds(keys, *hi));
                let r = self
                    .tab_or_default(*t)
                    .delete_range((lo.clone(), hi.clone()));
                if *t == UNORDERED {
                    prop_assert!(
                        matches!(r, Err(Error::Unsupported(_))),
                        "unordered delete_range: {:?}",
                        r
                    );
                } else {
                    ok(r, "delete_range")?;
                    let gone: Vec<Vec<u8>> = expected_range(&self.models[*t], &lo, &hi)
                        .into_iter()
                        .map(|(k, _)| k)
                        .collect();
                    for k in gone {
                        self.models[*t].remove(&k);
                    }
                }
            }
            Op::Delete(t, k) => {
                let key = &keys[*k];
                if *t == DEFAULT {
                    ok(self.db().delete(key), "delete")?;
                } else {
                    ok(self.tab(*t).delete(key), "delete")?;
                }
                self.models[*t].remove(key);
            }
            Op::Batch(ops, sync) => {
                let mut b = WriteBatch::new();
                for (t, k, v) in ops {
                    let key = &keys[*k];
                    match (v, *t == DEFAULT) {
                        (Some(v), true) => b.put(key, v.bytes()),
                        (Some(v), false) => b.put_in(self.tab(*t), key, v.bytes()),
                        (None, true) => b.delete(key),
                        (None, false) => b.delete_in(self.tab(*t), key),
                    };
                }
                ok(
                    self.db().write(b, WriteOptions::default().sync(*sync)),
                    "batch",
                )?;
                for (t, k, v) in ops {
                    let m = &mut self.models[*t];
                    match v {
                        Some(v) => m.insert(keys[*k].clone(), v.bytes()),
                        None => m.remove(&keys[*k]),
                    };
                }
            }
            Op::Get(t, k) => {
                let got = ok(self.get(*t, &keys[*k]), "get")?;
                prop_assert_eq!(
                    got.as_deref(),
                    self.models[*t].get(&keys[*k]).map(|v| v.as_slice()),
                    "get {} in table {}",
                    show(&keys[*k]),
                    t
                );
            }
            Op::MultiGet(t, ks) => {
                let want: Vec<&[u8]> = ks.iter().map(|&i| keys[i].as_slice()).collect();
                let got = ok(self.multi_get(*t, &want), "multi_get")?;
                prop_assert_eq!(got.len(), want.len());
                for (g, k) in got.iter().zip(&want) {
                    prop_assert_eq!(
                        g.as_deref(),
                        self.models[*t].get(*k).map(|v| v.as_slice()),
                        "multi_get {} in table {}",
                        show(k),
                        t
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
                let what = format!("range {lo:02x?}..{hi:02x?} in table {table}");
                let it = self.range(*table, lo.clone(), hi.clone());
                let full = matches!((&lo, &hi), (Bound::Unbounded, Bound::Unbounded));
                if *table == UNORDERED && full {
                    check_unordered_all(it, &self.models[*table], &what)?;
                } else if *table == UNORDERED {
                    check_unsupported(it, *mode, &what)?;
                } else {
                    let expected = expected_range(&self.models[*table], &lo, &hi);
                    check_scan(it, expected.clone(), *mode, &what)?;
                    // The key-only and lazy walks see the same keys, from
                    // the same ends.
                    let t = self.tab_or_default(*table);
                    let keys_it = t.range_keys((lo.clone(), hi.clone()));
                    let lazy = t.entries((lo.clone(), hi.clone()));
                    check_keys(keys_it, lazy, expected, *mode, &what)?;
                }
            }
            Op::Prefix(t, p, mode) => {
                let p = prefix_of(*p);
                let what = format!("prefix {} in table {t}", show(&p));
                let it = if *t == DEFAULT {
                    self.db().prefix(&p)
                } else {
                    self.tab(*t).prefix(&p)
                };
                if *t == UNORDERED {
                    check_unsupported(it, *mode, &what)?;
                } else {
                    check_scan(it, expected_prefix(&self.models[*t], &p), *mode, &what)?;
                }
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
            Op::SnapGet(i, t, k) => {
                if self.snaps.is_empty() {
                    return Ok(());
                }
                let (s, m) = &self.snaps[i % self.snaps.len()];
                let key = &keys[*k];
                if *t == UNORDERED {
                    let got = ok(
                        s.multi_get_in(self.tab(*t), &[key.as_slice()]),
                        "snapshot multi_get_in",
                    )?;
                    prop_assert_eq!(
                        got[0].as_deref(),
                        m[*t].get(key).map(|v| v.as_slice()),
                        "snapshot multi_get_in unordered"
                    );
                }
                let got = if *t == DEFAULT {
                    ok(s.get(key), "snapshot get")?
                } else {
                    ok(s.get_in(self.tab(*t), key), "snapshot get_in")?
                };
                prop_assert_eq!(
                    got.as_deref(),
                    m[*t].get(key).map(|v| v.as_slice()),
                    "snapshot get {}",
                    show(key)
                );
                if *t == DEFAULT {
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
                let what = format!("snapshot range {lo:02x?}..{hi:02x?} in table {table}");
                let it = if *table == DEFAULT {
                    s.range((lo.clone(), hi.clone()))
                } else {
                    s.range_in(self.tab(*table), (lo.clone(), hi.clone()))
                };
                let full = matches!((&lo, &hi), (Bound::Unbounded, Bound::Unbounded));
                if *table == UNORDERED && full {
                    check_unordered_all(it, &m[*table], &what)?;
                } else if *table == UNORDERED {
                    check_unsupported(it, *mode, &what)?;
                } else {
                    let expected = expected_range(&m[*table], &lo, &hi);
                    check_scan(it, expected, *mode, &what)?;
                }
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
            Op::TrainDictionary(unordered) => {
                let t = self.tab(if *unordered { UNORDERED } else { NAMED });
                match t.train_dictionary() {
                    // Too few values to train from is the only refusal.
                    Ok(_) | Err(Error::InvalidArgument(_)) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("train_dictionary: {e}"))),
                }
            }
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
            Op::DropReopen => self.reopen(false, None, keys)?,
            Op::CloseReopen => self.reopen(true, None, keys)?,
            Op::ReopenHints(hints) => self.reopen(true, Some(*hints), keys)?,
            Op::DropTable(t) => {
                let (name, opts) = if *t == NAMED {
                    ("named", TableOptions::ordered())
                } else {
                    ("blobs", TableOptions::unordered())
                };
                ok(self.db().drop_table(name), "drop_table")?;
                let r = self.tab(*t).get(&keys[0]);
                prop_assert!(
                    matches!(r, Err(Error::InvalidArgument(_))),
                    "a dropped table's handle still reads"
                );
                let fresh = ok(self.db().table(name, opts), "table after a drop")?;
                self.tables.as_mut().unwrap()[*t - 1] = fresh;
                self.models[*t].clear();
                // Snapshots read the new table (by the handle), which had
                // nothing at their sequence numbers.
                for (_, m) in &mut self.snaps {
                    m[*t].clear();
                }
            }
            Op::Checkpoint(copy) => {
                let out = tempfile::tempdir().unwrap();
                let dir = out.path().join("cp");
                let (info, snap) = ok(
                    self.db().checkpoint_with_snapshot(
                        &dir,
                        wisckey::CheckpointOptions::default().hard_links(!copy),
                    ),
                    "checkpoint",
                )?;
                prop_assert_eq!(info.last_sequence, snap.sequence());
                drop(snap);
                let db = ok(Db::open(&dir, opts()), "open the checkpoint")?;
                let named = ok(db.table("named", TableOptions::ordered()), "table")?;
                let blobs = ok(db.table("blobs", TableOptions::unordered()), "table")?;
                let view = Harness {
                    dir: out,
                    db: Some(db),
                    tables: Some([named, blobs]),
                    models: self.models.clone(),
                    snaps: Vec::new(),
                };
                view.check_all(keys, "in a checkpoint")?;
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
            i % NUM_TABLES,
            i,
            Val {
                size,
                seed: i as u16,
            },
        ));
    }
    seq.push(Op::TakeSnapshot);
    for i in (0..NUM_KEYS).step_by(3) {
        seq.push(Op::Delete((i + 1) % NUM_TABLES, i));
    }
    for t in [DEFAULT, UNORDERED] {
        seq.push(Op::Put(
            t,
            5,
            Val {
                size: 1 << 20,
                seed: 9,
            },
        ));
    }
    // One batch over all three tables, deletes included.
    seq.push(Op::Batch(
        (0..12)
            .map(|i| {
                let v = (i % 4 != 3).then_some(Val {
                    size: [3, 2000, 70_000][i % 3],
                    seed: 100 + i as u16,
                });
                (i % NUM_TABLES, i * 3, v)
            })
            .collect(),
        true,
    ));
    seq.push(Op::MultiGet(UNORDERED, vec![0, 3, 5, 6, 9, 39, 5]));
    seq.push(Op::Flush);
    seq.push(Op::SnapRange {
        snap: 0,
        table: DEFAULT,
        lo: Bound::Unbounded,
        hi: Bound::Unbounded,
        mode: ScanMode::Mixed(0xa5a5),
    });
    seq.push(Op::SnapRange {
        snap: 0,
        table: NAMED,
        lo: Bound::Included(3),
        hi: Bound::Excluded(30),
        mode: ScanMode::Reverse,
    });
    seq.push(Op::SnapRange {
        snap: 0,
        table: UNORDERED,
        lo: Bound::Unbounded,
        hi: Bound::Excluded(30),
        mode: ScanMode::Reverse,
    });
    seq.push(Op::SnapGet(0, UNORDERED, 5));
    seq.push(Op::Compact);
    seq.push(Op::Gc(true, 0));
    seq.push(Op::SnapPrefix(0, 2, ScanMode::Forward));
    seq.push(Op::Range {
        table: DEFAULT,
        lo: Bound::Excluded(2),
        hi: Bound::Included(39),
        mode: ScanMode::Mixed(0x5a5a),
    });
    seq.push(Op::DropReopen);
    for p in 0..13 {
        seq.push(Op::Prefix(p % NUM_TABLES, p, ScanMode::Reverse));
    }
    seq.push(Op::CloseReopen);
    for i in 0..NUM_KEYS {
        seq.push(Op::Put(
            UNORDERED,
            i,
            Val {
                size: 5000 + i,
                seed: 200 + i as u16,
            },
        ));
    }
    seq.push(Op::Gc(true, 1));
    seq.push(Op::ReopenHints(Hints::Damage));
    seq.push(Op::ReopenHints(Hints::Truncate));
    seq.push(Op::Delete(UNORDERED, 7));
    seq.push(Op::Gc(false, 2));
    seq.push(Op::ReopenHints(Hints::Remove));
    for op in &seq {
        h.apply(op, &keys).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    h.check_all(&keys, "fixed sequence end").unwrap();
}
