//! Reading every byte the database owns, for `Db::verify`: every record of
//! every live vLog segment (live or garbage), every block of every SSTable
//! (data, index, filter, properties, footer), every hint file, the manifest
//! and `CURRENT`. Damage is collected, all of it, not returned as the first
//! error; only I/O errors stop the check.

use super::versions::SuperVersion;
use super::Engine;
use crate::error::{Error, Result};
use crate::files;
use crate::lsm::ikey::{self, Kind};
use crate::lsm::iter::InternalIterator;
use crate::lsm::merge::{Direction, MergeCursor};
use crate::lsm::sstable::CacheUse;
use crate::manifest::Manifest;
use crate::value::Value;
use crate::vlog::{check_segment, hint, SegmentKind, ValuePointer};
use std::path::PathBuf;
use std::sync::Arc;

/// A consistent view of the index and the vLog segments its pointers
/// resolve through (see [`Engine::index_view`]).
pub(crate) struct IndexView {
    sv: Arc<SuperVersion>,
}

/// One damaged place: the file, the offset in it, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileDamage {
    pub(crate) file: PathBuf,
    pub(crate) offset: u64,
    pub(crate) what: String,
}

impl FileDamage {
    /// The damage a corruption error describes; `None` for other errors.
    pub(crate) fn from_error(e: &Error) -> Option<FileDamage> {
        match e {
            Error::Corruption {
                file,
                offset,
                reason,
            } => Some(FileDamage {
                file: file.clone(),
                offset: *offset,
                what: reason.clone(),
            }),
            _ => None,
        }
    }
}

/// What [`Engine::check_files`] read and found.
#[derive(Debug, Default)]
pub(crate) struct FileCheck {
    pub(crate) segments: u64,
    pub(crate) records: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) ssts: u64,
    pub(crate) blocks: u64,
    pub(crate) hints: u64,
    pub(crate) manifest_records: u64,
    pub(crate) damage: Vec<FileDamage>,
}

/// One live entry of an ordered table, from the index.
pub(crate) enum IndexValue {
    Inline(Vec<u8>),
    Pointer(ValuePointer),
}

impl Engine {
    /// Reads every file of the database and checks every byte.
    pub(crate) fn check_files(&self) -> Result<FileCheck> {
        let mut out = FileCheck::default();
        self.check_segments(&mut out)?;
        let sv = self.versions.current();
        for t in sv.version.all_tables() {
            let (blocks, damage) = t.sst.check_every_block();
            out.ssts += 1;
            out.blocks += blocks;
            let path = self.dir.join(files::sst(t.meta.number));
            out.damage
                .extend(damage.into_iter().map(|(offset, what)| FileDamage {
                    file: path.clone(),
                    offset,
                    what,
                }));
        }
        match Manifest::recover(self.fs.clone(), &self.dir, false) {
            Ok(Some((m, _))) => out.manifest_records = m.records(),
            Ok(None) => out.damage.push(FileDamage {
                file: self.dir.join(files::CURRENT),
                offset: 0,
                what: "CURRENT is missing".into(),
            }),
            Err(e) => match FileDamage::from_error(&e) {
                Some(d) => out.damage.push(d),
                None => return Err(e),
            },
        }
        Ok(out)
    }

    /// Every live segment, each to where appends go on for a head, and
    /// their hint files.
    fn check_segments(&self, out: &mut FileCheck) -> Result<()> {
        let head = self.vlog.head_position();
        let gc_head = self.vlog.gc_head_position();
        for seg in self.vlog.live_set().values() {
            let end = if seg.number == head.segment {
                Some(head.offset)
            } else if gc_head.is_some_and(|g| g.segment == seg.number) {
                gc_head.map(|g| g.offset)
            } else {
                None
            };
            let c = check_segment(seg, end, end.is_none())?;
            out.segments += 1;
            out.records += c.records;
            out.segment_bytes += c.bytes;
            out.damage
                .extend(c.damage.into_iter().map(|(offset, what)| FileDamage {
                    file: seg.path.clone(),
                    offset,
                    what,
                }));
            if end.is_some() {
                continue;
            }
            match hint::read(&self.fs, &self.dir, seg.number) {
                Ok(Some(h)) => {
                    out.hints += 1;
                    let len = seg.file.len().unwrap_or(0);
                    if h.segment_len != len && seg.kind == SegmentKind::User {
                        out.damage.push(FileDamage {
                            file: self.dir.join(files::hint(seg.number)),
                            offset: 16,
                            what: format!(
                                "the hint describes {} bytes of a {len}-byte segment",
                                h.segment_len
                            ),
                        });
                    }
                }
                Ok(None) => {}
                Err(e) => match FileDamage::from_error(&e) {
                    Some(d) => {
                        out.hints += 1;
                        out.damage.push(d);
                    }
                    None => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// The index and the vLog segments as they are now, for
    /// [`Engine::index_entries`] and [`Engine::read_records`]: held, the
    /// view keeps every segment its pointers name readable, also when a GC
    /// pass moves the records and retires the segment meanwhile.
    pub(crate) fn index_view(&self) -> IndexView {
        IndexView {
            sv: self.versions.current(),
        }
    }

    /// The live entries of ordered table `table` visible at `seq` in
    /// `view`, in key order, from the index alone (no value read): `f` gets
    /// each key and what the index holds for it.
    pub(crate) fn index_entries(
        &self,
        view: &IndexView,
        table: u32,
        seq: u64,
        mut f: impl FnMut(&[u8], IndexValue) -> Result<()>,
    ) -> Result<()> {
        self.newest_versions(&view.sv, seq, Some(table), |k, value| {
            let v = match Kind::from_u8(ikey::kind_byte(k)) {
                Some(Kind::Delete) => return Ok(()),
                Some(Kind::Inline) => IndexValue::Inline(value.to_vec()),
                Some(Kind::Pointer) => IndexValue::Pointer(self.decode_pointer(value)?),
                None => {
                    return Err(Error::corruption(
                        &self.dir,
                        0,
                        format!("unknown entry kind {} in the index", ikey::kind_byte(k)),
                    ))
                }
            };
            f(ikey::user_key(k), v)
        })
    }

    /// Calls `f` with the internal key and the value of the newest version
    /// visible at `seq` of every key in `sv`'s index (of `table` only, when
    /// given), in key order: the walk of the whole index that verify,
    /// salvage and the exact segment usage share.
    fn newest_versions(
        &self,
        sv: &SuperVersion,
        seq: u64,
        table: Option<u32>,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut children: Vec<Box<dyn InternalIterator>> = vec![Box::new(sv.mem.table.iter())];
        for m in &sv.imms {
            children.push(Box::new(m.table.iter()));
        }
        // One pass over the whole index: around the block cache, which
        // keeps what readers come back to.
        sv.version.iters_with(&mut children, CacheUse::Bypass);
        let mut c = MergeCursor::new(children, Direction::Forward);
        match table {
            Some(t) => c.seek(&ikey::seek_key(&ikey::table_prefix(t), ikey::MAX_SEQ)),
            None => c.seek_to_end(),
        }
        let mut last: Option<Vec<u8>> = None;
        while c.valid() && table.is_none_or(|t| ikey::in_table(c.key(), t)) {
            let k = c.key();
            let up = ikey::user_part(k);
            let dead = self.tables.is_dropped(ikey::table_id(k));
            if !dead && last.as_deref() != Some(up) && ikey::seq(k) <= seq {
                last = Some(up.to_vec());
                // A version a range tombstone deletes is no live entry (GC
                // may already have taken its record).
                let deleted = sv
                    .covering(ikey::table_id(k), ikey::user_key(k), ikey::seq(k), seq)
                    .is_some();
                if !deleted {
                    f(k, c.value())?;
                }
            }
            c.advance();
        }
        c.status()
    }

    /// Calls `f` with the table, key, sequence number and pointer of every
    /// key of every ordered table whose newest version visible now is a
    /// value pointer: the live records of the sorted index in the vLog,
    /// from the index alone (keys and pointers, no value read).
    pub(crate) fn for_each_live_pointer(
        &self,
        mut f: impl FnMut(u32, &[u8], u64, ValuePointer),
    ) -> Result<()> {
        let (sv, seq) = self.view_at(None);
        self.newest_versions(&sv, seq, None, |k, value| {
            if ikey::kind_byte(k) == Kind::Pointer as u8 {
                let ptr = self.decode_pointer(value)?;
                f(ikey::table_id(k), ikey::user_key(k), ikey::seq(k), ptr);
            }
            Ok(())
        })
    }

    /// The exact live bytes and records of every live segment, from the
    /// index (ordered tables: [`Engine::for_each_live_pointer`]) and the
    /// keydirs (unordered tables, their tombstones included), with what the
    /// discard statistics say; oldest first.
    pub(crate) fn segment_usage(&self) -> Result<Vec<crate::stats::SegmentUsage>> {
        let mut live: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
        self.for_each_live_pointer(|_, _, _, ptr| {
            let e = live.entry(ptr.segment).or_default();
            e.0 += u64::from(ptr.len);
            e.1 += 1;
        })?;
        let segments = self.segment_stats();
        let numbers: Vec<u64> = segments.iter().map(|s| s.number).collect();
        for (_, _, e) in self.keydirs.entries_in(&numbers) {
            let l = live.entry(e.ptr.segment).or_default();
            l.0 += u64::from(e.ptr.len);
            l.1 += 1;
        }
        Ok(segments
            .into_iter()
            .map(|s| {
                let (live_bytes, live_records) = live.get(&s.number).copied().unwrap_or_default();
                crate::stats::SegmentUsage {
                    number: s.number,
                    gc: s.gc,
                    bytes: s.bytes,
                    live_bytes,
                    live_records,
                    garbage_bytes_by_stats: s.garbage_bytes,
                }
            })
            .collect())
    }

    /// Reads the records `ptrs` of `table` (whose keys are `keys`, found
    /// by [`Engine::index_entries`] in `view`) in one batch, each checked,
    /// through the segments of `view`.
    pub(crate) fn read_records(
        &self,
        view: &IndexView,
        table: u32,
        keys: &[Vec<u8>],
        ptrs: &[ValuePointer],
    ) -> Vec<Result<Value>> {
        let segments = &view.sv.segments;
        let reqs: Vec<(ValuePointer, u32, &[u8])> = ptrs
            .iter()
            .zip(keys)
            .map(|(p, k)| (*p, table, k.as_slice()))
            .collect();
        self.read_values(segments, &reqs, true)
    }
}
