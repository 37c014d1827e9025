//! Steady writeback of the files the engine appends to: the vLog's heads
//! and the SSTables of flushes and compactions.
//!
//! Left to itself, the kernel lets a file's dirty pages pile up until the
//! dirty limits force them out in bursts, and on the machines this project
//! is measured on that ran several times below the disk (`vlog-tools
//! write-modes`: 4 GiB of 1 MiB appends made durable at a median of
//! 437 MB/s buffered against 1,618 MB/s with writeback started every 4 MiB;
//! docs/benchmarks.md has the runs). In [`WriteMode::Writeback`] each
//! appender starts the writeback of every `bytes_per_sync` bytes it has
//! written (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, through
//! [`FileHandle::start_writeback`]) and waits for nothing.
//!
//! Starting writeback makes nothing durable, and the engine never counts on
//! it: durability still comes only from `fdatasync` (a `sync` write, a
//! sealed segment, a finished table), and an acknowledged write is in the
//! page cache before it is acknowledged, as with plain buffered writes, so
//! it survives the process's death. The power-loss simulation
//! ([`crate::testing::FaultFs`]) accepts the call and makes nothing durable
//! by it, which is what the kernel promises.
//!
//! When the file system refuses the call (`EINVAL`, `ENOSYS`,
//! `EOPNOTSUPP`, or a backend without it), the engine falls back to plain
//! buffered writes for the rest of the open, logs why, and shows the reason
//! in `Stats::write_mode_fallback`. Any other error of the call (an `EIO`
//! from earlier writeback) is left for the next `fdatasync` to report, as
//! the kernel reports it there too.

use super::FileHandle;
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How the engine writes the files it appends to (the vLog, flushed and
/// compacted SSTables). See [`crate::Options::write_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WriteMode {
    /// Buffered writes, with the writeback of every
    /// [`crate::Options::bytes_per_sync`] bytes started as they fill. The
    /// written pages stay in the page cache, so reads of fresh data stay
    /// warm. Falls back to [`WriteMode::Buffered`] where the file system
    /// refuses to start writeback.
    #[default]
    Writeback,
    /// Plain buffered writes: the kernel writes back when its dirty limits
    /// say so.
    Buffered,
}

impl WriteMode {
    /// The mode's name as `Stats` shows it (`"writeback"`, `"buffered"`).
    pub fn name(self) -> &'static str {
        match self {
            WriteMode::Writeback => "writeback",
            WriteMode::Buffered => "buffered",
        }
    }
}

/// The engine's writeback state, shared by every appender of one open.
#[derive(Debug)]
pub(crate) struct Writeback {
    /// Bytes between two starts; 0 when the mode is buffered.
    every: u64,
    /// False once the file system refused (or the mode is buffered).
    on: AtomicBool,
    /// Why the engine fell back to buffered writes.
    fallback: Mutex<Option<String>>,
    /// Ranges whose writeback was started.
    ranges: AtomicU64,
    /// Calls that failed with an error left for `fdatasync` to report.
    errors: AtomicU64,
}

impl Writeback {
    /// The state for `mode` with a start every `bytes_per_sync` bytes (0
    /// means buffered whatever the mode).
    pub(crate) fn new(mode: WriteMode, bytes_per_sync: u64) -> Writeback {
        let every = match mode {
            WriteMode::Writeback => bytes_per_sync,
            WriteMode::Buffered => 0,
        };
        Writeback {
            every,
            on: AtomicBool::new(every > 0),
            fallback: Mutex::new(None),
            ranges: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// After an appender wrote bytes up to `end` of `file`: when at least
    /// `bytes_per_sync` of them have not had their writeback started since
    /// `*unstarted`, starts it and moves `*unstarted` to `end`.
    pub(crate) fn wrote(&self, file: &dyn FileHandle, unstarted: &mut u64, end: u64) {
        if !self.on.load(Ordering::Relaxed) || end < unstarted.saturating_add(self.every) {
            return;
        }
        let from = *unstarted;
        *unstarted = end;
        match file.start_writeback(from, end - from) {
            Ok(()) => {
                self.ranges.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if refused(&e) => self.fall_back(&e),
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                log::debug!("starting writeback: {e} (left for fdatasync to report)");
            }
        }
    }

    fn fall_back(&self, e: &io::Error) {
        let mut why = self.fallback.lock();
        if why.is_none() {
            log::info!("the file system refuses to start writeback ({e}); using buffered writes");
            *why = Some(format!("starting writeback was refused: {e}"));
        }
        self.on.store(false, Ordering::Relaxed);
    }

    /// The mode in effect (after any fallback).
    pub(crate) fn mode(&self) -> WriteMode {
        if self.on.load(Ordering::Relaxed) {
            WriteMode::Writeback
        } else {
            WriteMode::Buffered
        }
    }

    /// Why the engine fell back to buffered writes, if it did.
    pub(crate) fn fallback(&self) -> Option<String> {
        self.fallback.lock().clone()
    }

    /// Ranges whose writeback was started, and calls that failed.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.ranges.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// Whether an error of `sync_file_range` means "not on this file system".
fn refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) | Some(libc::ESPIPE)
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Fs, StdFs};

    /// A file that counts starts and answers with a chosen error.
    #[derive(Debug)]
    struct Counting {
        starts: Mutex<Vec<(u64, u64)>>,
        answer: Option<i32>,
    }

    impl FileHandle for Counting {
        fn read_at(&self, _: &mut [u8], _: u64) -> io::Result<usize> {
            Ok(0)
        }
        fn write_at(&self, buf: &[u8], _: u64) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
        fn sync_all(&self) -> io::Result<()> {
            Ok(())
        }
        fn len(&self) -> io::Result<u64> {
            Ok(0)
        }
        fn set_len(&self, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
            self.starts.lock().push((offset, len));
            match self.answer {
                None => Ok(()),
                Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            }
        }
    }

    fn counting(answer: Option<i32>) -> Counting {
        Counting {
            starts: Mutex::new(Vec::new()),
            answer,
        }
    }

    #[test]
    fn starts_each_range_once_it_fills() {
        let wb = Writeback::new(WriteMode::Writeback, 100);
        let f = counting(None);
        let mut unstarted = 0;
        for end in [40, 99, 100, 150, 260, 261] {
            wb.wrote(&f, &mut unstarted, end);
        }
        assert_eq!(*f.starts.lock(), vec![(0, 100), (100, 160)]);
        assert_eq!(unstarted, 260);
        assert_eq!(wb.counts(), (2, 0));
        assert_eq!(wb.mode(), WriteMode::Writeback);
    }

    #[test]
    fn buffered_mode_never_starts() {
        for wb in [
            Writeback::new(WriteMode::Buffered, 100),
            Writeback::new(WriteMode::Writeback, 0),
        ] {
            let f = counting(None);
            let mut unstarted = 0;
            wb.wrote(&f, &mut unstarted, 1 << 30);
            assert!(f.starts.lock().is_empty());
            assert_eq!(wb.mode(), WriteMode::Buffered);
            assert_eq!(wb.fallback(), None);
        }
    }

    #[test]
    fn a_refusal_falls_back_for_good_and_says_why() {
        let wb = Writeback::new(WriteMode::Writeback, 10);
        let f = counting(Some(libc::EINVAL));
        let mut unstarted = 0;
        wb.wrote(&f, &mut unstarted, 10);
        wb.wrote(&f, &mut unstarted, 30);
        assert_eq!(f.starts.lock().len(), 1, "no second try after a refusal");
        assert_eq!(wb.mode(), WriteMode::Buffered);
        assert!(wb.fallback().unwrap().contains("refused"));
    }

    #[test]
    fn other_errors_are_left_to_fdatasync() {
        let wb = Writeback::new(WriteMode::Writeback, 10);
        let f = counting(Some(libc::EIO));
        let mut unstarted = 0;
        wb.wrote(&f, &mut unstarted, 10);
        wb.wrote(&f, &mut unstarted, 20);
        assert_eq!(f.starts.lock().len(), 2);
        assert_eq!(wb.mode(), WriteMode::Writeback);
        assert_eq!(wb.counts(), (0, 2));
    }

    #[test]
    fn real_files_take_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::default();
        let f = fs.create(&dir.path().join("f")).unwrap();
        f.write_all_at(&[7u8; 1 << 16], 0).unwrap();
        f.start_writeback(0, 1 << 16).unwrap();
        f.start_writeback(0, 0).unwrap();
        let mut back = vec![0u8; 1 << 16];
        f.read_exact_at(&mut back, 0).unwrap();
        assert!(back.iter().all(|&b| b == 7));
    }
}
