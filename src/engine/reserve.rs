//! The disk reserve: `RESERVE`, a preallocated file in the database
//! directory that the engine gives back when the disk fills up, so that the
//! way out of a full disk (reopen, delete, GC) has room to run.
//!
//! Why: every way to free space writes first. The reopen writes a new
//! manifest (a snapshot of the state) before it removes the old one; a
//! delete appends a tombstone to the vLog; the flush after it writes a
//! level-0 table; a GC pass appends a victim's live records to a GC segment
//! and writes a table of their new pointers before the victim goes. On a
//! disk with no byte left none of that can happen, and the database would be
//! stuck: not open, or open but unable to delete.
//!
//! How:
//! - **Size** ([`Reserve::wanted`]): `segment_size + memtable_size +`
//!   twice the manifest the open just wrote (at least 64 KiB). A segment:
//!   one GC pass over one victim writes at most that victim's live records,
//!   at most a segment, before the victim is freed, and the deletes'
//!   tombstones come out of the same room (a segment's roll itself costs no
//!   bytes: segments are not preallocated). A memtable: one flush writes
//!   about a memtable of level-0 table (the memtable the full disk left
//!   unflushed, replayed at the reopen, or the tombstones' memtable), and
//!   GC's table of pointers is smaller than its records. The manifest: the
//!   reopen's rewrite plus the edits of the flushes and passes after it.
//!   With the default options that is 192 MiB and a little.
//! - **Made** ([`Reserve::ensure`]) by every writable open, after its
//!   manifest is written and leftovers removed, when the file is missing or
//!   short: allocated for real ([`FileHandle::allocate`]: `fallocate`, or
//!   zeros), never synced (a crash may leave it short; the next open tops it
//!   up). Only where there is room for it **and as much again**: the probe
//!   allocates twice the size and cuts the file back. Right after a full
//!   disk there is not (the space the reserve freed is what the recovery
//!   runs on, and taking it back would fill the disk again); the open then
//!   logs a warning and goes on without it, and the first open after GC has
//!   freed space makes it again. A read-only open never touches it.
//! - **Released** ([`Reserve::release`]: the file removed) when the
//!   database is poisoned after a write failed with `ENOSPC` or `EDQUOT`
//!   (see [`WatchedFs`] and `Engine::poison`): from then on the database
//!   takes no writes until it is reopened, so the freed space is kept for
//!   the reopen. A full disk that does not poison (a GC pass's own append,
//!   a hint file) leaves the reserve alone. The open also releases it and
//!   tries once more when its own manifest write finds the disk full.
//!
//! docs/gc-tuning.md ("A full disk") says the same for users.

use crate::files;
use crate::io::{FileHandle, FileLock, Fs, ReadRequest};
use crate::options::Options;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The least room kept for manifests.
const MIN_MANIFEST_ROOM: u64 = 64 << 10;

/// The reserve of one database directory, and whether its disk was found
/// full since the open.
pub(super) struct Reserve {
    /// The file system without the watch (the reserve's own writes must
    /// not count as the database's disk being full).
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    path: PathBuf,
    /// Set when an operation of the database failed with `ENOSPC`/`EDQUOT`.
    disk_full: AtomicBool,
    /// The reserve's bytes as last made or found (0: none).
    held: AtomicU64,
    /// Whether the options keep a reserve at all (`Options::disk_reserve`).
    enabled: bool,
}

impl fmt::Debug for Reserve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve")
            .field("path", &self.path)
            .field("disk_full", &self.disk_full)
            .field("held", &self.held)
            .finish()
    }
}

/// Whether `e` says the disk (or the user's quota) is full.
pub(super) fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl Reserve {
    /// The reserve of `dir`, on `fs` (the plain file system, not a watched
    /// one); `enabled` as `Options::disk_reserve` says (a disabled one is
    /// only ever removed). Touches nothing on disk.
    pub(super) fn new(fs: Arc<dyn Fs>, dir: &Path, enabled: bool) -> Arc<Reserve> {
        Arc::new(Reserve {
            fs,
            dir: dir.to_path_buf(),
            path: dir.join(files::RESERVE),
            disk_full: AtomicBool::new(false),
            held: AtomicU64::new(0),
            enabled,
        })
    }

    /// The reserve's size for `opts`, with `manifest_bytes` the size of the
    /// manifest the open wrote (see the module docs for each term).
    pub(super) fn wanted(opts: &Options, manifest_bytes: u64) -> u64 {
        let manifest = manifest_bytes.saturating_mul(2).max(MIN_MANIFEST_ROOM);
        opts.segment_size
            .saturating_add(opts.memtable_size as u64)
            .saturating_add(manifest)
    }

    /// Whether an operation failed with a full disk since the open.
    pub(super) fn saw_disk_full(&self) -> bool {
        self.disk_full.load(Ordering::Acquire)
    }

    /// Makes the reserve `wanted` bytes, where there is room for that and as
    /// much again; keeps a reserve of `wanted..=2 * wanted` bytes as it is
    /// and cuts a larger one back (the options shrank). Never fails: what
    /// went wrong is logged, and the database runs without (or with a
    /// smaller) reserve until a later open.
    pub(super) fn ensure(&self, wanted: u64) {
        let (file, had) = match self.fs.open(&self.path, true) {
            Ok(f) => match f.len() {
                Ok(len) => (f, len),
                Err(e) => return self.warn(&format!("reading {}", self.path.display()), &e),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => match self.fs.create(&self.path) {
                Ok(f) => (f, 0),
                Err(e) => return self.warn(&format!("creating {}", self.path.display()), &e),
            },
            Err(e) => return self.warn(&format!("opening {}", self.path.display()), &e),
        };
        if had >= wanted && had <= wanted.saturating_mul(2) {
            self.held.store(had, Ordering::Release);
            return;
        }
        if had > wanted {
            match file.set_len(wanted) {
                Ok(()) => self.held.store(wanted, Ordering::Release),
                Err(e) => {
                    self.held.store(had, Ordering::Release);
                    self.warn(&format!("cutting {} back", self.path.display()), &e);
                }
            }
            return;
        }
        // The probe: twice the size, then back to the size. A reserve that
        // would leave less than itself free would only fill the disk.
        let made = file
            .allocate(wanted.saturating_mul(2))
            .and_then(|()| file.set_len(wanted));
        match made {
            Ok(()) => {
                self.held.store(wanted, Ordering::Release);
                log::info!(
                    "{}: disk reserve {} is {wanted} bytes",
                    self.dir.display(),
                    files::RESERVE
                );
            }
            Err(e) => {
                // Give back what the probe took: all of a new file, the
                // growth of an old one.
                let undone = if had == 0 {
                    drop(file);
                    self.fs.remove(&self.path)
                } else {
                    file.set_len(had)
                };
                self.held.store(
                    if had > 0 && undone.is_ok() { had } else { 0 },
                    Ordering::Release,
                );
                if let Err(u) = undone {
                    log::warn!("{}: {u}", self.path.display());
                }
                log::warn!(
                    "{}: no room for a disk reserve of {wanted} bytes and as much again free \
                     ({e}); the database runs with {} bytes of reserve until an open finds room \
                     (docs/gc-tuning.md, \"A full disk\")",
                    self.dir.display(),
                    self.held.load(Ordering::Acquire)
                );
            }
        }
    }

    /// Removes the reserve, giving its space back; its size, or `None` when
    /// there was none (or removing it failed, which is logged).
    pub(super) fn release(&self) -> Option<u64> {
        let len = self
            .fs
            .open(&self.path, false)
            .and_then(|f| f.len())
            .unwrap_or_else(|_| self.held.load(Ordering::Acquire));
        match self.fs.remove(&self.path) {
            Ok(()) => {
                self.held.store(0, Ordering::Release);
                Some(len)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                log::warn!(
                    "{}: the disk is full and the reserve cannot be removed: {e}",
                    self.path.display()
                );
                None
            }
        }
    }

    fn warn(&self, what: &str, e: &io::Error) {
        log::warn!(
            "{}: no disk reserve: {what}: {e} (docs/gc-tuning.md, \"A full disk\")",
            self.dir.display()
        );
    }

    /// Notes a full disk in `r`, and says in its message what to do.
    fn watch<T>(&self, r: io::Result<T>) -> io::Result<T> {
        r.map_err(|e| {
            if !is_disk_full(&e) || e.get_ref().is_some_and(|x| x.is::<DiskFull>()) {
                return e;
            }
            self.disk_full.store(true, Ordering::Release);
            io::Error::new(e.kind(), DiskFull(e, self.enabled))
        })
    }
}

/// An `ENOSPC` (or `EDQUOT`) with what to do about it, and whether the
/// database keeps a reserve. The original error is its
/// [`std::error::Error::source`]; the kind stays.
#[derive(Debug)]
struct DiskFull(io::Error, bool);

impl fmt::Display for DiskFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let room = if self.1 {
            format!(
                "the database gives back its disk reserve, {}, for that",
                files::RESERVE
            )
        } else {
            "it keeps no disk reserve (Options::disk_reserve): free space outside it first"
                .to_string()
        };
        write!(
            f,
            "{}: the disk is full; reopen the database, delete data and run GC ({room}; see \
             \"A full disk\" in docs/gc-tuning.md)",
            self.0
        )
    }
}

impl std::error::Error for DiskFull {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The engine's file system for a writable open: `inner`, with every
/// failure that says the disk is full noted in the reserve and given a
/// message that says what to do. Everything else passes through unchanged
/// (reads included, to the backend's own implementations).
#[derive(Debug)]
pub(super) struct WatchedFs {
    inner: Arc<dyn Fs>,
    reserve: Arc<Reserve>,
}

impl WatchedFs {
    pub(super) fn wrap(inner: Arc<dyn Fs>, reserve: Arc<Reserve>) -> Arc<dyn Fs> {
        Arc::new(WatchedFs { inner, reserve })
    }

    fn file(&self, f: Arc<dyn FileHandle>) -> Arc<dyn FileHandle> {
        Arc::new(WatchedFile {
            inner: f,
            reserve: self.reserve.clone(),
        })
    }
}

impl Fs for WatchedFs {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.reserve.watch(self.inner.create_dir_all(path))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let f = self.reserve.watch(self.inner.create(path))?;
        Ok(self.file(f))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>> {
        let f = self.inner.open(path, writable)?;
        Ok(self.file(f))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.reserve.watch(self.inner.rename(from, to))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.reserve.watch(self.inner.hard_link(from, to))
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.reserve.watch(self.inner.sync_dir(path))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.reserve.watch(self.inner.lock(path))
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.inner.lock_shared(path)
    }
    fn read_batch(&self, reqs: &mut [ReadRequest<'_>]) -> Vec<io::Result<()>> {
        // The requests' files are `WatchedFile`s; they hand over the raw fd
        // and reads, so the backend batches them as its own.
        self.inner.read_batch(reqs)
    }
}

/// A file of a [`WatchedFs`].
#[derive(Debug)]
struct WatchedFile {
    inner: Arc<dyn FileHandle>,
    reserve: Arc<Reserve>,
}

impl FileHandle for WatchedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.reserve.watch(self.inner.write_at(buf, offset))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.reserve.watch(self.inner.sync_data())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.reserve.watch(self.inner.sync_all())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.reserve.watch(self.inner.set_len(len))
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.reserve.watch(self.inner.allocate(len))
    }
    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.start_writeback(offset, len)
    }
    fn write_all_and_sync_at(&self, buf: &[u8], offset: u64, sync: bool) -> io::Result<()> {
        self.reserve
            .watch(self.inner.write_all_and_sync_at(buf, offset, sync))
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.reserve.watch(self.inner.write_all_at(buf, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FailMode, FaultFs, Repeat};

    fn setup() -> (FaultFs, Arc<Reserve>, Arc<dyn Fs>) {
        let fs = FaultFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let plain: Arc<dyn Fs> = Arc::new(fs.clone());
        let r = Reserve::new(plain.clone(), Path::new("/db"), true);
        let watched = WatchedFs::wrap(plain, r.clone());
        (fs, r, watched)
    }

    fn reserve_len(fs: &FaultFs) -> Option<usize> {
        fs.contents(Path::new("/db/RESERVE")).map(|c| c.len())
    }

    #[test]
    fn the_size_follows_the_options() {
        let o = Options::default();
        assert_eq!(
            Reserve::wanted(&o, 0),
            (128 << 20) + (64 << 20) + (64 << 10)
        );
        let o = Options::default()
            .segment_size(2 << 20)
            .memtable_size(256 << 10);
        assert_eq!(
            Reserve::wanted(&o, 100 << 10),
            (2 << 20) + (256 << 10) + (200 << 10)
        );
    }

    #[test]
    fn made_kept_grown_cut_and_released() {
        let (fs, r, _) = setup();
        r.ensure(100_000);
        assert_eq!(reserve_len(&fs), Some(100_000));
        // Within wanted..=2 * wanted: kept as it is.
        r.ensure(60_000);
        assert_eq!(reserve_len(&fs), Some(100_000));
        // Short: grown.
        r.ensure(150_000);
        assert_eq!(reserve_len(&fs), Some(150_000));
        // Far too large: cut back.
        r.ensure(10_000);
        assert_eq!(reserve_len(&fs), Some(10_000));
        assert_eq!(r.release(), Some(10_000));
        assert_eq!(reserve_len(&fs), None);
        assert_eq!(r.release(), None);
    }

    #[test]
    fn no_room_leaves_no_reserve_and_no_error() {
        let (fs, r, _) = setup();
        // The create goes through, the probe's write does not.
        fs.fail_after(1, FailMode::Enospc, Repeat::Once);
        r.ensure(100_000);
        fs.recover();
        assert_eq!(reserve_len(&fs), None, "a failed probe leaves no file");
        assert!(
            !r.saw_disk_full(),
            "the reserve's own writes are not watched"
        );
        // An old, smaller reserve that cannot grow stays as it was.
        r.ensure(1000);
        fs.fail_after(0, FailMode::Enospc, Repeat::Once);
        r.ensure(100_000);
        fs.recover();
        assert_eq!(reserve_len(&fs), Some(1000));
    }

    #[test]
    fn a_full_disk_is_noted_and_explained() {
        let (fs, r, watched) = setup();
        let f = watched.create(Path::new("/db/000001.vlog")).unwrap();
        f.write_all_at(b"fine", 0).unwrap();
        assert!(!r.saw_disk_full());
        fs.fail_after(0, FailMode::Eio, Repeat::Once);
        assert!(f.write_all_at(b"x", 4).is_err());
        assert!(!r.saw_disk_full(), "EIO is no full disk");
        fs.fail_after(0, FailMode::Enospc, Repeat::Once);
        let e = f.write_all_and_sync_at(b"x", 4, true).unwrap_err();
        assert!(r.saw_disk_full());
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(e.to_string().contains("the disk is full"), "{e}");
        assert!(e.to_string().contains("A full disk"), "{e}");
        let source = std::error::Error::source(e.get_ref().unwrap()).unwrap();
        let original = source.downcast_ref::<io::Error>().unwrap();
        assert_eq!(original.raw_os_error(), Some(libc::ENOSPC));
    }
}
