//! `gc-sim --plot`: GC write amplification against mean space
//! amplification, one curve per (policy, head) over the targets swept.

use super::SimResult;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

/// Draws the curves of `results` into `path` (SVG, or PNG for `.png`).
pub fn draw(path: &Path, results: &[SimResult]) -> Result<()> {
    if results.is_empty() {
        return Err(anyhow!("nothing to plot"));
    }
    // One series per (policy, head), its points in target order.
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in results {
        let name = format!("{} / {} head", r.policy.name(), r.head.name());
        let point = (r.space_amp_mean, r.gc_write_amplification);
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, pts)) => pts.push(point),
            None => series.push((name, vec![point])),
        }
    }
    for (_, pts) in &mut series {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let xs = results.iter().map(|r| r.space_amp_mean);
    let ys = results.iter().map(|r| r.gc_write_amplification);
    let (x0, x1) = padded(
        xs.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
    );
    let (y0, y1) = padded(
        ys.clone().fold(f64::INFINITY, f64::min),
        ys.fold(f64::NEG_INFINITY, f64::max),
    );

    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
    chart(root, &series, (x0, x1), (y0, y1))?;
    crate::picture::write(path, &svg)
}

/// The chart, on `root`.
fn chart(
    root: DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    series: &[(String, Vec<(f64, f64)>)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("{e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "GC write amplification vs space amplification",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("mean space amplification (vLog bytes / live bytes)")
        .y_desc("GC write amplification")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A range around `lo..hi` with a margin, never empty.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).max(0.05);
    (lo - span * 0.1, hi + span * 0.1)
}
