//! Hostile input at the Socket.IO layer, over a WebSocket framed by hand (and polling
//! where it differs): binary attachment tricks, placeholders, malformed headers and
//! payloads, deep JSON, reserved and unusual event names, namespace misuse. Every
//! violation must close the connection ("parse error") or be answered by the protocol
//! (CONNECT_ERROR), never crash or wedge anything; then a normal client is served.
//!
//! `cargo test -p shoal --test hostile_sio`

mod common;
mod raw;

use std::time::Duration;

use common::TestServer;
use raw::*;
use shoal::{Event, Socket, SocketIo};

const LIMIT: Duration = Duration::from_secs(40);
const CLOSE_SOON: Duration = Duration::from_secs(5);

fn setup(io: &SocketIo) {
    echo_handlers(io);
    io.of("/admin").on_connect(|socket: Socket| async move {
        socket.on("echo", |s: Socket, ev: Event| async move {
            let _ = s.emit_args("echo", ev.into_args());
        });
        socket.on("kick", |s: Socket, _ev: Event| async move {
            s.disconnect();
        });
    });
}

async fn server() -> TestServer {
    TestServer::start(SocketIo::builder(), setup).await
}

/// Sends `messages` (text, or binary when prefixed with `b:`) on a connected socket and
/// asserts the connection is then closed.
async fn assert_violation(srv: &TestServer, messages: &[&[u8]], what: &str) {
    let (mut ws, _) = sio_ws_connect(srv.addr).await;
    for m in messages {
        let r = match m.strip_prefix(b"b:") {
            Some(bin) => ws.send_binary(bin).await,
            None => ws.send_raw(&masked(OP_TEXT, m)).await,
        };
        if r.is_err() {
            break; // already closed
        }
    }
    Ws::assert_ended(ws.end_within(CLOSE_SOON).await, what);
}

// ---------------------------------------------------------------------------------------
// 4. binary attachments
// ---------------------------------------------------------------------------------------

/// Attachment counts: over `max_attachments` (10), not a number, negative, huge,
/// missing, without the dash → closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_attachment_counts_close_the_connection() {
    bounded(LIMIT, async {
        let srv = server().await;
        for text in [
            r#"4511-["echo"]"#,
            r#"45a-["echo"]"#,
            r#"45-1-["echo"]"#,
            r#"4599999999999-["echo"]"#,
            r#"4518446744073709551616-["echo"]"#,
            r#"45-["echo"]"#,
            r#"451["echo"]"#,
            r#"451.23-["echo"]"#,
            r#"45"#,
            r#"4611-1[1]"#,
        ] {
            assert_violation(&srv, &[text.as_bytes()], text).await;
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Placeholders: `num` out of range, negative, a string (`"splice"`, CVE-2022-2421), a
/// float, missing; deep inside the arguments too → closed once the attachments are in.
/// A valid binary event is echoed with its attachment (the control case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_placeholders_close_the_connection() {
    bounded(LIMIT, async {
        let srv = server().await;
        for ph in [
            r#"{"_placeholder":true,"num":1}"#,
            r#"{"_placeholder":true,"num":-1}"#,
            r#"{"_placeholder":true,"num":"splice"}"#,
            r#"{"_placeholder":true,"num":"0"}"#,
            r#"{"_placeholder":true,"num":0.5}"#,
            r#"{"_placeholder":true,"num":1e300}"#,
            r#"{"_placeholder":true}"#,
            r#"[[{"a":{"_placeholder":true,"num":99}}]]"#,
        ] {
            let text = format!(r#"451-["echo",{ph}]"#);
            assert_violation(&srv, &[text.as_bytes(), b"b:\x01\x02"], &text).await;
        }
        // control: a valid one round-trips
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        ws.send_text(r#"451-["echo",{"_placeholder":true,"num":0}]"#).await.unwrap();
        ws.send_binary(&[1, 2, 3]).await.unwrap();
        assert_eq!(ws.recv_text().await, r#"451-["echo",{"_placeholder":true,"num":0}]"#);
        let f = tokio::time::timeout(CLOSE_SOON, ws.recv_frame()).await.unwrap().unwrap();
        assert_eq!((f.opcode, f.payload), (OP_BINARY, vec![1, 2, 3]));
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A text frame where an attachment is due, a binary frame when none is due (also
/// before any CONNECT), one attachment too many, and binary frames after a packet
/// announcing zero attachments (CVE-2026-69185) → closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_attachments_close_the_connection() {
    bounded(LIMIT, async {
        let srv = server().await;
        let ph2 = br#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_violation(&srv, &[ph2, b"b:a", br#"42["echo",1]"#], "text while an attachment is due").await;
        assert_violation(&srv, &[ph2, b"b:a", b"40"], "CONNECT while an attachment is due").await;
        assert_violation(&srv, &[b"b:\x00\x01"], "binary when none is due").await;
        assert_violation(&srv, &[br#"42["echo",1]"#, b"b:x"], "binary after a text event").await;
        // zero attachments: the packet itself is complete; the binary that follows is not
        // buffered but refused
        assert_violation(&srv, &[br#"450-["echo","zero"]"#, b"b:x", b"b:y"], "binary after 0 attachments").await;
        // before CONNECT
        let (mut ws, _) = Ws::engine(srv.addr).await;
        ws.send_binary(b"\x01").await.unwrap();
        Ws::assert_ended(ws.end_within(CLOSE_SOON).await, "binary before CONNECT");
        // partial packet before CONNECT, then the CONNECT as text
        let (mut ws, _) = Ws::engine(srv.addr).await;
        ws.send_text(r#"451-["echo",{"_placeholder":true,"num":0}]"#).await.unwrap();
        ws.send_text("40").await.unwrap();
        Ws::assert_ended(ws.end_within(CLOSE_SOON).await, "CONNECT while attachments are due");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Announce 10 attachments, send 9, then violate the protocol: the partial packet is
/// dropped with the connection at the next violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_binary_packet_then_violation() {
    bounded(LIMIT, async {
        let srv = server().await;
        let phs: Vec<String> = (0..10).map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#)).collect();
        let text = format!(r#"4510-["echo",{}]"#, phs.join(","));
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        ws.send_text(&text).await.unwrap();
        for i in 0..9u8 {
            ws.send_binary(&vec![i; 100_000]).await.unwrap();
        }
        ws.send_text(r#"42["echo","not an attachment"]"#).await.unwrap();
        Ws::assert_ended(ws.end_within(CLOSE_SOON).await, "text after 9 of 10 attachments");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Attachments over `max_attachment_bytes` (set to 1000 here; with the defaults, 10
/// WebSocket messages of at most `max_payload` cannot exceed 10 MB) → closed as soon as
/// the byte count passes the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_over_max_attachment_bytes_close_the_connection() {
    bounded(LIMIT, async {
        let config = shoal::SocketIoConfig { max_attachment_bytes: 1000, ..Default::default() };
        let srv = TestServer::start(SocketIo::builder().config(config), setup).await;
        let phs: Vec<String> = (0..3).map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#)).collect();
        let text = format!(r#"453-["echo",{}]"#, phs.join(","));
        let a1 = [b"b:".as_slice(), &[7u8; 600]].concat();
        let a2 = [b"b:".as_slice(), &[8u8; 600]].concat();
        assert_violation(&srv, &[text.as_bytes(), &a1, &a2], "1200 bytes of attachments").await;
        // at the limit: fine
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        ws.send_text(&text).await.unwrap();
        for n in [400usize, 400, 200] {
            ws.send_binary(&vec![1u8; n]).await.unwrap();
        }
        assert!(ws.recv_text().await.starts_with("453-["));
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Announce 10 attachments, send 9, then stall while answering heartbeats: the
/// half-assembled packet (here 9 × 900 kB) is not pinned forever: the reconstruction
/// deadline (`attachments_timeout`, reference B1, CVE-2026-33151) closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_partial_binary_packet_is_dropped_in_time() {
    bounded(LIMIT, async {
        let srv = TestServer::start(
            SocketIo::builder()
                .ping_interval(Duration::from_millis(500))
                .ping_timeout(Duration::from_millis(500))
                .attachments_timeout(Duration::from_secs(2)),
            setup,
        )
        .await;
        let phs: Vec<String> = (0..10).map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#)).collect();
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        ws.send_text(&format!(r#"4510-["echo",{}]"#, phs.join(","))).await.unwrap();
        for i in 0..9u8 {
            ws.send_binary(&vec![i; 900_000]).await.unwrap();
        }
        // answer every ping (end_within does), never send the 10th attachment
        Ws::assert_ended(
            ws.end_within(Duration::from_secs(6)).await,
            "a connection pinning 9 attachments past the 2 s attachments timeout",
        );
        assert_healthy(srv.addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 5. payloads
// ---------------------------------------------------------------------------------------

/// Deeply nested JSON (10 000 and 100 000 levels of arrays, 10 000 of objects): refused
/// by the JSON parser's depth limit (no stack overflow), connection closed; over polling
/// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_closes_the_connection() {
    bounded(LIMIT, async {
        let srv = server().await;
        for depth in [10_000, 100_000] {
            let text = format!(r#"42["echo",{}{}]"#, "[".repeat(depth), "]".repeat(depth));
            assert_violation(&srv, &[text.as_bytes()], &format!("{depth} nested arrays")).await;
        }
        let text = format!(r#"42["echo",{}1{}]"#, r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        assert_violation(&srv, &[text.as_bytes()], "10k nested objects").await;
        // unbalanced: opens only
        let text = format!(r#"42["echo",{}"#, "[".repeat(200_000));
        assert_violation(&srv, &[text.as_bytes()], "200k opening brackets").await;
        // polling
        let p = sio_polling_connect(srv.addr).await;
        let text = format!(r#"42["echo",{}{}]"#, "[".repeat(50_000), "]".repeat(50_000));
        let r = p.post(text.as_bytes()).await;
        assert_eq!(r.status, 200, "the Engine.IO payload is fine; the Socket.IO packet is not");
        assert!(p.gone_within(CLOSE_SOON).await);
        // a depth within the limit is fine
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        ws_echo(&mut ws, &ok).await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Huge and odd numbers: a number beyond f64 (`1e999`, 400 digits) does not parse as
/// JSON here and closes the connection (Node would read `Infinity`); big integers (300
/// digits), tiny and negative-zero numbers are echoed as numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers() {
    bounded(LIMIT, async {
        let srv = server().await;
        assert_violation(&srv, &[br#"42["echo",1e999]"#], "1e999").await;
        assert_violation(&srv, &[br#"42["echo",-1e400]"#], "-1e400").await;
        let digits = format!(r#"42["echo",{}]"#, "9".repeat(400));
        assert_violation(&srv, &[digits.as_bytes()], "a 400-digit integer").await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        let digits = "9".repeat(300);
        for n in ["123456789012345678901234567890", "-0", "1e-400", "18446744073709551616", digits.as_str()] {
            ws.send_text(&format!(r#"42["echo",{n}]"#)).await.unwrap();
            let back = ws.recv_text().await;
            let v: serde_json::Value = serde_json::from_str(&back[2..]).unwrap();
            assert!(v[1].is_number(), "{n} → {back}");
            let sent: f64 = n.parse().unwrap();
            assert_eq!(v[1].as_f64().unwrap(), sent, "{n} → {back}");
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A float relayed through the server must come back as the same number. serde_json is
/// built without `float_roundtrip`, and its default parser is off by one ULP for some
/// inputs: `1.2396180475567891e+36` (the shortest representation of a double, as every
/// JSON encoder writes it) is parsed as `1.2396180475567892e+36`, so an echo changes
/// the value; `1.2345678900624461e+39` comes back two ULPs off (`…458e+39`). Found by
/// the `serde_roundtrip` fuzz target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floats_are_relayed_exactly() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        for text in
            ["1.2396180475567891e+36", "1.2345678900624461e+39", "0.1", "2.2250738585072014e-308", "9007199254740993"]
        {
            let exact: f64 = text.parse().unwrap();
            ws.send_text(&format!(r#"42["echo",{text}]"#)).await.unwrap();
            let back = ws.recv_text().await;
            let echoed = back.strip_prefix(r#"42["echo","#).and_then(|s| s.strip_suffix(']')).unwrap();
            let echoed: f64 = echoed.parse().unwrap();
            assert_eq!(echoed.to_bits(), exact.to_bits(), "{text} came back as {back}");
        }
    })
    .await;
}

/// A placeholder-shaped object in a plain (non-binary) EVENT is ordinary data, exactly
/// as Node's parser treats it (it resolves placeholders only in binary packets, and a
/// client may legitimately send such an object): it is delivered and relayed unchanged
/// and the connection stays. It never resolves to an attachment (there are none), so it
/// cannot reach into another packet's binary data; the binary form with a dangling
/// placeholder (`50-[…]`) is refused (see `bad_placeholders_close_the_connection`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_shaped_objects_in_plain_events_are_data() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        ws.send_text(r#"42["echo",{"_placeholder":true,"num":0}]"#).await.unwrap();
        assert_eq!(ws.recv_text().await, r#"42["echo",{"_placeholder":true,"num":0}]"#);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Malformed Socket.IO packets (the socket.io-parser test list, CVE-2023-32695 shapes,
/// unknown types, bad ack ids, bad payload shapes) → closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_close_the_connection() {
    bounded(LIMIT, async {
        let srv = server().await;
        for text in [
            r#"442["some","data""#,
            r#"40/admin,"invalid""#,
            r#"40[]"#,
            r#"41/admin,{}"#,
            r#"42/admin,"invalid"#,
            r#"42/admin,{}"#,
            r#"42[{"toString":"foo"}]"#,
            r#"42[true,"foo"]"#,
            r#"42[null,"bar"]"#,
            r#"42[]"#,
            r#"42{}"#,
            r#"42"#,
            r#"42"echo""#,
            r#"4999"#,
            r#"47["echo"]"#,
            r#"4x"#,
            r#"4"#,
            r#"42999999999999999999999["echo"]"#,
            r#"42-1["echo"]"#,
            r#"42abc["echo"]"#,
            r#"43{}"#,
            r#"43"#,
            r#"412"#,
            r#"4012{}"#,
            r#"42["echo"]garbage"#,
            r#"42["echo",]"#,
            "42[\"echo\",\"\\ud800\"]x",
        ] {
            assert_violation(&srv, &[text.as_bytes()], text).await;
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// The event name `error` is an ordinary event (CVE-2024-38355): it reaches its handler
/// like any other and never an internal error path; with an ack too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_is_an_ordinary_event() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        for packet in [r#"42["error"]"#, r#"42["error","boom",{"a":1}]"#, r#"427["error",1]"#] {
            ws.send_text(packet).await.unwrap();
            let back = ws.recv_text().await;
            assert!(back.starts_with(r#"42["error-back""#), "{packet} → {back}");
        }
        ws_echo(&mut ws, r#""after error""#).await;
        // over polling, in a namespace without an `error` handler
        let p = sio_polling_connect(srv.addr).await;
        assert_eq!(p.post(br#"40/admin,"#).await.status, 200);
        p.get_until(|s| s.starts_with("40/admin,")).await;
        assert_eq!(p.post(br#"42/admin,["error"]"#).await.status, 200);
        assert_eq!(p.post(br#"42/admin,["echo","x"]"#).await.status, 200);
        assert_eq!(p.get_until(|s| s.starts_with("42/admin,")).await, r#"42/admin,["echo","x"]"#);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Reserved event names (`connect`, `connect_error`, `disconnect`, `disconnecting`,
/// `newListener`, `removeListener`) → closed; a numeric event name is an ordinary event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_event_names_close_the_connection() {
    bounded(LIMIT, async {
        let srv = server().await;
        for name in ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"] {
            let text = format!(r#"42["{name}","x"]"#);
            assert_violation(&srv, &[text.as_bytes()], &text).await;
            let text = format!(r#"451-["{name}",{{"_placeholder":true,"num":0}}]"#);
            assert_violation(&srv, &[text.as_bytes(), b"b:x"], &text).await;
        }
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        ws.send_text(r#"42[42,"numeric"]"#).await.unwrap();
        ws.send_text(r#"42["__proto__","x"]"#).await.unwrap();
        ws.send_text(r#"42["constructor","x"]"#).await.unwrap();
        ws_echo(&mut ws, r#""after odd names""#).await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Acknowledgements the server never asked for (unknown id, duplicates, huge id) are
/// ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_acks_are_ignored() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        for ack in [r#"430[1]"#, r#"430[1]"#, r#"4318446744073709551615[]"#, r#"461-5[{"_placeholder":true,"num":0}]"#]
        {
            ws.send_text(ack).await.unwrap();
        }
        ws.send_binary(b"att").await.unwrap();
        ws_echo(&mut ws, r#""after acks""#).await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Namespace misuse: an unknown namespace gets CONNECT_ERROR "Invalid namespace" and the
/// connection stays; a duplicate CONNECT, a CONNECT_ERROR from the client, a CONNECT
/// whose payload is not an object, and a DISCONNECT or EVENT for a namespace never
/// joined close the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_misuse() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        for nsp in ["/nope", "/admin/../admin", "/ADMIN", "/admin\u{0}"] {
            let nsp_json = serde_json::to_string(nsp).unwrap();
            let nsp_json = &nsp_json[1..nsp_json.len() - 1];
            ws.send_text(&format!("40{nsp_json},")).await.unwrap();
            let back = ws.recv_text().await;
            assert_eq!(back, format!(r#"44{nsp_json},{{"message":"Invalid namespace"}}"#));
        }
        ws_echo(&mut ws, r#""after invalid namespaces""#).await;

        assert_violation(&srv, &[b"40"], "duplicate CONNECT").await;
        assert_violation(&srv, &[br#"44{"message":"x"}"#], "CONNECT_ERROR from a client").await;
        assert_violation(&srv, &[br#"44/admin,"x""#], "CONNECT_ERROR from a client, other namespace").await;
        assert_violation(&srv, &[br#"40/admin,"str""#], "CONNECT payload not an object").await;
        assert_violation(&srv, &[br#"40/admin,[1]"#], "CONNECT payload an array").await;
        assert_violation(&srv, &[b"41/admin,"], "DISCONNECT for a namespace not joined").await;
        assert_violation(&srv, &[br#"42/admin,["echo",1]"#], "EVENT for a namespace not joined").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A client whose event to a namespace crosses the server's disconnection of its socket
/// in that namespace (the client emits while the server kicks it). As in Node
/// (`client.ts` `ondecoded`: "invalid state" → `this.close()`), a packet for a namespace
/// the client is not (or no longer) in closes the whole connection. (The reference's
/// B2 #21 says "ignored"; Node's code closes. This pins the Node behaviour.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_racing_a_server_side_disconnect_closes_like_node() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        ws.send_text("40/admin,").await.unwrap();
        assert!(ws.recv_text().await.starts_with("40/admin,{"));
        // the kick and an event the client sent before it learned about the kick
        let mut burst = masked(OP_TEXT, br#"42/admin,["kick"]"#);
        burst.extend(masked(OP_TEXT, br#"42/admin,["echo","in flight"]"#));
        ws.send_raw(&burst).await.unwrap();
        assert_eq!(ws.recv_text().await, "41/admin,");
        Ws::assert_ended(ws.end_within(CLOSE_SOON).await, "event for a namespace left");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Many CONNECT attempts to distinct unknown namespaces on one connection: each is
/// answered with CONNECT_ERROR and nothing accumulates (no namespace is created).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_unknown_namespaces() {
    bounded(LIMIT, async {
        let srv = server().await;
        let before = srv.io.namespaces().len();
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        let mut burst = Vec::new();
        for i in 0..2000 {
            burst.extend(masked(OP_TEXT, format!("40/unknown-{i},").as_bytes()));
        }
        ws.send_raw(&burst).await.unwrap();
        for i in 0..2000 {
            assert_eq!(ws.recv_text().await, format!(r#"44/unknown-{i},{{"message":"Invalid namespace"}}"#));
        }
        assert_eq!(srv.io.namespaces().len(), before, "unknown namespaces are not created");
        ws_echo(&mut ws, "7").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// decoder regressions found by fuzzing (crates/shoal-socketio-proto/fuzz)
// ---------------------------------------------------------------------------------------

fn decode_complete(text: &str) -> shoal_socketio_proto::Packet {
    match shoal_socketio_proto::decode::decode_text(text, &shoal_socketio_proto::Limits::default()) {
        Ok(shoal_socketio_proto::Decoded::Complete(p)) => p,
        other => panic!("{text}: {other:?}"),
    }
}

/// `serde_roundtrip` target: decode → encode → decode must give the same packet. The
/// float `1.2396180475567891e+36` (reached from the integer
/// `1239618047556789012345678901234567890`) is re-encoded as its shortest form, which
/// serde_json's default parser reads one ULP off.
#[test]
fn regression_float_round_trip() {
    for text in [
        r#"2["a",1239618047556789012345678901234567890]"#,
        r#"2["a",1.2396180475567891e+36]"#,
        r#"2["a",1.2345678900624461e+39]"#,
    ] {
        let first = decode_complete(text);
        let again = decode_complete(&shoal_socketio_proto::encode::to_string(&first));
        assert_eq!(again, first, "{text}");
    }
}

/// `decode` target: a placeholder object in a plain (non-binary) EVENT is ordinary data
/// (as in Node); the same in a binary packet with 0 attachments is refused; reading it
/// as bytes fails cleanly (there is no attachment to resolve it to).
#[test]
fn regression_placeholder_outside_binary_packets() {
    use shoal_socketio_proto::decode::{Decoded, decode_text};
    let limits = shoal_socketio_proto::Limits::default();
    let binary = decode_text(r#"50-["a",{"_placeholder":true,"num":0}]"#, &limits);
    assert!(binary.is_err(), "binary packet with a dangling placeholder: {binary:?}");
    let Ok(Decoded::Complete(plain)) = decode_text(r#"2["a",{"_placeholder":true,"num":0}]"#, &limits) else {
        panic!("a plain EVENT with a placeholder-shaped object is valid")
    };
    let args = plain.args().unwrap();
    assert!(args.attachments.is_empty());
    assert!(args.get::<bytes::Bytes>(1).is_err(), "no attachment to resolve it to");
    assert_eq!(args.get::<serde_json::Value>(1).unwrap(), serde_json::json!({"_placeholder": true, "num": 0}));
}
