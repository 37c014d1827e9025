//! The I/O backends through the front door: a database works the same on
//! io_uring and on plain pread/pwrite, `stats().io_backend` names the one in
//! use, and `IoBackend::Auto` falls back when io_uring is refused.
//!
//! The refusal is simulated with `WISCKEY_IO_URING_DISABLE=1` in a child
//! process (this test binary re-run on the `child_open` test), so the
//! environment of the other tests is never touched.

use std::process::Command;
use wisckey::{Db, Error, IoBackend, Options, WriteBatch, WriteOptions};

fn small_opts(backend: IoBackend) -> Options {
    Options::default()
        .io_backend(backend)
        .memtable_size(64 << 10)
        .segment_size(256 << 10)
        .l0_compaction_trigger(3)
        .target_file_size(32 << 10)
        .block_size(512)
}

fn value(i: u32) -> Vec<u8> {
    if i.is_multiple_of(3) {
        vec![i as u8; 2000 + (i as usize % 500)]
    } else {
        format!("v{i}").into_bytes()
    }
}

/// Writes, reads, scans, reopens; returns the backend name it saw.
fn exercise(backend: IoBackend) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts(backend)).unwrap();
    let name = db.stats().io_backend;
    for i in 0..1500u32 {
        db.put(format!("k{i:05}"), value(i)).unwrap();
    }
    let mut batch = WriteBatch::new();
    for i in (0..1500u32).step_by(5) {
        batch.delete(format!("k{i:05}"));
    }
    db.write(batch, WriteOptions::default().sync(true)).unwrap();
    db.flush().unwrap();
    let check = |db: &Db| {
        for i in (0..1500u32).step_by(7) {
            let got = db.get(format!("k{i:05}")).unwrap();
            if i.is_multiple_of(5) {
                assert!(got.is_none(), "k{i} deleted");
            } else {
                assert_eq!(got.unwrap().into_vec(), value(i), "k{i}");
            }
        }
        let keys: Vec<String> = (0..1500u32)
            .filter(|i| !i.is_multiple_of(5))
            .map(|i| format!("k{i:05}"))
            .collect();
        let got = db.multi_get(&keys).unwrap();
        assert!(got.iter().all(|v| v.is_some()));
        let scanned: Vec<(Vec<u8>, Vec<u8>)> = db
            .range(b"k00100".to_vec()..b"k00200".to_vec())
            .map(|kv| kv.map(|(k, v)| (k, v.into_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> = (100..200u32)
            .filter(|i| !i.is_multiple_of(5))
            .map(|i| (format!("k{i:05}").into_bytes(), value(i)))
            .collect();
        assert_eq!(scanned, want);
    };
    check(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), small_opts(backend)).unwrap();
    assert_eq!(db.stats().io_backend, name, "same backend after reopen");
    check(&db);
    db.compact().unwrap();
    check(&db);
    db.close().unwrap();
    name
}

/// What `Auto` resolves to in this process (CI sets `WISCKEY_IO_BACKEND`).
fn auto_expected() -> &'static str {
    match std::env::var("WISCKEY_IO_BACKEND").as_deref() {
        Ok("sync") => "sync",
        _ => "io_uring",
    }
}

#[test]
fn io_uring_backend_round_trip() {
    assert_eq!(exercise(IoBackend::IoUring), "io_uring");
}

#[test]
fn sync_backend_round_trip() {
    assert_eq!(exercise(IoBackend::Sync), "sync");
}

#[test]
fn auto_backend_prefers_io_uring() {
    assert_eq!(exercise(IoBackend::Auto), auto_expected());
}

/// Runs `child_open` in a child process with `env`; returns its verdict line.
fn run_child(backend: &str, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["child_open", "--exact", "--nocapture", "--test-threads=1"])
        .env_remove("WISCKEY_IO_BACKEND")
        .env_remove("WISCKEY_IO_URING_DISABLE")
        .env("IO_BACKENDS_CHILD", backend);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("VERDICT ").map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no verdict in {stdout}"))
        .to_string()
}

/// The child half of the tests below; does nothing in a normal run.
#[test]
fn child_open() {
    let Ok(backend) = std::env::var("IO_BACKENDS_CHILD") else {
        return;
    };
    let backend = match backend.as_str() {
        "auto" => IoBackend::Auto,
        "io_uring" => IoBackend::IoUring,
        _ => IoBackend::Sync,
    };
    let dir = tempfile::tempdir().unwrap();
    let verdict = match Db::open(dir.path(), small_opts(backend)) {
        Ok(db) => {
            db.put(b"k", vec![1u8; 5000]).unwrap();
            assert_eq!(db.get(b"k").unwrap().unwrap().into_vec(), vec![1u8; 5000]);
            db.stats().io_backend
        }
        Err(Error::Unsupported(why)) => format!("unsupported: {why}"),
        Err(e) => format!("error: {e}"),
    };
    println!("\nVERDICT {verdict}");
}

#[test]
fn auto_falls_back_to_sync_when_io_uring_is_refused() {
    assert_eq!(
        run_child("auto", &[("WISCKEY_IO_URING_DISABLE", "1")]),
        "sync"
    );
    assert_eq!(run_child("auto", &[]), "io_uring");
}

#[test]
fn explicit_io_uring_refused_is_unsupported() {
    let v = run_child("io_uring", &[("WISCKEY_IO_URING_DISABLE", "1")]);
    assert!(
        v.starts_with("unsupported: ") && v.contains("WISCKEY_IO_URING_DISABLE"),
        "{v}"
    );
}

#[test]
fn backend_env_var_steers_auto_only() {
    assert_eq!(run_child("auto", &[("WISCKEY_IO_BACKEND", "sync")]), "sync");
    assert_eq!(
        run_child("auto", &[("WISCKEY_IO_BACKEND", "auto")]),
        "io_uring"
    );
    assert_eq!(
        run_child("auto", &[("WISCKEY_IO_BACKEND", "io_uring")]),
        "io_uring"
    );
    // Explicit choices ignore it.
    assert_eq!(
        run_child("io_uring", &[("WISCKEY_IO_BACKEND", "sync")]),
        "io_uring"
    );
    assert_eq!(
        run_child("sync", &[("WISCKEY_IO_BACKEND", "io_uring")]),
        "sync"
    );
    // Requiring io_uring through it fails when io_uring is refused.
    let v = run_child(
        "auto",
        &[
            ("WISCKEY_IO_BACKEND", "io_uring"),
            ("WISCKEY_IO_URING_DISABLE", "1"),
        ],
    );
    assert!(v.starts_with("unsupported: "), "{v}");
    let v = run_child("auto", &[("WISCKEY_IO_BACKEND", "bogus")]);
    assert!(v.starts_with("unsupported: ") && v.contains("bogus"), "{v}");
}

/// `WriteMode::Writeback` starts the writeback of every `bytes_per_sync`
/// bytes of the vLog and of new SSTables on real files, and the data is the
/// same as with plain buffered writes, which start none.
#[test]
fn write_modes_on_real_files() {
    use wisckey::WriteMode;
    for mode in [WriteMode::Writeback, WriteMode::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let opts = || {
            small_opts(IoBackend::Auto)
                .write_mode(mode)
                .bytes_per_sync(16 << 10)
        };
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in 0..1500u32 {
            db.put(format!("k{i:05}"), value(i)).unwrap();
        }
        db.flush().unwrap();
        let st = db.stats();
        assert_eq!(st.write_mode, mode.name(), "{mode:?}");
        assert_eq!(st.write_mode_fallback, None, "{mode:?}");
        match mode {
            WriteMode::Writeback => {
                assert_eq!(st.bytes_per_sync, 16 << 10);
                // About 1 MB of vLog and SSTables in 16 KiB ranges.
                assert!(st.writeback_ranges >= 20, "{}", st.writeback_ranges);
            }
            _ => {
                assert_eq!(st.bytes_per_sync, 0);
                assert_eq!(st.writeback_ranges, 0);
            }
        }
        db.close().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in (0..1500u32).step_by(3) {
            let got = db.get(format!("k{i:05}")).unwrap().unwrap();
            assert_eq!(got.into_vec(), value(i), "k{i} after {mode:?}");
        }
        db.close().unwrap();
    }
}
