//! A failed fsync poisons the database: the error reaches the caller, later
//! writes are refused, reads go on, and a reopen finds every write that was
//! acknowledged before the failure.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wisckey::io::{FileHandle, FileLock, Fs, StdFs};
use wisckey::{Db, Error, Options, WriteBatch, WriteOptions};

/// The plain backend, except that `sync_data` fails with EIO while `fail` is set.
#[derive(Debug)]
struct FailingSyncFs {
    inner: StdFs,
    fail: Arc<AtomicBool>,
}

#[derive(Debug)]
struct FailingFile {
    inner: Arc<dyn FileHandle>,
    fail: Arc<AtomicBool>,
}

impl FileHandle for FailingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Fs for FailingSyncFs {
    fn name(&self) -> &'static str {
        "failing-sync"
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        Ok(Arc::new(FailingFile {
            inner: self.inner.create(path)?,
            fail: self.fail.clone(),
        }))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>> {
        Ok(Arc::new(FailingFile {
            inner: self.inner.open(path, writable)?,
            fail: self.fail.clone(),
        }))
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
}

#[test]
fn failed_fsync_poisons_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let fs = Arc::new(FailingSyncFs {
        inner: StdFs::default(),
        fail: fail.clone(),
    });
    let db = Db::open(dir.path(), Options::default().fs(fs).bytes_per_sync(4096)).unwrap();
    for i in 0..100u32 {
        db.put(format!("k{i}"), vec![i as u8; 2000]).unwrap();
    }
    db.sync().unwrap();
    // This backend cannot start writeback (FailingFile keeps the trait's
    // default): the engine writes buffered and says why.
    let st = db.stats();
    assert_eq!(st.write_mode, "buffered");
    assert!(st
        .write_mode_fallback
        .is_some_and(|why| why.contains("refused")));
    assert_eq!(st.writeback_ranges, 0);
    fail.store(true, Ordering::SeqCst);
    let mut b = WriteBatch::new();
    b.put(b"lost?", b"maybe");
    let err = db.write(b, WriteOptions::default().sync(true)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    // Even once the device recovers, the database does not trust it again.
    fail.store(false, Ordering::SeqCst);
    assert!(matches!(db.put(b"x", b"y"), Err(Error::Poisoned(_))));
    assert!(matches!(db.sync(), Err(Error::Poisoned(_))));
    // An empty batch with sync promises durability too: refused the same way.
    assert!(matches!(
        db.write(WriteBatch::new(), WriteOptions::default().sync(true)),
        Err(Error::Poisoned(_))
    ));
    assert!(matches!(db.flush(), Err(Error::Poisoned(_))));
    // Reads go on.
    assert_eq!(db.get(b"k7").unwrap().unwrap().into_vec(), vec![7u8; 2000]);
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..100u32 {
        assert_eq!(
            db.get(format!("k{i}")).unwrap().unwrap().into_vec(),
            vec![i as u8; 2000]
        );
    }
    db.put(b"x", b"y").unwrap();
}

#[test]
fn failed_flush_sync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let fs = Arc::new(FailingSyncFs {
        inner: StdFs::default(),
        fail: fail.clone(),
    });
    let db = Db::open(dir.path(), Options::default().fs(fs)).unwrap();
    db.put(b"a", b"1").unwrap();
    fail.store(true, Ordering::SeqCst);
    assert!(db.flush().is_err());
    fail.store(false, Ordering::SeqCst);
    assert!(matches!(db.put(b"b", b"2"), Err(Error::Poisoned(_))));
    assert_eq!(db.get(b"a").unwrap().unwrap(), b"1");
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"a").unwrap().unwrap(), b"1");
}
