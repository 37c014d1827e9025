//! Early garbage: the vLog records a flush finds overwritten or deleted,
//! counted when the newer version is flushed instead of when a compaction
//! finally meets both versions.
//!
//! The discard statistics (durable, in the manifest) learn that a record is
//! garbage only when a flush or compaction drops its entry, and with
//! leveled compaction that lags: the newer version sits in level 0 or an
//! upper level for a while, and then one compaction reveals a batch of
//! garbage at once. Measured with one writer overwriting 1,000,000 × 4 KiB
//! values, the vLog's known space amplification stepped from 1.40 to 1.64
//! in one such compaction while the true one was 1.69 (docs/benchmarks.md),
//! so neither GC's victim choice nor its back-pressure on writers
//! (`gc/pressure.rs`) could hold a 1.5 target.
//!
//! So a flush probes the tree: for each key whose oldest version it writes
//! is a pointer or a tombstone, it looks up the newest version already in
//! the SSTables (one point read; the bloom filters rule most tables out),
//! and where that is a pointer, adds the record's bytes to its segment's
//! early garbage here. The count is exact and in memory only:
//!
//! * When a compaction later drops that older entry, the version right
//!   above it is the probed one (a pointer or tombstone with a sequence
//!   number from this open, see [`EarlyGarbage::counted`]): the compaction
//!   adds the bytes to the durable discard statistics as always, and takes
//!   them off here, in the same manifest critical section, so they are
//!   never counted twice.
//! * A reopen starts with none: what was early is found again by the
//!   compactions, as before.
//! * Segments GC retires are forgotten.
//!
//! Only the newest version counts here, as in GC's liveness check: a record
//! a snapshot still reads is early garbage, and GC keeps its segment
//! readable for the snapshot (a retired segment waits for older snapshots),
//! as it does for every record it does not move.

use crate::lsm::ikey::Kind;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The early garbage of one open (see the module docs).
#[derive(Debug)]
pub(super) struct EarlyGarbage {
    /// Versions from this sequence number on were flushed with a probe.
    from_seq: u64,
    /// Bytes per segment.
    bytes: Mutex<BTreeMap<u64, u64>>,
    /// Of the record bytes of the pointer versions flushes probed below,
    /// the share that hid an older pointer: a moving average over flushes,
    /// in millionths (see [`EarlyGarbage::overwrite_ratio`]).
    overwrite_ppm: AtomicU64,
}

impl EarlyGarbage {
    /// Probes count for versions numbered `from_seq` and later (the first
    /// sequence number of this open: older versions may have been flushed
    /// before it, without a probe).
    pub(super) fn new(from_seq: u64) -> EarlyGarbage {
        EarlyGarbage {
            from_seq,
            bytes: Mutex::new(BTreeMap::new()),
            overwrite_ppm: AtomicU64::new(0),
        }
    }

    /// Whether a flush probes below a version of this sequence number and
    /// kind (the oldest version of its key the flush writes).
    pub(super) fn probes(&self, seq: u64, kind: u8) -> bool {
        seq >= self.from_seq && (kind == Kind::Pointer as u8 || kind == Kind::Delete as u8)
    }

    /// Whether the entry a compaction drops under this version (the one
    /// right above it) was counted here by that version's flush.
    pub(super) fn counted(&self, newer_seq: u64, newer_kind: u8) -> bool {
        self.probes(newer_seq, newer_kind)
    }

    /// Adds what a flush found (call before its edit is applied, so that no
    /// compaction can settle the bytes first).
    pub(super) fn add(&self, found: &BTreeMap<u64, u64>) {
        let mut b = self.bytes.lock();
        for (&seg, &n) in found {
            *b.entry(seg).or_insert(0) += n;
        }
    }

    /// A flush probed below pointer versions of `probed` record bytes and
    /// found `found` bytes of older pointers under them.
    pub(super) fn note_flush(&self, probed: u64, found: u64) {
        if probed == 0 {
            return;
        }
        let now = (found as f64 / probed as f64).clamp(0.0, 1.0);
        let before = self.overwrite_ratio();
        // Half the weight on the newest flush: a load turning into
        // overwrites shows within two or three flushes.
        let avg = 0.5 * before + 0.5 * now;
        self.overwrite_ppm
            .store((avg * 1e6).round() as u64, Ordering::Relaxed);
    }

    /// How much of what users write now overwrites (or deletes) a value
    /// already in the vLog, by bytes, as the last flushes found: about 1 for
    /// uniform overwrites of a loaded set, 0 for a load of new keys. Writes
    /// not flushed yet hide about this share of their bytes as garbage the
    /// statistics do not know of yet; GC's back-pressure counts it.
    pub(super) fn overwrite_ratio(&self) -> f64 {
        self.overwrite_ppm.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Takes off what a compaction made durable.
    pub(super) fn settle(&self, durable: &BTreeMap<u64, u64>) {
        let mut b = self.bytes.lock();
        for (seg, n) in durable {
            if let Some(have) = b.get_mut(seg) {
                *have = have.saturating_sub(*n);
                if *have == 0 {
                    b.remove(seg);
                }
            }
        }
    }

    /// Forgets retired segments.
    pub(super) fn forget(&self, segments: &[u64]) {
        let mut b = self.bytes.lock();
        for s in segments {
            b.remove(s);
        }
    }

    /// Bytes per segment now.
    pub(super) fn by_segment(&self) -> BTreeMap<u64, u64> {
        self.bytes.lock().clone()
    }

    /// All of it.
    pub(super) fn total(&self) -> u64 {
        self.bytes.lock().values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_pointers_and_tombstones_of_this_open() {
        let e = EarlyGarbage::new(100);
        assert!(e.probes(100, Kind::Pointer as u8));
        assert!(e.probes(150, Kind::Delete as u8));
        assert!(
            !e.probes(99, Kind::Pointer as u8),
            "flushed before this open"
        );
        assert!(
            !e.probes(150, Kind::Inline as u8),
            "inline versions are not probed"
        );
        assert_eq!(
            e.counted(150, Kind::Pointer as u8),
            e.probes(150, Kind::Pointer as u8)
        );
    }

    #[test]
    fn the_overwrite_ratio_follows_the_flushes() {
        let e = EarlyGarbage::new(1);
        assert_eq!(e.overwrite_ratio(), 0.0);
        e.note_flush(0, 0);
        assert_eq!(e.overwrite_ratio(), 0.0, "nothing probed: no news");
        e.note_flush(1000, 1000);
        assert!((e.overwrite_ratio() - 0.5).abs() < 1e-6);
        e.note_flush(1000, 1000);
        assert!((e.overwrite_ratio() - 0.75).abs() < 1e-6);
        e.note_flush(1000, 5000);
        assert!((e.overwrite_ratio() - 0.875).abs() < 1e-6, "clamped at 1");
        e.note_flush(1000, 0);
        assert!((e.overwrite_ratio() - 0.4375).abs() < 1e-6);
    }

    #[test]
    fn settling_moves_bytes_out_and_never_below_zero() {
        let e = EarlyGarbage::new(1);
        e.add(&BTreeMap::from([(3, 100), (4, 50)]));
        e.add(&BTreeMap::from([(3, 20)]));
        assert_eq!(e.total(), 170);
        e.settle(&BTreeMap::from([(3, 100), (4, 80), (9, 5)]));
        assert_eq!(e.by_segment(), BTreeMap::from([(3, 20)]));
        e.forget(&[3]);
        assert_eq!(e.total(), 0);
    }
}
