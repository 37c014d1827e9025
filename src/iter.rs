//! The public iterators and the key ranges they take: [`Iter`] (keys and
//! values, the values of a window read in one batch), [`Keys`] (keys only:
//! no vLog read at all) and [`Entries`] (guards whose value is read only
//! when asked for). The walk itself (merging, snapshot filtering, value
//! prefetch) is the engine's.

use crate::engine::{LazyValue, Slot, Walk};
use crate::error::Result;
use crate::value::Value;
use std::ops::{Bound, Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

/// A range of keys: `a..b`, `a..=b`, `a..`, `..b`, `..=b`, `..`, or a pair of
/// [`Bound`]s, over anything that is `AsRef<[u8]>`.
pub trait KeyRange {
    /// The range as owned bounds.
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>);
}

fn owned<K: AsRef<[u8]>>(b: Bound<K>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl<K: AsRef<[u8]>> KeyRange for Range<K> {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (
            Bound::Included(self.start.as_ref().to_vec()),
            Bound::Excluded(self.end.as_ref().to_vec()),
        )
    }
}
impl<K: AsRef<[u8]>> KeyRange for RangeInclusive<K> {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let (s, e) = self.into_inner();
        (
            Bound::Included(s.as_ref().to_vec()),
            Bound::Included(e.as_ref().to_vec()),
        )
    }
}
impl<K: AsRef<[u8]>> KeyRange for RangeFrom<K> {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (
            Bound::Included(self.start.as_ref().to_vec()),
            Bound::Unbounded,
        )
    }
}
impl<K: AsRef<[u8]>> KeyRange for RangeTo<K> {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (
            Bound::Unbounded,
            Bound::Excluded(self.end.as_ref().to_vec()),
        )
    }
}
impl<K: AsRef<[u8]>> KeyRange for RangeToInclusive<K> {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (
            Bound::Unbounded,
            Bound::Included(self.end.as_ref().to_vec()),
        )
    }
}
impl KeyRange for RangeFull {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (Bound::Unbounded, Bound::Unbounded)
    }
}
impl<K: AsRef<[u8]>> KeyRange for (Bound<K>, Bound<K>) {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (owned(self.0), owned(self.1))
    }
}

/// The bounds of all keys starting with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut end = prefix.to_vec();
    while let Some(&last) = end.last() {
        if last == 0xff {
            end.pop();
        } else {
            let n = end.len();
            end[n - 1] += 1;
            return (Bound::Included(prefix.to_vec()), Bound::Excluded(end));
        }
    }
    (Bound::Included(prefix.to_vec()), Bound::Unbounded)
}

/// Iterates `(key, value)` pairs of one table in ascending key order, at one
/// sequence number; also double-ended (`.rev()`, or `next_back` mixed with
/// `next`). Items are `Result`s: a damaged file ends the walk with an error.
///
/// ```
/// use wisckey::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// for k in [b"a", b"b", b"c"] {
///     db.put(k, b"v")?;
/// }
/// let keys: Vec<Vec<u8>> = db.iter().rev().map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
/// assert_eq!(keys, vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
/// # Ok::<(), wisckey::Error>(())
/// ```
pub struct Iter {
    walk: Walk,
}

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.walk.fmt(f)
    }
}

impl Iter {
    pub(crate) fn new(walk: Walk) -> Iter {
        Iter { walk }
    }

    fn value_of(&self, r: crate::engine::Item) -> Result<(Vec<u8>, Value)> {
        let (k, slot) = r?;
        match slot {
            Slot::Value(v) => Ok((k, v)),
            slot => {
                let v = self.walk.lazy(&k, slot).into_value(&k)?;
                Ok((k, v))
            }
        }
    }

    /// Moves the front of the iterator to the first key at or after `key`
    /// (within its range), forward or backward from where it was: the next
    /// `next()` yields that key. The back end stays where it is, and the two
    /// ends still never cross. On an unordered table's iterator (no key
    /// order) the next item is an `Err(Error::Unsupported(..))`.
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// for k in [b"a", b"b", b"c", b"d"] {
    ///     db.put(k, b"v")?;
    /// }
    /// let mut it = db.iter();
    /// it.seek(b"bb");
    /// assert_eq!(it.next().unwrap()?.0, b"c".to_vec());
    /// it.seek(b"a");
    /// assert_eq!(it.next().unwrap()?.0, b"a".to_vec());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn seek(&mut self, key: impl AsRef<[u8]>) {
        self.walk.seek(key.as_ref());
    }

    /// Moves the back of the iterator to the last key at or before `key`:
    /// the next `next_back()` yields that key (RocksDB's `SeekForPrev`).
    /// The front end stays where it is.
    ///
    /// ```
    /// use wisckey::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path(), Options::default())?;
    /// for k in [b"a", b"b", b"c"] {
    ///     db.put(k, b"v")?;
    /// }
    /// let mut it = db.iter();
    /// it.seek_back(b"bb");
    /// assert_eq!(it.next_back().unwrap()?.0, b"b".to_vec());
    /// # Ok::<(), wisckey::Error>(())
    /// ```
    pub fn seek_back(&mut self, key: impl AsRef<[u8]>) {
        self.walk.seek_back(key.as_ref());
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.walk.next_front()?;
        Some(self.value_of(r))
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        let r = self.walk.next_back()?;
        Some(self.value_of(r))
    }
}

/// Iterates the keys of one table, in ascending key order (also from the
/// back) on an ordered table, in no order on an unordered one, without
/// reading a single value from the vLog: a key-only walk costs what the
/// index costs. Items are `Result`s, as [`Iter`]'s.
///
/// ```
/// use wisckey::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put(b"b", vec![0u8; 4096])?;
/// db.put(b"a", vec![0u8; 4096])?;
/// let before = db.stats().vlog_bytes_read;
/// let keys: Vec<Vec<u8>> = db.keys().collect::<Result<_, _>>()?;
/// assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
/// assert_eq!(db.stats().vlog_bytes_read, before);
/// # Ok::<(), wisckey::Error>(())
/// ```
pub struct Keys {
    walk: Walk,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.walk.fmt(f)
    }
}

impl Keys {
    pub(crate) fn new(walk: Walk) -> Keys {
        Keys { walk }
    }

    /// Moves the front to the first key at or after `key` (as [`Iter::seek`]).
    pub fn seek(&mut self, key: impl AsRef<[u8]>) {
        self.walk.seek(key.as_ref());
    }

    /// Moves the back to the last key at or before `key` (as
    /// [`Iter::seek_back`]).
    pub fn seek_back(&mut self, key: impl AsRef<[u8]>) {
        self.walk.seek_back(key.as_ref());
    }
}

impl Iterator for Keys {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.walk.next_front()?.map(|(k, _)| k))
    }
}

impl DoubleEndedIterator for Keys {
    fn next_back(&mut self) -> Option<Self::Item> {
        Some(self.walk.next_back()?.map(|(k, _)| k))
    }
}

/// One entry of an [`Entries`] walk: its key at once, its value only when
/// asked for (one vLog read for a value kept there; none for a small value
/// the index holds). An entry keeps the files its value is in alive until
/// it is dropped, as an iterator does.
pub struct Entry {
    key: Vec<u8>,
    value: LazyValue,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("value_len", &self.value_len())
            .finish()
    }
}

impl Entry {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value's length in bytes, as written, without reading it.
    pub fn value_len(&self) -> u32 {
        self.value.len()
    }

    /// The value: read from the vLog (checksum and key checked) when it is
    /// kept there, each time this is called.
    ///
    /// # Errors
    /// `Corruption` when the record fails its checks, `Io` when the read
    /// fails.
    pub fn value(&self) -> Result<Value> {
        self.value.get(&self.key)
    }

    /// The key, giving up the entry.
    pub fn into_key(self) -> Vec<u8> {
        self.key
    }

    /// The key and the value (read as [`Entry::value`] does).
    ///
    /// # Errors
    /// As [`Entry::value`].
    pub fn into_pair(self) -> Result<(Vec<u8>, Value)> {
        let v = self.value.into_value(&self.key)?;
        Ok((self.key, v))
    }
}

/// Iterates the entries of one table in the order [`Keys`] does, handing
/// out [`Entry`] guards whose value is read only when asked for: for walks
/// that look at most keys and read few values. (A walk that wants every
/// value is faster with [`Iter`], which reads a window of values in one
/// batch.)
///
/// ```
/// use wisckey::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put(b"big", vec![7u8; 10_000])?;
/// db.put(b"small", b"s")?;
/// for e in db.entries(..) {
///     let e = e?;
///     if e.value_len() < 100 {
///         assert_eq!(e.value()?.as_ref(), b"s");
///     }
/// }
/// # Ok::<(), wisckey::Error>(())
/// ```
pub struct Entries {
    walk: Walk,
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.walk.fmt(f)
    }
}

impl Entries {
    pub(crate) fn new(walk: Walk) -> Entries {
        Entries { walk }
    }

    fn entry(&self, r: crate::engine::Item) -> Result<Entry> {
        let (key, slot) = r?;
        let value = self.walk.lazy(&key, slot);
        Ok(Entry { key, value })
    }

    /// Moves the front to the first key at or after `key` (as [`Iter::seek`]).
    pub fn seek(&mut self, key: impl AsRef<[u8]>) {
        self.walk.seek(key.as_ref());
    }

    /// Moves the back to the last key at or before `key` (as
    /// [`Iter::seek_back`]).
    pub fn seek_back(&mut self, key: impl AsRef<[u8]>) {
        self.walk.seek_back(key.as_ref());
    }
}

impl Iterator for Entries {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.walk.next_front()?;
        Some(self.entry(r))
    }
}

impl DoubleEndedIterator for Entries {
    fn next_back(&mut self) -> Option<Self::Item> {
        let r = self.walk.next_back()?;
        Some(self.entry(r))
    }
}
