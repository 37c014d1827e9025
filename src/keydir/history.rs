//! What snapshots of unordered tables read: the records a newer write
//! superseded while a snapshot was alive.
//!
//! A keydir holds only the newest record of each key. While any snapshot is
//! alive ([`Keydirs::set_recording`]), each entry a write replaces is kept
//! here with the sequence number of the write that replaced it; a snapshot
//! at `s` reads a key's current entry if it is at or below `s`, else the
//! kept entry with the largest sequence number at or below `s` that was
//! replaced after `s`. GC counts these records as garbage like any replaced
//! record, and the segments it retires stay on disk while an older snapshot
//! lives (the vLog's zombies), so what a snapshot needs stays readable.
//! Kept entries are pruned when snapshots go, and dropped with the last
//! one: with no snapshot alive this costs nothing.

use super::{KeyEntry, Keydir, Keydirs};
use crate::vlog::ValuePointer;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Entries replaced while snapshots were alive, per key: the entry and the
/// sequence number of the write that replaced it.
#[derive(Debug, Default)]
pub(crate) struct History {
    kept: HashMap<Vec<u8>, Vec<(KeyEntry, u64)>>,
    /// Entries kept, over all keys.
    len: usize,
}

impl History {
    /// The entry a reader at `seq` sees among the kept ones of `key`.
    fn at(&self, key: &[u8], seq: u64) -> Option<KeyEntry> {
        self.kept
            .get(key)?
            .iter()
            .filter(|(e, replaced)| e.seq <= seq && seq < *replaced)
            .max_by_key(|(e, _)| e.seq)
            .map(|(e, _)| *e)
    }

    /// Keeps only what a snapshot at one of `live` may read.
    fn prune(&mut self, live: &[u64]) {
        let needed = |e: &KeyEntry, replaced: u64| live.iter().any(|&s| e.seq <= s && s < replaced);
        let mut len = 0;
        self.kept.retain(|_, v| {
            v.retain(|(e, r)| needed(e, *r));
            len += v.len();
            !v.is_empty()
        });
        self.len = len;
    }
}

impl Keydir {
    /// Keeps `old`, which a write at `replaced_by` just replaced (the map's
    /// write lock held), if snapshots are alive.
    pub(super) fn note_replaced(
        &self,
        recording: bool,
        key: &[u8],
        old: KeyEntry,
        replaced_by: u64,
    ) {
        if !recording {
            return;
        }
        let mut h = self.history.lock();
        h.kept
            .entry(key.to_vec())
            .or_default()
            .push((old, replaced_by));
        h.len += 1;
    }

    /// The entry of `key` a reader at `seq` sees: the current one if it is
    /// not newer than `seq`, else a kept one (the map's lock held).
    fn entry_at(&self, current: Option<KeyEntry>, key: &[u8], seq: u64) -> Option<KeyEntry> {
        match current {
            Some(e) if e.seq <= seq => Some(e),
            _ => self.history.lock().at(key, seq),
        }
    }
}

impl Keydirs {
    /// Turns the keeping of replaced entries on (a snapshot is being taken:
    /// the caller holds the commit lock, so no write is half applied) or
    /// off with every kept entry dropped (the last snapshot went).
    pub(crate) fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Release);
        if !on {
            for kd in self.tables.read().values() {
                let mut h = kd.history.lock();
                h.kept.clear();
                h.len = 0;
            }
        }
    }

    pub(super) fn recording(&self) -> bool {
        self.recording.load(Ordering::Acquire)
    }

    /// Drops the kept entries no snapshot at one of `live` may read.
    pub(crate) fn prune_history(&self, live: &[u64]) {
        for kd in self.tables.read().values() {
            kd.history.lock().prune(live);
        }
    }

    /// Entries kept for snapshots, over all unordered tables.
    pub(crate) fn history_len(&self) -> u64 {
        self.tables
            .read()
            .values()
            .map(|kd| kd.history.lock().len as u64)
            .sum()
    }

    /// [`Keydirs::lookup`] for a snapshot at `seq`.
    pub(crate) fn lookup_at<S>(
        &self,
        kd: &Keydir,
        key: &[u8],
        seq: u64,
        segments: impl FnOnce() -> S,
    ) -> (Option<KeyEntry>, S) {
        let map = kd.map.read();
        let e = kd.entry_at(map.get(key), key, seq);
        (e, segments())
    }

    /// [`Keydirs::lookup_many`] for a snapshot at `seq`.
    pub(crate) fn lookup_many_at<S, K: AsRef<[u8]>>(
        &self,
        kd: &Keydir,
        keys: &[K],
        seq: u64,
        segments: impl FnOnce() -> S,
    ) -> (Vec<Option<KeyEntry>>, S) {
        let map = kd.map.read();
        let found = keys
            .iter()
            .map(|k| kd.entry_at(map.get(k.as_ref()), k.as_ref(), seq))
            .collect();
        (found, segments())
    }

    /// [`Keydirs::live_entries`] for a snapshot at `seq`: the keys live at
    /// `seq`, from the map and the kept entries.
    pub(crate) fn live_entries_at<S>(
        &self,
        kd: &Keydir,
        seq: u64,
        segments: impl FnOnce() -> S,
    ) -> (Vec<(Vec<u8>, ValuePointer)>, S) {
        let map = kd.map.read();
        let h = kd.history.lock();
        let mut out: Vec<(Vec<u8>, ValuePointer)> = Vec::new();
        for (k, e) in map.iter() {
            let seen = if e.seq <= seq { Some(e) } else { h.at(k, seq) };
            if let Some(e) = seen.filter(|e| e.put) {
                out.push((k.to_vec(), e.ptr));
            }
        }
        // Keys GC forgot since (their tombstone dropped): only kept here.
        for (k, _) in h.kept.iter() {
            if map.get(k).is_none() {
                if let Some(e) = h.at(k, seq).filter(|e| e.put) {
                    out.push((k.clone(), e.ptr));
                }
            }
        }
        drop(h);
        (out, segments())
    }
}
