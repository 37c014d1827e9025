//! The admin commands on a real database with an ordered and an unordered
//! table: `inspect` shows both kinds and the hint files, `verify` reads
//! every key of both and passes, and fails naming corruption once a value
//! in the vLog is damaged.

use std::path::Path;
use std::process::Command;
use wisckey::{Db, Options, TableOptions};

fn tool(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vlog-tools"))
        .args(args)
        .output()
        .expect("running vlog-tools");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn build(dir: &Path) {
    let db = Db::open(
        dir,
        Options::default()
            .segment_size(64 << 10)
            .background_gc(false),
    )
    .unwrap();
    let blobs = db.table("blobs", TableOptions::unordered()).unwrap();
    let users = db.table("users", TableOptions::ordered()).unwrap();
    for i in 0..300u32 {
        blobs
            .put(format!("b{i}"), vec![(i % 200) as u8; 2000])
            .unwrap();
        users.put(format!("u{i}"), format!("user {i}")).unwrap();
    }
    for i in 0..50u32 {
        blobs.delete(format!("b{i}")).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
}

#[test]
fn inspect_and_verify_both_table_kinds() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();

    let (ok, out, err) = tool(&["inspect", d, "--json"]);
    assert!(ok, "inspect failed: {err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    // 250 live keys and 50 tombstones.
    assert_eq!(j["unordered_keys"], 300);
    // At least a 40-byte slot per key.
    assert!(j["keydir_bytes"].as_u64().unwrap() >= 300 * 40, "{out}");
    assert!(j["hint_files"].as_u64().unwrap() > 0, "{out}");
    let kinds: Vec<(String, String)> = serde_json::from_value(j["tables"].clone()).unwrap();
    assert!(kinds.contains(&("blobs".into(), "unordered".into())));
    assert!(kinds.contains(&("users".into(), "ordered".into())));

    let (ok, out, err) = tool(&["verify", d, "--json"]);
    assert!(ok, "verify failed: {out} {err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tables = j["tables"].as_array().unwrap();
    let blobs = tables.iter().find(|t| t["table"] == "blobs").unwrap();
    assert_eq!(blobs["kind"], "unordered");
    assert_eq!(blobs["entries"], 250);
    assert_eq!(blobs["value_bytes"], 250 * 2000);
    let users = tables.iter().find(|t| t["table"] == "users").unwrap();
    assert_eq!(users["entries"], 300);
}

#[test]
fn verify_reports_a_damaged_unordered_value() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // Damage the middle of the last sealed segment: values of live "blobs"
    // records (the first segments hold the deleted ones).
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".vlog"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let seg = &segs[segs.len() - 2];
    let mut b = std::fs::read(seg).unwrap();
    let mid = b.len() / 2;
    for x in &mut b[mid..mid + 64] {
        *x ^= 0xff;
    }
    std::fs::write(seg, b).unwrap();
    let (ok, out, err) = tool(&["verify", dir.path().to_str().unwrap()]);
    assert!(!ok, "verify passed over a damaged segment: {out}");
    assert!(err.to_lowercase().contains("corruption"), "{err}");
    assert!(
        err.contains(&*seg.file_name().unwrap().to_string_lossy()),
        "the error names the segment: {err}"
    );
}

/// `bench --table-kind unordered` runs against a named unordered table: the
/// report names it, the gets run, and the scan is listed as skipped (an
/// unordered table has no key order); the ordered run scans.
#[test]
fn bench_runs_on_both_table_kinds() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().to_str().unwrap();
    let run = |kind: &str| -> serde_json::Value {
        let (ok, out, err) = tool(&[
            "bench",
            "--keys",
            "2000",
            "--value-size",
            "2000",
            "--reads",
            "500",
            "--table-kind",
            kind,
            "--dir",
            dir,
            "--json",
        ]);
        assert!(ok, "bench --table-kind {kind} failed: {err}");
        // JSON lines: the phases, then the run.
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bench --json: {e}: {l}")))
            .collect();
        serde_json::Value::Array(lines)
    };
    let phases = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|l| l["type"] == "phase")
            .map(|l| l["phase"].as_str().unwrap().to_string())
            .collect()
    };
    let last = |v: &serde_json::Value| v.as_array().unwrap().last().unwrap().clone();
    let u = run("unordered");
    assert_eq!(
        phases(&u),
        ["fillrandom", "readrandom"],
        "an unordered table was scanned"
    );
    let ur = last(&u);
    assert_eq!(ur["type"], "run");
    assert_eq!(ur["config"]["table_kind"], "unordered");
    assert!(ur["describe"]
        .as_str()
        .unwrap()
        .contains("unordered table `bench`"));
    assert_eq!(ur["skipped"][0]["phase"], "readseq");
    assert_eq!(ur["stats"]["unordered_keys"], 2000);
    assert!(ur["stats"]["keydir_bytes"].as_u64().unwrap() >= 2000 * 40);
    let o = run("ordered");
    assert_eq!(phases(&o), ["fillrandom", "readrandom", "readseq"]);
    let or = last(&o);
    assert_eq!(or["config"]["table_kind"], "ordered");
    assert_eq!(or["skipped"].as_array().map(Vec::len), Some(0));
    // Both runs removed their databases.
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

/// Every file of `dir`, with its bytes.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `inspect`, `stats` and `verify` open the database read-only: not a byte
/// of it changes, even where a writer's open would repair something (a
/// missing hint file, a leftover temporary file).
#[test]
fn inspection_commands_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let hint = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".hint"))
        .expect("a hint file");
    std::fs::remove_file(dir.path().join(hint)).unwrap();
    std::fs::write(dir.path().join("CURRENT.tmp"), b"left over").unwrap();
    let before = files_of(dir.path());
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["inspect", d],
        vec!["inspect", d, "--json"],
        vec!["stats", d],
        vec!["verify", d],
        vec!["verify", d, "--json"],
    ] {
        let (ok, _, err) = tool(&args);
        assert!(ok, "{args:?} failed: {err}");
        assert!(
            files_of(dir.path()) == before,
            "{args:?} changed the database's files"
        );
    }
    // A directory without a database is refused, and nothing is created.
    let empty = dir.path().join("none");
    let e = empty.to_str().unwrap();
    for cmd in ["inspect", "stats", "verify", "gc"] {
        let (ok, _, err) = tool(&[cmd, e]);
        assert!(!ok && err.contains("no wisckey database"), "{cmd}: {err}");
        assert!(!empty.exists(), "{cmd} created {e}");
    }
}

/// `gc --salvage` collects a segment whose garbage is damaged, where a plain
/// pass fails (exit status and error both say so).
#[test]
fn gc_salvage_collects_a_segment_with_damaged_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .segment_size(64 << 10)
        .background_gc(false);
    let db = Db::open(dir.path(), opts).unwrap();
    for i in 0..40u32 {
        db.put(format!("live{i:04}"), vec![1u8; 3000]).unwrap();
        db.put(format!("gone{i:04}"), vec![2u8; 3000]).unwrap();
    }
    for i in 0..40u32 {
        db.put(format!("gone{i:04}"), vec![3u8; 3000]).unwrap();
    }
    db.compact().unwrap();
    let first = db.segment_stats()[0].number;
    db.close().unwrap();
    let seg = dir.path().join(format!("{first:06}.vlog"));
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 2))
        .unwrap();
    bytes[at + 100] ^= 1;
    std::fs::write(&seg, bytes).unwrap();
    let d = dir.path().to_str().unwrap();
    let pass = [
        "gc",
        d,
        "--policy",
        "tail",
        "--min-garbage-ratio",
        "0",
        "--segment-size",
        "65536",
    ];
    let (ok, _, err) = tool(&pass);
    assert!(!ok && err.contains("corruption"), "a plain pass: {err}");
    let mut salvage = pass.to_vec();
    salvage.extend(["--salvage", "--json"]);
    let (ok, out, err) = tool(&salvage);
    assert!(ok, "salvage failed: {err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["salvage"], true);
    assert_eq!(j["report"]["victims"][0], first);
    assert!(!seg.exists());
    let (ok, _, err) = tool(&["verify", d]);
    assert!(ok, "verify after salvage: {err}");
}

/// `verify` reads garbage records too: a flipped byte in one fails it with
/// exit status 1, and `--json` lists the damage with the counts of what was
/// read.
#[test]
fn verify_finds_damaged_garbage_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options::default()
            .segment_size(64 << 10)
            .background_gc(false),
    )
    .unwrap();
    for i in 0..40u32 {
        db.put(format!("k{i:04}"), vec![5u8; 3000]).unwrap();
    }
    for i in 0..40u32 {
        db.put(format!("k{i:04}"), vec![6u8; 3000]).unwrap();
    }
    db.compact().unwrap();
    db.close().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, out, _) = tool(&["verify", d, "--json"]);
    assert!(ok, "verify of the clean database: {out}");
    let seg = dir.path().join("000001.vlog");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 5))
        .unwrap();
    bytes[at + 7] ^= 0x40;
    std::fs::write(&seg, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vlog-tools"))
        .args(["verify", d, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ok"], false);
    assert_eq!(j["damage"].as_array().unwrap().len(), 1, "{j}");
    assert!(j["damage"][0]["file"]
        .as_str()
        .unwrap()
        .ends_with("000001.vlog"));
    assert!(j["checked"]["segments"].as_u64().unwrap() >= 2, "{j}");
    assert!(j["checked"]["records"].as_u64().unwrap() >= 79, "{j}");
    assert_eq!(j["entries"], 40);
    let (ok, out, err) = tool(&["verify", d]);
    assert!(
        !ok && out.contains("DAMAGE") && err.contains("corruption"),
        "{out} {err}"
    );
}

/// `write-modes` runs every mode (or says why the file system refused
/// one), reports MB/s per run, and rejects a chunk O_DIRECT cannot write.
#[test]
fn write_modes_measures_each_mode_or_says_it_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, out, err) = tool(&[
        "write-modes",
        "--dir",
        d,
        "--size",
        "2MiB",
        "--chunk",
        "64KiB",
        "--runs",
        "2",
        "--writeback-every",
        "256KiB",
        "--json",
    ]);
    assert!(ok, "{err}");
    let modes: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = modes.iter().map(|m| m["mode"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "buffered",
            "writeback",
            "writeback-wait",
            "dontcache",
            "direct"
        ]
    );
    for m in &modes {
        if m["refused"].is_null() {
            let runs = m["durable_mb_s"].as_array().unwrap();
            assert_eq!(runs.len(), 2, "{m}");
            assert!(runs.iter().all(|r| r.as_f64().unwrap() > 0.0), "{m}");
        } else {
            assert!(m["durable_mb_s"].as_array().unwrap().is_empty(), "{m}");
        }
    }
    // Plain buffered writes are refused by no file system.
    assert!(modes[0]["refused"].is_null(), "{}", modes[0]);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "the file is removed"
    );
    let (ok, _, err) = tool(&["write-modes", "--dir", d, "--chunk", "1000"]);
    assert!(!ok);
    assert!(err.contains("multiple of 4096"), "{err}");
}

#[test]
fn checkpoint_makes_an_openable_copy() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let cp = out.path().join("cp");
    let (ok, stdout, err) = tool(&["checkpoint", "--db", d, "--out", cp.to_str().unwrap()]);
    assert!(ok, "checkpoint failed: {err}");
    assert!(
        stdout.contains("linked") && stdout.contains("last sequence"),
        "{stdout}"
    );
    let copy = Db::open(&cp, Options::default()).unwrap();
    let blobs = copy.table("blobs", TableOptions::unordered()).unwrap();
    assert_eq!(blobs.keys().count(), 250);
    let users = copy.table("users", TableOptions::ordered()).unwrap();
    assert_eq!(users.get("u7").unwrap().as_deref(), Some(&b"user 7"[..]));
    drop((blobs, users, copy));

    // Chosen tables, every file copied, as JSON.
    let cp2 = out.path().join("cp2");
    let (ok, stdout, err) = tool(&[
        "checkpoint",
        "--db",
        d,
        "--out",
        cp2.to_str().unwrap(),
        "--tables",
        "users",
        "--copy",
        "--json",
    ]);
    assert!(ok, "checkpoint failed: {err}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["files_linked"], 0, "{stdout}");
    assert_eq!(j["tables"], serde_json::json!(["users"]));
    let copy = Db::open(&cp2, Options::default()).unwrap();
    assert_eq!(copy.table_names(), vec!["users".to_string()]);

    // A directory that is not empty is refused (exit 1), and nothing changes.
    let (ok, _, err) = tool(&["checkpoint", "--db", d, "--out", cp2.to_str().unwrap()]);
    assert!(!ok && err.contains("not empty"), "{err}");
}
