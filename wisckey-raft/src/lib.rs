//! openraft 0.9 storage (`storage-v2`) on the wisckey engine: the Raft
//! log, the state machine and its snapshots, all in one wisckey database.
//!
//! One database holds five tables: `raft/log` (ordered, keyed by the
//! big-endian log index, entries in postcard), `raft/meta` (vote,
//! committed index, last purged log id), and the state machine's
//! `sm/kv` (ordered), `sm/blobs` (unordered) and `sm/meta` (last applied
//! log id and membership). An entry's payload goes to the vLog once as a
//! log entry, and once more when it is applied to the state machine.
//!
//! Durability: `append`, `save_vote`, `truncate` and `purge` write with
//! `sync(true)` and acknowledge only after that. State-machine writes do
//! not sync: they follow the synced log entry they come from in the same
//! vLog, and wisckey recovers a prefix of its vLog, so after a crash the
//! state machine's last applied id is never ahead of the log, and
//! openraft re-applies what is missing. Each apply writes the entries'
//! ops and the new last applied id and membership in one `WriteBatch`:
//! an entry is never half applied, nor applied twice.
//!
//! Reclaiming the log: `purge(upto)` is one range delete of
//! `..=upto`. Compaction drops the covered index entries; GC sees their
//! vLog records as dead (the range tombstone covers them) and reclaims
//! their segments. The tombstones themselves go at a full compaction.
//!
//! Snapshots: a checkpoint of the three `sm/` tables only (not the
//! log), packed into one checksummed file (docs/format.md, "Cluster
//! snapshot files") that openraft streams in chunks; installing one
//! replaces the three tables in one manifest edit (`Db::replace_tables`).

// openraft's traits fix the error type (`StorageError`, over 200 bytes);
// the helpers here return what the traits return.
#![allow(clippy::result_large_err)]

mod pack;
mod types;

use std::fmt::Debug;
use std::io::{Seek, SeekFrom};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use wisckey::{Db, Options, Table, TableOptions, WriteBatch, WriteOptions};

pub use types::{Op, Request, Response, TypeConfig, BLOBS_TABLE, KV_TABLE, STATE_TABLES};

const LOG: &str = "raft/log";
const META: &str = "raft/meta";
const SM_META: &str = "sm/meta";
const SM_TABLES: [&str; 3] = ["sm/kv", "sm/blobs", SM_META];

type SE = StorageError<u64>;

fn io_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: impl std::error::Error + 'static) -> SE {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

fn store_err(e: impl std::error::Error + 'static) -> SE {
    io_err(ErrorSubject::Store, ErrorVerb::Write, e)
}

fn read_err(e: impl std::error::Error + 'static) -> SE {
    io_err(ErrorSubject::Store, ErrorVerb::Read, e)
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, SE> {
    postcard::from_bytes(bytes).map_err(read_err)
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, SE> {
    postcard::to_stdvec(v).map_err(store_err)
}

/// How to open the store.
#[derive(Clone, Default)]
pub struct StoreOptions {
    db: Options,
}

impl StoreOptions {
    /// The options of the wisckey database under the store.
    pub fn db_options(mut self, opts: Options) -> Self {
        self.db = opts;
        self
    }
}

/// Opens (or creates) the store in `dir`: the database in `dir/db`,
/// snapshots in `dir/snapshots`.
///
/// # Errors
/// What [`Db::open`] returns; `Error::Io` when the snapshot directory
/// cannot be made or its current snapshot is unreadable.
pub fn open(
    dir: &Path,
    opts: StoreOptions,
) -> Result<(LogStore, StateMachineStore), wisckey::Error> {
    let db = Db::open(dir.join("db"), opts.db)?;
    let snaps = dir.join("snapshots");
    let io = |context: &str, source| wisckey::Error::Io {
        context: context.to_string(),
        source,
    };
    std::fs::create_dir_all(&snaps).map_err(|e| io("creating the snapshot directory", e))?;
    let log = db.table(LOG, TableOptions::ordered())?;
    let meta = db.table(META, TableOptions::ordered())?;
    for (name, ordered) in STATE_TABLES {
        let o = if ordered {
            TableOptions::ordered()
        } else {
            TableOptions::unordered()
        };
        db.table(&format!("sm/{name}"), o)?;
    }
    db.table(SM_META, TableOptions::ordered())?;
    let current =
        pack::read_current(&snaps).map_err(|e| io("reading snapshots/CURRENT.meta", e))?;
    let shared = Arc::new(Shared {
        db: db.clone(),
        snaps,
        current: Mutex::new(current),
    });
    Ok((LogStore { db, log, meta }, StateMachineStore { shared }))
}

/// The Raft log and vote: `RaftLogStorage` and `RaftLogReader`.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
    log: Table,
    meta: Table,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    fn meta_get<T: for<'de> Deserialize<'de>>(&self, k: &str) -> Result<Option<T>, SE> {
        match self.meta.get(k).map_err(read_err)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    fn write_sync(&self, b: WriteBatch) -> Result<(), SE> {
        self.db
            .write(b, WriteOptions::default().sync(true))
            .map_err(store_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SE> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Bound::Included(key(i).to_vec()),
            Bound::Excluded(&i) => Bound::Excluded(key(i).to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(key(i).to_vec()),
            Bound::Excluded(&i) => Bound::Excluded(key(i).to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in self.log.range((start, end)) {
            let (_, v) = kv.map_err(read_err)?;
            out.push(decode(&v)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SE> {
        let last_purged: Option<LogId<u64>> = self.meta_get("last_purged")?;
        let last = match self.log.iter().next_back() {
            Some(kv) => {
                let (_, v) = kv.map_err(read_err)?;
                let e: Entry<TypeConfig> = decode(&v)?;
                Some(e.log_id)
            }
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), SE> {
        let mut b = WriteBatch::new();
        b.put_in(&self.meta, "vote", encode(vote)?);
        self.write_sync(b)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, SE> {
        self.meta_get("vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), SE> {
        let mut b = WriteBatch::new();
        b.put_in(&self.meta, "committed", encode(&committed)?);
        self.db.write(b, WriteOptions::default()).map_err(store_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, SE> {
        Ok(self.meta_get::<Option<LogId<u64>>>("committed")?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SE>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut b = WriteBatch::new();
        for e in entries {
            b.put_in(&self.log, key(e.log_id.index), encode(&e)?);
        }
        // A sync write: durable before the callback acknowledges it.
        let r = self.write_sync(b);
        callback.log_io_completed(
            r.as_ref()
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string())),
        );
        r
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), SE> {
        let mut b = WriteBatch::new();
        b.delete_range_in(&self.log, key(log_id.index).to_vec()..);
        self.write_sync(b)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), SE> {
        let mut b = WriteBatch::new();
        b.put_in(&self.meta, "last_purged", encode(&log_id)?);
        // From 0 each time: one tombstone covers every earlier purge.
        b.delete_range_in(&self.log, ..=key(log_id.index).to_vec());
        self.write_sync(b)
    }
}

struct Shared {
    db: Db,
    snaps: PathBuf,
    current: Mutex<Option<(SnapshotMeta<u64, BasicNode>, PathBuf)>>,
}

fn sm_table(db: &Db, name: &str) -> Result<Table, wisckey::Error> {
    let ordered = STATE_TABLES
        .iter()
        .find(|(t, _)| *t == name)
        .map(|(_, o)| *o)
        .ok_or_else(|| {
            wisckey::Error::InvalidArgument(format!(
                "no table {name:?}: the tables are kv (ordered) and blobs (unordered)"
            ))
        })?;
    let o = if ordered {
        TableOptions::ordered()
    } else {
        TableOptions::unordered()
    };
    db.table(&format!("sm/{name}"), o)
}

/// The state machine: `RaftStateMachine`.
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

/// Key-value pairs, keys ascending.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads of the state machine, for the server, while openraft owns the
/// [`StateMachineStore`]. Tables are looked up by name at each call, so a
/// snapshot installed meanwhile (which replaces them) is read at once.
#[derive(Clone)]
pub struct StateReader {
    db: Db,
}

impl StateReader {
    /// The value of `key` in `table` (`kv` or `blobs`).
    ///
    /// # Errors
    /// `InvalidArgument` for another table name; what reads return.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, wisckey::Error> {
        Ok(sm_table(&self.db, table)?.get(key)?.map(|v| v.into_vec()))
    }

    /// At most `limit` entries of the ordered table `table` from `start`
    /// (inclusive) to `end` (exclusive, or the end).
    ///
    /// # Errors
    /// `InvalidArgument` for an unknown table, `Unsupported` for `blobs`.
    pub fn scan(
        &self,
        table: &str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Rows, wisckey::Error> {
        let t = sm_table(&self.db, table)?;
        let upper = match end {
            Some(e) => Bound::Excluded(e.to_vec()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in t
            .range((Bound::Included(start.to_vec()), upper))
            .take(limit)
        {
            let (k, v) = kv?;
            out.push((k, v.into_vec()));
        }
        Ok(out)
    }

    /// The database, for its statistics.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

impl StateMachineStore {
    /// A reader of this state machine.
    pub fn reader(&self) -> StateReader {
        StateReader {
            db: self.shared.db.clone(),
        }
    }
}

type Applied = (Option<LogId<u64>>, StoredMembership<u64, BasicNode>);

fn read_applied(db: &Db) -> Result<Applied, SE> {
    let meta = db
        .table(SM_META, TableOptions::ordered())
        .map_err(read_err)?;
    let applied = match meta.get("applied").map_err(read_err)? {
        Some(v) => decode(&v)?,
        None => None,
    };
    let membership = match meta.get("membership").map_err(read_err)? {
        Some(v) => decode(&v)?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<Applied, SE> {
        read_applied(&self.shared.db)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, SE>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let db = &self.shared.db;
        let (_, mut membership) = read_applied(db)?;
        let mut batch = WriteBatch::new();
        let mut last = None;
        let mut out = Vec::new();
        for e in entries {
            last = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(Response::default()),
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(e.log_id), m);
                    out.push(Response::default());
                }
                EntryPayload::Normal(req) => {
                    // Every table first: a request naming an unknown one
                    // is refused whole (its entry still counts as applied).
                    let tables: Result<Vec<Table>, _> = req
                        .ops
                        .iter()
                        .map(|op| match op {
                            Op::Put { table, .. } | Op::Delete { table, .. } => sm_table(db, table),
                        })
                        .collect();
                    match tables {
                        Err(e) => out.push(Response {
                            applied: 0,
                            error: Some(e.to_string()),
                        }),
                        Ok(tables) => {
                            for (op, t) in req.ops.iter().zip(&tables) {
                                match op {
                                    Op::Put { key, value, .. } => {
                                        batch.put_in(t, key, value);
                                    }
                                    Op::Delete { key, .. } => {
                                        batch.delete_in(t, key);
                                    }
                                }
                            }
                            out.push(Response {
                                applied: req.ops.len(),
                                error: None,
                            });
                        }
                    }
                }
            }
        }
        let meta = db
            .table(SM_META, TableOptions::ordered())
            .map_err(store_err)?;
        batch.put_in(&meta, "applied", encode(&last)?);
        batch.put_in(&meta, "membership", encode(&membership)?);
        db.write(batch, WriteOptions::default())
            .map_err(store_err)?;
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, SE> {
        let path = self
            .shared
            .snaps
            .join(format!("incoming-{}.snap", pack::nonce()));
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        // The name is not needed again: the file is read through its handle.
        let _ = std::fs::remove_file(&path);
        Ok(Box::new(f))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), SE> {
        let shared = self.shared.clone();
        let meta = meta.clone();
        let file = snapshot.into_std().await;
        let snap_err = |e: &dyn std::error::Error| {
            StorageIOError::new(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                AnyError::error(e.to_string()),
            )
        };
        let m2 = meta.clone();
        tokio::task::spawn_blocking(move || -> Result<(), SE> {
            let mut file = file;
            file.seek(SeekFrom::Start(0)).map_err(store_err)?;
            // Keep the bytes as the current snapshot, then unpack them.
            let path = shared.snaps.join(format!("{}.snap", pack::nonce()));
            let mut out = std::fs::File::create(&path).map_err(store_err)?;
            std::io::copy(&mut file, &mut out).map_err(store_err)?;
            out.sync_all().map_err(store_err)?;
            drop(out);
            let dir = tempfile::tempdir_in(&shared.snaps).map_err(store_err)?;
            let unpacked = dir.path().join("cp");
            if let Err(e) = pack::unpack(&path, &unpacked) {
                let _ = std::fs::remove_file(&path);
                return Err(store_err(e));
            }
            shared
                .db
                .replace_tables(&SM_TABLES, &unpacked)
                .map_err(store_err)?;
            pack::set_current(&shared.snaps, &m2, &path).map_err(store_err)?;
            *shared.current.lock().unwrap() = Some((m2, path));
            Ok(())
        })
        .await
        .map_err(|e| StorageError::from(snap_err(&e)))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SE> {
        let cur = self.shared.current.lock().unwrap().clone();
        match cur {
            None => Ok(None),
            Some((meta, path)) => {
                let f = tokio::fs::File::open(&path).await.map_err(read_err)?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(f),
                }))
            }
        }
    }
}

/// Builds snapshots: a checkpoint of the state-machine tables, packed.
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SE> {
        let shared = self.shared.clone();
        let (meta, path) = tokio::task::spawn_blocking(move || -> Result<_, SE> {
            let dir = tempfile::tempdir_in(&shared.snaps).map_err(store_err)?;
            let cp = dir.path().join("cp");
            shared
                .db
                .checkpoint_tables(&cp, &SM_TABLES)
                .map_err(store_err)?;
            // What the checkpoint holds, read from the checkpoint itself:
            // applies may have gone on since.
            let (applied, membership) = {
                let copy = Db::open_read_only(&cp, Options::default()).map_err(read_err)?;
                let r = read_applied(&copy)?;
                copy.close().map_err(read_err)?;
                r
            };
            let id = match applied {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, pack::nonce()),
                None => format!("0-0-{}", pack::nonce()),
            };
            let meta = SnapshotMeta {
                last_log_id: applied,
                last_membership: membership,
                snapshot_id: id,
            };
            let path = shared.snaps.join(format!("{}.snap", pack::nonce()));
            pack::pack(&cp, &path).map_err(store_err)?;
            pack::set_current(&shared.snaps, &meta, &path).map_err(store_err)?;
            *shared.current.lock().unwrap() = Some((meta.clone(), path.clone()));
            Ok((meta, path))
        })
        .await
        .map_err(store_err)??;
        let f = tokio::fs::File::open(&path).await.map_err(read_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(f),
        })
    }
}
