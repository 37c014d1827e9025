//! A pass seen from outside: the plan of a dry run (which victims, and the
//! bytes a pass would read, move and free by the discard statistics) and
//! the progress of a pass for a caller's progress bar.

use super::{policy, GcReport, PassState};
use crate::manifest::{unix_now, SegmentInfo};
use crate::options::{GcProgress, GcProgressFn};
use crate::vlog::Position;

impl PassState {
    /// GC segment `number` was made now.
    pub(super) fn note_created(&mut self, number: u64) {
        let info = SegmentInfo {
            number,
            created_unix_secs: unix_now(),
            ..SegmentInfo::default()
        };
        self.segment_info.entry(number).or_insert(info).merge(&info);
    }

    /// A record of sequence number `seq` goes to the GC head at `head`.
    pub(super) fn note_seq(&mut self, head: Option<Position>, seq: u64) {
        if let Some(h) = head {
            let i = self.segment_info.entry(h.segment).or_insert(SegmentInfo {
                number: h.segment,
                ..SegmentInfo::default()
            });
            i.merge(&SegmentInfo {
                number: h.segment,
                created_unix_secs: 0,
                min_seq: seq,
                max_seq: seq,
            });
        }
    }
}

/// The progress callback of a pass and where the pass is.
pub(super) struct Progress(pub(super) Option<(GcProgressFn, GcProgress)>);

impl Progress {
    /// One more victim done, of `bytes`.
    pub(super) fn step(&mut self, bytes: u64) {
        if let Some((f, p)) = &mut self.0 {
            p.segments_done += 1;
            p.bytes_read += bytes;
            (f.0)(p);
        }
    }
}

/// The report of a dry run: `victims` among `candidates`, with the bytes a
/// pass would read, move and free by the discard statistics.
pub(super) fn dry_run_report(candidates: &[policy::Candidate], victims: &[u64]) -> GcReport {
    let mut r = GcReport {
        victims: victims.to_vec(),
        dry_run: true,
        ..GcReport::default()
    };
    for c in candidates.iter().filter(|c| victims.contains(&c.number)) {
        if c.garbage < c.bytes {
            r.segments_read += 1;
            r.bytes_read += c.bytes;
        }
        r.bytes_moved += c.bytes - c.garbage;
        r.bytes_freed += c.bytes;
    }
    r
}
