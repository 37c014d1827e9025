//! `wisckey-server`: one node of a wisckey cluster. See docs/cluster.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wisckey_server::{Config, Node, TlsConfig};

/// One node of a replicated wisckey key-value service (openraft over
/// HTTP). Flags override the configuration file; see docs/cluster.md.
#[derive(Parser, Debug)]
#[command(name = "wisckey-server", version)]
struct Args {
    /// A TOML configuration file (fields: id, data, listen, advertise,
    /// peers, token, [tls], [limits], [raft]).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// This node's id (unique in the cluster).
    #[arg(long)]
    id: Option<u64>,
    /// The data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:7400; bind another interface
    /// only on purpose].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The address others reach this node at, when not --listen.
    #[arg(long)]
    advertise: Option<String>,
    /// Dial peer ID at ADDR instead of its membership address (ID=ADDR;
    /// repeat).
    #[arg(long = "peer", value_name = "ID=ADDR")]
    peers: Vec<String>,
    /// A file holding the shared token that clients and peers must send
    /// (Authorization: Bearer). Also read from $WISCKEY_TOKEN.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key and --tls-ca.
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The CA that signed the peers' certificates (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// Log filter (as RUST_LOG): error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log: String,
}

fn build_config(a: &Args) -> Result<Config, String> {
    let mut cfg = match &a.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => {
            let id = a.id.ok_or("give --id (or a --config file with id)")?;
            let data = a
                .data
                .clone()
                .ok_or("give --data (or a --config file with data)")?;
            Config::new(id, data)
        }
    };
    if let Some(id) = a.id {
        cfg.id = id;
    }
    if let Some(d) = &a.data {
        cfg.data = d.clone();
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(adv) = &a.advertise {
        cfg.advertise = Some(adv.clone());
    }
    let mut peers = BTreeMap::new();
    for p in &a.peers {
        let (id, addr) = p
            .split_once('=')
            .ok_or_else(|| format!("--peer {p}: expected ID=ADDR"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| format!("--peer {p}: {id} is not a node id"))?;
        peers.insert(id, addr.to_string());
    }
    cfg.peers.extend(peers);
    if let Some(f) = &a.token_file {
        let t = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        cfg.token = Some(t.trim().to_string());
    } else if let Ok(t) = std::env::var("WISCKEY_TOKEN") {
        cfg.token = Some(t);
    }
    if let (Some(cert), Some(key), Some(ca)) = (&a.tls_cert, &a.tls_key, &a.tls_ca) {
        cfg.tls = Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        });
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log)),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = match build_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wisckey-server: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wisckey-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let mut node = match Node::start(cfg).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("wisckey-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        // The address, on stdout, for scripts and tests that listen on port 0.
        println!("listening on {}", node.addr());
        let stopped = tokio::select! {
            r = node.serve_until_stopped() => Some(r),
            _ = shutdown_signal() => None,
        };
        if let Some(Err(e)) = stopped {
            eprintln!("wisckey-server: {e}");
            return ExitCode::FAILURE;
        }
        tracing::info!("stopping");
        match node.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wisckey-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
