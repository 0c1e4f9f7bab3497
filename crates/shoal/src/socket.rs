//! A socket: one client in one namespace.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shoal_core::{AckSink, BroadcastOptions, Room};
use shoal_engineio::{CloseReason, Session, Sid, TransportKind};
use shoal_socketio_proto::{Args, Packet, PacketData};
use smallvec::SmallVec;
use tokio::sync::oneshot;

use crate::client::ClientState;
use crate::codec::{self, Encoded};
use crate::errors::{AckError, DisconnectReason, SendError};
use crate::handler::{AckSender, DisconnectHandler, Event, EventHandler};
use crate::handshake::Handshake;
use crate::ns::NsInner;
use crate::operators::BroadcastOperator;

pub(crate) enum PendingAck {
    One(oneshot::Sender<Args>),
    Broadcast(AckSink),
}

impl PendingAck {
    fn is_dead(&self) -> bool {
        match self {
            PendingAck::One(tx) => tx.is_closed(),
            PendingAck::Broadcast(sink) => sink.is_closed(),
        }
    }
}

/// A handler reference. Handlers that capture nothing (zero-sized closures) cost no
/// memory at all: they are referenced statically. Others are shared by `Arc`.
pub(crate) enum HandlerRef<T: ?Sized + 'static> {
    Static(&'static T),
    Shared(Arc<T>),
}

impl<T: ?Sized> Clone for HandlerRef<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Static(r) => Self::Static(r),
            Self::Shared(a) => Self::Shared(a.clone()),
        }
    }
}

impl<T: ?Sized> std::ops::Deref for HandlerRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Self::Static(r) => r,
            Self::Shared(a) => a,
        }
    }
}

/// True for values that can be referenced statically for free: zero-sized, nothing to
/// drop (leaking their box allocates nothing).
fn is_free<H>() -> bool {
    std::mem::size_of::<H>() == 0 && !std::mem::needs_drop::<H>()
}

fn event_ref<H: EventHandler>(h: H) -> HandlerRef<dyn EventHandler> {
    if is_free::<H>() {
        let r: &'static dyn EventHandler = Box::leak(Box::new(h));
        HandlerRef::Static(r)
    } else {
        HandlerRef::Shared(Arc::new(h))
    }
}

fn disconnect_ref<H: DisconnectHandler>(h: H) -> HandlerRef<dyn DisconnectHandler> {
    if is_free::<H>() {
        let r: &'static dyn DisconnectHandler = Box::leak(Box::new(h));
        HandlerRef::Static(r)
    } else {
        HandlerRef::Shared(Arc::new(h))
    }
}

/// The handlers of a socket. Events are few per socket, so a vector (exactly sized) is
/// both smaller and as fast to search as a map.
#[derive(Default)]
pub(crate) struct Handlers {
    events: Vec<(Cow<'static, str>, HandlerRef<dyn EventHandler>)>,
    extra: Option<Box<ExtraHandlers>>,
}

#[derive(Default)]
struct ExtraHandlers {
    any: Vec<HandlerRef<dyn EventHandler>>,
    disconnecting: Vec<HandlerRef<dyn DisconnectHandler>>,
    disconnect: Vec<HandlerRef<dyn DisconnectHandler>>,
}

impl Handlers {
    fn extra(&mut self) -> &mut ExtraHandlers {
        self.extra.get_or_insert_with(Box::default)
    }

    fn event(&self, name: &str) -> Option<HandlerRef<dyn EventHandler>> {
        self.events.iter().find(|(n, _)| n == name).map(|(_, h)| h.clone())
    }
}

pub(crate) struct SocketInner {
    pub(crate) id: Sid,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) session: Arc<Session<ClientState>>,
    pub(crate) handshake: Handshake,
    connected: AtomicBool,
    closing: AtomicBool,
    handlers: RwLock<Handlers>,
    /// The rooms joined (the socket's own-id room is implicit).
    pub(crate) rooms: Mutex<SmallVec<[Room; 2]>>,
    /// Acknowledgements the client owes (allocated only while there are some).
    // boxed on purpose: 8 bytes per idle socket instead of a 48-byte empty map
    #[allow(clippy::box_collection)]
    acks: Mutex<Option<Box<HashMap<u64, PendingAck>>>>,
    data: Mutex<Option<Box<Value>>>,
    extensions: Mutex<http::Extensions>,
}

/// A client connected to a namespace. Cheap to clone (shared).
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").field("id", &self.0.id).field("ns", &self.0.ns.name()).finish()
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Socket {
    pub(crate) fn new(ns: Arc<NsInner>, session: Arc<Session<ClientState>>, handshake: Handshake) -> Socket {
        Socket(Arc::new(SocketInner {
            id: Sid::generate(session.config().node_id),
            ns,
            session,
            handshake,
            connected: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            handlers: RwLock::new(Handlers::default()),
            rooms: Mutex::new(SmallVec::new()),
            acks: Mutex::new(None),
            data: Mutex::new(None),
            extensions: Mutex::new(http::Extensions::new()),
        }))
    }

    /// The socket id (20 characters; never the connection's id).
    pub fn id(&self) -> Sid {
        self.0.id
    }

    /// The namespace name.
    pub fn ns(&self) -> &str {
        self.0.ns.name()
    }

    /// The namespace of the socket (to emit to a room *including* this socket:
    /// `socket.namespace().to(room).emit(…)`).
    pub fn namespace(&self) -> crate::Namespace {
        crate::Namespace(self.0.ns.clone())
    }

    /// The handshake (headers, query, address, auth...).
    pub fn handshake(&self) -> &Handshake {
        &self.0.handshake
    }

    /// True until the socket disconnects.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self) {
        self.0.connected.store(true, Ordering::Release);
    }

    /// The transport of the connection.
    pub fn transport(&self) -> TransportKind {
        self.0.session.transport()
    }

    /// The id of the underlying Engine.IO connection.
    pub fn conn_id(&self) -> Sid {
        self.0.session.id()
    }

    // ----- handlers -----

    /// Handles event `event` (replacing a previous handler for it).
    pub fn on<H: EventHandler>(&self, event: impl Into<Cow<'static, str>>, handler: H) {
        let event = event.into();
        let h = event_ref(handler);
        let mut handlers = self.0.handlers.write();
        match handlers.events.iter_mut().find(|(n, _)| *n == event) {
            Some(slot) => slot.1 = h,
            None => {
                handlers.events.push((event, h));
                handlers.events.shrink_to_fit();
            }
        }
    }

    /// Removes the handler of `event`.
    pub fn off(&self, event: &str) {
        let mut handlers = self.0.handlers.write();
        handlers.events.retain(|(n, _)| n != event);
        handlers.events.shrink_to_fit();
    }

    /// Handles every event (called before the event's own handler; gets the ack only if
    /// the event has no handler of its own).
    pub fn on_any<H: EventHandler>(&self, handler: H) {
        self.0.handlers.write().extra().any.push(event_ref(handler));
    }

    /// Called when the socket is about to leave (it still has its rooms).
    pub fn on_disconnecting<H: DisconnectHandler>(&self, handler: H) {
        self.0.handlers.write().extra().disconnecting.push(disconnect_ref(handler));
    }

    /// Called once the socket has left.
    pub fn on_disconnect<H: DisconnectHandler>(&self, handler: H) {
        self.0.handlers.write().extra().disconnect.push(disconnect_ref(handler));
    }

    // ----- data -----

    /// Stores `data` as the socket's data (visible to other nodes through fetch sockets).
    ///
    /// # Errors
    /// When `data` cannot be serialized.
    pub fn set_data<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), serde_json::Error> {
        let v = serde_json::to_value(data)?;
        *self.0.data.lock() = if v.is_null() { None } else { Some(Box::new(v)) };
        Ok(())
    }

    /// The socket's data as `T` (`None` if unset or of another shape).
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        let v = self.0.data.lock();
        v.as_deref().and_then(|v| T::deserialize(v).ok())
    }

    /// The socket's data as JSON (`{}` until set, as in Node).
    pub fn data_value(&self) -> Value {
        // as Node's `socket.data`, an empty object until set
        self.0.data.lock().as_deref().cloned().unwrap_or_else(|| Value::Object(serde_json::Map::new()))
    }

    /// Typed local state (not serialized, not visible to other nodes).
    pub fn extensions(&self) -> parking_lot::MutexGuard<'_, http::Extensions> {
        self.0.extensions.lock()
    }

    // ----- emitting -----

    pub(crate) fn send_encoded(&self, encoded: &Encoded) -> Result<(), SendError> {
        if !self.connected() {
            return Err(SendError::Disconnected);
        }
        self.0.session.send_many(encoded).map_err(SendError::from)
    }

    pub(crate) fn send_encoded_volatile(&self, encoded: &Encoded) -> Result<bool, SendError> {
        self.send_encoded_with(encoded, shoal_engineio::SendOptions { volatile: true, compress: true })
    }

    /// Sends with options; returns whether it was queued (false: volatile and dropped).
    pub(crate) fn send_encoded_with(
        &self,
        encoded: &Encoded,
        opts: shoal_engineio::SendOptions,
    ) -> Result<bool, SendError> {
        if !self.connected() {
            return Err(SendError::Disconnected);
        }
        self.0.session.send_with(encoded, opts).map_err(SendError::from)
    }

    pub(crate) fn send_packet(&self, packet: &Packet) -> Result<(), SendError> {
        self.send_encoded(&codec::encode_packet(packet))
    }

    /// Emits `event` with one argument to this client.
    ///
    /// # Errors
    /// When `data` cannot be serialized, the socket is gone, or the client is too slow.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        let e = codec::encode_typed(self.ns(), Some(event), data, None)?;
        self.send_encoded(&e)
    }

    /// Emits `event` with any number of arguments (`Args::from_serialize(&(a, b))`, or the
    /// arguments of a received event).
    ///
    /// # Errors
    /// When the socket is gone or the client is too slow.
    pub fn emit_args(&self, event: &str, args: Args) -> Result<(), SendError> {
        self.send_packet(&Packet::event(self.0.ns.name_cow(), args.with_event(event), None))
    }

    /// Emits `event`, dropping it if the client cannot take it right now.
    ///
    /// # Errors
    /// When `data` cannot be serialized or the socket is gone.
    pub fn emit_volatile<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        let e = codec::encode_typed(self.ns(), Some(event), data, None)?;
        self.send_encoded_volatile(&e).map(|_| ())
    }

    /// Emits `event` with one argument and waits for the client's acknowledgement, at
    /// most the configured `ack_timeout`.
    ///
    /// # Errors
    /// See [`AckError`].
    pub async fn emit_with_ack<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<Args, AckError> {
        let timeout = self.0.ns.config.ack_timeout;
        self.emit_with_ack_timeout(event, data, timeout).await
    }

    /// As [`Socket::emit_with_ack`] with an explicit timeout.
    ///
    /// # Errors
    /// See [`AckError`].
    pub async fn emit_with_ack_timeout<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Args, AckError> {
        let id = self.0.ns.next_ack_id();
        let encoded = codec::encode_typed(self.ns(), Some(event), data, Some(id)).map_err(SendError::from)?;
        self.wait_ack(id, &encoded, timeout).await
    }

    /// As [`Socket::emit_with_ack_timeout`] with any number of arguments.
    ///
    /// # Errors
    /// See [`AckError`].
    pub async fn emit_args_with_ack(&self, event: &str, args: Args, timeout: Duration) -> Result<Args, AckError> {
        let id = self.0.ns.next_ack_id();
        let encoded = codec::encode_packet(&Packet::event(self.0.ns.name_cow(), args.with_event(event), Some(id)));
        self.wait_ack(id, &encoded, timeout).await
    }

    async fn wait_ack(&self, id: u64, encoded: &Encoded, timeout: Duration) -> Result<Args, AckError> {
        let (tx, rx) = oneshot::channel();
        self.register_ack(id, PendingAck::One(tx))?;
        if let Err(e) = self.send_encoded(encoded) {
            self.take_ack(id);
            return Err(e.into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                self.take_ack(id);
                Err(AckError::Timeout)
            }
        }
    }

    pub(crate) fn register_ack(&self, id: u64, ack: PendingAck) -> Result<(), SendError> {
        let mut guard = self.0.acks.lock();
        let acks = guard.get_or_insert_with(Box::default);
        if acks.len() >= self.0.ns.config.max_pending_acks {
            acks.retain(|_, a| !a.is_dead());
            if acks.len() >= self.0.ns.config.max_pending_acks {
                return Err(SendError::TooManyPendingAcks);
            }
        }
        acks.insert(id, ack);
        Ok(())
    }

    /// Removes a pending acknowledgement (freeing the table when it becomes empty).
    fn take_ack(&self, id: u64) -> Option<PendingAck> {
        let mut guard = self.0.acks.lock();
        let acks = guard.as_mut()?;
        let a = acks.remove(&id);
        if acks.is_empty() {
            *guard = None;
        }
        a
    }

    pub(crate) fn send_ack_typed<T: Serialize + ?Sized>(&self, id: u64, data: &T) -> Result<(), SendError> {
        let e = codec::encode_typed(self.ns(), None, data, Some(id))?;
        self.send_encoded(&e)
    }

    pub(crate) fn send_ack_args(&self, id: u64, args: Args) -> Result<(), SendError> {
        self.send_packet(&Packet::ack(self.0.ns.name_cow(), args, id))
    }

    // ----- rooms -----

    /// Joins `room`.
    pub fn join(&self, room: impl Into<Room>) {
        self.0.ns.join(self, std::slice::from_ref(&room.into()));
    }

    /// Joins several rooms.
    pub fn join_many<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) {
        let rooms: Vec<Room> = rooms.into_iter().map(Into::into).collect();
        self.0.ns.join(self, &rooms);
    }

    /// Leaves `room`.
    pub fn leave(&self, room: impl Into<Room>) {
        self.0.ns.leave(self, std::slice::from_ref(&room.into()));
    }

    /// Leaves every room (except its own-id room).
    pub fn leave_all(&self) {
        let rooms: Vec<Room> = self.0.rooms.lock().to_vec();
        self.0.ns.leave(self, &rooms);
    }

    /// The rooms of the socket: its own id first, then the rooms it joined.
    pub fn rooms(&self) -> Vec<Room> {
        if !self.connected() {
            // as in Node: a socket that left its namespace is in no room
            return Vec::new();
        }
        let mut v = vec![Room::from(self.0.id)];
        v.extend(self.0.rooms.lock().iter().cloned());
        v
    }

    /// True if the socket is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.connected() && (room == self.0.id.as_str() || self.0.rooms.lock().iter().any(|r| r.as_str() == room))
    }

    /// True once the socket started leaving its namespace (it can no longer join rooms).
    pub(crate) fn is_closing(&self) -> bool {
        self.0.closing.load(Ordering::Acquire)
    }

    // ----- broadcasting from this socket -----

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator::new(
            self.0.ns.clone(),
            BroadcastOptions { except: vec![Room::from(self.0.id)], ..Default::default() },
        )
    }

    /// Targets the members of `room`, except this socket.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.operator().to(room)
    }

    /// Every socket of the namespace except this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.operator()
    }

    /// Every socket of the namespace except this one and the members of `room`.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.operator().except(room)
    }

    // ----- disconnecting -----

    /// Disconnects the socket from its namespace (the connection stays open for other
    /// namespaces). The client receives a DISCONNECT packet and will not reconnect on
    /// its own.
    pub fn disconnect(&self) {
        if self.connected() {
            let _ = self.send_packet(&Packet::disconnect(self.0.ns.name_cow()));
            self.close(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Disconnects the socket and closes its connection: as in Node (`disconnect(true)`),
    /// every socket of the connection gets a DISCONNECT (reason "server namespace
    /// disconnect", so clients do not reconnect on their own), then the connection closes
    /// once those packets are written.
    pub fn disconnect_and_close(&self) {
        for socket in self.0.session.data().sockets() {
            socket.disconnect();
        }
        self.disconnect();
        self.0.session.close(CloseReason::ForcedClose);
    }

    // ----- incoming -----

    pub(crate) fn on_packet(&self, packet: Packet) {
        match packet.ty {
            shoal_socketio_proto::PacketType::Event | shoal_socketio_proto::PacketType::BinaryEvent => {
                self.on_event(packet)
            }
            shoal_socketio_proto::PacketType::Ack | shoal_socketio_proto::PacketType::BinaryAck => {
                let (Some(id), PacketData::Args(args)) = (packet.id, packet.data) else { return };
                let pending = self.take_ack(id);
                match pending {
                    Some(PendingAck::One(tx)) => {
                        let _ = tx.send(args);
                    }
                    Some(PendingAck::Broadcast(sink)) => sink.respond(Some(self.0.id.to_string()), args),
                    None => tracing::trace!(sid = %self.0.id, id, "ack for an unknown id"),
                }
            }
            shoal_socketio_proto::PacketType::Disconnect => self.close(DisconnectReason::ClientNamespaceDisconnect),
            _ => {}
        }
    }

    fn on_event(&self, packet: Packet) {
        let PacketData::Args(mut args) = packet.data else { return };
        if args.values.is_empty() {
            return;
        }
        let name = match args.values.remove(0) {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        let (specific, any) = {
            let h = self.0.handlers.read();
            (h.event(&name), h.extra.as_ref().filter(|e| !e.any.is_empty()).map(|e| e.any.clone()))
        };
        let mut ack = packet.id.map(|id| AckSender::new(self.clone(), id));
        if let Some(any) = any {
            for (i, handler) in any.iter().enumerate() {
                let a = if specific.is_none() && i == 0 { ack.take() } else { None };
                handler.call(self.clone(), Event::new(name.clone(), args.clone(), a));
            }
        }
        if let Some(h) = specific {
            h.call(self.clone(), Event::new(name, args, ack));
        }
    }

    /// Leaves the namespace: `disconnecting` handlers, rooms, the namespace, then
    /// `disconnect` handlers. Runs once.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        if !self.connected() || self.0.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        let disconnecting =
            self.0.handlers.write().extra.as_mut().map(|e| std::mem::take(&mut e.disconnecting)).unwrap_or_default();
        // run them with the socket still looking connected to its rooms
        for h in &disconnecting {
            h.call(self.clone(), reason);
        }
        self.0.ns.remove_socket(self);
        self.0.session.data().remove_socket(self.ns());
        self.0.connected.store(false, Ordering::Release);
        // answers that will never come
        *self.0.acks.lock() = None;
        let handlers = std::mem::take(&mut *self.0.handlers.write());
        if let Some(extra) = handlers.extra {
            for h in &extra.disconnect {
                h.call(self.clone(), reason);
            }
        }
        tracing::debug!(sid = %self.0.id, ns = self.ns(), %reason, "socket disconnected");
    }
}

#[cfg(test)]
mod size_tests {
    /// Guards the memory budget of an idle socket (see docs/benchmarks.md).
    #[test]
    fn per_socket_structures_stay_small() {
        let socket = std::mem::size_of::<super::SocketInner>();
        let session = std::mem::size_of::<shoal_engineio::Session<crate::client::ClientState>>();
        assert!(socket <= 280, "SocketInner: {socket}");
        assert!(session <= 280, "Session<ClientState>: {session}");
        assert!(std::mem::size_of::<super::Handlers>() <= 32);
    }
}
