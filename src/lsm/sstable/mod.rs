//! SSTables: sorted, immutable, checksummed files of internal keys.
//!
//! An SSTable holds internal keys (see [`crate::lsm::ikey`]) in
//! [`crate::lsm::ikey::compare`] order, each with an opaque value (for
//! WiscKey, usually an encoded value pointer, which this module never
//! decodes). It is written once by [`SstBuilder`] and then read by [`Sst`]
//! through positioned reads. The bytes are described, encoded and decoded
//! in [`format`] (footer, properties, block handles and trailers), `block`
//! (key/value blocks) and `bloom` (the filter). `cache` is the block cache
//! the tables of one database share for their data blocks; index and
//! filter blocks stay pinned in each open table instead.

mod block;
mod bloom;
mod builder;
mod cache;
pub(crate) mod format;
mod reader;

#[cfg(any(test, feature = "testing"))]
pub(crate) use block::BlockBuilder;
pub(crate) use builder::{Compression, SstBuilder, SstBuilderOptions};
pub(crate) use cache::{BlockCache, CacheUse};
pub(crate) use reader::{Sst, SstIter};
