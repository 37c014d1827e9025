//! [`WriteBatch`]: writes applied atomically, across tables.

use crate::db::Table;

/// One write in a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchOp {
    pub(crate) table: u32,
    pub(crate) is_put: bool,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

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
    pub(crate) ops: Vec<BatchOp>,
    pub(crate) bytes: usize,
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

    /// Number of writes in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Removes every write.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.bytes = 0;
    }

    fn push(&mut self, table: u32, is_put: bool, key: &[u8], value: &[u8]) -> &mut Self {
        self.bytes += crate::vlog::record::record_len(key.len(), value.len());
        self.ops.push(BatchOp {
            table,
            is_put,
            key: key.to_vec(),
            value: value.to_vec(),
        });
        self
    }
}
