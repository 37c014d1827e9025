//! The background worker: flushes frozen memtables into level-0 SSTables and
//! merges level 0 into level 1 when it piles up. One thread, fed through a
//! crossbeam channel; it holds only a weak reference so that dropping the
//! last `Db` handle shuts it down.

use crate::db::{BgMsg, DbInner};
use crate::error::{Error, Result};
use crate::lsm::ikey::{self, Kind};
use crate::lsm::iter::InternalIterator;
use crate::lsm::manifest::{ReplayPoint, TableFile, VersionEdit};
use crate::lsm::memtable::Memtable;
use crate::lsm::merge::{Direction, MergeCursor};
use crate::lsm::sstable::{Table, TableBuilder, TableBuilderOptions};
use crate::lsm::version::{table_file_name, TableHandle, Version};
use crate::options::Compression as OptCompression;
use crate::stats::Counters;
use std::sync::{Arc, Weak};

/// Starts the worker thread for `inner`.
pub(crate) fn start(inner: &Arc<DbInner>) -> Result<()> {
    let weak = Arc::downgrade(inner);
    let rx = inner.bg_rx.clone();
    let handle = std::thread::Builder::new()
        .name("wisckey-bg".into())
        .spawn(move || worker(weak, rx))
        .map_err(|e| Error::io("starting the background thread", e))?;
    *inner.bg_thread.lock() = Some(handle);
    Ok(())
}

fn worker(weak: Weak<DbInner>, rx: crossbeam_channel::Receiver<BgMsg>) {
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
        if inner.poisoned.load(std::sync::atomic::Ordering::Acquire) {
            inner.bg_cv.notify_all();
            continue;
        }
        if let Err(e) = run_pass(&inner) {
            inner.set_poison(format!("background work failed: {e}"));
        }
        inner.bg_cv.notify_all();
    }
}

/// Flushes every frozen memtable, then compacts if needed or asked.
fn run_pass(inner: &DbInner) -> Result<()> {
    while flush_one(inner)? {
        inner.bg_cv.notify_all();
    }
    let requested = inner.bg_status.lock().compactions_requested;
    let l0 = inner
        .current_version()
        .levels
        .first()
        .map_or(0, |l| l.len());
    let manual = requested > inner.bg_status.lock().compactions_done;
    if manual || l0 >= inner.opts.l0_compaction_trigger {
        compact_all(inner, manual)?;
        if manual {
            inner.bg_status.lock().compactions_done = requested;
        }
    }
    Ok(())
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

/// Writes the entries `next` yields into new SSTables of `level`, cutting
/// at `cut_at` bytes (only between user keys). Returns the opened tables.
fn write_tables(
    inner: &DbInner,
    level: u32,
    cut_at: u64,
    mut next: impl FnMut() -> Result<Option<(Vec<u8>, Vec<u8>)>>,
) -> Result<Vec<Arc<TableHandle>>> {
    let mut out = Vec::new();
    let mut cur: Option<(u64, std::path::PathBuf, TableBuilder)> = None;
    let mut last_user: Vec<u8> = Vec::new();
    let finish = |inner: &DbInner,
                  number: u64,
                  path: std::path::PathBuf,
                  b: TableBuilder|
     -> Result<Arc<TableHandle>> {
        let summary = b.finish()?;
        let file = inner
            .fs
            .open(&path, false)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let table = Table::open(file, path.clone(), summary.file_size)?;
        let meta = TableFile {
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
    };
    while let Some((k, v)) = next()? {
        let up = ikey::user_part(&k);
        if let Some((_, _, b)) = &cur {
            if b.estimated_size() >= cut_at && up != last_user.as_slice() {
                if let Some((n, p, b)) = cur.take() {
                    out.push(finish(inner, n, p, b)?);
                }
            }
        }
        if cur.is_none() {
            let number = inner.new_file_number();
            let path = inner.dir.join(table_file_name(number));
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
        out.push(finish(inner, n, p, b)?);
    }
    if !out.is_empty() {
        inner
            .fs
            .sync_dir(&inner.dir)
            .map_err(|e| Error::io(format!("syncing directory {}", inner.dir.display()), e))?;
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
    let next_start: ReplayPoint = if sv.imms.len() >= 2 {
        sv.imms[sv.imms.len() - 2].start()
    } else {
        sv.mem.start()
    };
    let mut it = imm.iter();
    it.seek_to_first();
    let tables = write_tables(inner, 0, u64::MAX, || {
        if !it.valid() {
            return Ok(None);
        }
        let e = (it.key().to_vec(), it.value().to_vec());
        it.next();
        Ok(Some(e))
    })?;
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
    log::debug!(
        "flushed a memtable of {} entries into {bytes} bytes",
        imm.len()
    );
    Ok(true)
}

/// Merges every level-0 table and level 1 into a new level 1: one sorted run.
/// Drops versions no snapshot can see, and tombstones (level 1 is the bottom).
fn compact_all(inner: &DbInner, manual: bool) -> Result<()> {
    let cur = inner.current_version();
    let inputs: Vec<Arc<TableHandle>> = cur.all_tables().cloned().collect();
    if inputs.is_empty() || (!manual && cur.levels.first().is_none_or(|l| l.is_empty())) {
        return Ok(());
    }
    let read_bytes: u64 = inputs.iter().map(|t| t.meta.size).sum();
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    cur.iters(&mut children);
    let mut merge = MergeCursor::new(children, Direction::Forward);
    merge.seek_to_end();
    let smallest_snapshot = inner.smallest_snapshot();
    let mut last_key: Vec<u8> = Vec::new();
    let mut last_user: Option<Vec<u8>> = None;
    let mut last_seq_for_key = u64::MAX;
    let outputs = write_tables(inner, 1, inner.opts.target_file_size, || loop {
        if !merge.valid() {
            merge.status()?;
            return Ok(None);
        }
        let k = merge.key().to_vec();
        let up = ikey::user_part(&k);
        let seq = ikey::seq(&k);
        if last_user.as_deref() != Some(up) {
            last_user = Some(up.to_vec());
            last_seq_for_key = u64::MAX;
        }
        let duplicate = k == last_key;
        let shadowed = last_seq_for_key <= smallest_snapshot;
        let dead_tombstone = ikey::kind_byte(&k) == Kind::Delete as u8 && seq <= smallest_snapshot;
        last_seq_for_key = seq;
        let v = merge.value().to_vec();
        merge.advance();
        if duplicate || shadowed || dead_tombstone {
            continue;
        }
        last_key.clone_from(&k);
        return Ok(Some((k, v)));
    })?;
    let written: u64 = outputs.iter().map(|t| t.meta.size).sum();
    let mut vs = inner.vs.lock();
    let edit = VersionEdit {
        added: outputs.iter().map(|t| t.meta.clone()).collect(),
        removed: inputs
            .iter()
            .map(|t| (t.meta.level, t.meta.number))
            .collect(),
        ..Default::default()
    };
    inner.log_and_apply(&mut vs, edit)?;
    let now = inner.current_version();
    let mut levels: Vec<Vec<Arc<TableHandle>>> = now
        .levels
        .iter()
        .map(|l| {
            l.iter()
                .filter(|t| !inputs.iter().any(|i| i.meta.number == t.meta.number))
                .cloned()
                .collect()
        })
        .collect();
    while levels.len() < 2 {
        levels.push(Vec::new());
    }
    levels[1] = outputs;
    inner.install_version(Version { levels }, None);
    drop(vs);
    for t in &inputs {
        t.mark_obsolete();
    }
    Counters::add(&inner.counters.compaction_bytes_written, written);
    Counters::add(&inner.counters.compaction_bytes_read, read_bytes);
    Counters::add(&inner.counters.compactions, 1);
    log::debug!(
        "compacted {} tables ({read_bytes} bytes) into {written} bytes",
        inputs.len()
    );
    Ok(())
}

#[allow(dead_code)]
fn _assert_memtable_send(m: Arc<Memtable>) -> impl Send {
    m
}
