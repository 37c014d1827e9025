//! The plain backend: std's positioned I/O (`pread`/`pwrite`), `fdatasync`,
//! `rename`, and the directory lock.
//!
//! The lock is a POSIX record lock (`fcntl(F_SETLK)`) on the whole LOCK file
//! (a write lock for a writer, a read lock for read-only opens) plus a
//! process-wide registry of held lock paths. Unlike `flock`, a record lock
//! is owned by the process, not by the open file: a child that another
//! thread forks (before its `exec`) does not inherit it, so closing the
//! database unlocks the directory at once. A record lock does not exclude
//! the same process, and closing *any* descriptor of the file drops the
//! process's locks on it, so the registry decides within the process
//! before the file is even opened, and the shared holders of one path share
//! one descriptor, closed when the last of them goes.

// The record lock needs `fcntl`, preallocation `fallocate`; the fork test
// needs `fork`.
#![allow(unsafe_code)]

use super::{FileHandle, FileLock, Fs};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The plain pread/pwrite backend.
#[derive(Debug, Clone)]
pub struct StdFs {
    mode: u32,
}

impl Default for StdFs {
    fn default() -> Self {
        StdFs { mode: 0o644 }
    }
}

impl StdFs {
    /// A backend creating files with the given permission bits (before umask).
    pub fn with_mode(mode: u32) -> Self {
        StdFs { mode }
    }
}

#[derive(Debug)]
struct StdFile(File);

impl FileHandle for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        fallocate(&self.0, len).or_else(|e| match e.raw_os_error() {
            // A file system without fallocate (or an old kernel): zeros.
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => super::write_zeros(self, len),
            _ => Err(e),
        })
    }
    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.0.as_raw_fd())
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        start_writeback_fd(self.0.as_raw_fd(), offset, len)
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` on `fd`, retried after `EINTR`.
fn start_writeback_fd(fd: std::os::fd::RawFd, offset: u64, len: u64) -> io::Result<()> {
    let range = |n: u64| {
        libc::off64_t::try_from(n)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range out of bounds"))
    };
    let (offset, len) = (range(offset)?, range(len)?);
    loop {
        // SAFETY: a system call on a descriptor the caller keeps open; it
        // takes only integers and touches no memory of ours.
        let r = unsafe { libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Allocates bytes `0..len` of `f` (`fallocate` mode 0: blocks reserved and
/// the size extended, nothing written), retrying after `EINTR`.
fn fallocate(f: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length out of range"))?;
    loop {
        // SAFETY: the descriptor belongs to the `File` borrowed for the
        // call; `fallocate` takes only integers and touches no memory of
        // ours.
        let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// How this process holds a lock file.
#[derive(Debug)]
enum Held {
    /// One exclusive holder (it owns its descriptor).
    Exclusive,
    /// `count` shared holders, and the one descriptor their read lock is on
    /// (held only to keep the lock: closing it releases it).
    Shared {
        count: usize,
        #[allow(dead_code)]
        file: File,
    },
}

/// Lock files held by this process (canonical paths).
static HELD_LOCKS: Mutex<Option<HashMap<PathBuf, Held>>> = Mutex::new(None);

fn held_locks() -> std::sync::MutexGuard<'static, Option<HashMap<PathBuf, Held>>> {
    HELD_LOCKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A held directory lock: its registry entry (and, when exclusive, the
/// open LOCK file).
#[derive(Debug)]
struct StdLock {
    file: Option<File>,
    key: PathBuf,
}

impl FileLock for StdLock {}

impl Drop for StdLock {
    fn drop(&mut self) {
        // Close first (that releases the record lock), then leave the
        // registry: the other order would let a new holder in this process
        // take the lock and then lose it to this close.
        drop(self.file.take());
        let mut held = held_locks();
        let Some(map) = held.as_mut() else { return };
        match map.get_mut(&self.key) {
            Some(Held::Shared { count, .. }) if *count > 1 => *count -= 1,
            // The last shared holder: dropping the entry closes the file.
            Some(_) => {
                map.remove(&self.key);
            }
            None => {}
        }
    }
}

/// The lock file's path with its directory resolved, so that two spellings
/// of one directory meet in the registry.
fn lock_key(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "lock path has no file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize()?,
        _ => std::env::current_dir()?,
    };
    Ok(parent.join(name))
}

/// Takes a write lock (`exclusive`) or a read lock on the whole file
/// without waiting.
fn set_record_lock(f: &File, exclusive: bool) -> io::Result<()> {
    // SAFETY: `flock` is plain data; zeroed is a valid starting value, and
    // the fields set below describe the whole file.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if exclusive {
        libc::F_WRLCK
    } else {
        libc::F_RDLCK
    } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: the descriptor is open for the duration of the call and `fl`
    // is a valid `struct flock`.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "lock held by another process",
        )),
        _ => Err(e),
    }
}

impl Fs for StdFs {
    fn name(&self) -> &'static str {
        "sync"
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(self.mode)
            .open(path)?;
        Ok(Arc::new(StdFile(f)))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>> {
        let f = OpenOptions::new().read(true).write(writable).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let key = lock_key(path)?;
        let mut held = held_locks();
        let map = held.get_or_insert_with(HashMap::new);
        // Checked before opening: closing a second descriptor of the file
        // would release the lock the first holder has.
        if map.contains_key(&key) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "lock held by this process",
            ));
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(self.mode)
            .open(&key)?;
        set_record_lock(&f, true)?;
        map.insert(key.clone(), Held::Exclusive);
        Ok(Box::new(StdLock { file: Some(f), key }))
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let key = lock_key(path)?;
        let mut held = held_locks();
        let map = held.get_or_insert_with(HashMap::new);
        match map.get_mut(&key) {
            Some(Held::Exclusive) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "lock held exclusively by this process",
                ))
            }
            Some(Held::Shared { count, .. }) => *count += 1,
            None => {
                let f = OpenOptions::new().read(true).open(&key)?;
                set_record_lock(&f, false)?;
                map.insert(key.clone(), Held::Shared { count: 1, file: f });
            }
        }
        Ok(Box::new(StdLock { file: None, key }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positioned_io_round_trip_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::default();
        let p = dir.path().join("f");
        let f = fs.create(&p).unwrap();
        f.write_all_at(b"hello world", 0).unwrap();
        f.write_all_at(b"W", 6).unwrap();
        let mut buf = [0u8; 11];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello World");
        assert_eq!(f.len().unwrap(), 11);
        let mut big = [0u8; 12];
        let err = f.read_exact_at(&mut big, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let l = fs.lock(&dir.path().join("LOCK")).unwrap();
        let again = fs.lock(&dir.path().join("LOCK")).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::WouldBlock);
        drop(l);
        fs.lock(&dir.path().join("LOCK")).unwrap();
        assert_eq!(fs.list(dir.path()).unwrap().len(), 2);
        // Another spelling of the same directory meets the same lock.
        let l = fs.lock(&dir.path().join("LOCK")).unwrap();
        let other = dir.path().join(".").join("LOCK");
        assert_eq!(
            fs.lock(&other).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(l);
        fs.lock(&other).unwrap();
    }

    #[test]
    fn shared_locks_share_and_exclude_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::default();
        let p = dir.path().join("LOCK");
        // A shared lock needs the file: it never creates one.
        assert_eq!(
            fs.lock_shared(&p).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        drop(fs.lock(&p).unwrap());
        let a = fs.lock_shared(&p).unwrap();
        let b = fs.lock_shared(&p).unwrap();
        assert_eq!(fs.lock(&p).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(a);
        // The other shared holder still excludes a writer.
        assert_eq!(fs.lock(&p).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(b);
        let w = fs.lock(&p).unwrap();
        assert_eq!(
            fs.lock_shared(&p).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(w);
        fs.lock_shared(&p).unwrap();
    }

    /// Regression: with `flock`, a child forked while the lock was held kept
    /// it (the child shares the open file) until it exec'd or exited, so a
    /// close-then-reopen in the parent raced with any `Command::spawn`
    /// elsewhere in the process and failed with `Locked` now and then.
    #[test]
    fn forked_child_does_not_keep_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::default();
        let lock_path = dir.path().join("LOCK");
        let l = fs.lock(&lock_path).unwrap();
        // SAFETY: the child only sleeps and exits (both async-signal-safe).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe {
                libc::sleep(3);
                libc::_exit(0);
            }
        }
        drop(l);
        let again = fs.lock(&lock_path);
        let mut status = 0;
        unsafe { libc::kill(pid, libc::SIGKILL) };
        unsafe { libc::waitpid(pid, &mut status, 0) };
        again.expect("the lock is free once the parent drops it");
    }
}
