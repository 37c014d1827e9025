//! Opening a database, one step per function:
//!
//! 1. [`lock_directory`]: create the directory if missing, take `LOCK`.
//! 2. [`read_manifest`]: `CURRENT`, then the manifest it names (or a new
//!    database, refused where data would be thrown away).
//! 3. [`open_ssts`]: the SSTables the manifest names.
//! 4. [`open_user_segments`] and [`open_gc_segments`]: the vLog from its
//!    tail on; bytes a crashed GC pass left past GC's head are cut off.
//! 5. [`replay`]: the user segments from the replay point into memtables;
//!    a torn tail of the newest segment is truncated.
//! 6. [`rebuild_keydirs`]: the unordered tables' keydirs, from hint files
//!    or by scanning segments.
//! 7. a fresh manifest: one snapshot edit of the recovered state.
//! 8. [`remove_leftovers`]: files a crash left that the manifest does not
//!    name.
//!
//! Then [`Engine::open`] assembles the parts and starts the workers.

use super::versions::{LoggedMemtable, SuperVersion, Versions};
use super::workers::Workers;
use super::write::{index_entry, Writer};
use super::{gc, Engine};
use crate::error::{Error, Result};
use crate::files::{self, FileName};
use crate::io::{select_fs, FileLock, Fs};
use crate::keydir::Keydirs;
use crate::lsm::sstable::Sst;
use crate::lsm::version::{SstHandle, Version};
use crate::manifest::{Manifest, ManifestState};
use crate::options::{Options, TableKind};
use crate::vlog::{hint, replay_segment, Position, Segment, SegmentKind, VLog};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

impl Engine {
    /// Opens (or creates) the database in `dir` and starts its workers.
    pub(crate) fn open(dir: &Path, opts: Options) -> Result<Arc<Engine>> {
        let fs: Arc<dyn Fs> = match (&opts.fs, opts.io_backend) {
            (Some(fs), _) => fs.clone(),
            (None, backend) => select_fs(backend, opts.file_mode())?,
        };
        let lock = lock_directory(&fs, dir)?;
        let names = fs
            .list(dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let parsed: Vec<(&str, FileName)> = names
            .iter()
            .filter_map(|n| FileName::parse(n).map(|f| (n.as_str(), f)))
            .collect();
        let (recovered, mut state) = read_manifest(&fs, dir, &parsed)?;
        let is_new = recovered.is_none();
        let blame = Blame::new(recovered.as_ref());
        let keydirs = Keydirs::new(
            state
                .tables
                .iter()
                .filter(|t| t.kind == TableKind::Unordered)
                .map(|t| t.id),
        );
        let max_number = parsed.iter().filter_map(|(_, f)| f.number()).max();
        let next_file = AtomicU64::new(
            state
                .next_file_number
                .max(max_number.map_or(0, |n| n + 1))
                .max(1),
        );
        let alloc = || next_file.fetch_add(1, Ordering::Relaxed);

        let (levels, live_ssts) = open_ssts(&fs, dir, &state, &blame)?;
        let segments = if is_new {
            Vec::new()
        } else {
            open_user_segments(&fs, dir, &state, &parsed, &blame)?
        };
        let gc_segments = if is_new {
            Vec::new()
        } else {
            open_gc_segments(&fs, dir, &state, &parsed, &blame)?
        };
        let gc_numbers: HashSet<u64> = gc_segments.iter().map(|s| s.number).collect();
        let replayed = replay(&segments, &state, &opts, &keydirs)?;

        let mut all_segments = segments;
        all_segments.extend(gc_segments);
        let vlog = VLog::open(
            fs.clone(),
            dir,
            all_segments,
            replayed.head_offset,
            state.gc_head.offset,
            alloc,
        )?;
        let mut last_seq = replayed.last_seq;
        if keydirs.any() {
            last_seq = last_seq.max(rebuild_keydirs(&fs, dir, &vlog, &keydirs)?);
        }
        let (mut mem, imms) = (replayed.mem, replayed.imms);
        if is_new {
            let head = vlog.head_position();
            state.replay_point = head;
            state.vlog_tail = head.segment;
            mem = LoggedMemtable::new(head);
        }

        state.last_sequence = last_seq;
        let manifest_number = alloc();
        state.next_file_number = next_file.load(Ordering::Relaxed) + 1;
        let manifest = Manifest::create(fs.clone(), dir, manifest_number, &state)?;
        log::debug!(
            "{}: manifest {} written, {} tables, vLog head at {}:{}",
            dir.display(),
            manifest.number(),
            state.levels.iter().map(|l| l.len()).sum::<usize>(),
            vlog.head_position().segment,
            vlog.head_position().offset
        );
        let live = Live {
            ssts: live_ssts,
            gc_segments: gc_numbers,
            segments: vlog.live_set().keys().copied().collect(),
            manifest: manifest_number,
        };
        remove_leftovers(&fs, dir, &parsed, &state, is_new, &live);

        let current = SuperVersion {
            mem,
            imms,
            version: Arc::new(Version { levels }),
            segments: vlog.live_set(),
        };
        let engine = Arc::new(Engine {
            dir: dir.to_path_buf(),
            fs,
            _lock: lock,
            versions: Versions::new(manifest, state, current, next_file.into_inner()),
            writer: Writer::new(last_seq),
            vlog,
            keydirs,
            snapshots: Default::default(),
            workers: Workers::new(opts.background_gc),
            health: Default::default(),
            counters: Default::default(),
            gc: gc::GcState::default(),
            opts,
        });
        Workers::start(&engine)?;
        // Frozen memtables left by a long replay, and compactions a crash
        // interrupted, go to the workers now.
        engine.workers.wake_flush();
        engine.workers.wake_compaction();
        Ok(engine)
    }
}

/// Creates `dir` if missing and takes its lock.
fn lock_directory(fs: &Arc<dyn Fs>, dir: &Path) -> Result<Box<dyn FileLock>> {
    create_directory(fs, dir)?;
    fs.lock(&dir.join(files::LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            Error::io(format!("locking {}", dir.display()), e)
        }
    })
}

/// Creates `dir` and any missing ancestors, and syncs the parent of each
/// one it created, outermost first: a directory's entry is durable only
/// once its parent is synced, and without that a new database (synced
/// writes included) could vanish with a power loss.
fn create_directory(fs: &Arc<dyn Fs>, dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !fs.exists(a))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs.create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    for d in missing.iter().rev() {
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs.sync_dir(parent)
            .map_err(|e| Error::io(format!("syncing directory {}", parent.display()), e))?;
    }
    Ok(())
}

/// The manifest and its state, or `None` and an empty state for a new
/// database. Without `CURRENT` the directory is a new database, unless it
/// holds data: a crash while a database was being created leaves at most
/// empty segments and a manifest that `CURRENT` never named, but SSTables or
/// records in a segment mean `CURRENT` was lost, and starting afresh would
/// throw them away.
fn read_manifest(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    names: &[(&str, FileName)],
) -> Result<(Option<Manifest>, ManifestState)> {
    if let Some((m, state)) = Manifest::recover(fs.clone(), dir)? {
        return Ok((Some(m), state));
    }
    for (name, f) in names {
        let path = dir.join(name);
        let holds_data = match f {
            FileName::Sst(_) => true,
            FileName::Segment(_) => {
                let file = fs
                    .open(&path, false)
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                file.len()
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
                    > 0
            }
            _ => false,
        };
        if holds_data {
            return Err(Error::corruption(
                dir.join(files::CURRENT),
                0,
                format!("CURRENT is missing but {name} holds data; refusing to start an empty database over it"),
            ));
        }
    }
    Ok((None, ManifestState::default()))
}

/// Who is to blame for a file the manifest names but the directory lacks:
/// the manifest (it does not describe the directory). With a torn last
/// record, that record was an acknowledged edit (files it made obsolete are
/// gone): the damage is there.
struct Blame {
    manifest: Option<(std::path::PathBuf, u64, String)>,
}

impl Blame {
    fn new(m: Option<&Manifest>) -> Blame {
        Blame {
            manifest: m.map(|m| {
                let torn = m
                    .dropped_tail()
                    .map(|(off, why)| (*off, format!("its last record is damaged ({why}) and ")));
                let (at, torn) = torn.unwrap_or((m.size(), String::new()));
                (m.path().to_path_buf(), at, torn)
            }),
        }
    }

    /// The error for `file` missing (or short) at `offset`.
    fn missing(&self, file: &Path, offset: u64, reason: &str) -> Error {
        match &self.manifest {
            Some((manifest, at, torn)) => Error::corruption(
                manifest,
                *at,
                format!("{torn}{} at offset {offset}: {reason}", file.display()),
            ),
            None => Error::corruption(file, offset, reason),
        }
    }
}

/// SSTables by level.
type Levels = Vec<Vec<Arc<SstHandle>>>;

/// The SSTables the manifest names, by level (level 0 newest first for
/// readers; the manifest keeps it oldest first), and their numbers.
fn open_ssts(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    state: &ManifestState,
    blame: &Blame,
) -> Result<(Levels, HashSet<u64>)> {
    let mut levels: Levels = Vec::new();
    let mut live = HashSet::new();
    for files in &state.levels {
        let mut level = Vec::new();
        for meta in files {
            let path = dir.join(files::sst(meta.number));
            let file = fs.open(&path, false).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    blame.missing(&path, 0, "SSTable named by the manifest is missing")
                } else {
                    Error::io(format!("opening {}", path.display()), e)
                }
            })?;
            let sst = Sst::open(file, path.clone(), meta.size)?;
            live.insert(meta.number);
            level.push(Arc::new(SstHandle::new(
                meta.clone(),
                sst,
                fs.clone(),
                path,
            )));
        }
        levels.push(level);
    }
    if let Some(l0) = levels.first_mut() {
        l0.reverse();
    }
    Ok((levels, live))
}

/// The user segments from the tail on, oldest first; the newest is opened
/// for writing.
fn open_user_segments(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    state: &ManifestState,
    names: &[(&str, FileName)],
    blame: &Blame,
) -> Result<Vec<Arc<Segment>>> {
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|(_, f)| match f {
            FileName::Segment(n) => Some(*n),
            _ => None,
        })
        .filter(|n| *n >= state.vlog_tail && !state.segments_removed.contains(n))
        .collect();
    numbers.sort_unstable();
    let rp = state.replay_point;
    if !numbers.contains(&rp.segment) {
        return Err(blame.missing(
            &dir.join(files::segment(rp.segment)),
            rp.offset,
            "the vLog segment holding the replay point is missing",
        ));
    }
    let mut segments = Vec::with_capacity(numbers.len());
    for (i, &n) in numbers.iter().enumerate() {
        let path = dir.join(files::segment(n));
        let writable = i + 1 == numbers.len();
        let file = fs
            .open(&path, writable)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        segments.push(Arc::new(Segment::new(
            fs.clone(),
            n,
            SegmentKind::User,
            path,
            file,
        )));
    }
    Ok(segments)
}

/// The GC segments from the tail up to the GC head the manifest knows.
/// Anything past it was written by a pass that a crash cut short, before
/// its index entries were recorded: nothing points there, and it is cut
/// off (a whole segment past the head is left for [`remove_leftovers`]).
fn open_gc_segments(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    state: &ManifestState,
    names: &[(&str, FileName)],
    blame: &Blame,
) -> Result<Vec<Arc<Segment>>> {
    let gc_head = state.gc_head;
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|(_, f)| match f {
            FileName::GcSegment(n) => Some(*n),
            _ => None,
        })
        .filter(|n| {
            *n >= state.vlog_tail && *n <= gc_head.segment && !state.segments_removed.contains(n)
        })
        .collect();
    numbers.sort_unstable();
    if gc_head.segment != 0 && !numbers.contains(&gc_head.segment) {
        return Err(blame.missing(
            &dir.join(files::gc_segment(gc_head.segment)),
            gc_head.offset,
            "the GC head segment named by the manifest is missing",
        ));
    }
    let mut segments = Vec::with_capacity(numbers.len());
    for &n in &numbers {
        let path = dir.join(files::gc_segment(n));
        let is_head = n == gc_head.segment;
        let file = fs
            .open(&path, is_head)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        if is_head {
            let len = file
                .len()
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            if len < gc_head.offset {
                return Err(blame.missing(
                    &path,
                    len,
                    "GC segment is shorter than the manifest records",
                ));
            }
            if len > gc_head.offset {
                log::warn!(
                    "{}: dropping {} bytes a crashed GC pass left",
                    path.display(),
                    len - gc_head.offset
                );
                file.set_len(gc_head.offset)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| Error::io(format!("truncating {}", path.display()), e))?;
            }
        }
        segments.push(Arc::new(Segment::new(
            fs.clone(),
            n,
            SegmentKind::Gc,
            path,
            file,
        )));
    }
    Ok(segments)
}

/// What replay rebuilt.
struct Replayed {
    mem: Arc<LoggedMemtable>,
    /// Frozen memtables (a long replay fills more than one), newest first.
    imms: Vec<Arc<LoggedMemtable>>,
    last_seq: u64,
    /// Where appending goes on in the newest user segment.
    head_offset: u64,
}

/// Replays the user segments from the replay point into memtables (records
/// of unordered tables only move the sequence number: their keydirs are
/// rebuilt from every segment), and truncates a torn tail of the newest.
fn replay(
    segments: &[Arc<Segment>],
    state: &ManifestState,
    opts: &Options,
    keydirs: &Keydirs,
) -> Result<Replayed> {
    let rp = state.replay_point;
    let mut imms: Vec<Arc<LoggedMemtable>> = Vec::new();
    let mut mem = LoggedMemtable::new(rp);
    let mut last_seq = state.last_sequence;
    let mut head_offset = 0;
    let mut replayed = 0u64;
    for (i, seg) in segments.iter().enumerate() {
        if seg.number < rp.segment {
            continue;
        }
        let start = if seg.number == rp.segment {
            rp.offset
        } else {
            0
        };
        let is_last = i + 1 == segments.len();
        let outcome = replay_segment(seg, start, is_last, opts.value_threshold, |batch| {
            let Some(first) = batch.records.first() else {
                return Ok(());
            };
            if mem.table.approx_bytes() >= opts.memtable_size
                || mem.log_bytes() >= opts.max_replay_bytes
            {
                let start = Position {
                    segment: first.pointer.segment,
                    offset: first.pointer.offset,
                };
                let full = std::mem::replace(&mut mem, LoggedMemtable::new(start));
                imms.insert(0, full);
            }
            for r in batch.records {
                last_seq = last_seq.max(r.seq);
                replayed += 1;
                mem.add_log_bytes(u64::from(r.pointer.len));
                if keydirs.is_unordered(r.table) {
                    continue;
                }
                let (k, v) = index_entry(
                    r.table,
                    &r.key,
                    r.seq,
                    r.is_put,
                    r.inline_value.as_deref(),
                    r.pointer,
                );
                mem.table.insert(k, v);
            }
            Ok(())
        })?;
        if is_last {
            head_offset = outcome.valid_end;
            if outcome.torn {
                seg.file
                    .set_len(outcome.valid_end)
                    .and_then(|_| seg.file.sync_all())
                    .map_err(|e| Error::io(format!("truncating {}", seg.path.display()), e))?;
            }
        }
    }
    if replayed > 0 {
        log::info!("replayed {replayed} records from the vLog");
    }
    if let (Some(last), true) = (segments.last(), head_offset == 0) {
        // A last segment before the replay point (never replayed) or empty.
        head_offset = last
            .file
            .len()
            .map_err(|e| Error::io(format!("reading {}", last.path.display()), e))?;
    }
    Ok(Replayed {
        mem,
        imms,
        last_seq,
        head_offset,
    })
}

/// Rebuilds the keydirs of the unordered tables from every live segment:
/// from its hint file when there is a good one, else by scanning it (and
/// then writing the hint it lacked, if it is sealed). Returns the highest
/// sequence number found.
fn rebuild_keydirs(fs: &Arc<dyn Fs>, dir: &Path, vlog: &VLog, keydirs: &Keydirs) -> Result<u64> {
    let head = vlog.head_position().segment;
    let gc_head = vlog.gc_head_position().map(|p| p.segment);
    let mut max_seq = 0;
    let (mut hinted, mut scanned) = (0u64, 0u64);
    for seg in vlog.live_set().values() {
        let n = seg.number;
        let open = n == head || Some(n) == gc_head;
        let len = seg
            .file
            .len()
            .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
        let from_hint = match hint::read(fs, dir, n) {
            Ok(Some(h)) if h.segment_len == len => Some(h.entries),
            // A hint is written after its segment was sealed and synced, so
            // a sealed segment shorter than its hint lost durable records;
            // a scan would end cleanly at a record boundary and drop them.
            Ok(Some(h)) if !open && h.segment_len > len => {
                return Err(Error::corruption(
                    &seg.path,
                    len,
                    format!(
                        "the segment ends at {len} bytes but was sealed at {} (its hint says so): records were cut off",
                        h.segment_len
                    ),
                ));
            }
            Ok(Some(h)) => {
                log::info!(
                    "{}: hint describes {} bytes, the segment has {len}: scanning it",
                    seg.path.display(),
                    h.segment_len
                );
                None
            }
            Ok(None) => None,
            Err(e) => {
                log::warn!(
                    "{}: hint not used, scanning the segment: {e}",
                    seg.path.display()
                );
                None
            }
        };
        let entries = match from_hint {
            Some(entries) => {
                hinted += 1;
                entries
            }
            None => {
                scanned += 1;
                let entries = hint::scan(seg, |t| keydirs.is_unordered(t))?;
                if !open {
                    if let Err(e) = hint::write(fs, dir, n, len, &entries) {
                        log::warn!("{}: {e}", seg.path.display());
                    }
                }
                entries
            }
        };
        max_seq = entries.iter().map(|e| e.seq).fold(max_seq, u64::max);
        keydirs.apply_found(n, &entries);
        if open {
            keydirs.reopen_segment(n, entries);
        }
    }
    log::debug!(
        "{}: keydirs rebuilt: {} keys, {hinted} segments from hints, {scanned} scanned",
        dir.display(),
        keydirs.len()
    );
    Ok(max_seq)
}

/// The files the new manifest names (or that the engine keeps).
struct Live {
    ssts: HashSet<u64>,
    gc_segments: HashSet<u64>,
    /// Every live segment (user and GC): hints of others are stale.
    segments: HashSet<u64>,
    manifest: u64,
}

/// Removes what a crash left behind and the manifest does not name. A
/// failure is only logged: the next open tries again.
fn remove_leftovers(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    names: &[(&str, FileName)],
    state: &ManifestState,
    is_new: bool,
    live: &Live,
) {
    for (name, f) in names {
        let stale = match *f {
            FileName::Sst(n) => !live.ssts.contains(&n),
            FileName::Segment(n) => {
                is_new || n < state.vlog_tail || state.segments_removed.contains(&n)
            }
            FileName::GcSegment(n) => !live.gc_segments.contains(&n),
            FileName::Hint(n) => !live.segments.contains(&n),
            FileName::Manifest(n) => n != live.manifest,
            FileName::Temp => true,
            FileName::Current | FileName::Lock => false,
        };
        if stale {
            let p = dir.join(name);
            log::info!("removing leftover file {}", p.display());
            match fs.remove(&p) {
                // The old manifest: `Manifest::create` removed it already.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("removing {}: {e}", p.display()),
                Ok(()) => {}
            }
        }
    }
}
