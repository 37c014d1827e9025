//! Flush: the oldest frozen memtable becomes level-0 SSTables, and the
//! replay point moves past it.
//!
//! A flush writes the tables (synced), syncs the vLog (the tables' pointers
//! must point at durable records), then logs one edit that adds the tables,
//! moves the replay point to where the next memtable starts, and counts
//! the memtable's log-only records (inline values, tombstones) and the
//! versions it dropped as vLog garbage.

use super::counters;
use super::versions::LevelChange;
use super::Engine;
use crate::error::Result;
use crate::lsm::compaction::DropFilter;
use crate::lsm::iter::InternalIterator;
use crate::manifest::VersionEdit;
use crate::vlog::{Position, ValuePointer};
use std::collections::BTreeMap;

/// Adds the vLog bytes of a dropped pointer entry to `discard` (per segment).
pub(super) fn count_dropped(discard: &mut BTreeMap<u64, u64>, value: &[u8]) {
    if let Some(p) = ValuePointer::decode(value) {
        *discard.entry(p.segment).or_insert(0) += u64::from(p.len);
    }
}

impl Engine {
    /// Flushes frozen memtables, oldest first, until none is left.
    pub(super) fn flush_all(&self) -> Result<()> {
        while self.flush_one()? {
            self.workers.signal();
            self.workers.wake_compaction();
        }
        Ok(())
    }

    /// Flushes the oldest frozen memtable; false when there is none.
    fn flush_one(&self) -> Result<bool> {
        let sv = self.versions.current();
        let Some(imm) = sv.imms.last().cloned() else {
            return Ok(false);
        };
        // After this memtable, replay starts where the next one began.
        let next_start: Position = if sv.imms.len() >= 2 {
            sv.imms[sv.imms.len() - 2].start()
        } else {
            sv.mem.start()
        };
        drop(sv);
        let mut it = imm.table.iter();
        it.seek_to_first();
        // Versions overwritten within the memtable that no snapshot can see
        // are dropped here, so GC learns of their garbage without waiting
        // for a compaction.
        let mut discard: BTreeMap<u64, u64> = BTreeMap::new();
        let mut filter = DropFilter::for_flush(self.smallest_snapshot(), |_, v| {
            count_dropped(&mut discard, v)
        });
        let tables = self.write_ssts(0, u64::MAX, || loop {
            if !it.valid() {
                return Ok(None);
            }
            let keep = filter.keep(it.key(), it.value());
            let e = (it.key().to_vec(), it.value().to_vec());
            it.next();
            if keep {
                return Ok(Some(e));
            }
        })?;
        drop(filter);
        let mut garbage = imm.wal_garbage();
        garbage.extend(discard);
        self.sync_vlog()?;
        let bytes: u64 = tables.iter().map(|t| t.meta.size).sum();
        let mut vs = self.versions.lock_manifest();
        let edit = VersionEdit {
            added: tables.iter().map(|t| t.meta.clone()).collect(),
            replay_point: Some(next_start),
            last_sequence: Some(vs.state().last_sequence.max(imm.table.max_seq())),
            discard: garbage,
            ..Default::default()
        };
        self.log_and_apply(
            &mut vs,
            edit,
            LevelChange {
                added: tables,
                flushed: Some(&imm),
                ..LevelChange::default()
            },
        )?;
        drop(vs);
        let c = &self.counters;
        counters::add(&c.flush_bytes_written, bytes);
        counters::add(&c.flushes, 1);
        counters::add(&c.level_written[0], bytes);
        log::debug!(
            "flushed a memtable of {} entries into {bytes} bytes",
            imm.table.len()
        );
        Ok(true)
    }
}
