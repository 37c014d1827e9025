//! Reads one SSTable file: footer, index, filter and properties are checked
//! and kept in memory at open (pinned for the table's life); data blocks are
//! read (and checked) per access, through the database's block cache when
//! the table was opened with one ([`Sst::open_cached`]).

use super::block::{Block, BlockIter};
use super::bloom::BloomFilter;
use super::cache::{BlockCache, CacheUse};
use super::format::{
    unpack_stored_block, BlockHandle, Footer, SstProperties, BLOCK_TRAILER_LEN, FOOTER_LEN,
};
use crate::error::{Error, Result};
use crate::io::FileHandle;
use crate::lsm::ikey;
use crate::lsm::iter::InternalIterator;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An entry of a table: `(internal key, value)`.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// An open table's place in the block cache.
#[derive(Debug)]
struct CacheSlot {
    cache: Arc<BlockCache>,
    /// The table's file number: with a block's offset, its cache key.
    number: u64,
    /// Set when the table's file is deleted: its blocks leave the cache
    /// when the table is dropped.
    forget_on_drop: AtomicBool,
}

/// An open table. `Send + Sync`; share it through `Arc`.
#[derive(Debug)]
pub(crate) struct Sst {
    file: Arc<dyn FileHandle>,
    path: Arc<Path>,
    file_size: u64,
    /// The decoded index block (only its entry accessors are used).
    index: BlockIter,
    /// The data block handles, parallel to the index entries.
    handles: Vec<BlockHandle>,
    /// Where the data blocks must end (start of the metadata blocks).
    data_end: u64,
    filter: Option<BloomFilter>,
    /// `None`: every data block is read from the file.
    cached: Option<CacheSlot>,
    /// Checked by the tests (open compares them with the index).
    #[cfg(test)]
    props: SstProperties,
}

fn corruption(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::corruption(path.to_path_buf(), offset, reason)
}

/// Reads `len` bytes at `offset`; a file shorter than claimed is corruption.
fn read_exact(file: &dyn FileHandle, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corruption(path, offset, "file is shorter than its recorded size")
        } else {
            Error::io(format!("reading {} at {offset}", path.display()), e)
        }
    })?;
    Ok(buf)
}

/// Reads one stored block that must end by `limit`, checks its crc and
/// decompresses it.
fn read_block(
    file: &dyn FileHandle,
    path: &Path,
    handle: BlockHandle,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let bad = |reason: String| corruption(path, handle.offset, reason);
    match handle.end() {
        Some(end) if end <= limit => {}
        _ => {
            return Err(bad(format!(
                "{what} block (size {}) runs past byte {limit}",
                handle.size
            )))
        }
    }
    // Fits in memory: it is within the file (checked above against its size).
    let n = usize::try_from(handle.size)
        .map_err(|_| bad(format!("{what} block size {} too large", handle.size)))?;
    let stored = read_exact(file, path, handle.offset, n + BLOCK_TRAILER_LEN)?;
    unpack_stored_block(stored).map_err(|why| bad(format!("{what} block: {why}")))
}

impl Sst {
    /// Opens a table of `file_size` bytes: reads and checks the footer, the
    /// index, the filter and the properties. Its data blocks are read from
    /// the file on every access (no cache).
    pub(crate) fn open(
        file: Arc<dyn FileHandle>,
        path: PathBuf,
        file_size: u64,
    ) -> Result<Arc<Sst>> {
        Self::open_with(file, path, file_size, None)
    }

    /// Opens table number `number` as [`Sst::open`] does, its data blocks
    /// read through `cache` by point reads and iterators.
    pub(crate) fn open_cached(
        file: Arc<dyn FileHandle>,
        path: PathBuf,
        file_size: u64,
        cache: Arc<BlockCache>,
        number: u64,
    ) -> Result<Arc<Sst>> {
        let slot = CacheSlot {
            cache,
            number,
            forget_on_drop: AtomicBool::new(false),
        };
        Self::open_with(file, path, file_size, Some(slot))
    }

    fn open_with(
        file: Arc<dyn FileHandle>,
        path: PathBuf,
        file_size: u64,
        cached: Option<CacheSlot>,
    ) -> Result<Arc<Sst>> {
        let path: Arc<Path> = Arc::from(path);
        let p = &*path;
        if file_size < FOOTER_LEN as u64 {
            return Err(corruption(
                p,
                0,
                format!("file of {file_size} bytes is too short for a table"),
            ));
        }
        let footer_off = file_size - FOOTER_LEN as u64;
        let footer = read_exact(&*file, p, footer_off, FOOTER_LEN)?;
        let Footer {
            index: index_h,
            filter: filter_h,
            properties: props_h,
        } = Footer::decode(&footer)
            .map_err(|why| corruption(p, footer_off, format!("footer: {why}")))?;

        // Metadata blocks.
        let index_bytes = read_block(&*file, p, index_h, footer_off, "index")?;
        let index = Block::new(index_bytes, path.clone(), index_h.offset)?.into_cursor()?;
        let filter = if filter_h.size == 0 {
            None
        } else {
            let bytes = read_block(&*file, p, filter_h, footer_off, "filter")?;
            let f = BloomFilter::decode(bytes).map_err(|e| corruption(p, filter_h.offset, e))?;
            Some(f)
        };
        let props_bytes = read_block(&*file, p, props_h, footer_off, "properties")?;
        let props = SstProperties::decode(&props_bytes)
            .ok_or_else(|| corruption(p, props_h.offset, "malformed properties block"))?;

        let mut data_end = index_h.offset.min(props_h.offset);
        if filter_h.size != 0 {
            data_end = data_end.min(filter_h.offset);
        }
        let mut handles = Vec::with_capacity(index.len());
        for i in 0..index.len() {
            let h = BlockHandle::decode_varint(index.value_at(i)).ok_or_else(|| {
                corruption(
                    p,
                    index_h.offset,
                    format!("index entry {i}: bad block handle"),
                )
            })?;
            match h.end() {
                Some(end) if end <= data_end => {}
                _ => {
                    return Err(corruption(
                        p,
                        index_h.offset,
                        format!("index entry {i}: data block runs into the metadata"),
                    ))
                }
            }
            handles.push(h);
        }
        if props.data_blocks != handles.len() as u64 {
            return Err(corruption(
                p,
                props_h.offset,
                format!(
                    "properties count {} data blocks, index lists {}",
                    props.data_blocks,
                    handles.len()
                ),
            ));
        }
        let last_ok = match index.len().checked_sub(1) {
            Some(last) => index.key_at(last) == props.largest.as_slice() && props.entries > 0,
            None => props.entries == 0,
        };
        if !last_ok {
            return Err(corruption(
                p,
                props_h.offset,
                "properties disagree with the index",
            ));
        }
        Ok(Arc::new(Sst {
            file,
            path,
            file_size,
            index,
            handles,
            data_end,
            filter,
            cached,
            #[cfg(test)]
            props,
        }))
    }

    /// Heap bytes the table keeps for its life: the decoded index, the
    /// block handles and the bloom filter (pinned, never in the block
    /// cache).
    pub(crate) fn pinned_bytes(&self) -> u64 {
        let handles = self.handles.capacity() * std::mem::size_of::<BlockHandle>();
        let filter = self.filter.as_ref().map_or(0, BloomFilter::heap_bytes);
        (self.index.heap_bytes() + handles + filter) as u64
    }

    /// Marks the table's file as deleted: when the table is dropped (the
    /// last version and iterator let go) its blocks leave the block cache.
    pub(crate) fn forget_cached_blocks_on_drop(&self) {
        if let Some(slot) = &self.cached {
            slot.forget_on_drop.store(true, Ordering::Release);
        }
    }

    #[cfg(test)]
    pub(crate) fn smallest(&self) -> &[u8] {
        &self.props.smallest
    }
    #[cfg(test)]
    pub(crate) fn largest(&self) -> &[u8] {
        &self.props.largest
    }
    #[cfg(test)]
    pub(crate) fn entries(&self) -> u64 {
        self.props.entries
    }
    #[cfg(test)]
    pub(crate) fn file_size(&self) -> u64 {
        self.file_size
    }
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    #[cfg(test)]
    pub(crate) fn properties(&self) -> &SstProperties {
        &self.props
    }
    /// Number of data blocks.
    #[cfg(test)]
    pub(crate) fn data_blocks(&self) -> usize {
        self.handles.len()
    }
    /// Whether the table has a bloom filter.
    #[cfg(test)]
    pub(crate) fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Reads every byte of the table again and checks it: the footer, the
    /// index, the filter and the properties (as an open does), and every
    /// data block (checksum, decompression, every entry decoded, keys in
    /// order, the last one the index's). Returns the blocks checked and the
    /// damage found: `(offset, what)` of each damaged block, all of them.
    pub(crate) fn check_every_block(&self) -> (u64, Vec<(u64, String)>) {
        let mut damage = Vec::new();
        let as_damage = |e: Error| match e {
            Error::Corruption { offset, reason, .. } => (offset, reason),
            other => (0, other.to_string()),
        };
        // The metadata: footer, index, filter and properties.
        let meta_blocks = 3 + u64::from(self.filter.is_some());
        if let Err(e) = Sst::open(self.file.clone(), self.path.to_path_buf(), self.file_size) {
            damage.push(as_damage(e));
        }
        for i in 0..self.handles.len() {
            if let Err(e) = self.checked_data_block(i) {
                damage.push(as_damage(e));
            }
        }
        (self.handles.len() as u64 + meta_blocks, damage)
    }

    /// Data block `i` read and checked as [`Sst::check_every_block`] checks
    /// it: checksum, decompression, every entry decoded, keys in order, the
    /// last one the index's.
    fn checked_data_block(&self, i: usize) -> Result<BlockIter> {
        let c = self.read_data_block(i)?.into_cursor()?;
        let ordered = (1..c.len()).all(|j| ikey::compare(c.key_at(j - 1), c.key_at(j)).is_lt());
        let last_ok = c.len() > 0 && c.key_at(c.len() - 1) == self.index.key_at(i);
        if ordered && last_ok {
            Ok(c)
        } else {
            Err(corruption(
                &self.path,
                self.handles[i].offset,
                "data block keys out of order, or its last key is not the index's",
            ))
        }
    }

    /// The handle (payload offset and size) of every data block, in file
    /// order.
    pub(crate) fn data_block_handles(&self) -> &[BlockHandle] {
        &self.handles
    }

    /// The entries of data block `i` (`i` below the number of data blocks),
    /// `(internal key, value)` in order, after the checks of
    /// [`Sst::check_every_block`]; a damaged block is `Error::Corruption`.
    pub(crate) fn data_block_entries(&self, i: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if i >= self.handles.len() {
            return Err(Error::InvalidArgument(format!(
                "{}: no data block {i} (the table has {})",
                self.path.display(),
                self.handles.len()
            )));
        }
        let c = self.checked_data_block(i)?;
        Ok((0..c.len())
            .map(|j| (c.key_at(j).to_vec(), c.value_at(j).to_vec()))
            .collect())
    }

    /// The bloom filter's verdict on a user part (table id + user key);
    /// always true without a filter.
    pub(crate) fn may_contain(&self, user_part: &[u8]) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.may_contain(user_part))
    }

    /// Data block `i` read from the file and checked (crc, decompression,
    /// restart array), bypassing the cache.
    fn read_data_block(&self, i: usize) -> Result<Block> {
        let h = self.handles[i];
        let bytes = read_block(&*self.file, &self.path, h, self.data_end, "data")?;
        Block::new(bytes, self.path.clone(), h.offset)
    }

    /// Data block `i` (below the number of data blocks), through the block
    /// cache when `how` is [`CacheUse::Fill`] and the table has one; and
    /// whether it was read from the file.
    fn data_block(&self, i: usize, how: CacheUse) -> Result<(Arc<Block>, bool)> {
        match (&self.cached, how) {
            (Some(slot), CacheUse::Fill) => {
                slot.cache
                    .get_or_read(slot.number, self.handles[i].offset, || {
                        self.read_data_block(i)
                    })
            }
            (Some(slot), CacheUse::NoFill) => {
                slot.cache
                    .get_or_read_no_fill(slot.number, self.handles[i].offset, || {
                        self.read_data_block(i)
                    })
            }
            _ => Ok((Arc::new(self.read_data_block(i)?), true)),
        }
    }

    /// The first entry with key `>= target` if its user part is the
    /// target's: `(internal key, value)`. `target` is usually a seek key
    /// ([`ikey::seek_key`]); the bloom filter is consulted first.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn get(&self, target: &[u8]) -> Result<Option<Entry>> {
        self.get_counted(target, CacheUse::Fill).map(|(e, _)| e)
    }

    /// [`Sst::get`] through the block cache as `how` says, with the number
    /// of data blocks it read from the file (0 or 1).
    pub(crate) fn get_counted(&self, target: &[u8], how: CacheUse) -> Result<(Option<Entry>, u32)> {
        let up = ikey::user_part(target);
        if !self.may_contain(up) {
            return Ok((None, 0));
        }
        let i = self.index.lower_bound(target);
        if i >= self.handles.len() {
            return Ok((None, 0));
        }
        let (block, from_file) = self.data_block(i, how)?;
        let entry = match block.seek(target)? {
            Some((k, v)) if ikey::user_part(&k) == up => Some((k, v.to_vec())),
            _ => None,
        };
        Ok((entry, u32::from(from_file)))
    }

    /// The approximate file offset where entries `>= target` begin: the
    /// offset of the data block that would hold `target`, or the end of the
    /// data blocks if every key is smaller. For splitting and size estimates.
    #[cfg(test)]
    pub(crate) fn approximate_offset(&self, target: &[u8]) -> u64 {
        let i = self.index.lower_bound(target);
        match self.handles.get(i) {
            Some(h) => h.offset,
            None => self.data_end,
        }
    }

    /// A cursor over the whole table, its blocks read through the block
    /// cache (a user's iterator).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn iter(self: &Arc<Self>) -> SstIter {
        self.iter_with(CacheUse::Fill)
    }

    /// A cursor over the whole table that reads with `how`: compaction
    /// inputs pass [`CacheUse::Bypass`].
    pub(crate) fn iter_with(self: &Arc<Self>, how: CacheUse) -> SstIter {
        SstIter {
            table: self.clone(),
            how,
            block_idx: 0,
            block: None,
            err: None,
        }
    }
}

impl Drop for Sst {
    fn drop(&mut self) {
        if let Some(slot) = &self.cached {
            if slot.forget_on_drop.load(Ordering::Acquire) {
                let offsets = self.handles.iter().map(|h| h.offset);
                slot.cache.forget_table(slot.number, offsets);
            }
        }
    }
}

/// A two-level cursor: the in-memory index picks the data block, a decoded
/// [`BlockIter`] walks it. After an error it stays invalid and `status`
/// reports the error.
pub(crate) struct SstIter {
    table: Arc<Sst>,
    how: CacheUse,
    /// Which data block `block` holds.
    block_idx: usize,
    block: Option<BlockIter>,
    err: Option<Error>,
}

impl SstIter {
    /// Loads data block `i` (reusing the current one if it is `i`); false
    /// (and no block) if `i` is out of range or on error.
    fn load(&mut self, i: usize) -> bool {
        if self.err.is_some() || i >= self.table.handles.len() {
            self.block = None;
            return false;
        }
        if self.block.is_some() && self.block_idx == i {
            return true;
        }
        self.block = None;
        let block = self.table.data_block(i, self.how);
        match block.and_then(|(b, _)| b.cursor()) {
            Ok(b) => {
                self.block = Some(b);
                self.block_idx = i;
                true
            }
            Err(e) => {
                self.err = Some(e);
                false
            }
        }
    }

    /// While the block cursor is past its end, moves to the next block's start.
    fn skip_forward(&mut self) {
        while self.block.as_ref().is_some_and(|b| !b.valid()) {
            if !self.load(self.block_idx + 1) {
                return;
            }
            if let Some(b) = &mut self.block {
                b.seek_to_first();
            }
        }
    }

    /// While the block cursor is before its start, moves to the previous
    /// block's end.
    fn skip_backward(&mut self) {
        while self.block.as_ref().is_some_and(|b| !b.valid()) {
            if self.block_idx == 0 {
                self.block = None;
                return;
            }
            if !self.load(self.block_idx - 1) {
                return;
            }
            if let Some(b) = &mut self.block {
                b.seek_to_last();
            }
        }
    }
}

impl InternalIterator for SstIter {
    fn valid(&self) -> bool {
        self.err.is_none() && self.block.as_ref().is_some_and(|b| b.valid())
    }

    fn seek_to_first(&mut self) {
        if self.load(0) {
            if let Some(b) = &mut self.block {
                b.seek_to_first();
            }
            self.skip_forward();
        }
    }

    fn seek_to_last(&mut self) {
        match self.table.handles.len().checked_sub(1) {
            Some(last) if self.load(last) => {
                if let Some(b) = &mut self.block {
                    b.seek_to_last();
                }
                self.skip_backward();
            }
            _ => self.block = None,
        }
    }

    fn seek(&mut self, target: &[u8]) {
        let i = self.table.index.lower_bound(target);
        if self.load(i) {
            if let Some(b) = &mut self.block {
                b.seek(target);
            }
            self.skip_forward();
        }
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        // The first block whose last key is >= target holds the answer or
        // follows it.
        let i = self.table.index.lower_bound(target);
        if i >= self.table.handles.len() {
            self.seek_to_last();
            return;
        }
        if self.load(i) {
            if let Some(b) = &mut self.block {
                b.seek_for_prev(target);
            }
            self.skip_backward();
        }
    }

    fn next(&mut self) {
        if !self.valid() {
            return;
        }
        if let Some(b) = &mut self.block {
            b.next();
        }
        self.skip_forward();
    }

    fn prev(&mut self) {
        if !self.valid() {
            return;
        }
        if let Some(b) = &mut self.block {
            b.prev();
        }
        self.skip_backward();
    }

    fn key(&self) -> &[u8] {
        match &self.block {
            Some(b) if b.valid() => b.key(),
            _ => &[],
        }
    }

    fn value(&self) -> &[u8] {
        match &self.block {
            Some(b) if b.valid() => b.value(),
            _ => &[],
        }
    }

    fn status(&self) -> Result<()> {
        match &self.err {
            None => Ok(()),
            Some(e) => Err(e.duplicate()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Fs, StdFs, WriteMode, Writeback};
    use crate::lsm::ikey::encode;
    use crate::lsm::sstable::{Compression, SstBuilder, SstBuilderOptions};
    use std::cmp::Ordering;

    type Entries = Vec<(Vec<u8>, Vec<u8>)>;

    /// A tiny deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    use crate::io::bytes_file::BytesFile as MemFile;

    /// Sorted entries: several table ids, several versions per user key,
    /// empty and non-empty values, shared prefixes.
    fn random_entries(rng: &mut Rng, user_keys: usize) -> Entries {
        let mut v = Vec::new();
        for _ in 0..user_keys {
            let table = rng.below(3) as u32;
            let mut uk = b"prefix/".to_vec();
            for _ in 0..1 + rng.below(6) {
                uk.push(b'a' + rng.below(4) as u8);
            }
            let versions = 1 + rng.below(4);
            for _ in 0..versions {
                let seq = 1 + rng.below(100);
                let kind = rng.below(3) as u8;
                let vlen = if rng.below(4) == 0 { 0 } else { rng.below(40) };
                let val = (0..vlen).map(|_| rng.next() as u8).collect();
                v.push((encode(table, &uk, seq, kind), val));
            }
        }
        v.sort_by(|a, b| ikey::compare(&a.0, &b.0));
        // One entry per (user part, seq): drop same-seq duplicates.
        v.dedup_by(|a, b| {
            ikey::user_part(&a.0) == ikey::user_part(&b.0) && ikey::seq(&a.0) == ikey::seq(&b.0)
        });
        v
    }

    fn opts(block_size: usize, bloom: u32, compression: Compression) -> SstBuilderOptions {
        SstBuilderOptions {
            block_size,
            restart_interval: 4,
            bloom_bits_per_key: bloom,
            compression,
            // Small ranges, so that the tables' writes start writeback often.
            writeback: Some(Arc::new(Writeback::new(WriteMode::Writeback, 8 << 10))),
        }
    }

    fn build_file(dir: &Path, name: &str, entries: &Entries, o: SstBuilderOptions) -> Arc<Sst> {
        let fs = StdFs::default();
        let path = dir.join(name);
        let file = fs.create(&path).unwrap();
        let mut b = SstBuilder::new(file, path.clone(), o);
        for (k, v) in entries {
            b.add(k, v).unwrap();
        }
        assert_eq!(b.num_entries(), entries.len() as u64);
        let est = b.estimated_size();
        let s = b.finish().unwrap();
        assert!(s.file_size >= est);
        assert_eq!(s.entries, entries.len() as u64);
        let file = fs.open(&path, false).unwrap();
        assert_eq!(file.len().unwrap(), s.file_size);
        let t = Sst::open(file, path, s.file_size).unwrap();
        assert_eq!(t.smallest(), &s.smallest[..]);
        assert_eq!(t.largest(), &s.largest[..]);
        assert_eq!(t.entries(), entries.len() as u64);
        if let Some((k, _)) = entries.first() {
            assert_eq!(&s.smallest, k);
            assert_eq!(&s.largest, &entries[entries.len() - 1].0);
        }
        t
    }

    fn build_bytes(entries: &Entries, o: SstBuilderOptions) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let t = build_file(dir.path(), "t.sst", entries, o);
        std::fs::read(t.path()).unwrap()
    }

    fn lower_bound(entries: &Entries, t: &[u8]) -> usize {
        entries.partition_point(|e| ikey::compare(&e.0, t) == Ordering::Less)
    }

    fn upper_bound(entries: &Entries, t: &[u8]) -> usize {
        entries.partition_point(|e| ikey::compare(&e.0, t) != Ordering::Greater)
    }

    /// The newest version of `up` at or below `seq`, by brute force.
    fn reference_get(entries: &Entries, up: &[u8], seq: u64) -> Option<(Vec<u8>, Vec<u8>)> {
        entries
            .iter()
            .filter(|e| ikey::user_part(&e.0) == up && ikey::seq(&e.0) <= seq)
            .max_by_key(|e| ikey::seq(&e.0))
            .cloned()
    }

    fn collect_forward(it: &mut SstIter) -> Entries {
        let mut out = Vec::new();
        it.seek_to_first();
        while it.valid() {
            out.push((it.key().to_vec(), it.value().to_vec()));
            it.next();
        }
        out
    }

    fn collect_backward(it: &mut SstIter) -> Entries {
        let mut out = Vec::new();
        it.seek_to_last();
        while it.valid() {
            out.push((it.key().to_vec(), it.value().to_vec()));
            it.prev();
        }
        out.reverse();
        out
    }

    fn random_target(rng: &mut Rng, entries: &Entries) -> Vec<u8> {
        match rng.below(3) {
            0 if !entries.is_empty() => entries[rng.below(entries.len() as u64) as usize].0.clone(),
            1 if !entries.is_empty() => {
                let k = &entries[rng.below(entries.len() as u64) as usize].0;
                ikey::seek_key(ikey::user_part(k), rng.below(110))
            }
            _ => random_entries(rng, 1)[0].0.clone(),
        }
    }

    fn check_table(t: &Arc<Sst>, entries: &Entries, rng: &mut Rng) {
        let mut it = t.iter();
        assert_eq!(collect_forward(&mut it), *entries);
        assert_eq!(collect_backward(&mut it), *entries);
        it.status().unwrap();
        for _ in 0..300 {
            let target = random_target(rng, entries);
            let lb = lower_bound(entries, &target);
            it.seek(&target);
            assert_eq!(it.valid(), lb < entries.len());
            if lb < entries.len() {
                assert_eq!(it.key(), &entries[lb].0[..]);
                assert_eq!(it.value(), &entries[lb].1[..]);
                // Step back across a possible block boundary.
                it.prev();
                assert_eq!(it.valid(), lb > 0);
                if lb > 0 {
                    assert_eq!(it.key(), &entries[lb - 1].0[..]);
                }
            }
            let ub = upper_bound(entries, &target);
            it.seek_for_prev(&target);
            assert_eq!(it.valid(), ub > 0);
            if ub > 0 {
                assert_eq!(it.key(), &entries[ub - 1].0[..]);
                assert_eq!(it.value(), &entries[ub - 1].1[..]);
                it.next();
                assert_eq!(it.valid(), ub < entries.len());
                if ub < entries.len() {
                    assert_eq!(it.key(), &entries[ub].0[..]);
                }
            }
            // Point lookups.
            let up = ikey::user_part(&target).to_vec();
            let seq = rng.below(110);
            let got = t.get(&ikey::seek_key(&up, seq)).unwrap();
            assert_eq!(got, reference_get(entries, &up, seq));
        }
        it.status().unwrap();
        // Every stored user part passes the filter.
        for (k, _) in entries {
            assert!(t.may_contain(ikey::user_part(k)));
        }
    }

    #[test]
    fn table_round_trip_against_reference() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(0xfeed_beef_1234_5678);
        let configs = [
            opts(64, 10, Compression::None),
            opts(64, 10, Compression::Zstd(3)),
            opts(200, 0, Compression::Zstd(1)),
            opts(4096, 10, Compression::None),
            opts(1, 5, Compression::None),
        ];
        for (i, o) in configs.into_iter().enumerate() {
            for user_keys in [0usize, 1, 7, 600] {
                let entries = random_entries(&mut rng, user_keys);
                let name = format!("{i}-{user_keys}.sst");
                let t = build_file(dir.path(), &name, &entries, o.clone());
                assert_eq!(t.has_filter(), o.bloom_bits_per_key > 0);
                if o.block_size <= 64 && entries.len() > 100 {
                    assert!(t.data_blocks() > 20, "{} blocks", t.data_blocks());
                }
                let p = t.properties();
                assert_eq!(p.data_blocks, t.data_blocks() as u64);
                assert_eq!(
                    p.raw_key_bytes,
                    entries.iter().map(|e| e.0.len() as u64).sum::<u64>()
                );
                assert_eq!(
                    p.raw_value_bytes,
                    entries.iter().map(|e| e.1.len() as u64).sum::<u64>()
                );
                check_table(&t, &entries, &mut rng);
                // Offsets grow with the key.
                let mut last = 0;
                for (k, _) in &entries {
                    let off = t.approximate_offset(k);
                    assert!(off >= last && off < t.file_size());
                    last = off;
                }
                if let Some((k, _)) = entries.first() {
                    assert_eq!(t.approximate_offset(k), 0);
                }
            }
        }
    }

    #[test]
    fn cached_tables_read_as_uncached_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(0xcace);
        let entries = random_entries(&mut rng, 600);
        for (i, cap) in [64u64 << 10, 4 << 10, 1 << 30].into_iter().enumerate() {
            let o = opts(128, 10, Compression::Zstd(1));
            let plain = build_file(dir.path(), &format!("{i}.sst"), &entries, o);
            let cache = Arc::new(BlockCache::new(cap, 128));
            let file = StdFs::default().open(plain.path(), false).unwrap();
            let path = plain.path().to_path_buf();
            let t = Sst::open_cached(file, path, plain.file_size(), cache.clone(), 7).unwrap();
            check_table(&t, &entries, &mut rng);
            let s = cache.stats();
            assert!(s.hits > 0 && s.misses > 0, "{s:?}");
            assert!(s.bytes <= s.capacity, "{s:?}");
            assert_eq!(s.file_reads, s.misses);
            // A deleted table's blocks leave the cache with it.
            t.forget_cached_blocks_on_drop();
            drop(t);
            assert_eq!(cache.stats().blocks, 0);
        }
    }

    #[test]
    fn zstd_shrinks_compressible_tables() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Entries = (0..2000u32)
            .map(|i| {
                (
                    encode(1, format!("key{i:08}").as_bytes(), 5, 1),
                    vec![b'x'; 100],
                )
            })
            .collect();
        let plain = build_file(
            dir.path(),
            "a.sst",
            &entries,
            opts(4096, 10, Compression::None),
        );
        let packed = build_file(
            dir.path(),
            "b.sst",
            &entries,
            opts(4096, 10, Compression::Zstd(3)),
        );
        assert!(packed.file_size() * 4 < plain.file_size());
        let mut rng = Rng(99);
        check_table(&packed, &entries, &mut rng);
    }

    #[test]
    fn bloom_skips_absent_keys() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Entries = (0..1000u32)
            .map(|i| (encode(1, format!("key{i:08}").as_bytes(), 5, 1), vec![]))
            .collect();
        let t = build_file(dir.path(), "a.sst", &entries, SstBuilderOptions::default());
        let fp = (0..10_000u32)
            .filter(|i| {
                let up = encode(1, format!("absent{i}").as_bytes(), 0, 0);
                t.may_contain(ikey::user_part(&up))
            })
            .count();
        assert!(fp < 200, "{fp} false positives");
    }

    /// Checks a possibly damaged table, read through `cache` when given
    /// (each block then read from the cache by the passes after the first):
    /// every answer is right or a corruption error.
    /// Returns 0 if open failed, 1 if reading met an error, 2 if all was well.
    fn check_damaged(
        bytes: Vec<u8>,
        entries: &Entries,
        rng: &mut Rng,
        cache: Option<&Arc<BlockCache>>,
    ) -> usize {
        let mut outcome = 2;
        let size = bytes.len() as u64;
        let path = PathBuf::from("damaged.sst");
        let file = Arc::new(MemFile(bytes));
        let opened = match cache {
            Some(c) => Sst::open_cached(file, path.clone(), size, c.clone(), 1),
            None => Sst::open(file, path.clone(), size),
        };
        let t = match opened {
            Ok(t) => t,
            Err(e) => {
                match &e {
                    Error::Corruption { file, .. } => assert_eq!(file, &path),
                    _ => panic!("open: not a corruption error: {e}"),
                }
                return 0;
            }
        };
        let mut it = t.iter();
        let fwd = collect_forward(&mut it);
        match it.status() {
            Ok(()) => assert_eq!(&fwd, entries),
            Err(e) => {
                outcome = 1;
                assert!(e.is_corruption(), "{e}");
                assert!(fwd.len() <= entries.len() && fwd[..] == entries[..fwd.len()]);
            }
        }
        let mut it = t.iter();
        let bwd = collect_backward(&mut it);
        match it.status() {
            Ok(()) => assert_eq!(&bwd, entries),
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                assert!(bwd.len() <= entries.len());
                assert!(bwd[..] == entries[entries.len() - bwd.len()..]);
            }
        }
        for _ in 0..4 {
            let target = random_target(rng, entries);
            let up = ikey::user_part(&target).to_vec();
            let seq = rng.below(110);
            match t.get(&ikey::seek_key(&up, seq)) {
                Ok(got) => assert_eq!(got, reference_get(entries, &up, seq)),
                Err(e) => assert!(e.is_corruption(), "{e}"),
            }
            let mut it = t.iter();
            it.seek(&target);
            let lb = lower_bound(entries, &target);
            if it.valid() {
                assert_eq!(it.key(), &entries[lb].0[..]);
            } else if it.status().is_ok() {
                assert_eq!(lb, entries.len());
            }
        }
        outcome
    }

    #[test]
    fn hostile_bytes_never_panic_or_lie() {
        let mut rng = Rng(0x0bad_cafe_dead_f00d);
        let entries = random_entries(&mut rng, 60);
        let tables = [
            build_bytes(&entries, opts(64, 10, Compression::None)),
            build_bytes(&entries, opts(512, 10, Compression::Zstd(3))),
            build_bytes(&entries, opts(300, 0, Compression::None)),
        ];
        let mut outcomes = [0usize; 3];
        let mut cached = [0usize; 3];
        for case in 0..2400u32 {
            let mut bytes = tables[case as usize % tables.len()].clone();
            // Where in-place damage lands: a quarter of it in the last
            // quarter of the file (index, filter, properties, footer).
            let pos = |rng: &mut Rng, len: usize| {
                let len = len as u64;
                if rng.below(4) == 0 {
                    (len - 1 - rng.below(len / 4)) as usize
                } else {
                    rng.below(len) as usize
                }
            };
            match rng.below(10) {
                0 | 1 => {
                    let n = 1 + rng.below(bytes.len() as u64 / 2) as usize;
                    bytes.truncate(bytes.len() - n);
                }
                2 => {
                    let n = 1 + rng.below(100);
                    bytes.extend((0..n).map(|_| rng.next() as u8));
                }
                _ => {
                    for _ in 0..1 + rng.below(3) {
                        let i = pos(&mut rng, bytes.len());
                        match rng.below(4) {
                            0 | 1 => bytes[i] ^= 1 << rng.below(8),
                            2 => {
                                let n = (1 + rng.below(16) as usize).min(bytes.len() - i);
                                bytes[i..i + n].fill(0);
                            }
                            _ => bytes[i] = rng.next() as u8,
                        }
                    }
                }
            }
            // Every other case through a fresh block cache: a damaged
            // block is never cached, and what is cached was checked.
            let cache = (case % 2 == 1).then(|| Arc::new(BlockCache::new(1 << 20, 512)));
            let outcome = check_damaged(bytes, &entries, &mut rng, cache.as_ref());
            outcomes[outcome] += 1;
            if cache.is_some() {
                cached[outcome] += 1;
            }
        }
        // Damage is caught both at open and while reading data blocks.
        assert!(outcomes[0] > 300 && outcomes[1] > 1000, "{outcomes:?}");
        assert!(cached[0] > 100 && cached[1] > 400, "{cached:?}");
        // Undamaged bytes read back fine through the same paths.
        assert_eq!(
            check_damaged(tables[1].clone(), &entries, &mut rng, None),
            2
        );
        let cache = Arc::new(BlockCache::new(1 << 20, 512));
        let ok = check_damaged(tables[1].clone(), &entries, &mut rng, Some(&cache));
        assert_eq!(ok, 2);
        assert!(cache.stats().hits > 0, "{:?}", cache.stats());
    }

    #[test]
    fn hostile_footers() {
        let mut rng = Rng(5);
        let entries = random_entries(&mut rng, 20);
        let good = build_bytes(&entries, opts(64, 10, Compression::None));
        let footer_off = good.len() - FOOTER_LEN;
        // Re-sign footers with hostile handles: the crc passes, the checks
        // must still hold.
        let forge = |f: &dyn Fn(&mut [u8])| {
            let mut b = good.clone();
            f(&mut b[footer_off..]);
            let crc = crc32fast::hash(&b[footer_off..good.len() - 4]);
            b[good.len() - 4..].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let cases: Vec<Vec<u8>> = vec![
            forge(&|f| f[8..16].copy_from_slice(&u64::MAX.to_le_bytes())),
            forge(&|f| f[0..8].copy_from_slice(&u64::MAX.to_le_bytes())),
            forge(&|f| f[0..8].copy_from_slice(&(u64::MAX - 2).to_le_bytes())),
            forge(&|f| f[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes())),
            forge(&|f| f[40..48].copy_from_slice(&3u64.to_le_bytes())),
            forge(&|f| f[48..52].copy_from_slice(&2u32.to_le_bytes())),
            forge(&|f| f[52..60].copy_from_slice(&0u64.to_le_bytes())),
            forge(&|f| f.swap(0, 16)),
            forge(&|f| f[..48].fill(0)),
            vec![],
            vec![0; 63],
            vec![0; 64],
            good[footer_off..].to_vec(),
        ];
        for b in cases {
            let size = b.len() as u64;
            let e = Sst::open(Arc::new(MemFile(b)), PathBuf::from("x.sst"), size).unwrap_err();
            assert!(e.is_corruption(), "{e}");
        }
        // A size larger than the file: the footer read falls off the end.
        let size = good.len() as u64 + 10;
        let e = Sst::open(Arc::new(MemFile(good)), PathBuf::from("x.sst"), size).unwrap_err();
        assert!(e.is_corruption(), "{e}");
    }

    #[test]
    fn table_iter_is_send_and_table_is_sync() {
        fn check<T: Send + Sync>() {}
        fn check_send<T: Send>() {}
        check::<Sst>();
        check_send::<SstIter>();
    }
}
