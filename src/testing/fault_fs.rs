//! A testing tool: an in-memory file system with a durability model, a
//! power-loss switch and failure injection, in the spirit of LevelDB's
//! `fault_injection_test` Env.
//!
//! Durability model:
//! - each file has its *current* contents (what readers see, like the page
//!   cache) and its *durable* contents (as of its last `sync_data`/`sync_all`);
//! - directory entries (create, rename, remove) are durable only once
//!   `sync_dir` of their directory has run: the namespace has a current and a
//!   durable copy too. That holds for directories as well: a directory made
//!   by `create_dir_all` survives a power loss only once its parent was
//!   synced after it was made (and its parent survives), and with it go the
//!   files in it (the strict model of ALICE and CrashMonkey);
//! - [`FaultFs::power_loss`] reverts the namespace to its durable copy and
//!   every file to its durable contents plus a torn, sector-granular prefix of
//!   its unsynced changes, and kills every handle opened before (a reboot).
//!
//! Failure injection: [`FaultFs::fail_after`] fails the n-th data-path
//! operation from now (write, sync_data, sync_all, set_len, rename, remove,
//! sync_dir, create), once or persistently; [`FaultFs::crash`] fails every
//! operation until [`FaultFs::recover`], so that dropping a database cannot
//! make anything durable before the power goes.
//!
//! Not for production use: everything lives in memory behind one mutex.
//!
//! Why one file: the durability model, the power-loss switch and the
//! failure injection all act on the one in-memory state under that mutex;
//! split apart, each piece would reach into the others' halves of it.

use crate::io::{FileHandle, FileLock, Fs};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sector size of the simulated device: power loss keeps or drops
/// unsynced data in whole sectors.
pub const SECTOR: usize = 512;

/// What an injected failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// The operation fails with `EIO` and has no effect.
    Eio,
    /// The operation fails with `ENOSPC` and has no effect.
    Enospc,
    /// The next write (at or after the chosen operation) writes only part of
    /// its buffer and returns `Ok(k)` with `k < len`; other operations are
    /// not affected. Buffers of one byte are written whole.
    ShortWrite,
}

/// Whether an injected failure fires once or stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Only the chosen operation fails; later ones succeed.
    Once,
    /// The chosen operation and every later data-path operation fail.
    Persistent,
}

/// The kind of a recorded operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `Fs::create_dir_all`.
    CreateDir,
    /// `Fs::create` (counted by `fail_after`).
    Create,
    /// `Fs::open`; `offset` is 1 when writable.
    Open,
    /// `FileHandle::write_at` (counted).
    Write,
    /// `FileHandle::read_at`.
    Read,
    /// `FileHandle::sync_data` (counted).
    SyncData,
    /// `FileHandle::sync_all` (counted).
    SyncAll,
    /// `FileHandle::len`.
    Len,
    /// `FileHandle::set_len` (counted).
    SetLen,
    /// `Fs::rename` (counted).
    Rename,
    /// `Fs::remove` (counted).
    Remove,
    /// `Fs::sync_dir` (counted).
    SyncDir,
    /// `Fs::list`.
    List,
    /// `Fs::exists`.
    Exists,
    /// `Fs::lock`.
    Lock,
}

impl OpKind {
    /// The operations that `fail_after` counts and may fail.
    pub fn is_data_path(self) -> bool {
        matches!(
            self,
            OpKind::Create
                | OpKind::Write
                | OpKind::SyncData
                | OpKind::SyncAll
                | OpKind::SetLen
                | OpKind::Rename
                | OpKind::Remove
                | OpKind::SyncDir
        )
    }
}

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// Running number of the operation (all kinds, from 0).
    pub seq: u64,
    /// What it was.
    pub kind: OpKind,
    /// The file or directory it named (the source of a rename).
    pub path: PathBuf,
    /// The target of a rename.
    pub to: Option<PathBuf>,
    /// Offset of a read or write; new length of `set_len`.
    pub offset: u64,
    /// Bytes asked for by a read or write.
    pub len: u64,
    /// Whether the operation returned an error (or a short write).
    pub failed: bool,
}

#[derive(Debug, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    countdown: u64,
    mode: FailMode,
    repeat: Repeat,
    fired: bool,
}

#[derive(Debug, Default)]
struct State {
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    current: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    /// The directories whose entry in their parent is durable.
    durable_dirs: BTreeSet<PathBuf>,
    /// Path → id of the guard holding it exclusively.
    locks: BTreeMap<PathBuf, u64>,
    /// Path → shared holders.
    shared_locks: BTreeMap<PathBuf, usize>,
    next_lock: u64,
    /// Bumped by every power loss; handles of older epochs are dead.
    epoch: u64,
    ops: Vec<OpRecord>,
    op_count: u64,
    data_op_count: u64,
    armed: Option<Armed>,
    crashed: bool,
    injected: u64,
}

/// What the failure injector decided for one data-path operation.
enum Verdict {
    Proceed,
    Fail(io::Error),
    Short,
}

impl State {
    fn record(&mut self, kind: OpKind, path: &Path, offset: u64, len: u64) -> usize {
        self.ops.push(OpRecord {
            seq: self.op_count,
            kind,
            path: path.to_path_buf(),
            to: None,
            offset,
            len,
            failed: false,
        });
        self.op_count += 1;
        self.ops.len() - 1
    }

    fn fail(&mut self, idx: usize, e: io::Error) -> io::Error {
        self.ops[idx].failed = true;
        e
    }

    /// Records an operation and decides whether it fails. `epoch` is the
    /// handle's epoch, if the operation goes through a handle.
    fn begin(
        &mut self,
        kind: OpKind,
        path: &Path,
        offset: u64,
        len: u64,
        epoch: Option<u64>,
    ) -> (usize, Verdict) {
        let idx = self.record(kind, path, offset, len);
        if self.crashed {
            self.ops[idx].failed = true;
            return (idx, Verdict::Fail(eio("crashed")));
        }
        if epoch.is_some_and(|e| e != self.epoch) {
            self.ops[idx].failed = true;
            return (idx, Verdict::Fail(stale()));
        }
        if !kind.is_data_path() {
            return (idx, Verdict::Proceed);
        }
        self.data_op_count += 1;
        let Some(mut a) = self.armed else {
            return (idx, Verdict::Proceed);
        };
        if !a.fired {
            if a.countdown > 0 {
                a.countdown -= 1;
                self.armed = Some(a);
                return (idx, Verdict::Proceed);
            }
            a.fired = true;
        }
        let verdict = match a.mode {
            FailMode::Eio => Verdict::Fail(eio("injected")),
            FailMode::Enospc => Verdict::Fail(io::Error::from_raw_os_error(ENOSPC)),
            FailMode::ShortWrite if kind == OpKind::Write && len > 1 => Verdict::Short,
            // A short write waits for the next write of more than a byte.
            FailMode::ShortWrite => {
                self.armed = Some(a);
                return (idx, Verdict::Proceed);
            }
        };
        self.armed = match a.repeat {
            Repeat::Once => None,
            Repeat::Persistent => Some(a),
        };
        self.injected += 1;
        self.ops[idx].failed = true;
        (idx, verdict)
    }

    fn inode_mut(&mut self, ino: u64) -> &mut Inode {
        self.inodes.entry(ino).or_default()
    }

    /// What a power loss keeps of the namespace: the directories durable
    /// in parents that are themselves kept, and the durable entries of
    /// files in them.
    fn forget_undurable_namespace(&mut self) {
        let kept: BTreeSet<PathBuf> = self
            .durable_dirs
            .iter()
            .filter(|d| {
                d.ancestors()
                    .skip(1)
                    .all(|a| a.as_os_str().is_empty() || self.durable_dirs.contains(a))
            })
            .cloned()
            .collect();
        self.durable.retain(|p, _| {
            p.parent()
                .is_none_or(|d| d.as_os_str().is_empty() || kept.contains(d))
        });
        self.durable_dirs = kept.clone();
        self.dirs = kept;
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if p.as_os_str().is_empty() || self.dirs.contains(p) => Ok(()),
            None => Ok(()),
            Some(p) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("directory {} does not exist", p.display()),
            )),
        }
    }
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn eio(why: &str) -> io::Error {
    io::Error::new(
        io::Error::from_raw_os_error(EIO).kind(),
        format!("EIO ({why}, FaultFs)"),
    )
}

fn stale() -> io::Error {
    io::Error::other("file handle opened before a power loss (FaultFs)")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found (FaultFs)", path.display()),
    )
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

/// The in-memory, fault-injecting file system (a testing tool; see the
/// module documentation for the durability model).
///
/// Cloning is cheap and gives another handle to the same file system, so a
/// test can keep one and hand another to [`crate::Options::fs`].
#[derive(Debug, Clone, Default)]
pub struct FaultFs {
    shared: Arc<Shared>,
}

impl FaultFs {
    /// An empty file system with only the root directory.
    pub fn new() -> Self {
        let fs = FaultFs::default();
        let mut st = fs.shared.state.lock();
        st.dirs.insert(PathBuf::from("/"));
        st.durable_dirs.insert(PathBuf::from("/"));
        drop(st);
        fs
    }

    /// Makes the `n`-th data-path operation from now fail (`n = 0`: the next
    /// one), once or persistently. Replaces any failure armed before.
    pub fn fail_after(&self, n: u64, mode: FailMode, repeat: Repeat) {
        self.shared.state.lock().armed = Some(Armed {
            countdown: n,
            mode,
            repeat,
            fired: false,
        });
    }

    /// From now on every operation fails with `EIO` (reads, lists and locks
    /// too), until [`FaultFs::recover`].
    pub fn crash(&self) {
        self.shared.state.lock().crashed = true;
    }

    /// Clears `crash` and any armed failure.
    pub fn recover(&self) {
        let mut st = self.shared.state.lock();
        st.crashed = false;
        st.armed = None;
    }

    /// Whether an injected failure is still armed (it has not fired yet, or
    /// it is persistent).
    pub fn failure_armed(&self) -> bool {
        self.shared.state.lock().armed.is_some()
    }

    /// Simulates a power loss and reboot: the namespace reverts to its
    /// durable state, each file to its durable contents plus a torn prefix of
    /// its unsynced changes (chosen by `rng_seed`: a random number of whole
    /// dirty sectors in offset order, sometimes with the last kept sector
    /// garbled where it is new, sometimes with the file's new length kept
    /// but the dropped sectors zero), every handle opened before becomes
    /// dead and every lock is released. Injected failures stay armed.
    pub fn power_loss(&self, rng_seed: u64) {
        let mut st = self.shared.state.lock();
        let mut rng = Rng(rng_seed ^ 0x5eed_f00d_dead_beef);
        st.epoch += 1;
        st.locks.clear();
        st.shared_locks.clear();
        st.forget_undurable_namespace();
        st.current = st.durable.clone();
        let live: BTreeSet<u64> = st.durable.values().copied().collect();
        st.inodes.retain(|ino, _| live.contains(ino));
        for inode in st.inodes.values_mut() {
            let after = torn(&inode.durable, &inode.current, &mut rng);
            inode.durable = after.clone();
            inode.current = after;
        }
    }

    /// Simulates a power loss that keeps nothing unsynced (no torn sectors).
    pub fn power_loss_clean(&self) {
        let mut st = self.shared.state.lock();
        st.epoch += 1;
        st.locks.clear();
        st.shared_locks.clear();
        st.forget_undurable_namespace();
        st.current = st.durable.clone();
        let live: BTreeSet<u64> = st.durable.values().copied().collect();
        st.inodes.retain(|ino, _| live.contains(ino));
        for inode in st.inodes.values_mut() {
            inode.current = inode.durable.clone();
        }
    }

    /// Every operation recorded so far, oldest first.
    pub fn ops(&self) -> Vec<OpRecord> {
        self.shared.state.lock().ops.clone()
    }

    /// Number of operations of every kind so far.
    pub fn op_count(&self) -> u64 {
        self.shared.state.lock().op_count
    }

    /// Number of data-path operations so far (the ones `fail_after` counts).
    pub fn data_op_count(&self) -> u64 {
        self.shared.state.lock().data_op_count
    }

    /// Number of failures injected so far (short writes included, `crash`
    /// and dead handles not).
    pub fn injected(&self) -> u64 {
        self.shared.state.lock().injected
    }

    /// Forgets the recorded operations (the counters keep running).
    pub fn clear_ops(&self) {
        self.shared.state.lock().ops.clear();
    }

    /// The current contents of `path` (what a reader sees), if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.shared.state.lock();
        let ino = st.current.get(path)?;
        Some(
            st.inodes
                .get(ino)
                .map(|i| i.current.clone())
                .unwrap_or_default(),
        )
    }

    /// The contents `path` would have after a clean power loss, if its
    /// directory entry is durable.
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.shared.state.lock();
        let ino = st.durable.get(path)?;
        Some(
            st.inodes
                .get(ino)
                .map(|i| i.durable.clone())
                .unwrap_or_default(),
        )
    }

    /// Replaces the current contents of `path` without recording an
    /// operation or checking failures (for corrupting files in tests). The
    /// change is durable at once.
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        let mut st = self.shared.state.lock();
        let ino = *st.current.get(path).ok_or_else(|| not_found(path))?;
        let inode = st.inode_mut(ino);
        inode.current = data.clone();
        inode.durable = data;
        Ok(())
    }

    fn handle(&self, ino: u64, path: &Path, epoch: u64, writable: bool) -> Arc<dyn FileHandle> {
        Arc::new(FaultFile {
            shared: self.shared.clone(),
            ino,
            path: path.to_path_buf(),
            epoch,
            writable,
        })
    }
}

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The contents of a file after a power loss: `durable` plus a prefix, in
/// offset order, of the sectors where `current` differs from it.
fn torn(durable: &[u8], current: &[u8], rng: &mut Rng) -> Vec<u8> {
    let span = durable.len().max(current.len());
    let dirty: Vec<usize> = (0..span.div_ceil(SECTOR))
        .filter(|&s| {
            let (a, b) = (s * SECTOR, ((s + 1) * SECTOR).min(span));
            durable.get(a..b.min(durable.len())) != current.get(a..b.min(current.len()))
                || (durable.len() < b) != (current.len() < b)
        })
        .collect();
    if dirty.is_empty() {
        return durable.to_vec();
    }
    let keep = match rng.below(3) {
        0 => 0,
        1 => dirty.len(),
        _ => rng.below(dirty.len() as u64 + 1) as usize,
    };
    if keep == dirty.len() && rng.below(4) != 0 {
        return current.to_vec();
    }
    let mut out = durable.to_vec();
    let mut last_kept = None;
    for &s in &dirty[..keep] {
        let a = s * SECTOR;
        let b = ((s + 1) * SECTOR).min(current.len());
        if a >= current.len() {
            // The sector is past the new end: the file shrank there.
            continue;
        }
        if out.len() < b {
            out.resize(b, 0);
        }
        out[a..b].copy_from_slice(&current[a..b]);
        last_kept = Some((a, b));
    }
    if keep == dirty.len() {
        out.truncate(current.len());
    } else if current.len() > out.len() && rng.below(4) == 0 {
        // The new length reached the disk, the data did not.
        out.resize(current.len(), 0);
    }
    if let Some((a, b)) = last_kept {
        // Garble only bytes past the durable end, never synced data.
        let from = a.max(durable.len());
        if from < b && rng.below(4) == 0 {
            for byte in &mut out[from..b] {
                *byte = rng.next() as u8;
            }
        }
    }
    out
}

#[derive(Debug)]
struct FaultFile {
    shared: Arc<Shared>,
    ino: u64,
    path: PathBuf,
    epoch: u64,
    writable: bool,
}

fn bad_fd(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{} opened read-only (FaultFs)", path.display()),
    )
}

impl FileHandle for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut st = self.shared.state.lock();
        let (_, v) = st.begin(
            OpKind::Read,
            &self.path,
            offset,
            buf.len() as u64,
            Some(self.epoch),
        );
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        let data = &st.inode_mut(self.ino).current;
        let Ok(off) = usize::try_from(offset) else {
            return Ok(0);
        };
        if off >= data.len() {
            return Ok(0);
        }
        let n = buf.len().min(data.len() - off);
        buf[..n].copy_from_slice(&data[off..off + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(
            OpKind::Write,
            &self.path,
            offset,
            buf.len() as u64,
            Some(self.epoch),
        );
        let n = match v {
            Verdict::Fail(e) => return Err(e),
            Verdict::Short => buf.len() / 2,
            Verdict::Proceed => buf.len(),
        };
        if !self.writable {
            return Err(st.fail(idx, bad_fd(&self.path)));
        }
        let off = offset as usize;
        let data = &mut st.inode_mut(self.ino).current;
        if data.len() < off + n {
            data.resize(off + n, 0);
        }
        data[off..off + n].copy_from_slice(&buf[..n]);
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync(OpKind::SyncData)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync(OpKind::SyncAll)
    }

    fn len(&self) -> io::Result<u64> {
        let mut st = self.shared.state.lock();
        if let (_, Verdict::Fail(e)) = st.begin(OpKind::Len, &self.path, 0, 0, Some(self.epoch)) {
            return Err(e);
        }
        Ok(st.inode_mut(self.ino).current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(OpKind::SetLen, &self.path, len, 0, Some(self.epoch));
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        if !self.writable {
            return Err(st.fail(idx, bad_fd(&self.path)));
        }
        st.inode_mut(self.ino).current.resize(len as usize, 0);
        Ok(())
    }

    /// Accepted and not recorded: starting writeback makes nothing durable
    /// (only a sync does, here as in the kernel), so a crash after it loses
    /// what a crash before it would. Not being an op, it moves no armed
    /// fault.
    fn start_writeback(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

impl FaultFile {
    fn sync(&self, kind: OpKind) -> io::Result<()> {
        let mut st = self.shared.state.lock();
        if let (_, Verdict::Fail(e)) = st.begin(kind, &self.path, 0, 0, Some(self.epoch)) {
            return Err(e);
        }
        let inode = st.inode_mut(self.ino);
        inode.durable = inode.current.clone();
        Ok(())
    }
}

#[derive(Debug)]
struct FaultLock {
    shared: Arc<Shared>,
    path: PathBuf,
    id: u64,
    /// Whether it is one of the shared holders (their count is kept per
    /// path; `id` is then the power-loss epoch it was taken in).
    is_shared: bool,
}

impl FileLock for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        if self.is_shared {
            if self.id == st.epoch {
                if let Some(n) = st.shared_locks.get_mut(&self.path) {
                    *n -= 1;
                    if *n == 0 {
                        st.shared_locks.remove(&self.path);
                    }
                }
            }
        } else if st.locks.get(&self.path) == Some(&self.id) {
            st.locks.remove(&self.path);
        }
    }
}

impl Fs for FaultFs {
    fn name(&self) -> &'static str {
        "fault"
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.shared.state.lock();
        if let (_, Verdict::Fail(e)) = st.begin(OpKind::CreateDir, path, 0, 0, None) {
            return Err(e);
        }
        // Durable once their parents are synced (see the module docs).
        for a in path.ancestors() {
            if !a.as_os_str().is_empty() {
                st.dirs.insert(a.to_path_buf());
            }
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let (ino, epoch) = {
            let mut st = self.shared.state.lock();
            let (idx, v) = st.begin(OpKind::Create, path, 0, 0, None);
            if let Verdict::Fail(e) = v {
                return Err(e);
            }
            if let Err(e) = st.check_parent(path) {
                return Err(st.fail(idx, e));
            }
            let ino = match st.current.get(path) {
                Some(&ino) => {
                    st.inode_mut(ino).current.clear();
                    ino
                }
                None => {
                    st.next_inode += 1;
                    let ino = st.next_inode;
                    st.inodes.insert(ino, Inode::default());
                    st.current.insert(path.to_path_buf(), ino);
                    ino
                }
            };
            (ino, st.epoch)
        };
        Ok(self.handle(ino, path, epoch, true))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>> {
        let (ino, epoch) = {
            let mut st = self.shared.state.lock();
            let (idx, v) = st.begin(OpKind::Open, path, u64::from(writable), 0, None);
            if let Verdict::Fail(e) = v {
                return Err(e);
            }
            let Some(&ino) = st.current.get(path) else {
                return Err(st.fail(idx, not_found(path)));
            };
            (ino, st.epoch)
        };
        Ok(self.handle(ino, path, epoch, writable))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(OpKind::Rename, from, 0, 0, None);
        st.ops[idx].to = Some(to.to_path_buf());
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        if let Err(e) = st.check_parent(to) {
            return Err(st.fail(idx, e));
        }
        let Some(ino) = st.current.remove(from) else {
            return Err(st.fail(idx, not_found(from)));
        };
        st.current.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(OpKind::Remove, path, 0, 0, None);
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        if st.current.remove(path).is_none() {
            return Err(st.fail(idx, not_found(path)));
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(OpKind::SyncDir, path, 0, 0, None);
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        if !st.dirs.contains(path) {
            return Err(st.fail(idx, not_found(path)));
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(path);
        let subdirs: Vec<PathBuf> = st.dirs.iter().filter(|p| in_dir(p)).cloned().collect();
        st.durable_dirs.retain(|p| !in_dir(p));
        st.durable_dirs.extend(subdirs);
        st.durable.retain(|p, _| !in_dir(p));
        let now: Vec<(PathBuf, u64)> = st
            .current
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        st.durable.extend(now);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(OpKind::List, dir, 0, 0, None);
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        if !st.dirs.contains(dir) {
            return Err(st.fail(idx, not_found(dir)));
        }
        let files = st.current.keys();
        let subdirs = st.dirs.iter();
        Ok(files
            .chain(subdirs)
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let mut st = self.shared.state.lock();
        st.record(OpKind::Exists, path, 0, 0);
        st.current.contains_key(path) || st.dirs.contains(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(OpKind::Lock, path, 0, 0, None);
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        if let Err(e) = st.check_parent(path) {
            return Err(st.fail(idx, e));
        }
        if st.locks.contains_key(path) || st.shared_locks.contains_key(path) {
            return Err(st.fail(
                idx,
                io::Error::new(io::ErrorKind::WouldBlock, "lock held elsewhere (FaultFs)"),
            ));
        }
        if !st.current.contains_key(path) {
            st.next_inode += 1;
            let ino = st.next_inode;
            st.inodes.insert(ino, Inode::default());
            st.current.insert(path.to_path_buf(), ino);
        }
        st.next_lock += 1;
        let id = st.next_lock;
        st.locks.insert(path.to_path_buf(), id);
        Ok(Box::new(FaultLock {
            shared: self.shared.clone(),
            path: path.to_path_buf(),
            id,
            is_shared: false,
        }))
    }

    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.shared.state.lock();
        let (idx, v) = st.begin(OpKind::Lock, path, 1, 0, None);
        if let Verdict::Fail(e) = v {
            return Err(e);
        }
        if !st.current.contains_key(path) {
            return Err(st.fail(idx, not_found(path)));
        }
        if st.locks.contains_key(path) {
            return Err(st.fail(
                idx,
                io::Error::new(io::ErrorKind::WouldBlock, "lock held elsewhere (FaultFs)"),
            ));
        }
        *st.shared_locks.entry(path.to_path_buf()).or_insert(0) += 1;
        Ok(Box::new(FaultLock {
            shared: self.shared.clone(),
            path: path.to_path_buf(),
            id: st.epoch,
            is_shared: true,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn setup() -> FaultFs {
        let fs = FaultFs::new();
        fs.create_dir_all(&p("/db")).unwrap();
        fs.sync_dir(&p("/")).unwrap();
        fs
    }

    fn read_all(fs: &FaultFs, path: &str) -> Vec<u8> {
        let f = fs.open(&p(path), false).unwrap();
        let mut buf = vec![0u8; f.len().unwrap() as usize];
        f.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    #[test]
    fn unsynced_data_is_lost_synced_kept() {
        let fs = setup();
        let f = fs.create(&p("/db/a")).unwrap();
        fs.sync_dir(&p("/db")).unwrap();
        f.write_all_at(b"synced", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(b" and not", 6).unwrap();
        assert_eq!(read_all(&fs, "/db/a"), b"synced and not");
        fs.power_loss_clean();
        assert_eq!(read_all(&fs, "/db/a"), b"synced");
        // Old handles are dead after the reboot.
        assert!(f.write_at(b"x", 0).is_err());
        assert!(f.read_at(&mut [0u8; 1], 0).is_err());
    }

    #[test]
    fn directories_need_their_parent_synced() {
        let fs = FaultFs::new();
        fs.create_dir_all(&p("/a/b/c")).unwrap();
        let f = fs.create(&p("/a/b/c/f")).unwrap();
        f.write_all_at(b"data", 0).unwrap();
        f.sync_all().unwrap();
        fs.sync_dir(&p("/a/b/c")).unwrap();
        // The file is durable in its directory, but /a is not durable in /.
        fs.power_loss_clean();
        assert!(!fs.exists(&p("/a")));
        assert!(!fs.exists(&p("/a/b/c/f")));
        assert!(fs.list(&p("/")).unwrap().is_empty());
        // Synced top-down, the chain survives; a parent synced below a
        // lost ancestor does not help.
        fs.create_dir_all(&p("/a/b/c")).unwrap();
        fs.sync_dir(&p("/a")).unwrap();
        fs.sync_dir(&p("/a/b")).unwrap();
        fs.power_loss_clean();
        assert!(!fs.exists(&p("/a/b")));
        fs.create_dir_all(&p("/a/b/c")).unwrap();
        for d in ["/", "/a", "/a/b"] {
            fs.sync_dir(&p(d)).unwrap();
        }
        let f = fs.create(&p("/a/b/c/f")).unwrap();
        f.write_all_at(b"data", 0).unwrap();
        f.sync_all().unwrap();
        fs.sync_dir(&p("/a/b/c")).unwrap();
        fs.power_loss_clean();
        assert_eq!(read_all(&fs, "/a/b/c/f"), b"data");
    }

    #[test]
    fn entries_need_a_dir_sync() {
        let fs = setup();
        let f = fs.create(&p("/db/new")).unwrap();
        f.write_all_at(b"data", 0).unwrap();
        f.sync_all().unwrap();
        fs.power_loss_clean();
        assert!(!fs.exists(&p("/db/new")));
        assert!(fs.list(&p("/db")).unwrap().is_empty());

        // Rename without a dir sync is undone; removal too.
        let f = fs.create(&p("/db/x.tmp")).unwrap();
        f.write_all_at(b"v1", 0).unwrap();
        f.sync_all().unwrap();
        fs.sync_dir(&p("/db")).unwrap();
        fs.rename(&p("/db/x.tmp"), &p("/db/x")).unwrap();
        assert_eq!(fs.list(&p("/db")).unwrap(), vec!["x".to_string()]);
        fs.power_loss_clean();
        assert!(fs.exists(&p("/db/x.tmp")));
        assert!(!fs.exists(&p("/db/x")));
        fs.rename(&p("/db/x.tmp"), &p("/db/x")).unwrap();
        fs.sync_dir(&p("/db")).unwrap();
        fs.remove(&p("/db/x")).unwrap();
        assert!(!fs.exists(&p("/db/x")));
        fs.power_loss_clean();
        assert_eq!(read_all(&fs, "/db/x"), b"v1");
        fs.remove(&p("/db/x")).unwrap();
        fs.sync_dir(&p("/db")).unwrap();
        fs.power_loss_clean();
        assert!(!fs.exists(&p("/db/x")));
    }

    #[test]
    fn torn_writes_keep_whole_sectors_and_never_touch_synced_data() {
        let mut seen_lengths = BTreeSet::new();
        for seed in 0..200 {
            let fs = setup();
            let f = fs.create(&p("/db/log")).unwrap();
            fs.sync_dir(&p("/db")).unwrap();
            let synced: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
            f.write_all_at(&synced, 0).unwrap();
            f.sync_data().unwrap();
            let tail = vec![0xabu8; 3000];
            f.write_all_at(&tail, 700).unwrap();
            fs.power_loss(seed);
            let after = read_all(&fs, "/db/log");
            assert!(after.len() >= 700, "seed {seed}");
            assert_eq!(&after[..700], &synced[..], "seed {seed}");
            let len = after.len();
            assert!(
                len == 700 || len == 3700 || len.is_multiple_of(SECTOR),
                "seed {seed}: length {len} is not sector-aligned"
            );
            seen_lengths.insert(len);
        }
        assert!(seen_lengths.len() > 3, "{seen_lengths:?}");
    }

    #[test]
    fn unsynced_truncation_is_undone_and_synced_one_kept() {
        let fs = setup();
        let f = fs.create(&p("/db/t")).unwrap();
        fs.sync_dir(&p("/db")).unwrap();
        f.write_all_at(&[7u8; 2000], 0).unwrap();
        f.sync_all().unwrap();
        f.set_len(100).unwrap();
        assert_eq!(f.len().unwrap(), 100);
        fs.power_loss_clean();
        let f = fs.open(&p("/db/t"), true).unwrap();
        assert_eq!(f.len().unwrap(), 2000);
        f.set_len(100).unwrap();
        f.sync_data().unwrap();
        fs.power_loss(3);
        assert_eq!(read_all(&fs, "/db/t"), vec![7u8; 100]);
        // Read-only handles refuse writes.
        let r = fs.open(&p("/db/t"), false).unwrap();
        assert!(r.write_at(b"x", 0).is_err());
        assert!(r.set_len(0).is_err());
    }

    #[test]
    fn torn_tails_are_sometimes_garbled_or_zero_filled() {
        let (mut garbled, mut zeroed) = (0, 0);
        for seed in 0..400 {
            let fs = setup();
            let f = fs.create(&p("/db/log")).unwrap();
            fs.sync_dir(&p("/db")).unwrap();
            f.write_all_at(&[1u8; 4096], 0).unwrap();
            fs.power_loss(seed);
            let after = read_all(&fs, "/db/log");
            if after.iter().any(|&b| b != 1 && b != 0) {
                garbled += 1;
            }
            if after.len() == 4096 && after.contains(&0) {
                zeroed += 1;
            }
        }
        assert!(
            garbled > 0 && zeroed > 0,
            "garbled {garbled}, zeroed {zeroed}"
        );
    }

    #[test]
    fn fail_after_modes() {
        let fs = setup();
        let f = fs.create(&p("/db/f")).unwrap();
        // EIO once, on the second data-path op from now.
        fs.fail_after(1, FailMode::Eio, Repeat::Once);
        f.write_all_at(b"a", 0).unwrap();
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        assert_eq!(fs.injected(), 1);
        // Persistent ENOSPC: everything fails, reads go on.
        fs.fail_after(0, FailMode::Enospc, Repeat::Persistent);
        let e = f.write_at(b"b", 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(ENOSPC));
        assert!(fs.rename(&p("/db/f"), &p("/db/g")).is_err());
        assert!(fs.create(&p("/db/h")).is_err());
        assert_eq!(read_all(&fs, "/db/f"), b"a");
        fs.recover();
        // A short write writes part of the buffer once; write_all_at resubmits.
        fs.fail_after(0, FailMode::ShortWrite, Repeat::Once);
        assert_eq!(f.write_at(b"0123456789", 0).unwrap(), 5);
        assert_eq!(f.write_at(b"0123456789", 0).unwrap(), 10);
        fs.fail_after(0, FailMode::ShortWrite, Repeat::Once);
        f.write_all_at(b"abcdefghij", 0).unwrap();
        assert_eq!(read_all(&fs, "/db/f"), b"abcdefghij");
        // crash: every operation fails until recover.
        fs.crash();
        assert!(f.read_at(&mut [0u8; 1], 0).is_err());
        assert!(fs.list(&p("/db")).is_err());
        fs.recover();
        assert!(fs.list(&p("/db")).is_ok());
    }

    #[test]
    fn locks_and_op_log() {
        let fs = setup();
        let l = fs.lock(&p("/db/LOCK")).unwrap();
        let e = fs.lock(&p("/db/LOCK")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(l);
        let l2 = fs.lock(&p("/db/LOCK")).unwrap();
        fs.power_loss_clean();
        // Power loss releases every lock; the stale guard does not release
        // the new one.
        let l3 = fs.lock(&p("/db/LOCK")).unwrap();
        drop(l2);
        assert!(fs.lock(&p("/db/LOCK")).is_err());
        drop(l3);
        let before = fs.data_op_count();
        let f = fs.create(&p("/db/z")).unwrap();
        f.write_all_at(b"z", 0).unwrap();
        assert_eq!(fs.data_op_count(), before + 2);
        let ops = fs.ops();
        assert_eq!(ops.last().unwrap().kind, OpKind::Write);
        assert!(ops.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        assert!(fs.open(&p("/db/missing"), false).is_err());
    }
}
