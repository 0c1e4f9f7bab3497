//! Three Shoal nodes with the sharded adapter on one Redis (`dynamic` subscriptions unless
//! said otherwise), with official socket.io clients: broadcasts, acknowledgements, fetch
//! sockets, remote join / leave / disconnect, server-side emit, all rooms, room channels
//! and subscription hygiene.

#[path = "sharded_support.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use shoal::errors::BroadcastAckError;
use shoal::{Args, NamespaceMatcher};
use shoal_core::AdapterError;
use shoal_redis::SubscriptionMode;
use support::{Broker, Clients, ShoalNode, T, bin, on_connect, wait_until};

const QUIET: Duration = Duration::from_millis(150);

/// Three nodes, each with a client in room `a` and one in room `b` (clients 2k and
/// 2k+1 on node k, with data `{"n": index}`), every room channel subscribed.
async fn three_nodes(broker: &Broker) -> (Vec<ShoalNode>, Clients) {
    let url = broker.shoal_url();
    let mut nodes = Vec::new();
    for name in ["A", "B", "C"] {
        nodes.push(ShoalNode::start(name, &url, SubscriptionMode::Dynamic, &[]).await);
    }
    for n in &nodes {
        n.wait_server_count("/", 3).await;
    }
    let mut clients = Clients::start().await;
    for (k, n) in nodes.iter().enumerate() {
        let auths = [json!({"rooms": ["a"], "data": {"n": 2 * k}}), json!({"rooms": ["b"], "data": {"n": 2 * k + 1}})];
        clients.connect(&n.url(), "/", &auths).await;
    }
    broker.wait_shardnumsub("socket.io#/#a#", 3).await;
    broker.wait_shardnumsub("socket.io#/#b#", 3).await;
    (nodes, clients)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broadcasts_reach_every_node_with_rooms_and_except() {
    let broker = Broker::single().await;
    let (nodes, mut clients) = three_nodes(&broker).await;
    let all = [0, 1, 2, 3, 4, 5];
    for (k, node) in nodes.iter().enumerate() {
        let ns = node.io.of("/");
        ns.emit(&format!("all-{k}"), &k).unwrap();
        let got = clients.expect_exactly(&format!("all-{k}"), &all, QUIET).await;
        assert!(got.iter().all(|v| v["args"] == json!([k])), "{got:?}");

        ns.to("a").emit(&format!("a-{k}"), &"x").unwrap();
        clients.expect_exactly(&format!("a-{k}"), &[0, 2, 4], QUIET).await;

        ns.except("a").emit(&format!("not-a-{k}"), &"x").unwrap();
        clients.expect_exactly(&format!("not-a-{k}"), &[1, 3, 5], QUIET).await;

        // two rooms: main channel, everyone once
        ns.to("a").to("b").emit(&format!("ab-{k}"), &"x").unwrap();
        clients.expect_exactly(&format!("ab-{k}"), &all, QUIET).await;

        // one room minus one socket of another node
        let other = (2 * k + 2) % 6;
        ns.to("a").except(clients.id(other)).emit(&format!("a-but-{k}"), &"x").unwrap();
        let want: Vec<usize> = [0, 2, 4].into_iter().filter(|&i| i != other).collect();
        clients.expect_exactly(&format!("a-but-{k}"), &want, QUIET).await;

        // a socket id of another node
        let target = (2 * k + 3) % 6;
        ns.to(clients.id(target)).emit(&format!("sid-{k}"), &"x").unwrap();
        clients.expect_exactly(&format!("sid-{k}"), &[target], QUIET).await;
    }

    // binary crosses nodes as binary (MessagePack on the wire)
    nodes[1].io.of("/").to("b").emit("bin", &Bytes::from_static(&[1, 2, 3, 250])).unwrap();
    let got = clients.expect_exactly("bin", &[1, 3, 5], QUIET).await;
    assert!(got.iter().all(|v| v["args"] == json!([bin(&[1, 2, 3, 250])])), "{got:?}");

    // local broadcasts stay local
    nodes[2].io.of("/").local().emit("local", &1).unwrap();
    clients.expect_exactly("local", &[4, 5], QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acks_and_server_side_emits_cross_nodes() {
    let broker = Broker::single().await;
    let (nodes, mut clients) = three_nodes(&broker).await;

    // broadcast with acks: every client of every node answers with its index
    for node in &nodes {
        let r = node.io.of("/").timeout(T).emit_with_ack("ack", &"?").await.unwrap();
        let got: BTreeSet<u64> = r.iter().map(|a| a.args.values[0].as_u64().unwrap()).collect();
        assert_eq!(got, (0..6).collect());
        let r = node.io.of("/").to("b").timeout(T).emit_with_ack("ack-b", &"?").await.unwrap();
        let got: BTreeSet<u64> = r.iter().map(|a| a.args.values[0].as_u64().unwrap()).collect();
        assert_eq!(got, BTreeSet::from([1, 3, 5]));
    }
    // no client at all: every node reports 0, done at once
    let r = nodes[0].io.of("/").to("nobody").timeout(T).emit_with_ack("ack-none", &1).await.unwrap();
    assert!(r.is_empty());
    // a silent client of another node: timeout with the others' answers
    clients.p.call(json!({"cmd": "setAck", "index": 3, "silent": true})).await;
    let e = nodes[0].io.of("/").to("b").timeout(Duration::from_millis(700)).emit_with_ack("ack-t", &1).await;
    let Err(BroadcastAckError::Timeout(t)) = e else { panic!("{e:?}") };
    let got: BTreeSet<u64> = t.responses.iter().map(|a| a.args.values[0].as_u64().unwrap()).collect();
    assert_eq!((got, t.expected, t.servers_reported), (BTreeSet::from([1, 5]), 3, 3));

    // server-side emit with acks: the other two nodes answer with their names
    for (k, node) in nodes.iter().enumerate() {
        let r = node.io.of("/").server_side_emit_with_ack("sse-ack", &k, T).await.unwrap();
        let mut names: Vec<String> = r.iter().map(|a| a.args.values[0].as_str().unwrap().to_owned()).collect();
        names.sort();
        let mut want: Vec<String> = nodes.iter().filter(|n| n.name != node.name).map(|n| n.name.clone()).collect();
        want.sort();
        assert_eq!(names, want);
    }
    // one node does not answer: timeout, with the answers that came (Node's `err.responses`)
    nodes[1].io.of("/").on_server_event("sse-part", |_args: Args| Some(Args::single(&"B").unwrap()));
    nodes[2].io.of("/").on_server_event("sse-part", |_args: Args| None);
    let err =
        nodes[0].io.of("/").server_side_emit_with_ack("sse-part", &0, Duration::from_millis(700)).await.unwrap_err();
    let shoal::SendError::Adapter(AdapterError::AckTimeout { responses, expected }) = err else { panic!("{err:?}") };
    assert_eq!(expected, 2);
    assert_eq!(responses.iter().map(|a| a.args.values[0].clone()).collect::<Vec<_>>(), vec![json!("B")]);
    // without ack: each other node once, not the sender
    nodes[1].io.of("/").server_side_emit("sse", &json!({"from": "B"})).unwrap();
    for k in [0, 2] {
        assert_eq!(nodes[k].events.wait("/", "sse", 1).await, vec![vec![json!({"from": "B"})]]);
    }
    // binary: MessagePack on the wire, an attachment again on arrival
    nodes[2].io.of("/").server_side_emit("sse", &Bytes::from_static(b"\x00\xff")).unwrap();
    let got = nodes[0].events.wait("/", "sse", 2).await;
    assert_eq!(got[1], vec![json!({"_placeholder": true, "num": 0})]);
    // the fence: B got its two as well, and never its own
    nodes[1].events.wait("/", "sse", 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(nodes[1].events.named("/", "sse").len(), 1);
    assert_eq!(nodes[0].events.named("/", "sse").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetch_join_leave_disconnect_apply_once() {
    let broker = Broker::single().await;
    let (nodes, mut clients) = three_nodes(&broker).await;
    let ids: Vec<String> = clients.ids.clone();

    // fetch sockets: every node's, with rooms and data
    for node in &nodes {
        let all = node.io.of("/").fetch_sockets().await.unwrap();
        let got: BTreeSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(got, ids.iter().map(String::as_str).collect());
        for s in &all {
            let i = ids.iter().position(|id| *id == s.id).unwrap();
            assert_eq!(s.data, json!({"n": i}));
            let mut rooms: Vec<&str> = s.rooms.iter().map(|r| r.as_str()).collect();
            rooms.sort_unstable();
            let mut want = vec![s.id.as_str(), if i % 2 == 0 { "a" } else { "b" }];
            want.sort_unstable();
            assert_eq!(rooms, want);
        }
        let b = node.io.of("/").to("b").fetch_sockets().await.unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(node.io.of("/").local().fetch_sockets().await.unwrap().len(), 2);
    }

    // all rooms: from a fetch of every socket
    let rooms = nodes[1].io.of("/").all_rooms().await.unwrap();
    let got: BTreeSet<&str> = rooms.iter().map(|r| r.as_str()).collect();
    let mut want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    want.extend(["a", "b"]);
    assert_eq!(got, want);

    // remote join from A: members of `a` on every node join `x`
    nodes[0].io.of("/").to("a").sockets_join(["x"]).await.unwrap();
    for (k, n) in nodes.iter().enumerate() {
        n.wait_rooms("/", &ids[2 * k], &["a", "x"]).await;
        assert_eq!(n.rooms_of("/", &ids[2 * k + 1]).unwrap(), vec!["b"]);
    }
    broker.wait_shardnumsub("socket.io#/#x#", 3).await;
    // A applied its own join locally, not again when its message came back: a local
    // leave right after stays
    nodes[0].io.of("/").local().sockets_leave(["x"]).await.unwrap();
    nodes[0].io.of("/").emit("fence-1", &1).unwrap();
    clients.expect_exactly("fence-1", &[0, 1, 2, 3, 4, 5], QUIET).await;
    assert_eq!(nodes[0].rooms_of("/", &ids[0]).unwrap(), vec!["a"]);
    nodes[1].io.of("/").to("x").emit("to-x", &1).unwrap();
    clients.expect_exactly("to-x", &[2, 4], QUIET).await;

    // remote leave from C
    nodes[2].io.of("/").sockets_leave(["x", "a"]).await.unwrap();
    for (k, n) in nodes.iter().enumerate() {
        n.wait_rooms("/", &ids[2 * k], &[]).await;
    }
    broker.wait_shard_channels("socket.io#/#x#", &[]).await;
    broker.wait_shard_channels("socket.io#/#a#", &[]).await;

    // remote disconnect from B: the `b` sockets of every node, each once
    nodes[1].io.of("/").to("b").disconnect_sockets(false).await.unwrap();
    for i in [1, 3, 5] {
        assert_eq!(clients.disconnected(i).await, "io server disconnect");
    }
    clients.no_more_disconnections(Duration::from_millis(300)).await;
    for (k, n) in nodes.iter().enumerate() {
        wait_until("the b socket is gone", || n.rooms_of("/", &ids[2 * k + 1]).is_none()).await;
        assert!(n.rooms_of("/", &ids[2 * k]).is_some());
    }
    broker.wait_shard_channels("socket.io#/#b#", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn room_broadcast_skips_nodes_without_members() {
    let broker = Broker::single().await;
    let url = broker.shoal_url();
    let a = ShoalNode::start("A", &url, SubscriptionMode::Dynamic, &[]).await;
    let b = ShoalNode::start("B", &url, SubscriptionMode::Dynamic, &[]).await;
    let c = ShoalNode::start("C", &url, SubscriptionMode::Dynamic, &[]).await;
    for n in [&a, &b, &c] {
        n.wait_server_count("/", 3).await;
    }
    let mut clients = Clients::start().await;
    clients.connect(&a.url(), "/", &[json!({"rooms": ["lonely"]})]).await;
    clients.connect(&b.url(), "/", &[json!({})]).await;
    clients.connect(&c.url(), "/", &[json!({})]).await;
    broker.wait_shardnumsub("socket.io#/#lonely#", 1).await;
    // main + 3 response channels + the room; no socket-id channel in `dynamic`
    let channels = broker.shard_channels("socket.io#/#*").await;
    assert_eq!(channels.len(), 5, "{channels:?}");
    assert!(channels.contains(&"socket.io#/#lonely#".to_owned()));
    assert!(!clients.ids.iter().any(|id| channels.contains(&format!("socket.io#/#{id}#"))), "{channels:?}");

    let (b0, c0) = (b.received(), c.received());
    b.io.of("/").to("lonely").emit("hi", &1).unwrap();
    clients.expect_exactly("hi", &[0], QUIET).await;
    // the fence, on the main channel after the room message, from the same publisher
    b.io.of("/").emit("fence", &1).unwrap();
    clients.expect_exactly("fence", &[0, 1, 2], QUIET).await;
    wait_until("C got the fence", || c.received() > c0).await;
    wait_until("B got its fence back", || b.received() > b0).await;
    assert_eq!(c.received() - c0, 1, "C must not receive the room broadcast");
    assert_eq!(b.received() - b0, 1, "B must not receive the room broadcast");

    // a broadcast with ack to that room goes to the main channel (every node counts)
    let r = c.io.of("/").to("lonely").timeout(T).emit_with_ack("ack", &1).await.unwrap();
    assert_eq!(r.len(), 1);

    // the last member leaves: the channel goes
    clients.p.call(json!({"cmd": "disconnect", "index": 0})).await;
    broker.wait_shard_channels("socket.io#/#lonely#", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_and_dynamic_private_channels() {
    let broker = Broker::single().await;
    let url = broker.shoal_url();
    // static: 2 channels per namespace and node, room broadcasts on the main channel
    let s1 = ShoalNode::start("S1", &url, SubscriptionMode::Static, &["/st"]).await;
    let s2 = ShoalNode::start("S2", &url, SubscriptionMode::Static, &["/st"]).await;
    s1.wait_server_count("/st", 2).await;
    s2.wait_server_count("/st", 2).await;
    let mut clients = Clients::start().await;
    clients.connect(&s1.url(), "/st", &[json!({"rooms": ["r"]})]).await;
    s2.io.of("/st").to("r").emit("st", &1).unwrap();
    clients.expect_exactly("st", &[0], QUIET).await;
    let ch = broker.shard_channels("socket.io#/st#*").await;
    assert_eq!(ch.len(), 3, "{ch:?}");
    assert!(!ch.contains(&"socket.io#/st#r#".to_owned()));

    // dynamic-private: public rooms get channels too, socket ids reach through main
    let p1 = ShoalNode::start("P1", &url, SubscriptionMode::DynamicPrivate, &["/pr"]).await;
    let p2 = ShoalNode::start("P2", &url, SubscriptionMode::DynamicPrivate, &["/pr"]).await;
    p1.wait_server_count("/pr", 2).await;
    p2.wait_server_count("/pr", 2).await;
    let i = clients.connect(&p1.url(), "/pr", &[json!({"rooms": ["pub"]})]).await[0];
    broker.wait_shardnumsub("socket.io#/pr#pub#", 1).await;
    p2.io.of("/pr").to("pub").emit("pr", &1).unwrap();
    clients.expect_exactly("pr", &[i], QUIET).await;
    p2.io.of("/pr").to(clients.id(i)).emit("pr-sid", &1).unwrap();
    clients.expect_exactly("pr-sid", &[i], QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespaces_do_not_leak_subscriptions() {
    let broker = Broker::single().await;
    let url = broker.shoal_url();
    let config = shoal_redis::RedisAdapterConfig::new(&url).mode(shoal_redis::RedisMode::sharded());
    let a = ShoalNode::start_with("A", config.clone(), &[], |b| b.cleanup_empty_child_namespaces(true)).await;
    let b = ShoalNode::start_with("B", config, &[], |b| b).await;
    a.io.of_dynamic(NamespaceMatcher::Pattern("/tenant-*".into())).on_connect(on_connect);
    a.wait_server_count("/", 2).await;
    let mut clients = Clients::start().await;

    for round in 0..3 {
        let nsp = format!("/tenant-{round}");
        let pattern = format!("socket.io#{nsp}#*");
        let i = clients.connect(&a.url(), &nsp, &[json!({"rooms": ["r"]})]).await[0];
        broker.wait_shardnumsub(&format!("socket.io#{nsp}#r#"), 1).await;
        // the namespace's own channels are subscribed concurrently with the room's: wait
        // for them too, then there must be exactly these three
        let deadline = tokio::time::Instant::now() + T;
        let ch = loop {
            let ch = broker.shard_channels(&pattern).await;
            if ch.len() >= 3 || tokio::time::Instant::now() >= deadline {
                break ch;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(ch.len(), 3, "main, response and room channels: {ch:?}");
        // another node reaches it through the room channel
        b.io.of(&nsp).to("r").emit("t", &round).unwrap();
        clients.expect_exactly("t", &[i], QUIET).await;
        broker.wait_shardnumsub(&format!("socket.io#{nsp}#"), 2).await;
        // the child namespace goes with its last socket, and so do its channels: B's
        // main and response channels are left
        clients.p.call(json!({"cmd": "disconnect", "index": i})).await;
        broker.wait_shardnumsub(&format!("socket.io#{nsp}#"), 1).await;
        let main = format!("socket.io#{nsp}#");
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let left = broker.shard_channels(&pattern).await;
            if left.len() == 2 && left.contains(&main) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "channels left of {nsp}: {left:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // dropped and re-created at once: the old adapter's close does not take the new
    // adapter's channels
    let nsp = "/tenant-again";
    let i = clients.connect(&a.url(), nsp, &[json!({"rooms": ["r"]})]).await[0];
    clients.p.call(json!({"cmd": "disconnect", "index": i})).await;
    let j = clients.connect(&a.url(), nsp, &[json!({"rooms": ["r"]})]).await[0];
    broker.wait_shardnumsub(&format!("socket.io#{nsp}#r#"), 1).await;
    b.io.of(nsp).to("r").emit("again", &1).unwrap();
    clients.expect_exactly("again", &[j], QUIET).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(broker.shardnumsub(&format!("socket.io#{nsp}#")).await, 2);
    assert_eq!(broker.shardnumsub(&format!("socket.io#{nsp}#r#")).await, 1);

    // closing the servers removes everything
    a.io.close_with_timeout(Duration::from_secs(2)).await;
    b.io.close_with_timeout(Duration::from_secs(2)).await;
    broker.wait_shard_channels("*", &[]).await;
}
