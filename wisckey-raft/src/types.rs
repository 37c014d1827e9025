//! The cluster's type configuration and the commands a client proposes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state machine's ordered table: point reads and scans.
pub const KV_TABLE: &str = "kv";
/// The state machine's unordered (Bitcask-style) table: point reads only.
pub const BLOBS_TABLE: &str = "blobs";
/// The user tables of the state machine, with whether each is ordered.
pub const STATE_TABLES: [(&str, bool); 2] = [(KV_TABLE, true), (BLOBS_TABLE, false)];

/// One change to the state machine, inside a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Sets `key` to `value` in `table`.
    Put {
        /// [`KV_TABLE`] or [`BLOBS_TABLE`].
        table: String,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes `key` from `table` (no error when missing).
    Delete {
        /// [`KV_TABLE`] or [`BLOBS_TABLE`].
        table: String,
        /// The key.
        key: Vec<u8>,
    },
}

/// What a client proposes: a batch of [`Op`]s, applied atomically (all or
/// none, in one wisckey write together with the last applied log id).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The changes, applied in order.
    pub ops: Vec<Op>,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request({} ops)", self.ops.len())
    }
}

/// The state machine's answer to one applied [`Request`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// How many ops were applied (0 for a request refused as a whole, see
    /// `error`).
    pub applied: usize,
    /// Why the request was refused, if it was (an unknown table): a refused
    /// request changes nothing, but its log entry still counts as applied.
    pub error: Option<String>,
}

openraft::declare_raft_types!(
    /// The openraft type configuration of a wisckey cluster: `u64` node ids,
    /// nodes known by their address, snapshots as files.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);
