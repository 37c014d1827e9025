//! [`WriteBatch`]: writes applied atomically, across tables.

use crate::iter::KeyRange;
use crate::lsm::range_del::RangeTombstone;
use crate::table::Table;
use std::ops::Bound;

/// `[start, end)` for a range of keys (`end` `None`: no end): a key's
/// immediate successor is the key with a zero byte appended.
fn half_open((lo, hi): (Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Vec<u8>, Option<Vec<u8>>) {
    let succ = |mut k: Vec<u8>| {
        k.push(0);
        k
    };
    let start = match lo {
        Bound::Included(k) => k,
        Bound::Excluded(k) => succ(k),
        Bound::Unbounded => Vec::new(),
    };
    let end = match hi {
        Bound::Included(k) => Some(succ(k)),
        Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    (start, end)
}
use crate::vlog::batch::RecordBatch;

/// Puts and deletes applied all together or not at all, even across a crash.
///
/// ```
/// use wisckey::{Db, Options, WriteBatch, WriteOptions};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// let mut batch = WriteBatch::new();
/// batch.put(b"a", b"1");
/// batch.delete(b"b");
/// db.write(batch, WriteOptions::default().sync(true))?;
/// assert_eq!(db.get(b"a")?.as_deref(), Some(&b"1"[..]));
/// # Ok::<(), wisckey::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// The batch's vLog records, encoded as they will be written; the group
    /// commit leader fills in sequence numbers, batch flags and checksums.
    records: RecordBatch,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `key` = `value` in the default table.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.push(0, true, key.as_ref(), value.as_ref())
    }

    /// Deletes `key` from the default table.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(0, false, key.as_ref(), &[])
    }

    /// Puts `key` = `value` in `table`.
    pub fn put_in(
        &mut self,
        table: &Table,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.push(table.id(), true, key.as_ref(), value.as_ref())
    }

    /// Deletes `key` from `table`.
    pub fn delete_in(&mut self, table: &Table, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(table.id(), false, key.as_ref(), &[])
    }

    /// Deletes every key of the default table in `range`, as one record
    /// however many keys it covers (see [`Table::delete_range`]).
    pub fn delete_range(&mut self, range: impl KeyRange) -> &mut Self {
        self.push_range(0, range)
    }

    /// Deletes every key of `table` in `range` (an ordered table: the
    /// batch's write fails with `Unsupported` on an unordered one).
    pub fn delete_range_in(&mut self, table: &Table, range: impl KeyRange) -> &mut Self {
        self.push_range(table.id(), range)
    }

    fn push_range(&mut self, table: u32, range: impl KeyRange) -> &mut Self {
        let (start, end) = half_open(range.into_bounds());
        self.records
            .push_range_delete(table, &start, &RangeTombstone::encode_end(end.as_deref()));
        self
    }

    /// Number of writes in the batch.
    pub fn len(&self) -> usize {
        self.records.ops().len()
    }

    /// Whether the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Removes every write.
    pub fn clear(&mut self) {
        self.records.clear();
    }

    /// The encoded records, for the engine's write path.
    pub(crate) fn into_records(self) -> RecordBatch {
        self.records
    }

    fn push(&mut self, table: u32, is_put: bool, key: &[u8], value: &[u8]) -> &mut Self {
        self.records.push(table, is_put, key, value);
        self
    }
}
