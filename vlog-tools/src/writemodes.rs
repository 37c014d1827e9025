//! `vlog-tools write-modes`: how fast this file system takes an append-only
//! log, written the ways a log can be written, back to back.
//!
//! Each run appends `--size` bytes of incompressible data to a new file in
//! chunks of `--chunk` (one group commit's worth), then makes it durable
//! with one `fdatasync`. The modes:
//!
//! * `buffered`: plain `pwrite`s; the kernel writes back when it likes.
//! * `writeback`: the same, and as each `--writeback-every` bytes fill,
//!   `sync_file_range(SYNC_FILE_RANGE_WRITE)` starts their writeback (what
//!   RocksDB's `bytes_per_sync` does). Nothing waits for it.
//! * `writeback-wait`: as `writeback`, and before starting a range it waits
//!   for the writeback of the range two steps back, so at most two ranges
//!   are dirty or in flight at once.
//! * `dontcache`: `pwritev2(RWF_DONTCACHE)` (Linux 6.14 and later, on file
//!   systems that support it): buffered writes whose pages are dropped once
//!   written back.
//! * `direct`: `O_DIRECT` writes through io_uring with `--queue-depth` in
//!   flight (aligned buffers; the user-space copy is the log's own buffer).
//!
//! A mode the kernel or file system refuses is reported as refused, with
//! the error, and the others go on. Runs go round-robin over the modes
//! (`buffered, writeback, ..., buffered, writeback, ...`) so that a slow
//! minute of a shared disk does not land on one mode only; the table gives
//! each mode's median, minimum and maximum.

use crate::devio;
use crate::units::{bytes, parse_size, parse_size_usize};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `RWF_DONTCACHE` from `linux/fs.h` (Linux 6.14); not yet in every libc.
const RWF_DONTCACHE: libc::c_int = 0x0000_0080;

/// How a log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plain buffered `pwrite`s.
    Buffered,
    /// Buffered, with writeback started every few MiB.
    Writeback,
    /// Buffered, writeback started and waited for two ranges behind.
    WritebackWait,
    /// `pwritev2` with `RWF_DONTCACHE`.
    Dontcache,
    /// `O_DIRECT` through io_uring, several writes in flight.
    Direct,
}

impl Mode {
    /// The name on the command line (`writeback-wait`).
    fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

#[derive(Debug, clap::Args)]
pub struct WriteModesArgs {
    /// Where to write (a file is created in it and removed after each run).
    /// Default: a temporary directory in the current directory, so that the
    /// disk measured is the one a database here would use.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Bytes per run. Use several GiB against a machine with much memory:
    /// less than the kernel's dirty limit measures memory, not the disk.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    size: u64,
    /// Bytes per write.
    #[arg(long, default_value = "1MiB", value_parser = parse_size_usize)]
    chunk: usize,
    /// For `writeback` and `writeback-wait`: start the writeback of every so
    /// many bytes.
    #[arg(long, default_value = "4MiB", value_parser = parse_size)]
    writeback_every: u64,
    /// For `direct`: writes in flight.
    #[arg(long, default_value_t = 4)]
    queue_depth: u32,
    /// Runs of each mode.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The modes, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "buffered,writeback,writeback-wait,dontcache,direct"
    )]
    modes: Vec<Mode>,
    /// One JSON object per mode on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// One mode's runs.
#[derive(Debug, Serialize)]
struct ModeResult {
    mode: Mode,
    /// Why the mode could not run, when it could not.
    refused: Option<String>,
    /// MB/s (10^6 bytes) to durable (the final `fdatasync` included), per run.
    durable_mb_s: Vec<f64>,
    /// MB/s until the last write returned, per run.
    written_mb_s: Vec<f64>,
    /// Bytes the device took per byte written, per run (when the device's
    /// counters can be read).
    device_ratio: Vec<f64>,
}

/// What one run saw.
struct Run {
    written: Duration,
    durable: Duration,
}

pub fn run(args: &WriteModesArgs) -> Result<()> {
    if args.chunk == 0 || !args.chunk.is_multiple_of(4096) {
        bail!("--chunk must be a positive multiple of 4096 bytes (O_DIRECT needs aligned writes)");
    }
    if args.size < args.chunk as u64 {
        bail!("--size must be at least one --chunk");
    }
    if args.writeback_every == 0 {
        bail!("--writeback-every must be positive");
    }
    if args.queue_depth == 0 || args.queue_depth > 256 {
        bail!("--queue-depth must be 1..=256");
    }
    if args.runs == 0 || args.modes.is_empty() {
        bail!("nothing to run: --runs and --modes must not be empty");
    }
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("vlog-tools-write-modes")
                .tempdir_in(".")
                .context("creating a temporary directory here")?;
            tmp.path().to_path_buf()
        }
    };
    let device = match devio::resolve(&dir) {
        devio::Resolved::Device(d) => Some(d),
        _ => None,
    };
    let path = dir.join("write-modes.tmp");
    let data = Aligned::random(args.chunk);
    let mut results: Vec<ModeResult> = args
        .modes
        .iter()
        .map(|&mode| ModeResult {
            mode,
            refused: None,
            durable_mb_s: Vec::new(),
            written_mb_s: Vec::new(),
            device_ratio: Vec::new(),
        })
        .collect();
    let total = args.runs * args.modes.len();
    let bar = indicatif::ProgressBar::new(total as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for round in 0..args.runs {
        for r in results.iter_mut() {
            bar.set_message(format!("{} run {}", r.mode.name(), round + 1));
            if r.refused.is_some() {
                bar.inc(1);
                continue;
            }
            devio::syncfs(&dir).ok();
            let before = device.as_ref().and_then(|d| devio::read_diskstats(&d.name));
            let outcome = one_run(r.mode, &path, &data, args);
            let _ = std::fs::remove_file(&path);
            devio::syncfs(&dir).ok();
            match outcome {
                Ok(run) => {
                    let mb = args.size as f64 / 1e6;
                    r.durable_mb_s.push(mb / run.durable.as_secs_f64());
                    r.written_mb_s.push(mb / run.written.as_secs_f64());
                    let after = device.as_ref().and_then(|d| devio::read_diskstats(&d.name));
                    if let (Some(b), Some(a)) = (before, after) {
                        let dev = a.since(&b).bytes_written() as f64;
                        r.device_ratio.push(dev / args.size as f64);
                    }
                }
                Err(e) => r.refused = Some(format!("{e:#}")),
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if args.json {
        for r in &results {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    println!(
        "{} per run in {} writes, {} run(s) per mode, in {}{}",
        bytes(args.size),
        bytes(args.chunk as u64),
        args.runs,
        dir.display(),
        device
            .as_ref()
            .map(|d| format!(" (device {})", d.name))
            .unwrap_or_default()
    );
    println!(
        "{:<15} {:>14} {:>20} {:>14} {:>9}",
        "mode", "durable MB/s", "(min - max)", "written MB/s", "device×"
    );
    for r in &results {
        let name = r.mode.name();
        if let Some(why) = &r.refused {
            println!("{name:<15} refused: {why}");
            continue;
        }
        let (lo, hi) = min_max(&r.durable_mb_s);
        println!(
            "{:<15} {:>14.0} {:>20} {:>14.0} {:>9}",
            name,
            median(&r.durable_mb_s),
            format!("({lo:.0} - {hi:.0})"),
            median(&r.written_mb_s),
            if r.device_ratio.is_empty() {
                "-".to_string()
            } else {
                format!("{:.3}", median(&r.device_ratio))
            }
        );
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn one_run(mode: Mode, path: &Path, data: &Aligned, args: &WriteModesArgs) -> Result<Run> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(true);
    if mode == Mode::Direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    let file = opts
        .open(path)
        .with_context(|| format!("opening {} ({mode:?})", path.display()))?;
    let start = Instant::now();
    match mode {
        Mode::Direct => write_direct(&file, data, args)?,
        _ => write_buffered(mode, &file, data, args)?,
    }
    let written = start.elapsed();
    file.sync_data().context("fdatasync")?;
    Ok(Run {
        written,
        durable: start.elapsed(),
    })
}

fn write_buffered(mode: Mode, file: &File, data: &Aligned, args: &WriteModesArgs) -> Result<()> {
    let fd = file.as_raw_fd();
    let chunk = data.bytes();
    let mut offset = 0u64;
    // The start of the range whose writeback has not been started yet, and
    // the ranges started, oldest first (for `writeback-wait`).
    let mut unstarted = 0u64;
    let mut started: std::collections::VecDeque<(u64, u64)> = Default::default();
    while offset < args.size {
        let n = chunk.len().min((args.size - offset) as usize);
        if mode == Mode::Dontcache {
            let iov = libc::iovec {
                iov_base: chunk.as_ptr() as *mut libc::c_void,
                iov_len: n,
            };
            // SAFETY: the iovec points into `chunk`, alive for the call.
            let r = unsafe { libc::pwritev2(fd, &iov, 1, offset as libc::off_t, RWF_DONTCACHE) };
            if r < 0 {
                return Err(std::io::Error::last_os_error()).context("pwritev2(RWF_DONTCACHE)");
            }
            if r as usize != n {
                bail!("pwritev2 wrote {r} of {n} bytes");
            }
        } else {
            file.write_all_at(&chunk[..n], offset).context("pwrite")?;
        }
        offset += n as u64;
        let wants_writeback = matches!(mode, Mode::Writeback | Mode::WritebackWait);
        if wants_writeback && offset - unstarted >= args.writeback_every {
            if mode == Mode::WritebackWait && started.len() >= 2 {
                let (at, len) = started.pop_front().expect("two ranges");
                sync_range(fd, at, len, libc::SYNC_FILE_RANGE_WAIT_BEFORE)?;
            }
            sync_range(
                fd,
                unstarted,
                offset - unstarted,
                libc::SYNC_FILE_RANGE_WRITE,
            )?;
            started.push_back((unstarted, offset - unstarted));
            unstarted = offset;
        }
    }
    Ok(())
}

fn sync_range(fd: i32, at: u64, len: u64, flags: libc::c_uint) -> Result<()> {
    // SAFETY: a plain system call on an open descriptor.
    let r = unsafe { libc::sync_file_range(fd, at as libc::off64_t, len as libc::off64_t, flags) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("sync_file_range");
    }
    Ok(())
}

fn write_direct(file: &File, data: &Aligned, args: &WriteModesArgs) -> Result<()> {
    use io_uring::{opcode, types, IoUring};
    let mut ring =
        IoUring::new(args.queue_depth.next_power_of_two().max(2)).context("io_uring_setup")?;
    let fd = types::Fd(file.as_raw_fd());
    let chunk = data.bytes();
    let mut next = 0u64;
    let mut in_flight = 0u32;
    let mut done = 0u64;
    while done < args.size {
        while in_flight < args.queue_depth && next < args.size {
            let n = chunk.len().min((args.size - next) as usize);
            // O_DIRECT needs whole blocks: a short last write is rounded up.
            let n = n.div_ceil(4096) * 4096;
            let sqe = opcode::Write::new(fd, chunk.as_ptr(), n as u32)
                .offset(next)
                .build()
                .user_data(n as u64);
            // SAFETY: the buffer (`data`) outlives the ring's use of it: every
            // submitted write is reaped below before this function returns.
            unsafe { ring.submission().push(&sqe) }.map_err(|_| anyhow::anyhow!("ring full"))?;
            next += n as u64;
            in_flight += 1;
        }
        ring.submit_and_wait(1).context("io_uring_enter")?;
        let completed: Vec<(i32, u64)> = ring
            .completion()
            .map(|c| (c.result(), c.user_data()))
            .collect();
        for (res, want) in completed {
            in_flight -= 1;
            if res < 0 {
                // Drain what is still in flight before the buffer goes.
                while in_flight > 0 {
                    ring.submit_and_wait(1).ok();
                    in_flight -= ring.completion().count() as u32;
                }
                return Err(std::io::Error::from_raw_os_error(-res)).context("O_DIRECT write");
            }
            if res as u64 != want {
                bail!("O_DIRECT write of {want} bytes wrote {res}");
            }
            done += want;
        }
    }
    Ok(())
}

/// A 4096-aligned run of random bytes (O_DIRECT needs the alignment): a
/// vector one block longer than asked, used from its first aligned byte.
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn random(len: usize) -> Aligned {
        use rand::RngCore;
        let mut buf = vec![0u8; len + 4096];
        let start = buf.as_ptr().align_offset(4096);
        rand::thread_rng().fill_bytes(&mut buf[start..start + len]);
        Aligned { buf, start, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_runs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(min_max(&[2.0, 5.0, 1.0]), (1.0, 5.0));
    }
}
