//! [`Stats`]: what the engine has written, where the bytes are, how reads went.

/// One level of the LSM-tree.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct LevelStats {
    /// SSTables in the level.
    pub files: u64,
    /// Bytes of those SSTables.
    pub bytes: u64,
    /// The level's dynamic target size (0 for a level not in use).
    pub target_bytes: u64,
    /// Compaction score: at least 1 means the level needs compaction.
    pub score: f64,
    /// Bytes of this level's files read by compactions since open.
    pub compaction_bytes_read: u64,
    /// Bytes written into this level (by flushes for level 0, by compactions
    /// below) since open.
    pub bytes_written: u64,
}

/// What a database was created with: the options that shape its files, and
/// when ([`Stats::created`]). The tools open a database with these unless
/// told otherwise, so that `vlog-tools gc DIR` writes segments of the size
/// the database already has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CreatedWith {
    /// Seconds since the Unix epoch at creation; 0 when unknown (a database
    /// created before this was recorded: then the other fields are the
    /// options of its first writable open since).
    pub unix_secs: u64,
    /// `Options::segment_size`.
    pub segment_size: u64,
    /// `Options::value_threshold`.
    pub value_threshold: u64,
    /// `Options::memtable_size`.
    pub memtable_size: u64,
}

/// Counters since the database was created, kept across opens in the
/// manifest ([`Stats::lifetime`]). Each manifest edit (a flush, a
/// compaction, a GC pass, a segment roll, a close) records them, so a crash
/// loses only what was counted since the last edit. For a database written
/// before they were recorded they start at its first open since.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct LifetimeStats {
    /// Key and value bytes written by users.
    pub user_bytes_written: u64,
    /// Puts and deletes.
    pub writes: u64,
    /// vLog bytes appended by user writes.
    pub vlog_bytes_written: u64,
    /// vLog bytes appended by GC.
    pub gc_bytes_written: u64,
    /// Bytes GC read from its victims.
    pub gc_bytes_read: u64,
    /// Bytes of segments GC retired.
    pub gc_bytes_freed: u64,
    /// Records GC moved.
    pub gc_records_moved: u64,
    /// GC passes that ran.
    pub gc_passes: u64,
    /// SSTable bytes written by flushes.
    pub flush_bytes_written: u64,
    /// Flushes.
    pub flushes: u64,
    /// SSTable bytes written by compactions.
    pub compaction_bytes_written: u64,
    /// SSTable bytes compactions read.
    pub compaction_bytes_read: u64,
    /// Compactions.
    pub compactions: u64,
    /// Manifest bytes written.
    pub manifest_bytes_written: u64,
    /// Writable opens, this one included.
    pub opens: u64,
    /// Everything written (vLog, GC, flushes, compactions, manifest) over
    /// `user_bytes_written`; 0 before any user write.
    pub write_amplification: f64,
    /// (vLog + GC bytes) over vLog bytes; 0 before any vLog write.
    pub gc_write_amplification: f64,
}

/// One vLog segment's exact live bytes, from [`crate::Db::segment_usage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SegmentUsage {
    /// The segment's file number.
    pub number: u64,
    /// Whether GC wrote it.
    pub gc: bool,
    /// Bytes of the segment on disk.
    pub bytes: u64,
    /// Bytes of the records the index and the keydirs point at.
    pub live_bytes: u64,
    /// Those records.
    pub live_records: u64,
    /// Garbage by the discard statistics ([`SegmentStats::garbage_bytes`]),
    /// to compare: `bytes - live_bytes` is the exact garbage, and the
    /// statistics lag behind it by what compaction has not dropped yet.
    pub garbage_bytes_by_stats: u64,
}

/// One vLog segment: its size and how much of it is garbage.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct SegmentStats {
    /// The segment's file number (`NNNNNN.vlog`, or `NNNNNN.gc.vlog`).
    pub number: u64,
    /// Whether GC wrote the segment (relocated records) rather than users.
    pub gc: bool,
    /// Bytes of the segment on disk.
    pub bytes: u64,
    /// Bytes of records that no index entry needs any more (discard
    /// statistics: values dropped by compaction, log-only records of
    /// flushed memtables). Values whose overwrite is still in a memtable are
    /// not counted yet.
    pub garbage_bytes: u64,
    /// When the segment was made, in seconds since the Unix epoch (0: not
    /// known, for a segment written before this was recorded).
    pub created_unix_secs: u64,
    /// The smallest sequence number of its records (0: not known).
    pub min_seq: u64,
    /// The largest (0: not known yet: the user head until it is sealed, a
    /// GC segment until its pass's edit).
    pub max_seq: u64,
}

/// A snapshot of the engine's counters, from [`crate::Db::stats`].
///
/// Byte counters count since this open; [`Stats::lifetime`] has them since
/// the database was created. Sizes are what is on disk now.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The I/O backend in use (`"sync"` or `"io_uring"`; with
    /// [`crate::Options::fs`], that backend's [`crate::io::Fs::name`]).
    pub io_backend: String,
    /// How appended files are written, after any fallback: `"writeback"`
    /// or `"buffered"` (see [`crate::WriteMode`]).
    pub write_mode: String,
    /// Why the engine writes buffered although [`crate::WriteMode::Writeback`]
    /// was asked for (the file system refused to start writeback).
    pub write_mode_fallback: Option<String>,
    /// Bytes an appender writes before it starts their writeback (0 when
    /// buffered).
    pub bytes_per_sync: u64,
    /// Ranges whose writeback was started since open.
    pub writeback_ranges: u64,
    /// Key and value bytes handed to put and delete.
    pub user_bytes_written: u64,
    /// Puts and deletes applied.
    pub writes: u64,
    /// Write batches applied (a single put is a batch of one).
    pub batches: u64,
    /// Group commits: each one `write` to the vLog shared by its batches.
    pub group_commits: u64,
    /// `fdatasync` calls made for sync writes.
    pub syncs: u64,
    /// Bytes appended to the vLog (records: headers, keys, values, checksums).
    pub vlog_bytes_written: u64,
    /// Bytes of SSTables written by memtable flushes.
    pub flush_bytes_written: u64,
    /// Memtable flushes.
    pub flushes: u64,
    /// Bytes of SSTables written by compactions.
    pub compaction_bytes_written: u64,
    /// Bytes of SSTables read by compactions.
    pub compaction_bytes_read: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Bytes appended to the manifest.
    pub manifest_bytes_written: u64,
    /// Everything the engine wrote (vLog by users and GC, SSTables,
    /// manifest) over the user bytes (0 before any write).
    pub write_amplification: f64,
    /// SSTable bytes written (flush and compaction) over the user bytes.
    pub lsm_write_amplification: f64,
    /// vLog segments on disk.
    pub vlog_segments: u64,
    /// Bytes of vLog segments on disk.
    pub vlog_bytes: u64,
    /// Per level: files and bytes.
    pub levels: Vec<LevelStats>,
    /// Bytes of all SSTables.
    pub sst_bytes: u64,
    /// Approximate bytes in the active memtable.
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for flush.
    pub immutable_memtables: u64,
    /// The newest sequence number.
    pub last_sequence: u64,
    /// Keys in the keydirs of the unordered tables (tombstones GC has not
    /// dropped yet included).
    pub unordered_keys: u64,
    /// Bytes the keydirs of the unordered tables have allocated: per table a
    /// hash index (5 bytes a bucket, at most 7/8 of the buckets in use), a
    /// 40-byte slot per key and the keys' bytes in one arena. Counted from
    /// the capacities of these three allocations, at no cost: room reserved
    /// and not used yet counts too (up to twice what is used, after a
    /// growth), so this may exceed the resident memory the keydirs add.
    pub keydir_bytes: u64,
    /// Point reads served.
    pub gets: u64,
    /// SSTables probed by point reads (read amplification: over `gets`).
    pub tables_probed: u64,
    /// Values read from the vLog (by point reads, iterators and
    /// verification).
    pub vlog_reads: u64,
    /// Bytes those reads took from the vLog (whole records: header, key,
    /// value, checksum). A key-only walk ([`crate::Keys`]),
    /// `contains_key` and `value_len` add nothing; GC's reads are
    /// `gc_bytes_read`.
    pub vlog_bytes_read: u64,
    /// Range tombstones (`delete_range`) the engine keeps now: in memtables
    /// and in the manifest. A full compaction (`Db::compact`) retires those
    /// every snapshot sees.
    pub range_tombstones: u64,
    /// Entries of unordered tables' keydirs that writes replaced while a
    /// snapshot was alive, kept for the snapshots' reads (0 with no
    /// snapshot alive).
    pub keydir_snapshot_entries: u64,
    /// SSTable data blocks point reads (`get`, `multi_get`) read from their
    /// files: block cache misses, or every block they read while the cache
    /// is disabled. Index and filter blocks are in memory and never read.
    pub get_block_reads: u64,
    /// Values point reads read from the vLog (inline values and absent keys
    /// cost none).
    pub get_vlog_reads: u64,
    /// File reads per point read: (`get_block_reads` + `get_vlog_reads`)
    /// over `gets`; 0 before any get. A get of a vLog value whose data
    /// block is cached costs 1; a cold one costs 2, plus one per table the
    /// bloom filter let through in vain. These are reads the engine issues;
    /// the operating system's page cache may answer some of them without
    /// the device.
    pub device_reads_per_get: f64,
    /// SSTable data blocks read from their files by point reads, iterators
    /// and GC's liveness checks (compactions and the walks of the whole
    /// index for verify and segment usage, which read around the cache, are
    /// not counted; verify's cross-checks, a point read of each key and a
    /// scan, are).
    pub sst_block_reads: u64,
    /// The most bytes the block cache holds (`Options::block_cache_size`,
    /// rounded up to a whole number of its shards); 0 when it is disabled.
    pub block_cache_capacity: u64,
    /// Bytes in the block cache now (each block's decompressed size plus a
    /// small fixed charge); at most `block_cache_capacity`.
    pub block_cache_bytes: u64,
    /// Data blocks in the block cache now.
    pub block_cache_blocks: u64,
    /// Block lookups the cache answered.
    pub block_cache_hits: u64,
    /// Block lookups it did not (each read the block from its file).
    pub block_cache_misses: u64,
    /// `block_cache_hits` over all lookups; 0 before any lookup.
    pub block_cache_hit_rate: f64,
    /// Heap bytes of the index and filter blocks of every live SSTable:
    /// each open table keeps them in memory (pinned, outside the block
    /// cache) for its whole life.
    pub index_filter_bytes: u64,
    /// Times a writer waited for a flush or a compaction to catch up.
    pub write_stalls: u64,
    /// Write groups delayed because level 0 neared its stop trigger.
    pub write_slowdowns: u64,
    /// Write groups that waited for automatic GC because the vLog's space
    /// amplification was over its target (see
    /// [`crate::Options::gc_back_pressure`]).
    pub gc_write_stalls: u64,
    /// Seconds writers spent in those waits.
    pub gc_stall_seconds: f64,
    /// Files moved down a level without being rewritten.
    pub trivial_moves: u64,
    /// SSTables actually read by point reads (candidates the bloom filter
    /// did not rule out); over `gets`, the read amplification of the index.
    pub table_reads: u64,
    /// Candidate SSTables the bloom filter ruled out.
    pub bloom_skips: u64,
    /// SSTables read because of the bloom filter that did not hold the key.
    pub bloom_false_positives: u64,
    /// Per vLog segment, oldest first: size and garbage.
    pub segments: Vec<SegmentStats>,
    /// The counters since the database was created (kept across opens).
    pub lifetime: LifetimeStats,
    /// What the database was created with; `None` for a database created
    /// before this was recorded, until its next writable open.
    pub created: Option<CreatedWith>,
    /// Garbage bytes over all segments (sum of `segments[..].garbage_bytes`).
    pub vlog_garbage_bytes: u64,
    /// vLog bytes on disk over the live bytes (by the discard statistics,
    /// early garbage included).
    pub vlog_space_amplification: f64,
    /// Garbage bytes flushes found by probing below the versions they wrote
    /// that no compaction has made durable yet (counted in
    /// `vlog_garbage_bytes` and in `segments`; a reopen finds them again by
    /// compaction). See docs/architecture.md, "Early garbage".
    pub early_garbage_bytes: u64,
    /// GC passes run since open.
    pub gc_passes: u64,
    /// Bytes GC read from its victims.
    pub gc_bytes_read: u64,
    /// Bytes GC re-appended (live records moved).
    pub gc_bytes_written: u64,
    /// Bytes of segments GC retired.
    pub gc_bytes_freed: u64,
    /// Records GC moved.
    pub gc_records_moved: u64,
    /// vLog bytes written by users and GC over those written by users.
    pub gc_write_amplification: f64,
    /// Segments GC retired that are kept for snapshots older than the pass.
    pub retired_segments_kept: u64,
    /// GC passes that failed since open (manual and automatic).
    pub gc_errors: u64,
    /// The last failed pass's error, if any.
    pub gc_last_error: Option<String>,
    /// The segments the last failed pass was blamed on (the damaged one when
    /// the error names it, else every victim). Automatic GC leaves them
    /// alone for a while, doubling each time they fail again (up to ten
    /// minutes); `Db::gc` with [`crate::GcOptions::salvage`] can collect a
    /// segment with damaged garbage.
    pub gc_last_error_segments: Vec<u64>,
    /// Bytes of the values put since open, before compression (every put:
    /// inline, pointer and unordered values alike).
    pub value_bytes_raw: u64,
    /// Bytes those values take as stored in the vLog records (compressed
    /// where compression made them smaller). Equal to `value_bytes_raw`
    /// when no table compresses.
    pub value_bytes_stored: u64,
    /// Values compression was tried on and stored raw because they did not
    /// shrink.
    pub values_incompressible: u64,
    /// The same three counts per table that was written since open, with
    /// its compression and dictionary, by table id (the default table is
    /// id 0, named `"default"`).
    pub table_values: Vec<TableValueStats>,
    /// The value dictionaries the database keeps, by id: the newest of each
    /// table and older ones that values in live segments still use.
    pub dictionaries: Vec<DictionaryStats>,
}

/// One value dictionary (see [`Stats::dictionaries`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DictionaryStats {
    /// Its id: the file is `NNNNNN.dict` with this number.
    pub id: u64,
    /// The id of the table it was trained for (0: the default table).
    pub table_id: u32,
    /// Its size in bytes.
    pub bytes: u64,
}

/// One table's value counts since open (see [`Stats::table_values`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableValueStats {
    /// The table's name.
    pub name: String,
    /// Bytes of the values put, before compression.
    pub raw_bytes: u64,
    /// Bytes as stored in the vLog records.
    pub stored_bytes: u64,
    /// Values that did not shrink and were stored raw.
    pub incompressible: u64,
    /// `"none"` or `"zstd:LEVEL"`: how new values are stored.
    pub compression: String,
    /// The id of the dictionary new values are compressed with (its file
    /// is `NNNNNN.dict`), if the table has one.
    pub dictionary: Option<u64>,
}

/// The figures of one table ([`crate::Table::stats`]). What each one
/// counts, and which are estimates:
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TableStats {
    /// Live keys, where the engine knows them without a scan: for an
    /// unordered table, the keys of its keydir whose newest record is a put
    /// (exact; counting them walks the keydir); `None` for an ordered table
    /// (a scan of its keys, `Table::keys`, counts them).
    pub live_keys: Option<u64>,
    /// Bytes of the table's index: for an unordered table the keydir's
    /// allocated bytes (exact); for an ordered table the bytes of the
    /// SSTables holding its keys, an **estimate**: a table shares the
    /// SSTables with the others, so an SSTable whose keys span several
    /// tables counts a share for each of them by the range of table ids it
    /// spans (exact when every SSTable holds one table's keys). The
    /// memtables are not counted.
    pub index_bytes: u64,
    /// Index entries in the SSTables counted in `index_bytes` (ordered
    /// tables; every version and tombstone, shared the same way, so an
    /// estimate); 0 for an unordered table.
    pub index_entries: u64,
    /// vLog record bytes written by this table's puts and deletes since this
    /// open (exact; not kept across opens; GC's relocations not counted).
    pub vlog_bytes_written: u64,
    /// Puts and deletes of this table since this open (exact).
    pub writes: u64,
}

/// What [`crate::Db::checkpoint`] made.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct CheckpointInfo {
    /// The sequence number of the newest write the checkpoint holds: it
    /// holds every write at or below it and none above.
    pub last_sequence: u64,
    /// Files hard-linked (SSTables, sealed vLog segments, their hints).
    pub files_linked: u64,
    /// Bytes of those files.
    pub bytes_linked: u64,
    /// Files copied (the vLog heads up to the captured offsets, files a
    /// hard link failed for, or every file when links are off), and the
    /// fresh manifest and `CURRENT`.
    pub files_copied: u64,
    /// Bytes copied or written.
    pub bytes_copied: u64,
    /// The tables the checkpoint holds besides the default table, by name
    /// (all of them, or the ones asked for).
    pub tables: Vec<String>,
    /// Wall time, in seconds.
    pub seconds: f64,
}
