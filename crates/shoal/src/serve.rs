//! Running a Socket.IO server standalone.

use std::future::Future;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use shoal_engineio::{BoxError, NotFound, server};
use tokio::net::TcpListener;

use crate::io::SocketIo;

/// Serves `io` on `listener` until `shutdown` completes, answering 404 outside the
/// Socket.IO path. On shutdown: stop accepting, close every connection with reason
/// "server shutting down" (flushing what is queued), wait for HTTP requests to finish,
/// stop the adapters.
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
    let closer = io.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down");
        tokio::spawn(async move {
            closer.close().await;
            let _ = done_tx.send(());
        });
    };
    let r = server::serve(listener, svc, config, shutdown).await;
    let _ = done_rx.await;
    r
}
