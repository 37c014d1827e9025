//! Three `wisckey-server` processes on loopback under faults: kill -9 and
//! restart of a follower and of the leader, a partition of the leader, a
//! membership change. Clients record every operation; the history must be
//! linearizable, and nothing acknowledged may be lost once every node has
//! been killed and restarted.
//!
//! Bounded for CI (`WISCKEY_CLUSTER_SECS`, default 1 fault round, about a
//! minute); `WISCKEY_CLUSTER_SECS=600` runs rounds for ten minutes.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::cluster::Cluster;
use support::linearizability::{self, Kind, Op};
use wisckey_server::{Client, ClientError};

const KEYS: usize = 6;
const CLIENTS: usize = 4;
const RAFT: &str = "[raft]\nheartbeat_ms = 50\nelection_min_ms = 300\nelection_max_ms = 600\n\
                    snapshot_every = 300\nkeep_logs = 50\n";

struct Recorder {
    origin: Instant,
    history: Mutex<Vec<Op>>,
    next_value: AtomicU64,
    acked_writes: AtomicU64,
    unknown: AtomicU64,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }
}

fn parse(v: Option<Vec<u8>>) -> Option<u64> {
    v.map(|b| {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.split(':').next())
            .and_then(|s| s.parse().ok())
            .expect("a value the test wrote")
    })
}

/// One client: random puts, deletes and reads of a few keys.
async fn client_loop(id: usize, addrs: Vec<String>, rec: Arc<Recorder>, stop: Arc<AtomicBool>) {
    let client = Client::new(addrs).timeout(Duration::from_secs(3));
    let mut rng = rand::rngs::StdRng::seed_from_u64(id as u64 * 7919);
    while !stop.load(Ordering::Relaxed) {
        let key = format!("k{}", rng.gen_range(0..KEYS));
        let roll = rng.gen_range(0..100);
        let start = rec.now();
        let (kind, outcome) = if roll < 45 {
            let v = rec.next_value.fetch_add(1, Ordering::Relaxed);
            // The value id, then padding: 1 KiB values.
            let mut value = format!("{v}:").into_bytes();
            value.resize(1024, b'.');
            let r = client.put("kv", &key, value).await.map(|_| ());
            (Kind::Write(Some(v)), r.map(|_| None))
        } else if roll < 55 {
            let r = client.delete("kv", &key).await.map(|_| ());
            (Kind::Write(None), r.map(|_| None))
        } else {
            match client.get("kv", &key).await {
                Ok(v) => (Kind::Read(parse(v.clone())), Ok(Some(()))),
                Err(e) => (Kind::Read(None), Err(e)),
            }
        };
        let end = rec.now();
        let op = match outcome {
            Ok(_) => {
                if matches!(kind, Kind::Write(_)) {
                    rec.acked_writes.fetch_add(1, Ordering::Relaxed);
                }
                Some(Op {
                    key,
                    kind,
                    start,
                    end: Some(end),
                    client: id,
                })
            }
            // May have been applied: it stays, open-ended.
            Err(ClientError::Unknown(_)) => {
                rec.unknown.fetch_add(1, Ordering::Relaxed);
                Some(Op {
                    key,
                    kind,
                    start,
                    end: None,
                    client: id,
                })
            }
            // Certainly not applied: nothing to record.
            Err(ClientError::Unavailable(_)) => None,
            Err(e @ ClientError::Refused(..)) => panic!("client {id}: {e}"),
        };
        if let Some(op) = op {
            rec.history.lock().unwrap().push(op);
        }
    }
}

async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_history_is_linearizable_under_faults() {
    let budget = std::env::var("WISCKEY_CLUSTER_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut cluster = Cluster::new(3, RAFT);
    for id in 1..=3 {
        cluster.start(id);
    }
    let admin = Client::new(cluster.addrs()).timeout(Duration::from_secs(10));
    let members: Vec<(u64, String)> = (1..=3).map(|id| (id, cluster.addr(id))).collect();
    admin.init(&members).await.expect("init");
    let mut leader = cluster.leader(&admin, Duration::from_secs(20)).await;

    let rec = Arc::new(Recorder {
        origin: Instant::now(),
        history: Mutex::new(Vec::new()),
        next_value: AtomicU64::new(1),
        acked_writes: AtomicU64::new(0),
        unknown: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client_loop(c, cluster.addrs(), rec.clone(), stop.clone())))
        .collect();

    let began = Instant::now();
    let mut rounds = 0;
    let mut snapshots_seen = 0;
    loop {
        rounds += 1;
        pause(Duration::from_secs(2)).await;

        // 1. kill -9 a follower; restart it after the cluster moved on.
        let follower = (1..=3).find(|&id| id != leader).unwrap();
        cluster.kill(follower);
        pause(Duration::from_secs(3)).await;
        cluster.start(follower);
        pause(Duration::from_secs(2)).await;

        // 2. kill -9 the leader.
        cluster.kill(leader);
        let old = leader;
        cluster.leader(&admin, Duration::from_secs(20)).await;
        pause(Duration::from_secs(2)).await;
        cluster.start(old);
        pause(Duration::from_secs(2)).await;

        // 3. partition the leader from both followers (clients still reach it).
        leader = cluster.leader(&admin, Duration::from_secs(20)).await;
        cluster.isolate(leader, true);
        pause(Duration::from_secs(4)).await;
        cluster.isolate(leader, false);
        leader = cluster.leader(&admin, Duration::from_secs(20)).await;
        pause(Duration::from_secs(1)).await;

        // 4. membership: drop a follower to a two-voter cluster, then add
        // it back as a learner (it catches up, by snapshot when the log it
        // needs was purged) and promote it.
        let out = (1..=3).find(|&id| id != leader).unwrap();
        let rest: Vec<u64> = (1..=3).filter(|&id| id != out).collect();
        admin
            .change_membership(&rest)
            .await
            .expect("remove a voter");
        pause(Duration::from_secs(2)).await;
        admin
            .add_learner(out, &cluster.addr(out))
            .await
            .expect("add the learner back");
        admin
            .change_membership(&[1, 2, 3])
            .await
            .expect("promote it again");
        leader = cluster.leader(&admin, Duration::from_secs(20)).await;
        for id in 1..=3 {
            if let Ok(s) = admin.status(&cluster.addr(id)).await {
                if s.snapshot_index.is_some() {
                    snapshots_seen += 1;
                }
            }
        }
        match budget {
            Some(b) if began.elapsed() < b => continue,
            _ => break,
        }
    }
    pause(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }

    // Every node killed at once, then restarted: what was acknowledged
    // must all be there.
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.leader(&admin, Duration::from_secs(30)).await;
    let reader = Client::new(cluster.addrs()).timeout(Duration::from_secs(10));
    for k in 0..KEYS {
        let key = format!("k{k}");
        let start = rec.now();
        let v = reader.get("kv", &key).await.expect("final read");
        let end = rec.now();
        rec.history.lock().unwrap().push(Op {
            key,
            kind: Kind::Read(parse(v)),
            start,
            end: Some(end),
            client: 99,
        });
    }

    // The replicas agree once they applied the same index.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut applied = Vec::new();
        for id in 1..=3 {
            applied.push(
                admin
                    .status(&cluster.addr(id))
                    .await
                    .ok()
                    .and_then(|s| s.last_applied),
            );
        }
        if applied.iter().all(|a| a.is_some() && *a == applied[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: {applied:?}"
        );
        pause(Duration::from_millis(100)).await;
    }

    for k in 0..KEYS {
        let key = format!("k{k}");
        let mut seen = Vec::new();
        for id in 1..=3 {
            seen.push(
                admin
                    .get_local(&cluster.addr(id), "kv", &key)
                    .await
                    .expect("local read"),
            );
        }
        assert!(
            seen.iter().all(|v| *v == seen[0]),
            "replicas disagree on {key}"
        );
    }

    let history = rec.history.lock().unwrap().clone();
    let acked = rec.acked_writes.load(Ordering::Relaxed);
    let unknown = rec.unknown.load(Ordering::Relaxed);
    println!(
        "{rounds} fault round(s) in {:.1} s: {} operations recorded, {acked} acknowledged writes, \
         {unknown} with unknown outcome, snapshots on {snapshots_seen} node views",
        began.elapsed().as_secs_f64(),
        history.len()
    );
    assert!(acked >= 100, "too few writes got through: {acked}");
    match linearizability::check(&history) {
        Ok(n) => println!("linearizable: {n} operations checked"),
        Err(v) => panic!(
            "key {}: {}\nnode logs:\n{}",
            v.key,
            v.message,
            cluster.logs()
        ),
    }
}
