//! `ReadOptions`: reads at a snapshot, and `fill_cache(false)` reads that
//! use the block cache but leave it as it was.

use wisckey::{Db, Error, Options, ReadOptions, TableOptions};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

#[test]
fn snapshot_reads_through_read_options() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let t = db.table("t", TableOptions::ordered()).unwrap();
    for i in 0..100 {
        t.put(key(i), b"old").unwrap();
    }
    let snap = db.snapshot();
    for i in 0..100 {
        t.put(key(i), b"new").unwrap();
    }
    t.put(key(500), b"later").unwrap();
    let ro = ReadOptions::default().snapshot(&snap);
    assert_eq!(
        t.get_opt(key(3), &ro).unwrap().as_deref(),
        Some(&b"old"[..])
    );
    assert!(t.get_opt(key(500), &ro).unwrap().is_none());
    let got = t.multi_get_opt(&[key(1), key(500)], &ro).unwrap();
    assert_eq!(got[0].as_deref(), Some(&b"old"[..]));
    assert!(got[1].is_none());
    let all: Vec<_> = t.range_opt(.., &ro).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 100);
    assert!(all.iter().all(|(_, v)| v.as_ref() == b"old"));
    let now = ReadOptions::default();
    assert_eq!(
        t.get_opt(key(3), &now).unwrap().as_deref(),
        Some(&b"new"[..])
    );

    // A snapshot of another database is refused, not misread.
    let dir2 = tempfile::tempdir().unwrap();
    let other = Db::open(dir2.path(), Options::default()).unwrap();
    let foreign = other.snapshot();
    let bad = ReadOptions::default().snapshot(&foreign);
    assert!(matches!(
        t.get_opt(key(3), &bad),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        t.range_opt(.., &bad).next(),
        Some(Err(Error::InvalidArgument(_)))
    ));
    // An unordered table created after the snapshot is empty in it.
    let u = db.table("u", TableOptions::unordered()).unwrap();
    u.put(key(1), b"u").unwrap();
    assert!(u.get_opt(key(1), &ro).unwrap().is_none());
    assert!(u.get_opt(key(1), &now).unwrap().is_some());
}

#[test]
fn fill_cache_false_uses_the_cache_but_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default().block_size(1024);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    for i in 0..5000 {
        db.put(key(i), [i as u8; 100]).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    // A cold cache.
    let db = Db::open(dir.path(), opts).unwrap();
    let blocks = |db: &Db| db.stats().block_cache_blocks;
    let start = blocks(&db);
    let no_fill = ReadOptions::default().fill_cache(false);
    for i in (0..5000).step_by(50) {
        assert_eq!(db.get_opt(key(i), &no_fill).unwrap().unwrap().len(), 100);
    }
    let n = db.range_opt(.., &no_fill).filter(|r| r.is_ok()).count();
    assert_eq!(n, 5000);
    assert_eq!(blocks(&db), start, "a no-fill read filled the cache");
    // A default read fills it; a no-fill read then hits.
    db.get(key(42)).unwrap().unwrap();
    assert_eq!(blocks(&db), start + 1);
    let hits = db.stats().block_cache_hits;
    db.get_opt(key(42), &no_fill).unwrap().unwrap();
    assert_eq!(db.stats().block_cache_hits, hits + 1);
    assert_eq!(blocks(&db), start + 1);
}

/// `verify_checksums(false)` reads a value whose record has a flipped bit
/// (the default read reports `Corruption`), but still refuses a pointer to
/// the wrong record.
#[test]
fn verify_checksums_false_skips_only_the_record_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let value = vec![0x41u8; 8192];
    db.put(key(1), &value).unwrap();
    db.put(key(2), &value).unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    // Flip one byte inside the first record's value (records start at
    // offset 0 of the first segment: header 21 bytes, then the key).
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".vlog"))
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = 21 + key(1).len() + 100;
    assert_eq!(bytes[at], 0x41);
    bytes[at] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(db.get(key(1)), Err(Error::Corruption { .. })));
    let lax = ReadOptions::default().verify_checksums(false);
    let got = db.get_opt(key(1), &lax).unwrap().unwrap();
    assert_eq!(got.len(), value.len());
    assert_eq!(got[100], 0x40, "the flipped byte is read as it is");
    assert_eq!(
        db.get_opt(key(2), &lax).unwrap().unwrap().as_ref(),
        &value[..]
    );
    let all: Vec<_> = db.range_opt(.., &lax).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        db.range(..).any(|r| r.is_err()),
        "the default scan still checks"
    );
}
