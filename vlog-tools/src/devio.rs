//! The layers below the process, for `bench`'s amplification figures (Linux).
//!
//! * [`resolve`] finds the block device that holds a directory (through
//!   `/proc/self/mountinfo` and `/sys/dev/block`), or says why there is none
//!   (tmpfs, a network file system, ...).
//! * [`read_diskstats`] reads that device's sector counters from
//!   `/proc/diskstats`: what the kernel sent to (or fetched from) the device,
//!   file-system metadata and journal included.
//! * [`flash_counters`] asks `smartctl` for the drive's own lifetime write
//!   counters: host writes as the drive counted them and, where the drive
//!   reports it, NAND (media) writes, whose ratio is the drive's own write
//!   amplification.
//! * [`peak_rss_bytes`] and [`rss_bytes`] read the process's memory use.
//! * [`syncfs`] flushes a file system's dirty pages, so that a phase's writes
//!   have reached the device before its counters are read.
//!
//! Nothing here panics on odd `/proc` or `/sys` content: what cannot be read
//! or parsed gives `None` or a variant with a human reason. The module uses no
//! `crate::` paths, so an integration test can include it with `#[path]`.

use serde_json::Value;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// A block device found under a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The kernel's name of the device holding the file system, as in
    /// `/proc/diskstats` (`vda1`, `nvme0n1p2`, `dm-0`, `loop3`): a partition
    /// when the file system is on one.
    pub name: String,
    /// The whole disk `name` belongs to (`vda`, `nvme0n1`); `name` itself
    /// when it is not a partition. The drive's SMART counters are asked of it.
    pub disk: String,
    /// The device's major number.
    pub major: u32,
    /// The device's minor number.
    pub minor: u32,
    /// The file system type (`ext4`, `xfs`, `btrfs`, ...).
    pub fs_type: String,
    /// Where the file system is mounted.
    pub mount_point: PathBuf,
    /// Something that makes the device's figures doubtful though they exist
    /// (an overlay file system, a RAM-backed disk).
    pub warning: Option<String>,
}

/// What [`resolve`] found under a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The directory's file system is on this block device.
    Device(Device),
    /// There is no block device whose counters mean anything for the directory.
    NoDevice {
        /// The file system type, or `"unknown"` when the mount was not found.
        fs_type: String,
        /// The mount point, empty when the mount was not found.
        mount_point: PathBuf,
        /// Why there is no device, in a sentence for the user.
        reason: String,
    },
}

/// One line of `/proc/self/mountinfo`, the fields [`resolve`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    major: u32,
    minor: u32,
    mount_point: PathBuf,
    fs_type: String,
    source: String,
    super_options: String,
}

/// Finds the block device holding `dir`.
///
/// The mount is the longest mount point in `/proc/self/mountinfo` that is a
/// prefix of the canonicalized `dir` (the later one when a point is mounted
/// over). Its `major:minor` is mapped to a device name through the
/// `/sys/dev/block/MAJ:MIN` symlink; for a partition the whole disk is the
/// link's parent directory. When the number is an anonymous device (major 0,
/// as on btrfs), the mount source (`/dev/vda2`) is used when it is a block
/// device. Memory, pseudo, network and user-space file systems give
/// [`Resolved::NoDevice`]; an overlay gives its upper layer's device, with a
/// warning, when that is visible in this mount namespace.
pub fn resolve(dir: &Path) -> Resolved {
    let canonical = match fs::canonicalize(dir) {
        Ok(path) => path,
        Err(e) => return unknown(format!("{} cannot be resolved: {e}", dir.display())),
    };
    let text = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(text) => text,
        Err(e) => return unknown(format!("/proc/self/mountinfo cannot be read: {e}")),
    };
    let mounts = parse_mountinfo(&text);
    resolve_in(
        &mounts,
        &canonical,
        &dir.display().to_string(),
        Path::new("/sys"),
        true,
    )
}

fn unknown(reason: String) -> Resolved {
    Resolved::NoDevice {
        fs_type: "unknown".to_string(),
        mount_point: PathBuf::new(),
        reason,
    }
}

/// [`resolve`] over parsed mounts and a `/sys` root; `shown` is the directory
/// as the user gave it. `follow_overlay` allows one step into an overlay's
/// upper layer.
fn resolve_in(
    mounts: &[Mount],
    canonical: &Path,
    shown: &str,
    sys: &Path,
    follow_overlay: bool,
) -> Resolved {
    let Some(mount) = find_mount(mounts, canonical) else {
        return unknown(format!(
            "no mount in /proc/self/mountinfo holds {shown}: the block-device figures mean nothing here"
        ));
    };
    let no_device = |reason: String| Resolved::NoDevice {
        fs_type: mount.fs_type.clone(),
        mount_point: mount.mount_point.clone(),
        reason,
    };
    let fs = mount.fs_type.as_str();
    if fs == "overlay" {
        return resolve_overlay(mounts, mount, shown, sys, follow_overlay);
    }
    if let Some(kind) = no_device_kind(fs) {
        return no_device(format!(
            "{shown} is on {fs}{kind}: there is no block device; the block-device figures mean nothing here"
        ));
    }
    let (major, minor) = if mount.major != 0 {
        (mount.major, mount.minor)
    } else {
        match source_rdev(&mount.source) {
            Some(numbers) => numbers,
            None => {
                return no_device(format!(
                "{shown} is on {fs} with the anonymous device 0:{} and its source {:?} is not a \
                     block device: the block-device figures mean nothing here",
                mount.minor, mount.source
            ))
            }
        }
    };
    match sysfs_device(sys, major, minor) {
        Ok((name, disk)) => {
            let warning = ram_disk_warning(&name, shown);
            Resolved::Device(Device {
                name,
                disk,
                major,
                minor,
                fs_type: mount.fs_type.clone(),
                mount_point: mount.mount_point.clone(),
                warning,
            })
        }
        Err(reason) => no_device(format!(
            "{shown} is on {fs} on device {major}:{minor}, but {reason}: the block-device figures \
             mean nothing here"
        )),
    }
}

/// An overlay's writes land in its upper layer (`upperdir=` in the super
/// options); that directory's device, when visible here, is the answer.
fn resolve_overlay(
    mounts: &[Mount],
    mount: &Mount,
    shown: &str,
    sys: &Path,
    follow_overlay: bool,
) -> Resolved {
    let no_device = |reason: String| Resolved::NoDevice {
        fs_type: mount.fs_type.clone(),
        mount_point: mount.mount_point.clone(),
        reason,
    };
    let upper = mount
        .super_options
        .split(',')
        .find_map(|option| option.strip_prefix("upperdir="))
        .map(|value| PathBuf::from(unescape(value)));
    let Some(upper) = upper.filter(|_| follow_overlay) else {
        return no_device(format!(
            "{shown} is on overlay with no upper layer to follow: there is no block device; the \
             block-device figures mean nothing here"
        ));
    };
    let Ok(canonical_upper) = fs::canonicalize(&upper) else {
        return no_device(format!(
            "{shown} is on overlay and its upper layer {} is not visible in this mount namespace \
             (a container): the block-device figures mean nothing here",
            upper.display()
        ));
    };
    match resolve_in(mounts, &canonical_upper, shown, sys, false) {
        Resolved::Device(mut device) => {
            device.warning = Some(format!(
                "{shown} is on overlay: its writes go to the upper layer {} on {}, a device other \
                 layers and containers may share; copy-up of lower-layer files adds writes",
                upper.display(),
                device.name
            ));
            device.fs_type = mount.fs_type.clone();
            device.mount_point = mount.mount_point.clone();
            Resolved::Device(device)
        }
        Resolved::NoDevice { reason, .. } => no_device(format!(
            "{shown} is on overlay whose upper layer {} has no device ({reason})",
            upper.display()
        )),
    }
}

/// The kind of file system without a device, as a phrase after its name, or
/// `None` when the type may sit on a block device.
fn no_device_kind(fs_type: &str) -> Option<&'static str> {
    match fs_type {
        "tmpfs" | "ramfs" | "devtmpfs" | "hugetlbfs" => Some(""),
        "proc" | "sysfs" | "cgroup" | "cgroup2" | "devpts" | "debugfs" | "tracefs"
        | "securityfs" | "pstore" | "bpf" | "mqueue" | "autofs" => {
            Some(" (a kernel pseudo file system)")
        }
        "nfs" | "nfs4" | "cifs" | "smb3" | "smbfs" | "9p" | "virtiofs" | "ceph" | "glusterfs"
        | "afs" | "lustre" => Some(" (a network or host-shared file system)"),
        _ if fs_type == "fuse" || fs_type.starts_with("fuse.") || fs_type == "fuseblk" => {
            Some(" (a user-space file system)")
        }
        _ => None,
    }
}

/// A warning for devices whose "disk" is memory.
fn ram_disk_warning(name: &str, shown: &str) -> Option<String> {
    let ram = name.starts_with("zram") || name.starts_with("ram") || name.starts_with("pmem");
    ram.then(|| {
        format!("{shown} is on {name}, a RAM-backed block device: its counters are not a disk's")
    })
}

/// Parses `/proc/self/mountinfo`; lines that do not parse are skipped.
///
/// A line is `id parent MAJ:MIN root mount-point options [optional...] - type
/// source super-options`, with spaces, tabs, newlines and backslashes in paths
/// escaped as octal (`\040`).
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mount_line).collect()
}

fn parse_mount_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let separator = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    let (major, minor) = parse_major_minor(fields.get(2)?)?;
    let mount_point = PathBuf::from(unescape(fields.get(4)?));
    let fs_type = unescape(fields.get(separator + 1)?);
    let source = fields
        .get(separator + 2)
        .map(|s| unescape(s))
        .unwrap_or_default();
    let super_options = fields.get(separator + 3).copied().unwrap_or("").to_string();
    Some(Mount {
        major,
        minor,
        mount_point,
        fs_type,
        source,
        super_options,
    })
}

fn parse_major_minor(field: &str) -> Option<(u32, u32)> {
    let (major, minor) = field.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Undoes the kernel's octal escapes (`\040` is a space); anything else is
/// kept as it is.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `dir`: the longest mount point that is a prefix of it,
/// component by component; of equal ones the last (it is mounted on top).
fn find_mount<'a>(mounts: &'a [Mount], dir: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for mount in mounts {
        if !dir.starts_with(&mount.mount_point) {
            continue;
        }
        let depth = component_count(&mount.mount_point);
        if best.is_none_or(|b| depth >= component_count(&b.mount_point)) {
            best = Some(mount);
        }
    }
    best
}

fn component_count(path: &Path) -> usize {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

/// The major and minor numbers of a mount source that is a block device node.
fn source_rdev(source: &str) -> Option<(u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !source.starts_with('/') {
        return None;
    }
    let meta = fs::metadata(source).ok()?;
    meta.file_type()
        .is_block_device()
        .then(|| split_dev(meta.rdev()))
}

/// Splits a Linux `dev_t` into its major and minor numbers.
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// The device name and its whole disk for `major:minor`, from
/// `<sys>/dev/block/MAJ:MIN`, or why they cannot be found.
fn sysfs_device(sys: &Path, major: u32, minor: u32) -> Result<(String, String), String> {
    let link = sys.join("dev/block").join(format!("{major}:{minor}"));
    let target =
        fs::read_link(&link).map_err(|e| format!("{} cannot be read ({e})", link.display()))?;
    let name =
        file_name(&target).ok_or_else(|| format!("{} has no device name", link.display()))?;
    let disk = if link.join("partition").exists() {
        // The partition's directory sits inside its disk's.
        let parent = fs::canonicalize(link.join("..")).ok();
        parent
            .as_deref()
            .and_then(file_name)
            .or_else(|| target.parent().and_then(file_name))
            .unwrap_or_else(|| name.clone())
    } else {
        name.clone()
    };
    Ok((name, disk))
}

fn file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Cumulative counters of one block device, from `/proc/diskstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// 512-byte sectors read.
    pub sectors_read: u64,
    /// 512-byte sectors written.
    pub sectors_written: u64,
    /// Read requests completed.
    pub reads: u64,
    /// Write requests completed.
    pub writes: u64,
}

impl DiskStats {
    /// Bytes read (diskstats' sectors are always 512 bytes, whatever the
    /// device's sector size).
    pub fn bytes_read(&self) -> u64 {
        self.sectors_read.saturating_mul(512)
    }

    /// Bytes written.
    pub fn bytes_written(&self) -> u64 {
        self.sectors_written.saturating_mul(512)
    }

    /// The counters accumulated since `earlier` (0 where a counter went
    /// backwards, as after a device was re-attached).
    pub fn since(&self, earlier: &DiskStats) -> DiskStats {
        DiskStats {
            sectors_read: self.sectors_read.saturating_sub(earlier.sectors_read),
            sectors_written: self.sectors_written.saturating_sub(earlier.sectors_written),
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
        }
    }
}

/// Reads the counters of the device `name` (as in [`Device::name`]) from
/// `/proc/diskstats`; `None` when the file cannot be read or has no usable
/// line for it.
pub fn read_diskstats(name: &str) -> Option<DiskStats> {
    let text = fs::read_to_string("/proc/diskstats").ok()?;
    parse_diskstats(&text, name)
}

/// Finds `name`'s line in `/proc/diskstats` text: `major minor name reads
/// reads-merged sectors-read ms-reading writes writes-merged sectors-written
/// ...`. `None` when there is no such line or its fields are not numbers.
fn parse_diskstats(text: &str, name: &str) -> Option<DiskStats> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(2) != Some(&name) {
            return None;
        }
        let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
        Some(DiskStats {
            reads: number(3)?,
            sectors_read: number(5)?,
            writes: number(7)?,
            sectors_written: number(9)?,
        })
    })
}

/// The drive's own lifetime write counters, from SMART.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    /// The drive reported at least one counter.
    Reported {
        /// Bytes the host sent to the drive, as the drive counted them.
        host_bytes_written: Option<u64>,
        /// Bytes the drive wrote to its flash (NAND/media), host writes and
        /// its own garbage collection together.
        media_bytes_written: Option<u64>,
        /// Where the figures come from (the command and the attributes).
        source: String,
    },
    /// No counter: why not, in a sentence for the user.
    NotReported {
        /// The reason.
        reason: String,
    },
}

/// Asks the drive under `dev` for its lifetime write counters, with one
/// `smartctl` call on the whole disk ([`Device::disk`]).
///
/// * NVMe (`nvme*`): `smartctl -j -a`; the health log's `data_units_written`
///   (units of 1000 × 512 bytes) is the host writes. The standard log has no
///   media writes, so that is `None`.
/// * Other disks: `smartctl -j -i -A`; host writes from attribute 241 (or 246)
///   when its name gives the unit (`Total_LBAs_Written`: logical blocks,
///   `Host_Writes_32MiB`, `..._GiB` or `_GB`, taken as GiB), and media writes from attributes 249,
///   233 or 247 only when the name says NAND, media or flash writes and gives
///   a unit (`NAND_Writes_1GiB`). 233 is often a wear percentage instead,
///   hence the name check.
///
/// Devices that never pass SMART through (virtio, loop, device-mapper, RAM
/// disks, ...) are `NotReported` without running anything.
pub fn flash_counters(dev: &Device) -> Flash {
    let disk = dev.disk.as_str();
    if let Some(reason) = no_smart_reason(disk) {
        return Flash::NotReported { reason };
    }
    let Some(smartctl) = find_smartctl() else {
        return Flash::NotReported {
            reason: "smartctl is not installed (apt-get install smartmontools)".to_string(),
        };
    };
    let nvme = disk.starts_with("nvme");
    let node = format!("/dev/{disk}");
    // `-i` too: the identity section has the logical block size that
    // Total_LBAs_Written counts in.
    let flag = if nvme { "-a" } else { "-A" };
    let output = match std::process::Command::new(&smartctl)
        .args(["-j", "-i", flag, &node])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            return Flash::NotReported {
                reason: format!("{} could not be run: {e}", smartctl.display()),
            }
        }
    };
    let command = format!("smartctl -j -i {flag} {node}");
    let json: Value = match serde_json::from_slice(&output.stdout) {
        Ok(json) => json,
        Err(_) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().next().unwrap_or("").trim();
            return Flash::NotReported {
                reason: format!(
                    "{command} gave no JSON ({}{}{first})",
                    output.status,
                    if first.is_empty() { "" } else { ": " }
                ),
            };
        }
    };
    let counters = if nvme {
        nvme_counters(&json)
    } else {
        ata_counters(&json)
    };
    match counters {
        Some((host, media, attributes)) => Flash::Reported {
            host_bytes_written: host,
            media_bytes_written: media,
            source: format!("{command}: {attributes}"),
        },
        None => Flash::NotReported {
            reason: match smartctl_messages(&json) {
                Some(messages) => format!("{command} reported no write counters: {messages}"),
                None => format!("{command} reported no write counters for {disk}"),
            },
        },
    }
}

/// Why a disk of this kind has no SMART counters, or `None` to ask it.
fn no_smart_reason(disk: &str) -> Option<String> {
    let kind = if disk.starts_with("vd") || disk.starts_with("xvd") {
        "a virtual machine's paravirtual disk (the host's drive is not visible)"
    } else if disk.starts_with("loop") {
        "a loop device (a file on another file system)"
    } else if disk.starts_with("dm-") {
        "a device-mapper device (LVM or encryption over other disks)"
    } else if disk.starts_with("md") {
        "a software RAID array"
    } else if disk.starts_with("zram") || disk.starts_with("ram") || disk.starts_with("pmem") {
        "a RAM-backed device"
    } else if disk.starts_with("nbd") || disk.starts_with("rbd") {
        "a network block device"
    } else {
        return None;
    };
    Some(format!("{disk} is {kind}: it has no SMART write counters"))
}

/// `smartctl` on `PATH`, or in `/usr/sbin` or `/sbin` (not on every user's
/// `PATH`).
fn find_smartctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("smartctl"))
        .find(|candidate| candidate.is_file())
}

/// A JSON number as `u64` (`smartctl` may print a large counter as a float).
fn json_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then_some(f as u64)
    })
}

/// Host and media bytes written, and a description of what was taken, from
/// `smartctl -j -a` on an NVMe drive.
fn nvme_counters(json: &Value) -> Option<(Option<u64>, Option<u64>, String)> {
    let units = json_u64(
        json.get("nvme_smart_health_information_log")?
            .get("data_units_written")?,
    )?;
    Some((
        Some(units.saturating_mul(512_000)),
        None,
        "data_units_written × 512000 bytes (the NVMe health log has no media writes)".to_string(),
    ))
}

/// The unit in bytes a SMART attribute's name gives its raw value, if any.
fn unit_from_name(name: &str, logical_block: u64) -> Option<u64> {
    let lower = name.to_ascii_lowercase();
    if lower.contains("lbas") {
        Some(logical_block)
    } else if lower.contains("32mib") {
        Some(32 << 20)
    } else if lower.contains("gib") || lower.contains("_gb") {
        Some(1 << 30)
    } else if lower.contains("mib") {
        Some(1 << 20)
    } else {
        None
    }
}

/// Host and media bytes written, and a description of what was taken, from
/// `smartctl -j -A` on a SATA or SCSI drive.
fn ata_counters(json: &Value) -> Option<(Option<u64>, Option<u64>, String)> {
    let table = json.get("ata_smart_attributes")?.get("table")?.as_array()?;
    let logical_block = json
        .get("logical_block_size")
        .and_then(json_u64)
        .filter(|size| (512..=65536).contains(size))
        .unwrap_or(512);
    let attribute = |wanted: u64| {
        table.iter().find_map(|entry| {
            (entry.get("id").and_then(json_u64) == Some(wanted)).then_some(())?;
            let name = entry.get("name")?.as_str()?;
            let raw = entry.get("raw")?.get("value").and_then(json_u64)?;
            Some((wanted, name, raw))
        })
    };
    let mut taken = Vec::new();
    let host = [241, 246].into_iter().find_map(|id| {
        let (id, name, raw) = attribute(id)?;
        let lower = name.to_ascii_lowercase();
        if !(lower.contains("write") || lower.contains("lbas_written")) {
            return None;
        }
        let unit = unit_from_name(name, logical_block)?;
        taken.push(format!("{id} {name} × {unit}"));
        Some(raw.saturating_mul(unit))
    });
    let media = [249, 233, 247].into_iter().find_map(|id| {
        let (id, name, raw) = attribute(id)?;
        let lower = name.to_ascii_lowercase();
        let flash = lower.contains("nand") || lower.contains("media") || lower.contains("flash");
        if !(flash && lower.contains("writ")) {
            return None;
        }
        let unit = unit_from_name(name, logical_block)?;
        taken.push(format!("{id} {name} × {unit}"));
        Some(raw.saturating_mul(unit))
    });
    if host.is_none() && media.is_none() {
        return None;
    }
    Some((host, media, format!("attributes {}", taken.join(", "))))
}

/// `smartctl`'s own messages (`smartctl.messages[].string`), joined.
fn smartctl_messages(json: &Value) -> Option<String> {
    let messages: Vec<&str> = json
        .get("smartctl")?
        .get("messages")?
        .as_array()?
        .iter()
        .filter_map(|m| m.get("string")?.as_str())
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), in
/// bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM")
}

/// The process's current resident set size (`VmRSS`), in bytes.
pub fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS")
}

fn status_bytes(key: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&text, key)
}

/// A `Key:   1234 kB` line of `/proc/self/status`, in bytes.
fn parse_status_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        let mut parts = value.split_whitespace();
        let kb = parts.next()?.parse::<u64>().ok()?;
        match parts.next() {
            Some("kB") | None => Some(kb.saturating_mul(1024)),
            Some(_) => None,
        }
    })
}

/// Writes back the dirty data of the file system holding `dir` (`syncfs(2)`),
/// so that the writes so far have reached the device before its counters are
/// read.
pub fn syncfs(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let handle = fs::File::open(dir)?;
    // SAFETY: the descriptor is open for the duration of the call.
    let result = unsafe { libc::syncfs(handle.as_raw_fd()) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A scratch directory in memory when `/dev/shm` exists: these tests also
    /// run inside `tests/blockdev.rs`, whose measurement must not see their
    /// writes.
    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap()
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683584k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683584k
40 27 259:2 / /data rw,relatime shared:5 master:1 - xfs /dev/nvme0n1p2 rw
41 27 0:45 / /srv/my\\040disk rw - btrfs /dev/no-such-sdb1 rw,space_cache
42 27 0:46 / /mnt/nfs rw - nfs4 server:/export rw
43 27 0:47 / /mnt/sshfs rw - fuse.sshfs me@host: rw
garbage
44 27 x:y / /bad rw - ext4 /dev/sda rw
45 27 8:1 / /nosep rw shared:1 ext4 /dev/sda1 rw
";

    #[test]
    fn mountinfo_lines_parse_and_bad_ones_are_skipped() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 8);
        let data = &mounts[4];
        assert_eq!((data.major, data.minor), (259, 2));
        assert_eq!(data.mount_point, PathBuf::from("/data"));
        assert_eq!(data.fs_type, "xfs");
        assert_eq!(data.source, "/dev/nvme0n1p2");
        assert_eq!(mounts[5].mount_point, PathBuf::from("/srv/my disk"));
        assert_eq!(mounts[5].super_options, "rw,space_cache");
    }

    #[test]
    fn the_longest_and_last_mount_point_wins() {
        let mounts = parse_mountinfo(MOUNTINFO);
        let at = |p: &str| find_mount(&mounts, Path::new(p)).map(|m| m.major);
        assert_eq!(at("/data/db/x"), Some(259));
        assert_eq!(at("/database"), Some(254), "a prefix by component only");
        assert_eq!(at("/"), Some(254));
        let shm = find_mount(&mounts, Path::new("/dev/shm/a")).unwrap();
        assert_eq!(shm.minor, 27, "the later of two stacked mounts");
        assert_eq!(find_mount(&[], Path::new("/x")), None);
    }

    #[test]
    fn unescape_decodes_octal_and_keeps_the_rest() {
        assert_eq!(unescape("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(unescape("\\"), "\\");
        assert_eq!(unescape("\\777x"), "\\777x");
        assert_eq!(unescape(""), "");
    }

    #[test]
    fn pseudo_network_and_anonymous_mounts_have_no_device() {
        let mounts = parse_mountinfo(MOUNTINFO);
        let sys = Path::new("/nonexistent-sys");
        for (dir, fs) in [
            ("/dev/shm/x", "tmpfs"),
            ("/proc/1", "proc"),
            ("/mnt/nfs/a", "nfs4"),
            ("/mnt/sshfs", "fuse.sshfs"),
        ] {
            match resolve_in(&mounts, Path::new(dir), dir, sys, true) {
                Resolved::NoDevice {
                    fs_type, reason, ..
                } => {
                    assert_eq!(fs_type, fs);
                    assert!(reason.contains(dir) && reason.contains(fs), "{reason}");
                    assert!(reason.contains("mean nothing here"), "{reason}");
                }
                other => panic!("{dir}: {other:?}"),
            }
        }
        // btrfs with a source that is no block device here.
        let Resolved::NoDevice { reason, .. } = resolve_in(
            &mounts,
            Path::new("/srv/my disk"),
            "/srv/my disk",
            sys,
            true,
        ) else {
            panic!("btrfs resolved")
        };
        assert!(reason.contains("anonymous device 0:45"), "{reason}");
    }

    #[test]
    fn sysfs_maps_numbers_to_devices_and_partitions_to_disks() {
        use std::os::unix::fs::symlink;
        let sys = scratch();
        let root = sys.path();
        let disk = root.join("devices/pci0/nvme/nvme0/nvme0n1");
        let part = disk.join("nvme0n1p2");
        fs::create_dir_all(&part).unwrap();
        fs::write(part.join("partition"), "2\n").unwrap();
        fs::create_dir_all(root.join("dev/block")).unwrap();
        symlink(
            "../../devices/pci0/nvme/nvme0/nvme0n1",
            root.join("dev/block/259:0"),
        )
        .unwrap();
        symlink(
            "../../devices/pci0/nvme/nvme0/nvme0n1/nvme0n1p2",
            root.join("dev/block/259:2"),
        )
        .unwrap();
        assert_eq!(
            sysfs_device(root, 259, 2),
            Ok(("nvme0n1p2".to_string(), "nvme0n1".to_string()))
        );
        assert_eq!(
            sysfs_device(root, 259, 0),
            Ok(("nvme0n1".to_string(), "nvme0n1".to_string()))
        );
        assert!(sysfs_device(root, 8, 0).is_err());

        let mounts = parse_mountinfo(MOUNTINFO);
        let Resolved::Device(device) =
            resolve_in(&mounts, Path::new("/data/db"), "/data/db", root, true)
        else {
            panic!("no device")
        };
        assert_eq!(device.name, "nvme0n1p2");
        assert_eq!(device.disk, "nvme0n1");
        assert_eq!((device.major, device.minor), (259, 2));
        assert_eq!(device.fs_type, "xfs");
        assert_eq!(device.mount_point, PathBuf::from("/data"));
        assert_eq!(device.warning, None);
    }

    /// glibc's `makedev`, to check [`split_dev`] against.
    fn makedev(major: u64, minor: u64) -> u64 {
        ((major & 0xffff_f000) << 32)
            | ((major & 0x0000_0fff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0x0000_00ff)
    }

    #[test]
    fn dev_t_splits_like_glibc() {
        assert_eq!(split_dev((259 << 8) | 2), (259, 2));
        for (major, minor) in [
            (0, 45),
            (8, 17),
            (259, 2),
            (4096, 300_000),
            (u32::MAX, u32::MAX),
        ] {
            let dev = makedev(u64::from(major), u64::from(minor));
            assert_eq!(split_dev(dev), (major, minor), "{major}:{minor}");
        }
    }

    const DISKSTATS: &str = "\
   7       0 loop0 1481 0 23096 40 119536 163380 4913200 31319 0 26384 53886 0 0 0 0 79081 22526
 254       0 vda 2721064 142631 108006674 3425535 10885625 736474 1047666832 8711621 0 1905504
 254       1 vda1 10 0 20 1 30 0 40 5 0 1 1
 259       0 short 1 2 3
 259       1 hostile 1 2 x 4 5 6 -7 8
 259       2 huge 1 2 99999999999999999999 4 5 6 7 8
";

    #[test]
    fn diskstats_parse_and_hostile_lines_give_none() {
        let vda = parse_diskstats(DISKSTATS, "vda").unwrap();
        assert_eq!(
            vda,
            DiskStats {
                sectors_read: 108006674,
                sectors_written: 1047666832,
                reads: 2721064,
                writes: 10885625,
            }
        );
        assert_eq!(vda.bytes_written(), 1047666832 * 512);
        let part = parse_diskstats(DISKSTATS, "vda1").unwrap();
        assert_eq!(
            (
                part.reads,
                part.sectors_read,
                part.writes,
                part.sectors_written
            ),
            (10, 20, 30, 40)
        );
        for name in ["short", "hostile", "huge", "missing", ""] {
            assert_eq!(parse_diskstats(DISKSTATS, name), None, "{name}");
        }
        assert_eq!(parse_diskstats("", "vda"), None);
        assert_eq!(parse_diskstats("\0\n\u{feff} x y\n", "y"), None);
    }

    #[test]
    fn diskstats_deltas_saturate() {
        let later = DiskStats {
            sectors_read: 10,
            sectors_written: 100,
            reads: 1,
            writes: 5,
        };
        let earlier = DiskStats {
            sectors_read: 20,
            sectors_written: 40,
            reads: 0,
            writes: 2,
        };
        let delta = later.since(&earlier);
        assert_eq!(delta.sectors_read, 0);
        assert_eq!(delta.sectors_written, 60);
        assert_eq!(delta.bytes_written(), 60 * 512);
        assert_eq!((delta.reads, delta.writes), (1, 3));
        let max = DiskStats {
            sectors_written: u64::MAX,
            ..DiskStats::default()
        };
        assert_eq!(max.bytes_written(), u64::MAX);
    }

    #[test]
    fn status_lines_give_bytes() {
        let text = "Name:\tcat\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\nVmBad:\t x kB\nVmMB:\t 3 MB\n";
        assert_eq!(parse_status_kb(text, "VmHWM"), Some(1234 * 1024));
        assert_eq!(parse_status_kb(text, "VmRSS"), Some(1000 * 1024));
        assert_eq!(parse_status_kb(text, "VmBad"), None);
        assert_eq!(parse_status_kb(text, "VmMB"), None);
        assert_eq!(parse_status_kb(text, "VmSwap"), None);
        assert_eq!(parse_status_kb("VmHWM", "VmHWM"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        // The current size first: the peak read later is not below it by
        // more than the kernel's per-CPU RSS counters may lag (CI once saw
        // a peak of 3,203,072 B after a current 3,207,168 B: one page).
        let now = rss_bytes().expect("VmRSS");
        let peak = peak_rss_bytes().expect("VmHWM");
        assert!(now > 0 && peak + (1 << 20) >= now, "peak {peak}, now {now}");
    }

    #[test]
    fn nvme_health_log_gives_host_writes() {
        let json = json!({
            "device": {"name": "/dev/nvme0n1", "type": "nvme"},
            "nvme_smart_health_information_log": {
                "data_units_read": 1000,
                "data_units_written": 2_000_000,
                "percentage_used": 3
            }
        });
        let (host, media, what) = nvme_counters(&json).unwrap();
        assert_eq!(host, Some(2_000_000 * 512_000));
        assert_eq!(media, None);
        assert!(what.contains("data_units_written"));
        assert_eq!(
            nvme_counters(&json!({"nvme_smart_health_information_log": {}})),
            None
        );
        assert_eq!(
            nvme_counters(
                &json!({"nvme_smart_health_information_log": {"data_units_written": "x"}})
            ),
            None
        );
        assert_eq!(nvme_counters(&json!([1, 2])), None);
    }

    fn attribute(id: u64, name: &str, raw: u64) -> Value {
        json!({"id": id, "name": name, "value": 99, "raw": {"value": raw, "string": raw.to_string()}})
    }

    #[test]
    fn sata_attributes_give_host_and_media_writes() {
        let json = json!({
            "logical_block_size": 512,
            "ata_smart_attributes": {"table": [
                attribute(9, "Power_On_Hours", 100),
                attribute(233, "Media_Wearout_Indicator", 98),
                attribute(241, "Total_LBAs_Written", 1_000_000),
                attribute(249, "NAND_Writes_1GiB", 7),
            ]}
        });
        let (host, media, what) = ata_counters(&json).unwrap();
        assert_eq!(host, Some(1_000_000 * 512));
        assert_eq!(media, Some(7 << 30));
        assert!(
            what.contains("241 Total_LBAs_Written") && what.contains("249 NAND_Writes_1GiB"),
            "{what}"
        );

        // A wear percentage at 233 is not taken as writes; 32 MiB units are.
        let json = json!({"ata_smart_attributes": {"table": [
            attribute(233, "Media_Wearout_Indicator", 98),
            attribute(241, "Host_Writes_32MiB", 10),
        ]}});
        assert_eq!(
            ata_counters(&json).map(|c| (c.0, c.1)),
            Some((Some(10 << 25), None))
        );

        // Media writes at 233 by name, 4 KiB logical blocks.
        let json = json!({"logical_block_size": 4096, "ata_smart_attributes": {"table": [
            attribute(233, "NAND_GB_Written_TLC", 3),
            attribute(241, "Total_LBAs_Written", 2),
        ]}});
        assert_eq!(
            ata_counters(&json).map(|c| (c.0, c.1)),
            Some((Some(8192), Some(3 << 30)))
        );
        // A write counter whose unit the name does not give is not taken.
        let json =
            json!({"ata_smart_attributes": {"table": [attribute(241, "Lifetime_Writes", 2)]}});
        assert_eq!(ata_counters(&json), None);
        let json =
            json!({"ata_smart_attributes": {"table": [attribute(247, "Flash_Writes_GiB", 2)]}});
        assert_eq!(
            ata_counters(&json).map(|c| (c.0, c.1)),
            Some((None, Some(2 << 30)))
        );

        // Nothing usable.
        let json = json!({"ata_smart_attributes": {"table": [attribute(241, "Unknown_Attribute", 5), {"id": "x"}, 3]}});
        assert_eq!(ata_counters(&json), None);
        assert_eq!(
            ata_counters(&json!({"ata_smart_attributes": {"table": {}}})),
            None
        );
        assert_eq!(ata_counters(&json!(null)), None);
    }

    #[test]
    fn smartctl_messages_are_joined() {
        let json = json!({"smartctl": {"messages": [
            {"string": "/dev/vda: Unable to detect device type", "severity": "error"},
            {"string": "Please specify device type", "severity": "information"}
        ]}});
        assert_eq!(
            smartctl_messages(&json).as_deref(),
            Some("/dev/vda: Unable to detect device type; Please specify device type")
        );
        assert_eq!(
            smartctl_messages(&json!({"smartctl": {"messages": []}})),
            None
        );
        assert_eq!(smartctl_messages(&json!({})), None);
    }

    #[test]
    fn virtual_disks_report_no_flash_counters_without_running_anything() {
        let device = Device {
            name: "vda".into(),
            disk: "vda".into(),
            major: 254,
            minor: 0,
            fs_type: "ext4".into(),
            mount_point: "/".into(),
            warning: None,
        };
        let Flash::NotReported { reason } = flash_counters(&device) else {
            panic!("a virtio disk reported counters")
        };
        assert!(reason.contains("vda"), "{reason}");
        for disk in ["loop3", "dm-0", "zram0"] {
            assert!(no_smart_reason(disk).is_some(), "{disk}");
        }
        for disk in ["sda", "nvme0n1"] {
            assert_eq!(no_smart_reason(disk), None, "{disk}");
        }
    }

    #[test]
    fn dev_shm_has_no_block_device() {
        let shm = Path::new("/dev/shm");
        let on_tmpfs = fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .map(|text| parse_mountinfo(&text))
            .and_then(|mounts| find_mount(&mounts, shm).map(|m| m.fs_type == "tmpfs"))
            .unwrap_or(false);
        if !shm.is_dir() || !on_tmpfs {
            eprintln!("skipped: /dev/shm is missing or not tmpfs here");
            return;
        }
        match resolve(shm) {
            Resolved::NoDevice {
                fs_type, reason, ..
            } => {
                assert_eq!(fs_type, "tmpfs");
                assert!(reason.contains("/dev/shm is on tmpfs"), "{reason}");
            }
            other => panic!("/dev/shm resolved to {other:?}"),
        }
    }

    #[test]
    fn syncfs_works_on_a_directory_and_fails_on_a_missing_one() {
        let dir = scratch();
        syncfs(dir.path()).unwrap();
        assert!(syncfs(&dir.path().join("missing")).is_err());
    }
}
