//! [`Db::verify`]: reads every live entry of every table back and checks the
//! two indexes against each other. `vlog-tools verify` is this call on a
//! database directory.

use crate::db::Db;
use crate::error::{Error, Result};
use crate::options::{TableKind, TableOptions};
use crate::table::Table;

/// How many keys of an unordered table one `multi_get` of [`Db::verify`]
/// reads.
const UNORDERED_CHUNK: usize = 256;

/// What [`Db::verify`] read: one entry per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The tables in order: the default table first, then the named tables
    /// in creation order.
    pub tables: Vec<TableVerify>,
    /// Live entries read over all tables.
    pub entries: u64,
}

/// What [`Db::verify`] read of one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableVerify {
    /// The table's name (`"default"` for the default table).
    pub name: String,
    /// Its kind.
    pub kind: TableKind,
    /// Live entries read (each one twice: by the scan or the keydir listing,
    /// and by a point read).
    pub entries: u64,
    /// Bytes of their keys.
    pub key_bytes: u64,
    /// Bytes of their values.
    pub value_bytes: u64,
}

impl Db {
    /// Reads every live entry of every table and checks it.
    ///
    /// An ordered table is scanned in full at one snapshot (every value read
    /// from the vLog has its checksum and key checked), its keys must come
    /// strictly ascending, and a point read of each key at the same snapshot
    /// must return the value the scan returned. An unordered table lists its
    /// keydir and reads every value back with batched `multi_get`s. Writes
    /// may go on meanwhile: an ordered table is checked at the snapshot, and
    /// a key of an unordered table deleted while it is checked is skipped.
    ///
    /// Garbage records of the vLog (versions no index points at) are not
    /// read.
    ///
    /// # Errors
    /// `Error::Corruption` naming the damaged file when a read finds bad
    /// bytes, or naming the database directory when the indexes disagree
    /// (keys out of order, a scanned key that a point read does not find or
    /// finds with another value); `Error::Io` for a failed read.
    ///
    /// # Example
    /// ```
    /// use wisckey::{Db, Options, TableOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.put(b"a", vec![1u8; 4096])?;
    /// db.table("blobs", TableOptions::unordered())?.put(b"b", b"2")?;
    /// let report = db.verify()?;
    /// assert_eq!(report.entries, 2);
    /// assert_eq!(report.tables[1].name, "blobs");
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut tables = vec![self.default_table()];
        for (name, kind) in self.table_kinds() {
            let opts = match kind {
                TableKind::Unordered => TableOptions::unordered(),
                _ => TableOptions::ordered(),
            };
            tables.push(self.table(&name, opts)?);
        }
        let mut report = VerifyReport::default();
        for t in &tables {
            let tv = match t.kind() {
                TableKind::Unordered => self.verify_unordered(t)?,
                _ => self.verify_ordered(t)?,
            };
            report.entries += tv.entries;
            report.tables.push(tv);
        }
        Ok(report)
    }

    fn verify_ordered(&self, t: &Table) -> Result<TableVerify> {
        let mut tv = TableVerify::new(t);
        let snap = self.snapshot();
        let mismatch = |reason: String| {
            Error::corruption(self.path(), 0, format!("table {}: {reason}", t.name()))
        };
        let mut prev: Option<Vec<u8>> = None;
        for kv in snap.range_in(t, ..) {
            let (k, v) = kv?;
            if let Some(p) = &prev {
                if p.as_slice() >= k.as_slice() {
                    return Err(mismatch(format!(
                        "the scan returned key {} after key {}",
                        show(&k),
                        show(p)
                    )));
                }
            }
            match snap.get_in(t, &k)? {
                None => {
                    return Err(mismatch(format!(
                        "key {} was scanned but a point read finds nothing",
                        show(&k)
                    )))
                }
                Some(g) if *g != *v => {
                    return Err(mismatch(format!(
                        "key {}: a point read returned {} bytes that differ from the {} scanned",
                        show(&k),
                        g.len(),
                        v.len()
                    )))
                }
                Some(_) => {}
            }
            tv.add(&k, v.len());
            prev = Some(k);
        }
        Ok(tv)
    }

    fn verify_unordered(&self, t: &Table) -> Result<TableVerify> {
        let mut tv = TableVerify::new(t);
        let keys = t.keys()?;
        for chunk in keys.chunks(UNORDERED_CHUNK) {
            for (k, v) in chunk.iter().zip(t.multi_get(chunk)?) {
                // The keydir listing and the lookups read the same map: a
                // listed key found absent was deleted in between.
                if let Some(v) = v {
                    tv.add(k, v.len());
                }
            }
        }
        Ok(tv)
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
        match db.verify() {
            Err(e @ crate::Error::Corruption { .. }) => {
                assert!(e.to_string().contains("000001.vlog"), "{e}")
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }
}
