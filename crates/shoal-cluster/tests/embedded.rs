//! Three Shoal servers in one process sharing one embedded broker through
//! `EmbeddedDriver` and the classic Redis adapter, with official socket.io clients on
//! each: broadcasts (all, rooms, except), fetch sockets, server count, acknowledgements
//! and server-side events work across servers; a broker connection that drops is
//! restored with its subscriptions; a slow subscriber is disconnected, not buffered
//! without bound.
//!
//! Needs `npm ci --prefix tests/js-redis`.

#[path = "../../shoal-redis/tests/classic_support.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use shoal::SocketIo;
use shoal_cluster::{Broker, BrokerConfig, EmbeddedDriver, EmbeddedDriverConfig};
use shoal_redis::driver::Driver;
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory};
use support::{Clients, ServerEvents, ShoalNode, once, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server whose adapter runs over the embedded broker at `broker`.
async fn node(name: &str, broker: SocketAddr) -> (ShoalNode, Arc<EmbeddedDriver>) {
    let driver = EmbeddedDriver::connect(broker, EmbeddedDriverConfig::default()).await.expect("connect to the broker");
    let factory = RedisAdapterFactory::with_driver(RedisAdapterConfig::new("embedded://"), driver.clone());
    let io = SocketIo::builder().adapter(factory.clone()).build().expect("valid settings");
    let n = ShoalNode {
        name: name.to_owned(),
        io,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        factory,
        events: ServerEvents::default(),
        silent: Arc::new(AtomicBool::new(false)),
    };
    n.setup_ns("/");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io = n.io.clone();
    tokio::spawn(async move { shoal::serve(listener, io, std::future::pending()).await });
    (ShoalNode { addr, ..n }, driver)
}

struct Three {
    broker: Option<Broker>,
    n: Vec<ShoalNode>,
    drivers: Vec<Arc<EmbeddedDriver>>,
    c: Clients,
}

/// Clients 0, 1 on A; 2, 3 on B; 4, 5 on C.
async fn three() -> Three {
    let broker = Broker::bind("127.0.0.1:0".parse().unwrap(), BrokerConfig::default()).await.expect("broker");
    let mut n = Vec::new();
    let mut drivers = Vec::new();
    for name in ["A", "B", "C"] {
        let (node, driver) = node(name, broker.local_addr()).await;
        n.push(node);
        drivers.push(driver);
    }
    let refs: Vec<&ShoalNode> = n.iter().collect();
    support::wait_server_counts(&refs, "/", 3).await;
    let mut c = Clients::start().await;
    let auths = [
        json!({"rooms": ["r1"], "data": {"user": "a0"}}),
        json!({"rooms": ["x"]}),
        json!({"rooms": ["r1", "x"], "data": {"user": "b0"}}),
        json!({}),
        json!({"rooms": ["r1"], "data": {"user": "c0"}}),
        json!({"rooms": ["x"]}),
    ];
    for (k, node) in n.iter().enumerate() {
        c.connect(&node.url(), "/", &auths[2 * k..2 * k + 2]).await;
    }
    for node in &n {
        wait_until("clients connected", || node.io.of("/").socket_count() == 2).await;
    }
    Three { broker: Some(broker), n, drivers, c }
}

const ALL: [usize; 6] = [0, 1, 2, 3, 4, 5];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_rooms_and_except_reach_every_server_once() {
    let mut s = three().await;
    for (k, node) in s.n.iter().enumerate() {
        node.io.emit(&format!("all-{k}"), &k).unwrap();
    }
    s.n[1].io.to("r1").emit("room", &"r1").unwrap();
    s.n[2].io.of("/").except("x").emit("except", &"x").unwrap();
    let bin = shoal::Args {
        values: vec![json!("text"), json!({"_placeholder": true, "num": 0})],
        attachments: vec![Bytes::from_static(&[0, 1, 2, 255])],
    };
    s.n[0].io.of("/").emit_args("bin", bin).unwrap();
    // a fence from each server: once every client has the three, everything before
    // has been delivered (the broker keeps each publisher's order)
    for node in &s.n {
        node.io.emit("fence", &node.name).unwrap();
    }
    for i in ALL {
        for _ in 0..3 {
            s.c.received("fence", i).await;
        }
    }
    for k in 0..3 {
        assert_eq!(s.c.take_counts(&format!("all-{k}")), once(&ALL), "broadcast to all from server {k}");
    }
    assert_eq!(s.c.take_counts("room"), once(&[0, 2, 4]), "to(r1)");
    assert_eq!(s.c.take_counts("except"), once(&[0, 3, 4]), "except(x)");
    let bins = s.c.p.take_matching(|v| v["event"] == "received" && v["name"] == "bin");
    assert_eq!(bins.len(), 6, "binary broadcast: {bins:?}");
    for b in &bins {
        assert_eq!(b["args"], json!(["text", {"$bin": "AAEC/w=="}]), "binary arguments arrive as binary");
    }
    assert!(s.broker.as_ref().unwrap().stats().published.load(Ordering::Relaxed) >= 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_server_count_acks_and_server_side_events() {
    let mut s = three().await;
    for node in &s.n {
        assert_eq!(node.io.of("/").server_count().await.unwrap(), 3);
    }
    // fetch sockets from C sees every server's sockets, with their rooms and data
    let sockets = s.n[2].io.of("/").fetch_sockets().await.expect("fetch sockets");
    let mut ids: Vec<String> = sockets.iter().map(|x| x.id.clone()).collect();
    let mut expected = s.c.ids.clone();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
    let b0 = sockets.iter().find(|x| x.id == s.c.ids[2]).expect("client 2");
    assert_eq!(b0.data, json!({"user": "b0"}));
    assert!(b0.rooms.iter().any(|r| r.as_str() == "r1") && b0.rooms.iter().any(|r| r.as_str() == "x"));
    // in a room only
    let in_r1 = s.n[0].io.of("/").to("r1").fetch_sockets().await.unwrap();
    assert_eq!(in_r1.len(), 3);

    // a broadcast with acks from A collects every client's answer (its index)
    let acks =
        s.n[0].io.of("/").timeout(Duration::from_secs(5)).emit_with_ack("ask", &1).await.expect("every client answers");
    let mut answers: Vec<Value> = acks.iter().map(|a| a.args.values[0].clone()).collect();
    answers.sort_by_key(|v| v.as_u64());
    assert_eq!(answers, (0..6).map(|i| json!(i)).collect::<Vec<_>>());

    // server-side events reach the other servers, and their acks come back
    s.n[1].io.of("/").server_side_emit("sse", &"hello").unwrap();
    for k in [0, 2] {
        let got = s.n[k].events.wait("/", "sse", 1).await;
        assert_eq!(got[0].args, [json!("hello")]);
    }
    assert!(s.n[1].events.named("/", "sse").is_empty(), "not to itself");
    let answers = s.n[0]
        .io
        .of("/")
        .server_side_emit_with_ack("sse-ack", &1, Duration::from_secs(5))
        .await
        .expect("server-side acks");
    let mut names: Vec<Value> = answers.iter().map(|a| a.args.values[0].clone()).collect();
    names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(names, [json!("B"), json!("C")]);

    // remote join: every socket joins "all" through C; a broadcast to it from A
    s.n[2].io.of("/").sockets_join(["all"]).await.unwrap();
    wait_until("remote join applied", || {
        s.n.iter().all(|n| n.io.of("/").sockets().iter().all(|x| x.rooms().iter().any(|r| r.as_str() == "all")))
    })
    .await;
    s.n[0].io.to("all").emit("joined", &1).unwrap();
    s.c.all_received("joined", &ALL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_restored_after_the_broker_connection_drops() {
    let mut s = three().await;
    // stop the broker: every driver loses its connection
    let old = s.broker.take().unwrap();
    let addr = old.local_addr();
    old.shutdown().await;
    wait_until("drivers disconnected", || s.drivers.iter().all(|d| !d.is_connected())).await;
    // a broker on the same port: the drivers reconnect and subscribe again
    s.broker = Some(Broker::bind(addr, BrokerConfig::default()).await.expect("bind the same port again"));
    wait_until("drivers reconnected", || s.drivers.iter().all(|d| d.is_connected())).await;
    assert!(s.drivers.iter().all(|d| d.stats().reconnects.load(Ordering::Relaxed) >= 1));
    // every subscription is back: a broadcast from each server reaches every client
    let refs: Vec<&ShoalNode> = s.n.iter().collect();
    support::wait_server_counts(&refs, "/", 3).await;
    for node in &s.n {
        node.io.emit("after", &node.name).unwrap();
    }
    for i in ALL {
        for _ in 0..3 {
            s.c.received("after", i).await;
        }
    }
    // (each wait took one): nothing more, so no message was delivered twice
    assert!(s.c.take_counts("after").is_empty(), "duplicates after the reconnection");
}

/// Reads raw frames from the broker: a subscriber that never reads is disconnected
/// once its queue passes the limit, and the broker keeps serving the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_disconnected_and_others_keep_receiving() {
    use shoal_cluster::frame::{Frame, SubKind, decode};
    let broker = Broker::bind(
        "127.0.0.1:0".parse().unwrap(),
        BrokerConfig::default().max_queued_bytes(256 * 1024).max_queued_messages(1_000_000),
    )
    .await
    .unwrap();
    // the slow one subscribes, then never reads
    let mut slow = tokio::net::TcpStream::connect(broker.local_addr()).await.unwrap();
    let sub = Frame::Subscribe { id: 1, kind: SubKind::Pattern, name: "c*".into() }.to_bytes();
    slow.write_all(&sub).await.unwrap();
    // a healthy driver subscribes too and counts what it receives
    let good = EmbeddedDriver::connect(broker.local_addr(), EmbeddedDriverConfig::default()).await.unwrap();
    let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let g = got.clone();
    good.set_router(Arc::new(move |_c: &str, _p: Bytes| {
        g.fetch_add(1, Ordering::Relaxed);
    }));
    good.subscribe(vec![shoal_redis::Subscription::Channel("chan".into())]).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    // read the slow one's subscribe reply, then stop reading
    while decode(&mut buf, 1 << 20).unwrap().is_none() {
        slow.read_buf(&mut buf).await.unwrap();
    }
    let payload = Bytes::from(vec![7u8; 16 * 1024]);
    let publisher = EmbeddedDriver::connect(broker.local_addr(), EmbeddedDriverConfig::default()).await.unwrap();
    let mut sent = 0;
    while broker.stats().slow_disconnects.load(Ordering::Relaxed) == 0 {
        publisher.publish_wait("chan".into(), payload.clone(), false).await.expect("publish");
        sent += 1;
        assert!(sent < 100_000, "the slow subscriber was never disconnected");
    }
    // the good subscriber got everything, and more still flows
    publisher.publish_wait("chan".into(), payload.clone(), false).await.unwrap();
    sent += 1;
    wait_until("the good subscriber got every message", || got.load(Ordering::Relaxed) == sent).await;
    // the slow connection is closed: reading drains what was written, then ends
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            match slow.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the slow subscriber's connection was closed");
}

/// Garbage on a broker connection closes that connection only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_the_connection_and_the_broker_keeps_serving() {
    let broker = Broker::bind("127.0.0.1:0".parse().unwrap(), BrokerConfig::default().max_frame(1024)).await.unwrap();
    for garbage in [&b"\xff\xff\xff\xffjunk"[..], b"\x00\x00\x00\x01\x63", b"\x00\x00\x00\x02\x01\x00"] {
        let mut s = tokio::net::TcpStream::connect(broker.local_addr()).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let mut rest = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "closed after {garbage:?}");
    }
    wait_until("protocol errors counted", || broker.stats().protocol_errors.load(Ordering::Relaxed) == 3).await;
    let d = EmbeddedDriver::connect(broker.local_addr(), EmbeddedDriverConfig::default()).await.unwrap();
    d.subscribe(vec![shoal_redis::Subscription::Channel("c".into())]).await.unwrap();
    assert_eq!(d.num_sub("c".into(), false).await.unwrap(), 1);
}

/// With a token, a connection that does not open with it is closed; a driver that has
/// it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_with_a_token_refuses_connections_without_it() {
    use shoal_cluster::AuthToken;
    use shoal_cluster::frame::{Frame, SubKind};
    let token = AuthToken::random();
    let broker = Broker::bind("127.0.0.1:0".parse().unwrap(), BrokerConfig::default().auth_token(Some(token.clone())))
        .await
        .unwrap();
    let refused =
        [Frame::Subscribe { id: 1, kind: SubKind::Channel, name: "c".into() }, Frame::Hello { token: "wrong".into() }];
    for first in refused {
        let mut s = tokio::net::TcpStream::connect(broker.local_addr()).await.unwrap();
        s.write_all(&first.to_bytes()).await.unwrap();
        let mut rest = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "closed after {first:?}");
        assert!(rest.is_empty(), "no answer before the token: {rest:?}");
    }
    // a driver without the token: its requests fail (the connection is closed)
    let stranger = EmbeddedDriver::connect(broker.local_addr(), EmbeddedDriverConfig::default()).await.unwrap();
    assert!(stranger.num_sub("c".into(), false).await.is_err());
    // with it: everything works
    let config = EmbeddedDriverConfig { auth_token: Some(token), ..EmbeddedDriverConfig::default() };
    let d = EmbeddedDriver::connect(broker.local_addr(), config).await.unwrap();
    d.subscribe(vec![shoal_redis::Subscription::Channel("c".into())]).await.unwrap();
    assert_eq!(d.num_sub("c".into(), false).await.unwrap(), 1);
    assert!(broker.stats().protocol_errors.load(Ordering::Relaxed) >= 3);
}

/// Past `max_connections`, new connections are closed at once; the others keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused() {
    let broker =
        Broker::bind("127.0.0.1:0".parse().unwrap(), BrokerConfig::default().max_connections(2)).await.unwrap();
    let a = EmbeddedDriver::connect(broker.local_addr(), EmbeddedDriverConfig::default()).await.unwrap();
    let b = EmbeddedDriver::connect(broker.local_addr(), EmbeddedDriverConfig::default()).await.unwrap();
    a.subscribe(vec![shoal_redis::Subscription::Channel("c".into())]).await.unwrap();
    b.subscribe(vec![shoal_redis::Subscription::Channel("c".into())]).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(broker.local_addr()).await.unwrap();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), third.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "the third connection is closed");
    assert_eq!(a.num_sub("c".into(), false).await.unwrap(), 2);
}
