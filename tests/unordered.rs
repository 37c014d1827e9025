//! Unordered (Bitcask-style) tables: point reads through the keydir, batches
//! mixed with ordered tables, what they refuse, and rebuilding the keydir on
//! open from hint files or, without them, from the segments.

use std::collections::BTreeMap;
use wisckey::{Db, Error, GcOptions, GcPolicy, Options, TableOptions, WriteBatch, WriteOptions};

fn small() -> Options {
    Options::default()
        .segment_size(64 << 10)
        .memtable_size(32 << 10)
        .max_replay_bytes(128 << 10)
        .background_gc(false)
}

fn value(i: u32, round: u32, len: usize) -> Vec<u8> {
    let mut v = format!("{i}:{round}:").into_bytes();
    v.resize(len, (i % 251) as u8);
    v
}

fn hint_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".hint")
        })
        .count()
}

#[test]
fn point_reads_batches_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small()).unwrap();
    let blobs = db.table("blobs", TableOptions::unordered()).unwrap();
    let users = db.table("users", TableOptions::ordered()).unwrap();
    assert_eq!(blobs.kind(), wisckey::TableKind::Unordered);
    blobs.put(b"a", b"1").unwrap();
    blobs.put(b"b", vec![7u8; 5000]).unwrap();
    assert_eq!(blobs.get(b"a").unwrap().unwrap(), b"1");
    assert_eq!(blobs.get(b"b").unwrap().unwrap().len(), 5000);
    assert!(blobs.get(b"c").unwrap().is_none());
    // Its keys are its own.
    assert!(db.get(b"a").unwrap().is_none());
    // A batch across kinds is atomic and lands in both.
    let mut b = WriteBatch::new();
    b.put_in(&blobs, b"x", b"X");
    b.put_in(&users, b"x", b"U");
    b.delete_in(&blobs, b"a");
    db.write(b, WriteOptions::default().sync(true)).unwrap();
    assert_eq!(blobs.get(b"x").unwrap().unwrap(), b"X");
    assert_eq!(users.get(b"x").unwrap().unwrap(), b"U");
    assert!(blobs.get(b"a").unwrap().is_none());
    let got = blobs
        .multi_get(&[b"x".as_slice(), b"a", b"b", b"zz"])
        .unwrap();
    assert_eq!(got[0].as_deref(), Some(&b"X"[..]));
    assert!(got[1].is_none());
    assert_eq!(got[2].as_ref().unwrap().len(), 5000);
    assert!(got[3].is_none());
    // No order, no snapshots.
    let mut it = blobs.prefix(b"x");
    assert!(matches!(it.next(), Some(Err(Error::Unsupported(_)))));
    assert!(it.next().is_none());
    assert!(matches!(
        blobs.range(..b"y".to_vec()).next_back(),
        Some(Err(Error::Unsupported(_)))
    ));
    // Snapshots see the table as it was.
    let snap = db.snapshot();
    blobs.put(b"x", b"X2").unwrap();
    assert_eq!(snap.get_in(&blobs, b"x").unwrap().unwrap(), b"X");
    assert_eq!(blobs.get(b"x").unwrap().unwrap(), b"X2");
    assert!(matches!(
        snap.range_in(&blobs, b"a".to_vec()..).next(),
        Some(Err(Error::Unsupported(_)))
    ));
    blobs.put(b"x", b"X").unwrap();
    // The kind is fixed at creation.
    assert!(matches!(
        db.table("blobs", TableOptions::ordered()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.table("default", TableOptions::unordered()),
        Err(Error::InvalidArgument(_))
    ));
}

/// Many overwrites and deletes over several segments; reopen with hints,
/// reopen with every hint removed, reopen with every hint damaged: the same
/// contents each time, and the same garbage figures.
#[test]
fn reopen_from_hints_from_scans_and_past_damaged_hints() {
    let dir = tempfile::tempdir().unwrap();
    let mut model: BTreeMap<u32, Option<Vec<u8>>> = BTreeMap::new();
    {
        let db = Db::open(dir.path(), small()).unwrap();
        let t = db.table("t", TableOptions::unordered()).unwrap();
        for round in 0..6u32 {
            for i in 0..300u32 {
                let k = format!("k{i:04}");
                if (i + round) % 7 == 0 {
                    t.delete(&k).unwrap();
                    model.insert(i, None);
                } else {
                    let v = value(i, round, 100 + (i as usize % 5) * 300);
                    t.put(&k, &v).unwrap();
                    model.insert(i, Some(v));
                }
            }
        }
        db.close().unwrap();
    }
    assert!(hint_files(dir.path()) > 3, "sealed segments have hints");
    let check = |label: &str| {
        let db = Db::open(dir.path(), small()).unwrap();
        let t = db.table("t", TableOptions::unordered()).unwrap();
        for (i, want) in &model {
            let got = t.get(format!("k{i:04}")).unwrap();
            assert_eq!(got.as_deref(), want.as_deref(), "{label}: key {i}");
        }
        let s = db.stats();
        let garbage: u64 = s.segments.iter().map(|s| s.garbage_bytes).sum();
        db.close().unwrap();
        garbage
    };
    let g1 = check("with hints");
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".hint") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let g2 = check("without hints");
    assert!(hint_files(dir.path()) > 3, "open wrote the missing hints");
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".hint") {
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            b[n / 2] ^= 0x40;
            std::fs::write(&p, b).unwrap();
        }
    }
    let g3 = check("damaged hints");
    assert_eq!(g1, g2);
    assert_eq!(g2, g3);
    assert!(g1 > 0);
}

/// GC over unordered tables: only the newest record of each key moves,
/// tombstones stay while an older record of their key is on disk, and
/// after GC and a reopen every key reads as the model says.
#[test]
fn gc_keeps_the_newest_and_never_resurrects_a_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut model: BTreeMap<u32, Option<Vec<u8>>> = BTreeMap::new();
    let db = Db::open(dir.path(), small()).unwrap();
    let t = db.table("t", TableOptions::unordered()).unwrap();
    // Written once, then deleted much later: the put and the tombstone end
    // up in different segments.
    for i in 0..200u32 {
        let v = value(i, 0, 400);
        t.put(format!("k{i:04}"), &v).unwrap();
        model.insert(i, Some(v));
    }
    for round in 1..8u32 {
        for i in 200..400u32 {
            let v = value(i, round, 400);
            t.put(format!("k{i:04}"), &v).unwrap();
            model.insert(i, Some(v));
        }
    }
    for i in (0..200u32).step_by(3) {
        t.delete(format!("k{i:04}")).unwrap();
        model.insert(i, None);
    }
    db.flush().unwrap();
    let before = db.stats().vlog_bytes;
    let (mut moved, mut passes) = (0u64, 0u64);
    for policy in [GcPolicy::Greedy, GcPolicy::Tail, GcPolicy::CostBenefit] {
        for _ in 0..6 {
            let r = db
                .gc(GcOptions::default().policy(policy).min_garbage_ratio(0.0))
                .unwrap();
            moved += r.records_moved;
            passes += u64::from(!r.victims.is_empty());
            for (i, want) in &model {
                let got = t.get(format!("k{i:04}")).unwrap();
                assert_eq!(got.as_deref(), want.as_deref(), "{policy:?}: key {i}");
            }
        }
    }
    let after = db.stats().vlog_bytes;
    assert!(after < before, "GC freed space: {before} -> {after}");
    assert!(
        passes > 3 && moved > 0,
        "{passes} passes moved {moved} records"
    );
    eprintln!("{passes} passes moved {moved} records; vLog {before} -> {after} bytes");
    drop(t);
    drop(db);
    let db = Db::open(dir.path(), small()).unwrap();
    let t = db.table("t", TableOptions::unordered()).unwrap();
    for (i, want) in &model {
        let got = t.get(format!("k{i:04}")).unwrap();
        assert_eq!(got.as_deref(), want.as_deref(), "after reopen: key {i}");
    }
    // A full rewrite, then reopen again.
    db.gc(GcOptions::default().all_sealed(true)).unwrap();
    drop(t);
    drop(db);
    let db = Db::open(dir.path(), small()).unwrap();
    let t = db.table("t", TableOptions::unordered()).unwrap();
    for (i, want) in &model {
        let got = t.get(format!("k{i:04}")).unwrap();
        assert_eq!(got.as_deref(), want.as_deref(), "after full GC: key {i}");
    }
}

/// An unordered-only workload still moves the replay point (the empty
/// memtable is flushed at each segment roll), so GC can take its segments
/// without any `flush()` and reopening does not replay the whole log.
#[test]
fn unordered_only_writes_move_the_replay_point() {
    let dir = tempfile::tempdir().unwrap();
    // Only the rolls can move the replay point here.
    let db = Db::open(dir.path(), small().max_replay_bytes(1 << 30)).unwrap();
    let t = db.table("t", TableOptions::unordered()).unwrap();
    for round in 0..10u32 {
        for i in 0..100u32 {
            t.put(format!("k{i}"), value(i, round, 1000)).unwrap();
        }
    }
    db.wait_for_background().unwrap();
    let r = db
        .gc(GcOptions::default()
            .policy(GcPolicy::Greedy)
            .max_segments(8))
        .unwrap();
    assert!(!r.victims.is_empty(), "GC found segments to take");
    assert!(r.bytes_freed > 0);
    for i in 0..100u32 {
        assert_eq!(t.get(format!("k{i}")).unwrap().unwrap(), value(i, 9, 1000));
    }
}

/// Writers, readers and GC at once on an unordered table (and an ordered
/// one in the same batches): every read finds a value written for its key,
/// never an error (a reader never pairs a pointer with a segment set that
/// lost its segment), GC makes progress, and nothing deadlocks.
#[test]
fn readers_writers_and_gc_at_once() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small().max_replay_bytes(64 << 10)).unwrap();
    let t = db.table("t", TableOptions::unordered()).unwrap();
    let o = db.table("o", TableOptions::ordered()).unwrap();
    const KEYS: u32 = 200;
    for i in 0..KEYS {
        t.put(format!("k{i}"), value(i, 0, 600)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for w in 0..2u32 {
        let (db, t, o, stop) = (db.clone(), t.clone(), o.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut round = 1;
            while !stop.load(Ordering::Relaxed) {
                for i in (w..KEYS).step_by(2) {
                    let mut b = WriteBatch::new();
                    if (i + round) % 11 == 0 {
                        b.delete_in(&t, format!("k{i}"));
                    } else {
                        b.put_in(&t, format!("k{i}"), value(i, round, 600));
                    }
                    b.put_in(&o, format!("k{i}"), format!("{round}"));
                    db.write(b, WriteOptions::default()).unwrap();
                }
                round += 1;
            }
        }));
    }
    for _ in 0..2 {
        let (t, stop, reads) = (t.clone(), stop.clone(), reads.clone());
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for i in 0..KEYS {
                    if let Some(v) = t.get(format!("k{i}")).unwrap() {
                        assert!(v.starts_with(format!("{i}:").as_bytes()), "key {i}");
                        assert_eq!(v.len(), 600);
                    }
                }
                let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
                for (i, v) in t.multi_get(&keys).unwrap().into_iter().enumerate() {
                    if let Some(v) = v {
                        assert!(v.starts_with(format!("{i}:").as_bytes()), "key {i}");
                    }
                }
                reads.fetch_add(u64::from(KEYS) * 2, Ordering::Relaxed);
            }
        }));
    }
    let mut freed = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(3) {
        let r = db
            .gc(GcOptions::default()
                .policy(GcPolicy::Greedy)
                .min_garbage_ratio(0.0))
            .unwrap();
        freed += r.bytes_freed;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert!(freed > 0, "GC freed nothing");
    assert!(reads.load(Ordering::Relaxed) > 0);
    // And the state survives a reopen.
    let before: Vec<Option<Vec<u8>>> = (0..KEYS)
        .map(|i| t.get(format!("k{i}")).unwrap().map(|v| v.to_vec()))
        .collect();
    drop((t, o));
    drop(db);
    let db = Db::open(dir.path(), small()).unwrap();
    let t = db.table("t", TableOptions::unordered()).unwrap();
    for (i, want) in before.iter().enumerate() {
        assert_eq!(
            t.get(format!("k{i}")).unwrap().as_deref(),
            want.as_deref(),
            "key {i} after reopen"
        );
    }
}

/// Many keys, short and long (past any inline size: up to 3 KB), some
/// overwritten, some deleted, GC dropping tombstones (which removes keys
/// from the keydir and so leaves dead key bytes in its arena): every key
/// reads as the model says after reopening from hints, from scans and from
/// a mix of both, `keys()` lists exactly the live ones, and
/// `Stats::keydir_bytes` covers at least the keys' bytes and their slots.
#[test]
fn reopen_many_keys_with_long_keys_and_reclaimed_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let key = |i: u32| -> Vec<u8> {
        if i.is_multiple_of(97) {
            let mut k = format!("long-{i}-").into_bytes();
            k.resize(1000 + (i as usize % 3) * 1000, b'a' + (i % 26) as u8);
            k
        } else {
            format!("{i:016}").into_bytes()
        }
    };
    let n = 20_000u32;
    let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    {
        let db = Db::open(dir.path(), small().segment_size(256 << 10)).unwrap();
        let t = db.table("t", TableOptions::unordered()).unwrap();
        for i in 0..n {
            let v = value(i, 0, 100);
            t.put(key(i), &v).unwrap();
            model.insert(key(i), Some(v));
        }
        for i in (0..n).filter(|i| i % 5 == 1) {
            let v = value(i, 1, 60);
            t.put(key(i), &v).unwrap();
            model.insert(key(i), Some(v));
        }
        for i in (0..n).filter(|i| i % 4 == 2 || i.is_multiple_of(97) && i.is_multiple_of(2)) {
            t.delete(key(i)).unwrap();
            model.insert(key(i), None);
        }
        db.flush().unwrap();
        // Collecting everything sealed drops the tombstones whose older
        // records all go with the pass.
        let before = db.stats().unordered_keys;
        db.gc(GcOptions::default().all_sealed(true)).unwrap();
        let after = db.stats().unordered_keys;
        assert!(after < before, "GC dropped tombstones: {before} -> {after}");
        db.close().unwrap();
    }
    let live: Vec<&Vec<u8>> = model
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect();
    let check = |label: &str| {
        let db = Db::open(dir.path(), small().segment_size(256 << 10)).unwrap();
        let t = db.table("t", TableOptions::unordered()).unwrap();
        for (k, want) in &model {
            let got = t.get(k).unwrap();
            assert_eq!(got.as_deref(), want.as_deref(), "{label}: key {k:?}");
        }
        let keys: Vec<&[u8]> = model.keys().map(Vec::as_slice).collect();
        for (got, (_, want)) in t.multi_get(&keys).unwrap().iter().zip(&model) {
            assert_eq!(got.as_deref(), want.as_deref(), "{label}: multi_get");
        }
        let mut listed: Vec<Vec<u8>> = t.keys().collect::<Result<_, _>>().unwrap();
        listed.sort();
        assert_eq!(listed.iter().collect::<Vec<_>>(), live, "{label}: keys()");
        let s = db.stats();
        let key_bytes: u64 = live.iter().map(|k| k.len() as u64).sum();
        assert!(
            s.keydir_bytes >= key_bytes + 40 * s.unordered_keys,
            "{label}: {} keydir bytes for {} keys of {key_bytes} bytes",
            s.keydir_bytes,
            s.unordered_keys
        );
        assert!(
            s.keydir_bytes < 4 * (key_bytes + 64 * s.unordered_keys),
            "{label}: {} keydir bytes",
            s.keydir_bytes
        );
        db.close().unwrap();
        (s.unordered_keys, s.vlog_garbage_bytes)
    };
    let with_hints = check("from hints");
    let hints = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".hint"))
            .collect();
        v.sort();
        v
    };
    assert!(hints().len() > 5, "{} hints", hints().len());
    for h in hints().iter().step_by(2) {
        std::fs::remove_file(h).unwrap();
    }
    assert_eq!(check("half from hints"), with_hints);
    for h in hints() {
        std::fs::remove_file(h).unwrap();
    }
    assert_eq!(check("by scanning"), with_hints);
}

/// Snapshots of an unordered table: each sees the table as it was when it
/// was taken, through overwrites, deletes, GC passes (which relocate live
/// records and drop tombstones) and other snapshots coming and going; the
/// replaced entries kept for them go when the last snapshot goes.
#[test]
fn snapshots_of_unordered_tables_see_the_table_as_it_was() {
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().segment_size(256 << 10)).unwrap();
    let t = db.table("u", TableOptions::unordered()).unwrap();
    let key = |i: u32| format!("key{i:04}").into_bytes();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut snaps = Vec::new();
    for round in 0..6u32 {
        for i in 0..300u32 {
            if (i + round) % 7 == 0 {
                t.delete(key(i)).unwrap();
                model.remove(&key(i));
            } else if (i + round) % 3 != 0 {
                let v = vec![(i + round) as u8; 1000 + i as usize];
                t.put(key(i), &v).unwrap();
                model.insert(key(i), v);
            }
        }
        snaps.push((db.snapshot(), model.clone()));
        if round == 3 {
            // A middle snapshot goes: the others still read right.
            snaps.remove(1);
        }
        db.gc(GcOptions::default().all_sealed(true)).unwrap();
        for (s, m) in &snaps {
            for i in (0..300u32).step_by(13) {
                assert_eq!(
                    s.get_in(&t, key(i)).unwrap().map(|v| v.to_vec()),
                    m.get(&key(i)).cloned(),
                    "round {round}: snapshot at {} key {i}",
                    s.sequence()
                );
            }
            let mut all: Vec<(Vec<u8>, Vec<u8>)> = s
                .range_in(&t, ..)
                .map(|kv| kv.map(|(k, v)| (k, v.to_vec())))
                .collect::<Result<_, _>>()
                .unwrap();
            all.sort();
            assert_eq!(
                all,
                m.clone().into_iter().collect::<Vec<_>>(),
                "round {round}"
            );
        }
    }
    assert!(db.stats().keydir_snapshot_entries > 0);
    drop(snaps);
    assert_eq!(
        db.stats().keydir_snapshot_entries,
        0,
        "kept entries outlived the snapshots"
    );
    // The newest state, untouched by all that.
    for i in 0..300u32 {
        assert_eq!(
            t.get(key(i)).unwrap().map(|v| v.to_vec()),
            model.get(&key(i)).cloned()
        );
    }
}
