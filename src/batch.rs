//! [`WriteBatch`]: writes applied atomically, across tables.

use crate::db::Table;

/// Where one write sits in a batch's encoded records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchOp {
    /// Offset of the record in `WriteBatch::rep`.
    pub(crate) offset: usize,
    pub(crate) table: u32,
    pub(crate) is_put: bool,
    pub(crate) key_len: usize,
    pub(crate) value_len: usize,
}

impl BatchOp {
    pub(crate) fn len(&self) -> usize {
        crate::vlog::record::record_len(self.key_len, self.value_len)
    }
    pub(crate) fn key<'a>(&self, rep: &'a [u8]) -> &'a [u8] {
        let k = self.offset + crate::vlog::record::HEADER_LEN;
        &rep[k..k + self.key_len]
    }
    pub(crate) fn value<'a>(&self, rep: &'a [u8]) -> &'a [u8] {
        let v = self.offset + crate::vlog::record::HEADER_LEN + self.key_len;
        &rep[v..v + self.value_len]
    }
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
    /// The batch's vLog records, encoded as they will be written; the group
    /// commit leader fills in sequence numbers, batch flags and checksums.
    pub(crate) rep: Vec<u8>,
    pub(crate) ops: Vec<BatchOp>,
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
        self.rep.clear();
    }

    /// Bytes the batch's records take in the vLog.
    pub(crate) fn bytes(&self) -> usize {
        self.rep.len()
    }

    fn push(&mut self, table: u32, is_put: bool, key: &[u8], value: &[u8]) -> &mut Self {
        let offset = crate::vlog::record::encode_unsealed(&mut self.rep, is_put, table, key, value);
        self.ops.push(BatchOp {
            offset,
            table,
            is_put,
            key_len: key.len(),
            value_len: value.len(),
        });
        self
    }
}
