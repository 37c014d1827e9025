//! Open-time recovery: lock the directory, read the manifest, open the
//! tables, replay the vLog from the replay point into memtables, truncate a
//! torn tail, remove files a crash left behind.

use crate::db::{BgStatus, CommitState, DbInner, SuperVersion, VersionSet};
use crate::error::{Error, Result};
use crate::io::{select_fs, Fs, StdFs};
use crate::keydir::Keydirs;
use crate::lsm::ikey::{self, Kind};
use crate::lsm::memtable::Memtable;
use crate::lsm::sstable::Table;
use crate::lsm::version::{TableHandle, Version};
use crate::manifest::{Manifest, ManifestState};
use crate::options::Options;
use crate::stats::Counters;
use crate::vlog::hint;
use crate::vlog::{replay_segment, Position, Segment, SegmentKind, VLog};
use crate::write_queue::WriteQueue;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// The name of the lock file.
pub(crate) const LOCK_FILE: &str = "LOCK";

fn parse_numbered(name: &str, ext: &str) -> Option<u64> {
    use crate::files::FileName;
    match (FileName::parse(name)?, ext) {
        (FileName::Segment(n), ".vlog")
        | (FileName::GcSegment(n), ".gc.vlog")
        | (FileName::Sst(n), ".sst")
        | (FileName::Hint(n), ".hint") => Some(n),
        _ => None,
    }
}

fn parse_manifest_file_name(name: &str) -> Option<u64> {
    match crate::files::FileName::parse(name)? {
        crate::files::FileName::Manifest(n) => Some(n),
        _ => None,
    }
}

pub(crate) fn open(dir: &Path, opts: Options) -> Result<Arc<DbInner>> {
    let fs: Arc<dyn Fs> = match (&opts.fs, opts.io_backend) {
        (Some(fs), _) => fs.clone(),
        (None, backend) => select_fs(backend, opts.file_mode())?,
    };
    let _ = StdFs::default;
    fs.create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let lock = fs.lock(&dir.join(LOCK_FILE)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            Error::io(format!("locking {}", dir.display()), e)
        }
    })?;

    let names = fs
        .list(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let max_number = names
        .iter()
        .filter_map(|n| {
            parse_numbered(n, ".vlog")
                .or_else(|| parse_numbered(n, ".sst"))
                .or_else(|| parse_manifest_file_name(n))
        })
        .max()
        .unwrap_or(0);

    let recovered = Manifest::recover(fs.clone(), dir)?;
    let is_new = recovered.is_none();
    if is_new {
        refuse_orphaned_data(&*fs, dir, &names)?;
    }
    // A file the manifest names is missing: the manifest does not describe
    // the directory, so the error names the manifest. With a torn last
    // record, that record was an acknowledged edit (files it made obsolete
    // are gone): the damage is there.
    let manifest_at = recovered.as_ref().map(|(m, _)| {
        let torn = m
            .dropped_tail()
            .map(|(off, why)| (*off, format!("its last record is damaged ({why}) and ")));
        let (at, torn) = torn.unwrap_or((m.size(), String::new()));
        (m.path().to_path_buf(), at, torn)
    });
    let missing = |file: &Path, offset: u64, reason: &str| match &manifest_at {
        Some((manifest, at, torn)) => Error::corruption(
            manifest,
            *at,
            format!("{torn}{} at offset {offset}: {reason}", file.display()),
        ),
        None => Error::corruption(file, offset, reason),
    };
    let mut state = match recovered {
        Some((_, state)) => state,
        None => ManifestState::default(),
    };
    let keydirs = Keydirs::new(
        state
            .tables
            .iter()
            .filter(|t| t.kind == crate::options::TableKind::Unordered)
            .map(|t| t.id),
    );
    let next_file = AtomicU64::new(state.next_file_number.max(max_number + 1).max(1));
    let alloc = || next_file.fetch_add(1, std::sync::atomic::Ordering::Relaxed);

    // Tables named by the manifest.
    let mut levels: Vec<Vec<Arc<TableHandle>>> = Vec::new();
    let mut live_tables = HashSet::new();
    for files in &state.levels {
        let mut level = Vec::new();
        for meta in files {
            let path = dir.join(crate::files::sst(meta.number));
            let file = fs.open(&path, false).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    missing(&path, 0, "SSTable named by the manifest is missing")
                } else {
                    Error::io(format!("opening {}", path.display()), e)
                }
            })?;
            let table = Table::open(file, path.clone(), meta.size)?;
            live_tables.insert(meta.number);
            level.push(Arc::new(TableHandle::new(
                meta.clone(),
                table,
                fs.clone(),
                path,
            )));
        }
        levels.push(level);
    }
    // Level 0 newest first for readers (the manifest keeps it oldest first).
    if let Some(l0) = levels.first_mut() {
        l0.reverse();
    }

    // vLog segments from the tail on.
    let mut seg_numbers: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_numbered(n, ".vlog"))
        .filter(|n| !is_new && *n >= state.vlog_tail && !state.segments_removed.contains(n))
        .collect();
    seg_numbers.sort_unstable();
    let rp = state.replay_point;
    if !is_new && !seg_numbers.contains(&rp.segment) {
        return Err(missing(
            &dir.join(crate::files::segment(rp.segment)),
            rp.offset,
            "the vLog segment holding the replay point is missing",
        ));
    }
    let mut segments = Vec::new();
    for (i, &n) in seg_numbers.iter().enumerate() {
        let path = dir.join(crate::files::segment(n));
        let writable = i + 1 == seg_numbers.len();
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

    // GC segments up to the GC head the manifest knows; anything past it was
    // written by a pass that a crash cut short, before its index entries
    // were recorded: nothing points there.
    let gc_head = state.gc_head;
    let mut gc_numbers: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_numbered(n, ".gc.vlog"))
        .filter(|n| {
            !is_new
                && *n >= state.vlog_tail
                && *n <= gc_head.segment
                && !state.segments_removed.contains(n)
        })
        .collect();
    gc_numbers.sort_unstable();
    let mut gc_segments = Vec::new();
    for &n in &gc_numbers {
        let path = dir.join(crate::files::gc_segment(n));
        let is_head = n == gc_head.segment;
        let file = fs
            .open(&path, is_head)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        if is_head {
            let len = file
                .len()
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            if len < gc_head.offset {
                return Err(missing(
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
        gc_segments.push(Arc::new(Segment::new(
            fs.clone(),
            n,
            SegmentKind::Gc,
            path,
            file,
        )));
    }
    if gc_head.segment != 0 && !gc_numbers.contains(&gc_head.segment) {
        return Err(missing(
            &dir.join(crate::files::gc_segment(gc_head.segment)),
            gc_head.offset,
            "the GC head segment named by the manifest is missing",
        ));
    }

    // Replay.
    let mut imms: Vec<Arc<Memtable>> = Vec::new();
    let mut mem = Arc::new(Memtable::new(rp));
    let mut last_seq = state.last_sequence;
    let mut head_offset = 0;
    let threshold = opts.value_threshold;
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
        let outcome = replay_segment(seg, start, is_last, threshold, |batch| {
            let Some(first) = batch.records.first() else {
                return Ok(());
            };
            if mem.approx_bytes() >= opts.memtable_size || mem.log_bytes() >= opts.max_replay_bytes
            {
                let start = Position {
                    segment: first.pointer.segment,
                    offset: first.pointer.offset,
                };
                let full = std::mem::replace(&mut mem, Arc::new(Memtable::new(start)));
                imms.insert(0, full);
            }
            for r in batch.records {
                last_seq = last_seq.max(r.seq);
                replayed += 1;
                mem.add_log_bytes(u64::from(r.pointer.len));
                if keydirs.is_unordered(r.table) {
                    // The keydirs are rebuilt below, from every segment.
                    continue;
                }
                let entry = if !r.is_put {
                    (
                        ikey::encode(r.table, &r.key, r.seq, Kind::Delete as u8),
                        Vec::new(),
                    )
                } else if let Some(v) = r.inline_value {
                    (ikey::encode(r.table, &r.key, r.seq, Kind::Inline as u8), v)
                } else {
                    (
                        ikey::encode(r.table, &r.key, r.seq, Kind::Pointer as u8),
                        r.pointer.encode(),
                    )
                };
                mem.insert(entry.0, entry.1);
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
        log::info!(
            "{}: replayed {replayed} records from the vLog",
            dir.display()
        );
    }
    if let (Some(last), true) = (segments.last(), head_offset == 0) {
        // A last segment before the replay point (never replayed) or empty.
        head_offset = last
            .file
            .len()
            .map_err(|e| Error::io(format!("reading {}", last.path.display()), e))?;
    }

    let mut all_segments = segments;
    all_segments.extend(gc_segments);
    let vlog = VLog::open(
        fs.clone(),
        dir,
        all_segments,
        head_offset,
        gc_head.offset,
        alloc,
    )?;
    if keydirs.any() {
        last_seq = last_seq.max(rebuild_keydirs(&fs, dir, &vlog, &keydirs)?);
    }
    if is_new {
        let head = vlog.head_position();
        state.replay_point = head;
        state.vlog_tail = head.segment;
        mem = Arc::new(Memtable::new(head));
    }
    let tail = state.vlog_tail;

    // A fresh manifest: one snapshot edit of the recovered state.
    state.last_sequence = last_seq;
    let manifest_number = alloc();
    state.next_file_number = next_file.load(std::sync::atomic::Ordering::Relaxed) + 1;
    let manifest = Manifest::create(fs.clone(), dir, manifest_number, &state)?;
    log::debug!(
        "{}: manifest {} written, {} tables, vLog head at {}:{}",
        dir.display(),
        manifest.number(),
        state.levels.iter().map(|l| l.len()).sum::<usize>(),
        vlog.head_position().segment,
        vlog.head_position().offset
    );

    // Remove what a crash left behind and the manifest does not name.
    let live_numbers: HashSet<u64> = vlog.live_set().keys().copied().collect();
    for name in &names {
        let stale = if let Some(n) = parse_numbered(name, ".sst") {
            !live_tables.contains(&n)
        } else if let Some(n) = parse_numbered(name, ".vlog") {
            is_new || n < tail || state.segments_removed.contains(&n)
        } else if let Some(n) = parse_numbered(name, ".gc.vlog") {
            !gc_numbers.contains(&n)
        } else if let Some(n) = parse_numbered(name, ".hint") {
            !live_numbers.contains(&n)
        } else if let Some(n) = parse_manifest_file_name(name) {
            n != manifest_number
        } else {
            name.ends_with(".tmp")
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
    let live_segments = vlog.live_set();
    let (flush_tx, flush_rx) = crossbeam_channel::unbounded();
    let (compact_tx, compact_rx) = crossbeam_channel::unbounded();
    let (gc_tx, gc_rx) = crossbeam_channel::unbounded();
    let inner = DbInner {
        dir: dir.to_path_buf(),
        fs,
        _lock: lock,
        vlog,
        sv: RwLock::new(Arc::new(SuperVersion {
            mem,
            imms,
            version: Arc::new(Version { levels }),
            segments: live_segments,
        })),
        vs: Mutex::new(VersionSet { manifest, state }),
        next_file,
        visible_seq: AtomicU64::new(last_seq),
        commit: Mutex::new(CommitState { last_seq }),
        queue: WriteQueue::default(),
        snapshots: Mutex::new(BTreeMap::new()),
        poison: Mutex::new(None),
        poisoned: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        flush_tx,
        flush_rx,
        compact_tx,
        compact_rx,
        gc_tx,
        gc_rx,
        gc_lock: Mutex::new(()),
        bg_threads: Mutex::new(Vec::new()),
        bg_status: Mutex::new(BgStatus::default()),
        bg_cv: Condvar::new(),
        counters: Counters::default(),
        keydirs,
        opts,
    };
    Ok(Arc::new(inner))
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

/// Without CURRENT the directory is a new database, unless it holds data: a
/// crash while a database was being created leaves at most empty segments
/// and a manifest that CURRENT never named, but SSTables or records in a
/// segment mean CURRENT was lost, and starting afresh would throw them away.
fn refuse_orphaned_data(fs: &dyn Fs, dir: &Path, names: &[String]) -> Result<()> {
    for name in names {
        let path = dir.join(name);
        let holds_data = if parse_numbered(name, ".sst").is_some() {
            true
        } else if parse_numbered(name, ".vlog").is_some() {
            let f = fs
                .open(&path, false)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            f.len()
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
                > 0
        } else {
            false
        };
        if holds_data {
            return Err(Error::corruption(
                dir.join("CURRENT"),
                0,
                format!("CURRENT is missing but {name} holds data; refusing to start an empty database over it"),
            ));
        }
    }
    Ok(())
}
