//! The background workers and the waits for their work.
//!
//! Three threads, each fed through its own channel: flush (frozen
//! memtables into level-0 SSTables), compaction (leveled merges, and the
//! manual full compaction), and automatic GC (when enabled; it also wakes
//! on a timer). They hold the engine weakly, so that dropping the last
//! handle shuts them down. A panic in a worker poisons the database.
//!
//! Waiters (`flush`, `compact`, `wait_for_background`, a writer stalled by
//! level 0) wait on one condition variable with an epoch: every change a
//! waiter may be waiting for (a flush or compaction installed, a manual
//! compaction done, a poison, a close) bumps the epoch under the status
//! lock and wakes them all. A waiter reads the epoch before it checks its
//! condition and sleeps only while the epoch is unchanged, so no wake-up is
//! lost and none is polled for.

use super::Engine;
use crate::error::{Error, Result};
use crate::lsm::compaction::NUM_LEVELS;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// A message to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Work,
    Stop,
}

/// One worker's channel.
struct Channel {
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
}

impl Channel {
    fn new() -> Channel {
        let (tx, rx) = crossbeam_channel::unbounded();
        Channel { tx, rx }
    }
}

/// What waiters wait on.
#[derive(Debug, Default)]
struct Status {
    /// Bumped at every change a waiter may wait for.
    epoch: u64,
    /// Manual full compactions asked for, and done (ids count up).
    compactions_requested: u64,
    compactions_done: u64,
}

/// Which worker a thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Flush,
    Compact,
}

/// The worker threads, their channels, and the waiters' condition.
pub(super) struct Workers {
    flush: Channel,
    compact: Channel,
    gc: Channel,
    /// Whether the GC thread runs (only then is its channel drained).
    background_gc: bool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    status: Mutex<Status>,
    cv: Condvar,
}

impl Workers {
    pub(super) fn new(background_gc: bool) -> Workers {
        Workers {
            flush: Channel::new(),
            compact: Channel::new(),
            gc: Channel::new(),
            background_gc,
            threads: Mutex::new(Vec::new()),
            status: Mutex::new(Status::default()),
            cv: Condvar::new(),
        }
    }

    /// Starts the threads of `engine`.
    pub(super) fn start(engine: &Arc<Engine>) -> Result<()> {
        let w = &engine.workers;
        for (role, rx, name) in [
            (Role::Flush, w.flush.rx.clone(), "wisckey-flush"),
            (Role::Compact, w.compact.rx.clone(), "wisckey-compact"),
        ] {
            let weak = Arc::downgrade(engine);
            let handle = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || worker(weak, rx, role))
                .map_err(|e| Error::io("starting a background thread", e))?;
            w.threads.lock().push(handle);
        }
        if w.background_gc {
            let weak = Arc::downgrade(engine);
            let rx = w.gc.rx.clone();
            let every = engine.opts.gc_interval;
            let handle = std::thread::Builder::new()
                .name("wisckey-gc".into())
                .spawn(move || gc_worker(weak, rx, every))
                .map_err(|e| Error::io("starting the GC thread", e))?;
            w.threads.lock().push(handle);
        }
        Ok(())
    }

    pub(super) fn wake_flush(&self) {
        let _ = self.flush.tx.send(Msg::Work);
    }

    pub(super) fn wake_compaction(&self) {
        let _ = self.compact.tx.send(Msg::Work);
    }

    /// Nudges automatic GC, if it runs.
    pub(super) fn wake_gc(&self) {
        if self.background_gc {
            let _ = self.gc.tx.send(Msg::Work);
        }
    }

    /// Wakes every waiter: something they may wait for changed.
    pub(super) fn signal(&self) {
        let mut st = self.status.lock();
        st.epoch = st.epoch.wrapping_add(1);
        self.cv.notify_all();
    }

    fn epoch(&self) -> u64 {
        self.status.lock().epoch
    }

    /// Sleeps until something is signalled, or for `at_most`.
    pub(super) fn wait_for_change(&self, at_most: Duration) {
        let mut st = self.status.lock();
        let seen = st.epoch;
        let deadline = std::time::Instant::now() + at_most;
        while st.epoch == seen {
            if self.cv.wait_until(&mut st, deadline).timed_out() {
                return;
            }
        }
    }

    /// Sleeps until the epoch moves past `seen`.
    fn wait_past(&self, seen: u64) {
        let mut st = self.status.lock();
        while st.epoch == seen {
            self.cv.wait(&mut st);
        }
    }

    /// Asks for a manual full compaction; returns its id.
    pub(super) fn request_compaction(&self) -> u64 {
        let mut st = self.status.lock();
        st.compactions_requested += 1;
        let id = st.compactions_requested;
        drop(st);
        self.wake_compaction();
        id
    }

    /// The newest manual compaction asked for and not done yet, if any.
    pub(super) fn pending_manual_compaction(&self) -> Option<u64> {
        let st = self.status.lock();
        (st.compactions_requested > st.compactions_done).then_some(st.compactions_requested)
    }

    /// Marks manual compactions up to `id` done, and wakes their waiters.
    pub(super) fn manual_compaction_done(&self, id: u64) {
        let mut st = self.status.lock();
        st.compactions_done = st.compactions_done.max(id);
        st.epoch = st.epoch.wrapping_add(1);
        self.cv.notify_all();
    }

    fn compaction_done(&self, id: u64) -> bool {
        self.status.lock().compactions_done >= id
    }

    /// Stops the threads and waits for them (but a worker never waits for
    /// itself: the last handle may be dropped on a worker thread).
    pub(super) fn stop(&self) {
        let _ = self.flush.tx.send(Msg::Stop);
        let _ = self.compact.tx.send(Msg::Stop);
        let _ = self.gc.tx.send(Msg::Stop);
        let handles = std::mem::take(&mut *self.threads.lock());
        for h in handles {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
        self.signal();
    }
}

impl Engine {
    /// Waits until `done` holds: nudges the flush and compaction workers,
    /// then sleeps between the changes they signal. Fails once the database
    /// is poisoned or closed meanwhile.
    pub(super) fn wait_until(&self, done: impl Fn(&Engine) -> bool) -> Result<()> {
        self.workers.wake_flush();
        self.workers.wake_compaction();
        loop {
            let seen = self.workers.epoch();
            if done(self) {
                return Ok(());
            }
            self.health.check_not_poisoned()?;
            self.health.check_open()?;
            self.workers.wait_past(seen);
        }
    }

    /// Freezes the memtable and waits until every frozen memtable is in an
    /// SSTable (and the replay point has moved past it).
    pub(crate) fn flush(&self) -> Result<()> {
        self.health.check_open()?;
        if self.health.is_read_only() {
            return self.health.check_writable();
        }
        {
            let commit = self.writer.lock_commit();
            self.rotate_memtable(&commit);
        }
        self.wait_until(|e| e.versions.current().imms.is_empty())
    }

    /// Waits until no frozen memtable waits for flush and no level needs
    /// compaction.
    pub(crate) fn wait_for_background(&self) -> Result<()> {
        if self.health.is_read_only() {
            // No background work runs.
            return self.health.check_open();
        }
        self.wait_until(|e| e.versions.current().imms.is_empty() && !e.needs_compaction())
    }

    /// Flushes, then merges every SSTable into the last level, and waits.
    pub(crate) fn compact(&self) -> Result<()> {
        self.flush()?;
        let id = self.workers.request_compaction();
        self.wait_until(|e| e.workers.compaction_done(id))
    }
}

/// The flush or compaction worker: one pass per burst of wake-ups.
fn worker(weak: Weak<Engine>, rx: Receiver<Msg>, role: Role) {
    let mut pointers = vec![Vec::new(); NUM_LEVELS];
    while let Ok(msg) = rx.recv() {
        if msg == Msg::Stop {
            return;
        }
        // Coalesce a burst of wake-ups into one pass.
        while let Ok(m) = rx.try_recv() {
            if m == Msg::Stop {
                return;
            }
        }
        let Some(engine) = weak.upgrade() else { return };
        if !engine.health.is_poisoned() {
            let r = catch_unwind(AssertUnwindSafe(|| match role {
                Role::Flush => engine.flush_all(),
                Role::Compact => engine.compact_until_settled(&mut pointers),
            }));
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => engine.poison(format!("background work failed: {e}")),
                Err(panic) => engine.poison(format!(
                    "the {role:?} worker panicked: {}",
                    panic_message(&panic)
                )),
            }
        }
        engine.workers.signal();
    }
}

/// Automatic GC: wakes every `every` (or when nudged) and collects while the
/// vLog's space amplification is over its target. A failed pass is logged
/// and retried later; a failed sync inside it has poisoned the database.
fn gc_worker(weak: Weak<Engine>, rx: Receiver<Msg>, every: Duration) {
    loop {
        match rx.recv_timeout(every) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Work) | Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(engine) = weak.upgrade() else { return };
        if engine.health.is_closed() {
            return;
        }
        if engine.health.is_poisoned() {
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| engine.auto_gc())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("{}: automatic GC: {e}", engine.dir.display()),
            Err(panic) => {
                engine.poison(format!("the GC worker panicked: {}", panic_message(&panic)))
            }
        }
        engine.release_retired_segments();
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}
