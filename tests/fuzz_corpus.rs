//! Replays the fuzz corpora and regressions (`fuzz/corpus/<target>/*`,
//! `fuzz/regressions/<target>/*`) through `wisckey::testing::fuzz` without the
//! fuzzer, plus random byte strings from a seeded generator per entry point.
//!
//! `WISCKEY_WRITE_CORPUS=1 cargo test --test fuzz_corpus write_seed_corpus`
//! regenerates the seed corpus (`fuzz/corpus/<target>/seed-N`).

use std::path::{Path, PathBuf};
use wisckey::testing::fuzz;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn replay_dir(kind: &str) -> usize {
    let mut n = 0;
    for target in fuzz::TARGETS {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| fuzz::run(target, &data));
            assert!(r.is_ok(), "{target}: {} panicked", p.display());
            n += 1;
        }
    }
    n
}

#[test]
fn corpus_replays() {
    let n = replay_dir("corpus");
    eprintln!("replayed {n} corpus files");
    assert!(n >= fuzz::TARGETS.len(), "the seed corpus is missing");
}

#[test]
fn regressions_replay() {
    let n = replay_dir("regressions");
    eprintln!("replayed {n} regression files");
}

#[test]
fn seeds_are_valid() {
    // Each seed of a decoder target decodes (the seeds are meant to be valid),
    // except for inputs that are deliberately odd.
    for target in fuzz::TARGETS {
        for (i, s) in fuzz::seeds(target).iter().enumerate() {
            let r = fuzz::run(target, s);
            if *target != "bloom" && *target != "block" {
                assert!(r.is_ok(), "{target} seed {i}: {r:?}");
            }
        }
    }
}

/// Random inputs: pure noise, and seeds with a few random byte changes.
#[test]
fn random_inputs() {
    let cases: u64 = std::env::var("WISCKEY_FUZZ_RANDOM_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    for (ti, target) in fuzz::TARGETS.iter().enumerate() {
        let seeds = fuzz::seeds(target);
        let mut rng = Rng(0x1234_5678 + ti as u64);
        // The model and whole-database decoders are slower per input.
        let n = match *target {
            "model" => cases / 20,
            "sstable" | "footer" | "manifest_file" | "vlog_segment" | "hint_file" => cases / 2,
            _ => cases,
        };
        let mut ok = 0;
        for _ in 0..n {
            let data: Vec<u8> = if rng.below(3) == 0 || seeds.is_empty() {
                let len = rng.below(300) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut d = seeds[rng.below(seeds.len() as u64) as usize].clone();
                for _ in 0..1 + rng.below(4) {
                    match rng.below(4) {
                        0 if !d.is_empty() => {
                            let i = rng.below(d.len() as u64) as usize;
                            d[i] ^= 1 << rng.below(8);
                        }
                        1 if !d.is_empty() => {
                            let i = rng.below(d.len() as u64) as usize;
                            d[i] = rng.next() as u8;
                        }
                        2 => {
                            let i = rng.below(d.len() as u64 + 1) as usize;
                            d.truncate(i);
                        }
                        _ => d.push(rng.next() as u8),
                    }
                }
                d
            };
            let r = std::panic::catch_unwind(|| fuzz::run(target, &data));
            match r {
                Ok(Ok(())) => ok += 1,
                Ok(Err(_)) => {}
                Err(_) => panic!("{target} panicked on {data:?}"),
            }
        }
        eprintln!("{target}: {n} random inputs, {ok} accepted");
    }
}

/// Well-checksummed hints that lie: every seed that installs a hint in the
/// sample database with the checksum left to the entry point (mode bits 0
/// and 1), with one bit flipped at evenly spread places of the hint. The
/// engine may read wrong values through such a hint (it is derived data it
/// trusts once the checksum holds), but must not panic; a flip that makes
/// the hint undecodable or not describe its segment must not change any
/// read (`fuzz::hint_in_db` checks both).
#[test]
fn hint_lies_in_db() {
    let mut n = 0;
    for seed in fuzz::seeds("hint_file") {
        if seed[0] & 3 != 3 {
            continue;
        }
        let body = seed.len() - 1;
        for i in (0..body).step_by((body / 48).max(1)) {
            let mut d = seed.clone();
            d[1 + i] ^= 1 << (i % 8);
            let r = std::panic::catch_unwind(|| fuzz::run("hint_file", &d));
            assert!(r.is_ok(), "hint_file panicked on {d:?}");
            n += 1;
        }
    }
    assert!(n > 100, "only {n} inputs");
}

#[test]
fn write_seed_corpus() {
    if std::env::var_os("WISCKEY_WRITE_CORPUS").is_none() {
        return;
    }
    for target in fuzz::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in fuzz::seeds(target).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
}
