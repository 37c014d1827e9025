//! Step 2 of a GC pass: the survivors' records appended at the GC head.
//!
//! A relocated record keeps its value as stored: raw stays raw, and a value
//! compressed without a dictionary, or with its table's newest one, is
//! copied byte for byte (no recompression, so a pass costs what it did
//! before compression). A value compressed with an older dictionary is
//! decompressed and compressed again with the table's codec of now (or
//! stored raw if the table no longer compresses or it does not shrink):
//! that is what lets an old dictionary go once the segments written before
//! the new one are collected.

use super::{PassState, Survivor};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::SealedSegment;
use crate::value::Value;
use crate::vlog::compress::Compressed;
use crate::vlog::hint::HintEntry;
use crate::vlog::{record, SegmentKind, StoredValue, ValuePointer};
use crate::GcReport;
use std::time::{Duration, Instant};

/// Where a survivor's record goes: its length there, and its value's raw
/// length and dictionary when it is stored compressed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Moved {
    pub(super) len: u32,
    pub(super) raw_len: Option<u32>,
    pub(super) dict: u64,
}

impl Engine {
    /// The value survivor `s` is relocated with (whether compressed, the
    /// bytes) and where that leaves its record.
    fn relocated_form(&self, s: &Survivor, stored: StoredValue) -> Result<(bool, Value, Moved)> {
        let moved = |compressed: bool, v: &Value, raw_len: Option<u32>, dict: u64| Moved {
            len: record::record_len(s.key.len(), v.len()) as u32,
            raw_len: raw_len.filter(|_| compressed),
            dict,
        };
        if !stored.compressed {
            let m = moved(false, &stored.bytes, None, 0);
            return Ok((false, stored.bytes, m));
        }
        let bad = || {
            Error::corruption(
                self.dir.join(crate::files::gc_segment(s.old.segment)),
                s.old.offset,
                "compressed value has a malformed header",
            )
        };
        let c = Compressed::parse(&stored.bytes).ok_or_else(bad)?;
        let codec = self.values.codec(s.table);
        if c.dict == 0 || codec.as_ref().is_some_and(|k| k.dict_id() == c.dict) {
            let m = moved(true, &stored.bytes, Some(c.raw_len), c.dict);
            return Ok((true, stored.bytes, m));
        }
        // An older dictionary: through the read path (which checks it), then
        // the table's codec of now.
        let set = self.vlog.live_set();
        let raw = self.vlog.read(&set, &s.old, s.table, &s.key)?;
        match codec.and_then(|k| k.compress(&raw).map(|b| (b, k.dict_id()))) {
            Some((b, dict)) => {
                let v = Value::from(b);
                let m = moved(true, &v, Some(c.raw_len), dict);
                Ok((true, v, m))
            }
            None => {
                let m = moved(false, &raw, None, 0);
                Ok((false, raw, m))
            }
        }
    }

    /// Appends the survivors' records at the GC head, in order, in chunks,
    /// rate-limited; fills in their new pointers and syncs the GC head. The
    /// values are read in batches (one submission each with io_uring).
    pub(super) fn relocate(
        &self,
        pass: &mut PassState,
        survivors: &mut [Survivor],
        report: &mut GcReport,
    ) -> Result<()> {
        const CHUNK: usize = 1 << 20;
        const READ_BATCH: usize = 256;
        let set = self.vlog.live_set();
        let started = Instant::now();
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + (64 << 10));
        let mut pending: Vec<usize> = Vec::new();
        let mut start = 0;
        while start < survivors.len() {
            let end = (start + READ_BATCH).min(survivors.len());
            // Tombstones have no value to read.
            let reqs: Vec<(ValuePointer, u32, &[u8])> = survivors[start..end]
                .iter()
                .filter(|s| s.put)
                .map(|s| (s.old, s.table, s.key.as_slice()))
                .collect();
            let mut values = self.vlog.read_many_stored(&set, &reqs).into_iter();
            drop(reqs);
            for j in start..end {
                let stored = if survivors[j].put {
                    values.next().ok_or_else(|| {
                        Error::InvalidArgument("GC read fewer values than asked".into())
                    })??
                } else {
                    StoredValue {
                        compressed: false,
                        bytes: Value::from(Vec::new()),
                    }
                };
                let s = &survivors[j];
                let (compressed, value, moved) = self.relocated_form(s, stored)?;
                let len = u64::from(moved.len);
                let pos = self.vlog.gc_head_position();
                let used = pos.map_or(0, |p| p.offset) + buf.len() as u64;
                if pos.is_none() || (used > 0 && used + len > self.opts.segment_size) {
                    self.flush_relocated(&mut buf, &mut pending, survivors, report, started)?;
                    let sealed = self.vlog.gc_head_position();
                    // Sealing the old GC head syncs it.
                    let number = self.versions.new_file_number();
                    let rolled = self.vlog.gc_roll(number);
                    self.or_poison("GC segment roll", rolled)?;
                    pass.note_created(number);
                    self.publish_segments();
                    if let Some(sealed) = sealed {
                        pass.unrecorded_seals.push(SealedSegment {
                            number: sealed.segment,
                            kind: SegmentKind::Gc,
                            len: sealed.offset,
                        });
                        self.write_hint(sealed.segment, sealed.offset);
                    }
                }
                let s = &mut survivors[j];
                s.moved = moved;
                pass.note_seq(self.vlog.gc_head_position(), s.seq);
                record::encode_stored(
                    &mut buf, s.put, compressed, false, s.table, s.seq, &s.key, &value,
                );
                pending.push(j);
                if buf.len() >= CHUNK {
                    self.flush_relocated(&mut buf, &mut pending, survivors, report, started)?;
                }
            }
            start = end;
        }
        self.flush_relocated(&mut buf, &mut pending, survivors, report, started)?;
        let synced = self.vlog.sync_gc();
        self.or_poison("GC sync", synced)
    }

    /// Writes the buffered relocated records at the GC head and records
    /// where each one went.
    fn flush_relocated(
        &self,
        buf: &mut Vec<u8>,
        pending: &mut Vec<usize>,
        survivors: &mut [Survivor],
        report: &mut GcReport,
        started: Instant,
    ) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        // A failed append fails the pass but does not poison: nothing points
        // past the GC head the manifest records until this pass's edit, so
        // whatever reached the segment is overwritten by the next pass (or
        // cut off at the next open).
        let (segment, offset) = self.vlog.gc_append(buf)?;
        let mut at = offset;
        let mut hints = Vec::new();
        for &j in pending.iter() {
            let s = &mut survivors[j];
            let len = s.moved.len;
            s.new = Some(ValuePointer {
                segment,
                offset: at,
                len,
                raw_len: s.moved.raw_len,
            });
            if s.unordered {
                hints.push(HintEntry {
                    put: s.put,
                    table: s.table,
                    seq: s.seq,
                    offset: at,
                    len,
                    raw_len: s.moved.raw_len,
                    key: s.key.clone(),
                });
            }
            at += u64::from(len);
        }
        if !hints.is_empty() {
            self.keydirs.note_relocated(segment, hints);
        }
        report.records_moved += pending.len() as u64;
        report.bytes_moved += buf.len() as u64;
        buf.clear();
        pending.clear();
        self.throttle(started, report.bytes_moved);
        Ok(())
    }

    /// Sleeps as needed to keep GC writes under the configured rate.
    fn throttle(&self, started: Instant, bytes: u64) {
        let rate = self.opts.gc_rate_limit;
        if rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
        let spent = started.elapsed();
        if due > spent {
            std::thread::sleep(due - spent);
        }
    }
}
