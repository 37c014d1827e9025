//! fjall 3 as a [`Store`]: `fjall` (its defaults, one keyspace) and
//! `fjall-kv` (the same with key-value separation).
//!
//! What the shared [`StoreConfig`] becomes:
//!
//! - memtable: `KeyspaceCreateOptions::max_memtable_size(cfg.memtable_size)`;
//! - compression off: data blocks `CompressionPolicy::all(None)`, journal
//!   `journal_compression(None)` (fjall's defaults compress the journal's
//!   values of 4 KiB and more, and data blocks from L2 down, with lz4); with
//!   `cfg.compression` lz4 everywhere (data blocks of every level, journal,
//!   blobs);
//! - `fjall-kv`: `with_kv_separation(Some(KvSeparationOptions::default()
//!   .separation_threshold(cfg.value_threshold).compression(..)))`, the rest
//!   of the separation options (blob file size, GC staleness threshold 0.25,
//!   age cutoff 0.25) fjall's defaults;
//! - durability: fjall's journal is a buffered file. Without `cfg.sync` each
//!   write still flushes that buffer to the OS (`manual_journal_persist`
//!   stays false, so fjall does `PersistMode::Buffer` after every write):
//!   a write survives a crash of the process, not of the machine, as with
//!   RocksDB's WAL without `sync`. With `cfg.sync` every write is followed by
//!   `PersistMode::SyncData` (fdatasync, what RocksDB's `sync` does by
//!   default); a concurrent writer's fdatasync may cover ours, fjall has no
//!   group commit beyond that.
//!
//! fjall keeps no count of the bytes it writes (its `metrics` feature counts
//! block reads and cache hits only), so [`Store::engine_bytes`] is `None`.

use super::super::store::{EngineBytes, EngineKind, Store, StoreConfig, Visit};
use anyhow::{Context, Result};
use fjall::config::CompressionPolicy;
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode,
    Readable,
};
use std::time::Duration;

/// The one keyspace every key goes to.
const KEYSPACE: &str = "bench";

/// Time between two looks at the background work.
const POLL: Duration = Duration::from_millis(50);

/// Consecutive idle looks `settle` wants before it returns (see there).
const QUIET_POLLS: u32 = 4;

/// A fjall database with one keyspace.
pub struct FjallStore {
    kind: EngineKind,
    db: Database,
    ks: Keyspace,
    sync: bool,
    description: String,
}

impl FjallStore {
    /// Opens `kind` (`Fjall` or `FjallKv`) in `cfg.dir`.
    pub fn open(kind: EngineKind, cfg: &StoreConfig) -> Result<FjallStore> {
        let kv = match kind {
            EngineKind::Fjall => false,
            EngineKind::FjallKv => true,
            other => anyhow::bail!("FjallStore cannot open {}", other.name()),
        };
        let compression = if cfg.compression {
            CompressionType::Lz4
        } else {
            CompressionType::None
        };
        let db = Database::builder(&cfg.dir)
            .journal_compression(compression)
            .open()
            .with_context(|| format!("opening fjall in {}", cfg.dir.display()))?;

        let mut options = KeyspaceCreateOptions::default()
            .max_memtable_size(cfg.memtable_size as u64)
            .data_block_compression_policy(CompressionPolicy::all(compression));
        let mut separation = String::new();
        if kv {
            let threshold = u32::try_from(cfg.value_threshold).unwrap_or(u32::MAX);
            let blobs = KvSeparationOptions::default()
                .separation_threshold(threshold)
                .compression(compression);
            separation = format!(
                ", key-value separation from {} B (blob files {} B, GC staleness {}, \
                 age cutoff {})",
                blobs.separation_threshold,
                blobs.file_target_size,
                blobs.staleness_threshold,
                blobs.age_cutoff
            );
            options = options.with_kv_separation(Some(blobs));
        }
        let ks = db
            .keyspace(KEYSPACE, || options)
            .context("opening the fjall keyspace")?;

        let description = format!(
            "fjall 3: one keyspace, leveled (defaults), memtable {} B, compression {}{}, \
             journal {} per write",
            cfg.memtable_size,
            if cfg.compression { "lz4" } else { "none" },
            separation,
            if cfg.sync {
                "fdatasync"
            } else {
                "to OS buffers"
            },
        );
        Ok(FjallStore {
            kind,
            db,
            ks,
            sync: cfg.sync,
            description,
        })
    }

    /// fdatasync of the journal after a write, when the config says `sync`.
    fn persist_write(&self) -> Result<()> {
        if self.sync {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    /// Whether a memtable flush is queued or running.
    fn flushing(&self) -> bool {
        self.db.outstanding_flushes() > 0 || self.ks.sealed_memtable_count() > 0
    }
}

impl Store for FjallStore {
    fn kind(&self) -> EngineKind {
        self.kind
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.ks.insert(key, value)?;
        self.persist_write()
    }

    fn put_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = self.db.batch();
        if self.sync {
            batch = batch.durability(Some(PersistMode::SyncData));
        }
        for (key, value) in items {
            batch.insert(&self.ks, *key, *value);
        }
        batch.commit()?;
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.ks.remove(key)?;
        self.persist_write()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.ks.get(key)?.map(|v| v.to_vec()))
    }

    /// fjall has no batched read: one `get` per key, all from one snapshot
    /// (as RocksDB's `multi_get` reads).
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let snapshot = self.db.snapshot();
        keys.iter()
            .map(|key| Ok(snapshot.get(&self.ks, key)?.map(|v| v.to_vec())))
            .collect()
    }

    fn scan(&self, start: &[u8], limit: usize, f: &mut Visit) -> Result<u64> {
        let mut visited = 0;
        for guard in self.ks.range::<&[u8], _>(start..).take(limit) {
            let (key, value) = guard.into_inner()?;
            visited += 1;
            if !f(&key, &value)? {
                break;
            }
        }
        Ok(visited)
    }

    /// Seals the memtable, waits until it (and any sealed before it) is a
    /// table, then fsyncs the journal for what was written meanwhile.
    fn flush(&self) -> Result<()> {
        self.ks.rotate_memtable()?;
        while self.flushing() {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// fjall tells the queued memtable flushes, the sealed memtables, the
    /// compactions running and the compactions run so far (the last three
    /// through hidden "experimental" accessors), but not the compaction
    /// requests waiting in its workers' queue: after each flush it sends
    /// one per worker, and a worker takes a compaction for the one it got
    /// (blob GC of `fjall-kv` happens inside compactions). So this returns
    /// once, for `QUIET_POLLS` looks in a row 50 ms apart, nothing was
    /// flushing, no compaction ran and none finished: an idle engine with
    /// the odd compaction that starts later than 200 ms after the last one,
    /// not a proof of idleness.
    fn settle(&self) -> Result<()> {
        let mut quiet = 0;
        let mut completed = self.db.compactions_completed();
        while quiet < QUIET_POLLS {
            std::thread::sleep(POLL);
            let now = self.db.compactions_completed();
            if self.flushing() || self.db.active_compactions() > 0 || now != completed {
                quiet = 0;
            } else {
                quiet += 1;
            }
            completed = now;
        }
        Ok(())
    }

    fn engine_bytes(&self) -> Option<EngineBytes> {
        None
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        let FjallStore { ks, db, .. } = *self;
        drop(ks);
        // Dropping the last handle stops and joins fjall's workers.
        drop(db);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke;
    use super::*;

    fn open(kind: EngineKind) -> impl Fn(&StoreConfig) -> Result<Box<dyn Store>> {
        move |cfg| Ok(Box::new(FjallStore::open(kind, cfg)?) as Box<dyn Store>)
    }

    #[test]
    fn fjall_smoke() -> Result<()> {
        let bytes = smoke::run(EngineKind::Fjall, &open(EngineKind::Fjall))?;
        assert!(bytes.is_none());
        Ok(())
    }

    #[test]
    fn fjall_kv_smoke() -> Result<()> {
        let bytes = smoke::run(EngineKind::FjallKv, &open(EngineKind::FjallKv))?;
        assert!(bytes.is_none());
        Ok(())
    }

    /// Values of the threshold and more go to blob files in `fjall-kv`
    /// only.
    #[test]
    fn fjall_kv_separates() -> Result<()> {
        for (kind, separated) in [(EngineKind::Fjall, false), (EngineKind::FjallKv, true)] {
            let dir = tempfile::tempdir()?;
            let store = FjallStore::open(kind, &smoke::config(dir.path()))?;
            for i in 0..10 {
                store.put(&smoke::key(i), &smoke::value(i))?;
            }
            store.flush()?;
            assert_eq!(store.ks.is_kv_separated(), separated);
            assert_eq!(store.ks.blob_file_count() > 0, separated, "{}", kind.name());
            Box::new(store).close()?;
        }
        Ok(())
    }
}
