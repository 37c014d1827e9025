//! `vlog-tools gc-sim` from the command line: its JSON rows, its exit codes
//! (0 ok, 1 failure, 2 usage), errors as JSON under --json, a start state
//! from a real database, and the plot.

use std::process::Command;

/// Runs the tool: (exit code, stdout, stderr).
fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vlog-tools"))
        .args(args)
        .output()
        .expect("running vlog-tools");
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SMALL: &[&str] = &[
    "gc-sim",
    "--keys",
    "3000",
    "--updates",
    "30000",
    "--segment-size",
    "512KiB",
    "--memtable-size",
    "64KiB",
];

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn json_has_a_row_per_policy_and_target() {
    let mut args = SMALL.to_vec();
    args.extend(["--targets", "1.25,2", "--json"]);
    let (code, out, err) = tool(&args);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["keys"], 3000);
    assert_eq!(v["updates"], 30000);
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "3 policies x 2 targets");
    let mut seen = Vec::new();
    for r in rows {
        let wa = r["gc_write_amplification"].as_f64().unwrap();
        let user = r["user_bytes_written"].as_u64().unwrap();
        let gc = r["gc_bytes_written"].as_u64().unwrap();
        assert_eq!(user, 30000 * (21 + 19 + 4096 + 4));
        assert!((wa - (user + gc) as f64 / user as f64).abs() < 1e-9);
        assert!(r["passes"].as_u64().unwrap() > 0);
        for f in [
            "space_amp_mean",
            "space_amp_max",
            "space_amp_end",
            "estimated_space_amp_end",
            "segments_collected",
            "records_moved",
            "seconds",
        ] {
            assert!(r.get(f).is_some(), "no {f} in {r}");
        }
        seen.push((
            r["policy"].as_str().unwrap().to_string(),
            r["head"].as_str().unwrap().to_string(),
            r["target"].as_f64().unwrap(),
        ));
    }
    for p in ["tail", "greedy", "cost-benefit"] {
        for t in [1.25, 2.0] {
            assert!(
                seen.contains(&(p.to_string(), "gc".to_string(), t)),
                "{seen:?}"
            );
        }
    }
}

#[test]
fn the_table_names_each_row() {
    let mut args = SMALL.to_vec();
    args.extend(["--policy", "greedy", "--head", "both"]);
    let (code, out, err) = tool(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GC WA"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("greedy")).count(),
        2,
        "{out}"
    );
}

#[test]
fn usage_errors_exit_2_and_say_so_in_json() {
    for bad in [
        &["--target", "0.5"][..],
        &["--policy", "fifo"][..],
        &["--targets", "1.5,abc"][..],
        &["--value-dist", "normal:1-2"][..],
        &["--theta", "1.5"][..],
        &["--gc-speed", "0"][..],
    ] {
        let mut args = SMALL.to_vec();
        args.extend(bad);
        let (code, out, err) = tool(&args);
        assert_eq!(code, 2, "{bad:?}: {out} {err}");
        assert!(out.is_empty(), "{bad:?}: {out}");
        args.push("--json");
        let (code, out, _) = tool(&args);
        assert_eq!(code, 2, "{bad:?}");
        assert!(json(&out)["error"].as_str().is_some(), "{out}");
    }
}

#[test]
fn a_directory_without_a_database_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = tool(&["gc-sim", "--from", d, "--updates", "10", "--json"]);
    assert_eq!(code, 1, "{out} {err}");
    let e = json(&out)["error"].as_str().unwrap().to_string();
    assert!(e.contains("not a wisckey database"), "{e}");
    // Nothing was created there.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let (code, out, err) = tool(&["gc-sim", "--from", d, "--updates", "10"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("error:"), "{err}");
}

#[test]
fn starts_from_a_real_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = wisckey::Db::open(
            dir.path(),
            wisckey::Options::default()
                .segment_size(256 << 10)
                .memtable_size(64 << 10)
                .background_gc(false),
        )
        .unwrap();
        for round in 0..3u8 {
            for i in 0..400u32 {
                db.put(format!("key{i:016}"), vec![round; 4096]).unwrap();
            }
        }
        db.compact().unwrap();
        db.close().unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let before = wisckey::Db::open_read_only(dir.path(), wisckey::Options::default())
        .unwrap()
        .stats();
    let (code, out, err) = tool(&[
        "gc-sim",
        "--from",
        d,
        "--updates",
        "2000",
        "--segment-size",
        "256KiB",
        "--memtable-size",
        "64KiB",
        "--policy",
        "greedy",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(
        v["start_segments"].as_u64().unwrap(),
        before.segments.len() as u64
    );
    // 400 live keys of 4140-byte records, cut out of the segments.
    let keys = v["keys"].as_u64().unwrap();
    assert!((395..=400).contains(&keys), "{keys}");
    let r = &v["results"][0];
    assert!(r["passes"].as_u64().unwrap() > 0);
    assert!(r["estimated_space_amp_end"].as_f64().unwrap() <= 1.5);
}

#[test]
fn plots_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("wa.svg");
    let mut args = SMALL.to_vec();
    args.extend([
        "--targets",
        "1.25,1.5,2",
        "--plot",
        svg.to_str().unwrap(),
        "--json",
    ]);
    let (code, out, err) = tool(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["plot"].as_str().unwrap(), svg.to_str().unwrap());
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"));
    assert!(
        text.contains("greedy / gc head"),
        "the legend names the curves"
    );
    // A plot that cannot be written is a failure, not a usage error.
    let mut args = SMALL.to_vec();
    args.extend(["--plot", "/nonexistent-dir/x.svg", "--json"]);
    let (code, out, _) = tool(&args);
    assert_eq!(code, 1);
    assert!(json(&out)["error"].as_str().is_some());
}

#[test]
fn help_explains_the_exit_codes() {
    let (code, out, _) = tool(&["gc-sim", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit status: 0"), "{out}");
    assert!(out.contains("2 a usage error"), "{out}");
}

#[test]
fn same_seed_same_numbers() {
    let mut args = SMALL.to_vec();
    args.extend([
        "--workload",
        "hotcold",
        "--policy",
        "cost-benefit",
        "--json",
    ]);
    let a = json(&tool(&args).1);
    let b = json(&tool(&args).1);
    for f in ["gc_bytes_written", "passes", "space_amp_mean"] {
        assert_eq!(a["results"][0][f], b["results"][0][f], "{f}");
    }
}
