//! Merging cursors: one sorted view over several sources, newest source
//! first. A cursor goes one way only (forward or backward), which is all the
//! public iterators and compaction need and keeps the merge simple.

use super::ikey;
use super::iter::InternalIterator;
use crate::error::Result;
use std::cmp::Ordering;

/// Which way a [`MergeCursor`] moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Backward,
}

/// Merges sources given newest first. Going forward, equal internal keys come
/// newest source first; going backward, oldest source first, so that in both
/// directions the newest source is seen last among equals when scanning a
/// key's versions towards its newest (see the public iterator).
pub(crate) struct MergeCursor {
    children: Vec<Box<dyn InternalIterator>>,
    dir: Direction,
    current: Option<usize>,
}

impl MergeCursor {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>, dir: Direction) -> Self {
        MergeCursor {
            children,
            dir,
            current: None,
        }
    }

    /// Positions forward cursors at the first key `>= target` and backward
    /// cursors at the last key `<= target`.
    pub(crate) fn seek(&mut self, target: &[u8]) {
        for c in &mut self.children {
            match self.dir {
                Direction::Forward => c.seek(target),
                Direction::Backward => c.seek_for_prev(target),
            }
        }
        self.pick();
    }

    /// Positions at the first (forward) or last (backward) entry.
    pub(crate) fn seek_to_end(&mut self) {
        for c in &mut self.children {
            match self.dir {
                Direction::Forward => c.seek_to_first(),
                Direction::Backward => c.seek_to_last(),
            }
        }
        self.pick();
    }

    pub(crate) fn valid(&self) -> bool {
        self.current.is_some()
    }

    pub(crate) fn key(&self) -> &[u8] {
        match self.current {
            Some(i) => self.children[i].key(),
            None => &[],
        }
    }

    pub(crate) fn value(&self) -> &[u8] {
        match self.current {
            Some(i) => self.children[i].value(),
            None => &[],
        }
    }

    /// Moves one entry on in the cursor's direction.
    pub(crate) fn advance(&mut self) {
        if let Some(i) = self.current {
            match self.dir {
                Direction::Forward => self.children[i].next(),
                Direction::Backward => self.children[i].prev(),
            }
            self.pick();
        }
    }

    /// The first error any source met.
    pub(crate) fn status(&self) -> Result<()> {
        for c in &self.children {
            c.status()?;
        }
        Ok(())
    }

    fn pick(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let ord = ikey::compare(c.key(), self.children[b].key());
                    let better = match self.dir {
                        Direction::Forward => ord == Ordering::Less,
                        // Ties go to the later (older) source going backward.
                        Direction::Backward => ord != Ordering::Less,
                    };
                    if better {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        self.current = best;
    }
}
