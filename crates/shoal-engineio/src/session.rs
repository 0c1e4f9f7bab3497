//! A session: one Engine.IO client, whatever its transport.
//!
//! The session owns a bounded queue of [`OutPacket`]s. Whoever sends (a handler, a
//! broadcast on another task) pushes under a short lock and wakes the writer; the writer
//! is the held long-polling GET or the WebSocket driver of the session task, which takes
//! the whole queue at once and writes it in one batch.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use shoal_engineio_proto::{OutPacket, Sid};

use crate::config::EngineConfig;
use crate::request::RequestInfo;
use crate::transport::ws::WsConn;

/// Why a session ended. The Socket.IO layer reports the same names as Node
/// (see [`CloseReason::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the connection, sent a close packet, or aborted a poll.
    TransportClose,
    /// The connection failed, or the client broke the transport's rules (a second
    /// concurrent poll, a WebSocket protocol violation, an oversized message).
    TransportError,
    /// No pong within `ping_timeout` of a ping.
    PingTimeout,
    /// The client sent a packet that does not parse.
    ParseError,
    /// The server closed the session.
    ForcedClose,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client did not read fast enough and its send queue reached its limit.
    SlowConsumer,
}

impl CloseReason {
    /// The reason as Node names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ServerShuttingDown => "server shutting down",
            Self::SlowConsumer => "slow consumer",
        }
    }

    /// Graceful closes flush what is queued before closing.
    pub(crate) fn is_graceful(self) -> bool {
        matches!(self, Self::ForcedClose | Self::ServerShuttingDown)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// `polling` or `websocket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }
}

/// Why a packet could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closed or closing.
    #[error("session closed")]
    Closed,
    /// The queue was full: the session is being closed with reason "slow consumer".
    /// Raise `max_buffered_packets` / `max_buffered_bytes` if clients are expected to
    /// absorb larger bursts.
    #[error("send queue full (slow consumer)")]
    SlowConsumer,
}

/// A packet waiting in a session's queue.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) packet: OutPacket,
    /// May be compressed (WebSocket permessage-deflate, when negotiated).
    pub(crate) compress: bool,
}

/// How to send packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// Drop them (without error) if the transport cannot take them right now.
    pub volatile: bool,
    /// Allow compression (default true).
    pub compress: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions { volatile: false, compress: true }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct CloseRequest {
    pub(crate) reason: CloseReason,
    /// The client asked to close (a pending poll gets a noop instead of a close packet).
    pub(crate) by_client: bool,
}

pub(crate) struct State {
    pub(crate) queue: VecDeque<Queued>,
    pub(crate) queued_bytes: usize,
    pub(crate) transport: TransportKind,
    /// A WebSocket candidate exists for this polling session.
    pub(crate) upgrade_candidate: bool,
    /// The candidate answered the probe: held polls are released with a noop.
    pub(crate) upgrading: bool,
    /// The upgraded connection, handed from the candidate to the session task.
    pub(crate) upgrade_io: Option<Box<WsConn>>,
    pub(crate) get_pending: bool,
    pub(crate) post_pending: bool,
    /// A pong arrived by polling and the session task has not seen it yet.
    pub(crate) pong: bool,
    pub(crate) close: Option<CloseRequest>,
    /// A held poll carried the close packet of a graceful close.
    pub(crate) close_delivered: bool,
    /// When a ping is unanswered: the instant the session times out.
    pub(crate) pong_deadline: Option<tokio::time::Instant>,
    /// The session task has finished.
    pub(crate) closed: bool,
}

/// One Engine.IO session. `D` is the data of the layer above (Socket.IO's client state).
pub struct Session<D> {
    sid: Sid,
    request: Arc<RequestInfo>,
    config: Arc<EngineConfig>,
    pub(crate) state: Mutex<State>,
    /// Woken when the queue gets data or the state changes: the writer waits on it.
    pub(crate) writer: AtomicWaker,
    /// Woken on control events (close, pong, upgrade): the session task waits on it.
    pub(crate) task: AtomicWaker,
    closing: AtomicBool,
    data: D,
}

impl<D> fmt::Debug for Session<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("sid", &self.sid).finish_non_exhaustive()
    }
}

impl<D> Session<D> {
    pub(crate) fn new(
        sid: Sid,
        request: Arc<RequestInfo>,
        config: Arc<EngineConfig>,
        transport: TransportKind,
        data: D,
    ) -> Session<D> {
        Session {
            sid,
            request,
            config,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued_bytes: 0,
                transport,
                upgrade_candidate: false,
                upgrading: false,
                upgrade_io: None,
                get_pending: false,
                post_pending: false,
                pong: false,
                close: None,
                close_delivered: false,
                pong_deadline: None,
                closed: false,
            }),
            writer: AtomicWaker::new(),
            task: AtomicWaker::new(),
            closing: AtomicBool::new(false),
            data,
        }
    }

    /// The session id.
    pub fn id(&self) -> Sid {
        self.sid
    }

    /// The request that opened the session.
    pub fn request(&self) -> &Arc<RequestInfo> {
        &self.request
    }

    /// The data of the layer above.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The current transport.
    pub fn transport(&self) -> TransportKind {
        self.state.lock().transport
    }

    /// True once a close was requested or the session ended.
    pub fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Number of packets waiting to be written.
    pub fn queued(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Queues one packet.
    ///
    /// # Errors
    /// [`SendError::Closed`] if the session is closing; [`SendError::SlowConsumer`] if the
    /// queue is full (the session is then closed).
    pub fn send(&self, packet: OutPacket) -> Result<(), SendError> {
        self.send_many(std::slice::from_ref(&packet))
    }

    /// Queues several packets as one group: they are written in order, with nothing in
    /// between (a Socket.IO packet and its binary attachments). The `Bytes` are shared,
    /// not copied.
    ///
    /// # Errors
    /// As [`Session::send`].
    pub fn send_many(&self, packets: &[OutPacket]) -> Result<(), SendError> {
        self.send_with(packets, SendOptions::default()).map(|_| ())
    }

    /// Queues packets only if the transport can write them now (nothing is waiting in the
    /// queue and, when polling, a poll is held). Returns whether they were queued; a
    /// dropped volatile packet is not an error.
    ///
    /// # Errors
    /// [`SendError::Closed`] if the session is closing.
    pub fn send_volatile(&self, packets: &[OutPacket]) -> Result<bool, SendError> {
        self.send_with(packets, SendOptions { volatile: true, compress: true })
    }

    /// Queues packets as one group, with options. Returns whether they were queued
    /// (false only for a volatile send the transport could not take).
    ///
    /// # Errors
    /// As [`Session::send`] (a volatile send never fails as a slow consumer).
    pub fn send_with(&self, packets: &[OutPacket], opts: SendOptions) -> Result<bool, SendError> {
        let bytes: usize = packets.iter().map(OutPacket::len).sum();
        let mut st = self.state.lock();
        if st.close.is_some() || st.closed {
            return Err(SendError::Closed);
        }
        if opts.volatile {
            let writable = st.queue.is_empty()
                && match st.transport {
                    TransportKind::Polling => st.get_pending && !st.upgrading,
                    TransportKind::WebSocket => true,
                };
            if !writable {
                return Ok(false);
            }
        } else if st.queue.len() + packets.len() > self.config.max_buffered_packets
            || st.queued_bytes + bytes > self.config.max_buffered_bytes
        {
            drop(st);
            tracing::debug!(sid = %self.sid, "send queue full, closing slow consumer");
            self.close(CloseReason::SlowConsumer);
            return Err(SendError::SlowConsumer);
        }
        let was_empty = st.queue.is_empty();
        st.queue.extend(packets.iter().map(|p| Queued { packet: p.clone(), compress: opts.compress }));
        st.queued_bytes += bytes;
        drop(st);
        if was_empty {
            self.writer.wake();
        }
        Ok(true)
    }

    /// Closes the session. Server-initiated closes ([`CloseReason::ForcedClose`],
    /// [`CloseReason::ServerShuttingDown`]) first flush what is queued; the others drop it.
    pub fn close(&self, reason: CloseReason) {
        self.request_close(CloseRequest { reason, by_client: false });
    }

    pub(crate) fn request_close(&self, req: CloseRequest) {
        {
            let mut st = self.state.lock();
            if st.close.is_some() || st.closed {
                return;
            }
            st.close = Some(req);
            if !req.reason.is_graceful() {
                st.queue = VecDeque::new();
                st.queued_bytes = 0;
            }
        }
        self.closing.store(true, Ordering::Release);
        self.task.wake();
        self.writer.wake();
    }

    /// True (and the session is closed) if a ping went unanswered past its deadline, even
    /// if the timer has not fired yet: polling requests arriving at that instant see a
    /// closed session, exactly as the protocol requires.
    pub(crate) fn check_ping_timeout(&self) -> bool {
        let expired = self.state.lock().pong_deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if expired {
            self.close(CloseReason::PingTimeout);
        }
        expired
    }

    /// Wakes the session's task so that it reads again after
    /// [`crate::EngineHandler::accepts_messages`] returned `false`.
    pub fn resume_reading(&self) {
        self.task.wake();
    }

    /// Records the end of the session (called once, by the session task).
    pub(crate) fn mark_closed(&self, reason: CloseReason) {
        {
            let mut st = self.state.lock();
            st.closed = true;
            if st.close.is_none() {
                st.close = Some(CloseRequest { reason, by_client: false });
            }
            st.queue = VecDeque::new();
            st.queued_bytes = 0;
            st.upgrade_io = None;
        }
        self.closing.store(true, Ordering::Release);
        self.writer.wake();
    }

    /// Takes every queued packet (the writer's side).
    pub(crate) fn take_queue(st: &mut State) -> VecDeque<Queued> {
        st.queued_bytes = 0;
        std::mem::take(&mut st.queue)
    }
}
