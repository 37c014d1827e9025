//! Damaged files: a torn vLog tail is truncated on open; damage anywhere
//! else (mid-vLog, SSTables, MANIFEST, CURRENT) gives `Error::Corruption`,
//! never a wrong value and never a panic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use wisckey::{Db, Error, Options};

type Expected = BTreeMap<Vec<u8>, Vec<u8>>;

fn opts() -> Options {
    // No flush unless asked (a large memtable), several vLog segments.
    Options::default().segment_size(64 << 10)
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// A value unique to (i, round): findable in the files by its bytes.
fn val(i: u32, round: u32, size: usize) -> Vec<u8> {
    let unit = format!("<{i:05}.{round:03}>");
    unit.as_bytes().iter().copied().cycle().take(size).collect()
}

/// Files of `dir` ending in `ext`, by number.
fn numbered(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_string();
            let n = name.strip_suffix(ext)?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    v.sort();
    v.into_iter().map(|x| x.1).collect()
}

fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("MANIFEST-")
        })
        .collect();
    v.sort();
    v
}

/// Writes `n` keys (every third one large enough for the vLog) and returns them.
fn fill(db: &Db, n: u32, round: u32, exp: &mut Expected) {
    for i in 0..n {
        let size = if i % 3 == 0 { 3000 } else { 40 };
        let v = val(i, round, size);
        db.put(key(i), &v).unwrap();
        exp.insert(key(i), v);
    }
}

/// Every key of `exp` by point reads and a full scan; nothing else present.
fn check_exact(db: &Db, exp: &Expected, what: &str) {
    for (k, v) in exp {
        let got = db
            .get(k)
            .unwrap_or_else(|e| panic!("{what}: get {}: {e}", String::from_utf8_lossy(k)));
        assert!(
            got.as_deref() == Some(v.as_slice()),
            "{what}: wrong value for {}",
            String::from_utf8_lossy(k)
        );
    }
    let all: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|kv| kv.map(|(k, v)| (k, v.into_vec())))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{what}: scan: {e}"));
    let want: Vec<(Vec<u8>, Vec<u8>)> = exp.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(
        all == want,
        "{what}: scan differs ({} vs {} items)",
        all.len(),
        want.len()
    );
}

/// Reads that may fail with `Corruption` but must never return wrong data.
/// Returns how many reads failed.
fn check_no_wrong_data(db: &Db, exp: &Expected, what: &str) -> usize {
    let mut failed = 0;
    for (k, v) in exp {
        match db.get(k) {
            Ok(got) => assert!(
                got.as_deref() == Some(v.as_slice()),
                "{what}: wrong value for {} (got {:?} bytes)",
                String::from_utf8_lossy(k),
                got.map(|g| g.len())
            ),
            Err(Error::Corruption { .. }) => failed += 1,
            Err(e) => panic!("{what}: get gave a non-corruption error: {e}"),
        }
    }
    // A scan yields a correct prefix of the data, then at most an error.
    let want: Vec<(&Vec<u8>, &Vec<u8>)> = exp.iter().collect();
    let mut n = 0;
    for item in db.iter() {
        match item {
            Ok((k, v)) => {
                assert!(n < want.len(), "{what}: scan yields an extra key");
                assert!(
                    &k == want[n].0 && v.as_ref() == want[n].1.as_slice(),
                    "{what}: scan item {n} is wrong ({})",
                    String::from_utf8_lossy(&k)
                );
                n += 1;
            }
            Err(Error::Corruption { .. }) => {
                failed += 1;
                break;
            }
            Err(e) => panic!("{what}: scan gave a non-corruption error: {e}"),
        }
    }
    if n == want.len() {
        // A complete scan: nothing was skipped.
    }
    failed
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn flip(path: &Path, at: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

#[derive(Debug, Clone, Copy)]
enum Tail {
    TruncateMidRecord,
    AppendGarbage,
    AppendZeroBlock,
    AppendHalfHeader,
}

fn torn_tail_case(kind: Tail) {
    let dir = tempfile::tempdir().unwrap();
    let mut exp = Expected::new();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 300, 0, &mut exp);
    // The victim: the last record of the newest segment.
    let victim = val(99_999, 0, 20_000);
    db.put(b"victim", &victim).unwrap();
    db.close().unwrap();
    let segs = numbered(dir.path(), ".vlog");
    assert!(segs.len() > 1, "expected several segments: {segs:?}");
    let newest = segs.last().unwrap();
    let len = std::fs::metadata(newest).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(newest)
        .unwrap();
    let victim_survives = match kind {
        Tail::TruncateMidRecord => {
            f.set_len(len - 7_000).unwrap();
            false
        }
        Tail::AppendGarbage => {
            let mut x = 0x1234_5678_9abc_def0u64;
            let garbage: Vec<u8> = (0..777)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            f.write_all(&garbage).unwrap();
            true
        }
        Tail::AppendZeroBlock => {
            f.write_all(&[0u8; 4096]).unwrap();
            true
        }
        Tail::AppendHalfHeader => {
            f.write_all(&[1u8, 0, 0, 0]).unwrap();
            true
        }
    };
    drop(f);
    let what = format!("{kind:?}");
    let db = Db::open(dir.path(), opts()).unwrap_or_else(|e| panic!("{what}: open: {e}"));
    if victim_survives {
        exp.insert(b"victim".to_vec(), victim);
    }
    check_exact(&db, &exp, &what);
    // New writes after the repaired tail, and another reopen.
    fill(&db, 100, 1, &mut exp);
    db.put(b"zz-after", b"after").unwrap();
    exp.insert(b"zz-after".to_vec(), b"after".to_vec());
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap_or_else(|e| panic!("{what}: second open: {e}"));
    check_exact(&db, &exp, &format!("{what}, second open"));
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check_exact(&db, &exp, &format!("{what}, third open"));
}

#[test]
fn torn_tail_truncated_mid_record() {
    torn_tail_case(Tail::TruncateMidRecord);
}

#[test]
fn torn_tail_with_a_half_header() {
    torn_tail_case(Tail::AppendHalfHeader);
}

#[test]
fn torn_tail_of_zeros() {
    torn_tail_case(Tail::AppendZeroBlock);
}

#[test]

fn torn_tail_of_garbage() {
    torn_tail_case(Tail::AppendGarbage);
}

/// Damage in a record of the newest segment followed by valid records is
/// not a torn tail: open must fail with `Corruption` (or, if it opens, the
/// damaged value must read as `Corruption`), never lose the records after it.
fn mid_newest_segment_case(field: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut exp = Expected::new();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 300, 0, &mut exp);
    db.close().unwrap();
    let newest = numbered(dir.path(), ".vlog").pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    // A large value early in the newest segment.
    let (i, pos) = (0..300)
        .step_by(3)
        .find_map(|i| find(&bytes, &val(i, 0, 3000)).map(|p| (i, p)))
        .expect("no large value in the newest segment");
    assert!(
        pos + 20_000 < bytes.len(),
        "the damage must be followed by valid records"
    );
    let key_len = key(i).len();
    let (at, mask) = match field {
        // The value itself.
        "value" => (pos + 1500, 0x10),
        // The high byte of value_len (header: flags, table, seq, key_len, value_len).
        "value_len" => (pos - key_len - 1, 0x40),
        // The flags byte: an unknown flag.
        "flags" => (pos - key_len - 21, 0x20),
        _ => unreachable!(),
    };
    flip(&newest, at, mask);
    match Db::open(dir.path(), opts()) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, newest, "{field}: corruption names the wrong file");
            assert!(
                offset <= at as u64,
                "{field}: corruption offset {offset} past the damage at {at}"
            );
        }
        Err(e) => panic!("{field}: open failed with a non-corruption error: {e}"),
        Ok(db) => {
            let failed = check_no_wrong_data(&db, &exp, field);
            assert!(
                failed > 0,
                "{field}: damage in the middle of the log went unnoticed"
            );
            // Whatever the engine did, the records after the damage are not lost.
            for j in (i + 1)..300 {
                match db.get(key(j)) {
                    Ok(v) => assert_eq!(
                        v.as_deref(),
                        Some(exp[&key(j)].as_slice()),
                        "{field}: key {j} lost"
                    ),
                    Err(e) => assert!(e.is_corruption(), "{e}"),
                }
            }
        }
    }
}

#[test]
fn bit_flip_in_a_value_mid_newest_segment() {
    mid_newest_segment_case("value");
}

#[test]
fn bit_flip_in_a_flags_byte_mid_newest_segment() {
    mid_newest_segment_case("flags");
}

#[test]

fn bit_flip_in_a_length_mid_newest_segment() {
    mid_newest_segment_case("value_len");
}

/// Damage in a sealed segment whose records are already in SSTables (only
/// read through pointers): open succeeds, the damaged value reads as
/// `Corruption`, every other value is right.
#[test]
fn bit_flip_in_a_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut exp = Expected::new();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 300, 0, &mut exp);
    db.flush().unwrap();
    fill(&db, 30, 1, &mut exp);
    db.close().unwrap();
    let segs = numbered(dir.path(), ".vlog");
    let first = &segs[0];
    let bytes = std::fs::read(first).unwrap();
    let pos = find(&bytes, &val(30, 0, 3000)).expect("key 30 not in the first segment");
    flip(first, pos + 100, 0x01);
    let db = Db::open(dir.path(), opts()).unwrap();
    match db.get(key(30)) {
        Err(Error::Corruption { file, .. }) => assert_eq!(&file, first),
        other => panic!(
            "damaged value read as {:?}",
            other.map(|v| v.map(|v| v.len()))
        ),
    }
    let failed = check_no_wrong_data(&db, &exp, "sealed segment");
    assert_eq!(failed, 2, "one get and the scan fail, nothing else");
    // Ranges not touching the damaged key are fine.
    let n = db
        .range(key(31).as_slice()..)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .len();
    assert_eq!(n, 300 - 31);
}

/// Flips bytes all over an SSTable, one at a time: open and reads give
/// correct data or `Corruption`, never wrong data or a panic.
#[test]
fn sstable_damage_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut exp = Expected::new();
    let o = || opts().block_size(512);
    let db = Db::open(dir.path(), o()).unwrap();
    fill(&db, 400, 0, &mut exp);
    db.compact().unwrap();
    db.close().unwrap();
    let tables = numbered(dir.path(), ".sst");
    assert_eq!(tables.len(), 1, "{tables:?}");
    let sst = &tables[0];
    let original = std::fs::read(sst).unwrap();
    let mut detected = 0;
    let steps = 97;
    for s in 0..steps {
        let at = s * original.len() / steps + s % 7;
        let at = at.min(original.len() - 1);
        let mut bytes = original.clone();
        bytes[at] ^= 0x04;
        std::fs::write(sst, &bytes).unwrap();
        let what = format!("sst byte {at} of {}", original.len());
        match Db::open(dir.path(), o()) {
            Ok(db) => {
                if check_no_wrong_data(&db, &exp, &what) > 0 {
                    detected += 1;
                }
            }
            Err(Error::Corruption { .. }) => detected += 1,
            Err(e) => panic!("{what}: open failed with {e}"),
        }
        // Open must not have rewritten or removed the table.
        assert!(sst.exists(), "{what}: the table was removed");
    }
    std::fs::write(sst, &original).unwrap();
    let db = Db::open(dir.path(), o()).unwrap();
    check_exact(&db, &exp, "restored table");
    eprintln!("sstable damage detected in {detected} of {steps} cases");
    assert!(
        detected > steps / 2,
        "only {detected} of {steps} flips noticed"
    );
}

fn closed_db_with_history() -> (tempfile::TempDir, Expected) {
    let dir = tempfile::tempdir().unwrap();
    let mut exp = Expected::new();
    let db = Db::open(dir.path(), opts().memtable_size(16 << 10)).unwrap();
    fill(&db, 300, 0, &mut exp);
    let t = db.table("named", wisckey::TableOptions::ordered()).unwrap();
    t.put(b"t", b"1").unwrap();
    drop(t);
    db.flush().unwrap();
    fill(&db, 50, 1, &mut exp);
    db.close().unwrap();
    (dir, exp)
}

fn open_after_damage(dir: &Path, exp: &Expected, what: &str) -> bool {
    match Db::open(dir, opts().memtable_size(16 << 10)) {
        Err(Error::Corruption { .. }) => true,
        Err(e) => panic!("{what}: open failed with a non-corruption error: {e}"),
        Ok(db) => {
            check_exact(&db, exp, what);
            false
        }
    }
}

#[test]
fn current_damage_is_corruption() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 5] = [
        ("empty", |p| std::fs::write(p, b"").unwrap()),
        ("garbage", |p| {
            std::fs::write(p, b"\x00\xffnot a manifest\n").unwrap()
        }),
        ("missing manifest", |p| {
            std::fs::write(p, b"MANIFEST-999999\n").unwrap()
        }),
        ("no newline", |p| {
            let s = std::fs::read(p).unwrap();
            std::fs::write(p, &s[..s.len() - 1]).unwrap()
        }),
        ("removed", |p| std::fs::remove_file(p).unwrap()),
    ];
    for (what, damage) in cases {
        let (dir, exp) = closed_db_with_history();
        let files_before = std::fs::read_dir(dir.path()).unwrap().count();
        damage(&dir.path().join("CURRENT"));
        match Db::open(dir.path(), opts()) {
            Err(Error::Corruption { .. }) => {}
            Err(e) => panic!("CURRENT {what}: open failed with a non-corruption error: {e}"),
            Ok(db) => {
                // Only acceptable if every byte of data is still there.
                check_exact(&db, &exp, &format!("CURRENT {what}"));
            }
        }
        // A failed open must not delete the data files.
        let vlogs = numbered(dir.path(), ".vlog").len();
        assert!(
            vlogs > 0,
            "CURRENT {what}: the vLog segments were removed ({files_before} files before)"
        );
    }
}

#[test]
fn manifest_damage_is_corruption_or_harmless() {
    let mut corrupt = 0;
    for s in 0..40 {
        let (dir, exp) = closed_db_with_history();
        let m = manifests(dir.path());
        assert_eq!(m.len(), 1, "{m:?}");
        let mut bytes = std::fs::read(&m[0]).unwrap();
        // The same history gives manifests of about the same size, not
        // always the same: the counters each edit records (varints) differ
        // with the timing of background work. Flip at the same fraction.
        let len = bytes.len();
        let at = s * len / 40;
        bytes[at] ^= 0x08;
        std::fs::write(&m[0], &bytes).unwrap();
        if open_after_damage(dir.path(), &exp, &format!("manifest byte {at} of {len}")) {
            corrupt += 1;
        }
    }
    eprintln!("manifest flips: {corrupt} of 40 gave Corruption");
    assert!(
        corrupt > 20,
        "most manifest flips went unnoticed ({corrupt} of 40)"
    );
    // Truncation: a torn last edit may be dropped, but only with correct data.
    for cut in [1usize, 5, 17] {
        let (dir, exp) = closed_db_with_history();
        let m = manifests(dir.path());
        let bytes = std::fs::read(&m[0]).unwrap();
        std::fs::write(&m[0], &bytes[..bytes.len() - cut]).unwrap();
        open_after_damage(dir.path(), &exp, &format!("manifest cut by {cut}"));
    }
    // A removed manifest.
    let (dir, exp) = closed_db_with_history();
    std::fs::remove_file(&manifests(dir.path())[0]).unwrap();
    assert!(open_after_damage(dir.path(), &exp, "manifest removed"));
}
