//! Load with the official JavaScript client: hundreds of concurrent clients (WebSocket
//! and polling) each doing an acked echo and answering an acked broadcast, and a burst of
//! 1000 messages to 200 clients of one room at default settings, delivered completely
//! and in order.

mod common;
mod js;

use std::collections::BTreeSet;
use std::time::Duration;

use common::TestServer;
use js::{NodeScenario, bounded, recv_n};
use serde_json::{Value, json};
use shoal::{Event, Socket, SocketIo};
use tokio::sync::mpsc;

/// 300 clients, one Node process; every third one uses polling. About 500 sockets on the
/// client side and as many on the server (polling clients open a connection per request),
/// far below the open-file limit.
const CLIENTS: usize = 300;
const POLLING_EVERY: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_concurrent_clients() {
    bounded(90, "three_hundred_concurrent_clients", async {
        let (tx, mut echoes) = mpsc::unbounded_channel::<u64>();
        let server = TestServer::start(SocketIo::builder(), |io| {
            io.of("/").on_connect(move |socket: Socket| {
                let tx = tx.clone();
                async move {
                    socket.on("echo", move |_s: Socket, mut ev: Event| {
                        let tx = tx.clone();
                        async move {
                            let data: Value = ev.data().unwrap();
                            let _ = tx.send(data["i"].as_u64().unwrap());
                            ev.ack(&data).unwrap();
                        }
                    });
                }
            });
        })
        .await;
        let mut node = NodeScenario::spawn(
            "many-clients",
            &server.url(),
            json!({"n": CLIENTS, "pollingEvery": POLLING_EVERY, "timeoutMs": 80000}),
        );
        let echoed = node.event_within("echoed", Duration::from_secs(60)).await;
        let ids: Vec<String> = serde_json::from_value(echoed["ids"].clone()).unwrap();
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), CLIENTS, "distinct socket ids");
        let got: BTreeSet<u64> =
            recv_n(&mut echoes, CLIENTS, Duration::from_secs(10), "echoes").await.into_iter().collect();
        assert_eq!(got, (0..CLIENTS as u64).collect(), "one echo per client");
        let ns = server.io.of("/");
        assert_eq!(ns.socket_count(), CLIENTS);
        assert_eq!(server.io.connection_count(), CLIENTS);

        // a broadcast every client acknowledges
        let answers = ns
            .timeout(Duration::from_secs(20))
            .emit_with_ack("news", &"for everyone")
            .await
            .expect("every client answers");
        assert_eq!(answers.len(), CLIENTS);
        let mut seen = BTreeSet::new();
        for a in &answers {
            let v = &a.args.values[0];
            let i = v["i"].as_u64().unwrap() as usize;
            assert_eq!(v["got"], "for everyone");
            assert_eq!(a.socket.as_deref(), Some(ids[i].as_str()), "client {i} answered from its own socket");
            assert!(seen.insert(i), "client {i} answered twice");
        }
        ns.emit("done", &()).unwrap();
        let r = node.result_within(Duration::from_secs(30)).await;
        assert_eq!(r["echoed"], CLIENTS);
        assert_eq!(r["news"], json!(vec![1; CLIENTS]), "each client got the broadcast once");
        let polling = (0..CLIENTS).filter(|i| i % POLLING_EVERY == POLLING_EVERY - 1).count();
        assert_eq!(r["transports"], json!({"websocket": CLIENTS - polling, "polling": polling}));
        server.stop().await;
    })
    .await;
}

const BURST_CLIENTS: usize = 200;
const BURST: u64 = 1000;

/// 1000 messages emitted back to back to a room of 200 clients, default settings (the
/// send queue holds 8192 packets): every client gets all of them, in order. A few clients
/// use polling (each poll opens a connection; keep their number modest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_1000_messages_to_200_clients() {
    bounded(90, "burst_of_1000_messages_to_200_clients", async {
        let server = TestServer::start(SocketIo::builder(), |io| {
            io.of("/").on_connect(|socket: Socket| async move { socket.join("burst") });
        })
        .await;
        let mut node = NodeScenario::spawn(
            "burst",
            &server.url(),
            json!({"n": BURST_CLIENTS, "pollingEvery": 20, "timeoutMs": 80000}),
        );
        node.event_within("ready", Duration::from_secs(60)).await;
        let ns = server.io.of("/");
        assert_eq!(ns.socket_count(), BURST_CLIENTS);
        for k in 0..BURST {
            ns.to("burst").emit("seq", &k).unwrap();
        }
        ns.to("burst").emit("done", &()).unwrap();
        let r = node.result_within(Duration::from_secs(60)).await;
        let stats = r.as_array().expect("one entry per client");
        assert_eq!(stats.len(), BURST_CLIENTS);
        for (i, s) in stats.iter().enumerate() {
            assert_eq!(s, &json!({"received": BURST, "outOfOrder": 0}), "client {i}");
        }
        server.stop().await;
    })
    .await;
}
