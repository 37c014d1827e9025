//! [`Db::verify`]: reads every byte the database owns and checks it, and
//! reads every live entry of every table back through the index, the point
//! reads and the scans, checking they agree. `vlog-tools verify` is this
//! call on a database directory (opened read-only).

use crate::db::Db;
use crate::engine::{FileDamage, IndexValue, IndexView};
use crate::error::{Error, Result};
use crate::options::{TableKind, TableOptions};
use crate::snapshot::Snapshot;
use crate::table::Table;
use crate::value::Value;
use std::path::PathBuf;

/// How many values one batched read of [`Db::verify`] takes.
const CHUNK: usize = 256;

/// What [`Db::verify`] read and found: every damaged place, not only the
/// first, with the counts of what was checked (also when damage is found).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The tables in order: the default table first, then the named tables
    /// in creation order.
    pub tables: Vec<TableVerify>,
    /// Live entries read over all tables.
    pub entries: u64,
    /// What was read.
    pub checked: VerifyCounts,
    /// Every damaged place found, in the order found.
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    /// Whether no damage was found.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty()
    }
}

/// What [`Db::verify`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyCounts {
    /// Live vLog segments read whole.
    pub segments: u64,
    /// Intact records found in them (live ones and garbage).
    pub records: u64,
    /// Bytes of them read.
    pub segment_bytes: u64,
    /// SSTables read whole.
    pub sstables: u64,
    /// Their blocks checked (data, index, filter, properties, footer).
    pub blocks: u64,
    /// Hint files read.
    pub hint_files: u64,
    /// Manifest records read.
    pub manifest_records: u64,
    /// Live keys read back (the sum of the tables' entries).
    pub keys: u64,
}

/// One damaged place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Damage {
    /// The damaged file (the database directory when the indexes disagree
    /// with each other rather than with a file's bytes).
    pub file: PathBuf,
    /// The byte offset in it where the damage was found.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl From<FileDamage> for Damage {
    fn from(d: FileDamage) -> Damage {
        Damage {
            file: d.file,
            offset: d.offset,
            what: d.what,
        }
    }
}

/// What [`Db::verify`] read of one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TableVerify {
    /// The table's name (`"default"` for the default table).
    pub name: String,
    /// Its kind.
    pub kind: TableKind,
    /// Live entries read.
    pub entries: u64,
    /// Bytes of their keys.
    pub key_bytes: u64,
    /// Bytes of their values.
    pub value_bytes: u64,
}

impl Db {
    /// Reads every byte the database owns and checks it, then every live
    /// entry of every table.
    ///
    /// The files: every record of every live vLog segment, live or garbage
    /// (after damage the read goes on from the next intact record, so that
    /// every damaged range is found), every block of every SSTable (data,
    /// index, filter, properties, footer), every hint file, the manifest
    /// and `CURRENT`. The tables, at one snapshot: an ordered table is
    /// walked through its index and each value read back (its checksum and
    /// key checked), a point read of each key must return the same value,
    /// and a scan must return the same keys, ascending, with the same
    /// values; an unordered table's keydir is listed and every value read
    /// back. Writes may go on meanwhile: an ordered table is checked at the
    /// snapshot, and a key of an unordered table deleted while it is
    /// checked is skipped.
    ///
    /// Damage does not stop the check: it is listed in the report
    /// ([`VerifyReport::is_clean`]), each place once with its file and
    /// offset.
    ///
    /// # Errors
    /// `Error::Io` for a failed read (which leaves the check unfinished);
    /// `Error::InvalidArgument` on a closed database.
    ///
    /// # Example
    /// ```
    /// use wisckey::{Db, Options, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.put(b"a", vec![1u8; 4096])?;
    /// db.table("blobs", TableOptions::unordered())?.put(b"b", b"2")?;
    /// let report = db.verify()?;
    /// assert!(report.is_clean());
    /// assert_eq!(report.entries, 2);
    /// assert_eq!(report.tables[1].name, "blobs");
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn verify(&self) -> Result<VerifyReport> {
        let files = self.engine().check_files()?;
        let mut report = VerifyReport {
            checked: VerifyCounts {
                segments: files.segments,
                records: files.records,
                segment_bytes: files.segment_bytes,
                sstables: files.ssts,
                blocks: files.blocks,
                hint_files: files.hints,
                manifest_records: files.manifest_records,
                keys: 0,
            },
            damage: files.damage.into_iter().map(Damage::from).collect(),
            ..VerifyReport::default()
        };
        let mut tables = vec![self.default_table()];
        for (name, kind) in self.table_kinds() {
            let opts = match kind {
                TableKind::Unordered => TableOptions::unordered(),
                _ => TableOptions::ordered(),
            };
            tables.push(self.table(&name, opts)?);
        }
        for t in &tables {
            let tv = match t.kind() {
                TableKind::Unordered => self.verify_unordered(t, &mut report.damage)?,
                _ => self.verify_ordered(t, &mut report.damage)?,
            };
            report.entries += tv.entries;
            report.tables.push(tv);
        }
        report.checked.keys = report.entries;
        Ok(report)
    }

    fn verify_ordered(&self, t: &Table, damage: &mut Vec<Damage>) -> Result<TableVerify> {
        let mut tv = TableVerify::new(t);
        let snap = self.snapshot();
        let found_before = damage.len();
        // The index walk: every live entry, each value read back.
        let mut walked: Vec<(Vec<u8>, Value)> = Vec::new();
        let mut pending: Vec<(Vec<u8>, IndexValue)> = Vec::new();
        // One view for the walk and its reads: a GC pass running meanwhile
        // must not take the segments the walk's pointers name.
        let view = self.engine().index_view();
        self.engine()
            .index_entries(&view, t.id(), snap.sequence(), |k, v| {
                pending.push((k.to_vec(), v));
                if pending.len() == CHUNK {
                    self.read_chunk(t, &view, &snap, &mut pending, &mut walked, damage)?;
                }
                Ok(())
            })
            .or_else(|e| record(e, damage))?;
        self.read_chunk(t, &view, &snap, &mut pending, &mut walked, damage)?;
        drop(view);
        for (k, v) in &walked {
            tv.add(k, v.len());
        }
        if damage.len() > found_before {
            // The scan would stop at the first damaged value: the walk has
            // listed them all.
            return Ok(tv);
        }
        // The scan: the same keys, ascending, the same values.
        let mut expected = walked.iter();
        for kv in snap.range_in(t, ..) {
            let (k, v) = match kv {
                Ok(kv) => kv,
                Err(e) => {
                    record(e, damage)?;
                    break;
                }
            };
            match expected.next() {
                Some((ek, ev)) if *ek == k && **ev == *v => {}
                Some((ek, _)) if *ek == k => {
                    damage.push(self.disagreement(
                        t,
                        &k,
                        "the scan returned another value than a point read",
                    ));
                }
                _ => {
                    damage.push(self.disagreement(
                        t,
                        &k,
                        "the scan returned a key the index walk did not find there",
                    ));
                    break;
                }
            }
        }
        if let Some((k, _)) = expected.next() {
            damage.push(self.disagreement(
                t,
                k,
                "the index walk found a key the scan did not return",
            ));
        }
        Ok(tv)
    }

    /// Reads back the values of `pending` (the index walk's entries), checks
    /// each against a point read, and moves the good ones to `walked`.
    fn read_chunk(
        &self,
        t: &Table,
        view: &IndexView,
        snap: &Snapshot,
        pending: &mut Vec<(Vec<u8>, IndexValue)>,
        walked: &mut Vec<(Vec<u8>, Value)>,
        damage: &mut Vec<Damage>,
    ) -> Result<()> {
        let (keys, ptrs): (Vec<Vec<u8>>, Vec<_>) = pending
            .iter()
            .filter_map(|(k, v)| match v {
                IndexValue::Pointer(p) => Some((k.clone(), *p)),
                IndexValue::Inline(_) => None,
            })
            .unzip();
        let mut read = self
            .engine()
            .read_records(view, t.id(), &keys, &ptrs)
            .into_iter();
        for (k, v) in pending.drain(..) {
            let value = match v {
                IndexValue::Inline(bytes) => Value::from(bytes),
                IndexValue::Pointer(_) => match read.next() {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => {
                        record(e, damage)?;
                        continue;
                    }
                    None => {
                        return Err(Error::InvalidArgument(
                            "verify read fewer values than asked".into(),
                        ))
                    }
                },
            };
            match snap.get_in(t, &k) {
                Ok(Some(g)) if *g == *value => walked.push((k, value)),
                Ok(Some(_)) => damage.push(self.disagreement(
                    t,
                    &k,
                    "a point read returned another value than the index walk",
                )),
                Ok(None) => damage.push(self.disagreement(
                    t,
                    &k,
                    "the index walk found the key but a point read does not",
                )),
                Err(e) => record(e, damage)?,
            }
        }
        Ok(())
    }

    fn verify_unordered(&self, t: &Table, damage: &mut Vec<Damage>) -> Result<TableVerify> {
        let mut tv = TableVerify::new(t);
        let keys: Vec<Vec<u8>> = t.keys().collect::<Result<_>>()?;
        for chunk in keys.chunks(CHUNK) {
            let values = match t.multi_get(chunk) {
                Ok(values) => values,
                // A damaged value fails the whole batch: read its keys one
                // by one to find which.
                Err(e) if e.is_corruption() => chunk
                    .iter()
                    .map(|k| t.get(k).or_else(|e| record(e, damage).map(|()| None)))
                    .collect::<Result<_>>()?,
                Err(e) => return Err(e),
            };
            for (k, v) in chunk.iter().zip(values) {
                // The keydir listing and the lookups read the same map: a
                // listed key found absent was deleted in between.
                if let Some(v) = v {
                    tv.add(k, v.len());
                }
            }
        }
        Ok(tv)
    }

    /// Damage where the indexes disagree (named by the directory).
    fn disagreement(&self, t: &Table, key: &[u8], why: &str) -> Damage {
        Damage {
            file: self.path().to_path_buf(),
            offset: 0,
            what: format!("table {}: key {}: {why}", t.name(), show(key)),
        }
    }
}

/// Adds a corruption error to `damage`; any other error is returned.
fn record(e: Error, damage: &mut Vec<Damage>) -> Result<()> {
    match FileDamage::from_error(&e) {
        Some(d) => {
            let d = Damage::from(d);
            if !damage.contains(&d) {
                damage.push(d);
            }
            Ok(())
        }
        None => Err(e),
    }
}

impl TableVerify {
    fn new(t: &Table) -> TableVerify {
        TableVerify {
            name: t.name().to_string(),
            kind: t.kind(),
            entries: 0,
            key_bytes: 0,
            value_bytes: 0,
        }
    }

    fn add(&mut self, key: &[u8], value_len: usize) {
        self.entries += 1;
        self.key_bytes += key.len() as u64;
        self.value_bytes += value_len as u64;
    }
}

/// A key for messages: text when printable, hex otherwise.
fn show(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => k.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::FaultFs;
    use crate::{Db, Options, TableKind, TableOptions, WriteBatch};
    use std::path::Path;

    fn open(fs: &FaultFs) -> Db {
        Db::open(
            Path::new("/db"),
            Options::default()
                .fs(std::sync::Arc::new(fs.clone()))
                .memtable_size(16 << 10)
                .segment_size(32 << 10)
                .background_gc(false),
        )
        .unwrap()
    }

    #[test]
    fn counts_every_live_entry_of_every_table() {
        let fs = FaultFs::new();
        let db = open(&fs);
        let t = db.table("t", TableOptions::ordered()).unwrap();
        let u = db.table("u", TableOptions::unordered()).unwrap();
        for i in 0..200u32 {
            let k = format!("k{i:04}");
            db.put(&k, vec![1u8; if i % 2 == 0 { 10 } else { 2000 }])
                .unwrap();
            t.put(&k, b"tv").unwrap();
            u.put(&k, vec![2u8; 300]).unwrap();
        }
        let mut b = WriteBatch::new();
        for i in 0..50u32 {
            let k = format!("k{i:04}");
            b.delete(&k).delete_in(&u, &k);
        }
        db.write(b, Default::default()).unwrap();
        db.flush().unwrap();
        let r = db.verify().unwrap();
        assert!(r.is_clean(), "{:?}", r.damage);
        assert!(r.checked.sstables > 0 && r.checked.blocks > r.checked.sstables);
        assert!(r.checked.hint_files > 0 && r.checked.manifest_records > 0);
        assert_eq!(r.checked.keys, 500);
        assert_eq!(r.tables.len(), 3);
        assert_eq!(r.tables[0].name, "default");
        assert_eq!(r.tables[0].entries, 150);
        assert_eq!(
            r.tables[0].value_bytes,
            (50..200u64)
                .map(|i| if i % 2 == 0 { 10 } else { 2000 })
                .sum::<u64>()
        );
        assert_eq!((r.tables[1].name.as_str(), r.tables[1].entries), ("t", 200));
        assert_eq!(r.tables[1].key_bytes, 200 * 5);
        assert_eq!(r.tables[2].kind, TableKind::Unordered);
        assert_eq!(
            (r.tables[2].entries, r.tables[2].value_bytes),
            (150, 150 * 300)
        );
        assert_eq!(r.entries, 500);
    }

    /// Writers overwrite and delete keys of both table kinds while verify
    /// runs again and again: it never reports a disagreement.
    #[test]
    fn no_false_corruption_under_concurrent_writes() {
        let fs = FaultFs::new();
        let db = open(&fs);
        let t = db.table("t", TableOptions::ordered()).unwrap();
        let u = db.table("u", TableOptions::unordered()).unwrap();
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let written = std::sync::Arc::new(AtomicU32::new(0));
        let writer = {
            let (db, t, u) = (db.clone(), t.clone(), u.clone());
            let (stop, written) = (stop.clone(), written.clone());
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let k = format!("k{:03}", n % 300);
                    let v = vec![(n % 251) as u8; 100 + (n as usize * 37) % 3000];
                    if n.is_multiple_of(5) {
                        let mut b = WriteBatch::new();
                        b.delete(&k).delete_in(&t, &k).delete_in(&u, &k);
                        db.write(b, Default::default()).unwrap();
                    } else {
                        db.put(&k, &v).unwrap();
                        t.put(&k, &v).unwrap();
                        u.put(&k, &v).unwrap();
                    }
                    if n.is_multiple_of(500) {
                        db.flush().unwrap();
                    }
                    n += 1;
                    written.store(n, Ordering::Relaxed);
                }
            })
        };
        // At least 30 passes, and on until the writer has gone round the
        // key space ten times.
        let mut passes = 0;
        while passes < 30 || written.load(Ordering::Relaxed) < 3000 {
            let r = db.verify().unwrap();
            assert!(r.is_clean(), "{:?}", r.damage);
            assert_eq!(r.tables.len(), 3);
            assert!(r.tables.iter().all(|t| t.entries <= 300), "{r:?}");
            passes += 1;
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let r = db.verify().unwrap();
        assert_eq!(r.tables[0].entries, r.tables[1].entries);
        assert_eq!(r.tables[1].entries, r.tables[2].entries);
    }

    #[test]
    fn a_damaged_value_is_corruption_naming_its_segment() {
        let fs = FaultFs::new();
        let db = open(&fs);
        let u = db.table("u", TableOptions::unordered()).unwrap();
        u.put(b"k", vec![7u8; 3000]).unwrap();
        // Enough after it to seal its segment, and a flush so that open
        // does not replay it (its hint file rebuilds the keydir instead).
        for i in 0..20u32 {
            u.put(i.to_be_bytes(), vec![8u8; 3000]).unwrap();
        }
        db.flush().unwrap();
        drop(u);
        db.close().unwrap();
        let seg = Path::new("/db/000001.vlog");
        let mut bytes = fs.contents(seg).expect("the first segment");
        let at = bytes.windows(16).position(|w| w == [7u8; 16]).unwrap();
        bytes[at + 100] ^= 0x10;
        fs.set_contents(seg, bytes).unwrap();
        let db = open(&fs);
        let r = db.verify().unwrap();
        assert!(!r.is_clean());
        assert!(
            r.damage
                .iter()
                .any(|d| d.file == Path::new("/db/000001.vlog")),
            "{:?}",
            r.damage
        );
        // The counts are there, damage or not.
        assert!(
            r.checked.segments > 0 && r.checked.records > 0,
            "{:?}",
            r.checked
        );
    }
}
