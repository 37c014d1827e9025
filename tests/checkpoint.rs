//! Checkpoints: consistent under concurrent writers and GC (each one equal
//! to a snapshot taken under the same locks), independent of the source
//! afterwards (hard links never written in place), copies where links
//! fail, chosen tables only, cleanup after a failure, both I/O backends.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wisckey::testing::{FailMode, FaultFs, Repeat};
use wisckey::{
    CheckpointOptions, Db, Error, GcOptions, IoBackend, Options, TableKind, TableOptions,
    WriteBatch, WriteOptions,
};

type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

fn opts(backend: IoBackend) -> Options {
    Options::default()
        .memtable_size(64 << 10)
        .segment_size(64 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(32 << 10)
        .base_level_size(64 << 10)
        .gc_interval(std::time::Duration::from_millis(5))
        .io_backend(backend)
}

/// Everything an ordered table holds, by a scan.
fn scan(t: &wisckey::Table) -> Contents {
    t.iter()
        .map(|kv| kv.map(|(k, v)| (k, v.to_vec())))
        .collect::<wisckey::Result<_>>()
        .unwrap()
}

fn snapshot_contents(s: &wisckey::Snapshot, t: &wisckey::Table) -> Contents {
    s.range_in(t, ..)
        .map(|kv| kv.map(|(k, v)| (k, v.to_vec())))
        .collect::<wisckey::Result<_>>()
        .unwrap()
}

/// The unordered table's contents, read key by key for the keys `of`.
fn point_reads(t: &wisckey::Table, of: &Contents) -> Contents {
    let mut out = Contents::new();
    for k in t.keys().map(Result::unwrap) {
        out.insert(k.clone(), t.get(&k).unwrap().unwrap().to_vec());
    }
    for k in of.keys() {
        assert_eq!(
            t.get(k).unwrap().map(|v| v.to_vec()),
            out.get(k).cloned(),
            "get and keys agree"
        );
    }
    out
}

fn value(w: u64, i: u64, round: u64) -> Vec<u8> {
    // Mostly separated values, some inline ones.
    let len = if i.is_multiple_of(3) { 100 } else { 2500 };
    let mut v = vec![(w * 31 + i + round) as u8; len];
    v[..8].copy_from_slice(&round.to_le_bytes());
    v
}

/// Writers put and delete in batches that touch the default table, the
/// ordered table "t" and the unordered "u" alike (so "u" must equal "t" in
/// every checkpoint: batches are atomic); GC runs in the background and by
/// hand; checkpoints are taken meanwhile, each with the snapshot of the
/// same moment, and each opens equal to it.
fn checkpoints_under_writers_and_gc(backend: IoBackend) {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Db::open(src.path(), opts(backend)).unwrap();
    let t = db.table("t", TableOptions::ordered()).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for w in 0..3u64 {
        let (db, t, u, stop) = (db.clone(), t.clone(), u.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                for i in 0..40u64 {
                    let k = format!("w{w}-k{i:03}").into_bytes();
                    let mut b = WriteBatch::new();
                    if (i + round).is_multiple_of(7) {
                        b.delete(&k).delete_in(&t, &k).delete_in(&u, &k);
                    } else {
                        let v = value(w, i, round);
                        b.put(&k, &v).put_in(&t, &k, &v).put_in(&u, &k, &v);
                    }
                    db.write(b, WriteOptions::default().sync(i % 10 == 0))
                        .unwrap();
                }
            }
            round
        }));
    }
    let gc = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut passes = 0;
            while !stop.load(Ordering::Relaxed) {
                if db.gc(GcOptions::default().max_segments(4)).is_ok() {
                    passes += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
            passes
        })
    };
    let mut checked = 0;
    for n in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(60));
        let dir = out.path().join(format!("cp{n}"));
        let (info, snap) = db
            .checkpoint_with_snapshot(&dir, CheckpointOptions::default())
            .unwrap();
        assert_eq!(info.last_sequence, snap.sequence());
        assert!(info.files_linked > 0 || n == 0, "{info:?}");
        let want_default = {
            snap.range(..)
                .map(|kv| kv.map(|(k, v)| (k, v.to_vec())))
                .collect::<wisckey::Result<Contents>>()
                .unwrap()
        };
        let want_t = snapshot_contents(&snap, &t);
        drop(snap);
        let copy = Db::open(&dir, opts(backend)).unwrap();
        let ct = copy.table("t", TableOptions::ordered()).unwrap();
        let cu = copy.table("u", TableOptions::unordered()).unwrap();
        assert!(
            scan(&copy.default_table()) == want_default,
            "checkpoint {n}: default"
        );
        assert!(scan(&ct) == want_t, "checkpoint {n}: t");
        assert!(point_reads(&cu, &want_t) == want_t, "checkpoint {n}: u");
        assert!(copy.verify().unwrap().is_clean(), "checkpoint {n}");
        checked += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
    let passes = gc.join().unwrap();
    assert!(rounds > 3, "the writers ran ({rounds} rounds)");
    eprintln!("{checked} checkpoints, {rounds} write rounds, {passes} GC passes by hand");
}

#[test]
fn checkpoints_under_writers_and_gc_equal_their_snapshot() {
    checkpoints_under_writers_and_gc(IoBackend::Auto);
}

#[test]
fn checkpoints_under_writers_and_gc_sync_backend() {
    checkpoints_under_writers_and_gc(IoBackend::Sync);
}

#[test]
fn checkpoint_of_an_empty_database() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Db::open(src.path(), Options::default()).unwrap();
    let info = db.checkpoint(out.path().join("cp")).unwrap();
    assert_eq!(info.last_sequence, 0);
    let copy = Db::open(out.path().join("cp"), Options::default()).unwrap();
    assert!(copy.iter().next().is_none());
    copy.put(b"k", b"v").unwrap();
    assert!(db.get(b"k").unwrap().is_none());
    // An empty directory is accepted too; a non-empty one, or the
    // database's own, is not.
    let empty = out.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    db.checkpoint(&empty).unwrap();
    assert!(matches!(
        db.checkpoint(out.path().join("cp")),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.checkpoint(src.path()),
        Err(Error::InvalidArgument(_))
    ));
}

/// After a checkpoint the source overwrites everything, compacts and
/// collects every segment; the checkpoint (hard-linked) must not change.
/// Then the copy does the same, and the source must not change either.
#[test]
fn source_and_copy_never_change_each_other() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = || opts(IoBackend::Auto).background_gc(false);
    let db = Db::open(src.path(), o()).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
    for i in 0..400u64 {
        db.put(i.to_be_bytes(), value(0, i, 1)).unwrap();
        u.put(i.to_be_bytes(), value(1, i, 1)).unwrap();
    }
    db.flush().unwrap();
    // The GC head exists (a pass wrote to it) and is copied, not linked.
    db.gc(GcOptions::default().max_segments(2)).unwrap();
    for i in 0..100u64 {
        db.put(i.to_be_bytes(), value(0, i, 2)).unwrap();
    }
    let dir = out.path().join("cp");
    let info = db.checkpoint(&dir).unwrap();
    assert!(info.files_linked > 0 && info.files_copied > 0, "{info:?}");
    let read_all = |d: &Db| {
        let u = d.table("u", TableOptions::unordered()).unwrap();
        let mut m = scan(&d.default_table());
        for (k, v) in point_reads(&u, &Contents::new()) {
            m.insert([b"u:".as_slice(), &k].concat(), v);
        }
        m
    };
    let before = read_all(&db);
    {
        let copy = Db::open(&dir, o()).unwrap();
        assert!(
            read_all(&copy) == before,
            "the checkpoint opens as the source was"
        );
    }
    for round in 3..6 {
        for i in 0..400u64 {
            db.put(i.to_be_bytes(), value(0, i, round)).unwrap();
            u.put(i.to_be_bytes(), value(1, i, round)).unwrap();
        }
    }
    db.compact().unwrap();
    db.gc(GcOptions::default().max_segments(1000)).unwrap();
    db.gc(GcOptions::default().max_segments(1000)).unwrap();
    let source_now = read_all(&db);
    drop(u);
    db.close().unwrap();
    // Reopen the source (its torn-tail and GC-head checks run), then the copy.
    let db = Db::open(src.path(), o()).unwrap();
    let copy = Db::open(&dir, o()).unwrap();
    assert!(
        read_all(&copy) == before,
        "the source changed the checkpoint"
    );
    assert!(copy.verify().unwrap().is_clean());
    // The copy overwrites and collects: the source stays.
    let cu = copy.table("u", TableOptions::unordered()).unwrap();
    for i in 0..400u64 {
        copy.put(i.to_be_bytes(), b"copy").unwrap();
        cu.put(i.to_be_bytes(), b"copy").unwrap();
    }
    copy.compact().unwrap();
    copy.gc(GcOptions::default().max_segments(1000)).unwrap();
    drop(cu);
    drop(copy);
    assert!(
        read_all(&db) == source_now,
        "the checkpoint changed the source"
    );
    assert!(db.verify().unwrap().is_clean());
    drop(db);
    // The copy stands alone.
    drop(src);
    let copy = Db::open(&dir, o()).unwrap();
    assert_eq!(
        copy.get(7u64.to_be_bytes()).unwrap().as_deref(),
        Some(&b"copy"[..])
    );
}

/// Links off by option, and a file system without links (FaultFs): every
/// file is copied, and the copy is as good; it survives a power loss right
/// after the call returns.
#[test]
fn copies_where_links_are_off_or_fail() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Db::open(src.path(), opts(IoBackend::Auto)).unwrap();
    for i in 0..300u64 {
        db.put(i.to_be_bytes(), value(0, i, 1)).unwrap();
    }
    db.flush().unwrap();
    let info = db
        .checkpoint_with(
            out.path().join("cp"),
            CheckpointOptions::default().hard_links(false),
        )
        .unwrap();
    assert_eq!((info.files_linked, info.bytes_linked), (0, 0), "{info:?}");
    assert!(info.files_copied > 3);
    let copy = Db::open(out.path().join("cp"), Options::default()).unwrap();
    assert!(scan(&copy.default_table()) == scan(&db.default_table()));

    let fs = FaultFs::new();
    let fo = || opts(IoBackend::Auto).fs(Arc::new(fs.clone()));
    let db = Db::open("/src", fo()).unwrap();
    let t = db.table("t", TableOptions::ordered()).unwrap();
    for i in 0..300u64 {
        t.put(i.to_be_bytes(), value(2, i, 1)).unwrap();
    }
    db.flush().unwrap();
    for i in 0..50u64 {
        t.put(i.to_be_bytes(), value(2, i, 2)).unwrap();
    }
    let want = scan(&t);
    let info = db.checkpoint("/out/cp").unwrap();
    assert_eq!(info.files_linked, 0, "FaultFs has no hard links: {info:?}");
    // The power goes right after: the checkpoint was synced.
    fs.crash();
    drop((t, db));
    fs.power_loss(3);
    fs.recover();
    let copy = Db::open("/out/cp", fo()).unwrap();
    let ct = copy.table("t", TableOptions::ordered()).unwrap();
    assert!(
        scan(&ct) == want,
        "the copy lost writes after the power loss"
    );
}

/// A checkpoint that fails on the way removes what it made.
#[test]
fn a_failed_checkpoint_removes_what_it_made() {
    let fs = FaultFs::new();
    let fo = || opts(IoBackend::Auto).fs(Arc::new(fs.clone()));
    let db = Db::open("/src", fo()).unwrap();
    for i in 0..300u64 {
        db.put(i.to_be_bytes(), value(0, i, 1)).unwrap();
    }
    db.flush().unwrap();
    let mut failures = 0;
    for n in [2u64, 5, 9, 14, 20] {
        let dir = format!("/out/cp{n}");
        fs.fail_after(n, FailMode::Eio, Repeat::Once);
        match db.checkpoint(&dir) {
            Ok(_) => {
                fs.recover();
                let copy = Db::open(&dir, fo()).unwrap();
                assert_eq!(copy.iter().count(), 300);
            }
            Err(e) => {
                fs.recover();
                failures += 1;
                assert!(
                    !fs_has_files(&fs, Path::new(&dir)),
                    "after {e}, {dir} still holds files"
                );
            }
        }
    }
    assert!(failures > 0);
    // The source is fine.
    assert_eq!(db.iter().count(), 300);
    db.put(b"after", b"1").unwrap();
    // A poisoned database (a failed vLog write) makes no checkpoint.
    fs.fail_after(0, FailMode::Eio, Repeat::Once);
    let mut b = WriteBatch::new();
    b.put(b"k", b"v");
    assert!(db.write(b, WriteOptions::default().sync(true)).is_err());
    fs.recover();
    assert!(matches!(
        db.checkpoint("/out/poisoned"),
        Err(Error::Poisoned(_))
    ));
    assert!(!fs_has_files(&fs, Path::new("/out/poisoned")));
}

fn fs_has_files(fs: &FaultFs, dir: &Path) -> bool {
    use wisckey::io::Fs;
    fs.list(dir).map(|l| !l.is_empty()).unwrap_or(false)
}

#[test]
fn a_checkpoint_of_chosen_tables_holds_only_them() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = || opts(IoBackend::Auto).background_gc(false);
    let db = Db::open(src.path(), o()).unwrap();
    let keep = db.table("keep", TableOptions::ordered()).unwrap();
    let keep_u = db.table("keep-u", TableOptions::unordered()).unwrap();
    let other = db.table("other", TableOptions::ordered()).unwrap();
    let other_u = db.table("other-u", TableOptions::unordered()).unwrap();
    for i in 0..300u64 {
        let k = i.to_be_bytes();
        keep.put(k, value(1, i, 1)).unwrap();
        keep_u.put(k, value(2, i, 1)).unwrap();
        other.put(k, value(3, i, 1)).unwrap();
        other_u.put(k, value(4, i, 1)).unwrap();
        db.put(k, b"d").unwrap();
    }
    db.compact().unwrap();
    assert!(matches!(
        db.checkpoint_tables(out.path().join("bad"), &["keep", "nope"]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(!out.path().join("bad").exists());
    let info = db
        .checkpoint_tables(out.path().join("cp"), &["keep", "keep-u"])
        .unwrap();
    assert_eq!(info.tables, vec!["keep".to_string(), "keep-u".to_string()]);
    let copy = Db::open(out.path().join("cp"), o()).unwrap();
    let kinds: Vec<(String, TableKind)> = copy.table_kinds();
    assert_eq!(
        kinds,
        vec![
            ("keep".to_string(), TableKind::Ordered),
            ("keep-u".to_string(), TableKind::Unordered)
        ]
    );
    let ck = copy.table("keep", TableOptions::ordered()).unwrap();
    let cku = copy.table("keep-u", TableOptions::unordered()).unwrap();
    assert!(scan(&ck) == scan(&keep));
    assert_eq!(cku.keys().count(), 300);
    assert_eq!(copy.iter().count(), 300, "the default table is kept");
    let co = copy.table("other", TableOptions::ordered()).unwrap();
    assert!(co.iter().next().is_none(), "a new, empty table");
    // The copy reclaims the dropped tables' space.
    let live: u64 = copy
        .segment_usage()
        .unwrap()
        .iter()
        .map(|s| s.live_bytes)
        .sum();
    let src_live: u64 = db
        .segment_usage()
        .unwrap()
        .iter()
        .map(|s| s.live_bytes)
        .sum();
    assert!(live * 10 < src_live * 6, "{live} of {src_live}");
    copy.compact().unwrap();
    // The dropped tables' records are garbage in the copy's statistics
    // (which GC's policies go by), not only to its exact count.
    assert!(
        copy.stats().vlog_garbage_bytes > 300 * 3000,
        "{}",
        copy.stats().vlog_garbage_bytes
    );
    copy.gc(GcOptions::default().max_segments(1000)).unwrap();
    assert!(copy.stats().vlog_bytes < db.stats().vlog_bytes);
    assert!(scan(&ck) == scan(&keep));
    assert!(copy.verify().unwrap().is_clean());
}

fn tagged(tag: u8, i: u64) -> Vec<u8> {
    let mut v = vec![tag; if i.is_multiple_of(4) { 64 } else { 3000 }];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

/// A follower's table is replaced from a leader's checkpoint of it while
/// readers scan it by name: each scan sees the old contents or the new,
/// whole; old handles fail afterwards; the other tables stay; the old
/// contents' space comes back.
#[test]
fn replace_table_installs_a_checkpoint_atomically() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let o = || opts(IoBackend::Auto).background_gc(false);
    let leader = Db::open(a.path(), o()).unwrap();
    let lsm = leader.table("sm", TableOptions::ordered()).unwrap();
    for i in 0..500u64 {
        lsm.put(format!("n{i:04}"), tagged(2, i)).unwrap();
    }
    leader
        .table("scratch", TableOptions::ordered())
        .unwrap()
        .put(b"x", b"y")
        .unwrap();
    let snap_dir = out.path().join("snap");
    leader.checkpoint_tables(&snap_dir, &["sm"]).unwrap();
    let want = scan(&lsm);

    let follower = Db::open(b.path(), o()).unwrap();
    let fsm = follower.table("sm", TableOptions::ordered()).unwrap();
    let other = follower.table("other", TableOptions::unordered()).unwrap();
    for i in 0..800u64 {
        fsm.put(format!("o{i:04}"), tagged(1, i)).unwrap();
        other.put(i.to_be_bytes(), b"stay").unwrap();
    }
    follower.flush().unwrap();
    let old = scan(&fsm);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop, old, want) = (follower.clone(), stop.clone(), old.clone(), want.clone());
        std::thread::spawn(move || {
            let (mut saw_old, mut saw_new, mut stale) = (0, 0, 0);
            while !stop.load(Ordering::Relaxed) || saw_new == 0 {
                let t = db.table("sm", TableOptions::ordered()).unwrap();
                let got: wisckey::Result<Contents> = t
                    .iter()
                    .map(|kv| kv.map(|(k, v)| (k, v.to_vec())))
                    .collect();
                match got {
                    Ok(m) if m == old => saw_old += 1,
                    Ok(m) if m == want => saw_new += 1,
                    Ok(m) => panic!("a scan saw a mix: {} entries", m.len()),
                    Err(Error::InvalidArgument(e)) if e.contains("replaced") => stale += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            (saw_old, saw_new, stale)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(30));
    assert!(matches!(
        follower.replace_table("default", &snap_dir),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        follower.replace_table("scratch", &snap_dir),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(follower.replace_table("sm", &snap_dir).unwrap(), 500);
    stop.store(true, Ordering::Relaxed);
    let (saw_old, saw_new, stale) = reader.join().unwrap();
    eprintln!("reader scans: {saw_old} old, {saw_new} new, {stale} on a stale handle");
    assert!(saw_new > 0);

    assert!(matches!(fsm.get(b"o0001"), Err(Error::InvalidArgument(_))));
    drop(fsm);
    let fsm = follower.table("sm", TableOptions::ordered()).unwrap();
    assert!(scan(&fsm) == want, "the table is the checkpoint's");
    assert_eq!(other.keys().count(), 800);
    let names: Vec<String> = follower.table_names();
    assert_eq!(names, vec!["other".to_string(), "sm".to_string()]);
    follower.compact().unwrap();
    follower
        .gc(GcOptions::default().max_segments(1000))
        .unwrap();
    let live: u64 = follower
        .segment_usage()
        .unwrap()
        .iter()
        .map(|s| s.live_bytes)
        .sum();
    let new_bytes: u64 = want
        .iter()
        .filter(|(_, v)| v.len() > 1024)
        .map(|(k, v)| 25 + (k.len() + v.len()) as u64)
        .sum();
    let other_bytes = 0; // "stay" values are small but in the vLog (unordered)
    assert!(
        live >= new_bytes + other_bytes && live < new_bytes + 800 * 64,
        "{live}"
    );
    assert!(follower.verify().unwrap().is_clean());
    drop((fsm, other, follower));
    let follower = Db::open(b.path(), o()).unwrap();
    let fsm = follower.table("sm", TableOptions::ordered()).unwrap();
    assert!(scan(&fsm) == want, "after a reopen");
}

#[test]
fn replace_table_takes_the_checkpoints_kind() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let leader = Db::open(a.path(), Options::default()).unwrap();
    let u = leader.table("sm", TableOptions::unordered()).unwrap();
    for i in 0..300u64 {
        u.put(i.to_be_bytes(), tagged(5, i)).unwrap();
    }
    u.delete(7u64.to_be_bytes()).unwrap();
    leader
        .checkpoint_tables(out.path().join("s"), &["sm"])
        .unwrap();
    let follower = Db::open(b.path(), Options::default()).unwrap();
    follower
        .table("sm", TableOptions::ordered())
        .unwrap()
        .put(b"k", b"v")
        .unwrap();
    assert_eq!(
        follower.replace_table("sm", out.path().join("s")).unwrap(),
        299
    );
    assert_eq!(follower.tables()[0].kind, TableKind::Unordered);
    let t = follower.table("sm", TableOptions::unordered()).unwrap();
    assert_eq!(t.keys().count(), 299);
    assert!(t.get(7u64.to_be_bytes()).unwrap().is_none());
    assert_eq!(
        t.get(9u64.to_be_bytes()).unwrap().unwrap().to_vec(),
        tagged(5, 9)
    );
    // A missing table is created.
    follower.drop_table("sm").unwrap();
    assert_eq!(
        follower.replace_table("sm", out.path().join("s")).unwrap(),
        299
    );
    assert_eq!(follower.table_names(), vec!["sm".to_string()]);
}

/// A replace that fails half way (the disk fails under it, then the power
/// goes) leaves the table as it was, and the next open drops the hidden
/// table it was filling.
#[test]
fn a_failed_replace_leaves_the_table_as_it_was() {
    let fs = FaultFs::new();
    let fo = || {
        opts(IoBackend::Auto)
            .background_gc(false)
            .fs(Arc::new(fs.clone()))
    };
    let leader = Db::open("/a", fo()).unwrap();
    let t = leader.table("sm", TableOptions::ordered()).unwrap();
    for i in 0..2000u64 {
        t.put(i.to_be_bytes(), tagged(2, i)).unwrap();
    }
    leader.checkpoint_tables("/snap", &["sm"]).unwrap();
    drop((t, leader));
    let follower = Db::open("/b", fo()).unwrap();
    let t = follower.table("sm", TableOptions::ordered()).unwrap();
    for i in 0..100u64 {
        t.put(i.to_be_bytes(), tagged(1, i)).unwrap();
    }
    follower.sync().unwrap();
    let old = scan(&t);
    drop(t);
    let mut follower = follower;
    let mut failed = 0;
    // The failure lands in the hidden table's creation, the copy, the
    // sync or the swap.
    for n in [1u64, 3, 5, 8, 12, 20, 40, 80] {
        fs.fail_after(n, FailMode::Eio, Repeat::Persistent);
        let r = follower.replace_table("sm", "/snap");
        fs.crash();
        drop(follower);
        fs.power_loss(n);
        fs.recover();
        follower = Db::open("/b", fo()).unwrap();
        assert_eq!(follower.table_names(), vec!["sm".to_string()]);
        let t = follower.table("sm", TableOptions::ordered()).unwrap();
        let now = scan(&t);
        assert!(follower.verify().unwrap().is_clean());
        match r {
            Err(e) => {
                failed += 1;
                // The swap's edit may have reached the disk before its
                // sync failed: then the new contents are there, whole.
                assert!(
                    now == old || now.len() == 2000,
                    "after {e}: {} entries",
                    now.len()
                );
                if now.len() == 2000 {
                    break;
                }
            }
            Ok(_) => {
                assert_eq!(now.len(), 2000);
                break;
            }
        }
    }
    assert!(failed > 0);
    // Nothing hidden is left behind: the table ids in use are all listed.
    assert_eq!(follower.tables().len(), 1);
    assert_eq!(follower.replace_table("sm", "/snap").unwrap(), 2000);
}

/// Several tables replaced in one edit: a state machine's data and its
/// last-applied record come in together (and stay so after a reopen); bad
/// requests change nothing.
#[test]
fn replace_tables_swaps_them_together() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let leader = Db::open(a.path(), Options::default()).unwrap();
    let kv = leader.table("kv", TableOptions::ordered()).unwrap();
    let blobs = leader.table("blobs", TableOptions::unordered()).unwrap();
    let meta = leader.table("meta", TableOptions::ordered()).unwrap();
    for i in 0..200u64 {
        kv.put(i.to_be_bytes(), tagged(3, i)).unwrap();
        blobs.put(i.to_be_bytes(), tagged(4, i)).unwrap();
    }
    meta.put(b"applied", 200u64.to_be_bytes()).unwrap();
    let snap = out.path().join("snap");
    leader
        .checkpoint_tables(&snap, &["kv", "blobs", "meta"])
        .unwrap();

    let follower = Db::open(b.path(), Options::default()).unwrap();
    let fmeta = follower.table("meta", TableOptions::ordered()).unwrap();
    fmeta.put(b"applied", 5u64.to_be_bytes()).unwrap();
    follower
        .table("kv", TableOptions::ordered())
        .unwrap()
        .put(b"old", b"1")
        .unwrap();
    assert!(matches!(
        follower.replace_tables(&["kv", "kv"], &snap),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        follower.replace_tables(&["kv", "missing"], &snap),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        follower.table_names(),
        vec!["meta".to_string(), "kv".to_string()]
    );
    assert_eq!(
        follower
            .replace_tables(&["kv", "blobs", "meta"], &snap)
            .unwrap(),
        401
    );
    assert!(matches!(
        fmeta.get(b"applied"),
        Err(Error::InvalidArgument(_))
    ));
    drop(fmeta);
    drop(follower);
    let follower = Db::open(b.path(), Options::default()).unwrap();
    let meta = follower.table("meta", TableOptions::ordered()).unwrap();
    let kv = follower.table("kv", TableOptions::ordered()).unwrap();
    let blobs = follower.table("blobs", TableOptions::unordered()).unwrap();
    assert_eq!(
        meta.get(b"applied").unwrap().as_deref(),
        Some(&200u64.to_be_bytes()[..])
    );
    assert_eq!(kv.iter().count(), 200);
    assert!(kv.get(b"old").unwrap().is_none());
    assert_eq!(blobs.keys().count(), 200);
    assert!(follower.verify().unwrap().is_clean());
}

/// GC and compaction run in the middle of a checkpoint (from its progress
/// callback, after the capture and before the files are made): they retire
/// every segment and table the checkpoint names, which must stay on disk
/// until it has linked them, and the copy is the captured state.
#[test]
fn gc_and_compaction_during_a_checkpoint_cannot_take_its_files() {
    for links in [true, false] {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let o = || opts(IoBackend::Auto).background_gc(false);
        let db = Db::open(src.path(), o()).unwrap();
        for i in 0..400u64 {
            db.put(i.to_be_bytes(), value(0, i, 1)).unwrap();
        }
        db.flush().unwrap();
        let want = scan(&db.default_table());
        let busy = db.clone();
        let ran = Arc::new(AtomicBool::new(false));
        let ran2 = ran.clone();
        let cp = out.path().join("cp");
        let info = db
            .checkpoint_with(
                &cp,
                CheckpointOptions::default()
                    .hard_links(links)
                    .on_progress(move |p| {
                        if p.files_done == 0 && !ran2.swap(true, Ordering::SeqCst) {
                            for i in 0..400u64 {
                                busy.put(i.to_be_bytes(), b"new").unwrap();
                            }
                            busy.compact().unwrap();
                            busy.gc(GcOptions::default().all_sealed(true).max_segments(1000))
                                .unwrap();
                        }
                    }),
            )
            .unwrap();
        assert!(ran.load(Ordering::SeqCst));
        // The source let go of files the checkpoint holds.
        let names = |d: &Path| -> std::collections::BTreeSet<String> {
            std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".vlog") || n.ends_with(".sst"))
                .collect()
        };
        let gone: Vec<String> = names(&cp).difference(&names(src.path())).cloned().collect();
        assert!(
            !gone.is_empty(),
            "GC and compaction retired nothing: {info:?}"
        );
        let copy = Db::open(&cp, o()).unwrap();
        assert!(
            scan(&copy.default_table()) == want,
            "the copy is the captured state"
        );
        assert!(copy.verify().unwrap().is_clean());
        assert_eq!(
            db.get(3u64.to_be_bytes()).unwrap().as_deref(),
            Some(&b"new"[..])
        );
    }
}

/// A replaced table keeps compressing its values: the table that takes
/// its place is made with the same `value_compression`.
#[test]
fn a_replaced_table_keeps_its_value_compression() {
    use wisckey::{TableOptions, ValueCompression};
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let comp = TableOptions::ordered().value_compression(ValueCompression::Zstd { level: 3 });
    let text = |i: u32| format!("{{\"id\":{i},\"name\":\"user{i}\"}}").repeat(100);
    let src = Db::open(src_dir.path(), Options::default()).unwrap();
    let t = src.table("docs", comp).unwrap();
    for i in 0..200 {
        t.put(format!("k{i:04}"), text(i)).unwrap();
    }
    let ck = src_dir.path().join("ck");
    src.checkpoint(&ck).unwrap();
    let dst = Db::open(dst_dir.path(), Options::default()).unwrap();
    dst.table("docs", comp).unwrap();
    dst.replace_table("docs", &ck).unwrap();
    let t = dst.table("docs", TableOptions::ordered()).unwrap();
    assert_eq!(
        t.get(b"k0007").unwrap().unwrap().as_ref(),
        text(7).as_bytes()
    );
    let s = dst.stats();
    let docs = s
        .table_values
        .iter()
        .find(|v| v.name == "docs")
        .expect("docs in the stats");
    assert!(docs.compression.contains("zstd"), "{docs:?}");
    assert!(docs.stored_bytes * 2 < docs.raw_bytes, "{docs:?}");
}
