//! Tests of the engine that look inside: level shape, discard statistics,
//! snapshots across compactions.

use super::IndexValue;
use crate::lsm::compaction::NUM_LEVELS;
use crate::lsm::ikey;
use crate::vlog::record::record_len;
use crate::{Db, Options, WriteBatch, WriteOptions};

fn tiny() -> Options {
    Options::default()
        .memtable_size(16 << 10)
        .segment_size(64 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(8 << 10)
        .base_level_size(16 << 10)
        .level_size_ratio(4)
        .block_size(256)
}

/// Levels below 0 are sorted and disjoint, every file is in its level.
fn check_shape(db: &Db) {
    let v = db.engine().versions.current().version.clone();
    assert!(v.levels.len() <= NUM_LEVELS);
    for (level, files) in v.levels.iter().enumerate() {
        for t in files {
            assert_eq!(t.meta.level as usize, level);
        }
        if level == 0 {
            continue;
        }
        for w in files.windows(2) {
            assert!(
                ikey::user_part(&w[0].meta.largest) < ikey::user_part(&w[1].meta.smallest),
                "level {level} overlaps: {} and {}",
                w[0].meta.number,
                w[1].meta.number
            );
        }
    }
}

fn value_for(i: u32, round: u32, len: usize) -> Vec<u8> {
    let mut v = vec![(i as u8) ^ (round as u8); len];
    v[..4].copy_from_slice(&i.to_le_bytes());
    if len >= 8 {
        v[4..8].copy_from_slice(&round.to_le_bytes());
    }
    v
}

#[test]
fn leveled_compaction_builds_several_sorted_levels() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), tiny()).unwrap();
    let n = 6000u32;
    for round in 0..3u32 {
        for i in 0..n {
            let k = ((u64::from(i) * 2_654_435_761) % u64::from(n)) as u32;
            db.put(format!("key{k:06}"), value_for(k, round, 40))
                .unwrap();
        }
    }
    db.flush().unwrap();
    // Let compactions settle.
    db.engine().wait_until(|e| !e.needs_compaction()).unwrap();
    check_shape(&db);
    let st = db.stats();
    let used = st.levels.iter().skip(1).filter(|l| l.files > 0).count();
    assert!(used >= 2, "expected several levels in use: {:?}", st.levels);
    assert!(st.compactions > 0);
    for i in 0..n {
        assert_eq!(
            db.get(format!("key{i:06}")).unwrap().unwrap().into_vec(),
            value_for(i, 2, 40),
            "key {i}"
        );
    }
    // Point reads touch at most one table per level below level 0.
    let before = db.stats();
    for i in 0..1000 {
        db.get(format!("key{i:06}")).unwrap();
    }
    let after = db.stats();
    let reads = after.table_reads - before.table_reads;
    let levels = after.levels.iter().filter(|l| l.files > 0).count() as u64 + after.levels[0].files;
    assert!(
        reads <= 1000 * levels,
        "{reads} table reads for 1000 gets over {levels} levels"
    );
    let count = db.iter().count();
    assert_eq!(count, n as usize);
    drop(db);
    let db = Db::open(dir.path(), tiny()).unwrap();
    check_shape(&db);
    assert_eq!(db.iter().count(), n as usize);
}

#[test]
fn snapshots_keep_their_versions_across_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), tiny()).unwrap();
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), value_for(i, 0, 30)).unwrap();
    }
    let snap = db.snapshot();
    for i in 0..2000u32 {
        if i % 2 == 0 {
            db.delete(format!("k{i:05}")).unwrap();
        } else {
            db.put(format!("k{i:05}"), value_for(i, 1, 30)).unwrap();
        }
    }
    db.compact().unwrap();
    check_shape(&db);
    for i in (0..2000u32).step_by(37) {
        assert_eq!(
            snap.get(format!("k{i:05}")).unwrap().unwrap().into_vec(),
            value_for(i, 0, 30)
        );
    }
    assert_eq!(snap.iter().count(), 2000);
    assert_eq!(db.iter().count(), 1000);
    drop(snap);
    db.compact().unwrap();
    // With the snapshot gone, the full compaction kept one version per key
    // and no tombstones.
    let v = db.engine().versions.current().version.clone();
    let entries: u64 = v.all_tables().map(|t| t.meta.entries).sum();
    assert_eq!(entries, 1000);
    assert_eq!(db.iter().count(), 1000);
}

#[test]
fn discard_statistics_count_overwritten_values_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .background_gc(false)
        .memtable_size(64 << 10)
        .segment_size(1 << 20)
        .l0_compaction_trigger(2)
        .target_file_size(32 << 10);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let n = 500u32;
    let vlen = 4096;
    for i in 0..n {
        db.put(format!("key{i:05}"), value_for(i, 0, vlen)).unwrap();
    }
    for i in 0..n {
        db.put(format!("key{i:05}"), value_for(i, 1, vlen)).unwrap();
    }
    // Some small values and deletes, whose log records are garbage once flushed.
    let mut b = WriteBatch::new();
    b.put(b"small", b"v").delete(b"gone");
    db.write(b, WriteOptions::default()).unwrap();
    db.compact().unwrap();
    let old_values = u64::from(n) * record_len(8, vlen) as u64;
    let log_only = (record_len(5, 1) + record_len(4, 0)) as u64;
    let garbage: u64 = db.segment_stats().iter().map(|s| s.garbage_bytes).sum();
    assert_eq!(garbage, old_values + log_only);
    assert_eq!(db.stats().vlog_garbage_bytes, garbage);
    let per_segment: Vec<(u64, u64)> = db
        .segment_stats()
        .iter()
        .map(|s| (s.number, s.garbage_bytes))
        .collect();
    for s in db.segment_stats() {
        assert!(s.garbage_bytes <= s.bytes, "{s:?}");
    }
    drop(db);
    // Persisted with the version.
    let db = Db::open(dir.path(), opts).unwrap();
    let again: Vec<(u64, u64)> = db
        .segment_stats()
        .iter()
        .map(|s| (s.number, s.garbage_bytes))
        .collect();
    assert_eq!(again, per_segment);
}

/// `write` of an empty batch with `sync` makes the writes before it durable:
/// they survive a power loss that keeps nothing unsynced.
#[test]
fn an_empty_synced_batch_makes_earlier_writes_durable() {
    use crate::testing::FaultFs;
    use std::path::Path;
    let fs = FaultFs::new();
    let opts = || {
        Options::default()
            .fs(std::sync::Arc::new(fs.clone()))
            .background_gc(false)
    };
    let db = Db::open(Path::new("/db"), opts()).unwrap();
    db.put(b"a", vec![1u8; 3000]).unwrap();
    db.put(b"b", b"small").unwrap();
    db.write(WriteBatch::new(), WriteOptions::default().sync(true))
        .unwrap();
    fs.crash();
    drop(db);
    fs.power_loss_clean();
    fs.recover();
    let db = Db::open(Path::new("/db"), opts()).unwrap();
    assert_eq!(db.get(b"a").unwrap().unwrap(), vec![1u8; 3000]);
    assert_eq!(db.get(b"b").unwrap().unwrap(), b"small");
    // Without the sync they would be gone: the same writes, unsynced.
    db.put(b"c", vec![2u8; 3000]).unwrap();
    fs.crash();
    drop(db);
    fs.power_loss_clean();
    fs.recover();
    let db = Db::open(Path::new("/db"), opts()).unwrap();
    assert!(db.get(b"c").unwrap().is_none());
}

/// A new database, and the directories made for it, survive a power loss
/// once a write is synced: each new directory's parent is synced.
#[test]
fn a_new_database_and_its_directories_survive_a_power_loss() {
    use crate::testing::FaultFs;
    use std::path::Path;
    let fs = FaultFs::new();
    let dir = Path::new("/x/y/db");
    let opts = || Options::default().fs(std::sync::Arc::new(fs.clone()));
    let db = Db::open(dir, opts()).unwrap();
    db.write(
        {
            let mut b = WriteBatch::new();
            b.put(b"k", b"v");
            b
        },
        WriteOptions::default().sync(true),
    )
    .unwrap();
    fs.crash();
    drop(db);
    fs.power_loss_clean();
    fs.recover();
    let db = Db::open(dir, opts()).unwrap();
    assert_eq!(db.get(b"k").unwrap().unwrap(), b"v");
}

/// `Db::verify`'s index walk reads its values through the segments of the
/// view it walked: a GC pass that moves the records and retires their
/// segment between the walk and the reads must not make the reads fail
/// (it did, when the reads took the segments of the newer view: the
/// I/O-error sweep found "a value pointer names segment N, which is not in
/// the vLog" now and then).
#[test]
fn an_index_view_keeps_its_segments_across_a_gc_pass() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), tiny().background_gc(false)).unwrap();
    for i in 0..200u32 {
        db.put(format!("key{i:04}"), value_for(i, 0, 2000)).unwrap();
    }
    db.flush().unwrap();
    let e = db.engine();
    let view = e.index_view();
    let seq = e.read_seq();
    let mut keys = Vec::new();
    let mut ptrs = Vec::new();
    e.index_entries(&view, 0, seq, |k, v| {
        if let IndexValue::Pointer(p) = v {
            keys.push(k.to_vec());
            ptrs.push(p);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(keys.len(), 200);
    let first = ptrs[0].segment;
    let r = db.gc(crate::GcOptions::default().all_sealed(true)).unwrap();
    assert!(r.victims.contains(&first), "GC took {:?}", r.victims);
    assert!(
        !e.versions.current().segments.contains_key(&first),
        "segment {first} is still live after GC"
    );
    for (i, r) in e
        .read_records(&view, 0, &keys, &ptrs)
        .into_iter()
        .enumerate()
    {
        let v = r.unwrap_or_else(|err| panic!("{}: {err}", keys[i].escape_ascii()));
        assert_eq!(v.as_ref(), value_for(i as u32, 0, 2000).as_slice());
    }
    drop(view);
    // A view taken now resolves the new pointers.
    let view = e.index_view();
    let mut n = 0;
    e.index_entries(&view, 0, seq, |_, v| {
        if let IndexValue::Pointer(p) = v {
            assert_ne!(p.segment, first);
            n += 1;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 200);
}
