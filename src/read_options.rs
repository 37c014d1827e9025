//! [`ReadOptions`]: how one read goes about it, the way rust-rocksdb's
//! `ReadOptions` does (a snapshot to read at, whether to fill the block
//! cache, whether to check checksums), taken by the `*_opt` reads of [`Table`] and [`Db`].

use crate::db::Db;
use crate::engine::{Fetch, ReadHow};
use crate::error::{Error, Result};
use crate::iter::{Iter, KeyRange};
use crate::snapshot::Snapshot;
use crate::table::Table;
use crate::value::Value;

/// Options of one read: [`Table::get_opt`], [`Table::multi_get_opt`],
/// [`Table::range_opt`] (and the default table's on [`Db`]).
///
/// ```
/// use wisckey::{Db, Options, ReadOptions};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put(b"a", b"1")?;
/// let snap = db.snapshot();
/// db.put(b"a", b"2")?;
/// // A one-off scan at the snapshot that leaves the block cache alone.
/// let ro = ReadOptions::default().snapshot(&snap).fill_cache(false);
/// assert_eq!(db.get_opt(b"a", &ro)?.as_deref(), Some(&b"1"[..]));
/// let all: Vec<_> = db.range_opt(.., &ro).collect::<Result<_, _>>()?;
/// assert_eq!(all.len(), 1);
/// # Ok::<(), wisckey::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions<'a> {
    snapshot: Option<&'a Snapshot>,
    fill_cache: bool,
    verify_checksums: bool,
}

impl Default for ReadOptions<'_> {
    fn default() -> Self {
        ReadOptions {
            snapshot: None,
            fill_cache: true,
            verify_checksums: true,
        }
    }
}

impl<'a> ReadOptions<'a> {
    /// Reads at `snapshot` instead of the newest state. Default: none (the
    /// newest state when the read starts). The snapshot must be of the
    /// same database (else the read fails with `InvalidArgument`).
    #[must_use]
    pub fn snapshot(mut self, snapshot: &'a Snapshot) -> Self {
        self.snapshot = Some(snapshot);
        self
    }

    /// Whether SSTable data blocks read from their files go into the block
    /// cache. Default: true. `false` still uses blocks that are cached, but
    /// does not insert what it reads: for a one-off scan that should not
    /// push out what other reads use.
    #[must_use]
    pub fn fill_cache(mut self, fill: bool) -> Self {
        self.fill_cache = fill;
        self
    }

    /// Whether the checksum of each vLog record read is checked. Default:
    /// true. `false` skips the CRC-32 over the record (its header, lengths,
    /// table and key are still checked, so a pointer to the wrong record is
    /// still `Corruption`): for reads of large values where the CPU matters
    /// more than catching a flipped bit. SSTable blocks are always checked
    /// when read from their files (and then kept in the block cache).
    #[must_use]
    pub fn verify_checksums(mut self, verify: bool) -> Self {
        self.verify_checksums = verify;
        self
    }

    /// The sequence number to read at (`None`: the newest), after checking
    /// that the snapshot belongs to `db`.
    fn seq_for(&self, db: &Db) -> Result<Option<u64>> {
        match self.snapshot {
            Some(s) if !s.is_of(db) => Err(Error::InvalidArgument(
                "ReadOptions::snapshot is a snapshot of another database".into(),
            )),
            Some(s) => Ok(Some(s.sequence())),
            None => Ok(None),
        }
    }

    fn how(&self) -> ReadHow {
        ReadHow {
            fill_cache: self.fill_cache,
            verify_checksums: self.verify_checksums,
        }
    }
}

impl Table {
    /// [`Table::get`] with read options.
    ///
    /// # Errors
    /// As [`Table::get`]; `InvalidArgument` for a snapshot of another
    /// database.
    pub fn get_opt(&self, key: impl AsRef<[u8]>, opts: &ReadOptions<'_>) -> Result<Option<Value>> {
        let seq = opts.seq_for(self.db())?;
        self.db()
            .engine()
            .get_how(self.id(), key.as_ref(), seq, opts.how())
    }

    /// [`Table::multi_get`] with read options.
    ///
    /// # Errors
    /// As [`Table::get_opt`].
    pub fn multi_get_opt<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        opts: &ReadOptions<'_>,
    ) -> Result<Vec<Option<Value>>> {
        let seq = opts.seq_for(self.db())?;
        self.db()
            .engine()
            .multi_get_how(self.id(), keys, seq, opts.how())
    }

    /// [`Table::range`] with read options (an error in them is the
    /// iterator's first item).
    pub fn range_opt(&self, range: impl KeyRange, opts: &ReadOptions<'_>) -> Iter {
        match opts.seq_for(self.db()) {
            Ok(seq) => Iter::new(self.walk_with(
                seq,
                range.into_bounds(),
                "a range scan",
                Fetch::Values,
                opts.how(),
            )),
            Err(e) => Iter::new(self.failed_walk(e)),
        }
    }
}

impl Db {
    /// [`Db::get`] with read options (see [`Table::get_opt`]).
    pub fn get_opt(&self, key: impl AsRef<[u8]>, opts: &ReadOptions<'_>) -> Result<Option<Value>> {
        self.default_table().get_opt(key, opts)
    }

    /// [`Db::multi_get`] with read options (see [`Table::multi_get_opt`]).
    pub fn multi_get_opt<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        opts: &ReadOptions<'_>,
    ) -> Result<Vec<Option<Value>>> {
        self.default_table().multi_get_opt(keys, opts)
    }

    /// [`Db::range`] with read options (see [`Table::range_opt`]).
    pub fn range_opt(&self, range: impl KeyRange, opts: &ReadOptions<'_>) -> Iter {
        self.default_table().range_opt(range, opts)
    }
}
