//! Reading segments front to back: replay on open (whole batches, torn
//! tails told from damage) and the full check behind `Db::verify`.

use super::log::Segment;
use super::record::{self, DecodeError, ValuePointer, HEADER_LEN};
use crate::error::{Error, Result};

/// One whole batch found by replay: its records, in order.
#[derive(Debug, Default)]
pub(crate) struct ReplayBatch {
    pub(crate) records: Vec<ReplayRecord>,
}

/// One record found by replay.
#[derive(Debug)]
pub(crate) struct ReplayRecord {
    pub(crate) is_put: bool,
    /// A range delete: `key` is the start, `inline_value` the encoded end.
    pub(crate) is_range_delete: bool,
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
    apply: impl FnMut(ReplayBatch) -> Result<()>,
) -> Result<ReplayOutcome> {
    replay_range(seg, start, None, is_last, inline_below, apply)
}

/// [`replay_segment`] of the segment's first `end` bytes only (all of it
/// for `None`): what a read-only open reads of a head whose tail it may
/// not cut off.
pub(crate) fn replay_range(
    seg: &Segment,
    start: u64,
    end: Option<u64>,
    is_last: bool,
    inline_below: usize,
    mut apply: impl FnMut(ReplayBatch) -> Result<()>,
) -> Result<ReplayOutcome> {
    let len = seg
        .file
        .len()
        .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
    let file_len = end.map_or(len, |e| e.min(len));
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
        // A compressed value always went by pointer, with its raw length.
        let raw_len = if rec.header.compressed {
            match super::compress::Compressed::parse(rec.value) {
                Some(c) => Some(c.raw_len),
                None => {
                    return Err(Error::corruption(
                        &seg.path,
                        pos,
                        "compressed value has a malformed header",
                    ))
                }
            }
        } else {
            None
        };
        let inline_value = if rec.header.is_range_delete
            || (raw_len.is_none() && rec.value.len() < inline_below)
        {
            Some(rec.value.to_vec())
        } else {
            None
        };
        batch.records.push(ReplayRecord {
            is_put: rec.header.is_put,
            is_range_delete: rec.header.is_range_delete,
            table: rec.header.table,
            seq: rec.header.seq,
            key: rec.key.to_vec(),
            inline_value,
            pointer: ValuePointer {
                segment: seg.number,
                offset: pos,
                len: len as u32,
                raw_len,
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

/// What [`walk_records`] finds in a segment's bytes, in file order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Walked<'a> {
    /// An intact record (checksum checked) starting at `offset`.
    Record {
        offset: u64,
        record: record::Record<'a>,
    },
    /// Damaged bytes `offset..end`: no intact record starts at `offset`, and
    /// the next one (if any) starts at `end`.
    Damage {
        offset: u64,
        end: u64,
        error: DecodeError,
    },
}

/// Reads every record of a segment's bytes `buf` front to back and hands
/// each, or each damaged range, to `visit`. After damage it goes on from the
/// next intact record ([`first_record_after`]), so that every damaged range
/// is found, not only the first. Any bytes are accepted: it never panics.
pub(crate) fn walk_records<'a>(buf: &'a [u8], mut visit: impl FnMut(Walked<'a>)) {
    let mut pos = 0usize;
    while pos < buf.len() {
        match record::decode(&buf[pos..]) {
            Ok(record) => {
                visit(Walked::Record {
                    offset: pos as u64,
                    record,
                });
                pos += record.header.record_len() as usize;
            }
            Err(error) => {
                let end = first_record_after(&buf[pos..]).map_or(buf.len(), |next| pos + next);
                visit(Walked::Damage {
                    offset: pos as u64,
                    end: end as u64,
                    error,
                });
                pos = end;
            }
        }
    }
}

/// What [`check_segment`] found in one segment.
#[derive(Debug, Default)]
pub(crate) struct SegmentCheck {
    /// Intact records read.
    pub(crate) records: u64,
    /// Bytes read.
    pub(crate) bytes: u64,
    /// Every damaged range: its offset and what is wrong.
    pub(crate) damage: Vec<(u64, String)>,
}

/// Reads every record of `seg`'s first `end` bytes (all of it for `None`)
/// and checks it: lengths, flags, checksum, and that a `sealed` segment
/// does not end inside a batch. After damage it goes on from the next
/// intact record, so that every damaged range is found, not only the first.
/// Only I/O errors are errors; damage is in the result.
pub(crate) fn check_segment(seg: &Segment, end: Option<u64>, sealed: bool) -> Result<SegmentCheck> {
    let len = seg
        .file
        .len()
        .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
    let end = end.map_or(len, |e| e.min(len));
    let size = usize::try_from(end)
        .map_err(|_| Error::corruption(&seg.path, 0, "segment too large to check"))?;
    let mut buf = vec![0u8; size];
    seg.file
        .read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
    let mut out = SegmentCheck {
        bytes: end,
        ..SegmentCheck::default()
    };
    // Where the batch the last intact record belongs to started, while it
    // goes on.
    let mut open_batch: Option<u64> = None;
    walk_records(&buf, |found| match found {
        Walked::Record { offset, record } => {
            out.records += 1;
            // The payload itself is checked where it is read: verify's point
            // reads and scan decompress every live value.
            if record.header.compressed
                && super::compress::Compressed::parse(record.value).is_none()
            {
                out.damage
                    .push((offset, "compressed value has a malformed header".into()));
            }
            if record.header.continues {
                open_batch.get_or_insert(offset);
            } else {
                open_batch = None;
            }
        }
        Walked::Damage { offset, error, .. } => {
            out.damage.push((offset, error.describe().to_string()));
            open_batch = None;
        }
    });
    if let (true, Some(start)) = (sealed, open_batch) {
        out.damage.push((
            start,
            "batch continues past the end of a sealed segment".to_string(),
        ));
    }
    Ok(out)
}
