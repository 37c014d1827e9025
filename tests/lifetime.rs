//! The counters kept across opens (`Stats::lifetime`) and what a database
//! was created with (`Stats::created`), on the real file system.

use std::time::{SystemTime, UNIX_EPOCH};
use wisckey::{Db, GcOptions, Options};

fn opts() -> Options {
    Options::default()
        .segment_size(256 << 10)
        .memtable_size(64 << 10)
        .value_threshold(512)
        .background_gc(false)
}

fn load(db: &Db, round: u8, n: u32) {
    for i in 0..n {
        db.put(format!("key{i:05}"), vec![round; 2000]).unwrap();
    }
}

/// Seconds since the Unix epoch, now.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn counters_add_up_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_secs();

    let db = Db::open(dir.path(), opts()).unwrap();
    load(&db, 1, 400);
    db.flush().unwrap();
    let first = db.stats();
    assert_eq!(first.lifetime.user_bytes_written, first.user_bytes_written);
    assert_eq!(first.lifetime.opens, 1);
    db.close().unwrap();

    // A read-only open counts nothing of its own and shows the sums.
    let ro = Db::open_read_only(dir.path(), Options::default()).unwrap();
    let st = ro.stats();
    assert_eq!(
        st.user_bytes_written, 0,
        "since-open counters start at zero"
    );
    assert_eq!(st.lifetime.user_bytes_written, first.user_bytes_written);
    assert_eq!(st.lifetime.vlog_bytes_written, first.vlog_bytes_written);
    assert_eq!(st.lifetime.flushes, first.flushes);
    assert_eq!(st.lifetime.opens, 1);
    assert!(st.lifetime.write_amplification >= 1.0);
    let created = st.created.expect("the creation is recorded");
    assert_eq!(created.segment_size, 256 << 10);
    assert_eq!(created.value_threshold, 512);
    assert_eq!(created.memtable_size, 64 << 10);
    assert!(
        created.unix_secs >= now && created.unix_secs <= now + 600,
        "created at {}, the test started at {now}",
        created.unix_secs
    );
    drop(ro);

    // A second writable open (with other options: the creation stays).
    let db = Db::open(dir.path(), opts().segment_size(1 << 20)).unwrap();
    // Half the keys again: the first segments keep live records to move.
    load(&db, 2, 200);
    db.compact().unwrap();
    let r = db.gc(GcOptions::default().all_sealed(true)).unwrap();
    assert!(r.bytes_freed > 0 && r.bytes_moved > 0, "{r:?}");
    let second = db.stats();
    assert_eq!(
        second.lifetime.user_bytes_written,
        first.user_bytes_written + second.user_bytes_written
    );
    assert_eq!(second.lifetime.opens, 2);
    assert_eq!(second.created, Some(created));
    db.close().unwrap();

    let ro = Db::open_read_only(dir.path(), Options::default()).unwrap();
    let st = ro.stats();
    assert_eq!(
        st.lifetime.user_bytes_written,
        first.user_bytes_written + second.user_bytes_written
    );
    assert_eq!(st.lifetime.gc_passes, 1);
    assert_eq!(st.lifetime.gc_bytes_freed, r.bytes_freed);
    assert_eq!(st.lifetime.gc_bytes_written, second.gc_bytes_written);
    assert!(st.lifetime.gc_write_amplification > 1.0);
    assert_eq!(st.lifetime.opens, 2);
}

#[test]
fn a_drop_records_the_counters_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    load(&db, 1, 50);
    let written = db.stats().user_bytes_written;
    drop(db);
    let ro = Db::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(ro.stats().lifetime.user_bytes_written, written);
}

/// Every segment's age is recorded: user segments hold consecutive
/// sequence ranges (the head's end not known until it is sealed), GC
/// segments the range of what they took, and all of it survives a reopen.
#[test]
fn segments_know_their_age() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_secs();
    let db = Db::open(dir.path(), opts()).unwrap();
    load(&db, 1, 400);
    load(&db, 2, 200);
    db.compact().unwrap();
    // User segments: consecutive ranges, only the head's end unknown.
    let user = db.stats().segments;
    assert!(user.len() >= 3, "{user:?}");
    assert_eq!(user[0].min_seq, 1);
    for w in user.windows(2) {
        assert_eq!(w[0].max_seq + 1, w[1].min_seq, "{:?}", (&w[0], &w[1]));
    }
    assert_eq!(user.last().unwrap().max_seq, 0, "the head's end is known?");
    db.gc(GcOptions::default().all_sealed(true)).unwrap();
    db.close().unwrap();
    let db = Db::open_read_only(dir.path(), Options::default()).unwrap();
    let st = db.stats();
    let last = st.last_sequence;
    let gc: Vec<_> = st.segments.iter().filter(|s| s.gc).collect();
    assert!(!gc.is_empty(), "{:?}", st.segments);
    for s in &st.segments {
        assert!(
            s.created_unix_secs >= now && s.created_unix_secs <= now + 600,
            "segment {} created at {}",
            s.number,
            s.created_unix_secs
        );
        assert!(s.min_seq >= 1 && s.min_seq <= last, "{s:?}");
    }
    for s in &gc {
        assert!(s.min_seq <= s.max_seq && s.max_seq <= last, "{s:?}");
    }
}
