//! The iterators' walk: a merged, snapshot-filtered, double-ended walk over
//! one table's index entries, resolving values from the vLog a window at a
//! time (WiscKey's range-query prefetch, without threads: the window's
//! values are read in one batch, and the window doubles while the walk goes
//! on). The public [`crate::Iter`] is a handle over a [`Scan`].

use super::versions::SuperVersion;
use super::Engine;
use crate::error::Result;
use crate::lsm::ikey::{self, Kind, MAX_SEQ};
use crate::lsm::iter::InternalIterator;
use crate::lsm::merge::{Direction, MergeCursor};
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
    front_buf: VecDeque<Result<(Vec<u8>, Value)>>,
    back_buf: VecDeque<Result<(Vec<u8>, Value)>>,
    front_window: usize,
    back_window: usize,
    /// Whether an end has gathered its last entry.
    front_done: bool,
    back_done: bool,
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
    ) -> Scan {
        let (sv, seq) = engine.view_at(seq);
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
        }
    }

    /// A walk that yields `err` once and then ends (both ways).
    pub(crate) fn failed(engine: Arc<Engine>, table: u32, err: crate::error::Error) -> Scan {
        let mut it = Scan::new(engine, table, Some(0), (Bound::Unbounded, Bound::Unbounded));
        it.front_buf.push_back(Err(err));
        it.front_done = true;
        it.back_done = true;
        it
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
        self.sv.version.iters(&mut children);
        let mut c = MergeCursor::new(children, dir);
        match dir {
            Direction::Forward => match &self.b.lower {
                Bound::Included(k) => c.seek(&ikey::seek_key(&self.user_part(k), MAX_SEQ)),
                Bound::Excluded(k) => c.seek(&ikey::encode(self.b.table, k, 0, Kind::Delete as u8)),
                Bound::Unbounded => {
                    c.seek(&ikey::seek_key(&ikey::table_prefix(self.b.table), MAX_SEQ))
                }
            },
            Direction::Backward => match &self.b.upper {
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
            if same_as_last || ikey::seq(&k) > self.b.seq || !self.b.above_lower(ikey::user_key(&k))
            {
                c.advance();
                continue;
            }
            let v = c.value().to_vec();
            c.advance();
            self.front_key = Some(up);
            if ikey::kind_byte(&k) == Kind::Delete as u8 {
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
            let in_range = self.b.below_upper(ikey::user_key(&k0));
            self.back_key = Some(up);
            let Some((k, v)) = best else { continue };
            if !in_range || ikey::kind_byte(&k) == Kind::Delete as u8 {
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
        let mut out: Vec<Result<(Vec<u8>, Value)>> = Vec::with_capacity(raw.len() + 1);
        let mut reqs: Vec<(ValuePointer, u32, &[u8])> = Vec::new();
        let mut slots: Vec<usize> = Vec::new();
        for (k, v) in &raw {
            if ikey::kind_byte(k) == Kind::Pointer as u8 {
                match self.engine.decode_pointer(v) {
                    Ok(p) => {
                        slots.push(out.len());
                        reqs.push((p, ikey::table_id(k), ikey::user_key(k)));
                        out.push(Ok((ikey::user_key(k).to_vec(), Value::default())));
                    }
                    Err(e) => out.push(Err(e)),
                }
            } else {
                out.push(
                    self.engine
                        .resolve(&self.sv.segments, k, v.clone())
                        .map(|val| (ikey::user_key(k).to_vec(), val.unwrap_or_default())),
                );
            }
        }
        if !reqs.is_empty() {
            let values = self.engine.read_values(&self.sv.segments, &reqs);
            for (slot, v) in slots.into_iter().zip(values) {
                out[slot] = match (
                    std::mem::replace(&mut out[slot], Ok((Vec::new(), Value::default()))),
                    v,
                ) {
                    (Ok((k, _)), Ok(v)) => Ok((k, v)),
                    (_, Err(e)) | (Err(e), _) => Err(e),
                };
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
    /// The next pair from the front.
    pub(crate) fn next_front(&mut self) -> Option<Result<(Vec<u8>, Value)>> {
        loop {
            if let Some(r) = self.front_buf.pop_front() {
                return Some(r);
            }
            if self.front_done {
                // What the other end gathered but has not handed out yet.
                return self.back_buf.pop_back();
            }
            self.refill(true);
        }
    }

    /// The next pair from the back.
    pub(crate) fn next_back(&mut self) -> Option<Result<(Vec<u8>, Value)>> {
        loop {
            if let Some(r) = self.back_buf.pop_front() {
                return Some(r);
            }
            if self.back_done {
                return self.front_buf.pop_back();
            }
            self.refill(false);
        }
    }
}
