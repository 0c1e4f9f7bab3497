//! The sharded adapter on a 3-master Redis Cluster: shard channels live on the master
//! owning their slot, the server count is `SHARDNUMSUB` summed over masters, and a mixed
//! Shoal + Node cluster works in both directions.

#[path = "sharded_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use shoal_redis::SubscriptionMode;
use support::{Broker, Clients, ShoalNode, T, mixed_cluster_scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_cluster_on_redis_cluster() {
    let broker = Broker::cluster().await;
    mixed_cluster_scenario(&broker, SubscriptionMode::Dynamic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn room_channels_spread_over_masters() {
    let broker = Broker::cluster().await;
    let Broker::Cluster(cluster) = &broker else { unreachable!() };
    let url = broker.shoal_url();
    let mut nodes = Vec::new();
    for name in ["A", "B", "C"] {
        nodes.push(ShoalNode::start(name, &url, SubscriptionMode::Dynamic, &[]).await);
    }
    for n in &nodes {
        n.wait_server_count("/", 3).await;
    }
    // the main channel lives on one master only, yet every node counts 3
    let owner = cluster.node_for_key("socket.io#/#").await.port();
    for server in cluster.nodes() {
        let want = if server.port() == owner { 3 } else { 0 };
        assert_eq!(server.shardnumsub("socket.io#/#").await, want, "master {}", server.port());
    }

    // rooms whose channels land on every master; room k has members on nodes 0..=k%3
    let mut rooms: Vec<String> = Vec::new();
    let mut masters: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0.. {
        let room = format!("room{i}");
        let port = cluster.node_for_key(&format!("socket.io#/#{room}#")).await.port();
        if masters.get(&port).copied().unwrap_or(0) < 2 {
            *masters.entry(port).or_default() += 1;
            rooms.push(room);
        }
        if masters.len() == 3 && masters.values().all(|&n| n == 2) {
            break;
        }
    }
    let mut clients = Clients::start().await;
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (k, room) in rooms.iter().enumerate() {
        let mut m = Vec::new();
        for node in &nodes[..=k % 3] {
            m.extend(clients.connect(&node.url(), "/", &[json!({"rooms": [room]})]).await);
        }
        members.push(m);
    }
    for (k, room) in rooms.iter().enumerate() {
        let channel = format!("socket.io#/#{room}#");
        broker.wait_shardnumsub(&channel, (k % 3 + 1) as i64).await;
        // on its master only
        let owner = cluster.node_for_key(&channel).await.port();
        for server in cluster.nodes().iter().filter(|s| s.port() != owner) {
            assert_eq!(server.shardnumsub(&channel).await, 0);
        }
    }
    // every node reaches each room, whichever master holds it
    let q = Duration::from_millis(150);
    for (k, room) in rooms.iter().enumerate() {
        for (j, node) in nodes.iter().enumerate() {
            let ev = format!("to-{room}-{j}");
            node.io.of("/").to(room.as_str()).emit(&ev, &k).unwrap();
            clients.expect_exactly(&ev, &members[k], q).await;
        }
    }
    // acks, fetch and server-side emit over the cluster
    let total: usize = members.iter().map(Vec::len).sum();
    let r = nodes[2].io.of("/").timeout(T).emit_with_ack("ack", &1).await.unwrap();
    assert_eq!(r.len(), total);
    let all = nodes[1].io.of("/").fetch_sockets().await.unwrap();
    let ids: BTreeSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, clients.ids.iter().map(String::as_str).collect());
    let r = nodes[0].io.of("/").server_side_emit_with_ack("sse-ack", &1, T).await.unwrap();
    let mut names: Vec<String> = r.iter().map(|a| a.args.values[0].as_str().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["B", "C"]);

    // members leave: every room channel goes, from whichever master held it
    clients.p.call(json!({"cmd": "close"})).await;
    for room in &rooms {
        broker.wait_shard_channels(&format!("socket.io#/#{room}#"), &[]).await;
    }
}
