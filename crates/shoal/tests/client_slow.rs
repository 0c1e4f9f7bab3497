//! The slow-consumer policy next to official JavaScript clients. A raw client that stops
//! reading (a tiny receive buffer, then no reads at all) shares a room with Node clients
//! over WebSocket and polling, on a server whose send queues hold 64 packets:
//! - volatile packets it cannot take are dropped, and it stays connected;
//! - regular packets fill its queue and it is disconnected as a slow consumer;
//! - meanwhile the Node clients get every regular packet, in order.

mod common;
mod js;

use std::time::Duration;

use common::TestServer;
use js::{NodeScenario, RawWs, assert_quiet, bounded, recv};
use serde_json::json;
use shoal::{DisconnectReason, Socket, SocketIo};
use tokio::sync::mpsc;

/// (is a Node client, reason)
type Gone = (bool, DisconnectReason);

const QUEUE: usize = 64;
/// Messages go out in batches this size; then the test waits until every Node client has
/// answered a "sync" (its queue is drained), so only the stalled client can fill up.
const BATCH: usize = 16;
/// 8 KB per message: the stalled client's socket buffers fill after a few hundred.
const PAYLOAD: usize = 8 * 1024;

#[derive(serde::Serialize)]
struct Msg<'a> {
    n: u64,
    pad: &'a str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_cut_volatile_is_dropped_others_get_everything() {
    bounded(60, "slow consumer", async {
        let (tx, mut gone) = mpsc::unbounded_channel::<Gone>();
        let builder = SocketIo::builder().max_buffered_packets(QUEUE);
        let server = TestServer::start(builder, |io| {
            io.of("/").on_connect(move |socket: Socket| {
                let steady = socket.handshake().auth()["steady"] == true;
                socket.join("room");
                if steady {
                    socket.join("steady");
                }
                let tx = tx.clone();
                socket.on_disconnect(move |_s: Socket, reason: DisconnectReason| {
                    let _ = tx.send((steady, reason));
                    async {}
                });
                async {}
            });
        })
        .await;
        let ns = server.io.of("/");

        // the stalled client: connects, then never reads again
        let (stalled, stalled_sid) = RawWs::connect_root(server.addr, Some(4096)).await;
        let mut node = NodeScenario::spawn("steady", &server.url(), json!({"transports": ["websocket", "polling"]}));
        node.event("ready").await;
        assert_eq!(ns.socket_count(), 3);
        let pad = "p".repeat(PAYLOAD);
        let sync = |round: u64| {
            let ns = ns.clone();
            async move {
                let answers = ns
                    .to("steady")
                    .timeout(Duration::from_secs(10))
                    .emit_with_ack("sync", &round)
                    .await
                    .expect("the Node clients keep up");
                assert_eq!(answers.len(), 2);
            }
        };

        // 1. volatile: far more than the stalled client's buffers hold (16 MB); what it
        // cannot take is dropped, it is not disconnected
        let volatile: u64 = 2000;
        for n in 0..volatile {
            ns.to("room").volatile().emit("v", &Msg { n, pad: &pad }).unwrap();
            if n as usize % BATCH == BATCH - 1 {
                sync(n).await;
            }
        }
        assert!(ns.socket(&stalled_sid.parse().unwrap()).is_some_and(|s| s.connected()), "volatile never cuts");
        assert_quiet(&mut gone, Duration::from_millis(50), "nobody disconnected by volatile packets").await;

        // 2. regular packets: the stalled client's queue fills and it is cut, the others
        // keep receiving
        let mut sent: u64 = 0;
        let mut cut_after = None;
        while sent < 20_000 {
            for _ in 0..BATCH {
                ns.to("room").emit("m", &Msg { n: sent, pad: &pad }).unwrap();
                sent += 1;
            }
            sync(sent).await;
            if cut_after.is_none()
                && let Ok(g) = gone.try_recv()
            {
                assert_eq!(g, (false, DisconnectReason::SlowConsumer), "the stalled client, as a slow consumer");
                cut_after = Some(sent);
            }
            // keep going a while after the cut: the others must not notice
            if cut_after.is_some_and(|c| sent >= c + 10 * BATCH as u64) {
                break;
            }
        }
        let cut_after = cut_after.expect("the stalled client was never cut");
        assert!(ns.socket(&stalled_sid.parse().unwrap()).is_none());
        assert_eq!(ns.socket_count(), 2);

        ns.to("steady").emit("done", &()).unwrap();
        let r = node.result().await;
        for (i, s) in r["stats"].as_array().unwrap().iter().enumerate() {
            assert_eq!(s["m"], sent, "client {i} got every regular message");
            assert_eq!(s["mOutOfOrder"], 0, "client {i}");
            assert_eq!(s["vOutOfOrder"], 0, "client {i}");
            assert!(s["v"].as_u64().unwrap() >= 1, "client {i} got volatile messages");
        }
        assert_eq!(r["disconnects"], json!([null, null]), "the Node clients were never disconnected");
        assert_eq!(r["connectedAtEnd"], json!([true, true]));

        // the stalled client only ever got a small part, then its connection was closed
        let mut stalled = stalled;
        let (texts, _) = bounded(20, "drain the stalled client", stalled.recv_until_closed()).await;
        let got_regular = texts.iter().filter(|t| t.starts_with("42[\"m\"")).count() as u64;
        let got_volatile = texts.iter().filter(|t| t.starts_with("42[\"v\"")).count() as u64;
        assert!(got_volatile < volatile, "volatile packets were dropped ({got_volatile} of {volatile} arrived)");
        assert!(got_regular < cut_after, "it was cut with packets undelivered ({got_regular} of {cut_after})");

        // the Node clients leave normally
        for _ in 0..2 {
            assert_eq!(
                recv(&mut gone, Duration::from_secs(5), "steady leaves").await,
                (true, DisconnectReason::ClientNamespaceDisconnect)
            );
        }
        server.stop().await;
    })
    .await;
}
