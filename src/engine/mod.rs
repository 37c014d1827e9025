//! The engine: the state behind every public handle, in named parts, each
//! in a file named for it.
//!
//! ```text
//! Engine
//!   versions   versions.rs   the manifest and the current view (memtables,
//!                            SSTables, vLog segments); the only installer
//!                            of versions ("log and apply")
//!   writer     write.rs      group commit: the queue of writers, the commit
//!                            lock, the visible sequence number
//!   vlog       crate::vlog   segments, the user head and GC's head
//!   keydirs    crate::keydir the indexes of the unordered tables
//!   snapshots  snapshots.rs  the sequence numbers live snapshots read at
//!   workers    workers.rs    the flush, compaction and GC threads, and the
//!                            waits for their work
//!   health     health.rs     closed and poisoned
//!   counters   counters.rs   what the engine counts; `Stats` is built there
//!   gc         gc/           one GC pass at a time
//!   tables     tables.rs     dropped table ids, per-table write figures
//! ```
//!
//! The paths through it, by function name: `write.rs` (`Engine::write` →
//! `commit_group` → the vLog append → the memtable or keydir), `read.rs`
//! (`Engine::get`, `multi_get`, `lookup`, `resolve`), `scan.rs` (the
//! iterators' merged walk), `flush.rs`, `compact.rs`, `gc/`, `drop.rs`
//! (dropping a table), `checkpoint.rs` and `replace.rs` (checkpoints and
//! installing a table from one), and `recovery.rs` (`Engine::open`, one
//! function per step).
//!
//! # Lock order
//!
//! A thread holding one of these locks takes only locks further down the
//! list (the keydir's own order, tables → a keydir's map → its segment
//! bookkeeping, is one step of it):
//!
//! 1. `gc.pass`: one GC pass at a time.
//! 2. `writer.commit`: the commit leader's state ([`write::CommitGuard`]);
//!    then `snapshots.gate`, held while a snapshot is taken or dropped (it
//!    turns the keydirs' keeping of replaced entries on and off,
//!    `keydir/history.rs`).
//! 3. `versions.manifest`: the manifest and its state
//!    ([`versions::ManifestGuard`]).
//! 4. the keydirs: tables, then a keydir's map, then its history of
//!    replaced entries, then segment bookkeeping.
//! 5. `versions.current`: the view readers take.
//! 6. `snapshots`.
//! 7. the vLog: the user head, GC's head, the live segment set, the
//!    retired segments.
//! 8. `workers.status`: what waiters wait on.
//! 9. `health.poison`: the poison message.
//!
//! The write queue's own lock is never held while committing, and the
//! manifest lock is never taken by the commit path: writers and version
//! installs do not wait for each other.

mod cas;
mod check;
mod checkpoint;
mod compact;
mod counters;
mod drop;
mod early;
mod flush;
mod gc;
mod health;
mod output;
mod range_delete;
mod read;
mod recovery;
mod replace;
mod reserve;
mod scan;
mod snapshots;
mod tables;
#[cfg(test)]
mod tests;
mod values;
mod versions;
mod walk;
mod workers;
mod write;

pub(crate) use cas::{applied, Condition};
pub(crate) use check::{FileDamage, IndexValue, IndexView};
pub use gc::GcReport;
pub(crate) use read::ReadHow;
pub(crate) use scan::{Fetch, Item, Scan, Slot};
pub(crate) use walk::{LazyValue, UnorderedScan, Walk};

use crate::io::{FileLock, Fs};
use crate::keydir::Keydirs;
use crate::lsm::compaction::LevelConfig;
use crate::lsm::sstable::{BlockCache, Compression as SstCompression, SstBuilderOptions};
use crate::options::{Compression, Options};
use crate::vlog::VLog;
use counters::Counters;
use health::Health;
use snapshots::Snapshots;
use std::path::{Path, PathBuf};
use versions::Versions;
use workers::Workers;
use write::Writer;

/// The engine of one open database. Shared by every handle (`Arc`); the
/// background workers hold it weakly.
pub(crate) struct Engine {
    dir: PathBuf,
    opts: Options,
    fs: std::sync::Arc<dyn Fs>,
    _lock: Box<dyn FileLock>,
    versions: Versions,
    writer: Writer,
    vlog: VLog,
    keydirs: Keydirs,
    snapshots: Snapshots,
    workers: Workers,
    health: Health,
    counters: Counters,
    /// The data blocks of every open SSTable, shared by point reads and
    /// iterators (`Options::block_cache_size`).
    block_cache: std::sync::Arc<BlockCache>,
    gc: gc::GcState,
    /// Garbage flushes found before compactions make it durable.
    early: early::EarlyGarbage,
    /// Dropped table ids and per-table write figures.
    tables: tables::TableBook,
    /// How each table compresses its values, and the counts.
    values: values::ValueCodecs,
}

impl Engine {
    /// The database directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shape of the LSM-tree, for the compaction picker.
    fn level_config(&self) -> LevelConfig {
        LevelConfig {
            l0_compaction_trigger: self.opts.l0_compaction_trigger,
            level_size_ratio: self.opts.level_size_ratio,
            base_level_size: self.opts.base_level_size,
        }
    }

    /// How new SSTables are written.
    fn sst_options(&self) -> SstBuilderOptions {
        SstBuilderOptions {
            block_size: self.opts.block_size,
            bloom_bits_per_key: self.opts.bloom_bits_per_key,
            compression: match self.opts.compression {
                Compression::None => SstCompression::None,
                Compression::Zstd(l) => SstCompression::Zstd(l),
            },
            writeback: Some(self.vlog.writeback().clone()),
            ..SstBuilderOptions::default()
        }
    }

    /// Stops the workers (once) and syncs the vLog; on a poisoned database
    /// returns the poison instead (a sync then proves nothing).
    pub(crate) fn close(&self) -> crate::Result<()> {
        self.shutdown();
        if self.health.is_read_only() {
            return Ok(());
        }
        self.health.check_not_poisoned()?;
        self.vlog.sync()?;
        self.record_counters()
    }

    /// Writes the counters to the manifest (at close, so that the next open
    /// goes on from them), once.
    fn record_counters(&self) -> crate::Result<()> {
        if self
            .counters
            .recorded_at_close
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(());
        }
        let mut vs = self.versions.lock_manifest();
        self.log_and_apply(&mut vs, Default::default(), Default::default())
    }

    /// Stops the workers, once; later calls do nothing.
    pub(crate) fn shutdown(&self) {
        if self.health.close() {
            self.workers.stop();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
        if self.health.is_poisoned() || self.health.is_read_only() {
            return;
        }
        if let Err(e) = self.vlog.sync() {
            log::warn!("{}: sync on drop failed: {e}", self.dir.display());
            return;
        }
        if let Err(e) = self.record_counters() {
            log::warn!(
                "{}: recording the counters on drop failed: {e}",
                self.dir.display()
            );
        }
    }
}
