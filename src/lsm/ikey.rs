//! Internal keys: how the sorted index names one version of one key.
//!
//! ```text
//! internal key = table id (u32, big-endian) | user key | trailer (u64, little-endian)
//! trailer      = sequence number << 8 | kind
//! ```
//!
//! The table id in front lets every ordered table share one LSM-tree (one
//! memtable, one replay point); big-endian so that byte order is id order.
//! Internal keys sort by their *user part* (table id + user key) ascending, then
//! by trailer descending, so the newest version of a key comes first.

use std::cmp::Ordering;

/// Bytes of the trailer at the end of every internal key.
pub(crate) const TRAILER_LEN: usize = 8;
/// Bytes of the table id at the front of every internal key.
pub(crate) const TABLE_ID_LEN: usize = 4;
/// The largest sequence number (56 bits).
pub(crate) const MAX_SEQ: u64 = (1 << 56) - 1;

/// What one version of a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A tombstone: the key was deleted at this sequence number.
    Delete = 0,
    /// A put whose value is stored inline (below the separation threshold).
    Inline = 1,
    /// A put whose value lives in the vLog; the entry's value is an encoded
    /// value pointer, opaque to the sorted index.
    Pointer = 2,
}

impl Kind {
    pub(crate) fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Inline),
            2 => Some(Kind::Pointer),
            _ => None,
        }
    }
}

/// The kind byte used in seek targets: sorts before every real kind at the
/// same sequence number (the trailer order is descending).
pub(crate) const SEEK_KIND: u8 = 0xff;

/// The bytes every internal key of `table` starts with.
pub(crate) fn table_prefix(table: u32) -> [u8; TABLE_ID_LEN] {
    table.to_be_bytes()
}

/// The user part of `user_key` in `table`: every internal key of that key
/// starts with it.
pub(crate) fn user_part_of(table: u32, user_key: &[u8]) -> Vec<u8> {
    let mut up = Vec::with_capacity(TABLE_ID_LEN + user_key.len() + TRAILER_LEN);
    up.extend_from_slice(&table_prefix(table));
    up.extend_from_slice(user_key);
    up
}

/// Builds an internal key.
pub(crate) fn encode(table: u32, user_key: &[u8], seq: u64, kind: u8) -> Vec<u8> {
    let mut k = user_part_of(table, user_key);
    k.extend_from_slice(&((seq << 8) | u64::from(kind)).to_le_bytes());
    k
}

/// A seek target: the first internal key of `user_part` visible at `seq`.
pub(crate) fn seek_key(user_part: &[u8], seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(user_part.len() + TRAILER_LEN);
    k.extend_from_slice(user_part);
    k.extend_from_slice(&((seq << 8) | u64::from(SEEK_KIND)).to_le_bytes());
    k
}

/// The user part (table id + user key) of a well-formed internal key.
/// Keys shorter than a trailer are treated as all user part.
#[inline]
pub(crate) fn user_part(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(TRAILER_LEN)]
}

/// The trailer of an internal key (0 for a malformed, too-short key).
#[inline]
pub(crate) fn trailer(ikey: &[u8]) -> u64 {
    if ikey.len() < TRAILER_LEN {
        return 0;
    }
    let t = &ikey[ikey.len() - TRAILER_LEN..];
    u64::from_le_bytes([t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]])
}

/// The sequence number of an internal key.
#[inline]
pub(crate) fn seq(ikey: &[u8]) -> u64 {
    trailer(ikey) >> 8
}

/// The kind byte of an internal key.
#[inline]
pub(crate) fn kind_byte(ikey: &[u8]) -> u8 {
    trailer(ikey) as u8
}

/// The table id of an internal key (0 for a malformed one).
#[inline]
pub(crate) fn table_id(ikey: &[u8]) -> u32 {
    let u = user_part(ikey);
    if u.len() < TABLE_ID_LEN {
        return 0;
    }
    u32::from_be_bytes([u[0], u[1], u[2], u[3]])
}

/// Whether `ikey` is a well-formed key of table `table` (long enough to
/// hold a table id, and that id).
#[inline]
pub(crate) fn in_table(ikey: &[u8], table: u32) -> bool {
    user_part(ikey).len() >= TABLE_ID_LEN && table_id(ikey) == table
}

/// The user key (without the table id) of an internal key.
#[inline]
pub(crate) fn user_key(ikey: &[u8]) -> &[u8] {
    let u = user_part(ikey);
    &u[TABLE_ID_LEN.min(u.len())..]
}

/// The order of internal keys: user part ascending, then trailer descending.
#[inline]
pub(crate) fn compare(a: &[u8], b: &[u8]) -> Ordering {
    match user_part(a).cmp(user_part(b)) {
        Ordering::Equal => trailer(b).cmp(&trailer(a)),
        o => o,
    }
}

/// An owned internal key ordered by [`compare`], for the memtable's skip list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InternalKey(pub(crate) Vec<u8>);

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_user_key_then_newest_first() {
        let a1 = encode(1, b"a", 1, Kind::Inline as u8);
        let a5 = encode(1, b"a", 5, Kind::Delete as u8);
        let ab = encode(1, b"ab", 9, Kind::Inline as u8);
        let b0 = encode(2, b"", 3, Kind::Inline as u8);
        let mut v = vec![ab.clone(), b0.clone(), a1.clone(), a5.clone()];
        v.sort_by(|x, y| compare(x, y));
        assert_eq!(v, vec![a5.clone(), a1.clone(), ab, b0]);
        assert_eq!(seq(&a5), 5);
        assert_eq!(kind_byte(&a5), 0);
        assert_eq!(user_key(&a1), b"a");
        assert_eq!(table_id(&a1), 1);
        // A seek key at seq 3 lands after a5 and before a1.
        let s = seek_key(user_part(&a1), 3);
        assert_eq!(compare(&a5, &s), Ordering::Less);
        assert_eq!(compare(&s, &a1), Ordering::Less);
        // Malformed keys do not panic.
        assert_eq!(trailer(b"abc"), 0);
        assert_eq!(table_id(b"ab"), 0);
        assert_eq!(user_key(b""), b"");
    }
}
