//! Tests of the keydirs: writes, rebuilds in any order, GC's questions and
//! commits.

use super::*;

fn ptr(segment: u64, offset: u64) -> ValuePointer {
    ValuePointer {
        segment,
        offset,
        len: 40,
        raw_len: None,
    }
}

fn rec(key: &[u8], seq: u64, p: ValuePointer, put: bool) -> NewRecord {
    NewRecord {
        table: 1,
        key: key.to_vec(),
        seq,
        ptr: p,
        put,
    }
}

fn hint(key: &[u8], seq: u64, offset: u64, put: bool) -> HintEntry {
    HintEntry {
        put,
        table: 1,
        seq,
        offset,
        len: 40,
        raw_len: None,
        key: key.to_vec(),
    }
}

#[test]
fn writes_overwrite_and_count_garbage() {
    let k = Keydirs::new([1]);
    k.apply_written(vec![rec(b"a", 1, ptr(5, 0), true)]);
    k.apply_written(vec![rec(b"a", 2, ptr(5, 40), true)]);
    k.apply_written(vec![rec(b"nope", 3, ptr(5, 80), false)]);
    let kd = k.table(1).unwrap();
    assert_eq!(kd.map.read().get(b"a").unwrap().seq, 2);
    assert!(kd.map.read().get(b"nope").is_none());
    assert_eq!(k.garbage().get(&5), Some(&80));
    assert_eq!(k.take_sealed(5).len(), 3);
    assert!(k.take_sealed(5).is_empty());
    assert!(!k.is_unordered(2));
}

/// The whole state of a set of keydirs: table 1's entries in key
/// order, the garbage per segment, the key count.
type State = (Vec<(Vec<u8>, KeyEntry)>, BTreeMap<u64, u64>, u64);

fn state(k: &Keydirs) -> State {
    let kd = k.table(1).unwrap();
    let mut map: Vec<(Vec<u8>, KeyEntry)> =
        kd.map.read().iter().map(|(k, e)| (k.to_vec(), e)).collect();
    map.sort_by(|a, b| a.0.cmp(&b.0));
    (map, k.garbage(), k.len())
}

/// A hint file's entries applied from its bytes build the same keydir,
/// garbage and all, as the same entries decoded one by one; records of
/// a table that is not unordered are skipped either way, between runs
/// of one that is.
#[test]
fn raw_and_decoded_hints_agree() {
    let mut other = hint(b"x", 5, 0, true);
    other.table = 7;
    let segments: Vec<(u64, Vec<HintEntry>)> = vec![
        (
            3,
            vec![
                hint(b"a", 10, 0, true),
                other.clone(),
                hint(b"b", 11, 40, true),
            ],
        ),
        (
            4,
            vec![hint(b"a", 20, 0, false), hint(b"b", 9, 80, true), other],
        ),
        (
            9,
            (0..500u64)
                .map(|i| hint(format!("k{i}").as_bytes(), 30 + i, i * 40, true))
                .collect(),
        ),
    ];
    let (decoded, raw) = (Keydirs::new([1]), Keydirs::new([1]));
    for (n, entries) in &segments {
        decoded.apply_found(*n, entries);
        let bytes = crate::vlog::hint::encode(*n, 1 << 20, entries);
        let h = crate::vlog::hint::decode_raw(std::path::Path::new("h"), bytes).unwrap();
        raw.apply_hint(*n, &h);
    }
    assert_eq!(state(&decoded), state(&raw));
    let (map, garbage, len) = state(&raw);
    assert_eq!(len, 502);
    assert_eq!(map.len(), 502);
    // a's put (segment 3) and b's older put (segment 4) are garbage.
    assert_eq!(garbage.get(&3), Some(&40));
    assert_eq!(garbage.get(&4), Some(&40));
    let kd = raw.table(1).unwrap();
    assert!((0..500u64).all(|i| kd.map.read().get(format!("k{i}").as_bytes()).is_some()));

    // Table 7 dropped (it was unordered): its records are garbage now.
    let dropped = Keydirs::new([1]);
    dropped.note_dropped(7);
    for (n, entries) in &segments {
        dropped.apply_found(*n, entries);
    }
    let (_, garbage, _) = state(&dropped);
    assert_eq!(garbage.get(&3), Some(&80));
    assert_eq!(garbage.get(&4), Some(&80));
}

/// The order segments are applied in changes nothing (an open applies
/// them as its threads finish reading them): every permutation of five
/// segments, with overwrites, tombstones, a relocated copy of a record
/// (same sequence number in two segments) and long keys, builds one
/// state.
#[test]
fn any_order_of_segments_builds_the_same_keydir() {
    let long = vec![b'L'; 5000];
    type Segments = Vec<(u64, Vec<HintEntry>)>;
    let mut segments: Segments = vec![
        (1, vec![hint(b"a", 1, 0, true), hint(&long, 2, 40, true)]),
        (2, vec![hint(b"a", 3, 0, false), hint(b"b", 4, 40, true)]),
        // GC segment 5 holds a copy of b's seq 4 and the newest long key.
        (5, vec![hint(b"b", 4, 0, true), hint(&long, 6, 40, true)]),
        (6, vec![hint(b"c", 7, 0, true), hint(b"a", 8, 40, true)]),
        (
            7,
            (0..50u64)
                .map(|i| hint(&[i as u8; 20], 100 + i, i * 40, true))
                .collect(),
        ),
    ];
    let build = |segs: &Segments| {
        let k = Keydirs::new([1]);
        for (n, e) in segs {
            k.apply_found(*n, e);
        }
        state(&k)
    };
    let want = build(&segments);
    // Heap's algorithm: every permutation.
    fn permute(n: usize, s: &mut Segments, f: &mut dyn FnMut(&Segments)) {
        if n <= 1 {
            return f(s);
        }
        for i in 0..n - 1 {
            permute(n - 1, s, f);
            let j = if n.is_multiple_of(2) { i } else { 0 };
            s.swap(j, n - 1);
        }
        permute(n - 1, s, f);
    }
    let mut seen = 0;
    permute(5, &mut segments, &mut |s| {
        assert_eq!(build(s), want);
        seen += 1;
    });
    assert_eq!(seen, 120);
    let (map, garbage, _) = want;
    let get = |k: &[u8]| map.iter().find(|(key, _)| key == k).unwrap().1;
    assert_eq!(get(b"b").ptr, ptr(2, 40), "the lower segment wins a tie");
    assert_eq!(get(b"a").seq, 8);
    assert_eq!(get(&long).seq, 6);
    assert_eq!(garbage.get(&5), Some(&40));
    assert_eq!(garbage.get(&1), Some(&80));
}

#[test]
fn rebuild_keeps_the_highest_sequence_in_any_order() {
    let k = Keydirs::new([1]);
    // A GC segment (9) with an old relocated put, read before the user
    // segment (4) with the newer tombstone and the even older put.
    k.apply_found(9, &[hint(b"a", 5, 0, true)]);
    k.apply_found(4, &[hint(b"a", 3, 0, true), hint(b"a", 6, 40, false)]);
    let kd = k.table(1).unwrap();
    let e = kd.map.read().get(b"a").unwrap();
    assert_eq!((e.seq, e.put, e.ptr), (6, false, ptr(4, 40)));
    assert_eq!(k.garbage().get(&9), Some(&40));
    assert_eq!(k.garbage().get(&4), Some(&40));
}

#[test]
fn tombstones_go_only_when_nothing_older_remains() {
    let k = Keydirs::new([1]);
    k.apply_found(3, &[hint(b"a", 10, 0, true)]);
    k.apply_found(4, &[hint(b"a", 20, 0, false), hint(b"b", 21, 40, true)]);
    // Segment 3 still holds seq 10 < 20.
    assert_eq!(k.liveness(1, b"a", 20, &ptr(4, 0), &[4]), Liveness::Live);
    // Collected together with segment 3: droppable.
    assert_eq!(
        k.liveness(1, b"a", 20, &ptr(4, 0), &[3, 4]),
        Liveness::DropTombstone
    );
    assert_eq!(k.liveness(1, b"a", 10, &ptr(3, 0), &[3]), Liveness::Dead);
    let n = k.commit_gc(
        &[Move {
            table: 1,
            key: b"b".to_vec(),
            old: ptr(4, 40),
            new: ptr(7, 0),
        }],
        &[(1, b"a".to_vec(), ptr(4, 0))],
        &[3, 4],
        || {},
    );
    assert_eq!(n, 0);
    let kd = k.table(1).unwrap();
    assert!(kd.map.read().get(b"a").is_none());
    assert_eq!(kd.map.read().get(b"b").unwrap().ptr, ptr(7, 0));
}

#[test]
fn a_move_that_lost_to_a_write_is_garbage() {
    let k = Keydirs::new([1]);
    k.apply_written(vec![rec(b"a", 1, ptr(3, 0), true)]);
    k.apply_written(vec![rec(b"a", 2, ptr(4, 0), true)]);
    let n = k.commit_gc(
        &[Move {
            table: 1,
            key: b"a".to_vec(),
            old: ptr(3, 0),
            new: ptr(8, 0),
        }],
        &[],
        &[3],
        || {},
    );
    assert_eq!(n, 1);
    assert_eq!(k.garbage().get(&8), Some(&40));
    assert!(!k.garbage().contains_key(&3));
}
