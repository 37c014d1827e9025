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
use crate::lsm::ikey::{self, Kind};
use crate::lsm::iter::InternalIterator;
use crate::lsm::version::Version;
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
    /// For each version in `probes` (internal keys), the newest older
    /// version of its key in `tree`; where that is a pointer, its record's
    /// bytes, per segment. A failed read only loses that probe's count (a
    /// compaction finds the garbage later, as without probes).
    fn probe_older(&self, tree: &Version, probes: &[(Vec<u8>, u64)]) -> BTreeMap<u64, u64> {
        let mut found: BTreeMap<u64, u64> = BTreeMap::new();
        let (mut probed, mut under_pointers) = (0u64, 0u64);
        for (k, new_len) in probes {
            probed += new_len;
            let Some(below) = ikey::seq(k).checked_sub(1) else {
                continue;
            };
            let target = ikey::seek_key(ikey::user_part(k), below);
            match tree.get(&target) {
                Ok(f) => {
                    if let Some((ok, ov)) = f.entry {
                        let old = (ikey::kind_byte(&ok) == Kind::Pointer as u8)
                            .then(|| ValuePointer::decode(&ov))
                            .flatten();
                        if let Some(p) = old {
                            *found.entry(p.segment).or_insert(0) += u64::from(p.len);
                            if *new_len > 0 {
                                under_pointers += u64::from(p.len);
                            }
                        }
                    }
                }
                Err(e) => log::debug!("{}: early-garbage probe: {e}", self.dir.display()),
            }
        }
        self.early.note_flush(probed, under_pointers);
        found
    }

    /// Keeps the oldest version of a key a flush writes (internal key,
    /// record bytes) among the probes when [`EarlyGarbage::probes`] says so.
    ///
    /// [`EarlyGarbage::probes`]: super::early::EarlyGarbage::probes
    fn keep_probe(&self, probes: &mut Vec<(Vec<u8>, u64)>, version: (Vec<u8>, u64)) {
        if self
            .early
            .probes(ikey::seq(&version.0), ikey::kind_byte(&version.0))
        {
            probes.push(version);
        }
    }

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
        // The tree below this memtable, for the early-garbage probes.
        let tree = sv.version.clone();
        drop(sv);
        let mut it = imm.table.iter();
        it.seek_to_first();
        // Versions overwritten within the memtable that no snapshot can see
        // are dropped here, so GC learns of their garbage without waiting
        // for a compaction.
        let mut discard: BTreeMap<u64, u64> = BTreeMap::new();
        let mut filter = DropFilter::for_flush(self.smallest_snapshot(), |_, v, _| {
            count_dropped(&mut discard, v)
        })
        .dropping_tables(self.tables.dropped_ids());
        // Per key, the oldest version written, and those of them to probe
        // below (see `early.rs`).
        let mut oldest: Option<(Vec<u8>, u64)> = None;
        let mut probes: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut note_oldest = |k: &[u8], v: &[u8]| {
            // The record bytes of a pointer version (0 for a tombstone).
            let len = if ikey::kind_byte(k) == Kind::Pointer as u8 {
                ValuePointer::decode(v).map_or(0, |p| u64::from(p.len))
            } else {
                0
            };
            match &mut oldest {
                Some((o, l)) if ikey::user_part(o) == ikey::user_part(k) => {
                    o.clear();
                    o.extend_from_slice(k);
                    *l = len;
                }
                slot => {
                    if let Some(done) = slot.replace((k.to_vec(), len)) {
                        self.keep_probe(&mut probes, done);
                    }
                }
            }
        };
        let tables = self.write_ssts(0, u64::MAX, || loop {
            if !it.valid() {
                return Ok(None);
            }
            let keep = filter.keep(it.key(), it.value());
            let e = (it.key().to_vec(), it.value().to_vec());
            it.next();
            if keep {
                note_oldest(&e.0, &e.1);
                return Ok(Some(e));
            }
        })?;
        drop(filter);
        if let Some(done) = oldest.take() {
            self.keep_probe(&mut probes, done);
        }
        let early = self.probe_older(&tree, &probes);
        let mut garbage = imm.wal_garbage();
        garbage.extend(discard);
        self.sync_vlog()?;
        let bytes: u64 = tables.iter().map(|t| t.meta.size).sum();
        let mut vs = self.versions.lock_manifest();
        // Before the edit: no compaction can settle these bytes before they
        // are here (it needs this flush's tables).
        self.early.add(&early);
        // The memtable's range tombstones move to the manifest with its
        // tables (they are not in its skiplist: their numbers count too).
        let range_dels = imm.range_dels();
        let max_seq = range_dels
            .iter()
            .map(|t| t.seq)
            .fold(imm.table.max_seq(), u64::max);
        let edit = VersionEdit {
            added: tables.iter().map(|t| t.meta.clone()).collect(),
            replay_point: Some(next_start),
            last_sequence: Some(vs.state().last_sequence.max(max_seq)),
            discard: garbage,
            range_dels_added: range_dels,
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
