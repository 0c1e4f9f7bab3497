//! The emitter end to end, through a real Redis:
//! - Shoal nodes with the Redis adapter (classic, and sharded in each subscription mode)
//!   deliver what the Rust emitter publishes;
//! - Node socket.io servers (classic, and sharded in each subscription mode; on one Redis
//!   and on a Redis Cluster) deliver what the Rust emitter publishes to official clients;
//! - Shoal nodes deliver what Node's `@socket.io/redis-emitter` publishes.
//!
//! Needs `redis-server` and the Node packages of `tests/js-redis`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use shoal::{Args, Event, Socket, SocketIo};
use shoal_bench::conn::WsClient;
use shoal_emitter::{Emitter, EmitterConfig, EmitterMode, SubscriptionMode};
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory, RedisMode};
use shoal_testkit::{NodeProcess, RedisCluster, RedisServer, RespValue};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

// ----- Shoal side -------------------------------------------------------------------------

/// A Shoal node on the Redis adapter: sockets of `/` join the room they send in a
/// `"join"` event (acknowledged); server-side events `"sse"` are reported.
struct ShoalNode {
    addr: SocketAddr,
    server_events: mpsc::UnboundedReceiver<Vec<Value>>,
    _io: SocketIo,
}

async fn shoal_node(config: RedisAdapterConfig) -> ShoalNode {
    let factory = RedisAdapterFactory::connect(config).await.unwrap();
    let io = SocketIo::builder().adapter(factory).build().unwrap();
    io.of("/").on_connect(|socket: Socket| async move {
        socket.on("join", |socket: Socket, mut ev: Event| async move {
            let room: String = ev.data().unwrap();
            socket.join(room);
            let _ = ev.ack(socket.id().as_str());
        });
    });
    let (tx, server_events) = mpsc::unbounded_channel();
    io.of("/").on_server_event("sse", move |args: Args| {
        let _ = tx.send(args.values);
        None
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = io.clone();
    tokio::spawn(async move { shoal::serve(listener, served, std::future::pending()).await });
    ShoalNode { addr, server_events, _io: io }
}

impl ShoalNode {
    async fn server_event(&mut self) -> Vec<Value> {
        tokio::time::timeout(WAIT, self.server_events.recv()).await.expect("no server-side event").unwrap()
    }
}

/// A raw WebSocket client of namespace `/`.
struct Client {
    ws: WsClient,
    name: &'static str,
}

impl Client {
    async fn connect(addr: SocketAddr, name: &'static str) -> Client {
        Client { ws: WsClient::connect_socketio(addr, None, 7).await.unwrap(), name }
    }

    /// Joins `room`; returns the socket id.
    async fn join(&mut self, room: &str) -> String {
        self.ws.queue_text(format!("421[\"join\",\"{room}\"]").as_bytes());
        self.ws.flush().await.unwrap();
        let ack = self.next().await;
        let sid: [String; 1] =
            serde_json::from_str(ack.strip_prefix("431").unwrap_or_else(|| panic!("not the ack: {ack}"))).unwrap();
        let [sid] = sid;
        sid
    }

    /// The next Socket.IO frame (pings answered), or `"closed"`.
    async fn next(&mut self) -> String {
        loop {
            let frame = match tokio::time::timeout(WAIT, self.ws.next_text()).await {
                Err(_) => panic!("client {}: nothing within {WAIT:?}", self.name),
                Ok(Err(_)) => return "closed".into(),
                Ok(Ok(f)) => f,
            };
            if &frame[..] == b"2" {
                self.ws.queue_text(b"3");
                self.ws.flush().await.unwrap();
                continue;
            }
            return String::from_utf8_lossy(&frame).into_owned();
        }
    }

    async fn expect(&mut self, frame: &str) {
        let got = self.next().await;
        assert_eq!(got, frame, "client {}", self.name);
    }
}

/// An event frame of namespace `/`.
fn frame(event: &str, args: &str) -> String {
    if args.is_empty() { format!("42[\"{event}\"]") } else { format!("42[\"{event}\",{args}]") }
}

/// Waits until `count` nodes listen on `channel` (`SHARDNUMSUB` when `sharded`).
async fn wait_subscribers(redis: &RedisServer, channel: &str, sharded: bool, count: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = if sharded { redis.shardnumsub(channel).await } else { redis.numsub(channel).await };
        if n == count {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{channel}: {n} subscribers, not {count}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two Shoal nodes on the Redis adapter in `mode`, raw clients, and the Rust emitter in
/// `emitter_mode`: every operation of the emitter.
async fn shoal_nodes_deliver_rust_emitter_messages(mode: RedisMode, emitter_mode: EmitterMode) {
    let redis = RedisServer::start().await;
    let config = || RedisAdapterConfig::new(redis.url()).mode(mode);
    let (sharded, dynamic) = match mode {
        RedisMode::Sharded { subscription } => (true, subscription != SubscriptionMode::Static),
        _ => (false, false),
    };
    let mut a = shoal_node(config()).await;
    let mut b = shoal_node(config()).await;
    if sharded {
        wait_subscribers(&redis, "socket.io#/#", true, 2).await;
    } else {
        wait_subscribers(&redis, "socket.io-request#/#", false, 2).await;
    }
    // in the dynamic modes, a room's channel is subscribed once it has members
    let room_channel = async |room: &str, count: i64| {
        if dynamic {
            wait_subscribers(&redis, &format!("socket.io#/#{room}#"), true, count).await;
        }
    };
    let mut red = Client::connect(a.addr, "red").await;
    let mut blue = Client::connect(b.addr, "blue").await;
    let mut plain = Client::connect(a.addr, "plain").await;
    red.join("red").await;
    let blue_sid = blue.join("blue").await;
    room_channel("red", 1).await;
    room_channel("blue", 1).await;
    let emitter = Emitter::connect(&redis.url(), EmitterConfig::default().mode(emitter_mode)).await.unwrap();
    let sentinel = async |clients: &mut [&mut Client]| {
        emitter.emit_args("sentinel", Args::default()).await.unwrap();
        for c in clients {
            c.expect(&frame("sentinel", "")).await;
        }
    };

    // to everyone, every kind of argument
    emitter.emit("all", &json!({"n": 1.0, "s": "é", "l": [null, true]})).await.unwrap();
    for c in [&mut red, &mut blue, &mut plain] {
        c.expect(&frame("all", r#"{"n":1,"s":"é","l":[null,true]}"#)).await;
    }
    emitter.emit_args("multi", Args::from_serialize(&(1, "two", [3])).unwrap()).await.unwrap();
    for c in [&mut red, &mut blue, &mut plain] {
        c.expect(&frame("multi", r#"1,"two",[3]"#)).await;
    }
    // a room, on the room's own channel
    emitter.clone().to("red").emit("r", &1).await.unwrap();
    red.expect(&frame("r", "1")).await;
    sentinel(&mut [&mut red, &mut blue, &mut plain]).await;
    // a socket, by its id
    emitter.clone().to(blue_sid.as_str()).emit("sid", &1).await.unwrap();
    blue.expect(&frame("sid", "1")).await;
    sentinel(&mut [&mut red, &mut blue, &mut plain]).await;
    // two rooms but one
    emitter.clone().to("red").to("blue").except("blue").emit("rb", &2).await.unwrap();
    red.expect(&frame("rb", "2")).await;
    sentinel(&mut [&mut red, &mut blue, &mut plain]).await;
    // except
    emitter.clone().except("red").volatile().compress(true).emit("nr", &3).await.unwrap();
    blue.expect(&frame("nr", "3")).await;
    plain.expect(&frame("nr", "3")).await;
    sentinel(&mut [&mut red, &mut blue, &mut plain]).await;
    // binary
    emitter.clone().to("blue").emit("bin", &Bytes::from_static(b"\x00\x01")).await.unwrap();
    blue.expect(r#"451-["bin",{"_placeholder":true,"num":0}]"#).await;
    sentinel(&mut [&mut red, &mut blue, &mut plain]).await;

    // join then emit to the new room, leave then emit again
    emitter.clone().to("blue").sockets_join(["green"]).await.unwrap();
    room_channel("green", 1).await;
    emitter.clone().to("green").emit("g", &"joined").await.unwrap();
    blue.expect(&frame("g", "\"joined\"")).await;
    sentinel(&mut [&mut red, &mut blue, &mut plain]).await;
    emitter.sockets_leave(["green"]).await.unwrap();
    room_channel("green", 0).await;
    emitter.clone().to("green").emit("g", &"left").await.unwrap();
    sentinel(&mut [&mut red, &mut blue, &mut plain]).await;

    // server-side: every node's listener
    emitter.server_side_emit("sse", &json!({"from": "emitter"})).await.unwrap();
    assert_eq!(a.server_event().await, vec![json!("sse"), json!({"from": "emitter"})]);
    assert_eq!(b.server_event().await, vec![json!("sse"), json!({"from": "emitter"})]);

    // disconnect the room's sockets (namespace only), then close another connection
    emitter.clone().to("red").disconnect_sockets(false).await.unwrap();
    red.expect("41").await;
    sentinel(&mut [&mut blue, &mut plain]).await;
    emitter.clone().to("blue").disconnect_sockets(true).await.unwrap();
    let got = blue.next().await;
    assert!(got == "41" || got == "closed", "{got}");
    sentinel(&mut [&mut plain]).await;

    // namespaces are kept apart
    emitter.clone().of("other").emit("o", &0).await.unwrap();
    sentinel(&mut [&mut plain]).await;

    // reserved names are refused before anything is published
    for name in ["connect", "disconnect", "newListener"] {
        let e = emitter.emit(name, &0).await.unwrap_err();
        assert_eq!(e.to_string(), format!("\"{name}\" is a reserved event name"));
    }
    assert!(emitter.server_side_emit("connection", &0).await.is_err());
    sentinel(&mut [&mut plain]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoal_classic_nodes_deliver_rust_emitter_messages() {
    shoal_nodes_deliver_rust_emitter_messages(RedisMode::Classic, EmitterMode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoal_sharded_nodes_deliver_rust_emitter_messages() {
    for subscription in [SubscriptionMode::Dynamic, SubscriptionMode::Static, SubscriptionMode::DynamicPrivate] {
        shoal_nodes_deliver_rust_emitter_messages(
            RedisMode::Sharded { subscription },
            EmitterMode::Sharded { subscription },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoal_nodes_deliver_node_emitter_messages() {
    let redis = RedisServer::start().await;
    let config = || RedisAdapterConfig::new(redis.url()).key("k1");
    let mut a = shoal_node(config()).await;
    let b = shoal_node(config()).await;
    wait_subscribers(&redis, "k1-request#/#", false, 2).await;
    let mut red = Client::connect(a.addr, "red").await;
    let mut blue = Client::connect(b.addr, "blue").await;
    red.join("red").await;
    blue.join("blue").await;
    let mut node = NodeProcess::spawn("emitter.mjs", &["--redis", &redis.url(), "--key", "k1"]);
    node.wait_for_event("ready").await;
    node.call(json!({"cmd": "emit", "event": "all", "args": ["x", 1.5, {"a": [1]}]})).await;
    red.expect(&frame("all", r#""x",1.5,{"a":[1]}"#)).await;
    blue.expect(&frame("all", r#""x",1.5,{"a":[1]}"#)).await;
    node.call(json!({"cmd": "emit", "event": "r", "rooms": ["red"], "args": [1]})).await;
    red.expect(&frame("r", "1")).await;
    node.call(json!({"cmd": "emit", "event": "nr", "except": ["red"], "volatile": true, "args": [2]})).await;
    blue.expect(&frame("nr", "2")).await;
    node.call(json!({"cmd": "emit", "event": "bin", "rooms": ["blue"], "args": [{"$bin": "AQID"}]})).await;
    blue.expect(r#"451-["bin",{"_placeholder":true,"num":0}]"#).await;
    node.call(json!({"cmd": "socketsJoin", "rooms": ["red"], "join": ["green"]})).await;
    node.call(json!({"cmd": "emit", "event": "g", "rooms": ["green"]})).await;
    red.expect(&frame("g", "")).await;
    node.call(json!({"cmd": "socketsLeave", "leave": "green"})).await;
    node.call(json!({"cmd": "emit", "event": "g", "rooms": ["green"]})).await;
    node_sentinel(&mut node, &mut [&mut red, &mut blue]).await;
    node.call(json!({"cmd": "serverSideEmit", "event": "sse", "args": [{"a": 1}]})).await;
    assert_eq!(a.server_event().await, vec![json!("sse"), json!({"a": 1})]);
    node.call(json!({"cmd": "disconnectSockets", "rooms": ["red"], "close": false})).await;
    red.expect("41").await;
    node_sentinel(&mut node, &mut [&mut blue]).await;
    node.call(json!({"cmd": "close"})).await;
}

/// Node's emitter broadcasts to everyone; every client in `clients` must get it next.
async fn node_sentinel(node: &mut NodeProcess, clients: &mut [&mut Client]) {
    node.call(json!({"cmd": "emit", "event": "sentinel"})).await;
    for c in clients {
        c.expect(&frame("sentinel", "")).await;
    }
}

// ----- Node side --------------------------------------------------------------------------

/// Two Node servers (`server_args` pick the adapter), official clients, and the Rust
/// emitter in `mode`: broadcasts, rooms, join/leave, server-side emits, disconnections.
async fn node_servers_deliver_rust_emitter_messages(server_args: &[&str], mode: EmitterMode) {
    let redis = RedisServer::start().await;
    let url = redis.url();
    node_servers_deliver(&["--redis", &url], &url, server_args, mode).await;
}

/// [`node_servers_deliver_rust_emitter_messages`] on any Redis: `redis_args` for the Node
/// servers (`--redis URL` or `--cluster URL,URL,…`), `url` for the emitter.
async fn node_servers_deliver(redis_args: &[&str], url: &str, server_args: &[&str], mode: EmitterMode) {
    let mut args = redis_args.to_vec();
    args.extend_from_slice(&["--nsp", "/chat"]);
    args.extend_from_slice(server_args);
    let mut s1 = NodeProcess::spawn("server.mjs", &args);
    let mut s2 = NodeProcess::spawn("server.mjs", &args);
    let p1 = s1.wait_for_event("listening").await["port"].as_u64().unwrap();
    let p2 = s2.wait_for_event("listening").await["port"].as_u64().unwrap();
    let mut clients = NodeProcess::spawn("clients.mjs", &[]);
    clients.wait_for_event("ready").await;
    // 0: red on s1, 1: blue on s1, 2: red on s2, 3: /chat on s2; WebSocket only, so that a
    // volatile packet cannot meet a client in the middle of its upgrade (Node drops it then)
    let url1 = format!("http://127.0.0.1:{p1}");
    let url2 = format!("http://127.0.0.1:{p2}");
    clients
        .call(json!({"cmd": "connect", "url": url1, "count": 2, "auth": [{"rooms": ["red"]}, {"rooms": ["blue"]}],
                     "transports": ["websocket"]}))
        .await;
    clients.call(json!({"cmd": "connect", "url": url2, "auth": {"rooms": ["red"]}, "transports": ["websocket"]})).await;
    clients.call(json!({"cmd": "connect", "url": url2, "nsp": "/chat", "transports": ["websocket"]})).await;
    // once reported, the servers' subscriptions are in place (dynamic room channels too)
    s1.wait_for_n(|v| v["event"] == "connection", 2, WAIT).await;
    s2.wait_for_n(|v| v["event"] == "connection", 2, WAIT).await;

    let emitter = Emitter::connect(url, EmitterConfig::default().mode(mode)).await.unwrap();
    let received = |name: &'static str| move |v: &Value| v["event"] == "received" && v["name"] == name;
    let expect = async |clients: &mut NodeProcess, name: &'static str, who: &[u64], args: Value| {
        let got = clients.wait_for_n(received(name), who.len(), WAIT).await;
        let mut indexes: Vec<u64> = got.iter().map(|v| v["index"].as_u64().unwrap()).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, who, "{name}: {got:?}");
        for v in got {
            assert_eq!(v["args"], args, "{name}");
        }
    };
    // a broadcast to every client of `/` proves that what was published before it and
    // not delivered yet never will be
    let sentinel = async |clients: &mut NodeProcess, not: &'static str| {
        emitter.emit_args("sentinel", Args::default()).await.unwrap();
        clients.wait_for_n(received("sentinel"), 3, WAIT).await;
        let late = clients.take_matching(received(not));
        assert!(late.is_empty(), "{not} reached {late:?}");
    };

    emitter.emit("all", &json!({"n": 1, "f": 0.5})).await.unwrap();
    expect(&mut clients, "all", &[0, 1, 2], json!([{"n": 1, "f": 0.5}])).await;
    emitter.clone().to("red").emit("red", &Bytes::from_static(&[1, 2, 3])).await.unwrap();
    expect(&mut clients, "red", &[0, 2], json!([{"$bin": "AQID"}])).await;
    sentinel(&mut clients, "red").await;
    emitter.clone().to("red").to("blue").except("blue").volatile().emit("rb", &"x").await.unwrap();
    expect(&mut clients, "rb", &[0, 2], json!(["x"])).await;
    sentinel(&mut clients, "rb").await;
    emitter.clone().except("red").emit_args("nr", Args::from_serialize(&(1, 2)).unwrap()).await.unwrap();
    expect(&mut clients, "nr", &[1], json!([1, 2])).await;
    sentinel(&mut clients, "nr").await;
    emitter.clone().of("chat").emit("chat", &"c").await.unwrap();
    expect(&mut clients, "chat", &[3], json!(["c"])).await;
    sentinel(&mut clients, "chat").await;

    // join: once s1 has the room (and, sharded, its channel), emit to it
    emitter.clone().to("blue").sockets_join(["green"]).await.unwrap();
    wait_room(&mut s1, "green", true).await;
    emitter.clone().to("green").emit("green", &1).await.unwrap();
    expect(&mut clients, "green", &[1], json!([1])).await;
    emitter.sockets_leave(["green"]).await.unwrap();
    wait_room(&mut s1, "green", false).await;
    emitter.clone().to("green").emit("green", &2).await.unwrap();
    sentinel(&mut clients, "green").await;

    emitter.server_side_emit("sse", &json!({"a": [1]})).await.unwrap();
    for s in [&mut s1, &mut s2] {
        let v = s.wait_for_event("serverSideEmit").await;
        assert_eq!((&v["name"], &v["args"], &v["ack"]), (&json!("sse"), &json!([{"a": [1]}]), &json!(false)));
    }

    emitter.clone().to("red").disconnect_sockets(false).await.unwrap();
    let gone = clients.wait_for_n(|v| v["event"] == "disconnected", 2, WAIT).await;
    for v in &gone {
        assert_eq!(v["reason"], "io server disconnect", "{v}");
    }
    let mut indexes: Vec<u64> = gone.iter().map(|v| v["index"].as_u64().unwrap()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 2]);

    clients.call(json!({"cmd": "close"})).await;
    s1.call(json!({"cmd": "close"})).await;
    s2.call(json!({"cmd": "close"})).await;
}

/// Waits until `server` has (or no longer has) `room` in `/`, then until its
/// subscriptions are settled.
async fn wait_room(server: &mut NodeProcess, room: &str, present: bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rooms = server.call(json!({"cmd": "localRooms", "nsp": "/"})).await;
        if rooms.get(room).is_some() == present {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "room {room} present={present}: {rooms}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.call(json!({"cmd": "settle"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_classic_servers_deliver_rust_emitter_messages() {
    node_servers_deliver_rust_emitter_messages(&["--mode", "classic"], EmitterMode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sharded_servers_deliver_rust_emitter_messages_dynamic() {
    node_servers_deliver_rust_emitter_messages(
        &["--mode", "sharded", "--subscription-mode", "dynamic"],
        EmitterMode::Sharded { subscription: SubscriptionMode::Dynamic },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sharded_servers_deliver_rust_emitter_messages_static() {
    node_servers_deliver_rust_emitter_messages(
        &["--mode", "sharded", "--subscription-mode", "static"],
        EmitterMode::Sharded { subscription: SubscriptionMode::Static },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sharded_servers_deliver_rust_emitter_messages_dynamic_private() {
    node_servers_deliver_rust_emitter_messages(
        &["--mode", "sharded", "--subscription-mode", "dynamic-private"],
        EmitterMode::Sharded { subscription: SubscriptionMode::DynamicPrivate },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_servers_on_a_redis_cluster_deliver_rust_emitter_messages() {
    let cluster = RedisCluster::start(3).await;
    let seeds = cluster.urls().join(",");
    let ports: Vec<u16> = cluster.nodes().iter().map(RedisServer::port).collect();
    let url = format!("redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}", ports[0], ports[1], ports[2]);
    node_servers_deliver(&["--cluster", &seeds], &url, &["--mode", "classic"], EmitterMode::Classic).await;
    node_servers_deliver(
        &["--cluster", &seeds],
        &url,
        &["--mode", "sharded"],
        EmitterMode::Sharded { subscription: SubscriptionMode::Dynamic },
    )
    .await;
}

/// An emitter only publishes: it holds one Redis connection, not a subscriber as well, and
/// it still publishes (a subscriber of the main channel gets the packet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emitter_holds_one_connection() {
    let redis = RedisServer::start().await;
    let clients = async || -> Vec<String> {
        let list = redis.cmd(&["CLIENT", "LIST"]).await.unwrap();
        let text = list.as_str().unwrap_or_default().to_owned();
        // every client but the one asking
        text.lines().filter(|l| !l.contains("cmd=client|list") && !l.is_empty()).map(str::to_owned).collect()
    };
    assert!(clients().await.is_empty(), "{:?}", clients().await);
    let emitter = Emitter::connect(&redis.url(), EmitterConfig::default()).await.unwrap();
    let open = clients().await;
    assert_eq!(open.len(), 1, "{open:#?}");
    let mut sub = redis.connect().await.unwrap();
    sub.send(&["SUBSCRIBE", "socket.io#/#"]).await.unwrap();
    let _confirmation = sub.read().await.unwrap();
    emitter.emit("e", &1).await.unwrap();
    let message = sub.read().await.unwrap();
    let RespValue::Array(parts) = message else { panic!("{message:?}") };
    assert_eq!(parts[0].as_str(), Some("message"));
    assert!(!parts[2].as_bytes().unwrap().is_empty());
    emitter.close().await;
}
