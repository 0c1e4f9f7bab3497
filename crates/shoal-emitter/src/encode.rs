//! The messages, as Node writes them. Pure functions.
//!
//! Classic (`@socket.io/redis-emitter` 5.1):
//! - emit: MessagePack `["emitter", {type: 2, data: [event, …args], nsp}, {rooms, flags,
//!   except}]` on `<key>#<nsp>#`, or `<key>#<nsp>#<room>#` when there is exactly one room;
//! - join / leave / disconnect: JSON `{type: 2|3, opts: {rooms, except}, rooms}` /
//!   `{type: 4, opts: {rooms, except}, close}` on `<key>-request#<nsp>#`, without uid;
//! - server-side emit: JSON `{uid: "emitter", type: 6, data: [event, …args]}` on the same
//!   channel (binary as `JSON.stringify` renders a Buffer: `{"type":"Buffer","data":[…]}`).
//!
//! Sharded (`ClusterAdapter` messages, `SPUBLISH`): `{uid: "emitter", nsp, type, data}`,
//! JSON, or MessagePack when a broadcast or server-side emit carries binary:
//! BROADCAST (3) `{packet: {type: 2, data}, opts: {rooms, except, flags}}`, SOCKETS_JOIN
//! (4) / SOCKETS_LEAVE (5) `{opts, rooms}`, DISCONNECT_SOCKETS (6) `{opts, close}`,
//! SERVER_SIDE_EMIT (9) `{packet: [event, …args]}`; on `<key>#<nsp>#`, except broadcasts
//! to exactly one room in the dynamic subscription modes, which go to
//! `<key>#<nsp>#<room>#` as the sharded adapter decides it — but a room that looks like a
//! socket id (20 UTF-16 code units) stays on the main channel in `dynamic-private` too,
//! as Shoal's sharded adapter does: every node reads the main channel, while Shoal nodes
//! do not subscribe socket-id channels.
//!
//! Numbers follow JavaScript: a float without fractional part (within ±2^53) is written as
//! the integer it is, as `notepack.io` and `JSON.stringify` do.

use bytes::Bytes;
use rmpv::Value as Mp;
use serde_json::{Map, Value as Json, json};
use shoal_core::{Args, Room, placeholder_index};
use shoal_redis::sharded::looks_like_socket_id;
use shoal_redis::wire;

use crate::{EMITTER_UID, EmitterMode, Flags, Publication, SubscriptionMode};

/// Who an operation is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) key: &'a str,
    pub(crate) mode: EmitterMode,
    pub(crate) nsp: &'a str,
    pub(crate) rooms: &'a [Room],
    pub(crate) except: &'a [Room],
    pub(crate) flags: &'a Flags,
}

/// Classic request types.
mod request {
    pub(super) const REMOTE_JOIN: u8 = 2;
    pub(super) const REMOTE_LEAVE: u8 = 3;
    pub(super) const REMOTE_DISCONNECT: u8 = 4;
    pub(super) const SERVER_SIDE_EMIT: u8 = 6;
}

/// `ClusterAdapter` message types.
mod cluster {
    pub(super) const BROADCAST: u8 = 3;
    pub(super) const SOCKETS_JOIN: u8 = 4;
    pub(super) const SOCKETS_LEAVE: u8 = 5;
    pub(super) const DISCONNECT_SOCKETS: u8 = 6;
    pub(super) const SERVER_SIDE_EMIT: u8 = 9;
}

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Rewrites integral floats as integers, as JavaScript sees them.
fn normalize_numbers(v: &mut Json) {
    match v {
        Json::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= MAX_SAFE_INTEGER
            {
                // exact: within ±2^53
                *v = Json::from(f as i64);
            }
        }
        Json::Array(a) => a.iter_mut().for_each(normalize_numbers),
        Json::Object(m) => m.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// Event data (`[event, …args]`) ready to encode.
fn event_data(mut args: Args) -> (Vec<Json>, Vec<Bytes>) {
    args.values.iter_mut().for_each(normalize_numbers);
    (args.values, args.attachments)
}

fn mp_rooms(rooms: &[Room]) -> Mp {
    Mp::Array(rooms.iter().map(|r| Mp::from(r.as_str())).collect())
}

fn mp_flags(flags: &Flags) -> Mp {
    Mp::Map(flags.0.iter().map(|(k, v)| (Mp::from(*k), Mp::Boolean(*v))).collect())
}

fn json_flags(flags: &Flags) -> Json {
    Json::Object(flags.0.iter().map(|(k, v)| ((*k).to_owned(), Json::Bool(*v))).collect())
}

/// `{rooms, except}` (classic requests).
fn json_targets(t: &Target<'_>) -> Json {
    json!({"rooms": wire::rooms_to_json(t.rooms), "except": wire::rooms_to_json(t.except)})
}

/// `{rooms, except, flags}` (ClusterAdapter's `encodeOptions`).
fn json_opts(t: &Target<'_>) -> Json {
    json!({
        "rooms": wire::rooms_to_json(t.rooms),
        "except": wire::rooms_to_json(t.except),
        "flags": json_flags(t.flags),
    })
}

fn main_channel(t: &Target<'_>) -> String {
    format!("{}#{}#", t.key, t.nsp)
}

fn room_channel(t: &Target<'_>, room: &Room) -> String {
    format!("{}#{}#{}#", t.key, t.nsp, room)
}

fn request_channel(t: &Target<'_>) -> String {
    format!("{}-request#{}#", t.key, t.nsp)
}

fn classic(channel: String, payload: Vec<u8>) -> Publication {
    Publication { channel, payload: Bytes::from(payload), sharded: false }
}

/// A `ClusterAdapter` message on `channel`: JSON, or MessagePack when there is binary.
fn sharded(t: &Target<'_>, channel: String, ty: u8, data: Json, attachments: &[Bytes]) -> Publication {
    let message = json!({"uid": EMITTER_UID, "nsp": t.nsp, "type": ty, "data": data});
    let payload = if attachments.is_empty() {
        wire::encode_json(&message)
    } else {
        wire::encode_mp_from_json(&message, attachments)
    };
    Publication { channel, payload: Bytes::from(payload), sharded: true }
}

/// An event to the targets (`data` = `[event, …args]`).
pub(crate) fn broadcast(t: Target<'_>, data: Args) -> Publication {
    let (values, attachments) = event_data(data);
    match t.mode {
        EmitterMode::Classic => {
            let packet = Mp::Map(vec![
                (Mp::from("type"), Mp::from(2u8)),
                (Mp::from("data"), Mp::Array(values.iter().map(|v| wire::json_to_mp(v, &attachments)).collect())),
                (Mp::from("nsp"), Mp::from(t.nsp)),
            ]);
            // the emitter's key order: rooms, flags, except
            let opts = Mp::Map(vec![
                (Mp::from("rooms"), mp_rooms(t.rooms)),
                (Mp::from("flags"), mp_flags(t.flags)),
                (Mp::from("except"), mp_rooms(t.except)),
            ]);
            let message = Mp::Array(vec![Mp::from(EMITTER_UID), packet, opts]);
            let channel = match t.rooms {
                [room] => room_channel(&t, room),
                _ => main_channel(&t),
            };
            classic(channel, wire::mp_encode(&message))
        }
        EmitterMode::Sharded { subscription } => {
            // Node's rule, except that a socket id goes to the main channel in
            // `dynamic-private` too: every node reads that one, while Shoal nodes do
            // not subscribe socket-id channels
            let channel = match (subscription, t.rooms) {
                (SubscriptionMode::Dynamic | SubscriptionMode::DynamicPrivate, [room])
                    if !looks_like_socket_id(room.as_str()) =>
                {
                    room_channel(&t, room)
                }
                _ => main_channel(&t),
            };
            let data = json!({"packet": {"type": 2, "data": values}, "opts": json_opts(&t)});
            sharded(&t, channel, cluster::BROADCAST, data, &attachments)
        }
    }
}

/// Join (`join`) or leave `rooms`.
pub(crate) fn rooms_op(t: Target<'_>, join: bool, rooms: &[Room]) -> Publication {
    match t.mode {
        EmitterMode::Classic => {
            let ty = if join { request::REMOTE_JOIN } else { request::REMOTE_LEAVE };
            let message = json!({"type": ty, "opts": json_targets(&t), "rooms": wire::rooms_to_json(rooms)});
            classic(request_channel(&t), wire::encode_json(&message))
        }
        EmitterMode::Sharded { .. } => {
            let ty = if join { cluster::SOCKETS_JOIN } else { cluster::SOCKETS_LEAVE };
            let data = json!({"opts": json_opts(&t), "rooms": wire::rooms_to_json(rooms)});
            sharded(&t, main_channel(&t), ty, data, &[])
        }
    }
}

/// Disconnect the targets.
pub(crate) fn disconnect(t: Target<'_>, close: bool) -> Publication {
    match t.mode {
        EmitterMode::Classic => {
            let message = json!({"type": request::REMOTE_DISCONNECT, "opts": json_targets(&t), "close": close});
            classic(request_channel(&t), wire::encode_json(&message))
        }
        EmitterMode::Sharded { .. } => {
            let data = json!({"opts": json_opts(&t), "close": close});
            sharded(&t, main_channel(&t), cluster::DISCONNECT_SOCKETS, data, &[])
        }
    }
}

/// An event to the servers (`data` = `[event, …args]`).
pub(crate) fn server_side_emit(t: Target<'_>, data: Args) -> Publication {
    let (values, attachments) = event_data(data);
    match t.mode {
        EmitterMode::Classic => {
            let values = values.iter().map(|v| node_buffers(v, &attachments)).collect();
            let message = json!({"uid": EMITTER_UID, "type": request::SERVER_SIDE_EMIT, "data": Json::Array(values)});
            classic(request_channel(&t), wire::encode_json(&message))
        }
        EmitterMode::Sharded { .. } => {
            let data = json!({"packet": values});
            sharded(&t, main_channel(&t), cluster::SERVER_SIDE_EMIT, data, &attachments)
        }
    }
}

/// Binary placeholders as `JSON.stringify` writes a Node Buffer:
/// `{"type":"Buffer","data":[bytes…]}`.
fn node_buffers(v: &Json, attachments: &[Bytes]) -> Json {
    match v {
        Json::Array(a) => Json::Array(a.iter().map(|v| node_buffers(v, attachments)).collect()),
        Json::Object(m) => {
            if let Some(b) = placeholder_index(v).and_then(|i| attachments.get(i)) {
                let mut out = Map::new();
                out.insert("type".into(), Json::from("Buffer"));
                out.insert("data".into(), Json::Array(b.iter().map(|&x| Json::from(x)).collect()));
                return Json::Object(out);
            }
            Json::Object(m.iter().map(|(k, v)| (k.clone(), node_buffers(v, attachments))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: &[(&'static str, bool)]) -> Flags {
        Flags(f.to_vec())
    }

    fn target<'a>(mode: EmitterMode, rooms: &'a [Room], except: &'a [Room], flags: &'a Flags) -> Target<'a> {
        Target { key: "socket.io", mode, nsp: "/", rooms, except, flags }
    }

    #[test]
    fn integral_floats_are_integers() {
        let mut v = json!([1.0, -0.0, 2.5, 9007199254740992.0, 9007199254740991.0, {"a": [3.0]}, u64::MAX, -7]);
        normalize_numbers(&mut v);
        assert_eq!(v.to_string(), "[1,0,2.5,9007199254740992.0,9007199254740991,{\"a\":[3]},18446744073709551615,-7]");
    }

    #[test]
    fn sharded_channels_follow_the_subscription_mode() {
        let f = Flags::default();
        let one = [Room::from("room1")];
        let sid = [Room::from("abcdefghij0123456789")];
        let two = [Room::from("a"), Room::from("b")];
        let args = || Args::from_values(vec![json!("ev")]);
        let ch = |sub, rooms: &[Room]| {
            broadcast(target(EmitterMode::Sharded { subscription: sub }, rooms, &[], &f), args()).channel
        };
        assert_eq!(ch(SubscriptionMode::Dynamic, &one), "socket.io#/#room1#");
        assert_eq!(ch(SubscriptionMode::Dynamic, &sid), "socket.io#/#");
        assert_eq!(ch(SubscriptionMode::Dynamic, &two), "socket.io#/#");
        assert_eq!(ch(SubscriptionMode::Dynamic, &[]), "socket.io#/#");
        assert_eq!(ch(SubscriptionMode::DynamicPrivate, &sid), "socket.io#/#");
        assert_eq!(ch(SubscriptionMode::DynamicPrivate, &one), "socket.io#/#room1#");
        assert_eq!(ch(SubscriptionMode::Static, &one), "socket.io#/#");
        // other operations always use the main channel
        let t = target(EmitterMode::Sharded { subscription: SubscriptionMode::Dynamic }, &one, &[], &f);
        assert_eq!(rooms_op(t, true, &one).channel, "socket.io#/#");
        assert_eq!(disconnect(t, false).channel, "socket.io#/#");
    }

    #[test]
    fn sharded_messages() {
        let f = flags(&[("volatile", true)]);
        let rooms = [Room::from("r1"), Room::from("r2")];
        let except = [Room::from("x")];
        let t = target(EmitterMode::Sharded { subscription: SubscriptionMode::Dynamic }, &rooms, &except, &f);
        let p = broadcast(t, Args::from_values(vec![json!("ev"), json!(1.0), json!({"a": "b"})]));
        assert!(p.sharded);
        assert_eq!(
            std::str::from_utf8(&p.payload).unwrap(),
            r#"{"uid":"emitter","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["ev",1,{"a":"b"}]},"opts":{"rooms":["r1","r2"],"except":["x"],"flags":{"volatile":true}}}}"#
        );
        let p = rooms_op(t, false, &[Room::from("z")]);
        assert_eq!(
            std::str::from_utf8(&p.payload).unwrap(),
            r#"{"uid":"emitter","nsp":"/","type":5,"data":{"opts":{"rooms":["r1","r2"],"except":["x"],"flags":{"volatile":true}},"rooms":["z"]}}"#
        );
        let p = disconnect(t, true);
        assert_eq!(
            std::str::from_utf8(&p.payload).unwrap(),
            r#"{"uid":"emitter","nsp":"/","type":6,"data":{"opts":{"rooms":["r1","r2"],"except":["x"],"flags":{"volatile":true}},"close":true}}"#
        );
        let p = server_side_emit(t, Args::from_values(vec![json!("hello"), json!([1, 2])]));
        assert_eq!(
            std::str::from_utf8(&p.payload).unwrap(),
            r#"{"uid":"emitter","nsp":"/","type":9,"data":{"packet":["hello",[1,2]]}}"#
        );
    }

    #[test]
    fn sharded_binary_is_messagepack() {
        let f = Flags::default();
        let t = target(EmitterMode::Sharded { subscription: SubscriptionMode::Static }, &[], &[], &f);
        let args = Args {
            values: vec![json!("file"), json!({"_placeholder": true, "num": 0})],
            attachments: vec![Bytes::from_static(&[1, 2, 3])],
        };
        let p = broadcast(t, args);
        assert_ne!(p.payload.first(), Some(&b'{'));
        let (back, att) = wire::decode_any(&p.payload).unwrap();
        assert_eq!(
            back,
            json!({"uid": "emitter", "nsp": "/", "type": 3, "data": {
                "packet": {"type": 2, "data": ["file", {"_placeholder": true, "num": 0}]},
                "opts": {"rooms": [], "except": [], "flags": {}}}})
        );
        assert_eq!(att, [Bytes::from_static(&[1, 2, 3])]);
    }

    #[test]
    fn classic_server_side_emit_renders_buffers_as_node_does() {
        let f = Flags::default();
        let t = target(EmitterMode::Classic, &[], &[], &f);
        let args = Args {
            values: vec![json!("ev"), json!({"b": {"_placeholder": true, "num": 0}}), json!(2.0)],
            attachments: vec![Bytes::from_static(&[7, 255])],
        };
        let p = server_side_emit(t, args);
        assert_eq!(p.channel, "socket.io-request#/#");
        assert_eq!(
            std::str::from_utf8(&p.payload).unwrap(),
            r#"{"uid":"emitter","type":6,"data":["ev",{"b":{"type":"Buffer","data":[7,255]}},2]}"#
        );
    }
}
