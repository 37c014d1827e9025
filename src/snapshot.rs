//! [`Snapshot`]: reads frozen at one sequence number.

use crate::db::Db;
use crate::error::Result;
use crate::iter::{prefix_bounds, Iter, KeyRange};
use crate::manifest::DEFAULT_TABLE;
use crate::table::Table;
use crate::value::Value;

/// A consistent, read-only view of every table as of the moment it was
/// taken: it sees exactly the writes with sequence numbers at or below its
/// own, whatever flushes and compactions happen meanwhile.
///
/// ```
/// use wisckey::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put(b"a", b"1")?;
/// let snap = db.snapshot();
/// db.put(b"a", b"2")?;
/// assert_eq!(snap.get(b"a")?.as_deref(), Some(&b"1"[..]));
/// assert_eq!(db.get(b"a")?.as_deref(), Some(&b"2"[..]));
/// # Ok::<(), wisckey::Error>(())
/// ```
pub struct Snapshot {
    db: Db,
    seq: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("seq", &self.seq).finish()
    }
}

impl Snapshot {
    pub(crate) fn new(db: Db) -> Snapshot {
        let seq = db.engine().register_snapshot();
        Snapshot { db, seq }
    }

    /// Whether this is a snapshot of `db` (the same open database).
    pub(crate) fn is_of(&self, db: &Db) -> bool {
        std::sync::Arc::ptr_eq(self.db.engine(), db.engine())
    }

    /// A snapshot at `seq`, already registered with the engine (it is
    /// released when this one is dropped).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn registered(db: Db, seq: u64) -> Snapshot {
        Snapshot { db, seq }
    }

    /// The sequence number this snapshot reads at.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// The value of `key` in the default table.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        self.db
            .engine()
            .get(DEFAULT_TABLE, key.as_ref(), Some(self.seq))
    }

    /// The value of `key` in `table` (ordered or unordered) as of the
    /// snapshot.
    pub fn get_in(&self, table: &Table, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        self.db
            .engine()
            .get(table.id(), key.as_ref(), Some(self.seq))
    }

    /// The values of `keys` in the default table, in order.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Value>>> {
        self.db
            .engine()
            .multi_get(DEFAULT_TABLE, keys, Some(self.seq))
    }

    /// Iterates the default table over `range`.
    pub fn range(&self, range: impl KeyRange) -> Iter {
        self.db
            .default_table()
            .scan_at(Some(self.seq), range, "a snapshot scan")
    }

    /// Iterates `table` over `range` as of the snapshot. On an unordered
    /// table only the full range `..` is possible (in no order); any other
    /// yields one `Err(Error::Unsupported(..))`.
    pub fn range_in(&self, table: &Table, range: impl KeyRange) -> Iter {
        table.scan_at(Some(self.seq), range, "a snapshot scan")
    }

    /// Iterates the keys of the default table starting with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.range(prefix_bounds(prefix.as_ref()))
    }

    /// Iterates the whole default table.
    pub fn iter(&self) -> Iter {
        self.range(..)
    }

    /// The values of `keys` in `table`, in order, as of the snapshot.
    pub fn multi_get_in<K: AsRef<[u8]>>(
        &self,
        table: &Table,
        keys: &[K],
    ) -> Result<Vec<Option<Value>>> {
        self.db.engine().multi_get(table.id(), keys, Some(self.seq))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.db.engine().release_snapshot(self.seq);
    }
}
