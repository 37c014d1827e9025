//! The keydirs' part of opening: every live segment's unordered records,
//! from its hint file or by scanning it, applied to the keydirs.
//!
//! Segments are read on a few threads (reading a hint, checking its
//! checksum and decoding it, or scanning a segment, is most of an open's
//! work besides the hash inserts); the opening thread applies each one to
//! the keydirs as it comes. The keydirs do not depend on the order they
//! are applied in ([`Keydirs::apply_found`]), and the error an open returns
//! is the one of the lowest-numbered segment that failed, as when the
//! segments were read one after another.

use crate::error::{Error, Result};
use crate::io::Fs;
use crate::keydir::Keydirs;
use crate::vlog::hint::{self, HintEntry, RawHint};
use crate::vlog::{Segment, VLog};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// Threads that read segments at most (the opening thread applies them).
const MAX_READERS: usize = 4;

/// A segment's unordered records as found.
enum Found {
    /// From its hint file, the keys still in the file's bytes.
    Hint(RawHint),
    /// By scanning it.
    Scanned(Vec<HintEntry>),
}

impl Found {
    fn max_seq(&self) -> u64 {
        match self {
            Found::Hint(h) => h.iter().map(|e| e.seq).max().unwrap_or(0),
            Found::Scanned(e) => e.iter().map(|e| e.seq).max().unwrap_or(0),
        }
    }
}

/// What the readers need to know of the log.
struct Heads {
    user: u64,
    user_end: u64,
    gc: Option<(u64, u64)>,
}

impl Heads {
    fn is_open(&self, n: u64) -> bool {
        n == self.user || self.gc.is_some_and(|(g, _)| g == n)
    }

    /// Where a scan of segment `n` ends: a head is read to where appends go
    /// on (a read-only open keeps a torn tail or a crashed GC pass's bytes
    /// there), a sealed segment to its end.
    fn scan_end(&self, n: u64) -> Option<u64> {
        if n == self.user {
            Some(self.user_end)
        } else {
            self.gc.filter(|&(g, _)| g == n).map(|(_, end)| end)
        }
    }
}

/// Rebuilds the keydirs of the unordered tables from every live segment:
/// from its hint file when there is a good one, else by scanning it (and
/// then writing the hint it lacked, if it is sealed). Returns the highest
/// sequence number found.
pub(super) fn rebuild_keydirs(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    vlog: &VLog,
    keydirs: &Keydirs,
    read_only: bool,
) -> Result<u64> {
    let readers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, MAX_READERS);
    rebuild_on(fs, dir, vlog, keydirs, read_only, readers)
}

/// [`rebuild_keydirs`] with `readers` threads reading segments (at most
/// one per segment, at least one).
fn rebuild_on(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    vlog: &VLog,
    keydirs: &Keydirs,
    read_only: bool,
    readers: usize,
) -> Result<u64> {
    let heads = Heads {
        user: vlog.head_position().segment,
        user_end: vlog.head_position().offset,
        gc: vlog.gc_head_position().map(|p| (p.segment, p.offset)),
    };
    let segments: Vec<Arc<Segment>> = vlog.live_set().values().cloned().collect();
    keydirs.reserve_for_open(
        segments
            .iter()
            .filter(|s| !heads.is_open(s.number))
            .filter_map(|s| hint::peek_count(fs, dir, s.number))
            .sum(),
    );
    let readers = readers.min(segments.len()).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut max_seq = 0;
    let (mut hinted, mut scanned) = (0u64, 0u64);
    let mut first_error: Option<(usize, Error)> = None;
    std::thread::scope(|scope| {
        // A reader hands over one segment at a time: at most `readers + 1`
        // segments' records are in memory at once.
        let (tx, rx) = mpsc::sync_channel::<(usize, Result<Found>)>(0);
        for _ in 0..readers {
            let tx = tx.clone();
            let (segments, heads, next, failed) = (&segments, &heads, &next, &failed);
            scope.spawn(move || {
                // After a failure no new segment is started; those started
                // finish, so the lowest failing one is always found.
                while !failed.load(Ordering::Acquire) {
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    let Some(seg) = segments.get(i) else { break };
                    let found = find(fs, dir, seg, heads, keydirs, read_only);
                    if found.is_err() {
                        failed.store(true, Ordering::Release);
                    }
                    if tx.send((i, found)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, found) in rx {
            let found = match found {
                Ok(f) => f,
                Err(e) => {
                    if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                        first_error = Some((i, e));
                    }
                    continue;
                }
            };
            if first_error.is_some() {
                continue;
            }
            let n = segments[i].number;
            max_seq = max_seq.max(found.max_seq());
            match found {
                Found::Hint(h) if heads.is_open(n) => {
                    hinted += 1;
                    let entries = h.to_entries();
                    keydirs.apply_found(n, &entries);
                    keydirs.reopen_segment(n, entries);
                }
                Found::Hint(h) => {
                    hinted += 1;
                    keydirs.apply_hint(n, &h);
                }
                Found::Scanned(entries) => {
                    scanned += 1;
                    keydirs.apply_found(n, &entries);
                    if heads.is_open(n) {
                        keydirs.reopen_segment(n, entries);
                    }
                }
            }
        }
    });
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    keydirs.fit_after_open();
    log::debug!(
        "{}: keydirs rebuilt: {} keys, {hinted} segments from hints, {scanned} scanned, \
         on {readers} threads",
        dir.display(),
        keydirs.len()
    );
    Ok(max_seq)
}

/// One segment's unordered records: from its hint when the hint is good
/// and describes the segment as it is, else by scanning it (then writing
/// the hint it lacked, for a sealed segment of a writable open).
fn find(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    seg: &Segment,
    heads: &Heads,
    keydirs: &Keydirs,
    read_only: bool,
) -> Result<Found> {
    let n = seg.number;
    let open = heads.is_open(n);
    let len = seg
        .file
        .len()
        .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
    match hint::read_raw(fs, dir, n) {
        Ok(Some(h)) if h.segment_len == len => return Ok(Found::Hint(h)),
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
        }
        Ok(None) => {}
        Err(e) => {
            log::warn!(
                "{}: hint not used, scanning the segment: {e}",
                seg.path.display()
            );
        }
    }
    let entries = hint::scan(seg, heads.scan_end(n), |t| keydirs.tracks(t))?;
    if !open && !read_only {
        if let Err(e) = hint::write(fs, dir, n, len, &entries) {
            log::warn!("{}: {e}", seg.path.display());
        }
    }
    Ok(Found::Scanned(entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, Options, TableOptions};

    /// An open on one thread and on several build the same keydirs (entries,
    /// garbage and smallest sequence number per segment, the heads' hint
    /// entries) and find the same highest sequence number, with segments
    /// from hints and by scans, overwrites, deletes and long keys.
    #[test]
    fn one_reader_and_several_build_the_same_keydirs() {
        let dir = tempfile::tempdir().unwrap();
        let opts = || {
            Options::default()
                .segment_size(32 << 10)
                .memtable_size(16 << 10)
                .background_gc(false)
        };
        {
            let db = Db::open(dir.path(), opts()).unwrap();
            let t = db.table("t", TableOptions::unordered()).unwrap();
            let u = db.table("u", TableOptions::unordered()).unwrap();
            for round in 0..3u32 {
                for i in 0..600u32 {
                    let key = if i % 50 == 0 {
                        format!("{i:0>2000}")
                    } else {
                        format!("k{i}")
                    };
                    match (i + round) % 5 {
                        0 => t.delete(&key).unwrap(),
                        1 => u.put(&key, [round as u8; 30]).unwrap(),
                        _ => t
                            .put(&key, vec![round as u8; 40 + i as usize % 100])
                            .unwrap(),
                    }
                }
            }
            db.close().unwrap();
        }
        // Half the hints gone: those segments are scanned.
        let mut hints: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "hint"))
            .collect();
        hints.sort();
        assert!(hints.len() >= 6, "{} hints", hints.len());
        for h in hints.iter().step_by(2) {
            std::fs::remove_file(h).unwrap();
        }
        let db = Db::open_read_only(dir.path(), opts()).unwrap();
        let e = db.engine();
        let mut states = Vec::new();
        for readers in [1, 2, 3, 8] {
            let k = e.keydirs.empty_like();
            let max_seq = rebuild_on(&e.fs, &e.dir, &e.vlog, &k, true, readers).unwrap();
            states.push((readers, max_seq, k.state()));
        }
        let (_, max_seq, want) = &states[0];
        assert!(*max_seq > 0);
        assert_eq!(&e.keydirs.state(), want, "the open's own keydirs");
        for (readers, m, s) in &states {
            assert_eq!(m, max_seq, "{readers} readers");
            assert_eq!(s, want, "{readers} readers");
        }
    }
}
