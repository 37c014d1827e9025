//! A long soak of mixed load with automatic GC, behind a flag:
//!
//! ```sh
//! WISCKEY_SOAK_SECS=3600 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Writers overwrite and delete a fixed key space, in the default (ordered)
//! table and in an unordered table, while readers get, scan and multi_get; every few seconds the test samples the process's resident memory,
//! its open file descriptors and the vLog's space amplification, and checks
//! that none of them keeps growing once the first minute (or tenth) of the
//! run is over. Every value read is checked against the version scheme.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wisckey::{Db, Options, TableOptions};

const KEYS: u64 = 20_000;

fn key(i: u64) -> Vec<u8> {
    format!("soak{i:08}").into_bytes()
}

fn value(i: u64, version: u64) -> Vec<u8> {
    let len = 1000 + (i * 7 + version * 13) as usize % 7000;
    let mut v = vec![(i ^ version) as u8; len];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v[8..16].copy_from_slice(&version.to_le_bytes());
    v
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn check(k: &[u8], v: &[u8]) {
    assert!(
        v.len() >= 16,
        "short value for {:?}",
        String::from_utf8_lossy(k)
    );
    let i = u64::from_le_bytes(v[..8].try_into().unwrap());
    let version = u64::from_le_bytes(v[8..16].try_into().unwrap());
    assert_eq!(key(i), k, "value of another key");
    assert_eq!(v, value(i, version).as_slice(), "damaged value");
}

#[test]
#[ignore = "long run: set WISCKEY_SOAK_SECS and pass --ignored"]
fn soak_mixed_load_with_gc() {
    let secs: u64 = std::env::var("WISCKEY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .memtable_size(4 << 20)
        .segment_size(16 << 20)
        .gc_space_amp_target(1.5);
    let db = Db::open(dir.path(), opts).unwrap();
    let blobs = db.table("blobs", TableOptions::unordered()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for w in 0..2u64 {
        let (db, stop, writes) = (db.clone(), stop.clone(), writes.clone());
        let blobs = blobs.clone();
        threads.push(std::thread::spawn(move || {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ w;
            let mut version = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = x % KEYS;
                version += 1;
                // A third of the writes go to the unordered table.
                let t = if x.is_multiple_of(3) {
                    &blobs
                } else {
                    &db.default_table()
                };
                if x.is_multiple_of(10) {
                    t.delete(key(i)).unwrap();
                } else {
                    t.put(key(i), value(i, version)).unwrap();
                }
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for r in 0..2u64 {
        let (db, stop) = (db.clone(), stop.clone());
        let blobs = blobs.clone();
        threads.push(std::thread::spawn(move || {
            let mut x = 0x2545_f491_4f6c_dd1du64 ^ r;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 50 == 1 {
                    let keys: Vec<Vec<u8>> = (0..64).map(|j| key((x + j) % KEYS)).collect();
                    for (k, v) in keys.iter().zip(blobs.multi_get(&keys).unwrap()) {
                        if let Some(v) = v {
                            check(k, &v);
                        }
                    }
                } else if x.is_multiple_of(3) {
                    let k = key(x % KEYS);
                    if let Some(v) = blobs.get(&k).unwrap() {
                        check(&k, &v);
                    }
                } else if x.is_multiple_of(50) {
                    let start = key(x % KEYS);
                    for kv in db.range(start.as_slice()..).take(200) {
                        let (k, v) = kv.unwrap();
                        check(&k, &v);
                    }
                } else {
                    let k = key(x % KEYS);
                    if let Some(v) = db.get(&k).unwrap() {
                        check(&k, &v);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    let warmup = Duration::from_secs((secs / 10).clamp(5, 60));
    let mut baseline: Option<(u64, usize)> = None;
    let mut worst = (0u64, 0usize, 0f64);
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(2));
        let st = db.stats();
        let (rss, fds, sa) = (rss_bytes(), open_fds(), st.vlog_space_amplification);
        eprintln!(
            "soak {:>5}s: {} writes, rss {} MiB, fds {fds}, vLog {} MiB, space amp {sa:.3}, GC passes {}, keydir keys {}",
            started.elapsed().as_secs(),
            writes.load(Ordering::Relaxed),
            rss >> 20,
            st.vlog_bytes >> 20,
            st.gc_passes,
            st.unordered_keys
        );
        if started.elapsed() < warmup {
            continue;
        }
        let (base_rss, base_fds) = *baseline.get_or_insert((rss, fds));
        worst = (worst.0.max(rss), worst.1.max(fds), worst.2.max(sa));
        assert!(
            fds <= base_fds + 64,
            "open files grew from {base_fds} to {fds}"
        );
        assert!(
            rss <= base_rss * 2 + (256 << 20),
            "memory grew from {} MiB to {} MiB",
            base_rss >> 20,
            rss >> 20
        );
        // The estimate may pass the target between GC rounds, not run away.
        assert!(sa < 4.0, "space amplification ran away: {sa}");
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    eprintln!(
        "soak done: {} writes in {:?}; worst after warm-up: rss {} MiB, fds {}, space amp {:.3}",
        writes.load(Ordering::Relaxed),
        started.elapsed(),
        worst.0 >> 20,
        worst.1,
        worst.2
    );
    drop(blobs);
    db.close().unwrap();
}
