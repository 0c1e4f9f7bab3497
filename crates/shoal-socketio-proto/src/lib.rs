//! Socket.IO protocol v5 with the default parser (`socket.io-parser`), without IO.
//!
//! A Socket.IO packet travels in one Engine.IO message:
//! `<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]`, followed, for binary packets, by
//! one binary Engine.IO message per attachment. Binary values inside the JSON are
//! replaced by placeholders `{"_placeholder":true,"num":<i>}`.
//!
//! # Layout
//! - [`packet`]: [`Packet`], [`PacketType`], [`Args`] (the arguments of an event or an
//!   ack, with their attachments).
//! - [`decode`]: the decoder, with explicit partial state ([`PartialPacket`]) for a binary
//!   packet waiting for its attachments; every rule of the official parser is enforced
//!   (unknown type, bad attachment count, bad ack id, invalid JSON or payload shape,
//!   placeholders out of range, too many attachments).
//! - [`encode`]: the encoder; an event or ack with attachments becomes a binary packet.
//! - [`ser`] / [`de`]: serde support that maps `bytes::Bytes` (and other byte buffers) to
//!   attachments and back, so typed values with binary fields can be sent and received.
//!
//! # Example
//! ```
//! use shoal_socketio_proto::{decode, Decoded, PacketType, Limits};
//!
//! let Decoded::Complete(p) = decode::decode_text(r#"2/chat,12["hi",1]"#, &Limits::default()).unwrap()
//! else { unreachable!() };
//! assert_eq!(p.ty, PacketType::Event);
//! assert_eq!(p.nsp, "/chat");
//! assert_eq!(p.id, Some(12));
//! ```

pub mod de;
pub mod decode;
pub mod encode;
pub mod error;
pub mod packet;
pub mod ser;

pub use decode::{Decoded, Limits, PartialPacket};
pub use error::ParseError;
pub use packet::{Args, Packet, PacketData, PacketType};

/// The event names a client may not use (they are reserved by the protocol).
pub const RESERVED_EVENTS: &[&str] =
    &["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];
