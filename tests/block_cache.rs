//! The block cache, through the public API on a real file system: what a
//! point read costs cold and warm (`Stats::get_block_reads`,
//! `get_vlog_reads`, `device_reads_per_get`), that the cache stays within its
//! capacity, that size 0 disables it, and that reads answer the same with and
//! without it while flushes and compactions replace the tables.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use wisckey::{Db, Options};

/// Small blocks (many per table), values in the vLog, no background GC (its
/// liveness checks read blocks too).
fn opts() -> Options {
    Options::default()
        .block_size(512)
        .value_threshold(32)
        .background_gc(false)
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, gen: u32) -> Vec<u8> {
    let mut v = format!("value {i} gen {gen} ").into_bytes();
    v.resize(100, b'.');
    v
}

/// Writes keys `0..n` (step `step`) and merges every table into the last
/// level.
fn load(dir: &Path, o: Options, n: u32, step: usize) {
    let db = Db::open(dir, o).unwrap();
    for i in (0..n).step_by(step) {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.compact().unwrap();
    db.close().unwrap();
}

#[test]
fn a_repeated_point_read_hits_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path(), opts(), 2000, 1);
    let db = Db::open(dir.path(), opts()).unwrap();
    let s0 = db.stats();
    assert_eq!(s0.block_cache_capacity, 64 << 20);
    assert_eq!((s0.block_cache_hits, s0.block_cache_misses), (0, 0));
    assert!(s0.index_filter_bytes > 0, "{s0:?}");
    assert_eq!(&db.get(key(77)).unwrap().unwrap()[..], &value(77, 0)[..]);
    let s1 = db.stats();
    assert_eq!(s1.get_block_reads, 1);
    assert_eq!(s1.sst_block_reads, 1);
    assert_eq!(s1.block_cache_misses, 1);
    for _ in 0..10 {
        assert_eq!(&db.get(key(77)).unwrap().unwrap()[..], &value(77, 0)[..]);
    }
    let s2 = db.stats();
    assert_eq!(s2.block_cache_hits, s1.block_cache_hits + 10);
    assert_eq!(s2.block_cache_misses, s1.block_cache_misses);
    assert_eq!(
        s2.sst_block_reads, s1.sst_block_reads,
        "no block from the file"
    );
    assert_eq!(s2.get_block_reads, 1);
    assert_eq!(s2.get_vlog_reads, 11);
    assert_eq!(s2.gets, 11);
    assert!((s2.device_reads_per_get - 12.0 / 11.0).abs() < 1e-9);
    assert!(s2.block_cache_hit_rate > 0.9 && s2.block_cache_hit_rate < 1.0);
    assert!(s2.block_cache_bytes > 0 && s2.block_cache_blocks == 1);
    // An iterator fills the cache too, and reads each block once.
    let n = db.iter().count();
    assert_eq!(n, 2000);
    let s3 = db.stats();
    assert!(s3.block_cache_blocks > 10, "{s3:?}");
    let again = db.iter().count();
    assert_eq!(again, 2000);
    let s4 = db.stats();
    assert_eq!(s4.sst_block_reads, s3.sst_block_reads);
    assert_eq!(s4.get_block_reads, 1, "iterators are not point reads");
}

#[test]
fn cache_size_zero_reads_every_block_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = || opts().block_cache_size(0);
    load(dir.path(), o(), 2000, 1);
    let db = Db::open(dir.path(), o()).unwrap();
    for _ in 0..5 {
        assert_eq!(&db.get(key(5)).unwrap().unwrap()[..], &value(5, 0)[..]);
    }
    let s = db.stats();
    assert_eq!(s.block_cache_capacity, 0);
    assert_eq!(s.block_cache_bytes, 0);
    assert_eq!((s.block_cache_hits, s.block_cache_misses), (0, 0));
    assert_eq!(s.block_cache_hit_rate, 0.0);
    assert_eq!(s.get_block_reads, 5);
    assert_eq!(s.sst_block_reads, 5);
    assert_eq!(s.get_vlog_reads, 5);
    assert_eq!(s.device_reads_per_get, 2.0);
}

#[test]
fn cache_stays_within_its_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 32 << 10;
    let o = || opts().block_cache_size(cap);
    load(dir.path(), o(), 20_000, 1);
    let db = Db::open(dir.path(), o()).unwrap();
    let sst_bytes = db.stats().sst_bytes;
    assert!(sst_bytes > 8 * cap, "the index must not fit: {sst_bytes}");
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..4000 {
        let i = rng.gen_range(0..20_000);
        assert_eq!(&db.get(key(i)).unwrap().unwrap()[..], &value(i, 0)[..]);
        if round % 500 == 0 {
            let s = db.stats();
            assert!(s.block_cache_bytes <= s.block_cache_capacity, "{s:?}");
        }
    }
    let s = db.stats();
    assert!(s.block_cache_capacity >= cap && s.block_cache_capacity < cap + 1024);
    assert!(s.block_cache_bytes <= s.block_cache_capacity, "{s:?}");
    assert!(s.block_cache_bytes > cap / 2, "{s:?}");
    // Random reads over an index 8 times the cache mostly miss.
    assert!(s.block_cache_misses > s.block_cache_hits, "{s:?}");
    assert_eq!(s.get_block_reads, s.block_cache_misses);
}

#[test]
fn cold_point_read_costs_one_block_and_one_value_read() {
    let dir = tempfile::tempdir().unwrap();
    // Even keys in the last level, one table.
    load(dir.path(), opts(), 4000, 2);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let s = db.stats();
        assert_eq!(s.levels.iter().map(|l| l.files).sum::<u64>(), 1, "{s:?}");
        let before = s.get_block_reads;
        assert_eq!(
            &db.get(key(1234)).unwrap().unwrap()[..],
            &value(1234, 0)[..]
        );
        let s = db.stats();
        assert_eq!(s.get_block_reads - before, 1);
        assert_eq!(s.get_vlog_reads, 1);
        assert_eq!(s.device_reads_per_get, 2.0);
        // An absent key inside the table's range: the bloom filter (or at
        // worst one block) answers; no vLog read.
        assert!(db.get(key(1235)).unwrap().is_none());
        let s2 = db.stats();
        assert!(s2.get_block_reads - s.get_block_reads <= 1);
        assert_eq!(s2.get_vlog_reads, 1);
        // Odd keys in a level-0 table over the same range.
        for i in (1..4000).step_by(2) {
            db.put(key(i), value(i, 1)).unwrap();
        }
        db.flush().unwrap();
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let s = db.stats();
    assert!(s.levels[0].files >= 1, "{s:?}");
    assert_eq!(s.levels.iter().map(|l| l.files).sum::<u64>(), 2, "{s:?}");
    // Cold reads of last-level keys: the level-0 table's filter rules it
    // out, the last level's data block is read once per distinct block.
    let n = 200u32;
    for j in 0..n {
        let i = 2 * (j * 9 % 2000);
        assert_eq!(&db.get(key(i)).unwrap().unwrap()[..], &value(i, 0)[..]);
    }
    let s = db.stats();
    assert_eq!(s.get_vlog_reads, u64::from(n));
    assert!(
        s.get_block_reads <= u64::from(n) + u64::from(n) / 20,
        "{s:?}"
    );
    assert!(s.bloom_skips >= u64::from(n) * 9 / 10, "{s:?}");
    assert!(s.device_reads_per_get <= 2.05, "{s:?}");
    // Warm: the same keys again cost only their vLog reads.
    let blocks = s.get_block_reads;
    for j in 0..n {
        let i = 2 * (j * 9 % 2000);
        assert!(db.get(key(i)).unwrap().is_some());
    }
    let s = db.stats();
    assert_eq!(s.get_block_reads, blocks);
    assert_eq!(s.get_vlog_reads, 2 * u64::from(n));
}

#[test]
fn a_deleted_tables_blocks_leave_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path(), opts(), 3000, 1);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.iter().count(), 3000);
    let full = db.stats();
    assert!(full.block_cache_blocks > 10, "{full:?}");
    // Rewrite half the keys and merge: the old table goes.
    for i in (0..3000).step_by(2) {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.compact().unwrap();
    let s = db.stats();
    assert_eq!(s.block_cache_blocks, 0, "{s:?}");
    assert_eq!(s.block_cache_bytes, 0, "{s:?}");
    // Compaction read around the cache: it neither filled it nor counted.
    assert_eq!(s.sst_block_reads, full.sst_block_reads);
    assert_eq!(&db.get(key(10)).unwrap().unwrap()[..], &value(10, 1)[..]);
    assert_eq!(&db.get(key(11)).unwrap().unwrap()[..], &value(11, 0)[..]);
    assert_eq!(db.stats().block_cache_blocks, 1);
}

#[test]
fn maintenance_walks_read_around_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path(), opts(), 3000, 1);
    let db = Db::open(dir.path(), opts()).unwrap();
    let usage = db.segment_usage().unwrap();
    assert!(usage.iter().map(|u| u.live_records).sum::<u64>() >= 3000);
    let s = db.stats();
    assert_eq!(s.block_cache_blocks, 0, "{s:?}");
    assert_eq!((s.block_cache_hits, s.block_cache_misses), (0, 0));
    assert_eq!(s.sst_block_reads, 0);
    // Verify walks the index (and checks every block) around the cache;
    // its cross-checks (a point read of each key, then a scan) are user
    // reads, through the cache, so each data block is read from the file
    // once.
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    let s = db.stats();
    assert_eq!(s.gets, 3000);
    assert_eq!(s.sst_block_reads, s.block_cache_blocks, "{s:?}");
    assert_eq!(s.get_block_reads, s.block_cache_misses, "{s:?}");
    let lookups = s.block_cache_hits + s.block_cache_misses;
    assert_eq!(lookups, 3000 + s.block_cache_blocks, "{s:?}");
}

/// One database under a random workload, checked against a model.
struct Checked {
    db: Db,
}

impl Checked {
    fn check(&self, model: &BTreeMap<Vec<u8>, Vec<u8>>, rng: &mut StdRng) {
        for _ in 0..50 {
            let i = rng.gen_range(0..600);
            let got = self.db.get(key(i)).unwrap();
            assert_eq!(got.as_deref(), model.get(&key(i)).map(|v| &v[..]));
        }
        let keys: Vec<Vec<u8>> = (0..40).map(|_| key(rng.gen_range(0..600))).collect();
        let got = self.db.multi_get(&keys).unwrap();
        for (k, g) in keys.iter().zip(got) {
            assert_eq!(g.as_deref(), model.get(k).map(|v| &v[..]));
        }
        let all: Vec<(Vec<u8>, Vec<u8>)> = self
            .db
            .iter()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(all, want);
    }
}

#[test]
fn same_answers_with_and_without_the_cache() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let base = || {
        opts()
            .memtable_size(16 << 10)
            .target_file_size(8 << 10)
            .base_level_size(32 << 10)
    };
    // A cache much smaller than the index: blocks are evicted and read again.
    let sizes = [0u64, 16 << 10];
    let open = |d: usize| Checked {
        db: Db::open(dirs[d].path(), base().block_cache_size(sizes[d])).unwrap(),
    };
    let mut dbs = [open(0), open(1)];
    let mut model = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for step in 0..30u32 {
        for _ in 0..300 {
            let i = rng.gen_range(0..600);
            let op = rng.gen_range(0..10);
            for d in &dbs {
                if op < 7 {
                    let mut v = value(i, step);
                    // Inline and vLog values both.
                    v.truncate(if op < 2 { 10 } else { 100 });
                    d.db.put(key(i), &v).unwrap();
                } else {
                    d.db.delete(key(i)).unwrap();
                }
            }
            if op < 7 {
                let mut v = value(i, step);
                v.truncate(if op < 2 { 10 } else { 100 });
                model.insert(key(i), v);
            } else {
                model.remove(&key(i));
            }
        }
        match step % 5 {
            0 => dbs.iter().for_each(|d| d.db.flush().unwrap()),
            1 => dbs.iter().for_each(|d| d.db.compact().unwrap()),
            2 => dbs.iter().for_each(|d| d.db.wait_for_background().unwrap()),
            3 if step % 10 == 3 => {
                // Reopen: a new cache, and the tables opened again.
                let [a, b] = dbs;
                a.db.close().unwrap();
                b.db.close().unwrap();
                dbs = [open(0), open(1)];
            }
            _ => {}
        }
        for d in &dbs {
            let mut r = StdRng::seed_from_u64(u64::from(step));
            d.check(&model, &mut r);
        }
        let s = dbs[1].db.stats();
        assert!(s.block_cache_bytes <= s.block_cache_capacity, "{s:?}");
    }
    let cached = dbs[1].db.stats();
    assert!(cached.block_cache_hits > 0, "{cached:?}");
    assert!(cached.compactions > 0, "{cached:?}");
    let uncached = dbs[0].db.stats();
    assert_eq!(uncached.block_cache_hits, 0);
}
