//! Whether the database may still be used: closed (by `close` or the last
//! handle's drop) and poisoned (a failed sync or write, whose outcome on
//! disk is unknown: nothing written since the last good sync can be trusted,
//! so writes are refused until the database is reopened, invariant 8).
//!
//! A database poisoned by a full disk also gives back its disk reserve
//! (`reserve.rs`): nothing is written until the reopen, which needs the room.

use super::reserve::Reserve;
use super::Engine;
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Closed and poisoned, with the poison's reason; and read-only.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// The directory, when the database is open read-only.
    read_only: Option<PathBuf>,
    /// The disk reserve, released when a full disk poisons the database
    /// (none when read-only).
    reserve: Option<Arc<Reserve>>,
    closed: AtomicBool,
    poisoned: AtomicBool,
    /// Why the database was poisoned (the first reason only).
    reason: Mutex<Option<String>>,
}

impl Health {
    /// The health of a database just opened (read-only for `Some(dir)`),
    /// with its disk reserve.
    pub(super) fn new(read_only: Option<PathBuf>, reserve: Option<Arc<Reserve>>) -> Health {
        Health {
            read_only,
            reserve,
            ..Health::default()
        }
    }

    pub(super) fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// Marks the database closed; true the first time.
    pub(super) fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(super) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// `Err` once the database is closed.
    pub(super) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::InvalidArgument("the database is closed".into()));
        }
        Ok(())
    }

    /// `Err` once the database is closed or poisoned, and always when it is
    /// open read-only.
    pub(super) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if let Some(dir) = &self.read_only {
            return Err(Error::ReadOnly(dir.clone()));
        }
        self.check_not_poisoned()
    }

    /// `Err(Error::Poisoned)` once the database is poisoned.
    pub(super) fn check_not_poisoned(&self) -> Result<()> {
        if self.is_poisoned() {
            let msg = self.reason.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned(msg));
        }
        Ok(())
    }

    fn poison(&self, msg: String) {
        let mut r = self.reason.lock();
        if r.is_none() {
            *r = Some(msg);
        }
        self.poisoned.store(true, Ordering::Release);
    }
}

impl Engine {
    /// Refuses further writes and wakes every waiter (they return
    /// `Error::Poisoned`). When the disk was found full, gives the disk
    /// reserve back: the reopen, the deletes and GC need the room, and
    /// nothing is written before the reopen.
    pub(super) fn poison(&self, msg: String) {
        log::error!("{}: poisoned: {msg}", self.dir.display());
        self.health.poison(msg);
        if let Some(r) = self.health.reserve.as_ref().filter(|r| r.saw_disk_full()) {
            if let Some(bytes) = r.release() {
                log::warn!(
                    "{}: the disk is full: released the {bytes}-byte disk reserve ({}); \
                     reopen the database, delete data and run GC (docs/gc-tuning.md, \
                     \"A full disk\")",
                    self.dir.display(),
                    crate::files::RESERVE
                );
            }
        }
        self.workers.signal();
    }

    /// Passes `r` through, poisoning the database when it is an error: for
    /// every write or sync whose failure leaves the disk in an unknown state
    /// (the one helper for invariant 8).
    pub(super) fn or_poison<T>(&self, what: &str, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.poison(format!("{what} failed: {e}"));
        }
        r
    }

    /// Syncs the vLog (both heads); a failure poisons the database.
    pub(super) fn sync_vlog(&self) -> Result<()> {
        let r = self.vlog.sync();
        self.or_poison("vLog sync", r)
    }
}

impl Engine {
    /// Makes every acknowledged write durable against power loss. Refused
    /// once poisoned: after a failed fsync a later one that succeeds proves
    /// nothing about the bytes the failed one lost. Read-only: nothing was
    /// written, nothing to do.
    pub(crate) fn sync(&self) -> Result<()> {
        if self.health.is_read_only() {
            return self.health.check_open();
        }
        self.health.check_writable()?;
        self.sync_vlog()
    }
}
