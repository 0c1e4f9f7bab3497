//! The connection of one client: decodes its Socket.IO packets and dispatches them to
//! the socket of each namespace it joined.

use std::borrow::Cow;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use shoal_engineio::{CloseReason, EngineHandler, Message, Session};
use shoal_socketio_proto::{Decoded, Packet, PacketData, PacketType, PartialPacket, decode};
use smallvec::SmallVec;

use crate::codec;
use crate::errors::DisconnectReason;
use crate::handler::run;
use crate::handshake::Handshake;
use crate::io::ServerInner;
use crate::socket::Socket;

/// Socket.IO state of one Engine.IO session.
#[derive(Default)]
pub struct ClientState {
    inner: Mutex<ClientInner>,
    /// Spawned handlers of this connection still running.
    pub(crate) pending_handlers: std::sync::atomic::AtomicU32,
    /// The configured limit (set when the session opens).
    max_pending_handlers: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientState")
    }
}

#[derive(Default)]
struct ClientInner {
    sockets: SmallVec<[Socket; 1]>,
    /// Namespaces whose middlewares are running.
    connecting: SmallVec<[String; 1]>,
    partial: Option<Box<PartialPacket>>,
    /// Closes the connection if the partial packet is not complete in time.
    partial_timer: Option<tokio::task::AbortHandle>,
    ever_connected: bool,
    connect_timer: Option<tokio::task::AbortHandle>,
    /// The server closed the connection through a socket (`disconnect_and_close`).
    server_close: bool,
}

impl ClientState {
    pub(crate) fn remove_socket(&self, nsp: &str) {
        let mut inner = self.inner.lock();
        inner.sockets.retain(|s| s.ns() != nsp);
        if inner.sockets.is_empty() && inner.sockets.spilled() {
            inner.sockets = SmallVec::new();
        }
    }

    pub(crate) fn max_pending_handlers(&self) -> u32 {
        self.max_pending_handlers.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn mark_server_close(&self) {
        self.inner.lock().server_close = true;
    }

    /// The sockets of this connection.
    pub(crate) fn sockets(&self) -> Vec<Socket> {
        self.inner.lock().sockets.to_vec()
    }

    fn socket(&self, nsp: &str) -> Option<Socket> {
        self.inner.lock().sockets.iter().find(|s| s.ns() == nsp).cloned()
    }
}

/// The Engine.IO handler of the Socket.IO server.
pub struct Client {
    pub(crate) server: Arc<ServerInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

type Sess = Arc<Session<ClientState>>;

impl EngineHandler for Client {
    type Data = ClientState;

    fn accepts_messages(&self, session: &Sess) -> bool {
        let state = session.data();
        state.pending_handlers.load(std::sync::atomic::Ordering::Acquire) < state.max_pending_handlers()
    }

    fn on_open(&self, session: &Sess) {
        session.data().max_pending_handlers.store(
            u32::try_from(self.server.config.max_pending_handlers).unwrap_or(u32::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        let weak = Arc::downgrade(session);
        let timeout = self.server.config.connect_timeout;
        let task = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(session) = weak.upgrade()
                && !session.data().inner.lock().ever_connected
            {
                tracing::debug!(sid = %session.id(), "no namespace joined in time, closing");
                session.close(CloseReason::ForcedClose);
            }
        });
        session.data().inner.lock().connect_timer = Some(task.abort_handle());
    }

    fn on_message(&self, session: &Sess, message: Message) {
        let state = session.data();
        let packet = match message {
            Message::Text(text) => {
                if state.inner.lock().partial.is_some() {
                    return parse_error(session, "text packet while attachments were expected");
                }
                let Ok(text) = std::str::from_utf8(&text) else {
                    return parse_error(session, "invalid utf-8");
                };
                match decode::decode_text(text, &self.server.config.limits()) {
                    Ok(Decoded::Complete(p)) => p,
                    Ok(Decoded::Partial(p)) => {
                        // Attachments are buffered only for a namespace the client joined,
                        // and only for a bounded time.
                        if state.socket(&p.packet().nsp).is_none() {
                            return invalid_state(session, "binary packet for a namespace not joined");
                        }
                        let timer = self.partial_timer(session);
                        let mut inner = state.inner.lock();
                        inner.partial = Some(Box::new(p));
                        inner.partial_timer = Some(timer);
                        return;
                    }
                    Err(e) => return parse_error(session, &e.to_string()),
                }
            }
            Message::Binary(data) => {
                let mut inner = state.inner.lock();
                let Some(mut partial) = inner.partial.take() else {
                    drop(inner);
                    return parse_error(session, "unexpected binary message");
                };
                match partial.push(data) {
                    Ok(false) => {
                        inner.partial = Some(partial);
                        return;
                    }
                    Ok(true) => {
                        if let Some(t) = inner.partial_timer.take() {
                            t.abort();
                        }
                        drop(inner);
                        match (*partial).finish() {
                            Ok(p) => p,
                            Err(e) => return parse_error(session, &e.to_string()),
                        }
                    }
                    Err(e) => {
                        drop(inner);
                        return parse_error(session, &e.to_string());
                    }
                }
            }
        };
        self.dispatch(session, packet);
    }

    fn on_close(&self, session: &Sess, reason: CloseReason) {
        let (sockets, server_close) = {
            let mut inner = session.data().inner.lock();
            if let Some(t) = inner.connect_timer.take() {
                t.abort();
            }
            inner.partial = None;
            if let Some(t) = inner.partial_timer.take() {
                t.abort();
            }
            (std::mem::take(&mut inner.sockets), inner.server_close)
        };
        let reason = if server_close { DisconnectReason::ForcedServerClose } else { DisconnectReason::from(reason) };
        for s in sockets {
            s.close(reason);
        }
    }
}

/// A Socket.IO packet that does not decode: as Node, the connection is closed
/// (its sockets see "forced close").
fn parse_error(session: &Sess, cause: &str) {
    tracing::debug!(sid = %session.id(), cause, "invalid socket.io packet, closing");
    session.close(CloseReason::ForcedClose);
}

/// A packet that is valid but not allowed now (for a namespace not joined, a second
/// CONNECT, a CONNECT_ERROR from the client): as Node, the server closes the connection
/// (its sockets see "forced server close").
fn invalid_state(session: &Sess, cause: &str) {
    tracing::debug!(sid = %session.id(), cause, "packet not allowed in this state, closing");
    session.data().mark_server_close();
    session.close(CloseReason::ForcedClose);
}

impl Client {
    /// A task closing the connection if the binary packet being received is still
    /// incomplete after `attachments_timeout`.
    fn partial_timer(&self, session: &Sess) -> tokio::task::AbortHandle {
        let weak = Arc::downgrade(session);
        let timeout = self.server.config.attachments_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(session) = weak.upgrade()
                && session.data().inner.lock().partial.is_some()
            {
                parse_error(&session, "binary attachments not received in time");
            }
        })
        .abort_handle()
    }

    fn dispatch(&self, session: &Sess, packet: Packet) {
        match packet.ty {
            PacketType::Connect => {
                let auth = match packet.data {
                    PacketData::Json(v @ Value::Object(_)) => v,
                    _ => Value::Object(serde_json::Map::new()),
                };
                self.connect(session, packet.nsp, auth);
            }
            PacketType::ConnectError => invalid_state(session, "CONNECT_ERROR from a client"),
            _ => match session.data().socket(&packet.nsp) {
                Some(socket) => socket.on_packet(packet),
                None => invalid_state(session, "packet for a namespace not joined"),
            },
        }
    }

    fn connect(&self, session: &Sess, nsp: Cow<'static, str>, auth: Value) {
        let state = session.data();
        {
            let inner = state.inner.lock();
            if inner.sockets.iter().any(|s| s.ns() == nsp) || inner.connecting.iter().any(|n| *n == nsp) {
                drop(inner);
                return invalid_state(session, "duplicate CONNECT");
            }
        }
        let Some(ns) = self.server.resolve_namespace(&nsp, &auth) else {
            let p = Packet::connect_error(nsp, "Invalid namespace", None);
            let _ = session.send_many(&codec::encode_packet(&p));
            return;
        };
        let socket = Socket::new(ns.clone(), session.clone(), Handshake::new(session.request().clone(), auth));
        let middlewares = ns.handlers.middlewares.read().clone();
        let ready = ns.adapter_ready.is_ready();
        if middlewares.is_empty() && ready {
            finish_connect(socket);
            return;
        }
        state.inner.lock().connecting.push(nsp.to_string());
        run(session, async move {
            if !ready {
                crate::io::adapter_ready(&ns).await;
            }
            let mut refused = None;
            for m in middlewares {
                if let Err(e) = m.call(socket.clone()).await {
                    refused = Some(e);
                    break;
                }
            }
            let session = socket.0.session.clone();
            session.data().inner.lock().connecting.retain(|n| n != socket.ns());
            match refused {
                None => finish_connect(socket),
                Some(e) => {
                    let p = Packet::connect_error(socket.0.ns.name_cow(), &e.message, e.data);
                    let _ = session.send_many(&codec::encode_packet(&p));
                }
            }
        });
    }
}

fn finish_connect(socket: Socket) {
    let session = socket.0.session.clone();
    {
        let mut inner = session.data().inner.lock();
        // checked under the lock `on_close` takes: a session closing now either sees
        // this socket or is seen closed here
        if session.is_closed() {
            return;
        }
        inner.ever_connected = true;
        if let Some(t) = inner.connect_timer.take() {
            t.abort();
        }
        inner.sockets.push(socket.clone());
    }
    let ns = socket.0.ns.clone();
    ns.insert_socket(&socket);
    socket.set_connected();
    if socket.send_packet(&Packet::connect(ns.name_cow(), socket.id().as_str())).is_err() {
        return;
    }
    tracing::debug!(sid = %socket.id(), ns = ns.name(), "socket connected");
    let handler = ns.handlers.on_connect.read().clone();
    if let Some(h) = handler {
        h.call(socket);
    }
}
