//! RocksDB (crate `rocksdb` 0.25, RocksDB 11.8) as a [`Store`]: `rocksdb`
//! (plain leveled compaction, RocksDB's defaults otherwise) and
//! `rocksdb-blob` (the same with integrated BlobDB).
//!
//! What the shared [`StoreConfig`] becomes, for both:
//!
//! - `Options::create_if_missing(true)`,
//!   `set_write_buffer_size(cfg.memtable_size)`;
//! - `set_compression_type(None)`, or `Lz4` with `cfg.compression` (the
//!   bottommost level follows it, RocksDB's default);
//! - the WAL on (RocksDB's default), `WriteOptions::set_sync(cfg.sync)` on
//!   every write;
//! - `enable_statistics()`, for [`Store::engine_bytes`].
//!
//! `rocksdb-blob` adds `set_enable_blob_files(true)`,
//! `set_min_blob_size(cfg.value_threshold)`,
//! `set_blob_compression_type(None or Lz4, as above)`,
//! `set_enable_blob_gc(true)` and `set_blob_gc_age_cutoff(0.25)`.

use super::super::store::{EngineBytes, EngineKind, Store, StoreConfig, Visit};
use anyhow::{Context, Result};
use rocksdb::statistics::Ticker;
use rocksdb::{properties, DBCompressionType, FlushOptions, Options, WriteBatch, WriteOptions, DB};
use std::sync::Mutex;
use std::time::Duration;

/// Time between two looks at the background work.
const POLL: Duration = Duration::from_millis(50);

/// A RocksDB database, default column family only.
pub struct RocksStore {
    kind: EngineKind,
    db: DB,
    /// The options the database was opened with: their statistics object is
    /// the one the database counts into. `Options` is `Send` but not `Sync`,
    /// hence the mutex (taken by `engine_bytes` only).
    options: Mutex<Options>,
    sync: bool,
    description: String,
}

impl RocksStore {
    /// Opens `kind` (`Rocksdb` or `RocksdbBlob`) in `cfg.dir`.
    pub fn open(kind: EngineKind, cfg: &StoreConfig) -> Result<RocksStore> {
        let blob = match kind {
            EngineKind::Rocksdb => false,
            EngineKind::RocksdbBlob => true,
            other => anyhow::bail!("RocksStore cannot open {}", other.name()),
        };
        let compression = if cfg.compression {
            DBCompressionType::Lz4
        } else {
            DBCompressionType::None
        };
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_write_buffer_size(cfg.memtable_size);
        options.set_compression_type(compression);
        options.enable_statistics();
        let mut blobs = String::new();
        if blob {
            options.set_enable_blob_files(true);
            options.set_min_blob_size(cfg.value_threshold as u64);
            options.set_blob_compression_type(compression);
            options.set_enable_blob_gc(true);
            options.set_blob_gc_age_cutoff(0.25);
            blobs = format!(
                ", integrated BlobDB from {} B (blob GC on, age cutoff 0.25)",
                cfg.value_threshold
            );
        }
        let db = DB::open(&options, &cfg.dir)
            .with_context(|| format!("opening RocksDB in {}", cfg.dir.display()))?;
        let description = format!(
            "RocksDB 11.8: leveled compaction (defaults), write buffer {} B, compression {}{}, \
             WAL on, {}",
            cfg.memtable_size,
            if cfg.compression { "lz4" } else { "none" },
            blobs,
            if cfg.sync {
                "sync per write"
            } else {
                "no sync per write"
            },
        );
        Ok(RocksStore {
            kind,
            db,
            options: Mutex::new(options),
            sync: cfg.sync,
            description,
        })
    }

    /// The options of a write. Built per call, as `DB::put` does (the type
    /// is not `Sync`, so one could not be shared by the threads).
    fn write_options(&self) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(self.sync);
        options
    }

    /// One of the database's statistics counters.
    fn ticker(&self, ticker: Ticker) -> u64 {
        let options = self
            .options
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        options.get_ticker_count(ticker)
    }

    /// An integer property of the database, 0 when it has none.
    fn property(&self, name: &properties::PropName) -> Result<u64> {
        Ok(self.db.property_int_value(name)?.unwrap_or(0))
    }
}

impl Store for RocksStore {
    fn kind(&self) -> EngineKind {
        self.kind
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.put_opt(key, value, &self.write_options())?;
        Ok(())
    }

    fn put_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (key, value) in items {
            batch.put(*key, *value);
        }
        self.db.write_opt(batch, &self.write_options())?;
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.db.delete_opt(key, &self.write_options())?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.db
            .multi_get(keys)
            .into_iter()
            .map(|value| Ok(value?))
            .collect()
    }

    fn scan(&self, start: &[u8], limit: usize, f: &mut Visit) -> Result<u64> {
        let mut iter = self.db.raw_iterator();
        iter.seek(start);
        let mut visited = 0;
        while (visited as usize) < limit {
            let Some((key, value)) = iter.item() else {
                break;
            };
            visited += 1;
            if !f(key, value)? {
                break;
            }
            iter.next();
        }
        iter.status()?;
        Ok(visited)
    }

    /// The memtables to tables (waiting for it), then the WAL synced for
    /// what was written meanwhile.
    fn flush(&self) -> Result<()> {
        let mut options = FlushOptions::default();
        options.set_wait(true);
        self.db.flush_opt(&options)?;
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// Polls RocksDB's own view of its background work until no compaction
    /// or flush runs and none is pending.
    fn settle(&self) -> Result<()> {
        loop {
            let busy = self.property(properties::NUM_RUNNING_COMPACTIONS)?
                + self.property(properties::NUM_RUNNING_FLUSHES)?
                + self.property(properties::COMPACTION_PENDING)?
                + self.property(properties::MEM_TABLE_FLUSH_PENDING)?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }

    /// `written` = WAL bytes (`rocksdb.wal.bytes`) + flush output
    /// (`rocksdb.flush.write.bytes`) + compaction output
    /// (`rocksdb.compact.write.bytes`).
    ///
    /// No blob counter is added: the flush and compaction tickers are the
    /// I/O statistics of the job's thread (`IOSTATS(bytes_written)`, which
    /// every `WritableFileWriter` append adds to), and integrated BlobDB
    /// writes its blob files from inside the flush or compaction job, on
    /// that thread, through a `WritableFileWriter`. So they already hold the
    /// blob files; `rocksdb.blobdb.blob.file.bytes.written` counts the same
    /// bytes a second time (the smoke test checks it is covered by the two).
    /// Not counted: the MANIFEST, OPTIONS and info LOG files.
    ///
    /// `gc_written` (`rocksdb-blob` only) = `rocksdb.blobdb.gc.bytes.relocated`,
    /// the blob bytes compactions moved to new blob files as blob GC; it is
    /// the relocated values' size, without the blob records' headers, and is
    /// part of `written` (inside the compaction bytes).
    fn engine_bytes(&self) -> Option<EngineBytes> {
        let written = self.ticker(Ticker::WalFileBytes)
            + self.ticker(Ticker::FlushWriteBytes)
            + self.ticker(Ticker::CompactWriteBytes);
        let gc_written = (self.kind == EngineKind::RocksdbBlob)
            .then(|| self.ticker(Ticker::BlobDbGcBytesRelocated));
        Some(EngineBytes {
            written,
            gc_written,
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    /// The WAL synced, then the database closed (its drop waits for the
    /// background jobs).
    fn close(self: Box<Self>) -> Result<()> {
        self.db.flush_wal(true)?;
        drop(self);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke;
    use super::*;

    fn open(kind: EngineKind) -> impl Fn(&StoreConfig) -> Result<Box<dyn Store>> {
        move |cfg| Ok(Box::new(RocksStore::open(kind, cfg)?) as Box<dyn Store>)
    }

    #[test]
    fn rocksdb_smoke() -> Result<()> {
        let bytes = smoke::run(EngineKind::Rocksdb, &open(EngineKind::Rocksdb))?
            .expect("RocksDB counts its bytes");
        assert!(bytes.written >= smoke::user_bytes(), "{bytes:?}");
        assert!(bytes.gc_written.is_none());
        Ok(())
    }

    #[test]
    fn rocksdb_blob_smoke() -> Result<()> {
        let bytes = smoke::run(EngineKind::RocksdbBlob, &open(EngineKind::RocksdbBlob))?
            .expect("RocksDB counts its bytes");
        assert!(bytes.written >= smoke::user_bytes(), "{bytes:?}");
        assert!(bytes.gc_written.is_some());
        Ok(())
    }

    /// The tickers `engine_bytes` is made of, and the blob files' own
    /// counter: in `rocksdb-blob` the blob bytes are inside the flush and
    /// compaction bytes, not beside them.
    #[test]
    fn rocksdb_blob_bytes_inside_flush_bytes() -> Result<()> {
        for kind in [EngineKind::Rocksdb, EngineKind::RocksdbBlob] {
            let dir = tempfile::tempdir()?;
            let store = RocksStore::open(kind, &smoke::config(dir.path()))?;
            for i in 0..smoke::KEYS {
                store.put(&smoke::key(i), &smoke::value(i))?;
            }
            store.flush()?;
            store.settle()?;
            let wal = store.ticker(Ticker::WalFileBytes);
            let flush = store.ticker(Ticker::FlushWriteBytes);
            let compact = store.ticker(Ticker::CompactWriteBytes);
            let blob = store.ticker(Ticker::BlobDbBlobFileBytesWritten);
            let relocated = store.ticker(Ticker::BlobDbGcBytesRelocated);
            eprintln!(
                "{}: wal {wal} flush {flush} compact {compact} blob files {blob} \
                 gc relocated {relocated} (user {})",
                kind.name(),
                smoke::user_bytes()
            );
            let values = (smoke::KEYS * smoke::VALUE) as u64;
            assert!(wal >= values);
            if kind == EngineKind::RocksdbBlob {
                // Every value went to a blob file, once, at its flush.
                assert!(blob >= values, "blob files {blob}");
                assert!(flush >= blob, "flush {flush} < blob files {blob}");
            } else {
                assert_eq!(blob, 0);
                assert!(flush >= values);
            }
            Box::new(store).close()?;
        }
        Ok(())
    }
}
