//! Membership over a real redis-server: announcers seen by a watcher, a node that stops
//! heartbeating expires, one that leaves is dropped at once, a node started later appears,
//! load and draining changes propagate, the watcher survives a Redis restart, and on a
//! Redis Cluster the watcher finds the nodes whose keys are on every master.
//!
//! Needs `redis-server` (`scripts/deps`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shoal_core::NodeId;
use shoal_redis::RedisConnection;
use shoal_redis::membership::{Announcer, LocalNode, Membership, MembershipConfig, NodeInfo, NodeStatus, StatusFn};
use shoal_testkit::{RedisCluster, RedisServer};

fn id(s: &str) -> NodeId {
    s.parse().unwrap()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A status whose load and draining flag the test changes.
#[derive(Default)]
struct Status {
    load: AtomicU64,
    draining: AtomicBool,
}

impl Status {
    fn func(self: &Arc<Self>) -> StatusFn {
        let s = self.clone();
        Arc::new(move || NodeStatus {
            load: s.load.load(Ordering::Relaxed),
            draining: s.draining.load(Ordering::Relaxed),
        })
    }
}

/// Waits until `pred` holds for the watcher's list, at most `timeout`; returns how long it took.
async fn until(m: &Membership, timeout: Duration, what: &str, pred: impl Fn(&[NodeInfo]) -> bool) -> Duration {
    let start = Instant::now();
    let mut rx = m.subscribe();
    loop {
        if pred(&rx.borrow_and_update()) {
            return start.elapsed();
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            panic!("{what}: not within {timeout:?}; nodes: {:?}", m.nodes());
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.changed()).await;
    }
}

fn has(nodes: &[NodeInfo], s: &str) -> bool {
    nodes.iter().any(|n| n.id == id(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcers_join_update_expire_and_leave() {
    let redis = RedisServer::start().await;
    let conn = RedisConnection::new(redis.url());
    let config = MembershipConfig::default().prefix("test");

    let sa = Arc::new(Status::default());
    let sb = Arc::new(Status::default());
    let a = Announcer::start(&conn, config.clone(), LocalNode::new(id("nodA"), addr(4001)), sa.func()).await.unwrap();
    let b = Announcer::start(&conn, config.clone(), LocalNode::new(id("nodB"), addr(4002)), sb.func()).await.unwrap();

    // the key layout and its expiry
    let ttl = redis.cmd(&["PTTL", "test:node:nodA"]).await.unwrap();
    let ttl = ttl.as_int().unwrap_or(-1);
    assert!(ttl > 0 && ttl <= 6000, "PTTL {ttl}");

    // a watcher started after them finds both (scan)
    let watcher = Membership::connect(&conn, config.clone()).await.unwrap();
    until(&watcher, Duration::from_secs(10), "A and B seen", |n| has(n, "nodA") && has(n, "nodB")).await;
    assert_eq!(watcher.address(id("nodA")), Some(addr(4001)));
    assert_eq!(watcher.get(id("nodB")).unwrap().addr, addr(4002));
    assert_eq!(watcher.address(id("zzzz")), None);

    // a node started later appears without restarting the watcher
    let sc = Arc::new(Status::default());
    let c = Announcer::start(&conn, config.clone(), LocalNode::new(id("nodC"), addr(4003)), sc.func()).await.unwrap();
    until(&watcher, Duration::from_secs(5), "C seen", |n| has(n, "nodC")).await;

    // load and draining propagate (at the next announcement, or at once when asked)
    sa.load.store(42, Ordering::Relaxed);
    sa.draining.store(true, Ordering::Relaxed);
    a.announce_now();
    until(&watcher, Duration::from_secs(5), "A's load and draining", |n| {
        n.iter().any(|x| x.id == id("nodA") && x.load == 42 && x.draining)
    })
    .await;
    sb.load.store(7, Ordering::Relaxed);
    until(&watcher, Duration::from_secs(6), "B's load at its next tick", |n| {
        n.iter().any(|x| x.id == id("nodB") && x.load == 7)
    })
    .await;

    // leave(): gone at once (well before the expiry)
    c.leave().await;
    let took = until(&watcher, Duration::from_secs(3), "C gone after leave", |n| !has(n, "nodC")).await;
    assert!(took < Duration::from_secs(3));
    assert_eq!(redis.cmd(&["EXISTS", "test:node:nodC"]).await.unwrap().as_int(), Some(0));

    // B stops heartbeating (dropped without leave): gone within the expiry (+ margin)
    let stopped = Instant::now();
    drop(b);
    until(&watcher, Duration::from_secs(10), "B expired", |n| !has(n, "nodB")).await;
    let took = stopped.elapsed();
    assert!(took >= Duration::from_secs(3), "B dropped too early ({took:?}): it announced within the last 2 s");
    assert!(took <= Duration::from_secs(9), "B dropped after {took:?}");
    // A is still there
    assert!(has(&watcher.nodes(), "nodA"));
    a.leave().await;
    until(&watcher, Duration::from_secs(3), "A gone", |n| n.is_empty()).await;
    watcher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_survives_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let conn = RedisConnection::new(redis.url());
    let config = MembershipConfig::default();

    let watcher = Membership::connect(&conn, config.clone()).await.unwrap();
    let status = Arc::new(Status::default());
    let me = watcher.announce(LocalNode::new(id("self"), addr(5000)), status.func()).await;
    until(&watcher, Duration::from_secs(5), "itself", |n| has(n, "self")).await;
    assert_eq!(redis.cmd(&["EXISTS", "socket.io:node:self"]).await.unwrap().as_int(), Some(1));

    redis.kill();
    redis.restart().await;
    // a node announcing on the restarted Redis is found again (subscription restored)
    let s2 = Arc::new(Status::default());
    let other =
        Announcer::start(&conn, config.clone(), LocalNode::new(id("othr"), addr(5001)), s2.func()).await.unwrap();
    until(&watcher, Duration::from_secs(20), "both after the restart", |n| has(n, "self") && has(n, "othr")).await;
    // and the own announcer writes its key again
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.cmd(&["EXISTS", "socket.io:node:self"]).await.unwrap().as_int() != Some(1) {
        assert!(Instant::now() < deadline, "own key not written again after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    other.leave().await;
    me.leave().await;
    until(&watcher, Duration::from_secs(3), "both gone", |n| n.is_empty()).await;
    watcher.close().await;
}

/// On a 3-master Redis Cluster the nodes' keys land on different masters: a watcher started
/// after the announcers finds every one (a SCAN on each master), a node started later
/// appears (PUBLISH reaches subscribers on every master), and one that leaves is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3).await;
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    let url = format!("redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}", ports[0], ports[1], ports[2]);
    let conn = RedisConnection::new(url);
    // announcements far apart, so that what the watcher knows at once comes from its scan
    let config =
        MembershipConfig::default().prefix("cl").interval(Duration::from_secs(30)).expiry(Duration::from_secs(90));

    // enough nodes that their keys spread over the three masters (checked below)
    let names: Vec<String> = (0..12).map(|i| format!("n{i:03}")).collect();
    let mut announcers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let s = Arc::new(Status::default());
        let a = Announcer::start(&conn, config.clone(), LocalNode::new(id(name), addr(6000 + i as u16)), s.func())
            .await
            .unwrap();
        announcers.push(a);
    }
    let mut masters_used = std::collections::HashSet::new();
    for name in &names {
        masters_used.insert(cluster.node_for_key(&format!("cl:node:{name}")).await.port());
    }
    assert_eq!(masters_used.len(), 3, "the keys are on every master");

    let watcher = Membership::connect(&conn, config.clone()).await.unwrap();
    let known = watcher.nodes();
    let missing: Vec<&String> = names.iter().filter(|s| !has(&known, s)).collect();
    assert!(missing.is_empty(), "not found by the scan of every master: {missing:?}");
    assert_eq!(watcher.address(id("n011")), Some(addr(6011)));

    let s = Arc::new(Status::default());
    let late = Announcer::start(&conn, config.clone(), LocalNode::new(id("late"), addr(6100)), s.func()).await.unwrap();
    until(&watcher, Duration::from_secs(5), "the later node", |n| has(n, "late")).await;

    late.leave().await;
    until(&watcher, Duration::from_secs(3), "the later node gone after leave", |n| !has(n, "late")).await;
    for a in &announcers {
        a.leave().await;
    }
    until(&watcher, Duration::from_secs(3), "all gone", |n| n.is_empty()).await;
    watcher.close().await;
}
