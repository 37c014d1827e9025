//! Segments of the vLog: appending at the head, reading a record by pointer,
//! rolling to a new segment, and scanning segments for recovery.

use super::record::{self, DecodeError, ValuePointer, HEADER_LEN};
use crate::error::{Error, Result};
use crate::io::{FileHandle, Fs};
use crate::lsm::manifest::ReplayPoint;
use crate::value::Value;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The file name of vLog segment `number`.
pub(crate) fn segment_file_name(number: u64) -> String {
    format!("{number:06}.vlog")
}

/// One segment file of the vLog.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) number: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn FileHandle>,
}

/// Where the next record goes.
#[derive(Debug)]
struct Head {
    segment: Arc<Segment>,
    offset: u64,
}

/// The value log.
#[derive(Debug)]
pub(crate) struct VLog {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// Every live segment, for readers.
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    /// The head. Appends are serialized by the caller (the group-commit
    /// leader); the lock only orders them with `sync` and rolls.
    head: Mutex<Head>,
    /// Bytes appended since open (records), for stats.
    bytes_written: AtomicU64,
}

impl VLog {
    /// Opens the log over existing segments (ascending numbers), appending at
    /// `head_offset` of the last one; creates segment `new_number` when there
    /// is none.
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        existing: Vec<Arc<Segment>>,
        head_offset: u64,
        new_number: impl FnOnce() -> u64,
    ) -> Result<VLog> {
        let mut segments = BTreeMap::new();
        for s in existing {
            segments.insert(s.number, s);
        }
        let head = match segments.values().next_back() {
            Some(s) => Head {
                segment: s.clone(),
                offset: head_offset,
            },
            None => {
                let s = create_segment(&*fs, dir, new_number())?;
                segments.insert(s.number, s.clone());
                Head {
                    segment: s,
                    offset: 0,
                }
            }
        };
        Ok(VLog {
            fs,
            dir: dir.to_path_buf(),
            segments: RwLock::new(segments),
            head: Mutex::new(head),
            bytes_written: AtomicU64::new(0),
        })
    }

    /// The position the next record will be written at.
    pub(crate) fn head_position(&self) -> ReplayPoint {
        let h = self.head.lock();
        ReplayPoint {
            segment: h.segment.number,
            offset: h.offset,
        }
    }

    /// Seals the head segment (synced, so that no later sync can make a hole
    /// before it) and starts segment `number`, whose directory entry is made
    /// durable before anything is written to it.
    pub(crate) fn roll(&self, number: u64) -> Result<()> {
        let mut h = self.head.lock();
        let old = h.segment.clone();
        old.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing {}", old.path.display()), e))?;
        let s = create_segment(&*self.fs, &self.dir, number)?;
        self.segments.write().insert(number, s.clone());
        h.segment = s;
        h.offset = 0;
        Ok(())
    }

    /// Writes `buf` (whole records) at the head in one write; returns the
    /// segment and offset it went to. `sync` adds an `fdatasync`.
    pub(crate) fn append(&self, buf: &[u8], sync: bool) -> Result<(u64, u64)> {
        let mut h = self.head.lock();
        let offset = h.offset;
        let seg = h.segment.clone();
        seg.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io(format!("appending to {}", seg.path.display()), e))?;
        h.offset += buf.len() as u64;
        drop(h);
        self.bytes_written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        if sync {
            seg.file
                .sync_data()
                .map_err(|e| Error::io(format!("syncing {}", seg.path.display()), e))?;
        }
        Ok((seg.number, offset))
    }

    /// Makes every appended record durable (older segments were synced when
    /// they were sealed).
    pub(crate) fn sync(&self) -> Result<()> {
        let seg = self.head.lock().segment.clone();
        seg.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing {}", seg.path.display()), e))
    }

    /// Reads the record at `ptr`, checks its checksum, and that it is a put
    /// of `key` in `table`; returns its value.
    pub(crate) fn read(&self, ptr: &ValuePointer, table: u32, key: &[u8]) -> Result<Value> {
        let seg = self.segment(ptr.segment).ok_or_else(|| {
            Error::corruption(
                self.dir.join(segment_file_name(ptr.segment)),
                ptr.offset,
                "value pointer names a segment that does not exist",
            )
        })?;
        let mut buf = vec![0u8; ptr.len as usize];
        seg.file.read_exact_at(&mut buf, ptr.offset).map_err(|e| {
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
        let rec = record::decode(&buf)
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
        Ok(Value::from_parts(buf, start, end))
    }

    /// The segment numbered `n`, if live.
    pub(crate) fn segment(&self, n: u64) -> Option<Arc<Segment>> {
        self.segments.read().get(&n).cloned()
    }

    /// Live segments with their sizes on disk, oldest first.
    pub(crate) fn segment_sizes(&self) -> Vec<(u64, u64)> {
        let segs: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        segs.iter()
            .map(|s| (s.number, s.file.len().unwrap_or(0)))
            .collect()
    }

    /// Record bytes appended since open.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }
}

fn create_segment(fs: &dyn Fs, dir: &Path, number: u64) -> Result<Arc<Segment>> {
    let path = dir.join(segment_file_name(number));
    let file = fs
        .create(&path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    fs.sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    Ok(Arc::new(Segment { number, path, file }))
}

/// One whole batch found by replay: its records, in order.
#[derive(Debug, Default)]
pub(crate) struct ReplayBatch {
    pub(crate) records: Vec<ReplayRecord>,
}

/// One record found by replay.
#[derive(Debug)]
pub(crate) struct ReplayRecord {
    pub(crate) is_put: bool,
    pub(crate) table: u32,
    pub(crate) seq: u64,
    pub(crate) key: Vec<u8>,
    /// The value, when small enough to keep inline (below the threshold).
    pub(crate) inline_value: Option<Vec<u8>>,
    pub(crate) pointer: ValuePointer,
}

/// How replay of one segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayOutcome {
    /// The end of the last whole batch: where appending may go on.
    pub(crate) valid_end: u64,
    /// Whether a torn tail was found (and must be truncated at `valid_end`).
    pub(crate) torn: bool,
}

const REPLAY_CHUNK: usize = 4 << 20;

/// Replays the records of `seg` from `start`, calling `apply` for every whole
/// batch. In the newest segment (`is_last`) a damaged or cut record that
/// nothing valid follows is a torn tail: replay stops there. Any other damage
/// is `Error::Corruption`.
pub(crate) fn replay_segment(
    seg: &Segment,
    start: u64,
    is_last: bool,
    inline_below: usize,
    mut apply: impl FnMut(ReplayBatch) -> Result<()>,
) -> Result<ReplayOutcome> {
    let file_len = seg
        .file
        .len()
        .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
    if start > file_len {
        return Err(Error::corruption(
            &seg.path,
            start,
            "replay point lies past the end of the segment",
        ));
    }
    let mut reader = ChunkReader::new(seg, file_len);
    let mut pos = start;
    let mut batch = ReplayBatch::default();
    let mut batch_start = start;
    loop {
        if pos == file_len {
            break;
        }
        let rec = match reader.record_at(pos)? {
            Ok(r) => r,
            Err(err) => {
                if is_last && reader.is_torn_tail(pos)? {
                    log::warn!(
                        "{}: torn tail at offset {pos} ({}), truncating to {batch_start}",
                        seg.path.display(),
                        err.describe()
                    );
                    return Ok(ReplayOutcome {
                        valid_end: batch_start,
                        torn: true,
                    });
                }
                return Err(Error::corruption(&seg.path, pos, err.describe()));
            }
        };
        let len = rec.header.record_len();
        let inline_value = if rec.value.len() < inline_below {
            Some(rec.value.to_vec())
        } else {
            None
        };
        batch.records.push(ReplayRecord {
            is_put: rec.header.is_put,
            table: rec.header.table,
            seq: rec.header.seq,
            key: rec.key.to_vec(),
            inline_value,
            pointer: ValuePointer {
                segment: seg.number,
                offset: pos,
                len: len as u32,
            },
        });
        let continues = rec.header.continues;
        pos += len;
        if !continues {
            apply(std::mem::take(&mut batch))?;
            batch_start = pos;
        }
    }
    if !batch.records.is_empty() {
        // A batch whose last record never made it: unacknowledged.
        if is_last {
            log::warn!(
                "{}: incomplete batch at offset {batch_start}, truncating",
                seg.path.display()
            );
            return Ok(ReplayOutcome {
                valid_end: batch_start,
                torn: true,
            });
        }
        return Err(Error::corruption(
            &seg.path,
            batch_start,
            "batch continues past the end of a sealed segment",
        ));
    }
    Ok(ReplayOutcome {
        valid_end: pos,
        torn: false,
    })
}

/// Reads a segment in large chunks for sequential scanning.
struct ChunkReader<'a> {
    seg: &'a Segment,
    file_len: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> ChunkReader<'a> {
    fn new(seg: &'a Segment, file_len: u64) -> Self {
        ChunkReader {
            seg,
            file_len,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Makes `[pos, pos + len)` (clipped at the end of the file) available.
    fn fill(&mut self, pos: u64, len: u64) -> Result<&[u8]> {
        let want_end = (pos + len).min(self.file_len);
        let have_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || want_end > have_end {
            let n = (want_end - pos)
                .max(REPLAY_CHUNK as u64)
                .min(self.file_len - pos);
            self.buf.resize(n as usize, 0);
            self.seg
                .file
                .read_exact_at(&mut self.buf, pos)
                .map_err(|e| Error::io(format!("reading {}", self.seg.path.display()), e))?;
            self.buf_start = pos;
        }
        let from = (pos - self.buf_start) as usize;
        let to = (want_end - self.buf_start) as usize;
        Ok(&self.buf[from..to])
    }

    /// The record at `pos`, or why there is none.
    fn record_at(
        &mut self,
        pos: u64,
    ) -> Result<std::result::Result<record::Record<'_>, DecodeError>> {
        let head = self.fill(pos, HEADER_LEN as u64)?;
        let Some(h) = record::Header::decode(head) else {
            return Ok(Err(if head.len() < HEADER_LEN {
                DecodeError::Short
            } else {
                DecodeError::Malformed
            }));
        };
        let len = h.record_len();
        if pos + len > self.file_len {
            return Ok(Err(DecodeError::Short));
        }
        let bytes = self.fill(pos, len)?;
        Ok(record::decode(bytes))
    }

    /// A bad record at `pos` is a torn tail (what a crash mid-append leaves)
    /// unless an intact, checksummed record starts somewhere after it and the
    /// bytes in between are not all zero: acknowledged records after damage
    /// must not be thrown away silently. (A zero-filled gap is a range the
    /// file system extended but never wrote, which only unsynced writes leave.)
    fn is_torn_tail(&mut self, pos: u64) -> Result<bool> {
        let len = self.file_len - pos;
        let rest = self.fill(pos, len)?.to_vec();
        let Some(next) = first_record_after(&rest) else {
            return Ok(true);
        };
        Ok(rest[..next].iter().all(|&b| b == 0))
    }
}

/// The offset (after 0) of the first intact record in `b`, if any.
fn first_record_after(b: &[u8]) -> Option<usize> {
    let last = b.len().checked_sub(HEADER_LEN + record::TRAILER_LEN)?;
    (1..=last).find(|&off| {
        record::Header::decode(&b[off..]).is_some_and(|h| h.record_len() <= (b.len() - off) as u64)
            && record::decode(&b[off..]).is_ok()
    })
}
