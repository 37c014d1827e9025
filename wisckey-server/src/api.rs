//! The JSON bodies of the client and admin endpoints (see docs/cluster.md).
//!
//! Keys and values inside JSON are base64 (standard alphabet, padded);
//! in a URL path a key is its UTF-8 text, percent-encoded.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Bytes carried in JSON as a base64 string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct B64(pub Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(B64)
            .map_err(serde::de::Error::custom)
    }
}

/// One operation of a batch (`POST /v1/batch`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchOp {
    /// Sets `key` to `value`.
    Put {
        /// `kv` (ordered) or `blobs` (unordered).
        table: String,
        /// The key.
        key: B64,
        /// The value.
        value: B64,
    },
    /// Removes `key`.
    Delete {
        /// `kv` or `blobs`.
        table: String,
        /// The key.
        key: B64,
    },
}

/// The body of `POST /v1/batch`: applied atomically, all or nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The operations, in order.
    pub ops: Vec<BatchOp>,
}

/// What a write answers: the log index it was committed at.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteReply {
    /// The Raft log index of the write.
    pub index: u64,
}

/// One entry of a scan's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanEntry {
    /// The key.
    pub key: B64,
    /// The value.
    pub value: B64,
}

/// The answer of `GET /v1/scan/{table}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanReply {
    /// The entries, keys ascending.
    pub entries: Vec<ScanEntry>,
    /// The key to start the next page at, when the limit cut the scan.
    pub next: Option<B64>,
}

/// The body of `POST /v1/cluster/init`: the first members, id → address.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitRequest {
    /// The voters of the new cluster, with their addresses.
    pub nodes: BTreeMap<u64, String>,
}

/// The body of `POST /v1/cluster/learners`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddLearnerRequest {
    /// The new node's id.
    pub id: u64,
    /// Its address (`host:port`).
    pub addr: String,
}

/// The body of `POST /v1/cluster/membership`: the voters from now on.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipRequest {
    /// The ids of the voters (learners must have been added first).
    pub members: Vec<u64>,
}

/// A node's view of the cluster (`GET /v1/cluster/status`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub id: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// This node's current term.
    pub term: u64,
    /// Its last log index.
    pub last_log_index: Option<u64>,
    /// Its last applied log index.
    pub last_applied: Option<u64>,
    /// The index of its latest snapshot.
    pub snapshot_index: Option<u64>,
    /// The voters, id → address.
    pub voters: BTreeMap<u64, String>,
    /// The learners, id → address.
    pub learners: BTreeMap<u64, String>,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
}

/// The storage figures of one node (`GET /v1/stats`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStats {
    /// Bytes users asked wisckey to write on this node (log entries and
    /// state-machine writes both count: both are writes to the engine).
    pub user_bytes_written: u64,
    /// Bytes wisckey wrote to its files for them.
    pub device_bytes_written: u64,
    /// `device_bytes_written / user_bytes_written`.
    pub write_amplification: f64,
    /// Bytes of the database directory on disk.
    pub disk_bytes: u64,
}

/// The body of every error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, for a person.
    pub error: String,
    /// With HTTP 421: the leader's id, when known.
    #[serde(default)]
    pub leader_id: Option<u64>,
    /// With HTTP 421: the leader's address, when known.
    #[serde(default)]
    pub leader_addr: Option<String>,
}
