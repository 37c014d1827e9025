//! The peer engines `bench --engines` compares wisckey with, each behind its
//! cargo feature (CI builds neither): RocksDB plain and with integrated
//! BlobDB (`rocksdb`), fjall 3 plain and with key-value separation
//! (`fjall`). Both implement [`super::store::Store`] and are opened from the
//! same [`super::store::StoreConfig`] as wisckey.

#[cfg(feature = "fjall")]
pub mod fjall;
#[cfg(feature = "rocksdb")]
pub mod rocks;

/// A smoke test of a peer store, run by hand (CI builds neither feature):
/// `cargo test --release -p vlog-tools --features peers peers::`.
#[cfg(test)]
pub(crate) mod smoke {
    use super::super::store::{EngineBytes, EngineKind, Store, StoreConfig};
    use anyhow::Result;
    use std::path::Path;

    /// Keys written.
    pub const KEYS: usize = 2_000;
    /// Bytes of every value.
    pub const VALUE: usize = 4_096;

    pub fn key(i: usize) -> Vec<u8> {
        format!("key{i:08}").into_bytes()
    }

    pub fn value(i: usize) -> Vec<u8> {
        (0..VALUE).map(|j| (i * 31 + j * 7) as u8).collect()
    }

    /// The user bytes the smoke test writes (keys and values, the delete's
    /// key).
    pub fn user_bytes() -> u64 {
        (KEYS * (key(0).len() + VALUE) + key(0).len()) as u64
    }

    pub fn config(dir: &Path) -> StoreConfig {
        StoreConfig {
            dir: dir.to_path_buf(),
            // Small, so that the 8 MiB written flush several memtables.
            memtable_size: 1 << 20,
            sync: false,
            compression: false,
            value_threshold: 1_024,
            wisckey: wisckey::Options::default(),
            value_compression: wisckey::ValueCompression::None,
            dictionary_samples: Vec::new(),
        }
    }

    /// Writes, reads, scans, deletes, flushes, settles and reopens a store
    /// of `kind`; returns its byte counters before the close.
    pub fn run(
        kind: EngineKind,
        open: &dyn Fn(&StoreConfig) -> Result<Box<dyn Store>>,
    ) -> Result<Option<EngineBytes>> {
        let dir = tempfile::tempdir()?;
        let cfg = config(dir.path());
        let store = open(&cfg)?;
        assert_eq!(store.kind(), kind);
        eprintln!("{}: {}", kind.name(), store.describe());

        // Half one by one, half in batches of 100.
        for i in 0..KEYS / 2 {
            store.put(&key(i), &value(i))?;
        }
        for chunk in (KEYS / 2..KEYS).collect::<Vec<_>>().chunks(100) {
            let kvs: Vec<(Vec<u8>, Vec<u8>)> = chunk.iter().map(|&i| (key(i), value(i))).collect();
            let items: Vec<(&[u8], &[u8])> = kvs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
            store.put_batch(&items)?;
        }
        for i in 0..KEYS {
            assert_eq!(store.get(&key(i))?, Some(value(i)), "key {i}");
        }
        assert_eq!(store.get(b"nope")?, None);

        let mut keys: Vec<Vec<u8>> = (0..KEYS).step_by(41).map(key).collect();
        keys.insert(3, b"missing".to_vec());
        let got = store.multi_get(&keys)?;
        assert_eq!(got.len(), keys.len());
        assert_eq!(got[3], None);
        for (k, v) in keys.iter().zip(&got) {
            if k != b"missing" {
                let i: usize = std::str::from_utf8(&k[3..])?.parse()?;
                assert_eq!(v.as_deref(), Some(&value(i)[..]));
            }
        }

        check_scan(&*store, 500, 100)?;
        let mut seen = 0;
        let visited = store.scan(&key(10), usize::MAX, &mut |_, _| {
            seen += 1;
            Ok(seen < 10)
        })?;
        assert_eq!(visited, 10);

        store.delete(&key(7))?;
        assert_eq!(store.get(&key(7))?, None);

        store.flush()?;
        store.settle()?;
        assert_eq!(store.get(&key(7))?, None);
        assert_eq!(store.get(&key(1_999))?, Some(value(1_999)));
        check_scan(&*store, 1_200, 100)?;
        assert_eq!(
            store.scan(b"", usize::MAX, &mut |_, _| Ok(true))?,
            KEYS as u64 - 1
        );

        let bytes = store.engine_bytes();
        eprintln!(
            "{}: engine bytes {bytes:?}, user bytes {}",
            kind.name(),
            user_bytes()
        );
        store.close()?;

        let store = open(&cfg)?;
        assert_eq!(store.get(&key(7))?, None);
        assert_eq!(store.get(&key(1_234))?, Some(value(1_234)));
        store.close()?;
        Ok(bytes)
    }

    /// A scan of `n` entries from key `from`: the keys in order, their values.
    fn check_scan(store: &dyn Store, from: usize, n: usize) -> Result<()> {
        let mut next = from;
        let visited = store.scan(&key(from), n, &mut |k, v| {
            assert_eq!(k, &key(next)[..]);
            assert_eq!(v, &value(next)[..]);
            next += 1;
            Ok(true)
        })?;
        assert_eq!(visited, n as u64);
        assert_eq!(next, from + n);
        Ok(())
    }
}
