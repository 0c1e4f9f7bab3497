//! Hostile input at the WebSocket layer: broken frames (masking, lengths, reserved bits,
//! opcodes, fragmentation, UTF-8), broken upgrade requests (version, key, extension
//! offers, trailing garbage, resets), and misuse of the Engine.IO upgrade (probes,
//! races, abandoned candidates). Each test checks the close code (or the HTTP answer)
//! within a bounded time, then that a normal client is still served.
//!
//! `cargo test -p shoal --test hostile_ws`

mod common;
mod raw;

use std::time::Duration;

use common::TestServer;
use raw::*;
use shoal::SocketIo;
use tokio::time::{Instant, timeout};

const LIMIT: Duration = Duration::from_secs(40);
/// How long a violation may take to be answered with a close.
const CLOSE_SOON: Duration = Duration::from_secs(5);

async fn server() -> TestServer {
    TestServer::start(SocketIo::builder(), echo_handlers).await
}

/// A Socket.IO WebSocket client that sends `bytes` and must be closed with `code`.
async fn assert_closed_with(srv: &TestServer, bytes: &[u8], code: u16, what: &str) {
    let (mut ws, _) = sio_ws_connect(srv.addr).await;
    let _ = ws.send_raw(bytes).await;
    let end = Ws::assert_ended(ws.end_within(CLOSE_SOON).await, what);
    assert_eq!(end, WsEnd::Close(code), "{what}");
}

// ---------------------------------------------------------------------------------------
// 6. frames
// ---------------------------------------------------------------------------------------

/// An unmasked frame from a client → close 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmasked_client_frame_is_1002() {
    bounded(LIMIT, async {
        let srv = server().await;
        assert_closed_with(&srv, &frame(OP_TEXT, true, 0, br#"42["echo",1]"#, None), 1002, "unmasked text").await;
        assert_closed_with(&srv, &frame(OP_PING, true, 0, b"", None), 1002, "unmasked ping").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Frame headers announcing absurd lengths: 2^63-1 and 10 GB → 1009 at once (the
/// header alone is enough; nothing is allocated for it, see hostile_resources for the
/// memory check); 2^63 (most significant bit set) → 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_frame_lengths() {
    bounded(LIMIT, async {
        let srv = server().await;
        for (op, len, code) in [
            (OP_TEXT, (1u64 << 63) - 1, 1009),
            (OP_BINARY, 10_000_000_000, 1009),
            (OP_TEXT, 1_000_001, 1009),
            (OP_TEXT, 1u64 << 63, 1002),
            (OP_BINARY, u64::MAX, 1002),
        ] {
            let start = Instant::now();
            assert_closed_with(&srv, &header_only(op, len), code, &format!("length {len}")).await;
            assert!(start.elapsed() < Duration::from_secs(3), "length {len} took {:?}", start.elapsed());
        }
        // a control frame over 125 bytes
        assert_closed_with(&srv, &masked(OP_PING, &[0u8; 126]), 1002, "126-byte ping").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A message over `max_payload` (1 MB) sent for real → 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_max_payload_is_1009() {
    bounded(LIMIT, async {
        let srv = server().await;
        let big = format!(r#"42["echo","{}"]"#, "x".repeat(1_000_000));
        assert_closed_with(&srv, &masked(OP_TEXT, big.as_bytes()), 1009, "1 MB text").await;
        // the same, split into fragments that are each small
        let mut bytes = frame(OP_TEXT, false, 0, &big.as_bytes()[..500_000], Some([9, 9, 9, 9]));
        bytes.extend(frame(OP_CONT, true, 0, &big.as_bytes()[500_000..], Some([9, 9, 9, 9])));
        assert_closed_with(&srv, &bytes, 1009, "1 MB in two fragments").await;
        // exactly max_payload is fine
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        let filler = "y".repeat(1_000_000 - r#"42["echo",""]"#.len());
        ws_echo(&mut ws, &format!("\"{filler}\"")).await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// RSV bits without a negotiated extension → 1002 (RSV1 too: deflate is off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_bits_are_1002() {
    bounded(LIMIT, async {
        let srv = server().await;
        for rsv in [0b100, 0b010, 0b001, 0b111] {
            let f = frame(OP_TEXT, true, rsv, br#"42["echo",1]"#, Some([1, 2, 3, 4]));
            assert_closed_with(&srv, &f, 1002, &format!("rsv {rsv:03b}")).await;
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Reserved opcodes 3-7 and 0xB-0xF → 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opcodes_are_1002() {
    bounded(LIMIT, async {
        let srv = server().await;
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_closed_with(&srv, &masked(op, b"x"), 1002, &format!("opcode {op:#x}")).await;
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Fragmentation abuse: a fragmented control frame, a continuation without a start, a
/// new data frame in the middle of a fragmented one → 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmentation_violations_are_1002() {
    bounded(LIMIT, async {
        let srv = server().await;
        let k = Some([5, 6, 7, 8]);
        assert_closed_with(&srv, &frame(OP_PING, false, 0, b"a", k), 1002, "fragmented ping").await;
        assert_closed_with(&srv, &frame(OP_CLOSE, false, 0, &1000u16.to_be_bytes(), k), 1002, "fragmented close").await;
        assert_closed_with(&srv, &frame(OP_CONT, true, 0, b"42", k), 1002, "continuation without start").await;
        let mut b = frame(OP_TEXT, false, 0, b"42[\"echo\"", k);
        b.extend(frame(OP_TEXT, true, 0, b",1]", k));
        assert_closed_with(&srv, &b, 1002, "text inside a fragmented text").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Close frames with a 1-byte payload or a code that may not be sent → 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_close_frames_are_1002() {
    bounded(LIMIT, async {
        let srv = server().await;
        assert_closed_with(&srv, &masked(OP_CLOSE, &[3]), 1002, "1-byte close").await;
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535] {
            assert_closed_with(&srv, &masked(OP_CLOSE, &code.to_be_bytes()), 1002, &format!("close code {code}")).await;
        }
        // a valid close is echoed
        assert_closed_with(&srv, &masked(OP_CLOSE, &4001u16.to_be_bytes()), 4001, "close 4001").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// 10 000 one-byte fragments of one message (never finished): refused past the fragment
/// limit (1024) with 1009 (CVE-2026-48779 shape).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_tiny_fragments_are_1009() {
    bounded(LIMIT, async {
        let srv = server().await;
        let k = Some([1, 1, 1, 1]);
        let mut b = frame(OP_TEXT, false, 0, b"4", k);
        for _ in 0..10_000 {
            b.extend(frame(OP_CONT, false, 0, b"2", k));
        }
        assert_closed_with(&srv, &b, 1009, "10k fragments").await;
        // and exactly at the limit a message is fine: 1024 frames in all
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        let msg = br#"42["echo","abcdefghijklmnopqrstuvwxyz0123456789"]"#;
        let mut b = Vec::new();
        let mut frames = 0;
        for (i, byte) in msg.iter().enumerate() {
            let op = if i == 0 { OP_TEXT } else { OP_CONT };
            b.extend(frame(op, i == msg.len() - 1, 0, std::slice::from_ref(byte), k));
            frames += 1;
        }
        assert!(frames <= 1024);
        ws.send_raw(&b).await.unwrap();
        assert_eq!(ws.recv_text().await, String::from_utf8_lossy(msg));
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Invalid UTF-8 in a text frame → 1007, whole or split across fragments (including a
/// code point cut by the fragment boundary that never completes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_is_1007() {
    bounded(LIMIT, async {
        let srv = server().await;
        let k = Some([7, 7, 7, 7]);
        assert_closed_with(&srv, &masked(OP_TEXT, b"42[\"echo\",\"\xff\"]"), 1007, "0xff").await;
        assert_closed_with(&srv, &masked(OP_TEXT, b"42[\"\xed\xa0\x80\"]"), 1007, "surrogate").await;
        let mut b = frame(OP_TEXT, false, 0, b"42[\"echo\",\"\xe2\x82", k);
        b.extend(frame(OP_CONT, true, 0, b"\"]", k));
        assert_closed_with(&srv, &b, 1007, "truncated code point across fragments").await;
        // a code point split across fragments but complete is fine
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        let mut b = frame(OP_TEXT, false, 0, "42[\"echo\",\"\u{20ac}".as_bytes().split_last().unwrap().1, k);
        b.extend(frame(OP_CONT, true, 0, &[0xac, b'"', b']'], k));
        ws.send_raw(&b).await.unwrap();
        assert_eq!(ws.recv_text().await, "42[\"echo\",\"\u{20ac}\"]");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// WebSocket pings (even many, with payloads) are answered with pongs carrying exactly
/// the same bytes (CVE-2016-10518: no uninitialized memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_with_the_same_bytes() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        let mut burst = Vec::new();
        for i in 0..1000u32 {
            let payload: Vec<u8> = (0..(i % 126)).map(|j| (i + j) as u8).collect();
            burst.extend(masked(OP_PING, &payload));
        }
        ws.send_raw(&burst).await.unwrap();
        for i in 0..1000u32 {
            let f = timeout(Duration::from_secs(5), ws.recv_frame()).await.expect("pong in time").unwrap();
            assert_eq!(f.opcode, OP_PONG);
            let payload: Vec<u8> = (0..(i % 126)).map(|j| (i + j) as u8).collect();
            assert_eq!(f.payload, payload, "pong {i}");
        }
        ws_echo(&mut ws, "1").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 6. upgrade requests
// ---------------------------------------------------------------------------------------

/// `Sec-WebSocket-Version` other than 13 (8, missing, two values) → 426 with
/// `Sec-WebSocket-Version: 13`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_websocket_versions_are_426() {
    bounded(LIMIT, async {
        let srv = server().await;
        let base = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="];
        for version in [Some("8"), None, Some("13, 8"), Some("14"), Some("")] {
            let mut h: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            if let Some(v) = version {
                h.push(format!("Sec-WebSocket-Version: {v}"));
            }
            let h: Vec<&str> = h.iter().map(String::as_str).collect();
            let r = request(srv.addr, "GET", "/socket.io/?EIO=4&transport=websocket", &h, b"").await;
            assert_eq!(r.status, 426, "version {version:?}");
            assert_eq!(r.header("sec-websocket-version"), Some("13"));
        }
        assert_eq!(srv.io.connection_count(), 0, "no session for a refused upgrade");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A missing, garbage, wrongly sized or duplicated `Sec-WebSocket-Key` → 400 code 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_websocket_keys_are_400() {
    bounded(LIMIT, async {
        let srv = server().await;
        let base = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"];
        let cases: [&[&str]; 6] = [
            &[],
            &["Sec-WebSocket-Key: test"],
            &["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
            &["Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="],
            &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="],
            &["Sec-WebSocket-Key: "],
        ];
        for extra in cases {
            let mut h = base.to_vec();
            h.extend_from_slice(extra);
            let r = request(srv.addr, "GET", "/socket.io/?EIO=4&transport=websocket", &h, b"").await;
            r.assert_eio_error(400, 3);
        }
        assert_eq!(srv.io.connection_count(), 0);
        assert_healthy(srv.addr).await;
    })
    .await;
}

const EVIL_EXTENSIONS: [&str; 8] = [
    "constructor",
    ",;constructor",
    "permessage-deflate; server_max_window_bits=10",
    "permessage-deflate; client_max_window_bits=99",
    "permessage-deflate; constructor; __proto__=1",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=\"15",
    ";;;,,,=;=,",
];

/// Hostile `Sec-WebSocket-Extensions` offers with deflate disabled: ignored (no
/// extension in the answer), the session works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_offers_are_ignored_without_deflate() {
    bounded(LIMIT, async {
        let srv = server().await;
        for ext in EVIL_EXTENSIONS.iter().chain(&["permessage-deflate"]) {
            let h = format!("Sec-WebSocket-Extensions: {ext}");
            let mut ws = Ws::connect_with(srv.addr, "/socket.io/?EIO=4&transport=websocket", &[&h])
                .await
                .unwrap_or_else(|r| panic!("{ext}: {r:?}"));
            assert_eq!(ws.response.header("sec-websocket-extensions"), None, "{ext}");
            assert!(ws.recv_text().await.starts_with("0{"));
            ws.send_text("40").await.unwrap();
            assert!(ws.recv_text().await.starts_with("40{"));
            ws_echo(&mut ws, "2").await;
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// The same offers with deflate enabled: none crashes; invalid or unacceptable offers
/// (a window other than 15) are declined, a plain offer is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_offers_with_deflate_enabled() {
    bounded(LIMIT, async {
        let srv = TestServer::start(
            SocketIo::builder().per_message_deflate(shoal_engineio::config::DeflateConfig::default()),
            echo_handlers,
        )
        .await;
        for ext in EVIL_EXTENSIONS {
            let h = format!("Sec-WebSocket-Extensions: {ext}");
            match Ws::connect_with(srv.addr, "/socket.io/?EIO=4&transport=websocket", &[&h]).await {
                Ok(mut ws) => {
                    let accepted = ws.response.header("sec-websocket-extensions").map(str::to_owned);
                    match &accepted {
                        Some(a) => {
                            assert!(a.starts_with("permessage-deflate"), "{ext} → {a}");
                            assert!(!a.contains("window_bits=10") && !a.contains("99"), "{ext} → {a}");
                        }
                        None => {
                            // declined: a plain session
                            assert!(ws.recv_text().await.starts_with("0{"));
                            ws.send_text("40").await.unwrap();
                            assert!(ws.recv_text().await.starts_with("40{"));
                            ws_echo(&mut ws, "3").await;
                        }
                    }
                }
                Err(r) => assert_eq!(r.status, 400, "{ext}: {r:?}"),
            }
        }
        let ws = Ws::connect_with(
            srv.addr,
            "/socket.io/?EIO=4&transport=websocket",
            &["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
        )
        .await
        .unwrap();
        assert!(ws.response.header("sec-websocket-extensions").is_some_and(|v| v.starts_with("permessage-deflate")));
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// An upgrade request immediately followed by garbage (CVE-2022-21676: `test` right
/// after the head): the garbage is read as a frame with RSV bits set → 1002, and
/// nothing else is affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_upgrade_request_is_1002() {
    bounded(LIMIT, async {
        let srv = server().await;
        let mut c = Conn::open(srv.addr).await;
        let mut req = build_request("GET", "/socket.io/?EIO=4&transport=websocket", &WS_HEADERS, b"");
        req.extend_from_slice(b"test");
        c.write(&req).await.unwrap();
        let r = timeout(CLOSE_SOON, c.read_response()).await.unwrap().unwrap();
        assert_eq!(r.status, 101);
        let mut ws = Ws { conn: c, response: r };
        let end = ws.end_within(CLOSE_SOON).await;
        assert_eq!(end, Some(WsEnd::Close(1002)));

        // the same on the upgrade of an existing polling session: the candidate is
        // dropped, the polling session carries on
        let p = sio_polling_connect(srv.addr).await;
        let mut c = Conn::open(srv.addr).await;
        let mut req =
            build_request("GET", &format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid), &WS_HEADERS, b"");
        req.extend_from_slice(b"test");
        c.write(&req).await.unwrap();
        let r = timeout(CLOSE_SOON, c.read_response()).await.unwrap().unwrap();
        assert_eq!(r.status, 101);
        let mut ws = Ws { conn: c, response: r };
        Ws::assert_ended(ws.end_within(CLOSE_SOON).await, "garbage on an upgrade candidate");
        polling_echo(&p, r#""polling survives""#).await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Upgrade requests the server refuses, then a TCP reset before it closes
/// (CVE-2022-41940): nothing is disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_a_refused_upgrade() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        for i in 0..100 {
            let c = Conn::open(srv.addr).await;
            let mut c = c;
            let target = if i % 2 == 0 {
                "/socket.io/?EIO=4&transport=websocket".to_owned()
            } else {
                format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid)
            };
            let h = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: x"];
            c.write(&build_request("GET", &target, &h, b"")).await.unwrap();
            c.stream.set_zero_linger().unwrap();
            drop(c); // RST
        }
        // and resets in the middle of a valid upgrade
        for _ in 0..50 {
            let mut c = Conn::open(srv.addr).await;
            c.write(&build_request("GET", "/socket.io/?EIO=4&transport=websocket", &WS_HEADERS, b"")).await.unwrap();
            c.stream.set_zero_linger().unwrap();
            drop(c);
        }
        assert!(
            common::wait_until(Duration::from_secs(10), || srv.io.connection_count() == 1).await,
            "sessions of reset upgrades are cleaned up ({} left)",
            srv.io.connection_count()
        );
        polling_echo(&p, "null").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 7. Engine.IO over WebSocket
// ---------------------------------------------------------------------------------------

/// v4: only the server pings. A client `2` (or `2probe` on a session that is not
/// upgrading) closes the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pings_close_a_websocket_session() {
    bounded(LIMIT, async {
        let srv = server().await;
        for ping in ["2", "2probe"] {
            let (mut ws, _) = sio_ws_connect(srv.addr).await;
            ws.send_text(ping).await.unwrap();
            Ws::assert_ended(ws.end_within(CLOSE_SOON).await, ping);
            // also before any CONNECT
            let (mut ws, _) = Ws::engine(srv.addr).await;
            ws.send_text(ping).await.unwrap();
            Ws::assert_ended(ws.end_within(CLOSE_SOON).await, ping);
        }
        assert!(common::wait_until(Duration::from_secs(5), || srv.io.connection_count() == 0).await);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Engine.IO packets that make no sense from a client on WebSocket: unknown types and
/// empty messages are parse errors (closed); `0`, `5`, `6` are ignored; `1` closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_packets_on_websocket() {
    bounded(LIMIT, async {
        let srv = server().await;
        for bad in ["", "7", "9", "a", "b!!!", "x42[\"echo\",1]"] {
            let (mut ws, _) = sio_ws_connect(srv.addr).await;
            ws.send_text(bad).await.unwrap();
            Ws::assert_ended(ws.end_within(CLOSE_SOON).await, &format!("packet {bad:?}"));
        }
        let (mut ws, _) = sio_ws_connect(srv.addr).await;
        for ignored in ["0", "5", "6", "0{\"sid\":\"x\"}", "3", "3probe"] {
            ws.send_text(ignored).await.unwrap();
        }
        ws_echo(&mut ws, r#""after 0/5/6/3""#).await;
        ws.send_text("1").await.unwrap();
        Ws::assert_ended(ws.end_within(CLOSE_SOON).await, "close packet");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Opens the WebSocket candidate of polling session `p` (without probing).
async fn candidate(p: &Polling) -> Ws {
    Ws::connect_with(p.addr, &format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid), &[])
        .await
        .unwrap_or_else(|r| panic!("upgrade refused: {r:?}"))
}

/// What a candidate answers to `2probe`: `Some("3probe")`, or `None` if it was closed.
async fn probe(ws: &mut Ws) -> Option<String> {
    let _ = ws.send_text("2probe").await;
    let f = timeout(CLOSE_SOON, ws.recv_frame()).await.expect("an answer to the probe");
    match f {
        Ok(f) if f.opcode == OP_TEXT => Some(f.text()),
        _ => None,
    }
}

/// Two upgrades of one session racing: exactly one becomes the candidate, the other is
/// closed right after its handshake; the session upgrades over the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_upgrades_one_wins() {
    bounded(LIMIT, async {
        let srv = server().await;
        for _ in 0..5 {
            let p = sio_polling_connect(srv.addr).await;
            let (mut a, mut b) = tokio::join!(candidate(&p), candidate(&p));
            let (ra, rb) = tokio::join!(probe(&mut a), probe(&mut b));
            let mut winner = match (ra.as_deref(), rb.as_deref()) {
                (Some("3probe"), None) => a,
                (None, Some("3probe")) => b,
                other => panic!("both or neither upgrade won: {other:?}"),
            };
            let released = p.get().await;
            assert!(released.iter().any(|s| s == "6"));
            winner.send_text("5").await.unwrap();
            ws_echo(&mut winner, r#""winner""#).await;
            // a third upgrade after the fact is closed at once as well
            let mut late = candidate(&p).await;
            assert_eq!(probe(&mut late).await, None, "upgrade of an upgraded session");
            ws_echo(&mut winner, r#""still the winner""#).await;
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Upgrade candidates that misbehave (never probe, send `5` first, probe twice, send a
/// heartbeat) are dropped (at the latest after `upgrade_timeout`) and the polling session
/// carries on, and can still upgrade properly afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_upgrade_candidates_are_dropped() {
    bounded(LIMIT, async {
        let srv =
            TestServer::start(SocketIo::builder().upgrade_timeout(Duration::from_millis(500)), echo_handlers).await;
        let p = sio_polling_connect(srv.addr).await;

        // abandoned: no probe at all
        let mut c = candidate(&p).await;
        let start = Instant::now();
        Ws::assert_ended(c.end_within(Duration::from_secs(5)).await, "abandoned candidate");
        assert!(start.elapsed() < Duration::from_secs(3), "dropped after {:?}", start.elapsed());
        polling_echo(&p, "1").await;

        // `5` before the probe
        let mut c = candidate(&p).await;
        c.send_text("5").await.unwrap();
        Ws::assert_ended(c.end_within(Duration::from_secs(5)).await, "5 before 2probe");
        polling_echo(&p, "2").await;

        // probe twice, then nothing
        let mut c = candidate(&p).await;
        assert_eq!(probe(&mut c).await.as_deref(), Some("3probe"));
        assert!(p.get().await.iter().any(|s| s == "6"));
        assert_eq!(probe(&mut c).await, None, "a second probe ends the candidate");
        polling_echo(&p, "3").await;

        // a heartbeat or a message instead of the probe
        for first in ["2", "3", r#"42["echo",1]"#] {
            let mut c = candidate(&p).await;
            c.send_text(first).await.unwrap();
            Ws::assert_ended(c.end_within(Duration::from_secs(5)).await, first);
            polling_echo(&p, "4").await;
        }

        // a proper upgrade still works
        let mut c = candidate(&p).await;
        assert_eq!(probe(&mut c).await.as_deref(), Some("3probe"));
        assert!(p.get().await.iter().any(|s| s == "6"));
        c.send_text("5").await.unwrap();
        ws_echo(&mut c, r#""upgraded at last""#).await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// An upgrade of an existing v4 session whose request says `EIO=3` or has no `EIO`
/// (CVE-2026-102599): the session keeps its handshake's protocol (only v4 exists here):
/// the server pings with `2`, and a client `2` still closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_with_another_protocol_revision_stays_v4() {
    bounded(LIMIT, async {
        let srv = TestServer::start(
            SocketIo::builder().ping_interval(Duration::from_millis(300)).ping_timeout(Duration::from_millis(2000)),
            echo_handlers,
        )
        .await;
        for eio in ["EIO=3&", "", "EIO=5&"] {
            let p = sio_polling_connect(srv.addr).await;
            let target = format!("/socket.io/?{eio}transport=websocket&sid={}", p.sid);
            match Ws::connect_with(srv.addr, &target, &[]).await {
                Err(r) => assert_eq!(r.status, 400, "{eio}: {r:?}"),
                Ok(mut ws) => {
                    assert_eq!(probe(&mut ws).await.as_deref(), Some("3probe"));
                    let _ = p.get().await;
                    ws.send_text("5").await.unwrap();
                    // v4 heartbeat: the server pings
                    let f = timeout(Duration::from_secs(5), ws.recv_frame()).await.unwrap().unwrap();
                    assert_eq!((f.opcode, f.text().as_str()), (OP_TEXT, "2"), "{eio}: a v4 server ping");
                    ws.send_text("3").await.unwrap();
                    ws_echo(&mut ws, "5").await;
                    // a v3-style client ping is refused
                    ws.send_text("2").await.unwrap();
                    Ws::assert_ended(ws.end_within(CLOSE_SOON).await, "client ping after the upgrade");
                }
            }
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// permessage-deflate
// ---------------------------------------------------------------------------------------

/// A raw DEFLATE stream (one final block with fixed Huffman codes) that inflates to a
/// zero byte followed by `matches` copies of 258 zeros: 13 bits per 258 bytes, so about
/// 2 500 times smaller than what it inflates to.
fn deflate_bomb(matches: usize) -> Vec<u8> {
    deflate_fixed(&[0], matches)
}

/// A raw DEFLATE stream with fixed Huffman codes: the bytes of `literals` (each < 144),
/// then `matches` repetitions of 258 copies of the last one.
fn deflate_fixed(literals: &[u8], matches: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }
    impl Bits {
        /// `len` bits of `v`, least significant first (header fields, extra bits).
        fn lsb(&mut self, v: u32, len: u32) {
            for i in 0..len {
                self.bit((v >> i) & 1);
            }
        }
        /// A Huffman code: most significant bit first.
        fn code(&mut self, v: u32, len: u32) {
            for i in (0..len).rev() {
                self.bit((v >> i) & 1);
            }
        }
        fn bit(&mut self, b: u32) {
            self.acc |= b << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }
    let mut w = Bits { out: Vec::new(), acc: 0, n: 0 };
    w.lsb(1, 1); // BFINAL
    w.lsb(1, 2); // BTYPE = fixed Huffman
    for &l in literals {
        assert!(l < 144);
        w.code(0x30 + u32::from(l), 8); // literal
    }
    for _ in 0..matches {
        w.code(0xC5, 8); // length code 285: 258 bytes
        w.code(0, 5); // distance code 0: distance 1
    }
    w.code(0, 7); // end of block
    if w.n > 0 {
        w.out.push(w.acc as u8);
    }
    w.out
}

async fn deflate_server() -> TestServer {
    TestServer::start(
        SocketIo::builder().per_message_deflate(shoal_engineio::config::DeflateConfig::default()),
        echo_handlers,
    )
    .await
}

async fn deflate_ws(addr: std::net::SocketAddr) -> Ws {
    let ws = Ws::connect_with(
        addr,
        "/socket.io/?EIO=4&transport=websocket",
        &["Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover"],
    )
    .await
    .unwrap();
    assert!(ws.response.header("sec-websocket-extensions").is_some_and(|v| v.starts_with("permessage-deflate")));
    ws
}

/// A decompression bomb: 40 kB of compressed data that would inflate to 10 MB (and one
/// to 100 MB, split over fragments) → 1009 once the inflated size passes `max_payload`,
/// without inflating it all: the server's memory does not move by the bomb's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bomb_is_1009() {
    bounded(LIMIT, async {
        let srv = deflate_server().await;
        let base = rss_bytes();
        let bomb = deflate_bomb(10_000_000 / 258);
        assert!(bomb.len() < 70_000);
        let mut ws = deflate_ws(srv.addr).await;
        ws.send_raw(&frame(OP_TEXT, true, 0b100, &bomb, Some([3, 1, 4, 1]))).await.unwrap();
        assert_eq!(ws.end_within(CLOSE_SOON).await, Some(WsEnd::Close(1009)), "10 MB bomb");

        let bomb = deflate_bomb(100_000_000 / 258);
        let mut ws = deflate_ws(srv.addr).await;
        let mut bytes = Vec::new();
        for (i, part) in bomb.chunks(64 * 1024).enumerate() {
            let op = if i == 0 { OP_TEXT } else { OP_CONT };
            let rsv = if i == 0 { 0b100 } else { 0 };
            bytes.extend(frame(op, (i + 1) * 64 * 1024 >= bomb.len(), rsv, part, Some([2, 7, 1, 8])));
        }
        let _ = ws.send_raw(&bytes).await;
        assert_eq!(ws.end_within(CLOSE_SOON).await, Some(WsEnd::Close(1009)), "100 MB bomb in fragments");
        let g = rss_bytes().saturating_sub(base);
        assert!(g < 32 * MB, "+{} MB for bombs of 10 and 100 MB", g / MB);

        // invalid compressed data → 1007; compressed bits on a control frame → 1002
        let mut ws = deflate_ws(srv.addr).await;
        ws.send_raw(&frame(OP_TEXT, true, 0b100, &[0xff; 32], Some([1, 1, 1, 1]))).await.unwrap();
        assert_eq!(ws.end_within(CLOSE_SOON).await, Some(WsEnd::Close(1007)), "invalid deflate data");
        let mut ws = deflate_ws(srv.addr).await;
        ws.send_raw(&frame(OP_PING, true, 0b100, b"", Some([1, 1, 1, 1]))).await.unwrap();
        assert_eq!(ws.end_within(CLOSE_SOON).await, Some(WsEnd::Close(1002)), "RSV1 on a ping");
        // RSV1 on a continuation frame
        let mut ws = deflate_ws(srv.addr).await;
        let mut b = frame(OP_TEXT, false, 0, b"42", Some([1, 1, 1, 1]));
        b.extend(frame(OP_CONT, true, 0b100, b"[]", Some([1, 1, 1, 1])));
        ws.send_raw(&b).await.unwrap();
        assert_eq!(ws.end_within(CLOSE_SOON).await, Some(WsEnd::Close(1002)), "RSV1 on a continuation");

        // control: compressed messages that inflate within the limit are fine (answers
        // below the 1 kB threshold come back uncompressed)
        let mut ws = deflate_ws(srv.addr).await;
        assert!(ws.recv_text().await.starts_with("0{"));
        ws.send_raw(&frame(OP_TEXT, true, 0b100, &deflate_fixed(b"40", 0), Some([9, 8, 7, 6]))).await.unwrap();
        assert!(ws.recv_text().await.starts_with("40{"));
        let msg = br#"42["echo","compressed"]"#;
        ws.send_raw(&frame(OP_TEXT, true, 0b100, &deflate_fixed(msg, 0), Some([9, 8, 7, 6]))).await.unwrap();
        assert_eq!(ws.recv_text().await, String::from_utf8_lossy(msg));
        assert_healthy(srv.addr).await;
    })
    .await;
}
