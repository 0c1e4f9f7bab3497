//! `Packet::decode_text` on arbitrary bytes.
//!
//! Properties checked besides "never panics":
//! - the data of `0`/`2`/`3`/`4` packets is exactly the input after the type digit;
//! - an error is reported only for an empty input, an unknown type byte or bad base64;
//! - a binary packet survives a polling round trip (`b<base64>` re-encoded with
//!   padding by the payload encoder decodes to the same bytes).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shoal_engineio_proto::{OutPacket, Packet, PacketError, payload};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    match Packet::decode_text(input) {
        Ok(packet) => {
            let first = data[0];
            let rest = &data[1..];
            match &packet {
                Packet::Open(b) => assert!(first == b'0' && b[..] == *rest),
                Packet::Close => assert_eq!(first, b'1'),
                Packet::Ping(b) => assert!(first == b'2' && b[..] == *rest),
                Packet::Pong(b) => assert!(first == b'3' && b[..] == *rest),
                Packet::Message(b) => assert!(first == b'4' && b[..] == *rest),
                Packet::Upgrade => assert_eq!(first, b'5'),
                Packet::Noop => assert_eq!(first, b'6'),
                Packet::Binary(b) => {
                    assert_eq!(first, b'b');
                    // the decoded size is bounded by the base64 text
                    assert!(b.len() <= rest.len() * 3 / 4 + 1);
                    let mut out = Vec::new();
                    payload::encode(&[OutPacket::Binary(b.clone())], &mut out);
                    assert_eq!(Packet::decode_text(Bytes::from(out)), Ok(Packet::Binary(b.clone())));
                }
                _ => {}
            }
        }
        Err(PacketError::Empty) => assert!(data.is_empty()),
        Err(PacketError::UnknownType(c)) => {
            assert_eq!(c, data[0]);
            assert!(!matches!(c, b'0'..=b'6' | b'b'));
        }
        Err(PacketError::InvalidBase64) => assert_eq!(data[0], b'b'),
        Err(e) => panic!("unexpected error {e:?} for a single packet"),
    }
});
