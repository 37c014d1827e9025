//! The walks behind the public iterators: an ordered table's merged walk
//! ([`Scan`]), or an unordered table's walk over a copy of its keydir
//! ([`UnorderedScan`]: no order, values read a window at a time in one
//! batch), and the value of an item that was handed out without it.

use super::scan::{Fetch, Item, Scan, Slot};
use super::Engine;
use crate::error::{Error, Result};
use crate::value::Value;
use crate::vlog::{SegmentSet, ValuePointer};
use std::collections::VecDeque;
use std::sync::Arc;

/// One walk of either kind.
pub(crate) enum Walk {
    Sorted(Box<Scan>),
    Unordered(UnorderedScan),
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Walk::Sorted(s) => s.fmt(f),
            Walk::Unordered(u) => f
                .debug_struct("UnorderedScan")
                .field("table", &u.table)
                .field("left", &u.left.len())
                .finish(),
        }
    }
}

impl Walk {
    pub(crate) fn next_front(&mut self) -> Option<Item> {
        match self {
            Walk::Sorted(s) => s.next_front(),
            Walk::Unordered(u) => u.next(true),
        }
    }

    pub(crate) fn next_back(&mut self) -> Option<Item> {
        match self {
            Walk::Sorted(s) => s.next_back(),
            Walk::Unordered(u) => u.next(false),
        }
    }

    /// Moves the front end to `key`; an unordered walk has no key order, so
    /// it yields one `Unsupported` error instead.
    pub(crate) fn seek(&mut self, key: &[u8]) {
        match self {
            Walk::Sorted(s) => s.seek(key),
            Walk::Unordered(u) => u.fail_seek(),
        }
    }

    /// Moves the back end to `key` (see [`Walk::seek`]).
    pub(crate) fn seek_back(&mut self, key: &[u8]) {
        match self {
            Walk::Sorted(s) => s.seek_back(key),
            Walk::Unordered(u) => u.fail_seek(),
        }
    }

    /// The value of an item the walk handed out as a pointer.
    pub(crate) fn lazy(&self, key: &[u8], slot: Slot) -> LazyValue {
        match slot {
            Slot::Value(v) => LazyValue::Ready(v),
            Slot::InLog(ptr) => {
                let (engine, segments, table) = match self {
                    Walk::Sorted(s) => {
                        let (e, sv) = s.source();
                        (e.clone(), sv.segments.clone(), s.table())
                    }
                    Walk::Unordered(u) => (u.engine.clone(), u.segments.clone(), u.table),
                };
                LazyValue::InLog {
                    ptr,
                    table,
                    engine,
                    segments,
                    key_len: key.len(),
                }
            }
        }
    }
}

/// A value not read yet, with what reading it takes.
pub(crate) enum LazyValue {
    Ready(Value),
    InLog {
        ptr: ValuePointer,
        table: u32,
        key_len: usize,
        engine: Arc<Engine>,
        segments: Arc<SegmentSet>,
    },
}

impl LazyValue {
    /// The value's length, without reading it.
    pub(crate) fn len(&self) -> u32 {
        match self {
            LazyValue::Ready(v) => v.len() as u32,
            LazyValue::InLog { ptr, key_len, .. } => ptr.value_len(*key_len),
        }
    }

    /// The value: one vLog read (checksum and key checked) when it is there.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Value> {
        match self {
            LazyValue::Ready(v) => Ok(v.clone()),
            LazyValue::InLog {
                ptr,
                table,
                engine,
                segments,
                ..
            } => engine
                .read_values(segments, &[(*ptr, *table, key)], true)
                .pop()
                .unwrap_or_else(|| Err(Error::InvalidArgument("no value read".into()))),
        }
    }

    /// The value, read when it is in the vLog.
    pub(crate) fn into_value(self, key: &[u8]) -> Result<Value> {
        match self {
            LazyValue::Ready(v) => Ok(v),
            other => other.get(key),
        }
    }
}

/// A walk over an unordered table: a copy of its keydir's live entries
/// taken under one hold (with the segment set they are read through), handed
/// out from either end, the values of a window read in one batch.
pub(crate) struct UnorderedScan {
    engine: Arc<Engine>,
    segments: Arc<SegmentSet>,
    table: u32,
    left: VecDeque<(Vec<u8>, ValuePointer)>,
    front_buf: VecDeque<Item>,
    back_buf: VecDeque<Item>,
    fetch: Fetch,
    window: usize,
    /// Whether vLog records' checksums are checked.
    verify: bool,
}

/// The values one window of an unordered walk reads in one batch.
const WINDOW: usize = 64;

impl UnorderedScan {
    /// A walk over unordered table `table` as its keydir is now (or as a
    /// snapshot at `seq` sees it); `None` when `table` is not unordered.
    pub(crate) fn new(
        engine: Arc<Engine>,
        table: u32,
        seq: Option<u64>,
        fetch: Fetch,
    ) -> Option<UnorderedScan> {
        let kd = engine.keydirs.table(table)?;
        let segs = || engine.versions.current().segments.clone();
        let (live, segments) = match seq {
            None => engine.keydirs.live_entries(&kd, segs),
            Some(s) => engine.keydirs.live_entries_at(&kd, s, segs),
        };
        Some(UnorderedScan {
            engine,
            segments,
            table,
            left: live.into(),
            front_buf: VecDeque::new(),
            back_buf: VecDeque::new(),
            fetch,
            window: WINDOW,
            verify: true,
        })
    }

    /// The walk, checking vLog records' checksums only when `verify`.
    pub(crate) fn with_verify(mut self, verify: bool) -> UnorderedScan {
        self.verify = verify;
        self
    }

    fn next(&mut self, front: bool) -> Option<Item> {
        loop {
            let buf = if front {
                &mut self.front_buf
            } else {
                &mut self.back_buf
            };
            if let Some(r) = buf.pop_front() {
                return Some(r);
            }
            if self.left.is_empty() {
                let other = if front {
                    &mut self.back_buf
                } else {
                    &mut self.front_buf
                };
                return other.pop_back();
            }
            self.refill(front);
        }
    }

    fn refill(&mut self, front: bool) {
        let n = self.window.min(self.left.len());
        let taken: Vec<(Vec<u8>, ValuePointer)> = if front {
            self.left.drain(..n).collect()
        } else {
            let at = self.left.len() - n;
            self.left.drain(at..).rev().collect()
        };
        let items: Vec<Item> = if self.fetch == Fetch::Lazy {
            taken
                .into_iter()
                .map(|(k, p)| Ok((k, Slot::InLog(p))))
                .collect()
        } else {
            let reqs: Vec<(ValuePointer, u32, &[u8])> = taken
                .iter()
                .map(|(k, p)| (*p, self.table, k.as_slice()))
                .collect();
            let values = self.engine.read_values(&self.segments, &reqs, self.verify);
            taken
                .iter()
                .zip(values)
                .map(|((k, _), v)| v.map(|v| (k.clone(), Slot::Value(v))))
                .collect()
        };
        let failed = items.iter().any(|r| r.is_err());
        let buf = if front {
            &mut self.front_buf
        } else {
            &mut self.back_buf
        };
        for r in items {
            let err = r.is_err();
            buf.push_back(r);
            if err {
                break;
            }
        }
        if failed {
            // An error ends the walk after the entries before it.
            self.left.clear();
        }
    }

    fn fail_seek(&mut self) {
        self.left.clear();
        self.back_buf.clear();
        self.front_buf.clear();
        self.front_buf.push_back(Err(Error::Unsupported(format!(
            "a seek on an iterator over the unordered table {}: it has no key order",
            self.table
        ))));
    }
}
