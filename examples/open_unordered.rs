//! How long an unordered table takes to open: from its hint files, and by
//! scanning its segments (hints moved aside), warm and with the page cache
//! dropped (needs root), and the memory its keydir takes.
//!
//! Usage: open_unordered DIR [keys] [opens]
//! Makes DIR (16-byte keys, 100-byte values, one unordered table `u`) when
//! it holds no database yet; then opens it read-only `opens` times (default
//! 3) in each mode and prints the times, the resident memory each open
//! added (per key, and per key beyond its 16 bytes) and the keydir's memory
//! by `Stats::keydir_bytes`. The first open of a run is the one whose
//! resident memory counts: later ones reuse memory the process kept from
//! the earlier ones. Last, the best time of each mode and how many times
//! faster an open from hints is than one by scanning, both cold.

use std::path::Path;
use std::time::Instant;
use wisckey::{Db, Options, TableOptions};

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn hints(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hint"))
        .collect();
    v.sort();
    v
}

fn main() -> wisckey::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/tmp/open-unordered"),
    );
    let keys: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000_000);
    let opens: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    if !dir.join("CURRENT").exists() {
        let start = Instant::now();
        let db = Db::open(dir, Options::default())?;
        let t = db.table("u", TableOptions::unordered())?;
        let mut value = [0u8; 100];
        for i in 0..keys {
            value[..8].copy_from_slice(&i.to_le_bytes());
            t.put(format!("{i:016}"), value)?;
        }
        drop(t);
        db.close()?;
        println!("made {keys} keys in {:.1} s", start.elapsed().as_secs_f64());
    }
    let aside = dir.with_extension("hints-aside");
    // (mode, cold) -> the best time.
    let mut best: Vec<((&str, bool), f64)> = Vec::new();
    for mode in ["hints", "scan"] {
        if mode == "scan" {
            std::fs::create_dir_all(&aside).unwrap();
            for h in hints(dir) {
                std::fs::rename(&h, aside.join(h.file_name().unwrap())).unwrap();
            }
        }
        for cold in [false, true] {
            for _ in 0..opens {
                if cold && !drop_caches() {
                    println!("{mode}: cannot drop the page cache (not root?)");
                    break;
                }
                let before = rss();
                let start = Instant::now();
                let db = Db::open_read_only(dir, Options::default())?;
                let secs = start.elapsed().as_secs_f64();
                let st = db.stats();
                let grew = rss().saturating_sub(before);
                let n = st.unordered_keys.max(1) as f64;
                println!(
                    "{mode:<5} {:<4} {secs:>7.3} s  {} keys, {} hint files, RSS +{:.1} MB \
                     ({:.1} B/key, {:.1} beyond the key), keydir_bytes {:.1} MB ({:.1} B/key)",
                    if cold { "cold" } else { "warm" },
                    st.unordered_keys,
                    hints(dir).len(),
                    grew as f64 / 1e6,
                    grew as f64 / n,
                    grew as f64 / n - 16.0,
                    st.keydir_bytes as f64 / 1e6,
                    st.keydir_bytes as f64 / n,
                );
                match best.iter_mut().find(|(k, _)| *k == (mode, cold)) {
                    Some((_, b)) => *b = b.min(secs),
                    None => best.push(((mode, cold), secs)),
                }
                db.close()?;
            }
        }
        if mode == "scan" {
            for h in hints(&aside) {
                std::fs::rename(&h, dir.join(h.file_name().unwrap())).unwrap();
            }
        }
    }
    for ((mode, cold), secs) in &best {
        println!(
            "best  {mode:<5} {:<4} {secs:>7.3} s",
            if *cold { "cold" } else { "warm" }
        );
    }
    let of = |m: &str, c: bool| best.iter().find(|(k, _)| *k == (m, c)).map(|(_, s)| *s);
    if let (Some(h), Some(s)) = (of("hints", true), of("scan", true)) {
        println!("cold: from hints {:.2}x faster than by scanning", s / h);
    }
    Ok(())
}
