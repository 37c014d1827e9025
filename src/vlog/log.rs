//! Segments of the vLog: appending at the head, reading a record by pointer
//! and rolling to a new segment. Reading them front to back is `replay.rs`.

use super::compress::{self, Compressed};
use super::dict::Dictionaries;
use super::record::{self, ValuePointer, HEADER_LEN};
use crate::error::{Error, Result};
use crate::io::{FileHandle, Fs, Writeback};
use crate::value::Value;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A place in the vLog: a segment and a byte offset in it. The manifest
/// keeps two: the replay point (every record before it is in an SSTable or
/// obsolete) and the GC head (the end of what GC wrote that counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Position {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
}

/// Which head wrote a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum SegmentKind {
    /// Records of user writes, in arrival order; also the write-ahead log.
    User,
    /// Records relocated by GC, each pass's survivors in key order.
    Gc,
}

/// One segment file of the vLog. It deletes its file when dropped after
/// being marked obsolete, so that a reader still holding it (an iterator, a
/// snapshot's read) finishes first.
pub(crate) struct Segment {
    pub(crate) number: u64,
    pub(crate) kind: SegmentKind,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn FileHandle>,
    obsolete: AtomicBool,
    fs: Arc<dyn Fs>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("number", &self.number)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Segment {
    pub(crate) fn new(
        fs: Arc<dyn Fs>,
        number: u64,
        kind: SegmentKind,
        path: PathBuf,
        file: Arc<dyn FileHandle>,
    ) -> Segment {
        Segment {
            number,
            kind,
            path,
            file,
            obsolete: AtomicBool::new(false),
            fs,
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            log::debug!("removing {}", self.path.display());
            if let Err(e) = self.fs.remove(&self.path) {
                log::warn!("removing obsolete {}: {e}", self.path.display());
            }
        }
    }
}

/// Live segments by number. Readers hold an `Arc` of the set they started
/// with, so a segment GC removes stays readable until they are done.
pub(crate) type SegmentSet = BTreeMap<u64, Arc<Segment>>;

/// Where the next record goes.
#[derive(Debug)]
struct Head {
    segment: Arc<Segment>,
    offset: u64,
    /// Where the bytes whose writeback has not been started begin.
    unstarted: u64,
}

impl Head {
    fn new(segment: Arc<Segment>, offset: u64) -> Head {
        Head {
            segment,
            offset,
            unstarted: offset,
        }
    }
}

/// A segment GC removed, kept readable while a snapshot older than the pass
/// may still read versions the pass did not carry over.
#[derive(Debug)]
struct Zombie {
    pass_seq: u64,
    segment: Arc<Segment>,
}

/// The value log: the user head, the GC head, and the live segments.
#[derive(Debug)]
pub(crate) struct VLog {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// Every live segment (copy on write).
    segments: RwLock<Arc<SegmentSet>>,
    zombies: Mutex<Vec<Zombie>>,
    /// The head of user writes. Appends are serialized by the caller (the
    /// group-commit leader); the lock only orders them with `sync` and rolls.
    head: Mutex<Head>,
    /// The head GC writes to; created by the first pass that needs it.
    gc_head: Mutex<Option<Head>>,
    /// Record bytes appended by user writes since open.
    bytes_written: AtomicU64,
    /// Record bytes appended by GC since open.
    gc_bytes_written: AtomicU64,
    /// Starts the writeback of both heads' appends (see [`Writeback`]).
    writeback: Arc<Writeback>,
    /// The value dictionaries compressed values name.
    dicts: Arc<Dictionaries>,
    /// The largest value a compressed record may decompress to.
    max_value_len: AtomicUsize,
}

/// A record's value as the vLog stores it: compressed (a stored form, see
/// `compress.rs`) or as it is.
#[derive(Debug)]
pub(crate) struct StoredValue {
    pub(crate) compressed: bool,
    pub(crate) bytes: Value,
}

impl VLog {
    /// Opens the log over existing segments, appending user writes at
    /// `head_offset` of the newest user segment (created as `new_number()`
    /// when there is none) and GC output at `gc_head_offset` of the newest
    /// GC segment, if any.
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        existing: Vec<Arc<Segment>>,
        head_offset: u64,
        gc_head_offset: u64,
        new_number: impl FnOnce() -> u64,
        writeback: Arc<Writeback>,
    ) -> Result<VLog> {
        let mut segments = SegmentSet::new();
        for s in existing {
            segments.insert(s.number, s);
        }
        let last_of = |segments: &SegmentSet, kind: SegmentKind| {
            segments.values().rfind(|s| s.kind == kind).cloned()
        };
        let head = match last_of(&segments, SegmentKind::User) {
            Some(s) => Head::new(s, head_offset),
            None => {
                let s = create_segment(&fs, dir, new_number(), SegmentKind::User)?;
                segments.insert(s.number, s.clone());
                Head::new(s, 0)
            }
        };
        let gc_head = last_of(&segments, SegmentKind::Gc).map(|s| Head::new(s, gc_head_offset));
        Ok(VLog {
            fs,
            dir: dir.to_path_buf(),
            segments: RwLock::new(Arc::new(segments)),
            zombies: Mutex::new(Vec::new()),
            head: Mutex::new(head),
            gc_head: Mutex::new(gc_head),
            bytes_written: AtomicU64::new(0),
            gc_bytes_written: AtomicU64::new(0),
            writeback,
            dicts: Arc::new(Dictionaries::default()),
            max_value_len: AtomicUsize::new(u32::MAX as usize),
        })
    }

    /// The value dictionaries reads decompress with.
    pub(crate) fn dictionaries(&self) -> &Arc<Dictionaries> {
        &self.dicts
    }

    /// Sets the largest value a compressed record may decompress to (the
    /// database's `max_value_size`): a bound on what hostile bytes can make
    /// a read allocate.
    pub(crate) fn set_max_value_len(&self, n: usize) {
        self.max_value_len.store(n, Ordering::Relaxed);
    }

    /// The writeback state of this open, shared with the SSTable writers.
    pub(crate) fn writeback(&self) -> &Arc<Writeback> {
        &self.writeback
    }

    /// The live segments now.
    pub(crate) fn live_set(&self) -> Arc<SegmentSet> {
        self.segments.read().clone()
    }

    /// The position the next user record will be written at.
    pub(crate) fn head_position(&self) -> Position {
        let h = self.head.lock();
        Position {
            segment: h.segment.number,
            offset: h.offset,
        }
    }

    /// The position the next GC record will be written at, if GC has a head.
    pub(crate) fn gc_head_position(&self) -> Option<Position> {
        self.gc_head.lock().as_ref().map(|h| Position {
            segment: h.segment.number,
            offset: h.offset,
        })
    }

    /// Seals the user head segment (synced, so that no later sync can make a
    /// hole before it) and starts segment `number`, whose directory entry is
    /// durable before anything is written to it. The caller publishes the
    /// new live set to readers before any pointer into it.
    pub(crate) fn roll(&self, number: u64) -> Result<()> {
        let mut h = self.head.lock();
        Self::seal(&h.segment)?;
        let s = create_segment(&self.fs, &self.dir, number, SegmentKind::User)?;
        self.insert_live(s.clone());
        *h = Head::new(s, 0);
        Ok(())
    }

    /// Starts GC segment `number` (sealing the previous GC head, if any).
    pub(crate) fn gc_roll(&self, number: u64) -> Result<()> {
        let mut h = self.gc_head.lock();
        if let Some(old) = h.as_ref() {
            Self::seal(&old.segment)?;
        }
        let s = create_segment(&self.fs, &self.dir, number, SegmentKind::Gc)?;
        self.insert_live(s.clone());
        *h = Some(Head::new(s, 0));
        Ok(())
    }

    fn seal(seg: &Segment) -> Result<()> {
        seg.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing {}", seg.path.display()), e))
    }

    fn insert_live(&self, s: Arc<Segment>) {
        let mut w = self.segments.write();
        let mut set = (**w).clone();
        set.insert(s.number, s);
        *w = Arc::new(set);
    }

    /// Writes `buf` (whole records) at the user head in one write; returns
    /// the segment and offset it went to. `sync` adds an `fdatasync`.
    pub(crate) fn append(&self, buf: &[u8], sync: bool) -> Result<(u64, u64)> {
        let mut h = self.head.lock();
        let r = self.write_at_head(&mut h, buf, sync)?;
        drop(h);
        self.bytes_written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(r)
    }

    /// Writes `buf` (whole records) at the GC head; there must be one.
    pub(crate) fn gc_append(&self, buf: &[u8]) -> Result<(u64, u64)> {
        let mut g = self.gc_head.lock();
        let h = g
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("GC has no head segment".into()))?;
        let r = self.write_at_head(h, buf, false)?;
        drop(g);
        self.gc_bytes_written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(r)
    }

    fn write_at_head(&self, h: &mut Head, buf: &[u8], sync: bool) -> Result<(u64, u64)> {
        let offset = h.offset;
        let seg = h.segment.clone();
        // With io_uring: the write and, linked behind it, the fdatasync.
        let r = seg.file.write_all_and_sync_at(buf, offset, sync);
        if let Err(e) = r {
            // Whether the bytes landed is unknown: the caller decides (a
            // user append poisons; GC's, past the recorded GC head, need not).
            return Err(Error::io(format!("appending to {}", seg.path.display()), e));
        }
        h.offset += buf.len() as u64;
        if sync {
            // Synced bytes need no writeback started.
            h.unstarted = h.offset;
        } else {
            self.writeback.wrote(&*seg.file, &mut h.unstarted, h.offset);
        }
        Ok((seg.number, offset))
    }

    /// Makes every appended record durable (sealed segments were synced when
    /// they were sealed).
    pub(crate) fn sync(&self) -> Result<()> {
        let seg = self.head.lock().segment.clone();
        Self::seal(&seg)?;
        self.sync_gc()
    }

    /// Makes every GC record durable.
    pub(crate) fn sync_gc(&self) -> Result<()> {
        let seg = self.gc_head.lock().as_ref().map(|h| h.segment.clone());
        match seg {
            Some(s) => Self::seal(&s),
            None => Ok(()),
        }
    }

    /// Reads the record at `ptr` through `set` (the reader's view of the live
    /// segments, falling back to segments GC keeps for old snapshots),
    /// checks its checksum, and that it is a put of `key` in `table`;
    /// returns its value.
    pub(crate) fn read(
        &self,
        set: &SegmentSet,
        ptr: &ValuePointer,
        table: u32,
        key: &[u8],
    ) -> Result<Value> {
        self.read_verified(set, ptr, table, key, true)
    }

    /// [`VLog::read`], the record's checksum checked only when `verify`.
    pub(crate) fn read_verified(
        &self,
        set: &SegmentSet,
        ptr: &ValuePointer,
        table: u32,
        key: &[u8],
        verify: bool,
    ) -> Result<Value> {
        let seg = self.find(set, ptr)?;
        let mut buf = vec![0u8; ptr.len as usize];
        let r = seg.file.read_exact_at(&mut buf, ptr.offset);
        let stored = Self::check(&seg, ptr, table, key, buf, r, verify)?;
        self.decompress(&seg, ptr, stored)
    }

    /// The value of a record whose stored value is `stored`: itself, or
    /// decompressed. A damaged compressed value, or one naming a dictionary
    /// this database does not have, is `Error::Corruption`.
    fn decompress(&self, seg: &Segment, ptr: &ValuePointer, stored: StoredValue) -> Result<Value> {
        if !stored.compressed {
            return Ok(stored.bytes);
        }
        let bad = |why: String| Error::corruption(&seg.path, ptr.offset, why);
        let c = Compressed::parse(&stored.bytes)
            .ok_or_else(|| bad("compressed value has a malformed header".into()))?;
        if ptr.raw_len.is_some_and(|n| n != c.raw_len) {
            return Err(bad(
                "compressed value's raw length differs from the value pointer's".into(),
            ));
        }
        let dict = match c.dict {
            0 => None,
            id => Some(self.dicts.get(id).ok_or_else(|| {
                bad(format!(
                    "compressed value names dictionary {id} ({}), which this database does not have",
                    crate::files::dict(id)
                ))
            })?),
        };
        let max = self.max_value_len.load(Ordering::Relaxed);
        compress::decompress(&c, dict.as_deref(), max)
            .map(Value::from)
            .map_err(bad)
    }

    /// [`VLog::read_many`] without decompressing: each record's value as
    /// stored (what GC copies).
    pub(crate) fn read_many_stored(
        &self,
        set: &SegmentSet,
        reqs: &[(ValuePointer, u32, &[u8])],
    ) -> Vec<Result<StoredValue>> {
        self.read_batch(set, reqs, true)
            .into_iter()
            .map(|r| r.map(|(_, s)| s))
            .collect()
    }

    /// Reads several records at once (one batch through the backend: with
    /// io_uring, one submission), each checked as [`VLog::read`] does.
    /// Results are in the order of `reqs`: `(pointer, table, key)`.
    pub(crate) fn read_many(
        &self,
        set: &SegmentSet,
        reqs: &[(ValuePointer, u32, &[u8])],
    ) -> Vec<Result<Value>> {
        self.read_many_verified(set, reqs, true)
    }

    /// [`VLog::read_many`], the checksums checked only when `verify`.
    pub(crate) fn read_many_verified(
        &self,
        set: &SegmentSet,
        reqs: &[(ValuePointer, u32, &[u8])],
        verify: bool,
    ) -> Vec<Result<Value>> {
        if reqs.len() == 1 {
            let (p, t, k) = &reqs[0];
            return vec![self.read_verified(set, p, *t, k, verify)];
        }
        self.read_batch(set, reqs, verify)
            .into_iter()
            .zip(reqs)
            .map(|(r, (ptr, _, _))| r.and_then(|(seg, s)| self.decompress(&seg, ptr, s)))
            .collect()
    }

    /// Reads and checks the records of `reqs` in one batch.
    fn read_batch(
        &self,
        set: &SegmentSet,
        reqs: &[(ValuePointer, u32, &[u8])],
        verify: bool,
    ) -> Vec<Result<(Arc<Segment>, StoredValue)>> {
        let segs: Vec<Result<Arc<Segment>>> =
            reqs.iter().map(|(p, _, _)| self.find(set, p)).collect();
        let mut bufs: Vec<Vec<u8>> = reqs
            .iter()
            .map(|(p, _, _)| vec![0u8; p.len as usize])
            .collect();
        let mut io_results: Vec<Option<std::io::Result<()>>> =
            (0..reqs.len()).map(|_| None).collect();
        {
            let mut batch = Vec::with_capacity(reqs.len());
            let mut idx = Vec::with_capacity(reqs.len());
            for (i, (seg, buf)) in segs.iter().zip(bufs.iter_mut()).enumerate() {
                if let Ok(seg) = seg {
                    batch.push(crate::io::ReadRequest {
                        file: &*seg.file,
                        offset: reqs[i].0.offset,
                        buf,
                    });
                    idx.push(i);
                }
            }
            for (r, i) in self.fs.read_batch(&mut batch).into_iter().zip(idx) {
                io_results[i] = Some(r);
            }
        }
        segs.into_iter()
            .zip(bufs)
            .zip(io_results)
            .zip(reqs)
            .map(|(((seg, buf), io), (ptr, table, key))| {
                let seg = seg?;
                let io = io.unwrap_or(Ok(()));
                let stored = Self::check(&seg, ptr, *table, key, buf, io, verify)?;
                Ok((seg, stored))
            })
            .collect()
    }

    fn find(&self, set: &SegmentSet, ptr: &ValuePointer) -> Result<Arc<Segment>> {
        match set.get(&ptr.segment) {
            Some(s) => Ok(s.clone()),
            None => self.zombie(ptr.segment).ok_or_else(|| {
                // A pointer does not say which head wrote its segment: name
                // both files it could be.
                Error::corruption(
                    &self.dir,
                    ptr.offset,
                    format!(
                        "a value pointer names segment {}, which is not in the vLog (neither {} nor {})",
                        ptr.segment,
                        crate::files::segment(ptr.segment),
                        crate::files::gc_segment(ptr.segment)
                    ),
                )
            }),
        }
    }

    /// Checks a record read at `ptr` and returns its value as stored.
    fn check(
        seg: &Segment,
        ptr: &ValuePointer,
        table: u32,
        key: &[u8],
        buf: Vec<u8>,
        io: std::io::Result<()>,
        verify: bool,
    ) -> Result<StoredValue> {
        io.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corruption(
                    &seg.path,
                    ptr.offset,
                    "value pointer runs past the end of the segment",
                )
            } else {
                Error::io(format!("reading {}", seg.path.display()), e)
            }
        })?;
        let rec = record::decode_checked(&buf, verify)
            .map_err(|e| Error::corruption(&seg.path, ptr.offset, e.describe()))?;
        if rec.header.record_len() != u64::from(ptr.len) {
            return Err(Error::corruption(
                &seg.path,
                ptr.offset,
                "record length differs from the value pointer",
            ));
        }
        if !rec.header.is_put || rec.header.table != table || rec.key != key {
            return Err(Error::corruption(
                &seg.path,
                ptr.offset,
                "record at the value pointer is not the key asked for",
            ));
        }
        let start = HEADER_LEN + rec.key.len();
        let end = start + rec.value.len();
        let compressed = rec.header.compressed;
        Ok(StoredValue {
            compressed,
            bytes: Value::from_parts(buf, start, end),
        })
    }

    fn zombie(&self, n: u64) -> Option<Arc<Segment>> {
        self.zombies
            .lock()
            .iter()
            .find(|z| z.segment.number == n)
            .map(|z| z.segment.clone())
    }

    /// Takes GC'd segments out of the live set. Call once the manifest edit
    /// that removes them is durable: they are marked for deletion, kept for
    /// snapshots older than `pass_seq`, and deleted once nothing reads them.
    pub(crate) fn retire(&self, numbers: &[u64], pass_seq: u64) {
        let mut w = self.segments.write();
        let mut set = (**w).clone();
        let mut z = self.zombies.lock();
        for n in numbers {
            if let Some(s) = set.remove(n) {
                s.obsolete.store(true, Ordering::Release);
                z.push(Zombie {
                    pass_seq,
                    segment: s,
                });
            }
        }
        *w = Arc::new(set);
    }

    /// Lets go of retired segments that no snapshot can need any more:
    /// `oldest_snapshot` is the sequence number of the oldest live snapshot.
    pub(crate) fn release_zombies(&self, oldest_snapshot: Option<u64>) {
        self.zombies
            .lock()
            .retain(|z| oldest_snapshot.is_some_and(|s| s < z.pass_seq));
    }

    /// Retired segments still kept for old snapshots.
    pub(crate) fn zombie_count(&self) -> usize {
        self.zombies.lock().len()
    }

    /// Live segments with their kinds and sizes on disk, oldest first.
    pub(crate) fn segment_sizes(&self) -> Vec<(u64, SegmentKind, u64)> {
        self.live_set()
            .values()
            .map(|s| (s.number, s.kind, s.file.len().unwrap_or(0)))
            .collect()
    }

    /// Record bytes appended by user writes since open.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Record bytes appended by GC since open.
    pub(crate) fn gc_bytes_written(&self) -> u64 {
        self.gc_bytes_written.load(Ordering::Relaxed)
    }
}

fn create_segment(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    number: u64,
    kind: SegmentKind,
) -> Result<Arc<Segment>> {
    let name = match kind {
        SegmentKind::User => crate::files::segment(number),
        SegmentKind::Gc => crate::files::gc_segment(number),
    };
    let path = dir.join(name);
    let file = fs
        .create(&path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    fs.sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    Ok(Arc::new(Segment::new(fs.clone(), number, kind, path, file)))
}
