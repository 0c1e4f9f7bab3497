//! Error types: [`Error`] for frame decoding and [`HandshakeError`] for the
//! HTTP upgrade handshake.

use http::StatusCode;

/// Close code 1002: protocol error.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code 1007: invalid frame payload data (for example invalid UTF-8).
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code 1009: message too big.
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// A fatal WebSocket protocol violation found by the [`Decoder`](crate::Decoder).
///
/// Every variant is fatal for the connection: the caller should send a close
/// frame with [`Error::close_code`] and then drop the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client sent an unmasked frame (RFC 6455 §5.1).
    #[error("received an unmasked frame from a client")]
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1).
    #[error("received a masked frame from a server")]
    MaskedFrame,
    /// RSV2 or RSV3 was set, or RSV1 was set where no extension allows it.
    #[error("reserved bits {0:#04x} set without a negotiated extension")]
    ReservedBits(u8),
    /// The opcode is one of the reserved values 0x3-0x7 or 0xB-0xF.
    #[error("unknown opcode {0:#x}")]
    UnknownOpCode(u8),
    /// A control frame (close, ping, pong) did not have FIN set.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A control frame declared a payload longer than 125 bytes.
    #[error("control frame payload longer than 125 bytes")]
    ControlFrameTooLong,
    /// A continuation frame arrived while no fragmented message was in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new text or binary frame arrived while a fragmented message was in progress.
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    /// The 64-bit extended payload length had its most significant bit set.
    #[error("64-bit payload length has its most significant bit set")]
    InvalidLength,
    /// The message (reassembled, and decompressed if compressed) exceeds the
    /// configured `max_message_size`.
    #[error("message exceeds the maximum size of {max} bytes")]
    MessageTooBig {
        /// The configured limit.
        max: usize,
    },
    /// The message is split into more frames than `max_fragments` allows.
    #[error("message split into more than {max} frames")]
    TooManyFragments {
        /// The configured limit.
        max: usize,
    },
    /// A text message or a close reason is not valid UTF-8.
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A close frame had a payload of exactly one byte.
    #[error("close frame payload of one byte")]
    InvalidClosePayload,
    /// A close frame carried a status code that may not appear on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// The permessage-deflate payload could not be inflated.
    #[error("invalid compressed data: {0}")]
    Decompression(String),
}

impl Error {
    /// The close code to send to the peer for this error
    /// (1002 protocol error, 1007 invalid payload data, 1009 message too big).
    ///
    /// Too many fragments is reported as 1009: like an oversized message it
    /// is a resource limit of this endpoint.
    #[must_use]
    pub fn close_code(&self) -> u16 {
        match self {
            Self::InvalidUtf8 | Self::Decompression(_) => CLOSE_INVALID_PAYLOAD,
            Self::MessageTooBig { .. } | Self::TooManyFragments { .. } => CLOSE_MESSAGE_TOO_BIG,
            Self::UnmaskedFrame
            | Self::MaskedFrame
            | Self::ReservedBits(_)
            | Self::UnknownOpCode(_)
            | Self::FragmentedControlFrame
            | Self::ControlFrameTooLong
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::InvalidLength
            | Self::InvalidClosePayload
            | Self::InvalidCloseCode(_) => CLOSE_PROTOCOL_ERROR,
        }
    }
}

/// Why an HTTP request is not an acceptable WebSocket upgrade (RFC 6455 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request method is not `GET`.
    #[error("WebSocket upgrade requires the GET method")]
    MethodNotGet,
    /// No `Upgrade` header with the `websocket` token.
    #[error("missing `Upgrade: websocket` header")]
    MissingUpgrade,
    /// No `Connection` header with the `upgrade` token.
    #[error("missing `Connection: upgrade` header")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing or not `13`. Answer with
    /// `426 Upgrade Required` and `Sec-WebSocket-Version: 13`.
    #[error("unsupported or missing Sec-WebSocket-Version (only 13 is supported)")]
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` header, or more than one.
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    /// `Sec-WebSocket-Key` is not the base64 encoding of exactly 16 bytes.
    #[error("invalid Sec-WebSocket-Key header")]
    InvalidKey,
}

impl HandshakeError {
    /// The HTTP status to answer with: 405 for a wrong method, 426 for an
    /// unsupported version (add `Sec-WebSocket-Version: 13` to the response),
    /// 400 otherwise.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::MissingUpgrade | Self::MissingConnectionUpgrade | Self::MissingKey | Self::InvalidKey => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}
