//! The unordered index: a Bitcask-style keydir per unordered table, a hash
//! map from key to the place of the key's newest record in the vLog.
//!
//! The keydir lives only in memory. Its durable form is the vLog itself: on
//! open it is rebuilt from every live segment, through the segment's hint
//! file where there is a good one and by scanning the segment where there is
//! not (see [`crate::vlog::hint`]). Among the records of a key the highest
//! sequence number wins, whichever segment (user or GC) it is in, and on a
//! tie the lower-numbered segment, so that segments can be applied in any
//! order (an open reads several at once).
//!
//! One keydir's map is a [`KeyMap`] (`map.rs`): a hash index of slot
//! numbers, a 40-byte slot per key and one arena of the keys' bytes, so a
//! key costs no allocation of its own.
//!
//! A delete is a tombstone record, and the keydir keeps an entry for it
//! while an older record of the key may still be on disk: dropping the
//! tombstone then would bring the older value back at the next open. GC
//! drops a tombstone only when no live segment other than the pass's
//! victims holds a record of an unordered table with a smaller sequence
//! number ([`Keydirs::tombstone_droppable`]). A delete of a key the keydir
//! does not have needs no tombstone at all (no record of the key is on
//! disk) and counts as garbage at once.
//!
//! The keydir also keeps, per segment, the bytes of unordered records that
//! are no longer live (exact, and rebuilt exactly on open: the GC policies
//! add them to the discard statistics of the sorted index), the smallest
//! sequence number of an unordered record, and for the segments still being
//! written (the user head and the GC head) the hint entries that become the
//! segment's hint file when it is sealed.

mod history;
mod map;

pub(crate) use map::KeyMap;

use crate::vlog::hint::{HintEntry, RawHint};
use crate::vlog::ValuePointer;
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where the newest record of a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyEntry {
    pub(crate) seq: u64,
    pub(crate) ptr: ValuePointer,
    /// False for a tombstone.
    pub(crate) put: bool,
}

/// The keydir of one unordered table.
#[derive(Debug, Default)]
pub(crate) struct Keydir {
    pub(crate) map: RwLock<KeyMap>,
    /// Entries replaced while snapshots were alive (`history.rs`).
    history: Mutex<history::History>,
}

/// What the keydir knows of one segment.
#[derive(Debug)]
struct SegInfo {
    /// The smallest sequence number of an unordered record in it.
    min_seq: u64,
    /// Bytes of its unordered records that are no longer live.
    garbage: u64,
    /// For a segment still being written: its unordered records so far.
    open: Option<Vec<HintEntry>>,
}

impl Default for SegInfo {
    fn default() -> Self {
        SegInfo {
            min_seq: u64::MAX,
            garbage: 0,
            open: None,
        }
    }
}

/// A record of an unordered table, written or found.
#[derive(Debug, Clone)]
pub(crate) struct NewRecord {
    pub(crate) table: u32,
    pub(crate) key: Vec<u8>,
    pub(crate) seq: u64,
    pub(crate) ptr: ValuePointer,
    pub(crate) put: bool,
}

/// GC's verdict on one record of an unordered table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Not the newest record of its key (or a tombstone nothing needs).
    Dead,
    /// The newest record of its key: relocate it.
    Live,
    /// A tombstone the keydir points at that no older record needs any more:
    /// leave it behind and forget the key.
    DropTombstone,
}

/// The keydirs of all unordered tables, and their per-segment bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Keydirs {
    tables: RwLock<BTreeMap<u32, Arc<Keydir>>>,
    any: AtomicBool,
    segs: Mutex<BTreeMap<u64, SegInfo>>,
    /// Whether snapshots are alive: replaced entries are kept.
    recording: AtomicBool,
    /// Unordered tables dropped: an open still reads their records (from
    /// hints or scans) to count them as garbage.
    dropped: RwLock<std::collections::BTreeSet<u32>>,
}

/// A relocation to make visible: `(table, key)` moved from `old` to `new`.
#[derive(Debug, Clone)]
pub(crate) struct Move {
    pub(crate) table: u32,
    pub(crate) key: Vec<u8>,
    pub(crate) old: ValuePointer,
    pub(crate) new: ValuePointer,
}

impl Keydirs {
    /// Keydirs for the unordered tables `ids`, empty.
    pub(crate) fn new(ids: impl IntoIterator<Item = u32>) -> Keydirs {
        let k = Keydirs::default();
        for id in ids {
            k.add_table(id);
        }
        k
    }

    /// Starts an (empty) keydir for a new unordered table.
    pub(crate) fn add_table(&self, id: u32) {
        self.tables.write().entry(id).or_default();
        self.any.store(true, Ordering::Release);
    }

    /// Drops the keydir of table `id` (dropped from the manifest): its
    /// records are garbage from now on, counted so at once.
    pub(crate) fn remove_table(&self, id: u32) {
        let mut tables = self.tables.write();
        self.dropped.write().insert(id);
        let Some(kd) = tables.remove(&id) else {
            return;
        };
        let map = kd.map.read();
        let mut segs = self.segs.lock();
        for (_, e) in map.iter() {
            Self::add_garbage(&mut segs, &e.ptr);
        }
    }

    /// Notes an unordered table dropped before this open: an open reads
    /// its records only to count them as garbage.
    pub(crate) fn note_dropped(&self, id: u32) {
        self.dropped.write().insert(id);
        self.any.store(true, Ordering::Release);
    }

    /// Whether an open must read the records of table `id`: an unordered
    /// table's, or a dropped unordered table's (their bytes are garbage).
    pub(crate) fn tracks(&self, id: u32) -> bool {
        self.is_unordered(id) || (self.any() && self.dropped.read().contains(&id))
    }

    /// Whether there is any unordered table.
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The keydir of table `id`, if it is unordered.
    pub(crate) fn table(&self, id: u32) -> Option<Arc<Keydir>> {
        if !self.any() {
            return None;
        }
        self.tables.read().get(&id).cloned()
    }

    /// Whether table `id` is unordered.
    pub(crate) fn is_unordered(&self, id: u32) -> bool {
        self.any() && self.tables.read().contains_key(&id)
    }

    /// Number of keys (tombstones included) over all unordered tables.
    pub(crate) fn len(&self) -> u64 {
        self.tables
            .read()
            .values()
            .map(|k| k.map.read().len() as u64)
            .sum()
    }

    /// Bytes the keydirs' maps have allocated, over all unordered tables:
    /// see [`KeyMap::allocated_bytes`].
    pub(crate) fn allocated_bytes(&self) -> u64 {
        self.tables
            .read()
            .values()
            .map(|k| k.map.read().allocated_bytes() as u64)
            .sum()
    }

    /// Garbage bytes of unordered records, per segment.
    pub(crate) fn garbage(&self) -> BTreeMap<u64, u64> {
        self.segs
            .lock()
            .iter()
            .filter(|(_, i)| i.garbage > 0)
            .map(|(&n, i)| (n, i.garbage))
            .collect()
    }

    fn add_garbage(segs: &mut BTreeMap<u64, SegInfo>, ptr: &ValuePointer) {
        segs.entry(ptr.segment).or_default().garbage += u64::from(ptr.len);
    }

    /// Applies records just written, in write order (the commit path):
    /// each one is the newest of its key. Also lists them for the hint of
    /// their segment, which is still open.
    ///
    /// Lock order, everywhere: `tables`, then a keydir's map, then `segs`.
    pub(crate) fn apply_written(&self, recs: Vec<NewRecord>) {
        if recs.is_empty() {
            return;
        }
        let tables = self.tables.read();
        let recording = self.recording();
        // Records that are garbage now (what they replaced, or needless
        // tombstones).
        let mut dead: Vec<ValuePointer> = Vec::new();
        // One write lock per table for the whole group: a multi_get of that
        // table sees a batch whole or not at all.
        let mut i = 0;
        while i < recs.len() {
            let table = recs[i].table;
            let Some(kd) = tables.get(&table) else {
                // Its table was dropped meanwhile: garbage already.
                if self.dropped.read().contains(&table) {
                    dead.push(recs[i].ptr);
                }
                i += 1;
                continue;
            };
            let mut map = kd.map.write();
            while i < recs.len() && recs[i].table == table {
                let r = &recs[i];
                i += 1;
                let entry = KeyEntry {
                    seq: r.seq,
                    ptr: r.ptr,
                    put: r.put,
                };
                if r.put {
                    if let Some(old) = map.insert(&r.key, entry) {
                        kd.note_replaced(recording, &r.key, old, r.seq);
                        dead.push(old.ptr);
                    }
                } else {
                    match map.replace(&r.key, entry) {
                        Some(old) => {
                            kd.note_replaced(recording, &r.key, old, r.seq);
                            dead.push(old.ptr)
                        }
                        // Nothing of the key is on disk: no tombstone needed.
                        None => dead.push(r.ptr),
                    }
                }
            }
        }
        let mut segs = self.segs.lock();
        for p in &dead {
            Self::add_garbage(&mut segs, p);
        }
        for r in recs {
            let info = segs.entry(r.ptr.segment).or_default();
            info.min_seq = info.min_seq.min(r.seq);
            info.open.get_or_insert_with(Vec::new).push(HintEntry {
                put: r.put,
                table: r.table,
                seq: r.seq,
                offset: r.ptr.offset,
                len: r.ptr.len,
                raw_len: r.ptr.raw_len,
                key: r.key,
            });
        }
    }

    /// Applies records found on open, in any order: the newest record of a
    /// key wins ([`map::newer`]: the highest sequence number, on a tie the
    /// lower segment), so the keydirs come out the same whatever order the
    /// segments are applied in.
    pub(crate) fn apply_found(&self, segment: u64, entries: &[HintEntry]) {
        self.apply(segment, || {
            entries
                .iter()
                .map(|e| (e.table, e.seq, e.pointer(segment), e.put, e.key.as_slice()))
        });
    }

    /// [`Keydirs::apply_found`] for the entries of a hint file, their keys
    /// copied from the file's bytes.
    pub(crate) fn apply_hint(&self, segment: u64, hint: &RawHint) {
        self.apply(segment, || {
            hint.iter()
                .map(|e| (e.table, e.seq, e.pointer(segment), e.put, e.key))
        });
    }

    /// Before an open applies the records of its segments: room for
    /// `records` keys when there is a single unordered table (the common
    /// case, where a hint's count is that table's), so that the keydir is
    /// not rebuilt as it grows. A count of records over-counts the keys by
    /// the overwrites; [`Keydirs::fit_after_open`] gives the excess back.
    pub(crate) fn reserve_for_open(&self, records: usize) {
        let tables = self.tables.read();
        if let (1, Some(kd)) = (tables.len(), tables.values().next()) {
            kd.map.write().reserve(records, 0);
        }
    }

    /// After an open: each keydir's index shrunk if it holds fewer than half
    /// the keys it has room for.
    pub(crate) fn fit_after_open(&self) {
        for kd in self.tables.read().values() {
            kd.map.write().fit();
        }
    }

    /// Applies the records of `segment`, each as (table, seq, pointer, put,
    /// key); `records` makes the iterator (called twice: once to count the
    /// records and key bytes of each table, to reserve room for them, then
    /// to apply them). The write lock of a table's keydir is taken once per
    /// run of its records (a segment's records are mostly of one table).
    fn apply<'k, I>(&self, segment: u64, records: impl Fn() -> I)
    where
        I: Iterator<Item = (u32, u64, ValuePointer, bool, &'k [u8])>,
    {
        let mut per_table: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
        for (table, _, _, _, key) in records() {
            let n = per_table.entry(table).or_default();
            n.0 += 1;
            n.1 += key.len();
        }
        let tables = self.tables.read();
        let mut dead: Vec<ValuePointer> = Vec::new();
        let mut min_seq = u64::MAX;
        let mut current: Option<(u32, RwLockWriteGuard<'_, KeyMap>)> = None;
        for (table, seq, ptr, put, key) in records() {
            min_seq = min_seq.min(seq);
            if current.as_ref().map(|(t, _)| *t) != Some(table) {
                current = None;
                // A table the manifest does not know as unordered is
                // skipped (a dropped one's records count as garbage).
                if let Some(kd) = tables.get(&table) {
                    let mut map = kd.map.write();
                    // Reserved once per table (taking the counts out), not
                    // again at each of its runs.
                    if let Some((n, bytes)) = per_table.remove(&table) {
                        map.reserve(n, bytes);
                    }
                    current = Some((table, map));
                }
            }
            let Some((_, map)) = current.as_mut() else {
                // A record of a dropped unordered table is garbage; one of
                // a table never unordered is not ours to count.
                if self.dropped.read().contains(&table) {
                    dead.push(ptr);
                }
                continue;
            };
            if let Some(lost) = map.offer(key, KeyEntry { seq, ptr, put }) {
                dead.push(lost);
            }
        }
        drop(current);
        let mut segs = self.segs.lock();
        for p in &dead {
            Self::add_garbage(&mut segs, p);
        }
        let info = segs.entry(segment).or_default();
        info.min_seq = info.min_seq.min(min_seq);
    }

    /// Marks `segment` as still being written, its unordered records so far
    /// being `entries` (a head found on open).
    pub(crate) fn reopen_segment(&self, segment: u64, entries: Vec<HintEntry>) {
        self.segs.lock().entry(segment).or_default().open = Some(entries);
    }

    /// Lists relocated records for the hint of the GC segment they went to.
    pub(crate) fn note_relocated(&self, segment: u64, entries: Vec<HintEntry>) {
        let mut segs = self.segs.lock();
        let info = segs.entry(segment).or_default();
        for e in &entries {
            info.min_seq = info.min_seq.min(e.seq);
        }
        info.open.get_or_insert_with(Vec::new).extend(entries);
    }

    /// The hint entries of `segment`, now sealed: what its hint file lists.
    pub(crate) fn take_sealed(&self, segment: u64) -> Vec<HintEntry> {
        self.segs
            .lock()
            .get_mut(&segment)
            .and_then(|i| i.open.take())
            .unwrap_or_default()
    }

    /// Every key whose newest record lies in one of `victims`: table, key and
    /// entry (salvage finds a segment's live records this way, without
    /// reading it).
    pub(crate) fn entries_in(&self, victims: &[u64]) -> Vec<(u32, Vec<u8>, KeyEntry)> {
        let tables = self.tables.read();
        let mut out = Vec::new();
        for (&id, kd) in tables.iter() {
            let map = kd.map.read();
            out.extend(
                map.iter()
                    .filter(|(_, e)| victims.contains(&e.ptr.segment))
                    .map(|(k, e)| (id, k.to_vec(), e)),
            );
        }
        out
    }

    /// GC's question for a record of an unordered table found in one of
    /// `victims` at `ptr`.
    pub(crate) fn liveness(
        &self,
        table: u32,
        key: &[u8],
        seq: u64,
        ptr: &ValuePointer,
        victims: &[u64],
    ) -> Liveness {
        let Some(kd) = self.table(table) else {
            return Liveness::Dead;
        };
        let cur = kd.map.read().get(key);
        match cur {
            Some(e) if e.seq == seq && e.ptr == *ptr => {
                if e.put || !self.tombstone_droppable(seq, victims) {
                    Liveness::Live
                } else {
                    Liveness::DropTombstone
                }
            }
            _ => Liveness::Dead,
        }
    }

    /// Whether a tombstone of sequence number `seq` can go with `victims`:
    /// no other live segment holds an unordered record older than it.
    pub(crate) fn tombstone_droppable(&self, seq: u64, victims: &[u64]) -> bool {
        self.segs
            .lock()
            .iter()
            .all(|(n, i)| victims.contains(n) || i.min_seq > seq)
    }

    /// Makes a GC pass visible: repoints the moved keys that still point at
    /// their old place (a move that lost to a newer write is garbage where
    /// it went), forgets the dropped tombstones that are still the newest,
    /// forgets the victims, and runs `publish` (retiring the victims) while
    /// readers of the keydirs are held off, so that no reader pairs an old
    /// pointer with a segment set that no longer has its segment.
    pub(crate) fn commit_gc(
        &self,
        moves: &[Move],
        dropped: &[(u32, Vec<u8>, ValuePointer)],
        victims: &[u64],
        publish: impl FnOnce(),
    ) -> u64 {
        let tables = self.tables.read();
        let mut guards: BTreeMap<u32, RwLockWriteGuard<'_, KeyMap>> = tables
            .iter()
            .map(|(&id, kd)| (id, kd.map.write()))
            .collect();
        let mut segs = self.segs.lock();
        let mut superseded = 0;
        for m in moves {
            let repointed = guards
                .get_mut(&m.table)
                .is_some_and(|g| g.repoint(&m.key, &m.old, m.new));
            if !repointed {
                superseded += 1;
                Self::add_garbage(&mut segs, &m.new);
            }
        }
        for (table, key, ptr) in dropped {
            if let Some(g) = guards.get_mut(table) {
                g.remove_if(key, ptr);
            }
        }
        for v in victims {
            segs.remove(v);
        }
        drop(segs);
        publish();
        drop(guards);
        superseded
    }

    /// The newest record of `key` in table `table` with the live segment
    /// set to read it through, taken while the keydir is held so that GC
    /// cannot retire the record's segment in between.
    pub(crate) fn lookup<S>(
        &self,
        kd: &Keydir,
        key: &[u8],
        segments: impl FnOnce() -> S,
    ) -> (Option<KeyEntry>, S) {
        let map = kd.map.read();
        let e = map.get(key);
        (e, segments())
    }

    /// Every live key of `kd` with where its value is (in no order), and the
    /// live segment set to read them through, under one hold of the keydir.
    pub(crate) fn live_entries<S>(
        &self,
        kd: &Keydir,
        segments: impl FnOnce() -> S,
    ) -> (Vec<(Vec<u8>, ValuePointer)>, S) {
        let map = kd.map.read();
        let live = map
            .iter()
            .filter(|(_, e)| e.put)
            .map(|(k, e)| (k.to_vec(), e.ptr))
            .collect();
        (live, segments())
    }

    /// Several keys at once, under one hold of the keydir.
    pub(crate) fn lookup_many<S, K: AsRef<[u8]>>(
        &self,
        kd: &Keydir,
        keys: &[K],
        segments: impl FnOnce() -> S,
    ) -> (Vec<Option<KeyEntry>>, S) {
        let map = kd.map.read();
        let found = keys.iter().map(|k| map.get(k.as_ref())).collect();
        (found, segments())
    }
}

/// The whole state of a set of keydirs, to compare two: per table its
/// entries in key order; per segment its smallest sequence number, garbage
/// and open hint entries.
#[cfg(test)]
pub(crate) type KeydirsState = (
    BTreeMap<u32, Vec<(Vec<u8>, KeyEntry)>>,
    BTreeMap<u64, (u64, u64, Option<Vec<HintEntry>>)>,
);

#[cfg(test)]
impl Keydirs {
    /// Empty keydirs for the same unordered tables.
    pub(crate) fn empty_like(&self) -> Keydirs {
        Keydirs::new(self.tables.read().keys().copied())
    }

    /// See [`KeydirsState`].
    pub(crate) fn state(&self) -> KeydirsState {
        let tables = self
            .tables
            .read()
            .iter()
            .map(|(&id, kd)| {
                let mut v: Vec<(Vec<u8>, KeyEntry)> =
                    kd.map.read().iter().map(|(k, e)| (k.to_vec(), e)).collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                (id, v)
            })
            .collect();
        let segs = self
            .segs
            .lock()
            .iter()
            .map(|(&n, i)| (n, (i.min_seq, i.garbage, i.open.clone())))
            .collect();
        (tables, segs)
    }
}

#[cfg(test)]
mod tests;
