//! Engine.IO packets.

use base64::Engine as _;
use bytes::Bytes;

use crate::error::PacketError;

/// The seven Engine.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketType {
    /// `0`: handshake, server to client.
    Open,
    /// `1`: close the session.
    Close,
    /// `2`: heartbeat ping (server to client in v4; `2probe` from the client during upgrade).
    Ping,
    /// `3`: heartbeat pong (client to server; `3probe` from the server during upgrade).
    Pong,
    /// `4`: a message.
    Message,
    /// `5`: completes the upgrade to WebSocket.
    Upgrade,
    /// `6`: no-op, releases a held long-polling request.
    Noop,
}

impl PacketType {
    /// The ASCII digit of this type.
    pub fn as_char(self) -> u8 {
        match self {
            Self::Open => b'0',
            Self::Close => b'1',
            Self::Ping => b'2',
            Self::Pong => b'3',
            Self::Message => b'4',
            Self::Upgrade => b'5',
            Self::Noop => b'6',
        }
    }

    /// The type for an ASCII digit, if it is one.
    pub fn from_char(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }
}

/// A packet received from a client.
///
/// Text data is kept as [`Bytes`] that the decoder has checked to be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Packet {
    /// `0` (clients never send it; a server treats it as a protocol error).
    Open(Bytes),
    /// `1`: the client closes the session.
    Close,
    /// `2` with its data (`probe` during an upgrade).
    Ping(Bytes),
    /// `3` with its data.
    Pong(Bytes),
    /// `4`: a text message (UTF-8).
    Message(Bytes),
    /// A binary message: a WebSocket binary frame, or `b<base64>` in a text payload.
    Binary(Bytes),
    /// `5`: upgrade.
    Upgrade,
    /// `6`: no-op.
    Noop,
}

impl Packet {
    /// Decodes one packet from text that is already known to be UTF-8 (a WebSocket text
    /// frame, or one record of a polling payload). `b<base64>` is a binary message.
    pub fn decode_text(data: Bytes) -> Result<Packet, PacketError> {
        let Some(&first) = data.first() else {
            return Err(PacketError::Empty);
        };
        if first == b'b' {
            return decode_base64(&data[1..]).map(Packet::Binary);
        }
        let ty = PacketType::from_char(first).ok_or(PacketError::UnknownType(first))?;
        let rest = data.slice(1..);
        Ok(match ty {
            PacketType::Open => Packet::Open(rest),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(rest),
            PacketType::Pong => Packet::Pong(rest),
            PacketType::Message => Packet::Message(rest),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// The type of this packet (`Binary` is a message).
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) | Packet::Binary(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }
}

/// Standard alphabet; padding optional, as Node's `Buffer.from(str, "base64")` accepts.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn decode_base64(data: &[u8]) -> Result<Bytes, PacketError> {
    LENIENT.decode(data).map(Bytes::from).map_err(|_| PacketError::InvalidBase64)
}

/// A packet queued by the server for one client.
///
/// `Text` holds the whole encoded packet, type digit included (`2`, `4hello`, `3probe`),
/// so the same bytes can go out as a WebSocket text frame or into a polling payload and
/// be shared by every recipient of a broadcast. `Binary` is the raw data of a binary
/// message (a WebSocket binary frame, or `b<base64>` when polling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutPacket {
    /// A text packet, type digit included.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl OutPacket {
    /// `2`: a heartbeat ping.
    pub const PING: OutPacket = OutPacket::Text(Bytes::from_static(b"2"));
    /// `3probe`: the answer to an upgrade probe.
    pub const PONG_PROBE: OutPacket = OutPacket::Text(Bytes::from_static(b"3probe"));
    /// `6`: releases a held long-polling GET.
    pub const NOOP: OutPacket = OutPacket::Text(Bytes::from_static(b"6"));
    /// `1`: the server closes the session.
    pub const CLOSE: OutPacket = OutPacket::Text(Bytes::from_static(b"1"));

    /// A `4` message packet with this text (allocates; the Socket.IO layer writes the `4`
    /// itself to avoid the copy).
    pub fn message(text: &str) -> OutPacket {
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.push(b'4');
        buf.extend_from_slice(text.as_bytes());
        OutPacket::Text(Bytes::from(buf))
    }

    /// Length in bytes of the data as it is queued (used for queue accounting).
    pub fn len(&self) -> usize {
        match self {
            OutPacket::Text(b) | OutPacket::Binary(b) => b.len(),
        }
    }

    /// True if the packet carries no byte at all (never the case for valid packets).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &'static [u8]) -> Result<Packet, PacketError> {
        Packet::decode_text(Bytes::from_static(s))
    }

    #[test]
    fn decode_table() {
        let b = Bytes::from_static;
        let table: &[(&[u8], Result<Packet, PacketError>)] = &[
            (b"0{}", Ok(Packet::Open(b(b"{}")))),
            (b"1", Ok(Packet::Close)),
            (b"2", Ok(Packet::Ping(b(b"")))),
            (b"2probe", Ok(Packet::Ping(b(b"probe")))),
            (b"3", Ok(Packet::Pong(b(b"")))),
            (b"3probe", Ok(Packet::Pong(b(b"probe")))),
            (b"4hello", Ok(Packet::Message(b(b"hello")))),
            (b"4", Ok(Packet::Message(b(b"")))),
            ("4€".as_bytes(), Ok(Packet::Message(Bytes::from("€")))),
            (b"5", Ok(Packet::Upgrade)),
            (b"6", Ok(Packet::Noop)),
            (b"bAQIDBA==", Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))),
            (b"b", Ok(Packet::Binary(b(b"")))),
            (b"", Err(PacketError::Empty)),
            (b"7", Err(PacketError::UnknownType(b'7'))),
            (b"abc", Err(PacketError::UnknownType(b'a'))),
            (b"b!!!", Err(PacketError::InvalidBase64)),
            (b"bAQID", Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3])))),
            (b"bAQI", Ok(Packet::Binary(Bytes::from_static(&[1, 2])))),
            (b"bAQ", Ok(Packet::Binary(Bytes::from_static(&[1])))),
            (b"bA", Err(PacketError::InvalidBase64)),
            (b"bAR", Err(PacketError::InvalidBase64)),
        ];
        for (input, expected) in table {
            assert_eq!(&dec_owned(input), expected, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    fn dec_owned(s: &[u8]) -> Result<Packet, PacketError> {
        Packet::decode_text(Bytes::copy_from_slice(s))
    }

    #[test]
    fn types_round_trip() {
        for c in b'0'..=b'6' {
            let ty = PacketType::from_char(c).unwrap();
            assert_eq!(ty.as_char(), c);
        }
        assert_eq!(PacketType::from_char(b'7'), None);
        assert_eq!(dec(b"4x").unwrap().packet_type(), PacketType::Message);
        assert_eq!(dec(b"bAA==").unwrap().packet_type(), PacketType::Message);
    }

    #[test]
    fn message_constructor() {
        assert_eq!(OutPacket::message("hi"), OutPacket::Text(Bytes::from_static(b"4hi")));
        assert_eq!(OutPacket::PING.len(), 1);
        assert!(!OutPacket::PING.is_empty());
    }
}
