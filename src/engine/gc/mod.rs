//! Garbage collection of the vLog: pick sealed segments by a policy, keep the
//! records the index still points at, re-append them at GC's own head in key
//! order, repoint the index, and retire the old segments.
//!
//! A pass, in order (docs/architecture.md, invariants 3–6):
//! 1. Scan each victim and ask the index whether each record is the live
//!    version of its key: the newest visible entry has the record's sequence
//!    number and points at the record's place.
//! 2. Sort the survivors by table and key, and append them to GC segments
//!    (`NNNNNN.gc.vlog`) with their original sequence numbers; sync them.
//! 3. Under the manifest lock, check each survivor again (a write since step
//!    1 wins), sync the user head (the writes that made records dead must
//!    outlive a power loss before those records' only copies go), write the
//!    new pointers as a level-0 SSTable, and record in one manifest edit: the
//!    table, the victims removed, the new GC head.
//!    Relocated entries keep their sequence numbers, so a newer write always
//!    shadows them, and where the same key and sequence number stand twice
//!    the newer source (this table) wins.
//! 4. Retire the victims: out of the live set, deleted once no reader holds
//!    them and no snapshot older than the pass is alive.

mod plan;
mod policy;
mod pressure;
mod relocate;
mod salvage;

use super::counters;
use super::versions::LevelChange;
use super::write::index_entry;
use super::Engine;
use crate::error::{Error, Result};
use crate::files::FileName;
use crate::keydir::{Liveness, Move};
use crate::lsm::ikey::{self, Kind};
use crate::manifest::{SealedSegment, SegmentInfo, VersionEdit};
use crate::options::{GcOptions, GcProgress};
use crate::vlog::{replay_segment, Segment, SegmentKind, ValuePointer};
use parking_lot::Mutex;
use plan::{dry_run_report, Progress};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// GC's own state: passes run one at a time (lock order step 1), and the
/// record of failed passes (taken on its own, briefly, never with another
/// lock but the pass's).
#[derive(Debug, Default)]
pub(super) struct GcState {
    pass: Mutex<PassState>,
    errors: Mutex<GcErrors>,
    /// GC's back-pressure on writers (`pressure.rs`).
    pub(super) pressure: pressure::Pressure,
}

/// Proof that no GC pass runs (and none can start) while it is held.
pub(super) struct NoPass<'a>(#[allow(dead_code)] parking_lot::MutexGuard<'a, PassState>);

impl GcState {
    /// Holds off GC passes, if none is running now (never waits: a caller
    /// may hold locks a pass takes after its own).
    pub(super) fn try_hold_off(&self) -> Option<NoPass<'_>> {
        self.pass.try_lock().map(NoPass)
    }
}

/// Failed passes: counted, the last one kept, and the segments they were
/// blamed on backed off from automatic GC.
#[derive(Debug, Default)]
struct GcErrors {
    count: u64,
    last_error: Option<String>,
    last_segments: Vec<u64>,
    /// Segment → (failures in a row, automatic GC leaves it alone until).
    backoff: BTreeMap<u64, (u32, Instant)>,
}

/// What `Stats` shows of the failed passes.
pub(super) struct GcErrorSummary {
    pub(super) count: u64,
    pub(super) last_error: Option<String>,
    pub(super) last_segments: Vec<u64>,
}

/// The first back-off of a segment automatic GC failed on; it doubles with
/// each further failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What one pass hands the next.
#[derive(Debug, Default)]
struct PassState {
    /// GC segments sealed (synced) by passes whose manifest edit has not
    /// recorded them yet: the next edit of a pass does.
    unrecorded_seals: Vec<SealedSegment>,
    /// The ages of the GC segments the passes wrote, for their next edit
    /// (see `plan.rs`).
    segment_info: BTreeMap<u64, SegmentInfo>,
}

/// Automatic GC starts a round when the estimated space amplification
/// passes `1 + (t - 1) * GC_HIGH_WATER` for a target `t` (1.48 for 1.5)...
pub(crate) const GC_HIGH_WATER: f64 = 0.96;
/// ...and runs it until the estimate is under `1 + (t - 1) * GC_LOW_WATER`
/// (1.45 for 1.5).
pub(crate) const GC_LOW_WATER: f64 = 0.9;

/// What a GC pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct GcReport {
    /// The segments collected (file numbers).
    pub victims: Vec<u64>,
    /// Segments read (a segment that is all garbage by the discard
    /// statistics is retired without being read).
    pub segments_read: u64,
    /// Bytes read from them.
    pub bytes_read: u64,
    /// Records found in them.
    pub records_read: u64,
    /// Live records re-appended at the GC head.
    pub records_moved: u64,
    /// Bytes of those records.
    pub bytes_moved: u64,
    /// Records moved but then superseded by a write during the pass.
    pub records_superseded: u64,
    /// Bytes of the retired segments (freed once no old snapshot needs them).
    pub bytes_freed: u64,
    /// Wall time of the pass, in seconds.
    pub seconds: f64,
    /// Whether this is the plan of a dry run ([`crate::GcOptions::dry_run`]):
    /// nothing changed; `bytes_read` and `bytes_freed` are the victims'
    /// sizes (those all garbage by the discard statistics are not read),
    /// `bytes_moved` their live bytes by the discard statistics, and the
    /// record counts 0.
    pub dry_run: bool,
}

/// A tombstone of an unordered table a pass leaves behind: table, key, and
/// where the keydir points (forgotten if it still points there).
type DroppedTombstone = (u32, Vec<u8>, ValuePointer);

/// A live record found in a victim.
struct Survivor {
    table: u32,
    key: Vec<u8>,
    seq: u64,
    old: ValuePointer,
    new: Option<ValuePointer>,
    /// False for a tombstone (only unordered tables keep those in the vLog).
    put: bool,
    /// Whether its table is unordered (the keydir points at it).
    unordered: bool,
    /// Where it went (filled in by `relocate`).
    moved: relocate::Moved,
}

impl Engine {
    /// Whether the index still points at `ptr` for this key and sequence.
    fn is_live(&self, table: u32, key: &[u8], seq: u64, ptr: &ValuePointer) -> Result<bool> {
        if self.tables.is_dropped(table) {
            return Ok(false);
        }
        let sv = self.versions.current();
        let read_seq = self.read_seq();
        // A range tombstone every new reader sees deletes it.
        if sv.covering(table, key, seq, read_seq).is_some() {
            return Ok(false);
        }
        Ok(match self.newest_entry(&sv, table, key, read_seq)?.entry {
            Some((k, v)) => {
                ikey::seq(&k) == seq
                    && ikey::kind_byte(&k) == Kind::Pointer as u8
                    && ValuePointer::decode(&v).as_ref() == Some(ptr)
            }
            None => false,
        })
    }

    /// Sealed segments GC may take, with their size and garbage: user
    /// segments wholly before the replay point, GC segments behind the GC head.
    pub(super) fn gc_candidates(&self) -> Vec<policy::Candidate> {
        let replay = self.versions.lock_manifest().state().replay_point;
        let discard = self.garbage_by_segment();
        let gc_head = self.vlog.gc_head_position().map(|p| p.segment);
        let newest = self
            .vlog
            .live_set()
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0);
        self.vlog
            .live_set()
            .values()
            .filter(|s| match s.kind {
                SegmentKind::User => s.number < replay.segment,
                SegmentKind::Gc => gc_head.is_some_and(|h| s.number < h),
            })
            .map(|s| {
                let bytes = s.file.len().unwrap_or(0);
                policy::Candidate {
                    number: s.number,
                    bytes,
                    garbage: discard.get(&s.number).copied().unwrap_or(0).min(bytes),
                    age: newest.saturating_sub(s.number) + 1,
                    gc: s.kind == SegmentKind::Gc,
                }
            })
            .collect()
    }

    /// The vLog's space amplification now: bytes on disk over live bytes
    /// (bytes minus the garbage the discard statistics know of). A vLog
    /// with no live byte (a database of only inline values, whose records
    /// there are all garbage once flushed) has no ratio: it counts its bytes
    /// over one segment's, at least 1 (how many segments of garbage it
    /// holds), so that the figure stays a number and GC still takes them.
    pub(super) fn vlog_space_amplification(&self) -> f64 {
        let discard = self.garbage_by_segment();
        self.space_amplification_of(
            self.vlog
                .segment_sizes()
                .into_iter()
                .map(|(n, _, bytes)| (bytes, discard.get(&n).copied().unwrap_or(0))),
        )
    }

    /// The space amplification of segments given as (bytes, known garbage)
    /// (see [`Engine::vlog_space_amplification`]).
    pub(super) fn space_amplification_of(&self, segments: impl Iterator<Item = (u64, u64)>) -> f64 {
        let (mut total, mut garbage) = (0u64, 0u64);
        for (bytes, g) in segments {
            total += bytes;
            garbage += g.min(bytes);
        }
        let live = total.saturating_sub(garbage);
        if live == 0 {
            (total as f64 / self.opts.segment_size.max(1) as f64).max(1.0)
        } else {
            total as f64 / live as f64
        }
    }

    /// Known garbage per segment: the discard statistics of the sorted
    /// index, the dead records of unordered tables, and the early garbage
    /// flushes found (`early.rs`).
    pub(super) fn garbage_by_segment(&self) -> std::collections::BTreeMap<u64, u64> {
        let mut g = self.versions.lock_manifest().state().discard.clone();
        for (seg, bytes) in self.keydirs.garbage() {
            *g.entry(seg).or_insert(0) += bytes;
        }
        for (seg, bytes) in self.early.by_segment() {
            *g.entry(seg).or_insert(0) += bytes;
        }
        g
    }

    /// Runs one GC pass with `opts` (victims chosen by its policy); an empty
    /// report when no segment qualifies.
    pub(crate) fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        self.run_gc(opts, false)
    }

    /// What `Stats` shows of the failed passes.
    pub(super) fn gc_error_summary(&self) -> GcErrorSummary {
        let e = self.gc.errors.lock();
        GcErrorSummary {
            count: e.count,
            last_error: e.last_error.clone(),
            last_segments: e.last_segments.clone(),
        }
    }

    /// One pass; `automatic` leaves out the segments failed passes backed
    /// off from (a pass asked for by hand takes them, and may salvage them).
    fn run_gc(&self, opts: &GcOptions, automatic: bool) -> Result<GcReport> {
        if opts.dry_run {
            self.health.check_open()?;
        } else {
            self.health.check_writable()?;
        }
        let mut pass = self.gc.pass.lock();
        let policy = opts.policy.unwrap_or(self.opts.gc_policy);
        let mut candidates = self.gc_candidates();
        if automatic {
            let now = Instant::now();
            let errors = self.gc.errors.lock();
            candidates.retain(|c| {
                errors
                    .backoff
                    .get(&c.number)
                    .is_none_or(|&(_, until)| until <= now)
            });
        }
        let victims: Vec<u64> = if opts.all_sealed {
            // GC segments without garbage are in key order already.
            candidates
                .iter()
                .filter(|c| !c.gc || c.garbage > 0)
                .map(|c| c.number)
                .collect()
        } else {
            policy::pick(
                policy,
                &candidates,
                opts.max_segments.unwrap_or(1),
                opts.min_garbage_ratio
                    .unwrap_or(self.opts.gc_min_garbage_ratio),
            )
        };
        if opts.dry_run {
            return Ok(dry_run_report(&candidates, &victims));
        }
        if victims.is_empty() {
            return Ok(GcReport::default());
        }
        let progress = opts.progress.as_ref().map(|f| {
            let bytes_total = candidates
                .iter()
                .filter(|c| victims.contains(&c.number))
                .map(|c| c.bytes)
                .sum();
            (f, bytes_total)
        });
        let mut progress = Progress(progress.map(|(f, bytes_total)| {
            let p = GcProgress {
                segments_total: victims.len() as u64,
                bytes_total,
                ..GcProgress::default()
            };
            (f.0)(&p);
            (f.clone(), p)
        }));
        let r = self.gc_pass(&mut pass, &victims, opts.salvage, &mut progress);
        self.note_pass_outcome(&victims, r.as_ref().err());
        if r.is_ok() {
            self.early.forget(&victims);
        }
        r
    }

    /// Counts a failed pass and backs its segments off; a pass that worked
    /// clears its victims' back-off.
    fn note_pass_outcome(&self, victims: &[u64], err: Option<&Error>) {
        let mut errors = self.gc.errors.lock();
        let Some(e) = err else {
            for v in victims {
                errors.backoff.remove(v);
            }
            return;
        };
        // The damaged segment, when the error names one of the victims.
        let named = match e {
            Error::Corruption { file, .. } => file
                .file_name()
                .and_then(|n| FileName::parse(&n.to_string_lossy()))
                .and_then(|f| match f {
                    FileName::Segment(n) | FileName::GcSegment(n) => Some(n),
                    _ => None,
                })
                .filter(|n| victims.contains(n)),
            _ => None,
        };
        let blamed: Vec<u64> = named.map_or_else(|| victims.to_vec(), |n| vec![n]);
        let now = Instant::now();
        for &s in &blamed {
            let entry = errors.backoff.entry(s).or_insert((0, now));
            entry.0 += 1;
            let delay = FIRST_BACKOFF
                .saturating_mul(1 << (entry.0 - 1).min(16))
                .min(MAX_BACKOFF);
            entry.1 = now + delay;
        }
        errors.count += 1;
        errors.last_error = Some(e.to_string());
        errors.last_segments = blamed.clone();
        drop(errors);
        log::warn!(
            "{}: GC pass over {victims:?} failed (automatic GC leaves {blamed:?} alone for a while): {e}",
            self.dir.display()
        );
    }

    fn gc_pass(
        &self,
        pass: &mut PassState,
        victims: &[u64],
        salvage: bool,
        progress: &mut Progress,
    ) -> Result<GcReport> {
        let started = Instant::now();
        let mut report = GcReport {
            victims: victims.to_vec(),
            ..Default::default()
        };
        let set = self.vlog.live_set();
        let segs: Vec<Arc<Segment>> = victims.iter().filter_map(|n| set.get(n).cloned()).collect();
        drop(set);

        // 1. Survivors: by scanning the victims, or (salvage) from the index.
        let (mut survivors, dropped_tombstones) = if salvage {
            let found = self.survivors_from_index(&segs, victims, &mut report)?;
            for seg in &segs {
                progress.step(seg.file.len().unwrap_or(0));
            }
            found
        } else {
            self.survivors_by_scan(&segs, victims, &mut report, progress)?
        };
        self.finish_pass(
            pass,
            victims,
            &segs,
            survivors.as_mut_slice(),
            &dropped_tombstones,
            report,
            started,
        )
    }

    /// The victims' live records, found by reading every record of each
    /// and asking the index. A segment the discard statistics count as all
    /// garbage has none: it is not read. (Only the sorted index's
    /// statistics: a segment they call all garbage holds no record of an
    /// unordered table.)
    fn survivors_by_scan(
        &self,
        segs: &[Arc<Segment>],
        victims: &[u64],
        report: &mut GcReport,
        progress: &mut Progress,
    ) -> Result<(Vec<Survivor>, Vec<DroppedTombstone>)> {
        let discard = self.versions.lock_manifest().state().discard.clone();
        let mut survivors = Vec::new();
        let mut dropped_tombstones: Vec<DroppedTombstone> = Vec::new();
        for seg in segs {
            let len = seg
                .file
                .len()
                .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
            if discard.get(&seg.number).is_some_and(|&g| g >= len) {
                progress.step(len);
                continue;
            }
            report.segments_read += 1;
            report.bytes_read += len;
            replay_segment(seg, 0, false, 0, |batch| {
                for r in batch.records {
                    report.records_read += 1;
                    if self.keydirs.is_unordered(r.table) {
                        match self
                            .keydirs
                            .liveness(r.table, &r.key, r.seq, &r.pointer, victims)
                        {
                            Liveness::Live => survivors.push(Survivor {
                                table: r.table,
                                key: r.key,
                                seq: r.seq,
                                old: r.pointer,
                                new: None,
                                put: r.is_put,
                                unordered: true,
                                moved: Default::default(),
                            }),
                            Liveness::DropTombstone => {
                                dropped_tombstones.push((r.table, r.key, r.pointer));
                            }
                            Liveness::Dead => {}
                        }
                    } else if r.is_put && self.is_live(r.table, &r.key, r.seq, &r.pointer)? {
                        survivors.push(Survivor {
                            table: r.table,
                            key: r.key,
                            seq: r.seq,
                            old: r.pointer,
                            new: None,
                            put: true,
                            unordered: false,
                            moved: Default::default(),
                        });
                    }
                }
                Ok(())
            })?;
            progress.step(len);
        }
        Ok((survivors, dropped_tombstones))
    }

    /// Steps 2 to 4 of a pass, over its survivors.
    #[allow(clippy::too_many_arguments)]
    fn finish_pass(
        &self,
        pass: &mut PassState,
        victims: &[u64],
        segs: &[Arc<Segment>],
        survivors: &mut [Survivor],
        dropped_tombstones: &[DroppedTombstone],
        mut report: GcReport,
        started: Instant,
    ) -> Result<GcReport> {
        // 2. Key order, then append at the GC head.
        survivors.sort_by(|a, b| (a.table, &a.key).cmp(&(b.table, &b.key)));
        self.relocate(pass, survivors, &mut report)?;

        // 3. Repoint the index: one table and one manifest edit.
        let mut vs = self.versions.lock_manifest();
        let mut entries = Vec::with_capacity(survivors.len());
        let mut superseded: Vec<(u64, u64)> = Vec::new();
        let mut moves: Vec<Move> = Vec::new();
        let mut segment_dicts: Vec<(u64, u64)> = Vec::new();
        for s in survivors.iter() {
            let Some(new) = s.new else { continue };
            if s.moved.dict != 0 && !segment_dicts.contains(&(new.segment, s.moved.dict)) {
                segment_dicts.push((new.segment, s.moved.dict));
            }
            if s.unordered {
                // Repointed (if still the newest) once the edit is durable.
                moves.push(Move {
                    table: s.table,
                    key: s.key.clone(),
                    old: s.old,
                    new,
                });
                continue;
            }
            if self.is_live(s.table, &s.key, s.seq, &s.old)? {
                entries.push(index_entry(s.table, &s.key, s.seq, true, None, new));
            } else {
                report.records_superseded += 1;
                match superseded.iter_mut().find(|(seg, _)| *seg == new.segment) {
                    Some((_, b)) => *b += u64::from(new.len),
                    None => superseded.push((new.segment, u64::from(new.len))),
                }
            }
        }
        // Records judged dead were superseded by writes this pass saw; those
        // must survive a power loss before the records' only copies go.
        self.sync_vlog()?;
        let mut it = entries.into_iter();
        // Its sync may have failed: never trusted again (invariant 8).
        let written = self.write_ssts(0, u64::MAX, || Ok(it.next()));
        let tables = self.or_poison("GC table write", written)?;
        let live_after: Vec<u64> = self
            .vlog
            .live_set()
            .keys()
            .copied()
            .filter(|n| !victims.contains(n))
            .collect();
        let edit = VersionEdit {
            added: tables.iter().map(|t| t.meta.clone()).collect(),
            segments_removed: victims.to_vec(),
            discard: superseded,
            gc_head: self.vlog.gc_head_position(),
            vlog_tail: live_after.first().copied(),
            sealed: std::mem::take(&mut pass.unrecorded_seals),
            segment_info: std::mem::take(&mut pass.segment_info)
                .into_values()
                .collect(),
            values: crate::manifest::values::ValuesEdit {
                segment_dicts,
                ..Default::default()
            },
            ..Default::default()
        };
        // A failed append leaves the edit's fate unknown: keep the table
        // (the next open removes it if the manifest does not name it).
        self.log_and_apply(
            &mut vs,
            edit,
            LevelChange {
                added: tables,
                ..LevelChange::default()
            },
        )?;
        // 4. Repoint the keydirs and retire the victims (the edit that drops
        // them is durable), with keydir readers held off meanwhile.
        let pass_seq = self.read_seq();
        report.records_superseded +=
            self.keydirs
                .commit_gc(&moves, dropped_tombstones, victims, || {
                    self.vlog.retire(victims, pass_seq);
                    self.publish_segments();
                });
        drop(vs);
        for &v in victims {
            crate::vlog::hint::remove(&self.fs, &self.dir, v);
        }
        self.release_retired_segments();
        for seg in segs {
            report.bytes_freed += seg.file.len().unwrap_or(0);
        }
        report.seconds = started.elapsed().as_secs_f64();
        let c = &self.counters;
        counters::add(&c.gc_passes, 1);
        counters::add(&c.gc_bytes_read, report.bytes_read);
        counters::add(&c.gc_bytes_moved, report.bytes_moved);
        counters::add(&c.gc_bytes_freed, report.bytes_freed);
        counters::add(&c.gc_records_moved, report.records_moved);
        log::info!(
            "{}: GC pass over {:?}: read {} records ({} bytes), moved {} ({} bytes, {} superseded), freed {} bytes in {:.3}s",
            self.dir.display(),
            victims,
            report.records_read,
            report.bytes_read,
            report.records_moved,
            report.bytes_moved,
            report.records_superseded,
            report.bytes_freed,
            report.seconds
        );
        self.workers.wake_compaction();
        self.remove_unused_dicts();
        Ok(report)
    }
}
