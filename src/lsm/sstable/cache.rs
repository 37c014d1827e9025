//! The block cache: decoded SSTable data blocks shared by every table of one
//! open database, keyed by (file number, block offset) and weighed by their
//! bytes.
//!
//! What goes through it, and what does not:
//!
//! * Point reads and iterators look a data block up here first and fill the
//!   cache on a miss ([`CacheUse::Fill`]). The block a miss reads is
//!   checksummed and its restart array checked before it is inserted, so a
//!   hit serves only bytes that passed the same checks as a read.
//! * Compaction inputs, the walks of the whole index (verify, salvage,
//!   segment usage) and the check of every block read the file directly
//!   ([`CacheUse::Bypass`]): they neither look up nor fill. They read each
//!   block once, and their blocks would push out the ones readers come back
//!   to; a check must see the bytes on disk.
//! * Index and filter blocks are not cached here: each open table keeps them
//!   in memory for its whole life (pinned), so a point read costs at most
//!   one data-block read per table it reads.
//!
//! File numbers are never reused within an open (the manifest's next file
//! number only grows, and the cache lives as long as the open), so a key of
//! a deleted table can never name another table's block. The blocks of a
//! deleted table are removed when the table is dropped
//! ([`BlockCache::forget_table`]) rather than left to age out.
//!
//! The cache is [`quick_cache`]'s sharded concurrent cache: weight-based,
//! and its eviction (CLOCK-Pro) admits a block into a probation queue
//! first, so that one long scan does not flush the blocks point reads keep
//! hitting. Concurrent misses on one block wait for the first reader
//! instead of each reading it.

use super::block::Block;
use crate::error::Result;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Whether a read of a data block goes through the block cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheUse {
    /// Look the block up; on a miss read it and insert it (point reads and
    /// iterators).
    Fill,
    /// Look the block up; on a miss read it but do not insert it (a user's
    /// read with `ReadOptions::fill_cache(false)`: a one-off scan that
    /// should not push out the blocks other reads use).
    NoFill,
    /// Read the file, leave the cache alone (compaction inputs).
    Bypass,
}

/// Where a block lives: its table's file number and the offset of the
/// stored block in that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BlockKey {
    file: u64,
    offset: u64,
}

/// Bytes a cached block is charged beyond its decompressed contents: the
/// `Block` itself, its `Arc`s and the cache's entry.
const ENTRY_OVERHEAD: u64 = 128;

#[derive(Debug, Clone, Copy, Default)]
struct BlockWeighter;

impl Weighter<BlockKey, Arc<Block>> for BlockWeighter {
    fn weight(&self, _key: &BlockKey, block: &Arc<Block>) -> u64 {
        block.len() as u64 + ENTRY_OVERHEAD
    }
}

/// The counters and sizes of a [`BlockCache`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BlockCacheStats {
    /// The most bytes the cache holds (0: disabled).
    pub capacity: u64,
    /// Bytes it holds now.
    pub bytes: u64,
    /// Blocks it holds now.
    pub blocks: u64,
    /// Lookups the cache answered.
    pub hits: u64,
    /// Lookups it did not (each one read the file).
    pub misses: u64,
    /// Data blocks read from table files for point reads and iterators
    /// (misses, and every such read while the cache is disabled).
    pub file_reads: u64,
}

/// The block cache of one open database. `Send + Sync`; shared through
/// `Arc` by every table the database opens.
pub(crate) struct BlockCache {
    /// `None` when the capacity is 0: every read goes to the file.
    cache: Option<Cache<BlockKey, Arc<Block>, BlockWeighter>>,
    hits: AtomicU64,
    misses: AtomicU64,
    file_reads: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl BlockCache {
    /// A cache of at most `capacity` bytes (0 disables it) for blocks of
    /// about `block_size` bytes (which only sizes its hash tables).
    pub(crate) fn new(capacity: u64, block_size: usize) -> BlockCache {
        let cache = (capacity > 0).then(|| {
            let per_block = block_size as u64 + ENTRY_OVERHEAD;
            let items = usize::try_from((capacity / per_block).max(1)).unwrap_or(usize::MAX);
            Cache::with_weighter(items, capacity, BlockWeighter)
        });
        BlockCache {
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            file_reads: AtomicU64::new(0),
        }
    }

    /// Block `offset` of table `file`: from the cache, or from `read` (which
    /// reads and checks it) and then inserted. Also returns whether `read`
    /// ran, i.e. whether this call read the file. A reader that waited for
    /// another's read of the same block counts as a hit.
    pub(crate) fn get_or_read(
        &self,
        file: u64,
        offset: u64,
        read: impl FnOnce() -> Result<Block>,
    ) -> Result<(Arc<Block>, bool)> {
        let Some(cache) = &self.cache else {
            self.file_reads.fetch_add(1, Ordering::Relaxed);
            return Ok((Arc::new(read()?), true));
        };
        let mut from_file = false;
        let block = cache.get_or_insert_with(&BlockKey { file, offset }, || {
            from_file = true;
            self.file_reads.fetch_add(1, Ordering::Relaxed);
            read().map(Arc::new)
        })?;
        let counter = if from_file { &self.misses } else { &self.hits };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok((block, from_file))
    }

    /// Block `offset` of table `file` from the cache if it is there, else
    /// from `read`, without inserting it; and whether `read` ran.
    pub(crate) fn get_or_read_no_fill(
        &self,
        file: u64,
        offset: u64,
        read: impl FnOnce() -> Result<Block>,
    ) -> Result<(Arc<Block>, bool)> {
        if let Some(b) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&BlockKey { file, offset }))
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((b, false));
        }
        self.file_reads.fetch_add(1, Ordering::Relaxed);
        if self.cache.is_some() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        Ok((Arc::new(read()?), true))
    }

    /// Removes the blocks at `offsets` of table `file` (a table being
    /// deleted: nothing can ask for them again).
    pub(crate) fn forget_table(&self, file: u64, offsets: impl Iterator<Item = u64>) {
        if let Some(cache) = &self.cache {
            for offset in offsets {
                cache.remove(&BlockKey { file, offset });
            }
        }
    }

    /// Counters and sizes now.
    pub(crate) fn stats(&self) -> BlockCacheStats {
        let (capacity, bytes, blocks) = match &self.cache {
            Some(c) => (c.capacity(), c.weight(), c.len() as u64),
            None => (0, 0, 0),
        };
        BlockCacheStats {
            capacity,
            bytes,
            blocks,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            file_reads: self.file_reads.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn block(n: usize) -> Block {
        // A valid block: one entry with an n-byte value.
        let mut b = super::super::block::BlockBuilder::new(1);
        b.add(&[0u8; 9], &vec![7u8; n]);
        Block::new(b.finish(), Arc::from(Path::new("t.sst")), 0).unwrap()
    }

    #[test]
    fn hits_after_a_miss_and_counts_file_reads() {
        let c = BlockCache::new(1 << 20, 4096);
        let (_, read) = c.get_or_read(1, 0, || Ok(block(100))).unwrap();
        assert!(read);
        let (b, read) = c
            .get_or_read(1, 0, || panic!("a cached block is read again"))
            .unwrap();
        assert!(!read);
        assert!(b.len() > 100);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.file_reads, s.blocks), (1, 1, 1, 1));
        assert_eq!(s.bytes, b.len() as u64 + ENTRY_OVERHEAD);
        // Another file's block at the same offset is another block.
        let (_, read) = c.get_or_read(2, 0, || Ok(block(10))).unwrap();
        assert!(read);
        c.forget_table(1, [0u64].into_iter());
        let (_, read) = c.get_or_read(1, 0, || Ok(block(100))).unwrap();
        assert!(read, "a forgotten table's block is gone");
    }

    #[test]
    fn a_failed_read_is_not_cached() {
        let c = BlockCache::new(1 << 20, 4096);
        let e = c
            .get_or_read(1, 0, || Err(crate::Error::corruption("t.sst", 0, "bad")))
            .unwrap_err();
        assert!(e.is_corruption());
        let (_, read) = c.get_or_read(1, 0, || Ok(block(1))).unwrap();
        assert!(read);
        assert_eq!(c.stats().blocks, 1);
    }

    #[test]
    fn capacity_zero_reads_every_time() {
        let c = BlockCache::new(0, 4096);
        for _ in 0..3 {
            let (_, read) = c.get_or_read(1, 0, || Ok(block(1))).unwrap();
            assert!(read);
        }
        let s = c.stats();
        assert_eq!((s.capacity, s.bytes, s.hits, s.misses), (0, 0, 0, 0));
        assert_eq!(s.file_reads, 3);
    }

    #[test]
    fn holds_no_more_than_its_capacity() {
        let cap = 256 << 10;
        let c = BlockCache::new(cap, 1024);
        for i in 0..2000u64 {
            c.get_or_read(i % 7, i * 4096, || Ok(block(1000))).unwrap();
            assert!(c.stats().bytes <= c.stats().capacity);
        }
        let s = c.stats();
        // The shards round the capacity up by less than a byte each.
        assert!(s.capacity >= cap && s.capacity < cap + 1024, "{s:?}");
        assert!(s.bytes > cap / 2, "{s:?}");
    }
}
