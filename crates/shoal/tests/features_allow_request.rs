//! The `allow_request` hook: an async function of the handshake request that may refuse
//! it with HTTP 403 `{"code":4,"message":…}`. It runs once per handshake (polling or
//! WebSocket) and never for the requests of an existing session (polls, posts, upgrades).

mod common;
mod raw;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;
use raw::{
    Conn, Polling, Ws, bounded, build_request, echo_handlers, polling_url, request, sio_polling_connect, ws_echo,
};
use shoal::{RequestInfo, SocketIo};

const LIMIT: Duration = Duration::from_secs(30);
const REFUSAL: &str = "a good token is required";
const WS_URL: &str = "/socket.io/?EIO=4&transport=websocket";
/// How long the hook waits before deciding.
const HOOK_DELAY: Duration = Duration::from_millis(20);

/// A server whose hook admits requests with `x-token: good` or `?token=good`, after
/// sleeping [`HOOK_DELAY`]; returns it with the count of hook calls.
async fn server() -> (TestServer, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let builder = SocketIo::builder().allow_request(move |req: Arc<RequestInfo>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(HOOK_DELAY).await;
            let by_header = req.header("x-token") == Some(&b"good"[..]);
            let by_query = req.query("token").as_deref() == Some("good");
            if by_header || by_query { Ok(()) } else { Err(REFUSAL.to_owned()) }
        }
    });
    (TestServer::start(builder, echo_handlers).await, calls)
}

#[track_caller]
fn assert_refused(r: &raw::HttpResponse, what: &str) {
    assert_eq!(r.status, 403, "{what}: {r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}: {r:?}");
    assert_eq!(r.text(), format!(r#"{{"code":4,"message":"{REFUSAL}"}}"#), "{what}");
}

/// Refused handshakes (polling and WebSocket, no token or a wrong one) get the 403 JSON
/// and leave no session; admitted ones (header or query) work end to end; the hook is
/// called exactly once per handshake, never for posts, polls or an upgrade of an
/// existing session (which carry no token at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_refused_or_admitted_by_the_hook() {
    bounded(LIMIT, async {
        let (srv, calls) = server().await;
        let calls = || calls.load(Ordering::SeqCst);

        // refused: polling without a token
        let r = request(srv.addr, "GET", &polling_url(None), &[], b"").await;
        assert_refused(&r, "polling without a token");
        assert_eq!(calls(), 1);

        // refused: WebSocket without a token (no upgrade happens)
        let r = match Ws::connect_with(srv.addr, WS_URL, &[]).await {
            Ok(ws) => panic!("WebSocket without a token upgraded: {:?}", ws.response),
            Err(r) => r,
        };
        assert_refused(&r, "websocket without a token");
        assert_eq!(calls(), 2);

        // refused: a wrong token, in the header and in the query
        let r = request(srv.addr, "GET", &polling_url(None), &["X-Token: bad"], b"").await;
        assert_refused(&r, "polling with a wrong token");
        let r = Ws::connect_with(srv.addr, &format!("{WS_URL}&token=bad"), &[]).await.err().expect("refused");
        assert_refused(&r, "websocket with a wrong token");
        assert_eq!(calls(), 4);
        assert_eq!(srv.io.connection_count(), 0, "a refused handshake leaves no session");

        // admitted: polling with the header; the session then lives without the token
        let started = Instant::now();
        let r = request(srv.addr, "GET", &polling_url(None), &["X-Token: good"], b"").await;
        assert!(started.elapsed() >= HOOK_DELAY, "the handshake waited for the async hook");
        assert_eq!(r.status, 200, "{r:?}");
        let open = raw::parse_open(&r.text());
        let p = Polling { addr: srv.addr, sid: open["sid"].as_str().expect("sid").to_owned(), open };
        assert_eq!(calls(), 5);
        let posted = p.post(b"40").await;
        assert_eq!((posted.status, posted.text().as_str()), (200, "ok"));
        assert!(p.get_until(|s| s.starts_with("40{")).await.starts_with("40{"));
        raw::polling_echo(&p, r#""over polling""#).await;

        // the upgrade of that session is a request of an existing session: no hook, no token
        let mut ws = Ws::connect_with(srv.addr, &format!("{WS_URL}&sid={}", p.sid), &[])
            .await
            .unwrap_or_else(|r| panic!("upgrade refused: {r:?} {}", r.text()));
        ws.send_text("2probe").await.expect("probe");
        assert_eq!(ws.recv_text().await, "3probe");
        ws.send_text("5").await.expect("upgrade");
        ws_echo(&mut ws, r#""over the upgraded websocket""#).await;
        assert_eq!(calls(), 5, "posts, polls and the upgrade did not call the hook");

        // admitted: WebSocket with the header, and with the query parameter
        let mut ws2 = Ws::connect_with(srv.addr, WS_URL, &["X-Token: good"])
            .await
            .unwrap_or_else(|r| panic!("websocket with the header refused: {r:?}"));
        assert!(ws2.recv_text().await.starts_with("0{"));
        ws2.send_text("40").await.expect("CONNECT");
        assert!(ws2.recv_text().await.starts_with("40{"));
        ws_echo(&mut ws2, "1").await;
        let mut ws3 = Ws::connect_with(srv.addr, &format!("{WS_URL}&token=good"), &[])
            .await
            .unwrap_or_else(|r| panic!("websocket with the query token refused: {r:?}"));
        assert!(ws3.recv_text().await.starts_with("0{"));
        ws3.send_text("40").await.expect("CONNECT");
        assert!(ws3.recv_text().await.starts_with("40{"));
        ws_echo(&mut ws3, "2").await;
        assert_eq!(calls(), 7, "one call per handshake");
        assert_eq!(srv.io.connection_count(), 3);

        // a polling session admitted by the query parameter, on a kept-alive connection
        // whose later requests carry nothing
        let mut c = Conn::open(srv.addr).await;
        c.write(&build_request("GET", &format!("{}&token=good", polling_url(None)), &[], b"")).await.unwrap();
        let r = tokio::time::timeout(raw::STEP, c.read_response()).await.expect("in time").expect("answer");
        assert_eq!(r.status, 200, "{r:?}");
        let sid = raw::parse_open(&r.text())["sid"].as_str().expect("sid").to_owned();
        c.write(&build_request("POST", &polling_url(Some(&sid)), &[], b"40")).await.unwrap();
        let r = tokio::time::timeout(raw::STEP, c.read_response()).await.expect("in time").expect("answer");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert_eq!(calls(), 8);

        // and a normal client without a token is still refused afterwards
        let r = request(srv.addr, "GET", &polling_url(None), &[], b"").await;
        assert_refused(&r, "polling without a token, later");
        assert_eq!(calls(), 9);
        c.write(&build_request("POST", &polling_url(Some(&sid)), &[], b"1")).await.unwrap();
        let _ = tokio::time::timeout(raw::STEP, c.read_response()).await;
        srv.stop().await;
    })
    .await;
}

/// The hook sees the handshake request as it came: its headers, query, path and method;
/// what it admits reaches the socket's handshake unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_sees_the_request_and_the_socket_keeps_it() {
    bounded(LIMIT, async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, String, Option<String>)>();
        let builder = SocketIo::builder().allow_request(move |req: Arc<RequestInfo>| {
            let seen = (
                req.method().to_string(),
                req.path().to_owned(),
                req.query("transport").unwrap_or_default(),
                req.header("x-token").map(|v| String::from_utf8_lossy(v).into_owned()),
            );
            let _ = tx.send(seen);
            async { Ok(()) }
        });
        let (stx, mut srx) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
        let srv = TestServer::start(builder, move |io| {
            io.of("/").on_connect(move |socket: shoal::Socket| {
                let token = socket.handshake().headers().get("x-token").map(|v| v.to_str().unwrap().to_owned());
                let _ = stx.send(token);
                async {}
            });
        })
        .await;
        let mut ws = Ws::connect_with(srv.addr, &format!("{WS_URL}&extra=1"), &["X-Token: t-1"])
            .await
            .unwrap_or_else(|r| panic!("refused: {r:?}"));
        assert!(ws.recv_text().await.starts_with("0{"));
        ws.send_text("40").await.expect("CONNECT");
        assert!(ws.recv_text().await.starts_with("40{"));
        let seen = tokio::time::timeout(raw::STEP, rx.recv()).await.expect("hook called").expect("value");
        assert_eq!(seen, ("GET".into(), "/socket.io/".into(), "websocket".into(), Some("t-1".into())));
        let token = tokio::time::timeout(raw::STEP, srx.recv()).await.expect("connected").expect("value");
        assert_eq!(token.as_deref(), Some("t-1"));
        let p = sio_polling_connect(srv.addr).await;
        let seen = tokio::time::timeout(raw::STEP, rx.recv()).await.expect("hook called").expect("value");
        assert_eq!(seen, ("GET".into(), "/socket.io/".into(), "polling".into(), None));
        let token = tokio::time::timeout(raw::STEP, srx.recv()).await.expect("connected").expect("value");
        assert_eq!(token, None);
        let _ = p.post(b"1").await;
        srv.stop().await;
    })
    .await;
}
