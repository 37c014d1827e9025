//! Fuzz entry points of the vLog formats: records, value pointers, whole
//! segments, and hint files (alone and installed in a sample database).

use super::{corrupt, model::*, sample_db::*};
use crate::io::bytes_file::BytesFile as MemFile;
use crate::io::{FileHandle, Fs};
use crate::testing::FaultFs;
use crate::vlog::hint;
use crate::vlog::record::{self, HEADER_LEN, TRAILER_LEN};
use crate::vlog::{replay_segment, Segment, SegmentKind, ValuePointer};
use crate::{Db, Error, GcOptions, Result, TableOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One vLog record. Mode byte bit 0: recompute the record's checksum first
/// (from the lengths in its header). A decoded record must re-encode to the
/// same bytes.
pub fn vlog_record(data: &[u8]) -> Result<()> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 {
        record::fix_checksum(&mut buf);
    }
    let rec = record::decode(&buf).map_err(|e| corrupt(e.describe()))?;
    let mut again = Vec::new();
    record::encode_stored(
        &mut again,
        rec.header.is_put,
        rec.header.compressed,
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

pub(super) fn hint_bytes(mode: u8, rest: &[u8]) -> Vec<u8> {
    if mode & 1 == 1 {
        hint::with_checksum(rest)
    } else {
        rest.to_vec()
    }
}

/// Decodes a hint and checks what a decoded hint promises.
pub(super) fn check_hint(bytes: &[u8]) -> Result<hint::Hint> {
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
pub(super) fn check_unordered(u: &crate::Table, sample: &SampleDb) -> Result<bool> {
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
    let mut keys: Vec<Vec<u8>> = u.keys().collect::<Result<_>>()?;
    keys.sort();
    same &= keys.iter().eq(sample.unordered.keys());
    // The full walk (in no order) sees the same pairs.
    let mut pairs: Vec<(Vec<u8>, crate::Value)> = u.iter().collect::<Result<_>>()?;
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    same &= pairs.len() == sample.unordered.len()
        && pairs
            .iter()
            .zip(&sample.unordered)
            .all(|((k, v), (wk, wv))| k == wk && v.as_ref() == wv.as_slice());
    // No order on an unordered table: a bounded range is refused.
    let mut it = u.range(b"a".to_vec()..);
    assert!(matches!(it.next(), Some(Err(Error::Unsupported(_)))));
    assert!(it.next().is_none());
    Ok(same)
}
