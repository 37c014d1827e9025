//! Hint files: for a sealed vLog segment, the records of unordered tables it
//! holds (where each one is, its key and sequence number), so that opening a
//! database rebuilds the keydirs without reading the values (Bitcask's
//! hints).
//!
//! ```text
//! hint   = magic "WKHINT\0\x01" | segment u64 | segment_len u64 | count u32
//!          | entry * count | crc32 u32
//! entry  = flags u8 (bit 0: put, bit 1: compressed) | table u32 | seq u64
//!          | offset varint | len varint | key_len varint
//!          | raw_len varint (only with bit 1) | key
//! ```
//!
//! Integers are little-endian; the CRC-32 (IEEE, as in vLog records) covers
//! every byte before it. `segment_len` is the length of the segment the hint
//! describes: a hint whose segment is no longer that long (cut by recovery)
//! does not describe it and is not used. A hint is derived data: one that is
//! missing or damaged costs a scan of its segment, never data.

use crate::coding::{put_varint, Reader};
use crate::error::{Error, Result};
use crate::io::Fs;
use crate::vlog::record::{self, ValuePointer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"WKHINT\0\x01";
const HEADER_LEN: usize = 8 + 8 + 8 + 4;

/// One record of an unordered table, as a hint lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HintEntry {
    pub(crate) put: bool,
    pub(crate) table: u32,
    pub(crate) seq: u64,
    /// Offset of the record in its segment.
    pub(crate) offset: u64,
    /// Length of the whole record.
    pub(crate) len: u32,
    /// The value's raw length when the record stores it compressed.
    pub(crate) raw_len: Option<u32>,
    pub(crate) key: Vec<u8>,
}

impl HintEntry {
    /// Where the record is, given its segment.
    pub(crate) fn pointer(&self, segment: u64) -> ValuePointer {
        ValuePointer {
            segment,
            offset: self.offset,
            len: self.len,
            raw_len: self.raw_len,
        }
    }
}

/// A decoded hint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hint {
    pub(crate) segment: u64,
    pub(crate) segment_len: u64,
    pub(crate) entries: Vec<HintEntry>,
}

/// Encodes a hint for `segment` of `segment_len` bytes.
pub(crate) fn encode(segment: u64, segment_len: u64, entries: &[HintEntry]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(
        HEADER_LEN + 4 + entries.iter().map(|e| 24 + e.key.len()).sum::<usize>(),
    );
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&segment.to_le_bytes());
    buf.extend_from_slice(&segment_len.to_le_bytes());
    buf.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        buf.push(u8::from(e.put) | if e.raw_len.is_some() { 2 } else { 0 });
        buf.extend_from_slice(&e.table.to_le_bytes());
        buf.extend_from_slice(&e.seq.to_le_bytes());
        put_varint(&mut buf, e.offset);
        put_varint(&mut buf, u64::from(e.len));
        put_varint(&mut buf, e.key.len() as u64);
        if let Some(n) = e.raw_len {
            put_varint(&mut buf, u64::from(n));
        }
        buf.extend_from_slice(&e.key);
    }
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// Bytes of the checksum at the end of a hint file.
#[cfg(any(test, feature = "testing"))]
pub(crate) const CHECKSUM_LEN: usize = 4;

/// `body` with the checksum a hint file ends with appended (the fuzz entry
/// points use it to get past the checksum).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn with_checksum(body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    b.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    b
}

/// One entry of a [`RawHint`]: its key is a range of the file's bytes.
#[derive(Debug, Clone, Copy)]
struct RawEntry {
    seq: u64,
    offset: u64,
    key_at: usize,
    table: u32,
    len: u32,
    key_len: u32,
    /// 0: stored as it is (a compressed value is never empty).
    raw_len: u32,
    put: bool,
}

/// A decoded hint file whose keys stay in the file's bytes: one allocation
/// for the bytes and one for the entries, however many keys (an open reads
/// millions of them, and copies each key once, into the keydir).
#[derive(Debug, Clone)]
pub(crate) struct RawHint {
    /// The segment it describes.
    pub(crate) segment: u64,
    /// The length of that segment when the hint was written.
    pub(crate) segment_len: u64,
    bytes: Vec<u8>,
    entries: Vec<RawEntry>,
}

/// One entry of a [`RawHint`], its key borrowed from the hint's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HintRef<'a> {
    pub(crate) put: bool,
    pub(crate) table: u32,
    pub(crate) seq: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) raw_len: Option<u32>,
    pub(crate) key: &'a [u8],
}

impl HintRef<'_> {
    /// Where the record is, given its segment.
    pub(crate) fn pointer(&self, segment: u64) -> ValuePointer {
        ValuePointer {
            segment,
            offset: self.offset,
            len: self.len,
            raw_len: self.raw_len,
        }
    }
}

impl RawHint {
    /// The entries, in file order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = HintRef<'_>> + '_ {
        self.entries.iter().map(|e| HintRef {
            put: e.put,
            table: e.table,
            seq: e.seq,
            offset: e.offset,
            len: e.len,
            raw_len: (e.raw_len != 0).then_some(e.raw_len),
            // Every range was checked against the bytes by `decode_raw`.
            key: self
                .bytes
                .get(e.key_at..e.key_at + e.key_len as usize)
                .unwrap_or_default(),
        })
    }

    /// The entries as [`HintEntry`]s, each key copied out.
    pub(crate) fn to_entries(&self) -> Vec<HintEntry> {
        self.iter()
            .map(|e| HintEntry {
                put: e.put,
                table: e.table,
                seq: e.seq,
                offset: e.offset,
                len: e.len,
                raw_len: e.raw_len,
                key: e.key.to_vec(),
            })
            .collect()
    }
}

/// Decodes the hint file `path` (its bytes in `b`); `Error::Corruption`
/// naming the file and offset for anything but a well-formed hint whose
/// entries all lie inside the segment it describes.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn decode(path: &Path, b: &[u8]) -> Result<Hint> {
    let raw = decode_raw(path, b.to_vec())?;
    Ok(Hint {
        segment: raw.segment,
        segment_len: raw.segment_len,
        entries: raw.to_entries(),
    })
}

/// [`decode`], keeping the keys in the file's bytes `b`.
pub(crate) fn decode_raw(path: &Path, b: Vec<u8>) -> Result<RawHint> {
    let bad = |at: usize, why: &str| Error::corruption(path, at as u64, why.to_string());
    if b.len() < HEADER_LEN + 4 {
        return Err(bad(0, "hint file is shorter than its header"));
    }
    if &b[..8] != MAGIC {
        return Err(bad(0, "not a hint file (bad magic)"));
    }
    let body = b.len() - 4;
    let stored = u32::from_le_bytes(b[body..].try_into().expect("4 bytes"));
    if crc32fast::hash(&b[..body]) != stored {
        return Err(bad(body, "hint file checksum mismatch"));
    }
    let mut r = Reader::new(&b[8..body]);
    let segment = r.u64().ok_or_else(|| bad(8, "truncated header"))?;
    let segment_len = r.u64().ok_or_else(|| bad(16, "truncated header"))?;
    let count = r.u32().ok_or_else(|| bad(24, "truncated header"))?;
    // Each entry takes at least 16 bytes: a hostile count cannot make us
    // reserve more than the file could hold.
    let mut entries = Vec::with_capacity((count as usize).min((body - HEADER_LEN) / 16));
    let min_len = record::record_len(0, 0) as u64;
    for _ in 0..count {
        let at = 8 + r.pos();
        let truncated = || bad(at, "hint entry is cut short");
        let flags = r.u8().ok_or_else(truncated)?;
        if flags > 3 || flags == 2 {
            return Err(bad(at, "hint entry has unknown flags"));
        }
        let table = r.u32().ok_or_else(truncated)?;
        let seq = r.u64().ok_or_else(truncated)?;
        if seq >= 1 << 56 {
            return Err(bad(at, "hint entry's sequence number is past 2^56 - 1"));
        }
        let offset = r.varint().ok_or_else(truncated)?;
        let len = r.varint().ok_or_else(truncated)?;
        let key_len = r.varint().ok_or_else(truncated)?;
        let key_len = usize::try_from(key_len).map_err(|_| truncated())?;
        let raw_len = if flags & 2 != 0 {
            match r.varint().map(u32::try_from) {
                Some(Ok(n)) if n > 0 => n,
                _ => return Err(bad(at, "hint entry has a bad raw value length")),
            }
        } else {
            0
        };
        let key_at = 8 + r.pos();
        r.bytes(key_len).ok_or_else(truncated)?;
        let len = u32::try_from(len).map_err(|_| bad(at, "hint entry length is too large"))?;
        if u64::from(len) < min_len + key_len as u64 {
            return Err(bad(at, "hint entry is shorter than its record could be"));
        }
        if offset
            .checked_add(u64::from(len))
            .is_none_or(|end| end > segment_len)
        {
            return Err(bad(at, "hint entry lies past the end of its segment"));
        }
        entries.push(RawEntry {
            seq,
            offset,
            key_at,
            table,
            len,
            // Below `len`, a u32, by the check above.
            key_len: key_len as u32,
            raw_len,
            put: flags & 1 == 1,
        });
    }
    if !r.is_empty() {
        return Err(bad(8 + r.pos(), "trailing bytes after the hint entries"));
    }
    Ok(RawHint {
        segment,
        segment_len,
        bytes: b,
        entries,
    })
}

/// Writes the hint of `segment` (temp file, data sync, rename). The
/// directory is not synced: a hint lost to a power cut only costs a scan.
pub(crate) fn write(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    segment: u64,
    segment_len: u64,
    entries: &[HintEntry],
) -> Result<PathBuf> {
    let path = dir.join(crate::files::hint(segment));
    let tmp = dir.join(crate::files::temp(&crate::files::hint(segment)));
    let bytes = encode(segment, segment_len, entries);
    let r = (|| {
        let f = fs.create(&tmp)?;
        f.write_all_at(&bytes, 0)?;
        f.sync_data()?;
        drop(f);
        fs.rename(&tmp, &path)
    })();
    if let Err(e) = r {
        let _ = fs.remove(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(path)
}

/// Removes the hint of `segment`, if there is one (GC retired the
/// segment). A failure is only logged: the next open removes a hint whose
/// segment is gone.
pub(crate) fn remove(fs: &Arc<dyn Fs>, dir: &Path, segment: u64) {
    let p = dir.join(crate::files::hint(segment));
    match fs.remove(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            log::warn!("removing {}: {e}", p.display());
        }
        _ => {}
    }
}

/// The hint entries of `seg` found by scanning it (its first `end` bytes,
/// for a head whose tail is not the log's: all of it for `None`): every
/// record whose table `keep` accepts, in file order. What a hint of `seg`
/// lists, for a segment that has none (or a bad one).
pub(crate) fn scan(
    seg: &crate::vlog::Segment,
    end: Option<u64>,
    keep: impl Fn(u32) -> bool,
) -> Result<Vec<HintEntry>> {
    let mut entries = Vec::new();
    crate::vlog::replay_range(seg, 0, end, false, 0, |batch| {
        entries.extend(
            batch
                .records
                .into_iter()
                .filter(|r| keep(r.table))
                .map(|r| HintEntry {
                    put: r.is_put,
                    table: r.table,
                    seq: r.seq,
                    offset: r.pointer.offset,
                    len: r.pointer.len,
                    raw_len: r.pointer.raw_len,
                    key: r.key,
                }),
        );
        Ok(())
    })?;
    Ok(entries)
}

/// Reads and decodes the hint of `segment` in `dir`: `Ok(None)` when there
/// is none; `Error::Corruption` when it is damaged or names another segment.
pub(crate) fn read(fs: &Arc<dyn Fs>, dir: &Path, segment: u64) -> Result<Option<Hint>> {
    Ok(read_raw(fs, dir, segment)?.map(|h| Hint {
        segment: h.segment,
        segment_len: h.segment_len,
        entries: h.to_entries(),
    }))
}

/// [`read`], the keys left in the file's bytes.
pub(crate) fn read_raw(fs: &Arc<dyn Fs>, dir: &Path, segment: u64) -> Result<Option<RawHint>> {
    let path = dir.join(crate::files::hint(segment));
    let f = match fs.open(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let len = f
        .len()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let len =
        usize::try_from(len).map_err(|_| Error::corruption(&path, 0, "hint file too large"))?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let hint = decode_raw(&path, buf)?;
    if hint.segment != segment {
        return Err(Error::corruption(
            &path,
            8,
            format!("hint names segment {} instead of {segment}", hint.segment),
        ));
    }
    Ok(Some(hint))
}

/// How many entries the hint of `segment` says it has, read from its header
/// alone (nothing is checked: an open sizes the keydir with it before the
/// hints are read). `None` when there is no hint or it cannot be read; the
/// count is bounded by what the file's length could hold.
pub(crate) fn peek_count(fs: &Arc<dyn Fs>, dir: &Path, segment: u64) -> Option<usize> {
    let f = fs
        .open(&dir.join(crate::files::hint(segment)), false)
        .ok()?;
    let len = usize::try_from(f.len().ok()?).ok()?;
    let mut head = [0u8; HEADER_LEN];
    f.read_exact_at(&mut head, 0).ok()?;
    if &head[..8] != MAGIC {
        return None;
    }
    let count = u32::from_le_bytes(head[24..28].try_into().ok()?) as usize;
    Some(count.min(len.saturating_sub(HEADER_LEN) / 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<HintEntry> {
        vec![
            HintEntry {
                put: true,
                table: 3,
                seq: 7,
                offset: 0,
                len: record::record_len(2, 10) as u32,
                raw_len: Some(5000),
                key: b"k1".to_vec(),
            },
            HintEntry {
                put: false,
                table: 3,
                seq: 9,
                offset: 100,
                len: record::record_len(2, 0) as u32,
                raw_len: None,
                key: b"k2".to_vec(),
            },
        ]
    }

    #[test]
    fn round_trip() {
        let b = encode(12, 4096, &sample());
        let h = decode(Path::new("x.hint"), &b).unwrap();
        assert_eq!(h.segment, 12);
        assert_eq!(h.segment_len, 4096);
        assert_eq!(h.entries, sample());
        let empty = encode(5, 0, &[]);
        assert!(decode(Path::new("x"), &empty).unwrap().entries.is_empty());
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let b = encode(12, 4096, &sample());
        for i in 0..b.len() * 8 {
            let mut m = b.clone();
            m[i / 8] ^= 1 << (i % 8);
            assert!(matches!(
                decode(Path::new("x.hint"), &m),
                Err(Error::Corruption { .. })
            ));
        }
        for n in 0..b.len() {
            assert!(decode(Path::new("x.hint"), &b[..n]).is_err());
        }
    }

    #[test]
    fn entries_outside_the_segment_are_refused() {
        // Well checksummed, but an entry past the segment's end.
        let b = encode(12, 50, &sample());
        let e = decode(Path::new("x.hint"), &b).unwrap_err().to_string();
        assert!(e.contains("past the end"), "{e}");
    }
}
