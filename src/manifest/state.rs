//! The manifest state: what applying every edit of a manifest in order
//! gives, and the checks that refuse an edit the engine never writes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::edit::{
    DroppedTable, LifetimeCounters, SealedSegment, SegmentInfo, TableDef, VersionEdit,
    DEFAULT_TABLE, MAX_LEVELS,
};
use crate::lsm::ikey;
use crate::lsm::range_del::RangeTombstone;
use crate::lsm::version::SstMeta;
use crate::stats::CreatedWith;
use crate::vlog::Position;

use super::values::ValuesState;

/// The result of applying every edit of a manifest in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ManifestState {
    /// Tables by level. Level 0 is in the order added (newest last); deeper
    /// levels are sorted by smallest key ([`ikey::compare`]). The vector grows
    /// as needed and never ends with an empty level.
    pub levels: Vec<Vec<SstMeta>>,
    pub replay_point: Position,
    pub vlog_tail: u64,
    pub next_file_number: u64,
    pub last_sequence: u64,
    pub tables: Vec<TableDef>,
    pub segments_removed: BTreeSet<u64>,
    /// Garbage bytes per live vLog segment (discard statistics).
    pub discard: BTreeMap<u64, u64>,
    /// See [`VersionEdit::gc_head`]; segment 0 while GC has written nothing.
    pub gc_head: Position,
    /// The live sealed segments by number (see [`SealedSegment`]).
    pub sealed: BTreeMap<u64, SealedSegment>,
    /// See [`VersionEdit::vlog_head`]; 0 when not recorded (a database
    /// written before heads were recorded).
    pub vlog_head: u64,
    /// See [`VersionEdit::created`]; `None` for a database created before
    /// it was recorded, until its next writable open.
    pub created: Option<CreatedWith>,
    /// The newest counters recorded (see [`LifetimeCounters`]).
    pub counters: LifetimeCounters,
    /// What is known of each live segment's age (see [`SegmentInfo`]).
    pub segment_info: BTreeMap<u64, SegmentInfo>,
    /// The range tombstones in the manifest, by sequence number ascending.
    pub range_dels: Vec<RangeTombstone>,
    /// The tables dropped, by id (ids are never given out again; the
    /// entries and records of these ids are garbage).
    pub dropped_tables: BTreeMap<u32, DroppedTable>,
    /// The format version, value compression and dictionaries.
    pub values: ValuesState,
}

impl ManifestState {
    /// Applies an edit: removals first, then additions, then the other
    /// fields. An edit that removes a table that is not there, adds a file
    /// number that is already live (or twice), names a level at or past
    /// [`MAX_LEVELS`], adds a table whose smallest key is above its largest,
    /// creates a table id or name that exists or a dropped id, drops the
    /// default table, or renames a table that is not live or to a name in
    /// use, is refused with a reason
    /// (the caller wraps it in [`Error::Corruption`]). A refused edit leaves
    /// the state unchanged.
    pub(crate) fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
        // Validate everything first so that a refused edit changes nothing.
        let mut removed_numbers = HashSet::with_capacity(edit.removed.len());
        for &(level, number) in &edit.removed {
            let present = self
                .levels
                .get(level as usize)
                .is_some_and(|files| files.iter().any(|f| f.number == number));
            if !present {
                return Err(format!(
                    "removes table {number} from level {level}, where it is not"
                ));
            }
            if !removed_numbers.insert(number) {
                return Err(format!("removes table {number} twice"));
            }
        }
        if !edit.added.is_empty() {
            let mut live: HashSet<u64> = self
                .levels
                .iter()
                .flatten()
                .map(|f| f.number)
                .filter(|n| !removed_numbers.contains(n))
                .collect();
            for f in &edit.added {
                if f.level >= MAX_LEVELS {
                    return Err(format!(
                        "adds table {} at level {}, past the last level",
                        f.number, f.level
                    ));
                }
                if ikey::compare(&f.smallest, &f.largest) == Ordering::Greater {
                    return Err(format!(
                        "adds table {} whose smallest key is above its largest",
                        f.number
                    ));
                }
                if !live.insert(f.number) {
                    return Err(format!(
                        "adds table number {} that is already live",
                        f.number
                    ));
                }
            }
        }
        for seq in &edit.range_dels_retired {
            if !self.range_dels.iter().any(|t| t.seq == *seq) {
                return Err(format!("retires range tombstone {seq}, which is not there"));
            }
        }
        for (i, t) in edit.range_dels_added.iter().enumerate() {
            let earlier = &edit.range_dels_added[..i];
            if self
                .range_dels
                .iter()
                .chain(earlier)
                .any(|o| o.seq == t.seq)
            {
                return Err(format!("adds range tombstone {} twice", t.seq));
            }
        }
        // The table names and ids after this edit's drops and renames.
        let mut tables_after: Vec<TableDef> = self.tables.clone();
        for d in &edit.tables_dropped {
            if d.id == DEFAULT_TABLE {
                return Err("drops the default table".into());
            }
            match tables_after.iter().position(|t| t.id == d.id) {
                Some(i) if tables_after[i].kind == d.kind => {
                    tables_after.remove(i);
                }
                Some(_) => return Err(format!("drops table id {} with another kind", d.id)),
                // A manifest snapshot lists tables dropped long ago: only
                // their ids are remembered.
                None => {}
            }
        }
        for (id, name) in &edit.tables_renamed {
            let probe = TableDef {
                id: *id,
                name: name.clone(),
                kind: crate::options::TableKind::Ordered,
            };
            if let Some(why) = probe.invalid() {
                return Err(format!("renames table {id} to {name:?}: {why}"));
            }
            if tables_after.iter().any(|t| t.name == *name && t.id != *id) {
                return Err(format!("renames table {id} to {name:?}, a name in use"));
            }
            match tables_after.iter_mut().find(|t| t.id == *id) {
                Some(t) => t.name.clone_from(name),
                None => return Err(format!("renames table {id}, which is not live")),
            }
        }
        for (i, t) in edit.tables_created.iter().enumerate() {
            if self.dropped_tables.contains_key(&t.id)
                || edit.tables_dropped.iter().any(|d| d.id == t.id)
            {
                return Err(format!(
                    "creates table {:?} with the id {} of a dropped table",
                    t.name, t.id
                ));
            }
            if let Some(why) = t.invalid() {
                return Err(format!("creates table {:?} (id {}): {why}", t.name, t.id));
            }
            let earlier = &edit.tables_created[..i];
            if tables_after
                .iter()
                .chain(earlier)
                .any(|o| o.id == t.id || o.name == t.name)
            {
                return Err(format!(
                    "creates table {:?} (id {}) whose id or name exists",
                    t.name, t.id
                ));
            }
        }
        self.values
            .check(&edit.values, &self.tables, &edit.tables_created)?;

        for &(level, number) in &edit.removed {
            let files = &mut self.levels[level as usize];
            if let Some(i) = files.iter().position(|f| f.number == number) {
                files.remove(i);
            }
        }
        while self.levels.last().is_some_and(|l| l.is_empty()) {
            self.levels.pop();
        }
        for f in &edit.added {
            let level = f.level as usize;
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            let files = &mut self.levels[level];
            if level == 0 {
                files.push(f.clone());
            } else {
                // After any equal keys, so that re-adding in order keeps the order.
                let at = files.partition_point(|g| {
                    ikey::compare(&g.smallest, &f.smallest) != Ordering::Greater
                });
                files.insert(at, f.clone());
            }
        }
        if let Some(p) = edit.replay_point {
            self.replay_point = p;
        }
        if let Some(t) = edit.vlog_tail {
            self.vlog_tail = t;
        }
        if let Some(n) = edit.next_file_number {
            self.next_file_number = n;
        }
        if let Some(s) = edit.last_sequence {
            self.last_sequence = s;
        }
        for d in &edit.tables_dropped {
            self.dropped_tables.insert(d.id, *d);
        }
        tables_after.extend(edit.tables_created.iter().cloned());
        self.tables = tables_after;
        self.range_dels
            .retain(|t| !edit.range_dels_retired.contains(&t.seq));
        self.range_dels
            .extend(edit.range_dels_added.iter().cloned());
        self.range_dels.sort_by_key(|t| t.seq);
        self.segments_removed
            .extend(edit.segments_removed.iter().copied());
        for &(seg, bytes) in &edit.discard {
            if self.segments_removed.contains(&seg) || seg < self.vlog_tail {
                continue;
            }
            let g = self.discard.entry(seg).or_insert(0);
            *g = g.saturating_add(bytes);
        }
        for s in &edit.sealed {
            if !self.segments_removed.contains(&s.number) && s.number >= self.vlog_tail {
                self.sealed.insert(s.number, *s);
            }
        }
        for i in &edit.segment_info {
            if !self.segments_removed.contains(&i.number) && i.number >= self.vlog_tail {
                self.segment_info.entry(i.number).or_insert(*i).merge(i);
            }
        }
        for s in &edit.segments_removed {
            self.discard.remove(s);
            self.sealed.remove(s);
            self.segment_info.remove(s);
        }
        if let Some(g) = edit.gc_head {
            self.gc_head = g;
        }
        if let Some(h) = edit.vlog_head {
            self.vlog_head = h;
        }
        if let Some(c) = edit.created {
            self.created = Some(c);
        }
        if let Some(c) = edit.counters {
            self.counters = c;
        }
        // Numbers below the tail are gone for good: no need to remember them.
        let tail = self.vlog_tail;
        self.segments_removed.retain(|&s| s >= tail);
        self.discard.retain(|&s, _| s >= tail);
        self.sealed.retain(|&s, _| s >= tail);
        self.segment_info.retain(|&s, _| s >= tail);
        let removed = &self.segments_removed;
        self.values
            .apply(&edit.values, |s| s < tail || removed.contains(&s));
        // A dropped table's value compression goes with it (a snapshot edit
        // must not name a table that is not there).
        for d in &edit.tables_dropped {
            self.values.compression.remove(&d.id);
        }
        Ok(())
    }

    /// The id a new table gets: past every live and dropped id.
    pub(crate) fn next_table_id(&self) -> u32 {
        let live = self.tables.iter().map(|t| t.id).max().unwrap_or(0);
        let dropped = self.dropped_tables.keys().next_back().copied().unwrap_or(0);
        live.max(dropped) + 1
    }

    /// One edit that recreates this whole state when applied to an empty one
    /// (used as the first record of a new manifest).
    pub(crate) fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            added: self.levels.iter().flatten().cloned().collect(),
            removed: Vec::new(),
            replay_point: Some(self.replay_point),
            vlog_tail: Some(self.vlog_tail),
            next_file_number: Some(self.next_file_number),
            last_sequence: Some(self.last_sequence),
            tables_created: self.tables.clone(),
            segments_removed: self.segments_removed.iter().copied().collect(),
            discard: self.discard.iter().map(|(&s, &b)| (s, b)).collect(),
            gc_head: Some(self.gc_head),
            sealed: self.sealed.values().copied().collect(),
            vlog_head: (self.vlog_head != 0).then_some(self.vlog_head),
            created: self.created,
            counters: Some(self.counters),
            segment_info: self.segment_info.values().copied().collect(),
            range_dels_added: self.range_dels.clone(),
            range_dels_retired: Vec::new(),
            tables_dropped: self.dropped_tables.values().copied().collect(),
            tables_renamed: Vec::new(),
            values: self.values.snapshot(),
        }
    }
}
