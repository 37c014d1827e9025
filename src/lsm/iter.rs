//! The cursor that every sorted source implements (memtable, SSTable block,
//! SSTable, merged view), in the manner of LevelDB's `Iterator`.

use crate::error::Result;

/// A cursor over internal keys in [`crate::lsm::ikey::compare`] order.
///
/// A cursor that meets damaged bytes becomes invalid and reports the error
/// through [`InternalIterator::status`]; it never panics.
pub(crate) trait InternalIterator: Send {
    /// Whether the cursor is on an entry.
    fn valid(&self) -> bool;
    /// Moves to the first entry.
    fn seek_to_first(&mut self);
    /// Moves to the last entry.
    fn seek_to_last(&mut self);
    /// Moves to the first entry whose key is `>= target`.
    fn seek(&mut self, target: &[u8]);
    /// Moves to the last entry whose key is `<= target`.
    fn seek_for_prev(&mut self, target: &[u8]);
    /// Moves to the next entry. Requires `valid()`.
    fn next(&mut self);
    /// Moves to the previous entry. Requires `valid()`.
    fn prev(&mut self);
    /// The current internal key. Requires `valid()`.
    fn key(&self) -> &[u8];
    /// The current value. Requires `valid()`.
    fn value(&self) -> &[u8];
    /// The first error met, if any.
    fn status(&self) -> Result<()>;
}
