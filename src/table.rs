//! [`Table`]: a named keyspace of a database, ordered or unordered, with
//! the same read and write methods as [`Db`].

use crate::batch::WriteBatch;
use crate::db::Db;
use crate::engine::Scan;
use crate::error::{Error, Result};
use crate::iter::{prefix_bounds, Iter, KeyRange};
use crate::options::{TableKind, WriteOptions};
use crate::stats::TableStats;
use crate::value::Value;
use std::sync::Arc;

/// A table's name and kind, as [`Db::tables`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableInfo {
    /// The table's name.
    pub name: String,
    /// Ordered or unordered.
    pub kind: TableKind,
}

/// A named table: the same read and write methods as [`Db`], on its own keys.
///
/// ```
/// use wisckey::{Db, Options, TableOptions};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// let users = db.table("users", TableOptions::ordered())?;
/// users.put(b"alice", b"1")?;
/// assert!(db.get(b"alice")?.is_none());
/// assert_eq!(users.get(b"alice")?.as_deref(), Some(&b"1"[..]));
/// # Ok::<(), wisckey::Error>(())
/// ```
#[derive(Clone)]
pub struct Table {
    db: Db,
    id: u32,
    name: Arc<str>,
    kind: TableKind,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Table {
    pub(crate) fn new(db: Db, id: u32, name: &str, kind: TableKind) -> Table {
        Table {
            db,
            id,
            name: Arc::from(name),
            kind,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The table's kind.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// `Error::Unsupported` for what an unordered table cannot do.
    pub(crate) fn unsupported(&self, what: &str) -> Option<Error> {
        (self.kind == TableKind::Unordered).then(|| {
            Error::Unsupported(format!(
                "{what} on the unordered table {}: it has no key order",
                self.name
            ))
        })
    }

    /// This table's figures: live keys where cheaply known, index bytes,
    /// vLog bytes written since open. See [`TableStats`] for what each
    /// counts and which are estimates.
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.table("t", TableOptions::unordered())?;
    /// t.put(b"a", b"1")?;
    /// t.put(b"b", b"2")?;
    /// let s = t.stats()?;
    /// assert_eq!(s.live_keys, Some(2));
    /// assert_eq!(s.writes, 2);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` when the table was dropped.
    pub fn stats(&self) -> Result<TableStats> {
        self.db.engine().table_stats(self.id)
    }

    /// The database this table belongs to.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Sets `key` to `value` in this table.
    ///
    /// # Errors
    /// As [`Db::put`].
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put_in(self, key, value);
        self.db.write(b, WriteOptions::default())
    }

    /// Deletes `key` from this table.
    ///
    /// # Errors
    /// As [`Db::delete`].
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete_in(self, key);
        self.db.write(b, WriteOptions::default())
    }

    /// The value of `key` in this table.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        self.db.engine().get(self.id, key.as_ref(), None)
    }

    /// The values of `keys`, in order.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Value>>> {
        self.db.engine().multi_get(self.id, keys, None)
    }

    /// Every live key of this table: in key order for an ordered table (a
    /// full scan), in no particular order for an unordered one (a copy of
    /// the keydir's keys, Bitcask's `list_keys`).
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.table("t", TableOptions::unordered())?;
    /// t.put(b"b", b"2")?;
    /// t.put(b"a", b"1")?;
    /// t.delete(b"b")?;
    /// assert_eq!(t.keys()?, vec![b"a".to_vec()]);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        match self.db.engine().keydir_keys(self.id) {
            Some(keys) => Ok(keys),
            None => self.iter().map(|kv| kv.map(|(k, _)| k)).collect(),
        }
    }

    /// Iterates this table over `range`. On an unordered table the
    /// iterator yields one `Err(Error::Unsupported(..))`.
    pub fn range(&self, range: impl KeyRange) -> Iter {
        self.scan_at(None, range, "a range scan")
    }

    /// Iterates the keys of this table that start with `prefix`. On an
    /// unordered table the iterator yields one `Err(Error::Unsupported(..))`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.scan_at(None, prefix_bounds(prefix.as_ref()), "a prefix scan")
    }

    /// Iterates the whole table.
    pub fn iter(&self) -> Iter {
        self.range(..)
    }

    /// An iterator over `range` at sequence number `seq` (a snapshot's; the
    /// newest for `None`), or one that yields `Error::Unsupported` (naming
    /// `what`) on an unordered table.
    pub(crate) fn scan_at(&self, seq: Option<u64>, range: impl KeyRange, what: &str) -> Iter {
        let e = self.db.engine().clone();
        let refused = e.check_table(self.id).err();
        Iter::new(match refused.or_else(|| self.unsupported(what)) {
            Some(err) => Scan::failed(e, self.id, err),
            None => Scan::new(e, self.id, seq, range.into_bounds()),
        })
    }
}
