//! A standalone HTTP/1.1 server for any tower service: accept loop, per-connection
//! limits, WebSocket upgrades and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::body::BoxError;
use crate::request::RemoteAddr;

/// Limits of the standalone HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Time allowed to receive a request's headers (slowloris). Default 10 s.
    pub header_read_timeout: Duration,
    /// Largest request head (request line + headers); larger gets 431. Default 16 KiB
    /// (hyper's minimum is 8 KiB).
    pub max_head_size: usize,
    /// Most headers per request; more gets 431. Default 100.
    pub max_headers: usize,
    /// Maximum concurrent TCP connections; further ones wait in the listen backlog.
    /// Default 1 000 000 (the open-file limit is usually lower).
    pub max_connections: usize,
    /// How long shutdown waits for open connections before returning. Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout: Duration::from_secs(10),
            max_head_size: 16 * 1024,
            max_headers: 100,
            max_connections: 1_000_000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then stops accepting, lets
/// HTTP connections finish (up to `shutdown_timeout`) and returns.
///
/// WebSocket connections leave the HTTP server once upgraded; close them through the
/// layer that owns them (e.g. `SocketIo::close`) before or while calling this.
///
/// # Errors
/// Only if the listener itself fails in a way that is not transient.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_head_size.max(8192))
        .max_headers(config.max_headers)
        .keep_alive(true);
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, addr) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => { backoff = Duration::from_millis(5); c }
                Err(e) => {
                    // EMFILE and friends: wait and retry instead of spinning
                    tracing::warn!(cause = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc = AddrService { inner: service.clone(), addr };
        let conn = builder.serve_connection(TokioIo::new(stream), svc).with_upgrades();
        let token = token.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::trace!(cause = %e, "http connection ended with an error");
                    }
                }
                _ = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    token.cancel();
    tracker.close();
    let _ = tokio::time::timeout(config.shutdown_timeout, tracker.wait()).await;
    Ok(())
}

/// Adapts a tower service to hyper and tags each request with the peer address.
#[derive(Clone)]
struct AddrService<S> {
    inner: S,
    addr: SocketAddr,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for AddrService<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(RemoteAddr(self.addr));
        let mut svc = self.inner.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
            svc.call(req).await
        })
    }
}
