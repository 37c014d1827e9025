//! `bench --plot DIR`: the pictures of a run across engines, one SVG each,
//! one panel per phase (workload) and one colour per engine, the engines in
//! the order they ran:
//! - `throughput.svg`: operations per second over each phase;
//! - `latency.svg`: the latency CDF of each phase per engine and operation
//!   kind, on a log time axis, the percentiles stretched towards the tail
//!   (the y axis is in "nines": 90, 99, 99.9, 99.99, then the maximum);
//! - `amplification.svg`: write amplification at every layer it was seen
//!   from, per phase that wrote, and space amplification at the end of each
//!   phase.
//!
//! A missing figure (`None`), or one that is not finite, is not drawn (nor
//! one that is not positive on a log axis); a picture with nothing to show
//! says so in words.

use super::figures::{EngineRun, Layers, PhaseReport};
use anyhow::{Context, Result};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

const FONT: &str = "sans-serif";
/// One panel of a grid, in pixels.
const PANEL: (u32, u32) = (480, 340);
/// The height of a picture's title.
const TITLE_H: u32 = 40;
/// The height of a note under a grid (phases not drawn).
const NOTE_H: u32 = 28;
/// The width of the legend beside an amplification panel.
const LEGEND_W: u32 = 230;
/// The width of the legend beside a latency panel of many lines.
const SIDE_W: u32 = 170;

/// The colours of the engines `bench --engines` knows, by name.
const KNOWN: [(&str, RGBColor); 5] = [
    ("wisckey", RGBColor(21, 101, 192)),
    ("rocksdb", RGBColor(198, 40, 40)),
    ("rocksdb-blob", RGBColor(239, 108, 0)),
    ("fjall", RGBColor(46, 125, 50)),
    ("fjall-kv", RGBColor(106, 27, 154)),
];
/// The colours of any other engine (or of a second run of the same one).
const OTHERS: [RGBColor; 6] = [
    RGBColor(0, 121, 107),
    RGBColor(173, 20, 87),
    RGBColor(93, 64, 55),
    RGBColor(84, 110, 122),
    RGBColor(0, 131, 143),
    RGBColor(158, 157, 36),
];

/// Writes throughput.svg, latency.svg and amplification.svg into `dir`
/// (created if missing); returns the paths written.
pub fn write_all(dir: &Path, runs: &[EngineRun], title: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let engines = Engines::of(runs);
    let phases = phases(runs);
    let pictures = [
        ("throughput.svg", throughput(&engines, &phases, title)?),
        ("latency.svg", latency(&engines, &phases, title)?),
        (
            "amplification.svg",
            amplification(&engines, &phases, title)?,
        ),
    ];
    let mut written = Vec::new();
    for (name, svg) in pictures {
        let path = dir.join(name);
        crate::picture::write(&path, &svg)?;
        written.push(path);
    }
    Ok(written)
}

/// The engines of the runs, in their order: names and colours.
struct Engines {
    names: Vec<String>,
    colors: Vec<RGBColor>,
}

impl Engines {
    fn of(runs: &[EngineRun]) -> Engines {
        let mut names = Vec::new();
        let mut colors = Vec::new();
        for (i, r) in runs.iter().enumerate() {
            let name = if !r.run.engine.is_empty() {
                r.run.engine.clone()
            } else {
                r.phases
                    .first()
                    .map(|p| p.engine.clone())
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| format!("engine {}", i + 1))
            };
            colors.push(color_of(&name, &colors));
            names.push(name);
        }
        Engines { names, colors }
    }
}

/// The colour of engine `name`: its own if it has one not yet `used`, else
/// one of the others (picked by the name, so the same name gets the same).
fn color_of(name: &str, used: &[RGBColor]) -> RGBColor {
    if let Some(&(_, c)) = KNOWN.iter().find(|(n, _)| *n == name) {
        if !used.contains(&c) {
            return c;
        }
    }
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let start = (hash % OTHERS.len() as u64) as usize;
    (0..OTHERS.len())
        .map(|i| OTHERS[(start + i) % OTHERS.len()])
        .find(|c| !used.contains(c))
        .unwrap_or(OTHERS[start])
}

/// `c` towards white: `f` 1 is `c`, 0 is white.
fn shade(c: RGBColor, f: f64) -> RGBColor {
    let mix = |x: u8| {
        (255.0 - (255.0 - f64::from(x)) * f)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// One phase across the engines that ran it.
struct Phase<'a> {
    /// Its workload's name (with `#2`, `#3`, ... for a workload run again).
    label: String,
    /// (index of the engine in the runs, its report of the phase).
    on: Vec<(usize, &'a PhaseReport)>,
}

/// The phases of `runs` in the order they first ran; a workload's n-th run
/// on one engine is the same phase as its n-th run on another.
fn phases(runs: &[EngineRun]) -> Vec<Phase<'_>> {
    let mut out: Vec<(&str, usize, Phase<'_>)> = Vec::new();
    for (e, run) in runs.iter().enumerate() {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for p in &run.phases {
            let count = seen.entry(p.phase.as_str()).or_insert(0);
            let nth = *count;
            *count += 1;
            match out
                .iter_mut()
                .find(|(name, n, _)| *name == p.phase && *n == nth)
            {
                Some((_, _, phase)) => phase.on.push((e, p)),
                None => out.push((
                    p.phase.as_str(),
                    nth,
                    Phase {
                        label: if nth == 0 {
                            p.phase.clone()
                        } else {
                            format!("{} #{}", p.phase, nth + 1)
                        },
                        on: vec![(e, p)],
                    },
                )),
            }
        }
    }
    out.into_iter().map(|(_, _, p)| p).collect()
}

/// `v` if it is a figure that can be drawn (finite, not negative).
fn drawable(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
}

/// (rows, columns) of a grid of `n` panels.
fn grid(n: usize) -> (usize, usize) {
    let cols = match n {
        0 | 1 => 1,
        2..=4 => 2,
        _ => 3,
    };
    (n.div_ceil(cols).max(1), cols)
}

/// A picture of `n` panels `panel_w` wide in a grid under `title`, with
/// `note` under them;
/// `draw` draws panel `i` on its area.
fn grid_picture(
    title: &str,
    n: usize,
    panel_w: u32,
    note: Option<String>,
    mut draw: impl FnMut(&Area<'_>, usize) -> Result<()>,
) -> Result<String> {
    let (rows, cols) = grid(n);
    let note_h = if note.is_some() { NOTE_H } else { 0 };
    let size = (
        (cols as u32 * panel_w).max(720),
        rows as u32 * PANEL.1 + TITLE_H + note_h,
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 18))?;
        let height = root.dim_in_pixel().1;
        let (body, foot) = root.split_vertically(height.saturating_sub(note_h));
        if let Some(note) = note {
            foot.draw(&Text::new(
                note,
                (12, (note_h / 2) as i32),
                TextStyle::from((FONT, 13).into_font())
                    .color(&BLACK.mix(0.75))
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        for (i, area) in body.split_evenly((rows, cols)).iter().take(n).enumerate() {
            draw(area, i)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// A picture that only says `message`.
fn message_picture(title: &str, message: &str) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 200)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 18))?;
        message_on(&root, message)?;
        root.present()?;
    }
    Ok(svg)
}

/// `message` in the middle of `area`.
fn message_on(area: &Area<'_>, message: &str) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        message.to_string(),
        ((w / 2) as i32, (h / 2) as i32),
        TextStyle::from((FONT, 16).into_font())
            .color(&BLACK.mix(0.75))
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// The phases not drawn, for the note under a grid.
fn not_drawn(why: &str, phases: &[&Phase<'_>]) -> Option<String> {
    (!phases.is_empty()).then(|| {
        let names: Vec<&str> = phases.iter().map(|p| p.label.as_str()).collect();
        format!("not drawn, {why}: {}", names.join(", "))
    })
}

/// How much room above the highest value leaves `entries` lines of legend
/// clear of the data in a panel: the factor to multiply the top by.
fn legend_headroom(entries: usize) -> f64 {
    let fraction = ((20 * entries + 16) as f64 / (PANEL.1 as f64 - 80.0)).min(0.5);
    1.05 / (1.0 - fraction)
}

/// `v` with k / M / G for thousands, millions, billions.
fn si(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.abs() >= 100.0 || x == x.trunc() {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{unit}")
}

/// Microseconds as a time: ns, µs, ms or s.
fn duration(us: f64) -> String {
    if us >= 1e6 {
        format!("{}s", si(us / 1e6))
    } else if us >= 1e3 {
        format!("{}ms", si(us / 1e3))
    } else if us >= 1.0 {
        format!("{}µs", si(us))
    } else {
        format!("{}ns", si(us * 1e3))
    }
}

/// An axis from `lo` to `hi` with its marks at `ticks` only (the phases of
/// a bar chart, the nines of a CDF, 1-2-5 on a log scale); `log` maps it
/// by the logarithm (then `lo` and `hi` must be positive).
#[derive(Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    log: bool,
}

impl Ticked {
    fn linear(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticked {
        Ticked {
            lo,
            hi,
            ticks,
            log: false,
        }
    }

    /// A log axis over `lo..hi` (positive, `lo < hi`), marked at 1, 2 and 5
    /// times the powers of ten, or at the powers alone when those are many.
    fn log(lo: f64, hi: f64) -> Ticked {
        let marks = |mantissas: &[f64]| -> Vec<f64> {
            let first = lo.log10().floor() as i32;
            let last = hi.log10().ceil() as i32;
            (first..=last)
                .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
                .filter(|v| *v >= lo && *v <= hi)
                .collect()
        };
        let mut ticks = marks(&[1.0, 2.0, 5.0]);
        if ticks.len() > 9 {
            ticks = marks(&[1.0]);
            let every = ticks.len().div_ceil(9).max(1);
            ticks = ticks.into_iter().step_by(every).collect();
        }
        Ticked {
            lo,
            hi,
            ticks,
            log: true,
        }
    }

    fn scale(&self, v: f64) -> f64 {
        if self.log {
            v.max(f64::MIN_POSITIVE).ln()
        } else {
            v
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (self.scale(self.lo), self.scale(self.hi));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let f = ((self.scale(*v) - lo) / span).clamp(-10.0, 10.0);
        let f = if f.is_finite() { f } else { 0.0 };
        limit.0 + (f64::from(limit.1 - limit.0) * f).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

// ---------------------------------------------------------------- throughput

/// A phase's throughput samples that can be drawn, in time order.
fn samples(p: &PhaseReport) -> Vec<(f64, f64)> {
    let mut s: Vec<(f64, f64)> = p
        .throughput
        .iter()
        .copied()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    s
}

fn throughput(engines: &Engines, phases: &[Phase<'_>], title: &str) -> Result<String> {
    let title = format!("{title}: throughput over each phase");
    let (drawn, skipped): (Vec<&Phase<'_>>, Vec<&Phase<'_>>) = phases
        .iter()
        .partition(|ph| ph.on.iter().any(|(_, p)| samples(p).len() >= 2));
    if drawn.is_empty() {
        return message_picture(
            &title,
            "no phase lasted long enough to sample its throughput",
        );
    }
    let note = not_drawn("too short to sample (fewer than 2 samples)", &skipped);
    grid_picture(&title, drawn.len(), PANEL.0, note, |area, i| {
        throughput_panel(area, engines, drawn[i])
    })
}

fn throughput_panel(area: &Area<'_>, engines: &Engines, phase: &Phase<'_>) -> Result<()> {
    let series: Vec<(usize, Vec<(f64, f64)>)> =
        phase.on.iter().map(|&(e, p)| (e, samples(p))).collect();
    let points = || series.iter().flat_map(|(_, s)| s.iter().copied());
    let t_max = points().map(|(t, _)| t).fold(0.0f64, f64::max).max(1e-3);
    let t_min = points().map(|(t, _)| t).fold(0.0f64, f64::min);
    let v_max = points().map(|(_, v)| v).fold(0.0f64, f64::max);
    let v_min = points().map(|(_, v)| v).fold(0.0f64, f64::min);
    let top = if v_max > 0.0 {
        v_max * legend_headroom(series.len())
    } else {
        1.0
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&phase.label, (FONT, 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(t_min..t_max, v_min..top)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("seconds since the phase began")
        .y_desc("ops/s")
        .y_label_formatter(&|v| si(*v))
        .draw()?;
    for (e, pts) in &series {
        let color = engines.colors[*e];
        let name = &engines.names[*e];
        if pts.len() >= 2 {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        } else {
            // One sample, or none: a dot where there is one, and the
            // legend says why there is no line.
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?
                .label(format!("{name} (too short to sample)"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

// ------------------------------------------------------------------- latency

/// Where the maximum is drawn on the "nines" axis (the highest percentile
/// below 100 is drawn at most at `MAX_NINES - 0.4`).
const MAX_NINES: f64 = 5.0;

/// Percentile `p` (0..=100) on the "nines" axis: -log10(1 - p/100), so 90
/// is 1, 99 is 2, 99.9 is 3; 100 (the maximum) is `MAX_NINES`.
fn nines(p: f64) -> f64 {
    let p = p.clamp(0.0, 100.0);
    if p >= 100.0 {
        MAX_NINES
    } else {
        (-(1.0 - p / 100.0).log10()).clamp(0.0, MAX_NINES - 0.4)
    }
}

/// The percentile a "nines" axis label stands for.
fn nines_label(y: f64) -> String {
    if y >= MAX_NINES - 0.01 {
        return "max".to_string();
    }
    let p = 100.0 * (1.0 - 10f64.powf(-y));
    let s = format!("{p:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A latency CDF that can be drawn: (µs, nines) points, µs positive.
fn cdf_points(cdf: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = cdf
        .iter()
        .filter(|(p, us)| p.is_finite() && us.is_finite() && *us > 0.0)
        .map(|&(p, us)| (us, nines(p)))
        .collect();
    pts.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
    pts
}

fn latency(engines: &Engines, phases: &[Phase<'_>], title: &str) -> Result<String> {
    let title = format!("{title}: latency CDF of each phase (percentiles stretched to the tail)");
    let (drawn, skipped): (Vec<&Phase<'_>>, Vec<&Phase<'_>>) = phases.iter().partition(|ph| {
        ph.on
            .iter()
            .any(|(_, p)| p.latency.values().any(|l| !cdf_points(&l.cdf).is_empty()))
    });
    if drawn.is_empty() {
        return message_picture(&title, "no latency was recorded");
    }
    let note = not_drawn("no latency recorded", &skipped);
    // Many lines in a panel: their legend beside it, not over them.
    let side = drawn.iter().any(|ph| latency_series(ph).1.len() > 5);
    let panel_w = if side { PANEL.0 + SIDE_W } else { PANEL.0 };
    grid_picture(&title, drawn.len(), panel_w, note, |area, i| {
        latency_panel(area, engines, drawn[i], side)
    })
}

/// A phase's op kinds, and its CDFs that can be drawn: (engine, index of
/// the kind, points).
type CdfSeries = (usize, usize, Vec<(f64, f64)>);

fn latency_series<'a>(phase: &Phase<'a>) -> (Vec<&'a str>, Vec<CdfSeries>) {
    let mut kinds: Vec<&str> = phase
        .on
        .iter()
        .flat_map(|(_, p)| p.latency.keys().map(String::as_str))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut series = Vec::new();
    for &(e, p) in &phase.on {
        for (k, kind) in kinds.iter().enumerate() {
            if let Some(l) = p.latency.get(*kind) {
                let pts = cdf_points(&l.cdf);
                if !pts.is_empty() {
                    series.push((e, k, pts));
                }
            }
        }
    }
    (kinds, series)
}

/// The line of style `k` (solid with dots, dashed with triangles, dotted
/// with crosses) and its name, as a legend line at `y` of `area`.
fn line_key(area: &Area<'_>, y: i32, color: RGBColor, k: usize, name: &str) -> Result<()> {
    let line = color.stroke_width(2);
    let (x0, x1, xm) = (8, 30, 19);
    match k % 3 {
        0 => {
            area.draw(&PathElement::new(vec![(x0, y), (x1, y)], line))?;
            area.draw(&Circle::new((xm, y), 3, color.filled()))?;
        }
        1 => {
            area.draw(&PathElement::new(vec![(x0, y), (x0 + 7, y)], line))?;
            area.draw(&PathElement::new(vec![(x1 - 7, y), (x1, y)], line))?;
            area.draw(&TriangleMarker::new((xm, y), 4, color.filled()))?;
        }
        _ => {
            area.draw(&PathElement::new(vec![(x0, y), (x0 + 2, y)], line))?;
            area.draw(&PathElement::new(vec![(x1 - 2, y), (x1, y)], line))?;
            area.draw(&Cross::new((xm, y), 4, color.stroke_width(2)))?;
        }
    }
    area.draw(&Text::new(
        name.to_string(),
        (x1 + 8, y),
        TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    Ok(())
}

/// `side`: the legend beside the chart (`SIDE_W` of the panel), not in it.
fn latency_panel(area: &Area<'_>, engines: &Engines, phase: &Phase<'_>, side: bool) -> Result<()> {
    let (kinds, series) = latency_series(phase);
    let (w, _) = area.dim_in_pixel();
    let (area, legend) = if side {
        let (a, l) = area.split_horizontally(w.saturating_sub(SIDE_W));
        (a, Some(l))
    } else {
        (area.clone(), None)
    };
    let all = || series.iter().flat_map(|(_, _, s)| s.iter().map(|p| p.0));
    let lo = all().fold(f64::INFINITY, f64::min);
    let hi = all().fold(0.0f64, f64::max);
    // Positive, and not empty, for the log axis.
    let (lo, hi) = if lo.is_finite() && lo > 0.0 && hi >= lo {
        ((lo / 1.5).max(f64::MIN_POSITIVE), (hi * 1.5).min(f64::MAX))
    } else {
        (1.0, 1000.0)
    };
    let ticks = vec![2f64.log10(), 1.0, 2.0, 3.0, 4.0, MAX_NINES];
    let mut chart = ChartBuilder::on(&area)
        .caption(&phase.label, (FONT, 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(
            Ticked::log(lo, hi),
            Ticked::linear(0.0, MAX_NINES + 0.25, ticks),
        )?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("latency (log scale)")
        .y_desc("percentile")
        .x_label_formatter(&|us| duration(*us))
        .y_label_formatter(&|y| nines_label(*y))
        .draw()?;
    let several = kinds.len() > 1;
    for (i, (e, k, pts)) in series.into_iter().enumerate() {
        let color = engines.colors[e];
        let name = if several {
            format!("{} {}", engines.names[e], kinds[k])
        } else {
            engines.names[e].clone()
        };
        if let Some(legend) = &legend {
            line_key(legend, 44 + 20 * i as i32, color, k, &name)?;
        }
        let line = color.stroke_width(2);
        match k % 3 {
            0 => {
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), line))?
                    .label(name)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (18, 0)], line)
                            + Circle::new((9, 0), 3, color.filled())
                    });
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
            1 => {
                chart
                    .draw_series(DashedLineSeries::new(pts.iter().copied(), 7, 4, line))?
                    .label(name)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (6, 0)], line)
                            + PathElement::new(vec![(12, 0), (18, 0)], line)
                            + TriangleMarker::new((9, 0), 4, color.filled())
                    });
                chart.draw_series(
                    pts.iter()
                        .map(|&p| TriangleMarker::new(p, 4, color.filled())),
                )?;
            }
            _ => {
                chart
                    .draw_series(DashedLineSeries::new(pts.iter().copied(), 2, 3, line))?
                    .label(name)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (2, 0)], line)
                            + PathElement::new(vec![(16, 0), (18, 0)], line)
                            + Cross::new((9, 0), 4, color.stroke_width(2))
                    });
                chart.draw_series(pts.iter().map(|&p| Cross::new(p, 3, color.stroke_width(2))))?;
            }
        }
    }
    if legend.is_none() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    Ok(())
}

// ------------------------------------------------------------- amplification

/// A layer of write amplification: its letter on the bars, what it is, and
/// its figure.
type Layer = (&'static str, &'static str, fn(&Layers) -> Option<f64>);

const LAYERS: [Layer; 5] = [
    ("E", "engine: its own byte counts", |l| l.engine),
    ("P", "process: /proc/self/io", |l| l.process),
    ("B", "block device: diskstats", |l| l.block_device),
    ("H", "flash: SMART host writes", |l| l.flash_host),
    ("M", "flash: SMART media writes", |l| l.flash_media),
];

/// How light each layer's bars are (1: the engine's colour).
const LAYER_SHADES: [f64; 5] = [1.0, 0.6, 0.35, 0.2, 0.1];

/// One bar: its left and right (x), its height, its colour, its label.
struct Bar {
    x0: f64,
    x1: f64,
    value: f64,
    color: RGBColor,
    edge: RGBColor,
    label: String,
}

/// A line of a legend drawn beside a panel: a square of `fill` with an
/// `edge`, and its text.
type Key = (RGBColor, RGBColor, String);

fn amplification(engines: &Engines, phases: &[Phase<'_>], title: &str) -> Result<String> {
    let title = format!("{title}: write and space amplification");
    let layers = |p: &PhaseReport| {
        LAYERS
            .iter()
            .enumerate()
            .filter_map(|(i, (_, _, f))| drawable(f(&p.write_amplification)).map(|v| (i, v)))
            .collect::<Vec<_>>()
    };
    let writes: Vec<&Phase<'_>> = phases
        .iter()
        .filter(|ph| ph.on.iter().any(|(_, p)| !layers(p).is_empty()))
        .collect();
    let spaces: Vec<&Phase<'_>> = phases
        .iter()
        .filter(|ph| {
            ph.on
                .iter()
                .any(|(_, p)| drawable(p.space.space_amplification).is_some())
        })
        .collect();
    // The layers seen in any phase; each group has a place for each.
    let shown: Vec<usize> = (0..LAYERS.len())
        .filter(|&l| {
            writes
                .iter()
                .flat_map(|ph| ph.on.iter())
                .any(|(_, p)| layers(p).iter().any(|(i, _)| *i == l))
        })
        .collect();
    if writes.is_empty() && spaces.is_empty() {
        return message_picture(&title, "no write or space amplification was measured");
    }
    let ne = engines.names.len().max(1);
    let bars_per_group = (ne * shown.len().max(1)).max(ne);
    let groups = writes.len().max(spaces.len()).max(1);
    let width =
        (LEGEND_W + 90 + groups as u32 * (bars_per_group as u32 * 22).max(100)).clamp(960, 4000);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (width, 2 * 380 + TITLE_H)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(&title, (FONT, 18))?;
        let panels = root.split_evenly((2, 1));

        let engine_keys = || -> Vec<Key> {
            engines
                .names
                .iter()
                .zip(&engines.colors)
                .map(|(n, c)| (*c, *c, n.clone()))
                .collect()
        };
        // (a) write amplification.
        let mut bars = Vec::new();
        for (g, ph) in writes.iter().enumerate() {
            for &(e, p) in &ph.on {
                let color = engines.colors[e];
                for (i, v) in layers(p) {
                    let slot = shown.iter().position(|&l| l == i).unwrap_or(0);
                    let (x0, x1) = place(g, e, ne, slot, shown.len());
                    bars.push(Bar {
                        x0,
                        x1,
                        value: v,
                        color: shade(color, LAYER_SHADES[i]),
                        edge: color,
                        label: format!("{} {}", LAYERS[i].0, amp(v)),
                    });
                }
            }
        }
        let mut keys = engine_keys();
        let grey = RGBColor(97, 97, 97);
        for &l in &shown {
            keys.push((
                shade(grey, LAYER_SHADES[l]),
                grey,
                format!("{} = {}", LAYERS[l].0, LAYERS[l].1),
            ));
        }
        bar_panel(
            &panels[0],
            "(a) write amplification: bytes written at each layer over user bytes",
            &writes,
            &bars,
            &keys,
            "no phase wrote anything: no write amplification to show",
        )?;

        // (b) space amplification.
        let mut bars = Vec::new();
        for (g, ph) in spaces.iter().enumerate() {
            for &(e, p) in &ph.on {
                if let Some(v) = drawable(p.space.space_amplification) {
                    let (x0, x1) = place(g, e, ne, 0, 1);
                    bars.push(Bar {
                        x0,
                        x1,
                        value: v,
                        color: engines.colors[e],
                        edge: engines.colors[e],
                        label: amp(v),
                    });
                }
            }
        }
        bar_panel(
            &panels[1],
            "(b) space amplification at the end of each phase: directory bytes over live user bytes",
            &spaces,
            &bars,
            &engine_keys(),
            "no space amplification was measured",
        )?;
        root.present()?;
    }
    Ok(svg)
}

/// An amplification as a label.
fn amp(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The left and right of bar `slot` of `slots` of engine `e` of `engines`
/// in group `g` (each group is one unit wide; the bars in its middle, a
/// gap between engines, none wider than a fifth of the group).
fn place(g: usize, e: usize, engines: usize, slot: usize, slots: usize) -> (f64, f64) {
    let (engines, slots) = (engines.max(1) as f64, slots.max(1) as f64);
    let gap = 0.6;
    let bar_w = (0.84 / (engines * slots + (engines - 1.0) * gap)).min(0.2);
    let content = engines * slots * bar_w + (engines - 1.0) * gap * bar_w;
    let x0 =
        g as f64 + 0.5 - content / 2.0 + e as f64 * (slots + gap) * bar_w + slot as f64 * bar_w;
    (x0, x0 + bar_w * 0.92)
}

/// A panel of grouped bars, one group per phase, with the legend `keys`
/// beside it; `empty` says why there are no bars when there are none.
fn bar_panel(
    area: &Area<'_>,
    caption: &str,
    groups: &[&Phase<'_>],
    bars: &[Bar],
    keys: &[Key],
    empty: &str,
) -> Result<()> {
    let (w, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(w.saturating_sub(LEGEND_W));
    if bars.is_empty() {
        let plot = plot.titled(caption, (FONT, 16))?;
        return message_on(&plot, empty);
    }
    let n = groups.len().max(1);
    let top = bars.iter().map(|b| b.value).fold(1.0f64, f64::max) * 1.3;
    let centers: Vec<f64> = (0..n).map(|g| g as f64 + 0.5).collect();
    let names: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    let mut chart = ChartBuilder::on(&plot)
        .caption(caption, (FONT, 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(Ticked::linear(0.0, n as f64, centers), 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("phase")
        .y_desc("amplification")
        .x_label_formatter(&|x| {
            names
                .get(x.max(0.0).floor() as usize)
                .cloned()
                .unwrap_or_default()
        })
        .draw()?;
    // 1: nothing amplified.
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 1.0), (n as f64, 1.0)],
        BLACK.mix(0.35).stroke_width(1),
    )))?;
    chart.draw_series(
        bars.iter()
            .map(|b| Rectangle::new([(b.x0, 0.0), (b.x1, b.value)], b.color.filled())),
    )?;
    chart.draw_series(
        bars.iter()
            .map(|b| Rectangle::new([(b.x0, 0.0), (b.x1, b.value)], b.edge.stroke_width(1))),
    )?;
    // The values over the bars: across when they fit, else upwards.
    let plot_w = f64::from(plot.dim_in_pixel().0.saturating_sub(76).max(1));
    let bar_px = bars
        .first()
        .map_or(0.0, |b| (b.x1 - b.x0) * plot_w / n as f64);
    let widest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let size = if bar_px >= 13.0 { 11 } else { 9 };
    if bar_px >= 9.0 {
        let across = bar_px >= widest as f64 * 6.5 + 4.0;
        let style = if across {
            TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom))
        } else {
            TextStyle::from((FONT, size).into_font())
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Left, VPos::Center))
        };
        chart.draw_series(bars.iter().map(|b| {
            EmptyElement::at(((b.x0 + b.x1) / 2.0, b.value))
                + Text::new(b.label.clone(), (0, -3), style.clone())
        }))?;
    }
    // The legend beside the chart.
    let text = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (fill, edge, name)) in keys.iter().enumerate() {
        let y = 40 + 22 * i as i32;
        legend.draw(&Rectangle::new([(8, y - 6), (20, y + 6)], fill.filled()))?;
        legend.draw(&Rectangle::new(
            [(8, y - 6), (20, y + 6)],
            edge.stroke_width(1),
        ))?;
        legend.draw(&Text::new(name.clone(), (28, y), text.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::figures::{GcFigures, Latency, PhaseBytes, RunReport, Space};
    use super::*;
    use std::collections::BTreeMap;

    fn latency(base_us: f64) -> Latency {
        let cdf: Vec<(f64, f64)> = [1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0]
            .iter()
            .enumerate()
            .map(|(i, &p)| (p, base_us * 1.6f64.powi(i as i32)))
            .collect();
        Latency {
            count: 1000,
            mean_us: base_us * 2.0,
            p50_us: cdf[2].1,
            p99_us: cdf[4].1,
            p999_us: cdf[5].1,
            max_us: cdf[7].1,
            cdf,
        }
    }

    fn phase(
        engine: &str,
        slow: f64,
        name: &str,
        kinds: &[(&str, f64)],
        samples: usize,
        write: Layers,
        space: Option<f64>,
    ) -> PhaseReport {
        PhaseReport {
            record: "phase".into(),
            engine: engine.into(),
            phase: name.into(),
            ops: 1000,
            ops_by_kind: kinds.iter().map(|(k, _)| (k.to_string(), 500)).collect(),
            secs: samples as f64 * 0.5,
            after_secs: 0.1,
            ops_per_sec: 100_000.0,
            mb_per_sec: 10.0,
            latency: kinds
                .iter()
                .map(|&(k, us)| (k.to_string(), latency(us)))
                .collect::<BTreeMap<_, _>>(),
            throughput: (1..=samples)
                .map(|i| (i as f64 * 0.5, (90_000.0 + 5_000.0 * (i % 3) as f64) / slow))
                .collect(),
            bytes: PhaseBytes::default(),
            write_amplification: write,
            read_amplification: Layers::default(),
            space: Space {
                files: 3,
                db_bytes: 1 << 20,
                db_allocated_bytes: 1 << 20,
                reserve_bytes: 0,
                live_user_bytes: 1 << 19,
                live_keys: 100,
                space_amplification: space,
            },
            rss_bytes: None,
            peak_rss_bytes: None,
            cold: false,
            gc: Some(GcFigures::default()),
            point_reads: None,
            notes: Vec::new(),
        }
    }

    fn run(engine: &str, phases: Vec<PhaseReport>) -> EngineRun {
        EngineRun {
            phases,
            run: RunReport {
                record: "run".into(),
                engine: engine.into(),
                describe: String::new(),
                config: serde_json::Value::Null,
                block_device: String::new(),
                flash: String::new(),
                skipped: Vec::new(),
                cold_failures: Vec::new(),
                peak_rss_bytes: None,
                secs: 1.0,
                stats: None,
            },
        }
    }

    fn engine_run(engine: &str, slow: f64) -> EngineRun {
        let w = |e: f64, p: Option<f64>, b: Option<f64>| Layers {
            engine: Some(e * slow),
            process: p,
            block_device: b,
            ..Layers::default()
        };
        run(
            engine,
            vec![
                phase(
                    engine,
                    slow,
                    "fillrandom",
                    &[("put", 4.0 * slow)],
                    20,
                    w(1.1, Some(1.3), None),
                    Some(1.2 * slow),
                ),
                phase(
                    engine,
                    slow,
                    "ycsb-a",
                    &[("get", 2.0 * slow), ("put", 5.0 * slow)],
                    12,
                    w(2.5, Some(f64::NAN), Some(3.1)),
                    Some(1.5 * slow),
                ),
                // Too short to sample, nothing written, no space figure.
                phase(
                    engine,
                    slow,
                    "readrandom",
                    &[("get", 1.0 * slow)],
                    0,
                    Layers::default(),
                    None,
                ),
            ],
        )
    }

    fn check(paths: &[PathBuf], names: &[&str]) {
        assert_eq!(paths.len(), 3);
        for p in paths {
            let svg = std::fs::read_to_string(p).unwrap();
            assert!(svg.contains("<svg"), "{}: not an SVG", p.display());
            for n in names {
                assert!(svg.contains(n), "{}: no {n}", p.display());
            }
        }
    }

    /// Where the test pictures go: `PLOTS_DIR` if set (to look at them),
    /// else a temporary directory.
    fn out(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
        match std::env::var_os("PLOTS_DIR") {
            Some(d) => (None, PathBuf::from(d).join(name)),
            None => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().join(name);
                (Some(t), p)
            }
        }
    }

    #[test]
    fn draws_two_engines_and_three_phases() {
        let runs = vec![engine_run("wisckey", 1.0), engine_run("rocksdb", 1.7)];
        let (_keep, dir) = out("two");
        let paths = write_all(&dir, &runs, "bench").unwrap();
        let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(
            names,
            ["throughput.svg", "latency.svg", "amplification.svg"]
        );
        check(&paths, &["wisckey", "rocksdb"]);
        let latency = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(latency.contains("wisckey get") && latency.contains("rocksdb put"));
        let throughput = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(
            throughput.contains("readrandom"),
            "the phase not drawn is named"
        );
    }

    #[test]
    fn draws_one_engine_one_phase() {
        let mut r = engine_run("fjall-kv", 1.0);
        r.phases.truncate(1);
        let (_keep, dir) = out("one");
        check(&write_all(&dir, &[r], "bench").unwrap(), &["fjall-kv"]);
    }

    #[test]
    fn survives_empty_and_odd_figures() {
        let (_keep, dir) = out("empty");
        let paths = write_all(&dir, &[], "bench").unwrap();
        check(&paths, &[]);
        let throughput = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(throughput.contains("no phase lasted long enough to sample"));

        // Every figure infinite, NaN, zero or missing.
        let mut p = phase(
            "x",
            1.0,
            "odd",
            &[("get", 0.0)],
            0,
            Layers {
                engine: Some(f64::INFINITY),
                process: Some(f64::NAN),
                ..Layers::default()
            },
            Some(f64::NAN),
        );
        p.throughput = vec![
            (f64::NAN, 1.0),
            (1.0, f64::INFINITY),
            (2.0, 0.0),
            (3.0, 0.0),
        ];
        p.latency.get_mut("get").unwrap().cdf.push((f64::NAN, 1.0));
        let (_keep, dir) = out("odd");
        check(
            &write_all(&dir, &[run("x", vec![p.clone()]), run("", vec![p])], "odd").unwrap(),
            &["odd"],
        );
    }

    #[test]
    fn draws_five_engines_and_many_phases() {
        let names = ["wisckey", "rocksdb", "rocksdb-blob", "fjall", "fjall-kv"];
        let runs: Vec<EngineRun> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut r = engine_run(n, 1.0 + i as f64 * 0.4);
                let mut more = r.phases.clone();
                for (j, p) in more.iter_mut().enumerate() {
                    p.phase = ["overwrite", "ycsb-b", "scan"][j].to_string();
                    p.write_amplification.flash_host = Some(5.0 + i as f64);
                }
                r.phases.extend(more);
                // A workload run twice.
                let again = r.phases[0].clone();
                r.phases.push(again);
                r
            })
            .collect();
        let (_keep, dir) = out("five");
        let paths = write_all(&dir, &runs, "bench, five engines").unwrap();
        check(&paths, &names);
        let throughput = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(throughput.contains("fillrandom #2"));
    }

    #[test]
    fn colours_are_stable_by_name() {
        let wisckey = color_of("wisckey", &[]);
        assert_eq!(wisckey, RGBColor(21, 101, 192));
        assert_eq!(color_of("other", &[]), color_of("other", &[]));
        assert_ne!(color_of("wisckey", &[wisckey]), wisckey);
        assert_eq!(nines_label(nines(99.9)), "99.9");
        assert_eq!(nines_label(2f64.log10()), "50");
        assert_eq!(nines_label(MAX_NINES), "max");
    }
}
