//! The value log: segment files of records, appended at the head, read by
//! pointer, replayed on open. It is also the write-ahead log.

pub(crate) mod hint;
mod log;
pub(crate) mod record;

pub(crate) use log::{
    gc_segment_file_name, replay_segment, segment_file_name, Segment, SegmentKind, SegmentSet, VLog,
};
pub(crate) use record::ValuePointer;
