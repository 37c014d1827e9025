//! The engines `bench` drives, behind one interface: wisckey always, and the
//! peers (RocksDB plain and with BlobDB, fjall plain and with key-value
//! separation) when the tool is built with their cargo features.
//!
//! Every engine is opened from the same [`StoreConfig`]: same memtable
//! size, compression off unless asked, no fsync per write unless `sync`.

use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

/// The engines `--engines` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// This engine.
    Wisckey,
    /// RocksDB, plain leveled compaction (feature `rocksdb`).
    Rocksdb,
    /// RocksDB with integrated BlobDB (feature `rocksdb`).
    RocksdbBlob,
    /// fjall 3, defaults (feature `fjall`).
    Fjall,
    /// fjall 3 with key-value separation (feature `fjall`).
    FjallKv,
}

impl EngineKind {
    /// Every engine, in the order of the tables.
    pub const ALL: [EngineKind; 5] = [
        EngineKind::Wisckey,
        EngineKind::Rocksdb,
        EngineKind::RocksdbBlob,
        EngineKind::Fjall,
        EngineKind::FjallKv,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Wisckey => "wisckey",
            EngineKind::Rocksdb => "rocksdb",
            EngineKind::RocksdbBlob => "rocksdb-blob",
            EngineKind::Fjall => "fjall",
            EngineKind::FjallKv => "fjall-kv",
        }
    }

    /// The engine named `s`, if any.
    pub fn parse(s: &str) -> Option<EngineKind> {
        EngineKind::ALL.into_iter().find(|e| e.name() == s)
    }

    /// The cargo feature the engine needs, `None` for wisckey.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            EngineKind::Wisckey => None,
            EngineKind::Rocksdb | EngineKind::RocksdbBlob => Some("rocksdb"),
            EngineKind::Fjall | EngineKind::FjallKv => Some("fjall"),
        }
    }

    /// Whether this build of the tool has the engine.
    pub fn built(self) -> bool {
        match self {
            EngineKind::Wisckey => true,
            EngineKind::Rocksdb | EngineKind::RocksdbBlob => cfg!(feature = "rocksdb"),
            EngineKind::Fjall | EngineKind::FjallKv => cfg!(feature = "fjall"),
        }
    }
}

/// What every engine is opened with.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The database directory (exists, empty).
    pub dir: PathBuf,
    /// Memtable (write buffer) bytes, the same for every engine.
    pub memtable_size: usize,
    /// Every write durable on return (fsync/fdatasync per write or group).
    pub sync: bool,
    /// Block or value compression on (lz4 where the engine has it).
    pub compression: bool,
    /// Values of at least this many bytes are separated from the keys
    /// (wisckey's value threshold; BlobDB's `min_blob_size`; fjall's
    /// separation threshold).
    pub value_threshold: usize,
    /// wisckey only: the rest of its options.
    pub wisckey: wisckey::Options,
    /// wisckey only: how the table stores its values.
    pub value_compression: wisckey::ValueCompression,
    /// wisckey only: values to train a dictionary from at open (none: no
    /// dictionary).
    pub dictionary_samples: Vec<Vec<u8>>,
}

/// The engine's own count of what it wrote, since it was opened.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EngineBytes {
    /// Bytes the engine wrote to its files (logs, tables, blobs, manifest).
    pub written: u64,
    /// Of those, bytes a garbage collector moved (wisckey GC, blob GC), when
    /// the engine tells them apart.
    pub gc_written: Option<u64>,
}

/// What a scan calls on each entry (key, value); false stops the scan.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// One engine, opened. Every call may come from several threads at once.
pub trait Store: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;
    /// Puts one key (no fsync unless the config says `sync`).
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Puts several keys in one atomic batch.
    fn put_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()>;
    /// Deletes one key.
    fn delete(&self, key: &[u8]) -> Result<()>;
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Reads several keys; the answer is in the order of `keys`.
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Calls `f` on at most `limit` entries in ascending key order from the
    /// first key `>= start` (`limit` `usize::MAX`: to the end); `f` returns
    /// false to stop. Returns the entries visited.
    fn scan(&self, start: &[u8], limit: usize, f: &mut Visit) -> Result<u64>;
    /// Memtable to disk and everything written durable.
    fn flush(&self) -> Result<()>;
    /// Waits until background work (flushes, compactions) is idle.
    fn settle(&self) -> Result<()>;
    /// The engine's own byte counters since open; `None` when it keeps none.
    fn engine_bytes(&self) -> Option<EngineBytes>;
    /// A one-line description of the configuration, for the report.
    fn describe(&self) -> String;
    /// Closes the engine, everything durable.
    fn close(self: Box<Self>) -> Result<()>;
    /// The wisckey database behind this store, for what only wisckey has
    /// (GC, its timeline, its stats).
    fn wisckey(&self) -> Option<&wisckey::Db> {
        None
    }
}

/// Opens `kind` in `cfg.dir`; an engine this build lacks is an error that
/// names the feature to build with.
pub fn open(kind: EngineKind, cfg: &StoreConfig) -> Result<Box<dyn Store>> {
    if !kind.built() {
        anyhow::bail!(
            "--engines {}: this vlog-tools was built without it; build with \
             `cargo build --release -p vlog-tools --features {}`",
            kind.name(),
            kind.feature().unwrap_or("")
        );
    }
    match kind {
        EngineKind::Wisckey => Ok(Box::new(super::wisckey_store::WisckeyStore::open(cfg)?)),
        #[cfg(feature = "rocksdb")]
        EngineKind::Rocksdb | EngineKind::RocksdbBlob => {
            Ok(Box::new(super::peers::rocks::RocksStore::open(kind, cfg)?))
        }
        #[cfg(feature = "fjall")]
        EngineKind::Fjall | EngineKind::FjallKv => {
            Ok(Box::new(super::peers::fjall::FjallStore::open(kind, cfg)?))
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!("checked by built()"),
    }
}
