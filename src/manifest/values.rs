//! The manifest's record of how values are stored: the database format
//! version, each table's value compression, the value dictionaries and the
//! segments that use each. Their fields of a version edit ([`ValuesEdit`])
//! and what applying them gives ([`ValuesState`]).
//!
//! | tag | field | payload | repeats |
//! | --- | --- | --- | --- |
//! | 20 | format version | varint | at most once (written first) |
//! | 21 | table value compression | table id varint, kind u8 (0 none, 1 zstd), level zigzag varint | once per table |
//! | 22 | dictionary added | dictionary id varint, table id varint | once per dictionary |
//! | 23 | dictionary removed | dictionary id varint | once per dictionary |
//! | 24 | segment uses dictionary | segment varint, dictionary id varint | once per pair |

use super::edit::TableDef;
use super::edit::DEFAULT_TABLE;
use crate::coding::{put_varint, Reader};
use crate::error::Error;
use crate::options::ValueCompression;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The database format this build writes and the newest it reads.
///
/// - 1: every database before the version was recorded (no tag 20).
/// - 2: adds compressed values (vLog record flag bit 1, the value pointer's
///   fourth varint, hint entry flag bit 1), dictionary files and tags 20–24.
pub(crate) const FORMAT_VERSION: u64 = 2;

pub(super) const TAG_FORMAT_VERSION: u64 = 20;
pub(super) const TAG_VALUE_COMPRESSION: u64 = 21;
pub(super) const TAG_DICT_ADDED: u64 = 22;
pub(super) const TAG_DICT_REMOVED: u64 = 23;
pub(super) const TAG_SEGMENT_DICT: u64 = 24;

/// The value fields of one version edit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ValuesEdit {
    /// The format the database is in from this edit on.
    pub format_version: Option<u64>,
    /// Tables whose value compression is set: `(table id, compression)`.
    pub compression: Vec<(u32, ValueCompression)>,
    /// Dictionaries made: `(id, table id)`. The file exists before the edit.
    pub dicts_added: Vec<(u64, u32)>,
    /// Dictionaries no live segment uses any more (their files go after).
    pub dicts_removed: Vec<u64>,
    /// `(segment, dictionary)`: the segment holds (or may hold) values
    /// compressed with the dictionary. Recorded before the first such value
    /// is appended to a user segment, in the pass's edit for a GC segment.
    pub segment_dicts: Vec<(u64, u64)>,
}

/// What the value fields of every edit give.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ValuesState {
    /// 0 when no edit recorded one: format 1.
    pub format_version: u64,
    pub compression: BTreeMap<u32, ValueCompression>,
    /// Live dictionaries: id to table id.
    pub dicts: BTreeMap<u64, u32>,
    /// Per live segment, the dictionaries it uses.
    pub segment_dicts: BTreeMap<u64, BTreeSet<u64>>,
}

impl ValuesState {
    /// Whether a live segment uses dictionary `id`.
    pub(crate) fn dict_in_use(&self, id: u64) -> bool {
        self.segment_dicts.values().any(|s| s.contains(&id))
    }

    /// The newest live dictionary of `table`: the one new values use.
    pub(crate) fn current_dict(&self, table: u32) -> Option<u64> {
        self.dicts
            .iter()
            .rev()
            .find(|(_, &t)| t == table)
            .map(|(&id, _)| id)
    }

    /// Why `edit` does not apply, if it does not (checked before anything
    /// changes): compression of a table that does not exist, a dictionary
    /// added twice, removed while absent or still used, or named by a
    /// segment while not live.
    pub(super) fn check(
        &self,
        e: &ValuesEdit,
        tables: &[TableDef],
        created: &[TableDef],
    ) -> Result<(), String> {
        if let Some(v) = e.format_version {
            if v == 0 || v > FORMAT_VERSION {
                return Err(format!(
                    "database format version {v} is not one this build knows"
                ));
            }
        }
        for (t, _) in &e.compression {
            let exists = *t == DEFAULT_TABLE || tables.iter().chain(created).any(|d| d.id == *t);
            if !exists {
                return Err(format!(
                    "sets the value compression of table {t}, which does not exist"
                ));
            }
        }
        let mut live: BTreeSet<u64> = self.dicts.keys().copied().collect();
        for (id, _) in &e.dicts_added {
            if *id == 0 || !live.insert(*id) {
                return Err(format!(
                    "adds dictionary {id}, which exists or is not an id"
                ));
            }
        }
        for (_, id) in &e.segment_dicts {
            if !live.contains(id) {
                return Err(format!("a segment uses dictionary {id}, which is not live"));
            }
        }
        for id in &e.dicts_removed {
            if !live.remove(id) {
                return Err(format!("removes dictionary {id}, which is not live"));
            }
            if self.dict_in_use(*id) || e.segment_dicts.iter().any(|(_, d)| d == id) {
                return Err(format!(
                    "removes dictionary {id}, which a live segment uses"
                ));
            }
        }
        Ok(())
    }

    /// Applies `e` (checked by [`ValuesState::check`]), after the edit's
    /// segment removals; `gone` says whether a segment is no longer live.
    pub(super) fn apply(&mut self, e: &ValuesEdit, gone: impl Fn(u64) -> bool) {
        if let Some(v) = e.format_version {
            self.format_version = v;
        }
        for &(t, c) in &e.compression {
            self.compression.insert(t, c);
        }
        for &(id, t) in &e.dicts_added {
            self.dicts.insert(id, t);
        }
        for &(seg, id) in &e.segment_dicts {
            if !gone(seg) {
                self.segment_dicts.entry(seg).or_default().insert(id);
            }
        }
        for id in &e.dicts_removed {
            self.dicts.remove(id);
        }
        self.segment_dicts.retain(|&s, _| !gone(s));
    }

    /// The fields that recreate this state.
    pub(super) fn snapshot(&self) -> ValuesEdit {
        ValuesEdit {
            format_version: (self.format_version != 0).then_some(self.format_version),
            compression: self.compression.iter().map(|(&t, &c)| (t, c)).collect(),
            dicts_added: self.dicts.iter().map(|(&id, &t)| (id, t)).collect(),
            dicts_removed: Vec::new(),
            segment_dicts: self
                .segment_dicts
                .iter()
                .flat_map(|(&s, ids)| ids.iter().map(move |&id| (s, id)))
                .collect(),
        }
    }

    /// Tables dropped from the state: their compression setting goes too.
    #[allow(dead_code)]
    pub(super) fn forget_table(&mut self, table: u32) {
        self.compression.remove(&table);
    }
}

fn zigzag(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn unzigzag(v: u64) -> Option<i32> {
    let v = u32::try_from(v).ok()?;
    Some(((v >> 1) as i32) ^ -((v & 1) as i32))
}

impl ValuesEdit {
    /// Appends the format version field (written before every other field,
    /// so that an older build meets it first).
    pub(super) fn encode_version(&self, b: &mut Vec<u8>) {
        if let Some(v) = self.format_version {
            put_varint(b, TAG_FORMAT_VERSION);
            put_varint(b, v);
        }
    }

    /// Appends the other fields, in tag order.
    pub(super) fn encode_rest(&self, b: &mut Vec<u8>) {
        for &(t, c) in &self.compression {
            put_varint(b, TAG_VALUE_COMPRESSION);
            put_varint(b, u64::from(t));
            match c {
                ValueCompression::None => {
                    b.push(0);
                    put_varint(b, 0);
                }
                ValueCompression::Zstd { level } => {
                    b.push(1);
                    put_varint(b, zigzag(level));
                }
            }
        }
        for &(id, t) in &self.dicts_added {
            put_varint(b, TAG_DICT_ADDED);
            put_varint(b, id);
            put_varint(b, u64::from(t));
        }
        for &id in &self.dicts_removed {
            put_varint(b, TAG_DICT_REMOVED);
            put_varint(b, id);
        }
        for &(s, id) in &self.segment_dicts {
            put_varint(b, TAG_SEGMENT_DICT);
            put_varint(b, s);
            put_varint(b, id);
        }
    }

    /// Decodes the field with `tag` (at byte `at`) if it is one of these;
    /// `Ok(false)` when the tag is not.
    pub(super) fn decode_field(
        &mut self,
        tag: u64,
        r: &mut Reader<'_>,
        at: usize,
    ) -> Result<bool, String> {
        let truncated = || format!("field with tag {tag} at byte {at} is truncated or malformed");
        match tag {
            TAG_FORMAT_VERSION => {
                let v = r.varint().ok_or_else(truncated)?;
                if self.format_version.replace(v).is_some() {
                    return Err(format!("format version repeated at byte {at}"));
                }
            }
            TAG_VALUE_COMPRESSION => {
                let t = r
                    .varint()
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(truncated)?;
                let kind = r.u8().ok_or_else(truncated)?;
                let level = r.varint().and_then(unzigzag).ok_or_else(truncated)?;
                let c = match kind {
                    0 => ValueCompression::None,
                    1 => ValueCompression::Zstd { level },
                    k => return Err(format!("unknown value compression {k} at byte {at}")),
                };
                self.compression.push((t, c));
            }
            TAG_DICT_ADDED => {
                let id = r.varint().ok_or_else(truncated)?;
                let t = r
                    .varint()
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(truncated)?;
                self.dicts_added.push((id, t));
            }
            TAG_DICT_REMOVED => self.dicts_removed.push(r.varint().ok_or_else(truncated)?),
            TAG_SEGMENT_DICT => {
                let s = r.varint().ok_or_else(truncated)?;
                let id = r.varint().ok_or_else(truncated)?;
                self.segment_dicts.push((s, id));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The format version an encoded edit states in its first field, if it
/// starts with one.
pub(super) fn stated_version(payload: &[u8]) -> Option<u64> {
    let mut r = Reader::new(payload);
    (r.varint()? == TAG_FORMAT_VERSION)
        .then(|| r.varint())
        .flatten()
}

/// `Error::Unsupported` for a database in a format newer than this build
/// reads, naming the manifest (`path`).
pub(crate) fn too_new(path: &Path, version: u64) -> Error {
    Error::Unsupported(format!(
        "{}: the database is in format version {version}, newer than this build of wisckey reads (up to {FORMAT_VERSION}); open it with the newer version that wrote it",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let e = ValuesEdit {
            format_version: Some(2),
            compression: vec![
                (0, ValueCompression::Zstd { level: -5 }),
                (3, ValueCompression::None),
            ],
            dicts_added: vec![(17, 3)],
            dicts_removed: vec![9],
            segment_dicts: vec![(12, 17), (13, 17)],
        };
        let mut b = Vec::new();
        e.encode_version(&mut b);
        e.encode_rest(&mut b);
        assert_eq!(stated_version(&b), Some(2));
        let mut r = Reader::new(&b);
        let mut back = ValuesEdit::default();
        while !r.is_empty() {
            let at = r.pos();
            let tag = r.varint().unwrap();
            assert!(back.decode_field(tag, &mut r, at).unwrap());
        }
        assert_eq!(back, e);
        for l in [i32::MIN, -1, 0, 1, 22, i32::MAX] {
            assert_eq!(unzigzag(zigzag(l)), Some(l));
        }
    }

    #[test]
    fn dictionaries_are_kept_while_a_segment_uses_them() {
        let mut s = ValuesState::default();
        let add = ValuesEdit {
            dicts_added: vec![(5, 0)],
            segment_dicts: vec![(7, 5)],
            ..Default::default()
        };
        s.check(&add, &[], &[]).unwrap();
        s.apply(&add, |_| false);
        assert_eq!(s.current_dict(0), Some(5));
        let rm = ValuesEdit {
            dicts_removed: vec![5],
            ..Default::default()
        };
        assert!(s.check(&rm, &[], &[]).unwrap_err().contains("uses"));
        // Segment 7 goes: then the dictionary may.
        s.apply(&ValuesEdit::default(), |seg| seg == 7);
        s.check(&rm, &[], &[]).unwrap();
        s.apply(&rm, |_| false);
        assert!(s.dicts.is_empty() && s.current_dict(0).is_none());
        let unknown = ValuesEdit {
            segment_dicts: vec![(8, 5)],
            ..Default::default()
        };
        assert!(s.check(&unknown, &[], &[]).is_err());
        let newer = ValuesEdit {
            format_version: Some(FORMAT_VERSION + 1),
            ..Default::default()
        };
        assert!(s.check(&newer, &[], &[]).is_err());
    }
}
