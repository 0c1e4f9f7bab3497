//! The balancer: accept loop, per-connection tasks, routing of each request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shoal_engineio_proto::{NodeId, Sid};
use shoal_proxy::{Forwarding, ProxyBody, ProxyError, UpstreamPool};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::config::{BalancerConfig, ForeignSids, HealthConfig, OnMissing, Strategy};
use crate::conn::{ConnState, InFlight, Tracked, Tracker};
use crate::error::BalanceError;
use crate::health;
use crate::key::{SidParam, cookie_value, header_hop, sid_param};
use crate::upstreams::{ActiveGuard, Picked, Upstreams};

/// The body of Engine.IO's answer to an unknown session.
const UNKNOWN_SID: &str = r#"{"code":1,"message":"Session ID unknown"}"#;

/// Counters of a [`Balancer`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BalancerStats {
    /// Client connections accepted.
    pub accepted: AtomicU64,
    /// Requests received from clients.
    pub requests: AtomicU64,
    /// Requests answered `400 Session ID unknown` (malformed sid, unknown or dead node).
    pub unknown_sid: AtomicU64,
    /// New sessions refused because the hashed header or cookie was missing.
    pub refused: AtomicU64,
    /// New sessions answered 503 because no upstream took new sessions.
    pub no_upstream: AtomicU64,
    /// New sessions sent to another upstream after a connect error.
    pub retried: AtomicU64,
    /// Requests answered 502/504 (the upstream failed after the request was sent).
    pub upstream_errors: AtomicU64,
    /// Client connections closed for idling or for a request head arriving too slowly.
    pub timed_out: AtomicU64,
    /// Requests forwarded straight to a node that is not an upstream, found in the
    /// [`crate::Directory`].
    pub direct: AtomicU64,
}

/// Builds a [`Balancer`].
#[derive(Debug, Default)]
#[must_use]
pub struct BalancerBuilder {
    config: BalancerConfig,
    upstreams: Vec<(Option<NodeId>, SocketAddr)>,
    handle: Option<Upstreams>,
}

impl BalancerBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: BalancerConfig) -> Self {
        self.config = config;
        self
    }
    /// The strategy for new sessions (default least-connections).
    pub fn strategy(mut self, s: Strategy) -> Self {
        self.config.strategy = s;
        self
    }
    /// What to do when the hashed header or cookie is missing (default fall back).
    pub fn on_missing(mut self, m: OnMissing) -> Self {
        self.config.on_missing = m;
        self
    }
    /// Nodes that are not upstreams, where requests for their sessions go straight (see
    /// [`BalancerConfig::directory`]).
    pub fn directory(mut self, d: crate::Directory) -> Self {
        self.config.directory = Some(d);
        self
    }
    /// What to do with sids of nodes that are not upstreams (default refuse).
    pub fn foreign_sids(mut self, f: ForeignSids) -> Self {
        self.config.foreign_sids = f;
        self
    }
    /// The Engine.IO path prefix (default `/socket.io/`).
    pub fn path(mut self, p: impl Into<String>) -> Self {
        self.config.path = p.into();
        self
    }
    /// An upstream whose node id is learned from its `/health` (or a probe handshake).
    pub fn upstream(mut self, addr: SocketAddr) -> Self {
        self.upstreams.push((None, addr));
        self
    }
    /// An upstream with a known node id.
    pub fn upstream_with_id(mut self, id: NodeId, addr: SocketAddr) -> Self {
        self.upstreams.push((Some(id), addr));
        self
    }
    /// Uses an existing [`Upstreams`] handle (the upstreams given to the builder are
    /// added to it).
    pub fn upstreams(mut self, u: Upstreams) -> Self {
        self.handle = Some(u);
        self
    }
    /// Largest request head, in bytes (default 16384, at least 8192).
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.config.max_header_bytes = n;
        self
    }
    /// Time for a request head to arrive once started (default 10 s).
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.config.header_read_timeout = d;
        self
    }
    /// Idle client connections are closed after this (default 120 s).
    pub fn client_idle_timeout(mut self, d: Duration) -> Self {
        self.config.client_idle_timeout = d;
        self
    }
    /// Most client connections and tunnels at once (default 10000).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self
    }
    /// Time allowed to in-flight work on shutdown (default 30 s).
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.config.drain_timeout = d;
        self
    }
    /// Health check settings.
    pub fn health(mut self, h: HealthConfig) -> Self {
        self.config.health = h;
        self
    }
    /// Upstream connection settings.
    pub fn proxy(mut self, p: shoal_proxy::ProxyConfig) -> Self {
        self.config.proxy = p;
        self
    }

    /// The balancer.
    ///
    /// # Errors
    /// [`BalanceError::Config`] for an unusable setting.
    pub fn build(self) -> Result<Balancer, BalanceError> {
        self.config.validate()?;
        let upstreams = self.handle.unwrap_or_default();
        for (id, addr) in self.upstreams {
            match id {
                Some(id) => upstreams.add(id, addr),
                None => upstreams.add_addr(addr),
            }
        }
        let pool = UpstreamPool::new(self.config.proxy.clone());
        Ok(Balancer {
            shared: Arc::new(Shared {
                config: self.config,
                upstreams,
                pool,
                tracker: Arc::default(),
                stats: BalancerStats::default(),
            }),
        })
    }
}

#[derive(Debug)]
struct Shared {
    config: BalancerConfig,
    upstreams: Upstreams,
    pool: Arc<UpstreamPool>,
    tracker: Arc<Tracker>,
    stats: BalancerStats,
}

/// A sticky HTTP/WebSocket reverse proxy for Socket.IO nodes.
///
/// Cheap to clone; [`Balancer::serve`] runs it on a listener until a shutdown future
/// completes.
#[derive(Debug, Clone)]
pub struct Balancer {
    shared: Arc<Shared>,
}

/// What a request's routing decided.
enum Route {
    /// To the node named by the sid.
    Sid(Sid),
    /// A malformed sid.
    BadSid,
    /// A new session (or a request outside the Engine.IO path), with the hash key if
    /// the strategy has one.
    New(Key),
    /// Refused: the hashed header or cookie is missing.
    Refuse(String),
}

enum Key {
    None,
    Hash(Vec<u8>),
    /// The `io` cookie names a node that takes new sessions.
    Node(Picked),
}

impl Balancer {
    /// A builder with the defaults of [`BalancerConfig`].
    pub fn builder() -> BalancerBuilder {
        BalancerBuilder::default()
    }

    /// The upstreams (add, remove, drain them while it runs).
    pub fn upstreams(&self) -> &Upstreams {
        &self.shared.upstreams
    }

    /// The configuration.
    pub fn config(&self) -> &BalancerConfig {
        &self.shared.config
    }

    /// The counters.
    pub fn stats(&self) -> &BalancerStats {
        &self.shared.stats
    }

    /// Client connections and WebSocket tunnels open now.
    pub fn open_connections(&self) -> usize {
        self.shared.tracker.live()
    }

    /// Serves clients accepted on `listener` until `shutdown` completes, then stops
    /// accepting, lets in-flight requests and tunnels finish for up to
    /// [`BalancerConfig::drain_timeout`] and returns.
    ///
    /// Health checks run while it serves; a first round completes before the first
    /// client is accepted, so that upstream ids are known. WebSocket tunnels still open
    /// at the drain deadline are not waited for: they end when either side closes, or
    /// with the runtime (the process).
    ///
    /// # Errors
    /// [`BalanceError::Listener`] when the listener's address cannot be read.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), BalanceError> {
        let local = listener.local_addr().map_err(BalanceError::Listener)?;
        let shared = &self.shared;
        let config = &shared.config;
        let (stop_tx, stop_rx) = watch::channel(false);
        if !config.health.interval.is_zero() {
            health::check_all(&shared.pool, &shared.upstreams, config).await;
        }
        let health =
            tokio::spawn(health::run(shared.pool.clone(), shared.upstreams.clone(), config.clone(), stop_rx.clone()));
        tracing::info!(
            addr = %local,
            strategy = config.strategy.name(),
            upstreams = shared.upstreams.len(),
            eligible = shared.upstreams.eligible_count(),
            "balancer listening"
        );
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let mut backoff = Duration::from_millis(5);
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        // out of file descriptors and the like: wait, then go on
                        tracing::warn!(cause = %e, "accept failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            backoff = Duration::from_millis(5);
            shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let state = ConnState::new(permit, shared.tracker.token());
            let conn_shared = shared.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move { serve_conn(conn_shared, stream, peer, state, stop).await });
        }
        drop(listener);
        let live = shared.tracker.live();
        tracing::info!(open = live, drain_timeout = ?config.drain_timeout, "balancer stopping: draining connections");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(config.drain_timeout, shared.tracker.wait_idle()).await.is_ok();
        if !drained {
            tracing::warn!(open = shared.tracker.live(), "drain timeout: closing the remaining connections");
        }
        health.abort();
        tracing::info!("balancer stopped");
        Ok(())
    }
}

async fn serve_conn(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<ConnState>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Tracked::new(stream, state.clone()));
    let svc_shared = shared.clone();
    let svc_state = state.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        let in_flight = svc_state.request();
        async move { Ok::<_, Infallible>(handle(&shared, req, peer, in_flight).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.max_buf_size(shared.config.max_header_bytes).keep_alive(true).header_read_timeout(None::<Duration>);
    let conn = builder.serve_connection(io, svc).with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    let (header_timeout, idle_timeout) = (shared.config.header_read_timeout, shared.config.client_idle_timeout);
    loop {
        let (at, expired) = state.deadline(header_timeout, idle_timeout);
        if expired {
            shared.stats.timed_out.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "closing an idle client connection (or one sending its request head too slowly)");
            return;
        }
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, cause = %e, "client connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = state.wake.notified() => {}
            () = tokio::time::sleep_until(at) => {}
        }
    }
}

/// A local answer.
fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn unknown_sid(shared: &Shared) -> Response<ProxyBody> {
    shared.stats.unknown_sid.fetch_add(1, Ordering::Relaxed);
    answer(StatusCode::BAD_REQUEST, "application/json", UNKNOWN_SID)
}

/// Decides where `req` goes, without side effects.
fn route(shared: &Shared, req: &Request<Incoming>, peer: SocketAddr) -> Route {
    let config = &shared.config;
    let uri = req.uri();
    if uri.path().starts_with(&config.path) {
        match sid_param(uri.query()) {
            SidParam::Valid(sid) => return Route::Sid(sid),
            SidParam::Malformed => return Route::BadSid,
            SidParam::Absent => {}
        }
    }
    let missing = |what: String| match config.on_missing {
        OnMissing::Refuse => Route::Refuse(what),
        _ => Route::New(Key::None),
    };
    match &config.strategy {
        Strategy::IpHash => Route::New(Key::Hash(peer.ip().to_string().into_bytes())),
        Strategy::HeaderHash { header, hop } => match header_hop(req.headers(), header, *hop) {
            Some(v) => Route::New(Key::Hash(v.as_bytes().to_vec())),
            None => missing(format!("the {header} header (hop {hop}) is required by the balancer")),
        },
        Strategy::Cookie { name } => match cookie_value(req.headers(), name) {
            Some(v) => {
                let node = v.parse::<Sid>().ok().and_then(|sid| shared.upstreams.eligible_node(sid.node()));
                match node {
                    Some(p) => Route::New(Key::Node(p)),
                    None => Route::New(Key::Hash(v.as_bytes().to_vec())),
                }
            }
            None => missing(format!("the {name} cookie is required by the balancer")),
        },
        _ => Route::New(Key::None),
    }
}

fn pick(shared: &Shared, key: &Key, exclude: &[SocketAddr]) -> Option<Picked> {
    let u = &shared.upstreams;
    match key {
        Key::Node(p) if !exclude.contains(&p.addr) => Some(p.clone()),
        Key::Hash(k) => u.pick_hash(k, exclude),
        _ => match shared.config.strategy {
            Strategy::RoundRobin => u.pick_round_robin(exclude),
            Strategy::Random => u.pick_random(exclude),
            _ => u.pick_least(exclude),
        },
    }
}

/// Keeps the upstream's and the connection's counts while an exchange runs.
struct ExchangeGuard {
    _active: ActiveGuard,
    _in_flight: Arc<InFlight>,
}

fn guard(p: &Picked, in_flight: &Arc<InFlight>) -> shoal_proxy::Guard {
    Box::new(ExchangeGuard { _active: ActiveGuard::new(p.counters.clone()), _in_flight: in_flight.clone() })
}

async fn handle(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
    in_flight: InFlight,
) -> Response<ProxyBody> {
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let in_flight = Arc::new(in_flight);
    let fwd = Forwarding::http(Some(peer));
    match route(shared, &req, peer) {
        Route::BadSid => unknown_sid(shared),
        Route::Sid(sid) => {
            let up = match shared.upstreams.by_node(sid.node()) {
                Some(up) => up,
                None if let Some(addr) = shared.config.directory.as_ref().and_then(|d| d.address(sid.node())) => {
                    return forward_to_owner(shared, req, addr, &fwd).await;
                }
                None if shared.config.foreign_sids == ForeignSids::Delegate => {
                    // an upstream forwards it to the owner
                    let Some(up) = pick(shared, &Key::None, &[]) else {
                        return unknown_sid(shared);
                    };
                    up
                }
                None => {
                    tracing::debug!(%sid, "sid of an unknown node");
                    return unknown_sid(shared);
                }
            };
            match shared.pool.forward(up.addr, req, &fwd, Some(guard(&up, &in_flight))).await {
                Ok(r) => r,
                Err(e) if e.retry_safe() => {
                    // the owner is gone: the client reconnects and gets a new session
                    shared.upstreams.mark_down(up.addr);
                    tracing::debug!(%sid, cause = %e, "owner of the sid unreachable");
                    unknown_sid(shared)
                }
                Err(e) => upstream_error(shared, &e),
            }
        }
        Route::Refuse(why) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            let body =
                format!(r#"{{"code":3,"message":{}}}"#, serde_json::Value::String(format!("Bad request: {why}")));
            answer(StatusCode::BAD_REQUEST, "application/json", body)
        }
        Route::New(key) => new_session(shared, req, key, &fwd, &in_flight).await,
    }
}

/// A request for a session of a node that is not an upstream, straight to that node's
/// address (from the directory), marked so that the node does not forward it again.
async fn forward_to_owner(
    shared: &Shared,
    mut req: Request<Incoming>,
    addr: SocketAddr,
    fwd: &Forwarding,
) -> Response<ProxyBody> {
    shared.stats.direct.fetch_add(1, Ordering::Relaxed);
    req.headers_mut().insert(shoal_proxy::headers::X_SHOAL_FORWARDED, http::HeaderValue::from_static("1"));
    match shared.pool.forward(addr, req, fwd, None).await {
        Ok(r) => r,
        Err(e) if e.retry_safe() => {
            tracing::debug!(%addr, cause = %e, "owner of the sid unreachable");
            unknown_sid(shared)
        }
        Err(e) => upstream_error(shared, &e),
    }
}

fn upstream_error(shared: &Shared, e: &ProxyError) -> Response<ProxyBody> {
    shared.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(cause = %e, "upstream failed");
    e.to_response()
}

fn no_upstream(shared: &Shared) -> Response<ProxyBody> {
    shared.stats.no_upstream.fetch_add(1, Ordering::Relaxed);
    answer(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "no upstream available")
}

/// A request without sid: picked by the strategy; sent elsewhere on a connect error when
/// it has no body (handshakes are GETs).
async fn new_session(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    key: Key,
    fwd: &Forwarding,
    in_flight: &Arc<InFlight>,
) -> Response<ProxyBody> {
    let bodyless = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) && req.body().is_end_stream();
    if !bodyless {
        let Some(up) = pick(shared, &key, &[]) else { return no_upstream(shared) };
        return match shared.pool.forward(up.addr, req, fwd, Some(guard(&up, in_flight))).await {
            Ok(r) => r,
            Err(e) => {
                if e.retry_safe() {
                    shared.upstreams.mark_down(up.addr);
                }
                upstream_error(shared, &e)
            }
        };
    }
    let (parts, _) = req.into_parts();
    let handshake = parts.uri.path().starts_with(&shared.config.path);
    let mut tried: Vec<SocketAddr> = Vec::new();
    loop {
        let Some(up) = pick(shared, &key, &tried) else {
            return no_upstream(shared);
        };
        // a clone keeps the pending upgrade (its handle lives in the extensions)
        let attempt = Request::from_parts(parts.clone(), Empty::<Bytes>::new());
        match shared.pool.forward(up.addr, attempt, fwd, Some(guard(&up, in_flight))).await {
            // a node that began draining since its last health check refuses new
            // sessions with 503 and creates none: try another one
            Ok(r)
                if handshake
                    && r.status() == StatusCode::SERVICE_UNAVAILABLE
                    && tried.len() + 1 < shared.config.max_attempts =>
            {
                // until the next health check says otherwise (without checks, only this
                // request avoids it)
                if !shared.config.health.interval.is_zero() {
                    shared.upstreams.mark_draining(up.addr);
                }
                tried.push(up.addr);
                shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(upstream = %up.addr, "new session refused (draining): sent to another upstream");
            }
            Ok(r) => return r,
            Err(e) if e.retry_safe() => {
                shared.upstreams.mark_down(up.addr);
                tried.push(up.addr);
                if tried.len() >= shared.config.max_attempts {
                    return upstream_error(shared, &e);
                }
                shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(upstream = %up.addr, cause = %e, "new session sent to another upstream");
            }
            Err(e) => return upstream_error(shared, &e),
        }
    }
}
