//! The classic adapter on a 3-master Redis Cluster (`redis-cluster://…` URL): two Shoal
//! nodes and one Node server (`server.mjs --cluster …`) broadcast to each other's clients,
//! fetch each other's sockets and answer server-side emits; the server count is the
//! request channel's `PUBSUB NUMSUB` summed over the masters (classic pub/sub spans the
//! cluster, but NUMSUB counts one node's subscribers).
//!
//! Needs `redis-server`/`redis-cli` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

#[path = "classic_support.rs"]
mod support;

use std::time::Instant;

use serde_json::json;
use shoal_testkit::RedisCluster;
use support::{Clients, NodeServer, ShoalNode, sorted, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_on_redis_cluster() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3).await;
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    let url = format!("redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}", ports[0], ports[1], ports[2]);
    let cluster_ready = started.elapsed();

    let s1 = ShoalNode::start("S1", &url, &[]).await;
    let s2 = ShoalNode::start("S2", &url, &[]).await;
    let mut n = NodeServer::start("N", &cluster.urls().join(","), true, &[]).await;
    support::wait_server_counts(&[&s1, &s2], "/", 3).await;
    assert_eq!(n.call(json!({"cmd": "serverCount"})).await, json!(3), "Node's count");
    assert_eq!(cluster.numsub("socket.io-request#/#").await, 3, "NUMSUB summed over the masters");
    let per_node: Vec<i64> = {
        let mut v = Vec::new();
        for node in cluster.nodes() {
            v.push(node.numsub("socket.io-request#/#").await);
        }
        v
    };
    eprintln!("request channel subscribers per master: {per_node:?}");

    let mut c = Clients::start().await;
    c.connect(&s1.url(), "/", &[json!({"rooms": ["r1"], "data": {"u": 0}})]).await;
    c.connect(&s2.url(), "/", &[json!({})]).await;
    c.connect(&n.url(), "/", &[json!({"rooms": ["r1"]})]).await;
    let ids = c.ids.clone();
    n.connection(&ids[2]).await;
    wait_until("Shoal clients connected", || s1.io.of("/").socket_count() + s2.io.of("/").socket_count() == 2).await;

    // broadcasts both ways
    n.call(json!({"cmd": "broadcast", "event": "from-node", "args": [1]})).await;
    s1.io.emit("from-s1", &2).unwrap();
    s2.io.to("r1").emit("from-s2-room", &3).unwrap();
    n.call(json!({"cmd": "broadcast", "event": "node-room", "rooms": ["r1"]})).await;
    for (i, ev) in
        [(0, "from-node"), (1, "from-node"), (2, "from-node"), (0, "from-s1"), (1, "from-s1"), (2, "from-s1")]
    {
        c.received(ev, i).await;
    }
    c.all_received("from-s2-room", &[0, 2]).await;
    c.all_received("node-room", &[0, 2]).await;
    // fences: nothing else arrived
    s1.io.emit("fence", &0).unwrap();
    s2.io.emit("fence", &0).unwrap();
    n.call(json!({"cmd": "broadcast", "event": "fence"})).await;
    for i in 0..3 {
        for _ in 0..3 {
            c.received("fence", i).await;
        }
    }
    for ev in ["from-node", "from-s1", "from-s2-room", "node-room"] {
        assert!(c.take_counts(ev).is_empty(), "{ev} arrived more than once");
    }

    // requests across the cluster
    let all = s1.io.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sorted(all.iter().map(|s| s.id.as_str())), sorted(&ids));
    let all = n.call(json!({"cmd": "fetchSockets"})).await;
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let r = n.call(json!({"cmd": "serverSideEmitWithAck", "event": "sse-ack", "args": [1]})).await;
    assert_eq!(sorted(r.as_array().unwrap().iter().map(|x| x.as_str().unwrap())), vec!["S1", "S2"]);
    let r = s2.io.of("/").timeout(std::time::Duration::from_secs(5)).emit_with_ack("ask", &0).await.unwrap();
    assert_eq!(r.len(), 3);
    eprintln!("mixed_cluster_on_redis_cluster: {:?} (cluster up after {cluster_ready:?})", started.elapsed());
}
