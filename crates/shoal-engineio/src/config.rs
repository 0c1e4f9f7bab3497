//! Engine.IO server configuration.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shoal_engineio_proto::NodeId;
pub use shoal_ws::DeflateConfig;

use crate::forward::NodeDirectory;
use crate::request::RequestInfo;

/// The outcome of an [`AllowRequest`] hook: `Err(message)` refuses the handshake with
/// HTTP 403 `{"code":4,"message":<message>}`.
pub type AllowResult = Result<(), String>;

/// A hook called for every handshake (a request without `sid`, polling or WebSocket),
/// before a session exists. It may refuse the connection.
pub type AllowRequest =
    Arc<dyn Fn(Arc<RequestInfo>) -> Pin<Box<dyn Future<Output = AllowResult> + Send>> + Send + Sync>;

/// Which origins may use the server from a browser (CORS, polling requests).
#[derive(Clone)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// Any origin (`*`, or the request's origin when credentials are allowed).
    Any,
    /// Exactly these origins (`https://example.com`).
    List(Vec<String>),
    /// Origins accepted by a function.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl fmt::Debug for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::List(l) => f.debug_tuple("List").field(l).finish(),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl AllowedOrigins {
    /// True if `origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(l) => l.iter().any(|o| o == origin),
            Self::Predicate(p) => p(origin),
        }
    }
}

/// Cross-origin resource sharing for the HTTP long-polling transport. WebSocket
/// connections are not subject to CORS (as in Node); use `allow_request` to check their
/// `Origin` header.
#[derive(Debug, Clone)]
pub struct Cors {
    /// Allowed origins.
    pub origins: AllowedOrigins,
    /// Send `Access-Control-Allow-Credentials: true` (cookies, auth headers). Default false.
    pub credentials: bool,
    /// Extra request headers allowed in preflight (in addition to those the browser asks
    /// for, which are reflected). Default empty.
    pub allowed_headers: Vec<String>,
    /// `Access-Control-Max-Age` for preflight answers. Default none.
    pub max_age: Option<Duration>,
}

impl Cors {
    /// CORS for these origins, without credentials.
    pub fn new(origins: AllowedOrigins) -> Cors {
        Cors { origins, credentials: false, allowed_headers: Vec::new(), max_age: None }
    }
}

/// The affinity cookie sent with the handshake, like Node's `cookie` option. Load
/// balancers that stick sessions by cookie (HAProxy `cookie`, nginx sticky) use it.
#[derive(Debug, Clone)]
pub struct CookieConfig {
    /// Cookie name. Default `io`.
    pub name: String,
    /// `Path`. Default `/`.
    pub path: String,
    /// `HttpOnly`. Default true.
    pub http_only: bool,
    /// `SameSite` value. Default `Lax`.
    pub same_site: String,
    /// `Secure`. Default false.
    pub secure: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig { name: "io".into(), path: "/".into(), http_only: true, same_site: "Lax".into(), secure: false }
    }
}

impl CookieConfig {
    pub(crate) fn header_value(&self, sid: &str) -> String {
        let mut v = format!("{}={}; Path={}", self.name, sid, self.path);
        if self.http_only {
            v.push_str("; HttpOnly");
        }
        if !self.same_site.is_empty() {
            v.push_str("; SameSite=");
            v.push_str(&self.same_site);
        }
        if self.secure {
            v.push_str("; Secure");
        }
        v
    }
}

/// Engine.IO server settings. Every field documents its default; build one with
/// [`EngineConfig::builder`].
#[derive(Clone)]
pub struct EngineConfig {
    /// Path prefix the server answers on. Default `/engine.io/` (Socket.IO uses `/socket.io/`).
    pub path: String,
    /// Interval between two pings. Default 25 s.
    pub ping_interval: Duration,
    /// How long to wait for a pong after a ping before closing the session. Default 20 s.
    /// A silent client is closed exactly `ping_interval + ping_timeout` after its last pong.
    pub ping_timeout: Duration,
    /// How long a WebSocket upgrade may take to complete (`2probe` … `5`). Default 10 s.
    pub upgrade_timeout: Duration,
    /// Largest message (WebSocket) or HTTP body (polling POST) accepted, in bytes; sent to
    /// clients as `maxPayload`. Enforced while reading. Default 1 000 000.
    pub max_payload: usize,
    /// Allow the HTTP long-polling transport. Default true.
    pub polling: bool,
    /// Allow the WebSocket transport. Default true.
    pub websocket: bool,
    /// Allow upgrades from polling to WebSocket. Default true.
    pub allow_upgrades: bool,
    /// CORS for polling requests. Default none (no CORS headers, as in Node).
    pub cors: Option<Cors>,
    /// Affinity cookie sent with handshakes. Default none.
    pub cookie: Option<CookieConfig>,
    /// Per-session limit on packets queued for sending. Past it, a volatile packet is
    /// dropped and a regular one closes the session with reason "slow consumer".
    /// Default 8192.
    pub max_buffered_packets: usize,
    /// Per-session limit on bytes queued for sending (same policy). Default 8 MiB.
    pub max_buffered_bytes: usize,
    /// WebSocket permessage-deflate. Default off, as in Node.
    pub per_message_deflate: Option<DeflateConfig>,
    /// The id of this node, embedded in every session id. Default: random.
    pub node_id: NodeId,
    /// Hook that may refuse a handshake. Default none.
    pub allow_request: Option<AllowRequest>,
    /// Maximum number of concurrent sessions; further handshakes get HTTP 503.
    /// Default 1 000 000.
    pub max_sessions: usize,
    /// Where the other nodes are. When set, a polling request or WebSocket upgrade whose
    /// sid names another node is forwarded to it (see [`crate::NodeDirectory`]); without
    /// it, such a request gets HTTP 400 "Session ID unknown". Default none.
    pub node_directory: Option<Arc<dyn NodeDirectory>>,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("polling", &self.polling)
            .field("websocket", &self.websocket)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("cors", &self.cors)
            .field("cookie", &self.cookie)
            .field("max_buffered_packets", &self.max_buffered_packets)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("per_message_deflate", &self.per_message_deflate)
            .field("node_id", &self.node_id)
            .field("allow_request", &self.allow_request.as_ref().map(|_| ".."))
            .field("max_sessions", &self.max_sessions)
            .field("node_directory", &self.node_directory.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/engine.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            cors: None,
            cookie: None,
            max_buffered_packets: 8192,
            max_buffered_bytes: 8 * 1024 * 1024,
            per_message_deflate: None,
            node_id: NodeId::random(),
            allow_request: None,
            max_sessions: 1_000_000,
            node_directory: None,
        }
    }
}

impl EngineConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder { config: EngineConfig::default() }
    }

    /// Checks that the settings make sense.
    ///
    /// # Errors
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path must start with '/': {:?}", self.path));
        }
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return Err("ping interval and timeout must be positive".into());
        }
        if self.ping_interval.as_millis() > u128::from(u32::MAX) || self.ping_timeout.as_millis() > u128::from(u32::MAX)
        {
            return Err("ping interval and timeout must fit in 32 bits of milliseconds".into());
        }
        if self.max_payload == 0 {
            return Err("max_payload must be positive".into());
        }
        if !self.polling && !self.websocket {
            return Err("at least one transport must be enabled".into());
        }
        if self.max_buffered_packets == 0 || self.max_buffered_bytes == 0 {
            return Err("buffer limits must be positive".into());
        }
        Ok(())
    }
}

/// Builder for [`EngineConfig`].
#[derive(Debug)]
pub struct EngineConfigBuilder {
    config: EngineConfig,
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl EngineConfigBuilder {
    /// Path prefix (a trailing `/` is added when missing).
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut p: String = path.into();
        if !p.ends_with('/') {
            p.push('/');
        }
        self.config.path = p;
        self
    }
    setter!(/// Ping interval.
        ping_interval: Duration);
    setter!(/// Ping timeout.
        ping_timeout: Duration);
    setter!(/// Upgrade timeout.
        upgrade_timeout: Duration);
    setter!(/// Largest message / HTTP body in bytes.
        max_payload: usize);
    setter!(/// Allow HTTP long-polling.
        polling: bool);
    setter!(/// Allow WebSocket.
        websocket: bool);
    setter!(/// Allow upgrades.
        allow_upgrades: bool);
    setter!(/// Per-session queued packet limit.
        max_buffered_packets: usize);
    setter!(/// Per-session queued byte limit.
        max_buffered_bytes: usize);
    setter!(/// Node id embedded in session ids.
        node_id: NodeId);
    setter!(/// Maximum concurrent sessions.
        max_sessions: usize);

    /// Enables CORS.
    #[must_use]
    pub fn cors(mut self, cors: Cors) -> Self {
        self.config.cors = Some(cors);
        self
    }

    /// Sends an affinity cookie with handshakes.
    #[must_use]
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.config.cookie = Some(cookie);
        self
    }

    /// Enables WebSocket permessage-deflate.
    #[must_use]
    pub fn per_message_deflate(mut self, config: DeflateConfig) -> Self {
        self.config.per_message_deflate = Some(config);
        self
    }

    /// Forwards requests for other nodes' sessions to them, at the addresses `directory`
    /// gives.
    #[must_use]
    pub fn node_directory(mut self, directory: Arc<dyn NodeDirectory>) -> Self {
        self.config.node_directory = Some(directory);
        self
    }

    /// Installs a hook that may refuse handshakes.
    #[must_use]
    pub fn allow_request<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Arc<RequestInfo>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AllowResult> + Send + 'static,
    {
        self.config.allow_request = Some(Arc::new(move |req| Box::pin(f(req))));
        self
    }

    /// The configuration.
    ///
    /// # Errors
    /// When a setting is invalid (see [`EngineConfig::validate`]).
    pub fn build(self) -> Result<EngineConfig, String> {
        self.config.validate()?;
        Ok(self.config)
    }
}
