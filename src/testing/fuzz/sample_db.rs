//! A small sample database built once (every segment kind, an unordered
//! table with hints): the seed corpus and the hint target's playground.

use super::model::*;
use crate::files::FileName;
use crate::io::bytes_file::BytesFile as MemFile;
use crate::io::Fs;
use crate::testing::FaultFs;
use crate::vlog::hint;
use crate::vlog::{Segment, SegmentKind};
use crate::{Db, GcOptions, TableOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A small database on a [`FaultFs`]: its files, and what its unordered
/// table `u` holds.
pub struct SampleDb {
    /// Every file of the database directory `/db` (name, bytes), by name.
    pub files: Vec<(String, Vec<u8>)>,
    /// The id of the unordered table `u`.
    pub unordered_table: u32,
    /// The contents of `u`.
    pub unordered: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Every key ever written to `u` (deleted ones included).
    pub unordered_keys: Vec<Vec<u8>>,
    /// Per vLog segment (number, file name): its records of `u` as hint
    /// entries, sorted (what its hint lists, or a scan finds).
    pub(crate) segments: Vec<(u64, String, Vec<hint::HintEntry>)>,
}

impl SampleDb {
    /// Per vLog segment: its file name and how many records of `u` it has.
    pub fn segment_summary(&self) -> Vec<(String, usize)> {
        self.segments
            .iter()
            .map(|(_, name, e)| (name.clone(), e.len()))
            .collect()
    }
}

pub(super) fn segment_number(name: &str) -> Option<u64> {
    match FileName::parse(name)? {
        FileName::Segment(n) | FileName::GcSegment(n) => Some(n),
        _ => None,
    }
}

pub(super) fn sorted_entries(mut v: Vec<hint::HintEntry>) -> Vec<hint::HintEntry> {
    v.sort_by(|a, b| (a.offset, a.seq, &a.key).cmp(&(b.offset, b.seq, &b.key)));
    v
}

/// The records of table `table` in a segment file, as a scan finds them.
pub(super) fn scan_entries(
    name: &str,
    bytes: &[u8],
    number: u64,
    table: u32,
) -> Vec<hint::HintEntry> {
    let fs: Arc<dyn Fs> = Arc::new(FaultFs::new());
    let seg = Segment::new(
        fs,
        number,
        SegmentKind::User,
        PathBuf::from("/db").join(name),
        Arc::new(MemFile(bytes.to_vec())),
    );
    sorted_entries(hint::scan(&seg, None, |t| t == table).expect("scanning a sample segment"))
}

pub(super) fn build_sample_db() -> SampleDb {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    // A memtable that holds every write, and no background work running
    // while writes go on: the same files, with the same numbers, each time.
    let db = Db::open(dir, model_options(&fs).memtable_size(256 << 10)).unwrap();
    // Its values compressed (so the seeds hold compressed records, hint
    // entries with raw lengths, and the manifest's value fields).
    let u = db
        .table(
            "u",
            TableOptions::unordered().value_compression(crate::ValueCompression::Zstd { level: 1 }),
        )
        .unwrap();
    let mut unordered = BTreeMap::new();
    let mut keys = std::collections::BTreeSet::new();
    let mut step = |i: u32| {
        db.put(
            format!("k{i:04}"),
            vec![b'a' + (i % 26) as u8; (i as usize % 5) * 50],
        )
        .unwrap();
        if i % 10 == 1 && i < 150 {
            // Written once: still live when GC takes their segment.
            let k = format!("p{i:03}").into_bytes();
            let v = vec![b'P'; i as usize * 3];
            u.put(&k, &v).unwrap();
            keys.insert(k.clone());
            unordered.insert(k, v);
        }
        if i.is_multiple_of(2) {
            let k = format!("u{:03}", i % 40).into_bytes();
            keys.insert(k.clone());
            if i % 7 == 3 {
                u.delete(&k).unwrap();
                unordered.remove(&k);
            } else {
                let v = vec![b'A' + (i % 26) as u8; (i as usize % 4) * 150];
                u.put(&k, &v).unwrap();
                unordered.insert(k, v);
            }
        }
    };
    for i in 0..200u32 {
        step(i);
    }
    db.flush().unwrap();
    db.compact().unwrap();
    db.wait_for_background().unwrap();
    db.gc(GcOptions::default().all_sealed(true)).unwrap();
    // A dictionary from here on: records that name one, a dictionary file
    // and segment-dictionary fields in the manifest.
    u.train_dictionary().unwrap();
    for i in 200..300u32 {
        step(i);
    }
    db.flush().unwrap();
    db.wait_for_background().unwrap();
    let table = u.id();
    drop(u);
    db.close().unwrap();
    let mut files: Vec<(String, Vec<u8>)> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter_map(|n| fs.contents(&dir.join(&n)).map(|c| (n, c)))
        .collect();
    files.sort();
    let mut segments = Vec::new();
    for (name, bytes) in &files {
        let Some(n) = segment_number(name) else {
            continue;
        };
        let scanned = scan_entries(name, bytes, n, table);
        // Where the segment has a hint, the hint lists what a scan finds.
        let hint_name = crate::files::hint(n);
        if let Some((_, h)) = files.iter().find(|(f, _)| *f == hint_name) {
            let h = hint::decode(Path::new(&hint_name), h).unwrap();
            assert_eq!(h.segment, n);
            assert_eq!(h.segment_len, bytes.len() as u64);
            assert_eq!(sorted_entries(h.entries), scanned, "hint of {name}");
        }
        segments.push((n, name.clone(), scanned));
    }
    SampleDb {
        files,
        unordered_table: table,
        unordered,
        unordered_keys: keys.into_iter().collect(),
        segments,
    }
}

/// The sample database, built once per process.
pub fn sample_db() -> &'static SampleDb {
    static SAMPLE: std::sync::OnceLock<SampleDb> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(build_sample_db)
}

/// The raw files of a small database (name, bytes), for seeds: an ordered
/// default table with SSTables, an unordered table, a GC pass behind it
/// (sealed user and GC segments with their hint files).
pub fn sample_db_files() -> Vec<(String, Vec<u8>)> {
    sample_db().files.clone()
}
