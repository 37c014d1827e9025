//! GC's back-pressure on writers: when the vLog's space amplification passes
//! its target and automatic GC has work it can do, the commit leader waits
//! for GC before it appends, as it waits for flushes and level-0 compactions.
//!
//! Without it, one writer of 4 KiB values outran automatic GC: the vLog
//! reached 2.1 times its live bytes against a 1.5 target during sustained
//! uniform overwrites (docs/benchmarks.md). With it, the vLog's space
//! amplification (by the discard statistics, as `Stats` shows it) stays at
//! the target, and the writers get the throughput the disk has left after
//! GC's reads and writes.
//!
//! The rules:
//! * The leader stalls while the estimate is over
//!   [`crate::Options::gc_space_amp_target`] and resumes once it is back
//!   under GC's high-water mark (`GC_HIGH_WATER`), where a round of
//!   automatic GC would start anyway.
//! * It never waits for GC that cannot help: when automatic GC last found
//!   no segment worth collecting while over the target (the garbage is
//!   still in segments GC may not take yet, or spread too thin), GC is
//!   *idle* and writers go on, until a flush or compaction brings news.
//! * It goes on when no GC pass has ended for [`NO_PASS_LIMIT`] while it
//!   waits (GC stopped for a reason the estimate does not see).
//! * It stops waiting when the database closes or is poisoned, and waits
//!   in steps of [`STEP`], so a missed wake-up costs milliseconds.
//! * The estimate runs ahead of the statistics: besides the garbage they
//!   know of (early garbage included, `early.rs`), it counts the share of
//!   the writes not flushed yet that the last flushes found to be
//!   overwrites. It is recomputed at most every [`REFRESH`], so a leader
//!   pays for it a few hundred times a second at most.
//!
//! Stalls are counted in `Stats::gc_write_stalls` and their time in
//! `Stats::gc_stall_seconds`.

use super::super::Engine;
use super::{GC_HIGH_WATER, GC_LOW_WATER};
use crate::error::Result;
use crate::options::GcOptions;
use crate::vlog::SegmentKind;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a stalled leader sleeps before it looks again (a GC pass also
/// wakes it when it ends).
const STEP: Duration = Duration::from_millis(5);

/// How long a stalled leader waits for a GC pass to end before it goes on.
const NO_PASS_LIMIT: Duration = Duration::from_secs(1);

/// How old the space-amplification estimate may be.
const REFRESH: Duration = Duration::from_millis(2);

/// The back-pressure state of one open.
#[derive(Debug, Default)]
pub(in crate::engine) struct Pressure {
    /// The last estimate and when it was made.
    estimate: Mutex<Option<(Instant, f64)>>,
    /// Automatic GC found nothing to collect over the target.
    idle: AtomicBool,
    /// Groups that stalled, and the time they spent.
    stalls: AtomicU64,
    stall_nanos: AtomicU64,
}

impl Pressure {
    /// Stalls and their total time, for `Stats`.
    pub(in crate::engine) fn counts(&self) -> (u64, f64) {
        (
            self.stalls.load(Ordering::Relaxed),
            self.stall_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }

    /// Automatic GC says whether it could collect anything in its round.
    pub(in crate::engine) fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }
}

impl Engine {
    /// The vLog's space amplification ahead of the statistics, at most
    /// [`REFRESH`] old (see [`Engine::vlog_space_amplification_ahead`]).
    fn space_amp_estimate(&self) -> f64 {
        let now = Instant::now();
        if let Some((at, sa)) = *self.gc.pressure.estimate.lock() {
            if now.duration_since(at) < REFRESH {
                return sa;
            }
        }
        let sa = self.vlog_space_amplification_ahead();
        *self.gc.pressure.estimate.lock() = Some((now, sa));
        sa
    }

    /// The vLog's space amplification counting, beside the garbage the
    /// statistics know of, the garbage the writes not flushed yet are
    /// likely to have made: their bytes times the share of overwrites the
    /// last flushes found ([`super::super::early::EarlyGarbage::overwrite_ratio`]).
    /// Without it, a memtable and the frozen ones behind it (up to three
    /// times `max_replay_bytes` of the vLog) are garbage no one has counted.
    pub(in crate::engine) fn vlog_space_amplification_ahead(&self) -> f64 {
        let discard = self.garbage_by_segment();
        let replay = self.versions.lock_manifest().state().replay_point;
        let head = self.vlog.head_position();
        let (mut total, mut garbage, mut unflushed) = (0u64, 0u64, 0u64);
        for (n, kind, bytes) in self.vlog.segment_sizes() {
            total += bytes;
            garbage += discard.get(&n).copied().unwrap_or(0).min(bytes);
            if kind == SegmentKind::User && n >= replay.segment && n <= head.segment {
                let end = if n == head.segment {
                    head.offset
                } else {
                    bytes
                };
                let start = if n == replay.segment {
                    replay.offset
                } else {
                    0
                };
                unflushed += end.saturating_sub(start);
            }
        }
        let unknown = unflushed as f64 * self.early.overwrite_ratio();
        let live = total.saturating_sub(garbage) as f64 - unknown;
        if live <= 0.0 {
            // Nothing live by this count: the statistics alone decide.
            return self.vlog_space_amplification();
        }
        total as f64 / live
    }

    /// Called by the commit leader before it appends a group: waits while
    /// GC is behind its target and able to catch up (see the module docs).
    pub(in crate::engine) fn wait_for_gc(&self) -> Result<()> {
        if !self.opts.background_gc || !self.opts.gc_back_pressure {
            return Ok(());
        }
        let p = &self.gc.pressure;
        let target = self.opts.gc_space_amp_target;
        if p.is_idle() || self.space_amp_estimate() <= target {
            return Ok(());
        }
        let resume = 1.0 + (target - 1.0) * GC_HIGH_WATER;
        let started = Instant::now();
        p.stalls.fetch_add(1, Ordering::Relaxed);
        self.workers.wake_gc();
        // A pass a second at least, or the writers go on: they never wait
        // for a GC that has stopped for a reason this module cannot see.
        let mut passes = super::super::counters::get(&self.counters.gc_passes);
        let mut last_pass = Instant::now();
        let r = loop {
            if let Err(e) = self.health.check_writable() {
                break Err(e);
            }
            if p.is_idle() || self.space_amp_estimate() <= resume {
                break Ok(());
            }
            let now_passes = super::super::counters::get(&self.counters.gc_passes);
            if now_passes != passes {
                passes = now_passes;
                last_pass = Instant::now();
            } else if last_pass.elapsed() >= NO_PASS_LIMIT {
                break Ok(());
            }
            self.workers.wait_for_change(STEP);
        };
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        p.stall_nanos.fetch_add(spent, Ordering::Relaxed);
        r
    }

    /// Automatic GC: while the vLog's space amplification is over the
    /// target, collect the segment the policy likes best.
    ///
    /// The discard statistics lag: an overwritten value counts as garbage
    /// only once a flush or compaction meets both versions. So a round of
    /// passes starts a little under the target ([`GC_HIGH_WATER`]) and goes
    /// on to [`GC_LOW_WATER`], which leaves room for garbage not found yet.
    pub(in crate::engine) fn auto_gc(&self) -> Result<()> {
        let target = self.opts.gc_space_amp_target;
        let high = 1.0 + (target - 1.0) * GC_HIGH_WATER;
        // The estimate that runs ahead of the statistics (`pressure.rs`),
        // the one writers wait on: GC works until that one is low.
        if self.vlog_space_amplification_ahead() <= high {
            self.gc.pressure.set_idle(false);
            return Ok(());
        }
        let low = 1.0 + (target - 1.0) * GC_LOW_WATER;
        let mut passes = 0;
        while self.vlog_space_amplification_ahead() > low && passes < 64 {
            if self.health.is_closed() {
                break;
            }
            let report = match self.run_gc(&GcOptions::default(), true) {
                Ok(r) => r,
                Err(e) => {
                    // Writers must not wait for a GC that fails.
                    self.gc.pressure.set_idle(true);
                    self.workers.signal();
                    return Err(e);
                }
            };
            // Stalled writers wait for a round that can collect something.
            self.gc.pressure.set_idle(report.victims.is_empty());
            self.workers.signal();
            if report.victims.is_empty() {
                break;
            }
            passes += 1;
        }
        Ok(())
    }
}
