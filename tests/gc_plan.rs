//! `GcOptions::dry_run` (the plan of a pass, nothing changed, also on a
//! read-only open) and `GcOptions::on_progress`.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use wisckey::{Db, GcOptions, GcPolicy, GcProgress, Options};

fn opts() -> Options {
    Options::default()
        .segment_size(128 << 10)
        .memtable_size(32 << 10)
        .background_gc(false)
}

/// Every file's length and a hash of its bytes.
fn files(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let bytes = std::fs::read(e.path()).unwrap();
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        m.insert(
            e.file_name().to_string_lossy().into_owned(),
            (bytes.len() as u64, h.finish()),
        );
    }
    m
}

/// Segments half garbage: every key written, then every other one again.
fn build(dir: &Path) {
    let db = Db::open(dir, opts()).unwrap();
    for round in 0..2u8 {
        for i in 0..300u32 {
            if round == 0 || i % 2 == 0 {
                db.put(format!("key{i:05}"), vec![round; 1500]).unwrap();
            }
        }
    }
    db.compact().unwrap();
    db.close().unwrap();
}

#[test]
fn a_dry_run_plans_the_pass_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let gc = GcOptions::default()
        .policy(GcPolicy::Greedy)
        .max_segments(3)
        .min_garbage_ratio(0.1);

    // Read-only: the plan, and not a byte changed.
    let before = files(dir.path());
    let ro = Db::open_read_only(dir.path(), Options::default()).unwrap();
    let plan = ro.gc(gc.clone().dry_run(true)).unwrap();
    assert!(plan.dry_run);
    assert_eq!(plan.victims.len(), 3, "{plan:?}");
    assert!(plan.bytes_freed >= plan.bytes_read && plan.bytes_read > 0);
    assert!(plan.bytes_moved < plan.bytes_freed);
    // A real pass is refused read-only.
    assert!(ro.gc(gc.clone()).is_err());
    drop(ro);
    assert_eq!(
        files(dir.path()),
        before,
        "a read-only dry run changed files"
    );

    // Writable: the pass takes what the plan said, and moves what the
    // discard statistics said (they are exact here: compacted, nothing in
    // the memtable).
    let db = Db::open(dir.path(), opts()).unwrap();
    let again = db.gc(gc.clone().dry_run(true)).unwrap();
    assert_eq!(again.victims, plan.victims);
    let stats_before = db.stats();
    let done = db.gc(gc).unwrap();
    assert!(!done.dry_run);
    assert_eq!(done.victims, plan.victims);
    assert_eq!(done.bytes_freed, plan.bytes_freed);
    assert_eq!(done.bytes_read, plan.bytes_read);
    assert_eq!(done.bytes_moved, plan.bytes_moved);
    assert_eq!(stats_before.gc_passes, 0);
    db.close().unwrap();
}

#[test]
fn progress_is_reported_per_victim() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let db = Db::open(dir.path(), opts()).unwrap();
    let seen: Arc<Mutex<Vec<GcProgress>>> = Arc::default();
    let s = seen.clone();
    let r = db
        .gc(GcOptions::default()
            .all_sealed(true)
            .on_progress(move |p| s.lock().unwrap().push(*p)))
        .unwrap();
    let seen = seen.lock().unwrap();
    let n = r.victims.len() as u64;
    assert!(n >= 2, "{r:?}");
    assert_eq!(seen.len() as u64, n + 1, "once before, once per victim");
    for (i, p) in seen.iter().enumerate() {
        assert_eq!(p.segments_done, i as u64);
        assert_eq!(p.segments_total, n);
    }
    let last = seen.last().unwrap();
    assert_eq!(last.bytes_read, last.bytes_total);
    assert_eq!(last.bytes_total, r.bytes_freed);
    db.close().unwrap();
}

#[test]
fn segment_usage_is_exact_and_matches_compacted_statistics() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let db = Db::open_read_only(dir.path(), Options::default()).unwrap();
    let usage = db.segment_usage().unwrap();
    let stats = db.stats();
    assert_eq!(usage.len(), stats.segments.len());
    // 300 distinct keys, every value separated (1500 bytes).
    assert_eq!(usage.iter().map(|u| u.live_records).sum::<u64>(), 300);
    for (u, s) in usage.iter().zip(&stats.segments) {
        assert_eq!(u.number, s.number);
        assert!(u.live_bytes <= u.bytes, "{u:?}");
        // Compacted: the statistics have caught up with the index.
        assert_eq!(
            u.bytes - u.live_bytes,
            u.garbage_bytes_by_stats,
            "segment {}: exact garbage against the statistics",
            u.number
        );
    }
}
