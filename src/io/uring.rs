//! The io_uring backend: batched reads ([`Fs::read_batch`]) and
//! write-then-fdatasync ([`FileHandle::write_all_and_sync_at`]) go through
//! an io_uring ring; everything else is the plain backend.
//!
//! What goes through a ring, and why:
//! - Metadata operations (create, open, rename, remove, list, sync_dir,
//!   lock) are [`StdFs`]'s: they are rare and a ring gains nothing.
//! - Files opened here are [`StdFs`] files in a thin wrapper, so a single
//!   `read_at`/`write_at` stays a plain `pread`/`pwrite`: one-off I/O saves
//!   nothing by going through a ring (one syscall either way).
//! - `read_batch` keeps up to [`RING_ENTRIES`] reads in flight in one ring,
//!   in waves when there are more requests than entries, resubmitting the
//!   rest of a read after a short completion. Runs of small requests that
//!   are adjacent in one file are merged into one read into a temporary
//!   buffer, then copied out (see [`MERGE_MAX_REQUEST`], [`MERGE_MAX_RUN`]).
//! - `write_all_and_sync_at` submits the write and, when asked, a linked
//!   `fdatasync` (`IORING_OP_FSYNC` with `DATASYNC`) in one system call.
//!
//! Rings live in a small pool, so concurrent readers do not serialize on
//! one ring: a reader takes an idle ring, or creates one while fewer than
//! [`MAX_RINGS`] exist, or else waits for one to come back.
//!
//! Memory safety: the kernel writes into (or reads from) the buffers of the
//! entries it has been handed until it posts their completions. Every
//! function here waits for all the completions of the entries it submitted
//! before it returns, on every path. If the ring itself stops working while
//! buffers are lent to the kernel (no such error is known for a valid ring;
//! `EINTR`, `EAGAIN` and `EBUSY` are retried), the process aborts rather
//! than return and let the kernel write into freed memory. UNSAFE.md lists
//! the `unsafe` blocks.
//!
//! [`probe`](UringFs::probe) checks at open time that the kernel (and any
//! seccomp filter) allows io_uring and the operations used here; setting
//! [`DISABLE_ENV`]`=1` makes it refuse, to test the fallback.
#![allow(unsafe_code)]

use super::{FileHandle, FileLock, Fs, ReadRequest, StdFs};
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::Arc;

/// Entries of each ring's submission queue: the most reads in flight per batch.
pub const RING_ENTRIES: u32 = 64;
/// The most rings one [`UringFs`] creates; more concurrent batches wait.
pub const MAX_RINGS: usize = 16;
/// Requests larger than this are never merged with their neighbours.
pub const MERGE_MAX_REQUEST: usize = 16 << 10;
/// A merged read is at most this long.
pub const MERGE_MAX_RUN: usize = 128 << 10;
/// Set to `1` to make [`UringFs::probe`] refuse (tests of the fallback).
pub const DISABLE_ENV: &str = "WISCKEY_IO_URING_DISABLE";
/// One submitted read or write is at most this long (the SQE length is a
/// `u32`); longer ones continue as after a short completion.
const MAX_SUBMIT_LEN: usize = 1 << 30;
/// Failed `io_uring_enter` calls tolerated while buffers are lent out.
const MAX_ENTER_FAILURES: u32 = 1000;

/// The io_uring backend. Cheap to clone (the ring pool is shared).
#[derive(Debug, Clone)]
pub struct UringFs {
    std: StdFs,
    pool: Arc<RingPool>,
}

impl UringFs {
    /// Checks that io_uring works here (a ring can be created, the read,
    /// write, fsync and no-op operations are supported, and a no-op
    /// completes) and returns the backend, holding that first ring.
    ///
    /// # Errors
    /// The reason io_uring is unavailable: `ENOSYS`/`EPERM` from the kernel
    /// or a seccomp filter, `ENOMEM` under a low `RLIMIT_MEMLOCK`,
    /// `Unsupported` on kernels without the operations, or `ENOSYS` when
    /// `WISCKEY_IO_URING_DISABLE` is `1`.
    pub fn probe() -> io::Result<UringFs> {
        Self::probe_with(|| {
            if std::env::var(DISABLE_ENV).as_deref() == Ok("1") {
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("disabled by {DISABLE_ENV}=1"),
                ))
            } else {
                Ok(())
            }
        })
    }

    /// [`UringFs::probe`] with `gate` run first: an error from it is
    /// returned as the refusal (tests simulate a kernel that says no).
    ///
    /// # Errors
    /// As [`UringFs::probe`], or `gate`'s error.
    pub fn probe_with(gate: impl FnOnce() -> io::Result<()>) -> io::Result<UringFs> {
        gate()?;
        let mut ring = IoUring::new(RING_ENTRIES)?;
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in [
            (opcode::Read::CODE, "read"),
            (opcode::Write::CODE, "write"),
            (opcode::Fsync::CODE, "fsync"),
            (opcode::Nop::CODE, "nop"),
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("the kernel's io_uring lacks the {name} operation"),
                ));
            }
        }
        let nop = opcode::Nop::new().build().user_data(0);
        // SAFETY: a no-op entry names no buffer and no file, so nothing has
        // to outlive it; the ring is empty, so the push cannot fail for lack
        // of room (and if it did, nothing would have been submitted).
        unsafe { ring.submission().push(&nop) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        // A failure here (seccomp forbidding io_uring_enter) is returned: the
        // only entry in flight is the no-op, which holds no memory.
        ring.submit_and_wait(1)?;
        let cqe = ring
            .completion()
            .next()
            .ok_or_else(|| io::Error::other("io_uring no-op did not complete"))?;
        if cqe.result() < 0 {
            return Err(io::Error::from_raw_os_error(-cqe.result()));
        }
        Ok(UringFs {
            std: StdFs::default(),
            pool: Arc::new(RingPool::with_ring(ring)),
        })
    }

    /// The same backend creating files with the given permission bits
    /// (before umask), as [`StdFs::with_mode`].
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.std = StdFs::with_mode(mode);
        self
    }

    fn wrap(&self, inner: Arc<dyn FileHandle>) -> Arc<dyn FileHandle> {
        Arc::new(UringFile {
            inner,
            pool: self.pool.clone(),
        })
    }
}

// ---------------------------------------------------------------------------
// The ring pool.

struct PoolState {
    idle: Vec<IoUring>,
    created: usize,
}

struct RingPool {
    state: Mutex<PoolState>,
    returned: Condvar,
}

impl std::fmt::Debug for RingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("RingPool")
            .field("idle", &st.idle.len())
            .field("created", &st.created)
            .finish()
    }
}

impl RingPool {
    fn with_ring(ring: IoUring) -> Self {
        RingPool {
            state: Mutex::new(PoolState {
                idle: vec![ring],
                created: 1,
            }),
            returned: Condvar::new(),
        }
    }

    /// An idle ring, a new one, or (at [`MAX_RINGS`]) the next one returned.
    fn acquire(&self) -> io::Result<RingGuard<'_>> {
        let mut st = self.state.lock();
        loop {
            if let Some(ring) = st.idle.pop() {
                return Ok(RingGuard {
                    pool: self,
                    ring: Some(ring),
                });
            }
            if st.created < MAX_RINGS {
                st.created += 1;
                drop(st);
                return match IoUring::new(RING_ENTRIES) {
                    Ok(ring) => Ok(RingGuard {
                        pool: self,
                        ring: Some(ring),
                    }),
                    Err(e) => {
                        self.state.lock().created -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            self.returned.wait(&mut st);
        }
    }

    #[cfg(test)]
    fn created(&self) -> usize {
        self.state.lock().created
    }
}

/// A ring taken from the pool; goes back when dropped.
struct RingGuard<'a> {
    pool: &'a RingPool,
    ring: Option<IoUring>,
}

impl std::ops::Deref for RingGuard<'_> {
    type Target = IoUring;
    fn deref(&self) -> &IoUring {
        self.ring.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for RingGuard<'_> {
    fn deref_mut(&mut self) -> &mut IoUring {
        self.ring.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for RingGuard<'_> {
    fn drop(&mut self) {
        if let Some(ring) = self.ring.take() {
            self.pool.state.lock().idle.push(ring);
            self.pool.returned.notify_one();
        }
    }
}

/// Submits what is queued and waits until `want` completions are ready.
/// Retries interrupted and busy calls; aborts the process if the ring keeps
/// failing, since entries in flight may still point into the caller's
/// buffers (see the module docs).
fn submit_and_wait(ring: &IoUring, want: usize) {
    let mut failures = 0;
    loop {
        match ring.submit_and_wait(want) {
            Ok(_) => return,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                failures += 1;
                if failures >= MAX_ENTER_FAILURES {
                    log::error!(
                        "io_uring_enter keeps failing ({e}) with I/O in flight; \
                         aborting rather than freeing buffers the kernel may still write"
                    );
                    std::process::abort();
                }
                if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY)) {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Batched reads.

/// Why a read stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// The file ended (a 0-byte completion).
    Eof,
    /// An errno from the kernel.
    Os(i32),
}

impl Fail {
    fn to_error(self) -> io::Error {
        match self {
            Fail::Eof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file ended before the requested range",
            ),
            Fail::Os(errno) => io::Error::from_raw_os_error(errno),
        }
    }
}

/// What to do after a read's completion.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Submit the rest (`filled` has advanced, or the error was transient).
    Resubmit,
    /// The read is over: complete (`None`) or stopped.
    Done(Option<Fail>),
}

/// Applies the completion `res` of a read of `len - *filled` bytes:
/// positive advances `filled` (a short read is neither error nor success:
/// the rest is resubmitted), zero before the end is end of file, negative is
/// an errno (`EINTR`/`EAGAIN` are retried).
fn on_read_completion(len: usize, filled: &mut usize, res: i32) -> Step {
    if res < 0 {
        return match -res {
            libc::EINTR | libc::EAGAIN => Step::Resubmit,
            errno => Step::Done(Some(Fail::Os(errno))),
        };
    }
    if res == 0 {
        return Step::Done(Some(Fail::Eof));
    }
    *filled = (*filled + res as usize).min(len);
    if *filled == len {
        Step::Done(None)
    } else {
        Step::Resubmit
    }
}

/// One read the ring performs: `len` bytes of `fd` from `offset` into `ptr`,
/// which points either into one request's buffer or into `temp`.
#[derive(Debug)]
struct ReadOp {
    fd: RawFd,
    offset: u64,
    ptr: *mut u8,
    len: usize,
    filled: usize,
    fail: Option<Fail>,
    /// For a merged read: the buffer `ptr` points into.
    temp: Option<Vec<u8>>,
    /// The requests this read serves: (request index, start within the read).
    members: Vec<(usize, usize)>,
}

/// Turns the requests `todo` (index, fd; non-empty buffers) into reads,
/// sorted by file and offset, merging runs of small adjacent requests of one
/// file into one read into a temporary buffer.
fn plan_reads(reqs: &mut [ReadRequest<'_>], mut todo: Vec<(usize, RawFd)>) -> Vec<ReadOp> {
    todo.sort_by_key(|&(i, fd)| (fd, reqs[i].offset));
    let mut ops: Vec<ReadOp> = Vec::with_capacity(todo.len());
    let mut k = 0;
    while k < todo.len() {
        let (first, fd) = todo[k];
        let start = reqs[first].offset;
        let mut end = start + reqs[first].buf.len() as u64;
        let mut run = vec![(first, 0usize)];
        if reqs[first].buf.len() <= MERGE_MAX_REQUEST {
            while let Some(&(next, next_fd)) = todo.get(k + run.len()) {
                let n = reqs[next].buf.len();
                if next_fd != fd
                    || reqs[next].offset != end
                    || n > MERGE_MAX_REQUEST
                    || (end - start) as usize + n > MERGE_MAX_RUN
                {
                    break;
                }
                run.push((next, (end - start) as usize));
                end += n as u64;
            }
        }
        k += run.len();
        let len = (end - start) as usize;
        if run.len() == 1 {
            ops.push(ReadOp {
                fd,
                offset: start,
                ptr: reqs[first].buf.as_mut_ptr(),
                len,
                filled: 0,
                fail: None,
                temp: None,
                members: run,
            });
        } else {
            let mut temp = vec![0u8; len];
            ops.push(ReadOp {
                fd,
                offset: start,
                ptr: temp.as_mut_ptr(),
                len,
                filled: 0,
                fail: None,
                temp: Some(temp),
                members: run,
            });
        }
    }
    ops
}

/// Performs `ops` through `ring`: keeps up to the ring's size in flight,
/// refills it as completions arrive, resubmits the rest after short reads,
/// and returns only when no entry is in flight.
fn drive_reads(ring: &mut IoUring, ops: &mut [ReadOp]) {
    let cap = ring.params().sq_entries() as usize;
    let mut pending: VecDeque<usize> = (0..ops.len()).collect();
    let mut in_flight = 0usize;
    while in_flight > 0 || !pending.is_empty() {
        {
            let mut sq = ring.submission();
            while in_flight < cap {
                let Some(i) = pending.pop_front() else { break };
                let op = &ops[i];
                let rest = (op.len - op.filled).min(MAX_SUBMIT_LEN);
                let entry = opcode::Read::new(
                    types::Fd(op.fd),
                    op.ptr.wrapping_add(op.filled),
                    rest as u32,
                )
                .offset(op.offset + op.filled as u64)
                .build()
                .user_data(i as u64);
                // SAFETY: the entry points at `rest` bytes starting `filled`
                // bytes into a live buffer of `len` bytes: a request's buffer
                // (exclusively borrowed by `read_batch` for its whole call) or
                // the op's `temp` (heap memory owned by `ops`, which outlives
                // this function and is neither resized nor read until it
                // returns). At most one entry per op is in flight, so no two
                // entries write the same bytes. The fd belongs to a handle
                // borrowed for the whole call, so it stays open. This
                // function returns only when `in_flight` is 0, i.e. after the
                // kernel has posted every entry's completion.
                if unsafe { sq.push(&entry) }.is_err() {
                    pending.push_front(i);
                    break;
                }
                in_flight += 1;
            }
        }
        submit_and_wait(ring, 1);
        for cqe in ring.completion() {
            in_flight -= 1;
            let i = cqe.user_data() as usize;
            let op = &mut ops[i];
            match on_read_completion(op.len, &mut op.filled, cqe.result()) {
                Step::Resubmit => pending.push_front(i),
                Step::Done(fail) => op.fail = fail,
            }
        }
    }
}

/// Records each request's result: served if every byte of it was read
/// (copied out of a merged read's buffer), else its read's failure.
fn finish_reads(
    ops: Vec<ReadOp>,
    reqs: &mut [ReadRequest<'_>],
    results: &mut [Option<io::Result<()>>],
) {
    for op in ops {
        for &(i, start) in &op.members {
            let end = start + reqs[i].buf.len();
            results[i] = Some(if end <= op.filled {
                if let Some(temp) = &op.temp {
                    reqs[i].buf.copy_from_slice(&temp[start..end]);
                }
                Ok(())
            } else {
                Err(op.fail.unwrap_or(Fail::Eof).to_error())
            });
        }
    }
}

// ---------------------------------------------------------------------------
// Write, then optionally fdatasync, in one submission.

fn is_transient(res: i32) -> bool {
    matches!(-res, libc::EINTR | libc::EAGAIN)
}

/// Writes all of `buf` at `offset` of `fd` and, when `sync`, fdatasyncs it
/// with an fsync entry linked behind the write; resubmits after short
/// writes; returns the first error once no entry is in flight.
fn ring_write(
    ring: &mut IoUring,
    fd: RawFd,
    buf: &[u8],
    offset: u64,
    sync: bool,
) -> io::Result<()> {
    const WRITE: u64 = 0;
    const FSYNC: u64 = 1;
    let mut written = 0usize;
    loop {
        let rest = (buf.len() - written).min(MAX_SUBMIT_LEN);
        if rest == 0 && !sync {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(2);
        if rest > 0 {
            let mut write = opcode::Write::new(
                types::Fd(fd),
                buf.as_ptr().wrapping_add(written),
                rest as u32,
            )
            .offset(offset + written as u64)
            .build()
            .user_data(WRITE);
            if sync {
                write = write.flags(squeue::Flags::IO_LINK);
            }
            entries.push(write);
        }
        if sync {
            entries.push(
                opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(FSYNC),
            );
        }
        // SAFETY: the write entry points at `rest` bytes of `buf` starting at
        // `written`, inside `buf`, which is borrowed for this whole call; the
        // fsync entry names no memory. The fd belongs to the handle this is
        // called on, so it stays open. The ring came idle from the pool (no
        // entry of anyone else in it) and has room for two entries. Both
        // completions are reaped below before the next round or return.
        unsafe { ring.submission().push_multiple(&entries) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        let mut results: Vec<cqueue::Entry> = Vec::with_capacity(entries.len());
        while results.len() < entries.len() {
            submit_and_wait(ring, entries.len() - results.len());
            results.extend(ring.completion());
        }
        let mut write_res = None;
        let mut fsync_res = None;
        for cqe in &results {
            if cqe.user_data() == WRITE {
                write_res = Some(cqe.result());
            } else {
                fsync_res = Some(cqe.result());
            }
        }
        if let Some(done) = on_write_round(buf.len(), &mut written, write_res, fsync_res) {
            return done;
        }
    }
}

/// Applies one round of [`ring_write`]: the completions of the write of the
/// rest of a `len`-byte buffer (`None` when nothing was left to write) and of
/// the fsync linked behind it (`None` without `sync`). Advances `written`;
/// returns `None` to go round again (short write, transient error, fsync
/// cancelled by a broken link) or the final result.
fn on_write_round(
    len: usize,
    written: &mut usize,
    write_res: Option<i32>,
    fsync_res: Option<i32>,
) -> Option<io::Result<()>> {
    if let Some(res) = write_res {
        if res < 0 && !is_transient(res) {
            return Some(Err(io::Error::from_raw_os_error(-res)));
        }
        if res == 0 {
            return Some(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write returned zero bytes",
            )));
        }
        if res > 0 {
            *written = (*written + res as usize).min(len);
        }
    }
    match fsync_res {
        // The fsync ran behind the whole of what was written so far.
        Some(0) | None if *written == len => Some(Ok(())),
        // A short or failed write breaks the link: the fsync is cancelled
        // and runs again behind the rest of the write. Any other fsync error
        // is reported, never retried.
        Some(res) if res < 0 && res != -libc::ECANCELED => {
            Some(Err(io::Error::from_raw_os_error(-res)))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Files and the Fs implementation.

/// A [`StdFs`] file whose `write_all_and_sync_at` goes through a ring.
#[derive(Debug)]
struct UringFile {
    inner: Arc<dyn FileHandle>,
    pool: Arc<RingPool>,
}

impl FileHandle for UringFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
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
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.start_writeback(offset, len)
    }
    fn write_all_and_sync_at(&self, buf: &[u8], offset: u64, sync: bool) -> io::Result<()> {
        // A lone write gains nothing from a ring: only a write with its
        // fdatasync linked behind it (one submission, one wait) does.
        if !sync {
            return self.inner.write_all_at(buf, offset);
        }
        let Some(fd) = self.inner.raw_fd() else {
            return self.inner.write_all_and_sync_at(buf, offset, sync);
        };
        match self.pool.acquire() {
            Ok(mut ring) => ring_write(&mut ring, fd, buf, offset, sync),
            Err(e) => {
                log::debug!("no io_uring ring ({e}); writing with pwrite");
                self.inner.write_all_and_sync_at(buf, offset, sync)
            }
        }
    }
}

impl Fs for UringFs {
    fn name(&self) -> &'static str {
        "io_uring"
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.std.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        Ok(self.wrap(self.std.create(path)?))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>> {
        Ok(self.wrap(self.std.open(path, writable)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.std.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.std.remove(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.std.hard_link(from, to)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.std.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.std.sync_dir(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.std.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.std.exists(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.std.lock(path)
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.std.lock_shared(path)
    }

    /// Reads through a ring: see the module docs. Requests with an empty
    /// buffer succeed at once; requests whose handle has no raw fd use
    /// `read_exact_at`; so do all when no ring can be had. When a merged
    /// read fails, the requests it fully read before the failure succeed
    /// and the others get its error.
    fn read_batch(&self, reqs: &mut [ReadRequest<'_>]) -> Vec<io::Result<()>> {
        let mut results: Vec<Option<io::Result<()>>> = (0..reqs.len()).map(|_| None).collect();
        let mut todo = Vec::new();
        for (i, r) in reqs.iter_mut().enumerate() {
            if r.buf.is_empty() {
                results[i] = Some(Ok(()));
            } else if let Some(fd) = r.file.raw_fd() {
                todo.push((i, fd));
            } else {
                results[i] = Some(r.file.read_exact_at(r.buf, r.offset));
            }
        }
        if !todo.is_empty() {
            match self.pool.acquire() {
                Ok(mut ring) => {
                    let mut ops = plan_reads(reqs, todo);
                    drive_reads(&mut ring, &mut ops);
                    drop(ring);
                    finish_reads(ops, reqs, &mut results);
                }
                Err(e) => {
                    log::debug!("no io_uring ring ({e}); reading with pread");
                    for (i, _) in todo {
                        let r = &mut reqs[i];
                        results[i] = Some(r.file.read_exact_at(r.buf, r.offset));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("read request not performed"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::fs::OpenOptions;

    fn uring() -> UringFs {
        UringFs::probe().expect("io_uring available for tests")
    }

    fn file_with(fs: &UringFs, dir: &Path, name: &str, bytes: &[u8]) -> Arc<dyn FileHandle> {
        let f = fs.create(&dir.join(name)).unwrap();
        f.write_all_at(bytes, 0).unwrap();
        f
    }

    fn pattern(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen()).collect()
    }

    /// A handle without a raw fd, so batched reads must use `read_exact_at`.
    #[derive(Debug)]
    struct NoFd(Arc<dyn FileHandle>);
    impl FileHandle for NoFd {
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
            self.0.len()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.0.set_len(len)
        }
    }

    /// A write-only file exposing its fd: reads of it fail with EBADF.
    #[derive(Debug)]
    struct WriteOnly(std::fs::File);
    impl FileHandle for WriteOnly {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
            std::os::unix::fs::FileExt::write_at(&self.0, buf, offset)
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
        fn raw_fd(&self) -> Option<RawFd> {
            Some(std::os::fd::AsRawFd::as_raw_fd(&self.0))
        }
    }

    /// Runs `ranges` (file index, offset, len) through `fs.read_batch` and
    /// through `read_exact_at` one by one; asserts equal bytes and kinds.
    fn check_against_pread(
        fs: &dyn Fs,
        files: &[Arc<dyn FileHandle>],
        ranges: &[(usize, u64, usize)],
    ) {
        let mut bufs: Vec<Vec<u8>> = ranges.iter().map(|&(_, _, n)| vec![0xAA; n]).collect();
        let mut reqs: Vec<ReadRequest<'_>> = ranges
            .iter()
            .zip(bufs.iter_mut())
            .map(|(&(f, off, _), buf)| ReadRequest {
                file: &*files[f],
                offset: off,
                buf: buf.as_mut_slice(),
            })
            .collect();
        let got = fs.read_batch(&mut reqs);
        drop(reqs);
        assert_eq!(got.len(), ranges.len());
        for (k, (&(f, off, n), res)) in ranges.iter().zip(got).enumerate() {
            let mut want = vec![0u8; n];
            match files[f].read_exact_at(&mut want, off) {
                Ok(()) => {
                    assert!(res.is_ok(), "request {k} {:?}: {res:?}", ranges[k]);
                    assert_eq!(bufs[k], want, "request {k} {:?}", ranges[k]);
                }
                Err(e) => {
                    let got = res.expect_err("batched read should fail too");
                    assert_eq!(got.kind(), e.kind(), "request {k} {:?}", ranges[k]);
                }
            }
        }
    }

    #[test]
    fn read_batch_matches_pread_on_random_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let fs = uring();
        let sizes = [0usize, 1, 4096, 100_000, 1 << 20];
        let files: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| file_with(&fs, dir.path(), &format!("f{i}"), &pattern(i as u64, n)))
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ranges: Vec<(usize, u64, usize)> = (0..1000)
            .map(|_| {
                let f = rng.gen_range(0..files.len());
                let size = sizes[f] as u64;
                let off = rng.gen_range(0..=size + 10);
                let len = match rng.gen_range(0..10) {
                    0 => 0,
                    1 => rng.gen_range(0..200_000),
                    _ => rng.gen_range(1..5000),
                };
                (f, off, len)
            })
            .collect();
        assert!(ranges.iter().any(|r| r.2 == 0));
        assert!(ranges
            .iter()
            .any(|&(f, off, n)| off + n as u64 > sizes[f] as u64 && n > 0));
        check_against_pread(&fs, &files, &ranges);
        // The default (loop of read_exact_at) agrees too.
        check_against_pread(&StdFs::default(), &files, &ranges);
    }

    #[test]
    fn thousand_requests_through_one_64_entry_ring() {
        let dir = tempfile::tempdir().unwrap();
        let fs = uring();
        let data = pattern(3, 1 << 20);
        let files = vec![file_with(&fs, dir.path(), "f", &data)];
        // Spaced out, so that nothing merges: 1,000 separate reads.
        let ranges: Vec<_> = (0..1000u64)
            .map(|i| (0, i * 1000, 100 + (i % 7) as usize))
            .collect();
        check_against_pread(&fs, &files, &ranges);
        assert_eq!(fs.pool.created(), 1, "one batch uses one ring");
    }

    #[test]
    fn adjacent_requests_merge_and_split_back() {
        let dir = tempfile::tempdir().unwrap();
        let fs = uring();
        let data = pattern(5, 300_000);
        let a = file_with(&fs, dir.path(), "a", &data);
        let b = file_with(&fs, dir.path(), "b", &data);
        // Shuffled contiguous runs in two files, a big request that never
        // merges, and a run longer than MERGE_MAX_RUN.
        let mut ranges = Vec::new();
        let mut off = 0u64;
        for i in 0..200usize {
            let n = 1 + (i * 37) % 2000;
            ranges.push((0, off, n));
            ranges.push((1, off, n));
            off += n as u64;
        }
        ranges.push((0, off, 20_000));
        ranges.push((0, off + 20_000, 10));
        ranges.reverse();
        check_against_pread(&fs, &[a.clone(), b.clone()], &ranges);

        // The plan: runs merge per file, capped by MERGE_MAX_RUN, and never
        // include a request above MERGE_MAX_REQUEST.
        let mut bufs: Vec<Vec<u8>> = ranges.iter().map(|r| vec![0; r.2]).collect();
        let files = [a, b];
        let mut reqs: Vec<ReadRequest<'_>> = ranges
            .iter()
            .zip(bufs.iter_mut())
            .map(|(&(f, o, _), buf)| ReadRequest {
                file: &*files[f],
                offset: o,
                buf,
            })
            .collect();
        let todo = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r.file.raw_fd().unwrap()))
            .collect();
        let ops = plan_reads(&mut reqs, todo);
        assert!(
            ops.len() < ranges.len() / 10,
            "{} reads for {} requests",
            ops.len(),
            ranges.len()
        );
        for op in &ops {
            assert!(op.len <= MERGE_MAX_RUN || op.members.len() == 1);
            if op.members.len() > 1 {
                assert!(op
                    .members
                    .iter()
                    .all(|&(i, _)| reqs[i].buf.len() <= MERGE_MAX_REQUEST));
            }
        }
    }

    #[test]
    fn a_request_straddling_eof_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fs = uring();
        let data = pattern(9, 1000);
        let f = file_with(&fs, dir.path(), "f", &data);
        // Adjacent (so merged): [900,950) ok, [950,1010) straddles, [1010,1020) past.
        let mut b1 = vec![0; 50];
        let mut b2 = vec![0; 60];
        let mut b3 = vec![0; 10];
        let mut b4 = vec![0; 100];
        let mut reqs = vec![
            ReadRequest {
                file: &*f,
                offset: 950,
                buf: &mut b2,
            },
            ReadRequest {
                file: &*f,
                offset: 900,
                buf: &mut b1,
            },
            ReadRequest {
                file: &*f,
                offset: 1010,
                buf: &mut b3,
            },
            ReadRequest {
                file: &*f,
                offset: 0,
                buf: &mut b4,
            },
        ];
        let res = fs.read_batch(&mut reqs);
        drop(reqs);
        assert_eq!(
            res[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(res[1].is_ok());
        assert_eq!(
            res[2].as_ref().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(res[3].is_ok());
        assert_eq!(b1, &data[900..950]);
        assert_eq!(b4, &data[..100]);
    }

    #[test]
    fn errors_are_per_request_and_handles_without_fd_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let fs = uring();
        let data = pattern(11, 5000);
        let f = file_with(&fs, dir.path(), "f", &data);
        let wo = WriteOnly(
            OpenOptions::new()
                .write(true)
                .open(dir.path().join("f"))
                .unwrap(),
        );
        let nofd = NoFd(f.clone());
        let (mut b1, mut b2, mut b3) = (vec![0; 100], vec![0; 100], vec![0; 100]);
        let mut reqs = vec![
            ReadRequest {
                file: &wo,
                offset: 0,
                buf: &mut b1,
            },
            ReadRequest {
                file: &*f,
                offset: 100,
                buf: &mut b2,
            },
            ReadRequest {
                file: &nofd,
                offset: 200,
                buf: &mut b3,
            },
        ];
        let res = fs.read_batch(&mut reqs);
        drop(reqs);
        assert_eq!(
            res[0].as_ref().unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
        assert!(res[1].is_ok() && res[2].is_ok());
        assert_eq!(b2, &data[100..200]);
        assert_eq!(b3, &data[200..300]);
    }

    #[test]
    fn short_completions_resubmit_the_rest() {
        let mut filled = 0;
        assert_eq!(on_read_completion(100, &mut filled, 30), Step::Resubmit);
        assert_eq!(filled, 30);
        assert_eq!(
            on_read_completion(100, &mut filled, -libc::EINTR),
            Step::Resubmit
        );
        assert_eq!(filled, 30);
        assert_eq!(
            on_read_completion(100, &mut filled, -libc::EAGAIN),
            Step::Resubmit
        );
        assert_eq!(on_read_completion(100, &mut filled, 69), Step::Resubmit);
        assert_eq!(on_read_completion(100, &mut filled, 1), Step::Done(None));
        assert_eq!(filled, 100);

        let mut filled = 40;
        assert_eq!(
            on_read_completion(100, &mut filled, 0),
            Step::Done(Some(Fail::Eof))
        );
        assert_eq!(filled, 40);
        assert_eq!(
            on_read_completion(100, &mut filled, -libc::EIO),
            Step::Done(Some(Fail::Os(libc::EIO)))
        );
        assert_eq!(
            Fail::Os(libc::EIO).to_error().raw_os_error(),
            Some(libc::EIO)
        );
        assert_eq!(Fail::Eof.to_error().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn merged_read_cut_short_serves_the_members_it_covers() {
        // A merged read of 3 members that stopped (EOF) after 25 bytes.
        let mut b0 = vec![0u8; 10];
        let mut b1 = vec![0u8; 10];
        let mut b2 = vec![0u8; 10];
        let dir = tempfile::tempdir().unwrap();
        let f = StdFs::default().create(&dir.path().join("f")).unwrap();
        let mut reqs = vec![
            ReadRequest {
                file: &*f,
                offset: 0,
                buf: &mut b0,
            },
            ReadRequest {
                file: &*f,
                offset: 10,
                buf: &mut b1,
            },
            ReadRequest {
                file: &*f,
                offset: 20,
                buf: &mut b2,
            },
        ];
        let mut temp: Vec<u8> = (0..30).collect();
        let op = ReadOp {
            fd: -1,
            offset: 0,
            ptr: temp.as_mut_ptr(),
            len: 30,
            filled: 25,
            fail: Some(Fail::Eof),
            temp: Some(temp),
            members: vec![(0, 0), (1, 10), (2, 20)],
        };
        let mut results = vec![None, None, None];
        finish_reads(vec![op], &mut reqs, &mut results);
        drop(reqs);
        assert!(results[0].as_ref().unwrap().is_ok());
        assert!(results[1].as_ref().unwrap().is_ok());
        let e = results[2].as_ref().unwrap().as_ref().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(b0, (0..10).collect::<Vec<u8>>());
        assert_eq!(b1, (10..20).collect::<Vec<u8>>());
    }

    #[test]
    fn write_rounds_resubmit_short_writes_and_report_the_first_error() {
        let ecanceled = -libc::ECANCELED;
        // Short write: the linked fsync is cancelled; go round again.
        let mut w = 0;
        assert!(on_write_round(100, &mut w, Some(40), Some(ecanceled)).is_none());
        assert_eq!(w, 40);
        // Short write whose fsync still ran: go round again too.
        assert!(on_write_round(100, &mut w, Some(10), Some(0)).is_none());
        assert_eq!(w, 50);
        // Transient write error: nothing advanced, round again.
        assert!(on_write_round(100, &mut w, Some(-libc::EAGAIN), Some(ecanceled)).is_none());
        assert_eq!(w, 50);
        // The rest, then the fsync: done.
        assert!(on_write_round(100, &mut w, Some(50), Some(0))
            .unwrap()
            .is_ok());
        // Without sync.
        let mut w = 0;
        assert!(on_write_round(10, &mut w, Some(3), None).is_none());
        assert!(on_write_round(10, &mut w, Some(7), None).unwrap().is_ok());
        // Write error wins over the cancelled fsync.
        let mut w = 0;
        let e = on_write_round(10, &mut w, Some(-libc::ENOSPC), Some(ecanceled));
        assert_eq!(e.unwrap().unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        // Zero-byte write.
        let e = on_write_round(10, &mut w, Some(0), Some(ecanceled));
        assert_eq!(e.unwrap().unwrap_err().kind(), io::ErrorKind::WriteZero);
        // A failed fsync after a complete write is reported, not retried.
        let mut w = 0;
        let e = on_write_round(10, &mut w, Some(10), Some(-libc::EIO));
        assert_eq!(e.unwrap().unwrap_err().raw_os_error(), Some(libc::EIO));
        // Only an fsync (empty buffer).
        let mut w = 0;
        assert!(on_write_round(0, &mut w, None, Some(0)).unwrap().is_ok());
    }

    #[test]
    fn write_all_and_sync_at_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let fs = uring();
        let f = fs.create(&dir.path().join("f")).unwrap();
        let big = pattern(13, 3 << 20);
        f.write_all_and_sync_at(&big, 0, true).unwrap();
        f.write_all_and_sync_at(b"hello", 10, false).unwrap();
        f.write_all_and_sync_at(b"", 0, true).unwrap();
        f.write_all_and_sync_at(b"tail", big.len() as u64, true)
            .unwrap();
        let mut want = big.clone();
        want[10..15].copy_from_slice(b"hello");
        want.extend_from_slice(b"tail");
        assert_eq!(f.len().unwrap(), want.len() as u64);
        let mut got = vec![0; want.len()];
        f.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(got, want);
        // Through a fresh handle too (the data reached the file, not a cache of ours).
        let g = StdFs::default().open(&dir.path().join("f"), false).unwrap();
        g.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(got, want);
        // A read-only handle reports the write's error.
        let ro = fs.open(&dir.path().join("f"), false).unwrap();
        let e = ro.write_all_and_sync_at(b"x", 0, true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn probe_reports_a_refusal() {
        let e =
            UringFs::probe_with(|| Err(io::Error::from_raw_os_error(libc::ENOSYS))).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSYS));
        assert_eq!(uring().name(), "io_uring");
    }

    #[test]
    fn created_files_keep_stdfs_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        uring().create(&a).unwrap();
        StdFs::default().create(&b).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&a), mode(&b));
        let c = dir.path().join("c");
        uring().with_mode(0o600).create(&c).unwrap();
        assert_eq!(mode(&c) & 0o077, 0);
    }

    #[test]
    fn concurrent_batches_use_several_rings() {
        let dir = tempfile::tempdir().unwrap();
        let fs = uring();
        let data = pattern(17, 1 << 20);
        let f = file_with(&fs, dir.path(), "f", &data);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (fs, f, data) = (&fs, &f, &data);
                s.spawn(move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(t);
                    for _ in 0..50 {
                        let ranges: Vec<_> = (0..100)
                            .map(|_| {
                                (
                                    rng.gen_range(0..data.len() as u64 - 5000),
                                    rng.gen_range(1..5000),
                                )
                            })
                            .collect();
                        let mut bufs: Vec<Vec<u8>> = ranges.iter().map(|r| vec![0; r.1]).collect();
                        let mut reqs: Vec<_> = ranges
                            .iter()
                            .zip(bufs.iter_mut())
                            .map(|(&(o, _), buf)| ReadRequest {
                                file: &**f,
                                offset: o,
                                buf,
                            })
                            .collect();
                        assert!(fs.read_batch(&mut reqs).iter().all(|r| r.is_ok()));
                        drop(reqs);
                        for (&(o, n), b) in ranges.iter().zip(&bufs) {
                            assert_eq!(&b[..], &data[o as usize..o as usize + n]);
                        }
                    }
                });
            }
        });
        let created = fs.pool.created();
        assert!((1..=MAX_RINGS).contains(&created));
    }
}
