//! The iterators' walk: a merged, snapshot-filtered, double-ended walk over
//! one table's index entries, resolving values from the vLog a window at a
//! time (WiscKey's range-query prefetch, without threads: the window's
//! values are read in one batch, and the window doubles while the walk goes
//! on). The public [`crate::Iter`] is a handle over a [`Scan`]; the
//! key-only and lazy iterators ([`crate::Keys`], [`crate::Entries`]) walk
//! the same way with [`Fetch::Lazy`], which reads nothing from the vLog.

use super::versions::SuperVersion;
use super::Engine;
use crate::error::Result;
use crate::lsm::ikey::{self, Kind, MAX_SEQ};
use crate::lsm::iter::InternalIterator;
use crate::lsm::merge::{Direction, MergeCursor};
use crate::lsm::range_del::{self, RangeTombstone};
use crate::lsm::sstable::CacheUse;
use crate::value::Value;
use crate::vlog::ValuePointer;
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

/// The table, sequence number and key bounds of an iterator.
struct Bounds {
    table: u32,
    seq: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
}

impl Bounds {
    fn in_table(&self, ik: &[u8]) -> bool {
        ikey::in_table(ik, self.table)
    }

    fn below_upper(&self, key: &[u8]) -> bool {
        match &self.upper {
            Bound::Included(u) => key <= u.as_slice(),
            Bound::Excluded(u) => key < u.as_slice(),
            Bound::Unbounded => true,
        }
    }

    fn above_lower(&self, key: &[u8]) -> bool {
        match &self.lower {
            Bound::Included(l) => key >= l.as_slice(),
            Bound::Excluded(l) => key > l.as_slice(),
            Bound::Unbounded => true,
        }
    }
}

/// What a walk does with the values of the entries it gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Reads every window's vLog values in one batch.
    Values,
    /// Reads no vLog value: inline values are handed out, pointers are
    /// handed out as they are (for key-only walks and lazy entries).
    Lazy,
}

/// A gathered entry's value: the value itself, or (from a lazy walk) where
/// it is in the vLog.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Value(Value),
    InLog(ValuePointer),
}

/// One item a walk hands out: the user key and its value or pointer.
pub(crate) type Item = Result<(Vec<u8>, Slot)>;

/// A walk over `(key, value)` pairs of one table in ascending key order, at
/// one sequence number, from either end.
pub(crate) struct Scan {
    engine: Arc<Engine>,
    sv: Arc<SuperVersion>,
    b: Bounds,
    front: Option<MergeCursor>,
    back: Option<MergeCursor>,
    /// The last user part gathered at each end.
    front_key: Option<Vec<u8>>,
    back_key: Option<Vec<u8>>,
    /// Entries gathered and resolved, in each end's order.
    front_buf: VecDeque<Item>,
    back_buf: VecDeque<Item>,
    front_window: usize,
    back_window: usize,
    /// Whether an end has gathered its last entry.
    front_done: bool,
    back_done: bool,
    fetch: Fetch,
    /// Where a `seek` put each end: items the other end gathered beyond it
    /// are skipped when the ends meet.
    front_from: Option<Vec<u8>>,
    back_from: Option<Vec<u8>>,
    /// Whether the walk ended in an error: a seek does not start it again.
    errored: bool,
    /// How the walk reads data blocks (`ReadOptions::fill_cache`).
    cache: CacheUse,
    /// Whether vLog records' checksums are checked
    /// (`ReadOptions::verify_checksums`).
    verify: bool,
    /// The range tombstones of the table the walk sees.
    range_dels: Vec<RangeTombstone>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("table", &self.b.table)
            .field("seq", &self.b.seq)
            .finish()
    }
}

impl Scan {
    /// A walk over `table` within the bounds, at sequence number `seq` (a
    /// snapshot's) or the newest (`None`; see [`Engine::view_at`]).
    pub(crate) fn new(
        engine: Arc<Engine>,
        table: u32,
        seq: Option<u64>,
        (lower, upper): (Bound<Vec<u8>>, Bound<Vec<u8>>),
        fetch: Fetch,
    ) -> Scan {
        let (sv, seq) = engine.view_at(seq);
        let range_dels = sv.range_dels_for(table, seq);
        Scan {
            engine,
            sv,
            b: Bounds {
                table,
                seq,
                lower,
                upper,
            },
            front: None,
            back: None,
            front_key: None,
            back_key: None,
            front_buf: VecDeque::new(),
            back_buf: VecDeque::new(),
            front_window: FIRST_WINDOW,
            back_window: FIRST_WINDOW,
            front_done: false,
            back_done: false,
            fetch,
            front_from: None,
            back_from: None,
            errored: false,
            cache: CacheUse::Fill,
            verify: true,
            range_dels,
        }
    }

    /// The walk, reading as `how` says (the block cache, checksums).
    pub(crate) fn with_how(mut self, how: super::ReadHow) -> Scan {
        self.cache = how.cache_use();
        self.verify = how.verify_checksums;
        self
    }

    /// A walk that yields `err` once and then ends (both ways).
    pub(crate) fn failed(engine: Arc<Engine>, table: u32, err: crate::error::Error) -> Scan {
        let mut it = Scan::new(
            engine,
            table,
            Some(0),
            (Bound::Unbounded, Bound::Unbounded),
            Fetch::Lazy,
        );
        it.front_buf.push_back(Err(err));
        it.front_done = true;
        it.back_done = true;
        it.errored = true;
        it
    }

    /// Whether a range tombstone the walk sees deletes the version `k`.
    fn deleted_by_range(&self, k: &[u8]) -> bool {
        !self.range_dels.is_empty()
            && range_del::covering(
                [self.range_dels.as_slice()],
                self.b.table,
                ikey::user_key(k),
                ikey::seq(k),
                self.b.seq,
            )
            .is_some()
    }

    fn user_part(&self, key: &[u8]) -> Vec<u8> {
        ikey::user_part_of(self.b.table, key)
    }

    fn cursor(&self, dir: Direction) -> MergeCursor {
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        children.push(Box::new(self.sv.mem.table.iter()));
        for m in &self.sv.imms {
            children.push(Box::new(m.table.iter()));
        }
        self.sv.version.iters_with(&mut children, self.cache);
        let mut c = MergeCursor::new(children, dir);
        let lower = self.front_start();
        let upper = self.back_start();
        match dir {
            Direction::Forward => match &lower {
                Bound::Included(k) => c.seek(&ikey::seek_key(&self.user_part(k), MAX_SEQ)),
                Bound::Excluded(k) => c.seek(&ikey::encode(self.b.table, k, 0, Kind::Delete as u8)),
                Bound::Unbounded => {
                    c.seek(&ikey::seek_key(&ikey::table_prefix(self.b.table), MAX_SEQ))
                }
            },
            Direction::Backward => match &upper {
                Bound::Included(k) => c.seek(&ikey::encode(self.b.table, k, 0, Kind::Delete as u8)),
                Bound::Excluded(k) => c.seek(&ikey::seek_key(&self.user_part(k), MAX_SEQ)),
                Bound::Unbounded => match self.b.table.checked_add(1) {
                    Some(next) => c.seek(&ikey::seek_key(&ikey::table_prefix(next), MAX_SEQ)),
                    None => c.seek_to_end(),
                },
            },
        }
        c
    }

    /// The next visible, live entry going forward (internal key, index
    /// value), or `None` at the end of this direction.
    fn gather_front(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.front.is_none() {
            self.front = Some(self.cursor(Direction::Forward));
        }
        loop {
            let c = self.front.as_mut()?;
            if let Err(e) = c.status() {
                return Some(Err(e));
            }
            if !c.valid() {
                return None;
            }
            let k = c.key().to_vec();
            if !self.b.in_table(&k) || !self.b.below_upper(ikey::user_key(&k)) {
                return None;
            }
            let up = ikey::user_part(&k).to_vec();
            if self.back_key.as_ref().is_some_and(|b| up >= *b) {
                return None;
            }
            let same_as_last = self.front_key.as_deref() == Some(up.as_slice());
            if same_as_last
                || ikey::seq(&k) > self.b.seq
                || !self.b.above_lower(ikey::user_key(&k))
                || !at_or_after(&self.front_from, ikey::user_key(&k))
            {
                c.advance();
                continue;
            }
            let v = c.value().to_vec();
            c.advance();
            self.front_key = Some(up);
            if ikey::kind_byte(&k) == Kind::Delete as u8 || self.deleted_by_range(&k) {
                continue;
            }
            return Some(Ok((k, v)));
        }
    }

    /// The next visible, live entry going backward.
    fn gather_back(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.back.is_none() {
            self.back = Some(self.cursor(Direction::Backward));
        }
        loop {
            let c = self.back.as_mut()?;
            if let Err(e) = c.status() {
                return Some(Err(e));
            }
            if !c.valid() {
                return None;
            }
            let k0 = c.key().to_vec();
            if !self.b.in_table(&k0) || !self.b.above_lower(ikey::user_key(&k0)) {
                return None;
            }
            let up = ikey::user_part(&k0).to_vec();
            if self.front_key.as_ref().is_some_and(|f| up <= *f) {
                return None;
            }
            // Going backward a key's versions come oldest first: keep the
            // newest one visible at the snapshot.
            let mut best: Option<(Vec<u8>, Vec<u8>)> = None;
            while c.valid() && ikey::user_part(c.key()) == up.as_slice() {
                if ikey::seq(c.key()) <= self.b.seq {
                    best = Some((c.key().to_vec(), c.value().to_vec()));
                }
                c.advance();
            }
            if let Err(e) = c.status() {
                return Some(Err(e));
            }
            let in_range = self.b.below_upper(ikey::user_key(&k0))
                && self.before_back_from(ikey::user_key(&k0));
            self.back_key = Some(up);
            let Some((k, v)) = best else { continue };
            if !in_range || ikey::kind_byte(&k) == Kind::Delete as u8 || self.deleted_by_range(&k) {
                continue;
            }
            return Some(Ok((k, v)));
        }
    }

    /// Gathers the next window of entries from one end and reads their vLog
    /// values in one batch (WiscKey's range-query prefetch, without
    /// threads); the window doubles while the walk goes on.
    fn refill(&mut self, forward: bool) {
        let window = if forward {
            self.front_window
        } else {
            self.back_window
        };
        let mut raw: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(window);
        let mut tail_error = None;
        while raw.len() < window {
            let next = if forward {
                self.gather_front()
            } else {
                self.gather_back()
            };
            match next {
                Some(Ok(e)) => raw.push(e),
                Some(Err(e)) => {
                    tail_error = Some(e);
                    break;
                }
                None => {
                    if forward {
                        self.front_done = true;
                    } else {
                        self.back_done = true;
                    }
                    break;
                }
            }
        }
        let mut out: Vec<Item> = Vec::with_capacity(raw.len() + 1);
        let mut reqs: Vec<(ValuePointer, u32, &[u8])> = Vec::new();
        let mut slots: Vec<usize> = Vec::new();
        for (k, v) in &raw {
            let key = ikey::user_key(k).to_vec();
            if ikey::kind_byte(k) == Kind::Pointer as u8 {
                match self.engine.decode_pointer(v) {
                    Ok(p) if self.fetch == Fetch::Lazy => out.push(Ok((key, Slot::InLog(p)))),
                    Ok(p) => {
                        slots.push(out.len());
                        reqs.push((p, ikey::table_id(k), ikey::user_key(k)));
                        out.push(Ok((key, Slot::InLog(p))));
                    }
                    Err(e) => out.push(Err(e)),
                }
            } else {
                out.push(
                    self.engine
                        .resolve(&self.sv.segments, k, v.clone(), self.verify)
                        .map(|val| (key, Slot::Value(val.unwrap_or_default()))),
                );
            }
        }
        if !reqs.is_empty() {
            let values = self
                .engine
                .read_values(&self.sv.segments, &reqs, self.verify);
            for (slot, v) in slots.into_iter().zip(values) {
                let item = &mut out[slot];
                match (item.as_mut(), v) {
                    (Ok((_, s)), Ok(v)) => *s = Slot::Value(v),
                    (_, Err(e)) => *item = Err(e),
                    (Err(_), _) => {}
                }
            }
        }
        if let Some(e) = tail_error {
            out.push(Err(e));
        }
        // An error ends the walk after the entries before it.
        if let Some(i) = out.iter().position(|r| r.is_err()) {
            out.truncate(i + 1);
            self.front_done = true;
            self.back_done = true;
            self.errored = true;
        }
        let buf = if forward {
            &mut self.front_buf
        } else {
            &mut self.back_buf
        };
        buf.extend(out);
        if forward {
            self.front_window = (self.front_window * 2).min(MAX_WINDOW);
        } else {
            self.back_window = (self.back_window * 2).min(MAX_WINDOW);
        }
    }
}

/// Values the first refill of an iterator reads in one batch.
const FIRST_WINDOW: usize = 4;
/// The most values one refill reads in one batch.
const MAX_WINDOW: usize = 256;

impl Scan {
    /// The next item from the front.
    pub(crate) fn next_front(&mut self) -> Option<Item> {
        loop {
            if let Some(r) = self.front_buf.pop_front() {
                return Some(r);
            }
            if self.front_done {
                // What the other end gathered but has not handed out yet,
                // from where a seek put this end.
                while let Some(r) = self.back_buf.pop_back() {
                    match &r {
                        Ok((k, _)) if !self.after_front_from(k) => continue,
                        _ => return Some(r),
                    }
                }
                return None;
            }
            self.refill(true);
        }
    }

    /// The next item from the back.
    pub(crate) fn next_back(&mut self) -> Option<Item> {
        loop {
            if let Some(r) = self.back_buf.pop_front() {
                return Some(r);
            }
            if self.back_done {
                while let Some(r) = self.front_buf.pop_back() {
                    match &r {
                        Ok((k, _)) if !self.before_back_from(k) => continue,
                        _ => return Some(r),
                    }
                }
                return None;
            }
            self.refill(false);
        }
    }

    /// Moves the front end to the first key at or after `key` (within the
    /// iterator's bounds), forward or back from where it was. The back end
    /// stays where it is; the two still never cross.
    pub(crate) fn seek(&mut self, key: &[u8]) {
        if self.is_failed() {
            return;
        }
        self.front_from = Some(key.to_vec());
        self.front = None;
        self.front_key = None;
        self.front_buf.clear();
        self.front_window = FIRST_WINDOW;
        self.front_done = false;
    }

    /// Moves the back end to the last key at or before `key` (within the
    /// iterator's bounds); the front end stays where it is.
    pub(crate) fn seek_back(&mut self, key: &[u8]) {
        if self.is_failed() {
            return;
        }
        self.back_from = Some(key.to_vec());
        self.back = None;
        self.back_key = None;
        self.back_buf.clear();
        self.back_window = FIRST_WINDOW;
        self.back_done = false;
    }

    fn is_failed(&self) -> bool {
        self.errored
    }

    fn after_front_from(&self, key: &[u8]) -> bool {
        at_or_after(&self.front_from, key)
    }

    fn before_back_from(&self, key: &[u8]) -> bool {
        self.back_from.as_deref().is_none_or(|b| key <= b)
    }

    /// Where the front end starts: the lower bound, or a seek's key when
    /// that is further in.
    fn front_start(&self) -> Bound<Vec<u8>> {
        match &self.front_from {
            Some(f) if self.b.above_lower(f) => Bound::Included(f.clone()),
            _ => self.b.lower.clone(),
        }
    }

    /// Where the back end starts: the upper bound, or a seek's key when
    /// that is further in.
    fn back_start(&self) -> Bound<Vec<u8>> {
        match &self.back_from {
            Some(b) if self.b.below_upper(b) => Bound::Included(b.clone()),
            _ => self.b.upper.clone(),
        }
    }

    /// The engine and the view this walk reads through (for lazy entries).
    pub(super) fn source(&self) -> (&Arc<Engine>, &Arc<SuperVersion>) {
        (&self.engine, &self.sv)
    }

    /// The table this walk is over.
    pub(crate) fn table(&self) -> u32 {
        self.b.table
    }
}

/// Whether `key` is at or after a seek's key (any key is, with no seek).
fn at_or_after(from: &Option<Vec<u8>>, key: &[u8]) -> bool {
    from.as_deref().is_none_or(|f| key >= f)
}
