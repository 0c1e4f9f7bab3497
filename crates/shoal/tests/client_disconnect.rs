//! Every disconnect reason, as the server (`DisconnectReason`) and the official
//! JavaScript client (its `disconnect` reason) see it, over both transports; raw
//! WebSocket clients for what the official client never does (stay silent on pings,
//! send malformed packets).

mod common;
mod js;

use std::time::{Duration, Instant};

use common::TestServer;
use js::{NodeScenario, RawWs, assert_quiet, bounded, recv};
use serde_json::{Value, json};
use shoal::{DisconnectReason, Event, Socket, SocketIo, SocketIoBuilder};
use tokio::sync::mpsc;

/// (namespace, socket id, reason)
type Gone = (String, String, DisconnectReason);

/// `/` and `/other` report their disconnects; "kick" disconnects the socket,
/// "kick-hard" disconnects it and closes its connection.
fn setup(io: &SocketIo, connects: mpsc::UnboundedSender<String>, gone: mpsc::UnboundedSender<Gone>) {
    for name in ["/", "/other"] {
        let connects = connects.clone();
        let gone = gone.clone();
        io.of(name).on_connect(move |socket: Socket| {
            let _ = connects.send(socket.id().to_string());
            let gone = gone.clone();
            async move {
                socket.on("kick", |socket: Socket, _ev: Event| async move { socket.disconnect() });
                socket.on("kick-hard", |socket: Socket, _ev: Event| async move { socket.disconnect_and_close() });
                socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
                    let _ = gone.send((socket.ns().to_owned(), socket.id().to_string(), reason));
                    async {}
                });
            }
        });
    }
}

struct Harness {
    server: Option<TestServer>,
    connects: mpsc::UnboundedReceiver<String>,
    gone: mpsc::UnboundedReceiver<Gone>,
}

impl Harness {
    async fn start(builder: SocketIoBuilder) -> Harness {
        let (ctx, connects) = mpsc::unbounded_channel();
        let (gtx, gone) = mpsc::unbounded_channel();
        let server = TestServer::start(builder, |io| setup(io, ctx, gtx)).await;
        Harness { server: Some(server), connects, gone }
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("running")
    }

    async fn stop(&mut self) {
        self.server.take().expect("running").stop().await;
    }

    async fn gone(&mut self) -> Gone {
        recv(&mut self.gone, Duration::from_secs(10), "a disconnect on the server").await
    }
}

const TRANSPORTS: [&str; 2] = ["websocket", "polling"];

/// Runs the `disconnect` scenario in `mode` over each transport; returns, per transport,
/// the client's result and the server's disconnects.
async fn run_mode(mode: &str, server_disconnects: usize) -> Vec<(&'static str, Value, Vec<Gone>)> {
    let mut out = Vec::new();
    for transport in TRANSPORTS {
        let mut h = Harness::start(SocketIo::builder()).await;
        let node =
            NodeScenario::spawn("disconnect", &h.server().url(), json!({"mode": mode, "transports": [transport]}));
        let r = node.result().await;
        let mut gone = Vec::new();
        for _ in 0..server_disconnects {
            gone.push(h.gone().await);
        }
        gone.sort_by(|a, b| a.0.cmp(&b.0));
        assert_quiet(&mut h.gone, Duration::from_millis(50), "no other disconnect").await;
        h.stop().await;
        out.push((transport, r, gone));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_namespace_disconnect() {
    bounded(40, "client_namespace_disconnect", async {
        for (t, r, gone) in run_mode("client-ns", 1).await {
            assert_eq!(r["reason"], "io client disconnect", "{t}");
            assert_eq!(
                gone,
                vec![("/".into(), r["id"].as_str().unwrap().into(), DisconnectReason::ClientNamespaceDisconnect)],
                "{t}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_namespace_disconnect() {
    bounded(40, "server_namespace_disconnect", async {
        for (t, r, gone) in run_mode("server-ns", 1).await {
            assert_eq!(r["reason"], "io server disconnect", "{t}");
            assert_eq!(r["active"], false, "{t}: the client does not reconnect after a server disconnect");
            assert_eq!(
                gone,
                vec![("/".into(), r["id"].as_str().unwrap().into(), DisconnectReason::ServerNamespaceDisconnect)],
                "{t}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_closes_its_connection_transport_close() {
    bounded(40, "client_closes_its_connection", async {
        for (t, r, gone) in run_mode("engine-close", 1).await {
            // the client names it after what it did: it closed the engine itself
            assert_eq!(r["reason"], "forced close", "{t}");
            assert_eq!(
                gone,
                vec![("/".into(), r["id"].as_str().unwrap().into(), DisconnectReason::TransportClose)],
                "{t}"
            );
        }
    })
    .await;
}

async fn forced_server_close(transport: &str) {
    let mut h = Harness::start(SocketIo::builder()).await;
    let node =
        NodeScenario::spawn("disconnect", &h.server().url(), json!({"mode": "forced", "transports": [transport]}));
    let r = node.result().await;
    let gone = h.gone().await;
    assert_eq!(r["reason"], "io server disconnect", "{transport}: the client must not reconnect");
    assert_eq!(r["active"], false, "{transport}");
    assert_eq!(
        gone,
        // as Node's `disconnect(true)`: a DISCONNECT first, so the client does not come back
        ("/".into(), r["id"].as_str().unwrap().into(), DisconnectReason::ServerNamespaceDisconnect),
        "{transport}"
    );
    assert_eq!(h.server().io.connection_count(), 0, "{transport}: the connection is closed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_server_close_websocket() {
    bounded(20, "forced_server_close websocket", forced_server_close("websocket")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_server_close_polling() {
    bounded(20, "forced_server_close polling", forced_server_close("polling")).await;
}

/// `disconnect_and_close()` on one namespace of a connection that has two: the other
/// namespace goes down too, and (as in Node, where every socket of the connection gets a
/// DISCONNECT first) its client must not reconnect on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_server_close_other_namespace_does_not_reconnect() {
    bounded(20, "forced_server_close_other_namespace", async {
        let mut h = Harness::start(SocketIo::builder()).await;
        let node = NodeScenario::spawn(
            "disconnect",
            &h.server().url(),
            json!({"mode": "forced-multi", "transports": ["websocket"]}),
        );
        let r = node.result().await;
        let mut gone = [h.gone().await, h.gone().await];
        gone.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!((gone[1].0.as_str(), gone[1].2), ("/other", DisconnectReason::ServerNamespaceDisconnect));
        assert_eq!(r["otherReason"], "io server disconnect", "the other namespace was disconnected by the server: {r}");
        assert_eq!(r["reconnected"], false, "the client did not come back");
        // two connects at the start, none after
        assert_eq!(js::recv_n(&mut h.connects, 2, Duration::from_secs(5), "connects").await.len(), 2);
        assert_quiet(&mut h.connects, Duration::from_millis(300), "no reconnection").await;
        h.stop().await;
    })
    .await;
}

/// The client process dies (SIGKILL): its TCP connections close, and the server must see
/// it at once, not a heartbeat later (the default ping interval is 25 s).
async fn client_process_killed(transport: &str) {
    let mut h = Harness::start(SocketIo::builder()).await;
    let mut node =
        NodeScenario::spawn("wait-forever", &h.server().url(), json!({"transports": [transport], "settleMs": 200}));
    let id = node.event("connected").await["id"].as_str().unwrap().to_owned();
    node.kill();
    let gone = tokio::time::timeout(Duration::from_secs(5), h.gone.recv()).await;
    let gone = gone.unwrap_or_else(|_| panic!("{transport}: the killed client was not noticed within 5 s"));
    let (nsp, sid, reason) = gone.expect("a disconnect");
    assert_eq!((nsp.as_str(), sid), ("/", id), "{transport}");
    // Shoal names it "transport close"; Node says "transport error" for a dropped poll
    assert!(
        matches!(reason, DisconnectReason::TransportClose | DisconnectReason::TransportError),
        "{transport}: {reason:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_process_killed_websocket() {
    bounded(20, "client_process_killed websocket", client_process_killed("websocket")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_process_killed_polling() {
    bounded(20, "client_process_killed polling", client_process_killed("polling")).await;
}

fn fast_pings() -> SocketIoBuilder {
    SocketIo::builder().ping_interval(Duration::from_millis(300)).ping_timeout(Duration::from_millis(200))
}

/// The client process is frozen (SIGSTOP): its pongs stop, the server times it out; once
/// continued, the client notices and reconnects by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_when_the_client_freezes() {
    bounded(60, "ping_timeout_when_the_client_freezes", async {
        for transport in TRANSPORTS {
            let mut h = Harness::start(fast_pings()).await;
            let mut node = NodeScenario::spawn("stoppable", &h.server().url(), json!({"transports": [transport]}));
            let id = node.event("connected").await["id"].as_str().unwrap().to_owned();
            assert_eq!(recv(&mut h.connects, Duration::from_secs(5), "connect").await, id);
            node.signal("STOP");
            let stopped = Instant::now();
            let gone = h.gone().await;
            let waited = stopped.elapsed();
            node.signal("CONT");
            assert_eq!(gone, ("/".into(), id.clone(), DisconnectReason::PingTimeout), "{transport}");
            // at most one interval until the ping, then the timeout (plus scheduling slack)
            assert!(waited < Duration::from_millis(300 + 200 + 700), "{transport}: took {waited:?}");
            let r = node.result().await;
            let reason = r["reason"].as_str().unwrap();
            // what the client notices first once continued: its own ping timer, the closed
            // WebSocket, or (polling) the server refusing the next poll of the dead session
            assert!(
                ["ping timeout", "transport close", "transport error"].contains(&reason),
                "{transport}: the client reports {reason:?}"
            );
            let again = recv(&mut h.connects, Duration::from_secs(5), "reconnect").await;
            assert_eq!(r["reconnectedId"], again.as_str(), "{transport}");
            assert_ne!(again, id);
            h.stop().await;
        }
    })
    .await;
}

/// A raw WebSocket client that receives pings and never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_raw_client_never_answers() {
    bounded(20, "ping_timeout_raw_client", async {
        let mut h = Harness::start(fast_pings()).await;
        let started = Instant::now();
        let (mut ws, sid) = RawWs::connect_root(h.server().addr, None).await;
        let (texts, _close) = ws.recv_until_closed().await;
        let lasted = started.elapsed();
        assert!(texts.iter().any(|t| t == "2"), "the server pinged: {texts:?}");
        assert_eq!(h.gone().await, ("/".into(), sid, DisconnectReason::PingTimeout));
        assert!(lasted >= Duration::from_millis(450), "closed after {lasted:?}, before interval + timeout");
        h.stop().await;
    })
    .await;
}

/// A malformed-input case: what it is, the text frames, the binary frames, and the
/// reason the server gives (named as Node names it).
type Malformed = (&'static str, &'static [&'static str], &'static [&'static [u8]], DisconnectReason);

/// Malformed input from a raw client closes its connection. As in Node, an Engine.IO
/// packet that does not parse is a "parse error"; a Socket.IO packet that does not
/// decode makes the server close the connection ("forced close"); a valid packet that is
/// not allowed (a namespace not joined) is "forced server close".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_close_the_connection() {
    use DisconnectReason::{ForcedClose, ForcedServerClose, ParseError};
    bounded(30, "malformed_packets", async {
        let mut h = Harness::start(SocketIo::builder()).await;
        let cases: [Malformed; 7] = [
            ("unknown Socket.IO packet type", &["49[\"x\"]"], &[], ForcedClose),
            ("truncated JSON", &["42[\"event\",{\"a\":"], &[], ForcedClose),
            ("unknown Engine.IO packet type", &["9hello"], &[], ParseError),
            (
                "text where an attachment was announced",
                &["451-[\"x\",{\"_placeholder\":true,\"num\":0}]", "42[\"y\"]"],
                &[],
                ForcedClose,
            ),
            (
                "placeholder beyond the attachments",
                &["451-[\"x\",{\"_placeholder\":true,\"num\":3}]"],
                &[b"\x01"],
                ForcedClose,
            ),
            ("attachment nobody announced", &[], &[b"\x01\x02"], ForcedClose),
            ("event for a namespace not joined", &["42/nope,[\"x\"]"], &[], ForcedServerClose),
        ];
        for (what, texts, binaries, reason) in cases {
            let (mut ws, sid) = RawWs::connect_root(h.server().addr, None).await;
            for frame in texts {
                ws.send_text(frame).await;
            }
            for frame in binaries {
                ws.send_binary(frame).await;
            }
            let (texts, _) = ws.recv_until_closed().await;
            assert!(texts.iter().all(|t| t == "2"), "{what}: nothing but pings before the close: {texts:?}");
            assert_eq!(h.gone().await, ("/".into(), sid, reason), "{what}");
        }
        h.stop().await;
    })
    .await;
}

/// The server shuts down: what was queued is flushed first (the client gets the last
/// message before the disconnect), the server sees "server shutting down", the client
/// loses its transport, and it tries to reconnect.
async fn server_shutdown(transport: &str, builder: SocketIoBuilder, last_words: bool) {
    let mut h = Harness::start(builder).await;
    let mut node = NodeScenario::spawn("shutdown", &h.server().url(), json!({"transports": [transport]}));
    let id = node.event("connected").await["id"].as_str().unwrap().to_owned();
    if last_words {
        h.server().io.emit("last-words", "goodbye").unwrap();
    }
    let started = Instant::now();
    h.stop().await;
    assert_eq!(h.gone().await, ("/".into(), id, DisconnectReason::ServerShuttingDown), "{transport}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{transport}: the shutdown took {took:?}");
    let r = node.result().await;
    if last_words {
        assert_eq!(r["messages"], json!(["goodbye"]), "{transport}: flushed and delivered before the disconnect");
    }
    // a polling client whose next poll finds the listener closed reports "transport error"
    // (as with Node, depending on whether a poll was held when the server closed)
    let reason = r["reason"].as_str().unwrap();
    let expected: &[&str] =
        if transport == "polling" { &["transport close", "transport error"] } else { &["transport close"] };
    assert!(expected.contains(&reason), "{transport}: {reason}");
    assert_eq!(r["attempt"], 1, "{transport}: the client tries to reconnect");
    assert!(r["reconnectError"].is_string(), "{transport}: nothing listens any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_websocket() {
    bounded(30, "server_shutdown websocket", server_shutdown("websocket", SocketIo::builder(), true)).await;
}

/// Polling without a message in flight. A short ping timeout bounds how long a graceful
/// close may wait for a poll (see `server_shutdown_polling_flushes_the_last_message`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_polling() {
    let builder = SocketIo::builder().ping_timeout(Duration::from_secs(1));
    bounded(30, "server_shutdown polling", server_shutdown("polling", builder, false)).await;
}

/// The message queued at shutdown reaches a polling client: it comes in a payload of its
/// own, the close packet in the next one, and the listener still accepts that poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_polling_flushes_the_last_message() {
    bounded(40, "server_shutdown polling last message", server_shutdown("polling", SocketIo::builder(), true)).await;
}
