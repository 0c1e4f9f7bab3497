//! `payload::decode` on arbitrary bytes, iterating every record.
//!
//! Properties checked besides "never panics":
//! - the iterator is finite: at most one item per record (separators + 1), and it stops
//!   right after the first error;
//! - a body that is not UTF-8 yields exactly one `InvalidUtf8` error;
//! - a payload that decodes without error survives a round trip: the packets re-encoded
//!   by the server's payload encoder decode to the same packets.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shoal_engineio_proto::{OutPacket, Packet, PacketError, payload};

fn text(digit: u8, rest: &[u8]) -> OutPacket {
    let mut v = Vec::with_capacity(rest.len() + 1);
    v.push(digit);
    v.extend_from_slice(rest);
    OutPacket::Text(Bytes::from(v))
}

fn to_out(p: &Packet) -> OutPacket {
    match p {
        Packet::Open(b) => text(b'0', b),
        Packet::Close => text(b'1', b""),
        Packet::Ping(b) => text(b'2', b),
        Packet::Pong(b) => text(b'3', b),
        Packet::Message(b) => text(b'4', b),
        Packet::Binary(b) => OutPacket::Binary(b.clone()),
        Packet::Upgrade => text(b'5', b""),
        Packet::Noop => text(b'6', b""),
        other => panic!("unknown packet {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let records = data.iter().filter(|&&b| b == payload::SEPARATOR).count() + 1;
    let utf8 = std::str::from_utf8(data).is_ok();
    let mut packets = Vec::new();
    let mut items = 0usize;
    let mut failed = false;
    for item in payload::decode(Bytes::copy_from_slice(data)) {
        assert!(!failed, "an item after an error");
        items += 1;
        assert!(items <= records, "more items than records");
        match item {
            Ok(p) => packets.push(p),
            Err(e) => {
                if !utf8 {
                    assert_eq!(e, PacketError::InvalidUtf8);
                }
                failed = true;
            }
        }
    }
    assert!(items >= 1, "an empty iteration");
    if !utf8 {
        assert!(failed && items == 1);
        return;
    }
    if failed {
        return;
    }
    assert_eq!(items, records);
    let out: Vec<OutPacket> = packets.iter().map(to_out).collect();
    let mut body = Vec::with_capacity(payload::encoded_len(&out));
    payload::encode(&out, &mut body);
    assert_eq!(body.len(), payload::encoded_len(&out));
    let again: Vec<Packet> =
        payload::decode(Bytes::from(body)).collect::<Result<_, _>>().expect("re-encoded payload decodes");
    assert_eq!(again, packets);
});
