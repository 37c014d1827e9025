//! A client of a wisckey cluster: finds the leader, follows redirects, and
//! tells a write that certainly did not happen from one that may have.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::api::{
    AddLearnerRequest, Batch, ErrorReply, InitRequest, MembershipRequest, NodeStats, ScanReply,
    Status, WriteReply,
};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The cluster refused the request; it changed nothing (a bad request,
    /// a limit, no such table).
    Refused(u16, String),
    /// The outcome is not known: the request may or may not have been
    /// applied (a timeout, a connection lost after sending). Retrying a
    /// write after this may apply it twice.
    Unknown(String),
    /// No node could be reached, or none became leader, before the
    /// deadline: nothing was applied.
    Unavailable(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Refused(code, m) => write!(f, "refused ({code}): {m}"),
            ClientError::Unknown(m) => write!(f, "outcome unknown: {m}"),
            ClientError::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A cluster client. Cheap to share across tasks (`&Client`).
///
/// Every call goes to the node it believes is the leader, follows `421`
/// answers to the leader they name, moves to the next node when one cannot
/// be connected to, and gives up at the deadline ([`Client::timeout`]).
/// It never resends a write whose outcome it does not know: that is a
/// [`ClientError::Unknown`].
pub struct Client {
    http: reqwest::Client,
    scheme: &'static str,
    token: Option<String>,
    nodes: Vec<String>,
    leader: Mutex<Option<String>>,
    timeout: Duration,
}

enum Attempt<T> {
    Done(T),
    Redirect(Option<String>),
    NextNode(String),
}

fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Client {
    /// A client of the nodes at `nodes` (`host:port`), plain HTTP.
    pub fn new(nodes: Vec<String>) -> Client {
        Client::with_http(
            crate::tls::http_client(None).expect("a plain HTTP client builds"),
            "http",
            nodes,
        )
    }

    /// A client on a prepared HTTP client (see [`crate::tls::http_client`]
    /// for TLS) and scheme (`http` or `https`).
    pub fn with_http(http: reqwest::Client, scheme: &'static str, nodes: Vec<String>) -> Client {
        Client {
            http,
            scheme,
            token: None,
            nodes,
            leader: Mutex::new(None),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends `Authorization: Bearer token` with every request.
    pub fn token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    /// How long one call may take, redirects included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    fn url(&self, node: &str, path: &str) -> String {
        format!("{}://{}{}", self.scheme, node, path)
    }

    fn start_node(&self) -> String {
        self.leader
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| self.nodes[0].clone())
    }

    fn next_node(&self, after: &str) -> String {
        let i = self
            .nodes
            .iter()
            .position(|n| n == after)
            .map_or(0, |i| i + 1);
        self.nodes[i % self.nodes.len()].clone()
    }

    /// Runs one request against the leader. `send` builds the request for a
    /// node; `read` says whether resending after an unclear failure is safe.
    async fn call<T, F, Fut>(&self, idempotent: bool, send: F) -> Result<T, ClientError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<Attempt<T>, ClientError>>,
    {
        if self.nodes.is_empty() {
            return Err(ClientError::Unavailable("no node addresses".into()));
        }
        let deadline = Instant::now() + self.timeout;
        let mut node = self.start_node();
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            match send(node.clone()).await {
                Ok(Attempt::Done(v)) => {
                    *self.leader.lock().unwrap() = Some(node);
                    return Ok(v);
                }
                Ok(Attempt::Redirect(Some(leader))) if leader != node => node = leader,
                Ok(Attempt::Redirect(_)) => {
                    // No leader known yet (an election): wait, try another.
                    last = format!("{node}: no leader known");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    node = self.next_node(&node);
                }
                Ok(Attempt::NextNode(why)) => {
                    last = why;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    node = self.next_node(&node);
                }
                Err(ClientError::Unknown(m)) if idempotent => {
                    last = m;
                    node = self.next_node(&node);
                }
                Err(e) => return Err(e),
            }
        }
        Err(if idempotent {
            ClientError::Unavailable(last)
        } else {
            ClientError::Unavailable(format!("deadline passed; last: {last}"))
        })
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        node: &str,
    ) -> Result<Attempt<reqwest::Response>, ClientError> {
        let mut req = req.timeout(self.timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // Never connected: nothing was sent, so nothing applied.
            Err(e) if e.is_connect() => return Ok(Attempt::NextNode(format!("{node}: {e}"))),
            Err(e) => return Err(ClientError::Unknown(format!("{node}: {e}"))),
        };
        match resp.status() {
            StatusCode::MISDIRECTED_REQUEST => {
                let body: ErrorReply = resp
                    .json()
                    .await
                    .map_err(|e| ClientError::Unknown(format!("{node}: {e}")))?;
                Ok(Attempt::Redirect(body.leader_addr))
            }
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(Attempt::Done(resp)),
            s if s == StatusCode::SERVICE_UNAVAILABLE => {
                let text = resp.text().await.unwrap_or_default();
                Err(ClientError::Unknown(format!("{node}: {s}: {text}")))
            }
            s => {
                let text = resp.text().await.unwrap_or_default();
                let msg = serde_json::from_str::<ErrorReply>(&text)
                    .map(|e| e.error)
                    .unwrap_or(text);
                Err(ClientError::Refused(s.as_u16(), msg))
            }
        }
    }

    async fn write_reply(resp: reqwest::Response) -> Result<u64, ClientError> {
        if resp.status() == StatusCode::NOT_FOUND {
            let text = resp.text().await.unwrap_or_default();
            return Err(ClientError::Refused(404, text));
        }
        resp.json::<WriteReply>()
            .await
            .map(|w| w.index)
            .map_err(|e| ClientError::Unknown(e.to_string()))
    }

    /// Sets `key` to `value` in `table`; returns the write's log index.
    ///
    /// # Errors
    /// [`ClientError`]; `Unknown` when the write may have happened.
    pub async fn put(&self, table: &str, key: &str, value: Vec<u8>) -> Result<u64, ClientError> {
        let path = format!("/v1/kv/{table}/{}", encode_key(key));
        self.call(false, |node| {
            let req = self.http.put(self.url(&node, &path)).body(value.clone());
            async move {
                match self.send(req, &node).await? {
                    Attempt::Done(r) => Ok(Attempt::Done(Self::write_reply(r).await?)),
                    Attempt::Redirect(l) => Ok(Attempt::Redirect(l)),
                    Attempt::NextNode(w) => Ok(Attempt::NextNode(w)),
                }
            }
        })
        .await
    }

    /// Removes `key` from `table`; returns the write's log index.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn delete(&self, table: &str, key: &str) -> Result<u64, ClientError> {
        let path = format!("/v1/kv/{table}/{}", encode_key(key));
        self.call(false, |node| {
            let req = self.http.delete(self.url(&node, &path));
            async move {
                match self.send(req, &node).await? {
                    Attempt::Done(r) => Ok(Attempt::Done(Self::write_reply(r).await?)),
                    Attempt::Redirect(l) => Ok(Attempt::Redirect(l)),
                    Attempt::NextNode(w) => Ok(Attempt::NextNode(w)),
                }
            }
        })
        .await
    }

    /// Applies `batch` atomically; returns its log index.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn batch(&self, batch: &Batch) -> Result<u64, ClientError> {
        self.call(false, |node| {
            let req = self.http.post(self.url(&node, "/v1/batch")).json(batch);
            async move {
                match self.send(req, &node).await? {
                    Attempt::Done(r) => Ok(Attempt::Done(Self::write_reply(r).await?)),
                    Attempt::Redirect(l) => Ok(Attempt::Redirect(l)),
                    Attempt::NextNode(w) => Ok(Attempt::NextNode(w)),
                }
            }
        })
        .await
    }

    /// Reads `key` of `table`, linearizably (through the leader).
    ///
    /// # Errors
    /// [`ClientError`]; reads are retried on another node after an
    /// unclear failure, so `Unknown` does not come back from here.
    pub async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let path = format!("/v1/kv/{table}/{}", encode_key(key));
        self.call(true, |node| {
            let req = self.http.get(self.url(&node, &path));
            async move {
                match self.send(req, &node).await? {
                    Attempt::Done(r) if r.status() == StatusCode::NOT_FOUND => {
                        Ok(Attempt::Done(None))
                    }
                    Attempt::Done(r) => r
                        .bytes()
                        .await
                        .map(|b| Attempt::Done(Some(b.to_vec())))
                        .map_err(|e| ClientError::Unknown(e.to_string())),
                    Attempt::Redirect(l) => Ok(Attempt::Redirect(l)),
                    Attempt::NextNode(w) => Ok(Attempt::NextNode(w)),
                }
            }
        })
        .await
    }

    /// Reads `key` of `table` from node `node`'s own state, without
    /// asking the leader: maybe stale, served by any node (followers
    /// included).
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when the node cannot be reached;
    /// `Refused` for a bad table or key.
    pub async fn get_local(
        &self,
        node: &str,
        table: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let path = format!("/v1/kv/{table}/{}?consistency=local", encode_key(key));
        match self
            .send(self.http.get(self.url(node, &path)), node)
            .await?
        {
            Attempt::Done(r) if r.status() == StatusCode::NOT_FOUND => Ok(None),
            Attempt::Done(r) => r
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| ClientError::Unknown(e.to_string())),
            Attempt::Redirect(_) | Attempt::NextNode(_) => {
                Err(ClientError::Unavailable(format!("{node}: cannot read")))
            }
        }
    }

    /// Scans the ordered table `kv` from `start` (inclusive) to `end`
    /// (exclusive), at most `limit` entries, linearizably.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn scan(
        &self,
        table: &str,
        start: &str,
        end: Option<&str>,
        limit: usize,
    ) -> Result<ScanReply, ClientError> {
        let mut path = format!("/v1/scan/{table}?limit={limit}&start={}", encode_key(start));
        if let Some(end) = end {
            path.push_str(&format!("&end={}", encode_key(end)));
        }
        self.call(true, |node| {
            let req = self.http.get(self.url(&node, &path));
            async move {
                match self.send(req, &node).await? {
                    Attempt::Done(r) => r
                        .json::<ScanReply>()
                        .await
                        .map(Attempt::Done)
                        .map_err(|e| ClientError::Unknown(e.to_string())),
                    Attempt::Redirect(l) => Ok(Attempt::Redirect(l)),
                    Attempt::NextNode(w) => Ok(Attempt::NextNode(w)),
                }
            }
        })
        .await
    }

    async fn admin<B: serde::Serialize>(&self, path: &str, body: &B) -> Result<(), ClientError> {
        self.call(false, |node| {
            let req = self.http.post(self.url(&node, path)).json(body);
            async move {
                match self.send(req, &node).await? {
                    Attempt::Done(_) => Ok(Attempt::Done(())),
                    Attempt::Redirect(l) => Ok(Attempt::Redirect(l)),
                    Attempt::NextNode(w) => Ok(Attempt::NextNode(w)),
                }
            }
        })
        .await
    }

    /// Makes a new cluster of `nodes` (id, address), sent to the first
    /// node of this client.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with 409 when the node is already part of
    /// a cluster.
    pub async fn init(&self, nodes: &[(u64, String)]) -> Result<(), ClientError> {
        let body = InitRequest {
            nodes: nodes.iter().cloned().collect(),
        };
        let url = self.url(&self.nodes[0], "/v1/cluster/init");
        match self
            .send(self.http.post(url).json(&body), &self.nodes[0])
            .await?
        {
            Attempt::Done(_) => Ok(()),
            Attempt::Redirect(_) | Attempt::NextNode(_) => Err(ClientError::Unavailable(format!(
                "{}: cannot initialize",
                self.nodes[0]
            ))),
        }
    }

    /// Adds node `id` at `addr` as a learner and waits until it caught up.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn add_learner(&self, id: u64, addr: &str) -> Result<(), ClientError> {
        let body = AddLearnerRequest {
            id,
            addr: addr.to_string(),
        };
        self.admin("/v1/cluster/learners", &body).await
    }

    /// Makes `members` the voters (joint consensus; learners stay).
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn change_membership(&self, members: &[u64]) -> Result<(), ClientError> {
        let body = MembershipRequest {
            members: members.to_vec(),
        };
        self.admin("/v1/cluster/membership", &body).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        node: &str,
        path: &str,
    ) -> Result<T, ClientError> {
        let mut req = self.http.get(self.url(node, path)).timeout(self.timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(format!("{node}: {e}")))?;
        if !resp.status().is_success() {
            let s = resp.status().as_u16();
            return Err(ClientError::Refused(
                s,
                resp.text().await.unwrap_or_default(),
            ));
        }
        resp.json()
            .await
            .map_err(|e| ClientError::Unknown(format!("{node}: {e}")))
    }

    /// The view of node `node` (an address) of the cluster.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when it cannot be reached.
    pub async fn status(&self, node: &str) -> Result<Status, ClientError> {
        self.get_json(node, "/v1/cluster/status").await
    }

    /// The storage figures of node `node`.
    ///
    /// # Errors
    /// As [`Client::status`].
    pub async fn stats(&self, node: &str) -> Result<NodeStats, ClientError> {
        self.get_json(node, "/v1/stats").await
    }

    /// Asks node `node` to take a snapshot now.
    ///
    /// # Errors
    /// As [`Client::status`].
    pub async fn trigger_snapshot(&self, node: &str) -> Result<(), ClientError> {
        let mut req = self.http.post(self.url(node, "/v1/cluster/snapshot"));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(format!("{node}: {e}")))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Refused(
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            ))
        }
    }
}
