//! [`Stats`]: what the engine has written, where the bytes are, how reads went.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters kept while the database runs (reset on open).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) user_bytes_written: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) group_commits: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) flush_bytes_written: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) manifest_bytes_written: AtomicU64,
    pub(crate) gets: AtomicU64,
    pub(crate) tables_probed: AtomicU64,
    pub(crate) vlog_reads: AtomicU64,
    pub(crate) write_stalls: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One level of the LSM-tree.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LevelStats {
    /// SSTables in the level.
    pub files: u64,
    /// Bytes of those SSTables.
    pub bytes: u64,
}

/// A snapshot of the engine's counters, from [`crate::Db::stats`].
///
/// Byte counters count since this open; sizes are what is on disk now.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The I/O backend in use (`"sync"` or `"io_uring"`).
    pub io_backend: String,
    /// Key and value bytes handed to put and delete.
    pub user_bytes_written: u64,
    /// Puts and deletes applied.
    pub writes: u64,
    /// Write batches applied (a single put is a batch of one).
    pub batches: u64,
    /// Group commits: each one `write` to the vLog shared by its batches.
    pub group_commits: u64,
    /// `fdatasync` calls made for sync writes.
    pub syncs: u64,
    /// Bytes appended to the vLog (records: headers, keys, values, checksums).
    pub vlog_bytes_written: u64,
    /// Bytes of SSTables written by memtable flushes.
    pub flush_bytes_written: u64,
    /// Memtable flushes.
    pub flushes: u64,
    /// Bytes of SSTables written by compactions.
    pub compaction_bytes_written: u64,
    /// Bytes of SSTables read by compactions.
    pub compaction_bytes_read: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Bytes appended to the manifest.
    pub manifest_bytes_written: u64,
    /// Everything the engine wrote over the user bytes (0 before any write).
    pub write_amplification: f64,
    /// SSTable bytes written (flush and compaction) over the user bytes.
    pub lsm_write_amplification: f64,
    /// vLog segments on disk.
    pub vlog_segments: u64,
    /// Bytes of vLog segments on disk.
    pub vlog_bytes: u64,
    /// Per level: files and bytes.
    pub levels: Vec<LevelStats>,
    /// Bytes of all SSTables.
    pub sst_bytes: u64,
    /// Approximate bytes in the active memtable.
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for flush.
    pub immutable_memtables: u64,
    /// The newest sequence number.
    pub last_sequence: u64,
    /// Point reads served.
    pub gets: u64,
    /// SSTables probed by point reads (read amplification: over `gets`).
    pub tables_probed: u64,
    /// Values read from the vLog.
    pub vlog_reads: u64,
    /// Times a writer waited for a flush to catch up.
    pub write_stalls: u64,
}
