//! The manifest: an append-only, checksummed log of [`VersionEdit`]s that
//! records which SSTables make up the LSM-tree, where vLog replay starts, and
//! the engine's counters. The live manifest is named by the file `CURRENT`.
//!
//! ```text
//! CURRENT          = "MANIFEST-" number (decimal, at least 6 digits, zero-padded) "\n"
//! MANIFEST-NNNNNN  = record*
//! record           = length (u32 LE) | crc32 (u32 LE, crc32fast over payload) | payload
//! payload          = an encoded VersionEdit (never empty)
//! ```
//!
//! The first record of every manifest is a snapshot edit that recreates the
//! whole state; every later record is an incremental edit. Each append is
//! synced before it is acknowledged, so only the last record can be torn by
//! a crash: recovery ignores such a tail (the first append after it cuts
//! the torn bytes off); damage anywhere else is [`Error::Corruption`].
//!
//! The edit format and its codec are in [`edit`]; applying edits to the
//! state, in [`state`]. This file is the manifest file: records, `CURRENT`,
//! creation, recovery and appends.

mod edit;
mod state;
#[cfg(test)]
mod tests;
pub(crate) mod values;

pub(crate) use edit::{
    unix_now, DroppedTable, LifetimeCounters, SealedSegment, SegmentInfo, TableDef, VersionEdit,
    DEFAULT_TABLE, DEFAULT_TABLE_NAME,
};
pub(crate) use state::ManifestState;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::files::{self, FileName};
use crate::io::{FileHandle, Fs};

/// Bytes of a record header: length (u32 LE) and crc32 (u32 LE).
const HEADER_LEN: u64 = 8;
/// `CURRENT` is one short line; anything longer is not ours.
const MAX_CURRENT_LEN: u64 = 256;

/// Frames a payload as one manifest record.
pub(crate) fn encode_record(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        Error::InvalidArgument(format!(
            "manifest edit of {} bytes is too large",
            payload.len()
        ))
    })?;
    let mut rec = Vec::with_capacity(HEADER_LEN as usize + payload.len());
    rec.extend_from_slice(&len.to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    rec.extend_from_slice(payload);
    Ok(rec)
}

/// The payloads of the whole records at the start of `bytes`, unchecked
/// (the fuzz seeds take the edits of a real manifest this way).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn record_payloads(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let h = HEADER_LEN as usize;
    while bytes.len() >= h {
        let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() - h < n {
            break;
        }
        out.push(bytes[h..h + n].to_vec());
        bytes = &bytes[h + n..];
    }
    out
}

/// The manifest number named by `CURRENT`, `None` when there is no `CURRENT`.
fn read_current(fs: &dyn Fs, dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(files::CURRENT);
    let file = match fs.open(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let len = file
        .len()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if len > MAX_CURRENT_LEN {
        return Err(Error::corruption(
            &path,
            0,
            format!("{len} bytes is too long for CURRENT"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    std::str::from_utf8(&buf)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|name| match FileName::parse(name) {
            Some(FileName::Manifest(n)) => Some(n),
            _ => None,
        })
        .map(Some)
        .ok_or_else(|| {
            Error::corruption(
                &path,
                0,
                format!(
                    "does not name a manifest: {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            )
        })
}

/// Whether every byte of `file` in `from..to` is zero (a tail whose size
/// reached the disk but whose data did not).
fn all_zero(file: &dyn FileHandle, path: &Path, mut from: u64, to: u64) -> Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    while from < to {
        let n = (to - from).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], from)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        from += n as u64;
    }
    Ok(true)
}

/// The live manifest file, open for appending.
#[derive(Debug)]
pub(crate) struct Manifest {
    path: PathBuf,
    number: u64,
    file: Arc<dyn FileHandle>,
    /// Where the next record goes: the bytes of good records in the file.
    offset: u64,
    /// Set when an append failed: the file's tail is unknown, refuse more.
    failed: bool,
    /// A torn last record recovery ignored: its offset and why.
    dropped_tail: Option<(u64, String)>,
    /// Records in the file: read by recovery, or written since.
    records: u64,
    /// Whether the torn bytes past `offset` may still be in the file: the
    /// first append cuts them off, so that a shorter record never leaves
    /// some of them behind it.
    torn_bytes_left: bool,
}

impl Manifest {
    /// Creates `MANIFEST-<number>` holding `state.snapshot_edit()`, syncs it,
    /// and installs it as current: `CURRENT.tmp` is written and synced,
    /// renamed over `CURRENT`, and the directory synced. Then the previous
    /// manifest (named by the old `CURRENT`, if any) is removed; failing to
    /// remove it is only logged.
    ///
    /// `number` must differ from the live manifest's (that would truncate the
    /// live file): [`Error::InvalidArgument`].
    pub(crate) fn create(
        fs: Arc<dyn Fs>,
        dir: &Path,
        number: u64,
        state: &ManifestState,
    ) -> Result<Manifest> {
        let old = match read_current(&*fs, dir) {
            Ok(old) => old,
            Err(e) => {
                log::warn!(
                    "manifest: ignoring unreadable CURRENT while creating a new manifest: {e}"
                );
                None
            }
        };
        if old == Some(number) {
            return Err(Error::InvalidArgument(format!(
                "{} is the live manifest and cannot be recreated",
                files::manifest(number)
            )));
        }
        let name = files::manifest(number);
        let path = dir.join(&name);
        let record = encode_record(&state.snapshot_edit().encode())?;
        let file = fs
            .create(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let written = file
            .write_all_at(&record, 0)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
            .and_then(|()| write_current_tmp(&*fs, dir, &name));
        if let Err(e) = written {
            // CURRENT still names the old manifest: the new file is garbage.
            let _ = fs.remove(&path);
            return Err(e);
        }
        let current = dir.join(files::CURRENT);
        let tmp = files::temp(files::CURRENT);
        if let Err(e) = fs.rename(&dir.join(&tmp), &current) {
            let _ = fs.remove(&path);
            return Err(Error::io(
                format!("renaming {tmp} to {}", files::CURRENT),
                e,
            ));
        }
        // From here CURRENT may name the new file: never remove it on failure.
        fs.sync_dir(dir)
            .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
        if let Some(old) = old {
            let old_path = dir.join(files::manifest(old));
            match fs.remove(&old_path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => log::warn!("manifest: could not remove old {}: {e}", old_path.display()),
            }
        }
        Ok(Manifest {
            path,
            number,
            file,
            offset: record.len() as u64,
            failed: false,
            dropped_tail: None,
            torn_bytes_left: false,
            records: 1,
        })
    }

    /// Reads `CURRENT` (`None` when there is none: a new database) and replays
    /// the manifest it names into a [`ManifestState`].
    ///
    /// A torn last record (an incomplete header, a length running past the
    /// end of the file, a checksum mismatch on a record that ends at the end
    /// of the file or is followed only by zeros, or a zero-filled tail) was
    /// never acknowledged: it is ignored with a warning, and the torn bytes
    /// stay in the file (for the caller to judge, see
    /// [`Manifest::dropped_tail`]) until the first append cuts them off.
    /// Anything else — bad `CURRENT`, a
    /// missing manifest, a checksum mismatch followed by more data, an
    /// undecodable or inapplicable edit, no intact first record — is
    /// [`Error::Corruption`] naming the file and offset.
    ///
    /// `writable` opens the file for the appends that follow; without it
    /// (a read-only open) the file is only read.
    pub(crate) fn recover(
        fs: Arc<dyn Fs>,
        dir: &Path,
        writable: bool,
    ) -> Result<Option<(Manifest, ManifestState)>> {
        let Some(number) = read_current(&*fs, dir)? else {
            return Ok(None);
        };
        let path = dir.join(files::manifest(number));
        let file = match fs.open(&path, writable) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::corruption(
                    dir.join(files::CURRENT),
                    0,
                    format!("names {}, which does not exist", path.display()),
                ))
            }
            Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
        };
        let read_err = |e| Error::io(format!("reading {}", path.display()), e);
        let file_len = file.len().map_err(read_err)?;
        let mut state = ManifestState::default();
        let mut offset = 0u64;
        let mut records = 0u64;
        let torn: Option<String> = loop {
            let rest = file_len - offset;
            if rest == 0 {
                break None;
            }
            if rest < HEADER_LEN {
                break Some(format!("{rest} bytes of an incomplete record header"));
            }
            let mut header = [0u8; HEADER_LEN as usize];
            file.read_exact_at(&mut header, offset).map_err(read_err)?;
            let len = u64::from(u32::from_le_bytes([
                header[0], header[1], header[2], header[3],
            ]));
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if len == 0 {
                if all_zero(&*file, &path, offset, file_len)? {
                    break Some(format!("{rest} zero bytes"));
                }
                return Err(Error::corruption(&path, offset, "zero-length record"));
            }
            if len > rest - HEADER_LEN {
                break Some(format!(
                    "a record of {len} bytes with only {} left",
                    rest - HEADER_LEN
                ));
            }
            let end = offset + HEADER_LEN + len;
            let mut payload = vec![0u8; len as usize];
            file.read_exact_at(&mut payload, offset + HEADER_LEN)
                .map_err(read_err)?;
            if crc32fast::hash(&payload) != crc {
                if end == file_len || all_zero(&*file, &path, end, file_len)? {
                    break Some("a last record with a checksum mismatch".to_owned());
                }
                return Err(Error::corruption(
                    &path,
                    offset,
                    "record checksum mismatch with more records after it",
                ));
            }
            let edit = VersionEdit::decode(&payload).map_err(|r| {
                match values::stated_version(&payload) {
                    Some(v) if v > values::FORMAT_VERSION => values::too_new(&path, v),
                    _ => Error::corruption(&path, offset, format!("undecodable edit: {r}")),
                }
            })?;
            if let Some(v) = edit.values.format_version {
                if v > values::FORMAT_VERSION {
                    return Err(values::too_new(&path, v));
                }
            }
            state.apply(&edit).map_err(|r| {
                Error::corruption(&path, offset, format!("edit does not apply: {r}"))
            })?;
            records += 1;
            offset = end;
        };
        if records == 0 {
            return Err(Error::corruption(
                &path,
                0,
                "manifest has no intact snapshot record",
            ));
        }
        // The torn bytes stay in the file (appends overwrite them) until the
        // caller has checked the state: if files the dropped edit made
        // obsolete are gone, the edit was acknowledged and the damage is
        // corruption, which the file must still show.
        let dropped_tail = torn.map(|why| {
            log::warn!(
                "manifest: ignoring a torn tail of {} at offset {offset} ({} bytes): {why}",
                path.display(),
                file_len - offset
            );
            (offset, why)
        });
        let manifest = Manifest {
            path,
            number,
            file,
            offset,
            failed: false,
            torn_bytes_left: dropped_tail.is_some(),
            dropped_tail,
            records,
        };
        Ok(Some((manifest, state)))
    }

    /// The torn last record [`Manifest::recover`] ignored, if any: its
    /// offset and what was wrong with it.
    pub(crate) fn dropped_tail(&self) -> Option<&(u64, String)> {
        self.dropped_tail.as_ref()
    }

    /// The manifest file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one edit record and syncs it (`sync_data`) before returning.
    /// An empty edit writes nothing; the first append after a recovered torn
    /// tail cuts the torn bytes off first. After a failed append this manifest
    /// refuses further appends ([`Error::Poisoned`]); create a new one.
    pub(crate) fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned(format!(
                "an earlier append to {} failed",
                self.path.display()
            )));
        }
        if edit.is_empty() {
            return Ok(());
        }
        let record = encode_record(&edit.encode())?;
        let cut = if self.torn_bytes_left {
            self.file.set_len(self.offset)
        } else {
            Ok(())
        };
        let res = cut
            .and_then(|()| self.file.write_all_at(&record, self.offset))
            .and_then(|()| self.file.sync_data());
        match res {
            Ok(()) => {
                self.offset += record.len() as u64;
                self.torn_bytes_left = false;
                self.records += 1;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(Error::io(
                    format!("appending to {}", self.path.display()),
                    e,
                ))
            }
        }
    }

    /// The whole records in the file (read at recovery, or written).
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The manifest's file number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Bytes in the manifest file, for deciding when to rewrite it.
    pub(crate) fn size(&self) -> u64 {
        self.offset
    }
}

/// Writes and syncs `CURRENT.tmp` naming `name`.
fn write_current_tmp(fs: &dyn Fs, dir: &Path, name: &str) -> Result<()> {
    let tmp = dir.join(files::temp(files::CURRENT));
    let contents = format!("{name}\n");
    let f = fs
        .create(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    f.write_all_at(contents.as_bytes(), 0)
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))
}
