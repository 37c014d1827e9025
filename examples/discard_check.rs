//! Loads N keys with 4 KiB values, overwrites each key once in random order,
//! and compares the discard statistics with the bytes of the old values.
use std::time::Instant;
use wisckey::{Db, Options};

fn main() -> wisckey::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap_or(1_000_000))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir_in(std::env::temp_dir())
        .map_err(|e| wisckey::Error::InvalidArgument(e.to_string()))?;
    let db = Db::open(dir.path(), Options::default().background_gc(false))?;
    let mut v = vec![0u8; 4096];
    let t = Instant::now();
    for round in 0..2u64 {
        for i in 0..n {
            let k = (i * 0x9e37_79b9) % n; // a permutation when gcd = 1
            v[..8].copy_from_slice(&(k ^ round).to_le_bytes());
            db.put(format!("key{k:016}"), &v)?;
        }
    }
    db.flush()?;
    let mid = db.stats().vlog_garbage_bytes;
    db.compact()?;
    let s = db.stats();
    let record = 21 + 19 + 4096 + 4;
    println!(
        "{n} keys x 2 rounds in {:.1}s; garbage before full compaction {mid}, after {}; expected {} ({} x {record}); difference {}",
        t.elapsed().as_secs_f64(),
        s.vlog_garbage_bytes,
        n * record,
        n,
        s.vlog_garbage_bytes as i64 - (n * record) as i64
    );
    Ok(())
}
