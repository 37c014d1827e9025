//! Tests of the manifest: the edit codec, the state's checks, the file's
//! recovery from torn and damaged bytes.

use super::edit::*;
use super::*;
use crate::coding::{put_length_prefixed, put_varint};
use crate::io::StdFs;
use crate::lsm::ikey;
use crate::lsm::version::SstMeta;
use crate::options::TableKind;
use crate::vlog::{Position, SegmentKind};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn fs() -> Arc<dyn Fs> {
    Arc::new(StdFs::default())
}

fn ik(table: u32, key: &[u8], seq: u64) -> Vec<u8> {
    ikey::encode(table, key, seq, ikey::Kind::Inline as u8)
}

fn sst_meta(level: u32, number: u64, lo: &[u8], hi: &[u8]) -> SstMeta {
    SstMeta {
        level,
        number,
        size: number * 100,
        entries: number * 3,
        smallest: ik(1, lo, 9),
        largest: ik(1, hi, 1),
    }
}

/// An edit that is valid against `state` (and changes it).
fn random_edit(rng: &mut StdRng, state: &ManifestState) -> VersionEdit {
    let mut e = VersionEdit::default();
    let live: Vec<(u32, u64)> = state
        .levels
        .iter()
        .flatten()
        .map(|f| (f.level, f.number))
        .collect();
    for &(level, number) in &live {
        if rng.gen_ratio(1, 4) {
            e.removed.push((level, number));
        }
    }
    let mut next = state.next_file_number.max(1);
    for _ in 0..rng.gen_range(0..4) {
        let mut a: Vec<u8> = (0..rng.gen_range(0..6)).map(|_| rng.gen()).collect();
        let mut b: Vec<u8> = (0..rng.gen_range(0..6)).map(|_| rng.gen()).collect();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        e.added.push(sst_meta(rng.gen_range(0..5), next, &a, &b));
        next += 1;
    }
    if !e.added.is_empty() || rng.gen() {
        e.next_file_number = Some(next);
    }
    if rng.gen() {
        e.last_sequence = Some(state.last_sequence + rng.gen_range(0..1000));
    }
    if rng.gen() {
        e.replay_point = Some(Position {
            segment: rng.gen_range(0..10),
            offset: rng.gen(),
        });
    }
    if rng.gen() {
        e.vlog_tail = Some(rng.gen_range(0..10));
    }
    if rng.gen_ratio(1, 5) {
        let id = state.tables.len() as u32 + 1;
        e.tables_created.push(TableDef {
            id,
            name: format!("table-{id}"),
            kind: if rng.gen_bool(0.5) {
                TableKind::Unordered
            } else {
                TableKind::Ordered
            },
        });
    }
    if rng.gen_ratio(1, 5) {
        e.segments_removed.push(rng.gen_range(0..100));
    }
    if rng.gen_ratio(1, 3) {
        e.discard
            .push((rng.gen_range(0..100), rng.gen_range(0..1 << 20)));
    }
    if rng.gen_ratio(1, 4) {
        e.sealed.push(SealedSegment {
            number: rng.gen_range(0..100),
            kind: if rng.gen_bool(0.5) {
                SegmentKind::Gc
            } else {
                SegmentKind::User
            },
            len: rng.gen_range(0..1 << 20),
        });
    }
    if e.is_empty() {
        e.last_sequence = Some(state.last_sequence + 1);
    }
    e
}

/// A state reached by `n` random edits.
fn random_state(seed: u64, n: usize) -> ManifestState {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = ManifestState::default();
    for _ in 0..n {
        let e = random_edit(&mut rng, &s);
        s.apply(&e).unwrap();
    }
    s
}

fn arb_edit() -> impl Strategy<Value = VersionEdit> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..20);
    let file = (
        0..MAX_LEVELS,
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        bytes(),
        bytes(),
    )
        .prop_map(
            |(level, number, size, entries, smallest, largest)| SstMeta {
                level,
                number,
                size,
                entries,
                smallest,
                largest,
            },
        );
    let def = (any::<u32>(), ".{0,12}", any::<bool>()).prop_map(|(id, name, unordered)| TableDef {
        id,
        name,
        kind: if unordered {
            TableKind::Unordered
        } else {
            TableKind::Ordered
        },
    });
    (
        proptest::collection::vec(file, 0..4),
        proptest::collection::vec((0..MAX_LEVELS, any::<u64>()), 0..4),
        proptest::option::of((any::<u64>(), any::<u64>())),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(def, 0..3),
        proptest::collection::vec(any::<u64>(), 0..4),
        proptest::collection::vec((any::<u64>(), any::<u64>()), 0..3),
        proptest::option::of((any::<u64>(), any::<u64>())),
        proptest::collection::vec((any::<u64>(), any::<bool>(), any::<u64>()), 0..3),
    )
        .prop_map(
            |(
                added,
                removed,
                rp,
                vlog_tail,
                next_file_number,
                last_sequence,
                tables_created,
                segs,
                discard,
                gc_head,
                sealed,
            )| {
                VersionEdit {
                    added,
                    removed,
                    replay_point: rp.map(|(segment, offset)| Position { segment, offset }),
                    vlog_tail,
                    next_file_number,
                    last_sequence,
                    tables_created,
                    segments_removed: segs,
                    discard,
                    gc_head: gc_head.map(|(segment, offset)| Position { segment, offset }),
                    vlog_head: None,
                    created: None,
                    counters: None,
                    segment_info: Vec::new(),
                    range_dels_added: Vec::new(),
                    range_dels_retired: Vec::new(),
                    tables_dropped: Vec::new(),
                    tables_renamed: Vec::new(),
                    // Value fields: `values.rs` tests their round trip.
                    values: Default::default(),
                    sealed: sealed
                        .into_iter()
                        .map(|(number, gc, len)| SealedSegment {
                            number,
                            kind: if gc {
                                SegmentKind::Gc
                            } else {
                                SegmentKind::User
                            },
                            len,
                        })
                        .collect(),
                }
            },
        )
}

proptest! {
    #[test]
    fn edit_round_trip(e in arb_edit()) {
        let bytes = e.encode();
        prop_assert_eq!(VersionEdit::decode(&bytes).unwrap(), e.clone());
        // Every strict prefix that cuts a field is an error, never a panic.
        for cut in 0..bytes.len() {
            let _ = VersionEdit::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn decode_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = VersionEdit::decode(&bytes);
    }

    #[test]
    fn decode_mutated_edits_never_panics(e in arb_edit(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = e.encode();
        if !bytes.is_empty() {
            for (at, x) in flips {
                let n = bytes.len();
                bytes[at % n] ^= x;
            }
        }
        let _ = VersionEdit::decode(&bytes);
    }
}

#[test]
fn empty_and_full_edits_round_trip() {
    let empty = VersionEdit::default();
    assert!(empty.encode().is_empty());
    assert_eq!(VersionEdit::decode(&[]).unwrap(), empty);
    let full = VersionEdit {
        added: vec![sst_meta(3, 7, b"a", b"z")],
        removed: vec![(0, 2), (63, u64::MAX)],
        replay_point: Some(Position {
            segment: 4,
            offset: 123_456,
        }),
        vlog_tail: Some(2),
        next_file_number: Some(9),
        last_sequence: Some(ikey::MAX_SEQ),
        tables_created: vec![TableDef {
            id: u32::MAX,
            name: "ünïcode".into(),
            kind: TableKind::Unordered,
        }],
        segments_removed: vec![0, 1, u64::MAX],
        discard: vec![(3, 4096), (u64::MAX, u64::MAX)],
        gc_head: Some(Position {
            segment: 5,
            offset: 77,
        }),
        vlog_head: Some(8),
        range_dels_added: vec![
            crate::lsm::range_del::RangeTombstone {
                table: 2,
                seq: 9,
                start: b"a".to_vec(),
                end: Some(b"q".to_vec()),
            },
            crate::lsm::range_del::RangeTombstone {
                table: u32::MAX,
                seq: ikey::MAX_SEQ,
                start: Vec::new(),
                end: None,
            },
        ],
        range_dels_retired: vec![1, u64::MAX],
        sealed: vec![
            SealedSegment {
                number: 6,
                kind: SegmentKind::User,
                len: 1 << 27,
            },
            SealedSegment {
                number: u64::MAX,
                kind: SegmentKind::Gc,
                len: 0,
            },
        ],
        created: Some(crate::stats::CreatedWith {
            unix_secs: 1_764_633_600,
            segment_size: 128 << 20,
            value_threshold: 1024,
            memtable_size: u64::MAX,
        }),
        counters: Some(LifetimeCounters {
            user_bytes_written: u64::MAX,
            gc_passes: 3,
            opens: 7,
            ..Default::default()
        }),
        segment_info: vec![
            SegmentInfo {
                number: 6,
                created_unix_secs: 1_764_633_600,
                min_seq: 1,
                max_seq: u64::MAX,
            },
            SegmentInfo::default(),
        ],
        tables_dropped: vec![DroppedTable {
            id: u32::MAX,
            kind: TableKind::Unordered,
        }],
        tables_renamed: vec![(7, "renamed".into())],
        values: crate::manifest::values::ValuesEdit {
            format_version: Some(2),
            compression: vec![(
                u32::MAX,
                crate::options::ValueCompression::Zstd { level: 22 },
            )],
            dicts_added: vec![(u64::MAX, 1)],
            dicts_removed: vec![3],
            segment_dicts: vec![(6, u64::MAX)],
        },
    };
    assert_eq!(VersionEdit::decode(&full.encode()).unwrap(), full);
}

/// Segment ages merge: the first known creation time, the smallest and
/// largest sequence numbers; a removed segment's age goes with it.
#[test]
fn segment_ages_merge_and_go_with_their_segment() {
    let mut st = ManifestState::default();
    let info = |number, created_unix_secs, min_seq, max_seq| SegmentInfo {
        number,
        created_unix_secs,
        min_seq,
        max_seq,
    };
    let edit = |infos: Vec<SegmentInfo>| VersionEdit {
        segment_info: infos,
        ..Default::default()
    };
    st.apply(&edit(vec![info(3, 100, 10, 0)])).unwrap();
    st.apply(&edit(vec![info(3, 0, 0, 50), info(4, 200, 51, 0)]))
        .unwrap();
    st.apply(&edit(vec![info(3, 999, 5, 40)])).unwrap();
    assert_eq!(st.segment_info[&3], info(3, 100, 5, 50));
    assert_eq!(st.segment_info[&4], info(4, 200, 51, 0));
    // A snapshot keeps them.
    let mut again = ManifestState::default();
    again.apply(&st.snapshot_edit()).unwrap();
    assert_eq!(again.segment_info, st.segment_info);
    st.apply(&VersionEdit {
        segments_removed: vec![3],
        ..Default::default()
    })
    .unwrap();
    assert!(!st.segment_info.contains_key(&3));
    assert!(st.segment_info.contains_key(&4));
}

/// The created and counters fields are lists a later version may extend:
/// extra fields are ignored, missing ones read as 0, and a list that is not
/// varints, or cut, is an error.
#[test]
fn created_and_counters_lists_extend_and_refuse_garbage() {
    let list = |tag: u64, fields: &[u64]| {
        let mut payload = Vec::new();
        for &f in fields {
            put_varint(&mut payload, f);
        }
        let mut b = Vec::new();
        put_varint(&mut b, tag);
        put_length_prefixed(&mut b, &payload);
        b
    };
    let longer: Vec<u64> = (1..=40).collect();
    let e = VersionEdit::decode(&list(TAG_COUNTERS, &longer)).unwrap();
    let c = e.counters.unwrap();
    assert_eq!((c.user_bytes_written, c.writes, c.opens), (1, 2, 15));
    let e = VersionEdit::decode(&list(TAG_CREATED, &[5, 6])).unwrap();
    let c = e.created.unwrap();
    assert_eq!(
        (
            c.unix_secs,
            c.segment_size,
            c.value_threshold,
            c.memtable_size
        ),
        (5, 6, 0, 0)
    );
    // A varint that never ends inside the list.
    let mut b = Vec::new();
    put_varint(&mut b, TAG_CREATED);
    put_length_prefixed(&mut b, &[0x80, 0x80]);
    assert!(VersionEdit::decode(&b).is_err());
    // The list's length past the end.
    let mut b = list(TAG_COUNTERS, &[1, 2, 3]);
    b.pop();
    assert!(VersionEdit::decode(&b).is_err());
    // Twice in one edit.
    let twice = [list(TAG_CREATED, &[1]), list(TAG_CREATED, &[2])].concat();
    assert!(VersionEdit::decode(&twice)
        .unwrap_err()
        .contains("repeated"));
}

#[test]
fn decode_rejects_malformed_fields() {
    let mut b = Vec::new();
    put_varint(&mut b, 99);
    assert!(VersionEdit::decode(&b).unwrap_err().contains("unknown tag"));
    let e = VersionEdit {
        vlog_tail: Some(3),
        ..Default::default()
    };
    let twice = [e.encode(), e.encode()].concat();
    assert!(VersionEdit::decode(&twice)
        .unwrap_err()
        .contains("repeated"));
    let mut b = Vec::new();
    put_varint(&mut b, TAG_REMOVED);
    put_varint(&mut b, u64::from(MAX_LEVELS));
    put_varint(&mut b, 1);
    assert!(VersionEdit::decode(&b).is_err());
    let mut b = Vec::new();
    put_varint(&mut b, TAG_TABLE_CREATED);
    put_varint(&mut b, 1);
    put_length_prefixed(&mut b, b"t");
    b.push(2);
    assert!(VersionEdit::decode(&b).unwrap_err().contains("kind"));
    let mut b = Vec::new();
    put_varint(&mut b, TAG_TABLE_CREATED);
    put_varint(&mut b, 1);
    put_length_prefixed(&mut b, &[0xff, 0xfe]);
    b.push(0);
    assert!(VersionEdit::decode(&b).unwrap_err().contains("UTF-8"));
    // A giant length prefix is refused without allocating.
    let mut b = Vec::new();
    put_varint(&mut b, TAG_ADDED);
    for v in [1u64, 1, 1, 1, u64::MAX] {
        put_varint(&mut b, v);
    }
    assert!(VersionEdit::decode(&b).is_err());
}

#[test]
fn apply_orders_levels_and_snapshot_recreates_state() {
    let mut s = ManifestState::default();
    let e = VersionEdit {
        added: vec![
            sst_meta(0, 5, b"m", b"z"),
            sst_meta(0, 3, b"a", b"c"),
            sst_meta(2, 8, b"q", b"r"),
            sst_meta(2, 6, b"b", b"d"),
            sst_meta(2, 7, b"h", b"k"),
        ],
        next_file_number: Some(9),
        ..Default::default()
    };
    s.apply(&e).unwrap();
    assert_eq!(s.levels.len(), 3);
    assert!(s.levels[1].is_empty());
    let l0: Vec<u64> = s.levels[0].iter().map(|f| f.number).collect();
    let l2: Vec<u64> = s.levels[2].iter().map(|f| f.number).collect();
    assert_eq!(l0, [5, 3]);
    assert_eq!(l2, [6, 7, 8]);

    // A trivial move: remove and re-add the same number in one edit.
    let mv = VersionEdit {
        removed: vec![(0, 3)],
        added: vec![sst_meta(1, 3, b"a", b"c")],
        ..Default::default()
    };
    s.apply(&mv).unwrap();
    assert_eq!(s.levels[1][0].number, 3);

    // Emptying the deepest level shrinks the vector.
    s.apply(&VersionEdit {
        removed: vec![(2, 6), (2, 7), (2, 8)],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.levels.len(), 2);

    let mut again = ManifestState::default();
    again.apply(&s.snapshot_edit()).unwrap();
    assert_eq!(again, s);

    for seed in 0..50 {
        let s = random_state(seed, 40);
        let mut again = ManifestState::default();
        again.apply(&s.snapshot_edit()).unwrap();
        assert_eq!(again, s, "seed {seed}");
        let decoded = VersionEdit::decode(&s.snapshot_edit().encode()).unwrap();
        assert_eq!(decoded, s.snapshot_edit());
    }
}

#[test]
fn apply_refuses_bad_edits_without_changing_state() {
    let mut s = ManifestState::default();
    s.apply(&VersionEdit {
        added: vec![sst_meta(0, 1, b"a", b"b"), sst_meta(1, 2, b"c", b"d")],
        tables_created: vec![TableDef {
            id: 1,
            name: "t".into(),
            kind: TableKind::Ordered,
        }],
        ..Default::default()
    })
    .unwrap();
    let before = s.clone();
    let bad = [
        VersionEdit {
            removed: vec![(0, 9)],
            ..Default::default()
        },
        VersionEdit {
            removed: vec![(1, 1)],
            ..Default::default()
        },
        VersionEdit {
            removed: vec![(7, 1)],
            ..Default::default()
        },
        VersionEdit {
            removed: vec![(0, 1), (0, 1)],
            ..Default::default()
        },
        VersionEdit {
            added: vec![sst_meta(3, 2, b"x", b"y")],
            ..Default::default()
        },
        VersionEdit {
            added: vec![sst_meta(3, 4, b"x", b"y"), sst_meta(2, 4, b"x", b"y")],
            ..Default::default()
        },
        VersionEdit {
            added: vec![sst_meta(3, 4, b"y", b"x")],
            ..Default::default()
        },
        VersionEdit {
            added: vec![sst_meta(MAX_LEVELS, 4, b"x", b"y")],
            ..Default::default()
        },
        VersionEdit {
            // Valid removal, then a clash: nothing may change.
            removed: vec![(0, 1)],
            tables_created: vec![TableDef {
                id: 2,
                name: "t".into(),
                kind: TableKind::Ordered,
            }],
            ..Default::default()
        },
        VersionEdit {
            tables_created: vec![TableDef {
                id: 1,
                name: "u".into(),
                kind: TableKind::Ordered,
            }],
            ..Default::default()
        },
        VersionEdit {
            tables_created: vec![
                TableDef {
                    id: 5,
                    name: "v".into(),
                    kind: TableKind::Ordered,
                },
                TableDef {
                    id: 6,
                    name: "v".into(),
                    kind: TableKind::Unordered,
                },
            ],
            ..Default::default()
        },
    ];
    // Table definitions `Db::table` would never write: the default
    // table's id, the reserved name, an empty or over-long name.
    let reserved = [
        (0, "w".to_string()),
        (7, "default".to_string()),
        (7, String::new()),
        (7, "x".repeat(256)),
    ];
    let bad: Vec<VersionEdit> = bad
        .into_iter()
        .chain(reserved.into_iter().map(|(id, name)| VersionEdit {
            tables_created: vec![TableDef {
                id,
                name,
                kind: TableKind::Unordered,
            }],
            ..Default::default()
        }))
        .collect();
    for (i, e) in bad.iter().enumerate() {
        assert!(s.apply(e).is_err(), "edit {i} should be refused");
        assert_eq!(s, before, "edit {i} changed the state");
    }
}

fn manifest_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(crate::files::manifest(number))
}

/// Creates a manifest from a random state and appends `n` random edits;
/// returns the state after each record (index 0 = the snapshot alone).
fn build(dir: &Path, seed: u64, number: u64, n: usize) -> (Manifest, Vec<ManifestState>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = random_state(seed ^ 0xabcd, 10);
    let mut m = Manifest::create(fs(), dir, number, &state).unwrap();
    let mut states = vec![state.clone()];
    for _ in 0..n {
        let e = random_edit(&mut rng, &state);
        m.append(&e).unwrap();
        state.apply(&e).unwrap();
        states.push(state.clone());
    }
    (m, states)
}

fn recover(dir: &Path) -> Result<Option<(Manifest, ManifestState)>> {
    Manifest::recover(fs(), dir, true)
}

#[test]
fn create_append_recover_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    assert!(recover(dir.path()).unwrap().is_none());
    let (m, states) = build(dir.path(), 1, 3, 20);
    assert_eq!(m.number(), 3);
    let size = m.size();
    assert_eq!(
        size,
        std::fs::metadata(manifest_path(dir.path(), 3))
            .unwrap()
            .len()
    );
    drop(m);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(crate::files::CURRENT)).unwrap(),
        "MANIFEST-000003\n"
    );

    let (mut m, state) = recover(dir.path()).unwrap().unwrap();
    assert_eq!(&state, states.last().unwrap());
    assert_eq!(m.number(), 3);
    assert_eq!(m.size(), size);
    // Appending after recovery continues the same file.
    let mut rng = StdRng::seed_from_u64(77);
    let e = random_edit(&mut rng, &state);
    m.append(&e).unwrap();
    m.append(&VersionEdit::default()).unwrap(); // writes nothing
    let mut expected = state.clone();
    expected.apply(&e).unwrap();
    drop(m);
    let (m, state) = recover(dir.path()).unwrap().unwrap();
    assert_eq!(state, expected);

    // Rewrite: a new manifest holding the snapshot; CURRENT follows, the old file goes.
    assert!(matches!(
        Manifest::create(fs(), dir.path(), 3, &state),
        Err(Error::InvalidArgument(_))
    ));
    let m2 = Manifest::create(fs(), dir.path(), 10, &state).unwrap();
    assert!(m2.size() < m.size());
    drop((m, m2));
    assert!(!manifest_path(dir.path(), 3).exists());
    assert!(!dir
        .path()
        .join(crate::files::temp(crate::files::CURRENT))
        .exists());
    let (m, again) = recover(dir.path()).unwrap().unwrap();
    assert_eq!(m.number(), 10);
    assert_eq!(again, expected);
    let mut names = StdFs::default().list(dir.path()).unwrap();
    names.sort();
    assert_eq!(names, ["CURRENT", "MANIFEST-000010"]);
}

#[test]
fn torn_tail_is_dropped_and_reported() {
    for cut_kind in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let (m, states) = build(dir.path(), 5 + cut_kind, 1, 6);
        let full = m.size();
        drop(m);
        let path = manifest_path(dir.path(), 1);
        let bytes = std::fs::read(&path).unwrap();
        // The offset of the last record.
        let mut off = 0usize;
        let mut last = 0usize;
        while off < bytes.len() {
            last = off;
            off += 8 + u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        }
        let mut damaged = bytes.clone();
        match cut_kind {
            0 => damaged.truncate(last + 8 + 1),         // mid-payload
            1 => damaged.truncate(last + 3),             // mid-header
            2 => damaged[last + 5] ^= 0x40,              // the last record's crc
            _ => damaged.extend_from_slice(&[0u8; 100]), // zero-filled tail after a good record
        }
        std::fs::write(&path, &damaged).unwrap();
        let (mut m, state) = recover(dir.path()).unwrap().unwrap();
        let expect_len = if cut_kind == 3 { full } else { last as u64 };
        let expect_state = if cut_kind == 3 {
            &states[6]
        } else {
            &states[5]
        };
        assert_eq!(&state, expect_state, "cut kind {cut_kind}");
        assert_eq!(m.size(), expect_len);
        // The torn bytes stay (for the caller to judge) and are reported.
        assert!(std::fs::metadata(&path).unwrap().len() >= expect_len);
        assert!(m.dropped_tail().is_some(), "cut kind {cut_kind}");
        assert_eq!(m.dropped_tail().map(|t| t.0), Some(expect_len));
        // A following append + recover works.
        let mut rng = StdRng::seed_from_u64(cut_kind);
        let e = random_edit(&mut rng, &state);
        m.append(&e).unwrap();
        drop(m);
        let mut expected = state.clone();
        expected.apply(&e).unwrap();
        let (_, again) = recover(dir.path()).unwrap().unwrap();
        assert_eq!(again, expected, "cut kind {cut_kind}");
    }
}

fn assert_corruption_in(r: Result<Option<(Manifest, ManifestState)>>, file: &Path) -> u64 {
    match r {
        Err(Error::Corruption {
            file: f, offset, ..
        }) => {
            assert_eq!(f, file);
            offset
        }
        Err(e) => panic!("expected corruption in {}, got {e}", file.display()),
        Ok(_) => panic!("expected corruption in {}, got Ok", file.display()),
    }
}

#[test]
fn damage_in_the_middle_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = build(dir.path(), 9, 4, 5);
    drop(m);
    let path = manifest_path(dir.path(), 4);
    let good = std::fs::read(&path).unwrap();
    let first_len = u32::from_le_bytes(good[0..4].try_into().unwrap()) as usize;
    let second = 8 + first_len;

    // A flipped payload byte in the second record (records follow it).
    let mut bad = good.clone();
    bad[second + 9] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(
        assert_corruption_in(recover(dir.path()), &path),
        second as u64
    );
    // Nothing was truncated.
    assert_eq!(std::fs::read(&path).unwrap(), bad);

    // A flipped byte in the snapshot record.
    let mut bad = good.clone();
    bad[10] ^= 0x80;
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(assert_corruption_in(recover(dir.path()), &path), 0);

    // A zero length in the middle.
    let mut bad = good.clone();
    bad[second..second + 4].copy_from_slice(&[0; 4]);
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(
        assert_corruption_in(recover(dir.path()), &path),
        second as u64
    );

    // A record with a good checksum that does not decode.
    let mut bad = good[..second].to_vec();
    bad.extend_from_slice(&encode_record(&[0x63]).unwrap());
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(
        assert_corruption_in(recover(dir.path()), &path),
        second as u64
    );

    // A record with a good checksum that decodes but does not apply.
    let mut bad = good[..second].to_vec();
    let e = VersionEdit {
        removed: vec![(5, 999_999)],
        ..Default::default()
    };
    bad.extend_from_slice(&encode_record(&e.encode()).unwrap());
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(
        assert_corruption_in(recover(dir.path()), &path),
        second as u64
    );

    // An empty manifest, and one whose only record is torn.
    std::fs::write(&path, b"").unwrap();
    assert_corruption_in(recover(dir.path()), &path);
    std::fs::write(&path, &good[..first_len]).unwrap();
    assert_corruption_in(recover(dir.path()), &path);
    assert_eq!(std::fs::read(&path).unwrap(), &good[..first_len]);
}

#[test]
fn bad_current_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = build(dir.path(), 2, 4, 2);
    drop(m);
    let current = dir.path().join(crate::files::CURRENT);
    let long = "MANIFEST-000004\n".repeat(100);
    let bad: [&[u8]; 9] = [
        b"",
        b"\n",
        b"garbage",
        b"MANIFEST-000004",
        b"MANIFEST-4\n",
        b"MANIFEST-000004\n\n",
        b"MANIFEST-00000\xff\n",
        b"\x00\x01\x02\x03",
        long.as_bytes(),
    ];
    for contents in bad {
        std::fs::write(&current, contents).unwrap();
        assert_corruption_in(recover(dir.path()), &current);
    }
    std::fs::write(&current, b"MANIFEST-000005\n").unwrap();
    assert_corruption_in(recover(dir.path()), &current);
    std::fs::write(&current, b"MANIFEST-000004\n").unwrap();
    assert!(recover(dir.path()).unwrap().is_some());

    // A garbled CURRENT does not stop a rewrite, which then repairs it.
    std::fs::write(&current, b"junk").unwrap();
    let state = random_state(3, 5);
    drop(Manifest::create(fs(), dir.path(), 6, &state).unwrap());
    let (m, again) = recover(dir.path()).unwrap().unwrap();
    assert_eq!((m.number(), again), (6, state));
}

#[test]
fn hostile_manifest_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (m, states) = build(dir.path(), 11, 1, 8);
    drop(m);
    let path = manifest_path(dir.path(), 1);
    let good = std::fs::read(&path).unwrap();
    let (mut ok, mut corrupt) = (0, 0);
    for seed in 0..400u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bytes = good.clone();
        for _ in 0..rng.gen_range(1..4) {
            match rng.gen_range(0..4) {
                0 => {
                    let i = rng.gen_range(0..bytes.len().max(1));
                    if let Some(b) = bytes.get_mut(i) {
                        *b ^= 1 << rng.gen_range(0..8);
                    }
                }
                1 => {
                    let n = rng.gen_range(0..=bytes.len());
                    bytes.truncate(n);
                }
                2 => {
                    let n = rng.gen_range(1..64);
                    bytes.extend((0..n).map(|_| rng.gen::<u8>()));
                }
                _ => {
                    // A plausible header with a hostile length.
                    let i = rng.gen_range(0..bytes.len().max(1));
                    let len: u32 = rng.gen();
                    if i + 4 <= bytes.len() {
                        bytes[i..i + 4].copy_from_slice(&len.to_le_bytes());
                    }
                }
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        match recover(dir.path()) {
            Ok(Some((_, state))) => {
                assert!(
                    states.contains(&state),
                    "seed {seed}: state is not a prefix"
                );
                ok += 1;
            }
            Ok(None) => panic!("seed {seed}: CURRENT vanished"),
            Err(e) => {
                assert!(e.is_corruption(), "seed {seed}: {e}");
                corrupt += 1;
            }
        }
    }
    assert!(ok > 0 && corrupt > 0, "ok {ok}, corrupt {corrupt}");
}

#[test]
fn failed_append_poisons_the_manifest() {
    // A handle that fails writes after being told to.
    #[derive(Debug)]
    struct Failing(Arc<dyn FileHandle>);
    impl FileHandle for Failing {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            self.0.read_at(buf, offset)
        }
        fn write_at(&self, _: &[u8], _: u64) -> std::io::Result<usize> {
            Err(std::io::Error::other("injected"))
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.0.sync_data()
        }
        fn sync_all(&self) -> std::io::Result<()> {
            self.0.sync_all()
        }
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.0.set_len(len)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut m, states) = build(dir.path(), 4, 2, 1);
    m.file = Arc::new(Failing(m.file.clone()));
    let e = VersionEdit {
        last_sequence: Some(1),
        ..Default::default()
    };
    assert!(matches!(m.append(&e), Err(Error::Io { .. })));
    assert!(matches!(m.append(&e), Err(Error::Poisoned(_))));
    drop(m);
    let (_, state) = recover(dir.path()).unwrap().unwrap();
    assert_eq!(&state, states.last().unwrap());
}

#[test]
fn drops_and_renames_round_trip_and_are_checked() {
    use super::edit::DroppedTable;
    let mut s = ManifestState::default();
    let create = |id: u32, name: &str, kind: TableKind| VersionEdit {
        tables_created: vec![TableDef {
            id,
            name: name.into(),
            kind,
        }],
        ..Default::default()
    };
    s.apply(&create(1, "a", TableKind::Ordered)).unwrap();
    s.apply(&create(2, "b", TableKind::Unordered)).unwrap();
    let drop_a = VersionEdit {
        tables_dropped: vec![DroppedTable {
            id: 1,
            kind: TableKind::Ordered,
        }],
        tables_renamed: vec![(2, "a".into())],
        ..Default::default()
    };
    assert_eq!(VersionEdit::decode(&drop_a.encode()).unwrap(), drop_a);
    // Hostile bytes: an unknown kind, a truncated name, an id past u32.
    for bad in [
        &[16u8, 1, 9][..],
        &[17, 2, 5, b'a'],
        &[16, 0xff, 0xff, 0xff, 0xff, 0x1f, 0],
        &[16],
    ] {
        assert!(VersionEdit::decode(bad).is_err(), "{bad:?}");
    }
    s.apply(&drop_a).unwrap();
    assert_eq!(s.tables.len(), 1);
    assert_eq!((s.tables[0].id, s.tables[0].name.as_str()), (2, "a"));
    assert_eq!(s.next_table_id(), 3);
    // A dropped id is never created again; the default table never drops;
    // a rename needs a live table and a free name.
    assert!(s.apply(&create(1, "z", TableKind::Ordered)).is_err());
    let bad = [
        VersionEdit {
            tables_dropped: vec![DroppedTable {
                id: 0,
                kind: TableKind::Ordered,
            }],
            ..Default::default()
        },
        VersionEdit {
            tables_dropped: vec![DroppedTable {
                id: 2,
                kind: TableKind::Ordered,
            }],
            ..Default::default()
        },
        VersionEdit {
            tables_renamed: vec![(9, "q".into())],
            ..Default::default()
        },
    ];
    for e in &bad {
        let before = s.clone();
        assert!(s.apply(e).is_err(), "{e:?}");
        assert_eq!(s, before);
    }
    s.apply(&create(3, "c", TableKind::Ordered)).unwrap();
    assert!(s
        .apply(&VersionEdit {
            tables_renamed: vec![(3, "a".into())],
            ..Default::default()
        })
        .is_err());
    // A snapshot keeps the dropped ids.
    let mut again = ManifestState::default();
    again.apply(&s.snapshot_edit()).unwrap();
    assert_eq!(again, s);
    assert_eq!(again.next_table_id(), 4);
}
