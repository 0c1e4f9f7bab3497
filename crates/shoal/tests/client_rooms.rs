//! Rooms and broadcasts across 50 official JavaScript clients (WebSocket and polling):
//! `to`, unions of rooms without duplicates, `except`, a socket's own broadcasts
//! excluding it, a socket-id room, volatile and namespace-wide emits. Every client counts
//! what it receives and the test checks the exact counts.

mod common;
mod js;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestServer;
use js::{NodeScenario, bounded, recv};
use serde_json::json;
use shoal::{Event, Sid, Socket, SocketIo};
use tokio::sync::mpsc;

const N: usize = 50;
/// Client i uses polling when i % 5 == 4 (10 of 50), WebSocket otherwise.
const POLLING_EVERY: usize = 5;
/// Client i leaves "temp" when i % 7 == 0.
const LEAVE_EVERY: usize = 7;

fn is_polling(i: usize) -> bool {
    i % POLLING_EVERY == POLLING_EVERY - 1
}

fn setup(io: &SocketIo, shouted: mpsc::UnboundedSender<String>) {
    io.of("/").on_connect(move |socket: Socket| {
        let shouted = shouted.clone();
        async move {
            let i = socket.handshake().auth()["i"].as_u64().unwrap();
            socket.join("all");
            socket.join(if i.is_multiple_of(2) { "even" } else { "odd" });
            socket.join(format!("mod3-{}", i % 3));
            socket.on("join", |socket: Socket, mut ev: Event| async move {
                let room: String = ev.data().unwrap();
                socket.join(room);
                ev.ack(&socket.rooms().len()).unwrap();
            });
            socket.on("leave", |socket: Socket, mut ev: Event| async move {
                let room: String = ev.data().unwrap();
                socket.leave(room.as_str());
                assert!(!socket.in_room(&room));
                ev.ack(&socket.rooms().len()).unwrap();
            });
            socket.on("shout", move |socket: Socket, ev: Event| {
                let shouted = shouted.clone();
                async move {
                    let from: String = ev.data().unwrap();
                    socket.broadcast().emit("m", "shout").unwrap();
                    let _ = shouted.send(from);
                }
            });
        }
    });
}

type Rule = Box<dyn Fn(usize) -> bool>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_broadcasts_across_fifty_clients() {
    bounded(60, "rooms_and_broadcasts_across_fifty_clients", async {
        let (tx, mut shouted) = mpsc::unbounded_channel();
        let server = TestServer::start(SocketIo::builder(), |io| setup(io, tx)).await;
        let mut node = NodeScenario::spawn(
            "rooms",
            &server.url(),
            json!({"n": N, "pollingEvery": POLLING_EVERY, "leaveEvery": LEAVE_EVERY, "timeoutMs": 40000}),
        );
        let ready = node.event("ready").await;
        let ids: Vec<String> = serde_json::from_value(ready["ids"].clone()).unwrap();
        assert_eq!(ids.len(), N);
        let ns = server.io.of("/");
        assert_eq!(ns.socket_count(), N);
        let socket = |i: usize| ns.socket(&ids[i].parse::<Sid>().unwrap()).expect("connected");
        for (i, _) in ids.iter().enumerate() {
            let s = socket(i);
            assert!(s.in_room("all") && s.in_room(&format!("dyn-{}", i % 5)));
            assert_eq!(s.in_room("temp"), i % LEAVE_EVERY != 0, "client {i} and room temp");
        }

        let mut expected: Vec<(&str, Rule)> = Vec::new();
        ns.to("even").emit("m", "even").unwrap();
        expected.push(("even", Box::new(|i| i % 2 == 0)));
        ns.to("mod3-0").to("odd").emit("m", "union").unwrap();
        expected.push(("union", Box::new(|i| i % 3 == 0 || i % 2 == 1)));
        ns.to("even").to("all").to("odd").emit("m", "union-overlapping").unwrap();
        expected.push(("union-overlapping", Box::new(|_| true)));
        ns.to("dyn-1").to_many(["dyn-3", "dyn-1"]).emit("m", "to-many").unwrap();
        expected.push(("to-many", Box::new(|i| i % 5 == 1 || i % 5 == 3)));
        ns.except("even").emit("m", "except-even").unwrap();
        expected.push(("except-even", Box::new(|i| i % 2 == 1)));
        ns.to("all").except("mod3-1").except("dyn-0").emit("m", "to-except").unwrap();
        expected.push(("to-except", Box::new(|i| i % 3 != 1 && i % 5 != 0)));
        ns.to("even").to("mod3-2").except("dyn-4").emit("m", "union-except").unwrap();
        expected.push(("union-except", Box::new(|i| (i % 2 == 0 || i % 3 == 2) && i % 5 != 4)));
        socket(0).broadcast().emit("m", "broadcast-from-0").unwrap();
        expected.push(("broadcast-from-0", Box::new(|i| i != 0)));
        socket(1).to("odd").emit("m", "odd-from-1").unwrap();
        expected.push(("odd-from-1", Box::new(|i| i % 2 == 1 && i != 1)));
        socket(4).except("mod3-0").emit("m", "except-from-4").unwrap();
        expected.push(("except-from-4", Box::new(|i| i != 4 && i % 3 != 0)));
        ns.to("temp").emit("m", "temp").unwrap();
        expected.push(("temp", Box::new(|i| i % LEAVE_EVERY != 0)));
        ns.to(ids[3].as_str()).emit("m", "direct-3").unwrap();
        expected.push(("direct-3", Box::new(|i| i == 3)));
        ns.to(ids[10].as_str()).to("dyn-0").emit("m", "direct-10-and-dyn-0").unwrap();
        expected.push(("direct-10-and-dyn-0", Box::new(|i| i % 5 == 0)));
        ns.to("nobody-here").emit("m", "empty-room").unwrap();
        expected.push(("empty-room", Box::new(|_| false)));
        ns.emit("m", "namespace").unwrap();
        expected.push(("namespace", Box::new(|_| true)));
        server.io.emit("m", "io").unwrap();
        expected.push(("io", Box::new(|_| true)));
        // a client's event whose handler broadcasts to everyone else
        socket(7).emit("please-shout", &()).unwrap();
        assert_eq!(recv(&mut shouted, Duration::from_secs(10), "shout handled").await, "from 7");
        expected.push(("shout", Box::new(|i| i != 7)));

        // every client has everything queued so far once it answers this
        let answers = ns.timeout(Duration::from_secs(10)).emit_with_ack("sync", &1).await.expect("all answer");
        assert_eq!(answers.len(), N);

        // volatile: WebSocket clients with an empty queue take it; a polling client only if
        // a poll is held at that instant
        ns.volatile().emit("m", "volatile").unwrap();
        ns.emit("done", &()).unwrap();

        let r = node.result_within(Duration::from_secs(30)).await;
        let counts: Vec<BTreeMap<String, u64>> = serde_json::from_value(r["counts"].clone()).unwrap();
        assert_eq!(counts.len(), N);
        for (i, got) in counts.iter().enumerate() {
            let mut want: BTreeMap<String, u64> =
                expected.iter().filter(|(_, rule)| rule(i)).map(|(tag, _)| ((*tag).to_owned(), 1)).collect();
            let mut got = got.clone();
            if is_polling(i) {
                let v = got.remove("volatile").unwrap_or(0);
                assert!(v <= 1, "client {i} got the volatile message {v} times");
            } else {
                want.insert("volatile".into(), 1);
            }
            assert_eq!(got, want, "client {i} ({})", if is_polling(i) { "polling" } else { "websocket" });
        }
        server.stop().await;
    })
    .await;
}
