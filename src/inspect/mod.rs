//! Read-only inspection of single database files: every record of a vLog
//! segment, every entry of an SSTable, with the damage found on the way.
//!
//! These functions read one file by its path, without opening the
//! database: no lock is taken, nothing is written, and a database that no
//! longer opens can still be looked at. They are what `vlog-tools dump` and
//! `vlog-tools dump-sst` print.
//!
//! Damage is part of the result, not an error: [`segment`] goes on after a
//! damaged record from the next intact one, and [`sst`] goes on after a
//! damaged data block with the next block. Only a file that cannot be read
//! at all (missing, unreadable) is an [`Error`].
//!
//! ```
//! use wisckey::{inspect, Db, Options};
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path(), Options::default())?;
//! db.put(b"k", b"v")?;
//! db.close()?;
//! let mut segments: Vec<_> = std::fs::read_dir(dir.path()).unwrap()
//!     .map(|e| e.unwrap().file_name().into_string().unwrap())
//!     .filter(|name| name.ends_with(".vlog"))
//!     .collect();
//! segments.sort();
//! let path = inspect::segment_path(dir.path(), &segments[0])?;
//! let dump = inspect::segment(&path)?;
//! let rec = dump.records().find(|r| r.key == b"k").unwrap();
//! assert_eq!(rec.value, b"v");
//! assert!(dump.is_intact());
//! # Ok::<(), wisckey::Error>(())
//! ```

mod segment;
mod sst;

pub use segment::{
    segment, segment_path, ClaimedHeader, DamagedRange, RecordInfo, RecordKind, SegmentDump,
    SegmentItem, SegmentKind,
};
pub use sst::{sst, sst_path, BlockInfo, EntryKind, PointerInfo, SstDump, SstEntryInfo};

use crate::error::{Error, Result};
use crate::files::FileName;
use crate::io::{FileHandle, Fs, StdFs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Opens `path` read-only; returns the handle and its length.
fn open_read_only(path: &Path) -> Result<(Arc<dyn FileHandle>, u64)> {
    let file = StdFs::default()
        .open(path, false)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let len = file
        .len()
        .map_err(|e| Error::io(format!("reading the length of {}", path.display()), e))?;
    Ok((file, len))
}

/// The whole of the file `path`, read through a read-only handle.
fn read_whole(path: &Path) -> Result<Vec<u8>> {
    let (file, len) = open_read_only(path)?;
    let size = usize::try_from(len)
        .map_err(|_| Error::InvalidArgument(format!("{} is too large to read", path.display())))?;
    let mut buf = vec![0u8; size];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(buf)
}

/// What the file name of `path` says it is, if it is a name the engine makes.
fn file_name_of(path: &Path) -> Option<FileName> {
    FileName::parse(path.file_name()?.to_str()?)
}

/// Finds a file of a database directory named by `spec`: a file number
/// (`12`, tried as each name in `names(12)` in turn), a file name in `dir`
/// that `accepts`, or a path to an existing file (as given, then under `dir`).
fn resolve(
    dir: &Path,
    spec: &str,
    what: &str,
    names: impl Fn(u64) -> Vec<String>,
    accepts: impl Fn(&FileName) -> bool,
) -> Result<PathBuf> {
    let not_found = |msg: String| {
        Error::io(
            format!("finding {what} {spec:?} in {}", dir.display()),
            std::io::Error::new(std::io::ErrorKind::NotFound, msg),
        )
    };
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = spec
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("{what} number {spec:?} is too large")))?;
        let candidates = names(n);
        for name in &candidates {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
        return Err(not_found(format!("no file {}", candidates.join(" or "))));
    }
    let given = Path::new(spec);
    let in_dir = dir.join(given);
    let found = if given.is_file() {
        given.to_path_buf()
    } else if in_dir.is_file() {
        in_dir
    } else {
        return Err(not_found("no such file".to_owned()));
    };
    match file_name_of(&found) {
        Some(name) if accepts(&name) => Ok(found),
        // A file of another name is read as asked, but one the engine names
        // as something else is most likely a mistake.
        None => Ok(found),
        Some(other) => Err(Error::InvalidArgument(format!(
            "{} is not a {what} (its name says {other:?})",
            found.display()
        ))),
    }
}

/// Bytes shown of a value in [`abbreviate`] form.
const SHOWN_BYTES: usize = 8;

/// A short text form of `bytes` for listings: printable ASCII as is, other
/// bytes as `\xNN`, cut after `max` bytes with `…` (all of it for `None`).
///
/// ```
/// use wisckey::inspect::escape;
/// assert_eq!(escape(b"user\x01", None), "user\\x01");
/// assert_eq!(escape(b"abcdef", Some(3)), "abc…");
/// ```
pub fn escape(bytes: &[u8], max: Option<usize>) -> String {
    let shown = max.map_or(bytes, |m| &bytes[..m.min(bytes.len())]);
    let mut out = String::with_capacity(shown.len() + 4);
    for &b in shown {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if shown.len() < bytes.len() {
        out.push('…');
    }
    out
}

/// The first bytes of `bytes` as hex, `[ab cd ef …]`, for abbreviated values.
///
/// ```
/// use wisckey::inspect::hex_preview;
/// assert_eq!(hex_preview(&[0xab, 0xcd]), "[ab cd]");
/// assert_eq!(hex_preview(&[0u8; 20]), "[00 00 00 00 00 00 00 00 …]");
/// ```
pub fn hex_preview(bytes: &[u8]) -> String {
    let shown = &bytes[..SHOWN_BYTES.min(bytes.len())];
    let mut parts: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
    if shown.len() < bytes.len() {
        parts.push("…".to_owned());
    }
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_and_preview() {
        assert_eq!(escape(b"a\"b\\c\xff", None), "a\\\"b\\\\c\\xff");
        assert_eq!(escape(b"", Some(0)), "");
        assert_eq!(escape(b"ab", Some(5)), "ab");
        assert_eq!(hex_preview(&[]), "[]");
    }

    #[test]
    fn resolve_finds_numbers_names_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("000012.gc.vlog"), b"").unwrap();
        std::fs::write(d.join("000013.sst"), b"").unwrap();
        assert_eq!(segment_path(d, "12").unwrap(), d.join("000012.gc.vlog"));
        assert_eq!(
            segment_path(d, "000012.gc.vlog").unwrap(),
            d.join("000012.gc.vlog")
        );
        let full = d.join("000013.sst");
        assert_eq!(sst_path(d, full.to_str().unwrap()).unwrap(), full);
        assert_eq!(sst_path(d, "13").unwrap(), full);
        let missing = segment_path(d, "14").unwrap_err();
        assert!(missing.to_string().contains("000014.vlog"), "{missing}");
        assert!(segment_path(d, "000013.sst").is_err());
        assert!(sst_path(d, "nope.sst").is_err());
        assert!(sst_path(d, "99999999999999999999999").is_err());
    }
}
