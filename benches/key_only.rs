//! Criterion benchmark of key-only reads: a full `keys()` walk of
//! 1,000,000 × 4 KiB entries (settled into SSTables) against the same walk
//! through `iter()`, which reads every value from the vLog, and against a
//! walk of an index of the same keys with 16-byte inline values (the
//! index's own speed). `WISCKEY_BENCH_KEYS` sets the number of keys (the
//! default, 1,000,000, needs about 4.2 GB of disk and a minute to load).
//!
//! Run with `cargo bench --bench key_only`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use wisckey::{Db, Options, WriteBatch, WriteOptions};

fn keys() -> u64 {
    std::env::var("WISCKEY_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn key(i: u64) -> [u8; 16] {
    // Random order on load, as a user's keys would come.
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn load(value_len: usize) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let n = keys();
    let value = vec![0x5au8; value_len];
    let mut b = WriteBatch::new();
    for i in 0..n {
        b.put(key(i), &value);
        if b.len() == 64 {
            db.write(std::mem::take(&mut b), WriteOptions::default())
                .expect("write");
        }
    }
    db.write(b, WriteOptions::default()).expect("write");
    db.flush().expect("flush");
    db.compact().expect("compact");
    (dir, db)
}

/// Walks the whole table reading every value; the number of pairs.
fn walk_values(db: &Db) -> u64 {
    db.iter()
        .try_fold(0u64, |n, kv| kv.map(|_| n + 1))
        .expect("pair")
}

fn bench_key_only(c: &mut Criterion) {
    let n = keys();
    let mut g = c.benchmark_group("key_only_scan");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(n));
    {
        let (_dir, db) = load(4096);
        g.bench_function(format!("keys_{n}x4KiB"), |b| {
            b.iter(|| {
                let before = db.stats().vlog_bytes_read;
                let count = db
                    .keys()
                    .try_fold(0u64, |n, k| k.map(|_| n + 1))
                    .expect("key");
                assert_eq!(count, n);
                assert_eq!(db.stats().vlog_bytes_read, before, "a key read a value");
            })
        });
        g.bench_function(format!("iter_{n}x4KiB"), |b| {
            b.iter(|| assert_eq!(walk_values(&db), n))
        });
    }
    {
        let (_dir, db) = load(16);
        g.bench_function(format!("iter_{n}x16B_inline"), |b| {
            b.iter(|| assert_eq!(walk_values(&db), n))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_key_only);
criterion_main!(benches);
