//! [`Value`]: the bytes a read returns, without a copy out of the buffer the
//! vLog record was read into.

use std::fmt;
use std::ops::Deref;

/// The bytes of a value returned by a read.
///
/// Dereferences to `[u8]`:
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let db = wisckey::Db::open(dir.path(), wisckey::Options::default())?;
/// db.put(b"k", b"hello")?;
/// let v = db.get(b"k")?.unwrap();
/// assert_eq!(&*v, b"hello");
/// assert_eq!(v.len(), 5);
/// # Ok::<(), wisckey::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Value {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Value {
    /// The slice `buf[start..end]` as a value (the caller keeps `start <= end <= buf.len()`).
    pub(crate) fn from_parts(buf: Vec<u8>, start: usize, end: usize) -> Value {
        debug_assert!(start <= end && end <= buf.len());
        Value { buf, start, end }
    }

    /// The bytes as an owned vector (copies only when the value is a slice of
    /// a larger buffer).
    pub fn into_vec(self) -> Vec<u8> {
        if self.start == 0 && self.end == self.buf.len() {
            self.buf
        } else {
            self.buf[self.start..self.end].to_vec()
        }
    }
}

impl From<Vec<u8>> for Value {
    fn from(buf: Vec<u8>) -> Value {
        let end = buf.len();
        Value { buf, start: 0, end }
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::from(b.to_vec())
    }
}

impl Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::borrow::Borrow<[u8]> for Value {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        **self == **other
    }
}

impl Eq for Value {}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[u8]> for Value {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Value {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

impl PartialEq<Vec<u8>> for Value {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == other[..]
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b: &[u8] = self;
        if b.len() <= 64 {
            write!(f, "Value({:?})", String::from_utf8_lossy(b))
        } else {
            write!(f, "Value({} bytes)", b.len())
        }
    }
}
