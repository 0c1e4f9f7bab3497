//! The wire format of Node's `@socket.io/redis-adapter` and `@socket.io/redis-emitter`:
//! MessagePack (as `notepack.io` writes it) for broadcasts and binary-carrying messages,
//! JSON for the rest. Pure functions, no IO.
//!
//! MessagePack rules that matter for compatibility: maps with string keys, integers in
//! their smallest form, non-integers as float64, binary as `bin` (Shoal keeps binary as
//! placeholders plus attachments and converts at this boundary), JavaScript `Date`s as
//! the timestamp extension (-1), which are turned into the ISO-8601 strings
//! `JSON.stringify` would give clients.

use bytes::Bytes;
use rmpv::Value as Mp;
use serde_json::{Map, Number, Value as Json};
use shoal_core::{Args, BroadcastFlags, BroadcastOptions, Packet, Room};

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid adapter message: {0}")]
pub struct WireError(pub String);

fn err(msg: impl Into<String>) -> WireError {
    WireError(msg.into())
}

// ----- JSON <-> MessagePack values ---------------------------------------------------

/// Converts JSON arguments (with placeholders pointing into `attachments`) to
/// MessagePack, binary inline.
pub fn json_to_mp(v: &Json, attachments: &[Bytes]) -> Mp {
    match v {
        Json::Null => Mp::Nil,
        Json::Bool(b) => Mp::Boolean(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Mp::from(u)
            } else if let Some(i) = n.as_i64() {
                Mp::from(i)
            } else {
                Mp::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Mp::from(s.as_str()),
        Json::Array(a) => Mp::Array(a.iter().map(|v| json_to_mp(v, attachments)).collect()),
        Json::Object(m) => {
            if let Some(i) = shoal_core::placeholder_index(v)
                && let Some(b) = attachments.get(i)
            {
                return Mp::Binary(b.to_vec());
            }
            Mp::Map(m.iter().map(|(k, v)| (Mp::from(k.as_str()), json_to_mp(v, attachments))).collect())
        }
    }
}

/// Converts MessagePack to JSON, turning binary into placeholders appended to
/// `attachments`.
pub fn mp_to_json(v: &Mp, attachments: &mut Vec<Bytes>) -> Json {
    match v {
        Mp::Nil => Json::Null,
        Mp::Boolean(b) => Json::Bool(*b),
        Mp::Integer(i) => {
            if let Some(u) = i.as_u64() {
                Json::from(u)
            } else {
                Json::from(i.as_i64().unwrap_or(0))
            }
        }
        Mp::F32(f) => Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Mp::F64(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Mp::String(s) => {
            Json::String(s.as_str().map_or_else(|| String::from_utf8_lossy(s.as_bytes()).into_owned(), str::to_owned))
        }
        Mp::Binary(b) => {
            let num = attachments.len();
            attachments.push(Bytes::copy_from_slice(b));
            placeholder(num)
        }
        Mp::Array(a) => Json::Array(a.iter().map(|v| mp_to_json(v, attachments)).collect()),
        Mp::Map(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Mp::String(s) => s.as_str().unwrap_or_default().to_owned(),
                    other => mp_key_text(other),
                };
                out.insert(key, mp_to_json(v, attachments));
            }
            Json::Object(out)
        }
        Mp::Ext(-1, data) => timestamp_ext(data).map_or(Json::Null, Json::String),
        Mp::Ext(..) => Json::Null,
    }
}

fn mp_key_text(v: &Mp) -> String {
    match v {
        Mp::Integer(i) => i.to_string(),
        Mp::Boolean(b) => b.to_string(),
        Mp::F64(f) => f.to_string(),
        Mp::F32(f) => f.to_string(),
        Mp::Nil => "null".into(),
        _ => String::new(),
    }
}

fn placeholder(num: usize) -> Json {
    let mut m = Map::new();
    m.insert("_placeholder".into(), Json::Bool(true));
    m.insert("num".into(), Json::from(num));
    Json::Object(m)
}

/// The MessagePack timestamp extension (type -1, 4, 8 or 12 bytes) as the ISO-8601 text
/// `JSON.stringify(date)` gives: `YYYY-MM-DDTHH:mm:ss.sssZ`.
fn timestamp_ext(data: &[u8]) -> Option<String> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
        8 => {
            let v = u64::from_be_bytes(data.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
        }
        12 => (i64::from_be_bytes(data[4..12].try_into().ok()?), u32::from_be_bytes(data[..4].try_into().ok()?)),
        _ => return None,
    };
    Some(iso8601(secs, nanos / 1_000_000))
}

fn iso8601(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
}

fn mp_str(v: &Mp) -> Option<&str> {
    v.as_str()
}

fn map_get<'a>(m: &'a [(Mp, Mp)], key: &str) -> Option<&'a Mp> {
    m.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
}

/// Encodes a MessagePack value.
pub fn mp_encode(v: &Mp) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // writing into a Vec cannot fail
    let _ = rmpv::encode::write_value(&mut out, v);
    out
}

/// Decodes a MessagePack value.
///
/// # Errors
/// When the bytes are not one MessagePack value.
pub fn mp_decode(mut bytes: &[u8]) -> Result<Mp, WireError> {
    rmpv::decode::read_value(&mut bytes).map_err(|e| err(e.to_string()))
}

// ----- rooms, options, packets -------------------------------------------------------

fn room_from_mp(v: &Mp) -> Option<Room> {
    match v {
        Mp::String(s) => s.as_str().map(Room::from),
        Mp::Integer(i) => Some(Room::from(i.to_string())),
        _ => None,
    }
}

fn rooms_from_mp(v: Option<&Mp>) -> Vec<Room> {
    v.and_then(Mp::as_array).map(|a| a.iter().filter_map(room_from_mp).collect()).unwrap_or_default()
}

fn room_from_json(v: &Json) -> Option<Room> {
    match v {
        Json::String(s) => Some(Room::from(s.as_str())),
        Json::Number(n) => Some(Room::from(n.to_string())),
        _ => None,
    }
}

/// Rooms from a JSON array (numbers accepted, as Node allows numeric rooms).
pub fn rooms_from_json(v: Option<&Json>) -> Vec<Room> {
    v.and_then(Json::as_array).map(|a| a.iter().filter_map(room_from_json).collect()).unwrap_or_default()
}

fn rooms_to_mp(rooms: &[Room]) -> Mp {
    Mp::Array(rooms.iter().map(|r| Mp::from(r.as_str())).collect())
}

/// Rooms as a JSON array.
pub fn rooms_to_json(rooms: &[Room]) -> Json {
    Json::Array(rooms.iter().map(|r| Json::String(r.as_str().to_owned())).collect())
}

fn flags_to_mp(opts: &BroadcastOptions) -> Mp {
    let mut m = Vec::new();
    if opts.flags.volatile {
        m.push((Mp::from("volatile"), Mp::Boolean(true)));
    }
    if !opts.flags.compress {
        m.push((Mp::from("compress"), Mp::Boolean(false)));
    }
    if let Some(t) = opts.timeout {
        m.push((Mp::from("timeout"), Mp::from(t.as_millis() as u64)));
    }
    Mp::Map(m)
}

fn flags_from(
    get: impl Fn(&str) -> Option<bool>,
    timeout_ms: Option<u64>,
) -> (BroadcastFlags, Option<std::time::Duration>) {
    let flags = BroadcastFlags {
        volatile: get("volatile").unwrap_or(false),
        compress: get("compress").unwrap_or(true),
        local: get("local").unwrap_or(false),
    };
    (flags, timeout_ms.map(std::time::Duration::from_millis))
}

/// `{rooms, except, flags}` as MessagePack.
pub fn opts_to_mp(opts: &BroadcastOptions) -> Mp {
    Mp::Map(vec![
        (Mp::from("rooms"), rooms_to_mp(&opts.rooms)),
        (Mp::from("except"), rooms_to_mp(&opts.except)),
        (Mp::from("flags"), flags_to_mp(opts)),
    ])
}

/// `{rooms, except, flags}` from MessagePack (missing parts are empty).
pub fn opts_from_mp(v: &Mp) -> BroadcastOptions {
    let Some(m) = v.as_map() else { return BroadcastOptions::default() };
    let flags = map_get(m, "flags").and_then(Mp::as_map);
    let (flags, timeout) = flags_from(
        |k| flags.and_then(|f| map_get(f, k)).and_then(Mp::as_bool),
        flags.and_then(|f| map_get(f, "timeout")).and_then(Mp::as_u64),
    );
    BroadcastOptions {
        rooms: rooms_from_mp(map_get(m, "rooms")),
        except: rooms_from_mp(map_get(m, "except")),
        flags,
        timeout,
    }
}

/// `{rooms, except, flags}` as JSON.
pub fn opts_to_json(opts: &BroadcastOptions) -> Json {
    let mut flags = Map::new();
    if opts.flags.volatile {
        flags.insert("volatile".into(), Json::Bool(true));
    }
    if !opts.flags.compress {
        flags.insert("compress".into(), Json::Bool(false));
    }
    if let Some(t) = opts.timeout {
        flags.insert("timeout".into(), Json::from(t.as_millis() as u64));
    }
    let mut m = Map::new();
    m.insert("rooms".into(), rooms_to_json(&opts.rooms));
    m.insert("except".into(), rooms_to_json(&opts.except));
    m.insert("flags".into(), Json::Object(flags));
    Json::Object(m)
}

/// `{rooms, except, flags?}` from JSON.
pub fn opts_from_json(v: Option<&Json>) -> BroadcastOptions {
    let Some(m) = v.and_then(Json::as_object) else { return BroadcastOptions::default() };
    let flags = m.get("flags").and_then(Json::as_object);
    let (flags, timeout) = flags_from(
        |k| flags.and_then(|f| f.get(k)).and_then(Json::as_bool),
        flags.and_then(|f| f.get("timeout")).and_then(Json::as_u64),
    );
    BroadcastOptions {
        rooms: rooms_from_json(m.get("rooms")),
        except: rooms_from_json(m.get("except")),
        flags,
        timeout,
    }
}

/// An EVENT packet as Node's adapters carry it: `{type: 2, data: [event, …args], nsp}`
/// (`id` too for broadcasts with acknowledgements), binary inline.
pub fn packet_to_mp(packet: &Packet) -> Mp {
    let (values, attachments): (&[Json], &[Bytes]) = match packet.args() {
        Some(a) => (&a.values, &a.attachments),
        None => (&[], &[]),
    };
    let mut m = vec![
        (Mp::from("type"), Mp::from(2u8)),
        (Mp::from("data"), Mp::Array(values.iter().map(|v| json_to_mp(v, attachments)).collect())),
        (Mp::from("nsp"), Mp::from(packet.nsp.as_ref())),
    ];
    if let Some(id) = packet.id {
        m.push((Mp::from("id"), Mp::from(id)));
    }
    Mp::Map(m)
}

/// The same packet as JSON (binary must not be present: callers use MessagePack then).
pub fn packet_to_json(packet: &Packet) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), Json::from(2));
    m.insert("data".into(), Json::Array(packet.args().map(|a| a.values.clone()).unwrap_or_default()));
    m.insert("nsp".into(), Json::String(packet.nsp.to_string()));
    if let Some(id) = packet.id {
        m.insert("id".into(), Json::from(id));
    }
    Json::Object(m)
}

/// An EVENT packet from MessagePack; a missing `nsp` means `default_nsp`.
///
/// # Errors
/// When `data` is not an array.
pub fn packet_from_mp(v: &Mp, default_nsp: &str) -> Result<Packet, WireError> {
    let m = v.as_map().ok_or_else(|| err("packet is not a map"))?;
    let data = map_get(m, "data").and_then(Mp::as_array).ok_or_else(|| err("packet.data is not an array"))?;
    let mut attachments = Vec::new();
    let values = data.iter().map(|v| mp_to_json(v, &mut attachments)).collect();
    let nsp = map_get(m, "nsp").and_then(mp_str).unwrap_or(default_nsp).to_owned();
    let id = map_get(m, "id").and_then(Mp::as_u64);
    Ok(Packet::event(nsp, Args { values, attachments }, id))
}

/// An EVENT packet from JSON.
///
/// # Errors
/// When `data` is not an array.
pub fn packet_from_json(v: &Json, default_nsp: &str) -> Result<Packet, WireError> {
    let data = v.get("data").and_then(Json::as_array).ok_or_else(|| err("packet.data is not an array"))?;
    let nsp = v.get("nsp").and_then(Json::as_str).unwrap_or(default_nsp).to_owned();
    Ok(Packet::event(nsp, Args::from_values(data.clone()), v.get("id").and_then(Json::as_u64)))
}

/// True if any attachment is present (then Node's adapters use MessagePack).
pub fn has_binary(args: &Args) -> bool {
    !args.attachments.is_empty()
}

// ----- classic broadcast message -------------------------------------------------------

/// The classic adapter's broadcast: MessagePack `[uid, packet, opts]`.
pub fn encode_classic_broadcast(uid: &str, packet: &Packet, opts: &BroadcastOptions) -> Vec<u8> {
    mp_encode(&Mp::Array(vec![Mp::from(uid), packet_to_mp(packet), opts_to_mp(opts)]))
}

/// Decodes `[uid, packet, opts]`.
///
/// # Errors
/// When the message does not have that shape.
pub fn decode_classic_broadcast(bytes: &[u8], nsp: &str) -> Result<(String, Packet, BroadcastOptions), WireError> {
    let v = mp_decode(bytes)?;
    let a = v.as_array().ok_or_else(|| err("broadcast is not an array"))?;
    let [uid, packet, opts] = a.as_slice() else { return Err(err("broadcast is not [uid, packet, opts]")) };
    let uid = uid.as_str().unwrap_or_default().to_owned();
    Ok((uid, packet_from_mp(packet, nsp)?, opts_from_mp(opts)))
}

/// Decodes a message that may be JSON (first byte `{`) or MessagePack, into JSON; binary
/// becomes placeholders into the returned attachments.
///
/// # Errors
/// When it is neither.
pub fn decode_any(bytes: &[u8]) -> Result<(Json, Vec<Bytes>), WireError> {
    if bytes.first() == Some(&b'{') {
        let v = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
        Ok((v, Vec::new()))
    } else {
        let v = mp_decode(bytes)?;
        let mut attachments = Vec::new();
        let j = mp_to_json(&v, &mut attachments);
        Ok((j, attachments))
    }
}

/// Encodes a JSON message as MessagePack, placeholders back to binary.
pub fn encode_mp_from_json(v: &Json, attachments: &[Bytes]) -> Vec<u8> {
    mp_encode(&json_to_mp(v, attachments))
}

/// Encodes a JSON message as JSON text.
pub fn encode_json(v: &Json) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn classic_broadcast_bytes_match_node() {
        // from the protocol notes: ["abc123", {type:2, data:["hello","world"], nsp:"/"},
        // {rooms:[], except:[], flags:{}}]
        let packet = Packet::event("/", Args::from_values(vec![json!("hello"), json!("world")]), None);
        let bytes = encode_classic_broadcast("abc123", &packet, &BroadcastOptions::default());
        assert_eq!(
            hex(&bytes),
            "93 a6 61 62 63 31 32 33 83 a4 74 79 70 65 02 a4 64 61 74 61 92 a5 68 65 6c 6c 6f a5 77 6f 72 6c 64 \
             a3 6e 73 70 a1 2f 83 a5 72 6f 6f 6d 73 90 a6 65 78 63 65 70 74 90 a5 66 6c 61 67 73 80"
        );
        let (uid, p, o) = decode_classic_broadcast(&bytes, "/").unwrap();
        assert_eq!(uid, "abc123");
        assert_eq!(p, packet);
        assert_eq!(o, BroadcastOptions::default());
    }

    #[test]
    fn binary_numbers_rooms_and_flags() {
        let args = Args {
            values: vec![
                json!("ev"),
                json!({"file": {"_placeholder": true, "num": 0}, "n": -3, "f": 1.5}),
                json!(u64::MAX),
            ],
            attachments: vec![Bytes::from_static(&[1, 2, 3])],
        };
        let packet = Packet::event("/chat", args.clone(), None);
        let mut opts = BroadcastOptions::room("r1");
        opts.except.push(Room::from("x"));
        opts.flags.volatile = true;
        let bytes = encode_classic_broadcast("n1", &packet, &opts);
        let (_, back, o) = decode_classic_broadcast(&bytes, "/").unwrap();
        assert_eq!(back.nsp, "/chat");
        assert_eq!(back.args().unwrap(), &args);
        assert_eq!(o.rooms, vec![Room::from("r1")]);
        assert_eq!(o.except, vec![Room::from("x")]);
        assert!(o.flags.volatile && o.flags.compress);
        // rooms may be integers (JavaScript `io.to(123)`)
        let v = Mp::Array(vec![
            Mp::from("u"),
            Mp::Map(vec![(Mp::from("type"), Mp::from(2)), (Mp::from("data"), Mp::Array(vec![Mp::from("e")]))]),
            Mp::Map(vec![(Mp::from("rooms"), Mp::Array(vec![Mp::from(123)])), (Mp::from("except"), Mp::Array(vec![]))]),
        ]);
        let (_, p, o) = decode_classic_broadcast(&mp_encode(&v), "/default").unwrap();
        assert_eq!(p.nsp, "/default", "a missing nsp is the channel's namespace");
        assert_eq!(o.rooms, vec![Room::from("123")]);
    }

    #[test]
    fn dates_become_iso_strings() {
        // timestamp 32: 2023-11-14T22:13:20Z
        let mut a = Vec::new();
        let ts32 = Mp::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec());
        assert_eq!(mp_to_json(&ts32, &mut a), json!("2023-11-14T22:13:20.000Z"));
        // timestamp 64 with 123 ms
        let v: u64 = (123_000_000u64 << 34) | 1_700_000_000u64;
        let ts64 = Mp::Ext(-1, v.to_be_bytes().to_vec());
        assert_eq!(mp_to_json(&ts64, &mut a), json!("2023-11-14T22:13:20.123Z"));
        // timestamp 96, before 1970
        let mut d = 5_000_000u32.to_be_bytes().to_vec();
        d.extend_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(mp_to_json(&Mp::Ext(-1, d), &mut a), json!("1969-12-31T23:59:59.005Z"));
        assert!(a.is_empty());
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let cases: [&[u8]; 7] = [
            b"",                               // nothing
            b"\x93",                           // array of 3, no elements
            b"\x92\xa1a\xa1b",                 // array of 2
            b"\xa5ab",                         // string cut short
            b"\x93\xa1u\x80\x80",              // packet without data
            b"\x93\xa1u\x81\xa4data\xa1x\x80", // data not an array
            b"\xdd\xff\xff\xff\xff",           // array claiming 4 billion elements, none present
        ];
        for bytes in cases {
            assert!(decode_classic_broadcast(bytes, "/").is_err(), "{bytes:?}");
        }
        assert!(decode_any(b"{not json").is_err());
        assert!(decode_any(b"\xa5ab").is_err());
        let (j, att) = decode_any(b"{\"type\":1}").unwrap();
        assert_eq!((j, att.len()), (json!({"type": 1}), 0));
    }

    #[test]
    fn opts_json_round_trip() {
        let mut o = BroadcastOptions::room("a");
        o.except = vec![Room::from("b")];
        o.flags.compress = false;
        o.timeout = Some(std::time::Duration::from_millis(500));
        let j = opts_to_json(&o);
        assert_eq!(j, json!({"rooms": ["a"], "except": ["b"], "flags": {"compress": false, "timeout": 500}}));
        assert_eq!(opts_from_json(Some(&j)), o);
        assert_eq!(
            opts_from_json(Some(&json!({"rooms": [1, "x", null]}))).rooms,
            vec![Room::from("1"), Room::from("x")]
        );
    }
}
