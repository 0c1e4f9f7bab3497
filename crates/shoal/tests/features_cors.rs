//! CORS for the long-polling transport: allowed origins get `Access-Control-Allow-Origin`
//! (with `Vary: Origin` when the origin is reflected), others get nothing; preflights are
//! answered with 204, the methods and the requested headers; with credentials the origin
//! is reflected, never `*`. Driven with raw HTTP (a browser's CORS checks cannot be run
//! here), the way a browser sends the requests.

mod common;
mod raw;

use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use raw::{HttpResponse, Ws, bounded, echo_handlers, parse_open, polling_url, request};
use shoal::{AllowedOrigins, Cors, SocketIo};

const LIMIT: Duration = Duration::from_secs(30);
const GOOD: &str = "https://a.example";
const EVIL: &str = "https://evil.example";

fn vary_has_origin(r: &HttpResponse) -> bool {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("vary"))
        .flat_map(|(_, v)| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin"))
}

fn count(r: &HttpResponse, name: &str) -> usize {
    r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).count()
}

/// A polling handshake from `origin`; closes the session it opens.
async fn handshake_from(addr: std::net::SocketAddr, origin: &str) -> HttpResponse {
    let origin = format!("Origin: {origin}");
    let r = request(addr, "GET", &polling_url(None), &[&origin], b"").await;
    if r.status == 200 {
        let sid = parse_open(&r.text())["sid"].as_str().expect("sid").to_owned();
        let _ = raw::post(addr, &polling_url(Some(&sid)), b"1").await;
    }
    r
}

/// A preflight as a browser sends it before a POST with an `x-token` header.
async fn preflight_from(addr: std::net::SocketAddr, origin: &str, headers: &str) -> HttpResponse {
    let origin = format!("Origin: {origin}");
    let acrh = format!("Access-Control-Request-Headers: {headers}");
    request(addr, "OPTIONS", &polling_url(None), &[&origin, "Access-Control-Request-Method: POST", &acrh], b"").await
}

/// `cors_origins([GOOD])`: the good origin is reflected with `Vary: Origin` on the
/// handshake, on a session's posts and polls, and on error answers; a foreign origin and
/// a request without `Origin` get no CORS header; the preflight answers 204 with
/// `GET, POST` and the requested header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_origin() {
    bounded(LIMIT, async {
        let srv = TestServer::start(SocketIo::builder().cors_origins([GOOD]), echo_handlers).await;

        let r = handshake_from(srv.addr, GOOD).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), Some(GOOD));
        assert_eq!(count(&r, "access-control-allow-origin"), 1);
        assert!(vary_has_origin(&r), "Vary: Origin on a reflected origin: {r:?}");
        assert_eq!(r.header("access-control-allow-credentials"), None, "no credentials unless asked");

        let r = handshake_from(srv.addr, EVIL).await;
        assert_eq!(r.status, 200, "CORS does not refuse the request itself");
        assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
        assert_eq!(r.header("access-control-allow-credentials"), None);

        let r = request(srv.addr, "GET", &polling_url(None), &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), None, "no Origin, no CORS: {r:?}");
        let sid = parse_open(&r.text())["sid"].as_str().expect("sid").to_owned();

        // the session's own requests from the good origin
        let origin = format!("Origin: {GOOD}");
        let r = request(srv.addr, "POST", &polling_url(Some(&sid)), &[&origin], b"40").await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert_eq!(r.header("access-control-allow-origin"), Some(GOOD), "post: {r:?}");
        let r = request(srv.addr, "GET", &polling_url(Some(&sid)), &[&origin], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with("40{"), "{}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some(GOOD), "poll: {r:?}");
        let _ = raw::post(srv.addr, &polling_url(Some(&sid)), b"1").await;

        // an error answer is readable by the allowed origin too
        let r = request(srv.addr, "GET", &polling_url(Some("nope")), &[&origin], b"").await;
        r.assert_eio_error(400, 1);
        assert_eq!(r.header("access-control-allow-origin"), Some(GOOD), "error: {r:?}");

        // preflight
        let r = preflight_from(srv.addr, GOOD, "x-token").await;
        assert_eq!(r.status, 204, "{r:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some(GOOD));
        let methods: Vec<String> = r
            .header("access-control-allow-methods")
            .expect("allow-methods")
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        assert!(methods.contains(&"GET".into()) && methods.contains(&"POST".into()), "{methods:?}");
        assert_eq!(r.header("access-control-allow-headers"), Some("x-token"));
        assert_eq!(r.header("access-control-max-age"), None, "no max-age unless configured");
        assert_eq!(srv.io.connection_count(), 0, "a preflight opens no session");

        // a preflight from a foreign origin is answered without permission
        let r = preflight_from(srv.addr, EVIL, "x-token").await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");

        // WebSocket is not subject to CORS: a foreign origin still upgrades
        let origin = format!("Origin: {EVIL}");
        let mut ws = Ws::connect_with(srv.addr, "/socket.io/?EIO=4&transport=websocket", &[&origin])
            .await
            .unwrap_or_else(|r| panic!("{r:?}"));
        assert!(ws.recv_text().await.starts_with("0{"));
        srv.stop().await;
    })
    .await;
}

/// With credentials the origin is reflected (never `*`, which browsers reject with
/// credentials) together with `Access-Control-Allow-Credentials: true`, for a list and
/// for `Any`; `Any` without credentials answers `*`. Extra allowed headers and max-age
/// appear in the preflight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_any() {
    bounded(LIMIT, async {
        let mut cors = Cors::new(AllowedOrigins::List(vec![GOOD.into()]));
        cors.credentials = true;
        cors.allowed_headers = vec!["authorization".into()];
        cors.max_age = Some(Duration::from_secs(600));
        let srv = TestServer::start(SocketIo::builder().cors(cors), echo_handlers).await;
        let r = handshake_from(srv.addr, GOOD).await;
        assert_eq!(r.header("access-control-allow-origin"), Some(GOOD));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert!(vary_has_origin(&r));
        let r = handshake_from(srv.addr, EVIL).await;
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(r.header("access-control-allow-credentials"), None);
        let r = preflight_from(srv.addr, GOOD, "x-token, content-type").await;
        assert_eq!(r.status, 204);
        assert_eq!(r.header("access-control-allow-origin"), Some(GOOD));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(r.header("access-control-allow-headers"), Some("authorization, x-token, content-type"));
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        srv.stop().await;

        let mut cors = Cors::new(AllowedOrigins::Any);
        cors.credentials = true;
        let srv = TestServer::start(SocketIo::builder().cors(cors), echo_handlers).await;
        for origin in [GOOD, EVIL, "http://localhost:8080"] {
            let r = handshake_from(srv.addr, origin).await;
            assert_eq!(r.header("access-control-allow-origin"), Some(origin), "never * with credentials");
            assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
            assert!(vary_has_origin(&r));
        }
        srv.stop().await;

        let srv = TestServer::start(SocketIo::builder().cors_origins(["*"]), echo_handlers).await;
        let r = handshake_from(srv.addr, EVIL).await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("access-control-allow-credentials"), None);
        let r = request(srv.addr, "GET", &polling_url(None), &[], b"").await;
        assert_eq!(r.header("access-control-allow-origin"), None, "no Origin, no CORS");
        let sid = parse_open(&r.text())["sid"].as_str().expect("sid").to_owned();
        let _ = raw::post(srv.addr, &polling_url(Some(&sid)), b"1").await;
        srv.stop().await;
    })
    .await;
}

/// `AllowedOrigins::Predicate`: whatever the function accepts is reflected, the rest
/// gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicate_origins() {
    bounded(LIMIT, async {
        let pred = AllowedOrigins::Predicate(Arc::new(|o: &str| {
            o.strip_prefix("https://").is_some_and(|host| host.ends_with(".good.example"))
        }));
        let srv = TestServer::start(SocketIo::builder().cors(Cors::new(pred)), echo_handlers).await;
        for (origin, allowed) in [
            ("https://app.good.example", true),
            ("https://x.y.good.example", true),
            ("http://app.good.example", false),
            ("https://good.example", false),
            ("https://good.example.evil.example", false),
            (EVIL, false),
        ] {
            let r = handshake_from(srv.addr, origin).await;
            assert_eq!(r.status, 200);
            let expected = allowed.then_some(origin);
            assert_eq!(r.header("access-control-allow-origin"), expected, "{origin}");
            let r = preflight_from(srv.addr, origin, "x-token").await;
            assert_eq!(r.status, 204);
            assert_eq!(r.header("access-control-allow-origin"), expected, "preflight {origin}");
        }
        srv.stop().await;
    })
    .await;
}
