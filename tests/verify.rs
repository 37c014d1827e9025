//! `Db::verify` reads every byte the database owns (issue 12, item 3): a
//! flipped byte in a *garbage* record, in an SSTable block and in a hint
//! file are each found, all of them in one report, with the counts of what
//! was read; a clean database reports no damage. On the real file system.

use std::path::{Path, PathBuf};
use wisckey::{Db, Options, TableOptions};

fn opts() -> Options {
    Options::default()
        .segment_size(64 << 10)
        .memtable_size(64 << 10)
        .block_size(1024)
        .background_gc(false)
}

/// Live and overwritten (garbage) values in the sealed segments, SSTables,
/// and an unordered table with hint files.
fn build(dir: &Path) {
    let db = Db::open(dir, opts()).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
    for i in 0..40u32 {
        db.put(format!("live{i:04}"), vec![1u8; 3000]).unwrap();
        db.put(format!("gone{i:04}"), vec![2u8; 3000]).unwrap();
        db.put(format!("small{i:04}"), format!("inline value {i}"))
            .unwrap();
        u.put(format!("u{i:04}"), vec![4u8; 2000]).unwrap();
    }
    for i in 0..40u32 {
        db.put(format!("gone{i:04}"), vec![3u8; 3000]).unwrap();
    }
    db.compact().unwrap();
    drop(u);
    db.close().unwrap();
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

/// Flips a bit at `at` (from the start, or from the end when negative).
fn flip(path: &Path, at: i64) {
    let mut b = std::fs::read(path).unwrap();
    let i = if at >= 0 {
        at as usize
    } else {
        b.len() - (-at) as usize
    };
    b[i] ^= 0x08;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_clean_database_is_clean_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let db = Db::open(dir.path(), opts()).unwrap();
    let r = db.verify().unwrap();
    assert!(r.is_clean(), "{:?}", r.damage);
    let c = &r.checked;
    assert!(
        c.segments >= 3 && c.records >= 200 && c.segment_bytes > 0,
        "{c:?}"
    );
    assert!(c.sstables >= 1 && c.blocks > c.sstables * 3, "{c:?}");
    assert!(c.hint_files >= 1 && c.manifest_records >= 1, "{c:?}");
    assert_eq!(c.keys, 160);
    assert_eq!(r.entries, 160);
}

#[test]
fn damage_anywhere_is_found_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // A garbage record: the first overwritten value, in the oldest segment.
    let seg = files(dir.path(), ".vlog")[0].clone();
    let bytes = std::fs::read(&seg).unwrap();
    let garbage_at = bytes
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 2))
        .expect("an overwritten value");
    flip(&seg, garbage_at as i64 + 10);
    // An SSTable: a byte of its first data block.
    let sst = files(dir.path(), ".sst")[0].clone();
    flip(&sst, 20);
    // A hint file (of another segment: with the hint of the damaged segment
    // gone too, open would scan that segment and refuse it).
    let hint = files(dir.path(), ".hint").last().unwrap().clone();
    assert_ne!(
        hint.file_stem(),
        seg.file_stem(),
        "the fixture needs a hint of another segment"
    );
    flip(&hint, -6);

    // Read-only, as `vlog-tools verify` opens it: a writer's open would
    // have rescanned the segment and written its hint again.
    let db = Db::open_read_only(dir.path(), opts()).unwrap();
    let r = db.verify().unwrap();
    assert!(!r.is_clean());
    let names = |p: &Path| r.damage.iter().filter(|d| d.file == p).count();
    assert_eq!(names(&seg), 1, "{:#?}", r.damage);
    assert!(names(&sst) >= 1, "{:#?}", r.damage);
    assert_eq!(names(&hint), 1, "{:#?}", r.damage);
    let d = r.damage.iter().find(|d| d.file == seg).unwrap();
    assert!(
        d.offset <= garbage_at as u64 && garbage_at as u64 - d.offset < 64,
        "the damage is reported at its record ({} for a value at {garbage_at})",
        d.offset
    );
    // The counts are there with the damage: every segment was read on.
    assert!(
        r.checked.segments >= 3 && r.checked.records > 100,
        "{:?}",
        r.checked
    );
    assert!(r.checked.keys > 0);
}
