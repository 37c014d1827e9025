//! Writes one SSTable file (format in the module documentation).

use super::block::BlockBuilder;
use super::bloom::{self, BloomBuilder};
use super::format::{
    put_stored_block, BlockHandle, Footer, SstProperties, BLOCK_TRAILER_LEN, COMPRESSION_NONE,
    COMPRESSION_ZSTD,
};
use crate::error::{Error, Result};
use crate::io::{FileHandle, Writeback};
use crate::lsm::ikey;
use std::path::PathBuf;
use std::sync::Arc;

/// How data blocks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    /// zstd at the given level (0 = zstd's default).
    Zstd(i32),
}

/// Knobs for writing a table.
#[derive(Clone, Debug)]
pub(crate) struct SstBuilderOptions {
    /// Target uncompressed size of a data block.
    pub block_size: usize,
    /// Entries between restart points in data and index blocks.
    pub restart_interval: usize,
    /// Bloom filter bits per distinct user part; 0 writes no filter.
    pub bloom_bits_per_key: u32,
    pub compression: Compression,
    /// Starts the writeback of the file as it grows; `None` leaves it to
    /// the kernel.
    pub writeback: Option<Arc<Writeback>>,
}

impl Default for SstBuilderOptions {
    fn default() -> Self {
        SstBuilderOptions {
            block_size: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::None,
            writeback: None,
        }
    }
}

/// What a finished table holds.
#[derive(Clone, Debug)]
pub(crate) struct SstSummary {
    pub file_size: u64,
    pub entries: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
}

/// Writes flushed blocks once this much is buffered.
const WRITE_BUFFER: usize = 64 << 10;

/// Streams sorted entries into a new table file. After an error the builder
/// (and the file) must be abandoned.
#[derive(Debug)]
pub(crate) struct SstBuilder {
    file: Arc<dyn FileHandle>,
    path: PathBuf,
    opts: SstBuilderOptions,
    /// Bytes handed to the file so far.
    written: u64,
    /// Bytes stored but not yet written (they follow `written`).
    pending: Vec<u8>,
    /// Where the bytes whose writeback has not been started begin.
    unstarted: u64,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    bloom: Option<BloomBuilder>,
    smallest: Vec<u8>,
    last_key: Vec<u8>,
    entries: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    data_blocks: u64,
}

impl SstBuilder {
    pub(crate) fn new(file: Arc<dyn FileHandle>, path: PathBuf, opts: SstBuilderOptions) -> Self {
        let bloom =
            (opts.bloom_bits_per_key > 0).then(|| BloomBuilder::new(opts.bloom_bits_per_key));
        SstBuilder {
            file,
            path,
            data_block: BlockBuilder::new(opts.restart_interval),
            index_block: BlockBuilder::new(opts.restart_interval),
            opts,
            written: 0,
            pending: Vec::new(),
            unstarted: 0,
            bloom,
            smallest: Vec::new(),
            last_key: Vec::new(),
            entries: 0,
            raw_key_bytes: 0,
            raw_value_bytes: 0,
            data_blocks: 0,
        }
    }

    /// Appends an entry; keys must be strictly increasing by
    /// [`ikey::compare`].
    pub(crate) fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        debug_assert!(
            self.entries == 0 || ikey::compare(&self.last_key, ikey).is_lt(),
            "table keys out of order"
        );
        let user_part = ikey::user_part(ikey);
        if let Some(bloom) = &mut self.bloom {
            if self.entries == 0 || ikey::user_part(&self.last_key) != user_part {
                bloom.add_hash(bloom::hash(user_part));
            }
        }
        if self.entries == 0 {
            self.smallest = ikey.to_vec();
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(ikey);
        self.data_block.add(ikey, value);
        self.entries += 1;
        self.raw_key_bytes += ikey.len() as u64;
        self.raw_value_bytes += value.len() as u64;
        if self.data_block.estimated_size() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Bytes stored so far plus the pending data block.
    pub(crate) fn estimated_size(&self) -> u64 {
        let block = if self.data_block.is_empty() {
            0
        } else {
            self.data_block.estimated_size() + BLOCK_TRAILER_LEN
        };
        self.offset() + block as u64
    }

    #[cfg(test)]
    pub(crate) fn num_entries(&self) -> u64 {
        self.entries
    }

    /// The offset the next stored block starts at.
    fn offset(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.pending, self.written)
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        if let Some(wb) = &self.opts.writeback {
            wb.wrote(&*self.file, &mut self.unstarted, self.written);
        }
        Ok(())
    }

    /// Stores a block payload with its trailer; returns its handle.
    fn store_block(&mut self, payload: &[u8], kind: u8) -> Result<BlockHandle> {
        let handle = put_stored_block(&mut self.pending, self.written, payload, kind);
        if self.pending.len() >= WRITE_BUFFER {
            self.write_pending()?;
        }
        Ok(handle)
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data_block.is_empty() {
            return Ok(());
        }
        let raw = self.data_block.finish();
        let handle = match self.opts.compression {
            Compression::None => self.store_block(&raw, COMPRESSION_NONE)?,
            Compression::Zstd(level) => {
                let packed = zstd::bulk::compress(&raw, level).map_err(|e| {
                    Error::io(format!("compressing a block of {}", self.path.display()), e)
                })?;
                if packed.len() < raw.len() {
                    self.store_block(&packed, COMPRESSION_ZSTD)?
                } else {
                    self.store_block(&raw, COMPRESSION_NONE)?
                }
            }
        };
        let mut h = Vec::with_capacity(20);
        handle.encode_varint(&mut h);
        // The data block builder has been reset; `last_key` is the block's
        // last key.
        self.index_block.add(&self.last_key, &h);
        self.data_blocks += 1;
        Ok(())
    }

    /// Writes the remaining blocks and the footer, then syncs the file.
    pub(crate) fn finish(mut self) -> Result<SstSummary> {
        self.flush_data_block()?;
        let filter = match self.bloom.take() {
            Some(b) => {
                let bytes = b.finish();
                self.store_block(&bytes, COMPRESSION_NONE)?
            }
            None => BlockHandle::default(),
        };
        let index_bytes = self.index_block.finish();
        let index = self.store_block(&index_bytes, COMPRESSION_NONE)?;
        let largest = if self.entries == 0 {
            Vec::new()
        } else {
            self.last_key.clone()
        };
        let props = SstProperties {
            entries: self.entries,
            smallest: self.smallest.clone(),
            largest: largest.clone(),
            raw_key_bytes: self.raw_key_bytes,
            raw_value_bytes: self.raw_value_bytes,
            data_blocks: self.data_blocks,
        }
        .encode();
        let properties = self.store_block(&props, COMPRESSION_NONE)?;
        let footer = Footer {
            index,
            filter,
            properties,
        }
        .encode();
        self.pending.extend_from_slice(&footer);
        self.write_pending()?;
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing {}", self.path.display()), e))?;
        Ok(SstSummary {
            file_size: self.written,
            entries: self.entries,
            smallest: std::mem::take(&mut self.smallest),
            largest,
        })
    }
}
