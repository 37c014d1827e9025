//! A version: the set of SSTables the index is made of at one moment. Readers
//! hold an `Arc<Version>`; a table file is deleted when the last version and
//! iterator naming it let go, and only after the manifest edit that dropped it
//! is durable (it is marked obsolete only then).

use super::ikey;
use super::iter::InternalIterator;
use super::sstable::{CacheUse, Sst, SstIter};
use crate::error::Result;
use crate::io::Fs;
use crate::lsm::range_del::RangeTombstone;
use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

/// An SSTable in the LSM-tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SstMeta {
    pub level: u32,
    pub number: u64,
    pub size: u64,
    pub entries: u64,
    /// The smallest internal key in the table.
    pub smallest: Vec<u8>,
    /// The largest internal key in the table.
    pub largest: Vec<u8>,
}

/// An open SSTable that belongs to the tree.
pub(crate) struct SstHandle {
    pub(crate) meta: SstMeta,
    pub(crate) sst: Arc<Sst>,
    obsolete: AtomicBool,
    fs: Arc<dyn Fs>,
    path: PathBuf,
}

impl std::fmt::Debug for SstHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstHandle")
            .field("number", &self.meta.number)
            .field("level", &self.meta.level)
            .finish()
    }
}

impl SstHandle {
    pub(crate) fn new(meta: SstMeta, sst: Arc<Sst>, fs: Arc<dyn Fs>, path: PathBuf) -> Self {
        SstHandle {
            meta,
            sst,
            obsolete: AtomicBool::new(false),
            fs,
            path,
        }
    }

    /// Marks the file for deletion once nothing uses it (and its blocks for
    /// removal from the block cache once the table is dropped). Call only
    /// after the manifest edit that removed it is durable.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, AtomicOrdering::Release);
        self.sst.forget_cached_blocks_on_drop();
    }
}

impl Drop for SstHandle {
    fn drop(&mut self) {
        if self.obsolete.load(AtomicOrdering::Acquire) {
            if let Err(e) = self.fs.remove(&self.path) {
                log::warn!("removing obsolete {}: {e}", self.path.display());
            }
        }
    }
}

/// The SSTables of the tree: level 0 newest first (files may overlap), deeper
/// levels sorted by key and disjoint.
#[derive(Debug, Default)]
pub(crate) struct Version {
    pub(crate) levels: Vec<Vec<Arc<SstHandle>>>,
    /// The range tombstones in the manifest (`lsm::range_del`), by sequence
    /// number; what the memtables hold is theirs.
    pub(crate) range_dels: Arc<Vec<RangeTombstone>>,
}

/// What a point lookup found in the tables, and what it cost.
#[derive(Default)]
pub(crate) struct Found {
    pub(crate) entry: Option<(Vec<u8>, Vec<u8>)>,
    /// Tables whose key range held the key (candidates).
    pub(crate) tables_probed: u32,
    /// Candidates the bloom filter ruled out without a read.
    pub(crate) bloom_skips: u32,
    /// Candidates the bloom filter let through that did not hold the key.
    pub(crate) bloom_false_positives: u32,
    /// Data blocks read from table files (block cache misses, or every
    /// block read while the cache is disabled).
    pub(crate) block_reads: u32,
}

impl Found {
    /// What a lookup found in a memtable (no table read).
    pub(crate) fn in_memtable(entry: (Vec<u8>, Vec<u8>)) -> Found {
        Found {
            entry: Some(entry),
            ..Found::default()
        }
    }
}

impl Version {
    /// Looks up the seek key `target` (user part + snapshot sequence number)
    /// level by level; the first table holding the user part has its newest
    /// visible version. Below level 0 at most one table per level is a
    /// candidate.
    pub(crate) fn get(&self, target: &[u8]) -> Result<Found> {
        self.get_with(target, CacheUse::Fill)
    }

    /// [`Version::get`] reading data blocks through the cache as `how` says.
    pub(crate) fn get_with(&self, target: &[u8], how: CacheUse) -> Result<Found> {
        let up = ikey::user_part(target);
        let mut f = Found::default();
        for (level, files) in self.levels.iter().enumerate() {
            if level == 0 {
                for t in files {
                    if up < ikey::user_part(&t.meta.smallest)
                        || up > ikey::user_part(&t.meta.largest)
                    {
                        continue;
                    }
                    if Self::probe(t, up, target, how, &mut f)? {
                        return Ok(f);
                    }
                }
            } else {
                let i = files.partition_point(|t| ikey::user_part(&t.meta.largest) < up);
                if let Some(t) = files.get(i) {
                    if ikey::user_part(&t.meta.smallest) <= up
                        && Self::probe(t, up, target, how, &mut f)?
                    {
                        return Ok(f);
                    }
                }
            }
        }
        Ok(f)
    }

    /// Probes one candidate table; true when it held the user part.
    fn probe(
        t: &SstHandle,
        up: &[u8],
        target: &[u8],
        how: CacheUse,
        f: &mut Found,
    ) -> Result<bool> {
        f.tables_probed += 1;
        if !t.sst.may_contain(up) {
            f.bloom_skips += 1;
            return Ok(false);
        }
        let (entry, block_reads) = t.sst.get_counted(target, how)?;
        f.block_reads += block_reads;
        match entry {
            Some(e) => {
                f.entry = Some(e);
                Ok(true)
            }
            None => {
                // Either an absent key the filter let through, or a key
                // whose versions are all newer than the snapshot.
                f.bloom_false_positives += 1;
                Ok(false)
            }
        }
    }

    /// Cursors over every table, newest source first: each level-0 file,
    /// then one concatenating cursor per deeper level, reading their blocks
    /// with `how`: a user's iterator fills the cache; the walks of the
    /// whole index (verify, salvage, segment usage) pass
    /// [`CacheUse::Bypass`].
    pub(crate) fn iters_with(&self, out: &mut Vec<Box<dyn InternalIterator>>, how: CacheUse) {
        for (level, files) in self.levels.iter().enumerate() {
            if files.is_empty() {
                continue;
            }
            if level == 0 {
                for t in files {
                    out.push(Box::new(t.sst.iter_with(how)));
                }
            } else {
                out.push(Box::new(LevelIter::new(files.clone(), how)));
            }
        }
    }

    pub(crate) fn all_tables(&self) -> impl Iterator<Item = &Arc<SstHandle>> {
        self.levels.iter().flatten()
    }
}

/// A cursor over a sorted, disjoint run of tables, opening one at a time.
pub(crate) struct LevelIter {
    files: Vec<Arc<SstHandle>>,
    how: CacheUse,
    idx: usize,
    cur: Option<SstIter>,
    err: Option<crate::Error>,
}

impl LevelIter {
    /// A cursor over `files` whose tables read their blocks with `how`.
    pub(crate) fn new(files: Vec<Arc<SstHandle>>, how: CacheUse) -> Self {
        LevelIter {
            files,
            how,
            idx: 0,
            cur: None,
            err: None,
        }
    }

    fn open(&mut self, idx: usize) -> bool {
        if idx >= self.files.len() {
            self.cur = None;
            return false;
        }
        self.idx = idx;
        self.cur = Some(self.files[idx].sst.iter_with(self.how));
        true
    }

    fn check(&mut self) {
        if let Some(c) = &self.cur {
            if !c.valid() {
                if let Err(e) = c.status() {
                    self.err = Some(e);
                    self.cur = None;
                }
            }
        }
    }

    /// Skips forward over exhausted tables.
    fn settle_forward(&mut self) {
        loop {
            self.check();
            match &self.cur {
                Some(c) if !c.valid() => {
                    if self.err.is_some() || !self.open(self.idx + 1) {
                        self.cur = None;
                        return;
                    }
                    if let Some(c) = self.cur.as_mut() {
                        c.seek_to_first();
                    }
                }
                _ => return,
            }
        }
    }

    /// Skips backward over exhausted tables.
    fn settle_backward(&mut self) {
        loop {
            self.check();
            match &self.cur {
                Some(c) if !c.valid() => {
                    if self.err.is_some() || self.idx == 0 || !self.open(self.idx - 1) {
                        self.cur = None;
                        return;
                    }
                    if let Some(c) = self.cur.as_mut() {
                        c.seek_to_last();
                    }
                }
                _ => return,
            }
        }
    }
}

impl InternalIterator for LevelIter {
    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.valid())
    }
    fn seek_to_first(&mut self) {
        if self.open(0) {
            if let Some(c) = self.cur.as_mut() {
                c.seek_to_first();
            }
        }
        self.settle_forward();
    }
    fn seek_to_last(&mut self) {
        if !self.files.is_empty() && self.open(self.files.len() - 1) {
            if let Some(c) = self.cur.as_mut() {
                c.seek_to_last();
            }
        }
        self.settle_backward();
    }
    fn seek(&mut self, target: &[u8]) {
        let i = self
            .files
            .partition_point(|t| ikey::compare(&t.meta.largest, target) == Ordering::Less);
        if self.open(i) {
            if let Some(c) = self.cur.as_mut() {
                c.seek(target);
            }
        }
        self.settle_forward();
    }
    fn seek_for_prev(&mut self, target: &[u8]) {
        // The last file whose smallest key is <= target.
        let i = self
            .files
            .partition_point(|t| ikey::compare(&t.meta.smallest, target) != Ordering::Greater);
        if i == 0 {
            self.cur = None;
            return;
        }
        if self.open(i - 1) {
            if let Some(c) = self.cur.as_mut() {
                c.seek_for_prev(target);
            }
        }
        self.settle_backward();
    }
    fn next(&mut self) {
        if let Some(c) = self.cur.as_mut() {
            c.next();
        }
        self.settle_forward();
    }
    fn prev(&mut self) {
        if let Some(c) = self.cur.as_mut() {
            c.prev();
        }
        self.settle_backward();
    }
    fn key(&self) -> &[u8] {
        self.cur.as_ref().map(|c| c.key()).unwrap_or(&[])
    }
    fn value(&self) -> &[u8] {
        self.cur.as_ref().map(|c| c.value()).unwrap_or(&[])
    }
    fn status(&self) -> Result<()> {
        if let Some(e) = &self.err {
            return Err(e.duplicate());
        }
        self.cur.as_ref().map(|c| c.status()).unwrap_or(Ok(()))
    }
}
