//! The bytes of an SSTable (format version 1), encoded and decoded here:
//! block handles, the stored-block trailer, the properties block and the
//! footer. Key/value blocks are in `block.rs`, the filter in `bloom.rs`.
//!
//! # File format (version 1)
//!
//! All integers are little-endian unless said otherwise; `varint` is LEB128
//! (unsigned, at most 10 bytes, see `crate::coding`).
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
//! `ikey::compare` order.
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
//! A bloom filter over the *user part* (`ikey::user_part`:
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
//! `Error::Corruption` naming the file and the byte offset of the
//! damaged footer or block (never a panic, never an allocation larger than
//! the file, or than 64 MiB for a decompressed block).

use crate::coding::{put_length_prefixed, put_varint, Reader};

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

/// Appends `payload` as a stored block (payload, `kind` byte, crc32 of both)
/// to `out`; returns the block's handle, given that `out` starts at file
/// offset `base`.
pub(crate) fn put_stored_block(
    out: &mut Vec<u8>,
    base: u64,
    payload: &[u8],
    kind: u8,
) -> BlockHandle {
    let handle = BlockHandle {
        offset: base + out.len() as u64,
        size: payload.len() as u64,
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(payload);
    crc.update(&[kind]);
    out.extend_from_slice(payload);
    out.push(kind);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    handle
}

/// Checks a stored block read whole (`payload | kind | crc32`) and returns
/// its payload, decompressed; the error says what is wrong.
pub(crate) fn unpack_stored_block(mut stored: Vec<u8>) -> Result<Vec<u8>, String> {
    let Some(n) = stored.len().checked_sub(BLOCK_TRAILER_LEN) else {
        return Err(format!("{} bytes is too short for a block", stored.len()));
    };
    let kind = stored[n];
    let crc = u32::from_le_bytes([stored[n + 1], stored[n + 2], stored[n + 3], stored[n + 4]]);
    let actual = crc32fast::hash(&stored[..n + 1]);
    if crc != actual {
        return Err(format!(
            "checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
        ));
    }
    stored.truncate(n);
    match kind {
        COMPRESSION_NONE => {
            if n as u64 > MAX_BLOCK_SIZE {
                return Err(format!("{n} bytes is too large"));
            }
            Ok(stored)
        }
        COMPRESSION_ZSTD => {
            let size = match zstd::zstd_safe::get_frame_content_size(&stored) {
                Ok(Some(s)) => s,
                _ => return Err("zstd frame without a content size".to_owned()),
            };
            if size > MAX_BLOCK_SIZE {
                return Err(format!("decompresses to {size} bytes (over the limit)"));
            }
            let out =
                zstd::bulk::decompress(&stored, size as usize).map_err(|e| format!("zstd: {e}"))?;
            if out.len() as u64 != size {
                return Err(format!(
                    "decompressed to {} bytes, frame says {size}",
                    out.len()
                ));
            }
            Ok(out)
        }
        k => Err(format!("unknown compression type {k}")),
    }
}

/// The footer: where the index, filter and properties blocks are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Footer {
    pub(crate) index: BlockHandle,
    /// `(0, 0)` when the table has no filter.
    pub(crate) filter: BlockHandle,
    pub(crate) properties: BlockHandle,
}

impl Footer {
    /// The footer's [`FOOTER_LEN`] bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(FOOTER_LEN);
        for h in [self.index, self.filter, self.properties] {
            b.extend_from_slice(&h.offset.to_le_bytes());
            b.extend_from_slice(&h.size.to_le_bytes());
        }
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(b.len(), FOOTER_LEN);
        b
    }

    /// A footer made of the first [`FOOTER_LEN`] − 4 bytes of `body` (padded
    /// with zeros) and their checksum, whatever they hold (the fuzz entry
    /// points use it to get past the checksum).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn with_checksum(body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        b.resize(FOOTER_LEN - 4, 0);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes exactly [`FOOTER_LEN`] bytes: checksum, magic and version
    /// checked, in that order (the handles are checked against the file by
    /// the reader).
    pub(crate) fn decode(b: &[u8]) -> Result<Footer, String> {
        if b.len() != FOOTER_LEN {
            return Err(format!("{} bytes, not {FOOTER_LEN}", b.len()));
        }
        let mut r = Reader::new(b);
        let mut handle = || -> Option<BlockHandle> {
            Some(BlockHandle {
                offset: r.u64()?,
                size: r.u64()?,
            })
        };
        let short = || "short".to_owned();
        let index = handle().ok_or_else(short)?;
        let filter = handle().ok_or_else(short)?;
        let properties = handle().ok_or_else(short)?;
        let version = r.u32().ok_or_else(short)?;
        let magic = r.u64().ok_or_else(short)?;
        let crc = r.u32().ok_or_else(short)?;
        if crc != crc32fast::hash(&b[..FOOTER_LEN - 4]) {
            return Err("checksum mismatch".to_owned());
        }
        if magic != TABLE_MAGIC {
            return Err(format!("bad magic {magic:#018x}"));
        }
        if version != FORMAT_VERSION {
            return Err(format!("unsupported format version {version}"));
        }
        Ok(Footer {
            index,
            filter,
            properties,
        })
    }
}

/// The statistics recorded in a table's properties block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SstProperties {
    pub entries: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub raw_key_bytes: u64,
    pub raw_value_bytes: u64,
    pub data_blocks: u64,
}

impl SstProperties {
    /// The properties block's payload.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_varint(&mut b, self.entries);
        put_length_prefixed(&mut b, &self.smallest);
        put_length_prefixed(&mut b, &self.largest);
        put_varint(&mut b, self.raw_key_bytes);
        put_varint(&mut b, self.raw_value_bytes);
        put_varint(&mut b, self.data_blocks);
        b
    }

    /// Decodes a payload that must hold exactly one properties record.
    pub(crate) fn decode(src: &[u8]) -> Option<SstProperties> {
        let mut r = Reader::new(src);
        let p = SstProperties {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_refuses_damage() {
        let f = Footer {
            index: BlockHandle {
                offset: 10,
                size: 20,
            },
            filter: BlockHandle::default(),
            properties: BlockHandle {
                offset: u64::MAX,
                size: 7,
            },
        };
        let b = f.encode();
        assert_eq!(b.len(), FOOTER_LEN);
        assert_eq!(Footer::decode(&b), Ok(f));
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 1;
            assert!(Footer::decode(&d).is_err(), "byte {i}");
        }
        assert!(Footer::decode(&b[1..]).is_err());
    }

    #[test]
    fn stored_blocks_round_trip_and_refuse_damage() {
        let mut out = vec![9u8; 3];
        let h = put_stored_block(&mut out, 100, b"payload", COMPRESSION_NONE);
        assert_eq!(
            h,
            BlockHandle {
                offset: 103,
                size: 7
            }
        );
        let stored = out[3..].to_vec();
        assert_eq!(unpack_stored_block(stored.clone()).unwrap(), b"payload");
        for i in 0..stored.len() {
            let mut d = stored.clone();
            d[i] ^= 0x40;
            assert!(unpack_stored_block(d).is_err(), "byte {i}");
        }
        assert!(unpack_stored_block(vec![1, 2]).is_err());
        let packed = zstd::bulk::compress(&[7u8; 4096], 3).unwrap();
        let mut z = Vec::new();
        put_stored_block(&mut z, 0, &packed, COMPRESSION_ZSTD);
        assert_eq!(unpack_stored_block(z).unwrap(), vec![7u8; 4096]);
    }

    #[test]
    fn properties_round_trip() {
        let p = SstProperties {
            entries: 3,
            smallest: b"a".to_vec(),
            largest: b"zz".to_vec(),
            raw_key_bytes: 9,
            raw_value_bytes: 1 << 40,
            data_blocks: 1,
        };
        assert_eq!(SstProperties::decode(&p.encode()), Some(p.clone()));
        let mut long = p.encode();
        long.push(0);
        assert_eq!(SstProperties::decode(&long), None);
    }
}
