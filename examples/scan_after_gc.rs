//! Cold full scans of a randomly loaded table: before GC, after a GC pass
//! over every sealed segment (survivors rewritten in key order), and after a
//! full compaction that merges GC's table of new pointers into the tree.
//! Needs root (it drops the page cache). Usage: scan_after_gc [keys]
use std::time::Instant;
use wisckey::{Db, GcOptions, Options};

fn drop_caches() {
    let _ = std::process::Command::new("sync").status();
    if std::fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
        eprintln!("warning: could not drop the page cache (not root?)");
    }
}

fn cold_scan(db: &Db, what: &str) -> wisckey::Result<()> {
    drop_caches();
    let t = Instant::now();
    let mut bytes = 0u64;
    for kv in db.iter() {
        let (k, v) = kv?;
        bytes += (k.len() + v.len()) as u64;
    }
    let s = t.elapsed().as_secs_f64();
    println!("{what:<40} {:>8.1} MB/s ({s:.2} s)", bytes as f64 / s / 1e6);
    Ok(())
}

fn main() -> wisckey::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300_000);
    let dir = tempfile::tempdir_in(std::env::temp_dir())
        .map_err(|e| wisckey::Error::InvalidArgument(e.to_string()))?;
    let db = Db::open(dir.path(), Options::default().background_gc(false))?;
    let mut v = vec![0u8; 4096];
    for i in 0..n {
        let k = (i * 0x9e37_79b9) % n;
        v[..8].copy_from_slice(&k.to_le_bytes());
        db.put(format!("key{k:016}"), &v)?;
    }
    db.flush()?;
    db.wait_for_background()?;
    println!("backend {}", db.stats().io_backend);
    cold_scan(&db, "cold scan, arrival order")?;
    let r = db.gc(GcOptions::default().all_sealed(true))?;
    println!(
        "GC pass: {} segments, {} bytes moved",
        r.segments_read, r.bytes_moved
    );
    cold_scan(&db, "cold scan after GC (key order)")?;
    db.compact()?;
    cold_scan(&db, "cold scan after GC and full compaction")?;
    Ok(())
}
