//! [`Db`]: the handle of an open database. Every method is a thin call into
//! the engine (`crate::engine`), where the write path, the read path and
//! the background work live (docs/architecture.md follows them by name).

use crate::batch::WriteBatch;
use crate::engine::{Engine, GcReport};
use crate::error::Result;
use crate::iter::{prefix_bounds, Iter, KeyRange};
use crate::manifest::{DEFAULT_TABLE, DEFAULT_TABLE_NAME};
use crate::options::{GcOptions, Options, TableKind, TableOptions, WriteOptions};
use crate::snapshot::Snapshot;
use crate::stats::{SegmentStats, SegmentUsage, Stats};
use crate::table::Table;
use crate::value::Value;
use std::path::Path;
use std::sync::Arc;

/// An open database. Cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// ```
/// use wisckey::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put(b"key", b"value")?;
/// assert_eq!(db.get(b"key")?.as_deref(), Some(&b"value"[..]));
/// db.delete(b"key")?;
/// assert!(db.get(b"key")?.is_none());
/// db.close()?;
/// # Ok::<(), wisckey::Error>(())
/// ```
#[derive(Clone)]
pub struct Db {
    // Dropped first: the last user handle stops the workers (waiting for the
    // one at work), so that the directory is unlocked once the handles are gone.
    _guard: Arc<HandleGuard>,
    engine: Arc<Engine>,
}

/// Shuts the database down when the last user handle goes.
struct HandleGuard(Arc<Engine>);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.engine.dir())
            .finish()
    }
}

impl Db {
    /// Opens the database in `path`, creating the directory and an empty
    /// database when missing, and recovering after a crash: the manifest
    /// first, then the vLog from the replay point.
    ///
    /// # Errors
    /// `Error::Locked` when another handle (in this process or another) has
    /// the directory; `Error::Corruption` when files are damaged beyond a torn
    /// tail; `Error::Io` for I/O failures; `Error::Unsupported` for
    /// `IoBackend::IoUring` where the kernel (or a seccomp filter) refuses
    /// io_uring.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let engine = Engine::open(path.as_ref(), opts)?;
        Ok(Db {
            _guard: Arc::new(HandleGuard(engine.clone())),
            engine,
        })
    }

    /// Opens the existing database in `path` read-only: `Db::open` with
    /// [`Options::read_only`] set. Nothing in the directory is written,
    /// created or removed, and every write returns `Error::ReadOnly`.
    ///
    /// # Errors
    /// `Error::InvalidArgument` when `path` holds no database;
    /// `Error::Locked` while a writer has it open; as [`Db::open`]
    /// otherwise.
    pub fn open_read_only(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Db::open(path, opts.read_only(true))
    }

    /// The engine behind this handle.
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The directory of this database.
    pub fn path(&self) -> &Path {
        self.engine.dir()
    }

    /// The default table, as a [`Table`] handle.
    pub fn default_table(&self) -> Table {
        Table::new(
            self.clone(),
            DEFAULT_TABLE,
            DEFAULT_TABLE_NAME,
            TableKind::Ordered,
        )
    }

    /// Opens the table `name`, creating it (durably) when missing.
    ///
    /// An ordered table ([`TableOptions::ordered`]) keeps its keys sorted in
    /// the LSM-tree: point reads and range scans. An unordered table
    /// ([`TableOptions::unordered`]) keeps them in a Bitcask-style in-memory
    /// hash index (the keydir): point reads with no index I/O at all, every
    /// value in the vLog, but no range scans and no snapshot reads (those
    /// return `Error::Unsupported`), and its keys must fit in memory.
    ///
    /// ```
    /// use wisckey::{Db, Error, Options, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let blobs = db.table("blobs", TableOptions::unordered())?;
    /// blobs.put(b"k", vec![1u8; 10_000])?;
    /// assert_eq!(blobs.get(b"k")?.unwrap().len(), 10_000);
    /// assert!(matches!(blobs.range(..).next(), Some(Err(Error::Unsupported(_)))));
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` when the table exists with another kind or
    /// the name is empty or longer than 255 bytes.
    pub fn table(&self, name: &str, opts: TableOptions) -> Result<Table> {
        let id = self.engine.open_table(name, opts.kind)?;
        if let Some(c) = opts.value_compression {
            self.engine.set_value_compression(id, c)?;
        }
        Ok(Table::new(self.clone(), id, name, opts.kind))
    }

    /// The named tables with their kinds, in creation order (the default
    /// table, ordered, is not listed).
    pub fn table_kinds(&self) -> Vec<(String, TableKind)> {
        self.engine.table_kinds()
    }

    /// The names of the named tables (the default table is not listed).
    pub fn table_names(&self) -> Vec<String> {
        self.table_kinds().into_iter().map(|(n, _)| n).collect()
    }

    /// Sets `key` to `value` in the default table. The write survives a
    /// process crash once this returns (not power loss: see [`Db::write`]).
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a key or value over the limits, or once
    /// the database is closed; `Error::Io` when the vLog write (or sync)
    /// fails, which poisons the database; `Error::Poisoned` for every write
    /// after that.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b, WriteOptions::default())
    }

    /// Deletes `key` from the default table (no error if it is missing).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(b, WriteOptions::default())
    }

    /// Applies `batch` atomically: after a crash either all of it or none of
    /// it is there. With `opts.sync(true)` it is durable against power loss
    /// when this returns.
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a key or value over the limits, or once
    /// the database is closed; `Error::Io` when the vLog write (or sync)
    /// fails, which poisons the database; `Error::Poisoned` for every write
    /// after that.
    pub fn write(&self, batch: WriteBatch, opts: WriteOptions) -> Result<()> {
        self.engine.write(batch.into_records(), opts.sync)
    }

    /// The value of `key` in the default table.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        self.engine.get(DEFAULT_TABLE, key.as_ref(), None)
    }

    /// The values of `keys`, in order, read at one moment.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Value>>> {
        self.engine.multi_get(DEFAULT_TABLE, keys, None)
    }

    /// Iterates the default table over `range`, keys ascending (double-ended).
    pub fn range(&self, range: impl KeyRange) -> Iter {
        self.default_table().range(range)
    }

    /// Iterates the keys of the default table that start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.range(prefix_bounds(prefix.as_ref()))
    }

    /// Iterates the whole default table.
    pub fn iter(&self) -> Iter {
        self.range(..)
    }

    /// A consistent view of every table as of now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.clone())
    }

    /// Freezes the memtable and waits until every frozen memtable is in an
    /// SSTable (and the replay point has moved past it).
    ///
    /// # Errors
    /// `Error::Poisoned` when background work failed;
    /// `Error::InvalidArgument` once the database is closed.
    pub fn flush(&self) -> Result<()> {
        self.engine.flush()
    }

    /// Waits until background work has settled: no frozen memtable waits for
    /// flush and no level needs compaction (writes going on meanwhile may
    /// keep it from settling; call it when they are done).
    ///
    /// # Errors
    /// `Error::Poisoned` when background work failed.
    pub fn wait_for_background(&self) -> Result<()> {
        self.engine.wait_for_background()
    }

    /// Makes every acknowledged write durable against power loss.
    ///
    /// # Errors
    /// `Error::Io` when the sync fails (which poisons the database);
    /// `Error::Poisoned` once poisoned: after a failed fsync, a later one
    /// that succeeds would prove nothing; `Error::InvalidArgument` once
    /// closed.
    pub fn sync(&self) -> Result<()> {
        self.engine.sync()
    }

    /// Flushes, then merges every SSTable into the last level (one sorted
    /// run, without versions no snapshot needs and without tombstones), and
    /// waits.
    pub fn compact(&self) -> Result<()> {
        self.engine.compact()
    }

    /// Runs one GC pass and waits: picks sealed vLog segments (by
    /// `opts`' policy, or all of them), moves the values the index still
    /// points at to the GC head in key order, and retires the segments.
    ///
    /// ```
    /// use wisckey::{Db, GcOptions, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default().segment_size(64 << 10))?;
    /// for round in 0..3 {
    ///     for i in 0..50u32 {
    ///         db.put(i.to_be_bytes(), vec![round as u8; 4096])?;
    ///     }
    /// }
    /// db.compact()?; // compaction finds the overwritten values: garbage
    /// let report = db.gc(GcOptions::default().max_segments(8))?;
    /// assert!(report.bytes_freed > 0);
    /// assert_eq!(&db.get(7u32.to_be_bytes())?.unwrap()[..], &[2u8; 4096][..]);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::Poisoned` (a failed sync on the way poisons the database),
    /// `Error::Corruption` for a damaged segment, `Error::Io`.
    pub fn gc(&self, opts: GcOptions) -> Result<GcReport> {
        self.engine.gc(&opts)
    }

    /// The exact live bytes of every vLog segment, oldest first: a walk of
    /// the whole index (keys and pointers only, no value read) and of the
    /// keydirs, next to what the discard statistics say. Costs a read of
    /// every SSTable's keys; works read-only.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = wisckey::Db::open(dir.path(), wisckey::Options::default())?;
    /// db.put(b"k", vec![7u8; 4096])?;
    /// let usage = db.segment_usage()?;
    /// assert_eq!(usage.iter().map(|s| s.live_records).sum::<u64>(), 1);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn segment_usage(&self) -> Result<Vec<SegmentUsage>> {
        self.engine.segment_usage()
    }

    /// Counters and sizes: bytes written by component, amplification, levels,
    /// vLog segments with their garbage.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// Each live vLog segment with its size and garbage bytes (the discard
    /// statistics that compaction keeps, persisted in the manifest).
    pub fn segment_stats(&self) -> Vec<SegmentStats> {
        self.engine.segment_stats()
    }

    /// Stops background work and syncs the vLog. Other clones of this handle
    /// can still read; their writes fail with `Error::InvalidArgument` ("the
    /// database is closed"). Dropping the last handle does the same,
    /// ignoring errors.
    ///
    /// # Errors
    /// `Error::Io` when the sync fails; `Error::Poisoned` on a poisoned
    /// database (nothing is synced then).
    pub fn close(self) -> Result<()> {
        self.engine.close()
    }
}
