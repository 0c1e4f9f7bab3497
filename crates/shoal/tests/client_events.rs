//! Events and acknowledgements with the official JavaScript client: JSON arguments of
//! every kind, binary attachments both ways, acks both ways with their timeouts, and
//! broadcasts collecting every client's acknowledgement.

mod common;
mod js;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use js::{NodeScenario, bounded, recv};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shoal::{AckError, Args, BroadcastAckError, Event, Socket, SocketIo};
use tokio::sync::mpsc;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ----- JSON -----

#[derive(Serialize)]
struct Typed {
    id: u64,
    negative: i64,
    ratio: f64,
    missing: Option<String>,
    text: String,
    list: Vec<u8>,
    nested: BTreeMap<String, Vec<Option<bool>>>,
    tuple: (i32, String),
}

fn typed() -> Typed {
    Typed {
        id: 9_007_199_254_740_991,
        negative: -42,
        ratio: 0.1,
        missing: None,
        text: "Grüße, 世界 🌍 \"q\" \\ \n".into(),
        list: vec![1, 2, 3],
        nested: BTreeMap::from([("a".into(), vec![Some(true), None]), ("b".into(), vec![])]),
        tuple: (-1, "two".into()),
    }
}

/// JSON arguments of every kind: nested, unicode and escapes, numbers at the edges of
/// what JavaScript represents exactly, null, booleans, empty containers.
fn json_fixture() -> Value {
    json!([
        {"nested": {"deep": {"deeper": [1, [2, [3, {"x": "y"}]]]}}, "empty": {}, "emptyList": []},
        "unicode: héllo wörld — 你好 — 🚀🎉 — עברית — \u{0} \u{1f} \"quoted\" \\back\\ \n newline \t tab \u{2028}",
        42,
        -17,
        123.456,
        1e-7,
        9_007_199_254_740_991_i64,
        -9_007_199_254_740_991_i64,
        0,
        1.797_693_134_862_315_7e308,
        null,
        true,
        false,
        ["mixed", 1, null, {"a": [true]}],
        "",
        {"key with spaces": 1, "ключ": "значение", "": "empty key"}
    ])
}

fn json_server(io: &SocketIo, tx: mpsc::UnboundedSender<Vec<Value>>) {
    io.of("/").on_connect(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.emit("typed", &typed()).unwrap();
            socket.on("echo", move |socket: Socket, mut ev: Event| {
                let tx = tx.clone();
                async move {
                    let args = ev.args().clone();
                    assert!(args.attachments.is_empty());
                    let _ = tx.send(args.values.clone());
                    socket.emit_args("echo-back", args.clone()).unwrap();
                    ev.ack_args(args).unwrap();
                }
            });
            socket.on("événement-🚀", |_s: Socket, mut ev: Event| async move {
                let n: i64 = ev.data().unwrap();
                ev.ack(&(n + 1)).unwrap();
            });
        }
    });
}

async fn json_roundtrip(transports: Value) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = TestServer::start(SocketIo::builder(), |io| json_server(io, tx)).await;
    let fixture = json_fixture();
    let node = NodeScenario::spawn("json-echo", &server.url(), json!({"args": fixture, "transports": transports}));
    let r = node.result().await;
    // the server decoded exactly what the client sent
    let got = recv(&mut rx, Duration::from_secs(5), "echo on the server").await;
    assert_eq!(Value::Array(got), fixture);
    // and the client got it back unchanged, as an ack and as an event
    assert_eq!(r["acked"], fixture);
    assert_eq!(r["emitted"], fixture);
    assert_eq!(r["unicodeEvent"], 42);
    assert_eq!(r["typed"], serde_json::to_value(typed()).unwrap());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_arguments_of_every_kind_websocket() {
    bounded(30, "json websocket", json_roundtrip(json!(["websocket"]))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_arguments_of_every_kind_polling() {
    bounded(30, "json polling", json_roundtrip(json!(["polling"]))).await;
}

// ----- binary -----

#[derive(Debug, Deserialize)]
struct Upload {
    file: Bytes,
    meta: Meta,
}

#[derive(Debug, Deserialize)]
struct Meta {
    name: String,
    parts: (Bytes, Bytes, Inner),
}

#[derive(Debug, Deserialize)]
struct Inner {
    inner: Bytes,
}

#[derive(Serialize)]
struct ServerBin {
    title: &'static str,
    blobs: Vec<Bytes>,
    nested: NestedBin,
    count: u32,
}

#[derive(Serialize)]
struct NestedBin {
    deep: Bytes,
    list: (Bytes, &'static str, Option<Bytes>),
}

#[derive(Serialize)]
struct Question {
    blob: Bytes,
    tag: &'static str,
}

#[derive(Debug, PartialEq)]
enum BinSeen {
    Upload {
        attachments: usize,
        file: String,
        name: String,
        parts: [String; 3],
        second: String,
        text: String,
        last: (String, u8),
    },
    BinAck(String),
    Answer {
        attachments: usize,
        blob: String,
        tag: Value,
    },
}

fn binary_server(io: &SocketIo, tx: mpsc::UnboundedSender<BinSeen>) {
    io.of("/").on_connect(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket
                .emit(
                    "bin-from-server",
                    &ServerBin {
                        title: "server → client",
                        blobs: vec![Bytes::from_static(&[0, 255]), Bytes::from_static(b"xyz")],
                        nested: NestedBin {
                            deep: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
                            list: (Bytes::from_static(&[1]), "between", None),
                        },
                        count: 4,
                    },
                )
                .unwrap();
            let t = tx.clone();
            socket.on("bin", move |_s: Socket, mut ev: Event| {
                let t = t.clone();
                async move {
                    let (up, second, text, last): (Upload, Bytes, String, (Bytes, u8)) = ev.all().unwrap();
                    let _ = t.send(BinSeen::Upload {
                        attachments: ev.args().attachments.len(),
                        file: hex(&up.file),
                        name: up.meta.name,
                        parts: [hex(&up.meta.parts.0), hex(&up.meta.parts.1), hex(&up.meta.parts.2.inner)],
                        second: String::from_utf8(second.to_vec()).unwrap(),
                        text,
                        last: (hex(&last.0), last.1),
                    });
                    let args = ev.args().clone();
                    ev.ack_args(args).unwrap();
                }
            });
            let t = tx.clone();
            socket.on("bin-ack", move |socket: Socket, mut ev: Event| {
                let t = t.clone();
                async move {
                    let data: Bytes = ev.data().unwrap();
                    let _ = t.send(BinSeen::BinAck(String::from_utf8(data.to_vec()).unwrap()));
                    ev.ack(&Bytes::from_static(b"pong")).unwrap();
                    // now the server asks, with a binary payload, and gets a binary answer
                    let q = Question { blob: Bytes::from_static(&[1, 2, 3]), tag: "q" };
                    let answer =
                        socket.emit_with_ack_timeout("bin-question", &q, Duration::from_secs(5)).await.unwrap();
                    let blob: Bytes = answer.get(0).unwrap();
                    let tag: Value = answer.get(1).unwrap();
                    let _ = t.send(BinSeen::Answer { attachments: answer.attachments.len(), blob: hex(&blob), tag });
                    socket.emit("bin-done", &json!({"answer": hex(&blob)})).unwrap();
                }
            });
        }
    });
}

async fn binary_roundtrip(transports: Value) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = TestServer::start(SocketIo::builder(), |io| binary_server(io, tx)).await;
    let node = NodeScenario::spawn("binary", &server.url(), json!({"transports": transports}));
    let r = node.result().await;
    let seen = [
        recv(&mut rx, Duration::from_secs(5), "bin").await,
        recv(&mut rx, Duration::from_secs(5), "bin-ack").await,
        recv(&mut rx, Duration::from_secs(5), "answer").await,
    ];
    assert_eq!(
        seen,
        [
            BinSeen::Upload {
                attachments: 6,
                file: "000102ff".into(),
                name: "ñame.bin".into(),
                parts: ["616263".into(), String::new(), "0909".into()],
                second: "second-arg".into(),
                text: "plain json".into(),
                last: ("07".into(), 8),
            },
            BinSeen::BinAck("ping".into()),
            BinSeen::Answer { attachments: 1, blob: "010203ff".into(), tag: json!({"tag": "q"}) },
        ]
    );
    assert_eq!(r["binAck"], json!({"$bin": hex(b"pong")}));
    assert_eq!(
        r["fromServer"],
        json!({
            "title": "server → client",
            "blobs": [{"$bin": "00ff"}, {"$bin": hex(b"xyz")}],
            "nested": {"deep": {"$bin": "deadbeef"}, "list": [{"$bin": "01"}, "between", null]},
            "count": 4,
        })
    );
    assert_eq!(r["done"], json!({"answer": "010203ff"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_attachments_both_ways_websocket() {
    bounded(30, "binary websocket", binary_roundtrip(json!(["websocket"]))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_attachments_both_ways_polling() {
    bounded(30, "binary polling", binary_roundtrip(json!(["polling"]))).await;
}

// ----- acknowledgements -----

#[derive(Debug)]
struct AckSummary {
    question: Result<Args, AckError>,
    multi: Result<Args, AckError>,
    ignored: Result<Args, AckError>,
    late: Result<Args, AckError>,
    after_late: Result<Args, AckError>,
}

fn ack_server(io: &SocketIo, tx: mpsc::UnboundedSender<AckSummary>) {
    io.of("/").on_connect(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on("sum", |_s: Socket, mut ev: Event| async move {
                let nums: Vec<f64> = ev.all().unwrap();
                ev.ack(&nums.iter().sum::<f64>()).unwrap();
            });
            socket.on("multi", |_s: Socket, mut ev: Event| async move {
                ev.ack_args(Args::from_serialize(&("one", 2, json!({"three": [3]}))).unwrap()).unwrap();
            });
            // takes the ack and drops it: the client's own timeout must fire
            socket.on("no-answer", |_s: Socket, mut ev: Event| async move {
                assert!(ev.wants_ack());
                drop(ev.take_ack());
            });
            let (late_tx, mut late_rx) = mpsc::unbounded_channel();
            socket.on("late-answered", move |_s: Socket, _ev: Event| {
                let _ = late_tx.send(());
                async {}
            });
            let s = socket.clone();
            tokio::spawn(async move {
                let secs = Duration::from_secs(5);
                let question = s.emit_with_ack_timeout("question", &json!({"n": 21}), secs).await;
                let multi =
                    s.emit_args_with_ack("multi-question", Args::from_serialize(&(1, "two")).unwrap(), secs).await;
                let ignored = s.emit_with_ack_timeout("ignored", &"nobody answers", Duration::from_millis(300)).await;
                let late = s.emit_with_ack_timeout("late", &"slow", Duration::from_millis(150)).await;
                // the late answer arrives after the timeout: ignored, the socket keeps working
                let _ = tokio::time::timeout(secs, late_rx.recv()).await;
                let after_late = s.emit_with_ack_timeout("final", &"after", secs).await;
                let summary = json!({
                    "question": question.as_ref().ok().map(|a| a.values.clone()),
                    "ignoredTimedOut": matches!(ignored, Err(AckError::Timeout)),
                    "final": after_late.as_ref().ok().map(|a| a.values.clone()),
                });
                let _ = tx.send(AckSummary { question, multi, ignored, late, after_late });
                s.emit("server-done", &summary).unwrap();
            });
        }
    });
}

async fn acks_both_ways(transports: Value) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = TestServer::start(SocketIo::builder(), |io| ack_server(io, tx)).await;
    let node = NodeScenario::spawn("acks", &server.url(), json!({"transports": transports}));
    let r = node.result().await;
    // client → server acks
    assert_eq!(r["sum"], 6.5);
    assert_eq!(r["multi"], json!(["one", 2, {"three": [3]}]));
    assert_eq!(r["clientSideTimeout"], "operation has timed out");
    // server → client acks
    let s = recv(&mut rx, Duration::from_secs(10), "ack summary").await;
    assert_eq!(s.question.unwrap().values, vec![json!(42)]);
    assert_eq!(s.multi.unwrap().values, vec![json!("x"), json!(2), json!({"y": "two"})]);
    assert!(matches!(s.ignored, Err(AckError::Timeout)), "{:?}", s.ignored);
    assert!(matches!(s.late, Err(AckError::Timeout)), "{:?}", s.late);
    assert_eq!(s.after_late.unwrap().values, vec![json!({"final": true, "got": "after"})]);
    assert_eq!(r["ignored"], json!(["nobody answers"]), "the unanswered event was delivered");
    assert_eq!(r["serverSummary"]["ignoredTimedOut"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_both_ways_with_timeouts_websocket() {
    bounded(30, "acks websocket", acks_both_ways(json!(["websocket"]))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_both_ways_with_timeouts_polling() {
    bounded(30, "acks polling", acks_both_ways(json!(["polling"]))).await;
}

// ----- broadcast with acknowledgements -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_ack_collects_every_answer_and_partial_on_timeout() {
    bounded(40, "broadcast acks", async {
        const N: usize = 8;
        let silent = [2usize, 5];
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, u64)>();
        let server = TestServer::start(SocketIo::builder(), |io| {
            io.of("/").on_connect(move |socket: Socket| {
                let i = socket.handshake().auth()["i"].as_u64().unwrap();
                let _ = tx.send((socket.id().to_string(), i));
                async {}
            });
        })
        .await;
        let mut node = NodeScenario::spawn("broadcast-ack", &server.url(), json!({"n": N, "silent": silent}));
        let ready = node.event("ready").await;
        let ids: Vec<String> = serde_json::from_value(ready["ids"].clone()).unwrap();
        let connected = js::recv_n(&mut rx, N, Duration::from_secs(5), "connects").await;
        let index_of: BTreeMap<String, u64> = connected.into_iter().collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index_of[id], i as u64, "client {i} is socket {id}");
        }
        let ns = server.io.of("/");

        // every client answers
        let answers = ns
            .timeout(Duration::from_secs(5))
            .emit_with_ack("vote", &json!({"options": ["a", "b", "c"]}))
            .await
            .expect("every client answers");
        assert_eq!(answers.len(), N);
        let mut by_socket = BTreeMap::new();
        for a in &answers {
            let id = a.socket.clone().expect("the answering socket is known");
            assert!(by_socket.insert(id, a.args.values.clone()).is_none(), "one answer per socket");
        }
        for (i, id) in ids.iter().enumerate() {
            let choice = ["a", "b", "c"][i % 3];
            assert_eq!(by_socket[id], vec![json!({"i": i, "choice": choice})]);
        }

        // two clients stay silent: the timeout reports the answers that came
        let started = tokio::time::Instant::now();
        let err = ns
            .timeout(Duration::from_millis(400))
            .emit_with_ack("vote2", &json!({"round": 2}))
            .await
            .expect_err("two clients never answer");
        assert!(started.elapsed() >= Duration::from_millis(400));
        let BroadcastAckError::Timeout(t) = err else { panic!("expected a timeout, got {err:?}") };
        assert_eq!(t.expected, N);
        assert_eq!(t.responses.len(), N - silent.len());
        let mut answered: Vec<u64> = t.responses.iter().map(|a| a.args.values[0]["i"].as_u64().unwrap()).collect();
        answered.sort_unstable();
        let want: Vec<u64> = (0..N as u64).filter(|i| !silent.contains(&(*i as usize))).collect();
        assert_eq!(answered, want);
        for a in &t.responses {
            let i = a.args.values[0]["i"].as_u64().unwrap() as usize;
            assert_eq!(a.socket.as_deref(), Some(ids[i].as_str()));
            assert_eq!(a.args.values[0]["round"], 2);
        }

        // a broadcast with ack limited to a room
        for (i, id) in ids.iter().enumerate() {
            if i % 2 == 0 {
                ns.socket(&id.parse().unwrap()).expect("connected").join("even");
            }
        }
        let evens = ns
            .to("even")
            .timeout(Duration::from_secs(5))
            .emit_with_ack("vote", &json!({"options": ["x"]}))
            .await
            .unwrap();
        let mut even_answers: Vec<u64> = evens.iter().map(|a| a.args.values[0]["i"].as_u64().unwrap()).collect();
        even_answers.sort_unstable();
        assert_eq!(even_answers, (0..N as u64).step_by(2).collect::<Vec<_>>());

        ns.emit("done", &()).unwrap();
        let r = node.result().await;
        let received: Vec<Value> = serde_json::from_value(r["received"].clone()).unwrap();
        for (i, rec) in received.iter().enumerate() {
            let votes = if i % 2 == 0 { 2 } else { 1 };
            assert_eq!(rec, &json!({"vote": votes, "vote2": 1}), "client {i}");
        }
        server.stop().await;
    })
    .await;
}
