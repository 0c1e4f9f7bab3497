//! Forwarding requests to upstreams over pooled keep-alive HTTP/1.1 connections, and
//! WebSocket (or any) upgrades spliced both ways.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;

use crate::body::{Guard, ProxyBody};
use crate::error::ProxyError;
use crate::headers;

/// A boxed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type ReqBody = UnsyncBoxBody<Bytes, BoxError>;

/// Settings of an [`UpstreamPool`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Time allowed to open a TCP connection to an upstream. Default 2 s.
    pub connect_timeout: Duration,
    /// Time allowed between sending a request and receiving the response headers.
    /// Engine.IO holds a polling GET until it has something to send (at most the ping
    /// interval), so keep this above the nodes' `pingInterval`. Default 60 s.
    pub response_timeout: Duration,
    /// An idle pooled connection older than this is closed instead of reused. Default 30 s.
    pub idle_timeout: Duration,
    /// Idle connections kept per upstream. Default 64.
    pub max_idle_per_upstream: usize,
    /// Largest response head (status line and headers) accepted from an upstream.
    /// Default 64 KiB.
    pub max_response_head: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_idle_per_upstream: 64,
            max_response_head: 64 * 1024,
        }
    }
}

impl ProxyConfig {
    /// Sets [`ProxyConfig::connect_timeout`].
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Sets [`ProxyConfig::response_timeout`].
    #[must_use]
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d;
        self
    }
    /// Sets [`ProxyConfig::idle_timeout`].
    #[must_use]
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets [`ProxyConfig::max_idle_per_upstream`].
    #[must_use]
    pub fn max_idle_per_upstream(mut self, n: usize) -> Self {
        self.max_idle_per_upstream = n;
        self
    }
    /// Sets [`ProxyConfig::max_response_head`] (at least 8 KiB).
    #[must_use]
    pub fn max_response_head(mut self, n: usize) -> Self {
        self.max_response_head = n.max(8192);
        self
    }
}

/// How the downstream request reached us, for the `X-Forwarded-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding {
    /// The downstream peer: appended to `X-Forwarded-For` when set.
    pub client_addr: Option<SocketAddr>,
    /// `X-Forwarded-Proto` when the request has none: `"http"` or `"https"`.
    pub proto: &'static str,
}

impl Forwarding {
    /// A plain HTTP request from `client_addr`.
    pub fn http(client_addr: Option<SocketAddr>) -> Forwarding {
        Forwarding { client_addr, proto: "http" }
    }
}

/// Counters of an [`UpstreamPool`].
#[derive(Debug, Default)]
pub struct PoolStats {
    /// TCP connections opened to upstreams.
    pub connects: AtomicU64,
    /// Requests sent on a reused (pooled) connection.
    pub reused: AtomicU64,
    /// Upgrades (WebSocket tunnels) established.
    pub upgrades: AtomicU64,
    /// Tunnels currently open.
    pub open_tunnels: AtomicU64,
}

struct Idle {
    sender: SendRequest<ReqBody>,
    since: Instant,
}

/// Forwards requests to upstreams (by socket address), reusing keep-alive connections.
///
/// Every request is sent on its own (pooled or new) connection exchange, whatever
/// downstream connection it came on, so a balancer can route each request of a reused
/// client connection separately.
pub struct UpstreamPool {
    config: ProxyConfig,
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    stats: PoolStats,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool").field("config", &self.config).field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl UpstreamPool {
    /// A pool with `config`.
    pub fn new(config: ProxyConfig) -> Arc<UpstreamPool> {
        Arc::new(UpstreamPool { config, idle: Mutex::new(HashMap::new()), stats: PoolStats::default() })
    }

    /// The settings.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Idle connections pooled for `addr`.
    pub fn idle_count(&self, addr: SocketAddr) -> usize {
        self.idle.lock().get(&addr).map_or(0, Vec::len)
    }

    /// Forgets the idle connections to `addr` (an upstream that left).
    pub fn forget(&self, addr: SocketAddr) {
        self.idle.lock().remove(&addr);
    }

    /// Forwards `req` to `addr` and returns the upstream's response, its body streamed.
    ///
    /// Hop-by-hop headers are removed, `X-Forwarded-For` gets the client appended and
    /// `X-Forwarded-Proto` is set when missing. The request's method, URI (origin form),
    /// `Host` and other headers are kept. A protocol upgrade (`Connection: upgrade`, as a
    /// WebSocket handshake) is sent on a new connection; when the upstream answers `101`
    /// that response is returned and, once the downstream connection has switched too,
    /// bytes are copied both ways until either side closes. `req` must then come from a
    /// hyper server connection served `with_upgrades()`.
    ///
    /// `guard` is dropped when the exchange is completely over: the response body read to
    /// its end (or dropped), or the tunnel closed.
    ///
    /// # Errors
    /// [`ProxyError`]: [`ProxyError::retry_safe`] tells whether nothing was sent.
    pub async fn forward<B>(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut req: Request<B>,
        fwd: &Forwarding,
        guard: Option<Guard>,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let upgrade = headers::is_upgrade(req.headers());
        headers::strip_hop_by_hop(req.headers_mut(), upgrade);
        if let Some(client) = fwd.client_addr {
            headers::append_forwarded_for(req.headers_mut(), client.ip());
        }
        headers::set_forwarded_proto(req.headers_mut(), fwd.proto);
        if upgrade {
            let downstream = hyper::upgrade::on(&mut req);
            let req = req.map(|b| b.map_err(Into::into).boxed_unsync());
            return self.forward_upgrade(addr, req, downstream, guard).await;
        }
        let mut req = req.map(|b| b.map_err(Into::into).boxed_unsync());
        // Pooled connections first; a request that could not be written on one comes back
        // and goes to the next, or to a new connection.
        while let Some(mut sender) = self.take_idle(addr) {
            match self.send(addr, &mut sender, req).await {
                Ok(resp) => {
                    self.stats.reused.fetch_add(1, Ordering::Relaxed);
                    self.recycle(addr, sender);
                    return Ok(resp.map(|b| ProxyBody::upstream(b, guard)));
                }
                Err(Sent::NotSent(back)) => req = back,
                Err(Sent::Failed(e)) => return Err(e),
            }
        }
        let mut sender = self.connect(addr).await?;
        match self.send(addr, &mut sender, req).await {
            Ok(resp) => {
                self.recycle(addr, sender);
                Ok(resp.map(|b| ProxyBody::upstream(b, guard)))
            }
            Err(Sent::NotSent(_)) => Err(ProxyError::Connect {
                addr,
                source: std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection closed at once"),
            }),
            Err(Sent::Failed(e)) => Err(e),
        }
    }

    async fn forward_upgrade(
        self: &Arc<Self>,
        addr: SocketAddr,
        req: Request<ReqBody>,
        downstream: hyper::upgrade::OnUpgrade,
        guard: Option<Guard>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let mut sender = self.connect(addr).await?;
        let mut resp = match self.send(addr, &mut sender, req).await {
            Ok(r) => r,
            Err(Sent::NotSent(_)) => {
                return Err(ProxyError::Connect {
                    addr,
                    source: std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection closed at once"),
                });
            }
            Err(Sent::Failed(e)) => return Err(e),
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            // Refused (a 400 for an unknown session, say): an ordinary answer.
            return Ok(resp.map(|b| ProxyBody::upstream(b, guard)));
        }
        let upstream = hyper::upgrade::on(&mut resp);
        self.stats.upgrades.fetch_add(1, Ordering::Relaxed);
        let pool = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let (up, down) = match tokio::join!(upstream, downstream) {
                (Ok(up), Ok(down)) => (up, down),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(upstream = %addr, cause = %e, "upgrade not completed");
                    return;
                }
            };
            pool.stats.open_tunnels.fetch_add(1, Ordering::Relaxed);
            let mut up = TokioIo::new(up);
            let mut down = TokioIo::new(down);
            match tokio::io::copy_bidirectional(&mut down, &mut up).await {
                Ok((to_up, to_down)) => tracing::trace!(upstream = %addr, to_up, to_down, "tunnel closed"),
                Err(e) => tracing::debug!(upstream = %addr, cause = %e, "tunnel closed with an error"),
            }
            pool.stats.open_tunnels.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(resp.map(|b| ProxyBody::upstream(b, None)))
    }

    /// Sends on `sender`, waiting at most the response timeout for the response head.
    async fn send(
        &self,
        addr: SocketAddr,
        sender: &mut SendRequest<ReqBody>,
        req: Request<ReqBody>,
    ) -> Result<Response<hyper::body::Incoming>, Sent> {
        match tokio::time::timeout(self.config.response_timeout, sender.try_send_request(req)).await {
            Err(_) => Err(Sent::Failed(ProxyError::ResponseTimeout { addr })),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(mut e)) => match e.take_message() {
                Some(req) => Err(Sent::NotSent(req)),
                None => Err(Sent::Failed(ProxyError::Upstream { addr, source: e.into_error() })),
            },
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<ReqBody>, ProxyError> {
        let stream = match tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ProxyError::ConnectTimeout { addr }),
            Ok(Err(source)) => return Err(ProxyError::Connect { addr, source }),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(self.config.max_response_head)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ProxyError::Upstream { addr, source })?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(upstream = %addr, cause = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn take_idle(&self, addr: SocketAddr) -> Option<SendRequest<ReqBody>> {
        let mut idle = self.idle.lock();
        let list = idle.get_mut(&addr)?;
        while let Some(c) = list.pop() {
            if c.since.elapsed() < self.config.idle_timeout && c.sender.is_ready() && !c.sender.is_closed() {
                return Some(c.sender);
            }
        }
        None
    }

    /// Puts `sender` back in the pool once it can take another request (after the
    /// response body has been read to its end).
    fn recycle(self: &Arc<Self>, addr: SocketAddr, mut sender: SendRequest<ReqBody>) {
        if self.config.max_idle_per_upstream == 0 {
            return;
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            if sender.ready().await.is_err() {
                return;
            }
            let Some(pool) = pool.upgrade() else { return };
            let mut idle = pool.idle.lock();
            let list = idle.entry(addr).or_default();
            list.retain(|c| !c.sender.is_closed() && c.since.elapsed() < pool.config.idle_timeout);
            if list.len() < pool.config.max_idle_per_upstream {
                list.push(Idle { sender, since: Instant::now() });
            }
        });
    }
}

enum Sent {
    /// Not written at all: the request comes back.
    NotSent(Request<ReqBody>),
    Failed(ProxyError),
}
