//! Opening a database, one step per function:
//!
//! 1. [`lock_directory`]: create the directory if missing, take `LOCK`.
//! 2. [`read_manifest`]: `CURRENT`, then the manifest it names (or a new
//!    database, refused where data would be thrown away).
//! 3. [`open_ssts`]: the SSTables the manifest names.
//! 4. `check_sealed_segments`, then `open_user_segments` and
//!    `open_gc_segments`: the vLog from its
//!    tail on; bytes a crashed GC pass left past GC's head are cut off
//!    (these steps, and 5, are in `vlog.rs`).
//! 5. `replay`: the user segments from the replay point into memtables;
//!    a torn tail of the newest segment is truncated.
//! 6. `rebuild_keydirs` (`keydirs.rs`): the unordered tables' keydirs,
//!    from hint files or by scanning segments, several segments at once.
//! 7. a fresh manifest: one snapshot edit of the recovered state.
//! 8. [`remove_leftovers`]: files a crash left that the manifest does not
//!    name.
//! 9. the disk reserve (`RESERVE`, `reserve.rs`): made when missing or
//!    short, where there is room.
//!
//! A writable open does all of its I/O through a [`WatchedFs`], which notes
//! a full disk for the reserve (a read-only one through the plain file
//! system: it never creates or removes `RESERVE`).
//!
//! Then [`Engine::open`] assembles the parts and starts the workers.

mod keydirs;
mod vlog;

use super::counters::Counters;
use super::health::Health;
use super::reserve::{Reserve, WatchedFs};
use super::versions::{LoggedMemtable, SuperVersion, Versions};
use super::workers::Workers;
use super::write::Writer;
use super::{gc, Engine};
use crate::error::{Error, Result};
use crate::files::{self, FileName};
use crate::io::{select_fs, FileLock, Fs, Writeback};
use crate::keydir::Keydirs;
use crate::lsm::sstable::{BlockCache, Sst};
use crate::lsm::version::{SstHandle, Version};
use crate::manifest::{unix_now, Manifest, ManifestState, SegmentInfo};
use crate::options::{Options, TableKind};
use crate::stats::CreatedWith;
use crate::vlog::VLog;
use keydirs::rebuild_keydirs;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vlog::{
    check_sealed_segments, open_gc_segments, open_user_segments, record_unrecorded_seals, replay,
};

impl Engine {
    /// Opens (or creates) the database in `dir` and starts its workers.
    pub(crate) fn open(dir: &Path, opts: Options) -> Result<Arc<Engine>> {
        let fs: Arc<dyn Fs> = match (&opts.fs, opts.io_backend) {
            (Some(fs), _) => fs.clone(),
            (None, backend) => select_fs(backend, opts.file_mode())?,
        };
        let ro = opts.read_only;
        let (fs, reserve) = if ro {
            (fs, None)
        } else {
            let reserve = Reserve::new(fs.clone(), dir, opts.disk_reserve);
            (WatchedFs::wrap(fs, reserve.clone()), Some(reserve))
        };
        let lock = lock_directory(&fs, dir, &opts)?;
        let names = fs
            .list(dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let parsed: Vec<(&str, FileName)> = names
            .iter()
            .filter_map(|n| FileName::parse(n).map(|f| (n.as_str(), f)))
            .collect();
        let (recovered, mut state) = read_manifest(&fs, dir, &parsed, ro)?;
        let is_new = recovered.is_none();
        if is_new && (ro || !opts.create_if_missing) {
            // CURRENT went between the check before the lock and now.
            return Err(no_database(dir));
        }
        let blame = Blame::new(recovered.as_ref());
        if !ro {
            // Written into the fresh manifest below.
            super::replace::drop_hidden_tables(&mut state);
        }
        let keydirs = Keydirs::new(
            state
                .tables
                .iter()
                .filter(|t| t.kind == TableKind::Unordered)
                .map(|t| t.id),
        );
        let dropped_ids: Vec<u32> = state.dropped_tables.keys().copied().collect();
        for d in state.dropped_tables.values() {
            if d.kind == TableKind::Unordered {
                keydirs.note_dropped(d.id);
            }
        }
        let max_number = parsed.iter().filter_map(|(_, f)| f.number()).max();
        let next_file = AtomicU64::new(
            state
                .next_file_number
                .max(max_number.map_or(0, |n| n + 1))
                .max(1),
        );
        let alloc = || next_file.fetch_add(1, Ordering::Relaxed);

        if !is_new {
            check_sealed_segments(&fs, dir, &state, &parsed, &blame)?;
        }
        let block_cache = Arc::new(BlockCache::new(opts.block_cache_size, opts.block_size));
        let (levels, live_ssts) = open_ssts(&fs, dir, &state, &blame, &block_cache)?;
        let segments = if is_new {
            Vec::new()
        } else {
            open_user_segments(&fs, dir, &state, &parsed, &blame, ro)?
        };
        let gc_segments = if is_new {
            Vec::new()
        } else {
            open_gc_segments(&fs, dir, &state, &parsed, &blame, ro)?
        };
        let gc_numbers: HashSet<u64> = gc_segments.iter().map(|s| s.number).collect();
        let replayed = replay(&segments, &state, &opts, &keydirs)?;
        if ro && segments.is_empty() {
            return Err(Error::corruption(
                dir,
                0,
                "no user vLog segment: the database has no vLog head",
            ));
        }

        let mut all_segments = segments;
        all_segments.extend(gc_segments);
        let vlog = VLog::open(
            fs.clone(),
            dir,
            all_segments,
            replayed.head_offset,
            state.gc_head.offset,
            alloc,
            Arc::new(Writeback::new(opts.write_mode, opts.bytes_per_sync)),
        )?;
        vlog.set_max_value_len(opts.max_value_size);
        super::values::load_dictionaries(&fs, dir, &state.values, vlog.dictionaries())?;
        let mut last_seq = replayed.last_seq;
        if keydirs.any() {
            last_seq = last_seq.max(rebuild_keydirs(&fs, dir, &vlog, &keydirs, ro)?);
        }
        let (mut mem, imms) = (replayed.mem, replayed.imms);
        if is_new {
            let head = vlog.head_position();
            state.replay_point = head;
            state.vlog_tail = head.segment;
            state.segment_info.insert(
                head.segment,
                SegmentInfo {
                    number: head.segment,
                    created_unix_secs: unix_now(),
                    min_seq: 1,
                    max_seq: 0,
                },
            );
            mem = LoggedMemtable::new(head);
        }

        let manifest = match recovered {
            // Read-only: the recovered manifest stays, untouched (nothing is
            // ever appended to it: every write is refused).
            Some(m) if ro => m,
            _ => {
                record_unrecorded_seals(&vlog, &mut state)?;
                // A database of an older format is in today's from here on.
                state.values.format_version = crate::manifest::values::FORMAT_VERSION;
                if state.created.is_none() {
                    state.created = Some(created_with(&opts, is_new));
                }
                state.vlog_head = vlog.head_position().segment;
                state.last_sequence = last_seq;
                let mut create = || {
                    let n = alloc();
                    state.next_file_number = next_file.load(Ordering::Relaxed) + 1;
                    Manifest::create(fs.clone(), dir, n, &state)
                };
                let manifest = match create() {
                    // The disk filled up while the database was closed (or
                    // the reserve outlived a full disk): give the reserve
                    // back and try once more (with a new number: CURRENT may
                    // name the failed one).
                    Err(e) if reserve.as_ref().is_some_and(|r| r.saw_disk_full()) => {
                        match reserve.as_ref().and_then(|r| r.release()) {
                            Some(bytes) => {
                                log::warn!(
                                    "{}: the disk is full: released the {bytes}-byte disk \
                                     reserve to write the manifest ({e})",
                                    dir.display()
                                );
                                create()?
                            }
                            None => return Err(e),
                        }
                    }
                    r => r?,
                };
                let manifest_number = manifest.number();
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
                match &reserve {
                    Some(r) if opts.disk_reserve => {
                        r.ensure(Reserve::wanted(&opts, manifest.size()))
                    }
                    Some(r) => {
                        if let Some(bytes) = r.release() {
                            log::info!(
                                "{}: removed the {bytes}-byte disk reserve (disk_reserve is off)",
                                dir.display()
                            );
                        }
                    }
                    None => {}
                }
                manifest
            }
        };

        let current = SuperVersion {
            mem,
            imms,
            version: Arc::new(Version {
                levels,
                range_dels: Arc::new(state.range_dels.clone()),
            }),
            segments: vlog.live_set(),
        };
        let counters = Counters::on_top_of(state.counters, !ro);
        let values = super::values::ValueCodecs::from_state(&state.values, vlog.dictionaries());
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
            health: Health::new(ro.then(|| dir.to_path_buf()), reserve),
            counters,
            block_cache,
            gc: gc::GcState::default(),
            early: super::early::EarlyGarbage::new(last_seq + 1),
            tables: super::tables::TableBook::new(dropped_ids),
            values,
            opts,
        });
        if ro {
            // No background work: nothing may be written.
            return Ok(engine);
        }
        engine.remove_unused_dicts();
        Workers::start(&engine)?;
        // Frozen memtables left by a long replay, and compactions a crash
        // interrupted, go to the workers now.
        engine.workers.wake_flush();
        engine.workers.wake_compaction();
        Ok(engine)
    }
}

/// The error for a directory that holds no database where one must exist.
fn no_database(dir: &Path) -> Error {
    Error::InvalidArgument(format!(
        "{} holds no wisckey database (no CURRENT file) and the open may not create one",
        dir.display()
    ))
}

/// Takes the directory's lock: an exclusive one, creating the directory
/// if missing (and allowed); for a read-only open, a shared one, on an
/// existing database only. Nothing is created in a directory that holds no
/// database when none may be created, or that holds files of something
/// else.
fn lock_directory(fs: &Arc<dyn Fs>, dir: &Path, opts: &Options) -> Result<Box<dyn FileLock>> {
    let may_create = opts.create_if_missing && !opts.read_only;
    if fs.exists(dir) {
        let names = fs
            .list(dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        if !names.iter().any(|n| n == files::CURRENT) {
            if !may_create {
                return Err(no_database(dir));
            }
            if let Some(other) = names.iter().find(|n| FileName::parse(n).is_none()) {
                return Err(Error::InvalidArgument(format!(
                    "{} holds files that are not a wisckey database's (such as {other:?}); refusing to create one there",
                    dir.display()
                )));
            }
        }
    } else if !may_create {
        return Err(no_database(dir));
    } else {
        create_directory(fs, dir)?;
    }
    let path = dir.join(files::LOCK);
    let lock = if opts.read_only {
        fs.lock_shared(&path)
    } else {
        fs.lock(&path)
    };
    lock.map_err(|e| {
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
    read_only: bool,
) -> Result<(Option<Manifest>, ManifestState)> {
    if let Some((m, state)) = Manifest::recover(fs.clone(), dir, !read_only)? {
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
    cache: &Arc<BlockCache>,
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
            let sst = Sst::open_cached(file, path.clone(), meta.size, cache.clone(), meta.number)?;
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
/// What a database is created with now (`is_new`), or is found to run with
/// at its first writable open since this was recorded (creation time
/// unknown: 0).
fn created_with(opts: &Options, is_new: bool) -> CreatedWith {
    let unix_secs = if is_new { unix_now() } else { 0 };
    CreatedWith {
        unix_secs,
        segment_size: opts.segment_size,
        value_threshold: opts.value_threshold as u64,
        memtable_size: opts.memtable_size as u64,
    }
}

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
            FileName::Dict(n) => !state.values.dicts.contains_key(&n),
            FileName::Manifest(n) => n != live.manifest,
            FileName::Temp => true,
            // The reserve is made (or kept) after this, never a leftover.
            FileName::Current | FileName::Lock | FileName::Reserve => false,
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
