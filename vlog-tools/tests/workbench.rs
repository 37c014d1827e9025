//! The GC workbench's subcommands on databases the tests make: `info` (and
//! its old name `inspect`), `segments` (`--exact`, `--plot`), `gc`
//! (`--dry-run`, the stored segment size), JSON output and exit codes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use wisckey::{Db, Options, TableOptions};

/// Runs the tool: exit code, stdout, stderr.
fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vlog-tools"))
        .args(args)
        .output()
        .expect("running vlog-tools");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Every file's length and bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

const SEGMENT: u64 = 96 << 10;

/// A database with garbage: every key written, then every other one again,
/// and an unordered table; 96 KiB segments.
fn build(dir: &Path) {
    let db = Db::open(
        dir,
        Options::default()
            .segment_size(SEGMENT)
            .memtable_size(32 << 10)
            .background_gc(false),
    )
    .unwrap();
    let blobs = db.table("blobs", TableOptions::unordered()).unwrap();
    for round in 0..2u8 {
        for i in 0..300u32 {
            if round == 0 || i % 2 == 0 {
                db.put(format!("key{i:05}"), vec![round; 1500]).unwrap();
            }
        }
    }
    for i in 0..40u32 {
        blobs.put(format!("b{i}"), vec![9u8; 3000]).unwrap();
    }
    db.compact().unwrap();
    db.close().unwrap();
}

#[test]
fn info_shows_the_counters_since_creation_and_the_creation() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = tool(&["info", d, "--json"]);
    assert_eq!(code, 0, "{err}");
    let j = json(&out);
    assert!(j["lifetime"]["user_bytes_written"].as_u64().unwrap() > 300 * 1500);
    assert_eq!(j["lifetime"]["opens"], 1);
    assert!(j["lifetime"]["write_amplification"].as_f64().unwrap() >= 1.0);
    assert_eq!(j["created"]["segment_size"], SEGMENT);
    assert!(j["created"]["unix_secs"].as_u64().unwrap() > 1_700_000_000);
    // The old name, same report; and the text form.
    let (code, old, _) = tool(&["inspect", d, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&old)["lifetime"], j["lifetime"]);
    let (code, text, _) = tool(&["info", d]);
    assert_eq!(code, 0);
    assert!(text.contains("since the database was created"), "{text}");
    assert!(text.contains("segment size 96.0 KiB"), "{text}");
}

#[test]
fn segments_exact_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let before = files(dir.path());
    let plot = tempfile::tempdir().unwrap();
    let svg = plot.path().join("segments.svg");
    let (code, out, err) = tool(&[
        "segments",
        d,
        "--exact",
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let j = json(&out);
    let segs = j["segments"].as_array().unwrap();
    assert!(segs.len() >= 5, "{out}");
    let mut records = 0;
    for s in segs {
        let bytes = s["bytes"].as_u64().unwrap();
        let live = s["exact_live_bytes"].as_u64().unwrap();
        assert!(live <= bytes, "{s}");
        // Compacted: the statistics know all the sorted index's garbage.
        assert_eq!(s["unknown_garbage_bytes"], 0, "{s}");
        assert!(s["file"].as_str().unwrap().ends_with(".vlog"));
        assert!(
            s["created_unix_secs"].as_u64().unwrap() > 1_700_000_000,
            "{s}"
        );
        assert!(s["min_seq"].as_u64().unwrap() >= 1, "{s}");
        records += s["exact_live_records"].as_u64().unwrap();
    }
    // 300 keys of the default table and 40 of the unordered one.
    assert_eq!(records, 340);
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.starts_with("<svg") && picture.contains("live ratio"),
        "not the plot"
    );
    assert_eq!(files(dir.path()), before, "segments changed the database");
    // Without --exact: the statistics only.
    let (code, out, _) = tool(&["segments", d, "--json"]);
    assert_eq!(code, 0);
    assert!(json(&out)["segments"][0]["exact_live_bytes"].is_null());
}

#[test]
fn gc_dry_run_then_the_pass_it_planned() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let before = files(dir.path());
    let args = [
        "--policy",
        "greedy",
        "--max-segments",
        "2",
        "--min-garbage-ratio",
        "0.1",
        "--json",
    ];
    let dry: Vec<&str> = ["gc", d, "--dry-run"].into_iter().chain(args).collect();
    let (code, out, err) = tool(&dry);
    assert_eq!(code, 0, "{err}");
    let plan = json(&out);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["report"]["dry_run"], true);
    assert_eq!(plan["report"]["victims"].as_array().unwrap().len(), 2);
    assert_eq!(files(dir.path()), before, "a dry run changed the database");

    let real: Vec<&str> = ["gc", d].into_iter().chain(args).collect();
    let (code, out, err) = tool(&real);
    assert_eq!(code, 0, "{err}");
    let done = json(&out);
    assert_eq!(done["report"]["victims"], plan["report"]["victims"]);
    assert_eq!(done["report"]["bytes_moved"], plan["report"]["bytes_moved"]);
    assert_eq!(done["report"]["bytes_freed"], plan["report"]["bytes_freed"]);
    // The pass ran with the segment size the database was created with.
    assert_eq!(done["segment_size"], SEGMENT);
    assert_eq!(done["segment_size_from"], "stored");
    assert!(
        done["space_amplification_after"].as_f64().unwrap()
            < done["space_amplification_before"].as_f64().unwrap()
    );
    // An argument overrides the stored size.
    let (code, out, _) = tool(&["gc", d, "--dry-run", "--segment-size", "1MiB", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["segment_size_from"], "argument");
}

#[test]
fn errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let m = missing.to_str().unwrap();
    for cmd in ["info", "segments", "gc", "stats", "verify"] {
        let (code, out, err) = tool(&[cmd, m, "--json"]);
        assert_eq!(code, 1, "{cmd}: {out} {err}");
        let j = json(out.trim());
        assert_eq!(j["ok"], false, "{cmd}: {out}");
        assert!(
            j["error"].as_str().unwrap().contains("nothing-here"),
            "{cmd}: {out}"
        );
        assert!(!missing.exists(), "{cmd} created the directory");
    }
    // Usage errors: 2.
    let (code, _, err) = tool(&["gc", m, "--policy", "sideways"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = tool(&["segments"]);
    assert_eq!(code, 2);
    let (code, _, err) = tool(&["bench", "--segment-size", "12XB"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown unit"), "{err}");
    let (code, out, _) = tool(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit status: 0 success; 1"), "{out}");
}

/// A bench interrupted with SIGINT (Ctrl-C) or SIGTERM removes its
/// temporary database and exits with 130.
#[test]
fn an_interrupted_bench_leaves_nothing_behind() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let parent = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vlog-tools"))
            .args([
                "bench",
                "--keys",
                "5000000",
                "--value-size",
                "1KiB",
                "--dir",
                parent.path().to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Until the database directory exists and holds a segment.
        let start = std::time::Instant::now();
        loop {
            let has_db = std::fs::read_dir(parent.path()).unwrap().any(|e| {
                std::fs::read_dir(e.unwrap().path())
                    .map(|mut d| {
                        d.any(|f| f.unwrap().file_name().to_string_lossy().ends_with(".vlog"))
                    })
                    .unwrap_or(false)
            });
            if has_db {
                break;
            }
            assert!(start.elapsed().as_secs() < 60, "no database appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: `kill` on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "signal {signal}: {err}");
        assert!(err.contains("interrupted: removed"), "{err}");
        let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
        assert!(left.is_empty(), "signal {signal}: left {left:?}");
    }
}

/// `bench --timeline FILE.csv --plot FILE.svg`: a sample per interval, with
/// the phases of the run, and the picture.
#[test]
fn bench_records_a_timeline() {
    let out_dir = tempfile::tempdir().unwrap();
    let csv = out_dir.path().join("t.csv");
    let svg = out_dir.path().join("t.svg");
    let (code, _, err) = tool(&[
        "bench",
        // Enough that the load lasts several sampling intervals.
        "--keys",
        "12000",
        "--value-size",
        "4KiB",
        "--updates",
        "16000",
        "--segment-size",
        "1MiB",
        "--memtable-size",
        "512KiB",
        "--reads",
        "100",
        "--timeline-interval",
        "0.05",
        "--timeline",
        csv.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
        "--dir",
        out_dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "t_secs");
    assert!(header.contains(&"vlog_space_amplification"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert!(rows.len() >= 3, "{text}");
    let mut last_t = -1.0;
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{r:?}");
        let t: f64 = r[0].parse().unwrap();
        // Printed to the millisecond: samples 10 ms or more apart.
        assert!(t > last_t, "time goes forward: {t} after {last_t}\n{text}");
        last_t = t;
        let amp: f64 = r[5].parse().unwrap();
        assert!(amp >= 1.0, "{r:?}");
    }
    let phases: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert!(
        phases.contains("overwrite") && phases.contains("fillrandom"),
        "{phases:?}"
    );
    // The whole run's user bytes went by at some rate.
    assert!(rows.iter().any(|r| r[2].parse::<f64>().unwrap() > 0.0));
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("vLog space amplification"));
    // Only the two outputs are left: the database went with the run.
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 2);
}

/// `--plot FILE.png` renders the picture to PNG; another extension is an
/// error that says which ones work.
#[test]
fn plots_as_png_too() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("s.png");
    let (code, _, err) = tool(&["segments", d, "--plot", png.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 5000,
        "an empty picture ({} bytes)",
        bytes.len()
    );
    let gif = out.path().join("s.gif");
    let (code, _, err) = tool(&["segments", d, "--plot", gif.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains(".svg or .png"), "{err}");
    let sim_png = out.path().join("sim.png");
    let (code, _, err) = tool(&[
        "gc-sim",
        "--keys",
        "2000",
        "--updates",
        "20000",
        "--segment-size",
        "256KiB",
        "--memtable-size",
        "64KiB",
        "--targets",
        "1.25,2",
        "--plot",
        sim_png.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&sim_png).unwrap().starts_with(b"\x89PNG"));
}
