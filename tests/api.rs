//! End-to-end checks of the public API (docs/api.md), through the front door only.

use wisckey::{Db, Error, Options, TableOptions, WriteBatch, WriteOptions};

fn small_opts() -> Options {
    Options::default()
        .memtable_size(64 << 10)
        .segment_size(256 << 10)
        .l0_compaction_trigger(3)
        .target_file_size(32 << 10)
        .block_size(512)
}

fn collect(
    it: impl Iterator<Item = wisckey::Result<(Vec<u8>, wisckey::Value)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|kv| kv.map(|(k, v)| (k, v.into_vec())))
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn put_get_delete_scan_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    for i in 0..2000u32 {
        let v = if i % 3 == 0 {
            vec![i as u8; 3000]
        } else {
            format!("v{i}").into_bytes()
        };
        db.put(format!("k{i:05}"), v).unwrap();
    }
    for i in (0..2000u32).step_by(7) {
        db.delete(format!("k{i:05}")).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    let check = |db: &Db| {
        for i in 0..2000u32 {
            let got = db.get(format!("k{i:05}")).unwrap();
            if i % 7 == 0 {
                assert!(got.is_none(), "k{i} should be deleted");
            } else {
                let v = if i % 3 == 0 {
                    vec![i as u8; 3000]
                } else {
                    format!("v{i}").into_bytes()
                };
                assert_eq!(got.unwrap().into_vec(), v, "k{i}");
            }
        }
        let all = collect(db.prefix(b"k"));
        let expect: Vec<Vec<u8>> = (0..2000u32)
            .filter(|i| i % 7 != 0)
            .map(|i| format!("k{i:05}").into_bytes())
            .collect();
        let got: Vec<Vec<u8>> = all.iter().map(|kv| kv.0.clone()).collect();
        if got != expect {
            for (i, k) in got.iter().enumerate() {
                if expect.get(i) != Some(k) {
                    panic!(
                        "first difference at {i}: got {:?} expected {:?}",
                        String::from_utf8_lossy(k),
                        expect
                            .get(i)
                            .map(|e| String::from_utf8_lossy(e).into_owned())
                    );
                }
            }
            panic!(
                "extra at end: {:?}",
                String::from_utf8_lossy(&got[got.len() - 1])
            );
        }
        let mut rev = collect(db.prefix(b"k").rev());
        rev.reverse();
        assert_eq!(all, rev);
        let r = collect(db.range(b"k00100".as_slice()..b"k00200".as_slice()));
        assert_eq!(r.len(), (100..200).filter(|i| i % 7 != 0).count());
    };
    check(&db);
    db.put(b"after", b"compaction").unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    check(&db);
    assert_eq!(db.get(b"after").unwrap().unwrap(), b"compaction");
}

#[test]
fn batches_tables_snapshots_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let users = db.table("users", TableOptions::ordered()).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"a", b"1");
    b.put_in(&users, b"a", b"u1");
    b.delete(b"zz");
    db.write(b, WriteOptions::default().sync(true)).unwrap();
    let snap = db.snapshot();
    db.put(b"a", b"2").unwrap();
    users.delete(b"a").unwrap();
    assert_eq!(snap.get(b"a").unwrap().unwrap(), b"1");
    assert_eq!(snap.get_in(&users, b"a").unwrap().unwrap(), b"u1");
    assert_eq!(db.get(b"a").unwrap().unwrap(), b"2");
    assert!(users.get(b"a").unwrap().is_none());
    db.flush().unwrap();
    assert_eq!(snap.get(b"a").unwrap().unwrap(), b"1");
    assert!(matches!(
        Db::open(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
    assert!(matches!(
        db.put(vec![0u8; 70_000], b"x"),
        Err(Error::InvalidArgument(_))
    ));
    let blobs = db.table("blobs", TableOptions::unordered()).unwrap();
    assert!(matches!(
        db.table("blobs", TableOptions::ordered()),
        Err(Error::InvalidArgument(_))
    ));
    // An unordered table walks whole (in no order), but not over a range.
    assert!(blobs.range(..).next().is_none());
    let mut it = blobs.range(b"a".to_vec()..);
    assert!(matches!(it.next(), Some(Err(Error::Unsupported(_)))));
    assert!(it.next().is_none());
    drop(it);
    drop(blobs);
    let vals = db.multi_get(&[b"a".as_slice(), b"nope"]).unwrap();
    assert_eq!(vals[0].as_deref(), Some(&b"2"[..]));
    assert!(vals[1].is_none());
    drop(snap);
    drop(users);
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let users = db.table("users", TableOptions::ordered()).unwrap();
    assert!(users.get(b"a").unwrap().is_none());
    assert_eq!(db.get(b"a").unwrap().unwrap(), b"2");
    assert_eq!(
        db.table_names(),
        vec!["users".to_string(), "blobs".to_string()]
    );
}

#[test]
fn missing_current_with_data_is_corruption_not_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"precious", vec![1u8; 5000]).unwrap();
    db.close().unwrap();
    std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
    let err = Db::open(dir.path(), Options::default()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    // The data files are still there.
    let vlogs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".vlog")
        })
        .count();
    assert!(vlogs >= 1);
}
