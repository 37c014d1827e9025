//! openraft's network over HTTP: a node sends `append_entries`, `vote` and
//! snapshot chunks to its peers as `POST /raft/{append,vote,snapshot}`,
//! bodies in postcard (compact binary serde), answers the peer's
//! `Result<reply, RaftError>` in postcard too.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wisckey_raft::TypeConfig;

/// The peer path of each RPC.
pub(crate) const APPEND_PATH: &str = "/raft/append";
/// See [`APPEND_PATH`].
pub(crate) const VOTE_PATH: &str = "/raft/vote";
/// See [`APPEND_PATH`].
pub(crate) const SNAPSHOT_PATH: &str = "/raft/snapshot";

/// Builds one connection per peer; they share one HTTP client (its pool).
#[derive(Clone)]
pub struct HttpNetwork {
    inner: Arc<Shared>,
}

struct Shared {
    client: reqwest::Client,
    scheme: &'static str,
    token: Option<String>,
    overrides: BTreeMap<u64, String>,
}

impl HttpNetwork {
    /// A network whose requests go out on `client` (which carries the TLS
    /// settings), with `token` as bearer token, and `overrides` replacing
    /// the membership's address of some peers.
    pub fn new(
        client: reqwest::Client,
        scheme: &'static str,
        token: Option<String>,
        overrides: BTreeMap<u64, String>,
    ) -> Self {
        HttpNetwork {
            inner: Arc::new(Shared {
                client,
                scheme,
                token,
                overrides,
            }),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerConnection {
        let addr = self
            .inner
            .overrides
            .get(&target)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        PeerConnection {
            shared: self.inner.clone(),
            target,
            base: format!("{}://{}", self.inner.scheme, addr),
        }
    }
}

/// The connection to one peer.
pub struct PeerConnection {
    shared: Arc<Shared>,
    target: u64,
    base: String,
}

/// What went wrong on the wire, as an error openraft can wrap.
#[derive(Debug)]
struct WireError(String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

impl PeerConnection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = postcard::to_stdvec(req)
            .map_err(|e| RPCError::Network(NetworkError::new(&WireError(e.to_string()))))?;
        let mut r = self
            .shared
            .client
            .post(format!("{}{}", self.base, path))
            .timeout(option.hard_ttl())
            .header("content-type", "application/octet-stream")
            .body(body);
        if let Some(t) = &self.shared.token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.map_err(|e| {
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            return Err(RPCError::Network(NetworkError::new(&WireError(format!(
                "peer {} answered {status}: {text}",
                self.target
            )))));
        }
        let answer: Result<Resp, E> = postcard::from_bytes(&bytes).map_err(|e| {
            RPCError::Network(NetworkError::new(&WireError(format!(
                "peer {}: undecodable answer: {e}",
                self.target
            ))))
        })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(APPEND_PATH, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call(SNAPSHOT_PATH, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(VOTE_PATH, &rpc, &option).await
    }
}
