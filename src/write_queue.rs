//! Group commit: concurrent writers queue their batches; whoever finds no
//! leader at work becomes the leader, takes every queued batch, and commits
//! them with one vLog `write` (and one `fdatasync` when any asked for sync).

use crate::batch::WriteBatch;
use crate::error::Result;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;

/// Most bytes one group commit takes (a single larger batch still goes alone).
const MAX_GROUP_BYTES: usize = 8 << 20;

/// One writer's request, waiting to be committed.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub(crate) batch: Mutex<Option<WriteBatch>>,
    pub(crate) bytes: usize,
    pub(crate) sync: bool,
    result: Mutex<Option<Result<()>>>,
}

impl PendingWrite {
    /// Hands the outcome to the waiting writer.
    pub(crate) fn finish(&self, r: Result<()>) {
        *self.result.lock() = Some(r);
    }
}

#[derive(Debug, Default)]
struct QueueState {
    pending: VecDeque<Arc<PendingWrite>>,
    leader: bool,
}

/// The queue of writers.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    state: Mutex<QueueState>,
    cv: Condvar,
}

impl WriteQueue {
    /// Queues `batch` and returns once it is committed, by this thread as the
    /// leader or by another. `commit` receives a group and must call
    /// [`PendingWrite::finish`] on every member.
    pub(crate) fn write(
        &self,
        batch: WriteBatch,
        sync: bool,
        commit: impl Fn(&[Arc<PendingWrite>]),
    ) -> Result<()> {
        let me = Arc::new(PendingWrite {
            bytes: batch.bytes(),
            batch: Mutex::new(Some(batch)),
            sync,
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
            let mut group = Vec::new();
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
