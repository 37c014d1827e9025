//! Options: builders for opening a database, creating tables and writing.

use crate::io::{Fs, IoBackend, WriteMode};
use std::fmt;
use std::sync::Arc;

/// Block compression of SSTables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// zstd at the given level (1–22).
    Zstd(i32),
}

/// How a database is opened. Every setting is a builder method documented
/// with its default.
///
/// ```
/// use wisckey::Options;
/// let opts = Options::default().value_threshold(512).segment_size(64 << 20);
/// # let _ = opts;
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) value_threshold: usize,
    pub(crate) memtable_size: usize,
    pub(crate) max_immutable_memtables: usize,
    pub(crate) max_replay_bytes: u64,
    pub(crate) segment_size: u64,
    pub(crate) block_size: usize,
    pub(crate) bloom_bits_per_key: u32,
    pub(crate) compression: Compression,
    pub(crate) block_cache_size: u64,
    pub(crate) l0_compaction_trigger: usize,
    pub(crate) l0_slowdown_trigger: usize,
    pub(crate) l0_stop_trigger: usize,
    pub(crate) level_size_ratio: u64,
    pub(crate) base_level_size: u64,
    pub(crate) target_file_size: u64,
    pub(crate) io_backend: IoBackend,
    pub(crate) write_mode: WriteMode,
    pub(crate) bytes_per_sync: u64,
    pub(crate) max_key_size: usize,
    pub(crate) max_value_size: usize,
    pub(crate) fs: Option<Arc<dyn Fs>>,
    pub(crate) gc_policy: GcPolicy,
    pub(crate) background_gc: bool,
    pub(crate) disk_reserve: bool,
    pub(crate) gc_space_amp_target: f64,
    pub(crate) gc_min_garbage_ratio: f64,
    pub(crate) gc_rate_limit: u64,
    pub(crate) gc_back_pressure: bool,
    pub(crate) gc_interval: std::time::Duration,
    pub(crate) private_files: bool,
    pub(crate) read_only: bool,
    pub(crate) create_if_missing: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            value_threshold: 1024,
            memtable_size: 64 << 20,
            max_immutable_memtables: 2,
            max_replay_bytes: 256 << 20,
            segment_size: 128 << 20,
            block_size: 4096,
            bloom_bits_per_key: 10,
            compression: Compression::None,
            block_cache_size: 64 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 20,
            l0_stop_trigger: 36,
            level_size_ratio: 10,
            base_level_size: 256 << 20,
            target_file_size: 64 << 20,
            io_backend: IoBackend::Auto,
            write_mode: WriteMode::Writeback,
            bytes_per_sync: 4 << 20,
            max_key_size: 64 << 10,
            max_value_size: 256 << 20,
            fs: None,
            gc_policy: GcPolicy::CostBenefit,
            background_gc: true,
            disk_reserve: true,
            gc_space_amp_target: 1.5,
            gc_min_garbage_ratio: 0.2,
            gc_rate_limit: 0,
            gc_back_pressure: true,
            gc_interval: std::time::Duration::from_millis(250),
            private_files: false,
            read_only: false,
            create_if_missing: true,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("value_threshold", &self.value_threshold)
            .field("memtable_size", &self.memtable_size)
            .field("max_immutable_memtables", &self.max_immutable_memtables)
            .field("max_replay_bytes", &self.max_replay_bytes)
            .field("segment_size", &self.segment_size)
            .field("block_size", &self.block_size)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("compression", &self.compression)
            .field("block_cache_size", &self.block_cache_size)
            .field("l0_compaction_trigger", &self.l0_compaction_trigger)
            .field("l0_slowdown_trigger", &self.l0_slowdown_trigger)
            .field("l0_stop_trigger", &self.l0_stop_trigger)
            .field("level_size_ratio", &self.level_size_ratio)
            .field("base_level_size", &self.base_level_size)
            .field("target_file_size", &self.target_file_size)
            .field("io_backend", &self.io_backend)
            .field("write_mode", &self.write_mode)
            .field("bytes_per_sync", &self.bytes_per_sync)
            .field("max_key_size", &self.max_key_size)
            .field("max_value_size", &self.max_value_size)
            .field("fs", &self.fs.as_ref().map(|fs| fs.name()))
            .field("gc_policy", &self.gc_policy)
            .field("background_gc", &self.background_gc)
            .field("disk_reserve", &self.disk_reserve)
            .field("gc_space_amp_target", &self.gc_space_amp_target)
            .field("gc_min_garbage_ratio", &self.gc_min_garbage_ratio)
            .field("gc_rate_limit", &self.gc_rate_limit)
            .field("gc_back_pressure", &self.gc_back_pressure)
            .field("gc_interval", &self.gc_interval)
            .field("private_files", &self.private_files)
            .field("read_only", &self.read_only)
            .field("create_if_missing", &self.create_if_missing)
            .finish()
    }
}

impl Options {
    /// Values of at least this many bytes go to the vLog and the index keeps
    /// a pointer; smaller values are kept inline in the index. Default 1024.
    #[must_use]
    pub fn value_threshold(mut self, bytes: usize) -> Self {
        self.value_threshold = bytes;
        self
    }
    /// Size at which the memtable is frozen and flushed. Default 64 MiB.
    #[must_use]
    pub fn memtable_size(mut self, bytes: usize) -> Self {
        self.memtable_size = bytes;
        self
    }
    /// Frozen memtables waiting for flush before writes stall. Default 2.
    #[must_use]
    pub fn max_immutable_memtables(mut self, n: usize) -> Self {
        self.max_immutable_memtables = n.max(1);
        self
    }
    /// The most vLog bytes one memtable may cover before it is flushed, which
    /// bounds how much of the log is replayed on open. Default 256 MiB.
    #[must_use]
    pub fn max_replay_bytes(mut self, bytes: u64) -> Self {
        self.max_replay_bytes = bytes.max(1);
        self
    }
    /// Size at which a vLog segment is sealed and a new one started. Default 128 MiB.
    #[must_use]
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.max(4096);
        self
    }
    /// Target size of an SSTable data block. Default 4096.
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes.max(64);
        self
    }
    /// Bloom filter bits per key in SSTables (0 disables filters). Default 10.
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> Self {
        self.bloom_bits_per_key = bits;
        self
    }
    /// Compression of SSTable blocks. Default [`Compression::None`].
    #[must_use]
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    /// Bytes of the block cache: decoded SSTable data blocks that point
    /// reads and iterators share, weighed by their size (0 disables it:
    /// every data block is read from its file). Default 64 MiB.
    ///
    /// Index and filter blocks are not in it: every open SSTable keeps its
    /// own in memory ([`crate::Stats::index_filter_bytes`]), so a point
    /// read costs at most one data-block read per table it looks in and,
    /// with the blocks it needs cached, only the vLog read of its value.
    /// WiscKey's index holds keys and value pointers, not values, so a
    /// cache of about [`crate::Stats::sst_bytes`] holds all of it. Compactions
    /// read around the cache (they neither look up nor fill it).
    ///
    /// ```
    /// use wisckey::Options;
    /// // The whole index of a small database in memory.
    /// let opts = Options::default().block_cache_size(256 << 20);
    /// // No cache: every data block from its file.
    /// let uncached = Options::default().block_cache_size(0);
    /// # let _ = (opts, uncached);
    /// ```
    #[must_use]
    pub fn block_cache_size(mut self, bytes: u64) -> Self {
        self.block_cache_size = bytes;
        self
    }
    /// Number of level-0 files that triggers their compaction into the base
    /// level. Default 4.
    #[must_use]
    pub fn l0_compaction_trigger(mut self, files: usize) -> Self {
        self.l0_compaction_trigger = files.max(1);
        self
    }
    /// Number of level-0 files at which each write group is delayed by a
    /// millisecond, so that compaction can catch up. Default 20.
    #[must_use]
    pub fn l0_slowdown_trigger(mut self, files: usize) -> Self {
        self.l0_slowdown_trigger = files.max(1);
        self
    }
    /// Number of level-0 files at which writes wait for compaction. Default 36.
    #[must_use]
    pub fn l0_stop_trigger(mut self, files: usize) -> Self {
        self.l0_stop_trigger = files.max(1);
        self
    }
    /// Size ratio between adjacent levels. Default 10.
    #[must_use]
    pub fn level_size_ratio(mut self, ratio: u64) -> Self {
        self.level_size_ratio = ratio.max(2);
        self
    }
    /// The smallest target size of a level: levels whose dynamic target would
    /// be smaller stay empty, and level 0 compacts into the first level in
    /// use. Default 256 MiB.
    #[must_use]
    pub fn base_level_size(mut self, bytes: u64) -> Self {
        self.base_level_size = bytes.max(1024);
        self
    }
    /// Size at which compaction cuts its output files. Default 64 MiB.
    #[must_use]
    pub fn target_file_size(mut self, bytes: u64) -> Self {
        self.target_file_size = bytes.max(1024);
        self
    }
    /// The I/O backend. Default [`IoBackend::Auto`].
    #[must_use]
    pub fn io_backend(mut self, backend: IoBackend) -> Self {
        self.io_backend = backend;
        self
    }
    /// How the vLog and new SSTables are written. Default
    /// [`WriteMode::Writeback`]: buffered writes whose writeback starts
    /// every [`Options::bytes_per_sync`] bytes, which on the machines this
    /// project is measured on made a log durable several times faster than
    /// plain buffered writes (docs/benchmarks.md, "Write modes"). Neither
    /// mode changes what is durable: that is still only what a sync made so.
    /// `Stats::write_mode` shows the mode in effect, and
    /// `Stats::write_mode_fallback` why it is buffered where the file
    /// system refused.
    ///
    /// ```
    /// use wisckey::{Options, WriteMode};
    /// let opts = Options::default().write_mode(WriteMode::Buffered);
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.write_mode = mode;
        self
    }
    /// In [`WriteMode::Writeback`], how many bytes an appender (a vLog head,
    /// an SSTable being written) writes before it starts their writeback.
    /// Default 4 MiB; 0 is the same as [`WriteMode::Buffered`].
    #[must_use]
    pub fn bytes_per_sync(mut self, bytes: u64) -> Self {
        self.bytes_per_sync = bytes;
        self
    }
    /// Largest key accepted, in bytes; larger ones are `Error::InvalidArgument`.
    /// Default 64 KiB.
    #[must_use]
    pub fn max_key_size(mut self, bytes: usize) -> Self {
        self.max_key_size = bytes.min(u32::MAX as usize);
        self
    }
    /// Largest value accepted, in bytes; larger ones are `Error::InvalidArgument`.
    /// Default 256 MiB.
    #[must_use]
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes.min(u32::MAX as usize - (64 << 10));
        self
    }
    /// The policy automatic GC (and [`crate::Db::gc`] by default) uses to
    /// pick segments. Default [`GcPolicy::CostBenefit`].
    #[must_use]
    pub fn gc_policy(mut self, p: GcPolicy) -> Self {
        self.gc_policy = p;
        self
    }
    /// Whether a background thread collects the vLog whenever its space
    /// amplification passes the target. Default true.
    #[must_use]
    pub fn background_gc(mut self, on: bool) -> Self {
        self.background_gc = on;
        self
    }
    /// Whether a writable open keeps a disk reserve: `RESERVE`, a
    /// preallocated file of `segment_size + memtable_size` and room for
    /// manifests, given back when the disk fills up so that the reopen,
    /// deletes and GC have room (docs/gc-tuning.md, "A full disk").
    /// Default true. With false an open makes none and removes one an
    /// earlier open left; a full disk then needs space freed outside the
    /// database before the reopen.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let _db = wisckey::Db::open(dir.path(), wisckey::Options::default().disk_reserve(false))?;
    /// assert!(!dir.path().join("RESERVE").exists());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    #[must_use]
    pub fn disk_reserve(mut self, on: bool) -> Self {
        self.disk_reserve = on;
        self
    }
    /// The vLog space amplification (bytes on disk over live bytes, by the
    /// discard statistics) automatic GC keeps under. Default 1.5. The
    /// statistics lag (an overwritten value counts once a flush or
    /// compaction meets both versions), so GC starts a round at 96% of the
    /// excess over 1 (1.48 for 1.5) and goes on to 90% (1.45).
    #[must_use]
    pub fn gc_space_amp_target(mut self, ratio: f64) -> Self {
        self.gc_space_amp_target = ratio.max(1.0);
        self
    }
    /// Segments with a smaller fraction of garbage are not worth collecting
    /// (except by [`GcPolicy::Tail`]). Default 0.2.
    #[must_use]
    pub fn gc_min_garbage_ratio(mut self, r: f64) -> Self {
        self.gc_min_garbage_ratio = r.clamp(0.0, 1.0);
        self
    }
    /// Whether writers wait for automatic GC when the vLog's space
    /// amplification passes [`Options::gc_space_amp_target`] (back-pressure,
    /// as writers wait for flushes and level-0 compactions). Default true.
    /// They wait only while GC has something it can collect, and resume at
    /// GC's high-water mark (1.48 for a 1.5 target); `Stats::gc_write_stalls`
    /// and `Stats::gc_stall_seconds` count the waits. Off, the log may grow
    /// past its target whenever writers outrun GC. No effect without
    /// [`Options::background_gc`].
    ///
    /// ```
    /// use wisckey::Options;
    /// // Writes never wait for GC; the vLog may outgrow its target for a while.
    /// let opts = Options::default().gc_back_pressure(false);
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn gc_back_pressure(mut self, on: bool) -> Self {
        self.gc_back_pressure = on;
        self
    }
    /// The most bytes per second GC writes (0: no limit). Default 0.
    /// With [`Options::gc_back_pressure`], a limit GC cannot catch up under
    /// slows writers to it.
    #[must_use]
    pub fn gc_rate_limit(mut self, bytes_per_sec: u64) -> Self {
        self.gc_rate_limit = bytes_per_sec;
        self
    }
    /// How often automatic GC checks the space amplification (it is also
    /// woken after compactions). Default 250 ms.
    #[must_use]
    pub fn gc_interval(mut self, every: std::time::Duration) -> Self {
        self.gc_interval = every.max(std::time::Duration::from_millis(1));
        self
    }
    /// Creates the database's files readable and writable by their owner
    /// only (mode 0600) instead of 0644 (both before the umask). Default
    /// false. (A backend set with [`Options::fs`] decides for itself.)
    #[must_use]
    pub fn private_files(mut self, private: bool) -> Self {
        self.private_files = private;
        self
    }

    /// Opens the database without writing a byte: no file is created,
    /// changed or removed (a torn tail is reported, not truncated; no hint
    /// file is written; leftovers stay), no background work runs, and every
    /// call that would write returns [`crate::Error::ReadOnly`]. The
    /// directory lock is a shared one, which works on read-only media: any
    /// number of read-only opens may share a database, and none is allowed
    /// while a writer has it (nor a writer while they do): `Error::Locked`.
    /// The database must exist. Default false.
    ///
    /// ```
    /// use wisckey::{Db, Error, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// Db::open(dir.path(), Options::default())?.put(b"k", b"v")?;
    /// let ro = Db::open(dir.path(), Options::default().read_only(true))?;
    /// assert_eq!(ro.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(matches!(ro.put(b"k", b"w"), Err(Error::ReadOnly(_))));
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Whether opening a directory that holds no database creates one
    /// (creating the directory too, if missing). With false, that is
    /// `Error::InvalidArgument`. Default true.
    #[must_use]
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    pub(crate) fn file_mode(&self) -> u32 {
        if self.private_files {
            0o600
        } else {
            0o644
        }
    }

    /// Replaces the file-system backend with `fs`, any implementation of
    /// the [`crate::io::Fs`] plug-in trait (a custom storage layer, or the
    /// fault-injecting file system of the tests). When set,
    /// [`Options::io_backend`] and [`Options::private_files`] are ignored:
    /// the backend decides. Default: none (the backend `io_backend` picks).
    #[must_use]
    pub fn fs(mut self, fs: Arc<dyn Fs>) -> Self {
        self.fs = Some(fs);
        self
    }
}

/// How GC picks the segments it collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub enum GcPolicy {
    /// WiscKey's: the oldest segment (the tail of the log) that has any
    /// known garbage, whatever its garbage ratio.
    Tail,
    /// The segment with the largest fraction of garbage.
    Greedy,
    /// The log-structured file system's cost-benefit rule: the largest
    /// (1 − u) · age / (1 + u), where u is the live fraction: old, mostly
    /// dead segments first, leaving young ones time to die.
    #[default]
    CostBenefit,
}

/// How one GC pass ([`crate::Db::gc`]) runs.
///
/// ```
/// use wisckey::{GcOptions, GcPolicy};
/// let opts = GcOptions::default().policy(GcPolicy::Greedy).max_segments(4);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    pub(crate) policy: Option<GcPolicy>,
    pub(crate) max_segments: Option<usize>,
    pub(crate) all_sealed: bool,
    pub(crate) min_garbage_ratio: Option<f64>,
    pub(crate) salvage: bool,
    pub(crate) dry_run: bool,
    pub(crate) progress: Option<GcProgressFn>,
}

/// How far a GC pass has come, for [`GcOptions::on_progress`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcProgress {
    /// Victim segments read through so far.
    pub segments_done: u64,
    /// Victim segments of the pass.
    pub segments_total: u64,
    /// Bytes of them read so far.
    pub bytes_read: u64,
    /// Bytes of all the victims.
    pub bytes_total: u64,
}

/// The callback of [`GcOptions::on_progress`].
#[derive(Clone)]
pub(crate) struct GcProgressFn(pub(crate) Arc<dyn Fn(&GcProgress) + Send + Sync>);

impl std::fmt::Debug for GcProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcProgressFn")
    }
}

impl GcOptions {
    /// The policy that picks victims. Default: the database's
    /// ([`crate::Options::gc_policy`]).
    #[must_use]
    pub fn policy(mut self, p: GcPolicy) -> Self {
        self.policy = Some(p);
        self
    }
    /// The most segments one pass takes (ignored with
    /// [`GcOptions::all_sealed`]). Default 1.
    #[must_use]
    pub fn max_segments(mut self, n: usize) -> Self {
        self.max_segments = Some(n.max(1));
        self
    }
    /// Takes every sealed user segment, whatever its garbage, and every GC
    /// segment with garbage: rewrites the log in key order (for scans).
    /// Default false.
    #[must_use]
    pub fn all_sealed(mut self, all: bool) -> Self {
        self.all_sealed = all;
        self
    }
    /// Segments with less garbage than this fraction are not worth a pass
    /// (ignored by [`GcPolicy::Tail`] and `all_sealed`). Default: the
    /// database's ([`crate::Options::gc_min_garbage_ratio`]).
    #[must_use]
    pub fn min_garbage_ratio(mut self, r: f64) -> Self {
        self.min_garbage_ratio = Some(r.clamp(0.0, 1.0));
        self
    }
    /// Salvage: find the victims' live records from the index (keys and
    /// pointers only, never by reading the segments through), so that a
    /// segment with damaged garbage can still be collected. Each live record
    /// is read and checked before anything moves: if any lies in damaged
    /// bytes, that is data loss, and the pass returns `Error::Corruption`
    /// naming the keys and changes nothing (the segment stays: nothing a live
    /// pointer references is ever freed). Costs a walk of the whole index.
    /// Default false.
    #[must_use]
    pub fn salvage(mut self, salvage: bool) -> Self {
        self.salvage = salvage;
        self
    }
    /// Dry run: choose the victims as the pass would and report them, with
    /// the bytes it would read, move and free by the discard statistics
    /// ([`crate::GcReport::dry_run`]), changing nothing. Works on a database
    /// opened read-only. Default false.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = wisckey::Db::open(dir.path(), wisckey::Options::default())?;
    /// let plan = db.gc(wisckey::GcOptions::default().dry_run(true))?;
    /// assert!(plan.dry_run && plan.victims.is_empty());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
    /// Calls `f` as the pass reads its victims: once before the first, then
    /// after each (for a progress bar). Not called by a dry run or a pass
    /// without victims.
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn(&GcProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(GcProgressFn(Arc::new(f)));
        self
    }
}

/// How [`crate::Db::checkpoint_with`] makes a checkpoint.
///
/// ```
/// use wisckey::{CheckpointOptions, Db, Options, TableOptions};
/// # let dir = tempfile::tempdir().unwrap();
/// # let out = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// db.table("state", TableOptions::ordered())?.put(b"k", b"v")?;
/// db.table("scratch", TableOptions::ordered())?.put(b"x", b"y")?;
/// let opts = CheckpointOptions::default()
///     .tables(["state"])
///     .hard_links(false);
/// let info = db.checkpoint_with(out.path().join("cp"), opts)?;
/// assert_eq!(info.tables, vec!["state".to_string()]);
/// let copy = Db::open(out.path().join("cp"), Options::default())?;
/// assert_eq!(copy.table_names(), vec!["state".to_string()]);
/// # Ok::<(), wisckey::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    pub(crate) tables: Option<Vec<String>>,
    pub(crate) hard_links: bool,
    pub(crate) progress: Option<CheckpointProgressFn>,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            tables: None,
            hard_links: true,
            progress: None,
        }
    }
}

/// How far a checkpoint has come, for [`CheckpointOptions::on_progress`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointProgress {
    /// Files linked or copied so far.
    pub files_done: u64,
    /// Files the checkpoint holds.
    pub files_total: u64,
    /// Bytes of them done so far.
    pub bytes_done: u64,
    /// Bytes of them all.
    pub bytes_total: u64,
}

/// The callback of [`CheckpointOptions::on_progress`].
#[derive(Clone)]
pub(crate) struct CheckpointProgressFn(pub(crate) Arc<dyn Fn(&CheckpointProgress) + Send + Sync>);

impl fmt::Debug for CheckpointProgressFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckpointProgressFn")
    }
}

impl CheckpointOptions {
    /// Only these named tables (default: every table). The others are
    /// dropped in the copy's manifest, so their data is dead there and the
    /// copy's compaction and GC reclaim it (the files holding it are still
    /// linked or copied whole: a checkpoint never rewrites a file). The
    /// default table cannot be dropped and is always in the copy.
    #[must_use]
    pub fn tables<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.tables = Some(names.into_iter().map(Into::into).collect());
        self
    }
    /// Whether immutable files are hard-linked (default `true`); with
    /// `false` every file is copied (a copy that shares no inode with the
    /// source, e.g. to ship it elsewhere while the source runs GC). A link
    /// that fails (another file system, or one without links) falls back
    /// to a copy either way.
    #[must_use]
    pub fn hard_links(mut self, on: bool) -> Self {
        self.hard_links = on;
        self
    }
    /// Calls `f` before the first file and after each one (for a progress
    /// bar).
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn(&CheckpointProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(CheckpointProgressFn(Arc::new(f)));
        self
    }
}

/// The kind of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum TableKind {
    /// Sorted keys in an LSM-tree: point reads and range scans.
    Ordered,
    /// A Bitcask-style in-memory hash index: point reads only.
    Unordered,
}

/// How a table stores the values it keeps in the vLog (see
/// [`TableOptions::value_compression`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub enum ValueCompression {
    /// Values are stored as they are (the default).
    #[default]
    None,
    /// Each value is compressed with zstd at `level` (1 to 22; 3 is zstd's
    /// default; negative levels are faster still), with the table's
    /// dictionary once it has one (see [`crate::Table::train_dictionary`]).
    Zstd {
        /// The zstd compression level.
        level: i32,
    },
}

/// How a table is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    pub(crate) kind: TableKind,
    pub(crate) value_compression: Option<ValueCompression>,
}

impl TableOptions {
    /// An ordered (sorted, range-scannable) table.
    pub fn ordered() -> Self {
        TableOptions {
            kind: TableKind::Ordered,
            value_compression: None,
        }
    }
    /// An unordered, point-only table (Bitcask style): an in-memory hash
    /// index of its keys, every value in the vLog. Gets, `multi_get`, puts,
    /// deletes and batches work; range, prefix and snapshot reads return
    /// `Error::Unsupported`. See [`crate::Db::table`].
    pub fn unordered() -> Self {
        TableOptions {
            kind: TableKind::Unordered,
            value_compression: None,
        }
    }

    /// How the table stores the values it keeps in the vLog. Default: not
    /// set, which keeps what the table has ([`ValueCompression::None`] for
    /// a new table).
    ///
    /// Compressed are the values that go to the vLog by pointer: in an
    /// ordered table those of at least `Options::value_threshold` bytes, in
    /// an unordered table every non-empty value. Values below the threshold
    /// of an ordered table are kept inline in the index and stay raw. A
    /// value that does not shrink is stored raw (the record says which), so
    /// incompressible data costs only the attempt.
    ///
    /// The setting is recorded in the manifest and survives reopening: a
    /// later [`crate::Db::table`] call that leaves it unset keeps it, one
    /// that sets another value changes it (durably) for the values written
    /// from then on. Values already written keep the form they were written
    /// in and read back the same either way.
    ///
    /// ```
    /// use wisckey::{Db, Options, TableOptions, ValueCompression};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let docs = db.table(
    ///     "docs",
    ///     TableOptions::ordered().value_compression(ValueCompression::Zstd { level: 3 }),
    /// )?;
    /// let doc = br#"{"name":"x","tags":["a","b"]}"#.repeat(100);
    /// docs.put(b"d1", &doc)?;
    /// assert_eq!(docs.get(b"d1")?.as_deref(), Some(&doc[..]));
    /// let s = db.stats();
    /// assert!(s.value_bytes_stored < s.value_bytes_raw);
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    #[must_use]
    pub fn value_compression(mut self, c: ValueCompression) -> Self {
        self.value_compression = Some(c);
        self
    }
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions::ordered()
    }
}

/// How a write is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    pub(crate) sync: bool,
}

impl WriteOptions {
    /// When true the write is durable against power loss when the call
    /// returns (`fdatasync` of the vLog, shared by concurrent writers). When
    /// false (the default) it survives a process crash but not power loss.
    #[must_use]
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_defaults() {
        let o = Options::default();
        assert_eq!(o.value_threshold, 1024);
        assert_eq!(o.memtable_size, 64 << 20);
        assert_eq!(o.max_immutable_memtables, 2);
        assert_eq!(o.max_replay_bytes, 256 << 20);
        assert_eq!(o.segment_size, 128 << 20);
        assert_eq!(o.block_size, 4096);
        assert_eq!(o.bloom_bits_per_key, 10);
        assert_eq!(o.compression, Compression::None);
        assert_eq!(o.block_cache_size, 64 << 20);
        assert_eq!(o.l0_compaction_trigger, 4);
        assert_eq!(o.l0_slowdown_trigger, 20);
        assert_eq!(o.l0_stop_trigger, 36);
        assert_eq!(o.level_size_ratio, 10);
        assert_eq!(o.base_level_size, 256 << 20);
        assert_eq!(o.target_file_size, 64 << 20);
        assert_eq!(o.io_backend, IoBackend::Auto);
        assert_eq!(o.max_key_size, 64 << 10);
        assert_eq!(o.max_value_size, 256 << 20);
        assert_eq!(o.gc_policy, GcPolicy::CostBenefit);
        assert!(o.background_gc);
        assert!(o.disk_reserve);
        assert_eq!(o.gc_space_amp_target, 1.5);
        assert_eq!(o.gc_min_garbage_ratio, 0.2);
        assert_eq!(o.gc_rate_limit, 0);
        assert_eq!(o.gc_interval, std::time::Duration::from_millis(250));
        assert!(!o.private_files);
        assert!(!o.read_only);
        assert!(o.create_if_missing);
        assert!(!WriteOptions::default().sync);
        assert_eq!(TableOptions::default().kind, TableKind::Ordered);
        assert_eq!(TableOptions::default().value_compression, None);
        assert_eq!(ValueCompression::default(), ValueCompression::None);
    }
}
