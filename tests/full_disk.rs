//! A full disk (issue 12, item 6), on a real file system the test makes
//! itself: a loop-mounted ext4 image formatted with `mkfs.ext4 -m 0` (no
//! blocks kept for root, so the database sees the disk full when it is), and
//! a size-limited tmpfs. Each one:
//!
//! 1. opens a database (small segments and memtable, so that it runs in
//!    seconds) and checks that the open made the disk reserve `RESERVE` of
//!    the documented size;
//! 2. writes until a write fails, recording every acknowledged key (some
//!    written with `sync`, most without), and checks the error: an
//!    `Error::Io` of kind `StorageFull` (or `Poisoned`, when a background
//!    flush hit the full disk first) saying that the disk is full and what
//!    to do; later writes are refused (`Poisoned`), and the reserve was given
//!    back;
//! 3. reopens (the reserve's room takes the new manifest), and reads every
//!    acknowledged key back: nothing acknowledged is lost;
//! 4. deletes nine keys in ten (tombstones need room too), compacts, runs GC
//!    passes, and checks that the file system has space again;
//! 5. writes again, with a synced write, and reopens: the open makes the
//!    reserve again now that there is room, and everything reads back;
//! 6. (ext4) closes the database, fills the disk to the last byte with
//!    another file, and reopens: the open's manifest write finds the disk
//!    full, gives the reserve back and tries again, so the open succeeds.
//!
//! Where the test cannot run (not root, no `mkfs.ext4`, `losetup` or
//! `mount`, or a mount that fails) it prints "skipped: ..." and passes. The
//! mount, the loop device and the image are removed by a guard, also when
//! the test fails.
//!
//! On a real disk the write that finds it full is nearly always a vLog
//! append. `enospc_in_each_kind_of_write` (no root needed) makes the disk
//! "full" for one kind of file at a time instead (a file system wrapper
//! that fails its writes with `ENOSPC`): a flush's SSTable, a manifest
//! append, a segment roll, an fsync, a GC segment, the open's manifest. Each
//! that poisons the database gives the reserve back, says what to do, and
//! loses nothing acknowledged; a GC pass's failure poisons nothing and
//! keeps the reserve.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wisckey::io::{FileHandle, FileLock, Fs, ReadRequest, StdFs};
use wisckey::{Db, Error, GcOptions, GcPolicy, Options, WriteBatch, WriteOptions};

const SEGMENT: u64 = 2 << 20;
const MEMTABLE: usize = 256 << 10;
/// The reserve a database with [`opts`] makes while its manifest is small
/// (`segment_size + memtable_size` and 64 KiB for manifests).
const RESERVE: u64 = SEGMENT + MEMTABLE as u64 + (64 << 10);

fn opts() -> Options {
    Options::default()
        .segment_size(SEGMENT)
        .memtable_size(MEMTABLE)
        .background_gc(false)
}

/// Bytes the file system holding `path` has free for an unprivileged user
/// (`f_bavail`; with `-m 0` the same as for root).
fn free_bytes(path: &Path) -> u64 {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `statvfs` is plain integers (all-zero is a valid value), and
    // the call only writes it; `c` is a NUL-terminated path that outlives the
    // call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(r, 0, "statvfs {}", path.display());
    st.f_bavail as u64 * st.f_frsize as u64
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("running {cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A small file system mounted for the test; unmounted, detached and
/// removed on drop (also when the test panics).
struct Mount {
    /// The temporary directory holding the image and the mount point.
    tmp: tempfile::TempDir,
    mnt: PathBuf,
    mounted: bool,
    loop_dev: Option<String>,
}

impl Mount {
    fn new() -> Mount {
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        Mount {
            tmp,
            mnt,
            mounted: false,
            loop_dev: None,
        }
    }

    /// A loop-mounted ext4 image of `mib` MiB, `mkfs.ext4 -m 0`.
    fn ext4(mib: u64) -> Result<Mount, String> {
        check_root()?;
        for tool in ["mkfs.ext4", "losetup", "mount", "umount"] {
            run("which", &[tool]).map_err(|_| format!("{tool} is not installed"))?;
        }
        let mut m = Mount::new();
        let image = m.tmp.path().join("fs.img");
        let f = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        f.set_len(mib << 20).map_err(|e| e.to_string())?;
        drop(f);
        let img = image.to_str().unwrap();
        run("mkfs.ext4", &["-q", "-F", "-m", "0", img])?;
        m.loop_dev = Some(run("losetup", &["--find", "--show", img])?);
        let dev = m.loop_dev.clone().unwrap();
        run("mount", &[&dev, m.mnt.to_str().unwrap()])?;
        m.mounted = true;
        Ok(m)
    }

    /// A tmpfs limited to `mib` MiB.
    fn tmpfs(mib: u64) -> Result<Mount, String> {
        check_root()?;
        let mut m = Mount::new();
        let size = format!("size={mib}m");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &size, "tmpfs", m.mnt.to_str().unwrap()],
        )?;
        m.mounted = true;
        Ok(m)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            let mnt = self.mnt.to_str().unwrap();
            if let Err(e) = run("umount", &[mnt]) {
                eprintln!("{e}; unmounting lazily");
                let _ = run("umount", &["-l", mnt]);
            }
        }
        if let Some(dev) = &self.loop_dev {
            if let Err(e) = run("losetup", &["-d", dev]) {
                eprintln!("{e}");
            }
        }
        // The image and the mount point go with the temporary directory.
    }
}

fn check_root() -> Result<(), String> {
    // SAFETY: `geteuid` takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (mounting needs it)".into());
    }
    Ok(())
}

fn key(i: u64) -> String {
    format!("key{i:08}")
}

/// The value of key `i`: most are separated into the vLog (4000 bytes),
/// every fifth is inline (below the 1 KiB threshold).
fn value(i: u64) -> Vec<u8> {
    let len = if i.is_multiple_of(5) { 200 } else { 4000 };
    (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect()
}

fn reserve_len(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir.join("RESERVE")).ok().map(|m| m.len())
}

/// Whether `e` is the error of a full disk, with what to do in its message.
fn check_full_disk_error(e: &Error, what: &str) {
    let msg = e.to_string();
    match e {
        Error::Io { source, .. } => assert_eq!(
            source.kind(),
            std::io::ErrorKind::StorageFull,
            "{what}: {e:?}"
        ),
        Error::Poisoned(_) => {}
        other => panic!("{what}: not an I/O error: {other:?}"),
    }
    for needle in ["the disk is full", "reopen", "GC", "A full disk"] {
        assert!(
            msg.contains(needle),
            "{what}: {msg:?} does not say {needle:?}"
        );
    }
}

/// Every acknowledged key reads its value; every deleted one reads nothing.
fn check(db: &Db, live: &BTreeMap<u64, Vec<u8>>, deleted: &[u64], what: &str) {
    for (&i, v) in live {
        match db.get(key(i)) {
            Ok(Some(got)) => assert!(
                got.as_ref() == v.as_slice(),
                "{what}: {} has another value",
                key(i)
            ),
            r => panic!("{what}: acknowledged {} reads {r:?}", key(i)),
        }
    }
    for &i in deleted {
        assert!(
            db.get(key(i)).unwrap().is_none(),
            "{what}: deleted {} is back",
            key(i)
        );
    }
}

fn full_disk(m: &Mount, fs: &str) {
    let _ = env_logger::builder().is_test(true).try_init();
    let started = Instant::now();
    let dir = m.mnt.join("db");
    let free_at_start = free_bytes(&m.mnt);

    // 1. The open makes the reserve.
    let db = Db::open(&dir, opts()).unwrap();
    assert_eq!(
        reserve_len(&dir),
        Some(RESERVE),
        "{fs}: the open made no reserve of segment + memtable + 64 KiB"
    );

    // 2. Write until the disk is full.
    let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut synced = 0u64;
    let mut i = 0u64;
    let err = loop {
        let v = value(i);
        let r = if i % 10 == 9 {
            // A batch of two, synced.
            let mut b = WriteBatch::new();
            b.put(key(i), &v);
            b.put(key(i + 1), value(i + 1));
            db.write(b, WriteOptions::default().sync(true))
        } else {
            db.put(key(i), &v)
        };
        match r {
            Ok(()) => {
                acked.insert(i, v);
                if i % 10 == 9 {
                    acked.insert(i + 1, value(i + 1));
                    synced += 2;
                    i += 1;
                }
            }
            Err(e) => break e,
        }
        i += 1;
        assert!(i < 1_000_000, "{fs}: the disk never filled");
    };
    let free_when_full = free_bytes(&m.mnt);
    eprintln!(
        "{fs}: {} writes acknowledged ({synced} synced, {} MiB of values) before: {err}",
        acked.len(),
        acked.values().map(|v| v.len() as u64).sum::<u64>() >> 20
    );
    check_full_disk_error(&err, &format!("{fs}: the failed write"));
    match db.put(b"one more", b"x") {
        Err(e @ Error::Poisoned(_)) => check_full_disk_error(&e, &format!("{fs}: a later write")),
        r => panic!("{fs}: a write after the full disk gave {r:?}, not Poisoned"),
    }
    assert_eq!(
        reserve_len(&dir),
        None,
        "{fs}: the reserve was not given back when the disk filled"
    );
    eprintln!(
        "{fs}: free: {free_at_start} bytes at the start, {free_when_full} once full (reserve \
         released)"
    );
    assert!(
        free_when_full >= RESERVE,
        "{fs}: only {free_when_full} bytes free after the reserve was released"
    );
    drop(db);

    // 3. Reopen: nothing acknowledged is lost.
    let db =
        Db::open(&dir, opts()).unwrap_or_else(|e| panic!("{fs}: reopen after the full disk: {e}"));
    eprintln!(
        "{fs}: reopened; reserve {:?} (no room for it and as much again), {} bytes free",
        reserve_len(&dir),
        free_bytes(&m.mnt)
    );
    check(&db, &acked, &[], &format!("{fs}: after the reopen"));

    // 4. Delete nine keys in ten, compact, GC: the space comes back.
    let doomed: Vec<u64> = acked.keys().copied().filter(|i| i % 10 != 0).collect();
    for chunk in doomed.chunks(100) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.delete(key(i));
        }
        db.write(b, WriteOptions::default())
            .unwrap_or_else(|e| panic!("{fs}: deleting after the full disk: {e}"));
    }
    for i in &doomed {
        acked.remove(i);
    }
    db.sync().unwrap();
    let free_before_gc = free_bytes(&m.mnt);
    db.compact()
        .unwrap_or_else(|e| panic!("{fs}: compacting after the full disk: {e}"));
    let mut passes = 0;
    let mut freed = 0;
    loop {
        let r = db
            .gc(GcOptions::default()
                .policy(GcPolicy::Greedy)
                .min_garbage_ratio(0.5))
            .unwrap_or_else(|e| panic!("{fs}: GC pass {passes} after the full disk: {e}"));
        if r.victims.is_empty() {
            break;
        }
        passes += 1;
        freed += r.bytes_freed;
        assert!(passes < 1000, "{fs}: GC does not end");
    }
    let r = db
        .gc(GcOptions::default().all_sealed(true))
        .unwrap_or_else(|e| panic!("{fs}: the last GC pass: {e}"));
    freed += r.bytes_freed;
    let free_after_gc = free_bytes(&m.mnt);
    eprintln!(
        "{fs}: deleted {} keys; {passes} GC passes and one over all sealed segments freed {} \
         MiB; free: {free_before_gc} bytes before, {free_after_gc} after",
        doomed.len(),
        freed >> 20
    );
    assert!(
        free_after_gc > free_before_gc + (freed / 2).max(4 << 20),
        "{fs}: GC did not give space back ({free_before_gc} -> {free_after_gc} bytes free)"
    );
    check(&db, &acked, &doomed, &format!("{fs}: after GC"));

    // 5. Writes work again; the next open makes the reserve again.
    let fresh: Vec<u64> = (2_000_000..2_000_500).collect();
    for &i in &fresh {
        db.put(key(i), value(i))
            .unwrap_or_else(|e| panic!("{fs}: writing after GC: {e}"));
        acked.insert(i, value(i));
    }
    db.write(WriteBatch::new(), WriteOptions::default().sync(true))
        .unwrap();
    db.close().unwrap();
    let db = Db::open(&dir, opts()).unwrap();
    let len = reserve_len(&dir);
    assert!(
        len.is_some_and(|l| (RESERVE..=RESERVE + (1 << 20)).contains(&l)),
        "{fs}: the open after GC made a reserve of {len:?} bytes, not about {RESERVE}"
    );
    check(&db, &acked, &doomed, &format!("{fs}: after writing again"));
    db.close().unwrap();
    eprintln!(
        "{fs}: reserve made again ({} bytes); done in {:.1}s",
        len.unwrap(),
        started.elapsed().as_secs_f64()
    );
}

/// Step 6: the disk fills up (with another file) while the database is
/// closed; the open gives the reserve back to write its manifest.
fn filled_while_closed(m: &Mount, fs: &str) {
    let dir = m.mnt.join("db");
    assert!(
        reserve_len(&dir).is_some(),
        "{fs}: no reserve to begin with"
    );
    let filler = m.mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0xa5u8; 64 << 10];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("{fs}: filling the disk: {e}"),
            }
        }
        // The last few bytes, in small writes.
        while matches!(f.write(&block[..512]), Ok(n) if n > 0) {}
        let _ = f.sync_all();
    }
    eprintln!(
        "{fs}: filled the disk while the database was closed: {} bytes free",
        free_bytes(&m.mnt)
    );
    let db = Db::open(&dir, opts())
        .unwrap_or_else(|e| panic!("{fs}: open on a disk filled while closed: {e}"));
    assert_eq!(
        reserve_len(&dir),
        None,
        "{fs}: the open on a full disk did not take its reserve"
    );
    assert!(db.get(key(0)).unwrap().is_some(), "{fs}: key 0 lost");
    db.close().unwrap();
    std::fs::remove_file(&filler).unwrap();
    let db = Db::open(&dir, opts()).unwrap();
    assert!(
        reserve_len(&dir).is_some(),
        "{fs}: no reserve once there is room again"
    );
    db.close().unwrap();
    eprintln!("{fs}: the open on a full disk took its reserve for the manifest");
}

#[test]
fn a_full_ext4_disk() {
    let m = match Mount::ext4(48) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: cannot make a loop-mounted ext4 file system here ({why})");
            return;
        }
    };
    full_disk(&m, "ext4");
    filled_while_closed(&m, "ext4");
}

#[test]
fn a_full_tmpfs() {
    let m = match Mount::tmpfs(40) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    full_disk(&m, "tmpfs");
}

// ---------------------------------------------------------------------------
// ENOSPC in each kind of write, by injection.

/// The files an armed [`FullFor`] fails the writes of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Writes and syncs of `NNNNNN.sst` (a flush or compaction).
    Sst,
    /// Writes of `MANIFEST-NNNNNN` (an edit's append, or the open's new one).
    Manifest,
    /// The creation of a user segment `NNNNNN.vlog` (a roll).
    Roll,
    /// The fdatasync of a user segment (a synced write).
    SegmentSync,
    /// Writes to a GC segment `NNNNNN.gc.vlog`.
    GcSegment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Write,
    Sync,
}

impl Target {
    fn hits(self, path: &Path, op: Op) -> bool {
        let name = path.file_name().unwrap().to_string_lossy();
        let user_segment = name.ends_with(".vlog") && !name.ends_with(".gc.vlog");
        match self {
            Target::Sst => name.ends_with(".sst") && op != Op::Create,
            Target::Manifest => name.starts_with("MANIFEST-") && op != Op::Create,
            Target::Roll => user_segment && op == Op::Create,
            Target::SegmentSync => user_segment && op == Op::Sync,
            Target::GcSegment => name.ends_with(".gc.vlog") && op == Op::Write,
        }
    }
}

/// The armed target and how many more of its operations fail.
type Armed = Arc<Mutex<Option<(Target, u32)>>>;

/// [`StdFs`], with the writes of one kind of file failing with `ENOSPC`
/// while armed.
#[derive(Debug, Clone)]
struct FullFor {
    inner: Arc<dyn Fs>,
    armed: Armed,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

fn check_armed(armed: &Armed, path: &Path, op: Op) -> io::Result<()> {
    let mut a = armed.lock().unwrap();
    if let Some((t, n)) = a.as_mut() {
        if t.hits(path, op) {
            *n -= 1;
            if *n == 0 {
                *a = None;
            }
            return Err(enospc());
        }
    }
    Ok(())
}

impl FullFor {
    fn new() -> FullFor {
        FullFor {
            inner: Arc::new(StdFs::default()),
            armed: Arc::default(),
        }
    }
    /// Fails the next `n` operations on `t`'s files.
    fn arm(&self, t: Target, n: u32) {
        *self.armed.lock().unwrap() = Some((t, n));
    }
    fn disarm(&self) {
        *self.armed.lock().unwrap() = None;
    }
    fn file(&self, f: Arc<dyn FileHandle>, path: &Path) -> Arc<dyn FileHandle> {
        Arc::new(FullFile {
            inner: f,
            path: path.to_path_buf(),
            armed: self.armed.clone(),
        })
    }
}

impl Fs for FullFor {
    fn name(&self) -> &'static str {
        "full-for"
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        check_armed(&self.armed, path, Op::Create)?;
        Ok(self.file(self.inner.create(path)?, path))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>> {
        Ok(self.file(self.inner.open(path, writable)?, path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.inner.lock_shared(path)
    }
    fn read_batch(&self, reqs: &mut [ReadRequest<'_>]) -> Vec<io::Result<()>> {
        self.inner.read_batch(reqs)
    }
}

#[derive(Debug)]
struct FullFile {
    inner: Arc<dyn FileHandle>,
    path: PathBuf,
    armed: Armed,
}

impl FileHandle for FullFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        check_armed(&self.armed, &self.path, Op::Write)?;
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        check_armed(&self.armed, &self.path, Op::Sync)?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        check_armed(&self.armed, &self.path, Op::Sync)?;
        self.inner.sync_all()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }
}

fn small_opts(fs: &FullFor) -> Options {
    Options::default()
        .segment_size(64 << 10)
        .memtable_size(16 << 10)
        .background_gc(false)
        .fs(Arc::new(fs.clone()))
}

/// The reserve of a database with [`small_opts`].
const SMALL_RESERVE: u64 = (64 << 10) + (16 << 10) + (64 << 10);

/// Writes (a synced one every eighth, a flush every 32nd) until one fails;
/// the error. Acknowledged writes go into `acked`.
fn write_until_error(db: &Db, acked: &mut BTreeMap<u64, Vec<u8>>, from: u64, what: &str) -> Error {
    for i in from..from + 100_000 {
        let v = value(i);
        let r = if i % 8 == 7 {
            let mut b = WriteBatch::new();
            b.put(key(i), &v);
            db.write(b, WriteOptions::default().sync(true))
        } else {
            db.put(key(i), &v)
        };
        match r {
            Ok(()) => {
                acked.insert(i, v);
            }
            Err(e) => return e,
        }
        if i % 32 == 31 {
            if let Err(e) = db.flush() {
                return e;
            }
        }
    }
    panic!("{what}: no write failed");
}

#[test]
fn enospc_in_each_kind_of_write() {
    let _ = env_logger::builder().is_test(true).try_init();
    for target in [
        Target::Sst,
        Target::Manifest,
        Target::Roll,
        Target::SegmentSync,
    ] {
        let what = format!("ENOSPC in {target:?}");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let fs = FullFor::new();
        let db = Db::open(&dir, small_opts(&fs)).unwrap();
        assert_eq!(reserve_len(&dir), Some(SMALL_RESERVE), "{what}: no reserve");
        let mut acked = BTreeMap::new();
        // Sealed segments and tables first.
        for i in 0..100 {
            db.put(key(i), value(i)).unwrap();
            acked.insert(i, value(i));
        }
        db.flush().unwrap();
        fs.arm(target, u32::MAX);
        let err = write_until_error(&db, &mut acked, 100, &what);
        eprintln!("{what}: {} writes acknowledged, then: {err}", acked.len());
        check_full_disk_error(&err, &what);
        match db.put(b"one more", b"x") {
            Err(e @ Error::Poisoned(_)) => check_full_disk_error(&e, &what),
            r => panic!("{what}: a write after the full disk gave {r:?}, not Poisoned"),
        }
        assert_eq!(
            reserve_len(&dir),
            None,
            "{what}: the reserve was not given back"
        );
        drop(db);
        // The reserve's room: the disk takes writes again.
        fs.disarm();
        let db = Db::open(&dir, small_opts(&fs)).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        check(&db, &acked, &[], &what);
        assert_eq!(
            reserve_len(&dir),
            Some(SMALL_RESERVE),
            "{what}: no reserve made again"
        );
        db.delete(key(0)).unwrap();
        db.close().unwrap();
    }

    // A GC pass that finds the disk full fails alone: nothing is poisoned,
    // the reserve stays, and the next pass (with room) goes through.
    let what = "ENOSPC in a GC segment";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fs = FullFor::new();
    let db = Db::open(&dir, small_opts(&fs)).unwrap();
    for round in 0..2 {
        for i in 0..100 {
            db.put(key(i), value(i + round)).unwrap();
        }
    }
    db.compact().unwrap();
    fs.arm(Target::GcSegment, u32::MAX);
    match db.gc(GcOptions::default().all_sealed(true)) {
        Err(e) => check_full_disk_error(&e, what),
        Ok(r) => panic!("{what}: the pass went through: {r:?}"),
    }
    assert_eq!(
        reserve_len(&dir),
        Some(SMALL_RESERVE),
        "{what}: the reserve went"
    );
    db.put(b"after", b"x").unwrap();
    fs.disarm();
    let r = db.gc(GcOptions::default().all_sealed(true)).unwrap();
    assert!(
        !r.victims.is_empty(),
        "{what}: the pass with room took nothing"
    );
    for i in 0..100 {
        assert_eq!(
            db.get(key(i)).unwrap().unwrap().as_ref(),
            value(i + 1).as_slice()
        );
    }
    db.close().unwrap();

    // The open's own manifest finds the disk full (it filled up while the
    // database was closed): the open gives the reserve back and tries again.
    let what = "ENOSPC in the open's manifest";
    let db = Db::open(&dir, small_opts(&fs)).unwrap();
    drop(db);
    fs.arm(Target::Manifest, 1);
    let db = Db::open(&dir, small_opts(&fs)).unwrap_or_else(|e| panic!("{what}: open: {e}"));
    assert!(
        fs.armed.lock().unwrap().is_none(),
        "{what}: the manifest was not written"
    );
    assert_eq!(db.get(b"after").unwrap().unwrap().as_ref(), b"x");
    db.close().unwrap();
}

/// `Options::disk_reserve(false)`: no reserve made, an earlier one removed,
/// and the full-disk error says that there is none to give back.
#[test]
fn without_a_disk_reserve() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fs = FullFor::new();
    let db = Db::open(&dir, small_opts(&fs)).unwrap();
    db.put(key(1), value(1)).unwrap();
    db.close().unwrap();
    assert_eq!(reserve_len(&dir), Some(SMALL_RESERVE));
    let db = Db::open(&dir, small_opts(&fs).disk_reserve(false)).unwrap();
    assert_eq!(
        reserve_len(&dir),
        None,
        "the earlier reserve is still there"
    );
    fs.arm(Target::SegmentSync, u32::MAX);
    let mut acked = BTreeMap::from([(1, value(1))]);
    let err = write_until_error(&db, &mut acked, 2, "no reserve");
    check_full_disk_error(&err, "no reserve");
    assert!(
        err.to_string().contains("keeps no disk reserve"),
        "the error does not say there is no reserve: {err}"
    );
    drop(db);
    fs.disarm();
    let db = Db::open(&dir, small_opts(&fs).disk_reserve(false)).unwrap();
    check(&db, &acked, &[], "no reserve, reopened");
    assert_eq!(reserve_len(&dir), None);
    db.close().unwrap();
}
