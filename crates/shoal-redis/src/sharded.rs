//! The sharded adapter: Redis sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis ≥ 7.0),
//! byte-compatible with `@socket.io/redis-adapter` 8.3 `createShardedAdapter`, which runs
//! socket.io-adapter's `ClusterAdapter` protocol (messages in [`cluster_wire`]).
//!
//! # Channels (namespace `nsp`, prefix `socket.io`)
//! | channel | use |
//! |---|---|
//! | `socket.io#<nsp>#` | every message but responses; `PUBSUB SHARDNUMSUB` of it is the server count |
//! | `socket.io#<nsp>#<uid>#` | responses to this node (`uid`: 8 random bytes in hex) |
//! | `socket.io#<nsp>#<room>#` | broadcasts to exactly one room, without acknowledgements (dynamic modes) |
//!
//! A node subscribes the room channel of a room when the room gets its first local
//! member, and unsubscribes when it loses its last one ([`SubscriptionMode`]); so a
//! broadcast to a room only reaches the nodes where the room has members.
//!
//! # Semantics (those of `ClusterAdapter`, unlike the classic adapter)
//! - The sender applies broadcasts, joins, leaves and disconnects locally at once and
//!   publishes them; receivers apply messages whose `uid` is not theirs and whose `nsp` is
//!   their namespace (messages without `nsp`, from socket.io-adapter < 2.5.6, are
//!   ignored, as Node ≥ 2.5.6 does).
//! - Fetch sockets and server-side emit with acknowledgements expect `server count - 1`
//!   answers (counted, not identified), within the operation's timeout (the requests
//!   timeout by default).
//! - Broadcast with acknowledgements: every other node answers with its client count
//!   (`BROADCAST_CLIENT_COUNT`), then one `BROADCAST_ACK` per client answer.
//! - All rooms: the cluster protocol has no such request; Shoal answers it from a
//!   fetch-sockets of every socket (the union of their rooms), which Node nodes answer
//!   too.
//!
//! # Subscriptions
//! Every (un)subscription of a factory goes through one ordered queue, counted per channel:
//! a channel is `SSUBSCRIBE`d once however many adapters want it (an old adapter of a
//! namespace closing while its replacement starts does not drop the new one's channels),
//! a room created and deleted before Redis was told costs nothing, and a failed change is
//! retried every second until Redis accepts it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use shoal_core::{
    AckEvent, AckResponse, AckSink, Adapter, AdapterError, Args, BoxFuture, BroadcastOptions, LocalNamespace, Packet,
    Room, SocketInfo,
};
use tokio::sync::{mpsc, oneshot};

use crate::cluster_wire::{self, Body, ClusterMessage};
use crate::driver::{Driver, Subscription};

/// Which rooms get their own channel (Node's `subscriptionMode`). Every node of a
/// cluster must use the same mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionMode {
    /// Two channels per namespace; every broadcast goes to every node. Suits many
    /// short-lived namespaces.
    Static,
    /// Plus one channel per public room (not a socket id of this node); broadcasts to a
    /// single room only reach the nodes where it has members.
    #[default]
    Dynamic,
    /// Like `Dynamic`, and socket-id rooms too (for much one-to-one messaging).
    DynamicPrivate,
}

impl SubscriptionMode {
    /// Node's name of the mode (`static`, `dynamic`, `dynamic-private`).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionMode::Static => "static",
            SubscriptionMode::Dynamic => "dynamic",
            SubscriptionMode::DynamicPrivate => "dynamic-private",
        }
    }
}

/// Node's heuristic: a room of 20 UTF-16 code units looks like a socket id (Shoal's and
/// Node's socket ids are 20 characters).
pub fn looks_like_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

/// 8 random bytes in hex (Node's `randomId()`): adapter uids and request ids.
pub(crate) fn random_id() -> String {
    let mut raw = [0u8; 8];
    let _ = getrandom::fill(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

// ----- subscriptions --------------------------------------------------------------------

struct SubOp {
    add: bool,
    channels: Vec<String>,
    done: Option<oneshot::Sender<Result<(), AdapterError>>>,
}

/// What the subscription worker needs, until it starts.
type IdleWorker = (mpsc::UnboundedReceiver<SubOp>, Arc<dyn Driver>);

/// The ordered, counted shard-channel subscriptions of one factory.
pub(crate) struct SubManager {
    tx: mpsc::UnboundedSender<SubOp>,
    idle: Mutex<Option<IdleWorker>>,
}

impl std::fmt::Debug for SubManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubManager").finish_non_exhaustive()
    }
}

impl SubManager {
    pub(crate) fn new(driver: Arc<dyn Driver>) -> Arc<SubManager> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(SubManager { tx, idle: Mutex::new(Some((rx, driver))) })
    }

    /// Queues a change (the worker starts with the first change made in a runtime).
    fn send(&self, add: bool, channels: Vec<String>, done: Option<oneshot::Sender<Result<(), AdapterError>>>) {
        let _ = self.tx.send(SubOp { add, channels, done });
        let mut idle = self.idle.lock();
        if idle.is_some()
            && tokio::runtime::Handle::try_current().is_ok()
            && let Some((rx, driver)) = idle.take()
        {
            tokio::spawn(run_subscriptions(driver, rx));
        }
    }
}

async fn wait_done(rx: oneshot::Receiver<Result<(), AdapterError>>) -> Result<(), AdapterError> {
    rx.await.unwrap_or_else(|_| Err(AdapterError::Unavailable("subscription worker stopped".into())))
}

/// Applies queued changes in order: counts per channel, then tells the driver what
/// changed (the driver retries what failed).
async fn run_subscriptions(driver: Arc<dyn Driver>, mut rx: mpsc::UnboundedReceiver<SubOp>) {
    let mut wanted: HashMap<String, usize> = HashMap::new();
    let mut active: HashSet<String> = HashSet::new();
    // channels whose wanted state changed (or failed to apply), in order of change
    let mut touched: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut ops = Vec::with_capacity(64);
    loop {
        let retrying = !touched.is_empty();
        let n = if retrying {
            match tokio::time::timeout(Duration::from_secs(1), rx.recv_many(&mut ops, 256)).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => 0,
            }
        } else {
            rx.recv_many(&mut ops, 256).await
        };
        if n == 0 && !retrying {
            break;
        }
        let mut waiters = Vec::new();
        for op in ops.drain(..) {
            for c in op.channels {
                if op.add {
                    *wanted.entry(c.clone()).or_insert(0) += 1;
                } else if let Some(count) = wanted.get_mut(&c) {
                    *count -= 1;
                    if *count == 0 {
                        wanted.remove(&c);
                    }
                }
                if seen.insert(c.clone()) {
                    touched.push(c);
                }
            }
            waiters.extend(op.done);
        }
        let mut failure: Option<String> = None;
        seen.clear();
        for c in std::mem::take(&mut touched) {
            let want = wanted.contains_key(&c);
            if want == active.contains(&c) {
                continue;
            }
            let sub = vec![Subscription::Shard(c.clone())];
            let r = if want { driver.subscribe(sub).await } else { driver.unsubscribe(sub).await };
            // The driver counts every call and restores what is wanted after a failure or
            // a reconnection, so a change is applied once here, whatever the outcome.
            if let Err(e) = r {
                tracing::warn!(channel = %c, cause = %e, "shard (un)subscription failed; the driver will restore it");
                failure = Some(e.to_string());
            }
            if want {
                active.insert(c);
            } else {
                active.remove(&c);
            }
        }
        for w in waiters {
            let _ = w.send(match &failure {
                None => Ok(()),
                Some(e) => Err(AdapterError::Unavailable(e.clone())),
            });
        }
    }
}

// ----- the adapter ----------------------------------------------------------------------

/// Settings shared by the sharded adapters of every namespace.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) key: String,
    pub(crate) requests_timeout: Duration,
    pub(crate) max_pending_requests: usize,
    pub(crate) subscription: SubscriptionMode,
    pub(crate) subs: Arc<SubManager>,
}

enum Pending {
    /// Fetch sockets / server-side emit: answers go to a channel.
    Collect(mpsc::UnboundedSender<Body>),
    /// A broadcast with acknowledgements.
    Acks(AckSink),
}

#[derive(Default)]
struct SubState {
    /// The namespace channels were asked for (`init`).
    main: bool,
    /// `close` ran: no more subscriptions.
    closed: bool,
    /// Rooms whose channel this adapter subscribed.
    rooms: HashSet<Room>,
}

/// The sharded Redis adapter of one namespace.
pub struct ShardedAdapter {
    local: Arc<dyn LocalNamespace>,
    shared: Shared,
    uid: String,
    nsp: String,
    channel: String,
    response_channel: String,
    pending: Mutex<HashMap<String, Pending>>,
    state: Mutex<SubState>,
    me: Weak<ShardedAdapter>,
}

impl std::fmt::Debug for ShardedAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedAdapter")
            .field("nsp", &self.nsp)
            .field("uid", &self.uid)
            .field("mode", &self.shared.subscription)
            .finish()
    }
}

impl ShardedAdapter {
    pub(crate) fn new(shared: Shared, local: Arc<dyn LocalNamespace>) -> Arc<ShardedAdapter> {
        let nsp = local.name().to_owned();
        let uid = random_id();
        let channel = format!("{}#{}#", shared.key, nsp);
        let response_channel = format!("{channel}{uid}#");
        Arc::new_cyclic(|me| ShardedAdapter {
            local,
            shared,
            uid,
            nsp,
            channel,
            response_channel,
            pending: Mutex::new(HashMap::new()),
            state: Mutex::new(SubState::default()),
            me: me.clone(),
        })
    }

    /// This node's uid for this namespace (16 hex characters).
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The subscription mode.
    pub fn subscription_mode(&self) -> SubscriptionMode {
        self.shared.subscription
    }

    /// The namespace's main channel (`<prefix>#<nsp>#`).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// This node's response channel (`<prefix>#<nsp>#<uid>#`).
    pub fn response_channel(&self) -> &str {
        &self.response_channel
    }

    /// The channel of `room` (`<prefix>#<nsp>#<room>#`).
    pub fn room_channel(&self, room: &str) -> String {
        format!("{}{}#", self.channel, room)
    }

    /// The channel a broadcast goes to, as Node decides it: its room's channel when it
    /// targets exactly one room and either the mode is `dynamic-private`, or the mode is
    /// `dynamic` and the room does not look like a socket id (20 characters); the main
    /// channel otherwise.
    pub fn broadcast_channel(&self, opts: &BroadcastOptions) -> String {
        match (self.shared.subscription, opts.rooms.as_slice()) {
            (SubscriptionMode::Dynamic, [room]) if !looks_like_socket_id(room.as_str()) => {
                self.room_channel(room.as_str())
            }
            (SubscriptionMode::DynamicPrivate, [room]) => self.room_channel(room.as_str()),
            _ => self.channel.clone(),
        }
    }

    fn message(&self, body: Body) -> Bytes {
        Bytes::from(cluster_wire::encode(&ClusterMessage::new(&self.uid, &self.nsp, body)))
    }

    fn publish(&self, channel: String, body: Body) -> Result<(), AdapterError> {
        self.shared.driver.publish(channel, self.message(body), true)
    }

    async fn publish_wait(&self, channel: String, body: Body) -> Result<(), AdapterError> {
        self.shared.driver.publish_wait(channel, self.message(body), true).await
    }

    /// Answers `requester` on its response channel.
    fn respond(&self, requester: Option<&str>, body: Body) {
        let Some(uid) = requester else { return };
        let channel = format!("{}{}#", self.channel, uid);
        if let Err(e) = self.publish(channel, body) {
            tracing::warn!(nsp = %self.nsp, cause = %e, "could not answer a request");
        }
    }

    /// Routes a message that arrived on one of this namespace's channels.
    pub(crate) fn on_message(&self, channel: &str, payload: &[u8]) {
        let msg = match cluster_wire::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(nsp = %self.nsp, cause = %e, "ignoring a malformed message");
                return;
            }
        };
        if channel == self.response_channel {
            self.on_response(msg.body);
        } else {
            self.on_cluster_message(msg);
        }
    }

    fn on_cluster_message(&self, msg: ClusterMessage) {
        if msg.uid.as_deref() == Some(self.uid.as_str()) || msg.nsp.as_deref() != Some(self.nsp.as_str()) {
            return;
        }
        let requester = msg.uid.as_deref();
        match msg.body {
            Body::Broadcast { mut packet, opts, request_id } => {
                packet.nsp = self.nsp.clone().into();
                match request_id {
                    None => {
                        self.local.broadcast(&packet, &opts);
                    }
                    Some(rid) => self.answer_broadcast_with_ack(requester, rid, packet, opts),
                }
            }
            Body::SocketsJoin { opts, rooms } => self.local.add_sockets(&opts, &rooms),
            Body::SocketsLeave { opts, rooms } => self.local.del_sockets(&opts, &rooms),
            Body::DisconnectSockets { opts, close } => self.local.disconnect_sockets(&opts, close),
            Body::FetchSockets { opts, request_id } => {
                let sockets = self.local.fetch_sockets(&opts);
                self.respond(requester, Body::FetchSocketsResponse { request_id, sockets });
            }
            Body::ServerSideEmit { args, request_id: None } => {
                self.local.server_side_emit(args, None);
            }
            Body::ServerSideEmit { args, request_id: Some(rid) } => self.answer_server_side_emit(requester, rid, args),
            body if body.is_response() => self.on_response(body),
            _ => {}
        }
    }

    /// Delivers a remote broadcast-with-ack locally and reports the client count at once,
    /// then each answer, until every client answered or the timeout.
    fn answer_broadcast_with_ack(&self, requester: Option<&str>, rid: String, packet: Packet, opts: BroadcastOptions) {
        let (sink, mut rx) = AckSink::channel();
        let count = self.local.broadcast_with_ack(&packet, &opts, &sink);
        drop(sink);
        self.respond(requester, Body::BroadcastClientCount { request_id: rid.clone(), client_count: count as u64 });
        let Some(requester) = requester.map(str::to_owned) else { return };
        if count == 0 {
            return;
        }
        let me = self.me.clone();
        let timeout = opts.timeout.unwrap_or(self.shared.requests_timeout);
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut answered = 0;
            while answered < count {
                let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await else { break };
                let AckEvent::Response(r) = ev else { continue };
                answered += 1;
                let Some(me) = me.upgrade() else { return };
                // Node forwards the first argument of the acknowledgement
                let value =
                    Args { values: r.args.values.into_iter().take(1).collect(), attachments: r.args.attachments };
                me.respond(Some(&requester), Body::BroadcastAck { request_id: rid.clone(), value });
            }
        });
    }

    /// Runs the server-side handlers and answers once, with the first answer.
    fn answer_server_side_emit(&self, requester: Option<&str>, rid: String, args: Args) {
        let (sink, mut rx) = AckSink::channel();
        let expected = self.local.server_side_emit(args, Some(sink));
        let Some(requester) = requester.map(str::to_owned) else { return };
        if expected == 0 {
            return;
        }
        let me = self.me.clone();
        let timeout = self.shared.requests_timeout;
        tokio::spawn(async move {
            let first = tokio::time::timeout(timeout, async {
                while let Some(ev) = rx.recv().await {
                    if let AckEvent::Response(r) = ev {
                        return Some(r.args);
                    }
                }
                None
            })
            .await;
            let (Some(me), Ok(Some(args))) = (me.upgrade(), first) else { return };
            let value = Args { values: args.values.into_iter().take(1).collect(), attachments: args.attachments };
            me.respond(Some(&requester), Body::ServerSideEmitResponse { request_id: rid, value });
        });
    }

    fn on_response(&self, body: Body) {
        let rid = match &body {
            Body::FetchSocketsResponse { request_id, .. }
            | Body::ServerSideEmitResponse { request_id, .. }
            | Body::BroadcastClientCount { request_id, .. }
            | Body::BroadcastAck { request_id, .. } => request_id.clone(),
            _ => return,
        };
        let mut pending = self.pending.lock();
        match pending.get(&rid) {
            Some(Pending::Acks(sink)) => {
                if sink.is_closed() {
                    pending.remove(&rid);
                    return;
                }
                match body {
                    Body::BroadcastClientCount { client_count, .. } => sink.expect(client_count as usize),
                    Body::BroadcastAck { value, .. } => sink.respond(None, value),
                    _ => {}
                }
            }
            Some(Pending::Collect(tx)) => {
                let _ = tx.send(body);
            }
            None => {}
        }
    }

    fn register(&self, pending: Pending) -> Result<String, AdapterError> {
        let mut map = self.pending.lock();
        if map.len() >= self.shared.max_pending_requests {
            return Err(AdapterError::TooManyRequests);
        }
        let rid = random_id();
        map.insert(rid.clone(), pending);
        Ok(rid)
    }

    fn unregister(&self, rid: &str) {
        self.pending.lock().remove(rid);
    }

    /// Number of other nodes (`SHARDNUMSUB` of the main channel, minus this one).
    async fn others(&self) -> Result<usize, AdapterError> {
        Ok(self.shared.driver.num_sub(self.channel.clone(), true).await?.saturating_sub(1))
    }

    /// Publishes a request on the main channel and gathers `expected` answers within
    /// `timeout`; [`AdapterError::Timeout`] if they do not all come.
    async fn request(
        &self,
        build: impl FnOnce(String) -> Body,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Body>, AdapterError> {
        match self.gather(build, expected, timeout).await? {
            (answers, true) => Ok(answers),
            (_, false) => Err(AdapterError::Timeout),
        }
    }

    /// Publishes a request on the main channel and gathers at most `expected` answers
    /// within `timeout`: the answers, and whether they all came.
    async fn gather(
        &self,
        build: impl FnOnce(String) -> Body,
        expected: usize,
        timeout: Duration,
    ) -> Result<(Vec<Body>, bool), AdapterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let rid = self.register(Pending::Collect(tx))?;
        let result = async {
            self.publish_wait(self.channel.clone(), build(rid.clone())).await?;
            let mut answers = Vec::with_capacity(expected);
            while answers.len() < expected {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(a)) => answers.push(a),
                    _ => return Ok((answers, false)),
                }
            }
            Ok((answers, true))
        }
        .await;
        self.unregister(&rid);
        result
    }

    /// True if `room` is the id of a socket of this node.
    fn is_local_socket_id(&self, room: &Room) -> bool {
        looks_like_socket_id(room.as_str())
            && self.local.fetch_sockets(&BroadcastOptions::room(room.clone())).iter().any(|s| s.id == room.as_str())
    }

    fn wants_room_channel(&self, room: &Room) -> bool {
        match self.shared.subscription {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !self.is_local_socket_id(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Rooms whose channel this adapter is subscribed to (dynamic modes).
    pub fn subscribed_rooms(&self) -> Vec<Room> {
        let mut v: Vec<Room> = self.state.lock().rooms.iter().cloned().collect();
        v.sort();
        v
    }
}

impl Adapter for ShardedAdapter {
    fn local(&self) -> &Arc<dyn LocalNamespace> {
        &self.local
    }

    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        let rx = {
            let mut st = self.state.lock();
            if st.closed || st.main {
                None
            } else {
                st.main = true;
                let (tx, rx) = oneshot::channel();
                self.shared.subs.send(true, vec![self.channel.clone(), self.response_channel.clone()], Some(tx));
                Some(rx)
            }
        };
        Box::pin(async move {
            match rx {
                Some(rx) => wait_done(rx).await,
                None => Ok(()),
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        let rx = {
            let mut st = self.state.lock();
            st.closed = true;
            let mut channels: Vec<String> = st.rooms.drain().map(|r| self.room_channel(r.as_str())).collect();
            if std::mem::take(&mut st.main) {
                channels.push(self.channel.clone());
                channels.push(self.response_channel.clone());
            }
            let (tx, rx) = oneshot::channel();
            self.shared.subs.send(false, channels, Some(tx));
            rx
        };
        self.pending.lock().clear();
        Box::pin(async move {
            if let Err(e) = wait_done(rx).await {
                tracing::debug!(nsp = %self.nsp, cause = %e, "unsubscribe failed");
            }
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { self.shared.driver.num_sub(self.channel.clone(), true).await })
    }

    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(), AdapterError> {
        self.local.broadcast(packet, opts);
        if opts.flags.local {
            return Ok(());
        }
        let body = Body::Broadcast { packet: packet.clone(), opts: opts.clone(), request_id: None };
        self.publish(self.broadcast_channel(opts), body)
    }

    fn broadcast_with_ack<'a>(
        &'a self,
        packet: &'a Packet,
        opts: &'a BroadcastOptions,
        sink: AckSink,
    ) -> BoxFuture<'a, Result<usize, AdapterError>> {
        Box::pin(async move {
            let n = self.local.broadcast_with_ack(packet, opts, &sink);
            sink.expect(n);
            if opts.flags.local {
                return Ok(1);
            }
            let servers = match self.shared.driver.num_sub(self.channel.clone(), true).await {
                Ok(n) => n.max(1),
                Err(e) => {
                    tracing::warn!(nsp = %self.nsp, cause = %e, "broadcast with ack reached this node only");
                    return Ok(1);
                }
            };
            if servers == 1 {
                return Ok(1);
            }
            let rid = self.register(Pending::Acks(sink.clone()))?;
            let body = Body::Broadcast { packet: packet.clone(), opts: opts.clone(), request_id: Some(rid.clone()) };
            // always the main channel: the server count covers every node, not only
            // those where a room has members
            if let Err(e) = self.publish(self.channel.clone(), body) {
                self.unregister(&rid);
                return Err(e);
            }
            // forget the request once the collector is done (or after its timeout)
            let me = self.me.clone();
            let limit = opts.timeout.unwrap_or(Duration::from_secs(600));
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + limit;
                while !sink.is_closed() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                if let Some(me) = me.upgrade() {
                    me.unregister(&rid);
                }
            });
            Ok(servers)
        })
    }

    fn fetch_sockets<'a>(&'a self, opts: &'a BroadcastOptions) -> BoxFuture<'a, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            let mut sockets = self.local.fetch_sockets(opts);
            if opts.flags.local {
                return Ok(sockets);
            }
            let expected = self.others().await?;
            if expected == 0 {
                return Ok(sockets);
            }
            let timeout = opts.timeout.unwrap_or(self.shared.requests_timeout);
            let answers = self
                .request(|rid| Body::FetchSockets { opts: opts.clone(), request_id: rid }, expected, timeout)
                .await?;
            for a in answers {
                if let Body::FetchSocketsResponse { sockets: remote, .. } = a {
                    sockets.extend(remote);
                }
            }
            Ok(sockets)
        })
    }

    fn add_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        rooms: &'a [Room],
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        self.local.add_sockets(opts, rooms);
        Box::pin(async move {
            if opts.flags.local {
                return Ok(());
            }
            let body = Body::SocketsJoin { opts: opts.clone(), rooms: rooms.to_vec() };
            self.publish_wait(self.channel.clone(), body).await
        })
    }

    fn del_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        rooms: &'a [Room],
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        self.local.del_sockets(opts, rooms);
        Box::pin(async move {
            if opts.flags.local {
                return Ok(());
            }
            let body = Body::SocketsLeave { opts: opts.clone(), rooms: rooms.to_vec() };
            self.publish_wait(self.channel.clone(), body).await
        })
    }

    fn disconnect_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        let published = if opts.flags.local {
            None
        } else {
            Some(self.publish(self.channel.clone(), Body::DisconnectSockets { opts: opts.clone(), close }))
        };
        self.local.disconnect_sockets(opts, close);
        Box::pin(async move { published.unwrap_or(Ok(())) })
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move {
            let mut rooms = self.local.rooms();
            let expected = self.others().await?;
            if expected > 0 {
                let answers = self
                    .request(
                        |rid| Body::FetchSockets { opts: BroadcastOptions::default(), request_id: rid },
                        expected,
                        self.shared.requests_timeout,
                    )
                    .await?;
                for a in answers {
                    if let Body::FetchSocketsResponse { sockets, .. } = a {
                        rooms.extend(sockets.into_iter().flat_map(|s| s.rooms));
                    }
                }
            }
            rooms.sort();
            rooms.dedup();
            Ok(rooms)
        })
    }

    fn server_side_emit(&self, args: Args) -> Result<(), AdapterError> {
        self.publish(self.channel.clone(), Body::ServerSideEmit { args, request_id: None })
    }

    fn server_side_emit_with_ack(
        &self,
        args: Args,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<AckResponse>, AdapterError>> {
        Box::pin(async move {
            let expected = self.others().await?;
            if expected == 0 {
                return Ok(Vec::new());
            }
            let (answers, complete) =
                self.gather(|rid| Body::ServerSideEmit { args, request_id: Some(rid) }, expected, timeout).await?;
            let responses: Vec<AckResponse> = answers
                .into_iter()
                .filter_map(|a| match a {
                    Body::ServerSideEmitResponse { value, .. } => Some(AckResponse { socket: None, args: value }),
                    _ => None,
                })
                .collect();
            if complete { Ok(responses) } else { Err(AdapterError::AckTimeout { responses, expected }) }
        })
    }

    fn on_room_created(&self, room: &Room) {
        if !self.wants_room_channel(room) {
            return;
        }
        let mut st = self.state.lock();
        if st.closed || !st.rooms.insert(room.clone()) {
            return;
        }
        // queued under the lock: changes reach the queue in the order they happened
        self.shared.subs.send(true, vec![self.room_channel(room.as_str())], None);
    }

    fn on_room_deleted(&self, room: &Room) {
        let mut st = self.state.lock();
        if st.rooms.remove(room) {
            self.shared.subs.send(false, vec![self.room_channel(room.as_str())], None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use shoal_core::PacketData;

    use super::*;
    use crate::driver::{DriverStats, Router};

    /// Records what the adapter asks of Redis.
    #[derive(Default)]
    struct FakeDriver {
        log: Mutex<Vec<String>>,
        published: Mutex<Vec<(String, Bytes)>>,
        fail_next_subscribe: AtomicUsize,
        servers: AtomicUsize,
        stats: DriverStats,
    }

    impl Driver for FakeDriver {
        fn publish(&self, channel: String, payload: Bytes, sharded: bool) -> Result<(), AdapterError> {
            assert!(sharded, "the sharded adapter only uses SPUBLISH");
            self.published.lock().push((channel, payload));
            Ok(())
        }
        fn publish_wait(
            &self,
            channel: String,
            payload: Bytes,
            sharded: bool,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            let r = self.publish(channel, payload, sharded);
            Box::pin(async move { r })
        }
        fn subscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>> {
            let failing = self.fail_next_subscribe.load(Ordering::SeqCst) > 0;
            if failing {
                self.fail_next_subscribe.fetch_sub(1, Ordering::SeqCst);
            }
            for s in subs {
                let Subscription::Shard(c) = s else { panic!("not a shard channel: {s:?}") };
                self.log.lock().push(format!("{}sub {c}", if failing { "failed " } else { "" }));
            }
            Box::pin(async move { if failing { Err(AdapterError::Unavailable("down".into())) } else { Ok(()) } })
        }
        fn unsubscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>> {
            for s in subs {
                let Subscription::Shard(c) = s else { panic!("not a shard channel: {s:?}") };
                self.log.lock().push(format!("unsub {c}"));
            }
            Box::pin(async { Ok(()) })
        }
        fn num_sub(&self, _channel: String, sharded: bool) -> BoxFuture<'_, Result<usize, AdapterError>> {
            assert!(sharded);
            let n = self.servers.load(Ordering::SeqCst);
            Box::pin(async move { Ok(n) })
        }
        fn set_router(&self, _router: Router) {}
        fn stats(&self) -> &DriverStats {
            &self.stats
        }
        fn is_connected(&self) -> bool {
            true
        }
        fn close(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    /// Counts what the adapter applies locally; one local socket `aaaaaaaaaaaaaaaaaaaa`.
    #[derive(Default)]
    struct FakeLocal {
        calls: Mutex<Vec<String>>,
    }

    const LOCAL_SID: &str = "aaaaaaaaaaaaaaaaaaaa";

    impl LocalNamespace for FakeLocal {
        fn name(&self) -> &str {
            "/chat"
        }
        fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> usize {
            let PacketData::Args(a) = &packet.data else { panic!() };
            self.calls.lock().push(format!("broadcast {} {:?} {:?}", packet.nsp, a.values, opts.rooms));
            1
        }
        fn broadcast_with_ack(&self, _packet: &Packet, _opts: &BroadcastOptions, sink: &AckSink) -> usize {
            self.calls.lock().push("broadcast_with_ack".into());
            sink.respond(None, Args::from_values(vec![json!("a1"), json!("ignored")]));
            1
        }
        fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
            if opts.rooms.iter().any(|r| r.as_str() != LOCAL_SID) {
                return Vec::new();
            }
            vec![SocketInfo {
                id: LOCAL_SID.into(),
                handshake: json!({}),
                rooms: vec![Room::from(LOCAL_SID)],
                data: json!(null),
            }]
        }
        fn add_sockets(&self, _opts: &BroadcastOptions, rooms: &[Room]) {
            self.calls.lock().push(format!("join {rooms:?}"));
        }
        fn del_sockets(&self, _opts: &BroadcastOptions, rooms: &[Room]) {
            self.calls.lock().push(format!("leave {rooms:?}"));
        }
        fn disconnect_sockets(&self, _opts: &BroadcastOptions, close: bool) {
            self.calls.lock().push(format!("disconnect {close}"));
        }
        fn rooms(&self) -> Vec<Room> {
            Vec::new()
        }
        fn server_side_emit(&self, args: Args, ack: Option<AckSink>) -> usize {
            self.calls.lock().push(format!("sse {:?}", args.values));
            match ack {
                Some(sink) => {
                    sink.respond(None, Args::from_values(vec![json!("me")]));
                    1
                }
                None => 0,
            }
        }
    }

    fn setup(mode: SubscriptionMode) -> (Arc<FakeDriver>, Arc<FakeLocal>, Arc<ShardedAdapter>) {
        let driver = Arc::new(FakeDriver::default());
        let local = Arc::new(FakeLocal::default());
        let shared = Shared {
            driver: driver.clone(),
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            max_pending_requests: 2,
            subscription: mode,
            subs: SubManager::new(driver.clone()),
        };
        let adapter = ShardedAdapter::new(shared, local.clone());
        (driver, local, adapter)
    }

    fn take(m: &Mutex<Vec<String>>) -> Vec<String> {
        std::mem::take(&mut *m.lock())
    }

    /// Lets the subscription worker run what was queued.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn decoded(driver: &FakeDriver) -> Vec<(String, ClusterMessage)> {
        std::mem::take(&mut *driver.published.lock())
            .into_iter()
            .map(|(c, p)| (c, cluster_wire::decode(&p).unwrap()))
            .collect()
    }

    #[test]
    fn ids_and_socket_id_heuristic() {
        let id = random_id();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(id, random_id());
        assert!(looks_like_socket_id(LOCAL_SID));
        assert!(!looks_like_socket_id("room"));
        // JavaScript counts UTF-16 code units
        assert!(looks_like_socket_id(&"é".repeat(20)));
        assert!(!looks_like_socket_id(&"😀".repeat(20)));
        assert!(looks_like_socket_id(&"😀".repeat(10)));
    }

    #[tokio::test]
    async fn channels_of_each_mode() {
        for (mode, room, sid) in [
            (SubscriptionMode::Static, "socket.io#/chat#", "socket.io#/chat#"),
            (SubscriptionMode::Dynamic, "socket.io#/chat#r#", "socket.io#/chat#"),
            // as Node: in dynamic-private, socket ids have channels too
            (SubscriptionMode::DynamicPrivate, "socket.io#/chat#r#", "socket.io#/chat#aaaaaaaaaaaaaaaaaaaa#"),
        ] {
            let (_, _, a) = setup(mode);
            assert_eq!(a.channel(), "socket.io#/chat#");
            assert_eq!(a.response_channel(), format!("socket.io#/chat#{}#", a.uid()));
            assert_eq!(a.broadcast_channel(&BroadcastOptions::room("r")), room, "{mode:?}");
            assert_eq!(a.broadcast_channel(&BroadcastOptions::room(LOCAL_SID)), sid, "{mode:?}");
            let mut two = BroadcastOptions::room("r");
            two.rooms.push(Room::from("s"));
            assert_eq!(a.broadcast_channel(&two), "socket.io#/chat#");
            assert_eq!(a.broadcast_channel(&BroadcastOptions::default()), "socket.io#/chat#");
        }
    }

    #[tokio::test]
    async fn room_subscriptions_follow_rooms() {
        let (d, _, a) = setup(SubscriptionMode::Dynamic);
        a.init().await.unwrap();
        let main = format!("sub {}", a.channel());
        let resp = format!("sub {}", a.response_channel());
        let mut log = take(&d.log);
        log.sort();
        assert_eq!(log, vec![main, resp]);
        a.on_room_created(&Room::from("r"));
        // a socket id of this node is private in `dynamic`
        a.on_room_created(&Room::from(LOCAL_SID));
        // a 20-character public room is subscribed, as Node does
        a.on_room_created(&Room::from("bbbbbbbbbbbbbbbbbbbb"));
        settle().await;
        assert_eq!(take(&d.log), vec!["sub socket.io#/chat#r#", "sub socket.io#/chat#bbbbbbbbbbbbbbbbbbbb#"]);
        assert_eq!(a.subscribed_rooms(), vec![Room::from("bbbbbbbbbbbbbbbbbbbb"), Room::from("r")]);
        // created and deleted before the worker ran: nothing reaches Redis
        a.on_room_created(&Room::from("brief"));
        a.on_room_deleted(&Room::from("brief"));
        a.on_room_deleted(&Room::from(LOCAL_SID));
        settle().await;
        assert!(take(&d.log).is_empty());
        a.on_room_deleted(&Room::from("r"));
        settle().await;
        assert_eq!(take(&d.log), vec!["unsub socket.io#/chat#r#"]);
        a.close().await;
        let mut log = take(&d.log);
        log.sort();
        let mut want = vec![
            format!("unsub {}", a.channel()),
            format!("unsub {}", a.response_channel()),
            "unsub socket.io#/chat#bbbbbbbbbbbbbbbbbbbb#".to_owned(),
        ];
        want.sort();
        assert_eq!(log, want);
        // after close, rooms no longer subscribe
        a.on_room_created(&Room::from("late"));
        settle().await;
        assert!(take(&d.log).is_empty());
    }

    #[tokio::test]
    async fn static_mode_has_no_room_channels_and_private_mode_has_all() {
        let (d, _, a) = setup(SubscriptionMode::Static);
        a.on_room_created(&Room::from("r"));
        settle().await;
        assert!(take(&d.log).is_empty());
        let (d, _, a) = setup(SubscriptionMode::DynamicPrivate);
        a.on_room_created(&Room::from(LOCAL_SID));
        settle().await;
        assert_eq!(take(&d.log), vec![format!("sub socket.io#/chat#{LOCAL_SID}#")]);
    }

    #[tokio::test]
    async fn channels_are_counted_across_adapters() {
        let driver = Arc::new(FakeDriver::default());
        let subs = SubManager::new(driver.clone());
        let shared = |subs: &Arc<SubManager>| Shared {
            driver: driver.clone(),
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            max_pending_requests: 16,
            subscription: SubscriptionMode::Dynamic,
            subs: subs.clone(),
        };
        // an old adapter of the namespace closes while its replacement starts
        let old = ShardedAdapter::new(shared(&subs), Arc::new(FakeLocal::default()));
        old.init().await.unwrap();
        old.on_room_created(&Room::from("r"));
        settle().await;
        take(&driver.log);
        let new = ShardedAdapter::new(shared(&subs), Arc::new(FakeLocal::default()));
        let init = new.init();
        new.on_room_created(&Room::from("r"));
        old.close().await;
        init.await.unwrap();
        settle().await;
        let mut log = take(&driver.log);
        log.sort();
        assert_eq!(log, vec![format!("sub {}", new.response_channel()), format!("unsub {}", old.response_channel())]);
        // a never-started adapter's close does not take the others' channels
        let idle = ShardedAdapter::new(shared(&subs), Arc::new(FakeLocal::default()));
        idle.close().await;
        assert!(take(&driver.log).is_empty());
        new.close().await;
        let mut log = take(&driver.log);
        log.sort();
        let mut want = vec![
            "unsub socket.io#/chat#".to_owned(),
            format!("unsub {}", new.response_channel()),
            "unsub socket.io#/chat#r#".to_owned(),
        ];
        want.sort();
        assert_eq!(log, want);
    }

    /// A failed subscription is reported to the caller and asked of the driver once:
    /// the driver keeps it wanted and restores it itself (asking again here would count
    /// it twice and leak it after the namespace is gone).
    #[tokio::test]
    async fn failed_subscriptions_are_left_to_the_driver() {
        let (d, _, a) = setup(SubscriptionMode::Dynamic);
        d.fail_next_subscribe.store(2, Ordering::SeqCst);
        assert!(a.init().await.is_err());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        settle().await;
        let log = take(&d.log);
        assert_eq!(log.iter().filter(|l| l.starts_with("failed sub")).count(), 2, "{log:?}");
        assert_eq!(log.iter().filter(|l| l.starts_with("sub")).count(), 0, "{log:?}");
        // and closing unsubscribes each channel exactly once
        a.close().await;
        settle().await;
        assert_eq!(take(&d.log).iter().filter(|l| l.starts_with("unsub")).count(), 2);
    }

    #[tokio::test]
    async fn receivers_apply_foreign_messages_of_their_namespace_only() {
        let (d, local, a) = setup(SubscriptionMode::Dynamic);
        let msg = |uid: &str, nsp: Option<&str>, body: Body| {
            let m = ClusterMessage { uid: Some(uid.into()), nsp: nsp.map(str::to_owned), body };
            cluster_wire::encode(&m)
        };
        let bc = || Body::Broadcast {
            packet: Packet::event("/", Args::from_values(vec![json!("ev"), json!(1)]), None),
            opts: BroadcastOptions::room("r"),
            request_id: None,
        };
        let own = a.uid().to_owned();
        a.on_message("socket.io#/chat#", &msg(&own, Some("/chat"), bc()));
        a.on_message("socket.io#/chat#", &msg("other", Some("/"), bc()));
        a.on_message("socket.io#/chat#", &msg("other", None, bc()));
        a.on_message("socket.io#/chat#", b"\x93garbage");
        assert!(take(&local.calls).is_empty());
        a.on_message("socket.io#/chat#r#", &msg("other", Some("/chat"), bc()));
        let join = Body::SocketsJoin { opts: BroadcastOptions::default(), rooms: vec![Room::from("x")] };
        a.on_message("socket.io#/chat#", &msg("other", Some("/chat"), join));
        let dc = Body::DisconnectSockets { opts: BroadcastOptions::default(), close: true };
        a.on_message("socket.io#/chat#", &msg("other", Some("/chat"), dc));
        let sse = Body::ServerSideEmit { args: Args::from_values(vec![json!("hi")]), request_id: None };
        a.on_message("socket.io#/chat#", &msg("other", Some("/chat"), sse));
        assert_eq!(
            take(&local.calls),
            vec![
                r#"broadcast /chat [String("ev"), Number(1)] ["r"]"#,
                r#"join ["x"]"#,
                "disconnect true",
                r#"sse [String("hi")]"#,
            ]
        );
        assert!(d.published.lock().is_empty());
    }

    #[tokio::test]
    async fn requests_are_answered_on_the_requester_channel() {
        let (d, _, a) = setup(SubscriptionMode::Dynamic);
        let ask = |body: Body| cluster_wire::encode(&ClusterMessage::new("peer", "/chat", body));
        a.on_message(
            "socket.io#/chat#",
            &ask(Body::FetchSockets { opts: BroadcastOptions::room(LOCAL_SID), request_id: "f1".into() }),
        );
        let bc = Body::Broadcast {
            packet: Packet::event("/chat", Args::from_values(vec![json!("ev")]), None),
            opts: BroadcastOptions::default(),
            request_id: Some("b1".into()),
        };
        a.on_message("socket.io#/chat#", &ask(bc));
        let sse = Body::ServerSideEmit { args: Args::from_values(vec![json!("q")]), request_id: Some("s1".into()) };
        a.on_message("socket.io#/chat#", &ask(sse));
        settle().await;
        let got = decoded(&d);
        assert!(got.iter().all(|(c, m)| c == "socket.io#/chat#peer#" && m.uid.as_deref() == Some(a.uid())));
        let bodies: Vec<Body> = got.into_iter().map(|(_, m)| m.body).collect();
        assert_eq!(bodies.len(), 4, "{bodies:?}");
        assert!(
            matches!(&bodies[0], Body::FetchSocketsResponse { request_id, sockets } if request_id == "f1" && sockets[0].id == LOCAL_SID)
        );
        assert_eq!(bodies[1], Body::BroadcastClientCount { request_id: "b1".into(), client_count: 1 });
        // only the first argument of a client's answer goes back, as Node does
        let rest: Vec<&Body> = bodies[2..].iter().collect();
        assert!(
            rest.contains(&&Body::BroadcastAck {
                request_id: "b1".into(),
                value: Args::from_values(vec![json!("a1")])
            })
        );
        assert!(rest.contains(&&Body::ServerSideEmitResponse {
            request_id: "s1".into(),
            value: Args::from_values(vec![json!("me")])
        }));
    }

    #[tokio::test]
    async fn requesters_count_answers_and_bound_pending_requests() {
        let (d, _, a) = setup(SubscriptionMode::Dynamic);
        d.servers.store(3, Ordering::SeqCst);
        let a2 = a.clone();
        let fetch = tokio::spawn(async move {
            let opts = BroadcastOptions { timeout: Some(Duration::from_secs(5)), ..Default::default() };
            a2.fetch_sockets(&opts).await
        });
        // wait for the request to be out
        let rid = loop {
            settle().await;
            if let Some((c, m)) = decoded(&d).pop() {
                assert_eq!(c, "socket.io#/chat#");
                let Body::FetchSockets { request_id, .. } = m.body else { panic!("{m:?}") };
                break request_id;
            }
        };
        let answer = |n: &str| {
            cluster_wire::encode(&ClusterMessage::new(
                n,
                "/chat",
                Body::FetchSocketsResponse {
                    request_id: rid.clone(),
                    sockets: vec![SocketInfo { id: n.into(), handshake: json!({}), rooms: vec![], data: json!(null) }],
                },
            ))
        };
        a.on_message(a.response_channel(), &answer("p1"));
        // an unknown request id is dropped
        a.on_message(
            a.response_channel(),
            &cluster_wire::encode(&ClusterMessage::new(
                "p9",
                "/chat",
                Body::FetchSocketsResponse { request_id: "nope".into(), sockets: vec![] },
            )),
        );
        a.on_message(a.response_channel(), &answer("p2"));
        let sockets = fetch.await.unwrap().unwrap();
        let ids: Vec<&str> = sockets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, [LOCAL_SID, "p1", "p2"]);
        assert!(a.pending.lock().is_empty());

        // at most `max_pending_requests` (2) at once
        let (s1, _c1) = shoal_core::AckCollector::new(1, Duration::from_secs(60));
        let (s2, _c2) = shoal_core::AckCollector::new(1, Duration::from_secs(60));
        let (s3, _c3) = shoal_core::AckCollector::new(1, Duration::from_secs(60));
        let p = Packet::event("/chat", Args::from_values(vec![json!("e")]), None);
        let o = BroadcastOptions::default();
        assert_eq!(a.broadcast_with_ack(&p, &o, s1).await.unwrap(), 3);
        assert_eq!(a.broadcast_with_ack(&p, &o, s2).await.unwrap(), 3);
        assert!(matches!(a.broadcast_with_ack(&p, &o, s3).await, Err(AdapterError::TooManyRequests)));
    }
}
