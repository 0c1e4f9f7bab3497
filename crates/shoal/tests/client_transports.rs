//! The official JavaScript client over each transport: polling only, WebSocket only, and
//! the default polling start upgraded to WebSocket, with messages both ways before and
//! after the upgrade.

mod common;
mod js;

use std::time::Duration;

use common::TestServer;
use js::{NodeScenario, bounded, recv};
use serde_json::{Value, json};
use shoal::{DisconnectReason, Event, Socket, SocketIo, TransportKind};
use tokio::sync::mpsc;

/// What the server saw: (event, transport at that moment) and the disconnect reason.
#[derive(Debug, PartialEq)]
enum Seen {
    Connect(String, TransportKind),
    Event(String, Value, TransportKind),
    Disconnect(String, DisconnectReason),
}

fn echo_server(io: &SocketIo, tx: mpsc::UnboundedSender<Seen>) {
    io.of("/").on_connect(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Seen::Connect(socket.id().to_string(), socket.transport()));
            let _ = socket
                .emit("welcome", &json!({"id": socket.id().to_string(), "transport": socket.transport().as_str()}));
            let t = tx.clone();
            socket.on("echo", move |socket: Socket, mut ev: Event| {
                let t = t.clone();
                async move {
                    let data: Value = ev.data().unwrap();
                    if data["phase"] != "burst" {
                        let _ = t.send(Seen::Event("echo".into(), data.clone(), socket.transport()));
                    }
                    ev.ack(&json!({"got": data, "serverTransport": socket.transport().as_str()})).unwrap();
                }
            });
            socket.on("push-me", |socket: Socket, ev: Event| async move {
                let data: Value = ev.data().unwrap();
                socket
                    .emit("pushed", &json!({"n": data["n"], "serverTransport": socket.transport().as_str()}))
                    .unwrap();
            });
            let t = tx.clone();
            socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
                let t = t.clone();
                async move {
                    let _ = t.send(Seen::Disconnect(socket.id().to_string(), reason));
                }
            });
        }
    });
}

/// Runs the `transport` scenario and returns its result and what the server saw, in order.
async fn run(params: Value) -> (Value, Vec<Seen>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = TestServer::start(SocketIo::builder(), |io| echo_server(io, tx)).await;
    let node = NodeScenario::spawn("transport", &server.url(), params);
    let result = node.result().await;
    let mut seen = Vec::new();
    loop {
        let s = recv(&mut rx, Duration::from_secs(5), "server-side events").await;
        let last = matches!(s, Seen::Disconnect(..));
        seen.push(s);
        if last {
            break;
        }
    }
    server.stop().await;
    (result, seen)
}

fn id_of(result: &Value) -> String {
    result["id"].as_str().expect("socket id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_only() {
    bounded(30, "polling_only", async {
        let (r, seen) = run(json!({"transports": ["polling"], "burst": 20})).await;
        assert_eq!(r["atConnect"], "polling");
        assert_eq!(r["final"], "polling", "a polling-only client never upgrades");
        assert_eq!(r["burst"], 20);
        assert_eq!(
            r["before"],
            json!({"got": {"phase": "before", "clientTransport": "polling"}, "serverTransport": "polling"})
        );
        assert_eq!(
            r["after"],
            json!({"got": {"phase": "after", "clientTransport": "polling"}, "serverTransport": "polling"})
        );
        assert_eq!(r["welcome"]["transport"], "polling");
        assert_eq!(r["pushed"], json!({"n": 42, "serverTransport": "polling"}));
        let id = id_of(&r);
        assert_eq!(
            seen,
            vec![
                Seen::Connect(id.clone(), TransportKind::Polling),
                Seen::Event(
                    "echo".into(),
                    json!({"phase": "before", "clientTransport": "polling"}),
                    TransportKind::Polling
                ),
                Seen::Event(
                    "echo".into(),
                    json!({"phase": "after", "clientTransport": "polling"}),
                    TransportKind::Polling
                ),
                Seen::Disconnect(id, DisconnectReason::ClientNamespaceDisconnect),
            ]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only() {
    bounded(30, "websocket_only", async {
        let (r, seen) = run(json!({"transports": ["websocket"], "burst": 20})).await;
        assert_eq!(r["atConnect"], "websocket");
        assert_eq!(r["final"], "websocket");
        assert_eq!(r["burst"], 20);
        assert_eq!(r["before"]["serverTransport"], "websocket");
        assert_eq!(r["after"]["serverTransport"], "websocket");
        assert_eq!(r["welcome"]["transport"], "websocket");
        assert_eq!(r["pushed"], json!({"n": 42, "serverTransport": "websocket"}));
        let id = id_of(&r);
        assert_eq!(
            seen,
            vec![
                Seen::Connect(id.clone(), TransportKind::WebSocket),
                Seen::Event(
                    "echo".into(),
                    json!({"phase": "before", "clientTransport": "websocket"}),
                    TransportKind::WebSocket
                ),
                Seen::Event(
                    "echo".into(),
                    json!({"phase": "after", "clientTransport": "websocket"}),
                    TransportKind::WebSocket
                ),
                Seen::Disconnect(id, DisconnectReason::ClientNamespaceDisconnect),
            ]
        );
    })
    .await;
}

/// Default transports, with the client's WebSocket probe held until it has exchanged
/// messages over polling: both sides see the switch at the exact point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_polling_then_upgrade() {
    bounded(30, "default_polling_then_upgrade", async {
        let (r, seen) = run(json!({"expectUpgrade": true, "gateUpgrade": true, "burst": 5})).await;
        // the client connects over polling and exchanges messages there...
        assert_eq!(r["atConnect"], "polling");
        assert_eq!(r["welcome"]["transport"], "polling");
        assert_eq!(r["burst"], 5);
        assert_eq!(
            r["before"],
            json!({"got": {"phase": "before", "clientTransport": "polling"}, "serverTransport": "polling"})
        );
        // ...then ends on WebSocket, where messages keep flowing both ways
        assert_eq!(r["upgraded"], true);
        assert_eq!(r["final"], "websocket");
        assert_eq!(
            r["after"],
            json!({"got": {"phase": "after", "clientTransport": "websocket"}, "serverTransport": "websocket"})
        );
        assert_eq!(r["pushed"], json!({"n": 42, "serverTransport": "websocket"}));
        let id = id_of(&r);
        assert_eq!(
            seen,
            vec![
                Seen::Connect(id.clone(), TransportKind::Polling),
                Seen::Event(
                    "echo".into(),
                    json!({"phase": "before", "clientTransport": "polling"}),
                    TransportKind::Polling
                ),
                Seen::Event(
                    "echo".into(),
                    json!({"phase": "after", "clientTransport": "websocket"}),
                    TransportKind::WebSocket
                ),
                Seen::Disconnect(id, DisconnectReason::ClientNamespaceDisconnect),
            ]
        );
    })
    .await;
}

/// Plain defaults, nothing held: the upgrade races the first messages (it may overtake
/// the namespace CONNECT), but the client always ends on WebSocket and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_transports_end_on_websocket() {
    bounded(30, "default_transports_end_on_websocket", async {
        let (r, seen) = run(json!({"expectUpgrade": true, "burst": 10})).await;
        assert_eq!(r["upgraded"], true);
        assert_eq!(r["final"], "websocket");
        assert_eq!(r["burst"], 10);
        assert_eq!(r["before"]["got"]["phase"], "before");
        assert_eq!(
            r["after"],
            json!({"got": {"phase": "after", "clientTransport": "websocket"}, "serverTransport": "websocket"})
        );
        assert_eq!(r["pushed"], json!({"n": 42, "serverTransport": "websocket"}));
        let id = id_of(&r);
        // the Engine.IO session always starts on polling: the namespace connects there
        assert_eq!(seen[0], Seen::Connect(id.clone(), TransportKind::Polling));
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(matches!(&seen[1], Seen::Event(_, v, _) if v["phase"] == "before"), "{seen:?}");
        assert_eq!(
            seen[2],
            Seen::Event(
                "echo".into(),
                json!({"phase": "after", "clientTransport": "websocket"}),
                TransportKind::WebSocket
            )
        );
        assert_eq!(seen[3], Seen::Disconnect(id, DisconnectReason::ClientNamespaceDisconnect));
    })
    .await;
}
