//! `on_any`, `on_disconnecting` and `on_disconnect`, driven by hand-framed WebSocket
//! clients so that every packet and its order is visible.
//!
//! - `on_any` handlers see every event (name and arguments, binary attachments
//!   included), in order, before the event's own handler; the acknowledgement goes to
//!   the event's own handler when it has one, else to the first `on_any` handler.
//! - `on_disconnecting` handlers run while the socket still has its rooms (and can still
//!   emit to them); `on_disconnect` handlers run after it left them; both get the reason.

mod common;
mod raw;

use std::time::Duration;

use common::TestServer;
use raw::{OP_BINARY, Ws, bounded, sio_ws_connect};
use serde_json::{Value, json};
use shoal::{DisconnectReason, Event, Socket, SocketIo};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_secs(10);

/// What a handler saw.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    handler: &'static str,
    event: String,
    args: Vec<Value>,
    attachments: Vec<Vec<u8>>,
    wants_ack: bool,
}

fn seen(handler: &'static str, ev: &Event) -> Seen {
    Seen {
        handler,
        event: ev.name().to_owned(),
        args: ev.args().values.clone(),
        attachments: ev.args().attachments.iter().map(|b| b.to_vec()).collect(),
        wants_ack: ev.wants_ack(),
    }
}

fn s(handler: &'static str, event: &str, args: Value, wants_ack: bool) -> Seen {
    let Value::Array(args) = args else { panic!("args must be an array") };
    Seen { handler, event: event.to_owned(), args, attachments: Vec::new(), wants_ack }
}

/// Reads the next text packet that is not an Engine.IO ping, within [`STEP`].
async fn next(ws: &mut Ws) -> String {
    tokio::time::timeout(STEP, ws.recv_text()).await.expect("a packet in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_any_sees_every_event_and_acks_go_to_the_right_handler() {
    bounded(LIMIT, async {
        let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
        let srv = TestServer::start(SocketIo::builder(), move |io| {
            io.of("/").on_connect(move |socket: Socket| {
                let (t1, t2, t3) = (tx.clone(), tx.clone(), tx.clone());
                socket.on_any(move |_s: Socket, mut ev: Event| {
                    let _ = t1.send(seen("any1", &ev));
                    let name = ev.name().to_owned();
                    // a no-op unless this handler was given the ack
                    let _ = ev.ack(&json!({"by": "any1", "event": name}));
                    async {}
                });
                socket.on_any(move |_s: Socket, mut ev: Event| {
                    let _ = t2.send(seen("any2", &ev));
                    let _ = ev.ack(&json!({"by": "any2"}));
                    async {}
                });
                socket.on("own", move |_s: Socket, mut ev: Event| {
                    let _ = t3.send(seen("own", &ev));
                    let _ = ev.ack(&json!({"by": "own"}));
                    async {}
                });
                async {}
            });
        })
        .await;
        let (mut ws, _sid) = sio_ws_connect(srv.addr).await;

        // 1. an event with its own handler, no ack
        ws.send_text(r#"42["own",1,"a"]"#).await.unwrap();
        // 2. the same with an ack: answered by its own handler
        ws.send_text(r#"420["own",{"x":1}]"#).await.unwrap();
        assert_eq!(next(&mut ws).await, r#"430[{"by":"own"}]"#);
        // 3. an event without a handler of its own, with an ack: the first on_any answers
        ws.send_text(r#"421["free",2,null]"#).await.unwrap();
        assert_eq!(next(&mut ws).await, r#"431[{"by":"any1","event":"free"}]"#);
        // 4. no arguments, no ack
        ws.send_text(r#"42["bare"]"#).await.unwrap();
        // 5. a binary event with an ack and no own handler
        ws.send_text(r#"451-2["bin",{"_placeholder":true,"num":0},"t"]"#).await.unwrap();
        ws.send_raw(&raw::masked(OP_BINARY, &[1, 2, 3])).await.unwrap();
        assert_eq!(next(&mut ws).await, r#"432[{"by":"any1","event":"bin"}]"#);
        // 6. a last acked event, to know nothing else was sent in between
        ws.send_text(r#"423["own","end"]"#).await.unwrap();
        assert_eq!(next(&mut ws).await, r#"433[{"by":"own"}]"#, "exactly one answer per ack");

        let mut bin1 = s("any1", "bin", json!([{"_placeholder": true, "num": 0}, "t"]), true);
        bin1.attachments = vec![vec![1, 2, 3]];
        let mut bin2 = bin1.clone();
        bin2.handler = "any2";
        bin2.wants_ack = false;
        let expected = vec![
            s("any1", "own", json!([1, "a"]), false),
            s("any2", "own", json!([1, "a"]), false),
            s("own", "own", json!([1, "a"]), false),
            // the event has its own handler: the on_any handlers see it without the ack
            s("any1", "own", json!([{"x": 1}]), false),
            s("any2", "own", json!([{"x": 1}]), false),
            s("own", "own", json!([{"x": 1}]), true),
            // no own handler: the first on_any handler gets the ack, the next does not
            s("any1", "free", json!([2, null]), true),
            s("any2", "free", json!([2, null]), false),
            s("any1", "bare", json!([]), false),
            s("any2", "bare", json!([]), false),
            bin1,
            bin2,
            s("any1", "own", json!(["end"]), false),
            s("any2", "own", json!(["end"]), false),
            s("own", "own", json!(["end"]), true),
        ];
        let mut got = Vec::new();
        while got.len() < expected.len() {
            match tokio::time::timeout(STEP, rx.recv()).await {
                Ok(Some(v)) => got.push(v),
                _ => panic!("only {} of {} handler calls: {got:#?}", got.len(), expected.len()),
            }
        }
        assert_eq!(got, expected);
        assert!(rx.try_recv().is_err(), "no other handler call");
        let _ = ws.send_raw(&raw::masked(raw::OP_CLOSE, &1000u16.to_be_bytes())).await;
        srv.stop().await;
    })
    .await;
}

/// A disconnect handler's view of its socket.
#[derive(Debug, Clone)]
struct Leaving {
    stage: &'static str,
    id: String,
    reason: DisconnectReason,
    rooms: Vec<String>,
    connected: bool,
    in_room_x: bool,
}

fn leaving(stage: &'static str, socket: &Socket, reason: DisconnectReason) -> Leaving {
    Leaving {
        stage,
        id: socket.id().to_string(),
        reason,
        rooms: socket.rooms().iter().map(|r| r.as_str().to_owned()).collect(),
        connected: socket.connected(),
        in_room_x: socket.in_room("room-x"),
    }
}

/// Every socket joins `room-x` and `room-y`. `kick` makes the server disconnect the
/// socket. On disconnecting, the socket tells `room-x` (except itself) that it leaves.
fn rooms_server(io: &SocketIo, tx: mpsc::UnboundedSender<Leaving>) {
    io.of("/").on_connect(move |socket: Socket| {
        let (t1, t2) = (tx.clone(), tx.clone());
        socket.join_many(["room-x", "room-y"]);
        socket.on("kick", |s: Socket, _ev: Event| async move { s.disconnect() });
        socket.on_disconnecting(move |s: Socket, reason: DisconnectReason| {
            let _ = t1.send(leaving("disconnecting", &s, reason));
            let _ = s.to("room-x").emit("bye", &json!({"id": s.id().to_string(), "reason": reason.as_str()}));
            async {}
        });
        socket.on_disconnect(move |s: Socket, reason: DisconnectReason| {
            let _ = t2.send(leaving("disconnect", &s, reason));
            async {}
        });
        async {}
    });
}

/// The two handler calls of socket `id`: disconnecting first, then disconnect.
async fn leaving_of(rx: &mut mpsc::UnboundedReceiver<Leaving>, id: &str) -> (Leaving, Leaving) {
    let a = tokio::time::timeout(STEP, rx.recv()).await.expect("disconnecting in time").expect("value");
    let b = tokio::time::timeout(STEP, rx.recv()).await.expect("disconnect in time").expect("value");
    assert_eq!((a.stage, a.id.as_str()), ("disconnecting", id), "{a:?}");
    assert_eq!((b.stage, b.id.as_str()), ("disconnect", id), "{b:?}");
    (a, b)
}

/// Three ways to leave (the client leaves the namespace, the client closes the
/// connection, the server disconnects the socket): each time `on_disconnecting` sees the
/// socket still connected and in its rooms, and its emit to `room-x` reaches a watcher;
/// `on_disconnect` then sees it disconnected and out of the joined rooms; both get the
/// reason. Afterwards the room no longer lists the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_sees_the_rooms_and_disconnect_sees_them_left() {
    bounded(LIMIT, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let srv = TestServer::start(SocketIo::builder(), |io| rooms_server(io, tx)).await;
        let (mut watcher, _watcher_id) = sio_ws_connect(srv.addr).await;

        let (mut a, a_id) = sio_ws_connect(srv.addr).await;
        let (mut b, b_id) = sio_ws_connect(srv.addr).await;
        let (mut c, c_id) = sio_ws_connect(srv.addr).await;

        let cases: [(&str, DisconnectReason); 3] = [
            (&a_id, DisconnectReason::ClientNamespaceDisconnect),
            (&b_id, DisconnectReason::TransportClose),
            (&c_id, DisconnectReason::ServerNamespaceDisconnect),
        ];
        for (i, (id, reason)) in cases.into_iter().enumerate() {
            match i {
                0 => a.send_text("41").await.unwrap(),
                1 => b.send_raw(&raw::masked(raw::OP_CLOSE, &1000u16.to_be_bytes())).await.unwrap(),
                _ => {
                    c.send_text(r#"42["kick"]"#).await.unwrap();
                    // c, in room-x too, got the goodbyes of a and b, then its DISCONNECT
                    let mut byes = Vec::new();
                    loop {
                        match next(&mut c).await {
                            p if p == "41" => break,
                            p if p.starts_with(r#"42["bye""#) => byes.push(p),
                            p => panic!("unexpected {p}"),
                        }
                    }
                    assert_eq!(byes.len(), 2, "{byes:?}");
                    assert!(byes[0].contains(a_id.as_str()) && byes[1].contains(b_id.as_str()), "{byes:?}");
                }
            }
            let (ing, ed) = leaving_of(&mut rx, id).await;
            assert_eq!((ing.reason, ed.reason), (reason, reason), "{id}");

            // disconnecting: still connected, in its own room and the joined ones
            assert!(ing.connected, "{ing:?}");
            assert_eq!(ing.rooms, [id, "room-x", "room-y"], "{ing:?}");
            assert!(ing.in_room_x);
            // its emit to room-x reached the watcher
            let bye = next(&mut watcher).await;
            let v: Value = serde_json::from_str(bye.strip_prefix("42").expect("an event")).expect("JSON");
            assert_eq!(v, json!(["bye", {"id": id, "reason": reason.as_str()}]), "{bye}");

            // disconnect: gone from the joined rooms
            assert!(!ed.connected, "{ed:?}");
            assert!(!ed.in_room_x, "{ed:?}");
            assert!(!ed.rooms.iter().any(|r| r == "room-x" || r == "room-y"), "{ed:?}");
            let members: Vec<String> =
                srv.io.of("/").to("room-x").fetch_sockets().await.expect("fetch").into_iter().map(|s| s.id).collect();
            assert!(!members.contains(&id.to_owned()), "{members:?}");
        }
        // the remaining member of room-x: the watcher only
        assert_eq!(srv.io.of("/").to("room-x").fetch_sockets().await.expect("fetch").len(), 1);
        drop((a, b, c));
        let _ = watcher.send_raw(&raw::masked(raw::OP_CLOSE, &1000u16.to_be_bytes())).await;
        srv.stop().await;
    })
    .await;
}

/// As in Node (`socket.rooms` is an empty set in a "disconnect" listener), a socket that
/// has left lists no room at all, not even the room named by its own id, which it has
/// left too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_handler_sees_no_room_at_all() {
    bounded(LIMIT, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let srv = TestServer::start(SocketIo::builder(), |io| rooms_server(io, tx)).await;
        let (mut a, a_id) = sio_ws_connect(srv.addr).await;
        a.send_text("41").await.unwrap();
        let (_, ed) = leaving_of(&mut rx, &a_id).await;
        assert_eq!(ed.rooms, Vec::<String>::new(), "{ed:?}");
        srv.stop().await;
    })
    .await;
}

/// A socket that has left cannot be put back into rooms: a `join` from its
/// `on_disconnect` handler, or from an event handler that resumes after the socket left,
/// changes nothing (Node makes `join` a no-op once a socket is closed). Otherwise the
/// room would keep the dead socket forever: listed by `all_rooms` and `fetch_sockets`,
/// and held in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_socket_cannot_join_rooms() {
    bounded(LIMIT, async {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let srv = TestServer::start(SocketIo::builder(), move |io| {
            io.of("/").on_connect(move |socket: Socket| {
                let tx = tx.clone();
                socket.on("slow-join", move |s: Socket, _ev: Event| {
                    let tx = tx.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        s.join("late-from-handler");
                        let _ = tx.send("handler joined".into());
                    }
                });
                socket.on_disconnect(|s: Socket, _reason: DisconnectReason| async move {
                    s.join("late-from-disconnect");
                });
                async {}
            });
        })
        .await;
        let (mut ws, id) = sio_ws_connect(srv.addr).await;
        ws.send_text(r#"42["slow-join"]"#).await.unwrap();
        ws.send_text("41").await.unwrap();
        let done = tokio::time::timeout(STEP, rx.recv()).await.expect("the handler resumed").expect("value");
        assert_eq!(done, "handler joined");
        let ns = srv.io.of("/");
        let rooms = ns.all_rooms().await.expect("rooms");
        let names: Vec<&str> = rooms.iter().map(|r| r.as_str()).collect();
        assert!(!names.contains(&"late-from-disconnect"), "{names:?}");
        assert!(!names.contains(&"late-from-handler"), "{names:?}");
        for room in ["late-from-disconnect", "late-from-handler"] {
            let members = ns.to(room).fetch_sockets().await.expect("fetch");
            assert!(members.iter().all(|m| m.id != id), "{room}: {members:?}");
        }
        assert_eq!(ns.socket_count(), 0);
        srv.stop().await;
    })
    .await;
}
