//! The file-system boundary: every byte the engine reads or writes goes
//! through [`Fs`] and [`FileHandle`], so that the io_uring backend and the
//! fault-injecting test backend can replace the plain one without touching
//! the engine.
//!
//! This module is public as a plug-in API: implement [`Fs`] (and
//! [`FileHandle`], [`FileLock`]) to put the engine on another storage layer,
//! and hand it over with [`crate::Options::fs`]. The durability contract the
//! engine relies on is each method's: `sync_data` / `sync_all` make a
//! file's bytes durable, `sync_dir` a directory's entries, and a failed sync
//! is never assumed to have done anything.
//!
//! Methods return `std::io::Result`; the engine adds the file name and the
//! operation when it turns them into [`crate::Error`].

#[cfg(any(test, feature = "testing"))]
pub(crate) mod bytes_file;
mod std_fs;
mod uring;
mod writeback;

pub use std_fs::StdFs;
pub use uring::UringFs;
pub use writeback::WriteMode;
pub(crate) use writeback::Writeback;

use crate::error::{Error, Result};
use std::fmt::Debug;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::Arc;

/// Which I/O backend the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub enum IoBackend {
    /// io_uring when the kernel allows it (probed at open), else
    /// [`IoBackend::Sync`], logging the reason at `info`. The environment
    /// variable `WISCKEY_IO_BACKEND` overrides this choice (and only this
    /// one): `sync` forces the plain backend, `io_uring` requires io_uring,
    /// `auto` probes; any other value makes open fail with
    /// `Error::Unsupported`.
    #[default]
    Auto,
    /// io_uring for batched reads and write-then-sync; single reads and
    /// writes stay plain `pread`/`pwrite`. Opening fails with
    /// `Error::Unsupported`, naming the reason, when the kernel or a seccomp
    /// filter refuses io_uring (or `WISCKEY_IO_URING_DISABLE=1` is set).
    IoUring,
    /// Plain `pread`/`pwrite`.
    Sync,
}

/// An open file: positioned reads and writes, sync, length.
///
/// Handles are shared (`Arc`) between the writer and readers of a file;
/// positioned I/O needs no cursor, so no lock is taken.
#[allow(clippy::len_without_is_empty)]
pub trait FileHandle: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (0 at end of file). A short read is not an error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `offset`; returns how many were written.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
    /// The current length of the file.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Extends the file to at least `len` bytes with the space allocated on
    /// the device (not a sparse hole), so that a later write needs no new
    /// space for them: `fallocate` in [`StdFs`] (and [`UringFs`]). An error
    /// (`ENOSPC`) may leave some of the range allocated and the file longer.
    /// The bytes added read as zeros. Nothing is synced. Default: writes
    /// zeros from the file's current end to `len` ([`write_zeros`]).
    fn allocate(&self, len: u64) -> io::Result<()> {
        write_zeros(self, len)
    }

    /// Starts writing back the dirty pages of `len` bytes at `offset` (0:
    /// to the end of the file) without waiting for them
    /// (`sync_file_range(SYNC_FILE_RANGE_WRITE)` in [`StdFs`] and
    /// [`UringFs`]). This makes nothing durable and the engine never counts
    /// on it: it only keeps an appended file's dirty pages from piling up
    /// (see [`WriteMode::Writeback`]). Default: `Unsupported`, after which
    /// the engine writes plain buffered.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this backend cannot start writeback",
        ))
    }

    /// The operating-system file descriptor, when the handle is a plain open
    /// file whose bytes may be read directly (by io_uring) without going
    /// through this handle. Default `None`: backends that must see every
    /// byte (fault injection) keep the default, and batched reads then fall
    /// back to [`FileHandle::read_exact_at`].
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    /// Writes all of `buf` at `offset` and, when `sync`, makes the file's data
    /// durable (`fdatasync`) before returning. Returns the first error; after
    /// an error nothing is known about how much of `buf` reached the file or
    /// the disk. Default: [`FileHandle::write_all_at`] then
    /// [`FileHandle::sync_data`].
    fn write_all_and_sync_at(&self, buf: &[u8], offset: u64, sync: bool) -> io::Result<()> {
        self.write_all_at(buf, offset)?;
        if sync {
            self.sync_data()?;
        }
        Ok(())
    }

    /// Fills `buf` from `offset`, resubmitting after short reads; reaching the
    /// end of the file first is `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ended before the requested range",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`, resubmitting after short writes.
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "write returned zero bytes",
                    ))
                }
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Writes zeros from the end of `file` up to `len` bytes, in chunks of
/// 1 MiB: the portable way to allocate space (see [`FileHandle::allocate`]),
/// and what backends without `fallocate` fall back to.
pub fn write_zeros<F: FileHandle + ?Sized>(file: &F, len: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut at = file.len()?;
    if at >= len {
        return Ok(());
    }
    let zeros = vec![0u8; CHUNK.min(len - at) as usize];
    while at < len {
        let n = CHUNK.min(len - at) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// One read of a batch (see [`Fs::read_batch`]): fill all of `buf` from
/// `file` at `offset`.
#[derive(Debug)]
pub struct ReadRequest<'a> {
    /// The file to read.
    pub file: &'a dyn FileHandle,
    /// Where in the file the range starts.
    pub offset: u64,
    /// Where the bytes go; the request asks for exactly `buf.len()` bytes.
    pub buf: &'a mut [u8],
}

/// A held advisory lock on a file; released when dropped (or when the
/// process dies).
pub trait FileLock: Send + Sync + Debug {}

/// A file system: create, open, rename, remove, list, sync a directory, lock.
pub trait Fs: Send + Sync + Debug {
    /// A short name for stats and logs (`"sync"`, `"io_uring"`, …).
    fn name(&self) -> &'static str;
    /// Creates `path` and its parents if missing.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a new, empty file for reading and writing (truncating any old one).
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>>;
    /// Opens an existing file; `writable` asks for write access too.
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// Takes an exclusive advisory lock on `path` (created if missing) without
    /// waiting; `WouldBlock` when someone else holds it, exclusively or
    /// shared.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;

    /// Takes a shared advisory lock on `path`, which must exist, without
    /// waiting: any number of shared holders at once, none while someone
    /// holds it exclusively (`WouldBlock`). The file is opened read-only, so
    /// that the lock works on read-only media. Default: `Unsupported` (a
    /// read-only open then fails).
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: this backend has no shared locks", path.display()),
        ))
    }

    /// Makes `to` a new name of the file `from` (a hard link), failing if
    /// `to` exists. Default: `Unsupported` (a checkpoint then copies).
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} -> {}: this backend has no hard links",
                from.display(),
                to.display()
            ),
        ))
    }

    /// Removes an empty directory. Default: `Unsupported`.
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: this backend cannot remove directories", path.display()),
        ))
    }

    /// Performs many positioned reads, possibly at once. Each request is
    /// filled completely, as [`FileHandle::read_exact_at`] would: reaching
    /// the end of the file first is `UnexpectedEof` for that request only, and
    /// a failing request does not stop the others. Returns one result per
    /// request, in request order. A request whose result is an error leaves
    /// its buffer with unspecified contents. Default: one `read_exact_at`
    /// after another.
    fn read_batch(&self, reqs: &mut [ReadRequest<'_>]) -> Vec<io::Result<()>> {
        reqs.iter_mut()
            .map(|r| r.file.read_exact_at(r.buf, r.offset))
            .collect()
    }
}

/// The plain `pread`/`pwrite` backend ([`StdFs`], files created 0644): what
/// [`IoBackend::Sync`] uses. ([`IoBackend::Auto`], the default, prefers
/// io_uring where the kernel allows it.)
pub fn default_fs() -> Arc<dyn Fs> {
    Arc::new(StdFs::default())
}

/// The environment variable that overrides [`IoBackend::Auto`]: `sync`
/// forces the plain backend, `io_uring` requires io_uring (open fails when it
/// is unavailable), `auto` (or unset) probes. It has no effect on an explicit
/// [`IoBackend::Sync`] or [`IoBackend::IoUring`]. CI runs the test suite once
/// per backend with it.
pub const IO_BACKEND_ENV: &str = "WISCKEY_IO_BACKEND";

/// Chooses the file system for `backend` (see [`IoBackend`] and
/// [`IO_BACKEND_ENV`]).
///
/// # Errors
/// `Error::Unsupported` naming the reason when io_uring is required but the
/// kernel (or a seccomp filter) refuses it, or when [`IO_BACKEND_ENV`] holds
/// an unknown value.
pub(crate) fn select_fs(backend: IoBackend, mode: u32) -> Result<Arc<dyn Fs>> {
    let backend = match backend {
        IoBackend::Auto => match std::env::var(IO_BACKEND_ENV).as_deref() {
            Err(_) | Ok("") | Ok("auto") => IoBackend::Auto,
            Ok("sync") => IoBackend::Sync,
            Ok("io_uring") => IoBackend::IoUring,
            Ok(other) => {
                return Err(Error::Unsupported(format!(
                    "{IO_BACKEND_ENV}={other:?}: expected sync, io_uring or auto"
                )))
            }
        },
        explicit => explicit,
    };
    match backend {
        IoBackend::Sync => Ok(Arc::new(StdFs::with_mode(mode))),
        IoBackend::IoUring => match UringFs::probe() {
            Ok(fs) => Ok(Arc::new(fs.with_mode(mode))),
            Err(e) => Err(Error::Unsupported(format!(
                "the io_uring backend is unavailable: {e}"
            ))),
        },
        IoBackend::Auto => match UringFs::probe() {
            Ok(fs) => Ok(Arc::new(fs.with_mode(mode))),
            Err(e) => {
                log::info!("io_uring unavailable ({e}); using the plain pread/pwrite backend");
                Ok(Arc::new(StdFs::with_mode(mode)))
            }
        },
    }
}
