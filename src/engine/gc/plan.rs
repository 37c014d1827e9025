//! A pass seen from outside: the plan of a dry run (which victims, and the
//! bytes a pass would read, move and free by the discard statistics) and
//! the progress of a pass for a caller's progress bar.

use super::{policy, GcReport};
use crate::options::{GcProgress, GcProgressFn};

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
