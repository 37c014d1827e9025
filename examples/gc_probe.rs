fn main() {
    env_logger::init();
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir_in("/work").unwrap();
    let db = wisckey::Db::open(dir.path(), wisckey::Options::default()).unwrap();
    let v = vec![7u8; 100];
    for i in 0..n {
        db.put(format!("key{:016}", (i * 7919) % n), &v).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_background().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let s = db.stats();
    println!(
        "segs {} bytes {} garbage {} passes {} sa {}",
        s.vlog_segments,
        s.vlog_bytes,
        s.vlog_garbage_bytes,
        s.gc_passes,
        s.vlog_space_amplification
    );
    for x in &s.segments {
        println!("{x:?}");
    }
    let r = db.gc(wisckey::GcOptions::default());
    println!("manual gc: {r:?}");
}
