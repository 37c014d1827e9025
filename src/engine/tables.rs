//! The named tables: their definitions live in the manifest; creating one is
//! a logged edit, and an unordered table gets its keydir.

use super::versions::LevelChange;
use super::Engine;
use crate::error::{Error, Result};
use crate::manifest::{TableDef, VersionEdit, DEFAULT_TABLE, DEFAULT_TABLE_NAME};
use crate::options::TableKind;

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
        let id = vs.state().tables.iter().map(|t| t.id).max().unwrap_or(0) + 1;
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
            .map(|t| (t.name.clone(), t.kind))
            .collect()
    }
}
