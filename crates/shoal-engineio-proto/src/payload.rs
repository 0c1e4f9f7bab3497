//! HTTP long-polling payloads (v4): packets joined by the record separator `\x1e`.
//!
//! Text packets are written as they are (`4hello`), binary messages as `b<base64>`:
//! `4hello\x1ebAQIDBA==`. A payload is UTF-8 text.

use base64::Engine as _;
use bytes::Bytes;

use crate::error::PacketError;
use crate::packet::{OutPacket, Packet};

/// The record separator between packets of a payload.
pub const SEPARATOR: u8 = 0x1e;

/// Decodes a polling payload. The whole body is checked to be UTF-8 first; then each
/// record is decoded lazily. Decoding stops at the first invalid packet (the caller closes
/// the session).
pub fn decode(body: Bytes) -> Decoder {
    let utf8_ok = std::str::from_utf8(&body).is_ok();
    Decoder { rest: Some(body), utf8_ok }
}

/// Iterator over the packets of a payload, see [`decode`].
#[derive(Debug)]
pub struct Decoder {
    rest: Option<Bytes>,
    utf8_ok: bool,
}

impl Iterator for Decoder {
    type Item = Result<Packet, PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut rest = self.rest.take()?;
        if !self.utf8_ok {
            return Some(Err(PacketError::InvalidUtf8));
        }
        let record = match memchr::memchr(SEPARATOR, &rest) {
            Some(pos) => {
                let record = rest.split_to(pos);
                // drop the separator; an empty tail after a trailing separator is an
                // empty packet, which is an error like any other
                let _ = rest.split_to(1);
                self.rest = Some(rest);
                record
            }
            None => rest,
        };
        let res = Packet::decode_text(record);
        if res.is_err() {
            self.rest = None;
        }
        Some(res)
    }
}

/// Appends `packets` to `out` as one payload.
pub fn encode<'a>(packets: impl IntoIterator<Item = &'a OutPacket>, out: &mut Vec<u8>) {
    let mut first = true;
    for p in packets {
        if !first {
            out.push(SEPARATOR);
        }
        first = false;
        match p {
            OutPacket::Text(t) => out.extend_from_slice(t),
            OutPacket::Binary(b) => {
                out.push(b'b');
                let start = out.len();
                let encoded_len = base64::encoded_len(b.len(), true).unwrap_or(0);
                out.resize(start + encoded_len, 0);
                let written = base64::engine::general_purpose::STANDARD.encode_slice(b, &mut out[start..]).unwrap_or(0);
                out.truncate(start + written);
            }
        }
    }
}

/// The exact size [`encode`] will produce for these packets.
pub fn encoded_len<'a>(packets: impl IntoIterator<Item = &'a OutPacket>) -> usize {
    let mut n = 0;
    let mut count: usize = 0;
    for p in packets {
        count += 1;
        n += match p {
            OutPacket::Text(t) => t.len(),
            OutPacket::Binary(b) => 1 + base64::encoded_len(b.len(), true).unwrap_or(0),
        };
    }
    n + count.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &'static [u8]) -> Vec<Result<Packet, PacketError>> {
        decode(Bytes::from_static(s)).collect()
    }

    #[test]
    fn decode_table() {
        let b = Bytes::from_static;
        assert_eq!(all(b"4hello"), vec![Ok(Packet::Message(b(b"hello")))]);
        assert_eq!(
            all(b"4test1\x1e4test2\x1e4test3"),
            vec![Ok(Packet::Message(b(b"test1"))), Ok(Packet::Message(b(b"test2"))), Ok(Packet::Message(b(b"test3")))]
        );
        assert_eq!(
            all(b"4hello\x1ebAQIDBA=="),
            vec![Ok(Packet::Message(b(b"hello"))), Ok(Packet::Binary(b(&[1, 2, 3, 4])))]
        );
        assert_eq!(all(b"3"), vec![Ok(Packet::Pong(b(b"")))]);
        assert_eq!(all(b"1"), vec![Ok(Packet::Close)]);
        // errors stop the iteration
        assert_eq!(all(b"abc\x1e4x"), vec![Err(PacketError::UnknownType(b'a'))]);
        assert_eq!(all(b""), vec![Err(PacketError::Empty)]);
        assert_eq!(all(b"4a\x1e"), vec![Ok(Packet::Message(b(b"a"))), Err(PacketError::Empty)]);
        assert_eq!(all(b"\x1e"), vec![Err(PacketError::Empty)]);
        assert_eq!(all(b"4\xff"), vec![Err(PacketError::InvalidUtf8)]);
        assert_eq!(all(b"4a\x1eb%%"), vec![Ok(Packet::Message(b(b"a"))), Err(PacketError::InvalidBase64)]);
    }

    #[test]
    fn encode_table() {
        let mut out = Vec::new();
        let packets =
            [OutPacket::message("hello"), OutPacket::Binary(Bytes::from_static(&[1, 2, 3, 4])), OutPacket::PING];
        encode(&packets, &mut out);
        assert_eq!(out, b"4hello\x1ebAQIDBA==\x1e2");
        assert_eq!(encoded_len(&packets), out.len());
        let mut out = Vec::new();
        encode(&[OutPacket::NOOP], &mut out);
        assert_eq!(out, b"6");
        assert_eq!(encoded_len(&[]), 0);
    }

    #[test]
    fn round_trip() {
        let packets = [
            OutPacket::message("a\u{1f600}b"),
            OutPacket::Binary(Bytes::from_static(&[0, 255, 7])),
            OutPacket::message(""),
        ];
        let mut out = Vec::new();
        encode(&packets, &mut out);
        let back: Vec<_> = decode(Bytes::from(out)).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            back,
            vec![
                Packet::Message(Bytes::from("a\u{1f600}b")),
                Packet::Binary(Bytes::from_static(&[0, 255, 7])),
                Packet::Message(Bytes::new()),
            ]
        );
    }
}
