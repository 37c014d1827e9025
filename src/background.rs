//! The background workers: one thread flushes frozen memtables into level-0
//! SSTables, another runs leveled compactions. Both are fed through crossbeam
//! channels and hold only weak references, so that dropping the last `Db`
//! handle shuts them down. Version changes are serialized by the manifest
//! lock and installed with one swap.

use crate::db::{BgMsg, DbInner};
use crate::error::{Error, Result};
use crate::lsm::compaction::{self, DropFilter, Plan, NUM_LEVELS};
use crate::lsm::ikey;
use crate::lsm::iter::InternalIterator;
use crate::lsm::merge::{Direction, MergeCursor};
use crate::lsm::sstable::{Table, TableBuilder, TableBuilderOptions};
use crate::lsm::version::SstMeta;
use crate::lsm::version::{TableHandle, Version};
use crate::manifest::VersionEdit;
use crate::options::Compression as OptCompression;
use crate::stats::Counters;
use crate::vlog::Position;
use crossbeam_channel::Receiver;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Which worker a thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Flush,
    Compact,
}

/// Starts the flush and compaction threads of `inner`.
pub(crate) fn start(inner: &Arc<DbInner>) -> Result<()> {
    for (role, rx, name) in [
        (Role::Flush, inner.flush_rx.clone(), "wisckey-flush"),
        (Role::Compact, inner.compact_rx.clone(), "wisckey-compact"),
    ] {
        let weak = Arc::downgrade(inner);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || worker(weak, rx, role))
            .map_err(|e| Error::io("starting a background thread", e))?;
        inner.bg_threads.lock().push(handle);
    }
    if inner.opts.background_gc {
        let weak = Arc::downgrade(inner);
        let rx = inner.gc_rx.clone();
        let every = inner.opts.gc_interval;
        let handle = std::thread::Builder::new()
            .name("wisckey-gc".into())
            .spawn(move || gc_worker(weak, rx, every))
            .map_err(|e| Error::io("starting the GC thread", e))?;
        inner.bg_threads.lock().push(handle);
    }
    Ok(())
}

/// Automatic GC: wakes every `every` (or when nudged) and collects while the
/// vLog's space amplification is over its target. A failed pass is logged
/// and retried later; a failed sync inside it has poisoned the database.
fn gc_worker(weak: Weak<DbInner>, rx: Receiver<BgMsg>, every: std::time::Duration) {
    loop {
        match rx.recv_timeout(every) {
            Ok(BgMsg::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            Ok(BgMsg::Work) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        if inner.poisoned.load(Ordering::Acquire) {
            continue;
        }
        if let Err(e) = inner.auto_gc() {
            log::warn!("{}: automatic GC: {e}", inner.dir.display());
        }
        inner.release_zombies();
    }
}

fn worker(weak: Weak<DbInner>, rx: Receiver<BgMsg>, role: Role) {
    let mut pointers = vec![Vec::new(); NUM_LEVELS];
    while let Ok(msg) = rx.recv() {
        if matches!(msg, BgMsg::Stop) {
            return;
        }
        // Coalesce a burst of wake-ups into one pass.
        while let Ok(m) = rx.try_recv() {
            if matches!(m, BgMsg::Stop) {
                return;
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        if !inner.poisoned.load(Ordering::Acquire) {
            let r = match role {
                Role::Flush => flush_all(&inner),
                Role::Compact => compact_until_settled(&inner, &mut pointers),
            };
            if let Err(e) = r {
                inner.set_poison(format!("background work failed: {e}"));
            }
        }
        inner.bg_cv.notify_all();
    }
}

fn flush_all(inner: &DbInner) -> Result<()> {
    while flush_one(inner)? {
        inner.bg_cv.notify_all();
        let _ = inner.compact_tx.send(BgMsg::Work);
    }
    Ok(())
}

/// Runs compactions while any level needs one (or a manual one is asked).
fn compact_until_settled(inner: &DbInner, pointers: &mut [Vec<u8>]) -> Result<()> {
    loop {
        if inner.closed.load(Ordering::Acquire) || inner.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let requested = inner.bg_status.lock().compactions_requested;
        let manual = requested > inner.bg_status.lock().compactions_done;
        let v = inner.current_version();
        let plan = if manual {
            compaction::full_plan(&v)
        } else {
            compaction::pick(&v, &inner.opts, pointers)
        };
        drop(v);
        if let Some(plan) = plan {
            run_compaction(inner, &plan)?;
            inner.bg_cv.notify_all();
            // Only a running GC thread drains its channel.
            if inner.opts.background_gc {
                let _ = inner.gc_tx.send(BgMsg::Work);
            }
        }
        if manual {
            inner.bg_status.lock().compactions_done = requested;
            inner.bg_cv.notify_all();
            continue;
        }
        if !needs_compaction(inner) {
            return Ok(());
        }
    }
}

fn needs_compaction(inner: &DbInner) -> bool {
    let v = inner.current_version();
    compaction::scores(&v, &inner.opts)
        .iter()
        .take(NUM_LEVELS - 1)
        .any(|&s| s >= 1.0)
}

fn builder_options(inner: &DbInner) -> TableBuilderOptions {
    TableBuilderOptions {
        block_size: inner.opts.block_size,
        bloom_bits_per_key: inner.opts.bloom_bits_per_key,
        compression: match inner.opts.compression {
            OptCompression::None => crate::lsm::sstable::Compression::None,
            OptCompression::Zstd(l) => crate::lsm::sstable::Compression::Zstd(l),
        },
        ..TableBuilderOptions::default()
    }
}

fn finish_table(
    inner: &DbInner,
    level: u32,
    number: u64,
    path: PathBuf,
    b: TableBuilder,
) -> Result<Arc<TableHandle>> {
    let summary = b.finish()?;
    let file = inner
        .fs
        .open(&path, false)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let table = Table::open(file, path.clone(), summary.file_size)?;
    let meta = SstMeta {
        level,
        number,
        size: summary.file_size,
        entries: summary.entries,
        smallest: summary.smallest,
        largest: summary.largest,
    };
    Ok(Arc::new(TableHandle::new(
        meta,
        table,
        inner.fs.clone(),
        path,
    )))
}

/// Writes the entries `next` yields into new SSTables of `level`, cutting
/// at `cut_at` bytes (only between user keys, so that a level never splits a
/// key's versions across files). The files and the directory are synced.
pub(crate) fn write_tables(
    inner: &DbInner,
    level: u32,
    cut_at: u64,
    mut next: impl FnMut() -> Result<Option<(Vec<u8>, Vec<u8>)>>,
) -> Result<Vec<Arc<TableHandle>>> {
    let mut out = Vec::new();
    let mut cur: Option<(u64, PathBuf, TableBuilder)> = None;
    let mut last_user: Vec<u8> = Vec::new();
    let result = (|| {
        while let Some((k, v)) = next()? {
            let up = ikey::user_part(&k);
            let cut = matches!(&cur, Some((_, _, b)) if b.estimated_size() >= cut_at && up != last_user.as_slice());
            if cut {
                if let Some((n, p, b)) = cur.take() {
                    out.push(finish_table(inner, level, n, p, b)?);
                }
            }
            if cur.is_none() {
                let number = inner.new_file_number();
                let path = inner.dir.join(crate::files::sst(number));
                let file = inner
                    .fs
                    .create(&path)
                    .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
                cur = Some((
                    number,
                    path.clone(),
                    TableBuilder::new(file, path, builder_options(inner)),
                ));
            }
            if let Some((_, _, b)) = cur.as_mut() {
                b.add(&k, &v)?;
            }
            last_user.clear();
            last_user.extend_from_slice(up);
        }
        if let Some((n, p, b)) = cur.take() {
            out.push(finish_table(inner, level, n, p, b)?);
        }
        if !out.is_empty() {
            inner
                .fs
                .sync_dir(&inner.dir)
                .map_err(|e| Error::io(format!("syncing directory {}", inner.dir.display()), e))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Outputs that no manifest names: remove them now (or at next open).
        for t in &out {
            t.mark_obsolete();
        }
        if let Some((n, _, _)) = cur {
            let _ = inner.fs.remove(&inner.dir.join(crate::files::sst(n)));
        }
        return Err(e);
    }
    Ok(out)
}

/// Flushes the oldest frozen memtable; false when there is none.
fn flush_one(inner: &DbInner) -> Result<bool> {
    let sv = inner.sv.read().clone();
    let Some(imm) = sv.imms.last().cloned() else {
        return Ok(false);
    };
    // After this memtable, replay starts where the next one began.
    let next_start: Position = if sv.imms.len() >= 2 {
        sv.imms[sv.imms.len() - 2].start()
    } else {
        sv.mem.start()
    };
    drop(sv);
    let mut it = imm.iter();
    it.seek_to_first();
    // Versions overwritten within the memtable that no snapshot can see are
    // dropped here, so GC learns of their garbage without waiting for a
    // compaction.
    let mut filter = compaction::DropFilter::for_flush(inner.smallest_snapshot());
    let tables = write_tables(inner, 0, u64::MAX, || loop {
        if !it.valid() {
            return Ok(None);
        }
        let keep = filter.keep(it.key(), it.value());
        let e = (it.key().to_vec(), it.value().to_vec());
        it.next();
        if keep {
            return Ok(Some(e));
        }
    })?;
    let mut discard = imm.wal_garbage();
    discard.extend(filter.discard.iter().map(|(&s, &b)| (s, b)));
    // The new table's pointers must point at durable records.
    if let Err(e) = inner.vlog.sync() {
        inner.set_poison(format!("vLog sync failed: {e}"));
        return Err(e);
    }
    let bytes: u64 = tables.iter().map(|t| t.meta.size).sum();
    let mut vs = inner.vs.lock();
    let edit = VersionEdit {
        added: tables.iter().map(|t| t.meta.clone()).collect(),
        replay_point: Some(next_start),
        last_sequence: Some(vs.state.last_sequence.max(imm.max_seq())),
        discard,
        ..Default::default()
    };
    inner.log_and_apply(&mut vs, edit)?;
    let cur = inner.current_version();
    let mut levels = cur.levels.clone();
    if levels.is_empty() {
        levels.push(Vec::new());
    }
    for t in tables.into_iter().rev() {
        levels[0].insert(0, t);
    }
    inner.install_version(Version { levels }, Some(&imm));
    drop(vs);
    Counters::add(&inner.counters.flush_bytes_written, bytes);
    Counters::add(&inner.counters.flushes, 1);
    Counters::add(&inner.counters.level_written[0], bytes);
    log::debug!(
        "flushed a memtable of {} entries into {bytes} bytes",
        imm.len()
    );
    Ok(true)
}

/// Runs one compaction: a move of a file to the next level, or a merge.
fn run_compaction(inner: &DbInner, plan: &Plan) -> Result<()> {
    if plan.trivial_move {
        return move_file(inner, plan);
    }
    let v = inner.current_version();
    let read_bytes: u64 = plan.inputs.iter().map(|t| t.meta.size).sum();
    let mut merge = MergeCursor::new(compaction::input_iters(plan), Direction::Forward);
    merge.seek_to_end();
    let mut filter = DropFilter::new(&v, plan.output_level, inner.smallest_snapshot());
    let outputs = write_tables(
        inner,
        plan.output_level as u32,
        inner.opts.target_file_size,
        || loop {
            if !merge.valid() {
                merge.status()?;
                return Ok(None);
            }
            let keep = filter.keep(merge.key(), merge.value());
            if keep {
                let e = (merge.key().to_vec(), merge.value().to_vec());
                merge.advance();
                return Ok(Some(e));
            }
            merge.advance();
        },
    )?;
    let written: u64 = outputs.iter().map(|t| t.meta.size).sum();
    let mut vs = inner.vs.lock();
    let edit = VersionEdit {
        added: outputs.iter().map(|t| t.meta.clone()).collect(),
        removed: plan
            .inputs
            .iter()
            .map(|t| (t.meta.level, t.meta.number))
            .collect(),
        discard: filter.discard.iter().map(|(&s, &b)| (s, b)).collect(),
        ..Default::default()
    };
    // A failed append leaves the edit's fate unknown (it may be on disk and
    // name the outputs): keep them; the next open removes what the manifest
    // does not name.
    inner.log_and_apply(&mut vs, edit)?;
    let now = inner.current_version();
    let mut levels = remove_inputs(&now, plan);
    place(&mut levels, plan.output_level, outputs);
    inner.install_version(Version { levels }, None);
    drop(vs);
    for t in &plan.inputs {
        t.mark_obsolete();
    }
    let c = &inner.counters;
    Counters::add(&c.compaction_bytes_written, written);
    Counters::add(&c.compaction_bytes_read, read_bytes);
    Counters::add(&c.compactions, 1);
    Counters::add(&c.level_written[plan.output_level], written);
    for t in &plan.inputs {
        Counters::add(&c.level_read[t.meta.level as usize], t.meta.size);
    }
    log::debug!(
        "compacted {} tables of L{} and L{} ({read_bytes} bytes) into {written} bytes, dropping {} entries",
        plan.inputs.len(),
        plan.start_level,
        plan.output_level,
        filter.dropped
    );
    Ok(())
}

/// Moves one file down a level without rewriting it.
fn move_file(inner: &DbInner, plan: &Plan) -> Result<()> {
    let Some(t) = plan.inputs.first() else {
        return Ok(());
    };
    let mut meta = t.meta.clone();
    meta.level = plan.output_level as u32;
    let mut vs = inner.vs.lock();
    let edit = VersionEdit {
        added: vec![meta.clone()],
        removed: vec![(t.meta.level, t.meta.number)],
        ..Default::default()
    };
    inner.log_and_apply(&mut vs, edit)?;
    let moved = Arc::new(TableHandle::new(
        meta,
        t.table.clone(),
        inner.fs.clone(),
        inner.dir.join(crate::files::sst(t.meta.number)),
    ));
    let now = inner.current_version();
    let mut levels = remove_inputs(&now, plan);
    place(&mut levels, plan.output_level, vec![moved]);
    inner.install_version(Version { levels }, None);
    Counters::add(&inner.counters.trivial_moves, 1);
    Ok(())
}

fn remove_inputs(v: &Version, plan: &Plan) -> Vec<Vec<Arc<TableHandle>>> {
    v.levels
        .iter()
        .map(|l| {
            l.iter()
                .filter(|t| !plan.inputs.iter().any(|i| i.meta.number == t.meta.number))
                .cloned()
                .collect()
        })
        .collect()
}

/// Adds files to a sorted level, keeping it sorted by smallest key.
fn place(levels: &mut Vec<Vec<Arc<TableHandle>>>, level: usize, files: Vec<Arc<TableHandle>>) {
    while levels.len() <= level {
        levels.push(Vec::new());
    }
    levels[level].extend(files);
    levels[level].sort_by(|a, b| ikey::compare(&a.meta.smallest, &b.meta.smallest));
}
