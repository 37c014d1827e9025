//! `vlog-tools bench`: the load / read / scan benchmark.
//!
//! Phases, each timed with `Instant`:
//! 1. load: N puts (optionally in batches, from several threads), then
//!    `flush` and `sync`; `/proc/self/io` is read before and after.
//! 2. space: the bytes of every file in the database directory.
//! 3. read: R random `get`s, each value compared with the expected bytes.
//! 4. scan: one forward `iter()` over everything; must yield exactly N entries.

use crate::procio::ProcIo;
use anyhow::{bail, ensure, Context, Result};
use clap::ValueEnum;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wisckey::{Db, Options, Stats, WriteBatch, WriteOptions};

pub const LONG_ABOUT: &str = "\
Load keys into a fresh database in a temporary directory, then measure.

Keys are `key` followed by the index as 16 decimal digits (19 bytes); values are
pseudo-random bytes (not compressible) whose first 8 bytes are the key's index
(little-endian), so every read can be checked. After the load the database is
flushed (memtable -> SSTable), compactions are left to settle, and the vLog is
synced.

Reported:
  load      ops/s and MB/s of user bytes (key + value; MB = 10^6 bytes), for
            the puts alone and for puts + flush + settle + sync
  write amp /proc/self/io (write_bytes - cancelled_write_bytes) over user bytes,
            wchar over user bytes, and the engine's stats().write_amplification,
            over puts + flush + settle + sync; again over the whole run, which adds
            background compaction still running when flush() returned.
            Linux charges write_bytes when a page is dirtied, so the figure is
            complete right after the writes, in whole pages.
  space amp bytes of all files in the directory over the live user bytes
  reads     random gets (uniform, with repetition), verified: ops/s, MB/s
  scan      one forward scan of every key: entries (must equal --keys), MB/s

Reads are served mostly from the page cache (the data was just written);
the figures are not cold-cache figures.";

/// The order in which keys are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Ascending key order.
    Seq,
    /// A shuffle of all keys (seeded by --seed).
    Random,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Number of distinct keys to load.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,

    /// Bytes per value.
    #[arg(long, default_value_t = 4096)]
    value_size: usize,

    /// Load order: `seq` (ascending keys) or `random` (a shuffle of all keys).
    #[arg(long, value_enum, default_value_t = Order::Random)]
    order: Order,

    /// Puts per WriteBatch; 1 uses plain `db.put` (or a batch of one with --sync).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,

    /// Writer threads; the load order is cut into this many contiguous parts.
    /// The read phase uses the same number of threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: u64,

    /// Write with WriteOptions::sync(true): each write is durable against power
    /// loss on return (concurrent writers share one fdatasync).
    #[arg(long)]
    sync: bool,

    /// Random gets in the read phase [default: min(keys, 200000)].
    #[arg(long)]
    reads: Option<u64>,

    /// Parent of the temporary database directory [default: the system temp dir].
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Keep the database directory instead of deleting it at the end (its path
    /// is printed).
    #[arg(long)]
    keep: bool,

    /// Print one JSON object (configuration, results, engine Stats) on stdout
    /// instead of the table. Progress goes to stderr either way.
    #[arg(long)]
    json: bool,

    /// Seed of the shuffle, the read keys and the value bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Options::value_threshold: values of at least this many bytes go to the
    /// vLog, smaller ones stay inline in the LSM-tree [default: the engine's, 1024].
    #[arg(long)]
    value_threshold: Option<usize>,
}

/// Bytes of the value pool that values are cut from.
const POOL_LEN: usize = 8 << 20;
const MB: f64 = 1e6;

fn key_of(i: u64, buf: &mut Vec<u8>) {
    use std::io::Write;
    buf.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "key{i:016}");
}

const KEY_LEN: usize = 19;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Pseudo-random value bytes: value `i` is its index (8 bytes LE) followed by
/// a slice of a random pool at an offset that depends on `i`.
struct Values {
    pool: Vec<u8>,
    size: usize,
    seed: u64,
}

impl Order {
    fn name(self) -> &'static str {
        match self {
            Order::Seq => "seq",
            Order::Random => "random",
        }
    }
}

impl Values {
    fn new(size: usize, seed: u64) -> Values {
        let len = POOL_LEN + size;
        let mut pool = Vec::with_capacity(len + 8);
        // xorshift64*: fast, and its output does not compress.
        let mut x = splitmix64(seed) | 1;
        while pool.len() < len {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            pool.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        pool.truncate(len);
        Values { pool, size, seed }
    }

    /// Writes value `i` into `buf`.
    fn fill(&self, i: u64, buf: &mut Vec<u8>) {
        buf.clear();
        let head = self.size.min(8);
        buf.extend_from_slice(&i.to_le_bytes()[..head]);
        if self.size > 8 {
            let off = (splitmix64(i ^ self.seed) % (POOL_LEN as u64)) as usize;
            buf.extend_from_slice(&self.pool[off..off + self.size - 8]);
        }
    }

    /// The cheap check used by the scan: length and leading index bytes.
    fn looks_like(&self, i: u64, v: &[u8]) -> bool {
        let head = self.size.min(8);
        v.len() == self.size && v[..head] == i.to_le_bytes()[..head]
    }
}

#[derive(Debug, Serialize)]
struct Config {
    keys: u64,
    key_size: usize,
    value_size: usize,
    order: Order,
    batch: u64,
    threads: u64,
    sync: bool,
    reads: u64,
    seed: u64,
    value_threshold: Option<usize>,
    db_dir: PathBuf,
    kept: bool,
}

#[derive(Debug, Serialize)]
struct LoadReport {
    user_bytes: u64,
    /// The puts alone.
    put_secs: f64,
    put_ops_per_sec: f64,
    put_mb_per_sec: f64,
    /// flush() + wait_for_background() + sync() after the puts.
    flush_sync_secs: f64,
    /// Puts + flush + settle + sync.
    total_secs: f64,
    total_mb_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct WriteAmpReport {
    /// `/proc/self/io` over the load (puts + flush + settle + sync); `None` when unreadable.
    proc_io: Option<ProcIo>,
    /// (write_bytes - cancelled_write_bytes) / user bytes.
    device_write_amplification: Option<f64>,
    /// wchar / user bytes: what went through write system calls.
    wchar_amplification: Option<f64>,
    /// The engine's own count: stats().write_amplification after the load.
    engine_write_amplification: f64,
    /// `/proc/self/io` over the whole run, read after closing the database:
    /// also counts background compaction that finished after the load (the
    /// read and scan phases write nothing themselves).
    proc_io_whole_run: Option<ProcIo>,
    /// (write_bytes - cancelled_write_bytes) / user bytes over the whole run.
    device_write_amplification_whole_run: Option<f64>,
    /// The engine's stats().write_amplification at the end of the run.
    engine_write_amplification_whole_run: f64,
}

#[derive(Debug, Serialize)]
struct SpaceReport {
    files: u64,
    /// Sum of the files' lengths.
    db_bytes: u64,
    /// Sum of the blocks allocated to them.
    db_allocated_bytes: u64,
    /// Key + value bytes of the live data (every key is distinct).
    live_user_bytes: u64,
    /// db_bytes / live_user_bytes.
    space_amplification: f64,
}

#[derive(Debug, Serialize)]
struct ReadReport {
    gets: u64,
    bytes: u64,
    secs: f64,
    ops_per_sec: f64,
    mb_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct ScanReport {
    entries: u64,
    bytes: u64,
    secs: f64,
    entries_per_sec: f64,
    mb_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    config: Config,
    load: LoadReport,
    write_amplification: WriteAmpReport,
    space: SpaceReport,
    read: ReadReport,
    scan: ScanReport,
    /// The engine's Stats at the end of the run.
    stats: Stats,
}

fn per_sec(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        0.0
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Cuts `0..n` into `parts` contiguous ranges.
fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let chunk = n.div_ceil(parts.max(1)).max(1);
    (0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect()
}

/// Progress goes to stderr, so `--json` output on stdout stays one object.
fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(args.keys > 0, "--keys must be at least 1");
    let n = usize::try_from(args.keys).context("--keys does not fit in memory")?;
    let reads = args.reads.unwrap_or(args.keys.min(200_000));
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("wisckey-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let db_dir = tmp.path().to_path_buf();

    // Everything the timed regions need, prepared outside them.
    let values = Values::new(args.value_size, args.seed);
    let mut order: Vec<u64> = Vec::with_capacity(n);
    order.extend(0..args.keys);
    if args.order == Order::Random {
        order.shuffle(&mut StdRng::seed_from_u64(args.seed));
    }
    let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(1));
    let read_keys: Vec<u64> = (0..reads).map(|_| rng.gen_range(0..args.keys)).collect();

    let mut opts = Options::default();
    if let Some(t) = args.value_threshold {
        opts = opts.value_threshold(t);
    }
    let db = Db::open(&db_dir, opts).with_context(|| format!("opening {}", db_dir.display()))?;
    let user_bytes = args.keys * (KEY_LEN + args.value_size) as u64;

    // 1. Load.
    progress(&format!(
        "loading {} keys x {} B ({}, batch {}, {} thread(s){}) into {}",
        args.keys,
        args.value_size,
        args.order.name(),
        args.batch,
        args.threads,
        if args.sync { ", sync" } else { "" },
        db_dir.display()
    ));
    let io_before = ProcIo::read();
    let start = Instant::now();
    load(&db, &order, &values, args)?;
    let put_secs = start.elapsed().as_secs_f64();
    let flush_start = Instant::now();
    db.flush().context("flush after the load")?;
    db.wait_for_background()
        .context("waiting for compactions to settle after the load")?;
    db.sync().context("sync after the load")?;
    let flush_sync_secs = flush_start.elapsed().as_secs_f64();
    let total_secs = start.elapsed().as_secs_f64();
    let io_load = ProcIo::read()
        .zip(io_before)
        .map(|(after, before)| after.since(&before));
    let stats_after_load = db.stats();
    drop(order);

    let load_report = LoadReport {
        user_bytes,
        put_secs,
        put_ops_per_sec: per_sec(args.keys as f64, put_secs),
        put_mb_per_sec: per_sec(user_bytes as f64 / MB, put_secs),
        flush_sync_secs,
        total_secs,
        total_mb_per_sec: per_sec(user_bytes as f64 / MB, total_secs),
    };
    let mut wa = WriteAmpReport {
        proc_io: io_load,
        device_write_amplification: io_load.map(|io| ratio(io.device_write_bytes(), user_bytes)),
        wchar_amplification: io_load.map(|io| ratio(io.wchar, user_bytes)),
        engine_write_amplification: stats_after_load.write_amplification,
        proc_io_whole_run: None,
        device_write_amplification_whole_run: None,
        engine_write_amplification_whole_run: 0.0,
    };

    // 2. Space.
    let (files, db_bytes, db_allocated_bytes) = dir_size(&db_dir)?;
    let space = SpaceReport {
        files,
        db_bytes,
        db_allocated_bytes,
        live_user_bytes: user_bytes,
        space_amplification: ratio(db_bytes, user_bytes),
    };

    // 3. Random reads.
    progress(&format!("{reads} random gets"));
    let start = Instant::now();
    let read_bytes = read_phase(&db, &read_keys, &values, args.threads as usize)?;
    let secs = start.elapsed().as_secs_f64();
    let read = ReadReport {
        gets: reads,
        bytes: read_bytes,
        secs,
        ops_per_sec: per_sec(reads as f64, secs),
        mb_per_sec: per_sec(read_bytes as f64 / MB, secs),
    };

    // 4. Full scan.
    progress("full forward scan");
    let start = Instant::now();
    let (entries, bytes) = scan_phase(&db, &values)?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        entries == args.keys,
        "the scan returned {entries} entries, expected {}",
        args.keys
    );
    let scan = ScanReport {
        entries,
        bytes,
        secs,
        entries_per_sec: per_sec(entries as f64, secs),
        mb_per_sec: per_sec(bytes as f64 / MB, secs),
    };

    let stats = db.stats();
    db.close().context("closing the database")?;
    let io_run = ProcIo::read()
        .zip(io_before)
        .map(|(after, before)| after.since(&before));
    wa.proc_io_whole_run = io_run;
    wa.device_write_amplification_whole_run =
        io_run.map(|io| ratio(io.device_write_bytes(), user_bytes));
    wa.engine_write_amplification_whole_run = stats.write_amplification;
    let kept = args.keep;
    let db_dir = if kept { tmp.keep() } else { db_dir };
    let report = Report {
        config: Config {
            keys: args.keys,
            key_size: KEY_LEN,
            value_size: args.value_size,
            order: args.order,
            batch: args.batch,
            threads: args.threads,
            sync: args.sync,
            reads,
            seed: args.seed,
            value_threshold: args.value_threshold,
            db_dir,
            kept,
        },
        load: load_report,
        write_amplification: wa,
        space,
        read,
        scan,
        stats,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn load(db: &Db, order: &[u64], values: &Values, args: &BenchArgs) -> Result<()> {
    let parts = split(order.len(), args.threads as usize);
    let batch = args.batch as usize;
    let wopts = WriteOptions::default().sync(args.sync);
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|range| {
                let part = &order[range];
                s.spawn(move || -> Result<()> {
                    let mut key = Vec::with_capacity(KEY_LEN);
                    let mut value = Vec::with_capacity(values.size);
                    if batch == 1 && !args.sync {
                        for &i in part {
                            key_of(i, &mut key);
                            values.fill(i, &mut value);
                            db.put(&key, &value)?;
                        }
                        return Ok(());
                    }
                    for chunk in part.chunks(batch) {
                        let mut wb = WriteBatch::new();
                        for &i in chunk {
                            key_of(i, &mut key);
                            values.fill(i, &mut value);
                            wb.put(&key, &value);
                        }
                        db.write(wb, wopts)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(r) => r?,
                Err(_) => bail!("a writer thread panicked"),
            }
        }
        Ok(())
    })
}

fn read_phase(db: &Db, keys: &[u64], values: &Values, threads: usize) -> Result<u64> {
    let parts = split(keys.len(), threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|range| {
                let part = &keys[range];
                s.spawn(move || -> Result<u64> {
                    let mut key = Vec::with_capacity(KEY_LEN);
                    let mut expected = Vec::with_capacity(values.size);
                    let mut bytes = 0u64;
                    for &i in part {
                        key_of(i, &mut key);
                        let Some(v) = db.get(&key)? else {
                            bail!("key {i} is missing");
                        };
                        values.fill(i, &mut expected);
                        ensure!(*v == *expected, "key {i}: wrong value ({} bytes)", v.len());
                        bytes += (key.len() + v.len()) as u64;
                    }
                    Ok(bytes)
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            match h.join() {
                Ok(r) => total += r?,
                Err(_) => bail!("a reader thread panicked"),
            }
        }
        Ok(total)
    })
}

fn scan_phase(db: &Db, values: &Values) -> Result<(u64, u64)> {
    let mut entries = 0u64;
    let mut bytes = 0u64;
    let mut prev: Option<Vec<u8>> = None;
    for kv in db.iter() {
        let (k, v) = kv?;
        let i: u64 = std::str::from_utf8(&k)
            .ok()
            .and_then(|s| s.strip_prefix("key"))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("the scan returned an unknown key {k:?}"))?;
        ensure!(values.looks_like(i, &v), "key {i}: wrong value in the scan");
        if let Some(p) = &prev {
            ensure!(
                p.as_slice() < k.as_slice(),
                "the scan is not in ascending key order at key {i}"
            );
        }
        entries += 1;
        bytes += (k.len() + v.len()) as u64;
        prev = Some(k);
    }
    Ok((entries, bytes))
}

/// Files, total length and allocated bytes under `dir`.
fn dir_size(dir: &Path) -> Result<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut files, mut len, mut alloc) = (0, 0, 0);
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (f, l, a) = dir_size(&entry.path())?;
            files += f;
            len += l;
            alloc += a;
        } else {
            files += 1;
            len += meta.len();
            alloc += meta.blocks() * 512;
        }
    }
    Ok((files, len, alloc))
}

fn print_table(r: &Report) {
    let c = &r.config;
    println!("wisckey bench");
    println!(
        "  config     {} keys x ({} B key + {} B value), order {}, batch {}, threads {}, sync {}",
        c.keys,
        c.key_size,
        c.value_size,
        c.order.name(),
        c.batch,
        c.threads,
        c.sync
    );
    println!(
        "  db dir     {}{}",
        c.db_dir.display(),
        if c.kept { " (kept)" } else { " (removed)" }
    );
    let l = &r.load;
    println!("phase                     secs       ops/s        MB/s");
    println!(
        "load (puts)         {:>10.3} {:>11.0} {:>11.1}",
        l.put_secs, l.put_ops_per_sec, l.put_mb_per_sec
    );
    println!(
        "load+flush+settle   {:>10.3} {:>11.0} {:>11.1}",
        l.total_secs,
        per_sec(c.keys as f64, l.total_secs),
        l.total_mb_per_sec
    );
    println!(
        "random gets         {:>10.3} {:>11.0} {:>11.1}",
        r.read.secs, r.read.ops_per_sec, r.read.mb_per_sec
    );
    println!(
        "full scan           {:>10.3} {:>11.0} {:>11.1}",
        r.scan.secs, r.scan.entries_per_sec, r.scan.mb_per_sec
    );
    println!();
    println!("user bytes loaded         {}", l.user_bytes);
    let w = &r.write_amplification;
    match (
        &w.proc_io,
        w.device_write_amplification,
        w.wchar_amplification,
    ) {
        (Some(io), Some(dev), Some(wchar)) => {
            println!(
                "write amp (device)        {dev:.3}  (write_bytes {} - cancelled {})",
                io.write_bytes, io.cancelled_write_bytes
            );
            println!("write amp (wchar)         {wchar:.3}  (wchar {})", io.wchar);
        }
        _ => println!("write amp (device)        n/a (/proc/self/io unreadable)"),
    }
    println!(
        "write amp (engine stats)  {:.3}",
        w.engine_write_amplification
    );
    if let Some(dev) = w.device_write_amplification_whole_run {
        println!(
            "  whole run, incl. later background compaction: device {dev:.3}, engine {:.3}",
            w.engine_write_amplification_whole_run
        );
    }
    let s = &r.space;
    println!(
        "space amp                 {:.3}  ({} files, {} bytes, {} allocated)",
        s.space_amplification, s.files, s.db_bytes, s.db_allocated_bytes
    );
    println!(
        "scan                      {} entries, {} bytes",
        r.scan.entries, r.scan.bytes
    );
    let st = &r.stats;
    println!(
        "engine                    {} vLog segments ({} B), {} SSTable bytes in {} level(s), {} flushes, {} compactions, {} group commits, {} syncs, {} write stalls",
        st.vlog_segments,
        st.vlog_bytes,
        st.sst_bytes,
        st.levels.len(),
        st.flushes,
        st.compactions,
        st.group_commits,
        st.syncs,
        st.write_stalls
    );
    println!(
        "index/vLog reads          {} tables probed for {} gets; {} vLog reads (gets + scan)",
        st.tables_probed, st.gets, st.vlog_reads
    );
}
