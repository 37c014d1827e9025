//! SSTables: sorted, immutable, checksummed files of internal keys.
//!
//! An SSTable holds internal keys (see [`crate::lsm::ikey`]) in
//! [`crate::lsm::ikey::compare`] order, each with an opaque value (for
//! WiscKey, usually an encoded value pointer). It is written once by
//! [`TableBuilder`] and then read by [`Table`] through positioned reads.
//!
//! # File format (version 1)
//!
//! All integers are little-endian unless said otherwise; `varint` is LEB128
//! (unsigned, at most 10 bytes, see [`crate::coding`]).
//!
//! ```text
//! file    = data block* | filter block? | index block | properties block | footer
//! ```
//!
//! Every block (data, filter, index, properties) is stored as
//!
//! ```text
//! stored block = payload bytes | compression type u8 | crc32 u32
//! ```
//!
//! where the compression type is 0 (none) or 1 (zstd: the payload is one
//! zstd frame that records its decompressed size, at most 64 MiB), and the crc
//! is crc32 (IEEE, `crc32fast`) over the stored payload bytes followed by the
//! type byte. A *block handle* names a stored block by the offset of its
//! first payload byte and the payload size, *excluding* the 5-byte trailer.
//! Only data blocks are ever compressed, and only when that makes them
//! smaller; the other blocks are written with type 0 (a reader accepts
//! either type for any block).
//!
//! ## Data block and index block
//!
//! A key/value block, once decompressed:
//!
//! ```text
//! block   = entry* | restart offset u32 * num_restarts | num_restarts u32
//! entry   = shared_len varint | unshared_len varint | value_len varint
//!           | key bytes [shared_len..shared_len+unshared_len] | value bytes
//! ```
//!
//! Each key is prefix-compressed against the previous key of the block: it is
//! the first `shared_len` bytes of the previous key followed by the
//! `unshared_len` stored bytes. Every `restart_interval`-th entry (default
//! 16), starting with the first, is a *restart point*: it stores its whole
//! key (`shared_len` = 0) and its offset from the block start is listed in
//! the restart array (strictly increasing, the first one 0). An empty block
//! has no entries and `num_restarts` = 0. Entries are in strictly increasing
//! [`crate::lsm::ikey::compare`] order.
//!
//! A data block is cut once its encoded size reaches `block_size` (default
//! 4096 bytes), so it may exceed that by one entry.
//!
//! The index block has the same layout (and the same restart interval), with
//! one entry per data block, in file order: the key is the last internal key
//! of that data block (not shortened) and the value is the block's handle,
//! `offset varint | size varint`.
//!
//! ## Filter block
//!
//! A bloom filter over the *user part* ([`crate::lsm::ikey::user_part`]:
//! table id + user key) of every key in the table:
//!
//! ```text
//! filter  = bit array (m bytes, m >= 8) | k u8 (1..=30)
//! ```
//!
//! With `n` distinct user parts and `b` bits per key, the array holds
//! `max(64, n * b)` bits rounded up to whole bytes (`nbits = 8 * m`), and
//! `k = round(b * ln 2)` clamped to `1..=30`. For a user part `u`, let
//! `h = xxh3_64(u)`, `h1 = h & 0xffff_ffff`, `h2 = h >> 32`; probe `i` (for
//! `i` in `0..k`) tests bit `(h1 + i * h2) mod nbits` (computed in u64), where
//! bit `j` is bit `j % 8` (least significant first) of byte `j / 8`.
//! `bloom_bits_per_key` = 0 writes no filter block: the footer's filter
//! handle is then `(0, 0)` and every lookup must read the data.
//!
//! ## Properties block
//!
//! ```text
//! properties = entries varint | smallest key (varint length | bytes)
//!              | largest key (varint length | bytes) | raw key bytes varint
//!              | raw value bytes varint | data block count varint
//! ```
//!
//! `smallest` and `largest` are the first and last internal keys (both empty
//! for a table with no entries); the raw byte counts are the sums of the
//! uncompressed key and value lengths. The record must fill the block exactly.
//!
//! ## Footer
//!
//! The last 64 bytes of the file, uncompressed, without a block trailer:
//!
//! ```text
//! footer = index offset u64 | index size u64
//!        | filter offset u64 | filter size u64
//!        | properties offset u64 | properties size u64
//!        | format version u32 (= 1) | magic u64 (0x5749_5343_5353_5431, "WISCSST1")
//!        | crc32 u32 over the 60 footer bytes before it
//! ```
//!
//! Every handle (with its trailer) must lie wholly before the footer, and
//! every data block wholly before the first of the filter, index and
//! properties blocks (a filter handle of size 0 means "no filter" and is not
//! checked).
//!
//! ## Damage
//!
//! Every decoder checks lengths, offsets, restart arrays, varints, crcs,
//! zstd frames and decompressed sizes; anything out of place is reported as
//! [`crate::Error::Corruption`] naming the file and the byte offset of the
//! damaged footer or block (never a panic, never an allocation larger than
//! the file, or than 64 MiB for a decompressed block).

#![allow(dead_code)]

mod block;
mod bloom;
mod builder;
mod table;

#[allow(unused_imports)]
pub(crate) use builder::{Compression, TableBuilder, TableBuilderOptions, TableSummary};
#[allow(unused_imports)]
pub(crate) use table::{Table, TableIter, TableProperties};

/// Size of the trailer after every stored block: compression type + crc32.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;
/// Size of the footer at the end of every table file.
pub(crate) const FOOTER_LEN: usize = 64;
/// The format version written in the footer.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The footer magic number ("WISCSST1").
pub(crate) const TABLE_MAGIC: u64 = 0x5749_5343_5353_5431;
/// The largest decompressed block a reader accepts.
pub(crate) const MAX_BLOCK_SIZE: u64 = 64 << 20;

/// Compression type byte: stored as is.
pub(crate) const COMPRESSION_NONE: u8 = 0;
/// Compression type byte: one zstd frame.
pub(crate) const COMPRESSION_ZSTD: u8 = 1;

/// Where a stored block lives: offset of its payload, payload size (without
/// the trailer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

impl BlockHandle {
    /// The offset just past the block's trailer, or `None` on overflow.
    pub(crate) fn end(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size)?
            .checked_add(BLOCK_TRAILER_LEN as u64)
    }

    pub(crate) fn encode_varint(&self, buf: &mut Vec<u8>) {
        crate::coding::put_varint(buf, self.offset);
        crate::coding::put_varint(buf, self.size);
    }

    /// Decodes `offset varint | size varint` filling `src` exactly.
    pub(crate) fn decode_varint(src: &[u8]) -> Option<BlockHandle> {
        let mut r = crate::coding::Reader::new(src);
        let offset = r.varint()?;
        let size = r.varint()?;
        if !r.is_empty() {
            return None;
        }
        Some(BlockHandle { offset, size })
    }
}
