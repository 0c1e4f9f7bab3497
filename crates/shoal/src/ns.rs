//! Namespaces: their sockets, their rooms, and what the adapter sees of them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;
use shoal_core::{AckSink, Adapter, BroadcastOptions, LocalNamespace, Room, SocketInfo};
use shoal_engineio::Sid;
use shoal_socketio_proto::{Args, Packet};

use crate::codec;
use crate::config::SocketIoConfig;
use crate::errors::{BroadcastAckError, SendError};
use crate::handler::{ConnectHandler, Middleware};
use crate::io::ServerInner;
use crate::operators::BroadcastOperator;
use crate::socket::{PendingAck, Socket};

/// Sid keys are random: hash a few of their bytes, cheaply.
#[derive(Default)]
pub(crate) struct SidHasher(u64);

impl std::hash::Hasher for SidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(7) ^ u64::from(b);
        }
    }
}

pub(crate) type SidMap<V> = HashMap<Sid, V, BuildHasherDefault<SidHasher>>;

/// A handler for events other nodes emit with `server_side_emit`: receives the
/// arguments (`args[0]` is the event name) and may answer.
pub trait ServerEventHandler: Send + Sync + 'static {
    /// Runs the handler; `Some(args)` answers a `server_side_emit_with_ack`.
    fn call(&self, args: Args) -> Option<Args>;
}

impl<F> ServerEventHandler for F
where
    F: Fn(Args) -> Option<Args> + Send + Sync + 'static,
{
    fn call(&self, args: Args) -> Option<Args> {
        self(args)
    }
}

/// The handlers of a namespace (shared by a dynamic parent and its children).
#[derive(Default)]
pub(crate) struct NsHandlers {
    pub(crate) middlewares: RwLock<Vec<Arc<dyn Middleware>>>,
    pub(crate) on_connect: RwLock<Option<Arc<dyn ConnectHandler>>>,
    pub(crate) server_events: RwLock<HashMap<String, Arc<dyn ServerEventHandler>>>,
}

/// Set once a namespace's adapter has started (`Adapter::init` ended), so that the first
/// sockets of a namespace are connected only once the adapter's subscriptions are in
/// place and broadcasts from other nodes reach them.
#[derive(Default)]
pub(crate) struct AdapterReady {
    ready: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl AdapterReady {
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self) {
        self.ready.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Waits until ready, at most `limit`; true if ready.
    pub(crate) async fn wait(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if self.is_ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_ready();
            }
        }
    }
}

pub(crate) struct NsInner {
    name: Arc<str>,
    pub(crate) config: Arc<SocketIoConfig>,
    pub(crate) handlers: Arc<NsHandlers>,
    sockets: RwLock<SidMap<Socket>>,
    rooms: RwLock<HashMap<Room, SidMap<Socket>>>,
    adapter: OnceLock<Arc<dyn Adapter>>,
    /// The adapter's `init` was launched.
    pub(crate) adapter_started: std::sync::atomic::AtomicBool,
    /// The adapter's `init` has ended (well or not): its subscriptions are in place.
    pub(crate) adapter_ready: AdapterReady,
    ack_id: AtomicU64,
    pub(crate) server: Weak<ServerInner>,
    /// A child of a dynamic namespace (removable when empty).
    pub(crate) dynamic_child: bool,
}

impl NsInner {
    pub(crate) fn new(
        name: &str,
        config: Arc<SocketIoConfig>,
        handlers: Arc<NsHandlers>,
        server: Weak<ServerInner>,
        dynamic_child: bool,
    ) -> Arc<NsInner> {
        Arc::new(NsInner {
            name: Arc::from(name),
            config,
            handlers,
            sockets: RwLock::new(SidMap::default()),
            rooms: RwLock::new(HashMap::new()),
            adapter: OnceLock::new(),
            adapter_started: std::sync::atomic::AtomicBool::new(false),
            adapter_ready: AdapterReady::default(),
            ack_id: AtomicU64::new(0),
            server,
            dynamic_child,
        })
    }

    pub(crate) fn set_adapter(&self, adapter: Arc<dyn Adapter>) {
        let _ = self.adapter.set(adapter);
    }

    pub(crate) fn local_view(self: &Arc<Self>) -> Arc<dyn LocalNamespace> {
        Arc::new(LocalNs { inner: Arc::downgrade(self), name: self.name.to_string() })
    }

    pub(crate) fn adapter(&self) -> &Arc<dyn Adapter> {
        self.adapter.get().expect("the adapter is set when the namespace is created")
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_cow(&self) -> Cow<'static, str> {
        if &*self.name == "/" { Cow::Borrowed("/") } else { Cow::Owned(self.name.to_string()) }
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn socket_count(&self) -> usize {
        self.sockets.read().len()
    }

    pub(crate) fn get_socket(&self, sid: &Sid) -> Option<Socket> {
        self.sockets.read().get(sid).cloned()
    }

    pub(crate) fn all_sockets(&self) -> Vec<Socket> {
        self.sockets.read().values().cloned().collect()
    }

    pub(crate) fn insert_socket(&self, socket: &Socket) {
        self.sockets.write().insert(socket.id(), socket.clone());
        // every socket is in a room named by its id: adapters that subscribe per room
        // (sharded, dynamic-private) hear of it like any other room
        self.adapter().on_room_created(&Room::from(socket.id()));
    }

    pub(crate) fn remove_socket(self: &Arc<Self>, socket: &Socket) {
        let rooms: Vec<Room> = socket.0.rooms.lock().to_vec();
        self.leave(socket, &rooms);
        let (removed, empty) = {
            let mut s = self.sockets.write();
            let removed = s.remove(&socket.id()).is_some();
            (removed, s.is_empty())
        };
        if removed {
            self.adapter().on_room_deleted(&Room::from(socket.id()));
        }
        if empty
            && self.dynamic_child
            && self.config.cleanup_empty_child_namespaces
            && let Some(server) = self.server.upgrade()
        {
            server.remove_child_namespace(self);
        }
    }

    pub(crate) fn join(&self, socket: &Socket, rooms: &[Room]) {
        if socket.is_closing() {
            // as in Node: a socket that is leaving (or left) joins nothing
            return;
        }
        let mut created = Vec::new();
        {
            let mut index = self.rooms.write();
            let mut mine = socket.0.rooms.lock();
            for room in rooms {
                if room.as_str() == socket.id().as_str() || mine.contains(room) {
                    continue;
                }
                let key = match index.get_key_value(room.as_str()) {
                    Some((k, _)) => k.clone(),
                    None => {
                        created.push(room.clone());
                        room.clone()
                    }
                };
                index.entry(key.clone()).or_default().insert(socket.id(), socket.clone());
                mine.push(key);
            }
        }
        for room in &created {
            self.adapter().on_room_created(room);
        }
    }

    pub(crate) fn leave(&self, socket: &Socket, rooms: &[Room]) {
        let mut deleted = Vec::new();
        {
            let mut index = self.rooms.write();
            let mut mine = socket.0.rooms.lock();
            for room in rooms {
                let Some(pos) = mine.iter().position(|r| r == room) else { continue };
                mine.swap_remove(pos);
                if let Some(members) = index.get_mut(room.as_str()) {
                    members.remove(&socket.id());
                    if members.is_empty() {
                        index.remove(room.as_str());
                        deleted.push(room.clone());
                    }
                }
            }
            if mine.is_empty() && mine.spilled() {
                *mine = smallvec::SmallVec::new();
            }
        }
        for room in &deleted {
            self.adapter().on_room_deleted(room);
        }
    }

    /// Calls `f` for every local socket matching `opts`, each once.
    pub(crate) fn for_each_target(&self, opts: &BroadcastOptions, mut f: impl FnMut(&Socket)) {
        let sockets = self.sockets.read();
        let rooms = self.rooms.read();
        let members = |room: &Room, out: &mut dyn FnMut(&Socket)| {
            if let Some(m) = rooms.get(room.as_str()) {
                m.values().for_each(&mut *out);
            }
            if let Ok(sid) = room.as_str().parse::<Sid>()
                && let Some(s) = sockets.get(&sid)
                && !rooms.get(room.as_str()).is_some_and(|m| m.contains_key(&sid))
            {
                out(s);
            }
        };
        let mut except: HashSet<Sid, BuildHasherDefault<SidHasher>> = HashSet::default();
        for room in &opts.except {
            members(room, &mut |s| {
                except.insert(s.id());
            });
        }
        if opts.rooms.is_empty() {
            for s in sockets.values() {
                if except.is_empty() || !except.contains(&s.id()) {
                    f(s);
                }
            }
        } else if opts.rooms.len() == 1 {
            members(&opts.rooms[0], &mut |s| {
                if except.is_empty() || !except.contains(&s.id()) {
                    f(s);
                }
            });
        } else {
            let mut seen = except;
            for room in &opts.rooms {
                members(room, &mut |s| {
                    if seen.insert(s.id()) {
                        f(s);
                    }
                });
            }
        }
    }

    pub(crate) fn broadcast_local(&self, packet: &Packet, opts: &BroadcastOptions) -> usize {
        let encoded = codec::encode_packet(packet);
        let send = shoal_engineio::SendOptions { volatile: opts.flags.volatile, compress: opts.flags.compress };
        let mut n = 0;
        self.for_each_target(opts, |s| {
            n += usize::from(s.send_encoded_with(&encoded, send).unwrap_or(false));
        });
        n
    }

    pub(crate) fn broadcast_local_with_ack(&self, packet: &Packet, opts: &BroadcastOptions, sink: &AckSink) -> usize {
        let id = self.next_ack_id();
        let mut packet = packet.clone();
        packet.id = Some(id);
        let encoded = codec::encode_packet(&packet);
        let send = shoal_engineio::SendOptions { volatile: opts.flags.volatile, compress: opts.flags.compress };
        let mut n = 0;
        self.for_each_target(opts, |s| {
            if s.register_ack(id, PendingAck::Broadcast(sink.clone())).is_ok()
                && s.send_encoded_with(&encoded, send).unwrap_or(false)
            {
                n += 1;
            }
        });
        n
    }

    fn collect_targets(&self, opts: &BroadcastOptions) -> Vec<Socket> {
        let mut v = Vec::new();
        self.for_each_target(opts, |s| v.push(s.clone()));
        v
    }

    pub(crate) fn socket_info(socket: &Socket) -> SocketInfo {
        SocketInfo {
            id: socket.id().to_string(),
            handshake: socket.handshake().to_json(),
            rooms: socket.rooms(),
            data: socket.data_value(),
        }
    }

    pub(crate) fn server_side_emit_local(&self, args: Args, ack: Option<AckSink>) -> usize {
        let Some(name) = args.values.first().and_then(|v| v.as_str()).map(str::to_owned) else { return 0 };
        let handler = self.handlers.server_events.read().get(&name).cloned();
        let Some(handler) = handler else { return 0 };
        let answer = handler.call(args);
        match (ack, answer) {
            (Some(sink), Some(a)) => {
                sink.respond(None, a);
                1
            }
            _ => 0,
        }
    }
}

/// What adapters see of a namespace (a weak view: adapters do not keep it alive).
struct LocalNs {
    inner: Weak<NsInner>,
    name: String,
}

impl LocalNamespace for LocalNs {
    fn name(&self) -> &str {
        &self.name
    }

    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> usize {
        self.inner.upgrade().map_or(0, |ns| ns.broadcast_local(packet, opts))
    }

    fn broadcast_with_ack(&self, packet: &Packet, opts: &BroadcastOptions, sink: &AckSink) -> usize {
        self.inner.upgrade().map_or(0, |ns| ns.broadcast_local_with_ack(packet, opts, sink))
    }

    fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let Some(ns) = self.inner.upgrade() else { return Vec::new() };
        ns.collect_targets(opts).iter().map(NsInner::socket_info).collect()
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        if let Some(ns) = self.inner.upgrade() {
            for s in ns.collect_targets(opts) {
                ns.join(&s, rooms);
            }
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        if let Some(ns) = self.inner.upgrade() {
            for s in ns.collect_targets(opts) {
                ns.leave(&s, rooms);
            }
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if let Some(ns) = self.inner.upgrade() {
            for s in ns.collect_targets(opts) {
                if close { s.disconnect_and_close() } else { s.disconnect() }
            }
        }
    }

    fn rooms(&self) -> Vec<Room> {
        let Some(ns) = self.inner.upgrade() else { return Vec::new() };
        let mut v: Vec<Room> = ns.rooms.read().keys().cloned().collect();
        v.extend(ns.sockets.read().keys().map(|sid| Room::from(*sid)));
        v
    }

    fn server_side_emit(&self, args: Args, ack: Option<AckSink>) -> usize {
        self.inner.upgrade().map_or(0, |ns| ns.server_side_emit_local(args, ack))
    }
}

/// A namespace: register its handlers, and emit to its sockets.
#[derive(Clone)]
pub struct Namespace(pub(crate) Arc<NsInner>);

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace").field("name", &self.0.name).finish()
    }
}

impl Namespace {
    /// The name (`/`, `/chat`).
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// Adds a middleware, run in order before each socket connects.
    pub fn use_middleware<M: Middleware>(&self, middleware: M) -> &Self {
        self.0.handlers.middlewares.write().push(Arc::new(middleware));
        self
    }

    /// Sets the handler called for every socket that connects.
    pub fn on_connect<H: ConnectHandler>(&self, handler: H) -> &Self {
        *self.0.handlers.on_connect.write() = Some(Arc::new(handler));
        self
    }

    /// Handles an event emitted by other nodes with `server_side_emit`.
    pub fn on_server_event<H: ServerEventHandler>(&self, event: impl Into<String>, handler: H) -> &Self {
        self.0.handlers.server_events.write().insert(event.into(), Arc::new(handler));
        self
    }

    fn op(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.clone(), BroadcastOptions::default())
    }

    /// Targets the members of `room`.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.op().to(room)
    }

    /// Targets everyone except the members of `room`.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.op().except(room)
    }

    /// Targets everyone, dropping the packet for clients that cannot take it now.
    pub fn volatile(&self) -> BroadcastOperator {
        self.op().volatile()
    }

    /// Targets the sockets of this node only.
    pub fn local(&self) -> BroadcastOperator {
        self.op().local()
    }

    /// Sets the acknowledgement timeout of a following `emit_with_ack`.
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        self.op().timeout(timeout)
    }

    /// Emits to every socket of the namespace.
    ///
    /// # Errors
    /// See [`SendError`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.op().emit(event, data)
    }

    /// Emits several arguments to every socket.
    ///
    /// # Errors
    /// See [`SendError`].
    pub fn emit_args(&self, event: &str, args: Args) -> Result<(), SendError> {
        self.op().emit_args(event, args)
    }

    /// Emits to every socket and collects their acknowledgements.
    ///
    /// # Errors
    /// See [`BroadcastAckError`].
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Vec<shoal_core::AckResponse>, BroadcastAckError> {
        self.op().emit_with_ack(event, data).await
    }

    /// The sockets of this node (connected).
    pub fn sockets(&self) -> Vec<Socket> {
        self.0.all_sockets()
    }

    /// A socket of this node.
    pub fn socket(&self, id: &Sid) -> Option<Socket> {
        self.0.get_socket(id)
    }

    /// Number of sockets on this node.
    pub fn socket_count(&self) -> usize {
        self.0.socket_count()
    }

    /// Describes the sockets of every node.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>, shoal_core::AdapterError> {
        self.op().fetch_sockets().await
    }

    /// Makes every socket (of every node) join `rooms`.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn sockets_join<R: Into<Room>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), shoal_core::AdapterError> {
        self.op().sockets_join(rooms).await
    }

    /// Makes every socket (of every node) leave `rooms`.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn sockets_leave<R: Into<Room>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), shoal_core::AdapterError> {
        self.op().sockets_leave(rooms).await
    }

    /// Disconnects every socket (of every node); `close` also closes their connections.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), shoal_core::AdapterError> {
        self.op().disconnect_sockets(close).await
    }

    /// Every room of every node.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn all_rooms(&self) -> Result<Vec<Room>, shoal_core::AdapterError> {
        self.0.adapter().all_rooms().await
    }

    /// Number of nodes serving this namespace.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn server_count(&self) -> Result<usize, shoal_core::AdapterError> {
        self.0.adapter().server_count().await
    }

    /// Emits an event to the server-side handlers of the other nodes.
    ///
    /// # Errors
    /// When the data cannot be serialized or the broker cannot be reached.
    pub fn server_side_emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        let args = Args::single(data)?.with_event(event);
        self.0.adapter().server_side_emit(args).map_err(SendError::from)
    }

    /// Emits to the server-side handlers of the other nodes and collects their answers
    /// (one per node), waiting at most `timeout`.
    ///
    /// # Errors
    /// When the data cannot be serialized or the broker cannot be reached; when not every
    /// node answered in time, [`shoal_core::AdapterError::AckTimeout`] (inside
    /// [`SendError::Adapter`]) with the answers that came.
    pub async fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Vec<shoal_core::AckResponse>, SendError> {
        let args = Args::single(data)?.with_event(event);
        self.0.adapter().server_side_emit_with_ack(args, timeout).await.map_err(SendError::from)
    }
}
