//! The sorted index: memtable, SSTables, versions, compaction.

pub(crate) mod compaction;
pub(crate) mod ikey;
pub(crate) mod iter;
pub(crate) mod memtable;
pub(crate) mod merge;
pub(crate) mod range_del;
pub(crate) mod sstable;
pub(crate) mod version;
