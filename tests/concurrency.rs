//! Concurrent writers and readers on one `Db`, and group commit of syncs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use wisckey::{Db, Options, WriteBatch, WriteOptions};

const WRITERS: u32 = 4;
const READERS: u32 = 4;
const KEYS_PER_WRITER: u32 = 50;

fn opts() -> Options {
    Options::default()
        .memtable_size(64 << 10)
        .segment_size(256 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(32 << 10)
        .block_size(512)
}

fn key(w: u32, i: u32) -> Vec<u8> {
    format!("w{w}-k{i:04}").into_bytes()
}

/// `key|version|` then filler; every 4th version is large (in the vLog).
fn value(k: &[u8], version: u64) -> Vec<u8> {
    let mut v = k.to_vec();
    v.push(b'|');
    v.extend_from_slice(format!("{version:010}").as_bytes());
    v.push(b'|');
    let size = if version.is_multiple_of(4) { 2000 } else { 30 };
    while v.len() < size {
        v.push((version as u8).wrapping_add(v.len() as u8));
    }
    v
}

/// Checks that `v` is a well-formed value of `k`; returns its version.
fn parse(k: &[u8], v: &[u8]) -> u64 {
    assert!(
        v.len() > k.len() + 12,
        "short value for {:?}",
        String::from_utf8_lossy(k)
    );
    assert_eq!(&v[..k.len()], k, "value of another key");
    let version: u64 = std::str::from_utf8(&v[k.len() + 1..k.len() + 11])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v, value(k, version).as_slice(), "malformed value");
    version
}

#[test]
fn writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new((WRITERS + READERS + 1) as usize));
    let ops = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (db, start, ops) = (db.clone(), start.clone(), ops.clone());
        writers.push(std::thread::spawn(move || {
            start.wait();
            let mut last = vec![0u64; KEYS_PER_WRITER as usize];
            for round in 1..=60u64 {
                if round % 3 == 0 {
                    let mut b = WriteBatch::new();
                    for i in 0..KEYS_PER_WRITER {
                        b.put(key(w, i), value(&key(w, i), round));
                        last[i as usize] = round;
                    }
                    db.write(b, WriteOptions::default().sync(round % 9 == 0))
                        .unwrap();
                } else {
                    for i in 0..KEYS_PER_WRITER {
                        db.put(key(w, i), value(&key(w, i), round)).unwrap();
                        last[i as usize] = round;
                    }
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
            last
        }));
    }
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (db, start, stop) = (db.clone(), start.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            start.wait();
            let mut seen: HashMap<Vec<u8>, u64> = HashMap::new();
            let mut observations = 0u64;
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let mut observe = |k: &[u8], v: &[u8]| {
                    let version = parse(k, v);
                    let prev = seen.entry(k.to_vec()).or_insert(0);
                    assert!(
                        version >= *prev,
                        "reader {r}: {} went back from {prev} to {version}",
                        String::from_utf8_lossy(k)
                    );
                    *prev = version;
                    observations += 1;
                };
                if n.is_multiple_of(4) {
                    let w = n % WRITERS;
                    let prefix = format!("w{w}-");
                    let it: Box<dyn Iterator<Item = _>> = if n.is_multiple_of(8) {
                        Box::new(db.prefix(prefix.as_bytes()).rev())
                    } else {
                        Box::new(db.prefix(prefix.as_bytes()))
                    };
                    let mut count = 0;
                    for kv in it {
                        let (k, v) = kv.unwrap();
                        observe(&k, &v);
                        count += 1;
                    }
                    // Each writer puts its keys in order: once its last key
                    // was seen, every scan sees all of them.
                    let complete = seen.contains_key(&key(w, KEYS_PER_WRITER - 1));
                    assert!(count <= KEYS_PER_WRITER);
                    assert!(
                        !complete || count == KEYS_PER_WRITER,
                        "reader {r}: scan of {prefix} saw {count} keys"
                    );
                } else {
                    let (w, i) = (n % WRITERS, (n * 7) % KEYS_PER_WRITER);
                    let k = key(w, i);
                    if let Some(v) = db.get(&k).unwrap() {
                        observe(&k, &v);
                    }
                }
            }
            observations
        }));
    }
    start.wait();
    // A snapshot mid-way stays consistent while writes go on.
    while ops.load(Ordering::Relaxed) < 40 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let snap = db.snapshot();
    let frozen: Vec<(Vec<u8>, Vec<u8>)> = snap
        .iter()
        .map(|kv| kv.map(|(k, v)| (k, v.into_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    for (k, v) in &frozen {
        parse(k, v);
    }
    let mut finals = Vec::new();
    for h in writers {
        finals.push(h.join().unwrap());
    }
    db.flush().unwrap();
    let again: Vec<(Vec<u8>, Vec<u8>)> = snap
        .iter()
        .map(|kv| kv.map(|(k, v)| (k, v.into_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        frozen == again,
        "the snapshot changed under writes and a flush"
    );
    for (k, v) in &frozen {
        assert_eq!(snap.get(k).unwrap().as_deref(), Some(v.as_slice()));
    }
    drop(snap);
    stop.store(true, Ordering::Relaxed);
    let mut observations = 0;
    for h in readers {
        observations += h.join().unwrap();
    }
    assert!(observations > 0, "the readers saw nothing");
    let check = |db: &Db| {
        for (w, last) in finals.iter().enumerate() {
            for (i, &version) in last.iter().enumerate() {
                let k = key(w as u32, i as u32);
                let v = db.get(&k).unwrap().expect("final value missing");
                assert_eq!(parse(&k, &v), version);
            }
        }
        assert_eq!(db.iter().count(), (WRITERS * KEYS_PER_WRITER) as usize);
    };
    check(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db);
    eprintln!("writers_and_readers: {observations} reader observations");
}

#[test]
fn concurrent_sync_writes_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let threads = 8u32;
    let per_thread = 100u32;
    let before = db.stats().syncs;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let mut b = WriteBatch::new();
                    b.put(format!("t{t}-{i}"), [t as u8; 100]);
                    db.write(b, WriteOptions::default().sync(true)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let syncs = db.stats().syncs - before;
    let writes = u64::from(threads * per_thread);
    eprintln!(
        "{writes} sync writes from {threads} threads used {syncs} syncs in {:?}",
        started.elapsed()
    );
    assert!(syncs >= 1);
    // Group commit: concurrent sync writes share fdatasyncs (typically a
    // quarter as many syncs as writes here).
    assert!(
        syncs < writes,
        "no sync was shared: {syncs} syncs for {writes} sync writes"
    );
    for t in 0..threads {
        for i in 0..per_thread {
            assert!(db.get(format!("t{t}-{i}")).unwrap().is_some());
        }
    }
}
