//! The summary tables `bench` prints (without `--json`): per phase, one row
//! per engine for throughput and latency, one for amplification.

use super::figures::{EngineRun, Layers, PhaseReport};
use super::BenchArgs;
use crate::units::bytes;

fn opt(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".into(),
    }
}

fn us(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The layers as table cells: engine, process, block device, flash.
fn layer_cells(l: &Layers) -> [String; 4] {
    let flash = match (l.flash_host, l.flash_media) {
        (None, None) => "-".into(),
        (h, m) => format!("{}/{}", opt(h, 2), opt(m, 2)),
    };
    [
        opt(l.engine, 3),
        opt(l.process, 3),
        opt(l.block_device, 3),
        flash,
    ]
}

/// Prints the tables of `runs` (one engine or several).
pub fn print(runs: &[EngineRun], args: &BenchArgs) {
    println!(
        "bench: {} keys x {} B values ({}), {} client thread(s), fsync per write {}{}",
        args.keys,
        args.value_size,
        match args.value_dist {
            super::ValueDist::Fixed => "fixed",
            super::ValueDist::Uniform => "uniform sizes",
        },
        args.threads,
        if args.sync { "on" } else { "off" },
        args.duration
            .map(|d| format!(", phases cut at {d} s"))
            .unwrap_or_default()
    );
    for r in runs {
        println!("  {:<13} {}", r.run.engine, r.run.describe);
    }
    if let Some(r) = runs.first() {
        println!("  block device  {}", r.run.block_device);
        println!("  flash         {}", r.run.flash);
    }
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        for p in &r.phases {
            if !names.contains(&p.phase.as_str()) {
                names.push(&p.phase);
            }
        }
    }
    let base = runs
        .first()
        .map(|r| r.run.engine.clone())
        .unwrap_or_default();
    for name in names {
        let rows: Vec<&PhaseReport> = runs
            .iter()
            .filter_map(|r| r.phases.iter().find(|p| p.phase == name))
            .collect();
        let base_ops = rows
            .iter()
            .find(|p| p.engine == base)
            .map(|p| p.ops_per_sec);
        let cold = rows.iter().any(|p| p.cold);
        println!();
        println!(
            "== {name}{}  ({} ops)",
            if cold { " (cold)" } else { "" },
            rows.first().map_or(0, |p| p.ops)
        );
        println!(
            "{:<13} {:>11} {:>9} {:>7} {:>6}  {:>8} {:>8} {:>8} {:>9}  latency (µs)",
            "engine", "ops/s", "MB/s", "secs", "ratio", "p50", "p99", "p99.9", "max"
        );
        for p in &rows {
            let ratio = match (base_ops, runs.len() > 1) {
                (Some(b), true) if b > 0.0 => format!("{:.2}", p.ops_per_sec / b),
                _ => "".into(),
            };
            let mut kinds: Vec<(&String, &super::figures::Latency)> = p.latency.iter().collect();
            kinds.sort_by_key(|k| std::cmp::Reverse(k.1.count));
            let first = kinds.first();
            println!(
                "{:<13} {:>11} {:>9.1} {:>7.2} {:>6}  {}",
                p.engine,
                thousands(p.ops_per_sec),
                p.mb_per_sec,
                p.secs,
                ratio,
                first.map_or(String::new(), |(k, l)| format!(
                    "{:>8} {:>8} {:>8} {:>9}  {k}",
                    us(l.p50_us),
                    us(l.p99_us),
                    us(l.p999_us),
                    us(l.max_us)
                ))
            );
            for (k, l) in kinds.iter().skip(1) {
                println!(
                    "{:<13} {:>11} {:>9} {:>7} {:>6}  {:>8} {:>8} {:>8} {:>9}  {k} ({} ops)",
                    "",
                    "",
                    "",
                    "",
                    "",
                    us(l.p50_us),
                    us(l.p99_us),
                    us(l.p999_us),
                    us(l.max_us),
                    l.count
                );
            }
        }
        println!(
            "{:<13} {:>7} {:>7} {:>7} {:>9}   {:>7} {:>7}   {:>6} {:>10}  {:>9}",
            "", "WA eng", "proc", "block", "flash", "RA proc", "block", "SA", "db size", "peak RSS"
        );
        for p in &rows {
            let [e, pr, b, f] = layer_cells(&p.write_amplification);
            let ra = &p.read_amplification;
            println!(
                "{:<13} {:>7} {:>7} {:>7} {:>9}   {:>7} {:>7}   {:>6} {:>10}  {:>9}",
                p.engine,
                e,
                pr,
                b,
                f,
                opt(ra.process, 3),
                opt(ra.block_device, 3),
                opt(p.space.space_amplification, 3),
                bytes(p.space.db_bytes),
                p.peak_rss_bytes.map(bytes).unwrap_or_else(|| "-".into())
            );
        }
        for p in &rows {
            if let Some(g) = &p.gc {
                if g.passes > 0 || g.reached_target.is_some() {
                    println!(
                        "{:<13} GC: {} passes, read {}, moved {}, freed {}, GC write amp {}; vLog space amp {:.3} at the end, {} at most; writers waited for GC {:.1} s ({} stalls){}",
                        p.engine,
                        g.passes,
                        bytes(g.bytes_read),
                        bytes(g.bytes_moved),
                        bytes(g.bytes_freed),
                        opt(g.gc_write_amplification, 3),
                        g.vlog_space_amplification_end,
                        opt(g.vlog_space_amplification_max, 3),
                        g.stall_secs,
                        g.write_stalls,
                        match g.reached_target {
                            Some(true) => format!(", under the target after {:.1} s of waiting", g.wait_secs),
                            Some(false) => format!(", NOT under the target after {:.1} s of waiting", g.wait_secs),
                            None => String::new(),
                        }
                    );
                }
            }
            if let Some(r) = &p.point_reads {
                println!(
                    "{:<13} point reads: {} gets, {} data blocks and {} values read from files: {:.3} reads per get; block cache hit rate {}, {} cached, index and filters {}",
                    p.engine,
                    r.gets,
                    r.block_reads,
                    r.vlog_reads,
                    r.reads_per_get,
                    opt(r.block_cache_hit_rate, 3),
                    bytes(r.block_cache_bytes),
                    bytes(r.index_filter_bytes)
                );
            }
            for n in &p.notes {
                println!("{:<13} note: {n}", p.engine);
            }
        }
    }
    for r in runs {
        for s in &r.run.skipped {
            println!("{:<13} {} skipped: {}", r.run.engine, s.phase, s.reason);
        }
        if !r.run.cold_failures.is_empty() {
            println!(
                "{:<13} WARNING: --cold asked, but the page cache could not be dropped before: {} (those ran warm)",
                r.run.engine,
                r.run.cold_failures.join(", ")
            );
        }
    }
    println!();
    println!(
        "WA: bytes written per user byte, by the engine's counters (eng), /proc/self/io (proc), the block \
         device (block, every process on it), SMART host/media (flash); RA: bytes read per byte returned; \
         SA: directory bytes per live user byte; ratio: ops/s over the first engine's"
    );
}
