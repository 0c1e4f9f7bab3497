//! Namespaces with the official JavaScript client: a custom namespace beside the main
//! one, an unknown namespace refused, dynamic namespaces sharing one connect handler, and
//! several namespaces multiplexed on one connection.

mod common;
mod js;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;
use js::{NodeScenario, bounded, recv, recv_n};
use serde_json::json;
use shoal::{DisconnectReason, Event, NamespaceMatcher, Socket, SocketIo};
use tokio::sync::mpsc;

/// (namespace, socket id, connection id)
type Connected = (String, String, String);

fn report_connects(socket: &Socket, tx: &mpsc::UnboundedSender<Connected>) {
    let _ = tx.send((socket.ns().to_owned(), socket.id().to_string(), socket.conn_id().to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_namespace_beside_the_main_one() {
    bounded(30, "custom_namespace_beside_the_main_one", async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = TestServer::start(SocketIo::builder(), |io| {
            for name in ["/", "/chat"] {
                let tx = tx.clone();
                io.of(name).on_connect(move |socket: Socket| {
                    report_connects(&socket, &tx);
                    async move {
                        socket.emit("welcome", &json!({"ns": socket.ns()})).unwrap();
                        socket.on("echo", |socket: Socket, mut ev: Event| async move {
                            let data: serde_json::Value = ev.data().unwrap();
                            ev.ack(&json!({"ns": socket.ns(), "data": data})).unwrap();
                        });
                    }
                });
            }
        })
        .await;
        let mut node = NodeScenario::spawn("custom-ns", &server.url(), json!({}));
        node.event("ready").await;
        let io = &server.io;
        io.emit("m", "root").unwrap();
        io.of("/chat").emit("m", "chat").unwrap();
        io.of("/chat").to("nobody").emit("m", "nobody").unwrap();
        io.of("/").emit("m", "root-again").unwrap();
        io.of("/chat").emit("done", &()).unwrap();
        io.emit("done", &()).unwrap();
        let r = node.result().await;
        assert_eq!(r["welcome"], json!({"ns": "/chat"}));
        assert_eq!(r["echo"], json!({"ns": "/chat", "data": {"in": "chat"}}));
        assert_eq!(r["counts"], json!({"chat": {"chat": 1}, "root": {"root": 1, "root-again": 1}}));
        let mut connects = recv_n(&mut rx, 2, Duration::from_secs(5), "connects").await;
        connects.sort();
        assert_eq!(connects[0].0, "/");
        assert_eq!(connects[1].0, "/chat");
        assert_eq!(connects[0].2, connects[1].2, "one connection for both namespaces");
        assert_eq!(connects[0].2, r["engineId"], "the Engine.IO id the client got");
        assert_ne!(connects[0].1, connects[1].1, "one socket id per namespace");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_is_refused_and_the_connection_survives() {
    bounded(30, "unknown_namespace", async {
        let server = TestServer::start(SocketIo::builder(), |io| {
            io.of("/").on_connect(|socket: Socket| async move {
                socket.on("echo", |_s: Socket, mut ev: Event| async move {
                    let args = ev.args().clone();
                    ev.ack_args(args).unwrap();
                });
            });
        })
        .await;
        let node = NodeScenario::spawn("unknown-ns", &server.url(), json!({"bad": "/does-not-exist"}));
        let r = node.result().await;
        assert_eq!(r, json!({"message": "Invalid namespace", "data": null, "active": false, "echo": "still here"}));
        assert_eq!(server.io.of("/").socket_count(), 0);
        assert!(
            server.io.namespaces().iter().all(|n| n.name() != "/does-not-exist"),
            "no namespace was created for the unknown name"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_namespaces_share_one_connect_handler() {
    bounded(30, "dynamic_namespaces", async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = TestServer::start(SocketIo::builder(), |io| {
            io.of_dynamic(NamespaceMatcher::Pattern("/tenant-*".into())).on_connect(move |socket: Socket| {
                report_connects(&socket, &tx);
                async move {
                    let tenant = socket.ns().trim_start_matches("/tenant-").to_owned();
                    socket.emit("welcome", &json!({"ns": socket.ns(), "tenant": tenant})).unwrap();
                }
            });
        })
        .await;
        let good = ["/tenant-a", "/tenant-42", "/tenant-a", "/tenant-"];
        let bad = ["/tenant-a/x", "/other", "/tenant"];
        let mut node = NodeScenario::spawn("dynamic-ns", &server.url(), json!({"good": good, "bad": bad}));
        node.event("ready").await;
        let mut connects = recv_n(&mut rx, good.len(), Duration::from_secs(5), "connects").await;
        connects.sort();
        let names: Vec<&str> = connects.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, ["/tenant-", "/tenant-42", "/tenant-a", "/tenant-a"]);

        // each child is a namespace of its own
        let io = &server.io;
        assert_eq!(io.of("/tenant-a").socket_count(), 2);
        assert_eq!(io.of("/tenant-42").socket_count(), 1);
        io.of("/tenant-a").emit("m", "for-a").unwrap();
        io.of("/tenant-42").emit("m", "for-42").unwrap();
        io.emit("m", "root").unwrap();
        for nsp in ["/tenant-a", "/tenant-42", "/tenant-"] {
            io.of(nsp).emit("done", &()).unwrap();
        }
        let r = node.result().await;
        assert_eq!(
            r["welcomes"],
            json!([
                {"ns": "/tenant-a", "tenant": "a"},
                {"ns": "/tenant-42", "tenant": "42"},
                {"ns": "/tenant-a", "tenant": "a"},
                {"ns": "/tenant-", "tenant": ""},
            ])
        );
        assert_eq!(r["counts"], json!([{"for-a": 1}, {"for-42": 1}, {"for-a": 1}, {}]));
        assert_eq!(
            r["refused"],
            json!([
                {"nsp": "/tenant-a/x", "message": "Invalid namespace"},
                {"nsp": "/other", "message": "Invalid namespace"},
                {"nsp": "/tenant", "message": "Invalid namespace"},
            ])
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_multiplexed_on_one_connection() {
    bounded(30, "namespaces_multiplexed_on_one_connection", async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (dtx, mut drx) = mpsc::unbounded_channel();
        let server = TestServer::start(SocketIo::builder(), |io| {
            for name in ["/", "/a", "/b"] {
                let tx = tx.clone();
                let dtx = dtx.clone();
                io.of(name).on_connect(move |socket: Socket| {
                    report_connects(&socket, &tx);
                    let dtx = dtx.clone();
                    async move {
                        socket.on("whoami", |socket: Socket, mut ev: Event| async move {
                            ev.ack(&json!({"ns": socket.ns(), "id": socket.id().to_string()})).unwrap();
                        });
                        socket.on("kick-me", |socket: Socket, _ev: Event| async move { socket.disconnect() });
                        socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
                            let _ = dtx.send((socket.ns().to_owned(), reason));
                            async {}
                        });
                    }
                });
            }
        })
        .await;
        let mut node = NodeScenario::spawn("multiplex", &server.url(), json!({}));
        node.event("root-only").await;
        let mut connects = recv_n(&mut rx, 3, Duration::from_secs(5), "connects").await;
        connects.sort();
        let conn = connects[0].2.clone();
        assert!(connects.iter().all(|c| c.2 == conn), "one connection: {connects:?}");
        let mut gone = recv_n(&mut drx, 2, Duration::from_secs(5), "disconnects").await;
        gone.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            gone,
            vec![
                ("/a".to_owned(), DisconnectReason::ServerNamespaceDisconnect),
                ("/b".to_owned(), DisconnectReason::ClientNamespaceDisconnect),
            ]
        );
        let io = &server.io;
        assert_eq!((io.of("/").socket_count(), io.of("/a").socket_count(), io.of("/b").socket_count()), (1, 0, 0));
        assert_eq!(io.connection_count(), 1);
        io.emit("bye", &"only root is left").unwrap();
        let r = node.result().await;
        assert_eq!(r["engineId"], conn.as_str());
        for (nsp, id, _) in &connects {
            assert_eq!(&r["ids"][nsp], id, "socket of {nsp}");
            assert_eq!(r["who"][nsp], json!({"ns": nsp, "id": id}));
        }
        assert_eq!(r["aReason"], "io server disconnect");
        assert_eq!(r["aActive"], false, "a server disconnect is final: no reconnection");
        assert_eq!(r["bStill"]["ns"], "/b");
        assert_eq!(r["rootStill"]["ns"], "/");
        assert_eq!(r["bye"], "only root is left");
        assert_eq!(
            recv(&mut drx, Duration::from_secs(5), "root disconnect").await,
            ("/".to_owned(), DisconnectReason::ClientNamespaceDisconnect)
        );
        server.stop().await;
    })
    .await;
}

/// An adapter that takes a while to start (as a remote adapter subscribing its channels
/// does), recording which namespaces' adapters have started.
struct SlowStart {
    local: Arc<dyn shoal_core::LocalNamespace>,
    started: Arc<Mutex<HashSet<String>>>,
}

impl shoal_core::Adapter for SlowStart {
    fn local(&self) -> &Arc<dyn shoal_core::LocalNamespace> {
        &self.local
    }

    fn init(&self) -> shoal_core::BoxFuture<'_, Result<(), shoal_core::AdapterError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.started.lock().unwrap().insert(self.local.name().to_owned());
            Ok(())
        })
    }
}

struct SlowStartFactory(Arc<Mutex<HashSet<String>>>);

impl shoal_core::AdapterFactory for SlowStartFactory {
    fn create(&self, local: Arc<dyn shoal_core::LocalNamespace>) -> Arc<dyn shoal_core::Adapter> {
        Arc::new(SlowStart { local, started: self.0.clone() })
    }
}

/// The first socket of a new (dynamic) namespace is connected only once the namespace's
/// adapter has started, so that what other nodes broadcast reaches it from its first
/// moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_socket_of_a_namespace_waits_for_its_adapter() {
    bounded(30, "first_socket_waits_for_the_adapter", async {
        let started: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let factory = Arc::new(SlowStartFactory(started.clone()));
        let server = TestServer::start(SocketIo::builder().adapter(factory), |io| {
            let started = started.clone();
            io.of_dynamic(NamespaceMatcher::Pattern("/tenant-*".into())).on_connect(move |socket: Socket| {
                let adapter_started = started.lock().unwrap().contains(socket.ns());
                let _ = tx.send((socket.ns().to_owned(), adapter_started));
                async move {
                    let tenant = socket.ns().trim_start_matches("/tenant-").to_owned();
                    socket.emit("welcome", &json!({"ns": socket.ns(), "tenant": tenant})).unwrap();
                }
            });
        })
        .await;
        let good = ["/tenant-slow", "/tenant-slow"];
        let bad: [&str; 0] = [];
        let mut node = NodeScenario::spawn("dynamic-ns", &server.url(), json!({"good": good, "bad": bad}));
        node.event("ready").await;
        let connects = recv_n(&mut rx, 2, Duration::from_secs(10), "connects").await;
        assert_eq!(connects, vec![("/tenant-slow".to_owned(), true), ("/tenant-slow".to_owned(), true)]);
        server.io.of("/tenant-slow").emit("done", &()).unwrap();
        let _ = node.result().await;
        server.stop().await;
    })
    .await;
}
