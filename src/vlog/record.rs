//! The vLog record and the value pointer: the bytes of one write in the log.
//!
//! ```text
//! record  = flags u8 | table id u32 | seq u64 | key_len u32 | value_len u32 | key | value | crc32 u32
//! flags   = bit 0: put (1) or delete (0); bit 1: the value is stored
//!           compressed (see `compress.rs`); bit 5: a range delete (key: the
//!           range's start, value: its end, see `lsm::range_del`; never with
//!           bit 0); bit 7: more records of the same batch follow
//! crc32   = CRC-32 (IEEE polynomial, crc32fast) over everything before it
//! ```
//!
//! All integers are little-endian. A batch is written as consecutive records,
//! each but the last carrying the continuation bit, so recovery can apply a
//! batch whole or not at all.

use crate::coding::{put_varint, Reader};

/// Bytes before the key: flags, table id, sequence number, two lengths.
pub(crate) const HEADER_LEN: usize = 1 + 4 + 8 + 4 + 4;
/// Bytes after the value: the checksum.
pub(crate) const TRAILER_LEN: usize = 4;

const FLAG_PUT: u8 = 1;
/// The value field is a compressed value's stored form (database format 2).
const FLAG_COMPRESSED: u8 = 2;
/// A range delete: the key is the range's start, the value its end.
pub(crate) const FLAG_RANGE_DELETE: u8 = 0x20;
const FLAG_CONTINUES: u8 = 0x80;
const KNOWN_FLAGS: u8 = FLAG_PUT | FLAG_COMPRESSED | FLAG_RANGE_DELETE | FLAG_CONTINUES;

/// Where a value lives: a record in a vLog segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ValuePointer {
    /// The segment's file number.
    pub(crate) segment: u64,
    /// Byte offset of the record in the segment.
    pub(crate) offset: u64,
    /// Length of the whole record (header, key, value, checksum).
    pub(crate) len: u32,
    /// The value's raw (uncompressed) length when the record stores it
    /// compressed; `None` when the stored value is the value.
    pub(crate) raw_len: Option<u32>,
}

impl ValuePointer {
    /// A pointer to a record that stores its value as it is.
    #[cfg(test)]
    pub(crate) fn raw(segment: u64, offset: u64, len: u32) -> ValuePointer {
        ValuePointer {
            segment,
            offset,
            len,
            raw_len: None,
        }
    }

    /// The raw (uncompressed) length of the value of the record this
    /// pointer names, whose key is `key_len` bytes: the fourth varint when
    /// the value is stored compressed, else what the record's length leaves
    /// for it. Never reads the vLog.
    pub(crate) fn value_len(&self, key_len: usize) -> u32 {
        match self.raw_len {
            Some(n) => n,
            None => self
                .len
                .saturating_sub((HEADER_LEN + TRAILER_LEN) as u32)
                .saturating_sub(u32::try_from(key_len).unwrap_or(u32::MAX)),
        }
    }

    /// Appends the pointer's encoding (three varints, and a fourth, the raw
    /// value length, when the value is stored compressed).
    pub(crate) fn encode_to(&self, buf: &mut Vec<u8>) {
        put_varint(buf, self.segment);
        put_varint(buf, self.offset);
        put_varint(buf, u64::from(self.len));
        if let Some(n) = self.raw_len {
            put_varint(buf, u64::from(n));
        }
    }

    /// The pointer's encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        self.encode_to(&mut b);
        b
    }

    /// Decodes a pointer; `None` when the bytes are not exactly one pointer
    /// (three varints, or four for a compressed value).
    pub(crate) fn decode(bytes: &[u8]) -> Option<ValuePointer> {
        let mut r = Reader::new(bytes);
        let segment = r.varint()?;
        let offset = r.varint()?;
        let len = u32::try_from(r.varint()?).ok()?;
        let raw_len = if r.is_empty() {
            None
        } else {
            Some(u32::try_from(r.varint()?).ok()?)
        };
        if !r.is_empty() || (len as usize) < HEADER_LEN + TRAILER_LEN {
            return None;
        }
        Some(ValuePointer {
            segment,
            offset,
            len,
            raw_len,
        })
    }
}

/// The fixed-size header of a record, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) is_put: bool,
    /// A range delete (never a put).
    pub(crate) is_range_delete: bool,
    /// The value field holds a compressed value's stored form.
    pub(crate) compressed: bool,
    pub(crate) continues: bool,
    pub(crate) table: u32,
    pub(crate) seq: u64,
    pub(crate) key_len: u32,
    pub(crate) value_len: u32,
}

impl Header {
    /// Length of the whole record this header starts.
    pub(crate) fn record_len(&self) -> u64 {
        (HEADER_LEN + TRAILER_LEN) as u64 + u64::from(self.key_len) + u64::from(self.value_len)
    }

    /// Decodes a header from the first [`HEADER_LEN`] bytes; `None` when too
    /// short or when unknown flag bits are set.
    pub(crate) fn decode(b: &[u8]) -> Option<Header> {
        let mut r = Reader::new(b.get(..HEADER_LEN)?);
        let flags = r.u8()?;
        // Only a put has a value to compress; a range delete is never a put.
        if flags & !KNOWN_FLAGS != 0
            || flags & (FLAG_PUT | FLAG_COMPRESSED) == FLAG_COMPRESSED
            || flags & (FLAG_PUT | FLAG_RANGE_DELETE) == FLAG_PUT | FLAG_RANGE_DELETE
        {
            return None;
        }
        let table = r.u32()?;
        let seq = r.u64()?;
        let key_len = r.u32()?;
        let value_len = r.u32()?;
        Some(Header {
            is_put: flags & FLAG_PUT != 0,
            is_range_delete: flags & FLAG_RANGE_DELETE != 0,
            compressed: flags & FLAG_COMPRESSED != 0,
            continues: flags & FLAG_CONTINUES != 0,
            table,
            seq,
            key_len,
            value_len,
        })
    }
}

/// Length of the record for a key and value of these sizes.
pub(crate) fn record_len(key_len: usize, value_len: usize) -> usize {
    HEADER_LEN + key_len + value_len + TRAILER_LEN
}

/// Appends one record to `buf`; returns its offset within `buf`.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    is_put: bool,
    continues: bool,
    table: u32,
    seq: u64,
    key: &[u8],
    value: &[u8],
) -> usize {
    encode_stored(buf, is_put, false, continues, table, seq, key, value)
}

/// [`encode`], with the compressed flag set when `compressed` (then `value`
/// is a compressed value's stored form, and `is_put` must be true).
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_stored(
    buf: &mut Vec<u8>,
    is_put: bool,
    compressed: bool,
    continues: bool,
    table: u32,
    seq: u64,
    key: &[u8],
    value: &[u8],
) -> usize {
    let start = buf.len();
    let mut flags = 0u8;
    if is_put {
        flags |= FLAG_PUT;
    }
    if compressed && is_put {
        flags |= FLAG_COMPRESSED;
    }
    if continues {
        flags |= FLAG_CONTINUES;
    }
    buf.reserve(record_len(key.len(), value.len()));
    buf.push(flags);
    buf.extend_from_slice(&table.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(value);
    let crc = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(&crc.to_le_bytes());
    start
}

/// Appends a record with sequence number 0, no batch flag and no checksum
/// yet (see [`seal`]); returns its offset within `buf`. `compressed` (for a
/// put only) says `value` is a compressed value's stored form.
pub(crate) fn encode_unsealed(
    buf: &mut Vec<u8>,
    is_put: bool,
    compressed: bool,
    table: u32,
    key: &[u8],
    value: &[u8],
) -> usize {
    let start = buf.len();
    buf.reserve(record_len(key.len(), value.len()));
    buf.push(match (is_put, compressed) {
        (true, true) => FLAG_PUT | FLAG_COMPRESSED,
        (true, false) => FLAG_PUT,
        (false, _) => 0,
    });
    buf.extend_from_slice(&table.to_le_bytes());
    buf.extend_from_slice(&0u64.to_le_bytes());
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(value);
    buf.extend_from_slice(&[0; TRAILER_LEN]);
    start
}

/// Fills in the sequence number, the batch flag and the checksum of the
/// record `rec` (exactly one record, as [`encode_unsealed`] wrote it).
#[inline]
pub(crate) fn seal(rec: &mut [u8], seq: u64, continues: bool) {
    if continues {
        rec[0] |= FLAG_CONTINUES;
    } else {
        rec[0] &= !FLAG_CONTINUES;
    }
    rec[5..13].copy_from_slice(&seq.to_le_bytes());
    let body = rec.len() - TRAILER_LEN;
    let crc = crc32fast::hash(&rec[..body]);
    rec[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes the checksum of the record at the start of `buf`, if its
/// header's lengths fit in `buf` (the fuzz entry points use it to get past
/// the checksum). Returns whether it did.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn fix_checksum(buf: &mut [u8]) -> bool {
    let Some(h) = Header::decode(buf) else {
        return false;
    };
    let len = h.record_len();
    if len > buf.len() as u64 {
        return false;
    }
    let body = len as usize - TRAILER_LEN;
    let crc = crc32fast::hash(&buf[..body]);
    buf[body..body + TRAILER_LEN].copy_from_slice(&crc.to_le_bytes());
    true
}

/// A whole record, checked and decoded, borrowing from the bytes it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub(crate) header: Header,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes than the header or the lengths it declares.
    Short,
    /// Unknown flags, or lengths that disagree with the record's size.
    Malformed,
    /// The checksum does not match.
    Checksum,
}

impl DecodeError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            DecodeError::Short => "record is cut short",
            DecodeError::Malformed => "record header is malformed",
            DecodeError::Checksum => "record checksum mismatch",
        }
    }
}

/// Decodes the record at the front of `b` and checks its checksum. Bytes past
/// the record are ignored; the record's length is `header.record_len()`.
pub(crate) fn decode(b: &[u8]) -> Result<Record<'_>, DecodeError> {
    decode_checked(b, true)
}

/// [`decode`], checking the checksum only when `verify` (a read with
/// `ReadOptions::verify_checksums(false)`: the header, the lengths, and
/// the table and key the caller compares, are still checked).
pub(crate) fn decode_checked(b: &[u8], verify: bool) -> Result<Record<'_>, DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::Short);
    }
    let header = Header::decode(b).ok_or(DecodeError::Malformed)?;
    let len = header.record_len();
    if (b.len() as u64) < len {
        return Err(DecodeError::Short);
    }
    let len = len as usize;
    let body = &b[..len - TRAILER_LEN];
    let stored = u32::from_le_bytes([b[len - 4], b[len - 3], b[len - 2], b[len - 1]]);
    if verify && crc32fast::hash(body) != stored {
        return Err(DecodeError::Checksum);
    }
    let key_end = HEADER_LEN + header.key_len as usize;
    Ok(Record {
        header,
        key: &b[HEADER_LEN..key_end],
        value: &b[key_end..len - TRAILER_LEN],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        let a = encode(&mut buf, true, true, 7, 42, b"key", b"value");
        let b = encode(&mut buf, false, false, 0, 43, b"gone", b"");
        let r = decode(&buf[a..]).unwrap();
        assert!(r.header.is_put && r.header.continues);
        assert_eq!(
            (r.header.table, r.header.seq, r.key, r.value),
            (7, 42, &b"key"[..], &b"value"[..])
        );
        assert_eq!(r.header.record_len() as usize, b);
        let r = decode(&buf[b..]).unwrap();
        assert!(!r.header.is_put && !r.header.continues);
        assert_eq!(r.key, b"gone");
        assert_eq!(r.value, b"");
        assert_eq!(decode(&buf[b..buf.len() - 1]), Err(DecodeError::Short));
        let mut bad = buf.clone();
        bad[b + HEADER_LEN] ^= 1;
        assert_eq!(decode(&bad[b..]), Err(DecodeError::Checksum));
        bad[b] = 0x40;
        assert_eq!(decode(&bad[b..]), Err(DecodeError::Malformed));
        // A delete cannot be compressed.
        bad[b] = FLAG_COMPRESSED;
        assert_eq!(decode(&bad[b..]), Err(DecodeError::Malformed));
        let mut c = Vec::new();
        encode_stored(&mut c, true, true, false, 1, 2, b"k", b"stored");
        let r = decode(&c).unwrap();
        assert!(r.header.compressed && r.header.is_put);
        assert_eq!(r.value, b"stored");
    }

    #[test]
    fn sealed_records_equal_encoded_ones() {
        let mut a = Vec::new();
        encode(&mut a, true, true, 3, 99, b"k", b"value");
        encode(&mut a, false, false, 3, 100, b"gone", b"");
        let mut b = Vec::new();
        let x = encode_unsealed(&mut b, true, false, 3, b"k", b"value");
        let y = encode_unsealed(&mut b, false, false, 3, b"gone", b"");
        let (first, second) = b.split_at_mut(y);
        seal(&mut first[x..], 99, true);
        seal(second, 100, false);
        assert_eq!(a, b);
    }

    #[test]
    fn pointer_round_trip() {
        let p = ValuePointer::raw(3, 1 << 40, 4096);
        assert_eq!(ValuePointer::decode(&p.encode()), Some(p));
        assert_eq!(p.value_len(10), 4096 - 25 - 10);
        let c = ValuePointer {
            raw_len: Some(70_000),
            ..p
        };
        assert_eq!(ValuePointer::decode(&c.encode()), Some(c));
        assert_eq!(c.value_len(10), 70_000);
        let mut extra = c.encode();
        extra.push(0);
        assert_eq!(ValuePointer::decode(&extra), None);
        assert_eq!(ValuePointer::decode(&[1, 2, 3]), None);
        // A fourth varint past u32 is not a length.
        let mut big = p.encode();
        crate::coding::put_varint(&mut big, 1 << 33);
        assert_eq!(ValuePointer::decode(&big), None);
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let _ = ValuePointer::decode(&bytes);
        }

        #[test]
        fn any_single_bit_flip_is_caught(key in proptest::collection::vec(any::<u8>(), 0..40),
                                         value in proptest::collection::vec(any::<u8>(), 0..100),
                                         bit in any::<usize>()) {
            let mut buf = Vec::new();
            encode(&mut buf, true, false, 1, 9, &key, &value);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&buf).is_err());
        }
    }
}
