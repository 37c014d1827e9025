//! PLACEHOLDER (replaced by the blockdev branch).
use std::path::{Path, PathBuf};
#[derive(Debug, Clone)]
pub struct Device { pub name: String, pub disk: String, pub major: u32, pub minor: u32, pub fs_type: String, pub mount_point: PathBuf }
pub enum Resolved { Device(Device), NoDevice { fs_type: String, mount_point: PathBuf, reason: String } }
pub fn resolve(_dir: &Path) -> Resolved { Resolved::NoDevice { fs_type: String::new(), mount_point: PathBuf::new(), reason: "placeholder".into() } }
#[derive(Debug, Clone, Copy)]
pub struct DiskStats { pub sectors_read: u64, pub sectors_written: u64, pub reads: u64, pub writes: u64 }
impl DiskStats { pub fn bytes_read(&self) -> u64 { self.sectors_read * 512 } pub fn bytes_written(&self) -> u64 { self.sectors_written * 512 } pub fn since(&self, e: &DiskStats) -> DiskStats { *e } }
pub fn read_diskstats(_name: &str) -> Option<DiskStats> { None }
pub enum Flash { Reported { host_bytes_written: Option<u64>, media_bytes_written: Option<u64>, source: String }, NotReported { reason: String } }
pub fn flash_counters(_d: &Device) -> Flash { Flash::NotReported { reason: "placeholder".into() } }
pub fn peak_rss_bytes() -> Option<u64> { None }
pub fn syncfs(_dir: &Path) -> std::io::Result<()> { Ok(()) }
