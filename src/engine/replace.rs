//! Replacing tables' contents with the same tables' contents in a
//! checkpoint (the cluster's snapshot install), several tables at once.
//!
//! ```text
//! Engine::replace_table
//!   open the checkpoint read-only (its own engine)
//!   create a hidden table ("\0replace-ID": no user name starts with NUL)
//!   (one per table) copy every live entry of the checkpoint's table into
//!   it, in batches of about 1 MiB; then sync the vLog
//!   one manifest edit: drop the old tables, rename the hidden ones
//! ```
//!
//! The swap is one edit, so a reader that opens the table by name sees the
//! old contents or the new, never a mix; an old handle's id is dead after
//! it (`InvalidArgument`). A crash before the swap leaves the hidden table
//! behind: the next writable open drops it ([`drop_hidden_tables`]).

use super::scan::{Fetch, Scan, Slot};
use super::versions::LevelChange;
use super::walk::{UnorderedScan, Walk};
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
    /// Replaces the contents of each table of `names` with those of the
    /// table of the same name in the checkpoint in `from`, all in one
    /// manifest edit, making each of that table's kind (creating it when
    /// missing). Returns the number of entries installed.
    ///
    /// # Errors
    /// `InvalidArgument` for the default table, a name given twice, a name
    /// the checkpoint has no table of, or a database that refuses writes;
    /// what opening the checkpoint returns; what writes return.
    pub(crate) fn replace_tables(&self, names: &[&str], from: &Path) -> Result<u64> {
        for (i, name) in names.iter().enumerate() {
            if *name == DEFAULT_TABLE_NAME || is_hidden(name) {
                return Err(Error::InvalidArgument(format!(
                    "the table {name:?} cannot be replaced"
                )));
            }
            if names[..i].contains(name) {
                return Err(Error::InvalidArgument(format!(
                    "the table {name} is named twice"
                )));
            }
        }
        self.health.check_writable()?;
        let src = Engine::open(
            from,
            self.opts.clone().read_only(true).create_if_missing(false),
        )?;
        let src_tables = src.versions.lock_manifest().state().tables.clone();
        let mut defs = Vec::with_capacity(names.len());
        for name in names {
            match src_tables.iter().find(|t| t.name == *name) {
                Some(d) => defs.push(d.clone()),
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "the checkpoint in {} has no table {name}",
                        from.display()
                    )))
                }
            }
        }
        // Each table copied into a hidden one; on a failure every hidden
        // table made so far is dropped again.
        let mut hidden: Vec<TableDef> = Vec::with_capacity(defs.len());
        let mut copied = 0u64;
        let mut filled = Ok(());
        for def in &defs {
            // The replacing table compresses as the table it replaces does
            // (or, for a new one, as the checkpoint's did).
            let comp = {
                let vs = self.versions.lock_manifest();
                let st = vs.state();
                st.tables
                    .iter()
                    .find(|t| t.name == def.name)
                    .and_then(|t| st.values.compression.get(&t.id).copied())
            }
            .or_else(|| {
                let vs = src.versions.lock_manifest();
                vs.state().values.compression.get(&def.id).copied()
            });
            let r = self.create_hidden_table(def.kind).and_then(|h| {
                hidden.push(h.clone());
                if let Some(c) = comp {
                    self.set_value_compression(h.id, c)?;
                }
                self.copy_table(&src, def.id, def.kind, h.id)
            });
            match r {
                Ok(n) => copied += n,
                Err(e) => {
                    filled = Err(e);
                    break;
                }
            }
        }
        src.shutdown();
        drop(src);
        if let Err(e) = filled.and_then(|()| self.sync_vlog()) {
            for h in &hidden {
                if let Err(d) = self.drop_table_id(h) {
                    log::warn!("dropping the hidden table of a failed replace: {d}");
                }
            }
            return Err(e);
        }
        let mut vs = self.versions.lock_manifest();
        let olds: Vec<TableDef> = names
            .iter()
            .filter_map(|n| vs.state().tables.iter().find(|t| t.name == *n).cloned())
            .collect();
        let drops: Vec<(u32, TableKind, &str)> = olds
            .iter()
            .map(|t| (t.id, t.kind, t.name.as_str()))
            .collect();
        let renames = hidden
            .iter()
            .zip(names)
            .map(|(h, n)| (h.id, (*n).to_string()))
            .collect();
        self.drop_locked(&mut vs, &drops, renames)?;
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
        self.drop_locked(&mut vs, &[(def.id, def.kind, &def.name)], Vec::new())
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
        // The whole source table, its values read a window at a time.
        let mut walk = match kind {
            TableKind::Ordered => Walk::Sorted(Box::new(Scan::new(
                src.clone(),
                from,
                None,
                (Bound::Unbounded, Bound::Unbounded),
                Fetch::Values,
            ))),
            TableKind::Unordered => {
                match UnorderedScan::new(src.clone(), from, None, Fetch::Values) {
                    Some(u) => Walk::Unordered(u),
                    None => return Ok(0),
                }
            }
        };
        while let Some(kv) = walk.next_front() {
            let (k, slot) = kv?;
            let v = match slot {
                Slot::Value(v) => v,
                slot => walk.lazy(&k, slot).into_value(&k)?,
            };
            add(&mut batch, &k, &v)?;
        }
        if !batch.is_empty() {
            self.write(batch, false)?;
        }
        Ok(n)
    }
}
