//! The memtable: the newest writes of the sorted index, in a concurrent skip
//! list keyed by internal key. Values are inline bytes, encoded value
//! pointers, or empty for tombstones (the kind is in the key's trailer).

use super::ikey::{self, InternalKey};
use super::iter::InternalIterator;
use crate::error::Result;
use crossbeam_skiplist::SkipMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes charged per entry on top of key and value (skip-list node, vectors).
const ENTRY_OVERHEAD: usize = 64;

/// A memtable.
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    map: SkipMap<InternalKey, Vec<u8>>,
    approx_bytes: AtomicUsize,
    /// The largest sequence number inserted.
    max_seq: AtomicU64,
}

impl Memtable {
    pub(crate) fn new() -> Memtable {
        Memtable::default()
    }

    /// Inserts one entry. Sequence numbers make keys unique.
    pub(crate) fn insert(&self, ikey: Vec<u8>, value: Vec<u8>) {
        let n = ikey.len() + value.len() + ENTRY_OVERHEAD;
        self.max_seq.fetch_max(ikey::seq(&ikey), Ordering::Relaxed);
        self.map.insert(InternalKey(ikey), value);
        self.approx_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The first entry at or after the seek key `target` whose user part
    /// equals the target's: the newest version visible at the target's
    /// sequence number.
    pub(crate) fn get(&self, target: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let t = InternalKey(target.to_vec());
        let e = self.map.lower_bound(Bound::Included(&t))?;
        if ikey::user_part(&e.key().0) == ikey::user_part(target) {
            Some((e.key().0.clone(), e.value().clone()))
        } else {
            None
        }
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        self.approx_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn max_seq(&self) -> u64 {
        self.max_seq.load(Ordering::Relaxed)
    }

    /// A cursor over the memtable.
    pub(crate) fn iter(self: &Arc<Self>) -> MemIter {
        MemIter {
            mem: self.clone(),
            cur: None,
        }
    }
}

/// A cursor over a memtable. It copies the current entry out, so it stays
/// valid while writers insert.
pub(crate) struct MemIter {
    mem: Arc<Memtable>,
    cur: Option<(Vec<u8>, Vec<u8>)>,
}

impl MemIter {
    fn set(&mut self, e: Option<crossbeam_skiplist::map::Entry<'_, InternalKey, Vec<u8>>>) {
        self.cur = e.map(|e| (e.key().0.clone(), e.value().clone()));
    }
}

impl InternalIterator for MemIter {
    fn valid(&self) -> bool {
        self.cur.is_some()
    }
    fn seek_to_first(&mut self) {
        let m = self.mem.clone();
        self.set(m.map.front());
    }
    fn seek_to_last(&mut self) {
        let m = self.mem.clone();
        self.set(m.map.back());
    }
    fn seek(&mut self, target: &[u8]) {
        let m = self.mem.clone();
        let t = InternalKey(target.to_vec());
        self.set(m.map.lower_bound(Bound::Included(&t)));
    }
    fn seek_for_prev(&mut self, target: &[u8]) {
        let m = self.mem.clone();
        let t = InternalKey(target.to_vec());
        self.set(m.map.upper_bound(Bound::Included(&t)));
    }
    fn next(&mut self) {
        let m = self.mem.clone();
        if let Some((k, _)) = self.cur.take() {
            let k = InternalKey(k);
            self.set(m.map.lower_bound(Bound::Excluded(&k)));
        }
    }
    fn prev(&mut self) {
        let m = self.mem.clone();
        if let Some((k, _)) = self.cur.take() {
            let k = InternalKey(k);
            self.set(m.map.upper_bound(Bound::Excluded(&k)));
        }
    }
    fn key(&self) -> &[u8] {
        self.cur.as_ref().map(|c| c.0.as_slice()).unwrap_or(&[])
    }
    fn value(&self) -> &[u8] {
        self.cur.as_ref().map(|c| c.1.as_slice()).unwrap_or(&[])
    }
    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::ikey::{encode, seek_key, user_part, Kind};

    #[test]
    fn get_sees_newest_visible_version() {
        let m = Memtable::new();
        m.insert(encode(0, b"a", 1, Kind::Inline as u8), b"v1".to_vec());
        m.insert(encode(0, b"a", 3, Kind::Inline as u8), b"v3".to_vec());
        m.insert(encode(0, b"a", 5, Kind::Delete as u8), Vec::new());
        m.insert(encode(0, b"b", 2, Kind::Inline as u8), b"b2".to_vec());
        let a = encode(0, b"a", 0, 0);
        let up = user_part(&a);
        assert_eq!(m.get(&seek_key(up, 2)).unwrap().1, b"v1");
        assert_eq!(m.get(&seek_key(up, 4)).unwrap().1, b"v3");
        assert_eq!(ikey::kind_byte(&m.get(&seek_key(up, 9)).unwrap().0), 0);
        assert!(m.get(&seek_key(up, 0)).is_none());
        assert_eq!(m.max_seq(), 5);
        let mut it = Arc::new(m).iter();
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        assert_eq!(n, 4);
        it.seek_to_last();
        assert_eq!(ikey::user_key(it.key()), b"b");
        it.prev();
        assert_eq!(ikey::seq(it.key()), 1);
    }
}
