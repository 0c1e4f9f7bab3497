//! Several `shoal serve --redis` nodes: forwarding between nodes (raw HTTP and WebSocket,
//! unknown node, loop header, dead owner), and draining (SIGUSR1, `/health`, the official
//! client's disconnect reason).
//!
//! Needs `redis-server` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use shoal_bench::conn::WsClient;
use shoal_testkit::{NodeProcess, RedisServer};
use support::{Polling, Shoal, get, next_packet, request};

const UNKNOWN: &str = r#"{"code":1,"message":"Session ID unknown"}"#;

/// Retries `f` until it gives `Some`, at most `timeout`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a WebSocket client waits for each frame.
const FRAME_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_another_nodes_session_are_forwarded() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut a = Shoal::serve(&["--redis", &url, "--node-id", "nodA"]);
    let b = Shoal::serve(&["--redis", &url, "--node-id", "nodB"]);
    let _c = Shoal::serve(&["--redis", &url, "--node-id", "nodC"]);
    let (pa, pb) = (a.addr, b.addr);

    // handshake on A; Socket.IO connect and polls through B
    let mut s = Polling::open(pa).await;
    assert!(s.sid.starts_with("nodA"), "{}", s.sid);
    let session = &s;
    let first = eventually(Duration::from_secs(15), "B forwards to A (membership)", move || async move {
        let r = session.post(pb, "40").await;
        (r.status == 200).then_some(r)
    })
    .await;
    assert_eq!(first.text(), "ok");
    let connect = s.expect(pb, |p| p.starts_with("40{\"sid\":")).await;
    assert!(connect.contains("\"sid\":\"nodA"), "the socket id names A: {connect}");
    // an event posted through B, its acknowledgement polled through B (A's session)
    assert_eq!(s.post(pb, r#"421["join","r1"]"#).await.status, 200);
    s.expect(pb, |p| p == r#"431[{"ok":true,"room":"r1"}]"#).await;
    // mixing nodes request by request works too
    assert_eq!(s.post(pa, r#"422["chat",{"room":"r1","text":"hi"}]"#).await.status, 200);
    s.expect(pb, |p| p.starts_with(r#"42["chat","#) && p.contains(r#""text":"hi""#)).await;
    s.expect(pa, |p| p.starts_with("432[")).await;

    // unknown node: 400 code 1, as without forwarding
    let unknown = get(pb, "/socket.io/?EIO=4&transport=polling&sid=zzzzAAAAAAAAAAAAAAAA").await;
    assert_eq!((unknown.status, unknown.text().as_str()), (400, UNKNOWN));
    // a request that was already forwarded is never forwarded again
    let looped = request(pb, "GET", &s.url(), &["x-shoal-forwarded: 1"], "").await;
    assert_eq!((looped.status, looped.text().as_str()), (400, UNKNOWN));
    // B's own sessions are served by B
    let own = Polling::open(pb).await;
    assert!(own.sid.starts_with("nodB"));
    assert_eq!(own.post(pb, "40").await.status, 200);

    // WebSocket upgrade through B of a polling session of A
    let mut w = Polling::open(pa).await;
    assert_eq!(w.post(pa, "40").await.status, 200);
    w.expect(pa, |p| p.starts_with("40{")).await;
    let stream = tokio::net::TcpStream::connect(pb).await.unwrap();
    let path = format!("/socket.io/?EIO=4&transport=websocket&sid={}", w.sid);
    let mut ws = WsClient::handshake(stream, &pb.to_string(), &path, 7).await.expect("101 through B");
    ws.queue_text(b"2probe");
    ws.flush().await.unwrap();
    assert_eq!(next_packet(&mut ws, FRAME_WITHIN).await, "3probe");
    ws.queue_text(b"5");
    ws.queue_text(br#"421["join","w1"]"#);
    ws.flush().await.unwrap();
    // the room's "system" message and the acknowledgement, in either order
    let mut seen = Vec::new();
    while !seen.iter().any(|p: &String| p == r#"431[{"ok":true,"room":"w1"}]"#) {
        assert!(seen.len() < 5, "no acknowledgement over the tunnel: {seen:?}");
        seen.push(next_packet(&mut ws, FRAME_WITHIN).await);
    }

    // A dies: B answers 400 code 1 for its sessions (the client reconnects elsewhere)
    a.kill();
    let session = &s;
    let dead = eventually(Duration::from_secs(15), "400 for a dead owner", move || async move {
        let r = session.poll(pb).await;
        (r.status == 400).then_some(r)
    })
    .await;
    assert_eq!(dead.text(), UNKNOWN);
    // the tunnel of A's WebSocket session ends with A
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if ws.next_text().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the tunnel through B closes when A dies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_new_sessions_keeps_old_ones_then_closes_them() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let node =
        Shoal::serve(&["--redis", &url, "--node-id", "drn1", "--drain-grace", "4000", "--log", "info,shoal=debug"]);
    let base = format!("http://{}", node.addr);

    let health = get(node.addr, "/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok", "node": "drn1", "connections": 0, "forwarded": 0}));

    // an official client (reconnection on), in a room
    let mut clients = NodeProcess::spawn("clients.mjs", &[]);
    clients.call(json!({"cmd": "connect", "url": base, "count": 1, "reconnection": true})).await;
    let joined = clients.call(json!({"cmd": "emitWithAck", "index": 0, "event": "join", "args": ["r1"]})).await;
    assert_eq!(joined, json!([{"ok": true, "room": "r1"}]));

    node.signal("USR1");
    // /health says draining (503), with the node and its connection
    let addr = node.addr;
    let h = eventually(Duration::from_secs(10), "/health 503", move || async move {
        let h = get(addr, "/health").await;
        (h.status == 503).then_some(h)
    })
    .await;
    assert_eq!(h.json(), json!({"status": "draining", "node": "drn1", "connections": 1, "forwarded": 0}));
    // the announcement says draining too
    let r = &redis;
    let announced = eventually(Duration::from_secs(10), "draining announced", move || async move {
        let v = r.cmd(&["GET", "socket.io:node:drn1"]).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(v.as_bytes()?).ok()?;
        (v["draining"] == json!(true)).then_some(v)
    })
    .await;
    assert_eq!(announced["load"], json!(1));

    // a new handshake is refused with 503 and a JSON error
    let refused = get(node.addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json(), json!({"code": 4, "message": "Server draining"}));

    // the existing client still works
    let chat = clients
        .call(
            json!({"cmd": "emitWithAck", "index": 0, "event": "chat", "args": [{"room": "r1", "text": "still here"}]}),
        )
        .await;
    assert_eq!(chat[0]["ok"], json!(true), "{chat}");
    clients
        .wait_for(
            |v| v["event"] == "received" && v["name"] == "chat" && v["args"][0]["text"] == "still here",
            Duration::from_secs(10),
        )
        .await;

    // after the grace period the node closes it at the Engine.IO level: the client's
    // reason is "transport close" (it reconnects), not "io server disconnect"
    let gone = clients.wait_for(|v| v["event"] == "disconnected", Duration::from_secs(30)).await;
    assert_eq!(gone["reason"], json!("transport close"), "{gone}");
    let h = eventually(Duration::from_secs(15), "0 connections", move || async move {
        let h = get(addr, "/health").await;
        (h.json()["connections"] == json!(0)).then_some(h)
    })
    .await;
    assert_eq!(h.status, 503, "still draining");
    // its reconnection attempts are refused (this node takes no new session)
    clients.wait_for(|v| v["event"] == "connectError", Duration::from_secs(30)).await;
}
