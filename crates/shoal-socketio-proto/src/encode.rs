//! The encoder.

use serde_json::Value;

use crate::packet::{Packet, PacketData, PacketType};

/// Appends the text part of `packet` to `out`. EVENT and ACK packets whose arguments
/// carry attachments are written as BINARY_EVENT / BINARY_ACK with their count; the
/// attachments themselves (`packet.args().attachments`) follow as binary messages.
pub fn write_packet(out: &mut Vec<u8>, packet: &Packet) {
    let attachments = packet.args().map_or(0, |a| a.attachments.len());
    let ty = match (packet.ty, attachments > 0) {
        (PacketType::Event, true) => PacketType::BinaryEvent,
        (PacketType::Ack, true) => PacketType::BinaryAck,
        (PacketType::BinaryEvent, false) => PacketType::Event,
        (PacketType::BinaryAck, false) => PacketType::Ack,
        (t, _) => t,
    };
    write_header(out, ty, attachments, &packet.nsp, packet.id);
    match &packet.data {
        PacketData::None => {}
        PacketData::Json(v) => write_json(out, v),
        PacketData::Args(a) => write_array(out, &a.values),
    }
}

/// Appends `<type>[<n>-][<nsp>,][<id>]` to `out`.
pub fn write_header(out: &mut Vec<u8>, ty: PacketType, attachments: usize, nsp: &str, id: Option<u64>) {
    out.push(ty.as_char());
    if ty.is_binary() {
        out.extend_from_slice(itoa::Buffer::new().format(attachments).as_bytes());
        out.push(b'-');
    }
    if nsp != "/" && !nsp.is_empty() {
        out.extend_from_slice(nsp.as_bytes());
        out.push(b',');
    }
    if let Some(id) = id {
        out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    }
}

/// Appends compact JSON for `v`.
pub fn write_json(out: &mut Vec<u8>, v: &Value) {
    // Writing into a Vec cannot fail, and a serde_json::Value always serializes.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Appends a JSON array of `values`.
pub fn write_array(out: &mut Vec<u8>, values: &[Value]) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(out, v);
    }
    out.push(b']');
}

/// Encodes `packet` into a new string (convenience for tests and tools).
pub fn to_string(packet: &Packet) -> String {
    let mut out = Vec::with_capacity(64);
    write_packet(&mut out, packet);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoded, Limits, decode_text};
    use crate::packet::Args;
    use bytes::Bytes;
    use serde_json::json;

    fn args(v: Value) -> Args {
        match v {
            Value::Array(a) => Args::from_values(a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn encode_table() {
        let ph = |n: u64| json!({"_placeholder": true, "num": n});
        let table: Vec<(Packet, &str)> = vec![
            (Packet::connect("/", "oSO0OpakMV_3jnilAAAA"), r#"0{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            (Packet::connect("/admin", "oSO0OpakMV_3jnilAAAA"), r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            (
                Packet::connect_error("/random", "Invalid namespace", None),
                r#"4/random,{"message":"Invalid namespace"}"#,
            ),
            (
                Packet::connect_error("/", "Not authorized", Some(json!({"reason":"x"}))),
                r#"4{"message":"Not authorized","data":{"reason":"x"}}"#,
            ),
            (Packet::disconnect("/"), "1"),
            (Packet::disconnect("/admin"), "1/admin,"),
            (Packet::event("/", args(json!(["foo"])), None), r#"2["foo"]"#),
            (Packet::event("/admin", args(json!(["bar"])), None), r#"2/admin,["bar"]"#),
            (Packet::event("/", args(json!(["foo"])), Some(12)), r#"212["foo"]"#),
            (Packet::ack("/admin", args(json!(["bar"])), 13), r#"3/admin,13["bar"]"#),
            (
                Packet::event("/", args(json!(["message-back", 1, "2", {"3": [true]}])), None),
                r#"2["message-back",1,"2",{"3":[true]}]"#,
            ),
            (
                Packet::event(
                    "/",
                    Args { values: vec![json!("baz"), ph(0)], attachments: vec![Bytes::from_static(b"x")] },
                    None,
                ),
                r#"51-["baz",{"_placeholder":true,"num":0}]"#,
            ),
            (
                Packet::event(
                    "/admin",
                    Args {
                        values: vec![json!("baz"), ph(0), ph(1)],
                        attachments: vec![Bytes::from_static(b"x"), Bytes::from_static(b"y")],
                    },
                    None,
                ),
                r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            ),
            (
                Packet::ack(
                    "/",
                    Args { values: vec![json!("bar"), ph(0)], attachments: vec![Bytes::from_static(b"x")] },
                    15,
                ),
                r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
            ),
        ];
        for (packet, expected) in table {
            assert_eq!(to_string(&packet), expected);
        }
    }

    #[test]
    fn decode_encode_round_trip() {
        for text in [
            "0",
            "0/admin,",
            "1/admin,",
            r#"2["a",{"z":1,"a":[1.5,-2,null,"\u00e9\n"]}]"#,
            r#"2/x,7["a"]"#,
            r#"3/x,7[]"#,
            r#"4/random,{"message":"Invalid namespace"}"#,
        ] {
            let Decoded::Complete(p) = decode_text(text, &Limits::default()).unwrap() else { panic!() };
            let again = to_string(&p);
            let Decoded::Complete(p2) = decode_text(&again, &Limits::default()).unwrap() else { panic!() };
            assert_eq!(p, p2, "{text}");
        }
    }
}
