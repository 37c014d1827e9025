//! [`Table`]: a named keyspace of a database, ordered or unordered, with
//! the same read and write methods as [`Db`].

use crate::batch::WriteBatch;
use crate::db::Db;
use crate::engine::Scan;
use crate::error::{Error, Result};
use crate::iter::{prefix_bounds, Iter, KeyRange};
use crate::options::{TableKind, WriteOptions};
use crate::value::Value;
use std::sync::Arc;

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

    /// Trains a zstd dictionary from a sample of this table's values and
    /// makes it the one the table's new values are compressed with; returns
    /// its id (its file is `NNNNNN.dict` in the database directory).
    ///
    /// The sample is the first values met (key order for an ordered table,
    /// the keydir's order for an unordered one), up to 4 MiB or 20,000
    /// values of 16 bytes or more; the dictionary is at most 32 KiB (and a
    /// tenth of the sample). Training runs in the caller's thread; writers
    /// go on meanwhile with the codec they had, and switch once the new
    /// dictionary is durable (its file synced, then a manifest edit).
    /// Values written before keep the dictionary they were written with,
    /// which stays until GC has moved every one of them (recompressing
    /// them with the newest dictionary) and no segment uses it. Call it
    /// again later to train from newer values.
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions, ValueCompression};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.table("t", TableOptions::ordered().value_compression(ValueCompression::Zstd { level: 3 }))?;
    /// for i in 0..500 {
    ///     let doc = format!(r#"{{"id":{i},"name":"user{i}","email":"user{i}@example.com","tags":["a","b{}"]}}"#, i % 7);
    ///     t.put(format!("k{i:04}"), doc.repeat(20))?;
    /// }
    /// let id = t.train_dictionary()?;
    /// assert!(db.stats().table_values.iter().any(|s| s.dictionary == Some(id)));
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` when the table does not compress its values
    /// ([`crate::TableOptions::value_compression`]) or has too few values to
    /// train from; read errors; `Io` writing the file or the manifest.
    pub fn train_dictionary(&self) -> Result<u64> {
        const MAX_BYTES: usize = 4 << 20;
        const MAX_VALUES: usize = 20_000;
        let mut samples: Vec<Value> = Vec::new();
        let mut bytes = 0;
        let mut take = |v: Value| {
            if v.len() >= 16 {
                bytes += v.len();
                samples.push(v);
            }
            bytes < MAX_BYTES && samples.len() < MAX_VALUES
        };
        match self.db.engine().keydir_keys(self.id) {
            Some(keys) => {
                'keys: for chunk in keys.chunks(256) {
                    for v in self.multi_get(chunk)?.into_iter().flatten() {
                        if !take(v) {
                            break 'keys;
                        }
                    }
                }
            }
            None => {
                for kv in self.iter() {
                    if !take(kv?.1) {
                        break;
                    }
                }
            }
        }
        self.train_dictionary_from(&samples)
    }

    /// [`Table::train_dictionary`] from values the caller gives (typical
    /// values of the table, such as a sample of the data about to be
    /// loaded) instead of the table's own.
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions, ValueCompression};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.table("t", TableOptions::unordered().value_compression(ValueCompression::Zstd { level: 3 }))?;
    /// let samples: Vec<String> = (0..500)
    ///     .map(|i| format!(r#"{{"id":{i},"kind":"sample","size":{}}}"#, i * 7 % 100))
    ///     .collect();
    /// let id = t.train_dictionary_from(&samples)?;
    /// assert!(db.stats().dictionaries.iter().any(|d| d.id == id));
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::train_dictionary`].
    pub fn train_dictionary_from<S: AsRef<[u8]>>(&self, samples: &[S]) -> Result<u64> {
        let refs: Vec<&[u8]> = samples.iter().map(|v| v.as_ref()).collect();
        self.db.engine().train_dictionary(self.id, &refs)
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
        Iter::new(match self.unsupported(what) {
            Some(err) => Scan::failed(e, self.id, err),
            None => Scan::new(e, self.id, seq, range.into_bounds()),
        })
    }
}
