//! Namespaces created at run time subscribe their channels, and removed ones unsubscribe:
//! `io.of("/late")` after the server started, children of a dynamic namespace
//! (`of_dynamic`) created by a client's CONNECT and removed when their last socket leaves
//! (`cleanup_empty_child_namespaces(true)`). What Redis reports (`PUBSUB NUMSUB`,
//! `PUBSUB CHANNELS`, `PUBSUB NUMPAT`, the `sub`/`psub` counts of `CLIENT LIST`) must come
//! back to where it started after 50 create/remove cycles.
//!
//! Needs `redis-server` (`scripts/deps`).

#[path = "classic_support.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use shoal::{Args, NamespaceMatcher, Socket};
use shoal_bench::conn::WsClient;
use shoal_core::{BroadcastOptions, Packet};
use shoal_redis::RedisAdapterConfig;
use shoal_testkit::RedisServer;
use support::{ShoalNode, T};

/// A raw WebSocket client connected to namespace `nsp`.
async fn connect_nsp(addr: SocketAddr, nsp: &str, seed: u64) -> WsClient {
    let stream = shoal_bench::conn::tcp_connect(addr, None).await.unwrap();
    let mut c =
        WsClient::handshake(stream, &addr.to_string(), "/socket.io/?EIO=4&transport=websocket", seed).await.unwrap();
    let open = c.next_text().await.unwrap();
    assert!(open.starts_with(b"0{"), "{open:?}");
    c.queue_text(format!("40{nsp},").as_bytes());
    c.flush().await.unwrap();
    let ok = tokio::time::timeout(T, c.next_text()).await.unwrap().unwrap();
    assert!(ok.starts_with(format!("40{nsp},{{").as_bytes()), "{}", String::from_utf8_lossy(&ok));
    c
}

/// What Redis says about the subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subs {
    /// Every classic channel with a subscriber, sorted.
    channels: Vec<String>,
    /// Unique patterns.
    numpat: i64,
    /// `(sub, psub)` summed over every connection.
    counts: (u64, u64),
}

async fn subs(redis: &RedisServer) -> Subs {
    let list = redis.cmd(&["CLIENT", "LIST"]).await.unwrap();
    let mut counts = (0, 0);
    for line in list.as_str().unwrap().lines() {
        let field = |k: &str| -> u64 {
            line.split(' ').find_map(|f| f.strip_prefix(k)).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        counts.0 += field("sub=");
        counts.1 += field("psub=");
    }
    Subs { channels: redis.channels("*").await, numpat: redis.numpat().await, counts }
}

/// Waits until `cond` holds for what Redis reports (at most [`T`]).
async fn wait_subs(redis: &RedisServer, what: &str, cond: impl Fn(&Subs) -> bool) -> Subs {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let s = subs(redis).await;
        if cond(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {T:?}; Redis reports {s:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn channels_of(s: &Subs, nsp: &str) -> Vec<String> {
    let tag = format!("#{nsp}#");
    s.channels.iter().filter(|c| c.contains(&tag)).cloned().collect()
}

/// The channels of a namespace with one node: request, response and the node's own
/// response channel.
fn subscribed(s: &Subs, nsp: &str) -> bool {
    let ch = channels_of(s, nsp);
    ch.len() == 3
        && ch.contains(&format!("socket.io-request#{nsp}#"))
        && ch.contains(&format!("socket.io-response#{nsp}#"))
}

/// A broadcast published straight to Redis, as another node would.
async fn publish_broadcast(redis: &RedisServer, nsp: &str, event: &str) -> i64 {
    let packet = Packet::event(nsp.to_owned(), Args::from_values(vec![json!(event), json!(1)]), None);
    let bytes = shoal_redis::wire::encode_classic_broadcast("other", &packet, &BroadcastOptions::default());
    let channel = format!("socket.io#{nsp}#");
    redis.cmd(&[b"PUBLISH".as_slice(), channel.as_bytes(), &bytes]).await.unwrap().as_int().unwrap()
}

async fn dyn_node(redis: &RedisServer) -> ShoalNode {
    let node = ShoalNode::start_with("S", RedisAdapterConfig::new(redis.url()), &[], |b| {
        b.cleanup_empty_child_namespaces(true)
    })
    .await;
    node.io.of_dynamic(NamespaceMatcher::Pattern("/dyn-*".into())).on_connect(|_s: Socket| async move {});
    node.wait_server_count("/", 1).await;
    node
}

/// Waits for the event frame `42<nsp>,["<event>",…` on a raw client.
async fn wait_event(c: &mut WsClient, nsp: &str, event: &str) {
    let prefix = format!("42{nsp},[\"{event}\"");
    tokio::time::timeout(T, async {
        loop {
            let f = c.next_text().await.unwrap();
            if f.starts_with(prefix.as_bytes()) {
                return;
            }
            if &f[..] == b"2" {
                c.queue_text(b"3");
                c.flush().await.unwrap();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{prefix}… did not arrive within {T:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_namespaces_subscribe_and_unsubscribe() {
    let started = Instant::now();
    let redis = RedisServer::start().await;
    let node = dyn_node(&redis).await;
    let base = |s: &Subs| subscribed(s, "/") && (s.numpat, s.counts) == (1, (3, 1));
    wait_subs(&redis, "/ subscribed", base).await;

    // a static namespace created after the server started
    node.io.of("/late");
    wait_subs(&redis, "/late subscribed", |s| subscribed(s, "/late") && (s.numpat, s.counts) == (2, (6, 2))).await;
    assert_eq!(node.io.of("/late").server_count().await.unwrap(), 1);

    // a child of a dynamic namespace, created by a client's CONNECT
    let mut c = connect_nsp(node.addr, "/dyn-1", 1).await;
    wait_subs(&redis, "/dyn-1 subscribed", |s| subscribed(s, "/dyn-1") && (s.numpat, s.counts) == (3, (9, 3))).await;
    assert_eq!(redis.numsub("socket.io-request#/dyn-1#").await, 1);
    assert_eq!(publish_broadcast(&redis, "/dyn-1", "hello").await, 1, "S's pattern socket.io#/dyn-1#*");
    wait_event(&mut c, "/dyn-1", "hello").await;

    // the last socket leaves: the child is removed and its channels unsubscribed
    c.close().await;
    wait_subs(&redis, "/dyn-1 unsubscribed", |s| {
        channels_of(s, "/dyn-1").is_empty() && (s.numpat, s.counts) == (2, (6, 2))
    })
    .await;
    assert!(node.io.namespaces().iter().all(|n| n.name() != "/dyn-1"), "/dyn-1 removed");
    eprintln!("runtime_namespaces_subscribe_and_unsubscribe: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subscription_leak_after_50_sequential_cycles() {
    let started = Instant::now();
    let redis = RedisServer::start().await;
    let node = dyn_node(&redis).await;
    let base = wait_subs(&redis, "/ subscribed", |s| subscribed(s, "/") && s.counts == (3, 1)).await;
    for i in 0..50u64 {
        let nsp = format!("/dyn-{}", i % 3);
        let c = connect_nsp(node.addr, &nsp, i + 1).await;
        wait_subs(&redis, &format!("cycle {i}: {nsp} subscribed"), |s| {
            subscribed(s, &nsp) && (s.numpat, s.counts) == (2, (6, 2))
        })
        .await;
        c.close().await;
        wait_subs(&redis, &format!("cycle {i}: {nsp} unsubscribed"), |s| *s == base).await;
    }
    assert_eq!(subs(&redis).await, base);
    eprintln!("no_subscription_leak_after_50_sequential_cycles: {:?}", started.elapsed());
}

/// Creation and removal back to back, without waiting for Redis in between: the removal of
/// a child (its unsubscriptions) runs while it is still subscribing, and while the next
/// child of the same name subscribes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subscription_leak_after_50_rapid_cycles() {
    let started = Instant::now();
    let redis = RedisServer::start().await;
    let node = dyn_node(&redis).await;
    let base = wait_subs(&redis, "/ subscribed", |s| subscribed(s, "/") && s.counts == (3, 1)).await;
    for i in 0..50u64 {
        let c = connect_nsp(node.addr, "/dyn-same", i + 1).await;
        c.close().await;
    }
    // once everything settled: nothing of /dyn-same is left
    let settled = wait_subs(&redis, "back to the baseline after 50 rapid cycles", |s| *s == base).await;
    assert_eq!(settled, base);
    eprintln!("no_subscription_leak_after_50_rapid_cycles: {:?}", started.elapsed());
}

/// A child created right after rapid create/remove cycles of the same name must end up
/// subscribed exactly once, and stay so (a late removal of an earlier child must not take
/// the shared request/response channels and pattern away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_created_after_rapid_cycles_stays_subscribed() {
    let started = Instant::now();
    let redis = RedisServer::start().await;
    let node = dyn_node(&redis).await;
    wait_subs(&redis, "/ subscribed", |s| subscribed(s, "/") && s.counts == (3, 1)).await;
    let mut failures = Vec::new();
    for round in 0..10u64 {
        for i in 0..20u64 {
            let c = connect_nsp(node.addr, "/dyn-same", round * 100 + i + 1).await;
            c.close().await;
        }
        let mut c = connect_nsp(node.addr, "/dyn-same", round * 100 + 99).await;
        wait_connected_subscribed(&redis).await;
        // the removals of the earlier children are spawned tasks: give them every chance
        // to run (a Redis round trip per earlier child), then check the live child
        for _ in 0..40 {
            let _ = node.io.of("/").server_count().await;
        }
        let numsub = redis.numsub("socket.io-request#/dyn-same#").await;
        let numpat = redis.numpat().await;
        let delivered = publish_broadcast(&redis, "/dyn-same", "still-there").await;
        if (numsub, numpat, delivered) == (1, 2, 1) {
            wait_event(&mut c, "/dyn-same", "still-there").await;
        } else {
            failures.push((round, numsub, numpat, delivered, redis.channels("*").await));
        }
        c.close().await;
    }
    assert!(
        failures.is_empty(),
        "rounds where the live child lost its subscriptions (round, NUMSUB of its request channel, NUMPAT, \
         receivers of a broadcast, channels): {failures:#?}"
    );
    eprintln!("a_child_created_after_rapid_cycles_stays_subscribed: {:?}", started.elapsed());
}

/// Waits until /dyn-same's request channel and pattern are subscribed (the live child's
/// init ran).
async fn wait_connected_subscribed(redis: &RedisServer) {
    wait_subs(redis, "the last /dyn-same child subscribed", |s| {
        channels_of(s, "/dyn-same").iter().any(|c| c == "socket.io-request#/dyn-same#") && s.numpat == 2
    })
    .await;
}
