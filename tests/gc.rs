//! Garbage collection through the public API: space comes back, nothing is
//! lost or resurrected, snapshots and iterators taken before a pass still
//! read their values, and overwrites racing with GC win.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wisckey::{Db, GcOptions, GcPolicy, Options};

fn opts() -> Options {
    Options::default()
        .background_gc(false)
        .memtable_size(64 << 10)
        .segment_size(128 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(32 << 10)
        .base_level_size(64 << 10)
}

fn value(key: u32, round: u32) -> Vec<u8> {
    let mut v = vec![(key as u8) ^ (round as u8).wrapping_mul(31); 2000 + (key as usize % 100)];
    v[..4].copy_from_slice(&key.to_le_bytes());
    v[4..8].copy_from_slice(&round.to_le_bytes());
    v
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn vlog_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".vlog"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn check(db: &Db, n: u32, round_of: impl Fn(u32) -> Option<u32>) {
    for i in 0..n {
        let got = db.get(key(i)).unwrap().map(|v| v.into_vec());
        assert_eq!(got, round_of(i).map(|r| value(i, r)), "key {i}");
    }
    let scanned = db.iter().count();
    assert_eq!(scanned, (0..n).filter(|&i| round_of(i).is_some()).count());
}

#[test]
fn every_policy_reclaims_space_and_loses_nothing() {
    for policy in [GcPolicy::Tail, GcPolicy::Greedy, GcPolicy::CostBenefit] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts().gc_policy(policy)).unwrap();
        let n = 400;
        for round in 0..4 {
            for i in 0..n {
                if round == 3 && i % 5 == 0 {
                    db.delete(key(i)).unwrap();
                } else {
                    db.put(key(i), value(i, round)).unwrap();
                }
            }
        }
        db.flush().unwrap();
        db.compact().unwrap();
        let expect = |i: u32| if i.is_multiple_of(5) { None } else { Some(3) };
        let before = vlog_bytes(dir.path());
        let mut freed = 0;
        for _ in 0..50 {
            let r = db.gc(GcOptions::default().max_segments(2)).unwrap();
            if r.victims.is_empty() {
                break;
            }
            assert!(r.records_moved <= r.records_read);
            freed += r.bytes_freed;
        }
        assert!(freed > 0, "{policy:?} freed nothing");
        let after = vlog_bytes(dir.path());
        assert!(after < before, "{policy:?}: vLog {before} -> {after}");
        check(&db, n, expect);
        let st = db.stats();
        assert!(st.gc_passes > 0);
        assert!(
            st.vlog_space_amplification < 1.6,
            "{policy:?}: {}",
            st.vlog_space_amplification
        );
        drop(db);
        let db = Db::open(dir.path(), opts()).unwrap();
        check(&db, n, expect);
        // And again after compacting away the old pointers.
        db.compact().unwrap();
        check(&db, n, expect);
    }
}

#[test]
fn snapshot_and_iterator_taken_before_gc_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let n = 300;
    for i in 0..n {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let snap = db.snapshot();
    let mut it = db.iter();
    let first = it.next().unwrap().unwrap();
    assert_eq!(first.1.into_vec(), value(0, 0));
    for i in 0..n {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    let r = db.gc(GcOptions::default().all_sealed(true)).unwrap();
    assert!(!r.victims.is_empty());
    // The snapshot reads round 0 from segments GC retired.
    for i in (0..n).step_by(7) {
        assert_eq!(snap.get(key(i)).unwrap().unwrap().into_vec(), value(i, 0));
    }
    assert!(db.stats().retired_segments_kept > 0);
    // The iterator goes on over what it saw.
    let rest: Vec<_> = it.map(|kv| kv.unwrap()).collect();
    assert_eq!(rest.len() as u32, n - 1);
    for (k, v) in rest {
        let i: u32 = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
        assert_eq!(v.into_vec(), value(i, 0));
    }
    check(&db, n, |_| Some(1));
    drop(snap);
    assert_eq!(db.stats().retired_segments_kept, 0);
    check(&db, n, |_| Some(1));
}

#[test]
fn overwrites_racing_with_gc_always_win() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let n = 300u32;
    for i in 0..n {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut passes = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = db
                    .gc(GcOptions::default().policy(GcPolicy::Tail).max_segments(3))
                    .unwrap();
                if !r.victims.is_empty() {
                    passes += 1;
                }
                db.compact().unwrap();
            }
            passes
        })
    };
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for round in 1..=8u32 {
                    for i in (w..n).step_by(2) {
                        db.put(key(i), value(i, round)).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let passes = gc.join().unwrap();
    assert!(passes > 0, "GC never ran a pass");
    check(&db, n, |_| Some(8));
    db.compact().unwrap();
    db.gc(GcOptions::default().all_sealed(true)).unwrap();
    check(&db, n, |_| Some(8));
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, n, |_| Some(8));
}

#[test]
fn automatic_gc_keeps_space_amplification_near_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts()
        .background_gc(true)
        .gc_interval(std::time::Duration::from_millis(5))
        .gc_space_amp_target(1.5);
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let n = 300;
    for round in 0..12 {
        for i in 0..n {
            db.put(key(i), value(i, round)).unwrap();
        }
    }
    db.flush().unwrap();
    db.wait_for_background().unwrap();
    // Give the GC thread a moment after the last compaction.
    let mut sa = f64::INFINITY;
    for _ in 0..200 {
        sa = db.stats().vlog_space_amplification;
        if sa <= 1.5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(sa <= 1.5, "space amplification stayed at {sa}");
    assert!(db.stats().gc_passes > 0);
    check(&db, n, |_| Some(11));
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    check(&db, n, |_| Some(11));
}

/// A flush counts the records its versions hide at once (early garbage),
/// and the compaction that later drops them makes them durable without
/// counting them twice: after overwriting every key once, the vLog's
/// garbage is one old record per key, before and after the compaction.
#[test]
fn early_garbage_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        wisckey::Options::default()
            .background_gc(false)
            .memtable_size(4 << 20)
            .segment_size(1 << 20)
    };
    let db = wisckey::Db::open(dir.path(), opts()).unwrap();
    let value = |i: u32, round: u8| vec![round.wrapping_add(i as u8); 4000];
    for i in 0..300u32 {
        db.put(format!("k{i:04}"), value(i, 1)).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    let before = db.stats();
    assert_eq!(before.early_garbage_bytes, 0);
    for i in 0..300u32 {
        db.put(format!("k{i:04}"), value(i, 2)).unwrap();
    }
    db.flush().unwrap();
    let flushed = db.stats();
    // Each old record: 4000 value bytes, a 5-byte key and a header.
    let per_key = (flushed.early_garbage_bytes as f64) / 300.0;
    assert!(
        (4005.0..4100.0).contains(&per_key),
        "early {per_key} B per key"
    );
    let garbage = flushed.vlog_garbage_bytes - before.vlog_garbage_bytes;
    assert_eq!(
        garbage, flushed.early_garbage_bytes,
        "all of it early so far"
    );
    db.compact().unwrap();
    let compacted = db.stats();
    assert_eq!(compacted.early_garbage_bytes, 0, "made durable");
    assert_eq!(
        compacted.vlog_garbage_bytes - before.vlog_garbage_bytes,
        garbage,
        "counted once"
    );
    db.close().unwrap();
    // Durable: a reopen knows the same garbage.
    let db = wisckey::Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().vlog_garbage_bytes, compacted.vlog_garbage_bytes);
    for i in 0..300u32 {
        assert_eq!(
            db.get(format!("k{i:04}")).unwrap().unwrap().into_vec(),
            value(i, 2)
        );
    }
}
