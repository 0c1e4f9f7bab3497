//! The engine: request routing, handshakes and the task that drives each session.

use std::future::poll_fn;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use shoal_engineio_proto::{ErrorCode, OutPacket, Packet, Sid, handshake};
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::config::EngineConfig;
use crate::cors;
use crate::forward::{self, Forwarder};
use crate::handler::{EngineHandler, Message};
use crate::request::{RequestInfo, query_param};
use crate::session::{CloseReason, CloseRequest, Session, TransportKind};
use crate::sessions::Sessions;
use crate::transport::polling;
use crate::transport::ws::{WsConn, WsEnd, WsIo};

/// An Engine.IO server: the sessions and the handler of the layer above. Share it with
/// an `Arc`; [`crate::EngineService`] routes HTTP requests to it.
pub struct Engine<H: EngineHandler> {
    pub(crate) config: Arc<EngineConfig>,
    pub(crate) handler: Arc<H>,
    pub(crate) sessions: Sessions<H::Data>,
    /// Shutting down: no new sessions.
    closing: std::sync::atomic::AtomicBool,
    /// Draining: no new sessions (HTTP 503 "Server draining"), the current ones go on.
    draining: std::sync::atomic::AtomicBool,
    /// Forwarding to other nodes, when a node directory is configured.
    forwarder: Option<Forwarder>,
}

impl<H: EngineHandler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.config).field("sessions", &self.sessions.len()).finish()
    }
}

pub(crate) type Resp = Response<ResponseBody>;

impl<H: EngineHandler> Engine<H> {
    /// A new engine.
    pub fn new(config: EngineConfig, handler: Arc<H>) -> Arc<Engine<H>> {
        let forwarder =
            config.node_directory.clone().map(|d| Forwarder::new(d, config.ping_interval, config.ping_timeout));
        Arc::new(Engine {
            config: Arc::new(config),
            handler,
            sessions: Sessions::new(),
            closing: std::sync::atomic::AtomicBool::new(false),
            draining: std::sync::atomic::AtomicBool::new(false),
            forwarder,
        })
    }

    /// The settings.
    pub fn config(&self) -> &Arc<EngineConfig> {
        &self.config
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// A session by id.
    pub fn session(&self, sid: &Sid) -> Option<Arc<Session<H::Data>>> {
        self.sessions.get(sid)
    }

    /// Every open session.
    pub fn sessions(&self) -> Vec<Arc<Session<H::Data>>> {
        self.sessions.all()
    }

    /// Refuses new sessions from now on (handshakes get HTTP 503), while existing ones
    /// keep being served: the first step of a graceful shutdown.
    pub fn stop_accepting_sessions(&self) {
        self.closing.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Starts draining: new sessions are refused with HTTP 503
    /// `{"code":4,"message":"Server draining"}` (clients retry, elsewhere behind a load
    /// balancer), while the current sessions keep being served until they end or are
    /// closed ([`Engine::close_all`]).
    pub fn drain(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Release);
        self.closing.store(true, std::sync::atomic::Ordering::Release);
    }

    /// True once [`Engine::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// False once draining or shutting down (new sessions are refused).
    pub fn is_accepting_sessions(&self) -> bool {
        !self.closing.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Requests forwarded to other nodes so far, and their connections (when forwarding
    /// is on).
    pub fn forwarding_stats(&self) -> Option<&shoal_proxy::PoolStats> {
        self.forwarder.as_ref().map(|f| f.pool().stats())
    }

    /// Closes every session with `reason` (server-initiated reasons flush queued packets
    /// first).
    pub fn close_all(&self, reason: CloseReason) {
        for s in self.sessions.all() {
            s.close(reason);
        }
    }

    /// True if `path` belongs to this engine.
    pub fn matches(&self, path: &str) -> bool {
        path.starts_with(self.config.path.as_str())
    }

    /// Handles one HTTP request for this engine's path.
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        let origin = req.headers().get(header::ORIGIN).cloned();
        let mut resp = self.route(req).await;
        // a forwarded request's answer already has the owner's CORS headers
        if let (Some(cors), Some(origin), false) = (&self.config.cors, origin, resp.body().is_proxied()) {
            cors::apply(cors, &origin, resp.headers_mut());
        }
        resp
    }

    async fn route<B>(self: &Arc<Self>, mut req: Request<B>) -> Resp
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        if req.method() == Method::OPTIONS
            && let Some(cors) = &self.config.cors
        {
            return cors::preflight(cors, req.headers());
        }
        let query = req.uri().query().unwrap_or("");
        let transport = match query_param(query, "transport").as_deref() {
            Some("polling") if self.config.polling => TransportKind::Polling,
            Some("websocket") if self.config.websocket => TransportKind::WebSocket,
            _ => return error(ErrorCode::TransportUnknown),
        };
        let is_upgrade = shoal_ws::is_upgrade_request(req.method(), req.headers());
        let sid = query_param(query, "sid");

        let Some(sid) = sid else {
            // handshake
            if req.method() != Method::GET {
                return error(ErrorCode::BadHandshakeMethod);
            }
            if (transport == TransportKind::WebSocket) != is_upgrade {
                return error(ErrorCode::BadRequest);
            }
            if query_param(query, "EIO").as_deref() != Some(shoal_engineio_proto::PROTOCOL_VERSION) {
                return error(ErrorCode::UnsupportedProtocolVersion);
            }
            return self.handshake(req, transport).await;
        };

        let sid = sid.parse::<Sid>().ok();
        if let (Some(forwarder), Some(sid)) = (&self.forwarder, sid)
            && sid.node() != self.config.node_id
            && !forward::was_forwarded(&req)
        {
            // another node's session: hand the request to its owner (once, never again)
            return forwarder.forward(req, sid.node()).await;
        }
        let Some(session) = sid.and_then(|sid| self.sessions.get(&sid)) else {
            return error(ErrorCode::UnknownSid);
        };
        match transport {
            TransportKind::WebSocket => {
                if !is_upgrade {
                    return error(ErrorCode::BadRequest);
                }
                self.upgrade(&mut req, session)
            }
            TransportKind::Polling => {
                if is_upgrade || session.transport() != TransportKind::Polling {
                    return error(ErrorCode::BadRequest);
                }
                match *req.method() {
                    Method::GET => polling::get(self, session).await,
                    Method::POST => polling::post(self, session, req).await,
                    _ => status(StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
        }
    }

    async fn handshake<B>(self: &Arc<Self>, mut req: Request<B>, transport: TransportKind) -> Resp {
        if self.closing.load(std::sync::atomic::Ordering::Acquire) {
            let why = if self.is_draining() { "Server draining" } else { "Server shutting down" };
            return unavailable(why);
        }
        if self.sessions.len() >= self.config.max_sessions {
            tracing::warn!(limit = self.config.max_sessions, "session limit reached, refusing handshake");
            return unavailable("Too many sessions");
        }
        let on_upgrade = (transport == TransportKind::WebSocket).then(|| hyper::upgrade::on(&mut req));
        let (parts, _body) = req.into_parts();
        let info = Arc::new(RequestInfo::from_parts(&parts));
        if let Some(allow) = &self.config.allow_request
            && let Err(message) = allow(info.clone()).await
        {
            return error_with(ErrorCode::Forbidden, &message);
        }
        let sid = Sid::generate(self.config.node_id);
        let session = Arc::new(Session::new(sid, info, self.config.clone(), transport, H::Data::default()));
        let upgrades: &[&str] =
            if transport == TransportKind::Polling && self.config.websocket && self.config.allow_upgrades {
                &["websocket"]
            } else {
                &[]
            };
        let open = handshake::open_packet(
            &sid,
            upgrades,
            self.config.ping_interval.as_millis() as u64,
            self.config.ping_timeout.as_millis() as u64,
            self.config.max_payload as u64,
        );
        let cookie = self.config.cookie.as_ref().map(|c| c.header_value(sid.as_str()));

        match (transport, on_upgrade) {
            (TransportKind::WebSocket, Some(on_upgrade)) => {
                let (mut resp, deflate) = match ws_accept(&self.config, &parts.method, &parts.headers) {
                    Ok(r) => r,
                    Err(resp) => return *resp,
                };
                if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    resp.headers_mut().insert(header::SET_COOKIE, c);
                }
                self.sessions.insert(session.clone());
                self.handler.on_open(&session);
                let engine = self.clone();
                tokio::spawn(async move {
                    let conn = match upgraded_io(on_upgrade).await {
                        Some((io, leftover)) => {
                            let mut conn = WsConn::new(io, leftover, engine.config.max_payload, deflate);
                            conn.push_text(open.as_bytes());
                            Some(conn)
                        }
                        None => {
                            session.close(CloseReason::TransportError);
                            None
                        }
                    };
                    // the session gets a task of its own, sized for it alone
                    tokio::spawn(run_session(engine, session, conn));
                });
                resp
            }
            _ => {
                self.sessions.insert(session.clone());
                self.handler.on_open(&session);
                tokio::spawn(run_session(self.clone(), session, None));
                let mut resp = polling::payload_response(Bytes::from(open));
                if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    resp.headers_mut().insert(header::SET_COOKIE, c);
                }
                resp
            }
        }
    }

    fn upgrade<B>(self: &Arc<Self>, req: &mut Request<B>, session: Arc<Session<H::Data>>) -> Resp {
        if !self.config.allow_upgrades {
            return error(ErrorCode::BadRequest);
        }
        let (resp, deflate) = match ws_accept(&self.config, req.method(), req.headers()) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        let on_upgrade = hyper::upgrade::on(req);
        let eligible = {
            let mut st = session.state.lock();
            let ok = st.transport == TransportKind::Polling && !st.upgrade_candidate && st.close.is_none();
            if ok {
                st.upgrade_candidate = true;
            }
            ok
        };
        if !eligible {
            // As Node: complete the WebSocket handshake, then close it at once; the
            // session keeps its current transport.
            let max = self.config.max_payload;
            tokio::spawn(async move {
                if let Some((io, leftover)) = upgraded_io(on_upgrade).await {
                    WsConn::new(io, leftover, max, None).close(1000).await;
                }
            });
            return resp;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let conn = match upgraded_io(on_upgrade).await {
                Some((io, leftover)) => WsConn::new(io, leftover, engine.config.max_payload, deflate),
                None => {
                    session.state.lock().upgrade_candidate = false;
                    return;
                }
            };
            run_upgrade_candidate(engine, session, conn).await;
        });
        resp
    }

    pub(crate) fn on_packet(&self, session: &Arc<Session<H::Data>>, packet: Packet) -> ControlFlow<()> {
        match packet {
            Packet::Message(text) => self.handler.on_message(session, Message::Text(text)),
            Packet::Binary(data) => self.handler.on_message(session, Message::Binary(data)),
            Packet::Pong(_) => {
                session.state.lock().pong = true;
                session.task.wake();
            }
            Packet::Close => {
                session.request_close(CloseRequest { reason: CloseReason::TransportClose, by_client: true });
                return ControlFlow::Break(());
            }
            Packet::Ping(_) => {
                // v4: only the server pings (a client ping is "invalid heartbeat direction")
                session.close(CloseReason::TransportError);
                return ControlFlow::Break(());
            }
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
            _ => {}
        }
        if session.is_closed() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

/// The negotiated permessage-deflate of a connection.
type Deflate = (shoal_ws::DeflateConfig, shoal_ws::Inflater);

/// Validates a WebSocket upgrade and builds the 101 answer.
fn ws_accept(
    config: &EngineConfig,
    method: &Method,
    headers: &http::HeaderMap,
) -> Result<(Resp, Option<Deflate>), Box<Resp>> {
    let key = match shoal_ws::validate_upgrade(method, headers) {
        Ok(k) => k,
        Err(shoal_ws::HandshakeError::UnsupportedVersion) => {
            let mut r = status(StatusCode::UPGRADE_REQUIRED);
            r.headers_mut().insert("sec-websocket-version", HeaderValue::from_static("13"));
            return Err(Box::new(r));
        }
        Err(_) => return Err(Box::new(error(ErrorCode::BadRequest))),
    };
    let mut resp = Response::new(ResponseBody::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(key.as_str()) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    let mut deflate = None;
    if let Some(cfg) = &config.per_message_deflate
        && let Some(neg) = shoal_ws::negotiate_deflate(headers, cfg)
        && let Ok(v) = HeaderValue::from_str(&neg.response_header)
    {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
        deflate = Some((*cfg, shoal_ws::Inflater::new(&neg)));
    }
    Ok((resp, deflate))
}

/// Waits for hyper to hand over the upgraded connection. A plain TCP stream is unwrapped
/// from hyper's box so reads and writes go straight to the socket.
async fn upgraded_io(on_upgrade: hyper::upgrade::OnUpgrade) -> Option<(WsIo, Bytes)> {
    let upgraded = match on_upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(cause = %e, "websocket upgrade failed");
            return None;
        }
    };
    match upgraded.downcast::<hyper_util::rt::TokioIo<tokio::net::TcpStream>>() {
        // `read_buf` is a view into hyper's (8 KiB or more) read buffer: copy what is left
        // so the connection does not keep that buffer alive for its whole life
        Ok(parts) => {
            let leftover =
                if parts.read_buf.is_empty() { Bytes::new() } else { Bytes::copy_from_slice(&parts.read_buf) };
            Some((WsIo::Tcp(parts.io.into_inner()), leftover))
        }
        Err(upgraded) => Some((WsIo::Other(Box::pin(hyper_util::rt::TokioIo::new(upgraded))), Bytes::new())),
    }
}

/// The candidate connection of an upgrade: answers the probe, waits for `5`, then hands
/// itself to the session task.
async fn run_upgrade_candidate<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut conn: WsConn,
) {
    let probe = async {
        match conn.next_message().await {
            Ok(shoal_ws::Message::Text(t)) if &t[..] == b"2probe" => {}
            _ => return false,
        }
        conn.push_text(b"3probe");
        if conn.flush().await.is_err() {
            return false;
        }
        session.state.lock().upgrading = true;
        session.writer.wake();
        matches!(conn.next_message().await, Ok(shoal_ws::Message::Text(t)) if &t[..] == b"5")
    };
    let ok = tokio::time::timeout(engine.config.upgrade_timeout, probe).await.unwrap_or(false);
    let rejected = {
        let mut st = session.state.lock();
        if ok && st.close.is_none() {
            st.transport = TransportKind::WebSocket;
            st.upgrading = false;
            st.upgrade_io = Some(Box::new(conn));
            None
        } else {
            st.upgrade_candidate = false;
            st.upgrading = false;
            Some(conn)
        }
    };
    session.task.wake();
    session.writer.wake();
    match rejected {
        None => tracing::debug!(sid = %session.id(), "upgraded to websocket"),
        Some(conn) => {
            tracing::debug!(sid = %session.id(), "upgrade failed");
            conn.close(1000).await;
        }
    }
}

/// How long a graceful close may wait to deliver what is queued (and, when polling, for
/// the poll that carries the close packet) before the session ends anyway.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(3);

/// Reading from a WebSocket pauses while more than this is waiting to be written to it.
const PAUSE_READING_ABOVE: usize = 64 * 1024;

/// The task that drives a session from handshake to close: heartbeats, the upgrade
/// hand-over, and (once on WebSocket) all reads and writes.
pub(crate) async fn run_session<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut ws: Option<WsConn>,
) {
    let config = engine.config.clone();
    // Heartbeat: a ping `ping_interval` after the open packet or the last pong; the
    // session is closed if no pong comes within `ping_timeout` of the ping.
    let mut waiting_pong = false;
    let sleep = tokio::time::sleep_until(Instant::now() + config.ping_interval);
    tokio::pin!(sleep);
    let mut closing_deadline_set = false;
    let mut peer_close: Option<u16> = None;
    let mut ws_end: Option<WsEnd> = None;

    let reason = poll_fn(|cx| {
        session.task.register(cx.waker());
        let mut pong_now = false;
        for _pass in 0..2 {
            // A. control events
            {
                let mut st = session.state.lock();
                if std::mem::take(&mut st.pong) {
                    pong_now = true;
                    st.pong_deadline = None;
                }
                if ws.is_none()
                    && let Some(conn) = st.upgrade_io.take()
                {
                    ws = Some(*conn);
                }
                if let Some(req) = st.close {
                    // graceful: everything queued is written, and when polling, the close
                    // packet itself went out in a poll of its own
                    let flushed = st.queue.is_empty()
                        && match ws.as_ref() {
                            Some(w) => !w.has_output(),
                            None => st.close_delivered,
                        };
                    if !req.reason.is_graceful() || flushed {
                        return Poll::Ready(req.reason);
                    }
                    if !closing_deadline_set {
                        closing_deadline_set = true;
                        sleep.as_mut().reset(Instant::now() + config.ping_timeout.min(CLOSE_LINGER));
                    }
                }
            }
            if std::mem::take(&mut pong_now) && waiting_pong {
                waiting_pong = false;
                sleep.as_mut().reset(Instant::now() + config.ping_interval);
            }

            // B. timers
            if sleep.as_mut().poll(cx).is_ready() {
                if closing_deadline_set {
                    // a graceful close could not flush in time
                    let st = session.state.lock();
                    return Poll::Ready(st.close.map_or(CloseReason::ForcedClose, |c| c.reason));
                }
                if waiting_pong {
                    return Poll::Ready(CloseReason::PingTimeout);
                }
                waiting_pong = true;
                // measured from when the ping was due, not from when the timer ran, so
                // the session ends exactly `ping_interval + ping_timeout` after open/pong
                let deadline = sleep.deadline() + config.ping_timeout;
                session.state.lock().pong_deadline = Some(deadline);
                sleep.as_mut().reset(deadline);
                let _ = sleep.as_mut().poll(cx);
                let _ = session.send(OutPacket::PING);
            }

            // C. the WebSocket, once there is one
            let Some(conn) = ws.as_mut() else { break };
            // While this task runs, what its own handlers send needs no wake-up (it is
            // written below); the waker is registered again once the queue is drained.
            drop(session.writer.take());
            let mut pings: Vec<Bytes> = Vec::new();
            let mut end = None;
            // Read only while what we owe the client is small (a client that sends but
            // does not read is slowed down by TCP instead of growing our buffers) and the
            // layer above accepts more work.
            let may_read = conn.output_len() <= PAUSE_READING_ABOVE && engine.handler.accepts_messages(&session);
            let read = if !may_read {
                Poll::Pending
            } else {
                conn.poll_read(cx, &mut |msg| match msg {
                    shoal_ws::Message::Text(t) => match Packet::decode_text(t) {
                        Ok(Packet::Pong(_)) => {
                            pong_now = true;
                            ControlFlow::Continue(())
                        }
                        Ok(p) => engine.on_packet(&session, p),
                        Err(e) => {
                            tracing::debug!(sid = %session.id(), cause = %e, "invalid packet");
                            end = Some(CloseReason::ParseError);
                            ControlFlow::Break(())
                        }
                    },
                    shoal_ws::Message::Binary(b) => engine.on_packet(&session, Packet::Binary(b)),
                    shoal_ws::Message::Ping(p) => {
                        pings.push(p);
                        ControlFlow::Continue(())
                    }
                    shoal_ws::Message::Close(frame) => {
                        peer_close = Some(frame.map_or(1000, |f| f.code));
                        end = Some(CloseReason::TransportClose);
                        ControlFlow::Break(())
                    }
                    _ => ControlFlow::Continue(()),
                })
            };
            for p in pings {
                conn.push_pong(&p);
            }
            if let Some(r) = end {
                return Poll::Ready(r);
            }
            if let Poll::Ready(Err(e)) = read {
                if let WsEnd::Io(err) = &e {
                    tracing::debug!(sid = %session.id(), cause = %err, "websocket read failed");
                }
                let r = match e {
                    WsEnd::Eof => CloseReason::TransportClose,
                    WsEnd::Io(_) | WsEnd::Protocol(_) => CloseReason::TransportError,
                };
                ws_end = Some(e);
                return Poll::Ready(r);
            }
            if pong_now && waiting_pong {
                pong_now = false;
                waiting_pong = false;
                session.state.lock().pong_deadline = None;
                sleep.as_mut().reset(Instant::now() + config.ping_interval);
                let _ = sleep.as_mut().poll(cx);
            }
            // write everything queued, in batches
            loop {
                let written = if conn.has_output() {
                    conn.poll_write(cx)
                } else {
                    let queue = Session::<H::Data>::take_queue(&mut session.state.lock());
                    if queue.is_empty() {
                        break;
                    }
                    conn.write_packets(cx, queue)
                };
                match written {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        ws_end = Some(WsEnd::Io(e));
                        return Poll::Ready(CloseReason::TransportError);
                    }
                    Poll::Pending => break,
                }
            }
            session.writer.register(cx.waker());
            if !conn.has_output() && !session.state.lock().queue.is_empty() {
                // queued between the drain and the registration: go round again
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    })
    .await;

    finish(&engine, &session, reason);
    if let Some(conn) = ws {
        let code = match (ws_end, peer_close) {
            (Some(WsEnd::Eof | WsEnd::Io(_)), _) => None,
            (Some(WsEnd::Protocol(code)), _) => Some(code),
            (None, Some(code)) => Some(if code == 1005 { 1000 } else { code }),
            (None, None) => Some(1000),
        };
        // The closing handshake runs as its own short task, so that its state is not
        // part of every session's task.
        if let Some(code) = code {
            tokio::spawn(conn.close(code));
        }
    }
}

/// Marks the session closed, removes it and tells the layer above.
fn finish<H: EngineHandler>(engine: &Engine<H>, session: &Arc<Session<H::Data>>, reason: CloseReason) {
    session.mark_closed(reason);
    engine.sessions.remove(&session.id());
    tracing::debug!(sid = %session.id(), %reason, "session closed");
    engine.handler.on_close(session, reason);
}

/// An HTTP response with the Engine.IO error JSON.
pub(crate) fn error(code: ErrorCode) -> Resp {
    error_with(code, code.message())
}

/// An HTTP response with the Engine.IO error JSON and a custom message.
pub(crate) fn error_with(code: ErrorCode, message: &str) -> Resp {
    let mut r = Response::new(ResponseBody::full(Bytes::from(code.json_with_message(message))));
    *r.status_mut() = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A handshake this node does not take now (shutting down, draining, full): `503` with
/// the JSON error body of a refused handshake (code 4), so that a client, a balancer or a
/// person reading the logs sees why; the official client retries, elsewhere behind a
/// balancer.
fn unavailable(message: &str) -> Resp {
    let mut r = error_with(ErrorCode::Forbidden, message);
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r
}

/// An empty response with `status`.
pub(crate) fn status(status: StatusCode) -> Resp {
    let mut r = Response::new(ResponseBody::empty());
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[derive(Debug)]
    struct Nop;
    impl EngineHandler for Nop {
        type Data = ();
        fn on_open(&self, _: &Arc<Session<()>>) {}
        fn on_message(&self, _: &Arc<Session<()>>, _: Message) {}
        fn on_close(&self, _: &Arc<Session<()>>, _: CloseReason) {}
    }

    /// Guards the memory budget of an idle WebSocket session (see docs/benchmarks.md):
    /// these structures exist once per connected client.
    #[test]
    fn per_session_structures_stay_small() {
        let engine = Engine::new(EngineConfig::default(), Arc::new(Nop));
        let parts = http::Request::new(()).into_parts().0;
        let info = Arc::new(RequestInfo::from_parts(&parts));
        let sid = Sid::generate(engine.config.node_id);
        let session = Arc::new(Session::new(sid, info, engine.config.clone(), TransportKind::WebSocket, ()));
        let fut = run_session(engine.clone(), session.clone(), None);
        assert!(std::mem::size_of_val(&fut) <= 1024, "session task: {}", std::mem::size_of_val(&fut));
        assert!(std::mem::size_of::<WsConn>() <= 360, "WsConn: {}", std::mem::size_of::<WsConn>());
        assert!(std::mem::size_of::<Session<()>>() <= 200, "Session: {}", std::mem::size_of::<Session<()>>());
        assert!(std::mem::size_of::<RequestInfo>() <= 128, "RequestInfo: {}", std::mem::size_of::<RequestInfo>());
    }
}
