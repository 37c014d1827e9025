//! [`Table`]: a named keyspace of a database, ordered or unordered, with
//! the same read and write methods as [`Db`].

use crate::batch::WriteBatch;
use crate::db::Db;
use crate::engine::{Fetch, ReadHow, Scan, UnorderedScan, Walk};
use crate::error::{Error, Result};
use crate::iter::{prefix_bounds, Entries, Iter, KeyRange, Keys};
use crate::options::{TableKind, WriteOptions};
use crate::stats::TableStats;
use crate::value::Value;
use std::ops::Bound;
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

    /// Deletes every key of this table in `range` as one record, however
    /// many keys it covers (a range tombstone: reads, iterators and
    /// snapshots taken after it see none of them; compaction drops what it
    /// covers, and GC reclaims their values).
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.default_table();
    /// for i in 0..100u32 {
    ///     t.put(i.to_be_bytes(), b"v")?;
    /// }
    /// t.delete_range(10u32.to_be_bytes()..90u32.to_be_bytes())?;
    /// assert_eq!(t.keys().count(), 20);
    /// assert!(t.get(50u32.to_be_bytes())?.is_none());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::put`]; `Unsupported` on an unordered table (it has no key
    /// order).
    pub fn delete_range(&self, range: impl KeyRange) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete_range_in(self, range);
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

    /// Whether `key` has a value in this table, from the index alone (no
    /// vLog read).
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.put(b"a", b"1")?;
    /// assert!(db.contains_key(b"a")?);
    /// assert!(!db.contains_key(b"b")?);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::get`], less the vLog's.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.value_len(key)?.is_some())
    }

    /// The length of `key`'s value as it was written (`None` when the key
    /// has no value), from the index alone: the pointer to a value in the
    /// vLog carries its length, so no vLog read.
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.put(b"a", vec![1u8; 5000])?;
    /// assert_eq!(db.value_len(b"a")?, Some(5000));
    /// assert_eq!(db.value_len(b"b")?, None);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::get`], less the vLog's.
    pub fn value_len(&self, key: impl AsRef<[u8]>) -> Result<Option<u32>> {
        self.db.engine().value_len(self.id, key.as_ref(), None)
    }

    /// Every live key of this table, without reading a value: in key order
    /// (from either end) for an ordered table, in no particular order for
    /// an unordered one (a copy of the keydir's keys taken at the call,
    /// Bitcask's `list_keys`).
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.table("t", TableOptions::unordered())?;
    /// t.put(b"b", b"2")?;
    /// t.put(b"a", b"1")?;
    /// t.delete(b"b")?;
    /// let keys: Vec<Vec<u8>> = t.keys().collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"a".to_vec()]);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn keys(&self) -> Keys {
        self.range_keys(..)
    }

    /// The keys of this table in `range`, without reading a value (see
    /// [`Keys`]). On an unordered table only the full range `..` is
    /// possible; any other yields one `Err(Error::Unsupported(..))`.
    pub fn range_keys(&self, range: impl KeyRange) -> Keys {
        Keys::new(self.walk_at(None, range.into_bounds(), "a range scan", Fetch::Lazy))
    }

    /// The keys of this table that start with `prefix`, without reading a
    /// value. On an unordered table the iterator yields one
    /// `Err(Error::Unsupported(..))`.
    pub fn prefix_keys(&self, prefix: impl AsRef<[u8]>) -> Keys {
        Keys::new(self.walk_at(
            None,
            prefix_bounds(prefix.as_ref()),
            "a prefix scan",
            Fetch::Lazy,
        ))
    }

    /// The entries of this table in `range` as [`crate::Entry`] guards,
    /// each value read only when asked for. On an unordered table only the
    /// full range `..` is possible.
    pub fn entries(&self, range: impl KeyRange) -> Entries {
        Entries::new(self.walk_at(None, range.into_bounds(), "a range scan", Fetch::Lazy))
    }

    /// The entries of this table whose keys start with `prefix`, each value
    /// read only when asked for.
    pub fn prefix_entries(&self, prefix: impl AsRef<[u8]>) -> Entries {
        Entries::new(self.walk_at(
            None,
            prefix_bounds(prefix.as_ref()),
            "a prefix scan",
            Fetch::Lazy,
        ))
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
        // The whole table, in key order (ordered) or the keydir's (unordered).
        for kv in self.iter() {
            if !take(kv?.1) {
                break;
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

    /// Iterates this table over `range`, the values of each window read in
    /// one batch. On an unordered table only the full range `..` is
    /// possible (in no order); any other yields one
    /// `Err(Error::Unsupported(..))`.
    pub fn range(&self, range: impl KeyRange) -> Iter {
        self.scan_at(None, range, "a range scan")
    }

    /// Iterates the keys of this table that start with `prefix`. On an
    /// unordered table the iterator yields one `Err(Error::Unsupported(..))`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        Iter::new(self.walk_at(
            None,
            prefix_bounds(prefix.as_ref()),
            "a prefix scan",
            Fetch::Values,
        ))
    }

    /// Iterates the whole table: in key order for an ordered table, in no
    /// order for an unordered one (its keydir as it is at the call, the
    /// values read a window at a time in one batch).
    pub fn iter(&self) -> Iter {
        self.range(..)
    }

    /// An iterator over `range` at sequence number `seq` (a snapshot's; the
    /// newest for `None`), or one that yields `Error::Unsupported` (naming
    /// `what`) where the table cannot do it.
    pub(crate) fn scan_at(&self, seq: Option<u64>, range: impl KeyRange, what: &str) -> Iter {
        Iter::new(self.walk_at(seq, range.into_bounds(), what, Fetch::Values))
    }

    /// The walk behind every iterator: the merged walk of an ordered table,
    /// the keydir walk of an unordered one (the newest state and the full
    /// range only), or one that yields `Error::Unsupported` naming `what`.
    pub(crate) fn walk_at(
        &self,
        seq: Option<u64>,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        what: &str,
        fetch: Fetch,
    ) -> Walk {
        self.walk_with(seq, bounds, what, fetch, ReadHow::DEFAULT)
    }

    /// A walk that yields `err` once.
    pub(crate) fn failed_walk(&self, err: Error) -> Walk {
        Walk::Sorted(Box::new(Scan::failed(
            self.db.engine().clone(),
            self.id,
            err,
        )))
    }

    /// [`Table::walk_at`], reading as `how` says.
    pub(crate) fn walk_with(
        &self,
        seq: Option<u64>,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        what: &str,
        fetch: Fetch,
        how: ReadHow,
    ) -> Walk {
        let e = self.db.engine().clone();
        if let Err(err) = e.check_table(self.id) {
            return Walk::Sorted(Box::new(Scan::failed(e, self.id, err)));
        }
        if self.kind == TableKind::Ordered {
            let scan = Scan::new(e, self.id, seq, bounds, fetch).with_how(how);
            return Walk::Sorted(Box::new(scan));
        }
        let full = matches!(bounds, (Bound::Unbounded, Bound::Unbounded));
        let err = if full {
            match UnorderedScan::new(e.clone(), self.id, seq, fetch) {
                Some(u) => return Walk::Unordered(u.with_verify(how.verify_checksums)),
                None => Error::InvalidArgument(format!("table {} has no keydir", self.name)),
            }
        } else {
            self.unsupported(what)
                .unwrap_or_else(|| Error::Unsupported(what.into()))
        };
        Walk::Sorted(Box::new(Scan::failed(e, self.id, err)))
    }
}
