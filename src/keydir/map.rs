//! The keydir's map from key to [`KeyEntry`], in three allocations however
//! many keys it holds:
//!
//! ```text
//! index  HashTable<u32>   slot numbers, hashed by their keys (4 bytes a bucket,
//!                         plus hashbrown's 1 control byte)
//! slots  Vec<Slot>        one 40-byte slot per key, in no order
//! arena  Vec<u8>          every key's bytes back to back; a slot names its range
//! ```
//!
//! A lookup hashes the key, probes `index`, and compares the key with the
//! arena bytes of each candidate slot. A `Box<[u8]>` per key cost a heap
//! allocation (its 16-byte header and rounding) and a 16-byte fat pointer in
//! the map on top of the key; here the key costs its bytes only. At 10
//! million keys `index` has 2^24 buckets (hashbrown keeps at most 7/8 of
//! them full), 1.68 buckets a key: 8.4 bytes a key, and 40 for the slot.
//!
//! The index is grown by rebuilding it from `slots` in order (sequential
//! reads of slots and arena) rather than by hashbrown's rehash, which would
//! read the slots and their keys in bucket order, at random.
//!
//! A removal (GC forgetting a tombstone) moves the last slot into the gap
//! and leaves the key's bytes in the arena as dead bytes; when they are more
//! than half of the arena it is compacted (the live keys copied, in slot
//! order, into a new arena), so its space is at most twice the live keys'
//! bytes (plus [`COMPACT_MIN`]). Overwrites keep the key's bytes where they
//! are and cost no arena space.

use super::KeyEntry;
use crate::vlog::ValuePointer;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

/// Dead arena bytes below which the arena is never compacted (copying a
/// small arena to save little is not worth it).
const COMPACT_MIN: usize = 64 << 10;

/// The top bit of [`Slot::key_at`]: the record is a put (clear: a
/// tombstone). An arena offset never reaches it (a `Vec` holds at most
/// `isize::MAX` bytes).
const PUT_BIT: u64 = 1 << 63;

/// The bits of [`Slot::key_at`] that hold the arena offset (2^47 bytes of
/// keys, 128 TiB, is far past any memory); bits 47..63 hold 16 bits of the
/// raw value length.
const KEY_AT_MASK: u64 = (1 << 47) - 1;
/// The bits of [`Slot::seq`] and [`Slot::offset`] below their top byte:
/// sequence numbers are 56 bits, and a segment offset of 2^56 (64 PiB) is
/// never reached. Each top byte holds 8 bits of the raw value length.
const LOW_56: u64 = (1 << 56) - 1;

/// One key's slot: where its bytes are in the arena and where its newest
/// record is. 40 bytes.
///
/// The raw value length of a compressed record (the pointer's fourth
/// varint, 0 when the record stores its value as it is) is spread over the
/// spare top bits: bits 0..16 in `key_at` 47..63, bits 16..24 in the top
/// byte of `seq`, bits 24..32 in the top byte of `offset`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Offset of the key in the arena, with [`PUT_BIT`].
    key_at: u64,
    key_len: u32,
    /// Length of the whole record.
    len: u32,
    seq: u64,
    segment: u64,
    offset: u64,
}

impl Slot {
    fn new(key_at: usize, key_len: u32, e: &KeyEntry) -> Slot {
        let mut s = Slot {
            key_at: key_at as u64,
            key_len,
            len: 0,
            seq: 0,
            segment: 0,
            offset: 0,
        };
        s.set(e);
        s
    }

    fn set(&mut self, e: &KeyEntry) {
        // A compressed value is never empty (an empty value cannot shrink),
        // so 0 stands for "stored as it is".
        let raw = u64::from(e.ptr.raw_len.unwrap_or(0));
        // Both fit: sequence numbers are 56 bits (hint files and records
        // with a larger one are refused before they get here) and offsets
        // are far below 2^56.
        self.key_at =
            (self.key_at & KEY_AT_MASK) | if e.put { PUT_BIT } else { 0 } | (raw & 0xffff) << 47;
        self.seq = (e.seq & LOW_56) | ((raw >> 16) & 0xff) << 56;
        self.segment = e.ptr.segment;
        self.offset = (e.ptr.offset & LOW_56) | (raw >> 24) << 56;
        self.len = e.ptr.len;
    }

    fn entry(&self) -> KeyEntry {
        let raw =
            ((self.key_at >> 47) & 0xffff) | (self.seq >> 56) << 16 | (self.offset >> 56) << 24;
        KeyEntry {
            seq: self.seq & LOW_56,
            ptr: ValuePointer {
                segment: self.segment,
                offset: self.offset & LOW_56,
                len: self.len,
                raw_len: (raw != 0).then_some(raw as u32),
            },
            put: self.key_at & PUT_BIT != 0,
        }
    }

    fn key_range(&self) -> std::ops::Range<usize> {
        // Offsets were usizes when they were stored.
        let at = (self.key_at & KEY_AT_MASK) as usize;
        at..at + self.key_len as usize
    }
}

/// The keydir's hash: xxh3 of the key, seeded per map at random (so that
/// keys chosen to collide cannot be chosen ahead of time). `std`'s SipHash
/// took about a quarter of the time of an open from hint files.
#[derive(Debug, Clone)]
pub(crate) struct KeyHasher {
    seed: u64,
}

impl Default for KeyHasher {
    fn default() -> Self {
        use std::hash::BuildHasher;
        KeyHasher {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x6b65_7964_6972_u64),
        }
    }
}

impl KeyHasher {
    /// The hash of `key`.
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed)
    }
}

/// Which of two records of one key found on open is the newest: the higher
/// sequence number, and on a tie (a record and its relocated copy, both
/// still live after a crash) the one in the lower-numbered segment, so that
/// the result does not depend on the order segments are read in.
pub(crate) fn newer(a: &KeyEntry, b: &KeyEntry) -> bool {
    (a.seq, std::cmp::Reverse(a.ptr.segment)) > (b.seq, std::cmp::Reverse(b.ptr.segment))
}

/// Key to [`KeyEntry`]: see the module doc for the layout.
///
/// # Panics
///
/// Inserting a key of 4 GiB or more, or a key into a map that holds
/// `u32::MAX` keys, panics. Neither can happen through the engine: keys are
/// bounded by `Options::max_key_size` (at most `u32::MAX` bytes) and by the
/// record format, and four billion keys would take some 250 GB of memory.
#[derive(Default)]
pub(crate) struct KeyMap {
    index: HashTable<u32>,
    slots: Vec<Slot>,
    arena: Vec<u8>,
    /// Bytes of `arena` that no slot names.
    dead: usize,
    hasher: KeyHasher,
}

impl std::fmt::Debug for KeyMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMap")
            .field("keys", &self.slots.len())
            .field("arena_bytes", &self.arena.len())
            .field("dead_bytes", &self.dead)
            .finish()
    }
}

fn key_of<'a>(slots: &[Slot], arena: &'a [u8], i: u32) -> &'a [u8] {
    arena.get(slots[i as usize].key_range()).unwrap_or_default()
}

impl KeyMap {
    /// Number of keys (tombstones included).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the map holds no key.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let h = self.hasher.hash(key);
        let (slots, arena) = (&self.slots, &self.arena);
        self.index
            .find(h, |&i| key_of(slots, arena, i) == key)
            .map(|&i| i as usize)
    }

    /// The entry of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<KeyEntry> {
        self.find(key).map(|i| self.slots[i].entry())
    }

    /// Whether `key` has an entry.
    #[cfg(test)]
    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// Every key with its entry, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], KeyEntry)> + '_ {
        self.slots
            .iter()
            .map(|s| (self.arena.get(s.key_range()).unwrap_or_default(), s.entry()))
    }

    /// Makes room for `keys` more keys of `key_bytes` bytes in all without
    /// growing again. The index grows to at least twice its keys, so that
    /// reservations one segment at a time stay amortized.
    pub(crate) fn reserve(&mut self, keys: usize, key_bytes: usize) {
        self.slots.reserve(keys);
        self.arena.reserve(key_bytes);
        self.grow_index(keys);
    }

    /// Makes room in the index for `keys` more keys.
    fn grow_index(&mut self, keys: usize) {
        let room = self.index.capacity() - self.index.len();
        if room < keys {
            let len = self.index.len();
            self.rebuild_index((len + keys).max(2 * len));
        }
    }

    /// After an open: gives back room it reserved and did not use. The
    /// index is shrunk when it holds fewer than half the keys it has room
    /// for (records that turned out to be overwrites), the slots and the
    /// arena when more than a quarter of them is unused (their growth by
    /// doubling).
    pub(crate) fn fit(&mut self) {
        if self.index.len() < self.index.capacity() / 2 {
            self.rebuild_index(self.index.len());
        }
        if self.slots.capacity() - self.slots.len() > self.slots.len() / 4 {
            self.slots.shrink_to_fit();
        }
        if self.arena.capacity() - self.arena.len() > self.arena.len() / 4 {
            self.arena.shrink_to_fit();
        }
    }

    /// A new index with room for `capacity` keys, built from the slots in
    /// order.
    fn rebuild_index(&mut self, capacity: usize) {
        let mut index = HashTable::with_capacity(capacity.max(self.slots.len()));
        let (slots, arena, hasher) = (&self.slots, &self.arena, &self.hasher);
        let rehash = |&i: &u32| hasher.hash(key_of(slots, arena, i));
        for (i, s) in slots.iter().enumerate() {
            let h = hasher.hash(arena.get(s.key_range()).unwrap_or_default());
            index.insert_unique(h, Self::slot_number(i), rehash);
        }
        self.index = index;
    }

    fn slot_number(i: usize) -> u32 {
        u32::try_from(i)
            .ok()
            .filter(|&n| n < u32::MAX)
            .expect("a keydir holds fewer than u32::MAX keys")
    }

    /// Sets the entry of `key` to what `decide` returns given its current
    /// entry (`None`: no entry), or leaves it as it is when `decide`
    /// returns `None`. Returns the entry it replaced, if any.
    fn update(
        &mut self,
        key: &[u8],
        decide: impl FnOnce(Option<KeyEntry>) -> Option<KeyEntry>,
    ) -> Option<KeyEntry> {
        self.grow_index(1);
        let h = self.hasher.hash(key);
        let KeyMap {
            index,
            slots,
            arena,
            hasher,
            ..
        } = self;
        let entry = index.entry(
            h,
            |&i| key_of(slots, arena, i) == key,
            |&i| hasher.hash(key_of(slots, arena, i)),
        );
        match entry {
            Entry::Occupied(o) => {
                let slot = &mut slots[*o.get() as usize];
                let old = slot.entry();
                let new = decide(Some(old))?;
                slot.set(&new);
                Some(old)
            }
            Entry::Vacant(v) => {
                let new = decide(None)?;
                let key_len = u32::try_from(key.len()).expect("keys are shorter than 4 GiB");
                v.insert(Self::slot_number(slots.len()));
                slots.push(Slot::new(arena.len(), key_len, &new));
                arena.extend_from_slice(key);
                None
            }
        }
    }

    /// Sets the entry of `key`; returns the one it replaced.
    pub(crate) fn insert(&mut self, key: &[u8], e: KeyEntry) -> Option<KeyEntry> {
        self.update(key, |_| Some(e))
    }

    /// Sets the entry of `key` if it has one; returns the one it replaced.
    pub(crate) fn replace(&mut self, key: &[u8], e: KeyEntry) -> Option<KeyEntry> {
        match self.find(key) {
            Some(i) => {
                let old = self.slots[i].entry();
                self.slots[i].set(&e);
                Some(old)
            }
            None => None,
        }
    }

    /// Applies a record found on open: it becomes the entry of `key` if it
    /// is [`newer`] than the entry there. Returns the pointer of whichever
    /// of the two lost (`None` when the key had no entry).
    pub(crate) fn offer(&mut self, key: &[u8], e: KeyEntry) -> Option<ValuePointer> {
        let mut lost = None;
        let replaced = self.update(key, |cur| match cur {
            Some(cur) if !newer(&e, &cur) => {
                lost = Some(e.ptr);
                None
            }
            _ => Some(e),
        });
        replaced.map(|old| old.ptr).or(lost)
    }

    /// Repoints `key` from `old` to `new` if it still points at `old`.
    pub(crate) fn repoint(&mut self, key: &[u8], old: &ValuePointer, new: ValuePointer) -> bool {
        match self.find(key) {
            Some(i) if self.slots[i].entry().ptr == *old => {
                let mut e = self.slots[i].entry();
                e.ptr = new;
                self.slots[i].set(&e);
                true
            }
            _ => false,
        }
    }

    /// Forgets `key` if it still points at `ptr`.
    pub(crate) fn remove_if(&mut self, key: &[u8], ptr: &ValuePointer) -> bool {
        let h = self.hasher.hash(key);
        let KeyMap {
            index,
            slots,
            arena,
            ..
        } = self;
        let Ok(found) = index.find_entry(h, |&i| key_of(slots, arena, i) == key) else {
            return false;
        };
        let i = *found.get() as usize;
        if slots[i].entry().ptr != *ptr {
            return false;
        }
        found.remove();
        self.dead += slots[i].key_len as usize;
        let last = slots.len() - 1;
        if i != last {
            // The last slot moves into the gap: its index entry follows.
            let h = self.hasher.hash(key_of(slots, arena, last as u32));
            if let Some(n) = index.find_mut(h, |&n| n as usize == last) {
                *n = Self::slot_number(i);
            }
        }
        slots.swap_remove(i);
        self.reclaim();
        true
    }

    /// After a removal: compacts the arena when most of it is dead, and
    /// gives back the room of slots and index entries long unused.
    fn reclaim(&mut self) {
        if self.dead >= COMPACT_MIN && self.dead > self.arena.len() / 2 {
            let mut arena = Vec::with_capacity(self.arena.len() - self.dead);
            for s in &mut self.slots {
                let key = self.arena.get(s.key_range()).unwrap_or_default();
                s.key_at = (s.key_at & !KEY_AT_MASK) | arena.len() as u64;
                arena.extend_from_slice(key);
            }
            self.arena = arena;
            self.dead = 0;
        }
        let len = self.slots.len();
        if self.slots.capacity() > 4 * len.max(64) {
            self.slots.shrink_to(2 * len);
        }
        if self.index.capacity() > 4 * len.max(64) {
            self.rebuild_index(2 * len);
        }
    }

    /// Bytes allocated for the map: index, slots and arena, by capacity
    /// (room reserved and not yet used counts too).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.index.allocation_size()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.arena.capacity()
    }

    /// Arena bytes in use, dead ones included, and the dead ones.
    #[cfg(test)]
    pub(crate) fn arena_use(&self) -> (usize, usize) {
        (self.arena.len(), self.dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn e(seq: u64, segment: u64, put: bool) -> KeyEntry {
        KeyEntry {
            seq,
            ptr: ValuePointer {
                segment,
                offset: seq * 100,
                len: 40 + seq as u32,
                raw_len: None,
            },
            put,
        }
    }

    #[test]
    fn a_slot_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    /// The raw length of a compressed value rides in the slot's spare bits
    /// without disturbing the key, sequence number, offset or put bit, and
    /// survives an arena compaction.
    #[test]
    fn a_slot_keeps_the_raw_value_length() {
        let mut m = KeyMap::default();
        let seq = (1 << 56) - 1;
        let mut x = KeyEntry {
            seq,
            ptr: ValuePointer::raw(9, (1 << 56) - 3, 4000),
            put: true,
        };
        for raw in [None, Some(1), Some(0xffff), Some(0x1_0000), Some(u32::MAX)] {
            x.ptr.raw_len = raw;
            m.insert(b"k", x);
            assert_eq!(
                m.get(b"k").map(|g| (g.seq, g.ptr, g.put)),
                Some((seq, x.ptr, true))
            );
        }
        x.put = false;
        x.ptr.raw_len = Some(0xdead_beef);
        m.insert(b"k", x);
        // Enough dead key bytes that the arena is compacted.
        let big = |i: u32| format!("{i:0>1000}").into_bytes();
        for i in 0..100 {
            m.insert(&big(i), e(1, 1, true));
        }
        for i in 0..100 {
            assert!(m.remove_if(&big(i), &e(1, 1, true).ptr));
        }
        let (used, dead) = m.arena_use();
        assert!(
            used - dead < 1000 && used < 100 * 1000,
            "the arena was compacted"
        );
        let got = m.get(b"k").unwrap();
        assert_eq!((got.seq, got.ptr, got.put), (seq, x.ptr, false));
    }

    /// Empty, short and long keys (a 100 KB one) side by side, puts and
    /// tombstones, against a `HashMap` model, across several index rebuilds.
    #[test]
    fn keys_of_any_length_against_a_model() {
        let mut m = KeyMap::default();
        let mut model: HashMap<Vec<u8>, KeyEntry> = HashMap::new();
        let mut keys: Vec<Vec<u8>> = vec![Vec::new(), vec![0], vec![7; 100_000]];
        keys.extend((0..5000u32).map(|i| format!("key-{i:08}").into_bytes()));
        keys.extend((0..300u32).map(|i| vec![(i % 251) as u8; 17 + i as usize]));
        for (n, k) in keys.iter().enumerate() {
            let v = e(n as u64, n as u64 % 7, n % 5 != 0);
            assert_eq!(m.insert(k, v), None);
            model.insert(k.clone(), v);
        }
        for (n, k) in keys.iter().enumerate().step_by(3) {
            let v = e(10_000 + n as u64, 9, n % 2 == 0);
            assert_eq!(m.insert(k, v), model.insert(k.clone(), v));
        }
        assert_eq!(m.len(), model.len());
        for (k, v) in &model {
            assert_eq!(m.get(k), Some(*v), "{k:?}");
        }
        assert_eq!(m.get(b"absent"), None);
        assert_eq!(m.get(&[7; 99_999]), None);
        let listed: HashMap<Vec<u8>, KeyEntry> = m.iter().map(|(k, e)| (k.to_vec(), e)).collect();
        assert_eq!(listed, model);
        // Overwrites took no arena space.
        let key_bytes: usize = keys.iter().map(Vec::len).sum();
        assert_eq!(m.arena_use(), (key_bytes, 0));
    }

    #[test]
    fn replace_touches_only_present_keys() {
        let mut m = KeyMap::default();
        assert_eq!(m.replace(b"a", e(1, 1, false)), None);
        assert!(m.is_empty());
        m.insert(b"a", e(1, 1, true));
        assert_eq!(m.replace(b"a", e(2, 1, false)), Some(e(1, 1, true)));
        assert_eq!(m.get(b"a"), Some(e(2, 1, false)));
    }

    /// The highest sequence number wins; on a tie the lower segment; the
    /// loser's pointer is what `offer` returns.
    #[test]
    fn offer_keeps_the_newest_and_names_the_loser() {
        let mut m = KeyMap::default();
        assert_eq!(m.offer(b"k", e(5, 3, true)), None);
        assert_eq!(m.offer(b"k", e(4, 1, true)), Some(e(4, 1, true).ptr));
        assert_eq!(m.offer(b"k", e(6, 9, false)), Some(e(5, 3, true).ptr));
        assert_eq!(m.get(b"k"), Some(e(6, 9, false)));
        // A tie: the lower segment wins, whichever comes first.
        assert_eq!(m.offer(b"k", e(6, 10, false)), Some(e(6, 10, false).ptr));
        assert_eq!(m.offer(b"k", e(6, 2, false)), Some(e(6, 9, false).ptr));
        assert_eq!(m.get(b"k"), Some(e(6, 2, false)));
    }

    #[test]
    fn repoint_and_remove_only_where_the_key_still_points() {
        let mut m = KeyMap::default();
        m.insert(b"a", e(1, 1, true));
        m.insert(b"b", e(2, 1, false));
        assert!(!m.repoint(b"a", &e(9, 1, true).ptr, e(9, 5, true).ptr));
        assert!(m.repoint(b"a", &e(1, 1, true).ptr, e(9, 5, true).ptr));
        assert_eq!(
            m.get(b"a").map(|x| (x.seq, x.ptr, x.put)),
            Some((1, e(9, 5, true).ptr, true))
        );
        assert!(!m.remove_if(b"b", &e(3, 1, false).ptr));
        assert!(!m.remove_if(b"zz", &e(2, 1, false).ptr));
        assert!(m.remove_if(b"b", &e(2, 1, false).ptr));
        assert_eq!(m.get(b"b"), None);
        assert_eq!(m.len(), 1);
        assert!(m.contains_key(b"a"));
    }

    /// Removing most keys compacts the arena (its dead bytes never exceed
    /// half of it past the minimum) and keeps every other key findable
    /// through the moved slots; keys inserted again afterwards are found.
    #[test]
    fn removals_reclaim_the_arena() {
        let mut m = KeyMap::default();
        let key = |i: u32| format!("{i:0>40}").into_bytes();
        let n = 20_000u32;
        for i in 0..n {
            m.insert(&key(i), e(u64::from(i), 1, i % 2 == 0));
        }
        let full = m.allocated_bytes();
        let mut compacted = false;
        for i in (0..n).filter(|i| i % 10 != 0) {
            let (before, _) = m.arena_use();
            assert!(m.remove_if(&key(i), &e(u64::from(i), 1, true).ptr));
            let (len, dead) = m.arena_use();
            compacted |= len < before;
            assert!(dead < COMPACT_MIN || dead <= len / 2, "{dead} of {len}");
        }
        assert!(compacted);
        assert_eq!(m.len(), (n / 10) as usize);
        for i in 0..n {
            let want = (i % 10 == 0).then(|| e(u64::from(i), 1, i % 2 == 0));
            assert_eq!(m.get(&key(i)), want, "{i}");
        }
        assert!(
            m.allocated_bytes() < full / 2,
            "{} of {full}",
            m.allocated_bytes()
        );
        for i in 0..100 {
            m.insert(&key(i), e(1_000_000, 2, true));
        }
        assert_eq!(m.get(&key(1)), Some(e(1_000_000, 2, true)));
        assert_eq!(m.len(), (n / 10) as usize + 90);
    }

    #[test]
    fn reserve_and_fit_keep_every_key() {
        let mut m = KeyMap::default();
        m.reserve(100_000, 1_000_000);
        let reserved = m.allocated_bytes();
        for i in 0..1000u64 {
            m.insert(&i.to_le_bytes(), e(i, 1, true));
        }
        assert_eq!(
            m.allocated_bytes(),
            reserved,
            "no growth within the reservation"
        );
        m.fit();
        // 2048 buckets of 5 bytes, 1000 slots of 40 and 8000 key bytes.
        assert!(m.allocated_bytes() < 70_000, "{}", m.allocated_bytes());
        assert!((0..1000u64).all(|i| m.get(&i.to_le_bytes()) == Some(e(i, 1, true))));
        for i in 1000..3000u64 {
            m.insert(&i.to_le_bytes(), e(i, 2, false));
        }
        assert!((0..3000u64).all(|i| m.get(&i.to_le_bytes()).is_some_and(|x| x.seq == i)));
    }
}
