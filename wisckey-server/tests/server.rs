//! One node in this process: the service's contract at its edges (TLS,
//! the token, limits, bad input) and its operations end to end.

use std::time::Duration;

use wisckey_server::api::{Batch, BatchOp, B64};
use wisckey_server::{Client, ClientError, Config, Node, TlsConfig};

async fn single_node(cfg: Config) -> Node {
    let node = Node::start(cfg).await.expect("start");
    node
}

async fn init_one(client: &Client, node: &Node) {
    client
        .init(&[(1, node_addr(node))])
        .await
        .expect("init a one-node cluster");
    // Wait for it to elect itself.
    for _ in 0..100 {
        if client.put("kv", "warmup", b"x".to_vec()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node never became leader");
}

fn node_addr(node: &Node) -> String {
    node.addr().to_string()
}

fn config(dir: &std::path::Path) -> Config {
    let mut cfg = Config::new(1, dir.join("data"));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.raft.heartbeat_ms = 50;
    cfg.raft.election_min_ms = 150;
    cfg.raft.election_max_ms = 300;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_limits_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.max_value_bytes = 64 << 10;
    cfg.limits.max_request_bytes = 128 << 10;
    cfg.limits.max_batch_ops = 10;
    let node = single_node(cfg).await;
    let client = Client::new(vec![node_addr(&node)]);
    init_one(&client, &node).await;
    assert!(matches!(
        client.init(&[(1, node_addr(&node))]).await,
        Err(ClientError::Refused(409, _))
    ));

    // put, get, delete on both tables; keys with spaces and slashes.
    for table in ["kv", "blobs"] {
        client.put(table, "a b/c", vec![7u8; 4096]).await.unwrap();
        assert_eq!(
            client.get(table, "a b/c").await.unwrap(),
            Some(vec![7u8; 4096])
        );
        client.delete(table, "a b/c").await.unwrap();
        assert_eq!(client.get(table, "a b/c").await.unwrap(), None);
    }

    // a batch is atomic: one bad op refuses all of it
    let put = |k: &str| BatchOp::Put {
        table: "kv".into(),
        key: B64(k.as_bytes().to_vec()),
        value: B64(b"v".to_vec()),
    };
    let bad = Batch {
        ops: vec![
            put("x1"),
            BatchOp::Put {
                table: "nope".into(),
                key: B64(b"x2".to_vec()),
                value: B64(vec![]),
            },
        ],
    };
    assert!(matches!(
        client.batch(&bad).await,
        Err(ClientError::Refused(404, _))
    ));
    assert_eq!(client.get("kv", "x1").await.unwrap(), None);
    let good = Batch {
        ops: (0..10).map(|i| put(&format!("s{i:02}"))).collect(),
    };
    client.batch(&good).await.unwrap();

    // scans page through the ordered table; the unordered one refuses
    let page = client.scan("kv", "s", Some("t"), 4).await.unwrap();
    assert_eq!(page.entries.len(), 4);
    assert_eq!(page.entries[0].key.0, b"s00");
    assert_eq!(page.next.as_ref().unwrap().0, b"s04");
    let all = client.scan("kv", "s", Some("t"), 100).await.unwrap();
    assert_eq!(all.entries.len(), 10);
    assert!(all.next.is_none());
    assert!(matches!(
        client.scan("blobs", "", None, 10).await,
        Err(ClientError::Refused(400, _))
    ));

    // limits: refused with 413 and a message naming the limit
    match client.put("kv", "big", vec![0u8; (64 << 10) + 1]).await {
        Err(ClientError::Refused(413, m)) => assert!(m.contains("max_value_bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
    match client.put("kv", "huge", vec![0u8; 1 << 20]).await {
        Err(ClientError::Refused(413, _)) => {}
        other => panic!("a body over max_request_bytes: {other:?}"),
    }
    let long_key = "k".repeat(5000);
    assert!(matches!(
        client.put("kv", &long_key, b"v".to_vec()).await,
        Err(ClientError::Refused(413, _))
    ));
    let too_many = Batch {
        ops: (0..11).map(|i| put(&format!("t{i}"))).collect(),
    };
    assert!(matches!(
        client.batch(&too_many).await,
        Err(ClientError::Refused(413, _))
    ));
    assert!(matches!(
        client.put("nope", "k", b"v".to_vec()).await,
        Err(ClientError::Refused(404, _))
    ));

    // hostile bytes on the peer endpoints are refused, the node lives on
    let http = wisckey_server::tls::http_client(None).unwrap();
    for path in ["/raft/append", "/raft/vote", "/raft/snapshot"] {
        let r = http
            .post(format!("http://{}{path}", node_addr(&node)))
            .body(vec![0xffu8; 100])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
    }
    let status = client.status(&node_addr(&node)).await.unwrap();
    assert_eq!(status.leader, Some(1));
    let stats = client.stats(&node_addr(&node)).await.unwrap();
    assert!(stats.device_bytes_written > 0 && stats.disk_bytes > 0);
    node.shutdown().await.unwrap();

    // restart: the data is still there
    let mut cfg = config(dir.path());
    cfg.limits.max_value_bytes = 64 << 10;
    let node = single_node(cfg).await;
    let client = Client::new(vec![node_addr(&node)]);
    let mut got = None;
    for _ in 0..100 {
        match client.get("kv", "s03").await {
            Ok(v) => {
                got = v;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_token_keep_strangers_out() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut cfg = config(dir.path());
    cfg.token = Some("s3cret".into());
    cfg.tls = Some(TlsConfig {
        cert: cert.clone(),
        key,
        ca: cert.clone(),
    });
    let node = single_node(cfg).await;
    let port = node.addr().port();
    let addr = format!("localhost:{port}");
    let https = wisckey_server::tls::http_client(Some(&cert)).unwrap();

    let client =
        Client::with_http(https.clone(), "https", vec![addr.clone()]).token(Some("s3cret".into()));
    client.init(&[(1, addr.clone())]).await.unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if client.put("kv", "k", b"v".to_vec()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "no write over TLS");
    assert_eq!(
        client.get("kv", "k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );

    // no token, a wrong token: 401
    for token in [None, Some("guess".to_string())] {
        let stranger = Client::with_http(https.clone(), "https", vec![addr.clone()]).token(token);
        assert!(matches!(
            stranger.put("kv", "k", b"x".to_vec()).await,
            Err(ClientError::Refused(401, _))
        ));
    }
    // plain HTTP to a TLS port gets nowhere
    let plain = Client::new(vec![addr.clone()])
        .token(Some("s3cret".into()))
        .timeout(Duration::from_secs(2));
    assert!(plain.get("kv", "k").await.is_err());
    // a client that does not trust the CA refuses the server
    let untrusting = Client::with_http(
        wisckey_server::tls::http_client(None).unwrap(),
        "https",
        vec![addr.clone()],
    )
    .token(Some("s3cret".into()))
    .timeout(Duration::from_secs(2));
    assert!(untrusting.get("kv", "k").await.is_err());
    assert_eq!(
        client.get("kv", "k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    node.shutdown().await.unwrap();
}
