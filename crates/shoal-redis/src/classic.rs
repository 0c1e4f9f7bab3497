//! The classic adapter: Redis `PUBLISH`/`(P)SUBSCRIBE`, byte-compatible with
//! `@socket.io/redis-adapter` 8.3 (`createAdapter`).
//!
//! # Channels (namespace `nsp`, key `socket.io`)
//! | channel | use |
//! |---|---|
//! | `socket.io#<nsp>#` | broadcasts (every node `PSUBSCRIBE`s `socket.io#<nsp>#*`) |
//! | `socket.io#<nsp>#<room>#` | broadcasts to exactly one room |
//! | `socket.io-request#<nsp>#` | requests (one subscription per node and namespace: `PUBSUB NUMSUB` of it is the server count) |
//! | `socket.io-response#<nsp>#` | responses |
//! | `socket.io-response#<nsp>#<uid>#` | responses addressed to one node |
//!
//! Broadcasts are MessagePack `[uid, packet, {rooms, except, flags}]`; requests and
//! responses are JSON (`{uid, requestId, type, …}`), except broadcasts with
//! acknowledgements (type 7) and their answers (type 9), in MessagePack.
//!
//! Joins, leaves and disconnects (types 2, 3, 4) requested by this node are applied here
//! at once and published; this node ignores its own copy when it comes back (by uid),
//! so each applies exactly once everywhere, even while Redis is unreachable (then only
//! locally). Node nodes apply them when they arrive; emitters send them without uid.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use shoal_core::{
    AckEvent, AckResponse, AckSink, Adapter, AdapterError, Args, BoxFuture, BroadcastOptions, LocalNamespace, Packet,
    Room, SocketInfo,
};
use tokio::sync::mpsc;

use crate::driver::{Driver, Subscription};
use crate::wire;

/// Request types of the classic adapter (wire values).
mod ty {
    pub(super) const SOCKETS: u64 = 0;
    pub(super) const ALL_ROOMS: u64 = 1;
    pub(super) const REMOTE_JOIN: u64 = 2;
    pub(super) const REMOTE_LEAVE: u64 = 3;
    pub(super) const REMOTE_DISCONNECT: u64 = 4;
    pub(super) const REMOTE_FETCH: u64 = 5;
    pub(super) const SERVER_SIDE_EMIT: u64 = 6;
    pub(super) const BROADCAST: u64 = 7;
    pub(super) const BROADCAST_CLIENT_COUNT: u64 = 8;
    pub(super) const BROADCAST_ACK: u64 = 9;
}

/// Settings shared by the adapters of every namespace.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) key: String,
    pub(crate) requests_timeout: Duration,
    pub(crate) specific_response_channel: bool,
    pub(crate) max_pending_requests: usize,
}

impl std::fmt::Debug for dyn Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Driver")
    }
}

enum Pending {
    /// Fetch sockets / all rooms / server-side emit: answers go to a channel.
    Collect(mpsc::UnboundedSender<(Json, Vec<Bytes>)>),
    /// A broadcast with acknowledgements.
    Acks(AckSink),
}

/// The classic Redis adapter of one namespace.
pub struct ClassicAdapter {
    local: Arc<dyn LocalNamespace>,
    shared: Shared,
    uid: String,
    nsp: String,
    pending: Mutex<HashMap<String, Pending>>,
    me: Weak<ClassicAdapter>,
}

impl std::fmt::Debug for ClassicAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicAdapter").field("nsp", &self.nsp).field("uid", &self.uid).finish()
    }
}

/// A random id of `len` characters of `[A-Za-z0-9]` (Node's `uid2`).
pub(crate) fn uid2(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = vec![0u8; len];
    let _ = getrandom::fill(&mut raw);
    raw.iter().map(|b| char::from(CHARS[usize::from(*b) % CHARS.len()])).collect()
}

impl ClassicAdapter {
    pub(crate) fn new(shared: Shared, local: Arc<dyn LocalNamespace>) -> Arc<ClassicAdapter> {
        let nsp = local.name().to_owned();
        Arc::new_cyclic(|me| ClassicAdapter {
            local,
            shared,
            uid: uid2(6),
            nsp,
            pending: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    /// This node's uid for this namespace.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    fn broadcast_channel(&self) -> String {
        format!("{}#{}#", self.shared.key, self.nsp)
    }

    fn request_channel(&self) -> String {
        format!("{}-request#{}#", self.shared.key, self.nsp)
    }

    fn response_channel(&self) -> String {
        format!("{}-response#{}#", self.shared.key, self.nsp)
    }

    fn specific_response_channel(&self, uid: &str) -> String {
        format!("{}-response#{}#{}#", self.shared.key, self.nsp, uid)
    }

    pub(crate) fn subscriptions(&self) -> Vec<Subscription> {
        vec![
            Subscription::Pattern(format!("{}*", self.broadcast_channel())),
            Subscription::Channel(self.request_channel()),
            Subscription::Channel(self.response_channel()),
            Subscription::Channel(self.specific_response_channel(&self.uid)),
        ]
    }

    /// Routes a message that arrived on one of this namespace's channels.
    pub(crate) fn on_message(&self, channel: &str, payload: Bytes) {
        let bc = self.broadcast_channel();
        if let Some(rest) = channel.strip_prefix(bc.as_str()) {
            self.on_broadcast(rest, &payload);
        } else if channel == self.request_channel() {
            self.on_request(&payload);
        } else if channel.starts_with(self.response_channel().as_str()) {
            self.on_response(&payload);
        }
    }

    fn on_broadcast(&self, _room_suffix: &str, payload: &[u8]) {
        match wire::decode_classic_broadcast(payload, &self.nsp) {
            Ok((uid, packet, opts)) => {
                if uid == self.uid {
                    return;
                }
                if packet.nsp != self.nsp {
                    return;
                }
                self.local.broadcast(&packet, &opts);
            }
            Err(e) => tracing::debug!(nsp = %self.nsp, cause = %e, "ignoring a malformed broadcast"),
        }
    }

    /// True if socket `sid` is on this node (legacy requests are answered only by the
    /// node that has the socket, as in Node).
    fn has_local_socket(&self, sid: &str) -> bool {
        self.local.fetch_sockets(&BroadcastOptions::room(sid)).iter().any(|s| s.id == sid)
    }

    fn publish_response(&self, requester: Option<&str>, msg: Vec<u8>) {
        let channel = match (self.shared.specific_response_channel, requester) {
            (true, Some(uid)) => self.specific_response_channel(uid),
            _ => self.response_channel(),
        };
        if let Err(e) = self.shared.driver.publish(channel, Bytes::from(msg), false) {
            tracing::warn!(nsp = %self.nsp, cause = %e, "could not answer a request");
        }
    }

    fn on_request(&self, payload: &[u8]) {
        let (req, attachments) = match wire::decode_any(payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(nsp = %self.nsp, cause = %e, "ignoring a malformed request");
                return;
            }
        };
        let Some(t) = req.get("type").and_then(Json::as_u64) else { return };
        let uid = req.get("uid").and_then(Json::as_str);
        let own = uid == Some(self.uid.as_str());
        let request_id = req.get("requestId").and_then(Json::as_str).map(str::to_owned);
        let opts = wire::opts_from_json(req.get("opts"));
        match t {
            ty::SOCKETS => {
                if own {
                    return;
                }
                let Some(rid) = request_id else { return };
                let rooms = wire::rooms_from_json(req.get("rooms"));
                let opts = BroadcastOptions { rooms, ..Default::default() };
                let ids: Vec<String> = self.local.fetch_sockets(&opts).into_iter().map(|s| s.id).collect();
                self.publish_response(uid, wire::encode_json(&json!({"requestId": rid, "sockets": ids})));
            }
            ty::ALL_ROOMS => {
                if own {
                    return;
                }
                let Some(rid) = request_id else { return };
                let rooms = wire::rooms_to_json(&self.local.rooms());
                self.publish_response(uid, wire::encode_json(&json!({"requestId": rid, "rooms": rooms})));
            }
            ty::REMOTE_JOIN | ty::REMOTE_LEAVE => {
                if own {
                    return;
                }
                // legacy form: {requestId, sid, room}
                if let (Some(sid), Some(room)) = (req.get("sid").and_then(Json::as_str), req.get("room")) {
                    if !self.has_local_socket(sid) {
                        return;
                    }
                    let opts = BroadcastOptions::room(sid);
                    let rooms = wire::rooms_from_json(Some(&Json::Array(vec![room.clone()])));
                    if t == ty::REMOTE_JOIN {
                        self.local.add_sockets(&opts, &rooms);
                    } else {
                        self.local.del_sockets(&opts, &rooms);
                    }
                    if let Some(rid) = request_id {
                        self.publish_response(uid, wire::encode_json(&json!({"requestId": rid})));
                    }
                    return;
                }
                let rooms = wire::rooms_from_json(req.get("rooms"));
                if t == ty::REMOTE_JOIN {
                    self.local.add_sockets(&opts, &rooms);
                } else {
                    self.local.del_sockets(&opts, &rooms);
                }
            }
            ty::REMOTE_DISCONNECT => {
                if own {
                    return;
                }
                let close = req.get("close").and_then(Json::as_bool).unwrap_or(false);
                if let Some(sid) = req.get("sid").and_then(Json::as_str) {
                    if !self.has_local_socket(sid) {
                        return;
                    }
                    self.local.disconnect_sockets(&BroadcastOptions::room(sid), close);
                    if let Some(rid) = request_id {
                        self.publish_response(uid, wire::encode_json(&json!({"requestId": rid})));
                    }
                    return;
                }
                self.local.disconnect_sockets(&opts, close);
            }
            ty::REMOTE_FETCH => {
                if own {
                    return;
                }
                let Some(rid) = request_id else { return };
                let sockets = serde_json::to_value(self.local.fetch_sockets(&opts)).unwrap_or(Json::Array(vec![]));
                self.publish_response(uid, wire::encode_json(&json!({"requestId": rid, "sockets": sockets})));
            }
            ty::SERVER_SIDE_EMIT => {
                if own {
                    return;
                }
                let Some(data) = req.get("data").and_then(Json::as_array) else { return };
                let args = Args { values: data.clone(), attachments };
                match request_id {
                    None => {
                        self.local.server_side_emit(args, None);
                    }
                    Some(rid) => {
                        // answer once, with the first argument of the handler's answer
                        let (sink, mut rx) = channel_sink();
                        self.local.server_side_emit(args, Some(sink));
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
                            let data = args.values.first().cloned().unwrap_or(Json::Null);
                            let msg = json!({"type": ty::SERVER_SIDE_EMIT, "requestId": rid, "data": data});
                            let bytes = if wire::has_binary(&args) {
                                wire::encode_mp_from_json(&msg, &args.attachments)
                            } else {
                                wire::encode_json(&msg)
                            };
                            // always on the common response channel, as Node does
                            me.publish_response(None, bytes);
                        });
                    }
                }
            }
            ty::BROADCAST => {
                let Some(rid) = request_id else { return };
                if own || self.pending.lock().contains_key(&rid) {
                    return;
                }
                let Some(packet) = req.get("packet") else { return };
                let packet = match wire::packet_from_json(packet, &self.nsp) {
                    Ok(mut p) => {
                        if let Some(a) = match &mut p.data {
                            shoal_core::PacketData::Args(a) => Some(a),
                            _ => None,
                        } {
                            a.attachments = attachments;
                        }
                        p
                    }
                    Err(_) => return,
                };
                self.answer_broadcast_with_ack(uid.map(str::to_owned), rid, packet, opts);
            }
            _ => {}
        }
    }

    /// Delivers a remote broadcast-with-ack locally and reports: the client count (type
    /// 8, JSON) at once, then each answer (type 9, MessagePack), until the timeout.
    fn answer_broadcast_with_ack(
        &self,
        requester: Option<String>,
        rid: String,
        packet: Packet,
        opts: BroadcastOptions,
    ) {
        let (sink, mut rx) = channel_sink();
        let count = self.local.broadcast_with_ack(&packet, &opts, &sink);
        drop(sink);
        self.publish_response(
            requester.as_deref(),
            wire::encode_json(&json!({"type": ty::BROADCAST_CLIENT_COUNT, "requestId": rid, "clientCount": count})),
        );
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
                let first = r.args.values.first().cloned().unwrap_or(Json::Null);
                let msg = json!({"type": ty::BROADCAST_ACK, "requestId": rid, "packet": first});
                me.publish_response(requester.as_deref(), wire::encode_mp_from_json(&msg, &r.args.attachments));
            }
        });
    }

    fn on_response(&self, payload: &[u8]) {
        let Ok((msg, attachments)) = wire::decode_any(payload) else { return };
        let Some(rid) = msg.get("requestId").and_then(Json::as_str) else { return };
        let pending = self.pending.lock();
        match pending.get(rid) {
            Some(Pending::Acks(sink)) => match msg.get("type").and_then(Json::as_u64) {
                Some(ty::BROADCAST_CLIENT_COUNT) => {
                    sink.expect(msg.get("clientCount").and_then(Json::as_u64).unwrap_or(0) as usize)
                }
                Some(ty::BROADCAST_ACK) => {
                    let arg = msg.get("packet").cloned().unwrap_or(Json::Null);
                    sink.respond(None, Args { values: vec![arg], attachments });
                }
                _ => {}
            },
            Some(Pending::Collect(tx)) => {
                let _ = tx.send((msg, attachments));
            }
            None => {}
        }
    }

    fn register(&self, pending: Pending) -> Result<String, AdapterError> {
        let mut map = self.pending.lock();
        if map.len() >= self.shared.max_pending_requests {
            return Err(AdapterError::TooManyRequests);
        }
        let rid = uid2(6);
        map.insert(rid.clone(), pending);
        Ok(rid)
    }

    fn unregister(&self, rid: &str) {
        self.pending.lock().remove(rid);
    }

    /// Publishes a request, then gathers `expected` answers (at most the requests
    /// timeout).
    async fn request(
        &self,
        build: impl FnOnce(&str) -> Vec<u8>,
        expected: usize,
    ) -> Result<Vec<(Json, Vec<Bytes>)>, AdapterError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let rid = self.register(Pending::Collect(tx))?;
        let msg = build(&rid);
        let result = async {
            self.shared.driver.publish_wait(self.request_channel(), Bytes::from(msg), false).await?;
            let mut answers = Vec::with_capacity(expected);
            let deadline = tokio::time::Instant::now() + self.shared.requests_timeout;
            while answers.len() < expected {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(a)) => answers.push(a),
                    _ => return Err(AdapterError::Timeout),
                }
            }
            Ok(answers)
        }
        .await;
        self.unregister(&rid);
        result
    }

    /// Number of other nodes (within the requests timeout).
    async fn others(&self) -> Result<usize, AdapterError> {
        Ok(self.servers().await?.saturating_sub(1))
    }

    /// Number of nodes, this one included (within the requests timeout).
    async fn servers(&self) -> Result<usize, AdapterError> {
        tokio::time::timeout(self.shared.requests_timeout, self.shared.driver.num_sub(self.request_channel(), false))
            .await
            .map_err(|_| AdapterError::Timeout)?
    }

    fn publish_request(&self, msg: &Json) -> Result<(), AdapterError> {
        self.shared.driver.publish(self.request_channel(), Bytes::from(wire::encode_json(msg)), false)
    }
}

/// An [`AckSink`] and the receiving end of its events.
fn channel_sink() -> (AckSink, mpsc::UnboundedReceiver<AckEvent>) {
    AckSink::channel()
}

fn opts_json_targets(opts: &BroadcastOptions) -> Json {
    json!({"rooms": wire::rooms_to_json(&opts.rooms), "except": wire::rooms_to_json(&opts.except)})
}

impl Adapter for ClassicAdapter {
    fn local(&self) -> &Arc<dyn LocalNamespace> {
        &self.local
    }

    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        // the driver counts the subscription when called, in call order
        self.shared.driver.subscribe(self.subscriptions())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        let unsubscribed = self.shared.driver.unsubscribe(self.subscriptions());
        Box::pin(async move {
            if let Err(e) = unsubscribed.await {
                tracing::debug!(nsp = %self.nsp, cause = %e, "unsubscribe failed");
            }
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(self.servers())
    }

    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(), AdapterError> {
        self.local.broadcast(packet, opts);
        if opts.flags.local {
            return Ok(());
        }
        let channel = match opts.rooms.as_slice() {
            [room] => format!("{}{}#", self.broadcast_channel(), room),
            _ => self.broadcast_channel(),
        };
        let msg = wire::encode_classic_broadcast(&self.uid, packet, opts);
        self.shared.driver.publish(channel, Bytes::from(msg), false)
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
            let servers = match self.servers().await {
                Ok(n) => n.max(1),
                Err(e) => {
                    tracing::warn!(nsp = %self.nsp, cause = %e, "broadcast with ack reached this node only");
                    return Ok(1);
                }
            };
            let rid = self.register(Pending::Acks(sink))?;
            let packet_json = wire::packet_to_json(packet);
            let attachments = packet.args().map(|a| a.attachments.clone()).unwrap_or_default();
            let msg = json!({
                "uid": self.uid,
                "requestId": rid,
                "type": ty::BROADCAST,
                "packet": packet_json,
                "opts": wire::opts_to_json(opts),
            });
            let sent = self.shared.driver.publish(
                self.request_channel(),
                Bytes::from(wire::encode_mp_from_json(&msg, &attachments)),
                false,
            );
            // forget the request once the collector is done (all answers in, or it gave
            // up), or at the latest after the timeout
            let timeout = opts.timeout.unwrap_or(self.shared.requests_timeout);
            let me = self.me.clone();
            let rid2 = rid.clone();
            let watch = self.pending.lock().get(&rid).and_then(|p| match p {
                Pending::Acks(sink) => Some(sink.clone()),
                Pending::Collect(_) => None,
            });
            tokio::spawn(async move {
                match watch {
                    Some(sink) => {
                        let _ = tokio::time::timeout(timeout, sink.closed()).await;
                    }
                    None => tokio::time::sleep(timeout).await,
                }
                if let Some(me) = me.upgrade() {
                    me.unregister(&rid2);
                }
            });
            match sent {
                Ok(()) => Ok(servers),
                Err(e) => {
                    self.unregister(&rid);
                    Err(e)
                }
            }
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
            let target = opts_json_targets(opts);
            let answers = self
                .request(
                    |rid| {
                        wire::encode_json(
                            &json!({"uid": self.uid, "requestId": rid, "type": ty::REMOTE_FETCH, "opts": target}),
                        )
                    },
                    expected,
                )
                .await?;
            for (a, _) in answers {
                if let Some(list) = a.get("sockets").cloned()
                    && let Ok(remote) = serde_json::from_value::<Vec<SocketInfo>>(list)
                {
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
        let r = if opts.flags.local {
            Ok(())
        } else {
            let msg = json!({"uid": self.uid, "type": ty::REMOTE_JOIN, "opts": opts_json_targets(opts), "rooms": wire::rooms_to_json(rooms)});
            self.publish_request(&msg)
        };
        Box::pin(async move { r })
    }

    fn del_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        rooms: &'a [Room],
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        self.local.del_sockets(opts, rooms);
        let r = if opts.flags.local {
            Ok(())
        } else {
            let msg = json!({"uid": self.uid, "type": ty::REMOTE_LEAVE, "opts": opts_json_targets(opts), "rooms": wire::rooms_to_json(rooms)});
            self.publish_request(&msg)
        };
        Box::pin(async move { r })
    }

    fn disconnect_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        self.local.disconnect_sockets(opts, close);
        let r = if opts.flags.local {
            Ok(())
        } else {
            let msg = json!({"uid": self.uid, "type": ty::REMOTE_DISCONNECT, "opts": opts_json_targets(opts), "close": close});
            self.publish_request(&msg)
        };
        Box::pin(async move { r })
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move {
            let mut rooms = self.local.rooms();
            let expected = self.others().await?;
            if expected > 0 {
                let answers = self
                    .request(
                        |rid| wire::encode_json(&json!({"uid": self.uid, "requestId": rid, "type": ty::ALL_ROOMS})),
                        expected,
                    )
                    .await?;
                for (a, _) in answers {
                    rooms.extend(wire::rooms_from_json(a.get("rooms")));
                }
            }
            rooms.sort();
            rooms.dedup();
            Ok(rooms)
        })
    }

    fn server_side_emit(&self, args: Args) -> Result<(), AdapterError> {
        let msg = json!({"uid": self.uid, "type": ty::SERVER_SIDE_EMIT, "data": args.values});
        let bytes = if wire::has_binary(&args) {
            wire::encode_mp_from_json(&msg, &args.attachments)
        } else {
            wire::encode_json(&msg)
        };
        self.shared.driver.publish(self.request_channel(), Bytes::from(bytes), false)
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
            let (tx, mut rx) = mpsc::unbounded_channel();
            let rid = self.register(Pending::Collect(tx))?;
            let msg = json!({"uid": self.uid, "requestId": rid, "type": ty::SERVER_SIDE_EMIT, "data": args.values});
            let bytes = if wire::has_binary(&args) {
                wire::encode_mp_from_json(&msg, &args.attachments)
            } else {
                wire::encode_json(&msg)
            };
            let result = async {
                self.shared.driver.publish_wait(self.request_channel(), Bytes::from(bytes), false).await?;
                let mut out = Vec::new();
                let deadline = tokio::time::Instant::now() + timeout;
                while out.len() < expected {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some((a, att))) => {
                            if a.get("type").and_then(Json::as_u64) == Some(ty::SERVER_SIDE_EMIT) {
                                let v = a.get("data").cloned().unwrap_or(Json::Null);
                                out.push(AckResponse {
                                    socket: None,
                                    args: Args { values: vec![v], attachments: att },
                                });
                            }
                        }
                        _ => return Err(AdapterError::AckTimeout { responses: out, expected }),
                    }
                }
                Ok(out)
            }
            .await;
            self.unregister(&rid);
            result
        })
    }
}
