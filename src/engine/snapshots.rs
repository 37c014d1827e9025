//! The live snapshots: the sequence numbers they read at, counted, so that
//! compaction keeps the versions they can see and GC keeps the segments
//! they may still read (invariants 5 and 6).

use super::write::CommitGuard;
use super::Engine;
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// Sequence number → number of live snapshots reading at it.
#[derive(Debug, Default)]
pub(super) struct Snapshots {
    live: Mutex<BTreeMap<u64, usize>>,
    /// Held while a snapshot is taken or dropped, so that turning the
    /// keydirs' keeping of replaced entries on and off (and pruning them)
    /// happens in the order of those calls, without the keydirs' locks
    /// being taken under `live`.
    gate: Mutex<()>,
}

impl Snapshots {
    /// The oldest live snapshot's sequence number.
    pub(super) fn oldest(&self) -> Option<u64> {
        self.live.lock().keys().next().copied()
    }
}

impl Engine {
    /// Registers a snapshot at the sequence number a new read sees now, and
    /// returns it. Taken under the registry's lock, so that a compaction
    /// that asks for the smallest snapshot never misses it.
    pub(crate) fn register_snapshot(&self) -> u64 {
        // With unordered tables, no group commit may be half applied while
        // the keydirs start keeping replaced entries (`keydir/history.rs`):
        // every write at or below the number read is then in the keydirs,
        // and every later one keeps what it replaces.
        let _commit = self.keydirs.any().then(|| self.writer.lock_commit());
        self.register()
    }

    /// [`Engine::register_snapshot`] for a caller that holds the commit
    /// lock.
    pub(super) fn register_snapshot_locked(&self, _commit: &CommitGuard<'_>) -> u64 {
        self.register()
    }

    fn register(&self) -> u64 {
        let _gate = self.snapshots.gate.lock();
        self.keydirs.set_recording(true);
        let mut live = self.snapshots.live.lock();
        let seq = self.read_seq();
        *live.entry(seq).or_insert(0) += 1;
        seq
    }

    /// Forgets one snapshot at `seq`, then lets go of the retired segments
    /// no snapshot needs any more.
    pub(crate) fn release_snapshot(&self, seq: u64) {
        let gate = self.snapshots.gate.lock();
        let mut live = self.snapshots.live.lock();
        if let Some(n) = live.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                live.remove(&seq);
            }
        }
        let seqs: Vec<u64> = live.keys().copied().collect();
        drop(live);
        if seqs.is_empty() {
            self.keydirs.set_recording(false);
        } else {
            self.keydirs.prune_history(&seqs);
        }
        drop(gate);
        self.release_retired_segments();
    }

    /// The smallest sequence number a live snapshot (or a new read) can see
    /// at: versions shadowed at or below it are garbage.
    pub(super) fn smallest_snapshot(&self) -> u64 {
        let live = self.snapshots.live.lock();
        let visible = self.read_seq();
        live.keys().next().copied().unwrap_or(visible).min(visible)
    }

    /// Drops retired vLog segments that no live snapshot can need.
    pub(super) fn release_retired_segments(&self) {
        let oldest = self.snapshots.oldest();
        self.vlog.release_zombies(oldest);
    }
}
