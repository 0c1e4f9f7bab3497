//! Settings of the balancer: the strategy for new sessions, limits, health checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use shoal_engineio_proto::NodeId;
use shoal_proxy::ProxyConfig;

use crate::error::BalanceError;

/// How a request without a `sid` (a new session, or any request outside the Engine.IO
/// path) picks its upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// The upstream with the fewest open client connections: WebSocket tunnels and
    /// requests in flight (a polling client almost always has one), counted by this
    /// balancer. Ties go to the lowest load reported by [`crate::Upstreams::set_load`],
    /// then in turn. The default.
    #[default]
    LeastConnections,
    /// Each upstream in turn.
    RoundRobin,
    /// An upstream at random.
    Random,
    /// A consistent hash of the client's IP address (the TCP peer).
    IpHash,
    /// A consistent hash of one hop of a header (see [`BalancerConfig::on_missing`]).
    HeaderHash {
        /// The header, `X-Forwarded-For` by default on the command line.
        header: HeaderName,
        /// Which comma-separated element: `0` the first (in `X-Forwarded-For`, the
        /// original client), `-1` the last (the peer of the nearest proxy).
        hop: i32,
    },
    /// A consistent hash of a cookie's value. A cookie holding a sid (the `io` cookie of
    /// nodes run with `--cookie`) sends the client back to that sid's node while it is
    /// up.
    Cookie {
        /// The cookie name (`io` on the command line by default).
        name: String,
    },
}

impl Strategy {
    /// The strategy's name as on the command line (`least-connections`, `round-robin`,
    /// `random`, `ip-hash`, `header-hash`, `cookie`).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::LeastConnections => "least-connections",
            Strategy::RoundRobin => "round-robin",
            Strategy::Random => "random",
            Strategy::IpHash => "ip-hash",
            Strategy::HeaderHash { .. } => "header-hash",
            Strategy::Cookie { .. } => "cookie",
        }
    }
}

/// What to do with a new session when the hashed header or cookie is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnMissing {
    /// Answer `400` with a message naming what is missing.
    Refuse,
    /// Use least-connections for that request. The default.
    #[default]
    Fallback,
}

/// What to do with a request whose sid names a node that is not one of the upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForeignSids {
    /// Answer `400 Session ID unknown` (the client reconnects). The default.
    #[default]
    Refuse,
    /// Pass it to an upstream picked as for a new session: for upstreams that forward
    /// other nodes' requests to their owner themselves (Shoal nodes with a membership),
    /// e.g. cluster mode's primary in front of its workers while other hosts' workers own
    /// some sessions.
    Delegate,
}

/// Where a node that is not an upstream listens, by node id (e.g. from the membership in
/// Redis): requests for its sessions are forwarded straight to it (see
/// [`BalancerConfig::directory`]).
#[derive(Clone)]
pub struct Directory(Arc<dyn Fn(NodeId) -> Option<SocketAddr> + Send + Sync>);

impl Directory {
    /// A directory answering with `lookup`.
    pub fn new(lookup: impl Fn(NodeId) -> Option<SocketAddr> + Send + Sync + 'static) -> Directory {
        Directory(Arc::new(lookup))
    }

    /// The address of node `id`, if known.
    pub fn address(&self, id: NodeId) -> Option<SocketAddr> {
        (self.0)(id)
    }
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Directory(..)")
    }
}

/// Active health checks against each upstream's `GET /health`.
///
/// `200` is healthy, `503` healthy but draining (no new sessions, sids still routed),
/// anything else (or no answer within [`HealthConfig::timeout`]) a failure. The node id is
/// read from the answer's `"node"` field; when it has none, from the sid of a probe
/// handshake (which is closed at once).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Time between two checks of an upstream; zero turns active checks off. Default 2 s.
    pub interval: Duration,
    /// Time allowed for one check. Default 1.5 s.
    pub timeout: Duration,
    /// Consecutive failures that take an upstream out of rotation. Default 2.
    pub fall: u32,
    /// Consecutive successes that bring it back. Default 2.
    pub rise: u32,
    /// Path of the health endpoint. Default `/health`.
    pub path: String,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(1500),
            fall: 2,
            rise: 2,
            path: "/health".to_owned(),
        }
    }
}

impl HealthConfig {
    /// Sets [`HealthConfig::interval`].
    #[must_use]
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// Sets [`HealthConfig::timeout`].
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Sets [`HealthConfig::fall`].
    #[must_use]
    pub fn fall(mut self, n: u32) -> Self {
        self.fall = n;
        self
    }
    /// Sets [`HealthConfig::rise`].
    #[must_use]
    pub fn rise(mut self, n: u32) -> Self {
        self.rise = n;
        self
    }
    /// Sets [`HealthConfig::path`].
    #[must_use]
    pub fn path(mut self, p: impl Into<String>) -> Self {
        self.path = p.into();
        self
    }
}

/// Every setting of a [`crate::Balancer`], with documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BalancerConfig {
    /// How new sessions pick an upstream. Default least-connections.
    pub strategy: Strategy,
    /// Header or cookie missing with a hash strategy. Default [`OnMissing::Fallback`].
    pub on_missing: OnMissing,
    /// Requests whose sid names a node that is not an upstream. Default
    /// [`ForeignSids::Refuse`].
    pub foreign_sids: ForeignSids,
    /// Nodes that are not upstreams but own sessions (other hosts' nodes): a request whose
    /// sid names a node the directory knows goes straight to it, marked
    /// `x-shoal-forwarded` so that it is not forwarded again; `foreign_sids` applies to
    /// the nodes it does not know. Default none.
    pub directory: Option<Directory>,
    /// Path prefix of Engine.IO requests, routed by their `sid`. Default `/socket.io/`.
    pub path: String,
    /// Largest request head (request line and headers) accepted from a client, in bytes;
    /// past it the client gets `431`. At least 8192. Default 16384.
    pub max_header_bytes: usize,
    /// Time allowed to receive a complete request head once its first byte has arrived
    /// (slow clients, "slowloris"); the connection is closed past it. Default 10 s.
    pub header_read_timeout: Duration,
    /// A client connection with no request in flight and no byte either way for this
    /// long is closed. Default 120 s.
    pub client_idle_timeout: Duration,
    /// Most client connections (and WebSocket tunnels) open at once; more wait in the
    /// listen backlog. Default 10000.
    pub max_connections: usize,
    /// On shutdown, how long in-flight requests and tunnels may run before the balancer
    /// returns anyway. Default 30 s.
    pub drain_timeout: Duration,
    /// Most upstreams tried for one new session when connecting fails. Default 3.
    pub max_attempts: usize,
    /// Active health checks.
    pub health: HealthConfig,
    /// Connections to upstreams (timeouts, keep-alive pool). Default: shoal-proxy's
    /// defaults, with up to 512 idle connections kept per upstream (a balancer carries
    /// many clients' requests).
    pub proxy: ProxyConfig,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            strategy: Strategy::default(),
            on_missing: OnMissing::default(),
            foreign_sids: ForeignSids::default(),
            directory: None,
            path: "/socket.io/".to_owned(),
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            client_idle_timeout: Duration::from_secs(120),
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(30),
            max_attempts: 3,
            health: HealthConfig::default(),
            proxy: ProxyConfig::default().max_idle_per_upstream(512),
        }
    }
}

impl BalancerConfig {
    /// Checks that every setting is usable.
    ///
    /// # Errors
    /// [`BalanceError::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), BalanceError> {
        let bad = |m: &str| Err(BalanceError::Config(m.to_owned()));
        if self.max_header_bytes < 8192 {
            return bad("max_header_bytes must be at least 8192");
        }
        if self.header_read_timeout.is_zero() || self.client_idle_timeout.is_zero() {
            return bad("header_read_timeout and client_idle_timeout must be above zero");
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if !self.path.starts_with('/') {
            return bad("path must start with '/'");
        }
        if !self.health.interval.is_zero()
            && (self.health.timeout.is_zero() || self.health.fall == 0 || self.health.rise == 0)
        {
            return bad("health timeout, fall and rise must be above zero");
        }
        if !self.health.path.starts_with('/') {
            return bad("health path must start with '/'");
        }
        if let Strategy::Cookie { name } = &self.strategy
            && (name.is_empty() || name.contains([';', '=', ' ', ',']))
        {
            return bad("cookie name must be a non-empty token");
        }
        Ok(())
    }
}
