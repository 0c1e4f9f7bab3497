//! Shoal mounted in an axum application: `Router::layer(io.layer())` served by
//! `axum::serve`, and `io.service_with(router)` served by `shoal::serve_with`. The app's
//! own routes keep working, and the official client connects through it over WebSocket,
//! long-polling, and polling upgraded to WebSocket.
//!
//! The client's address: `shoal::serve_with` records it for every request, while under
//! `axum::serve` the handshake's `address()` is `None` until a middleware copies axum's
//! `ConnectInfo<SocketAddr>` into a [`shoal::RemoteAddr`] request extension, the
//! integration pattern shown by [`remote_addr_from_connect_info`]:
//!
//! ```ignore
//! async fn remote_addr_from_connect_info(mut req: Request, next: Next) -> Response {
//!     if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
//!         req.extensions_mut().insert(shoal::RemoteAddr(addr));
//!     }
//!     next.run(req).await
//! }
//! let app = Router::new()
//!     .route("/hello", get(|| async { "hi" }))
//!     .layer(io.layer())
//!     .layer(axum::middleware::from_fn(remote_addr_from_connect_info));
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! ```

mod common;
mod js;
mod raw;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use js::{NodeScenario, bounded};
use raw::{Conn, Ws, build_request, parse_open, polling_url};
use serde_json::{Value, json};
use shoal::{Event, Socket, SocketIo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Copies axum's `ConnectInfo<SocketAddr>` into the extension Shoal reads the client's
/// address from.
async fn remote_addr_from_connect_info(mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        req.extensions_mut().insert(shoal::RemoteAddr(addr));
    }
    next.run(req).await
}

/// The app's own routes.
fn app_routes() -> Router {
    Router::new().route("/hello", get(|| async { "hi" }))
}

/// A server with one namespace: on connect it emits `welcome` and reports the
/// handshake's address; `hello` is answered with a `hello-back` event and an ack.
fn socket_io(addresses: mpsc::UnboundedSender<Option<SocketAddr>>) -> SocketIo {
    let io = SocketIo::builder().build().expect("valid settings");
    io.of("/").on_connect(move |socket: Socket| {
        let _ = addresses.send(socket.handshake().address());
        let _ = socket.emit("welcome", &json!({"id": socket.id().to_string()}));
        socket.on("hello", |s: Socket, mut ev: Event| async move {
            let data: Value = ev.data().unwrap_or(Value::Null);
            let _ = s.emit("hello-back", &json!({"echo": data}));
            let _ = ev.ack(&json!({"ack": data}));
        });
        async {}
    });
    io
}

/// A running HTTP server (axum's or Shoal's).
struct Running {
    addr: SocketAddr,
    io: SocketIo,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every Socket.IO connection, then stops the HTTP server.
    async fn stop(mut self) {
        self.io.close_with_timeout(Duration::from_secs(5)).await;
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// `axum::serve` of `app` on a free loopback port, with `ConnectInfo` if asked.
async fn serve_axum(io: SocketIo, app: Router, connect_info: bool) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        let r = if connect_info {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown)
                .await
        } else {
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        };
        r.expect("axum::serve");
    });
    Running { addr, io, stop: Some(stop), task }
}

/// `shoal::serve_with(io, router)` on a free loopback port.
async fn serve_shoal(io: SocketIo, app: Router) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let io2 = io.clone();
    let task = tokio::spawn(async move {
        shoal::serve_with(listener, io2, app, shoal::ServerConfig::default(), async {
            let _ = stopped.await;
        })
        .await
        .expect("shoal::serve_with");
    });
    Running { addr, io, stop: Some(stop), task }
}

/// The app's route answers, an unknown path gets axum's 404 (not Shoal's), and a
/// Socket.IO handshake is Shoal's.
async fn check_routes(addr: SocketAddr) {
    let r = raw::get(addr, "/hello").await;
    assert_eq!((r.status, r.text().as_str()), (200, "hi"), "{r:?}");
    let r = raw::get(addr, "/nowhere").await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = raw::get(addr, &polling_url(None)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let sid = parse_open(&r.text())["sid"].as_str().expect("sid").to_owned();
    let _ = raw::post(addr, &polling_url(Some(&sid)), b"1").await;
}

/// The official client connects with `transports` (`null`: polling then upgrade) and
/// exchanges `hello` with an ack.
async fn check_client(url: &str, transports: Value, expected_transport: &str) {
    let payload = json!({"n": 7, "text": "through axum ✓"});
    let wait_upgrade = transports.is_null();
    let node = NodeScenario::spawn(
        "features-hello",
        url,
        json!({"transports": transports, "waitUpgrade": wait_upgrade, "payload": payload}),
    );
    let r = node.result().await;
    assert_eq!(r["welcome"]["id"], r["id"], "{r}");
    assert_eq!(r["ack"], json!({"ack": payload}), "{r}");
    assert_eq!(r["back"], json!({"echo": payload}), "{r}");
    assert_eq!(r["transport"], expected_transport, "{r}");
}

async fn check_all_clients(url: &str) {
    check_client(url, json!(["websocket"]), "websocket").await;
    check_client(url, json!(["polling"]), "polling").await;
    check_client(url, Value::Null, "websocket").await;
}

/// `Router::layer(io.layer())` under `axum::serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_in_an_axum_router() {
    bounded(90, "axum layer", async {
        let (tx, _rx) = mpsc::unbounded_channel();
        let io = socket_io(tx);
        let app = app_routes().layer(io.layer());
        let srv = serve_axum(io, app, false).await;
        check_routes(srv.addr).await;
        check_all_clients(&srv.url()).await;
        srv.stop().await;
    })
    .await;
}

/// `io.service_with(router)` under `shoal::serve_with`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_with_an_axum_router() {
    bounded(90, "service_with", async {
        let (tx, _rx) = mpsc::unbounded_channel();
        let io = socket_io(tx);
        let srv = serve_shoal(io.clone(), app_routes()).await;
        check_routes(srv.addr).await;
        check_all_clients(&srv.url()).await;
        srv.stop().await;
    })
    .await;
}

/// Connects a raw client to `/` over WebSocket and over polling (each handshake on a
/// connection whose local address is known); returns those two addresses.
async fn raw_clients(addr: SocketAddr) -> [SocketAddr; 2] {
    let mut ws = Ws::connect_with(addr, "/socket.io/?EIO=4&transport=websocket", &[])
        .await
        .unwrap_or_else(|r| panic!("upgrade refused: {r:?}"));
    let ws_local = ws.conn.stream.local_addr().expect("local addr");
    assert!(ws.recv_text().await.starts_with("0{"));
    ws.send_text("40").await.expect("CONNECT");
    assert!(ws.recv_text().await.starts_with("40{"));
    let _ = ws.send_raw(&raw::masked(raw::OP_CLOSE, &1000u16.to_be_bytes())).await;

    let mut c = Conn::open(addr).await;
    let polling_local = c.stream.local_addr().expect("local addr");
    c.write(&build_request("GET", &polling_url(None), &[], b"")).await.expect("write");
    let r = tokio::time::timeout(raw::STEP, c.read_response()).await.expect("in time").expect("answer");
    assert_eq!(r.status, 200, "{r:?}");
    let p =
        raw::Polling { addr, sid: parse_open(&r.text())["sid"].as_str().expect("sid").to_owned(), open: Value::Null };
    let posted = p.post(b"40").await;
    assert_eq!(posted.status, 200);
    assert!(p.get_until(|s| s.starts_with("40{")).await.starts_with("40{"));
    let _ = p.post(b"1").await;
    [ws_local, polling_local]
}

async fn addresses_seen(rx: &mut mpsc::UnboundedReceiver<Option<SocketAddr>>) -> Vec<Option<SocketAddr>> {
    js::recv_n(rx, 2, Duration::from_secs(10), "connections").await
}

/// Under `axum::serve` (even with `ConnectInfo`) the handshake knows no address unless
/// a middleware inserts `shoal::RemoteAddr`; with it, the address is the client's.
/// `shoal::serve_with` records it on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_address_through_axum() {
    bounded(60, "remote address", async {
        // ConnectInfo alone is not enough
        let (tx, mut rx) = mpsc::unbounded_channel();
        let io = socket_io(tx);
        let app = app_routes().layer(io.layer());
        let srv = serve_axum(io, app, true).await;
        raw_clients(srv.addr).await;
        assert_eq!(addresses_seen(&mut rx).await, [None, None]);
        srv.stop().await;

        // ConnectInfo copied into shoal::RemoteAddr by a middleware
        let (tx, mut rx) = mpsc::unbounded_channel();
        let io = socket_io(tx);
        let app = app_routes().layer(io.layer()).layer(axum::middleware::from_fn(remote_addr_from_connect_info));
        let srv = serve_axum(io, app, true).await;
        check_routes(srv.addr).await;
        let locals = raw_clients(srv.addr).await;
        assert_eq!(addresses_seen(&mut rx).await, locals.map(Some));
        assert!(locals.iter().all(|a| a.ip().is_loopback()));
        srv.stop().await;

        // Shoal's own server
        let (tx, mut rx) = mpsc::unbounded_channel();
        let io = socket_io(tx);
        let srv = serve_shoal(io.clone(), app_routes()).await;
        let locals = raw_clients(srv.addr).await;
        assert_eq!(addresses_seen(&mut rx).await, locals.map(Some));
        srv.stop().await;
    })
    .await;
}
