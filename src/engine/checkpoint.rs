//! Checkpoints: a consistent, openable copy of the database at one moment,
//! in another directory, made while writers and GC go on.
//!
//! ```text
//! Engine::checkpoint
//!   prepare_dir            the directory must be new or empty
//!   capture                commit lock, then the manifest lock, held only
//!                          to read: the manifest state, the current view
//!                          (which pins every SSTable and segment it names),
//!                          the user head position, the sequence number
//!   plan                   SSTables, sealed segments (user and GC) and
//!                          their hints: linked; the user head up to the
//!                          captured offset and the GC head up to the
//!                          manifest's GC head: copied
//!   write_files            hard links, each falling back to a copy (a
//!                          failed link turns links off for the rest);
//!                          copies synced; the directory synced
//!   Manifest::create       a fresh manifest describing the captured state
//!                          (tables not asked for dropped in it) and CURRENT
//! ```
//!
//! Why this is consistent: under the commit lock no group commit is half
//! done, so the head position and the visible sequence number agree (every
//! record before the position is applied, none after it exists); under
//! the manifest lock the state, its SSTables and the live segments agree.
//! The copy's replay point is the source's: on open it replays the copied
//! vLog tail into its memtable, as after a crash. Nothing is flushed.
//!
//! Why links are safe: nothing writes a sealed segment, an SSTable or a
//! hint file in place. A hint is replaced by a rename; only the two heads
//! are written (appends, a torn tail cut at open, GC's head cut back to the
//! manifest's GC head at open), and they are copied, never linked.

use super::versions::SuperVersion;
use super::Engine;
use crate::error::{Error, Result};
use crate::files;
use crate::io::{FileHandle, Fs};
use crate::manifest::{DroppedTable, Manifest, ManifestState, DEFAULT_TABLE_NAME};
use crate::options::{CheckpointOptions, CheckpointProgress};
use crate::stats::CheckpointInfo;
use crate::vlog::SegmentKind;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Bytes copied per read and write.
const COPY_CHUNK: usize = 1 << 20;

/// Where one file of the checkpoint comes from.
enum Source {
    /// A file nothing writes any more: linked, or copied whole where a
    /// link fails. `file` is an open handle when the engine has one (a
    /// copy then reads through it). An optional one (a hint) that is gone
    /// is left out.
    Immutable {
        path: PathBuf,
        file: Option<Arc<dyn FileHandle>>,
        optional: bool,
    },
    /// The first `len` bytes of a file that is still appended to: copied.
    Prefix { file: Arc<dyn FileHandle>, len: u64 },
}

/// One file to make in the checkpoint.
struct Planned {
    name: String,
    source: Source,
    /// Its size where known before (0 for a hint).
    len: u64,
}

impl Planned {
    /// An immutable file `name` of the database directory `dir`, opened
    /// only when it is linked or copied.
    fn in_dir(dir: &Path, name: String, len: u64, optional: bool) -> Planned {
        Planned {
            source: Source::Immutable {
                path: dir.join(&name),
                file: None,
                optional,
            },
            name,
            len,
        }
    }
}

/// What the capture read under the locks.
struct Captured {
    state: ManifestState,
    seq: u64,
    files: Vec<Planned>,
    /// Held until the files are made: GC and compaction cannot delete a
    /// file it names (they delete a file when its last holder lets go).
    _pins: Arc<SuperVersion>,
}

/// The files made so far, removed again if the checkpoint fails.
struct Made<'a> {
    fs: &'a dyn Fs,
    dir: PathBuf,
    created_dir: bool,
    names: Vec<String>,
    done: bool,
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for n in self
            .names
            .iter()
            .map(String::as_str)
            .chain([files::CURRENT, &files::temp(files::CURRENT)])
        {
            let p = self.dir.join(n);
            if self.fs.exists(&p) {
                if let Err(e) = self.fs.remove(&p) {
                    log::warn!("checkpoint: removing {} after a failure: {e}", p.display());
                }
            }
        }
        // A manifest Manifest::create made and left.
        if let Ok(names) = self.fs.list(&self.dir) {
            for n in names {
                if matches!(
                    files::FileName::parse(&n),
                    Some(files::FileName::Manifest(_))
                ) {
                    let _ = self.fs.remove(&self.dir.join(n));
                }
            }
        }
        if self.created_dir {
            if let Err(e) = self.fs.remove_dir(&self.dir) {
                log::warn!("checkpoint: removing {}: {e}", self.dir.display());
            }
        }
    }
}

impl Engine {
    /// Makes a checkpoint in `out` (see the module docs). With
    /// `want_snapshot`, also registers a snapshot at the captured sequence
    /// number, taken under the same locks, and returns its number (the
    /// caller owns it: `release_snapshot`).
    ///
    /// # Errors
    /// `InvalidArgument` when `out` exists and is not empty, is the
    /// database's own directory, or a table asked for does not exist, or
    /// the database is closed; `Poisoned`; `Io` for a file that cannot be
    /// made (what was made is removed again).
    pub(crate) fn checkpoint(
        &self,
        out: &Path,
        opts: &CheckpointOptions,
        want_snapshot: bool,
    ) -> Result<(CheckpointInfo, Option<u64>)> {
        let started = Instant::now();
        self.health.check_open()?;
        // After a failed write or sync what the files hold is not known.
        self.health.check_not_poisoned()?;
        let mut made = self.prepare_dir(out)?;
        let (captured, snapshot) = self.capture(want_snapshot);
        let r = self.finish_checkpoint(&mut made, captured, opts, started);
        match r {
            Ok(info) => {
                made.done = true;
                Ok((info, snapshot))
            }
            Err(e) => {
                if let Some(seq) = snapshot {
                    self.release_snapshot(seq);
                }
                Err(e)
            }
        }
    }

    /// Checks `out` (new or empty, not the database) and creates it.
    fn prepare_dir(&self, out: &Path) -> Result<Made<'_>> {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if same(out, &self.dir) {
            return Err(Error::InvalidArgument(format!(
                "a checkpoint of {} cannot go into the database's own directory",
                self.dir.display()
            )));
        }
        let exists = self.fs.exists(out);
        if exists {
            let names = self
                .fs
                .list(out)
                .map_err(|e| Error::io(format!("listing {}", out.display()), e))?;
            if !names.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "the checkpoint directory {} exists and is not empty",
                    out.display()
                )));
            }
        } else {
            // The directories made here, each durable in its parent.
            let missing: Vec<&Path> = out
                .ancestors()
                .take_while(|p| !p.as_os_str().is_empty() && !self.fs.exists(p))
                .collect();
            self.fs
                .create_dir_all(out)
                .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
            for dir in missing.iter().rev() {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    self.fs
                        .sync_dir(parent)
                        .map_err(|e| Error::io(format!("syncing {}", parent.display()), e))?;
                }
            }
        }
        Ok(Made {
            fs: &*self.fs,
            dir: out.to_path_buf(),
            created_dir: !exists,
            names: Vec::new(),
            done: false,
        })
    }

    /// Reads the state to copy under the commit and manifest locks (lock
    /// order steps 2 and 3), and plans its files. Holds them for no I/O.
    fn capture(&self, want_snapshot: bool) -> (Captured, Option<u64>) {
        let commit = self.writer.lock_commit();
        // Before the manifest lock (lock order: the snapshot gate first).
        let snapshot = want_snapshot.then(|| self.register_snapshot_locked(&commit));
        let vs = self.versions.lock_manifest();
        let state = vs.state().clone();
        let sv = self.versions.current();
        let head = self.vlog.head_position();
        let seq = self.read_seq();
        drop(vs);
        drop(commit);

        let mut files = Vec::new();
        for t in sv.version.levels.iter().flatten() {
            files.push(Planned::in_dir(
                &self.dir,
                files::sst(t.meta.number),
                t.meta.size,
                false,
            ));
        }
        for seg in sv.segments.values() {
            let sealed_len = state.sealed.get(&seg.number).map(|s| s.len);
            let prefix = match seg.kind {
                SegmentKind::User if seg.number > head.segment => continue,
                SegmentKind::User => (seg.number == head.segment).then_some(head.offset),
                SegmentKind::Gc if state.gc_head.segment == 0 => continue,
                SegmentKind::Gc if seg.number > state.gc_head.segment => continue,
                SegmentKind::Gc => (seg.number == state.gc_head.segment)
                    .then(|| state.gc_head.offset.max(sealed_len.unwrap_or(0))),
            };
            let name = seg
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| files::segment(seg.number));
            match prefix {
                Some(len) => files.push(Planned {
                    name,
                    source: Source::Prefix {
                        file: seg.file.clone(),
                        len,
                    },
                    len,
                }),
                None => {
                    let len = sealed_len.unwrap_or_else(|| seg.file.len().unwrap_or(0));
                    files.push(Planned {
                        name,
                        source: Source::Immutable {
                            path: seg.path.clone(),
                            file: Some(seg.file.clone()),
                            optional: false,
                        },
                        len,
                    });
                    files.push(Planned::in_dir(&self.dir, files::hint(seg.number), 0, true));
                }
            }
        }
        // The value dictionaries the copied segments may use (immutable
        // files, linked like the rest).
        for &id in state.values.dicts.keys() {
            files.push(Planned::in_dir(&self.dir, files::dict(id), 0, false));
        }
        (
            Captured {
                state,
                seq,
                files,
                _pins: sv,
            },
            snapshot,
        )
    }

    /// Chooses the tables, makes the files, writes the manifest, syncs.
    fn finish_checkpoint(
        &self,
        made: &mut Made<'_>,
        mut cap: Captured,
        opts: &CheckpointOptions,
        started: Instant,
    ) -> Result<CheckpointInfo> {
        if let Some(wanted) = &opts.tables {
            // Every SSTable stays, those holding only dropped tables' keys
            // too: the copy's compaction drops their entries and counts
            // the vLog bytes they point at as garbage, which GC needs.
            keep_only(&mut cap.state, wanted)?;
        }
        let mut info = CheckpointInfo {
            last_sequence: cap.seq,
            tables: cap.state.tables.iter().map(|t| t.name.clone()).collect(),
            ..Default::default()
        };
        self.write_files(made, &cap.files, opts, &mut info)?;
        // A read-only open takes a shared lock on it, which must exist.
        made.names.push(files::LOCK.to_string());
        self.fs
            .create(&made.dir.join(files::LOCK))
            .map_err(|e| Error::io(format!("creating {}", made.dir.display()), e))?;

        let mut state = cap.state;
        let max_number = cap
            .files
            .iter()
            .filter_map(|f| files::FileName::parse(&f.name).and_then(|n| n.number()))
            .max()
            .unwrap_or(0);
        let number = state.next_file_number.max(max_number + 1);
        state.next_file_number = number + 1;
        state.last_sequence = state.last_sequence.max(cap.seq);
        let manifest = Manifest::create(self.fs.clone(), &made.dir, number, &state)?;
        info.files_copied += 2;
        info.bytes_copied += manifest.size() + files::manifest(number).len() as u64 + 1;
        drop(manifest);
        self.fs
            .sync_dir(&made.dir)
            .map_err(|e| Error::io(format!("syncing {}", made.dir.display()), e))?;
        info.seconds = started.elapsed().as_secs_f64();
        log::info!(
            "{}: checkpoint in {} at sequence {}: {} files linked ({} bytes), {} copied ({} bytes), {:.3}s",
            self.dir.display(),
            made.dir.display(),
            info.last_sequence,
            info.files_linked,
            info.bytes_linked,
            info.files_copied,
            info.bytes_copied,
            info.seconds
        );
        Ok(info)
    }

    /// Links or copies every planned file into the checkpoint, each copy
    /// synced, then syncs the directory.
    fn write_files(
        &self,
        made: &mut Made<'_>,
        plan: &[Planned],
        opts: &CheckpointOptions,
        info: &mut CheckpointInfo,
    ) -> Result<()> {
        let mut progress = CheckpointProgress {
            files_total: plan.len() as u64,
            bytes_total: plan.iter().map(|f| f.len).sum(),
            ..Default::default()
        };
        let report = |p: &CheckpointProgress| {
            if let Some(f) = &opts.progress {
                (f.0)(p);
            }
        };
        report(&progress);
        let mut links = opts.hard_links;
        for f in plan {
            let dst = made.dir.join(&f.name);
            let bytes = match &f.source {
                Source::Prefix { file, len } => {
                    made.names.push(f.name.clone());
                    copy_prefix(&*self.fs, &**file, &dst, *len)?;
                    info.files_copied += 1;
                    info.bytes_copied += len;
                    *len
                }
                Source::Immutable {
                    path,
                    file,
                    optional,
                } => {
                    let linked = if links {
                        match self.fs.hard_link(path, &dst) {
                            Ok(()) => true,
                            Err(e) if e.kind() == io::ErrorKind::NotFound && *optional => {
                                progress.files_done += 1;
                                continue;
                            }
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                                return Err(Error::io(format!("linking {}", path.display()), e));
                            }
                            Err(e) => {
                                // EXDEV, a file system without links, ...:
                                // copies from here on.
                                log::info!(
                                    "checkpoint: hard link of {} failed ({e}): copying instead",
                                    path.display()
                                );
                                links = false;
                                false
                            }
                        }
                    } else {
                        false
                    };
                    made.names.push(f.name.clone());
                    if linked {
                        let len = if f.len > 0 {
                            f.len
                        } else {
                            file_len(&*self.fs, &dst)?
                        };
                        info.files_linked += 1;
                        info.bytes_linked += len;
                        len
                    } else {
                        let src = match file {
                            Some(h) => h.clone(),
                            None => match self.fs.open(path, false) {
                                Ok(h) => h,
                                Err(e) if e.kind() == io::ErrorKind::NotFound && *optional => {
                                    made.names.pop();
                                    progress.files_done += 1;
                                    continue;
                                }
                                Err(e) => {
                                    return Err(Error::io(format!("opening {}", path.display()), e))
                                }
                            },
                        };
                        let len = src
                            .len()
                            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                        // A sealed segment may be longer than its recorded
                        // length only by nothing: copy what the plan says.
                        let len = if f.len > 0 { f.len.min(len) } else { len };
                        copy_prefix(&*self.fs, &*src, &dst, len)?;
                        info.files_copied += 1;
                        info.bytes_copied += len;
                        len
                    }
                }
            };
            progress.files_done += 1;
            progress.bytes_done += bytes;
            report(&progress);
        }
        self.fs
            .sync_dir(&made.dir)
            .map_err(|e| Error::io(format!("syncing {}", made.dir.display()), e))
    }
}

/// Drops from `state` every named table not in `wanted`.
///
/// # Errors
/// `InvalidArgument` for a name `wanted` has that is not a table.
fn keep_only(state: &mut ManifestState, wanted: &[String]) -> Result<()> {
    for w in wanted {
        if w != DEFAULT_TABLE_NAME && !state.tables.iter().any(|t| &t.name == w) {
            return Err(Error::InvalidArgument(format!(
                "checkpoint of table {w}: there is no such table"
            )));
        }
    }
    let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut state.tables)
        .into_iter()
        .partition(|t| wanted.contains(&t.name));
    state.tables = keep;
    for t in drop {
        state.dropped_tables.insert(
            t.id,
            DroppedTable {
                id: t.id,
                kind: t.kind,
            },
        );
    }
    Ok(())
}

fn file_len(fs: &dyn Fs, path: &Path) -> Result<u64> {
    fs.open(path, false)
        .and_then(|f| f.len())
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// Copies the first `len` bytes of `src` into a new file `dst`, synced.
fn copy_prefix(fs: &dyn Fs, src: &dyn FileHandle, dst: &Path, len: u64) -> Result<()> {
    let ctx = || format!("copying into {}", dst.display());
    let out = fs.create(dst).map_err(|e| Error::io(ctx(), e))?;
    let mut buf = vec![0u8; COPY_CHUNK.min(len as usize).max(1)];
    let mut off = 0u64;
    while off < len {
        let n = buf.len().min((len - off) as usize);
        src.read_exact_at(&mut buf[..n], off)
            .and_then(|()| out.write_all_at(&buf[..n], off))
            .map_err(|e| Error::io(ctx(), e))?;
        off += n as u64;
    }
    out.sync_all().map_err(|e| Error::io(ctx(), e))
}
