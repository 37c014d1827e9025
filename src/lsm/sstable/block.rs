//! Key/value blocks (data and index blocks): the builder, a validated view
//! for point lookups (restart-point binary search then linear scan), and a
//! decoded iterator for scans in both directions.

use crate::coding::{get_varint, put_varint};
use crate::error::{Error, Result};
use crate::lsm::ikey;
use crate::lsm::iter::InternalIterator;
use std::cmp::Ordering;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Builds one prefix-compressed block with restart points.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    /// Entries since the last restart point.
    counter: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub(crate) fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval: restart_interval.max(1),
            counter: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry; keys must come in increasing order.
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(
            self.entries == 0 || ikey::compare(&self.last_key, key) == Ordering::Less,
            "block keys out of order"
        );
        let shared = if self.counter == 0 || self.counter >= self.restart_interval {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
        self.entries += 1;
    }

    /// The size of the block if finished now.
    pub(crate) fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Returns the encoded block and resets the builder for the next block.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.reserve(4 * self.restarts.len() + 4);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts.clear();
        self.counter = 0;
        self.last_key.clear();
        self.entries = 0;
        out
    }
}

/// A decoded, validated block: the restart array has been checked, entries
/// are checked as they are decoded.
/// Shared so that a cached block hands cursors out without a copy.
#[derive(Debug)]
pub(crate) struct Block {
    data: Arc<Vec<u8>>,
    /// End of the entries = start of the restart array.
    data_end: usize,
    num_restarts: usize,
    path: Arc<Path>,
    /// Offset of the stored block in its file (for error reports).
    file_offset: u64,
}

/// One entry located in a block: where its value is, and what the next
/// entry's offset is.
struct RawEntry {
    shared: usize,
    unshared: Range<usize>,
    value: Range<usize>,
    next: usize,
}

impl Block {
    /// Checks the restart array of a decompressed block.
    pub(crate) fn new(data: Vec<u8>, path: Arc<Path>, file_offset: u64) -> Result<Block> {
        let corrupt = |reason: String| Error::corruption(path.to_path_buf(), file_offset, reason);
        if data.len() < 4 {
            return Err(corrupt(format!(
                "block of {} bytes is too short",
                data.len()
            )));
        }
        let n_pos = data.len() - 4;
        let num_restarts = u32::from_le_bytes([
            data[n_pos],
            data[n_pos + 1],
            data[n_pos + 2],
            data[n_pos + 3],
        ]) as usize;
        let max_restarts = n_pos / 4;
        if num_restarts > max_restarts {
            return Err(corrupt(format!(
                "block restart count {num_restarts} does not fit in {} bytes",
                data.len()
            )));
        }
        let data_end = n_pos - 4 * num_restarts;
        if (num_restarts == 0) != (data_end == 0) {
            return Err(corrupt(format!(
                "block has {num_restarts} restarts for {data_end} bytes of entries"
            )));
        }
        let mut prev: Option<usize> = None;
        for i in 0..num_restarts {
            let p = data_end + 4 * i;
            let r = u32::from_le_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]) as usize;
            let ok = match prev {
                None => r == 0,
                Some(q) => r > q && r < data_end,
            };
            if !ok {
                return Err(corrupt(format!("block restart {i} has bad offset {r}")));
            }
            prev = Some(r);
        }
        Ok(Block {
            data: Arc::new(data),
            data_end,
            num_restarts,
            path,
            file_offset,
        })
    }

    fn corrupt(&self, at: usize, reason: &str) -> Error {
        Error::corruption(
            self.path.to_path_buf(),
            self.file_offset,
            format!("{reason} at byte {at} of the (decompressed) block"),
        )
    }

    fn restart(&self, i: usize) -> usize {
        let p = self.data_end + 4 * i;
        let d = &self.data;
        u32::from_le_bytes([d[p], d[p + 1], d[p + 2], d[p + 3]]) as usize
    }

    /// Decodes the entry header at `pos` (which must be `< data_end`), with
    /// `prev_len` bytes of previous key available for sharing.
    fn entry_at(&self, pos: usize, prev_len: usize) -> Result<RawEntry> {
        let src = &self.data[pos..self.data_end];
        let bad = |what: &str| self.corrupt(pos, what);
        let (shared, a) = get_varint(src).ok_or_else(|| bad("bad shared length"))?;
        let (unshared, b) = get_varint(&src[a..]).ok_or_else(|| bad("bad unshared length"))?;
        let (vlen, c) = get_varint(&src[a + b..]).ok_or_else(|| bad("bad value length"))?;
        let header = a + b + c;
        let rest = (src.len() - header) as u64;
        if shared > prev_len as u64 {
            return Err(bad("shared length exceeds previous key"));
        }
        if unshared > rest || vlen > rest - unshared {
            return Err(bad("entry overruns the block"));
        }
        let k = pos + header;
        let v = k + unshared as usize;
        let next = v + vlen as usize;
        Ok(RawEntry {
            shared: shared as usize,
            unshared: k..v,
            value: v..next,
            next,
        })
    }

    /// The whole key of the restart entry `i`.
    fn restart_key(&self, i: usize) -> Result<&[u8]> {
        let e = self.entry_at(self.restart(i), 0)?;
        Ok(&self.data[e.unshared])
    }

    /// The first entry with key `>= target`, as (key, value).
    pub(crate) fn seek(&self, target: &[u8]) -> Result<Option<(Vec<u8>, &[u8])>> {
        if self.num_restarts == 0 {
            return Ok(None);
        }
        // Last restart whose key is < target (or restart 0).
        let (mut lo, mut hi) = (0usize, self.num_restarts - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if ikey::compare(self.restart_key(mid)?, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let mut pos = self.restart(lo);
        let mut key = Vec::new();
        while pos < self.data_end {
            let e = self.entry_at(pos, key.len())?;
            key.truncate(e.shared);
            key.extend_from_slice(&self.data[e.unshared]);
            if ikey::compare(&key, target) != Ordering::Less {
                return Ok(Some((key, &self.data[e.value])));
            }
            pos = e.next;
        }
        Ok(None)
    }

    /// Bytes of the decompressed block.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// Decodes every entry, for a cursor that moves both ways.
    pub(crate) fn into_cursor(self) -> Result<BlockIter> {
        self.cursor()
    }

    /// A cursor over the block (its entries decoded, its bytes shared).
    pub(crate) fn cursor(&self) -> Result<BlockIter> {
        let mut keys = Vec::new();
        let mut entries = Vec::new();
        let mut prev = 0..0;
        let mut pos = 0;
        while pos < self.data_end {
            let e = self.entry_at(pos, prev.len())?;
            let start = keys.len();
            keys.extend_from_within(prev.start..prev.start + e.shared);
            keys.extend_from_slice(&self.data[e.unshared]);
            prev = start..keys.len();
            entries.push(EntryRef {
                key: prev.clone(),
                value: e.value,
            });
            pos = e.next;
        }
        Ok(BlockIter {
            data: self.data.clone(),
            keys,
            entries,
            pos: 0,
            valid: false,
        })
    }
}

#[derive(Debug, Clone)]
struct EntryRef {
    key: Range<usize>,
    value: Range<usize>,
}

/// A cursor over a fully decoded block. Decoding errors are reported when
/// the block is loaded ([`Block::into_cursor`]), so the cursor itself never
/// fails.
#[derive(Debug)]
pub(crate) struct BlockIter {
    data: Arc<Vec<u8>>,
    keys: Vec<u8>,
    entries: Vec<EntryRef>,
    pos: usize,
    valid: bool,
}

impl BlockIter {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Heap bytes the cursor holds: the block, its decoded keys and the
    /// entry table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.data.capacity()
            + self.keys.capacity()
            + self.entries.capacity() * std::mem::size_of::<EntryRef>()
    }

    /// The key of entry `i` (`i < len()`).
    pub(crate) fn key_at(&self, i: usize) -> &[u8] {
        &self.keys[self.entries[i].key.clone()]
    }

    /// The value of entry `i` (`i < len()`).
    pub(crate) fn value_at(&self, i: usize) -> &[u8] {
        &self.data[self.entries[i].value.clone()]
    }

    /// The index of the first entry with key `>= target` (`len()` if none).
    pub(crate) fn lower_bound(&self, target: &[u8]) -> usize {
        self.entries
            .partition_point(|e| ikey::compare(&self.keys[e.key.clone()], target) == Ordering::Less)
    }

    /// The index of the first entry with key `> target` (`len()` if none).
    pub(crate) fn upper_bound(&self, target: &[u8]) -> usize {
        self.entries.partition_point(|e| {
            ikey::compare(&self.keys[e.key.clone()], target) != Ordering::Greater
        })
    }

    fn set(&mut self, i: usize) {
        self.pos = i;
        self.valid = i < self.entries.len();
    }
}

impl InternalIterator for BlockIter {
    fn valid(&self) -> bool {
        self.valid
    }
    fn seek_to_first(&mut self) {
        self.set(0);
    }
    fn seek_to_last(&mut self) {
        self.set(self.entries.len().wrapping_sub(1));
    }
    fn seek(&mut self, target: &[u8]) {
        let i = self.lower_bound(target);
        self.set(i);
    }
    fn seek_for_prev(&mut self, target: &[u8]) {
        let i = self.upper_bound(target);
        self.set(i.wrapping_sub(1));
    }
    fn next(&mut self) {
        if self.valid {
            self.set(self.pos + 1);
        }
    }
    fn prev(&mut self) {
        if self.valid {
            self.set(self.pos.wrapping_sub(1));
        }
    }
    fn key(&self) -> &[u8] {
        self.key_at(self.pos)
    }
    fn value(&self) -> &[u8] {
        self.value_at(self.pos)
    }
    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::ikey::{encode, Kind};

    /// A tiny deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn path() -> Arc<Path> {
        Arc::from(Path::new("test.sst"))
    }

    fn random_entries(rng: &mut Rng, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let long_prefix = vec![b'p'; 40];
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|_| {
                let mut uk = Vec::new();
                if rng.below(2) == 0 {
                    uk.extend_from_slice(&long_prefix);
                }
                for _ in 0..rng.below(4) {
                    uk.push(b'a' + rng.below(3) as u8);
                }
                let table = rng.below(3) as u32;
                let seq = rng.below(50);
                let k = encode(table, &uk, seq, Kind::Inline as u8);
                let vlen = if rng.below(3) == 0 { 0 } else { rng.below(20) };
                let val = (0..vlen).map(|_| rng.next() as u8).collect();
                (k, val)
            })
            .collect();
        v.sort_by(|a, b| ikey::compare(&a.0, &b.0));
        v.dedup_by(|a, b| ikey::compare(&a.0, &b.0) == Ordering::Equal);
        v
    }

    fn build(entries: &[(Vec<u8>, Vec<u8>)], interval: usize) -> Block {
        let mut b = BlockBuilder::new(interval);
        for (k, v) in entries {
            b.add(k, v);
        }
        assert_eq!(b.entries(), entries.len());
        let est = b.estimated_size();
        let data = b.finish();
        assert_eq!(data.len(), est);
        assert!(b.is_empty());
        Block::new(data, path(), 0).unwrap()
    }

    fn random_target(rng: &mut Rng, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        if !entries.is_empty() && rng.below(2) == 0 {
            let k = &entries[rng.below(entries.len() as u64) as usize].0;
            // Same user part, random sequence number (and seek kind).
            ikey::seek_key(ikey::user_part(k), rng.below(60))
        } else {
            let e = random_entries(rng, 1);
            e[0].0.clone()
        }
    }

    #[test]
    fn block_round_trip_against_reference() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for case in 0..300 {
            let n = match case % 5 {
                0 => 0,
                1 => 1,
                _ => rng.below(200) as usize,
            };
            let entries = random_entries(&mut rng, n);
            let interval = 1 + rng.below(20) as usize;
            let block = build(&entries, interval);
            for _ in 0..20 {
                let t = random_target(&mut rng, &entries);
                let want = entries.partition_point(|e| ikey::compare(&e.0, &t) == Ordering::Less);
                let got = block.seek(&t).unwrap();
                match entries.get(want) {
                    None => assert!(got.is_none()),
                    Some((k, v)) => {
                        let (gk, gv) = got.unwrap();
                        assert_eq!((&gk, gv), (k, &v[..]));
                    }
                }
            }
            let data = block.data.to_vec();
            let mut it = block.into_cursor().unwrap();
            assert_eq!(it.len(), entries.len());
            // Forward.
            it.seek_to_first();
            let mut got = Vec::new();
            while it.valid() {
                got.push((it.key().to_vec(), it.value().to_vec()));
                it.next();
            }
            assert_eq!(got, entries);
            // Backward.
            it.seek_to_last();
            let mut got = Vec::new();
            while it.valid() {
                got.push((it.key().to_vec(), it.value().to_vec()));
                it.prev();
            }
            got.reverse();
            assert_eq!(got, entries);
            it.status().unwrap();
            // Seeks, then a step each way.
            for _ in 0..20 {
                let t = random_target(&mut rng, &entries);
                let lb = entries.partition_point(|e| ikey::compare(&e.0, &t) == Ordering::Less);
                it.seek(&t);
                assert_eq!(it.valid(), lb < entries.len());
                if it.valid() {
                    assert_eq!(it.key(), &entries[lb].0[..]);
                    it.prev();
                    assert_eq!(it.valid(), lb > 0);
                    if lb > 0 {
                        assert_eq!(it.key(), &entries[lb - 1].0[..]);
                    }
                }
                let ub = entries.partition_point(|e| ikey::compare(&e.0, &t) != Ordering::Greater);
                it.seek_for_prev(&t);
                assert_eq!(it.valid(), ub > 0);
                if ub > 0 {
                    assert_eq!(it.key(), &entries[ub - 1].0[..]);
                    assert_eq!(it.value(), &entries[ub - 1].1[..]);
                    it.next();
                    assert_eq!(it.valid(), ub < entries.len());
                    if ub < entries.len() {
                        assert_eq!(it.key(), &entries[ub].0[..]);
                    }
                }
            }
            // Damaged copies never panic.
            for _ in 0..20 {
                let mut d = data.clone();
                if d.is_empty() {
                    break;
                }
                match rng.below(3) {
                    0 => {
                        let i = rng.below(d.len() as u64) as usize;
                        d[i] ^= 1 << rng.below(8);
                    }
                    1 => d.truncate(rng.below(d.len() as u64) as usize),
                    _ => {
                        let i = rng.below(d.len() as u64) as usize;
                        d[i] = 0xff;
                    }
                }
                if let Ok(b) = Block::new(d, path(), 7) {
                    let t = random_target(&mut rng, &entries);
                    if let Err(e) = b.seek(&t) {
                        assert!(e.is_corruption());
                    }
                    match b.into_cursor() {
                        Ok(mut it) => {
                            it.seek_to_first();
                            while it.valid() {
                                it.next();
                            }
                        }
                        Err(e) => assert!(e.is_corruption(), "{e}"),
                    }
                }
            }
        }
    }

    #[test]
    fn hostile_restart_arrays() {
        for bytes in [
            vec![],
            vec![1, 0, 0],
            vec![0xff, 0xff, 0xff, 0xff],
            vec![0, 0, 0, 0, 1, 0, 0, 0],
            vec![5, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0],
            vec![0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0],
            vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0],
        ] {
            let e = Block::new(bytes, path(), 3).unwrap_err();
            assert!(e.is_corruption());
        }
        // Valid restart array, hostile entry: shared length > 0 at a restart.
        let bytes = vec![1, 1, 0, b'a', 0, 0, 0, 0, 1, 0, 0, 0];
        let b = Block::new(bytes, path(), 3).unwrap();
        assert!(b.seek(b"a").unwrap_err().is_corruption());
        assert!(b.into_cursor().unwrap_err().is_corruption());
        // Value length running off the block.
        let bytes = vec![0, 1, 0x7f, b'a', 0, 0, 0, 0, 1, 0, 0, 0];
        let b = Block::new(bytes, path(), 3).unwrap();
        assert!(b.into_cursor().unwrap_err().is_corruption());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn proptest_block_matches_sorted_vec(
            raw in proptest::collection::vec(
                (proptest::collection::vec(0u8..3, 0..12), 0u64..5, proptest::collection::vec(proptest::num::u8::ANY, 0..8)),
                0..100),
            interval in 1usize..8,
            targets in proptest::collection::vec((proptest::collection::vec(0u8..3, 0..12), 0u64..6), 1..20),
        ) {
            let mut entries: Vec<(Vec<u8>, Vec<u8>)> = raw
                .into_iter()
                .map(|(uk, seq, v)| (encode(1, &uk, seq, Kind::Inline as u8), v))
                .collect();
            entries.sort_by(|a, b| ikey::compare(&a.0, &b.0));
            entries.dedup_by(|a, b| ikey::compare(&a.0, &b.0) == Ordering::Equal);
            let block = build(&entries, interval);
            let targets: Vec<Vec<u8>> = targets
                .into_iter()
                .map(|(uk, seq)| encode(1, &uk, seq, Kind::Delete as u8))
                .collect();
            for t in &targets {
                let want = entries.partition_point(|e| ikey::compare(&e.0, t) == Ordering::Less);
                let got = block.seek(t).unwrap().map(|(k, v)| (k, v.to_vec()));
                proptest::prop_assert_eq!(got, entries.get(want).cloned());
            }
            let mut it = block.into_cursor().unwrap();
            for t in &targets {
                let ub = entries.partition_point(|e| ikey::compare(&e.0, t) != Ordering::Greater);
                it.seek_for_prev(t);
                proptest::prop_assert_eq!(it.valid(), ub > 0);
                if ub > 0 {
                    proptest::prop_assert_eq!(it.key(), &entries[ub - 1].0[..]);
                }
            }
        }
    }
}
