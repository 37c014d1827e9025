//! [`Db`]: the handle of an open database. Every method is a thin call into
//! the engine (`crate::engine`), where the write path, the read path and
//! the background work live (docs/architecture.md follows them by name).

use crate::batch::WriteBatch;
use crate::engine::{Engine, GcReport};
use crate::error::Result;
use crate::iter::{prefix_bounds, Entries, Iter, KeyRange, Keys};
use crate::manifest::{DEFAULT_TABLE, DEFAULT_TABLE_NAME};
use crate::options::{
    CheckpointOptions, GcOptions, Options, TableKind, TableOptions, WriteOptions,
};
use crate::snapshot::Snapshot;
use crate::stats::{CheckpointInfo, SegmentStats, SegmentUsage, Stats};
use crate::table::{Table, TableInfo};
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
    /// assert!(matches!(blobs.range(b"a".to_vec()..).next(), Some(Err(Error::Unsupported(_)))));
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

    /// The named tables, in creation order, each with its name and kind
    /// (the default table, ordered, is not listed; a dropped table is gone
    /// from the list as soon as [`Db::drop_table`] returns).
    ///
    /// ```
    /// use wisckey::{Db, Options, TableKind, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.table("users", TableOptions::ordered())?;
    /// db.table("blobs", TableOptions::unordered())?;
    /// let tables = db.tables();
    /// assert_eq!(tables[0].name, "users");
    /// assert_eq!(tables[1].kind, TableKind::Unordered);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn tables(&self) -> Vec<TableInfo> {
        self.table_kinds()
            .into_iter()
            .map(|(name, kind)| TableInfo { name, kind })
            .collect()
    }

    /// Drops the table `name`: durable when this returns (one synced
    /// manifest edit), however much the table holds.
    ///
    /// From then on the table's entries are dead: reads never see them
    /// again, compaction drops them from the SSTables (as keys hidden by a
    /// tombstone: [`Db::compact`] drops them all at once, background
    /// compaction as it reaches their files), GC counts their vLog records
    /// as garbage, and an open never replays them. An unordered table's
    /// keydir is freed at once and its records count as garbage at once. The
    /// space comes back as compaction and GC run.
    ///
    /// The name is free at once: `db.table(name, ..)` afterwards makes a
    /// new, empty table (of either kind) with a new id. A [`Table`] handle
    /// opened before the drop fails every call with
    /// `Error::InvalidArgument` ("table NAME was dropped"), as does an
    /// iterator made from it; an iterator made before the drop goes on over
    /// the view it started with. A write racing with the drop either lands
    /// before it (and is dropped with the table) or fails.
    ///
    /// ```
    /// use wisckey::{Db, Error, Options, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.table("t", TableOptions::ordered())?;
    /// t.put(b"k", b"v")?;
    /// db.drop_table("t")?;
    /// assert!(matches!(t.get(b"k"), Err(Error::InvalidArgument(_))));
    /// let t = db.table("t", TableOptions::unordered())?; // a new, empty table
    /// assert!(t.get(b"k")?.is_none());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` for the default table or a name with no
    /// table, or once the database is closed; `Error::ReadOnly`;
    /// `Error::Io` when the manifest write fails (which poisons the
    /// database); `Error::Poisoned`.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        self.engine.drop_table(name)
    }

    /// Makes a checkpoint of the whole database in `dir`: a consistent,
    /// openable copy of it at one moment (every write acknowledged before
    /// the call, none that starts after it returns), made while writers,
    /// flushes, compactions and GC go on. See [`Db::checkpoint_with`].
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let out = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.put(b"k", vec![1u8; 4096])?;
    /// let info = db.checkpoint(out.path().join("cp"))?;
    /// db.put(b"k", b"after")?; // not in the checkpoint
    /// let copy = Db::open(out.path().join("cp"), Options::default())?;
    /// assert_eq!(copy.get(b"k")?.unwrap().len(), 4096);
    /// assert!(info.last_sequence >= 1);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Db::checkpoint_with`].
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<CheckpointInfo> {
        self.checkpoint_with(dir, CheckpointOptions::default())
    }

    /// A checkpoint of the tables `names` only (and the default table,
    /// which cannot be dropped): [`Db::checkpoint_with`] with
    /// [`CheckpointOptions::tables`]. The other tables are dropped in the
    /// copy's manifest: their data is dead there, and the copy's compaction
    /// and GC reclaim it (the files are linked whole either way).
    ///
    /// # Errors
    /// As [`Db::checkpoint_with`]; `Error::InvalidArgument` for a name that
    /// is not a table.
    pub fn checkpoint_tables(
        &self,
        dir: impl AsRef<Path>,
        names: &[&str],
    ) -> Result<CheckpointInfo> {
        self.checkpoint_with(
            dir,
            CheckpointOptions::default().tables(names.iter().copied()),
        )
    }

    /// Makes a checkpoint in `dir` (which must not exist, or be empty).
    ///
    /// What it holds: exactly the writes with sequence numbers up to
    /// [`CheckpointInfo::last_sequence`], the moment being one where the
    /// commit lock and the manifest lock are both held. They are held only
    /// to read the state (no I/O): a group commit waits for them as long
    /// as for a manifest switch, never for the copying.
    ///
    /// How: SSTables, sealed vLog segments (user and GC) and their hint
    /// files are hard-linked (nothing writes them in place, so the source
    /// and the copy share them safely); the user vLog head is copied up to
    /// the captured offset and GC's head up to the GC head the manifest
    /// records; a fresh manifest and `CURRENT` describe the captured
    /// state. Nothing is flushed: the copy's replay point is the
    /// source's, and its open replays the copied vLog tail into its
    /// memtable. A hard link that fails (another file system, a file
    /// system without links) turns into a copy, as does every file with
    /// [`CheckpointOptions::hard_links`]`(false)`. Every file the
    /// checkpoint names stays on disk until it is done (GC and compaction
    /// cannot delete them meanwhile). Every copy and the directory are
    /// synced before this returns: the checkpoint survives a power loss.
    /// A failed checkpoint removes what it made (and the directory, if it
    /// made it).
    ///
    /// The copy is an ordinary database: open it (read-write or read-only),
    /// move it, ship its files. It shares inodes with the source when
    /// linked, so the space of those files is freed only when both let go.
    ///
    /// # Errors
    /// `Error::InvalidArgument` when `dir` exists and is not empty, or is
    /// the database's own directory, or once the database is closed;
    /// `Error::Poisoned` on a poisoned database (what its files hold after
    /// a failed write is not known); `Error::Io` when a file cannot be made.
    pub fn checkpoint_with(
        &self,
        dir: impl AsRef<Path>,
        opts: CheckpointOptions,
    ) -> Result<CheckpointInfo> {
        self.engine
            .checkpoint(dir.as_ref(), &opts, false)
            .map(|(info, _)| info)
    }

    /// [`Db::checkpoint_with`], also returning a snapshot registered at the
    /// checkpoint's sequence number under the same locks (so that a test
    /// can compare the two exactly). Only with the `testing` feature.
    ///
    /// # Errors
    /// As [`Db::checkpoint_with`].
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn checkpoint_with_snapshot(
        &self,
        dir: impl AsRef<Path>,
        opts: CheckpointOptions,
    ) -> Result<(CheckpointInfo, Snapshot)> {
        let (info, seq) = self.engine.checkpoint(dir.as_ref(), &opts, true)?;
        let seq = seq.ok_or_else(|| {
            crate::error::Error::InvalidArgument("no snapshot was registered".into())
        })?;
        Ok((info, Snapshot::registered(self.clone(), seq)))
    }

    /// Replaces the contents of table `name` with those of the table of the
    /// same name in the checkpoint in `checkpoint_dir` (made by
    /// [`Db::checkpoint`] or [`Db::checkpoint_tables`], here or on another
    /// machine), atomically: the table becomes what it is in the
    /// checkpoint, of its kind there, and is created when missing. Returns
    /// the number of entries installed. The checkpoint is only read (it is
    /// opened read-only and may be removed afterwards).
    ///
    /// What readers see: a handle opened by name ([`Db::table`]) after this
    /// returns reads the new contents; one opened before reads the old
    /// contents until the swap and then fails every call with
    /// `Error::InvalidArgument` ("table NAME was dropped (or replaced)"):
    /// open it again. An iterator made before the swap goes on over the old
    /// contents to its end. No reader ever sees a mix of the two. (A
    /// [`Snapshot`] reads through the handle it is given: with one opened
    /// after the swap it sees the new contents, whenever it was taken.)
    /// Writes to the table while the replace runs land in the old contents
    /// and are gone with them.
    ///
    /// What it costs: it is a logical copy. Every live entry of the table
    /// in the checkpoint is read and written again, in batches of about
    /// 1 MiB, into a new hidden table (so the vLog grows by the table's
    /// live bytes plus 25 bytes a record, and flushes and compactions index
    /// them), the vLog is synced, and one manifest edit drops the old table
    /// and gives its name to the new one. The old contents become garbage
    /// that compaction and GC reclaim. A crash before the swap leaves the
    /// old table as it was (the hidden one is dropped at the next open).
    ///
    /// This is the install half of a state-machine snapshot (the cluster's
    /// use): the sender takes `checkpoint_tables(dir, &["state"])` and
    /// ships the directory's files; the receiver calls
    /// `replace_table("state", dir)`.
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions};
    /// # let a = tempfile::tempdir().unwrap();
    /// # let b = tempfile::tempdir().unwrap();
    /// # let cp = tempfile::tempdir().unwrap();
    /// let leader = Db::open(a.path(), Options::default())?;
    /// leader.table("state", TableOptions::ordered())?.put(b"k", b"new")?;
    /// leader.checkpoint_tables(cp.path().join("snap"), &["state"])?;
    ///
    /// let follower = Db::open(b.path(), Options::default())?;
    /// follower.table("state", TableOptions::ordered())?.put(b"old", b"x")?;
    /// assert_eq!(follower.replace_table("state", cp.path().join("snap"))?, 1);
    /// let state = follower.table("state", TableOptions::ordered())?;
    /// assert_eq!(state.get(b"k")?.as_deref(), Some(&b"new"[..]));
    /// assert!(state.get(b"old")?.is_none());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` for the default table (it cannot be
    /// dropped), a checkpoint without the table, or a closed database;
    /// what [`Db::open_read_only`] returns for the checkpoint; what writes
    /// return (a failed replace leaves the table as it was).
    pub fn replace_table(&self, name: &str, checkpoint_dir: impl AsRef<Path>) -> Result<u64> {
        self.engine.replace_tables(&[name], checkpoint_dir.as_ref())
    }

    /// [`Db::replace_table`] for several tables at once, swapped in one
    /// manifest edit (a state machine's tables and the table holding its
    /// last applied log id, say): handles opened after the call read every
    /// one of them new; handles opened before read the old contents until
    /// the swap and then all fail; after a crash either all are new or all
    /// old. Returns the number of entries installed over all of them.
    ///
    /// A [`Snapshot`] reads a table by its handle's id: through a handle
    /// opened after the swap it sees the new contents, whenever it was
    /// taken.
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions};
    /// # let a = tempfile::tempdir().unwrap();
    /// # let b = tempfile::tempdir().unwrap();
    /// # let cp = tempfile::tempdir().unwrap();
    /// let leader = Db::open(a.path(), Options::default())?;
    /// leader.table("kv", TableOptions::ordered())?.put(b"k", b"v")?;
    /// leader.table("meta", TableOptions::ordered())?.put(b"applied", 7u64.to_be_bytes())?;
    /// leader.checkpoint_tables(cp.path().join("snap"), &["kv", "meta"])?;
    ///
    /// let follower = Db::open(b.path(), Options::default())?;
    /// assert_eq!(follower.replace_tables(&["kv", "meta"], cp.path().join("snap"))?, 2);
    /// let meta = follower.table("meta", TableOptions::ordered())?;
    /// assert_eq!(meta.get(b"applied")?.as_deref(), Some(&7u64.to_be_bytes()[..]));
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Db::replace_table`]; `Error::InvalidArgument` for a name given
    /// twice.
    pub fn replace_tables(&self, names: &[&str], checkpoint_dir: impl AsRef<Path>) -> Result<u64> {
        self.engine.replace_tables(names, checkpoint_dir.as_ref())
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

    /// Deletes every key of the default table in `range` as one record (see
    /// [`Table::delete_range`]).
    pub fn delete_range(&self, range: impl KeyRange) -> Result<()> {
        self.default_table().delete_range(range)
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

    /// Whether `key` has a value in the default table, from the index
    /// alone (see [`Table::contains_key`]).
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.default_table().contains_key(key)
    }

    /// The length of `key`'s value in the default table, from the index
    /// alone (see [`Table::value_len`]).
    pub fn value_len(&self, key: impl AsRef<[u8]>) -> Result<Option<u32>> {
        self.default_table().value_len(key)
    }

    /// The keys of the default table, ascending, without reading a value
    /// (see [`Keys`]).
    pub fn keys(&self) -> Keys {
        self.default_table().keys()
    }

    /// The keys of the default table in `range`, without reading a value.
    pub fn range_keys(&self, range: impl KeyRange) -> Keys {
        self.default_table().range_keys(range)
    }

    /// The keys of the default table that start with `prefix`, without
    /// reading a value.
    pub fn prefix_keys(&self, prefix: impl AsRef<[u8]>) -> Keys {
        self.default_table().prefix_keys(prefix)
    }

    /// The entries of the default table in `range`, each value read only
    /// when asked for (see [`Entries`]).
    pub fn entries(&self, range: impl KeyRange) -> Entries {
        self.default_table().entries(range)
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
