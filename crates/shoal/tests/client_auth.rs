//! Handshake data and namespace middlewares, seen from the official JavaScript client:
//! `auth` and query reach the server, a refusal arrives as `connect_error` with its
//! message and data, middlewares pass data to the handlers, async middlewares wait.

mod common;
mod js;

use std::time::{Duration, Instant};

use common::TestServer;
use js::{NodeScenario, assert_quiet, bounded, recv};
use serde_json::{Value, json};
use shoal::{ConnectError, Event, Socket, SocketIo};
use tokio::sync::mpsc;

/// `/`: two middlewares (the first checks the token and sets data, the second waits,
/// then adds to the data), a connect handler reporting the handshake.
fn setup_root(io: &SocketIo, connects: mpsc::UnboundedSender<(String, Value, Option<String>, Value)>) {
    io.of("/")
        .use_middleware(|socket: Socket| async move {
            let auth = socket.handshake().auth().clone();
            if auth["token"] != "good" {
                return Err(ConnectError::with_data(
                    "not authorized",
                    json!({"code": 4001, "hint": "use a valid token", "got": auth["token"], "nested": {"retry": false}}),
                ));
            }
            socket.set_data(&json!({"user": auth["user"], "checkedBy": ["mw1"]})).unwrap();
            Ok(())
        })
        .use_middleware(|socket: Socket| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut data = socket.data_value();
            data["checkedBy"].as_array_mut().expect("set by the first middleware").push(json!("mw2"));
            socket.set_data(&data).unwrap();
            Ok(())
        })
        .on_connect(move |socket: Socket| {
            let connects = connects.clone();
            async move {
                let hs = socket.handshake();
                let _ = connects.send((socket.id().to_string(), hs.auth().clone(), hs.query_param("room"), socket.data_value()));
                socket
                    .emit("hello", &json!({"auth": hs.auth(), "room": hs.query_param("room"), "data": socket.data_value()}))
                    .unwrap();
                socket.on("whoami", |socket: Socket, mut ev: Event| async move {
                    ev.ack(&socket.data_value()).unwrap();
                });
            }
        });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_auth_and_query_reach_the_server() {
    bounded(30, "handshake_auth_and_query_reach_the_server", async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = TestServer::start(SocketIo::builder(), |io| setup_root(io, tx)).await;
        let auth = json!({"token": "good", "user": "ana", "nested": {"list": [1, 2.5, null, "ü"], "flag": true}});
        let node = NodeScenario::spawn("auth", &server.url(), json!({"auth": auth, "query": {"room": "blue"}}));
        let r = node.result().await;

        let (sid, seen_auth, room, data) = recv(&mut rx, Duration::from_secs(5), "connect").await;
        assert_eq!(sid, r["id"], "the socket id the client got is the server's");
        assert_eq!(seen_auth, auth, "the CONNECT auth payload, unchanged");
        assert_eq!(room.as_deref(), Some("blue"), "the handshake query");
        assert_eq!(data, json!({"user": "ana", "checkedBy": ["mw1", "mw2"]}));
        // the client saw the same from its side
        assert_eq!(
            r["hello"],
            json!({"auth": auth, "room": "blue", "data": {"user": "ana", "checkedBy": ["mw1", "mw2"]}})
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_refusal_is_a_connect_error_with_data() {
    bounded(30, "middleware_refusal_is_a_connect_error_with_data", async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = TestServer::start(SocketIo::builder(), |io| setup_root(io, tx)).await;
        let node = NodeScenario::spawn(
            "auth-refused",
            &server.url(),
            json!({"badAuth": {"token": "forged", "user": "mallory"}, "goodAuth": {"token": "good", "user": "bob"}}),
        );
        let r = node.result().await;
        assert_eq!(
            r["error"],
            json!({
                "message": "not authorized",
                "data": {"code": 4001, "hint": "use a valid token", "got": "forged", "nested": {"retry": false}},
                "isError": true,
            })
        );
        // refused by a middleware: the client does not retry on its own
        assert_eq!(r["afterRefusal"], json!({"connected": false, "active": false}));
        // only the accepted client reached the connect handler, with its middleware data
        let (sid, auth, _, data) = recv(&mut rx, Duration::from_secs(5), "connect").await;
        assert_eq!(sid, r["accepted"]["id"]);
        assert_eq!(auth["user"], "bob");
        assert_eq!(data, json!({"user": "bob", "checkedBy": ["mw1", "mw2"]}));
        assert_eq!(r["accepted"]["whoami"], data, "the handler sees what the middlewares set");
        assert_quiet(&mut rx, Duration::from_millis(100), "no other connection").await;
        server.stop().await;
    })
    .await;
}

/// Middlewares that await before deciding; two namespaces on one connection connect in
/// parallel, one accepted and one refused after their waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_middlewares_accept_and_refuse_after_waiting() {
    bounded(30, "async_middlewares_accept_and_refuse_after_waiting", async {
        let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, Duration)>();
        let server = TestServer::start(SocketIo::builder(), |io| {
            let t = tx.clone();
            io.of("/slow")
                .use_middleware(move |_socket: Socket| {
                    let t = t.clone();
                    async move {
                        let start = Instant::now();
                        tokio::time::sleep(Duration::from_millis(40)).await;
                        let _ = t.send(("slow middleware done", start.elapsed()));
                        Ok(())
                    }
                })
                .on_connect({
                    let t = tx.clone();
                    move |socket: Socket| {
                        let _ = t.send(("slow connected", Duration::ZERO));
                        async move {
                            socket.on("early", |_s: Socket, mut ev: Event| async move {
                                let text: String = ev.data().unwrap();
                                ev.ack(&format!("handled: {text}")).unwrap();
                            });
                        }
                    }
                });
            let t = tx.clone();
            io.of("/slow-refuse").use_middleware(move |_socket: Socket| {
                let t = t.clone();
                async move {
                    let start = Instant::now();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = t.send(("refusing middleware done", start.elapsed()));
                    Err(ConnectError::new("come back later"))
                }
            });
            io.of("/slow-refuse").on_connect({
                let t = tx.clone();
                move |_socket: Socket| {
                    let _ = t.send(("refused namespace connected!", Duration::ZERO));
                    async {}
                }
            });
        })
        .await;
        let node = NodeScenario::spawn("slow-middleware", &server.url(), json!({}));
        let r = node.result().await;
        assert_eq!(r["refused"], json!({"message": "come back later", "data": null}));
        assert_eq!(r["early"], "handled: sent before connect", "an emit buffered before connect is handled");
        assert_eq!(r["now"], "handled: sent after connect");

        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(recv(&mut rx, Duration::from_secs(5), "middleware progress").await);
        }
        let names: Vec<&str> = seen.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"refusing middleware done"), "{names:?}");
        let done = names.iter().position(|n| *n == "slow middleware done").expect("slow middleware ran");
        let connected = names.iter().position(|n| *n == "slow connected").expect("slow namespace connected");
        assert!(done < connected, "the socket connects only after its middleware finished: {names:?}");
        for (name, waited) in &seen {
            match *name {
                "slow middleware done" => assert!(*waited >= Duration::from_millis(40)),
                "refusing middleware done" => assert!(*waited >= Duration::from_millis(20)),
                _ => {}
            }
        }
        assert_quiet(&mut rx, Duration::from_millis(100), "the refused namespace never connects").await;
        server.stop().await;
    })
    .await;
}
