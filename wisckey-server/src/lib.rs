//! A replicated key-value service: each node keeps its data in wisckey
//! (through [`wisckey_raft`]'s openraft storage) and the nodes agree
//! through openraft, over HTTP (axum serving, reqwest calling, rustls with
//! ring for TLS).
//!
//! The binary `wisckey-server` runs one node; [`Node`] is the same node
//! inside a program (the tests and the cluster benchmark use it), and
//! [`Client`] talks to a cluster. docs/cluster.md says how to start a
//! cluster and what it guarantees.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wisckey_server::{Client, Config, Node};
//! let mut cfg = Config::new(1, "/tmp/wisckey-node-1");
//! cfg.listen = "127.0.0.1:7401".parse()?;
//! let node = Node::start(cfg).await?;
//! let client = Client::new(vec![node.addr().to_string()]);
//! client.init(&[(1, node.addr().to_string())]).await?;
//! client.put("kv", "greeting", b"hello".to_vec()).await?;
//! assert_eq!(client.get("kv", "greeting").await?.as_deref(), Some(&b"hello"[..]));
//! node.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod client;
pub mod config;
mod http;
pub mod network;
pub mod node;
pub mod tls;

pub use client::{Client, ClientError};
pub use config::{Config, ConfigError, Limits, RaftTuning, TlsConfig};
pub use node::{Node, NodeError};
