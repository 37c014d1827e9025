//! The engine's side of range deletes (`lsm::range_del` has the
//! tombstones): what a write of one must satisfy, and retiring the
//! tombstones a full compaction has applied.

use super::versions::{LevelChange, ManifestGuard};
use super::Engine;
use crate::error::{Error, Result};
use crate::lsm::range_del::RangeTombstone;
use crate::manifest::VersionEdit;
use crate::vlog::batch::{BatchOp, RecordBatch};

impl Engine {
    /// A range delete must be of an ordered table, with an end that decodes
    /// and bounds no longer than a key may be.
    pub(super) fn check_range_delete(&self, batch: &RecordBatch, op: &BatchOp) -> Result<()> {
        if self.keydirs.is_unordered(op.table) {
            return Err(Error::Unsupported(
                "a range delete on an unordered table: it has no key order".into(),
            ));
        }
        match RangeTombstone::decode_end(batch.value(op)) {
            Some(end) if end.as_ref().map_or(0, Vec::len) <= self.opts.max_key_size => Ok(()),
            Some(_) => Err(Error::InvalidArgument(format!(
                "range end over the key limit of {}",
                self.opts.max_key_size
            ))),
            None => Err(Error::InvalidArgument("malformed range delete".into())),
        }
    }

    /// After a full compaction (every table of the tree its input, every
    /// tombstone in `applied` seen by every snapshot when it started):
    /// retires those tombstones, which now hide nothing, if the tree holds
    /// only the compaction's `outputs` and no GC pass is running (a pass
    /// that checked liveness before a tombstone was written could still
    /// add an entry it covers). Otherwise they stay, harmless, until the
    /// next full compaction.
    pub(super) fn retire_range_dels(
        &self,
        vs: &mut ManifestGuard<'_>,
        applied: &[u64],
        outputs: &[u64],
    ) -> Result<()> {
        if applied.is_empty() {
            return Ok(());
        }
        // Never waits, so taking it under the manifest lock cannot deadlock.
        let Some(_no_pass) = self.gc.try_hold_off() else {
            return Ok(());
        };
        let mut tables: Vec<u64> = vs
            .state()
            .levels
            .iter()
            .flatten()
            .map(|f| f.number)
            .collect();
        tables.sort_unstable();
        let mut outs = outputs.to_vec();
        outs.sort_unstable();
        if tables != outs {
            return Ok(());
        }
        let retired: Vec<u64> = vs
            .state()
            .range_dels
            .iter()
            .map(|t| t.seq)
            .filter(|s| applied.contains(s))
            .collect();
        if retired.is_empty() {
            return Ok(());
        }
        log::debug!("retiring {} range tombstones", retired.len());
        let edit = VersionEdit {
            range_dels_retired: retired,
            ..Default::default()
        };
        self.log_and_apply(vs, edit, LevelChange::default())
    }
}
