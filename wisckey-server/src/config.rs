//! A node's configuration: a TOML file, flags over it, defaults under both.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything a node needs to run. Built by [`Config::new`] (defaults) and
/// [`Config::from_toml`] (a file); the `wisckey-server` binary lays its
/// flags over the file.
///
/// ```
/// let cfg = wisckey_server::Config::from_toml(
///     r#"
///     id = 1
///     data = "/var/lib/wisckey/1"
///     listen = "127.0.0.1:7401"
///     "#,
/// )?;
/// assert_eq!(cfg.id, 1);
/// assert!(cfg.listen.ip().is_loopback());
/// assert_eq!(cfg.limits.max_value_bytes, 16 << 20);
/// # Ok::<(), wisckey_server::ConfigError>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's id in the cluster (unique, never reused for another
    /// machine's data).
    pub id: u64,
    /// The directory holding this node's database, Raft log and snapshots.
    pub data: PathBuf,
    /// Where to listen for clients and peers. Default 127.0.0.1:7400: a
    /// node is reachable from other machines only when told so.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address the other nodes and clients reach this node at, when
    /// it is not `listen` (a `0.0.0.0` listener, a NAT). Recorded in the
    /// cluster's membership when the node is added.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Per-peer addresses that override the membership's (node id →
    /// `host:port`): for a node that must dial a peer through another
    /// path (a proxy, a second network).
    #[serde(default)]
    pub peers: BTreeMap<u64, String>,
    /// A shared secret every client and peer request must carry as
    /// `Authorization: Bearer TOKEN`. None: no token asked.
    #[serde(default)]
    pub token: Option<String>,
    /// TLS for both client and peer traffic. None: plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Size limits on what clients may send.
    #[serde(default)]
    pub limits: Limits,
    /// Raft timing and snapshot policy.
    #[serde(default)]
    pub raft: RaftTuning,
}

/// TLS files (PEM). The node serves with `cert`/`key` and trusts `ca` for
/// its connections to peers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The node's certificate chain.
    pub cert: PathBuf,
    /// The node's private key.
    pub key: PathBuf,
    /// The certificate authority that signed the peers' certificates.
    pub ca: PathBuf,
}

/// Limits on requests. A request over them is refused with HTTP 413 and a
/// message naming the limit, before its body is read past the limit.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The longest key, in bytes. Default 4 KiB.
    pub max_key_bytes: usize,
    /// The longest value, in bytes. Default 16 MiB.
    pub max_value_bytes: usize,
    /// The largest request body (a batch, or a put's value), in bytes.
    /// Default 32 MiB.
    pub max_request_bytes: usize,
    /// The most operations in one batch. Default 10,000.
    pub max_batch_ops: usize,
    /// The most entries one scan returns. Default 10,000.
    pub max_scan_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 4 << 10,
            max_value_bytes: 16 << 20,
            max_request_bytes: 32 << 20,
            max_batch_ops: 10_000,
            max_scan_entries: 10_000,
        }
    }
}

/// Raft timing and snapshot policy.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    /// Leader heartbeat interval, milliseconds. Default 100.
    pub heartbeat_ms: u64,
    /// Election timeout range, milliseconds. Default 400..800.
    pub election_min_ms: u64,
    /// See `election_min_ms`.
    pub election_max_ms: u64,
    /// Take a snapshot after this many applied log entries since the
    /// last one. Default 20,000.
    pub snapshot_every: u64,
    /// Keep this many log entries after a snapshot before purging them
    /// (so a follower a little behind catches up from the log, not a
    /// snapshot). Default 1,000.
    pub keep_logs: u64,
    /// Largest snapshot chunk sent in one request, bytes. Default 4 MiB.
    pub snapshot_chunk_bytes: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        RaftTuning {
            heartbeat_ms: 100,
            election_min_ms: 400,
            election_max_ms: 800,
            snapshot_every: 20_000,
            keep_logs: 1_000,
            snapshot_chunk_bytes: 4 << 20,
        }
    }
}

impl RaftTuning {
    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7400))
}

impl Config {
    /// A configuration with every default: node `id`, data in `data`.
    pub fn new(id: u64, data: impl Into<PathBuf>) -> Config {
        Config {
            id,
            data: data.into(),
            listen: default_listen(),
            advertise: None,
            peers: BTreeMap::new(),
            token: None,
            tls: None,
            limits: Limits::default(),
            raft: RaftTuning::default(),
        }
    }

    /// Parses a TOML configuration (the fields of [`Config`]) and checks it.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field for TOML that does not parse, an
    /// unknown field, or values [`Config::validate`] refuses.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| ConfigError(format!("configuration: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a TOML file (see [`Config::from_toml`]).
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read or is not a valid
    /// configuration.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Checks the values that cannot work together.
    ///
    /// # Errors
    /// [`ConfigError`] for an empty token, zero limits, an election range
    /// that is empty or not longer than the heartbeat.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token.as_deref() == Some("") {
            return Err(ConfigError(
                "token: an empty token is no token; leave it out".into(),
            ));
        }
        let l = &self.limits;
        if l.max_key_bytes == 0
            || l.max_value_bytes == 0
            || l.max_request_bytes == 0
            || l.max_batch_ops == 0
            || l.max_scan_entries == 0
        {
            return Err(ConfigError("limits: every limit must be at least 1".into()));
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0 || r.election_min_ms <= r.heartbeat_ms {
            return Err(ConfigError(format!(
                "raft: election_min_ms ({}) must exceed heartbeat_ms ({}), which must be > 0",
                r.election_min_ms, r.heartbeat_ms
            )));
        }
        if r.election_max_ms <= r.election_min_ms {
            return Err(ConfigError(format!(
                "raft: election_max_ms ({}) must exceed election_min_ms ({})",
                r.election_max_ms, r.election_min_ms
            )));
        }
        if r.snapshot_every == 0 || r.snapshot_chunk_bytes == 0 {
            return Err(ConfigError(
                "raft: snapshot_every and snapshot_chunk_bytes must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The address recorded for this node in the membership: `advertise`,
    /// else `listen`.
    pub fn advertised(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind_to_loopback_and_bad_values_are_refused() {
        let cfg = Config::from_toml("id = 3\ndata = \"d\"").unwrap();
        assert!(cfg.listen.ip().is_loopback());
        assert!(cfg.token.is_none() && cfg.tls.is_none());
        for bad in [
            "id = 1\ndata = \"d\"\ntoken = \"\"",
            "id = 1\ndata = \"d\"\nlisten = \"nowhere\"",
            "id = 1\ndata = \"d\"\nunknown = 1",
            "id = 1\ndata = \"d\"\n[limits]\nmax_key_bytes = 0",
            "id = 1\ndata = \"d\"\n[raft]\nheartbeat_ms = 500",
            "data = \"d\"",
        ] {
            let err = Config::from_toml(bad).unwrap_err();
            assert!(!err.0.is_empty(), "{bad}");
        }
    }
}
