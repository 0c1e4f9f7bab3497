//! The server handle ([`SocketIo`]), its builder, and how it mounts into HTTP servers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;
use serde_json::Value;
use shoal_core::{AdapterFactory, LocalAdapterFactory, Room};
use shoal_engineio::{
    AllowedOrigins, CloseReason, CookieConfig, Cors, Engine, EngineLayer, EngineService, NodeDirectory, NodeId,
    NotFound, RequestInfo,
};
use shoal_socketio_proto::Args;

use crate::client::Client;
use crate::config::SocketIoConfig;
use crate::errors::SendError;
use crate::ns::{Namespace, NsHandlers, NsInner};
use crate::operators::BroadcastOperator;

/// A function of a requested namespace name and the CONNECT's `auth`.
pub type NamespacePredicate = Arc<dyn Fn(&str, &Value) -> bool + Send + Sync>;

/// How a dynamic namespace recognizes the names it serves.
#[derive(Clone)]
#[non_exhaustive]
pub enum NamespaceMatcher {
    /// A name pattern where `*` matches any run of characters except `/`
    /// (`/tenant-*`, `/org/*/chat`).
    Pattern(String),
    /// A function of the requested name and the CONNECT's `auth`.
    Predicate(NamespacePredicate),
}

impl std::fmt::Debug for NamespaceMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pattern(p) => f.debug_tuple("Pattern").field(p).finish(),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl NamespaceMatcher {
    fn matches(&self, name: &str, auth: &Value) -> bool {
        match self {
            Self::Pattern(p) => glob_match(p.as_bytes(), name.as_bytes()),
            Self::Predicate(f) => f(name, auth),
        }
    }
}

/// `*` matches any run of bytes other than `/`.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => {
            let mut i = 0;
            loop {
                if glob_match(rest, &name[i..]) {
                    return true;
                }
                if i >= name.len() || name[i] == b'/' {
                    return false;
                }
                i += 1;
            }
        }
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

struct DynamicNs {
    matcher: NamespaceMatcher,
    handlers: Arc<NsHandlers>,
}

pub(crate) struct ServerInner {
    pub(crate) config: Arc<SocketIoConfig>,
    namespaces: RwLock<HashMap<String, Arc<NsInner>>>,
    dynamic: RwLock<Vec<DynamicNs>>,
    adapter: Arc<dyn AdapterFactory>,
    lifecycle: parking_lot::Mutex<Option<tokio::sync::mpsc::UnboundedSender<AdapterOp>>>,
}

impl ServerInner {
    fn create_ns(self: &Arc<Self>, name: &str, handlers: Arc<NsHandlers>, dynamic_child: bool) -> Arc<NsInner> {
        let ns = NsInner::new(name, self.config.clone(), handlers, Arc::downgrade(self), dynamic_child);
        let adapter = self.adapter.create(ns.local_view());
        ns.set_adapter(adapter);
        if tokio::runtime::Handle::try_current().is_ok() {
            start_adapter(self, &ns);
        } else {
            // started by `SocketIo::start_adapters` (which `serve` calls) once in a runtime
            tracing::debug!(ns = name, "namespace created outside a runtime, adapter start deferred");
        }
        ns
    }

    fn of(self: &Arc<Self>, name: &str) -> Arc<NsInner> {
        let name = normalize(name);
        if let Some(ns) = self.namespaces.read().get(name.as_ref()) {
            return ns.clone();
        }
        let mut map = self.namespaces.write();
        if let Some(ns) = map.get(name.as_ref()) {
            return ns.clone();
        }
        let ns = self.create_ns(&name, Arc::new(NsHandlers::default()), false);
        map.insert(name.into_owned(), ns.clone());
        ns
    }

    /// The namespace a CONNECT asks for: a registered one, or a new child of a matching
    /// dynamic namespace.
    pub(crate) fn resolve_namespace(self: &Arc<Self>, name: &str, auth: &Value) -> Option<Arc<NsInner>> {
        if let Some(ns) = self.namespaces.read().get(name) {
            return Some(ns.clone());
        }
        let handlers = {
            let dynamic = self.dynamic.read();
            dynamic.iter().find(|d| d.matcher.matches(name, auth)).map(|d| d.handlers.clone())?
        };
        let mut map = self.namespaces.write();
        if let Some(ns) = map.get(name) {
            return Some(ns.clone());
        }
        let ns = self.create_ns(name, handlers, true);
        map.insert(name.to_owned(), ns.clone());
        Some(ns)
    }

    pub(crate) fn remove_child_namespace(&self, ns: &Arc<NsInner>) {
        let removed = {
            let mut map = self.namespaces.write();
            match map.get(ns.name()) {
                Some(current) if Arc::ptr_eq(current, ns) && ns.socket_count() == 0 => map.remove(ns.name()),
                _ => None,
            }
        };
        if let Some(ns) = removed {
            tracing::debug!(ns = ns.name(), "removing empty child namespace");
            let adapter = ns.adapter().clone();
            self.lifecycle(AdapterOp::Close(adapter));
        }
    }
}

/// Starts a namespace's adapter once (subscriptions of remote adapters), in the background.
fn start_adapter(server: &ServerInner, ns: &Arc<NsInner>) {
    if ns.adapter_started.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    server.lifecycle(AdapterOp::Init(ns.adapter().clone(), ns.clone()));
}

/// Waits until the adapter of `ns` has started (starting it now if it was created before a
/// runtime existed), at most [`ADAPTER_START_WAIT`]: the first CONNECT of a namespace is
/// answered once its subscriptions are in place. Past the limit (a broker that does not
/// answer) the socket connects anyway and the adapter goes on trying.
pub(crate) async fn adapter_ready(ns: &Arc<NsInner>) {
    if ns.adapter_ready.is_ready() {
        return;
    }
    if let Some(server) = ns.server.upgrade() {
        start_adapter(&server, ns);
    }
    if !ns.adapter_ready.wait(ADAPTER_START_WAIT).await {
        tracing::warn!(
            ns = ns.name(),
            "adapter not started after {ADAPTER_START_WAIT:?}; connecting the socket anyway"
        );
    }
}

/// How long the first CONNECT of a namespace waits for its adapter to start.
pub(crate) const ADAPTER_START_WAIT: Duration = Duration::from_secs(5);

/// Starting and stopping adapters (subscribing and unsubscribing their channels).
pub(crate) enum AdapterOp {
    Init(Arc<dyn shoal_core::Adapter>, Arc<NsInner>),
    Close(Arc<dyn shoal_core::Adapter>),
}

impl ServerInner {
    /// Runs adapter starts and stops one after the other, in the order they were asked
    /// for: a namespace removed and created again must not have the old adapter's
    /// unsubscriptions overtake the new one's subscriptions. Must be called in a runtime.
    fn lifecycle(&self, op: AdapterOp) {
        let mut slot = self.lifecycle.lock();
        let tx = match &*slot {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<AdapterOp>();
                tokio::spawn(async move {
                    while let Some(op) = rx.recv().await {
                        match op {
                            AdapterOp::Init(adapter, ns) => {
                                if let Err(e) = adapter.init().await {
                                    tracing::error!(ns = ns.name(), cause = %e, "adapter failed to start");
                                }
                                ns.adapter_ready.set();
                            }
                            AdapterOp::Close(adapter) => adapter.close().await,
                        }
                    }
                });
                *slot = Some(tx.clone());
                tx
            }
        };
        let _ = tx.send(op);
    }
}

fn normalize(name: &str) -> std::borrow::Cow<'_, str> {
    if name.starts_with('/') { name.into() } else { format!("/{name}").into() }
}

/// The Socket.IO server. Cheap to clone; every clone is the same server.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use shoal::{SocketIo, Socket, Event};
///
/// let io = SocketIo::builder().build().expect("valid settings");
/// io.of("/").on_connect(|socket: Socket| async move {
///     socket.on("chat", |socket: Socket, ev: Event| async move {
///         let _ = socket.broadcast().emit_args("chat", ev.into_args());
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// shoal::serve(listener, io, async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<ServerInner>,
    engine: Arc<Engine<Client>>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo").field("config", &self.inner.config).finish()
    }
}

/// The tower layer of a Socket.IO server.
pub type SocketIoLayer = EngineLayer<Client>;
/// The tower service of a Socket.IO server in front of `S`.
pub type SocketIoService<S = NotFound> = EngineService<Client, S>;

impl SocketIo {
    /// A builder with the default settings.
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder { config: SocketIoConfig::default(), adapter: Arc::new(LocalAdapterFactory) }
    }

    /// The settings.
    pub fn config(&self) -> &SocketIoConfig {
        &self.inner.config
    }

    /// A tower layer to mount the server in axum, hyper or any tower stack.
    pub fn layer(&self) -> SocketIoLayer {
        EngineLayer::new(self.engine.clone())
    }

    /// A tower service answering 404 outside the Socket.IO path.
    pub fn service(&self) -> SocketIoService {
        EngineService::new(self.engine.clone(), NotFound)
    }

    /// A tower service handing requests outside the Socket.IO path to `inner`.
    pub fn service_with<S>(&self, inner: S) -> SocketIoService<S> {
        EngineService::new(self.engine.clone(), inner)
    }

    /// The namespace `name`, created if needed.
    pub fn of(&self, name: &str) -> Namespace {
        Namespace(self.inner.of(name))
    }

    /// Serves every namespace whose name matches `matcher`: each is created when a client
    /// first connects to it and shares the handlers registered on the returned namespace.
    pub fn of_dynamic(&self, matcher: NamespaceMatcher) -> Namespace {
        let handlers = Arc::new(NsHandlers::default());
        self.inner.dynamic.write().push(DynamicNs { matcher, handlers: handlers.clone() });
        // a handle to register the shared handlers on; it never has sockets itself
        let parent = NsInner::new("<dynamic>", self.inner.config.clone(), handlers, Arc::downgrade(&self.inner), true);
        parent.set_adapter(Arc::new(shoal_core::LocalAdapter::new(parent.local_view())));
        Namespace(parent)
    }

    /// The registered namespaces (dynamic children included).
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.inner.namespaces.read().values().cloned().map(Namespace).collect()
    }

    fn root(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.of("/"), shoal_core::BroadcastOptions::default())
    }

    /// Targets the members of `room` in the main namespace.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.root().to(room)
    }

    /// Targets everyone in the main namespace except the members of `room`.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.root().except(room)
    }

    /// Emits to every socket of the main namespace.
    ///
    /// # Errors
    /// See [`SendError`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.root().emit(event, data)
    }

    /// Emits several arguments to every socket of the main namespace.
    ///
    /// # Errors
    /// See [`SendError`].
    pub fn emit_args(&self, event: &str, args: Args) -> Result<(), SendError> {
        self.root().emit_args(event, args)
    }

    /// Starts the adapters of namespaces created before a runtime existed (`serve` does it;
    /// call it when mounting the server elsewhere after creating namespaces outside a
    /// runtime). Must be called within a tokio runtime.
    pub fn start_adapters(&self) {
        for ns in self.inner.namespaces.read().values() {
            start_adapter(&self.inner, ns);
        }
    }

    /// Number of open connections on this node.
    pub fn connection_count(&self) -> usize {
        self.engine.session_count()
    }

    /// The id of this node (embedded in every session and socket id).
    pub fn node_id(&self) -> NodeId {
        self.inner.config.engine.node_id
    }

    /// Starts draining this node: new connections are refused (the handshake gets HTTP
    /// 503 `{"code":4,"message":"Server draining"}`, so clients retry, elsewhere behind a
    /// load balancer), while the current ones keep working. Broadcasts, the adapter and
    /// forwarding go on. Then [`SocketIo::close_sessions`] or
    /// [`SocketIo::drain_and_close`] ends the remaining connections.
    pub fn drain(&self) {
        if !self.engine.is_draining() {
            tracing::info!(node = %self.node_id(), connections = self.connection_count(), "draining");
        }
        self.engine.drain();
    }

    /// True once [`SocketIo::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.engine.is_draining()
    }

    /// Requests and WebSocket upgrades this node forwarded to the nodes owning their
    /// sessions (0 when forwarding is off).
    pub fn forwarded_requests(&self) -> u64 {
        self.engine.forwarding_stats().map_or(0, |s| {
            s.connects.load(std::sync::atomic::Ordering::Relaxed) + s.reused.load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Closes every connection at the Engine.IO level (queued packets are flushed first,
    /// then the Engine.IO close packet): the official client sees reason
    /// "transport close" and reconnects (unlike a Socket.IO disconnect, reason "io server
    /// disconnect", from which it does not). The adapters keep running.
    pub fn close_sessions(&self) {
        self.engine.close_all(CloseReason::ServerShuttingDown);
    }

    /// Waits until this node has no connection left, at most `timeout`; true if none is
    /// left.
    pub async fn wait_no_connections(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.engine.session_count() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Drains ([`SocketIo::drain`]), lets the current connections go on for up to
    /// `grace` (they may leave on their own), then closes those left
    /// ([`SocketIo::close_sessions`], clients reconnect elsewhere) and waits up to 10 s
    /// for them to end. Returns the number of connections still open at the end (0
    /// normally).
    pub async fn drain_and_close(&self, grace: Duration) -> usize {
        self.drain();
        if !self.wait_no_connections(grace).await {
            tracing::info!(
                connections = self.connection_count(),
                "drain grace over, closing the remaining connections"
            );
            self.close_sessions();
            self.wait_no_connections(Duration::from_secs(10)).await;
        }
        let left = self.connection_count();
        tracing::info!(connections = left, "drained");
        left
    }

    /// Shuts the server down: every connection is closed with reason
    /// "server shutting down" (queued packets are flushed first), then the adapters stop.
    /// Waits up to `timeout` for the connections to end.
    pub async fn close_with_timeout(&self, timeout: Duration) {
        self.engine.stop_accepting_sessions();
        self.engine.close_all(CloseReason::ServerShuttingDown);
        let deadline = tokio::time::Instant::now() + timeout;
        while self.engine.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let namespaces: Vec<Arc<NsInner>> = self.inner.namespaces.read().values().cloned().collect();
        for ns in namespaces {
            ns.adapter().close().await;
        }
    }

    /// [`SocketIo::close_with_timeout`] with 10 seconds.
    pub async fn close(&self) {
        self.close_with_timeout(Duration::from_secs(10)).await;
    }
}

/// Builds a [`SocketIo`].
pub struct SocketIoBuilder {
    config: SocketIoConfig,
    adapter: Arc<dyn AdapterFactory>,
}

impl std::fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoBuilder").field("config", &self.config).finish()
    }
}

macro_rules! engine_setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.engine.$name = value;
            self
        }
    };
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

impl SocketIoBuilder {
    /// Starts from a whole configuration.
    #[must_use]
    pub fn config(mut self, config: SocketIoConfig) -> Self {
        self.config = config;
        self
    }

    /// The path prefix (default `/socket.io/`).
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut p: String = path.into();
        if !p.ends_with('/') {
            p.push('/');
        }
        self.config.engine.path = p;
        self
    }

    engine_setter!(/// Ping interval (default 25 s).
        ping_interval: Duration);
    engine_setter!(/// Ping timeout (default 20 s).
        ping_timeout: Duration);
    engine_setter!(/// Upgrade timeout (default 10 s).
        upgrade_timeout: Duration);
    engine_setter!(/// Largest message / HTTP body (default 1 000 000 bytes).
        max_payload: usize);
    engine_setter!(/// Per-connection queued packet limit (default 8192).
        max_buffered_packets: usize);
    engine_setter!(/// Per-connection queued byte limit (default 8 MiB).
        max_buffered_bytes: usize);
    engine_setter!(/// Allow HTTP long-polling (default true).
        polling: bool);
    engine_setter!(/// Allow WebSocket (default true).
        websocket: bool);
    engine_setter!(/// Allow upgrades from polling to WebSocket (default true).
        allow_upgrades: bool);
    engine_setter!(/// The node id embedded in session ids (default random).
        node_id: NodeId);
    engine_setter!(/// Maximum concurrent connections (default 1 000 000).
        max_sessions: usize);
    setter!(/// How long a connection may stay without a namespace (default 45 s).
        connect_timeout: Duration);
    setter!(/// Default acknowledgement timeout (default 10 s).
        ack_timeout: Duration);
    setter!(/// Most attachments per packet (default 10).
        max_attachments: usize);
    setter!(/// Time allowed for the attachments of one binary packet to arrive (default 10 s).
        attachments_timeout: Duration);
    setter!(/// Most acknowledgements a socket may owe (default 1024).
        max_pending_acks: usize);
    setter!(/// Most waiting handlers per connection before it stops reading (default 512).
        max_pending_handlers: usize);
    setter!(/// Remove dynamic child namespaces when empty (default false).
        cleanup_empty_child_namespaces: bool);

    /// CORS for polling requests.
    #[must_use]
    pub fn cors(mut self, cors: Cors) -> Self {
        self.config.engine.cors = Some(cors);
        self
    }

    /// CORS allowing these origins (`*` allows any).
    #[must_use]
    pub fn cors_origins<S: Into<String>>(self, origins: impl IntoIterator<Item = S>) -> Self {
        let list: Vec<String> = origins.into_iter().map(Into::into).collect();
        let origins = if list.iter().any(|o| o == "*") { AllowedOrigins::Any } else { AllowedOrigins::List(list) };
        self.cors(Cors::new(origins))
    }

    /// Sends an affinity cookie with handshakes.
    #[must_use]
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.config.engine.cookie = Some(cookie);
        self
    }

    /// Enables WebSocket permessage-deflate.
    #[must_use]
    pub fn per_message_deflate(mut self, config: shoal_engineio::config::DeflateConfig) -> Self {
        self.config.engine.per_message_deflate = Some(config);
        self
    }

    /// A hook that may refuse handshakes (HTTP 403 with the message).
    #[must_use]
    pub fn allow_request<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Arc<RequestInfo>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.config.engine.allow_request = Some(Arc::new(move |req| Box::pin(f(req))));
        self
    }

    /// Forwards requests for other nodes' sessions to them (see
    /// [`shoal_engineio::NodeDirectory`]; with the Redis membership:
    /// `Arc::new(move |id| membership.address(id))`).
    #[must_use]
    pub fn node_directory(mut self, directory: Arc<dyn NodeDirectory>) -> Self {
        self.config.engine.node_directory = Some(directory);
        self
    }

    /// The adapter of every namespace (default: in-memory).
    #[must_use]
    pub fn adapter(mut self, factory: Arc<dyn AdapterFactory>) -> Self {
        self.adapter = factory;
        self
    }

    /// Builds the server.
    ///
    /// # Errors
    /// When a setting is invalid.
    pub fn build(self) -> Result<SocketIo, String> {
        self.config.validate()?;
        let config = Arc::new(self.config);
        let inner = Arc::new(ServerInner {
            config: config.clone(),
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            adapter: self.adapter,
            lifecycle: parking_lot::Mutex::new(None),
        });
        let engine = Engine::new(config.engine.clone(), Arc::new(Client { server: inner.clone() }));
        Ok(SocketIo { inner, engine })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match(b"/tenant-*", b"/tenant-42"));
        assert!(glob_match(b"/tenant-*", b"/tenant-"));
        assert!(!glob_match(b"/tenant-*", b"/tenant-4/x"));
        assert!(glob_match(b"/org/*/chat", b"/org/acme/chat"));
        assert!(!glob_match(b"/org/*/chat", b"/org/acme/news"));
        assert!(glob_match(b"/exact", b"/exact"));
        assert!(!glob_match(b"/exact", b"/exactly"));
        assert!(!glob_match(b"*", b"/"), "* never crosses a slash");
        assert!(glob_match(b"/*", b"/"));
    }
}
