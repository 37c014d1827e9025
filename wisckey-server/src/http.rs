//! The HTTP surface of a node: client endpoints (`/v1/kv`, `/v1/batch`,
//! `/v1/scan`), admin endpoints (`/v1/cluster/*`, `/v1/stats`) and the
//! peer endpoints openraft's network calls (`/raft/*`). docs/cluster.md
//! lists them with examples.

// The checks answer a refused request with its `Response` (built once, on
// the refusal path only): a large `Err` is what they are for.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use openraft::error::{
    CheckIsLeaderError, ClientWriteError, ForwardToLeader, InitializeError, RaftError,
};
use openraft::{BasicNode, Raft};
use serde::Deserialize;
use wisckey_raft::{Op, Request as RaftRequest, StateReader, TypeConfig};

use crate::api::{
    AddLearnerRequest, Batch, BatchOp, ErrorReply, InitRequest, MembershipRequest, NodeStats,
    ScanEntry, ScanReply, Status, WriteReply, B64,
};
use crate::config::Config;
use crate::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub raft: Raft<TypeConfig>,
    pub reader: StateReader,
    pub cfg: Arc<Config>,
}

/// Peers may send large append and snapshot requests; they are bounded
/// too (1 GiB), and only accepted with the token when one is set.
const PEER_BODY_LIMIT: usize = 1 << 30;

/// The node's router.
pub(crate) fn router(state: AppState) -> Router {
    let limit = state.cfg.limits.max_request_bytes;
    let client = Router::new()
        .route(
            "/v1/kv/{table}/{*key}",
            put(put_key).get(get_key).delete(delete_key),
        )
        .route("/v1/batch", post(batch))
        .route("/v1/scan/{table}", get(scan))
        .route("/v1/cluster/init", post(init))
        .route("/v1/cluster/learners", post(add_learner))
        .route("/v1/cluster/membership", post(change_membership))
        .route("/v1/cluster/status", get(status))
        .route("/v1/cluster/snapshot", post(trigger_snapshot))
        .route("/v1/stats", get(stats))
        .layer(DefaultBodyLimit::max(limit));
    let peers = Router::new()
        .route(APPEND_PATH, post(raft_append))
        .route(VOTE_PATH, post(raft_vote))
        .route(SNAPSHOT_PATH, post(raft_snapshot))
        .layer(DefaultBodyLimit::max(PEER_BODY_LIMIT));
    client
        .merge(peers)
        .route("/health", get(|| async { "ok" }))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// Refuses requests without the configured token (constant-time compare).
async fn authorize(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.cfg.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send Authorization: Bearer TOKEN",
            );
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorReply {
            error: msg.into(),
            leader_id: None,
            leader_addr: None,
        }),
    )
        .into_response()
}

fn forward(f: ForwardToLeader<u64, BasicNode>) -> Response {
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(ErrorReply {
            error: "not the leader".into(),
            leader_id: f.leader_id,
            leader_addr: f.leader_node.map(|n| n.addr),
        }),
    )
        .into_response()
}

fn check_key(st: &AppState, key: &[u8]) -> Result<(), Response> {
    let max = st.cfg.limits.max_key_bytes;
    if key.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "empty key"));
    }
    if key.len() > max {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("key of {} bytes over max_key_bytes ({max})", key.len()),
        ));
    }
    Ok(())
}

fn check_value(st: &AppState, value: &[u8]) -> Result<(), Response> {
    let max = st.cfg.limits.max_value_bytes;
    if value.len() > max {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "value of {} bytes over max_value_bytes ({max})",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn check_table(table: &str) -> Result<(), Response> {
    if wisckey_raft::STATE_TABLES.iter().any(|(t, _)| *t == table) {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("no table {table:?}: the tables are kv (ordered) and blobs (unordered)"),
        ))
    }
}

/// Proposes `req` and answers with its log index.
async fn propose(st: &AppState, req: RaftRequest) -> Response {
    match st.raft.client_write(req).await {
        Ok(resp) => match resp.data.error {
            Some(e) => error(StatusCode::BAD_REQUEST, e),
            None => Json(WriteReply {
                index: resp.log_id.index,
            })
            .into_response(),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => forward(f),
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(RaftError::Fatal(f)) => error(StatusCode::SERVICE_UNAVAILABLE, f.to_string()),
    }
}

/// Waits until this node may serve a linearizable read (it is the leader,
/// a quorum confirmed it, and its state machine applied the read index).
async fn read_barrier(st: &AppState) -> Result<(), Response> {
    match st.raft.ensure_linearizable().await {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(forward(f)),
        Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q))) => {
            Err(error(StatusCode::SERVICE_UNAVAILABLE, q.to_string()))
        }
        Err(RaftError::Fatal(f)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, f.to_string())),
    }
}

#[derive(Deserialize)]
struct ReadQuery {
    /// `linearizable` (the default) or `local` (this node's state, maybe
    /// stale, served by any node).
    #[serde(default)]
    consistency: Option<String>,
}

async fn consistent(st: &AppState, q: &ReadQuery) -> Result<(), Response> {
    match q.consistency.as_deref() {
        None | Some("linearizable") => read_barrier(st).await,
        Some("local") => Ok(()),
        Some(other) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("consistency={other}: use linearizable or local"),
        )),
    }
}

async fn put_key(
    State(st): State<AppState>,
    Path((table, key)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_table(&table)
        .and_then(|_| check_key(&st, key.as_bytes()))
        .and_then(|_| check_value(&st, &body))
    {
        return r;
    }
    let req = RaftRequest {
        ops: vec![Op::Put {
            table,
            key: key.into_bytes(),
            value: body.to_vec(),
        }],
    };
    propose(&st, req).await
}

async fn delete_key(
    State(st): State<AppState>,
    Path((table, key)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_table(&table).and_then(|_| check_key(&st, key.as_bytes())) {
        return r;
    }
    let req = RaftRequest {
        ops: vec![Op::Delete {
            table,
            key: key.into_bytes(),
        }],
    };
    propose(&st, req).await
}

async fn get_key(
    State(st): State<AppState>,
    Path((table, key)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Response {
    if let Err(r) = check_table(&table).and_then(|_| check_key(&st, key.as_bytes())) {
        return r;
    }
    if let Err(r) = consistent(&st, &q).await {
        return r;
    }
    match st.reader.get(&table, key.as_bytes()) {
        Ok(Some(v)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            v,
        )
            .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such key"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn batch(State(st): State<AppState>, Json(b): Json<Batch>) -> Response {
    if b.ops.len() > st.cfg.limits.max_batch_ops {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "batch of {} ops over max_batch_ops ({})",
                b.ops.len(),
                st.cfg.limits.max_batch_ops
            ),
        );
    }
    if b.ops.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty batch");
    }
    let mut ops = Vec::with_capacity(b.ops.len());
    for op in b.ops {
        let checked = match op {
            BatchOp::Put { table, key, value } => check_table(&table)
                .and_then(|_| check_key(&st, &key.0))
                .and_then(|_| check_value(&st, &value.0))
                .map(|_| Op::Put {
                    table,
                    key: key.0,
                    value: value.0,
                }),
            BatchOp::Delete { table, key } => check_table(&table)
                .and_then(|_| check_key(&st, &key.0))
                .map(|_| Op::Delete { table, key: key.0 }),
        };
        match checked {
            Ok(op) => ops.push(op),
            Err(r) => return r,
        }
    }
    propose(&st, RaftRequest { ops }).await
}

#[derive(Deserialize)]
struct ScanQuery {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    consistency: Option<String>,
}

async fn scan(
    State(st): State<AppState>,
    Path(table): Path<String>,
    Query(q): Query<ScanQuery>,
) -> Response {
    if let Err(r) = check_table(&table) {
        return r;
    }
    let max = st.cfg.limits.max_scan_entries;
    let limit = q.limit.unwrap_or(max).min(max);
    if limit == 0 {
        return error(StatusCode::BAD_REQUEST, "limit=0");
    }
    let rq = ReadQuery {
        consistency: q.consistency.clone(),
    };
    if let Err(r) = consistent(&st, &rq).await {
        return r;
    }
    let start = q.start.unwrap_or_default().into_bytes();
    let end = q.end.map(String::into_bytes);
    // One more than asked, to tell whether there is a next page.
    match st.reader.scan(&table, &start, end.as_deref(), limit + 1) {
        Ok(mut rows) => {
            let next = if rows.len() > limit {
                rows.pop().map(|(k, _)| B64(k))
            } else {
                None
            };
            Json(ScanReply {
                entries: rows
                    .into_iter()
                    .map(|(k, v)| ScanEntry {
                        key: B64(k),
                        value: B64(v),
                    })
                    .collect(),
                next,
            })
            .into_response()
        }
        Err(wisckey::Error::Unsupported(m)) => error(StatusCode::BAD_REQUEST, m),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn init(State(st): State<AppState>, Json(r): Json<InitRequest>) -> Response {
    if r.nodes.is_empty() {
        return error(StatusCode::BAD_REQUEST, "init needs at least one node");
    }
    let nodes: BTreeMap<u64, BasicNode> = r
        .nodes
        .into_iter()
        .map(|(id, addr)| (id, BasicNode::new(addr)))
        .collect();
    match st.raft.initialize(nodes).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(RaftError::APIError(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(RaftError::Fatal(f)) => error(StatusCode::SERVICE_UNAVAILABLE, f.to_string()),
    }
}

fn membership_answer(
    r: Result<
        openraft::raft::ClientWriteResponse<TypeConfig>,
        RaftError<u64, ClientWriteError<u64, BasicNode>>,
    >,
) -> Response {
    match r {
        Ok(resp) => Json(WriteReply {
            index: resp.log_id.index,
        })
        .into_response(),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => forward(f),
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(RaftError::Fatal(f)) => error(StatusCode::SERVICE_UNAVAILABLE, f.to_string()),
    }
}

async fn add_learner(State(st): State<AppState>, Json(r): Json<AddLearnerRequest>) -> Response {
    membership_answer(
        st.raft
            .add_learner(r.id, BasicNode::new(r.addr), true)
            .await,
    )
}

async fn change_membership(
    State(st): State<AppState>,
    Json(r): Json<MembershipRequest>,
) -> Response {
    if r.members.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "a cluster needs at least one voter",
        );
    }
    let members: BTreeSet<u64> = r.members.into_iter().collect();
    membership_answer(st.raft.change_membership(members, false).await)
}

async fn status(State(st): State<AppState>) -> Json<Status> {
    let m = st.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voter_ids: BTreeSet<u64> = membership.voter_ids().collect();
    let mut voters = BTreeMap::new();
    let mut learners = BTreeMap::new();
    for (id, node) in membership.nodes() {
        if voter_ids.contains(id) {
            voters.insert(*id, node.addr.clone());
        } else {
            learners.insert(*id, node.addr.clone());
        }
    }
    Json(Status {
        id: m.id,
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        voters,
        learners,
        state: format!("{:?}", m.state),
    })
}

async fn trigger_snapshot(State(st): State<AppState>) -> Response {
    match st.raft.trigger().snapshot().await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(f) => error(StatusCode::SERVICE_UNAVAILABLE, f.to_string()),
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

async fn stats(State(st): State<AppState>) -> Json<NodeStats> {
    let s = st.reader.db().stats();
    let device = s.vlog_bytes_written
        + s.gc_bytes_written
        + s.flush_bytes_written
        + s.compaction_bytes_written
        + s.manifest_bytes_written;
    let data = st.cfg.data.clone();
    let disk = tokio::task::spawn_blocking(move || dir_bytes(&data))
        .await
        .unwrap_or(0);
    Json(NodeStats {
        user_bytes_written: s.user_bytes_written,
        device_bytes_written: device,
        write_amplification: s.write_amplification,
        disk_bytes: disk,
    })
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    postcard::from_bytes(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("undecodable RPC: {e}")))
}

fn encode<T: serde::Serialize>(v: &T) -> Response {
    match postcard::to_stdvec(v) {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn raft_append(State(st): State<AppState>, _h: HeaderMap, body: Bytes) -> Response {
    match decode(&body) {
        Ok(req) => encode(&st.raft.append_entries(req).await),
        Err(r) => r,
    }
}

async fn raft_vote(State(st): State<AppState>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(req) => encode(&st.raft.vote(req).await),
        Err(r) => r,
    }
}

async fn raft_snapshot(State(st): State<AppState>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(req) => encode(&st.raft.install_snapshot(req).await),
        Err(r) => r,
    }
}
