//! The value log: segment files of records, appended at the head, read by
//! pointer, replayed on open. It is also the write-ahead log.

pub(crate) mod batch;
pub(crate) mod compress;
pub(crate) mod dict;
pub(crate) mod hint;
mod log;
pub(crate) mod record;
mod replay;

pub(crate) use log::{Position, Segment, SegmentKind, SegmentSet, StoredValue, VLog};
pub(crate) use record::ValuePointer;
pub(crate) use replay::{check_segment, replay_range, replay_segment, walk_records, Walked};
