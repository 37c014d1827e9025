//! `vlog-tools bench`: every workload on wisckey, small, through the JSON
//! lines it prints; figures checked for what they must be (counts, order
//! of percentiles, amplification at least 1 where the engine wrote).

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

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

/// A run's JSON lines: its phases by name, and its run lines.
fn lines(out: &str) -> (Vec<Value>, Vec<Value>) {
    let mut phases = Vec::new();
    let mut runs = Vec::new();
    for l in out.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        match v["type"].as_str() {
            Some("phase") => phases.push(v),
            Some("run") => runs.push(v),
            other => panic!("a line of type {other:?}: {l}"),
        }
    }
    (phases, runs)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The latency summary of `kind` in phase `p` is ordered and counts `n`.
fn check_latency(p: &Value, kind: &str) -> u64 {
    let l = &p["latency"][kind];
    assert!(l.is_object(), "{}: no {kind} latency: {p}", p["phase"]);
    let (p50, p99, p999, max) = (
        f(&l["p50_us"]),
        f(&l["p99_us"]),
        f(&l["p999_us"]),
        f(&l["max_us"]),
    );
    assert!(
        p50 > 0.0 && p50 <= p99 && p99 <= p999 && p999 <= max,
        "{}: {l}",
        p["phase"]
    );
    let cdf = l["cdf"].as_array().unwrap();
    assert!(cdf.len() > 5);
    assert!(cdf.windows(2).all(|w| f(&w[0][1]) <= f(&w[1][1])), "{l}");
    l["count"].as_u64().unwrap()
}

#[test]
fn every_workload_runs_and_reports_its_figures() {
    let parent = tempfile::tempdir().unwrap();
    let workloads =
        "fillseq,overwrite,readrandom,multiget,seekrandom,deleterandom,readwhilewriting,\
                     ycsb-a,ycsb-b,ycsb-c,ycsb-d,ycsb-e,ycsb-f,gc,readseq,fillrandom";
    let (code, out, err) = tool(&[
        "bench",
        "--workloads",
        workloads,
        "--keys",
        "3000",
        "--value-size",
        "1KiB",
        "--value-dist",
        "uniform",
        "--updates",
        "6000",
        "--reads",
        "2000",
        "--ycsb-ops",
        "2000",
        "--scans",
        "200",
        "--multi-get",
        "16",
        "--deletes",
        "300",
        "--segment-size",
        "1MiB",
        "--threads",
        "2",
        "--gc-wait",
        "5",
        "--dist",
        "zipf",
        "--dir",
        parent.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let (phases, runs) = lines(&out);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["engine"], "wisckey");
    assert!(run["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{run}");
    assert!(run["stats"]["vlog_segments"].as_u64().is_some());
    assert!(run["block_device"].as_str().is_some() && run["flash"].as_str().is_some());
    let by: BTreeMap<String, &Value> = phases
        .iter()
        .map(|p| (p["phase"].as_str().unwrap().to_string(), p))
        .collect();
    let names: Vec<&str> = workloads.split(',').collect();
    assert_eq!(by.len(), names.len(), "{:?}", by.keys());
    for p in &phases {
        let name = p["phase"].as_str().unwrap();
        assert_eq!(p["engine"], "wisckey");
        assert!(p["ops"].as_u64().unwrap() > 0, "{name}: no operations");
        assert!(f(&p["secs"]) > 0.0 && f(&p["ops_per_sec"]) > 0.0, "{name}");
        assert!(p["peak_rss_bytes"].as_u64().unwrap() > 0);
        let sa = f(&p["space"]["space_amplification"]);
        assert!(sa > 0.5 && sa < 20.0, "{name}: space amp {sa}");
        let wrote = p["bytes"]["user_written"].as_u64().unwrap();
        let wa = &p["write_amplification"];
        if wrote > 0 && name != "deleterandom" {
            // The engine writes every user byte at least once, and the
            // process at least what the engine did (in whole pages).
            assert!(f(&wa["engine"]) >= 1.0, "{name}: {wa}");
            assert!(f(&wa["process"]) >= 0.9, "{name}: {wa}");
        }
        if wrote == 0 {
            assert!(
                wa["engine"].is_null(),
                "{name}: amplification of nothing: {wa}"
            );
        }
    }
    // Every put is counted and timed.
    for name in ["fillseq", "overwrite", "fillrandom"] {
        let p = by[name];
        let n = check_latency(p, "put");
        assert_eq!(n, p["ops"].as_u64().unwrap(), "{name}");
    }
    assert_eq!(by["fillseq"]["ops"], 3000);
    assert_eq!(by["overwrite"]["ops"], 6000);
    assert_eq!(check_latency(by["readrandom"], "get"), 2000);
    assert!(by["readrandom"]["bytes"]["user_read"].as_u64().unwrap() > 2000 * 512);
    // multi_get: a latency per call, operations per key.
    assert_eq!(by["multiget"]["ops"], 2000);
    assert_eq!(check_latency(by["multiget"], "multiget"), 125);
    assert_eq!(check_latency(by["seekrandom"], "scan"), 200);
    // Scans of 100 keys from random seeks over 3000: most return many.
    assert!(by["seekrandom"]["bytes"]["user_read"].as_u64().unwrap() > 200 * 20 * 512);
    assert_eq!(check_latency(by["deleterandom"], "delete"), 300);
    let live_before = by["seekrandom"]["space"]["live_keys"].as_u64().unwrap();
    let live_after = by["deleterandom"]["space"]["live_keys"].as_u64().unwrap();
    assert!(
        live_after < live_before && live_after >= live_before - 300,
        "{live_before} -> {live_after}"
    );
    // readwhilewriting: gets are the operations, the writer's puts beside.
    let rww = by["readwhilewriting"];
    assert_eq!(check_latency(rww, "get"), 2000);
    assert!(rww["ops_by_kind"]["put"].as_u64().unwrap() > 0, "{rww}");
    assert_eq!(rww["ops"], 2000);
    // YCSB mixes.
    let kinds = |p: &Value| -> BTreeMap<String, u64> {
        serde_json::from_value(p["ops_by_kind"].clone()).unwrap()
    };
    let a = kinds(by["ycsb-a"]);
    assert!(
        (700..1300).contains(&a["get"]) && a["get"] + a["update"] == 2000,
        "{a:?}"
    );
    let b = kinds(by["ycsb-b"]);
    assert!(b["update"] > 20 && b["update"] < 250, "{b:?}");
    assert_eq!(kinds(by["ycsb-c"]).keys().collect::<Vec<_>>(), ["get"]);
    let d = kinds(by["ycsb-d"]);
    assert!(d["insert"] > 20 && d["insert"] < 250, "{d:?}");
    let e = kinds(by["ycsb-e"]);
    assert!(e["scan"] > 1700 && e["insert"] > 20, "{e:?}");
    let fk = kinds(by["ycsb-f"]);
    assert!(fk["rmw"] > 700 && fk["get"] > 700, "{fk:?}");
    // Inserts grew the key space: the last full scan sees them all.
    let inserted = d["insert"] + e["insert"];
    let scanned = by["readseq"]["ops"].as_u64().unwrap();
    assert_eq!(
        scanned,
        by["readseq"]["space"]["live_keys"].as_u64().unwrap()
    );
    assert!(
        scanned > 3000 - 300 && scanned <= 3000 + inserted,
        "{scanned}"
    );
    // GC by hand: wisckey's GC figures.
    let gc = &by["gc"]["gc"];
    assert!(gc["passes"].as_u64().unwrap() >= 1, "{gc}");
    // The overwrite phase waited for automatic GC and says how it ended.
    let og = &by["overwrite"]["gc"];
    assert!(og["reached_target"].is_boolean(), "{og}");
    assert!(f(&og["vlog_space_amplification_max"]) >= f(&og["vlog_space_amplification_end"]));
    // The database went with the run.
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
}

/// `--duration` cuts a phase with an operation count short; the fills
/// run to the end.
#[test]
fn duration_cuts_phases_short() {
    let parent = tempfile::tempdir().unwrap();
    let (code, out, err) = tool(&[
        "bench",
        "--workloads",
        "fillrandom,readrandom,ycsb-c",
        "--keys",
        "2000",
        "--value-size",
        "256",
        "--reads",
        "1000000000",
        "--duration",
        "0.4",
        "--dir",
        parent.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let (phases, _) = lines(&out);
    assert_eq!(phases[0]["ops"], 2000);
    for p in &phases[1..] {
        let secs = f(&p["secs"]);
        assert!((0.3..5.0).contains(&secs), "{p}");
        assert!(p["ops"].as_u64().unwrap() < 1_000_000_000);
    }
}

/// The same engine twice runs as two child processes side by side: two
/// runs, labelled apart, each with its own peak RSS, one table; and
/// `--plot DIR` draws every picture.
#[test]
fn engines_side_by_side_in_child_processes() {
    let parent = tempfile::tempdir().unwrap();
    let plots = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "--engines",
        "wisckey,wisckey",
        "--keys",
        "3000",
        "--reads",
        "3000",
        "--dir",
        parent.path().to_str().unwrap(),
        "--plot",
        plots.path().to_str().unwrap(),
    ];
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, out, err) = tool(&json_args);
    assert_eq!(code, 0, "{err}");
    let (phases, runs) = lines(&out);
    let engines: Vec<&str> = runs.iter().map(|r| r["engine"].as_str().unwrap()).collect();
    assert_eq!(engines, ["wisckey", "wisckey#2"]);
    assert_eq!(phases.len(), 6);
    assert!(runs
        .iter()
        .all(|r| r["peak_rss_bytes"].as_u64().unwrap() > 0));
    for name in [
        "throughput.svg",
        "latency.svg",
        "amplification.svg",
        "timeline-wisckey.svg",
        "timeline-wisckey#2.svg",
    ] {
        let svg = std::fs::read_to_string(plots.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(svg.contains("<svg"), "{name}");
    }
    let (code, out, err) = tool(&args);
    assert_eq!(code, 0, "{err}");
    for want in [
        "== fillrandom",
        "== readrandom",
        "== readseq",
        "wisckey#2",
        "WA eng",
        "p99.9",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
}

/// Bad input is a usage error that says what is accepted; an engine this
/// build lacks names the feature to build with.
#[test]
fn bad_input_is_refused_clearly() {
    let (code, _, err) = tool(&["bench", "--workloads", "fillrandom,sideways"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no workload `sideways`") && err.contains("ycsb-a"),
        "{err}"
    );
    let (code, _, err) = tool(&["bench", "--engines", "leveldb"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rocksdb-blob"), "{err}");
    let (code, _, err) = tool(&["bench", "--keys", "10", "--plot", "out.jpg"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FILE.svg or FILE.png"), "{err}");
    let (code, _, err) = tool(&["bench", "--keys", "10", "--duration=-1"]);
    assert_eq!(code, 1, "{err}");
    if !cfg!(feature = "rocksdb") {
        let (code, out, err) = tool(&[
            "bench",
            "--engines",
            "wisckey,rocksdb",
            "--keys",
            "10",
            "--json",
        ]);
        assert_eq!(code, 1, "{err}");
        assert!(out.contains("--features rocksdb"), "{out}");
    }
}

/// `--cold` drops the page cache before every phase that reads, or says
/// it could not and marks the phase warm.
#[test]
fn cold_phases_are_cold_or_say_so() {
    let parent = tempfile::tempdir().unwrap();
    let (code, out, err) = tool(&[
        "bench",
        "--keys",
        "2000",
        "--reads",
        "500",
        "--cold",
        "--dir",
        parent.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let (phases, runs) = lines(&out);
    let warm: Vec<&str> = runs[0]["cold_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for p in &phases {
        let name = p["phase"].as_str().unwrap();
        let reads = name != "fillrandom";
        assert_eq!(
            p["cold"].as_bool().unwrap(),
            reads && !warm.contains(&name),
            "{name}"
        );
        if reads && warm.contains(&name) {
            assert!(p["notes"].to_string().contains("ran warm"), "{p}");
        }
    }
}

/// Odd but valid input runs to the end with every read checked: one key
/// and more threads than keys, values too short to hold a version with
/// distributed sizes, YCSB updates as read-modify-writes of several fields
/// followed by strict reads, deletes then reads, zero-length scans, a
/// duration too long to represent, an unbounded GC wait.
#[test]
fn odd_input_runs_and_stays_checked() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().to_str().unwrap();
    for (keys, size) in [("1", "4"), ("50", "10"), ("300", "3KiB")] {
        let (code, out, err) = tool(&[
            "bench",
            "--workloads",
            "fillrandom,overwrite,readrandom,readwhilewriting,ycsb-a,ycsb-d,ycsb-f,deleterandom,\
             readrandom,multiget,seekrandom,ycsb-e,readseq",
            "--keys",
            keys,
            "--value-size",
            size,
            "--value-dist",
            "uniform",
            "--threads",
            "4",
            "--fields",
            "3",
            "--reads",
            "200",
            "--updates",
            "300",
            "--ycsb-ops",
            "300",
            "--scans",
            "20",
            "--scan-length",
            "0",
            "--duration",
            "1e20",
            "--gc-wait",
            "inf",
            "--no-gc",
            "--dir",
            dir,
            "--json",
        ]);
        assert_eq!(code, 0, "keys {keys}, value {size}: {err}");
        let (phases, _) = lines(&out);
        assert_eq!(phases.len(), 13, "{out}");
        let by: BTreeMap<String, &Value> = phases
            .iter()
            .map(|p| (p["phase"].as_str().unwrap().to_string(), p))
            .collect();
        // YCSB F's read-modify-writes were timed as such.
        assert!(by["ycsb-f"]["ops_by_kind"]["rmw"].as_u64().unwrap() > 0);
        // With several fields, an update is a read-modify-write too.
        assert!(by["ycsb-a"]["notes"]
            .to_string()
            .contains("read-modify-write"));
    }
}

/// `--value-kind json` with `--value-compression zstd` and `--dictionary`,
/// tiny: the values compress, the dictionary is trained and used, and the
/// stats of the run line carry raw and stored bytes; random values through
/// zstd are stored raw. Each run checks every value it reads back.
#[test]
fn compressible_values_with_and_without_a_dictionary() {
    let run = |extra: &[&str]| {
        let parent = tempfile::tempdir().unwrap();
        let mut args = vec![
            "bench",
            "--workloads",
            "fillrandom,readrandom,overwrite,gc,readseq",
            "--keys",
            "400",
            "--reads",
            "200",
            "--updates",
            "400",
            "--segment-size",
            "1MiB",
            "--dir",
            parent.path().to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = tool(&args);
        assert_eq!(code, 0, "{extra:?}: {err}");
        let (_, runs) = lines(&out);
        let s = runs[0]["stats"].clone();
        let (raw, stored) = (f(&s["value_bytes_raw"]), f(&s["value_bytes_stored"]));
        (raw, stored, s, err)
    };
    let (raw, stored, _, err) = run(&["--value-kind", "json", "--value-compression", "zstd"]);
    assert!(raw > 3.0 * stored && stored > 0.0, "{raw} {stored}");
    assert!(err.contains("ratio"), "{err}");
    let (draw, dstored, s, err) = run(&[
        "--value-kind",
        "json",
        "--value-compression",
        "zstd:1",
        "--dictionary",
    ]);
    assert!(err.contains("dictionary of"), "{err}");
    assert_eq!(s["dictionaries"].as_array().unwrap().len(), 1, "{s}");
    assert!(draw > 3.0 * dstored, "{draw} {dstored}");
    let (_, _, s, _) = run(&["--value-compression", "zstd"]);
    assert!(f(&s["values_incompressible"]) >= 400.0, "{s}");
    let (code, _, err) = tool(&["bench", "--keys", "10", "--dictionary"]);
    assert_ne!(code, 0);
    assert!(err.contains("--dictionary needs"), "{err}");
    let (code, _, err) = tool(&["bench", "--keys", "10", "--value-compression", "lz4"]);
    assert_ne!(code, 0);
    assert!(err.contains("zstd"), "{err}");
}
