//! Turning Socket.IO packets into the Engine.IO packets queued for clients.

use bytes::Bytes;
use serde::Serialize;
use shoal_engineio::OutPacket;
use shoal_socketio_proto::{Packet, PacketType, encode, ser};
use smallvec::SmallVec;

/// The Engine.IO packets of one Socket.IO packet: the text, then the attachments.
pub(crate) type Encoded = SmallVec<[OutPacket; 1]>;

/// Encodes `packet` once; the result is shared by every recipient.
pub(crate) fn encode_packet(packet: &Packet) -> Encoded {
    let mut buf = Vec::with_capacity(64);
    buf.push(b'4');
    encode::write_packet(&mut buf, packet);
    let mut out: Encoded = SmallVec::new();
    out.push(OutPacket::Text(Bytes::from(buf)));
    if let Some(args) = packet.args() {
        out.extend(args.attachments.iter().cloned().map(OutPacket::Binary));
    }
    out
}

/// Encodes an EVENT `[event, data]` (or an ACK `[data]` when `event` is `None`) straight
/// from a typed value, without an intermediate JSON tree.
pub(crate) fn encode_typed<T: Serialize + ?Sized>(
    nsp: &str,
    event: Option<&str>,
    data: &T,
    id: Option<u64>,
) -> Result<Encoded, serde_json::Error> {
    let ty = if event.is_some() { PacketType::Event } else { PacketType::Ack };
    let mut buf = Vec::with_capacity(64);
    buf.push(b'4');
    encode::write_header(&mut buf, ty, 0, nsp, id);
    let header_len = buf.len();
    buf.push(b'[');
    if let Some(ev) = event {
        serde_json::to_writer(&mut buf, ev)?;
        buf.push(b',');
    }
    let mut attachments = Vec::new();
    ser::to_writer(&mut buf, data, &mut attachments)?;
    buf.push(b']');
    if !attachments.is_empty() {
        // rewrite the header as a binary packet with its attachment count
        let bin = if event.is_some() { PacketType::BinaryEvent } else { PacketType::BinaryAck };
        let mut b2 = Vec::with_capacity(buf.len() + 4);
        b2.push(b'4');
        encode::write_header(&mut b2, bin, attachments.len(), nsp, id);
        b2.extend_from_slice(&buf[header_len..]);
        buf = b2;
    }
    let mut out: Encoded = SmallVec::new();
    out.push(OutPacket::Text(Bytes::from(buf)));
    out.extend(attachments.into_iter().map(OutPacket::Binary));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shoal_socketio_proto::Args;

    fn text(e: &Encoded) -> &[u8] {
        match &e[0] {
            OutPacket::Text(t) => t,
            OutPacket::Binary(_) => panic!("binary first"),
        }
    }

    #[test]
    fn typed_encoding() {
        let e = encode_typed("/", Some("msg"), &json!({"a": 1}), None).unwrap();
        assert_eq!(text(&e), br#"42["msg",{"a":1}]"#);
        let e = encode_typed("/chat", Some("msg"), &"x", Some(7)).unwrap();
        assert_eq!(text(&e), br#"42/chat,7["msg","x"]"#);
        let e = encode_typed("/", None, &[1, 2], Some(3)).unwrap();
        assert_eq!(text(&e), br#"433[[1,2]]"#);
        let e = encode_typed("/", Some("file"), &(Bytes::from_static(b"\x01\x02"),), None).unwrap();
        assert_eq!(text(&e), br#"451-["file",[{"_placeholder":true,"num":0}]]"#);
        assert_eq!(e[1], OutPacket::Binary(Bytes::from_static(b"\x01\x02")));
        let e = encode_typed("/a", None, &Bytes::from_static(b"z"), Some(9)).unwrap();
        assert_eq!(text(&e), br#"461-/a,9[{"_placeholder":true,"num":0}]"#);
    }

    #[test]
    fn packet_encoding() {
        let p = Packet::event("/", Args::from_values(vec![json!("a"), json!(1)]), None);
        assert_eq!(text(&encode_packet(&p)), br#"42["a",1]"#);
    }
}
