//! Engine.IO protocol v4, without IO.
//!
//! This crate is the bottom layer of Shoal: it turns bytes into Engine.IO packets and
//! back, and knows nothing about sockets, HTTP or tasks. Everything here is a pure
//! function over memory, so it is unit-tested table by table and fuzzed directly.
//!
//! # Layout
//! - [`packet`]: the seven packet types, decoding of one packet received from a client
//!   ([`Packet::decode_text`]) and the [`OutPacket`] the server queues for sending.
//! - [`payload`]: HTTP long-polling payloads, packets joined by the record separator
//!   `\x1e`, binary packets as `b<base64>`.
//! - [`sid`]: 20-character session ids that embed the id of the node that owns them.
//! - [`handshake`]: the `open` packet JSON.
//! - [`error`]: the HTTP error codes of the protocol (`{"code":1,"message":"Session ID unknown"}`)
//!   and [`PacketError`] for malformed input.
//!
//! # Example
//! ```
//! use bytes::Bytes;
//! use shoal_engineio_proto::{Packet, payload};
//!
//! let packets: Vec<_> = payload::decode(Bytes::from_static(b"4hello\x1ebAQIDBA=="))
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(packets[0], Packet::Message(Bytes::from_static(b"hello")));
//! assert_eq!(packets[1], Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])));
//! ```

pub mod error;
pub mod handshake;
pub mod packet;
pub mod payload;
pub mod sid;

pub use error::{ErrorCode, PacketError};
pub use packet::{OutPacket, Packet, PacketType};
pub use sid::{NodeId, Sid, SidParseError};

/// The protocol revision implemented here, as sent in the `EIO` query parameter.
pub const PROTOCOL_VERSION: &str = "4";
