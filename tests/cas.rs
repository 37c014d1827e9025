//! Atomic read-modify-write: `compare_and_swap` and `fetch_update` are
//! linearizable against concurrent writers of the same key — counted by
//! hammering one key from several threads, on an ordered and an unordered
//! table, mixed with plain writes that share their group commits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wisckey::{Db, Options, Table, TableOptions, WriteBatch, WriteOptions};

const THREADS: u64 = 6;

fn count(v: Option<&[u8]>) -> u64 {
    v.map_or(0, |b| u64::from_le_bytes(b[..8].try_into().unwrap()))
}

/// A counter value padded past the separation threshold, so every check
/// reads the vLog.
fn counter(n: u64, pad: usize) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.resize(8 + pad, 0xab);
    v
}

fn hammer(db: &Db, t: &Table, per_thread: u64, pad: usize) {
    let noise = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for id in 0..THREADS {
            let t = t.clone();
            let db = db.clone();
            let noise = noise.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    t.fetch_update(b"counter", |old| Some(counter(count(old) + 1, pad)))
                        .unwrap();
                    // Plain writes of other keys (and of the counter's
                    // neighbour) in between, so groups mix the two kinds.
                    let mut b = WriteBatch::new();
                    b.put_in(&t, format!("n{id}-{i}"), vec![id as u8; 1500]);
                    b.put_in(&t, b"counter-neighbour", i.to_le_bytes());
                    db.write(b, WriteOptions::default().sync(i % 17 == 0))
                        .unwrap();
                    noise.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let got = count(t.get(b"counter").unwrap().as_deref());
    assert_eq!(got, THREADS * per_thread, "lost or doubled increments");
    assert_eq!(noise.load(Ordering::Relaxed), THREADS * per_thread);
}

#[test]
fn fetch_update_counts_exactly_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().memtable_size(256 << 10)).unwrap();
    hammer(&db, &db.default_table(), 300, 2000);
    let u = db.table("u", TableOptions::unordered()).unwrap();
    hammer(&db, &u, 200, 10);
    // Still so after a reopen.
    drop(u);
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(count(db.get(b"counter").unwrap().as_deref()), THREADS * 300);
    let u = db.table("u", TableOptions::unordered()).unwrap();
    assert_eq!(count(u.get(b"counter").unwrap().as_deref()), THREADS * 200);
}

#[test]
fn exactly_one_creator_wins_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let wins = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for id in 0..THREADS {
            let db = db.clone();
            let wins = wins.clone();
            s.spawn(move || {
                for k in 0..200u32 {
                    let key = format!("lock{k}");
                    let mine = [id as u8];
                    match db.compare_and_swap(&key, None, Some(&mine)).unwrap() {
                        Ok(()) => {
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            let cur = e.current.expect("a loser sees the winner's value");
                            assert_ne!(cur.as_ref(), &mine, "lost to itself");
                            assert_eq!(e.proposed.as_deref(), Some(&mine[..]));
                        }
                    }
                }
            });
        }
    });
    assert_eq!(wins.load(Ordering::Relaxed), 200);
}
