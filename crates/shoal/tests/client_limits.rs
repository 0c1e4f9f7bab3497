//! Incoming size limits with the official JavaScript client: a message over
//! `max_payload` cuts the client that sent it (over WebSocket and over polling) while the
//! other clients keep exchanging messages normally.

mod common;
mod js;

use std::time::Duration;

use common::TestServer;
use js::{NodeScenario, assert_quiet, bounded, recv_n};
use serde_json::{Value, json};
use shoal::{DisconnectReason, Event, Socket, SocketIo};
use tokio::sync::mpsc;

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// The oversized event reached a handler (it must not).
    Big(String, u64),
    Echo(u64, u64),
    Gone(String, u64, DisconnectReason),
}

/// `v` in a canonical order, to compare what arrived in any order.
fn sorted(mut v: Vec<Seen>) -> Vec<Seen> {
    v.sort_by_key(|s| format!("{s:?}"));
    v
}

fn who(socket: &Socket) -> (String, u64) {
    let auth = socket.handshake().auth();
    (auth["role"].as_str().unwrap().to_owned(), auth["i"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_cuts_only_its_sender() {
    bounded(40, "oversized_message_cuts_only_its_sender", async {
        const ROUNDS: u64 = 10;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = TestServer::start(SocketIo::builder().max_payload(10_000), |io| {
            io.of("/").on_connect(move |socket: Socket| {
                let tx = tx.clone();
                async move {
                    let t = tx.clone();
                    socket.on("big", move |socket: Socket, _ev: Event| {
                        let (role, i) = who(&socket);
                        let _ = t.send(Seen::Big(role, i));
                        async {}
                    });
                    let t = tx.clone();
                    socket.on("echo", move |_socket: Socket, mut ev: Event| {
                        let t = t.clone();
                        async move {
                            let data: Value = ev.data().unwrap();
                            let _ = t.send(Seen::Echo(data["i"].as_u64().unwrap(), data["round"].as_u64().unwrap()));
                            ev.ack(&data).unwrap();
                        }
                    });
                    let t = tx.clone();
                    socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
                        let (role, i) = who(&socket);
                        let _ = t.send(Seen::Gone(role, i, reason));
                        async {}
                    });
                }
            });
        })
        .await;
        let params = json!({
            "offenders": ["websocket", "polling"],
            "others": ["websocket", "polling", "websocket", "polling"],
            "size": 50_000,
            "rounds": ROUNDS,
        });
        let mut node = NodeScenario::spawn("oversized", &server.url(), params);
        let cut = node.event("offenders-gone").await;
        let gone = sorted(recv_n(&mut rx, 2, Duration::from_secs(5), "offenders cut").await);
        // the oversized message never reached a handler; the transport refused it
        assert_eq!(
            gone,
            vec![
                Seen::Gone("offender".into(), 0, DisconnectReason::TransportError),
                Seen::Gone("offender".into(), 1, DisconnectReason::TransportError),
            ]
        );
        // what the offenders saw: the WebSocket closed (1009); the polling one gets the close
        // packet on its held poll, or the 413 answer of its POST, whichever it reads first
        assert_eq!(cut["reasons"][0], "transport close", "websocket offender");
        let polling = cut["reasons"][1].as_str().unwrap();
        assert!(["transport close", "transport error"].contains(&polling), "polling offender: {polling}");
        node.event("echoed").await;
        // every echo of the other clients arrived, after the cut
        let echoes = sorted(recv_n(&mut rx, 4 * ROUNDS as usize, Duration::from_secs(5), "echoes").await);
        let want: Vec<Seen> = (0..4).flat_map(|i| (0..ROUNDS).map(move |r| Seen::Echo(i, r))).collect();
        assert_eq!(echoes, sorted(want));
        assert_eq!(server.io.of("/").socket_count(), 4);
        server.io.emit("news", "still here").unwrap();
        let r = node.result().await;
        assert_eq!(r["echoes"], json!([ROUNDS, ROUNDS, ROUNDS, ROUNDS]));
        assert_eq!(r["received"], json!(["still here", "still here", "still here", "still here"]));
        assert_eq!(r["stillConnected"], json!([true, true, true, true]));
        // then they leave normally
        let left = sorted(recv_n(&mut rx, 4, Duration::from_secs(5), "the others leave").await);
        let want: Vec<Seen> =
            (0..4).map(|i| Seen::Gone("other".into(), i, DisconnectReason::ClientNamespaceDisconnect)).collect();
        assert_eq!(left, want);
        assert_quiet(&mut rx, Duration::from_millis(50), "nothing else").await;
        server.stop().await;
    })
    .await;
}
