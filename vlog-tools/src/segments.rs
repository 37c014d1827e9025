//! `segments DIR`: where the garbage is. One row per vLog segment (file,
//! kind, size, live ratio by the discard statistics), with `--exact` the
//! live bytes counted from the index next to them, and with `--plot` a
//! picture: the segments' live and garbage bytes as bars in log order, and
//! the histogram of their live ratios.

use crate::admin::open_read_only;
use crate::units::bytes;
use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct SegmentsArgs {
    /// The database directory (must already hold a database: a CURRENT file).
    dir: PathBuf,
    /// Count the exact live bytes of each segment from the index (keys and
    /// pointers only, no value read: a walk of every SSTable's keys) and show
    /// how far the discard statistics are from them.
    #[arg(long)]
    exact: bool,
    /// Draw the segments' live and garbage bytes in log order, and the
    /// histogram of their live ratios, into this file (.svg or .png).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    plot: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// One segment of the report.
#[derive(Debug, Serialize)]
struct Row {
    number: u64,
    file: String,
    kind: &'static str,
    bytes: u64,
    /// Garbage by the discard statistics.
    garbage_bytes: u64,
    /// 1 - garbage / bytes, by the discard statistics.
    live_ratio: f64,
    /// When the segment was made (Unix seconds; 0: not known) and how long
    /// ago, in seconds.
    created_unix_secs: u64,
    age_secs: Option<u64>,
    /// The sequence numbers of its records (0: not known; the user head's
    /// largest is not known before it is sealed).
    min_seq: u64,
    max_seq: u64,
    /// With `--exact`: the bytes of the records the index points at.
    exact_live_bytes: Option<u64>,
    exact_live_records: Option<u64>,
    exact_live_ratio: Option<f64>,
    /// With `--exact`: exact garbage minus the statistics' garbage (the
    /// garbage the statistics do not know of yet; negative never happens
    /// unless the statistics overcount).
    unknown_garbage_bytes: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Report {
    dir: PathBuf,
    segments: Vec<Row>,
    bytes: u64,
    garbage_bytes: u64,
    exact_live_bytes: Option<u64>,
    /// bytes / (bytes - garbage) by the statistics.
    space_amplification: f64,
    /// bytes / exact live bytes, with `--exact`.
    exact_space_amplification: Option<f64>,
    plot: Option<PathBuf>,
}

fn ratio(live: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        live as f64 / total as f64
    }
}

pub fn segments(args: &SegmentsArgs) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let db = open_read_only(&args.dir)?;
    let stats = db.stats();
    let usage = if args.exact {
        Some(db.segment_usage().context("counting the live bytes")?)
    } else {
        None
    };
    db.close().context("closing the database")?;
    let rows: Vec<Row> = stats
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let u = usage
                .as_ref()
                .and_then(|u| u.get(i))
                .filter(|u| u.number == s.number);
            let garbage = s.garbage_bytes.min(s.bytes);
            Row {
                number: s.number,
                file: if s.gc {
                    format!("{:06}.gc.vlog", s.number)
                } else {
                    format!("{:06}.vlog", s.number)
                },
                kind: if s.gc { "gc" } else { "user" },
                bytes: s.bytes,
                garbage_bytes: garbage,
                live_ratio: ratio(s.bytes - garbage, s.bytes),
                created_unix_secs: s.created_unix_secs,
                age_secs: (s.created_unix_secs > 0)
                    .then(|| now.saturating_sub(s.created_unix_secs)),
                min_seq: s.min_seq,
                max_seq: s.max_seq,
                exact_live_bytes: u.map(|u| u.live_bytes),
                exact_live_records: u.map(|u| u.live_records),
                exact_live_ratio: u.map(|u| ratio(u.live_bytes, s.bytes)),
                unknown_garbage_bytes: u
                    .map(|u| (s.bytes.saturating_sub(u.live_bytes)) as i64 - garbage as i64),
            }
        })
        .collect();
    let total: u64 = rows.iter().map(|r| r.bytes).sum();
    let garbage: u64 = rows.iter().map(|r| r.garbage_bytes).sum();
    let exact_live: Option<u64> = usage
        .as_ref()
        .map(|_| rows.iter().filter_map(|r| r.exact_live_bytes).sum());
    let amp = |live: u64| {
        if live == 0 {
            1.0
        } else {
            total as f64 / live as f64
        }
    };
    let report = Report {
        dir: args.dir.clone(),
        bytes: total,
        garbage_bytes: garbage,
        exact_live_bytes: exact_live,
        space_amplification: amp(total - garbage),
        exact_space_amplification: exact_live.map(amp),
        plot: args.plot.clone(),
        segments: rows,
    };
    if let Some(path) = &args.plot {
        plot(&report, path).with_context(|| format!("drawing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_text(&report);
    Ok(())
}

fn print_text(r: &Report) {
    println!(
        "{} segments, {}, {} garbage by the discard statistics; space amplification {:.3}",
        r.segments.len(),
        bytes(r.bytes),
        bytes(r.garbage_bytes),
        r.space_amplification
    );
    if let (Some(live), Some(amp)) = (r.exact_live_bytes, r.exact_space_amplification) {
        println!(
            "exact, from the index: {} live, space amplification {amp:.3}",
            bytes(live)
        );
    }
    let exact = r.exact_live_bytes.is_some();
    print!(
        "{:<18} {:<4} {:>10} {:>10} {:>6} {:>8} {:>23}",
        "file", "kind", "size", "garbage", "live", "age", "sequence numbers"
    );
    if exact {
        print!(
            " {:>10} {:>8} {:>6} {:>12}",
            "exact live", "records", "live", "not counted"
        );
    }
    println!();
    for s in &r.segments {
        print!(
            "{:<18} {:<4} {:>10} {:>10} {:>5.1}% {:>8} {:>23}",
            s.file,
            s.kind,
            bytes(s.bytes),
            bytes(s.garbage_bytes),
            100.0 * s.live_ratio,
            s.age_secs.map_or("?".to_string(), age),
            seqs(s.min_seq, s.max_seq)
        );
        if let (Some(l), Some(n), Some(lr), Some(u)) = (
            s.exact_live_bytes,
            s.exact_live_records,
            s.exact_live_ratio,
            s.unknown_garbage_bytes,
        ) {
            let u = if u < 0 {
                format!("-{}", bytes(u.unsigned_abs()))
            } else {
                bytes(u as u64)
            };
            print!(" {:>10} {:>8} {:>5.1}% {:>12}", bytes(l), n, 100.0 * lr, u);
        }
        println!();
    }
    if exact {
        println!(
            "(\"not counted\": garbage the discard statistics do not know of yet; compaction counts it \
             when it drops the old versions)"
        );
    }
    if let Some(p) = &r.plot {
        println!("plot written to {}", p.display());
    }
}

/// An age for people: `42s`, `17m`, `5h`, `3d`.
fn age(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// A sequence range, `?` where not known.
fn seqs(min: u64, max: u64) -> String {
    let show = |n: u64| {
        if n == 0 {
            "?".to_string()
        } else {
            n.to_string()
        }
    };
    format!("{}..{}", show(min), show(max))
}

/// Two panels: live and garbage bytes per segment in log order (stacked
/// bars; the exact live bytes as a line with `--exact`), and the live-ratio
/// histogram (tenths).
fn plot(r: &Report, path: &Path) -> Result<()> {
    let mut svg = String::new();
    draw(
        r,
        SVGBackend::with_string(&mut svg, (960, 720)).into_drawing_area(),
    )?;
    crate::picture::write(path, &svg)
}

fn draw(r: &Report, root: DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<()> {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    let n = r.segments.len().max(1);
    let max_mib =
        r.segments.iter().map(|s| s.bytes).max().unwrap_or(1).max(1) as f64 / (1 << 20) as f64;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!(
                "vLog segments in log order: live and garbage (space amplification {:.3})",
                r.space_amplification
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n as f64, 0f64..max_mib * 1.3)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("segment number (oldest left; GC segments in a lighter green)")
        .y_desc("MiB")
        .x_label_formatter(&|x| {
            r.segments
                .get(*x as usize)
                .map_or(String::new(), |s| s.number.to_string())
        })
        .draw()?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let live_color = RGBColor(46, 125, 50);
    let garbage_color = RGBColor(198, 40, 40);
    let gc_live_color = RGBColor(129, 199, 132);
    chart
        .draw_series(r.segments.iter().enumerate().map(|(i, s)| {
            let x = i as f64;
            let color = if s.kind == "gc" {
                gc_live_color
            } else {
                live_color
            };
            Rectangle::new(
                [(x + 0.1, 0.0), (x + 0.9, mib(s.bytes - s.garbage_bytes))],
                color.filled(),
            )
        }))?
        .label("live (discard statistics)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], live_color.filled()));
    chart
        .draw_series(r.segments.iter().enumerate().map(|(i, s)| {
            let x = i as f64;
            Rectangle::new(
                [
                    (x + 0.1, mib(s.bytes - s.garbage_bytes)),
                    (x + 0.9, mib(s.bytes)),
                ],
                garbage_color.filled(),
            )
        }))?
        .label("garbage")
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 12, y + 5)], garbage_color.filled())
        });
    if r.exact_live_bytes.is_some() {
        chart
            .draw_series(r.segments.iter().enumerate().filter_map(|(i, s)| {
                s.exact_live_bytes.map(|l| {
                    let x = i as f64;
                    PathElement::new(
                        vec![(x + 0.1, mib(l)), (x + 0.9, mib(l))],
                        BLACK.stroke_width(2),
                    )
                })
            }))?
            .label("live, exact (index)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;

    // The live-ratio histogram, in tenths.
    let mut bins = [0u32; 10];
    for s in &r.segments {
        let live = s.exact_live_ratio.unwrap_or(s.live_ratio);
        bins[((live * 10.0) as usize).min(9)] += 1;
    }
    let most = bins.iter().copied().max().unwrap_or(1).max(1);
    let mut hist = ChartBuilder::on(&bottom)
        .caption(
            if r.exact_live_bytes.is_some() {
                "segments by live ratio (exact)"
            } else {
                "segments by live ratio (discard statistics)"
            },
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..1f64, 0u32..most + most / 5 + 1)?;
    hist.configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("live fraction of the segment")
        .y_desc("segments")
        .draw()?;
    hist.draw_series(bins.iter().enumerate().map(|(i, &c)| {
        let x = i as f64 / 10.0;
        Rectangle::new(
            [(x + 0.005, 0), (x + 0.095, c)],
            RGBColor(21, 101, 192).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}
