//! A mixed cluster on one Redis: two Shoal nodes (S1, S2) and one Node socket.io 4.8
//! server with `@socket.io/redis-adapter` 8.3 (`server.mjs --mode classic`), official
//! clients on each. Every operation works in both directions: broadcasts (all, rooms,
//! except, binary, volatile, local), broadcasts with acknowledgements, fetch sockets (with
//! Node's shapes), remote join/leave/disconnect, remote socket operations, server-side
//! emits with and without acknowledgements, all rooms and the server count.
//!
//! Needs `redis-server` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

#[path = "classic_support.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use shoal::{Args, BroadcastAckError};
use shoal_redis::RedisAdapterConfig;
use shoal_testkit::RedisServer;
use support::{Clients, NodeServer, ShoalNode, T, once, sorted, wait_until};

/// Clients: 0, 1 on S1; 2, 3 on S2; 4, 5 on the Node server.
fn auths() -> Vec<Value> {
    vec![
        json!({"rooms": ["r1"], "data": {"u": "s1-0"}}),
        json!({"rooms": ["r2"]}),
        json!({"rooms": ["r1", "r2"], "data": {"u": "s2-0", "n": [1, 2]}}),
        json!({}),
        json!({"rooms": ["r1"], "data": {"u": "n-0"}}),
        json!({"rooms": ["r2"]}),
    ]
}

const ALL: [usize; 6] = [0, 1, 2, 3, 4, 5];

struct Mixed {
    redis: RedisServer,
    s: Vec<ShoalNode>,
    n: NodeServer,
    c: Clients,
}

impl Mixed {
    fn id(&self, index: usize) -> String {
        self.c.ids[index].clone()
    }

    /// Every server broadcasts `fence`; once every client got the three, whatever any
    /// server broadcast before was delivered.
    async fn fence(&mut self) {
        for node in &self.s {
            node.io.emit("fence", &node.name).unwrap();
        }
        self.n.call(json!({"cmd": "broadcast", "event": "fence", "args": ["N"]})).await;
        for i in ALL {
            for _ in 0..3 {
                self.c.received("fence", i).await;
            }
        }
    }
}

async fn mixed() -> Mixed {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let config = || RedisAdapterConfig::new(&url).requests_timeout(Duration::from_secs(2));
    let mut s = Vec::new();
    for name in ["S1", "S2"] {
        s.push(ShoalNode::start_with(name, config(), &[], |b| b).await);
    }
    let n = NodeServer::start("N", &url, false, &["--requests-timeout", "1500"]).await;
    support::wait_server_counts(&[&s[0], &s[1]], "/", 3).await;
    let mut m = Mixed { redis, s, n, c: Clients::start().await };
    assert_eq!(m.n.call(json!({"cmd": "serverCount"})).await, json!(3));
    let auths = auths();
    let (u1, u2, un) = (m.s[0].url(), m.s[1].url(), m.n.url());
    m.c.connect(&u1, "/", &auths[0..2]).await;
    m.c.connect(&u2, "/", &auths[2..4]).await;
    m.c.connect(&un, "/", &auths[4..6]).await;
    for i in [4, 5] {
        let id = m.id(i);
        m.n.connection(&id).await;
    }
    for node in &m.s {
        wait_until("Shoal clients connected", || node.io.of("/").socket_count() == 2).await;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_both_ways() {
    let started = Instant::now();
    let mut m = mixed().await;
    let bin_args = json!(["t", {"$bin": "AAEC/w=="}, {"k": {"$bin": "aGVsbG8="}, "f": 0.5}]);

    // Node -> everyone
    m.n.call(json!({"cmd": "broadcast", "event": "n-all", "args": [1, "two", {"three": 3}]})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-room", "rooms": ["r1"]})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-rooms", "rooms": ["r1", "r2"]})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-except", "except": ["r1"]})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-room-except", "rooms": ["r2"], "except": ["r1"]})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-local", "local": true})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-bin", "args": bin_args})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-to-shoal-socket", "rooms": [m.id(3)]})).await;
    // Shoal -> everyone
    m.s[0].io.emit("s-all", &json!({"from": "S1"})).unwrap();
    m.s[0].io.to("r1").emit("s-room", &1).unwrap();
    m.s[1].io.of("/").to("r1").to("r2").emit("s-rooms", &2).unwrap();
    m.s[1].io.of("/").except("r2").emit("s-except", &3).unwrap();
    m.s[0].io.of("/").local().emit("s-local", &4).unwrap();
    let bin = Args {
        values: vec![
            json!("t"),
            json!({"_placeholder": true, "num": 0}),
            json!({"k": {"_placeholder": true, "num": 1}, "f": 0.5}),
        ],
        attachments: vec![Bytes::from_static(&[0, 1, 2, 255]), Bytes::from_static(b"hello")],
    };
    m.s[1].io.of("/").emit_args("s-bin", bin).unwrap();
    m.s[0].io.to(m.id(5)).emit("s-to-node-socket", &5).unwrap();
    m.fence().await;

    assert_eq!(m.c.take_counts("n-all"), once(&ALL), "Node broadcast to all");
    assert_eq!(m.c.take_counts("n-room"), once(&[0, 2, 4]));
    assert_eq!(m.c.take_counts("n-rooms"), once(&[0, 1, 2, 4, 5]));
    assert_eq!(m.c.take_counts("n-except"), once(&[1, 3, 5]));
    assert_eq!(m.c.take_counts("n-room-except"), once(&[1, 5]));
    assert_eq!(m.c.take_counts("n-local"), once(&[4, 5]));
    assert_eq!(m.c.take_counts("n-to-shoal-socket"), once(&[3]));
    assert_eq!(m.c.take_counts("s-all"), once(&ALL), "Shoal broadcast to all");
    assert_eq!(m.c.take_counts("s-room"), once(&[0, 2, 4]));
    assert_eq!(m.c.take_counts("s-rooms"), once(&[0, 1, 2, 4, 5]));
    assert_eq!(m.c.take_counts("s-except"), once(&[0, 3, 4]));
    assert_eq!(m.c.take_counts("s-local"), once(&[0, 1]));
    assert_eq!(m.c.take_counts("s-to-node-socket"), once(&[5]));
    for ev in ["n-bin", "s-bin"] {
        let got = m.c.p.take_matching(|v| v["event"] == "received" && v["name"] == ev);
        assert_eq!(got.len(), 6, "{ev}: {got:?}");
        for g in got {
            assert_eq!(g["args"], bin_args, "{ev} to client {}", g["index"]);
        }
    }
    // arguments of Node's broadcast as Shoal's clients see them
    m.n.call(json!({"cmd": "broadcast", "event": "n-args", "args": [1, "two", {"three": [3, null, true]}, 4.25]}))
        .await;
    for i in ALL {
        assert_eq!(m.c.received("n-args", i).await, json!([1, "two", {"three": [3, null, true]}, 4.25]));
    }

    // numeric rooms (JavaScript `io.to(123)`: MessagePack integers) reach Shoal's sockets of room "123"
    m.s[1].socket("/", &m.id(3)).unwrap().join("123");
    m.n.call(json!({"cmd": "broadcast", "event": "n-numeric", "rooms": [123]})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-numeric2", "rooms": [123, "r1"]})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "n-numeric-except", "except": [123]})).await;
    m.fence().await;
    assert_eq!(m.c.take_counts("n-numeric"), once(&[3]));
    assert_eq!(m.c.take_counts("n-numeric2"), once(&[0, 2, 3, 4]));
    assert_eq!(m.c.take_counts("n-numeric-except"), once(&[0, 1, 2, 4, 5]));

    // volatile both ways, once the queues are empty, each followed by a fence of its sender
    m.n.call(json!({"cmd": "broadcast", "event": "n-volatile", "volatile": true})).await;
    m.n.call(json!({"cmd": "broadcast", "event": "fence-n"})).await;
    m.c.all_received("fence-n", &ALL).await;
    m.s[0].io.of("/").volatile().emit("s-volatile", &0).unwrap();
    m.s[0].io.emit("fence-s", &0).unwrap();
    m.c.all_received("fence-s", &ALL).await;
    assert_eq!(m.c.take_counts("n-volatile"), once(&ALL));
    assert_eq!(m.c.take_counts("s-volatile"), once(&ALL));
    eprintln!("broadcasts_both_ways: {:?}", started.elapsed());
}

fn ack_values(r: &[shoal::AckResponse]) -> Vec<u64> {
    let mut v: Vec<u64> = r.iter().map(|a| a.args.values[0].as_u64().unwrap()).collect();
    v.sort_unstable();
    v
}

fn json_values(v: &Value) -> Vec<u64> {
    let mut out: Vec<u64> =
        v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_u64().unwrap()).collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_acks_both_ways() {
    let started = Instant::now();
    let mut m = mixed().await;

    // Node collects the answers of Shoal's clients
    let r = m.n.call(json!({"cmd": "broadcastWithAck", "event": "ask", "timeout": 5000})).await;
    assert_eq!(json_values(&r), vec![0, 1, 2, 3, 4, 5], "{r}");
    let r = m.n.call(json!({"cmd": "broadcastWithAck", "event": "ask", "rooms": ["r1"], "timeout": 5000})).await;
    assert_eq!(json_values(&r), vec![0, 2, 4], "{r}");
    // a binary answer from a Shoal client reaches Node as binary
    m.c.set_ack(Some(0), Some(json!({"$bin": "AAEC/w=="}))).await;
    let r = m.n.call(json!({"cmd": "broadcastWithAck", "event": "ask", "rooms": [m.id(0)], "timeout": 5000})).await;
    assert_eq!(r, json!([{"$bin": "AAEC/w=="}]));
    m.c.reset_ack(0).await;
    // a silent Shoal client: Node times out with the other answers
    m.c.set_ack(Some(3), None).await;
    let r = m.n.call(json!({"cmd": "broadcastWithAck", "event": "ask", "timeout": 1000})).await;
    assert_eq!(r["error"], "timeout", "{r}");
    assert_eq!(json_values(&r["responses"]), vec![0, 1, 2, 4, 5]);
    m.c.reset_ack(3).await;
    // Shoal nodes without a matching client answer a count of 0 at once
    let t0 = Instant::now();
    let r = m.n.call(json!({"cmd": "broadcastWithAck", "event": "ask", "rooms": [m.id(4)], "timeout": 5000})).await;
    assert_eq!(json_values(&r), vec![4]);
    assert!(t0.elapsed() < Duration::from_millis(1500), "Node waited {:?}", t0.elapsed());

    // Shoal collects the answers of Node's clients
    let r = m.s[0].io.of("/").timeout(Duration::from_secs(5)).emit_with_ack("ask", &"q").await.unwrap();
    assert_eq!(ack_values(&r), vec![0, 1, 2, 3, 4, 5]);
    let r = m.s[1].io.of("/").to("r2").timeout(Duration::from_secs(5)).emit_with_ack("ask", &"q").await.unwrap();
    assert_eq!(ack_values(&r), vec![1, 2, 5]);
    // a binary answer from a Node client reaches Shoal as binary
    m.c.set_ack(Some(4), Some(json!({"$bin": "aGVsbG8="}))).await;
    let r = m.s[0].io.of("/").to(m.id(4)).timeout(Duration::from_secs(5)).emit_with_ack("ask", &"q").await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].args.values, vec![json!({"_placeholder": true, "num": 0})]);
    assert_eq!(r[0].args.attachments, vec![Bytes::from_static(b"hello")]);
    m.c.reset_ack(4).await;
    // a silent Node client: Shoal times out with the other answers
    m.c.set_ack(Some(5), None).await;
    let t0 = Instant::now();
    let err = m.s[0].io.of("/").timeout(Duration::from_secs(1)).emit_with_ack("ask", &"q").await.unwrap_err();
    let BroadcastAckError::Timeout(t) = err else { panic!("{err:?}") };
    assert_eq!(ack_values(&t.responses), vec![0, 1, 2, 3, 4]);
    assert_eq!((t.expected, t.servers_reported, t.servers), (6, 3, 3));
    assert!(t0.elapsed() < Duration::from_secs(3));
    m.c.reset_ack(5).await;
    // the Node server answers a count of 0 when none of its clients match
    let t0 = Instant::now();
    let r = m.s[0].io.of("/").to(m.id(3)).timeout(Duration::from_secs(5)).emit_with_ack("ask", &"q").await.unwrap();
    assert_eq!(ack_values(&r), vec![3]);
    assert!(t0.elapsed() < Duration::from_millis(1500), "Shoal waited {:?}", t0.elapsed());

    // binary arguments in the broadcast-with-ack request, both ways
    let r =
        m.n.call(json!({"cmd": "broadcastWithAck", "event": "ask-bin", "args": [{"$bin": "AAEC/w=="}],
                     "rooms": [m.id(1)], "timeout": 3000}))
            .await;
    assert_eq!(r, json!([1]));
    assert_eq!(m.c.received("ask-bin", 1).await, json!([{"$bin": "AAEC/w=="}]));
    let r = m.s[1]
        .io
        .of("/")
        .to(m.id(5))
        .timeout(Duration::from_secs(3))
        .emit_with_ack("ask-bin", &Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(ack_values(&r), vec![5]);
    assert_eq!(m.c.received("ask-bin", 5).await, json!([{"$bin": "aGVsbG8="}]));

    // Node's remote socket with ack on a Shoal socket
    let r =
        m.n.call(json!({"cmd": "remoteSocketEmitWithAck", "socketId": m.id(2), "event": "ask", "timeout": 3000})).await;
    assert_eq!(r, json!(2));
    eprintln!("broadcast_acks_both_ways: {:?}", started.elapsed());
}

const HANDSHAKE_KEYS: [&str; 9] = ["address", "auth", "headers", "issued", "query", "secure", "time", "url", "xdomain"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_and_remote_operations_both_ways() {
    let started = Instant::now();
    let mut m = mixed().await;
    let auths = auths();

    // Node's fetchSockets sees Shoal's sockets in Node's shapes
    let all = m.n.call(json!({"cmd": "fetchSockets"})).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 6, "{all:?}");
    for (i, auth) in auths.iter().enumerate() {
        let id = m.id(i);
        let s = all.iter().find(|s| s["id"] == id.as_str()).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(s["local"], json!(i >= 4));
        let mut rooms = vec![id.clone()];
        rooms.extend(auth["rooms"].as_array().into_iter().flatten().map(|r| r.as_str().unwrap().to_owned()));
        let got: Vec<&str> = s["rooms"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        assert_eq!(sorted(got), sorted(&rooms), "rooms of {i}");
        if let Some(d) = auth.get("data") {
            assert_eq!(&s["data"], d, "data of {i}");
        }
        let hs = s["handshake"].as_object().unwrap();
        assert_eq!(sorted(hs.keys()), sorted(HANDSHAKE_KEYS), "handshake keys of {i}: {hs:?}");
        assert_eq!(hs["auth"], *auth);
        assert_eq!(hs["query"]["EIO"], "4");
        assert_eq!(hs["query"]["transport"], "websocket");
        assert!(hs["url"].as_str().unwrap().starts_with("/socket.io/?"), "{hs:?}");
        assert!(hs["issued"].is_u64() && hs["time"].is_string() && hs["headers"]["host"].is_string());
        assert!(hs["address"].is_string() && hs["xdomain"].is_boolean() && hs["secure"].is_boolean());
    }
    let r1 = m.n.call(json!({"cmd": "fetchSockets", "rooms": ["r1"], "except": [m.id(0)]})).await;
    let ids: Vec<&str> = r1.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(sorted(ids), sorted([m.id(2), m.id(4)]));

    // Shoal's fetch sockets sees Node's sockets
    let all = m.s[0].io.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sorted(all.iter().map(|s| s.id.as_str())), sorted(m.c.ids[0..6].iter()));
    let n0 = all.iter().find(|s| s.id == m.id(4)).unwrap();
    assert_eq!(n0.data, json!({"u": "n-0"}));
    assert_eq!(sorted(n0.rooms.iter().map(|r| r.as_str())), sorted([m.id(4), "r1".to_owned()]));
    let hs = n0.handshake.as_object().unwrap();
    assert_eq!(sorted(hs.keys()), sorted(HANDSHAKE_KEYS), "{hs:?}");
    assert_eq!(hs["auth"], auths[4]);
    // a numeric room of a Node socket (JSON number in the answer)
    m.n.call(json!({"cmd": "join", "socketId": m.id(5), "join": [123]})).await;
    let one = m.s[1].io.of("/").to(m.id(5)).fetch_sockets().await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, m.id(5));
    assert_eq!(sorted(one[0].rooms.iter().map(|r| r.as_str())), sorted([m.id(5), "123".into(), "r2".into()]));
    m.n.call(json!({"cmd": "leave", "socketId": m.id(5), "leave": [123]})).await;

    // Node's remote socket operations on a Shoal socket (3, on S2)
    let id3 = m.id(3);
    m.n.call(json!({"cmd": "remoteSocketEmit", "socketId": id3, "event": "rs-emit", "args": ["x"]})).await;
    assert_eq!(m.c.received("rs-emit", 3).await, json!(["x"]));
    m.n.call(json!({"cmd": "remoteSocketJoin", "socketId": id3, "join": ["nj"]})).await;
    let s2 = &m.s[1];
    wait_until("Node joins Shoal socket 3 to nj", || s2.rooms_of("/", &id3) == Some(vec!["nj".into()])).await;
    m.n.call(json!({"cmd": "remoteSocketLeave", "socketId": id3, "leave": ["nj"]})).await;
    wait_until("Node makes Shoal socket 3 leave nj", || s2.rooms_of("/", &id3) == Some(vec![])).await;

    // Node's socketsJoin / socketsLeave move Shoal's sockets (and its own)
    m.n.call(json!({"cmd": "socketsJoin", "rooms": ["r1"], "join": ["nj2"]})).await;
    let (s1, s2) = (&m.s[0], &m.s[1]);
    let (id0, id2, id4) = (m.id(0), m.id(2), m.id(4));
    wait_until("0 joins nj2", || s1.rooms_of("/", &id0) == Some(vec!["nj2".into(), "r1".into()])).await;
    wait_until("2 joins nj2", || s2.rooms_of("/", &id2) == Some(vec!["nj2".into(), "r1".into(), "r2".into()])).await;
    m.n.wait_rooms(&id4, &["nj2", "r1"]).await;
    m.n.call(json!({"cmd": "socketsLeave", "rooms": ["nj2"], "except": [id2.clone()], "leave": ["nj2"]})).await;
    let (s1, s2) = (&m.s[0], &m.s[1]);
    wait_until("0 leaves nj2", || s1.rooms_of("/", &id0) == Some(vec!["r1".into()])).await;
    m.n.wait_rooms(&id4, &["r1"]).await;
    assert_eq!(s2.rooms_of("/", &id2), Some(vec!["nj2".into(), "r1".into(), "r2".into()]), "excepted");

    // Shoal's sockets_join / sockets_leave move Node's sockets
    m.s[0].io.of("/").to("r2").sockets_join(["sj"]).await.unwrap();
    let id5 = m.id(5);
    m.n.wait_rooms(&id5, &["r2", "sj"]).await;
    let (s1, id1) = (&m.s[0], m.id(1));
    wait_until("1 joins sj", || s1.rooms_of("/", &id1) == Some(vec!["r2".into(), "sj".into()])).await;
    m.s[1].io.of("/").to(m.id(5)).sockets_leave(["sj", "r2"]).await.unwrap();
    m.n.wait_rooms(&id5, &[]).await;
    m.s[0].io.of("/").to(m.id(4)).emit("s-direct", &4).unwrap();
    assert_eq!(m.c.received("s-direct", 4).await, json!([4]));

    // disconnects both ways
    m.n.call(json!({"cmd": "remoteSocketDisconnect", "socketId": m.id(1), "close": true})).await;
    assert_eq!(m.c.disconnected(1).await, "io server disconnect");
    m.n.call(json!({"cmd": "disconnectSockets", "rooms": ["r2"], "close": false})).await;
    assert_eq!(m.c.disconnected(2).await, "io server disconnect");
    m.s[0].io.of("/").to(m.id(4)).disconnect_sockets(false).await.unwrap();
    assert_eq!(m.c.disconnected(4).await, "io server disconnect");
    let id4 = m.id(4);
    let d = m.n.p.wait_for(|v| v["event"] == "disconnect" && v["id"] == id4.as_str(), T).await;
    assert_eq!(d["reason"], "server namespace disconnect");
    m.s[1].io.of("/").to(m.id(5)).disconnect_sockets(true).await.unwrap();
    assert_eq!(m.c.disconnected(5).await, "io server disconnect");
    let left = m.n.call(json!({"cmd": "fetchSockets"})).await;
    let ids: Vec<&str> = left.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(sorted(ids), sorted([m.id(0), m.id(3)]));
    m.c.p.assert_none(|v| v["event"] == "disconnected", Duration::from_millis(200)).await;
    eprintln!("fetch_sockets_and_remote_operations_both_ways: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_all_rooms_and_server_count_both_ways() {
    let started = Instant::now();
    let mut m = mixed().await;

    assert_eq!(m.n.call(json!({"cmd": "serverCount"})).await, json!(3));
    for node in &m.s {
        assert_eq!(node.io.of("/").server_count().await.unwrap(), 3);
    }
    assert_eq!(m.redis.numsub("socket.io-request#/#").await, 3);

    // Node -> Shoal
    m.n.call(json!({"cmd": "serverSideEmit", "event": "sse", "args": [1, {"a": "b"}, null]})).await;
    for node in &m.s {
        let got = node.events.wait("/", "sse", 1).await;
        assert_eq!(got[0].args, vec![json!(1), json!({"a": "b"}), Value::Null], "{}", node.name);
    }
    let r = m.n.call(json!({"cmd": "serverSideEmitWithAck", "event": "sse-ack", "args": [2]})).await;
    assert_eq!(sorted(r.as_array().unwrap().iter().map(|x| x.as_str().unwrap())), vec!["S1", "S2"], "{r}");
    m.s[1].silent.store(true, Ordering::Release);
    let t0 = Instant::now();
    let r = m.n.call(json!({"cmd": "serverSideEmitWithAck", "event": "sse-ack", "args": [3]})).await;
    assert_eq!(r["error"], "timeout", "{r}");
    assert_eq!(r["responses"], json!(["S1"]));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    m.s[1].silent.store(false, Ordering::Release);

    // Shoal -> Node (and the other Shoal node)
    m.s[0].io.of("/").server_side_emit("sse", &json!({"from": "S1"})).unwrap();
    let got = m.n.p.wait_for(|v| v["event"] == "serverSideEmit" && v["name"] == "sse", T).await;
    assert_eq!(got["args"], json!([{"from": "S1"}]));
    assert_eq!(got["ack"], false);
    m.s[1].events.wait("/", "sse", 2).await;
    // with binary: MessagePack on the request channel, a Buffer for Node
    m.s[0].io.of("/").server_side_emit("sse-bin", &Bytes::from_static(&[7, 8])).unwrap();
    let got = m.n.p.wait_for(|v| v["event"] == "serverSideEmit" && v["name"] == "sse-bin", T).await;
    assert_eq!(got["args"], json!([{"$bin": "Bwg="}]));
    let r = m.s[0].io.of("/").server_side_emit_with_ack("sse-ack", &4, Duration::from_secs(3)).await.unwrap();
    assert_eq!(sorted(r.iter().map(|x| x.args.values[0].as_str().unwrap())), vec!["N", "S2"]);
    let got = m.n.p.wait_for(|v| v["event"] == "serverSideEmit" && v["name"] == "sse-ack", T).await;
    assert_eq!((got["args"].clone(), got["ack"].clone()), (json!([4]), json!(true)));
    m.n.call(json!({"cmd": "setServerAck", "silent": true})).await;
    let t0 = Instant::now();
    let err = m.s[0].io.of("/").server_side_emit_with_ack("sse-ack", &5, Duration::from_secs(1)).await.unwrap_err();
    assert!(format!("{err}").contains("timed out"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    let own = m.s[0].events.named("/", "sse");
    assert_eq!(own.len(), 1, "only Node's, never its own: {own:?}");
    assert_eq!(own[0].args[0], json!(1));

    // all rooms, both ways
    let mut expected: Vec<String> = vec!["r1".into(), "r2".into()];
    expected.extend(m.c.ids[0..6].iter().cloned());
    let expected = sorted(expected);
    let from_node = m.n.call(json!({"cmd": "allRooms"})).await;
    let from_node: Vec<&str> = from_node.as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(sorted(from_node), expected, "Node's allRooms");
    for node in &m.s {
        let rooms = node.io.of("/").all_rooms().await.unwrap();
        assert_eq!(sorted(rooms.iter().map(|r| r.as_str())), expected, "{}'s all_rooms", node.name);
    }
    eprintln!("server_side_emit_all_rooms_and_server_count_both_ways: {:?}", started.elapsed());
}

/// Node's sockets always have `data` (`{}` by default): code running on a Node server
/// reads `socket.data.x` on what fetchSockets returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_shoal_sockets_have_nodes_default_data() {
    let mut m = mixed().await;
    let all = m.n.call(json!({"cmd": "fetchSockets"})).await;
    let data_of =
        |i: usize| all.as_array().unwrap().iter().find(|s| s["id"] == m.id(i).as_str()).unwrap()["data"].clone();
    assert_eq!(data_of(5), json!({}), "a Node socket without data");
    assert_eq!(data_of(3), data_of(5), "a Shoal socket without data, as Node's fetchSockets sees it");
}

/// The same mixed cluster with a custom key (`myapp`) and every node answering on the
/// requester's own response channel (`publishOnSpecificResponseChannel`); a Shoal node with
/// the default key on the same Redis is another cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_key_and_specific_response_channels() {
    let started = Instant::now();
    let redis = RedisServer::start().await;
    let url = redis.url();
    let config = || {
        let mut c = RedisAdapterConfig::new(&url).key("myapp").requests_timeout(Duration::from_secs(2));
        c.publish_on_specific_response_channel = true;
        c
    };
    let s1 = ShoalNode::start_with("S1", config(), &[], |b| b).await;
    let s2 = ShoalNode::start_with("S2", config(), &[], |b| b).await;
    let other = ShoalNode::start("X", &url, &[]).await;
    let mut n = NodeServer::start(
        "N",
        &url,
        false,
        &["--key", "myapp", "--specific-response-channel", "--requests-timeout", "1500"],
    )
    .await;
    support::wait_server_counts(&[&s1, &s2], "/", 3).await;
    assert_eq!(n.call(json!({"cmd": "serverCount"})).await, json!(3));
    assert_eq!(other.io.of("/").server_count().await.unwrap(), 1, "another key, another cluster");
    assert_eq!(redis.numsub("myapp-request#/#").await, 3);
    let mut mon = support::Monitor::psubscribe(redis.addr(), "myapp-response#/#*").await;

    let mut c = Clients::start().await;
    c.connect(&s1.url(), "/", &[json!({"rooms": ["r1"]})]).await;
    c.connect(&s2.url(), "/", &[json!({})]).await;
    c.connect(&n.url(), "/", &[json!({"rooms": ["r1"]})]).await;
    c.connect(&other.url(), "/", &[json!({"rooms": ["r1"]})]).await;
    let ids = c.ids.clone();
    n.connection(&ids[2]).await;
    wait_until("Shoal clients connected", || {
        s1.io.of("/").socket_count() + s2.io.of("/").socket_count() + other.io.of("/").socket_count() == 3
    })
    .await;

    // broadcasts both ways; nothing crosses to the other key
    n.call(json!({"cmd": "broadcast", "event": "n", "rooms": ["r1"]})).await;
    s2.io.emit("s", &0).unwrap();
    other.io.emit("x", &0).unwrap();
    c.all_received("n", &[0, 2]).await;
    c.all_received("s", &[0, 1, 2]).await;
    c.received("x", 3).await;
    // fetch sockets, all rooms, acks, server-side emits
    let all = n.call(json!({"cmd": "fetchSockets"})).await;
    assert_eq!(sorted(all.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap())), sorted(&ids[0..3]));
    let all = s1.io.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sorted(all.iter().map(|s| s.id.as_str())), sorted(&ids[0..3]));
    let rooms = s2.io.of("/").all_rooms().await.unwrap();
    assert!(rooms.iter().any(|r| r.as_str() == ids[2]) && rooms.iter().any(|r| r.as_str() == "r1"), "{rooms:?}");
    let rooms = n.call(json!({"cmd": "allRooms"})).await;
    assert_eq!(rooms.as_array().unwrap().len(), 4, "r1 and three socket ids: {rooms}");
    let r = n.call(json!({"cmd": "broadcastWithAck", "event": "ask", "timeout": 3000})).await;
    assert_eq!(json_values(&r), vec![0, 1, 2]);
    let r = s1.io.of("/").timeout(Duration::from_secs(3)).emit_with_ack("ask", &0).await.unwrap();
    assert_eq!(ack_values(&r), vec![0, 1, 2]);
    let r = n.call(json!({"cmd": "serverSideEmitWithAck", "event": "sse-ack", "args": [1]})).await;
    assert_eq!(sorted(r.as_array().unwrap().iter().map(|x| x.as_str().unwrap())), vec!["S1", "S2"]);
    let r = s2.io.of("/").server_side_emit_with_ack("sse-ack", &2, Duration::from_secs(3)).await.unwrap();
    assert_eq!(sorted(r.iter().map(|x| x.args.values[0].as_str().unwrap())), vec!["N", "S1"]);
    assert!(other.events.all().is_empty(), "the other key hears nothing: {:?}", other.events.all());

    // where the answers went: only server-side-emit answers (type 6) on the common channel
    n.call(json!({"cmd": "serverSideEmit", "event": "fence"})).await;
    s1.events.wait("/", "fence", 1).await;
    let mut seen = Vec::new();
    while let Some((channel, payload)) = mon.next(Duration::from_millis(300)).await {
        seen.push((channel, support::decode(&payload)));
    }
    assert!(!seen.is_empty());
    for (channel, msg) in &seen {
        if channel == "myapp-response#/#" {
            assert_eq!(msg["type"], 6, "only server-side-emit answers on the common channel: {msg}");
        } else {
            assert!(channel.starts_with("myapp-response#/#") && channel.len() == "myapp-response#/#".len() + 7);
        }
    }
    eprintln!("custom_key_and_specific_response_channels: {:?} ({} responses seen)", started.elapsed(), seen.len());
}
