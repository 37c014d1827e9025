//! Entry points for fuzzing and corruption tests: thin public wrappers over
//! the crate-private decoders. Not part of the API (hidden from the docs, no
//! stability promise).
//!
//! Every decoder entry point takes arbitrary bytes and returns `Ok(())` or
//! an error; it never panics on hostile input. A panic means the engine broke
//! one of its own invariants (a decoded value that does not round-trip, an
//! SSTable get that disagrees with its iterator): a bug for the fuzzer to
//! report. [`model`] drives the public API over a [`FaultFs`] and panics when
//! the database disagrees with a `BTreeMap` model.
//!
//! Several entry points read a *mode byte* first: when its low bit is set,
//! the entry point fixes up checksums, so that the fuzzer can explore what
//! lies behind them (see each function).

#![allow(clippy::unwrap_used, missing_docs)]

use crate::io::{FailMode, FaultFs, FileHandle, Fs, Repeat};
use crate::lsm::ikey;
use crate::lsm::manifest::{Manifest, ManifestState, VersionEdit, CURRENT_FILE};
use crate::lsm::sstable::{Table, TableBuilder, TableBuilderOptions};
use crate::lsm::sstable::{FORMAT_VERSION, TABLE_MAGIC};
use crate::vlog::record::{self, HEADER_LEN, TRAILER_LEN};
use crate::vlog::{replay_segment, Segment, SegmentKind, ValuePointer};
use crate::{Db, Error, GcOptions, Options, Result, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn corrupt(what: &str) -> Error {
    Error::corruption(PathBuf::from("<fuzz>"), 0, what.to_owned())
}

use crate::io::bytes_file::BytesFile as MemFile;

// ---------------------------------------------------------------- vLog

/// One vLog record. Mode byte bit 0: recompute the record's checksum first
/// (from the lengths in its header). A decoded record must re-encode to the
/// same bytes.
pub fn vlog_record(data: &[u8]) -> Result<()> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 {
        if let Some(h) = record::Header::decode(&buf) {
            let len = h.record_len();
            if len <= buf.len() as u64 {
                let len = len as usize;
                let crc = crc32fast::hash(&buf[..len - TRAILER_LEN]);
                buf[len - TRAILER_LEN..len].copy_from_slice(&crc.to_le_bytes());
            }
        }
    }
    let rec = record::decode(&buf).map_err(|e| corrupt(e.describe()))?;
    let mut again = Vec::new();
    record::encode(
        &mut again,
        rec.header.is_put,
        rec.header.continues,
        rec.header.table,
        rec.header.seq,
        rec.key,
        rec.value,
    );
    assert_eq!(
        &again[..],
        &buf[..again.len()],
        "record does not round-trip"
    );
    assert_eq!(again.len() as u64, rec.header.record_len());
    assert!(again.len() >= HEADER_LEN + TRAILER_LEN);
    Ok(())
}

/// A value pointer: a decoded pointer must decode again from its encoding.
pub fn value_pointer(data: &[u8]) -> Result<()> {
    let p = ValuePointer::decode(data).ok_or_else(|| corrupt("bad pointer"))?;
    assert_eq!(ValuePointer::decode(&p.encode()), Some(p));
    Ok(())
}

/// A whole vLog segment replayed as the newest segment (torn tail allowed)
/// and as a sealed one. Every replayed batch must lie within the file.
pub fn vlog_segment(data: &[u8]) -> Result<()> {
    let fs: Arc<dyn Fs> = Arc::new(FaultFs::new());
    let file: Arc<dyn FileHandle> = Arc::new(MemFile(data.to_vec()));
    let seg = Segment::new(
        fs,
        1,
        SegmentKind::User,
        PathBuf::from("/000001.vlog"),
        file,
    );
    let mut first = Ok(());
    for is_last in [true, false] {
        let mut end = 0u64;
        let r = replay_segment(&seg, 0, is_last, 64, |batch| {
            for r in &batch.records {
                assert_eq!(r.pointer.offset, end, "records are not contiguous");
                end += u64::from(r.pointer.len);
            }
            Ok(())
        });
        match r {
            Ok(out) => {
                assert!(out.valid_end <= data.len() as u64);
                assert_eq!(out.valid_end, end);
            }
            Err(e) => {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
    }
    first
}

// ---------------------------------------------------------------- SSTables

fn open_table(bytes: Vec<u8>) -> Result<Arc<Table>> {
    let len = bytes.len() as u64;
    Table::open(Arc::new(MemFile(bytes)), PathBuf::from("/000001.sst"), len)
}

/// Iterates a table forwards and backwards, then gets keys it listed and a
/// few it did not; a get of a listed key must find that key's user part
/// (unless the filter, which no checksum ties to the data's meaning, says no).
fn exercise_table(table: &Arc<Table>, extra_targets: &[Vec<u8>]) -> Result<()> {
    use crate::lsm::iter::InternalIterator;
    let mut it = table.iter();
    it.seek_to_first();
    let mut keys = Vec::new();
    while it.valid() && keys.len() < 10_000 {
        keys.push(it.key().to_vec());
        it.next();
    }
    it.status()?;
    let mut it = table.iter();
    it.seek_to_last();
    let mut n = 0;
    while it.valid() && n < 10_000 {
        n += 1;
        it.prev();
    }
    it.status()?;
    for k in keys.iter().step_by(1 + keys.len() / 64) {
        let mut it = table.iter();
        it.seek(k);
        it.seek_for_prev(k);
        it.status()?;
        let up = ikey::user_part(k);
        let target = ikey::seek_key(up, u64::MAX >> 8);
        table.get(&target)?;
        table.get(k)?;
    }
    for t in extra_targets {
        table.get(t)?;
        let mut it = table.iter();
        it.seek(t);
        it.status()?;
    }
    Ok(())
}

/// An SSTable file: open, full iteration both ways, some gets.
pub fn sstable(data: &[u8]) -> Result<()> {
    let table = open_table(data.to_vec())?;
    let extra: Vec<Vec<u8>> = data
        .chunks(24)
        .take(4)
        .map(|c| ikey::seek_key(c, u64::MAX >> 8))
        .collect();
    exercise_table(&table, &extra)
}

fn stored(out: &mut Vec<u8>, payload: &[u8]) -> (u64, u64) {
    let off = out.len() as u64;
    out.extend_from_slice(payload);
    out.push(0);
    let crc = crc32fast::hash(&out[off as usize..]);
    out.extend_from_slice(&crc.to_le_bytes());
    (off, payload.len() as u64)
}

/// A key/value block of restart points only (no prefix compression).
fn kv_block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    let mut restarts = Vec::new();
    for (k, v) in entries {
        restarts.push(b.len() as u32);
        crate::coding::put_varint(&mut b, 0);
        crate::coding::put_varint(&mut b, k.len() as u64);
        crate::coding::put_varint(&mut b, v.len() as u64);
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    for r in &restarts {
        b.extend_from_slice(&r.to_le_bytes());
    }
    b.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
    b
}

fn props_block(entries: u64, smallest: &[u8], largest: &[u8], data_blocks: u64) -> Vec<u8> {
    let mut b = Vec::new();
    crate::coding::put_varint(&mut b, entries);
    crate::coding::put_length_prefixed(&mut b, smallest);
    crate::coding::put_length_prefixed(&mut b, largest);
    crate::coding::put_varint(&mut b, 0);
    crate::coding::put_varint(&mut b, 0);
    crate::coding::put_varint(&mut b, data_blocks);
    b
}

fn footer(out: &mut Vec<u8>, index: (u64, u64), filter: (u64, u64), props: (u64, u64)) {
    let start = out.len();
    for v in [index.0, index.1, filter.0, filter.1, props.0, props.1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The largest internal key used by the synthetic tables' index.
fn max_key() -> Vec<u8> {
    ikey::encode(u32::MAX, &[0xff; 16], 0, 0)
}

fn sample_entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..8u32)
        .map(|i| {
            let k = ikey::encode(0, format!("key{i:03}").as_bytes(), 10 + u64::from(i), 1);
            (k, vec![b'v'; i as usize])
        })
        .collect()
}

/// A key/value block (data or index): the bytes are stored (with a correct
/// checksum) as the only data block of a synthetic table, which is then
/// opened, iterated and searched; and as the index block of another.
pub fn block(data: &[u8]) -> Result<()> {
    let mk = max_key();
    // As a data block.
    let mut f = Vec::new();
    let d = stored(&mut f, data);
    let mut index_entry = Vec::new();
    crate::coding::put_varint(&mut index_entry, d.0);
    crate::coding::put_varint(&mut index_entry, d.1);
    let ih = stored(&mut f, &kv_block(&[(mk.clone(), index_entry)]));
    let ph = stored(&mut f, &props_block(1, &mk, &mk, 1));
    footer(&mut f, ih, (0, 0), ph);
    let first = match open_table(f) {
        Ok(t) => {
            let extra: Vec<Vec<u8>> = sample_entries().into_iter().map(|e| e.0).collect();
            exercise_table(&t, &extra)
        }
        Err(e) => Err(e),
    };
    // As an index block in front of one real data block.
    let mut f = Vec::new();
    stored(&mut f, &kv_block(&sample_entries()));
    let ih = stored(&mut f, data);
    let ph = stored(&mut f, &props_block(1, &mk, &mk, 1));
    footer(&mut f, ih, (0, 0), ph);
    if let Ok(t) = open_table(f) {
        exercise_table(&t, &[])?;
    }
    first
}

/// A bloom filter block: stored as the filter of a synthetic table holding
/// eight keys, which are then looked up (each lookup probes the filter).
pub fn bloom(data: &[u8]) -> Result<()> {
    let entries = sample_entries();
    let last = entries.last().map(|e| e.0.clone()).unwrap_or_default();
    let mut f = Vec::new();
    let d = stored(&mut f, &kv_block(&entries));
    let fh = stored(&mut f, data);
    let mut index_entry = Vec::new();
    crate::coding::put_varint(&mut index_entry, d.0);
    crate::coding::put_varint(&mut index_entry, d.1);
    let ih = stored(&mut f, &kv_block(&[(last.clone(), index_entry)]));
    let ph = stored(&mut f, &props_block(8, &entries[0].0, &last, 1));
    footer(&mut f, ih, fh, ph);
    let t = open_table(f)?;
    for (k, _) in &entries {
        let up = ikey::user_part(k);
        if let Some((found, _)) = t.get(&ikey::seek_key(up, u64::MAX >> 8))? {
            assert_eq!(ikey::user_part(&found), up, "get returned another key");
        }
    }
    for probe in data.chunks(12).take(8) {
        t.get(&ikey::seek_key(probe, u64::MAX >> 8))?;
    }
    Ok(())
}

/// A valid table (from [`TableBuilder`]) used as the body in front of fuzzed
/// footers, and as a seed.
pub fn sample_table(entries: usize, block_size: usize, bloom_bits: u32) -> Vec<u8> {
    let fs = FaultFs::new();
    let path = Path::new("/t.sst");
    let file = fs.create(path).unwrap();
    let mut b = TableBuilder::new(
        file,
        path.to_path_buf(),
        TableBuilderOptions {
            block_size,
            restart_interval: 4,
            bloom_bits_per_key: bloom_bits,
            ..TableBuilderOptions::default()
        },
    );
    for i in 0..entries {
        let k = ikey::encode(
            (i / 50) as u32,
            format!("k{i:05}").as_bytes(),
            i as u64 + 1,
            1,
        );
        b.add(&k, format!("value-{i}").as_bytes()).unwrap();
    }
    b.finish().unwrap();
    fs.contents(path).unwrap()
}

/// A table footer. Mode byte bit 0: the next 60 bytes are the footer body
/// and its checksum is computed; otherwise the rest is the footer as is. The
/// footer follows the body of a valid 40-entry table.
pub fn footer_bytes(data: &[u8]) -> Result<()> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let full = sample_table(40, 256, 10);
    let mut f = full[..full.len() - 64].to_vec();
    if mode & 1 == 1 {
        let mut body = rest.to_vec();
        body.resize(60, 0);
        let crc = crc32fast::hash(&body);
        f.extend_from_slice(&body);
        f.extend_from_slice(&crc.to_le_bytes());
    } else {
        f.extend_from_slice(rest);
    }
    let t = open_table(f)?;
    exercise_table(&t, &[])
}

// ---------------------------------------------------------------- manifest

/// One manifest edit: a decoded edit must re-encode to an equal edit; it is
/// also applied to an empty state.
pub fn manifest_edit(data: &[u8]) -> Result<()> {
    let edit = VersionEdit::decode(data).map_err(|e| corrupt(&e))?;
    let again = VersionEdit::decode(&edit.encode()).expect("re-encoded edit does not decode");
    assert_eq!(again, edit, "edit does not round-trip");
    let mut state = ManifestState::default();
    let _ = state.apply(&edit);
    Ok(())
}

/// A manifest file, recovered through `CURRENT` from a [`FaultFs`]. Mode
/// byte bit 0: the rest is a list of payloads (`u16` length, bytes), framed
/// as records with correct lengths and checksums; otherwise the rest is the
/// file as is.
pub fn manifest_file(data: &[u8]) -> Result<()> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let bytes = if mode & 1 == 1 {
        let mut out = Vec::new();
        let mut r = rest;
        while r.len() >= 2 {
            let n = (usize::from(u16::from_le_bytes([r[0], r[1]]))).min(r.len() - 2);
            let payload = &r[2..2 + n];
            out.extend_from_slice(&(n as u32).to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            out.extend_from_slice(payload);
            r = &r[2 + n..];
        }
        out
    } else {
        rest.to_vec()
    };
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    fs.create_dir_all(dir)
        .map_err(|e| Error::io("fuzz setup", e))?;
    for (name, content) in [
        ("MANIFEST-000001", bytes),
        (CURRENT_FILE, b"MANIFEST-000001\n".to_vec()),
    ] {
        let path = dir.join(name);
        fs.create(&path).map_err(|e| Error::io("fuzz setup", e))?;
        fs.set_contents(&path, content)
            .map_err(|e| Error::io("fuzz setup", e))?;
    }
    let fs: Arc<dyn Fs> = Arc::new(fs);
    match Manifest::recover(fs, dir)? {
        Some((_m, state)) => {
            // The recovered state must survive a snapshot round trip.
            let snap = state.snapshot_edit();
            let decoded =
                VersionEdit::decode(&snap.encode()).expect("snapshot edit does not decode");
            assert_eq!(decoded, snap);
            let mut again = ManifestState::default();
            again
                .apply(&snap)
                .expect("snapshot of a recovered state does not apply");
            Ok(())
        }
        None => panic!("CURRENT exists but recover found none"),
    }
}

/// A valid manifest payload list (for the mode-1 seed of [`manifest_file`]):
/// the snapshot of a small database's state, as edits.
pub fn sample_manifest_edits() -> Vec<Vec<u8>> {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let opts = model_options(&fs);
    let db = Db::open(dir, opts).unwrap();
    for i in 0..200u32 {
        db.put(format!("k{i:04}"), vec![b'x'; (i as usize % 7) * 40])
            .unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    db.close().unwrap();
    let mut out = Vec::new();
    for name in fs.list(dir).unwrap() {
        if name.starts_with("MANIFEST-") {
            let bytes = fs.contents(&dir.join(&name)).unwrap();
            let mut r = &bytes[..];
            while r.len() >= 8 {
                let n = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
                if r.len() < 8 + n {
                    break;
                }
                out.push(r[8..8 + n].to_vec());
                r = &r[8 + n..];
            }
        }
    }
    out
}

/// The raw files of a small database (name, bytes), for seeds.
pub fn sample_db_files() -> Vec<(String, Vec<u8>)> {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let db = Db::open(dir, model_options(&fs)).unwrap();
    for i in 0..300u32 {
        db.put(
            format!("k{i:04}"),
            vec![b'a' + (i % 26) as u8; (i as usize % 5) * 50],
        )
        .unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let mut v: Vec<(String, Vec<u8>)> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter_map(|n| fs.contents(&dir.join(&n)).map(|c| (n, c)))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- model

fn model_options(fs: &FaultFs) -> Options {
    Options::default()
        .fs(Arc::new(fs.clone()))
        .memtable_size(4 << 10)
        .segment_size(16 << 10)
        .block_size(256)
        .value_threshold(64)
        .l0_compaction_trigger(2)
        .base_level_size(8 << 10)
        .target_file_size(4 << 10)
        .background_gc(false)
}

struct Input<'a>(&'a [u8]);
impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// A key and its new value (`None`: deleted).
type Write = (Vec<u8>, Option<Vec<u8>>);

fn mkey(b: u8) -> Vec<u8> {
    format!("key{:02}", b % 24).into_bytes()
}

fn mvalue(key: &[u8], counter: u64, size_byte: u8) -> Vec<u8> {
    let len = match size_byte % 4 {
        0 => 0,
        1 => 10,
        2 => 100,
        _ => 400 + usize::from(size_byte) * 12,
    };
    let unit = format!("{}#{counter};", String::from_utf8_lossy(key));
    unit.bytes().cycle().take(len).collect()
}

/// The allowed outcome of a read while faults may have fired.
fn tolerated(e: &Error) -> bool {
    matches!(e, Error::Io { .. } | Error::Poisoned(_))
}

fn scan_all(db: &Db, reverse: bool) -> Result<Model> {
    let mut out = Model::new();
    if reverse {
        for kv in db.iter().rev() {
            let (k, v) = kv?;
            out.insert(k, v.into_vec());
        }
    } else {
        for kv in db.iter() {
            let (k, v) = kv?;
            out.insert(k, v.into_vec());
        }
    }
    Ok(out)
}

/// Interprets the bytes as API operations (put, delete, batch, get, scan,
/// flush, compact, GC, sync, reopen, failure injection, power loss) on a
/// database over a [`FaultFs`], checking every read against a model. Without
/// an injected failure reads must match the model exactly; after a power
/// loss the database must hold the state as of its last sync point plus a
/// prefix of the writes after it. While an injected failure may have fired,
/// reads may fail with `Io`/`Poisoned` but never return a wrong value; the
/// model is re-learnt at the next power loss. Panics on a disagreement.
pub fn model(data: &[u8]) {
    let mut input = Input(data);
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let Ok(mut db) = Db::open(dir, model_options(&fs)) else {
        panic!("opening an empty database failed");
    };
    // The state as of the last sync point, and the writes acknowledged since.
    let mut durable = Model::new();
    let mut pending: Vec<Vec<Write>> = Vec::new();
    let mut model = Model::new();
    // A failure was armed since the model was last known exactly.
    let mut faulty = false;
    let mut counter = 0u64;
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 200 {
            break;
        }
        match op % 14 {
            0..=2 => {
                let k = mkey(input.byte().unwrap_or(0));
                counter += 1;
                let v = mvalue(&k, counter, input.byte().unwrap_or(1));
                let sync = op % 14 == 2;
                let r = db.write(
                    {
                        let mut b = WriteBatch::new();
                        b.put(&k, &v);
                        b
                    },
                    WriteOptions::default().sync(sync),
                );
                match r {
                    Ok(()) => {
                        model.insert(k.clone(), v.clone());
                        pending.push(vec![(k, Some(v))]);
                        if sync {
                            durable = model.clone();
                            pending.clear();
                        }
                    }
                    Err(e) => assert!(faulty, "put failed without a fault: {e}"),
                }
            }
            3 => {
                let k = mkey(input.byte().unwrap_or(0));
                match db.delete(&k) {
                    Ok(()) => {
                        model.remove(&k);
                        pending.push(vec![(k, None)]);
                    }
                    Err(e) => assert!(faulty, "delete failed without a fault: {e}"),
                }
            }
            4 => {
                let n = 1 + input.byte().unwrap_or(0) % 4;
                let mut b = WriteBatch::new();
                let mut ops = Vec::new();
                for _ in 0..n {
                    let x = input.byte().unwrap_or(0);
                    let k = mkey(x);
                    if x & 0x80 != 0 {
                        b.delete(&k);
                        ops.push((k, None));
                    } else {
                        counter += 1;
                        let v = mvalue(&k, counter, input.byte().unwrap_or(1));
                        b.put(&k, &v);
                        ops.push((k, Some(v)));
                    }
                }
                match db.write(b, WriteOptions::default()) {
                    Ok(()) => {
                        for (k, v) in &ops {
                            match v {
                                Some(v) => model.insert(k.clone(), v.clone()),
                                None => model.remove(k),
                            };
                        }
                        pending.push(ops);
                    }
                    Err(e) => assert!(faulty, "batch failed without a fault: {e}"),
                }
            }
            5 => {
                let k = mkey(input.byte().unwrap_or(0));
                match db.get(&k) {
                    Ok(v) => {
                        if !faulty {
                            assert_eq!(v.map(|v| v.into_vec()), model.get(&k).cloned());
                        }
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "get: {e}"),
                }
            }
            6 => {
                let reverse = input.byte().unwrap_or(0) & 1 == 1;
                match scan_all(&db, reverse) {
                    Ok(m) => {
                        if !faulty {
                            assert_eq!(m, model, "scan disagrees with the model");
                        }
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "scan: {e}"),
                }
            }
            7 => match db.flush() {
                Ok(()) => {
                    if !faulty {
                        durable = model.clone();
                        pending.clear();
                    }
                }
                Err(e) => assert!(faulty, "flush failed without a fault: {e}"),
            },
            8 => {
                if let Err(e) = db.compact() {
                    assert!(faulty, "compact failed without a fault: {e}");
                }
            }
            9 => {
                if let Err(e) = db.gc(GcOptions::default().all_sealed(true)) {
                    assert!(faulty, "gc failed without a fault: {e}");
                }
            }
            10 => match db.sync() {
                Ok(()) => {
                    if !faulty {
                        durable = model.clone();
                        pending.clear();
                    }
                }
                Err(e) => assert!(faulty, "sync failed without a fault: {e}"),
            },
            11 => {
                // Clean close and reopen.
                let r = db.close();
                if !faulty {
                    assert!(r.is_ok(), "close: {r:?}");
                }
                match Db::open(dir, model_options(&fs)) {
                    Ok(d) => db = d,
                    Err(e) => {
                        assert!(faulty, "reopen failed without a fault: {e}");
                        fs.recover();
                        faulty = false;
                        db = reopen_after_power_loss(&fs, dir, 0);
                        model = relearn(&db);
                        durable = model.clone();
                        pending.clear();
                        continue;
                    }
                }
                if !faulty {
                    assert_eq!(scan_all(&db, false).unwrap(), model, "after reopen");
                    durable = model.clone();
                    pending.clear();
                }
            }
            12 => {
                let n = u64::from(input.byte().unwrap_or(0) % 32);
                let how = input.byte().unwrap_or(0);
                let mode = match how % 3 {
                    0 => FailMode::Eio,
                    1 => FailMode::Enospc,
                    _ => FailMode::ShortWrite,
                };
                let repeat = if how & 0x80 != 0 {
                    Repeat::Persistent
                } else {
                    Repeat::Once
                };
                fs.fail_after(n, mode, repeat);
                faulty = true;
            }
            _ => {
                // Power loss: nothing more reaches the disk, then reboot.
                let seed = u64::from(input.byte().unwrap_or(0));
                fs.crash();
                drop(db);
                fs.recover();
                db = reopen_after_power_loss(&fs, dir, seed);
                let got = relearn(&db);
                if !faulty {
                    // durable + a prefix of pending.
                    let mut m = durable.clone();
                    let mut ok = m == got;
                    for ops in &pending {
                        if ok {
                            break;
                        }
                        for (k, v) in ops {
                            match v {
                                Some(v) => m.insert(k.clone(), v.clone()),
                                None => m.remove(k),
                            };
                        }
                        ok = m == got;
                    }
                    assert!(ok, "state after power loss is not a prefix of the writes");
                }
                faulty = false;
                model = got;
                durable = model.clone();
                pending.clear();
            }
        }
    }
    fs.recover();
    drop(db);
}

fn reopen_after_power_loss(fs: &FaultFs, dir: &Path, seed: u64) -> Db {
    fs.power_loss(seed);
    match Db::open(dir, model_options(fs)) {
        Ok(db) => db,
        Err(e) => panic!("open after power loss: {e}"),
    }
}

fn relearn(db: &Db) -> Model {
    match scan_all(db, false) {
        Ok(m) => m,
        Err(e) => panic!("scan after power loss: {e}"),
    }
}

// ---------------------------------------------------------------- dispatch

/// The fuzz targets, by name (the directory names under `fuzz/corpus`).
pub const TARGETS: &[&str] = &[
    "vlog_record",
    "value_pointer",
    "vlog_segment",
    "sstable",
    "block",
    "bloom",
    "footer",
    "manifest_edit",
    "manifest_file",
    "model",
];

/// Runs the named target on `data` (`model` returns `Ok(())` or panics).
pub fn run(target: &str, data: &[u8]) -> Result<()> {
    match target {
        "vlog_record" => vlog_record(data),
        "value_pointer" => value_pointer(data),
        "vlog_segment" => vlog_segment(data),
        "sstable" => sstable(data),
        "block" => block(data),
        "bloom" => bloom(data),
        "footer" => footer_bytes(data),
        "manifest_edit" => manifest_edit(data),
        "manifest_file" => manifest_file(data),
        "model" => {
            model(data);
            Ok(())
        }
        other => panic!("unknown fuzz target {other}"),
    }
}

/// A few valid inputs for the named target (the seed corpus).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let with_mode = |mode: u8, b: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(b);
        v
    };
    let files = sample_db_files();
    let file = |suffix: &str| -> Vec<Vec<u8>> {
        files
            .iter()
            .filter(|(n, _)| n.ends_with(suffix) || (suffix == "MANIFEST" && n.starts_with(suffix)))
            .map(|(_, c)| c.clone())
            .collect()
    };
    match target {
        "vlog_record" => {
            let mut out = Vec::new();
            for (i, (k, v)) in [
                (&b"k"[..], &b""[..]),
                (b"key", b"value"),
                (b"", &[7u8; 300]),
            ]
            .iter()
            .enumerate()
            {
                let mut buf = Vec::new();
                record::encode(&mut buf, i != 1, i == 2, i as u32, 42 + i as u64, k, v);
                out.push(with_mode(0, &buf));
            }
            out
        }
        "value_pointer" => [(1u64, 0u64, 30u32), (7, 1 << 20, 4096), (u64::MAX, 3, 25)]
            .iter()
            .map(|&(segment, offset, len)| {
                ValuePointer {
                    segment,
                    offset,
                    len,
                }
                .encode()
            })
            .collect(),
        "vlog_segment" => file(".vlog")
            .into_iter()
            .filter(|c| c.len() <= 20 << 10)
            .take(2)
            .collect(),
        "sstable" => {
            let mut v = vec![sample_table(40, 256, 10), sample_table(120, 1024, 0)];
            v.extend(file(".sst").into_iter().take(1));
            v
        }
        "block" => vec![
            kv_block(&sample_entries()),
            vec![0, 0, 0, 0],
            kv_block(&sample_entries()[..1]),
        ],
        "bloom" => {
            let mut a = vec![0xffu8; 16];
            a.push(7);
            let mut b = vec![0x5au8; 64];
            b.push(3);
            vec![a, b]
        }
        "footer" => {
            let t = sample_table(40, 256, 10);
            let f = &t[t.len() - 64..];
            vec![with_mode(0, f), with_mode(1, &f[..60])]
        }
        "manifest_edit" => sample_manifest_edits(),
        "manifest_file" => {
            let mut out: Vec<Vec<u8>> = file("MANIFEST").iter().map(|m| with_mode(0, m)).collect();
            let mut framed = vec![1u8];
            for p in sample_manifest_edits() {
                framed.extend_from_slice(&(p.len() as u16).to_le_bytes());
                framed.extend_from_slice(&p);
            }
            out.push(framed);
            out
        }
        "model" => vec![
            // put x3, get, scan, flush, put, reopen, scan
            vec![0, 1, 3, 1, 2, 3, 2, 5, 5, 1, 6, 0, 7, 0, 9, 3, 11, 6, 1],
            // puts, batch, sync, power loss
            vec![0, 4, 3, 4, 3, 7, 130, 9, 3, 10, 1, 5, 3, 13, 5, 6, 0],
            // many large puts, compact, gc, fault, writes, power loss
            (0..40u8)
                .flat_map(|i| [0, i, 3])
                .chain([8, 9, 12, 3, 0, 0, 1, 3, 0, 2, 3, 13, 7, 6, 0])
                .collect(),
        ],
        other => panic!("unknown fuzz target {other}"),
    }
}
