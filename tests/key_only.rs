//! Key-only reads never touch the vLog: `keys()`, `range_keys`,
//! `prefix_keys` (both directions), `contains_key`, `value_len` and the
//! lazy `entries` walk (until a value is asked for) add nothing to
//! `Stats::vlog_bytes_read`, while the value-reading calls do. Also:
//! iterator `seek` / `seek_back`, and the unordered table's full walk.

use std::collections::BTreeMap;
use wisckey::{Db, Error, Options, TableOptions};

fn key(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// Values above the separation threshold for even keys (in the vLog),
/// small ones (inline in the index) for odd keys.
fn value(i: u32) -> Vec<u8> {
    let len = if i.is_multiple_of(2) {
        4096 + i as usize
    } else {
        10
    };
    (0..len).map(|j| (j as u32 ^ i) as u8).collect()
}

fn load(db: &Db, n: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..n {
        db.put(key(i), value(i)).unwrap();
        m.insert(key(i), value(i));
    }
    for i in (0..n).step_by(7) {
        db.delete(key(i)).unwrap();
        m.remove(&key(i));
    }
    m
}

fn read(db: &Db) -> u64 {
    db.stats().vlog_bytes_read
}

#[test]
fn key_only_calls_read_nothing_from_the_vlog() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let m = load(&db, 1000);
    // Some of it in SSTables, some in the memtable.
    db.flush().unwrap();
    for i in 1000..1100 {
        db.put(key(i), value(i)).unwrap();
    }
    let mut m = m;
    for i in 1000..1100 {
        m.insert(key(i), value(i));
    }
    let before = read(&db);
    let keys: Vec<Vec<u8>> = db.keys().collect::<Result<_, _>>().unwrap();
    assert_eq!(keys, m.keys().cloned().collect::<Vec<_>>());
    let back: Vec<Vec<u8>> = db.keys().rev().collect::<Result<_, _>>().unwrap();
    assert_eq!(back, m.keys().rev().cloned().collect::<Vec<_>>());
    let ranged: Vec<Vec<u8>> = db
        .range_keys(key(100)..key(200))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        ranged,
        m.range(key(100)..key(200))
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    );
    let pre: Vec<Vec<u8>> = db.prefix_keys(b"k001").collect::<Result<_, _>>().unwrap();
    assert_eq!(
        pre.len(),
        m.keys().filter(|k| k.starts_with(b"k001")).count()
    );
    for i in 0..1100 {
        let k = key(i);
        assert_eq!(db.contains_key(&k).unwrap(), m.contains_key(&k));
        assert_eq!(db.value_len(&k).unwrap(), m.get(&k).map(|v| v.len() as u32));
    }
    let mut lens = 0u64;
    for e in db.entries(..) {
        let e = e.unwrap();
        assert_eq!(e.value_len() as usize, m[e.key()].len());
        lens += u64::from(e.value_len());
    }
    assert_eq!(lens, m.values().map(|v| v.len() as u64).sum::<u64>());
    assert_eq!(read(&db), before, "a key-only call read from the vLog");

    // A lazy entry reads its value when asked, and only then.
    let big = key(2);
    let e = db.entries(big.clone()..).next().unwrap().unwrap();
    assert_eq!(read(&db), before);
    assert_eq!(e.value().unwrap().as_ref(), m[&big].as_slice());
    drop(e);
    let after_one = read(&db);
    assert!(after_one > before && after_one - before < 2 * 4096 + 100);
    // A small value is in the index: no read.
    let small = key(3);
    let e = db.entries(small.clone()..).next().unwrap().unwrap();
    assert_eq!(e.into_pair().unwrap().1.as_ref(), m[&small].as_slice());
    assert_eq!(read(&db), after_one);

    // The value walk does read them all.
    let all: Vec<(Vec<u8>, wisckey::Value)> = db.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), m.len());
    let vlog_values: u64 = m
        .values()
        .filter(|v| v.len() >= 1024)
        .map(|v| v.len() as u64)
        .sum();
    assert!(read(&db) - after_one >= vlog_values);

    // Still so after a reopen (the lengths come from the SSTables' pointers).
    drop(all);
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let before = read(&db);
    for (k, v) in &m {
        assert_eq!(db.value_len(k).unwrap(), Some(v.len() as u32));
    }
    assert_eq!(db.keys().count(), m.len());
    assert_eq!(read(&db), before);
}

#[test]
fn seek_moves_either_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..100u32 {
        db.put(key(i * 2), value(i)).unwrap();
    }
    let k = |i: u32| key(i);
    let mut it = db.iter();
    it.seek(k(51));
    assert_eq!(it.next().unwrap().unwrap().0, k(52));
    // Backward from where it was.
    it.seek(k(10));
    assert_eq!(it.next().unwrap().unwrap().0, k(10));
    assert_eq!(it.next().unwrap().unwrap().0, k(12));
    it.seek_back(k(21));
    assert_eq!(it.next_back().unwrap().unwrap().0, k(20));
    assert_eq!(it.next_back().unwrap().unwrap().0, k(18));
    // The ends never cross: 14 and 16 are left.
    let rest: Vec<Vec<u8>> = it.map(|kv| kv.unwrap().0).collect();
    assert_eq!(rest, vec![k(14), k(16)]);

    // A seek outside the range stays inside it.
    let mut it = db.range(k(40)..k(60));
    it.seek(k(0));
    assert_eq!(it.next().unwrap().unwrap().0, k(40));
    it.seek(k(100));
    assert!(it.next().is_none());
    it.seek_back(k(199));
    assert_eq!(it.next_back().unwrap().unwrap().0, k(58));

    // The back end gathered items the front then reaches: a seek of the
    // front past some of them skips those.
    let mut it = db.keys();
    assert_eq!(it.next_back().unwrap().unwrap(), k(198));
    it.seek(k(190));
    let rest: Vec<Vec<u8>> = it.map(|r| r.unwrap()).collect();
    assert_eq!(rest, vec![k(190), k(192), k(194), k(196)]);

    // Entries and Keys seek the same way.
    let mut e = db.entries(..);
    e.seek_back(k(7));
    assert_eq!(e.next_back().unwrap().unwrap().key(), k(6).as_slice());
}

#[test]
fn unordered_tables_walk_whole_and_list_keys_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let t = db.table("u", TableOptions::unordered()).unwrap();
    let mut m = BTreeMap::new();
    for i in 0..500u32 {
        t.put(key(i), value(i)).unwrap();
        m.insert(key(i), value(i));
    }
    for i in (0..500).step_by(5) {
        t.delete(key(i)).unwrap();
        m.remove(&key(i));
    }
    let before = read(&db);
    let mut keys: Vec<Vec<u8>> = t.keys().collect::<Result<_, _>>().unwrap();
    keys.sort();
    assert_eq!(keys, m.keys().cloned().collect::<Vec<_>>());
    for i in 0..500 {
        assert_eq!(
            t.value_len(key(i)).unwrap(),
            m.get(&key(i)).map(|v| v.len() as u32)
        );
    }
    assert_eq!(read(&db), before);
    // The full walk, from both ends at once.
    let mut it = t.iter();
    let mut got = BTreeMap::new();
    let mut step = 0;
    loop {
        let next = if step % 3 == 0 {
            it.next_back()
        } else {
            it.next()
        };
        step += 1;
        match next {
            Some(kv) => {
                let (k, v) = kv.unwrap();
                assert!(got.insert(k, v.to_vec()).is_none(), "a key twice");
            }
            None => break,
        }
    }
    assert_eq!(got, m);
    assert!(read(&db) > before);
    // No key order: a range or a seek is refused.
    assert!(matches!(
        t.range(key(1)..).next(),
        Some(Err(Error::Unsupported(_)))
    ));
    let mut it = t.iter();
    it.seek(key(3));
    assert!(matches!(it.next(), Some(Err(Error::Unsupported(_)))));
    assert!(it.next().is_none());
}
