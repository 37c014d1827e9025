//! Value compression in the engine: each table's codec (its zstd level and
//! dictionary), compressing a batch before it is queued, the life of the
//! dictionaries (made by `Table::train_dictionary`, recorded for every
//! segment that uses them, removed once none does), and the counts.
//!
//! Dictionary lifetime, in short: a dictionary is live from the edit that
//! adds it; a user segment is recorded as using it (tag 24) before the
//! first value compressed with it is appended there, a GC segment in the
//! edit of the pass that wrote it; it is removed (edit, then file) when it
//! is no longer the newest of its table, no live segment uses it, no
//! writer or reader holds it and no retired segment is kept for a
//! snapshot.

use super::write::CommitGuard;
use super::Engine;
use crate::error::{Error, Result};
use crate::manifest::values::ValuesEdit;
use crate::manifest::VersionEdit;
use crate::options::ValueCompression;
use crate::stats::TableValueStats;
use crate::vlog::batch::{Attempt, BatchOp, RecordBatch};
use crate::vlog::compress::Codec;
use crate::vlog::dict::{self, Dictionaries, Dictionary};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Largest dictionary [`Engine::train_dictionary`] makes.
pub(crate) const DICT_LEN: usize = 32 << 10;

/// One table's counts since open.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ValueCounts {
    pub(super) raw: u64,
    pub(super) stored: u64,
    pub(super) incompressible: u64,
}

/// The codecs of the tables that compress, and every table's counts.
#[derive(Debug, Default)]
pub(super) struct ValueCodecs {
    codecs: RwLock<HashMap<u32, Arc<Codec>>>,
    counts: Mutex<BTreeMap<u32, ValueCounts>>,
}

impl ValueCodecs {
    /// The codecs the manifest state gives (every dictionary it names is in
    /// `dicts` by now).
    pub(super) fn from_state(
        state: &crate::manifest::values::ValuesState,
        dicts: &Dictionaries,
    ) -> ValueCodecs {
        let mut codecs = HashMap::new();
        for (&table, &c) in &state.compression {
            if let ValueCompression::Zstd { level } = c {
                let dict = state.current_dict(table).and_then(|id| dicts.get(id));
                codecs.insert(table, Arc::new(Codec { level, dict }));
            }
        }
        ValueCodecs {
            codecs: RwLock::new(codecs),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    pub(super) fn codec(&self, table: u32) -> Option<Arc<Codec>> {
        self.codecs.read().get(&table).cloned()
    }

    /// Adds a group's counts.
    pub(super) fn count(&self, per_op: impl Iterator<Item = (u32, ValueCounts)>) {
        let mut c = self.counts.lock();
        for (t, n) in per_op {
            let e = c.entry(t).or_default();
            e.raw += n.raw;
            e.stored += n.stored;
            e.incompressible += n.incompressible;
        }
    }
}

/// A put's counts.
pub(super) fn op_counts(op: &BatchOp) -> ValueCounts {
    ValueCounts {
        raw: op.raw_value_len() as u64,
        stored: op.value_len as u64,
        incompressible: u64::from(op.incompressible),
    }
}

impl Engine {
    /// `batch` with its values compressed where their tables ask for it,
    /// and the codecs used (the caller holds them until the batch is
    /// committed, so that no dictionary it uses is removed meanwhile).
    /// Compressed: values that go by pointer (ordered tables: at least
    /// `value_threshold` bytes; unordered: every non-empty value).
    pub(super) fn compress_batch(&self, batch: RecordBatch) -> (RecordBatch, Vec<Arc<Codec>>) {
        let mut used: Vec<Arc<Codec>> = Vec::new();
        if self.values.codecs.read().is_empty() {
            return (batch, used);
        }
        let batch = batch.compress_values(|op, value| {
            let goes_by_pointer = if self.keydirs.is_unordered(op.table) {
                !value.is_empty()
            } else {
                value.len() >= self.opts.value_threshold
            };
            if !goes_by_pointer {
                return Attempt::Skipped;
            }
            let Some(codec) = self.values.codec(op.table) else {
                return Attempt::Skipped;
            };
            if !used.iter().any(|c| Arc::ptr_eq(c, &codec)) {
                used.push(codec.clone());
            }
            match codec.compress(value) {
                Some(stored) => Attempt::Stored(stored, codec.dict_id()),
                None => Attempt::DidNotShrink,
            }
        });
        (batch, used)
    }

    /// Records (durably, before the batch is appended) that the user head
    /// `segment` uses the dictionaries `ops` name, where it was not known
    /// yet. `declared` is what the commit lock's holder knows of the head.
    pub(super) fn declare_dicts(
        &self,
        _commit: &CommitGuard<'_>,
        declared: &mut (u64, Vec<u64>),
        segment: u64,
        ops: &[BatchOp],
    ) -> Result<()> {
        if declared.0 != segment {
            *declared = (segment, Vec::new());
        }
        let mut new: Vec<u64> = Vec::new();
        for op in ops {
            if op.dict != 0 && !declared.1.contains(&op.dict) && !new.contains(&op.dict) {
                new.push(op.dict);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let mut vs = self.versions.lock_manifest();
        let known = vs
            .state()
            .values
            .segment_dicts
            .get(&segment)
            .cloned()
            .unwrap_or_default();
        new.retain(|d| !known.contains(d));
        if !new.is_empty() {
            let edit = VersionEdit {
                values: ValuesEdit {
                    segment_dicts: new.iter().map(|&d| (segment, d)).collect(),
                    ..Default::default()
                },
                ..Default::default()
            };
            self.log_and_apply(&mut vs, edit, Default::default())?;
        }
        declared.1.extend(known);
        declared.1.extend(new);
        Ok(())
    }

    /// Sets how `table` stores new values; logs the change when it is one.
    ///
    /// # Errors
    /// `ReadOnly`/`Poisoned` from the health check, `Io` from the manifest.
    pub(crate) fn set_value_compression(&self, table: u32, c: ValueCompression) -> Result<()> {
        let mut vs = self.versions.lock_manifest();
        let now = vs
            .state()
            .values
            .compression
            .get(&table)
            .copied()
            .unwrap_or_default();
        if now == c {
            return Ok(());
        }
        self.health.check_writable()?;
        let edit = VersionEdit {
            values: ValuesEdit {
                compression: vec![(table, c)],
                ..Default::default()
            },
            ..Default::default()
        };
        self.log_and_apply(&mut vs, edit, Default::default())?;
        let dict = vs
            .state()
            .values
            .current_dict(table)
            .and_then(|id| self.vlog.dictionaries().get(id));
        let mut codecs = self.values.codecs.write();
        match c {
            ValueCompression::Zstd { level } => {
                codecs.insert(table, Arc::new(Codec { level, dict }));
            }
            _ => {
                codecs.remove(&table);
            }
        }
        Ok(())
    }

    /// Trains a dictionary for `table` from `samples` (values of the table)
    /// and makes it the one its new values are compressed with; returns its
    /// id. The file is written and synced before the manifest edit that
    /// names it. Writers are not held up: they go on with the old codec
    /// until the new one is in place.
    ///
    /// # Errors
    /// `InvalidArgument` when the table does not compress its values or the
    /// samples are too few to train from; `Io` from the file or manifest.
    pub(crate) fn train_dictionary(&self, table: u32, samples: &[&[u8]]) -> Result<u64> {
        self.health.check_writable()?;
        let Some(level) = self.values.codec(table).map(|c| c.level) else {
            return Err(Error::InvalidArgument(
                "the table does not compress its values (TableOptions::value_compression)".into(),
            ));
        };
        let total: usize = samples.iter().map(|s| s.len()).sum();
        let bytes = dict::train(samples, DICT_LEN.min(total / 10)).map_err(|e| {
            Error::InvalidArgument(format!(
                "cannot train a dictionary from {} values ({total} bytes): {e}",
                samples.len()
            ))
        })?;
        let id = self.versions.new_file_number();
        let d = Arc::new(Dictionary::new(id, table, bytes));
        dict::write(&self.fs, &self.dir, &d)?;
        let mut vs = self.versions.lock_manifest();
        let edit = VersionEdit {
            values: ValuesEdit {
                dicts_added: vec![(id, table)],
                ..Default::default()
            },
            ..Default::default()
        };
        if let Err(e) = self.log_and_apply(&mut vs, edit, Default::default()) {
            dict::remove(&self.fs, &self.dir, id);
            return Err(e);
        }
        self.vlog.dictionaries().insert(d.clone());
        let level = vs
            .state()
            .values
            .compression
            .get(&table)
            .and_then(|c| match c {
                ValueCompression::Zstd { level } => Some(*level),
                _ => None,
            })
            .unwrap_or(level);
        self.values.codecs.write().insert(
            table,
            Arc::new(Codec {
                level,
                dict: Some(d),
            }),
        );
        drop(vs);
        self.remove_unused_dicts();
        Ok(id)
    }

    /// Removes the dictionaries nothing uses any more (see the module
    /// docs). A failure is only logged: the next GC pass or open tries
    /// again.
    pub(super) fn remove_unused_dicts(&self) {
        if self.health.check_writable().is_err() || self.vlog.zombie_count() > 0 {
            return;
        }
        let mut vs = self.versions.lock_manifest();
        let values = &vs.state().values;
        let unused: Vec<u64> = values
            .dicts
            .iter()
            .filter(|(&id, &t)| values.current_dict(t) != Some(id) && !values.dict_in_use(id))
            .map(|(&id, _)| id)
            .filter(|&id| self.vlog.dictionaries().remove_if_unused(id))
            .collect();
        if unused.is_empty() {
            return;
        }
        let edit = VersionEdit {
            values: ValuesEdit {
                dicts_removed: unused.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        if let Err(e) = self.log_and_apply(&mut vs, edit, Default::default()) {
            log::warn!("{}: removing unused dictionaries: {e}", self.dir.display());
            return;
        }
        drop(vs);
        for id in unused {
            log::info!(
                "{}: removing dictionary {id}, no longer used",
                self.dir.display()
            );
            dict::remove(&self.fs, &self.dir, id);
        }
    }

    /// The value counts of every table written since open, and of every
    /// table that compresses.
    pub(super) fn table_value_stats(&self) -> Vec<TableValueStats> {
        let counts = self.values.counts.lock().clone();
        let vs = self.versions.lock_manifest();
        let st = vs.state();
        let name = |t: u32| {
            if t == crate::manifest::DEFAULT_TABLE {
                crate::manifest::DEFAULT_TABLE_NAME.to_string()
            } else {
                st.tables
                    .iter()
                    .find(|d| d.id == t)
                    .map_or_else(|| format!("#{t}"), |d| d.name.clone())
            }
        };
        let mut ids: Vec<u32> = counts.keys().copied().collect();
        ids.extend(st.values.compression.keys());
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|t| {
                let n = counts.get(&t).copied().unwrap_or_default();
                TableValueStats {
                    name: name(t),
                    raw_bytes: n.raw,
                    stored_bytes: n.stored,
                    incompressible: n.incompressible,
                    compression: match st.values.compression.get(&t) {
                        Some(ValueCompression::Zstd { level }) => format!("zstd:{level}"),
                        _ => "none".into(),
                    },
                    dictionary: st.values.current_dict(t),
                }
            })
            .collect()
    }

    /// The dictionaries open, by id.
    pub(super) fn dictionary_stats(&self) -> Vec<crate::stats::DictionaryStats> {
        let d = self.vlog.dictionaries();
        let mut out: Vec<_> = d
            .ids()
            .into_iter()
            .filter_map(|id| d.get(id))
            .map(|x| crate::stats::DictionaryStats {
                id: x.id(),
                table_id: x.table(),
                bytes: x.len() as u64,
            })
            .collect();
        out.sort_unstable_by_key(|x| x.id);
        out
    }
}

/// Reads every dictionary the manifest names (a missing or damaged one is
/// `Error::Corruption` naming its file).
pub(super) fn load_dictionaries(
    fs: &Arc<dyn crate::io::Fs>,
    dir: &std::path::Path,
    state: &crate::manifest::values::ValuesState,
    into: &Dictionaries,
) -> Result<()> {
    for &id in state.dicts.keys() {
        into.insert(Arc::new(dict::read(fs, dir, id)?));
    }
    Ok(())
}
