//! A pure (no IO, no async runtime) implementation of the WebSocket protocol
//! (RFC 6455) with permessage-deflate (RFC 7692), built for Shoal's memory
//! budget of a few KiB per idle connection.
//!
//! # Layout
//! - [`handshake`]: validating the HTTP upgrade request
//!   ([`validate_upgrade`], [`is_upgrade_request`]) and computing
//!   `Sec-WebSocket-Accept` ([`accept_key`]); client-side key helpers.
//! - [`frame`]: [`Role`], [`OpCode`], [`CloseFrame`] and the encoder:
//!   [`encode_header`] builds just a header for a payload length (so one
//!   payload `Bytes` can be shared by many connections), [`write_frame`]
//!   writes a whole frame, [`close_payload`] builds a close payload and
//!   [`apply_mask`] (un)masks.
//! - [`decoder`]: the incremental [`Decoder`], fed with whatever chunks the
//!   socket produced. It holds **no heap memory between messages**: bytes are
//!   buffered only while a frame or message is incomplete, the declared
//!   length is checked against [`DecoderConfig::max_message_size`] before
//!   anything is allocated, and the buffer becomes the message's `Bytes`.
//! - [`deflate`]: permessage-deflate negotiation ([`negotiate_deflate`], always
//!   with `server_no_context_takeover`), the per-connection [`Inflater`] and
//!   the stateless compressor ([`deflate_message`], [`Deflater`]).
//! - [`error`]: [`Error`] (each maps to a close code via
//!   [`Error::close_code`]) and [`HandshakeError`].
//!
//! # Example
//! ```
//! use std::ops::ControlFlow;
//! use shoal_ws::{Decoder, DecoderConfig, Message, OpCode, apply_mask, encode_header};
//!
//! // A masked text frame "Hello" as a client would send it (RFC 6455 §5.7).
//! let mask = [0x37, 0xfa, 0x21, 0x3d];
//! let mut frame = [0u8; 14];
//! let n = encode_header(&mut frame, OpCode::Text, true, false, 5, Some(mask));
//! let mut bytes = frame[..n].to_vec();
//! let mut payload = *b"Hello";
//! apply_mask(&mut payload, mask);
//! bytes.extend_from_slice(&payload);
//!
//! let mut decoder = Decoder::new(DecoderConfig::default()); // server role
//! let mut received = Vec::new();
//! // Feed it in two arbitrary pieces, as a socket might deliver it.
//! for chunk in [&bytes[..3], &bytes[3..]] {
//!     decoder
//!         .decode(chunk, |message| {
//!             received.push(message);
//!             ControlFlow::Continue(())
//!         })
//!         .expect("valid frame");
//! }
//! assert_eq!(received, [Message::Text("Hello".into())]);
//! assert!(decoder.is_idle());
//! assert_eq!(decoder.buffered_capacity(), 0);
//! ```

pub mod decoder;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;

#[cfg(test)]
mod test_util;

pub use decoder::{Decoder, DecoderConfig, Message};
pub use deflate::{DeflateConfig, DeflateNegotiation, Deflater, Inflater, deflate_message, negotiate_deflate};
pub use error::{CLOSE_INVALID_PAYLOAD, CLOSE_MESSAGE_TOO_BIG, CLOSE_PROTOCOL_ERROR, Error, HandshakeError};
pub use frame::{
    CloseFrame, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Role, apply_mask, close_payload, encode_header,
    header_len, is_valid_close_code, write_frame,
};
pub use handshake::{AcceptKey, accept_key, generate_key, is_upgrade_request, validate_upgrade, verify_accept};
