//! Range tombstones: `delete_range` as one record, however many keys it
//! covers.
//!
//! A range tombstone deletes, in one ordered table, every version of every
//! key in `[start, end)` (`end` absent: to the end of the table) older than
//! its own sequence number. It is written once to the vLog (the WAL, in the
//! batch that made it), kept in its memtable's list until that memtable is
//! flushed, and from then on in the manifest (a version edit adds it in the
//! flush's edit), so every view ([`crate::lsm::version::Version`] and the
//! memtables) knows the tombstones that apply to it. Point reads, the
//! iterators and GC's liveness check treat a covered version as deleted;
//! compaction drops what a tombstone covers once every snapshot sees the
//! tombstone; a full compaction retires the tombstones it has applied.
//!
//! ```text
//! record value = 0 (no end) | 1 end            (key of the record: start)
//! manifest     = table varint | seq varint | start length-prefixed
//!                | has_end u8 | [end length-prefixed]
//! ```
//!
//! The lists are expected to be short (tombstones are few and retired by
//! full compactions): a lookup checks each one that shares its table.

use crate::coding::{put_length_prefixed, put_varint, Reader};

/// One range tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeTombstone {
    pub(crate) table: u32,
    pub(crate) seq: u64,
    /// The first key deleted.
    pub(crate) start: Vec<u8>,
    /// The first key past the range; `None`: the table's end.
    pub(crate) end: Option<Vec<u8>>,
}

impl RangeTombstone {
    /// Whether it deletes the version `seq` of `key` in `table` for a reader
    /// at sequence number `read_seq`.
    #[inline]
    pub(crate) fn covers(&self, table: u32, key: &[u8], seq: u64, read_seq: u64) -> bool {
        self.table == table
            && seq < self.seq
            && self.seq <= read_seq
            && key >= self.start.as_slice()
            && self.end.as_deref().is_none_or(|e| key < e)
    }

    /// The end as the value of its vLog record.
    pub(crate) fn encode_end(end: Option<&[u8]>) -> Vec<u8> {
        match end {
            None => vec![0],
            Some(e) => {
                let mut v = Vec::with_capacity(e.len() + 1);
                v.push(1);
                v.extend_from_slice(e);
                v
            }
        }
    }

    /// The end from a record's value; `None` when malformed.
    pub(crate) fn decode_end(value: &[u8]) -> Option<Option<Vec<u8>>> {
        match value.split_first() {
            Some((0, [])) => Some(None),
            Some((1, e)) => Some(Some(e.to_vec())),
            _ => None,
        }
    }

    /// Appends its manifest encoding.
    pub(crate) fn encode_to(&self, b: &mut Vec<u8>) {
        put_varint(b, u64::from(self.table));
        put_varint(b, self.seq);
        put_length_prefixed(b, &self.start);
        match &self.end {
            None => b.push(0),
            Some(e) => {
                b.push(1);
                put_length_prefixed(b, e);
            }
        }
    }

    /// Reads one manifest encoding; `None` when truncated or malformed.
    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Option<RangeTombstone> {
        let table = u32::try_from(r.varint()?).ok()?;
        let seq = r.varint()?;
        let start = r.length_prefixed()?.to_vec();
        let end = match r.u8()? {
            0 => None,
            1 => Some(r.length_prefixed()?.to_vec()),
            _ => return None,
        };
        Some(RangeTombstone {
            table,
            seq,
            start,
            end,
        })
    }
}

/// The newest tombstone among `lists` that deletes version `seq` of `key`
/// in `table` for a reader at `read_seq`, as its sequence number.
pub(crate) fn covering<'a>(
    lists: impl IntoIterator<Item = &'a [RangeTombstone]>,
    table: u32,
    key: &[u8],
    seq: u64,
    read_seq: u64,
) -> Option<u64> {
    lists
        .into_iter()
        .flatten()
        .filter(|t| t.covers(table, key, seq, read_seq))
        .map(|t| t.seq)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: &[u8], end: Option<&[u8]>, seq: u64) -> RangeTombstone {
        RangeTombstone {
            table: 3,
            seq,
            start: start.to_vec(),
            end: end.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn covers_half_open_ranges_of_older_versions_it_is_visible_to() {
        let a = t(b"b", Some(b"d"), 10);
        assert!(a.covers(3, b"b", 9, 10));
        assert!(a.covers(3, b"c\xff", 0, 99));
        assert!(!a.covers(3, b"d", 9, 10), "end is excluded");
        assert!(!a.covers(3, b"a", 9, 10));
        assert!(!a.covers(3, b"b", 10, 10), "its own or newer versions stay");
        assert!(
            !a.covers(3, b"b", 9, 9),
            "a reader before it does not see it"
        );
        assert!(!a.covers(4, b"b", 9, 10), "other tables");
        let open = t(b"", None, 5);
        assert!(open.covers(3, b"\xff\xff", 1, 5));
        let lists = [vec![a.clone()], vec![open.clone()]];
        assert_eq!(
            covering(lists.iter().map(Vec::as_slice), 3, b"c", 1, 99),
            Some(10)
        );
        assert_eq!(
            covering(lists.iter().map(Vec::as_slice), 3, b"c", 6, 9),
            None
        );
    }

    #[test]
    fn encodings_round_trip_and_refuse_garbage() {
        for x in [t(b"a", Some(b"z"), 7), t(b"", None, u64::MAX >> 8)] {
            let mut b = Vec::new();
            x.encode_to(&mut b);
            let mut r = Reader::new(&b);
            assert_eq!(RangeTombstone::decode_from(&mut r), Some(x.clone()));
            assert!(r.is_empty());
            for cut in 0..b.len() {
                assert!(RangeTombstone::decode_from(&mut Reader::new(&b[..cut])).is_none());
            }
            let v = RangeTombstone::encode_end(x.end.as_deref());
            assert_eq!(RangeTombstone::decode_end(&v), Some(x.end.clone()));
        }
        assert_eq!(RangeTombstone::decode_end(&[]), None);
        assert_eq!(RangeTombstone::decode_end(&[0, 1]), None);
        assert_eq!(RangeTombstone::decode_end(&[2]), None);
        let mut b = Vec::new();
        t(b"a", None, 1).encode_to(&mut b);
        *b.last_mut().unwrap() = 7;
        assert!(RangeTombstone::decode_from(&mut Reader::new(&b)).is_none());
    }
}
