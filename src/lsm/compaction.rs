//! Leveled compaction: which files to merge (by score), and what a merge
//! keeps (dropping versions no snapshot can see and tombstones at the
//! bottom). The tree holds value pointers as opaque bytes: a dropped pointer
//! is handed to the caller's callback, which counts its vLog bytes as
//! discard statistics.
//!
//! Level sizes are dynamic, as RocksDB's `level_compaction_dynamic_level_bytes`:
//! the last level's target is its actual size, each level above it a
//! `level_size_ratio`-th of the one below, and levels whose target would fall
//! under `base_level_size` stay empty; level 0 compacts into the first level
//! in use (the base level). So the last level holds most of the data and
//! space overhead stays near 1 + 1/ratio.

use super::ikey::{self, Kind};
use super::iter::InternalIterator;
use super::range_del::{self, RangeTombstone};
use super::sstable::CacheUse;
use super::version::{LevelIter, SstHandle, Version};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Levels of the tree: level 0 and six sorted levels.
pub(crate) const NUM_LEVELS: usize = 7;

/// The shape of the tree (the engine makes it from its options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LevelConfig {
    /// Level-0 files that make level 0 need compaction.
    pub(crate) l0_compaction_trigger: usize,
    /// Size ratio between adjacent levels.
    pub(crate) level_size_ratio: u64,
    /// The smallest target size of a level in use.
    pub(crate) base_level_size: u64,
}

/// The target size of each level and the level that level 0 compacts into.
#[derive(Debug, Clone)]
pub(crate) struct LevelTargets {
    pub(crate) base_level: usize,
    pub(crate) targets: [u64; NUM_LEVELS],
}

pub(crate) fn level_bytes(v: &Version, level: usize) -> u64 {
    v.levels
        .get(level)
        .map_or(0, |l| l.iter().map(|t| t.meta.size).sum())
}

/// Computes the dynamic level targets of `v`.
pub(crate) fn level_targets(v: &Version, opts: &LevelConfig) -> LevelTargets {
    let last = NUM_LEVELS - 1;
    let mut targets = [0u64; NUM_LEVELS];
    let mut t = level_bytes(v, last).max(opts.base_level_size);
    targets[last] = t;
    let mut base_level = last;
    for level in (1..last).rev() {
        let next = t / opts.level_size_ratio;
        if next < opts.base_level_size {
            break;
        }
        t = next;
        targets[level] = t;
        base_level = level;
    }
    // Data may sit above the base level (the tree shrank, or the base moved
    // down): such levels get a zero target so that they drain.
    LevelTargets {
        base_level,
        targets,
    }
}

/// Compaction score of each level (level 0: files over the trigger; others:
/// bytes over target). A score of at least 1 means the level needs work.
pub(crate) fn scores(v: &Version, opts: &LevelConfig) -> Vec<f64> {
    let lt = level_targets(v, opts);
    let mut s = vec![0.0; NUM_LEVELS];
    s[0] = v.levels.first().map_or(0, |l| l.len()) as f64 / opts.l0_compaction_trigger as f64;
    for (level, score) in s.iter_mut().enumerate().take(NUM_LEVELS - 1).skip(1) {
        let bytes = level_bytes(v, level);
        if bytes == 0 {
            continue;
        }
        *score = if level < lt.base_level || lt.targets[level] == 0 {
            // A level above the base level holds data it should not: drain it.
            f64::from(u32::MAX)
        } else {
            bytes as f64 / lt.targets[level] as f64
        };
    }
    s
}

/// A compaction to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The files read, from the start level and the output level.
    pub(crate) inputs: Vec<Arc<SstHandle>>,
    pub(crate) start_level: usize,
    pub(crate) output_level: usize,
    /// One file with nothing to merge with below: it changes level only.
    pub(crate) trivial_move: bool,
}

fn user_range(files: &[Arc<SstHandle>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut lo: Option<&[u8]> = None;
    let mut hi: Option<&[u8]> = None;
    for t in files {
        let s = ikey::user_part(&t.meta.smallest);
        let l = ikey::user_part(&t.meta.largest);
        if lo.is_none_or(|x| s < x) {
            lo = Some(s);
        }
        if hi.is_none_or(|x| l > x) {
            hi = Some(l);
        }
    }
    Some((lo?.to_vec(), hi?.to_vec()))
}

/// Files of `level` whose user-key range meets `[lo, hi]`.
pub(crate) fn overlapping(v: &Version, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<SstHandle>> {
    v.levels.get(level).map_or_else(Vec::new, |files| {
        files
            .iter()
            .filter(|t| {
                ikey::user_part(&t.meta.largest) >= lo && ikey::user_part(&t.meta.smallest) <= hi
            })
            .cloned()
            .collect()
    })
}

/// The most urgent compaction of `v`, if any level scores at least 1.
/// `pointers` remembers, per level, where the last compaction of that level
/// ended, so that successive compactions walk the key space round-robin.
pub(crate) fn pick(v: &Version, opts: &LevelConfig, pointers: &mut [Vec<u8>]) -> Option<Plan> {
    let s = scores(v, opts);
    let (level, &best) = s
        .iter()
        .enumerate()
        .take(NUM_LEVELS - 1)
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if best < 1.0 {
        return None;
    }
    let lt = level_targets(v, opts);
    if level == 0 {
        let l0: Vec<Arc<SstHandle>> = v.levels.first()?.clone();
        let (lo, hi) = user_range(&l0)?;
        // Newer data must stay above older: never skip a level holding data.
        let out = (1..lt.base_level)
            .find(|&l| v.levels.get(l).is_some_and(|f| !f.is_empty()))
            .unwrap_or(lt.base_level);
        let mut inputs = l0;
        inputs.extend(overlapping(v, out, &lo, &hi));
        return Some(Plan {
            inputs,
            start_level: 0,
            output_level: out,
            trivial_move: false,
        });
    }
    let files = v.levels.get(level)?;
    let ptr = &pointers[level];
    let chosen = files
        .iter()
        .find(|t| ikey::user_part(&t.meta.smallest) > ptr.as_slice())
        .or_else(|| files.first())?
        .clone();
    pointers[level] = ikey::user_part(&chosen.meta.largest).to_vec();
    // One level down, always: skipping a level could put this data under
    // older versions there.
    let out = level + 1;
    let lo = ikey::user_part(&chosen.meta.smallest);
    let hi = ikey::user_part(&chosen.meta.largest);
    let below = overlapping(v, out, lo, hi);
    let trivial_move = below.is_empty();
    let mut inputs = vec![chosen];
    inputs.extend(below);
    Some(Plan {
        inputs,
        start_level: level,
        output_level: out,
        trivial_move,
    })
}

/// A full compaction: every file into the last level.
pub(crate) fn full_plan(v: &Version) -> Option<Plan> {
    let inputs: Vec<Arc<SstHandle>> = v.all_tables().cloned().collect();
    if inputs.is_empty() {
        return None;
    }
    Some(Plan {
        start_level: inputs
            .iter()
            .map(|t| t.meta.level as usize)
            .min()
            .unwrap_or(0),
        trivial_move: false,
        inputs,
        output_level: NUM_LEVELS - 1,
    })
}

/// Cursors over a plan's inputs, newest source first: level-0 files newest
/// first, then one concatenating cursor per deeper level. They bypass the
/// block cache: a compaction reads each block once, and its blocks would
/// push out the ones readers come back to.
pub(crate) fn input_iters(plan: &Plan) -> Vec<Box<dyn InternalIterator>> {
    let mut by_level: BTreeMap<u32, Vec<Arc<SstHandle>>> = BTreeMap::new();
    for t in &plan.inputs {
        by_level.entry(t.meta.level).or_default().push(t.clone());
    }
    let mut out: Vec<Box<dyn InternalIterator>> = Vec::new();
    for (level, mut files) in by_level {
        if level == 0 {
            files.sort_by_key(|t| std::cmp::Reverse(t.meta.number));
            for t in files {
                out.push(Box::new(t.sst.iter_with(CacheUse::Bypass)));
            }
        } else {
            files.sort_by(|a, b| ikey::compare(&a.meta.smallest, &b.meta.smallest));
            out.push(Box::new(LevelIter::new(files, CacheUse::Bypass)));
        }
    }
    out
}

/// The version of a key right above a dropped one: the one that hid it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Newer {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// Its kind byte ([`Kind`]).
    pub(crate) kind: u8,
}

/// Decides, entry by entry in merged order, what a compaction keeps. Each
/// dropped entry whose value is a pointer (kind [`Kind::Pointer`]) goes to
/// `on_drop` with its internal key and value and the version right above
/// it, except the older copy of a version that stands twice (the newer copy
/// still points at the record).
pub(crate) struct DropFilter<'a, F: FnMut(&[u8], &[u8], Newer)> {
    smallest_snapshot: u64,
    /// Whether tombstones may go (not at flush: older data may lie below).
    drop_tombstones: bool,
    /// Levels below the output, to tell whether a tombstone still hides data.
    deeper: Vec<&'a [Arc<SstHandle>]>,
    last_key: Vec<u8>,
    last_user: Vec<u8>,
    has_user: bool,
    last_seq_for_key: u64,
    /// The kind of the version `last_seq_for_key` is of.
    last_kind_for_key: u8,
    on_drop: F,
    /// The range tombstones every snapshot sees (compaction only): what
    /// they cover goes.
    range_dels: Vec<RangeTombstone>,
    /// Entries dropped so far.
    pub(crate) dropped: u64,
    /// Table ids whose every entry goes (dropped tables), ascending.
    dead_tables: Vec<u32>,
}

impl<'a, F: FnMut(&[u8], &[u8], Newer)> DropFilter<'a, F> {
    /// A filter for a merge into `output_level` of `v`.
    pub(crate) fn new(
        v: &'a Version,
        output_level: usize,
        smallest_snapshot: u64,
        on_drop: F,
    ) -> Self {
        let deeper = v
            .levels
            .iter()
            .skip(output_level + 1)
            .map(|l| l.as_slice())
            .collect();
        let range_dels = v
            .range_dels
            .iter()
            .filter(|t| t.seq <= smallest_snapshot)
            .cloned()
            .collect();
        DropFilter {
            smallest_snapshot,
            drop_tombstones: true,
            deeper,
            last_key: Vec::new(),
            last_user: Vec::new(),
            has_user: false,
            last_seq_for_key: u64::MAX,
            last_kind_for_key: 0,
            on_drop,
            range_dels,
            dropped: 0,
            dead_tables: Vec::new(),
        }
    }

    /// A filter for a memtable flush: drops versions every snapshot sees a
    /// newer version of, keeps every tombstone.
    pub(crate) fn for_flush(smallest_snapshot: u64, on_drop: F) -> DropFilter<'static, F> {
        DropFilter {
            smallest_snapshot,
            drop_tombstones: false,
            deeper: Vec::new(),
            last_key: Vec::new(),
            last_user: Vec::new(),
            has_user: false,
            last_seq_for_key: u64::MAX,
            last_kind_for_key: 0,
            on_drop,
            range_dels: Vec::new(),
            dropped: 0,
            dead_tables: Vec::new(),
        }
    }

    /// Drops every entry of the tables `ids` as well (tables dropped from
    /// the manifest), as if a newer tombstone hid each.
    #[must_use]
    pub(crate) fn dropping_tables(mut self, mut ids: Vec<u32>) -> Self {
        ids.sort_unstable();
        self.dead_tables = ids;
        self
    }

    fn deeper_has(&self, user_part: &[u8]) -> bool {
        self.deeper.iter().any(|files| {
            let i = files.partition_point(|t| ikey::user_part(&t.meta.largest) < user_part);
            files
                .get(i)
                .is_some_and(|t| ikey::user_part(&t.meta.smallest) <= user_part)
        })
    }

    /// Whether to keep the entry `(k, v)`.
    pub(crate) fn keep(&mut self, k: &[u8], v: &[u8]) -> bool {
        let up = ikey::user_part(k);
        let seq = ikey::seq(k);
        if !self.has_user || up != self.last_user.as_slice() {
            self.last_user.clear();
            self.last_user.extend_from_slice(up);
            self.has_user = true;
            self.last_seq_for_key = u64::MAX;
        }
        let kind = ikey::kind_byte(k);
        // The same version twice (a relocated copy): the newer source, met
        // first, wins.
        let duplicate = k == self.last_key.as_slice();
        // A newer version that every snapshot sees hides this one.
        let shadowed = self.last_seq_for_key <= self.smallest_snapshot;
        let dead_tombstone = self.drop_tombstones
            && kind == Kind::Delete as u8
            && seq <= self.smallest_snapshot
            && !self.deeper_has(up);
        let mut newer = Newer {
            seq: self.last_seq_for_key,
            kind: self.last_kind_for_key,
        };
        // A range tombstone every snapshot sees deletes it.
        let ranged = if self.range_dels.is_empty() || duplicate {
            None
        } else {
            range_del::covering(
                [self.range_dels.as_slice()],
                ikey::table_id(k),
                ikey::user_key(k),
                seq,
                self.smallest_snapshot,
            )
        };
        if let (Some(t), false) = (ranged, shadowed) {
            newer = Newer {
                seq: t,
                kind: Kind::Delete as u8,
            };
        }
        if !duplicate {
            self.last_seq_for_key = seq;
            self.last_kind_for_key = kind;
        }
        let dead_table = !self.dead_tables.is_empty()
            && self.dead_tables.binary_search(&ikey::table_id(k)).is_ok();
        if duplicate || shadowed || dead_tombstone || dead_table || ranged.is_some() {
            self.dropped += 1;
            if kind == Kind::Pointer as u8 && !duplicate {
                (self.on_drop)(k, v, newer);
            }
            return false;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(k);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_compacts_level0_into_the_last_level() {
        let v = Version::default();
        let cfg = LevelConfig {
            l0_compaction_trigger: 4,
            level_size_ratio: 10,
            base_level_size: 256 << 20,
        };
        let lt = level_targets(&v, &cfg);
        assert_eq!(lt.base_level, NUM_LEVELS - 1);
        assert!(pick(&v, &cfg, &mut vec![Vec::new(); NUM_LEVELS]).is_none());
    }
}
