//! Temporary databases removed also when the tool is interrupted (Ctrl-C,
//! SIGTERM, SIGHUP): a benchmark killed after two seconds used to leave
//! hundreds of megabytes behind. And a closed pipe (`vlog-tools ... |
//! head`) ends the tool quietly, as it does other Unix tools.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The directories to remove on a signal.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Installs the signal handler (once, at start).
pub fn install() {
    // SAFETY: restoring the default action of SIGPIPE (the Rust runtime
    // ignores it, which turns a closed pipe into a panic in `println!`)
    // before any other thread exists; `signal` touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let installed = ctrlc::set_handler(|| {
        let dirs = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
        for d in &dirs {
            // Background threads may still create files: try a few times.
            for _ in 0..5 {
                if std::fs::remove_dir_all(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            eprintln!("interrupted: removed {}", d.display());
        }
        if dirs.is_empty() {
            eprintln!("interrupted");
        }
        std::process::exit(130);
    });
    if let Err(e) = installed {
        eprintln!("warning: no signal handler ({e}): an interrupted run leaves its files");
    }
}

/// Removes `dir` if the tool is interrupted before [`forget`] is called.
pub fn remove_on_signal(dir: &Path) {
    PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.to_path_buf());
}

/// The run is done with `dir` (removed by its owner, or kept on purpose).
pub fn forget(dir: &Path) {
    PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|d| d != dir);
}
