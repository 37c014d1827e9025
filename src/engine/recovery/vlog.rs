//! The vLog's part of opening: the sealed segments the manifest records
//! are checked, the user and GC segments opened, the user segments
//! replayed into memtables, and the keydirs rebuilt.

use super::super::versions::LoggedMemtable;
use super::super::write::index_entry;
use super::Blame;
use crate::error::{Error, Result};
use crate::files::{self, FileName};
use crate::io::Fs;
use crate::keydir::Keydirs;
use crate::lsm::range_del::RangeTombstone;
use crate::manifest::{ManifestState, SealedSegment};
use crate::options::{Options, TableKind};
use crate::vlog::{replay_segment, Position, Segment, SegmentKind, VLog};
use std::path::Path;
use std::sync::Arc;

/// Checks that every sealed segment the manifest records is there with at
/// least the length it was sealed at, and that the recorded user head is
/// there too. A seal is recorded only after
/// its sync and after the next segment's directory entry is durable, so a
/// power loss never explains a miss: the segment (or its tail) was lost, or
/// the manifest does not describe the directory (a missing file is blamed
/// on the manifest, as for SSTables, and the message names the segment).
/// File numbers are global, so a gap in them proves nothing; the recorded
/// set does.
pub(super) fn check_sealed_segments(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    state: &ManifestState,
    names: &[(&str, FileName)],
    blame: &Blame,
) -> Result<()> {
    for s in state.sealed.values() {
        if s.number < state.vlog_tail || state.segments_removed.contains(&s.number) {
            continue;
        }
        let (name, on_disk) = match s.kind {
            SegmentKind::User => (files::segment(s.number), FileName::Segment(s.number)),
            SegmentKind::Gc => (files::gc_segment(s.number), FileName::GcSegment(s.number)),
        };
        let path = dir.join(&name);
        if !names.iter().any(|(_, f)| *f == on_disk) {
            return Err(blame.missing(
                &path,
                s.len,
                &format!(
                    "{name} is missing: the manifest records it sealed at {} bytes",
                    s.len
                ),
            ));
        }
        let len = fs
            .open(&path, false)
            .and_then(|f| f.len())
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if len < s.len {
            return Err(Error::corruption(
                &path,
                len,
                format!(
                    "the segment ends at {len} bytes but was sealed at {} (the manifest records it): records were cut off",
                    s.len
                ),
            ));
        }
    }
    // The head: made (and its directory entry synced) before the manifest
    // named it.
    let head = state.vlog_head;
    if head != 0
        && head >= state.vlog_tail
        && !names.iter().any(|(_, f)| *f == FileName::Segment(head))
    {
        return Err(blame.missing(
            &dir.join(files::segment(head)),
            0,
            &format!(
                "{} is missing: the manifest records it as the vLog head",
                files::segment(head)
            ),
        ));
    }
    Ok(())
}

/// Records the sealed segments the manifest does not list yet (a database
/// written before seals were recorded, or a seal whose edit a crash cut
/// short): every live segment but the two heads, at its length now, so
/// that the next open checks them.
pub(super) fn record_unrecorded_seals(vlog: &VLog, state: &mut ManifestState) -> Result<()> {
    let head = vlog.head_position().segment;
    let gc_head = vlog.gc_head_position().map(|p| p.segment);
    for seg in vlog.live_set().values() {
        if seg.number == head
            || Some(seg.number) == gc_head
            || state.sealed.contains_key(&seg.number)
        {
            continue;
        }
        let len = seg
            .file
            .len()
            .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
        state.sealed.insert(
            seg.number,
            SealedSegment {
                number: seg.number,
                kind: seg.kind,
                len,
            },
        );
    }
    Ok(())
}

/// The user segments from the tail on, oldest first; the newest is opened
/// for writing.
pub(super) fn open_user_segments(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    state: &ManifestState,
    names: &[(&str, FileName)],
    blame: &Blame,
    read_only: bool,
) -> Result<Vec<Arc<Segment>>> {
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|(_, f)| match f {
            FileName::Segment(n) => Some(*n),
            _ => None,
        })
        .filter(|n| *n >= state.vlog_tail && !state.segments_removed.contains(n))
        .collect();
    numbers.sort_unstable();
    let rp = state.replay_point;
    if !numbers.contains(&rp.segment) {
        return Err(blame.missing(
            &dir.join(files::segment(rp.segment)),
            rp.offset,
            "the vLog segment holding the replay point is missing",
        ));
    }
    let mut segments = Vec::with_capacity(numbers.len());
    for (i, &n) in numbers.iter().enumerate() {
        let path = dir.join(files::segment(n));
        let writable = i + 1 == numbers.len() && !read_only;
        let file = fs
            .open(&path, writable)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        segments.push(Arc::new(Segment::new(
            fs.clone(),
            n,
            SegmentKind::User,
            path,
            file,
        )));
    }
    Ok(segments)
}

/// The GC segments from the tail up to the GC head the manifest knows.
/// Anything past it was written by a pass that a crash cut short, before
/// its index entries were recorded: nothing points there, and it is cut
/// off (a whole segment past the head is left for [`remove_leftovers`]).
pub(super) fn open_gc_segments(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    state: &ManifestState,
    names: &[(&str, FileName)],
    blame: &Blame,
    read_only: bool,
) -> Result<Vec<Arc<Segment>>> {
    let gc_head = state.gc_head;
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|(_, f)| match f {
            FileName::GcSegment(n) => Some(*n),
            _ => None,
        })
        .filter(|n| {
            *n >= state.vlog_tail && *n <= gc_head.segment && !state.segments_removed.contains(n)
        })
        .collect();
    numbers.sort_unstable();
    if gc_head.segment != 0 && !numbers.contains(&gc_head.segment) {
        return Err(blame.missing(
            &dir.join(files::gc_segment(gc_head.segment)),
            gc_head.offset,
            "the GC head segment named by the manifest is missing",
        ));
    }
    let mut segments = Vec::with_capacity(numbers.len());
    for &n in &numbers {
        let path = dir.join(files::gc_segment(n));
        let is_head = n == gc_head.segment;
        let file = fs
            .open(&path, is_head && !read_only)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        if is_head {
            let len = file
                .len()
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            if len < gc_head.offset {
                return Err(blame.missing(
                    &path,
                    len,
                    "GC segment is shorter than the manifest records",
                ));
            }
            if len > gc_head.offset && read_only {
                log::warn!(
                    "{}: {} bytes past the GC head, left by a crashed GC pass (read-only: not cut off)",
                    path.display(),
                    len - gc_head.offset
                );
            } else if len > gc_head.offset {
                log::warn!(
                    "{}: dropping {} bytes a crashed GC pass left",
                    path.display(),
                    len - gc_head.offset
                );
                file.set_len(gc_head.offset)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| Error::io(format!("truncating {}", path.display()), e))?;
            }
        }
        segments.push(Arc::new(Segment::new(
            fs.clone(),
            n,
            SegmentKind::Gc,
            path,
            file,
        )));
    }
    Ok(segments)
}

/// What replay rebuilt.
pub(super) struct Replayed {
    pub(super) mem: Arc<LoggedMemtable>,
    /// Frozen memtables (a long replay fills more than one), newest first.
    pub(super) imms: Vec<Arc<LoggedMemtable>>,
    pub(super) last_seq: u64,
    /// Where appending goes on in the newest user segment.
    pub(super) head_offset: u64,
}

/// Replays the user segments from the replay point into memtables (records
/// of unordered tables only move the sequence number: their keydirs are
/// rebuilt from every segment), and truncates a torn tail of the newest.
pub(super) fn replay(
    segments: &[Arc<Segment>],
    state: &ManifestState,
    opts: &Options,
    keydirs: &Keydirs,
) -> Result<Replayed> {
    let rp = state.replay_point;
    let mut imms: Vec<Arc<LoggedMemtable>> = Vec::new();
    let mut mem = LoggedMemtable::new(rp);
    let mut last_seq = state.last_sequence;
    let mut head_offset = 0;
    let mut replayed = 0u64;
    for (i, seg) in segments.iter().enumerate() {
        if seg.number < rp.segment {
            continue;
        }
        let start = if seg.number == rp.segment {
            rp.offset
        } else {
            0
        };
        let is_last = i + 1 == segments.len();
        let outcome = replay_segment(seg, start, is_last, opts.value_threshold, |batch| {
            let Some(first) = batch.records.first() else {
                return Ok(());
            };
            if mem.table.approx_bytes() >= opts.memtable_size
                || mem.log_bytes() >= opts.max_replay_bytes
            {
                let start = Position {
                    segment: first.pointer.segment,
                    offset: first.pointer.offset,
                };
                let full = std::mem::replace(&mut mem, LoggedMemtable::new(start));
                imms.insert(0, full);
            }
            for r in batch.records {
                last_seq = last_seq.max(r.seq);
                replayed += 1;
                mem.add_log_bytes(u64::from(r.pointer.len));
                if keydirs.is_unordered(r.table) {
                    continue;
                }
                if let Some(d) = state.dropped_tables.get(&r.table) {
                    // A dropped table's record: never back in an index. An
                    // unordered one the keydirs count as garbage.
                    if d.kind == TableKind::Ordered {
                        mem.add_wal_garbage(r.pointer.segment, u64::from(r.pointer.len));
                    }
                    continue;
                }
                if r.is_range_delete {
                    let end = r
                        .inline_value
                        .as_deref()
                        .and_then(RangeTombstone::decode_end)
                        .ok_or_else(|| {
                            Error::corruption(
                                &seg.path,
                                r.pointer.offset,
                                "a range delete record whose end does not decode",
                            )
                        })?;
                    mem.add_range_dels([RangeTombstone {
                        table: r.table,
                        seq: r.seq,
                        start: r.key,
                        end,
                    }]);
                    continue;
                }
                let (k, v) = index_entry(
                    r.table,
                    &r.key,
                    r.seq,
                    r.is_put,
                    r.inline_value.as_deref(),
                    r.pointer,
                );
                mem.table.insert(k, v);
            }
            Ok(())
        })?;
        if is_last {
            head_offset = outcome.valid_end;
            if outcome.torn && opts.read_only {
                log::warn!(
                    "{}: torn tail from offset {} (read-only: reported, not truncated)",
                    seg.path.display(),
                    outcome.valid_end
                );
            } else if outcome.torn {
                seg.file
                    .set_len(outcome.valid_end)
                    .and_then(|_| seg.file.sync_all())
                    .map_err(|e| Error::io(format!("truncating {}", seg.path.display()), e))?;
            }
        }
    }
    if replayed > 0 {
        log::info!("replayed {replayed} records from the vLog");
    }
    if let (Some(last), true) = (segments.last(), head_offset == 0) {
        // A last segment before the replay point (never replayed) or empty.
        head_offset = last
            .file
            .len()
            .map_err(|e| Error::io(format!("reading {}", last.path.display()), e))?;
    }
    Ok(Replayed {
        mem,
        imms,
        last_seq,
        head_offset,
    })
}
