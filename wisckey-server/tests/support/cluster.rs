//! Three (or more) `wisckey-server` processes on loopback, each dialing
//! its peers through a [`Proxy`] the test can cut, with their data in a
//! temporary directory that goes with the cluster.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wisckey_server::Client;

use super::proxy::Proxy;

/// One node process.
pub struct NodeProc {
    pub id: u64,
    pub addr: SocketAddr,
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

/// The cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<u64, NodeProc>,
    /// (from, to) → the proxy `from` dials `to` through.
    pub links: BTreeMap<(u64, u64), Proxy>,
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap()
}

impl Cluster {
    /// Writes the configurations of nodes `1..=n` (not started yet).
    pub fn new(n: u64, raft: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let addrs: BTreeMap<u64, SocketAddr> = (1..=n).map(|id| (id, free_port())).collect();
        let mut links = BTreeMap::new();
        for &from in addrs.keys() {
            for (&to, &addr) in &addrs {
                if from != to {
                    links.insert((from, to), Proxy::start(addr));
                }
            }
        }
        let mut nodes = BTreeMap::new();
        for (&id, &addr) in &addrs {
            let mut peers = String::new();
            for (&(from, to), p) in &links {
                if from == id {
                    peers.push_str(&format!("{to} = \"{}\"\n", p.addr()));
                }
            }
            let data = dir.path().join(format!("node{id}"));
            let config = dir.path().join(format!("node{id}.toml"));
            std::fs::write(
                &config,
                format!(
                    "id = {id}\ndata = {data:?}\nlisten = \"{addr}\"\n{raft}\n[peers]\n{peers}"
                ),
            )
            .unwrap();
            let log = dir.path().join(format!("node{id}.log"));
            nodes.insert(
                id,
                NodeProc {
                    id,
                    addr,
                    child: None,
                    config,
                    log,
                },
            );
        }
        Cluster { dir, nodes, links }
    }

    /// Starts node `id` and waits until it listens.
    pub fn start(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).unwrap();
        assert!(node.child.is_none(), "node {id} runs already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wisckey-server"))
            .arg("--config")
            .arg(&node.config)
            .arg("--log")
            .arg("warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn wisckey-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        // Several attempts: the port may be held for a moment after a kill.
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => node.child = Some(child),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "node {id} did not start; its log:\n{}",
                    std::fs::read_to_string(&node.log).unwrap_or_default()
                );
            }
        }
    }

    /// kill -9 of node `id`.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.nodes.get_mut(&id).unwrap().child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether node `id`'s process is running.
    pub fn running(&self, id: u64) -> bool {
        self.nodes[&id].child.is_some()
    }

    /// Cuts (or heals) every link to and from `id`.
    pub fn isolate(&self, id: u64, cut: bool) {
        for (&(from, to), p) in &self.links {
            if from == id || to == id {
                p.set_blocked(cut);
            }
        }
    }

    /// Every node's address, for a client.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.addr.to_string()).collect()
    }

    pub fn addr(&self, id: u64) -> String {
        self.nodes[&id].addr.to_string()
    }

    /// The node that reports itself leader with a majority of running
    /// nodes agreeing, waiting up to `within`.
    pub async fn leader(&self, client: &Client, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
            let mut leaders = Vec::new();
            for n in self.nodes.values().filter(|n| n.child.is_some()) {
                if let Ok(s) = client.status(&n.addr.to_string()).await {
                    if let Some(l) = s.leader {
                        *votes.entry(l).or_default() += 1;
                    }
                    if s.state == "Leader" {
                        leaders.push(s.id);
                    }
                }
            }
            for l in leaders {
                if votes.get(&l).copied().unwrap_or(0) * 2 > self.nodes.len() {
                    return l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {within:?}; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The tail of every node's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in self.nodes.values() {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- node {} ---\n", n.id));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
}
