//! [`Db`] and [`Table`]: opening, the write path (group commit into the vLog,
//! then the memtable), the read path (index, then at most one vLog read),
//! tables, snapshots, flush and compaction scheduling.

use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::gc::GcReport;
use crate::io::{FileLock, Fs};
use crate::iter::{Iter, KeyRange};
use crate::keydir::{KeyEntry, Keydirs, NewRecord};
use crate::lsm::ikey::{self, Kind};
use crate::lsm::memtable::Memtable;
use crate::lsm::version::{TableHandle, Version};
use crate::manifest::{Manifest, ManifestState, TableDef, VersionEdit};
use crate::options::GcOptions;
use crate::options::{Options, TableKind, TableOptions, WriteOptions};
use crate::snapshot::Snapshot;
use crate::stats::{Counters, LevelStats, SegmentStats, Stats};
use crate::value::Value;
use crate::vlog::{record, SegmentKind, SegmentSet, VLog, ValuePointer};
use crate::write_queue::{PendingWrite, WriteQueue};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The id of the default table.
pub(crate) const DEFAULT_TABLE: u32 = 0;
/// A manifest is rewritten (compacted to one snapshot edit) past this size.
const MANIFEST_REWRITE_BYTES: u64 = 64 << 20;

/// What readers need at one moment: the memtables and the tables.
#[derive(Debug)]
pub(crate) struct SuperVersion {
    pub(crate) mem: Arc<Memtable>,
    /// Frozen memtables, newest first.
    pub(crate) imms: Vec<Arc<Memtable>>,
    pub(crate) version: Arc<Version>,
    /// The vLog segments readers of this view resolve pointers through.
    pub(crate) segments: Arc<SegmentSet>,
}

/// The manifest and the state it describes; changed only under its lock.
pub(crate) struct VersionSet {
    pub(crate) manifest: Manifest,
    pub(crate) state: ManifestState,
}

/// The leader's state: the last sequence number handed out.
#[derive(Debug)]
pub(crate) struct CommitState {
    pub(crate) last_seq: u64,
}

/// Messages to the background worker.
#[derive(Debug)]
pub(crate) enum BgMsg {
    Work,
    Stop,
}

/// What the background worker has done, for waiters.
#[derive(Debug, Default)]
pub(crate) struct BgStatus {
    pub(crate) compactions_requested: u64,
    pub(crate) compactions_done: u64,
}

pub(crate) struct DbInner {
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) _lock: Box<dyn FileLock>,
    pub(crate) vlog: VLog,
    pub(crate) sv: RwLock<Arc<SuperVersion>>,
    pub(crate) vs: Mutex<VersionSet>,
    pub(crate) next_file: AtomicU64,
    pub(crate) visible_seq: AtomicU64,
    pub(crate) commit: Mutex<CommitState>,
    pub(crate) queue: WriteQueue,
    pub(crate) snapshots: Mutex<BTreeMap<u64, usize>>,
    pub(crate) poison: Mutex<Option<String>>,
    pub(crate) poisoned: AtomicBool,
    pub(crate) closed: AtomicBool,
    pub(crate) flush_tx: Sender<BgMsg>,
    pub(crate) flush_rx: Receiver<BgMsg>,
    pub(crate) compact_tx: Sender<BgMsg>,
    pub(crate) compact_rx: Receiver<BgMsg>,
    pub(crate) gc_tx: Sender<BgMsg>,
    pub(crate) gc_rx: Receiver<BgMsg>,
    pub(crate) gc_lock: Mutex<()>,
    pub(crate) bg_threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) bg_status: Mutex<BgStatus>,
    pub(crate) bg_cv: Condvar,
    pub(crate) counters: Counters,
    /// The keydirs of the unordered tables.
    pub(crate) keydirs: Keydirs,
}

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
    pub(crate) inner: Arc<DbInner>,
}

/// Shuts the database down when the last user handle goes.
struct HandleGuard(Arc<DbInner>);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish()
    }
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
        let inner = crate::recovery::open(path.as_ref(), opts)?;
        let db = Db {
            _guard: Arc::new(HandleGuard(inner.clone())),
            inner,
        };
        crate::background::start(&db.inner)?;
        // Frozen memtables left by a long replay, and compactions a crash
        // interrupted, go to the workers now.
        db.inner.wake_workers();
        Ok(db)
    }

    /// The directory of this database.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The default table, as a [`Table`] handle.
    pub fn default_table(&self) -> Table {
        Table {
            db: self.clone(),
            id: DEFAULT_TABLE,
            name: Arc::from("default"),
            kind: TableKind::Ordered,
        }
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
        if name.is_empty() || name.len() > 255 {
            return Err(Error::InvalidArgument(
                "a table name is 1 to 255 bytes".into(),
            ));
        }
        if name == "default" {
            return if opts.kind == TableKind::Ordered {
                Ok(self.default_table())
            } else {
                Err(Error::InvalidArgument(
                    "the default table is ordered".into(),
                ))
            };
        }
        let mut vs = self.inner.vs.lock();
        if let Some(def) = vs.state.tables.iter().find(|t| t.name == name) {
            if def.kind != opts.kind {
                return Err(Error::InvalidArgument(format!(
                    "table {name} exists with another kind"
                )));
            }
            return Ok(Table {
                db: self.clone(),
                id: def.id,
                name: Arc::from(name),
                kind: opts.kind,
            });
        }
        self.inner.check_writable()?;
        let id = vs.state.tables.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        let edit = VersionEdit {
            tables_created: vec![TableDef {
                id,
                name: name.to_string(),
                kind: opts.kind,
            }],
            ..Default::default()
        };
        self.inner.log_and_apply(&mut vs, edit)?;
        if opts.kind == TableKind::Unordered {
            self.inner.keydirs.add_table(id);
        }
        Ok(Table {
            db: self.clone(),
            id,
            name: Arc::from(name),
            kind: opts.kind,
        })
    }

    /// The named tables with their kinds, in creation order (the default
    /// table, ordered, is not listed).
    pub fn table_kinds(&self) -> Vec<(String, TableKind)> {
        self.inner
            .vs
            .lock()
            .state
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.kind))
            .collect()
    }

    /// The names of the named tables (the default table is not listed).
    pub fn table_names(&self) -> Vec<String> {
        self.inner
            .vs
            .lock()
            .state
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    /// Sets `key` to `value` in the default table. The write survives a
    /// process crash once this returns (not power loss: see [`Db::write`]).
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a key or value over the limits;
    /// `Error::Poisoned` after a failed fsync; `Error::Io`.
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
    pub fn write(&self, batch: WriteBatch, opts: WriteOptions) -> Result<()> {
        let inner = &self.inner;
        for op in &batch.ops {
            if op.key_len > inner.opts.max_key_size {
                return Err(Error::InvalidArgument(format!(
                    "key of {} bytes is over the limit of {}",
                    op.key_len, inner.opts.max_key_size
                )));
            }
            if op.value_len > inner.opts.max_value_size {
                return Err(Error::InvalidArgument(format!(
                    "value of {} bytes is over the limit of {}",
                    op.value_len, inner.opts.max_value_size
                )));
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        inner.check_writable()?;
        inner
            .queue
            .write(batch, opts.sync, |group| inner.commit_group(group))
    }

    /// The value of `key` in the default table.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        self.inner
            .get(DEFAULT_TABLE, key.as_ref(), self.inner.read_seq())
    }

    /// The values of `keys`, in order, read at one moment.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Value>>> {
        self.inner
            .multi_get(DEFAULT_TABLE, keys, self.inner.read_seq())
    }

    /// Iterates the default table over `range`, keys ascending (double-ended).
    pub fn range(&self, range: impl KeyRange) -> Iter {
        Iter::new(
            self.inner.clone(),
            DEFAULT_TABLE,
            self.inner.read_seq(),
            range.into_bounds(),
        )
    }

    /// Iterates the keys of the default table that start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        Iter::new(
            self.inner.clone(),
            DEFAULT_TABLE,
            self.inner.read_seq(),
            crate::iter::prefix_bounds(prefix.as_ref()),
        )
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
    pub fn flush(&self) -> Result<()> {
        self.inner.check_open()?;
        {
            let _c = self.inner.commit.lock();
            self.inner.rotate_memtable();
        }
        self.inner.wait_for(|inner| inner.sv.read().imms.is_empty())
    }

    /// Waits until background work has settled: no frozen memtable waits for
    /// flush and no level needs compaction (writes going on meanwhile may
    /// keep it from settling; call it when they are done).
    ///
    /// # Errors
    /// `Error::Poisoned` when background work failed.
    pub fn wait_for_background(&self) -> Result<()> {
        self.inner.wait_for(|inner| {
            let sv = inner.sv.read().clone();
            sv.imms.is_empty()
                && crate::lsm::compaction::scores(&sv.version, &inner.opts)
                    .iter()
                    .take(crate::lsm::compaction::NUM_LEVELS - 1)
                    .all(|&s| s < 1.0)
        })
    }

    /// Makes every acknowledged write durable against power loss.
    pub fn sync(&self) -> Result<()> {
        self.inner.check_open()?;
        let r = self.inner.vlog.sync();
        if let Err(e) = &r {
            self.inner.set_poison(format!("vLog sync failed: {e}"));
        }
        r
    }

    /// Flushes, then merges every SSTable into the last level (one sorted
    /// run, without versions no snapshot needs and without tombstones), and
    /// waits.
    pub fn compact(&self) -> Result<()> {
        self.flush()?;
        let id = {
            let mut st = self.inner.bg_status.lock();
            st.compactions_requested += 1;
            st.compactions_requested
        };
        let _ = self.inner.compact_tx.send(BgMsg::Work);
        self.inner
            .wait_for(|inner| inner.bg_status.lock().compactions_done >= id)
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
        self.inner.gc(&opts)
    }

    /// Counters and sizes: bytes written by component, amplification, levels,
    /// vLog segments with their garbage.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Each live vLog segment with its size and garbage bytes (the discard
    /// statistics that compaction keeps, persisted in the manifest).
    pub fn segment_stats(&self) -> Vec<SegmentStats> {
        self.inner.segment_stats()
    }

    /// Stops background work and syncs the vLog. Other clones of this handle
    /// can still read; their writes fail. Dropping the last handle does the
    /// same, ignoring errors.
    pub fn close(self) -> Result<()> {
        self.inner.shutdown();
        self.inner.vlog.sync()
    }
}

impl Table {
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
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put_in(self, key, value);
        self.db.write(b, WriteOptions::default())
    }
    /// Deletes `key` from this table.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete_in(self, key);
        self.db.write(b, WriteOptions::default())
    }
    /// The value of `key` in this table.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        let inner = &self.db.inner;
        inner.get(self.id, key.as_ref(), inner.read_seq())
    }
    /// The values of `keys`, in order.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Value>>> {
        let inner = &self.db.inner;
        inner.multi_get(self.id, keys, inner.read_seq())
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
        let inner = &self.db.inner;
        match inner.keydirs.table(self.id) {
            Some(kd) => Ok(kd
                .map
                .read()
                .iter()
                .filter(|(_, e)| e.put)
                .map(|(k, _)| k.to_vec())
                .collect()),
            None => self.iter().map(|kv| kv.map(|(k, _)| k)).collect(),
        }
    }

    /// Iterates this table over `range`. On an unordered table the
    /// iterator yields one `Err(Error::Unsupported(..))`.
    pub fn range(&self, range: impl KeyRange) -> Iter {
        let inner = &self.db.inner;
        if let Some(e) = self.unsupported("a range scan") {
            return Iter::failed(inner.clone(), self.id, e);
        }
        Iter::new(
            inner.clone(),
            self.id,
            inner.read_seq(),
            range.into_bounds(),
        )
    }
    /// Iterates the keys of this table that start with `prefix`. On an
    /// unordered table the iterator yields one `Err(Error::Unsupported(..))`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let inner = &self.db.inner;
        if let Some(e) = self.unsupported("a prefix scan") {
            return Iter::failed(inner.clone(), self.id, e);
        }
        Iter::new(
            inner.clone(),
            self.id,
            inner.read_seq(),
            crate::iter::prefix_bounds(prefix.as_ref()),
        )
    }
    /// Iterates the whole table.
    pub fn iter(&self) -> Iter {
        self.range(..)
    }
}

impl DbInner {
    /// The sequence number a new read sees.
    pub(crate) fn read_seq(&self) -> u64 {
        self.visible_seq.load(Ordering::Acquire)
    }

    pub(crate) fn new_file_number(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::InvalidArgument("the database is closed".into()));
        }
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            let msg = self.poison.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned(msg));
        }
        Ok(())
    }

    /// Refuses further writes: after a failed fsync nothing written since
    /// the last good one can be trusted.
    pub(crate) fn set_poison(&self, msg: String) {
        log::error!("{}: poisoned: {msg}", self.dir.display());
        let mut p = self.poison.lock();
        if p.is_none() {
            *p = Some(msg);
        }
        self.poisoned.store(true, Ordering::Release);
        self.bg_cv.notify_all();
    }

    /// Commits a group of batches (called by the group-commit leader).
    fn commit_group(&self, group: &[Arc<PendingWrite>]) {
        let mut cs = self.commit.lock();
        let r = self.commit_group_locked(&mut cs, group);
        for w in group {
            w.finish(match &r {
                Ok(()) => Ok(()),
                Err(e) => Err(e.duplicate()),
            });
        }
    }

    fn commit_group_locked(&self, cs: &mut CommitState, group: &[Arc<PendingWrite>]) -> Result<()> {
        self.check_writable()?;
        self.wait_for_room()?;
        let sync = group.iter().any(|w| w.sync);
        let mut base = self.vlog.head_position();
        let mut rolled = false;
        // Batches bound for the current head segment, written with one write
        // (a lone batch straight from its own buffer).
        let mut pending: Vec<Vec<u8>> = Vec::with_capacity(group.len());
        let mut pending_bytes = 0u64;
        let mut log_bytes = 0u64;
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut seq = cs.last_seq;
        let mut user_bytes = 0u64;
        let mut writes = 0u64;
        // vLog records only the log needs (inline values, tombstones): garbage
        // once their memtable is flushed.
        let mut wal_only: Vec<(u64, u64)> = Vec::new();
        // Records of unordered tables, for the keydirs.
        let mut unordered: Vec<NewRecord> = Vec::new();
        let any_unordered = self.keydirs.any();
        let threshold = self.opts.value_threshold;
        let write_out = |pending: &mut Vec<Vec<u8>>, sync: bool| -> Result<()> {
            let r = match pending.len() {
                0 if !sync => Ok((0, 0)),
                1 => self.vlog.append(&pending[0], sync),
                _ => self.vlog.append(&pending.concat(), sync),
            };
            pending.clear();
            r.map(|_| ()).map_err(|e| {
                self.set_poison(format!("vLog write failed: {e}"));
                e
            })
        };
        for w in group {
            let Some(mut batch) = w.batch.lock().take() else {
                continue;
            };
            let bytes = batch.bytes() as u64;
            let used = base.offset + pending_bytes;
            if used > 0 && used + bytes > self.opts.segment_size {
                write_out(&mut pending, false)?;
                pending_bytes = 0;
                // The sealed segment's unordered records go into its hint.
                self.keydirs.apply_written(std::mem::take(&mut unordered));
                if let Err(e) = self.vlog.roll(self.new_file_number()) {
                    self.set_poison(format!("vLog roll failed: {e}"));
                    return Err(e);
                }
                self.publish_segments();
                self.write_hint(base.segment, used);
                base = self.vlog.head_position();
                rolled = true;
            }
            let at = base.offset + pending_bytes;
            let n = batch.ops.len();
            for (i, op) in batch.ops.iter().enumerate() {
                seq += 1;
                writes += 1;
                user_bytes += (op.key_len + op.value_len) as u64;
                let len = op.len();
                record::seal(&mut batch.rep[op.offset..op.offset + len], seq, i + 1 < n);
                let key = op.key(&batch.rep);
                if any_unordered && self.keydirs.is_unordered(op.table) {
                    // Every value of an unordered table stays in the vLog;
                    // the keydir points at the record.
                    unordered.push(NewRecord {
                        table: op.table,
                        key: key.to_vec(),
                        seq,
                        ptr: ValuePointer {
                            segment: base.segment,
                            offset: at + op.offset as u64,
                            len: len as u32,
                        },
                        put: op.is_put,
                    });
                    continue;
                }
                if !op.is_put || op.value_len < threshold {
                    match wal_only.last_mut() {
                        Some((s, b)) if *s == base.segment => *b += len as u64,
                        _ => wal_only.push((base.segment, len as u64)),
                    }
                }
                let entry = if !op.is_put {
                    (
                        ikey::encode(op.table, key, seq, Kind::Delete as u8),
                        Vec::new(),
                    )
                } else if op.value_len < threshold {
                    (
                        ikey::encode(op.table, key, seq, Kind::Inline as u8),
                        op.value(&batch.rep).to_vec(),
                    )
                } else {
                    let ptr = ValuePointer {
                        segment: base.segment,
                        offset: at + op.offset as u64,
                        len: len as u32,
                    };
                    (
                        ikey::encode(op.table, key, seq, Kind::Pointer as u8),
                        ptr.encode(),
                    )
                };
                entries.push(entry);
            }
            pending_bytes += bytes;
            log_bytes += bytes;
            pending.push(batch.rep);
        }
        write_out(&mut pending, sync)?;
        self.keydirs.apply_written(unordered);
        let sv = self.sv.read().clone();
        for (k, v) in entries {
            sv.mem.insert(k, v);
        }
        sv.mem.add_log_bytes(log_bytes);
        for (seg, bytes) in wal_only {
            sv.mem.add_wal_garbage(seg, bytes);
        }
        cs.last_seq = seq;
        self.visible_seq.store(seq, Ordering::Release);
        let c = &self.counters;
        Counters::add(&c.user_bytes_written, user_bytes);
        Counters::add(&c.writes, writes);
        Counters::add(&c.batches, group.len() as u64);
        Counters::add(&c.group_commits, 1);
        if sync {
            Counters::add(&c.syncs, 1);
        }
        // An empty memtable (only unordered tables written) is frozen at a
        // segment roll, so its flush moves the replay point past the sealed
        // segment and GC may take it.
        if sv.mem.approx_bytes() >= self.opts.memtable_size
            || sv.mem.log_bytes() >= self.opts.max_replay_bytes
            || (rolled && sv.mem.is_empty() && sv.imms.is_empty())
        {
            self.rotate_memtable();
        }
        Ok(())
    }

    /// Writes the hint file of the just sealed `segment` (`len` bytes) from
    /// the unordered records the keydirs listed for it. A failure is only
    /// logged: without its hint a segment is scanned on open.
    pub(crate) fn write_hint(&self, segment: u64, len: u64) {
        if !self.keydirs.any() {
            return;
        }
        let entries = self.keydirs.take_sealed(segment);
        if let Err(e) = crate::vlog::hint::write(&self.fs, &self.dir, segment, len, &entries) {
            log::warn!("{}: hint of segment {segment}: {e}", self.dir.display());
        }
    }

    /// Stalls the leader while too many frozen memtables wait for flush or
    /// too many level-0 files wait for compaction; slows it down a little
    /// when level 0 is getting there.
    fn wait_for_room(&self) -> Result<()> {
        let mut stalled = false;
        loop {
            let (imms, l0) = {
                let sv = self.sv.read();
                (
                    sv.imms.len(),
                    sv.version.levels.first().map_or(0, |l| l.len()),
                )
            };
            if imms < self.opts.max_immutable_memtables && l0 < self.opts.l0_stop_trigger {
                if l0 >= self.opts.l0_slowdown_trigger && !stalled {
                    Counters::add(&self.counters.write_slowdowns, 1);
                    std::thread::sleep(Duration::from_millis(1));
                }
                return Ok(());
            }
            if !stalled {
                stalled = true;
                Counters::add(&self.counters.write_stalls, 1);
            }
            self.wake_workers();
            let mut st = self.bg_status.lock();
            self.check_writable()?;
            self.bg_cv.wait_for(&mut st, Duration::from_millis(50));
        }
    }

    /// Nudges both background workers.
    pub(crate) fn wake_workers(&self) {
        let _ = self.flush_tx.send(BgMsg::Work);
        let _ = self.compact_tx.send(BgMsg::Work);
    }

    /// Freezes the active memtable (caller holds the commit lock).
    ///
    /// An empty memtable that covers vLog bytes (records of unordered
    /// tables) is frozen too: its flush writes no table but moves the replay
    /// point, so that recovery need not read those bytes again and GC may
    /// take their segments.
    pub(crate) fn rotate_memtable(&self) {
        let mut w = self.sv.write();
        if w.mem.is_empty() && w.mem.log_bytes() == 0 {
            return;
        }
        let mem = Arc::new(Memtable::new(self.vlog.head_position()));
        let mut imms = Vec::with_capacity(w.imms.len() + 1);
        imms.push(w.mem.clone());
        imms.extend(w.imms.iter().cloned());
        *w = Arc::new(SuperVersion {
            mem,
            imms,
            version: w.version.clone(),
            segments: w.segments.clone(),
        });
        drop(w);
        let _ = self.flush_tx.send(BgMsg::Work);
    }

    /// Waits (for the background worker) until `done` holds, or fails if the
    /// database is poisoned or closed meanwhile.
    pub(crate) fn wait_for(&self, done: impl Fn(&DbInner) -> bool) -> Result<()> {
        loop {
            if done(self) {
                return Ok(());
            }
            if self.poisoned.load(Ordering::Acquire) {
                let msg = self.poison.lock().clone().unwrap_or_default();
                return Err(Error::Poisoned(msg));
            }
            self.check_open()?;
            self.wake_workers();
            let mut st = self.bg_status.lock();
            self.bg_cv.wait_for(&mut st, Duration::from_millis(50));
        }
    }

    /// Appends `edit` to the manifest and applies it to the state; rewrites
    /// the manifest when it has grown large. A failure poisons the database.
    pub(crate) fn log_and_apply(&self, vs: &mut VersionSet, mut edit: VersionEdit) -> Result<()> {
        edit.next_file_number = Some(self.next_file.load(Ordering::Relaxed) + 1);
        let before = vs.manifest.size();
        if let Err(e) = vs.manifest.append(&edit) {
            self.set_poison(format!("manifest write failed: {e}"));
            return Err(e);
        }
        Counters::add(
            &self.counters.manifest_bytes_written,
            vs.manifest.size().saturating_sub(before),
        );
        vs.state
            .apply(&edit)
            .map_err(|e| Error::corruption(self.dir.join("MANIFEST"), 0, e))?;
        if vs.manifest.size() > MANIFEST_REWRITE_BYTES {
            let number = self.new_file_number();
            vs.state.next_file_number = self.next_file.load(Ordering::Relaxed) + 1;
            match Manifest::create(self.fs.clone(), &self.dir, number, &vs.state) {
                Ok(m) => {
                    Counters::add(&self.counters.manifest_bytes_written, m.size());
                    vs.manifest = m;
                }
                Err(e) => {
                    self.set_poison(format!("manifest rewrite failed: {e}"));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The smallest sequence number a live snapshot (or a new read) can see
    /// at: versions shadowed at or below it are garbage.
    pub(crate) fn smallest_snapshot(&self) -> u64 {
        let snaps = self.snapshots.lock();
        let visible = self.read_seq();
        snaps.keys().next().copied().unwrap_or(visible).min(visible)
    }

    pub(crate) fn get(&self, table: u32, key: &[u8], seq: u64) -> Result<Option<Value>> {
        Counters::add(&self.counters.gets, 1);
        if let Some(kd) = self.keydirs.table(table) {
            let (e, segments) = self
                .keydirs
                .lookup(&kd, key, || self.sv.read().segments.clone());
            return self.read_keydir_entry(&segments, e, table, key);
        }
        let sv = self.sv.read().clone();
        self.get_in(&sv, table, key, seq)
    }

    fn read_keydir_entry(
        &self,
        segments: &SegmentSet,
        e: Option<KeyEntry>,
        table: u32,
        key: &[u8],
    ) -> Result<Option<Value>> {
        match e {
            Some(e) if e.put => {
                Counters::add(&self.counters.vlog_reads, 1);
                self.vlog.read(segments, &e.ptr, table, key).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `multi_get` on an unordered table: the keydir under one hold, then
    /// one batched vLog read.
    fn keydir_multi_get<K: AsRef<[u8]>>(
        &self,
        kd: &crate::keydir::Keydir,
        table: u32,
        keys: &[K],
    ) -> Result<Vec<Option<Value>>> {
        let (found, segments) = self
            .keydirs
            .lookup_many(kd, keys, || self.sv.read().segments.clone());
        let mut out: Vec<Option<Value>> = (0..keys.len()).map(|_| None).collect();
        let wanted: Vec<(usize, ValuePointer)> = found
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.filter(|e| e.put).map(|e| (i, e.ptr)))
            .collect();
        let reqs: Vec<(ValuePointer, u32, &[u8])> = wanted
            .iter()
            .map(|&(i, p)| (p, table, keys[i].as_ref()))
            .collect();
        Counters::add(&self.counters.vlog_reads, reqs.len() as u64);
        for ((i, _), r) in wanted.iter().zip(self.vlog.read_many(&segments, &reqs)) {
            out[*i] = Some(r?);
        }
        Ok(out)
    }

    /// Point reads of `keys` at one sequence number: the index first for
    /// all of them, then the values in the vLog in one batched read.
    pub(crate) fn multi_get<K: AsRef<[u8]>>(
        &self,
        table: u32,
        keys: &[K],
        seq: u64,
    ) -> Result<Vec<Option<Value>>> {
        Counters::add(&self.counters.gets, keys.len() as u64);
        if let Some(kd) = self.keydirs.table(table) {
            return self.keydir_multi_get(&kd, table, keys);
        }
        let sv = self.sv.read().clone();
        let mut out: Vec<Option<Value>> = Vec::with_capacity(keys.len());
        let mut wanted: Vec<(usize, ValuePointer, Vec<u8>)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            out.push(None);
            let Some((ik, v)) = self.lookup(&sv, table, k.as_ref(), seq)? else {
                continue;
            };
            if ikey::kind_byte(&ik) == Kind::Pointer as u8 {
                let ptr = ValuePointer::decode(&v).ok_or_else(|| {
                    Error::corruption(&self.dir, 0, "undecodable value pointer in the index")
                })?;
                wanted.push((i, ptr, ik));
            } else {
                out[i] = self.resolve(&sv.segments, &ik, v)?;
            }
        }
        let reqs: Vec<(ValuePointer, u32, &[u8])> = wanted
            .iter()
            .map(|(_, p, ik)| (*p, ikey::table_id(ik), ikey::user_key(ik)))
            .collect();
        Counters::add(&self.counters.vlog_reads, reqs.len() as u64);
        for ((i, _, _), r) in wanted.iter().zip(self.vlog.read_many(&sv.segments, &reqs)) {
            out[*i] = Some(r?);
        }
        Ok(out)
    }

    fn get_in(&self, sv: &SuperVersion, table: u32, key: &[u8], seq: u64) -> Result<Option<Value>> {
        match self.lookup(sv, table, key, seq)? {
            Some((k, v)) => self.resolve(&sv.segments, &k, v),
            None => Ok(None),
        }
    }

    /// The newest index entry of `(table, key)` visible at `seq`.
    fn lookup(
        &self,
        sv: &SuperVersion,
        table: u32,
        key: &[u8],
        seq: u64,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut up = Vec::with_capacity(4 + key.len());
        up.extend_from_slice(&table.to_be_bytes());
        up.extend_from_slice(key);
        let target = ikey::seek_key(&up, seq);
        if let Some(e) = sv.mem.get(&target) {
            return Ok(Some(e));
        }
        for m in &sv.imms {
            if let Some(e) = m.get(&target) {
                return Ok(Some(e));
            }
        }
        let found = sv.version.get(&target)?;
        let c = &self.counters;
        Counters::add(&c.tables_probed, u64::from(found.tables_probed));
        Counters::add(&c.bloom_skips, u64::from(found.bloom_skips));
        Counters::add(
            &c.bloom_false_positives,
            u64::from(found.bloom_false_positives),
        );
        Counters::add(
            &c.table_reads,
            u64::from(found.tables_probed - found.bloom_skips),
        );
        Ok(found.entry)
    }

    /// Turns an index entry into the value it stands for.
    pub(crate) fn resolve(
        &self,
        segments: &SegmentSet,
        ikey_bytes: &[u8],
        v: Vec<u8>,
    ) -> Result<Option<Value>> {
        match Kind::from_u8(ikey::kind_byte(ikey_bytes)) {
            Some(Kind::Delete) => Ok(None),
            Some(Kind::Inline) => Ok(Some(Value::from(v))),
            Some(Kind::Pointer) => {
                let ptr = ValuePointer::decode(&v).ok_or_else(|| {
                    Error::corruption(&self.dir, 0, "undecodable value pointer in the index")
                })?;
                Counters::add(&self.counters.vlog_reads, 1);
                self.vlog
                    .read(
                        segments,
                        &ptr,
                        ikey::table_id(ikey_bytes),
                        ikey::user_key(ikey_bytes),
                    )
                    .map(Some)
            }
            None => Err(Error::corruption(
                &self.dir,
                0,
                format!(
                    "unknown entry kind {} in the index",
                    ikey::kind_byte(ikey_bytes)
                ),
            )),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let sv = self.sv.read().clone();
        let user = Counters::get(&c.user_bytes_written);
        let vlog_w = self.vlog.bytes_written();
        let gc_w = self.vlog.gc_bytes_written();
        let flush_w = Counters::get(&c.flush_bytes_written);
        let comp_w = Counters::get(&c.compaction_bytes_written);
        let man_w = Counters::get(&c.manifest_bytes_written);
        let ratio = |n: u64| {
            if user == 0 {
                0.0
            } else {
                n as f64 / user as f64
            }
        };
        let scores = crate::lsm::compaction::scores(&sv.version, &self.opts);
        let targets = crate::lsm::compaction::level_targets(&sv.version, &self.opts);
        let levels: Vec<LevelStats> = (0..crate::lsm::compaction::NUM_LEVELS)
            .map(|i| {
                let files = sv.version.levels.get(i).map_or(&[][..], |l| l.as_slice());
                LevelStats {
                    files: files.len() as u64,
                    bytes: files.iter().map(|t| t.meta.size).sum(),
                    target_bytes: if i == 0 { 0 } else { targets.targets[i] },
                    score: scores[i],
                    compaction_bytes_read: Counters::get(&c.level_read[i]),
                    bytes_written: Counters::get(&c.level_written[i]),
                }
            })
            .collect();
        let segments = self.segment_stats();
        Stats {
            io_backend: self.fs.name().to_string(),
            user_bytes_written: user,
            writes: Counters::get(&c.writes),
            batches: Counters::get(&c.batches),
            group_commits: Counters::get(&c.group_commits),
            syncs: Counters::get(&c.syncs),
            vlog_bytes_written: vlog_w,
            flush_bytes_written: flush_w,
            flushes: Counters::get(&c.flushes),
            compaction_bytes_written: comp_w,
            compaction_bytes_read: Counters::get(&c.compaction_bytes_read),
            compactions: Counters::get(&c.compactions),
            manifest_bytes_written: man_w,
            write_amplification: ratio(vlog_w + gc_w + flush_w + comp_w + man_w),
            gc_passes: Counters::get(&c.gc_passes),
            gc_bytes_read: Counters::get(&c.gc_bytes_read),
            gc_bytes_written: gc_w,
            gc_bytes_freed: Counters::get(&c.gc_bytes_freed),
            gc_records_moved: Counters::get(&c.gc_records_moved),
            gc_write_amplification: if vlog_w == 0 {
                0.0
            } else {
                (vlog_w + gc_w) as f64 / vlog_w as f64
            },
            vlog_space_amplification: self.vlog_space_amplification(),
            retired_segments_kept: self.vlog.zombie_count() as u64,
            lsm_write_amplification: ratio(flush_w + comp_w),
            vlog_segments: segments.len() as u64,
            vlog_bytes: segments.iter().map(|s| s.bytes).sum(),
            vlog_garbage_bytes: segments.iter().map(|s| s.garbage_bytes).sum(),
            sst_bytes: levels.iter().map(|l| l.bytes).sum(),
            levels,
            memtable_bytes: sv.mem.approx_bytes() as u64,
            immutable_memtables: sv.imms.len() as u64,
            last_sequence: self.read_seq(),
            unordered_keys: self.keydirs.len(),
            gets: Counters::get(&c.gets),
            tables_probed: Counters::get(&c.tables_probed),
            vlog_reads: Counters::get(&c.vlog_reads),
            write_stalls: Counters::get(&c.write_stalls),
            write_slowdowns: Counters::get(&c.write_slowdowns),
            trivial_moves: Counters::get(&c.trivial_moves),
            table_reads: Counters::get(&c.table_reads),
            bloom_skips: Counters::get(&c.bloom_skips),
            bloom_false_positives: Counters::get(&c.bloom_false_positives),
            segments,
        }
    }

    /// Size and garbage of each live vLog segment, oldest first.
    pub(crate) fn segment_stats(&self) -> Vec<SegmentStats> {
        let discard = self.garbage_by_segment();
        self.vlog
            .segment_sizes()
            .into_iter()
            .map(|(number, kind, bytes)| SegmentStats {
                number,
                gc: kind == SegmentKind::Gc,
                bytes,
                garbage_bytes: discard.get(&number).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Stops the background worker (once).
    pub(crate) fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.flush_tx.send(BgMsg::Stop);
        let _ = self.compact_tx.send(BgMsg::Stop);
        let _ = self.gc_tx.send(BgMsg::Stop);
        let handles = std::mem::take(&mut *self.bg_threads.lock());
        for h in handles {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
        self.bg_cv.notify_all();
    }

    /// Installs a new table set (and drops flushed memtables) as one swap.
    pub(crate) fn install_version(&self, version: Version, flushed: Option<&Arc<Memtable>>) {
        let mut w = self.sv.write();
        let imms = match flushed {
            Some(m) => w
                .imms
                .iter()
                .filter(|x| !Arc::ptr_eq(x, m))
                .cloned()
                .collect(),
            None => w.imms.clone(),
        };
        *w = Arc::new(SuperVersion {
            mem: w.mem.clone(),
            imms,
            version: Arc::new(version),
            segments: self.vlog.live_set(),
        });
    }

    /// Publishes the vLog's current live segments to readers (after a roll,
    /// before any pointer into the new segment; after GC retires segments).
    pub(crate) fn publish_segments(&self) {
        let mut w = self.sv.write();
        *w = Arc::new(SuperVersion {
            mem: w.mem.clone(),
            imms: w.imms.clone(),
            version: w.version.clone(),
            segments: self.vlog.live_set(),
        });
    }

    /// Handles of the current tables by number, for building new versions.
    pub(crate) fn current_version(&self) -> Arc<Version> {
        self.sv.read().version.clone()
    }

    #[allow(dead_code)]
    pub(crate) fn table_handles(&self) -> Vec<Arc<TableHandle>> {
        self.current_version().all_tables().cloned().collect()
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        self.shutdown();
        if let Err(e) = self.vlog.sync() {
            log::warn!("{}: sync on drop failed: {e}", self.dir.display());
        }
    }
}
