//! Conditional writes: a batch applied only if one key still has the value
//! the writer saw, for `compare_and_swap` and `fetch_update`.
//!
//! The group-commit leader checks the condition while it holds the commit
//! lock, after committing the batches queued before it in the same group,
//! so the check and the write are one step in the commit order: no other
//! write can land between them (linearizable against every writer of the
//! key, conditional or not). The check is a point read, so a conditional
//! write costs the writers queued behind it that read (one vLog read at
//! most).

use super::Engine;
use crate::error::Result;
use crate::value::Value;

/// What a conditional batch requires: `(table, key)` has the value
/// `expected` (`None`: has none).
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) table: u32,
    pub(crate) key: Vec<u8>,
    pub(crate) expected: Option<Vec<u8>>,
}

/// What became of a batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    Applied,
    /// Its condition did not hold: nothing was written; the key's value at
    /// the check.
    NotApplied(Option<Value>),
}

impl Engine {
    /// Whether `cond` holds now (the leader calls it under the commit lock,
    /// with every earlier batch visible). When it does not, or the read
    /// fails, the writer's outcome is set here and its batch is dropped.
    pub(super) fn condition_holds(&self, w: &super::write::PendingWrite, cond: &Condition) -> bool {
        match self.get(cond.table, &cond.key, None) {
            Ok(current) if current.as_deref() == cond.expected.as_deref() => true,
            Ok(current) => {
                w.decide(Ok(Outcome::NotApplied(current)));
                false
            }
            Err(e) => {
                w.decide(Err(e));
                false
            }
        }
    }
}

/// The outcome as a [`Result`], for callers that only want to know.
pub(crate) fn applied(o: Result<Outcome>) -> Result<std::result::Result<(), Option<Value>>> {
    o.map(|o| match o {
        Outcome::Applied => Ok(()),
        Outcome::NotApplied(v) => Err(v),
    })
}
