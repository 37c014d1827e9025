//! The manifest: an append-only, checksummed log of [`VersionEdit`]s that
//! records which SSTables make up the LSM-tree, where vLog replay starts, and
//! the engine's counters. The live manifest is named by the file `CURRENT`.
//!
//! ```text
//! CURRENT          = "MANIFEST-" number (decimal, at least 6 digits, zero-padded) "\n"
//! MANIFEST-NNNNNN  = record*
//! record           = length (u32 LE) | crc32 (u32 LE, crc32fast over payload) | payload
//! payload          = an encoded VersionEdit (never empty)
//! ```
//!
//! The first record of every manifest is a snapshot edit that recreates the
//! whole state; every later record is an incremental edit. Each append is
//! synced before it is acknowledged, so only the last record can be torn by
//! a crash: recovery drops such a tail (and truncates the file to the last good
//! record); damage anywhere else is [`Error::Corruption`].
//!
//! An encoded edit is a sequence of fields, each a varint tag followed by its
//! payload (see the `TAG_*` constants). Singular fields appear at most once;
//! list fields repeat their tag once per element, so decoding never allocates
//! from an unchecked count.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::coding::{put_length_prefixed, put_varint, Reader};
use crate::error::{Error, Result};
use crate::io::{FileHandle, Fs};
use crate::lsm::ikey;

/// Levels are numbered `0..MAX_LEVELS`; an edit naming a deeper level is corrupt.
pub(crate) const MAX_LEVELS: u32 = 64;

/// The file that names the live manifest.
pub(crate) const CURRENT_FILE: &str = "CURRENT";
/// Where `CURRENT`'s new contents are written before the rename.
pub(crate) const CURRENT_TMP_FILE: &str = "CURRENT.tmp";

/// Bytes of a record header: length (u32 LE) and crc32 (u32 LE).
const HEADER_LEN: u64 = 8;
/// `CURRENT` is one short line; anything longer is not ours.
const MAX_CURRENT_LEN: u64 = 256;
/// Table kinds a [`TableDef`] may carry.
const MAX_TABLE_KIND: u8 = 1;

// Field tags of an encoded VersionEdit.
/// `next_file_number`: varint.
const TAG_NEXT_FILE_NUMBER: u64 = 1;
/// `last_sequence`: varint.
const TAG_LAST_SEQUENCE: u64 = 2;
/// `replay_point`: segment varint, offset varint.
const TAG_REPLAY_POINT: u64 = 3;
/// `vlog_tail`: varint.
const TAG_VLOG_TAIL: u64 = 4;
/// One element of `removed`: level varint, number varint.
const TAG_REMOVED: u64 = 5;
/// One element of `added`: level, number, size, entries (varints), smallest,
/// largest (length-prefixed).
const TAG_ADDED: u64 = 6;
/// One element of `tables_created`: id varint, name length-prefixed UTF-8, kind u8.
const TAG_TABLE_CREATED: u64 = 7;
/// One element of `segments_removed`: segment number varint.
const TAG_SEGMENT_REMOVED: u64 = 8;
/// One element of `discard`: segment number varint, garbage bytes varint
/// (added to what the segment already had).
const TAG_DISCARD: u64 = 9;
/// `gc_head`: segment varint, offset varint (at most once).
const TAG_GC_HEAD: u64 = 10;

/// An SSTable in the LSM-tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableFile {
    pub level: u32,
    pub number: u64,
    pub size: u64,
    pub entries: u64,
    /// The smallest internal key in the table.
    pub smallest: Vec<u8>,
    /// The largest internal key in the table.
    pub largest: Vec<u8>,
}

/// A vLog position: everything before it is in SSTables or obsolete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct ReplayPoint {
    pub segment: u64,
    pub offset: u64,
}

/// A named table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableDef {
    pub id: u32,
    pub name: String,
    /// 0 = ordered, 1 = unordered.
    pub kind: u8,
}

/// One change to the manifest state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct VersionEdit {
    pub added: Vec<TableFile>,
    /// `(level, number)` of tables that leave the tree. Removals are applied
    /// before additions, so a table may move levels within one edit.
    pub removed: Vec<(u32, u64)>,
    pub replay_point: Option<ReplayPoint>,
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
    pub gc_head: Option<ReplayPoint>,
}

/// The result of applying every edit of a manifest in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ManifestState {
    /// Tables by level. Level 0 is in the order added (newest last); deeper
    /// levels are sorted by smallest key ([`ikey::compare`]). The vector grows
    /// as needed and never ends with an empty level.
    pub levels: Vec<Vec<TableFile>>,
    pub replay_point: ReplayPoint,
    pub vlog_tail: u64,
    pub next_file_number: u64,
    pub last_sequence: u64,
    pub tables: Vec<TableDef>,
    pub segments_removed: BTreeSet<u64>,
    /// Garbage bytes per live vLog segment (discard statistics).
    pub discard: BTreeMap<u64, u64>,
    /// See [`VersionEdit::gc_head`]; segment 0 while GC has written nothing.
    pub gc_head: ReplayPoint,
}

impl ManifestState {
    /// Applies an edit: removals first, then additions, then the other
    /// fields. An edit that removes a table that is not there, adds a file
    /// number that is already live (or twice), names a level at or past
    /// [`MAX_LEVELS`], adds a table whose smallest key is above its largest,
    /// or creates a table id or name that exists, is refused with a reason
    /// (the caller wraps it in [`Error::Corruption`]). A refused edit leaves
    /// the state unchanged.
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
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
        for (i, t) in edit.tables_created.iter().enumerate() {
            if t.kind > MAX_TABLE_KIND {
                return Err(format!(
                    "creates table {:?} of unknown kind {}",
                    t.name, t.kind
                ));
            }
            // What `Db::table` would refuse to create.
            if t.id == crate::db::DEFAULT_TABLE
                || t.name.is_empty()
                || t.name.len() > 255
                || t.name == "default"
            {
                return Err(format!(
                    "creates table {:?} (id {}): the id or name is reserved or invalid",
                    t.name, t.id
                ));
            }
            let earlier = &edit.tables_created[..i];
            if self
                .tables
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
        self.tables.extend(edit.tables_created.iter().cloned());
        self.segments_removed
            .extend(edit.segments_removed.iter().copied());
        for &(seg, bytes) in &edit.discard {
            if self.segments_removed.contains(&seg) || seg < self.vlog_tail {
                continue;
            }
            let g = self.discard.entry(seg).or_insert(0);
            *g = g.saturating_add(bytes);
        }
        for s in &edit.segments_removed {
            self.discard.remove(s);
        }
        if let Some(g) = edit.gc_head {
            self.gc_head = g;
        }
        // Numbers below the tail are gone for good: no need to remember them.
        let tail = self.vlog_tail;
        self.segments_removed.retain(|&s| s >= tail);
        self.discard.retain(|&s, _| s >= tail);
        Ok(())
    }

    /// One edit that recreates this whole state when applied to an empty one
    /// (used as the first record of a new manifest).
    pub fn snapshot_edit(&self) -> VersionEdit {
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
        }
    }
}

impl VersionEdit {
    /// Whether the edit changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == VersionEdit::default()
    }

    /// The edit's bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
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
            b.push(t.kind);
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
        b
    }

    /// Parses an encoded edit. Any malformed input (truncated field, unknown
    /// tag, repeated singular field, level past [`MAX_LEVELS`], unknown table
    /// kind, non-UTF-8 name) is an error; nothing panics, and every
    /// allocation is bounded by the input's length.
    pub fn decode(bytes: &[u8]) -> Result<VersionEdit, String> {
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
                        ReplayPoint { segment, offset },
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
                    e.added.push(TableFile {
                        level,
                        number,
                        size,
                        entries,
                        smallest,
                        largest,
                    });
                }
                TAG_TABLE_CREATED => {
                    let id = r.varint().ok_or_else(truncated)?;
                    let id = u32::try_from(id)
                        .map_err(|_| format!("table id {id} at byte {at} is past u32"))?;
                    let name = r.length_prefixed().ok_or_else(truncated)?;
                    let name = std::str::from_utf8(name)
                        .map_err(|_| format!("table name at byte {at} is not UTF-8"))?
                        .to_owned();
                    let kind = r.u8().ok_or_else(truncated)?;
                    if kind > MAX_TABLE_KIND {
                        return Err(format!("unknown table kind {kind} at byte {at}"));
                    }
                    e.tables_created.push(TableDef { id, name, kind });
                }
                TAG_SEGMENT_REMOVED => {
                    let s = r.varint().ok_or_else(truncated)?;
                    e.segments_removed.push(s);
                }
                TAG_GC_HEAD => {
                    let segment = r.varint().ok_or_else(truncated)?;
                    let offset = r.varint().ok_or_else(truncated)?;
                    set_once(
                        &mut e.gc_head,
                        ReplayPoint { segment, offset },
                        "gc_head",
                        at,
                    )?;
                }
                TAG_DISCARD => {
                    let seg = r.varint().ok_or_else(truncated)?;
                    let bytes = r.varint().ok_or_else(truncated)?;
                    e.discard.push((seg, bytes));
                }
                _ => return Err(format!("unknown tag {tag} at byte {at}")),
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

fn read_level(r: &mut Reader<'_>, at: usize) -> Result<u32, String> {
    let level = r
        .varint()
        .ok_or_else(|| format!("truncated level at byte {at}"))?;
    match u32::try_from(level) {
        Ok(l) if l < MAX_LEVELS => Ok(l),
        _ => Err(format!("level {level} at byte {at} is past the last level")),
    }
}

/// `"MANIFEST-000007"`.
pub(crate) fn manifest_file_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// The number in a canonical manifest file name, `None` for anything else.
pub(crate) fn parse_manifest_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("MANIFEST-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (manifest_file_name(n) == name).then_some(n)
}

/// Frames a payload as one manifest record.
fn encode_record(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        Error::InvalidArgument(format!(
            "manifest edit of {} bytes is too large",
            payload.len()
        ))
    })?;
    let mut rec = Vec::with_capacity(HEADER_LEN as usize + payload.len());
    rec.extend_from_slice(&len.to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    rec.extend_from_slice(payload);
    Ok(rec)
}

/// The manifest number named by `CURRENT`, `None` when there is no `CURRENT`.
fn read_current(fs: &dyn Fs, dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(CURRENT_FILE);
    let file = match fs.open(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let len = file
        .len()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if len > MAX_CURRENT_LEN {
        return Err(Error::corruption(
            &path,
            0,
            format!("{len} bytes is too long for CURRENT"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    std::str::from_utf8(&buf)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(parse_manifest_file_name)
        .map(Some)
        .ok_or_else(|| {
            Error::corruption(
                &path,
                0,
                format!(
                    "does not name a manifest: {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            )
        })
}

/// Whether every byte of `file` in `from..to` is zero (a tail whose size
/// reached the disk but whose data did not).
fn all_zero(file: &dyn FileHandle, path: &Path, mut from: u64, to: u64) -> Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    while from < to {
        let n = (to - from).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], from)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        from += n as u64;
    }
    Ok(true)
}

/// The live manifest file, open for appending.
#[derive(Debug)]
pub(crate) struct Manifest {
    path: PathBuf,
    number: u64,
    file: Arc<dyn FileHandle>,
    /// Where the next record goes: the bytes of good records in the file.
    offset: u64,
    /// Set when an append failed: the file's tail is unknown, refuse more.
    failed: bool,
    /// A torn last record recovery ignored: its offset and why.
    dropped_tail: Option<(u64, String)>,
}

impl Manifest {
    /// Creates `MANIFEST-<number>` holding `state.snapshot_edit()`, syncs it,
    /// and installs it as current: `CURRENT.tmp` is written and synced,
    /// renamed over `CURRENT`, and the directory synced. Then the previous
    /// manifest (named by the old `CURRENT`, if any) is removed; failing to
    /// remove it is only logged.
    ///
    /// `number` must differ from the live manifest's (that would truncate the
    /// live file): [`Error::InvalidArgument`].
    pub fn create(
        fs: Arc<dyn Fs>,
        dir: &Path,
        number: u64,
        state: &ManifestState,
    ) -> Result<Manifest> {
        let old = match read_current(&*fs, dir) {
            Ok(old) => old,
            Err(e) => {
                log::warn!(
                    "manifest: ignoring unreadable CURRENT while creating a new manifest: {e}"
                );
                None
            }
        };
        if old == Some(number) {
            return Err(Error::InvalidArgument(format!(
                "{} is the live manifest and cannot be recreated",
                manifest_file_name(number)
            )));
        }
        let name = manifest_file_name(number);
        let path = dir.join(&name);
        let record = encode_record(&state.snapshot_edit().encode())?;
        let file = fs
            .create(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let written = file
            .write_all_at(&record, 0)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
            .and_then(|()| write_current_tmp(&*fs, dir, &name));
        if let Err(e) = written {
            // CURRENT still names the old manifest: the new file is garbage.
            let _ = fs.remove(&path);
            return Err(e);
        }
        let current = dir.join(CURRENT_FILE);
        if let Err(e) = fs.rename(&dir.join(CURRENT_TMP_FILE), &current) {
            let _ = fs.remove(&path);
            return Err(Error::io(
                format!("renaming {CURRENT_TMP_FILE} to {CURRENT_FILE}"),
                e,
            ));
        }
        // From here CURRENT may name the new file: never remove it on failure.
        fs.sync_dir(dir)
            .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
        if let Some(old) = old {
            let old_path = dir.join(manifest_file_name(old));
            match fs.remove(&old_path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => log::warn!("manifest: could not remove old {}: {e}", old_path.display()),
            }
        }
        Ok(Manifest {
            path,
            number,
            file,
            offset: record.len() as u64,
            failed: false,
            dropped_tail: None,
        })
    }

    /// Reads `CURRENT` (`None` when there is none: a new database) and replays
    /// the manifest it names into a [`ManifestState`].
    ///
    /// A torn last record (an incomplete header, a length running past the
    /// end of the file, a checksum mismatch on a record that ends at the end
    /// of the file or is followed only by zeros, or a zero-filled tail) was
    /// never acknowledged: it is dropped with a warning and the file is
    /// truncated to the last good record. Anything else — bad `CURRENT`, a
    /// missing manifest, a checksum mismatch followed by more data, an
    /// undecodable or inapplicable edit, no intact first record — is
    /// [`Error::Corruption`] naming the file and offset.
    pub fn recover(fs: Arc<dyn Fs>, dir: &Path) -> Result<Option<(Manifest, ManifestState)>> {
        let Some(number) = read_current(&*fs, dir)? else {
            return Ok(None);
        };
        let path = dir.join(manifest_file_name(number));
        let file = match fs.open(&path, true) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::corruption(
                    dir.join(CURRENT_FILE),
                    0,
                    format!("names {}, which does not exist", path.display()),
                ))
            }
            Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
        };
        let read_err = |e| Error::io(format!("reading {}", path.display()), e);
        let file_len = file.len().map_err(read_err)?;
        let mut state = ManifestState::default();
        let mut offset = 0u64;
        let mut records = 0u64;
        let torn: Option<String> = loop {
            let rest = file_len - offset;
            if rest == 0 {
                break None;
            }
            if rest < HEADER_LEN {
                break Some(format!("{rest} bytes of an incomplete record header"));
            }
            let mut header = [0u8; HEADER_LEN as usize];
            file.read_exact_at(&mut header, offset).map_err(read_err)?;
            let len = u64::from(u32::from_le_bytes([
                header[0], header[1], header[2], header[3],
            ]));
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if len == 0 {
                if all_zero(&*file, &path, offset, file_len)? {
                    break Some(format!("{rest} zero bytes"));
                }
                return Err(Error::corruption(&path, offset, "zero-length record"));
            }
            if len > rest - HEADER_LEN {
                break Some(format!(
                    "a record of {len} bytes with only {} left",
                    rest - HEADER_LEN
                ));
            }
            let end = offset + HEADER_LEN + len;
            let mut payload = vec![0u8; len as usize];
            file.read_exact_at(&mut payload, offset + HEADER_LEN)
                .map_err(read_err)?;
            if crc32fast::hash(&payload) != crc {
                if end == file_len || all_zero(&*file, &path, end, file_len)? {
                    break Some("a last record with a checksum mismatch".to_owned());
                }
                return Err(Error::corruption(
                    &path,
                    offset,
                    "record checksum mismatch with more records after it",
                ));
            }
            let edit = VersionEdit::decode(&payload)
                .map_err(|r| Error::corruption(&path, offset, format!("undecodable edit: {r}")))?;
            state.apply(&edit).map_err(|r| {
                Error::corruption(&path, offset, format!("edit does not apply: {r}"))
            })?;
            records += 1;
            offset = end;
        };
        if records == 0 {
            return Err(Error::corruption(
                &path,
                0,
                "manifest has no intact snapshot record",
            ));
        }
        // The torn bytes stay in the file (appends overwrite them) until the
        // caller has checked the state: if files the dropped edit made
        // obsolete are gone, the edit was acknowledged and the damage is
        // corruption, which the file must still show.
        let dropped_tail = torn.map(|why| {
            log::warn!(
                "manifest: ignoring a torn tail of {} at offset {offset} ({} bytes): {why}",
                path.display(),
                file_len - offset
            );
            (offset, why)
        });
        let manifest = Manifest {
            path,
            number,
            file,
            offset,
            failed: false,
            dropped_tail,
        };
        Ok(Some((manifest, state)))
    }

    /// The torn last record [`Manifest::recover`] ignored, if any: its
    /// offset and what was wrong with it.
    pub fn dropped_tail(&self) -> Option<&(u64, String)> {
        self.dropped_tail.as_ref()
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one edit record and syncs it (`sync_data`) before returning.
    /// An empty edit writes nothing. After a failed append this manifest
    /// refuses further appends ([`Error::Poisoned`]); create a new one.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned(format!(
                "an earlier append to {} failed",
                self.path.display()
            )));
        }
        if edit.is_empty() {
            return Ok(());
        }
        let record = encode_record(&edit.encode())?;
        let res = self
            .file
            .write_all_at(&record, self.offset)
            .and_then(|()| self.file.sync_data());
        match res {
            Ok(()) => {
                self.offset += record.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(Error::io(
                    format!("appending to {}", self.path.display()),
                    e,
                ))
            }
        }
    }

    /// The manifest's file number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes in the manifest file, for deciding when to rewrite it.
    pub fn size(&self) -> u64 {
        self.offset
    }
}

/// Writes and syncs `CURRENT.tmp` naming `name`.
fn write_current_tmp(fs: &dyn Fs, dir: &Path, name: &str) -> Result<()> {
    let tmp = dir.join(CURRENT_TMP_FILE);
    let contents = format!("{name}\n");
    let f = fs
        .create(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    f.write_all_at(contents.as_bytes(), 0)
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn fs() -> Arc<dyn Fs> {
        Arc::new(StdFs::default())
    }

    fn ik(table: u32, key: &[u8], seq: u64) -> Vec<u8> {
        ikey::encode(table, key, seq, ikey::Kind::Inline as u8)
    }

    fn table_file(level: u32, number: u64, lo: &[u8], hi: &[u8]) -> TableFile {
        TableFile {
            level,
            number,
            size: number * 100,
            entries: number * 3,
            smallest: ik(1, lo, 9),
            largest: ik(1, hi, 1),
        }
    }

    /// An edit that is valid against `state` (and changes it).
    fn random_edit(rng: &mut StdRng, state: &ManifestState) -> VersionEdit {
        let mut e = VersionEdit::default();
        let live: Vec<(u32, u64)> = state
            .levels
            .iter()
            .flatten()
            .map(|f| (f.level, f.number))
            .collect();
        for &(level, number) in &live {
            if rng.gen_ratio(1, 4) {
                e.removed.push((level, number));
            }
        }
        let mut next = state.next_file_number.max(1);
        for _ in 0..rng.gen_range(0..4) {
            let mut a: Vec<u8> = (0..rng.gen_range(0..6)).map(|_| rng.gen()).collect();
            let mut b: Vec<u8> = (0..rng.gen_range(0..6)).map(|_| rng.gen()).collect();
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            e.added.push(table_file(rng.gen_range(0..5), next, &a, &b));
            next += 1;
        }
        if !e.added.is_empty() || rng.gen() {
            e.next_file_number = Some(next);
        }
        if rng.gen() {
            e.last_sequence = Some(state.last_sequence + rng.gen_range(0..1000));
        }
        if rng.gen() {
            e.replay_point = Some(ReplayPoint {
                segment: rng.gen_range(0..10),
                offset: rng.gen(),
            });
        }
        if rng.gen() {
            e.vlog_tail = Some(rng.gen_range(0..10));
        }
        if rng.gen_ratio(1, 5) {
            let id = state.tables.len() as u32 + 1;
            e.tables_created.push(TableDef {
                id,
                name: format!("table-{id}"),
                kind: rng.gen_range(0..=1),
            });
        }
        if rng.gen_ratio(1, 5) {
            e.segments_removed.push(rng.gen_range(0..100));
        }
        if rng.gen_ratio(1, 3) {
            e.discard
                .push((rng.gen_range(0..100), rng.gen_range(0..1 << 20)));
        }
        if e.is_empty() {
            e.last_sequence = Some(state.last_sequence + 1);
        }
        e
    }

    /// A state reached by `n` random edits.
    fn random_state(seed: u64, n: usize) -> ManifestState {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut s = ManifestState::default();
        for _ in 0..n {
            let e = random_edit(&mut rng, &s);
            s.apply(&e).unwrap();
        }
        s
    }

    fn arb_edit() -> impl Strategy<Value = VersionEdit> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..20);
        let file = (
            0..MAX_LEVELS,
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            bytes(),
            bytes(),
        )
            .prop_map(
                |(level, number, size, entries, smallest, largest)| TableFile {
                    level,
                    number,
                    size,
                    entries,
                    smallest,
                    largest,
                },
            );
        let def = (any::<u32>(), ".{0,12}", 0..=MAX_TABLE_KIND)
            .prop_map(|(id, name, kind)| TableDef { id, name, kind });
        (
            proptest::collection::vec(file, 0..4),
            proptest::collection::vec((0..MAX_LEVELS, any::<u64>()), 0..4),
            proptest::option::of((any::<u64>(), any::<u64>())),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(def, 0..3),
            proptest::collection::vec(any::<u64>(), 0..4),
            proptest::collection::vec((any::<u64>(), any::<u64>()), 0..3),
            proptest::option::of((any::<u64>(), any::<u64>())),
        )
            .prop_map(
                |(
                    added,
                    removed,
                    rp,
                    vlog_tail,
                    next_file_number,
                    last_sequence,
                    tables_created,
                    segs,
                    discard,
                    gc_head,
                )| {
                    VersionEdit {
                        added,
                        removed,
                        replay_point: rp.map(|(segment, offset)| ReplayPoint { segment, offset }),
                        vlog_tail,
                        next_file_number,
                        last_sequence,
                        tables_created,
                        segments_removed: segs,
                        discard,
                        gc_head: gc_head.map(|(segment, offset)| ReplayPoint { segment, offset }),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn edit_round_trip(e in arb_edit()) {
            let bytes = e.encode();
            prop_assert_eq!(VersionEdit::decode(&bytes).unwrap(), e.clone());
            // Every strict prefix that cuts a field is an error, never a panic.
            for cut in 0..bytes.len() {
                let _ = VersionEdit::decode(&bytes[..cut]);
            }
        }

        #[test]
        fn decode_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = VersionEdit::decode(&bytes);
        }

        #[test]
        fn decode_mutated_edits_never_panics(e in arb_edit(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
            let mut bytes = e.encode();
            if !bytes.is_empty() {
                for (at, x) in flips {
                    let n = bytes.len();
                    bytes[at % n] ^= x;
                }
            }
            let _ = VersionEdit::decode(&bytes);
        }
    }

    #[test]
    fn empty_and_full_edits_round_trip() {
        let empty = VersionEdit::default();
        assert!(empty.encode().is_empty());
        assert_eq!(VersionEdit::decode(&[]).unwrap(), empty);
        let full = VersionEdit {
            added: vec![table_file(3, 7, b"a", b"z")],
            removed: vec![(0, 2), (63, u64::MAX)],
            replay_point: Some(ReplayPoint {
                segment: 4,
                offset: 123_456,
            }),
            vlog_tail: Some(2),
            next_file_number: Some(9),
            last_sequence: Some(ikey::MAX_SEQ),
            tables_created: vec![TableDef {
                id: u32::MAX,
                name: "ünïcode".into(),
                kind: 1,
            }],
            segments_removed: vec![0, 1, u64::MAX],
            discard: vec![(3, 4096), (u64::MAX, u64::MAX)],
            gc_head: Some(ReplayPoint {
                segment: 5,
                offset: 77,
            }),
        };
        assert_eq!(VersionEdit::decode(&full.encode()).unwrap(), full);
    }

    #[test]
    fn decode_rejects_malformed_fields() {
        let mut b = Vec::new();
        put_varint(&mut b, 99);
        assert!(VersionEdit::decode(&b).unwrap_err().contains("unknown tag"));
        let e = VersionEdit {
            vlog_tail: Some(3),
            ..Default::default()
        };
        let twice = [e.encode(), e.encode()].concat();
        assert!(VersionEdit::decode(&twice)
            .unwrap_err()
            .contains("repeated"));
        let mut b = Vec::new();
        put_varint(&mut b, TAG_REMOVED);
        put_varint(&mut b, u64::from(MAX_LEVELS));
        put_varint(&mut b, 1);
        assert!(VersionEdit::decode(&b).is_err());
        let mut b = Vec::new();
        put_varint(&mut b, TAG_TABLE_CREATED);
        put_varint(&mut b, 1);
        put_length_prefixed(&mut b, b"t");
        b.push(2);
        assert!(VersionEdit::decode(&b).unwrap_err().contains("kind"));
        let mut b = Vec::new();
        put_varint(&mut b, TAG_TABLE_CREATED);
        put_varint(&mut b, 1);
        put_length_prefixed(&mut b, &[0xff, 0xfe]);
        b.push(0);
        assert!(VersionEdit::decode(&b).unwrap_err().contains("UTF-8"));
        // A giant length prefix is refused without allocating.
        let mut b = Vec::new();
        put_varint(&mut b, TAG_ADDED);
        for v in [1u64, 1, 1, 1, u64::MAX] {
            put_varint(&mut b, v);
        }
        assert!(VersionEdit::decode(&b).is_err());
    }

    #[test]
    fn apply_orders_levels_and_snapshot_recreates_state() {
        let mut s = ManifestState::default();
        let e = VersionEdit {
            added: vec![
                table_file(0, 5, b"m", b"z"),
                table_file(0, 3, b"a", b"c"),
                table_file(2, 8, b"q", b"r"),
                table_file(2, 6, b"b", b"d"),
                table_file(2, 7, b"h", b"k"),
            ],
            next_file_number: Some(9),
            ..Default::default()
        };
        s.apply(&e).unwrap();
        assert_eq!(s.levels.len(), 3);
        assert!(s.levels[1].is_empty());
        let l0: Vec<u64> = s.levels[0].iter().map(|f| f.number).collect();
        let l2: Vec<u64> = s.levels[2].iter().map(|f| f.number).collect();
        assert_eq!(l0, [5, 3]);
        assert_eq!(l2, [6, 7, 8]);

        // A trivial move: remove and re-add the same number in one edit.
        let mv = VersionEdit {
            removed: vec![(0, 3)],
            added: vec![table_file(1, 3, b"a", b"c")],
            ..Default::default()
        };
        s.apply(&mv).unwrap();
        assert_eq!(s.levels[1][0].number, 3);

        // Emptying the deepest level shrinks the vector.
        s.apply(&VersionEdit {
            removed: vec![(2, 6), (2, 7), (2, 8)],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.levels.len(), 2);

        let mut again = ManifestState::default();
        again.apply(&s.snapshot_edit()).unwrap();
        assert_eq!(again, s);

        for seed in 0..50 {
            let s = random_state(seed, 40);
            let mut again = ManifestState::default();
            again.apply(&s.snapshot_edit()).unwrap();
            assert_eq!(again, s, "seed {seed}");
            let decoded = VersionEdit::decode(&s.snapshot_edit().encode()).unwrap();
            assert_eq!(decoded, s.snapshot_edit());
        }
    }

    #[test]
    fn apply_refuses_bad_edits_without_changing_state() {
        let mut s = ManifestState::default();
        s.apply(&VersionEdit {
            added: vec![table_file(0, 1, b"a", b"b"), table_file(1, 2, b"c", b"d")],
            tables_created: vec![TableDef {
                id: 1,
                name: "t".into(),
                kind: 0,
            }],
            ..Default::default()
        })
        .unwrap();
        let before = s.clone();
        let bad = [
            VersionEdit {
                removed: vec![(0, 9)],
                ..Default::default()
            },
            VersionEdit {
                removed: vec![(1, 1)],
                ..Default::default()
            },
            VersionEdit {
                removed: vec![(7, 1)],
                ..Default::default()
            },
            VersionEdit {
                removed: vec![(0, 1), (0, 1)],
                ..Default::default()
            },
            VersionEdit {
                added: vec![table_file(3, 2, b"x", b"y")],
                ..Default::default()
            },
            VersionEdit {
                added: vec![table_file(3, 4, b"x", b"y"), table_file(2, 4, b"x", b"y")],
                ..Default::default()
            },
            VersionEdit {
                added: vec![table_file(3, 4, b"y", b"x")],
                ..Default::default()
            },
            VersionEdit {
                added: vec![table_file(MAX_LEVELS, 4, b"x", b"y")],
                ..Default::default()
            },
            VersionEdit {
                // Valid removal, then a clash: nothing may change.
                removed: vec![(0, 1)],
                tables_created: vec![TableDef {
                    id: 2,
                    name: "t".into(),
                    kind: 0,
                }],
                ..Default::default()
            },
            VersionEdit {
                tables_created: vec![TableDef {
                    id: 1,
                    name: "u".into(),
                    kind: 0,
                }],
                ..Default::default()
            },
            VersionEdit {
                tables_created: vec![
                    TableDef {
                        id: 5,
                        name: "v".into(),
                        kind: 0,
                    },
                    TableDef {
                        id: 6,
                        name: "v".into(),
                        kind: 1,
                    },
                ],
                ..Default::default()
            },
        ];
        // Table definitions `Db::table` would never write: the default
        // table's id, the reserved name, an empty or over-long name.
        let reserved = [
            (0, "w".to_string()),
            (7, "default".to_string()),
            (7, String::new()),
            (7, "x".repeat(256)),
        ];
        let bad: Vec<VersionEdit> = bad
            .into_iter()
            .chain(reserved.into_iter().map(|(id, name)| VersionEdit {
                tables_created: vec![TableDef { id, name, kind: 1 }],
                ..Default::default()
            }))
            .collect();
        for (i, e) in bad.iter().enumerate() {
            assert!(s.apply(e).is_err(), "edit {i} should be refused");
            assert_eq!(s, before, "edit {i} changed the state");
        }
    }

    fn manifest_path(dir: &Path, number: u64) -> PathBuf {
        dir.join(manifest_file_name(number))
    }

    /// Creates a manifest from a random state and appends `n` random edits;
    /// returns the state after each record (index 0 = the snapshot alone).
    fn build(dir: &Path, seed: u64, number: u64, n: usize) -> (Manifest, Vec<ManifestState>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut state = random_state(seed ^ 0xabcd, 10);
        let mut m = Manifest::create(fs(), dir, number, &state).unwrap();
        let mut states = vec![state.clone()];
        for _ in 0..n {
            let e = random_edit(&mut rng, &state);
            m.append(&e).unwrap();
            state.apply(&e).unwrap();
            states.push(state.clone());
        }
        (m, states)
    }

    fn recover(dir: &Path) -> Result<Option<(Manifest, ManifestState)>> {
        Manifest::recover(fs(), dir)
    }

    #[test]
    fn file_names() {
        assert_eq!(manifest_file_name(7), "MANIFEST-000007");
        assert_eq!(manifest_file_name(12_345_678), "MANIFEST-12345678");
        assert_eq!(parse_manifest_file_name("MANIFEST-000007"), Some(7));
        assert_eq!(
            parse_manifest_file_name("MANIFEST-12345678"),
            Some(12_345_678)
        );
        for bad in [
            "MANIFEST-7",
            "MANIFEST-",
            "MANIFEST-0000007",
            "MANIFEST-00000x",
            "MANIFEST-+00007",
            "xMANIFEST-000007",
        ] {
            assert_eq!(parse_manifest_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn create_append_recover_and_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        assert!(recover(dir.path()).unwrap().is_none());
        let (m, states) = build(dir.path(), 1, 3, 20);
        assert_eq!(m.number(), 3);
        let size = m.size();
        assert_eq!(
            size,
            std::fs::metadata(manifest_path(dir.path(), 3))
                .unwrap()
                .len()
        );
        drop(m);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap(),
            "MANIFEST-000003\n"
        );

        let (mut m, state) = recover(dir.path()).unwrap().unwrap();
        assert_eq!(&state, states.last().unwrap());
        assert_eq!(m.number(), 3);
        assert_eq!(m.size(), size);
        // Appending after recovery continues the same file.
        let mut rng = StdRng::seed_from_u64(77);
        let e = random_edit(&mut rng, &state);
        m.append(&e).unwrap();
        m.append(&VersionEdit::default()).unwrap(); // writes nothing
        let mut expected = state.clone();
        expected.apply(&e).unwrap();
        drop(m);
        let (m, state) = recover(dir.path()).unwrap().unwrap();
        assert_eq!(state, expected);

        // Rewrite: a new manifest holding the snapshot; CURRENT follows, the old file goes.
        assert!(matches!(
            Manifest::create(fs(), dir.path(), 3, &state),
            Err(Error::InvalidArgument(_))
        ));
        let m2 = Manifest::create(fs(), dir.path(), 10, &state).unwrap();
        assert!(m2.size() < m.size());
        drop((m, m2));
        assert!(!manifest_path(dir.path(), 3).exists());
        assert!(!dir.path().join(CURRENT_TMP_FILE).exists());
        let (m, again) = recover(dir.path()).unwrap().unwrap();
        assert_eq!(m.number(), 10);
        assert_eq!(again, expected);
        let mut names = StdFs::default().list(dir.path()).unwrap();
        names.sort();
        assert_eq!(names, ["CURRENT", "MANIFEST-000010"]);
    }

    #[test]
    fn torn_tail_is_dropped_and_reported() {
        for cut_kind in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let (m, states) = build(dir.path(), 5 + cut_kind, 1, 6);
            let full = m.size();
            drop(m);
            let path = manifest_path(dir.path(), 1);
            let bytes = std::fs::read(&path).unwrap();
            // The offset of the last record.
            let mut off = 0usize;
            let mut last = 0usize;
            while off < bytes.len() {
                last = off;
                off += 8 + u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
            }
            let mut damaged = bytes.clone();
            match cut_kind {
                0 => damaged.truncate(last + 8 + 1),         // mid-payload
                1 => damaged.truncate(last + 3),             // mid-header
                2 => damaged[last + 5] ^= 0x40,              // the last record's crc
                _ => damaged.extend_from_slice(&[0u8; 100]), // zero-filled tail after a good record
            }
            std::fs::write(&path, &damaged).unwrap();
            let (mut m, state) = recover(dir.path()).unwrap().unwrap();
            let expect_len = if cut_kind == 3 { full } else { last as u64 };
            let expect_state = if cut_kind == 3 {
                &states[6]
            } else {
                &states[5]
            };
            assert_eq!(&state, expect_state, "cut kind {cut_kind}");
            assert_eq!(m.size(), expect_len);
            // The torn bytes stay (for the caller to judge) and are reported.
            assert!(std::fs::metadata(&path).unwrap().len() >= expect_len);
            assert!(m.dropped_tail().is_some(), "cut kind {cut_kind}");
            assert_eq!(m.dropped_tail().map(|t| t.0), Some(expect_len));
            // A following append + recover works.
            let mut rng = StdRng::seed_from_u64(cut_kind);
            let e = random_edit(&mut rng, &state);
            m.append(&e).unwrap();
            drop(m);
            let mut expected = state.clone();
            expected.apply(&e).unwrap();
            let (_, again) = recover(dir.path()).unwrap().unwrap();
            assert_eq!(again, expected, "cut kind {cut_kind}");
        }
    }

    fn assert_corruption_in(r: Result<Option<(Manifest, ManifestState)>>, file: &Path) -> u64 {
        match r {
            Err(Error::Corruption {
                file: f, offset, ..
            }) => {
                assert_eq!(f, file);
                offset
            }
            Err(e) => panic!("expected corruption in {}, got {e}", file.display()),
            Ok(_) => panic!("expected corruption in {}, got Ok", file.display()),
        }
    }

    #[test]
    fn damage_in_the_middle_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _) = build(dir.path(), 9, 4, 5);
        drop(m);
        let path = manifest_path(dir.path(), 4);
        let good = std::fs::read(&path).unwrap();
        let first_len = u32::from_le_bytes(good[0..4].try_into().unwrap()) as usize;
        let second = 8 + first_len;

        // A flipped payload byte in the second record (records follow it).
        let mut bad = good.clone();
        bad[second + 9] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(
            assert_corruption_in(recover(dir.path()), &path),
            second as u64
        );
        // Nothing was truncated.
        assert_eq!(std::fs::read(&path).unwrap(), bad);

        // A flipped byte in the snapshot record.
        let mut bad = good.clone();
        bad[10] ^= 0x80;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(assert_corruption_in(recover(dir.path()), &path), 0);

        // A zero length in the middle.
        let mut bad = good.clone();
        bad[second..second + 4].copy_from_slice(&[0; 4]);
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(
            assert_corruption_in(recover(dir.path()), &path),
            second as u64
        );

        // A record with a good checksum that does not decode.
        let mut bad = good[..second].to_vec();
        bad.extend_from_slice(&encode_record(&[0x63]).unwrap());
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(
            assert_corruption_in(recover(dir.path()), &path),
            second as u64
        );

        // A record with a good checksum that decodes but does not apply.
        let mut bad = good[..second].to_vec();
        let e = VersionEdit {
            removed: vec![(5, 999_999)],
            ..Default::default()
        };
        bad.extend_from_slice(&encode_record(&e.encode()).unwrap());
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(
            assert_corruption_in(recover(dir.path()), &path),
            second as u64
        );

        // An empty manifest, and one whose only record is torn.
        std::fs::write(&path, b"").unwrap();
        assert_corruption_in(recover(dir.path()), &path);
        std::fs::write(&path, &good[..first_len]).unwrap();
        assert_corruption_in(recover(dir.path()), &path);
        assert_eq!(std::fs::read(&path).unwrap(), &good[..first_len]);
    }

    #[test]
    fn bad_current_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _) = build(dir.path(), 2, 4, 2);
        drop(m);
        let current = dir.path().join(CURRENT_FILE);
        let long = "MANIFEST-000004\n".repeat(100);
        let bad: [&[u8]; 9] = [
            b"",
            b"\n",
            b"garbage",
            b"MANIFEST-000004",
            b"MANIFEST-4\n",
            b"MANIFEST-000004\n\n",
            b"MANIFEST-00000\xff\n",
            b"\x00\x01\x02\x03",
            long.as_bytes(),
        ];
        for contents in bad {
            std::fs::write(&current, contents).unwrap();
            assert_corruption_in(recover(dir.path()), &current);
        }
        std::fs::write(&current, b"MANIFEST-000005\n").unwrap();
        assert_corruption_in(recover(dir.path()), &current);
        std::fs::write(&current, b"MANIFEST-000004\n").unwrap();
        assert!(recover(dir.path()).unwrap().is_some());

        // A garbled CURRENT does not stop a rewrite, which then repairs it.
        std::fs::write(&current, b"junk").unwrap();
        let state = random_state(3, 5);
        drop(Manifest::create(fs(), dir.path(), 6, &state).unwrap());
        let (m, again) = recover(dir.path()).unwrap().unwrap();
        assert_eq!((m.number(), again), (6, state));
    }

    #[test]
    fn hostile_manifest_bytes_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (m, states) = build(dir.path(), 11, 1, 8);
        drop(m);
        let path = manifest_path(dir.path(), 1);
        let good = std::fs::read(&path).unwrap();
        let (mut ok, mut corrupt) = (0, 0);
        for seed in 0..400u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut bytes = good.clone();
            for _ in 0..rng.gen_range(1..4) {
                match rng.gen_range(0..4) {
                    0 => {
                        let i = rng.gen_range(0..bytes.len().max(1));
                        if let Some(b) = bytes.get_mut(i) {
                            *b ^= 1 << rng.gen_range(0..8);
                        }
                    }
                    1 => {
                        let n = rng.gen_range(0..=bytes.len());
                        bytes.truncate(n);
                    }
                    2 => {
                        let n = rng.gen_range(1..64);
                        bytes.extend((0..n).map(|_| rng.gen::<u8>()));
                    }
                    _ => {
                        // A plausible header with a hostile length.
                        let i = rng.gen_range(0..bytes.len().max(1));
                        let len: u32 = rng.gen();
                        if i + 4 <= bytes.len() {
                            bytes[i..i + 4].copy_from_slice(&len.to_le_bytes());
                        }
                    }
                }
            }
            std::fs::write(&path, &bytes).unwrap();
            match recover(dir.path()) {
                Ok(Some((_, state))) => {
                    assert!(
                        states.contains(&state),
                        "seed {seed}: state is not a prefix"
                    );
                    ok += 1;
                }
                Ok(None) => panic!("seed {seed}: CURRENT vanished"),
                Err(e) => {
                    assert!(e.is_corruption(), "seed {seed}: {e}");
                    corrupt += 1;
                }
            }
        }
        assert!(ok > 0 && corrupt > 0, "ok {ok}, corrupt {corrupt}");
    }

    #[test]
    fn failed_append_poisons_the_manifest() {
        // A handle that fails writes after being told to.
        #[derive(Debug)]
        struct Failing(Arc<dyn FileHandle>);
        impl FileHandle for Failing {
            fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
                self.0.read_at(buf, offset)
            }
            fn write_at(&self, _: &[u8], _: u64) -> std::io::Result<usize> {
                Err(std::io::Error::other("injected"))
            }
            fn sync_data(&self) -> std::io::Result<()> {
                self.0.sync_data()
            }
            fn sync_all(&self) -> std::io::Result<()> {
                self.0.sync_all()
            }
            fn len(&self) -> std::io::Result<u64> {
                self.0.len()
            }
            fn set_len(&self, len: u64) -> std::io::Result<()> {
                self.0.set_len(len)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (mut m, states) = build(dir.path(), 4, 2, 1);
        m.file = Arc::new(Failing(m.file.clone()));
        let e = VersionEdit {
            last_sequence: Some(1),
            ..Default::default()
        };
        assert!(matches!(m.append(&e), Err(Error::Io { .. })));
        assert!(matches!(m.append(&e), Err(Error::Poisoned(_))));
        drop(m);
        let (_, state) = recover(dir.path()).unwrap().unwrap();
        assert_eq!(&state, states.last().unwrap());
    }
}
