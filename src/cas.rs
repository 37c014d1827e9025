//! Atomic read-modify-write on one key: [`Table::compare_and_swap`] and
//! [`Table::fetch_update`] (and the default table's, on [`Db`]).
//!
//! The engine checks the condition in the commit order itself (see
//! `engine/cas.rs`), so these are linearizable against every other writer
//! of the key, conditional or not, on ordered and unordered tables alike.

use crate::batch::WriteBatch;
use crate::db::Db;
use crate::engine::{applied, Condition};
use crate::error::Result;
use crate::table::Table;
use crate::value::Value;

/// Why [`Table::compare_and_swap`] wrote nothing: the key's value was not
/// the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareAndSwapError {
    /// The value the key had when the swap was tried (`None`: no value).
    pub current: Option<Value>,
    /// The value that was not written (`None`: the delete that was not done).
    pub proposed: Option<Vec<u8>>,
}

impl std::fmt::Display for CompareAndSwapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "compare-and-swap failed: the key's value was not the expected one"
        )
    }
}

impl std::error::Error for CompareAndSwapError {}

impl Table {
    /// Sets `key` to `new` (`None`: deletes it) only if its value is now
    /// `expected` (`None`: the key has no value), as one atomic step: no
    /// other write of the key can land between the check and the write.
    /// The outer `Result` is the engine's; the inner one says whether the
    /// swap happened, and if not, what the value was.
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.default_table();
    /// // Create only if absent.
    /// assert!(t.compare_and_swap(b"k", None, Some(b"1".as_slice()))?.is_ok());
    /// let lost = t.compare_and_swap(b"k", None, Some(b"2".as_slice()))?.unwrap_err();
    /// assert_eq!(lost.current.as_deref(), Some(&b"1"[..]));
    /// // Swap from a known value, then delete.
    /// assert!(t.compare_and_swap(b"k", Some(b"1".as_slice()), Some(b"3".as_slice()))?.is_ok());
    /// assert!(t.compare_and_swap(b"k", Some(b"3".as_slice()), None)?.is_ok());
    /// assert!(t.get(b"k")?.is_none());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::put`] and [`Table::get`] (the check is a point read).
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<std::result::Result<(), CompareAndSwapError>> {
        let key = key.as_ref();
        let mut b = WriteBatch::new();
        match new {
            Some(v) => b.put_in(self, key, v),
            None => b.delete_in(self, key),
        };
        let cond = Condition {
            table: self.id(),
            key: key.to_vec(),
            expected: expected.map(<[u8]>::to_vec),
        };
        let r = self
            .db()
            .engine()
            .write_if(b.into_records(), false, Some(cond));
        Ok(applied(r)?.map_err(|current| CompareAndSwapError {
            current,
            proposed: new.map(<[u8]>::to_vec),
        }))
    }

    /// Replaces `key`'s value with `f(current)` atomically (`f` returning
    /// `None` deletes the key), retrying with the newer value when another
    /// writer got there first; returns the value `f` replaced. `f` may be
    /// called more than once, so it should have no side effects beyond its
    /// result.
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let t = db.default_table();
    /// let incr = |old: Option<&[u8]>| {
    ///     let n = old.map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    ///     Some((n + 1).to_le_bytes().to_vec())
    /// };
    /// assert!(t.fetch_update(b"hits", incr)?.is_none());
    /// let before = t.fetch_update(b"hits", incr)?.unwrap();
    /// assert_eq!(before.as_ref(), 1u64.to_le_bytes());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::compare_and_swap`].
    pub fn fetch_update<F>(&self, key: impl AsRef<[u8]>, mut f: F) -> Result<Option<Value>>
    where
        F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    {
        let key = key.as_ref();
        let mut current = self.get(key)?;
        loop {
            let new = f(current.as_deref());
            match self.compare_and_swap(key, current.as_deref(), new.as_deref())? {
                Ok(()) => return Ok(current),
                Err(e) => current = e.current,
            }
        }
    }
}

impl Db {
    /// [`Table::compare_and_swap`] on the default table.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<std::result::Result<(), CompareAndSwapError>> {
        self.default_table().compare_and_swap(key, expected, new)
    }

    /// [`Table::fetch_update`] on the default table.
    pub fn fetch_update<F>(&self, key: impl AsRef<[u8]>, f: F) -> Result<Option<Value>>
    where
        F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    {
        self.default_table().fetch_update(key, f)
    }
}
