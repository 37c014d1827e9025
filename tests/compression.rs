//! Value compression through the public API: values read back the same
//! through every read path, incompressible ones are stored raw, the setting
//! survives reopening, GC moves compressed values, dictionaries are used,
//! kept while a segment uses them and removed after, a missing dictionary
//! is refused by name, damage is `Error::Corruption`, and a database in a
//! newer format is refused.

use std::collections::BTreeMap;
use std::path::Path;
use wisckey::{Db, Error, GcOptions, Options, Table, TableOptions, ValueCompression};

const ZSTD: ValueCompression = ValueCompression::Zstd { level: 3 };

fn opts() -> Options {
    Options::default()
        .background_gc(false)
        .disk_reserve(false)
        .segment_size(64 << 10)
        .memtable_size(64 << 10)
}

/// A JSON-like document of about `len` bytes: repeated field names, a
/// small vocabulary, the key's number in it.
fn doc(i: u32, round: u32, len: usize) -> Vec<u8> {
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let mut s = format!("{{\"id\":{i},\"round\":{round},\"items\":[");
    let mut j = 0usize;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"name\":\"{}\",\"count\":{},\"tag\":\"{}\"}},",
            words[(i as usize + j) % words.len()],
            (j * 7 + i as usize) % 100,
            words[j % 3]
        ));
        j += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

/// Bytes that do not compress.
fn noise(i: u32, len: usize) -> Vec<u8> {
    let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Puts into `t` (and `m`): documents of 1-6 KiB, some small (inline)
/// values and some noise.
fn fill(t: &Table, m: &mut Model, n: u32, round: u32) {
    for i in 0..n {
        let v = match i % 10 {
            0 => noise(i + round, 3000),
            1 => doc(i, round, 200),
            _ => doc(i, round, 1024 + (i as usize * 37) % 5000),
        };
        t.put(key(i), &v).unwrap();
        m.insert(key(i), v);
    }
}

fn check(t: &Table, m: &Model, ctx: &str) {
    for (k, v) in m {
        let got = t.get(k).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(&v[..]),
            "{ctx}: get {}",
            String::from_utf8_lossy(k)
        );
    }
    let keys: Vec<&Vec<u8>> = m.keys().collect();
    let many = t.multi_get(&keys).unwrap();
    for ((k, v), got) in m.iter().zip(many) {
        assert_eq!(
            got.as_deref(),
            Some(&v[..]),
            "{ctx}: multi_get {}",
            String::from_utf8_lossy(k)
        );
    }
    if t.kind() == wisckey::TableKind::Ordered {
        let all: Model = t
            .iter()
            .map(|kv| kv.unwrap())
            .map(|(k, v)| (k, v.to_vec()))
            .collect();
        assert_eq!(&all, m, "{ctx}: scan");
    }
}

fn dict_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dict"))
        .collect();
    v.sort();
    v
}

#[test]
fn compressed_values_read_back_and_the_setting_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut mo, mut mu) = (Model::new(), Model::new());
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let o = db
            .table("o", TableOptions::ordered().value_compression(ZSTD))
            .unwrap();
        let u = db
            .table("u", TableOptions::unordered().value_compression(ZSTD))
            .unwrap();
        let plain = db.table("plain", TableOptions::ordered()).unwrap();
        fill(&o, &mut mo, 300, 0);
        fill(&u, &mut mu, 300, 0);
        plain.put(b"p", doc(1, 0, 4000)).unwrap();
        check(&o, &mo, "ordered");
        check(&u, &mu, "unordered");
        let s = db.stats();
        assert!(
            s.value_bytes_stored * 3 < s.value_bytes_raw,
            "{} of {}",
            s.value_bytes_stored,
            s.value_bytes_raw
        );
        // Every tenth value is noise: tried, stored raw.
        assert_eq!(s.values_incompressible, 60, "{s:?}");
        let by_name = |n: &str| s.table_values.iter().find(|t| t.name == n).unwrap().clone();
        assert_eq!(by_name("o").compression, "zstd:3");
        assert_eq!(by_name("plain").compression, "none");
        assert_eq!(by_name("plain").raw_bytes, by_name("plain").stored_bytes);
        assert!(by_name("u").stored_bytes < by_name("u").raw_bytes);
        db.close().unwrap();
    }
    // Reopened with options that do not say: the tables still compress.
    let db = Db::open(dir.path(), opts()).unwrap();
    let o = db.table("o", TableOptions::ordered()).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
    check(&o, &mo, "ordered after reopen");
    check(&u, &mu, "unordered after reopen");
    fill(&o, &mut mo, 50, 1);
    let s = db.stats();
    let so = s.table_values.iter().find(|t| t.name == "o").unwrap();
    assert!(so.stored_bytes * 3 < so.raw_bytes, "{so:?}");
    // Turned off: new values are stored raw, old ones still read.
    drop(o);
    let o = db
        .table(
            "o",
            TableOptions::ordered().value_compression(ValueCompression::None),
        )
        .unwrap();
    o.put(b"raw", doc(9, 9, 5000)).unwrap();
    mo.insert(b"raw".to_vec(), doc(9, 9, 5000));
    check(&o, &mo, "after turning compression off");
    assert!(db.verify().unwrap().is_clean());
    drop((o, u));
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let o = db.table("o", TableOptions::ordered()).unwrap();
    check(&o, &mo, "reopened after turning it off");
    let s = db.stats();
    assert_eq!(
        s.table_values
            .iter()
            .find(|t| t.name == "o")
            .unwrap()
            .compression,
        "none"
    );
}

#[test]
fn gc_moves_compressed_values_and_they_survive_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (mut mo, mut mu) = (Model::new(), Model::new());
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let o = db
            .table("o", TableOptions::ordered().value_compression(ZSTD))
            .unwrap();
        let u = db
            .table("u", TableOptions::unordered().value_compression(ZSTD))
            .unwrap();
        for round in 0..3 {
            fill(&o, &mut mo, 300, round);
            fill(&u, &mut mu, 300, round);
        }
        db.flush().unwrap();
        let r = db.gc(GcOptions::default().all_sealed(true)).unwrap();
        assert!(r.records_moved > 0, "{r:?}");
        check(&o, &mo, "after GC");
        check(&u, &mu, "after GC");
        // A last round only in the vLog: replayed at the next open.
        fill(&o, &mut mo, 40, 7);
        fill(&u, &mut mu, 40, 7);
        assert!(db.verify().unwrap().is_clean());
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    check(
        &db.table("o", TableOptions::ordered()).unwrap(),
        &mo,
        "reopened",
    );
    check(
        &db.table("u", TableOptions::unordered()).unwrap(),
        &mu,
        "reopened",
    );
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn dictionaries_are_used_kept_while_needed_and_removed_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let o = db
        .table("o", TableOptions::ordered().value_compression(ZSTD))
        .unwrap();
    let u = db
        .table("u", TableOptions::unordered().value_compression(ZSTD))
        .unwrap();
    let (mut mo, mut mu) = (Model::new(), Model::new());
    fill(&o, &mut mo, 200, 0);
    fill(&u, &mut mu, 200, 0);
    let d1 = o.train_dictionary().unwrap();
    let du = u.train_dictionary().unwrap();
    assert_eq!(dict_files(dir.path()).len(), 2);
    let before = db
        .stats()
        .table_values
        .iter()
        .find(|t| t.name == "o")
        .unwrap()
        .clone();
    fill(&o, &mut mo, 200, 1);
    fill(&u, &mut mu, 200, 1);
    let after = db
        .stats()
        .table_values
        .iter()
        .find(|t| t.name == "o")
        .unwrap()
        .clone();
    assert_eq!(after.dictionary, Some(d1));
    // The dictionary does better than zstd alone on these values.
    let (raw, stored) = (
        after.raw_bytes - before.raw_bytes,
        after.stored_bytes - before.stored_bytes,
    );
    assert!(
        stored * before.raw_bytes < before.stored_bytes * raw,
        "{before:?} {after:?}"
    );
    check(&o, &mo, "with a dictionary");
    check(&u, &mu, "with a dictionary");
    // A second dictionary: the first stays while segments use it.
    let d2 = o.train_dictionary().unwrap();
    assert!(d2 > d1);
    assert!(db.stats().dictionaries.iter().any(|d| d.id == d1));
    assert_eq!(dict_files(dir.path()).len(), 3);
    fill(&o, &mut mo, 200, 2);
    check(&o, &mo, "second dictionary");
    // GC over every sealed segment recompresses what used the first one;
    // once no segment does, it goes.
    for _ in 0..3 {
        fill(&o, &mut mo, 200, 3);
        db.flush().unwrap();
        db.gc(GcOptions::default().all_sealed(true)).unwrap();
    }
    let ids: Vec<u64> = db.stats().dictionaries.iter().map(|d| d.id).collect();
    assert!(!ids.contains(&d1), "{ids:?}");
    assert!(ids.contains(&d2) && ids.contains(&du), "{ids:?}");
    assert!(!dict_files(dir.path()).contains(&format!("{d1:06}.dict")));
    check(&o, &mo, "after the first dictionary went");
    check(&u, &mu, "after the first dictionary went");
    drop((o, u));
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(
        &db.table("o", TableOptions::ordered()).unwrap(),
        &mo,
        "reopened",
    );
    check(
        &db.table("u", TableOptions::unordered()).unwrap(),
        &mu,
        "reopened",
    );
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn training_needs_a_compressed_table_with_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let plain = db.table("plain", TableOptions::ordered()).unwrap();
    plain.put(b"k", doc(1, 1, 3000)).unwrap();
    assert!(matches!(
        plain.train_dictionary(),
        Err(Error::InvalidArgument(_))
    ));
    let empty = db
        .table("empty", TableOptions::ordered().value_compression(ZSTD))
        .unwrap();
    assert!(matches!(
        empty.train_dictionary(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(dict_files(dir.path()).is_empty());
}

#[test]
fn a_missing_dictionary_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let db = Db::open(dir.path(), opts()).unwrap();
        let o = db
            .table("o", TableOptions::ordered().value_compression(ZSTD))
            .unwrap();
        fill(&o, &mut Model::new(), 200, 0);
        let id = o.train_dictionary().unwrap();
        fill(&o, &mut Model::new(), 50, 1);
        db.close().unwrap();
        id
    };
    let name = format!("{id:06}.dict");
    std::fs::remove_file(dir.path().join(&name)).unwrap();
    match Db::open(dir.path(), opts()) {
        Err(e @ Error::Corruption { .. }) => assert!(e.to_string().contains(&name), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(Db::open_read_only(dir.path(), opts()).is_err());
}

#[test]
fn a_damaged_compressed_value_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let o = db
            .table("o", TableOptions::ordered().value_compression(ZSTD))
            .unwrap();
        o.put(b"k", doc(1, 1, 6000)).unwrap();
        db.flush().unwrap();
        db.close().unwrap();
    }
    // Flip a byte in the middle of the one big record.
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".vlog"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    assert!(b.len() < 3000, "compressed: {} bytes", b.len());
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&seg, &b).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let o = db.table("o", TableOptions::ordered()).unwrap();
    assert!(matches!(o.get(b"k"), Err(Error::Corruption { .. })));
}

#[test]
fn a_database_in_a_newer_format_is_refused_with_its_version() {
    let dir = tempfile::tempdir().unwrap();
    Db::open(dir.path(), opts()).unwrap().close().unwrap();
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = dir.path().join(current.trim());
    // One more edit: format version 99 (tag 20), then a field this build
    // does not know (tag 99).
    let payload = [20u8, 99, 99, 0];
    let mut rec = (payload.len() as u32).to_le_bytes().to_vec();
    rec.extend_from_slice(&crc32(&payload).to_le_bytes());
    rec.extend_from_slice(&payload);
    let mut b = std::fs::read(&manifest).unwrap();
    b.extend_from_slice(&rec);
    std::fs::write(&manifest, &b).unwrap();
    for r in [
        Db::open(dir.path(), opts()),
        Db::open_read_only(dir.path(), opts()),
    ] {
        match r {
            Err(Error::Unsupported(m)) => {
                assert!(
                    m.contains("format version 99") && m.contains("newer"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}

/// CRC-32 (IEEE), bit by bit: the manifest's record checksum.
fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Writers on four threads while dictionaries are trained again and again
/// and GC runs: every acknowledged value reads back, before and after a
/// reopen, and only dictionaries that segments use are left.
#[test]
fn training_and_gc_under_concurrent_writers() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let o = db
        .table("o", TableOptions::ordered().value_compression(ZSTD))
        .unwrap();
    let u = db
        .table("u", TableOptions::unordered().value_compression(ZSTD))
        .unwrap();
    fill(&o, &mut Model::new(), 100, 0);
    fill(&u, &mut Model::new(), 100, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let (o, u, stop) = (o.clone(), u.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut mo, mut mu) = (Model::new(), Model::new());
                let mut round = 1;
                while !stop.load(Ordering::Relaxed) || round < 4 {
                    for i in (w * 1000)..(w * 1000 + 50) {
                        let v = doc(i, round, 1024 + (i as usize * 53) % 4000);
                        o.put(key(i), &v).unwrap();
                        u.put(key(i), &v).unwrap();
                        mo.insert(key(i), v.clone());
                        mu.insert(key(i), v);
                    }
                    round += 1;
                }
                (mo, mu)
            })
        })
        .collect();
    for _ in 0..6 {
        o.train_dictionary().unwrap();
        u.train_dictionary().unwrap();
        db.flush().unwrap();
        db.gc(GcOptions::default().all_sealed(true)).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (mut mo, mut mu) = (Model::new(), Model::new());
    for w in writers {
        let (a, b) = w.join().unwrap();
        mo.extend(a);
        mu.extend(b);
    }
    for (k, v) in &mo {
        assert_eq!(o.get(k).unwrap().as_deref(), Some(&v[..]));
    }
    for (k, v) in &mu {
        assert_eq!(u.get(k).unwrap().as_deref(), Some(&v[..]));
    }
    db.flush().unwrap();
    db.gc(GcOptions::default().all_sealed(true)).unwrap();
    let kept = db.stats().dictionaries.len();
    assert!(kept < 12, "{kept} of the 12 trained are kept");
    assert!(db.verify().unwrap().is_clean());
    drop((o, u));
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let o = db.table("o", TableOptions::ordered()).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
    for (k, v) in &mo {
        assert_eq!(o.get(k).unwrap().as_deref(), Some(&v[..]), "reopened");
    }
    for (k, v) in &mu {
        assert_eq!(u.get(k).unwrap().as_deref(), Some(&v[..]), "reopened");
    }
    assert_eq!(dict_files(dir.path()).len(), db.stats().dictionaries.len());
}
