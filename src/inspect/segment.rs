//! Every record of one vLog segment, and every damaged range between them.

use super::{file_name_of, read_whole, resolve};
use crate::error::{Error, Result};
use crate::files::{self, FileName};
use crate::vlog::record::{Header, HEADER_LEN, TRAILER_LEN};
use crate::vlog::{walk_records, Walked};
use std::path::{Path, PathBuf};

/// Which log a segment belongs to, by its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SegmentKind {
    /// `NNNNNN.vlog`: the user log (puts and deletes as written; the WAL).
    User,
    /// `NNNNNN.gc.vlog`: records relocated by garbage collection.
    Gc,
}

/// Whether a record is a put or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordKind {
    /// A put: the record carries the value.
    Put,
    /// A delete: the record carries no value.
    Delete,
    /// A range delete: the key is the range's start, the value its end (a
    /// 0 byte for no end, or a 1 byte and the end key).
    RangeDelete,
}

/// One intact record of a segment (its checksum matched).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RecordInfo {
    /// Byte offset of the record in the segment.
    pub offset: u64,
    /// Length of the whole record (header, key, value, checksum).
    pub len: u64,
    /// Put or delete.
    pub kind: RecordKind,
    /// More records of the same batch follow (the batch flag).
    pub continues: bool,
    /// The id of the table the key belongs to.
    pub table: u32,
    /// The sequence number of the write.
    pub seq: u64,
    /// The user key.
    pub key: Vec<u8>,
    /// Length of the value as stored (0 for a delete; compressed, for a
    /// compressed value).
    pub value_len: u32,
    /// The value bytes (empty for a delete), decompressed when the record
    /// stores it compressed and that succeeded (see `decompress_error`).
    pub value: Vec<u8>,
    /// The stored CRC-32 of the record, which matched.
    pub checksum: u32,
    /// For a value stored compressed: its raw length.
    pub raw_len: Option<u32>,
    /// For a value compressed with a dictionary: the dictionary's id (its
    /// file `NNNNNN.dict` beside the segment).
    pub dictionary: Option<u64>,
    /// Why a compressed value could not be decompressed (then `value` holds
    /// the stored bytes).
    pub decompress_error: Option<String>,
}

/// What a damaged record's header says, when the header itself decodes:
/// the record's checksum failed or the file ends inside it, so none of it
/// can be trusted, but it may say what was there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ClaimedHeader {
    /// Put or delete.
    pub kind: RecordKind,
    /// The batch flag.
    pub continues: bool,
    /// The table id.
    pub table: u32,
    /// The sequence number.
    pub seq: u64,
    /// The key length.
    pub key_len: u32,
    /// The value length.
    pub value_len: u32,
}

/// A damaged range of a segment: no intact record starts at `offset`, and
/// the next intact record (if any) starts at `offset + len`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DamagedRange {
    /// Byte offset where the damage begins.
    pub offset: u64,
    /// Bytes up to the next intact record, or to the end of the file.
    pub len: u64,
    /// What is wrong with the bytes at `offset`.
    pub reason: String,
    /// The header at `offset`, when it decodes.
    pub header: Option<ClaimedHeader>,
}

/// One thing found in a segment, in file order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SegmentItem {
    /// An intact record.
    Record(RecordInfo),
    /// A damaged range.
    Damaged(DamagedRange),
}

/// Everything [`segment`] read of one segment file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SegmentDump {
    /// The file read.
    pub path: PathBuf,
    /// The segment's number, when the file has a segment's name.
    pub number: Option<u64>,
    /// User or GC segment, when the file has a segment's name.
    pub kind: Option<SegmentKind>,
    /// The file's size in bytes.
    pub size: u64,
    /// The records and damaged ranges, in file order.
    pub items: Vec<SegmentItem>,
    /// The offset of the first record of a batch that the segment ends
    /// inside of (its last intact record has the batch flag), if any. In the
    /// newest segment of a database that is open for writing this is a
    /// batch still being written; in any other it is damage, which
    /// [`SegmentDump::is_intact`] counts.
    pub unfinished_batch: Option<u64>,
}

impl SegmentDump {
    /// The intact records, in file order.
    pub fn records(&self) -> impl Iterator<Item = &RecordInfo> {
        self.items.iter().filter_map(|i| match i {
            SegmentItem::Record(r) => Some(r),
            SegmentItem::Damaged(_) => None,
        })
    }

    /// The damaged ranges, in file order.
    pub fn damage(&self) -> impl Iterator<Item = &DamagedRange> {
        self.items.iter().filter_map(|i| match i {
            SegmentItem::Damaged(d) => Some(d),
            SegmentItem::Record(_) => None,
        })
    }

    /// No damaged range, and the segment does not end inside a batch.
    pub fn is_intact(&self) -> bool {
        self.damage().next().is_none() && self.unfinished_batch.is_none()
    }
}

fn kind_of(h: &Header) -> RecordKind {
    if h.is_put {
        RecordKind::Put
    } else if h.is_range_delete {
        RecordKind::RangeDelete
    } else {
        RecordKind::Delete
    }
}

/// Reads every record of the segment file `path` (opened read-only) and
/// checks each checksum. After damage it goes on from the next intact
/// record, as `Db::verify` does, so every damaged range is listed.
///
/// Errors only when the file cannot be read (`Error::Io`); damage is in
/// the result. See the [module example](crate::inspect).
pub fn segment(path: &Path) -> Result<SegmentDump> {
    let buf = read_whole(path)?;
    let (number, kind) = match file_name_of(path) {
        Some(FileName::Segment(n)) => (Some(n), Some(SegmentKind::User)),
        Some(FileName::GcSegment(n)) => (Some(n), Some(SegmentKind::Gc)),
        _ => (None, None),
    };
    Ok(SegmentDump {
        path: path.to_path_buf(),
        number,
        kind,
        size: buf.len() as u64,
        unfinished_batch: None,
        items: Vec::new(),
    }
    .read(&buf, path.parent()))
}

/// The value of a compressed record `stored`, decompressed with the
/// dictionary it names (read from `dir`, once per id, into `dicts`):
/// `(value, raw length, dictionary, error)`.
type Decompressed = (Vec<u8>, Option<u32>, Option<u64>, Option<String>);

fn decompress_stored(
    stored: &[u8],
    dir: Option<&Path>,
    dicts: &mut std::collections::HashMap<u64, Result<crate::vlog::dict::Dictionary>>,
) -> Decompressed {
    use crate::vlog::compress::{self, Compressed};
    let Some(c) = Compressed::parse(stored) else {
        let e = "compressed value has a malformed header".to_string();
        return (stored.to_vec(), None, None, Some(e));
    };
    let dict_id = (c.dict != 0).then_some(c.dict);
    let dict = match dict_id {
        None => None,
        Some(id) => {
            let d = dicts.entry(id).or_insert_with(|| {
                let p = dir.unwrap_or(Path::new(".")).join(crate::files::dict(id));
                let b = std::fs::read(&p)
                    .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
                crate::vlog::dict::Dictionary::decode(&p, id, &b)
            });
            match d {
                Ok(d) => Some(&*d),
                Err(e) => {
                    return (
                        stored.to_vec(),
                        Some(c.raw_len),
                        dict_id,
                        Some(e.to_string()),
                    )
                }
            }
        }
    };
    // The default `max_value_size`: what hostile bytes can make a dump allocate.
    match compress::decompress(&c, dict, 256 << 20) {
        Ok(v) => (v, Some(c.raw_len), dict_id, None),
        Err(e) => (stored.to_vec(), Some(c.raw_len), dict_id, Some(e)),
    }
}

impl SegmentDump {
    /// Fills in the items and the unfinished batch from the segment's bytes.
    fn read(mut self, buf: &[u8], dir: Option<&Path>) -> SegmentDump {
        let mut open_batch = None;
        let mut dicts = std::collections::HashMap::new();
        walk_records(buf, |found| match found {
            Walked::Record { offset, record } => {
                let h = record.header;
                if h.continues {
                    open_batch.get_or_insert(offset);
                } else {
                    open_batch = None;
                }
                let len = h.record_len();
                let crc_at = offset as usize + len as usize - TRAILER_LEN;
                let mut crc = [0u8; TRAILER_LEN];
                crc.copy_from_slice(&buf[crc_at..crc_at + TRAILER_LEN]);
                let (value, raw_len, dictionary, decompress_error) = if h.compressed {
                    decompress_stored(record.value, dir, &mut dicts)
                } else {
                    (record.value.to_vec(), None, None, None)
                };
                self.items.push(SegmentItem::Record(RecordInfo {
                    offset,
                    len,
                    kind: kind_of(&h),
                    continues: h.continues,
                    table: h.table,
                    seq: h.seq,
                    key: record.key.to_vec(),
                    value_len: h.value_len,
                    value,
                    checksum: u32::from_le_bytes(crc),
                    raw_len,
                    dictionary,
                    decompress_error,
                }));
            }
            Walked::Damage { offset, end, error } => {
                open_batch = None;
                let header = buf
                    .get(offset as usize..)
                    .filter(|rest| rest.len() >= HEADER_LEN)
                    .and_then(Header::decode)
                    .map(|h| ClaimedHeader {
                        kind: kind_of(&h),
                        continues: h.continues,
                        table: h.table,
                        seq: h.seq,
                        key_len: h.key_len,
                        value_len: h.value_len,
                    });
                self.items.push(SegmentItem::Damaged(DamagedRange {
                    offset,
                    len: end - offset,
                    reason: error.describe().to_owned(),
                    header,
                }));
            }
        });
        self.unfinished_batch = open_batch;
        self
    }
}

/// The path of the segment `spec` names in the database directory `dir`: a
/// number (`12`: `000012.vlog`, else `000012.gc.vlog`), a file name in
/// `dir` (`000012.gc.vlog`), or a path to the file. A missing file is an
/// `Error::Io` of kind `NotFound`; a file named as another kind of file
/// (`000012.sst`) is `Error::InvalidArgument`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("000012.vlog"), b"").unwrap();
/// let p = wisckey::inspect::segment_path(dir.path(), "12")?;
/// assert_eq!(p, dir.path().join("000012.vlog"));
/// assert!(wisckey::inspect::segment_path(dir.path(), "13").is_err());
/// # Ok::<(), wisckey::Error>(())
/// ```
pub fn segment_path(dir: &Path, spec: &str) -> Result<PathBuf> {
    resolve(
        dir,
        spec,
        "segment",
        |n| vec![files::segment(n), files::gc_segment(n)],
        |name| matches!(name, FileName::Segment(_) | FileName::GcSegment(_)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vlog::record;
    use proptest::prelude::*;

    fn dump(buf: &[u8]) -> SegmentDump {
        SegmentDump {
            path: PathBuf::from("x"),
            number: None,
            kind: None,
            size: buf.len() as u64,
            unfinished_batch: None,
            items: Vec::new(),
        }
        .read(buf, None)
    }

    #[test]
    fn compressed_values_are_shown_decompressed() {
        let codec = crate::vlog::compress::Codec {
            level: 3,
            dict: None,
        };
        let value = b"abcabcabc".repeat(200);
        let stored = codec.compress(&value).unwrap();
        let mut buf = Vec::new();
        record::encode_stored(&mut buf, true, true, false, 1, 5, b"k", &stored);
        // A stored form naming a dictionary that is not there.
        let mut other = stored.clone();
        other[2] = 9;
        record::encode_stored(&mut buf, true, true, false, 1, 6, b"j", &other);
        let d = dump(&buf);
        let recs: Vec<&RecordInfo> = d
            .items
            .iter()
            .filter_map(|i| match i {
                SegmentItem::Record(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(recs[0].value, value);
        assert_eq!((recs[0].raw_len, recs[0].dictionary), (Some(1800), None));
        assert!(recs[0].decompress_error.is_none());
        assert_eq!(recs[1].value, other);
        assert!(recs[1].decompress_error.is_some());
    }

    fn three_records() -> (Vec<u8>, [usize; 3]) {
        let mut buf = Vec::new();
        let a = record::encode(&mut buf, true, true, 1, 10, b"alpha", b"one");
        let b = record::encode(&mut buf, false, false, 1, 11, b"beta", b"");
        let c = record::encode(&mut buf, true, false, 2, 12, b"gamma", &[7u8; 100]);
        (buf, [a, b, c])
    }

    #[test]
    fn lists_every_record() {
        let (buf, at) = three_records();
        let d = dump(&buf);
        assert!(d.is_intact());
        let recs: Vec<_> = d.records().collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].offset, 0);
        assert_eq!(recs[0].kind, RecordKind::Put);
        assert!(recs[0].continues);
        assert_eq!((recs[0].table, recs[0].seq), (1, 10));
        assert_eq!(recs[0].key, b"alpha");
        assert_eq!(recs[0].value, b"one");
        assert_eq!(recs[1].offset, at[1] as u64);
        assert_eq!(recs[1].kind, RecordKind::Delete);
        assert_eq!(recs[1].value_len, 0);
        assert_eq!(recs[2].len, (buf.len() - at[2]) as u64);
        let tail = &buf[buf.len() - 4..];
        assert_eq!(recs[2].checksum.to_le_bytes(), tail);
    }

    #[test]
    fn goes_on_after_a_damaged_record() {
        let (mut buf, at) = three_records();
        buf[at[1] + HEADER_LEN] ^= 0x20; // inside "beta"
        let d = dump(&buf);
        assert!(!d.is_intact());
        let keys: Vec<_> = d.records().map(|r| r.key.clone()).collect();
        assert_eq!(keys, [b"alpha".to_vec(), b"gamma".to_vec()]);
        let bad: Vec<_> = d.damage().collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].offset, at[1] as u64);
        assert_eq!(bad[0].len, (at[2] - at[1]) as u64);
        assert_eq!(bad[0].reason, "record checksum mismatch");
        let h = bad[0].header.unwrap();
        assert_eq!((h.kind, h.seq, h.key_len), (RecordKind::Delete, 11, 4));
        // The batch of "alpha" never ended: its end was the damaged record.
        assert_eq!(d.unfinished_batch, None);
    }

    #[test]
    fn a_cut_file_ends_in_damage() {
        let (buf, at) = three_records();
        let d = dump(&buf[..buf.len() - 3]);
        assert_eq!(d.records().count(), 2);
        let bad: Vec<_> = d.damage().collect();
        assert_eq!(bad[0].offset, at[2] as u64);
        assert_eq!(bad[0].reason, "record is cut short");
        let d = dump(&buf[..at[1]]);
        assert_eq!(d.records().count(), 1);
        assert_eq!(d.unfinished_batch, Some(0));
        assert!(!d.is_intact());
    }

    #[test]
    fn reads_a_segment_file() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, _) = three_records();
        let p = dir.path().join("000007.gc.vlog");
        std::fs::write(&p, &buf).unwrap();
        let d = segment(&p).unwrap();
        assert_eq!((d.number, d.kind), (Some(7), Some(SegmentKind::Gc)));
        assert_eq!(d.size, buf.len() as u64);
        assert_eq!(d.records().count(), 3);
        assert!(segment(&dir.path().join("000008.vlog")).is_err());
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400),
                                     cut in any::<usize>(), flip in any::<usize>()) {
            let _ = dump(&bytes);
            // Damage inside and around real records.
            let (mut buf, _) = three_records();
            buf.extend_from_slice(&bytes);
            let i = flip % buf.len();
            buf[i] ^= 0x55;
            let d = dump(&buf[..cut % (buf.len() + 1)]);
            let covered: u64 = d.items.iter().map(|i| match i {
                SegmentItem::Record(r) => r.len,
                SegmentItem::Damaged(x) => x.len,
            }).sum();
            prop_assert_eq!(covered, d.size);
        }
    }
}
