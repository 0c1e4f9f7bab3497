//! Shared helpers of the classic Redis adapter tests (`classic_*.rs` include this file
//! with `#[path = "classic_support.rs"] mod support;`; built alone it holds no test).
//!
//! - [`ShoalNode`]: a Shoal server with the Redis adapter on 127.0.0.1:0, whose
//!   namespaces join the rooms of a client's `auth.rooms`, store `auth.data` as the
//!   socket's data, and record the server-side events they receive (answering their acks
//!   with the node's name unless told to stay silent);
//! - [`Clients`]: official `socket.io-client` clients (`tests/js-redis/clients.mjs`);
//! - [`Monitor`]: a raw Redis subscriber that sees what the nodes publish;
//! - waiting helpers (every wait is bounded; none sleeps for a fixed time as
//!   synchronization).
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use shoal::{Args, Socket, SocketIo};
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory};
use shoal_testkit::{NodeProcess, RespConnection, RespValue};
use tokio::sync::Notify;

/// How long anything expected may take to happen.
pub(crate) const T: Duration = Duration::from_secs(10);

/// A server-side event a node's handlers received.
#[derive(Debug, Clone)]
pub(crate) struct ServerEvent {
    pub(crate) nsp: String,
    pub(crate) name: String,
    /// The arguments after the event name (binary as placeholders into `attachments`).
    pub(crate) args: Vec<Value>,
    pub(crate) attachments: Vec<bytes::Bytes>,
}

/// The server-side events a node's handlers received.
#[derive(Clone, Default)]
pub(crate) struct ServerEvents {
    inner: Arc<(Mutex<Vec<ServerEvent>>, Notify)>,
}

impl ServerEvents {
    fn push(&self, nsp: &str, args: &Args) {
        let name = args.values.first().and_then(Value::as_str).unwrap_or_default().to_owned();
        let rest = args.values.iter().skip(1).cloned().collect();
        let ev = ServerEvent { nsp: nsp.to_owned(), name, args: rest, attachments: args.attachments.clone() };
        self.inner.0.lock().unwrap().push(ev);
        self.inner.1.notify_waiters();
    }

    /// Every event received so far.
    pub(crate) fn all(&self) -> Vec<ServerEvent> {
        self.inner.0.lock().unwrap().clone()
    }

    /// Every event `name` received in `nsp`.
    pub(crate) fn named(&self, nsp: &str, name: &str) -> Vec<ServerEvent> {
        self.all().into_iter().filter(|e| e.nsp == nsp && e.name == name).collect()
    }

    /// Waits until event `name` was received `count` times in `nsp`.
    pub(crate) async fn wait(&self, nsp: &str, name: &str, count: usize) -> Vec<ServerEvent> {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let notified = self.inner.1.notified();
            let got = self.named(nsp, name);
            if got.len() >= count {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("server-side event {name:?} in {nsp}: {} of {count} within {T:?}", got.len());
            }
        }
    }
}

/// A Shoal server with the classic Redis adapter.
pub(crate) struct ShoalNode {
    pub(crate) name: String,
    pub(crate) io: SocketIo,
    pub(crate) addr: SocketAddr,
    pub(crate) factory: Arc<RedisAdapterFactory>,
    pub(crate) events: ServerEvents,
    /// When set, server-side events are not acknowledged.
    pub(crate) silent: Arc<AtomicBool>,
}

/// The server-side events every node handles (acknowledged with the node's name, except
/// `sse-bin-ack`: acknowledged with the bytes `[1, 2, 3]`).
pub(crate) const SERVER_EVENTS: [&str; 5] = ["sse", "sse-ack", "sse-bin", "sse-bin-ack", "fence"];

impl ShoalNode {
    /// Starts a node with default settings on `url`, namespaces `/` plus `extra`.
    pub(crate) async fn start(name: &str, url: &str, extra: &[&str]) -> ShoalNode {
        ShoalNode::start_with(name, RedisAdapterConfig::new(url), extra, |b| b).await
    }

    /// Starts a node with `config`, namespaces `/` plus `extra`, the builder adjusted by
    /// `build`.
    pub(crate) async fn start_with(
        name: &str,
        config: RedisAdapterConfig,
        extra: &[&str],
        build: impl FnOnce(shoal::SocketIoBuilder) -> shoal::SocketIoBuilder,
    ) -> ShoalNode {
        let factory = RedisAdapterFactory::connect(config).await.expect("connect the Redis adapter");
        let io = build(SocketIo::builder().adapter(factory.clone())).build().expect("valid settings");
        let node = ShoalNode {
            name: name.to_owned(),
            io,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            factory,
            events: ServerEvents::default(),
            silent: Arc::new(AtomicBool::new(false)),
        };
        node.setup_ns("/");
        for nsp in extra {
            node.setup_ns(nsp);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let io = node.io.clone();
        tokio::spawn(async move { shoal::serve(listener, io, std::future::pending()).await });
        ShoalNode { addr, ..node }
    }

    /// Sets up a namespace: connect handler (rooms and data from `auth`) and the
    /// server-side event handlers.
    pub(crate) fn setup_ns(&self, nsp: &str) -> shoal::Namespace {
        let ns = self.io.of(nsp);
        ns.on_connect(on_connect);
        self.server_handlers(&ns, nsp);
        ns
    }

    /// Registers the server-side event handlers on `ns` (named `nsp` in the records).
    pub(crate) fn server_handlers(&self, ns: &shoal::Namespace, nsp: &str) {
        for ev in SERVER_EVENTS {
            let (events, silent, name, nsp) =
                (self.events.clone(), self.silent.clone(), self.name.clone(), nsp.to_owned());
            ns.on_server_event(ev, move |args: Args| {
                events.push(&nsp, &args);
                if silent.load(Ordering::Acquire) {
                    None
                } else if ev == "sse-bin-ack" {
                    Some(Args::single(&bytes::Bytes::from_static(&[1, 2, 3])).unwrap())
                } else {
                    Some(Args::single(&name).unwrap())
                }
            });
        }
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The local socket `id` of namespace `nsp`.
    pub(crate) fn socket(&self, nsp: &str, id: &str) -> Option<Socket> {
        self.io.of(nsp).sockets().into_iter().find(|s| s.id().as_str() == id)
    }

    /// The rooms (own id excluded) of local socket `id`, sorted; `None` if it is gone.
    pub(crate) fn rooms_of(&self, nsp: &str, id: &str) -> Option<Vec<String>> {
        let s = self.socket(nsp, id)?;
        let mut v: Vec<String> = s.rooms().iter().map(|r| r.as_str().to_owned()).filter(|r| r != id).collect();
        v.sort();
        Some(v)
    }

    /// Waits until this node's adapter of `nsp` counts `n` servers.
    pub(crate) async fn wait_server_count(&self, nsp: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let got = self.io.of(nsp).server_count().await;
            if matches!(got, Ok(c) if c == n) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}: server count of {nsp} is {got:?}, not {n}", self.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Joins the rooms of `auth.rooms` and stores `auth.data` as the socket's data.
async fn on_connect(socket: Socket) {
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

/// Waits until every node counts `n` servers in `nsp`.
pub(crate) async fn wait_server_counts(nodes: &[&ShoalNode], nsp: &str, n: usize) {
    for node in nodes {
        node.wait_server_count(nsp, n).await;
    }
}

/// Polls `cond` every 10 ms until it holds, at most [`T`].
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "not within {T:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Official socket.io-client clients in one `clients.mjs` process.
pub(crate) struct Clients {
    pub(crate) p: NodeProcess,
    /// Socket id of each client, by index.
    pub(crate) ids: Vec<String>,
}

impl Clients {
    pub(crate) async fn start() -> Clients {
        let mut p = NodeProcess::spawn("clients.mjs", &[]);
        p.wait_for_event("ready").await;
        Clients { p, ids: Vec::new() }
    }

    /// Connects one client per `auth` (over WebSocket) to `url` and namespace `nsp`;
    /// returns their indexes.
    pub(crate) async fn connect(&mut self, url: &str, nsp: &str, auths: &[Value]) -> Vec<usize> {
        let got = self
            .p
            .call(json!({"cmd": "connect", "url": url, "nsp": nsp, "count": auths.len(), "auth": auths,
                         "transports": ["websocket"]}))
            .await;
        shoal_testkit::record_connected(&got, &mut self.ids)
    }

    /// Waits until client `index` received event `name`; returns its arguments.
    pub(crate) async fn received(&mut self, name: &str, index: usize) -> Value {
        let v =
            self.p.wait_for(|v| v["event"] == "received" && v["name"] == name && v["index"] == json!(index), T).await;
        v["args"].clone()
    }

    /// Waits until each of `indexes` received event `name` (once at least).
    pub(crate) async fn all_received(&mut self, name: &str, indexes: &[usize]) {
        for &i in indexes {
            self.received(name, i).await;
        }
    }

    /// Takes the `received` lines of event `name` seen so far: how many times each
    /// client got it.
    pub(crate) fn take_counts(&mut self, name: &str) -> BTreeMap<usize, usize> {
        let mut out = BTreeMap::new();
        for v in self.p.take_matching(|v| v["event"] == "received" && v["name"] == name) {
            *out.entry(v["index"].as_u64().unwrap() as usize).or_insert(0) += 1;
        }
        out
    }

    /// Waits until client `index` reports a disconnection; returns the reason.
    pub(crate) async fn disconnected(&mut self, index: usize) -> String {
        let v = self.p.wait_for(|v| v["event"] == "disconnected" && v["index"] == json!(index), T).await;
        v["reason"].as_str().unwrap_or_default().to_owned()
    }

    /// Sets the ack answer of client `index` (`None`: silent).
    pub(crate) async fn set_ack(&mut self, index: Option<usize>, value: Option<Value>) {
        let mut cmd = json!({"cmd": "setAck"});
        if let Some(i) = index {
            cmd["index"] = json!(i);
        }
        match value {
            Some(v) => cmd["value"] = v,
            None => cmd["silent"] = json!(true),
        }
        self.p.call(cmd).await;
    }

    /// Restores the default ack answer (its index) of client `index`.
    pub(crate) async fn reset_ack(&mut self, index: usize) {
        self.p.call(json!({"cmd": "setAck", "index": index})).await;
    }
}

/// `{index: 1}` for each index: what [`Clients::take_counts`] returns when each got it once.
pub(crate) fn once(indexes: &[usize]) -> BTreeMap<usize, usize> {
    indexes.iter().map(|&i| (i, 1)).collect()
}

/// A Node socket.io server (`server.mjs`) with the classic adapter.
pub(crate) struct NodeServer {
    pub(crate) p: NodeProcess,
    pub(crate) port: u16,
    pub(crate) uid: String,
}

impl NodeServer {
    /// `server.mjs --mode classic` on `--redis url` (or `--cluster urls` when `cluster`).
    pub(crate) async fn start(name: &str, redis: &str, cluster: bool, extra: &[&str]) -> NodeServer {
        let mut args = vec![if cluster { "--cluster" } else { "--redis" }, redis, "--mode", "classic", "--name", name];
        args.extend_from_slice(extra);
        let mut p = NodeProcess::spawn("server.mjs", &args);
        let listening = p.wait_for_event("listening").await;
        NodeServer {
            p,
            port: listening["port"].as_u64().unwrap() as u16,
            uid: listening["uid"].as_str().unwrap_or_default().to_owned(),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) async fn call(&mut self, cmd: Value) -> Value {
        self.p.call(cmd).await
    }

    /// Waits for the `connection` report of socket `id` (its rooms are joined then).
    pub(crate) async fn connection(&mut self, id: &str) -> Value {
        self.p.wait_for(|v| v["event"] == "connection" && v["id"] == id, T).await
    }

    /// The rooms (own id excluded) of local socket `id`, sorted.
    pub(crate) async fn rooms_of(&mut self, id: &str) -> Vec<String> {
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
    pub(crate) async fn wait_rooms(&mut self, id: &str, rooms: &[&str]) {
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
}

/// A raw subscriber on Redis, to see what the nodes publish.
pub(crate) struct Monitor {
    conn: RespConnection,
}

impl Monitor {
    /// `PSUBSCRIBE pattern` (confirmed when this returns).
    pub(crate) async fn psubscribe(addr: SocketAddr, pattern: &str) -> Monitor {
        let mut conn = RespConnection::connect(addr).await.unwrap();
        let r = conn.cmd(&["PSUBSCRIBE", pattern]).await.unwrap();
        assert_eq!(r.as_array().and_then(|a| a.first()).and_then(RespValue::as_str), Some("psubscribe"), "{r}");
        Monitor { conn }
    }

    /// `SUBSCRIBE channel` (confirmed when this returns).
    pub(crate) async fn subscribe(addr: SocketAddr, channel: &str) -> Monitor {
        let mut conn = RespConnection::connect(addr).await.unwrap();
        let r = conn.cmd(&["SUBSCRIBE", channel]).await.unwrap();
        assert_eq!(r.as_array().and_then(|a| a.first()).and_then(RespValue::as_str), Some("subscribe"), "{r}");
        Monitor { conn }
    }

    /// The next message `(channel, payload)`, waiting at most `timeout`.
    pub(crate) async fn next(&mut self, timeout: Duration) -> Option<(String, Vec<u8>)> {
        let v = self.conn.read_timeout(timeout).await.unwrap()?;
        let a = v.as_array().unwrap();
        match a.first().and_then(RespValue::as_str) {
            Some("pmessage") => Some((a[2].as_str().unwrap().to_owned(), a[3].as_bytes().unwrap().to_vec())),
            Some("message") => Some((a[1].as_str().unwrap().to_owned(), a[2].as_bytes().unwrap().to_vec())),
            _ => panic!("unexpected pub/sub push {v}"),
        }
    }

    /// Messages until (and including) the first one matching `last`, at most [`T`].
    pub(crate) async fn until(&mut self, mut last: impl FnMut(&str, &[u8]) -> bool) -> Vec<(String, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + T;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some((c, p)) = self.next(left).await else {
                panic!("monitor: the awaited message did not come within {T:?}; got {:?}", describe(&out));
            };
            let stop = last(&c, &p);
            out.push((c, p));
            if stop {
                return out;
            }
        }
    }
}

/// Channel names and decoded payloads, for failure messages.
pub(crate) fn describe(msgs: &[(String, Vec<u8>)]) -> Vec<String> {
    msgs.iter().map(|(c, p)| format!("{c}: {}", decode(p))).collect()
}

/// A payload as JSON (JSON text, or MessagePack with binary as placeholders).
pub(crate) fn decode(payload: &[u8]) -> Value {
    match shoal_redis::wire::decode_any(payload) {
        Ok((v, _)) => v,
        Err(e) => json!(format!("undecodable ({e}): {payload:02x?}")),
    }
}

/// The event name of a classic broadcast payload `[uid, packet, opts]`.
pub(crate) fn broadcast_event(payload: &[u8]) -> Option<String> {
    let v = decode(payload);
    v.get(1)?.get("data")?.get(0)?.as_str().map(str::to_owned)
}

/// Sorted strings.
pub(crate) fn sorted<S: AsRef<str>>(v: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut out: Vec<String> = v.into_iter().map(|s| s.as_ref().to_owned()).collect();
    out.sort();
    out
}
