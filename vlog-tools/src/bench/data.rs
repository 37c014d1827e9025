//! The keys and values a benchmark writes, and what it expects to read.
//!
//! Keys are `key` and the index as 16 decimal digits (19 bytes). A value is
//! its key's index (8 bytes, little-endian), its version (4 bytes) and a
//! slice of a pool chosen by both, so every read can be checked against
//! the version it must be at least. With [`ValueKind::Random`] (the
//! default) the pool is random bytes and values do not compress; with
//! [`ValueKind::Json`] it is JSON-like records (repeated field names, a
//! skewed vocabulary, seeded) and values are 1 to 8 KiB.
//! [`Expect`] keeps, per key, the version last written (or that the key
//! was never written or was deleted), and the live user bytes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bytes of the value pool that values are cut from.
const POOL_LEN: usize = 8 << 20;

/// Bytes of a key.
pub const KEY_LEN: usize = 19;

/// Writes key `i` into `buf`.
pub fn key_of(i: u64, buf: &mut Vec<u8>) {
    use std::io::Write;
    buf.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "key{i:016}");
}

/// The index of key `k`, if it is one of ours.
pub fn index_of(k: &[u8]) -> Option<u64> {
    std::str::from_utf8(k)
        .ok()?
        .strip_prefix("key")?
        .parse()
        .ok()
}

/// A good 64-bit mix (splitmix64's finalizer).
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// How value sizes are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueDist {
    /// Every value is --value-size bytes.
    Fixed,
    /// Uniform in [--value-size / 2, --value-size * 3 / 2] (mean
    /// --value-size), fixed per key and version.
    Uniform,
}

/// What values are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// Random bytes: nothing to compress.
    Random,
    /// JSON-like records, 1 to 8 KiB (uniform, fixed per key and version;
    /// --value-size and --value-dist are ignored): the same dozen field
    /// names in every record, words from a vocabulary of 4,096 drawn with
    /// a strong skew (a few words most of the time), numbers. Compressible,
    /// and more so with a dictionary.
    Json,
}

/// The value generator.
pub struct Values {
    pool: Vec<u8>,
    size: usize,
    dist: ValueDist,
    seed: u64,
    kind: ValueKind,
}

/// Sizes of [`ValueKind::Json`] values.
const JSON_MIN: usize = 1 << 10;
const JSON_MAX: usize = 8 << 10;

/// `len` bytes of JSON-like records, one per line, from `seed`.
fn json_pool(len: usize, seed: u64) -> Vec<u8> {
    use std::fmt::Write;
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "qua", "dre", "fin", "gal",
        "hop", "jut",
    ];
    let word = |n: u64| {
        let mut w = String::new();
        let mut n = n;
        for _ in 0..2 + n % 3 {
            w.push_str(SYLLABLES[(n % 16) as usize]);
            n /= 16;
        }
        w
    };
    let mut x = splitmix64(seed ^ 0x4a53_4f4e) | 1;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    // Skewed: the cube of a uniform draw puts most picks on a few words.
    let mut skewed = |n: u64| {
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * n as f64) as u64
    };
    let mut out = String::with_capacity(len + 512);
    let mut id = 0u64;
    while out.len() < len {
        id += 1;
        let _ = write!(
            out,
            r#"{{"id":{id},"user":"{}","email":"{}@{}.example","status":"{}","score":{},"active":{},"tags":["{}","{}","{}"],"address":{{"city":"{}","zip":"{:05}"}},"note":"{} {} {} {}"}}"#,
            word(skewed(4096)),
            word(skewed(4096)),
            word(skewed(16)),
            ["active", "pending", "closed", "banned"][skewed(4) as usize],
            skewed(1000),
            skewed(2) == 0,
            word(skewed(64)),
            word(skewed(64)),
            word(skewed(64)),
            word(skewed(256)),
            skewed(100_000),
            word(skewed(4096)),
            word(skewed(4096)),
            word(skewed(4096)),
            word(skewed(4096)),
        );
        out.push('\n');
    }
    let mut b = out.into_bytes();
    b.truncate(len);
    b
}

/// The index and version bytes at the head of a value.
const HEAD: usize = 12;

impl Values {
    #[cfg(test)]
    pub fn new(size: usize, dist: ValueDist, seed: u64) -> Values {
        Values::of_kind(size, dist, seed, ValueKind::Random)
    }

    /// [`Values::new`] of the given kind.
    pub fn of_kind(size: usize, dist: ValueDist, seed: u64, kind: ValueKind) -> Values {
        if kind == ValueKind::Json {
            return Values {
                pool: json_pool(POOL_LEN + JSON_MAX * 2, seed),
                size: (JSON_MIN + JSON_MAX) / 2,
                dist,
                seed,
                kind,
            };
        }
        let len = POOL_LEN + size * 2;
        let mut pool = Vec::with_capacity(len + 8);
        // xorshift64*: fast, and its output does not compress.
        let mut x = splitmix64(seed) | 1;
        while pool.len() < len {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            pool.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        pool.truncate(len);
        Values {
            pool,
            size,
            dist,
            seed,
            kind,
        }
    }

    /// `n` values to train a dictionary from (versions no workload
    /// writes, so they are not the values stored).
    pub fn samples(&self, n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut v = Vec::new();
                self.fill(i, u32::MAX - 1, &mut v);
                v
            })
            .collect()
    }

    /// The mean value size.
    pub fn mean_size(&self) -> usize {
        self.size
    }

    /// The size of version `version` of value `i`.
    pub fn size_of(&self, i: u64, version: u32) -> usize {
        if self.kind == ValueKind::Json {
            let h = splitmix64(i ^ (u64::from(version) << 40) ^ self.seed ^ 0x6a73);
            return JSON_MIN + (h % (JSON_MAX - JSON_MIN + 1) as u64) as usize;
        }
        match self.dist {
            ValueDist::Fixed => self.size,
            ValueDist::Uniform => {
                let lo = self.size / 2;
                let span = (self.size - lo) * 2 + 1;
                let h = splitmix64(i ^ (u64::from(version) << 40) ^ self.seed ^ 0xabcd);
                lo + (h % span as u64) as usize
            }
        }
    }

    /// Writes version `version` of value `i` into `buf`.
    pub fn fill(&self, i: u64, version: u32, buf: &mut Vec<u8>) {
        buf.clear();
        let size = self.size_of(i, version);
        let mut head = [0u8; HEAD];
        head[..8].copy_from_slice(&i.to_le_bytes());
        head[8..].copy_from_slice(&version.to_le_bytes());
        buf.extend_from_slice(&head[..size.min(HEAD)]);
        if size > HEAD {
            let off = (splitmix64(i ^ self.seed ^ splitmix64(u64::from(version))) % POOL_LEN as u64)
                as usize;
            buf.extend_from_slice(&self.pool[off..off + size - HEAD]);
        }
    }

    /// Checks `v` as the value of key `i` at version `at_least` or later;
    /// returns the version it is at. Values too short to hold a version
    /// are checked by length and index only.
    pub fn check(
        &self,
        i: u64,
        at_least: u32,
        v: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<u32, String> {
        if v.len() < HEAD {
            // Too short to hold a version: any size the key's versions may
            // have (a later version may have another), and the index.
            let sizes = match self.dist {
                ValueDist::Fixed => self.size..=self.size,
                ValueDist::Uniform => self.size / 2..=self.size + (self.size - self.size / 2),
            };
            let idx = &i.to_le_bytes()[..v.len().min(8)];
            if !sizes.contains(&v.len()) || &v[..idx.len()] != idx {
                return Err(format!("key {i}: wrong value ({} bytes)", v.len()));
            }
            return Ok(at_least);
        }
        let index = u64::from_le_bytes(v[..8].try_into().unwrap_or_default());
        let version = u32::from_le_bytes(v[8..12].try_into().unwrap_or_default());
        if index != i {
            return Err(format!("key {i}: the value of key {index}"));
        }
        if version < at_least {
            return Err(format!(
                "key {i}: version {version}, but version {at_least} was acknowledged"
            ));
        }
        self.fill(i, version, scratch);
        if scratch.as_slice() != v {
            return Err(format!(
                "key {i}: wrong bytes for version {version} ({} bytes)",
                v.len()
            ));
        }
        Ok(version)
    }

    /// The cheap check of a scan: the index at the head.
    pub fn looks_like(&self, i: u64, v: &[u8]) -> bool {
        let n = v.len().min(8);
        v[..n] == i.to_le_bytes()[..n]
    }
}

/// Per-key state: never written.
pub const UNWRITTEN: u32 = u32::MAX;
/// Per-key state flag: deleted; the low bits keep the version it was
/// deleted at, so the next write writes a later one and a deleted value
/// that comes back is caught.
const DELETED_BIT: u32 = 1 << 31;

/// Whether state `s` is a deleted key.
pub fn is_deleted(s: u32) -> bool {
    s != UNWRITTEN && s & DELETED_BIT != 0
}

/// The version a deleted key was deleted at.
pub fn deleted_version(s: u32) -> u32 {
    s & !DELETED_BIT
}

/// What the benchmark expects to read back.
pub struct Expect {
    versions: Vec<AtomicU32>,
    /// Keys 0..keys exist as indexes (written or not); inserts raise it.
    keys: AtomicU64,
    live_keys: AtomicU64,
    live_bytes: AtomicU64,
}

impl Expect {
    /// Room for `capacity` keys, `keys` of them in the key space.
    pub fn new(keys: u64, capacity: u64) -> Expect {
        let cap = capacity.max(keys) as usize;
        let mut versions = Vec::with_capacity(cap);
        versions.resize_with(cap, || AtomicU32::new(UNWRITTEN));
        Expect {
            versions,
            keys: AtomicU64::new(keys),
            live_keys: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
        }
    }

    /// Keys in the key space (written or not).
    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::Acquire)
    }

    /// A fresh key index for an insert; `None` when the room is used up.
    pub fn new_key(&self) -> Option<u64> {
        let i = self.keys.fetch_add(1, Ordering::AcqRel);
        if i as usize >= self.versions.len() {
            self.keys.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(i)
    }

    /// The state of key `i`.
    pub fn version(&self, i: u64) -> u32 {
        self.versions
            .get(i as usize)
            .map_or(UNWRITTEN, |v| v.load(Ordering::Acquire))
    }

    /// The version the next write of key `i` writes (the key's one writer
    /// asks).
    pub fn next_version(&self, i: u64) -> u32 {
        match self.version(i) {
            UNWRITTEN => 0,
            s if is_deleted(s) => deleted_version(s) + 1,
            v => v + 1,
        }
    }

    /// Records that key `i` is at `version` (its write was acknowledged).
    pub fn wrote(&self, i: u64, version: u32, values: &Values) {
        debug_assert!(version & DELETED_BIT == 0, "2^31 versions of one key");
        let old = self.versions[i as usize].swap(version, Ordering::AcqRel);
        let new_bytes = (KEY_LEN + values.size_of(i, version)) as u64;
        match old {
            s if s == UNWRITTEN || is_deleted(s) => {
                self.live_keys.fetch_add(1, Ordering::Relaxed);
            }
            v => {
                let old_bytes = (KEY_LEN + values.size_of(i, v)) as u64;
                self.live_bytes.fetch_sub(old_bytes, Ordering::Relaxed);
            }
        }
        self.live_bytes.fetch_add(new_bytes, Ordering::Relaxed);
    }

    /// Records that key `i` was deleted.
    pub fn deleted(&self, i: u64, values: &Values) {
        // The key's one writer calls this: no other write races the update.
        let slot = &self.versions[i as usize];
        let old = slot.load(Ordering::Acquire);
        if old == UNWRITTEN || is_deleted(old) {
            return;
        }
        slot.store(old | DELETED_BIT, Ordering::Release);
        self.live_keys.fetch_sub(1, Ordering::Relaxed);
        self.live_bytes
            .fetch_sub((KEY_LEN + values.size_of(i, old)) as u64, Ordering::Relaxed);
    }

    /// Keys that hold a value.
    pub fn live_keys(&self) -> u64 {
        self.live_keys.load(Ordering::Relaxed)
    }

    /// Key + value bytes of the keys that hold a value.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_checks_against_its_version_and_no_other() {
        for dist in [ValueDist::Fixed, ValueDist::Uniform] {
            let values = Values::new(4096, dist, 7);
            let (mut v, mut scratch) = (Vec::new(), Vec::new());
            values.fill(5, 3, &mut v);
            assert_eq!(values.check(5, 3, &v, &mut scratch), Ok(3));
            assert_eq!(values.check(5, 2, &v, &mut scratch), Ok(3));
            assert!(values.check(5, 4, &v, &mut scratch).is_err());
            assert!(values.check(6, 0, &v, &mut scratch).is_err());
            let mut bad = v.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(values.check(5, 3, &bad, &mut scratch).is_err());
        }
    }

    #[test]
    fn distributed_sizes_stay_in_their_range_and_average_out() {
        let values = Values::new(1000, ValueDist::Uniform, 1);
        let sizes: Vec<usize> = (0..10_000).map(|i| values.size_of(i, 0)).collect();
        assert!(sizes.iter().all(|&s| (500..=1500).contains(&s)));
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((mean - 1000.0).abs() < 20.0, "mean {mean}");
        assert!(sizes.iter().any(|&s| s != sizes[0]), "every size the same");
    }

    #[test]
    fn live_bytes_follow_writes_and_deletes() {
        let values = Values::new(100, ValueDist::Uniform, 1);
        let e = Expect::new(10, 12);
        e.wrote(1, 0, &values);
        e.wrote(1, 1, &values);
        e.wrote(2, 0, &values);
        assert_eq!(e.live_keys(), 2);
        let want = (2 * KEY_LEN + values.size_of(1, 1) + values.size_of(2, 0)) as u64;
        assert_eq!(e.live_bytes(), want);
        e.deleted(1, &values);
        e.deleted(1, &values);
        assert_eq!(e.live_keys(), 1);
        // A deleted key's next write is a later version than the deleted one.
        assert!(is_deleted(e.version(1)));
        assert_eq!(deleted_version(e.version(1)), 1);
        assert_eq!(e.next_version(1), 2);
        e.wrote(1, 2, &values);
        assert_eq!(e.live_keys(), 2);
        e.deleted(1, &values);
        assert_eq!(e.next_version(2), 1);
        assert_eq!(e.new_key(), Some(10));
        assert_eq!(e.new_key(), Some(11));
        assert_eq!(e.new_key(), None);
        assert_eq!(e.keys(), 12);
    }

    #[test]
    fn json_values_are_1_to_8_kib_check_and_compress() {
        let values = Values::of_kind(4096, ValueDist::Fixed, 3, ValueKind::Json);
        let mut v = Vec::new();
        let mut scratch = Vec::new();
        let mut all = Vec::new();
        for i in 0..200 {
            values.fill(i, 2, &mut v);
            assert!((JSON_MIN..=JSON_MAX).contains(&v.len()), "{}", v.len());
            assert_eq!(values.check(i, 1, &v, &mut scratch), Ok(2));
            all.extend_from_slice(&v);
        }
        // Field names repeat in every record (the CLI test measures the
        // compression itself, through the engine).
        let users = all.windows(7).filter(|w| w == b"\"user\":").count();
        assert!(users > 200, "{users}");
        assert_eq!(values.samples(5).len(), 5);
    }
}
