//! Versions: the manifest and the view readers take (memtables, SSTables,
//! vLog segments), and the one way they change, "log and apply": an edit
//! is appended to the manifest (synced), applied to the manifest state,
//! and the new version installed with one swap, all under the manifest
//! lock. Flush, compaction, GC and table creation all go through
//! [`Engine::log_and_apply`].

use super::counters;
use super::write::CommitGuard;
use super::Engine;
use crate::error::{Error, Result};
use crate::lsm::ikey;
use crate::lsm::memtable::Memtable;
use crate::lsm::range_del::{self, RangeTombstone};
use crate::lsm::version::{SstHandle, Version};
use crate::manifest::{Manifest, ManifestState, VersionEdit};
use crate::vlog::{Position, SegmentSet};
use parking_lot::{Mutex, MutexGuard, RwLock};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A manifest is rewritten (compacted to one snapshot edit) past this size.
const MANIFEST_REWRITE_BYTES: u64 = 64 << 20;

/// A memtable with the stretch of the vLog its entries came from.
#[derive(Debug)]
pub(super) struct LoggedMemtable {
    pub(super) table: Arc<Memtable>,
    /// The vLog position of its first record: once it is flushed, replay
    /// can start where the next memtable starts.
    start: Position,
    /// vLog bytes of its records (bounds replay).
    log_bytes: AtomicU64,
    /// Per vLog segment, bytes of records only the log needs (inline values
    /// and tombstones, which the flush copies into an SSTable): garbage
    /// once it is flushed.
    wal_garbage: Mutex<Vec<(u64, u64)>>,
    /// Its range tombstones (in the manifest once it is flushed).
    range_dels: RwLock<Vec<RangeTombstone>>,
    has_range_dels: AtomicBool,
}

impl LoggedMemtable {
    /// An empty memtable whose records start at `start`.
    pub(super) fn new(start: Position) -> Arc<LoggedMemtable> {
        Arc::new(LoggedMemtable {
            table: Arc::new(Memtable::new()),
            start,
            log_bytes: AtomicU64::new(0),
            wal_garbage: Mutex::new(Vec::new()),
            range_dels: RwLock::new(Vec::new()),
            has_range_dels: AtomicBool::new(false),
        })
    }

    /// Adds range tombstones written to (or replayed into) this memtable.
    pub(super) fn add_range_dels(&self, dels: impl IntoIterator<Item = RangeTombstone>) {
        let mut l = self.range_dels.write();
        l.extend(dels);
        if !l.is_empty() {
            self.has_range_dels.store(true, Ordering::Release);
        }
    }

    /// Its range tombstones.
    pub(super) fn range_dels(&self) -> Vec<RangeTombstone> {
        if !self.has_range_dels.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.range_dels.read().clone()
    }

    fn covering(&self, table: u32, key: &[u8], seq: u64, read_seq: u64) -> Option<u64> {
        if !self.has_range_dels.load(Ordering::Acquire) {
            return None;
        }
        range_del::covering(
            [self.range_dels.read().as_slice()],
            table,
            key,
            seq,
            read_seq,
        )
    }

    pub(super) fn start(&self) -> Position {
        self.start
    }

    pub(super) fn add_log_bytes(&self, n: u64) {
        self.log_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// Counts `bytes` of `segment` as garbage once this memtable is flushed.
    pub(super) fn add_wal_garbage(&self, segment: u64, bytes: u64) {
        let mut g = self.wal_garbage.lock();
        match g.iter_mut().find(|(s, _)| *s == segment) {
            Some((_, b)) => *b += bytes,
            None => g.push((segment, bytes)),
        }
    }

    /// The log-only bytes per segment.
    pub(super) fn wal_garbage(&self) -> Vec<(u64, u64)> {
        self.wal_garbage.lock().clone()
    }

    /// Whether it holds nothing, not even vLog bytes (records of unordered
    /// tables): freezing it would move nothing.
    fn is_idle(&self) -> bool {
        self.table.is_empty() && self.log_bytes() == 0
    }
}

/// What readers need at one moment: the memtables, the tables, the segments.
#[derive(Debug)]
pub(super) struct SuperVersion {
    pub(super) mem: Arc<LoggedMemtable>,
    /// Frozen memtables, newest first.
    pub(super) imms: Vec<Arc<LoggedMemtable>>,
    pub(super) version: Arc<Version>,
    /// The vLog segments readers of this view resolve pointers through.
    pub(super) segments: Arc<SegmentSet>,
}

impl SuperVersion {
    /// The newest range tombstone of this view that deletes version `seq`
    /// of `key` in `table` for a reader at `read_seq` (its sequence number).
    pub(super) fn covering(&self, table: u32, key: &[u8], seq: u64, read_seq: u64) -> Option<u64> {
        let mems = std::iter::once(&self.mem).chain(&self.imms);
        mems.filter_map(|m| m.covering(table, key, seq, read_seq))
            .chain(range_del::covering(
                [self.version.range_dels.as_slice()],
                table,
                key,
                seq,
                read_seq,
            ))
            .max()
    }

    /// How many range tombstones this view holds (every table).
    pub(super) fn range_dels_for_all(&self) -> u64 {
        let mems = std::iter::once(&self.mem).chain(&self.imms);
        (self.version.range_dels.len() + mems.map(|m| m.range_dels().len()).sum::<usize>()) as u64
    }

    /// Every range tombstone of this view in `table` a reader at `read_seq`
    /// sees.
    pub(super) fn range_dels_for(&self, table: u32, read_seq: u64) -> Vec<RangeTombstone> {
        let mut out: Vec<RangeTombstone> = self.version.range_dels.to_vec();
        for m in std::iter::once(&self.mem).chain(&self.imms) {
            out.extend(m.range_dels());
        }
        out.retain(|t| t.table == table && t.seq <= read_seq);
        out
    }
}

/// The manifest and the state it describes.
pub(super) struct VersionSet {
    manifest: Manifest,
    state: ManifestState,
}

impl VersionSet {
    pub(super) fn state(&self) -> &ManifestState {
        &self.state
    }
}

/// Held while a version changes: only [`Engine::log_and_apply`] writes
/// through it (lock order step 3).
pub(super) type ManifestGuard<'a> = MutexGuard<'a, VersionSet>;

/// How one logged edit changes the tree's tables.
#[derive(Default)]
pub(super) struct LevelChange<'a> {
    /// Numbers of tables that leave the tree.
    pub(super) removed: Vec<u64>,
    /// Tables that join it, at their `meta.level`: level-0 tables go in
    /// front (newest first) in the order given, deeper ones in key order.
    pub(super) added: Vec<Arc<SstHandle>>,
    /// The memtable a flush wrote, dropped from the frozen ones.
    pub(super) flushed: Option<&'a Arc<LoggedMemtable>>,
}

impl LevelChange<'_> {
    fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && self.flushed.is_none()
    }

    /// The levels of `v` after this change.
    fn levels_after(&self, v: &Version) -> Vec<Vec<Arc<SstHandle>>> {
        let mut levels: Vec<Vec<Arc<SstHandle>>> = v
            .levels
            .iter()
            .map(|l| {
                l.iter()
                    .filter(|t| !self.removed.contains(&t.meta.number))
                    .cloned()
                    .collect()
            })
            .collect();
        let mut l0 = Vec::new();
        for t in &self.added {
            let level = t.meta.level as usize;
            while levels.len() <= level {
                levels.push(Vec::new());
            }
            if level == 0 {
                l0.push(t.clone());
            } else {
                levels[level].push(t.clone());
            }
        }
        if !l0.is_empty() {
            l0.append(&mut levels[0]);
            levels[0] = l0;
        }
        for files in levels.iter_mut().skip(1) {
            files.sort_by(|a, b| ikey::compare(&a.meta.smallest, &b.meta.smallest));
        }
        levels
    }
}

/// The manifest, the current view, and the file number counter.
pub(super) struct Versions {
    manifest: Mutex<VersionSet>,
    current: RwLock<Arc<SuperVersion>>,
    next_file: AtomicU64,
    /// What the database was created with (fixed once open).
    created: Option<crate::stats::CreatedWith>,
}

impl Versions {
    pub(super) fn new(
        manifest: Manifest,
        state: ManifestState,
        current: SuperVersion,
        next_file: u64,
    ) -> Versions {
        Versions {
            created: state.created,
            manifest: Mutex::new(VersionSet { manifest, state }),
            current: RwLock::new(Arc::new(current)),
            next_file: AtomicU64::new(next_file),
        }
    }

    /// What the database was created with, when recorded.
    pub(super) fn created_with(&self) -> Option<crate::stats::CreatedWith> {
        self.created
    }

    /// The view a new read takes.
    pub(super) fn current(&self) -> Arc<SuperVersion> {
        self.current.read().clone()
    }

    /// The manifest lock, for a version change or a look at the state.
    pub(super) fn lock_manifest(&self) -> ManifestGuard<'_> {
        self.manifest.lock()
    }

    /// A new file number (segments, tables and manifests share them).
    pub(super) fn new_file_number(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::Relaxed)
    }

    fn next_file_number(&self) -> u64 {
        self.next_file.load(Ordering::Relaxed)
    }

    /// Installs the tables of `change` over the current view.
    fn install(
        &self,
        change: &LevelChange<'_>,
        segments: Arc<SegmentSet>,
        range_dels: Option<Arc<Vec<RangeTombstone>>>,
    ) {
        let mut w = self.current.write();
        let imms = match change.flushed {
            Some(m) => w
                .imms
                .iter()
                .filter(|x| !Arc::ptr_eq(x, m))
                .cloned()
                .collect(),
            None => w.imms.clone(),
        };
        let levels = change.levels_after(&w.version);
        *w = Arc::new(SuperVersion {
            mem: w.mem.clone(),
            imms,
            version: Arc::new(Version {
                levels,
                range_dels: range_dels.unwrap_or_else(|| w.version.range_dels.clone()),
            }),
            segments,
        });
    }

    /// Publishes a new set of live vLog segments to readers (after a roll,
    /// before any pointer into the new segment; after GC retires segments).
    pub(super) fn publish_segments(&self, segments: Arc<SegmentSet>) {
        let mut w = self.current.write();
        *w = Arc::new(SuperVersion {
            mem: w.mem.clone(),
            imms: w.imms.clone(),
            version: w.version.clone(),
            segments,
        });
    }

    /// Freezes the active memtable and starts a new one at `head`; false
    /// when the active one is idle (nothing to flush).
    fn freeze(&self, head: Position) -> bool {
        let mut w = self.current.write();
        if w.mem.is_idle() {
            return false;
        }
        let mut imms = Vec::with_capacity(w.imms.len() + 1);
        imms.push(w.mem.clone());
        imms.extend(w.imms.iter().cloned());
        *w = Arc::new(SuperVersion {
            mem: LoggedMemtable::new(head),
            imms,
            version: w.version.clone(),
            segments: w.segments.clone(),
        });
        true
    }
}

impl Engine {
    /// Appends `edit` to the manifest and applies it to the state, then
    /// installs `change` (with the vLog's live segments); rewrites the
    /// manifest when it has grown large. A failed write poisons the
    /// database: the edit's fate on disk is unknown.
    pub(super) fn log_and_apply(
        &self,
        vs: &mut ManifestGuard<'_>,
        mut edit: VersionEdit,
        change: LevelChange<'_>,
    ) -> Result<()> {
        edit.next_file_number = Some(self.versions.next_file_number() + 1);
        edit.counters = Some(self.lifetime_counters());
        let before = vs.manifest.size();
        let appended = vs.manifest.append(&edit);
        self.or_poison("manifest write", appended)?;
        counters::add(
            &self.counters.manifest_bytes_written,
            vs.manifest.size().saturating_sub(before),
        );
        vs.state
            .apply(&edit)
            .map_err(|e| Error::corruption(vs.manifest.path(), 0, e))?;
        if vs.manifest.size() > MANIFEST_REWRITE_BYTES {
            let number = self.versions.new_file_number();
            vs.state.next_file_number = self.versions.next_file_number() + 1;
            let created = Manifest::create(self.fs.clone(), &self.dir, number, &vs.state);
            let m = self.or_poison("manifest rewrite", created)?;
            counters::add(&self.counters.manifest_bytes_written, m.size());
            vs.manifest = m;
        }
        let range_dels = (!edit.range_dels_added.is_empty() || !edit.range_dels_retired.is_empty())
            .then(|| Arc::new(vs.state.range_dels.clone()));
        if !change.is_empty() || range_dels.is_some() {
            self.versions
                .install(&change, self.vlog.live_set(), range_dels);
        }
        Ok(())
    }

    /// Publishes the vLog's live segments to readers.
    pub(super) fn publish_segments(&self) {
        self.versions.publish_segments(self.vlog.live_set());
    }

    /// Freezes the active memtable (the commit lock held, so that no write
    /// lands between its last record and the new memtable's start) and
    /// wakes the flush worker.
    ///
    /// An empty memtable that covers vLog bytes (records of unordered
    /// tables) is frozen too: its flush writes no table but moves the replay
    /// point, so that recovery need not read those bytes again and GC may
    /// take their segments.
    pub(super) fn rotate_memtable(&self, _commit: &CommitGuard<'_>) {
        if self.versions.freeze(self.vlog.head_position()) {
            self.workers.wake_flush();
        }
    }
}
