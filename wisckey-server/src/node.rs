//! Starting and stopping one node: open the store, start Raft, serve HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::{Raft, SnapshotPolicy};
use wisckey_raft::{StateReader, StoreOptions, TypeConfig};

use crate::config::{Config, ConfigError};
use crate::http::{router, AppState};
use crate::network::HttpNetwork;
use crate::tls;

/// Why a node could not start or stopped with an error.
#[derive(Debug)]
pub enum NodeError {
    /// The configuration (or a TLS file) is unusable.
    Config(ConfigError),
    /// The store could not be opened.
    Storage(wisckey::Error),
    /// Raft refused to start (its configuration or a fatal error).
    Raft(String),
    /// The listener could not be bound, or serving failed.
    Io(std::io::Error),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Config(e) => write!(f, "{e}"),
            NodeError::Storage(e) => write!(f, "storage: {e}"),
            NodeError::Raft(e) => write!(f, "raft: {e}"),
            NodeError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// A running node. Dropping it does not stop it: call [`Node::shutdown`].
pub struct Node {
    raft: Raft<TypeConfig>,
    reader: StateReader,
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// Opens the store in `cfg.data`, starts Raft and serves on
    /// `cfg.listen` (port 0 picks a free one: see [`Node::addr`]).
    ///
    /// A node that is not yet part of a cluster waits to be initialized
    /// (`POST /v1/cluster/init` on one node) or added as a learner by the
    /// leader.
    ///
    /// # Errors
    /// [`NodeError`] when the configuration, TLS files, store, Raft or
    /// listener cannot be set up.
    pub async fn start(cfg: Config) -> Result<Node, NodeError> {
        cfg.validate().map_err(NodeError::Config)?;
        let cfg = Arc::new(cfg);
        let ca = cfg.tls.as_ref().map(|t| t.ca.clone());
        let client = tls::http_client(ca.as_deref()).map_err(NodeError::Config)?;
        let network = HttpNetwork::new(client, cfg.scheme(), cfg.token.clone(), cfg.peers.clone());

        let data = cfg.data.clone();
        let (log_store, sm) =
            tokio::task::spawn_blocking(move || wisckey_raft::open(&data, StoreOptions::default()))
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?
                .map_err(NodeError::Storage)?;
        let reader = sm.reader();

        let t = &cfg.raft;
        let raft_config = openraft::Config {
            cluster_name: "wisckey".into(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_min_ms,
            election_timeout_max: t.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(t.snapshot_every),
            max_in_snapshot_log_to_keep: t.keep_logs,
            snapshot_max_chunk_size: t.snapshot_chunk_bytes,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Raft(e.to_string()))?;
        let raft = Raft::new(cfg.id, Arc::new(raft_config), network, log_store, sm)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;

        let listener = std::net::TcpListener::bind(cfg.listen).map_err(|e| {
            NodeError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", cfg.listen),
            ))
        })?;
        let addr = listener.local_addr().map_err(NodeError::Io)?;
        let app = router(AppState {
            raft: raft.clone(),
            reader: reader.clone(),
            cfg: cfg.clone(),
        });
        let handle = axum_server::Handle::new();
        let server = match &cfg.tls {
            Some(t) => {
                let sc = tls::server_config(&t.cert, &t.key).map_err(NodeError::Config)?;
                let rc = axum_server::tls_rustls::RustlsConfig::from_config(sc);
                let srv = axum_server::from_tcp_rustls(listener, rc)
                    .map_err(NodeError::Io)?
                    .handle(handle.clone());
                tokio::spawn(srv.serve(app.into_make_service()))
            }
            None => {
                let srv = axum_server::from_tcp(listener)
                    .map_err(NodeError::Io)?
                    .handle(handle.clone());
                tokio::spawn(srv.serve(app.into_make_service()))
            }
        };
        tracing::info!(
            "node {} listening on {}://{addr}, data in {}",
            cfg.id,
            cfg.scheme(),
            cfg.data.display()
        );
        Ok(Node {
            raft,
            reader,
            addr,
            handle,
            server,
        })
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's Raft handle.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// Reads of the node's local state machine.
    pub fn reader(&self) -> &StateReader {
        &self.reader
    }

    /// Waits until the HTTP server stops (it stops on an I/O error only,
    /// or after [`Node::shutdown`]).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn serve_until_stopped(&mut self) -> Result<(), NodeError> {
        match (&mut self.server).await {
            Ok(r) => r.map_err(NodeError::Io),
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    /// Stops serving (requests in flight get up to 2 s), stops Raft and
    /// syncs the database.
    ///
    /// # Errors
    /// [`NodeError::Raft`] when Raft stops with an error;
    /// [`NodeError::Storage`] when the final sync fails.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(2)));
        let _ = self.server.await;
        self.raft
            .shutdown()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let db = self.reader.db().clone();
        tokio::task::spawn_blocking(move || db.sync())
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?
            .map_err(NodeError::Storage)
    }
}
