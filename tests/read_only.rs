//! Read-only opens change nothing: every file of a database hashes the same
//! before and after a read-only open that reads everything (also with a torn
//! tail, a crashed GC pass's bytes, missing hints and leftover files, which
//! a writer's open would repair), every write is refused, the lock is
//! shared between read-only opens and exclusive against a writer, and a
//! database on a read-only mount can be opened and read.
//!
//! Also `create_if_missing(false)` and the refusal of a directory that
//! holds files of something else, which must not leave a LOCK behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use wisckey::{Db, Error, GcOptions, Options, TableOptions};

/// Every file of `dir` with its length and an FNV-1a hash of its bytes
/// (enough to see any change).
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(e.path()).unwrap();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        out.insert(name, (bytes.len() as u64, h));
    }
    out
}

fn opts() -> Options {
    Options::default()
        .segment_size(32 << 10)
        .memtable_size(32 << 10)
        .background_gc(false)
}

/// A database with an ordered and an unordered table, several sealed
/// segments with hints, SSTables, a GC segment, and an unflushed tail.
fn build(dir: &Path) {
    let db = Db::open(dir, opts()).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
    for round in 0..3u32 {
        for i in 0..100u32 {
            db.put(format!("k{i:03}"), vec![round as u8; 1500]).unwrap();
            u.put(format!("u{i:03}"), vec![round as u8 + 10; 700])
                .unwrap();
        }
    }
    db.compact().unwrap();
    db.gc(GcOptions::default().max_segments(4).min_garbage_ratio(0.0))
        .unwrap();
    for i in 0..20u32 {
        db.put(format!("t{i:03}"), b"tail").unwrap();
    }
    drop(u);
    db.close().unwrap();
}

/// Opens read-only and reads everything a user can; returns the count.
fn read_all(dir: &Path) -> u64 {
    let db = Db::open_read_only(dir, opts()).unwrap();
    let mut n = 0u64;
    for kv in db.iter() {
        kv.unwrap();
        n += 1;
    }
    let u = db.table("u", TableOptions::unordered()).unwrap();
    for k in u.keys() {
        let k = k.unwrap();
        assert!(u.get(&k).unwrap().is_some());
        n += 1;
    }
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.damage);
    assert_eq!(report.entries, n);
    let _ = db.stats();
    // Every call that would write is refused, and changes nothing.
    assert!(matches!(db.put(b"x", b"y"), Err(Error::ReadOnly(_))));
    assert!(matches!(u.delete(b"u001"), Err(Error::ReadOnly(_))));
    assert!(matches!(db.flush(), Err(Error::ReadOnly(_))));
    assert!(matches!(db.compact(), Err(Error::ReadOnly(_))));
    assert!(matches!(
        db.gc(GcOptions::default()),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        db.table("new", TableOptions::ordered()),
        Err(Error::ReadOnly(_))
    ));
    db.sync().unwrap();
    db.wait_for_background().unwrap();
    db.close().unwrap();
    n
}

#[test]
fn a_read_only_open_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = snapshot(dir.path());
    assert_eq!(read_all(dir.path()), 120 + 100);
    assert_eq!(snapshot(dir.path()), before);

    // What a writer's open would repair is only reported: a torn tail of
    // the newest segment, a missing hint, a leftover file.
    let newest = before
        .keys()
        .filter(|n| n.ends_with(".vlog") && !n.ends_with(".gc.vlog"))
        .max()
        .unwrap()
        .clone();
    let seg = dir.path().join(&newest);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x5a; 37]);
    std::fs::write(&seg, bytes).unwrap();
    let hint = before
        .keys()
        .find(|n| n.ends_with(".hint"))
        .unwrap()
        .clone();
    std::fs::remove_file(dir.path().join(&hint)).unwrap();
    std::fs::write(dir.path().join("000999.sst.tmp"), b"left over").unwrap();
    let damaged = snapshot(dir.path());
    assert_eq!(read_all(dir.path()), 120 + 100);
    assert_eq!(snapshot(dir.path()), damaged);
    // A writer repairs them.
    drop(Db::open(dir.path(), opts()).unwrap());
    let repaired = snapshot(dir.path());
    assert!(repaired.contains_key(&hint));
    assert!(!repaired.contains_key("000999.sst.tmp"));
}

#[test]
fn read_only_opens_share_the_lock_and_exclude_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let a = Db::open_read_only(dir.path(), opts()).unwrap();
    let b = Db::open_read_only(dir.path(), opts()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), opts()),
        Err(Error::Locked(_))
    ));
    drop(a);
    // One read-only handle left: still no writer.
    assert!(matches!(
        Db::open(dir.path(), opts()),
        Err(Error::Locked(_))
    ));
    assert!(b.get(b"k001").unwrap().is_some());
    drop(b);
    let w = Db::open(dir.path(), opts()).unwrap();
    assert!(matches!(
        Db::open_read_only(dir.path(), opts()),
        Err(Error::Locked(_))
    ));
    drop(w);
    drop(Db::open_read_only(dir.path(), opts()).unwrap());
}

#[test]
fn no_database_where_none_may_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    for o in [opts().create_if_missing(false), opts().read_only(true)] {
        match Db::open(&missing, o) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("no wisckey database"), "{m}"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
        assert!(!missing.exists());
    }
    std::fs::create_dir(&missing).unwrap();
    for o in [opts().create_if_missing(false), opts().read_only(true)] {
        assert!(matches!(
            Db::open(&missing, o),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(
            std::fs::read_dir(&missing).unwrap().count(),
            0,
            "it left files"
        );
    }
    // A directory of something else is refused, and no LOCK is left there.
    let other = dir.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), b"jpeg").unwrap();
    match Db::open(&other, opts()) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("cat.jpg"), "{m}"),
        r => panic!("expected a refusal, got {r:?}"),
    }
    let names: Vec<String> = std::fs::read_dir(&other)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cat.jpg"]);
    // With create_if_missing (the default) an empty directory becomes one.
    drop(Db::open(&missing, opts()).unwrap());
    drop(Db::open(&missing, opts().create_if_missing(false)).unwrap());
}

/// Mounts a tmpfs at a new directory, or says why it cannot.
fn mount_tmpfs(at: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(at)
        .output()
        .map_err(|e| format!("running mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn a_database_on_a_read_only_mount_opens_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    if let Err(why) = mount_tmpfs(&mnt) {
        eprintln!("skipped: cannot mount a tmpfs here ({why})");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let db_dir = mnt.join("db");
    build(&db_dir);
    let before = snapshot(&db_dir);
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(remount.success(), "remounting read-only failed");
    // A writer cannot open it (the directory cannot be written: EROFS) ...
    assert!(Db::open(&db_dir, opts()).is_err());
    // ... a read-only open reads everything, and the files are unchanged.
    assert_eq!(read_all(&db_dir), 120 + 100);
    assert_eq!(snapshot(&db_dir), before);
}
