//! The decoder: text packets, then the binary attachments they announce.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;

use crate::RESERVED_EVENTS;
use crate::error::ParseError;
use crate::packet::{Args, Packet, PacketData, PacketType};

/// Limits enforced while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of attachments of one binary packet. Default 10, as Node's parser.
    pub max_attachments: usize,
    /// Maximum total size of the attachments of one packet. Default 10 MB.
    pub max_attachment_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_attachments: 10, max_attachment_bytes: 10_000_000 }
    }
}

/// The result of decoding a text packet.
#[derive(Debug)]
pub enum Decoded {
    /// A whole packet.
    Complete(Packet),
    /// A binary packet that waits for its attachments.
    Partial(PartialPacket),
}

/// A binary packet waiting for its attachments (the decoder's explicit partial state).
#[derive(Debug)]
pub struct PartialPacket {
    packet: Packet,
    expected: usize,
    bytes: usize,
    max_bytes: usize,
}

impl PartialPacket {
    /// Adds the next attachment. Returns `true` when the packet is complete; then call
    /// [`PartialPacket::finish`].
    pub fn push(&mut self, data: Bytes) -> Result<bool, ParseError> {
        self.bytes = self.bytes.saturating_add(data.len());
        if self.bytes > self.max_bytes {
            return Err(ParseError::AttachmentsTooLarge);
        }
        let PacketData::Args(args) = &mut self.packet.data else {
            return Err(ParseError::UnexpectedBinary);
        };
        if args.attachments.len() >= self.expected {
            return Err(ParseError::UnexpectedBinary);
        }
        args.attachments.push(data);
        Ok(args.attachments.len() == self.expected)
    }

    /// The packet being completed (its attachments so far).
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// Number of attachments still expected.
    pub fn remaining(&self) -> usize {
        match &self.packet.data {
            PacketData::Args(a) => self.expected.saturating_sub(a.attachments.len()),
            _ => 0,
        }
    }

    /// Checks every placeholder against the attachments received and returns the packet.
    pub fn finish(self) -> Result<Packet, ParseError> {
        if self.remaining() != 0 {
            return Err(ParseError::IllegalAttachments);
        }
        if let PacketData::Args(args) = &self.packet.data {
            let n = args.attachments.len();
            for v in &args.values {
                check_placeholders(v, n)?;
            }
        }
        Ok(self.packet)
    }
}

/// Walks a JSON value (its depth is bounded by the JSON parser's recursion limit) and
/// checks every `{"_placeholder":true,…}` has an integer `num` below `count`.
fn check_placeholders(v: &Value, count: usize) -> Result<(), ParseError> {
    match v {
        Value::Array(a) => a.iter().try_for_each(|v| check_placeholders(v, count)),
        Value::Object(m) => {
            if m.get("_placeholder") == Some(&Value::Bool(true)) {
                match m.get("num").and_then(Value::as_u64) {
                    Some(n) if (n as u128) < count as u128 => Ok(()),
                    _ => Err(ParseError::InvalidPlaceholder),
                }
            } else {
                m.values().try_for_each(|v| check_placeholders(v, count))
            }
        }
        _ => Ok(()),
    }
}

/// Returns the index of attachment `num` if `v` is a placeholder.
pub fn placeholder_index(v: &Value) -> Option<usize> {
    let m = v.as_object()?;
    if m.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    m.get("num").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok())
}

/// Decodes a text packet (the data of one Engine.IO message).
pub fn decode_text(text: &str, limits: &Limits) -> Result<Decoded, ParseError> {
    let b = text.as_bytes();
    let Some(&first) = b.first() else {
        return Err(ParseError::Empty);
    };
    let ty = PacketType::from_char(first).ok_or(ParseError::UnknownType)?;
    let mut i = 1;

    let mut attachments = 0usize;
    if ty.is_binary() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i >= b.len() || b[i] != b'-' {
            return Err(ParseError::IllegalAttachments);
        }
        // more digits than any allowed count: too many attachments
        if i - start > 6 {
            return Err(ParseError::TooManyAttachments);
        }
        attachments = text[start..i].parse().map_err(|_| ParseError::IllegalAttachments)?;
        if attachments > limits.max_attachments {
            return Err(ParseError::TooManyAttachments);
        }
        i += 1;
    }

    let nsp: Cow<'static, str> = if b.get(i) == Some(&b'/') {
        let start = i;
        while i < b.len() && b[i] != b',' {
            i += 1;
        }
        let nsp = &text[start..i];
        if i < b.len() {
            i += 1; // the comma
        }
        if nsp == "/" { Cow::Borrowed("/") } else { Cow::Owned(nsp.to_owned()) }
    } else {
        Cow::Borrowed("/")
    };

    let mut id = None;
    if b.get(i).is_some_and(u8::is_ascii_digit) {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        id = Some(text[start..i].parse::<u64>().map_err(|_| ParseError::InvalidAckId)?);
    }

    let rest = &text[i..];
    let payload: Option<Value> = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str(rest).map_err(|e| {
            // A bad ack id such as `42abc[...]` surfaces here: not a number, not JSON.
            ParseError::InvalidJson(e.to_string())
        })?)
    };

    let data = match (ty, payload) {
        (PacketType::Connect, None) => PacketData::None,
        (PacketType::Connect, Some(v @ Value::Object(_))) => PacketData::Json(v),
        (PacketType::Disconnect, None) => PacketData::None,
        (PacketType::ConnectError, Some(v @ (Value::Object(_) | Value::String(_)))) => PacketData::Json(v),
        (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(values))) => {
            let name_ok = match values.first() {
                Some(Value::Number(_)) => true,
                Some(Value::String(s)) => !RESERVED_EVENTS.contains(&s.as_str()),
                _ => false,
            };
            if !name_ok {
                return Err(ParseError::InvalidPayload);
            }
            PacketData::Args(Args::from_values(values))
        }
        (PacketType::Ack | PacketType::BinaryAck, Some(Value::Array(values))) => {
            PacketData::Args(Args::from_values(values))
        }
        _ => return Err(ParseError::InvalidPayload),
    };
    if matches!(ty, PacketType::Connect | PacketType::Disconnect | PacketType::ConnectError) && id.is_some() {
        return Err(ParseError::InvalidAckId);
    }

    let packet = Packet { ty, nsp, id, data };
    if ty.is_binary() {
        let mut partial =
            PartialPacket { packet, expected: attachments, bytes: 0, max_bytes: limits.max_attachment_bytes };
        if let PacketData::Args(a) = &mut partial.packet.data {
            a.attachments.reserve_exact(attachments);
        }
        if attachments == 0 {
            return partial.finish().map(Decoded::Complete);
        }
        Ok(Decoded::Partial(partial))
    } else {
        Ok(Decoded::Complete(packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn complete(s: &str) -> Packet {
        match decode_text(s, &Limits::default()).unwrap() {
            Decoded::Complete(p) => p,
            Decoded::Partial(_) => panic!("partial for {s}"),
        }
    }

    fn err(s: &str) -> ParseError {
        decode_text(s, &Limits::default()).unwrap_err()
    }

    fn args(v: Value) -> PacketData {
        match v {
            Value::Array(a) => PacketData::Args(Args::from_values(a)),
            _ => unreachable!(),
        }
    }

    #[test]
    fn valid_packets_from_the_protocol_document() {
        let table: Vec<(&str, PacketType, &str, Option<u64>, PacketData)> = vec![
            ("0", PacketType::Connect, "/", None, PacketData::None),
            ("0/admin,", PacketType::Connect, "/admin", None, PacketData::None),
            ("0/admin", PacketType::Connect, "/admin", None, PacketData::None),
            ("0{\"token\":\"123\"}", PacketType::Connect, "/", None, PacketData::Json(json!({"token":"123"}))),
            (
                "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
                PacketType::Connect,
                "/admin",
                None,
                PacketData::Json(json!({"sid":"oSO0OpakMV_3jnilAAAA"})),
            ),
            ("1", PacketType::Disconnect, "/", None, PacketData::None),
            ("1/admin,", PacketType::Disconnect, "/admin", None, PacketData::None),
            ("2[\"foo\"]", PacketType::Event, "/", None, args(json!(["foo"]))),
            ("2/admin,[\"bar\"]", PacketType::Event, "/admin", None, args(json!(["bar"]))),
            ("212[\"foo\"]", PacketType::Event, "/", Some(12), args(json!(["foo"]))),
            ("2[1,\"2\",{\"3\":[true]}]", PacketType::Event, "/", None, args(json!([1,"2",{"3":[true]}]))),
            ("3/admin,13[\"bar\"]", PacketType::Ack, "/admin", Some(13), args(json!(["bar"]))),
            ("3456[1,\"2\",{\"3\":[false]}]", PacketType::Ack, "/", Some(456), args(json!([1,"2",{"3":[false]}]))),
            ("3[]", PacketType::Ack, "/", None, args(json!([]))),
            (
                "4{\"message\":\"Not authorized\"}",
                PacketType::ConnectError,
                "/",
                None,
                PacketData::Json(json!({"message":"Not authorized"})),
            ),
            ("4\"oops\"", PacketType::ConnectError, "/", None, PacketData::Json(json!("oops"))),
            ("50-[\"x\"]", PacketType::BinaryEvent, "/", None, args(json!(["x"]))),
            ("2[42]", PacketType::Event, "/", None, args(json!([42]))),
        ];
        for (input, ty, nsp, id, data) in table {
            let p = complete(input);
            assert_eq!((p.ty, p.nsp.as_ref(), p.id, &p.data), (ty, nsp, id, &data), "{input}");
        }
    }

    #[test]
    fn key_order_is_preserved() {
        let p = complete(r#"2["a",{"z":1,"a":2,"m":3}]"#);
        let keys: Vec<_> = p.args().unwrap().values[1].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn malformed_packets() {
        let table: Vec<(&str, ParseError)> = vec![
            ("", ParseError::Empty),
            ("abc", ParseError::UnknownType),
            ("7", ParseError::UnknownType),
            ("9[\"a\"]", ParseError::UnknownType),
            ("2{}", ParseError::InvalidPayload),
            ("2", ParseError::InvalidPayload),
            ("2[]", ParseError::InvalidPayload),
            ("2[null]", ParseError::InvalidPayload),
            ("2[{}]", ParseError::InvalidPayload),
            ("2[\"connect\"]", ParseError::InvalidPayload),
            ("2[\"disconnecting\"]", ParseError::InvalidPayload),
            ("2[\"newListener\"]", ParseError::InvalidPayload),
            ("3{}", ParseError::InvalidPayload),
            ("3", ParseError::InvalidPayload),
            ("0[]", ParseError::InvalidPayload),
            ("0\"x\"", ParseError::InvalidPayload),
            ("1{}", ParseError::InvalidPayload),
            ("4[]", ParseError::InvalidPayload),
            ("4", ParseError::InvalidPayload),
            ("5[\"a\"]", ParseError::IllegalAttachments),
            ("5-[\"a\"]", ParseError::IllegalAttachments),
            ("5a-[\"a\"]", ParseError::IllegalAttachments),
            ("51[\"a\"]", ParseError::IllegalAttachments),
            ("5", ParseError::IllegalAttachments),
            ("511-[\"a\"]", ParseError::TooManyAttachments),
            ("599999999999999999999-[\"a\"]", ParseError::TooManyAttachments),
            ("299999999999999999999999[\"a\"]", ParseError::InvalidAckId),
            ("012{}", ParseError::InvalidAckId),
        ];
        for (input, expected) in table {
            assert_eq!(err(input), expected, "{input}");
        }
        // invalid JSON of any kind
        for input in
            ["2[\"a\"", "2abc[\"message-with-ack\",1]", "42abc", "2[\"a\"]x", "2[\"a\",]", "0{", "2[\"\\ud800\"]x"]
        {
            assert!(matches!(err(input), ParseError::InvalidJson(_)), "{input}");
        }
    }

    #[test]
    fn deeply_nested_json_is_refused() {
        let deep = format!("2[\"a\",{}{}]", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(err(&deep), ParseError::InvalidJson(_)));
        let deep_obj = format!("2[\"a\",{}1{}]", "{\"a\":".repeat(5_000), "}".repeat(5_000));
        assert!(matches!(err(&deep_obj), ParseError::InvalidJson(_)));
    }

    #[test]
    fn binary_packets_collect_attachments() {
        let text = r#"52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        let Decoded::Partial(mut partial) = decode_text(text, &Limits::default()).unwrap() else {
            panic!("expected partial")
        };
        assert_eq!(partial.remaining(), 2);
        assert!(!partial.push(Bytes::from_static(&[1, 2, 3])).unwrap());
        assert!(partial.push(Bytes::from_static(&[4, 5, 6])).unwrap());
        let p = partial.finish().unwrap();
        assert_eq!(p.ty, PacketType::BinaryEvent);
        let a = p.args().unwrap();
        assert_eq!(a.attachments, vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4, 5, 6])]);
        assert_eq!(placeholder_index(&a.values[2]), Some(1));
        assert_eq!(placeholder_index(&a.values[0]), None);

        let text = r#"62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        let Decoded::Partial(p) = decode_text(text, &Limits::default()).unwrap() else { panic!() };
        assert_eq!(p.packet.id, Some(789));
        assert_eq!(p.packet.ty, PacketType::BinaryAck);
    }

    #[test]
    fn bad_placeholders_and_extra_attachments() {
        let cases = [
            r#"51-["a",{"_placeholder":true,"num":1}]"#,
            r#"51-["a",{"_placeholder":true,"num":-1}]"#,
            r#"51-["a",{"_placeholder":true,"num":"0"}]"#,
            r#"51-["a",{"_placeholder":true,"num":0.5}]"#,
            r#"51-["a",{"_placeholder":true}]"#,
            r#"51-["a",[[{"x":{"_placeholder":true,"num":99}}]]]"#,
        ];
        for text in cases {
            let Decoded::Partial(mut p) = decode_text(text, &Limits::default()).unwrap() else { panic!("{text}") };
            assert!(p.push(Bytes::from_static(b"x")).unwrap());
            assert_eq!(p.finish().unwrap_err(), ParseError::InvalidPlaceholder, "{text}");
        }
        // a placeholder in a packet announcing 0 attachments
        assert_eq!(
            decode_text(r#"50-["a",{"_placeholder":true,"num":0}]"#, &Limits::default()).unwrap_err(),
            ParseError::InvalidPlaceholder
        );
        // `_placeholder` that is not `true` is an ordinary object
        let Decoded::Partial(mut p) =
            decode_text(r#"51-["a",{"_placeholder":false,"num":7},{"_placeholder":true,"num":0}]"#, &Limits::default())
                .unwrap()
        else {
            panic!()
        };
        assert!(p.push(Bytes::from_static(b"x")).unwrap());
        assert!(p.finish().is_ok());
        // one attachment too many
        let Decoded::Partial(mut p) =
            decode_text(r#"51-["a",{"_placeholder":true,"num":0}]"#, &Limits::default()).unwrap()
        else {
            panic!()
        };
        assert!(p.push(Bytes::from_static(b"x")).unwrap());
        assert_eq!(p.push(Bytes::from_static(b"y")).unwrap_err(), ParseError::UnexpectedBinary);
    }

    #[test]
    fn attachment_limits() {
        let limits = Limits { max_attachments: 2, max_attachment_bytes: 4 };
        assert_eq!(decode_text(r#"53-["a"]"#, &limits).unwrap_err(), ParseError::TooManyAttachments);
        let Decoded::Partial(mut p) =
            decode_text(r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, &limits).unwrap()
        else {
            panic!()
        };
        assert!(!p.push(Bytes::from_static(b"abc")).unwrap());
        assert_eq!(p.push(Bytes::from_static(b"de")).unwrap_err(), ParseError::AttachmentsTooLarge);
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"0123456-/,[]{}\"_:placeholdernum truefals";
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let mut s = String::new();
            let mut x = state;
            for _ in 0..len {
                s.push(char::from(alphabet[(x % alphabet.len() as u64) as usize]));
                x = x.rotate_left(5).wrapping_mul(31);
            }
            if let Ok(Decoded::Partial(mut p)) = decode_text(&s, &Limits::default()) {
                while p.remaining() > 0 {
                    let _ = p.push(Bytes::from_static(b"z"));
                }
                let _ = p.finish();
            }
        }
    }
}
