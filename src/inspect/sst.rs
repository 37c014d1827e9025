//! Every entry of one SSTable, block by block, with the damaged blocks.

use super::{file_name_of, open_read_only, resolve};
use crate::error::{Error, Result};
use crate::files::{self, FileName};
use crate::lsm::ikey::{self, Kind};
use crate::lsm::sstable::Sst;
use crate::verify::Damage;
use crate::vlog::record::{HEADER_LEN, TRAILER_LEN};
use crate::vlog::ValuePointer;
use std::path::{Path, PathBuf};

/// What one entry of an SSTable holds, by the kind in its internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryKind {
    /// A put whose value is in the entry (below the separation threshold).
    Inline,
    /// A put whose value is in the vLog; the entry holds a value pointer.
    Pointer,
    /// A delete.
    Tombstone,
    /// A kind byte no version of the format writes (see
    /// [`SstEntryInfo::problem`]).
    Unknown,
}

/// Where a separated value lives: a record in a vLog segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PointerInfo {
    /// The segment's file number.
    pub segment: u64,
    /// Byte offset of the record in the segment.
    pub offset: u64,
    /// Length of the whole record.
    pub len: u32,
    /// The value's raw length when the record stores it compressed (the
    /// pointer's fourth varint).
    pub raw_len: Option<u32>,
}

/// One entry of a data block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SstEntryInfo {
    /// Which data block (0-based, in file order) holds the entry.
    pub block: usize,
    /// The id of the table the key belongs to.
    pub table: u32,
    /// The user key.
    pub key: Vec<u8>,
    /// The sequence number of the write.
    pub seq: u64,
    /// Inline value, value pointer or tombstone.
    pub kind: EntryKind,
    /// The inline value's bytes (empty for the other kinds).
    pub value: Vec<u8>,
    /// The value's length: the inline value's, or the one the pointed-to
    /// record holds (its raw length, for a compressed one); 0 for a
    /// tombstone.
    pub value_len: u64,
    /// The pointer, for [`EntryKind::Pointer`] when it decodes.
    pub pointer: Option<PointerInfo>,
    /// What is wrong with the entry, if anything (a malformed internal key,
    /// an unknown kind, a pointer that does not decode). The block's
    /// checksum held, so this is a bug in what wrote it, not disk damage.
    pub problem: Option<String>,
}

/// One data block: where it is and whether it could be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BlockInfo {
    /// The block's position among the data blocks (0-based).
    pub index: usize,
    /// Byte offset of the block's payload in the file.
    pub offset: u64,
    /// The stored payload size (without the 5-byte trailer).
    pub size: u64,
    /// Entries in the block (0 when damaged).
    pub entries: usize,
    /// What is wrong with the block, when its checksum, compression or
    /// entries do not check out; its entries are then not listed.
    pub damage: Option<String>,
}

/// Everything [`sst`] read of one SSTable file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SstDump {
    /// The file read.
    pub path: PathBuf,
    /// The table file's number, when the file has an SSTable's name.
    pub number: Option<u64>,
    /// The file's size in bytes.
    pub size: u64,
    /// Every data block, in file order; empty when the footer, index,
    /// filter or properties are damaged (they say where the blocks are).
    pub blocks: Vec<BlockInfo>,
    /// The entries of every intact data block, in key order.
    pub entries: Vec<SstEntryInfo>,
    /// Every damaged place: the metadata, and each damaged data block.
    pub damage: Vec<Damage>,
}

impl SstDump {
    /// No damage found and no entry with a problem.
    pub fn is_intact(&self) -> bool {
        self.damage.is_empty() && self.entries.iter().all(|e| e.problem.is_none())
    }
}

/// Reads the SSTable file `path` (opened read-only): its footer, index,
/// filter and properties, then every data block, each checked as
/// `Db::verify` checks it. A damaged data block is listed with what is
/// wrong and the dump goes on with the next; damaged metadata leaves no
/// way to find the blocks, so the dump has only that damage.
///
/// Errors only when the file cannot be read (`Error::Io`).
///
/// ```
/// use wisckey::{inspect, Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put(b"small", b"v")?;
/// db.put(b"large", vec![1u8; 4096])?;
/// db.flush()?;
/// db.close()?;
/// let name = std::fs::read_dir(dir.path()).unwrap()
///     .map(|e| e.unwrap().file_name().into_string().unwrap())
///     .find(|n| n.ends_with(".sst"))
///     .unwrap();
/// let dump = inspect::sst(&inspect::sst_path(dir.path(), &name)?)?;
/// assert!(dump.is_intact());
/// let kinds: Vec<_> = dump.entries.iter().map(|e| (e.key.clone(), e.kind)).collect();
/// assert_eq!(kinds, [
///     (b"large".to_vec(), inspect::EntryKind::Pointer),
///     (b"small".to_vec(), inspect::EntryKind::Inline),
/// ]);
/// # Ok::<(), wisckey::Error>(())
/// ```
pub fn sst(path: &Path) -> Result<SstDump> {
    let (file, size) = open_read_only(path)?;
    let number = match file_name_of(path) {
        Some(FileName::Sst(n)) => Some(n),
        _ => None,
    };
    let mut dump = SstDump {
        path: path.to_path_buf(),
        number,
        size,
        blocks: Vec::new(),
        entries: Vec::new(),
        damage: Vec::new(),
    };
    let table = match Sst::open(file, path.to_path_buf(), size) {
        Ok(t) => t,
        Err(e) => {
            dump.damage.push(as_damage(path, e)?);
            return Ok(dump);
        }
    };
    for (index, h) in table.data_block_handles().iter().enumerate() {
        let mut block = BlockInfo {
            index,
            offset: h.offset,
            size: h.size,
            entries: 0,
            damage: None,
        };
        match table.data_block_entries(index) {
            Ok(entries) => {
                block.entries = entries.len();
                dump.entries
                    .extend(entries.iter().map(|(k, v)| entry(index, k, v)));
            }
            Err(e) => {
                let d = as_damage(path, e)?;
                block.damage = Some(d.what.clone());
                dump.damage.push(d);
            }
        }
        dump.blocks.push(block);
    }
    Ok(dump)
}

/// A corruption error as a damaged place; any other error is passed on.
fn as_damage(path: &Path, e: Error) -> Result<Damage> {
    match e {
        Error::Corruption { offset, reason, .. } => Ok(Damage {
            file: path.to_path_buf(),
            offset,
            what: reason,
        }),
        other => Err(other),
    }
}

/// Decodes one entry of data block `block`: internal key `ik`, value `v`.
fn entry(block: usize, ik: &[u8], v: &[u8]) -> SstEntryInfo {
    let mut e = SstEntryInfo {
        block,
        table: ikey::table_id(ik),
        key: ikey::user_key(ik).to_vec(),
        seq: ikey::seq(ik),
        kind: EntryKind::Unknown,
        value: Vec::new(),
        value_len: 0,
        pointer: None,
        problem: None,
    };
    if ik.len() < ikey::TABLE_ID_LEN + ikey::TRAILER_LEN {
        e.problem = Some(format!("internal key of {} bytes is too short", ik.len()));
        return e;
    }
    let kind_byte = ikey::kind_byte(ik);
    match Kind::from_u8(kind_byte) {
        Some(Kind::Delete) => e.kind = EntryKind::Tombstone,
        Some(Kind::Inline) => {
            e.kind = EntryKind::Inline;
            e.value = v.to_vec();
            e.value_len = v.len() as u64;
        }
        Some(Kind::Pointer) => {
            e.kind = EntryKind::Pointer;
            match ValuePointer::decode(v) {
                Some(p) => {
                    e.pointer = Some(PointerInfo {
                        segment: p.segment,
                        offset: p.offset,
                        len: p.len,
                        raw_len: p.raw_len,
                    });
                    let around = (HEADER_LEN + TRAILER_LEN + e.key.len()) as u64;
                    match u64::from(p.len).checked_sub(around) {
                        Some(n) => e.value_len = p.raw_len.map_or(n, u64::from),
                        None => {
                            e.problem = Some(format!(
                                "a record of {} bytes cannot hold this key and a value",
                                p.len
                            ))
                        }
                    }
                }
                None => e.problem = Some("the value pointer does not decode".to_owned()),
            }
        }
        None => e.problem = Some(format!("unknown kind byte {kind_byte}")),
    }
    e
}

/// The path of the SSTable `spec` names in the database directory `dir`: a
/// number (`12`: `000012.sst`), a file name in `dir`, or a path to the
/// file. A missing file is an `Error::Io` of kind `NotFound`; a file named
/// as another kind of file (`000012.vlog`) is `Error::InvalidArgument`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("000009.sst"), b"").unwrap();
/// let p = wisckey::inspect::sst_path(dir.path(), "000009.sst")?;
/// assert_eq!(p, dir.path().join("000009.sst"));
/// # Ok::<(), wisckey::Error>(())
/// ```
pub fn sst_path(dir: &Path, spec: &str) -> Result<PathBuf> {
    resolve(
        dir,
        spec,
        "SSTable",
        |n| vec![files::sst(n)],
        |name| matches!(name, FileName::Sst(_)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entries_decode_every_kind() {
        let ptr = ValuePointer {
            segment: 4,
            offset: 100,
            len: (HEADER_LEN + TRAILER_LEN + 3 + 50) as u32,
            raw_len: None,
        };
        let e = entry(
            2,
            &ikey::encode(7, b"abc", 9, Kind::Pointer as u8),
            &ptr.encode(),
        );
        assert_eq!((e.block, e.table, e.seq), (2, 7, 9));
        assert_eq!(e.key, b"abc");
        assert_eq!(e.kind, EntryKind::Pointer);
        assert_eq!(e.value_len, 50);
        assert_eq!(e.pointer.map(|p| (p.segment, p.offset)), Some((4, 100)));
        assert_eq!(e.problem, None);

        let e = entry(0, &ikey::encode(1, b"k", 3, Kind::Inline as u8), b"val");
        assert_eq!(
            (e.kind, e.value.as_slice(), e.value_len),
            (EntryKind::Inline, &b"val"[..], 3)
        );
        let e = entry(0, &ikey::encode(1, b"k", 4, Kind::Delete as u8), b"");
        assert_eq!((e.kind, e.value_len), (EntryKind::Tombstone, 0));

        let e = entry(0, &ikey::encode(1, b"k", 4, 9), b"");
        assert_eq!(e.kind, EntryKind::Unknown);
        assert_eq!(e.problem.as_deref(), Some("unknown kind byte 9"));
        let e = entry(0, &ikey::encode(1, b"k", 4, Kind::Pointer as u8), b"\xff");
        assert!(e.problem.is_some());
        let e = entry(0, b"short", b"");
        assert!(e.problem.is_some());
    }

    #[test]
    fn garbage_files_are_damage_not_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (i, bytes) in [vec![], vec![0u8; 64], vec![0xa5u8; 5000]]
            .iter()
            .enumerate()
        {
            let p = dir.path().join(format!("{:06}.sst", i + 1));
            std::fs::write(&p, bytes).unwrap();
            let d = sst(&p).unwrap();
            assert_eq!(d.number, Some(i as u64 + 1));
            assert!(!d.is_intact());
            assert_eq!(d.damage.len(), 1, "{d:?}");
            assert!(d.blocks.is_empty() && d.entries.is_empty());
        }
        assert!(sst(&dir.path().join("000099.sst")).is_err());
    }

    /// A real table, each of its bytes flipped in turn, and cut at many
    /// lengths: always a dump, never a panic, and damage is reported.
    #[test]
    fn damaged_tables_are_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path(), crate::Options::default()).unwrap();
        for i in 0..300u32 {
            db.put(format!("key{i:04}"), format!("value {i}")).unwrap();
            db.put(format!("big{i:04}"), vec![7u8; 2000]).unwrap();
        }
        db.delete(b"key0007").unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        let name = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.ends_with(".sst"))
            .unwrap();
        let good = std::fs::read(dir.path().join(&name)).unwrap();
        let whole = sst(&dir.path().join(&name)).unwrap();
        assert!(whole.is_intact());
        assert!(whole.blocks.len() > 2);
        // The delete replaced its put in the memtable: 300 + 299 + 1.
        assert_eq!(whole.entries.len(), 600);
        let kinds = |k: EntryKind| whole.entries.iter().filter(|e| e.kind == k).count();
        assert_eq!(kinds(EntryKind::Tombstone), 1);
        assert_eq!(kinds(EntryKind::Pointer), 300);
        let p = dir.path().join("000999.sst");
        let step = (good.len() / 500).max(1);
        for at in (0..good.len()).step_by(step) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&p, &bad).unwrap();
            let d = sst(&p).unwrap();
            // A flip in a data block is caught by its checksum; elsewhere
            // (footer, index, properties, filter) by theirs.
            assert!(!d.is_intact(), "flip at {at} not seen");
            std::fs::write(&p, &good[..at]).unwrap();
            assert!(!sst(&p).unwrap().is_intact(), "cut at {at} not seen");
        }
    }

    proptest! {
        #[test]
        fn hostile_entries_never_panic(k in proptest::collection::vec(any::<u8>(), 0..40),
                                       v in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = entry(0, &k, &v);
        }
    }
}
