//! The messages of socket.io-adapter's `ClusterAdapter` (2.5.x), which Node's sharded
//! Redis adapter (`createShardedAdapter`) exchanges. Pure functions, no IO.
//!
//! Every message is `{type, data?, uid, nsp}` (keys in that order, as Node builds them):
//! `type` is one of [`ty`], `uid` the sender adapter's id and `nsp` its namespace.
//!
//! Encoding (`doPublish` of Node's sharded adapter): a message whose type may carry binary
//! (BROADCAST, BROADCAST_ACK, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT,
//! SERVER_SIDE_EMIT_RESPONSE) **and** whose `data` holds binary is MessagePack (as
//! `notepack.io` writes it) of the whole message; anything else is `JSON.stringify`d.
//! Decoding: first byte `{` means JSON, anything else MessagePack.
//!
//! Binary is kept as Socket.IO placeholders plus attachments on the Shoal side
//! ([`Args`]) and becomes MessagePack `bin` on the wire.

use bytes::Bytes;
use serde_json::{Map, Value as Json, json};
use shoal_core::{Args, BroadcastOptions, Packet, PacketData, Room, SocketInfo};

use crate::wire::{self, WireError};

/// Message types (wire values).
pub mod ty {
    /// A node announces itself (heartbeat variant of the adapter only).
    pub const INITIAL_HEARTBEAT: u64 = 1;
    /// A node is alive (heartbeat variant only).
    pub const HEARTBEAT: u64 = 2;
    /// A broadcast, with or without acknowledgements.
    pub const BROADCAST: u64 = 3;
    /// Matching sockets join rooms.
    pub const SOCKETS_JOIN: u64 = 4;
    /// Matching sockets leave rooms.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// Matching sockets are disconnected.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// A request for the matching sockets.
    pub const FETCH_SOCKETS: u64 = 7;
    /// The answer to [`FETCH_SOCKETS`].
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// An event for the other nodes' server-side handlers.
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// The answer of one node to a [`SERVER_SIDE_EMIT`] with acknowledgement.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many clients of a node got a broadcast with acknowledgements.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One client's acknowledgement of a broadcast.
    pub const BROADCAST_ACK: u64 = 12;
    /// A node leaves (heartbeat variant only).
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// What a message says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// `INITIAL_HEARTBEAT` (1), no data.
    InitialHeartbeat,
    /// `HEARTBEAT` (2), no data.
    Heartbeat,
    /// `BROADCAST` (3): `{packet, requestId?, opts}`; `request_id` present for a broadcast
    /// with acknowledgements. The packet is an EVENT (`{type: 2, data: [event, …args]}`).
    Broadcast {
        /// The EVENT packet.
        packet: Packet,
        /// Targets and flags.
        opts: BroadcastOptions,
        /// Set for a broadcast with acknowledgements.
        request_id: Option<String>,
    },
    /// `SOCKETS_JOIN` (4): `{opts, rooms}`.
    SocketsJoin {
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms to join.
        rooms: Vec<Room>,
    },
    /// `SOCKETS_LEAVE` (5): `{opts, rooms}`.
    SocketsLeave {
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms to leave.
        rooms: Vec<Room>,
    },
    /// `DISCONNECT_SOCKETS` (6): `{opts, close}`.
    DisconnectSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Also close the underlying connections.
        close: bool,
    },
    /// `FETCH_SOCKETS` (7): `{opts, requestId}`.
    FetchSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// The request.
        request_id: String,
    },
    /// `FETCH_SOCKETS_RESPONSE` (8): `{requestId, sockets: [{id, handshake, rooms, data}]}`.
    FetchSocketsResponse {
        /// The request answered.
        request_id: String,
        /// The matching sockets of the answering node.
        sockets: Vec<SocketInfo>,
    },
    /// `SERVER_SIDE_EMIT` (9): `{requestId?, packet: [event, …args]}`.
    ServerSideEmit {
        /// `[event, …args]`.
        args: Args,
        /// Set when the emitter waits for answers.
        request_id: Option<String>,
    },
    /// `SERVER_SIDE_EMIT_RESPONSE` (10): `{requestId, packet: <first answer argument>}`.
    ServerSideEmitResponse {
        /// The request answered.
        request_id: String,
        /// The answer: one value (none when Node's callback got `undefined`).
        value: Args,
    },
    /// `BROADCAST_CLIENT_COUNT` (11): `{requestId, clientCount}`.
    BroadcastClientCount {
        /// The broadcast.
        request_id: String,
        /// How many clients of the node got it.
        client_count: u64,
    },
    /// `BROADCAST_ACK` (12): `{requestId, packet: <first ack argument>}`.
    BroadcastAck {
        /// The broadcast.
        request_id: String,
        /// The acknowledgement: one value (none for `undefined`).
        value: Args,
    },
    /// `ADAPTER_CLOSE` (13), no data.
    AdapterClose,
}

impl Body {
    /// The wire value of the message type.
    pub fn type_id(&self) -> u64 {
        match self {
            Body::InitialHeartbeat => ty::INITIAL_HEARTBEAT,
            Body::Heartbeat => ty::HEARTBEAT,
            Body::Broadcast { .. } => ty::BROADCAST,
            Body::SocketsJoin { .. } => ty::SOCKETS_JOIN,
            Body::SocketsLeave { .. } => ty::SOCKETS_LEAVE,
            Body::DisconnectSockets { .. } => ty::DISCONNECT_SOCKETS,
            Body::FetchSockets { .. } => ty::FETCH_SOCKETS,
            Body::FetchSocketsResponse { .. } => ty::FETCH_SOCKETS_RESPONSE,
            Body::ServerSideEmit { .. } => ty::SERVER_SIDE_EMIT,
            Body::ServerSideEmitResponse { .. } => ty::SERVER_SIDE_EMIT_RESPONSE,
            Body::BroadcastClientCount { .. } => ty::BROADCAST_CLIENT_COUNT,
            Body::BroadcastAck { .. } => ty::BROADCAST_ACK,
            Body::AdapterClose => ty::ADAPTER_CLOSE,
        }
    }

    /// True for the answers to a request (types 8, 10, 11, 12).
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            Body::FetchSocketsResponse { .. }
                | Body::ServerSideEmitResponse { .. }
                | Body::BroadcastClientCount { .. }
                | Body::BroadcastAck { .. }
        )
    }

    /// True if the type may carry binary (then binary data makes it MessagePack).
    pub fn may_carry_binary(&self) -> bool {
        matches!(
            self,
            Body::Broadcast { .. }
                | Body::BroadcastAck { .. }
                | Body::FetchSocketsResponse { .. }
                | Body::ServerSideEmit { .. }
                | Body::ServerSideEmitResponse { .. }
        )
    }
}

/// One `ClusterAdapter` message.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterMessage {
    /// The sender adapter's uid (`None` if absent on the wire).
    pub uid: Option<String>,
    /// The sender's namespace (`None` if absent: pre-2.5.6 senders).
    pub nsp: Option<String>,
    /// What it says.
    pub body: Body,
}

impl ClusterMessage {
    /// A message from `uid` in `nsp`.
    pub fn new(uid: &str, nsp: &str, body: Body) -> ClusterMessage {
        ClusterMessage { uid: Some(uid.to_owned()), nsp: Some(nsp.to_owned()), body }
    }
}

/// `{"type":2,"data":[…]}`: the packet as Node publishes it (before the adapter adds `nsp`).
fn packet_json(packet: &Packet) -> Json {
    json!({"type": 2, "data": packet.args().map(|a| a.values.clone()).unwrap_or_default()})
}

fn args_of(packet: &Packet) -> &[Bytes] {
    packet.args().map_or(&[], |a| a.attachments.as_slice())
}

/// `value.values[0]` (absent for none), and the attachments.
fn first_value(value: &Args) -> Option<&Json> {
    value.values.first()
}

/// The JSON form of `msg` (placeholders where binary goes) and the attachments those
/// placeholders point to.
pub fn to_json(msg: &ClusterMessage) -> (Json, Vec<Bytes>) {
    let mut attachments: Vec<Bytes> = Vec::new();
    let data: Option<Json> = match &msg.body {
        Body::InitialHeartbeat | Body::Heartbeat | Body::AdapterClose => None,
        Body::Broadcast { packet, opts, request_id } => {
            attachments.extend_from_slice(args_of(packet));
            let mut d = Map::new();
            d.insert("packet".into(), packet_json(packet));
            if let Some(rid) = request_id {
                d.insert("requestId".into(), Json::String(rid.clone()));
            }
            d.insert("opts".into(), wire::opts_to_json(opts));
            Some(Json::Object(d))
        }
        Body::SocketsJoin { opts, rooms } | Body::SocketsLeave { opts, rooms } => {
            Some(json!({"opts": wire::opts_to_json(opts), "rooms": wire::rooms_to_json(rooms)}))
        }
        Body::DisconnectSockets { opts, close } => Some(json!({"opts": wire::opts_to_json(opts), "close": close})),
        Body::FetchSockets { opts, request_id } => {
            Some(json!({"opts": wire::opts_to_json(opts), "requestId": request_id}))
        }
        Body::FetchSocketsResponse { request_id, sockets } => Some(json!({
            "requestId": request_id,
            "sockets": serde_json::to_value(sockets).unwrap_or_else(|_| Json::Array(Vec::new())),
        })),
        Body::ServerSideEmit { args, request_id } => {
            attachments.extend_from_slice(&args.attachments);
            let mut d = Map::new();
            if let Some(rid) = request_id {
                d.insert("requestId".into(), Json::String(rid.clone()));
            }
            d.insert("packet".into(), Json::Array(args.values.clone()));
            Some(Json::Object(d))
        }
        Body::ServerSideEmitResponse { request_id, value } | Body::BroadcastAck { request_id, value } => {
            attachments.extend_from_slice(&value.attachments);
            let mut d = Map::new();
            d.insert("requestId".into(), Json::String(request_id.clone()));
            // JSON.stringify drops an `undefined` answer
            if let Some(v) = first_value(value) {
                d.insert("packet".into(), v.clone());
            }
            Some(Json::Object(d))
        }
        Body::BroadcastClientCount { request_id, client_count } => {
            Some(json!({"requestId": request_id, "clientCount": client_count}))
        }
    };
    let mut m = Map::new();
    m.insert("type".into(), Json::from(msg.body.type_id()));
    if let Some(d) = data {
        m.insert("data".into(), d);
    }
    if let Some(uid) = &msg.uid {
        m.insert("uid".into(), Json::String(uid.clone()));
    }
    if let Some(nsp) = &msg.nsp {
        m.insert("nsp".into(), Json::String(nsp.clone()));
    }
    (Json::Object(m), attachments)
}

/// True if `v` holds a placeholder pointing into `attachments` (then it carries binary).
pub fn has_binary(v: &Json, attachments: &[Bytes]) -> bool {
    if attachments.is_empty() {
        return false;
    }
    match v {
        Json::Array(a) => a.iter().any(|x| has_binary(x, attachments)),
        Json::Object(m) => {
            if shoal_core::placeholder_index(v).is_some_and(|i| i < attachments.len()) {
                return true;
            }
            m.values().any(|x| has_binary(x, attachments))
        }
        _ => false,
    }
}

/// Encodes a message as Node's sharded adapter does: MessagePack when its type may carry
/// binary and it does, JSON otherwise.
pub fn encode(msg: &ClusterMessage) -> Vec<u8> {
    let (j, attachments) = to_json(msg);
    let binary = msg.body.may_carry_binary() && j.get("data").is_some_and(|d| has_binary(d, &attachments));
    if binary { wire::encode_mp_from_json(&j, &attachments) } else { wire::encode_json(&j) }
}

fn err(msg: impl Into<String>) -> WireError {
    WireError(msg.into())
}

fn str_field(d: &Json, key: &str) -> Option<String> {
    d.get(key).and_then(Json::as_str).map(str::to_owned)
}

fn request_id(d: &Json) -> Result<String, WireError> {
    str_field(d, "requestId").ok_or_else(|| err("missing requestId"))
}

/// Replaces placeholders by the JSON form Node gives a `Buffer` (`{"type":"Buffer",
/// "data":[…]}`), for values that cannot keep attachments (socket data).
fn inline_buffers(v: &mut Json, attachments: &[Bytes]) {
    if let Some(i) = shoal_core::placeholder_index(v)
        && let Some(b) = attachments.get(i)
    {
        *v = json!({"type": "Buffer", "data": b.to_vec()});
        return;
    }
    match v {
        Json::Array(a) => a.iter_mut().for_each(|x| inline_buffers(x, attachments)),
        Json::Object(m) => m.values_mut().for_each(|x| inline_buffers(x, attachments)),
        _ => {}
    }
}

/// Decodes a message (JSON if the first byte is `{`, MessagePack otherwise).
///
/// # Errors
/// When the bytes are neither, or the message lacks what its type needs. Unknown types
/// are errors too (receivers ignore them).
pub fn decode(bytes: &[u8]) -> Result<ClusterMessage, WireError> {
    let (j, attachments) = wire::decode_any(bytes)?;
    if !j.is_object() {
        return Err(err("message is not an object"));
    }
    let t = j.get("type").and_then(Json::as_u64).ok_or_else(|| err("missing type"))?;
    let uid = str_field(&j, "uid");
    let nsp = str_field(&j, "nsp");
    let null = Json::Null;
    let d = j.get("data").unwrap_or(&null);
    let opts = || wire::opts_from_json(d.get("opts"));
    let body = match t {
        ty::INITIAL_HEARTBEAT => Body::InitialHeartbeat,
        ty::HEARTBEAT => Body::Heartbeat,
        ty::ADAPTER_CLOSE => Body::AdapterClose,
        ty::BROADCAST => {
            let p = d.get("packet").ok_or_else(|| err("missing packet"))?;
            let mut packet = wire::packet_from_json(p, nsp.as_deref().unwrap_or("/"))?;
            packet.id = None;
            if let PacketData::Args(a) = &mut packet.data {
                a.attachments = attachments;
            }
            Body::Broadcast { packet, opts: opts(), request_id: str_field(d, "requestId") }
        }
        ty::SOCKETS_JOIN => Body::SocketsJoin { opts: opts(), rooms: wire::rooms_from_json(d.get("rooms")) },
        ty::SOCKETS_LEAVE => Body::SocketsLeave { opts: opts(), rooms: wire::rooms_from_json(d.get("rooms")) },
        ty::DISCONNECT_SOCKETS => {
            Body::DisconnectSockets { opts: opts(), close: d.get("close").and_then(Json::as_bool).unwrap_or(false) }
        }
        ty::FETCH_SOCKETS => Body::FetchSockets { opts: opts(), request_id: request_id(d)? },
        ty::FETCH_SOCKETS_RESPONSE => {
            let list = d.get("sockets").and_then(Json::as_array).ok_or_else(|| err("missing sockets"))?;
            let sockets = list
                .iter()
                .filter_map(|s| {
                    let mut s = s.clone();
                    if !attachments.is_empty() {
                        inline_buffers(&mut s, &attachments);
                    }
                    serde_json::from_value::<SocketInfo>(s).ok()
                })
                .collect();
            Body::FetchSocketsResponse { request_id: request_id(d)?, sockets }
        }
        ty::SERVER_SIDE_EMIT => {
            let values = d.get("packet").and_then(Json::as_array).ok_or_else(|| err("packet is not an array"))?;
            Body::ServerSideEmit {
                args: Args { values: values.clone(), attachments },
                request_id: str_field(d, "requestId"),
            }
        }
        ty::SERVER_SIDE_EMIT_RESPONSE | ty::BROADCAST_ACK => {
            let values = d.get("packet").map(|v| vec![v.clone()]).unwrap_or_default();
            let value = Args { values, attachments };
            let request_id = request_id(d)?;
            if t == ty::BROADCAST_ACK {
                Body::BroadcastAck { request_id, value }
            } else {
                Body::ServerSideEmitResponse { request_id, value }
            }
        }
        ty::BROADCAST_CLIENT_COUNT => Body::BroadcastClientCount {
            request_id: request_id(d)?,
            client_count: d.get("clientCount").and_then(Json::as_u64).ok_or_else(|| err("missing clientCount"))?,
        },
        other => return Err(err(format!("unknown message type {other}"))),
    };
    Ok(ClusterMessage { uid, nsp, body })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
    }

    fn ev(values: Json) -> Args {
        Args::from_values(values.as_array().unwrap().clone())
    }

    /// JSON messages, byte for byte as Node's `JSON.stringify` writes them.
    #[test]
    fn json_messages_match_node() {
        let mut to_room = BroadcastOptions::room("room1");
        to_room.except.push(Room::from("x"));
        let with_timeout = BroadcastOptions { timeout: Some(Duration::from_millis(2000)), ..Default::default() };
        let cases: Vec<(Body, &str)> = vec![
            (Body::InitialHeartbeat, r#"{"type":1,"uid":"u1","nsp":"/"}"#),
            (Body::Heartbeat, r#"{"type":2,"uid":"u1","nsp":"/"}"#),
            (Body::AdapterClose, r#"{"type":13,"uid":"u1","nsp":"/"}"#),
            (
                Body::Broadcast {
                    packet: Packet::event("/", ev(json!(["hello", "world"])), None),
                    opts: BroadcastOptions::default(),
                    request_id: None,
                },
                r#"{"type":3,"data":{"packet":{"type":2,"data":["hello","world"]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::Broadcast {
                    packet: Packet::event("/", ev(json!(["e", 1, {"a": null}])), None),
                    opts: to_room.clone(),
                    request_id: None,
                },
                r#"{"type":3,"data":{"packet":{"type":2,"data":["e",1,{"a":null}]},"opts":{"rooms":["room1"],"except":["x"],"flags":{}}},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::Broadcast {
                    packet: Packet::event("/", ev(json!(["e"])), None),
                    opts: with_timeout,
                    request_id: Some("0123456789abcdef".into()),
                },
                r#"{"type":3,"data":{"packet":{"type":2,"data":["e"]},"requestId":"0123456789abcdef","opts":{"rooms":[],"except":[],"flags":{"timeout":2000}}},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::SocketsJoin { opts: to_room.clone(), rooms: vec![Room::from("a"), Room::from("b")] },
                r#"{"type":4,"data":{"opts":{"rooms":["room1"],"except":["x"],"flags":{}},"rooms":["a","b"]},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::SocketsLeave { opts: BroadcastOptions::default(), rooms: vec![Room::from("a")] },
                r#"{"type":5,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["a"]},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::DisconnectSockets { opts: BroadcastOptions::default(), close: true },
                r#"{"type":6,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"close":true},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::FetchSockets { opts: BroadcastOptions::room("r"), request_id: "rid".into() },
                r#"{"type":7,"data":{"opts":{"rooms":["r"],"except":[],"flags":{}},"requestId":"rid"},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::FetchSocketsResponse {
                    request_id: "rid".into(),
                    sockets: vec![SocketInfo {
                        id: "s1".into(),
                        handshake: json!({"url": "/"}),
                        rooms: vec![Room::from("s1"), Room::from("r")],
                        data: json!({"k": 1}),
                    }],
                },
                r#"{"type":8,"data":{"requestId":"rid","sockets":[{"id":"s1","handshake":{"url":"/"},"rooms":["s1","r"],"data":{"k":1}}]},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::ServerSideEmit { args: ev(json!(["hi", 1])), request_id: None },
                r#"{"type":9,"data":{"packet":["hi",1]},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::ServerSideEmit { args: ev(json!(["hi"])), request_id: Some("rid".into()) },
                r#"{"type":9,"data":{"requestId":"rid","packet":["hi"]},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::ServerSideEmitResponse { request_id: "rid".into(), value: ev(json!(["node-1"])) },
                r#"{"type":10,"data":{"requestId":"rid","packet":"node-1"},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::ServerSideEmitResponse { request_id: "rid".into(), value: Args::default() },
                r#"{"type":10,"data":{"requestId":"rid"},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::BroadcastClientCount { request_id: "rid".into(), client_count: 3 },
                r#"{"type":11,"data":{"requestId":"rid","clientCount":3},"uid":"u1","nsp":"/"}"#,
            ),
            (
                Body::BroadcastAck { request_id: "rid".into(), value: ev(json!([{"ok": true}])) },
                r#"{"type":12,"data":{"requestId":"rid","packet":{"ok":true}},"uid":"u1","nsp":"/"}"#,
            ),
        ];
        for (body, want) in cases {
            let msg = ClusterMessage::new("u1", "/", body);
            let bytes = encode(&msg);
            assert_eq!(text(&bytes), want);
            assert_eq!(decode(&bytes).unwrap(), msg, "{want}");
        }
    }

    #[test]
    fn binary_makes_messagepack_of_the_whole_message() {
        let args = Args {
            values: vec![json!("file"), json!({"_placeholder": true, "num": 0})],
            attachments: vec![Bytes::from_static(&[1, 2, 3])],
        };
        let msg = ClusterMessage::new(
            "u1",
            "/",
            Body::Broadcast {
                packet: Packet::event("/", args, None),
                opts: BroadcastOptions::default(),
                request_id: None,
            },
        );
        let bytes = encode(&msg);
        // {type:3, data:{packet:{type:2, data:["file", <bin 010203>]}, opts:{rooms:[], except:[], flags:{}}}, uid:"u1", nsp:"/"}
        assert_eq!(
            hex(&bytes),
            "84 a4 74 79 70 65 03 a4 64 61 74 61 82 a6 70 61 63 6b 65 74 82 a4 74 79 70 65 02 a4 64 61 74 61 92 a4 66 \
             69 6c 65 c4 03 01 02 03 a4 6f 70 74 73 83 a5 72 6f 6f 6d 73 90 a6 65 78 63 65 70 74 90 a5 66 6c 61 67 73 \
             80 a3 75 69 64 a2 75 31 a3 6e 73 70 a1 2f"
        );
        assert_eq!(decode(&bytes).unwrap(), msg);

        // the same types without binary stay JSON; types that cannot carry binary stay JSON
        // even with attachments lying around
        let ack =
            Args { values: vec![json!({"_placeholder": true, "num": 0})], attachments: vec![Bytes::from_static(b"x")] };
        let m = ClusterMessage::new("u1", "/", Body::BroadcastAck { request_id: "r".into(), value: ack.clone() });
        assert_eq!(encode(&m)[0], 0x84);
        assert_eq!(decode(&encode(&m)).unwrap(), m);
        let m = ClusterMessage::new("u1", "/", Body::ServerSideEmitResponse { request_id: "r".into(), value: ack });
        assert_eq!(decode(&encode(&m)).unwrap(), m);
        let unused = Args { values: vec![json!("e"), json!(1)], attachments: vec![Bytes::from_static(b"x")] };
        let m = ClusterMessage::new("u1", "/", Body::ServerSideEmit { args: unused, request_id: None });
        assert_eq!(encode(&m)[0], b'{');
    }

    #[test]
    fn node_messagepack_decodes() {
        // what notepack writes for a server-side emit with a Buffer and a request id:
        // {type:9, data:{requestId:"r1", packet:["ev", <bin ff>, 1.5, -2]}, uid:"n", nsp:"/a"}
        let bytes: &[u8] =
            b"\x84\xa4type\x09\xa4data\x82\xa9requestId\xa2r1\xa6packet\x94\xa2ev\xc4\x01\xff\xcb\x3f\xf8\
            \x00\x00\x00\x00\x00\x00\xfe\xa3uid\xa1n\xa3nsp\xa2/a";
        let m = decode(bytes).unwrap();
        assert_eq!(m.uid.as_deref(), Some("n"));
        assert_eq!(m.nsp.as_deref(), Some("/a"));
        let Body::ServerSideEmit { args, request_id } = m.body else { panic!("{m:?}") };
        assert_eq!(request_id.as_deref(), Some("r1"));
        assert_eq!(args.values, vec![json!("ev"), json!({"_placeholder": true, "num": 0}), json!(1.5), json!(-2)]);
        assert_eq!(args.attachments, vec![Bytes::from_static(&[0xff])]);

        // numeric rooms (JavaScript `io.to(123)`) and a packet without nsp
        let j = br#"{"type":3,"data":{"packet":{"type":2,"data":["e"]},"opts":{"rooms":[123],"except":[],"flags":{"volatile":true}}},"uid":"n","nsp":"/"}"#;
        let Body::Broadcast { packet, opts, request_id } = decode(j).unwrap().body else { panic!() };
        assert_eq!((packet.nsp.as_ref(), request_id), ("/", None));
        assert_eq!(opts.rooms, vec![Room::from("123")]);
        assert!(opts.flags.volatile);

        // binary inside the data of fetched sockets becomes Buffer JSON
        let v = json!({"type": 8, "data": {"requestId": "r", "sockets": [
            {"id": "s", "handshake": {}, "rooms": ["s"], "data": {"b": {"_placeholder": true, "num": 0}}}
        ]}, "uid": "n", "nsp": "/"});
        let bytes = wire::encode_mp_from_json(&v, &[Bytes::from_static(&[7, 8])]);
        let Body::FetchSocketsResponse { sockets, .. } = decode(&bytes).unwrap().body else { panic!() };
        assert_eq!(sockets[0].data, json!({"b": {"type": "Buffer", "data": [7, 8]}}));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let cases: [&[u8]; 9] = [
            b"",
            b"{",
            b"[1]",
            br#"{"type":"3"}"#,
            br#"{"type":99,"uid":"u"}"#,
            br#"{"type":3,"data":{"packet":{"type":2}}}"#,
            br#"{"type":7,"data":{"opts":{}}}"#,
            br#"{"type":9,"data":{"packet":"x"}}"#,
            b"\xdd\xff\xff\xff\xff",
        ];
        for c in cases {
            assert!(decode(c).is_err(), "{c:?}");
        }
        // an old sender without nsp still decodes (the adapter decides to drop it)
        let m = decode(br#"{"type":6,"data":{"opts":{"rooms":[],"except":[]}},"uid":"u"}"#).unwrap();
        assert_eq!(m.nsp, None);
        assert_eq!(m.body, Body::DisconnectSockets { opts: BroadcastOptions::default(), close: false });
    }
}
