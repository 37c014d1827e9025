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

use crate::files::CURRENT as CURRENT_FILE;
use crate::io::{FileHandle, Fs};
use crate::lsm::ikey;
use crate::lsm::sstable::format::{
    put_stored_block, BlockHandle, Footer, SstProperties, COMPRESSION_NONE,
};
use crate::lsm::sstable::{Sst, SstBuilder, SstBuilderOptions};
use crate::manifest::{Manifest, ManifestState, VersionEdit};
use crate::testing::{FailMode, FaultFs, Repeat};
use crate::vlog::hint;
use crate::vlog::record::{self, HEADER_LEN, TRAILER_LEN};
use crate::vlog::{replay_segment, Segment, SegmentKind, ValuePointer};
use crate::{Db, Error, GcOptions, Options, Result, TableOptions, WriteBatch, WriteOptions};
use std::collections::{BTreeMap, BTreeSet};
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

// ---------------------------------------------------------------- hints

/// A hint file. Mode byte bit 0: the rest is the hint without its trailing
/// checksum, which is computed and appended; otherwise the rest is the file
/// as is. Decoding must give a hint or `Error::Corruption` (never another
/// error); a decoded hint must keep the decoder's promises (known flags,
/// every entry inside the segment and long enough for its key) and
/// re-encode to a hint that decodes to the same, byte for byte the same
/// when the input used the shortest varints. Bit 1: the hint is then also
/// installed as the hint of a segment of a sample database with an
/// unordered table, which is reopened and read (see [`hint_in_db`]).
pub fn hint_file(data: &[u8]) -> Result<()> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let bytes = hint_bytes(mode, rest);
    let decoded = check_hint(&bytes);
    if mode & 2 == 2 {
        hint_in_db(mode >> 2, &bytes)?;
    }
    decoded.map(|_| ())
}

fn hint_bytes(mode: u8, rest: &[u8]) -> Vec<u8> {
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
    }
    bytes
}

/// Decodes a hint and checks what a decoded hint promises.
fn check_hint(bytes: &[u8]) -> Result<hint::Hint> {
    let path = Path::new("/db/000001.hint");
    let h = match hint::decode(path, bytes) {
        Ok(h) => h,
        Err(e) => match &e {
            Error::Corruption { file, offset, .. } => {
                assert_eq!(file, path, "corruption names another file");
                assert!(*offset <= bytes.len() as u64, "offset past the end: {e}");
                return Err(e);
            }
            other => panic!("hint decode gave a non-corruption error: {other}"),
        },
    };
    let min_len = record::record_len(0, 0) as u64;
    for e in &h.entries {
        assert!(
            u64::from(e.len) >= min_len + e.key.len() as u64,
            "entry shorter than its record: {e:?}"
        );
        assert!(
            e.offset.checked_add(u64::from(e.len)).unwrap() <= h.segment_len,
            "entry past the segment: {e:?}"
        );
    }
    let again = hint::encode(h.segment, h.segment_len, &h.entries);
    let h2 = hint::decode(path, &again).expect("re-encoded hint does not decode");
    assert_eq!(h2, h, "hint does not round-trip");
    // The encoder writes the shortest varints, the decoder also takes longer
    // ones; everything else is fixed-width. So the re-encoding is never
    // longer, and of the same length only when it is the same bytes.
    assert!(again.len() <= bytes.len(), "re-encoded hint grew");
    if again.len() == bytes.len() {
        assert_eq!(
            again, bytes,
            "a hint of shortest varints re-encodes otherwise"
        );
    }
    Ok(h)
}

/// Installs `bytes` as the hint file of one vLog segment of the
/// [`sample_db`] (the `sel`-th, counting every live segment, the open heads
/// too), then opens the database, reads its unordered table, runs a GC
/// pass, writes, closes and reopens it.
///
/// A hint that does not decode, names another segment or describes another
/// segment length must be ignored (the segment is scanned), except that a
/// sealed segment shorter than its hint says is `Corruption` naming the
/// segment (records were cut off at a record boundary); one that
/// lists exactly the segment's records is as good as a scan: in both cases
/// every read must match the sample exactly. A well-checksummed hint that
/// lists other records is derived data that lies; then every call must
/// still return a value or an error (`Corruption`, or `Poisoned` after a
/// failed background job), and never panic.
pub fn hint_in_db(sel: u8, bytes: &[u8]) -> Result<()> {
    let sample = sample_db();
    let (n, seg_name, true_entries) = &sample.segments[usize::from(sel) % sample.segments.len()];
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let setup = |e| Error::io("fuzz setup", e);
    fs.create_dir_all(dir).map_err(setup)?;
    let hint_name = crate::files::hint(*n);
    let mut seg_len = 0;
    for (name, content) in &sample.files {
        if *name == hint_name {
            continue;
        }
        if name == seg_name {
            seg_len = content.len() as u64;
        }
        let path = dir.join(name);
        fs.create(&path).map_err(setup)?;
        fs.set_contents(&path, content.clone()).map_err(setup)?;
    }
    let hint_path = dir.join(&hint_name);
    fs.create(&hint_path).map_err(setup)?;
    fs.set_contents(&hint_path, bytes.to_vec()).map_err(setup)?;
    let (exact, cut) = match hint::decode(&hint_path, bytes) {
        Ok(h) if h.segment == *n && h.segment_len == seg_len => {
            (sorted_entries(h.entries) == *true_entries, false)
        }
        // A hint of a sealed segment that says the segment was longer than
        // it is: open must refuse the segment as cut.
        Ok(h) if h.segment == *n && h.segment_len > seg_len => (true, true),
        _ => (true, false),
    };
    let seg_path = dir.join(seg_name);
    let tolerated = |e: &Error| match e {
        Error::Corruption { file, .. } if cut && *file == seg_path => true,
        Error::Corruption { .. } | Error::Poisoned(_) => !exact,
        _ => false,
    };
    let check = |db: &Db, what: &str| -> Result<()> {
        let u = db.table("u", TableOptions::unordered())?;
        let r = check_unordered(&u, sample);
        match &r {
            Ok(same) => assert!(!exact || *same, "{what}: the unordered table differs"),
            Err(e) => assert!(tolerated(e), "{what}: {e}"),
        }
        r.map(|_| ())
    };
    let db = match Db::open(dir, model_options(&fs)) {
        Ok(db) => db,
        Err(e) => {
            assert!(tolerated(&e), "open: {e}");
            return Err(e);
        }
    };
    let mut first = check(&db, "open");
    let mut note = |r: Result<()>, what: &str| {
        if let Err(e) = r {
            assert!(tolerated(&e), "{what}: {e}");
            if first.is_ok() {
                first = Err(e);
            }
        }
    };
    note(
        db.gc(GcOptions::default().all_sealed(true)).map(|_| ()),
        "gc",
    );
    note(check(&db, "after gc"), "after gc");
    // A write after the rebuilt keydir: its sequence number must be new.
    let w = (|| {
        let u = db.table("u", TableOptions::unordered())?;
        u.put(b"fresh", b"value")?;
        let got = u.get(b"fresh")?;
        assert!(
            !exact || got.as_deref() == Some(&b"value"[..]),
            "a fresh write reads back {got:?}"
        );
        u.delete(b"fresh")
    })();
    note(w, "write");
    note(db.close(), "close");
    match Db::open(dir, model_options(&fs)) {
        Ok(db) => {
            note(check(&db, "reopen"), "reopen");
            note(db.close(), "close");
        }
        Err(e) => note(Err(e), "reopen"),
    }
    first
}

/// Reads every key of the sample's unordered table (gets, one multi_get,
/// the key list); `Ok(true)` when all of it matches the sample.
fn check_unordered(u: &crate::Table, sample: &SampleDb) -> Result<bool> {
    let mut same = true;
    for k in &sample.unordered_keys {
        let got = u.get(k)?;
        same &= got.as_deref() == sample.unordered.get(k).map(|v| &v[..]);
    }
    let got = u.multi_get(&sample.unordered_keys)?;
    assert_eq!(got.len(), sample.unordered_keys.len());
    for (g, k) in got.iter().zip(&sample.unordered_keys) {
        same &= g.as_deref() == sample.unordered.get(k).map(|v| &v[..]);
    }
    let mut keys = u.keys()?;
    keys.sort();
    same &= keys.iter().eq(sample.unordered.keys());
    // No order on an unordered table.
    let mut it = u.range(..);
    assert!(matches!(it.next(), Some(Err(Error::Unsupported(_)))));
    assert!(it.next().is_none());
    Ok(same)
}

// ---------------------------------------------------------------- SSTables

fn open_table(bytes: Vec<u8>) -> Result<Arc<Sst>> {
    let len = bytes.len() as u64;
    Sst::open(Arc::new(MemFile(bytes)), PathBuf::from("/000001.sst"), len)
}

/// Iterates a table forwards and backwards, then gets keys it listed and a
/// few it did not; a get of a listed key must find that key's user part
/// (unless the filter, which no checksum ties to the data's meaning, says no).
fn exercise_table(table: &Arc<Sst>, extra_targets: &[Vec<u8>]) -> Result<()> {
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
    let mut block = Vec::new();
    let h = put_stored_block(&mut block, out.len() as u64, payload, COMPRESSION_NONE);
    out.extend_from_slice(&block);
    (h.offset, h.size)
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
    SstProperties {
        entries,
        smallest: smallest.to_vec(),
        largest: largest.to_vec(),
        data_blocks,
        ..SstProperties::default()
    }
    .encode()
}

fn footer(out: &mut Vec<u8>, index: (u64, u64), filter: (u64, u64), props: (u64, u64)) {
    let handle = |(offset, size)| BlockHandle { offset, size };
    out.extend_from_slice(
        &Footer {
            index: handle(index),
            filter: handle(filter),
            properties: handle(props),
        }
        .encode(),
    );
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

/// A valid table (from [`SstBuilder`]) used as the body in front of fuzzed
/// footers, and as a seed.
pub fn sample_table(entries: usize, block_size: usize, bloom_bits: u32) -> Vec<u8> {
    let fs = FaultFs::new();
    let path = Path::new("/t.sst");
    let file = fs.create(path).unwrap();
    let mut b = SstBuilder::new(
        file,
        path.to_path_buf(),
        SstBuilderOptions {
            block_size,
            restart_interval: 4,
            bloom_bits_per_key: bloom_bits,
            ..SstBuilderOptions::default()
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
    // Flushes at fixed points, no background work while writes go on: the
    // same edits each time.
    let opts = model_options(&fs).memtable_size(256 << 10);
    let db = Db::open(dir, opts).unwrap();
    for i in 0..200u32 {
        db.put(format!("k{i:04}"), vec![b'x'; (i as usize % 7) * 40])
            .unwrap();
        if i % 40 == 39 {
            db.flush().unwrap();
            db.wait_for_background().unwrap();
        }
    }
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

fn segment_number(name: &str) -> Option<u64> {
    let stem = name
        .strip_suffix(".gc.vlog")
        .or_else(|| name.strip_suffix(".vlog"))?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn sorted_entries(mut v: Vec<hint::HintEntry>) -> Vec<hint::HintEntry> {
    v.sort_by(|a, b| (a.offset, a.seq, &a.key).cmp(&(b.offset, b.seq, &b.key)));
    v
}

/// The records of table `table` in a segment file, as a scan finds them.
fn scan_entries(name: &str, bytes: &[u8], number: u64, table: u32) -> Vec<hint::HintEntry> {
    let fs: Arc<dyn Fs> = Arc::new(FaultFs::new());
    let seg = Segment::new(
        fs,
        number,
        SegmentKind::User,
        PathBuf::from("/db").join(name),
        Arc::new(MemFile(bytes.to_vec())),
    );
    sorted_entries(hint::scan(&seg, |t| t == table).expect("scanning a sample segment"))
}

fn build_sample_db() -> SampleDb {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    // A memtable that holds every write, and no background work running
    // while writes go on: the same files, with the same numbers, each time.
    let db = Db::open(dir, model_options(&fs).memtable_size(256 << 10)).unwrap();
    let u = db.table("u", TableOptions::unordered()).unwrap();
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

/// Both tables of the model database in one map: each key is tagged with
/// its table's byte ([`DEFAULT_TAG`] or [`UNORDERED_TAG`]) in front.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// A tagged key and its new value (`None`: deleted).
type Write = (Vec<u8>, Option<Vec<u8>>);

const DEFAULT_TAG: u8 = b'D';
const UNORDERED_TAG: u8 = b'U';
/// The model's keys: `key00` .. `key23`, in each table.
const MODEL_KEYS: u8 = 24;

/// The key a key byte names (its low bits), untagged.
fn mkey(b: u8) -> Vec<u8> {
    format!("key{:02}", b % MODEL_KEYS).into_bytes()
}

/// Whether a key byte names the unordered table (bit 6).
fn in_unordered(b: u8) -> bool {
    b & 0x40 != 0
}

fn tagged(unordered: bool, key: &[u8]) -> Vec<u8> {
    let mut t = vec![if unordered {
        UNORDERED_TAG
    } else {
        DEFAULT_TAG
    }];
    t.extend_from_slice(key);
    t
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

/// The model database: the default (ordered) table and the unordered `u`.
struct ModelDb {
    db: Db,
    u: crate::Table,
}

impl ModelDb {
    fn open(fs: &FaultFs, dir: &Path) -> Result<ModelDb> {
        let db = Db::open(dir, model_options(fs))?;
        let u = db.table("u", TableOptions::unordered())?;
        Ok(ModelDb { db, u })
    }

    fn get(&self, unordered: bool, key: &[u8]) -> Result<Option<crate::Value>> {
        if unordered {
            self.u.get(key)
        } else {
            self.db.get(key)
        }
    }

    /// Both tables: the default one by a scan (`reverse`: backwards), the
    /// unordered one by a get of every model key; tagged.
    fn read_all(&self, reverse: bool) -> Result<Model> {
        let mut out = Model::new();
        let mut add = |kv: Result<(Vec<u8>, crate::Value)>| -> Result<()> {
            let (k, v) = kv?;
            out.insert(tagged(false, &k), v.into_vec());
            Ok(())
        };
        if reverse {
            self.db.iter().rev().try_for_each(&mut add)?;
        } else {
            self.db.iter().try_for_each(&mut add)?;
        }
        for i in 0..MODEL_KEYS {
            let k = mkey(i);
            if let Some(v) = self.u.get(&k)? {
                out.insert(tagged(true, &k), v.into_vec());
            }
        }
        Ok(out)
    }
}

/// What an unordered table refuses (no key order, no snapshot reads), and
/// the kind it was created with; none of it touches the disk, so it holds
/// whatever faults are armed.
fn check_unordered_refusals(m: &ModelDb, key: &[u8]) {
    let one_unsupported = |mut it: crate::Iter, what: &str, back: bool| {
        let first = if back { it.next_back() } else { it.next() };
        assert!(
            matches!(first, Some(Err(Error::Unsupported(_)))),
            "{what} on an unordered table: {first:?}"
        );
        assert!(it.next().is_none(), "{what}: more after Unsupported");
        assert!(it.next_back().is_none(), "{what}: more after Unsupported");
    };
    one_unsupported(m.u.range(..), "range", false);
    one_unsupported(m.u.range(key.to_vec()..), "range", true);
    one_unsupported(m.u.prefix(&key[..3]), "prefix", false);
    one_unsupported(m.u.iter(), "iter", true);
    let snap = m.db.snapshot();
    let r = snap.get_in(&m.u, key);
    assert!(
        matches!(r, Err(Error::Unsupported(_))),
        "snapshot get_in: {r:?}"
    );
    one_unsupported(snap.range_in(&m.u, ..), "snapshot range_in", false);
    let r = m.db.table("u", TableOptions::ordered());
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "reopening the table as ordered: {r:?}"
    );
}

/// Interprets the bytes as API operations (put, delete, batch, get,
/// multi_get, scan, flush, compact, GC, sync, reopen, failure injection,
/// power loss) on a database over a [`FaultFs`] with two tables, the default
/// (ordered) one and an unordered one (a key byte with bit 6 set names it),
/// checking every read against a model. Without an injected failure reads
/// must match the model exactly; after a power loss the database must hold
/// the state as of its last sync point plus a prefix of the writes after
/// it. While an injected failure may have fired, every failure must be
/// `Io`/`Poisoned`, and reads that succeed must still match the model on
/// every key except those a failed write touched (such a write may or may
/// not have landed); a clean reopen re-learns those keys and a power loss
/// the whole model. Range and prefix scans and snapshot reads of the
/// unordered table must give `Unsupported`. Panics on a disagreement.
pub fn model(data: &[u8]) {
    let mut input = Input(data);
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let mut m = match ModelDb::open(&fs, dir) {
        Ok(m) => m,
        Err(e) => panic!("opening an empty database failed: {e}"),
    };
    // The state as of the last sync point, and the writes acknowledged since.
    let mut durable = Model::new();
    let mut pending: Vec<Vec<Write>> = Vec::new();
    let mut model = Model::new();
    // A failure was armed since the model was last known exactly.
    let mut faulty = false;
    // Keys (tagged) that a failed write touched: their state is unknown
    // until the next reopen.
    let mut uncertain: BTreeSet<Vec<u8>> = BTreeSet::new();
    // The model without the uncertain keys, for comparing whole states.
    let certain = |m: &Model, unc: &BTreeSet<Vec<u8>>| -> Model {
        m.iter()
            .filter(|(k, _)| !unc.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut counter = 0u64;
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 200 {
            break;
        }
        match op % 16 {
            0..=2 => {
                let kb = input.byte().unwrap_or(0);
                let (u, k) = (in_unordered(kb), mkey(kb));
                let tk = tagged(u, &k);
                counter += 1;
                let v = mvalue(&tk, counter, input.byte().unwrap_or(1));
                let sync = op % 16 == 2;
                let mut b = WriteBatch::new();
                if u {
                    b.put_in(&m.u, &k, &v);
                } else {
                    b.put(&k, &v);
                }
                match m.db.write(b, WriteOptions::default().sync(sync)) {
                    Ok(()) => {
                        model.insert(tk.clone(), v.clone());
                        pending.push(vec![(tk, Some(v))]);
                        if sync {
                            durable = model.clone();
                            pending.clear();
                        }
                    }
                    Err(e) => {
                        assert!(faulty && tolerated(&e), "put failed: {e}");
                        uncertain.insert(tk);
                    }
                }
            }
            3 => {
                let kb = input.byte().unwrap_or(0);
                let (u, k) = (in_unordered(kb), mkey(kb));
                let r = if u { m.u.delete(&k) } else { m.db.delete(&k) };
                let tk = tagged(u, &k);
                match r {
                    Ok(()) => {
                        model.remove(&tk);
                        pending.push(vec![(tk, None)]);
                    }
                    Err(e) => {
                        assert!(faulty && tolerated(&e), "delete failed: {e}");
                        uncertain.insert(tk);
                    }
                }
            }
            4 => {
                let n = 1 + input.byte().unwrap_or(0) % 4;
                let mut b = WriteBatch::new();
                let mut ops = Vec::new();
                for _ in 0..n {
                    let x = input.byte().unwrap_or(0);
                    let (u, k) = (in_unordered(x), mkey(x));
                    let tk = tagged(u, &k);
                    if x & 0x80 != 0 {
                        if u {
                            b.delete_in(&m.u, &k);
                        } else {
                            b.delete(&k);
                        }
                        ops.push((tk, None));
                    } else {
                        counter += 1;
                        let v = mvalue(&tk, counter, input.byte().unwrap_or(1));
                        if u {
                            b.put_in(&m.u, &k, &v);
                        } else {
                            b.put(&k, &v);
                        }
                        ops.push((tk, Some(v)));
                    }
                }
                match m.db.write(b, WriteOptions::default()) {
                    Ok(()) => {
                        for (k, v) in &ops {
                            match v {
                                Some(v) => model.insert(k.clone(), v.clone()),
                                None => model.remove(k),
                            };
                        }
                        pending.push(ops);
                    }
                    Err(e) => {
                        assert!(faulty && tolerated(&e), "batch failed: {e}");
                        uncertain.extend(ops.into_iter().map(|(k, _)| k));
                    }
                }
            }
            5 => {
                let kb = input.byte().unwrap_or(0);
                let (u, k) = (in_unordered(kb), mkey(kb));
                match m.get(u, &k) {
                    Ok(v) => {
                        if !uncertain.contains(&tagged(u, &k)) {
                            assert_eq!(
                                v.map(|v| v.into_vec()),
                                model.get(&tagged(u, &k)).cloned(),
                                "get {} (unordered: {u})",
                                String::from_utf8_lossy(&k)
                            );
                        }
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "get: {e}"),
                }
            }
            6 => {
                let reverse = input.byte().unwrap_or(0) & 1 == 1;
                match m.read_all(reverse) {
                    Ok(got) => {
                        assert_eq!(
                            certain(&got, &uncertain),
                            certain(&model, &uncertain),
                            "scan disagrees with the model"
                        );
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "scan: {e}"),
                }
            }
            7 => match m.db.flush() {
                Ok(()) => {
                    if !faulty {
                        durable = model.clone();
                        pending.clear();
                    }
                }
                Err(e) => assert!(faulty && tolerated(&e), "flush failed: {e}"),
            },
            8 => {
                if let Err(e) = m.db.compact() {
                    assert!(faulty && tolerated(&e), "compact failed: {e}");
                }
            }
            9 => {
                if let Err(e) = m.db.gc(GcOptions::default().all_sealed(true)) {
                    assert!(faulty && tolerated(&e), "gc failed: {e}");
                }
            }
            10 => match m.db.sync() {
                Ok(()) => {
                    if !faulty {
                        durable = model.clone();
                        pending.clear();
                    }
                }
                Err(e) => assert!(faulty && tolerated(&e), "sync failed: {e}"),
            },
            11 => {
                // Clean close and reopen.
                let ModelDb { db, u } = m;
                drop(u);
                let r = db.close();
                if !faulty {
                    assert!(r.is_ok(), "close: {r:?}");
                }
                match ModelDb::open(&fs, dir) {
                    Ok(d) => m = d,
                    Err(e) => {
                        assert!(faulty, "reopen failed without a fault: {e}");
                        fs.recover();
                        faulty = false;
                        m = reopen_after_power_loss(&fs, dir, 0);
                        model = relearn(&m);
                        durable = model.clone();
                        pending.clear();
                        uncertain.clear();
                        continue;
                    }
                }
                match m.read_all(false) {
                    Ok(got) => {
                        assert_eq!(
                            certain(&got, &uncertain),
                            certain(&model, &uncertain),
                            "after reopen"
                        );
                        // What the failed writes left is known now.
                        model = got;
                        uncertain.clear();
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "scan after reopen: {e}"),
                }
                if !faulty {
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
            13 => {
                // Power loss: nothing more reaches the disk, then reboot.
                let seed = u64::from(input.byte().unwrap_or(0));
                fs.crash();
                drop(m);
                fs.recover();
                m = reopen_after_power_loss(&fs, dir, seed);
                let got = relearn(&m);
                if !faulty {
                    // durable + a prefix of pending.
                    let mut s = durable.clone();
                    let mut ok = s == got;
                    for ops in &pending {
                        if ok {
                            break;
                        }
                        for (k, v) in ops {
                            match v {
                                Some(v) => s.insert(k.clone(), v.clone()),
                                None => s.remove(k),
                            };
                        }
                        ok = s == got;
                    }
                    assert!(ok, "state after power loss is not a prefix of the writes");
                }
                faulty = false;
                model = got;
                durable = model.clone();
                pending.clear();
                uncertain.clear();
            }
            14 => {
                // multi_get of 1..=6 keys in one table (the first key byte's).
                let n = 1 + usize::from(input.byte().unwrap_or(0) % 6);
                let kbs: Vec<u8> = (0..n).map(|_| input.byte().unwrap_or(0)).collect();
                let u = in_unordered(kbs[0]);
                let keys: Vec<Vec<u8>> = kbs.iter().map(|&b| mkey(b)).collect();
                let r = if u {
                    m.u.multi_get(&keys)
                } else {
                    m.db.multi_get(&keys)
                };
                match r {
                    Ok(vals) => {
                        assert_eq!(vals.len(), keys.len(), "multi_get result count");
                        for (v, k) in vals.into_iter().zip(&keys) {
                            if uncertain.contains(&tagged(u, k)) {
                                continue;
                            }
                            assert_eq!(
                                v.map(|v| v.into_vec()),
                                model.get(&tagged(u, k)).cloned(),
                                "multi_get {} (unordered: {u})",
                                String::from_utf8_lossy(k)
                            );
                        }
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "multi_get: {e}"),
                }
            }
            _ => {
                let k = mkey(input.byte().unwrap_or(0));
                check_unordered_refusals(&m, &k);
            }
        }
    }
    fs.recover();
    drop(m);
}

fn reopen_after_power_loss(fs: &FaultFs, dir: &Path, seed: u64) -> ModelDb {
    fs.power_loss(seed);
    match ModelDb::open(fs, dir) {
        Ok(m) => m,
        Err(e) => panic!("open after power loss: {e}"),
    }
}

fn relearn(m: &ModelDb) -> Model {
    match m.read_all(false) {
        Ok(got) => got,
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
    "hint_file",
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
        "hint_file" => hint_file(data),
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
        "hint_file" => {
            let sample = sample_db();
            let mut out: Vec<Vec<u8>> = file(".hint").iter().map(|h| with_mode(0, h)).collect();
            out.push(with_mode(0, &hint::encode(5, 0, &[])));
            if let Some(h) = file(".hint").first() {
                out.push(with_mode(1, &h[..h.len() - 4]));
            }
            // Installed in the sample database: each segment's own hint, and
            // for the segments without one (the open heads) the hint a scan
            // would give, which must be as good as the scan.
            for (i, (n, name, entries)) in sample.segments.iter().enumerate() {
                let len = files.iter().find(|(f, _)| f == name).unwrap().1.len();
                let h = hint::encode(*n, len as u64, entries);
                out.push(with_mode(2 | ((i as u8) << 2), &h));
                // The same with the checksum left to the entry point, so
                // that mutations of the entries stay well checksummed.
                out.push(with_mode(3 | ((i as u8) << 2), &h[..h.len() - 4]));
            }
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
            // The unordered table (key bytes with bit 6): puts, delete, a
            // batch across both tables, get, multi_get, refusals, scan,
            // flush, gc, reopen, scan
            vec![
                0, 0x40, 1, 0, 0x41, 3, 1, 0x42, 2, 3, 0x41, 4, 3, 0x43, 2, 0x03, 1, 0xc0, 0x44, 3,
                5, 0x40, 14, 3, 0x40, 0x41, 0x42, 0x43, 15, 0x40, 6, 0, 7, 9, 11, 6, 1,
            ],
            // Large overwrites in the unordered table over several segments,
            // gc, reopen (keydir from hints), sync, power loss, gc, reopen
            (0..60u8)
                .flat_map(|i| [0, 0x40 | (i % 24), 3])
                .chain([
                    9, 11, 6, 0, 3, 0x45, 10, 0, 0x46, 3, 13, 7, 6, 0, 9, 11, 6, 0,
                ])
                .collect(),
            // Both tables, then a persistent failure, writes, reads, power
            // loss, gc, reopen
            (0..30u8)
                .flat_map(|i| [1, 0x40 | i, 3, 0, i, 2])
                .chain([
                    12, 5, 0x80, 0, 0x40, 3, 4, 1, 0x41, 2, 0x02, 1, 5, 0x40, 14, 1, 0x40,
                ])
                .chain([13, 9, 6, 0, 11, 6, 1, 15, 0x47])
                .collect(),
        ],
        other => panic!("unknown fuzz target {other}"),
    }
}
