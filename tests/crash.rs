//! Crash test: a child process (this test binary, running the ignored test
//! `child_writer`) writes to the database and appends every acknowledged
//! write to an oracle file outside the database directory; the parent kills
//! it with SIGKILL at a random moment, reopens the database and checks that
//! every acknowledged write is there (the one write in flight may or may not
//! be, but whole), then lets the next child continue on the recovered
//! database.
//!
//! The database has two tables over the same key space: the default
//! (ordered) table and the unordered (Bitcask-style) table `u`. A quarter
//! of the cycles (`cycle % 4 == 1`) make the unordered table the main load
//! (puts, deletes, batches that mix both tables); the others write mostly to
//! the ordered table and a little to the unordered one. A third of the
//! cycles (`cycle % 3 == 0`) also force GC passes, so kills land during
//! relocation of both tables' records and while GC seals segments and
//! writes their hint files. The parent checks the unordered table with point
//! reads (it has no scans) exactly like the ordered one.
//!
//! `WISCKEY_CRASH_CYCLES` sets the number of kill cycles (default 150; CI runs the suite twice, one backend each);
//! `WISCKEY_CRASH_SEED` fixes the random seed.

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wisckey::{Db, GcOptions, Options, Table, TableOptions, WriteBatch, WriteOptions};

const ENV_DIR: &str = "WISCKEY_CRASH_DIR";
const ENV_ORACLE: &str = "WISCKEY_CRASH_ORACLE";
const ENV_SEED: &str = "WISCKEY_CRASH_CHILD_SEED";
const ENV_CYCLE: &str = "WISCKEY_CRASH_CYCLE";
const NUM_KEYS: u32 = 300;
/// The unordered table.
const UNORDERED: &str = "u";

/// Whether the child of `cycle` (1-based) writes mainly to the unordered
/// table.
fn unordered_cycle(cycle: u64) -> bool {
    cycle % 4 == 1
}

/// Whether the child of `cycle` (1-based) forces GC passes.
fn gc_cycle(cycle: u64) -> bool {
    cycle.is_multiple_of(3)
}

/// Which table a key is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tab {
    Ordered,
    Unordered,
}

const TABS: [Tab; 2] = [Tab::Ordered, Tab::Unordered];

fn opts() -> Options {
    Options::default()
        .memtable_size(32 << 10)
        .segment_size(256 << 10)
        .l0_compaction_trigger(2)
        .target_file_size(16 << 10)
        .base_level_size(32 << 10)
        .block_size(256)
        .gc_interval(std::time::Duration::from_millis(5))
}

fn key(k: u32) -> Vec<u8> {
    format!("key{k:05}").into_bytes()
}

/// The value written for `k` by the write of generation `gen`: `size`
/// bytes, or more where `size` is shorter than the `k:gen:` prefix (which
/// is never cut, so that two generations never give the same value).
fn value(k: u32, gen: u64, size: usize) -> Vec<u8> {
    let mut v = format!("{k}:{gen}:").into_bytes();
    let size = size.max(v.len());
    let mut x = gen.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(k);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v.truncate(size);
    v
}

/// One write of an op: a put of (gen, size) or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum W {
    Put(u64, usize),
    Del,
}

/// A key: its table and number.
type Key = (Tab, u32);
type State = BTreeMap<Key, (u64, usize)>;

fn apply(state: &mut State, items: &[(Key, W)]) {
    for (k, w) in items {
        match w {
            W::Put(g, s) => {
                state.insert(*k, (*g, *s));
            }
            W::Del => {
                state.remove(k);
            }
        }
    }
}

/// The child: writes until killed.
#[test]
#[ignore = "child process of kill_and_recover"]
fn child_writer() {
    let (Ok(dir), Ok(oracle)) = (std::env::var(ENV_DIR), std::env::var(ENV_ORACLE)) else {
        return;
    };
    let seed: u64 = std::env::var(ENV_SEED).unwrap().parse().unwrap();
    let cycle: u64 = std::env::var(ENV_CYCLE).unwrap().parse().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&oracle)
        .unwrap();
    let db = Db::open(&dir, opts()).unwrap();
    let u = db.table(UNORDERED, TableOptions::unordered()).unwrap();
    // The share of writes that go to the unordered table.
    let p_unordered = if unordered_cycle(cycle) { 0.85 } else { 0.05 };
    // A third of the cycles also force GC passes (and the compactions that
    // feed them) while the writer goes on, so kills land mid-pass too.
    if gc_cycle(cycle) {
        let db = db.clone();
        std::thread::spawn(move || {
            // A failed pass ends the child at once (a panic would end only
            // this thread), so that the parent sees it exit by itself.
            let fail = |what: &str, e: wisckey::Error| -> ! {
                eprintln!("forced {what} failed: {e}");
                std::process::abort()
            };
            for round in 0u64.. {
                if let Err(e) = db.compact() {
                    fail("compaction", e);
                }
                let opts = GcOptions::default()
                    .max_segments(3)
                    .min_garbage_ratio(0.0)
                    .all_sealed(round % 4 == 0);
                if let Err(e) = db.gc(opts) {
                    fail("GC pass", e);
                }
            }
        });
    }
    let mut gen = cycle * 1_000_000;
    for op_id in 0u64.. {
        let n = if rng.gen_bool(0.6) {
            1
        } else {
            rng.gen_range(2..8)
        };
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let tab = if rng.gen_bool(p_unordered) {
                Tab::Unordered
            } else {
                Tab::Ordered
            };
            let k = (tab, rng.gen_range(0..NUM_KEYS));
            let w = if rng.gen_bool(0.15) {
                W::Del
            } else {
                gen += 1;
                let size = if rng.gen_bool(0.3) {
                    rng.gen_range(4096..65536)
                } else {
                    rng.gen_range(1..200)
                };
                W::Put(gen, size)
            };
            items.push((k, w));
        }
        let sync = rng.gen_bool(0.2);
        let mut line = format!("B {op_id}");
        for ((t, k), w) in &items {
            let t = if *t == Tab::Unordered { "u" } else { "" };
            match w {
                W::Put(g, s) => line.push_str(&format!(" {t}{k},{g},{s}")),
                W::Del => line.push_str(&format!(" {t}{k},D")),
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes()).unwrap();
        let r = if n == 1 && !sync {
            let ((t, k), w) = items[0];
            match (t, w) {
                (Tab::Ordered, W::Put(g, s)) => db.put(key(k), value(k, g, s)),
                (Tab::Ordered, W::Del) => db.delete(key(k)),
                (Tab::Unordered, W::Put(g, s)) => u.put(key(k), value(k, g, s)),
                (Tab::Unordered, W::Del) => u.delete(key(k)),
            }
        } else {
            let mut b = WriteBatch::new();
            for ((t, k), w) in &items {
                match (t, w) {
                    (Tab::Ordered, W::Put(g, s)) => b.put(key(*k), value(*k, *g, *s)),
                    (Tab::Ordered, W::Del) => b.delete(key(*k)),
                    (Tab::Unordered, W::Put(g, s)) => b.put_in(&u, key(*k), value(*k, *g, *s)),
                    (Tab::Unordered, W::Del) => b.delete_in(&u, key(*k)),
                };
            }
            db.write(b, WriteOptions::default().sync(sync))
        };
        r.unwrap();
        out.write_all(format!("A {op_id}\n").as_bytes()).unwrap();
    }
}

/// The acknowledged ops of one child run and the one in flight, if any.
type Op = Vec<(Key, W)>;

fn parse_oracle(path: &Path) -> (Vec<Op>, Option<Op>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut acked = Vec::new();
    let mut pending: Option<(u64, Op)> = None;
    // Only whole lines: a line cut by the kill was not written.
    let whole = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    for line in whole.lines() {
        let mut parts = line.split(' ');
        let tag = parts.next().unwrap();
        let id: u64 = parts.next().unwrap().parse().unwrap();
        match tag {
            "B" => {
                assert!(pending.is_none(), "two ops in flight at {line}");
                let items = parts
                    .map(|p| {
                        let f: Vec<&str> = p.split(',').collect();
                        let k = match f[0].strip_prefix('u') {
                            Some(k) => (Tab::Unordered, k.parse().unwrap()),
                            None => (Tab::Ordered, f[0].parse().unwrap()),
                        };
                        if f[1] == "D" {
                            (k, W::Del)
                        } else {
                            (k, W::Put(f[1].parse().unwrap(), f[2].parse().unwrap()))
                        }
                    })
                    .collect();
                pending = Some((id, items));
            }
            "A" => {
                let (pid, items) = pending.take().expect("ack without begin");
                assert_eq!(pid, id);
                acked.push(items);
            }
            _ => panic!("bad oracle line {line:?}"),
        }
    }
    (acked, pending.map(|p| p.1))
}

fn matches(db_val: &Option<Vec<u8>>, (_, k): Key, want: Option<&(u64, usize)>) -> bool {
    match (db_val, want) {
        (None, None) => true,
        (Some(v), Some(&(g, s))) => *v == value(k, g, s),
        _ => false,
    }
}

fn describe(v: &Option<Vec<u8>>) -> String {
    match v {
        None => "absent".into(),
        Some(v) => {
            let head: Vec<u8> = v.iter().take(20).copied().collect();
            format!("{} bytes {:?}", v.len(), String::from_utf8_lossy(&head))
        }
    }
}

/// Checks the reopened database against `state` (+ the op in flight);
/// returns the state the database is actually in.
fn verify(dir: &Path, state: &State, inflight: Option<&[(Key, W)]>, cycle: u32) -> State {
    let db = Db::open(dir, opts()).unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
    // Created by the first child, unless it was killed before (then this
    // creates it, empty, as the state says).
    let u: Table = db
        .table(UNORDERED, TableOptions::unordered())
        .unwrap_or_else(|e| panic!("cycle {cycle}: opening the unordered table: {e}"));
    let mut seen: BTreeMap<Key, Option<Vec<u8>>> = BTreeMap::new();
    for tab in TABS {
        let table = match tab {
            Tab::Ordered => db.default_table(),
            Tab::Unordered => u.clone(),
        };
        for k in 0..NUM_KEYS {
            let v = table
                .get(key(k))
                .unwrap_or_else(|e| panic!("cycle {cycle}: get {tab:?} {k}: {e}"))
                .map(|v| v.into_vec());
            seen.insert((tab, k), v);
        }
    }
    // multi_get of the unordered table agrees with its gets.
    let keys: Vec<Vec<u8>> = (0..NUM_KEYS).map(key).collect();
    let multi = u
        .multi_get(&keys)
        .unwrap_or_else(|e| panic!("cycle {cycle}: multi_get: {e}"));
    for (k, v) in (0..NUM_KEYS).zip(multi) {
        assert!(
            v.map(|v| v.into_vec()) == seen[&(Tab::Unordered, k)],
            "cycle {cycle}: multi_get of unordered key {k} differs from get"
        );
    }
    drop(u);
    let mut new_state = state.clone();
    if let Some(items) = inflight {
        apply(&mut new_state, items);
    }
    let mut result = state.clone();
    if let Some(items) = inflight {
        let keys: Vec<Key> = items.iter().map(|(k, _)| *k).collect();
        let all_old = keys.iter().all(|k| matches(&seen[k], *k, state.get(k)));
        let all_new = keys.iter().all(|k| matches(&seen[k], *k, new_state.get(k)));
        assert!(
            all_old || all_new,
            "cycle {cycle}: the op in flight {items:?} is partly applied: {:?}",
            keys.iter()
                .map(|k| (k, describe(&seen[k])))
                .collect::<Vec<_>>()
        );
        if all_new {
            result = new_state;
        }
    }
    for (k, v) in &seen {
        assert!(
            matches(v, *k, result.get(k)),
            "cycle {cycle}: key {k:?}: found {}, acknowledged {:?}",
            describe(v),
            result.get(k)
        );
    }
    // Full scans, both ways, agree with the point reads.
    let fwd: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|kv| kv.map(|(k, v)| (k, v.into_vec())))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cycle {cycle}: scan: {e}"));
    let expect: Vec<(Vec<u8>, Vec<u8>)> = result
        .range((Tab::Ordered, 0)..=(Tab::Ordered, u32::MAX))
        .map(|((_, k), (g, s))| (key(*k), value(*k, *g, *s)))
        .collect();
    assert!(fwd == expect, "cycle {cycle}: forward scan differs");
    let mut rev: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .rev()
        .map(|kv| kv.map(|(k, v)| (k, v.into_vec())))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cycle {cycle}: reverse scan: {e}"));
    rev.reverse();
    assert!(rev == expect, "cycle {cycle}: reverse scan differs");
    drop(db);
    result
}

#[test]
fn kill_and_recover() {
    let cycles: u32 = std::env::var("WISCKEY_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("WISCKEY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill_and_recover: {cycles} cycles, WISCKEY_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let mut state = State::new();
    let started = Instant::now();
    let (mut total_acked, mut cycles_with_inflight) = (0usize, 0u32);
    let mut kills_with_gc_segments = 0u32;
    let (mut unordered_cycles, mut gc_cycles, mut unordered_gc_cycles) = (0u32, 0u32, 0u32);
    let (mut kills_with_hints, mut kills_with_gc_hints) = (0u32, 0u32);
    // Acknowledged writes (batch items) per table.
    let mut acked_items = [0usize; 2];
    for cycle in 0..cycles {
        let child_cycle = u64::from(cycle) + 1;
        unordered_cycles += u32::from(unordered_cycle(child_cycle));
        gc_cycles += u32::from(gc_cycle(child_cycle));
        unordered_gc_cycles += u32::from(unordered_cycle(child_cycle) && gc_cycle(child_cycle));
        let oracle: PathBuf = tmp.path().join(format!("oracle-{cycle}"));
        let log = std::fs::File::create(tmp.path().join(format!("child-{cycle}.log"))).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_writer", "--ignored", "--nocapture"])
            .env(ENV_DIR, &dir)
            .env(ENV_ORACLE, &oracle)
            .env(ENV_SEED, rng.gen::<u64>().to_string())
            .env(ENV_CYCLE, child_cycle.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..300)));
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(tmp.path().join(format!("child-{cycle}.log")));
            panic!("cycle {cycle}: the child exited by itself ({status}):\n{log:?}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let gc_segments: Vec<&String> = names.iter().filter(|n| n.ends_with(".gc.vlog")).collect();
        kills_with_gc_segments += u32::from(!gc_segments.is_empty());
        kills_with_hints += u32::from(names.iter().any(|n| n.ends_with(".hint")));
        // A hint of a GC segment: `NNNNNN.hint` beside `NNNNNN.gc.vlog`.
        kills_with_gc_hints += u32::from(gc_segments.iter().any(|g| {
            let hint = format!("{}.hint", g.trim_end_matches(".gc.vlog"));
            names.contains(&hint)
        }));
        let (acked, inflight) = parse_oracle(&oracle);
        total_acked += acked.len();
        for items in &acked {
            apply(&mut state, items);
            for ((t, _), _) in items {
                acked_items[*t as usize] += 1;
            }
        }
        cycles_with_inflight += u32::from(inflight.is_some());
        state = verify(&dir, &state, inflight.as_deref(), cycle);
    }
    let live_unordered = state.keys().filter(|(t, _)| *t == Tab::Unordered).count();
    eprintln!(
        "kill_and_recover: {total_acked} acknowledged ops ({} writes to the ordered table, {} to the unordered one), {cycles_with_inflight} kills with an op in flight, {kills_with_gc_segments} kills with GC segments on disk, {} live keys ({live_unordered} unordered), {:?}",
        acked_items[0],
        acked_items[1],
        state.len(),
        started.elapsed()
    );
    eprintln!(
        "kill_and_recover: {unordered_cycles} cycles on the unordered table ({unordered_gc_cycles} of them with GC forced), {gc_cycles} cycles with GC forced, {kills_with_hints} kills with hint files on disk ({kills_with_gc_hints} with a hint of a GC segment)"
    );
    if cycles >= 30 {
        assert!(kills_with_gc_segments > 0, "GC never ran in the children");
        assert!(kills_with_hints > 0, "no hint file was ever written");
        assert!(
            kills_with_gc_hints > 0,
            "no kill found a hint file of a GC segment"
        );
        assert!(
            cycles_with_inflight > cycles / 2,
            "few kills landed with a write in flight: {cycles_with_inflight} of {cycles}"
        );
        assert!(
            acked_items[1] > acked_items[0] / 10,
            "too few writes to the unordered table"
        );
    }
    assert!(total_acked > 0, "the children never wrote anything");
}
