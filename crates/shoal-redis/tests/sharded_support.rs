//! Shared helpers of the sharded Redis adapter tests (`sharded_*.rs` include this file
//! with `#[path = "sharded_support.rs"] mod support;`; built alone it holds no test).
//!
//! - [`Broker`]: a throw-away Redis or 3-master Redis Cluster, with the URLs Shoal and
//!   Node take and the shard pub/sub state summed over masters;
//! - [`ShoalNode`]: a Shoal server with the sharded adapter, whose namespaces join the
//!   rooms of a client's `auth.rooms`, keep `auth.data` as socket data and record the
//!   server-side events they receive (answering acks with the node's name);
//! - [`NodeServer`]: `tests/js-redis/server.mjs --mode sharded`;
//! - [`Clients`]: official socket.io-client clients (`clients.mjs`);
//! - [`ShardMonitor`]: a raw `SSUBSCRIBE`r, to see the bytes nodes publish.
//!
//! Every wait is bounded by [`T`]; none sleeps a fixed time to synchronize.
#![allow(dead_code, missing_docs, missing_debug_implementations, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use shoal::{Args, Socket, SocketIo};
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory, RedisMode, SubscriptionMode};
use shoal_testkit::{NodeProcess, RedisCluster, RedisServer, RespConnection, RespValue};

/// How long anything expected may take.
pub const T: Duration = Duration::from_secs(10);

/// A throw-away Redis: one server or a cluster.
pub enum Broker {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Broker {
    pub async fn single() -> Broker {
        Broker::Single(RedisServer::start().await)
    }

    pub async fn cluster() -> Broker {
        Broker::Cluster(RedisCluster::start(3).await)
    }

    /// The URL of the Rust driver.
    pub fn shoal_url(&self) -> String {
        match self {
            Broker::Single(r) => r.url(),
            Broker::Cluster(c) => {
                let ports: Vec<u16> = c.nodes().iter().map(RedisServer::port).collect();
                let rest: Vec<String> = ports[1..].iter().map(|p| format!("node=127.0.0.1:{p}")).collect();
                format!("redis-cluster://127.0.0.1:{}?{}", ports[0], rest.join("&"))
            }
        }
    }

    /// The arguments of `server.mjs` that name this Redis.
    pub fn node_args(&self) -> Vec<String> {
        match self {
            Broker::Single(r) => vec!["--redis".into(), r.url()],
            Broker::Cluster(c) => vec!["--cluster".into(), c.urls().join(",")],
        }
    }

    /// `PUBSUB SHARDCHANNELS pattern` (over every master), sorted.
    pub async fn shard_channels(&self, pattern: &str) -> Vec<String> {
        match self {
            Broker::Single(r) => r.shard_channels(pattern).await,
            Broker::Cluster(c) => c.shard_channels(pattern).await,
        }
    }

    /// `PUBSUB SHARDNUMSUB channel` (summed over every master).
    pub async fn shardnumsub(&self, channel: &str) -> i64 {
        match self {
            Broker::Single(r) => r.shardnumsub(channel).await,
            Broker::Cluster(c) => c.shardnumsub(channel).await,
        }
    }

    /// The server owning the slot of `channel`.
    pub async fn server_for(&self, channel: &str) -> &RedisServer {
        match self {
            Broker::Single(r) => r,
            Broker::Cluster(c) => c.node_for_key(channel).await,
        }
    }

    /// Waits until `PUBSUB SHARDCHANNELS pattern` is exactly `want` (sorted).
    pub async fn wait_shard_channels(&self, pattern: &str, want: &[String]) {
        let mut want = want.to_vec();
        want.sort();
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let got = self.shard_channels(pattern).await;
            if got == want {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "shard channels {pattern}: {got:?}, expected {want:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `PUBSUB SHARDNUMSUB channel` is `n`.
    pub async fn wait_shardnumsub(&self, channel: &str, n: i64) {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let got = self.shardnumsub(channel).await;
            if got == n {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "SHARDNUMSUB {channel}: {got}, expected {n}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `(namespace, event, arguments)` of one server-side event a node received.
type ServerEvent = (String, String, Vec<Value>);

/// The server-side events a node received.
#[derive(Clone, Default)]
pub struct ServerEvents(Arc<Mutex<Vec<ServerEvent>>>);

impl ServerEvents {
    fn push(&self, nsp: &str, args: &Args) {
        let name = args.values.first().and_then(Value::as_str).unwrap_or_default().to_owned();
        self.0.lock().unwrap().push((nsp.to_owned(), name, args.values[1..].to_vec()));
    }

    /// The arguments of each event `name` received in `nsp`.
    pub fn named(&self, nsp: &str, name: &str) -> Vec<Vec<Value>> {
        self.0.lock().unwrap().iter().filter(|(n, e, _)| n == nsp && e == name).map(|(_, _, a)| a.clone()).collect()
    }

    /// Waits until `name` arrived `count` times in `nsp`.
    pub async fn wait(&self, nsp: &str, name: &str, count: usize) -> Vec<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let got = self.named(nsp, name);
            if got.len() >= count {
                return got;
            }
            assert!(tokio::time::Instant::now() < deadline, "server event {name} in {nsp}: {} of {count}", got.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A Shoal server with the sharded adapter.
pub struct ShoalNode {
    pub name: String,
    pub io: SocketIo,
    pub addr: SocketAddr,
    pub factory: Arc<RedisAdapterFactory>,
    pub events: ServerEvents,
}

impl ShoalNode {
    /// A node on `url` in sharded mode `mode`, namespaces `/` plus `extra`.
    pub async fn start(name: &str, url: &str, mode: SubscriptionMode, extra: &[&str]) -> ShoalNode {
        let config = RedisAdapterConfig::new(url).mode(RedisMode::Sharded { subscription: mode });
        ShoalNode::start_with(name, config, extra, |b| b).await
    }

    pub async fn start_with(
        name: &str,
        config: RedisAdapterConfig,
        extra: &[&str],
        build: impl FnOnce(shoal::SocketIoBuilder) -> shoal::SocketIoBuilder,
    ) -> ShoalNode {
        let factory = RedisAdapterFactory::connect(config).await.expect("connect the sharded adapter");
        let io = build(SocketIo::builder().adapter(factory.clone())).build().expect("valid settings");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let node = ShoalNode { name: name.to_owned(), io, addr, factory, events: ServerEvents::default() };
        node.setup_ns("/");
        for nsp in extra {
            node.setup_ns(nsp);
        }
        let io = node.io.clone();
        tokio::spawn(async move { shoal::serve(listener, io, std::future::pending()).await });
        node
    }

    /// Connect handler and server-side handlers of `nsp`.
    pub fn setup_ns(&self, nsp: &str) -> shoal::Namespace {
        let ns = self.io.of(nsp);
        ns.on_connect(on_connect);
        self.server_handlers(&ns, nsp);
        ns
    }

    /// Server-side events `sse` and `sse-ack`, answered with the node's name.
    pub fn server_handlers(&self, ns: &shoal::Namespace, nsp: &str) {
        for ev in ["sse", "sse-ack"] {
            let (events, name, nsp) = (self.events.clone(), self.name.clone(), nsp.to_owned());
            ns.on_server_event(ev, move |args: Args| {
                events.push(&nsp, &args);
                Some(Args::single(&name).unwrap())
            });
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Messages this node's driver received so far.
    pub fn received(&self) -> u64 {
        self.factory.driver().stats().received.load(Ordering::Relaxed)
    }

    /// The rooms (own id excluded) of local socket `id`, sorted; `None` once it is gone.
    pub fn rooms_of(&self, nsp: &str, id: &str) -> Option<Vec<String>> {
        let s = self.io.of(nsp).sockets().into_iter().find(|s| s.id().as_str() == id)?;
        let mut v: Vec<String> = s.rooms().iter().map(|r| r.as_str().to_owned()).filter(|r| r != id).collect();
        v.sort();
        Some(v)
    }

    /// Waits until local socket `id` has exactly `rooms` (own id excluded).
    pub async fn wait_rooms(&self, nsp: &str, id: &str, rooms: &[&str]) {
        wait_until(&format!("{}: rooms of {id} = {rooms:?}", self.name), || {
            self.rooms_of(nsp, id).is_some_and(|r| r == rooms)
        })
        .await;
    }

    /// Waits until this node counts `n` servers in `nsp`.
    pub async fn wait_server_count(&self, nsp: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let got = self.io.of(nsp).server_count().await;
            if matches!(got, Ok(c) if c == n) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}: server count {got:?}, expected {n}", self.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Joins `auth.rooms`, stores `auth.data`.
pub async fn on_connect(socket: Socket) {
    let auth = socket.handshake().auth().clone();
    if let Some(data) = auth.get("data") {
        socket.set_data(data).unwrap();
    }
    match auth.get("rooms") {
        Some(Value::Array(rooms)) => socket.join_many(rooms.iter().filter_map(Value::as_str)),
        Some(Value::String(room)) => socket.join(room.as_str()),
        _ => {}
    }
}

/// Polls `cond` every 10 ms until it holds (at most [`T`]).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "not within {T:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A Node socket.io server with the sharded adapter.
pub struct NodeServer {
    pub p: NodeProcess,
    pub port: u16,
    pub uid: String,
    pub name: String,
}

impl NodeServer {
    /// `server.mjs --mode sharded --subscription-mode <mode>` on `broker`.
    pub async fn start(name: &str, broker: &Broker, mode: SubscriptionMode, extra: &[&str]) -> NodeServer {
        let mut args = broker.node_args();
        args.extend(["--mode", "sharded", "--subscription-mode", mode.as_str(), "--name", name].map(String::from));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut p = NodeProcess::spawn("server.mjs", &refs);
        let listening = p.wait_for_event_within("listening", Duration::from_secs(20)).await;
        NodeServer {
            p,
            port: listening["port"].as_u64().unwrap() as u16,
            uid: listening["uid"].as_str().unwrap_or_default().to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn call(&mut self, cmd: Value) -> Value {
        self.p.call(cmd).await
    }

    /// Waits for the `connection` report of socket `id` (its rooms are joined and their
    /// channels subscribed then).
    pub async fn connection(&mut self, id: &str) -> Value {
        self.p.wait_for(|v| v["event"] == "connection" && v["id"] == id, T).await
    }

    /// The rooms (own id excluded) of local socket `id`, sorted.
    pub async fn rooms_of(&mut self, id: &str) -> Vec<String> {
        let rooms = self.p.call(json!({"cmd": "localRooms"})).await;
        let mut out: Vec<String> = rooms
            .as_object()
            .unwrap()
            .iter()
            .filter(|(room, members)| room.as_str() != id && members.as_array().unwrap().iter().any(|m| m == id))
            .map(|(room, _)| room.clone())
            .collect();
        out.sort();
        out
    }

    /// Waits until local socket `id` has exactly `rooms` (own id excluded).
    pub async fn wait_rooms(&mut self, id: &str, rooms: &[&str]) {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let got = self.rooms_of(id).await;
            if got == rooms {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "node socket {id}: rooms {got:?}, expected {rooms:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The `serverSideEmit` events received so far named `name` (consumed).
    pub async fn server_events(&mut self, name: &str, n: usize) -> Vec<Value> {
        self.p.wait_for_n(|v| v["event"] == "serverSideEmit" && v["name"] == name, n, T).await
    }
}

/// Official socket.io-client clients in one `clients.mjs` process.
pub struct Clients {
    pub p: NodeProcess,
    /// Socket id of each client, by index.
    pub ids: Vec<String>,
}

impl Clients {
    pub async fn start() -> Clients {
        let mut p = NodeProcess::spawn("clients.mjs", &[]);
        p.wait_for_event("ready").await;
        Clients { p, ids: Vec::new() }
    }

    /// Connects one client per `auth` (WebSocket) to `url`/`nsp`; returns their indexes.
    pub async fn connect(&mut self, url: &str, nsp: &str, auths: &[Value]) -> Vec<usize> {
        let got = self
            .p
            .call(json!({"cmd": "connect", "url": url, "nsp": nsp, "count": auths.len(), "auth": auths,
                         "transports": ["websocket"]}))
            .await;
        shoal_testkit::record_connected(&got, &mut self.ids)
    }

    pub fn id(&self, index: usize) -> &str {
        &self.ids[index]
    }

    /// Waits until each of `indexes` got event `name` once, then checks for `quiet` that
    /// nobody else (and nobody twice) gets it. Consumes those lines.
    pub async fn expect_exactly(&mut self, name: &str, indexes: &[usize], quiet: Duration) -> Vec<Value> {
        let n = indexes.len();
        let got = self.p.wait_for_n(|v| v["event"] == "received" && v["name"] == name, n, T).await;
        self.p.assert_none(|v| v["event"] == "received" && v["name"] == name, quiet).await;
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for v in &got {
            *counts.entry(v["index"].as_u64().unwrap() as usize).or_default() += 1;
        }
        let want: BTreeMap<usize, usize> = indexes.iter().map(|&i| (i, 1)).collect();
        assert_eq!(counts, want, "who received {name:?}");
        got
    }

    /// Waits until client `index` reports a disconnection; returns the reason.
    pub async fn disconnected(&mut self, index: usize) -> String {
        let v = self.p.wait_for(|v| v["event"] == "disconnected" && v["index"] == json!(index), T).await;
        v["reason"].as_str().unwrap_or_default().to_owned()
    }

    /// Checks nobody else disconnects within `quiet`.
    pub async fn no_more_disconnections(&mut self, quiet: Duration) {
        self.p.assert_none(|v| v["event"] == "disconnected", quiet).await;
    }
}

/// A raw `SSUBSCRIBE`r (on the master owning the channel's slot).
pub struct ShardMonitor {
    conn: RespConnection,
}

impl ShardMonitor {
    pub async fn subscribe(broker: &Broker, channel: &str) -> ShardMonitor {
        let server = broker.server_for(channel).await;
        let mut conn = RespConnection::connect(server.addr()).await.unwrap();
        let r = conn.cmd(&["SSUBSCRIBE", channel]).await.unwrap();
        assert_eq!(r.as_array().and_then(|a| a.first()).and_then(RespValue::as_str), Some("ssubscribe"), "{r}");
        ShardMonitor { conn }
    }

    /// The next `(channel, payload)`, at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<(String, Vec<u8>)> {
        let v = self.conn.read_timeout(timeout).await.unwrap()?;
        let a = v.as_array().unwrap();
        assert_eq!(a.first().and_then(RespValue::as_str), Some("smessage"), "{v}");
        Some((a[1].as_str().unwrap().to_owned(), a[2].as_bytes().unwrap().to_vec()))
    }

    /// The next message, which must come within [`T`].
    pub async fn expect(&mut self) -> (String, Vec<u8>) {
        self.next(T).await.expect("a message on the monitored channel")
    }
}

/// Binary as the js scripts write it.
pub fn bin(bytes: &[u8]) -> Value {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    json!({"$bin": s})
}

// ----- a mixed cluster: 2 Shoal nodes + 1 Node node ---------------------------------------

/// Sorted numbers of a JSON array of numbers.
pub fn numbers(v: &Value) -> Vec<u64> {
    let mut out: Vec<u64> =
        v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_u64().unwrap()).collect();
    out.sort_unstable();
    out
}

/// Two Shoal nodes (A, B) and a Node node (N) in sharded mode `mode` on `broker`, with
/// clients 0,1 on A, 2,3 on B, 4,5 on N (even ones in room `a`, odd ones in `b`, data
/// `{"n": index}`): every operation in both directions.
pub async fn mixed_cluster_scenario(broker: &Broker, mode: SubscriptionMode) {
    let url = broker.shoal_url();
    let a = ShoalNode::start("A", &url, mode, &[]).await;
    let b = ShoalNode::start("B", &url, mode, &[]).await;
    let mut n = NodeServer::start("N", broker, mode, &[]).await;
    a.wait_server_count("/", 3).await;
    b.wait_server_count("/", 3).await;
    assert_eq!(n.call(json!({"cmd": "serverCount"})).await, json!(3));

    let mut clients = Clients::start().await;
    let urls = [a.url(), b.url(), n.url()];
    for (k, u) in urls.iter().enumerate() {
        let auths = [json!({"rooms": ["a"], "data": {"n": 2 * k}}), json!({"rooms": ["b"], "data": {"n": 2 * k + 1}})];
        clients.connect(u, "/", &auths).await;
    }
    let ids = clients.ids.clone();
    n.connection(&ids[4]).await;
    n.connection(&ids[5]).await;
    if mode != SubscriptionMode::Static {
        broker.wait_shardnumsub("socket.io#/#a#", 3).await;
        broker.wait_shardnumsub("socket.io#/#b#", 3).await;
    }
    let q = Duration::from_millis(150);
    let all = [0, 1, 2, 3, 4, 5];

    // --- broadcasts, Node -> everyone and Shoal -> everyone
    n.call(json!({"cmd": "broadcast", "event": "n-all", "args": [1, "two"]})).await;
    let got = clients.expect_exactly("n-all", &all, q).await;
    assert!(got.iter().all(|v| v["args"] == json!([1, "two"])), "{got:?}");
    n.call(json!({"cmd": "broadcast", "event": "n-a", "args": [], "rooms": ["a"]})).await;
    clients.expect_exactly("n-a", &[0, 2, 4], q).await;
    n.call(json!({"cmd": "broadcast", "event": "n-not-a", "args": [], "except": ["a"]})).await;
    clients.expect_exactly("n-not-a", &[1, 3, 5], q).await;
    n.call(json!({"cmd": "broadcast", "event": "n-sid", "args": [], "rooms": [ids[1]]})).await;
    clients.expect_exactly("n-sid", &[1], q).await;
    n.call(json!({"cmd": "broadcast", "event": "n-bin", "args": [bin(b"\x01\x02")], "rooms": ["b"]})).await;
    let got = clients.expect_exactly("n-bin", &[1, 3, 5], q).await;
    assert!(got.iter().all(|v| v["args"] == json!([bin(b"\x01\x02")])), "{got:?}");

    a.io.of("/").emit("s-all", &json!({"k": [1, 2]})).unwrap();
    let got = clients.expect_exactly("s-all", &all, q).await;
    assert!(got.iter().all(|v| v["args"] == json!([{"k": [1, 2]}])), "{got:?}");
    b.io.of("/").to("a").emit("s-a", &1).unwrap();
    clients.expect_exactly("s-a", &[0, 2, 4], q).await;
    a.io.of("/").except("a").emit("s-not-a", &1).unwrap();
    clients.expect_exactly("s-not-a", &[1, 3, 5], q).await;
    b.io.of("/").to(ids[5].as_str()).emit("s-sid", &1).unwrap();
    clients.expect_exactly("s-sid", &[5], q).await;
    a.io.of("/").to("b").emit("s-bin", &bytes::Bytes::from_static(b"\xff\x00")).unwrap();
    let got = clients.expect_exactly("s-bin", &[1, 3, 5], q).await;
    assert!(got.iter().all(|v| v["args"] == json!([bin(b"\xff\x00")])), "{got:?}");

    // --- broadcasts with acknowledgements
    let r = n.call(json!({"cmd": "broadcastWithAck", "event": "n-ack", "args": [], "timeout": 5000})).await;
    assert_eq!(numbers(&r), vec![0, 1, 2, 3, 4, 5], "{r}");
    let r = n
        .call(json!({"cmd": "broadcastWithAck", "event": "n-ack-b", "args": [], "rooms": ["b"], "timeout": 5000}))
        .await;
    assert_eq!(numbers(&r), vec![1, 3, 5], "{r}");
    let r = a.io.of("/").timeout(T).emit_with_ack("s-ack", &1).await.unwrap();
    let mut got: Vec<u64> = r.iter().map(|x| x.args.values[0].as_u64().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);

    // --- fetch sockets
    let r = n.call(json!({"cmd": "fetchSockets"})).await;
    let list = r.as_array().unwrap();
    assert_eq!(list.len(), 6, "{r}");
    for s in list {
        let i = ids.iter().position(|id| s["id"] == id.as_str()).unwrap();
        assert_eq!(s["data"], json!({"n": i}), "{s}");
        assert_eq!(s["local"], json!(i >= 4), "{s}");
        let room = if i % 2 == 0 { "a" } else { "b" };
        assert!(s["rooms"].as_array().unwrap().iter().any(|r| r == room), "{s}");
    }
    let r = n.call(json!({"cmd": "fetchSockets", "rooms": ["a"]})).await;
    assert_eq!(r.as_array().unwrap().len(), 3, "{r}");
    let all_sockets = b.io.of("/").fetch_sockets().await.unwrap();
    assert_eq!(all_sockets.len(), 6);
    let from_node = all_sockets.iter().find(|s| s.id == ids[4]).unwrap();
    assert_eq!(from_node.data, json!({"n": 4}));
    assert!(from_node.rooms.iter().any(|r| r.as_str() == "a"));
    assert!(from_node.handshake.get("headers").is_some(), "{:?}", from_node.handshake);
    assert_eq!(b.io.of("/").to("b").fetch_sockets().await.unwrap().len(), 3);

    // --- server-side emits
    let r = n.call(json!({"cmd": "serverSideEmitWithAck", "event": "sse-ack", "args": [7]})).await;
    let mut names: Vec<&str> = r.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["A", "B"], "{r}");
    assert_eq!(a.events.wait("/", "sse-ack", 1).await, vec![vec![json!(7)]]);
    let r = a.io.of("/").server_side_emit_with_ack("sse-ack", &8, T).await.unwrap();
    let mut names: Vec<String> = r.iter().map(|x| x.args.values[0].as_str().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["B", "N"]);
    let ev = n.server_events("sse-ack", 1).await;
    assert_eq!(ev[0]["args"], json!([8]));
    n.call(json!({"cmd": "serverSideEmit", "event": "sse", "args": [{"x": 1}]})).await;
    assert_eq!(a.events.wait("/", "sse", 1).await, vec![vec![json!({"x": 1})]]);
    assert_eq!(b.events.wait("/", "sse", 1).await, vec![vec![json!({"x": 1})]]);
    b.io.of("/").server_side_emit("sse", &"from-b").unwrap();
    let ev = n.server_events("sse", 1).await;
    assert_eq!(ev[0]["args"], json!(["from-b"]));
    assert_eq!(a.events.wait("/", "sse", 2).await[1], vec![json!("from-b")]);

    // --- remote join / leave, both ways
    n.call(json!({"cmd": "socketsJoin", "rooms": ["a"], "join": ["x"]})).await;
    a.wait_rooms("/", &ids[0], &["a", "x"]).await;
    b.wait_rooms("/", &ids[2], &["a", "x"]).await;
    n.wait_rooms(&ids[4], &["a", "x"]).await;
    a.io.of("/").to("b").sockets_join(["y"]).await.unwrap();
    n.wait_rooms(&ids[5], &["b", "y"]).await;
    b.wait_rooms("/", &ids[3], &["b", "y"]).await;
    assert_eq!(a.rooms_of("/", &ids[1]).unwrap(), ["b", "y"]);
    if mode != SubscriptionMode::Static {
        broker.wait_shardnumsub("socket.io#/#x#", 3).await;
        broker.wait_shardnumsub("socket.io#/#y#", 3).await;
    }
    a.io.of("/").to("x").emit("to-x", &1).unwrap();
    clients.expect_exactly("to-x", &[0, 2, 4], q).await;
    n.call(json!({"cmd": "broadcast", "event": "to-y", "args": [], "rooms": ["y"]})).await;
    clients.expect_exactly("to-y", &[1, 3, 5], q).await;
    n.call(json!({"cmd": "socketsLeave", "leave": ["x"]})).await;
    b.io.of("/").sockets_leave(["y"]).await.unwrap();
    a.wait_rooms("/", &ids[0], &["a"]).await;
    b.wait_rooms("/", &ids[2], &["a"]).await;
    n.wait_rooms(&ids[4], &["a"]).await;
    n.wait_rooms(&ids[5], &["b"]).await;
    a.wait_rooms("/", &ids[1], &["b"]).await;

    // --- a Node RemoteSocket on a Shoal socket
    n.call(json!({"cmd": "remoteSocketEmit", "socketId": ids[2], "event": "remote", "args": ["hey"]})).await;
    clients.expect_exactly("remote", &[2], q).await;
    n.call(json!({"cmd": "remoteSocketJoin", "socketId": ids[3], "join": ["rj"]})).await;
    b.wait_rooms("/", &ids[3], &["b", "rj"]).await;

    // --- disconnects, both ways, each socket once
    n.call(json!({"cmd": "disconnectSockets", "rooms": ["a"], "close": false})).await;
    for i in [0, 2, 4] {
        assert_eq!(clients.disconnected(i).await, "io server disconnect");
    }
    a.io.of("/").to("b").disconnect_sockets(true).await.unwrap();
    for i in [1, 3, 5] {
        clients.disconnected(i).await;
    }
    clients.no_more_disconnections(Duration::from_millis(300)).await;
    assert_eq!(n.call(json!({"cmd": "localSockets"})).await, json!([]));
    wait_until("A and B have no socket left", || {
        a.io.of("/").sockets().is_empty() && b.io.of("/").sockets().is_empty()
    })
    .await;
}

/// What nodes `SPUBLISH`, seen through `MONITOR` (which, unlike a subscriber, does not
/// count in `SHARDNUMSUB`, so the server counts stay right).
pub struct PublishMonitor {
    conn: RespConnection,
    backlog: Vec<(String, Vec<u8>)>,
}

impl PublishMonitor {
    pub async fn start(server: &RedisServer) -> PublishMonitor {
        let mut conn = server.connect().await.unwrap();
        let r = conn.cmd(&["MONITOR"]).await.unwrap();
        assert!(r.is_ok(), "MONITOR: {r}");
        PublishMonitor { conn, backlog: Vec::new() }
    }

    /// The next payload published to `channel` (at most [`T`]).
    pub async fn expect(&mut self, channel: &str) -> Vec<u8> {
        if let Some(i) = self.backlog.iter().position(|(c, _)| c == channel) {
            return self.backlog.remove(i).1;
        }
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(v) = self.conn.read_timeout(left).await.unwrap() else {
                panic!("nothing published to {channel} within {T:?}; other channels: {:?}", self.backlog)
            };
            let line = v.as_bytes().unwrap_or_default().to_vec();
            let args = monitor_args(&line);
            if args.len() == 3 && args[0].eq_ignore_ascii_case(b"SPUBLISH") {
                let c = String::from_utf8(args[1].clone()).unwrap();
                if c == channel {
                    return args[2].clone();
                }
                self.backlog.push((c, args[2].clone()));
            }
        }
    }
}

/// The quoted arguments of a `MONITOR` line (`sdscatrepr` escapes undone).
fn monitor_args(line: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = line.iter().position(|&b| b == b']').map_or(0, |p| p + 1);
    while i < line.len() {
        if line[i] != b'"' {
            i += 1;
            continue;
        }
        i += 1;
        let mut arg = Vec::new();
        while i < line.len() && line[i] != b'"' {
            if line[i] == b'\\' && i + 1 < line.len() {
                i += 1;
                match line[i] {
                    b'n' => arg.push(b'\n'),
                    b'r' => arg.push(b'\r'),
                    b't' => arg.push(b'\t'),
                    b'a' => arg.push(7),
                    b'b' => arg.push(8),
                    b'x' => {
                        let hex = std::str::from_utf8(&line[i + 1..i + 3]).unwrap();
                        arg.push(u8::from_str_radix(hex, 16).unwrap());
                        i += 2;
                    }
                    other => arg.push(other),
                }
            } else {
                arg.push(line[i]);
            }
            i += 1;
        }
        i += 1;
        out.push(arg);
    }
    out
}
