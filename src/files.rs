//! The names of the files in a database directory, made and parsed here and
//! nowhere else (docs/format.md lists them):
//!
//! ```text
//! NNNNNN.vlog        a user segment of the vLog (puts and deletes; the WAL)
//! NNNNNN.gc.vlog     a GC segment (records relocated by garbage collection)
//! NNNNNN.hint        the hint file of sealed segment NNNNNN (unordered tables)
//! NNNNNN.sst         an SSTable
//! NNNNNN.dict        a value dictionary (zstd, trained from a table's values)
//! MANIFEST-NNNNNN    a manifest (the log of version edits)
//! CURRENT            names the live manifest
//! LOCK               the directory lock
//! RESERVE            preallocated room, released when the disk is full
//! *.tmp              a file being written, renamed into place when complete
//! ```
//!
//! `NNNNNN` is a file number, at least six digits; all kinds share one
//! counter, so a number names one file. Only the canonical spelling parses
//! (`5.vlog` is not segment 5).

/// The file that names the live manifest.
pub(crate) const CURRENT: &str = "CURRENT";
/// The directory lock.
pub(crate) const LOCK: &str = "LOCK";
/// Preallocated space the engine gives back when the disk fills up, so that
/// the database can still be reopened, take deletes and run GC
/// (`src/engine/reserve.rs`). Never named by the manifest, never a leftover.
pub(crate) const RESERVE: &str = "RESERVE";
/// The suffix of a file being written.
const TMP_SUFFIX: &str = ".tmp";
const MANIFEST_PREFIX: &str = "MANIFEST-";

/// What a file in a database directory is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileName {
    /// `NNNNNN.vlog`.
    Segment(u64),
    /// `NNNNNN.gc.vlog`.
    GcSegment(u64),
    /// `NNNNNN.hint`.
    Hint(u64),
    /// `NNNNNN.sst`.
    Sst(u64),
    /// `NNNNNN.dict`.
    Dict(u64),
    /// `MANIFEST-NNNNNN`.
    Manifest(u64),
    /// `CURRENT`.
    Current,
    /// `LOCK`.
    Lock,
    /// `RESERVE`.
    Reserve,
    /// Any name ending in `.tmp`: left by a crash before its rename.
    Temp,
}

impl FileName {
    /// What `name` is; `None` for a name the engine never makes.
    pub(crate) fn parse(name: &str) -> Option<FileName> {
        if name.ends_with(TMP_SUFFIX) {
            return Some(FileName::Temp);
        }
        match name {
            CURRENT => return Some(FileName::Current),
            LOCK => return Some(FileName::Lock),
            RESERVE => return Some(FileName::Reserve),
            _ => {}
        }
        if let Some(digits) = name.strip_prefix(MANIFEST_PREFIX) {
            return number(digits).map(FileName::Manifest);
        }
        let (digits, ext) = name.split_once('.')?;
        let n = number(digits)?;
        match ext {
            "vlog" => Some(FileName::Segment(n)),
            "gc.vlog" => Some(FileName::GcSegment(n)),
            "hint" => Some(FileName::Hint(n)),
            "sst" => Some(FileName::Sst(n)),
            "dict" => Some(FileName::Dict(n)),
            _ => None,
        }
    }

    /// The file number, for the numbered kinds.
    pub(crate) fn number(&self) -> Option<u64> {
        match *self {
            FileName::Segment(n)
            | FileName::GcSegment(n)
            | FileName::Hint(n)
            | FileName::Sst(n)
            | FileName::Dict(n)
            | FileName::Manifest(n) => Some(n),
            FileName::Current | FileName::Lock | FileName::Reserve | FileName::Temp => None,
        }
    }
}

/// A file number in its canonical spelling: at least six digits, zero-padded.
fn number(digits: &str) -> Option<u64> {
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (format!("{n:06}") == digits).then_some(n)
}

/// `NNNNNN.vlog`: user segment `n`.
pub(crate) fn segment(n: u64) -> String {
    format!("{n:06}.vlog")
}

/// `NNNNNN.gc.vlog`: GC segment `n`.
pub(crate) fn gc_segment(n: u64) -> String {
    format!("{n:06}.gc.vlog")
}

/// `NNNNNN.hint`: the hint file of segment `n`.
pub(crate) fn hint(n: u64) -> String {
    format!("{n:06}.hint")
}

/// `NNNNNN.dict`: value dictionary `n`.
pub(crate) fn dict(n: u64) -> String {
    format!("{n:06}.dict")
}

/// `NNNNNN.sst`: SSTable `n`.
pub(crate) fn sst(n: u64) -> String {
    format!("{n:06}.sst")
}

/// `MANIFEST-NNNNNN`: manifest `n`.
pub(crate) fn manifest(n: u64) -> String {
    format!("{MANIFEST_PREFIX}{n:06}")
}

/// The name `name` is written under before it is renamed into place.
pub(crate) fn temp(name: &str) -> String {
    format!("{name}{TMP_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in [0u64, 7, 999_999, 1_000_000, u64::MAX] {
            assert_eq!(FileName::parse(&segment(n)), Some(FileName::Segment(n)));
            assert_eq!(
                FileName::parse(&gc_segment(n)),
                Some(FileName::GcSegment(n))
            );
            assert_eq!(FileName::parse(&hint(n)), Some(FileName::Hint(n)));
            assert_eq!(FileName::parse(&sst(n)), Some(FileName::Sst(n)));
            assert_eq!(FileName::parse(&manifest(n)), Some(FileName::Manifest(n)));
            assert_eq!(FileName::parse(&segment(n)).unwrap().number(), Some(n));
        }
        assert_eq!(manifest(7), "MANIFEST-000007");
        assert_eq!(manifest(12_345_678), "MANIFEST-12345678");
        assert_eq!(FileName::parse("CURRENT"), Some(FileName::Current));
        assert_eq!(FileName::parse("LOCK"), Some(FileName::Lock));
        assert_eq!(FileName::parse(RESERVE), Some(FileName::Reserve));
        assert_eq!(FileName::parse(RESERVE).unwrap().number(), None);
        assert_eq!(FileName::parse(&temp(RESERVE)), Some(FileName::Temp));
        assert_eq!(FileName::parse(&temp(CURRENT)), Some(FileName::Temp));
        assert_eq!(FileName::parse(&temp(&hint(3))), Some(FileName::Temp));
    }

    #[test]
    fn only_canonical_names_parse() {
        for bad in [
            "5.vlog",
            "00005.vlog",
            "0000005.vlog",
            "000005.vlog.bak",
            "000005.log",
            "abcdef.sst",
            "MANIFEST-",
            "MANIFEST-5",
            "MANIFEST-00000x",
            "000005.GC.vlog",
            "",
            "current",
            "reserve",
            "RESERVE.bak",
            "+00005.sst",
            "99999999999999999999.sst",
            "MANIFEST-7",
            "MANIFEST-0000007",
            "MANIFEST-+00007",
            "xMANIFEST-000007",
        ] {
            assert_eq!(FileName::parse(bad), None, "{bad}");
        }
    }
}
