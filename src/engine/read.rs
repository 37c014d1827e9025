//! The read path: the index first, then at most one vLog read per value.
//!
//! ```text
//! Engine::get / multi_get
//!   unordered table: Keydirs::lookup (the keydir, then the vLog)
//!   ordered table:   Engine::lookup → newest_entry: memtable, frozen
//!                    memtables newest first, Version::get (level 0
//!                    newest first, one table per deeper level, bloom
//!                    filters first; each table's index is in memory, its
//!                    data block comes from the block cache or, on a
//!                    miss, one read of the file)
//!                    Engine::resolve / read_values: a tombstone is
//!                    absent, an inline value is returned, a pointer is
//!                    read from the vLog (checksum and key checked)
//! ```
//!
//! `newest_entry` is the one index lookup: point reads, `multi_get` and
//! GC's liveness check all use it; the iterators (scan.rs) resolve their
//! entries through `resolve` and `read_values`.
//!
//! What point reads cost the files is counted apart (`get_block_reads`,
//! `get_vlog_reads`), so that `Stats::device_reads_per_get` is theirs
//! alone, not the iterators' or GC's.

use super::counters;
use super::versions::SuperVersion;
use super::Engine;
use crate::error::{Error, Result};
use crate::keydir::{KeyEntry, Keydir};
use crate::lsm::ikey::{self, Kind};
use crate::lsm::sstable::CacheUse;
use crate::lsm::version::Found;
use crate::value::Value;
use crate::vlog::{SegmentSet, ValuePointer};
use std::sync::Arc;

/// An index entry: internal key and value (inline bytes, an encoded
/// pointer, or nothing for a tombstone).
pub(super) type IndexEntry = (Vec<u8>, Vec<u8>);

/// How a user read goes about it (from `ReadOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadHow {
    /// Whether data blocks read from files go into the block cache.
    pub(crate) fill_cache: bool,
    /// Whether vLog records' checksums are checked.
    pub(crate) verify_checksums: bool,
}

impl ReadHow {
    /// What reads do unless told otherwise.
    pub(crate) const DEFAULT: ReadHow = ReadHow {
        fill_cache: true,
        verify_checksums: true,
    };

    pub(crate) fn cache_use(self) -> CacheUse {
        if self.fill_cache {
            CacheUse::Fill
        } else {
            CacheUse::NoFill
        }
    }
}

impl Engine {
    /// The value of `key` in `table` at sequence number `seq` (a
    /// snapshot's), or the newest when `None` (unordered tables have only
    /// their newest version).
    pub(crate) fn get(&self, table: u32, key: &[u8], seq: Option<u64>) -> Result<Option<Value>> {
        self.get_how(table, key, seq, ReadHow::DEFAULT)
    }

    /// [`Engine::get`], read as `how` says.
    pub(crate) fn get_how(
        &self,
        table: u32,
        key: &[u8],
        seq: Option<u64>,
        how: ReadHow,
    ) -> Result<Option<Value>> {
        self.check_table(table)?;
        counters::add(&self.counters.gets, 1);
        if let Some(kd) = self.keydirs.table(table) {
            let segs = || self.versions.current().segments.clone();
            let (e, segments) = match seq {
                None => self.keydirs.lookup(&kd, key, segs),
                Some(s) => self.keydirs.lookup_at(&kd, key, s, segs),
            };
            return self.read_keydir_entry(&segments, e, table, key, how.verify_checksums);
        }
        let (sv, seq) = self.view_at(seq);
        match self.lookup(&sv, table, key, seq, how)? {
            Some((k, v)) => {
                if ikey::kind_byte(&k) == Kind::Pointer as u8 {
                    counters::add(&self.counters.get_vlog_reads, 1);
                }
                self.resolve(&sv.segments, &k, v, how.verify_checksums)
            }
            None => Ok(None),
        }
    }

    /// The length of `key`'s value in `table` at `seq` (as [`Engine::get`]),
    /// from the index or keydir alone: no vLog read.
    pub(crate) fn value_len(
        &self,
        table: u32,
        key: &[u8],
        seq: Option<u64>,
    ) -> Result<Option<u32>> {
        if let Some(kd) = self.keydirs.table(table) {
            let (e, ()) = match seq {
                None => self.keydirs.lookup(&kd, key, || ()),
                Some(s) => self.keydirs.lookup_at(&kd, key, s, || ()),
            };
            return Ok(e.filter(|e| e.put).map(|e| e.ptr.value_len(key.len())));
        }
        let (sv, seq) = self.view_at(seq);
        let Some((k, v)) = self.lookup(&sv, table, key, seq, ReadHow::DEFAULT)? else {
            return Ok(None);
        };
        match Kind::from_u8(ikey::kind_byte(&k)) {
            Some(Kind::Delete) => Ok(None),
            Some(Kind::Inline) => Ok(Some(v.len() as u32)),
            Some(Kind::Pointer) => Ok(Some(self.decode_pointer(&v)?.value_len(key.len()))),
            None => Err(Error::corruption(
                &self.dir,
                0,
                format!("unknown entry kind {} in the index", ikey::kind_byte(&k)),
            )),
        }
    }

    /// Point reads of `keys` at one sequence number (as [`Engine::get`]):
    /// the index first for all of them, then the values in the vLog in one
    /// batched read.
    pub(crate) fn multi_get<K: AsRef<[u8]>>(
        &self,
        table: u32,
        keys: &[K],
        seq: Option<u64>,
    ) -> Result<Vec<Option<Value>>> {
        self.multi_get_how(table, keys, seq, ReadHow::DEFAULT)
    }

    /// [`Engine::multi_get`], read as `how` says.
    pub(crate) fn multi_get_how<K: AsRef<[u8]>>(
        &self,
        table: u32,
        keys: &[K],
        seq: Option<u64>,
        how: ReadHow,
    ) -> Result<Vec<Option<Value>>> {
        self.check_table(table)?;
        counters::add(&self.counters.gets, keys.len() as u64);
        if let Some(kd) = self.keydirs.table(table) {
            return self.keydir_multi_get(&kd, table, keys, seq, how.verify_checksums);
        }
        let (sv, seq) = self.view_at(seq);
        let mut out: Vec<Option<Value>> = Vec::with_capacity(keys.len());
        let mut wanted: Vec<(usize, ValuePointer, Vec<u8>)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            out.push(None);
            let Some((ik, v)) = self.lookup(&sv, table, k.as_ref(), seq, how)? else {
                continue;
            };
            if ikey::kind_byte(&ik) == Kind::Pointer as u8 {
                wanted.push((i, self.decode_pointer(&v)?, ik));
            } else {
                out[i] = self.resolve(&sv.segments, &ik, v, how.verify_checksums)?;
            }
        }
        let reqs: Vec<(ValuePointer, u32, &[u8])> = wanted
            .iter()
            .map(|(_, p, ik)| (*p, ikey::table_id(ik), ikey::user_key(ik)))
            .collect();
        counters::add(&self.counters.get_vlog_reads, reqs.len() as u64);
        let values = self.read_values(&sv.segments, &reqs, how.verify_checksums);
        for ((i, _, _), r) in wanted.iter().zip(values) {
            out[*i] = Some(r?);
        }
        Ok(out)
    }

    /// The view a read takes and the sequence number it reads at: a
    /// snapshot's `seq`, or (for `None`) the newest, read after the view is
    /// taken. In that order every version the read may need is in the view:
    /// a flush drops only versions a newer one shadows at or below the
    /// visible sequence number, and a snapshot's versions are kept while it
    /// lives. (Read the other way round, a flush between the two steps
    /// could drop the version visible at the number read.)
    pub(super) fn view_at(&self, seq: Option<u64>) -> (Arc<SuperVersion>, u64) {
        let sv = self.versions.current();
        let seq = seq.unwrap_or_else(|| self.read_seq());
        (sv, seq)
    }

    /// The newest index entry of `(table, key)` visible at `seq`, for a user
    /// read: its cost goes to the read counters.
    fn lookup(
        &self,
        sv: &SuperVersion,
        table: u32,
        key: &[u8],
        seq: u64,
        how: ReadHow,
    ) -> Result<Option<IndexEntry>> {
        let found = self.newest_entry_how(sv, table, key, seq, how.cache_use())?;
        let c = &self.counters;
        counters::add(&c.tables_probed, u64::from(found.tables_probed));
        counters::add(&c.bloom_skips, u64::from(found.bloom_skips));
        counters::add(
            &c.bloom_false_positives,
            u64::from(found.bloom_false_positives),
        );
        counters::add(
            &c.table_reads,
            u64::from(found.tables_probed - found.bloom_skips),
        );
        counters::add(&c.get_block_reads, u64::from(found.block_reads));
        Ok(found
            .entry
            .filter(|(k, _)| sv.covering(table, key, ikey::seq(k), seq).is_none()))
    }

    /// The one index lookup: the newest entry of `(table, key)` visible at
    /// `seq` in `sv`, from the memtables or the tables, with what the
    /// tables cost.
    pub(super) fn newest_entry(
        &self,
        sv: &SuperVersion,
        table: u32,
        key: &[u8],
        seq: u64,
    ) -> Result<Found> {
        self.newest_entry_how(sv, table, key, seq, CacheUse::Fill)
    }

    /// [`Engine::newest_entry`] reading data blocks through the cache as
    /// `how` says.
    fn newest_entry_how(
        &self,
        sv: &SuperVersion,
        table: u32,
        key: &[u8],
        seq: u64,
        how: CacheUse,
    ) -> Result<Found> {
        let target = ikey::seek_key(&ikey::user_part_of(table, key), seq);
        if let Some(e) = sv.mem.table.get(&target) {
            return Ok(Found::in_memtable(e));
        }
        for m in &sv.imms {
            if let Some(e) = m.table.get(&target) {
                return Ok(Found::in_memtable(e));
            }
        }
        sv.version.get_with(&target, how)
    }

    /// Turns an index entry into the value it stands for (a vLog record's
    /// checksum checked when `verify`).
    pub(super) fn resolve(
        &self,
        segments: &SegmentSet,
        ikey_bytes: &[u8],
        v: Vec<u8>,
        verify: bool,
    ) -> Result<Option<Value>> {
        match Kind::from_u8(ikey::kind_byte(ikey_bytes)) {
            Some(Kind::Delete) => Ok(None),
            Some(Kind::Inline) => Ok(Some(Value::from(v))),
            Some(Kind::Pointer) => {
                let ptr = self.decode_pointer(&v)?;
                counters::add(&self.counters.vlog_reads, 1);
                counters::add(&self.counters.vlog_bytes_read, u64::from(ptr.len));
                self.vlog
                    .read_verified(
                        segments,
                        &ptr,
                        ikey::table_id(ikey_bytes),
                        ikey::user_key(ikey_bytes),
                        verify,
                    )
                    .map(Some)
            }
            None => Err(Error::corruption(
                &self.dir,
                0,
                format!(
                    "unknown entry kind {} in the index",
                    ikey::kind_byte(ikey_bytes)
                ),
            )),
        }
    }

    /// Reads the records `reqs` (`(pointer, table, key)`) in one batch,
    /// counted as vLog reads (their checksums checked when `verify`).
    pub(super) fn read_values(
        &self,
        segments: &SegmentSet,
        reqs: &[(ValuePointer, u32, &[u8])],
        verify: bool,
    ) -> Vec<Result<Value>> {
        counters::add(&self.counters.vlog_reads, reqs.len() as u64);
        let bytes: u64 = reqs.iter().map(|(p, _, _)| u64::from(p.len)).sum();
        counters::add(&self.counters.vlog_bytes_read, bytes);
        self.vlog.read_many_verified(segments, reqs, verify)
    }

    /// The value pointer an index entry holds.
    pub(super) fn decode_pointer(&self, v: &[u8]) -> Result<ValuePointer> {
        ValuePointer::decode(v).ok_or_else(|| {
            Error::corruption(&self.dir, 0, "undecodable value pointer in the index")
        })
    }

    fn read_keydir_entry(
        &self,
        segments: &SegmentSet,
        e: Option<KeyEntry>,
        table: u32,
        key: &[u8],
        verify: bool,
    ) -> Result<Option<Value>> {
        match e {
            Some(e) if e.put => {
                counters::add(&self.counters.vlog_reads, 1);
                counters::add(&self.counters.vlog_bytes_read, u64::from(e.ptr.len));
                counters::add(&self.counters.get_vlog_reads, 1);
                self.vlog
                    .read_verified(segments, &e.ptr, table, key, verify)
                    .map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `multi_get` on an unordered table: the keydir under one hold, then
    /// one batched vLog read.
    fn keydir_multi_get<K: AsRef<[u8]>>(
        &self,
        kd: &Keydir,
        table: u32,
        keys: &[K],
        seq: Option<u64>,
        verify: bool,
    ) -> Result<Vec<Option<Value>>> {
        let segs = || self.versions.current().segments.clone();
        let (found, segments) = match seq {
            None => self.keydirs.lookup_many(kd, keys, segs),
            Some(s) => self.keydirs.lookup_many_at(kd, keys, s, segs),
        };
        let mut out: Vec<Option<Value>> = (0..keys.len()).map(|_| None).collect();
        let wanted: Vec<(usize, ValuePointer)> = found
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.filter(|e| e.put).map(|e| (i, e.ptr)))
            .collect();
        let reqs: Vec<(ValuePointer, u32, &[u8])> = wanted
            .iter()
            .map(|&(i, p)| (p, table, keys[i].as_ref()))
            .collect();
        counters::add(&self.counters.get_vlog_reads, reqs.len() as u64);
        for ((i, _), r) in wanted
            .iter()
            .zip(self.read_values(&segments, &reqs, verify))
        {
            out[*i] = Some(r?);
        }
        Ok(out)
    }
}
