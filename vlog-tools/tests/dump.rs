//! `dump` and `dump-sst` on databases the tests build (an ordered table with
//! inline and separated values, an unordered one, deletes, several segments
//! and SSTables): the JSON fields against what was written, `--key`,
//! `--prefix` and `--values`, damaged and truncated files, garbage files,
//! usage errors and missing files, and the exit codes (0, 1, 2).

use serde_json::Value;
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
        out.status.code().expect("exited, not killed by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every stdout line as a JSON object.
fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_type<'a>(objs: &'a [Value], t: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["type"] == t).collect()
}

/// The names in `dir` ending in `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

/// `users` (ordered): 600 small values `user {i}` (inline), then u0..u9
/// deleted after a flush. `docs` (ordered): 20 values of 3000 bytes
/// (separated). `blobs` (unordered): 300 values of 2000 bytes, b0..b49
/// deleted. 64 KiB segments, so there are several.
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
    let docs = db.table("docs", TableOptions::ordered()).unwrap();
    for i in 0..600u32 {
        users.put(format!("u{i}"), format!("user {i}")).unwrap();
    }
    for i in 0..300u32 {
        blobs
            .put(format!("b{i}"), vec![(i % 200) as u8; 2000])
            .unwrap();
    }
    for i in 0..20u32 {
        docs.put(format!("d{i}"), vec![b'a' + i as u8; 3000])
            .unwrap();
    }
    for i in 0..50u32 {
        blobs.delete(format!("b{i}")).unwrap();
    }
    db.flush().unwrap();
    for i in 0..10u32 {
        users.delete(format!("u{i}")).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
}

/// Every record line of every segment, by key (the newest last), and the
/// number of segments.
fn all_records(d: &str, dir: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for seg in files(dir, ".vlog") {
        let (code, out, err) = tool(&["dump", d, &seg, "--json"]);
        assert_eq!(code, 0, "{seg}: {err}");
        let objs = lines(&out);
        let records = of_type(&objs, "record");
        let summary = objs.last().unwrap();
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["intact"], true);
        assert_eq!(summary["records"], records.len());
        assert_eq!(summary["damaged"].as_array().unwrap().len(), 0);
        // Offsets and lengths tile the file.
        let mut at = 0;
        for r in &records {
            assert_eq!(r["offset"], at, "{seg}");
            at += r["len"].as_u64().unwrap();
        }
        assert_eq!(summary["size"], at);
        for r in records {
            by_key
                .entry(r["key"].as_str().unwrap().to_owned())
                .or_default()
                .push(r.clone());
        }
    }
    by_key
}

#[test]
fn dump_lists_every_record_as_written() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    assert!(files(dir.path(), ".vlog").len() > 3);
    let recs = all_records(d, dir.path());

    let u7 = &recs["u7"];
    assert_eq!(u7.len(), 2, "{u7:?}");
    assert_eq!(u7[0]["kind"], "put");
    assert_eq!(u7[0]["value"], "user 7");
    assert_eq!(u7[0]["value_len"], 6);
    assert_eq!(u7[0]["value_complete"], true);
    assert_eq!(u7[0]["checksum"], "ok");
    assert_eq!(u7[0]["key_hex"], "7537");
    assert_eq!(u7[1]["kind"], "delete");
    assert_eq!(u7[1]["value_len"], 0);
    assert!(u7[1]["seq"].as_u64() > u7[0]["seq"].as_u64());
    assert_eq!(recs["u123"].len(), 1);

    // A separated value, shown abbreviated: its first 32 bytes.
    let b65 = &recs["b65"];
    assert_eq!(b65.len(), 1);
    assert_eq!(b65[0]["value_len"], 2000);
    assert_eq!(b65[0]["value"], format!("{}…", "A".repeat(32)));
    assert_eq!(b65[0]["value_complete"], false);
    assert_eq!(recs["b3"].last().unwrap()["kind"], "delete");
    assert_eq!(recs["d2"][0]["value_len"], 3000);

    // One table id per table, all different.
    let table = |k: &str| recs[k][0]["table"].as_u64().unwrap();
    assert_eq!(table("u1"), table("u599"));
    assert_eq!(table("b1"), table("b299"));
    let ids = [table("u1"), table("b1"), table("d1")];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
}

/// The segment (file name) that holds the first record of `key`.
fn segment_of(d: &str, dir: &Path, key: &str) -> String {
    files(dir, ".vlog")
        .into_iter()
        .find(|seg| {
            let (_, out, _) = tool(&["dump", d, seg, "--json", "--key", key]);
            !of_type(&lines(&out), "record").is_empty()
        })
        .unwrap_or_else(|| panic!("no segment holds {key}"))
}

#[test]
fn dump_filters_by_key_and_prints_whole_values() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let seg = segment_of(d, dir.path(), "b65");

    // Text: one record line, then the summary.
    let (code, out, err) = tool(&["dump", d, &seg, "--key", "b65"]);
    assert_eq!(code, 0, "{err}");
    let text: Vec<&str> = out.lines().collect();
    assert_eq!(text.len(), 2, "{out}");
    assert!(text[0].starts_with('@'), "{out}");
    assert!(text[0].contains(" put table "), "{out}");
    assert!(
        text[0].contains("key \"b65\" value 1.95 KiB [41 41 41 41 41 41 41 41 …]"),
        "{out}"
    );
    assert!(text[0].ends_with(" ok"), "{out}");
    assert!(text[1].starts_with(&format!("{seg}: ")), "{out}");
    assert!(
        text[1].contains("(1 listed)") && text[1].contains("no damage"),
        "{out}"
    );

    // --values: the whole value.
    let (code, out, _) = tool(&["dump", d, &seg, "--key", "b65", "--values", "--json"]);
    assert_eq!(code, 0);
    let objs = lines(&out);
    let r = of_type(&objs, "record");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["value"], "A".repeat(2000));
    assert_eq!(r[0]["value_complete"], true);
    assert_eq!(objs.last().unwrap()["listed"], 1);

    // The segment by number and by path name the same file.
    let number = seg.trim_end_matches(".vlog").trim_start_matches('0');
    let (_, by_number, _) = tool(&["dump", d, number, "--key", "b65"]);
    let path = dir.path().join(&seg);
    let (_, by_path, _) = tool(&["dump", d, path.to_str().unwrap(), "--key", "b65"]);
    assert_eq!(by_number, out_text(d, &seg));
    assert_eq!(by_path, by_number);

    // --prefix.
    let (code, out, _) = tool(&["dump", d, &seg, "--prefix", "b6", "--json"]);
    assert_eq!(code, 0);
    let objs = lines(&out);
    let keys = of_type(&objs, "record");
    assert!(!keys.is_empty());
    assert!(keys
        .iter()
        .all(|r| r["key"].as_str().unwrap().starts_with("b6")));
}

fn out_text(d: &str, seg: &str) -> String {
    tool(&["dump", d, seg, "--key", "b65"]).1
}

#[test]
fn dump_sst_lists_inline_values_pointers_and_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let ssts = files(dir.path(), ".sst");
    assert!(!ssts.is_empty());
    let segments = files(dir.path(), ".vlog");
    let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut blocks = 0;
    for sst in &ssts {
        let (code, out, err) = tool(&["dump-sst", d, sst, "--json"]);
        assert_eq!(code, 0, "{sst}: {err}");
        let objs = lines(&out);
        let entries = of_type(&objs, "entry");
        let summary = objs.last().unwrap();
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["intact"], true);
        assert_eq!(summary["entries"], entries.len());
        assert_eq!(summary["damaged_blocks"], 0);
        let block_lines = of_type(&objs, "block");
        assert_eq!(summary["blocks"], block_lines.len());
        blocks += block_lines.len();
        for b in block_lines {
            assert_eq!(b["checksum"], "ok");
        }
        for e in entries {
            assert_eq!(e["problem"], Value::Null);
            by_key
                .entry(e["key"].as_str().unwrap().to_owned())
                .or_default()
                .push(e.clone());
        }
    }
    assert!(blocks > 2, "{blocks} blocks");
    let u42 = &by_key["u42"][0];
    assert_eq!(u42["kind"], "inline");
    assert_eq!(u42["value"], "user 42");
    assert_eq!(u42["value_len"], 7);
    assert_eq!(u42["pointer"], Value::Null);
    let u3 = &by_key["u3"];
    assert!(u3.iter().any(|e| e["kind"] == "tombstone"), "{u3:?}");
    let d5 = &by_key["d5"][0];
    assert_eq!(d5["kind"], "pointer");
    assert_eq!(d5["value_len"], 3000);
    let seg = d5["pointer"]["segment"].as_u64().unwrap();
    let name = format!("{seg:06}.vlog");
    assert!(segments.contains(&name), "{name} not in {segments:?}");
    // The pointer names the record of d5 in that segment.
    let (_, out, _) = tool(&["dump", d, &name, "--key", "d5", "--json"]);
    let objs = lines(&out);
    let rec = of_type(&objs, "record")[0];
    assert_eq!(rec["offset"], d5["pointer"]["offset"]);
    assert_eq!(rec["len"], d5["pointer"]["len"]);
    assert_eq!(rec["seq"], d5["seq"]);

    // Text, filtered.
    let sst = ssts
        .iter()
        .find(|s| {
            tool(&["dump-sst", d, s, "--key", "d5"])
                .1
                .contains("\"d5\"")
        })
        .unwrap();
    let (code, out, _) = tool(&["dump-sst", d, sst, "--key", "d5"]);
    assert_eq!(code, 0);
    let text: Vec<&str> = out.lines().collect();
    assert_eq!(text.len(), 2, "{out}");
    assert!(
        text[0].contains(&format!("key \"d5\" pointer segment {seg} @")),
        "{out}"
    );
    assert!(text[0].contains("(value 2.93 KiB)"), "{out}");
    assert!(
        text[1].contains("(1 listed)") && text[1].contains("no damage"),
        "{out}"
    );
}

/// Flips one byte of `path` at `at`.
fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn dump_reports_a_damaged_record_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let seg = files(dir.path(), ".vlog")[1].clone();
    let (_, out, _) = tool(&["dump", d, &seg, "--json"]);
    let before = lines(&out);
    let records = of_type(&before, "record");
    assert!(records.len() > 4);
    let victim = records[records.len() / 2];
    let at = victim["offset"].as_u64().unwrap();
    let len = victim["len"].as_u64().unwrap();
    flip(&dir.path().join(&seg), at + len / 2);

    let (code, out, _) = tool(&["dump", d, &seg, "--json"]);
    assert_eq!(code, 1, "{out}");
    let after = lines(&out);
    let damaged = of_type(&after, "damaged");
    assert_eq!(damaged.len(), 1, "{out}");
    assert_eq!(damaged[0]["offset"], at);
    assert_eq!(damaged[0]["len"], len);
    assert_eq!(damaged[0]["checksum"], "bad");
    assert_eq!(damaged[0]["reason"], "record checksum mismatch");
    assert_eq!(damaged[0]["header"]["seq"], victim["seq"]);
    // Every other record is still listed, the ones after it included.
    let kept: Vec<&Value> = records
        .iter()
        .copied()
        .filter(|r| r["offset"] != at)
        .collect();
    let listed = of_type(&after, "record");
    assert_eq!(listed.len(), kept.len());
    for (a, b) in listed.iter().zip(&kept) {
        assert_eq!(a, b);
    }
    let summary = after.last().unwrap();
    assert_eq!(summary["intact"], false);
    assert_eq!(summary["damaged"][0]["offset"], at);

    let (code, out, _) = tool(&["dump", d, &seg]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "@{at} len {len} DAMAGED: record checksum mismatch"
        )),
        "{out}"
    );
    assert!(out.contains("1 damaged range(s)"), "{out}");
}

#[test]
fn dump_sst_reports_a_damaged_block_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    // The table with the most blocks.
    let (sst, before) = files(dir.path(), ".sst")
        .into_iter()
        .map(|s| {
            let objs = lines(&tool(&["dump-sst", d, &s, "--json"]).1);
            (s, objs)
        })
        .max_by_key(|(_, objs)| of_type(objs, "block").len())
        .unwrap();
    let blocks = of_type(&before, "block");
    assert!(blocks.len() >= 2, "{before:?}");
    let victim = blocks[0];
    let at = victim["offset"].as_u64().unwrap() + victim["size"].as_u64().unwrap() / 2;
    flip(&dir.path().join(&sst), at);

    let (code, out, _) = tool(&["dump-sst", d, &sst, "--json"]);
    assert_eq!(code, 1, "{out}");
    let after = lines(&out);
    let now = of_type(&after, "block");
    assert_eq!(now.len(), blocks.len());
    assert_eq!(now[0]["checksum"], "bad");
    assert!(
        now[0]["damage"].as_str().unwrap().contains("checksum"),
        "{out}"
    );
    assert_eq!(now[1]["checksum"], "ok");
    let entries = of_type(&after, "entry");
    assert!(entries.iter().all(|e| e["block"] != 0));
    let expected: usize = blocks[1..]
        .iter()
        .map(|b| b["entries"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(entries.len(), expected);
    let summary = after.last().unwrap();
    assert_eq!(summary["damaged_blocks"], 1);
    assert_eq!(summary["intact"], false);

    let (code, out, _) = tool(&["dump-sst", d, &sst]);
    assert_eq!(code, 1);
    assert!(out.contains("block 0 @"), "{out}");
    assert!(
        out.contains("DAMAGED: data block: checksum mismatch"),
        "{out}"
    );
}

#[test]
fn truncated_files_are_damage() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let seg = files(dir.path(), ".vlog")[0].clone();
    let path = dir.path().join(&seg);
    let (_, out, _) = tool(&["dump", d, &seg, "--json"]);
    let records = of_type(&lines(&out), "record").len();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (code, out, _) = tool(&["dump", d, &seg, "--json"]);
    assert_eq!(code, 1, "{out}");
    let objs = lines(&out);
    assert_eq!(of_type(&objs, "record").len(), records - 1);
    let damaged = of_type(&objs, "damaged");
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0]["reason"], "record is cut short");
    assert_eq!(
        damaged[0]["offset"].as_u64().unwrap() + damaged[0]["len"].as_u64().unwrap(),
        len - 3
    );

    let sst = files(dir.path(), ".sst")[0].clone();
    let path = dir.path().join(&sst);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (code, out, _) = tool(&["dump-sst", d, &sst, "--json"]);
    assert_eq!(code, 1, "{out}");
    let objs = lines(&out);
    assert_eq!(of_type(&objs, "damaged").len(), 1, "{out}");
    assert!(of_type(&objs, "entry").is_empty());
    let summary = objs.last().unwrap();
    assert_eq!(
        (summary["blocks"].as_u64(), summary["intact"].as_bool()),
        (Some(0), Some(false))
    );
    let (code, out, _) = tool(&["dump-sst", d, &sst]);
    assert_eq!(code, 1);
    assert!(out.contains("DAMAGED: footer"), "{out}");
}

#[test]
fn garbage_files_never_crash_the_dump() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (i, size) in [0usize, 1, 30, 64, 65, 1000, 70_000]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let seg = format!("{:06}.vlog", 100 + i);
        let sst = format!("{:06}.sst", 200 + i);
        std::fs::write(dir.path().join(&seg), &bytes).unwrap();
        std::fs::write(dir.path().join(&sst), &bytes).unwrap();
        for (cmd, file) in [("dump", &seg), ("dump-sst", &sst)] {
            for json in [false, true] {
                let mut args = vec![cmd, d, file.as_str()];
                if json {
                    args.push("--json");
                }
                let (code, out, err) = tool(&args);
                // An empty segment is an intact one; anything else is damage.
                let want = if size == 0 && cmd == "dump" { 0 } else { 1 };
                assert_eq!(code, want, "{cmd} {size} bytes: {out} {err}");
                if json {
                    let objs = lines(&out);
                    assert_eq!(objs.last().unwrap()["type"], "summary");
                }
            }
        }
    }
}

#[test]
fn usage_errors_exit_2_and_missing_files_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let seg = files(dir.path(), ".vlog")[0].clone();
    for bad in [
        vec!["dump"],
        vec!["dump", d],
        vec!["dump", d, &seg, "--bogus"],
        vec!["dump", d, &seg, "--key", "a", "--prefix", "b"],
        vec!["dump-sst", d],
    ] {
        let (code, _, err) = tool(&bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    for cmd in ["dump", "dump-sst"] {
        let (code, out, _) = tool(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Exit status: 0"), "{out}");
        assert!(out.contains("2 a usage error"), "{out}");

        let (code, out, err) = tool(&[cmd, d, "424242"]);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(
            err.starts_with("error: ") && err.contains("424242"),
            "{err}"
        );
        let (code, out, _) = tool(&[cmd, d, "424242", "--json"]);
        assert_eq!(code, 1);
        let objs = lines(&out);
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0]["type"], "error");
        assert!(objs[0]["error"].as_str().unwrap().contains("424242"));
        let (code, _, err) = tool(&[cmd, "/no/such/dir", "1"]);
        assert_eq!(code, 1, "{err}");
    }
    // The name of another kind of file.
    let sst = files(dir.path(), ".sst")[0].clone();
    let (code, _, err) = tool(&["dump", d, &sst]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a segment"), "{err}");
}

#[test]
fn dump_reads_gc_segments_by_number_and_name() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let db = Db::open(
        dir.path(),
        Options::default()
            .segment_size(64 << 10)
            .background_gc(false),
    )
    .unwrap();
    db.gc(wisckey::GcOptions::default().all_sealed(true))
        .unwrap();
    db.close().unwrap();
    let d = dir.path().to_str().unwrap();
    let gc = files(dir.path(), ".gc.vlog");
    assert!(!gc.is_empty(), "no GC segment");
    let mut keys = Vec::new();
    for name in &gc {
        let number = name.trim_end_matches(".gc.vlog").trim_start_matches('0');
        let (code, by_number, err) = tool(&["dump", d, number, "--json"]);
        assert_eq!(code, 0, "{err}");
        let (_, by_name, _) = tool(&["dump", d, name, "--json"]);
        assert_eq!(by_number, by_name);
        let objs = lines(&by_name);
        let summary = objs.last().unwrap();
        assert_eq!(summary["kind"], "gc");
        assert_eq!(summary["segment"].as_u64().unwrap().to_string(), number);
        for r in of_type(&objs, "record") {
            keys.push(r["key"].as_str().unwrap().to_owned());
        }
    }
    // The live values moved: b65 (separated, unordered) and d5 (separated,
    // ordered) are in the GC segments, the deleted b3 is not.
    for k in ["b65", "d5"] {
        assert!(keys.iter().any(|x| x == k), "{k} not moved: {keys:?}");
    }
    assert!(!keys.iter().any(|x| x == "b3"));
    let sst_pointers: Vec<u64> = files(dir.path(), ".sst")
        .iter()
        .flat_map(|s| {
            let objs = lines(&tool(&["dump-sst", d, s, "--json", "--key", "d5"]).1);
            of_type(&objs, "entry")
                .iter()
                .filter_map(|e| e["pointer"]["segment"].as_u64())
                .collect::<Vec<_>>()
        })
        .collect();
    // The index was repointed at a GC segment.
    let gc_numbers: Vec<u64> = gc
        .iter()
        .map(|n| n.trim_end_matches(".gc.vlog").parse().unwrap())
        .collect();
    assert!(
        sst_pointers.iter().any(|p| gc_numbers.contains(p)),
        "{sst_pointers:?} {gc_numbers:?}"
    );
}
