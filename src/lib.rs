//! wisckey: an embeddable key-value storage engine that separates keys from
//! values, as the WiscKey paper does (Lu et al., FAST '16).
//!
//! Keys and small values live in a leveled LSM-tree of SSTables; large values
//! are appended once to a segmented value log (vLog), which is also the
//! write-ahead log, so a separated value is written exactly once. (Values
//! below the separation threshold are logged in the vLog and copied into the
//! SSTable at flush; their log records then count as vLog garbage.)
//!
//! ```
//! use wisckey::{Db, Options, WriteBatch, WriteOptions};
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path(), Options::default())?;
//! db.put(b"user:1", vec![7u8; 4096])?;           // large: goes to the vLog
//! db.put(b"user:2", b"small")?;                  // small: kept in the index
//! let mut batch = WriteBatch::new();
//! batch.put(b"user:3", b"x").delete(b"user:2");
//! db.write(batch, WriteOptions::default().sync(true))?;
//! let keys: Vec<Vec<u8>> = db.prefix(b"user:").map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec![b"user:1".to_vec(), b"user:3".to_vec()]);
//! # Ok::<(), wisckey::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

// The layers, lowest first (docs/architecture.md; tests/architecture.rs
// keeps imports pointing down). Leaves:
mod coding;
mod error;
mod files;
mod stats;
mod value;
// Storage layers:
pub mod io;
mod keydir;
mod lsm;
mod manifest;
mod options;
mod vlog;
// The engine and the public handles over it:
mod batch;
mod cas;
mod db;
mod engine;
pub mod inspect;
mod iter;
mod read_options;
mod snapshot;
mod table;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
mod verify;

pub use batch::WriteBatch;
pub use cas::CompareAndSwapError;
pub use db::Db;
pub use engine::GcReport;
pub use error::{Error, Result};
pub use io::{IoBackend, WriteMode};
pub use iter::{Entries, Entry, Iter, KeyRange, Keys};
pub use options::{
    CheckpointOptions, CheckpointProgress, Compression, GcOptions, GcPolicy, GcProgress, Options,
    TableKind, TableOptions, ValueCompression, WriteOptions,
};
pub use read_options::ReadOptions;
pub use snapshot::Snapshot;
pub use stats::{
    CheckpointInfo, CreatedWith, DictionaryStats, LevelStats, LifetimeStats, SegmentStats,
    SegmentUsage, Stats, TableStats, TableValueStats,
};
pub use table::{Table, TableInfo};
pub use value::Value;
pub use verify::{Damage, TableVerify, VerifyCounts, VerifyReport};

/// The README's example compiles and runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
