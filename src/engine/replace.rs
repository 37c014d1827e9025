//! Replacing a table's contents with the same table's contents in a
//! checkpoint (the cluster's snapshot install).
//!
//! ```text
//! Engine::replace_table
//!   open the checkpoint read-only (its own engine)
//!   create a hidden table ("\0replace-ID": no user name starts with NUL)
//!   copy every live entry of the checkpoint's table into it, in batches
//!   of about 1 MiB, then sync the vLog
//!   one manifest edit: drop the old table, rename the hidden one
//! ```
//!
//! The swap is one edit, so a reader that opens the table by name sees the
//! old contents or the new, never a mix; an old handle's id is dead after
//! it (`InvalidArgument`). A crash before the swap leaves the hidden table
//! behind: the next writable open drops it ([`drop_hidden_tables`]).

use super::scan::Scan;
use super::versions::LevelChange;
use super::Engine;
use crate::error::{Error, Result};
use crate::manifest::{DroppedTable, ManifestState, TableDef, VersionEdit, DEFAULT_TABLE_NAME};
use crate::options::TableKind;
use crate::vlog::batch::RecordBatch;
use std::ops::Bound;
use std::path::Path;

/// The prefix of a hidden table's name: tables a replace fills.
pub(crate) const HIDDEN_PREFIX: &str = "\u{0}replace-";

/// Bytes of records per batch while copying.
const BATCH_BYTES: usize = 1 << 20;
/// Keys per `multi_get` of an unordered source table.
const READ_CHUNK: usize = 256;

/// Whether `name` is a hidden table's.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with(HIDDEN_PREFIX)
}

/// Drops every hidden table of `state` (a replace a crash cut short): run
/// by a writable open before anything else reads the tables.
pub(super) fn drop_hidden_tables(state: &mut ManifestState) {
    let (hidden, kept): (Vec<TableDef>, Vec<TableDef>) = std::mem::take(&mut state.tables)
        .into_iter()
        .partition(|t| is_hidden(&t.name));
    state.tables = kept;
    for t in hidden {
        log::info!("dropping table {} left by an unfinished replace", t.id);
        state.dropped_tables.insert(
            t.id,
            DroppedTable {
                id: t.id,
                kind: t.kind,
            },
        );
    }
}

impl Engine {
    /// Replaces table `name`'s contents with those of the table `name` in
    /// the checkpoint in `from`, making it of that table's kind (creating it
    /// when missing). Returns the number of entries installed.
    ///
    /// # Errors
    /// `InvalidArgument` for the default table, a name the checkpoint has
    /// no table of, or a database that refuses writes; what opening the
    /// checkpoint returns; what writes return.
    pub(crate) fn replace_table(&self, name: &str, from: &Path) -> Result<u64> {
        if name == DEFAULT_TABLE_NAME || is_hidden(name) {
            return Err(Error::InvalidArgument(format!(
                "the table {name:?} cannot be replaced"
            )));
        }
        self.health.check_writable()?;
        let src = Engine::open(
            from,
            self.opts.clone().read_only(true).create_if_missing(false),
        )?;
        let found = src
            .versions
            .lock_manifest()
            .state()
            .tables
            .iter()
            .find(|t| t.name == name)
            .cloned();
        let Some(def) = found else {
            return Err(Error::InvalidArgument(format!(
                "the checkpoint in {} has no table {name}",
                from.display()
            )));
        };
        let hidden = self.create_hidden_table(def.kind)?;
        let copied = self.copy_table(&src, def.id, def.kind, hidden.id);
        src.shutdown();
        drop(src);
        let copied = match copied.and_then(|n| self.sync_vlog().map(|()| n)) {
            Ok(n) => n,
            Err(e) => {
                if let Err(d) = self.drop_table_id(&hidden) {
                    log::warn!("dropping the hidden table of a failed replace: {d}");
                }
                return Err(e);
            }
        };
        let mut vs = self.versions.lock_manifest();
        let old = vs.state().tables.iter().find(|t| t.name == name).cloned();
        let rename = vec![(hidden.id, name.to_string())];
        match old {
            Some(old) => self.drop_locked(&mut vs, old.id, old.kind, name, rename)?,
            None => {
                let edit = VersionEdit {
                    tables_renamed: rename,
                    ..Default::default()
                };
                self.log_and_apply(&mut vs, edit, LevelChange::default())?;
            }
        }
        drop(vs);
        self.workers.wake_compaction();
        self.workers.wake_gc();
        Ok(copied)
    }

    /// Creates a hidden table of `kind` (durably).
    fn create_hidden_table(&self, kind: TableKind) -> Result<TableDef> {
        let mut vs = self.versions.lock_manifest();
        self.health.check_writable()?;
        let id = vs.state().next_table_id();
        let def = TableDef {
            id,
            name: format!("{HIDDEN_PREFIX}{id}"),
            kind,
        };
        let edit = VersionEdit {
            tables_created: vec![def.clone()],
            ..Default::default()
        };
        self.log_and_apply(&mut vs, edit, LevelChange::default())?;
        if kind == TableKind::Unordered {
            self.keydirs.add_table(id);
        }
        Ok(def)
    }

    /// Drops table `def` by its id (a hidden one no handle names).
    fn drop_table_id(&self, def: &TableDef) -> Result<()> {
        let mut vs = self.versions.lock_manifest();
        if !vs.state().tables.iter().any(|t| t.id == def.id) {
            return Ok(());
        }
        self.drop_locked(&mut vs, def.id, def.kind, &def.name, Vec::new())
    }

    /// Writes every live entry of table `from` of `src` into table `to`,
    /// in batches; returns how many.
    fn copy_table(
        &self,
        src: &std::sync::Arc<Engine>,
        from: u32,
        kind: TableKind,
        to: u32,
    ) -> Result<u64> {
        let mut batch = RecordBatch::default();
        let mut n = 0u64;
        let mut add = |batch: &mut RecordBatch, k: &[u8], v: &[u8]| -> Result<()> {
            batch.push(to, true, k, v);
            n += 1;
            if batch.bytes() >= BATCH_BYTES {
                self.write(std::mem::take(batch), false)?;
            }
            Ok(())
        };
        match kind {
            TableKind::Ordered => {
                let mut scan = Scan::new(
                    src.clone(),
                    from,
                    None,
                    (Bound::Unbounded, Bound::Unbounded),
                );
                while let Some(kv) = scan.next_front() {
                    let (k, v) = kv?;
                    add(&mut batch, &k, &v)?;
                }
            }
            TableKind::Unordered => {
                let keys = src.keydir_keys(from).unwrap_or_default();
                for chunk in keys.chunks(READ_CHUNK) {
                    let values = src.multi_get(from, chunk, None)?;
                    for (k, v) in chunk.iter().zip(values) {
                        if let Some(v) = v {
                            add(&mut batch, k, &v)?;
                        }
                    }
                }
            }
        }
        if !batch.is_empty() {
            self.write(batch, false)?;
        }
        Ok(n)
    }
}
