//! Running a Socket.IO server standalone.

use std::future::Future;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use shoal_engineio::{BoxError, NotFound, server};
use tokio::net::TcpListener;

use crate::io::SocketIo;

/// Serves `io` on `listener` until `shutdown` completes, answering 404 outside the
/// Socket.IO path. On shutdown: refuse new sessions, close every connection with reason
/// "server shutting down" (flushing what is queued, up to 10 s), stop the adapters, then
/// stop accepting and wait for HTTP requests to finish.
///
/// # Errors
/// When the listener fails for good.
pub async fn serve(
    listener: TcpListener,
    io: SocketIo,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_with(listener, io, NotFound, server::ServerConfig::default(), shutdown).await
}

/// As [`serve`], handing requests outside the Socket.IO path to `inner`, with explicit
/// HTTP limits.
///
/// # Errors
/// When the listener fails for good.
pub async fn serve_with<S, B>(
    listener: TcpListener,
    io: SocketIo,
    inner: S,
    config: server::ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    io.start_adapters();
    let svc = io.service_with(inner);
    // Shutdown: new sessions are refused, every connection is closed gracefully while the
    // listener still accepts (a polling client may need a new TCP connection to fetch
    // its last packets and the close), then the HTTP server stops accepting and drains.
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down");
        io.close().await;
    };
    server::serve(listener, svc, config, shutdown).await
}
