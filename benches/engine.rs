//! Criterion micro-benchmarks of the engine: put and warm get of small
//! (100 B, kept inline in the index) and large (4 KiB, in the vLog) values
//! (the gets with the default block cache and, `_nocache`, without one),
//! a 1,000-entry range scan, and put and warm get on an unordered
//! (keydir) table, where every value is in the vLog and a get reads no
//! SSTable.
//!
//! Run with `cargo bench --bench engine`; each group is kept short (few
//! samples, a few seconds of measurement) so the whole run takes about a
//! minute.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Duration;
use wisckey::{Db, Options, TableOptions};

/// Keys preloaded for the get and scan benchmarks.
const PRELOAD: u64 = 20_000;
const SCAN_LEN: usize = 1_000;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:016}").into_bytes()
}

/// Pseudo-random bytes (xorshift64), so values do not compress.
fn value(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn open() -> (tempfile::TempDir, Db) {
    open_with(Options::default())
}

fn open_with(opts: Options) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Db::open(dir.path(), opts).expect("open");
    (dir, db)
}

fn preload(db: &Db, value_len: usize) {
    for i in 0..PRELOAD {
        db.put(key(i), value(value_len, i)).expect("put");
    }
    // Half in SSTables, half in the memtable would blur the figures: read
    // from SSTables (plus the vLog for large values) only.
    db.flush().expect("flush");
}

fn bench_put(c: &mut Criterion) {
    let mut g = c.benchmark_group("put");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for len in [100usize, 4096] {
        let (_dir, db) = open();
        let v = value(len, 7);
        let mut i = 0u64;
        g.throughput(Throughput::Bytes((len + 19) as u64));
        g.bench_function(format!("{len}B"), |b| {
            b.iter(|| {
                i += 1;
                db.put(key(i), &v).expect("put");
            })
        });
    }
    g.finish();
}

fn bench_get(c: &mut Criterion) {
    let mut g = c.benchmark_group("get_warm");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (len, cache) in [(100usize, true), (4096, true), (100, false), (4096, false)] {
        let opts = if cache {
            Options::default()
        } else {
            Options::default().block_cache_size(0)
        };
        let (_dir, db) = open_with(opts);
        preload(&db, len);
        // Warm the page cache, the block cache and any table state.
        for i in 0..PRELOAD {
            db.get(key(i)).expect("get").expect("present");
        }
        let mut x = 1u64;
        g.throughput(Throughput::Bytes((len + 19) as u64));
        let name = if cache {
            format!("{len}B")
        } else {
            format!("{len}B_nocache")
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    key((x >> 33) % PRELOAD)
                },
                |k| db.get(&k).expect("get").expect("present"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn bench_scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("scan");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for len in [100usize, 4096] {
        let (_dir, db) = open();
        preload(&db, len);
        let mut x = 1u64;
        g.throughput(Throughput::Elements(SCAN_LEN as u64));
        g.bench_function(format!("{SCAN_LEN}x{len}B"), |b| {
            b.iter_batched(
                || {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    key((x >> 33) % (PRELOAD - SCAN_LEN as u64))
                },
                |start| {
                    let mut n = 0;
                    for kv in db.range(start.as_slice()..).take(SCAN_LEN) {
                        kv.expect("scan");
                        n += 1;
                    }
                    assert_eq!(n, SCAN_LEN);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn bench_unordered(c: &mut Criterion) {
    let mut g = c.benchmark_group("unordered");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for len in [100usize, 4096] {
        let (_dir, db) = open();
        let t = db
            .table("u", TableOptions::unordered())
            .expect("unordered table");
        let v = value(len, 7);
        let mut i = PRELOAD;
        g.throughput(Throughput::Bytes((len + 19) as u64));
        g.bench_function(format!("put_{len}B"), |b| {
            b.iter(|| {
                i += 1;
                t.put(key(i), &v).expect("put");
            })
        });
        for i in 0..PRELOAD {
            t.put(key(i), value(len, i)).expect("put");
        }
        for i in 0..PRELOAD {
            t.get(key(i)).expect("get").expect("present");
        }
        let mut x = 1u64;
        g.bench_function(format!("get_warm_{len}B"), |b| {
            b.iter_batched(
                || {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    key((x >> 33) % PRELOAD)
                },
                |k| t.get(&k).expect("get").expect("present"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_put, bench_get, bench_scan, bench_unordered);
criterion_main!(benches);
