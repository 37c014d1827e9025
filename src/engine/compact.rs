//! Compaction: runs what the picker (`lsm::compaction`) chooses, while any
//! level needs it, and the manual full compaction. A merge drops versions
//! no snapshot can see; the vLog bytes of the pointers it drops become
//! discard statistics in the same edit that installs its output.

use super::counters;
use super::flush::count_dropped;
use super::versions::LevelChange;
use super::Engine;
use crate::error::Result;
use crate::lsm::compaction::{self, DropFilter, Plan, NUM_LEVELS};
use crate::lsm::merge::{Direction, MergeCursor};
use crate::lsm::version::SstHandle;
use crate::manifest::VersionEdit;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Engine {
    /// Whether any level above the last needs compaction.
    pub(super) fn needs_compaction(&self) -> bool {
        let v = self.versions.current().version.clone();
        compaction::scores(&v, &self.level_config())
            .iter()
            .take(NUM_LEVELS - 1)
            .any(|&s| s >= 1.0)
    }

    /// Runs compactions while any level needs one, or a manual one is asked
    /// for. `pointers` is the round-robin position of each level.
    pub(super) fn compact_until_settled(&self, pointers: &mut [Vec<u8>]) -> Result<()> {
        loop {
            if self.health.is_closed() || self.health.is_poisoned() {
                return Ok(());
            }
            let manual = self.workers.pending_manual_compaction();
            let v = self.versions.current().version.clone();
            let plan = match manual {
                Some(_) => compaction::full_plan(&v),
                None => compaction::pick(&v, &self.level_config(), pointers),
            };
            if manual.is_some() && plan.is_none() && !v.range_dels.is_empty() {
                // No table at all: every tombstone every snapshot sees hides
                // nothing.
                let oldest = self.smallest_snapshot();
                let applied: Vec<u64> = v
                    .range_dels
                    .iter()
                    .filter(|t| t.seq <= oldest)
                    .map(|t| t.seq)
                    .collect();
                let mut vs = self.versions.lock_manifest();
                self.retire_range_dels(&mut vs, &applied, &[])?;
            }
            drop(v);
            if let Some(plan) = plan {
                self.run_compaction(&plan)?;
                self.workers.signal();
                self.workers.wake_gc();
            }
            if let Some(id) = manual {
                self.workers.manual_compaction_done(id);
                continue;
            }
            if !self.needs_compaction() {
                return Ok(());
            }
        }
    }

    /// Runs one compaction: a move of a file to the next level, or a merge.
    fn run_compaction(&self, plan: &Plan) -> Result<()> {
        if plan.trivial_move {
            return self.move_file(plan);
        }
        let v = self.versions.current().version.clone();
        let smallest_snapshot = self.smallest_snapshot();
        // A full compaction applies the range tombstones every snapshot sees
        // to every version they cover: they may be retired after it.
        let full =
            plan.output_level == NUM_LEVELS - 1 && plan.inputs.len() == v.all_tables().count();
        let applied: Vec<u64> = if full {
            v.range_dels
                .iter()
                .filter(|t| t.seq <= smallest_snapshot)
                .map(|t| t.seq)
                .collect()
        } else {
            Vec::new()
        };
        let read_bytes: u64 = plan.inputs.iter().map(|t| t.meta.size).sum();
        let mut merge = MergeCursor::new(compaction::input_iters(plan), Direction::Forward);
        merge.seek_to_end();
        let mut discard: BTreeMap<u64, u64> = BTreeMap::new();
        // The part of it a flush's probe counted early (`early.rs`).
        let mut settled: BTreeMap<u64, u64> = BTreeMap::new();
        let mut filter = DropFilter::new(
            &v,
            plan.output_level,
            smallest_snapshot,
            |_, value, newer| {
                count_dropped(&mut discard, value);
                if self.early.counted(newer.seq, newer.kind) {
                    count_dropped(&mut settled, value);
                }
            },
        )
        .dropping_tables(self.tables.dropped_ids());
        let outputs =
            self.write_ssts(plan.output_level as u32, self.opts.target_file_size, || {
                loop {
                    if !merge.valid() {
                        merge.status()?;
                        return Ok(None);
                    }
                    let keep = filter.keep(merge.key(), merge.value());
                    if keep {
                        let e = (merge.key().to_vec(), merge.value().to_vec());
                        merge.advance();
                        return Ok(Some(e));
                    }
                    merge.advance();
                }
            })?;
        let dropped = filter.dropped;
        drop(filter);
        let written: u64 = outputs.iter().map(|t| t.meta.size).sum();
        let output_numbers: Vec<u64> = outputs.iter().map(|t| t.meta.number).collect();
        let mut vs = self.versions.lock_manifest();
        // Durable from this edit on: no longer early.
        self.early.settle(&settled);
        let edit = VersionEdit {
            added: outputs.iter().map(|t| t.meta.clone()).collect(),
            removed: plan
                .inputs
                .iter()
                .map(|t| (t.meta.level, t.meta.number))
                .collect(),
            discard: discard.into_iter().collect(),
            ..Default::default()
        };
        // A failed append leaves the edit's fate unknown (it may be on disk
        // and name the outputs): keep them; the next open removes what the
        // manifest does not name.
        self.log_and_apply(
            &mut vs,
            edit,
            LevelChange {
                removed: plan.inputs.iter().map(|t| t.meta.number).collect(),
                added: outputs,
                flushed: None,
            },
        )?;
        self.retire_range_dels(&mut vs, &applied, &output_numbers)?;
        drop(vs);
        for t in &plan.inputs {
            t.mark_obsolete();
        }
        let c = &self.counters;
        counters::add(&c.compaction_bytes_written, written);
        counters::add(&c.compaction_bytes_read, read_bytes);
        counters::add(&c.compactions, 1);
        counters::add(&c.level_written[plan.output_level], written);
        for t in &plan.inputs {
            counters::add(&c.level_read[t.meta.level as usize], t.meta.size);
        }
        log::debug!(
            "compacted {} tables of L{} and L{} ({read_bytes} bytes) into {written} bytes, dropping {dropped} entries",
            plan.inputs.len(),
            plan.start_level,
            plan.output_level,
        );
        Ok(())
    }

    /// Moves one file down a level without rewriting it.
    fn move_file(&self, plan: &Plan) -> Result<()> {
        let Some(t) = plan.inputs.first() else {
            return Ok(());
        };
        let mut meta = t.meta.clone();
        meta.level = plan.output_level as u32;
        let moved = Arc::new(SstHandle::new(
            meta.clone(),
            t.sst.clone(),
            self.fs.clone(),
            self.dir.join(crate::files::sst(t.meta.number)),
        ));
        let mut vs = self.versions.lock_manifest();
        let edit = VersionEdit {
            added: vec![meta],
            removed: vec![(t.meta.level, t.meta.number)],
            ..Default::default()
        };
        self.log_and_apply(
            &mut vs,
            edit,
            LevelChange {
                removed: vec![t.meta.number],
                added: vec![moved],
                flushed: None,
            },
        )?;
        counters::add(&self.counters.trivial_moves, 1);
        Ok(())
    }
}
