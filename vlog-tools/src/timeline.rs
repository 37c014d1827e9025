//! The sampler: a thread that reads `Db::stats()` at a fixed interval while
//! a run goes on, so that a run shows how it got to its end, not only the
//! end: the user write rate, what GC moves and frees, the vLog space
//! amplification and the write amplification, second by second. `bench
//! --timeline FILE.csv` writes the samples, `--plot FILE.svg` draws them;
//! anything else that wants figures over time (space amplification held
//! throughout a run, say) takes them from here.

use crate::bench::ratio;
use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wisckey::{Db, Stats};

/// One sample: the rates are over the interval that ends at `t_secs`, the
/// amplifications are since the sampler started.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t_secs: f64,
    /// The phase of the run at the sample (as the run last named it).
    pub phase: String,
    /// User bytes written per second (key + value), in MB/s (10^6 bytes).
    pub user_mb_per_sec: f64,
    /// Bytes GC moved (appended at its head) per second, MB/s.
    pub gc_moved_mb_per_sec: f64,
    /// Bytes of segments GC freed per second, MB/s.
    pub gc_freed_mb_per_sec: f64,
    /// `Stats::vlog_space_amplification` at the sample.
    pub vlog_space_amplification: f64,
    /// Everything written (vLog, GC, SSTables, manifest) over user bytes,
    /// since the sampler started (0 before any user write).
    pub write_amplification: f64,
    /// (vLog + GC bytes) over vLog bytes since the sampler started.
    pub gc_write_amplification: f64,
    /// vLog bytes on disk at the sample.
    pub vlog_bytes: u64,
    /// GC passes since the sampler started.
    pub gc_passes: u64,
}

/// One line of a panel: its name, its color, and what it plots.
type Line<'a> = (&'a str, RGBColor, &'a dyn Fn(&Sample) -> f64);

/// A running sampler; [`Timeline::finish`] stops it and returns the samples.
pub struct Timeline {
    stop: Arc<AtomicBool>,
    phase: Arc<Mutex<String>>,
    handle: JoinHandle<Vec<Sample>>,
}

/// The bytes everything wrote (vLog, GC, SSTables, manifest), by the
/// counters since open.
pub fn all_written(s: &Stats) -> u64 {
    s.vlog_bytes_written
        + s.gc_bytes_written
        + s.flush_bytes_written
        + s.compaction_bytes_written
        + s.manifest_bytes_written
}

impl Timeline {
    /// Starts sampling `db` every `every` (at least 10 ms), in phase
    /// `phase`.
    pub fn start(db: Db, every: Duration, phase: &str) -> Timeline {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(Mutex::new(phase.to_string()));
        let every = every.max(Duration::from_millis(10));
        let (s, p) = (stop.clone(), phase.clone());
        let handle = std::thread::Builder::new()
            .name("vlog-tools-sampler".into())
            .spawn(move || sample(&db, every, &s, &p))
            .expect("starting the sampler thread");
        Timeline {
            stop,
            phase,
            handle,
        }
    }

    /// Names the phase the next samples belong to.
    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_string();
    }

    /// Stops the sampler (after one last sample) and returns every sample.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        self.handle.join().unwrap_or_default()
    }
}

fn sample(db: &Db, every: Duration, stop: &AtomicBool, phase: &Mutex<String>) -> Vec<Sample> {
    let start = Instant::now();
    let first = db.stats();
    let mut prev = first.clone();
    let mut prev_t = 0.0f64;
    let mut out = Vec::new();
    let mut next = start + every;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        if !stopping {
            let now = Instant::now();
            if now < next {
                std::thread::park_timeout(next - now);
                continue;
            }
            next += every;
        }
        let t = start.elapsed().as_secs_f64();
        if stopping && !out.is_empty() && t - prev_t < 0.01 {
            // A sample just taken: the last one would only repeat it.
            return out;
        }
        let st = db.stats();
        let dt = (t - prev_t).max(1e-9);
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / 1e6 / dt;
        let user = st
            .user_bytes_written
            .saturating_sub(first.user_bytes_written);
        let vlog = st
            .vlog_bytes_written
            .saturating_sub(first.vlog_bytes_written);
        let gc = st.gc_bytes_written.saturating_sub(first.gc_bytes_written);
        out.push(Sample {
            t_secs: t,
            phase: phase.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            user_mb_per_sec: d(st.user_bytes_written, prev.user_bytes_written),
            gc_moved_mb_per_sec: d(st.gc_bytes_written, prev.gc_bytes_written),
            gc_freed_mb_per_sec: d(st.gc_bytes_freed, prev.gc_bytes_freed),
            vlog_space_amplification: st.vlog_space_amplification,
            write_amplification: ratio(all_written(&st).saturating_sub(all_written(&first)), user),
            gc_write_amplification: ratio(vlog + gc, vlog),
            vlog_bytes: st.vlog_bytes,
            gc_passes: st.gc_passes.saturating_sub(first.gc_passes),
        });
        prev = st;
        prev_t = t;
        if stopping {
            return out;
        }
    }
}

/// Writes `samples` as CSV with a header line.
pub fn write_csv(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(
        f,
        "t_secs,phase,user_mb_per_sec,gc_moved_mb_per_sec,gc_freed_mb_per_sec,\
         vlog_space_amplification,write_amplification,gc_write_amplification,vlog_bytes,gc_passes"
    )?;
    for s in samples {
        writeln!(
            f,
            "{:.3},{},{:.3},{:.3},{:.3},{:.4},{:.4},{:.4},{},{}",
            s.t_secs,
            s.phase,
            s.user_mb_per_sec,
            s.gc_moved_mb_per_sec,
            s.gc_freed_mb_per_sec,
            s.vlog_space_amplification,
            s.write_amplification,
            s.gc_write_amplification,
            s.vlog_bytes,
            s.gc_passes
        )?;
    }
    f.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Draws `samples` into an SVG or PNG (by the name of `path`): the user write rate and GC's moved and
/// freed rates (top), the vLog space amplification with the GC `target`
/// (middle), and the write amplifications (bottom), over time.
pub fn plot(path: &Path, samples: &[Sample], title: &str, target: Option<f64>) -> Result<()> {
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, (960, 900)).into_drawing_area(),
        samples,
        title,
        target,
    )?;
    crate::picture::write(path, &svg)
}

fn draw(
    root: DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    samples: &[Sample],
    title: &str,
    target: Option<f64>,
) -> Result<()> {
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let panels = root.split_evenly((3, 1));
    let t_max = samples.last().map_or(1.0, |s| s.t_secs).max(1e-3);
    let max_of = |f: &dyn Fn(&Sample) -> f64| {
        samples
            .iter()
            .map(f)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
    };
    let series = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                  y_desc: &str,
                  lines: &[Line<'_>],
                  floor: f64,
                  extra: Option<(&str, f64)>|
     -> Result<()> {
        let mut top = lines
            .iter()
            .map(|(_, _, f)| max_of(*f))
            .fold(floor, f64::max);
        if let Some((_, y)) = extra {
            top = top.max(y);
        }
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..t_max, 0f64..top * 1.15 + 1e-9)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("seconds")
            .y_desc(y_desc)
            .draw()?;
        for (name, color, f) in lines {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    samples
                        .iter()
                        .map(|s| (s.t_secs, f(s)))
                        .filter(|(_, v)| v.is_finite()),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        if let Some((name, y)) = extra {
            chart
                .draw_series(LineSeries::new(
                    vec![(0.0, y), (t_max, y)],
                    BLACK.stroke_width(1),
                ))?
                .label(name)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        Ok(())
    };
    series(
        &panels[0],
        "MB/s",
        &[
            ("user writes", RGBColor(21, 101, 192), &|s| {
                s.user_mb_per_sec
            }),
            ("GC moved", RGBColor(198, 40, 40), &|s| {
                s.gc_moved_mb_per_sec
            }),
            ("GC freed", RGBColor(46, 125, 50), &|s| {
                s.gc_freed_mb_per_sec
            }),
        ],
        0.0,
        None,
    )?;
    series(
        &panels[1],
        "vLog space amp",
        &[("vLog space amplification", RGBColor(106, 27, 154), &|s| {
            s.vlog_space_amplification
        })],
        1.0,
        target.map(|t| ("GC target", t)),
    )?;
    series(
        &panels[2],
        "write amp",
        &[
            ("write amplification", RGBColor(239, 108, 0), &|s| {
                s.write_amplification
            }),
            ("GC write amplification", RGBColor(0, 121, 107), &|s| {
                s.gc_write_amplification
            }),
        ],
        1.0,
        None,
    )?;
    root.present()?;
    Ok(())
}
