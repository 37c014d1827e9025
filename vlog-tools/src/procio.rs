//! The process's I/O counters from `/proc/self/io` (Linux).
//!
//! `/proc/self/io` sums every thread of the process, so the engine's
//! background flush thread is counted with the writers. For buffered writes
//! the kernel charges `write_bytes` when a page is first dirtied (not when it
//! is written back), in whole pages; pages dirtied and then dropped before
//! writeback (a file truncated or deleted) are charged again to
//! `cancelled_write_bytes`. So `write_bytes - cancelled_write_bytes` read
//! right after the writes is what the process sent towards the device.

use serde::Serialize;

/// One reading of `/proc/self/io`; every field is 0 when it is unavailable.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcIo {
    /// Bytes passed to `write`-like system calls (page cache or not).
    pub wchar: u64,
    /// Bytes passed to `read`-like system calls.
    pub rchar: u64,
    /// Bytes the process caused to be sent to the storage layer.
    pub write_bytes: u64,
    /// Bytes the process caused to be fetched from the storage layer.
    pub read_bytes: u64,
    /// Dirtied bytes that never reached storage (truncated or deleted first).
    pub cancelled_write_bytes: u64,
}

impl ProcIo {
    /// Reads the counters; `None` when `/proc/self/io` cannot be read.
    pub fn read() -> Option<ProcIo> {
        let text = std::fs::read_to_string("/proc/self/io").ok()?;
        let mut io = ProcIo::default();
        for line in text.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<u64>() else {
                continue;
            };
            match name.trim() {
                "wchar" => io.wchar = value,
                "rchar" => io.rchar = value,
                "write_bytes" => io.write_bytes = value,
                "read_bytes" => io.read_bytes = value,
                "cancelled_write_bytes" => io.cancelled_write_bytes = value,
                _ => {}
            }
        }
        Some(io)
    }

    /// The counters accumulated since `earlier`.
    pub fn since(&self, earlier: &ProcIo) -> ProcIo {
        ProcIo {
            wchar: self.wchar.saturating_sub(earlier.wchar),
            rchar: self.rchar.saturating_sub(earlier.rchar),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            cancelled_write_bytes: self
                .cancelled_write_bytes
                .saturating_sub(earlier.cancelled_write_bytes),
        }
    }

    /// Bytes written towards the device: `write_bytes - cancelled_write_bytes`.
    pub fn device_write_bytes(&self) -> u64 {
        self.write_bytes.saturating_sub(self.cancelled_write_bytes)
    }
}
