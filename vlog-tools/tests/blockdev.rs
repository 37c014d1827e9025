//! The block-device counters against a known write.
//!
//! This binary holds this one test on purpose: `cargo test` runs test binaries
//! one after another, so no other test of this package writes to the device
//! while it measures. (The module's own unit tests, compiled in with it, only
//! read `/proc`.) Other processes on the machine may still write to the same
//! device, hence the tolerance.

#[allow(dead_code)]
#[path = "../src/devio.rs"]
mod devio;

use rand::{RngCore, SeedableRng};
use std::io::Write;

const SIZE: u64 = 64 << 20;

#[test]
fn diskstats_count_a_64_mib_write() {
    // Under the target directory, on the real disk (/tmp may be tmpfs).
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).unwrap();
    let dir = tempfile::tempdir_in(base).unwrap();
    let device = match devio::resolve(dir.path()) {
        devio::Resolved::Device(device) => device,
        devio::Resolved::NoDevice { reason, .. } => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    if let Some(warning) = &device.warning {
        eprintln!("warning: {warning}");
    }
    devio::syncfs(dir.path()).unwrap();
    let Some(before) = devio::read_diskstats(&device.name) else {
        eprintln!("skipped: /proc/diskstats has no line for {}", device.name);
        return;
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x00b1_0cde);
    let mut chunk = vec![0u8; 1 << 20];
    let path = dir.path().join("data");
    let mut file = std::fs::File::create(&path).unwrap();
    for _ in 0..SIZE / chunk.len() as u64 {
        rng.fill_bytes(&mut chunk);
        file.write_all(&chunk).unwrap();
    }
    file.sync_all().unwrap();
    drop(file);
    devio::syncfs(dir.path()).unwrap();

    let after = devio::read_diskstats(&device.name).expect("diskstats vanished");
    let written = after.since(&before).bytes_written();
    eprintln!(
        "{} ({} on {}): {written} bytes written for {SIZE} ({:.3}×)",
        device.name,
        device.fs_type,
        device.mount_point.display(),
        written as f64 / SIZE as f64
    );
    assert!(
        written >= SIZE * 9 / 10,
        "{written} bytes reached {} for a {SIZE}-byte write",
        device.name
    );
    assert!(
        written <= SIZE * 3 / 2 + (16 << 20),
        "{written} bytes reached {} for a {SIZE}-byte write (other writers?)",
        device.name
    );
}
