//! Progress bars for the phases: shown on stderr once a phase has run for
//! a second (short phases stay quiet), hidden when stderr is not a
//! terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// A phase's bar.
pub struct Bar {
    bar: ProgressBar,
    shown: bool,
    by_time: Option<Duration>,
}

/// A bar for `label`: by operations when `total` is known (and no
/// deadline is nearer), else by time towards `deadline`.
pub fn bar(label: &str, total: Option<u64>, deadline: Option<Duration>) -> Bar {
    let (len, by_time) = match (total, deadline) {
        (Some(t), None) if t != u64::MAX => (t, None),
        (_, Some(d)) => (d.as_millis() as u64, Some(d)),
        _ => (0, None),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    let template = if by_time.is_some() {
        "{prefix:>16} [{elapsed_precise}] {wide_bar} {msg}"
    } else {
        "{prefix:>16} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, {eta} left) {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    Bar {
        bar,
        shown: false,
        by_time,
    }
}

impl Bar {
    /// `ops` done after `elapsed`.
    pub fn update(&mut self, ops: u64, elapsed: Duration) {
        if !self.shown && elapsed >= Duration::from_secs(1) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        match self.by_time {
            Some(_) => {
                self.bar.set_position(elapsed.as_millis() as u64);
                self.bar.set_message(format!("{ops} ops"));
            }
            None => self.bar.set_position(ops),
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
