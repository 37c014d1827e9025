//! What the engine counts while it runs (reset on open), and the [`Stats`]
//! and [`SegmentStats`] built from the counters and the current state.

use super::Engine;
use crate::lsm::compaction::{self, NUM_LEVELS};
use crate::manifest::LifetimeCounters;
use crate::stats::{LevelStats, LifetimeStats, SegmentStats, Stats};
use crate::vlog::SegmentKind;
use std::sync::atomic::{AtomicU64, Ordering};

/// The engine's counters; each one only ever grows.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) user_bytes_written: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) group_commits: AtomicU64,
    pub(super) syncs: AtomicU64,
    pub(super) flush_bytes_written: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) compaction_bytes_written: AtomicU64,
    pub(super) compaction_bytes_read: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) manifest_bytes_written: AtomicU64,
    pub(super) gets: AtomicU64,
    pub(super) tables_probed: AtomicU64,
    pub(super) vlog_reads: AtomicU64,
    /// Bytes of the records user reads read from the vLog.
    pub(super) vlog_bytes_read: AtomicU64,
    /// Data blocks point reads read from SSTable files (not from the cache).
    pub(super) get_block_reads: AtomicU64,
    /// Values point reads read from the vLog.
    pub(super) get_vlog_reads: AtomicU64,
    pub(super) write_stalls: AtomicU64,
    pub(super) write_slowdowns: AtomicU64,
    pub(super) trivial_moves: AtomicU64,
    pub(super) bloom_skips: AtomicU64,
    pub(super) bloom_false_positives: AtomicU64,
    pub(super) table_reads: AtomicU64,
    pub(super) gc_passes: AtomicU64,
    pub(super) gc_bytes_read: AtomicU64,
    pub(super) gc_bytes_moved: AtomicU64,
    pub(super) gc_bytes_freed: AtomicU64,
    pub(super) gc_records_moved: AtomicU64,
    pub(super) level_read: [AtomicU64; NUM_LEVELS],
    pub(super) level_written: [AtomicU64; NUM_LEVELS],
    /// The counters of earlier opens, from the manifest (this open's are
    /// added to them: [`Engine::lifetime_counters`]).
    pub(super) base: LifetimeCounters,
    /// Whether this open counts as one (a writable open).
    pub(super) counts_open: bool,
    /// Whether the close (or the drop) has recorded the counters.
    pub(super) recorded_at_close: std::sync::atomic::AtomicBool,
}

impl Counters {
    /// Counters at zero on top of `base`, the earlier opens' sums.
    pub(super) fn on_top_of(base: LifetimeCounters, counts_open: bool) -> Counters {
        Counters {
            base,
            counts_open,
            ..Counters::default()
        }
    }
}

/// Adds `n` to counter `c`.
pub(super) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub(super) fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Engine {
    /// The counters since the database was created: the manifest's sums of
    /// earlier opens plus this one's. Every manifest edit records them.
    pub(super) fn lifetime_counters(&self) -> LifetimeCounters {
        let c = &self.counters;
        c.base.plus(&LifetimeCounters {
            user_bytes_written: get(&c.user_bytes_written),
            writes: get(&c.writes),
            vlog_bytes_written: self.vlog.bytes_written(),
            gc_bytes_written: self.vlog.gc_bytes_written(),
            gc_bytes_read: get(&c.gc_bytes_read),
            gc_bytes_freed: get(&c.gc_bytes_freed),
            gc_records_moved: get(&c.gc_records_moved),
            gc_passes: get(&c.gc_passes),
            flush_bytes_written: get(&c.flush_bytes_written),
            flushes: get(&c.flushes),
            compaction_bytes_written: get(&c.compaction_bytes_written),
            compaction_bytes_read: get(&c.compaction_bytes_read),
            compactions: get(&c.compactions),
            manifest_bytes_written: get(&c.manifest_bytes_written),
            opens: u64::from(c.counts_open),
        })
    }

    fn lifetime_stats(&self) -> LifetimeStats {
        let l = self.lifetime_counters();
        let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        let all = l.vlog_bytes_written
            + l.gc_bytes_written
            + l.flush_bytes_written
            + l.compaction_bytes_written
            + l.manifest_bytes_written;
        LifetimeStats {
            user_bytes_written: l.user_bytes_written,
            writes: l.writes,
            vlog_bytes_written: l.vlog_bytes_written,
            gc_bytes_written: l.gc_bytes_written,
            gc_bytes_read: l.gc_bytes_read,
            gc_bytes_freed: l.gc_bytes_freed,
            gc_records_moved: l.gc_records_moved,
            gc_passes: l.gc_passes,
            flush_bytes_written: l.flush_bytes_written,
            flushes: l.flushes,
            compaction_bytes_written: l.compaction_bytes_written,
            compaction_bytes_read: l.compaction_bytes_read,
            compactions: l.compactions,
            manifest_bytes_written: l.manifest_bytes_written,
            opens: l.opens,
            write_amplification: ratio(all, l.user_bytes_written),
            gc_write_amplification: ratio(
                l.vlog_bytes_written + l.gc_bytes_written,
                l.vlog_bytes_written,
            ),
        }
    }

    /// Counters and sizes now.
    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let sv = self.versions.current();
        let user = get(&c.user_bytes_written);
        let vlog_w = self.vlog.bytes_written();
        let gc_w = self.vlog.gc_bytes_written();
        let flush_w = get(&c.flush_bytes_written);
        let comp_w = get(&c.compaction_bytes_written);
        let man_w = get(&c.manifest_bytes_written);
        let ratio = |n: u64| {
            if user == 0 {
                0.0
            } else {
                n as f64 / user as f64
            }
        };
        let cfg = self.level_config();
        let scores = compaction::scores(&sv.version, &cfg);
        let targets = compaction::level_targets(&sv.version, &cfg);
        let levels: Vec<LevelStats> = (0..NUM_LEVELS)
            .map(|i| {
                let files = sv.version.levels.get(i).map_or(&[][..], |l| l.as_slice());
                LevelStats {
                    files: files.len() as u64,
                    bytes: files.iter().map(|t| t.meta.size).sum(),
                    target_bytes: if i == 0 { 0 } else { targets.targets[i] },
                    score: scores[i],
                    compaction_bytes_read: get(&c.level_read[i]),
                    bytes_written: get(&c.level_written[i]),
                }
            })
            .collect();
        let segments = self.segment_stats();
        let gc_errors = self.gc_error_summary();
        let wb = self.vlog.writeback();
        let cache = self.block_cache.stats();
        let gets = get(&c.gets);
        let get_block_reads = get(&c.get_block_reads);
        let get_vlog_reads = get(&c.get_vlog_reads);
        let per = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        let table_values = self.table_value_stats();
        let sum = |f: fn(&crate::stats::TableValueStats) -> u64| table_values.iter().map(f).sum();
        Stats {
            value_bytes_raw: sum(|t| t.raw_bytes),
            value_bytes_stored: sum(|t| t.stored_bytes),
            values_incompressible: sum(|t| t.incompressible),
            table_values,
            dictionaries: self.dictionary_stats(),
            io_backend: self.fs.name().to_string(),
            write_mode: wb.mode().name().to_string(),
            write_mode_fallback: wb.fallback(),
            bytes_per_sync: match wb.mode() {
                crate::io::WriteMode::Writeback => self.opts.bytes_per_sync,
                _ => 0,
            },
            writeback_ranges: wb.counts().0,
            user_bytes_written: user,
            writes: get(&c.writes),
            batches: get(&c.batches),
            group_commits: get(&c.group_commits),
            syncs: get(&c.syncs),
            vlog_bytes_written: vlog_w,
            flush_bytes_written: flush_w,
            flushes: get(&c.flushes),
            compaction_bytes_written: comp_w,
            compaction_bytes_read: get(&c.compaction_bytes_read),
            compactions: get(&c.compactions),
            manifest_bytes_written: man_w,
            write_amplification: ratio(vlog_w + gc_w + flush_w + comp_w + man_w),
            gc_passes: get(&c.gc_passes),
            gc_bytes_read: get(&c.gc_bytes_read),
            gc_bytes_written: gc_w,
            gc_bytes_freed: get(&c.gc_bytes_freed),
            gc_records_moved: get(&c.gc_records_moved),
            gc_write_amplification: if vlog_w == 0 {
                0.0
            } else {
                (vlog_w + gc_w) as f64 / vlog_w as f64
            },
            vlog_space_amplification: self
                .space_amplification_of(segments.iter().map(|s| (s.bytes, s.garbage_bytes))),
            retired_segments_kept: self.vlog.zombie_count() as u64,
            gc_errors: gc_errors.count,
            gc_last_error: gc_errors.last_error,
            gc_last_error_segments: gc_errors.last_segments,
            lsm_write_amplification: ratio(flush_w + comp_w),
            vlog_segments: segments.len() as u64,
            vlog_bytes: segments.iter().map(|s| s.bytes).sum(),
            vlog_garbage_bytes: segments.iter().map(|s| s.garbage_bytes).sum(),
            sst_bytes: levels.iter().map(|l| l.bytes).sum(),
            levels,
            memtable_bytes: sv.mem.table.approx_bytes() as u64,
            immutable_memtables: sv.imms.len() as u64,
            last_sequence: self.read_seq(),
            unordered_keys: self.keydirs.len(),
            gets,
            get_block_reads,
            get_vlog_reads,
            device_reads_per_get: per(get_block_reads + get_vlog_reads, gets),
            sst_block_reads: cache.file_reads,
            block_cache_capacity: cache.capacity,
            block_cache_bytes: cache.bytes,
            block_cache_blocks: cache.blocks,
            block_cache_hits: cache.hits,
            block_cache_misses: cache.misses,
            block_cache_hit_rate: per(cache.hits, cache.hits + cache.misses),
            index_filter_bytes: sv.version.all_tables().map(|t| t.sst.pinned_bytes()).sum(),
            keydir_bytes: self.keydirs.allocated_bytes(),
            tables_probed: get(&c.tables_probed),
            vlog_reads: get(&c.vlog_reads),
            vlog_bytes_read: get(&c.vlog_bytes_read),
            range_tombstones: sv.range_dels_for_all(),
            keydir_snapshot_entries: self.keydirs.history_len(),
            write_stalls: get(&c.write_stalls),
            write_slowdowns: get(&c.write_slowdowns),
            early_garbage_bytes: self.early.total(),
            gc_write_stalls: self.gc.pressure.counts().0,
            gc_stall_seconds: self.gc.pressure.counts().1,
            trivial_moves: get(&c.trivial_moves),
            table_reads: get(&c.table_reads),
            bloom_skips: get(&c.bloom_skips),
            bloom_false_positives: get(&c.bloom_false_positives),
            segments,
            lifetime: self.lifetime_stats(),
            created: self.versions.created_with(),
        }
    }

    /// Size and garbage of each live vLog segment, oldest first.
    pub(crate) fn segment_stats(&self) -> Vec<SegmentStats> {
        let discard = self.garbage_by_segment();
        let ages = self.versions.lock_manifest().state().segment_info.clone();
        self.vlog
            .segment_sizes()
            .into_iter()
            .map(|(number, kind, bytes)| {
                let age = ages.get(&number).copied().unwrap_or_default();
                SegmentStats {
                    number,
                    gc: kind == SegmentKind::Gc,
                    bytes,
                    garbage_bytes: discard.get(&number).copied().unwrap_or(0),
                    created_unix_secs: age.created_unix_secs,
                    min_seq: age.min_seq,
                    max_seq: age.max_seq,
                }
            })
            .collect()
    }
}
