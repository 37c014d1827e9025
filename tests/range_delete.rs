//! Range deletes: one record deletes a range of keys for point reads,
//! iterators (both ways), key-only walks and later snapshots, but not for
//! snapshots taken before it; it survives a reopen from the vLog (unflushed)
//! and from the manifest (flushed); compaction drops what it covers and GC
//! reclaims the values, while an older snapshot keeps seeing them; a full
//! compaction retires it.

use std::collections::BTreeMap;
use wisckey::{Db, Error, GcOptions, Options, TableOptions, WriteBatch, WriteOptions};

fn key(i: u32) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

fn value(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize + j) as u8).collect()
}

fn opts() -> Options {
    Options::default()
        .memtable_size(256 << 10)
        .segment_size(1 << 20)
}

fn check(db: &Db, m: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) {
    for i in 0..2100 {
        let k = key(i);
        assert_eq!(
            db.get(&k).unwrap().map(|v| v.to_vec()),
            m.get(&k).cloned(),
            "{what}: get {i}"
        );
    }
    let all: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|kv| kv.map(|(k, v)| (k, v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        all,
        m.clone().into_iter().collect::<Vec<_>>(),
        "{what}: iter"
    );
    let back: Vec<Vec<u8>> = db.keys().rev().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        back,
        m.keys().rev().cloned().collect::<Vec<_>>(),
        "{what}: keys().rev()"
    );
}

#[test]
fn range_delete_hides_what_it_covers_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut m = BTreeMap::new();
    for i in 0..2000 {
        let v = value(i, if i % 3 == 0 { 2000 } else { 20 });
        db.put(key(i), &v).unwrap();
        m.insert(key(i), v);
    }
    // Half of it in SSTables.
    db.flush().unwrap();
    let before = db.snapshot();
    let m_before = m.clone();
    let writes = db.stats().writes;
    db.delete_range(key(100)..key(1500)).unwrap();
    assert_eq!(
        db.stats().writes,
        writes + 1,
        "a range delete is one record"
    );
    m.retain(|k, _| !(key(100)..key(1500)).contains(k));
    // Written again after the delete: visible.
    db.put(key(700), b"back").unwrap();
    m.insert(key(700), b"back".to_vec());
    // In one batch: a put before the range delete is covered, one after is not.
    let mut b = WriteBatch::new();
    b.put(key(1600), b"covered");
    b.put(key(1800), b"stays");
    b.delete_range(key(1600)..=key(1700));
    b.put(key(1650), b"after");
    db.write(b, WriteOptions::default()).unwrap();
    m.retain(|k, _| !(key(1600)..=key(1700)).contains(k));
    m.insert(key(1800), b"stays".to_vec());
    m.insert(key(1650), b"after".to_vec());
    check(&db, &m, "after the deletes");
    assert_eq!(db.stats().range_tombstones, 2);
    // A snapshot from before sees everything it saw.
    assert_eq!(
        before.get(key(500)).unwrap().unwrap().to_vec(),
        m_before[&key(500)]
    );
    assert_eq!(before.iter().count(), m_before.len());
    // Range boundaries: a bounded scan that starts inside a deleted range.
    let inside: Vec<Vec<u8>> = db
        .range_keys(key(50)..key(800))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(inside.len(), 51, "k50..k99 and k700");
    assert!(!db.contains_key(key(1000)).unwrap());
    assert_eq!(db.value_len(key(1000)).unwrap(), None);
    drop(before);

    // Reopen with the tombstones still only in the vLog (not flushed).
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &m, "reopened from the vLog");
    // Flushed: from the manifest.
    db.flush().unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &m, "reopened from the manifest");
    assert_eq!(db.stats().range_tombstones, 2);
    // A full compaction applies and retires them.
    db.compact().unwrap();
    check(&db, &m, "after a full compaction");
    assert_eq!(db.stats().range_tombstones, 0);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &m, "reopened after the compaction");
}

#[test]
fn compaction_and_gc_reclaim_a_deleted_range_but_keep_it_for_an_older_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..2000 {
        db.put(key(i), value(i, 4096)).unwrap();
    }
    db.flush().unwrap();
    let snap = db.snapshot();
    db.delete_range(..).unwrap();
    db.put(key(5), b"new").unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    // The snapshot holds the tombstone back: nothing dropped, not retired.
    assert_eq!(db.stats().range_tombstones, 1);
    // GC takes the covered values already (the index hides them from every
    // new reader); the snapshot reads them from the segments GC keeps for it.
    let first = db.gc(GcOptions::default().all_sealed(true)).unwrap();
    assert_eq!(
        snap.get(key(1234)).unwrap().unwrap().to_vec(),
        value(1234, 4096)
    );
    assert_eq!(snap.iter().count(), 2000);
    assert_eq!(db.keys().count(), 1);
    drop(snap);
    // GC took the covered records while the index still holds (covered)
    // pointers to them: verify and the usage walk skip those.
    assert!(db.verify().unwrap().is_clean());
    db.segment_usage().unwrap();
    db.compact().unwrap();
    assert_eq!(db.stats().range_tombstones, 0);
    let r = db.gc(GcOptions::default().all_sealed(true)).unwrap();
    let freed = first.bytes_freed + r.bytes_freed;
    // All but the unsealed head segment (1 MiB).
    assert!(freed > 2000 * 4096 - (1 << 20), "GC freed {freed} bytes");
    let usage: u64 = db
        .segment_usage()
        .unwrap()
        .iter()
        .map(|s| s.live_bytes)
        .sum();
    assert!(usage < 64 << 10, "{usage} live vLog bytes left");
    assert_eq!(db.get(key(5)).unwrap().as_deref(), Some(&b"new"[..]));
    assert!(db.get(key(6)).unwrap().is_none());
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.keys().count(), 1);
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn unordered_tables_refuse_range_deletes_and_tables_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
    u.put(b"a", b"1").unwrap();
    assert!(matches!(u.delete_range(..), Err(Error::Unsupported(_))));
    let mut b = WriteBatch::new();
    b.put(b"x", b"1");
    b.delete_range_in(&u, ..);
    assert!(matches!(
        db.write(b, WriteOptions::default()),
        Err(Error::Unsupported(_))
    ));
    assert!(
        db.get(b"x").unwrap().is_none(),
        "the refused batch wrote nothing"
    );
    // A range delete of one table leaves the others alone.
    let t = db.table("t", TableOptions::ordered()).unwrap();
    t.put(b"a", b"t").unwrap();
    db.put(b"a", b"d").unwrap();
    t.delete_range(..).unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"d"[..]));
    assert_eq!(u.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(t.get(b"a").unwrap().is_none());
}
