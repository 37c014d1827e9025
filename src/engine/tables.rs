//! The named tables: their definitions live in the manifest; creating one is
//! a logged edit, and an unordered table gets its keydir. What the engine
//! keeps of them besides the manifest is [`TableBook`]: the ids dropped
//! (checked by every handle's call, by compaction, GC and the walks of the
//! index) and the write figures of each table since open.

use super::versions::LevelChange;
use super::Engine;
use crate::error::{Error, Result};
use crate::lsm::ikey;
use crate::manifest::{TableDef, VersionEdit, DEFAULT_TABLE, DEFAULT_TABLE_NAME};
use crate::options::TableKind;
use crate::stats::TableStats;
use crate::vlog::batch::RecordBatch;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Per-table figures counted since open.
#[derive(Debug, Default)]
struct Written {
    vlog_bytes: AtomicU64,
    writes: AtomicU64,
}

/// What a batch writes per table: record bytes and ops.
pub(super) struct Tally(BTreeMap<u32, (u64, u64)>);

impl Tally {
    pub(super) fn of(batch: &RecordBatch) -> Tally {
        let mut per: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for op in batch.ops() {
            let e = per.entry(op.table).or_default();
            e.0 += op.len() as u64;
            e.1 += 1;
        }
        Tally(per)
    }
}

/// The tables' bookkeeping outside the manifest: which ids are dropped
/// (with the name they had, for the error a stale handle gets) and what
/// each table wrote. Its locks are leaves: nothing is taken while they are
/// held.
#[derive(Debug, Default)]
pub(super) struct TableBook {
    /// Whether any id was ever dropped (the fast path of [`Self::is_dropped`]).
    any_dropped: AtomicBool,
    dropped: RwLock<HashMap<u32, String>>,
    written: RwLock<HashMap<u32, Arc<Written>>>,
}

impl TableBook {
    /// A book knowing the ids `dropped` (from the manifest) as dropped.
    pub(super) fn new(dropped: impl IntoIterator<Item = u32>) -> TableBook {
        let book = TableBook::default();
        for id in dropped {
            book.note_dropped(id, &format!("#{id}"));
        }
        book
    }

    /// Records that table `id` (named `name`) is dropped.
    pub(super) fn note_dropped(&self, id: u32, name: &str) {
        self.dropped.write().insert(id, name.to_string());
        self.written.write().remove(&id);
        self.any_dropped.store(true, Ordering::Release);
    }

    /// Whether table `id` was dropped: its entries and records are dead.
    pub(super) fn is_dropped(&self, id: u32) -> bool {
        self.any_dropped.load(Ordering::Acquire) && self.dropped.read().contains_key(&id)
    }

    /// The dropped ids, ascending (what compaction and flush drop).
    pub(super) fn dropped_ids(&self) -> Vec<u32> {
        if !self.any_dropped.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut ids: Vec<u32> = self.dropped.read().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// `Error::InvalidArgument` naming the table when `id` was dropped.
    pub(super) fn check(&self, id: u32) -> Result<()> {
        if !self.any_dropped.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.dropped.read().get(&id) {
            Some(name) => Err(Error::InvalidArgument(format!(
                "table {name} was dropped (or replaced): open it again with Db::table"
            ))),
            None => Ok(()),
        }
    }

    /// Counts a batch that was written.
    pub(super) fn count(&self, tally: Tally) {
        for (table, (bytes, writes)) in tally.0 {
            let w = self.written.read().get(&table).cloned();
            let w = w.unwrap_or_else(|| self.written.write().entry(table).or_default().clone());
            w.vlog_bytes.fetch_add(bytes, Ordering::Relaxed);
            w.writes.fetch_add(writes, Ordering::Relaxed);
        }
    }

    /// What table `id` wrote since open: (vLog record bytes, writes).
    fn written(&self, id: u32) -> (u64, u64) {
        self.written.read().get(&id).map_or((0, 0), |w| {
            (
                w.vlog_bytes.load(Ordering::Relaxed),
                w.writes.load(Ordering::Relaxed),
            )
        })
    }
}

impl Engine {
    /// The id of table `name`, created (durably) with `kind` when missing.
    ///
    /// # Errors
    /// `InvalidArgument` when the table exists with another kind, or the
    /// name is empty or longer than 255 bytes.
    pub(crate) fn open_table(&self, name: &str, kind: TableKind) -> Result<u32> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::InvalidArgument(
                "a table name is 1 to 255 bytes".into(),
            ));
        }
        if name.starts_with('\0') {
            return Err(Error::InvalidArgument(
                "a table name starting with NUL is reserved".into(),
            ));
        }
        if name == DEFAULT_TABLE_NAME {
            return if kind == TableKind::Ordered {
                Ok(DEFAULT_TABLE)
            } else {
                Err(Error::InvalidArgument(
                    "the default table is ordered".into(),
                ))
            };
        }
        let mut vs = self.versions.lock_manifest();
        if let Some(def) = vs.state().tables.iter().find(|t| t.name == name) {
            if def.kind != kind {
                return Err(Error::InvalidArgument(format!(
                    "table {name} exists with another kind"
                )));
            }
            return Ok(def.id);
        }
        self.health.check_writable()?;
        // Past every live and dropped id: a new table never sees old data.
        let id = vs.state().next_table_id();
        let edit = VersionEdit {
            tables_created: vec![TableDef {
                id,
                name: name.to_string(),
                kind,
            }],
            ..Default::default()
        };
        self.log_and_apply(&mut vs, edit, LevelChange::default())?;
        if kind == TableKind::Unordered {
            self.keydirs.add_table(id);
        }
        Ok(id)
    }

    /// The named tables with their kinds, in creation order (the default
    /// table is not listed).
    pub(crate) fn table_kinds(&self) -> Vec<(String, TableKind)> {
        self.versions
            .lock_manifest()
            .state()
            .tables
            .iter()
            .filter(|t| !super::replace::is_hidden(&t.name))
            .map(|t| (t.name.clone(), t.kind))
            .collect()
    }

    /// `Error::InvalidArgument` when table `id` was dropped (a handle
    /// opened before the drop).
    pub(crate) fn check_table(&self, id: u32) -> Result<()> {
        self.tables.check(id)
    }

    /// The figures of table `id` (see [`TableStats`]).
    ///
    /// # Errors
    /// `InvalidArgument` when the table was dropped.
    pub(crate) fn table_stats(&self, id: u32) -> Result<TableStats> {
        self.check_table(id)?;
        let (vlog_bytes_written, writes) = self.tables.written(id);
        if let Some(kd) = self.keydirs.table(id) {
            let map = kd.map.read();
            return Ok(TableStats {
                live_keys: Some(map.iter().filter(|(_, e)| e.put).count() as u64),
                index_bytes: map.allocated_bytes() as u64,
                index_entries: 0,
                vlog_bytes_written,
                writes,
            });
        }
        let v = self.versions.current().version.clone();
        let (mut bytes, mut entries) = (0f64, 0f64);
        for t in v.levels.iter().flatten() {
            let (lo, hi) = (
                ikey::table_id(&t.meta.smallest),
                ikey::table_id(&t.meta.largest),
            );
            if id < lo || id > hi {
                continue;
            }
            let share = 1.0 / f64::from(hi - lo + 1);
            bytes += t.meta.size as f64 * share;
            entries += t.meta.entries as f64 * share;
        }
        Ok(TableStats {
            live_keys: None,
            index_bytes: bytes.round() as u64,
            index_entries: entries.round() as u64,
            vlog_bytes_written,
            writes,
        })
    }
}
