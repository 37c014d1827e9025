//! The write path: group commit into the vLog, then the index.
//!
//! ```text
//! Engine::write                  checks sizes and health, queues the batch
//!   WriteQueue::write            the first writer with no leader at work
//!                                leads: it takes every queued batch
//!     Engine::commit_group       under the commit lock (CommitGuard):
//!       wait_for_room            stalls while flush or level 0 lag behind
//!       GroupAppend::add         seals each batch's records (sequence
//!                                numbers, checksums) and lists the index
//!                                entries (index_entry) and keydir records
//!       roll_user_segment        seals a full segment, writes its hint
//!       append_pending           one vLog write (+ fdatasync if any batch
//!                                asked for sync)
//!       apply_group              memtable inserts, keydirs, visible
//!                                sequence number, counters
//! ```

use super::cas::{Condition, Outcome};
use super::counters;
use super::Engine;
use crate::error::{Error, Result};
use crate::keydir::NewRecord;
use crate::lsm::ikey::{self, Kind};
use crate::lsm::range_del::RangeTombstone;
use crate::manifest::{unix_now, SealedSegment, SegmentInfo, VersionEdit};
use crate::vlog::batch::RecordBatch;
use crate::vlog::{Position, SegmentKind, ValuePointer};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most bytes one group commit takes (a single larger batch still goes alone).
const MAX_GROUP_BYTES: usize = 8 << 20;

/// The index entry (internal key, value) of one vLog record of an ordered
/// table: a tombstone, an inline value (below the separation threshold), or
/// a pointer to the record. The commit path and recovery both use it.
#[inline]
pub(super) fn index_entry(
    table: u32,
    key: &[u8],
    seq: u64,
    is_put: bool,
    inline_value: Option<&[u8]>,
    record: ValuePointer,
) -> (Vec<u8>, Vec<u8>) {
    if !is_put {
        (
            ikey::encode(table, key, seq, Kind::Delete as u8),
            Vec::new(),
        )
    } else if let Some(v) = inline_value {
        (
            ikey::encode(table, key, seq, Kind::Inline as u8),
            v.to_vec(),
        )
    } else {
        (
            ikey::encode(table, key, seq, Kind::Pointer as u8),
            record.encode(),
        )
    }
}

/// The commit leader's state: the last sequence number handed out.
#[derive(Debug)]
pub(super) struct CommitState {
    last_seq: u64,
    /// The user head segment and the dictionaries the manifest records it
    /// uses, as far as this lock's holders know.
    dicts_declared: (u64, Vec<u64>),
}

/// Proof that the commit lock is held (lock order step 2): what must not
/// interleave with a commit takes one.
pub(super) type CommitGuard<'a> = MutexGuard<'a, CommitState>;

/// Group commit's parts: the queue of writers, the commit lock, and the
/// sequence number readers see.
pub(super) struct Writer {
    queue: WriteQueue,
    commit: Mutex<CommitState>,
    visible_seq: AtomicU64,
}

impl Writer {
    pub(super) fn new(last_seq: u64) -> Writer {
        Writer {
            queue: WriteQueue::default(),
            commit: Mutex::new(CommitState {
                last_seq,
                dicts_declared: (0, Vec::new()),
            }),
            visible_seq: AtomicU64::new(last_seq),
        }
    }

    pub(super) fn lock_commit(&self) -> CommitGuard<'_> {
        self.commit.lock()
    }
}

/// One writer's request, waiting to be committed.
#[derive(Debug)]
pub(super) struct PendingWrite {
    batch: Mutex<Option<RecordBatch>>,
    bytes: usize,
    sync: bool,
    /// Applied only if this holds when the leader reaches it (cas.rs).
    condition: Option<Condition>,
    result: Mutex<Option<Result<Outcome>>>,
}

impl PendingWrite {
    /// Decides the writer's outcome before the group ends (its condition
    /// failed, or could not be checked).
    pub(super) fn decide(&self, r: Result<Outcome>) {
        *self.result.lock() = Some(r);
    }

    /// Hands the outcome to the waiting writer, unless its condition
    /// already decided it.
    fn finish(&self, r: Result<()>) {
        let mut slot = self.result.lock();
        if slot.is_none() {
            *slot = Some(r.map(|()| Outcome::Applied));
        }
    }
}

#[derive(Debug, Default)]
struct QueueState {
    pending: VecDeque<Arc<PendingWrite>>,
    leader: bool,
}

/// The queue of writers.
#[derive(Debug, Default)]
struct WriteQueue {
    state: Mutex<QueueState>,
    cv: Condvar,
}

impl WriteQueue {
    /// Queues `batch` and returns once it is committed, by this thread as the
    /// leader or by another. `commit` receives a group and must call
    /// [`PendingWrite::finish`] on every member.
    fn write(
        &self,
        batch: RecordBatch,
        sync: bool,
        condition: Option<Condition>,
        commit: impl Fn(&[Arc<PendingWrite>]),
    ) -> Result<Outcome> {
        let me = Arc::new(PendingWrite {
            bytes: batch.bytes(),
            batch: Mutex::new(Some(batch)),
            sync,
            condition,
            result: Mutex::new(None),
        });
        let mut st = self.state.lock();
        st.pending.push_back(me.clone());
        loop {
            if let Some(r) = me.result.lock().take() {
                return r;
            }
            if st.leader {
                self.cv.wait(&mut st);
                continue;
            }
            st.leader = true;
            let mut group = Vec::with_capacity(st.pending.len());
            let mut bytes = 0;
            while let Some(p) = st.pending.front() {
                if !group.is_empty() && bytes + p.bytes > MAX_GROUP_BYTES {
                    break;
                }
                bytes += p.bytes;
                if let Some(p) = st.pending.pop_front() {
                    group.push(p);
                }
            }
            drop(st);
            commit(&group);
            st = self.state.lock();
            st.leader = false;
            self.cv.notify_all();
        }
    }
}

/// A group being committed: its bytes bound for the head segment, and what
/// the index learns once they are written.
struct GroupAppend {
    /// Where the pending bytes will start.
    base: Position,
    /// Batches bound for the current head segment, written with one write
    /// (a lone batch straight from its own buffer).
    pending: Vec<Vec<u8>>,
    pending_bytes: u64,
    /// vLog bytes of the whole group.
    log_bytes: u64,
    /// The last sequence number given out.
    seq: u64,
    /// Index entries of ordered tables, in commit order.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Per segment, bytes of records only the log needs (inline values,
    /// tombstones): garbage once their memtable is flushed.
    wal_only: Vec<(u64, u64)>,
    /// Records of unordered tables, for the keydirs.
    unordered: Vec<NewRecord>,
    /// Range tombstones, for the memtable's list.
    range_dels: Vec<RangeTombstone>,
    user_bytes: u64,
    writes: u64,
    /// Whether a segment was sealed during the group.
    rolled: bool,
    /// Per put: its table and value counts.
    value_counts: Vec<(u32, super::values::ValueCounts)>,
}

impl GroupAppend {
    fn new(base: Position, last_seq: u64, batches: usize) -> GroupAppend {
        GroupAppend {
            base,
            pending: Vec::with_capacity(batches),
            pending_bytes: 0,
            log_bytes: 0,
            seq: last_seq,
            entries: Vec::new(),
            wal_only: Vec::new(),
            unordered: Vec::new(),
            range_dels: Vec::new(),
            user_bytes: 0,
            writes: 0,
            rolled: false,
            value_counts: Vec::new(),
        }
    }

    /// Bytes of the head segment once the pending bytes are written.
    fn head_len(&self) -> u64 {
        self.base.offset + self.pending_bytes
    }

    /// Seals `batch`'s records at the end of the pending bytes and lists
    /// what the index learns of each.
    #[inline]
    fn add(
        &mut self,
        mut batch: RecordBatch,
        is_unordered: impl Fn(u32) -> bool,
        value_threshold: usize,
    ) {
        let at = self.head_len();
        let first = self.seq + 1;
        batch.seal(first);
        for (i, op) in batch.ops().iter().enumerate() {
            let seq = first + i as u64;
            self.writes += 1;
            self.user_bytes += (op.key_len + op.raw_value_len()) as u64;
            if op.is_put {
                self.value_counts
                    .push((op.table, super::values::op_counts(op)));
            }
            let key = batch.key(op);
            let ptr = ValuePointer {
                segment: self.base.segment,
                offset: at + op.offset as u64,
                len: op.len() as u32,
                raw_len: op.raw_len,
            };
            if is_unordered(op.table) {
                // Every value of an unordered table stays in the vLog; the
                // keydir points at the record.
                self.unordered.push(NewRecord {
                    table: op.table,
                    key: key.to_vec(),
                    seq,
                    ptr,
                    put: op.is_put,
                });
                continue;
            }
            // A compressed value always goes by pointer.
            let inline = (op.is_put && op.raw_len.is_none() && op.value_len < value_threshold)
                .then(|| batch.value(op));
            if !op.is_put || inline.is_some() {
                match self.wal_only.last_mut() {
                    Some((s, b)) if *s == self.base.segment => *b += u64::from(ptr.len),
                    _ => self.wal_only.push((self.base.segment, u64::from(ptr.len))),
                }
            }
            if op.is_range_delete {
                // Checked by Engine::write: the end decodes.
                let end = RangeTombstone::decode_end(batch.value(op)).unwrap_or_default();
                self.range_dels.push(RangeTombstone {
                    table: op.table,
                    seq,
                    start: key.to_vec(),
                    end,
                });
                continue;
            }
            self.entries
                .push(index_entry(op.table, key, seq, op.is_put, inline, ptr));
        }
        self.seq = first + batch.ops().len() as u64 - 1;
        let bytes = batch.bytes() as u64;
        self.pending_bytes += bytes;
        self.log_bytes += bytes;
        self.pending.push(batch.into_bytes());
    }
}

impl Engine {
    /// Applies `batch` atomically, durable against power loss on return when
    /// `sync` (an empty batch with `sync` syncs what was written before it).
    ///
    /// # Errors
    /// `InvalidArgument` for a key or value over the limits or a closed
    /// database; `Io` when the vLog write or sync fails (the database is
    /// then poisoned), `Poisoned` for every write after that.
    pub(crate) fn write(&self, batch: RecordBatch, sync: bool) -> Result<()> {
        self.write_if(batch, sync, None).map(|_| ())
    }

    /// [`Engine::write`], applied only when `condition` holds at the moment
    /// the batch is committed (linearizable: no other write commits between
    /// the check and the batch). An empty batch ignores the condition.
    pub(crate) fn write_if(
        &self,
        batch: RecordBatch,
        sync: bool,
        condition: Option<Condition>,
    ) -> Result<Outcome> {
        for op in batch.ops() {
            if op.is_range_delete {
                self.check_range_delete(&batch, op)?;
            }
            if op.key_len > self.opts.max_key_size {
                return Err(Error::InvalidArgument(format!(
                    "key of {} bytes is over the limit of {}",
                    op.key_len, self.opts.max_key_size
                )));
            }
            if op.value_len > self.opts.max_value_size {
                return Err(Error::InvalidArgument(format!(
                    "value of {} bytes is over the limit of {}",
                    op.value_len, self.opts.max_value_size
                )));
            }
        }
        for op in batch.ops() {
            self.check_table(op.table)?;
        }
        self.health.check_writable()?;
        if batch.is_empty() {
            // Nothing to append; a sync still makes the earlier writes
            // durable, as promised.
            return if sync { self.sync_vlog() } else { Ok(()) }.map(|()| Outcome::Applied);
        }
        // Compressed here, by the writer's thread, outside the commit lock;
        // the codecs stay held until the batch is in (see values.rs).
        let (batch, _codecs) = self.compress_batch(batch);
        let tally = super::tables::Tally::of(&batch);
        let outcome = self
            .writer
            .queue
            .write(batch, sync, condition, |group| self.commit_group(group))?;
        if matches!(outcome, Outcome::Applied) {
            self.tables.count(tally);
        }
        Ok(outcome)
    }

    /// The sequence number a new read sees.
    pub(crate) fn read_seq(&self) -> u64 {
        self.writer.visible_seq.load(Ordering::Acquire)
    }

    /// Commits a group of batches (called by the group-commit leader) and
    /// hands each writer the outcome. A panic on the way poisons the
    /// database (what reached the vLog is unknown) and fails the group,
    /// instead of leaving its writers waiting for a result.
    fn commit_group(&self, group: &[Arc<PendingWrite>]) {
        let mut commit = self.writer.lock_commit();
        let r = match catch_unwind(AssertUnwindSafe(|| {
            self.commit_group_locked(&mut commit, group)
        })) {
            Ok(r) => r,
            Err(_) => {
                self.poison("a group commit panicked".into());
                self.health.check_not_poisoned()
            }
        };
        for w in group {
            w.finish(match &r {
                Ok(()) => Ok(()),
                Err(e) => Err(e.duplicate()),
            });
        }
    }

    fn commit_group_locked(
        &self,
        commit: &mut CommitGuard<'_>,
        group: &[Arc<PendingWrite>],
    ) -> Result<()> {
        self.health.check_writable()?;
        self.wait_for_room(commit)?;
        let mut out = GroupAppend::new(self.vlog.head_position(), commit.last_seq, group.len());
        let any_unordered = self.keydirs.any();
        // Batches in `out` (and whether one of them asked for sync).
        let (mut members, mut members_sync) = (0u64, false);
        for w in group {
            let Some(batch) = w.batch.lock().take() else {
                continue;
            };
            if let Some(cond) = &w.condition {
                if members > 0 {
                    // The condition must see what the batches before it in
                    // the group write: commit those first.
                    self.append_pending(commit, &mut out, members_sync)?;
                    self.apply_group(commit, &mut out, members_sync, members);
                    out = GroupAppend::new(self.vlog.head_position(), commit.last_seq, 1);
                    (members, members_sync) = (0, false);
                }
                if !self.condition_holds(w, cond) {
                    continue;
                }
            }
            members += 1;
            members_sync |= w.sync;
            let used = out.head_len();
            if used > 0 && used + batch.bytes() as u64 > self.opts.segment_size {
                self.roll_user_segment(commit, &mut out)?;
            }
            let mut declared = std::mem::take(&mut commit.dicts_declared);
            let r = self.declare_dicts(commit, &mut declared, out.base.segment, batch.ops());
            commit.dicts_declared = declared;
            r?;
            out.add(
                batch,
                |t| any_unordered && self.keydirs.is_unordered(t),
                self.opts.value_threshold,
            );
        }
        // A batch whose condition failed wrote nothing and needs no sync.
        self.append_pending(commit, &mut out, members_sync)?;
        self.apply_group(commit, &mut out, members_sync, members);
        Ok(())
    }

    /// Writes the pending bytes at the head (with an fdatasync when `sync`);
    /// a failure poisons the database (whether the bytes landed is unknown).
    fn append_pending(
        &self,
        _commit: &CommitGuard<'_>,
        out: &mut GroupAppend,
        sync: bool,
    ) -> Result<()> {
        let r = match out.pending.len() {
            0 if !sync => Ok((0, 0)),
            0 => self.vlog.append(&[], true),
            1 => self.vlog.append(&out.pending[0], sync),
            _ => self.vlog.append(&out.pending.concat(), sync),
        };
        out.pending.clear();
        self.or_poison("vLog write", r).map(|_| ())
    }

    /// Seals the head segment once the pending bytes are in it, starts the
    /// next one, and writes the sealed segment's hint.
    fn roll_user_segment(&self, commit: &CommitGuard<'_>, out: &mut GroupAppend) -> Result<()> {
        self.append_pending(commit, out, false)?;
        let sealed = Position {
            segment: out.base.segment,
            offset: out.head_len(),
        };
        out.pending_bytes = 0;
        // The sealed segment's unordered records go into its hint.
        self.keydirs
            .apply_written(std::mem::take(&mut out.unordered));
        let rolled = self.vlog.roll(self.versions.new_file_number());
        self.or_poison("vLog roll", rolled)?;
        self.publish_segments();
        // Recorded only now that the seal is synced: at open, a recorded
        // segment that is missing or shorter lost durable records.
        self.record_roll(
            SealedSegment {
                number: sealed.segment,
                kind: SegmentKind::User,
                len: sealed.offset,
            },
            self.vlog.head_position().segment,
            out.seq,
        )?;
        self.write_hint(sealed.segment, sealed.offset);
        out.base = self.vlog.head_position();
        out.rolled = true;
        Ok(())
    }

    /// Records in the manifest that `sealed` was sealed, its records up to
    /// sequence number `last_seq`, and `head` is the new user head, made now
    /// (lock order: the commit lock, then the manifest's).
    fn record_roll(&self, sealed: SealedSegment, head: u64, last_seq: u64) -> Result<()> {
        let mut vs = self.versions.lock_manifest();
        let edit = VersionEdit {
            sealed: vec![sealed],
            vlog_head: Some(head),
            segment_info: vec![
                SegmentInfo {
                    number: sealed.number,
                    max_seq: last_seq,
                    ..SegmentInfo::default()
                },
                SegmentInfo {
                    number: head,
                    created_unix_secs: unix_now(),
                    min_seq: last_seq + 1,
                    max_seq: 0,
                },
            ],
            ..Default::default()
        };
        self.log_and_apply(&mut vs, edit, super::versions::LevelChange::default())
    }

    /// Makes a written group visible: memtable entries, keydir records, the
    /// new sequence number, the counters; freezes the memtable when it is
    /// full (or covers too much of the log).
    fn apply_group(
        &self,
        commit: &mut CommitGuard<'_>,
        out: &mut GroupAppend,
        sync: bool,
        batches: u64,
    ) {
        self.keydirs
            .apply_written(std::mem::take(&mut out.unordered));
        let sv = self.versions.current();
        for (k, v) in out.entries.drain(..) {
            sv.mem.table.insert(k, v);
        }
        if !out.range_dels.is_empty() {
            sv.mem.add_range_dels(out.range_dels.drain(..));
        }
        sv.mem.add_log_bytes(out.log_bytes);
        for &(seg, bytes) in &out.wal_only {
            sv.mem.add_wal_garbage(seg, bytes);
        }
        commit.last_seq = out.seq;
        self.writer.visible_seq.store(out.seq, Ordering::Release);
        self.values.count(out.value_counts.drain(..));
        let c = &self.counters;
        counters::add(&c.user_bytes_written, out.user_bytes);
        counters::add(&c.writes, out.writes);
        counters::add(&c.batches, batches);
        counters::add(&c.group_commits, 1);
        if sync {
            counters::add(&c.syncs, 1);
        }
        // An empty memtable (only unordered tables written) is frozen at a
        // segment roll, so its flush moves the replay point past the sealed
        // segment and GC may take it.
        if sv.mem.table.approx_bytes() >= self.opts.memtable_size
            || sv.mem.log_bytes() >= self.opts.max_replay_bytes
            || (out.rolled && sv.mem.table.is_empty() && sv.imms.is_empty())
        {
            self.rotate_memtable(commit);
        }
    }

    /// Writes the hint file of the just sealed `segment` (`len` bytes) from
    /// the unordered records the keydirs listed for it. A failure is only
    /// logged: without its hint a segment is scanned on open.
    pub(super) fn write_hint(&self, segment: u64, len: u64) {
        if !self.keydirs.any() {
            return;
        }
        let entries = self.keydirs.take_sealed(segment);
        if let Err(e) = crate::vlog::hint::write(&self.fs, &self.dir, segment, len, &entries) {
            log::warn!("{}: hint of segment {segment}: {e}", self.dir.display());
        }
    }

    /// Stalls the leader while GC is behind its space target (see
    /// `gc/pressure.rs`), while too many frozen memtables wait for flush or
    /// too many level-0 files wait for compaction; slows it down a little
    /// when level 0 is getting there.
    fn wait_for_room(&self, _commit: &CommitGuard<'_>) -> Result<()> {
        // Frozen memtables and level-0 files now.
        let backlog = |e: &Engine| {
            let sv = e.versions.current();
            let l0 = sv.version.levels.first().map_or(0, |l| l.len());
            (sv.imms.len(), l0)
        };
        let has_room = |e: &Engine, (imms, l0): (usize, usize)| {
            imms < e.opts.max_immutable_memtables && l0 < e.opts.l0_stop_trigger
        };
        self.wait_for_gc()?;
        let now = backlog(self);
        if !has_room(self, now) {
            counters::add(&self.counters.write_stalls, 1);
            self.wait_until(|e| has_room(e, backlog(e)) || e.health.is_poisoned())?;
            return self.health.check_writable();
        }
        if now.1 >= self.opts.l0_slowdown_trigger {
            counters::add(&self.counters.write_slowdowns, 1);
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}
