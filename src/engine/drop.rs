//! Dropping a table: one logged manifest edit, after which the table's id
//! is dead everywhere.
//!
//! ```text
//! Engine::drop_table        manifest lock: the edit (tag 16) logged and
//!                           applied; TableBook::note_dropped; an unordered
//!                           table's keydir freed (its records counted as
//!                           garbage at once)
//! after it, the dead id is
//!   handles                 Engine::check_table: InvalidArgument
//!   flush, compaction       DropFilter::dropping_tables: its entries go,
//!                           their vLog bytes become discard statistics
//!   GC                      is_live: false (its records are garbage)
//!   the index walks         newest_versions skips it (verify, usage, salvage)
//!   recovery                replay skips its records (counted as garbage),
//!                           the keydirs count its unordered records as garbage
//! ```
//!
//! The name is free at once, and a table created with it gets a new id
//! ([`crate::manifest::ManifestState::next_table_id`]): it never sees the
//! old data, whatever its kind.

use super::versions::LevelChange;
use super::Engine;
use crate::error::{Error, Result};
use crate::manifest::{DroppedTable, VersionEdit, DEFAULT_TABLE_NAME};
use crate::options::TableKind;

impl Engine {
    /// Drops table `name`: durable when this returns (the manifest edit is
    /// synced). A write racing with the drop either lands before it and is
    /// dropped with the table, or fails (the handle's id is dead).
    ///
    /// # Errors
    /// `InvalidArgument` for the default table or a name with no table;
    /// `ReadOnly`, `Poisoned` or a closed database as for writes; `Io` when
    /// the manifest write fails (which poisons the database).
    pub(crate) fn drop_table(&self, name: &str) -> Result<()> {
        if name == DEFAULT_TABLE_NAME {
            return Err(Error::InvalidArgument(
                "the default table cannot be dropped".into(),
            ));
        }
        let mut vs = self.versions.lock_manifest();
        let Some(def) = vs.state().tables.iter().find(|t| t.name == name).cloned() else {
            return Err(Error::InvalidArgument(format!("there is no table {name}")));
        };
        self.health.check_writable()?;
        self.drop_locked(&mut vs, &[(def.id, def.kind, name)], Vec::new())?;
        drop(vs);
        self.workers.wake_compaction();
        self.workers.wake_gc();
        Ok(())
    }

    /// Logs the drop of the tables `drops` (id, kind, name), with
    /// `renames` in the same edit, and makes the ids dead in memory.
    pub(super) fn drop_locked(
        &self,
        vs: &mut super::versions::ManifestGuard<'_>,
        drops: &[(u32, TableKind, &str)],
        renames: Vec<(u32, String)>,
    ) -> Result<()> {
        let edit = VersionEdit {
            tables_dropped: drops
                .iter()
                .map(|&(id, kind, _)| DroppedTable { id, kind })
                .collect(),
            tables_renamed: renames,
            ..Default::default()
        };
        self.log_and_apply(vs, edit, LevelChange::default())?;
        for &(id, kind, name) in drops {
            self.tables.note_dropped(id, name);
            if kind == TableKind::Unordered {
                self.keydirs.remove_table(id);
            }
        }
        Ok(())
    }
}
