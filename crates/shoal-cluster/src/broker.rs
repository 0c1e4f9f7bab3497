//! The embedded pub/sub broker the primary runs on a loopback port.
//!
//! It implements the part of Redis pub/sub the adapters use — subscribe to channels and
//! glob patterns, publish, count a channel's subscribers — over the framing of
//! [`crate::frame`], plus [`Frame::Register`], by which workers tell the primary where
//! they listen.
//!
//! Each connection has a reader task (requests, in order) and a writer task fed by an
//! unbounded queue whose length and bytes are counted: a subscriber that lets more than
//! [`BrokerConfig::max_queued_bytes`] or [`BrokerConfig::max_queued_messages`] pile up
//! is disconnected (as Redis does with `client-output-buffer-limit pubsub`), so one slow
//! worker never makes the primary's memory grow without bound. Its driver reconnects and
//! subscribes again; the messages it missed are lost, as with Redis.
//!
//! Publishes are fanned out under one lock, so every subscriber sees the messages of one
//! publisher in the order they were published.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use shoal::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::AuthToken;
use crate::errors::{ClusterError, FrameError};
use crate::frame::{self, Frame, SubKind};
use crate::glob;

/// Limits of the embedded broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Largest frame accepted, in bytes. Default [`frame::DEFAULT_MAX_FRAME`] (64 MiB).
    pub max_frame: usize,
    /// Bytes queued for one connection before it is disconnected as a slow
    /// subscriber. Default 64 MiB.
    pub max_queued_bytes: usize,
    /// Frames queued for one connection before it is disconnected as a slow
    /// subscriber. Default 262 144.
    pub max_queued_messages: usize,
    /// Most connections at once (each worker uses one or two). Default 1024.
    pub max_connections: usize,
    /// When set, every connection must open with a [`Frame::Hello`] carrying this
    /// token, or it is closed. Default none (cluster mode sets a random one).
    pub auth_token: Option<AuthToken>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_frame: frame::DEFAULT_MAX_FRAME,
            max_queued_bytes: 64 * 1024 * 1024,
            max_queued_messages: 262_144,
            max_connections: 1024,
            auth_token: None,
        }
    }
}

impl BrokerConfig {
    /// Sets [`BrokerConfig::max_frame`].
    #[must_use]
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets [`BrokerConfig::max_queued_bytes`].
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets [`BrokerConfig::max_queued_messages`].
    #[must_use]
    pub fn max_queued_messages(mut self, n: usize) -> Self {
        self.max_queued_messages = n;
        self
    }

    /// Sets [`BrokerConfig::max_connections`].
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`BrokerConfig::auth_token`].
    #[must_use]
    pub fn auth_token(mut self, token: Option<AuthToken>) -> Self {
        self.auth_token = token;
        self
    }

    fn validate(&self) -> Result<(), ClusterError> {
        if self.max_frame < 64 || self.max_queued_bytes == 0 || self.max_queued_messages == 0 {
            return Err(ClusterError::Config("broker limits must be positive (max_frame at least 64)".into()));
        }
        if self.max_connections == 0 {
            return Err(ClusterError::Config("broker max_connections must be positive".into()));
        }
        Ok(())
    }
}

/// A worker's announcement: it serves on `addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The worker's index.
    pub index: u32,
    /// Its process id.
    pub pid: u32,
    /// Its node id (the first 4 characters of its sids).
    pub node: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Counters of the broker.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Connections open now.
    pub connections: AtomicU64,
    /// Messages published.
    pub published: AtomicU64,
    /// Message deliveries queued (one per receiving subscription).
    pub delivered: AtomicU64,
    /// Connections closed because their queue was full.
    pub slow_disconnects: AtomicU64,
    /// Connections closed because of a malformed frame.
    pub protocol_errors: AtomicU64,
}

/// The sending side of one connection.
struct Outbox {
    tx: mpsc::UnboundedSender<Bytes>,
    bytes: AtomicUsize,
    frames: AtomicUsize,
    kill: watch::Sender<bool>,
}

struct ConnEntry {
    out: Arc<Outbox>,
    subs: HashSet<(SubKind, String)>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    conns: HashMap<u64, ConnEntry>,
    channels: HashMap<String, HashSet<u64>>,
    patterns: HashMap<String, HashSet<u64>>,
}

impl State {
    fn table(&mut self, kind: SubKind) -> &mut HashMap<String, HashSet<u64>> {
        match kind {
            SubKind::Channel => &mut self.channels,
            SubKind::Pattern => &mut self.patterns,
        }
    }

    fn subscribe(&mut self, conn: u64, kind: SubKind, name: String) {
        let Some(entry) = self.conns.get_mut(&conn) else { return };
        if entry.subs.insert((kind, name.clone())) {
            self.table(kind).entry(name).or_default().insert(conn);
        }
    }

    fn unsubscribe(&mut self, conn: u64, kind: SubKind, name: &str) {
        let Some(entry) = self.conns.get_mut(&conn) else { return };
        if entry.subs.remove(&(kind, name.to_owned())) {
            let table = self.table(kind);
            if let Some(set) = table.get_mut(name) {
                set.remove(&conn);
                if set.is_empty() {
                    table.remove(name);
                }
            }
        }
    }

    fn remove_conn(&mut self, conn: u64) -> Option<Arc<Outbox>> {
        let entry = self.conns.remove(&conn)?;
        for (kind, name) in entry.subs {
            let table = self.table(kind);
            if let Some(set) = table.get_mut(&name) {
                set.remove(&conn);
                if set.is_empty() {
                    table.remove(&name);
                }
            }
        }
        Some(entry.out)
    }
}

struct Shared {
    config: BrokerConfig,
    state: Mutex<State>,
    stats: BrokerStats,
    registrations: mpsc::UnboundedSender<Registration>,
}

impl Shared {
    /// Queues `frame` for `out`; false if that overflowed its limits (the caller then
    /// disconnects it).
    fn push(&self, out: &Outbox, frame: Bytes) -> bool {
        let len = frame.len();
        let bytes = out.bytes.fetch_add(len, Ordering::AcqRel) + len;
        let frames = out.frames.fetch_add(1, Ordering::AcqRel) + 1;
        if bytes > self.config.max_queued_bytes || frames > self.config.max_queued_messages {
            return false;
        }
        out.tx.send(frame).is_ok()
    }

    /// Fans a message out; returns the number of receiving subscriptions.
    fn publish(&self, channel: &str, payload: &[u8]) -> u64 {
        let msg = frame::message_bytes(channel, payload);
        let mut state = self.state.lock();
        let mut targets: Vec<u64> = Vec::new();
        if let Some(set) = state.channels.get(channel) {
            targets.extend(set.iter().copied());
        }
        for (pattern, set) in &state.patterns {
            if glob::matches(pattern, channel) {
                targets.extend(set.iter().copied());
            }
        }
        let mut slow = Vec::new();
        let mut count = 0;
        for id in targets {
            let Some(entry) = state.conns.get(&id) else { continue };
            if self.push(&entry.out, msg.clone()) {
                count += 1;
            } else {
                slow.push(id);
            }
        }
        for id in slow {
            if let Some(out) = state.remove_conn(id) {
                self.stats.slow_disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    conn = id,
                    queued_bytes = out.bytes.load(Ordering::Relaxed),
                    "cluster broker: slow subscriber disconnected (its queue is full)"
                );
                let _ = out.kill.send(true);
            }
        }
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        self.stats.delivered.fetch_add(count, Ordering::Relaxed);
        count
    }
}

/// Publishes from the process that runs the broker, without a connection.
#[derive(Clone)]
pub struct BrokerPublisher(Arc<Shared>);

impl std::fmt::Debug for BrokerPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerPublisher")
    }
}

impl BrokerPublisher {
    /// Publishes `payload` on `channel`; returns the number of receiving subscriptions.
    pub fn publish(&self, channel: &str, payload: &[u8]) -> u64 {
        self.0.publish(channel, payload)
    }
}

/// The embedded broker: a loopback TCP server. Stops when [`Broker::shutdown`] is
/// called or the value is dropped.
pub struct Broker {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    registrations: Option<mpsc::UnboundedReceiver<Registration>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Broker {
    /// Binds `addr` (use `127.0.0.1:0`: workers learn the port from the environment)
    /// and starts serving.
    ///
    /// # Errors
    /// [`ClusterError::Config`] for invalid limits, [`ClusterError::Bind`] when the
    /// address cannot be bound.
    pub async fn bind(addr: SocketAddr, config: BrokerConfig) -> Result<Broker, ClusterError> {
        config.validate()?;
        let listener =
            TcpListener::bind(addr).await.map_err(|source| ClusterError::Bind { addr: addr.to_string(), source })?;
        let addr = listener.local_addr().map_err(|source| ClusterError::Io { what: "broker address", source })?;
        let (reg_tx, reg_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            stats: BrokerStats::default(),
            registrations: reg_tx,
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        tracing::debug!(%addr, "cluster broker listening");
        Ok(Broker { addr, shared, stop, task: Some(task), registrations: Some(reg_rx) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The workers' registrations, in arrival order (once: later calls return `None`).
    pub fn take_registrations(&mut self) -> Option<mpsc::UnboundedReceiver<Registration>> {
        self.registrations.take()
    }

    /// The counters.
    pub fn stats(&self) -> &BrokerStats {
        &self.shared.stats
    }

    /// A handle that publishes from the broker's own process (cheap to clone).
    pub fn publisher(&self) -> BrokerPublisher {
        BrokerPublisher(self.shared.clone())
    }

    /// Stops accepting, closes every connection and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = crate::raised(&mut stop) => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and the like: back off a little instead of spinning
                tracing::warn!(cause = %e, "cluster broker: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // counted here, not in the task, so that a burst of connections cannot pass the cap
        if shared.stats.connections.fetch_add(1, Ordering::AcqRel) as usize >= shared.config.max_connections {
            shared.stats.connections.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(%peer, "cluster broker: too many connections, refused");
            continue;
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, shared.clone(), stop.clone()));
    }
    // close every connection
    let conns: Vec<Arc<Outbox>> = {
        let mut state = shared.state.lock();
        let ids: Vec<u64> = state.conns.keys().copied().collect();
        ids.into_iter().filter_map(|id| state.remove_conn(id)).collect()
    };
    for out in conns {
        let _ = out.kill.send(true);
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let (kill, kill_rx) = watch::channel(false);
    let out = Arc::new(Outbox { tx, bytes: AtomicUsize::new(0), frames: AtomicUsize::new(0), kill });
    let id = {
        let mut state = shared.state.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.conns.insert(id, ConnEntry { out: out.clone(), subs: HashSet::new() });
        id
    };
    let writer = tokio::spawn(write_loop(wr, rx, out.clone(), kill_rx.clone()));
    let result = read_loop(rd, &shared, id, &out, kill_rx, stop).await;
    if let Err(e) = result {
        shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(conn = id, cause = %e, "cluster broker: connection closed on a protocol error");
    }
    shared.state.lock().remove_conn(id);
    let _ = out.kill.send(true);
    let _ = writer.await;
    shared.stats.connections.fetch_sub(1, Ordering::Relaxed);
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    shared: &Shared,
    id: u64,
    out: &Outbox,
    mut kill: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), FrameError> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut authenticated = shared.config.auth_token.is_none();
    loop {
        while let Some(frame) = frame::decode(&mut buf, shared.config.max_frame)? {
            if !authenticated {
                match (&frame, &shared.config.auth_token) {
                    (Frame::Hello { token }, Some(expected)) if expected.matches(token) => {
                        authenticated = true;
                        continue;
                    }
                    _ => return Err(FrameError::Unauthenticated),
                }
            }
            if !handle(shared, id, out, frame) {
                return Ok(());
            }
        }
        let n = tokio::select! {
            _ = crate::raised(&mut kill) => return Ok(()),
            _ = crate::raised(&mut stop) => return Ok(()),
            n = rd.read_buf(&mut buf) => n,
        };
        match n {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// Carries out one request; false when the connection must close (its queue overflowed).
fn handle(shared: &Shared, conn: u64, out: &Outbox, frame: Frame) -> bool {
    let reply = |id: u32, value: u64| -> bool {
        if id == 0 {
            return true;
        }
        shared.push(out, Frame::Reply { id, value }.to_bytes())
    };
    match frame {
        Frame::Subscribe { id, kind, name } => {
            shared.state.lock().subscribe(conn, kind, name);
            reply(id, 1)
        }
        Frame::Unsubscribe { id, kind, name } => {
            shared.state.lock().unsubscribe(conn, kind, &name);
            reply(id, 1)
        }
        Frame::Publish { id, channel, payload } => {
            let n = shared.publish(&channel, &payload);
            reply(id, n)
        }
        Frame::NumSub { id, channel } => {
            let n = shared.state.lock().channels.get(&channel).map_or(0, HashSet::len);
            reply(id, n as u64)
        }
        Frame::Register { id, index, pid, node, addr } => {
            let parsed = node.parse::<NodeId>().ok().zip(addr.parse::<SocketAddr>().ok());
            match parsed {
                Some((node, addr)) => {
                    let _ = shared.registrations.send(Registration { index, pid, node, addr });
                    reply(id, 1)
                }
                None => {
                    let message = format!("invalid registration: node {node:?}, addr {addr:?}");
                    id == 0 || shared.push(out, Frame::Error { id, message }.to_bytes())
                }
            }
        }
        // already authenticated, or no token needed
        Frame::Hello { .. } => true,
        other @ (Frame::Reply { .. } | Frame::Message { .. } | Frame::Error { .. }) => {
            // answers are the broker's to send, not to receive
            let id = other.id();
            id == 0 || shared.push(out, Frame::Error { id, message: "not a request".into() }.to_bytes())
        }
    }
}

async fn write_loop(
    wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    out: Arc<Outbox>,
    mut kill: watch::Receiver<bool>,
) {
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    loop {
        let first = tokio::select! {
            _ = crate::raised(&mut kill) => break,
            f = rx.recv() => f,
        };
        let Some(mut next) = first else { break };
        loop {
            let len = next.len();
            let written = tokio::select! {
                _ = crate::raised(&mut kill) => return,
                r = wr.write_all(&next) => r,
            };
            out.bytes.fetch_sub(len, Ordering::AcqRel);
            out.frames.fetch_sub(1, Ordering::AcqRel);
            if written.is_err() {
                return;
            }
            match rx.try_recv() {
                Ok(f) => next = f,
                Err(_) => break,
            }
        }
        let flushed = tokio::select! {
            _ = crate::raised(&mut kill) => return,
            r = wr.flush() => r,
        };
        if flushed.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}
