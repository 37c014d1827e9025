use std::time::Instant;
fn io_write_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap();
    s.lines()
        .find(|l| l.starts_with("write_bytes:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir_in("/work").unwrap();
    let db = wisckey::Db::open(dir.path(), wisckey::Options::default()).unwrap();
    let mut v = vec![0u8; 4096];
    let mut x = 0x9e3779b97f4a7c15u64;
    let w0 = io_write_bytes();
    let t = Instant::now();
    let mut user = 0u64;
    for i in 0..n {
        let k = (i.wrapping_mul(0x9e3779b97f4a7c15) % n).to_be_bytes();
        for c in v.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        db.put(format!("key{:016}", u64::from_be_bytes(k)), &v)
            .unwrap();
        user += 19 + 4096;
    }
    db.flush().unwrap();
    let el = t.elapsed().as_secs_f64();
    let w = io_write_bytes() - w0;
    println!(
        "load {n}: {:.1} MB/s, WA(proc) {:.3}, stats WA {:.3}",
        user as f64 / el / 1e6,
        w as f64 / user as f64,
        db.stats().write_amplification
    );
    if std::env::args().nth(2).is_some() {
        return;
    }
    let t = Instant::now();
    let mut cnt = 0;
    for kv in db.iter() {
        kv.unwrap();
        cnt += 1;
    }
    println!("scan {cnt} in {:.2}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    for i in 0..100_000u64 {
        let k = (i * 7919) % n;
        db.get(format!("key{:016}", k)).unwrap();
    }
    println!("100k gets {:.2}s", t.elapsed().as_secs_f64());
    println!("{:?}", db.stats());
}
