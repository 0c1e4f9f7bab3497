//! The affinity cookie (`cookie(CookieConfig)`): sent with the handshake answer, polling
//! or WebSocket, naming the session id of the open packet, so that load balancers can
//! stick a client's later requests to the node that holds its session.

mod common;
mod raw;

use std::time::Duration;

use common::TestServer;
use raw::{Ws, bounded, echo_handlers, get, parse_open, polling_url, sio_polling_connect};
use shoal::{CookieConfig, SocketIo};

const LIMIT: Duration = Duration::from_secs(30);
const WS_URL: &str = "/socket.io/?EIO=4&transport=websocket";

/// Every `Set-Cookie` header of a response.
fn set_cookies(r: &raw::HttpResponse) -> Vec<&str> {
    r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect()
}

/// The polling handshake: returns its `Set-Cookie` values and the session id.
async fn polling_handshake(srv: &TestServer) -> (Vec<String>, String) {
    let r = get(srv.addr, &polling_url(None)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let sid = parse_open(&r.text())["sid"].as_str().expect("sid").to_owned();
    // close the session at once (the test only wanted the handshake)
    let _ = raw::post(srv.addr, &polling_url(Some(&sid)), b"1").await;
    (set_cookies(&r).into_iter().map(str::to_owned).collect(), sid)
}

/// The WebSocket handshake: returns the 101's `Set-Cookie` values and the session id of
/// the open packet that follows.
async fn ws_handshake(srv: &TestServer) -> (Vec<String>, String, Ws) {
    let mut ws = Ws::connect_with(srv.addr, WS_URL, &[]).await.unwrap_or_else(|r| panic!("refused: {r:?}"));
    let cookies = set_cookies(&ws.response).into_iter().map(str::to_owned).collect();
    let sid = parse_open(&ws.recv_text().await)["sid"].as_str().expect("sid").to_owned();
    (cookies, sid, ws)
}

/// The default cookie is `io=<sid>; Path=/; HttpOnly; SameSite=Lax`, on the polling
/// handshake and on the WebSocket 101, and only there: the session's later requests do
/// not set it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_cookie_names_the_session() {
    bounded(LIMIT, async {
        let srv = TestServer::start(SocketIo::builder().cookie(CookieConfig::default()), echo_handlers).await;

        let (cookies, sid) = polling_handshake(&srv).await;
        assert_eq!(cookies, [format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")]);

        let (cookies, sid, _ws) = ws_handshake(&srv).await;
        assert_eq!(cookies, [format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")]);

        // later requests of a session (post, poll) carry no cookie
        let p = sio_polling_connect(srv.addr).await;
        let r = p.post(br#"42["echo","x"]"#).await;
        assert_eq!(r.status, 200);
        assert!(set_cookies(&r).is_empty(), "post: {r:?}");
        let r = p.get_raw().await;
        assert_eq!(r.status, 200);
        assert!(set_cookies(&r).is_empty(), "poll: {r:?}");
        let _ = p.post(b"1").await;
        srv.stop().await;
    })
    .await;
}

/// A custom name, path, `SameSite`, `Secure` and no `HttpOnly` are honoured; an empty
/// `same_site` leaves the attribute out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_cookie_attributes() {
    bounded(LIMIT, async {
        let cookie = CookieConfig {
            name: "affinity".into(),
            path: "/app".into(),
            http_only: false,
            same_site: "Strict".into(),
            secure: true,
        };
        let srv = TestServer::start(SocketIo::builder().cookie(cookie), echo_handlers).await;
        let (cookies, sid) = polling_handshake(&srv).await;
        assert_eq!(cookies, [format!("affinity={sid}; Path=/app; SameSite=Strict; Secure")]);
        let (cookies, sid, _ws) = ws_handshake(&srv).await;
        assert_eq!(cookies, [format!("affinity={sid}; Path=/app; SameSite=Strict; Secure")]);
        srv.stop().await;

        let cookie = CookieConfig { name: "lb".into(), same_site: String::new(), ..CookieConfig::default() };
        let srv = TestServer::start(SocketIo::builder().cookie(cookie), echo_handlers).await;
        let (cookies, sid) = polling_handshake(&srv).await;
        assert_eq!(cookies, [format!("lb={sid}; Path=/; HttpOnly")]);
        let (cookies, sid, _ws) = ws_handshake(&srv).await;
        assert_eq!(cookies, [format!("lb={sid}; Path=/; HttpOnly")]);
        srv.stop().await;
    })
    .await;
}

/// Without the option no handshake sets a cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cookie_by_default() {
    bounded(LIMIT, async {
        let srv = TestServer::start(SocketIo::builder(), echo_handlers).await;
        let (cookies, _) = polling_handshake(&srv).await;
        assert!(cookies.is_empty(), "{cookies:?}");
        let (cookies, _, _ws) = ws_handshake(&srv).await;
        assert!(cookies.is_empty(), "{cookies:?}");
        srv.stop().await;
    })
    .await;
}
