//! Locking and size limits.

use std::process::Command;
use wisckey::{Db, Error, Options, WriteBatch, WriteOptions};

const DIR_ENV: &str = "WISCKEY_LIMITS_DIR";
const EXIT_LOCKED: i32 = 41;
const EXIT_OPENED: i32 = 42;
const EXIT_OTHER: i32 = 43;

/// Run by `lock_across_processes` in a child process: tries to open the
/// directory and reports the outcome in its exit code.
#[test]
#[ignore = "child process of lock_across_processes"]
fn child_try_open() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    match Db::open(&dir, Options::default()) {
        Err(Error::Locked(_)) => std::process::exit(EXIT_LOCKED),
        Ok(db) => {
            drop(db);
            std::process::exit(EXIT_OPENED)
        }
        Err(e) => {
            eprintln!("child open failed: {e}");
            std::process::exit(EXIT_OTHER)
        }
    }
}

fn child_open(dir: &std::path::Path) -> i32 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_try_open", "--ignored", "--nocapture"])
        .env(DIR_ENV, dir)
        .output()
        .unwrap();
    out.status.code().unwrap_or_else(|| {
        panic!(
            "child killed: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn lock_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Locked(p)) => assert_eq!(p, dir.path()),
        other => panic!("second open: {other:?}"),
    }
    // A clone keeps it locked.
    let clone = db.clone();
    drop(db);
    assert!(matches!(
        Db::open(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
    // The failed opens did not disturb the open handle.
    assert_eq!(clone.get(b"k").unwrap().unwrap(), b"v");
    drop(clone);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"k").unwrap().unwrap(), b"v");
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"k").unwrap().unwrap(), b"v");
}

#[test]
fn lock_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    assert_eq!(child_open(dir.path()), EXIT_LOCKED);
    assert_eq!(child_open(dir.path()), EXIT_LOCKED);
    drop(db);
    assert_eq!(child_open(dir.path()), EXIT_OPENED);
    // The child's open and close left the data alone.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"k").unwrap().unwrap(), b"v");
}

/// Run by `lock_frees_after_kill_9` in a child process: opens the
/// directory, writes a key, says so on stdout and waits to be killed.
#[test]
#[ignore = "child process of lock_frees_after_kill_9"]
fn child_hold_open() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let db = Db::open(&dir, Options::default()).unwrap();
    db.put(b"held", b"by the child").unwrap();
    db.sync().unwrap();
    println!("OPEN");
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(120));
    drop(db);
}

/// A process killed with SIGKILL while it holds the directory leaves no
/// lock behind: another process is refused while it lives, and opens once
/// it is gone, with the killed process's synced write.
#[test]
fn lock_frees_after_kill_9() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_hold_open", "--ignored", "--nocapture"])
        .env(DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(holder.stdout.take().unwrap()).lines();
    let opened = lines.any(|l| l.is_ok_and(|l| l.contains("OPEN")));
    assert!(opened, "the holder never opened the database");
    assert_eq!(child_open(dir.path()), EXIT_LOCKED);
    assert!(matches!(
        Db::open(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let db = Db::open(dir.path(), Options::default()).expect("open after the holder was killed");
    assert_eq!(db.get(b"held").unwrap().unwrap(), b"by the child");
    drop(db);
    assert_eq!(child_open(dir.path()), EXIT_OPENED);
}

/// Dropping the last handle while the background worker is busy (a merge
/// of level 0 started by a flush) must release the directory by the time
/// `drop` returns.
#[test]
fn drop_during_background_work_releases_the_lock() {
    let opts = || {
        Options::default()
            .memtable_size(32 << 10)
            .segment_size(128 << 10)
            .l0_compaction_trigger(2)
            .target_file_size(16 << 10)
            .block_size(256)
    };
    let dir = tempfile::tempdir().unwrap();
    for round in 0..30u32 {
        let db = Db::open(dir.path(), opts()).unwrap();
        for f in 0..2u32 {
            for i in 0..200u32 {
                db.put(format!("k{i:04}"), format!("{round}-{f}-{i}"))
                    .unwrap();
            }
            db.flush().unwrap();
        }
        drop(db);
        let db = match Db::open(dir.path(), opts()) {
            Ok(db) => db,
            Err(e) => panic!("round {round}: reopen right after drop: {e}"),
        };
        assert_eq!(
            db.get(b"k0007").unwrap().unwrap(),
            format!("{round}-1-7").as_bytes()
        );
    }
}

#[test]
fn key_and_value_limits() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options::default().max_key_size(100).max_value_size(5000);
    let db = Db::open(dir.path(), opts()).unwrap();
    // At the limits: accepted.
    db.put(vec![b'k'; 100], vec![1u8; 5000]).unwrap();
    // Over: refused, and nothing written.
    let before = db.stats().writes;
    assert!(matches!(
        db.put(vec![b'x'; 101], b"v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.put(b"x", vec![0u8; 5001]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.delete(vec![b'x'; 101]),
        Err(Error::InvalidArgument(_))
    ));
    // A batch with one bad op is refused whole.
    let mut b = WriteBatch::new();
    b.put(b"good", b"1");
    b.put(b"bad", vec![0u8; 5001]);
    assert!(matches!(
        db.write(b, WriteOptions::default().sync(true)),
        Err(Error::InvalidArgument(_))
    ));
    let t = db.table("t", wisckey::TableOptions::ordered()).unwrap();
    assert!(matches!(
        t.put(vec![b'y'; 101], b"v"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(db.stats().writes, before, "a refused write was counted");
    assert!(db.get(b"good").unwrap().is_none());
    assert!(db.get(b"x").unwrap().is_none());
    assert!(db.get(vec![b'x'; 101]).unwrap().is_none());
    let all: Vec<_> = db.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, vec![b'k'; 100]);
    assert_eq!(t.iter().count(), 0);
    // Still writable, and nothing refused shows up after a reopen either.
    db.put(b"after", b"ok").unwrap();
    drop(t);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let keys: Vec<Vec<u8>> = db
        .iter()
        .map(|kv| kv.map(|(k, _)| k))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys, vec![b"after".to_vec(), vec![b'k'; 100]]);
    assert_eq!(db.get(vec![b'k'; 100]).unwrap().unwrap().len(), 5000);
}

/// Files are 0644 by default and 0600 with `Options::private_files(true)`
/// (before the umask, which may only take bits away).
#[test]
fn file_permissions_follow_the_option() {
    use std::os::unix::fs::PermissionsExt;
    for (private, want) in [(false, 0o644), (true, 0o600)] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default().private_files(private)).unwrap();
        db.put(b"k", vec![1u8; 5000]).unwrap();
        db.flush().unwrap();
        drop(db);
        let mut seen = 0;
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !want, 0, "{:?} has mode {mode:o}", e.file_name());
            if private {
                assert_eq!(mode & 0o077, 0, "{:?} is readable by others", e.file_name());
            }
            seen += 1;
        }
        assert!(seen >= 4, "expected vLog, SSTable, manifest, CURRENT, LOCK");
    }
}
