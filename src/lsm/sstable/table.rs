//! Reads one SSTable file: footer, index, filter and properties are checked
//! and kept in memory at open; data blocks are read (and checked) per access.

use super::block::{Block, BlockIter};
use super::bloom::BloomFilter;
use super::{
    BlockHandle, BLOCK_TRAILER_LEN, COMPRESSION_NONE, COMPRESSION_ZSTD, FOOTER_LEN,
    FORMAT_VERSION, MAX_BLOCK_SIZE, TABLE_MAGIC,
};
use crate::coding::Reader;
use crate::error::{Error, Result};
use crate::io::FileHandle;
use crate::lsm::ikey;
use crate::lsm::iter::InternalIterator;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The statistics recorded in a table's properties block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TableProperties {
    pub entries: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub raw_key_bytes: u64,
    pub raw_value_bytes: u64,
    pub data_blocks: u64,
}

impl TableProperties {
    fn decode(src: &[u8]) -> Option<TableProperties> {
        let mut r = Reader::new(src);
        let p = TableProperties {
            entries: r.varint()?,
            smallest: r.length_prefixed()?.to_vec(),
            largest: r.length_prefixed()?.to_vec(),
            raw_key_bytes: r.varint()?,
            raw_value_bytes: r.varint()?,
            data_blocks: r.varint()?,
        };
        r.is_empty().then_some(p)
    }
}

/// An open table. `Send + Sync`; share it through `Arc`.
#[derive(Debug)]
pub(crate) struct Table {
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
    props: TableProperties,
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
    let mut buf = read_exact(file, path, handle.offset, n + BLOCK_TRAILER_LEN)?;
    let kind = buf[n];
    let stored = u32::from_le_bytes([buf[n + 1], buf[n + 2], buf[n + 3], buf[n + 4]]);
    let actual = crc32fast::hash(&buf[..n + 1]);
    if stored != actual {
        return Err(bad(format!(
            "{what} block checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        )));
    }
    buf.truncate(n);
    match kind {
        COMPRESSION_NONE => {
            if handle.size > MAX_BLOCK_SIZE {
                return Err(bad(format!("{what} block of {n} bytes is too large")));
            }
            Ok(buf)
        }
        COMPRESSION_ZSTD => {
            let size = match zstd::zstd_safe::get_frame_content_size(&buf) {
                Ok(Some(s)) => s,
                _ => return Err(bad(format!("{what} block: zstd frame without a content size"))),
            };
            if size > MAX_BLOCK_SIZE {
                return Err(bad(format!(
                    "{what} block decompresses to {size} bytes (over the limit)"
                )));
            }
            let out = zstd::bulk::decompress(&buf, size as usize)
                .map_err(|e| bad(format!("{what} block: zstd: {e}")))?;
            if out.len() as u64 != size {
                return Err(bad(format!(
                    "{what} block decompressed to {} bytes, frame says {size}",
                    out.len()
                )));
            }
            Ok(out)
        }
        k => Err(bad(format!("{what} block has unknown compression type {k}"))),
    }
}

impl Table {
    /// Opens a table of `file_size` bytes: reads and checks the footer, the
    /// index, the filter and the properties.
    pub(crate) fn open(
        file: Arc<dyn FileHandle>,
        path: PathBuf,
        file_size: u64,
    ) -> Result<Arc<Table>> {
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
        let body = &footer[..FOOTER_LEN - 4];
        let mut r = Reader::new(&footer);
        let bad_footer = |reason: &str| corruption(p, footer_off, format!("footer: {reason}"));
        let mut handle = || -> Result<BlockHandle> {
            let offset = r.u64().ok_or_else(|| bad_footer("short"))?;
            let size = r.u64().ok_or_else(|| bad_footer("short"))?;
            Ok(BlockHandle { offset, size })
        };
        let index_h = handle()?;
        let filter_h = handle()?;
        let props_h = handle()?;
        let version = r.u32().ok_or_else(|| bad_footer("short"))?;
        let magic = r.u64().ok_or_else(|| bad_footer("short"))?;
        let crc = r.u32().ok_or_else(|| bad_footer("short"))?;
        if crc != crc32fast::hash(body) {
            return Err(bad_footer("checksum mismatch"));
        }
        if magic != TABLE_MAGIC {
            return Err(bad_footer(&format!("bad magic {magic:#018x}")));
        }
        if version != FORMAT_VERSION {
            return Err(bad_footer(&format!("unsupported format version {version}")));
        }

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
        let props = TableProperties::decode(&props_bytes)
            .ok_or_else(|| corruption(p, props_h.offset, "malformed properties block"))?;

        let mut data_end = index_h.offset.min(props_h.offset);
        if filter_h.size != 0 {
            data_end = data_end.min(filter_h.offset);
        }
        let mut handles = Vec::with_capacity(index.len());
        for i in 0..index.len() {
            let h = BlockHandle::decode_varint(index.value_at(i)).ok_or_else(|| {
                corruption(p, index_h.offset, format!("index entry {i}: bad block handle"))
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
        Ok(Arc::new(Table {
            file,
            path,
            file_size,
            index,
            handles,
            data_end,
            filter,
            props,
        }))
    }

    pub(crate) fn smallest(&self) -> &[u8] {
        &self.props.smallest
    }
    pub(crate) fn largest(&self) -> &[u8] {
        &self.props.largest
    }
    pub(crate) fn entries(&self) -> u64 {
        self.props.entries
    }
    pub(crate) fn file_size(&self) -> u64 {
        self.file_size
    }
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn properties(&self) -> &TableProperties {
        &self.props
    }
    /// Number of data blocks.
    pub(crate) fn data_blocks(&self) -> usize {
        self.handles.len()
    }
    /// Whether the table has a bloom filter.
    pub(crate) fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// The bloom filter's verdict on a user part (table id + user key);
    /// always true without a filter.
    pub(crate) fn may_contain(&self, user_part: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(user_part))
    }

    fn read_data_block(&self, i: usize) -> Result<Block> {
        let h = self.handles[i];
        let bytes = read_block(&*self.file, &self.path, h, self.data_end, "data")?;
        Block::new(bytes, self.path.clone(), h.offset)
    }

    /// The first entry with key `>= target` if its user part is the
    /// target's: `(internal key, value)`. `target` is usually a seek key
    /// ([`ikey::seek_key`]); the bloom filter is consulted first.
    pub(crate) fn get(&self, target: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let up = ikey::user_part(target);
        if !self.may_contain(up) {
            return Ok(None);
        }
        let i = self.index.lower_bound(target);
        if i >= self.handles.len() {
            return Ok(None);
        }
        let block = self.read_data_block(i)?;
        Ok(match block.seek(target)? {
            Some((k, v)) if ikey::user_part(&k) == up => Some((k, v.to_vec())),
            _ => None,
        })
    }

    /// A cursor over the whole table.
    pub(crate) fn iter(self: &Arc<Self>) -> TableIter {
        TableIter {
            table: self.clone(),
            block_idx: 0,
            block: None,
            err: None,
        }
    }
}

/// A two-level cursor: the in-memory index picks the data block, a decoded
/// [`BlockIter`] walks it. After an error it stays invalid and `status`
/// reports the error.
pub(crate) struct TableIter {
    table: Arc<Table>,
    /// Which data block `block` holds.
    block_idx: usize,
    block: Option<BlockIter>,
    err: Option<Error>,
}

impl TableIter {
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
        match self.table.read_data_block(i).and_then(Block::into_cursor) {
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

impl InternalIterator for TableIter {
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
        if let Some(b) = &mut self.block {
            b.next();
        }
        self.skip_forward();
    }

    fn prev(&mut self) {
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
