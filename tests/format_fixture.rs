//! A database written by an earlier format opens with today's code.
//!
//! `tests/fixtures/format-v1/` was written by `write_fixture` below, run
//! with the code of main at 7240c33 (before the database format version
//! and value compression): the default table, an ordered table "t" and an
//! unordered table "u", inline and pointer values, deletions, a GC pass
//! (so GC segments and their hints), SSTables, and a last round of writes
//! that is only in the vLog (the memtable was never flushed). The test
//! copies it to a temporary directory, opens it and checks every key
//! against [`expected`], which `write_fixture` also used.
//!
//! To write it again (only when the fixture's format is the one wanted):
//! `WISCKEY_FIXTURE_OUT=/some/empty/dir cargo test --test format_fixture
//! -- --ignored write_fixture`.

use std::collections::BTreeMap;
use std::path::Path;
use wisckey::{Db, GcOptions, Options, Table, TableOptions};

const FIXTURE: &str = "tests/fixtures/format-v1";

/// The options the fixture was written with: small segments so that there
/// are several and GC had some to take, no disk reserve (it is a large
/// file of zeros), no background GC (the layout is what the steps made).
fn options() -> Options {
    Options::default()
        .segment_size(32 << 10)
        .disk_reserve(false)
        .background_gc(false)
}

/// A value of `len` bytes naming its table, key and round.
fn value(table: &str, k: u32, round: u32, len: usize) -> Vec<u8> {
    let mut v = format!("{table}/{k}/{round}:").into_bytes();
    let mut x = u64::from(k) << 32 | u64::from(round) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v.truncate(len);
    v
}

/// The key's value length: pointer values (over the 1024-byte threshold)
/// for every third key, inline ones for the others.
fn len_of(k: u32) -> usize {
    if k.is_multiple_of(3) {
        1500
    } else {
        40 + k as usize
    }
}

fn key(k: u32) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

/// One round of writes to `table` (name `name`) and what the round leaves
/// in `model`: keys `0..n` set, then every seventh deleted.
fn round(t: &Table, name: &str, r: u32, n: u32, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for k in 0..n {
        let v = value(name, k, r, len_of(k));
        t.put(key(k), &v).unwrap();
        model.insert(key(k), v);
    }
    for k in (r..n).step_by(7) {
        t.delete(key(k)).unwrap();
        model.remove(&key(k));
    }
}

/// What the fixture holds, per table name ("" is the default table), after
/// the steps of `write_fixture` (each step's writes applied in order).
fn expected() -> BTreeMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for name in ["", "t", "u"] {
        let mut m = BTreeMap::new();
        let mut sink = |r: u32, n: u32| {
            for k in 0..n {
                m.insert(key(k), value(name, k, r, len_of(k)));
            }
            for k in (r..n).step_by(7) {
                m.remove(&key(k));
            }
        };
        sink(1, 60);
        sink(2, 60);
        sink(3, 30);
        out.insert(name, m);
    }
    out
}

fn tables(db: &Db) -> Vec<(&'static str, Table)> {
    vec![
        ("", db.default_table()),
        ("t", db.table("t", TableOptions::ordered()).unwrap()),
        ("u", db.table("u", TableOptions::unordered()).unwrap()),
    ]
}

#[test]
#[ignore = "writes the fixture; run by hand with WISCKEY_FIXTURE_OUT"]
fn write_fixture() {
    let out =
        std::env::var("WISCKEY_FIXTURE_OUT").expect("WISCKEY_FIXTURE_OUT names the directory");
    let db = Db::open(&out, options()).unwrap();
    let mut models = BTreeMap::new();
    let ts = tables(&db);
    // Round 1, flushed into SSTables; round 2 overwrites it all (garbage for
    // GC), flushed too; one GC pass over every sealed segment.
    for r in [1, 2] {
        for (name, t) in &ts {
            round(t, name, r, 60, models.entry(*name).or_default());
        }
        db.flush().unwrap();
    }
    let report = db.gc(GcOptions::default().all_sealed(true)).unwrap();
    assert!(
        !report.victims.is_empty() && report.records_moved > 0,
        "{report:?}"
    );
    // Round 3 stays in the memtable: only the vLog has it.
    for (name, t) in &ts {
        round(t, name, 3, 30, models.entry(*name).or_default());
    }
    drop(ts);
    db.close().unwrap();
    assert_eq!(models, expected());
}

/// Copies the fixture into a fresh directory (the test must not change the
/// committed files).
fn copy_fixture(to: &Path) {
    for e in std::fs::read_dir(FIXTURE).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn check(db: &Db, ctx: &str) {
    for (name, t) in tables(db) {
        let want = &expected()[name];
        for k in 0..60 {
            let got = t.get(key(k)).unwrap();
            assert_eq!(
                got.as_deref(),
                want.get(&key(k)).map(|v| &v[..]),
                "{ctx}: table {name:?} key {k}"
            );
        }
        if name != "u" {
            let all: Vec<_> = t.iter().map(|kv| kv.unwrap()).collect();
            let all: BTreeMap<_, _> = all.into_iter().map(|(k, v)| (k, v.to_vec())).collect();
            assert_eq!(&all, want, "{ctx}: scan of table {name:?}");
        }
    }
}

#[test]
fn a_database_of_format_1_opens_with_every_key() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let db = Db::open_read_only(dir.path(), options()).unwrap();
    check(&db, "read-only open");
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    check(&db, "first writable open");
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    // The old data survives a flush, a GC pass and a reopen by today's code.
    db.flush().unwrap();
    db.gc(GcOptions::default().all_sealed(true)).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    check(&db, "after flush, GC and reopen");
}
