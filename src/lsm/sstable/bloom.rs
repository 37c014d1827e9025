//! The bloom filter over user parts (see the format in the module above).

use xxhash_rust::xxh3::xxh3_64;

/// The largest number of probes a filter may use.
const MAX_PROBES: u8 = 30;

/// The probe count for `bits_per_key`: round(bits * ln 2), clamped to 1..=30.
fn probes_for(bits_per_key: u32) -> u8 {
    let k = (f64::from(bits_per_key) * std::f64::consts::LN_2).round();
    k.clamp(1.0, f64::from(MAX_PROBES)) as u8
}

/// The hash of a user part, as stored by the builder.
pub(crate) fn hash(user_part: &[u8]) -> u64 {
    xxh3_64(user_part)
}

/// Collects key hashes, then lays out the filter.
#[derive(Debug)]
pub(crate) struct BloomBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// `bits_per_key` must be > 0.
    pub(crate) fn new(bits_per_key: u32) -> Self {
        BloomBuilder {
            bits_per_key: bits_per_key.max(1),
            hashes: Vec::new(),
        }
    }

    /// Adds the hash of one user part (the caller skips repeats of the same
    /// user part).
    pub(crate) fn add_hash(&mut self, h: u64) {
        self.hashes.push(h);
    }

    /// Bytes the filter would take if finished now.
    #[cfg(test)]
    pub(crate) fn estimated_size(&self) -> usize {
        Self::byte_len(self.hashes.len(), self.bits_per_key) + 1
    }

    fn byte_len(n: usize, bits_per_key: u32) -> usize {
        let bits = (n as u64).saturating_mul(u64::from(bits_per_key)).max(64);
        bits.div_ceil(8) as usize
    }

    /// The encoded filter: bit array then the probe count.
    pub(crate) fn finish(self) -> Vec<u8> {
        let bytes = Self::byte_len(self.hashes.len(), self.bits_per_key);
        let k = probes_for(self.bits_per_key);
        let mut out = vec![0u8; bytes + 1];
        let nbits = (bytes as u64) * 8;
        for h in self.hashes {
            for bit in probe_bits(h, k, nbits) {
                out[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        out[bytes] = k;
        out
    }
}

fn probe_bits(h: u64, k: u8, nbits: u64) -> impl Iterator<Item = u64> {
    let h1 = h & 0xffff_ffff;
    let h2 = h >> 32;
    (0..u64::from(k)).map(move |i| (h1 + i * h2) % nbits)
}

/// A decoded filter, kept in memory by the table reader.
#[derive(Debug, Clone)]
pub(crate) struct BloomFilter {
    bits: Vec<u8>,
    k: u8,
}

impl BloomFilter {
    /// Decodes a filter block; `Err` names what is wrong.
    pub(crate) fn decode(mut data: Vec<u8>) -> Result<BloomFilter, String> {
        let Some(k) = data.pop() else {
            return Err("empty filter block".into());
        };
        if k == 0 || k > MAX_PROBES {
            return Err(format!("filter probe count {k} out of range"));
        }
        if data.len() < 8 {
            return Err(format!("filter of {} bytes is too short", data.len()));
        }
        Ok(BloomFilter { bits: data, k })
    }

    /// Heap bytes the filter holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bits.capacity()
    }

    /// False only if no key with this user part was added.
    pub(crate) fn may_contain(&self, user_part: &[u8]) -> bool {
        self.may_contain_hash(hash(user_part))
    }

    pub(crate) fn may_contain_hash(&self, h: u64) -> bool {
        let nbits = (self.bits.len() as u64) * 8;
        probe_bits(h, self.k, nbits)
            .all(|bit| self.bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Vec<u8> {
        let mut k = 7u32.to_be_bytes().to_vec();
        k.extend_from_slice(format!("user-key-{i}").as_bytes());
        k
    }

    #[test]
    fn no_false_negatives_and_low_false_positive_rate() {
        for n in [0u32, 1, 10, 1000, 10_000] {
            let mut b = BloomBuilder::new(10);
            for i in 0..n {
                b.add_hash(hash(&key(i)));
            }
            let est = b.estimated_size();
            let bytes = b.finish();
            assert_eq!(bytes.len(), est);
            assert_eq!(*bytes.last().unwrap(), 7);
            let f = BloomFilter::decode(bytes).unwrap();
            for i in 0..n {
                assert!(f.may_contain(&key(i)), "false negative for {i}");
            }
            if n >= 1000 {
                let fp = (0..10_000u32)
                    .filter(|i| f.may_contain(&key(1_000_000 + i)))
                    .count();
                assert!(fp < 200, "{fp} false positives of 10000 with {n} keys");
            }
        }
    }

    #[test]
    fn probe_counts() {
        assert_eq!(probes_for(1), 1);
        assert_eq!(probes_for(10), 7);
        assert_eq!(probes_for(100), 30);
    }

    #[test]
    fn hostile_filters() {
        assert!(BloomFilter::decode(vec![]).is_err());
        assert!(BloomFilter::decode(vec![0; 9]).is_err());
        assert!(BloomFilter::decode(vec![0, 0, 3]).is_err());
        let mut v = vec![0u8; 8];
        v.push(31);
        assert!(BloomFilter::decode(v).is_err());
        let mut v = vec![0xffu8; 8];
        v.push(30);
        let f = BloomFilter::decode(v).unwrap();
        assert!(f.may_contain(b"anything"));
    }
}
