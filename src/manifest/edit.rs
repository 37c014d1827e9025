//! The version edit: one change to the manifest state, and its bytes.
//!
//! ```text
//! edit  = field*
//! field = tag varint | payload (by tag, see the `TAG_*` constants)
//! ```
//!
//! Singular fields appear at most once; list fields repeat their tag once
//! per element, so decoding never allocates from an unchecked count. The
//! table definitions of the edits (named tables and their kinds) are here
//! too: [`TableDef`], with the default table's id and name.

use crate::coding::{put_length_prefixed, put_varint, Reader};
use crate::lsm::range_del::RangeTombstone;
use crate::lsm::version::SstMeta;
use crate::options::TableKind;
use crate::stats::CreatedWith;
use crate::vlog::{Position, SegmentKind};

use super::values::ValuesEdit;

/// Levels are numbered `0..MAX_LEVELS`; an edit naming a deeper level is corrupt.
pub(crate) const MAX_LEVELS: u32 = 64;

/// The id of the default table (never written in a [`TableDef`]).
pub(crate) const DEFAULT_TABLE: u32 = 0;
/// The name of the default table.
pub(crate) const DEFAULT_TABLE_NAME: &str = "default";

// Field tags of an encoded VersionEdit.
/// `next_file_number`: varint.
pub(super) const TAG_NEXT_FILE_NUMBER: u64 = 1;
/// `last_sequence`: varint.
pub(super) const TAG_LAST_SEQUENCE: u64 = 2;
/// `replay_point`: segment varint, offset varint.
pub(super) const TAG_REPLAY_POINT: u64 = 3;
/// `vlog_tail`: varint.
pub(super) const TAG_VLOG_TAIL: u64 = 4;
/// One element of `removed`: level varint, number varint.
pub(super) const TAG_REMOVED: u64 = 5;
/// One element of `added`: level, number, size, entries (varints), smallest,
/// largest (length-prefixed).
pub(super) const TAG_ADDED: u64 = 6;
/// One element of `tables_created`: id varint, name length-prefixed UTF-8, kind u8.
pub(super) const TAG_TABLE_CREATED: u64 = 7;
/// One element of `segments_removed`: segment number varint.
pub(super) const TAG_SEGMENT_REMOVED: u64 = 8;
/// One element of `discard`: segment number varint, garbage bytes varint
/// (added to what the segment already had).
pub(super) const TAG_DISCARD: u64 = 9;
/// `gc_head`: segment varint, offset varint (at most once).
pub(super) const TAG_GC_HEAD: u64 = 10;
/// One element of `sealed`: segment number varint, kind u8 (0 user, 1 GC),
/// sealed length varint.
pub(super) const TAG_SEGMENT_SEALED: u64 = 11;
/// `vlog_head`: the user head segment's number, varint (at most once).
pub(super) const TAG_VLOG_HEAD: u64 = 12;
/// `created`: what the database was created with ([`CreatedWith`]), a
/// length-prefixed list of varints (at most once). Fields a later version
/// appends are ignored; fields missing at the end read as 0.
pub(super) const TAG_CREATED: u64 = 13;
/// `counters`: the counters since the database was created
/// ([`LifetimeCounters`]), a length-prefixed list of varints (at most once;
/// the newest edit's wins). Extensible like [`TAG_CREATED`].
pub(super) const TAG_COUNTERS: u64 = 14;
/// One element of `segment_info`: segment number, creation time (Unix
/// seconds), smallest and largest sequence number of its records, varints
/// (0: not known). Merged into what the state knows (see
/// [`SegmentInfo`]).
pub(super) const TAG_SEGMENT_INFO: u64 = 15;
/// One element of `range_dels_added`: a range tombstone that now lives in
/// the manifest (`lsm::range_del`: table, seq, start, has_end, end).
pub(super) const TAG_RANGE_DEL_ADDED: u64 = 28;
/// One element of `range_dels_retired`: the sequence number of a range
/// tombstone that no longer hides anything, varint.
pub(super) const TAG_RANGE_DEL_RETIRED: u64 = 29;
/// One element of `tables_dropped`: table id varint, kind u8 (as in
/// [`TAG_TABLE_CREATED`]). The id is never used again.
pub(super) const TAG_TABLE_DROPPED: u64 = 16;
/// One element of `tables_renamed`: table id varint, new name
/// length-prefixed UTF-8.
pub(super) const TAG_TABLE_RENAMED: u64 = 17;

/// A table that was dropped: its id (never given out again) and the kind
/// it had, so that an open knows whose vLog records are garbage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DroppedTable {
    pub id: u32,
    pub kind: TableKind,
}

/// When a vLog segment was made and which sequence numbers it holds, for
/// `vlog-tools segments`. 0 means not known: a database written before this
/// was recorded, a user head's largest number before it is sealed, a GC
/// segment's range before its first pass's edit. Edits merge: the earliest
/// known creation, the smallest and largest numbers seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub number: u64,
    pub created_unix_secs: u64,
    pub min_seq: u64,
    pub max_seq: u64,
}

impl SegmentInfo {
    /// `self` with what `other` (of the same segment) adds.
    pub(crate) fn merge(&mut self, other: &SegmentInfo) {
        if self.created_unix_secs == 0 {
            self.created_unix_secs = other.created_unix_secs;
        }
        if other.min_seq != 0 && (self.min_seq == 0 || other.min_seq < self.min_seq) {
            self.min_seq = other.min_seq;
        }
        self.max_seq = self.max_seq.max(other.max_seq);
    }
}

/// Seconds since the Unix epoch now (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn created_fields(c: &CreatedWith) -> [u64; 4] {
    [
        c.unix_secs,
        c.segment_size,
        c.value_threshold,
        c.memtable_size,
    ]
}

fn created_from_fields(f: &[u64]) -> CreatedWith {
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    CreatedWith {
        unix_secs: at(0),
        segment_size: at(1),
        value_threshold: at(2),
        memtable_size: at(3),
    }
}

/// Counters kept across opens: what every open counted, added up. Each
/// manifest edit carries the sum at the time it is written, so a crash
/// loses only what was counted since the last edit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LifetimeCounters {
    pub user_bytes_written: u64,
    pub writes: u64,
    pub vlog_bytes_written: u64,
    pub gc_bytes_written: u64,
    pub gc_bytes_read: u64,
    pub gc_bytes_freed: u64,
    pub gc_records_moved: u64,
    pub gc_passes: u64,
    pub flush_bytes_written: u64,
    pub flushes: u64,
    pub compaction_bytes_written: u64,
    pub compaction_bytes_read: u64,
    pub compactions: u64,
    pub manifest_bytes_written: u64,
    /// Writable opens of the database.
    pub opens: u64,
}

impl LifetimeCounters {
    fn fields(&self) -> [u64; 15] {
        [
            self.user_bytes_written,
            self.writes,
            self.vlog_bytes_written,
            self.gc_bytes_written,
            self.gc_bytes_read,
            self.gc_bytes_freed,
            self.gc_records_moved,
            self.gc_passes,
            self.flush_bytes_written,
            self.flushes,
            self.compaction_bytes_written,
            self.compaction_bytes_read,
            self.compactions,
            self.manifest_bytes_written,
            self.opens,
        ]
    }

    fn from_fields(f: &[u64]) -> LifetimeCounters {
        let at = |i: usize| f.get(i).copied().unwrap_or(0);
        LifetimeCounters {
            user_bytes_written: at(0),
            writes: at(1),
            vlog_bytes_written: at(2),
            gc_bytes_written: at(3),
            gc_bytes_read: at(4),
            gc_bytes_freed: at(5),
            gc_records_moved: at(6),
            gc_passes: at(7),
            flush_bytes_written: at(8),
            flushes: at(9),
            compaction_bytes_written: at(10),
            compaction_bytes_read: at(11),
            compactions: at(12),
            manifest_bytes_written: at(13),
            opens: at(14),
        }
    }

    /// `self` plus `other`, field by field (saturating).
    pub(crate) fn plus(&self, other: &LifetimeCounters) -> LifetimeCounters {
        let (a, b) = (self.fields(), other.fields());
        let mut sum = [0u64; 15];
        for i in 0..sum.len() {
            sum[i] = a[i].saturating_add(b[i]);
        }
        LifetimeCounters::from_fields(&sum)
    }
}

/// Appends `tag` and `fields` as a length-prefixed list of varints.
fn put_varint_list(b: &mut Vec<u8>, tag: u64, fields: &[u64]) {
    let mut payload = Vec::with_capacity(fields.len() * 4);
    for &f in fields {
        put_varint(&mut payload, f);
    }
    put_varint(b, tag);
    put_length_prefixed(b, &payload);
}

/// Reads a length-prefixed list of varints (at most `max`; more are ignored).
fn read_varint_list(r: &mut Reader<'_>, max: usize) -> Option<Vec<u64>> {
    let payload = r.length_prefixed()?;
    let mut p = Reader::new(payload);
    let mut out = Vec::new();
    while !p.is_empty() && out.len() < max {
        out.push(p.varint()?);
    }
    Some(out)
}

/// A named table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableDef {
    pub id: u32,
    pub name: String,
    pub kind: TableKind,
}

impl TableDef {
    /// The byte a table kind is stored as.
    fn kind_byte(kind: TableKind) -> u8 {
        match kind {
            TableKind::Ordered => 0,
            TableKind::Unordered => 1,
        }
    }

    /// The table kind stored as `b`, if it is one.
    fn kind_from_byte(b: u8) -> Option<TableKind> {
        match b {
            0 => Some(TableKind::Ordered),
            1 => Some(TableKind::Unordered),
            _ => None,
        }
    }

    /// Why `Db::table` would refuse to create this table, if it would: the
    /// default table's id or name, an empty name or one over 255 bytes.
    pub(crate) fn invalid(&self) -> Option<&'static str> {
        if self.id == DEFAULT_TABLE || self.name == DEFAULT_TABLE_NAME {
            Some("the id or name is the default table's")
        } else if self.name.is_empty() || self.name.len() > 255 {
            Some("a table name is 1 to 255 bytes")
        } else {
            None
        }
    }
}

/// A vLog segment that was sealed: synced at `len` bytes and never written
/// again. Recorded only after the seal's sync, so a segment that is missing
/// or shorter at open lost durable records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SealedSegment {
    pub number: u64,
    pub kind: SegmentKind,
    pub len: u64,
}

impl SealedSegment {
    fn kind_byte(kind: SegmentKind) -> u8 {
        match kind {
            SegmentKind::User => 0,
            SegmentKind::Gc => 1,
        }
    }

    fn kind_from_byte(b: u8) -> Option<SegmentKind> {
        match b {
            0 => Some(SegmentKind::User),
            1 => Some(SegmentKind::Gc),
            _ => None,
        }
    }
}

/// One change to the manifest state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct VersionEdit {
    pub added: Vec<SstMeta>,
    /// `(level, number)` of tables that leave the tree. Removals are applied
    /// before additions, so a table may move levels within one edit.
    pub removed: Vec<(u32, u64)>,
    pub replay_point: Option<Position>,
    /// The oldest vLog segment number still live.
    pub vlog_tail: Option<u64>,
    pub next_file_number: Option<u64>,
    pub last_sequence: Option<u64>,
    pub tables_created: Vec<TableDef>,
    /// vLog segments deleted by GC (future use).
    pub segments_removed: Vec<u64>,
    /// Discard statistics: `(segment, bytes)` of vLog records that became
    /// garbage, added to each segment's count.
    pub discard: Vec<(u64, u64)>,
    /// The end of what GC has written and the index references: the newest
    /// GC segment and the length of it that counts. GC segments past it
    /// (and bytes past the offset) were left by a crash mid-pass.
    pub gc_head: Option<Position>,
    /// vLog segments sealed since the last edit (user segments at a roll,
    /// GC segments in the edit of the pass that sealed them).
    pub sealed: Vec<SealedSegment>,
    /// The user segment appends go to (set at each roll, after its
    /// directory entry is durable).
    pub vlog_head: Option<u64>,
    /// What the database was created with (see [`CreatedWith`]).
    pub created: Option<CreatedWith>,
    /// The counters since creation, as of this edit.
    pub counters: Option<LifetimeCounters>,
    /// Creation times and sequence ranges of segments (see [`SegmentInfo`]).
    pub segment_info: Vec<SegmentInfo>,
    /// Range tombstones a flush moved from its memtable into the manifest.
    pub range_dels_added: Vec<RangeTombstone>,
    /// Range tombstones (by sequence number) a full compaction applied to
    /// every version they covered: they hide nothing any more.
    pub range_dels_retired: Vec<u64>,
    /// Tables dropped: their entries are dead from this edit on. Applied
    /// before the renames and the creations of the same edit.
    pub tables_dropped: Vec<DroppedTable>,
    /// `(id, new name)` of live tables given another name (applied after
    /// the drops, before the creations), so that one edit can drop a table
    /// and give its name to another.
    pub tables_renamed: Vec<(u32, String)>,
    /// The format version, value compression and dictionaries (tags 20-24,
    /// `values.rs`).
    pub values: ValuesEdit,
}

impl VersionEdit {
    /// Whether the edit changes nothing.
    pub(crate) fn is_empty(&self) -> bool {
        *self == VersionEdit::default()
    }

    /// The edit's bytes (see the module docs).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.values.encode_version(&mut b);
        if let Some(n) = self.next_file_number {
            put_varint(&mut b, TAG_NEXT_FILE_NUMBER);
            put_varint(&mut b, n);
        }
        if let Some(s) = self.last_sequence {
            put_varint(&mut b, TAG_LAST_SEQUENCE);
            put_varint(&mut b, s);
        }
        if let Some(p) = self.replay_point {
            put_varint(&mut b, TAG_REPLAY_POINT);
            put_varint(&mut b, p.segment);
            put_varint(&mut b, p.offset);
        }
        if let Some(t) = self.vlog_tail {
            put_varint(&mut b, TAG_VLOG_TAIL);
            put_varint(&mut b, t);
        }
        for &(level, number) in &self.removed {
            put_varint(&mut b, TAG_REMOVED);
            put_varint(&mut b, u64::from(level));
            put_varint(&mut b, number);
        }
        for f in &self.added {
            put_varint(&mut b, TAG_ADDED);
            put_varint(&mut b, u64::from(f.level));
            put_varint(&mut b, f.number);
            put_varint(&mut b, f.size);
            put_varint(&mut b, f.entries);
            put_length_prefixed(&mut b, &f.smallest);
            put_length_prefixed(&mut b, &f.largest);
        }
        for t in &self.tables_created {
            put_varint(&mut b, TAG_TABLE_CREATED);
            put_varint(&mut b, u64::from(t.id));
            put_length_prefixed(&mut b, t.name.as_bytes());
            b.push(TableDef::kind_byte(t.kind));
        }
        for &s in &self.segments_removed {
            put_varint(&mut b, TAG_SEGMENT_REMOVED);
            put_varint(&mut b, s);
        }
        for &(seg, bytes) in &self.discard {
            put_varint(&mut b, TAG_DISCARD);
            put_varint(&mut b, seg);
            put_varint(&mut b, bytes);
        }
        if let Some(g) = self.gc_head {
            put_varint(&mut b, TAG_GC_HEAD);
            put_varint(&mut b, g.segment);
            put_varint(&mut b, g.offset);
        }
        if let Some(h) = self.vlog_head {
            put_varint(&mut b, TAG_VLOG_HEAD);
            put_varint(&mut b, h);
        }
        for s in &self.sealed {
            put_varint(&mut b, TAG_SEGMENT_SEALED);
            put_varint(&mut b, s.number);
            b.push(SealedSegment::kind_byte(s.kind));
            put_varint(&mut b, s.len);
        }
        if let Some(c) = &self.created {
            put_varint_list(&mut b, TAG_CREATED, &created_fields(c));
        }
        if let Some(c) = &self.counters {
            put_varint_list(&mut b, TAG_COUNTERS, &c.fields());
        }
        for t in &self.range_dels_added {
            put_varint(&mut b, TAG_RANGE_DEL_ADDED);
            t.encode_to(&mut b);
        }
        for &seq in &self.range_dels_retired {
            put_varint(&mut b, TAG_RANGE_DEL_RETIRED);
            put_varint(&mut b, seq);
        }
        for i in &self.segment_info {
            put_varint(&mut b, TAG_SEGMENT_INFO);
            put_varint(&mut b, i.number);
            put_varint(&mut b, i.created_unix_secs);
            put_varint(&mut b, i.min_seq);
            put_varint(&mut b, i.max_seq);
        }
        for t in &self.tables_dropped {
            put_varint(&mut b, TAG_TABLE_DROPPED);
            put_varint(&mut b, u64::from(t.id));
            b.push(TableDef::kind_byte(t.kind));
        }
        for (id, name) in &self.tables_renamed {
            put_varint(&mut b, TAG_TABLE_RENAMED);
            put_varint(&mut b, u64::from(*id));
            put_length_prefixed(&mut b, name.as_bytes());
        }
        self.values.encode_rest(&mut b);
        b
    }

    /// Parses an encoded edit. Any malformed input (truncated field, unknown
    /// tag, repeated singular field, level past [`MAX_LEVELS`], unknown table
    /// kind, non-UTF-8 name) is an error; nothing panics, and every
    /// allocation is bounded by the input's length.
    pub(crate) fn decode(bytes: &[u8]) -> Result<VersionEdit, String> {
        let mut r = Reader::new(bytes);
        let mut e = VersionEdit::default();
        while !r.is_empty() {
            let at = r.pos();
            let tag = r.varint().ok_or_else(|| format!("bad tag at byte {at}"))?;
            let truncated =
                || format!("field with tag {tag} at byte {at} is truncated or malformed");
            match tag {
                TAG_NEXT_FILE_NUMBER => {
                    let n = r.varint().ok_or_else(truncated)?;
                    set_once(&mut e.next_file_number, n, "next file number", at)?;
                }
                TAG_LAST_SEQUENCE => {
                    let s = r.varint().ok_or_else(truncated)?;
                    set_once(&mut e.last_sequence, s, "last sequence", at)?;
                }
                TAG_REPLAY_POINT => {
                    let segment = r.varint().ok_or_else(truncated)?;
                    let offset = r.varint().ok_or_else(truncated)?;
                    set_once(
                        &mut e.replay_point,
                        Position { segment, offset },
                        "replay point",
                        at,
                    )?;
                }
                TAG_VLOG_TAIL => {
                    let t = r.varint().ok_or_else(truncated)?;
                    set_once(&mut e.vlog_tail, t, "vLog tail", at)?;
                }
                TAG_REMOVED => {
                    let level = read_level(&mut r, at)?;
                    let number = r.varint().ok_or_else(truncated)?;
                    e.removed.push((level, number));
                }
                TAG_ADDED => {
                    let level = read_level(&mut r, at)?;
                    let number = r.varint().ok_or_else(truncated)?;
                    let size = r.varint().ok_or_else(truncated)?;
                    let entries = r.varint().ok_or_else(truncated)?;
                    let smallest = r.length_prefixed().ok_or_else(truncated)?.to_vec();
                    let largest = r.length_prefixed().ok_or_else(truncated)?.to_vec();
                    e.added.push(SstMeta {
                        level,
                        number,
                        size,
                        entries,
                        smallest,
                        largest,
                    });
                }
                TAG_TABLE_CREATED => {
                    let id = read_table_id(&mut r, at)?;
                    let name = read_name(&mut r, at)?;
                    let kind = read_kind(&mut r, at)?;
                    e.tables_created.push(TableDef { id, name, kind });
                }
                TAG_TABLE_DROPPED => {
                    let id = read_table_id(&mut r, at)?;
                    let kind = read_kind(&mut r, at)?;
                    e.tables_dropped.push(DroppedTable { id, kind });
                }
                TAG_TABLE_RENAMED => {
                    let id = read_table_id(&mut r, at)?;
                    let name = read_name(&mut r, at)?;
                    e.tables_renamed.push((id, name));
                }
                TAG_SEGMENT_REMOVED => {
                    let s = r.varint().ok_or_else(truncated)?;
                    e.segments_removed.push(s);
                }
                TAG_GC_HEAD => {
                    let segment = r.varint().ok_or_else(truncated)?;
                    let offset = r.varint().ok_or_else(truncated)?;
                    set_once(&mut e.gc_head, Position { segment, offset }, "gc_head", at)?;
                }
                TAG_VLOG_HEAD => {
                    let h = r.varint().ok_or_else(truncated)?;
                    set_once(&mut e.vlog_head, h, "vLog head", at)?;
                }
                TAG_SEGMENT_SEALED => {
                    let number = r.varint().ok_or_else(truncated)?;
                    let byte = r.u8().ok_or_else(truncated)?;
                    let kind = SealedSegment::kind_from_byte(byte)
                        .ok_or_else(|| format!("unknown segment kind {byte} at byte {at}"))?;
                    let len = r.varint().ok_or_else(truncated)?;
                    e.sealed.push(SealedSegment { number, kind, len });
                }
                TAG_DISCARD => {
                    let seg = r.varint().ok_or_else(truncated)?;
                    let bytes = r.varint().ok_or_else(truncated)?;
                    e.discard.push((seg, bytes));
                }
                TAG_CREATED => {
                    let f = read_varint_list(&mut r, 64).ok_or_else(truncated)?;
                    set_once(&mut e.created, created_from_fields(&f), "created", at)?;
                }
                TAG_SEGMENT_INFO => {
                    let mut v = [0u64; 4];
                    for x in &mut v {
                        *x = r.varint().ok_or_else(truncated)?;
                    }
                    e.segment_info.push(SegmentInfo {
                        number: v[0],
                        created_unix_secs: v[1],
                        min_seq: v[2],
                        max_seq: v[3],
                    });
                }
                TAG_COUNTERS => {
                    let f = read_varint_list(&mut r, 256).ok_or_else(truncated)?;
                    let c = LifetimeCounters::from_fields(&f);
                    set_once(&mut e.counters, c, "counters", at)?;
                }
                TAG_RANGE_DEL_ADDED => {
                    let t = RangeTombstone::decode_from(&mut r).ok_or_else(truncated)?;
                    e.range_dels_added.push(t);
                }
                TAG_RANGE_DEL_RETIRED => {
                    let seq = r.varint().ok_or_else(truncated)?;
                    e.range_dels_retired.push(seq);
                }
                _ => {
                    if !e.values.decode_field(tag, &mut r, at)? {
                        return Err(format!("unknown tag {tag} at byte {at}"));
                    }
                }
            }
        }
        Ok(e)
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T, what: &str, at: usize) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{what} repeated at byte {at}"));
    }
    *slot = Some(v);
    Ok(())
}

fn read_table_id(r: &mut Reader<'_>, at: usize) -> Result<u32, String> {
    let id = r
        .varint()
        .ok_or_else(|| format!("truncated table id at byte {at}"))?;
    u32::try_from(id).map_err(|_| format!("table id {id} at byte {at} is past u32"))
}

fn read_name(r: &mut Reader<'_>, at: usize) -> Result<String, String> {
    let name = r
        .length_prefixed()
        .ok_or_else(|| format!("truncated table name at byte {at}"))?;
    std::str::from_utf8(name)
        .map(str::to_owned)
        .map_err(|_| format!("table name at byte {at} is not UTF-8"))
}

fn read_kind(r: &mut Reader<'_>, at: usize) -> Result<TableKind, String> {
    let byte = r
        .u8()
        .ok_or_else(|| format!("truncated table kind at byte {at}"))?;
    TableDef::kind_from_byte(byte).ok_or_else(|| format!("unknown table kind {byte} at byte {at}"))
}

fn read_level(r: &mut Reader<'_>, at: usize) -> Result<u32, String> {
    let level = r
        .varint()
        .ok_or_else(|| format!("truncated level at byte {at}"))?;
    match u32::try_from(level) {
        Ok(l) if l < MAX_LEVELS => Ok(l),
        _ => Err(format!("level {level} at byte {at} is past the last level")),
    }
}
